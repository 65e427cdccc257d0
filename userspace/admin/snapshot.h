/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * snapshot: a copy of the data path's live state for the admin renderings.
 * snapshot_take() holds registry.lock only while it copies (O(services +
 * endpoints + connections), no formatting, no I/O); the renderings then
 * format from the copy with no lock held, so no worker waits on a page.
 * It may call: state/service, http/h1svc, http/h1session, tcp/, listen/outbound.
 * Outside the data path: the main thread only.
 */
#ifndef WEFT_SNAPSHOT_H
#define WEFT_SNAPSHOT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/h1svc.h"
#include "lib/addr.h"
#include "state/balancer.h"
#include "state/locality.h"
#include "state/service.h"
#include "weft/maps.h"

struct outbound;

/* One endpoint: in registry order (snapshot.eps) or per service (snap_svc). */
struct snap_ep {
	const char *svc; /* the service's name */
	char addr[ADDR_STRLEN];
	char node[ADDR_STRLEN]; /* the agent it is reached through (mTLS); "" when direct */
	struct bal_endpoint bal;
	const char *eject_reason; /* static string, or NULL */
	uint64_t opened, connect_errors[SVC_ERR__MAX];
	uint64_t bytes_in, bytes_out; /* closed connections + open ones */
	uint64_t lat_buckets[SVC_LAT_BUCKETS], lat_count;
	double lat_sum;
	uint64_t requests, responses_5xx; /* HTTP attempts (0: never) */
	/* locality and source (per generation; has_info false: no zone, priority 0, the service's own source) */
	bool has_info;
	const char *zone; /* NULL: none */
	uint32_t priority;
	uint8_t source; /* enum cfg_ep_source */
	uint8_t tier;
};

struct snap_route {
	char name[64];
	uint64_t by_class[6], buckets[H1_REQ_BUCKETS], count, timeouts;
	double sum;
};

/* Per-service counters that outlive generations, in registry order. */
struct snap_stat {
	const char *name;
	uint64_t no_endpoint, over_limit, over_service_limit, over_pending, over_workload;
	uint64_t detected[SVC_DETECT__MAX];
	bool http; /* proxied per request at some point */
	uint32_t inflight;
	uint64_t retries, budget_exhausted, shed, rejected[H1_REJECT__MAX], idle_closed[H1_IDLE__MAX];
	uint64_t grpc[GRPC_CODES + 1]; /* gRPC calls by status (HTTP/2) */
	struct snap_route *routes;
	size_t n_routes;
};

/* One service of the generation in force, in config order. */
struct snap_svc {
	const char *name;
	enum cfg_protocol protocol;
	enum cfg_source source;
	struct weft_sockaddr *vips;
	size_t n_vips;
	enum cfg_balancer balancer;
	size_t ejected;
	uint64_t panics;
	uint32_t active, pending;
	uint64_t no_endpoint, over_limit, over_service_limit, over_pending, over_workload;
	struct snap_ep *eps;
	size_t n_eps;
	bool http; /* has HTTP settings (per request) */
	uint32_t inflight, max_requests;
	uint64_t retries, budget_exhausted, budget_available, shed;
	const char **routes;
	size_t n_routes;
	/* locality (n_tiers 0: none): tiers, and the loads the ready endpoints give now */
	const char *local_zone;
	struct loc_tier tiers[LOC_MAX_TIERS];
	size_t n_tiers;
	uint32_t overprov_pct;
	struct loc_plan plan;
};

struct snap_conn {
	struct weft_orig orig;
	struct weft_sockaddr client;
	const char *svc;
	char endpoint[ADDR_STRLEN]; /* "" when none (yet) */
	const char *state;          /* static: established, connecting, idle, request, tunnel, http2, http2-idle */
	bool http, http2;
	unsigned streams; /* http2: streams open */
	uint64_t bytes_in, bytes_out;
	ev_tstamp started;
};

struct snapshot {
	double now;  /* ev_now() of the main loop when taken */
	double wall; /* ev_time() when taken */
	struct snap_svc *svcs;
	size_t n_svcs;
	struct snap_ep *eps;
	size_t n_eps;
	struct snap_stat *stats;
	size_t n_stats;
	struct snap_conn *conns;
	size_t n_conns;
	uint64_t accepted, no_orig;
	uint64_t *worker_accepted;
	unsigned n_workers;
	/* every string and array above lives in these allocations */
	char *strings;
	size_t str_len, str_cap;
	void **allocs;
	size_t n_allocs, cap_allocs;
};

/* What a rendering needs: each part costs its copy. */
#define SNAP_SERVICES 0x1u
#define SNAP_METRICS 0x2u
#define SNAP_CONNS 0x4u

/* 0 or -ENOMEM (then the snapshot is empty but safe to free). now: ev_now() of the main loop. */
int snapshot_take(struct snapshot *s, struct registry *reg, struct outbound *ob, unsigned what, double now);
void snapshot_free(struct snapshot *s);

#endif
