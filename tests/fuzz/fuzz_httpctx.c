// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: the request-context headers a client controls (traceparent, b3,
 * X-B3-*, weft-deadline, grpc-timeout, l5d-ctx-deadline), their writers, the
 * Zipkin span encoder fed with arbitrary field bytes, and the retry budget
 * driven by arbitrary clocks. The first byte picks the target; the rest is
 * the header value, read in place so ASan sees any read past its length.
 * Beyond "no crash, no UB", each target checks its contract:
 * - a failed parse writes nothing; a successful one re-formats to a value
 *   that parses to the same context (traceparent: byte for byte when the
 *   input was already canonical);
 * - weft-deadline re-formats to the input without its leading zeros;
 *   grpc-timeout re-formats to at most 8 digits and reads back rounded down
 *   by less than one unit; l5d-ctx-deadline agrees with a reference base64
 *   decoder here and re-encodes to the input exactly;
 * - the span JSON is always valid RFC 8259 JSON (UTF-8 included);
 * - the budget's running sums match its buckets, it never allows more than
 *   available() said, and each allowed try lowers available() by one.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "codec/deadline.h"
#include "state/retry.h"
#include "codec/trace.h"
#include "../common/json_valid.h"

enum { T_TRACEPARENT, T_B3, T_B3_MULTI, T_WEFT, T_GRPC, T_L5D, T_FORMATTERS, T_SPAN_JSON, T_RETRY, T__COUNT };

// clang-format off
#define CHECK(c) do { if (!(c)) abort(); } while (0)
// clang-format on

static struct trace_ctx poison(void)
{
	struct trace_ctx c;

	memset(&c, 0x5a, sizeof(c));
	c.sampled = c.has_sampled = c.b3_trace64 = true;
	return c;
}

static bool same_ctx(const struct trace_ctx *a, const struct trace_ctx *b)
{
	return memcmp(a->trace_id, b->trace_id, 16) == 0 && a->span_id == b->span_id && a->sampled == b->sampled &&
	       a->has_sampled == b->has_sampled && a->b3_trace64 == b->b3_trace64;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

static void fuzz_traceparent(const char *v, size_t n)
{
	struct trace_ctx c = poison(), d, p = poison();
	char out[TRACE_TRACEPARENT_LEN + 1];
	int rc = trace_parse_traceparent(v, n, &c);

	if (rc) {
		CHECK(rc == -EINVAL && memcmp(&c, &p, sizeof(c)) == 0);
		return;
	}
	CHECK(n >= TRACE_TRACEPARENT_LEN && c.has_sampled && !c.b3_trace64);
	CHECK(!all_zero(c.trace_id, 16) && c.span_id);
	CHECK(trace_format_traceparent(out, sizeof(out), c.trace_id, c.span_id, c.sampled) == TRACE_TRACEPARENT_LEN);
	CHECK(strlen(out) == TRACE_TRACEPARENT_LEN);
	CHECK(trace_parse_traceparent(out, TRACE_TRACEPARENT_LEN, &d) == 0 && same_ctx(&c, &d));
	/* canonical input (version 00, flags 00/01) is written back unchanged */
	if (v[0] == '0' && v[1] == '0' && v[53] == '0' && (v[54] == '0' || v[54] == '1'))
		CHECK(memcmp(out, v, TRACE_TRACEPARENT_LEN) == 0);
	CHECK(trace_format_traceparent(out, TRACE_TRACEPARENT_LEN, c.trace_id, c.span_id, c.sampled) == -ENOSPC);
}

/* What a B3 context re-formats to must parse back to the same trace, with the given span. */
static void check_b3_roundtrip(const struct trace_ctx *c)
{
	char out[80];
	struct trace_ctx d;
	int m;

	m = trace_format_b3(out, sizeof(out), c, c->span_id, 0x0102030405060708ULL);
	CHECK(m > 0 && (size_t)m == strlen(out) && m <= 68);
	CHECK(trace_parse_b3(out, (size_t)m, &d) == 0);
	CHECK(memcmp(d.trace_id, c->trace_id, 16) == 0 && d.span_id == c->span_id && d.b3_trace64 == c->b3_trace64);
	CHECK(d.has_sampled && d.sampled == (c->has_sampled && c->sampled));
	CHECK(trace_format_b3(out, (size_t)m, c, c->span_id, 0x0102030405060708ULL) == -ENOSPC);
	m = trace_format_b3(out, sizeof(out), c, c->span_id, 0);
	CHECK(m > 0 && trace_parse_b3(out, (size_t)m, &d) == 0);
	CHECK(memcmp(d.trace_id, c->trace_id, 16) == 0 && d.span_id == c->span_id);
}

static void fuzz_b3(const char *v, size_t n)
{
	struct trace_ctx c = poison(), p = poison();
	int rc = trace_parse_b3(v, n, &c);

	if (rc == -ENOENT) {
		/* sampling only: one character, and only the decision written */
		CHECK(n == 1 && c.has_sampled && c.sampled == (v[0] != '0'));
		CHECK(memcmp(c.trace_id, p.trace_id, 16) == 0 && c.span_id == p.span_id);
		return;
	}
	if (rc) {
		CHECK(rc == -EINVAL && memcmp(&c, &p, sizeof(c)) == 0);
		return;
	}
	CHECK(!all_zero(c.trace_id, 16) && c.span_id);
	CHECK(!c.b3_trace64 || all_zero(c.trace_id, 8));
	check_b3_roundtrip(&c);
}

/* v = mask byte, then up to four '\n'-separated values; bit i of mask: value i present. */
static void fuzz_b3_multi(const char *v, size_t n)
{
	const char *f[4] = { NULL, NULL, NULL, NULL };
	size_t fl[4] = { 0, 0, 0, 0 }, i, k = 0, start = 1;
	struct trace_ctx c = poison(), p = poison();
	uint8_t mask;
	int rc;

	if (n < 1)
		return;
	mask = (uint8_t)v[0];
	for (i = 1; i <= n && k < 4; i++) {
		if (i < n && v[i] != '\n')
			continue;
		if (mask & (1u << k)) {
			f[k] = v + start;
			fl[k] = i - start;
		}
		k++;
		start = i + 1;
	}
	rc = trace_parse_b3_multi(f[0], fl[0], f[1], fl[1], f[2], fl[2], f[3], fl[3], &c);
	if (rc == -ENOENT) {
		CHECK(!f[0]);
		CHECK(memcmp(c.trace_id, p.trace_id, 16) == 0 && c.span_id == p.span_id);
		return;
	}
	if (rc) {
		CHECK(rc == -EINVAL && memcmp(&c, &p, sizeof(c)) == 0);
		return;
	}
	CHECK(f[0] && f[1] && !all_zero(c.trace_id, 16) && c.span_id);
	check_b3_roundtrip(&c);
}

static void fuzz_weft(const char *v, size_t n)
{
	int64_t ns = -7, back;
	char out[DEADLINE_VALUE_MAX];
	size_t z = 0;
	int rc = deadline_parse_weft(v, n, &ns), m;

	if (rc) {
		CHECK(rc == -EINVAL && ns == -7);
		return;
	}
	CHECK(ns >= 0 && ns % 1000000 == 0 && n >= 1 && n <= 19);
	m = deadline_format_weft(out, sizeof(out), ns);
	CHECK(m > 0 && (size_t)m == strlen(out));
	while (z + 1 < n && v[z] == '0')
		z++;
	CHECK((size_t)m == n - z && memcmp(out, v + z, (size_t)m) == 0);
	CHECK(deadline_parse_weft(out, (size_t)m, &back) == 0 && back == ns);
}

static int64_t grpc_unit(char u)
{
	switch (u) {
	case 'n':
		return 1;
	case 'u':
		return 1000;
	case 'm':
		return 1000000;
	case 'S':
		return 1000000000;
	case 'M':
		return INT64_C(60000000000);
	case 'H':
		return INT64_C(3600000000000);
	}
	abort();
}

/* formats ns, reads it back: at most 8 digits and a unit, rounded down by less than that unit */
static void grpc_roundtrip(int64_t ns)
{
	char out[DEADLINE_VALUE_MAX];
	int64_t back, want = ns > 0 ? ns : 0;
	int m = deadline_format_grpc_timeout(out, sizeof(out), ns);

	CHECK(m >= 2 && m <= 9 && (size_t)m == strlen(out));
	CHECK(deadline_parse_grpc_timeout(out, (size_t)m, &back) == 0);
	CHECK(back <= want && want - back < grpc_unit(out[m - 1]));
	CHECK(deadline_format_grpc_timeout(out, (size_t)m, ns) == -ENOSPC);
}

static void fuzz_grpc(const char *v, size_t n)
{
	int64_t ns = -7;
	int rc = deadline_parse_grpc_timeout(v, n, &ns);

	if (rc) {
		CHECK(rc == -EINVAL && ns == -7);
		return;
	}
	CHECK(ns >= 0 && n >= 2 && n <= 9 && ns % grpc_unit(v[n - 1]) == 0);
	grpc_roundtrip(ns);
}

/* A reference decoder, written differently from deadline.c's: strchr on the alphabet, groups of 4. */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bool ref_l5d(const char *v, size_t n, int64_t *ts, int64_t *dl)
{
	uint8_t raw[18];
	uint32_t q[24];
	uint64_t a = 0, b = 0;
	size_t i;

	if (n != 24 || v[22] != '=' || v[23] != '=')
		return false;
	for (i = 0; i < 22; i++) {
		const char *p = v[i] ? strchr(b64, v[i]) : NULL;

		if (!p)
			return false;
		q[i] = (uint32_t)(p - b64);
	}
	q[22] = q[23] = 0;
	for (i = 0; i < 6; i++) {
		uint32_t g = q[4 * i] << 18 | q[4 * i + 1] << 12 | q[4 * i + 2] << 6 | q[4 * i + 3];

		raw[3 * i] = (uint8_t)(g >> 16);
		if (3 * i + 1 < 18)
			raw[3 * i + 1] = (uint8_t)(g >> 8);
		if (3 * i + 2 < 18)
			raw[3 * i + 2] = (uint8_t)g;
	}
	if (q[21] & 15) /* bits past the 16th byte */
		return false;
	for (i = 0; i < 8; i++) {
		a = a << 8 | raw[i];
		b = b << 8 | raw[8 + i];
	}
	*ts = (int64_t)a;
	*dl = (int64_t)b;
	return *dl >= 0;
}

static void fuzz_l5d(const char *v, size_t n)
{
	int64_t ns = -7, ts, dl, back;
	char out[DEADLINE_VALUE_MAX];
	bool ok = ref_l5d(v, n, &ts, &dl);
	int rc = deadline_parse_l5d(v, n, &ns);

	CHECK(ok == (rc == 0));
	if (rc) {
		CHECK(rc == -EINVAL && ns == -7);
		return;
	}
	CHECK(ns == dl);
	CHECK(deadline_format_l5d(out, sizeof(out), ts, dl) == 24 && memcmp(out, v, 24) == 0);
	CHECK(deadline_parse_l5d(out, 24, &back) == 0 && back == dl);
}

/* The writers over arbitrary 64-bit values. */
static void fuzz_formatters(const uint8_t *d, size_t n)
{
	char out[DEADLINE_VALUE_MAX];
	int64_t a, b, back;
	uint64_t ua = 0, ub = 0;
	size_t i;
	int m;

	for (i = 0; i < 8 && i < n; i++)
		ua = ua << 8 | d[i];
	for (i = 8; i < 16 && i < n; i++)
		ub = ub << 8 | d[i];
	a = (int64_t)ua;
	b = (int64_t)ub;

	grpc_roundtrip(a);
	grpc_roundtrip(b);

	m = deadline_format_weft(out, sizeof(out), a);
	CHECK(m >= 1 && m <= 13 && deadline_parse_weft(out, (size_t)m, &back) == 0);
	CHECK(back == (a > 0 ? a / 1000000 * 1000000 : 0));

	CHECK(deadline_format_l5d(out, sizeof(out), a, b) == 24 && strlen(out) == 24);
	if (b >= 0)
		CHECK(deadline_parse_l5d(out, 24, &back) == 0 && back == b);
	else
		CHECK(deadline_parse_l5d(out, 24, &back) == -EINVAL);
	CHECK(deadline_format_l5d(out, 24, a, b) == -ENOSPC);
}

static void fuzz_span_json(const uint8_t *d, size_t n)
{
	struct trace_span s;
	struct buf b = { 0 };
	char local[80];
	size_t ln = 0;

	/* the span is whatever the bytes say, NULs or not; then a local service name */
	memset(&s, 0, sizeof(s));
	memcpy(&s, d, n < sizeof(s) ? n : sizeof(s));
	s.kind %= 3;
	if (n > sizeof(s)) {
		ln = n - sizeof(s) < sizeof(local) - 1 ? n - sizeof(s) : sizeof(local) - 1;
		memcpy(local, d + sizeof(s), ln);
	}
	local[ln] = '\0';

	buf_puts(&b, "[");
	trace_span_json(&b, &s, local);
	buf_puts(&b, "]");
	if (!buf_failed(&b))
		CHECK(json_valid(b.p, b.len) && strlen(b.p) == b.len);
	buf_free(&b);
}

/*
 * Each byte is one step: low 2 bits the op (request, try, available,
 * advance the clock), the rest a count or a time step. The clock may also
 * jump backwards a little (bit 7 of an advance), as only a fake clock does.
 */
static void fuzz_retry(const uint8_t *d, size_t n)
{
	struct retry_budget b;
	double now = 0;
	size_t i;
	uint32_t k;

	if (n < 3)
		return;
	retry_budget_init(&b, d[0] / 16.0, d[1] & 7, d[2] % 70);
	for (i = 3; i < n; i++) {
		uint8_t op = d[i] & 3, arg = d[i] >> 2;

		switch (op) {
		case 0:
			for (k = 0; k <= arg % 8; k++)
				retry_budget_request(&b, now);
			break;
		case 1: {
			uint64_t before = retry_budget_available(&b, now), ex = b.exhausted;
			bool ok = retry_budget_try(&b, now);

			CHECK(ok == (before > 0));
			CHECK(ok ? b.exhausted == ex : b.exhausted == ex + 1);
			if (ok && before != UINT64_MAX)
				CHECK(retry_budget_available(&b, now) == before - 1);
			break;
		}
		case 2:
			retry_budget_available(&b, now);
			break;
		case 3:
			now += (arg & 32) ? -(double)(arg & 31) / 8 : (double)(arg & 31) / 4 * (arg & 16 ? 8 : 1);
			break;
		}
		{
			uint64_t r = 0, t = 0;
			uint32_t w;

			for (w = 0; w < RETRY_MAX_WINDOW_S; w++) {
				r += b.reqs[w];
				t += b.retries[w];
			}
			CHECK(r == b.sum_reqs && t == b.sum_retries);
			CHECK(b.window_s >= 1 && b.window_s <= RETRY_MAX_WINDOW_S);
		}
	}
	/* back-off: never above the cap, whatever the attempt */
	{
		uint64_t rng = (uint64_t)d[0] << 32 | d[1] << 8 | d[2];
		uint32_t base = d[1] * 7u, max = d[2] * 100u;
		unsigned att = d[0];

		CHECK(retry_backoff_ms(base, max, att, &rng) <= max);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *v = (const char *)data + 1;
	size_t n;

	if (size < 1)
		return 0;
	n = size - 1;
	switch (data[0] % T__COUNT) {
	case T_TRACEPARENT:
		fuzz_traceparent(v, n);
		break;
	case T_B3:
		fuzz_b3(v, n);
		break;
	case T_B3_MULTI:
		fuzz_b3_multi(v, n);
		break;
	case T_WEFT:
		fuzz_weft(v, n);
		break;
	case T_GRPC:
		fuzz_grpc(v, n);
		break;
	case T_L5D:
		fuzz_l5d(v, n);
		break;
	case T_FORMATTERS:
		fuzz_formatters(data + 1, n);
		break;
	case T_SPAN_JSON:
		fuzz_span_json(data + 1, n);
		break;
	case T_RETRY:
		fuzz_retry(data + 1, n);
		break;
	}
	return 0;
}
