// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "agent/nodecheck.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/cgroup.h"

#define NC_TEXT 2048

#ifndef CAP_BPF
#define CAP_BPF 39 /* Linux 5.8; older headers lack it */
#endif

/* ---- the Kubernetes requests --------------------------------------------- */

static const struct {
	const char *resource, *group, *collection;
} nc_kinds[NC_KINDS] = {
	[NC_SERVICES] = { "services", "", "/api/v1/services" },
	[NC_ENDPOINTSLICES] = { "endpointslices", "discovery.k8s.io", "/apis/discovery.k8s.io/v1/endpointslices" },
	[NC_PODS] = { "pods", "", "/api/v1/pods" },
	[NC_NODES] = { "nodes", "", "/api/v1/nodes" },
};

/* A name no object has (a DNS label, so every server accepts the selector). */
#define NC_NO_SUCH_NAME "weftctl-check-no-such-object"

const char *nc_kind_resource(enum nc_kind k)
{
	return (unsigned)k < NC_KINDS ? nc_kinds[k].resource : "?";
}

const char *nc_kind_group(enum nc_kind k)
{
	return (unsigned)k < NC_KINDS ? nc_kinds[k].group : "";
}

int nc_api_path(enum nc_kind k, bool watch, const char *node, char *buf, size_t len)
{
	char sel[512];
	int n;

	if ((unsigned)k >= NC_KINDS)
		return -EINVAL;
	/* the pods weftd asks for are its node's: the same selector, so a node-scoped authorizer sees the same request */
	sel[0] = '\0';
	n = 0;
	if (k == NC_PODS)
		n = snprintf(sel, sizeof(sel), "spec.nodeName%%3D%s%s", node,
			     watch ? "%2Cmetadata.name%3D" NC_NO_SUCH_NAME : "");
	else if (watch)
		n = snprintf(sel, sizeof(sel), "metadata.name%%3D" NC_NO_SUCH_NAME);
	else if (k == NC_NODES)
		n = snprintf(sel, sizeof(sel), "metadata.name%%3D%s", node);
	if (n < 0 || (size_t)n >= sizeof(sel))
		return -ENOSPC;
	n = snprintf(buf, len, "%s?%s%s%s", nc_kinds[k].collection, *sel ? "fieldSelector=" : "", sel,
		     watch ? "&watch=1&timeoutSeconds=1" : (*sel ? "&limit=1" : "limit=1"));
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

/* ---- the report ---------------------------------------------------------- */

static char *nc_strdup(struct nc_report *r, const char *s)
{
	char *p = strdup(s ? s : "");

	if (!p)
		r->failed = true;
	return p;
}

/* Appends a verdict; detail and fix are copied. */
static void nc_push(struct nc_report *r, const char *name, enum nc_status st, const char *detail, const char *fix)
{
	struct nc_check *c;

	if (r->failed)
		return;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		struct nc_check *v = realloc(r->v, cap * sizeof(*v));

		if (!v) {
			r->failed = true;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	c = &r->v[r->n];
	c->status = st;
	c->name = nc_strdup(r, name);
	c->detail = nc_strdup(r, detail);
	c->fix = nc_strdup(r, fix);
	if (r->failed) {
		free(c->name);
		free(c->detail);
		free(c->fix);
		return;
	}
	r->n++;
}

static void nc_pushf(struct nc_report *r, const char *name, enum nc_status st, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void nc_pushf(struct nc_report *r, const char *name, enum nc_status st, const char *fix, const char *fmt, ...)
{
	char detail[NC_TEXT];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	nc_push(r, name, st, detail, fix);
}

/* Appends ", text" (or text first) to s at *o, if it fits. */
static void nc_list_add(char *s, size_t len, size_t *o, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void nc_list_add(char *s, size_t len, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*o && *o + 2 < len) {
		memcpy(s + *o, ", ", 3);
		*o += 2;
	}
	va_start(ap, fmt);
	n = vsnprintf(s + *o, len - *o, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < len - *o)
		*o += (size_t)n;
}

void nc_report_free(struct nc_report *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].detail);
		free(r->v[i].fix);
	}
	free(r->v);
	memset(r, 0, sizeof(*r));
}

enum nc_status nc_worst(const struct nc_report *r)
{
	enum nc_status w = r->failed ? NC_FAIL : NC_OK;
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->v[i].status > w)
			w = r->v[i].status;
	return w;
}

const struct nc_check *nc_find(const struct nc_report *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].name, name))
			return &r->v[i];
	return NULL;
}

const char *nc_status_name(enum nc_status s)
{
	return s == NC_OK ? "ok" : s == NC_WARN ? "warn" : "fail";
}

/* ---- config -------------------------------------------------------------- */

static void judge_config(const struct nc_facts *f, struct nc_report *r)
{
	struct buf b = { 0 };
	size_t i, n = f->config_errs ? f->config_errs->n : 0;

	if (f->cfg) {
		nc_pushf(r, "config", NC_OK, "", "%s: valid (%zu services, %zu cgroups)", f->config_path,
			 f->cfg->n_services, f->cfg->n_cgroups);
		return;
	}
	buf_printf(&b, "%s: %zu problem%s, as weftd prints them:", f->config_path, n, n == 1 ? "" : "s");
	for (i = 0; i < n; i++)
		buf_printf(&b, "\n%s", f->config_errs->msgs[i]);
	if (buf_failed(&b))
		r->failed = true;
	else if (f->config_err != -EINVAL)
		nc_push(r, "config", NC_FAIL, b.p,
			"name weftd's config with -c FILE (weftd and weftctl check read " NC_DEFAULT_CONFIG
			" without it)");
	else
		nc_push(r, "config", NC_FAIL, b.p,
			"correct the file (weftd -c FILE --check says the same); weftd does not start with a "
			"config that has errors");
	buf_free(&b);
}

/* ---- kernel -------------------------------------------------------------- */

static bool nc_all_features_ok(const struct nc_facts *f)
{
	size_t i;

	if (!f->n_features)
		return false;
	for (i = 0; i < f->n_features; i++)
		if (f->features[i] != 1)
			return false;
	return true;
}

/* a.b < c.d */
static bool nc_older(unsigned a, unsigned b, unsigned c, unsigned d)
{
	return a < c || (a == c && b < d);
}

/*
 * The release against the newest feature weft needs. The version alone does
 * not decide: distribution kernels backport BPF features (RHEL 9 is a 5.14
 * with many), so an older release whose every feature probe passed is a
 * warning, and one whose probes failed or could not run is a FAIL.
 */
static void judge_kernel(const struct nc_facts *f, struct nc_report *r)
{
	unsigned maj, min, kmaj = 0, kmin = 0;
	char need[NC_TEXT] = "", fix[256];
	size_t i, o = 0;
	bool older;

	probe_min_kernel(&maj, &min);
	if (!f->release || sscanf(f->release, "%u.%u", &kmaj, &kmin) != 2) {
		nc_pushf(r, "kernel", NC_WARN, "the bpf.* checks below decide what this kernel can do",
			 "cannot read a version from the release '%s'", f->release ? f->release : "");
		return;
	}
	older = nc_older(kmaj, kmin, maj, min);
	/* older: the features this release predates, with their versions; else the ones that set the minimum */
	for (i = 0; i < probe_n_features; i++) {
		const struct probe_feature *p = &probe_features[i];

		if (older && nc_older(kmaj, kmin, p->major, p->minor))
			nc_list_add(need, sizeof(need), &o, "%s (%u.%u)", p->what, p->major, p->minor);
		else if (!older && p->major == maj && p->minor == min)
			nc_list_add(need, sizeof(need), &o, "%s", p->what);
	}
	if (!older) {
		nc_pushf(r, "kernel", NC_OK, "", "%s (weft needs %u.%u or later, for %s)", f->release, maj, min, need);
		return;
	}
	if (nc_all_features_ok(f)) {
		nc_pushf(r, "kernel", NC_WARN, "nothing, while the bpf.* checks pass; upgrading is the safer course",
			 "%s is older than %u.%u, which weft needs for %s; but every feature probe below passed "
			 "(a distribution kernel with backports)",
			 f->release, maj, min, need);
		return;
	}
	snprintf(fix, sizeof(fix), "upgrade to Linux %u.%u or later (the bpf.* checks say what this one lacks)", maj,
		 min);
	nc_pushf(r, "kernel", NC_FAIL, fix, "%s is older than %u.%u, which weft needs for %s", f->release, maj, min,
		 need);
}

static void judge_btf(const struct nc_facts *f, struct nc_report *r)
{
	if (!f->btf_err) {
		nc_push(r, "btf", NC_OK, PROBE_BTF_PATH " (weft's programs are relocated with it: CO-RE)", "");
		return;
	}
	nc_pushf(r, "btf", NC_FAIL,
		 "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian, Ubuntu, Fedora and RHEL kernels are)",
		 PROBE_BTF_PATH " %s", f->btf_err == -ENOENT ? "is missing" : strerror(-f->btf_err));
}

static void judge_cgroup2(const struct nc_facts *f, struct nc_report *r)
{
	char line[4096], *fstype, *mnt, found[4096] = "";
	const char *p, *nl;
	size_t v1 = 0, len;

	if (!f->mountinfo) {
		nc_pushf(r, "cgroup2", NC_FAIL, "weftd reads it too: is /proc mounted?",
			 "cannot read /proc/self/mountinfo: %s", strerror(-f->mountinfo_err));
		return;
	}
	for (p = f->mountinfo; *p; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) : strlen(p);
		if (len >= sizeof(line))
			continue;
		memcpy(line, p, len);
		line[len] = '\0';
		if (cg_mountinfo_line(line, &fstype, &mnt) < 0)
			continue;
		if (!strcmp(fstype, "cgroup2") && !*found)
			snprintf(found, sizeof(found), "%s", mnt);
		else if (!strcmp(fstype, "cgroup"))
			v1++;
	}
	if (!*found) {
		nc_push(r, "cgroup2", NC_FAIL, "no cgroup2 filesystem in /proc/self/mountinfo",
			"mount it (mount -t cgroup2 none /sys/fs/cgroup), or boot with "
			"systemd.unified_cgroup_hierarchy=1");
		return;
	}
	if (v1)
		nc_pushf(r, "cgroup2", NC_OK, "", "%s (hybrid: beside %zu cgroup v1 hierarchies)", found, v1);
	else
		nc_pushf(r, "cgroup2", NC_OK, "", "%s", found);
}

static void judge_features(const struct nc_facts *f, struct nc_report *r)
{
	char name[64], fix[256];
	size_t i;

	for (i = 0; i < f->n_features; i++) {
		if (f->features[i] == -EPERM) {
			nc_push(r, "bpf", NC_WARN,
				"not allowed to load BPF programs here (Operation not permitted): the kernel features "
				"weft needs were not probed",
				"run weftctl check as root (or with the capabilities weftd gets) to probe them");
			return;
		}
	}
	for (i = 0; i < f->n_features && i < probe_n_features; i++) {
		const struct probe_feature *p = &probe_features[i];

		snprintf(name, sizeof(name), "bpf.%s", p->id);
		if (f->features[i] == 1) {
			nc_pushf(r, name, NC_OK, "", "%s (%u.%u)", p->what, p->major, p->minor);
		} else if (f->features[i] == 0) {
			snprintf(fix, sizeof(fix), "upgrade to Linux %u.%u or later (or a kernel that backports it)",
				 p->major, p->minor);
			nc_pushf(r, name, NC_FAIL, fix,
				 "%s: not in this kernel (Linux %u.%u brought it; weft needs it for %s)", p->what,
				 p->major, p->minor, p->why);
		} else {
			nc_pushf(r, name, NC_FAIL, "look at the kernel log (dmesg) and try again as root",
				 "%s: the probe failed: %s", p->what, strerror(-f->features[i]));
		}
	}
}

/* ---- pins, process ------------------------------------------------------- */

static void judge_bpffs(const struct nc_facts *f, struct nc_report *r)
{
	const char *pin = f->cfg->bpf_pin_path;

	if (f->pin_err) {
		nc_pushf(r, "bpffs", NC_FAIL, "look at the path",
			 "agent.bpf_pin_path %s: cannot statfs it or a parent: %s", pin, strerror(-f->pin_err));
		return;
	}
	switch (f->pin.state) {
	case PROBE_PIN_BPFFS:
		if (!strcmp(f->pin.dir, pin))
			nc_pushf(r, "bpffs", NC_OK, "", "agent.bpf_pin_path %s is on bpffs", pin);
		else
			nc_pushf(r, "bpffs", NC_OK, "", "%s is bpffs; weftd will make the pin path %s there",
				 f->pin.dir, pin);
		return;
	case PROBE_PIN_MOUNT_HOME:
		nc_pushf(r, "bpffs", NC_OK, "",
			 "nothing is mounted at " PROBE_BPFFS_HOME ": weftd will mount bpffs there for "
			 "agent.bpf_pin_path %s (it needs CAP_SYS_ADMIN for that)",
			 pin);
		return;
	case PROBE_PIN_HOME_BUSY:
		nc_pushf(r, "bpffs", NC_FAIL,
			 "mount bpffs there yourself (mount -t bpf bpf " PROBE_BPFFS_HOME ") or choose a pin path "
			 "on a bpffs",
			 PROBE_BPFFS_HOME " is not bpffs and is not empty: weftd will not mount bpffs over it, so "
					  "agent.bpf_pin_path %s has no bpffs",
			 pin);
		return;
	case PROBE_PIN_HOME_ERROR:
		nc_pushf(r, "bpffs", NC_FAIL, "mount bpffs: mount -t bpf bpf " PROBE_BPFFS_HOME,
			 PROBE_BPFFS_HOME " is not bpffs and cannot be read (%s)", strerror(-f->pin.err));
		return;
	case PROBE_PIN_NOT_BPFFS:
	default:
		nc_pushf(r, "bpffs", NC_FAIL,
			 "choose a path under " PROBE_BPFFS_HOME " (the default is /sys/fs/bpf/weft), or mount bpffs "
			 "on it: mount -t bpf bpf DIR",
			 "agent.bpf_pin_path %s is not on a BPF filesystem (%s is not bpffs): weftd refuses it", pin,
			 f->pin.dir);
		return;
	}
}

/*
 * What weftd uses of its privileges, the same five deploy/weftd.service
 * grants and the DaemonSet's comment explains (it runs privileged for other
 * reasons too); one more when a listener is on a port below 1024.
 */
static const struct {
	unsigned bit;
	const char *name, *why;
	bool low_port_only;
} nc_caps[] = {
	{ CAP_BPF, "CAP_BPF", "load programs, make maps", false },
	{ CAP_NET_ADMIN, "CAP_NET_ADMIN", "attach to cgroups, sockmaps, SO_MARK", false },
	{ CAP_SYS_ADMIN, "CAP_SYS_ADMIN", "setns() into pods, mount bpffs", false },
	{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE", "open other users' /proc/PID/ns/net", false },
	{ CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH", "open_by_handle_at: cgroup id to path", false },
	{ CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE", "a port below 1024", true },
};

static bool nc_low_port(const struct weft_config *c)
{
	return c && ((addr_port(&c->admin) > 0 && addr_port(&c->admin) < 1024) ||
		     (addr_port(&c->inbound) > 0 && addr_port(&c->inbound) < 1024) ||
		     (c->outbound_port > 0 && c->outbound_port < 1024));
}

static void judge_caps(const struct nc_facts *f, struct nc_report *r)
{
	char have[NC_TEXT] = "", miss[NC_TEXT] = "";
	size_t i, oh = 0, om = 0;
	bool low = nc_low_port(f->cfg);

	if (f->caps_err) {
		nc_pushf(r, "capabilities", NC_WARN, "run weftctl check as weftd will run",
			 "cannot read this process's capabilities: %s", strerror(-f->caps_err));
		return;
	}
	for (i = 0; i < sizeof(nc_caps) / sizeof(nc_caps[0]); i++) {
		if (nc_caps[i].low_port_only && !low)
			continue;
		if (f->caps_eff & (1ull << nc_caps[i].bit))
			nc_list_add(have, sizeof(have), &oh, "%s", nc_caps[i].name);
		else
			nc_list_add(miss, sizeof(miss), &om, "%s (%s)", nc_caps[i].name, nc_caps[i].why);
	}
	if (!om) {
		nc_pushf(r, "capabilities", NC_OK, "", "%s (uid %u)", have, (unsigned)f->uid);
		return;
	}
	nc_pushf(r, "capabilities", NC_FAIL,
		 "run weftd as root, or give it these: deploy/weftd.service grants them (AmbientCapabilities=), the "
		 "DaemonSet runs it privileged",
		 "this process (uid %u) lacks %s", (unsigned)f->uid, miss);
}

/*
 * weftd raises its soft limit to the hard one at start, so the hard limit is
 * what counts: two descriptors per proxied connection (client and upstream),
 * two more for a splice pipe while bytes are in flight, and room for the
 * listeners (two per pod and worker), the admin API and files.
 */
#define NC_NOFILE_SPARE 1024

static void judge_nofile(const struct nc_facts *f, struct nc_report *r)
{
	uint64_t maxc = f->cfg ? f->cfg->max_connections : 65536, per = (!f->cfg || f->cfg->splice) ? 4 : 2;
	uint64_t allowed;

	if (f->nofile_err) {
		nc_pushf(r, "nofile", NC_WARN, "", "cannot read RLIMIT_NOFILE: %s", strerror(-f->nofile_err));
		return;
	}
	if (f->nofile_hard == UINT64_MAX || f->nofile_hard >= maxc * per + NC_NOFILE_SPARE) {
		char hard[32];

		if (f->nofile_hard == UINT64_MAX)
			snprintf(hard, sizeof(hard), "unlimited");
		else
			snprintf(hard, sizeof(hard), "%llu", (unsigned long long)f->nofile_hard);
		nc_pushf(r, "nofile", NC_OK, "", "hard limit %s, enough for agent.max_connections %llu", hard,
			 (unsigned long long)maxc);
		return;
	}
	allowed = f->nofile_hard > NC_NOFILE_SPARE ? (f->nofile_hard - NC_NOFILE_SPARE) / per : 0;
	nc_pushf(r, "nofile", NC_WARN,
		 "weftd raises its soft limit to the hard one: raise that (LimitNOFILE=1048576 in the systemd "
		 "unit, ulimit -Hn, or the container runtime's default for a pod), or lower agent.max_connections",
		 "hard limit %llu allows about %llu proxied connections (%llu descriptors each%s); "
		 "agent.max_connections is %llu",
		 (unsigned long long)f->nofile_hard, (unsigned long long)allowed, (unsigned long long)per,
		 per == 4 ? " with agent.splice" : "", (unsigned long long)maxc);
}

static void judge_agent(const struct nc_facts *f, struct nc_report *r)
{
	const char *pin = f->cfg->bpf_pin_path;
	char admin[ADDR_STRLEN], ready[192];
	uint64_t age;

	if (f->agent_err == -ENOENT) {
		nc_pushf(r, "agent", NC_OK, "", "no weftd on %s (no pins there)", pin);
		return;
	}
	if (f->agent_err == -EACCES || f->agent_err == -EPERM) {
		nc_pushf(r, "agent", NC_OK, "", "cannot tell whether weftd runs on %s: %s/weft_agent: %s", pin, pin,
			 strerror(-f->agent_err));
		return;
	}
	if (f->agent_err) {
		nc_pushf(r, "agent", NC_WARN, "look at what is in the pin path (bpftool map show)",
			 "%s/weft_agent cannot be read: %s", pin, strerror(-f->agent_err));
		return;
	}
	age = f->now_ns > f->agent.heartbeat_ns ? f->now_ns - f->agent.heartbeat_ns : 0;
	addr_format(&f->cfg->admin, admin, sizeof(admin));
	if (f->admin_err)
		snprintf(ready, sizeof(ready), "admin %s: %s", admin, strerror(-f->admin_err));
	else
		snprintf(ready, sizeof(ready), "admin %s: /ready %d", admin, f->admin_status);
	if (age <= f->agent.stale_after_ns) {
		nc_pushf(r, "agent", NC_OK, "",
			 "weftd runs on %s (heartbeat %.1f s ago%s; %s); another weftd with this pin path would not "
			 "start",
			 pin, (double)age / 1e9, f->agent.enabled ? "" : ", starting or draining", ready);
		return;
	}
	{
		char fix[512];

		snprintf(fix, sizeof(fix),
			 "restart weftd (a new one removes stale pins first), or remove them to detach the "
			 "programs: rm -rf %s",
			 pin);
		nc_pushf(r, "agent", NC_WARN, fix,
			 "%s holds the pins of a weftd that is gone or wedged (heartbeat %.0f s old): its programs "
			 "stay attached and %s",
			 pin, (double)age / 1e9,
			 f->agent.fail_mode == WEFT_FAIL_CLOSED
				 ? "refuse enrolled cgroups' connects to services (fail_mode \"closed\")"
				 : "let enrolled cgroups' connects go direct (fail_mode \"open\")");
	}
}

/* ---- kubernetes ---------------------------------------------------------- */

static bool nc_answered(const struct nc_api_answer *a)
{
	return a->done && a->err == 0;
}

static const struct nc_api_answer *nc_first_status(const struct nc_facts *f, int status)
{
	int k;

	for (k = 0; k < NC_KINDS; k++) {
		if (nc_answered(&f->list[k]) && f->list[k].status == status)
			return &f->list[k];
		if (nc_answered(&f->watch[k]) && f->watch[k].status == status)
			return &f->watch[k];
	}
	return NULL;
}

static const char *nc_api_fix(int err)
{
	switch (err) {
	case -ECONNREFUSED:
		return "nothing listens there: kubernetes.api must be the API server's address "
		       "($KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT in a pod)";
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
		return "no answer: a wrong kubernetes.api, or a firewall or NetworkPolicy in the way";
	case -EPROTO:
		return "kubernetes.ca_file must be the CA that signed the API server's certificate, and the "
		       "certificate must name the address in kubernetes.api";
	default:
		return "is the API server up, and kubernetes.api its address?";
	}
}

static void judge_rbac(const struct nc_facts *f, enum nc_kind k, struct nc_report *r)
{
	const struct nc_api_answer *l = &f->list[k], *w = &f->watch[k], *bad = NULL;
	char name[64], fix[NC_TEXT], path[768] = "";
	const char *res = nc_kind_resource(k);
	bool l403, w403;

	snprintf(name, sizeof(name), "k8s.rbac.%s", res);
	l403 = nc_answered(l) && l->status == 403;
	w403 = nc_answered(w) && w->status == 403;
	if (l403 || w403) {
		snprintf(fix, sizeof(fix),
			 "the ClusterRole bound to weftd's service account needs this rule (deploy/kubernetes/"
			 "10-rbac.yaml has it): - {apiGroups: [\"%s\"], resources: [\"%s\"], verbs: [%s%s%s]}",
			 nc_kind_group(k), res, l403 ? "\"list\"" : "", l403 && w403 ? ", " : "",
			 w403 ? "\"watch\"" : "");
		nc_pushf(r, name, NC_FAIL, fix, "403 Forbidden to %s%s%s %s: %s", l403 ? "list" : "",
			 l403 && w403 ? " and " : "", w403 ? "watch" : "", res, (l403 ? l : w)->detail);
		return;
	}
	if (!l->done || !w->done) {
		nc_pushf(r, name, NC_FAIL, "is the API server overloaded? run the check again",
			 "no answer to the %s of %s within the check's time", !l->done ? "list" : "watch", res);
		return;
	}
	if (l->err || w->err) {
		bad = l->err ? l : w;
		nc_pushf(r, name, NC_FAIL, nc_api_fix(bad->err), "%s", bad->detail);
		return;
	}
	if (l->status / 100 == 2 && w->status / 100 == 2) {
		if (k == NC_PODS)
			snprintf(path, sizeof(path), " (this node's: fieldSelector spec.nodeName=%s)",
				 f->cfg->kubernetes.node_name);
		nc_pushf(r, name, NC_OK, "", "list and watch %s allowed%s", res, path);
		return;
	}
	bad = l->status / 100 != 2 ? l : w;
	if (bad->status == 404 && k == NC_ENDPOINTSLICES) {
		nc_pushf(r, name, NC_FAIL, "weft needs Kubernetes 1.21 or later (discovery.k8s.io/v1)",
			 "404: the API server does not serve discovery.k8s.io/v1 endpointslices: %s", bad->detail);
		return;
	}
	nc_pushf(r, name, NC_FAIL, "look at the API server; weftd retries with back-off, but lists nothing until then",
		 "the %s of %s answered %d: %s", bad == l ? "list" : "watch", res, bad->status, bad->detail);
}

static void judge_kube(const struct nc_facts *f, struct nc_report *r)
{
	const struct cfg_kubernetes *kc = &f->cfg->kubernetes;
	const struct nc_api_answer *a401, *first = NULL;
	bool reachable = false;
	char fix[NC_TEXT];
	int k;

	if (f->token_err) {
		snprintf(fix, sizeof(fix),
			 "in a pod the kubelet mounts the service account token there (automountServiceAccountToken "
			 "must not be false); elsewhere write one there (kubectl -n weft-system create token weft)");
		nc_push(r, "k8s.token", NC_FAIL, f->token_detail, fix);
		return;
	}
	if (f->kapi_err) {
		nc_push(r, "k8s.api", NC_FAIL, f->kapi_detail, "correct kubernetes.api or kubernetes.ca_file");
		return;
	}
	for (k = 0; k < NC_KINDS; k++) {
		if (nc_answered(&f->list[k]) || nc_answered(&f->watch[k]))
			reachable = true;
		if (!first && f->list[k].done && f->list[k].err)
			first = &f->list[k];
	}
	if (!reachable) {
		if (first)
			nc_pushf(r, "k8s.api", NC_FAIL, nc_api_fix(first->err), "%s unreachable: %s", kc->api,
				 first->detail);
		else
			nc_pushf(r, "k8s.api", NC_FAIL, "is the API server up, and kubernetes.api its address?",
				 "%s: no answer within the check's time", kc->api);
		return;
	}
	nc_pushf(r, "k8s.api", NC_OK, "", "%s answers over TLS (its certificate verified with %s)", kc->api,
		 kc->ca_file);
	a401 = nc_first_status(f, 401);
	if (a401) {
		nc_pushf(r, "k8s.token", NC_FAIL,
			 "the token is expired, revoked or of another cluster: in a pod the kubelet renews it (restart "
			 "the pod); elsewhere make a new one (kubectl -n weft-system create token weft)",
			 "the API server rejected the token in %s (401 Unauthorized%s%s)", kc->token_file,
			 strcmp(a401->detail, "Unauthorized") ? ": " : "",
			 strcmp(a401->detail, "Unauthorized") ? a401->detail : "");
		return;
	}
	nc_pushf(r, "k8s.token", NC_OK, "", "%s (%zu bytes), accepted by the API server", kc->token_file, f->token_len);
	for (k = 0; k < NC_KINDS; k++)
		judge_rbac(f, (enum nc_kind)k, r);
	if (nc_answered(&f->list[NC_NODES]) && f->list[NC_NODES].status == 200) {
		if (f->list[NC_NODES].items > 0)
			nc_pushf(r, "k8s.node", NC_OK, "", "%s is a Node of this cluster", kc->node_name);
		else if (f->list[NC_NODES].items == 0)
			nc_pushf(
				r, "k8s.node", NC_FAIL,
				"set kubernetes.node_name, or $NODE_NAME (the DaemonSet passes spec.nodeName), to this "
				"node's name as kubectl get nodes shows it",
				"the cluster has no Node named '%s': weftd would find no pods of this node",
				kc->node_name);
	}
}

void nc_judge(const struct nc_facts *f, struct nc_report *r)
{
	judge_config(f, r);
	judge_kernel(f, r);
	judge_btf(f, r);
	judge_cgroup2(f, r);
	judge_features(f, r);
	if (f->cfg)
		judge_bpffs(f, r);
	judge_caps(f, r);
	judge_nofile(f, r);
	if (f->cfg)
		judge_agent(f, r);
	if (f->cfg && f->cfg->kubernetes.enabled)
		judge_kube(f, r);
}

/* ---- rendering ----------------------------------------------------------- */

/*
 * Appends text to out, words wrapped so no line passes width (a word longer
 * than a line gets a line of its own), every line but the first indented by
 * indent spaces; col is the column the first line starts at. Newlines in
 * text start new (indented) lines.
 */
static void nc_wrap(struct buf *out, const char *text, unsigned col, unsigned indent, unsigned width)
{
	const char *p = text;
	bool first_word = true;

	while (*p) {
		size_t wl;

		if (*p == '\n') {
			buf_printf(out, "\n%*s", (int)indent, "");
			col = indent;
			first_word = true;
			p++;
			continue;
		}
		if (*p == ' ') {
			p++;
			continue;
		}
		wl = strcspn(p, " \n");
		if (!first_word && col + 1 + wl > width) {
			buf_printf(out, "\n%*s", (int)indent, "");
			col = indent;
			first_word = true;
		}
		if (!first_word) {
			buf_add(out, " ", 1);
			col++;
		}
		buf_add(out, p, wl);
		col += (unsigned)wl;
		p += wl;
		first_word = false;
	}
}

void nc_render_text(const struct nc_report *r, unsigned width, struct buf *out)
{
	static const char *const word[] = { "ok", "warn", "FAIL" };
	char head[NC_TEXT];
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct nc_check *c = &r->v[i];

		buf_printf(out, "%-6s", word[c->status]);
		snprintf(head, sizeof(head), "%s: %s", c->name, c->detail);
		nc_wrap(out, head, 6, 6, width);
		buf_add(out, "\n", 1);
		if (c->status != NC_OK && *c->fix) {
			buf_puts(out, "      fix:");
			buf_add(out, " ", 1);
			nc_wrap(out, c->fix, 11, 11, width);
			buf_add(out, "\n", 1);
		}
	}
	if (r->failed)
		buf_puts(out, "FAIL  weftctl: out of memory: this report is incomplete\n");
}

void nc_render_json(const struct nc_report *r, struct buf *out)
{
	size_t i;

	buf_puts(out, "{\"checks\":[");
	for (i = 0; i < r->n; i++) {
		const struct nc_check *c = &r->v[i];

		buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
		buf_json_str(out, c->name);
		buf_printf(out, ",\"status\":\"%s\",\"detail\":", nc_status_name(c->status));
		buf_json_str(out, c->detail);
		buf_puts(out, ",\"fix\":");
		buf_json_str(out, c->fix);
		buf_puts(out, "}");
	}
	if (r->failed)
		buf_printf(out,
			   "%s{\"name\":\"weftctl\",\"status\":\"fail\",\"detail\":\"out of memory: this report "
			   "is incomplete\",\"fix\":\"\"}",
			   r->n ? "," : "");
	buf_puts(out, "]}\n");
}
