// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weftd's configuration: libconfig text -> struct weft_config, validated in
 * full. The rules every key follows are in docs/config.md; this file is the
 * one place that enforces them.
 *
 * How it works:
 *  1. cfg_prescan() refuses @include (one file is the contract, and a parser
 *     fed from a fuzzer or a ConfigMap must not open other files) and works
 *     around libconfig 1.5 silently wrapping integer literals that do not fit
 *     in 32 bits (4294967297 reads as 1): such literals get an 'L' suffix so
 *     libconfig reads them as 64-bit and the range checks see the real value.
 *  2. libconfig parses; its syntax errors end the load (there is no tree).
 *  3. The tree is walked once against the schema below. Every problem is
 *     recorded and the walk goes on, so one run of `weftd --check` shows
 *     everything that is wrong. Cross-entry checks (duplicates) use small
 *     hash sets, O(n) in the number of entries. Route backends name
 *     services, so they are resolved to indices once every service is known.
 *  4. Messages are sorted by line, like a compiler's.
 *
 * Messages are "FILE:LINE: path.to.key: what is wrong; how to fix it", one
 * line each (control characters in echoed input become '?', long input is
 * cut to CFG_ECHO_MAX bytes).
 */
#include "config/config.h"

#include "codec/http1.h"
#include "codec/dnsmsg.h"
#include "codec/epfile.h"
#include "codec/identity.h"
#include "codec/lcfg.h"
#include "lib/file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest piece of user input quoted back in a message. */
#define CFG_ECHO_MAX 64
#define CFG_ECHO_BUF (CFG_ECHO_MAX + 4)
/* Key paths we build ourselves: "services[4095].endpoints[1023]" and the like. */
#define CFG_PATH_BUF 96
/* Names longer than this are not worth a "did you mean". */
#define CFG_SUGGEST_MAX 64
/* "did you mean" searches over all service names per load (each O(services)). */
#define CFG_SUGGEST_SEARCHES 16
#define CFG_NAME_MAX 63
#define CFG_PIN_PATH_MAX 199
#define CFG_CGROUP_MAX 4095

static const char *const proto_names[] = { "tcp", "http", "http2", "auto" };
static const char *const bal_names[] = { "ewma", "round-robin", "least-conn" };
static const char *const fail_names[] = { "open", "closed" };
static const char *const level_names[] = { "error", "warn", "info", "debug" };

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const root_keys[] = { "agent",      "intercept", "services",   "tls",
					 "identities", "tracing",   "kubernetes", NULL };
static const char *const agent_keys[] = {
	"admin",
	"outbound_port",
	"inbound",
	"bpf_pin_path",
	"fail_mode",
	"heartbeat_stale_ms",
	"mark",
	"log_level",
	"max_connections",
	"max_connections_per_workload",
	"buffer_memory_mb",
	"buffer_memory_per_workload_pct",
	"buffer_size",
	"drain_timeout_ms",
	"workers",
	"redirect_loopback",
	"splice",
	"strict_inbound",
	"log_rate_limit",
	"zone",
	"dns_servers",
	"dns_timeout_ms",
	NULL,
};
static const char *const intercept_keys[] = { "cgroups", NULL };
static const char *const service_keys[] = {
	"name",     "addresses", "protocol",       "balancer",        "endpoints",
	"timeouts", "retry",     "authorization",  "circuit_breaker", "limits",
	"http",     "routes",    "endpoints_from", "failover",        NULL,
};
static const char *const endpoint_keys[] = { "address", "weight", "node", "zone", "priority", NULL };
static const char *const epsource_keys[] = {
	"dns",    "dns_srv",  "file",           "port",           "family", "zone",
	"weight", "priority", "refresh_min_ms", "refresh_max_ms", NULL,
};
static const char *const failover_keys[] = { "overprovisioning", NULL };
static const char *const family_names[] = { "any", "ipv4", "ipv6" };
static const char *const timeouts_keys[] = { "connect_ms", "idle_ms", NULL };
static const char *const retry_keys[] = {
	"attempts",        "on_status",       "budget_ratio",   "budget_min_per_s",
	"budget_window_s", "backoff_base_ms", "backoff_max_ms", NULL,
};
static const char *const breaker_keys[] = {
	"consecutive_failures", "base_ejection_ms", "max_ejection_ms", "max_ejection_percent", NULL,
};
static const char *const limits_keys[] = { "max_connections", "max_pending", "max_requests", NULL };
static const char *const http_keys[] = {
	"detect_timeout_ms",  "max_request_line",  "max_header_bytes", "max_headers",
	"request_timeout_ms", "max_retry_body",    "pool_max_idle",    "pool_idle_timeout_ms",
	"head_timeout_ms",    "keepalive_idle_ms", "stream_idle_ms",   NULL,
};
static const char *const route_keys[] = { "name",      "match",           "backends", "timeout_ms",
					  "retryable", "request_headers", NULL };
static const char *const match_keys[] = { "method", "host", "path", "path_prefix", "headers", NULL };
static const char *const header_kv_keys[] = { "name", "value", NULL };
static const char *const backend_keys[] = { "service", "weight", NULL };
static const char *const req_headers_keys[] = { "add", "remove", NULL };
static const char *const tracing_keys[] = {
	"collector", "path", "service_name", "sample_rate", "queue_size", "batch_size", "flush_ms", NULL,
};
static const char *const kubernetes_keys[] = { "api", "token_file", "ca_file", "node_name", "namespaces", NULL };
static const char *const tls_keys[] = { "ca",
					"cert",
					"key",
					"trust_domain",
					"handshake_timeout_ms",
					"max_handshakes",
					"issuer_cert",
					"issuer_key",
					"cert_lifetime_s",
					NULL };
static const char *const identity_keys[] = { "cgroup", "identity", "cert", "key", NULL };
static const char *const authz_keys[] = { "allow", NULL };

const char *cfg_protocol_name(enum cfg_protocol p)
{
	return (unsigned)p < N_ELEMS(proto_names) ? proto_names[p] : "?";
}

const char *cfg_source_name(enum cfg_source src)
{
	static const char *const names[] = { "config", "kubernetes", "kubernetes+config" };

	return (unsigned)src < N_ELEMS(names) ? names[src] : "?";
}

const char *cfg_ep_source_name(enum cfg_ep_source src)
{
	static const char *const names[] = { "config", "dns", "dns_srv", "file", "kubernetes" };

	return (unsigned)src < N_ELEMS(names) ? names[src] : "?";
}

const char *cfg_family_name(enum cfg_family f)
{
	return (unsigned)f < N_ELEMS(family_names) ? family_names[f] : "?";
}

const char *cfg_balancer_name(enum cfg_balancer b)
{
	return (unsigned)b < N_ELEMS(bal_names) ? bal_names[b] : "?";
}

const char *cfg_fail_mode_name(enum cfg_fail_mode m)
{
	return (unsigned)m < N_ELEMS(fail_names) ? fail_names[m] : "?";
}

const char *cfg_log_level_name(enum cfg_log_level l)
{
	return (unsigned)l < N_ELEMS(level_names) ? level_names[l] : "?";
}

/* --- error sink ------------------------------------------------------------ */

void cfg_errors_free(struct cfg_errors *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
}

/* Takes ownership of msg (freed on failure). */
static int errs_push(struct cfg_errors *e, char *msg)
{
	char **m;

	m = realloc(e->msgs, (e->n + 1) * sizeof(*m));
	if (!m) {
		free(msg);
		return -ENOMEM;
	}
	e->msgs = m;
	e->msgs[e->n++] = msg;
	return 0;
}

/* Messages must stay one line whatever bytes the config held. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* For file-level problems found before there is any parse context. */
static int errs_addf(struct cfg_errors *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int errs_addf(struct cfg_errors *e, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	one_line(msg);
	return errs_push(e, msg);
}

struct cfg_ctx {
	const char *name; /* file name used in messages */
	struct cfg_errors *errs;
	size_t first;    /* errs->msgs[first..] are this load's */
	unsigned *lines; /* line of each of them, for sorting (CFG_MAX_ERRORS) */
	size_t n_lines;
	size_t n_problems; /* found, whether or not the message was kept */
	bool more;         /* the "more errors" line was added */
	bool oom;
	bool tls_group;          /* a tls group was written (even with errors) */
	unsigned collector_line; /* line of a valid tracing.collector, 0 if none */
	unsigned n_suggest;      /* "did you mean" searches over service names so far */
	struct weft_config *c;
};

static void cfg_err(struct cfg_ctx *x, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cfg_err(struct cfg_ctx *x, unsigned line, const char *fmt, ...)
{
	char *body = NULL, *msg = NULL;
	va_list ap;
	int r;

	x->n_problems++;
	if (x->errs->n >= CFG_MAX_ERRORS || x->n_lines >= CFG_MAX_ERRORS) {
		if (!x->more) {
			x->more = true;
			msg = strdup("... more errors not shown");
			if (!msg || errs_push(x->errs, msg))
				x->oom = true;
		}
		return;
	}
	va_start(ap, fmt);
	r = vasprintf(&body, fmt, ap);
	va_end(ap);
	if (r < 0)
		goto oom;
	if (line)
		r = asprintf(&msg, "%s:%u: %s", x->name, line, body);
	else
		r = asprintf(&msg, "%s: %s", x->name, body);
	free(body);
	if (r < 0)
		goto oom;
	one_line(msg);
	if (errs_push(x->errs, msg))
		goto oom;
	x->lines[x->n_lines++] = line;
	return;
oom:
	x->oom = true;
}

/*
 * Stable insertion sort of this load's messages by line (messages without a
 * line first). n <= CFG_MAX_ERRORS, and messages mostly arrive in order.
 */
static void cfg_sort_errors(struct cfg_ctx *x)
{
	char **m;
	size_t i, j;

	if (x->oom || x->n_lines < 2)
		return;
	m = x->errs->msgs + x->first;
	for (i = 1; i < x->n_lines; i++) {
		unsigned l = x->lines[i];
		char *s = m[i];

		for (j = i; j > 0 && x->lines[j - 1] > l; j--) {
			x->lines[j] = x->lines[j - 1];
			m[j] = m[j - 1];
		}
		x->lines[j] = l;
		m[j] = s;
	}
}

/* --- small helpers ----------------------------------------------------------- */

static unsigned line_of(const config_setting_t *s)
{
	return s ? config_setting_source_line(s) : 0;
}

/* Copy user text for quoting in a message: cut at CFG_ECHO_MAX bytes. */
static const char *echo(const char *s, char *buf)
{
	size_t n = strnlen(s, CFG_ECHO_MAX + 1);

	if (n > CFG_ECHO_MAX) {
		memcpy(buf, s, CFG_ECHO_MAX);
		memcpy(buf + CFG_ECHO_MAX, "...", 4);
	} else {
		memcpy(buf, s, n + 1);
	}
	return buf;
}

static const char *type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array [...]";
	case CONFIG_TYPE_LIST:
		return "a list (...)";
	case CONFIG_TYPE_GROUP:
		return "a group {...}";
	default:
		return "nothing";
	}
}

static bool is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

/* Paths fit CFG_PATH_BUF by construction; should one not, it shows. */
static const char *mark_cut(char *buf, size_t n, int r)
{
	if (r < 0 || (size_t)r >= n)
		memcpy(buf + n - 4, "...", 4);
	return buf;
}

/* "a.b" from "a" and "b"; the root's members have no prefix. */
static const char *join(char *buf, size_t n, const char *path, const char *key)
{
	return mark_cut(buf, n, snprintf(buf, n, "%s%s%s", path, *path ? "." : "", key));
}

/* "a.b[i]", or "a[i]" when key is "". */
static const char *join_idx(char *buf, size_t n, const char *path, const char *key, size_t i)
{
	return mark_cut(buf, n, snprintf(buf, n, "%s%s%s[%zu]", path, *path && *key ? "." : "", key, i));
}

/*
 * Optimal string alignment distance (edits: insert, delete, substitute, swap
 * two neighbours), case-insensitive. Both strings are at most CFG_SUGGEST_MAX
 * bytes (callers check).
 */
static unsigned edit_distance(const char *a, const char *b)
{
	unsigned d[CFG_SUGGEST_MAX + 1][CFG_SUGGEST_MAX + 1];
	size_t la = strlen(a), lb = strlen(b), i, j;

	for (i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
			unsigned best = d[i - 1][j - 1] + (ca != cb);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

static bool in_list(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(name, *list))
			return true;
	return false;
}

/* Report every member of grp not in known, suggesting the closest known key. */
static void check_keys(struct cfg_ctx *x, const config_setting_t *grp, const char *path, const char *const *known)
{
	char eb[CFG_ECHO_BUF], valid[1024];
	int i, n = config_setting_length(grp);

	for (i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(grp, (unsigned)i);
		const char *name = config_setting_name(m), *best = NULL;
		const char *const *k;
		unsigned bd = ~0u;
		size_t off = 0;

		if (!name || in_list(name, known))
			continue;
		if (strlen(name) <= CFG_SUGGEST_MAX) {
			for (k = known; *k; k++) {
				unsigned d = edit_distance(name, *k);

				if (d < bd) {
					bd = d;
					best = *k;
				}
			}
		}
		/* Close enough to be a typo: one edit for short keys, two for longer. */
		if (best && bd <= (strlen(best) <= 4 ? 1u : 2u)) {
			cfg_err(x, line_of(m), "%s%s%s: unknown key; did you mean '%s'?", path, *path ? "." : "",
				echo(name, eb), best);
			continue;
		}
		valid[0] = '\0';
		for (k = known; *k && off < sizeof(valid); k++)
			off += (size_t)snprintf(valid + off, sizeof(valid) - off, "%s%s", k == known ? "" : ", ", *k);
		cfg_err(x, line_of(m), "%s%s%s: unknown key; valid keys are %s", path, *path ? "." : "", echo(name, eb),
			valid);
	}
}

/* Member key of grp if it is a group; NULL (with a message if it is something else) otherwise. */
static const config_setting_t *get_group(struct cfg_ctx *x, const config_setting_t *grp, const char *path,
					 const char *key)
{
	const config_setting_t *s = config_setting_get_member(grp, key);
	char p[CFG_PATH_BUF];

	if (!s || config_setting_type(s) == CONFIG_TYPE_GROUP)
		return s;
	cfg_err(x, line_of(s), "%s: expected a group {...}, got %s; write %s = { ... };", join(p, sizeof(p), path, key),
		type_name(s), key);
	return NULL;
}

/*
 * Optional integer member in [min, max]; *out keeps its default when the key
 * is absent or wrong. Returns the setting (for its line) when present.
 */
static const config_setting_t *get_int(struct cfg_ctx *x, const config_setting_t *grp, const char *path,
				       const char *key, long long min, long long max, uint32_t *out)
{
	const config_setting_t *s = config_setting_get_member(grp, key);
	char p[CFG_PATH_BUF];
	long long v;

	if (!s)
		return NULL;
	join(p, sizeof(p), path, key);
	if (!is_int(s)) {
		cfg_err(x, line_of(s), "%s: expected an integer, got %s", p, type_name(s));
		return s;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		if (config_setting_get_format(s) == CONFIG_FORMAT_HEX && v >= 0)
			cfg_err(x, line_of(s), "%s: %#llx is out of range (%#llx-%#llx)", p, v, min, max);
		else
			cfg_err(x, line_of(s), "%s: %lld is out of range (%lld-%lld)", p, v, min, max);
		return s;
	}
	*out = (uint32_t)v;
	return s;
}

/*
 * Optional number member, an integer or a float (ratios: "1" and "1.0" both
 * read as one), in [min, max]; *out keeps its default when absent or wrong.
 * NaN is out of every range.
 */
static const config_setting_t *get_number(struct cfg_ctx *x, const config_setting_t *grp, const char *path,
					  const char *key, double min, double max, double *out)
{
	const config_setting_t *s = config_setting_get_member(grp, key);
	char p[CFG_PATH_BUF];
	double v;

	if (!s)
		return NULL;
	join(p, sizeof(p), path, key);
	if (is_int(s)) {
		v = (double)config_setting_get_int64(s);
	} else if (config_setting_type(s) == CONFIG_TYPE_FLOAT) {
		v = config_setting_get_float(s);
	} else {
		cfg_err(x, line_of(s), "%s: expected a number, got %s", p, type_name(s));
		return s;
	}
	if (!(v >= min && v <= max)) {
		cfg_err(x, line_of(s), "%s: %g is out of range (%g-%g)", p, v, min, max);
		return s;
	}
	*out = v;
	return s;
}

/* Optional boolean member (true/false); *out keeps its default when absent or wrong. */
static void get_bool(struct cfg_ctx *x, const config_setting_t *grp, const char *path, const char *key, bool *out)
{
	const config_setting_t *s = config_setting_get_member(grp, key);
	char p[CFG_PATH_BUF];

	if (!s)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		cfg_err(x, line_of(s), "%s: expected true or false, got %s", join(p, sizeof(p), path, key),
			type_name(s));
		return;
	}
	*out = config_setting_get_bool(s);
}

/* Optional string member; NULL when absent or not a string (with a message). */
static const char *get_str(struct cfg_ctx *x, const config_setting_t *grp, const char *path, const char *key,
			   const config_setting_t **setting)
{
	const config_setting_t *s = config_setting_get_member(grp, key);
	char p[CFG_PATH_BUF];

	*setting = s;
	if (!s)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_err(x, line_of(s), "%s: expected a string, got %s", join(p, sizeof(p), path, key), type_name(s));
		return NULL;
	}
	return config_setting_get_string(s);
}

/* Optional string member that must be one of names[0..n); *out is its index. */
static void get_enum(struct cfg_ctx *x, const config_setting_t *grp, const char *path, const char *key,
		     const char *const *names, size_t n, int *out)
{
	char p[CFG_PATH_BUF], eb[CFG_ECHO_BUF], valid[128];
	const config_setting_t *s;
	const char *v = get_str(x, grp, path, key, &s);
	size_t i, off = 0;

	if (!v)
		return;
	for (i = 0; i < n; i++) {
		if (!strcmp(v, names[i])) {
			*out = (int)i;
			return;
		}
	}
	valid[0] = '\0';
	for (i = 0; i < n && off < sizeof(valid); i++)
		off += (size_t)snprintf(valid + off, sizeof(valid) - off, "%s\"%s\"", i ? ", " : "", names[i]);
	cfg_err(x, line_of(s), "%s: unknown value '%s'; valid values are %s", join(p, sizeof(p), path, key),
		echo(v, eb), valid);
}

/* Parse an "ip:port" string setting s (at path p) into out; false with a message if it is not one. */
static bool parse_addr(struct cfg_ctx *x, const config_setting_t *s, const char *p, struct weft_sockaddr *out)
{
	char why[256];

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_err(x, line_of(s), "%s: expected a string \"ip:port\", got %s", p, type_name(s));
		return false;
	}
	if (addr_parse(config_setting_get_string(s), false, out, why, sizeof(why))) {
		cfg_err(x, line_of(s), "%s: %s", p, why);
		return false;
	}
	return true;
}

/* Optional "ip:port" member; returns the setting if present (valid or not). */
static const config_setting_t *get_addr(struct cfg_ctx *x, const config_setting_t *grp, const char *path,
					const char *key, struct weft_sockaddr *out, bool *ok)
{
	const config_setting_t *s = config_setting_get_member(grp, key);
	char p[CFG_PATH_BUF];
	struct weft_sockaddr a;

	*ok = false;
	if (!s)
		return NULL;
	if (parse_addr(x, s, join(p, sizeof(p), path, key), &a)) {
		*out = a;
		*ok = true;
	}
	return s;
}

/* Array or list member whose elements are then checked one by one. */
static const config_setting_t *get_seq(struct cfg_ctx *x, const config_setting_t *grp, const char *path,
				       const char *key, const char *hint)
{
	const config_setting_t *s = config_setting_get_member(grp, key);
	char p[CFG_PATH_BUF];

	if (!s || config_setting_type(s) == CONFIG_TYPE_ARRAY || config_setting_type(s) == CONFIG_TYPE_LIST)
		return s;
	cfg_err(x, line_of(s), "%s: expected an array [...], got %s; write %s = %s;", join(p, sizeof(p), path, key),
		type_name(s), key, hint);
	return NULL;
}

/* --- duplicate detection ---------------------------------------------------- */

/*
 * Open-addressing set of pointers to addresses or strings that live in the
 * config being built (stable: arrays there are sized once). Remembers who
 * added each entry first and on which line, for the message.
 */
enum seen_kind { SEEN_ADDR, SEEN_STR };

struct seen_entry {
	const void *obj; /* NULL: empty slot */
	size_t owner;
	unsigned line;
};

struct seen {
	enum seen_kind kind;
	struct seen_entry *e;
	size_t cap; /* power of two, or 0 */
	size_t n;
};

static uint64_t seen_hash(enum seen_kind kind, const void *obj)
{
	const unsigned char *p;
	struct weft_addr key;
	uint64_t h = 14695981039346656037ull; /* FNV-1a */
	size_t len, i;

	if (kind == SEEN_ADDR) {
		addr_to_key(obj, &key);
		p = (const unsigned char *)&key;
		len = sizeof(key);
	} else {
		p = obj;
		len = strlen(obj);
	}
	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static bool seen_eq(enum seen_kind kind, const void *a, const void *b)
{
	return kind == SEEN_ADDR ? addr_equal(a, b) : !strcmp(a, b);
}

static const struct seen_entry *seen_find(const struct seen *t, const void *obj)
{
	size_t i;

	if (!t->cap)
		return NULL;
	for (i = seen_hash(t->kind, obj) & (t->cap - 1); t->e[i].obj; i = (i + 1) & (t->cap - 1))
		if (seen_eq(t->kind, t->e[i].obj, obj))
			return &t->e[i];
	return NULL;
}

static void seen_put(struct seen_entry *e, size_t cap, enum seen_kind kind, const struct seen_entry *v)
{
	size_t i;

	for (i = seen_hash(kind, v->obj) & (cap - 1); e[i].obj; i = (i + 1) & (cap - 1))
		;
	e[i] = *v;
}

/*
 * Returns the earlier entry equal to obj, or NULL after adding obj. The
 * returned pointer is valid until the next seen_add. On allocation failure
 * sets x->oom and returns NULL.
 */
static const struct seen_entry *seen_add(struct cfg_ctx *x, struct seen *t, const void *obj, size_t owner,
					 unsigned line)
{
	const struct seen_entry *old = seen_find(t, obj);
	struct seen_entry v = { .obj = obj, .owner = owner, .line = line };

	if (old)
		return old;
	if ((t->n + 1) * 2 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16, i;
		struct seen_entry *e = calloc(cap, sizeof(*e));

		if (!e) {
			x->oom = true;
			return NULL;
		}
		for (i = 0; i < t->cap; i++)
			if (t->e[i].obj)
				seen_put(e, cap, t->kind, &t->e[i]);
		free(t->e);
		t->e = e;
		t->cap = cap;
	}
	seen_put(t->e, t->cap, t->kind, &v);
	t->n++;
	return NULL;
}

static void seen_free(struct seen *t)
{
	free(t->e);
	t->e = NULL;
	t->cap = t->n = 0;
}

/* --- agent ------------------------------------------------------------------- */

static bool addr_is_any(const struct weft_sockaddr *a)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == htonl(INADDR_ANY);
	return a->sa.sa_family == AF_INET6 && !memcmp(&a->in6.sin6_addr, &any6, sizeof(any6));
}

/* Would a listener on a collide with weftd's loopback outbound listener? */
static bool addr_is_loopback_or_any(const struct weft_sockaddr *a)
{
	if (addr_is_any(a))
		return true;
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == htonl(INADDR_LOOPBACK);
	return a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&a->in6.sin6_addr);
}

/*
 * bpf_pin_path is joined with map and program names by libbpf and by
 * operators' bpftool commands: it must be a plain absolute path. Returns what
 * is wrong, or NULL. (That it lies on a bpffs is checked when weftd pins.)
 */
static const char *pin_path_problem(const char *p)
{
	const char *c;

	if (p[0] != '/')
		return "is not an absolute path; write it as /sys/fs/bpf/<name>";
	if (strlen(p) > CFG_PIN_PATH_MAX)
		return "is too long (the limit is 199 characters)";
	for (c = p; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return "contains a space or control character";
	if (p[1] == '\0' || p[strlen(p) - 1] == '/')
		return "ends with '/'; name the directory without it, e.g. /sys/fs/bpf/weft";
	if (strstr(p, "//") || strstr(p, "/./") || strstr(p, "/../") || !strcmp(p + strlen(p) - 2, "/.") ||
	    (strlen(p) >= 3 && !strcmp(p + strlen(p) - 3, "/..")))
		return "has an empty, '.' or '..' component; write a plain path such as /sys/fs/bpf/weft";
	return NULL;
}

/* agent.dns_servers = [ "ip:port", ... ]: where DNS discovery asks (none: /etc/resolv.conf's). */
static void parse_dns_servers(struct cfg_ctx *x, const config_setting_t *g)
{
	const config_setting_t *l = get_seq(x, g, "agent", "dns_servers", "[ \"127.0.0.53:53\" ]");
	struct weft_config *c = x->c;
	char p[CFG_PATH_BUF];
	size_t i, n;

	if (!l)
		return;
	n = (size_t)config_setting_length(l);
	if (n > CFG_MAX_DNS_SERVERS) {
		cfg_err(x, line_of(l), "agent.dns_servers: %zu entries; at most %d are used", n, CFG_MAX_DNS_SERVERS);
		n = CFG_MAX_DNS_SERVERS;
	}
	for (i = 0; i < n; i++) {
		join_idx(p, sizeof(p), "agent", "dns_servers", i);
		if (parse_addr(x, config_setting_get_elem(l, (unsigned)i), p, &c->dns_servers[c->n_dns_servers]))
			c->n_dns_servers++;
	}
}

static void parse_agent(struct cfg_ctx *x, const config_setting_t *root)
{
	const config_setting_t *g = get_group(x, root, "", "agent"), *s_admin, *s_in, *s_out, *s;
	struct weft_config *c = x->c;
	uint32_t v;
	char eb[CFG_ECHO_BUF], ab[ADDR_STRLEN], bb[ADDR_STRLEN];
	const char *str, *why;
	bool ok_admin, ok_in;
	int e;

	if (!g)
		return;
	check_keys(x, g, "agent", agent_keys);
	s_admin = get_addr(x, g, "agent", "admin", &c->admin, &ok_admin);
	v = c->outbound_port;
	s_out = get_int(x, g, "agent", "outbound_port", 1, 65535, &v);
	c->outbound_port = (uint16_t)v;
	s_in = get_addr(x, g, "agent", "inbound", &c->inbound, &ok_in);

	str = get_str(x, g, "agent", "bpf_pin_path", &s);
	if (str && (why = pin_path_problem(str))) {
		cfg_err(x, line_of(s), "agent.bpf_pin_path: '%s' %s", echo(str, eb), why);
	} else if (str) {
		char *dup = strdup(str);

		if (!dup) {
			x->oom = true;
		} else {
			free(c->bpf_pin_path);
			c->bpf_pin_path = dup;
		}
	}

	e = (int)c->fail_mode;
	get_enum(x, g, "agent", "fail_mode", fail_names, N_ELEMS(fail_names), &e);
	c->fail_mode = (enum cfg_fail_mode)e;
	e = (int)c->log_level;
	get_enum(x, g, "agent", "log_level", level_names, N_ELEMS(level_names), &e);
	c->log_level = (enum cfg_log_level)e;
	get_int(x, g, "agent", "heartbeat_stale_ms", 1000, 60000, &c->heartbeat_stale_ms);
	get_int(x, g, "agent", "mark", 1, 0x7fffffff, &c->mark);
	get_int(x, g, "agent", "max_connections", 1, 1048576, &c->max_connections);
	get_int(x, g, "agent", "max_connections_per_workload", 0, 1048576, &c->max_conns_per_workload);
	get_int(x, g, "agent", "buffer_memory_mb", 1, 65536, &c->buffer_memory_mb);
	get_int(x, g, "agent", "buffer_memory_per_workload_pct", 1, 100, &c->buffer_memory_workload_pct);
	get_int(x, g, "agent", "buffer_size", 4096, 4194304, &c->buffer_size);
	get_int(x, g, "agent", "drain_timeout_ms", 0, 600000, &c->drain_timeout_ms);
	get_int(x, g, "agent", "workers", 0, CFG_MAX_WORKERS, &c->workers);
	get_bool(x, g, "agent", "redirect_loopback", &c->redirect_loopback);
	get_bool(x, g, "agent", "splice", &c->splice);
	get_bool(x, g, "agent", "strict_inbound", &c->strict_inbound);
	get_int(x, g, "agent", "log_rate_limit", 0, 100000, &c->log_rate_limit);
	str = get_str(x, g, "agent", "zone", &s);
	if (str && (why = ep_zone_problem(str))) {
		cfg_err(x, line_of(s), "agent.zone: '%s' %s; write this node's zone, e.g. \"eu-west-1a\"",
			echo(str, eb), why);
	} else if (str) {
		free(c->zone);
		c->zone = strdup(str);
		if (!c->zone)
			x->oom = true;
	}
	parse_dns_servers(x, g);
	get_int(x, g, "agent", "dns_timeout_ms", 100, 30000, &c->dns_timeout_ms);

	/* Listeners that could not both bind: only worth saying when one of them was written here. */
	if ((s_admin && !ok_admin) || (s_in && !ok_in))
		return;
	if ((s_admin || s_in) && addr_port(&c->admin) == addr_port(&c->inbound) &&
	    (addr_equal(&c->admin, &c->inbound) || addr_is_any(&c->admin) || addr_is_any(&c->inbound))) {
		if (s_in)
			cfg_err(x, line_of(s_in),
				"agent.inbound: %s clashes with agent.admin %s; give each listener its own port",
				addr_format(&c->inbound, ab, sizeof(ab)), addr_format(&c->admin, bb, sizeof(bb)));
		else
			cfg_err(x, line_of(s_admin),
				"agent.admin: %s clashes with agent.inbound %s; give each listener its own port",
				addr_format(&c->admin, ab, sizeof(ab)), addr_format(&c->inbound, bb, sizeof(bb)));
	}
	if ((s_admin || s_out) && addr_port(&c->admin) == c->outbound_port && addr_is_loopback_or_any(&c->admin))
		cfg_err(x, line_of(s_admin ? s_admin : s_out),
			"agent.admin: %s clashes with agent.outbound_port %u (weftd listens on loopback there); give each listener its own port",
			addr_format(&c->admin, ab, sizeof(ab)), (unsigned)c->outbound_port);
	if ((s_in || s_out) && addr_port(&c->inbound) == c->outbound_port && addr_is_loopback_or_any(&c->inbound))
		cfg_err(x, line_of(s_in ? s_in : s_out),
			"agent.inbound: %s clashes with agent.outbound_port %u (weftd listens on loopback there); give each listener its own port",
			addr_format(&c->inbound, ab, sizeof(ab)), (unsigned)c->outbound_port);
}

/* --- intercept --------------------------------------------------------------- */

static void parse_intercept(struct cfg_ctx *x, const config_setting_t *root)
{
	const config_setting_t *g = get_group(x, root, "", "intercept"), *l;
	struct weft_config *c = x->c;
	struct seen seen = { .kind = SEEN_STR };
	char p[CFG_PATH_BUF], q[CFG_PATH_BUF], eb[CFG_ECHO_BUF];
	size_t i, n;

	if (!g)
		return;
	check_keys(x, g, "intercept", intercept_keys);
	l = get_seq(x, g, "intercept", "cgroups", "[ \"system.slice/app.service\" ]");
	if (!l)
		return;
	n = (size_t)config_setting_length(l);
	if (n > CFG_MAX_CGROUPS) {
		cfg_err(x, line_of(l),
			"intercept.cgroups: %zu entries; at most %d are supported (use globs to cover many cgroups)", n,
			CFG_MAX_CGROUPS);
		n = CFG_MAX_CGROUPS;
	}
	if (!n)
		return;
	c->cgroups = calloc(n, sizeof(*c->cgroups));
	if (!c->cgroups) {
		x->oom = true;
		return;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(l, (unsigned)i);
		const struct seen_entry *old;
		const char *v, *ch;

		join_idx(p, sizeof(p), "intercept", "cgroups", i);
		if (config_setting_type(s) != CONFIG_TYPE_STRING) {
			cfg_err(x, line_of(s), "%s: expected a string (a cgroup path or glob), got %s", p,
				type_name(s));
			continue;
		}
		v = config_setting_get_string(s);
		if (!*v) {
			cfg_err(x, line_of(s), "%s: is empty; write a cgroup path such as \"system.slice/app.service\"",
				p);
			continue;
		}
		if (strlen(v) > CFG_CGROUP_MAX) {
			cfg_err(x, line_of(s), "%s: is longer than %d characters", p, CFG_CGROUP_MAX);
			continue;
		}
		for (ch = v; *ch && (unsigned char)*ch >= 0x20 && *ch != 0x7f; ch++)
			;
		if (*ch) {
			cfg_err(x, line_of(s), "%s: '%s' contains a control character", p, echo(v, eb));
			continue;
		}
		c->cgroups[c->n_cgroups] = strdup(v);
		if (!c->cgroups[c->n_cgroups]) {
			x->oom = true;
			break;
		}
		old = seen_add(x, &seen, c->cgroups[c->n_cgroups], i, line_of(s));
		c->n_cgroups++;
		if (old)
			cfg_err(x, line_of(s), "%s: '%s' is already listed as %s (line %u); list each cgroup once", p,
				echo(v, eb), join_idx(q, sizeof(q), "intercept", "cgroups", old->owner), old->line);
	}
	seen_free(&seen);
}

/* --- services ---------------------------------------------------------------- */

static bool valid_service_name(const char *s)
{
	size_t i;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (i = 1; s[i]; i++) {
		char ch = s[i];

		if (i >= CFG_NAME_MAX)
			return false;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* An RFC 1123 label (namespaces) or, dns1035, an RFC 1035 one (Service names): 1-63 of [a-z0-9-]. */
static bool dns_label(const char *s, size_t n, bool dns1035)
{
	size_t i;

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-' || (dns1035 && !(s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* "<namespace>/<service>:<port>", as kube/kmodel names a discovered service. */
static bool valid_discovered_name(const char *s)
{
	const char *slash = strchr(s, '/'), *colon = strrchr(s, ':');
	unsigned long port = 0;
	const char *p;

	if (!slash || !colon || colon < slash || !dns_label(s, (size_t)(slash - s), false) ||
	    !dns_label(slash + 1, (size_t)(colon - slash - 1), true))
		return false;
	if (colon[1] < '1' || colon[1] > '9')
		return false;
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || p - colon > 5)
			return false;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	return port >= 1 && port <= 65535;
}

/* "service 'web'" or, for a service without a usable name, "services[3]". */
static const char *service_label(const struct weft_config *c, size_t i, char *buf, size_t n)
{
	char eb[CFG_ECHO_BUF];

	if (c->services[i].name)
		snprintf(buf, n, "service '%s'", echo(c->services[i].name, eb));
	else
		snprintf(buf, n, "services[%zu]", i);
	return buf;
}

struct svc_tables {
	struct seen names; /* service names */
	struct seen vips;  /* every service address */
	bool vips_full;    /* the BPF-map limit was reported */
};

/* The zone name v, stored once per config (weft_config.zones: few distinct names, linear search). */
static const char *intern_zone(struct cfg_ctx *x, const char *v)
{
	struct weft_config *c = x->c;
	char **nz;
	size_t i;

	for (i = 0; i < c->n_zones; i++)
		if (!strcmp(c->zones[i], v))
			return c->zones[i];
	nz = realloc(c->zones, (c->n_zones + 1) * sizeof(*nz));
	if (!nz || !(nz[c->n_zones] = strdup(v))) {
		if (nz)
			c->zones = nz;
		x->oom = true;
		return NULL;
	}
	c->zones = nz;
	return c->zones[c->n_zones++];
}

/* Optional "zone" member: a zone name (ep_zone_problem), interned; NULL when absent or wrong. */
static const char *get_zone(struct cfg_ctx *x, const config_setting_t *g, const char *path)
{
	const config_setting_t *s;
	const char *v = get_str(x, g, path, "zone", &s), *why;
	char eb[CFG_ECHO_BUF];

	if (!v)
		return NULL;
	why = ep_zone_problem(v);
	if (why) {
		cfg_err(x, line_of(s), "%s.zone: '%s' %s; write a zone name such as \"eu-west-1a\"", path, echo(v, eb),
			why);
		return NULL;
	}
	return intern_zone(x, v);
}

static void parse_endpoint(struct cfg_ctx *x, const config_setting_t *g, const char *path, struct cfg_endpoint *ep,
			   struct seen *eps, size_t j)
{
	const config_setting_t *s;
	const struct seen_entry *old;
	char ab[ADDR_STRLEN];
	bool ok;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		cfg_err(x, line_of(g), "%s: expected a group { address = \"ip:port\"; }, got %s", path, type_name(g));
		return;
	}
	ep->weight = 1;
	ep->line = line_of(g);
	check_keys(x, g, path, endpoint_keys);
	s = get_addr(x, g, path, "address", &ep->addr, &ok);
	if (!s) {
		cfg_err(x, line_of(g), "%s: missing required key 'address'; write address = \"ip:port\";", path);
	} else if (ok) {
		ep->line = line_of(s);
		old = seen_add(x, eps, &ep->addr, j, line_of(s));
		if (old)
			cfg_err(x, line_of(s),
				"%s.address: %s is already endpoints[%zu] (line %u); list each endpoint once (use weight to favour one)",
				path, addr_format(&ep->addr, ab, sizeof(ab)), old->owner, old->line);
	}
	get_int(x, g, path, "weight", 1, 1000, &ep->weight);
	get_addr(x, g, path, "node", &ep->node, &ep->has_node);
	get_int(x, g, path, "priority", 0, EP_PRIORITY_MAX, &ep->priority);
	ep->zone = get_zone(x, g, path);
}

/*
 * circuit_breaker: failure accrual (balancer.h). The back-off doubles from
 * base up to max, so max below base is a contradiction, reported on whichever
 * of the two was written here (max may be its default).
 */
static void parse_breaker(struct cfg_ctx *x, const config_setting_t *g, const char *path, struct cfg_service *svc)
{
	const config_setting_t *sub, *s_base, *s_max;
	uint32_t base = svc->cb_base_ejection_ms, max = svc->cb_max_ejection_ms;
	char p[CFG_PATH_BUF];
	size_t problems;

	join(p, sizeof(p), path, "circuit_breaker");
	sub = get_group(x, g, path, "circuit_breaker");
	if (!sub)
		return;
	check_keys(x, sub, p, breaker_keys);
	get_int(x, sub, p, "consecutive_failures", 0, 1000, &svc->cb_consecutive_failures);
	get_int(x, sub, p, "max_ejection_percent", 0, 100, &svc->cb_max_ejection_percent);
	problems = x->n_problems;
	s_base = get_int(x, sub, p, "base_ejection_ms", 100, 3600000, &base);
	s_max = get_int(x, sub, p, "max_ejection_ms", 100, 86400000, &max);
	if (x->n_problems != problems)
		return; /* one of them is already reported; comparing a default would mislead */
	if (max < base) {
		if (s_max)
			cfg_err(x, line_of(s_max),
				"%s.max_ejection_ms: %u is less than base_ejection_ms (%u); the cap must be at least the first ejection",
				p, max, base);
		else
			cfg_err(x, line_of(s_base),
				"%s.base_ejection_ms: %u is more than max_ejection_ms (%u, the default); raise max_ejection_ms too",
				p, base, max);
		return;
	}
	svc->cb_base_ejection_ms = base;
	svc->cb_max_ejection_ms = max;
}

/*
 * authorization = { allow = [ "spiffe://td/ns/x/sa/y", "spiffe://td/ns/STAR", ... ]; }
 * (STAR standing for '*').
 * Entries are exact SPIFFE IDs or globs (fnmatch; a trailing '/ **' covers a
 * subtree); checked for shape here, applied by the receiving agent.
 */
static void parse_authz(struct cfg_ctx *x, const config_setting_t *g, const char *path, struct cfg_service *svc)
{
	const config_setting_t *sub, *l;
	char p[CFG_PATH_BUF], q[CFG_PATH_BUF + 24], eb[CFG_ECHO_BUF];
	size_t i, n;

	join(p, sizeof(p), path, "authorization");
	sub = get_group(x, g, path, "authorization");
	if (!sub)
		return;
	check_keys(x, sub, p, authz_keys);
	l = get_seq(x, sub, p, "allow", "[ \"spiffe://example.org/ns/web/*\" ]");
	if (!l)
		return;
	n = (size_t)config_setting_length(l);
	if (n > CFG_MAX_ALLOW) {
		cfg_err(x, line_of(l), "%s.allow: %zu entries; at most %d are supported (use globs)", p, n,
			CFG_MAX_ALLOW);
		n = CFG_MAX_ALLOW;
	}
	if (!n)
		return;
	svc->allow = calloc(n, sizeof(*svc->allow));
	if (!svc->allow) {
		x->oom = true;
		return;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(l, (unsigned)i);
		const char *v;

		snprintf(q, sizeof(q), "%s.allow[%zu]", p, i);
		if (config_setting_type(s) != CONFIG_TYPE_STRING) {
			cfg_err(x, line_of(s), "%s: expected a string (a SPIFFE ID or glob), got %s", q, type_name(s));
			continue;
		}
		v = config_setting_get_string(s);
		if (strncmp(v, "spiffe://", 9) != 0 || !v[9]) {
			cfg_err(x, line_of(s),
				"%s: '%s' is not a SPIFFE ID or glob; write \"spiffe://<trust domain>/...\"", q,
				echo(v, eb));
			continue;
		}
		svc->allow[svc->n_allow] = strdup(v);
		if (!svc->allow[svc->n_allow]) {
			x->oom = true;
			return;
		}
		svc->n_allow++;
	}
}

/* Endpoints on other nodes are reached over mutual TLS: they need the tls group. */
static void check_node_endpoints(struct cfg_ctx *x)
{
	const struct weft_config *c = x->c;
	size_t i, j;

	if (x->tls_group) /* its own errors say what is wrong with it */
		return;
	for (i = 0; i < c->n_services; i++)
		for (j = 0; j < c->services[i].n_endpoints; j++)
			if (c->services[i].endpoints[j].has_node) {
				cfg_err(x, (unsigned)c->services[i].endpoints[j].line,
					"services[%zu].endpoints[%zu].node: needs the tls group (ca, cert, key): other "
					"nodes are reached over mutual TLS",
					i, j);
				return;
			}
}

/* --- HTTP: limits, retries, routes -------------------------------------------- */

static bool is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!h1_is_tchar((unsigned char)*s))
			return false;
	return true;
}

/* strdup with ASCII letters lower-cased (field names and hosts compare case-insensitively). */
static char *strdup_lower(const char *s)
{
	char *d = strdup(s), *p;

	if (d)
		for (p = d; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	return d;
}

/*
 * Fields weft writes itself on every proxied request: the framing
 * (content-length, transfer-encoding), the hop-by-hop fields of RFC 9110 7.6.1
 * and Host. A route that added or removed one could frame a message twice or
 * smuggle a second request, so it may not.
 */
static const char *const managed_headers[] = {
	"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
	"trailer",        "proxy-connection",  "host",       NULL,
};

/* A field value weft would write or compare: what is wrong with it, or NULL. */
static const char *field_value_problem(const char *v)
{
	size_t n = strlen(v), i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return "contains a control character (only tab is allowed in a header value)";
	}
	if (n && (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t'))
		return "has leading or trailing whitespace, which HTTP strips from field values; remove it";
	return NULL;
}

/* match.path / match.path_prefix: what is wrong with it, or NULL. */
static const char *req_path_problem(const char *p)
{
	if (p[0] != '/')
		return "does not start with '/'; write an absolute path such as \"/api/\"";
	for (; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch <= ' ' || ch == 0x7f)
			return "contains a space or control character";
		if (ch == '?')
			return "contains '?'; routes match the path before the query, so leave the query out";
		if (ch == '#')
			return "contains '#'; fragments are never sent to a server";
	}
	return NULL;
}

/*
 * Header name setting s (at path p): a token, returned lower-cased (caller
 * frees). With managed, the fields weft writes itself are refused too. NULL
 * with a message when it is not one (or with x->oom set).
 */
static char *get_header_name(struct cfg_ctx *x, const config_setting_t *s, const char *p, bool managed)
{
	char eb[CFG_ECHO_BUF];
	const char *v;
	char *lower;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_err(x, line_of(s), "%s: expected a string (a header name), got %s", p, type_name(s));
		return NULL;
	}
	v = config_setting_get_string(s);
	if (!*v) {
		cfg_err(x, line_of(s), "%s: is empty; write a header name such as \"x-canary\"", p);
		return NULL;
	}
	if (!is_token(v)) {
		cfg_err(x, line_of(s), "%s: '%s' is not a valid header name; use letters, digits and !#$%%&'*+-.^_`|~",
			p, echo(v, eb));
		return NULL;
	}
	lower = strdup_lower(v);
	if (!lower) {
		x->oom = true;
		return NULL;
	}
	if (managed && in_list(lower, managed_headers)) {
		cfg_err(x, line_of(s),
			"%s: '%s' is written by weft itself (message framing, hop-by-hop fields and Host); a route cannot set or remove it",
			p, echo(v, eb));
		free(lower);
		return NULL;
	}
	return lower;
}

/*
 * key = ( { name = "x-a"; value = "1"; }, ... ) in grp: match.headers (add
 * false: value optional, any name) or request_headers.add (add true: value
 * required, managed names refused). Entries stay at their index; what they
 * own is freed by cfg_free.
 */
static void parse_header_kvs(struct cfg_ctx *x, const config_setting_t *grp, const char *path, const char *key,
			     bool add, struct cfg_header_kv **out, size_t *n_out)
{
	const config_setting_t *l = config_setting_get_member(grp, key);
	char p[CFG_PATH_BUF], q[CFG_PATH_BUF], r[CFG_PATH_BUF], eb[CFG_ECHO_BUF];
	size_t i, n;

	if (!l)
		return;
	join(p, sizeof(p), path, key);
	if (config_setting_type(l) != CONFIG_TYPE_LIST) {
		cfg_err(x, line_of(l), "%s: expected a list ( { name = \"x-...\"; value = \"...\"; }, ... ), got %s", p,
			type_name(l));
		return;
	}
	n = (size_t)config_setting_length(l);
	if (n > CFG_MAX_ROUTE_HEADERS) {
		cfg_err(x, line_of(l), "%s: %zu entries; at most %d are supported", p, n, CFG_MAX_ROUTE_HEADERS);
		n = CFG_MAX_ROUTE_HEADERS;
	}
	if (!n)
		return;
	*out = calloc(n, sizeof(**out));
	if (!*out) {
		x->oom = true;
		return;
	}
	*n_out = n;
	for (i = 0; i < n && !x->oom; i++) {
		const config_setting_t *g = config_setting_get_elem(l, (unsigned)i), *s;
		struct cfg_header_kv *kv = &(*out)[i];
		const char *v, *why;

		join_idx(q, sizeof(q), p, "", i);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			cfg_err(x, line_of(g), "%s: expected a group { name = \"x-...\"; value = \"...\"; }, got %s", q,
				type_name(g));
			continue;
		}
		check_keys(x, g, q, header_kv_keys);
		s = config_setting_get_member(g, "name");
		if (!s)
			cfg_err(x, line_of(g), "%s: missing required key 'name'; write name = \"x-...\";", q);
		else
			kv->name = get_header_name(x, s, join(r, sizeof(r), q, "name"), add);
		v = get_str(x, g, q, "value", &s);
		if (!s && add) {
			cfg_err(x, line_of(g),
				"%s: missing required key 'value'; write value = \"...\"; (it may be \"\")", q);
		} else if (v && (why = field_value_problem(v))) {
			cfg_err(x, line_of(s), "%s.value: '%s' %s", q, echo(v, eb), why);
		} else if (v && !(kv->value = strdup(v))) {
			x->oom = true;
		}
	}
}

/* request_headers = { add = ( { name; value } ); remove = [ "x-a" ]; } */
static void parse_request_headers(struct cfg_ctx *x, const config_setting_t *rg, const char *path, struct cfg_route *r)
{
	const config_setting_t *sub, *l;
	char p[CFG_PATH_BUF], q[CFG_PATH_BUF];
	size_t i, n;

	sub = get_group(x, rg, path, "request_headers");
	if (!sub)
		return;
	join(p, sizeof(p), path, "request_headers");
	check_keys(x, sub, p, req_headers_keys);
	parse_header_kvs(x, sub, p, "add", true, &r->add_headers, &r->n_add_headers);
	l = get_seq(x, sub, p, "remove", "[ \"x-internal\" ]");
	if (!l)
		return;
	n = (size_t)config_setting_length(l);
	if (n > CFG_MAX_ROUTE_HEADERS) {
		cfg_err(x, line_of(l), "%s.remove: %zu entries; at most %d are supported", p, n, CFG_MAX_ROUTE_HEADERS);
		n = CFG_MAX_ROUTE_HEADERS;
	}
	if (!n)
		return;
	r->remove_headers = calloc(n, sizeof(*r->remove_headers));
	if (!r->remove_headers) {
		x->oom = true;
		return;
	}
	r->n_remove_headers = n;
	for (i = 0; i < n && !x->oom; i++)
		r->remove_headers[i] = get_header_name(x, config_setting_get_elem(l, (unsigned)i),
						       join_idx(q, sizeof(q), p, "remove", i), true);
}

/* match = { method; host; path | path_prefix; headers }: every condition given must hold. */
static void parse_match(struct cfg_ctx *x, const config_setting_t *rg, const char *path, struct cfg_route *r)
{
	const config_setting_t *sub, *s, *sp, *spp;
	char p[CFG_PATH_BUF], eb[CFG_ECHO_BUF];
	const char *v, *vp, *vpp, *why, *ch;

	sub = get_group(x, rg, path, "match");
	if (!sub)
		return;
	join(p, sizeof(p), path, "match");
	check_keys(x, sub, p, match_keys);

	v = get_str(x, sub, p, "method", &s);
	if (v && !*v)
		cfg_err(x, line_of(s),
			"%s.method: is empty; write a method such as \"GET\" (leave method out to match any)", p);
	else if (v && !is_token(v))
		cfg_err(x, line_of(s),
			"%s.method: '%s' is not an HTTP method; a method is a token (letters, digits and !#$%%&'*+-.^_`|~), e.g. \"GET\"",
			p, echo(v, eb));
	else if (v && !(r->method = strdup(v)))
		x->oom = true;

	v = get_str(x, sub, p, "host", &s);
	for (ch = v; ch && *ch && (unsigned char)*ch > ' ' && *ch != 0x7f; ch++)
		;
	if (v && !*v)
		cfg_err(x, line_of(s),
			"%s.host: is empty; write a host such as \"api.example.com\" (leave host out to match any)", p);
	else if (v && *ch)
		cfg_err(x, line_of(s), "%s.host: '%s' contains a space or control character", p, echo(v, eb));
	else if (v && !(r->host = strdup_lower(v)))
		x->oom = true;

	vp = get_str(x, sub, p, "path", &sp);
	vpp = get_str(x, sub, p, "path_prefix", &spp);
	if (sp && spp) {
		cfg_err(x, line_of(spp),
			"%s: path and path_prefix are both given; use path for one exact path or path_prefix for a subtree, not both",
			p);
	} else if (vp || vpp) {
		v = vp ? vp : vpp;
		s = vp ? sp : spp;
		if ((why = req_path_problem(v))) {
			cfg_err(x, line_of(s), "%s.%s: '%s' %s", p, vp ? "path" : "path_prefix", echo(v, eb), why);
		} else if (!(r->path = strdup(v))) {
			x->oom = true;
		} else {
			r->path_kind = vp ? CFG_PATH_EXACT : CFG_PATH_PREFIX;
		}
	}
	parse_header_kvs(x, sub, p, "headers", false, &r->match_headers, &r->n_match_headers);
}

/*
 * backends = ( { service = "web-v2"; weight = 10; }, ... ): the names are
 * resolved to indices by resolve_backends once every service is known.
 */
static void parse_backends(struct cfg_ctx *x, const config_setting_t *rg, const char *path, struct cfg_route *r)
{
	const config_setting_t *l = config_setting_get_member(rg, "backends");
	char p[CFG_PATH_BUF], q[CFG_PATH_BUF];
	size_t i, n, problems = x->n_problems;
	uint64_t sum = 0;

	if (!l)
		return;
	join(p, sizeof(p), path, "backends");
	if (config_setting_type(l) != CONFIG_TYPE_LIST) {
		cfg_err(x, line_of(l), "%s: expected a list ( { service = \"...\"; weight = N; }, ... ), got %s", p,
			type_name(l));
		return;
	}
	n = (size_t)config_setting_length(l);
	if (n > CFG_MAX_BACKENDS) {
		cfg_err(x, line_of(l), "%s: %zu entries; at most %d backends per route are supported", p, n,
			CFG_MAX_BACKENDS);
		n = CFG_MAX_BACKENDS;
	}
	if (!n)
		return;
	r->backends = calloc(n, sizeof(*r->backends));
	if (!r->backends) {
		x->oom = true;
		return;
	}
	r->n_backends = n;
	for (i = 0; i < n && !x->oom; i++) {
		const config_setting_t *g = config_setting_get_elem(l, (unsigned)i), *s;
		struct cfg_backend *b = &r->backends[i];
		const char *v;

		join_idx(q, sizeof(q), p, "", i);
		b->weight = 1;
		b->line = (int)line_of(g);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			cfg_err(x, line_of(g), "%s: expected a group { service = \"...\"; weight = N; }, got %s", q,
				type_name(g));
			continue;
		}
		check_keys(x, g, q, backend_keys);
		v = get_str(x, g, q, "service", &s);
		if (!s) {
			cfg_err(x, line_of(g),
				"%s: missing required key 'service'; write service = \"web-v2\"; (the name of a service in this config)",
				q);
		} else if (v) {
			b->line = (int)line_of(s);
			b->service = strdup(v);
			if (!b->service)
				x->oom = true;
		}
		get_int(x, g, q, "weight", 0, 1000, &b->weight);
		sum += b->weight;
	}
	if (x->n_problems == problems && !sum)
		cfg_err(x, line_of(l), "%s: the weights add up to 0; give at least one backend a weight above 0", p);
}

/* One routes[i] entry; names holds the names of the routes before it. */
static void parse_route(struct cfg_ctx *x, const config_setting_t *rg, const char *path, size_t i,
			struct cfg_service *svc, struct seen *names)
{
	struct cfg_route *r = &svc->routes[i];
	const config_setting_t *s;
	const struct seen_entry *old;
	char eb[CFG_ECHO_BUF];
	const char *v;

	if (config_setting_type(rg) != CONFIG_TYPE_GROUP) {
		cfg_err(x, line_of(rg), "%s: expected a group { match = { ... }; backends = ( ... ); }, got %s", path,
			type_name(rg));
		return;
	}
	r->line = (int)line_of(rg);
	r->timeout_ms = svc->request_timeout_ms;
	check_keys(x, rg, path, route_keys);

	v = get_str(x, rg, path, "name", &s);
	if (v && !valid_service_name(v)) {
		cfg_err(x, line_of(s),
			"%s.name: '%s' is not a valid name; use 1-63 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit",
			path, echo(v, eb));
	} else if (v || !s) {
		if (v)
			r->name = strdup(v);
		else if (asprintf(&r->name, "route%zu", i) < 0)
			r->name = NULL;
		if (!r->name) {
			x->oom = true;
			return;
		}
		old = seen_add(x, names, r->name, i, s ? line_of(s) : line_of(rg));
		if (old && s)
			cfg_err(x, line_of(s),
				"%s.name: '%s' is already the name of routes[%zu] (line %u); route names must be unique within a service",
				path, r->name, old->owner, old->line);
		else if (old)
			cfg_err(x, line_of(rg),
				"%s: its default name '%s' is already the name of routes[%zu] (line %u); give this route a name",
				path, r->name, old->owner, old->line);
	}
	parse_match(x, rg, path, r);
	parse_backends(x, rg, path, r);
	get_int(x, rg, path, "timeout_ms", 0, 3600000, &r->timeout_ms);
	get_bool(x, rg, path, "retryable", &r->retryable);
	parse_request_headers(x, rg, path, r);
}

/* routes = ( { ... }, ... ): first match wins. Needs the service's http group parsed (timeout default). */
static void parse_routes(struct cfg_ctx *x, const config_setting_t *g, const char *path, struct cfg_service *svc)
{
	const config_setting_t *l = config_setting_get_member(g, "routes");
	struct seen names = { .kind = SEEN_STR };
	char p[CFG_PATH_BUF], q[CFG_PATH_BUF];
	size_t i, n;

	if (!l)
		return;
	join(p, sizeof(p), path, "routes");
	if (config_setting_type(l) != CONFIG_TYPE_LIST) {
		cfg_err(x, line_of(l), "%s: expected a list ( { match = { ... }; backends = ( ... ); }, ... ), got %s",
			p, type_name(l));
		return;
	}
	n = (size_t)config_setting_length(l);
	if (n > CFG_MAX_ROUTES) {
		cfg_err(x, line_of(l), "%s: %zu entries; at most %d routes per service are supported", p, n,
			CFG_MAX_ROUTES);
		n = CFG_MAX_ROUTES;
	}
	if (!n)
		return;
	svc->routes = calloc(n, sizeof(*svc->routes));
	if (!svc->routes) {
		x->oom = true;
		return;
	}
	svc->n_routes = n;
	for (i = 0; i < n && !x->oom; i++)
		parse_route(x, config_setting_get_elem(l, (unsigned)i), join_idx(q, sizeof(q), p, "", i), i, svc,
			    &names);
	seen_free(&names);
}

/* http = { ... }: request-level limits and timeouts (protocol http or auto). */
static void parse_http(struct cfg_ctx *x, const config_setting_t *g, const char *path, struct cfg_service *svc)
{
	const config_setting_t *sub = get_group(x, g, path, "http");
	char p[CFG_PATH_BUF];

	if (!sub)
		return;
	join(p, sizeof(p), path, "http");
	check_keys(x, sub, p, http_keys);
	get_int(x, sub, p, "detect_timeout_ms", 1, 10000, &svc->detect_timeout_ms);
	get_int(x, sub, p, "max_request_line", 256, 1048576, &svc->max_request_line);
	get_int(x, sub, p, "max_header_bytes", 1024, 1048576, &svc->max_header_bytes);
	get_int(x, sub, p, "max_headers", 8, 1000, &svc->max_headers);
	get_int(x, sub, p, "request_timeout_ms", 0, 3600000, &svc->request_timeout_ms);
	get_int(x, sub, p, "max_retry_body", 0, 16777216, &svc->max_retry_body);
	get_int(x, sub, p, "pool_max_idle", 0, 10000, &svc->pool_max_idle);
	get_int(x, sub, p, "pool_idle_timeout_ms", 100, 3600000, &svc->pool_idle_timeout_ms);
	get_int(x, sub, p, "head_timeout_ms", 0, 3600000, &svc->head_timeout_ms);
	get_int(x, sub, p, "keepalive_idle_ms", 0, 86400000, &svc->keepalive_idle_ms);
	get_int(x, sub, p, "stream_idle_ms", 0, 86400000, &svc->stream_idle_ms);
}

/* retry.on_status = [ 502, 503 ]: replaces the default list; [ ] never retries on a status. */
static void parse_on_status(struct cfg_ctx *x, const config_setting_t *sub, const char *p, struct cfg_service *svc)
{
	const config_setting_t *l = get_seq(x, sub, p, "on_status", "[ 502, 503, 504 ]");
	size_t idx[CFG_MAX_RETRY_STATUS];
	char q[CFG_PATH_BUF];
	size_t i, j, n;

	if (!l)
		return;
	n = (size_t)config_setting_length(l);
	if (n > CFG_MAX_RETRY_STATUS) {
		cfg_err(x, line_of(l), "%s.on_status: %zu entries; at most %d are supported", p, n,
			CFG_MAX_RETRY_STATUS);
		n = CFG_MAX_RETRY_STATUS;
	}
	svc->n_retry_on_status = 0;
	for (i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(l, (unsigned)i);
		long long v;

		join_idx(q, sizeof(q), p, "on_status", i);
		if (!is_int(s)) {
			cfg_err(x, line_of(s), "%s: expected an integer (an HTTP status code), got %s", q,
				type_name(s));
			continue;
		}
		v = config_setting_get_int64(s);
		if (v < 100 || v > 599) {
			cfg_err(x, line_of(s), "%s: %lld is out of range (100-599)", q, v);
			continue;
		}
		for (j = 0; j < svc->n_retry_on_status && svc->retry_on_status[j] != (uint32_t)v; j++)
			;
		if (j < svc->n_retry_on_status) {
			cfg_err(x, line_of(s), "%s: %lld is already on_status[%zu]; list each status once", q, v,
				idx[j]);
			continue;
		}
		idx[svc->n_retry_on_status] = i;
		svc->retry_on_status[svc->n_retry_on_status++] = (uint32_t)v;
	}
}

/*
 * retry = { ... }: connect attempts (every protocol), then the HTTP retry
 * policy (retry.h). The back-off grows from base to max, so max below base
 * is a contradiction, reported as circuit_breaker's is.
 */
static void parse_retry(struct cfg_ctx *x, const config_setting_t *g, const char *path, struct cfg_service *svc)
{
	const config_setting_t *sub = get_group(x, g, path, "retry"), *s_base, *s_max;
	uint32_t base = svc->retry_backoff_base_ms, max = svc->retry_backoff_max_ms;
	char p[CFG_PATH_BUF];
	size_t problems;

	if (!sub)
		return;
	join(p, sizeof(p), path, "retry");
	check_keys(x, sub, p, retry_keys);
	get_int(x, sub, p, "attempts", 1, 10, &svc->retry_attempts);
	parse_on_status(x, sub, p, svc);
	get_number(x, sub, p, "budget_ratio", 0, 1000, &svc->retry_budget_ratio);
	get_int(x, sub, p, "budget_min_per_s", 0, 100000, &svc->retry_budget_min_per_s);
	get_int(x, sub, p, "budget_window_s", 1, 60, &svc->retry_budget_window_s);
	problems = x->n_problems;
	s_base = get_int(x, sub, p, "backoff_base_ms", 0, 60000, &base);
	s_max = get_int(x, sub, p, "backoff_max_ms", 0, 60000, &max);
	if (x->n_problems != problems)
		return;
	if (max < base) {
		if (s_max)
			cfg_err(x, line_of(s_max),
				"%s.backoff_max_ms: %u is less than backoff_base_ms (%u); the cap must be at least the base",
				p, max, base);
		else
			cfg_err(x, line_of(s_base),
				"%s.backoff_base_ms: %u is more than backoff_max_ms (%u, the default); raise backoff_max_ms too",
				p, base, max);
		return;
	}
	svc->retry_backoff_base_ms = base;
	svc->retry_backoff_max_ms = max;
}

/*
 * The closest service name to name, if close enough to be a typo (as
 * check_keys judges), else NULL. O(services * 64^2): callers limit how often
 * (CFG_SUGGEST_SEARCHES per load).
 */
static const char *closest_service(const struct weft_config *c, const char *name)
{
	size_t i, ln = strlen(name);
	const char *best = NULL;
	unsigned bd = ~0u;

	if (ln > CFG_SUGGEST_MAX)
		return NULL;
	for (i = 0; i < c->n_services; i++) {
		const char *sn = c->services[i].name;
		size_t ls;
		unsigned d;

		if (!sn)
			continue;
		ls = strlen(sn);
		if (ls > CFG_SUGGEST_MAX || ls > ln + 2 || ln > ls + 2)
			continue;
		d = edit_distance(name, sn);
		if (d < bd) {
			bd = d;
			best = sn;
		}
	}
	return best && bd <= (strlen(best) <= 4 ? 1u : 2u) ? best : NULL;
}

/*
 * Route backends name services: resolve each to its index now that every
 * service is known (O(1) each, through the names table).
 */
static void resolve_backends(struct cfg_ctx *x, const struct svc_tables *t)
{
	struct weft_config *c = x->c;
	char eb[CFG_ECHO_BUF];
	size_t i, j, k;

	for (i = 0; i < c->n_services; i++) {
		for (j = 0; j < c->services[i].n_routes; j++) {
			const struct cfg_route *r = &c->services[i].routes[j];

			for (k = 0; k < r->n_backends; k++) {
				struct cfg_backend *b = &r->backends[k];
				const struct seen_entry *e;
				const char *best = NULL;

				if (!b->service)
					continue;
				if ((e = seen_find(&t->names, b->service))) {
					b->index = (uint32_t)e->owner;
					continue;
				}
				if (x->n_suggest < CFG_SUGGEST_SEARCHES && x->n_lines < CFG_MAX_ERRORS) {
					x->n_suggest++;
					best = closest_service(c, b->service);
				}
				if (best)
					cfg_err(x, (unsigned)b->line,
						"services[%zu].routes[%zu].backends[%zu].service: '%s' is not a service in this config; did you mean '%s'?",
						i, j, k, echo(b->service, eb), best);
				else
					cfg_err(x, (unsigned)b->line,
						"services[%zu].routes[%zu].backends[%zu].service: '%s' is not a service in this config; name one of the services defined under services",
						i, j, k, echo(b->service, eb));
			}
		}
	}
}

/* Every per-service default (docs/config.md): for parsed and discovered services alike. */
void cfg_service_defaults(struct cfg_service *svc)
{
	svc->protocol = CFG_PROTO_TCP;
	svc->balancer = CFG_BAL_EWMA;
	svc->connect_timeout_ms = 1000;
	svc->idle_timeout_ms = 0;
	svc->retry_attempts = 3;
	svc->cb_consecutive_failures = 5;
	svc->cb_base_ejection_ms = 5000;
	svc->cb_max_ejection_ms = 300000;
	svc->cb_max_ejection_percent = 50;
	svc->max_connections = 10000;
	svc->max_pending = 1000;
	svc->max_requests = 10000;
	svc->detect_timeout_ms = 100;
	svc->max_request_line = 8192;
	svc->max_header_bytes = 65536;
	svc->max_headers = 100;
	svc->request_timeout_ms = 0; /* no total limit: long downloads and polls are bounded by stream_idle_ms */
	svc->max_retry_body = 65536;
	svc->pool_max_idle = 128;
	svc->pool_idle_timeout_ms = 30000;
	svc->head_timeout_ms = 10000;
	svc->keepalive_idle_ms = 60000;
	svc->stream_idle_ms = 300000;
	svc->retry_on_status[0] = 502;
	svc->retry_on_status[1] = 503;
	svc->retry_on_status[2] = 504;
	svc->n_retry_on_status = 3;
	svc->retry_budget_ratio = 0.2;
	svc->retry_budget_min_per_s = 10;
	svc->retry_budget_window_s = 10;
	svc->retry_backoff_base_ms = 25;
	svc->retry_backoff_max_ms = 250;
	svc->overprov_pct = 140;
}

/* An absolute path with no control characters, at most PATH_MAX: what is wrong, or NULL. */
static const char *source_path_problem(const char *v)
{
	const char *c;

	if (v[0] != '/')
		return "is not an absolute path";
	if (strlen(v) >= 4096)
		return "is longer than 4095 characters";
	for (c = v; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return "contains a control character";
	if (v[strlen(v) - 1] == '/')
		return "ends with '/' (name the file, not its directory)";
	return NULL;
}

/*
 * One endpoints_from entry: exactly one of dns, dns_srv, file, and the keys
 * that kind takes (docs/config.md). Nothing is resolved or opened here:
 * weftd starts whatever DNS and the file say at the time.
 */
static void parse_source(struct cfg_ctx *x, const config_setting_t *g, const char *path, struct cfg_epsource *src)
{
	static const char *const kinds[] = { "dns", "dns_srv", "file" };
	static const char *const dns_only[] = { "port", "weight", "priority" };
	static const char *const not_file[] = { "port",     "family",         "zone",          "weight",
						"priority", "refresh_min_ms", "refresh_max_ms" };
	const config_setting_t *s, *which = NULL;
	const char *v = NULL, *why, *kind = NULL;
	char eb[CFG_ECHO_BUF];
	size_t k;
	uint32_t port = 0;
	int e;

	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		cfg_err(x, line_of(g), "%s: expected a group { dns = \"name\"; port = 80; }, got %s", path,
			type_name(g));
		return;
	}
	src->line = (int)line_of(g);
	src->family = CFG_FAMILY_ANY;
	src->weight = 1;
	src->refresh_min_ms = 1000;
	src->refresh_max_ms = 300000;
	check_keys(x, g, path, epsource_keys);
	for (k = 0; k < N_ELEMS(kinds); k++) {
		s = config_setting_get_member(g, kinds[k]);
		if (!s)
			continue;
		if (which) {
			cfg_err(x, line_of(s),
				"%s: both %s and %s; one source per entry: list several as endpoints_from = ( { ... }, "
				"{ ... } );",
				path, kind, kinds[k]);
			return;
		}
		which = s;
		kind = kinds[k];
		src->kind = k == 0 ? CFG_EP_DNS : k == 1 ? CFG_EP_DNS_SRV : CFG_EP_FILE;
	}
	if (!which) {
		cfg_err(x, line_of(g),
			"%s: say where the endpoints come from: dns = \"api.internal\"; port = 8080; or dns_srv = "
			"\"_api._tcp.internal\"; or file = \"/etc/weft/endpoints/api.conf\";",
			path);
		return;
	}
	v = get_str(x, g, path, kind, &s);
	if (!v)
		return;
	why = src->kind == CFG_EP_FILE ? source_path_problem(v) : dns_name_problem(v);
	if (why) {
		cfg_err(x, line_of(s), "%s.%s: '%s' %s; %s", path, kind, echo(v, eb), why,
			src->kind == CFG_EP_FILE
				? "write the file's absolute path, e.g. \"/etc/weft/endpoints/api.conf\""
			: src->kind == CFG_EP_DNS_SRV
				? "write an SRV name such as \"_api._tcp.internal\" (no port: "
				  "SRV records carry it)"
				: "write a host name such as \"api.internal\" (the port goes in port)");
		return;
	}
	src->name = strdup(v);
	if (!src->name) {
		x->oom = true;
		return;
	}
	if (src->kind == CFG_EP_FILE) {
		for (k = 0; k < N_ELEMS(not_file); k++)
			if ((s = config_setting_get_member(g, not_file[k])))
				cfg_err(x, line_of(s),
					"%s.%s: not for a file source: each line of the file gives its endpoint's "
					"address, weight, zone and priority, and changes are seen at once",
					path, not_file[k]);
		return;
	}
	if (src->kind == CFG_EP_DNS_SRV) {
		for (k = 0; k < N_ELEMS(dns_only); k++)
			if ((s = config_setting_get_member(g, dns_only[k])))
				cfg_err(x, line_of(s),
					"%s.%s: not for dns_srv: the SRV records give each endpoint's port, weight "
					"and priority",
					path, dns_only[k]);
	} else {
		s = get_int(x, g, path, "port", 1, 65535, &port);
		src->port = (uint16_t)port;
		if (!s)
			cfg_err(x, line_of(g),
				"%s: missing required key 'port' for dns; write port = 8080; (A and AAAA records carry "
				"no port; dns_srv uses SRV records, which do)",
				path);
		get_int(x, g, path, "weight", 1, 1000, &src->weight);
		get_int(x, g, path, "priority", 0, EP_PRIORITY_MAX, &src->priority);
	}
	e = (int)src->family;
	get_enum(x, g, path, "family", family_names, N_ELEMS(family_names), &e);
	src->family = (enum cfg_family)e;
	v = get_str(x, g, path, "zone", &s);
	if (v && (why = ep_zone_problem(v)))
		cfg_err(x, line_of(s), "%s.zone: '%s' %s; write a zone name such as \"eu-west-1a\"", path, echo(v, eb),
			why);
	else if (v && !(src->zone = strdup(v)))
		x->oom = true;
	get_int(x, g, path, "refresh_min_ms", 100, 3600000, &src->refresh_min_ms);
	s = get_int(x, g, path, "refresh_max_ms", 1000, 86400000, &src->refresh_max_ms);
	if (src->refresh_max_ms < src->refresh_min_ms)
		cfg_err(x, s ? line_of(s) : line_of(g),
			"%s.refresh_max_ms: %u is below refresh_min_ms (%u); TTLs are held between the two", path,
			src->refresh_max_ms, src->refresh_min_ms);
}

/* endpoints_from: one source { ... } or a list of them ( { ... }, { ... } ). */
static void parse_sources(struct cfg_ctx *x, const config_setting_t *g, const char *path, struct cfg_service *svc)
{
	const config_setting_t *s = config_setting_get_member(g, "endpoints_from");
	char p[CFG_PATH_BUF], q[CFG_PATH_BUF], eb[CFG_ECHO_BUF];
	bool one;
	size_t n, i, j;

	if (!s)
		return;
	one = config_setting_type(s) == CONFIG_TYPE_GROUP;
	if (!one && config_setting_type(s) != CONFIG_TYPE_LIST) {
		cfg_err(x, line_of(s),
			"%s.endpoints_from: expected a group { dns = \"name\"; port = 80; } or a list of them, got %s",
			path, type_name(s));
		return;
	}
	if (config_setting_get_member(g, "endpoints"))
		cfg_err(x, line_of(s),
			"%s.endpoints_from: the service also lists endpoints; take its endpoints from the file "
			"(endpoints) or from endpoints_from, not both",
			path);
	n = one ? 1 : (size_t)config_setting_length(s);
	if (n > CFG_MAX_SOURCES) {
		cfg_err(x, line_of(s), "%s.endpoints_from: %zu entries; at most %d sources per service", path, n,
			CFG_MAX_SOURCES);
		n = CFG_MAX_SOURCES;
	}
	if (!n) {
		cfg_err(x, line_of(s), "%s.endpoints_from: is empty; name at least one source, or remove it", path);
		return;
	}
	svc->sources = calloc(n, sizeof(*svc->sources));
	if (!svc->sources) {
		x->oom = true;
		return;
	}
	svc->n_sources = n;
	for (i = 0; i < n && !x->oom; i++) {
		struct cfg_epsource *src = &svc->sources[i];

		if (one)
			join(p, sizeof(p), path, "endpoints_from");
		else
			join_idx(p, sizeof(p), path, "endpoints_from", i);
		parse_source(x, one ? s : config_setting_get_elem(s, (unsigned)i), p, src);
		for (j = 0; j < i && src->name; j++) {
			const struct cfg_epsource *o = &svc->sources[j];

			if (o->name && o->kind == src->kind && o->port == src->port && !strcmp(o->name, src->name))
				cfg_err(x, (unsigned)src->line,
					"%s: '%s' is already %s (line %d); list each source once", p,
					echo(src->name, eb), join_idx(q, sizeof(q), path, "endpoints_from", j),
					o->line);
		}
	}
}

static void parse_service(struct cfg_ctx *x, const config_setting_t *g, size_t i, struct svc_tables *t)
{
	struct weft_config *c = x->c;
	struct cfg_service *svc = &c->services[i];
	const config_setting_t *s, *sub;
	struct seen eps = { .kind = SEEN_ADDR };
	char path[CFG_PATH_BUF], p[CFG_PATH_BUF], eb[CFG_ECHO_BUF], ab[ADDR_STRLEN], lb[CFG_ECHO_BUF + 16];
	const char *name;
	size_t j, n;
	int e;

	join_idx(path, sizeof(path), "services", "", i);
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		cfg_err(x, line_of(g), "%s: expected a group { name = \"...\"; addresses = [ ... ]; }, got %s", path,
			type_name(g));
		return;
	}
	svc->line = (int)line_of(g);
	cfg_service_defaults(svc);
	check_keys(x, g, path, service_keys);

	name = get_str(x, g, path, "name", &s);
	if (name && strchr(name, '/'))
		svc->source = CFG_SRC_OVERRIDE; /* even a bad name: say what is wrong with it, not more */
	if (!s) {
		cfg_err(x, line_of(g),
			"%s: missing required key 'name'; write name = \"web\"; (each service needs a unique name)",
			path);
	} else if (name && strchr(name, '/') && !valid_discovered_name(name)) {
		cfg_err(x, line_of(s),
			"%s.name: '%s' is not the name of a discovered service; to set the policy of one, write "
			"\"<namespace>/<service>:<port>\" as weftctl services shows it, e.g. \"shop/cart:80\"",
			path, echo(name, eb));
	} else if (name && !strchr(name, '/') && !valid_service_name(name)) {
		cfg_err(x, line_of(s),
			"%s.name: '%s' is not a valid name; use 1-63 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit",
			path, echo(name, eb));
	} else if (name) {
		const struct seen_entry *old;

		svc->name = strdup(name);
		if (!svc->name) {
			x->oom = true;
			return;
		}
		old = seen_add(x, &t->names, svc->name, i, line_of(s));
		if (old)
			cfg_err(x, line_of(s),
				"%s.name: '%s' is already the name of services[%zu] (line %u); service names must be unique",
				path, svc->name, old->owner, old->line);
	}

	if (svc->source == CFG_SRC_OVERRIDE) {
		/* the API gives a discovered service its addresses and endpoints; the entry is policy only */
		static const char *const from_api[] = { "addresses", "endpoints" };

		for (j = 0; j < N_ELEMS(from_api); j++)
			if ((s = config_setting_get_member(g, from_api[j])))
				cfg_err(x, line_of(s),
					"%s.%s: '%s' is a service discovered from Kubernetes; its %s come from the "
					"API (the Service and its EndpointSlices). Remove %s here: this entry sets "
					"only its policy (timeouts, retry, routes, limits, ...)",
					path, from_api[j], svc->name, from_api[j], from_api[j]);
		if ((s = config_setting_get_member(g, "endpoints_from")))
			cfg_err(x, line_of(s),
				"%s.endpoints_from: '%s' is a service discovered from Kubernetes; its endpoints come "
				"from the API (its EndpointSlices). Remove endpoints_from here, or give the service a "
				"name without '/' and its own addresses",
				path, svc->name);
		goto policy;
	}
	s = get_seq(x, g, path, "addresses", "[ \"127.10.0.1:80\" ]");
	if (!s && !config_setting_get_member(g, "addresses")) {
		cfg_err(x, line_of(g),
			"%s: missing required key 'addresses'; list what apps dial, e.g. addresses = [ \"127.10.0.1:80\" ];",
			path);
	} else if (s) {
		n = (size_t)config_setting_length(s);
		if (n == 0)
			cfg_err(x, line_of(s),
				"%s.addresses: is empty; list at least one address apps dial, e.g. [ \"127.10.0.1:80\" ]",
				path);
		if (n > CFG_MAX_SVC_ADDRS) {
			cfg_err(x, line_of(s),
				"%s.addresses: %zu entries; at most %d addresses per service are supported", path, n,
				CFG_MAX_SVC_ADDRS);
			n = CFG_MAX_SVC_ADDRS;
		}
		if (n && !(svc->addrs = calloc(n, sizeof(*svc->addrs)))) {
			x->oom = true;
			return;
		}
		svc->n_addrs = n;
		for (j = 0; j < n; j++) {
			const config_setting_t *a = config_setting_get_elem(s, (unsigned)j);
			const struct seen_entry *old;

			join_idx(p, sizeof(p), path, "addresses", j);
			if (!parse_addr(x, a, p, &svc->addrs[j]))
				continue;
			old = seen_add(x, &t->vips, &svc->addrs[j], i, line_of(a));
			if (old) {
				cfg_err(x, line_of(a),
					"%s: %s is already used by %s (line %u); each address belongs to one service",
					p, addr_format(&svc->addrs[j], ab, sizeof(ab)),
					service_label(c, old->owner, lb, sizeof(lb)), old->line);
			} else if (t->vips.n > WEFT_MAX_SERVICE_ADDRS && !t->vips_full) {
				t->vips_full = true;
				cfg_err(x, line_of(a),
					"%s: more than %d service addresses in all; that is the size of the BPF map weft_services",
					p, WEFT_MAX_SERVICE_ADDRS);
			}
		}
	}

policy:
	e = (int)svc->protocol;
	svc->protocol_set = config_setting_get_member(g, "protocol") != NULL;
	get_enum(x, g, path, "protocol", proto_names, N_ELEMS(proto_names), &e);
	svc->protocol = (enum cfg_protocol)e;
	e = (int)svc->balancer;
	get_enum(x, g, path, "balancer", bal_names, N_ELEMS(bal_names), &e);
	svc->balancer = (enum cfg_balancer)e;

	s = svc->source == CFG_SRC_OVERRIDE ? NULL : config_setting_get_member(g, "endpoints");
	if (s && config_setting_type(s) != CONFIG_TYPE_LIST) {
		cfg_err(x, line_of(s), "%s.endpoints: expected a list ( { address = \"ip:port\"; }, ... ), got %s",
			path, type_name(s));
	} else if (s) {
		n = (size_t)config_setting_length(s);
		if (n > CFG_MAX_ENDPOINTS) {
			cfg_err(x, line_of(s),
				"%s.endpoints: %zu entries; at most %d endpoints per service are supported", path, n,
				CFG_MAX_ENDPOINTS);
			n = CFG_MAX_ENDPOINTS;
		}
		if (n && !(svc->endpoints = calloc(n, sizeof(*svc->endpoints)))) {
			x->oom = true;
			return;
		}
		svc->n_endpoints = n;
		for (j = 0; j < n; j++) {
			join_idx(p, sizeof(p), path, "endpoints", j);
			parse_endpoint(x, config_setting_get_elem(s, (unsigned)j), p, &svc->endpoints[j], &eps, j);
		}
		seen_free(&eps);
	}
	if (svc->source != CFG_SRC_OVERRIDE)
		parse_sources(x, g, path, svc);
	join(p, sizeof(p), path, "failover");
	sub = get_group(x, g, path, "failover");
	if (sub) {
		double ov = 1.4;

		check_keys(x, sub, p, failover_keys);
		if (get_number(x, sub, p, "overprovisioning", 1.0, 10.0, &ov))
			svc->overprov_pct = (uint32_t)(ov * 100 + 0.5);
	}

	join(p, sizeof(p), path, "timeouts");
	sub = get_group(x, g, path, "timeouts");
	if (sub) {
		check_keys(x, sub, p, timeouts_keys);
		get_int(x, sub, p, "connect_ms", 1, 60000, &svc->connect_timeout_ms);
		get_int(x, sub, p, "idle_ms", 0, 86400000, &svc->idle_timeout_ms);
	}
	parse_retry(x, g, path, svc);
	parse_breaker(x, g, path, svc);
	join(p, sizeof(p), path, "limits");
	sub = get_group(x, g, path, "limits");
	if (sub) {
		check_keys(x, sub, p, limits_keys);
		get_int(x, sub, p, "max_connections", 1, 1048576, &svc->max_connections);
		get_int(x, sub, p, "max_pending", 1, 1048576, &svc->max_pending);
		get_int(x, sub, p, "max_requests", 1, 1048576, &svc->max_requests);
	}
	parse_authz(x, g, path, svc);
	parse_http(x, g, path, svc);
	if (!x->oom)
		parse_routes(x, g, path, svc);
}

/*
 * An endpoint that is itself a service address: weftd's own sockets are not
 * intercepted, so it would dial the VIP for real (nothing listens there), or,
 * were it intercepted, loop. Likewise an endpoint on weftd's own outbound
 * port. Needs every VIP, so runs after all services.
 */
static void check_endpoint_vips(struct cfg_ctx *x, const struct svc_tables *t)
{
	const struct weft_config *c = x->c;
	char ab[ADDR_STRLEN], lb[CFG_ECHO_BUF + 16];
	size_t i, j;

	for (i = 0; i < c->n_services; i++) {
		for (j = 0; j < c->services[i].n_endpoints; j++) {
			const struct cfg_endpoint *ep = &c->services[i].endpoints[j];
			const struct seen_entry *v;

			if (ep->addr.sa.sa_family == AF_UNSPEC)
				continue;
			if ((v = seen_find(&t->vips, &ep->addr)))
				cfg_err(x, (unsigned)ep->line,
					"services[%zu].endpoints[%zu].address: %s is an address of %s (line %u); an endpoint must be where a server listens, or connections would loop",
					i, j, addr_format(&ep->addr, ab, sizeof(ab)),
					service_label(c, v->owner, lb, sizeof(lb)), v->line);
			else if (addr_port(&ep->addr) == c->outbound_port && addr_is_loopback_or_any(&ep->addr))
				cfg_err(x, (unsigned)ep->line,
					"services[%zu].endpoints[%zu].address: %s is weftd's own outbound listener (agent.outbound_port); connections would loop",
					i, j, addr_format(&ep->addr, ab, sizeof(ab)));
		}
	}
}

/*
 * The span exporter's socket carries agent.mark, so it is never intercepted:
 * a collector at a service address would be dialled for real (nothing listens
 * there), and one on weftd's outbound listener would reach weftd itself.
 * Needs tracing parsed first.
 */
static void check_collector_vip(struct cfg_ctx *x, const struct svc_tables *t)
{
	const struct weft_config *c = x->c;
	char ab[ADDR_STRLEN], lb[CFG_ECHO_BUF + 16];
	const struct seen_entry *v;

	if (!c->tracing.enabled)
		return;
	if ((v = seen_find(&t->vips, &c->tracing.collector)))
		cfg_err(x, x->collector_line,
			"tracing.collector: %s is an address of %s (line %u); weftd's own connections are not intercepted, so give the collector's real address",
			addr_format(&c->tracing.collector, ab, sizeof(ab)), service_label(c, v->owner, lb, sizeof(lb)),
			v->line);
	else if (addr_port(&c->tracing.collector) == c->outbound_port && addr_is_loopback_or_any(&c->tracing.collector))
		cfg_err(x, x->collector_line,
			"tracing.collector: %s is weftd's own outbound listener (agent.outbound_port); give the collector's real address",
			addr_format(&c->tracing.collector, ab, sizeof(ab)));
}

static void parse_services(struct cfg_ctx *x, const config_setting_t *root)
{
	const config_setting_t *l = config_setting_get_member(root, "services");
	struct svc_tables t = { .names = { .kind = SEEN_STR }, .vips = { .kind = SEEN_ADDR } };
	struct weft_config *c = x->c;
	size_t i, n;

	if (!l)
		goto out;
	if (config_setting_type(l) != CONFIG_TYPE_LIST) {
		cfg_err(x, line_of(l),
			"services: expected a list ( { name = \"...\"; addresses = [ ... ]; }, ... ), got %s",
			type_name(l));
		goto out;
	}
	n = (size_t)config_setting_length(l);
	if (n > CFG_MAX_SERVICES) {
		cfg_err(x, line_of(l), "services: %zu entries; at most %d services are supported", n, CFG_MAX_SERVICES);
		n = CFG_MAX_SERVICES;
	}
	if (!n)
		goto out;
	c->services = calloc(n, sizeof(*c->services));
	if (!c->services) {
		x->oom = true;
		goto out;
	}
	c->n_services = n;
	for (i = 0; i < n && !x->oom; i++)
		parse_service(x, config_setting_get_elem(l, (unsigned)i), i, &t);
	if (!x->oom)
		check_endpoint_vips(x, &t);
	if (!x->oom)
		resolve_backends(x, &t);
out:
	/* with no services too: the collector may still be weftd's own listener */
	if (!x->oom)
		check_collector_vip(x, &t);
	seen_free(&t.names);
	seen_free(&t.vips);
}

/* --- tracing ------------------------------------------------------------------- */

/* tracing.path: what is wrong with it, or NULL. It goes into a request line as is. */
static const char *trace_path_problem(const char *p)
{
	if (p[0] != '/')
		return "does not start with '/'; write a path such as \"/api/v2/spans\"";
	for (; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return "contains a space or a character that is not printable ASCII";
	return NULL;
}

/* tracing.service_name: what is wrong with it, or NULL. It goes into JSON as is. */
static const char *trace_name_problem(const char *s)
{
	if (!*s)
		return "is empty; write a name such as \"weft\"";
	if (strlen(s) > CFG_NAME_MAX)
		return "is longer than 63 characters";
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s >= 0x7f || *s == '"' || *s == '\\')
			return "contains a quote, a backslash or a character that is not printable ASCII";
	return NULL;
}

/* Replaces *dst (a default) with a copy of v. */
static void set_str(struct cfg_ctx *x, char **dst, const char *v)
{
	char *dup = strdup(v);

	if (!dup) {
		x->oom = true;
		return;
	}
	free(*dst);
	*dst = dup;
}

/*
 * tracing = { collector = "ip:port"; ... }: all optional; without a collector
 * nothing is exported (trace headers are still propagated). The defaults of
 * path and service_name are set by cfg_new, so they are there either way.
 */
static void parse_tracing(struct cfg_ctx *x, const config_setting_t *root)
{
	const config_setting_t *g = get_group(x, root, "", "tracing"), *s;
	struct cfg_tracing *tr = &x->c->tracing;
	char eb[CFG_ECHO_BUF];
	const char *v, *why;
	bool ok;

	if (!g)
		return;
	check_keys(x, g, "tracing", tracing_keys);
	s = get_addr(x, g, "tracing", "collector", &tr->collector, &ok);
	tr->enabled = ok;
	if (ok)
		x->collector_line = line_of(s);
	v = get_str(x, g, "tracing", "path", &s);
	if (v && (why = trace_path_problem(v)))
		cfg_err(x, line_of(s), "tracing.path: '%s' %s", echo(v, eb), why);
	else if (v)
		set_str(x, &tr->path, v);
	v = get_str(x, g, "tracing", "service_name", &s);
	if (v && !*v)
		cfg_err(x, line_of(s), "tracing.service_name: %s", trace_name_problem(v));
	else if (v && (why = trace_name_problem(v)))
		cfg_err(x, line_of(s), "tracing.service_name: '%s' %s", echo(v, eb), why);
	else if (v)
		set_str(x, &tr->service_name, v);
	get_number(x, g, "tracing", "sample_rate", 0, 1, &tr->sample_rate);
	get_int(x, g, "tracing", "queue_size", 1, 1048576, &tr->queue_size);
	get_int(x, g, "tracing", "batch_size", 1, 10000, &tr->batch_size);
	get_int(x, g, "tracing", "flush_ms", 10, 60000, &tr->flush_ms);
}

/* --- kubernetes ---------------------------------------------------------------- */

/* A "<namespace>/<service>:<port>" entry sets a discovered service's policy: only with discovery. */
static void check_overrides(struct cfg_ctx *x)
{
	size_t i;

	for (i = 0; i < x->c->n_services; i++)
		if (x->c->services[i].source == CFG_SRC_OVERRIDE && x->c->services[i].name && !x->c->kubernetes.enabled)
			cfg_err(x, (unsigned)x->c->services[i].line,
				"services[%zu].name: '%s' names a service discovered from Kubernetes, but there is "
				"no kubernetes group; add kubernetes: { }; (docs/kubernetes.md) or give the service "
				"a name without '/' and its addresses and endpoints",
				i, x->c->services[i].name);
}

/* A DNS-1123 subdomain (max 253) or, with label, a DNS-1123 label (max 63): what is wrong, or NULL. */
static const char *k8s_name_problem(const char *v, bool label)
{
	size_t n = strlen(v), i;

	if (!n)
		return "is empty";
	if (n > (label ? 63u : 253u))
		return label ? "is longer than 63 characters" : "is longer than 253 characters";
	for (i = 0; i < n; i++) {
		char ch = v[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');

		if (alnum)
			continue;
		if (ch == '-' && i && i + 1 < n)
			continue;
		if (ch == '.' && !label && i && i + 1 < n && v[i - 1] != '.')
			continue;
		return label ? "is not a DNS-1123 label (lower-case letters, digits and '-')"
			     : "is not a DNS-1123 name (lower-case letters, digits, '-' and '.')";
	}
	return NULL;
}

/*
 * kubernetes.api: "https://IP:PORT" (IPv6 in brackets). Only IP literals:
 * weftd never blocks on a resolver, and in a cluster the API's address comes
 * as one ($KUBERNETES_SERVICE_HOST). 0, or -EINVAL with why set.
 */
static int k8s_api_parse(const char *v, struct weft_sockaddr *out, char *why, size_t whylen)
{
	char err[128];

	if (strncmp(v, "https://", 8) != 0) {
		snprintf(why, whylen, "must start with https:// (the API is only spoken over TLS)");
		return -EINVAL;
	}
	v += 8;
	if (strchr(v, '/')) {
		snprintf(why, whylen, "must be https://IP:PORT with no path");
		return -EINVAL;
	}
	if (addr_parse(v, false, out, err, sizeof(err)) < 0) {
		snprintf(why, whylen,
			 "is not https://IP:PORT: weftd resolves no names (it never blocks on a "
			 "resolver); write the API's IP, as $KUBERNETES_SERVICE_HOST gives it");
		return -EINVAL;
	}
	return 0;
}

/*
 * kubernetes = { ... }: discovery from the API. Every key is optional; api and
 * node_name default to the environment a DaemonSet pod gets
 * ($KUBERNETES_SERVICE_HOST/_PORT, $NODE_NAME from the downward API), and
 * are errors when neither the config nor the environment has them.
 */
static void parse_kubernetes(struct cfg_ctx *x, const config_setting_t *root)
{
	const config_setting_t *g = get_group(x, root, "", "kubernetes"), *s, *l;
	struct cfg_kubernetes *k = &x->c->kubernetes;
	char eb[CFG_ECHO_BUF], why[256], p[CFG_PATH_BUF], url[128];
	const char *v, *problem;
	size_t i, n;

	if (!g)
		return;
	k->enabled = true;
	check_keys(x, g, "kubernetes", kubernetes_keys);
	v = get_str(x, g, "kubernetes", "api", &s);
	if (!s) {
		const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");

		if (!host || !*host) {
			cfg_err(x, line_of(g),
				"kubernetes.api: not set and $KUBERNETES_SERVICE_HOST is empty (weftd is not in a pod); "
				"write api = \"https://IP:PORT\";");
		} else {
			snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
				 port && *port ? port : "443");
			v = url;
		}
	}
	if (v) {
		if (k8s_api_parse(v, &k->api_addr, why, sizeof(why)) < 0)
			cfg_err(x, s ? line_of(s) : line_of(g), "kubernetes.api: '%s' %s", echo(v, eb), why);
		else
			set_str(x, &k->api, v);
	}
	v = get_str(x, g, "kubernetes", "token_file", &s);
	if (v && !*v)
		cfg_err(x, line_of(s), "kubernetes.token_file: is empty");
	else if (v)
		set_str(x, &k->token_file, v);
	v = get_str(x, g, "kubernetes", "ca_file", &s);
	if (v && !*v)
		cfg_err(x, line_of(s), "kubernetes.ca_file: is empty");
	else if (v)
		set_str(x, &k->ca_file, v);
	v = get_str(x, g, "kubernetes", "node_name", &s);
	if (!s) {
		v = getenv("NODE_NAME");
		if (!v || !*v) {
			cfg_err(x, line_of(g),
				"kubernetes.node_name: not set and $NODE_NAME is empty; set it (a DaemonSet passes it "
				"with the downward API: fieldRef spec.nodeName)");
			v = NULL;
		}
	}
	if (v && (problem = k8s_name_problem(v, false)))
		cfg_err(x, s ? line_of(s) : line_of(g), "kubernetes.node_name: '%s' %s", echo(v, eb), problem);
	else if (v)
		set_str(x, &k->node_name, v);
	l = get_seq(x, g, "kubernetes", "namespaces", "[ \"default\", \"shop\" ]");
	if (!l)
		return;
	n = (size_t)config_setting_length(l);
	if (n > CFG_K8S_MAX_NAMESPACES) {
		cfg_err(x, line_of(l), "kubernetes.namespaces: %zu entries; at most %d (leave it empty for all)", n,
			CFG_K8S_MAX_NAMESPACES);
		return;
	}
	if (!n)
		return;
	k->namespaces = calloc(n, sizeof(*k->namespaces));
	if (!k->namespaces) {
		x->oom = true;
		return;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);

		join_idx(p, sizeof(p), "kubernetes", "namespaces", i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			cfg_err(x, line_of(e), "%s: expected a string (a namespace), got %s", p, type_name(e));
			continue;
		}
		v = config_setting_get_string(e);
		if ((problem = k8s_name_problem(v, true))) {
			cfg_err(x, line_of(e), "%s: '%s' %s", p, echo(v, eb), problem);
			continue;
		}
		k->namespaces[k->n_namespaces] = strdup(v);
		if (!k->namespaces[k->n_namespaces]) {
			x->oom = true;
			return;
		}
		k->n_namespaces++;
	}
}

/* --- tls ----------------------------------------------------------------------- */

/*
 * Is path a readable regular file? Only regular files are opened (lib/file):
 * opening a FIFO blocks, a device node can have side effects, and a
 * certificate is never one. -EINVAL: another kind of file, named in *kind.
 */
static int file_readable(const char *path, const char **kind)
{
	struct stat st;
	int fd;

	fd = file_open_regular(path, &st);
	if (fd == -EINVAL)
		*kind = file_kind(st.st_mode);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static char *get_file(struct cfg_ctx *x, const config_setting_t *grp, const char *path, const char *key, bool required);

static void parse_tls(struct cfg_ctx *x, const config_setting_t *root)
{
	const config_setting_t *g = get_group(x, root, "", "tls"), *s;
	struct weft_config *c = x->c;
	char **dst[3] = { &c->tls_ca, &c->tls_cert, &c->tls_key };
	char eb[CFG_ECHO_BUF];
	const char *v, *kind = NULL;
	size_t i;
	int r;

	if (!g)
		return;
	x->tls_group = true;
	check_keys(x, g, "tls", tls_keys);
	for (i = 0; i < 3; i++) {
		v = get_str(x, g, "tls", tls_keys[i], &s);
		if (!s) {
			cfg_err(x, line_of(g), "tls: missing required key '%s'; mutual TLS needs ca, cert and key",
				tls_keys[i]);
			continue;
		}
		if (!v)
			continue;
		if (!*v) {
			cfg_err(x, line_of(s), "tls.%s: is empty; write the path of a PEM file", tls_keys[i]);
			continue;
		}
		r = file_readable(v, &kind);
		if (r == -EINVAL) {
			cfg_err(x, line_of(s),
				"tls.%s: cannot read '%s': not a regular file (%s); write the path of a PEM file",
				tls_keys[i], echo(v, eb), kind);
			continue;
		}
		if (r) {
			cfg_err(x, line_of(s), "tls.%s: cannot read '%s': %s", tls_keys[i], echo(v, eb), strerror(-r));
			continue;
		}
		*dst[i] = strdup(v);
		if (!*dst[i])
			x->oom = true;
	}
	v = get_str(x, g, "tls", "trust_domain", &s);
	if (v) {
		char why[160];

		if (spiffe_td_check(v, why, sizeof(why)) < 0) {
			cfg_err(x, line_of(s), "tls.trust_domain: %s", why);
		} else {
			c->tls_trust_domain = strdup(v);
			if (!c->tls_trust_domain)
				x->oom = true;
		}
	}
	get_int(x, g, "tls", "handshake_timeout_ms", 100, 60000, &c->tls_handshake_timeout_ms);
	get_int(x, g, "tls", "max_handshakes", 1, 65536, &c->tls_max_handshakes);
	get_int(x, g, "tls", "cert_lifetime_s", 300, 31622400, &c->tls_cert_lifetime_s);
	c->tls_issuer_cert = get_file(x, g, "tls", "issuer_cert", false);
	c->tls_issuer_key = get_file(x, g, "tls", "issuer_key", false);
	if (!c->tls_issuer_cert != !c->tls_issuer_key && config_setting_get_member(g, "issuer_cert") &&
	    config_setting_get_member(g, "issuer_key")) {
		/* one of them had its own error, already reported */
	} else if (!!config_setting_get_member(g, "issuer_cert") != !!config_setting_get_member(g, "issuer_key")) {
		cfg_err(x, line_of(g),
			"tls: issuer_cert and issuer_key go together (the CA that mints identity certificates)");
	}
}

/* A PEM file path member that must exist (readable regular file). */
static char *get_file(struct cfg_ctx *x, const config_setting_t *grp, const char *path, const char *key, bool required)
{
	const config_setting_t *s;
	char p[CFG_PATH_BUF], eb[CFG_ECHO_BUF];
	const char *v = get_str(x, grp, path, key, &s), *kind = NULL;
	char *dup;
	int r;

	join(p, sizeof(p), path, key);
	if (!s) {
		if (required)
			cfg_err(x, line_of(grp), "%s: missing required key '%s'; write the path of a PEM file", path,
				key);
		return NULL;
	}
	if (!v)
		return NULL;
	r = *v ? file_readable(v, &kind) : -ENOENT;
	if (r == -EINVAL) {
		cfg_err(x, line_of(s), "%s: cannot read '%s': not a regular file (%s); write the path of a PEM file", p,
			echo(v, eb), kind);
		return NULL;
	}
	if (r) {
		cfg_err(x, line_of(s), "%s: cannot read '%s': %s", p, echo(v, eb), strerror(-r));
		return NULL;
	}
	dup = strdup(v);
	if (!dup)
		x->oom = true;
	return dup;
}

/*
 * identities = ( { cgroup = "glob"; identity = "spiffe://td/..."; cert = ""; key = ""; }, ... )
 * Checked here: shape, SPIFFE syntax, files readable, the identity in the
 * trust domain when tls.trust_domain is set. That the certificate really
 * carries the identity is checked when weftd loads it.
 */
static void parse_identities(struct cfg_ctx *x, const config_setting_t *root)
{
	const config_setting_t *l = config_setting_get_member(root, "identities");
	struct weft_config *c = x->c;
	char p[CFG_PATH_BUF], eb[CFG_ECHO_BUF], why[160];
	size_t i, n;

	if (!l)
		return;
	if (config_setting_type(l) != CONFIG_TYPE_LIST) {
		cfg_err(x, line_of(l),
			"identities: expected a list ( { cgroup = \"...\"; identity = \"spiffe://...\"; }, ... ), got %s",
			type_name(l));
		return;
	}
	if (!x->tls_group)
		cfg_err(x, line_of(l),
			"identities: needs the tls group (ca, cert, key): identities are proven with certificates");
	n = (size_t)config_setting_length(l);
	if (n > CFG_MAX_IDENTITIES) {
		cfg_err(x, line_of(l), "identities: %zu entries; at most %d are supported", n, CFG_MAX_IDENTITIES);
		n = CFG_MAX_IDENTITIES;
	}
	if (!n)
		return;
	c->identities = calloc(n, sizeof(*c->identities));
	if (!c->identities) {
		x->oom = true;
		return;
	}
	for (i = 0; i < n && !x->oom; i++) {
		const config_setting_t *g = config_setting_get_elem(l, (unsigned)i), *s;
		struct cfg_identity *id = &c->identities[c->n_identities];
		const char *v;
		bool minted;

		snprintf(p, sizeof(p), "identities[%zu]", i);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			cfg_err(x, line_of(g), "%s: expected a group { cgroup = ...; identity = ...; }, got %s", p,
				type_name(g));
			continue;
		}
		c->n_identities++;
		id->line = (int)line_of(g);
		check_keys(x, g, p, identity_keys);
		v = get_str(x, g, p, "cgroup", &s);
		if (!s)
			cfg_err(x, line_of(g),
				"%s: missing required key 'cgroup'; write the cgroup path or glob of the workload", p);
		else if (v && !*v)
			cfg_err(x, line_of(s), "%s.cgroup: is empty", p);
		else if (v && !(id->cgroup = strdup(v)))
			x->oom = true;
		v = get_str(x, g, p, "identity", &s);
		if (!s) {
			cfg_err(x, line_of(g),
				"%s: missing required key 'identity'; write identity = \"spiffe://<trust domain>/...\";",
				p);
		} else if (v && spiffe_id_check(v, strlen(v), why, sizeof(why)) < 0) {
			cfg_err(x, line_of(s), "%s.identity: %s", p, why);
		} else if (v && c->tls_trust_domain && !spiffe_in_trust_domain(v, c->tls_trust_domain)) {
			cfg_err(x, line_of(s), "%s.identity: '%s' is not in tls.trust_domain '%s'", p, echo(v, eb),
				c->tls_trust_domain);
		} else if (v && !(id->identity = strdup(v))) {
			x->oom = true;
		}
		/* without cert and key, the identity's certificate is minted from tls.issuer_* */
		minted = !config_setting_get_member(g, "cert") && !config_setting_get_member(g, "key");
		if (minted && !c->tls_issuer_cert && x->tls_group) {
			cfg_err(x, line_of(g),
				"%s: give cert and key, or set tls.issuer_cert and tls.issuer_key to "
				"mint this identity's certificate",
				p);
		} else if (!minted) {
			id->cert = get_file(x, g, p, "cert", true);
			id->key = get_file(x, g, p, "key", true);
		}
	}
}

/* --- text-level checks --------------------------------------------------------- */

/*
 * Refuses @include (libconfig's scanner takes it at the start of a line, so
 * that is what we look for, even inside a comment or string: refusing too
 * much is harmless, opening another file is not), then marks wide integer
 * literals. *fixed is NULL when the text needs no change.
 */
static int cfg_prescan(struct cfg_ctx *x, const char *text, char **fixed)
{
	unsigned line;

	int ret = 0;

	*fixed = NULL;
	for (line = lcfg_include_line(text, 0); line; line = lcfg_include_line(text, line)) {
		cfg_err(x, line, "@include is not supported; put the whole configuration in one file");
		ret = -EINVAL;
	}
	return ret ? ret : lcfg_fix_ints(text, fixed);
}

/* --- load ---------------------------------------------------------------------- */

static struct weft_config *cfg_new(const char *name)
{
	struct weft_config *c = calloc(1, sizeof(*c));
	char why[128];

	if (!c)
		return NULL;
	c->path = strdup(name);
	c->bpf_pin_path = strdup("/sys/fs/bpf/weft");
	c->tracing.path = strdup("/api/v2/spans");
	c->kubernetes.token_file = strdup(CFG_K8S_DEFAULT_TOKEN);
	c->kubernetes.ca_file = strdup(CFG_K8S_DEFAULT_CA);
	c->tracing.service_name = strdup("weft");
	if (!c->path || !c->bpf_pin_path || !c->tracing.path || !c->tracing.service_name || !c->kubernetes.token_file ||
	    !c->kubernetes.ca_file) {
		cfg_free(c);
		return NULL;
	}
	addr_parse("127.0.0.1:9990", false, &c->admin, why, sizeof(why));
	addr_parse("0.0.0.0:4143", false, &c->inbound, why, sizeof(why));
	c->outbound_port = 15001;
	c->fail_mode = CFG_FAIL_OPEN;
	c->heartbeat_stale_ms = 3000;
	c->mark = 0x574546;
	c->log_level = CFG_LOG_INFO;
	c->log_rate_limit = 10; /* LOG_RL_DEFAULT */
	c->max_connections = 65536;
	c->buffer_memory_mb = 64;
	c->buffer_memory_workload_pct = 25;
	c->buffer_size = 65536;
	c->drain_timeout_ms = 10000;
	c->workers = 0;
	c->tls_handshake_timeout_ms = 5000;
	c->tls_max_handshakes = 256;
	c->tls_cert_lifetime_s = 86400;
	c->redirect_loopback = false; /* opt-in: see docs/config.md for its two caveats */
	c->splice = true;
	c->tracing.sample_rate = 1.0;
	c->tracing.queue_size = 4096;
	c->tracing.batch_size = 100;
	c->tracing.flush_ms = 1000;
	c->dns_timeout_ms = 2000;
	return c;
}

/* libconfig's own wording, with a hint where it has one to give. */
static void report_syntax_error(struct cfg_ctx *x, const config_t *lc)
{
	const char *text = config_error_text(lc);
	unsigned line = config_error_line(lc) > 0 ? (unsigned)config_error_line(lc) : 0;

	if (!text || !strcmp(text, "syntax error"))
		cfg_err(x, line,
			"syntax error: unexpected text; look for a missing ';', '=', quote or bracket, or a ',' before ']' or ')', here or on the line before");
	else if (!strcmp(text, "duplicate setting name"))
		cfg_err(x, line, "syntax error: duplicate setting name; a key may appear only once in a group");
	else if (!strcmp(text, "memory exhausted"))
		cfg_err(x, line, "syntax error: memory exhausted; brackets are nested too deep");
	else if (!strcmp(text, "mismatched element type in array"))
		cfg_err(x, line,
			"syntax error: mismatched element type in array; the elements of [ ... ] must all have one type");
	else
		cfg_err(x, line, "syntax error: %s", text);
}

/* FNV-1a, 64 bits: says which text is in force (weft_config_hash), not a security check. */
static uint64_t cfg_text_hash(const char *text)
{
	uint64_t h = 1469598103934665603ull;

	for (; *text; text++)
		h = (h ^ (unsigned char)*text) * 1099511628211ull;
	return h;
}

int cfg_load_string(const char *text, const char *name, struct weft_config **out, struct cfg_errors *errs)
{
	struct cfg_errors local = { 0 };
	struct weft_config *c = NULL;
	struct cfg_ctx x = { 0 };
	const config_setting_t *root;
	char *fixed = NULL;
	bool lc_ready = false;
	config_t lc;
	int ret;

	x.name = name ? name : "<string>";
	x.errs = errs ? errs : &local;
	x.first = x.errs->n;
	x.lines = malloc(CFG_MAX_ERRORS * sizeof(*x.lines));
	if (!x.lines) {
		ret = -ENOMEM;
		goto out;
	}

	ret = cfg_prescan(&x, text, &fixed);
	if (ret)
		goto out;

	config_init(&lc);
	lc_ready = true;
	if (config_read_string(&lc, fixed ? fixed : text) != CONFIG_TRUE) {
		report_syntax_error(&x, &lc);
		ret = -EINVAL;
		goto out;
	}

	c = cfg_new(x.name);
	if (!c) {
		ret = -ENOMEM;
		goto out;
	}
	x.c = c;
	root = config_root_setting(&lc);
	check_keys(&x, root, "", root_keys);
	parse_agent(&x, root);
	parse_intercept(&x, root);
	parse_tracing(&x, root); /* before services: the collector is checked against their addresses */
	if (!x.oom)
		parse_services(&x, root);
	if (!x.oom)
		parse_tls(&x, root);
	if (!x.oom)
		parse_identities(&x, root);
	if (!x.oom)
		parse_kubernetes(&x, root);
	if (!x.oom)
		check_overrides(&x);
	if (!x.oom)
		check_node_endpoints(&x);

	if (x.oom)
		ret = -ENOMEM;
	else if (x.n_problems)
		ret = -EINVAL;
	if (!ret) {
		c->text_hash = cfg_text_hash(text);
		*out = c;
		c = NULL;
	}
out:
	if (x.oom && !ret)
		ret = -ENOMEM;
	cfg_sort_errors(&x);
	cfg_free(c);
	if (lc_ready)
		config_destroy(&lc);
	free(fixed);
	free(x.lines);
	cfg_errors_free(&local);
	return ret;
}

int cfg_load(const char *path, struct weft_config **out, struct cfg_errors *errs)
{
	struct cfg_errors local = { 0 };
	struct stat st;
	char *buf = NULL, *nul;
	size_t len = 0, cap = 0;
	int fd, ret;

	if (!errs)
		errs = &local;
	/* never blocks: a FIFO would stall reload, and with it the heartbeat */
	fd = file_open_regular(path, &st);
	if (fd == -EISDIR) {
		ret = fd;
		errs_addf(errs, "%s: cannot read: %s", path, strerror(EISDIR));
		goto out;
	}
	if (fd == -EINVAL) {
		ret = fd;
		errs_addf(errs, "%s: not a regular file (%s); point weftd -c at a regular file", path,
			  file_kind(st.st_mode));
		goto out;
	}
	if (fd < 0) {
		ret = fd;
		errs_addf(errs, "%s: cannot open: %s", path, strerror(-ret));
		goto out;
	}
	/* Not trusting st_size: the file may change under us. */
	for (;;) {
		ssize_t r;

		if (len + 1 >= cap) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *nb;

			if (ncap > (size_t)CFG_MAX_FILE_SIZE + 2)
				ncap = (size_t)CFG_MAX_FILE_SIZE + 2;
			nb = realloc(buf, ncap);
			if (!nb) {
				ret = -ENOMEM;
				errs_addf(errs, "%s: cannot read: %s", path, strerror(ENOMEM));
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			errs_addf(errs, "%s: cannot read: %s", path, strerror(-ret));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > CFG_MAX_FILE_SIZE) {
			ret = -EFBIG;
			errs_addf(errs, "%s: is larger than %u MiB; that is not a weft configuration", path,
				  CFG_MAX_FILE_SIZE >> 20);
			goto out;
		}
	}
	buf[len] = '\0';
	nul = memchr(buf, '\0', len);
	if (nul) {
		unsigned line = 1;
		const char *q;

		for (q = buf; q < nul; q++)
			line += *q == '\n';
		ret = -EINVAL;
		errs_addf(errs, "%s:%u: contains a NUL byte; a configuration file is plain text", path, line);
		goto out;
	}
	ret = cfg_load_string(buf, path, out, errs);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	cfg_errors_free(&local);
	return ret;
}

static void header_kvs_free(struct cfg_header_kv *kv, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(kv[i].name);
		free(kv[i].value);
	}
	free(kv);
}

static void route_free(struct cfg_route *r)
{
	size_t i;

	free(r->name);
	free(r->method);
	free(r->host);
	free(r->path);
	header_kvs_free(r->match_headers, r->n_match_headers);
	for (i = 0; i < r->n_backends; i++)
		free(r->backends[i].service);
	free(r->backends);
	header_kvs_free(r->add_headers, r->n_add_headers);
	for (i = 0; i < r->n_remove_headers; i++)
		free(r->remove_headers[i]);
	free(r->remove_headers);
}

void cfg_free(struct weft_config *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n_services; i++) {
		size_t j;

		free(c->services[i].name);
		free(c->services[i].addrs);
		free(c->services[i].endpoints);
		for (j = 0; j < c->services[i].n_sources; j++) {
			free(c->services[i].sources[j].name);
			free(c->services[i].sources[j].zone);
		}
		free(c->services[i].sources);
		for (j = 0; j < c->services[i].n_allow; j++)
			free(c->services[i].allow[j]);
		free(c->services[i].allow);
		for (j = 0; j < c->services[i].n_routes; j++)
			route_free(&c->services[i].routes[j]);
		free(c->services[i].routes);
	}
	free(c->services);
	for (i = 0; i < c->n_cgroups; i++)
		free(c->cgroups[i]);
	free(c->cgroups);
	free(c->path);
	free(c->bpf_pin_path);
	free(c->tls_ca);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->tls_trust_domain);
	free(c->tls_issuer_cert);
	free(c->tls_issuer_key);
	free(c->tracing.path);
	free(c->tracing.service_name);
	free(c->kubernetes.api);
	free(c->kubernetes.token_file);
	free(c->kubernetes.ca_file);
	free(c->kubernetes.node_name);
	for (i = 0; i < c->kubernetes.n_namespaces; i++)
		free(c->kubernetes.namespaces[i]);
	free(c->kubernetes.namespaces);
	for (i = 0; i < c->n_identities; i++) {
		free(c->identities[i].cgroup);
		free(c->identities[i].identity);
		free(c->identities[i].cert);
		free(c->identities[i].key);
	}
	free(c->identities);
	for (i = 0; i < c->n_zones; i++)
		free(c->zones[i]);
	free(c->zones);
	free(c->zone);
	free(c);
}
