// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * snapshot: copies the live state under registry.lock (snapshot.h). Every
 * allocation is recorded in s->allocs and freed by snapshot_free; a failed
 * allocation stops the copy (-ENOMEM) with what was copied still freeable.
 */
#include "admin/snapshot.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1session.h"
#include "http/h2session.h"
#include "listen/outbound.h"
#include "tcp/relay.h"
#include "tcp/tcp.h"

static void *snap_alloc(struct snapshot *s, size_t n)
{
	void *p;

	if (s->n_allocs == s->cap_allocs) {
		size_t nc = s->cap_allocs ? s->cap_allocs * 2 : 16;
		void **na = realloc(s->allocs, nc * sizeof(*na));

		if (!na)
			return NULL;
		s->allocs = na;
		s->cap_allocs = nc;
	}
	p = calloc(1, n ? n : 1);
	if (p)
		s->allocs[s->n_allocs++] = p;
	return p;
}

static const char *snap_str(struct snapshot *s, const char *str)
{
	size_t n = strlen(str) + 1;
	char *p = snap_alloc(s, n);

	if (p)
		memcpy(p, str, n);
	return p;
}

static int copy_ep(struct snapshot *s, struct snap_ep *o, const struct svc_ep *ep)
{
	o->svc = snap_str(s, ep->svc->name);
	if (!o->svc)
		return -ENOMEM;
	memcpy(o->addr, ep->addr_str, sizeof(o->addr));
	o->bal = ep->bal;
	o->eject_reason = ep->eject_reason;
	o->opened = ep->opened;
	memcpy(o->connect_errors, ep->connect_errors, sizeof(o->connect_errors));
	o->bytes_in = ep->bytes_in + ep->live_in;
	o->bytes_out = ep->bytes_out + ep->live_out;
	memcpy(o->lat_buckets, ep->lat_buckets, sizeof(o->lat_buckets));
	o->lat_count = ep->lat_count;
	o->lat_sum = ep->lat_sum;
	if (ep->http) {
		o->requests = ep->http->requests;
		o->responses_5xx = ep->http->responses_5xx;
	}
	return 0;
}

static int copy_svc(struct snapshot *s, struct snap_svc *o, const struct svc *sv)
{
	size_t j;

	o->name = snap_str(s, sv->name);
	o->vips = snap_alloc(s, sv->n_vips * sizeof(*o->vips));
	o->eps = snap_alloc(s, sv->n_eps * sizeof(*o->eps));
	if (!o->name || !o->vips || !o->eps)
		return -ENOMEM;
	o->protocol = sv->protocol;
	o->source = sv->source;
	memcpy(o->vips, sv->vips, sv->n_vips * sizeof(*o->vips));
	o->n_vips = sv->n_vips;
	o->balancer = sv->balancer;
	o->ejected = bal_ejected(&sv->bal);
	o->panics = sv->bal.panics;
	o->active = sv->stat->active;
	o->pending = sv->stat->pending;
	o->no_endpoint = sv->stat->no_endpoint;
	o->over_limit = sv->stat->over_limit;
	o->over_service_limit = sv->stat->over_service_limit;
	o->over_pending = sv->stat->over_pending;
	o->over_workload = sv->stat->over_workload;
	for (j = 0; j < sv->n_eps; j++) {
		if (copy_ep(s, &o->eps[j], sv->eps[j]) < 0)
			return -ENOMEM;
		o->eps[j].node[0] = '\0';
		if (sv->remote[j])
			addr_format(&sv->nodes[j], o->eps[j].node, sizeof(o->eps[j].node));
		o->eps[j].source = sv->source == CFG_SRC_FILE ? CFG_EP_CONFIG : CFG_EP_KUBERNETES;
		if (sv->info) {
			const struct svc_epinfo *in = &sv->info[j];

			o->eps[j].has_info = true;
			o->eps[j].priority = in->priority;
			o->eps[j].source = in->source;
			o->eps[j].tier = in->tier;
			if (in->zone && !(o->eps[j].zone = snap_str(s, in->zone)))
				return -ENOMEM;
		}
	}
	o->n_eps = sv->n_eps;
	if (sv->info && sv->n_tiers) {
		struct loc_plan *p = &o->plan;

		if (sv->local_zone && !(o->local_zone = snap_str(s, sv->local_zone)))
			return -ENOMEM;
		memcpy(o->tiers, sv->tiers, sizeof(o->tiers));
		o->n_tiers = sv->n_tiers;
		o->overprov_pct = sv->overprov_pct;
		memset(p, 0, sizeof(*p));
		p->n_tiers = sv->n_tiers;
		for (j = 0; j < sv->n_eps; j++) {
			p->total[sv->info[j].tier]++;
			p->ready[sv->info[j].tier] += sv->eps[j]->bal.state == BAL_READY;
		}
		loc_loads(p, sv->overprov_pct);
	}
	if (sv->http && sv->stat->http) {
		const struct h1_stat *hs = sv->stat->http;

		o->http = true;
		o->inflight = hs->inflight;
		o->max_requests = sv->http->max_requests;
		o->retries = hs->retries;
		o->budget_exhausted = hs->budget_exhausted;
		o->budget_available = retry_budget_available(&((struct h1_stat *)hs)->budget, s->now);
		o->shed = hs->shed;
		o->routes = snap_alloc(s, sv->http->n_routes * sizeof(*o->routes));
		if (!o->routes)
			return -ENOMEM;
		for (j = 0; j < sv->http->n_routes; j++)
			if (!(o->routes[j] = snap_str(s, sv->http->routes[j].name)))
				return -ENOMEM;
		o->n_routes = sv->http->n_routes;
	}
	return 0;
}

static int copy_stat(struct snapshot *s, struct snap_stat *o, const struct svc_stat *st)
{
	const struct h1_routestat *r;
	size_t n = 0;

	o->name = snap_str(s, st->name);
	if (!o->name)
		return -ENOMEM;
	o->no_endpoint = st->no_endpoint;
	o->over_limit = st->over_limit;
	o->over_service_limit = st->over_service_limit;
	o->over_pending = st->over_pending;
	o->over_workload = st->over_workload;
	memcpy(o->detected, st->detected, sizeof(o->detected));
	if (!st->http || !st->http->routes)
		return 0;
	o->http = true;
	o->inflight = st->http->inflight;
	o->retries = st->http->retries;
	o->budget_exhausted = st->http->budget_exhausted;
	o->shed = st->http->shed;
	memcpy(o->rejected, st->http->rejected, sizeof(o->rejected));
	memcpy(o->idle_closed, st->http->idle_closed, sizeof(o->idle_closed));
	memcpy(o->grpc, st->http->grpc, sizeof(o->grpc));
	for (r = st->http->routes; r; r = r->next)
		n++;
	o->routes = snap_alloc(s, n * sizeof(*o->routes));
	if (!o->routes)
		return -ENOMEM;
	for (r = st->http->routes; r; r = r->next) {
		struct snap_route *d = &o->routes[o->n_routes++];

		memcpy(d->name, r->name, sizeof(d->name));
		memcpy(d->by_class, r->by_class, sizeof(d->by_class));
		memcpy(d->buckets, r->buckets, sizeof(d->buckets));
		d->count = r->count;
		d->sum = r->sum;
		d->timeouts = r->timeouts;
	}
	return 0;
}

/* Grows s->conns by one (amortised doubling). */
static struct snap_conn *conn_slot(struct snapshot *s, size_t *cap)
{
	if (s->n_conns == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct snap_conn *n = realloc(s->conns, nc * sizeof(*n));

		if (!n)
			return NULL;
		s->conns = n;
		*cap = nc;
	}
	memset(&s->conns[s->n_conns], 0, sizeof(s->conns[0]));
	return &s->conns[s->n_conns++];
}

struct h1_copy {
	struct snapshot *s;
	size_t *cap;
	int err;
};

static void copy_h1_conn(void *arg, const struct h1_conn_view *v)
{
	struct h1_copy *hc = arg;
	struct snap_conn *c;

	if (hc->err)
		return;
	c = conn_slot(hc->s, hc->cap);
	if (!c || !(c->svc = snap_str(hc->s, v->svc_name))) {
		hc->err = -ENOMEM;
		return;
	}
	c->orig = *v->orig;
	c->client = *v->client;
	memcpy(c->endpoint, v->endpoint, sizeof(c->endpoint));
	c->state = v->state;
	c->http = true;
	c->bytes_in = v->bytes_in;
	c->bytes_out = v->bytes_out;
	c->started = v->started;
}

static void copy_h2_conn(void *arg, const struct h2_conn_view *v)
{
	struct h1_copy *hc = arg;
	struct snap_conn *c;

	if (hc->err)
		return;
	c = conn_slot(hc->s, hc->cap);
	if (!c || !(c->svc = snap_str(hc->s, v->svc_name))) {
		hc->err = -ENOMEM;
		return;
	}
	c->orig = *v->orig;
	c->client = *v->client;
	memcpy(c->endpoint, v->endpoint, sizeof(c->endpoint));
	c->state = v->streams ? "http2" : "http2-idle";
	c->http = true;
	c->http2 = true;
	c->streams = v->streams;
	c->bytes_in = v->bytes_in;
	c->bytes_out = v->bytes_out;
	c->started = v->started;
}

static int copy_conns(struct snapshot *s, struct outbound *ob, unsigned what)
{
	struct outbound_worker_view wv;
	size_t cap = 0;
	struct tcp_conn *c;
	struct relay_stats rs;
	unsigned i;

	/* opaque connections of every worker first, then HTTP sessions (the order /conns always had) */
	for (i = 0; i < s->n_workers; i++) {
		if (!outbound_worker_view(ob, i, &wv))
			continue;
		list_for_each_entry(c, &wv.tcp->conns, link) {
			relay_get_stats(c->relay, &rs);
			if (c->ep) {
				c->ep->live_in += rs.bytes_in;
				c->ep->live_out += rs.bytes_out;
			}
			if (!(what & SNAP_CONNS))
				continue;
			{
				struct snap_conn *o = conn_slot(s, &cap);

				if (!o || !(o->svc = snap_str(s, c->svc->name)))
					return -ENOMEM;
				o->orig = c->orig;
				o->client = c->client;
				if (c->ep)
					memcpy(o->endpoint, c->ep->addr_str, sizeof(o->endpoint));
				o->state = c->ep ? "established" : "connecting";
				o->bytes_in = rs.bytes_in;
				o->bytes_out = rs.bytes_out;
				o->started = c->started;
			}
		}
	}
	if (!(what & SNAP_CONNS))
		return 0;
	for (i = 0; i < s->n_workers; i++) {
		struct h1_copy hc = { s, &cap, 0 };

		if (!outbound_worker_view(ob, i, &wv))
			continue;
		h1_worker_foreach(wv.http, copy_h1_conn, &hc);
		if (!hc.err)
			h2_worker_foreach(wv.h2, copy_h2_conn, &hc);
		if (hc.err)
			return hc.err;
	}
	return 0;
}

int snapshot_take(struct snapshot *s, struct registry *reg, struct outbound *ob, unsigned what, double now)
{
	struct outbound_worker_view wv;
	struct svc_stat *st;
	struct svc_ep *ep;
	size_t i;
	int r = -ENOMEM;

	memset(s, 0, sizeof(*s));
	s->now = now;
	s->wall = ev_time(); /* connections started on other loops' clocks */
	pthread_mutex_lock(&reg->lock);
	s->n_workers = ob ? outbound_nworkers(ob) : 0;
	s->worker_accepted = snap_alloc(s, s->n_workers * sizeof(*s->worker_accepted));
	if (!s->worker_accepted)
		goto out;
	for (i = 0; i < s->n_workers; i++)
		if (outbound_worker_view(ob, (unsigned)i, &wv))
			s->worker_accepted[i] = wv.accepted;
	s->accepted = reg->ctr.accepted;
	s->no_orig = reg->ctr.no_orig;
	/* live bytes of open connections: one pass over them, not one per endpoint */
	list_for_each_entry(ep, &reg->eps, link)
		ep->live_in = ep->live_out = 0;
	if (ob && copy_conns(s, ob, what) < 0)
		goto out;
	if (what & (SNAP_SERVICES | SNAP_METRICS)) {
		s->svcs = snap_alloc(s, reg->n_svcs * sizeof(*s->svcs));
		if (!s->svcs)
			goto out;
		for (i = 0; i < reg->n_svcs; i++)
			if (copy_svc(s, &s->svcs[i], reg->svcs[i]) < 0)
				goto out;
		s->n_svcs = reg->n_svcs;
	}
	if (what & SNAP_METRICS) {
		s->eps = snap_alloc(s, reg->n_ep * sizeof(*s->eps));
		s->stats = snap_alloc(s, reg->n_stat * sizeof(*s->stats));
		if (!s->eps || !s->stats)
			goto out;
		list_for_each_entry(ep, &reg->eps, link)
			if (copy_ep(s, &s->eps[s->n_eps++], ep) < 0)
				goto out;
		list_for_each_entry(st, &reg->stats, link)
			if (copy_stat(s, &s->stats[s->n_stats++], st) < 0)
				goto out;
	}
	r = 0;
out:
	pthread_mutex_unlock(&reg->lock);
	return r;
}

void snapshot_free(struct snapshot *s)
{
	size_t i;

	for (i = 0; i < s->n_allocs; i++)
		free(s->allocs[i]);
	free(s->allocs);
	free(s->conns);
	memset(s, 0, sizeof(*s));
}
