/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * list: an intrusive, circular, doubly linked list (the Linux kernel's
 * list_head). Embed a struct list_head in each element; the head is a
 * struct list_head of its own. O(1) insert and unlink, no allocation.
 * Calls nothing; thread-safety is the owner's (each user says which lock or
 * thread guards its list).
 */
#ifndef WEFT_LIST_H
#define WEFT_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_head {
	struct list_head *next, *prev;
};

#define LIST_HEAD_INIT(name)     \
	{                        \
		&(name), &(name) \
	}

#define list_entry(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list_head *h)
{
	h->next = h->prev = h;
}

static inline bool list_empty(const struct list_head *h)
{
	return h->next == h;
}

/* An element that was list_init()ed or list_del()eted is on no list. */
static inline bool list_linked(const struct list_head *n)
{
	return n->next && n->next != n;
}

static inline void list_insert_(struct list_head *n, struct list_head *prev, struct list_head *next)
{
	next->prev = n;
	n->next = next;
	n->prev = prev;
	prev->next = n;
}

/* At the front (iteration sees it first). */
static inline void list_add(struct list_head *n, struct list_head *h)
{
	list_insert_(n, h, h->next);
}

/* At the back. */
static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	list_insert_(n, h->prev, h);
}

/* Unlinks n and leaves it on no list (safe to call twice). */
static inline void list_del(struct list_head *n)
{
	if (!n->next)
		return;
	n->next->prev = n->prev;
	n->prev->next = n->next;
	n->next = n->prev = n;
}

#define list_first_entry(h, type, member) list_entry((h)->next, type, member)

#define list_for_each_entry(pos, h, member)                                                    \
	for ((pos) = list_entry((h)->next, __typeof__(*(pos)), member); &(pos)->member != (h); \
	     (pos) = list_entry((pos)->member.next, __typeof__(*(pos)), member))

/* Iteration that survives unlinking (or freeing) pos. */
#define list_for_each_entry_safe(pos, n, h, member)                           \
	for ((pos) = list_entry((h)->next, __typeof__(*(pos)), member),       \
	    (n) = list_entry((pos)->member.next, __typeof__(*(pos)), member); \
	     &(pos)->member != (h); (pos) = (n), (n) = list_entry((n)->member.next, __typeof__(*(n)), member))

#endif
