// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/preamble.c: exact wire bytes (golden vectors), round trips,
 * decoding one byte at a time, pipelined application bytes, and a table of
 * failures each with the reason and the number of bytes after which it must
 * already be detected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "codec/preamble.h"

static struct preamble mk(const char *addr, enum preamble_proto proto, const char *svc, const char *claimed)
{
	struct preamble p;
	char err[128];

	memset(&p, 0, sizeof(p));
	if (addr_parse(addr, false, &p.target, err, sizeof(err)))
		fail_msg("%s: %s", addr, err);
	p.proto = proto;
	if (svc)
		strcpy(p.service, svc);
	if (claimed)
		strcpy(p.claimed_id, claimed);
	return p;
}

/* --- golden vectors: the bytes are the contract between agent versions ------ */

static void test_golden(void **state)
{
	static const uint8_t v4_min[] = { 'W', 'E', 'F', 'T', 1, 0x00, 0x00, 0x07, 4, 0x1f, 0x90, 10, 0, 0, 7 };
	static const uint8_t v6_all[] = {
		'W',  'E', 'F', 'T', 1,   0x07, 0x00, 0x1e, 6, 0x01, 0xbb, 0x20, 0x01, 0x0d,
		0xb8, 0,   0,   0,   0,   0,    0,    0,    0, 0,    0,    0,    0x01, 3, /* http/2 */
		3,    'w', 'e', 'b',                                                      /* service */
		5,    's', 'p', 'i', 'f', 'f',                                            /* claimed */
	};
	struct preamble p = mk("10.0.0.7:8080", PREAMBLE_PROTO_NONE, NULL, NULL), q;
	uint8_t buf[PREAMBLE_MAX];
	enum preamble_err e = PREAMBLE_ERR__COUNT;
	char a[ADDR_STRLEN];

	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), sizeof(v4_min));
	assert_memory_equal(buf, v4_min, sizeof(v4_min));
	assert_int_equal(preamble_decode(v4_min, sizeof(v4_min), &q, &e), sizeof(v4_min));
	assert_int_equal(e, PREAMBLE_OK);
	assert_int_equal(q.version, 1);
	assert_int_equal(q.flags, 0);
	assert_string_equal(addr_format(&q.target, a, sizeof(a)), "10.0.0.7:8080");
	assert_int_equal(q.proto, PREAMBLE_PROTO_NONE);
	assert_string_equal(q.service, "");
	assert_string_equal(q.claimed_id, "");

	p = mk("[2001:db8::1]:443", PREAMBLE_PROTO_HTTP2, "web", "spiff");
	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), sizeof(v6_all));
	assert_memory_equal(buf, v6_all, sizeof(v6_all));
	assert_int_equal(preamble_decode(v6_all, sizeof(v6_all), &q, &e), sizeof(v6_all));
	assert_int_equal(q.flags, PREAMBLE_F_KNOWN);
	assert_string_equal(addr_format(&q.target, a, sizeof(a)), "[2001:db8::1]:443");
	assert_int_equal(q.proto, PREAMBLE_PROTO_HTTP2);
	assert_string_equal(q.service, "web");
	assert_string_equal(q.claimed_id, "spiff");
}

/* --- round trips ---------------------------------------------------------------- */

static void test_roundtrip(void **state)
{
	static char long_svc[PREAMBLE_SERVICE_MAX + 1], long_id[PREAMBLE_CLAIMED_MAX + 1];
	struct {
		const char *addr;
		enum preamble_proto proto;
		const char *svc, *claimed;
		const char *want; /* addr_format after decode */
	} cases[] = {
		{ "127.0.0.1:80", PREAMBLE_PROTO_NONE, NULL, NULL, "127.0.0.1:80" },
		{ "198.18.0.2:65535", PREAMBLE_PROTO_TCP, NULL, NULL, "198.18.0.2:65535" },
		{ "[::1]:1", PREAMBLE_PROTO_HTTP1, "db", NULL, "[::1]:1" },
		{ "[fe80::1]:8443", PREAMBLE_PROTO_TLS, NULL, "spiffe://example.org/ns/a/sa/b", "[fe80::1]:8443" },
		{ "10.1.2.3:5432", PREAMBLE_PROTO_NONE, "a.b_c-d0", "x", "10.1.2.3:5432" },
		{ "10.1.2.3:5432", PREAMBLE_PROTO_HTTP2, long_svc, long_id, "10.1.2.3:5432" },
	};
	size_t i;

	memset(long_svc, 'a', PREAMBLE_SERVICE_MAX);
	memset(long_id, '~', PREAMBLE_CLAIMED_MAX);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct preamble p = mk(cases[i].addr, cases[i].proto, cases[i].svc, cases[i].claimed), q;
		uint8_t buf[PREAMBLE_MAX + 64];
		char a[ADDR_STRLEN];
		int n, k;

		n = preamble_encode(buf, sizeof(buf), &p);
		assert_true(n >= 15 && n <= PREAMBLE_MAX);
		/* too small a buffer: nothing written, -ENOSPC */
		assert_int_equal(preamble_encode(buf, (size_t)n - 1, &p), -ENOSPC);
		/* app bytes pipelined behind the preamble are left alone */
		memcpy(buf + n, "GET / HTTP/1.1\r\n", 16);
		assert_int_equal(preamble_decode(buf, (size_t)n + 16, &q, NULL), n);
		assert_string_equal(addr_format(&q.target, a, sizeof(a)), cases[i].want);
		assert_int_equal(q.proto, cases[i].proto);
		assert_string_equal(q.service, cases[i].svc ? cases[i].svc : "");
		assert_string_equal(q.claimed_id, cases[i].claimed ? cases[i].claimed : "");
		/* one byte at a time: need more until the last one */
		for (k = 0; k < n; k++)
			if (preamble_decode(buf, (size_t)k, &q, NULL) != -EAGAIN)
				fail_msg("case %zu: prefix of %d bytes did not ask for more", i, k);
	}
}

/* IPv4-mapped IPv6 is IPv4, on both sides, as everywhere in weft. */
static void test_v4_mapped(void **state)
{
	struct preamble p = mk("[::ffff:10.9.8.7]:80", PREAMBLE_PROTO_NONE, NULL, NULL), q;
	uint8_t buf[PREAMBLE_MAX], raw[] = { 'W', 'E', 'F', 'T', 1, 0, 0, 19,   6,    0,  80, 0, 0, 0,
					     0,   0,   0,   0,   0, 0, 0, 0xff, 0xff, 10, 9,  8, 7 };
	char a[ADDR_STRLEN];

	assert_int_equal(p.target.sa.sa_family, AF_INET); /* addr_parse folds it already */
	assert_int_equal(preamble_decode(raw, sizeof(raw), &q, NULL), (int)sizeof(raw));
	assert_int_equal(q.target.sa.sa_family, AF_INET);
	assert_string_equal(addr_format(&q.target, a, sizeof(a)), "10.9.8.7:80");
	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), 15);
}

/* --- failures ----------------------------------------------------------------- */

struct bad {
	const char *name;
	uint8_t bytes[64];
	size_t len;
	enum preamble_err err;
	size_t detect_at; /* the error must be reported given only this many bytes */
};

#define HDR(flags, n) 'W', 'E', 'F', 'T', 1, (flags), 0, (n)
#define V4(port_hi, port_lo) 4, (port_hi), (port_lo), 10, 0, 0, 1

static void test_decode_fail(void **state)
{
	static const struct bad cases[] = {
		{ "HTTP instead of a preamble", "GET / HTTP/1.1\r\n", 16, PREAMBLE_ERR_MAGIC, 1 },
		{ "TLS ClientHello (TLS inside TLS)", { 0x16, 0x03, 0x01, 0x02, 0x00 }, 5, PREAMBLE_ERR_MAGIC, 1 },
		{ "magic wrong in the last byte", "WEFX", 4, PREAMBLE_ERR_MAGIC, 4 },
		{ "lowercase magic", "weft", 4, PREAMBLE_ERR_MAGIC, 1 },
		{ "version 0", { 'W', 'E', 'F', 'T', 0 }, 5, PREAMBLE_ERR_VERSION, 5 },
		{ "version 2", { 'W', 'E', 'F', 'T', 2, 0, 0, 7 }, 8, PREAMBLE_ERR_VERSION, 5 },
		{ "unknown flag", { HDR(0x08, 7), V4(0, 80) }, 15, PREAMBLE_ERR_FLAGS, 6 },
		{ "all flags", { HDR(0xff, 7) }, 8, PREAMBLE_ERR_FLAGS, 6 },
		{ "body too short to hold a target", { HDR(0, 6) }, 8, PREAMBLE_ERR_LENGTH, 8 },
		{ "body length 0", { HDR(0, 0) }, 8, PREAMBLE_ERR_LENGTH, 8 },
		{ "body beyond PREAMBLE_MAX", { 'W', 'E', 'F', 'T', 1, 0, 0x01, 0xf9 }, 8, PREAMBLE_ERR_LENGTH, 8 },
		{ "body 65535", { 'W', 'E', 'F', 'T', 1, 0, 0xff, 0xff }, 8, PREAMBLE_ERR_LENGTH, 8 },
		{ "family 5", { HDR(0, 7), 5 }, 9, PREAMBLE_ERR_FAMILY, 9 },
		{ "family 0", { HDR(0, 7), 0, 0, 80, 10, 0, 0, 1 }, 15, PREAMBLE_ERR_FAMILY, 9 },
		{ "port 0", { HDR(0, 7), V4(0, 0) }, 15, PREAMBLE_ERR_PORT, 11 },
		{ "0.0.0.0", { HDR(0, 7), 4, 0, 80, 0, 0, 0, 0 }, 15, PREAMBLE_ERR_ADDR, 15 },
		{ "broadcast", { HDR(0, 7), 4, 0, 80, 255, 255, 255, 255 }, 15, PREAMBLE_ERR_ADDR, 15 },
		{ "multicast v4", { HDR(0, 7), 4, 0, 80, 239, 1, 2, 3 }, 15, PREAMBLE_ERR_ADDR, 15 },
		{ "::",
		  { HDR(0, 19), 6, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
		  27,
		  PREAMBLE_ERR_ADDR,
		  27 },
		{ "multicast v6",
		  { HDR(0, 19), 6, 0, 80, 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
		  27,
		  PREAMBLE_ERR_ADDR,
		  27 },
		{ "v4-mapped 0.0.0.0",
		  { HDR(0, 19), 6, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0 },
		  27,
		  PREAMBLE_ERR_ADDR,
		  27 },
		{ "v6 family, v4-sized body", { HDR(0, 7), 6, 0, 80, 0, 0, 0, 0 }, 15, PREAMBLE_ERR_TRUNCATED, 9 },
		{ "proto hint 0", { HDR(0x01, 8), V4(0, 80), 0 }, 16, PREAMBLE_ERR_PROTO, 16 },
		{ "proto hint 5", { HDR(0x01, 8), V4(0, 80), 5 }, 16, PREAMBLE_ERR_PROTO, 16 },
		{ "proto flag, no byte for it", { HDR(0x01, 7), V4(0, 80) }, 15, PREAMBLE_ERR_TRUNCATED, 15 },
		{ "service length 0", { HDR(0x02, 8), V4(0, 80), 0 }, 16, PREAMBLE_ERR_SERVICE, 16 },
		{ "service length 64", { HDR(0x02, 8), V4(0, 80), 64 }, 16, PREAMBLE_ERR_SERVICE, 16 },
		{ "service uppercase", { HDR(0x02, 11), V4(0, 80), 3, 'W', 'e', 'b' }, 19, PREAMBLE_ERR_SERVICE, 19 },
		{ "service starts with '-'", { HDR(0x02, 9), V4(0, 80), 1, '-' }, 17, PREAMBLE_ERR_SERVICE, 17 },
		{ "service with NUL", { HDR(0x02, 10), V4(0, 80), 2, 'a', 0 }, 18, PREAMBLE_ERR_SERVICE, 18 },
		{ "service runs past the body",
		  { HDR(0x02, 10), V4(0, 80), 5, 'a', 'b' },
		  18,
		  PREAMBLE_ERR_TRUNCATED,
		  16 },
		{ "claimed length 0", { HDR(0x04, 8), V4(0, 80), 0 }, 16, PREAMBLE_ERR_CLAIMED_ID, 16 },
		{ "claimed with a space", { HDR(0x04, 10), V4(0, 80), 2, 'a', ' ' }, 18, PREAMBLE_ERR_CLAIMED_ID, 18 },
		{ "claimed with a newline (log injection)",
		  { HDR(0x04, 10), V4(0, 80), 2, 'a', '\n' },
		  18,
		  PREAMBLE_ERR_CLAIMED_ID,
		  18 },
		{ "claimed with a high byte", { HDR(0x04, 9), V4(0, 80), 1, 0xc3 }, 17, PREAMBLE_ERR_CLAIMED_ID, 17 },
		{ "claimed runs past the body", { HDR(0x04, 9), V4(0, 80), 200 }, 16, PREAMBLE_ERR_TRUNCATED, 16 },
		{ "trailing byte in the body", { HDR(0, 8), V4(0, 80), 0 }, 16, PREAMBLE_ERR_TRAILING, 15 },
		{ "body declares more than its fields", { HDR(0x01, 20), V4(0, 80), 1 }, 16, PREAMBLE_ERR_TRAILING, 16 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad *t = &cases[i];
		struct preamble q;
		enum preamble_err e = PREAMBLE_OK;
		size_t k;
		int r;

		memset(&q, 0x5a, sizeof(q));
		r = preamble_decode(t->bytes, t->len, &q, &e);
		if (r != -EINVAL || e != t->err)
			fail_msg("%s: returned %d, %s; expected -EINVAL, %s", t->name, r, preamble_err_name(e),
				 preamble_err_name(t->err));
		/* out untouched on failure */
		assert_int_equal(((uint8_t *)&q)[0], 0x5a);
		/* detected as early as the bytes allow, and not earlier */
		r = preamble_decode(t->bytes, t->detect_at, &q, &e);
		if (r != -EINVAL || e != t->err)
			fail_msg("%s: with %zu bytes returned %d (%s), expected the error already", t->name,
				 t->detect_at, r, preamble_err_name(e));
		for (k = 0; k < t->detect_at; k++)
			if (preamble_decode(t->bytes, k, &q, &e) != -EAGAIN)
				fail_msg("%s: with %zu bytes it did not ask for more", t->name, k);
		/* and a NULL err pointer is fine */
		assert_int_equal(preamble_decode(t->bytes, t->len, &q, NULL), -EINVAL);
	}
}

static void test_encode_fail(void **state)
{
	struct preamble p = mk("10.0.0.1:80", PREAMBLE_PROTO_NONE, NULL, NULL);
	uint8_t buf[PREAMBLE_MAX];

	p.target.in4.sin_port = 0;
	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), -EINVAL);
	p = mk("0.0.0.0:80", PREAMBLE_PROTO_NONE, NULL, NULL);
	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), -EINVAL);
	p = mk("[::]:80", PREAMBLE_PROTO_NONE, NULL, NULL);
	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), -EINVAL);
	p = mk("10.0.0.1:80", (enum preamble_proto)9, NULL, NULL);
	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), -EINVAL);
	p = mk("10.0.0.1:80", PREAMBLE_PROTO_NONE, "Web", NULL);
	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), -EINVAL);
	p = mk("10.0.0.1:80", PREAMBLE_PROTO_NONE, NULL, "has space");
	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), -EINVAL);
	p = mk("10.0.0.1:80", PREAMBLE_PROTO_NONE, NULL, NULL);
	memset(p.service, 'a', sizeof(p.service)); /* unterminated: 64 bytes */
	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), -EINVAL);
	memset(&p, 0, sizeof(p));
	p.target.sa.sa_family = AF_UNIX;
	assert_int_equal(preamble_encode(buf, sizeof(buf), &p), -EINVAL);
	p = mk("10.0.0.1:80", PREAMBLE_PROTO_NONE, NULL, NULL);
	assert_int_equal(preamble_encode(buf, 0, &p), -ENOSPC);
}

static void test_err_names(void **state)
{
	int e;

	assert_string_equal(preamble_err_name(PREAMBLE_ERR_MAGIC), "bad_magic");
	assert_string_equal(preamble_err_name(PREAMBLE_ERR__COUNT), "unknown");
	for (e = 0; e < PREAMBLE_ERR__COUNT; e++) {
		const char *n = preamble_err_name((enum preamble_err)e);

		assert_non_null(n);
		assert_true(strspn(n, "abcdefghijklmnopqrstuvwxyz_") == strlen(n));
	}
}

/* --- reply ---------------------------------------------------------------------- */

static void test_reply(void **state)
{
	static const uint8_t denied[] = { 'W', 'E', 'F', 'T', 1, 1, 0, 0 };
	uint8_t buf[16];
	enum preamble_status st = PREAMBLE_ST_MAX;
	int s, k;

	assert_int_equal(preamble_reply_encode(buf, sizeof(buf), PREAMBLE_ST_DENIED), PREAMBLE_REPLY_LEN);
	assert_memory_equal(buf, denied, sizeof(denied));
	for (s = 0; s <= PREAMBLE_ST_MAX; s++) {
		assert_int_equal(preamble_reply_encode(buf, sizeof(buf), (enum preamble_status)s), 8);
		memcpy(buf + 8, "app!", 4);
		assert_int_equal(preamble_reply_decode(buf, 12, &st), 8);
		assert_int_equal(st, s);
		for (k = 0; k < 8; k++)
			assert_int_equal(preamble_reply_decode(buf, (size_t)k, &st), -EAGAIN);
		assert_string_not_equal(preamble_status_name((enum preamble_status)s), "unknown");
	}
	assert_string_equal(preamble_status_name(PREAMBLE_ST_OK), "ok");
	assert_int_equal(preamble_reply_encode(buf, 7, PREAMBLE_ST_OK), -ENOSPC);
	assert_int_equal(preamble_reply_encode(buf, 8, (enum preamble_status)6), -EINVAL);
	assert_int_equal(preamble_reply_decode("HTTP/1.1 200", 12, &st), -EINVAL);
	assert_int_equal(preamble_reply_decode("H", 1, &st), -EINVAL);
	assert_int_equal(preamble_reply_decode("WEFT\x02", 5, &st), -EINVAL);
	assert_int_equal(preamble_reply_decode("WEFT\x01\x06", 6, &st), -EINVAL);
	assert_int_equal(preamble_reply_decode("WEFT\x01\x00\x01", 7, &st), -EINVAL);
	assert_int_equal(preamble_reply_decode("WEFT\x01\x00\x00\x01", 8, &st), -EINVAL);
}

static void test_service_name_ok(void **state)
{
	(void)state;
	assert_true(preamble_service_name_ok("web"));
	assert_true(preamble_service_name_ok("web-v2.internal_1"));
	assert_false(preamble_service_name_ok(""));
	assert_false(preamble_service_name_ok("shop/cart:8080")); /* a discovered name: left out */
	assert_false(preamble_service_name_ok("-web"));
	assert_false(preamble_service_name_ok("Web"));
	assert_false(preamble_service_name_ok("a234567890123456789012345678901234567890123456789012345678901234"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),      cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_v4_mapped),   cmocka_unit_test(test_decode_fail),
		cmocka_unit_test(test_encode_fail), cmocka_unit_test(test_err_names),
		cmocka_unit_test(test_reply),       cmocka_unit_test(test_service_name_ok),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
