// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/retry.c: the retry budget driven by a fake clock (scripts of
 * requests, tries and availability checks, each with the exact expected
 * answer: the window's edges, roll-over, the exhausted counter), then the
 * full-jitter back-off over many draws (range, cap, no overflow).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "state/retry.h"

/* --- budget scripts -------------------------------------------------------------- */

enum op { END, REQ, TRY_OK, TRY_NO, AVAIL, EXHAUSTED };

struct step {
	enum op op;
	double t;   /* seconds; unused by EXHAUSTED */
	uint64_t n; /* REQ: how many; AVAIL/EXHAUSTED: expected value */
};

struct script {
	const char *name;
	double ratio;
	uint32_t min_per_s, window_s;
	struct step steps[24];
};

static void run_script(const struct script *sc)
{
	struct retry_budget b;
	const struct step *st;
	uint64_t k;

	retry_budget_init(&b, sc->ratio, sc->min_per_s, sc->window_s);
	for (st = sc->steps; st->op != END; st++) {
		size_t i = (size_t)(st - sc->steps);

		switch (st->op) {
		case REQ:
			for (k = 0; k < (st->n ? st->n : 1); k++)
				retry_budget_request(&b, st->t);
			break;
		case TRY_OK:
		case TRY_NO:
			if (retry_budget_try(&b, st->t) != (st->op == TRY_OK))
				fail_msg("%s: step %zu: try at %.3f: expected %s", sc->name, i, st->t,
					 st->op == TRY_OK ? "allowed" : "refused");
			break;
		case AVAIL:
			k = retry_budget_available(&b, st->t);
			if (k != st->n)
				fail_msg("%s: step %zu: available at %.3f: %llu, expected %llu", sc->name, i, st->t,
					 (unsigned long long)k, (unsigned long long)st->n);
			break;
		case EXHAUSTED:
			if (b.exhausted != st->n)
				fail_msg("%s: step %zu: exhausted %llu, expected %llu", sc->name, i,
					 (unsigned long long)b.exhausted, (unsigned long long)st->n);
			break;
		case END:
			break;
		}
		/* the running sums always equal the buckets */
		{
			uint64_t r = 0, t = 0;
			uint32_t j;

			for (j = 0; j < RETRY_MAX_WINDOW_S; j++) {
				r += b.reqs[j];
				t += b.retries[j];
			}
			if (r != b.sum_reqs || t != b.sum_retries)
				fail_msg("%s: step %zu: sums %llu/%llu, buckets %llu/%llu", sc->name, i,
					 (unsigned long long)b.sum_reqs, (unsigned long long)b.sum_retries,
					 (unsigned long long)r, (unsigned long long)t);
		}
	}
}

/* Budgets that allow: the ratio, the per-second floor, and what leaving the window gives back. */
static void test_budget_allows(void **state)
{
	static const struct script scripts[] = {
		{ "ratio 0.2 of 10 requests",
		  0.2,
		  0,
		  10,
		  { { REQ, 0.5, 10 },
		    { AVAIL, 0.5, 2 },
		    { TRY_OK, 0.6, 0 },
		    { AVAIL, 0.6, 1 },
		    { TRY_OK, 0.7, 0 },
		    { AVAIL, 0.7, 0 },
		    { EXHAUSTED, 0, 0 } } },
		{ "min_per_s alone: min * window, no requests needed",
		  0,
		  1,
		  10,
		  { { AVAIL, 0, 10 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0, 0 },
		    { AVAIL, 0, 0 } } },
		{ "ratio and floor add up", 0.5, 2, 3, { { REQ, 1, 4 }, { AVAIL, 1, 2 + 6 } } },
		{ "0.29 * 100 is 29, not 28 (binary floating point)",
		  0.29,
		  0,
		  10,
		  { { REQ, 0, 100 }, { AVAIL, 0, 29 } } },
		{ "fractions round down",
		  0.25,
		  0,
		  10,
		  { { REQ, 0, 7 }, { AVAIL, 0, 1 }, { REQ, 0, 1 }, { AVAIL, 0, 2 } } },
		{ "a request is counted until the window has passed: [0, 10) for 10 s",
		  1,
		  0,
		  10,
		  { { REQ, 0.0, 1 }, { AVAIL, 9.999, 1 }, { AVAIL, 10.0, 0 } } },
		{ "buckets are whole seconds: 0.9 leaves with second 0",
		  1,
		  0,
		  10,
		  { { REQ, 0.9, 1 }, { AVAIL, 9.5, 1 }, { AVAIL, 10.0, 0 } } },
		{ "partial roll-over drops only the oldest seconds",
		  1,
		  0,
		  10,
		  { { REQ, 0, 1 },
		    { REQ, 1, 1 },
		    { REQ, 2, 1 },
		    { REQ, 3, 1 },
		    { REQ, 4, 1 },
		    { REQ, 5, 1 },
		    { REQ, 6, 1 },
		    { REQ, 7, 1 },
		    { REQ, 8, 1 },
		    { REQ, 9, 1 },
		    { AVAIL, 9, 10 },
		    { AVAIL, 10, 9 },
		    { AVAIL, 12.5, 7 },
		    { AVAIL, 18, 1 },
		    { AVAIL, 19, 0 } } },
		{ "retries leave the window too and give budget back",
		  0,
		  1,
		  2,
		  { { TRY_OK, 0, 0 },
		    { TRY_OK, 0.5, 0 },
		    { TRY_NO, 1, 0 },
		    { AVAIL, 1.9, 0 },
		    { AVAIL, 2, 2 },
		    { TRY_OK, 2, 0 },
		    { TRY_OK, 2.1, 0 },
		    { TRY_NO, 2.2, 0 },
		    { AVAIL, 3, 0 },
		    { AVAIL, 4, 2 } } },
		{ "a gap longer than the window empties it",
		  1,
		  0,
		  5,
		  { { REQ, 3, 50 },
		    { TRY_OK, 3, 0 },
		    { AVAIL, 7, 49 },
		    { AVAIL, 1000, 0 },
		    { REQ, 1000, 1 },
		    { AVAIL, 1000, 1 } } },
		{ "a gap of exactly the window empties it", 1, 0, 5, { { REQ, 3, 5 }, { AVAIL, 8, 0 } } },
		{ "window 1: each second starts afresh",
		  1,
		  0,
		  1,
		  { { REQ, 0, 2 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0.99, 0 },
		    { TRY_NO, 0.99, 0 },
		    { REQ, 1, 1 },
		    { TRY_OK, 1, 0 },
		    { TRY_NO, 1, 0 } } },
		{ "the full 60 s window", 1, 0, 60, { { REQ, 100, 1 }, { AVAIL, 159, 1 }, { AVAIL, 160, 0 } } },
		{ "a clock that steps back counts in the newest second",
		  1,
		  0,
		  3,
		  { { REQ, 10, 1 }, { REQ, 5, 1 }, { AVAIL, 12, 2 }, { AVAIL, 13, 0 } } },
		{ "first call far from 0 anchors the window there",
		  0.5,
		  0,
		  10,
		  { { REQ, 1e6, 4 }, { AVAIL, 1e6 + 9, 2 }, { AVAIL, 1e6 + 10, 0 } } },
		{ "huge ratio saturates instead of overflowing",
		  1e300,
		  0,
		  10,
		  { { REQ, 0, 1 }, { AVAIL, 0, UINT64_MAX }, { TRY_OK, 0, 0 }, { AVAIL, 0, UINT64_MAX - 1 } } },
		{ "infinite ratio: unlimited once a request came, nothing before",
		  INFINITY,
		  0,
		  10,
		  { { AVAIL, 0, 0 }, { REQ, 0, 1 }, { AVAIL, 0, UINT64_MAX } } },
		{ "largest floor: 2^32-1 per second over 60 s",
		  0,
		  UINT32_MAX,
		  60,
		  { { AVAIL, 0, (uint64_t)UINT32_MAX * 60 } } },
	};
	size_t i;

	for (i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++)
		run_script(&scripts[i]);
}

/* Refusals: each one counted in exhausted, and a refused try is not a retry made. */
static void test_budget_refuses(void **state)
{
	static const struct script scripts[] = {
		{ "nothing allowed: ratio 0, floor 0",
		  0,
		  0,
		  10,
		  { { REQ, 0, 100 }, { TRY_NO, 0, 0 }, { TRY_NO, 5, 0 }, { AVAIL, 5, 0 }, { EXHAUSTED, 0, 2 } } },
		{ "no requests, no floor", 0.5, 0, 10, { { TRY_NO, 0, 0 }, { EXHAUSTED, 0, 1 } } },
		{ "ratio spent: the third of 0.2 * 10 is refused",
		  0.2,
		  0,
		  10,
		  { { REQ, 0, 10 },
		    { TRY_OK, 0, 0 },
		    { TRY_OK, 0, 0 },
		    { TRY_NO, 0, 0 },
		    { TRY_NO, 9.9, 0 },
		    { EXHAUSTED, 0, 2 },
		    { AVAIL, 9.9, 0 } } },
		{ "refusals do not use up budget that comes back",
		  1,
		  0,
		  2,
		  { { REQ, 0, 1 },
		    { TRY_OK, 0, 0 },
		    { TRY_NO, 0, 0 },
		    { TRY_NO, 0, 0 },
		    { REQ, 1, 1 },
		    { TRY_OK, 1, 0 },
		    { TRY_NO, 1, 0 },
		    { EXHAUSTED, 0, 3 } } },
		{ "retries are not requests: they earn no budget",
		  1,
		  1,
		  1,
		  { { TRY_OK, 0, 0 }, { TRY_NO, 0, 0 }, { EXHAUSTED, 0, 1 } } },
		{ "ratio below one request's worth",
		  0.09,
		  0,
		  10,
		  { { REQ, 0, 11 }, { TRY_NO, 0, 0 }, { REQ, 0, 1 }, { TRY_OK, 0, 0 }, { TRY_NO, 0, 0 } } },
	};
	size_t i;

	for (i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++)
		run_script(&scripts[i]);
}

static void test_budget_init_clamps(void **state)
{
	struct retry_budget b;

	retry_budget_init(&b, -1, 0, 0);
	assert_true(b.ratio == 0);
	assert_int_equal(b.window_s, 1);
	retry_budget_init(&b, NAN, 0, 1000);
	assert_true(b.ratio == 0);
	assert_int_equal(b.window_s, RETRY_MAX_WINDOW_S);
	retry_budget_request(&b, 0);
	assert_int_equal(retry_budget_available(&b, 0), 0);
	retry_budget_init(&b, 0.1, 3, 7);
	assert_true(b.ratio == 0.1);
	assert_int_equal(b.min_per_s, 3);
	assert_int_equal(b.window_s, 7);
	assert_int_equal(b.exhausted, 0);
	/* times no monotonic clock gives: handled, not undefined behaviour */
	assert_int_equal(retry_budget_available(&b, -5), 21);
	assert_int_equal(retry_budget_available(&b, NAN), 21);
	assert_true(retry_budget_try(&b, 1e30));
	assert_int_equal(retry_budget_available(&b, INFINITY), 20);
}

/* --- back-off ---------------------------------------------------------------------- */

static void test_backoff_ranges(void **state)
{
	static const struct {
		uint32_t base, max;
		unsigned attempt;
		uint32_t ceiling;
	} cases[] = {
		{ 100, 1000, 0, 100 }, /* 0 is taken as the first retry */
		{ 100, 1000, 1, 100 },
		{ 100, 1000, 2, 200 },
		{ 100, 1000, 3, 400 },
		{ 100, 1000, 4, 800 },
		{ 100, 1000, 5, 1000 },  /* 1600 capped */
		{ 100, 1000, 64, 1000 }, /* 100 << 63 would overflow */
		{ 100, 1000, 1000000, 1000 },
		{ 100, 1000, ~0u, 1000 },
		{ 25, 60000, 12, 51200 },
		{ 1, 1, 1, 1 },
		{ 1, UINT32_MAX, 33, UINT32_MAX },
		{ UINT32_MAX, UINT32_MAX, 2, UINT32_MAX },
		{ 500, 100, 1, 100 }, /* max below base: max wins */
		{ 0, 1000, 3, 0 },    /* base 0: no back-off */
		{ 100, 0, 3, 0 },
	};
	uint64_t rng = 0x853c49e6748fea9bULL;
	size_t i;
	int k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t lo = UINT32_MAX, hi = 0, v;
		double sum = 0, c = cases[i].ceiling;

		for (k = 0; k < 20000; k++) {
			v = retry_backoff_ms(cases[i].base, cases[i].max, cases[i].attempt, &rng);
			if (v > cases[i].ceiling)
				fail_msg("case %zu: %u above the ceiling %u", i, v, cases[i].ceiling);
			lo = v < lo ? v : lo;
			hi = v > hi ? v : hi;
			sum += v;
		}
		/* full jitter: the whole range is used, uniformly (mean within 3 % of half) */
		if (c >= 100) {
			assert_true(lo <= c * 0.01);
			assert_true(hi >= c * 0.99);
			assert_true(fabs(sum / 20000 - c / 2) <= c * 0.03);
		} else if (c == 1) {
			assert_int_equal(lo, 0);
			assert_int_equal(hi, 1);
		} else {
			assert_int_equal(hi, 0);
		}
	}
}

static void test_backoff_rng(void **state)
{
	uint64_t a = 42, b = 42, z = 0;
	uint32_t v0, seen_nonzero = 0;
	int k;

	/* the same state gives the same draws, and the state advances */
	for (k = 0; k < 100; k++)
		assert_int_equal(retry_backoff_ms(10, 100000, 10, &a), retry_backoff_ms(10, 100000, 10, &b));
	assert_true(a == b && a != 42);
	/* a zero state (a caller's bug) does not get stuck at zero */
	v0 = retry_backoff_ms(1000, 1000, 1, &z);
	assert_true(z != 0);
	for (k = 0; k < 100; k++)
		seen_nonzero |= retry_backoff_ms(1000, 1000, 1, &z) != v0;
	assert_true(seen_nonzero);
	/* base 0 leaves the state alone: no draw was needed */
	a = 7;
	assert_int_equal(retry_backoff_ms(0, 100, 1, &a), 0);
	assert_true(a == 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_budget_allows),      cmocka_unit_test(test_budget_refuses),
		cmocka_unit_test(test_budget_init_clamps), cmocka_unit_test(test_backoff_ranges),
		cmocka_unit_test(test_backoff_rng),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
