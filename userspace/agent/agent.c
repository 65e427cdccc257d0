// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "agent/agent.h"

#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <ev.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin.h"
#include "lib/buf.h"
#include "kernel/cgroup.h"
#include "kernel/cgwatch.h"
#include "config/config.h"
#include "config/config_render.h"
#include "listen/inbound.h"
#include "kernel/kernel.h"
#include "tls/mtls.h"
#include "tls/tls.h"
#include "lib/log.h"
#include "kernel/probe.h"
#include "listen/outbound.h"
#include "listen/pods.h"
#include "disc/disc.h"
#include "kube/kdisc.h"
#include "kube/kident.h"
#include "state/tap.h"
#include "kube/kmodel.h"
#include "admin/render.h"
#include "admin/snapshot.h"
#include "admin/statwin.h"
#include "admin/tapfeed.h"
#include "http/h2session.h"
#include "http/h1svc.h"
#include "state/membudget.h"
#include "state/service.h"
#include "http/zipkin.h"

#ifndef WEFT_VERSION
#define WEFT_VERSION "0.1.0"
#endif

#define HEARTBEAT_MAX_S 1.0
#define AGENT_BACKSTOP_SCAN_S 10.0 /* full rescan period when inotify watches the tree */
#define AGENT_MAX_MANUAL 256       /* cgroups enrolled by hand (weftctl enroll) */
#define AGENT_TRIM_MIN (8u << 20)  /* bytes given back since the peak that make a malloc_trim worth it */

struct agent {
	struct ev_loop *loop;
	struct zipkin *zipkin; /* span exporter (tracing.collector), NULL: none */
	struct weft_config *cfg;
	const char *path;
	bool verbose;
	struct kern *kern;
	struct registry reg; /* services and endpoints, shared by every path */
	bool reg_ok;
	bool starved;        /* the heartbeat is held back: no listener accepts */
	struct membudget mb; /* agent.buffer_memory_mb: buffered HTTP bytes, per workload */
	bool mb_ok;
	struct outbound *ob;
	struct pods *pods;     /* pods' network namespaces (listen/pods) */
	struct kdisc *kdisc;   /* services from the Kubernetes API (kube/kdisc), NULL: none */
	struct kident *kident; /* this node's pods' identities (kdisc fills it, workers read it); NULL: no kubernetes */
	size_t n_discovered;   /* discovered services in force */
	struct disc *disc;     /* endpoints_from sources (disc/): DNS names, endpoint files */
	char cgmount[CG_PATH_MAX];
	char self_cg[CG_PATH_MAX];
	uint64_t self_cgid;
	ev_signal sig_term, sig_int, sig_hup;
	ev_timer beat, drain;
	struct admin *admin;
	struct mtls *mtls;       /* NULL without a tls group */
	struct inbound *inbound; /* agent.inbound, when mtls */
	bool tls_reload_failed;
	double drain_deadline;
	struct cgw *cgw;         /* inotify on the cgroup tree; NULL: periodic scan only */
	ev_timer rescan;         /* coalesces bursts of cgroup events into one scan */
	ev_timer stat_tick;      /* statwin's sampling */
	struct statwin *statwin; /* GET /stat: golden signals over recent windows */
	struct tap tap;          /* the live request feed (workers offer, tapfeed reads) */
	bool tap_ok;
	struct tapfeed *tapfeed; /* GET /tap's readers */
	double last_scan;
	bool ready;
	bool draining;
	bool scan_loud;                 /* log enrolment failures (first scan, reloads) or only at debug */
	char *manual[AGENT_MAX_MANUAL]; /* absolute dirs enrolled with weftctl enroll */
	size_t n_manual;
	uint64_t reloads_ok, reloads_failed;
	double reload_s[4]; /* last successful reload, by phase: parse, build, lock, kernel */
	uint64_t config_hash;
	double config_loaded_at;  /* wall clock, seconds */
	char cgname[CG_PATH_MAX]; /* scratch for agent_cgroup_name */
};

/*
 * The heartbeat period: at most a second, and at most a third of the stale
 * window, so a live agent never looks stale between two beats (even with a
 * delayed timer) and the BPF side never fails open by mistake.
 */
static double agent_beat_period(const struct weft_config *cfg)
{
	double p = cfg->heartbeat_stale_ms / 3000.0;

	return p < HEARTBEAT_MAX_S ? p : HEARTBEAT_MAX_S;
}

/* agent.workers, 0 meaning one per CPU this process may run on. */
static unsigned agent_workers(const struct weft_config *cfg)
{
	cpu_set_t set;
	int n;

	if (cfg->workers)
		return cfg->workers;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && (n = CPU_COUNT(&set)) > 0)
		return n > CFG_MAX_WORKERS ? CFG_MAX_WORKERS : (unsigned)n;
	n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 && n <= CFG_MAX_WORKERS ? (unsigned)n : 1;
}

static void agent_fill_state(const struct agent *a, struct weft_agent_state *st, bool enabled)
{
	memset(st, 0, sizeof(*st));
	st->stale_after_ns = (uint64_t)a->cfg->heartbeat_stale_ms * 1000000ull;
	st->agent_cgroup_id = a->self_cgid;
	st->mark = a->cfg->mark;
	st->outbound_port = a->cfg->outbound_port;
	st->fail_mode = a->cfg->fail_mode == CFG_FAIL_CLOSED ? WEFT_FAIL_CLOSED : WEFT_FAIL_OPEN;
	st->enabled = enabled;
	st->redirect = a->cfg->redirect_loopback;
	st->strict_inbound = a->cfg->strict_inbound;
}

static int agent_enroll_one(const char *dir, void *arg)
{
	struct agent *a = arg;
	char err[512];

	if (kern_enroll(a->kern, dir, err, sizeof(err)) < 0) {
		if (a->scan_loud)
			log_error("%s", err);
		else
			log_debug("%s", err);
	}
	return 0;
}

/*
 * Checks that every intercept.cgroups entry can live under this host's cgroup2
 * mount. Config validation cannot (it does not know the host); this can.
 */
static int agent_check_cgroups(const struct agent *a, const struct weft_config *cfg)
{
	size_t mlen = strlen(a->cgmount), i;
	int bad = 0;

	for (i = 0; i < cfg->n_cgroups; i++) {
		const char *e = cfg->cgroups[i];

		if (e[0] == '/' && (strncmp(e, a->cgmount, mlen) != 0 || (e[mlen] != '/' && e[mlen] != '\0'))) {
			log_error("%s: intercept.cgroups[%zu]: '%s' is not under this host's cgroup2 mount "
				  "'%s'; write it relative to the mount (e.g. 'system.slice/app.service') "
				  "or under %s",
				  cfg->path, i, e, a->cgmount, a->cgmount);
			bad++;
		}
	}
	return bad ? -EINVAL : 0;
}

/*
 * Mark/sweep: enrol what matches now, release what no longer matches or is
 * gone; then point the inotify watches at wherever the next match can appear.
 */
static void agent_scan_cgroups(struct agent *a)
{
	char *entries[CFG_MAX_CGROUPS + AGENT_MAX_MANUAL];
	size_t i, n = 0;

	kern_enroll_begin(a->kern);
	for (i = 0; i < a->cfg->n_cgroups; i++) {
		cg_expand(a->cgmount, a->cfg->cgroups[i], agent_enroll_one, a);
		entries[n++] = a->cfg->cgroups[i];
	}
	for (i = 0; i < a->n_manual; i++) {
		cg_expand(a->cgmount, a->manual[i], agent_enroll_one, a);
		entries[n++] = a->manual[i];
	}
	kern_enroll_end(a->kern);
	if (a->cgw)
		cgw_sync(a->cgw, a->cgmount, entries, n);
	if (a->pods) {
		const char *dirs[CFG_MAX_CGROUPS + AGENT_MAX_MANUAL];
		const char *p;
		uint64_t cid;
		size_t k = 0;

		for (i = 0; k < sizeof(dirs) / sizeof(dirs[0]) && (p = kern_enrolled_path(a->kern, i, &cid)); i++)
			dirs[k++] = p;
		pods_set_cgroups(a->pods, dirs, k);
	}
	a->scan_loud = false;
	a->last_scan = ev_now(a->loop);
}

static void agent_on_rescan(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agent *a = w->data;

	(void)loop;
	(void)revents;
	if (!a->draining)
		agent_scan_cgroups(a);
}

/* inotify saw a cgroup come or go: rescan shortly (a burst of mkdirs costs one scan). */
static void agent_on_cgroup_event(void *arg)
{
	struct agent *a = arg;

	if (!ev_is_active(&a->rescan))
		ev_timer_start(a->loop, &a->rescan);
}

/* The exporter is made once at start (workers use it without a lock); only sample_rate may change. */
static bool tracing_export_changed(const struct cfg_tracing *n, const struct cfg_tracing *o)
{
	if (n->enabled != o->enabled)
		return true;
	if (!n->enabled)
		return false;
	return !addr_equal(&n->collector, &o->collector) || strcmp(n->path, o->path) != 0 ||
	       strcmp(n->service_name, o->service_name) != 0 || n->queue_size != o->queue_size ||
	       n->batch_size != o->batch_size || n->flush_ms != o->flush_ms;
}

static int agent_reload(struct agent *a, struct buf *errout);

static bool agent_pod_identity(void *arg, const char *cgroup_path, const char *td, char *id, size_t len)
{
	return kident_of_cgroup(arg, cgroup_path, td, id, len);
}

/* mtls_load, with pods' identities (from the Pods watch) wired in when there is discovery. */
static int agent_mtls_load(struct agent *a, const struct weft_config *cfg, struct mtls **out, char *err, size_t errlen)
{
	int r = mtls_load(cfg, a->cgmount, out, err, errlen);

	if (r == 0 && *out && a->kident)
		mtls_set_workload_identity(*out, agent_pod_identity, a->kident);
	return r;
}

/* Does a discovered service use an address a service of the file has? (the file's wins) */
static bool vip_taken(const struct weft_config *file, const struct cfg_service *d)
{
	size_t i, j, k;

	for (i = 0; i < file->n_services; i++)
		for (j = 0; j < file->services[i].n_addrs; j++)
			for (k = 0; k < d->n_addrs; k++)
				if (addr_equal(&file->services[i].addrs[j], &d->addrs[k]))
					return true;
	return false;
}

/* The file's entry that sets the policy of discovered service d ("<ns>/<name>:<port>"), or -1. */
static ssize_t override_of(const struct weft_config *file, const struct cfg_service *d)
{
	size_t i;

	for (i = 0; i < file->n_services; i++)
		if (file->services[i].source == CFG_SRC_OVERRIDE && !strcmp(file->services[i].name, d->name))
			return (ssize_t)i;
	return -1;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct weft_addr));
}

/* Would connecting to a (an endpoint a source gave) loop: a service address, or weftd's outbound listener? */
static bool endpoint_loops(const struct weft_config *cfg, const struct weft_addr *vips, size_t n_vips,
			   const struct weft_sockaddr *a)
{
	struct weft_sockaddr lo;
	struct weft_addr k;
	char why[64];

	addr_to_key(a, &k);
	if (n_vips && bsearch(&k, vips, n_vips, sizeof(*vips), key_cmp))
		return true;
	if (addr_port(a) != cfg->outbound_port)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == htonl(INADDR_LOOPBACK) || a->in4.sin_addr.s_addr == htonl(INADDR_ANY);
	if (addr_parse("[::1]:1", false, &lo, why, sizeof(why)) == 0 &&
	    !memcmp(&a->in6.sin6_addr, &lo.in6.sin6_addr, sizeof(lo.in6.sin6_addr)))
		return true;
	return IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr);
}

/*
 * The endpoints of the file's services that take theirs from endpoints_from
 * (disc/), into merged (found[i]: the arrays, the caller frees them). An
 * endpoint that would loop (a service address, weftd's outbound listener:
 * the config refuses those in endpoints) is left out, with a warning.
 * O(VIPs log VIPs + endpoints log VIPs). 0 or -ENOMEM.
 */
static int agent_source_endpoints(struct agent *a, const struct weft_config *file, struct weft_config *merged,
				  struct cfg_endpoint **found)
{
	struct weft_addr *vips;
	size_t nv = 0, i, j, k, n;
	char ab[ADDR_STRLEN];

	for (i = 0; i < file->n_services; i++)
		nv += file->services[i].n_addrs;
	vips = malloc((nv ? nv : 1) * sizeof(*vips));
	if (!vips)
		return -ENOMEM;
	for (i = 0, nv = 0; i < file->n_services; i++)
		for (j = 0; j < file->services[i].n_addrs; j++)
			addr_to_key(&file->services[i].addrs[j], &vips[nv++]);
	qsort(vips, nv, sizeof(*vips), key_cmp);
	for (i = 0; i < file->n_services; i++) {
		struct cfg_service *m = &merged->services[i];
		struct cfg_endpoint *eps;

		if (!file->services[i].n_sources)
			continue;
		if (disc_endpoints(a->disc, &file->services[i], &eps, &n) < 0) {
			free(vips);
			return -ENOMEM;
		}
		for (j = 0, k = 0; j < n; j++) {
			if (endpoint_loops(file, vips, nv, &eps[j].addr)) {
				log_warn_rl("service %s: endpoint %s from %s is a service address or weftd's outbound "
					    "listener; left out (connections would loop)",
					    m->name, addr_format(&eps[j].addr, ab, sizeof(ab)),
					    cfg_ep_source_name((enum cfg_ep_source)eps[j].source));
				continue;
			}
			eps[k++] = eps[j];
		}
		found[i] = eps;
		m->endpoints = eps;
		m->n_endpoints = k;
	}
	free(vips);
	return 0;
}

/*
 * The services in force: the file's, plus, with kubernetes discovery, the
 * discovered ones. A file entry named like a discovered service sets its
 * policy: it takes the discovered addresses, endpoints and (unless the entry
 * names one) protocol, in the file's slot, so route backends keep their
 * indices; an entry whose service is not discovered (yet) has no address and
 * no endpoint. A discovered service whose ClusterIP:port a file service has
 * is left out, with a warning. Into the registry (established connections
 * keep theirs; endpoint state survives by address) and the kernel's
 * weft_services. O(discovered x overrides). 0 or -ENOMEM (then nothing
 * changed).
 */
static int agent_apply_services(struct agent *a, const struct weft_config *file)
{
	struct weft_config merged;
	struct cfg_service *disc = NULL;
	struct cfg_endpoint **found = NULL;
	size_t nd = 0, i;
	bool sources = false;
	int r = -ENOMEM;

	for (i = 0; i < file->n_services && !sources; i++)
		sources = file->services[i].n_sources > 0;
	if (!a->kdisc && !sources) {
		if (reg_set_config(&a->reg, file) < 0)
			return -ENOMEM;
		kern_sync_services(a->kern, file);
		return 0;
	}
	if (a->kdisc && kmodel_services(kdisc_model(a->kdisc), &disc, &nd) < 0)
		return -ENOMEM;
	merged = *file;
	merged.services = calloc(file->n_services + nd + 1, sizeof(*merged.services));
	found = calloc(file->n_services + 1, sizeof(*found));
	if (!merged.services || !found)
		goto out;
	if (file->n_services)
		memcpy(merged.services, file->services, file->n_services * sizeof(*merged.services));
	merged.n_services = file->n_services;
	if (sources && agent_source_endpoints(a, file, &merged, found) < 0)
		goto out;
	for (i = 0; i < nd; i++) {
		ssize_t o;
		size_t j;

		/* without node-to-node mTLS, other nodes' pods are reached directly (the pod network routes them) */
		for (j = 0; !a->mtls && j < disc[i].n_endpoints; j++)
			disc[i].endpoints[j].has_node = false;
		for (j = 0; j < disc[i].n_endpoints; j++)
			disc[i].endpoints[j].source = CFG_EP_KUBERNETES;
		if (vip_taken(file, &disc[i])) {
			log_warn_rl("kubernetes: service %s: its ClusterIP is an address of a service in %s; that one "
				    "is used",
				    disc[i].name, file->path);
			continue;
		}
		o = override_of(file, &disc[i]);
		if (o >= 0) {
			struct cfg_service *m = &merged.services[o];

			m->addrs = disc[i].addrs;
			m->n_addrs = disc[i].n_addrs;
			m->endpoints = disc[i].endpoints;
			m->n_endpoints = disc[i].n_endpoints;
			if (!m->protocol_set)
				m->protocol = disc[i].protocol;
			continue;
		}
		merged.services[merged.n_services++] = disc[i];
	}
	r = reg_set_config(&a->reg, &merged);
	if (r == 0) {
		kern_sync_services(a->kern, &merged);
		a->n_discovered = merged.n_services - file->n_services;
	}
out:
	for (i = 0; found && i < file->n_services; i++)
		free(found[i]);
	free(found);
	free(merged.services);
	kmodel_services_free(disc, nd);
	return r < 0 ? -ENOMEM : 0;
}

/* An endpoints_from source's set changed (coalesced): apply the services again. */
static void agent_on_sources(void *arg)
{
	struct agent *a = arg;
	double t0 = ev_time();

	if (a->draining)
		return;
	if (agent_apply_services(a, a->cfg) < 0) {
		log_error("out of memory applying discovered endpoints; the previous ones stay");
		return;
	}
	log_debug("endpoints from DNS and files applied in %.3f s", ev_time() - t0);
}

/* The API said something changed (coalesced): apply it. */
static void agent_on_discovery(void *arg)
{
	struct agent *a = arg;
	double t0 = ev_time();

	if (a->draining)
		return;
	if (agent_apply_services(a, a->cfg) < 0) {
		log_error("kubernetes: out of memory applying discovered services; the previous ones stay");
		return;
	}
	log_debug("kubernetes: %zu discovered services applied in %.3f s", a->n_discovered, ev_time() - t0);
}

/*
 * Certificate or key files changed (rotation), or a minted certificate is due
 * for renewal: rebuild only the TLS bundle from the config in force, so
 * unrelated edits to the config file wait for an explicit reload. Open
 * connections keep the contexts they hold.
 */
static void agent_reload_tls(struct agent *a)
{
	struct mtls *nm = NULL;
	char err[768];

	if (agent_mtls_load(a, a->cfg, &nm, err, sizeof(err)) < 0 || !nm) {
		/* keep the old bundle; say so once per change, not every beat */
		if (!a->tls_reload_failed)
			log_error("certificate files changed but cannot be loaded (%s); the previous ones stay "
				  "in use",
				  err);
		a->tls_reload_failed = true;
		return;
	}
	a->tls_reload_failed = false;
	reg_set_mtls(&a->reg, nm);
	if (a->inbound)
		inbound_update(a->inbound, a->cfg, nm);
	mtls_unref(a->mtls);
	a->mtls = nm;
	log_info("certificates reloaded (earliest expiry now %lld)", (long long)mtls_earliest_expiry(nm));
}

/*
 * Refreshes the heartbeat unless a worker is stuck. A worker that stopped
 * turning its loop cannot proxy: then the heartbeat goes stale so the kernel
 * side fails open (or closed) instead of sending connections into a black
 * hole. false: not refreshed.
 */
static bool agent_heartbeat(struct agent *a)
{
	double age;
	int stuck;

	stuck = outbound_stuck_worker(a->ob, a->cfg->heartbeat_stale_ms / 2000.0, &age);
	if (stuck >= 0) {
		log_error("worker %d has not run for %.1f s; not refreshing the heartbeat (fail_mode %s "
			  "applies to new connections)",
			  stuck, age, a->cfg->fail_mode == CFG_FAIL_CLOSED ? "closed" : "open");
		return false;
	}
	/* accepting nothing (descriptors exhausted): new connects would hang in the backlog */
	if (outbound_starved(a->ob, a->cfg->heartbeat_stale_ms / 2000.0, &age)) {
		if (!a->starved)
			log_error("the outbound listeners have not accepted for %.1f s (descriptors or memory "
				  "exhausted); not refreshing the heartbeat: fail_mode %s applies to new connections "
				  "until they accept again",
				  age, a->cfg->fail_mode == CFG_FAIL_CLOSED ? "closed" : "open");
		a->starved = true;
		return false;
	}
	if (a->starved)
		log_info("the outbound listeners accept again; heartbeat refreshed");
	a->starved = false;
	if (kern_heartbeat(a->kern) < 0)
		log_error("cannot refresh the heartbeat in weft_agent: %s", strerror(errno));
	return true;
}

static void agent_on_beat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agent *a = w->data;

	(void)loop;
	(void)revents;
	/* counts of rate-limited log lines that no later line carried */
	log_rl_flush(log_now_ms());
	if (!agent_heartbeat(a))
		return;
	/* after a spike of buffered bytes (an attack, a burst), give the memory back to the kernel */
	if (mb_trim_due(&a->mb, AGENT_TRIM_MIN))
		malloc_trim(0);
	if (a->mtls && !a->draining && mtls_files_changed(a->mtls))
		agent_reload_tls(a);
	/* with inotify, the scan is a backstop (watch limits, missed events) */
	if (!a->draining && (!a->cgw || ev_now(a->loop) - a->last_scan >= AGENT_BACKSTOP_SCAN_S)) {
		agent_scan_cgroups(a);
		if (a->pods)
			pods_rescan(a->pods);
	}
}

/*
 * Parses and validates the whole new config before touching anything; on any
 * problem the running config stays and each message goes to the log and, for
 * POST /reload, to errout. Then: services (proxy table, then the BPF map: adds
 * before deletes), agent state, enrolment. Established connections keep the
 * service state they started with.
 */
static int agent_reload(struct agent *a, struct buf *errout)
{
	struct cfg_errors errs = { 0 };
	struct weft_agent_state st;
	struct weft_config *n = NULL;
	const char *why = NULL;
	double t[4];
	size_t i;

	log_info("reloading %s", a->path);
	t[0] = ev_time();
	if (cfg_load(a->path, &n, &errs) < 0) {
		for (i = 0; i < errs.n; i++) {
			log_error("%s", errs.msgs[i]);
			if (errout)
				buf_printf(errout, "%s\n", errs.msgs[i]);
		}
		log_error("reload rejected: %s has %zu error(s); the running config stays in force", a->path, errs.n);
		cfg_errors_free(&errs);
		goto rejected;
	}
	cfg_errors_free(&errs);
	/* a big config takes a while to parse: the kernel side must not think we died meanwhile */
	agent_heartbeat(a);
	t[1] = ev_time();
	if (n->outbound_port != a->cfg->outbound_port)
		why = "agent.outbound_port";
	else if (strcmp(n->bpf_pin_path, a->cfg->bpf_pin_path) != 0)
		why = "agent.bpf_pin_path";
	else if (!addr_equal(&n->admin, &a->cfg->admin))
		why = "agent.admin";
	else if (n->buffer_size != a->cfg->buffer_size)
		why = "agent.buffer_size"; /* the relay buffer pool is sized once */
	else if (n->workers != a->cfg->workers)
		why = "agent.workers";
	else if (a->inbound && !addr_equal(&n->inbound, &a->cfg->inbound))
		why = "agent.inbound";
	else if (a->inbound && !n->tls_ca)
		why = "the tls group (removing it ends mTLS connections in flight)";
	else if (n->kubernetes.enabled != a->cfg->kubernetes.enabled ||
		 (n->kubernetes.enabled && (strcmp(n->kubernetes.api, a->cfg->kubernetes.api) ||
					    strcmp(n->kubernetes.node_name, a->cfg->kubernetes.node_name) ||
					    strcmp(n->kubernetes.token_file, a->cfg->kubernetes.token_file) ||
					    strcmp(n->kubernetes.ca_file, a->cfg->kubernetes.ca_file))))
		why = "the kubernetes group";
	else if (tracing_export_changed(&n->tracing, &a->cfg->tracing))
		why = "tracing export (collector, path, service_name, queue_size, batch_size, flush_ms; "
		      "sample_rate can change)";
	if (why) {
		log_error("reload rejected: %s cannot change while weftd runs; restart weftd to change it", why);
		if (errout)
			buf_printf(errout, "%s: %s cannot change while weftd runs; restart weftd to change it\n",
				   a->path, why);
		goto reject;
	}
	if (agent_check_cgroups(a, n) < 0) {
		if (errout)
			buf_printf(errout,
				   "%s: intercept.cgroups: an entry is not under the cgroup2 mount "
				   "'%s' (see the agent log)\n",
				   a->path, a->cgmount);
		goto reject;
	}
	{
		struct mtls *nm = NULL;
		char e2[768];

		if (agent_mtls_load(a, n, &nm, e2, sizeof(e2)) < 0) {
			log_error("reload rejected: %s", e2);
			if (errout)
				buf_printf(errout, "%s\n", e2);
			goto reject;
		}
		if (nm && !a->inbound && inbound_start(a->loop, n, &a->reg, nm, &a->inbound, e2, sizeof(e2)) < 0) {
			log_error("reload rejected: %s", e2);
			if (errout)
				buf_printf(errout, "%s\n", e2);
			mtls_unref(nm);
			goto reject;
		}
		reg_set_mtls(&a->reg, nm);
		if (a->inbound && nm)
			inbound_update(a->inbound, n, nm);
		if (a->inbound && !nm) {
			inbound_free(a->inbound);
			a->inbound = NULL;
		}
		mtls_unref(a->mtls);
		a->mtls = nm;
	}
	t[2] = ev_time();
	{
		char e2[512];

		if (disc_configure(a->disc, n, e2, sizeof(e2)) < 0) {
			log_error("reload rejected: %s", e2);
			if (errout)
				buf_printf(errout, "%s\n", e2);
			goto reject;
		}
	}
	if (agent_apply_services(a, n) < 0) {
		log_error("reload rejected: out of memory");
		if (errout)
			buf_puts(errout, "out of memory\n");
		goto reject;
	}
	agent_heartbeat(a);
	t[3] = ev_time();
	mb_configure(&a->mb, (size_t)n->buffer_memory_mb << 20, n->buffer_memory_workload_pct);
	a->reload_s[0] = t[1] - t[0];
	a->reload_s[1] = t[3] - t[2];
	a->reload_s[2] = a->reg.last_build_lock_s;
	a->reload_s[3] = ev_time() - t[3];
	log_info("reload took %.3f s: parse %.3f s, services %.3f s (lock held %.3f s), kernel maps %.3f s",
		 ev_time() - t[0], a->reload_s[0], a->reload_s[1], a->reload_s[2], a->reload_s[3]);
	cfg_free(a->cfg);
	a->cfg = n;
	log_set_level(a->verbose ? LOG_LVL_DEBUG : (enum log_level)n->log_level);
	log_rl_set_limit(n->log_rate_limit);
	agent_fill_state(a, &st, true);
	kern_set_agent(a->kern, &st);
	a->beat.repeat = agent_beat_period(n);
	ev_timer_again(a->loop, &a->beat);
	a->scan_loud = true;
	agent_scan_cgroups(a);
	a->reloads_ok++;
	a->config_hash = n->text_hash;
	a->config_loaded_at = ev_time();
	log_info("reloaded: %zu services, %zu cgroups enrolled", n->n_services, kern_enrolled_count(a->kern));
	return 0;
reject:
	cfg_free(n);
	log_error("reload rejected; the running config stays in force");
rejected:
	a->reloads_failed++;
	return -EINVAL;
}

/* ---- admin API ------------------------------------------------------------ */

static const char *agent_cgroup_name(void *arg, uint64_t id)
{
	struct agent *a = arg;
	const char *p;
	uint64_t cid;
	size_t i;

	for (i = 0; (p = kern_enrolled_path(a->kern, i, &cid)); i++)
		if (cid == id)
			return p;
	if (cg_path_of(a->cgmount, id, a->cgname, sizeof(a->cgname)) == 0)
		return a->cgname;
	return NULL;
}

static const char *const verdict_names[] = {
	[WEFT_V_REDIRECTED] = "redirected",
	[WEFT_V_NOT_SERVICE] = "not_service",
	[WEFT_V_SKIPPED_OWN] = "skipped_own",
	[WEFT_V_SKIPPED_STALE] = "skipped_stale_agent",
	[WEFT_V_REFUSED_STALE] = "refused_stale_agent",
	[WEFT_V_ERROR] = "error",
	[WEFT_V_HANDOFF] = "handoff",
	[WEFT_V_HANDOFF_ERROR] = "handoff_error",
	[WEFT_V_PEERNAME] = "getpeername",
	[WEFT_V_MSG_REDIRECTED] = "msg_redirected",
	[WEFT_V_MSG_PASSED] = "msg_passed",
	[WEFT_V_STRICT_DROPPED] = "strict_inbound_dropped",
	[WEFT_V_SKIPPED_NO_LISTENER] = "skipped_no_listener",
	[WEFT_V_REFUSED_NO_LISTENER] = "refused_no_listener",
};
_Static_assert(sizeof(verdict_names) / sizeof(verdict_names[0]) == WEFT_V__MAX, "every verdict needs a metric label");

/* process_* metrics as the Prometheus client libraries define them, from /proc/self. */
static void agent_process_metrics(struct buf *out)
{
	unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
	long rss = 0, tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long long btime = 0;
	char line[1024], *p;
	size_t nfds = 0;
	struct rlimit rl;
	FILE *f;
	DIR *d;

	f = fopen("/proc/self/stat", "re");
	if (f) {
		if (fgets(line, sizeof(line), f) && (p = strrchr(line, ')')))
			sscanf(p + 2,
			       "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
			       "%*d %llu %llu %ld",
			       &utime, &stime, &start, &vsize, &rss);
		fclose(f);
	}
	f = fopen("/proc/stat", "re");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "btime %llu", &btime) == 1)
				break;
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	if (d) {
		while (readdir(d))
			nfds++;
		closedir(d);
		nfds = nfds >= 3 ? nfds - 3 : 0; /* ".", ".." and the dir's own fd */
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		rl.rlim_cur = 0;
	buf_printf(out,
		   "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
		   "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
		   "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		   "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
		   "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
		   "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n"
		   "# HELP process_open_fds Number of open file descriptors.\n"
		   "# TYPE process_open_fds gauge\nprocess_open_fds %zu\n"
		   "# HELP process_max_fds Maximum number of open file descriptors.\n"
		   "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n"
		   "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
		   "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
		   tck > 0 ? (double)(utime + stime) / (double)tck : 0.0, rss * page, vsize, nfds,
		   (unsigned long long)rl.rlim_cur, tck > 0 ? (double)btime + (double)start / (double)tck : 0.0);
}

static void agent_metrics(struct agent *a, struct buf *out)
{
	uint64_t v[WEFT_V__MAX];
	int i;

	buf_printf(out,
		   "# HELP weft_build_info weftd build information.\n# TYPE weft_build_info gauge\n"
		   "weft_build_info{version=\"%s\"} 1\n"
		   "# HELP weft_ready 1 when programs are attached and listeners are up.\n"
		   "# TYPE weft_ready gauge\nweft_ready %d\n"
		   "# HELP weft_enrolled_cgroups Cgroups the BPF programs are attached to.\n"
		   "# TYPE weft_enrolled_cgroups gauge\nweft_enrolled_cgroups %zu\n"
		   "# HELP weft_config_reloads_total Config reloads by result.\n"
		   "# TYPE weft_config_reloads_total counter\n"
		   "weft_config_reloads_total{result=\"success\"} %llu\n"
		   "weft_config_reloads_total{result=\"failure\"} %llu\n"
		   "# HELP weft_config_hash Hash of the config file in force (52 bits of FNV-1a).\n"
		   "# TYPE weft_config_hash gauge\nweft_config_hash %llu\n"
		   "# HELP weft_config_last_reload_success_timestamp_seconds When the config in force was loaded.\n"
		   "# TYPE weft_config_last_reload_success_timestamp_seconds gauge\n"
		   "weft_config_last_reload_success_timestamp_seconds %.3f\n",
		   WEFT_VERSION, a->ready ? 1 : 0, kern_enrolled_count(a->kern), (unsigned long long)a->reloads_ok,
		   (unsigned long long)a->reloads_failed, (unsigned long long)(a->config_hash & ((1ull << 52) - 1)),
		   a->config_loaded_at);
	if (a->reloads_ok)
		buf_printf(out,
			   "# HELP weft_config_reload_duration_seconds How long the last successful reload took, "
			   "by phase (lock: the registry lock held while the new services were built and swapped in).\n"
			   "# TYPE weft_config_reload_duration_seconds gauge\n"
			   "weft_config_reload_duration_seconds{phase=\"parse\"} %.6f\n"
			   "weft_config_reload_duration_seconds{phase=\"services\"} %.6f\n"
			   "weft_config_reload_duration_seconds{phase=\"lock\"} %.6f\n"
			   "weft_config_reload_duration_seconds{phase=\"kernel\"} %.6f\n",
			   a->reload_s[0], a->reload_s[1], a->reload_s[2], a->reload_s[3]);
	buf_printf(
		out,
		"# HELP weft_buffer_memory_bytes Bytes buffered for HTTP sessions now (agent.buffer_memory_mb budget).\n"
		"# TYPE weft_buffer_memory_bytes gauge\nweft_buffer_memory_bytes %zu\n"
		"# HELP weft_buffer_memory_limit_bytes The budget for buffered bytes.\n"
		"# TYPE weft_buffer_memory_limit_bytes gauge\nweft_buffer_memory_limit_bytes %zu\n"
		"# HELP weft_buffer_memory_workloads Workloads holding buffered bytes now.\n"
		"# TYPE weft_buffer_memory_workloads gauge\nweft_buffer_memory_workloads %zu\n"
		"# HELP weft_buffer_memory_refused_total Buffer growth refused by the budget (the session is shed), "
		"by reason.\n# TYPE weft_buffer_memory_refused_total counter\n",
		atomic_load(&a->mb.used), atomic_load(&a->mb.limit), atomic_load(&a->mb.active));
	for (i = MB_SHARE; i < MB__MAX; i++)
		buf_printf(out, "weft_buffer_memory_refused_total{reason=\"%s\"} %llu\n", mb_refusal_names[i],
			   (unsigned long long)atomic_load(&a->mb.refused[i]));
	buf_printf(out,
		   "# HELP weft_buffer_memory_trims_total Times weftd gave freed memory back to the kernel "
		   "(malloc_trim) after a spike.\n# TYPE weft_buffer_memory_trims_total counter\n"
		   "weft_buffer_memory_trims_total %llu\n",
		   (unsigned long long)atomic_load(&a->mb.trims));
	buf_printf(out,
		   "# HELP weft_log_suppressed_total Log lines held back by the rate limit (agent.log_rate_limit).\n"
		   "# TYPE weft_log_suppressed_total counter\nweft_log_suppressed_total %llu\n",
		   (unsigned long long)log_suppressed_total());
	if (kern_read_stats(a->kern, v) == 0) {
		buf_puts(out, "# HELP weft_bpf_verdicts_total Decisions of the BPF programs, summed over CPUs.\n"
			      "# TYPE weft_bpf_verdicts_total counter\n");
		for (i = 0; i < WEFT_V__MAX; i++)
			buf_printf(out, "weft_bpf_verdicts_total{verdict=\"%s\"} %llu\n", verdict_names[i],
				   (unsigned long long)v[i]);
	}
	{
		struct snapshot snap;

		if (snapshot_take(&snap, &a->reg, a->ob, SNAP_METRICS, ev_now(a->loop)) == 0)
			render_metrics(&snap, a->zipkin, out);
		snapshot_free(&snap);
	}
	if (a->inbound)
		inbound_render_metrics(a->inbound, out);
	if (a->pods)
		pods_metrics(a->pods, out);
	if (a->kdisc)
		kdisc_metrics(a->kdisc, out);
	disc_metrics(a->disc, out);
	if (a->tapfeed)
		tapfeed_metrics(a->tapfeed, out);
	h2_metrics(out);
	if (a->mtls)
		buf_printf(out,
			   "# HELP weft_tls_cert_expiry_timestamp_seconds Earliest notAfter of the "
			   "certificates in use.\n# TYPE weft_tls_cert_expiry_timestamp_seconds gauge\n"
			   "weft_tls_cert_expiry_timestamp_seconds %lld\n",
			   (long long)mtls_earliest_expiry(a->mtls));
	if (a->mtls) {
		struct mtls_stats ms;

		mtls_stats(a->mtls, &ms);
		buf_printf(out,
			   "# HELP weft_tls_workload_identities Client identities of workloads: from identities "
			   "rules (config) or minted for pods found at run time (pod).\n"
			   "# TYPE weft_tls_workload_identities gauge\n"
			   "weft_tls_workload_identities{source=\"config\"} %zu\n"
			   "weft_tls_workload_identities{source=\"pod\"} %zu\n"
			   "# HELP weft_tls_identity_fallbacks_total Cross-node connections of a workload with a known "
			   "identity that used the node identity (no issuer, minting failed, too many).\n"
			   "# TYPE weft_tls_identity_fallbacks_total counter\n"
			   "weft_tls_identity_fallbacks_total %llu\n",
			   ms.configured, ms.minted, (unsigned long long)ms.fallbacks);
	}
	agent_process_metrics(out);
}

/* Resolves a weftctl enroll/unenroll argument to an absolute cgroup directory. */
static int agent_cgroup_arg(struct agent *a, const char *arg, char *dir, size_t len, struct admin_response *r)
{
	size_t mlen = strlen(a->cgmount);
	uint64_t id;
	int n;

	if (arg[0] == '/')
		n = snprintf(dir, len, "%s", arg);
	else
		n = snprintf(dir, len, "%s/%s", a->cgmount, arg);
	if (n < 0 || (size_t)n >= len) {
		admin_resp_text(r, 400, "cgroup path too long");
		return -1;
	}
	while (n > 1 && dir[n - 1] == '/')
		dir[--n] = '\0';
	if (strncmp(dir, a->cgmount, mlen) != 0 || (dir[mlen] != '/' && dir[mlen] != '\0')) {
		admin_resp_text(r, 400, "'%s' is not under the cgroup2 mount '%s'", arg, a->cgmount);
		return -1;
	}
	if (strstr(dir, "/../") || strstr(dir, "/./") || (n >= 3 && !strcmp(dir + n - 3, "/..")) ||
	    (n >= 2 && !strcmp(dir + n - 2, "/."))) {
		admin_resp_text(r, 400, "'%s': write the cgroup path without '.' or '..'", arg);
		return -1;
	}
	if (cg_id(dir, &id) < 0) {
		admin_resp_text(r, 404, "cgroup '%s' does not exist", dir);
		return -1;
	}
	return 0;
}

static void agent_admin_enroll(struct agent *a, const char *query, bool enroll, struct admin_response *r)
{
	char arg[CG_PATH_MAX], dir[CG_PATH_MAX], err[512];
	size_t i;

	if (!admin_query_get(query, "cgroup", arg, sizeof(arg)) || !arg[0]) {
		admin_resp_text(r, 400, "missing ?cgroup=PATH");
		return;
	}
	if (agent_cgroup_arg(a, arg, dir, sizeof(dir), r) < 0)
		return;
	for (i = 0; i < a->n_manual; i++)
		if (strcmp(a->manual[i], dir) == 0)
			break;
	if (enroll) {
		if (i == a->n_manual) {
			if (a->n_manual == AGENT_MAX_MANUAL) {
				admin_resp_text(r, 503,
						"too many cgroups enrolled by hand (%d); list them in "
						"intercept.cgroups instead",
						AGENT_MAX_MANUAL);
				return;
			}
			a->manual[a->n_manual] = strdup(dir);
			if (!a->manual[a->n_manual]) {
				admin_resp_text(r, 500, "out of memory");
				return;
			}
			a->n_manual++;
		}
		if (kern_enroll(a->kern, dir, err, sizeof(err)) < 0) {
			/* not kept: the scans would retry (and fail) forever */
			for (i = 0; i < a->n_manual; i++)
				if (strcmp(a->manual[i], dir) == 0) {
					free(a->manual[i]);
					a->manual[i] = a->manual[--a->n_manual];
					break;
				}
			admin_resp_text(r, 500, "%s", err);
			return;
		}
		admin_resp_text(r, 200, "enrolled %s (until weftd restarts; add it to intercept.cgroups to keep it)",
				dir);
		return;
	}
	if (i == a->n_manual) {
		const char *p;
		uint64_t cid, id = 0;
		size_t k;

		cg_id(dir, &id);
		for (k = 0; (p = kern_enrolled_path(a->kern, k, &cid)); k++) {
			if (cid == id) {
				admin_resp_text(r, 409,
						"%s is enrolled by intercept.cgroups in %s; remove it from "
						"the config and reload",
						dir, a->path);
				return;
			}
		}
		admin_resp_text(r, 404, "%s is not enrolled", dir);
		return;
	}
	free(a->manual[i]);
	a->manual[i] = a->manual[--a->n_manual];
	agent_scan_cgroups(a);
	admin_resp_text(r, 200, "unenrolled %s", dir);
}

static void h_live(void *arg, const char *query, struct admin_response *r)
{
	(void)arg;
	(void)query;
	admin_resp_text(r, 200, "live");
}

static void h_ready(void *arg, const char *query, struct admin_response *r)
{
	struct agent *a = arg;

	(void)query;
	if (a->ready)
		admin_resp_text(r, 200, "ready");
	else
		admin_resp_text(r, 503, a->draining ? "draining" : "starting");
}

/* GET /services and /conns: copied under the lock, formatted without it (no worker waits on a page). */
static void agent_page(struct agent *a, bool svcs, const char *query, struct admin_response *r)
{
	char fmt[16] = "", wide[8] = "";
	struct snapshot snap;
	bool text, w;

	admin_query_get(query, "format", fmt, sizeof(fmt));
	admin_query_get(query, "wide", wide, sizeof(wide));
	text = strcmp(fmt, "text") == 0;
	w = wide[0] && strcmp(wide, "0");
	if (snapshot_take(&snap, &a->reg, a->ob, svcs ? SNAP_SERVICES : SNAP_CONNS, ev_now(a->loop)) < 0) {
		admin_resp_text(r, 503, "out of memory");
	} else {
		if (text)
			r->ctype = "text/plain; charset=utf-8";
		if (svcs && text)
			render_services_text(&snap, r->body, w);
		else if (svcs)
			render_services(&snap, r->body, disc_render_service, a->disc);
		else if (text)
			render_conns_text(&snap, r->body, agent_cgroup_name, a, w);
		else
			render_conns(&snap, r->body, agent_cgroup_name, a);
	}
	snapshot_free(&snap);
}

static void h_services(void *arg, const char *query, struct admin_response *r)
{
	agent_page(arg, true, query, r);
}

static void h_conns(void *arg, const char *query, struct admin_response *r)
{
	agent_page(arg, false, query, r);
}

/* Every STATWIN_PERIOD_S: one sample of the counters for GET /stat. */
static void agent_on_stat_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct agent *a = t->data;
	struct snapshot snap;

	(void)revents;
	if (snapshot_take(&snap, &a->reg, a->ob, SNAP_SERVICES | SNAP_METRICS, ev_now(loop)) == 0 &&
	    statwin_sample(a->statwin, &snap) < 0)
		log_warn_rl("stat: out of memory sampling the counters; weftctl stat may show gaps");
	snapshot_free(&snap);
}

/* GET /tap: a stream of the requests proxied (admin/tapfeed) */
static void h_tap(void *arg, const char *query, struct admin_response *r)
{
	struct agent *a = arg;

	if (a->draining)
		admin_resp_text(r, 503, "weftd is shutting down");
	else
		tapfeed_attach(a->tapfeed, query, r);
}

/* GET /stat?service=NAME&wide=1&window=10|60&format=text */
static void h_stat(void *arg, const char *query, struct admin_response *r)
{
	struct agent *a = arg;
	char fmt[16] = "", svc[256] = "", wide[8] = "", win[16] = "";
	struct statwin_opts o = { 0 };
	struct snapshot snap;
	bool text;

	admin_query_get(query, "format", fmt, sizeof(fmt));
	admin_query_get(query, "service", svc, sizeof(svc));
	admin_query_get(query, "wide", wide, sizeof(wide));
	admin_query_get(query, "window", win, sizeof(win));
	text = strcmp(fmt, "text") == 0;
	o.service = svc[0] ? svc : NULL;
	o.wide = wide[0] && strcmp(wide, "0");
	o.window_s = atof(win);
	if (win[0] && o.window_s != 10 && o.window_s != 60) {
		admin_resp_text(r, 400, "window=%s: the windows are 10 and 60 (seconds)", win);
		return;
	}
	if (snapshot_take(&snap, &a->reg, a->ob, SNAP_SERVICES, ev_now(a->loop)) < 0) {
		admin_resp_text(r, 503, "out of memory");
	} else {
		if (text)
			r->ctype = "text/plain; charset=utf-8";
		if (!statwin_render(a->statwin, &snap, &o, text, r->body))
			admin_resp_text(r, 404, "no service '%s' (weftctl services lists them)", svc);
	}
	snapshot_free(&snap);
}

static void h_pods(void *arg, const char *query, struct admin_response *r)
{
	struct agent *a = arg;
	struct pod_info *v = NULL;
	char fmt[16] = "", wide[8] = "";
	size_t n;

	admin_query_get(query, "format", fmt, sizeof(fmt));
	admin_query_get(query, "wide", wide, sizeof(wide));
	n = a->pods ? pods_snapshot(a->pods, &v) : 0;
	if (strcmp(fmt, "text") == 0) {
		r->ctype = "text/plain; charset=utf-8";
		render_pods_text(v, n, r->body, wide[0] && strcmp(wide, "0"));
	} else {
		render_pods(v, n, r->body);
	}
	free(v);
}

static void h_config(void *arg, const char *query, struct admin_response *r)
{
	struct agent *a = arg;

	(void)query;
	cfg_render_json(a->cfg, r->body);
}

static void h_metrics(void *arg, const char *query, struct admin_response *r)
{
	(void)query;
	r->ctype = "text/plain; version=0.0.4; charset=utf-8";
	agent_metrics(arg, r->body);
}

static void h_reload(void *arg, const char *query, struct admin_response *r)
{
	struct agent *a = arg;

	(void)query;
	if (a->draining) {
		admin_resp_text(r, 503, "weftd is shutting down");
	} else if (agent_reload(a, r->body) < 0) {
		r->status = 400;
		r->ctype = "text/plain; charset=utf-8";
	} else {
		admin_resp_text(r, 200, "reloaded %s: %zu services, %zu cgroups enrolled", a->path, a->cfg->n_services,
				kern_enrolled_count(a->kern));
	}
}

static void h_enroll(void *arg, const char *query, struct admin_response *r)
{
	agent_admin_enroll(arg, query, true, r);
}

static void h_unenroll(void *arg, const char *query, struct admin_response *r)
{
	agent_admin_enroll(arg, query, false, r);
}

/* The admin API (docs/operations.md), in the order a 404 lists it. */
static const struct admin_route agent_routes[] = {
	{ "/metrics", "GET", h_metrics },    { "/ready", "GET", h_ready },    { "/live", "GET", h_live },
	{ "/services", "GET", h_services },  { "/conns", "GET", h_conns },    { "/config", "GET", h_config },
	{ "/pods", "GET", h_pods },          { "/reload", "POST", h_reload }, { "/enroll", "POST", h_enroll },
	{ "/unenroll", "POST", h_unenroll }, { "/stat", "GET", h_stat },      { "/tap", "GET", h_tap },
};

static void agent_admin(void *arg, const char *method, const char *path, const char *query, struct admin_response *r)
{
	admin_route(agent_routes, sizeof(agent_routes) / sizeof(agent_routes[0]), arg, method, path, query, r);
}

static void agent_stop(void *arg)
{
	struct agent *a = arg;

	ev_break(a->loop, EVBREAK_ALL);
}

static size_t agent_in_flight(struct agent *a)
{
	return reg_active(&a->reg) + inbound_active(a->inbound);
}

/* Resets whatever is still open (outbound and inbound) and leaves the loop. */
static void agent_abort_and_stop(struct agent *a)
{
	outbound_abort_all(a->ob);
	inbound_abort_all(a->inbound);
	agent_stop(a);
}

/*
 * Draining polls every 50 ms (the drain happens once per process lifetime)
 * rather than chaining "became idle" callbacks from two places and several
 * threads: no wake-up can be missed, and inbound relays count too.
 */
static void agent_on_drain_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agent *a = w->data;
	size_t n = agent_in_flight(a);

	(void)revents;
	if (n == 0) {
		log_info("drained");
		agent_stop(a);
		return;
	}
	if (ev_now(loop) >= a->drain_deadline) {
		log_warn("drain timeout (agent.drain_timeout_ms = %u): resetting %zu connection(s)",
			 a->cfg->drain_timeout_ms, n);
		agent_abort_and_stop(a);
	}
}

static void agent_begin_drain(struct agent *a)
{
	struct weft_agent_state st;

	if (a->draining) {
		log_warn("second signal: resetting %zu connection(s) now", agent_in_flight(a));
		agent_abort_and_stop(a);
		return;
	}
	a->draining = true;
	a->ready = false;
	/* New connects stop coming to us first, then the listeners go. */
	agent_fill_state(a, &st, false);
	kern_set_agent(a->kern, &st);
	pods_stop(a->pods);
	outbound_stop_accepting(a->ob);
	inbound_stop_accepting(a->inbound);
	/*
	 * Not "nothing in flight, stop now": the workers stop accepting on their
	 * own loops (a command), taking what their listeners' backlogs hold
	 * first; the first tick, 50 ms on, counts after they have.
	 */
	log_info("shutting down: draining %zu connection(s) (and what the listeners still held), at most %u ms",
		 agent_in_flight(a), a->cfg->drain_timeout_ms);
	a->drain_deadline = ev_now(a->loop) + a->cfg->drain_timeout_ms / 1000.0;
	ev_timer_init(&a->drain, agent_on_drain_tick, 0.05, 0.05);
	a->drain.data = a;
	ev_timer_start(a->loop, &a->drain);
}

static void agent_on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct agent *a = w->data;

	(void)loop;
	(void)revents;
	if (w->signum == SIGHUP) {
		if (!a->draining)
			agent_reload(a, NULL);
		return;
	}
	log_info("received %s", strsignal(w->signum));
	agent_begin_drain(a);
}

/*
 * Every proxied connection costs two descriptors (and a splicing one two
 * pipes more), far beyond the 1024 a shell or a container runtime often
 * sets as the soft limit: take the hard limit, which an operator controls
 * (LimitNOFILE=, the container runtime). Failing only costs headroom.
 */
static void agent_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_info("open file limit raised to %llu (the hard limit)", (unsigned long long)rl.rlim_max);
}

int agent_run(struct weft_config *cfg, const char *path, bool verbose)
{
	struct weft_agent_state st;
	struct agent a = { 0 };
	char err[1024] = "";
	int code = 1, r;

	a.cfg = cfg;
	a.path = path;
	a.verbose = verbose;
	a.scan_loud = true;
	signal(SIGPIPE, SIG_IGN);
	agent_raise_nofile();

	if (probe_kernel(cfg->bpf_pin_path, err, sizeof(err)) < 0) {
		log_error("cannot start: %s", err);
		goto out;
	}
	r = cg_mount(a.cgmount, sizeof(a.cgmount));
	if (r < 0) {
		log_error("cannot start: no cgroup2 mount found: %s", strerror(-r));
		goto out;
	}
	if (agent_check_cgroups(&a, cfg) < 0)
		goto out;
	r = cg_self(a.cgmount, a.self_cg, sizeof(a.self_cg), &a.self_cgid);
	if (r < 0) {
		log_error("cannot start: cannot find weftd's own cgroup in /proc/self/cgroup: %s", strerror(-r));
		goto out;
	}
	a.loop = ev_default_loop(EVFLAG_AUTO);
	if (!a.loop) {
		log_error("cannot start: libev could not initialise an event loop");
		goto out;
	}
	if (kern_open(cfg->bpf_pin_path, &a.kern, err, sizeof(err)) < 0) {
		log_error("cannot start: %s", err);
		goto out;
	}
	agent_fill_state(&a, &st, false);
	if (kern_set_agent(a.kern, &st) < 0) {
		log_error("cannot start: cannot write weft_agent: %s", strerror(errno));
		goto out;
	}
	ev_timer_init(&a.rescan, agent_on_rescan, 0.01, 0.);
	a.rescan.data = &a;
	r = cgw_new(a.loop, agent_on_cgroup_event, &a, &a.cgw);
	if (r < 0)
		log_warn("inotify unavailable (%s): new cgroups are found by the periodic scan only", strerror(-r));
	if (cfg->kubernetes.enabled && !(a.kident = kident_new())) {
		log_error("cannot start: out of memory");
		goto out;
	}
	if (agent_mtls_load(&a, cfg, &a.mtls, err, sizeof(err)) < 0) {
		log_error("cannot start: %s", err);
		goto out;
	}
	if (cfg->tracing.enabled) {
		struct zipkin_opts zo = {
			.collector = cfg->tracing.collector,
			.path = cfg->tracing.path,
			.service_name = cfg->tracing.service_name,
			.queue_size = cfg->tracing.queue_size,
			.batch_size = cfg->tracing.batch_size,
			.flush_ms = cfg->tracing.flush_ms,
			.mark = cfg->mark,
		};

		a.zipkin = zipkin_new(a.loop, &zo);
		if (!a.zipkin) {
			log_error("cannot start: tracing: %s", strerror(errno));
			goto out;
		}
	}
	if (reg_init(&a.reg, &h1_svc_hooks) < 0) {
		log_error("cannot start: cannot initialise a mutex");
		goto out;
	}
	a.reg_ok = true;
	if (tap_init(&a.tap) < 0) {
		log_error("cannot start: cannot initialise a mutex");
		goto out;
	}
	a.tap_ok = true;
	a.reg.tap = &a.tap;
	/* endpoints_from: files are read now, DNS names asked once the loop runs (never blocking the start) */
	if (disc_new(a.loop, cfg->mark, agent_on_sources, &a, &a.disc) < 0 ||
	    disc_configure(a.disc, cfg, err, sizeof(err)) < 0) {
		log_error("cannot start: %s", err[0] ? err : "out of memory");
		goto out;
	}
	/* the TLS bundle first: services are built with their authorization policies */
	reg_set_mtls(&a.reg, a.mtls);
	if (reg_set_config(&a.reg, cfg) < 0) {
		log_error("cannot start: out of memory");
		goto out;
	}
	if (mb_init(&a.mb, (size_t)cfg->buffer_memory_mb << 20, cfg->buffer_memory_workload_pct) < 0) {
		log_error("cannot start: cannot initialise a mutex");
		goto out;
	}
	a.mb_ok = true;
	if (outbound_start(a.loop, a.kern, cfg, agent_workers(cfg), &a.reg, &a.mb, a.zipkin, &a.ob, err, sizeof(err)) <
	    0) {
		log_error("cannot start: %s", err);
		goto out;
	}
	if (pods_start(a.ob, a.kern, cfg->outbound_port, &a.pods, err, sizeof(err)) < 0) {
		log_error("cannot start: %s", err);
		goto out;
	}
	if (a.mtls) {
		if (inbound_start(a.loop, cfg, &a.reg, a.mtls, &a.inbound, err, sizeof(err)) < 0) {
			log_error("cannot start: %s", err);
			goto out;
		}
	}
	if (admin_start(a.loop, &cfg->admin, agent_admin, &a, &a.admin, err, sizeof(err)) < 0) {
		log_error("cannot start: %s", err);
		goto out;
	}
	if (kern_sync_services(a.kern, cfg) < 0) {
		log_error("cannot start: cannot fill weft_services");
		goto out;
	}
	/* services with endpoints_from: again, with what their files gave (the generation above had none) */
	for (size_t i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].n_sources) {
			if (agent_apply_services(&a, cfg) < 0) {
				log_error("cannot start: out of memory");
				goto out;
			}
			break;
		}
	if (cfg->kubernetes.enabled && kdisc_start(a.loop, &cfg->kubernetes, addr_port(&cfg->inbound), cfg->mark,
						   a.kident, agent_on_discovery, &a, &a.kdisc, err, sizeof(err)) < 0) {
		log_error("cannot start: kubernetes: %s", err);
		goto out;
	}
	agent_scan_cgroups(&a);
	agent_fill_state(&a, &st, true);
	if (kern_set_agent(a.kern, &st) < 0) {
		log_error("cannot start: cannot write weft_agent: %s", strerror(errno));
		goto out;
	}

	ev_signal_init(&a.sig_term, agent_on_signal, SIGTERM);
	ev_signal_init(&a.sig_int, agent_on_signal, SIGINT);
	ev_signal_init(&a.sig_hup, agent_on_signal, SIGHUP);
	a.sig_term.data = a.sig_int.data = a.sig_hup.data = &a;
	ev_signal_start(a.loop, &a.sig_term);
	ev_signal_start(a.loop, &a.sig_int);
	ev_signal_start(a.loop, &a.sig_hup);
	a.statwin = statwin_new();
	a.tapfeed = tapfeed_new(a.loop, &a.tap, agent_cgroup_name, &a);
	if (!a.statwin || !a.tapfeed) {
		log_error("cannot start: out of memory");
		goto out;
	}
	ev_timer_init(&a.stat_tick, agent_on_stat_tick, 0., STATWIN_PERIOD_S);
	a.stat_tick.data = &a;
	ev_timer_start(a.loop, &a.stat_tick);
	ev_timer_init(&a.beat, agent_on_beat, agent_beat_period(cfg), agent_beat_period(cfg));
	a.beat.data = &a;
	ev_timer_start(a.loop, &a.beat);
	a.ready = true;
	a.config_hash = cfg->text_hash;
	a.config_loaded_at = ev_time();

	log_info("ready: pid %d, %zu services, %zu cgroups enrolled, outbound port %u, pins in %s, "
		 "fail_mode %s",
		 (int)getpid(), cfg->n_services, kern_enrolled_count(a.kern), cfg->outbound_port, cfg->bpf_pin_path,
		 cfg->fail_mode == CFG_FAIL_CLOSED ? "closed" : "open");
	ev_run(a.loop, 0);
	code = 0;
out:
	if (a.loop) {
		ev_timer_stop(a.loop, &a.rescan);
		ev_timer_stop(a.loop, &a.stat_tick);
	}
	statwin_free(a.statwin);
	cgw_free(a.cgw);
	tapfeed_free(a.tapfeed); /* its streams are admin connections: before the admin goes */
	if (a.admin)
		admin_free(a.admin);
	inbound_free(a.inbound);
	kdisc_free(a.kdisc);
	disc_free(a.disc);
	pods_free(a.pods); /* before the workers go: they own the pods' listeners */
	if (a.ob)
		outbound_free(a.ob);
	if (a.reg_ok)
		reg_destroy(&a.reg);
	if (a.tap_ok)
		tap_destroy(&a.tap); /* after the workers: they offer to it */
	if (a.mb_ok)
		mb_destroy(&a.mb);
	zipkin_free(a.zipkin);
	mtls_unref(a.mtls);
	kident_free(a.kident); /* after the workers: they read it */
	while (a.n_manual)
		free(a.manual[--a.n_manual]);
	if (a.kern)
		kern_close(a.kern, true);
	if (code == 0)
		log_info("stopped: programs detached, pins removed");
	if (a.loop)
		ev_loop_destroy(a.loop);
	cfg_free(a.cfg);
	tls_global_cleanup();
	return code;
}
