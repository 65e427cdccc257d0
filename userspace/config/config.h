/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * weftd's configuration: one libconfig file, parsed and validated completely
 * before anything uses it. A struct weft_config is immutable once returned;
 * reload builds a new one and swaps it in.
 * It may call: codec/http1, codec/identity, codec/lcfg, codec/epfile, codec/dnsmsg (name and zone
 * checks), lib/addr, lib/file, libconfig.
 */
#ifndef WEFT_CONFIG_H
#define WEFT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

/*
 * Size limits, checked by cfg_load (each is an error when exceeded). They bound
 * the work and memory a config can cause; the total of service addresses is
 * further bounded by the BPF map (WEFT_MAX_SERVICE_ADDRS).
 */
#define CFG_MAX_SERVICES 4096
#define CFG_MAX_SVC_ADDRS 256         /* addresses per service */
#define CFG_MAX_ENDPOINTS 1024        /* endpoints per service */
#define CFG_MAX_CGROUPS 4096          /* intercept.cgroups entries */
#define CFG_MAX_WORKERS 64            /* agent.workers */
#define CFG_MAX_ERRORS 1000           /* messages kept in struct cfg_errors (+1 "more" line) */
#define CFG_MAX_FILE_SIZE (16u << 20) /* bytes of config text */
#define CFG_MAX_SOURCES 16            /* endpoints_from entries per service */
#define CFG_MAX_DNS_SERVERS 8         /* agent.dns_servers */

enum cfg_fail_mode { CFG_FAIL_OPEN = 0, CFG_FAIL_CLOSED = 1 };
enum cfg_protocol { CFG_PROTO_TCP = 0, CFG_PROTO_HTTP, CFG_PROTO_HTTP2, CFG_PROTO_AUTO };
enum cfg_balancer { CFG_BAL_EWMA = 0, CFG_BAL_ROUND_ROBIN, CFG_BAL_LEAST_CONN };
enum cfg_log_level { CFG_LOG_ERROR = 0, CFG_LOG_WARN, CFG_LOG_INFO, CFG_LOG_DEBUG };

/* Where an endpoint came from (/services "source"): the config, or a discovery source. */
enum cfg_ep_source { CFG_EP_CONFIG = 0, CFG_EP_DNS, CFG_EP_DNS_SRV, CFG_EP_FILE, CFG_EP_KUBERNETES };

struct cfg_endpoint {
	struct weft_sockaddr addr;
	uint32_t weight; /* default 1, 1..1000 */
	bool has_node;
	uint8_t source;            /* enum cfg_ep_source */
	struct weft_sockaddr node; /* remote agent's inbound listener (mTLS) */
	const char *zone;  /* endpoints[].zone, NULL: none. Borrowed: the config's (weft_config.zones) or a source's */
	uint32_t priority; /* endpoints[].priority, 0 (0..65535): lower is preferred (failover) */
	int line;          /* config line, for messages */
};

/* services[].endpoints_from[]: one discovery source of a service's endpoints (disc/). */
enum cfg_family { CFG_FAMILY_ANY = 0, CFG_FAMILY_IPV4, CFG_FAMILY_IPV6 };
struct cfg_epsource {
	enum cfg_ep_source kind; /* CFG_EP_DNS, CFG_EP_DNS_SRV or CFG_EP_FILE */
	char *name;              /* dns / dns_srv: the name; file: the path */
	uint16_t port;           /* dns: every address's port (required) */
	enum cfg_family family;  /* dns, dns_srv: "any" (A and AAAA), "ipv4", "ipv6" */
	char *zone;              /* dns, dns_srv: every endpoint's zone (NULL: none) */
	uint32_t priority;       /* dns: every endpoint's priority, 0 */
	uint32_t weight;         /* dns: every endpoint's weight, 1 */
	uint32_t refresh_min_ms; /* dns, dns_srv: TTLs below this are raised to it, 1000 (100..3600000) */
	uint32_t refresh_max_ms; /* dns, dns_srv: TTLs above this are cut to it, 300000 (>= min, ..86400000) */
	int line;
};

struct cfg_identity {
	char *cgroup;     /* path or glob, like intercept.cgroups; matches descendants too */
	char *identity;   /* SPIFFE ID */
	char *cert, *key; /* this identity's certificate chain and key (PEM files); NULL: minted from tls.issuer_* */
	int line;
};

#define CFG_MAX_IDENTITIES 4096
#define CFG_MAX_ALLOW 256

/* HTTP routing (services[].routes): see docs/config.md "Routes". */
#define CFG_MAX_ROUTES 256       /* routes per service */
#define CFG_MAX_BACKENDS 32      /* backends per route */
#define CFG_MAX_ROUTE_HEADERS 32 /* match.headers, add, remove: entries each */
#define CFG_MAX_RETRY_STATUS 32  /* retry.on_status entries */

enum cfg_path_match { CFG_PATH_ANY = 0, CFG_PATH_EXACT, CFG_PATH_PREFIX };

struct cfg_header_kv {
	char *name;  /* field name, a token; stored lower-case */
	char *value; /* match: NULL = present with any value; add: the value */
};

struct cfg_backend {
	char *service;   /* name of a service in this config (may be the route's own) */
	uint32_t index;  /* that service's index in weft_config.services (resolved) */
	uint32_t weight; /* 0..1000, default 1; 0 = no traffic (a drained canary) */
	int line;
};

struct cfg_route {
	char *name; /* routes[i].name, default "route<i>"; unique in the service */
	/* match (all given conditions must hold; none given: matches everything) */
	char *method;                        /* match.method, exact and case-sensitive ("GET"); NULL = any */
	char *host;                          /* match.host, case-insensitive, port ignored; NULL = any */
	enum cfg_path_match path_kind;       /* match.path (exact) or match.path_prefix */
	char *path;                          /* compared with the request path before '?' */
	struct cfg_header_kv *match_headers; /* match.headers = ( { name; value (optional) } ) */
	size_t n_match_headers;
	/* action */
	struct cfg_backend *backends; /* backends = ( { service; weight } ); 0 entries: the service itself */
	size_t n_backends;
	uint32_t timeout_ms; /* timeout_ms: whole request incl. retries; default http.request_timeout_ms; 0 = none */
	bool retryable;      /* retryable: retry non-idempotent methods too (default false) */
	struct cfg_header_kv *add_headers; /* request_headers.add = ( { name; value } ): set (replaces) */
	size_t n_add_headers;
	char **remove_headers; /* request_headers.remove = [ "x-a" ]: lower-case names */
	size_t n_remove_headers;
	int line;
};

/*
 * Where a service comes from: the config file; the Kubernetes API
 * (kube/kmodel); or both: a config entry named like a discovered service
 * ("<namespace>/<service>:<port>") that sets its policy, the API giving its
 * addresses, endpoints and (unless the entry says) protocol.
 */
enum cfg_source { CFG_SRC_FILE = 0, CFG_SRC_KUBERNETES, CFG_SRC_OVERRIDE };

struct cfg_service {
	char *name; /* unique, [a-z0-9][a-z0-9._-]{0,62}; or "<ns>/<service>:<port>" (source not FILE) */
	enum cfg_source source;
	bool protocol_set;           /* the entry has a protocol key (an override keeps it) */
	struct weft_sockaddr *addrs; /* VIPs apps dial; each unique across all services */
	size_t n_addrs;
	enum cfg_protocol protocol; /* default tcp */
	enum cfg_balancer balancer; /* default ewma */
	struct cfg_endpoint *endpoints;
	size_t n_endpoints;           /* may be 0: connections are then reset */
	struct cfg_epsource *sources; /* endpoints_from: endpoints discovered (then n_endpoints is 0 in the file) */
	size_t n_sources;
	uint32_t overprov_pct;       /* failover.overprovisioning x 100, 140 (100..1000) */
	uint32_t connect_timeout_ms; /* timeouts.connect, default 1000 */
	uint32_t idle_timeout_ms;    /* timeouts.idle, default 0 = off */
	uint32_t retry_attempts;     /* retry.attempts: connect attempts in all, default 3 */
	/* circuit_breaker: failure accrual / outlier ejection (see balancer.h) */
	uint32_t cb_consecutive_failures; /* circuit_breaker.consecutive_failures, 5; 0 = never eject */
	uint32_t cb_base_ejection_ms;     /* circuit_breaker.base_ejection_ms, 5000 (100..3600000) */
	uint32_t cb_max_ejection_ms;      /* circuit_breaker.max_ejection_ms, 300000 (>= base, ..86400000) */
	uint32_t cb_max_ejection_percent; /* circuit_breaker.max_ejection_percent, 50 (0..100) */
	/* limits: shed load instead of queueing */
	/* authorization.allow: SPIFFE IDs or globs that may connect through mTLS (empty: any in the trust domain) */
	char **allow;
	size_t n_allow;
	uint32_t max_connections; /* limits.max_connections active per service, 10000 (1..1048576) */
	uint32_t max_pending;     /* limits.max_pending connects in progress per service, 1000 (1..1048576) */
	uint32_t max_requests; /* limits.max_requests HTTP requests in flight per service, 10000 (1..1048576): excess gets 503 */
	/* http: (protocol http or auto) */
	uint32_t detect_timeout_ms;  /* http.detect_timeout_ms, 100 (1..10000): auto gives up and goes opaque */
	uint32_t max_request_line;   /* http.max_request_line bytes, 8192 (256..1048576): 414 beyond */
	uint32_t max_header_bytes;   /* http.max_header_bytes, 65536 (1024..1048576): 431 beyond */
	uint32_t max_headers;        /* http.max_headers, 100 (8..1000): 431 beyond */
	uint32_t request_timeout_ms; /* http.request_timeout_ms, 0 = none (..3600000): default route timeout */
	uint32_t max_retry_body;     /* http.max_retry_body bytes buffered for retries, 65536 (0..16777216) */
	uint32_t pool_max_idle; /* http.pool_max_idle keep-alive upstream connections per endpoint and worker, 128 (0..10000) */
	uint32_t pool_idle_timeout_ms; /* http.pool_idle_timeout_ms, 30000 (100..3600000) */
	uint32_t head_timeout_ms; /* http.head_timeout_ms, 10000 (0 = none, ..3600000): a head must complete in it, else 408 (first: from accept) */
	uint32_t keepalive_idle_ms; /* http.keepalive_idle_ms, 60000 (0 = none, ..86400000): a client connection idle between requests closes */
	uint32_t stream_idle_ms; /* http.stream_idle_ms, 300000 (0 = none, ..86400000): a request with no bytes moving gets 504 or a reset */
	/* retry: (HTTP) */
	uint32_t retry_on_status[CFG_MAX_RETRY_STATUS]; /* retry.on_status, default 502, 503, 504 */
	size_t n_retry_on_status;
	double retry_budget_ratio;       /* retry.budget_ratio, 0.2 (0..1000): retries per request in the window */
	uint32_t retry_budget_min_per_s; /* retry.budget_min_per_s, 10 (0..100000) */
	uint32_t retry_budget_window_s;  /* retry.budget_window_s, 10 (1..60) */
	uint32_t retry_backoff_base_ms;  /* retry.backoff_base_ms, 25 (0..60000) */
	uint32_t retry_backoff_max_ms;   /* retry.backoff_max_ms, 250 (>= base, ..60000) */
	struct cfg_route *routes;        /* routes: first match wins; no match: the service's own endpoints */
	size_t n_routes;
	int line;
};

/* tracing: (top level; all optional; no collector: no export, headers still propagated) */
struct cfg_tracing {
	bool enabled;                   /* a collector is set */
	struct weft_sockaddr collector; /* tracing.collector "ip:port" of a Zipkin v2 HTTP collector */
	char *path;                     /* tracing.path, "/api/v2/spans" */
	char *service_name;             /* tracing.service_name, "weft" (localEndpoint.serviceName) */
	double sample_rate;             /* tracing.sample_rate, 1.0 (0..1): new traces sampled */
	uint32_t queue_size;            /* tracing.queue_size spans, 4096 (1..1048576): beyond, dropped and counted */
	uint32_t batch_size;            /* tracing.batch_size spans per POST, 100 (1..10000) */
	uint32_t flush_ms;              /* tracing.flush_ms, 1000 (10..60000) */
};

/* kubernetes: (top level; present = discover Services and EndpointSlices from the API) */
#define CFG_K8S_DEFAULT_TOKEN "/var/run/secrets/kubernetes.io/serviceaccount/token"
#define CFG_K8S_DEFAULT_CA "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
#define CFG_K8S_MAX_NAMESPACES 256
struct cfg_kubernetes {
	bool enabled; /* the group is there */
	char *api;    /* kubernetes.api "https://IP:PORT"; default from $KUBERNETES_SERVICE_HOST/_PORT */
	struct weft_sockaddr api_addr; /* its address (IP literals only: resolving would block) */
	char *token_file;              /* kubernetes.token_file, re-read at each request (rotation) */
	char *ca_file;                 /* kubernetes.ca_file: the API server's CA */
	char *node_name;               /* kubernetes.node_name, default $NODE_NAME */
	char **namespaces;             /* kubernetes.namespaces; none: all */
	size_t n_namespaces;
};

struct weft_config {
	char *path;
	uint64_t text_hash; /* FNV-1a of the text parsed: the metric weft_config_hash, with no second read */

	/* agent: */
	struct weft_sockaddr admin;   /* "127.0.0.1:9990" */
	uint16_t outbound_port;       /* 15001 */
	struct weft_sockaddr inbound; /* "0.0.0.0:4143" */
	char *bpf_pin_path;           /* "/sys/fs/bpf/weft" */
	enum cfg_fail_mode fail_mode; /* open */
	uint32_t heartbeat_stale_ms;  /* agent.heartbeat_stale_ms, 3000 (1000..60000) */
	uint32_t mark;                /* agent.mark, SO_MARK of agent sockets, 0x574546 ("WEF") */
	enum cfg_log_level log_level; /* agent.log_level, "info" */
	uint32_t log_rate_limit;      /* agent.log_rate_limit lines/s per message, 10 (0..100000; 0: no limit) */
	uint32_t max_connections;     /* agent.max_connections, 65536 */
	/* agent.max_connections_per_workload: connections one cgroup may hold; 0 in the file = a quarter of max_connections */
	uint32_t max_conns_per_workload;
	uint32_t buffer_memory_mb;           /* agent.buffer_memory_mb: budget for buffered HTTP bytes, 64 (1..65536) */
	uint32_t buffer_memory_workload_pct; /* agent.buffer_memory_per_workload_pct: one cgroup's share, 25 (1..100) */
	uint32_t buffer_size;                /* agent.buffer_size bytes per direction, 65536 (4096..4194304) */
	uint32_t drain_timeout_ms;           /* agent.drain_timeout_ms, 10000 */
	uint32_t workers;                    /* agent.workers event loops, 0 = one per CPU (0..CFG_MAX_WORKERS) */
	bool redirect_loopback;              /* agent.redirect_loopback: sk_msg fast path agent -> app, false */
	bool splice;                         /* agent.splice: splice(2) for opaque TCP bytes, true */
	bool strict_inbound;                 /* agent.strict_inbound: workloads accept TCP only via the agent, false */
	char *zone;                          /* agent.zone: this node's zone (locality failover), NULL: none */
	struct weft_sockaddr dns_servers[CFG_MAX_DNS_SERVERS]; /* agent.dns_servers; none: /etc/resolv.conf's */
	size_t n_dns_servers;
	uint32_t dns_timeout_ms; /* agent.dns_timeout_ms per try, 2000 (100..30000) */
	char **zones;            /* every endpoint zone name written in the file, once (endpoints point here) */
	size_t n_zones;

	/* intercept: */
	char **cgroups; /* paths (absolute, or relative to the cgroup2 mount) or globs */
	size_t n_cgroups;

	struct cfg_service *services;
	size_t n_services;

	/* tls: (paths, checked for readability when set) */
	char *tls_ca, *tls_cert, *tls_key;
	char *tls_trust_domain;                 /* tls.trust_domain, NULL: the node certificate's */
	uint32_t tls_handshake_timeout_ms;      /* tls.handshake_timeout_ms, 5000 (100..60000) */
	uint32_t tls_max_handshakes;            /* tls.max_handshakes in progress on agent.inbound, 256 (1..65536) */
	char *tls_issuer_cert, *tls_issuer_key; /* tls.issuer_cert/issuer_key: mint identity certificates */
	uint32_t tls_cert_lifetime_s;           /* tls.cert_lifetime_s of minted certificates, 86400 (300..31622400) */

	struct cfg_tracing tracing;
	struct cfg_kubernetes kubernetes;

	/* identities: which workload identity a cgroup has (first match wins) */
	struct cfg_identity *identities;
	size_t n_identities;
};

/*
 * Error sink: each problem is one line "FILE:LINE: path.to.key: what is wrong
 * and how to fix it" (FILE alone when no line applies). cfg_load collects every
 * problem it can find rather than stopping at the first.
 */
struct cfg_errors {
	char **msgs;
	size_t n;
};
void cfg_errors_free(struct cfg_errors *e);

/*
 * Parse and validate path. On success returns 0 and *out (caller frees with
 * cfg_free). On failure returns -EINVAL (or -ENOENT etc. for unreadable files)
 * with at least one message in errs and *out untouched. Messages are appended
 * to what errs already holds, sorted by line; errs may be NULL.
 */
int cfg_load(const char *path, struct weft_config **out, struct cfg_errors *errs);
/* Same, from an in-memory buffer (tests, fuzzing); name is used in messages. */
int cfg_load_string(const char *text, const char *name, struct weft_config **out, struct cfg_errors *errs);
void cfg_free(struct weft_config *c);
/* Sets every per-service default (what a service without that key gets); name, addresses and endpoints untouched. */
void cfg_service_defaults(struct cfg_service *svc);

/*
 * agent.max_connections_per_workload in force: as written, or (0, the
 * default) a quarter of agent.max_connections, so that one workload can
 * never take every slot.
 */
static inline uint32_t cfg_workload_cap(const struct weft_config *c)
{
	if (c->max_conns_per_workload)
		return c->max_conns_per_workload;
	return c->max_connections / 4 ? c->max_connections / 4 : 1;
}

/* "config", "kubernetes", "kubernetes+config": /services' source. */
const char *cfg_source_name(enum cfg_source s);
/* "config", "dns", "dns_srv", "file", "kubernetes": an endpoint's source. */
const char *cfg_ep_source_name(enum cfg_ep_source s);
const char *cfg_family_name(enum cfg_family f);
const char *cfg_protocol_name(enum cfg_protocol p);
const char *cfg_balancer_name(enum cfg_balancer b);
const char *cfg_fail_mode_name(enum cfg_fail_mode m);
const char *cfg_log_level_name(enum cfg_log_level l);

#endif
