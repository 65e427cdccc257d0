// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/state/locality.c and its use by the balancer: tiers from
 * priorities and zones; Envoy's priority loads as a table (which tiers a
 * pick may use given how many endpoints are ready and the
 * overprovisioning); draws; the explanation /services shows; then the
 * balancer with tiers: shares of picks follow the loads as local endpoints
 * are ejected one by one and readmitted, retries move to the next tier, and
 * with nothing ready the panic mode still picks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/balancer.h"
#include "state/locality.h"

static void test_tiers(void **state)
{
	static const struct {
		const char *name;
		size_t n;
		uint32_t prio[10];
		bool local[10];
		size_t n_tiers;
		uint8_t tier[10];
	} cases[] = {
		{ "one priority, all local", 3, { 0, 0, 0 }, { 1, 1, 1 }, 2, { 0, 0, 0 } },
		{ "local and remote", 4, { 0, 0, 0, 0 }, { 1, 0, 1, 0 }, 2, { 0, 1, 0, 1 } },
		{ "priorities are ranked", 5, { 20, 0, 10, 20, 0 }, { 1, 1, 0, 0, 1 }, 6, { 4, 0, 3, 5, 0 } },
		{ "nine levels: the ninth shares the eighth",
		  10,
		  { 9, 8, 7, 6, 5, 4, 3, 2, 1, 1000 },
		  { 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 },
		  16,
		  { 14, 14, 12, 10, 8, 6, 4, 2, 0, 15 } },
	};
	struct loc_tier info[LOC_MAX_TIERS];
	uint8_t tier[10];
	size_t c, i, n;

	(void)state;
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		n = loc_tiers(cases[c].prio, cases[c].local, cases[c].n, tier, info);
		if (n != cases[c].n_tiers)
			fail_msg("%s: %zu tiers, expected %zu", cases[c].name, n, cases[c].n_tiers);
		for (i = 0; i < cases[c].n; i++)
			if (tier[i] != cases[c].tier[i])
				fail_msg("%s: endpoint %zu in tier %u, expected %u", cases[c].name, i, tier[i],
					 cases[c].tier[i]);
	}
	n = loc_tiers(cases[2].prio, cases[2].local, cases[2].n, tier, info);
	assert_int_equal(info[0].priority, 0);
	assert_true(info[0].local);
	assert_int_equal(info[3].priority, 10);
	assert_false(info[3].local);
	assert_int_equal(info[5].priority, 20);
}

/* Which tiers take traffic, given endpoints and ready ones per tier. */
static const struct load_case {
	const char *name;
	uint32_t overprov;
	size_t n_tiers;
	uint32_t total[4], ready[4];
	uint32_t load[4];
	bool panic;
} load_cases[] = {
	{ "all ready: all local", 140, 2, { 3, 3 }, { 3, 3 }, { 100, 0 }, false },
	{ "5 of 7 ready is still 100% (x1.4)", 140, 2, { 7, 3 }, { 5, 3 }, { 100, 0 }, false },
	{ "4 of 7: 80%, 20% spills", 140, 2, { 7, 3 }, { 4, 3 }, { 80, 20 }, false },
	{ "2 of 3: 93%", 140, 2, { 3, 3 }, { 2, 3 }, { 93, 7 }, false },
	{ "1 of 3: 46%", 140, 2, { 3, 3 }, { 1, 3 }, { 46, 54 }, false },
	{ "none local: all remote", 140, 2, { 3, 3 }, { 0, 3 }, { 0, 100 }, false },
	{ "no local endpoints at all", 140, 2, { 0, 3 }, { 0, 3 }, { 0, 100 }, false },
	{ "both degraded: shares of the healthy total", 140, 2, { 3, 3 }, { 1, 1 }, { 50, 50 }, false },
	{ "only a little healthy anywhere: it takes all", 140, 2, { 10, 5 }, { 1, 0 }, { 100, 0 }, false },
	{ "waterfall over three tiers", 140, 3, { 10, 10, 2 }, { 5, 2, 2 }, { 70, 28, 2 }, false },
	{ "overprovisioning 1.0: the ready share exactly", 100, 2, { 3, 3 }, { 2, 3 }, { 66, 34 }, false },
	{ "overprovisioning 2.0: half ready is enough", 200, 2, { 4, 4 }, { 2, 4 }, { 100, 0 }, false },
	{ "remote degraded, local fine", 140, 2, { 3, 3 }, { 3, 0 }, { 100, 0 }, false },
	{ "three degraded tiers: still a waterfall", 140, 3, { 3, 3, 3 }, { 1, 1, 1 }, { 46, 46, 8 }, false },
	{ "rounding goes to the best tier", 140, 2, { 3, 4 }, { 1, 1 }, { 57, 43 }, false },
	{ "nothing ready: panic", 140, 2, { 3, 3 }, { 0, 0 }, { 0, 0 }, true },
	{ "no endpoints: panic", 140, 2, { 0, 0 }, { 0, 0 }, { 0, 0 }, true },
};

static void test_loads(void **state)
{
	size_t c, i;

	(void)state;
	for (c = 0; c < sizeof(load_cases) / sizeof(load_cases[0]); c++) {
		const struct load_case *k = &load_cases[c];
		struct loc_plan p;
		uint32_t sum = 0;

		memset(&p, 0, sizeof(p));
		p.n_tiers = k->n_tiers;
		memcpy(p.total, k->total, sizeof(k->total));
		memcpy(p.ready, k->ready, sizeof(k->ready));
		loc_loads(&p, k->overprov);
		if (p.panic != k->panic)
			fail_msg("%s: panic %d, expected %d", k->name, p.panic, k->panic);
		for (i = 0; i < k->n_tiers; i++) {
			sum += p.load[i];
			if (p.load[i] != k->load[i])
				fail_msg("%s: tier %zu load %u%%, expected %u%%", k->name, i, p.load[i], k->load[i]);
		}
		assert_int_equal(sum, k->panic ? 0 : 100);
	}
}

static void test_plan_and_draw(void **state)
{
	const uint8_t tier[] = { 0, 0, 0, 1, 1, 1 };
	const bool ready[] = { 1, 0, 0, 1, 1, 1 };
	struct loc_plan p;
	uint32_t r, count[2] = { 0, 0 };

	(void)state;
	loc_plan(tier, ready, 6, 2, 140, &p);
	assert_int_equal(p.total[0], 3);
	assert_int_equal(p.ready[0], 1);
	assert_int_equal(p.health[0], 46);
	assert_int_equal(p.load[0], 46);
	assert_int_equal(p.load[1], 54);
	for (r = 0; r < 100; r++)
		count[loc_draw(&p, r)]++;
	assert_int_equal(count[0], 46);
	assert_int_equal(count[1], 54);
	assert_int_equal(loc_draw(&p, 1000), 0); /* out of range: the first with load */
	loc_plan(tier, (const bool[]){ 0, 0, 0, 0, 0, 0 }, 6, 2, 140, &p);
	assert_true(p.panic);
	assert_int_equal(loc_draw(&p, 5), -1);
}

static void test_explain(void **state)
{
	const struct loc_tier info[] = { { 0, true }, { 0, false }, { 1, true }, { 1, false } };
	char buf[512];
	struct loc_plan p = { .n_tiers = 4, .total = { 3, 3, 0, 2 }, .ready = { 3, 3, 0, 2 } };

	(void)state;
	loc_loads(&p, 140);
	assert_string_equal(loc_explain(&p, info, "a", 140, buf, sizeof(buf)),
			    "100% to zone a (local, priority 0): 3/3 ready");
	p.ready[0] = 1;
	loc_loads(&p, 140);
	assert_string_equal(loc_explain(&p, info, "a", 140, buf, sizeof(buf)),
			    "46% to zone a (local, priority 0): 1/3 ready x 1.40 = 46% healthy; "
			    "54% to other zones (priority 0): 3/3 ready");
	p.ready[0] = 0;
	p.ready[1] = 0;
	loc_loads(&p, 140);
	assert_string_equal(loc_explain(&p, info, "a", 140, buf, sizeof(buf)),
			    "0% to zone a (local, priority 0): 0/3 ready x 1.40 = 0% healthy; "
			    "0% to other zones (priority 0): 0/3 ready x 1.40 = 0% healthy; "
			    "100% to other zones (priority 1): 2/2 ready");
	assert_string_equal(loc_explain(&p, info, NULL, 140, buf, sizeof(buf)),
			    "0% to priority 0: 0/3 ready x 1.40 = 0% healthy; 0% to priority 0: 0/3 ready x 1.40 = 0% "
			    "healthy; 100% to priority 1: 2/2 ready");
	p.ready[3] = 0;
	loc_loads(&p, 140);
	assert_string_equal(loc_explain(&p, info, "a", 140, buf, sizeof(buf)),
			    "no endpoint is ready in any zone or priority: every endpoint is tried (panic)");
}

/* --- the balancer with tiers -------------------------------------------------- */

static struct bal_endpoint eps[6];

/* 3 local endpoints (0-2), 3 in another zone (3-5). */
static void setup6(struct bal *b, enum bal_mode mode)
{
	const uint32_t prio[6] = { 0 };
	const bool local[6] = { 1, 1, 1, 0, 0, 0 };
	struct loc_tier info[LOC_MAX_TIERS];
	uint8_t tier[6];
	size_t i, n;

	memset(eps, 0, sizeof(eps));
	assert_int_equal(bal_init(b, 6, mode, NULL), 0);
	for (i = 0; i < 6; i++) {
		eps[i].weight = 1;
		b->eps[i] = &eps[i];
	}
	n = loc_tiers(prio, local, 6, tier, info);
	assert_int_equal(n, 2);
	assert_int_equal(bal_set_tiers(b, tier, n, 140), 0);
}

static void eject(size_t i)
{
	eps[i].state = BAL_EJECTED;
	eps[i].ejected_until = 1e9; /* no probe during the test */
}

/* Share of picks that stayed local, in percent, over n picks. */
static double local_share(struct bal *b, int n)
{
	int i, local = 0, p;

	for (i = 0; i < n; i++) {
		p = bal_pick(b, 0, 1.0);
		assert_true(p >= 0 && p < 6);
		assert_int_equal(eps[p].state, BAL_READY);
		local += p < 3;
	}
	return 100.0 * local / n;
}

static void test_bal_spill_and_return(void **state)
{
	static const enum bal_mode modes[] = { BAL_EWMA, BAL_ROUND_ROBIN, BAL_LEAST_CONN };
	static const double want[] = { 100, 93, 46, 0 }; /* 0, 1, 2, 3 local endpoints ejected */
	size_t m, k;
	struct bal b;

	(void)state;
	for (m = 0; m < 3; m++) {
		setup6(&b, modes[m]);
		for (k = 0; k <= 3; k++) {
			double s;

			if (k)
				eject(k - 1);
			s = local_share(&b, 20000);
			if (s < want[k] - 1.5 || s > want[k] + 1.5)
				fail_msg("mode %d, %zu local ejected: %.1f%% local, expected %.0f%%", modes[m], k, s,
					 want[k]);
		}
		/* they come back one by one: traffic returns the same way */
		for (k = 3; k > 0; k--) {
			double s;

			eps[k - 1].state = BAL_READY;
			s = local_share(&b, 20000);
			if (s < want[k - 1] - 1.5 || s > want[k - 1] + 1.5)
				fail_msg("mode %d, readmitted to %zu ejected: %.1f%% local, expected %.0f%%", modes[m],
					 k - 1, s, want[k - 1]);
		}
		bal_free(&b);
	}
}

static void test_bal_retry_moves_on(void **state)
{
	struct bal b;
	int i, p;

	(void)state;
	setup6(&b, BAL_ROUND_ROBIN);
	/* every local endpoint tried already: the retry goes to the other zone */
	for (i = 0; i < 100; i++) {
		p = bal_pick(&b, 0x7, 1.0);
		assert_true(p >= 3 && p < 6);
	}
	/* a local one ejected, the two others tried: the other zone again */
	eject(0);
	for (i = 0; i < 100; i++) {
		p = bal_pick(&b, 0x6, 1.0);
		assert_true(p >= 3 && p < 6);
	}
	/* nothing ready anywhere: panic mode still picks (and counts) */
	eject(1);
	eject(2);
	eject(3);
	eject(4);
	eject(5);
	p = bal_pick(&b, 0, 1.0);
	assert_true(p >= 0 && p < 6);
	assert_int_equal(b.panics, 1);
	bal_free(&b);
}

/* Priorities without zones: priority 1 only takes what priority 0 cannot. */
static void test_bal_priorities(void **state)
{
	const uint32_t prio[4] = { 0, 0, 5, 5 };
	const bool local[4] = { 1, 1, 1, 1 };
	struct loc_tier info[LOC_MAX_TIERS];
	uint8_t tier[4];
	struct bal b;
	int i, p, hi = 0;

	(void)state;
	memset(eps, 0, sizeof(eps));
	assert_int_equal(bal_init(&b, 4, BAL_EWMA, NULL), 0);
	for (i = 0; i < 4; i++) {
		eps[i].weight = 1;
		b.eps[i] = &eps[i];
	}
	assert_int_equal(bal_set_tiers(&b, tier, loc_tiers(prio, local, 4, tier, info), 140), 0);
	assert_int_equal(b.n_tiers, 4); /* two levels, each with an (empty) remote tier */
	for (i = 0; i < 1000; i++)
		assert_true(bal_pick(&b, 0, 1.0) < 2);
	eject(0); /* 1/2 x 1.4 = 70% */
	for (i = 0; i < 10000; i++) {
		p = bal_pick(&b, 0, 1.0);
		assert_true(p != 0);
		hi += p >= 2;
	}
	assert_true(hi > 2800 && hi < 3200);
	bal_free(&b);
	/* one tier only: no tiers kept */
	assert_int_equal(bal_init(&b, 4, BAL_EWMA, NULL), 0);
	assert_int_equal(bal_set_tiers(&b, tier, 1, 140), 0);
	assert_null(b.tier);
	bal_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiers),
		cmocka_unit_test(test_loads),
		cmocka_unit_test(test_plan_and_draw),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_bal_spill_and_return),
		cmocka_unit_test(test_bal_retry_moves_on),
		cmocka_unit_test(test_bal_priorities),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
