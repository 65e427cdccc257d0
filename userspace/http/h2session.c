// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* h2session: HTTP/2 and gRPC at layer 7 (h2session.h). */
#include "http/h2session.h"

#include <errno.h>
#include <stdatomic.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec/deadline.h"
#include "codec/grpc.h"
#include "codec/h1route.h"
#include "codec/http1.h"
#include "http/h1svc.h"
#include "http/zipkin.h"
#include "lib/blk.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "codec/preamble.h"
#include "codec/trace.h"
#include "link/nodelink.h"
#include "lib/netns.h"
#include "lib/obuf.h"
#include "lib/sock.h"
#include "state/retry.h"
#include "state/service.h"
#include "state/tap.h"
#include "tls/mtls.h"
#include "tls/tls.h"

#define H2_MAX_HEADERS 128 /* fields per header block */
#define H2_READ 16384
#define H2_WRITE_MAX (64u << 10) /* frames gathered before a write */
#define H2_TP_MAX 64             /* a traceparent value */
#define H2_B3_MAX 96             /* a b3 value */

/* What both kinds of connection share: the worker's "flush me" list. */
struct h2conn {
	struct list_head dirty; /* w->dirty while a flush is due */
	bool is_up;
};

struct h2st;

/* A client connection (weft is the server). */
struct h2s {
	struct h2conn c;
	struct list_head link;
	struct h2_worker *w;
	struct registry *reg;
	struct svc *svc; /* ref */
	struct h1_svc *l7;
	struct mtls *mtls; /* TLS bundle for endpoints on other nodes (ref; NULL: none) */
	struct weft_orig orig;
	struct weft_sockaddr client;
	int fd;
	ev_io io;
	nghttp2_session *ng;
	struct obuf ob;
	struct list_head streams; /* struct h2st.slink */
	unsigned n_streams;
	bool dead, goaway_sent;
	bool terminated;              /* weft ended it for a flood or a broken frame (counted there, GOAWAY or not) */
	uint64_t bytes_in, bytes_out; /* from the client, to the client */
	ev_tstamp started;
	ev_tstamp idle_since;     /* no stream open since (0: streams are open) */
	char ep_str[ADDR_STRLEN]; /* the last stream's endpoint (written under registry.lock) */
};

/* An upstream connection (weft is the client) to one endpoint. */
struct h2up {
	struct h2conn c;
	struct list_head link; /* w->ups */
	struct h2_worker *w;
	struct svc_ep *ep; /* ref */
	int fd;
	ev_io io;
	ev_timer ct; /* connect timeout */
	double t0;   /* connect started */
	nghttp2_session *ng;
	struct obuf ob;
	struct list_head streams; /* struct h2st.ulink */
	unsigned active;
	uint32_t max_streams;
	uint32_t idle_timeout_ms; /* http.pool_idle_timeout_ms of the service that opened it */
	ev_tstamp idle_since;     /* no stream since (0: streams are open) */
	bool connected, dead, goaway;
	/* an endpoint on another node: mutual TLS to its agent, then the preamble (link/nodelink) */
	struct tls_conn *tls;
	const struct tls_ctx *ctx; /* the identity it proved: only streams of that identity use it */
	struct weft_sockaddr node; /* the agent it goes to */
	struct nodelink *nl;       /* while the link is being set up */
	enum tls_want want;        /* what the last TLS call that returned -EAGAIN waits for */
};

/* A byte queue: pending bytes are p[off..len); its memory is a lib/blk block of cap bytes. */
struct bq {
	char *p;
	size_t off, len, cap;
};

/* One request: its client stream and, while an attempt runs, its upstream stream. */
struct h2st {
	struct list_head slink, ulink;
	struct h2s *s;
	int32_t id;  /* client stream */
	int32_t uid; /* upstream stream; 0: none */
	struct h2up *up;
	bool cli_open, up_open;
	/*
	 * request head: "name\0value\0" pairs in hb (a lib/blk block of hcap
	 * bytes while the block comes in); once complete, one exact allocation
	 * holds the pairs and hv, their index (hcap 0)
	 */
	char *hb;
	size_t hlen, hcap;
	struct h1_header *hv;
	size_t nh, nfields;
	const char *method, *path, *authority, *scheme;
	size_t method_len, path_len, authority_len, scheme_len;
	bool too_big, grpc, head_done, req_end, started;
	/* request body: kept whole while a retry may need it */
	struct bq req;
	size_t req_sent, req_consumed;
	bool retryable;
	/* routing and the attempt */
	struct h1r_route *route;
	struct svc *bsvc; /* ref */
	int ep_i;
	uint64_t tried;
	unsigned attempt;
	bool counted;
	double start, attempt_start, last_io;
	ev_timer deadline;
	int64_t deadline_ns;
	/* tracing: the caller's context (or a new trace), our SERVER span, the attempt's CLIENT span */
	struct trace_ctx tc;
	bool have_parent, b3_in;
	uint64_t span_id, attempt_span;
	int64_t wall_start_us, attempt_wall_us;
	/* response */
	int status, grpc_status;
	bool resp_head_sent, resp_end, errored;
	char *rh; /* response or trailer fields "name\0value\0" (a lib/blk block of rhcap bytes) */
	size_t rhlen, rhcap;
	size_t nrnv;   /* fields in rh */
	bool trailers; /* rh holds trailers to send once the body is through */
	struct bq resp;
};

/* GOAWAYs weft sent to clients, by error code (0..NGHTTP2_HTTP_1_1_REQUIRED; the rest last). */
#define H2_ERR_CODES 14
static atomic_ullong h2_goaways[H2_ERR_CODES];
static atomic_ullong h2_conns_total, h2_streams_total;

static struct {
	nghttp2_session_callbacks *srv, *cli;
	nghttp2_option *srv_opt, *cli_opt;
	int ok; /* 1 ready, -1 failed */
} h2g;

static inline double now_of(const struct h2_worker *w)
{
	return ev_now(w->loop);
}

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- byte queues ---------------------------------------------------------- */

static size_t bq_len(const struct bq *q)
{
	return q->len - q->off;
}

static int bq_add(struct bq *q, const void *d, size_t n)
{
	if (q->len + n > q->cap) {
		size_t cap;
		char *p;

		if (q->off) {
			memmove(q->p, q->p + q->off, q->len - q->off);
			q->len -= q->off;
			q->off = 0;
		}
		for (cap = q->cap ? q->cap : BLK_MIN; cap < q->len + n; cap *= 2)
			;
		if (cap != q->cap) {
			p = q->p ? realloc(q->p, cap) : blk_get(cap);
			if (!p)
				return -ENOMEM;
			q->p = p;
			q->cap = cap;
		}
	}
	memcpy(q->p + q->len, d, n);
	q->len += n;
	return 0;
}

static void bq_free(struct bq *q)
{
	blk_put(q->p, q->cap);
	memset(q, 0, sizeof(*q));
}

/* ---- flushing ----------------------------------------------------------------- */

/*
 * Frames are produced inside callbacks of the other session: flushed once the
 * events of this loop iteration are all handled (w->flush, an ev_prepare),
 * so that the streams of several client connections read in one iteration
 * go to their endpoint in one write, and a client gets the answers of
 * several endpoint reads in one.
 */
static void mark_dirty(struct h2_worker *w, struct h2conn *c)
{
	if (list_empty(&c->dirty))
		list_add_tail(&c->dirty, &w->dirty_list);
	if (!ev_is_active(&w->flush))
		ev_prepare_start(w->loop, &w->flush);
}

static void s_flush(struct h2s *s);
static void h2_tick_arm(struct h2_worker *w);
static void up_flush(struct h2up *u);

/* Every connection that has frames due, until none has. */
static void w_run(struct h2_worker *w)
{
	while (!list_empty(&w->dirty_list)) {
		struct h2conn *c = list_first_entry(&w->dirty_list, struct h2conn, dirty);

		list_del(&c->dirty);
		if (c->is_up)
			up_flush(list_entry(c, struct h2up, c));
		else
			s_flush(list_entry(c, struct h2s, c));
	}
	ev_prepare_stop(w->loop, &w->flush);
}

static void w_flush_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	(void)loop;
	(void)revents;
	w_run(p->data);
}

/* ob's bytes through TLS: 0 all written, 1 EAGAIN (*want says for what), -errno. */
static int tls_flush(struct tls_conn *tls, struct obuf *o, enum tls_want *want)
{
	while (ob_pending(o)) {
		ssize_t n = tls_write(tls, o->p + o->off, ob_pending(o));

		if (n == -EAGAIN) {
			*want = tls_want(tls);
			return 1;
		}
		if (n < 0)
			return (int)n;
		o->off += (size_t)n;
	}
	o->off = o->len = 0;
	return 0;
}

/*
 * nghttp2's output into ob, then the socket (or tls, when not NULL). 0, or
 * -1 when the connection is done with.
 *
 * nghttp2_session_mem_send gives one frame at a time (a response is HEADERS
 * then DATA, and the WINDOW_UPDATEs between): everything it has, up to
 * H2_WRITE_MAX, is gathered first and written with one call. A write per
 * frame was about four send()s per proxied request, each waking the reader.
 * (The copy into ob is what makes that possible: nghttp2's pointer is only
 * good until its next call. It is a few hundred bytes per request.)
 */
static int ng_flush(nghttp2_session *ng, struct obuf *ob, int fd, uint64_t *written, struct tls_conn *tls,
		    enum tls_want *want)
{
	for (;;) {
		const uint8_t *data;
		ssize_t n;
		int r;

		while (ob_pending(ob) < H2_WRITE_MAX) {
			n = nghttp2_session_mem_send(ng, &data);
			if (n < 0)
				return -1;
			if (n == 0)
				break;
			if (ob_add(ob, data, (size_t)n) < 0)
				return -1;
		}
		if (!ob_pending(ob)) {
			ob_trim(ob); /* an idle connection holds no buffer (the block goes back to lib/blk's cache) */
			return 0;
		}
		r = tls ? tls_flush(tls, ob, want) : ob_flush(ob, fd, written);
		if (r < 0)
			return -1;
		if (r > 0)
			return 0; /* EAGAIN: wait for EV_WRITE */
	}
}

static void io_arm(struct ev_loop *loop, ev_io *io, int events)
{
	if ((io->events & (EV_READ | EV_WRITE)) == events && ev_is_active(io))
		return;
	ev_io_stop(loop, io);
	if (!events)
		return;
	ev_io_set(io, io->fd, events);
	ev_io_start(loop, io);
}

/* ---- streams ---------------------------------------------------------------------- */

static void st_release_locked(struct h2st *st)
{
	struct registry *reg = st->s->reg;

	if (st->ep_i >= 0 && st->bsvc) {
		st->bsvc->eps[st->ep_i]->bal.active--;
		st->ep_i = -1;
	}
	if (st->counted) {
		st->s->svc->stat->http->inflight--;
		st->counted = false;
	}
	if (st->bsvc) {
		svc_unref_locked(reg, st->bsvc);
		st->bsvc = NULL;
	}
}

static void st_detach_up(struct h2st *st)
{
	if (!st->up)
		return;
	/*
	 * Response bytes still held here go back to the endpoint's connection
	 * window now: resp_read gives them back as the client takes them only
	 * while the stream is attached, and a response usually ends (its last
	 * DATA and END_STREAM in one read) before the client has taken it.
	 * Without this every such response cost the connection its size for
	 * good, and it stalled after a window's worth (1 MiB). What stays held
	 * is bounded by the stream's own window.
	 */
	if (bq_len(&st->resp)) {
		nghttp2_session_consume_connection(st->up->ng, bq_len(&st->resp));
		mark_dirty(st->up->w, &st->up->c);
	}
	list_del(&st->ulink);
	if (!--st->up->active)
		st->up->idle_since = now_of(st->up->w);
	st->up = NULL;
	st->uid = 0;
	st->up_open = false;
}

/* Both sides are done: the stream goes. */
static void st_maybe_free(struct h2st *st)
{
	struct registry *reg;

	if (st->cli_open || st->up_open)
		return;
	reg = st->s->reg;
	ev_timer_stop(st->s->w->loop, &st->deadline);
	pthread_mutex_lock(&reg->lock);
	st_release_locked(st);
	pthread_mutex_unlock(&reg->lock);
	list_del(&st->slink);
	if (!--st->s->n_streams)
		st->s->idle_since = now_of(st->s->w);
	if (st->hcap)
		blk_put(st->hb, st->hcap);
	else
		free(st->hb);
	blk_put(st->rh, st->rhcap);
	bq_free(&st->req);
	bq_free(&st->resp);
	free(st);
}

/* ---- tracing (as HTTP/1.1: docs/http1.md, "Tracing") ----------------------------------------- */

static void st_span(struct h2st *st, int kind, uint64_t id, uint64_t parent, int64_t start_us, int64_t dur_us,
		    const char *err)
{
	struct h2s *s = st->s;
	struct trace_span sp;

	if (!s->w->zipkin || !st->tc.sampled || !id)
		return;
	memset(&sp, 0, sizeof(sp));
	memcpy(sp.trace_id, st->tc.trace_id, 16);
	sp.id = id;
	sp.parent_id = parent;
	sp.start_us = start_us;
	sp.duration_us = dur_us > 0 ? dur_us : 1;
	sp.kind = (uint8_t)kind;
	snprintf(sp.name, sizeof(sp.name), "%.*s %s", (int)st->method_len, st->method ? st->method : "",
		 st->route ? st->route->name : "default");
	snprintf(sp.service, sizeof(sp.service), "%s", st->bsvc ? st->bsvc->name : s->svc->name);
	snprintf(sp.route, sizeof(sp.route), "%s", st->route ? st->route->name : "");
	snprintf(sp.method, sizeof(sp.method), "%.*s", (int)st->method_len, st->method ? st->method : "");
	snprintf(sp.path, sizeof(sp.path), "%.*s", (int)st->path_len, st->path ? st->path : "");
	if (st->ep_i >= 0 && st->bsvc)
		snprintf(sp.endpoint, sizeof(sp.endpoint), "%.*s", (int)sizeof(sp.endpoint) - 1,
			 st->bsvc->eps[st->ep_i]->addr_str);
	sp.status = (uint16_t)(st->status > 0 ? st->status : 0);
	sp.attempt = (uint8_t)(kind == TRACE_KIND_CLIENT ? st->attempt : 0);
	if (err)
		snprintf(sp.error, sizeof(sp.error), "%s", err);
	zipkin_submit(s->w->zipkin, &sp);
}

/* The attempt's CLIENT span, once. */
static void attempt_span_end(struct h2st *st, const char *err)
{
	if (!st->attempt_span)
		return;
	st_span(st, TRACE_KIND_CLIENT, st->attempt_span, st->span_id, st->attempt_wall_us,
		(int64_t)((now_of(st->s->w) - st->attempt_start) * 1e6), err);
	st->attempt_span = 0;
}

static const char *field_of(struct h2st *st, const char *lc, size_t *len);

/* The caller's context: W3C traceparent, else single-header B3; else a new trace (sampled by http.sample_rate). */
static void read_trace(struct h2st *st)
{
	const char *v;
	size_t vl;
	struct trace_ctx c;
	int r = -EINVAL;

	memset(&c, 0, sizeof(c));
	if ((v = field_of(st, "traceparent", &vl)))
		r = trace_parse_traceparent(v, vl, &c);
	if (r != 0 && (v = field_of(st, "b3", &vl))) {
		st->b3_in = true;
		r = trace_parse_b3(v, vl, &c);
	}
	if (r == 0) {
		st->tc = c;
		st->have_parent = true;
		if (!c.has_sampled)
			st->tc.sampled = (double)(trace_random_u64() >> 11) / 9007199254740992.0 <
					 st->s->l7->sample_rate;
	} else {
		bool has = r == -ENOENT && c.has_sampled;

		memset(&st->tc, 0, sizeof(st->tc));
		trace_new_trace_id(st->tc.trace_id);
		st->tc.has_sampled = has;
		st->tc.sampled = has ? c.sampled
				     : (double)(trace_random_u64() >> 11) / 9007199254740992.0 < st->s->l7->sample_rate;
	}
	st->span_id = trace_random_u64();
}

/* One finished stream for weftctl tap (only while somebody taps). */
static void st_tap(struct h2st *st, double d)
{
	struct h2s *s = st->s;
	struct tap_event ev;
	size_t i;

	memset(&ev, 0, offsetof(struct tap_event, headers));
	ev.wall = (double)wall_ns() / 1e9 - d;
	ev.cgroup_id = s->orig.cgroup_id;
	ev.pid = s->orig.pid;
	ev.latency_us = d < 0 ? 0 : d > 4e3 ? UINT32_MAX : (uint32_t)(d * 1e6);
	ev.status = st->status > 0 && st->status < 1000 ? (uint16_t)st->status : 0;
	ev.attempts = (uint16_t)st->attempt;
	ev.grpc = (int16_t)(!st->grpc ? -1 : st->grpc_status >= 0 ? st->grpc_status : GRPC_UNKNOWN);
	snprintf(ev.service, sizeof(ev.service), "%s", s->svc->name);
	snprintf(ev.method, sizeof(ev.method), "%.*s", (int)st->method_len, st->method ? st->method : "");
	snprintf(ev.authority, sizeof(ev.authority), "%.*s", (int)st->authority_len,
		 st->authority ? st->authority : "");
	snprintf(ev.path, sizeof(ev.path), "%.*s", (int)st->path_len, st->path ? st->path : "");
	if (st->ep_i >= 0 && st->bsvc)
		snprintf(ev.endpoint, sizeof(ev.endpoint), "%s", st->bsvc->eps[st->ep_i]->addr_str);
	if (tap_want_headers(s->reg->tap))
		for (i = 0; i < st->nh; i++)
			tap_add_header(&ev, st->hv[i].name, st->hv[i].name_len, st->hv[i].value, st->hv[i].value_len);
	tap_offer(s->reg->tap, &ev);
}

/* Metrics of a finished request: route counters (status class, duration), gRPC code. */
static void st_account(struct h2st *st)
{
	struct h2s *s = st->s;
	struct h1_routestat *rs = st->route ? st->route->stat : NULL;
	double d = now_of(s->w) - st->start;
	size_t i;

	if (!st->started)
		return;
	pthread_mutex_lock(&s->reg->lock);
	if (rs) {
		if (st->status >= 100 && st->status <= 599)
			rs->by_class[st->status / 100]++;
		for (i = 0; i < H1_REQ_BUCKETS; i++)
			if (d <= h1_req_bounds[i])
				rs->buckets[i]++;
		rs->count++;
		rs->sum += d;
	}
	if (st->grpc) {
		int code = st->grpc_status >= 0              ? st->grpc_status
			   : st->status && st->status != 200 ? grpc_code_of_http(st->status)
							     : GRPC_UNKNOWN;

		s->svc->stat->http->grpc[code >= 0 && code < GRPC_CODES ? code : GRPC_CODES]++;
	}
	pthread_mutex_unlock(&s->reg->lock);
	if (tap_active(s->reg->tap))
		st_tap(st, d);
	attempt_span_end(st, st->status >= 500 || (st->grpc && st->grpc_status > 0) ? "error" : NULL);
	st_span(st, TRACE_KIND_SERVER, st->span_id, st->have_parent ? st->tc.span_id : 0, st->wall_start_us,
		(int64_t)(d * 1e6), st->status >= 500 || (st->grpc && st->grpc_status > 0) ? "error" : NULL);
	st->started = false;
}

/* ---- answers weft makes itself --------------------------------------------------------- */

static nghttp2_nv mknv(const char *name, const char *value)
{
	return (nghttp2_nv){ (uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, strlen(name), strlen(value),
			     NGHTTP2_NV_FLAG_NONE };
}

/*
 * A field whose value is new on every request (traceparent, b3,
 * grpc-timeout): not added to the HPACK dynamic tables, where each one would
 * push out entries that do repeat (and cost both ends an insertion).
 */
static nghttp2_nv mknv_once(const char *name, const char *value)
{
	nghttp2_nv nv = mknv(name, value);

	nv.flags = NGHTTP2_NV_FLAG_NO_INDEX;
	return nv;
}

static ssize_t resp_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *arg);

/*
 * An error answer before any response head went out: for gRPC a
 * trailers-only response (HTTP 200, grpc-status code), else the HTTP status
 * with a one-line body. Either way the upstream attempt, if any, is gone.
 */
static void st_fail(struct h2st *st, int http_status, int grpc_code, const char *msg)
{
	struct h2s *s = st->s;
	char st_s[8], code_s[8], gm[256], len_s[24];

	if (st->resp_head_sent || !st->cli_open) {
		if (st->cli_open)
			nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
		mark_dirty(s->w, &s->c);
		return;
	}
	st->errored = true;
	st->resp_head_sent = true;
	st->resp_end = true;
	if (st->grpc) {
		nghttp2_nv nv[4];

		st->status = 200;
		st->grpc_status = grpc_code;
		snprintf(code_s, sizeof(code_s), "%d", grpc_code);
		grpc_message_encode(msg, gm, sizeof(gm));
		nv[0] = mknv(":status", "200");
		nv[1] = mknv("content-type", "application/grpc");
		nv[2] = mknv("grpc-status", code_s);
		nv[3] = mknv("grpc-message", gm);
		nghttp2_submit_response(s->ng, st->id, nv, 4, NULL);
	} else {
		nghttp2_data_provider dp = { .source.ptr = st, .read_callback = resp_read };
		nghttp2_nv nv[3];

		st->status = http_status;
		snprintf(st_s, sizeof(st_s), "%d", http_status);
		bq_free(&st->resp);
		bq_add(&st->resp, msg, strlen(msg));
		bq_add(&st->resp, "\n", 1);
		snprintf(len_s, sizeof(len_s), "%zu", bq_len(&st->resp));
		nv[0] = mknv(":status", st_s);
		nv[1] = mknv("content-type", "text/plain; charset=utf-8");
		nv[2] = mknv("content-length", len_s);
		nghttp2_submit_response(s->ng, st->id, nv, 3, &dp);
	}
	mark_dirty(s->w, &s->c);
}

/* ---- the upstream side ------------------------------------------------------------------ */

static void attempt_start(struct h2st *st);

/* Can the attempt go again? Only before a response byte, with the body whole, within budget. */
static bool retry_ok(struct h2st *st)
{
	struct h2s *s = st->s;
	bool ok;

	if (!st->retryable || st->resp_head_sent || st->attempt >= s->l7->attempts || !st->cli_open)
		return false;
	pthread_mutex_lock(&s->reg->lock);
	ok = retry_budget_try(&s->svc->stat->http->budget, now_of(s->w));
	if (ok)
		s->svc->stat->http->retries++;
	else
		s->svc->stat->http->budget_exhausted++;
	pthread_mutex_unlock(&s->reg->lock);
	return ok;
}

/* The attempt failed before a response head (connect, refused stream, GOAWAY, reset). */
static void attempt_failed(struct h2st *st, bool connect_fail, const char *why)
{
	struct h2s *s = st->s;

	pthread_mutex_lock(&s->reg->lock);
	if (st->ep_i >= 0 && st->bsvc) {
		struct svc_ep *ep = st->bsvc->eps[st->ep_i];

		if (connect_fail)
			ep->connect_errors[SVC_ERR_OTHER]++;
		svc_breaker(st->bsvc, st->ep_i, false, now_of(s->w), "consecutive failures");
		ep->bal.active--;
		st->ep_i = -1;
	}
	pthread_mutex_unlock(&s->reg->lock);
	attempt_span_end(st, why);
	log_debug("service %s: stream %d: attempt %u failed: %s", s->svc->name, st->id, st->attempt, why);
	if (retry_ok(st)) {
		st->req_sent = 0;
		attempt_start(st);
		return;
	}
	st_fail(st, 503, GRPC_UNAVAILABLE, why);
}

static void up_free(struct h2up *u);

/* The connection is gone: every stream on it fails (or is retried). */
static void up_dead(struct h2up *u, const char *why)
{
	if (u->dead)
		return;
	u->dead = true;
	while (!list_empty(&u->streams)) {
		struct h2st *st = list_first_entry(&u->streams, struct h2st, ulink);
		bool before = !st->resp_head_sent;

		st_detach_up(st);
		if (before)
			attempt_failed(st, !u->connected, why);
		else if (!st->resp_end)
			st_fail(st, 502, GRPC_UNAVAILABLE, why);
		st_maybe_free(st);
	}
	ev_io_stop(u->w->loop, &u->io);
	ev_timer_stop(u->w->loop, &u->ct);
	up_free(u);
}

static void up_free(struct h2up *u)
{
	ev_io_stop(u->w->loop, &u->io);
	ev_timer_stop(u->w->loop, &u->ct);
	if (!list_empty(&u->c.dirty))
		list_del(&u->c.dirty);
	list_del(&u->link);
	tls_conn_free(u->tls);
	free(u->nl);
	if (u->fd >= 0)
		close(u->fd);
	nghttp2_session_del(u->ng);
	ob_free(&u->ob);
	svc_ep_unref(u->w->reg, u->ep);
	free(u);
}

static void up_flush(struct h2up *u)
{
	int ev = 0;

	if (u->dead)
		return;
	if (!u->connected) {
		io_arm(u->w->loop, &u->io, EV_WRITE);
		return;
	}
	if (ng_flush(u->ng, &u->ob, u->fd, NULL, u->tls, &u->want) < 0) {
		up_dead(u, "the connection to the endpoint failed");
		return;
	}
	if (nghttp2_session_want_read(u->ng))
		ev |= EV_READ;
	if (ob_pending(&u->ob))
		ev |= u->tls && u->want == TLS_WANT_READ ? EV_READ : EV_WRITE;
	if (!ev || (list_empty(&u->streams) && (u->goaway || u->w->draining))) {
		up_dead(u, "closed");
		return;
	}
	io_arm(u->w->loop, &u->io, ev);
}

static void up_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct h2up *u = io->data;
	struct h2_worker *w = u->w;
	char buf[H2_READ];
	ssize_t n;

	(void)loop;
	if (!u->connected && (revents & (EV_WRITE | EV_READ))) {
		int err = 0;
		socklen_t el = sizeof(err);

		/* the TCP connect's outcome (until TLS is under way) */
		if (!u->tls && getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			up_dead(u, err ? strerror(err) : "connect failed");
			w_run(w);
			return;
		}
		if (u->nl && !u->tls) {
			/* TCP is up: now TLS and the preamble to the other node's agent */
			u->tls = tls_conn_new((struct tls_ctx *)u->ctx, u->fd, false);
			if (!u->tls) {
				up_dead(u, "out of memory for TLS");
				w_run(w);
				return;
			}
		}
		if (u->nl) {
			int rc = nodelink_step(u->nl, u->tls);

			if (rc == -EAGAIN) {
				io_arm(loop, &u->io, tls_want(u->tls) == TLS_WANT_WRITE ? EV_WRITE : EV_READ);
				return;
			}
			if (rc < 0) {
				up_dead(u, rc == -EACCES ? "the other node's agent denied this workload (authorization)"
							 : strerror(-rc));
				w_run(w);
				return;
			}
			free(u->nl);
			u->nl = NULL;
		}
		u->connected = true;
		ev_timer_stop(loop, &u->ct);
		/* the latency the balancer learns is the endpoint's, not the connect's (fed separately) */
		{
			struct h2st *st;

			list_for_each_entry(st, &u->streams, ulink)
				st->attempt_start = ev_now(loop);
		}
		pthread_mutex_lock(&w->reg->lock);
		svc_ep_observe_connect(u->ep, ev_now(loop) - u->t0);
		u->ep->opened++;
		pthread_mutex_unlock(&w->reg->lock);
		up_flush(u);
		w_run(w);
		return;
	}
	if (u->tls || (revents & EV_READ)) {
		/* through TLS: read until EAGAIN (decrypted bytes can wait inside wolfSSL with none on the socket) */
		do {
			if (u->tls) {
				n = tls_read(u->tls, buf, sizeof(buf));
				if (n == -EAGAIN) {
					u->want = tls_want(u->tls);
					break;
				}
				if (n < 0)
					errno = (int)-n;
			} else {
				n = recv(u->fd, buf, sizeof(buf), 0);
				if (n < 0 && (errno == EAGAIN || errno == EINTR))
					break;
			}
			if (n <= 0) {
				up_dead(u, n == 0 ? "the endpoint closed the connection" : strerror(errno));
				w_run(w);
				return;
			}
			if (nghttp2_session_mem_recv(u->ng, (const uint8_t *)buf, (size_t)n) < 0) {
				up_dead(u, "the endpoint broke HTTP/2");
				w_run(w);
				return;
			}
		} while (u->tls);
	}
	mark_dirty(w, &u->c); /* flushed (and its watcher set) with everything else this iteration */
}

static void up_ct_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct h2up *u = t->data;
	struct h2_worker *w = u->w;

	(void)loop;
	(void)revents;
	up_dead(u, "connect timed out");
	w_run(w);
}

/* Upstream response fields of stream st, as they come (response head, then trailers). */
static int cli_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
			 const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct h2st *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	size_t need = nlen + vlen + 2;

	(void)flags;
	(void)arg;
	if (!st || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (nlen == 7 && !memcmp(name, ":status", 7)) {
		st->status = 0;
		for (size_t i = 0; i < vlen && i < 3; i++)
			st->status = st->status * 10 + (value[i] - '0');
		return 0;
	}
	if (nlen == 11 && !memcmp(name, "grpc-status", 11))
		st->grpc_status = grpc_status_parse((const char *)value, vlen);
	/* hop-by-hop fields do not exist in HTTP/2; nghttp2 refuses them already */
	if (st->nrnv >= H2_MAX_HEADERS || st->rhlen + need > 65536)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (st->rhlen + need > st->rhcap) {
		size_t cap = st->rhcap ? st->rhcap * 2 : BLK_MIN;
		char *p;

		while (cap < st->rhlen + need)
			cap *= 2;
		p = st->rh ? realloc(st->rh, cap) : blk_get(cap);
		if (!p)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		st->rh = p;
		st->rhcap = cap;
	}
	memcpy(st->rh + st->rhlen, name, nlen);
	st->rh[st->rhlen + nlen] = '\0';
	memcpy(st->rh + st->rhlen + nlen + 1, value, vlen);
	st->rh[st->rhlen + nlen + 1 + vlen] = '\0';
	st->nrnv++;
	st->rhlen += need;
	return 0;
}

/* rh's fields as nghttp2 name-value pairs pointing into rh (no NUL inside: nghttp2 refuses them). -> how many */
static size_t rh_nv(const struct h2st *st, nghttp2_nv *nv, size_t cap)
{
	size_t off = 0, n = 0;

	while (off < st->rhlen && n < cap) {
		const char *name = st->rh + off, *value;
		size_t nl = strlen(name), vl;

		value = name + nl + 1;
		vl = strlen(value);
		nv[n++] = (nghttp2_nv){ (uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, nl, vl,
					NGHTTP2_NV_FLAG_NONE };
		off += nl + vl + 2;
	}
	return n;
}

/* The response head goes to the client (with a body to follow unless it ended the stream). */
static void send_response_head(struct h2st *st, bool end)
{
	struct h2s *s = st->s;
	nghttp2_data_provider dp = { .source.ptr = st, .read_callback = resp_read };
	nghttp2_nv nv[H2_MAX_HEADERS + 1];
	char code[8];
	double lat = now_of(s->w) - st->attempt_start;
	bool fail5 = st->status >= 500;
	size_t n;

	if (st->status >= 100 && st->status <= 999) {
		code[0] = (char)('0' + st->status / 100);
		code[1] = (char)('0' + st->status / 10 % 10);
		code[2] = (char)('0' + st->status % 10);
		code[3] = '\0';
	} else {
		snprintf(code, sizeof(code), "%d", st->status);
	}
	nv[0] = mknv(":status", code);
	n = 1 + rh_nv(st, nv + 1, H2_MAX_HEADERS);
	pthread_mutex_lock(&s->reg->lock);
	if (st->ep_i >= 0 && st->bsvc) {
		struct svc_ep *ep = st->bsvc->eps[st->ep_i];

		bal_observe(&ep->bal, lat * 1e6, now_of(s->w));
		if (fail5 && ep->http)
			ep->http->responses_5xx++;
		svc_breaker(st->bsvc, st->ep_i, !fail5, now_of(s->w), "consecutive 5xx responses or failures");
	}
	pthread_mutex_unlock(&s->reg->lock);
	st->resp_head_sent = true;
	if (st->cli_open)
		nghttp2_submit_response(s->ng, st->id, nv, n, end ? NULL : &dp);
	/* the fields are out: the block takes the trailers next */
	st->nrnv = 0;
	st->rhlen = 0;
	mark_dirty(s->w, &s->c);
}

static int cli_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2up *u = arg;
	struct h2st *st;

	if (f->hd.type == NGHTTP2_GOAWAY) {
		u->goaway = true; /* streams above last_stream_id are closed by nghttp2 as refused */
		return 0;
	}
	if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
		u->max_streams = nghttp2_session_get_remote_settings(ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
		return 0;
	}
	st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	if (!st)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS) {
		bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

		if (f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
			if (st->status >= 100 && st->status < 200) {
				st->nrnv = st->rhlen = 0; /* interim: not forwarded */
				return 0;
			}
			send_response_head(st, end);
			if (end)
				st->resp_end = true;
		} else if (end) {
			/* trailers: after the body */
			st->trailers = st->nrnv > 0;
			st->resp_end = true;
			if (st->cli_open)
				nghttp2_session_resume_data(st->s->ng, st->id);
		}
		mark_dirty(st->s->w, &st->s->c);
	} else if (f->hd.type == NGHTTP2_DATA && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		st->resp_end = true;
		if (st->cli_open)
			nghttp2_session_resume_data(st->s->ng, st->id);
		mark_dirty(st->s->w, &st->s->c);
	}
	return 0;
}

static int cli_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *arg)
{
	struct h2st *st = nghttp2_session_get_stream_user_data(ng, id);
	struct h2up *u = arg;

	(void)flags;
	if (!st || !st->cli_open) {
		nghttp2_session_consume(u->ng, id, len); /* nobody to give it to */
		return 0;
	}
	if (bq_add(&st->resp, data, len) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->last_io = now_of(st->s->w);
	nghttp2_session_resume_data(st->s->ng, st->id);
	mark_dirty(st->s->w, &st->s->c);
	return 0;
}

static int cli_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t err, void *arg)
{
	struct h2st *st = nghttp2_session_get_stream_user_data(ng, id);

	(void)arg;
	if (!st)
		return 0;
	st_detach_up(st);
	if (!st->resp_head_sent) {
		attempt_failed(st, false,
			       err == NGHTTP2_REFUSED_STREAM ? "the endpoint refused the stream"
							     : "the endpoint reset the stream before answering");
	} else if (!st->resp_end) {
		/* cut mid-response: the client's stream is reset too */
		if (st->cli_open)
			nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id,
						  err ? err : NGHTTP2_INTERNAL_ERROR);
		mark_dirty(st->s->w, &st->s->c);
	}
	st_maybe_free(st);
	return 0;
}

/* Request body towards the endpoint: what the client sent, as the window allows. */
static ssize_t req_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
			nghttp2_data_source *src, void *arg)
{
	/*
	 * The stream's user data, not src->ptr: a stream the client side gave up
	 * (user data NULL, RST_STREAM queued) may still be asked for data before
	 * the reset goes out, after its struct h2st is gone.
	 */
	struct h2st *st = nghttp2_session_get_stream_user_data(ng, id);
	struct h2s *s;
	size_t avail, n;

	(void)src;
	(void)arg;
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream, which is going anyway */
	s = st->s;
	avail = bq_len(&st->req) - st->req_sent;
	n = avail < length ? avail : length;
	if (n) {
		st->last_io = now_of(s->w);
		memcpy(buf, st->req.p + st->req.off + st->req_sent, n);
		st->req_sent += n;
		/* the client may send as much again (once, however many attempts) */
		if (st->req_sent > st->req_consumed && st->cli_open) {
			nghttp2_session_consume(s->ng, st->id, st->req_sent - st->req_consumed);
			st->req_consumed = st->req_sent;
			mark_dirty(s->w, &s->c);
		}
		/* past what a retry may resend: drop what is sent */
		if (!st->retryable && st->req_sent == bq_len(&st->req)) {
			st->req.off = st->req.len = 0;
			st->req_sent = 0;
			st->req_consumed = 0;
		}
		return (ssize_t)n;
	}
	if (st->req_end) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	return NGHTTP2_ERR_DEFERRED;
}

static struct h2up *up_new(struct h2_worker *w, struct svc_ep *ep, const struct weft_sockaddr *node,
			   const struct tls_ctx *ctx, const char *svc_name, uint32_t mark, uint32_t connect_ms,
			   uint32_t idle_ms)
{
	const struct weft_sockaddr *dst = node ? node : &ep->addr;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW },
	};
	struct h2up *u = calloc(1, sizeof(*u));
	int fd;

	if (!u)
		return NULL;
	u->c.is_up = true;
	u->idle_timeout_ms = idle_ms;
	list_init(&u->c.dirty);
	list_init(&u->streams);
	u->w = w;
	u->fd = -1;
	u->max_streams = H2_MAX_UPSTREAM_STREAMS;
	u->idle_since = ev_now(w->loop);
	if (nghttp2_session_client_new2(&u->ng, h2g.cli, u, h2g.cli_opt) != 0) {
		free(u);
		return NULL;
	}
	nghttp2_submit_settings(u->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
	nghttp2_session_set_local_window_size(u->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
	if (node) {
		struct preamble pre;
		char a[ADDR_STRLEN];
		int n;

		u->nl = malloc(sizeof(*u->nl));
		if (!u->nl) {
			nghttp2_session_del(u->ng);
			free(u);
			return NULL;
		}
		memset(&pre, 0, sizeof(pre));
		pre.target = ep->addr;
		pre.proto = PREAMBLE_PROTO_HTTP2;
		if (preamble_service_name_ok(svc_name))
			snprintf(pre.service, sizeof(pre.service), "%s", svc_name);
		n = preamble_encode(u->nl->prefix, sizeof(u->nl->prefix), &pre);
		if (n < 0 || nodelink_init(u->nl, u->nl->prefix, (size_t)n, "HTTP/2 to %s (node agent %s)",
					   ep->addr_str, addr_format(node, a, sizeof(a))) < 0) {
			free(u->nl);
			nghttp2_session_del(u->ng);
			free(u);
			return NULL;
		}
		u->ctx = ctx;
		u->node = *node;
	}
	fd = netns_upstream_socket(&dst->sa, mark);
	if (fd < 0 || (connect(fd, &dst->sa, dst->len) < 0 && errno != EINPROGRESS)) {
		if (fd >= 0)
			close(fd);
		free(u->nl);
		nghttp2_session_del(u->ng);
		free(u);
		return NULL;
	}
	sock_set_nodelay(fd);
	u->fd = fd;
	pthread_mutex_lock(&w->reg->lock);
	u->ep = svc_ep_ref_locked(ep);
	pthread_mutex_unlock(&w->reg->lock);
	ev_io_init(&u->io, up_io_cb, fd, EV_WRITE);
	u->io.data = u;
	ev_io_start(w->loop, &u->io);
	u->t0 = ev_now(w->loop);
	ev_timer_init(&u->ct, up_ct_cb, connect_ms ? connect_ms / 1000.0 : 10.0, 0.);
	u->ct.data = u;
	ev_timer_start(w->loop, &u->ct);
	list_add(&u->link, &w->ups);
	h2_tick_arm(w);
	return u;
}

/* A connection to ep with room for one more stream, or a new one. */
/* A connection to ep (through node, as ctx's identity) with room for one more stream, or a new one. */
static struct h2up *up_get(struct h2_worker *w, struct svc_ep *ep, const struct weft_sockaddr *node,
			   const struct tls_ctx *ctx, const char *svc_name, uint32_t mark, uint32_t connect_ms,
			   uint32_t idle_ms)
{
	struct h2up *u;

	list_for_each_entry(u, &w->ups, link)
		if (u->ep == ep && !u->dead && !u->goaway && u->active < u->max_streams && u->ctx == ctx &&
		    (!node || addr_equal(&u->node, node)))
			return u;
	return up_new(w, ep, node, ctx, svc_name, mark, connect_ms, idle_ms);
}

/* Does the route remove this field, or set it (HTTP/2 names are lower-case already)? */
static bool route_edits(const struct h1r_route *r, const char *name, size_t len)
{
	size_t i;

	for (i = 0; r && i < r->n_rm; i++)
		if (r->rm[i].nlen == len && !memcmp(r->rm[i].name, name, len))
			return true;
	for (i = 0; r && i < r->n_add; i++)
		if (r->add[i].nlen == len && !memcmp(r->add[i].name, name, len))
			return true;
	return false;
}

/* The request's fields for the endpoint: pseudo-fields first, then the client's, with grpc-timeout renewed. */
static size_t build_request_nv(struct h2st *st, nghttp2_nv *nv, size_t cap, char *tbuf, size_t tcap, char *tp, char *b3)
{
	size_t n = 0, i;

	nv[n++] = (nghttp2_nv){ (uint8_t *)":method", (uint8_t *)(uintptr_t)st->method, 7, st->method_len, 0 };
	nv[n++] = (nghttp2_nv){ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 };
	if (st->authority)
		nv[n++] = (nghttp2_nv){ (uint8_t *)":authority", (uint8_t *)(uintptr_t)st->authority, 10,
					st->authority_len, 0 };
	nv[n++] = (nghttp2_nv){ (uint8_t *)":path", (uint8_t *)(uintptr_t)st->path, 5, st->path_len, 0 };
	for (i = 0; i < st->nh && n + 1 < cap; i++) {
		const struct h1_header *h = &st->hv[i];

		if (h->name_len == 12 && !memcmp(h->name, "grpc-timeout", 12))
			continue; /* renewed below with what is left */
		if ((h->name_len == 11 && !memcmp(h->name, "traceparent", 11)) ||
		    (h->name_len == 2 && !memcmp(h->name, "b3", 2)))
			continue; /* rewritten below: our attempt's span is the endpoint's parent */
		if (route_edits(st->route, h->name, h->name_len))
			continue; /* the route removes it, or sets its own value */
		nv[n++] = (nghttp2_nv){ (uint8_t *)(uintptr_t)h->name, (uint8_t *)(uintptr_t)h->value, h->name_len,
					h->value_len, NGHTTP2_NV_FLAG_NONE };
	}
	for (i = 0; st->route && i < st->route->n_add && n + 1 < cap; i++) {
		const struct h1r_kv *kv = &st->route->add[i];

		nv[n++] = (nghttp2_nv){ (uint8_t *)kv->name, (uint8_t *)kv->value, kv->nlen, kv->vlen,
					NGHTTP2_NV_FLAG_NONE };
	}
	if (n + 2 < cap &&
	    trace_format_traceparent(tp, H2_TP_MAX, st->tc.trace_id, st->attempt_span, st->tc.sampled) > 0)
		nv[n++] = mknv_once("traceparent", tp);
	if (st->b3_in && n + 2 < cap && trace_format_b3(b3, H2_B3_MAX, &st->tc, st->attempt_span, st->span_id) > 0)
		nv[n++] = mknv_once("b3", b3);
	if (st->deadline_ns && st->grpc && n < cap) {
		int64_t left = st->deadline_ns - wall_ns();

		if (deadline_format_grpc_timeout(tbuf, tcap, left > 0 ? left : 0) > 0)
			nv[n++] = mknv_once("grpc-timeout", tbuf);
	}
	return n;
}

static void attempt_start(struct h2st *st)
{
	struct h2s *s = st->s;
	struct registry *reg = s->reg;
	struct svc *b = st->bsvc;
	struct svc_ep *ep = NULL;
	const struct weft_sockaddr *node = NULL;
	struct tls_ctx *ctx = NULL;
	nghttp2_nv nv[H2_MAX_HEADERS + 8];
	nghttp2_data_provider dp = { .source.ptr = st, .read_callback = req_read };
	char tbuf[32], tp[H2_TP_MAX], b3[H2_B3_MAX];
	struct h2up *u;
	int32_t uid;
	size_t n;
	int i;

	st->attempt++;
	st->attempt_start = now_of(s->w);
	st->attempt_span = trace_random_u64();
	st->attempt_wall_us = wall_ns() / 1000;
	st->status = 0;
	st->grpc_status = -1;
	st->nrnv = st->rhlen = 0;
	pthread_mutex_lock(&reg->lock);
	i = bal_pick(&b->bal, st->tried, now_of(s->w));
	if (i < 0 && st->tried) {
		st->tried = 0;
		i = bal_pick(&b->bal, 0, now_of(s->w));
	}
	if (i >= 0 && !h1_ep_get_locked(b->eps[i]))
		i = -1;
	if (i >= 0) {
		if (i < 64)
			st->tried |= 1ull << i;
		ep = b->eps[i];
		ep->bal.active++;
		ep->http->requests++;
		st->ep_i = i;
		if (b->remote[i])
			node = &b->nodes[i];
		memcpy(s->ep_str, ep->addr_str, sizeof(s->ep_str));
	}
	pthread_mutex_unlock(&reg->lock);
	if (!ep) {
		st_fail(st, 503, GRPC_UNAVAILABLE, "no endpoint available");
		return;
	}
	if (node) {
		/* as the calling workload: its identity's context (the bundle outlives the session) */
		ctx = s->mtls ? mtls_client_ctx(s->mtls, s->orig.cgroup_id) : NULL;
		if (!ctx) {
			attempt_failed(st, true, "an endpoint on another node needs the tls group");
			return;
		}
	}
	u = up_get(s->w, ep, node, ctx, b->name, s->l7->mark, s->l7->connect_timeout_ms, s->l7->pool_idle_timeout_ms);
	if (!u) {
		attempt_failed(st, true, "cannot open a connection to the endpoint");
		return;
	}
	n = build_request_nv(st, nv, sizeof(nv) / sizeof(nv[0]), tbuf, sizeof(tbuf), tp, b3);
	uid = nghttp2_submit_request(u->ng, NULL, nv, n, st->req_end && !bq_len(&st->req) ? NULL : &dp, st);
	if (uid < 0) {
		attempt_failed(st, false, nghttp2_strerror(uid));
		return;
	}
	st->up = u;
	st->uid = uid;
	st->up_open = true;
	u->active++;
	u->idle_since = 0;
	list_add_tail(&st->ulink, &u->streams);
	mark_dirty(s->w, &u->c);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct h2st *st = t->data;
	struct h2s *s = st->s;

	(void)loop;
	(void)revents;
	pthread_mutex_lock(&s->reg->lock);
	if (st->route)
		st->route->stat->timeouts++;
	pthread_mutex_unlock(&s->reg->lock);
	if (st->up) {
		nghttp2_submit_rst_stream(st->up->ng, NGHTTP2_FLAG_NONE, st->uid, NGHTTP2_CANCEL);
		mark_dirty(s->w, &st->up->c);
		nghttp2_session_set_stream_user_data(st->up->ng, st->uid, NULL);
		st_detach_up(st);
	}
	if (!st->resp_head_sent)
		st_fail(st, 504, GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
	else if (st->cli_open) {
		nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
		mark_dirty(s->w, &s->c);
	}
	st_maybe_free(st);
	w_run(s->w);
}

/* ---- the client side ---------------------------------------------------------------------- */

static ssize_t resp_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *arg)
{
	struct h2st *st = nghttp2_session_get_stream_user_data(ng, id); /* as req_read */
	size_t avail, n;

	(void)src;
	(void)arg;
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	avail = bq_len(&st->resp);
	n = avail < length ? avail : length;
	if (n) {
		st->last_io = now_of(st->s->w);
		memcpy(buf, st->resp.p + st->resp.off, n);
		st->resp.off += n;
		if (st->resp.off == st->resp.len)
			st->resp.off = st->resp.len = 0;
		if (st->up) {
			nghttp2_session_consume(st->up->ng, st->uid, n);
			mark_dirty(st->s->w, &st->up->c);
		}
		return (ssize_t)n;
	}
	if (!st->resp_end)
		return NGHTTP2_ERR_DEFERRED;
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (st->trailers && st->nrnv) {
		nghttp2_nv nv[H2_MAX_HEADERS];

		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		nghttp2_submit_trailer(ng, id, nv, rh_nv(st, nv, H2_MAX_HEADERS));
		st->trailers = false;
	}
	return 0;
}

static const char *field_of(struct h2st *st, const char *lc, size_t *len)
{
	size_t i, n = strlen(lc);

	for (i = 0; i < st->nh; i++)
		if (st->hv[i].name_len == n && !memcmp(st->hv[i].name, lc, n)) {
			*len = st->hv[i].value_len;
			return st->hv[i].value;
		}
	return NULL;
}

/* A complete request head: route, admission, deadline, first attempt. */
static void request_begin(struct h2st *st)
{
	struct h2s *s = st->s;
	struct h1_svc *l = s->l7;
	struct h1_request q;
	const char *v;
	size_t vl, i;
	bool shed;

	st->start = st->last_io = now_of(s->w);
	st->wall_start_us = wall_ns() / 1000;
	st->started = true;
	if (!st->method || !st->path || !st->scheme) {
		if (st->method && st->method_len == 7 && !memcmp(st->method, "CONNECT", 7))
			st_fail(st, 405, GRPC_UNIMPLEMENTED, "CONNECT is not proxied by an HTTP/2 service");
		else
			st_fail(st, 400, GRPC_INTERNAL, "a request needs :method, :scheme and :path");
		return;
	}
	v = field_of(st, "content-type", &vl);
	st->grpc = v && grpc_is_content_type(v, vl);
	read_trace(st);
	memset(&q, 0, sizeof(q));
	q.method = st->method;
	q.method_len = st->method_len;
	q.path = st->path;
	q.path_len = st->path_len;
	q.host = st->authority;
	q.host_len = st->authority_len;
	q.headers = st->hv;
	q.n_headers = st->nh;
	st->route = &l->def;
	for (i = 0; i < l->n_routes; i++)
		if (h1r_route_matches(&l->routes[i], &q)) {
			st->route = &l->routes[i];
			break;
		}
	/* a retry resends the body: only while it is whole (gRPC calls are retried like idempotent ones) */
	st->retryable = true;
	pthread_mutex_lock(&s->reg->lock);
	shed = s->svc->stat->http->inflight >= l->max_requests;
	if (shed) {
		s->svc->stat->http->shed++;
	} else {
		struct h1r_route *r = st->route;

		s->svc->stat->http->inflight++;
		st->counted = true;
		retry_budget_request(&s->svc->stat->http->budget, now_of(s->w));
		if (!r->n_be) {
			st->bsvc = s->svc;
		} else {
			int k = h1r_backend_pick(r);

			st->bsvc = k < 0 ? NULL
					 : reg_find_name_locked(s->reg, r->be[k].service, (uint32_t)r->be[k].index);
		}
		if (st->bsvc)
			st->bsvc->refs++;
	}
	pthread_mutex_unlock(&s->reg->lock);
	if (shed) {
		st_fail(st, 503, GRPC_UNAVAILABLE, "overloaded (limits.max_requests)");
		return;
	}
	if (!st->bsvc) {
		st_fail(st, 503, GRPC_UNAVAILABLE, "no backend service");
		return;
	}
	/* deadline: the route's timeout, tightened by grpc-timeout */
	{
		int64_t now = wall_ns(), t = 0, g;

		if (st->route->timeout_ms)
			t = now + (int64_t)st->route->timeout_ms * 1000000;
		v = field_of(st, "grpc-timeout", &vl);
		if (v && deadline_parse_grpc_timeout(v, vl, &g) == 0 && (!t || now + g < t))
			t = now + g;
		if (t) {
			double left = (double)(t - now) / 1e9;

			st->deadline_ns = t;
			ev_timer_set(&st->deadline, left > 0 ? left : 0., 0.);
			ev_timer_start(s->w->loop, &st->deadline);
		}
	}
	attempt_start(st);
}

static int srv_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2s *s = arg;
	struct h2st *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->s = s;
	st->id = f->hd.stream_id;
	st->cli_open = true;
	st->ep_i = -1;
	atomic_fetch_add_explicit(&h2_streams_total, 1, memory_order_relaxed);
	st->grpc_status = -1;
	list_init(&st->ulink);
	ev_timer_init(&st->deadline, deadline_cb, 1., 0.);
	st->deadline.data = st;
	list_add_tail(&st->slink, &s->streams);
	s->n_streams++;
	s->idle_since = 0;
	nghttp2_session_set_stream_user_data(ng, st->id, st);
	return 0;
}

static int srv_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
			 const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct h2s *s = arg;
	struct h2st *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
	size_t need = nlen + vlen + 2;

	(void)flags;
	if (!st || st->head_done)
		return 0; /* request trailers: not forwarded yet */
	if (st->too_big)
		return 0;
	if (nlen && name[0] != ':')
		st->nfields++;
	if (st->hlen + need > s->l7->lim.max_header_bytes || st->nfields > H2_MAX_HEADERS) {
		st->too_big = true; /* an HPACK bomb or just too much: 431 once the block is in */
		return 0;
	}
	if (st->hlen + need > st->hcap) {
		size_t cap = st->hcap ? st->hcap * 2 : BLK_MIN;

		while (cap < st->hlen + need)
			cap *= 2;
		/* fields are indexed once the block is complete: no pointers into hb yet */
		{
			char *p = st->hb ? realloc(st->hb, cap) : blk_get(cap);

			if (!p)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			st->hb = p;
			st->hcap = cap;
		}
	}
	memcpy(st->hb + st->hlen, name, nlen);
	st->hb[st->hlen + nlen] = '\0';
	memcpy(st->hb + st->hlen + nlen + 1, value, vlen);
	st->hb[st->hlen + nlen + 1 + vlen] = '\0';
	st->hlen += need;
	return 0;
}

/*
 * The header block is complete: it moves from its lib/blk block into one
 * allocation of its exact size followed by its index, hv (pseudo-fields
 * apart), which the stream keeps to its end (routing, retries, tap).
 * 0, or -ENOMEM (the block stays where it was).
 */
static int index_head(struct h2st *st)
{
	size_t off = 0, at = (st->hlen + _Alignof(struct h1_header) - 1) & ~(_Alignof(struct h1_header) - 1);
	char *p = malloc(at + st->nfields * sizeof(struct h1_header) + 1);

	if (!p)
		return -ENOMEM;
	if (st->hlen)
		memcpy(p, st->hb, st->hlen);
	blk_put(st->hb, st->hcap);
	st->hb = p;
	st->hcap = 0;
	st->hv = (struct h1_header *)(void *)(p + at);
	while (off < st->hlen) {
		const char *n = st->hb + off, *v;
		size_t nl = strlen(n), vl;

		v = n + nl + 1;
		vl = strlen(v);
		off += nl + vl + 2;
		if (nl == 7 && !memcmp(n, ":method", 7))
			st->method = v, st->method_len = vl;
		else if (nl == 5 && !memcmp(n, ":path", 5))
			st->path = v, st->path_len = vl;
		else if (nl == 10 && !memcmp(n, ":authority", 10))
			st->authority = v, st->authority_len = vl;
		else if (nl == 7 && !memcmp(n, ":scheme", 7))
			st->scheme = v, st->scheme_len = vl;
		else if (n[0] != ':' && st->nh < st->nfields)
			st->hv[st->nh++] = (struct h1_header){ n, nl, v, vl };
	}
	if (!st->authority) {
		size_t hl;
		const char *h = field_of(st, "host", &hl);

		if (h)
			st->authority = h, st->authority_len = hl;
	}
	return 0;
}

static int srv_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2s *s = arg;
	struct h2st *st = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);

	if (!st)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !st->head_done) {
		st->head_done = true;
		if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
			st->req_end = true;
		if (st->too_big) {
			pthread_mutex_lock(&s->reg->lock);
			s->svc->stat->http->rejected[H1_REJECT_431]++;
			pthread_mutex_unlock(&s->reg->lock);
			st->start = now_of(s->w);
			st_fail(st, 431, GRPC_RESOURCE_EXHAUSTED, "request header fields too large");
			return 0;
		}
		if (index_head(st) < 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
		request_begin(st);
		return 0;
	}
	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		st->req_end = true;
		if (st->up) {
			nghttp2_session_resume_data(st->up->ng, st->uid);
			mark_dirty(s->w, &st->up->c);
		}
	}
	return 0;
}

static int srv_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *arg)
{
	struct h2s *s = arg;
	struct h2st *st = nghttp2_session_get_stream_user_data(ng, id);

	(void)flags;
	/* nobody will read it: no request, an answer of weft's, or the endpoint's answer is complete and its stream gone */
	if (!st || st->errored || !st->head_done || (st->resp_end && !st->up)) {
		nghttp2_session_consume(ng, id, len);
		return 0;
	}
	if (bq_add(&st->req, data, len) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->last_io = now_of(s->w);
	if (st->retryable && bq_len(&st->req) > s->l7->max_retry_body)
		st->retryable = false; /* too big to keep for a retry */
	if (st->up) {
		nghttp2_session_resume_data(st->up->ng, st->uid);
		mark_dirty(s->w, &st->up->c);
	}
	return 0;
}

static int srv_on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	struct h2s *s = arg;

	(void)ng;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		uint32_t e = f->goaway.error_code;

		if (!s->terminated)
			atomic_fetch_add(&h2_goaways[e < H2_ERR_CODES ? e : H2_ERR_CODES - 1], 1);
		if (e != NGHTTP2_NO_ERROR && !s->terminated)
			log_info_rl("service %s: HTTP/2 client (pid %u): GOAWAY %s (%s)", s->svc->name, s->orig.pid,
				    nghttp2_http2_strerror(e),
				    e == NGHTTP2_INTERNAL_ERROR
					    ? "a flood of stream resets (CVE-2023-44487) or frames, or "
					      "weft could not go on"
					    : "a protocol error");
		s->goaway_sent = true;
	}
	return 0;
}

static int srv_on_stream_close(nghttp2_session *ng, int32_t id, uint32_t err, void *arg)
{
	struct h2st *st = nghttp2_session_get_stream_user_data(ng, id);

	(void)err;
	(void)arg;
	if (!st)
		return 0;
	st->cli_open = false;
	/*
	 * Request bytes received and never passed on (the stream was answered
	 * by weft, failed, or was reset first) go back to the client's
	 * connection window: req_read gives them back only as it sends them.
	 */
	if (bq_len(&st->req) > st->req_consumed) {
		nghttp2_session_consume_connection(ng, bq_len(&st->req) - st->req_consumed);
		st->req_consumed = bq_len(&st->req);
	}
	st_account(st);
	if (st->up) {
		/* the client is gone (or done): the upstream stream ends too */
		if (!st->resp_end)
			nghttp2_submit_rst_stream(st->up->ng, NGHTTP2_FLAG_NONE, st->uid, NGHTTP2_CANCEL);
		nghttp2_session_set_stream_user_data(st->up->ng, st->uid, NULL);
		mark_dirty(st->s->w, &st->up->c);
		st_detach_up(st);
	}
	st_maybe_free(st);
	return 0;
}

static void s_free(struct h2s *s)
{
	struct registry *reg = s->reg;

	while (!list_empty(&s->streams)) {
		struct h2st *st = list_first_entry(&s->streams, struct h2st, slink);

		st->cli_open = false;
		st_account(st);
		if (st->up) {
			nghttp2_submit_rst_stream(st->up->ng, NGHTTP2_FLAG_NONE, st->uid, NGHTTP2_CANCEL);
			nghttp2_session_set_stream_user_data(st->up->ng, st->uid, NULL);
			mark_dirty(s->w, &st->up->c);
			st_detach_up(st);
		}
		st_maybe_free(st);
	}
	if (!list_empty(&s->c.dirty))
		list_del(&s->c.dirty);
	ev_io_stop(s->w->loop, &s->io);
	close(s->fd);
	nghttp2_session_del(s->ng);
	ob_free(&s->ob);
	pthread_mutex_lock(&reg->lock);
	list_del(&s->link);
	reg_conn_end_locked(reg, s->svc, s->orig.cgroup_id);
	reg->ctr.completed++;
	mtls_unref(s->mtls);
	svc_unref_locked(reg, s->svc);
	pthread_mutex_unlock(&reg->lock);
	free(s);
}

static void s_flush(struct h2s *s)
{
	int ev = 0;

	if (s->dead)
		return;
	if (ng_flush(s->ng, &s->ob, s->fd, &s->bytes_out, NULL, NULL) < 0) {
		s->dead = true;
		s_free(s);
		return;
	}
	if (nghttp2_session_want_read(s->ng))
		ev |= EV_READ;
	if (ob_pending(&s->ob) || nghttp2_session_want_write(s->ng))
		ev |= EV_WRITE;
	if (!ev || (s->goaway_sent && list_empty(&s->streams) && !ob_pending(&s->ob))) {
		s->dead = true;
		s_free(s);
		return;
	}
	io_arm(s->w->loop, &s->io, ev);
}

static void s_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct h2s *s = io->data;
	struct h2_worker *w = s->w;
	char buf[H2_READ];
	ssize_t n, r;

	(void)loop;
	if (revents & EV_READ) {
		n = recv(s->fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			s->dead = true;
			s_free(s);
			w_run(w);
			return;
		}
		if (n > 0)
			s->bytes_in += (uint64_t)n;
		if (n > 0 && (r = nghttp2_session_mem_recv(s->ng, (const uint8_t *)buf, (size_t)n)) < 0) {
			/*
			 * fatal (a flood of PINGs, SETTINGS or CONTINUATIONs, a broken
			 * frame): counted and logged here, since the GOAWAY may not get
			 * out (a peer that does not read is what a flood looks like)
			 */
			uint32_t code = r == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS || r == NGHTTP2_ERR_FLOODED
						? NGHTTP2_ENHANCE_YOUR_CALM
						: NGHTTP2_PROTOCOL_ERROR;

			s->terminated = true;
			atomic_fetch_add(&h2_goaways[code], 1);
			log_info_rl("service %s: HTTP/2 client (pid %u): connection ended: %s (%s)", s->svc->name,
				    s->orig.pid, nghttp2_strerror((int)r),
				    code == NGHTTP2_ENHANCE_YOUR_CALM ? "a flood: GOAWAY ENHANCE_YOUR_CALM"
								      : "GOAWAY PROTOCOL_ERROR");
			nghttp2_session_terminate_session(s->ng, code);
			ng_flush(s->ng, &s->ob, s->fd, &s->bytes_out, NULL, NULL);
			s->dead = true;
			s_free(s);
			w_run(w);
			return;
		}
	}
	mark_dirty(w, &s->c); /* flushed (and its watcher set) with everything else this iteration */
}

/* ---- timeouts ----------------------------------------------------------------------------------------- */

static void h2_tick_arm(struct h2_worker *w)
{
	if (!ev_is_active(&w->tick) && (!list_empty(&w->sessions) || !list_empty(&w->ups)))
		ev_timer_start(w->loop, &w->tick);
}

/* Stalled streams, idle client connections, idle upstream connections. O(streams + connections). */
static void h2_tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct h2_worker *w = t->data;
	double now = ev_now(loop);
	struct h2s *s, *sn;
	struct h2up *u, *un;

	(void)revents;
	list_for_each_entry_safe(s, sn, &w->sessions, link) {
		struct h2st *st, *stn;
		double ka = s->l7->keepalive_idle_ms / 1000.0, si = s->l7->stream_idle_ms / 1000.0;

		list_for_each_entry_safe(st, stn, &s->streams, slink) {
			if (!si || !st->started || !st->cli_open || now - st->last_io < si)
				continue;
			log_debug("service %s: HTTP/2 stream %d: nothing moved for %.0f s (http.stream_idle_ms)",
				  s->svc->name, st->id, now - st->last_io);
			if (st->up) {
				nghttp2_submit_rst_stream(st->up->ng, NGHTTP2_FLAG_NONE, st->uid, NGHTTP2_CANCEL);
				nghttp2_session_set_stream_user_data(st->up->ng, st->uid, NULL);
				mark_dirty(w, &st->up->c);
				st_detach_up(st);
			}
			if (!st->resp_head_sent)
				st_fail(st, 504, GRPC_DEADLINE_EXCEEDED, "the stream stalled (http.stream_idle_ms)");
			else
				nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
			st->last_io = now;
			mark_dirty(w, &s->c);
		}
		if (ka && !s->n_streams && s->idle_since && now - s->idle_since >= ka && !s->goaway_sent) {
			nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
					      NGHTTP2_NO_ERROR, NULL, 0);
			s->goaway_sent = true;
			pthread_mutex_lock(&w->reg->lock);
			s->svc->stat->http->idle_closed[H1_IDLE_KEEPALIVE]++;
			pthread_mutex_unlock(&w->reg->lock);
			mark_dirty(w, &s->c);
		}
	}
	list_for_each_entry_safe(u, un, &w->ups, link)
		if (!u->active && u->idle_since && u->idle_timeout_ms &&
		    now - u->idle_since >= u->idle_timeout_ms / 1000.0)
			up_dead(u, "idle (http.pool_idle_timeout_ms)");
	w_run(w);
	if (list_empty(&w->sessions) && list_empty(&w->ups))
		ev_timer_stop(loop, t);
}

/* ---- setup ------------------------------------------------------------------------------------------ */

static int h2_global_init(void)
{
	if (h2g.ok)
		return h2g.ok > 0 ? 0 : -1;
	h2g.ok = -1;
	if (nghttp2_session_callbacks_new(&h2g.srv) || nghttp2_session_callbacks_new(&h2g.cli) ||
	    nghttp2_option_new(&h2g.srv_opt) || nghttp2_option_new(&h2g.cli_opt))
		return -1;
	nghttp2_session_callbacks_set_on_begin_headers_callback(h2g.srv, srv_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(h2g.srv, srv_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(h2g.srv, srv_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(h2g.srv, srv_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(h2g.srv, srv_on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(h2g.srv, srv_on_frame_send);
	nghttp2_session_callbacks_set_on_header_callback(h2g.cli, cli_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(h2g.cli, cli_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(h2g.cli, cli_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(h2g.cli, cli_on_stream_close);
	nghttp2_option_set_no_auto_window_update(h2g.srv_opt, 1);
	nghttp2_option_set_no_auto_window_update(h2g.cli_opt, 1);
	nghttp2_option_set_stream_reset_rate_limit(h2g.srv_opt, H2_RST_BURST, H2_RST_RATE);
	nghttp2_option_set_max_continuations(h2g.srv_opt, H2_MAX_CONTINUATIONS);
	nghttp2_option_set_max_continuations(h2g.cli_opt, H2_MAX_CONTINUATIONS);
	h2g.ok = 1;
	return 0;
}

void h2_worker_init(struct h2_worker *w, struct ev_loop *loop, unsigned id, struct registry *reg, struct zipkin *zipkin)
{
	memset(w, 0, sizeof(*w));
	w->loop = loop;
	w->zipkin = zipkin;
	w->id = id;
	w->reg = reg;
	list_init(&w->sessions);
	list_init(&w->ups);
	list_init(&w->dirty_list);
	ev_prepare_init(&w->flush, w_flush_cb);
	w->flush.data = w;
	ev_timer_init(&w->tick, h2_tick_cb, H2_TICK_S, H2_TICK_S);
	w->tick.data = w;
}

void h2_start(struct h2_worker *w, int fd, struct svc *svc, const struct weft_orig *orig,
	      const struct weft_sockaddr *peer)
{
	struct registry *reg = w->reg;
	struct h2s *s = NULL;
	nghttp2_settings_entry iv[3];

	if (h2_global_init() == 0)
		s = calloc(1, sizeof(*s));
	if (!s) {
		pthread_mutex_lock(&reg->lock);
		reg_conn_end_locked(reg, svc, orig->cgroup_id);
		svc_unref_locked(reg, svc);
		pthread_mutex_unlock(&reg->lock);
		sock_reset_close(fd);
		return;
	}
	s->w = w;
	s->reg = reg;
	s->svc = svc;
	s->l7 = svc->http;
	s->orig = *orig;
	s->client = *peer;
	s->fd = fd;
	pthread_mutex_lock(&reg->lock);
	s->mtls = mtls_ref(reg->mtls);
	pthread_mutex_unlock(&reg->lock);
	list_init(&s->c.dirty);
	list_init(&s->streams);
	if (nghttp2_session_server_new2(&s->ng, h2g.srv, s, h2g.srv_opt) != 0) {
		pthread_mutex_lock(&reg->lock);
		mtls_unref(s->mtls);
		reg_conn_end_locked(reg, svc, orig->cgroup_id);
		svc_unref_locked(reg, svc);
		pthread_mutex_unlock(&reg->lock);
		sock_reset_close(fd);
		free(s);
		return;
	}
	sock_set_nodelay(fd);
	atomic_fetch_add_explicit(&h2_conns_total, 1, memory_order_relaxed);
	iv[0] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS };
	iv[1] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW };
	iv[2] = (nghttp2_settings_entry){ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
					  (uint32_t)s->l7->lim.max_header_bytes };
	nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, 3);
	nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
	s->started = ev_time();
	pthread_mutex_lock(&reg->lock);
	list_add(&s->link, &w->sessions);
	pthread_mutex_unlock(&reg->lock);
	ev_io_init(&s->io, s_io_cb, fd, EV_READ);
	s->io.data = s;
	ev_io_start(w->loop, &s->io);
	s->idle_since = ev_now(w->loop);
	h2_tick_arm(w);
	if (w->draining) {
		nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
		s->goaway_sent = true;
	}
	mark_dirty(w, &s->c);
	w_run(w);
}

void h2_worker_drain(struct h2_worker *w)
{
	struct h2s *s;

	w->draining = true;
	list_for_each_entry(s, &w->sessions, link)
		if (!s->goaway_sent) {
			nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
					      NGHTTP2_NO_ERROR, NULL, 0);
			s->goaway_sent = true;
			mark_dirty(w, &s->c);
		}
	w_run(w);
}

void h2_worker_abort(struct h2_worker *w)
{
	while (!list_empty(&w->sessions)) {
		struct h2s *s = list_first_entry(&w->sessions, struct h2s, link);

		s->dead = true;
		s_free(s);
	}
	while (!list_empty(&w->ups))
		up_dead(list_first_entry(&w->ups, struct h2up, link), "weftd is stopping");
	list_init(&w->dirty_list);
	ev_prepare_stop(w->loop, &w->flush);
	ev_timer_stop(w->loop, &w->tick);
}

void h2_metrics(struct buf *out)
{
	static const char *const names[H2_ERR_CODES] = {
		"no_error",
		"protocol_error",
		"internal_error",
		"flow_control_error",
		"settings_timeout",
		"stream_closed",
		"frame_size_error",
		"refused_stream",
		"cancel",
		"compression_error",
		"connect_error",
		"enhance_your_calm",
		"inadequate_security",
		"other",
	};
	int i;

	buf_printf(out,
		   "# HELP weft_http2_connections_total HTTP/2 client connections accepted.\n"
		   "# TYPE weft_http2_connections_total counter\nweft_http2_connections_total %llu\n"
		   "# HELP weft_http2_streams_total HTTP/2 streams (requests) clients opened.\n"
		   "# TYPE weft_http2_streams_total counter\nweft_http2_streams_total %llu\n"
		   "# HELP weft_http2_goaways_total GOAWAY frames weft sent to HTTP/2 clients, by error code "
		   "(enhance_your_calm: stream reset or frame floods).\n# TYPE weft_http2_goaways_total counter\n",
		   (unsigned long long)atomic_load(&h2_conns_total),
		   (unsigned long long)atomic_load(&h2_streams_total));
	for (i = 0; i < H2_ERR_CODES; i++)
		buf_printf(out, "weft_http2_goaways_total{code=\"%s\"} %llu\n", names[i],
			   (unsigned long long)atomic_load(&h2_goaways[i]));
}

void h2_worker_foreach(struct h2_worker *w, void (*fn)(void *arg, const struct h2_conn_view *v), void *arg)
{
	struct h2_conn_view v;
	struct h2s *s;

	list_for_each_entry(s, &w->sessions, link) {
		v.orig = &s->orig;
		v.client = &s->client;
		v.svc_name = s->svc->name;
		v.endpoint = s->ep_str;
		v.streams = s->n_streams;
		v.bytes_in = s->bytes_in;
		v.bytes_out = s->bytes_out;
		v.started = s->started;
		fn(arg, &v);
	}
}
