/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxy: the outbound side of weftd. Listens on the agent's outbound port on
 * loopback (127.0.0.1 and ::1), and for each accepted connection finds the
 * original destination the BPF side recorded, maps it to a service, and hands
 * the socket to a relay towards one of the service's endpoints.
 *
 * Service state lives in refcounted struct proxy_svc objects: a connection
 * keeps the service state it started with, so a reload that removes or
 * changes a service never touches established connections.
 */
#ifndef WEFT_PROXY_H
#define WEFT_PROXY_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

struct proxy;
struct kern;
struct buf;

/* Connect failure reasons (metric label "reason"). */
enum proxy_err { PROXY_ERR_REFUSED, PROXY_ERR_TIMEOUT, PROXY_ERR_UNREACHABLE, PROXY_ERR_OTHER, PROXY_ERR__MAX };
extern const char *const proxy_err_names[PROXY_ERR__MAX];

/* Connect latency histogram upper bounds, seconds (le labels). */
#define PROXY_LAT_BUCKETS 13
extern const double proxy_lat_bounds[PROXY_LAT_BUCKETS];
struct weft_config;

/* Counters of what happened to accepted connections, for logs and metrics. */
struct proxy_counters {
	uint64_t accepted;
	uint64_t no_orig;        /* no BPF record: not redirected by weft; reset */
	uint64_t no_service;     /* service gone (reload) or has no endpoints; reset */
	uint64_t over_limit;     /* agent.max_connections reached; reset */
	uint64_t connect_failed; /* every attempt failed; reset */
	uint64_t completed;
};

/*
 * Binds the outbound listeners (one SO_REUSEPORT set per worker) and starts
 * accepting. Worker 0 runs in loop (the caller's, which also serves admin and
 * signals); workers 1..nworkers-1 get their own loop and thread. 0 or -errno
 * with err set.
 */
struct zipkin;
/* zipkin: the span exporter for HTTP requests, or NULL (borrowed: it must outlive the proxy). */
int proxy_start(struct ev_loop *loop, struct kern *k, const struct weft_config *cfg, unsigned nworkers,
		struct zipkin *zipkin, struct proxy **out, char *err, size_t errlen);

/*
 * A worker thread whose loop has not turned for max_age seconds (stuck in a
 * loop, or starved): returns its index and sets *age, or -1 when all are well.
 */
int proxy_stuck_worker(struct proxy *px, double max_age, double *age);

/* Switches to a new config's services (reload); existing connections keep theirs. */
int proxy_set_config(struct proxy *px, const struct weft_config *cfg);

struct mtls;
struct relay_opts;
struct relay_pool;

/* The TLS bundle for cross-node endpoints (ref taken; NULL: none). Set before proxy_set_config. */
void proxy_set_mtls(struct proxy *px, struct mtls *m);

/*
 * The receiving agent's admission of an mTLS connection from another node:
 * target must be a local endpoint of some service, and the caller's verified
 * identity allowed by that service's authorization. Returns an enum
 * preamble_status (PREAMBLE_ST_OK: *opts filled for relay_start_tls, the
 * service's name in svc_name).
 */
int proxy_inbound_admit(struct proxy *px, const struct weft_sockaddr *target, const char *peer_id,
			char *svc_name, size_t len, struct relay_opts *opts);

/* Worker 0's relay pool (the main loop's), for the inbound listener. */
struct relay_pool *proxy_main_pool(struct proxy *px);

/* Closes the listeners of every worker (drain); asynchronous for worker threads. */
void proxy_stop_accepting(struct proxy *px);

size_t proxy_active(struct proxy *px);

/*
 * Admin renderings (control plane; O(services + endpoints + connections)).
 * GET /services and GET /conns JSON as docs/operations.md shows, and the
 * proxy's part of GET /metrics. cgroup_name maps a cgroup id to a path (may
 * return NULL).
 */
void proxy_render_services(struct proxy *px, struct buf *out);
void proxy_render_conns(struct proxy *px, struct buf *out,
			const char *(*cgroup_name)(void *arg, uint64_t id), void *arg);
void proxy_render_metrics(struct proxy *px, struct buf *out);
/* The same as aligned text tables (weftctl's default output). */
void proxy_render_services_text(struct proxy *px, struct buf *out);
void proxy_render_conns_text(struct proxy *px, struct buf *out,
			     const char *(*cgroup_name)(void *arg, uint64_t id), void *arg);

/* Resets every active connection (each worker its own; asynchronous for threads). */
void proxy_abort_all(struct proxy *px);

/* Frees everything; active connections are aborted first. */
void proxy_free(struct proxy *px);

#endif
