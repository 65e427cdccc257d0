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

static int bal_setup(struct bal *b, size_t n, const uint32_t *w)
{
	size_t i;
	int r = bal_init(b, n);

	memset(fx_eps, 0, sizeof(fx_eps));
	for (i = 0; i < n; i++) {
		fx_eps[i].weight = w ? w[i] : 1;
		b->eps[i] = &fx_eps[i];
	}
	return r;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rr_equal),
		cmocka_unit_test(test_rr_weighted),
		cmocka_unit_test(test_rr_smooth),
		cmocka_unit_test(test_rr_excluded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
