// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kubernetes API objects from JSON (shapes, bounds and the choice of jansson
 * in k8s.h).
 *
 * jansson parses the whole document; then one function per object walks the
 * fields weft reads. A decoder context carries the path of the field being
 * read ("items[3].spec.ports[2]") so that every error names the field, and
 * the first error wins: a getter that fails has already written the message,
 * its callers only pass the -EINVAL up through their one cleanup path.
 *
 * Field getters answer 1 (present, of the right type), 0 (absent or null) or
 * -EINVAL (wrong type; required and absent), so "optional with a default" and
 * "required" read the same way at each call site.
 */
#include "codec/k8s.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Longest piece of input quoted in an error message. */
#define ECHO_MAX 64
/* A buffered line beyond this is freed once it has been handed over: the
 * buffer of a stream that once carried a 4 MiB object does not stay 4 MiB. */
#define LINES_KEEP (64u << 10)
#define LINES_MIN_CAP 4096u

/* --- jansson's memory: one arena per document ------------------------------------ */

/*
 * A page of 500 EndpointSlices is about 10^5 small jansson allocations.
 * Given back one by one (json_decref walks the tree), they were a quarter of
 * weftd's CPU in a relist of 10k Services (perf): the frees, then glibc merging
 * them at its next large request, and they were scattered among the model's
 * long-lived blocks. So from parse() to doc_end() jansson allocates from
 * chunks that doc_end() drops at once, and its frees do nothing. jansson's
 * allocator is process-wide: this module is weftd's only jansson user, and
 * a decode runs start to end on one thread with no decode inside another.
 * Memory: what jansson asked for during the document (about what it would
 * hold at its peak, since it frees little before the end), then one chunk
 * kept for the next document.
 */
#define ARENA_CHUNK (256u << 10)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	max_align_t data[];
};

static struct arena_chunk *arena, *arena_spare;

static void *arena_alloc(size_t n)
{
	const size_t al = _Alignof(max_align_t);
	struct arena_chunk *c = arena;
	void *p;

	if (n > SIZE_MAX / 2)
		return NULL;
	n = (n + al - 1) & ~(al - 1);
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;

		if (arena_spare && arena_spare->cap >= cap) {
			c = arena_spare;
			arena_spare = NULL;
		} else {
			c = malloc(sizeof(*c) + cap);
			if (!c)
				return NULL;
			c->cap = cap;
		}
		c->used = 0;
		c->next = arena;
		arena = c;
	}
	p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

static void arena_nofree(void *p)
{
	(void)p;
}

/* Every jansson value of the document is gone after this (no tree walk). */
static void doc_end(void)
{
	json_set_alloc_funcs(malloc, free);
	while (arena) {
		struct arena_chunk *c = arena;

		arena = c->next;
		if (!arena_spare && c->cap == ARENA_CHUNK) {
			arena_spare = c;
			continue;
		}
		free(c);
	}
}

struct dec {
	char *err;
	size_t errlen;
	char path[192];
	size_t plen;
	bool failed; /* the first error wins */
};

/* --- errors and the field path ------------------------------------------------ */

/* Control characters and non-ASCII bytes of the input never reach a log line raw. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

/* Input text for an error message: at most ECHO_MAX bytes, "..." when cut. */
static const char *echo(const char *s, size_t n, char *buf, size_t buflen)
{
	size_t k = n < ECHO_MAX ? n : ECHO_MAX;

	if (k > buflen - 4)
		k = buflen - 4;
	memcpy(buf, s, k);
	if (k < n) {
		memcpy(buf + k, "...", 4);
	} else {
		buf[k] = '\0';
	}
	sanitize(buf);
	return buf;
}

static void dec_init(struct dec *d, char *err, size_t errlen, const char *root)
{
	d->err = errlen ? err : NULL;
	d->errlen = errlen;
	if (d->err)
		d->err[0] = '\0';
	d->plen = (size_t)snprintf(d->path, sizeof(d->path), "%s", root);
	if (d->plen >= sizeof(d->path))
		d->plen = sizeof(d->path) - 1;
	d->failed = false;
}

/* Appends ".seg" (or "[i]" when seg starts with '['); returns what to pop back to. */
static size_t push(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t push(struct dec *d, const char *fmt, ...)
{
	size_t old = d->plen, room;
	va_list ap;
	int n;

	if (d->plen && fmt[0] != '[' && d->plen + 1 < sizeof(d->path))
		d->path[d->plen++] = '.';
	room = sizeof(d->path) - d->plen;
	va_start(ap, fmt);
	n = vsnprintf(d->path + d->plen, room, fmt, ap);
	va_end(ap);
	d->plen += n < 0 ? 0 : (size_t)n >= room ? room - 1 : (size_t)n;
	return old;
}

static void pop(struct dec *d, size_t old)
{
	d->plen = old;
	d->path[old] = '\0';
}

/* "path.field: message"; field may be NULL (the path itself is at fault). Always -EINVAL. */
static int fail(struct dec *d, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct dec *d, const char *field, const char *fmt, ...)
{
	va_list ap;
	size_t n;
	int k;

	if (d->failed || !d->err)
		goto out;
	d->failed = true;
	if (d->plen && field)
		k = snprintf(d->err, d->errlen, "%s.%s: ", d->path, field);
	else if (d->plen || field)
		k = snprintf(d->err, d->errlen, "%s: ", d->plen ? d->path : field);
	else
		k = 0;
	n = k < 0 ? 0 : (size_t)k;
	if (n < d->errlen) {
		va_start(ap, fmt);
		vsnprintf(d->err + n, d->errlen - n, fmt, ap);
		va_end(ap);
	}
	sanitize(d->err);
out:
	d->failed = true;
	return -EINVAL;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "?";
}

/* --- typed getters: 1 present, 0 absent/null, -EINVAL wrong type or required ---- */

static int get(struct dec *d, json_t *obj, const char *key, json_type type, bool required, json_t **out,
	       const char *want)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return fail(d, key, "required, missing");
		return 0;
	}
	if (json_typeof(v) != type && !(type == JSON_TRUE && json_is_boolean(v)))
		return fail(d, key, "expected %s, got %s", want, type_name(v));
	*out = v;
	return 1;
}

static int get_obj(struct dec *d, json_t *obj, const char *key, bool required, json_t **out)
{
	return get(d, obj, key, JSON_OBJECT, required, out, "an object");
}

/* An array of at most max elements. */
static int get_arr(struct dec *d, json_t *obj, const char *key, bool required, size_t max, const char *what,
		   json_t **out)
{
	int rc = get(d, obj, key, JSON_ARRAY, required, out, "an array");

	if (rc == 1 && json_array_size(*out) > max)
		return fail(d, key, "%zu %s, more than the limit of %zu", json_array_size(*out), what, max);
	return rc;
}

static int get_str(struct dec *d, json_t *obj, const char *key, bool required, const char **s, size_t *n)
{
	json_t *v;
	int rc = get(d, obj, key, JSON_STRING, required, &v, "a string");

	*s = "";
	*n = 0;
	if (rc == 1) {
		*s = json_string_value(v);
		*n = json_string_length(v);
	}
	return rc;
}

static int get_int(struct dec *d, json_t *obj, const char *key, bool required, long long lo, long long hi,
		   long long *out)
{
	json_t *v;
	int rc = get(d, obj, key, JSON_INTEGER, required, &v, "an integer");

	if (rc == 1) {
		*out = json_integer_value(v);
		if (*out < lo || *out > hi)
			return fail(d, key, "%lld is out of range %lld..%lld", *out, lo, hi);
	}
	return rc;
}

static int get_bool(struct dec *d, json_t *obj, const char *key, bool *out)
{
	json_t *v;
	int rc = get(d, obj, key, JSON_TRUE, false, &v, "a boolean");

	if (rc == 1)
		*out = json_is_true(v);
	return rc;
}

/* --- strings: length and characters ------------------------------------------ */

enum charset {
	CS_SUBDOMAIN, /* DNS-1123 subdomain: [a-z0-9.-], alphanumeric at both ends */
	CS_LABEL,     /* DNS-1123 label: [a-z0-9-], alphanumeric at both ends */
	CS_LABEL_VAL, /* label value: [A-Za-z0-9._-], alphanumeric at both ends */
	CS_TOKEN,     /* printable ASCII, no space */
};

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool chars_ok(const char *s, size_t n, enum charset cs)
{
	size_t i;

	if (cs == CS_TOKEN) {
		for (i = 0; i < n; i++)
			if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
				return false;
		return true;
	}
	if (cs == CS_LABEL_VAL ? !is_alnum(s[0]) || !is_alnum(s[n - 1])
			       : !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];
		bool ok;

		switch (cs) {
		case CS_SUBDOMAIN:
			ok = is_lower_alnum(c) || c == '-' || c == '.';
			break;
		case CS_LABEL:
			ok = is_lower_alnum(c) || c == '-';
			break;
		default:
			ok = is_alnum(c) || c == '-' || c == '.' || c == '_';
			break;
		}
		if (!ok)
			return false;
	}
	return true;
}

static const char *const cs_what[] = {
	[CS_SUBDOMAIN] = "a DNS subdomain name ([a-z0-9.-], alphanumeric at both ends)",
	[CS_LABEL] = "a DNS label ([a-z0-9-], alphanumeric at both ends)",
	[CS_LABEL_VAL] = "a label value ([A-Za-z0-9._-], alphanumeric at both ends)",
	[CS_TOKEN] = "printable ASCII without spaces",
};

/* Checks s (n bytes) against max and cs and copies it into dst (max + 1 bytes). */
static int put_str(struct dec *d, const char *key, const char *s, size_t n, char *dst, size_t max, enum charset cs,
		   bool allow_empty)
{
	char e[ECHO_MAX + 8];

	if (n == 0) {
		if (!allow_empty)
			return fail(d, key, "must not be empty");
		dst[0] = '\0';
		return 0;
	}
	if (n > max)
		return fail(d, key, "'%s' is %zu bytes long, more than the limit of %zu", echo(s, n, e, sizeof(e)), n,
			    max);
	if (!chars_ok(s, n, cs))
		return fail(d, key, "'%s' is not %s", echo(s, n, e, sizeof(e)), cs_what[cs]);
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* An optional (or required) string field straight into dst. */
static int str_field(struct dec *d, json_t *obj, const char *key, bool required, char *dst, size_t max, enum charset cs)
{
	const char *s;
	size_t n;
	int rc = get_str(d, obj, key, required, &s, &n);

	if (rc < 0)
		return rc;
	if (rc == 0) {
		dst[0] = '\0';
		return 0;
	}
	return put_str(d, key, s, n, dst, max, cs, !required);
}

/* Free text (Status reason, message): cut at a UTF-8 boundary, control characters as '?'. */
static void copy_text(char *dst, size_t dlen, const char *s, size_t n)
{
	size_t i;

	if (!dst || !dlen)
		return;
	if (n > dlen - 1) {
		n = dlen - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--; /* s[n] continues a character: cut before its lead byte */
	}
	for (i = 0; i < n; i++)
		dst[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	dst[n] = '\0';
}

/* --- IP addresses -------------------------------------------------------------- */

/* inet_pton of family (AF_UNSPEC: either). Unspecified and multicast addresses
 * are never a service or an endpoint (nor is 255.255.255.255). */
static int put_ip(struct dec *d, const char *key, const char *s, size_t n, int family, struct k8s_ip *ip)
{
	char txt[INET6_ADDRSTRLEN], e[ECHO_MAX + 8];
	const char *fam = family == AF_INET ? "an IPv4" : family == AF_INET6 ? "an IPv6" : "an IP";

	memset(ip, 0, sizeof(*ip));
	if (n == 0 || n >= sizeof(txt))
		goto bad;
	memcpy(txt, s, n);
	txt[n] = '\0';
	if (family != AF_INET6 && inet_pton(AF_INET, txt, &ip->v4) == 1) {
		uint32_t a = ntohl(ip->v4.s_addr);

		ip->family = AF_INET;
		if (a == 0 || a == 0xffffffffu || (a >> 28) == 0xe)
			return fail(d, key, "'%s' is not a unicast address", txt);
		return 0;
	}
	if (family != AF_INET && inet_pton(AF_INET6, txt, &ip->v6) == 1) {
		ip->family = AF_INET6;
		if (IN6_IS_ADDR_UNSPECIFIED(&ip->v6) || IN6_IS_ADDR_MULTICAST(&ip->v6))
			return fail(d, key, "'%s' is not a unicast address", txt);
		return 0;
	}
bad:
	return fail(d, key, "'%s' is not %s address", echo(s, n, e, sizeof(e)), fam);
}

static bool ip_equal(const struct k8s_ip *a, const struct k8s_ip *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == AF_INET)
		return a->v4.s_addr == b->v4.s_addr;
	return memcmp(&a->v6, &b->v6, sizeof(a->v6)) == 0;
}

char *k8s_ip_format(const struct k8s_ip *ip, uint16_t port, char *buf, size_t len)
{
	char txt[INET6_ADDRSTRLEN];

	if (!len)
		return buf;
	if (!inet_ntop(ip->family, ip->family == AF_INET ? (const void *)&ip->v4 : (const void *)&ip->v6, txt,
		       sizeof(txt)))
		snprintf(txt, sizeof(txt), "?");
	if (!port)
		snprintf(buf, len, "%s", txt);
	else if (ip->family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", txt, port);
	else
		snprintf(buf, len, "%s:%u", txt, port);
	return buf;
}

void k8s_ip_sockaddr(const struct k8s_ip *ip, uint16_t port, struct weft_sockaddr *out)
{
	memset(out, 0, sizeof(*out));
	if (ip->family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&ip->v6)) {
		out->in6.sin6_family = AF_INET6;
		out->in6.sin6_port = htons(port);
		out->in6.sin6_addr = ip->v6;
		out->len = sizeof(out->in6);
		return;
	}
	out->in4.sin_family = AF_INET;
	out->in4.sin_port = htons(port);
	if (ip->family == AF_INET)
		out->in4.sin_addr = ip->v4;
	else
		memcpy(&out->in4.sin_addr, &ip->v6.s6_addr[12], 4);
	out->len = sizeof(out->in4);
}

/* --- names of things ------------------------------------------------------------ */

const char *k8s_kind_name(enum k8s_kind kind)
{
	switch (kind) {
	case K8S_SERVICE:
		return "Service";
	case K8S_ENDPOINTSLICE:
		return "EndpointSlice";
	case K8S_POD:
		return "Pod";
	case K8S_NODE:
		return "Node";
	}
	return "?";
}

static const char *kind_api_version(enum k8s_kind kind)
{
	return kind == K8S_ENDPOINTSLICE ? "discovery.k8s.io/v1" : "v1";
}

static const char *kind_list_name(enum k8s_kind kind)
{
	switch (kind) {
	case K8S_SERVICE:
		return "ServiceList";
	case K8S_ENDPOINTSLICE:
		return "EndpointSliceList";
	case K8S_POD:
		return "PodList";
	case K8S_NODE:
		return "NodeList";
	}
	return "?";
}

const char *k8s_event_type_name(enum k8s_event_type t)
{
	static const char *const names[] = {
		[K8S_EV_ADDED] = "ADDED",       [K8S_EV_MODIFIED] = "MODIFIED", [K8S_EV_DELETED] = "DELETED",
		[K8S_EV_BOOKMARK] = "BOOKMARK", [K8S_EV_ERROR] = "ERROR",
	};

	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

const char *k8s_proto_name(enum k8s_proto p)
{
	switch (p) {
	case K8S_PROTO_TCP:
		return "TCP";
	case K8S_PROTO_UDP:
		return "UDP";
	case K8S_PROTO_SCTP:
		return "SCTP";
	}
	return "?";
}

/* Matches the string field key against names[0..n) (NULL entries skipped);
 * absent: *out = dflt. */
static int enum_field(struct dec *d, json_t *obj, const char *key, const char *const *names, size_t n, int dflt,
		      const char *allowed, int *out)
{
	char e[ECHO_MAX + 8];
	const char *s;
	size_t len, i;
	int rc = get_str(d, obj, key, false, &s, &len);

	*out = dflt;
	if (rc <= 0)
		return rc;
	for (i = 0; i < n; i++)
		if (names[i] && strlen(names[i]) == len && memcmp(names[i], s, len) == 0) {
			*out = (int)i;
			return 0;
		}
	return fail(d, key, "'%s' is not one of %s", echo(s, len, e, sizeof(e)), allowed);
}

static int protocol_field(struct dec *d, json_t *obj, enum k8s_proto *p)
{
	static const char *const names[] = {
		[K8S_PROTO_TCP] = "TCP", [K8S_PROTO_UDP] = "UDP", [K8S_PROTO_SCTP] = "SCTP"
	};
	int v, rc = enum_field(d, obj, "protocol", names, 3, K8S_PROTO_TCP, "TCP, UDP, SCTP", &v);

	*p = (enum k8s_proto)v;
	return rc;
}

/* "kind" and "apiVersion", when present, are those of kind (list: "<Kind>List"). */
static int check_type_meta(struct dec *d, json_t *obj, const char *want_kind, const char *want_api)
{
	char e[ECHO_MAX + 8];
	const char *s;
	size_t n;
	int rc;

	if ((rc = get_str(d, obj, "kind", false, &s, &n)) < 0)
		return rc;
	if (rc == 1 && (strlen(want_kind) != n || memcmp(s, want_kind, n) != 0))
		return fail(d, "kind", "'%s' where %s was expected", echo(s, n, e, sizeof(e)), want_kind);
	if ((rc = get_str(d, obj, "apiVersion", false, &s, &n)) < 0)
		return rc;
	if (rc == 1 && (strlen(want_api) != n || memcmp(s, want_api, n) != 0))
		return fail(d, "apiVersion", "'%s' where %s was expected", echo(s, n, e, sizeof(e)), want_api);
	return 0;
}

/* --- metadata ------------------------------------------------------------------- */

static int decode_meta(struct dec *d, json_t *obj, enum k8s_kind kind, struct k8s_meta *m)
{
	json_t *md;
	size_t old;
	int rc;

	if ((rc = get_obj(d, obj, "metadata", true, &md)) < 0)
		return rc;
	old = push(d, "metadata");
	if ((rc = str_field(d, md, "name", true, m->name, K8S_NAME_MAX, CS_SUBDOMAIN)) < 0)
		goto out;
	if (kind == K8S_NODE) {
		const char *s;
		size_t n;

		/* cluster-scoped: the API writes no namespace */
		if ((rc = get_str(d, md, "namespace", false, &s, &n)) < 0)
			goto out;
		if (n) {
			rc = fail(d, "namespace", "a Node has no namespace");
			goto out;
		}
	} else if ((rc = str_field(d, md, "namespace", true, m->ns, K8S_NAMESPACE_MAX, CS_LABEL)) < 0) {
		goto out;
	}
	if ((rc = str_field(d, md, "uid", true, m->uid, K8S_UID_MAX, CS_TOKEN)) < 0)
		goto out;
	rc = str_field(d, md, "resourceVersion", true, m->resource_version, K8S_RV_MAX, CS_TOKEN);
out:
	pop(d, old);
	return rc < 0 ? rc : 0;
}

/* --- Service ---------------------------------------------------------------------- */

static int decode_service_port(struct dec *d, json_t *p, struct k8s_service_port *sp)
{
	long long v = 0;
	json_t *tp;
	int rc;

	if (!json_is_object(p))
		return fail(d, NULL, "expected an object, got %s", type_name(p));
	if ((rc = str_field(d, p, "name", false, sp->name, K8S_PORT_NAME_MAX, CS_LABEL)) < 0)
		return rc;
	if ((rc = get_int(d, p, "port", true, 1, 65535, &v)) < 0)
		return rc;
	sp->port = (uint16_t)v;
	if ((rc = protocol_field(d, p, &sp->protocol)) < 0)
		return rc;
	if ((rc = str_field(d, p, "appProtocol", false, sp->app_protocol, K8S_APP_PROTOCOL_MAX, CS_TOKEN)) < 0)
		return rc;
	/* targetPort is an IntOrString: a number, or a container port's name */
	tp = json_object_get(p, "targetPort");
	if (!tp || json_is_null(tp)) {
		sp->target_port = sp->port;
	} else if (json_is_integer(tp)) {
		if ((rc = get_int(d, p, "targetPort", true, 1, 65535, &v)) < 0)
			return rc;
		sp->target_port = (uint16_t)v;
	} else if (json_is_string(tp)) {
		if ((rc = put_str(d, "targetPort", json_string_value(tp), json_string_length(tp), sp->target_port_name,
				  K8S_PORT_NAME_MAX, CS_LABEL, false)) < 0)
			return rc;
	} else {
		return fail(d, "targetPort", "expected an integer or a string, got %s", type_name(tp));
	}
	return 0;
}

/* One entry of clusterIP/clusterIPs: "None" (headless), "" (none) or an IP. */
enum cip { CIP_NONE, CIP_EMPTY, CIP_IP };

static int cluster_ip(struct dec *d, const char *key, const char *s, size_t n, struct k8s_ip *ip, enum cip *what)
{
	if (n == 4 && memcmp(s, "None", 4) == 0) {
		*what = CIP_NONE;
		return 0;
	}
	if (n == 0) {
		*what = CIP_EMPTY;
		return 0;
	}
	*what = CIP_IP;
	return put_ip(d, key, s, n, AF_UNSPEC, ip);
}

static int decode_service(struct dec *d, json_t *obj, struct k8s_service *svc)
{
	static const char *const types[] = { [K8S_SVC_CLUSTER_IP] = "ClusterIP",
					     [K8S_SVC_NODE_PORT] = "NodePort",
					     [K8S_SVC_LOAD_BALANCER] = "LoadBalancer",
					     [K8S_SVC_EXTERNAL_NAME] = "ExternalName" };
	json_t *spec, *ips, *ports;
	struct k8s_ip one;
	enum cip w1 = CIP_EMPTY, w;
	const char *s;
	size_t n, i, old, old2;
	int rc, t;

	if ((rc = get_obj(d, obj, "spec", true, &spec)) < 0)
		return rc;
	old = push(d, "spec");
	if ((rc = enum_field(d, spec, "type", types, 4, K8S_SVC_CLUSTER_IP,
			     "ClusterIP, NodePort, LoadBalancer, ExternalName", &t)) < 0)
		goto out;
	svc->type = (enum k8s_svc_type)t;

	/* clusterIP is clusterIPs[0] (servers before 1.20 write only clusterIP) */
	if ((rc = get_str(d, spec, "clusterIP", false, &s, &n)) < 0)
		goto out;
	if ((rc = cluster_ip(d, "clusterIP", s, n, &one, &w1)) < 0)
		goto out;
	if ((rc = get_arr(d, spec, "clusterIPs", false, K8S_MAX_IPS, "addresses", &ips)) < 0)
		goto out;
	if (ips && json_array_size(ips) > 0) {
		for (i = 0; i < json_array_size(ips); i++) {
			json_t *v = json_array_get(ips, i);

			old2 = push(d, "clusterIPs[%zu]", i);
			if (!json_is_string(v)) {
				rc = fail(d, NULL, "expected a string, got %s", type_name(v));
				goto out;
			}
			rc = cluster_ip(d, NULL, json_string_value(v), json_string_length(v), &svc->ips[svc->n_ips],
					&w);
			if (rc < 0)
				goto out;
			if (w == CIP_NONE && json_array_size(ips) == 1)
				svc->headless = true;
			else if (w == CIP_IP)
				svc->n_ips++;
			else {
				rc = fail(d, NULL, "'%s' where an IP address was expected",
					  w == CIP_NONE ? "None" : "");
				goto out;
			}
			pop(d, old2);
		}
		if (svc->n_ips == 2 && svc->ips[0].family == svc->ips[1].family) {
			rc = fail(d, "clusterIPs", "two addresses of one family; dual stack has one of each");
			goto out;
		}
		/* the API keeps clusterIP == clusterIPs[0]: anything else is not what it served */
		if ((svc->headless && w1 != CIP_NONE) ||
		    (svc->n_ips && (w1 != CIP_IP || !ip_equal(&one, &svc->ips[0])))) {
			rc = fail(d, "clusterIP", "differs from clusterIPs[0]");
			goto out;
		}
	} else if (w1 == CIP_NONE) {
		svc->headless = true;
	} else if (w1 == CIP_IP) {
		svc->ips[0] = one;
		svc->n_ips = 1;
	}

	if ((rc = get_str(d, spec, "externalName", false, &s, &n)) < 0)
		goto out;
	if (n && s[n - 1] == '.')
		n--; /* a fully qualified name may end in '.' */
	if ((rc = put_str(d, "externalName", s, n, svc->external_name, K8S_NAME_MAX, CS_SUBDOMAIN, true)) < 0)
		goto out;

	if ((rc = get_arr(d, spec, "ports", false, K8S_MAX_PORTS, "ports", &ports)) < 0)
		goto out;
	n = ports ? json_array_size(ports) : 0;
	if (n) {
		svc->ports = calloc(n, sizeof(*svc->ports));
		if (!svc->ports) {
			rc = fail(d, "ports", "out of memory for %zu ports", n);
			goto out;
		}
		svc->n_ports = n;
		for (i = 0; i < n; i++) {
			old2 = push(d, "ports[%zu]", i);
			if ((rc = decode_service_port(d, json_array_get(ports, i), &svc->ports[i])) < 0)
				goto out;
			pop(d, old2);
		}
	}
	rc = 0;
out:
	pop(d, old);
	return rc;
}

/* --- EndpointSlice ------------------------------------------------------------------ */

static int decode_endpoint_port(struct dec *d, json_t *p, struct k8s_endpoint_port *ep)
{
	long long v = 0;
	int rc;

	if (!json_is_object(p))
		return fail(d, NULL, "expected an object, got %s", type_name(p));
	if ((rc = str_field(d, p, "name", false, ep->name, K8S_PORT_NAME_MAX, CS_LABEL)) < 0)
		return rc;
	if ((rc = get_int(d, p, "port", false, 1, 65535, &v)) < 0)
		return rc;
	ep->port = rc == 1 ? (uint16_t)v : 0;
	if ((rc = protocol_field(d, p, &ep->protocol)) < 0)
		return rc;
	return str_field(d, p, "appProtocol", false, ep->app_protocol, K8S_APP_PROTOCOL_MAX, CS_TOKEN);
}

static int decode_target_ref(struct dec *d, json_t *ep, struct k8s_object_ref *r)
{
	json_t *tr;
	size_t old;
	int rc;

	if ((rc = get_obj(d, ep, "targetRef", false, &tr)) <= 0)
		return rc;
	old = push(d, "targetRef");
	if ((rc = str_field(d, tr, "kind", false, r->kind, K8S_KIND_MAX, CS_TOKEN)) < 0 ||
	    (rc = str_field(d, tr, "namespace", false, r->ns, K8S_NAMESPACE_MAX, CS_LABEL)) < 0 ||
	    (rc = str_field(d, tr, "name", false, r->name, K8S_NAME_MAX, CS_SUBDOMAIN)) < 0 ||
	    (rc = str_field(d, tr, "uid", false, r->uid, K8S_UID_MAX, CS_TOKEN)) < 0)
		goto out;
	rc = 0;
out:
	pop(d, old);
	return rc;
}

/* addresses[] of one endpoint: IPs of the slice's family into pool, or FQDNs checked. */
static int decode_endpoint(struct dec *d, json_t *ep, enum k8s_addr_type at, struct k8s_endpoint *e,
			   struct k8s_ip *pool)
{
	json_t *addrs, *cond;
	bool ready = true, serving, terminating = false;
	size_t i, n, old;
	int rc, srv;

	if ((rc = get_arr(d, ep, "addresses", true, K8S_MAX_ADDRS, "addresses", &addrs)) < 0)
		return rc;
	n = json_array_size(addrs);
	if (n == 0)
		return fail(d, "addresses", "empty; an endpoint has at least one address");
	for (i = 0; i < n; i++) {
		json_t *a = json_array_get(addrs, i);
		char fqdn[K8S_NAME_MAX + 1];

		old = push(d, "addresses[%zu]", i);
		if (!json_is_string(a))
			rc = fail(d, NULL, "expected a string, got %s", type_name(a));
		else if (at == K8S_ADDR_FQDN)
			rc = put_str(d, NULL, json_string_value(a), json_string_length(a), fqdn, K8S_NAME_MAX,
				     CS_SUBDOMAIN, false);
		else
			rc = put_ip(d, NULL, json_string_value(a), json_string_length(a),
				    at == K8S_ADDR_IPV4 ? AF_INET : AF_INET6, &pool[i]);
		pop(d, old);
		if (rc < 0)
			return rc;
	}
	e->addrs = at == K8S_ADDR_FQDN ? NULL : pool;
	e->n_addrs = n;

	if ((rc = get_obj(d, ep, "conditions", false, &cond)) < 0)
		return rc;
	if (cond) {
		old = push(d, "conditions");
		if ((rc = get_bool(d, cond, "ready", &ready)) >= 0 &&
		    (rc = get_bool(d, cond, "serving", &serving)) >= 0) {
			srv = rc;
			rc = get_bool(d, cond, "terminating", &terminating);
			if (srv == 0)
				serving = ready; /* absent: defer to ready */
		}
		pop(d, old);
		if (rc < 0)
			return rc;
	} else {
		serving = ready;
	}
	e->ready = ready;
	e->serving = serving;
	e->terminating = terminating;
	if ((rc = str_field(d, ep, "nodeName", false, e->node_name, K8S_NAME_MAX, CS_SUBDOMAIN)) < 0 ||
	    (rc = str_field(d, ep, "zone", false, e->zone, K8S_LABEL_VALUE_MAX, CS_LABEL_VAL)) < 0)
		return rc;
	return decode_target_ref(d, ep, &e->target_ref);
}

static int decode_endpointslice(struct dec *d, json_t *obj, struct k8s_endpointslice *es)
{
	static const char *const types[] = {
		[K8S_ADDR_IPV4] = "IPv4", [K8S_ADDR_IPV6] = "IPv6", [K8S_ADDR_FQDN] = "FQDN"
	};
	json_t *md, *labels, *ports, *eps;
	size_t i, n, total, old;
	int rc, t;

	/* metadata.labels: only the owning service's name */
	if ((rc = get_obj(d, obj, "metadata", true, &md)) < 0)
		return rc;
	old = push(d, "metadata");
	rc = get_obj(d, md, "labels", false, &labels);
	if (rc == 1) {
		push(d, "labels");
		rc = str_field(d, labels, "kubernetes.io/service-name", false, es->service_name, K8S_LABEL_VALUE_MAX,
			       CS_LABEL_VAL);
	}
	pop(d, old);
	if (rc < 0)
		return rc;

	if (!json_object_get(obj, "addressType"))
		return fail(d, "addressType", "required, missing");
	if ((rc = enum_field(d, obj, "addressType", types, 3, -1, "IPv4, IPv6, FQDN", &t)) < 0)
		return rc;
	if (t < 0)
		return fail(d, "addressType", "required, missing");
	es->address_type = (enum k8s_addr_type)t;

	if ((rc = get_arr(d, obj, "ports", false, K8S_MAX_PORTS, "ports", &ports)) < 0)
		return rc;
	n = ports ? json_array_size(ports) : 0;
	if (n) {
		es->ports = calloc(n, sizeof(*es->ports));
		if (!es->ports)
			return fail(d, "ports", "out of memory for %zu ports", n);
		es->n_ports = n;
		for (i = 0; i < n; i++) {
			old = push(d, "ports[%zu]", i);
			rc = decode_endpoint_port(d, json_array_get(ports, i), &es->ports[i]);
			pop(d, old);
			if (rc < 0)
				return rc;
		}
	}

	/* endpoints: count the addresses first, so that they take one allocation */
	if ((rc = get_arr(d, obj, "endpoints", false, K8S_MAX_ENDPOINTS, "endpoints", &eps)) < 0)
		return rc;
	n = eps ? json_array_size(eps) : 0;
	if (!n)
		return 0;
	total = 0;
	for (i = 0; i < n; i++) {
		json_t *ep = json_array_get(eps, i), *a = json_object_get(ep, "addresses");

		if (!json_is_object(ep)) {
			old = push(d, "endpoints[%zu]", i);
			rc = fail(d, NULL, "expected an object, got %s", type_name(ep));
			pop(d, old);
			return rc;
		}
		if (json_is_array(a))
			total += json_array_size(a) < K8S_MAX_ADDRS ? json_array_size(a) : K8S_MAX_ADDRS;
	}
	es->endpoints = calloc(n, sizeof(*es->endpoints));
	if (!es->endpoints)
		return fail(d, "endpoints", "out of memory for %zu endpoints", n);
	es->n_endpoints = n;
	if (es->address_type != K8S_ADDR_FQDN && total) {
		es->addr_pool = calloc(total, sizeof(*es->addr_pool));
		if (!es->addr_pool)
			return fail(d, "endpoints", "out of memory for %zu addresses", total);
		es->n_addrs = total;
	}
	total = 0;
	for (i = 0; i < n; i++) {
		old = push(d, "endpoints[%zu]", i);
		rc = decode_endpoint(d, json_array_get(eps, i), es->address_type, &es->endpoints[i],
				     es->addr_pool ? es->addr_pool + total : NULL);
		pop(d, old);
		if (rc < 0)
			return rc;
		total += es->endpoints[i].n_addrs;
	}
	return 0;
}

/* --- Pod ---------------------------------------------------------------------------- */

static int decode_pod(struct dec *d, json_t *obj, struct k8s_pod *pod)
{
	static const char *const phases[] = {
		[K8S_POD_PHASE_NONE] = NULL,       [K8S_POD_PENDING] = "Pending", [K8S_POD_RUNNING] = "Running",
		[K8S_POD_SUCCEEDED] = "Succeeded", [K8S_POD_FAILED] = "Failed",   [K8S_POD_UNKNOWN] = "Unknown"
	};
	json_t *spec, *status, *ips;
	struct k8s_ip one;
	const char *s;
	size_t n, i, old, old2;
	int rc, ph, has_ip = 0;

	if ((rc = get_obj(d, obj, "spec", true, &spec)) < 0)
		return rc;
	old = push(d, "spec");
	if ((rc = str_field(d, spec, "nodeName", false, pod->node_name, K8S_NAME_MAX, CS_SUBDOMAIN)) < 0 ||
	    (rc = str_field(d, spec, "serviceAccountName", false, pod->service_account, K8S_NAME_MAX, CS_SUBDOMAIN)) <
		    0 ||
	    (rc = get_bool(d, spec, "hostNetwork", &pod->host_network)) < 0)
		goto out;
	pop(d, old);

	if ((rc = get_obj(d, obj, "status", false, &status)) <= 0)
		return rc;
	old = push(d, "status");
	if ((rc = enum_field(d, status, "phase", phases, 6, K8S_POD_PHASE_NONE,
			     "Pending, Running, Succeeded, Failed, Unknown", &ph)) < 0)
		goto out;
	pod->phase = (enum k8s_pod_phase)ph;
	if ((rc = get_str(d, status, "podIP", false, &s, &n)) < 0)
		goto out;
	if (n) {
		if ((rc = put_ip(d, "podIP", s, n, AF_UNSPEC, &one)) < 0)
			goto out;
		has_ip = 1;
	}
	if ((rc = get_arr(d, status, "podIPs", false, K8S_MAX_IPS, "addresses", &ips)) < 0)
		goto out;
	for (i = 0; ips && i < json_array_size(ips); i++) {
		json_t *e = json_array_get(ips, i);

		old2 = push(d, "podIPs[%zu]", i);
		if (!json_is_object(e)) {
			rc = fail(d, NULL, "expected an object, got %s", type_name(e));
			goto out;
		}
		if ((rc = get_str(d, e, "ip", true, &s, &n)) < 0 ||
		    (rc = put_ip(d, "ip", s, n, AF_UNSPEC, &pod->ips[pod->n_ips])) < 0)
			goto out;
		pod->n_ips++;
		pop(d, old2);
	}
	if (pod->n_ips == 2 && pod->ips[0].family == pod->ips[1].family) {
		rc = fail(d, "podIPs", "two addresses of one family; dual stack has one of each");
		goto out;
	}
	if (pod->n_ips && (!has_ip || !ip_equal(&one, &pod->ips[0]))) {
		rc = fail(d, "podIP", "differs from podIPs[0]");
		goto out;
	}
	if (!pod->n_ips && has_ip) {
		pod->ips[0] = one;
		pod->n_ips = 1;
	}
	rc = 0;
out:
	pop(d, old);
	return rc;
}

/* --- Node ----------------------------------------------------------------------------- */

static int decode_node(struct dec *d, json_t *obj, struct k8s_node *node)
{
	json_t *status, *addrs;
	size_t i, j, old, old2;
	int rc;

	if ((rc = get_obj(d, obj, "status", false, &status)) <= 0)
		return rc;
	old = push(d, "status");
	if ((rc = get_arr(d, status, "addresses", false, K8S_MAX_ADDRS, "addresses", &addrs)) < 0)
		goto out;
	for (i = 0; addrs && i < json_array_size(addrs); i++) {
		json_t *e = json_array_get(addrs, i);
		struct k8s_ip ip;
		const char *type, *a;
		size_t tn, an;
		bool seen = false;

		old2 = push(d, "addresses[%zu]", i);
		if (!json_is_object(e)) {
			rc = fail(d, NULL, "expected an object, got %s", type_name(e));
			goto out;
		}
		if ((rc = get_str(d, e, "type", true, &type, &tn)) < 0 ||
		    (rc = get_str(d, e, "address", true, &a, &an)) < 0)
			goto out;
		/* Hostname, ExternalIP, InternalDNS, ...: not ours to route to */
		if (tn == 10 && memcmp(type, "InternalIP", 10) == 0) {
			if ((rc = put_ip(d, "address", a, an, AF_UNSPEC, &ip)) < 0)
				goto out;
			for (j = 0; j < node->n_ips; j++)
				seen |= node->internal_ips[j].family == ip.family;
			if (!seen && node->n_ips < K8S_MAX_IPS)
				node->internal_ips[node->n_ips++] = ip;
		}
		pop(d, old2);
	}
	rc = 0;
out:
	pop(d, old);
	return rc;
}

/* --- objects, events, lists, Status ----------------------------------------------------- */

void k8s_object_free(struct k8s_object *o)
{
	switch (o->kind) {
	case K8S_SERVICE:
		free(o->svc.ports);
		o->svc.ports = NULL;
		o->svc.n_ports = 0;
		break;
	case K8S_ENDPOINTSLICE:
		free(o->es.ports);
		free(o->es.endpoints);
		free(o->es.addr_pool);
		o->es.ports = NULL;
		o->es.endpoints = NULL;
		o->es.addr_pool = NULL;
		o->es.n_ports = o->es.n_endpoints = o->es.n_addrs = 0;
		break;
	case K8S_POD:
	case K8S_NODE:
		break;
	}
}

/* One object of kind: on failure, o is freed and zeroed (its kind kept). */
static int decode_object(struct dec *d, enum k8s_kind kind, json_t *obj, struct k8s_object *o)
{
	int rc;

	memset(o, 0, sizeof(*o));
	o->kind = kind;
	if (!json_is_object(obj))
		return fail(d, NULL, "expected an object, got %s", type_name(obj));
	if ((rc = check_type_meta(d, obj, k8s_kind_name(kind), kind_api_version(kind))) < 0)
		goto err;
	if ((rc = decode_meta(d, obj, kind, &o->meta)) < 0)
		goto err;
	switch (kind) {
	case K8S_SERVICE:
		rc = decode_service(d, obj, &o->svc);
		break;
	case K8S_ENDPOINTSLICE:
		rc = decode_endpointslice(d, obj, &o->es);
		break;
	case K8S_POD:
		rc = decode_pod(d, obj, &o->pod);
		break;
	case K8S_NODE:
		rc = decode_node(d, obj, &o->node);
		break;
	default:
		rc = fail(d, NULL, "unknown kind %d", (int)kind);
	}
	if (rc < 0)
		goto err;
	return 0;
err:
	k8s_object_free(o);
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	return rc;
}

static json_t *parse(struct dec *d, const char *buf, size_t len)
{
	const char *nul;
	json_error_t je;
	json_t *root;

	if (len > K8S_MAX_BODY) {
		fail(d, NULL, "%zu bytes, more than the limit of %u", len, K8S_MAX_BODY);
		return NULL;
	}
	/* jansson skips a NUL byte after a number or a literal ({"a":1\0} parses)
	 * and takes one elsewhere for the end: JSON has no place for one at all */
	nul = memchr(buf, '\0', len);
	if (nul) {
		fail(d, NULL, "invalid JSON at byte %zu: a NUL byte", (size_t)(nul - buf));
		return NULL;
	}
	/* the document must be one object, each key once, nothing after it;
	 * its values live until doc_end() */
	json_set_alloc_funcs(arena_alloc, arena_nofree);
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		doc_end();
		fail(d, NULL, "invalid JSON at byte %d (line %d, column %d): %s", je.position, je.line, je.column,
		     je.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		fail(d, NULL, "expected a JSON object, got %s", type_name(root));
		doc_end();
		return NULL;
	}
	return root;
}

/* A Status object's code (100..599, 0 when absent), reason and message. */
static int decode_status_obj(struct dec *d, json_t *st, int *code, char *reason, size_t rlen, char *msg, size_t mlen)
{
	long long c = 0;
	const char *s;
	size_t n;
	int rc;

	if ((rc = check_type_meta(d, st, "Status", "v1")) < 0)
		return rc;
	if ((rc = get_int(d, st, "code", false, 100, 599, &c)) < 0)
		return rc;
	if (code)
		*code = (int)c;
	if ((rc = get_str(d, st, "reason", false, &s, &n)) < 0)
		return rc;
	copy_text(reason, rlen, s, n);
	if ((rc = get_str(d, st, "message", false, &s, &n)) < 0)
		return rc;
	copy_text(msg, mlen, s, n);
	return 0;
}

int k8s_decode_event(enum k8s_kind kind, const char *line, size_t len, struct k8s_event *ev, char *err, size_t errlen)
{
	static const char *const types[] = { [K8S_EV_ADDED] = "ADDED",
					     [K8S_EV_MODIFIED] = "MODIFIED",
					     [K8S_EV_DELETED] = "DELETED",
					     [K8S_EV_BOOKMARK] = "BOOKMARK",
					     [K8S_EV_ERROR] = "ERROR" };
	struct dec d;
	json_t *root, *obj, *md, *ann;
	size_t old;
	int rc, t;

	memset(ev, 0, sizeof(*ev));
	ev->obj.kind = kind;
	dec_init(&d, err, errlen, "");
	root = parse(&d, line, len);
	if (!root)
		return -EINVAL;
	if (!json_object_get(root, "type")) {
		rc = fail(&d, "type", "required, missing");
		goto out;
	}
	if ((rc = enum_field(&d, root, "type", types, 5, -1, "ADDED, MODIFIED, DELETED, BOOKMARK, ERROR", &t)) < 0)
		goto out;
	if (t < 0) {
		rc = fail(&d, "type", "required, missing");
		goto out;
	}
	ev->type = (enum k8s_event_type)t;
	if ((rc = get_obj(&d, root, "object", true, &obj)) < 0)
		goto out;
	old = push(&d, "object");
	switch (ev->type) {
	case K8S_EV_ERROR:
		rc = decode_status_obj(&d, obj, &ev->status_code, ev->status_reason, sizeof(ev->status_reason),
				       ev->message, sizeof(ev->message));
		break;
	case K8S_EV_BOOKMARK:
		/* only metadata.resourceVersion means anything; the rest is an empty object */
		if ((rc = check_type_meta(&d, obj, k8s_kind_name(kind), kind_api_version(kind))) < 0 ||
		    (rc = get_obj(&d, obj, "metadata", true, &md)) < 0)
			break;
		push(&d, "metadata");
		if ((rc = str_field(&d, md, "resourceVersion", true, ev->obj.meta.resource_version, K8S_RV_MAX,
				    CS_TOKEN)) < 0 ||
		    (rc = get_obj(&d, md, "annotations", false, &ann)) < 0)
			break;
		if (ann) {
			json_t *v = json_object_get(ann, "k8s.io/initial-events-end");

			ev->initial_events_end = json_is_string(v) && strcmp(json_string_value(v), "true") == 0;
		}
		break;
	default:
		rc = decode_object(&d, kind, obj, &ev->obj);
	}
	pop(&d, old);
out:
	doc_end();
	if (rc < 0) {
		k8s_object_free(&ev->obj);
		memset(ev, 0, sizeof(*ev));
		ev->obj.kind = kind;
		return -EINVAL;
	}
	return 0;
}

/* The list walk; whole: a page (metadata.continue set) is refused before any item. */
static int decode_list(enum k8s_kind kind, const char *body, size_t len,
		       int (*fn)(void *arg, const struct k8s_object *o), void *arg, struct k8s_list_meta *lm,
		       bool whole, char *err, size_t errlen)
{
	struct k8s_object o;
	struct dec d;
	json_t *root, *md, *items;
	size_t i, old;
	int rc;

	memset(lm, 0, sizeof(*lm));
	dec_init(&d, err, errlen, "");
	root = parse(&d, body, len);
	if (!root)
		return -EINVAL;
	if ((rc = check_type_meta(&d, root, kind_list_name(kind), kind_api_version(kind))) < 0 ||
	    (rc = get_obj(&d, root, "metadata", true, &md)) < 0)
		goto out;
	old = push(&d, "metadata");
	if ((rc = str_field(&d, md, "resourceVersion", true, lm->resource_version, K8S_RV_MAX, CS_TOKEN)) < 0 ||
	    (rc = str_field(&d, md, "continue", false, lm->cont, K8S_CONTINUE_MAX, CS_TOKEN)) < 0)
		goto out;
	if (whole && lm->cont[0]) {
		rc = fail(&d, "continue",
			  "set: this is one page of a paginated list (read with ?limit=); decode it "
			  "with k8s_decode_list_page and ask for the next page");
		goto out;
	}
	pop(&d, old);
	/* "items": null is an empty list (Go's nil slice) */
	if ((rc = get(&d, root, "items", JSON_ARRAY, false, &items, "an array")) < 0)
		goto out;
	if (!json_object_get(root, "items")) {
		rc = fail(&d, "items", "required, missing");
		goto out;
	}
	rc = 0;
	for (i = 0; items && i < json_array_size(items); i++) {
		old = push(&d, "items[%zu]", i);
		rc = decode_object(&d, kind, json_array_get(items, i), &o);
		pop(&d, old);
		if (rc < 0)
			goto out;
		rc = fn(arg, &o);
		k8s_object_free(&o);
		if (rc)
			goto out;
	}
out:
	doc_end();
	return rc;
}

int k8s_decode_list_page(enum k8s_kind kind, const char *body, size_t len,
			 int (*fn)(void *arg, const struct k8s_object *o), void *arg, struct k8s_list_meta *lm,
			 char *err, size_t errlen)
{
	return decode_list(kind, body, len, fn, arg, lm, false, err, errlen);
}

int k8s_decode_list(enum k8s_kind kind, const char *body, size_t len, int (*fn)(void *arg, const struct k8s_object *o),
		    void *arg, char *rv, size_t rvlen, char *err, size_t errlen)
{
	struct k8s_list_meta lm;
	size_t n;
	int rc;

	if (rv && rvlen)
		rv[0] = '\0';
	rc = decode_list(kind, body, len, fn, arg, &lm, true, err, errlen);
	if (rc)
		return rc;
	n = strlen(lm.resource_version);
	if (!rv || n >= rvlen) {
		if (err && errlen)
			snprintf(err, errlen, "metadata.resourceVersion: %zu bytes do not fit in %zu", n, rvlen);
		return -ENOSPC;
	}
	memcpy(rv, lm.resource_version, n + 1);
	return 0;
}

int k8s_decode_status(const char *body, size_t len, int *code, char *reason, size_t rlen, char *msg, size_t mlen)
{
	struct dec d;
	json_t *root, *kind;
	int rc;

	if (code)
		*code = 0;
	copy_text(reason, rlen, "", 0);
	copy_text(msg, mlen, "", 0);
	dec_init(&d, NULL, 0, "");
	root = parse(&d, body, len);
	if (!root)
		return -EINVAL;
	kind = json_object_get(root, "kind");
	if (!json_is_string(kind) || strcmp(json_string_value(kind), "Status") != 0)
		rc = -EINVAL;
	else
		rc = decode_status_obj(&d, root, code, reason, rlen, msg, mlen);
	doc_end();
	if (rc) {
		if (code)
			*code = 0;
		copy_text(reason, rlen, "", 0);
		copy_text(msg, mlen, "", 0);
	}
	return rc;
}

/* --- watch stream lines ---------------------------------------------------------------- */

void k8s_lines_init(struct k8s_lines *l, size_t max)
{
	memset(l, 0, sizeof(*l));
	l->max = max ? max : K8S_MAX_LINE;
}

void k8s_lines_free(struct k8s_lines *l)
{
	free(l->buf);
	l->buf = NULL;
	l->len = l->cap = 0;
}

static int lines_fail(struct k8s_lines *l, int rc)
{
	k8s_lines_free(l);
	l->failed = true;
	return rc;
}

/* Room for need bytes in buf (need <= max): doubling, capped at max. */
static int lines_reserve(struct k8s_lines *l, size_t need)
{
	size_t cap = l->cap ? l->cap : LINES_MIN_CAP;
	char *nb;

	if (need <= l->cap)
		return 0;
	while (cap < need)
		cap = cap > l->max / 2 ? l->max : cap * 2;
	if (cap > l->max)
		cap = l->max;
	nb = realloc(l->buf, cap);
	if (!nb)
		return -ENOMEM;
	l->buf = nb;
	l->cap = cap;
	return 0;
}

int k8s_lines_feed(struct k8s_lines *l, const char *data, size_t n, int (*fn)(void *arg, const char *line, size_t len),
		   void *arg)
{
	const char *p = data, *end = data + n, *nl;
	size_t take;
	int rc;

	if (l->failed)
		return -EPIPE;
	if (!n)
		return 0;
	if (l->len) {
		/* finish the line that started in an earlier chunk */
		nl = memchr(p, '\n', n);
		take = nl ? (size_t)(nl - p) : n;
		if (take > l->max - l->len)
			return lines_fail(l, -EMSGSIZE);
		if (lines_reserve(l, l->len + take))
			return lines_fail(l, -ENOMEM);
		memcpy(l->buf + l->len, p, take);
		l->len += take;
		if (!nl)
			return 0;
		p = nl + 1;
		take = l->len;
		l->len = 0;
		rc = fn(arg, l->buf, take);
		if (rc)
			return lines_fail(l, rc);
		if (l->cap > LINES_KEEP)
			k8s_lines_free(l);
	}
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p)))) {
		take = (size_t)(nl - p);
		if (take > l->max)
			return lines_fail(l, -EMSGSIZE);
		if (take && (rc = fn(arg, p, take)))
			return lines_fail(l, rc);
		p = nl + 1;
	}
	take = (size_t)(end - p);
	if (take) {
		if (take > l->max)
			return lines_fail(l, -EMSGSIZE);
		if (lines_reserve(l, take))
			return lines_fail(l, -ENOMEM);
		memcpy(l->buf, p, take);
		l->len = take;
	}
	return 0;
}
