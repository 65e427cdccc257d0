// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/identity.c: SPIFFE ID syntax (valid IDs, then each way to be
 * invalid with its message), the cgroup -> identity map (first match wins,
 * ancestors, path forms), and authorization (exact, glob, subtree, default
 * trust domain), each with a failure table.
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

#include "codec/identity.h"

/* --- SPIFFE ID syntax -------------------------------------------------------- */

static void test_spiffe_valid(void **state)
{
	static const char *const ok[] = {
		"spiffe://example.org",
		"spiffe://example.org/ns/default/sa/web",
		"spiffe://a",
		"spiffe://my-td_1.example.org/Path.With-Mixed_Case/0",
		"spiffe://td/a/b/c/d/e/f/g",
		"spiffe://td/...", /* "..." is a name, not a relative segment */
		"spiffe://td/.a/a.",
	};
	char err[256], td[SPIFFE_TD_MAX + 1];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		err[0] = '\0';
		if (spiffe_id_check(ok[i], strlen(ok[i]), err, sizeof(err)))
			fail_msg("'%s' refused: %s", ok[i], err);
	}
	assert_int_equal(spiffe_trust_domain("spiffe://example.org/ns/x", td, sizeof(td)), 0);
	assert_string_equal(td, "example.org");
	assert_int_equal(spiffe_trust_domain("spiffe://example.org", td, sizeof(td)), 0);
	assert_string_equal(td, "example.org");
	assert_int_equal(spiffe_trust_domain("spiffe://example.org/x", td, 11), -ENOSPC);
	assert_int_equal(spiffe_trust_domain("spiffe://Example.org/x", td, sizeof(td)), -EINVAL);
	assert_true(spiffe_in_trust_domain("spiffe://example.org/x", "example.org"));
	assert_true(spiffe_in_trust_domain("spiffe://example.org", "example.org"));
	assert_false(spiffe_in_trust_domain("spiffe://example.org.evil.com/x", "example.org"));
	assert_false(spiffe_in_trust_domain("spiffe://example.orgx/x", "example.org"));
	assert_false(spiffe_in_trust_domain("spiffe://other.org/x", "example.org"));
	assert_false(spiffe_in_trust_domain("spiffe://example.org//x", "example.org"));
	assert_false(spiffe_in_trust_domain("spiffe://example.org/x", ""));
	assert_false(spiffe_in_trust_domain(NULL, "example.org"));
	assert_int_equal(spiffe_td_check("example.org", err, sizeof(err)), 0);
}

static void test_spiffe_longest(void **state)
{
	char id[SPIFFE_ID_MAX + 2], td[300];
	size_t i;

	strcpy(id, "spiffe://td/");
	for (i = strlen(id); i < SPIFFE_ID_MAX; i++)
		id[i] = 'x';
	id[SPIFFE_ID_MAX] = '\0';
	assert_int_equal(spiffe_id_check(id, SPIFFE_ID_MAX, NULL, 0), 0);
	id[SPIFFE_ID_MAX] = 'x';
	id[SPIFFE_ID_MAX + 1] = '\0';
	assert_int_equal(spiffe_id_check(id, SPIFFE_ID_MAX + 1, NULL, 0), -EINVAL);

	memset(td, 'a', SPIFFE_TD_MAX);
	td[SPIFFE_TD_MAX] = '\0';
	assert_int_equal(spiffe_td_check(td, NULL, 0), 0);
	td[SPIFFE_TD_MAX] = 'a';
	td[SPIFFE_TD_MAX + 1] = '\0';
	assert_int_equal(spiffe_td_check(td, NULL, 0), -EINVAL);
}

struct bad_id {
	const char *id;
	size_t len; /* 0: strlen */
	const char *msg;
};

static void test_spiffe_invalid(void **state)
{
	static const struct bad_id cases[] = {
		{ "", 0, "does not start with 'spiffe://'" },
		{ "spiffe:/example.org", 0, "does not start with 'spiffe://'" },
		{ "SPIFFE://example.org/x", 0, "does not start with 'spiffe://' (the scheme is lowercase)" },
		{ "https://example.org/x", 0, "does not start with 'spiffe://'" },
		{ "spiffe://", 0, "has an empty trust domain" },
		{ "spiffe:///x", 0, "has an empty trust domain" },
		{ "spiffe://Example.org/x", 0, "trust domain has uppercase 'E'; SPIFFE trust domains are lowercase" },
		{ "spiffe://example.org:8443/x", 0, "trust domain has a port (':')" },
		{ "spiffe://user@example.org/x", 0, "trust domain has userinfo ('@')" },
		{ "spiffe://exa mple.org", 0, "trust domain has byte 0x20" },
		{ "spiffe://ex%41mple.org", 0, "trust domain has '%'" },
		{ "spiffe://example.org/", 0, "ends with '/'; remove the trailing slash" },
		{ "spiffe://example.org/ns/", 0, "ends with '/'" },
		{ "spiffe://example.org//ns", 0, "has an empty path segment ('//')" },
		{ "spiffe://example.org/./ns", 0, "has a '.' path segment" },
		{ "spiffe://example.org/ns/..", 0, "has a '..' path segment" },
		{ "spiffe://example.org/ns?x=1", 0, "has a query ('?')" },
		{ "spiffe://example.org/ns#frag", 0, "has a fragment ('#')" },
		{ "spiffe://example.org/n%20s", 0, "has percent-encoding ('%')" },
		{ "spiffe://example.org/n s", 0, "path has byte 0x20; segments may only hold" },
		{ "spiffe://example.org/ns/\xc3\xa9", 0, "path has byte 0xc3" },
		{ "spiffe://example.org/a*", 0, "path has '*'" },
		{ "spiffe://example.org/x\0evil", 25, "contains a NUL byte" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_id *t = &cases[i];
		size_t len = t->len ? t->len : strlen(t->id);
		char err[256] = "";

		if (spiffe_id_check(t->id, len, err, sizeof(err)) != -EINVAL)
			fail_msg("'%s' accepted", t->id);
		if (!strstr(err, t->msg))
			fail_msg("'%s': message '%s' lacks '%s'", t->id, err, t->msg);
		/* the message quotes the input, controls replaced, on one line */
		assert_null(strchr(err, '\n'));
	}
	/* a small error buffer truncates, never overflows */
	{
		char small[8];

		memset(small, 'z', sizeof(small));
		assert_int_equal(spiffe_id_check("x", 1, small, sizeof(small)), -EINVAL);
		assert_int_equal(small[7], '\0');
	}
	assert_int_equal(spiffe_id_check(NULL, 0, NULL, 0), -EINVAL);
	assert_int_equal(spiffe_td_check(NULL, NULL, 0), -EINVAL);
	{
		char err[256];

		assert_int_equal(spiffe_td_check("a/b", err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "'a/b' trust domain has '/'; only a-z, 0-9, '.', '-' and '_' are allowed");
	}
}

/* --- cgroup -> identity ------------------------------------------------------------ */

static void test_map_lookup(void **state)
{
	static const struct {
		const char *glob, *id;
	} rules[] = {
		{ "system.slice/payments.service", "spiffe://td/ns/prod/sa/payments" },
		{ "system.slice/*.service", "spiffe://td/ns/host/sa/generic" },
		{ "/sys/fs/cgroup/kubepods.slice/kubepods-pod*.slice", "spiffe://td/ns/k8s/sa/pod" },
		{ "/weft-test.slice/", "spiffe://td/ns/test/sa/any" },
	};
	static const struct {
		const char *path, *want; /* NULL: no identity */
	} lookups[] = {
		/* first match wins: the exact rule before the glob */
		{ "system.slice/payments.service", "spiffe://td/ns/prod/sa/payments" },
		{ "system.slice/web.service", "spiffe://td/ns/host/sa/generic" },
		/* the same cgroup, written as /proc/PID/cgroup and as an absolute path */
		{ "/system.slice/web.service", "spiffe://td/ns/host/sa/generic" },
		{ "/sys/fs/cgroup/system.slice/web.service", "spiffe://td/ns/host/sa/generic" },
		{ "/sys/fs/cgroup/system.slice/web.service/", "spiffe://td/ns/host/sa/generic" },
		/* descendants inherit: a rule for a unit covers its sub-cgroups */
		{ "system.slice/payments.service/worker", "spiffe://td/ns/prod/sa/payments" },
		{ "system.slice/web.service/a/b/c", "spiffe://td/ns/host/sa/generic" },
		/* '*' stays inside one component */
		{ "system.slice/x/y.service", NULL },
		{ "system.slice/web.socket", NULL },
		{ "kubepods.slice/kubepods-pod123.slice", "spiffe://td/ns/k8s/sa/pod" },
		{ "kubepods.slice/kubepods-pod123.slice/cri-containerd-abc.scope", "spiffe://td/ns/k8s/sa/pod" },
		{ "kubepods.slice", NULL },
		{ "weft-test.slice", "spiffe://td/ns/test/sa/any" },
		{ "weft-test.slice/client", "spiffe://td/ns/test/sa/any" },
		{ "weft-test.slicex", NULL },
		{ "", NULL },
		{ "/", NULL },
		{ "/sys/fs/cgroupx/system.slice/web.service", NULL },
		{ "user.slice/user-1000.slice", NULL },
	};
	struct id_map *m = id_map_new(NULL);
	char err[256];
	size_t i;

	assert_non_null(m);
	assert_null(id_map_lookup(m, "system.slice/web.service"));
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (id_map_add(m, rules[i].glob, rules[i].id, err, sizeof(err)))
			fail_msg("rule %zu: %s", i, err);
	assert_int_equal(id_map_count(m), 4);
	for (i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		const char *got = id_map_lookup(m, lookups[i].path);

		if (!lookups[i].want ? got != NULL : (!got || strcmp(got, lookups[i].want) != 0))
			fail_msg("'%s' -> %s, expected %s", lookups[i].path, got ? got : "(none)",
				 lookups[i].want ? lookups[i].want : "(none)");
	}
	assert_null(id_map_lookup(m, NULL));
	assert_null(id_map_lookup(NULL, "x"));
	id_map_free(m);
	id_map_free(NULL);
}

/* A non-default mount point: rules and lookups under it are relative to it. */
static void test_map_mount(void **state)
{
	struct id_map *m = id_map_new("/run/cg2/");
	char err[256];

	assert_int_equal(id_map_add(m, "/run/cg2/app.slice/*", "spiffe://td/app", err, sizeof(err)), 0);
	assert_string_equal(id_map_lookup(m, "/run/cg2/app.slice/one"), "spiffe://td/app");
	assert_string_equal(id_map_lookup(m, "app.slice/one"), "spiffe://td/app");
	assert_null(id_map_lookup(m, "/sys/fs/cgroup/app.slice/one"));
	assert_int_equal(id_map_add(m, "/sys/fs/cgroup/x", "spiffe://td/x", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "cgroup: '/sys/fs/cgroup/x' is outside the cgroup2 mount '/run/cg2'");
	id_map_free(m);
}

static void test_map_add_fail(void **state)
{
	static const struct {
		const char *glob, *id, *msg;
	} cases[] = {
		{ "", "spiffe://td/x", "cgroup: empty" },
		{ NULL, "spiffe://td/x", "cgroup: empty" },
		{ "/", "spiffe://td/x", "names the root cgroup" },
		{ "/sys/fs/cgroup", "spiffe://td/x", "names the root cgroup" },
		{ "/sys/fs/cgroup/", "spiffe://td/x", "names the root cgroup" },
		{ "a/../b", "spiffe://td/x", "has a '..' component" },
		{ "..", "spiffe://td/x", "has a '..' component" },
		{ "/sys/kernel/x", "spiffe://td/x", "outside the cgroup2 mount" },
		{ "a.slice", NULL, "identity: missing" },
		{ "a.slice", "spiffe://TD/x",
		  "identity: 'spiffe://TD/x' is not a valid SPIFFE ID: trust domain has uppercase 'T'" },
		{ "a.slice", "td/x", "identity: 'td/x' is not a valid SPIFFE ID: does not start with 'spiffe://'" },
		{ "a.slice", "spiffe://td/x/", "ends with '/'" },
	};
	struct id_map *m = id_map_new(NULL);
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";

		assert_int_equal(id_map_add(m, cases[i].glob, cases[i].id, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].msg);
	}
	assert_int_equal(id_map_count(m), 0);
	/* "a..b" is a name, not a parent reference */
	assert_int_equal(id_map_add(m, "a..b", "spiffe://td/x", NULL, 0), 0);
	id_map_free(m);
}

static void test_map_limit(void **state)
{
	struct id_map *m = id_map_new(NULL);
	char glob[32], err[128];
	int i;

	for (i = 0; i < ID_MAP_MAX; i++) {
		snprintf(glob, sizeof(glob), "s/%d", i);
		assert_int_equal(id_map_add(m, glob, "spiffe://td/x", NULL, 0), 0);
	}
	assert_int_equal(id_map_add(m, "s/last", "spiffe://td/x", err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "too many identity rules (at most 4096); use globs");
	assert_string_equal(id_map_lookup(m, "s/4095/child"), "spiffe://td/x");
	id_map_free(m);
}

/* --- authorization ------------------------------------------------------------------ */

static void test_policy_default(void **state)
{
	struct id_policy *p = id_policy_new("example.org");

	assert_non_null(p);
	assert_int_equal(id_policy_count(p), 0);
	assert_int_equal(id_policy_check(p, "spiffe://example.org/ns/a/sa/b"), ID_ALLOW);
	assert_int_equal(id_policy_check(p, "spiffe://example.org"), ID_ALLOW);
	assert_int_equal(id_policy_check(p, "spiffe://other.org/ns/a/sa/b"), ID_DENY_TRUST_DOMAIN);
	assert_int_equal(id_policy_check(p, "spiffe://example.org.evil/x"), ID_DENY_TRUST_DOMAIN);
	assert_int_equal(id_policy_check(p, "spiffe://example.org/x/"), ID_DENY_INVALID);
	assert_int_equal(id_policy_check(p, "spiffe://example.org/x\n"), ID_DENY_INVALID);
	assert_int_equal(id_policy_check(p, ""), ID_DENY_INVALID);
	assert_int_equal(id_policy_check(p, NULL), ID_DENY_INVALID);
	id_policy_free(p);
	assert_null(id_policy_new("Example.org"));
	assert_null(id_policy_new(""));
	assert_null(id_policy_new(NULL));
	id_policy_free(NULL);
}

static void test_policy_patterns(void **state)
{
	static const char *const allow[] = {
		"spiffe://example.org/ns/prod/sa/web",   /* exact */
		"spiffe://example.org/ns/prod/sa/api-*", /* glob in a segment */
		"spiffe://example.org/ns/batch/**",      /* subtree */
		"spiffe://example.org/ns/*/sa/metrics",  /* any namespace, one segment */
		"spiffe://partner.org/sa/[ab]?",         /* character classes */
	};
	static const struct {
		const char *id;
		enum id_verdict want;
	} checks[] = {
		{ "spiffe://example.org/ns/prod/sa/web", ID_ALLOW },
		{ "spiffe://example.org/ns/prod/sa/web2", ID_DENY_NOT_ALLOWED },
		{ "spiffe://example.org/ns/prod/sa/we", ID_DENY_NOT_ALLOWED },
		{ "spiffe://example.org/ns/prod/sa/api-v1", ID_ALLOW },
		{ "spiffe://example.org/ns/prod/sa/api-", ID_ALLOW },
		{ "spiffe://example.org/ns/prod/sa/api-v1/extra", ID_DENY_NOT_ALLOWED }, /* '*' is one segment */
		{ "spiffe://example.org/ns/batch", ID_ALLOW },
		{ "spiffe://example.org/ns/batch/sa/x", ID_ALLOW },
		{ "spiffe://example.org/ns/batch/a/b/c/d", ID_ALLOW },
		{ "spiffe://example.org/ns/batchx/sa/x", ID_DENY_NOT_ALLOWED },
		{ "spiffe://example.org/ns/dev/sa/metrics", ID_ALLOW },
		{ "spiffe://example.org/ns/dev/x/sa/metrics", ID_DENY_NOT_ALLOWED },
		{ "spiffe://partner.org/sa/a1", ID_ALLOW }, /* explicit patterns may name other domains */
		{ "spiffe://partner.org/sa/c1", ID_DENY_NOT_ALLOWED },
		{ "spiffe://example.org/ns/other/sa/web", ID_DENY_NOT_ALLOWED }, /* a list replaces the default */
		{ "spiffe://example.org/ns/prod/sa/web/", ID_DENY_INVALID },
		{ "spiffe://example.org/ns/batch/../prod", ID_DENY_INVALID },
	};
	struct id_policy *p = id_policy_new("example.org");
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(allow) / sizeof(allow[0]); i++)
		if (id_policy_allow(p, allow[i], err, sizeof(err)))
			fail_msg("'%s': %s", allow[i], err);
	assert_int_equal(id_policy_count(p), 5);
	for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		enum id_verdict v = id_policy_check(p, checks[i].id);

		if (v != checks[i].want)
			fail_msg("'%s': %s, expected %s", checks[i].id, id_verdict_name(v),
				 id_verdict_name(checks[i].want));
	}
	id_policy_free(p);
}

/* A subtree pattern never reaches above its own prefix, even to the trust domain. */
static void test_policy_subtree_root(void **state)
{
	struct id_policy *p = id_policy_new("example.org");

	assert_int_equal(id_policy_allow(p, "spiffe://example.org/**", NULL, 0), 0);
	assert_int_equal(id_policy_check(p, "spiffe://example.org"), ID_ALLOW);
	assert_int_equal(id_policy_check(p, "spiffe://example.org/a/b"), ID_ALLOW);
	assert_int_equal(id_policy_check(p, "spiffe://other.org/a"), ID_DENY_NOT_ALLOWED);
	id_policy_free(p);

	p = id_policy_new("example.org");
	assert_int_equal(id_policy_allow(p, "spiffe://*/ns/x/**", NULL, 0), 0);
	assert_int_equal(id_policy_check(p, "spiffe://any.org/ns/x/y"), ID_ALLOW);
	assert_int_equal(id_policy_check(p, "spiffe://any.org/ns/y"), ID_DENY_NOT_ALLOWED);
	id_policy_free(p);
}

static void test_policy_allow_fail(void **state)
{
	static const struct {
		const char *pat, *msg;
	} cases[] = {
		{ "", "empty identity; write a SPIFFE ID such as \"spiffe://example.org/ns/prod/sa/web\"" },
		{ NULL, "empty identity" },
		{ "web", "'web' does not start with 'spiffe://'" },
		{ "*", "'*' does not start with 'spiffe://'" },
		{ "spiffe://example.org/ns/**/sa", "'**' is only allowed as the whole last segment" },
		{ "spiffe://example.org/a**", "'**' is only allowed" },
		{ "spiffe://example.org/a\\*", "backslash escapes are not supported" },
		{ "spiffe://example.org/a b", "has byte 0x20, which no SPIFFE ID contains" },
		{ "spiffe://example.org/a?x=1", "has '=', which no SPIFFE ID contains" },
		{ "spiffe://Example.org/x", "is not a valid SPIFFE ID: trust domain has uppercase 'E'" },
		{ "spiffe://example.org/x/", "is not a valid SPIFFE ID: ends with '/'" },
		{ "spiffe://example.org//x", "empty path segment" },
	};
	struct id_policy *p = id_policy_new("example.org");
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";

		assert_int_equal(id_policy_allow(p, cases[i].pat, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].msg);
	}
	assert_int_equal(id_policy_count(p), 0);
	/* nothing was added: the default still applies */
	assert_int_equal(id_policy_check(p, "spiffe://example.org/any"), ID_ALLOW);
	id_policy_free(p);
}

static void test_verdict_names(void **state)
{
	assert_string_equal(id_verdict_name(ID_ALLOW), "allow");
	assert_string_equal(id_verdict_name(ID_DENY_NOT_ALLOWED), "not_allowed");
	assert_string_equal(id_verdict_name(ID_DENY_TRUST_DOMAIN), "trust_domain");
	assert_string_equal(id_verdict_name(ID_DENY_INVALID), "invalid_identity");
	assert_string_equal(id_verdict_name((enum id_verdict)99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spiffe_valid),      cmocka_unit_test(test_spiffe_longest),
		cmocka_unit_test(test_spiffe_invalid),    cmocka_unit_test(test_map_lookup),
		cmocka_unit_test(test_map_mount),         cmocka_unit_test(test_map_add_fail),
		cmocka_unit_test(test_map_limit),         cmocka_unit_test(test_policy_default),
		cmocka_unit_test(test_policy_patterns),   cmocka_unit_test(test_policy_subtree_root),
		cmocka_unit_test(test_policy_allow_fail), cmocka_unit_test(test_verdict_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
