// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/deadline.c: for each header a table of valid values with the
 * exact nanoseconds, then a separate table of values that must be refused
 * (with why), the overflow edges, the formatters' exact output, and round
 * trips formatter -> parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "codec/deadline.h"

typedef int (*parse_fn)(const char *value, size_t len, int64_t *out_ns);

struct good {
	const char *in;
	int64_t ns;
};

struct bad {
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *why;
};

static void check_good(const char *what, parse_fn fn, const struct good *g, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int64_t v = -42;
		int rc = fn(g[i].in, strlen(g[i].in), &v);

		if (rc != 0 || v != g[i].ns)
			fail_msg("%s '%s': rc %d, %lld ns; expected %lld ns", what, g[i].in, rc, (long long)v,
				 (long long)g[i].ns);
	}
}

static void check_bad(const char *what, parse_fn fn, const struct bad *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int64_t v = -42;
		size_t len = b[i].len ? b[i].len : strlen(b[i].in);
		int rc = fn(b[i].in, len, &v);

		if (rc != -EINVAL || v != -42)
			fail_msg("%s '%.*s' (%s): rc %d, out %lld; expected -EINVAL and out untouched", what, (int)len,
				 b[i].in, b[i].why, rc, (long long)v);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)

/* --- weft-deadline ---------------------------------------------------------------- */

static void test_weft_parse(void **state)
{
	static const struct good good[] = {
		{ "0", 0 },
		{ "1", MS },
		{ "1795786800123", INT64_C(1795786800123) * MS },
		{ "0000000000000000001", MS },                    /* 19 digits, leading zeros */
		{ "9223372036854", INT64_C(9223372036854) * MS }, /* the largest that fits int64 ns */
	};
	static const struct bad bad[] = {
		{ "", 0, "empty" },
		{ "-1", 0, "sign" },
		{ "+1", 0, "sign" },
		{ " 1", 0, "leading space" },
		{ "1 ", 0, "trailing space" },
		{ "1.5", 0, "fraction" },
		{ "12a", 0, "letter" },
		{ "0x10", 0, "hex" },
		{ "1e3", 0, "exponent" },
		{ "9223372036855", 0, "ms * 1e6 overflows int64" },
		{ "9999999999999999999", 0, "19 digits, overflows int64 ns" },
		{ "00000000000000000001", 0, "20 digits" },
		{ "99999999999999999999", 0, "20 digits, overflows uint64" },
		{ "1\0"
		  "2",
		  3, "NUL inside" },
	};
	int64_t v;

	check_good("weft-deadline", deadline_parse_weft, good, N(good));
	check_bad("weft-deadline", deadline_parse_weft, bad, N(bad));
	/* only value[0..len) is read */
	assert_int_equal(deadline_parse_weft("123456", 3, &v), 0);
	assert_int_equal(v, 123 * MS);
	assert_int_equal(deadline_parse_weft(NULL, 0, &v), -EINVAL);
}

/* --- grpc-timeout ----------------------------------------------------------------- */

static void test_grpc_parse(void **state)
{
	static const struct good good[] = {
		{ "0n", 0 },
		{ "1n", 1 },
		{ "99999999n", 99999999 },
		{ "1u", 1000 },
		{ "250m", 250 * MS },
		{ "1S", SEC },
		{ "30S", 30 * SEC },
		{ "1M", 60 * SEC },
		{ "99999999M", INT64_C(99999999) * 60 * SEC },
		{ "1H", 3600 * SEC },
		{ "00000001S", SEC },
		{ "2562047H", INT64_C(2562047) * 3600 * SEC }, /* the most hours int64 ns holds */
		{ "99999999S", INT64_C(99999999) * SEC },
	};
	static const struct bad bad[] = {
		{ "", 0, "empty" },
		{ "n", 0, "no digits" },
		{ "1", 0, "no unit" },
		{ "123456789n", 0, "9 digits" },
		{ "1s", 0, "lower-case s is not a unit" },
		{ "1h", 0, "lower-case h" },
		{ "1x", 0, "unknown unit" },
		{ "1 S", 0, "space inside" },
		{ " 1S", 0, "leading space" },
		{ "1S ", 0, "trailing space" },
		{ "-1S", 0, "sign" },
		{ "+1S", 0, "sign" },
		{ "1SS", 0, "two units" },
		{ "S1", 0, "unit first" },
		{ "1.5S", 0, "fraction" },
		{ "2562048H", 0, "overflows int64 ns" },
		{ "99999999H", 0, "overflows int64 ns" },
		{ "1\0", 2, "NUL as unit" },
	};
	int64_t v;

	check_good("grpc-timeout", deadline_parse_grpc_timeout, good, N(good));
	check_bad("grpc-timeout", deadline_parse_grpc_timeout, bad, N(bad));
	assert_int_equal(deadline_parse_grpc_timeout("5mS", 2, &v), 0);
	assert_int_equal(v, 5 * MS);
	assert_int_equal(deadline_parse_grpc_timeout(NULL, 0, &v), -EINVAL);
}

/* --- l5d-ctx-deadline ------------------------------------------------------------- */

static void test_l5d_parse(void **state)
{
	static const struct good good[] = {
		{ "AAAAAAAAAAEAAAAAAAAAAg==", 2 },                            /* timestamp 1, deadline 2 */
		{ "GOvqlIJV4AAY6+qUkTySgA==", INT64_C(1795786800250000000) }, /* '+' in the alphabet */
		{ "//////////9//////////w==", INT64_MAX },                    /* timestamp -1 is not checked */
		{ "AAAAAAAAAAAAAAAAAAAAAA==", 0 },
	};
	static const struct bad bad[] = {
		{ "", 0, "empty" },
		{ "AAAAAAAAAAEAAAAAAAAAAg=", 0, "23 characters" },
		{ "AAAAAAAAAAEAAAAAAAAAAg===", 0, "25 characters" },
		{ "AAAAAAAAAAEAAAAAAAAAAg", 0, "no padding" },
		{ "AAAAAAAAAAEAAAAAAAAAAgAA", 0, "data where padding goes" },
		{ "AAAAAAAAAAEAAAAAAAAAA==A", 0, "padding inside" },
		{ "AAAAAAAAAAEAAAAAAAAAAh==", 0, "non-zero bits after the 16th byte" },
		{ "AAAAAAAAAAEAAAAAAAAAAj==", 0, "non-zero bits after the 16th byte" },
		{ "AAAAAAAAAAAAAAAAAAAAAB==", 0, "non-zero bits after the 16th byte" },
		{ "AAAAAAAAAAD//////////w==", 0, "negative deadline" },
		{ "AAAAAAAAAACAAAAAAAAAAA==", 0, "negative deadline (top bit only)" },
		{ "AAAAAAAAAAE-AAAAAAAAAg==", 0, "url-safe alphabet '-'" },
		{ "AAAAAAAAAAE_AAAAAAAAAg==", 0, "url-safe alphabet '_'" },
		{ "AAAAAAAAAAE AAAAAAAAAg==", 0, "space" },
		{ "AAAAAAAAAAE\0AAAAAAAAAg==", 24, "NUL" },
		{ "AAAAAAAAAAEAAAAAAAAAAg==", 22, "cut before the padding" },
	};

	check_good("l5d-ctx-deadline", deadline_parse_l5d, good, N(good));
	check_bad("l5d-ctx-deadline", deadline_parse_l5d, bad, N(bad));
}

/* --- writers ----------------------------------------------------------------------- */

static void test_format_weft(void **state)
{
	static const struct {
		int64_t ns;
		const char *want;
	} cases[] = {
		{ 0, "0" },
		{ 999999, "0" }, /* rounded down */
		{ MS, "1" },
		{ 1999999, "1" },
		{ INT64_C(1795786800123456789), "1795786800123" },
		{ INT64_MAX, "9223372036854" },
		{ -1, "0" }, /* before 1970: expired, and the grammar has no sign */
		{ INT64_MIN, "0" },
	};
	char out[DEADLINE_VALUE_MAX];
	size_t i;
	int64_t v;
	int n;

	for (i = 0; i < N(cases); i++) {
		n = deadline_format_weft(out, sizeof(out), cases[i].ns);
		assert_int_equal(n, strlen(cases[i].want));
		assert_string_equal(out, cases[i].want);
		/* round trip: what we write, we read, to the millisecond */
		assert_int_equal(deadline_parse_weft(out, (size_t)n, &v), 0);
		assert_true(v == (cases[i].ns > 0 ? cases[i].ns / MS * MS : 0));
		/* exactly enough room, then one byte short */
		assert_int_equal(deadline_format_weft(out, (size_t)n + 1, cases[i].ns), n);
		memset(out, 'x', sizeof(out));
		assert_int_equal(deadline_format_weft(out, (size_t)n, cases[i].ns), -ENOSPC);
		assert_int_equal(out[0], 'x');
	}
	assert_int_equal(deadline_format_weft(out, 0, 0), -ENOSPC);
}

static void test_format_grpc(void **state)
{
	static const struct {
		int64_t ns;
		const char *want;
	} cases[] = {
		{ 0, "0n" },
		{ -5, "0n" }, /* already late: zero, not a sign */
		{ INT64_MIN, "0n" },
		{ 1, "1n" },
		{ 99999999, "99999999n" },
		{ 100000000, "100000u" }, /* 9 digits of ns: the next unit */
		{ 250 * MS, "250000u" },
		{ 1999999999, "1999999u" },
		{ INT64_C(99999999999), "99999999u" },
		{ INT64_C(100000000000), "100000m" },
		{ INT64_C(100000000999), "100000m" }, /* rounded down, never up */
		{ INT64_C(99999999999999), "99999999m" },
		{ INT64_C(100000000000000), "100000S" },
		{ INT64_C(99999999) * SEC + SEC - 1, "99999999S" },
		{ INT64_C(100000000) * SEC, "1666666M" },
		{ INT64_C(99999999) * 60 * SEC, "99999999M" },
		{ INT64_C(100000000) * 60 * SEC, "1666666H" },
		{ INT64_MAX, "2562047H" },
	};
	char out[DEADLINE_VALUE_MAX];
	size_t i;
	int n;

	for (i = 0; i < N(cases); i++) {
		n = deadline_format_grpc_timeout(out, sizeof(out), cases[i].ns);
		if (n != (int)strlen(cases[i].want) || strcmp(out, cases[i].want) != 0)
			fail_msg("%lld ns: '%s' (%d), expected '%s'", (long long)cases[i].ns, out, n, cases[i].want);
		memset(out, 'x', sizeof(out));
		assert_int_equal(deadline_format_grpc_timeout(out, (size_t)n, cases[i].ns), -ENOSPC);
		assert_int_equal(out[0], 'x');
		assert_int_equal(deadline_format_grpc_timeout(out, (size_t)n + 1, cases[i].ns), n);
	}
}

/* The unit's size in ns, from the formatted value's last character. */
static int64_t grpc_unit_ns(char u)
{
	switch (u) {
	case 'n':
		return 1;
	case 'u':
		return 1000;
	case 'm':
		return MS;
	case 'S':
		return SEC;
	case 'M':
		return 60 * SEC;
	case 'H':
		return 3600 * SEC;
	}
	fail_msg("unit '%c'", u);
	return 0;
}

/* Every value formats to <= 8 digits and reads back rounded down by less than one unit. */
static void test_grpc_roundtrip(void **state)
{
	uint64_t x = 0x2545f4914f6cdd1dULL;
	int64_t v, back;
	char out[DEADLINE_VALUE_MAX];
	int k, n, shift;

	for (k = 0; k < 200000; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		shift = k % 64; /* spread over every magnitude */
		v = (int64_t)(x >> shift >> 1);
		n = deadline_format_grpc_timeout(out, sizeof(out), v);
		assert_true(n >= 2 && n <= 9);
		assert_int_equal(deadline_parse_grpc_timeout(out, (size_t)n, &back), 0);
		if (back > v || v - back >= grpc_unit_ns(out[n - 1]))
			fail_msg("%lld ns -> '%s' -> %lld ns", (long long)v, out, (long long)back);
		/* and the unit is the finest that fits: one finer would need 9 digits */
		if (out[n - 1] != 'n') {
			int64_t finer = out[n - 1] == 'H'   ? 60 * SEC
					: out[n - 1] == 'M' ? SEC
							    : grpc_unit_ns(out[n - 1]) / 1000;

			assert_true(v / finer > 99999999);
		}
	}
}

static void test_format_l5d(void **state)
{
	static const struct {
		int64_t now, dl;
		const char *want;
	} cases[] = {
		{ 1, 2, "AAAAAAAAAAEAAAAAAAAAAg==" },
		{ INT64_C(1795786800000000000), INT64_C(1795786800250000000), "GOvqlIJV4AAY6+qUkTySgA==" },
		{ -1, INT64_MAX, "//////////9//////////w==" },
		{ 0, 0, "AAAAAAAAAAAAAAAAAAAAAA==" },
	};
	char out[DEADLINE_VALUE_MAX];
	uint64_t x = 88172645463325252ULL;
	int64_t v;
	size_t i;
	int k;

	for (i = 0; i < N(cases); i++) {
		assert_int_equal(deadline_format_l5d(out, sizeof(out), cases[i].now, cases[i].dl), 24);
		assert_string_equal(out, cases[i].want);
		assert_int_equal(deadline_parse_l5d(out, 24, &v), 0);
		assert_true(v == cases[i].dl);
	}
	memset(out, 'x', sizeof(out));
	assert_int_equal(deadline_format_l5d(out, 24, 1, 2), -ENOSPC);
	assert_int_equal(out[0], 'x');
	assert_int_equal(deadline_format_l5d(out, 25, 1, 2), 24);
	/* round trip over many values, any timestamp, any non-negative deadline */
	for (k = 0; k < 100000; k++) {
		int64_t now, dl;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		now = (int64_t)x;
		dl = (int64_t)((x * 0x9e3779b97f4a7c15ULL) >> (k % 64) >> 1);
		assert_int_equal(deadline_format_l5d(out, sizeof(out), now, dl), 24);
		assert_int_equal(deadline_parse_l5d(out, 24, &v), 0);
		assert_true(v == dl);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weft_parse),  cmocka_unit_test(test_grpc_parse),
		cmocka_unit_test(test_l5d_parse),   cmocka_unit_test(test_format_weft),
		cmocka_unit_test(test_format_grpc), cmocka_unit_test(test_grpc_roundtrip),
		cmocka_unit_test(test_format_l5d),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
