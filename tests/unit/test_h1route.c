// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/h1route.c: route matching (a table of requests against routes,
 * matching and not), the weighted backend split (exact over a full cycle,
 * spread with no bursts), Connection tokens, and protocol detection of first
 * bytes, every prefix of each sample included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/h1route.h"

/* A route built from a config route, as h1proxy does. */
static void mkroute(struct h1r_route *r, const char *method, const char *host, enum cfg_path_match pk, const char *path,
		    struct cfg_header_kv *mh, size_t n_mh)
{
	struct cfg_route c;

	memset(&c, 0, sizeof(c));
	c.name = (char *)"r";
	c.method = (char *)method;
	c.host = (char *)host;
	c.path_kind = pk;
	c.path = (char *)path;
	c.match_headers = mh;
	c.n_match_headers = n_mh;
	memset(r, 0, sizeof(*r));
	assert_int_equal(h1r_route_init(r, &c), 0);
}

static void parse(const char *raw, struct h1_request *q, struct h1_header *hs, size_t n)
{
	h1_request_init(q);
	assert_int_equal(h1_parse_request(raw, strlen(raw), q, hs, n, NULL), (int)strlen(raw));
}

static void test_matches(void **state)
{
	static struct cfg_header_kv canary[] = { { (char *)"x-canary", (char *)"1" } };
	static struct cfg_header_kv present[] = { { (char *)"x-present", NULL } };
	static const struct {
		const char *method, *host;
		enum cfg_path_match pk;
		const char *path;
		struct cfg_header_kv *mh;
		const char *req;
		bool match;
	} t[] = {
		/* everything empty: matches all */
		{ NULL, NULL, CFG_PATH_ANY, NULL, NULL, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", true },
		/* method: exact and case-sensitive */
		{ "GET", NULL, CFG_PATH_ANY, NULL, NULL, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", true },
		{ "GET", NULL, CFG_PATH_ANY, NULL, NULL, "POST / HTTP/1.1\r\nHost: a\r\n\r\n", false },
		{ "GET", NULL, CFG_PATH_ANY, NULL, NULL, "get / HTTP/1.1\r\nHost: a\r\n\r\n", false },
		{ "GET", NULL, CFG_PATH_ANY, NULL, NULL, "GETX / HTTP/1.1\r\nHost: a\r\n\r\n", false },
		/* host: case-insensitive, port ignored, absolute-form authority wins */
		{ NULL, "api.example", CFG_PATH_ANY, NULL, NULL, "GET / HTTP/1.1\r\nHost: API.Example:8080\r\n\r\n",
		  true },
		{ NULL, "api.example", CFG_PATH_ANY, NULL, NULL, "GET / HTTP/1.1\r\nHost: api.example\r\n\r\n", true },
		{ NULL, "api.example", CFG_PATH_ANY, NULL, NULL, "GET / HTTP/1.1\r\nHost: api.example.evil\r\n\r\n",
		  false },
		{ NULL, "api.example", CFG_PATH_ANY, NULL, NULL, "GET / HTTP/1.1\r\nHost: pi.example\r\n\r\n", false },
		{ NULL, "api.example", CFG_PATH_ANY, NULL, NULL, "GET / HTTP/1.0\r\n\r\n", false },
		{ NULL, "api.example", CFG_PATH_ANY, NULL, NULL,
		  "GET http://api.example/x HTTP/1.1\r\nHost: other\r\n\r\n", true },
		{ NULL, "[::1]", CFG_PATH_ANY, NULL, NULL, "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", true },
		/* path exact: the query is not part of it */
		{ NULL, NULL, CFG_PATH_EXACT, "/exact", NULL, "GET /exact HTTP/1.1\r\nHost: a\r\n\r\n", true },
		{ NULL, NULL, CFG_PATH_EXACT, "/exact", NULL, "GET /exact?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", true },
		{ NULL, NULL, CFG_PATH_EXACT, "/exact", NULL, "GET /exact/ HTTP/1.1\r\nHost: a\r\n\r\n", false },
		{ NULL, NULL, CFG_PATH_EXACT, "/exact", NULL, "GET /exac HTTP/1.1\r\nHost: a\r\n\r\n", false },
		{ NULL, NULL, CFG_PATH_EXACT, "/exact", NULL, "GET /EXACT HTTP/1.1\r\nHost: a\r\n\r\n", false },
		/* path prefix: byte prefix of the raw path */
		{ NULL, NULL, CFG_PATH_PREFIX, "/api/", NULL, "GET /api/v1 HTTP/1.1\r\nHost: a\r\n\r\n", true },
		{ NULL, NULL, CFG_PATH_PREFIX, "/api/", NULL, "GET /api/ HTTP/1.1\r\nHost: a\r\n\r\n", true },
		{ NULL, NULL, CFG_PATH_PREFIX, "/api/", NULL, "GET /api HTTP/1.1\r\nHost: a\r\n\r\n", false },
		{ NULL, NULL, CFG_PATH_PREFIX, "/api/", NULL, "GET /ap?/api/ HTTP/1.1\r\nHost: a\r\n\r\n", false },
		{ NULL, NULL, CFG_PATH_PREFIX, "/api/", NULL, "GET http://h/api/x HTTP/1.1\r\nHost: h\r\n\r\n", true },
		{ NULL, NULL, CFG_PATH_PREFIX, "/", NULL, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", false },
		/* headers: name case-insensitive, value exact; any of several lines */
		{ NULL, NULL, CFG_PATH_ANY, NULL, canary, "GET / HTTP/1.1\r\nHost: a\r\nX-Canary: 1\r\n\r\n", true },
		{ NULL, NULL, CFG_PATH_ANY, NULL, canary, "GET / HTTP/1.1\r\nHost: a\r\nx-canary: 2\r\n\r\n", false },
		{ NULL, NULL, CFG_PATH_ANY, NULL, canary,
		  "GET / HTTP/1.1\r\nHost: a\r\nx-canary: 2\r\nx-canary: 1\r\n\r\n", true },
		{ NULL, NULL, CFG_PATH_ANY, NULL, canary, "GET / HTTP/1.1\r\nHost: a\r\nx-canary: 10\r\n\r\n", false },
		{ NULL, NULL, CFG_PATH_ANY, NULL, canary, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", false },
		{ NULL, NULL, CFG_PATH_ANY, NULL, present, "GET / HTTP/1.1\r\nHost: a\r\nX-Present:\r\n\r\n", true },
		{ NULL, NULL, CFG_PATH_ANY, NULL, present, "GET / HTTP/1.1\r\nHost: a\r\nX-Presents: 1\r\n\r\n",
		  false },
		/* all conditions together */
		{ "GET", "h", CFG_PATH_PREFIX, "/a", canary, "GET /ab HTTP/1.1\r\nHost: h\r\nx-canary: 1\r\n\r\n",
		  true },
		{ "GET", "h", CFG_PATH_PREFIX, "/a", canary, "GET /b HTTP/1.1\r\nHost: h\r\nx-canary: 1\r\n\r\n",
		  false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct h1r_route r;
		struct h1_request q;
		struct h1_header hs[16];

		mkroute(&r, t[i].method, t[i].host, t[i].pk, t[i].path, t[i].mh, t[i].mh ? 1 : 0);
		parse(t[i].req, &q, hs, 16);
		if (h1r_route_matches(&r, &q) != t[i].match)
			fail_msg("case %zu: %s: expected %s", i, t[i].req, t[i].match ? "a match" : "no match");
		h1r_route_free(&r);
	}
}

static void test_backend_split(void **state)
{
	struct cfg_backend be[3] = { { (char *)"v1", 0, 9, 1 }, { (char *)"v2", 1, 1, 1 }, { (char *)"off", 2, 0, 1 } };
	struct cfg_route c;
	struct h1r_route r;
	unsigned n[3] = { 0 }, run = 0, i;
	int last = -1;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.name = (char *)"split";
	c.backends = be;
	c.n_backends = 3;
	memset(&r, 0, sizeof(r));
	assert_int_equal(h1r_route_init(&r, &c), 0);
	assert_int_equal(r.be_total, 10);
	/* exact over every cycle of 10, and v2 never twice in a row */
	for (i = 0; i < 2000; i++) {
		int k = h1r_backend_pick(&r);

		assert_true(k >= 0 && k < 2);
		n[k]++;
		run = k == last ? run + 1 : 1;
		if (k == 1)
			assert_int_equal(run, 1);
		last = k;
		if ((i + 1) % 10 == 0) {
			assert_int_equal(n[0], (i + 1) / 10 * 9);
			assert_int_equal(n[1], (i + 1) / 10);
		}
	}
	assert_int_equal(n[2], 0);
	h1r_route_free(&r);

	/* all weights 0, or no backends: nothing to pick */
	be[0].weight = be[1].weight = 0;
	memset(&r, 0, sizeof(r));
	assert_int_equal(h1r_route_init(&r, &c), 0);
	assert_int_equal(h1r_backend_pick(&r), -1);
	h1r_route_free(&r);
	c.n_backends = 0;
	memset(&r, 0, sizeof(r));
	assert_int_equal(h1r_route_init(&r, &c), 0);
	assert_int_equal(h1r_backend_pick(&r), -1);
	h1r_route_free(&r);
}

static void test_route_copy(void **state)
{
	struct cfg_header_kv add[] = { { (char *)"x-via", (char *)"weft" } };
	char *rm[] = { (char *)"x-internal", (char *)"x-debug" };
	struct cfg_backend be[] = { { (char *)"web", 4, 3, 1 } };
	struct cfg_route c;
	struct h1r_route r;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.name = (char *)"copy";
	c.method = (char *)"PUT";
	c.host = (char *)"h";
	c.path_kind = CFG_PATH_PREFIX;
	c.path = (char *)"/p";
	c.add_headers = add;
	c.n_add_headers = 1;
	c.remove_headers = rm;
	c.n_remove_headers = 2;
	c.backends = be;
	c.n_backends = 1;
	c.timeout_ms = 250;
	c.retryable = true;
	memset(&r, 0, sizeof(r));
	assert_int_equal(h1r_route_init(&r, &c), 0);
	/* deep copies: the config may go away */
	assert_ptr_not_equal(r.name, c.name);
	assert_string_equal(r.name, "copy");
	assert_string_equal(r.method, "PUT");
	assert_int_equal(r.host_len, 1);
	assert_int_equal(r.path_len, 2);
	assert_int_equal(r.n_add, 1);
	assert_string_equal(r.add[0].value, "weft");
	assert_int_equal(r.add[0].vlen, 4);
	assert_int_equal(r.n_rm, 2);
	assert_string_equal(r.rm[1].name, "x-debug");
	assert_int_equal(r.n_be, 1);
	assert_int_equal(r.be[0].index, 4);
	assert_int_equal(r.timeout_ms, 250);
	assert_true(r.retryable);
	h1r_route_free(&r);
}

static void test_connection_tokens(void **state)
{
	struct h1_request q;
	struct h1_header hs[16];
	const char *p[H1R_MAX_CONN_TOKENS];
	size_t l[H1R_MAX_CONN_TOKENS], n;
	char raw[1024];
	int i;

	(void)state;
	parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Foo ,,x-bar\r\nconnection: close\r\n\r\n", &q, hs,
	      16);
	n = h1r_connection_tokens(q.headers, q.n_headers, p, l);
	assert_int_equal(n, 4);
	assert_memory_equal(p[0], "keep-alive", l[0]);
	assert_memory_equal(p[1], "X-Foo", l[1]);
	assert_int_equal(l[1], 5);
	assert_memory_equal(p[2], "x-bar", l[2]);
	assert_memory_equal(p[3], "close", l[3]);
	/* more than the array holds: the first ones, never an overflow */
	strcpy(raw, "GET / HTTP/1.1\r\nHost: a\r\nConnection: ");
	for (i = 0; i < 40; i++)
		sprintf(raw + strlen(raw), "%st%d", i ? ", " : "", i);
	strcat(raw, "\r\n\r\n");
	parse(raw, &q, hs, 16);
	n = h1r_connection_tokens(q.headers, q.n_headers, p, l);
	assert_int_equal(n, H1R_MAX_CONN_TOKENS);
	assert_memory_equal(p[15], "t15", 3);
}

static void test_detect(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
		int want;
	} t[] = {
		{ "GET / HTTP/1.1\r\n", 16, H1R_HTTP1 },
		{ "POST /x HTTP/1.0\r\n", 18, H1R_HTTP1 },
		{ "PROPFIND / HTTP/1.1\r\n", 21, H1R_HTTP1 },
		{ "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24, H1R_HTTP2 },
		{ "PRI * HTTP/1.1\r\n", 16, H1R_HTTP1 }, /* not the preface: an (odd) HTTP/1 method */
		{ "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, H1R_TLS },
		{ "\x16\x02", 2, H1R_OPAQUE },
		{ "get / HTTP/1.1\r\n", 16, H1R_OPAQUE },
		{ " GET /", 6, H1R_OPAQUE },
		{ "SSH-2.0-OpenSSH_9.2\r\n", 21, H1R_OPAQUE },
		{ "*1\r\n$4\r\nPING\r\n", 14, H1R_OPAQUE },            /* redis */
		{ "\x00\x00\x00\x08\x04\xd2\x16\x2f", 8, H1R_OPAQUE }, /* postgres SSLRequest */
		{ "ABCDEFGHIJKLMNOPQRSTU /", 23, H1R_OPAQUE },         /* "method" over 20 letters */
		{ "ABCDEFGHIJKLMNOPQRST /", 22, H1R_HTTP1 },           /* 20 letters */
	};
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int got = h1r_detect((const unsigned char *)t[i].bytes, t[i].len);

		if (got != t[i].want)
			fail_msg("case %zu: got %d, want %d", i, got, t[i].want);
		/* every prefix is either undecided or the same answer, and never needs more than the max */
		for (k = 1; k < t[i].len; k++) {
			int p = h1r_detect((const unsigned char *)t[i].bytes, k);

			if (p != -1 && p != t[i].want)
				fail_msg("case %zu prefix %zu: got %d, want -1 or %d", i, k, p, t[i].want);
			if (k >= H1R_DETECT_MAX && p == -1)
				fail_msg("case %zu: undecided after %zu bytes", i, k);
		}
	}
	assert_int_equal(h1r_detect((const unsigned char *)"", 0), -1);
	assert_int_equal(h1r_detect((const unsigned char *)"GE", 2), -1);
	assert_int_equal(h1r_detect((const unsigned char *)"PRI * HTTP/2", 12), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matches),    cmocka_unit_test(test_backend_split),
		cmocka_unit_test(test_route_copy), cmocka_unit_test(test_connection_tokens),
		cmocka_unit_test(test_detect),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
