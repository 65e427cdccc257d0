// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * service: the shared service and endpoint registry (contract in service.h).
 *
 * Three hash tables, each chained through the objects themselves (no
 * allocation per entry): VIP -> service of the current generation,
 * (service stats, address) -> endpoint, name -> service stats. Endpoints and
 * stats also sit on insertion-ordered lists, which the admin renderings
 * walk, so metrics keep a stable order. Tables grow by doubling at a load
 * factor of 1, so a reload of S services with E endpoints is O(S + E).
 */
#include "state/service.h"

#include <errno.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/identity.h"
#include "codec/preamble.h"
#include "lib/log.h"
#include "tls/mtls.h"

const double svc_lat_bounds[SVC_LAT_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

const char *const svc_err_names[SVC_ERR__MAX] = {
	[SVC_ERR_REFUSED] = "refused",
	[SVC_ERR_TIMEOUT] = "timeout",
	[SVC_ERR_UNREACHABLE] = "unreachable",
	[SVC_ERR_OTHER] = "other",
};

const char *const svc_detect_names[SVC_DETECT__MAX] = { "http1", "http2", "tls", "opaque", "timeout" };

/* One VIP of the current generation (a service has one entry per address). */
struct svc_vipent {
	struct weft_sockaddr addr;
	struct svc *svc;
	struct svc_vipent *next;
};

enum svc_err svc_err_of(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return SVC_ERR_REFUSED;
	case ETIMEDOUT:
		return SVC_ERR_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EADDRNOTAVAIL:
		return SVC_ERR_UNREACHABLE;
	default:
		return SVC_ERR_OTHER;
	}
}

/* ---- hashing ---- */

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return mix(h);
}

/* The address bytes that addr_equal compares: family, address, port. */
static uint64_t hash_addr(const struct weft_sockaddr *a, uint64_t seed)
{
	struct weft_addr k;

	addr_to_key(a, &k);
	return hash_bytes(&k, sizeof(k), seed);
}

/*
 * Doubles an intrusive chained table when n reaches its size. next_of gives
 * the chain link of an entry; hash_of its hash. Failure keeps the old table
 * (longer chains, still correct).
 */
// clang-format off
#define TAB_GROW(tab, cap, n, type, link, hashfn)                                  \
	do {                                                                       \
		size_t ncap_ = (cap) ? (cap) * 2 : 64, i_;                             \
		type **nt_;                                                        \
		if ((n) < (cap))                                                   \
			break;                                                     \
		nt_ = calloc(ncap_, sizeof(*nt_));                                 \
		if (!nt_)                                                          \
			break;                                                     \
		for (i_ = 0; i_ < (cap); i_++) {                                   \
			type *e_ = (tab)[i_], *nx_;                                \
			for (; e_; e_ = nx_) {                                     \
				size_t b_ = (size_t)(hashfn(e_) & (ncap_ - 1));     \
				nx_ = e_->link;                                    \
				e_->link = nt_[b_];                                \
				nt_[b_] = e_;                                      \
			}                                                          \
		}                                                                  \
		free(tab);                                                         \
		(tab) = nt_;                                                       \
		(cap) = ncap_;                                                     \
	} while (0)
// clang-format on

static uint64_t stat_hash(const struct svc_stat *st)
{
	return hash_bytes(st->name, strlen(st->name), 0);
}

static uint64_t ep_hash_of(const struct svc_stat *st, const struct weft_sockaddr *a)
{
	return hash_addr(a, (uint64_t)(uintptr_t)st);
}

static uint64_t ep_hash(const struct svc_ep *ep)
{
	return ep_hash_of(ep->svc, &ep->addr);
}

/* ---- per-service stats (shared by name across generations) ---- */

static void stat_unref_locked(struct registry *r, struct svc_stat *st)
{
	struct svc_stat **pp;

	if (!st || --st->refs)
		return;
	if (r->stat_cap) {
		for (pp = &r->stat_tab[stat_hash(st) & (r->stat_cap - 1)]; *pp; pp = &(*pp)->hnext)
			if (*pp == st) {
				*pp = st->hnext;
				break;
			}
	}
	r->n_stat--;
	list_del(&st->link);
	if (st->http && r->hooks && r->hooks->stat_free)
		r->hooks->stat_free(st->http);
	free(st->name);
	free(st);
}

static struct svc_stat *stat_get_locked(struct registry *r, const char *name)
{
	struct svc_stat *st;
	size_t b;

	if (r->stat_cap) {
		b = hash_bytes(name, strlen(name), 0) & (r->stat_cap - 1);
		for (st = r->stat_tab[b]; st; st = st->hnext)
			if (strcmp(st->name, name) == 0) {
				st->refs++;
				return st;
			}
	}
	TAB_GROW(r->stat_tab, r->stat_cap, r->n_stat, struct svc_stat, hnext, stat_hash);
	if (!r->stat_cap)
		return NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->name = strdup(name);
	if (!st->name) {
		free(st);
		return NULL;
	}
	st->refs = 1;
	b = stat_hash(st) & (r->stat_cap - 1);
	st->hnext = r->stat_tab[b];
	r->stat_tab[b] = st;
	r->n_stat++;
	list_add(&st->link, &r->stats);
	return st;
}

/* ---- endpoints (shared by (service, address) across generations) ---- */

void svc_ep_unref_locked(struct registry *r, struct svc_ep *ep)
{
	struct svc_ep **pp;

	if (!ep || --ep->refs)
		return;
	if (r->ep_cap) {
		for (pp = &r->ep_tab[ep_hash(ep) & (r->ep_cap - 1)]; *pp; pp = &(*pp)->hnext)
			if (*pp == ep) {
				*pp = ep->hnext;
				break;
			}
	}
	r->n_ep--;
	list_del(&ep->link);
	if (ep->http && r->hooks && r->hooks->ep_free)
		r->hooks->ep_free(ep->http);
	stat_unref_locked(r, ep->svc);
	free(ep);
}

void svc_ep_unref(struct registry *r, struct svc_ep *ep)
{
	pthread_mutex_lock(&r->lock);
	svc_ep_unref_locked(r, ep);
	pthread_mutex_unlock(&r->lock);
}

/* Finds or creates the shared state of (service, address). O(1). */
static struct svc_ep *ep_get_locked(struct registry *r, struct svc_stat *st, const struct weft_sockaddr *addr)
{
	struct svc_ep *ep;
	size_t b;

	if (r->ep_cap) {
		b = ep_hash_of(st, addr) & (r->ep_cap - 1);
		for (ep = r->ep_tab[b]; ep; ep = ep->hnext)
			if (ep->svc == st && addr_equal(&ep->addr, addr)) {
				ep->refs++;
				return ep;
			}
	}
	TAB_GROW(r->ep_tab, r->ep_cap, r->n_ep, struct svc_ep, hnext, ep_hash);
	if (!r->ep_cap)
		return NULL;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	ep->refs = 1;
	ep->svc = st;
	st->refs++;
	ep->addr = *addr;
	addr_format(addr, ep->addr_str, sizeof(ep->addr_str));
	b = ep_hash(ep) & (r->ep_cap - 1);
	ep->hnext = r->ep_tab[b];
	r->ep_tab[b] = ep;
	r->n_ep++;
	list_add(&ep->link, &r->eps);
	return ep;
}

void svc_ep_observe_connect(struct svc_ep *ep, double secs)
{
	size_t i;

	/* buckets are kept cumulative, as Prometheus renders them */
	for (i = 0; i < SVC_LAT_BUCKETS; i++)
		if (secs <= svc_lat_bounds[i])
			ep->lat_buckets[i]++;
	ep->lat_count++;
	ep->lat_sum += secs;
}

/* ---- generations ---- */

static enum bal_mode bal_mode_of(enum cfg_balancer b)
{
	switch (b) {
	case CFG_BAL_ROUND_ROBIN:
		return BAL_ROUND_ROBIN;
	case CFG_BAL_LEAST_CONN:
		return BAL_LEAST_CONN;
	default:
		return BAL_EWMA;
	}
}

const char *svc_ep_state_name(const struct svc_ep *ep)
{
	return ep->bal.state == BAL_READY ? "ready" : ep->bal.state == BAL_PROBING ? "probing" : "ejected";
}

void svc_unref_locked(struct registry *r, struct svc *s)
{
	size_t i;

	if (!s || --s->refs)
		return;
	for (i = 0; i < s->n_eps; i++)
		svc_ep_unref_locked(r, s->eps[i]);
	bal_free(&s->bal);
	for (i = 0; i < s->n_zone_names; i++)
		free(s->zone_names[i]);
	free(s->zone_names);
	free(s->info);
	free(s->local_zone);
	if (s->http && r->hooks && r->hooks->svc_free)
		r->hooks->svc_free(s->http);
	id_policy_free(s->policy);
	stat_unref_locked(r, s->stat);
	free(s->name);
	free(s->vips);
	free(s->eps);
	free(s->nodes);
	free(s->remote);
	free(s);
}

void svc_unref(struct registry *r, struct svc *s)
{
	pthread_mutex_lock(&r->lock);
	svc_unref_locked(r, s);
	pthread_mutex_unlock(&r->lock);
}

/* The generation's copy of zone z (few distinct zones per service: linear search). NULL: none, or no memory. */
static const char *svc_zone(struct svc *s, const char *z, bool *oom)
{
	char **nz;
	size_t i;

	if (!z)
		return NULL;
	for (i = 0; i < s->n_zone_names; i++)
		if (!strcmp(s->zone_names[i], z))
			return s->zone_names[i];
	nz = realloc(s->zone_names, (s->n_zone_names + 1) * sizeof(*nz));
	if (nz)
		s->zone_names = nz;
	if (!nz || !(nz[s->n_zone_names] = strdup(z))) {
		*oom = true;
		return NULL;
	}
	return s->zone_names[s->n_zone_names++];
}

/*
 * Locality of a generation: each endpoint's zone, priority and source
 * (kept only when one of them is not the default for some endpoint, so
 * services without any, e.g. 100k discovered Kubernetes endpoints, cost
 * nothing, agent.zone or not: they are all in one tier), its tier
 * (loc_tiers: priority, and whether it is in agent.zone), and the tiers
 * handed to the balancer when endpoints fall into more than one. 0 or
 * -ENOMEM. O(endpoints x levels).
 */
static int svc_locality(struct svc *s, const struct weft_config *cfg, const struct cfg_service *cs)
{
	uint8_t used[LOC_MAX_TIERS] = { 0 }, *tier = NULL;
	uint32_t *prio = NULL;
	bool *local = NULL, oom = false, any = false;
	size_t i, k, n = cs->n_endpoints, distinct = 0;
	int ret = -ENOMEM;

	for (i = 0; i < n && !any; i++)
		any = cs->endpoints[i].zone || cs->endpoints[i].priority ||
		      (cs->endpoints[i].source != CFG_EP_CONFIG && cs->endpoints[i].source != CFG_EP_KUBERNETES);
	if (!any || !n)
		return 0;
	if (cfg->zone && !(s->local_zone = strdup(cfg->zone)))
		return -ENOMEM;
	s->info = calloc(n, sizeof(*s->info));
	prio = malloc(n * sizeof(*prio));
	local = malloc(n * sizeof(*local));
	tier = malloc(n);
	if (!s->info || !prio || !local || !tier)
		goto out;
	for (i = 0; i < n; i++) {
		const struct cfg_endpoint *e = &cs->endpoints[i];

		s->info[i].zone = svc_zone(s, e->zone, &oom);
		s->info[i].priority = e->priority;
		s->info[i].source = e->source;
		prio[i] = e->priority;
		local[i] = !cfg->zone || (e->zone && !strcmp(e->zone, cfg->zone));
	}
	if (oom)
		goto out;
	s->n_tiers = loc_tiers(prio, local, n, tier, s->tiers);
	for (i = 0; i < n; i++) {
		s->info[i].tier = tier[i];
		distinct += !used[tier[i]];
		used[tier[i]] = 1;
	}
	k = distinct > 1 ? s->n_tiers : 0;
	ret = bal_set_tiers(&s->bal, tier, k, cs->overprov_pct);
out:
	free(prio);
	free(local);
	free(tier);
	return ret;
}

static struct svc *svc_new_locked(struct registry *r, const struct weft_config *cfg, uint32_t id)
{
	const struct cfg_service *cs = &cfg->services[id];
	struct bal_breaker brk;
	struct svc *s;
	size_t i;

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->refs = 1;
	s->id = id;
	s->name = strdup(cs->name);
	s->vips = calloc(cs->n_addrs ? cs->n_addrs : 1, sizeof(*s->vips));
	s->eps = calloc(cs->n_endpoints ? cs->n_endpoints : 1, sizeof(*s->eps));
	s->nodes = calloc(cs->n_endpoints ? cs->n_endpoints : 1, sizeof(*s->nodes));
	s->remote = calloc(cs->n_endpoints ? cs->n_endpoints : 1, sizeof(*s->remote));
	brk.consecutive_failures = cs->cb_consecutive_failures;
	brk.base_ejection_s = cs->cb_base_ejection_ms / 1000.0;
	brk.max_ejection_s = cs->cb_max_ejection_ms / 1000.0;
	brk.max_ejection_percent = cs->cb_max_ejection_percent;
	if (!s->name || !s->vips || !s->eps || !s->nodes || !s->remote ||
	    bal_init(&s->bal, cs->n_endpoints, bal_mode_of(cs->balancer), &brk) < 0)
		goto err;
	s->stat = stat_get_locked(r, cs->name);
	if (!s->stat)
		goto err;
	if (cs->n_addrs) /* none: a discovered service's policy waiting for the API (config "ns/name:port") */
		memcpy(s->vips, cs->addrs, cs->n_addrs * sizeof(*s->vips));
	s->n_vips = cs->n_addrs;
	for (i = 0; i < cs->n_endpoints; i++) {
		s->eps[i] = ep_get_locked(r, s->stat, &cs->endpoints[i].addr);
		if (!s->eps[i])
			goto err;
		s->n_eps++;
		/* weight is config, the rest of the balancer state carries over */
		s->eps[i]->bal.weight = cs->endpoints[i].weight ? cs->endpoints[i].weight : 1;
		/* where to connect is per generation: older connections keep their view */
		s->remote[i] = cs->endpoints[i].has_node;
		s->nodes[i] = cs->endpoints[i].node;
		s->bal.eps[i] = &s->eps[i]->bal;
	}
	s->overprov_pct = cs->overprov_pct;
	if (svc_locality(s, cfg, cs) < 0)
		goto err;
	s->protocol = cs->protocol;
	s->source = cs->source;
	s->balancer = cs->balancer;
	if ((cs->protocol == CFG_PROTO_HTTP || cs->protocol == CFG_PROTO_HTTP2 || cs->protocol == CFG_PROTO_AUTO) &&
	    r->hooks && r->hooks->svc_new) {
		s->http = r->hooks->svc_new(cfg, cs, s);
		if (!s->http)
			goto err;
	}
	if (r->mtls) {
		char err[256];

		s->policy = id_policy_new(mtls_trust_domain(r->mtls));
		if (!s->policy)
			goto err;
		for (i = 0; i < cs->n_allow; i++)
			if (id_policy_allow(s->policy, cs->allow[i], err, sizeof(err)) < 0) {
				log_error("service %s: authorization.allow[%zu]: %s", cs->name, i, err);
				goto err;
			}
	}
	s->max_conns = cs->max_connections;
	s->max_pending = cs->max_pending;
	s->opts.buffer_size = cfg->buffer_size;
	s->opts.connect_timeout_ms = cs->connect_timeout_ms;
	s->opts.idle_timeout_ms = cs->idle_timeout_ms;
	s->opts.mark = cfg->mark;
	s->opts.max_attempts = cs->retry_attempts ? cs->retry_attempts : 1;
	s->opts.splice = cfg->splice;
	return s;
err:
	svc_unref_locked(r, s);
	return NULL;
}

/* The addresses an index holds for a service: its VIPs, or its endpoints on this node. */
enum addr_kind { ADDR_VIPS, ADDR_LOCAL_EPS };

static size_t addr_count(const struct svc *s, enum addr_kind kind)
{
	size_t j, n = 0;

	if (kind == ADDR_VIPS)
		return s->n_vips;
	for (j = 0; j < s->n_eps; j++)
		n += !s->remote[j];
	return n;
}

/*
 * An address index of a generation: one entry per (service, address), in one
 * allocation whose first cap pointers are the buckets. The first service
 * listing an address wins, as a linear search in config order would.
 */
static int addr_index_build(struct svc **svcs, size_t n, enum addr_kind kind, struct addr_index *out)
{
	size_t total = 0, cap = 16, i, j, k = 0;
	struct svc_vipent **heads, *ents;

	for (i = 0; i < n; i++)
		total += addr_count(svcs[i], kind);
	while (cap < total * 2)
		cap *= 2;
	heads = calloc(1, cap * sizeof(*heads) + (total ? total : 1) * sizeof(*ents));
	if (!heads)
		return -ENOMEM;
	ents = (struct svc_vipent *)(heads + cap);
	for (i = 0; i < n; i++) {
		size_t m = kind == ADDR_VIPS ? svcs[i]->n_vips : svcs[i]->n_eps;

		for (j = 0; j < m; j++) {
			const struct weft_sockaddr *a;
			struct svc_vipent *e, **pp;

			if (kind == ADDR_LOCAL_EPS && svcs[i]->remote[j])
				continue;
			a = kind == ADDR_VIPS ? &svcs[i]->vips[j] : &svcs[i]->eps[j]->addr;
			e = &ents[k++];
			e->addr = *a;
			e->svc = svcs[i];
			/* append: the first listing stays first in its chain */
			for (pp = &heads[hash_addr(a, 0) & (cap - 1)]; *pp; pp = &(*pp)->next)
				;
			*pp = e;
		}
	}
	out->heads = heads;
	out->cap = cap;
	return 0;
}

static void addr_index_free(struct addr_index *x)
{
	free(x->heads);
	x->heads = NULL;
	x->cap = 0;
}

static struct svc *addr_index_find(const struct addr_index *x, const struct weft_sockaddr *a)
{
	const struct svc_vipent *e;

	if (!x->heads)
		return NULL;
	for (e = x->heads[hash_addr(a, 0) & (x->cap - 1)]; e; e = e->next)
		if (addr_equal(&e->addr, a))
			return e->svc;
	return NULL;
}

static bool svc_has_vip(const struct svc *s, const struct weft_sockaddr *a)
{
	size_t i;

	for (i = 0; i < s->n_vips; i++)
		if (addr_equal(&s->vips[i], a))
			return true;
	return false;
}

struct svc *reg_find_svc_locked(struct registry *r, const struct weft_orig *o)
{
	struct weft_sockaddr dst;

	addr_from_key(&o->dst, &dst);
	if (o->service_id < r->n_svcs && svc_has_vip(r->svcs[o->service_id], &dst))
		return r->svcs[o->service_id];
	return addr_index_find(&r->vips, &dst);
}

struct svc *reg_find_name_locked(struct registry *r, const char *name, uint32_t hint)
{
	size_t i;

	if (hint < r->n_svcs && strcmp(r->svcs[hint]->name, name) == 0)
		return r->svcs[hint];
	for (i = 0; i < r->n_svcs; i++)
		if (strcmp(r->svcs[i]->name, name) == 0)
			return r->svcs[i];
	return NULL;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int reg_set_config(struct registry *r, const struct weft_config *cfg)
{
	struct addr_index vips = { 0 }, local = { 0 }, old_vips, old_local;
	struct svc **n;
	size_t i;
	double t0;
	int ret = 0;

	n = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	/* the shared endpoint and stats tables are the workers' too: build under the lock, in O(n) */
	pthread_mutex_lock(&r->lock);
	t0 = mono_s();
	for (i = 0; i < cfg->n_services; i++) {
		n[i] = svc_new_locked(r, cfg, (uint32_t)i);
		if (!n[i])
			goto nomem;
	}
	/* local endpoints are for inbound admission, which is mTLS only: without a
	 * bundle that index is never read (100k discovered endpoints: 7 MiB) */
	if (addr_index_build(n, cfg->n_services, ADDR_VIPS, &vips) < 0 ||
	    (r->mtls && addr_index_build(n, cfg->n_services, ADDR_LOCAL_EPS, &local) < 0)) {
		addr_index_free(&vips);
		goto nomem;
	}
	for (i = 0; i < r->n_svcs; i++)
		svc_unref_locked(r, r->svcs[i]);
	free(r->svcs);
	old_vips = r->vips;
	old_local = r->local_eps;
	r->svcs = n;
	r->n_svcs = cfg->n_services;
	r->vips = vips;
	r->local_eps = local;
	r->max_conns = cfg->max_connections;
	r->max_per_workload = cfg_workload_cap(cfg);
	r->redirect = cfg->redirect_loopback;
	r->splice = cfg->splice;
	r->last_build_lock_s = mono_s() - t0;
	pthread_mutex_unlock(&r->lock);
	addr_index_free(&old_vips);
	addr_index_free(&old_local);
	return 0;
nomem:
	while (i--)
		svc_unref_locked(r, n[i]);
	free(n);
	ret = -ENOMEM;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/* ---- workloads (cgroups) and their share of the node's connections ---- */

/* One cgroup holding connections; freed when it holds none. */
struct svc_workload {
	uint64_t cgroup_id;
	uint32_t active;
	struct svc_workload *next;
};

static uint64_t wl_hash(const struct svc_workload *w)
{
	return mix(w->cgroup_id);
}

/* The chain slot where cgroup_id is or would go; NULL without a table. */
static struct svc_workload **wl_slot(const struct registry *r, uint64_t cgroup_id)
{
	struct svc_workload **pp;

	if (!r->wl_cap)
		return NULL;
	for (pp = &r->wl_tab[mix(cgroup_id) & (r->wl_cap - 1)]; *pp; pp = &(*pp)->next)
		if ((*pp)->cgroup_id == cgroup_id)
			return pp;
	return pp;
}

uint32_t reg_workload_active_locked(const struct registry *r, uint64_t cgroup_id)
{
	struct svc_workload **pp = wl_slot(r, cgroup_id);

	return pp && *pp ? (*pp)->active : 0;
}

int reg_conn_begin_locked(struct registry *r, struct svc *s, uint64_t cgroup_id)
{
	struct svc_workload **pp, *w;

	pp = wl_slot(r, cgroup_id);
	if (!pp || !*pp) {
		TAB_GROW(r->wl_tab, r->wl_cap, r->n_wl, struct svc_workload, next, wl_hash);
		pp = wl_slot(r, cgroup_id);
		if (!pp || !(w = calloc(1, sizeof(*w))))
			return -ENOMEM;
		w->cgroup_id = cgroup_id;
		*pp = w;
		r->n_wl++;
	}
	(*pp)->active++;
	r->active++;
	s->stat->active++;
	return 0;
}

void reg_conn_end_locked(struct registry *r, struct svc *s, uint64_t cgroup_id)
{
	struct svc_workload **pp = wl_slot(r, cgroup_id), *w;

	r->active--;
	s->stat->active--;
	if (!pp || !*pp)
		return;
	w = *pp;
	if (--w->active)
		return;
	*pp = w->next;
	r->n_wl--;
	free(w);
}

enum svc_admit reg_admit_locked(struct registry *r, struct svc *s, uint64_t cgroup_id)
{
	if (r->active >= r->max_conns) {
		r->ctr.over_limit++;
		s->stat->over_limit++;
		return SVC_ADMIT_AGENT_LIMIT;
	}
	if (reg_workload_active_locked(r, cgroup_id) >= r->max_per_workload) {
		r->ctr.over_workload++;
		s->stat->over_workload++;
		return SVC_ADMIT_WORKLOAD_LIMIT;
	}
	if (s->stat->active >= s->max_conns) {
		s->stat->over_service_limit++;
		return SVC_ADMIT_SERVICE_LIMIT;
	}
	if (s->stat->pending >= s->max_pending) {
		s->stat->over_pending++;
		return SVC_ADMIT_PENDING_LIMIT;
	}
	return SVC_ADMIT_OK;
}

void svc_breaker(struct svc *s, int i, bool ok, double now, const char *why)
{
	struct svc_ep *ep = s->eps[i];

	switch (bal_report(&s->bal, (size_t)i, ok, now)) {
	case BAL_EV_EJECTED:
		ep->eject_reason = why;
		log_warn("service %s: endpoint %s ejected for %.1f s after %u %s", s->name, ep->addr_str,
			 ep->bal.ejected_until - now, ep->bal.consecutive, why);
		break;
	case BAL_EV_READMITTED:
		log_info("service %s: endpoint %s readmitted (probe succeeded)", s->name, ep->addr_str);
		break;
	case BAL_EV_SPARED:
		log_warn_rl("service %s: endpoint %s keeps failing but is not ejected: "
			    "circuit_breaker.max_ejection_percent (%u%%) reached",
			    s->name, ep->addr_str, s->bal.brk.max_ejection_percent);
		break;
	default:
		break;
	}
}

int reg_inbound_admit(struct registry *r, const struct weft_sockaddr *target, const char *peer_id, char *svc_name,
		      size_t len, struct svc_connopts *opts)
{
	struct svc *s;
	enum id_verdict v;
	int st = PREAMBLE_ST_UNKNOWN_TARGET;

	pthread_mutex_lock(&r->lock);
	/* only this node's own endpoints: the mesh is not an open proxy (O(1), an index of them) */
	s = addr_index_find(&r->local_eps, target);
	if (!s)
		goto out;
	snprintf(svc_name, len, "%s", s->name);
	v = s->policy ? id_policy_check(s->policy, peer_id) : ID_DENY_NOT_ALLOWED;
	if (v != ID_ALLOW) {
		s->stat->inbound_denied++;
		st = PREAMBLE_ST_DENIED;
		goto out;
	}
	s->stat->inbound_ok++;
	*opts = s->opts;
	st = PREAMBLE_ST_OK;
out:
	pthread_mutex_unlock(&r->lock);
	return st;
}

size_t reg_active(struct registry *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->active;
	pthread_mutex_unlock(&r->lock);
	return n;
}

void reg_set_mtls(struct registry *r, struct mtls *m)
{
	struct mtls *old;

	pthread_mutex_lock(&r->lock);
	old = r->mtls;
	r->mtls = mtls_ref(m);
	pthread_mutex_unlock(&r->lock);
	mtls_unref(old);
}

struct mtls *reg_mtls_ref(struct registry *r)
{
	struct mtls *m;

	pthread_mutex_lock(&r->lock);
	m = mtls_ref(r->mtls);
	pthread_mutex_unlock(&r->lock);
	return m;
}

int reg_init(struct registry *r, const struct svc_hooks *hooks)
{
	memset(r, 0, sizeof(*r));
	r->hooks = hooks;
	list_init(&r->eps);
	list_init(&r->stats);
	return -pthread_mutex_init(&r->lock, NULL);
}

void reg_destroy(struct registry *r)
{
	size_t i;

	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->n_svcs; i++)
		svc_unref_locked(r, r->svcs[i]);
	free(r->svcs);
	r->svcs = NULL;
	r->n_svcs = 0;
	addr_index_free(&r->vips);
	addr_index_free(&r->local_eps);
	pthread_mutex_unlock(&r->lock);
	mtls_unref(r->mtls);
	free(r->ep_tab);
	free(r->stat_tab);
	for (i = 0; i < r->wl_cap; i++)
		while (r->wl_tab[i]) {
			struct svc_workload *w = r->wl_tab[i];

			r->wl_tab[i] = w->next;
			free(w);
		}
	free(r->wl_tab);
	pthread_mutex_destroy(&r->lock);
}
