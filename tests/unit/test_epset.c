// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/disc/epset.c: DNS answers merged into endpoint sets. A table
 * of answers (plain names with A and AAAA, SRV records with their targets'
 * addresses) and the set each must give, in set order; then set order and
 * equality, the size limit, and the status bookkeeping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disc/epset.h"

static struct weft_sockaddr ip(const char *s)
{
	struct weft_sockaddr a;
	char buf[64], why[128];

	snprintf(buf, sizeof(buf), s[0] == '[' || !strchr(s, ':') ? "%s:1" : "[%s]:1", s);
	if (addr_parse(buf, false, &a, why, sizeof(why)))
		fail_msg("%s: %s", s, why);
	if (a.sa.sa_family == AF_INET)
		a.in4.sin_port = 0;
	else
		a.in6.sin6_port = 0;
	return a;
}

struct want {
	const char *addr;
	uint32_t weight, priority;
};

struct merge_case {
	const char *name;
	struct epset_rec recs[4];
	size_t n_recs;
	const char *names[4]; /* answers: names[i] has addrs[i] (a comma list) */
	const char *addrs[4];
	size_t n_ans;
	const char *zone;
	struct want want[6];
	size_t n_want;
};

static const struct merge_case cases[] = {
	{ "plain name, A and AAAA",
	  { { "api.internal", 8080, 2, 3 } },
	  1,
	  { "api.internal", "api.internal" },
	  { "127.0.0.22,127.0.0.21", "::1" },
	  2,
	  "a",
	  { { "[::1]:8080", 3, 2 },
	    { "127.0.0.21:8080", 3, 2 },
	    { "127.0.0.22:8080", 3, 2 } }, /* key order: v4 is ::ffff:a.b.c.d */
	  3 },
	{ "names compare without case or trailing dot",
	  { { "API.internal.", 80, 0, 1 } },
	  1,
	  { "api.Internal" },
	  { "10.0.0.1" },
	  1,
	  NULL,
	  { { "10.0.0.1:80", 1, 0 } },
	  1 },
	{ "SRV: each target at its port, priority and weight",
	  { { "t1.internal", 8080, 0, 5 }, { "t2.internal", 8081, 1, 3 } },
	  2,
	  { "t2.internal", "t1.internal" },
	  { "127.0.0.32", "127.0.0.31,127.0.0.33" },
	  2,
	  NULL,
	  { { "127.0.0.31:8080", 5, 0 }, { "127.0.0.32:8081", 3, 1 }, { "127.0.0.33:8080", 5, 0 } },
	  3 },
	{ "SRV weights are clamped to 1..1000",
	  { { "a", 1, 0, 0 }, { "b", 2, 0, 65535 } },
	  2,
	  { "a", "b" },
	  { "10.0.0.1", "10.0.0.2" },
	  2,
	  NULL,
	  { { "10.0.0.1:1", 1, 0 }, { "10.0.0.2:2", 1000, 0 } },
	  2 },
	{ "one address by two records: the lower priority, then the larger weight",
	  { { "a", 80, 5, 9 }, { "b", 80, 1, 2 }, { "c", 80, 1, 7 } },
	  3,
	  { "a", "b", "c" },
	  { "10.0.0.1", "10.0.0.1", "10.0.0.1" },
	  3,
	  NULL,
	  { { "10.0.0.1:80", 7, 1 } },
	  1 },
	{ "same address, two ports: two endpoints",
	  { { "a", 80, 0, 1 }, { "a", 81, 0, 1 } },
	  2,
	  { "a" },
	  { "10.0.0.1" },
	  1,
	  NULL,
	  { { "10.0.0.1:80", 1, 0 }, { "10.0.0.1:81", 1, 0 } },
	  2 },
	{ "a target with no address gives nothing",
	  { { "gone", 80, 0, 1 } },
	  1,
	  { "other" },
	  { "10.0.0.1" },
	  1,
	  NULL,
	  { { 0 } },
	  0 },
	{ "no answers", { { "a", 80, 0, 1 } }, 1, { 0 }, { 0 }, 0, NULL, { { 0 } }, 0 },
};

/* Splits "a,b,c" into addresses (static storage per answer slot). */
static size_t parse_list(const char *s, struct weft_sockaddr *out)
{
	char buf[256], *tok, *save = NULL;
	size_t n = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		out[n++] = ip(tok);
	return n;
}

static void test_merge(void **state)
{
	static struct weft_sockaddr addrs[4][8];
	size_t c, i, n, dropped;
	char ab[ADDR_STRLEN];

	(void)state;
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct merge_case *k = &cases[c];
		struct epset_addrs ans[4];
		struct ep_entry *eps;

		for (i = 0; i < k->n_ans; i++) {
			ans[i].name = k->names[i];
			ans[i].addrs = addrs[i];
			ans[i].n = parse_list(k->addrs[i], addrs[i]);
		}
		assert_int_equal(epset_merge(k->recs, k->n_recs, ans, k->n_ans, k->zone, &eps, &n, &dropped), 0);
		if (n != k->n_want)
			fail_msg("%s: %zu endpoints, expected %zu", k->name, n, k->n_want);
		for (i = 0; i < n; i++) {
			addr_format(&eps[i].addr, ab, sizeof(ab));
			if (strcmp(ab, k->want[i].addr) || eps[i].weight != k->want[i].weight ||
			    eps[i].priority != k->want[i].priority || strcmp(eps[i].zone, k->zone ? k->zone : ""))
				fail_msg("%s: [%zu] %s w%u p%u z'%s', expected %s w%u p%u", k->name, i, ab,
					 eps[i].weight, eps[i].priority, eps[i].zone, k->want[i].addr,
					 k->want[i].weight, k->want[i].priority);
		}
		assert_int_equal(dropped, 0);
		free(eps);
	}
}

/* More than EPFILE_MAX_ENDPOINTS addresses: the first in set order are kept, the rest counted. */
static void test_limit(void **state)
{
	struct weft_sockaddr *a = calloc(1100, sizeof(*a));
	struct epset_rec rec = { "big", 80, 0, 1 };
	struct epset_addrs ans = { "big", a, 1100 };
	struct ep_entry *eps;
	size_t i, n, dropped;
	char buf[32];

	(void)state;
	assert_non_null(a);
	for (i = 0; i < 1100; i++) {
		snprintf(buf, sizeof(buf), "10.1.%zu.%zu", i / 256, i % 256);
		a[i] = ip(buf);
	}
	assert_int_equal(epset_merge(&rec, 1, &ans, 1, NULL, &eps, &n, &dropped), 0);
	assert_int_equal(n, EPFILE_MAX_ENDPOINTS);
	assert_int_equal(dropped, 1100 - EPFILE_MAX_ENDPOINTS);
	free(eps);
	free(a);
}

static void test_normalize_equal(void **state)
{
	struct ep_entry a[3], b[3];
	char why[64];

	(void)state;
	memset(a, 0, sizeof(a));
	addr_parse("10.0.0.2:80", false, &a[0].addr, why, sizeof(why));
	addr_parse("10.0.0.1:80", false, &a[1].addr, why, sizeof(why));
	addr_parse("[::1]:80", false, &a[2].addr, why, sizeof(why));
	a[0].weight = a[1].weight = a[2].weight = 1;
	memcpy(b, a, sizeof(a));
	b[0] = a[2];
	b[2] = a[0];
	assert_int_equal(epset_normalize(a, 3), 3);
	assert_int_equal(epset_normalize(b, 3), 3);
	assert_true(epset_equal(a, 3, b, 3));
	b[1].weight = 2;
	assert_false(epset_equal(a, 3, b, 3));
	b[1].weight = 1;
	snprintf(b[1].zone, sizeof(b[1].zone), "z");
	assert_false(epset_equal(a, 3, b, 3));
	assert_false(epset_equal(a, 3, b, 2));
	assert_true(epset_equal(a, 0, b, 0));
}

static void test_status(void **state)
{
	struct disc_status st;

	(void)state;
	memset(&st, 0, sizeof(st));
	disc_status_note(&st, DISC_OK, true, NULL, 10);
	assert_int_equal(st.refreshes[DISC_OK], 1);
	assert_int_equal(st.changes, 1);
	assert_false(st.kept);
	disc_status_note(&st, DISC_FAILED, false, "SERVFAIL", 11);
	assert_true(st.kept);
	assert_string_equal(st.last_error, "SERVFAIL");
	assert_true(st.last_ok == 10 && st.last_refresh == 11 && st.last_change == 10);
	disc_status_note(&st, DISC_OK, false, NULL, 12);
	assert_false(st.kept);
	assert_string_equal(st.last_error, "SERVFAIL"); /* the last error stays on show */
	assert_string_equal(disc_result_names[DISC_EMPTY], "empty");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_normalize_equal),
		cmocka_unit_test(test_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
