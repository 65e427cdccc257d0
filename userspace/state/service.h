/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * service: the service and endpoint registry every data path shares, at the
 * bottom of the data path. It holds one config generation of services (VIPs,
 * endpoints, balancer, limits, authorization), the per-endpoint state that
 * outlives generations (balancer state, breaker, counters), the per-service
 * counters that outlive generations, and admission (agent and service
 * connection limits). It may call: lib/, codec/ (identity policy), config/
 * (types), state/balancer, tls/mtls (a refcounted bundle it only holds).
 * It never calls a data path: the HTTP path attaches its own per-service and
 * per-endpoint state through struct svc_hooks (owned and freed by the path).
 *
 * Locking: everything here is guarded by registry.lock, taken a few times per
 * connection or request (accept, pick, connected, response, close), never per
 * byte. Functions named *_locked expect it held; the others take it.
 * Generations: a struct svc is immutable once built, refcounted (the table
 * holds one reference, each connection one), so a reload never changes or
 * drops an established connection. struct svc_ep and struct svc_stat are
 * shared by every generation that names the same (service, address) or
 * service, so balancer state and metrics survive reloads.
 * Cost: lookups by VIP, by local endpoint (inbound admission), by (service,
 * endpoint) and by name are O(1) hash lookups; building a generation is
 * O(services + endpoints).
 */
#ifndef WEFT_SERVICE_H
#define WEFT_SERVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "lib/addr.h"
#include "lib/list.h"
#include "state/balancer.h"
#include "state/locality.h"
#include "weft/maps.h"

/* Connect failure reasons (metric label "reason"). */
enum svc_err { SVC_ERR_REFUSED, SVC_ERR_TIMEOUT, SVC_ERR_UNREACHABLE, SVC_ERR_OTHER, SVC_ERR__MAX };
extern const char *const svc_err_names[SVC_ERR__MAX];
enum svc_err svc_err_of(int e);

/* Connect latency histogram upper bounds, seconds (le labels). */
#define SVC_LAT_BUCKETS 13
extern const double svc_lat_bounds[SVC_LAT_BUCKETS];

/* Protocol detection outcomes of "auto" services (metric weft_protocol_detected_total). */
enum { SVC_DETECT_HTTP1, SVC_DETECT_HTTP2, SVC_DETECT_TLS, SVC_DETECT_OPAQUE, SVC_DETECT_TIMEOUT, SVC_DETECT__MAX };
extern const char *const svc_detect_names[SVC_DETECT__MAX];

/* What happened to accepted connections, agent-wide (under registry.lock). */
struct svc_counters {
	uint64_t accepted;
	uint64_t no_orig;        /* no BPF record: not redirected by weft; reset */
	uint64_t no_service;     /* service gone (reload) or has no endpoints; reset */
	uint64_t over_limit;     /* agent.max_connections reached; reset */
	uint64_t over_workload;  /* agent.max_connections_per_workload reached; reset */
	uint64_t connect_failed; /* every attempt failed; reset */
	uint64_t completed;
};

/* How a service's upstream connections are made (the paths turn it into their own options). */
struct svc_connopts {
	uint32_t buffer_size;        /* agent.buffer_size */
	uint32_t connect_timeout_ms; /* per attempt (0: the kernel's) */
	uint32_t idle_timeout_ms;    /* 0: none */
	uint32_t mark;               /* SO_MARK: keeps the agent's own sockets out of the redirect */
	uint32_t max_attempts;       /* connect attempts in all, >= 1 */
	bool splice;                 /* opaque bytes may move with splice(2) */
};

struct h1_stat;
struct h1_ep;
struct h1_svc;

/* Per-service counters that outlive a config generation (shared by name). */
struct svc_stat {
	unsigned refs;
	struct list_head link;  /* registry order (newest first) */
	struct svc_stat *hnext; /* name hash chain */
	char *name;
	uint64_t no_endpoint;               /* every attempt failed / no endpoints: client reset */
	uint64_t over_limit;                /* refused by agent.max_connections */
	uint64_t over_service_limit;        /* refused by limits.max_connections */
	uint64_t over_pending;              /* refused by limits.max_pending */
	uint64_t over_workload;             /* refused by agent.max_connections_per_workload */
	uint64_t inbound_ok;                /* mTLS connections from other nodes admitted */
	uint64_t inbound_denied;            /* refused by authorization.allow */
	uint32_t active;                    /* connections of this service, any generation */
	uint32_t pending;                   /* of which still connecting */
	uint64_t detected[SVC_DETECT__MAX]; /* protocol "auto": what the first bytes were */
	struct h1_stat *http;               /* the HTTP path's counters (hooks); NULL: never proxied per request */
};

/*
 * One endpoint of one service: balancer state and metrics. Shared by every
 * generation that lists the same (service, address); freed when the last
 * generation and connection let go.
 */
struct svc_ep {
	unsigned refs;
	struct list_head link; /* registry order (newest first) */
	struct svc_ep *hnext;  /* (service, address) hash chain */
	struct svc_stat *svc;  /* owning service's shared stats (ref held) */
	struct weft_sockaddr addr;
	char addr_str[ADDR_STRLEN];
	struct bal_endpoint bal;
	uint64_t opened; /* connections established */
	uint64_t connect_errors[SVC_ERR__MAX];
	uint64_t bytes_in, bytes_out; /* of closed connections; live ones add theirs */
	uint64_t lat_buckets[SVC_LAT_BUCKETS];
	uint64_t lat_count;
	double lat_sum;
	const char *eject_reason;   /* why it is (or was last) ejected (a static string) */
	uint64_t live_in, live_out; /* scratch for the admin snapshot: bytes of open connections */
	struct h1_ep *http;         /* the HTTP path's per-endpoint state (hooks), or NULL */
};

/* Where an endpoint of a generation sits (locality) and came from; kept only when one differs from the default. */
struct svc_epinfo {
	const char *zone;  /* NULL: none; points into svc.zone_names */
	uint32_t priority; /* lower is preferred */
	uint8_t source;    /* enum cfg_ep_source */
	uint8_t tier;      /* locality tier (state/locality.h) */
};

/* One immutable config generation of a service: what a connection needs. */
struct svc {
	unsigned refs; /* the registry's table + each connection */
	uint32_t id;   /* index in the config that created it */
	char *name;
	struct svc *hnext; /* VIP hash chain (one per VIP: see vip_next) */
	struct svc_stat *stat;
	struct weft_sockaddr *vips;
	size_t n_vips;
	struct svc_ep **eps;
	struct weft_sockaddr *nodes; /* per endpoint: its node's agent, this generation's */
	bool *remote;                /* per endpoint: reached through nodes[i] over mTLS */
	size_t n_eps;
	struct svc_epinfo *info; /* per endpoint, or NULL: no zone, priority 0, from the config (or the API) */
	char **zone_names;       /* the distinct zones of its endpoints */
	size_t n_zone_names;
	char *local_zone;                     /* agent.zone of this generation, or NULL */
	struct loc_tier tiers[LOC_MAX_TIERS]; /* what each tier is (with info: locality in /services) */
	size_t n_tiers;
	uint32_t overprov_pct; /* failover.overprovisioning, percent */
	struct bal bal;
	struct svc_connopts opts;
	enum cfg_protocol protocol;
	enum cfg_source source; /* /services' "source" */
	enum cfg_balancer balancer;
	uint32_t max_conns, max_pending;
	struct id_policy *policy; /* authorization.allow, for mTLS callers; NULL without tls */
	struct h1_svc *http;      /* HTTP settings and routes (hooks); NULL: opaque only */
};

/*
 * What a data path attaches to the registry's objects. Called with the lock
 * held, while a generation is built and when the objects are freed.
 * svc_new: the HTTP part of a generation of an "http"/"auto" service (NULL
 * + errno on failure); may create st->http and each ep->http.
 */
struct svc_hooks {
	struct h1_svc *(*svc_new)(const struct weft_config *cfg, const struct cfg_service *cs, struct svc *s);
	void (*svc_free)(struct h1_svc *h);
	void (*stat_free)(struct h1_stat *h);
	void (*ep_free)(struct h1_ep *h);
};

struct svc_vipent;
/* Address -> service of the generation in force (hash; built with it). */
struct addr_index {
	struct svc_vipent **heads;
	size_t cap;
};
struct svc_workload;

struct tap;

struct registry {
	pthread_mutex_t lock;
	const struct svc_hooks *hooks;
	struct svc **svcs; /* this generation, config order */
	size_t n_svcs;
	struct addr_index vips;       /* VIP -> service */
	struct addr_index local_eps;  /* this node's endpoint -> service (inbound admission: with mTLS only) */
	uint32_t max_conns;           /* agent.max_connections */
	uint32_t max_per_workload;    /* agent.max_connections_per_workload in force */
	struct svc_workload **wl_tab; /* cgroup id -> connections it holds (only cgroups holding some) */
	size_t wl_cap, n_wl;
	bool redirect;     /* agent.redirect_loopback */
	bool splice;       /* agent.splice */
	struct mtls *mtls; /* NULL without a tls group (ref held) */
	size_t active;     /* connections being proxied, every path */
	struct svc_counters ctr;
	struct list_head eps;   /* every struct svc_ep, newest first */
	struct svc_ep **ep_tab; /* hash of eps by (stat, address) */
	size_t ep_cap, n_ep;
	struct list_head stats;     /* every struct svc_stat, newest first */
	struct svc_stat **stat_tab; /* hash of stats by name */
	size_t stat_cap, n_stat;
	double last_build_lock_s; /* how long the last reg_set_config held the lock (seconds) */
	struct tap *tap;          /* the live request feed (state/tap), or NULL; set before workers start */
};

int reg_init(struct registry *r, const struct svc_hooks *hooks);
/* Drops the table's generation; connections must have released theirs. */
void reg_destroy(struct registry *r);

/*
 * Switches to a new config's services (reload), building the generation in
 * O(services + endpoints) and swapping it in; existing connections keep the
 * generation they hold. 0 or -ENOMEM (the old generation stays).
 */
int reg_set_config(struct registry *r, const struct weft_config *cfg);
/* The TLS bundle for cross-node endpoints (ref taken; NULL: none). Set before reg_set_config. */
void reg_set_mtls(struct registry *r, struct mtls *m);
/* A reference to the current TLS bundle (may be NULL); mtls_unref it. */
struct mtls *reg_mtls_ref(struct registry *r);

/*
 * The service an intercepted connection dialled (the BPF record names it by
 * its index in the generation that filled weft_services; after a reload the
 * VIP decides). NULL: no service has this address any more. Lock held.
 */
struct svc *reg_find_svc_locked(struct registry *r, const struct weft_orig *o);
/* A service of this generation by name (HTTP backends). Lock held. */
struct svc *reg_find_name_locked(struct registry *r, const char *name, uint32_t hint);

/* Why a connection was refused by admission (reg_admit_locked). */
enum svc_admit {
	SVC_ADMIT_OK,
	SVC_ADMIT_AGENT_LIMIT,
	SVC_ADMIT_WORKLOAD_LIMIT,
	SVC_ADMIT_SERVICE_LIMIT,
	SVC_ADMIT_PENDING_LIMIT
};
/*
 * Checks agent.max_connections, the workload's share of it
 * (agent.max_connections_per_workload: the cgroup that dialled) and the
 * service's limits, counting a refusal. Lock held.
 */
enum svc_admit reg_admit_locked(struct registry *r, struct svc *s, uint64_t cgroup_id);
/* Connections this cgroup holds now (lock held). */
uint32_t reg_workload_active_locked(const struct registry *r, uint64_t cgroup_id);

/*
 * A connection of s from cgroup_id starts or ends being proxied, on any
 * path: counts it in registry.active, the service's active and the
 * workload's (lock held). begin returns -ENOMEM when the workload cannot be
 * tracked (then nothing was counted: refuse the connection).
 */
int reg_conn_begin_locked(struct registry *r, struct svc *s, uint64_t cgroup_id);
void reg_conn_end_locked(struct registry *r, struct svc *s, uint64_t cgroup_id);

/*
 * The receiving agent's admission of an mTLS connection from another node:
 * target must be a local endpoint of some service, and the caller's verified
 * identity allowed by that service's authorization. Returns an enum
 * preamble_status (PREAMBLE_ST_OK: *opts is the service's, the service's
 * name in svc_name).
 */
int reg_inbound_admit(struct registry *r, const struct weft_sockaddr *target, const char *peer_id, char *svc_name,
		      size_t len, struct svc_connopts *opts);

/* Connections being proxied, every path (takes the lock). */
size_t reg_active(struct registry *r);

/* References (lock held). */
static inline struct svc *svc_ref_locked(struct svc *s)
{
	s->refs++;
	return s;
}
void svc_unref_locked(struct registry *r, struct svc *s);
/* The same, taking the lock. */
void svc_unref(struct registry *r, struct svc *s);
static inline struct svc_ep *svc_ep_ref_locked(struct svc_ep *ep)
{
	ep->refs++;
	return ep;
}
void svc_ep_unref_locked(struct registry *r, struct svc_ep *ep);
void svc_ep_unref(struct registry *r, struct svc_ep *ep);

/* Records a connect latency in ep's histogram (lock held). */
void svc_ep_observe_connect(struct svc_ep *ep, double secs);
/*
 * Feeds an outcome of endpoint i to s's failure accrual; logs and names
 * ejections and readmissions (lock held).
 */
void svc_breaker(struct svc *s, int i, bool ok, double now, const char *why);
/* "ready", "probing", "ejected". */
const char *svc_ep_state_name(const struct svc_ep *ep);

#endif
