// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Trace context: W3C traceparent and B3 (single and multi header) parsing and
 * writing, random ids, and Zipkin v2 span JSON. See trace.h for the contract.
 *
 * All parsers leave *out untouched when they fail (-EINVAL), so a caller can
 * try one format after another on the same struct; on -ENOENT only
 * sampled/has_sampled are written, and only when a decision came.
 */
#include "codec/trace.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"

static const char hexdig[] = "0123456789abcdef";

/* Lower-case hex digit value, or -1: upper case is invalid in both W3C and B3. */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Exactly 2*n lower-case hex digits into bytes[0..n). */
static int hex_bytes(const char *s, uint8_t *bytes, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int hex_u64(const char *s, uint64_t *out)
{
	uint8_t b[8];
	uint64_t v = 0;
	int i;

	if (hex_bytes(s, b, 8))
		return -EINVAL;
	for (i = 0; i < 8; i++)
		v = v << 8 | b[i];
	*out = v;
	return 0;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

void trace_hex(char *out, const uint8_t *bytes, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hexdig[bytes[i] >> 4];
		out[2 * i + 1] = hexdig[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

void trace_hex64(char out[17], uint64_t v)
{
	int i;

	for (i = 15; i >= 0; i--) {
		out[i] = hexdig[v & 15];
		v >>= 4;
	}
	out[16] = '\0';
}

/*
 * W3C Trace Context level 1, section 3.2 / 4.3 (versioning):
 * version "00" must be exactly 55 characters; a later version (not "ff") is
 * parsed by its first four fields, and whatever follows must start with '-'.
 * The flags byte's other bits are ignored, as the spec tells a level-1 reader.
 */
int trace_parse_traceparent(const char *value, size_t len, struct trace_ctx *out)
{
	struct trace_ctx c;
	uint8_t ver, flags;

	if (len < TRACE_TRACEPARENT_LEN)
		return -EINVAL;
	if (hex_bytes(value, &ver, 1) || ver == 0xff)
		return -EINVAL;
	if (ver == 0 && len != TRACE_TRACEPARENT_LEN)
		return -EINVAL;
	if (len > TRACE_TRACEPARENT_LEN && value[TRACE_TRACEPARENT_LEN] != '-')
		return -EINVAL;
	if (value[2] != '-' || value[35] != '-' || value[52] != '-')
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	if (hex_bytes(value + 3, c.trace_id, 16) || hex_u64(value + 36, &c.span_id) || hex_bytes(value + 53, &flags, 1))
		return -EINVAL;
	if (all_zero(c.trace_id, 16) || !c.span_id)
		return -EINVAL;
	c.sampled = flags & 1;
	c.has_sampled = true;
	*out = c;
	return 0;
}

/* A B3 trace id: 16 hex (64-bit, stored in the low 8 bytes) or 32 hex; non-zero. */
static int b3_trace_id(const char *s, size_t len, struct trace_ctx *c)
{
	memset(c->trace_id, 0, sizeof(c->trace_id));
	if (len == 16) {
		if (hex_bytes(s, c->trace_id + 8, 8))
			return -EINVAL;
		c->b3_trace64 = true;
	} else if (len == 32) {
		if (hex_bytes(s, c->trace_id, 16))
			return -EINVAL;
		c->b3_trace64 = false;
	} else {
		return -EINVAL;
	}
	return all_zero(c->trace_id, 16) ? -EINVAL : 0;
}

/* A B3 span id: exactly 16 hex, non-zero. */
static int b3_span_id(const char *s, size_t len, uint64_t *out)
{
	if (len != 16 || hex_u64(s, out) || !*out)
		return -EINVAL;
	return 0;
}

/* The single-header sampling state: "0", "1", or "d" (debug, which implies sampled). */
static int b3_sampling_char(const char *s, size_t len, bool *sampled)
{
	if (len != 1)
		return -EINVAL;
	switch (s[0]) {
	case '0':
		*sampled = false;
		return 0;
	case '1':
	case 'd':
		*sampled = true;
		return 0;
	}
	return -EINVAL;
}

/*
 * openzipkin/b3-propagation, single header:
 *   b3: {TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]  or  b3: {SamplingState}
 * The parent is checked (16 hex, non-zero) but not kept: our span's parent is
 * the caller's span, not the caller's parent.
 */
int trace_parse_b3(const char *value, size_t len, struct trace_ctx *out)
{
	const char *f[4];
	size_t flen[4], nf = 0, i, start = 0;
	struct trace_ctx c;
	uint64_t parent;
	bool s;

	if (len == 1) {
		if (b3_sampling_char(value, len, &s))
			return -EINVAL;
		out->sampled = s;
		out->has_sampled = true;
		return -ENOENT;
	}
	/* split on '-': at most 4 fields, a fifth means garbage */
	for (i = 0; i <= len; i++) {
		if (i < len && value[i] != '-')
			continue;
		if (nf == 4)
			return -EINVAL;
		f[nf] = value + start;
		flen[nf] = i - start;
		nf++;
		start = i + 1;
	}
	if (nf < 2)
		return -EINVAL;
	memset(&c, 0, sizeof(c));
	if (b3_trace_id(f[0], flen[0], &c) || b3_span_id(f[1], flen[1], &c.span_id))
		return -EINVAL;
	if (nf >= 3) {
		if (b3_sampling_char(f[2], flen[2], &c.sampled))
			return -EINVAL;
		c.has_sampled = true;
	}
	if (nf == 4 && b3_span_id(f[3], flen[3], &parent))
		return -EINVAL;
	*out = c;
	return 0;
}

static bool str_is(const char *s, size_t len, const char *lit)
{
	return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/*
 * Multi-header B3. X-B3-Sampled is "1"/"0" by the spec; "true"/"false" were
 * sent by old Zipkin tracers and are still seen. X-B3-Flags "1" is debug,
 * which implies sampled; "0" is no flag. A present trace id needs a span id.
 */
int trace_parse_b3_multi(const char *trace_id, size_t tlen, const char *span_id, size_t slen, const char *sampled,
			 size_t smplen, const char *flags, size_t flen, struct trace_ctx *out)
{
	struct trace_ctx c;
	bool has_s = false, s = false, debug = false;

	if (sampled) {
		if (str_is(sampled, smplen, "1") || str_is(sampled, smplen, "true"))
			s = true;
		else if (!str_is(sampled, smplen, "0") && !str_is(sampled, smplen, "false"))
			return -EINVAL;
		has_s = true;
	}
	if (flags) {
		if (str_is(flags, flen, "1"))
			debug = true;
		else if (!str_is(flags, flen, "0"))
			return -EINVAL;
	}
	if (debug) {
		s = true;
		has_s = true;
	}
	if (!trace_id) {
		if (has_s) {
			out->sampled = s;
			out->has_sampled = true;
		}
		return -ENOENT;
	}
	memset(&c, 0, sizeof(c));
	if (b3_trace_id(trace_id, tlen, &c) || !span_id || b3_span_id(span_id, slen, &c.span_id))
		return -EINVAL;
	c.sampled = s;
	c.has_sampled = has_s;
	*out = c;
	return 0;
}

int trace_format_traceparent(char *out, size_t cap, const uint8_t trace_id[16], uint64_t span_id, bool sampled)
{
	if (cap < TRACE_TRACEPARENT_LEN + 1)
		return -ENOSPC;
	memcpy(out, "00-", 3);
	trace_hex(out + 3, trace_id, 16); /* its NUL is overwritten by the '-' */
	out[35] = '-';
	trace_hex64(out + 36, span_id);
	memcpy(out + 52, sampled ? "-01" : "-00", 4); /* with the NUL */
	return TRACE_TRACEPARENT_LEN;
}

/*
 * A 64-bit B3 trace id is written back as 16 digits only while its high half
 * is really zero: anything else would lose bits.
 */
int trace_format_b3(char *out, size_t cap, const struct trace_ctx *c, uint64_t span_id, uint64_t parent_id)
{
	bool t64 = c->b3_trace64 && all_zero(c->trace_id, 8);
	size_t tl = t64 ? 16 : 32, n = tl + 1 + 16 + 2 + (parent_id ? 17 : 0);

	if (n + 1 > cap)
		return -ENOSPC;
	trace_hex(out, t64 ? c->trace_id + 8 : c->trace_id, tl / 2); /* NUL at out[tl] < n: overwritten */
	out[tl] = '-';
	trace_hex64(out + tl + 1, span_id);
	out[tl + 17] = '-';
	out[tl + 18] = c->sampled ? '1' : '0';
	if (parent_id) {
		out[tl + 19] = '-';
		trace_hex64(out + tl + 20, parent_id);
	}
	out[n] = '\0';
	return (int)n;
}

/*
 * Ids: xoshiro256** per thread, seeded from getrandom(2) on a thread's first
 * use. Not cryptographic, and need not be: trace ids must be unique, not
 * secret. A forked child would repeat its parent's ids, so fork resets the
 * seed (pthread_atfork; the child runs only the forking thread, whose state
 * is the one reset).
 */
static _Thread_local uint64_t rng_s[4];
static _Thread_local bool rng_seeded;
static pthread_once_t rng_atfork_once = PTHREAD_ONCE_INIT;

static void rng_atfork_child(void)
{
	rng_seeded = false;
}

static void rng_atfork_register(void)
{
	/* on failure (ENOMEM) a forked child may repeat ids: tolerable, not fatal */
	(void)pthread_atfork(NULL, NULL, rng_atfork_child);
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(void)
{
	uint8_t *p = (uint8_t *)rng_s;
	size_t got = 0;
	ssize_t n;

	pthread_once(&rng_atfork_once, rng_atfork_register);
	while (got < sizeof(rng_s)) {
		n = getrandom(p + got, sizeof(rng_s) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < sizeof(rng_s)) {
		/*
		 * No getrandom (ENOSYS in an old seccomp sandbox): the clock, pid
		 * and this thread's stack address still make threads and
		 * processes differ, which is all ids need.
		 */
		struct timespec ts;
		uint64_t x;
		int i;

		clock_gettime(CLOCK_REALTIME, &ts);
		x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		x ^= (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)&ts;
		for (i = 0; i < 4; i++)
			rng_s[i] = splitmix64(&x);
	}
	if (!(rng_s[0] | rng_s[1] | rng_s[2] | rng_s[3])) /* the one state xoshiro cannot leave */
		rng_s[0] = 1;
	rng_seeded = true;
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t trace_random_u64(void)
{
	uint64_t r, t;

	if (!rng_seeded)
		rng_seed();
	do {
		r = rotl(rng_s[1] * 5, 7) * 9;
		t = rng_s[1] << 17;
		rng_s[2] ^= rng_s[0];
		rng_s[3] ^= rng_s[1];
		rng_s[1] ^= rng_s[2];
		rng_s[0] ^= rng_s[3];
		rng_s[2] ^= t;
		rng_s[3] = rotl(rng_s[3], 45);
	} while (!r); /* 0 means "no id" in every format */
	return r;
}

void trace_new_trace_id(uint8_t out[16])
{
	uint64_t hi = trace_random_u64(), lo = trace_random_u64();
	int i;

	for (i = 7; i >= 0; i--) {
		out[i] = (uint8_t)hi;
		out[8 + i] = (uint8_t)lo;
		hi >>= 8;
		lo >>= 8;
	}
}

/* --- Zipkin v2 JSON ----------------------------------------------------------- */

/* Length of a valid UTF-8 sequence at s[0..n), or 0 (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/*
 * A span field as a JSON string literal. The fields are fixed arrays that may
 * come from the wire (path, method) and may be truncated mid-character, so:
 * read at most max bytes (no NUL needed), escape as buf_json_str does, and
 * write bytes that are not valid UTF-8 as \ufffd, since JSON text must be
 * UTF-8 (RFC 8259 8.1) and a collector may refuse the whole batch otherwise.
 * One buf_add per run of plain bytes, not per byte.
 */
static void json_field(struct buf *b, const char *s, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strnlen(s, max), i = 0, run = 0, k;

	buf_add(b, "\"", 1);
	while (i < n) {
		const char *esc = NULL;
		char ctl[8];

		k = utf8_seq(u + i, n - i);
		if (k == 1) {
			switch (u[i]) {
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			default:
				if (u[i] < 0x20) {
					snprintf(ctl, sizeof(ctl), "\\u%04x", u[i]);
					esc = ctl;
				}
			}
		} else if (k == 0) {
			esc = "\\ufffd";
			k = 1;
		}
		if (esc) {
			buf_add(b, s + run, i - run);
			buf_puts(b, esc);
			run = i + k;
		}
		i += k;
	}
	buf_add(b, s + run, n - run);
	buf_add(b, "\"", 1);
}

/* A string tag, when the field is not empty. */
static void json_tag(struct buf *b, bool *first, const char *key, const char *val, size_t max)
{
	if (!val[0])
		return;
	buf_printf(b, "%s\"%s\":", *first ? "" : ",", key);
	json_field(b, val, max);
	*first = false;
}

static void json_tag_uint(struct buf *b, bool *first, const char *key, unsigned v)
{
	buf_printf(b, "%s\"%s\":\"%u\"", *first ? "" : ",", key, v); /* Zipkin tag values are strings */
	*first = false;
}

/*
 * "ip:port" or "[ipv6]:port" (as addr_format writes them) into a Zipkin
 * endpoint; the address is re-written by inet_ntop so it is canonical and
 * safe to put in JSON unescaped. Anything else: no remoteEndpoint (false).
 */
static bool json_remote_endpoint(struct buf *b, const char *ep, size_t max)
{
	char host[48], ip[INET6_ADDRSTRLEN];
	const char *port_s;
	size_t n = strnlen(ep, max), hl;
	unsigned long port = 0;
	uint8_t a[16];
	bool v6;
	size_t i;

	if (n == 0 || n >= sizeof(host))
		return false;
	if (ep[0] == '[') {
		const char *close = memchr(ep, ']', n);

		if (!close || close + 1 == ep + n || close[1] != ':')
			return false;
		hl = (size_t)(close - ep - 1);
		memcpy(host, ep + 1, hl);
		port_s = close + 2;
		v6 = true;
	} else {
		const char *colon = memchr(ep, ':', n);

		if (!colon)
			return false;
		hl = (size_t)(colon - ep);
		memcpy(host, ep, hl);
		port_s = colon + 1;
		v6 = false;
	}
	host[hl] = '\0';
	if (port_s >= ep + n || ep + n - port_s > 5)
		return false;
	for (i = 0; port_s + i < ep + n; i++) {
		if (port_s[i] < '0' || port_s[i] > '9')
			return false;
		port = port * 10 + (unsigned long)(port_s[i] - '0');
	}
	if (port > 65535)
		return false;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, a) != 1 || !inet_ntop(v6 ? AF_INET6 : AF_INET, a, ip, sizeof(ip)))
		return false;
	buf_printf(b, ",\"remoteEndpoint\":{\"%s\":\"%s\"", v6 ? "ipv6" : "ipv4", ip);
	if (port) /* Zipkin: port 0 means unknown, omit it */
		buf_printf(b, ",\"port\":%lu", port);
	buf_puts(b, "}");
	return true;
}

void trace_span_json(struct buf *b, const struct trace_span *s, const char *local_service)
{
	char hex[33], id[17];
	bool first = true, has_tags;
	bool t64 = all_zero(s->trace_id, 8);

	trace_hex(hex, t64 ? s->trace_id + 8 : s->trace_id, t64 ? 8 : 16);
	trace_hex64(id, s->id);
	buf_printf(b, "{\"traceId\":\"%s\",\"id\":\"%s\"", hex, id);
	if (s->parent_id) {
		trace_hex64(id, s->parent_id);
		buf_printf(b, ",\"parentId\":\"%s\"", id);
	}
	if (s->kind == TRACE_KIND_SERVER)
		buf_puts(b, ",\"kind\":\"SERVER\"");
	else if (s->kind == TRACE_KIND_CLIENT)
		buf_puts(b, ",\"kind\":\"CLIENT\"");
	buf_puts(b, ",\"name\":");
	json_field(b, s->name, sizeof(s->name));
	/* Zipkin: "durations of less than one are rounded up" (a clock step can make them <= 0) */
	buf_printf(b, ",\"timestamp\":%" PRId64 ",\"duration\":%" PRId64 ",\"localEndpoint\":{\"serviceName\":",
		   s->start_us, s->duration_us > 0 ? s->duration_us : 1);
	json_field(b, local_service ? local_service : "", SIZE_MAX);
	buf_puts(b, "}");
	if (s->kind == TRACE_KIND_CLIENT)
		json_remote_endpoint(b, s->endpoint, sizeof(s->endpoint));

	has_tags = s->method[0] || s->path[0] || s->status || s->service[0] || s->route[0] ||
		   (s->kind == TRACE_KIND_CLIENT && s->attempt) || s->error[0];
	if (has_tags) { /* no tags: no "tags":{} either */
		buf_puts(b, ",\"tags\":{");
		json_tag(b, &first, "http.method", s->method, sizeof(s->method));
		json_tag(b, &first, "http.path", s->path, sizeof(s->path));
		if (s->status)
			json_tag_uint(b, &first, "http.status_code", s->status);
		json_tag(b, &first, "weft.service", s->service, sizeof(s->service));
		json_tag(b, &first, "weft.route", s->route, sizeof(s->route));
		if (s->kind == TRACE_KIND_CLIENT && s->attempt)
			json_tag_uint(b, &first, "weft.attempt", s->attempt);
		json_tag(b, &first, "error", s->error, sizeof(s->error));
		buf_puts(b, "}");
	}
	buf_puts(b, "}");
}
