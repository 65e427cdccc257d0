// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* state/membudget: shares, the full budget, pressure, release, trim. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "state/membudget.h"

#define KB 1024u

static void test_share_and_release(void **state)
{
	struct membudget mb;
	struct mb_acct a, b;

	(void)state;
	assert_int_equal(mb_init(&mb, 1000 * KB, 25), 0); /* share: 250 KB */
	mb_acct_init(&a, &mb, 7);
	mb_acct_init(&b, &mb, 7); /* same workload, another session */
	assert_int_equal(mb_charge(&a, 200 * KB), MB_OK);
	assert_int_equal(mb_charge(&b, 40 * KB), MB_OK);
	/* the workload holds 240 KB: 20 more would pass its share */
	assert_int_equal(mb_charge(&b, 20 * KB), MB_SHARE);
	assert_int_equal(b.held, 40 * KB); /* a refused charge holds nothing */
	assert_int_equal(atomic_load(&mb.used), 240 * KB);
	assert_int_equal(atomic_load(&mb.refused[MB_SHARE]), 1);
	mb_release(&a, 100 * KB);
	assert_int_equal(mb_charge(&b, 20 * KB), MB_OK);
	assert_int_equal(atomic_load(&mb.active), 1);
	mb_acct_close(&a);
	mb_acct_close(&b);
	assert_int_equal(atomic_load(&mb.used), 0);
	assert_int_equal(atomic_load(&mb.active), 0);
	assert_int_equal(mb.n, 0); /* the workload's entry is gone with its last session */
	mb_destroy(&mb);
}

static void test_full_and_pressure(void **state)
{
	struct membudget mb;
	struct mb_acct w[5];
	size_t i;

	(void)state;
	assert_int_equal(mb_init(&mb, 800 * KB, 40), 0); /* share 320 KB; pressure above 700 KB */
	for (i = 0; i < 5; i++)
		mb_acct_init(&w[i], &mb, 100 + i);
	assert_int_equal(mb_charge(&w[0], 200 * KB), MB_OK);
	assert_int_equal(mb_charge(&w[1], 200 * KB), MB_OK);
	assert_int_equal(mb_charge(&w[2], 250 * KB), MB_OK); /* 650 KB */
	/* past seven-eighths, a workload at or above the average is refused (under its share) */
	assert_int_equal(mb_charge(&w[2], 60 * KB), MB_PRESSURE);
	/* while a small one still grows */
	assert_int_equal(mb_charge(&w[3], 55 * KB), MB_OK); /* 705 KB */
	/* and nobody passes the budget itself */
	assert_int_equal(mb_charge(&w[4], 100 * KB), MB_FULL);
	assert_int_equal(atomic_load(&mb.used), 705 * KB);
	assert_int_equal(atomic_load(&mb.refused[MB_FULL]), 1);
	assert_int_equal(atomic_load(&mb.refused[MB_PRESSURE]), 1);
	for (i = 0; i < 5; i++)
		mb_acct_close(&w[i]);
	assert_int_equal(atomic_load(&mb.used), 0);
	mb_destroy(&mb);
}

static void test_trim_and_configure(void **state)
{
	struct membudget mb;
	struct mb_acct a;

	(void)state;
	assert_int_equal(mb_init(&mb, 64u << 20, 100), 0);
	mb_acct_init(&a, &mb, 1);
	assert_int_equal(mb_charge(&a, 20u << 20), MB_OK);
	assert_false(mb_trim_due(&mb, 8u << 20)); /* nothing given back yet */
	mb_release(&a, 16u << 20);
	assert_true(mb_trim_due(&mb, 8u << 20));  /* 16 MiB back since the peak */
	assert_false(mb_trim_due(&mb, 8u << 20)); /* once per spike */
	assert_int_equal(atomic_load(&mb.trims), 1);
	/* a smaller budget applies to new charges; what is held stays */
	mb_configure(&mb, 2u << 20, 100);
	assert_int_equal(mb_charge(&a, 1), MB_SHARE);
	mb_acct_close(&a);
	/* an account without a budget is free */
	mb_acct_init(&a, NULL, 1);
	assert_int_equal(mb_charge(&a, 1u << 30), MB_OK);
	mb_acct_close(&a);
	mb_destroy(&mb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_share_and_release),
		cmocka_unit_test(test_full_and_pressure),
		cmocka_unit_test(test_trim_and_configure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
