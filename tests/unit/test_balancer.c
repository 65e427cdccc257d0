// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "state/balancer.h"

/* Test fixture: n endpoints with weights (NULL: all 1). */
static struct bal_endpoint fx_eps[8];

static int bal_setup_mode(struct bal *b, size_t n, const uint32_t *w, enum bal_mode mode)
{
	size_t i;
	int r = bal_init(b, n, mode, NULL);

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
		p = bal_pick(b, 0, 1.0);
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
		seq[i] = bal_pick(&b, 0, 1.0);
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
		p = bal_pick(&b, 0, 1.0);
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
	assert_int_equal(bal_pick(&b, 0x1 | 0x2, 1.0), 2);
	assert_int_equal(bal_pick(&b, 0x1 | 0x4, 1.0), 1);
	assert_int_equal(bal_pick(&b, 0x7, 1.0), -ENOENT);
	bal_free(&b);

	assert_int_equal(bal_setup(&b, 0, NULL), 0);
	assert_int_equal(bal_pick(&b, 0, 1.0), -ENOENT);
	bal_free(&b);
}

/* P2C over peak-EWMA: a slow endpoint gets clearly less traffic. */
static void test_p2c_prefers_fast(void **state)
{
	struct bal b;
	int counts[3] = { 0 };
	int i;

	assert_int_equal(bal_setup_mode(&b, 3, NULL, BAL_EWMA), 0);
	bal_observe(&fx_eps[0], 100, 1.0);
	bal_observe(&fx_eps[1], 100, 1.0);
	bal_observe(&fx_eps[2], 50000, 1.0); /* 50 ms: slow */
	for (i = 0; i < 9000; i++)
		counts[bal_pick(&b, 0, 1.0)]++;
	/* it wins when drawn twice (1/9) and 1% of mixed pairs: ~11.5% */
	assert_in_range(counts[2], 800, 1300);
	assert_in_range(counts[0], 3600, 4400);
	bal_free(&b);
}

static void test_p2c_load_counts(void **state)
{
	struct bal b;
	int counts[2] = { 0 };
	int i;

	assert_int_equal(bal_setup_mode(&b, 2, NULL, BAL_EWMA), 0);
	fx_eps[0].active = 9; /* same latency, 10x the cost: 1/4 + 1/2 * 1/11 = 29.5% */
	for (i = 0; i < 4000; i++)
		counts[bal_pick(&b, 0, 1.0)]++;
	assert_in_range(counts[1], 2650, 3000);
	bal_free(&b);
}

/* Equal endpoints: exactly proportional to weight (3:1 within a few %). */
static void test_p2c_weights(void **state)
{
	uint32_t w[2] = { 3, 1 };
	struct bal b;
	int counts[2] = { 0 };
	int i;

	assert_int_equal(bal_setup_mode(&b, 2, w, BAL_EWMA), 0);
	bal_observe(&fx_eps[0], 40, 1.0);
	bal_observe(&fx_eps[1], 60, 1.0); /* both under the floor: equal */
	for (i = 0; i < 8000; i++)
		counts[bal_pick(&b, 0, 1.0)]++;
	assert_in_range(counts[0], 5760, 6240);
	bal_free(&b);
}

/* A starved slow endpoint's estimate decays, so it is tried again. */
static void test_p2c_decay(void **state)
{
	struct bal b;
	int counts[2] = { 0 };
	int i;

	assert_int_equal(bal_setup_mode(&b, 2, NULL, BAL_EWMA), 0);
	bal_observe(&fx_eps[0], 100, 1.0);
	bal_observe(&fx_eps[1], 100000, 1.0);
	for (i = 0; i < 1000; i++)
		counts[bal_pick(&b, 0, 2.0)]++;
	assert_in_range(counts[1], 150, 350); /* mostly when drawn twice: ~25% */
	counts[0] = counts[1] = 0;
	for (i = 0; i < 1000; i++)
		counts[bal_pick(&b, 0, 100.0)]++; /* 100 s later: decayed below the floor */
	assert_in_range(counts[1], 400, 600);
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
	assert_int_equal(bal_pick(&b, 0, 1.0), 1);
	assert_int_equal(bal_pick(&b, 0x2, 1.0), 2);
	assert_int_equal(bal_pick(&b, 0x6, 1.0), 0);
	assert_int_equal(bal_pick(&b, 0x7, 1.0), -ENOENT);
	bal_free(&b);
}

/* idle sequential connections: ties everywhere, weights decide (3:1 exactly) */
static void test_least_conn_weights(void **state)
{
	uint32_t w[2] = { 3, 1 };
	struct bal b;
	int counts[2] = { 0 };

	assert_int_equal(bal_setup_mode(&b, 2, w, BAL_LEAST_CONN), 0);
	count_picks(&b, 400, counts);
	assert_int_equal(counts[0], 300);
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
		assert_int_equal(bal_pick(&b, 0, 1.0), -ENOENT);
		bal_free(&b);
		assert_int_equal(bal_setup_mode(&b, 1, NULL, modes[m]), 0);
		assert_int_equal(bal_pick(&b, 0, 1.0), 0);
		assert_int_equal(bal_pick(&b, 1, 1.0), -ENOENT);
		bal_free(&b);
		assert_int_equal(bal_setup_mode(&b, 2, NULL, modes[m]), 0);
		assert_int_equal(bal_pick(&b, 1, 1.0), 1);
		assert_int_equal(bal_pick(&b, 2, 1.0), 0);
		assert_int_equal(bal_pick(&b, 3, 1.0), -ENOENT);
		bal_free(&b);
	}
}

/* ---- failure accrual, with a fake clock ---- */

static const struct bal_breaker brk5 = {
	.consecutive_failures = 5,
	.base_ejection_s = 5,
	.max_ejection_s = 300,
	.max_ejection_percent = 50,
};

static int setup_brk(struct bal *b, size_t n, enum bal_mode mode, const struct bal_breaker *brk)
{
	size_t i;
	int r = bal_init(b, n, mode, brk);

	memset(fx_eps, 0, sizeof(fx_eps));
	for (i = 0; i < n; i++) {
		fx_eps[i].weight = 1;
		b->eps[i] = &fx_eps[i];
	}
	return r;
}

static void test_eject_after_n_failures(void **state)
{
	struct bal b;
	double t = 100;
	int i, p;

	assert_int_equal(setup_brk(&b, 3, BAL_ROUND_ROBIN, &brk5), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(bal_report(&b, 0, false, t), BAL_EV_NONE);
	/* a success in between resets the count */
	assert_int_equal(bal_report(&b, 0, true, t), BAL_EV_NONE);
	for (i = 0; i < 4; i++)
		assert_int_equal(bal_report(&b, 0, false, t), BAL_EV_NONE);
	assert_int_equal(bal_report(&b, 0, false, t), BAL_EV_EJECTED);
	assert_int_equal(fx_eps[0].state, BAL_EJECTED);
	assert_int_equal(fx_eps[0].ejections, 1);
	assert_int_equal(bal_ejected(&b), 1);
	/* jittered 5 s: between 3.75 and 6.25 */
	assert_true(fx_eps[0].ejected_until >= t + 3.75 && fx_eps[0].ejected_until < t + 6.25);
	/* while ejected it is never picked */
	for (i = 0; i < 100; i++) {
		p = bal_pick(&b, 0, t + 1);
		assert_true(p == 1 || p == 2);
	}
	bal_free(&b);
}

static void test_probe_readmits(void **state)
{
	struct bal b;
	double t = 100;
	int i;

	assert_int_equal(setup_brk(&b, 3, BAL_EWMA, &brk5), 0);
	for (i = 0; i < 5; i++)
		bal_report(&b, 2, false, t);
	assert_int_equal(fx_eps[2].state, BAL_EJECTED);
	/* after the back-off the very next pick is the probe, exactly one */
	assert_int_equal(bal_pick(&b, 0, t + 7), 2);
	assert_int_equal(fx_eps[2].state, BAL_PROBING);
	for (i = 0; i < 50; i++)
		assert_int_not_equal(bal_pick(&b, 0, t + 7), 2);
	assert_int_equal(bal_report(&b, 2, true, t + 7), BAL_EV_READMITTED);
	assert_int_equal(fx_eps[2].state, BAL_READY);
	assert_int_equal(fx_eps[2].backoff_level, 0);
	bal_free(&b);
}

static void test_failed_probe_doubles(void **state)
{
	struct bal b;
	double t = 100, d1, d2, d3;
	int i;

	assert_int_equal(setup_brk(&b, 2, BAL_ROUND_ROBIN, &brk5), 0);
	for (i = 0; i < 5; i++)
		bal_report(&b, 0, false, t);
	d1 = fx_eps[0].ejected_until - t;
	t = fx_eps[0].ejected_until;
	assert_int_equal(bal_pick(&b, 0, t), 0); /* probe */
	assert_int_equal(bal_report(&b, 0, false, t), BAL_EV_EJECTED);
	d2 = fx_eps[0].ejected_until - t;
	t = fx_eps[0].ejected_until;
	assert_int_equal(bal_pick(&b, 0, t), 0);
	bal_report(&b, 0, false, t);
	d3 = fx_eps[0].ejected_until - t;
	/* 5, 10, 20 s, each within +-25% */
	assert_true(d1 >= 3.75 && d1 < 6.25);
	assert_true(d2 >= 7.5 && d2 < 12.5);
	assert_true(d3 >= 15 && d3 < 25);
	assert_int_equal(fx_eps[0].ejections, 1); /* one ejection, extended */
	/* the cap: many failed probes never exceed max * 1.25 */
	for (i = 0; i < 20; i++) {
		t = fx_eps[0].ejected_until;
		assert_int_equal(bal_pick(&b, 0, t), 0);
		bal_report(&b, 0, false, t);
	}
	assert_true(fx_eps[0].ejected_until - t <= 300 * 1.25);
	bal_free(&b);
}

static void test_max_ejection_percent(void **state)
{
	struct bal b;
	double t = 100;
	int i, counts[3] = { 0 };

	assert_int_equal(setup_brk(&b, 3, BAL_ROUND_ROBIN, &brk5), 0);
	for (i = 0; i < 5; i++)
		bal_report(&b, 0, false, t);
	assert_int_equal(bal_ejected(&b), 1); /* 33% */
	for (i = 0; i < 4; i++)
		bal_report(&b, 1, false, t);
	/* a second one would be 66% > 50%: spared */
	assert_int_equal(bal_report(&b, 1, false, t), BAL_EV_SPARED);
	assert_int_equal(fx_eps[1].state, BAL_READY);
	assert_int_equal(bal_ejected(&b), 1);
	for (i = 0; i < 30; i++)
		counts[bal_pick(&b, 0, t + 1)]++;
	assert_int_equal(counts[0], 0);
	assert_int_equal(counts[1], 15);
	bal_free(&b);
}

static void test_panic_mode(void **state)
{
	/* 100% allowed: both ejected, yet picks still return endpoints */
	struct bal_breaker all = brk5;
	struct bal b;
	double t = 100;
	int i, p;

	all.max_ejection_percent = 100;
	assert_int_equal(setup_brk(&b, 2, BAL_EWMA, &all), 0);
	for (i = 0; i < 5; i++) {
		bal_report(&b, 0, false, t);
		bal_report(&b, 1, false, t);
	}
	assert_int_equal(bal_ejected(&b), 2);
	p = bal_pick(&b, 0, t + 1);
	assert_true(p == 0 || p == 1);
	assert_true(b.panics >= 1);
	assert_int_equal(bal_pick(&b, 0x3, t + 1), -ENOENT);
	/* a panic pick that succeeds readmits */
	assert_int_equal(bal_report(&b, (size_t)p, true, t + 1), BAL_EV_READMITTED);
	bal_free(&b);
}

static void test_no_breaker(void **state)
{
	struct bal b;
	int i;

	assert_int_equal(setup_brk(&b, 2, BAL_ROUND_ROBIN, NULL), 0);
	for (i = 0; i < 100; i++)
		assert_int_equal(bal_report(&b, 0, false, 1), BAL_EV_NONE);
	assert_int_equal(bal_ejected(&b), 0);
	/* out of range index is ignored */
	assert_int_equal(bal_report(&b, 7, false, 1), BAL_EV_NONE);
	bal_free(&b);
}

static void test_abandoned_probe(void **state)
{
	struct bal b;
	double t = 100;
	int i;

	assert_int_equal(setup_brk(&b, 2, BAL_ROUND_ROBIN, &brk5), 0);
	for (i = 0; i < 5; i++)
		bal_report(&b, 0, false, t);
	t = fx_eps[0].ejected_until;
	assert_int_equal(bal_pick(&b, 0, t), 0);
	/* the probe's result never arrives; after BAL_PROBE_TIMEOUT_S another probe goes */
	assert_int_equal(bal_pick(&b, 0, t + 1), 1);
	assert_int_equal(bal_pick(&b, 0, t + BAL_PROBE_TIMEOUT_S + 1), 0);
	bal_free(&b);
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
		cmocka_unit_test(test_p2c_weights),
		cmocka_unit_test(test_p2c_decay),
		cmocka_unit_test(test_least_conn_weights),
		cmocka_unit_test(test_peak_ewma),
		cmocka_unit_test(test_least_conn),
		cmocka_unit_test(test_small_sets),
		cmocka_unit_test(test_eject_after_n_failures),
		cmocka_unit_test(test_probe_readmits),
		cmocka_unit_test(test_failed_probe_doubles),
		cmocka_unit_test(test_max_ejection_percent),
		cmocka_unit_test(test_panic_mode),
		cmocka_unit_test(test_no_breaker),
		cmocka_unit_test(test_abandoned_probe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
