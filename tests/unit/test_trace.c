// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/trace.c: W3C traceparent, B3 single and multi header (a table of
 * valid values with the exact context, then a separate table of refusals,
 * each with why), writers and their round trips, ids (non-zero, per thread,
 * fresh after fork), and Zipkin span JSON compared byte for byte and checked
 * by a strict JSON validator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "codec/trace.h"
#include "../common/json_valid.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void hex_to(const char *hex, uint8_t *out, size_t n)
{
	size_t i;
	unsigned v;

	for (i = 0; i < n; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			fail_msg("bad test hex '%s'", hex);
		out[i] = (uint8_t)v;
	}
}

/* The context a parse must leave: trace id as 32 hex (B3 64-bit ids written with 16 leading zeros). */
struct want {
	const char *trace;
	uint64_t span;
	bool sampled, has_sampled, trace64;
};

static void check_ctx(const char *what, const char *in, const struct trace_ctx *c, const struct want *w)
{
	uint8_t tid[16];

	hex_to(w->trace, tid, 16);
	if (memcmp(c->trace_id, tid, 16) != 0 || c->span_id != w->span || c->sampled != w->sampled ||
	    c->has_sampled != w->has_sampled || c->b3_trace64 != w->trace64)
		fail_msg("%s '%s': context differs (span %016llx sampled %d has %d t64 %d)", what, in,
			 (unsigned long long)c->span_id, c->sampled, c->has_sampled, c->b3_trace64);
}

/* A context no parser writes: failures must leave it as it was. */
static struct trace_ctx poison(void)
{
	struct trace_ctx c;

	memset(&c, 0xa5, sizeof(c));
	c.sampled = c.has_sampled = c.b3_trace64 = true;
	return c;
}

static bool untouched(const struct trace_ctx *c)
{
	struct trace_ctx p = poison();

	return memcmp(c, &p, sizeof(p)) == 0;
}

/* --- traceparent ------------------------------------------------------------------- */

#define TP_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define TP_SPAN "00f067aa0ba902b7"

static void test_traceparent_valid(void **state)
{
	static const struct {
		const char *in;
		struct want w;
	} cases[] = {
		{ "00-" TP_TRACE "-" TP_SPAN "-01", { TP_TRACE, 0x00f067aa0ba902b7ULL, true, true, false } },
		{ "00-" TP_TRACE "-" TP_SPAN "-00", { TP_TRACE, 0x00f067aa0ba902b7ULL, false, true, false } },
		/* other flag bits are ignored; only bit 0 is "sampled" */
		{ "00-" TP_TRACE "-" TP_SPAN "-09", { TP_TRACE, 0x00f067aa0ba902b7ULL, true, true, false } },
		{ "00-" TP_TRACE "-" TP_SPAN "-fe", { TP_TRACE, 0x00f067aa0ba902b7ULL, false, true, false } },
		{ "00-00000000000000000000000000000001-0000000000000001-01",
		  { "00000000000000000000000000000001", 1, true, true, false } },
		/* a later version: its first four fields, and anything after a '-' */
		{ "01-" TP_TRACE "-" TP_SPAN "-01", { TP_TRACE, 0x00f067aa0ba902b7ULL, true, true, false } },
		{ "cc-" TP_TRACE "-" TP_SPAN "-01-what-the-future-will-be-like",
		  { TP_TRACE, 0x00f067aa0ba902b7ULL, true, true, false } },
		{ "fe-" TP_TRACE "-" TP_SPAN "-00-", { TP_TRACE, 0x00f067aa0ba902b7ULL, false, true, false } },
	};
	size_t i;

	for (i = 0; i < N(cases); i++) {
		struct trace_ctx c = poison();

		if (trace_parse_traceparent(cases[i].in, strlen(cases[i].in), &c) != 0)
			fail_msg("traceparent '%s' refused", cases[i].in);
		check_ctx("traceparent", cases[i].in, &c, &cases[i].w);
	}
}

static void test_traceparent_invalid(void **state)
{
	static const struct {
		const char *in;
		const char *why;
	} cases[] = {
		{ "", "empty" },
		{ "00-" TP_TRACE "-" TP_SPAN "-0", "54 characters" },
		{ "00-" TP_TRACE "-" TP_SPAN "-01-", "version 00 is exactly 55 characters" },
		{ "00-" TP_TRACE "-" TP_SPAN "-011", "version 00 is exactly 55 characters" },
		{ "ff-" TP_TRACE "-" TP_SPAN "-01", "version ff is invalid" },
		{ "01-" TP_TRACE "-" TP_SPAN "-01x", "after the flags of a later version: not '-'" },
		{ "0g-" TP_TRACE "-" TP_SPAN "-01", "version not hex" },
		{ "0A-" TP_TRACE "-" TP_SPAN "-01", "upper-case version" },
		{ "00-4BF92F3577B34DA6A3CE929D0E0E4736-" TP_SPAN "-01", "upper-case trace id" },
		{ "00-" TP_TRACE "-00F067AA0BA902B7-01", "upper-case parent id" },
		{ "00-" TP_TRACE "-" TP_SPAN "-0A", "upper-case flags" },
		{ "00-" TP_TRACE "-" TP_SPAN "-0x", "flags not hex" },
		{ "00-00000000000000000000000000000000-" TP_SPAN "-01", "all-zero trace id" },
		{ "00-" TP_TRACE "-0000000000000000-01", "all-zero parent id" },
		{ "00_" TP_TRACE "-" TP_SPAN "-01", "separator" },
		{ "00-" TP_TRACE "_" TP_SPAN "-01", "separator" },
		{ "00-" TP_TRACE "-" TP_SPAN "_01", "separator" },
		{ "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", "fields shifted" },
		{ "00-" TP_TRACE "-" TP_SPAN "- 1", "space" },
		{ " 00-" TP_TRACE "-" TP_SPAN "-01", "leading space (the caller trims OWS)" },
		{ "00-" TP_TRACE "-" TP_SPAN "-01 ", "trailing space" },
		{ "00-" TP_TRACE "-" TP_SPAN, "no flags" },
	};
	size_t i;

	for (i = 0; i < N(cases); i++) {
		struct trace_ctx c = poison();
		int rc = trace_parse_traceparent(cases[i].in, strlen(cases[i].in), &c);

		if (rc != -EINVAL || !untouched(&c))
			fail_msg("traceparent '%s' (%s): rc %d, expected -EINVAL and no write", cases[i].in,
				 cases[i].why, rc);
	}
	/* only value[0..len) is read: a valid value cut short is refused */
	{
		struct trace_ctx c = poison();

		assert_int_equal(trace_parse_traceparent("00-" TP_TRACE "-" TP_SPAN "-01", 54, &c), -EINVAL);
		assert_true(untouched(&c));
	}
}

/* --- B3 ------------------------------------------------------------------------------ */

#define B3_T128 "80f198ee56343ba864fe8b2a57d3eff7"
#define B3_T64 "64fe8b2a57d3eff7"
#define B3_SPAN "e457b5a2e4d86bd1"
#define B3_PARENT "05e3ac9a4f6e3b90"
#define SPANV 0xe457b5a2e4d86bd1ULL
#define T64_AS_128 "0000000000000000" B3_T64

static void test_b3_single_valid(void **state)
{
	static const struct {
		const char *in;
		struct want w;
	} cases[] = {
		{ B3_T128 "-" B3_SPAN "-1-" B3_PARENT, { B3_T128, SPANV, true, true, false } },
		{ B3_T128 "-" B3_SPAN "-1", { B3_T128, SPANV, true, true, false } },
		{ B3_T128 "-" B3_SPAN "-0", { B3_T128, SPANV, false, true, false } },
		{ B3_T128 "-" B3_SPAN "-d", { B3_T128, SPANV, true, true, false } }, /* debug implies sampled */
		{ B3_T128 "-" B3_SPAN, { B3_T128, SPANV, false, false, false } },    /* deferred decision */
		{ B3_T64 "-" B3_SPAN, { T64_AS_128, SPANV, false, false, true } },
		{ B3_T64 "-" B3_SPAN "-0-" B3_PARENT, { T64_AS_128, SPANV, false, true, true } },
		/* a 128-bit id whose high half is zero stays 128-bit: it was written that way */
		{ T64_AS_128 "-" B3_SPAN "-1", { T64_AS_128, SPANV, true, true, false } },
	};
	static const struct {
		const char *in;
		bool sampled;
	} only[] = { { "0", false }, { "1", true }, { "d", true } };
	size_t i;

	for (i = 0; i < N(cases); i++) {
		struct trace_ctx c = poison();

		if (trace_parse_b3(cases[i].in, strlen(cases[i].in), &c) != 0)
			fail_msg("b3 '%s' refused", cases[i].in);
		check_ctx("b3", cases[i].in, &c, &cases[i].w);
	}
	/* only a sampling decision: -ENOENT, and only the decision is written */
	for (i = 0; i < N(only); i++) {
		struct trace_ctx c = poison(), p = poison();

		c.sampled = c.has_sampled = !only[i].sampled;
		assert_int_equal(trace_parse_b3(only[i].in, 1, &c), -ENOENT);
		assert_int_equal(c.sampled, only[i].sampled);
		assert_true(c.has_sampled);
		assert_memory_equal(c.trace_id, p.trace_id, 16);
		assert_true(c.span_id == p.span_id);
	}
}

static void test_b3_single_invalid(void **state)
{
	static const struct {
		const char *in;
		const char *why;
	} cases[] = {
		{ "", "empty" },
		{ "2", "not a sampling state" },
		{ "D", "upper-case debug" },
		{ "-", "separator alone" },
		{ "true", "only multi-header accepts true" },
		{ B3_T128, "no span id" },
		{ B3_T128 "-", "empty span id" },
		{ "-" B3_SPAN, "empty trace id" },
		{ "80f198ee56343ba864fe8b2a57d3eff-" B3_SPAN, "31-digit trace id" },
		{ "80f198ee56343ba864fe8b2a57d3eff7a-" B3_SPAN, "33-digit trace id" },
		{ "64fe8b2a57d3eff-" B3_SPAN, "15-digit trace id" },
		{ "64fe8b2a57d3eff7a-" B3_SPAN, "17-digit trace id" },
		{ "80F198EE56343BA864FE8B2A57D3EFF7-" B3_SPAN, "upper-case trace id" },
		{ B3_T128 "-E457B5A2E4D86BD1", "upper-case span id" },
		{ "00000000000000000000000000000000-" B3_SPAN, "all-zero trace id" },
		{ "0000000000000000-" B3_SPAN, "all-zero 64-bit trace id" },
		{ B3_T128 "-0000000000000000", "all-zero span id" },
		{ B3_T128 "-e457b5a2e4d86bd", "15-digit span id" },
		{ B3_T128 "-" B3_SPAN "-", "empty sampling state" },
		{ B3_T128 "-" B3_SPAN "-2", "sampling state 2" },
		{ B3_T128 "-" B3_SPAN "-11", "sampling state 11" },
		{ B3_T128 "-" B3_SPAN "-true", "sampling state true" },
		{ B3_T128 "-" B3_SPAN "-1-", "empty parent" },
		{ B3_T128 "-" B3_SPAN "-1-05e3ac9a4f6e3b9", "15-digit parent" },
		{ B3_T128 "-" B3_SPAN "-1-0000000000000000", "all-zero parent" },
		{ B3_T128 "-" B3_SPAN "-" B3_PARENT, "parent where the sampling state goes" },
		{ B3_T128 "-" B3_SPAN "-1-" B3_PARENT "-", "fifth field" },
		{ B3_T128 "-" B3_SPAN "-1-" B3_PARENT "-x", "fifth field" },
		{ B3_T128 "--" B3_SPAN, "empty field" },
		{ B3_T128 " -" B3_SPAN, "space" },
	};
	size_t i;

	for (i = 0; i < N(cases); i++) {
		struct trace_ctx c = poison();
		int rc = trace_parse_b3(cases[i].in, strlen(cases[i].in), &c);

		if (rc != -EINVAL || !untouched(&c))
			fail_msg("b3 '%s' (%s): rc %d, expected -EINVAL and no write", cases[i].in, cases[i].why, rc);
	}
}

struct multi {
	const char *trace, *span, *sampled, *flags; /* NULL: header absent */
};

static int parse_multi(const struct multi *m, struct trace_ctx *c)
{
	return trace_parse_b3_multi(m->trace, m->trace ? strlen(m->trace) : 0, m->span, m->span ? strlen(m->span) : 0,
				    m->sampled, m->sampled ? strlen(m->sampled) : 0, m->flags,
				    m->flags ? strlen(m->flags) : 0, c);
}

static void test_b3_multi_valid(void **state)
{
	static const struct {
		struct multi in;
		struct want w;
	} cases[] = {
		{ { B3_T128, B3_SPAN, "1", NULL }, { B3_T128, SPANV, true, true, false } },
		{ { B3_T128, B3_SPAN, "0", NULL }, { B3_T128, SPANV, false, true, false } },
		{ { B3_T128, B3_SPAN, "true", NULL }, { B3_T128, SPANV, true, true, false } },
		{ { B3_T128, B3_SPAN, "false", NULL }, { B3_T128, SPANV, false, true, false } },
		{ { B3_T128, B3_SPAN, NULL, NULL }, { B3_T128, SPANV, false, false, false } },
		{ { B3_T128, B3_SPAN, NULL, "1" }, { B3_T128, SPANV, true, true, false } },   /* debug */
		{ { B3_T128, B3_SPAN, "0", "1" }, { B3_T128, SPANV, true, true, false } },    /* debug wins */
		{ { B3_T128, B3_SPAN, NULL, "0" }, { B3_T128, SPANV, false, false, false } }, /* no flag */
		{ { B3_T64, B3_SPAN, "1", NULL }, { T64_AS_128, SPANV, true, true, true } },
	};
	static const struct {
		struct multi in;
		bool sets, sampled;
	} noent[] = {
		{ { NULL, NULL, NULL, NULL }, false, false },   { { NULL, NULL, "1", NULL }, true, true },
		{ { NULL, NULL, "false", NULL }, true, false }, { { NULL, NULL, NULL, "1" }, true, true },
		{ { NULL, B3_SPAN, "0", NULL }, true, false }, /* a span id without a trace id is no context */
	};
	size_t i;

	for (i = 0; i < N(cases); i++) {
		struct trace_ctx c = poison();

		if (parse_multi(&cases[i].in, &c) != 0)
			fail_msg("b3 multi case %zu refused", i);
		check_ctx("b3 multi", cases[i].in.trace, &c, &cases[i].w);
	}
	for (i = 0; i < N(noent); i++) {
		struct trace_ctx c = poison(), p = poison();

		c.sampled = !noent[i].sampled;
		c.has_sampled = false;
		assert_int_equal(parse_multi(&noent[i].in, &c), -ENOENT);
		if (noent[i].sets) {
			assert_int_equal(c.sampled, noent[i].sampled);
			assert_true(c.has_sampled);
		} else {
			assert_int_equal(c.sampled, !noent[i].sampled);
			assert_false(c.has_sampled);
		}
		assert_memory_equal(c.trace_id, p.trace_id, 16);
	}
}

static void test_b3_multi_invalid(void **state)
{
	static const struct {
		struct multi in;
		const char *why;
	} cases[] = {
		{ { B3_T128, NULL, "1", NULL }, "trace id without span id" },
		{ { B3_T128, "", "1", NULL }, "empty span id" },
		{ { "", B3_SPAN, "1", NULL }, "empty trace id" },
		{ { B3_T128, "e457b5a2e4d86bd", NULL, NULL }, "15-digit span id" },
		{ { B3_T128, "0000000000000000", NULL, NULL }, "all-zero span id" },
		{ { "0000000000000000", B3_SPAN, NULL, NULL }, "all-zero trace id" },
		{ { "80F198EE56343BA864FE8B2A57D3EFF7", B3_SPAN, NULL, NULL }, "upper-case trace id" },
		{ { "80f198ee56343ba864fe8b2a57d3eff", B3_SPAN, NULL, NULL }, "31-digit trace id" },
		{ { B3_T128, B3_SPAN, "yes", NULL }, "sampled yes" },
		{ { B3_T128, B3_SPAN, "", NULL }, "empty sampled" },
		{ { B3_T128, B3_SPAN, "d", NULL }, "d is single-header only" },
		{ { B3_T128, B3_SPAN, "True", NULL }, "True" },
		{ { B3_T128, B3_SPAN, "1", "2" }, "flags 2" },
		{ { B3_T128, B3_SPAN, "1", "" }, "empty flags" },
		{ { NULL, NULL, "maybe", NULL }, "bad sampled without a trace id" },
		{ { NULL, NULL, NULL, "x" }, "bad flags without a trace id" },
	};
	size_t i;

	for (i = 0; i < N(cases); i++) {
		struct trace_ctx c = poison();
		int rc = parse_multi(&cases[i].in, &c);

		if (rc != -EINVAL || !untouched(&c))
			fail_msg("b3 multi (%s): rc %d, expected -EINVAL and no write", cases[i].why, rc);
	}
}

/* --- writers ------------------------------------------------------------------------ */

static void test_hex(void **state)
{
	static const uint8_t b[] = { 0x00, 0x01, 0xab, 0xff };
	char out[10], h64[17];

	memset(out, 'x', sizeof(out));
	trace_hex(out, b, sizeof(b));
	assert_memory_equal(out, "0001abff\0x", 10); /* 2n digits and a NUL, nothing more */
	trace_hex(out, b, 0);
	assert_string_equal(out, "");
	trace_hex64(h64, 0x00f067aa0ba902b7ULL);
	assert_string_equal(h64, "00f067aa0ba902b7");
	trace_hex64(h64, 0);
	assert_string_equal(h64, "0000000000000000");
	trace_hex64(h64, UINT64_MAX);
	assert_string_equal(h64, "ffffffffffffffff");
}

static void test_format_traceparent(void **state)
{
	char out[TRACE_TRACEPARENT_LEN + 1];
	struct trace_ctx c;
	uint8_t tid[16];

	hex_to(TP_TRACE, tid, 16);
	assert_int_equal(trace_format_traceparent(out, sizeof(out), tid, 0x00f067aa0ba902b7ULL, true), 55);
	assert_string_equal(out, "00-" TP_TRACE "-" TP_SPAN "-01");
	assert_int_equal(trace_parse_traceparent(out, 55, &c), 0);
	assert_memory_equal(c.trace_id, tid, 16);
	assert_true(c.span_id == 0x00f067aa0ba902b7ULL && c.sampled && c.has_sampled);
	assert_int_equal(trace_format_traceparent(out, sizeof(out), tid, 1, false), 55);
	assert_string_equal(out, "00-" TP_TRACE "-0000000000000001-00");
	memset(out, 'x', sizeof(out));
	assert_int_equal(trace_format_traceparent(out, 55, tid, 1, false), -ENOSPC);
	assert_int_equal(out[0], 'x');

	/* random ids round trip */
	for (int k = 0; k < 1000; k++) {
		uint64_t span = trace_random_u64();

		trace_new_trace_id(tid);
		assert_int_equal(trace_format_traceparent(out, sizeof(out), tid, span, k & 1), 55);
		assert_int_equal(trace_parse_traceparent(out, 55, &c), 0);
		assert_memory_equal(c.trace_id, tid, 16);
		assert_true(c.span_id == span && c.sampled == (k & 1));
	}
}

static void test_format_b3(void **state)
{
	static const struct {
		const char *in;        /* parsed with trace_parse_b3 */
		uint64_t span, parent; /* written */
		const char *want;
	} cases[] = {
		{ B3_T128 "-" B3_SPAN "-1", 0x1111111111111111ULL, SPANV, B3_T128 "-1111111111111111-1-" B3_SPAN },
		{ B3_T128 "-" B3_SPAN "-0", 0x1111111111111111ULL, 0, B3_T128 "-1111111111111111-0" },
		{ B3_T128 "-" B3_SPAN "-d", 2, 0, B3_T128 "-0000000000000002-1" },
		{ B3_T64 "-" B3_SPAN, 3, 4, B3_T64 "-0000000000000003-0-0000000000000004" },
		{ T64_AS_128 "-" B3_SPAN "-1", 3, 0, T64_AS_128 "-0000000000000003-1" },
	};
	char out[80];
	struct trace_ctx c, d;
	size_t i;
	int n;

	for (i = 0; i < N(cases); i++) {
		assert_int_equal(trace_parse_b3(cases[i].in, strlen(cases[i].in), &c), 0);
		n = trace_format_b3(out, sizeof(out), &c, cases[i].span, cases[i].parent);
		assert_int_equal(n, strlen(cases[i].want));
		assert_string_equal(out, cases[i].want);
		/* and it reads back as the same trace with our span */
		assert_int_equal(trace_parse_b3(out, (size_t)n, &d), 0);
		assert_memory_equal(d.trace_id, c.trace_id, 16);
		assert_true(d.span_id == cases[i].span && d.sampled == c.sampled && d.b3_trace64 == c.b3_trace64);
		memset(out, 'x', sizeof(out));
		assert_int_equal(trace_format_b3(out, (size_t)n, &c, cases[i].span, cases[i].parent), -ENOSPC);
		assert_int_equal(out[0], 'x');
		assert_int_equal(trace_format_b3(out, (size_t)n + 1, &c, cases[i].span, cases[i].parent), n);
	}
	/* "64-bit" with a non-zero high half would lose bits: written as 32 digits */
	memset(&c, 0, sizeof(c));
	c.trace_id[0] = 0x80;
	c.trace_id[15] = 1;
	c.b3_trace64 = true;
	assert_int_equal(trace_format_b3(out, sizeof(out), &c, 5, 0), 51);
	assert_string_equal(out, "80000000000000000000000000000001-0000000000000005-0");
}

/* --- ids ------------------------------------------------------------------------------ */

static void *draw4(void *arg)
{
	uint64_t *v = arg;
	int i;

	for (i = 0; i < 4; i++)
		v[i] = trace_random_u64();
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void test_random(void **state)
{
	static uint64_t v[100000];
	uint64_t mine[4], theirs[4], child;
	uint8_t tid[16], zero[16] = { 0 };
	pthread_t th;
	int fds[2], st, i, ones = 0;
	pid_t pid;

	for (i = 0; i < (int)N(v); i++) {
		v[i] = trace_random_u64();
		assert_true(v[i] != 0);
		ones += __builtin_popcountll(v[i]);
	}
	/* no repeats, and about half the bits set */
	qsort(v, N(v), sizeof(v[0]), cmp_u64);
	for (i = 1; i < (int)N(v); i++)
		assert_true(v[i] != v[i - 1]);
	assert_true(ones > 32 * (int)N(v) * 0.99 && ones < 32 * (int)N(v) * 1.01);
	for (i = 0; i < 100; i++) {
		trace_new_trace_id(tid);
		assert_memory_not_equal(tid, zero, 16);
	}

	/* another thread has its own stream */
	draw4(mine);
	assert_int_equal(pthread_create(&th, NULL, draw4, theirs), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_memory_not_equal(mine, theirs, sizeof(mine));

	/* a forked child reseeds instead of repeating the parent's next ids */
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		uint64_t x = trace_random_u64();

		_exit(write(fds[1], &x, sizeof(x)) == sizeof(x) ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &child, sizeof(child)), sizeof(child));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(child != trace_random_u64());
}

/* --- Zipkin JSON -------------------------------------------------------------------- */

static void test_json_validator(void **state)
{
	static const char *good[] = { "{}", "[]", "{\"a\":[1,-2.5e3,true,false,null,\"\\u00e9\\n\"]}", "\"\xc3\xa9\"",
				      " 0 " };
	static const char *bad[] = { "",         "{",        "{\"a\":1,}",   "[1,]",
				     "\"\x01\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
				     "01",       "{a:1}",    "\"\\x\"",      "[1]x",
				     "\"abc" };
	size_t i;

	for (i = 0; i < N(good); i++)
		assert_true(json_valid(good[i], strlen(good[i])));
	for (i = 0; i < N(bad); i++)
		if (json_valid(bad[i], strlen(bad[i])))
			fail_msg("validator accepted '%s'", bad[i]);
}

static struct trace_span span_server(void)
{
	struct trace_span s;

	memset(&s, 0, sizeof(s));
	hex_to(TP_TRACE, s.trace_id, 16);
	s.id = 0x00f067aa0ba902b7ULL;
	s.parent_id = 0x1122334455667788ULL;
	s.start_us = INT64_C(1795786800123456);
	s.duration_us = 2500;
	s.kind = TRACE_KIND_SERVER;
	strcpy(s.name, "GET /api/items");
	strcpy(s.service, "web");
	strcpy(s.route, "items");
	strcpy(s.method, "GET");
	strcpy(s.path, "/api/items");
	strcpy(s.endpoint, "10.0.0.1:80"); /* SERVER spans have no remoteEndpoint */
	s.status = 200;
	s.attempt = 3; /* nor an attempt */
	return s;
}

static struct trace_span span_client(void)
{
	struct trace_span s;

	memset(&s, 0, sizeof(s));
	hex_to(T64_AS_128, s.trace_id, 16);
	s.id = SPANV;
	s.parent_id = 0x00f067aa0ba902b7ULL;
	s.start_us = 1;
	s.duration_us = 0; /* rounded up to 1, as Zipkin asks */
	s.kind = TRACE_KIND_CLIENT;
	strcpy(s.name, "POST /q");
	strcpy(s.service, "api");
	strcpy(s.method, "POST");
	/* quote, backslash, newline, a control byte, a stray byte, and a valid e-acute */
	strcpy(s.path, "/a\"b\\c\n\x01\xff\xc3\xa9");
	strcpy(s.endpoint, "[2001:db8::1]:8443");
	s.attempt = 2;
	strcpy(s.error, "timeout");
	return s;
}

static void test_span_json(void **state)
{
	static const char *want_server =
		"{\"traceId\":\"" TP_TRACE "\",\"id\":\"00f067aa0ba902b7\",\"parentId\":\"1122334455667788\","
		"\"kind\":\"SERVER\",\"name\":\"GET /api/items\",\"timestamp\":1795786800123456,\"duration\":2500,"
		"\"localEndpoint\":{\"serviceName\":\"weft-agent\"},"
		"\"tags\":{\"http.method\":\"GET\",\"http.path\":\"/api/items\",\"http.status_code\":\"200\","
		"\"weft.service\":\"web\",\"weft.route\":\"items\"}}";
	static const char *want_client =
		"{\"traceId\":\"" B3_T64 "\",\"id\":\"" B3_SPAN "\",\"parentId\":\"00f067aa0ba902b7\","
		"\"kind\":\"CLIENT\",\"name\":\"POST /q\",\"timestamp\":1,\"duration\":1,"
		"\"localEndpoint\":{\"serviceName\":\"agent \\\"x\\\"\"},"
		"\"remoteEndpoint\":{\"ipv6\":\"2001:db8::1\",\"port\":8443},"
		"\"tags\":{\"http.method\":\"POST\",\"http.path\":\"/a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xa9\","
		"\"weft.service\":\"api\",\"weft.attempt\":\"2\",\"error\":\"timeout\"}}";
	struct trace_span s = span_server();
	struct buf b = { 0 };

	trace_span_json(&b, &s, "weft-agent");
	assert_false(buf_failed(&b));
	assert_string_equal(b.p, want_server);
	assert_true(json_valid(b.p, b.len));

	buf_reset(&b);
	s = span_client();
	trace_span_json(&b, &s, "agent \"x\"");
	assert_string_equal(b.p, want_client);
	assert_true(json_valid(b.p, b.len));

	/* it appends: the exporter's batch "[span,span]" is one JSON document */
	buf_reset(&b);
	buf_puts(&b, "[");
	s = span_server();
	trace_span_json(&b, &s, "weft-agent");
	buf_puts(&b, ",");
	s = span_client();
	trace_span_json(&b, &s, "agent \"x\"");
	buf_puts(&b, "]");
	assert_false(buf_failed(&b));
	assert_true(json_valid(b.p, b.len));
	assert_int_equal(b.len, 3 + strlen(want_server) + strlen(want_client));
	buf_free(&b);
}

/* pre, then n times c, then post (a static buffer: one use at a time) */
static const char *rep(const char *pre, char c, size_t n, const char *post)
{
	static char out[256];
	size_t l = strlen(pre);

	assert_true(l + n + strlen(post) < sizeof(out));
	memcpy(out, pre, l);
	memset(out + l, c, n);
	strcpy(out + l + n, post);
	return out;
}

/* Smaller cases: one field changed from a base span, the JSON fragment expected (or not). */
static void test_span_json_fields(void **state)
{
	static const struct {
		const char *what;
		const char *endpoint;
		const char *want, *not_want; /* a substring that must (not) appear */
	} eps[] = {
		{ "ipv4", "10.1.2.3:8080", ",\"remoteEndpoint\":{\"ipv4\":\"10.1.2.3\",\"port\":8080},", NULL },
		{ "port 0 omitted", "10.1.2.3:0", ",\"remoteEndpoint\":{\"ipv4\":\"10.1.2.3\"},", NULL },
		{ "ipv6 made canonical", "[2001:DB8:0:0::1]:1", "{\"ipv6\":\"2001:db8::1\",\"port\":1}", NULL },
		{ "empty: none", "", NULL, "remoteEndpoint" },
		{ "no port", "10.1.2.3", NULL, "remoteEndpoint" },
		{ "empty port", "10.1.2.3:", NULL, "remoteEndpoint" },
		{ "port too large", "10.1.2.3:65536", NULL, "remoteEndpoint" },
		{ "port not a number", "10.1.2.3:8o", NULL, "remoteEndpoint" },
		{ "host name", "db.local:5432", NULL, "remoteEndpoint" },
		{ "ipv6 without brackets", "::1:80", NULL, "remoteEndpoint" },
		{ "unclosed bracket", "[::1:80", NULL, "remoteEndpoint" },
		{ "bracket without port", "[::1]", NULL, "remoteEndpoint" },
		{ "json in the address", "1.2.3.4\",\"x\":\"1:80", NULL, "remoteEndpoint" },
	};
	struct trace_span s;
	struct buf b = { 0 };
	size_t i;

	for (i = 0; i < N(eps); i++) {
		s = span_client();
		strcpy(s.endpoint, eps[i].endpoint);
		buf_reset(&b);
		trace_span_json(&b, &s, "w");
		assert_true(json_valid(b.p, b.len));
		if (eps[i].want && !strstr(b.p, eps[i].want))
			fail_msg("%s: '%s' not in %s", eps[i].what, eps[i].want, b.p);
		if (eps[i].not_want && strstr(b.p, eps[i].not_want))
			fail_msg("%s: '%s' in %s", eps[i].what, eps[i].not_want, b.p);
	}

	/* a root span with no tags at all: no parentId, no "tags":{} */
	memset(&s, 0, sizeof(s));
	s.trace_id[15] = 1;
	s.id = 2;
	s.start_us = 10;
	s.duration_us = 20;
	s.kind = TRACE_KIND_SERVER;
	buf_reset(&b);
	trace_span_json(&b, &s, NULL);
	assert_string_equal(b.p,
			    "{\"traceId\":\"0000000000000001\",\"id\":\"0000000000000002\",\"kind\":\"SERVER\","
			    "\"name\":\"\",\"timestamp\":10,\"duration\":20,\"localEndpoint\":{\"serviceName\":\"\"}}");
	assert_true(json_valid(b.p, b.len));

	/* a CLIENT span's attempt alone is a tag; attempt 0 is none */
	s.kind = TRACE_KIND_CLIENT;
	s.attempt = 1;
	buf_reset(&b);
	trace_span_json(&b, &s, "w");
	assert_non_null(strstr(b.p, ",\"tags\":{\"weft.attempt\":\"1\"}}"));
	s.attempt = 0;
	s.status = 503;
	strcpy(s.error, "connect refused");
	buf_reset(&b);
	trace_span_json(&b, &s, "w");
	assert_non_null(strstr(b.p, ",\"tags\":{\"http.status_code\":\"503\",\"error\":\"connect refused\"}}"));

	/* an unknown kind is left out rather than guessed */
	s.kind = 7;
	buf_reset(&b);
	trace_span_json(&b, &s, "w");
	assert_null(strstr(b.p, "\"kind\""));
	assert_true(json_valid(b.p, b.len));

	/* fields filled to the last byte (no NUL) are read to their size, not beyond */
	s = span_server();
	memset(s.name, 'n', sizeof(s.name));
	memset(s.service, 's', sizeof(s.service));
	memset(s.route, 'r', sizeof(s.route));
	memset(s.method, 'm', sizeof(s.method));
	memset(s.path, 'p', sizeof(s.path));
	memset(s.error, 'e', sizeof(s.error));
	buf_reset(&b);
	trace_span_json(&b, &s, "w");
	assert_true(json_valid(b.p, b.len));
	assert_non_null(strstr(b.p, rep("\"name\":\"", 'n', 64, "\",")));
	assert_non_null(strstr(b.p, rep("\"http.method\":\"", 'm', 16, "\",")));
	assert_non_null(strstr(b.p, rep("\"http.path\":\"", 'p', 128, "\",")));
	assert_non_null(strstr(b.p, rep("\"weft.service\":\"", 's', 64, "\",")));
	assert_non_null(strstr(b.p, rep("\"weft.route\":\"", 'r', 64, "\",")));
	assert_non_null(strstr(b.p, rep("\"error\":\"", 'e', 48, "\"}}")));

	/* UTF-8 cut mid-character by the span's producer: replaced, still valid JSON */
	s = span_server();
	memset(s.path, 0, sizeof(s.path));
	memcpy(s.path, "/\xe2\x82", 3); /* first two bytes of the euro sign */
	buf_reset(&b);
	trace_span_json(&b, &s, "w");
	assert_non_null(strstr(b.p, "\"http.path\":\"/\\ufffd\\ufffd\""));
	assert_true(json_valid(b.p, b.len));
	/* overlong, surrogate and beyond U+10FFFF: each byte replaced */
	memcpy(s.path, "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80", 10);
	buf_reset(&b);
	trace_span_json(&b, &s, "w");
	assert_true(json_valid(b.p, b.len));
	assert_null(strstr(b.p, "\xed"));
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traceparent_valid),
		cmocka_unit_test(test_traceparent_invalid),
		cmocka_unit_test(test_b3_single_valid),
		cmocka_unit_test(test_b3_single_invalid),
		cmocka_unit_test(test_b3_multi_valid),
		cmocka_unit_test(test_b3_multi_invalid),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_format_traceparent),
		cmocka_unit_test(test_format_b3),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_json_validator),
		cmocka_unit_test(test_span_json),
		cmocka_unit_test(test_span_json_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
