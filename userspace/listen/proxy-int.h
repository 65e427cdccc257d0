/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * proxy-int: the outbound proxy's types, shared by proxy.c (accept, TCP
 * relays, service tables, admin renderings) and h1proxy.c (HTTP/1.1 at
 * layer 7). Not a public API: nothing outside those two files includes it.
 */
#ifndef WEFT_PROXY_INT_H
#define WEFT_PROXY_INT_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/addr.h"
#include "state/balancer.h"
#include "config/config.h"
#include "listen/proxy.h"
#include "tcp/relay.h"
#include "state/retry.h"
#include "weft/maps.h"

/* Statuses weft answers malformed requests with (metric weft_http_rejected_total). */
enum { PX_REJECT_400, PX_REJECT_408, PX_REJECT_414, PX_REJECT_431, PX_REJECT_501, PX_REJECT_505, PX_REJECT__MAX };
/* Protocol detection outcomes (metric weft_protocol_detected_total). */
enum { PX_DETECT_HTTP1, PX_DETECT_HTTP2, PX_DETECT_TLS, PX_DETECT_OPAQUE, PX_DETECT_TIMEOUT, PX_DETECT__MAX };

/* Request duration histogram upper bounds, seconds. */
#define PX_REQ_BUCKETS 14

/* Per (service, route name) HTTP counters; live as long as the service's stats. */
struct px_routestat {
	struct px_routestat *next;
	char name[64];
	uint64_t by_class[6];         /* [1..5]: 1xx..5xx */
	uint64_t buckets[PX_REQ_BUCKETS];
	uint64_t count;
	double sum;
	uint64_t timeouts;
};

struct h1up;
struct h1s;
struct h1detect;
struct h1p_svc;

/*
 * Per-service counters that outlive a config generation (shared by name), so
 * metrics do not reset on reload.
 */
struct proxy_svcstat {
	unsigned refs;
	struct proxy_svcstat *next;   /* registry list */
	char *name;
	uint64_t no_endpoint;         /* every attempt failed / no endpoints: client reset */
	uint64_t over_limit;          /* refused by agent.max_connections */
	uint64_t over_service_limit;  /* refused by limits.max_connections */
	uint64_t over_pending;        /* refused by limits.max_pending */
	uint64_t inbound_ok;          /* mTLS connections from other nodes admitted */
	uint64_t inbound_denied;      /* refused by authorization.allow */
	uint32_t active;              /* connections of this service, any generation */
	uint32_t pending;             /* of which still connecting */
	/* HTTP (h1proxy.c) */
	struct px_routestat *routes;  /* per route name, created on first use, never removed */
	struct retry_budget budget;   /* shared by generations: a reload keeps the window */
	uint32_t inflight;            /* HTTP requests in flight */
	uint64_t retries, budget_exhausted, shed;
	uint64_t rejected[PX_REJECT__MAX];   /* requests refused for their syntax, by status */
	uint64_t detected[PX_DETECT__MAX];   /* protocol "auto": what the first bytes were */
};

/*
 * One endpoint of one service: balancer state and metrics. Shared by every
 * config generation that lists the same (service, address), so a reload keeps
 * its state; freed when the last generation and connection let go.
 */
struct proxy_ep {
	unsigned refs;
	struct proxy_ep *next;        /* registry list */
	struct proxy_svcstat *svc;    /* owning service's shared stats (ref held) */
	struct weft_sockaddr addr;
	char addr_str[ADDR_STRLEN];
	struct bal_endpoint bal;
	uint64_t opened;              /* connections established */
	uint64_t connect_errors[PROXY_ERR__MAX];
	uint64_t bytes_in, bytes_out; /* of closed connections; live ones add theirs */
	uint64_t lat_buckets[PROXY_LAT_BUCKETS];
	uint64_t lat_count;
	double lat_sum;
	const char *eject_reason;     /* why it is (or was last) ejected */
	uint64_t live_in, live_out;   /* scratch for /metrics: bytes of open connections */
	/* HTTP keep-alive pool: idle upstream connections, per worker (only that worker's thread touches its list) */
	struct h1up *idle[CFG_MAX_WORKERS];
	uint32_t n_idle[CFG_MAX_WORKERS];
	uint64_t requests;            /* HTTP requests sent (attempts) */
	uint64_t responses_5xx;       /* of which answered 5xx */
};

/* What a connection needs of its service: one immutable config generation. */
struct proxy_svc {
	unsigned refs;                /* the proxy's table + each connection */
	uint32_t id;                  /* index in the config that created it */
	char *name;
	struct proxy_svcstat *stat;
	struct weft_sockaddr *vips;
	size_t n_vips;
	struct proxy_ep **eps;
	struct weft_sockaddr *nodes;  /* per endpoint: its node's agent, this generation's */
	bool *remote;                 /* per endpoint: reached through nodes[i] over mTLS */
	size_t n_eps;
	struct bal bal;
	struct relay_opts opts;
	enum cfg_protocol protocol;
	uint32_t max_conns, max_pending;
	struct id_policy *policy;     /* authorization.allow, for mTLS callers; NULL without tls */
	struct h1p_svc *l7;           /* HTTP settings and routes (h1proxy.c); NULL: opaque only */
};

struct proxy_worker;

struct proxy_conn {
	struct proxy_conn *prev, *next;
	struct proxy *px;
	struct proxy_worker *w;  /* the loop that owns the relay */
	struct proxy_svc *svc;
	struct relay *relay;
	struct proxy_ep *ep;    /* endpoint in use (ref held), NULL while connecting */
	struct proxy_ep *trying;/* endpoint of the attempt in flight (counted in its active) */
	struct weft_orig orig;
	struct weft_sockaddr client;
	uint64_t tried;         /* endpoints tried, bitmask by index in svc */
	int cur;                /* index in svc of the endpoint being tried */
	struct mtls *mtls;      /* TLS bundle this connection may use (ref held) */
	ev_tstamp started;
};

/* Commands from the main thread to a worker (bitmask in proxy_worker.cmds). */
#define WCMD_STOP_ACCEPT 0x1
#define WCMD_ABORT       0x2
#define WCMD_EXIT        0x4

/*
 * One event loop moving bytes. Worker 0 runs in the main loop (admin,
 * heartbeat and signals share it); workers 1..n-1 run their own loop on their
 * own thread. Each has its own SO_REUSEPORT listeners, relay pool and
 * connection list; everything else is shared under proxy.lock.
 */
struct proxy_worker {
	struct proxy *px;
	unsigned id;
	struct ev_loop *loop;
	ev_io lis[2];
	int nlis;
	struct relay_pool *pool;
	struct proxy_conn conns;   /* list head; linked and unlinked under px->lock */
	ev_async wake;             /* main -> worker: look at cmds */
	atomic_uint cmds;
	struct h1s *h1_head;       /* HTTP sessions (list linked under px->lock, for /conns) */
	struct h1detect *detecting;/* "auto" connections being classified (this thread only) */
	struct h1up *idle_head;    /* every idle pooled upstream connection of this worker */
	bool draining;             /* stop accepting was asked: close keep-alive sessions */
	ev_timer tick;             /* proves the loop turns (stuck-worker detection) */
	ev_timer accept_retry;     /* listeners paused after EMFILE/ENFILE: resume later */
	bool accept_paused;
	_Atomic double last_tick;
	uint64_t accepted;         /* under px->lock */
	pthread_t thread;
	bool threaded;             /* has (or will have) its own loop and thread */
	bool started;              /* its thread runs: only then signal and join it */
};

/*
 * Locking: proxy.lock guards the service tables, the shared endpoint and
 * service state, the counters and the connection lists. It is taken per
 * connection event (accept, pick, connected, first byte, closed) and by the
 * admin renderings, never per byte: relays run unlocked in their worker.
 */
struct proxy {
	struct ev_loop *loop;      /* the main loop (worker 0's) */
	struct kern *kern;
	pthread_mutex_t lock;
	struct proxy_worker *workers;
	unsigned nworkers;
	struct proxy_svc **svcs;
	size_t n_svcs;
	uint32_t max_conns;
	bool redirect;             /* agent.redirect_loopback */
	struct mtls *mtls;         /* NULL without a tls group (ref held) */
	bool splice;               /* agent.splice */
	size_t active;
	struct proxy_ep *ep_registry;
	struct proxy_svcstat *stat_registry;
	struct proxy_counters ctr;
	struct zipkin *zipkin;     /* span exporter, NULL: none (set once at start) */
};

/* proxy.c helpers h1proxy.c uses (callers hold px->lock unless noted). */
void px_stat_unref(struct proxy *px, struct proxy_svcstat *st);
void px_ep_unref(struct proxy *px, struct proxy_ep *ep);
void px_svc_unref(struct proxy *px, struct proxy_svc *s);
void px_ep_observe_latency(struct proxy_ep *ep, double secs);
enum proxy_err px_err_of(int e);
/* no lock: resets and closes fd */
void px_reset_close(int fd);
/* Opaque TCP for an admitted connection (no lock held; takes over the svc reference and fd). */
void px_start_relay(struct proxy_worker *w, int fd, struct proxy_svc *svc, const struct weft_orig *orig,
		    const struct weft_sockaddr *peer);
/* Logs and counts what a connect or request outcome does to the endpoint's ejection state (lock held). */
void px_breaker(struct proxy_svc *svc, int i, bool ok, double now, const char *why);


#endif
