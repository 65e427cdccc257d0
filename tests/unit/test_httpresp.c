// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/codec/httpresp.c: a table of responses, each fed whole, byte by
 * byte, and split in two at every point, which must all give the same
 * answer; then a table of failures with their errno and reason.
 *
 * An answer is written as a string: "[line][line]" for lines, "{body}" for a
 * body delivered whole, then " END 200" or " E<errno>", so one comparison
 * checks the events, their order, their bytes and the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/httpresp.h"
#include "lib/buf.h"

struct tcase {
	const char *name;
	enum hresp_mode mode;
	size_t max_body, max_line; /* 0: defaults */
	const char *wire;
	bool eof;         /* the server closes (close_notify) after the wire */
	const char *want; /* the answer */
	const char *why;  /* failures: a piece of hresp_error */
};

/* Feeds wire in the pieces cuts say (increasing offsets), then eof if asked. */
static void drive(const struct tcase *c, const char *wire, size_t len, const size_t *cuts, size_t ncuts,
		  struct buf *ans, char *why, size_t whylen)
{
	struct hresp *r = malloc(sizeof(*r));
	struct hresp_out out;
	size_t i, off = 0, used;
	int ev = HRESP_MORE;
	bool ended = false;

	assert_non_null(r);
	hresp_init(r, c->mode, c->max_body, c->max_line);
	buf_reset(ans);
	for (i = 0; i <= ncuts && !ended; i++) {
		size_t end = i < ncuts ? cuts[i] : len;
		const char *p = wire + off;
		size_t n = end - off;

		for (;;) {
			ev = hresp_feed(r, p, n, &used, &out);
			assert_true(used <= n);
			p += used;
			n -= used;
			if (ev == HRESP_MORE) {
				assert_int_equal(n, 0);
				break;
			}
			if (ev == HRESP_LINE) {
				assert_int_equal(out.data[out.len], '\0');
				buf_add(ans, "[", 1);
				buf_add(ans, out.data, out.len);
				buf_add(ans, "]", 1);
				continue;
			}
			ended = true;
			break;
		}
		off = end;
	}
	if (!ended && c->eof) {
		ev = hresp_eof(r, &out);
		ended = true;
	}
	if (ev == HRESP_END) {
		if (out.whole) {
			assert_int_equal(out.data[out.len], '\0');
			buf_add(ans, "{", 1);
			buf_add(ans, out.data, out.len);
			buf_add(ans, "}", 1);
		}
		buf_printf(ans, " END %d", out.status);
		/* sticky */
		assert_int_equal(hresp_feed(r, "x", 1, &used, &out), HRESP_END);
		assert_int_equal(used, 0);
	} else if (ev < 0) {
		buf_printf(ans, " E%d", -ev);
		snprintf(why, whylen, "%s", hresp_error(r));
		assert_int_equal(hresp_feed(r, "x", 1, &used, &out), ev);
		assert_int_equal(hresp_eof(r, &out), ev);
	} else {
		buf_puts(ans, " MORE");
	}
	hresp_free(r);
	free(r);
}

static void check(const struct tcase *c)
{
	size_t len = strlen(c->wire), i, *cuts;
	struct buf ans = { 0 };
	char why[HRESP_ERR_MAX] = "";

	drive(c, c->wire, len, NULL, 0, &ans, why, sizeof(why));
	if (strcmp(ans.p, c->want) != 0)
		fail_msg("%s (whole): got '%s', want '%s' (%s)", c->name, ans.p, c->want, why);
	if (c->why && !strstr(why, c->why))
		fail_msg("%s: reason '%s', want '%s'", c->name, why, c->why);
	/* every split in two */
	for (i = 0; i <= len; i++) {
		drive(c, c->wire, len, &i, 1, &ans, why, sizeof(why));
		if (strcmp(ans.p, c->want) != 0)
			fail_msg("%s (split at %zu): got '%s', want '%s' (%s)", c->name, i, ans.p, c->want, why);
	}
	/* byte by byte */
	cuts = malloc((len + 1) * sizeof(*cuts));
	assert_non_null(cuts);
	for (i = 0; i < len; i++)
		cuts[i] = i + 1;
	drive(c, c->wire, len, cuts, len, &ans, why, sizeof(why));
	if (strcmp(ans.p, c->want) != 0)
		fail_msg("%s (byte by byte): got '%s', want '%s' (%s)", c->name, ans.p, c->want, why);
	free(cuts);
	buf_free(&ans);
}

#define W HRESP_WHOLE
#define L HRESP_LINES
#define OK200 "HTTP/1.1 200 OK\r\n"
#define CHUNKED OK200 "Transfer-Encoding: chunked\r\n\r\n"

static void test_ok(void **state)
{
	static const struct tcase cases[] = {
		{ "length", W, 0, 0, OK200 "Content-Length: 5\r\n\r\nhello", false, "{hello} END 200", NULL },
		{ "length 0", W, 0, 0, OK200 "Content-Length: 0\r\n\r\n", false, "{} END 200", NULL },
		{ "bytes after the body are not ours", W, 0, 0,
		  OK200 "Content-Length: 2\r\n\r\nhiHTTP/1.1 500 x\r\n\r\n", false, "{hi} END 200", NULL },
		{ "chunked, extensions and trailers ignored", W, 0, 0,
		  CHUNKED "5;name=value;x\r\nhello\r\n6 ; q=\"a b\"\r\n world\r\n0\r\nX-Trailer: a\r\n\r\n", false,
		  "{hello world} END 200", NULL },
		{ "chunked, upper-case hex and leading zeros", W, 0, 0, CHUNKED "00A\r\n0123456789\r\n0000\r\n\r\n",
		  false, "{0123456789} END 200", NULL },
		{ "close-delimited", W, 0, 0, OK200 "Content-Type: application/json\r\n\r\n{\"a\":1}", true,
		  "{{\"a\":1}} END 200", NULL },
		{ "interim 100 first", W, 0, 0,
		  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false, "{x} END 200",
		  NULL },
		{ "204", W, 0, 0, "HTTP/1.1 204 No Content\r\n\r\n", false, "{} END 204", NULL },
		{ "404 whole", W, 0, 0, "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno\n", false,
		  "{no\n} END 404", NULL },
		{ "Content-Encoding identity", W, 0, 0,
		  OK200 "Content-Encoding: identity\r\nContent-Length: 1\r\n\r\nx", false, "{x} END 200", NULL },
		{ "exactly max_body", W, 4, 0, CHUNKED "2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n", false, "{abcd} END 200",
		  NULL },
		{ "exactly max_body, by length", W, 4, 0, OK200 "Content-Length: 4\r\n\r\nabcd", false,
		  "{abcd} END 200", NULL },

		{ "lines, chunked", L, 0, 0, CHUNKED "3\r\na\nb\r\n4\r\nb\n\nc\r\n2\r\nc\n\r\n0\r\n\r\n", false,
		  "[a][bb][][cc] END 200", NULL },
		{ "lines, length", L, 0, 0, OK200 "Content-Length: 6\r\n\r\na\nbb\n\n", false, "[a][bb][] END 200",
		  NULL },
		{ "lines, close-delimited", L, 0, 0, OK200 "\r\n{\"a\":1}\n{\"b\":2}\n", true,
		  "[{\"a\":1}][{\"b\":2}] END 200", NULL },
		{ "lines, CR kept", L, 0, 0, OK200 "Content-Length: 3\r\n\r\na\r\n", false, "[a\r] END 200", NULL },
		{ "lines, no body", L, 0, 0, OK200 "Content-Length: 0\r\n\r\n", false, " END 200", NULL },
		{ "lines, exactly max_line", L, 0, 3, CHUNKED "8\r\nabc\nabc\n\r\n0\r\n\r\n", false,
		  "[abc][abc] END 200", NULL },
		{ "lines, a 401 is whole", L, 0, 0, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\na\nb\n",
		  false, "{a\nb\n} END 401", NULL },
		{ "lines, a 410 is whole, even unterminated", L, 0, 0,
		  "HTTP/1.1 410 Gone\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", false, "{x} END 410",
		  NULL },
		{ "lines, a 500 over max_line is fine (max_body bounds it)", L, 0, 2,
		  "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nabcde", false, "{abcde} END 500",
		  NULL },
		{ "incomplete", L, 0, 0, CHUNKED "3\r\na\nb", false, "[a] MORE", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(&cases[i]);
}

static void test_fail(void **state)
{
	static char big_head[HRESP_HEAD_MAX + 2048], many[64 * 8 + 64], long_ext[4200 + 64];
	struct tcase cases[] = {
		{ "not HTTP", W, 0, 0, "SSH-2.0-OpenSSH_9.2\r\n\r\n", false, " E71", "bad response head" },
		{ "HTTP/2.0", W, 0, 0, "HTTP/2.0 200 OK\r\n\r\n", false, " E71", "bad response head" },
		{ "bare LF", W, 0, 0, "HTTP/1.1 200 OK\nContent-Length: 0\n\n", false, " E71", "bad response head" },
		{ "two lengths", W, 0, 0, OK200 "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx", false, " E71",
		  NULL },
		{ "length and chunked", W, 0, 0, OK200 "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", false,
		  " E71", NULL },
		{ "gzip", W, 0, 0, OK200 "Content-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx", false, " E71",
		  "Content-Encoding 'gzip'" },
		{ "gzip, chunked", W, 0, 0, OK200 "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", false, " E71",
		  "transfer coding" },
		{ "gzip transfer coding", W, 0, 0, OK200 "Transfer-Encoding: gzip\r\n\r\nxx", true, " E71",
		  "transfer coding" },
		{ "101", W, 0, 0, "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
		  false, " E71", "101" },
		{ "chunk size not hex", W, 0, 0, CHUNKED "g\r\n", false, " E71", "bad chunked body" },
		{ "chunk size 0x", W, 0, 0, CHUNKED "0x5\r\nhello\r\n0\r\n\r\n", false, " E71", "bad chunked body" },
		{ "chunk size after a space", W, 0, 0, CHUNKED " 5\r\nhello\r\n0\r\n\r\n", false, " E71", NULL },
		{ "chunk size empty", W, 0, 0, CHUNKED "\r\n", false, " E71", NULL },
		{ "chunk size over 64 bits", W, 0, 0, CHUNKED "10000000000000000\r\n", false, " E71", NULL },
		{ "chunk size negative", W, 0, 0, CHUNKED "-1\r\n", false, " E71", NULL },
		{ "chunk data without CRLF", W, 0, 0, CHUNKED "1\r\nab\r\n0\r\n\r\n", false, " E71", NULL },
		{ "bad chunk extension", W, 0, 0, CHUNKED "1;=x\r\na\r\n0\r\n\r\n", false, " E71", NULL },

		{ "body over max_body, by length", W, 3, 0, OK200 "Content-Length: 4\r\n\r\nabcd", false, " E90",
		  "Content-Length 4) is over max_body (3" },
		{ "body over max_body, chunked", W, 3, 0, CHUNKED "2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n", false, " E90",
		  "over max_body (3" },
		{ "body over max_body, close-delimited", W, 3, 0, OK200 "\r\nabcd", true, " E90", "max_body" },
		{ "line over max_line", L, 0, 3, CHUNKED "9\r\nabc\nabcd\n\r\n0\r\n\r\n", false, "[abc] E90",
		  "max_line (3 bytes" },
		{ "line over max_line before its newline comes", L, 0, 3, CHUNKED "4\r\nabcd\r\n", false, " E90",
		  NULL },
		{ "a 404 over max_body in lines mode", L, 3, 0, "HTTP/1.1 404 x\r\nContent-Length: 4\r\n\r\nabcd",
		  false, " E90", NULL },
		{ "head over 16 KiB", W, 0, 0, big_head, false, " E90", "head" },
		{ "too many headers", W, 0, 0, many, false, " E90", NULL },
		{ "chunk line over 4 KiB", W, 0, 0, long_ext, false, " E90", NULL },

		{ "lines: body ends inside a line", L, 0, 0, CHUNKED "3\r\na\nb\r\n0\r\n\r\n", false, "[a] E32",
		  "inside a line (1 bytes" },
		{ "lines: length ends inside a line", L, 0, 0, OK200 "Content-Length: 3\r\n\r\na\nb", false, "[a] E32",
		  NULL },
		{ "lines: close ends inside a line", L, 0, 0, OK200 "\r\na\nb", true, "[a] E32", NULL },
		{ "eof without an answer", W, 0, 0, "", true, " E32", "without answering" },
		{ "eof inside the head", W, 0, 0, "HTTP/1.1 200 OK\r\nContent-Le", true, " E32",
		  "inside the response head" },
		{ "eof inside a length body", W, 0, 0, OK200 "Content-Length: 5\r\n\r\nhel", true, " E32",
		  "inside the Content-Length body" },
		{ "eof inside a chunk", L, 0, 0, CHUNKED "5\r\na\nbc", true, "[a] E32", "inside the chunked body" },
		{ "eof before the last chunk", W, 0, 0, CHUNKED "1\r\na\r\n", true, " E32", "inside the chunked body" },
		{ "eof inside the trailers", W, 0, 0, CHUNKED "0\r\nX: y\r\n", true, " E32", NULL },
	};
	size_t i, n;

	(void)state;
	/* a head of 16 KiB + a bit, in field lines of 1000 bytes */
	n = (size_t)snprintf(big_head, sizeof(big_head), OK200);
	while (n < HRESP_HEAD_MAX + 10)
		n += (size_t)snprintf(big_head + n, sizeof(big_head) - n, "X-Pad: %0990d\r\n", 0);
	snprintf(big_head + n, sizeof(big_head) - n, "\r\n");
	n = (size_t)snprintf(many, sizeof(many), OK200);
	for (i = 0; i <= HRESP_MAX_HEADERS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "X: %zu\r\n", i % 10);
	snprintf(many + n, sizeof(many) - n, "\r\n");
	n = (size_t)snprintf(long_ext, sizeof(long_ext), CHUNKED "1;x=");
	memset(long_ext + n, 'a', 4200);
	snprintf(long_ext + n + 4200, sizeof(long_ext) - n - 4200, "\r\na\r\n0\r\n\r\n");

	assert_int_equal(EPROTO, 71);
	assert_int_equal(EMSGSIZE, 90);
	assert_int_equal(EPIPE, 32);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(&cases[i]);
}

/* The body buffer grows to what is needed, and with a known length once, to the exact size. */
static void test_memory(void **state)
{
	static const char head[] = OK200 "Content-Length: 100000\r\n\r\n";
	struct hresp *r = malloc(sizeof(*r));
	struct hresp_out out;
	char *body = malloc(100000);
	size_t used;

	(void)state;
	assert_non_null(r);
	assert_non_null(body);
	memset(body, 'x', 100000);
	hresp_init(r, HRESP_WHOLE, 0, 0);
	assert_int_equal(hresp_status(r), 0);
	assert_int_equal(hresp_feed(r, head, sizeof(head) - 1, &used, &out), HRESP_MORE);
	assert_int_equal(hresp_status(r), 200);
	assert_int_equal(r->acc_cap, 100001); /* one allocation, the exact size */
	assert_int_equal(hresp_feed(r, body, 100000, &used, &out), HRESP_END);
	assert_int_equal(r->acc_cap, 100001);
	assert_true(out.whole);
	assert_int_equal(out.len, 100000);
	hresp_free(r);

	/* lines: the buffer holds one line, never the stream */
	hresp_init(r, HRESP_LINES, 0, 100);
	assert_int_equal(hresp_feed(r, CHUNKED, sizeof(CHUNKED) - 1, &used, &out), HRESP_MORE);
	{
		int i, lines = 0;

		for (i = 0; i < 1000; i++) {
			static const char chunk[] = "32\r\n0123456789012345678901234567890123456789012345678\n\r\n";
			const char *p = chunk;
			size_t n = sizeof(chunk) - 1;
			int ev;

			while ((ev = hresp_feed(r, p, n, &used, &out)) == HRESP_LINE) {
				lines++;
				p += used;
				n -= used;
			}
			assert_int_equal(ev, HRESP_MORE);
		}
		assert_int_equal(lines, 1000);
		assert_true(r->acc_cap <= 101);
	}
	hresp_free(r);
	free(r);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok),
		cmocka_unit_test(test_fail),
		cmocka_unit_test(test_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
