// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/addr.c: what parses (and how it is normalised and printed), the
 * exact message for each thing that does not, and the BPF key layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "lib/addr.h"

struct ok_case {
	const char *in;
	bool allow_port0;
	int family;      /* after normalisation */
	const char *out; /* addr_format */
	int port;
};

static const struct ok_case ok_cases[] = {
	{ "127.0.0.1:80", false, AF_INET, "127.0.0.1:80", 80 },
	{ "0.0.0.0:4143", false, AF_INET, "0.0.0.0:4143", 4143 },
	{ "255.255.255.255:65535", false, AF_INET, "255.255.255.255:65535", 65535 },
	{ "198.18.0.2:1", false, AF_INET, "198.18.0.2:1", 1 },
	{ "10.0.0.1:00080", false, AF_INET, "10.0.0.1:80", 80 },
	{ "10.0.0.1:0", true, AF_INET, "10.0.0.1:0", 0 },
	{ "[::1]:443", false, AF_INET6, "[::1]:443", 443 },
	{ "[::]:4143", false, AF_INET6, "[::]:4143", 4143 },
	{ "[2001:DB8::1]:8080", false, AF_INET6, "[2001:db8::1]:8080", 8080 },
	{ "[fd00:10:0:0:0:0:0:1]:80", false, AF_INET6, "[fd00:10::1]:80", 80 },
	{ "[::1]:0", true, AF_INET6, "[::1]:0", 0 },
	/* IPv4-mapped IPv6 is IPv4, as the BPF side sees it. */
	{ "[::ffff:10.1.2.3]:80", false, AF_INET, "10.1.2.3:80", 80 },
	{ "[::ffff:7f00:1]:9990", false, AF_INET, "127.0.0.1:9990", 9990 },
};

static void test_parse_ok(void **state)
{
	char buf[ADDR_STRLEN], err[256];
	struct weft_sockaddr a;
	size_t i;

	for (i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *t = &ok_cases[i];

		memset(&a, 0xa5, sizeof(a));
		if (addr_parse(t->in, t->allow_port0, &a, err, sizeof(err)))
			fail_msg("'%s' did not parse: %s", t->in, err);
		assert_string_equal(err, "");
		assert_int_equal(a.sa.sa_family, t->family);
		assert_int_equal(a.len,
				 t->family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		assert_string_equal(addr_format(&a, buf, sizeof(buf)), t->out);
		assert_int_equal(addr_port(&a), t->port);
	}
}

struct fail_case {
	const char *in;
	bool allow_port0;
	const char *msg;
};

static const struct fail_case fail_cases[] = {
	{ "10.0.0.1", false, "'10.0.0.1' has no port; write it as host:port" },
	{ "10.0.0.1:", false, "'10.0.0.1:' has no port; write it as host:port" },
	{ "[::1]", false, "'[::1]' has no port; write it as host:port" },
	{ "[::1", false, "'[::1' is missing ']'" },
	{ "[::1:80", false, "'[::1:80' is missing ']'" },
	{ "[::1]x80", false, "'[::1]x80' has text after ']'; write it as [ipv6]:port" },
	{ "10.0.0.1:70000", false, "port 70000 is out of range (1-65535)" },
	{ "10.0.0.1:65536", true, "port 65536 is out of range (0-65535)" },
	{ "10.0.0.1:0", false, "port 0 is out of range (1-65535)" },
	{ "[::1]:0", false, "port 0 is out of range (1-65535)" },
	{ "10.0.0.1:99999999999999999999999", false, "port 99999999999999999999999 is out of range (1-65535)" },
	{ "10.0.0.1:http", false, "'10.0.0.1:http' has a bad port 'http'; the port must be a number (1-65535)" },
	{ "10.0.0.1:-1", false, "'10.0.0.1:-1' has a bad port '-1'; the port must be a number (1-65535)" },
	{ "10.0.0.1:8 0", false, "'10.0.0.1:8 0' has a bad port '8 0'; the port must be a number (1-65535)" },
	{ "foo:80", false,
	  "'foo:80' is not a numeric IP address (host names are not resolved; write an IPv4 or [IPv6] address)" },
	{ "localhost", false,
	  "'localhost' is not a numeric IP address (host names are not resolved; write an IPv4 or [IPv6] address)" },
	{ "1.2.3:80", false,
	  "'1.2.3:80' is not a numeric IP address (host names are not resolved; write an IPv4 or [IPv6] address)" },
	{ "256.0.0.1:80", false,
	  "'256.0.0.1:80' is not a numeric IP address (host names are not resolved; write an IPv4 or [IPv6] address)" },
	{ " 10.0.0.1:80", false,
	  "' 10.0.0.1:80' is not a numeric IP address (host names are not resolved; write an IPv4 or [IPv6] address)" },
	{ ":80", false, "':80' has no IP address; write it as ip:port, e.g. 127.0.0.1:80" },
	{ "", false, "the address is empty; write it as ip:port, e.g. 127.0.0.1:80" },
	{ "::1:80", false, "'::1:80' looks like an IPv6 address without brackets; write it as [ipv6]:port" },
	{ "[foo]:80", false, "'[foo]:80' is not a numeric IPv6 address (host names are not resolved)" },
	{ "[10.0.0.1]:80", false, "'[10.0.0.1]:80' is not a numeric IPv6 address (host names are not resolved)" },
	{ "[]:80", false, "'[]:80' is not a numeric IPv6 address (host names are not resolved)" },
	{ "[fe80::1%eth0]:80", false,
	  "'[fe80::1%eth0]:80' is not a numeric IPv6 address (host names are not resolved)" },
	/* Echoed input is cut at 64 bytes and kept on one line. */
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:80", false,
	  "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is not a numeric IP address (host names are not resolved; write an IPv4 or [IPv6] address)" },
	{ "10.0.0.1\n:80", false,
	  "'10.0.0.1?:80' is not a numeric IP address (host names are not resolved; write an IPv4 or [IPv6] address)" },
};

static void test_parse_fail(void **state)
{
	struct weft_sockaddr a, before;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(fail_cases) / sizeof(fail_cases[0]); i++) {
		const struct fail_case *t = &fail_cases[i];

		memset(&a, 0x5a, sizeof(a));
		before = a;
		if (addr_parse(t->in, t->allow_port0, &a, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' parsed", t->in);
		assert_string_equal(err, t->msg);
		/* out is left alone on failure */
		assert_memory_equal(&a, &before, sizeof(a));
	}
}

/* A short error buffer truncates, never overflows (ASan watches). */
static void test_parse_small_errbuf(void **state)
{
	struct weft_sockaddr a;
	char err[8];

	assert_int_equal(addr_parse("foo:80", false, &a, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'foo:80");
	assert_int_equal(addr_parse(NULL, false, &a, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the add");
}

static struct weft_sockaddr parse(const char *s)
{
	struct weft_sockaddr a;
	char err[256];

	if (addr_parse(s, true, &a, err, sizeof(err)))
		fail_msg("'%s': %s", s, err);
	return a;
}

static void test_key_v4(void **state)
{
	struct weft_sockaddr a = parse("127.10.0.1:80");
	struct weft_addr key, want;

	memset(&key, 0xff, sizeof(key)); /* every byte must be written */
	addr_to_key(&a, &key);
	memset(&want, 0, sizeof(want));
	want.family = WEFT_AF_INET;
	want.ip[0] = 127;
	want.ip[1] = 10;
	want.ip[3] = 1;
	want.port = 80; /* host byte order, as bpftool shows it */
	assert_memory_equal(&key, &want, sizeof(key));
}

static void test_key_v6(void **state)
{
	struct weft_sockaddr a = parse("[2001:db8::1]:443");
	struct weft_addr key, want;

	memset(&key, 0xff, sizeof(key));
	addr_to_key(&a, &key);
	memset(&want, 0, sizeof(want));
	want.family = WEFT_AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", want.ip);
	want.port = 443;
	assert_memory_equal(&key, &want, sizeof(key));
}

/* What accept() on a dual-stack socket hands out: sockaddr_in6 holding ::ffff:a.b.c.d. */
static void test_key_v4_mapped(void **state)
{
	struct weft_sockaddr m, v4 = parse("10.1.2.3:8080");
	struct weft_addr km, k4;
	char buf[ADDR_STRLEN];

	memset(&m, 0, sizeof(m));
	m.in6.sin6_family = AF_INET6;
	m.in6.sin6_port = htons(8080);
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &m.in6.sin6_addr);
	m.len = sizeof(m.in6);

	memset(&km, 0xff, sizeof(km));
	addr_to_key(&m, &km);
	addr_to_key(&v4, &k4);
	assert_int_equal(km.family, WEFT_AF_INET);
	{
		static const __u8 ip[16] = { 10, 1, 2, 3 };

		assert_memory_equal(km.ip, ip, 16);
	}
	assert_int_equal(km.port, 8080);
	assert_memory_equal(&km, &k4, sizeof(km));
	assert_true(addr_equal(&m, &v4));
	assert_string_equal(addr_format(&m, buf, sizeof(buf)), "10.1.2.3:8080");
}

static void test_key_roundtrip(void **state)
{
	char b1[ADDR_STRLEN], b2[ADDR_STRLEN];
	struct weft_sockaddr a, back;
	struct weft_addr key;
	size_t i;

	for (i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		a = parse(ok_cases[i].in);
		addr_to_key(&a, &key);
		memset(&back, 0xee, sizeof(back));
		addr_from_key(&key, &back);
		assert_true(addr_equal(&a, &back));
		assert_int_equal(back.len, a.len);
		assert_int_equal(back.sa.sa_family, a.sa.sa_family);
		assert_string_equal(addr_format(&back, b1, sizeof(b1)), addr_format(&a, b2, sizeof(b2)));
	}
}

static void test_from_key_odd(void **state)
{
	struct weft_sockaddr out;
	struct weft_addr key;
	char buf[ADDR_STRLEN];

	/* A v6 key holding a mapped address still comes back as IPv4. */
	memset(&key, 0, sizeof(key));
	key.family = WEFT_AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.7", key.ip);
	key.port = 53;
	addr_from_key(&key, &out);
	assert_int_equal(out.sa.sa_family, AF_INET);
	assert_string_equal(addr_format(&out, buf, sizeof(buf)), "192.0.2.7:53");

	/* Unknown family: an empty address, printed as such. */
	memset(&key, 0, sizeof(key));
	key.family = 99;
	addr_from_key(&key, &out);
	assert_int_equal(out.sa.sa_family, AF_UNSPEC);
	assert_int_equal(out.len, 0);
	assert_int_equal(addr_port(&out), 0);
	assert_string_equal(addr_format(&out, buf, sizeof(buf)), "(none)");
}

static void test_equal(void **state)
{
	struct weft_sockaddr a = parse("127.0.0.1:80"), b = parse("127.0.0.1:81"), c = parse("127.0.0.2:80"),
			     d = parse("[::1]:80"), e = parse("[::ffff:127.0.0.1]:80");

	assert_true(addr_equal(&a, &a));
	assert_true(addr_equal(&a, &e));
	assert_false(addr_equal(&a, &b));
	assert_false(addr_equal(&a, &c));
	assert_false(addr_equal(&a, &d));
}

static void test_format_longest(void **state)
{
	struct weft_sockaddr a = parse("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535");
	char buf[ADDR_STRLEN], small[8];

	assert_string_equal(addr_format(&a, buf, sizeof(buf)), "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535");
	assert_true(strlen(buf) < ADDR_STRLEN);
	assert_string_equal(addr_format(&a, small, sizeof(small)), "[ffff:f");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_fail),
		cmocka_unit_test(test_parse_small_errbuf),
		cmocka_unit_test(test_key_v4),
		cmocka_unit_test(test_key_v6),
		cmocka_unit_test(test_key_v4_mapped),
		cmocka_unit_test(test_key_roundtrip),
		cmocka_unit_test(test_from_key_odd),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_format_longest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
