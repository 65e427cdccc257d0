// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/agent/nodecheck.c: `weftctl check`'s verdicts from made-up facts.
 * Tables: kernel releases, mountinfo snippets, capability masks, descriptor
 * limits, pin path states, agent heartbeats, Kubernetes answers -> ok / warn /
 * FAIL with what the detail and the fix must say. Then the rendering: every
 * text line within 80 columns, JSON valid, and the request paths.
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

#include "../common/json_valid.h"
#include "agent/nodecheck.h"

#define CAP(n) (1ull << (n))
#define ALL_CAPS (CAP(39) | CAP(12) | CAP(21) | CAP(19) | CAP(2))

static const char *const HYBRID_MOUNTINFO =
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	"45 23 0:40 / /sys/fs/bpf rw,relatime - bpf bpf rw\n";
static const char *const V2_MOUNTINFO =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	"29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

static struct weft_config *conf(const char *text)
{
	struct cfg_errors errs = { 0 };
	struct weft_config *c = NULL;

	if (cfg_load_string(text, "test.conf", &c, &errs) < 0) {
		size_t i;

		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		fail_msg("config does not load");
	}
	cfg_errors_free(&errs);
	return c;
}

#define K8S_CONF                                                                                                         \
	"agent: { bpf_pin_path = \"/sys/fs/bpf/weft\"; };\n"                                                             \
	"kubernetes: { api = \"https://127.0.0.1:6443\"; token_file = \"/run/sa/token\"; ca_file = \"/run/sa/ca.crt\"; " \
	"node_name = \"node-a\"; };\n"

/* Facts of a healthy node: every check ok. cfg may be NULL (no config loaded). */
static void healthy(struct nc_facts *f, const struct weft_config *cfg)
{
	size_t i;
	int k;

	memset(f, 0, sizeof(*f));
	f->config_path = "test.conf";
	f->cfg = cfg;
	f->release = "6.18.44-fc-v1147";
	f->mountinfo = V2_MOUNTINFO;
	f->n_features = probe_n_features;
	for (i = 0; i < probe_n_features; i++)
		f->features[i] = 1;
	f->pin.state = PROBE_PIN_BPFFS;
	snprintf(f->pin.dir, sizeof(f->pin.dir), "%s", "/sys/fs/bpf");
	f->caps_eff = ALL_CAPS;
	f->nofile_soft = 1024;
	f->nofile_hard = 1048576;
	f->agent_err = -ENOENT;
	f->token_len = 800;
	for (k = 0; k < NC_KINDS; k++) {
		f->list[k] = (struct nc_api_answer){ .done = true, .status = 200, .items = k == NC_NODES ? 1 : -1 };
		f->watch[k] = (struct nc_api_answer){ .done = true, .status = 200, .items = -1 };
	}
}

static const struct nc_check *judge(const struct nc_facts *f, struct nc_report *r, const char *name)
{
	memset(r, 0, sizeof(*r));
	nc_judge(f, r);
	assert_false(r->failed);
	return nc_find(r, name);
}

static void expect(const struct nc_check *c, enum nc_status st, const char *in_detail, const char *in_fix)
{
	assert_non_null(c);
	if (c->status != st)
		fail_msg("%s: status %s, want %s (%s)", c->name, nc_status_name(c->status), nc_status_name(st),
			 c->detail);
	if (in_detail && !strstr(c->detail, in_detail))
		fail_msg("%s: detail '%s' lacks '%s'", c->name, c->detail, in_detail);
	if (in_fix && !strstr(c->fix, in_fix))
		fail_msg("%s: fix '%s' lacks '%s'", c->name, c->fix, in_fix);
}

static void test_healthy_node(void **state)
{
	struct weft_config *cfg = conf(K8S_CONF);
	struct nc_report r;
	struct nc_facts f;
	size_t i;

	healthy(&f, cfg);
	judge(&f, &r, "config");
	assert_int_equal(nc_worst(&r), NC_OK);
	for (i = 0; i < r.n; i++)
		assert_int_equal(r.v[i].status, NC_OK);
	/* every check is there, in order */
	assert_string_equal(r.v[0].name, "config");
	assert_string_equal(r.v[1].name, "kernel");
	assert_string_equal(r.v[2].name, "btf");
	assert_string_equal(r.v[3].name, "cgroup2");
	assert_string_equal(r.v[4].name, "bpf.cgroup_skb");
	assert_int_equal(r.n, 4 + probe_n_features + 4 + 2 + NC_KINDS + 1);
	expect(nc_find(&r, "bpf.set_retval"), NC_OK, "bpf_set_retval in cgroup/connect (5.18)", NULL);
	expect(nc_find(&r, "k8s.rbac.pods"), NC_OK, "spec.nodeName=node-a", NULL);
	expect(nc_find(&r, "k8s.node"), NC_OK, "node-a", NULL);
	nc_report_free(&r);
	cfg_free(cfg);
}

/* ---- kernel ---- */

static void test_kernel_versions(void **state)
{
	static const struct {
		const char *release;
		int set_retval, netns_sockops; /* probe results of two features */
		enum nc_status want;
		const char *detail, *not_in_detail;
	} t[] = {
		{ "6.18.44-fc-v1147", 1, 1, NC_OK, "weft needs 5.18 or later, for bpf_set_retval in cgroup/connect",
		  "(5.18)" },
		{ "5.18.0", 1, 1, NC_OK, "5.18.0 (weft needs 5.18", NULL },
		{ "6.1.0-18-amd64", 1, 1, NC_OK, "6.1.0-18-amd64", NULL },
		{ "10.0.1", 1, 1, NC_OK, NULL, NULL },
		/* older, but the probes found everything: a distribution kernel with backports */
		{ "5.14.0-362.el9.x86_64", 1, 1, NC_WARN, "backports", NULL },
		/* older, and it shows */
		{ "5.15.0-91-generic", 0, 1, NC_FAIL,
		  "older than 5.18, which weft needs for bpf_set_retval in "
		  "cgroup/connect (5.18)",
		  "netns_cookie" },
		{ "5.10.0", 0, 0, NC_FAIL, "bpf_get_netns_cookie in sockops (5.15)", "getpeername" },
		{ "5.4.0", 0, 0, NC_FAIL, "cgroup/getpeername4, getpeername6 (5.8)", "sockops (4.13)" },
		{ "garbage", 1, 1, NC_WARN, "cannot read a version from the release 'garbage'", NULL },
		{ "", 1, 1, NC_WARN, NULL, NULL },
	};
	size_t i, j;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct nc_report r;
		struct nc_facts f;
		const struct nc_check *c;

		healthy(&f, NULL);
		f.release = t[i].release;
		for (j = 0; j < probe_n_features; j++) {
			if (!strcmp(probe_features[j].id, "set_retval"))
				f.features[j] = t[i].set_retval;
			if (!strcmp(probe_features[j].id, "netns_cookie_sockops"))
				f.features[j] = t[i].netns_sockops;
		}
		c = judge(&f, &r, "kernel");
		expect(c, t[i].want, t[i].detail, t[i].want == NC_FAIL ? "upgrade to Linux 5.18" : NULL);
		if (t[i].not_in_detail && strstr(c->detail, t[i].not_in_detail))
			fail_msg("%s: '%s' should not be in '%s'", t[i].release, t[i].not_in_detail, c->detail);
		nc_report_free(&r);
	}
}

static void test_min_kernel(void **state)
{
	unsigned maj, min;
	size_t i;

	probe_min_kernel(&maj, &min);
	assert_int_equal(maj, 5);
	assert_int_equal(min, 18);
	/* the list is oldest first, and its ids are unique */
	for (i = 1; i < probe_n_features; i++) {
		const struct probe_feature *a = &probe_features[i - 1], *b = &probe_features[i];
		size_t j;

		assert_true(a->major < b->major || (a->major == b->major && a->minor <= b->minor));
		for (j = 0; j < i; j++)
			assert_string_not_equal(probe_features[j].id, b->id);
	}
	assert_true(probe_n_features <= NC_MAX_FEATURES);
}

static void test_btf(void **state)
{
	struct nc_report r;
	struct nc_facts f;

	healthy(&f, NULL);
	expect(judge(&f, &r, "btf"), NC_OK, "/sys/kernel/btf/vmlinux", NULL);
	nc_report_free(&r);
	f.btf_err = -ENOENT;
	expect(judge(&f, &r, "btf"), NC_FAIL, "/sys/kernel/btf/vmlinux is missing", "CONFIG_DEBUG_INFO_BTF=y");
	nc_report_free(&r);
	f.btf_err = -EACCES;
	expect(judge(&f, &r, "btf"), NC_FAIL, "Permission denied", "CONFIG_DEBUG_INFO_BTF=y");
	nc_report_free(&r);
}

/* ---- cgroup2 from mountinfo ---- */

static void test_cgroup2_mountinfo(void **state)
{
	static const struct {
		const char *mountinfo;
		enum nc_status want;
		const char *detail;
	} t[] = {
		{ V2_MOUNTINFO, NC_OK, "/sys/fs/cgroup" },
		{ HYBRID_MOUNTINFO, NC_OK, "/sys/fs/cgroup/unified (hybrid: beside 2 cgroup v1 hierarchies)" },
		/* optional fields before the separator, an escaped space in the mount point */
		{ "36 25 0:30 / /run/my\\040cgroup rw shared:9 master:2 propagate_from:1 - cgroup2 none rw\n", NC_OK,
		  "/run/my cgroup" },
		/* the first cgroup2 mount wins; no trailing newline */
		{ "1 0 0:1 / /a rw - cgroup2 x rw\n2 0 0:2 / /b rw - cgroup2 x rw", NC_OK, "/a" },
		/* cgroup v1 only */
		{ "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", NC_FAIL,
		  "no cgroup2 filesystem in /proc/self/mountinfo" },
		/* "cgroup2" in a mount point or options is not the type */
		{ "1 0 0:1 / /cgroup2 rw - tmpfs cgroup2 rw\n", NC_FAIL, "no cgroup2" },
		/* lines that are not mountinfo lines */
		{ "garbage\n\n - \n1 2 - cgroup2\n", NC_FAIL, "no cgroup2" },
		{ "", NC_FAIL, "no cgroup2" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct nc_report r;
		struct nc_facts f;

		healthy(&f, NULL);
		f.mountinfo = t[i].mountinfo;
		expect(judge(&f, &r, "cgroup2"), t[i].want, t[i].detail,
		       t[i].want == NC_FAIL ? "systemd.unified_cgroup_hierarchy=1" : NULL);
		nc_report_free(&r);
	}
}

static void test_cgroup2_unreadable(void **state)
{
	struct nc_report r;
	struct nc_facts f;

	healthy(&f, NULL);
	f.mountinfo = NULL;
	f.mountinfo_err = -EACCES;
	expect(judge(&f, &r, "cgroup2"), NC_FAIL, "cannot read /proc/self/mountinfo: Permission denied", NULL);
	nc_report_free(&r);
}

/* ---- BPF features ---- */

static void test_features(void **state)
{
	struct weft_config *cfg = conf("agent: { max_connections = 100; };");
	struct nc_report r;
	struct nc_facts f;
	size_t i, n = 0;

	healthy(&f, NULL);
	f.features[probe_n_features - 1] = 0; /* set_retval: the newest */
	judge(&f, &r, "bpf");
	for (i = 0; i < r.n; i++)
		n += !strncmp(r.v[i].name, "bpf.", 4);
	assert_int_equal(n, probe_n_features);
	assert_null(nc_find(&r, "bpf"));
	expect(nc_find(&r, "bpf.set_retval"), NC_FAIL,
	       "bpf_set_retval in cgroup/connect: not in this kernel (Linux 5.18 brought it; weft needs it for fail_mode",
	       "upgrade to Linux 5.18 or later");
	expect(nc_find(&r, "bpf.connect"), NC_OK, "cgroup/connect4, connect6 (4.17)", NULL);
	nc_report_free(&r);

	/* a probe that failed for another reason */
	healthy(&f, NULL);
	f.features[0] = -ENOMEM;
	expect(judge(&f, &r, "bpf.cgroup_skb"), NC_FAIL, "the probe failed: Cannot allocate memory", NULL);
	nc_report_free(&r);

	/* not allowed to probe: one line, no per-feature verdicts */
	healthy(&f, cfg);
	f.features[0] = -EPERM;
	expect(judge(&f, &r, "bpf"), NC_WARN, "not allowed to load BPF programs", "run weftctl check as root");
	for (i = 0; i < r.n; i++)
		assert_false(!strncmp(r.v[i].name, "bpf.", 4));
	assert_int_equal(nc_worst(&r), NC_WARN);
	nc_report_free(&r);
	cfg_free(cfg);
}

/* ---- bpffs ---- */

static void test_bpffs(void **state)
{
	static const struct {
		enum probe_pin_state state;
		const char *dir;
		enum nc_status want;
		const char *detail, *fix;
	} t[] = {
		{ PROBE_PIN_BPFFS, "/sys/fs/bpf/weft", NC_OK, "agent.bpf_pin_path /sys/fs/bpf/weft is on bpffs", NULL },
		{ PROBE_PIN_BPFFS, "/sys/fs/bpf", NC_OK, "/sys/fs/bpf is bpffs; weftd will make the pin path", NULL },
		{ PROBE_PIN_MOUNT_HOME, "/sys/fs/bpf", NC_OK, "weftd will mount bpffs there", NULL },
		{ PROBE_PIN_HOME_BUSY, "/sys/fs/bpf", NC_FAIL, "is not bpffs and is not empty", "mount -t bpf bpf" },
		{ PROBE_PIN_HOME_ERROR, "/sys/fs/bpf", NC_FAIL, "cannot be read (Permission denied)", NULL },
		{ PROBE_PIN_NOT_BPFFS, "/tmp", NC_FAIL,
		  "is not on a BPF filesystem (/tmp is not bpffs): weftd refuses it",
		  "choose a path under /sys/fs/bpf" },
	};
	struct weft_config *cfg = conf("agent: { bpf_pin_path = \"/sys/fs/bpf/weft\"; };\n");
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct nc_report r;
		struct nc_facts f;

		healthy(&f, cfg);
		f.pin.state = t[i].state;
		f.pin.err = -EACCES;
		snprintf(f.pin.dir, sizeof(f.pin.dir), "%s", t[i].dir);
		expect(judge(&f, &r, "bpffs"), t[i].want, t[i].detail, t[i].fix);
		nc_report_free(&r);
	}
	cfg_free(cfg);
}

/* ---- capabilities ---- */

static void test_capabilities(void **state)
{
	static const struct {
		const char *conf;
		uint64_t eff;
		enum nc_status want;
		const char *detail, *not_in_detail;
	} t[] = {
		{ NULL, ALL_CAPS, NC_OK,
		  "CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH (uid 0)", NULL },
		{ NULL, ~0ull, NC_OK, "CAP_BPF", "NET_BIND" },
		{ NULL, 0, NC_FAIL,
		  "lacks CAP_BPF (load programs, make maps), CAP_NET_ADMIN (attach to cgroups, sockmaps, SO_MARK), "
		  "CAP_SYS_ADMIN (setns() into pods, mount bpffs), CAP_SYS_PTRACE (open other users' "
		  "/proc/PID/ns/net), CAP_DAC_READ_SEARCH (open_by_handle_at: cgroup id to path)",
		  NULL },
		{ NULL, ALL_CAPS & ~CAP(19), NC_FAIL, "lacks CAP_SYS_PTRACE (open other users'", "CAP_BPF" },
		{ NULL, ALL_CAPS & ~CAP(39), NC_FAIL, "lacks CAP_BPF (", "CAP_NET_ADMIN" },
		/* a port below 1024 in the config needs one more */
		{ "agent: { admin = \"127.0.0.1:80\"; };", ALL_CAPS, NC_FAIL, "lacks CAP_NET_BIND_SERVICE", NULL },
		{ "agent: { admin = \"127.0.0.1:80\"; };", ALL_CAPS | CAP(10), NC_OK, "CAP_NET_BIND_SERVICE", NULL },
		{ "agent: { outbound_port = 443; };", ALL_CAPS, NC_FAIL, "CAP_NET_BIND_SERVICE", NULL },
		{ "agent: { inbound = \"0.0.0.0:4143\"; };", ALL_CAPS, NC_OK, NULL, "NET_BIND" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct weft_config *cfg = t[i].conf ? conf(t[i].conf) : NULL;
		const struct nc_check *c;
		struct nc_report r;
		struct nc_facts f;

		healthy(&f, cfg);
		f.caps_eff = t[i].eff;
		c = judge(&f, &r, "capabilities");
		expect(c, t[i].want, t[i].detail, t[i].want == NC_FAIL ? "deploy/weftd.service" : NULL);
		if (t[i].not_in_detail && strstr(c->detail, t[i].not_in_detail))
			fail_msg("row %zu: '%s' should not be in '%s'", i, t[i].not_in_detail, c->detail);
		nc_report_free(&r);
		cfg_free(cfg);
	}
	/* capget failed */
	{
		struct nc_report r;
		struct nc_facts f;

		healthy(&f, NULL);
		f.caps_err = -EPERM;
		expect(judge(&f, &r, "capabilities"), NC_WARN, "cannot read", NULL);
		nc_report_free(&r);
	}
}

/* ---- RLIMIT_NOFILE ---- */

static void test_nofile(void **state)
{
	static const struct {
		const char *conf;
		uint64_t hard;
		enum nc_status want;
		const char *detail;
	} t[] = {
		{ NULL, UINT64_MAX, NC_OK, "hard limit unlimited, enough for agent.max_connections 65536" },
		{ NULL, 1048576, NC_OK, "hard limit 1048576" },
		/* 65536 connections * 4 (splice) + 1024 */
		{ NULL, 263168, NC_OK, NULL },
		{ NULL, 263167, NC_WARN, "about 65535 proxied connections" },
		{ NULL, 20000, NC_WARN,
		  "hard limit 20000 allows about 4744 proxied connections (4 descriptors each with agent.splice); "
		  "agent.max_connections is 65536" },
		{ "agent: { max_connections = 2000; };", 20000, NC_OK, "enough for agent.max_connections 2000" },
		{ "agent: { splice = false; };", 20000, NC_WARN,
		  "about 9488 proxied connections (2 descriptors each)" },
		{ NULL, 100, NC_WARN, "about 0 proxied" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct weft_config *cfg = t[i].conf ? conf(t[i].conf) : NULL;
		struct nc_report r;
		struct nc_facts f;

		healthy(&f, cfg);
		f.nofile_hard = t[i].hard;
		expect(judge(&f, &r, "nofile"), t[i].want, t[i].detail, t[i].want == NC_WARN ? "LimitNOFILE=" : NULL);
		nc_report_free(&r);
		cfg_free(cfg);
	}
}

/* ---- an agent on the pin path ---- */

static void test_agent(void **state)
{
	static const struct {
		int err;
		uint64_t age_ns;
		int enabled, fail_mode, admin_err;
		enum nc_status want;
		const char *detail;
	} t[] = {
		{ -ENOENT, 0, 0, 0, 0, NC_OK, "no weftd on /sys/fs/bpf/weft (no pins there)" },
		{ -EACCES, 0, 0, 0, 0, NC_OK, "cannot tell whether weftd runs on /sys/fs/bpf/weft" },
		{ -EPROTO, 0, 0, 0, 0, NC_WARN, "/sys/fs/bpf/weft/weft_agent cannot be read" },
		{ 0, 400000000ull, 1, 0, 0, NC_OK,
		  "weftd runs on /sys/fs/bpf/weft (heartbeat 0.4 s ago; admin 127.0.0.1:9990: /ready 200)" },
		{ 0, 400000000ull, 0, 0, 0, NC_OK, "starting or draining" },
		{ 0, 400000000ull, 1, 0, -ECONNREFUSED, NC_OK, "admin 127.0.0.1:9990: Connection refused" },
		{ 0, 312000000000ull, 1, WEFT_FAIL_OPEN, 0, NC_WARN,
		  "/sys/fs/bpf/weft holds the pins of a weftd that is gone or wedged (heartbeat 312 s old)" },
		{ 0, 312000000000ull, 1, WEFT_FAIL_CLOSED, 0, NC_WARN, "refuse enrolled cgroups' connects" },
	};
	struct weft_config *cfg = conf("agent: { bpf_pin_path = \"/sys/fs/bpf/weft\"; };\n");
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct nc_report r;
		struct nc_facts f;

		healthy(&f, cfg);
		f.agent_err = t[i].err;
		f.now_ns = 1000000000000ull;
		f.agent.heartbeat_ns = f.now_ns - t[i].age_ns;
		f.agent.stale_after_ns = 3000000000ull;
		f.agent.enabled = (uint8_t)t[i].enabled;
		f.agent.fail_mode = (uint8_t)t[i].fail_mode;
		f.admin_err = t[i].admin_err;
		f.admin_status = 200;
		expect(judge(&f, &r, "agent"), t[i].want, t[i].detail,
		       t[i].want == NC_WARN && !t[i].err ? "rm -rf /sys/fs/bpf/weft" : NULL);
		nc_report_free(&r);
	}
	cfg_free(cfg);
}

/* ---- config ---- */

static void test_config_errors(void **state)
{
	char *msgs[] = { "test.conf:3: kubernetes.node_name: not set and $NODE_NAME is empty; set it",
			 "test.conf:5: agent.admin: 'x' has no port" };
	struct cfg_errors errs = { .msgs = msgs, .n = 2 };
	struct nc_report r;
	struct nc_facts f;

	healthy(&f, NULL);
	f.config_err = -EINVAL;
	f.config_errs = &errs;
	expect(judge(&f, &r, "config"), NC_FAIL,
	       "test.conf: 2 problems, as weftd prints them:\ntest.conf:3: kubernetes.node_name: not set and "
	       "$NODE_NAME is empty; set it\ntest.conf:5: agent.admin: 'x' has no port",
	       "weftd -c FILE --check");
	/* without a config: no pin path, no agent, no kubernetes; the host checks still run */
	assert_null(nc_find(&r, "bpffs"));
	assert_null(nc_find(&r, "agent"));
	assert_null(nc_find(&r, "k8s.api"));
	assert_non_null(nc_find(&r, "capabilities"));
	assert_non_null(nc_find(&r, "nofile"));
	assert_int_equal(nc_worst(&r), NC_FAIL);
	nc_report_free(&r);

	/* no file at all */
	msgs[0] = "/etc/weft/weft.conf: cannot open: No such file or directory";
	errs.n = 1;
	f.config_err = -ENOENT;
	expect(judge(&f, &r, "config"), NC_FAIL, "1 problem, as weftd prints them:\n/etc/weft/weft.conf: cannot open",
	       "-c FILE");
	nc_report_free(&r);
}

/* ---- Kubernetes ---- */

static void set_all(struct nc_facts *f, int err, int status, const char *detail)
{
	int k;

	for (k = 0; k < NC_KINDS; k++) {
		f->list[k].err = f->watch[k].err = err;
		f->list[k].status = f->watch[k].status = status;
		snprintf(f->list[k].detail, sizeof(f->list[k].detail), "%s", detail);
		snprintf(f->watch[k].detail, sizeof(f->watch[k].detail), "%s", detail);
	}
}

static void test_kube_rbac(void **state)
{
	static const struct {
		enum nc_kind kind;
		int list_status, watch_status;
		const char *name;
		enum nc_status want;
		const char *detail, *fix;
	} t[] = {
		{ NC_PODS, 403, 403, "k8s.rbac.pods", NC_FAIL,
		  "403 Forbidden to list and watch pods: pods is forbidden: User \"system:serviceaccount:weft-system:weft\"",
		  "- {apiGroups: [\"\"], resources: [\"pods\"], verbs: [\"list\", \"watch\"]}" },
		{ NC_ENDPOINTSLICES, 200, 403, "k8s.rbac.endpointslices", NC_FAIL,
		  "403 Forbidden to watch endpointslices",
		  "- {apiGroups: [\"discovery.k8s.io\"], resources: [\"endpointslices\"], verbs: [\"watch\"]}" },
		{ NC_SERVICES, 403, 200, "k8s.rbac.services", NC_FAIL, "403 Forbidden to list services",
		  "resources: [\"services\"], verbs: [\"list\"]}" },
		{ NC_NODES, 403, 403, "k8s.rbac.nodes", NC_FAIL, NULL, "deploy/kubernetes/10-rbac.yaml" },
		{ NC_ENDPOINTSLICES, 404, 404, "k8s.rbac.endpointslices", NC_FAIL,
		  "404: the API server does not serve discovery.k8s.io/v1", "1.21" },
		{ NC_SERVICES, 500, 200, "k8s.rbac.services", NC_FAIL, "the list of services answered 500",
		  "back-off" },
		{ NC_PODS, 200, 429, "k8s.rbac.pods", NC_FAIL, "the watch of pods answered 429", NULL },
	};
	struct weft_config *cfg = conf(K8S_CONF);
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct nc_report r;
		struct nc_facts f;
		int k;

		healthy(&f, cfg);
		f.list[t[i].kind].status = t[i].list_status;
		f.watch[t[i].kind].status = t[i].watch_status;
		snprintf(f.list[t[i].kind].detail, NC_DETAIL_MAX,
			 "%s is forbidden: User \"system:serviceaccount:weft-system:weft\" cannot list resource",
			 nc_kind_resource(t[i].kind));
		snprintf(f.watch[t[i].kind].detail, NC_DETAIL_MAX, "watch: %s", nc_kind_resource(t[i].kind));
		expect(judge(&f, &r, t[i].name), t[i].want, t[i].detail, t[i].fix);
		/* the others stay ok */
		for (k = 0; k < NC_KINDS; k++) {
			char name[64];

			snprintf(name, sizeof(name), "k8s.rbac.%s", nc_kind_resource((enum nc_kind)k));
			if ((enum nc_kind)k != t[i].kind)
				expect(nc_find(&r, name), NC_OK, "list and watch", NULL);
		}
		expect(nc_find(&r, "k8s.api"), NC_OK, "https://127.0.0.1:6443 answers over TLS", NULL);
		expect(nc_find(&r, "k8s.token"), NC_OK, "/run/sa/token (800 bytes), accepted", NULL);
		nc_report_free(&r);
	}
	cfg_free(cfg);
}

static void test_kube_failures(void **state)
{
	struct weft_config *cfg = conf(K8S_CONF);
	struct nc_report r;
	struct nc_facts f;

	/* the API is down: one FAIL, and no RBAC verdicts (nothing is known) */
	healthy(&f, cfg);
	set_all(&f, -ECONNREFUSED, 0, "Kubernetes API 127.0.0.1:6443: cannot connect: Connection refused");
	expect(judge(&f, &r, "k8s.api"), NC_FAIL,
	       "https://127.0.0.1:6443 unreachable: Kubernetes API 127.0.0.1:6443: cannot connect: Connection refused",
	       "nothing listens there");
	assert_null(nc_find(&r, "k8s.rbac.pods"));
	assert_null(nc_find(&r, "k8s.token"));
	nc_report_free(&r);

	healthy(&f, cfg);
	set_all(&f, -ETIMEDOUT, 0, "no TCP connection within 8000 ms");
	expect(judge(&f, &r, "k8s.api"), NC_FAIL, "no TCP connection", "firewall");
	nc_report_free(&r);

	healthy(&f, cfg);
	set_all(&f, -EPROTO, 0, "TLS handshake failed (unknown CA)");
	expect(judge(&f, &r, "k8s.api"), NC_FAIL, "unknown CA", "kubernetes.ca_file must be the CA");
	nc_report_free(&r);

	/* nothing answered in time */
	healthy(&f, cfg);
	set_all(&f, 0, 0, "");
	for (int k = 0; k < NC_KINDS; k++)
		f.list[k].done = f.watch[k].done = false;
	expect(judge(&f, &r, "k8s.api"), NC_FAIL, "no answer within the check's time", NULL);
	nc_report_free(&r);

	/* the token is rejected */
	healthy(&f, cfg);
	set_all(&f, 0, 401, "Unauthorized");
	expect(judge(&f, &r, "k8s.token"), NC_FAIL,
	       "the API server rejected the token in /run/sa/token (401 Unauthorized)", "create token");
	expect(nc_find(&r, "k8s.api"), NC_OK, NULL, NULL);
	assert_null(nc_find(&r, "k8s.rbac.services"));
	nc_report_free(&r);

	/* no token to send: nothing is asked */
	healthy(&f, cfg);
	f.token_err = -ENOENT;
	snprintf(f.token_detail, sizeof(f.token_detail), "kubernetes.token_file '/run/sa/token': No such file");
	expect(judge(&f, &r, "k8s.token"), NC_FAIL, "No such file", "automountServiceAccountToken");
	assert_null(nc_find(&r, "k8s.api"));
	nc_report_free(&r);

	/* the client cannot be made (a CA file that does not load) */
	healthy(&f, cfg);
	f.kapi_err = -EINVAL;
	snprintf(f.kapi_detail, sizeof(f.kapi_detail), "Kubernetes API: CA file '/run/sa/ca.crt' does not load");
	expect(judge(&f, &r, "k8s.api"), NC_FAIL, "does not load", "kubernetes.ca_file");
	nc_report_free(&r);

	/* one request cut, the others fine */
	healthy(&f, cfg);
	f.watch[NC_NODES].err = -ECONNRESET;
	snprintf(f.watch[NC_NODES].detail, NC_DETAIL_MAX, "the connection ended before the response did");
	expect(judge(&f, &r, "k8s.rbac.nodes"), NC_FAIL, "the connection ended", NULL);
	nc_report_free(&r);

	/* one request still running at the deadline */
	healthy(&f, cfg);
	f.watch[NC_PODS].done = false;
	expect(judge(&f, &r, "k8s.rbac.pods"), NC_FAIL, "no answer to the watch of pods", NULL);
	nc_report_free(&r);

	/* this node is not a Node of the cluster */
	healthy(&f, cfg);
	f.list[NC_NODES].items = 0;
	expect(judge(&f, &r, "k8s.node"), NC_FAIL, "no Node named 'node-a'", "kubernetes.node_name");
	nc_report_free(&r);
	/* ... or the answer did not decode: no verdict */
	f.list[NC_NODES].items = -1;
	assert_null(judge(&f, &r, "k8s.node"));
	nc_report_free(&r);

	/* without a kubernetes group, no k8s.* check */
	cfg_free(cfg);
	cfg = conf("agent: { };");
	healthy(&f, cfg);
	assert_null(judge(&f, &r, "k8s.api"));
	nc_report_free(&r);
	cfg_free(cfg);
}

/* ---- rendering ---- */

static void test_paths(void **state)
{
	static const struct {
		enum nc_kind k;
		bool watch;
		const char *path;
	} t[] = {
		{ NC_SERVICES, false, "/api/v1/services?limit=1" },
		{ NC_SERVICES, true,
		  "/api/v1/services?fieldSelector=metadata.name%3Dweftctl-check-no-such-object&watch=1&timeoutSeconds=1" },
		{ NC_ENDPOINTSLICES, false, "/apis/discovery.k8s.io/v1/endpointslices?limit=1" },
		{ NC_PODS, false, "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a&limit=1" },
		{ NC_PODS, true,
		  "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a%2Cmetadata.name%3Dweftctl-check-no-such-object"
		  "&watch=1&timeoutSeconds=1" },
		{ NC_NODES, false, "/api/v1/nodes?fieldSelector=metadata.name%3Dnode-a&limit=1" },
	};
	char buf[512], big[600];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(nc_api_path(t[i].k, t[i].watch, "node-a", buf, sizeof(buf)), 0);
		assert_string_equal(buf, t[i].path);
	}
	assert_int_equal(nc_api_path(NC_PODS, false, "node-a", buf, 20), -ENOSPC);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(nc_api_path(NC_PODS, true, big, buf, sizeof(buf)), -ENOSPC);
	assert_int_equal(nc_api_path(NC_KINDS, false, "n", buf, sizeof(buf)), -EINVAL);
	assert_string_equal(nc_kind_group(NC_ENDPOINTSLICES), "discovery.k8s.io");
	assert_string_equal(nc_kind_group(NC_PODS), "");
}

static void test_render_text(void **state)
{
	char *msgs[] = { "/a/very/long/path/to/a/config/file/that/goes/on/and/on/and/on/and/on/weft.conf:3: "
			 "kubernetes.node_name: not set" };
	struct cfg_errors errs = { .msgs = msgs, .n = 1 };
	struct nc_report r = { 0 };
	struct buf out = { 0 };
	struct nc_facts f;
	const char *p, *nl;

	healthy(&f, NULL);
	f.config_err = -EINVAL;
	f.config_errs = &errs;
	f.caps_eff = 0;
	f.uid = 65534;
	nc_judge(&f, &r);
	nc_render_text(&r, NC_WIDTH, &out);
	assert_false(buf_failed(&out));
	/* every line fits 80 columns, but for a single word that cannot be cut */
	for (p = out.p; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		if ((size_t)(nl - p) > NC_WIDTH) {
			const char *w = p;

			while (*w == ' ')
				w++;
			if (memchr(w, ' ', (size_t)(nl - w)))
				fail_msg("line over %d columns: '%.*s'", NC_WIDTH, (int)(nl - p), p);
		}
	}
	assert_non_null(
		strstr(out.p, "FAIL  config: test.conf: 1 problem, as weftd prints them:\n      /a/very/long/"));
	assert_non_null(strstr(out.p,
			       "\nok    kernel: 6.18.44-fc-v1147 (weft needs 5.18 or later, for bpf_set_retval in\n"
			       "      cgroup/connect)\n"));
	assert_non_null(strstr(out.p, "\nFAIL  capabilities: this process (uid 65534) lacks CAP_BPF (load programs,"));
	assert_non_null(strstr(out.p,
			       "\n      fix: run weftd as root, or give it these: deploy/weftd.service grants them\n"
			       "           (AmbientCapabilities=)"));
	/* no colour, no tabs */
	assert_null(strchr(out.p, '\033'));
	assert_null(strchr(out.p, '\t'));
	buf_free(&out);
	nc_report_free(&r);
}

static void test_render_json(void **state)
{
	struct weft_config *cfg = conf(K8S_CONF);
	struct nc_report r = { 0 };
	struct buf out = { 0 };
	struct nc_facts f;

	healthy(&f, cfg);
	f.list[NC_PODS].status = 403;
	snprintf(f.list[NC_PODS].detail, NC_DETAIL_MAX, "pods is \"forbidden\"\n\ttab \x01");
	nc_judge(&f, &r);
	nc_render_json(&r, &out);
	assert_false(buf_failed(&out));
	assert_true(json_valid(out.p, out.len));
	assert_int_equal(strncmp(out.p, "{\"checks\":[{\"name\":\"config\",\"status\":\"ok\",\"detail\":", 51), 0);
	assert_non_null(strstr(out.p,
			       "{\"name\":\"k8s.rbac.pods\",\"status\":\"fail\",\"detail\":\"403 Forbidden to list "
			       "pods: pods is \\\"forbidden\\\"\\n\\ttab \\u0001\",\"fix\":\"the ClusterRole"));
	assert_non_null(strstr(out.p, "\"fix\":\"\"}"));
	assert_int_equal(out.p[out.len - 1], '\n');
	buf_free(&out);

	/* empty and failed reports are still JSON */
	nc_report_free(&r);
	nc_render_json(&r, &out);
	assert_string_equal(out.p, "{\"checks\":[]}\n");
	buf_reset(&out);
	r.failed = true;
	nc_render_json(&r, &out);
	assert_true(json_valid(out.p, out.len));
	assert_int_equal(nc_worst(&r), NC_FAIL);
	buf_free(&out);
	cfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthy_node),
		cmocka_unit_test(test_kernel_versions),
		cmocka_unit_test(test_min_kernel),
		cmocka_unit_test(test_btf),
		cmocka_unit_test(test_cgroup2_mountinfo),
		cmocka_unit_test(test_cgroup2_unreadable),
		cmocka_unit_test(test_features),
		cmocka_unit_test(test_bpffs),
		cmocka_unit_test(test_capabilities),
		cmocka_unit_test(test_nofile),
		cmocka_unit_test(test_agent),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_kube_rbac),
		cmocka_unit_test(test_kube_failures),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_render_text),
		cmocka_unit_test(test_render_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
