/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tap: a live feed of the HTTP requests weftd proxies (weftctl tap), that
 * costs the data path one relaxed atomic load per request while nobody
 * watches, and never waits when somebody does.
 *
 * Workers (any thread) offer one tap_event per finished request when
 * tap_active(); the events go into a bounded ring (TAP_RING events) under
 * its own mutex (held for one copy). When the ring is full the event is
 * dropped and counted: a slow reader costs events, not latency or memory.
 * The main thread drains the ring and hands the events to the readers
 * (admin streams), which drop and count again for a reader that is behind.
 *
 * Secrets: header values travel only while a reader asked for them, and
 * never those of Authorization, Proxy-Authorization, Cookie and Set-Cookie
 * (their names show, with the value "<redacted>").
 * It may call: libc, pthreads.
 */
#ifndef WEFT_TAP_H
#define WEFT_TAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TAP_RING 4096
#define TAP_HEADERS_MAX 1024 /* bytes of "name: value\n" lines per event */

struct tap_event {
	double wall; /* unix time the request began */
	uint64_t cgroup_id;
	uint32_t pid;
	uint32_t latency_us;
	uint16_t status; /* 0: no response (the client went away) */
	uint16_t attempts;
	int16_t grpc; /* gRPC status code; -1: not gRPC */
	char service[136], method[16], authority[96], path[192], endpoint[64];
	uint16_t headers_len;
	char headers[TAP_HEADERS_MAX];
};

struct tap {
	atomic_uint readers;        /* tap_active() */
	atomic_uint header_readers; /* readers that asked for header values */
	atomic_ullong dropped;      /* ring full */
	atomic_ullong offered;
	void *ring_lock;        /* pthread_mutex_t *, allocated by tap_init */
	struct tap_event *ring; /* TAP_RING, while there are readers */
	size_t head, n;
};

int tap_init(struct tap *t);
void tap_destroy(struct tap *t);

/* The data path's check: true while anybody reads. */
static inline bool tap_active(const struct tap *t)
{
	return t && atomic_load_explicit(&t->readers, memory_order_relaxed) != 0;
}

static inline bool tap_want_headers(const struct tap *t)
{
	return atomic_load_explicit(&t->header_readers, memory_order_relaxed) != 0;
}

/* Any thread: one event (copied), or dropped and counted. */
void tap_offer(struct tap *t, const struct tap_event *ev);

/*
 * Appends the header lines of a request for ev->headers ("name: value\n"),
 * secrets redacted, cut at TAP_HEADERS_MAX. names/values are not
 * NUL-terminated.
 */
void tap_add_header(struct tap_event *ev, const char *name, size_t name_len, const char *value, size_t value_len);

/* Main thread: readers come and go (the ring exists while there are any). 0 or -ENOMEM. */
int tap_reader_add(struct tap *t, bool headers);
void tap_reader_remove(struct tap *t, bool headers);

/* Main thread: up to max events, oldest first; how many. */
size_t tap_drain(struct tap *t, struct tap_event *out, size_t max);

#endif
