/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * h1session: HTTP/1.1 at layer 7 for services with protocol "http" (and
 * "auto" once the listener's detection saw HTTP/1.x). Per request: route
 * (method, host, path, headers), pick a backend service (weighted) and an
 * endpoint (the service's balancer), reuse a pooled keep-alive upstream
 * connection or open one, forward with canonical framing, retry within the
 * service's budget, enforce timeouts and deadlines, shed load, propagate
 * trace context and export spans. docs/http1.md ("The proxy") describes the
 * behaviour. It may call: http/h1pool, http/h1svc, http/zipkin,
 * state/service, state/retry, state/tap, codec/ (http1, h1route, deadline, trace),
 * tls/mtls, lib/. It never calls the TCP path.
 *
 * Threading: every session and pooled connection belongs to one worker loop
 * and is only touched by its thread. Shared state (service and endpoint
 * stats, balancer, retry budget) is read and written under registry.lock, a
 * few times per request, never per byte.
 */
#ifndef WEFT_H1SESSION_H
#define WEFT_H1SESSION_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/h1pool.h"
#include "lib/addr.h"
#include "weft/maps.h"

struct svc;

/*
 * An admitted client connection of an HTTP service: takes over fd, the
 * caller's svc reference and its admission (counted by reg_conn_begin_locked
 * when it was admitted; ended here, on every path). registry.lock not held.
 */
void h1_start(struct h1_worker *w, int fd, struct svc *svc, const struct weft_orig *orig,
	      const struct weft_sockaddr *peer);

/* Worker teardown (its thread): resets sessions, closes the idle pool. */
void h1_worker_abort(struct h1_worker *w);
/* Drain (its thread): idle keep-alive sessions close now, busy ones after their response. */
void h1_worker_drain(struct h1_worker *w);

/* What /conns shows of one session (pointers valid while registry.lock is held). */
struct h1_conn_view {
	const struct weft_orig *orig;
	const struct weft_sockaddr *client;
	const char *svc_name;
	const char *endpoint; /* the last attempt's endpoint, "" before the first */
	const char *state;    /* "idle" (between requests), "request", "tunnel" */
	uint64_t bytes_in, bytes_out;
	ev_tstamp started;
};
/* Calls fn for every session of w, newest first (registry.lock held). */
void h1_worker_foreach(struct h1_worker *w, void (*fn)(void *arg, const struct h1_conn_view *v), void *arg);

#endif
