// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "lib/buf.h"

static int parse(const char *req, char *buf, size_t cap, char **m, char **p, char **q)
{
	size_t n = strlen(req);

	assert_true(n < cap);
	memcpy(buf, req, n + 1);
	return admin_parse_request(buf, n, m, p, q);
}

static const struct {
	const char *req, *method, *path, *query;
} good[] = {
	{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/metrics", "" },
	{ "GET /services?format=text HTTP/1.0\r\n\r\n", "GET", "/services", "format=text" },
	{ "POST /enroll?cgroup=a%2Fb&x=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "POST", "/enroll",
	  "cgroup=a%2Fb&x=1" },
};

static void test_parse_good(void **state)
{
	char buf[256], *m, *p, *q;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(parse(good[i].req, buf, sizeof(buf), &m, &p, &q), 0);
		assert_string_equal(m, good[i].method);
		assert_string_equal(p, good[i].path);
		assert_string_equal(q, good[i].query);
	}
}

/* Failure cases: each malformed head gets its specific status. */
static const struct {
	const char *req;
	int status;
} bad[] = {
	{ "GET /x HTTP/1.1\r\n", -EAGAIN }, /* incomplete */
	{ "GET /x HTTP/2.0\r\n\r\n", 505 },
	{ "GET /x FOO/1.1\r\n\r\n", 400 },
	{ "GET x HTTP/1.1\r\n\r\n", 400 }, /* not origin-form */
	{ " /x HTTP/1.1\r\n\r\n", 400 },
	{ "G(T /x HTTP/1.1\r\n\r\n", 400 }, /* not a token */
	{ "GET /a b HTTP/1.1\r\n\r\n", 400 },
	{ "GET /\x01 HTTP/1.1\r\n\r\n", 400 },
	{ "GET\r\n\r\n", 400 },
};

static void test_parse_bad(void **state)
{
	char buf[256], *m, *p, *q;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i].req, buf, sizeof(buf), &m, &p, &q);

		if (r != bad[i].status)
			fail_msg("case %zu: got %d, want %d", i, r, bad[i].status);
	}
}

static void test_parse_limits(void **state)
{
	static char buf[ADMIN_MAX_REQUEST + 1];
	char *m, *p, *q;

	/* request line longer than the buffer: 414 */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	assert_int_equal(admin_parse_request(buf, ADMIN_MAX_REQUEST, &m, &p, &q), 414);
	/* short request line, endless headers: 431 */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
	assert_int_equal(admin_parse_request(buf, ADMIN_MAX_REQUEST, &m, &p, &q), 431);
}

static void test_query(void **state)
{
	static const struct {
		const char *q, *key, *want;
	} t[] = {
		{ "format=text", "format", "text" },
		{ "a=1&format=json&b=2", "format", "json" },
		{ "cgroup=%2Fsys%2Ffs%2Fcgroup%2Fapp.slice", "cgroup", "/sys/fs/cgroup/app.slice" },
		{ "cgroup=a+b", "cgroup", "a b" },
		{ "formatx=1&format=2", "format", "2" },
		{ "format=", "format", "" },
	};
	char v[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_true(admin_query_get(t[i].q, t[i].key, v, sizeof(v)));
		assert_string_equal(v, t[i].want);
	}
}

static void test_query_bad(void **state)
{
	static const struct {
		const char *q, *key;
		size_t len;
	} t[] = {
		{ "", "format", 64 },             /* absent */
		{ "format", "format", 64 },       /* no '=' */
		{ "fmt=text", "format", 64 },     /* other key */
		{ "format=%zz", "format", 64 },   /* bad escape */
		{ "format=%00", "format", 64 },   /* encoded NUL */
		{ "format=%4", "format", 64 },    /* truncated escape */
		{ "format=abcdef", "format", 4 }, /* too long for the buffer */
	};
	char v[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_false(admin_query_get(t[i].q, t[i].key, v, t[i].len));
}

static int route_hits;

static void route_fn(void *arg, const char *query, struct admin_response *r)
{
	(void)arg;
	(void)query;
	route_hits++;
	admin_resp_text(r, 200, "ok");
}

static void test_route(void **state)
{
	static const struct admin_route routes[] = {
		{ "/a", "GET", route_fn },
		{ "/b", "GET", route_fn },
		{ "/c", "POST", route_fn },
	};
	struct buf body = { 0 };
	struct admin_response r = { .status = 200, .ctype = "application/json", .body = &body };

	(void)state;
	admin_route(routes, 3, NULL, "GET", "/b", "", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(route_hits, 1);
	buf_reset(&body);
	admin_route(routes, 3, NULL, "GET", "/c", "", &r);
	assert_int_equal(r.status, 405);
	assert_int_equal(route_hits, 1);
	assert_memory_equal(body.p, "GET /c: use POST\n", body.len);
	buf_reset(&body);
	admin_route(routes, 3, NULL, "GET", "/nope", "", &r);
	assert_int_equal(r.status, 404);
	assert_int_equal(body.len, strlen("no such endpoint /nope; try /a /b, POST /c\n"));
	assert_memory_equal(body.p, "no such endpoint /nope; try /a /b, POST /c\n", body.len);
	buf_free(&body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),   cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_parse_limits), cmocka_unit_test(test_query),
		cmocka_unit_test(test_query_bad),    cmocka_unit_test(test_route),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
