// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * http1 parser tests: tables of valid heads (each also parsed byte by byte and
 * from every prefix), a block of failure cases each with its exact error and
 * status, limits, pipelining, responses and body framing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/http1.h"

#define NHDRS 128
#define S(x) x, sizeof(x) - 1
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Inputs are copied to an exact-size heap buffer so ASan sees any over-read. */
static char *dup_exact(const char *s, size_t n)
{
	char *p = malloc(n ? n : 1);

	assert_non_null(p);
	memcpy(p, s, n);
	return p;
}

static bool span_eq(const char *p, size_t n, const char *want)
{
	if (!want)
		return p == NULL;
	return p && n == strlen(want) && memcmp(p, want, n) == 0;
}

static int parse_req(const char *buf, size_t len, struct h1_request *r, struct h1_header *h,
		     const struct h1_limits *lim)
{
	h1_request_init(r);
	return h1_parse_request(buf, len, r, h, NHDRS, lim);
}

/* Public fields, compared after one-shot and incremental parses. */
static void assert_req_same(const struct h1_request *a, const struct h1_request *b)
{
	size_t i;

	assert_ptr_equal(a->method, b->method);
	assert_int_equal(a->method_len, b->method_len);
	assert_int_equal(a->method_id, b->method_id);
	assert_ptr_equal(a->target, b->target);
	assert_int_equal(a->target_len, b->target_len);
	assert_int_equal(a->target_form, b->target_form);
	assert_ptr_equal(a->path, b->path);
	assert_int_equal(a->path_len, b->path_len);
	assert_ptr_equal(a->host, b->host);
	assert_int_equal(a->host_len, b->host_len);
	assert_int_equal(a->minor_version, b->minor_version);
	assert_int_equal(a->n_headers, b->n_headers);
	for (i = 0; i < a->n_headers; i++) {
		assert_ptr_equal(a->headers[i].name, b->headers[i].name);
		assert_int_equal(a->headers[i].name_len, b->headers[i].name_len);
		assert_ptr_equal(a->headers[i].value, b->headers[i].value);
		assert_int_equal(a->headers[i].value_len, b->headers[i].value_len);
	}
	assert_int_equal(a->content_length, b->content_length);
	assert_int_equal(a->chunked, b->chunked);
	assert_int_equal(a->keep_alive, b->keep_alive);
	assert_int_equal(a->expect_continue, b->expect_continue);
	assert_int_equal(a->upgrade, b->upgrade);
	assert_ptr_equal(a->upgrade_proto, b->upgrade_proto);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->head_len, b->head_len);
}

static void assert_resp_same(const struct h1_response *a, const struct h1_response *b)
{
	size_t i;

	assert_int_equal(a->minor_version, b->minor_version);
	assert_int_equal(a->status, b->status);
	assert_ptr_equal(a->reason, b->reason);
	assert_int_equal(a->reason_len, b->reason_len);
	assert_int_equal(a->n_headers, b->n_headers);
	for (i = 0; i < a->n_headers; i++) {
		assert_ptr_equal(a->headers[i].name, b->headers[i].name);
		assert_ptr_equal(a->headers[i].value, b->headers[i].value);
		assert_int_equal(a->headers[i].value_len, b->headers[i].value_len);
	}
	assert_int_equal(a->content_length, b->content_length);
	assert_int_equal(a->chunked, b->chunked);
	assert_int_equal(a->close_delimited, b->close_delimited);
	assert_int_equal(a->no_body, b->no_body);
	assert_int_equal(a->interim, b->interim);
	assert_int_equal(a->tunnel, b->tunnel);
	assert_int_equal(a->keep_alive, b->keep_alive);
	assert_int_equal(a->flags, b->flags);
}

/* ---- valid requests ------------------------------------------------------ */

static const struct req_case {
	const char *in;
	size_t len;
	size_t tail; /* bytes after the head (body, next request) */
	const char *method;
	int method_id;
	const char *target;
	int form;
	const char *path;
	const char *host; /* NULL: none */
	int minor;
	size_t n_headers;
	int64_t cl;
	bool chunked, keep_alive, expect, upgrade;
	unsigned flags; /* must all be set */
} good_req[] = {
	{ S("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), 0, "GET", H1_M_GET, "/", H1_TARGET_ORIGIN, "/",
	  "example.com", 1, 1, -1, false, true, false, false, H1_F_HAS_HOST },
	{ S("GET /a/b;p?x=1&y=%20&z=a:b@c/d?e HTTP/1.1\r\nHost: ex:8080\r\nUser-Agent:  curl/8.0 \r\n"
	    "Accept: */*\r\n\r\n"),
	  0, "GET", H1_M_GET, "/a/b;p?x=1&y=%20&z=a:b@c/d?e", H1_TARGET_ORIGIN, "/a/b;p?x=1&y=%20&z=a:b@c/d?e",
	  "ex:8080", 1, 3, -1, false, true, false, false, 0 },
	{ S("POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"), 5, "POST", H1_M_POST, "/submit",
	  H1_TARGET_ORIGIN, "/submit", "a", 1, 2, 5, false, true, false, false, H1_F_HAS_CL },
	{ S("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 0, "POST", H1_M_POST, "/up",
	  H1_TARGET_ORIGIN, "/up", "a", 1, 2, -1, true, true, false, false, H1_F_HAS_TE },
	{ S("PUT /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \t\r\n\r\n"), 0, "PUT", H1_M_PUT, "/up",
	  H1_TARGET_ORIGIN, "/up", "a", 1, 2, -1, true, true, false, false, H1_F_HAS_TE },
	{ S("GET / HTTP/1.0\r\n\r\n"), 0, "GET", H1_M_GET, "/", H1_TARGET_ORIGIN, "/", NULL, 0, 0, -1, false, false,
	  false, false, 0 },
	{ S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 0, "GET", H1_M_GET, "/", H1_TARGET_ORIGIN, "/", NULL,
	  0, 1, -1, false, true, false, false, H1_F_CONN_KEEP_ALIVE },
	{ S("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"), 0, "GET", H1_M_GET, "/",
	  H1_TARGET_ORIGIN, "/", NULL, 0, 2, -1, false, false, false, false, H1_F_CONN_KEEP_ALIVE | H1_F_CONN_CLOSE },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), 0, "GET", H1_M_GET, "/", H1_TARGET_ORIGIN, "/",
	  "a", 1, 2, -1, false, false, false, false, H1_F_CONN_CLOSE },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE , bar\r\n\r\n"), 0, "GET", H1_M_GET, "/",
	  H1_TARGET_ORIGIN, "/", "a", 1, 2, -1, false, false, false, false, H1_F_CONN_CLOSE },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n"), 0, "GET", H1_M_GET, "/", H1_TARGET_ORIGIN, "/",
	  "a", 1, 2, -1, false, true, false, false, 0 },
	{ S("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-Continue\r\n\r\n"), 0, "POST", H1_M_POST,
	  "/x", H1_TARGET_ORIGIN, "/x", "a", 1, 3, 10, false, true, true, false, H1_F_HAS_CL },
	{ S("POST /x HTTP/1.0\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"), 0, "POST", H1_M_POST, "/x",
	  H1_TARGET_ORIGIN, "/x", NULL, 0, 2, 10, false, false, false, false, 0 },
	{ S("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
	  0, "GET", H1_M_GET, "/chat", H1_TARGET_ORIGIN, "/chat", "a", 1, 5, -1, false, true, false, true,
	  H1_F_CONN_UPGRADE | H1_F_HAS_UPGRADE },
	{ S("GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"), 0, "GET", H1_M_GET, "/chat",
	  H1_TARGET_ORIGIN, "/chat", "a", 1, 2, -1, false, true, false, false, H1_F_HAS_UPGRADE },
	{ S("GET /chat HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"), 0, "GET", H1_M_GET, "/chat",
	  H1_TARGET_ORIGIN, "/chat", NULL, 0, 2, -1, false, false, false, false, H1_F_HAS_UPGRADE | H1_F_CONN_UPGRADE },
	{ S("GET http://Example.com:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n"), 0, "GET", H1_M_GET,
	  "http://Example.com:8080/p?q", H1_TARGET_ABSOLUTE, "/p?q", "Example.com:8080", 1, 1, -1, false, true, false,
	  false, 0 },
	{ S("GET HTTPS://a.b?x HTTP/1.1\r\nHost: a.b\r\n\r\n"), 0, "GET", H1_M_GET, "HTTPS://a.b?x", H1_TARGET_ABSOLUTE,
	  "?x", "a.b", 1, 1, -1, false, true, false, false, 0 },
	{ S("GET http://[::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), 0, "GET", H1_M_GET, "http://[::1]:80",
	  H1_TARGET_ABSOLUTE, "", "[::1]:80", 1, 1, -1, false, true, false, false, 0 },
	{ S("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 0, "CONNECT", H1_M_CONNECT,
	  "example.com:443", H1_TARGET_AUTHORITY, "", "example.com:443", 1, 1, -1, false, true, false, false, 0 },
	{ S("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"), 0, "CONNECT", H1_M_CONNECT,
	  "[2001:db8::1]:443", H1_TARGET_AUTHORITY, "", "[2001:db8::1]:443", 1, 1, -1, false, true, false, false, 0 },
	{ S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0, "OPTIONS", H1_M_OPTIONS, "*", H1_TARGET_ASTERISK, "", "a", 1,
	  1, -1, false, true, false, false, 0 },
	{ S("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, "GET", H1_M_GET, "/", H1_TARGET_ORIGIN, "/", "a", 1, 1, -1,
	  false, true, false, false, 0 },
	{ S("PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n"), 0, "PURGE", H1_M_OTHER, "/x", H1_TARGET_ORIGIN, "/x", "a", 1, 1,
	  -1, false, true, false, false, 0 },
	{ S("DELETE /x HTTP/1.1\r\nhost: a\r\n\r\n"), 0, "DELETE", H1_M_DELETE, "/x", H1_TARGET_ORIGIN, "/x", "a", 1, 1,
	  -1, false, true, false, false, 0 },
	{ S("get /x HTTP/1.1\r\nHost: a\r\n\r\n"), 0, "get", H1_M_OTHER, "/x", H1_TARGET_ORIGIN, "/x", "a", 1, 1, -1,
	  false, true, false, false, 0 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n"), 0, "POST", H1_M_POST, "/",
	  H1_TARGET_ORIGIN, "/", "a", 1, 3, 5, false, true, false, false, H1_F_HAS_CL | H1_F_CL_REPEATED },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 ,5\r\n\r\n"), 0, "POST", H1_M_POST, "/", H1_TARGET_ORIGIN,
	  "/", "a", 1, 2, 5, false, true, false, false, H1_F_HAS_CL | H1_F_CL_REPEATED },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n"), 0, "POST", H1_M_POST, "/", H1_TARGET_ORIGIN,
	  "/", "a", 1, 2, 7, false, true, false, false, H1_F_HAS_CL },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 0, "POST", H1_M_POST, "/", H1_TARGET_ORIGIN,
	  "/", "a", 1, 2, 0, false, true, false, false, H1_F_HAS_CL },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"), 0, "POST", H1_M_POST, "/",
	  H1_TARGET_ORIGIN, "/", "a", 1, 2, INT64_MAX, false, true, false, false, H1_F_HAS_CL },
	{ S("GET / HTTP/1.1\r\nHost:\r\nX-Empty:\r\nX-Ws: \t \r\nX-Tab: a\tb\r\nX-Utf8: caf\xc3\xa9\r\n\r\n"), 0, "GET",
	  H1_M_GET, "/", H1_TARGET_ORIGIN, "/", "", 1, 5, -1, false, true, false, false, H1_F_HAS_HOST },
	{ S("OPTIONS /x HTTP/1.1\r\nHost: a%41b.c\r\nConnection: x , close\r\nContent-Lengtx: 1\r\n\r\n"), 0, "OPTIONS",
	  H1_M_OPTIONS, "/x", H1_TARGET_ORIGIN, "/x", "a%41b.c", 1, 3, -1, false, false, false, false,
	  H1_F_CONN_CLOSE },
	{ S("LONGMETHOD / HTTP/1.1\r\nHost: a\r\n\r\n"), 0, "LONGMETHOD", H1_M_OTHER, "/", H1_TARGET_ORIGIN, "/", "a",
	  1, 1, -1, false, true, false, false, 0 },
	{ S("GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\nX-A:b\r\n\r\n"), 0, "GET", H1_M_GET, "/", H1_TARGET_ORIGIN, "/",
	  "10.0.0.1:80", 1, 2, -1, false, true, false, false, 0 },
	{ S("GET / HTTP/1.1\r\nHost: xn--d1acpjx3f.xn--p1ai:\r\n\r\n"), 0, "GET", H1_M_GET, "/", H1_TARGET_ORIGIN, "/",
	  "xn--d1acpjx3f.xn--p1ai:", 1, 1, -1, false, true, false, false, 0 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n"), 17, "GET", H1_M_GET, "/", H1_TARGET_ORIGIN, "/",
	  "a", 1, 1, -1, false, true, false, false, 0 },
};

static void check_req_case(const struct req_case *c, const char *buf, const struct h1_request *r)
{
	assert_true(span_eq(r->method, r->method_len, c->method));
	assert_int_equal(r->method_id, c->method_id);
	assert_true(span_eq(r->target, r->target_len, c->target));
	assert_int_equal(r->target_form, c->form);
	assert_true(span_eq(r->path, r->path_len, c->path));
	if (!c->host)
		assert_null(r->host);
	else
		assert_true(span_eq(r->host, r->host_len, c->host));
	assert_int_equal(r->minor_version, c->minor);
	assert_int_equal(r->n_headers, c->n_headers);
	assert_int_equal(r->content_length, c->cl);
	assert_int_equal(r->chunked, c->chunked);
	assert_int_equal(r->keep_alive, c->keep_alive);
	assert_int_equal(r->expect_continue, c->expect);
	assert_int_equal(r->upgrade, c->upgrade);
	assert_int_equal(r->flags & c->flags, c->flags);
	assert_true(r->method >= buf && r->target > r->method);
}

static void test_request_good(void **state)
{
	struct h1_header h[NHDRS];
	struct h1_request r;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(good_req); i++) {
		const struct req_case *c = &good_req[i];
		size_t head = c->len - c->tail;
		char *buf = dup_exact(c->in, c->len);
		int n = parse_req(buf, c->len, &r, h, NULL);

		if (n != (int)head)
			fail_msg("good request %zu: got %d (%s), want %zu", i, n, h1_error_reason(n), head);
		assert_int_equal(r.head_len, head);
		check_req_case(c, buf, &r);
		free(buf);
	}
}

static void test_request_headers(void **state)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX-Sp:  v  w \t\r\nX-Empty:\r\n\r\n";
	struct h1_header h[4];
	struct h1_request r;
	const struct h1_header *f;

	(void)state;
	assert_int_equal(parse_req(in, sizeof(in) - 1, &r, h, NULL), (int)sizeof(in) - 1);
	assert_true(span_eq(h[0].name, h[0].name_len, "Host"));
	assert_true(span_eq(h[1].value, h[1].value_len, "v  w"));
	assert_int_equal(h[2].value_len, 0);
	f = h1_find_header(h, r.n_headers, "x-sp", 4);
	assert_ptr_equal(f, &h[1]);
	assert_null(h1_find_header(h, r.n_headers, "x-none", 6));
	/* result is stable: calling again returns the same */
	assert_int_equal(h1_parse_request(in, sizeof(in) - 1, &r, h, 4, NULL), (int)sizeof(in) - 1);
}

/*
 * Field values are scanned 8 bytes at a time: every byte value at every
 * position of a long value must still be judged exactly.
 */
static void test_request_value_bytes(void **state)
{
	static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
	struct h1_header h[4];
	struct h1_request r;
	char buf[128];
	size_t p, n;
	int c, got;

	(void)state;
	for (c = 0; c < 256; c++) {
		bool ok = c == '\t' || (c >= 0x20 && c != 0x7f);

		for (p = 0; p < 24; p++) {
			memcpy(buf, pre, sizeof(pre) - 1);
			n = sizeof(pre) - 1;
			memset(buf + n, 'v', 24);
			buf[n + p] = (char)c;
			n += 24;
			memcpy(buf + n, "\r\n\r\n", 4);
			n += 4;
			got = parse_req(buf, n, &r, h, NULL);
			if (c == '\r')
				assert_int_equal(got, H1_E_BARE_CR);
			else if (c == '\n')
				assert_int_equal(got, H1_E_BARE_LF);
			else if (!ok)
				assert_int_equal(got, H1_E_HEADER_VALUE);
			else if (got != (int)n)
				fail_msg("byte 0x%02x at %zu: got %d", (unsigned)c, p, got);
		}
	}
}

/* ---- incremental parsing ------------------------------------------------- */

/*
 * Every prefix: with a fresh state and with the state carried over from the
 * previous prefix (byte-by-byte feeding), the result is INCOMPLETE until the
 * head is complete, then exactly the one-shot result.
 */
static void run_incremental_req(const char *in, size_t len, const struct h1_limits *lim)
{
	struct h1_header h0[NHDRS], h1[NHDRS], h2[NHDRS];
	struct h1_request r0, r1, r2;
	char *buf = dup_exact(in, len);
	int want = parse_req(buf, len, &r0, h0, lim), got;
	size_t k;

	h1_request_init(&r1);
	for (k = 0; k <= len; k++) {
		got = h1_parse_request(buf, k, &r1, h1, NHDRS, lim);
		if (got == H1_INCOMPLETE)
			assert_true(want == H1_INCOMPLETE || (want > 0 && k < (size_t)want) || want < 0);
		else if (got != want)
			fail_msg("byte-by-byte prefix %zu of %zu: got %d, want %d", k, len, got, want);
		if (got < 0 && got != H1_INCOMPLETE)
			break; /* errors are sticky and final */
		got = parse_req(buf, k, &r2, h2, lim);
		if (got != H1_INCOMPLETE && got != want)
			fail_msg("fresh prefix %zu of %zu: got %d, want %d", k, len, got, want);
	}
	got = h1_parse_request(buf, len, &r1, h1, NHDRS, lim);
	assert_int_equal(got, want);
	if (want > 0) {
		/* same pointers into buf: compare with h0 replaced by h1's array */
		r0.headers = h0;
		assert_req_same(&r0, &r1);
		for (k = 0; k < r0.n_headers; k++) {
			assert_ptr_equal(h0[k].name, h1[k].name);
			assert_ptr_equal(h0[k].value, h1[k].value);
		}
	}
	free(buf);
}

static void test_request_incremental(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(good_req); i++)
		run_incremental_req(good_req[i].in, good_req[i].len, NULL);
}

/* The buffer moves (realloc) between calls: the parser restarts from the new start. */
static void test_request_buffer_moved(void **state)
{
	static const char in[] = "GET /x HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n";
	struct h1_header h[8];
	struct h1_request r;
	char *a = dup_exact(in, sizeof(in) - 1), *b = dup_exact(in, sizeof(in) - 1);

	(void)state;
	h1_request_init(&r);
	assert_int_equal(h1_parse_request(a, 20, &r, h, 8, NULL), H1_INCOMPLETE);
	free(a);
	assert_int_equal(h1_parse_request(b, sizeof(in) - 1, &r, h, 8, NULL), (int)sizeof(in) - 1);
	assert_ptr_equal(r.method, b);
	assert_ptr_equal(h[1].name, b + 26);
	/* a shorter length than already parsed also restarts */
	h1_request_init(&r);
	assert_int_equal(h1_parse_request(b, 30, &r, h, 8, NULL), H1_INCOMPLETE);
	assert_int_equal(h1_parse_request(b, 10, &r, h, 8, NULL), H1_INCOMPLETE);
	assert_int_equal(h1_parse_request(b, sizeof(in) - 1, &r, h, 8, NULL), (int)sizeof(in) - 1);
	free(b);
}

/* ---- pipelining -------------------------------------------------------------- */

static void test_request_pipelined(void **state)
{
	static const char in[] = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
				 "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "3;x=y\r\ndef\r\n0\r\nT: 1\r\n\r\n"
				 "GET /c HTTP/1.1\r\nHost: a\r\n\r\n";
	const char *paths[] = { "/a", "/b", "/c" };
	char *buf = dup_exact(in, sizeof(in) - 1);
	size_t off = 0, len = sizeof(in) - 1, used, i;
	struct h1_header h[8];
	struct h1_request r;
	struct h1_body b;

	(void)state;
	for (i = 0; i < 3; i++) {
		int n = parse_req(buf + off, len - off, &r, h, NULL);

		assert_true(n > 0);
		assert_true(span_eq(r.path, r.path_len, paths[i]));
		off += (size_t)n;
		h1_body_init_request(&b, &r, NULL);
		if (i == 2) {
			assert_true(h1_body_done(&b));
			break;
		}
		assert_int_equal(h1_body_feed(&b, buf + off, len - off, &used, NULL, NULL), 1);
		off += used;
	}
	assert_int_equal(off, len);
	free(buf);
}

/* ---- rejected requests: each with its exact error and status ---------------- */

static const struct bad_case {
	const char *in;
	size_t len;
	int err;
	int status;
} bad_req[] = {
	/* line endings */
	{ S("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"), H1_E_BARE_CR, 400 },
	{ S("GET / HTTP/1.1\rHost: a\r\n\r\n"), H1_E_BARE_CR, 400 },
	{ S("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_BARE_CR, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\n\rX"), H1_E_BARE_CR, 400 },
	{ S("GET / HTTP/1.1\nHost: a\n\n"), H1_E_BARE_LF, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n"), H1_E_BARE_LF, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\n\n"), H1_E_BARE_LF, 400 },
	{ S("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_BARE_LF, 400 },
	{ S("GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_REQUEST_LINE, 400 },
	/* obs-fold and whitespace at line start */
	{ S("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n"), H1_E_OBS_FOLD, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n"), H1_E_OBS_FOLD, 400 },
	{ S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), H1_E_OBS_FOLD, 400 },
	/* field names */
	{ S("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n"), H1_E_HEADER_NAME, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nX@Y: 1\r\n\r\n"), H1_E_HEADER_NAME, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n"), H1_E_HEADER_NAME, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), H1_E_HEADER_NAME, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: 1\r\n\r\n"), H1_E_HEADER_NAME, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\n\x7fX: 1\r\n\r\n"), H1_E_HEADER_NAME, 400 },
	{ S("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), H1_E_HEADER_WS, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n"), H1_E_HEADER_WS, 400 },
	/* field values */
	{ S("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n"), H1_E_HEADER_VALUE, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nX: a\0z\r\n\r\n"), H1_E_HEADER_VALUE, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n"), H1_E_HEADER_VALUE, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[0m\r\n\r\n"), H1_E_HEADER_VALUE, 400 },
	/* request line */
	{ S("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_METHOD, 400 },
	{ S(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_METHOD, 400 },
	{ S("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_METHOD, 400 },
	{ S("GET\r\n\r\n"), H1_E_REQUEST_LINE, 400 },
	{ S("GET /\r\n\r\n"), H1_E_REQUEST_LINE, 400 },
	{ S("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_REQUEST_LINE, 400 },
	{ S("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_VERSION, 400 },
	{ S("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), H1_E_VERSION, 400 },
	/* request-target */
	{ S("GET /a\"b HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET /a{b} HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET /a|b HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET /a<b> HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET /[x] HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET x HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET http:// HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET http://user@host/ HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET http://a/[x] HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET http://a:99999/ HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("CONNECT a:65536 HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("CONNECT [::1]x:1 HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("CONNECT http://a:1 HTTP/1.1\r\nHost: a\r\n\r\n"), H1_E_TARGET, 400 },
	/* version */
	{ S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), H1_E_VERSION_UNSUPPORTED, 505 },
	{ S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), H1_E_VERSION_UNSUPPORTED, 505 },
	{ S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), H1_E_TARGET, 400 },
	{ S("GET / HTTP/0.9\r\n\r\n"), H1_E_VERSION_UNSUPPORTED, 505 },
	{ S("GET / HTTP/3.0\r\nHost: a\r\n\r\n"), H1_E_VERSION_UNSUPPORTED, 505 },
	{ S("GET / http/1.1\r\nHost: a\r\n\r\n"), H1_E_VERSION, 400 },
	{ S("GET / HTTP/1\r\nHost: a\r\n\r\n"), H1_E_VERSION, 400 },
	{ S("GET / HTTP/11.1\r\nHost: a\r\n\r\n"), H1_E_VERSION, 400 },
	{ S("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), H1_E_VERSION, 400 },
	{ S("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), H1_E_VERSION, 400 },
	/* Host */
	{ S("GET / HTTP/1.1\r\n\r\n"), H1_E_HOST_MISSING, 400 },
	{ S("GET http://a/ HTTP/1.1\r\n\r\n"), H1_E_HOST_MISSING, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), H1_E_HOST_REPEATED, 400 },
	{ S("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), H1_E_HOST_REPEATED, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	{ S("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a:http\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	{ S("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	{ S("GET / HTTP/1.1\r\nHost: []\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	{ S("GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a%4\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	{ S("GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	{ S("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), H1_E_HOST_INVALID, 400 },
	/* Content-Length */
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n"), H1_E_CL_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"), H1_E_CL_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), H1_E_CL_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n"), H1_E_CL_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"), H1_E_CL_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), H1_E_CL_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n"), H1_E_CL_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1.0\r\n\r\n"), H1_E_CL_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n"), H1_E_CL_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"), H1_E_CL_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), H1_E_CL_CONFLICT, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"), H1_E_CL_CONFLICT, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\nContent-Length: 6\r\n\r\n"), H1_E_CL_CONFLICT, 400 },
	/* Content-Length with Transfer-Encoding, either order */
	{ S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), H1_E_CL_AND_TE,
	  400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"), H1_E_CL_AND_TE,
	  400 },
	/* Transfer-Encoding */
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), H1_E_TE_NOT_CHUNKED, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), H1_E_TE_NOT_CHUNKED, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"),
	  H1_E_TE_NOT_CHUNKED, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), H1_E_TE_CHUNKED_REPEATED,
	  400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
	  H1_E_TE_CHUNKED_REPEATED, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n"), H1_E_TE_UNKNOWN, 501 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), H1_E_TE_UNKNOWN, 501 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"),
	  H1_E_TE_UNKNOWN, 501 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,,,,,,,, chunked\r\n\r\n"), H1_E_TE_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n"), H1_E_TE_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n"), H1_E_TE_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"), H1_E_TE_UNKNOWN, 501 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, foo\r\n\r\n"), H1_E_TE_UNKNOWN, 501 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), H1_E_TE_UNKNOWN, 501 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"), H1_E_TE_UNKNOWN, 501 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), H1_E_TE_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , \r\n\r\n"), H1_E_TE_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"), H1_E_TE_INVALID, 400 },
	{ S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked chunked\r\n\r\n"), H1_E_TE_INVALID, 400 },
	{ S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), H1_E_TE_HTTP10, 400 },
};

static void test_request_bad(void **state)
{
	struct h1_header h[NHDRS];
	struct h1_request r;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(bad_req); i++) {
		const struct bad_case *c = &bad_req[i];
		char *buf = dup_exact(c->in, c->len);
		int got = parse_req(buf, c->len, &r, h, NULL);

		if (got != c->err)
			fail_msg("bad request %zu: got %d (%s), want %d (%s)", i, got, h1_error_reason(got), c->err,
				 h1_error_reason(c->err));
		assert_int_equal(h1_error_status(got), c->status);
		/* sticky: the same state answers the same */
		assert_int_equal(h1_parse_request(buf, c->len, &r, h, NHDRS, NULL), c->err);
		free(buf);
		/* every prefix is INCOMPLETE or the same error */
		run_incremental_req(c->in, c->len, NULL);
	}
}

/* ---- limits ---------------------------------------------------------------- */

static void test_request_limits(void **state)
{
	const struct h1_limits small = { .max_start_line = 16, .max_header_bytes = 32, .max_headers = 3 };
	struct h1_header h[NHDRS];
	struct h1_request r;
	size_t n, i;
	char *big;

	(void)state;
	/* request line of exactly 16 bytes passes; 17 is 414, even before its end arrives */
	assert_true(parse_req(S("GET /23 HTTP/1.1\r\nHost: a\r\n\r\n"), &r, h, &small) > 0);
	assert_int_equal(parse_req(S("GET /234 HTTP/1.1\r\nHost: a\r\n\r\n"), &r, h, &small), H1_E_START_LINE_TOO_LONG);
	assert_int_equal(parse_req(S("GET /2345678901234567"), &r, h, &small), H1_E_START_LINE_TOO_LONG);
	assert_int_equal(parse_req(S("\r\n\r\nGET /23 HTTP/1.1\r\nHost: a\r\n\r\n"), &r, h, &small),
			 H1_E_START_LINE_TOO_LONG);
	assert_int_equal(h1_error_status(H1_E_START_LINE_TOO_LONG), 414);
	run_incremental_req(S("GET /234 HTTP/1.1\r\nHost: a\r\n\r\n"), &small);
	run_incremental_req(S("GET /23 HTTP/1.1\r\nHost: a\r\n\r\n"), &small);

	/* header block: 32 bytes including the final CRLF */
	assert_true(parse_req(S("GET / HTTP/1.1\r\nHost: a\r\nX-12345678901234: 1\r\n\r\n"), &r, h, &small) > 0);
	assert_int_equal(parse_req(S("GET / HTTP/1.1\r\nHost: a\r\nX-123456789012345: 1\r\n\r\n"), &r, h, &small),
			 H1_E_HEADERS_TOO_LARGE);
	assert_int_equal(parse_req(S("GET / HTTP/1.1\r\nHost: a\r\nX-1234567890123456789012345"), &r, h, &small),
			 H1_E_HEADERS_TOO_LARGE);
	assert_int_equal(h1_error_status(H1_E_HEADERS_TOO_LARGE), 431);
	run_incremental_req(S("GET / HTTP/1.1\r\nHost: a\r\nX-12345678901234: 1\r\n\r\n"), &small);
	run_incremental_req(S("GET / HTTP/1.1\r\nHost: a\r\nX-123456789012345: 1\r\n\r\n"), &small);

	/* count: 3 fields pass, a 4th is 431 */
	assert_true(parse_req(S("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n"), &r, h, &small) > 0);
	assert_int_equal(parse_req(S("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), &r, h, &small),
			 H1_E_TOO_MANY_HEADERS);
	assert_int_equal(h1_error_status(H1_E_TOO_MANY_HEADERS), 431);
	/* the caller's array is a limit too */
	h1_request_init(&r);
	assert_int_equal(h1_parse_request(S("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n"), &r, h, 1, NULL),
			 H1_E_TOO_MANY_HEADERS);

	/* defaults: 8 KiB request line, 64 KiB of fields, 100 fields */
	big = malloc(128 * 1024);
	assert_non_null(big);
	n = (size_t)sprintf(big, "GET /");
	memset(big + n, 'a', 8192 - 14);
	n += 8192 - 14;
	n += (size_t)sprintf(big + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(parse_req(big, n, &r, h, NULL), (int)n); /* a line of 8192 */
	n = (size_t)sprintf(big, "GET /");
	memset(big + n, 'a', 8192 - 13);
	n += 8192 - 13;
	n += (size_t)sprintf(big + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(parse_req(big, n, &r, h, NULL), H1_E_START_LINE_TOO_LONG);

	n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(big + n, 'v', 65536);
	n += 65536;
	n += (size_t)sprintf(big + n, "\r\n\r\n");
	assert_int_equal(parse_req(big, n, &r, h, NULL), H1_E_HEADERS_TOO_LARGE);

	n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 0; i < 99; i++)
		n += (size_t)sprintf(big + n, "X-%zu: %zu\r\n", i, i);
	n += (size_t)sprintf(big + n, "\r\n");
	assert_int_equal(parse_req(big, n, &r, h, NULL), (int)n);
	assert_int_equal(r.n_headers, 100);
	n -= 2;
	n += (size_t)sprintf(big + n, "X-last: 1\r\n\r\n");
	assert_int_equal(parse_req(big, n, &r, h, NULL), H1_E_TOO_MANY_HEADERS);
	free(big);
}

static void test_errors(void **state)
{
	int e;

	(void)state;
	for (e = H1_E_BARE_CR; e < H1_E_LAST_; e++) {
		int s = h1_error_status(e);

		assert_true(s == 400 || s == 414 || s == 431 || s == 500 || s == 501 || s == 505);
		assert_non_null(h1_error_reason(e));
		assert_true(strlen(h1_error_reason(e)) > 3);
	}
	assert_int_equal(h1_error_status(H1_E_TE_UNKNOWN), 501);
	assert_int_equal(h1_error_status(H1_E_VERSION_UNSUPPORTED), 505);
	assert_int_equal(h1_error_status(12345), 400);
	assert_string_equal(h1_error_reason(H1_INCOMPLETE), "incomplete");
	assert_int_equal(h1_parse_request("x", 1, NULL, NULL, 0, NULL), H1_E_ARG);
	assert_int_equal(h1_parse_response("x", 1, H1_M_GET, NULL, NULL, 0, NULL), H1_E_ARG);
	assert_string_equal(h1_error_reason(12345), "bad request");
}

/* ---- responses ------------------------------------------------------------- */

static const struct resp_case {
	const char *in;
	size_t len;
	enum h1_method req_method;
	int status;
	const char *reason;
	int minor;
	int64_t cl;
	bool chunked, close_delimited, no_body, interim, tunnel, keep_alive;
} good_resp[] = {
	{ S("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"), H1_M_GET, 200, "OK", 1, 12, false, false, false, false,
	  false, true },
	{ S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), H1_M_GET, 200, "OK", 1, -1, true, false, false,
	  false, false, true },
	{ S("HTTP/1.1 200 OK\r\n\r\n"), H1_M_GET, 200, "OK", 1, -1, false, true, false, false, false, false },
	{ S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), H1_M_GET, 200, "OK", 1, -1, false, true, false,
	  false, false, false },
	{ S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), H1_M_GET, 200, "OK", 1, -1, true, false,
	  false, false, false, true },
	{ S("HTTP/1.1 204 No Content\r\n\r\n"), H1_M_GET, 204, "No Content", 1, -1, false, false, true, false, false,
	  true },
	{ S("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"), H1_M_GET, 304, "Not Modified", 1, 100, false,
	  false, true, false, false, true },
	{ S("HTTP/1.1 100 Continue\r\n\r\n"), H1_M_POST, 100, "Continue", 1, -1, false, false, true, true, false,
	  true },
	{ S("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"), H1_M_GET, 103, "Early Hints", 1, -1,
	  false, false, true, true, false, true },
	{ S("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), H1_M_GET, 101,
	  "Switching Protocols", 1, -1, false, false, true, false, true, false },
	{ S("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"), H1_M_HEAD, 200, "OK", 1, 1000, false, false, true,
	  false, false, true },
	{ S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), H1_M_HEAD, 200, "OK", 1, -1, false, false, true,
	  false, false, true },
	{ S("HTTP/1.1 200 Connection established\r\n\r\n"), H1_M_CONNECT, 200, "Connection established", 1, -1, false,
	  false, true, false, true, false },
	{ S("HTTP/1.1 407 Proxy Auth\r\nContent-Length: 0\r\n\r\n"), H1_M_CONNECT, 407, "Proxy Auth", 1, 0, false,
	  false, false, false, false, true },
	{ S("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n"), H1_M_GET, 200, "OK", 0, 3, false, false, false, false,
	  false, false },
	{ S("HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n"), H1_M_GET, 200, "OK", 0, 3, false,
	  false, false, false, false, true },
	{ S("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"), H1_M_GET, 200, "OK", 1, 3, false,
	  false, false, false, false, false },
	{ S("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), H1_M_GET, 200, "", 1, 0, false, false, false, false, false,
	  true },
	{ S("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"), H1_M_GET, 200, "", 1, 0, false, false, false, false, false,
	  true },
	{ S("HTTP/1.1 404 Not  Found\tx \xe2\x9c\x93\r\nContent-Length: 0\r\n\r\n"), H1_M_GET, 404,
	  "Not  Found\tx \xe2\x9c\x93", 1, 0, false, false, false, false, false, true },
	{ S("HTTP/1.1 599 Custom\r\nContent-Length: 0\r\n\r\n"), H1_M_GET, 599, "Custom", 1, 0, false, false, false,
	  false, false, true },
};

static void run_incremental_resp(const char *in, size_t len, enum h1_method m)
{
	struct h1_header h0[NHDRS], h1[NHDRS];
	struct h1_response r0, r1;
	char *buf = dup_exact(in, len);
	int want, got;
	size_t k;

	h1_response_init(&r0);
	want = h1_parse_response(buf, len, m, &r0, h0, NHDRS, NULL);
	h1_response_init(&r1);
	for (k = 0; k < len; k++) {
		got = h1_parse_response(buf, k, m, &r1, h1, NHDRS, NULL);
		if (got != H1_INCOMPLETE && got != want)
			fail_msg("response prefix %zu: got %d, want %d", k, got, want);
		if (got < 0 && got != H1_INCOMPLETE)
			break;
	}
	got = h1_parse_response(buf, len, m, &r1, h1, NHDRS, NULL);
	assert_int_equal(got, want);
	if (want > 0) {
		for (k = 0; k < r0.n_headers; k++)
			assert_ptr_equal(h0[k].name, h1[k].name);
		r1.headers = h0;
		assert_resp_same(&r0, &r1);
	}
	free(buf);
}

static void test_response_good(void **state)
{
	struct h1_header h[NHDRS];
	struct h1_response r;
	struct h1_body b;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(good_resp); i++) {
		const struct resp_case *c = &good_resp[i];
		char *buf = dup_exact(c->in, c->len);
		int n;

		h1_response_init(&r);
		n = h1_parse_response(buf, c->len, c->req_method, &r, h, NHDRS, NULL);
		if (n != (int)c->len)
			fail_msg("good response %zu: got %d (%s)", i, n, h1_error_reason(n));
		assert_int_equal(r.status, c->status);
		assert_true(span_eq(r.reason, r.reason_len, c->reason));
		assert_int_equal(r.minor_version, c->minor);
		assert_int_equal(r.content_length, c->cl);
		assert_int_equal(r.chunked, c->chunked);
		assert_int_equal(r.close_delimited, c->close_delimited);
		assert_int_equal(r.no_body, c->no_body);
		assert_int_equal(r.interim, c->interim);
		assert_int_equal(r.tunnel, c->tunnel);
		assert_int_equal(r.keep_alive, c->keep_alive);
		/* body framing follows */
		h1_body_init_response(&b, &r, NULL);
		assert_int_equal(h1_body_done(&b), c->no_body || c->cl == 0);
		assert_int_equal(b.kind, c->chunked           ? H1_BODY_CHUNKED
					 : c->close_delimited ? H1_BODY_CLOSE
							      : H1_BODY_LENGTH);
		free(buf);
		run_incremental_resp(c->in, c->len, c->req_method);
	}
}

static const struct bad_case bad_resp[] = {
	{ S("HTTP/1.1 99 X\r\n\r\n"), H1_E_STATUS, 400 },
	{ S("HTTP/1.1 099 X\r\n\r\n"), H1_E_STATUS, 400 },
	{ S("HTTP/1.1 600 X\r\n\r\n"), H1_E_STATUS, 400 },
	{ S("HTTP/1.1 2000 OK\r\n\r\n"), H1_E_STATUS, 400 },
	{ S("HTTP/1.1 20a OK\r\n\r\n"), H1_E_STATUS, 400 },
	{ S("HTTP/1.1\r\n\r\n"), H1_E_STATUS, 400 },
	{ S("HTTP/1.1  200 OK\r\n\r\n"), H1_E_STATUS, 400 },
	{ S("HTTP/2 200\r\n\r\n"), H1_E_VERSION, 400 },
	{ S("HTTP/2.0 200 OK\r\n\r\n"), H1_E_VERSION_UNSUPPORTED, 505 },
	{ S("ICY 200 OK\r\n\r\n"), H1_E_VERSION, 400 },
	{ S("\r\nHTTP/1.1 200 OK\r\n\r\n"), H1_E_VERSION, 400 },
	{ S("HTTP/1.1 200 O\x01K\r\n\r\n"), H1_E_REASON, 400 },
	{ S("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), H1_E_BARE_LF, 400 },
	{ S("HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n"), H1_E_BARE_CR, 400 },
	{ S("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), H1_E_CL_AND_TE, 400 },
	{ S("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), H1_E_TE_HTTP10, 400 },
	{ S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), H1_E_TE_NOT_CHUNKED, 400 },
	{ S("HTTP/1.1 200 OK\r\nTransfer-Encoding: br\r\n\r\n"), H1_E_TE_UNKNOWN, 501 },
	{ S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, , chunked\r\n\r\n"), H1_E_TE_INVALID, 400 },
	{ S("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), H1_E_CL_CONFLICT, 400 },
	{ S("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), H1_E_OBS_FOLD, 400 },
	{ S("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"), H1_E_HEADER_WS, 400 },
};

static void test_response_bad(void **state)
{
	struct h1_header h[NHDRS];
	struct h1_response r;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(bad_resp); i++) {
		const struct bad_case *c = &bad_resp[i];
		char *buf = dup_exact(c->in, c->len);
		int got;

		h1_response_init(&r);
		got = h1_parse_response(buf, c->len, H1_M_GET, &r, h, NHDRS, NULL);
		if (got != c->err)
			fail_msg("bad response %zu: got %d (%s), want %d", i, got, h1_error_reason(got), c->err);
		assert_int_equal(h1_error_status(got), c->status);
		free(buf);
		run_incremental_resp(c->in, c->len, H1_M_GET);
	}
}

/* 100 Continue then the final response, back to back in one buffer. */
static void test_response_interim_then_final(void **state)
{
	static const char in[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
				 "Content-Length: 2\r\n\r\nok";
	struct h1_header h[8];
	struct h1_response r;
	struct h1_body b;
	size_t used;
	int n, m;

	(void)state;
	h1_response_init(&r);
	n = h1_parse_response(in, sizeof(in) - 1, H1_M_POST, &r, h, 8, NULL);
	assert_int_equal(n, 25);
	assert_true(r.interim);
	h1_response_init(&r);
	m = h1_parse_response(in + n, sizeof(in) - 1 - (size_t)n, H1_M_POST, &r, h, 8, NULL);
	assert_true(m > 0);
	assert_int_equal(r.status, 201);
	h1_body_init_response(&b, &r, NULL);
	assert_int_equal(h1_body_feed(&b, in + n + m, 2, &used, NULL, NULL), 1);
	assert_int_equal(used, 2);
}

/* ---- bodies ------------------------------------------------------------------ */

static void test_body_length(void **state)
{
	struct h1_body b;
	size_t used, off, dlen;

	(void)state;
	h1_body_init(&b, 10, false, NULL);
	assert_false(h1_body_done(&b));
	assert_int_equal(h1_body_feed(&b, "0123", 4, &used, &off, &dlen), 0);
	assert_int_equal(used, 4);
	assert_int_equal(dlen, 4);
	assert_int_equal(h1_body_eof(&b), H1_E_BODY_TRUNCATED);
	assert_int_equal(h1_body_feed(&b, "456789NEXT", 10, &used, &off, &dlen), 1);
	assert_int_equal(used, 6);
	assert_int_equal(off, 0);
	assert_int_equal(dlen, 6);
	assert_true(h1_body_done(&b));
	assert_int_equal(h1_body_eof(&b), 1);
	assert_int_equal(h1_body_feed(&b, "x", 1, &used, NULL, NULL), 1);
	assert_int_equal(used, 0);

	h1_body_init(&b, 0, false, NULL);
	assert_true(h1_body_done(&b));

	/* close-delimited: everything is body, eof ends it cleanly */
	h1_body_init(&b, -1, false, NULL);
	assert_int_equal(b.kind, H1_BODY_CLOSE);
	assert_int_equal(h1_body_feed(&b, "abc", 3, &used, &off, &dlen), 0);
	assert_int_equal(used, 3);
	assert_int_equal(dlen, 3);
	assert_int_equal(h1_body_eof(&b), 1);
}

static const struct chunk_case {
	const char *in;
	size_t len;
	const char *data; /* decoded payload */
	size_t body_len;  /* where the body ends; 0: all of in */
} good_chunks[] = {
	{ S("5\r\nhello\r\n0\r\n\r\n"), "hello", 0 },
	{ S("5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), "hello", 15 },
	{ S("0\r\n\r\n"), "", 0 },
	{ S("A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"), "01234567890123456789", 0 },
	{ S("0005\r\nhello\r\n000\r\n\r\n"), "hello", 0 },
	{ S("5;foo=bar;baz\r\nhello\r\n6 ; q=\"a\\\"b;c\" ;r = s\r\n world\r\n0;last\r\n"
	    "Trailer-A: 1\r\nTrailer-B: x\ty\r\nEmpty:\r\n\r\n"),
	  "hello world", 0 },
	{ S("3;a=\"x\";b;c=\"\"\r\nabc\r\n0\r\n\r\n"), "abc", 0 },
	{ S("3;a=\"\"\r\nabc\r\n0;x=\"\\\t\xc3\xa9\"\r\n\r\n"), "abc", 0 },
	{ S("1\r\n\r\r\n2\r\n\r\n\r\n0\r\n\r\n"), "\r\r\n", 0 },
};

/* Feeds in one call, byte by byte, and with data spans; all must agree. */
static void run_chunks(const struct chunk_case *c)
{
	size_t want = c->body_len ? c->body_len : c->len, used, off, dlen, pos, k;
	char *buf = dup_exact(c->in, c->len), data[256];
	struct h1_body b;
	int r;

	h1_body_init(&b, -1, true, NULL);
	r = h1_body_feed(&b, buf, c->len, &used, NULL, NULL);
	if (r != 1 || used != want)
		fail_msg("chunked '%s': got %d (%s) used %zu, want %zu", c->in, r, h1_error_reason(r), used, want);

	/* byte by byte */
	h1_body_init(&b, -1, true, NULL);
	for (k = 0; k < c->len; k++) {
		r = h1_body_feed(&b, buf + k, 1, &used, NULL, NULL);
		if (r == 1)
			break;
		assert_int_equal(r, 0);
		assert_int_equal(used, 1);
		assert_int_equal(h1_body_eof(&b), H1_E_BODY_TRUNCATED);
	}
	assert_int_equal(r, 1);
	assert_int_equal(k + 1, want);

	/* data spans, in two reads split at every point */
	for (k = 0; k <= c->len; k++) {
		size_t dn = 0, part;

		h1_body_init(&b, -1, true, NULL);
		pos = 0;
		r = 0;
		for (part = 0; part < 2 && r == 0; part++) {
			size_t end = part == 0 ? k : c->len;

			while (pos < end) {
				r = h1_body_feed(&b, buf + pos, end - pos, &used, &off, &dlen);
				assert_true(r >= 0);
				assert_true(off + dlen <= used);
				assert_true(dn + dlen < sizeof(data));
				memcpy(data + dn, buf + pos + off, dlen);
				dn += dlen;
				pos += used;
				if (r == 1)
					break;
			}
		}
		assert_int_equal(r, 1);
		assert_int_equal(pos, want);
		assert_int_equal(dn, strlen(c->data));
		assert_memory_equal(data, c->data, dn);
	}
	free(buf);
}

static void test_body_chunked(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(good_chunks); i++)
		run_chunks(&good_chunks[i]);
}

static const struct bad_case bad_chunks[] = {
	{ S("x\r\n"), H1_E_CHUNK_SIZE, 400 },
	{ S("\r\n"), H1_E_CHUNK_SIZE, 400 },
	{ S("-5\r\n"), H1_E_CHUNK_SIZE, 400 },
	{ S("0x5\r\n"), H1_E_CHUNK_SIZE, 400 },
	{ S("5 \r\nhello\r\n0\r\n\r\n"), H1_E_CHUNK_SIZE, 400 },
	{ S(" 5\r\nhello\r\n0\r\n\r\n"), H1_E_CHUNK_SIZE, 400 },
	{ S("5\t\r\nhello\r\n0\r\n\r\n"), H1_E_CHUNK_SIZE, 400 },
	{ S("+5\r\n"), H1_E_CHUNK_SIZE, 400 },
	{ S("10000000000000000\r\n"), H1_E_CHUNK_SIZE, 400 },
	{ S("5\nhello\r\n0\r\n\r\n"), H1_E_BARE_LF, 400 },
	{ S("5\rhello\r\n0\r\n\r\n"), H1_E_BARE_CR, 400 },
	{ S("5\r\nhelloX\r\n0\r\n\r\n"), H1_E_CHUNK_DATA, 400 },
	{ S("5\r\nhello\n0\r\n\r\n"), H1_E_CHUNK_DATA, 400 },
	{ S("5\r\nhello\r\r\n0\r\n\r\n"), H1_E_CHUNK_DATA, 400 },
	{ S("5\r\nhell\r\n0\r\n\r\n"), H1_E_CHUNK_DATA, 400 },
	{ S("5;\r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;=x\r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;a=\r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;a=\"x\r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;a=\"x\"y\r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;a \r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;a=b \r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;a=b c\r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;a@b\r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;a=\"\x01\"\r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;a=\"\\\x01\"\r\nhello\r\n"), H1_E_CHUNK_EXT, 400 },
	{ S("5;a\nhello\r\n"), H1_E_BARE_LF, 400 },
	{ S("5;a=\"x\ny\"\r\nhello\r\n"), H1_E_BARE_LF, 400 },
	{ S("0\r\nX : y\r\n\r\n"), H1_E_HEADER_WS, 400 },
	{ S("0\r\n y\r\n\r\n"), H1_E_OBS_FOLD, 400 },
	{ S("0\r\nX: a\x01\r\n\r\n"), H1_E_HEADER_VALUE, 400 },
	{ S("0\r\n: y\r\n\r\n"), H1_E_HEADER_NAME, 400 },
	{ S("0\r\nX\r\n\r\n"), H1_E_HEADER_NAME, 400 },
	{ S("0\r\nX: y\n\r\n"), H1_E_BARE_LF, 400 },
	{ S("0\r\nX: y\r\r\n"), H1_E_BARE_CR, 400 },
	{ S("0\r\n\r\r"), H1_E_BARE_CR, 400 },
	{ S("0\r\n\n"), H1_E_BARE_LF, 400 },
};

static void test_body_chunked_bad(void **state)
{
	struct h1_body b;
	size_t i, k, used;
	int r;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(bad_chunks); i++) {
		const struct bad_case *c = &bad_chunks[i];
		char *buf = dup_exact(c->in, c->len);

		h1_body_init(&b, -1, true, NULL);
		r = h1_body_feed(&b, buf, c->len, &used, NULL, NULL);
		if (r != c->err)
			fail_msg("bad chunked %zu: got %d (%s), want %d (%s)", i, r, h1_error_reason(r), c->err,
				 h1_error_reason(c->err));
		assert_int_equal(h1_error_status(r), c->status);
		/* sticky */
		assert_int_equal(h1_body_feed(&b, "0\r\n\r\n", 5, &used, NULL, NULL), c->err);
		assert_int_equal(h1_body_eof(&b), H1_E_BODY_TRUNCATED);
		/* byte by byte gives the same error */
		h1_body_init(&b, -1, true, NULL);
		for (k = 0, r = 0; k < c->len && r == 0; k++)
			r = h1_body_feed(&b, buf + k, 1, &used, NULL, NULL);
		assert_int_equal(r, c->err);
		free(buf);
	}
}

static void test_body_chunked_limits(void **state)
{
	const struct h1_limits lim = { .max_chunk_line = 16, .max_header_bytes = 24, .max_headers = 2 };
	struct h1_body b;
	size_t used;
	char *big;

	(void)state;
	/* 16 bytes with CRLF pass, 17 do not */
	h1_body_init(&b, -1, true, &lim);
	assert_int_equal(h1_body_feed(&b, S("1;abcdefghijkl\r\nx\r\n0\r\n\r\n"), &used, NULL, NULL), 1);
	h1_body_init(&b, -1, true, &lim);
	assert_int_equal(h1_body_feed(&b, S("1;abcdefghijklm\r\nx\r\n"), &used, NULL, NULL), H1_E_CHUNK_LINE_TOO_LONG);
	h1_body_init(&b, -1, true, &lim);
	assert_int_equal(h1_body_feed(&b, S("00000000000000000001\r\n"), &used, NULL, NULL), H1_E_CHUNK_LINE_TOO_LONG);
	/* trailers: 24 bytes including the final CRLF, 2 fields */
	h1_body_init(&b, -1, true, &lim);
	assert_int_equal(h1_body_feed(&b, S("0\r\nA: 12345678901234567\r\n\r\n"), &used, NULL, NULL), 1);
	h1_body_init(&b, -1, true, &lim);
	assert_int_equal(h1_body_feed(&b, S("0\r\nA: 123456789012345678\r\n\r\n"), &used, NULL, NULL),
			 H1_E_TRAILERS_TOO_LARGE);
	h1_body_init(&b, -1, true, &lim);
	assert_int_equal(h1_body_feed(&b, S("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), &used, NULL, NULL),
			 H1_E_TRAILERS_TOO_LARGE);
	assert_int_equal(h1_error_status(H1_E_TRAILERS_TOO_LARGE), 431);

	/* defaults: a 4096-byte size line passes, 4097 does not; sizes up to 2^64-1 */
	big = malloc(5000);
	assert_non_null(big);
	memset(big, '0', 4094);
	memcpy(big + 4094, "\r\n", 2);
	h1_body_init(&b, -1, true, NULL);
	assert_int_equal(h1_body_feed(&b, big, 4096, &used, NULL, NULL), 0);
	memset(big, '0', 4095);
	memcpy(big + 4095, "\r\n", 2);
	h1_body_init(&b, -1, true, NULL);
	assert_int_equal(h1_body_feed(&b, big, 4097, &used, NULL, NULL), H1_E_CHUNK_LINE_TOO_LONG);
	free(big);
	h1_body_init(&b, -1, true, NULL);
	assert_int_equal(h1_body_feed(&b, S("ffffffffffffffff\r\nabc"), &used, NULL, NULL), 0);
	assert_true(b.remaining == UINT64_MAX - 3);
	assert_int_equal(h1_body_eof(&b), H1_E_BODY_TRUNCATED);
}

/* A whole POST with a chunked body from one buffer, request then body. */
static void test_request_chunked_end_to_end(void **state)
{
	static const char in[] = "POST /upload HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n"
				 "Expect: 100-continue\r\n\r\n"
				 "4;ext=1\r\nWiki\r\n7\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\n"
				 "Checksum: abc\r\n\r\n";
	struct h1_header h[8];
	struct h1_request r;
	struct h1_body b;
	size_t used, off, dlen, pos;
	char data[64];
	size_t dn = 0;
	int n, rc = 0;

	(void)state;
	n = parse_req(in, sizeof(in) - 1, &r, h, NULL);
	assert_true(n > 0);
	assert_true(r.chunked);
	assert_true(r.expect_continue);
	h1_body_init_request(&b, &r, NULL);
	for (pos = (size_t)n; pos < sizeof(in) - 1 && rc == 0; pos += used) {
		rc = h1_body_feed(&b, in + pos, sizeof(in) - 1 - pos, &used, &off, &dlen);
		memcpy(data + dn, in + pos + off, dlen);
		dn += dlen;
	}
	assert_int_equal(rc, 1);
	assert_int_equal(pos, sizeof(in) - 1);
	assert_int_equal(dn, 22);
	assert_memory_equal(data, "Wikipedia in \r\nchunks.", 22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_good),
		cmocka_unit_test(test_request_headers),
		cmocka_unit_test(test_request_value_bytes),
		cmocka_unit_test(test_request_incremental),
		cmocka_unit_test(test_request_buffer_moved),
		cmocka_unit_test(test_request_pipelined),
		cmocka_unit_test(test_request_bad),
		cmocka_unit_test(test_request_limits),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_response_good),
		cmocka_unit_test(test_response_bad),
		cmocka_unit_test(test_response_interim_then_final),
		cmocka_unit_test(test_body_length),
		cmocka_unit_test(test_body_chunked),
		cmocka_unit_test(test_body_chunked_bad),
		cmocka_unit_test(test_body_chunked_limits),
		cmocka_unit_test(test_request_chunked_end_to_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
