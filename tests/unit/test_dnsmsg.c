// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/codec/dnsmsg.c: DNS answers built byte by byte here (a small
 * writer below), read back: A, AAAA, SRV, CNAME chains in and out of
 * order, TTLs, compression, rcodes; then a table of malformed messages,
 * each with its message; then host name checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/dnsmsg.h"

/* --- a DNS message writer -------------------------------------------------- */

struct msg {
	uint8_t b[4096];
	size_t n;
	uint16_t an; /* answers written */
};

static void put8(struct msg *m, unsigned v)
{
	m->b[m->n++] = (uint8_t)v;
}

static void put16(struct msg *m, unsigned v)
{
	put8(m, v >> 8);
	put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
	put16(m, v >> 16);
	put16(m, v & 0xffff);
}

/* "a.b.c" as labels; a name ending in "@N" ends with a pointer to offset N instead of the root. */
static void put_name(struct msg *m, const char *name)
{
	const char *p = name, *at = strchr(name, '@');
	const char *end = at ? at : name + strlen(name);

	while (p < end) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t l = dot ? (size_t)(dot - p) : (size_t)(end - p);

		put8(m, (unsigned)l);
		memcpy(m->b + m->n, p, l);
		m->n += l;
		p += l + (dot ? 1 : 0);
	}
	if (at)
		put16(m, 0xc000 | (unsigned)atoi(at + 1));
	else
		put8(m, 0);
}

/* Header (QR set, rcode), one question; answers follow (their count patched by finish). */
static void start(struct msg *m, unsigned rcode, const char *qname, unsigned qtype)
{
	memset(m, 0, sizeof(*m));
	put16(m, 0x1234);
	put16(m, 0x8180 | rcode);
	put16(m, 1);
	put16(m, 0);
	put16(m, 0);
	put16(m, 0);
	put_name(m, qname);
	put16(m, qtype);
	put16(m, 1);
}

static void rr_head(struct msg *m, const char *owner, unsigned type, uint32_t ttl, unsigned rdlen)
{
	put_name(m, owner);
	put16(m, type);
	put16(m, 1);
	put32(m, ttl);
	put16(m, rdlen);
	m->an++;
}

static void rr_a(struct msg *m, const char *owner, uint32_t ttl, const char *ip)
{
	struct in_addr a;

	inet_pton(AF_INET, ip, &a);
	rr_head(m, owner, DNS_T_A, ttl, 4);
	memcpy(m->b + m->n, &a, 4);
	m->n += 4;
}

static void rr_aaaa(struct msg *m, const char *owner, uint32_t ttl, const char *ip)
{
	struct in6_addr a;

	inet_pton(AF_INET6, ip, &a);
	rr_head(m, owner, DNS_T_AAAA, ttl, 16);
	memcpy(m->b + m->n, &a, 16);
	m->n += 16;
}

/* A name-valued record (CNAME, SRV): rdlen patched once the name is written. */
static void rr_named(struct msg *m, const char *owner, unsigned type, uint32_t ttl, const char *target, int prio,
		     int weight, int port)
{
	size_t lenpos, s;

	rr_head(m, owner, type, ttl, 0);
	lenpos = m->n - 2;
	s = m->n;
	if (type == DNS_T_SRV) {
		put16(m, (unsigned)prio);
		put16(m, (unsigned)weight);
		put16(m, (unsigned)port);
	}
	put_name(m, target);
	m->b[lenpos] = (uint8_t)((m->n - s) >> 8);
	m->b[lenpos + 1] = (uint8_t)(m->n - s);
}

static void finish(struct msg *m)
{
	m->b[6] = (uint8_t)(m->an >> 8);
	m->b[7] = (uint8_t)m->an;
}

static struct dns_answer parse_ok(struct msg *m, const char *qname, uint16_t type)
{
	struct dns_answer a;
	char err[256];
	int r;

	finish(m);
	r = dns_parse_answer(m->b, m->n, qname, type, &a, err, sizeof(err));
	if (r != 0)
		fail_msg("%s: %d %s", qname, r, err);
	return a;
}

static const char *ip_of(const struct dns_rr *rr, char *buf)
{
	struct weft_sockaddr a = rr->addr;

	if (a.sa.sa_family == AF_INET)
		a.in4.sin_port = htons(1);
	else
		a.in6.sin6_port = htons(1);
	addr_format(&a, buf, ADDR_STRLEN);
	buf[strlen(buf) - 2] = '\0'; /* ":1" */
	return buf;
}

/* --- good answers ------------------------------------------------------------ */

static void test_a(void **state)
{
	struct msg m;
	struct dns_answer a;
	char ip[ADDR_STRLEN];

	(void)state;
	start(&m, 0, "api.internal", DNS_T_A);
	rr_a(&m, "api.internal", 30, "10.0.0.1");
	rr_a(&m, "API.Internal", 10, "10.0.0.2");  /* case does not matter */
	rr_a(&m, "other.internal", 1, "10.9.9.9"); /* not the name asked for */
	rr_aaaa(&m, "api.internal", 1, "::1");     /* not the type asked for */
	a = parse_ok(&m, "api.internal.", DNS_T_A);
	assert_int_equal(a.rcode, 0);
	assert_int_equal(a.n, 2);
	assert_string_equal(ip_of(&a.rr[0], ip), "10.0.0.1");
	assert_string_equal(ip_of(&a.rr[1], ip), "10.0.0.2");
	assert_int_equal(a.rr[0].ttl, 30);
	assert_int_equal(a.ttl, 10);
	dns_answer_free(&a);

	/* compressed owners: pointer to the question's name (offset 12) */
	start(&m, 0, "api.internal", DNS_T_AAAA);
	rr_aaaa(&m, "@12", 0x80000005u, "2001:db8::1"); /* top bit set: TTL 0 */
	rr_aaaa(&m, "@12", 60, "::ffff:10.0.0.1");
	a = parse_ok(&m, "api.internal", DNS_T_AAAA);
	assert_int_equal(a.n, 2);
	assert_string_equal(ip_of(&a.rr[0], ip), "[2001:db8::1]");
	assert_int_equal(a.ttl, 0);
	dns_answer_free(&a);
}

static void test_cname(void **state)
{
	struct msg m;
	struct dns_answer a;
	char ip[ADDR_STRLEN];

	(void)state;
	/* out of order: the A records first, then the chain api -> lb -> node */
	start(&m, 0, "api.internal", DNS_T_A);
	rr_a(&m, "node.internal", 50, "10.0.0.7");
	rr_a(&m, "lb.internal", 50, "10.6.6.6"); /* a link of the chain, not its end */
	rr_named(&m, "lb.internal", DNS_T_CNAME, 40, "node.internal", 0, 0, 0);
	rr_named(&m, "api.internal", DNS_T_CNAME, 20, "lb.internal", 0, 0, 0);
	a = parse_ok(&m, "api.internal", DNS_T_A);
	assert_int_equal(a.n, 1);
	assert_string_equal(ip_of(&a.rr[0], ip), "10.0.0.7");
	assert_int_equal(a.ttl, 20); /* the CNAME's */
	dns_answer_free(&a);

	/* a loop of CNAMEs ends after DNS_MAX_CNAMES links with nothing */
	start(&m, 0, "a.x", DNS_T_A);
	rr_named(&m, "a.x", DNS_T_CNAME, 5, "b.x", 0, 0, 0);
	rr_named(&m, "b.x", DNS_T_CNAME, 5, "a.x", 0, 0, 0);
	a = parse_ok(&m, "a.x", DNS_T_A);
	assert_int_equal(a.n, 0);
	assert_int_equal(a.ttl, 0);
	dns_answer_free(&a);
}

static void test_srv(void **state)
{
	struct msg m;
	struct dns_answer a;

	(void)state;
	start(&m, 0, "_api._tcp.internal", DNS_T_SRV);
	rr_named(&m, "_api._tcp.internal", DNS_T_SRV, 7, "t1.internal", 0, 5, 8080);
	/* target compressed: "t2." then a pointer to "internal" in the question (12 + 5 + 5) */
	rr_named(&m, "@12", DNS_T_SRV, 9, "T2@22", 1, 3, 8081);
	rr_named(&m, "@12", DNS_T_SRV, 1, "", 0, 0, 0);            /* "." : not offered, left out */
	rr_named(&m, "@12", DNS_T_SRV, 1, "t3.internal", 0, 1, 0); /* port 0, left out */
	a = parse_ok(&m, "_API._tcp.internal", DNS_T_SRV);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.dropped, 2);
	assert_string_equal(a.rr[0].target, "t1.internal");
	assert_int_equal(a.rr[0].priority, 0);
	assert_int_equal(a.rr[0].weight, 5);
	assert_int_equal(a.rr[0].port, 8080);
	assert_string_equal(a.rr[1].target, "t2.internal");
	assert_int_equal(a.rr[1].priority, 1);
	assert_int_equal(a.rr[1].port, 8081);
	assert_int_equal(a.ttl, 7);
	dns_answer_free(&a);
}

static void test_rcodes(void **state)
{
	struct msg m;
	struct dns_answer a;

	(void)state;
	start(&m, DNS_RCODE_NXDOMAIN, "gone.internal", DNS_T_A);
	a = parse_ok(&m, "gone.internal", DNS_T_A);
	assert_int_equal(a.rcode, DNS_RCODE_NXDOMAIN);
	assert_int_equal(a.n, 0);
	dns_answer_free(&a);
	start(&m, DNS_RCODE_SERVFAIL, "x.internal", DNS_T_A);
	rr_a(&m, "x.internal", 5, "10.0.0.1"); /* records of a failed answer are not used */
	a = parse_ok(&m, "x.internal", DNS_T_A);
	assert_int_equal(a.rcode, DNS_RCODE_SERVFAIL);
	assert_int_equal(a.n, 0);
	dns_answer_free(&a);
	/* NOERROR with no answer (NODATA) */
	start(&m, 0, "x.internal", DNS_T_AAAA);
	a = parse_ok(&m, "x.internal", DNS_T_AAAA);
	assert_int_equal(a.rcode, 0);
	assert_int_equal(a.n, 0);
	dns_answer_free(&a);
}

/* More records than DNS_MAX_RRS: the rest are counted, not kept. */
static void test_many(void **state)
{
	static struct msg big;
	struct dns_answer a;
	char err[128];
	unsigned i;

	(void)state;
	start(&big, 0, "x", DNS_T_A);
	for (i = 0; i < DNS_MAX_RRS + 10 && big.n + 16 < sizeof(big.b); i++) {
		rr_head(&big, "@12", DNS_T_A, 5, 4);
		put32(&big, i);
	}
	finish(&big);
	if (big.an <= DNS_MAX_RRS) {
		/* the 4 KiB writer holds fewer: use a second, larger buffer */
		uint8_t *b = malloc(65535);
		size_t n = 0;

		assert_non_null(b);
		memcpy(b, big.b, 12 + 7);
		n = 12 + 7;
		for (i = 0; i < DNS_MAX_RRS + 10; i++) {
			static const uint8_t rr[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4 };

			memcpy(b + n, rr, sizeof(rr));
			n += sizeof(rr);
			b[n++] = 10;
			b[n++] = 0;
			b[n++] = (uint8_t)(i >> 8);
			b[n++] = (uint8_t)i;
		}
		b[6] = (uint8_t)((DNS_MAX_RRS + 10) >> 8);
		b[7] = (uint8_t)(DNS_MAX_RRS + 10);
		assert_int_equal(dns_parse_answer(b, n, "x", DNS_T_A, &a, err, sizeof(err)), 0);
		free(b);
	} else {
		assert_int_equal(dns_parse_answer(big.b, big.n, "x", DNS_T_A, &a, err, sizeof(err)), 0);
	}
	assert_int_equal(a.n, DNS_MAX_RRS);
	assert_int_equal(a.dropped, 10);
	dns_answer_free(&a);
}

/* --- malformed ------------------------------------------------------------- */

static void test_bad(void **state)
{
	const struct {
		const char *name;
		const uint8_t *b;
		size_t n;
		const char *why;
	} cases[] = {
#define B(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })
		{ "short", B(0x12, 0x34, 0x81), "shorter than a DNS header" },
		{ "a query", B(0, 1, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0), "not a response (QR is 0)" },
		{ "question past the end", B(0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', 'b'),
		  "a label runs past the end of the message" },
		{ "question without type", B(0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0),
		  "a question runs past the end of the message" },
		{ "pointer to itself", B(0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1),
		  "a compression pointer does not point back into the message" },
		{ "pointer forward", B(0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 0, 0, 1, 0, 1),
		  "a compression pointer does not point back into the message" },
		{ "reserved label type", B(0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 1, 0, 1),
		  "a label has a reserved type" },
		{ "answer cut", B(0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0),
		  "a record runs past the end of the message" },
		{ "rdata cut", B(0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10),
		  "a record's data runs past the end of the message" },
		{ "A of 5 bytes",
		  B(0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 5, 0, 5, 1, 2, 3, 4, 5),
		  "an A record's data is not 4 bytes" },
		{ "SRV target longer than its data",
		  B(0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 33, 0, 1, 0, 0, 0, 5, 0, 8, 0, 0, 0, 0, 0, 80, 1,
		    'a', 0),
		  "a name runs past the end of the message" },
		{ "SRV target shorter than its data",
		  B(0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 33, 0, 1, 0, 0, 0, 5, 0, 9, 0, 0, 0, 0, 0, 80, 0, 7,
		    7),
		  "an SRV record's target does not end its data" },
#undef B
	};
	struct dns_answer a;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = dns_parse_answer(cases[i].b, cases[i].n, "", cases[i].n > 14 && cases[i].b[14] == 33 ? 33 : 1,
					 &a, err, sizeof(err));

		if (r != -EBADMSG)
			fail_msg("%s: returned %d", cases[i].name, r);
		if (strcmp(err + strlen("malformed answer: "), cases[i].why))
			fail_msg("%s: '%s', expected '%s'", cases[i].name, err, cases[i].why);
		assert_null(a.rr);
	}
}

/* A name over 255 bytes on the wire, and one with a label of 64. */
static void test_long_names(void **state)
{
	struct msg m;
	struct dns_answer a;
	char err[256], name[300];
	size_t i;

	(void)state;
	for (i = 0; i < 5 * 52; i += 52)
		memcpy(name + i, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.", 52);
	name[5 * 52 - 1] = '\0'; /* 5 labels of 51: 261 bytes on the wire */
	start(&m, 0, name, DNS_T_A);
	finish(&m);
	assert_int_equal(dns_parse_answer(m.b, m.n, "x", DNS_T_A, &a, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "malformed answer: a name is longer than 255 bytes");

	/* a bad byte in an owner name skips the record, no error */
	start(&m, 0, "x", DNS_T_A);
	rr_a(&m, "x", 5, "10.0.0.1");
	m.b[m.n - 4 - 10 - 2] = 0x01; /* the owner's only label byte */
	a = parse_ok(&m, "x", DNS_T_A);
	assert_int_equal(a.n, 0);
	dns_answer_free(&a);
}

static void test_name_problem(void **state)
{
	(void)state;
	assert_null(dns_name_problem("api.internal"));
	assert_null(dns_name_problem("api.internal."));
	assert_null(dns_name_problem("_api._tcp.Internal"));
	assert_null(dns_name_problem("localhost"));
	assert_string_equal(dns_name_problem(""), "is empty");
	assert_string_equal(dns_name_problem("."), "is empty");
	assert_string_equal(dns_name_problem("a..b"), "has an empty label (two dots, or a leading dot)");
	assert_string_equal(dns_name_problem(".a"), "has an empty label (two dots, or a leading dot)");
	assert_string_equal(dns_name_problem("a b"),
			    "has a character other than A-Z, a-z, 0-9, '-', '_' and the dots between labels");
	assert_string_equal(dns_name_problem("a.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
			    "has a label longer than 63 characters");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a),          cmocka_unit_test(test_cname),        cmocka_unit_test(test_srv),
		cmocka_unit_test(test_rcodes),     cmocka_unit_test(test_many),         cmocka_unit_test(test_bad),
		cmocka_unit_test(test_long_names), cmocka_unit_test(test_name_problem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
