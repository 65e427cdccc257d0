/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * h1proxy: HTTP/1.1 at layer 7 for services with protocol "http" (and "auto"
 * once the first bytes look like HTTP/1.x). Per request: route (method, host,
 * path, headers), pick a backend service (weighted) and an endpoint (the
 * service's balancer), reuse a pooled keep-alive upstream connection or open
 * one, forward with canonical framing, retry within the service's budget,
 * enforce timeouts and deadlines, shed load, propagate trace context and
 * export spans. docs/http1.md ("The proxy") describes the behaviour.
 *
 * Threading: every session, detection and pooled connection belongs to one
 * worker loop and is only touched by its thread. Shared state (service and
 * endpoint stats, balancer, retry budget) is read and written under
 * px->lock, a few times per request, never per byte.
 */
#ifndef WEFT_H1PROXY_H
#define WEFT_H1PROXY_H

#include <stdbool.h>

#include "listen/proxy-int.h"

struct buf;

/*
 * The HTTP part of one service generation: routes, limits, retry settings,
 * copied from the config (which does not outlive a reload). Creates the
 * route counters in st. Lock held. NULL + errno on failure.
 */
struct h1p_svc *h1p_svc_new(const struct weft_config *cfg, const struct cfg_service *cs,
			    struct proxy_svcstat *st);
void h1p_svc_free(struct h1p_svc *l);
/* Frees the HTTP counters of a service's stats (from px_stat_unref). */
void h1p_stat_free(struct proxy_svcstat *st);

/*
 * An admitted client connection of an HTTP service: takes over fd and the
 * svc reference (no lock held).
 */
void h1p_start(struct proxy_worker *w, int fd, struct proxy_svc *svc, const struct weft_orig *orig,
	       const struct weft_sockaddr *peer);
/*
 * Protocol "auto": waits (at most http.detect_timeout_ms) for the first bytes
 * without consuming them (MSG_PEEK), then hands the connection to h1p_start
 * (an HTTP/1.x request line) or to the opaque relay (anything else, or
 * nothing: a server-first protocol). Takes over fd and the svc reference.
 */
void h1p_detect(struct proxy_worker *w, int fd, struct proxy_svc *svc, const struct weft_orig *orig,
		const struct weft_sockaddr *peer);

/* Worker teardown (its thread): resets sessions, drops detections and the idle pool. */
void h1p_worker_abort(struct proxy_worker *w);
/* Drain (its thread): idle keep-alive sessions close now, busy ones after their response. */
void h1p_worker_drain(struct proxy_worker *w);

/* A thread that ran sessions ends: frees its cache of buffer blocks. */
void h1p_thread_cleanup(void);

/* Admin renderings, px->lock held. */
void h1p_render_metrics(struct proxy *px, struct buf *out);
struct table;
/* The same as rows of weftctl's conns table (ENDPOINT is "(idle)" between requests). */
void h1p_render_conns_text(struct proxy_worker *w, struct table *t,
			   const char *(*cgroup_name)(void *arg, uint64_t id), void *arg);
/*
 * /services: appends ,"http":{...} for a service proxied per request (in
 * flight, retries, budget, shed, routes); nothing for an opaque one.
 */
void h1p_render_service(const struct proxy_svc *s, struct buf *out, double now);
/* Appends this worker's sessions to a /conns JSON array; *first tracks the comma. */
void h1p_render_conns(struct proxy_worker *w, struct buf *out, bool *first,
		      const char *(*cgroup_name)(void *arg, uint64_t id), void *arg);

#endif
