/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * h1svc: what the HTTP path keeps per service and per endpoint, beside the
 * shared registry (state/service): the settings of one generation (routes,
 * limits, retries, timeouts), the per-service counters that outlive
 * generations (per-route counters, the retry budget, requests in flight,
 * rejections), and per endpoint the keep-alive pool and request counters.
 * They hang off the registry's objects (svc->http, svc_stat->http,
 * svc_ep->http), attached through h1_svc_hooks, so an opaque TCP service
 * pays one NULL pointer for each. It may call: state/service, state/retry,
 * codec/h1route, codec/http1, config/, lib/.
 *
 * Locking: counters and the budget are under registry.lock; an endpoint's
 * idle pool list for worker i is touched only by worker i's thread.
 */
#ifndef WEFT_H1SVC_H
#define WEFT_H1SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/grpc.h"
#include "codec/h1route.h"
#include "codec/http1.h"
#include "config/config.h"
#include "lib/list.h"
#include "state/retry.h"
#include "state/service.h"

/* Statuses weft answers malformed requests with (metric weft_http_rejected_total). */
enum { H1_REJECT_400, H1_REJECT_408, H1_REJECT_414, H1_REJECT_431, H1_REJECT_501, H1_REJECT_505, H1_REJECT__MAX };
extern const char *const h1_reject_names[H1_REJECT__MAX];

/*
 * Client connections weft closed for sitting idle (metric
 * weft_http_idle_closed_total): NEW sent nothing of a first request within
 * http.head_timeout_ms of accept; KEEPALIVE sent nothing of its next request
 * within http.keepalive_idle_ms (or timeouts.idle_ms) of the last response.
 */
enum { H1_IDLE_NEW, H1_IDLE_KEEPALIVE, H1_IDLE__MAX };
extern const char *const h1_idle_names[H1_IDLE__MAX];

/* Request duration histogram upper bounds, seconds. */
#define H1_REQ_BUCKETS 14
extern const double h1_req_bounds[H1_REQ_BUCKETS];

/* Request buffer growth step; the floor of the retry-body part of in_cap. */
#define H1_READ_CHUNK (16u * 1024)

/* Per (service, route name) counters; live as long as the service's stats. */
struct h1_routestat {
	struct h1_routestat *next;
	char name[64];
	uint64_t by_class[6]; /* [1..5]: 1xx..5xx */
	uint64_t buckets[H1_REQ_BUCKETS];
	uint64_t count;
	double sum;
	uint64_t timeouts;
};

/* svc_stat->http: per-service HTTP counters that outlive generations. */
struct h1_stat {
	struct h1_routestat *routes; /* per route name, created on first use, never removed */
	struct retry_budget budget;  /* shared by generations: a reload keeps the window */
	uint32_t inflight;           /* HTTP requests in flight */
	uint64_t retries, budget_exhausted, shed;
	uint64_t rejected[H1_REJECT__MAX];  /* requests refused for their syntax, by status */
	uint64_t idle_closed[H1_IDLE__MAX]; /* client connections closed for idling, by when */
	uint64_t grpc[GRPC_CODES + 1];      /* HTTP/2 gRPC calls by grpc-status ([GRPC_CODES]: other codes) */
};

/* svc_ep->http: created when the HTTP path first sends a request to the endpoint. */
struct h1_ep {
	struct list_head idle[CFG_MAX_WORKERS]; /* keep-alive pool per worker (struct h1up; that worker's thread only) */
	uint32_t n_idle[CFG_MAX_WORKERS];
	uint64_t requests;      /* HTTP requests sent (attempts) */
	uint64_t responses_5xx; /* of which answered 5xx */
};

/* svc->http: the HTTP settings of one generation, copied from the config (which does not outlive a reload). */
struct h1_svc {
	struct h1r_route *routes;
	size_t n_routes;
	struct h1r_route def; /* no route matched: the service itself */
	struct h1_limits lim;
	size_t max_headers;
	size_t in_cap; /* request buffer limit: head limits + retry body */
	uint32_t detect_timeout_ms, max_requests, max_retry_body, pool_max_idle, pool_idle_timeout_ms;
	uint32_t head_timeout_ms, keepalive_idle_ms, stream_idle_ms;
	uint32_t attempts, backoff_base_ms, backoff_max_ms;
	uint16_t on_status[CFG_MAX_RETRY_STATUS];
	size_t n_on_status;
	uint32_t connect_timeout_ms, idle_timeout_ms, mark, buffer_size;
	double sample_rate;
	bool tracing;
};

/* Hooks the registry calls to attach and free the above (see struct svc_hooks). */
extern const struct svc_hooks h1_svc_hooks;

/* ep->http, created on first use (lock held). NULL: out of memory. */
struct h1_ep *h1_ep_get_locked(struct svc_ep *ep);

#endif
