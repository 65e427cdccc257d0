// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "state/membudget.h"

#include <errno.h>
#include <stdlib.h>

const char *const mb_refusal_names[MB__MAX] = { "", "workload_share", "budget_full", "pressure" };

/* One workload holding buffered bytes; refs: the sessions that charged to it. */
struct mb_workload {
	uint64_t cgroup_id;
	unsigned refs; /* under mb->lock */
	_Atomic size_t bytes;
	struct mb_workload *next;
};

static size_t slot_of(uint64_t id, size_t cap)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	return (size_t)id & (cap - 1);
}

int mb_init(struct membudget *mb, size_t limit, unsigned share_pct)
{
	size_t i;

	mb->tab = NULL;
	mb->cap = mb->n = 0;
	atomic_store(&mb->used, 0);
	atomic_store(&mb->active, 0);
	atomic_store(&mb->peak, 0);
	atomic_store(&mb->trims, 0);
	for (i = 0; i < MB__MAX; i++)
		atomic_store(&mb->refused[i], 0);
	mb_configure(mb, limit, share_pct);
	return -pthread_mutex_init(&mb->lock, NULL);
}

void mb_configure(struct membudget *mb, size_t limit, unsigned share_pct)
{
	atomic_store(&mb->limit, limit);
	atomic_store(&mb->share, limit / 100 * (share_pct ? share_pct : 1));
}

void mb_destroy(struct membudget *mb)
{
	size_t i;

	for (i = 0; i < mb->cap; i++)
		while (mb->tab[i]) {
			struct mb_workload *w = mb->tab[i];

			mb->tab[i] = w->next;
			free(w);
		}
	free(mb->tab);
	mb->tab = NULL;
	pthread_mutex_destroy(&mb->lock);
}

/* The workload entry of a's cgroup, created on first use (ref taken). NULL: out of memory. */
static struct mb_workload *wl_get(struct membudget *mb, uint64_t id)
{
	struct mb_workload *w = NULL, **pp;
	size_t i;

	pthread_mutex_lock(&mb->lock);
	if (mb->n >= mb->cap) {
		size_t ncap = mb->cap ? mb->cap * 2 : 64;
		struct mb_workload **nt = calloc(ncap, sizeof(*nt));

		if (nt) {
			for (i = 0; i < mb->cap; i++)
				while (mb->tab[i]) {
					struct mb_workload *e = mb->tab[i];

					mb->tab[i] = e->next;
					e->next = nt[slot_of(e->cgroup_id, ncap)];
					nt[slot_of(e->cgroup_id, ncap)] = e;
				}
			free(mb->tab);
			mb->tab = nt;
			mb->cap = ncap;
		}
	}
	if (!mb->cap)
		goto out;
	for (pp = &mb->tab[slot_of(id, mb->cap)]; *pp; pp = &(*pp)->next)
		if ((*pp)->cgroup_id == id) {
			w = *pp;
			break;
		}
	if (!w) {
		w = calloc(1, sizeof(*w));
		if (!w)
			goto out;
		w->cgroup_id = id;
		w->next = mb->tab[slot_of(id, mb->cap)];
		mb->tab[slot_of(id, mb->cap)] = w;
		mb->n++;
	}
	w->refs++;
out:
	pthread_mutex_unlock(&mb->lock);
	return w;
}

static void wl_put(struct membudget *mb, struct mb_workload *w)
{
	struct mb_workload **pp;

	pthread_mutex_lock(&mb->lock);
	if (--w->refs == 0) {
		for (pp = &mb->tab[slot_of(w->cgroup_id, mb->cap)]; *pp; pp = &(*pp)->next)
			if (*pp == w) {
				*pp = w->next;
				break;
			}
		mb->n--;
		free(w);
	}
	pthread_mutex_unlock(&mb->lock);
}

enum mb_refusal mb_charge(struct mb_acct *a, size_t n)
{
	struct membudget *mb = a->mb;
	size_t wl_now, used_now, limit, active, peak;
	enum mb_refusal why = MB_OK;

	if (!mb || !n)
		return MB_OK;
	if (!a->wl) {
		a->wl = wl_get(mb, a->cgroup_id);
		if (!a->wl) {
			atomic_fetch_add(&mb->refused[MB_FULL], 1);
			return MB_FULL;
		}
	}
	limit = atomic_load(&mb->limit);
	wl_now = atomic_fetch_add(&a->wl->bytes, n) + n;
	if (wl_now == n)
		atomic_fetch_add(&mb->active, 1);
	used_now = atomic_fetch_add(&mb->used, n) + n;
	active = atomic_load(&mb->active);
	if (wl_now > atomic_load(&mb->share))
		why = MB_SHARE;
	else if (used_now > limit)
		why = MB_FULL;
	else if (used_now > limit / 8 * 7 && active > 1 && wl_now >= used_now / active)
		why = MB_PRESSURE;
	if (why != MB_OK) {
		/* undo: a refused charge holds nothing */
		atomic_fetch_sub(&mb->used, n);
		if (atomic_fetch_sub(&a->wl->bytes, n) == n)
			atomic_fetch_sub(&mb->active, 1);
		atomic_fetch_add(&mb->refused[why], 1);
		return why;
	}
	a->held += n;
	peak = atomic_load(&mb->peak);
	while (used_now > peak && !atomic_compare_exchange_weak(&mb->peak, &peak, used_now))
		;
	return MB_OK;
}

void mb_release(struct mb_acct *a, size_t n)
{
	if (!a->mb || !a->wl || !n)
		return;
	if (n > a->held)
		n = a->held;
	a->held -= n;
	atomic_fetch_sub(&a->mb->used, n);
	if (atomic_fetch_sub(&a->wl->bytes, n) == n)
		atomic_fetch_sub(&a->mb->active, 1);
}

void mb_acct_close(struct mb_acct *a)
{
	if (!a->mb || !a->wl)
		return;
	mb_release(a, a->held);
	wl_put(a->mb, a->wl);
	a->wl = NULL;
}

int mb_trim_due(struct membudget *mb, size_t min)
{
	size_t used = atomic_load(&mb->used), peak = atomic_load(&mb->peak);

	if (peak < used + min)
		return 0;
	atomic_store(&mb->peak, used);
	atomic_fetch_add(&mb->trims, 1);
	return 1;
}
