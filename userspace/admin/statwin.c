// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* statwin: windowed golden signals per service (statwin.h). */
#include "admin/statwin.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/snapshot.h"
#include "http/h1svc.h"
#include "lib/buf.h"
#include "state/service.h"

#define SW_BUCKETS 1024

/* Monotonic totals of a service at one sample. */
struct sw_tot {
	double t;
	uint64_t req, req5, retries;
	uint64_t rb[H1_REQ_BUCKETS]; /* request durations, cumulative (le) */
	uint64_t conns, cerr, ccnt;
	uint64_t cb[SVC_LAT_BUCKETS]; /* connect times, cumulative (le) */
};

/* The same for one endpoint, without histograms (wide rows show its EWMA). */
struct sw_etot {
	double t;
	uint64_t req, req5, conns, cerr;
};

/* An endpoint's raw counters at the last sample (they may go back: reset). */
struct sw_eraw {
	uint64_t req, req5, conns, cerr, ccnt;
	uint64_t cb[SVC_LAT_BUCKETS];
};

struct sw_ep {
	char addr[ADDR_STRLEN];
	bool seen;
	struct sw_eraw last;
	struct sw_etot acc;
	struct sw_etot ring[STATWIN_SLOTS];
};

/* A service's HTTP counters (all routes) at the last sample. */
struct sw_hraw {
	uint64_t req, req5, retries;
	uint64_t rb[H1_REQ_BUCKETS];
};

struct sw_svc {
	struct sw_svc *next;
	char *name;
	uint64_t gen;
	uint64_t fp;          /* activity fingerprint at the last sample */
	bool fresh;           /* never active: its counters (and its endpoints') started at 0 */
	struct sw_hraw hlast; /* its HTTP counters then */
	struct sw_eraw esum;  /* its endpoints' counters then, summed (for the first sample of a burst) */
	/* active (ring != NULL) only: */
	struct sw_tot *ring;
	size_t head, n; /* newest at ring[head]; n filled */
	struct sw_tot acc;
	struct sw_ep *eps;
	size_t n_eps, cap_eps;
};

struct statwin {
	struct sw_svc *b[SW_BUCKETS];
	uint64_t gen;
	size_t active;
	double last_t; /* the previous sample's time; 0: none yet */
};

static size_t sw_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return (size_t)(h % SW_BUCKETS);
}

static struct sw_svc *sw_find(const struct statwin *w, const char *name)
{
	struct sw_svc *e;

	for (e = w->b[sw_hash(name)]; e; e = e->next)
		if (!strcmp(e->name, name))
			return e;
	return NULL;
}

static void sw_deactivate(struct statwin *w, struct sw_svc *e)
{
	if (e->ring)
		w->active--;
	free(e->ring);
	free(e->eps);
	e->ring = NULL;
	e->eps = NULL;
	e->n_eps = e->cap_eps = 0;
	e->head = e->n = 0;
}

struct statwin *statwin_new(void)
{
	return calloc(1, sizeof(struct statwin));
}

void statwin_free(struct statwin *w)
{
	size_t i;

	if (!w)
		return;
	for (i = 0; i < SW_BUCKETS; i++)
		while (w->b[i]) {
			struct sw_svc *e = w->b[i];

			w->b[i] = e->next;
			sw_deactivate(w, e);
			free(e->name);
			free(e);
		}
	free(w);
}

/* ---- sampling ---------------------------------------------------------------- */

/* snapshot.stats by name: a per-sample open-addressing index (stats outlive generations). */
struct stat_index {
	const struct snap_stat **v;
	size_t cap;
};

static int stat_index_build(struct stat_index *ix, const struct snapshot *s)
{
	size_t i;

	ix->cap = 16;
	while (ix->cap < s->n_stats * 2)
		ix->cap *= 2;
	ix->v = calloc(ix->cap, sizeof(*ix->v));
	if (!ix->v)
		return -ENOMEM;
	for (i = 0; i < s->n_stats; i++) {
		size_t h = sw_hash(s->stats[i].name) & (ix->cap - 1);

		while (ix->v[h])
			h = (h + 1) & (ix->cap - 1);
		ix->v[h] = &s->stats[i];
	}
	return 0;
}

static const struct snap_stat *stat_index_get(const struct stat_index *ix, const char *name)
{
	size_t h = sw_hash(name) & (ix->cap - 1);

	for (; ix->v[h]; h = (h + 1) & (ix->cap - 1))
		if (!strcmp(ix->v[h]->name, name))
			return ix->v[h];
	return NULL;
}

static void hraw_of(const struct snap_stat *st, struct sw_hraw *h)
{
	size_t r, i;

	memset(h, 0, sizeof(*h));
	if (!st)
		return;
	h->retries = st->retries;
	for (r = 0; r < st->n_routes; r++) {
		h->req += st->routes[r].count;
		h->req5 += st->routes[r].by_class[5];
		for (i = 0; i < H1_REQ_BUCKETS; i++)
			h->rb[i] += st->routes[r].buckets[i];
	}
}

static void eraw_of(const struct snap_ep *ep, struct sw_eraw *r)
{
	size_t i;

	memset(r, 0, sizeof(*r));
	r->req = ep->requests;
	r->req5 = ep->responses_5xx;
	r->conns = ep->opened;
	for (i = 0; i < SVC_ERR__MAX; i++)
		r->cerr += ep->connect_errors[i];
	r->ccnt = ep->lat_count;
	memcpy(r->cb, ep->lat_buckets, sizeof(r->cb));
}

/* Increment since the last sample; a counter that went back was reset (a new endpoint or route): none. */
static inline uint64_t inc(uint64_t now, uint64_t last)
{
	return now >= last ? now - last : 0;
}

static void esum_of(const struct snap_svc *sv, struct sw_eraw *sum)
{
	struct sw_eraw r;
	size_t j, i;

	memset(sum, 0, sizeof(*sum));
	for (j = 0; j < sv->n_eps; j++) {
		eraw_of(&sv->eps[j], &r);
		sum->req += r.req;
		sum->req5 += r.req5;
		sum->conns += r.conns;
		sum->cerr += r.cerr;
		sum->ccnt += r.ccnt;
		for (i = 0; i < SVC_LAT_BUCKETS; i++)
			sum->cb[i] += r.cb[i];
	}
}

static uint64_t fingerprint(const struct sw_hraw *h, const struct sw_eraw *es)
{
	return h->req + h->retries + es->req + es->conns + es->cerr;
}

static struct sw_ep *ep_find(struct sw_svc *e, const char *addr, size_t hint)
{
	size_t i;

	if (hint < e->n_eps && !strcmp(e->eps[hint].addr, addr))
		return &e->eps[hint];
	for (i = 0; i < e->n_eps; i++)
		if (!strcmp(e->eps[i].addr, addr))
			return &e->eps[i];
	return NULL;
}

static void ep_push(struct sw_ep *p, size_t head, double t)
{
	p->acc.t = t;
	p->ring[head] = p->acc;
}

/* An active service's sample: increments of its HTTP totals and of each endpoint. */
static int sample_active(struct sw_svc *e, const struct snap_svc *sv, const struct sw_hraw *h, double t)
{
	size_t head = (e->head + 1) % STATWIN_SLOTS, j, i;

	e->acc.req += inc(h->req, e->hlast.req);
	e->acc.req5 += inc(h->req5, e->hlast.req5);
	e->acc.retries += inc(h->retries, e->hlast.retries);
	for (i = 0; i < H1_REQ_BUCKETS; i++)
		e->acc.rb[i] += inc(h->rb[i], e->hlast.rb[i]);
	e->hlast = *h;
	for (j = 0; j < e->n_eps; j++)
		e->eps[j].seen = false;
	for (j = 0; j < sv->n_eps; j++) {
		struct sw_ep *p = ep_find(e, sv->eps[j].addr, j);
		struct sw_eraw r;

		eraw_of(&sv->eps[j], &r);
		if (!p) {
			/* new here: from now on (its first counts are not this window's to claim) */
			if (e->n_eps == e->cap_eps) {
				size_t cap = e->cap_eps ? e->cap_eps * 2 : 4;
				struct sw_ep *v = realloc(e->eps, cap * sizeof(*v));

				if (!v)
					return -ENOMEM;
				e->eps = v;
				e->cap_eps = cap;
			}
			p = &e->eps[e->n_eps++];
			memset(p, 0, sizeof(*p));
			snprintf(p->addr, sizeof(p->addr), "%s", sv->eps[j].addr);
			p->last = r;
			for (i = 0; i < STATWIN_SLOTS; i++)
				p->ring[i].t = -1;
		}
		p->seen = true;
		p->acc.req += inc(r.req, p->last.req);
		p->acc.req5 += inc(r.req5, p->last.req5);
		p->acc.conns += inc(r.conns, p->last.conns);
		p->acc.cerr += inc(r.cerr, p->last.cerr);
		e->acc.conns += inc(r.conns, p->last.conns);
		e->acc.cerr += inc(r.cerr, p->last.cerr);
		e->acc.ccnt += inc(r.ccnt, p->last.ccnt);
		for (i = 0; i < SVC_LAT_BUCKETS; i++)
			e->acc.cb[i] += inc(r.cb[i], p->last.cb[i]);
		p->last = r;
	}
	/* endpoints gone from the service go from here */
	for (j = 0; j < e->n_eps;)
		if (!e->eps[j].seen)
			e->eps[j] = e->eps[--e->n_eps];
		else
			j++;
	e->acc.t = t;
	e->head = head;
	e->ring[head] = e->acc;
	if (e->n < STATWIN_SLOTS)
		e->n++;
	for (j = 0; j < e->n_eps; j++)
		ep_push(&e->eps[j], head, t);
	return 0;
}

/*
 * The first activity after idleness (or ever): a ring whose first sample is
 * the previous one (t0, the totals then: 0) and whose second holds what
 * happened since, from the service's HTTP counters and its endpoints' sums
 * (a burst's first period is counted; per-endpoint windows start now).
 */
static int sw_activate(struct statwin *w, struct sw_svc *e, const struct snap_svc *sv, const struct sw_hraw *h,
		       const struct sw_eraw *es, double t0, double t)
{
	struct sw_tot *a;
	size_t j, i;

	e->ring = calloc(STATWIN_SLOTS, sizeof(*e->ring));
	if (!e->ring)
		return -ENOMEM;
	w->active++;
	memset(&e->acc, 0, sizeof(e->acc));
	e->ring[0].t = t0;
	e->head = 0;
	e->n = 1;
	/* endpoints: a baseline now (sample_active adds nothing for a new one) */
	if (sample_active(e, sv, &e->hlast, t) < 0)
		return -ENOMEM;
	/* the service's first increments, from the sums */
	a = &e->acc;
	a->req = inc(h->req, e->hlast.req);
	a->req5 = inc(h->req5, e->hlast.req5);
	a->retries = inc(h->retries, e->hlast.retries);
	for (i = 0; i < H1_REQ_BUCKETS; i++)
		a->rb[i] = inc(h->rb[i], e->hlast.rb[i]);
	a->conns = inc(es->conns, e->esum.conns);
	a->cerr = inc(es->cerr, e->esum.cerr);
	a->ccnt = inc(es->ccnt, e->esum.ccnt);
	for (i = 0; i < SVC_LAT_BUCKETS; i++)
		a->cb[i] = inc(es->cb[i], e->esum.cb[i]);
	a->t = t;
	e->ring[e->head] = *a;
	e->hlast = *h;
	for (j = 0; j < e->n_eps; j++) {
		struct sw_ep *p = &e->eps[j];

		/* a fresh service's endpoints started at 0 too: their first period is theirs */
		if (e->fresh && j < sv->n_eps && !strcmp(sv->eps[j].addr, p->addr)) {
			p->acc = (struct sw_etot){ .t = t,
						   .req = p->last.req,
						   .req5 = p->last.req5,
						   .conns = p->last.conns,
						   .cerr = p->last.cerr };
			p->ring[0] = (struct sw_etot){ .t = t0 };
		}
		p->ring[e->head] = p->acc;
	}
	e->fresh = false;
	return 0;
}

/* No change over the whole ring: back to a fingerprint. */
static bool sw_idle(const struct sw_svc *e)
{
	const struct sw_tot *a, *b;

	if (e->n < STATWIN_SLOTS)
		return false;
	a = &e->ring[e->head];
	b = &e->ring[(e->head + 1) % STATWIN_SLOTS]; /* the oldest */
	return a->req == b->req && a->conns == b->conns && a->cerr == b->cerr && a->retries == b->retries;
}

int statwin_sample(struct statwin *w, const struct snapshot *s)
{
	struct stat_index ix;
	size_t i;
	int r = 0;

	if (stat_index_build(&ix, s) < 0)
		return -ENOMEM;
	w->gen++;
	for (i = 0; i < s->n_svcs && r == 0; i++) {
		const struct snap_svc *sv = &s->svcs[i];
		struct sw_svc *e = sw_find(w, sv->name);
		struct sw_hraw h;
		struct sw_eraw es;
		uint64_t fp;

		hraw_of(stat_index_get(&ix, sv->name), &h);
		esum_of(sv, &es);
		fp = fingerprint(&h, &es);
		if (!e) {
			size_t b = sw_hash(sv->name);

			e = calloc(1, sizeof(*e));
			if (!e || !(e->name = strdup(sv->name))) {
				free(e);
				r = -ENOMEM;
				break;
			}
			e->next = w->b[b];
			w->b[b] = e;
			e->fresh = true;
			/*
			 * First sight: weftd's start or a new service, so its counters
			 * started at 0 (counted from 0). A service removed and added
			 * back keeps its HTTP counters: its first window shows them.
			 */
		}
		e->gen = w->gen;
		if (e->ring) {
			r = sample_active(e, sv, &h, s->now);
			if (r == 0 && sw_idle(e))
				sw_deactivate(w, e);
		} else if (fp != e->fp) {
			r = sw_activate(w, e, sv, &h, &es, w->last_t ? w->last_t : s->now - STATWIN_PERIOD_S, s->now);
			if (r < 0)
				sw_deactivate(w, e);
		}
		e->fp = fp;
		e->hlast = h;
		e->esum = es;
	}
	/* services gone (reload, discovery) */
	for (i = 0; i < SW_BUCKETS; i++) {
		struct sw_svc **pp = &w->b[i];

		while (*pp) {
			struct sw_svc *e = *pp;

			if (e->gen == w->gen || r < 0) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			sw_deactivate(w, e);
			free(e->name);
			free(e);
		}
	}
	free(ix.v);
	w->last_t = s->now;
	return r;
}

/* ---- windows ------------------------------------------------------------------- */

double statwin_quantile(const double *bounds, const uint64_t *cum, size_t n, uint64_t total, double q)
{
	double rank = q * (double)total, lo = 0, below = 0;
	size_t i;

	if (!total)
		return -1;
	for (i = 0; i < n; i++) {
		if ((double)cum[i] >= rank) {
			double in = (double)cum[i] - below;

			return in > 0 ? lo + (bounds[i] - lo) * ((rank - below) / in) : bounds[i];
		}
		lo = bounds[i];
		below = (double)cum[i];
	}
	return n ? bounds[n - 1] : -1;
}

struct sw_win {
	double secs; /* 0: no history */
	double req_s, conn_s, retry_s;
	double success;       /* HTTP: non-5xx share; -1: no request */
	double conn_success;  /* established / (established + failed connects); -1: none */
	double p50, p95, p99; /* seconds; -1: none */
	bool http;
};

/*
 * Ring index of the newest sample at least secs older than the newest, else
 * the oldest valid one (t < 0: a slot an endpoint newer than the ring never
 * filled). t_of: &ring[0].t, stride: sizeof(ring[0]).
 */
static size_t ring_back(size_t head, size_t n, const double *t_of, size_t stride, double secs)
{
	size_t k, idx = head;
	double now = *(const double *)((const char *)t_of + head * stride);

	for (k = 1; k < n; k++) {
		size_t i = (head + STATWIN_SLOTS - k) % STATWIN_SLOTS;
		double t = *(const double *)((const char *)t_of + i * stride);

		if (t < 0)
			break;
		idx = i;
		if (now - t >= secs - 1e-9)
			break;
	}
	return idx;
}

static void win_of(const struct sw_svc *e, double secs, bool http_svc, struct sw_win *o)
{
	const struct sw_tot *a, *b;
	uint64_t d[H1_REQ_BUCKETS > SVC_LAT_BUCKETS ? H1_REQ_BUCKETS : SVC_LAT_BUCKETS];
	size_t i;

	memset(o, 0, sizeof(*o));
	o->success = o->conn_success = o->p50 = o->p95 = o->p99 = -1;
	if (!e || !e->ring || e->n < 2)
		return;
	a = &e->ring[e->head];
	b = &e->ring[ring_back(e->head, e->n, &e->ring[0].t, sizeof(e->ring[0]), secs)];
	o->secs = a->t - b->t;
	if (o->secs <= 0)
		return;
	o->req_s = (double)(a->req - b->req) / o->secs;
	o->conn_s = (double)(a->conns - b->conns) / o->secs;
	o->retry_s = (double)(a->retries - b->retries) / o->secs;
	if (a->req > b->req)
		o->success = 1.0 - (double)(a->req5 - b->req5) / (double)(a->req - b->req);
	if (a->conns + a->cerr > b->conns + b->cerr)
		o->conn_success = (double)(a->conns - b->conns) / (double)(a->conns + a->cerr - b->conns - b->cerr);
	o->http = http_svc || a->req > b->req;
	if (o->http) {
		for (i = 0; i < H1_REQ_BUCKETS; i++)
			d[i] = a->rb[i] - b->rb[i];
		o->p50 = statwin_quantile(h1_req_bounds, d, H1_REQ_BUCKETS, a->req - b->req, 0.50);
		o->p95 = statwin_quantile(h1_req_bounds, d, H1_REQ_BUCKETS, a->req - b->req, 0.95);
		o->p99 = statwin_quantile(h1_req_bounds, d, H1_REQ_BUCKETS, a->req - b->req, 0.99);
	} else {
		for (i = 0; i < SVC_LAT_BUCKETS; i++)
			d[i] = a->cb[i] - b->cb[i];
		o->p50 = statwin_quantile(svc_lat_bounds, d, SVC_LAT_BUCKETS, a->ccnt - b->ccnt, 0.50);
		o->p95 = statwin_quantile(svc_lat_bounds, d, SVC_LAT_BUCKETS, a->ccnt - b->ccnt, 0.95);
		o->p99 = statwin_quantile(svc_lat_bounds, d, SVC_LAT_BUCKETS, a->ccnt - b->ccnt, 0.99);
	}
}

struct sw_ewin {
	double secs, req_s, conn_s, success, conn_success;
};

static void ewin_of(const struct sw_svc *e, const struct sw_ep *p, double secs, struct sw_ewin *o)
{
	const struct sw_etot *a, *b;

	memset(o, 0, sizeof(*o));
	o->success = o->conn_success = -1;
	if (!p || e->n < 2)
		return;
	a = &p->ring[e->head];
	b = &p->ring[ring_back(e->head, e->n, &p->ring[0].t, sizeof(p->ring[0]), secs)];
	o->secs = a->t - b->t;
	if (o->secs <= 0)
		return;
	o->req_s = (double)(a->req - b->req) / o->secs;
	o->conn_s = (double)(a->conns - b->conns) / o->secs;
	if (a->req > b->req)
		o->success = 1.0 - (double)(a->req5 - b->req5) / (double)(a->req - b->req);
	if (a->conns + a->cerr > b->conns + b->cerr)
		o->conn_success = (double)(a->conns - b->conns) / (double)(a->conns + a->cerr - b->conns - b->cerr);
}

/* ---- rendering ----------------------------------------------------------------- */

static void json_num(struct buf *out, const char *key, double v, double scale)
{
	if (v < 0)
		buf_printf(out, ",\"%s\":null", key);
	else
		buf_printf(out, ",\"%s\":%.6g", key, v * scale);
}

static void json_win(struct buf *out, const char *name, const struct sw_win *wn)
{
	buf_printf(out, "\"%s\":{\"seconds\":%.3f", name, wn->secs);
	json_num(out, "requests_per_s", wn->req_s, 1);
	json_num(out, "success_rate", wn->success, 1);
	json_num(out, "connections_per_s", wn->conn_s, 1);
	json_num(out, "connect_success_rate", wn->conn_success, 1);
	json_num(out, "retries_per_s", wn->retry_s, 1);
	buf_printf(out, ",\"latency\":\"%s\"", wn->http ? "request" : "connect");
	json_num(out, "p50_ms", wn->p50, 1000);
	json_num(out, "p95_ms", wn->p95, 1000);
	json_num(out, "p99_ms", wn->p99, 1000);
	buf_puts(out, "}");
}

static void json_ewin(struct buf *out, const char *name, const struct sw_ewin *wn)
{
	buf_printf(out, "\"%s\":{\"seconds\":%.3f", name, wn->secs);
	json_num(out, "requests_per_s", wn->req_s, 1);
	json_num(out, "success_rate", wn->success, 1);
	json_num(out, "connections_per_s", wn->conn_s, 1);
	json_num(out, "connect_success_rate", wn->conn_success, 1);
	buf_puts(out, "}");
}

/* "99.50%", "-" */
static const char *fmt_pct(double v, char *b, size_t n)
{
	if (v < 0)
		snprintf(b, n, "-");
	else
		snprintf(b, n, "%.2f%%", v * 100);
	return b;
}

/* "12.3", "1.2k", "-" */
static const char *fmt_rate(double v, char *b, size_t n)
{
	if (v < 0)
		snprintf(b, n, "-");
	else if (v >= 99999.5)
		snprintf(b, n, "%.1fk", v / 1000);
	else
		snprintf(b, n, "%.1f", v);
	return b;
}

/* milliseconds from seconds: "0.25", "12.5", "2500", "-" */
static const char *fmt_ms(double s, char *b, size_t n)
{
	double ms = s * 1000;

	if (s < 0)
		snprintf(b, n, "-");
	else if (ms < 10)
		snprintf(b, n, "%.2f", ms);
	else if (ms < 1000)
		snprintf(b, n, "%.1f", ms);
	else
		snprintf(b, n, "%.0f", ms);
	return b;
}

/* A name in w columns: the tail kept, '~' where cut (names differ at the end: ports, suffixes). */
static void put_name(struct buf *out, const char *name, int w)
{
	int len = (int)strlen(name);

	if (len <= w)
		buf_printf(out, "%-*s", w, name);
	else
		buf_printf(out, "~%s", name + len - (w - 1));
}

bool statwin_render(struct statwin *w, const struct snapshot *s, const struct statwin_opts *opts, bool text,
		    struct buf *out)
{
	double win = opts->window_s > 0 ? opts->window_s : 10;
	char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
	size_t i, j, shown = 0;

	if (opts->service) {
		for (i = 0; i < s->n_svcs; i++)
			if (!strcmp(s->svcs[i].name, opts->service))
				break;
		if (i == s->n_svcs)
			return false;
	}
	if (text)
		buf_printf(out, "%-20s %7s %7s %7s %7s %7s %6s %5s %5s\n", "SERVICE", "SUCCESS", "RPS", "P50ms",
			   "P95ms", "P99ms", "RETRY", "INFL", "EJECT");
	else
		buf_printf(out, "{\"period_s\":%g,\"services\":[", STATWIN_PERIOD_S);
	for (i = 0; i < s->n_svcs; i++) {
		const struct snap_svc *sv = &s->svcs[i];
		const struct sw_svc *e = sw_find(w, sv->name);
		bool http = sv->protocol == CFG_PROTO_HTTP || sv->protocol == CFG_PROTO_HTTP2;
		struct sw_win w10, w60;
		uint32_t inflight = sv->http ? sv->inflight : sv->active;

		if (opts->service && strcmp(sv->name, opts->service))
			continue;
		win_of(e, 10, http, &w10);
		win_of(e, 60, http, &w60);
		if (text) {
			const struct sw_win *x = win >= 60 ? &w60 : &w10;

			put_name(out, sv->name, 20);
			buf_printf(out, " %7s %7s %7s %7s %7s %6s %5u %2zu/%-2zu\n",
				   fmt_pct(x->http ? x->success : x->conn_success, b1, sizeof(b1)),
				   fmt_rate(x->secs > 0 ? (x->http ? x->req_s : x->conn_s) : -1, b2, sizeof(b2)),
				   fmt_ms(x->p50, b3, sizeof(b3)), fmt_ms(x->p95, b4, sizeof(b4)),
				   fmt_ms(x->p99, b5, sizeof(b5)),
				   fmt_rate(x->secs > 0 && x->http ? x->retry_s : -1, b6, sizeof(b6)), inflight,
				   sv->ejected, sv->n_eps);
			for (j = 0; opts->wide && j < sv->n_eps; j++) {
				const struct snap_ep *ep = &sv->eps[j];
				const struct sw_ep *p = e ? ep_find((struct sw_svc *)e, ep->addr, j) : NULL;
				struct sw_ewin ew;

				ewin_of(e, p, win >= 60 ? 60 : 10, &ew);
				buf_puts(out, "  ");
				put_name(out, ep->addr, 18);
				snprintf(b3, sizeof(b3), "ewma %sms", fmt_ms(ep->bal.ewma_us / 1e6, b4, sizeof(b4)));
				buf_printf(out, " %7s %7s %15s %7s %6s %5u %5s\n",
					   fmt_pct(x->http ? ew.success : ew.conn_success, b1, sizeof(b1)),
					   fmt_rate(ew.secs > 0 ? (x->http ? ew.req_s : ew.conn_s) : -1, b2,
						    sizeof(b2)),
					   b3, "", "", ep->bal.active, ep->bal.state == BAL_READY ? "" : "eject");
			}
		} else {
			buf_puts(out, shown ? ",{\"name\":" : "{\"name\":");
			buf_json_str(out, sv->name);
			buf_printf(out,
				   ",\"protocol\":\"%s\",\"in_flight\":%u,\"active_connections\":%u,\"endpoints\":%zu,"
				   "\"ejected\":%zu,\"windows\":{",
				   cfg_protocol_name(sv->protocol), sv->http ? sv->inflight : 0, sv->active, sv->n_eps,
				   sv->ejected);
			json_win(out, "10s", &w10);
			buf_puts(out, ",");
			json_win(out, "1m", &w60);
			buf_puts(out, "}");
			if (opts->wide) {
				buf_puts(out, ",\"endpoint_stats\":[");
				for (j = 0; j < sv->n_eps; j++) {
					const struct snap_ep *ep = &sv->eps[j];
					const struct sw_ep *p = e ? ep_find((struct sw_svc *)e, ep->addr, j) : NULL;
					struct sw_ewin e10, e60;

					ewin_of(e, p, 10, &e10);
					ewin_of(e, p, 60, &e60);
					buf_printf(
						out,
						"%s{\"address\":\"%s\",\"state\":\"%s\",\"active\":%u,\"ewma_ms\":%.3f,"
						"\"windows\":{",
						j ? "," : "", ep->addr,
						ep->bal.state == BAL_READY ? "ready" : "ejected", ep->bal.active,
						ep->bal.ewma_us / 1000.0);
					json_ewin(out, "10s", &e10);
					buf_puts(out, ",");
					json_ewin(out, "1m", &e60);
					buf_puts(out, "}}");
				}
				buf_puts(out, "]");
			}
			buf_puts(out, "}");
		}
		shown++;
	}
	if (text) {
		if (!shown)
			buf_puts(out, "(no services)\n");
		buf_printf(out, "window %gs; TCP rows: RPS is conn/s, P50-P99 connect time%s\n",
			   win >= 60 ? 60.0 : 10.0, opts->wide ? "; endpoints: EWMA" : "");
	} else {
		buf_puts(out, "]}\n");
	}
	return true;
}
