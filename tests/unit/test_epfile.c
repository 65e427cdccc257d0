// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/codec/epfile.c: endpoint files in both formats. A table of
 * files that parse (each endpoint checked field by field), then a table of
 * failures, each with every message it must give, FILE:LINE first.
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

#include "codec/epfile.h"

struct want_ep {
	const char *addr;
	uint32_t weight, priority;
	const char *zone;
	unsigned line;
};

static const struct good {
	const char *name;
	const char *text;
	size_t n;
	struct want_ep eps[4];
} goods[] = {
	{ "empty", "", 0, { { 0 } } },
	{ "comments only", "# nothing yet\n\n   # still nothing\n", 0, { { 0 } } },
	{ "one address", "10.0.0.1:8080\n", 1, { { "10.0.0.1:8080", 1, 0, "", 1 } } },
	{ "no final newline", "10.0.0.1:8080", 1, { { "10.0.0.1:8080", 1, 0, "", 1 } } },
	{ "CRLF",
	  "10.0.0.1:8080 2\r\n10.0.0.2:8080\r\n",
	  2,
	  { { "10.0.0.1:8080", 2, 0, "", 1 }, { "10.0.0.2:8080", 1, 0, "", 2 } } },
	{ "all fields, tabs, comments",
	  "# api\n10.0.0.1:80\t3\teu-west-1a   # the big one\n\n[2001:db8::7]:80 1 - 2\n10.0.0.3:80 1 dc.2_b 0 #x\n",
	  3,
	  { { "10.0.0.1:80", 3, 0, "eu-west-1a", 2 },
	    { "[2001:db8::7]:80", 1, 2, "", 4 },
	    { "10.0.0.3:80", 1, 0, "dc.2_b", 5 } } },
	{ "v4-mapped is v4", "[::ffff:10.0.0.9]:80 1000 Z 65535\n", 1, { { "10.0.0.9:80", 1000, 65535, "Z", 1 } } },
	{ "libconfig",
	  "# written by a template\nendpoints = (\n  { address = \"10.0.0.1:80\"; weight = 2; zone = \"a\"; },\n"
	  "  { address = \"[::1]:81\"; priority = 1; }\n);\n",
	  2,
	  { { "10.0.0.1:80", 2, 0, "a", 3 }, { "[::1]:81", 1, 1, "", 4 } } },
	{ "libconfig, empty list", "endpoints = ( );", 0, { { 0 } } },
	{ "libconfig after a C comment",
	  "/* x */ // y\nendpoints: ( { address = \"10.0.0.1:80\"; } )",
	  1,
	  { { "10.0.0.1:80", 1, 0, "", 2 } } },
};

static void test_good(void **state)
{
	size_t c, i;

	(void)state;
	for (c = 0; c < sizeof(goods) / sizeof(goods[0]); c++) {
		const struct good *g = &goods[c];
		struct epfile_errors errs = { 0 };
		struct ep_entry *eps = NULL;
		char ab[ADDR_STRLEN];
		size_t n = 99;
		int r;

		r = epfile_parse(g->text, strlen(g->text), "api.conf", &eps, &n, &errs);
		if (r != 0)
			fail_msg("%s: returned %d (%s)", g->name, r, errs.n ? errs.msgs[0] : "no message");
		assert_int_equal(errs.n, 0);
		if (n != g->n)
			fail_msg("%s: %zu endpoints, expected %zu", g->name, n, g->n);
		for (i = 0; i < n; i++) {
			const struct want_ep *w = &g->eps[i];

			addr_format(&eps[i].addr, ab, sizeof(ab));
			if (strcmp(ab, w->addr) || eps[i].weight != w->weight || eps[i].priority != w->priority ||
			    strcmp(eps[i].zone, w->zone) || eps[i].line != w->line)
				fail_msg(
					"%s: endpoint %zu is %s w%u p%u z'%s' line %u, expected %s w%u p%u z'%s' line %u",
					g->name, i, ab, eps[i].weight, eps[i].priority, eps[i].zone, eps[i].line,
					w->addr, w->weight, w->priority, w->zone, w->line);
		}
		free(eps);
	}
}

static const struct bad {
	const char *name;
	const char *text;
	const char *msgs[6]; /* every message, in order */
} bads[] = {
	{ "no port", "10.0.0.1:80\n10.0.0.2\n", { "api.conf:2: '10.0.0.2' has no port; write it as host:port" } },
	{ "host name",
	  "api.internal:80\n",
	  { "api.conf:1: 'api.internal:80' is not a numeric IP address (host names are not resolved" } },
	{ "weight not a number",
	  "10.0.0.1:80 heavy\n",
	  { "api.conf:1: weight 'heavy' is not a number from 1 to 1000" } },
	{ "weight too big", "\n10.0.0.1:80 1001\n", { "api.conf:2: weight '1001' is not a number from 1 to 1000" } },
	{ "weight 0", "10.0.0.1:80 0\n", { "api.conf:1: weight 0 is out of range (1-1000); leave the endpoint out" } },
	{ "weight signed", "10.0.0.1:80 +2\n", { "api.conf:1: weight '+2' is not a number from 1 to 1000" } },
	{ "bad zone",
	  "10.0.0.1:80 1 eu/west\n",
	  { "api.conf:1: zone 'eu/west' has a character other than A-Z, a-z, 0-9, '.', '_', '-'; write a zone "
	    "name such as eu-west-1a, or '-' for none" } },
	{ "zone starting with a dash", "10.0.0.1:80 1 -a\n", { "api.conf:1: zone '-a' does not start with a letter" } },
	{ "zone too long",
	  "10.0.0.1:80 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  { "api.conf:1: zone 'aaaa" } },
	{ "bad priority",
	  "10.0.0.1:80 1 a 65536\n",
	  { "api.conf:1: priority '65536' is not a number from 0 to 65535 (lower is preferred)" } },
	{ "five fields",
	  "10.0.0.1:80 1 a 0 x\n",
	  { "api.conf:1: more than 4 fields; a line is: address [weight [zone [priority]]]" } },
	{ "duplicate",
	  "10.0.0.1:80\n10.0.0.2:80\n[::ffff:10.0.0.1]:80 3\n",
	  { "api.conf:3: 10.0.0.1:80 is already on line 1; list each endpoint once" } },
	{ "every bad line is reported",
	  "x\n10.0.0.1:80\ny 2\n10.0.0.2:80 0\n",
	  { "api.conf:1: 'x' is not a numeric IP address", "api.conf:3: 'y' is not a numeric IP address",
	    "api.conf:4: weight 0 is out of range" } },
	{ "NUL byte",
	  "10.0.0.1:80\n\n10.0.0.2:80\0\n",
	  { "api.conf:3: contains a NUL byte; an endpoint file is text" } },
	{ "control characters are echoed as ?", "10.0.0.1:80 1 a\x1b[31m\n", { "api.conf:1: zone 'a?[31m' has a" } },
	{ "libconfig syntax",
	  "endpoints = ( { address = \"10.0.0.1:80\" } \n",
	  { "api.conf:2: syntax error: unexpected text; write endpoints = ( { address = \"ip:port\"; }, ... );" } },
	{ "libconfig unknown root key",
	  "endpoints = ( );\nservices = ( );\n",
	  { "api.conf:2: services: unknown key; an endpoint file holds only endpoints = ( ... );" } },
	{ "a first word other than endpoints is a line",
	  "web = 1;\n",
	  { "api.conf:1: 'web' is not a numeric IP address" } },
	{ "libconfig, another root key after endpoints",
	  "endpoints = ( );\nweb = 1;\n",
	  { "api.conf:2: web: unknown key" } },
	{ "libconfig not a list",
	  "endpoints = [ \"10.0.0.1:80\" ];\n",
	  { "api.conf:1: endpoints: expected a list ( { address = \"ip:port\"; }, ... ), got an array [...]" } },
	{ "libconfig fields",
	  "endpoints = (\n { address = \"10.0.0.1\"; },\n { weight = 2; },\n { address = \"10.0.0.3:80\"; weight = "
	  "4294967297; },\n { address = \"10.0.0.4:80\"; zone = 7; prio = 1; }\n);\n",
	  { "api.conf:2: endpoints[0].address: '10.0.0.1' has no port",
	    "api.conf:3: endpoints[1]: missing required key "
	    "'address'",
	    "api.conf:4: endpoints[2].weight: 4294967297 is out of range (1-1000)",
	    "api.conf:5: endpoints[3].prio: unknown key; valid keys are address, weight, zone, priority",
	    "api.conf:5: endpoints[3].zone: expected a string, got an integer" } },
	{ "libconfig duplicate",
	  "endpoints = ( { address = \"10.0.0.1:80\"; },\n{ address = \"10.0.0.1:80\"; } );",
	  { "api.conf:2: 10.0.0.1:80 is already on line 1" } },
	{ "libconfig @include",
	  "endpoints = ( );\n  @include \"/etc/passwd\"\n",
	  { "api.conf:2: @include is not allowed in an endpoint file" } },
};

static void test_bad(void **state)
{
	size_t c, i, k;

	(void)state;
	for (c = 0; c < sizeof(bads) / sizeof(bads[0]); c++) {
		const struct bad *b = &bads[c];
		struct epfile_errors errs = { 0 };
		struct ep_entry *eps = (struct ep_entry *)1;
		size_t n = 99, len = strlen(b->text);
		int r;

		if (!strcmp(b->name, "NUL byte"))
			len = 26; /* through the NUL and its newline */
		r = epfile_parse(b->text, len, "api.conf", &eps, &n, &errs);
		if (r != -EINVAL)
			fail_msg("%s: returned %d, expected -EINVAL", b->name, r);
		assert_null(eps);
		assert_int_equal(n, 0);
		for (k = 0; k < 6 && b->msgs[k]; k++)
			;
		if (errs.n != k) {
			for (i = 0; i < errs.n; i++)
				print_message("  %s\n", errs.msgs[i]);
			fail_msg("%s: %zu messages, expected %zu", b->name, errs.n, k);
		}
		for (i = 0; i < k; i++)
			if (strncmp(errs.msgs[i], b->msgs[i], strlen(b->msgs[i])))
				fail_msg("%s: message %zu is\n  %s\nexpected it to start with\n  %s", b->name, i,
					 errs.msgs[i], b->msgs[i]);
		epfile_errors_free(&errs);
	}
}

/* Limits: 1024 endpoints pass, 1025 do not; a long line; many bad lines give 20 messages and a "more" line. */
static void test_limits(void **state)
{
	struct epfile_errors errs = { 0 };
	struct ep_entry *eps;
	size_t n, i, len = 0;
	char *t = malloc(1100 * 32);

	(void)state;
	assert_non_null(t);
	for (i = 0; i < 1024; i++)
		len += (size_t)sprintf(t + len, "10.1.%zu.%zu:80\n", i / 256, i % 256);
	assert_int_equal(epfile_parse(t, len, "big", &eps, &n, &errs), 0);
	assert_int_equal(n, 1024);
	free(eps);
	len += (size_t)sprintf(t + len, "10.2.0.1:80\n10.2.0.2:80\n");
	assert_int_equal(epfile_parse(t, len, "big", &eps, &n, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0], "big:1025: more than 1024 endpoints; that is the most one service can have");
	epfile_errors_free(&errs);

	memset(t, ' ', 1030);
	memcpy(t + 1030, "10.0.0.1:80\n", 13);
	assert_int_equal(epfile_parse(t, strlen(t), "long", &eps, &n, &errs), -EINVAL);
	assert_string_equal(errs.msgs[0], "long:1: the line is longer than 1024 bytes");
	epfile_errors_free(&errs);

	for (i = 0, len = 0; i < 50; i++)
		len += (size_t)sprintf(t + len, "bad%zu\n", i);
	assert_int_equal(epfile_parse(t, len, "many", &eps, &n, &errs), -EINVAL);
	assert_int_equal(errs.n, EPFILE_MAX_ERRORS + 1);
	assert_true(errs.more);
	assert_string_equal(errs.msgs[EPFILE_MAX_ERRORS], "many: ... more errors not shown");
	epfile_errors_free(&errs);
	/* errs may be NULL: the result alone */
	assert_int_equal(epfile_parse("x\n", 2, "quiet", &eps, &n, NULL), -EINVAL);
	free(t);
}

static void test_zone_problem(void **state)
{
	(void)state;
	assert_null(ep_zone_problem("eu-west-1a"));
	assert_null(ep_zone_problem("Z"));
	assert_null(ep_zone_problem("a.b_c-d"));
	assert_string_equal(ep_zone_problem(""), "is empty");
	assert_string_equal(ep_zone_problem("_a"), "does not start with a letter or digit");
	assert_string_equal(ep_zone_problem("a b"), "has a character other than A-Z, a-z, 0-9, '.', '_', '-'");
	assert_null(ep_zone_problem("123456789012345678901234567890123456789012345678901234567890123"));
	assert_string_equal(ep_zone_problem("1234567890123456789012345678901234567890123456789012345678901234"),
			    "is longer than 63 characters");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_zone_problem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
