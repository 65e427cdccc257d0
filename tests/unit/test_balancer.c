// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "balancer.h"

/* Test fixture: n endpoints with weights (NULL: all 1). */
static struct bal_endpoint fx_eps[8];

static int bal_setup_mode(struct bal *b, size_t n, const uint32_t *w, enum bal_mode mode)
{
	size_t i;
	int r = bal_init(b, n, mode);

	memset(fx_eps, 0, sizeof(fx_eps));
	for (i = 0; i < n; i++) {
		fx_eps[i].weight = w ? w[i] : 1;
		b->eps[i] = &fx_eps[i];
	}
	return r;
}

static int bal_setup(struct bal *b, size_t n, const uint32_t *w)
{
	return bal_setup_mode(b, n, w, BAL_ROUND_ROBIN);
}

/* Distribution over `rounds` picks with no exclusions. */
static void count_picks(struct bal *b, int rounds, int *counts)
{
	int i, p;

	for (i = 0; i < rounds; i++) {
		p = bal_pick(b, 0);
		assert_true(p >= 0 && (size_t)p < b->n);
		counts[p]++;
	}
}

static void test_rr_equal(void **state)
{
	struct bal b;
	int seq[6], i;

	assert_int_equal(bal_setup(&b, 2, NULL), 0);
	for (i = 0; i < 6; i++)
		seq[i] = bal_pick(&b, 0);
	/* strict alternation */
	for (i = 1; i < 6; i++)
		assert_int_not_equal(seq[i], seq[i - 1]);
	bal_free(&b);
}

static const struct {
	uint32_t w[4];
	size_t n;
	int rounds;
	int expect[4];
} weighted_cases[] = {
	{ { 3, 1 }, 2, 400, { 300, 100 } },
	{ { 1, 1, 1 }, 3, 300, { 100, 100, 100 } },
	{ { 5, 1, 1 }, 3, 700, { 500, 100, 100 } },
	{ { 1 }, 1, 10, { 10 } },
	{ { 2, 0, 1, 1 }, 4, 500, { 200, 100, 100, 100 } }, /* weight 0 counts as 1 */
};

static void test_rr_weighted(void **state)
{
	size_t c, i;

	for (c = 0; c < sizeof(weighted_cases) / sizeof(weighted_cases[0]); c++) {
		struct bal b;
		int counts[4] = { 0 };

		assert_int_equal(bal_setup(&b, weighted_cases[c].n, weighted_cases[c].w), 0);
		count_picks(&b, weighted_cases[c].rounds, counts);
		for (i = 0; i < weighted_cases[c].n; i++)
			assert_int_equal(counts[i], weighted_cases[c].expect[i]);
		bal_free(&b);
	}
}

static void test_rr_smooth(void **state)
{
	/* 3:1 must interleave (no A A A B bursts beyond the weight) */
	uint32_t w[2] = { 3, 1 };
	struct bal b;
	int i, run = 0, maxrun = 0, prev = -1, p;

	assert_int_equal(bal_setup(&b, 2, w), 0);
	for (i = 0; i < 40; i++) {
		p = bal_pick(&b, 0);
		run = p == prev ? run + 1 : 1;
		prev = p;
		if (run > maxrun)
			maxrun = run;
	}
	assert_true(maxrun <= 3);
	bal_free(&b);
}

/* Failure cases: exclusions and empty sets. */
static void test_rr_excluded(void **state)
{
	struct bal b;

	assert_int_equal(bal_setup(&b, 3, NULL), 0);
	assert_int_equal(bal_pick(&b, 0x1 | 0x2), 2);
	assert_int_equal(bal_pick(&b, 0x1 | 0x4), 1);
	assert_int_equal(bal_pick(&b, 0x7), -ENOENT);
	bal_free(&b);

	assert_int_equal(bal_setup(&b, 0, NULL), 0);
	assert_int_equal(bal_pick(&b, 0), -ENOENT);
	bal_free(&b);
}

/* P2C over peak-EWMA: a slow endpoint gets clearly less traffic. */
static void test_p2c_prefers_fast(void **state)
{
	struct bal b;
	int counts[3] = { 0 };

	assert_int_equal(bal_setup_mode(&b, 3, NULL, BAL_EWMA), 0);
	bal_observe(&fx_eps[0], 100, 1.0);
	bal_observe(&fx_eps[1], 100, 1.0);
	bal_observe(&fx_eps[2], 5000, 1.0); /* 50x slower */
	count_picks(&b, 3000, counts);
	/* the slow one only wins when both candidates are it: never (distinct pair) */
	assert_int_equal(counts[2], 0);
	assert_in_range(counts[0], 1200, 1800);
	bal_free(&b);
}

static void test_p2c_load_counts(void **state)
{
	struct bal b;
	int counts[2] = { 0 };

	assert_int_equal(bal_setup_mode(&b, 2, NULL, BAL_EWMA), 0);
	bal_observe(&fx_eps[0], 100, 1.0);
	bal_observe(&fx_eps[1], 100, 1.0);
	fx_eps[0].active = 9; /* same latency, 10x the load */
	count_picks(&b, 100, counts);
	assert_int_equal(counts[1], 100);
	bal_free(&b);
}

static void test_peak_ewma(void **state)
{
	struct bal_endpoint e = { .weight = 1 };

	bal_observe(&e, 1000, 1.0);
	assert_true(e.ewma_us == 1000);
	bal_observe(&e, 5000, 2.0); /* a peak replaces the average at once */
	assert_true(e.ewma_us == 5000);
	bal_observe(&e, 1000, 12.0); /* one decay period later: most of the way down */
	assert_true(e.ewma_us > 1000 && e.ewma_us < 2600);
}

static void test_least_conn(void **state)
{
	uint32_t w[3] = { 1, 1, 2 };
	struct bal b;

	assert_int_equal(bal_setup_mode(&b, 3, w, BAL_LEAST_CONN), 0);
	fx_eps[0].active = 3;
	fx_eps[1].active = 1;
	fx_eps[2].active = 4; /* 4/2 = 2 */
	assert_int_equal(bal_pick(&b, 0), 1);
	assert_int_equal(bal_pick(&b, 0x2), 2);
	assert_int_equal(bal_pick(&b, 0x6), 0);
	assert_int_equal(bal_pick(&b, 0x7), -ENOENT);
	bal_free(&b);
}

/* 0, 1 and 2 endpoints in every mode. */
static void test_small_sets(void **state)
{
	enum bal_mode modes[] = { BAL_EWMA, BAL_ROUND_ROBIN, BAL_LEAST_CONN };
	size_t m;

	for (m = 0; m < 3; m++) {
		struct bal b;

		assert_int_equal(bal_setup_mode(&b, 0, NULL, modes[m]), 0);
		assert_int_equal(bal_pick(&b, 0), -ENOENT);
		bal_free(&b);
		assert_int_equal(bal_setup_mode(&b, 1, NULL, modes[m]), 0);
		assert_int_equal(bal_pick(&b, 0), 0);
		assert_int_equal(bal_pick(&b, 1), -ENOENT);
		bal_free(&b);
		assert_int_equal(bal_setup_mode(&b, 2, NULL, modes[m]), 0);
		assert_int_equal(bal_pick(&b, 1), 1);
		assert_int_equal(bal_pick(&b, 2), 0);
		assert_int_equal(bal_pick(&b, 3), -ENOENT);
		bal_free(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rr_equal),
		cmocka_unit_test(test_rr_weighted),
		cmocka_unit_test(test_rr_smooth),
		cmocka_unit_test(test_rr_excluded),
		cmocka_unit_test(test_p2c_prefers_fast),
		cmocka_unit_test(test_p2c_load_counts),
		cmocka_unit_test(test_peak_ewma),
		cmocka_unit_test(test_least_conn),
		cmocka_unit_test(test_small_sets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
