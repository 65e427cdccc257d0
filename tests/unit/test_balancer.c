// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
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

/* ---- ewma: P2C over a latency average, on a fake clock ---- */

/*
 * A closed-loop run: `clients` clients each pick an endpoint, hold it (its
 * active count) for the endpoint's latency, report that latency, and pick
 * again at once. Endpoint i answers in lat[i] usec, +-10% (a deterministic
 * jitter: equal endpoints are never exactly equal), and in lat2[i] from
 * t_switch on when that is set. Runs from t = 1 s for dur seconds; counts the
 * picks made from `from` seconds into the run, in all (counts) and per
 * second of the run (per_sec[second][endpoint], when not NULL).
 */
#define SIM_MAX_EPS 4
#define SIM_MAX_SECS 100

struct sim {
	size_t n;
	uint32_t w[SIM_MAX_EPS];
	double lat[SIM_MAX_EPS];
	double lat2[SIM_MAX_EPS];
	double t_switch; /* seconds into the run; 0: never */
	int clients;
	double dur, from;
};

static void sim_run(const struct sim *s, long *counts, long (*per_sec)[SIM_MAX_EPS])
{
	struct bal b;
	double done[16], took[16], t = 1.0;
	uint64_t lcg = 12345;
	int ep[16], c, k;

	assert_true(s->clients >= 1 && s->clients <= 16 && s->n <= SIM_MAX_EPS);
	assert_int_equal(bal_setup_mode(&b, s->n, s->w, BAL_EWMA), 0);
	for (c = 0; c < s->clients; c++)
		done[c] = -1; /* start: every client picks at t */
	for (;;) {
		c = 0;
		for (k = 1; k < s->clients; k++)
			if (done[k] < done[c])
				c = k;
		if (done[c] >= 0) {
			t = done[c];
			bal_observe(&fx_eps[ep[c]], took[c], t);
			fx_eps[ep[c]].active--;
		}
		if (t >= 1.0 + s->dur)
			break;
		ep[c] = bal_pick(&b, 0, t);
		assert_true(ep[c] >= 0 && (size_t)ep[c] < s->n);
		fx_eps[ep[c]].active++;
		took[c] = s->t_switch > 0 && t - 1.0 >= s->t_switch && s->lat2[ep[c]] > 0 ? s->lat2[ep[c]]
											  : s->lat[ep[c]];
		lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
		took[c] *= 0.9 + 0.2 * (double)(lcg >> 11) / (double)(1ull << 53);
		done[c] = t + took[c] / 1e6;
		if (t - 1.0 >= s->from)
			counts[ep[c]]++;
		if (per_sec && t - 1.0 < SIM_MAX_SECS)
			per_sec[(int)(t - 1.0)][ep[c]]++;
	}
	bal_free(&b);
}

static double share(const long *counts, size_t n, size_t i)
{
	long total = 0;
	size_t k;

	for (k = 0; k < n; k++)
		total += counts[k];
	return total ? (double)counts[i] / (double)total : 0;
}

/*
 * A far slower endpoint is starved: it loses every pair it is drawn into, and
 * its share after the first 10 s is its latency probes (one per 10 s once
 * the back-off has grown). The target is under 5%; it is under 0.1% (the old
 * rule, draws with replacement and a soft choice, gave it 11.4%).
 */
static const struct {
	struct sim s;
	size_t slow;
	double max_share;
} slow_cases[] = {
	/* two at 1 ms, one at 50 ms; sequential, and 8 in flight */
	{ { 3, { 1, 1, 1 }, { 1000, 1000, 50000 }, { 0 }, 0, 1, 40, 10 }, 2, 0.001 },
	{ { 3, { 1, 1, 1 }, { 1000, 1000, 50000 }, { 0 }, 0, 8, 40, 10 }, 2, 0.001 },
	/* its weight does not buy it traffic */
	{ { 3, { 1, 1, 3 }, { 1000, 1000, 50000 }, { 0 }, 0, 8, 40, 10 }, 2, 0.001 },
	/* 300 ms against 1 ms (the case), 8 in flight */
	{ { 3, { 1, 1, 1 }, { 1000, 1000, 300000 }, { 0 }, 0, 8, 40, 10 }, 2, 0.001 },
	/* four endpoints, the slow one first */
	{ { 4, { 1, 1, 1, 1 }, { 50000, 1000, 1000, 1000 }, { 0 }, 0, 8, 40, 10 }, 0, 0.001 },
	/*
	 * Only 5x slower, one at a time: starved as well (past BAL_COST_TIE).
	 * With 8 in flight the fast ones cost up to 5 ms with their load, and
	 * it takes some (4.9%) when both are busy: load counts as it should.
	 */
	{ { 3, { 1, 1, 1 }, { 1000, 1000, 5000 }, { 0 }, 0, 1, 40, 10 }, 2, 0.001 },
	{ { 3, { 1, 1, 1 }, { 1000, 1000, 5000 }, { 0 }, 0, 8, 40, 10 }, 2, 0.08 },
};

static void test_p2c_slow_starved(void **state)
{
	size_t c, i;

	for (c = 0; c < sizeof(slow_cases) / sizeof(slow_cases[0]); c++) {
		const struct sim *s = &slow_cases[c].s;
		long counts[SIM_MAX_EPS] = { 0 };
		double ref = -1, sh;

		sim_run(s, counts, NULL);
		sh = share(counts, s->n, slow_cases[c].slow);
		print_message("slow case %zu: slow endpoint %.4f%% of %ld picks\n", c, 100 * sh,
			      counts[0] + counts[1] + counts[2] + counts[3]);
		assert_true(sh < slow_cases[c].max_share);
		/* the others (equal weights among them) split the rest evenly */
		for (i = 0; i < s->n; i++) {
			if (i == slow_cases[c].slow)
				continue;
			if (ref < 0)
				ref = share(counts, s->n, i);
			assert_true(fabs(share(counts, s->n, i) - ref) < 0.1 * ref);
		}
	}
}

/*
 * Equal endpoints (1 ms +-10%) get their weight share within 10%, one at a
 * time or many in flight (3:1 comes out between 73:27 and 77:23 from 1 to 16
 * in flight; the old soft rule gave 69:31 to 73:27 from 2 in flight up).
 */
static const struct sim weight_cases[] = {
	{ 3, { 1, 1, 1 }, { 1000, 1000, 1000 }, { 0 }, 0, 1, 10, 1 },
	{ 3, { 1, 1, 1 }, { 1000, 1000, 1000 }, { 0 }, 0, 2, 10, 1 },
	{ 3, { 1, 1, 1 }, { 1000, 1000, 1000 }, { 0 }, 0, 4, 10, 1 },
	{ 3, { 1, 1, 1 }, { 1000, 1000, 1000 }, { 0 }, 0, 8, 10, 1 },
	{ 2, { 3, 1 }, { 1000, 1000 }, { 0 }, 0, 1, 10, 1 },
	{ 2, { 3, 1 }, { 1000, 1000 }, { 0 }, 0, 2, 10, 1 },
	{ 2, { 3, 1 }, { 1000, 1000 }, { 0 }, 0, 3, 10, 1 },
	{ 2, { 3, 1 }, { 1000, 1000 }, { 0 }, 0, 4, 10, 1 },
	{ 2, { 3, 1 }, { 1000, 1000 }, { 0 }, 0, 8, 10, 1 },
	{ 2, { 3, 1 }, { 1000, 1000 }, { 0 }, 0, 16, 10, 1 },
	{ 3, { 5, 1, 1 }, { 1000, 1000, 1000 }, { 0 }, 0, 1, 10, 1 },
	{ 3, { 5, 1, 1 }, { 1000, 1000, 1000 }, { 0 }, 0, 8, 10, 1 },
	/* under the floor: load alone decides, weights still hold */
	{ 2, { 3, 1 }, { 200, 200 }, { 0 }, 0, 8, 10, 1 },
	/* 50% apart (inside BAL_COST_TIE), one at a time: the weights are what counts */
	{ 2, { 3, 1 }, { 1000, 1500 }, { 0 }, 0, 1, 10, 1 },
	{ 2, { 3, 1 }, { 1500, 1000 }, { 0 }, 0, 1, 10, 1 },
};

static void test_p2c_weights(void **state)
{
	size_t c, i;

	for (c = 0; c < sizeof(weight_cases) / sizeof(weight_cases[0]); c++) {
		const struct sim *s = &weight_cases[c];
		long counts[SIM_MAX_EPS] = { 0 };
		uint32_t total = 0;
		double want;

		sim_run(s, counts, NULL);
		for (i = 0; i < s->n; i++)
			total += s->w[i];
		for (i = 0; i < s->n; i++) {
			want = (double)s->w[i] / total;
			print_message("weights case %zu: endpoint %zu %.2f%% (weight share %.2f%%)\n", c, i,
				      100 * share(counts, s->n, i), 100 * want);
			assert_true(fabs(share(counts, s->n, i) - want) <= 0.1 * want);
		}
	}
}

/*
 * A slow endpoint that recovers (50 ms -> 1 ms) gets its traffic back within
 * the decay window: it is probed at least every BAL_EWMA_DECAY_S, and the
 * probe's answer replaces its estimate. Recovery at 30 s, when its probe
 * back-off is at its longest; the first second in which it gets 20% of its
 * fair share or more must start within BAL_EWMA_DECAY_S.
 */
static const struct sim recover_cases[] = {
	{ 3, { 1, 1, 1 }, { 1000, 1000, 50000 }, { 0, 0, 1000 }, 30, 8, 45, 0 },
	{ 3, { 1, 1, 1 }, { 1000, 1000, 50000 }, { 0, 0, 1000 }, 30, 1, 45, 0 },
	{ 3, { 1, 1, 1 }, { 1000, 1000, 50000 }, { 0, 0, 1000 }, 23.3, 8, 45, 0 },
	{ 2, { 1, 3 }, { 1000, 50000 }, { 0, 1000 }, 30, 8, 45, 0 },
};

static void test_p2c_recovery(void **state)
{
	static long per_sec[SIM_MAX_SECS][SIM_MAX_EPS];
	size_t c, i, slow;
	int sec, back;

	for (c = 0; c < sizeof(recover_cases) / sizeof(recover_cases[0]); c++) {
		const struct sim *s = &recover_cases[c];
		long counts[SIM_MAX_EPS] = { 0 };
		uint32_t total = 0;
		double fair;

		slow = s->n - 1; /* the slow one is last */
		for (i = 0; i < s->n; i++)
			total += s->w[i];
		fair = (double)s->w[slow] / total;
		memset(per_sec, 0, sizeof(per_sec));
		sim_run(s, counts, per_sec);
		for (sec = 10; sec < (int)s->t_switch; sec++)
			assert_true(share(per_sec[sec], s->n, slow) < 0.01); /* starved before */
		back = -1;
		for (sec = (int)s->t_switch; sec < (int)s->dur && back < 0; sec++)
			if (share(per_sec[sec], s->n, slow) >= 0.2 * fair)
				back = sec;
		print_message("recovery case %zu: recovered at %.1f s; >= 20%% of its share in second %d; "
			      "%.2f%% in the last second (its share %.2f%%)\n",
			      c, s->t_switch, back, 100 * share(per_sec[(int)s->dur - 1], s->n, slow), 100 * fair);
		assert_true(back >= 0);
		assert_true(back + 1 - s->t_switch <= BAL_EWMA_DECAY_S);
		/* and then all of its share */
		assert_true(fabs(share(per_sec[(int)s->dur - 1], s->n, slow) - fair) <= 0.1 * fair);
	}
}

/*
 * Load counts per unit of weight; of latency-equal endpoints one clearly
 * more loaded (past BAL_COST_TIE: more than twice the cost) loses every pair;
 * closer loads are a tie, decided by the weighted draw. Both known at 1 ms.
 */
static const struct {
	uint32_t w[2];
	uint32_t active[2];
	int expect1; /* picks of endpoint 1 in 4000 */
	int slack;
} load_cases[] = {
	{ { 1, 1 }, { 9, 0 }, 4000, 0 },   /* 10x the cost */
	{ { 1, 1 }, { 2, 0 }, 4000, 0 },   /* 3x */
	{ { 1, 1 }, { 1, 0 }, 2000, 150 }, /* 2x is still a tie: by weight */
	{ { 1, 1 }, { 0, 0 }, 2000, 150 }, { { 1, 1 }, { 3, 2 }, 2000, 150 },
	{ { 3, 1 }, { 3, 1 }, 1000, 120 }, /* 3 in flight on weight 3 = 1 on weight 1 */
	{ { 3, 1 }, { 9, 1 }, 1000, 120 }, /* 4 vs 2: a tie */
	{ { 3, 1 }, { 12, 1 }, 4000, 0 },  /* 5 vs 2: past the band */
};

static void test_p2c_load_counts(void **state)
{
	size_t c;
	int i;

	for (c = 0; c < sizeof(load_cases) / sizeof(load_cases[0]); c++) {
		struct bal b;
		int counts[2] = { 0 };

		assert_int_equal(bal_setup_mode(&b, 2, load_cases[c].w, BAL_EWMA), 0);
		bal_observe(&fx_eps[0], 1000, 1.0);
		bal_observe(&fx_eps[1], 1000, 1.0);
		fx_eps[0].active = load_cases[c].active[0];
		fx_eps[1].active = load_cases[c].active[1];
		for (i = 0; i < 4000; i++)
			counts[bal_pick(&b, 0, 1.0)]++;
		assert_in_range(counts[1], load_cases[c].expect1 - load_cases[c].slack,
				load_cases[c].expect1 + load_cases[c].slack);
		bal_free(&b);
	}
}

/*
 * Failure cases: when there is no better choice, a slow endpoint is still
 * picked: the only candidate left (a retry that tried the others), the only
 * endpoint, or one of endpoints all as slow (then weights decide).
 */
static void test_p2c_no_better_choice(void **state)
{
	uint32_t w[3] = { 3, 1, 1 };
	int i, counts[3] = { 0 };
	struct bal b;

	assert_int_equal(bal_setup_mode(&b, 3, NULL, BAL_EWMA), 0);
	bal_observe(&fx_eps[0], 1000, 1.0);
	bal_observe(&fx_eps[1], 1000, 1.0);
	bal_observe(&fx_eps[2], 50000, 1.0);
	for (i = 0; i < 100; i++)
		assert_int_equal(bal_pick(&b, 0x3, 1.0), 2);
	assert_int_equal(bal_pick(&b, 0x7, 1.0), -ENOENT);
	bal_free(&b);

	assert_int_equal(bal_setup_mode(&b, 1, NULL, BAL_EWMA), 0);
	bal_observe(&fx_eps[0], 300000, 1.0);
	for (i = 0; i < 100; i++)
		assert_int_equal(bal_pick(&b, 0, 1.0), 0);
	bal_free(&b);

	assert_int_equal(bal_setup_mode(&b, 3, w, BAL_EWMA), 0);
	for (i = 0; i < 3; i++)
		bal_observe(&fx_eps[i], 50000, 1.0);
	for (i = 0; i < 5000; i++)
		counts[bal_pick(&b, 0, 1.0)]++;
	assert_in_range(counts[0], 2850, 3150);
	assert_in_range(counts[1], 880, 1120);
	bal_free(&b);
}

/*
 * A new endpoint (no sample) takes one request, not a burst, until it
 * answers; then it is judged on the answer. A probe that never answers holds
 * it off for BAL_EWMA_DECAY_S, then it is probed again.
 */
static void test_p2c_new_endpoint_probe(void **state)
{
	struct bal b;
	int i, got = 0;

	assert_int_equal(bal_setup_mode(&b, 3, NULL, BAL_EWMA), 0);
	bal_observe(&fx_eps[0], 1000, 1.0);
	bal_observe(&fx_eps[1], 1000, 1.0);
	fx_eps[0].active = fx_eps[1].active = 4; /* busy: the newcomer looks cheap */
	for (i = 0; i < 1000; i++)
		got += bal_pick(&b, 0, 1.01) == 2;
	assert_int_equal(got, 1);
	/* it answers fast: now it gets its share */
	bal_observe(&fx_eps[2], 1000, 1.02);
	fx_eps[0].active = fx_eps[1].active = 0;
	for (i = got = 0; i < 3000; i++)
		got += bal_pick(&b, 0, 1.02) == 2;
	assert_in_range(got, 800, 1200);
	bal_free(&b);

	/* a probe that never answers */
	assert_int_equal(bal_setup_mode(&b, 3, NULL, BAL_EWMA), 0);
	bal_observe(&fx_eps[0], 1000, 1.0);
	bal_observe(&fx_eps[1], 1000, 1.0);
	for (i = got = 0; i < 1000; i++)
		got += bal_pick(&b, 0, 1.0) == 2;
	assert_int_equal(got, 1);
	fx_eps[2].active = 1; /* still waiting */
	for (i = got = 0; i < 1000; i++) {
		bal_observe(&fx_eps[0], 1000, 1.0 + i * 0.005);
		bal_observe(&fx_eps[1], 1000, 1.0 + i * 0.005);
		got += bal_pick(&b, 0, 1.0 + i * 0.005) == 2;
	}
	assert_int_equal(got, 0); /* 5 s */
	for (i = got = 0; i < 1000; i++) {
		bal_observe(&fx_eps[0], 1000, 6.0 + i * 0.01);
		bal_observe(&fx_eps[1], 1000, 6.0 + i * 0.01);
		got += bal_pick(&b, 0, 6.0 + i * 0.01) == 2;
	}
	assert_int_equal(got, 1); /* once BAL_EWMA_DECAY_S has passed */
	bal_free(&b);
}

/*
 * Latency probes of an endpoint that stays slow back off: 0.25 s after its
 * answer, then 0.5, 1, 2, 4, 8 and at most BAL_EWMA_DECAY_S. The fast ones
 * answer each pick at once; the slow one after 50 ms.
 */
static void test_p2c_probe_backoff(void **state)
{
	static const double gaps[] = { 0.25, 0.5, 1, 2, 4, 8, 10, 10, 10 };
	double t, due = 0, probes[16];
	size_t np = 0, k;
	struct bal b;
	int p;

	assert_int_equal(bal_setup_mode(&b, 3, NULL, BAL_EWMA), 0);
	for (t = 1.0; t < 70 && np < 16; t += 0.001) {
		if (due > 0 && t >= due) {
			fx_eps[2].active--;
			bal_observe(&fx_eps[2], 50000, t);
			due = 0;
		}
		p = bal_pick(&b, 0, t);
		if (p == 2) {
			assert_true(due == 0); /* one probe at a time */
			probes[np++] = t;
			fx_eps[2].active++;
			due = t + 0.05;
		} else {
			bal_observe(&fx_eps[p], 1000, t);
		}
	}
	assert_true(np > sizeof(gaps) / sizeof(gaps[0]));
	for (k = 0; k + 1 < np; k++)
		print_message("probe %zu: %.3f s after the previous answer\n", k + 1,
			      probes[k + 1] - (probes[k] + 0.05));
	for (k = 0; k < sizeof(gaps) / sizeof(gaps[0]); k++) {
		/*
		 * each probe comes `gap` after the previous one's answer, at the
		 * first pick after it that draws the endpoint first (1 ms steps)
		 */
		double gap = probes[k + 1] - (probes[k] + 0.05);

		assert_true(gap >= gaps[k] - 0.001 && gap <= gaps[k] + 0.02);
	}
	bal_free(&b);
}

/* The average: what one sample does to it. */
static void test_ewma_update(void **state)
{
	struct bal_endpoint e = { .weight = 1 };
	double t = 1.0;
	int i;

	bal_observe(&e, 1000, t);
	assert_true(e.ewma_us == 1000); /* the first is taken whole */
	bal_observe(&e, 3000, t += 0.001);
	assert_true(fabs(e.ewma_us - 2000) < 1e-6); /* then an even average while there are few */
	bal_observe(&e, 5000, t += 0.001);
	assert_true(fabs(e.ewma_us - 3000) < 1e-6);
	for (i = 0; i < 1000; i++)
		bal_observe(&e, 1000, t += 0.001);
	assert_true(e.ewma_us < 1001);
	/* many samples in: a 20x outlier moves it by about a fifth (1%), not to the outlier */
	bal_observe(&e, 20000, t += 0.001);
	assert_true(e.ewma_us > 1180 && e.ewma_us < 1200);
	/* a 50x slower endpoint is past the tie band (2x) at its third answer */
	e.ewma_us = 1000;
	bal_observe(&e, 50000, t += 0.001);
	bal_observe(&e, 50000, t += 0.001);
	assert_true(e.ewma_us < BAL_COST_TIE * 1000);
	bal_observe(&e, 50000, t += 0.001);
	assert_true(e.ewma_us > BAL_COST_TIE * 1000);
	/* time counts too: a sample 0.2 s after the last weighs 1 - 0.99 e^(-0.02) */
	e.ewma_us = 1000;
	bal_observe(&e, 2000, t += 0.2);
	assert_true(fabs(e.ewma_us - (2000 - 1000 * 0.99 * exp(-0.02))) < 1e-6);
	/* an estimate not refreshed for BAL_LAT_PROBE_S is stale: the next sample replaces it */
	bal_observe(&e, 7000, t += BAL_LAT_PROBE_S);
	assert_true(e.ewma_us == 7000);
	assert_int_equal(e.lat_samples, 1);
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
		cmocka_unit_test(test_p2c_slow_starved),
		cmocka_unit_test(test_p2c_weights),
		cmocka_unit_test(test_p2c_recovery),
		cmocka_unit_test(test_p2c_load_counts),
		cmocka_unit_test(test_p2c_no_better_choice),
		cmocka_unit_test(test_p2c_new_endpoint_probe),
		cmocka_unit_test(test_p2c_probe_backoff),
		cmocka_unit_test(test_ewma_update),
		cmocka_unit_test(test_least_conn_weights),
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
