// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * HTTP/1.1 at layer 7 (see h1session.h and docs/http1.md).
 *
 * One struct h1s per client connection, driven by its own libev watchers:
 *
 *   HEAD -> (BODY: buffering a retryable body) -> UPSTREAM (attempt: connect,
 *   send, await the response head; BACKOFF between attempts) -> RESPONSE
 *   (forwarding the body) -> HEAD again (keep-alive, pipelined bytes already
 *   in the buffer) or CLOSING (flush, close); TUNNEL after a 101.
 *
 * Callbacks never free the session under themselves: they set s->dead and
 * the outermost callback frees it on the way out.
 *
 * Memory per session: the request buffer (grows to head limits + the retry
 * body limit, then stops reading), the output buffer towards the client and,
 * per upstream connection, a read buffer and a write buffer. All are freed
 * when empty between requests of an idle keep-alive connection.
 *
 * Upstream connections are plain TCP to a local endpoint, or, for an
 * endpoint on another node, TCP to that node's agent + TLS 1.3 with the
 * calling workload's identity + the preamble naming the endpoint; after the
 * reply "ok" both kinds carry requests alike (up_read/up_flush pick recv/send
 * or tls_read/tls_write). Idle ones wait in a per-endpoint, per-worker pool;
 * a TLS one is only reused for the identity it proved.
 */
#include "http/h1session.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec/deadline.h"
#include "codec/h1route.h"
#include "codec/http1.h"
#include "codec/trace.h"
#include "http/h1svc.h"
#include "http/zipkin.h"
#include "lib/blk.h"
#include "lib/log.h"
#include "lib/obuf.h"
#include "lib/sock.h"
#include "state/membudget.h"
#include "state/service.h"
#include "state/tap.h"
#include "tls/mtls.h"
#include "tls/tls.h"

#define OUT_HIGH (64u * 1024) /* bytes pending towards a side before we stop reading the other */
#define READ_CHUNK H1_READ_CHUNK

/* Bytes of a header array: rounded up to a cached block size when it fits one. */
static size_t hdrs_bytes(size_t max_headers)
{
	size_t n = max_headers * sizeof(struct h1_header);

	return n <= BLK_MIN ? BLK_MIN : n;
}

/* dst = src[0..n), truncated to fit, NUL-terminated. */
static void copy_trunc(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- sessions --------------------------------------------------------------- */

enum h1s_state { S_HEAD, S_BODY, S_UPSTREAM, S_BACKOFF, S_RESPONSE, S_TUNNEL, S_CLOSING };

/*
 * What one exchange needs beyond the session: allocated when a request's
 * first bytes arrive, freed when the connection goes idle, so an idle
 * keep-alive connection is only its struct h1s. Under 1 KiB: glibc's
 * per-thread cache serves it without locking.
 */
struct h1x {
	struct h1_request req;
	struct h1_response resp;
	struct h1_body rbody; /* request body framing */
	struct h1_body sbody; /* response body framing */
	struct trace_ctx tc;
	char method[16], path[128]; /* for spans */
};

struct h1s {
	struct list_head link; /* worker's session list (under reg->lock) */
	struct registry *reg;
	struct h1_worker *w;
	struct svc *svc;   /* the dialled service (ref) */
	struct h1_svc *l7; /* svc->http */
	struct weft_orig orig;
	struct weft_sockaddr client;
	struct mtls *mtls;  /* TLS bundle for endpoints on other nodes (ref; NULL: none) */
	struct mb_acct mem; /* its buffers' share of agent.buffer_memory_mb */
	int cfd;
	ev_io cio;
	ev_timer timer;  /* request deadline; between requests: head timeout or keep-alive idle */
	ev_timer btimer; /* retry back-off */
	ev_timer itimer; /* stream idle (http.stream_idle_ms) while a request is in flight */
	ev_tstamp started;
	ev_tstamp last_io;            /* loop time bytes last moved either way (itimer's reference) */
	uint64_t bytes_in, bytes_out; /* towards the upstream, towards the client */
	bool dead, client_eof, reset_client;
	bool head_timing; /* s->timer runs http.head_timeout_ms for a head (the first one: from accept) */
	bool served;      /* a request has begun on this connection */
	enum h1s_state st;

	struct h1x *x; /* the exchange in progress; NULL while idle */

	/* request bytes: head at ib[0..head_len), body from there */
	char *ib;
	size_t ilen, icap;
	struct h1_header *hdrs;
	size_t head_len, bscan; /* body parsed up to ib[bscan] */
	bool body_done, streaming, body_dropped, has_body;

	/* the exchange */
	struct h1r_route *route;
	struct svc *bsvc;  /* backend service (ref), per request */
	bool counted;      /* in svc->stat->http->inflight */
	bool retry_method; /* idempotent or route.retryable */
	bool sent_continue, close_after, http10;
	unsigned attempt;
	uint64_t tried;
	int ep_i; /* index in bsvc of the attempt's endpoint, -1 none */
	struct h1up *up;
	uint64_t att_sent0;       /* bytes_in when the attempt began: what it wrote is bytes_in - att_sent0 */
	char ep_str[ADDR_STRLEN]; /* the attempt's endpoint, for /conns (written under reg->lock) */
	ev_tstamp req_start, attempt_start, deadline; /* deadline 0: none */
	int64_t wall_start_us, deadline_ns;
	bool had_grpc_timeout, had_l5d;
	uint64_t rng;

	/* trace */
	bool have_parent, b3_in, b3_single;
	uint64_t span_id, attempt_span;
	int64_t attempt_wall_us;

	/* response */
	struct h1_header *rhdrs;
	bool resp_head_sent, dechunk;
	int status;
	struct obuf ob; /* towards the client */
};

static void sess_client_cb(struct ev_loop *loop, ev_io *io, int revents);
static void sess_up_cb(struct ev_loop *loop, ev_io *io, int revents);
static void up_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void sess_advance(struct h1s *s);
static void attempt_start(struct h1s *s);

static inline ev_tstamp now_of(struct h1s *s)
{
	return ev_now(s->w->loop);
}

static int64_t wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- session bookkeeping ---- */

static void sess_list(struct h1s *s)
{
	list_add(&s->link, &s->w->sessions);
}

static void sess_unlist(struct h1s *s)
{
	list_del(&s->link);
}

/* The attempt no longer counts in its endpoint's active requests (lock held). */
static void attempt_release_locked(struct h1s *s)
{
	if (s->ep_i >= 0 && s->bsvc) {
		s->bsvc->eps[s->ep_i]->bal.active--;
		s->ep_i = -1;
	}
}

/* Ends the exchange's hold on shared state (lock held). */
static void exchange_release_locked(struct h1s *s)
{
	attempt_release_locked(s);
	if (s->counted) {
		s->svc->stat->http->inflight--;
		s->counted = false;
	}
	if (s->bsvc) {
		svc_unref_locked(s->reg, s->bsvc);
		s->bsvc = NULL;
	}
}

static void sess_free(struct h1s *s)
{
	struct registry *reg = s->reg;

	ev_io_stop(s->w->loop, &s->cio);
	ev_timer_stop(s->w->loop, &s->timer);
	ev_timer_stop(s->w->loop, &s->btimer);
	ev_timer_stop(s->w->loop, &s->itimer);
	if (s->up)
		h1up_close(s->up);
	s->up = NULL;
	if (s->cfd >= 0) {
		if (s->reset_client)
			sock_reset_close(s->cfd);
		else
			close(s->cfd);
	}
	/* before the service reference goes: its settings size the header arrays */
	mb_acct_close(&s->mem); /* every buffer it charged goes back below (the upstream's too) */
	blk_put(s->ib, s->icap);
	blk_put(s->hdrs, hdrs_bytes(s->l7->max_headers));
	blk_put(s->rhdrs, hdrs_bytes(s->l7->max_headers));
	ob_free(&s->ob);
	free(s->x);
	pthread_mutex_lock(&reg->lock);
	exchange_release_locked(s);
	sess_unlist(s);
	reg_conn_end_locked(reg, s->svc, s->orig.cgroup_id);
	reg->ctr.completed++;
	mtls_unref(s->mtls);
	svc_unref_locked(reg, s->svc);
	pthread_mutex_unlock(&reg->lock);
	free(s);
}

/* ---- responses weft makes itself ---- */

static void reject_count(struct h1s *s, int status)
{
	int k = status == 408   ? H1_REJECT_408
		: status == 414 ? H1_REJECT_414
		: status == 431 ? H1_REJECT_431
		: status == 501 ? H1_REJECT_501
		: status == 505 ? H1_REJECT_505
				: H1_REJECT_400;

	pthread_mutex_lock(&s->reg->lock);
	s->svc->stat->http->rejected[k]++;
	pthread_mutex_unlock(&s->reg->lock);
}

static void finish_exchange(struct h1s *s, bool ok_keepalive);

/*
 * Answers the client with a weft-made error (header weft-error names why) and
 * ends the exchange. An answer with Connection: close ends the connection; so
 * does any error once part of the response was sent (then: reset).
 */
static void respond_error(struct h1s *s, int status, const char *why, bool close_conn)
{
	char head[512];
	int n;

	s->status = status;
	if (s->up) {
		h1up_close(s->up);
		s->up = NULL;
	}
	if (s->resp_head_sent) {
		s->reset_client = true;
		s->dead = true;
		return;
	}
	if (!s->body_done)
		close_conn = true; /* the rest of the body cannot be framed without reading it */
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "weft-error: %s\r\n%s\r\n%s\n",
		     status, h1_status_text(status), strlen(why) + 1, why, close_conn ? "Connection: close\r\n" : "",
		     why);
	if (ob_add(&s->ob, head, (size_t)n) < 0)
		close_conn = true;
	s->resp_head_sent = true;
	s->close_after = s->close_after || close_conn;
	finish_exchange(s, false);
}

/* A request we refuse for its syntax: no exchange started yet. */
static void reject_request(struct h1s *s, int err)
{
	int status = h1_error_status(err);
	char a[ADDR_STRLEN];

	log_debug("service %s: request from %s rejected: %d %s", s->svc->name, addr_format(&s->client, a, sizeof(a)),
		  status, h1_error_reason(err));
	reject_count(s, status);
	s->body_done = false; /* forces Connection: close */
	respond_error(s, status, h1_error_reason(err), true);
}

/* ---- metrics and spans at the end of an exchange ---- */

static void span_submit(struct h1s *s, int kind, uint64_t id, uint64_t parent, int64_t start_us, int64_t dur_us,
			int status, const char *err, const struct svc_ep *ep)
{
	struct trace_span sp;

	if (!s->w->zipkin || !s->x->tc.sampled)
		return;
	memset(&sp, 0, sizeof(sp));
	memcpy(sp.trace_id, s->x->tc.trace_id, 16);
	sp.id = id;
	sp.parent_id = parent;
	sp.start_us = start_us;
	sp.duration_us = dur_us > 0 ? dur_us : 1;
	sp.kind = (uint8_t)kind;
	snprintf(sp.name, sizeof(sp.name), "%s %s", s->x->method, s->route ? s->route->name : "default");
	snprintf(sp.service, sizeof(sp.service), "%s", s->bsvc ? s->bsvc->name : s->svc->name);
	snprintf(sp.route, sizeof(sp.route), "%s", s->route ? s->route->name : "");
	snprintf(sp.method, sizeof(sp.method), "%s", s->x->method);
	snprintf(sp.path, sizeof(sp.path), "%s", s->x->path);
	if (ep) {
		size_t n = strlen(ep->addr_str);

		n = n < sizeof(sp.endpoint) - 1 ? n : sizeof(sp.endpoint) - 1;
		memcpy(sp.endpoint, ep->addr_str, n);
		sp.endpoint[n] = '\0';
	}
	sp.status = (uint16_t)(status > 0 ? status : 0);
	sp.attempt = (uint8_t)(kind == TRACE_KIND_CLIENT ? s->attempt : 0);
	if (err)
		snprintf(sp.error, sizeof(sp.error), "%s", err);
	zipkin_submit(s->w->zipkin, &sp);
}

/* The CLIENT span of the attempt that just ended. */
static void attempt_span_end(struct h1s *s, int status, const char *err)
{
	const struct svc_ep *ep = s->up ? s->up->ep : NULL;

	if (!s->attempt_span)
		return;
	span_submit(s, TRACE_KIND_CLIENT, s->attempt_span, s->span_id, s->attempt_wall_us,
		    (int64_t)((now_of(s) - s->attempt_start) * 1e6), status, err, ep);
	s->attempt_span = 0;
}

/* One finished request for weftctl tap (only while somebody taps: state/tap). */
static void exchange_tap(struct h1s *s, double d)
{
	const struct h1_request *q = &s->x->req;
	struct tap_event ev;
	size_t i;

	memset(&ev, 0, offsetof(struct tap_event, headers));
	ev.wall = (double)s->wall_start_us / 1e6;
	ev.cgroup_id = s->orig.cgroup_id;
	ev.pid = s->orig.pid;
	ev.latency_us = d < 0 ? 0 : d > 4e3 ? UINT32_MAX : (uint32_t)(d * 1e6);
	ev.status = s->status > 0 && s->status < 1000 ? (uint16_t)s->status : 0;
	ev.attempts = (uint16_t)(s->attempt > UINT16_MAX ? UINT16_MAX : s->attempt);
	ev.grpc = -1;
	snprintf(ev.service, sizeof(ev.service), "%s", s->svc->name);
	snprintf(ev.method, sizeof(ev.method), "%s", s->x->method);
	snprintf(ev.endpoint, sizeof(ev.endpoint), "%s", s->ep_str);
	/* the head is still in ib: the exchange ends before the next one is read */
	if (s->ib && q->host)
		copy_trunc(ev.authority, sizeof(ev.authority), q->host, q->host_len);
	if (s->ib && q->path && q->path_len)
		copy_trunc(ev.path, sizeof(ev.path), q->path, q->path_len);
	else
		snprintf(ev.path, sizeof(ev.path), "%s", s->x->path);
	if (tap_want_headers(s->reg->tap) && s->ib && q->headers)
		for (i = 0; i < q->n_headers; i++)
			tap_add_header(&ev, q->headers[i].name, q->headers[i].name_len, q->headers[i].value,
				       q->headers[i].value_len);
	tap_offer(s->reg->tap, &ev);
}

static void exchange_metrics(struct h1s *s)
{
	struct h1_routestat *rs = s->route ? s->route->stat : NULL;
	double d = now_of(s) - s->req_start;
	size_t i;

	if (!rs)
		return;
	pthread_mutex_lock(&s->reg->lock);
	if (s->status >= 100 && s->status <= 599)
		rs->by_class[s->status / 100]++;
	for (i = 0; i < H1_REQ_BUCKETS; i++)
		if (d <= h1_req_bounds[i])
			rs->buckets[i]++;
	rs->count++;
	rs->sum += d;
	pthread_mutex_unlock(&s->reg->lock);
	if (tap_active(s->reg->tap))
		exchange_tap(s, d);
}

/* ---- the exchange ---- */

static void x_init(struct h1x *x)
{
	h1_request_init(&x->req);
	h1_response_init(&x->resp);
	memset(&x->tc, 0, sizeof(x->tc));
	x->method[0] = x->path[0] = '\0';
}

static void reset_request(struct h1s *s)
{
	if (s->x)
		x_init(s->x);
	s->head_timing = false;
	s->head_len = s->bscan = 0;
	s->body_done = s->streaming = s->body_dropped = s->has_body = false;
	s->route = NULL;
	s->retry_method = s->sent_continue = s->http10 = false;
	s->attempt = 0;
	s->tried = 0;
	s->ep_i = -1;
	s->deadline = 0;
	s->deadline_ns = 0;
	s->had_grpc_timeout = s->had_l5d = false;
	s->have_parent = s->b3_in = s->b3_single = false;
	s->span_id = s->attempt_span = 0;
	s->resp_head_sent = s->dechunk = false;
	s->status = 0;
}

/* s->timer fires in ms (0: stopped). */
static void timer_arm(struct h1s *s, uint32_t ms)
{
	ev_timer_stop(s->w->loop, &s->timer);
	if (!ms)
		return;
	ev_timer_set(&s->timer, ms / 1000.0, 0.);
	ev_timer_start(s->w->loop, &s->timer);
}

/*
 * Between requests, with nothing of the next one read: how long the client
 * may stay silent. http.keepalive_idle_ms, tightened by timeouts.idle_ms when
 * that is set (it bounded keep-alive idle before keepalive_idle_ms existed).
 */
static uint32_t keepalive_ms(const struct h1_svc *l)
{
	uint32_t a = l->keepalive_idle_ms, b = l->idle_timeout_ms;

	return !a ? b : !b ? a : a < b ? a : b;
}

static void idle_arm(struct h1s *s)
{
	timer_arm(s, keepalive_ms(s->l7));
}

/* Counts a client connection closed for idling (state H1_IDLE_*). */
static void idle_count(struct h1s *s, int k)
{
	pthread_mutex_lock(&s->reg->lock);
	s->svc->stat->http->idle_closed[k]++;
	pthread_mutex_unlock(&s->reg->lock);
}

/*
 * The exchange is over (response complete, or weft answered). Counts it, and
 * either readies the connection for the next request (pipelined bytes stay in
 * the buffer) or closes it once the output is flushed.
 */
static void finish_exchange(struct h1s *s, bool up_reusable)
{
	size_t end;

	ev_timer_stop(s->w->loop, &s->timer);
	ev_timer_stop(s->w->loop, &s->btimer);
	ev_timer_stop(s->w->loop, &s->itimer);
	if (s->up) {
		if (up_reusable)
			h1up_put(s->up, s->bsvc && s->bsvc->http ? s->bsvc->http : s->l7);
		else
			h1up_close(s->up);
		s->up = NULL;
	}
	if (s->span_id)
		span_submit(s, TRACE_KIND_SERVER, s->span_id, s->have_parent ? s->x->tc.span_id : 0, s->wall_start_us,
			    (int64_t)((now_of(s) - s->req_start) * 1e6), s->status, s->status >= 500 ? "error" : NULL,
			    NULL);
	exchange_metrics(s);
	pthread_mutex_lock(&s->reg->lock);
	exchange_release_locked(s);
	pthread_mutex_unlock(&s->reg->lock);
	if (s->close_after || !s->x->req.keep_alive || !s->body_done || s->w->draining) {
		s->st = S_CLOSING;
		return;
	}
	/* keep-alive: what follows the message is the next request */
	end = s->bscan;
	if (end < s->ilen)
		memmove(s->ib, s->ib + end, s->ilen - end);
	s->ilen -= end;
	reset_request(s);
	s->st = S_HEAD;
	idle_arm(s);
}

static bool method_idempotent(enum h1_method m)
{
	return m == H1_M_GET || m == H1_M_HEAD || m == H1_M_OPTIONS || m == H1_M_TRACE || m == H1_M_PUT ||
	       m == H1_M_DELETE;
}

/* Picks the route's backend service by smooth weighted round-robin; ref taken. Lock held. */
static struct svc *backend_pick_locked(struct h1s *s)
{
	struct registry *reg = s->reg;
	struct h1r_route *r = s->route;
	struct h1r_backend *best = NULL;
	struct svc *b = NULL;

	if (!r->n_be) {
		b = s->svc;
	} else {
		int k = h1r_backend_pick(r);

		if (k < 0)
			return NULL;
		best = &r->be[k];
		/* the index is this generation's; a reload may have moved it: then by name */
		b = reg_find_name_locked(reg, best->service, (uint32_t)best->index);
	}
	if (b)
		b->refs++;
	return b;
}

static const struct h1_header *find_hdr(const struct h1s *s, const char *lc)
{
	return h1_find_header(s->x->req.headers, s->x->req.n_headers, lc, strlen(lc));
}

/* Reads the deadline headers; the tightest wins. */
static void read_deadlines(struct h1s *s, int64_t now_ns)
{
	const struct h1_header *h;
	int64_t v, best = 0;

	if ((h = find_hdr(s, "weft-deadline")) && deadline_parse_weft(h->value, h->value_len, &v) == 0)
		best = v;
	if ((h = find_hdr(s, "grpc-timeout"))) {
		s->had_grpc_timeout = true;
		if (deadline_parse_grpc_timeout(h->value, h->value_len, &v) == 0) {
			v = v > INT64_MAX - now_ns ? INT64_MAX : now_ns + v;
			if (!best || v < best)
				best = v;
		}
	}
	if ((h = find_hdr(s, "l5d-ctx-deadline"))) {
		s->had_l5d = true;
		if (deadline_parse_l5d(h->value, h->value_len, &v) == 0 && (!best || v < best))
			best = v;
	}
	s->deadline_ns = best;
}

/* A new trace's sampling decision: probability tracing.sample_rate. */
static bool sample_coin(const struct h1s *s)
{
	return (double)(trace_random_u64() >> 11) / 9007199254740992.0 < s->l7->sample_rate;
}

/*
 * The caller's trace context: W3C traceparent, else B3 (single header, else
 * the X-B3-* headers). A header that does not parse counts as absent; a B3
 * header carrying only a sampling decision keeps that decision for the new
 * trace weft starts.
 */
static void read_trace(struct h1s *s)
{
	const struct h1_header *h, *ti, *si, *sm, *fl;
	struct trace_ctx c;
	int r = -EINVAL;

	memset(&c, 0, sizeof(c));
	if ((h = find_hdr(s, "traceparent")))
		r = trace_parse_traceparent(h->value, h->value_len, &c);
	if (r != 0 && (h = find_hdr(s, "b3"))) {
		s->b3_in = s->b3_single = true;
		r = trace_parse_b3(h->value, h->value_len, &c);
	} else if (r != 0) {
		ti = find_hdr(s, "x-b3-traceid");
		si = find_hdr(s, "x-b3-spanid");
		sm = find_hdr(s, "x-b3-sampled");
		fl = find_hdr(s, "x-b3-flags");
		if (ti || si || sm || fl) {
			s->b3_in = true;
			r = trace_parse_b3_multi(ti ? ti->value : NULL, ti ? ti->value_len : 0, si ? si->value : NULL,
						 si ? si->value_len : 0, sm ? sm->value : NULL, sm ? sm->value_len : 0,
						 fl ? fl->value : NULL, fl ? fl->value_len : 0, &c);
		}
	}
	if (r == 0) {
		s->x->tc = c;
		s->have_parent = true;
		if (!c.has_sampled)
			s->x->tc.sampled = sample_coin(s);
	} else {
		bool has = r == -ENOENT && c.has_sampled;

		memset(&s->x->tc, 0, sizeof(s->x->tc));
		trace_new_trace_id(s->x->tc.trace_id);
		s->x->tc.has_sampled = has;
		s->x->tc.sampled = has ? c.sampled : sample_coin(s);
	}
	s->span_id = trace_random_u64();
}

/* Header names weft writes itself or must not forward (hop-by-hop, framing, rewritten context). */
static bool hdr_dropped(const struct h1s *s, const struct h1_header *h, const char **tokp, const size_t *tokl,
			size_t ntok)
{
// clang-format off
#define NAME(s) { s, sizeof(s) - 1 }
	// clang-format on
	static const struct {
		const char *name;
		size_t len;
	} drop[] = {
		NAME("host"),
		NAME("content-length"),
		NAME("transfer-encoding"),
		NAME("connection"),
		NAME("keep-alive"),
		NAME("proxy-connection"),
		NAME("te"),
		NAME("trailer"),
		NAME("upgrade"),
		NAME("weft-deadline"),
		NAME("grpc-timeout"),
		NAME("l5d-ctx-deadline"),
		NAME("traceparent"),
		NAME("b3"),
		NAME("x-b3-traceid"),
		NAME("x-b3-spanid"),
		NAME("x-b3-parentspanid"),
		NAME("x-b3-sampled"),
		NAME("x-b3-flags"),
	};
#undef NAME
	size_t i;

	for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		if (h1_name_is(h, drop[i].name, drop[i].len))
			return true;
	if (s->sent_continue && h1_name_is(h, "expect", 6))
		return true;
	for (i = 0; i < ntok; i++)
		if (h->name_len == tokl[i] && strncasecmp(h->name, tokp[i], tokl[i]) == 0)
			return true;
	if (s->route) {
		for (i = 0; i < s->route->n_rm; i++)
			if (h1_name_is(h, s->route->rm[i].name, s->route->rm[i].nlen))
				return true;
		for (i = 0; i < s->route->n_add; i++)
			if (h1_name_is(h, s->route->add[i].name, s->route->add[i].nlen))
				return true;
	}
	return false;
}

/* Builds the request head for this attempt into u->wb. */
static int build_upstream_head(struct h1s *s, struct obuf *o)
{
	const struct h1_request *q = &s->x->req;
	const char *tokp[H1R_MAX_CONN_TOKENS];
	size_t tokl[H1R_MAX_CONN_TOKENS], ntok, i;
	char line[160];
	int r = 0;

	r |= ob_add(o, q->method, q->method_len);
	r |= ob_add(o, " ", 1);
	if (q->target_form == H1_TARGET_ABSOLUTE)
		r |= q->path_len ? ob_add(o, q->path, q->path_len) : ob_add(o, "/", 1);
	else
		r |= ob_add(o, q->target, q->target_len);
	r |= ob_str(o, " HTTP/1.1\r\nHost: ");
	if (q->host) {
		r |= ob_add(o, q->host, q->host_len);
	} else {
		struct weft_sockaddr d;
		char a[ADDR_STRLEN];

		addr_from_key(&s->orig.dst, &d);
		r |= ob_str(o, addr_format(&d, a, sizeof(a)));
	}
	r |= ob_add(o, "\r\n", 2);
	ntok = h1r_connection_tokens(q->headers, q->n_headers, tokp, tokl);
	for (i = 0; i < q->n_headers; i++) {
		const struct h1_header *h = &q->headers[i];

		if (hdr_dropped(s, h, tokp, tokl, ntok))
			continue;
		r |= ob_add(o, h->name, h->name_len);
		r |= ob_add(o, ": ", 2);
		r |= ob_add(o, h->value, h->value_len);
		r |= ob_add(o, "\r\n", 2);
	}
	if (q->chunked) {
		r |= ob_str(o, "Transfer-Encoding: chunked\r\n");
	} else if (q->content_length >= 0) {
		r |= ob_str(o, "Content-Length: ");
		r |= ob_u64(o, (uint64_t)q->content_length);
		r |= ob_add(o, "\r\n", 2);
	}
	if (q->upgrade) {
		r |= ob_str(o, "Connection: upgrade\r\nUpgrade: ");
		r |= ob_add(o, q->upgrade_proto, q->upgrade_proto_len);
		r |= ob_add(o, "\r\n", 2);
	}
	if (s->route) {
		for (i = 0; i < s->route->n_add; i++) {
			r |= ob_add(o, s->route->add[i].name, s->route->add[i].nlen);
			r |= ob_add(o, ": ", 2);
			r |= ob_add(o, s->route->add[i].value, s->route->add[i].vlen);
			r |= ob_add(o, "\r\n", 2);
		}
	}
	if (s->deadline_ns) {
		char v[DEADLINE_VALUE_MAX];
		int64_t now_ns = wall_us() * 1000;

		if (deadline_format_weft(v, sizeof(v), s->deadline_ns) > 0) {
			r |= ob_str(o, "weft-deadline: ");
			r |= ob_str(o, v);
			r |= ob_add(o, "\r\n", 2);
		}
		if (s->had_grpc_timeout && deadline_format_grpc_timeout(v, sizeof(v), s->deadline_ns - now_ns) > 0) {
			r |= ob_str(o, "grpc-timeout: ");
			r |= ob_str(o, v);
			r |= ob_add(o, "\r\n", 2);
		}
		if (s->had_l5d && deadline_format_l5d(v, sizeof(v), now_ns, s->deadline_ns) > 0) {
			r |= ob_str(o, "l5d-ctx-deadline: ");
			r |= ob_str(o, v);
			r |= ob_add(o, "\r\n", 2);
		}
	}
	if (trace_format_traceparent(line, sizeof(line), s->x->tc.trace_id, s->attempt_span, s->x->tc.sampled) > 0) {
		r |= ob_str(o, "traceparent: ");
		r |= ob_str(o, line);
		r |= ob_add(o, "\r\n", 2);
	}
	if (s->b3_in) {
		if (s->b3_single) {
			if (trace_format_b3(line, sizeof(line), &s->x->tc, s->attempt_span, s->span_id) > 0) {
				r |= ob_str(o, "b3: ");
				r |= ob_str(o, line);
				r |= ob_add(o, "\r\n", 2);
			}
		} else {
			char hx[33];

			if (s->x->tc.b3_trace64)
				trace_hex(hx, s->x->tc.trace_id + 8, 8);
			else
				trace_hex(hx, s->x->tc.trace_id, 16);
			r |= ob_str(o, "X-B3-TraceId: ");
			r |= ob_str(o, hx);
			trace_hex64(hx, s->attempt_span);
			r |= ob_str(o, "\r\nX-B3-SpanId: ");
			r |= ob_str(o, hx);
			trace_hex64(hx, s->span_id);
			r |= ob_str(o, "\r\nX-B3-ParentSpanId: ");
			r |= ob_str(o, hx);
			r |= ob_str(o, s->x->tc.sampled ? "\r\nX-B3-Sampled: 1\r\n" : "\r\nX-B3-Sampled: 0\r\n");
		}
	}
	r |= ob_add(o, "\r\n", 2);
	return r ? -ENOMEM : 0;
}

/* Body bytes in the request buffer not yet handed to the upstream: ib[head_len..bscan). */
static int queue_body(struct h1s *s, struct obuf *o)
{
	if (s->bscan > s->head_len && ob_add(o, s->ib + s->head_len, s->bscan - s->head_len) < 0)
		return -ENOMEM;
	if (s->streaming) {
		/* streamed bytes are gone once queued: no retry can resend them */
		if (s->bscan > s->head_len)
			s->body_dropped = true;
		memmove(s->ib + s->head_len, s->ib + s->bscan, s->ilen - s->bscan);
		s->ilen -= s->bscan - s->head_len;
		s->bscan = s->head_len;
	}
	return 0;
}

static void timer_expired(struct h1s *s);
static void backoff_cb(struct ev_loop *loop, ev_timer *t, int revents);

static bool status_retryable(const struct h1s *s, int status)
{
	size_t i;

	for (i = 0; i < s->l7->n_on_status; i++)
		if (s->l7->on_status[i] == status)
			return true;
	return false;
}

/*
 * May the failed attempt be retried? any_method: nothing reached the
 * upstream (connect failure). Takes from the budget when it allows.
 */
static bool retry_allowed(struct h1s *s, bool any_method)
{
	bool ok;

	if (!any_method && !s->retry_method)
		return false;
	if (s->attempt >= s->l7->attempts || s->body_dropped || s->x->req.upgrade)
		return false;
	if (!s->body_done && !s->streaming)
		return false;
	if (s->deadline && now_of(s) >= s->deadline)
		return false;
	pthread_mutex_lock(&s->reg->lock);
	ok = retry_budget_try(&s->svc->stat->http->budget, now_of(s));
	if (ok)
		s->svc->stat->http->retries++;
	else
		s->svc->stat->http->budget_exhausted++;
	pthread_mutex_unlock(&s->reg->lock);
	if (!ok)
		log_debug("service %s: retry budget exhausted; not retrying", s->svc->name);
	return ok;
}

/* Abandons the current attempt: its connection closes, its endpoint stops counting it. */
static void attempt_drop(struct h1s *s)
{
	if (s->up) {
		h1up_close(s->up);
		s->up = NULL;
	}
	pthread_mutex_lock(&s->reg->lock);
	attempt_release_locked(s);
	pthread_mutex_unlock(&s->reg->lock);
}

static void schedule_retry(struct h1s *s)
{
	uint32_t ms = retry_backoff_ms(s->l7->backoff_base_ms, s->l7->backoff_max_ms, s->attempt, &s->rng);

	attempt_drop(s);
	s->st = S_BACKOFF;
	if (!ms) {
		attempt_start(s);
		return;
	}
	ev_timer_stop(s->w->loop, &s->btimer);
	ev_timer_set(&s->btimer, ms / 1000.0, 0.);
	ev_timer_start(s->w->loop, &s->btimer);
}

/*
 * An attempt failed before any response: retry it, or answer.
 *
 * What may go again depends on whether the server may have received the
 * request (RFC 9112 9.3.1: a non-idempotent request that may have been
 * received is never retried automatically). Nothing of it was written (the
 * connect failed, or the first write did): any method may go again. Some of
 * it was written, even to a pooled connection that then turned out closed:
 * only an idempotent method or a route with retryable = true.
 */
static void attempt_failed(struct h1s *s, bool connect_fail, int err)
{
	struct svc_ep *ep = s->up ? s->up->ep : NULL;
	bool reused = s->up && s->up->reused;
	bool sent = s->bytes_in != s->att_sent0;

	attempt_span_end(s, 0, connect_fail ? "connect failed" : "upstream closed");
	if (ep) {
		pthread_mutex_lock(&s->reg->lock);
		if (connect_fail)
			ep->connect_errors[svc_err_of(err)]++;
		/* a remote agent's "denied" is about the caller, not the endpoint's health */
		if (!reused && s->ep_i >= 0 && err != EACCES)
			svc_breaker(s->bsvc, s->ep_i, false, now_of(s),
				    connect_fail ? "consecutive connect failures" : "consecutive failures");
		pthread_mutex_unlock(&s->reg->lock);
		log_debug("service %s: endpoint %s: %s: %s", s->bsvc->name, ep->addr_str,
			  connect_fail ? "connect failed" : "closed before responding", strerror(err));
	}
	/*
	 * A pooled connection the server closed (usually while it sat idle, a
	 * benign race): another connection, not counted as an attempt, when the
	 * request could not have reached the server or may be sent twice.
	 */
	if (reused && !s->body_dropped && (!sent || s->retry_method)) {
		attempt_drop(s);
		s->attempt--;
		attempt_start(s);
		return;
	}
	if (retry_allowed(s, connect_fail || !sent)) {
		schedule_retry(s);
		return;
	}
	respond_error(s, connect_fail ? 503 : 502, connect_fail ? "unavailable" : "upstream reset", false);
}

/* Starts attempt number s->attempt + 1. */
static void attempt_start(struct h1s *s)
{
	struct registry *reg = s->reg;
	struct svc *b = s->bsvc;
	struct svc_ep *ep = NULL;
	const struct weft_sockaddr *node = NULL;
	struct h1up *u;
	int i = -1, err = 0;

	if (s->deadline && now_of(s) >= s->deadline) {
		timer_expired(s);
		return;
	}
	s->attempt++;
	pthread_mutex_lock(&reg->lock);
	i = bal_pick(&b->bal, s->tried, now_of(s));
	if (i < 0 && s->tried) {
		/* every endpoint was tried: a retry may go to one again */
		s->tried = 0;
		i = bal_pick(&b->bal, 0, now_of(s));
	}
	/* an endpoint's HTTP state (pool, counters) exists once a request goes to it */
	if (i >= 0 && !h1_ep_get_locked(b->eps[i]))
		i = -1;
	if (i >= 0) {
		if (i < 64)
			s->tried |= 1ull << i;
		ep = b->eps[i];
		ep->bal.active++;
		ep->http->requests++;
		s->ep_i = i;
		memcpy(s->ep_str, ep->addr_str, sizeof(s->ep_str));
		/* this generation's view of where the endpoint lives */
		if (b->remote[i])
			node = &b->nodes[i];
	}
	pthread_mutex_unlock(&reg->lock);
	if (!ep) {
		respond_error(s, 503, "no endpoint", false);
		return;
	}
	if (!s->rhdrs && !(s->rhdrs = blk_get(hdrs_bytes(s->l7->max_headers)))) {
		respond_error(s, 503, "out of memory", true);
		return;
	}
	/*
	 * A fresh response parser per attempt: the parser resumes a message it
	 * has seen when the buffer start is the same, and a new connection's
	 * buffer can reuse the last one's block.
	 */
	h1_response_init(&s->x->resp);
	s->attempt_span = trace_random_u64();
	s->attempt_start = now_of(s);
	s->last_io = s->attempt_start; /* a new attempt is progress (stream idle) */
	s->att_sent0 = s->bytes_in;
	s->attempt_wall_us = wall_us();
	{
		struct h1up_want want = {
			.ep = ep,
			.node = node,
			.svc_name = b->name,
			.mark = s->l7->mark,
			.connect_timeout_ms = s->l7->connect_timeout_ms,
			.io_cb = sess_up_cb,
			.timeout_cb = up_timeout_cb,
			.owner = s,
			.acct = &s->mem,
			/*
			 * a request that must not go twice takes a pooled connection only
			 * after a peek shows it still open (one recv; idempotent ones are
			 * retried instead when a reused connection fails)
			 */
			.probe = !s->retry_method || s->streaming,
		};

		if (node) {
			want.ctx = s->mtls ? mtls_client_ctx(s->mtls, s->orig.cgroup_id) : NULL;
			if (!want.ctx) {
				/* the config forbids node endpoints without tls: be safe */
				attempt_failed(s, true, EHOSTUNREACH);
				return;
			}
		}
		u = h1up_get(s->w, &want, &err);
	}
	if (!u) {
		attempt_failed(s, true, err);
		return;
	}
	s->up = u;
	if (build_upstream_head(s, &u->wb) < 0 || queue_body(s, &u->wb) < 0) {
		respond_error(s, 503, "out of memory", true);
		return;
	}
	s->st = S_UPSTREAM;
}

/* ---- request head ---- */

static void begin_request(struct h1s *s)
{
	struct h1_svc *l = s->l7;
	int64_t now_ns = wall_us() * 1000;
	bool shed;
	size_t i;

	s->req_start = now_of(s);
	s->served = true;
	s->wall_start_us = now_ns / 1000;
	s->http10 = s->x->req.minor_version == 0;
	copy_trunc(s->x->method, sizeof(s->x->method), s->x->req.method, s->x->req.method_len);
	{
		size_t pl = s->x->req.path_len;
		const char *qm = memchr(s->x->req.path, '?', pl);

		copy_trunc(s->x->path, sizeof(s->x->path), s->x->req.path, qm ? (size_t)(qm - s->x->req.path) : pl);
	}
	s->route = &l->def;
	for (i = 0; i < l->n_routes; i++)
		if (h1r_route_matches(&l->routes[i], &s->x->req)) {
			s->route = &l->routes[i];
			break;
		}
	s->retry_method = method_idempotent(s->x->req.method_id) || s->route->retryable;
	h1_body_init_request(&s->x->rbody, &s->x->req, &l->lim);
	s->bscan = s->head_len;
	s->has_body = s->x->req.chunked || s->x->req.content_length > 0;
	s->body_done = !s->has_body;
	if (s->has_body && !s->x->req.chunked && (uint64_t)s->x->req.content_length > l->max_retry_body)
		s->streaming = true;
	if (s->x->req.method_id == H1_M_CONNECT) {
		respond_error(s, 405, "CONNECT is not proxied by an http service", true);
		return;
	}
	pthread_mutex_lock(&s->reg->lock);
	shed = s->svc->stat->http->inflight >= l->max_requests;
	if (shed) {
		s->svc->stat->http->shed++;
	} else {
		s->svc->stat->http->inflight++;
		s->counted = true;
		retry_budget_request(&s->svc->stat->http->budget, now_of(s));
		s->bsvc = backend_pick_locked(s);
	}
	pthread_mutex_unlock(&s->reg->lock);
	if (shed) {
		respond_error(s, 503, "overloaded", false);
		return;
	}
	read_trace(s);
	if (!s->bsvc) {
		respond_error(s, 503, "no backend service", false);
		return;
	}
	/* deadline: the route timeout, tightened by the request's own */
	read_deadlines(s, now_ns);
	if (s->route->timeout_ms) {
		int64_t t = now_ns + (int64_t)s->route->timeout_ms * 1000000;

		if (!s->deadline_ns || t < s->deadline_ns)
			s->deadline_ns = t;
	}
	if (s->deadline_ns) {
		double left = (double)(s->deadline_ns - now_ns) / 1e9;

		if (left <= 0) {
			pthread_mutex_lock(&s->reg->lock);
			s->route->stat->timeouts++;
			pthread_mutex_unlock(&s->reg->lock);
			respond_error(s, 504, "deadline exceeded", false);
			return;
		}
		s->deadline = now_of(s) + left;
		ev_timer_stop(s->w->loop, &s->timer);
		ev_timer_set(&s->timer, left, 0.);
		ev_timer_start(s->w->loop, &s->timer);
	} else {
		ev_timer_stop(s->w->loop, &s->timer);
	}
	if (s->x->req.expect_continue && s->has_body) {
		/* we answer 100 ourselves and strip Expect: the body is buffered for retries */
		ob_str(&s->ob, "HTTP/1.1 100 Continue\r\n\r\n");
		s->sent_continue = true;
	}
	/*
	 * Stream idle: armed once per request and moved only when it fires
	 * (libev's "last activity" pattern): I/O just stores s->last_io.
	 */
	s->last_io = now_of(s);
	if (l->stream_idle_ms) {
		ev_timer_set(&s->itimer, l->stream_idle_ms / 1000.0, 0.);
		ev_timer_start(s->w->loop, &s->itimer);
	}
	s->st = S_BODY;
}

/* Feeds newly read body bytes to the framing; 0, or an H1_E_* error. */
static int body_scan(struct h1s *s)
{
	size_t consumed = 0;
	int r;

	if (s->body_done || s->bscan >= s->ilen)
		return 0;
	r = h1_body_feed(&s->x->rbody, s->ib + s->bscan, s->ilen - s->bscan, &consumed, NULL, NULL);
	if (r < 0)
		return r;
	s->bscan += consumed;
	if (r == 1)
		s->body_done = true;
	else if (!s->streaming && s->bscan - s->head_len > s->l7->max_retry_body)
		s->streaming = true; /* a chunked body outgrew the retry buffer */
	return 0;
}

/* ---- response ---- */

static void deliver_response_head(struct h1s *s)
{
	const struct h1_response *p = &s->x->resp;
	const char *tokp[H1R_MAX_CONN_TOKENS];
	size_t tokl[H1R_MAX_CONN_TOKENS], ntok, i;
	struct obuf *o = &s->ob;
	int r = 0;

	if (p->tunnel && p->status == 101) {
		/* switching protocols: forward the head as it came, then opaque bytes */
		r |= ob_add(o, s->up->rb, p->head_len);
		s->resp_head_sent = true;
		if (r)
			s->dead = true;
		return;
	}
	r |= ob_str(o, s->http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
	r |= ob_u64(o, (uint64_t)p->status);
	r |= ob_add(o, " ", 1);
	r |= ob_add(o, p->reason, p->reason_len);
	r |= ob_add(o, "\r\n", 2);
	ntok = h1r_connection_tokens(p->headers, p->n_headers, tokp, tokl);
	for (i = 0; i < p->n_headers; i++) {
		const struct h1_header *h = &p->headers[i];
		size_t k;
		bool drop = h1_name_is(h, "connection", 10) || h1_name_is(h, "keep-alive", 10) ||
			    h1_name_is(h, "proxy-connection", 16) || h1_name_is(h, "transfer-encoding", 17) ||
			    h1_name_is(h, "trailer", 7) || h1_name_is(h, "upgrade", 7) ||
			    (h1_name_is(h, "content-length", 14) && !p->no_body);

		for (k = 0; k < ntok && !drop; k++)
			drop = h->name_len == tokl[k] && strncasecmp(h->name, tokp[k], tokl[k]) == 0;
		if (drop)
			continue;
		r |= ob_add(o, h->name, h->name_len);
		r |= ob_add(o, ": ", 2);
		r |= ob_add(o, h->value, h->value_len);
		r |= ob_add(o, "\r\n", 2);
	}
	if (!p->no_body) {
		if (p->chunked && !s->http10) {
			r |= ob_str(o, "Transfer-Encoding: chunked\r\n");
		} else if (p->chunked) {
			s->dechunk = true; /* an HTTP/1.0 client: plain bytes, delimited by our close */
			s->close_after = true;
		} else if (p->content_length >= 0) {
			r |= ob_str(o, "Content-Length: ");
			r |= ob_u64(o, (uint64_t)p->content_length);
			r |= ob_add(o, "\r\n", 2);
		} else {
			s->close_after = true; /* close-delimited */
		}
	}
	if (s->close_after || !s->x->req.keep_alive || !s->body_done || s->w->draining)
		r |= ob_str(o, "Connection: close\r\n");
	else if (s->http10)
		r |= ob_str(o, "Connection: keep-alive\r\n");
	r |= ob_add(o, "\r\n", 2);
	s->resp_head_sent = true;
	if (r)
		s->dead = true;
}

/* Moves response body bytes from the upstream buffer to the client; 1 when the body is complete. */
static int response_body(struct h1s *s)
{
	struct h1up *u = s->up;
	size_t pos = 0;
	int r = 0;

	while (pos < u->rlen && !h1_body_done(&s->x->sbody)) {
		size_t consumed = 0, doff = 0, dlen = 0;

		if (s->dechunk) {
			r = h1_body_feed(&s->x->sbody, u->rb + pos, u->rlen - pos, &consumed, &doff, &dlen);
			if (r >= 0 && dlen && ob_add(&s->ob, u->rb + pos + doff, dlen) < 0)
				r = -ENOMEM;
		} else {
			r = h1_body_feed(&s->x->sbody, u->rb + pos, u->rlen - pos, &consumed, NULL, NULL);
			if (r >= 0 && ob_add(&s->ob, u->rb + pos, consumed) < 0)
				r = -ENOMEM;
		}
		if (r < 0)
			break;
		pos += consumed;
	}
	memmove(u->rb, u->rb + pos, u->rlen - pos);
	u->rlen -= pos;
	if (r < 0)
		return r;
	return h1_body_done(&s->x->sbody) ? 1 : 0;
}

static void response_complete(struct h1s *s)
{
	struct h1up *u = s->up;
	bool reuse = u && s->x->resp.keep_alive && !u->rlen && !u->eof && s->body_done;

	if (u && u->rlen)
		log_debug("service %s: endpoint %s sent bytes after its response; connection closed",
			  s->bsvc ? s->bsvc->name : "?", u->ep->addr_str);
	attempt_span_end(s, s->status, NULL);
	finish_exchange(s, reuse);
}

static void start_tunnel(struct h1s *s)
{
	struct h1up *u = s->up;

	/* bytes the client sent after its head go up; upstream bytes after the 101 go down */
	if (s->ilen > s->head_len)
		ob_add(&u->wb, s->ib + s->head_len, s->ilen - s->head_len);
	s->ilen = s->head_len = s->bscan = 0;
	if (u->rlen)
		ob_add(&s->ob, u->rb, u->rlen);
	u->rlen = 0;
	ev_timer_stop(s->w->loop, &s->timer);
	ev_timer_stop(s->w->loop, &s->itimer); /* a tunnel is opaque bytes, not a request */
	attempt_span_end(s, 101, NULL);
	exchange_metrics(s);
	s->st = S_TUNNEL;
}

/* A complete response head is in u->rb: retry, forward interim, or start forwarding. */
static void on_response_head(struct h1s *s)
{
	struct h1up *u = s->up;
	struct h1_response *p = &s->x->resp;
	double lat = now_of(s) - s->attempt_start;
	bool fail5 = p->status >= 500;

	if (p->interim) {
		/* 1xx: forward unless it is the 100 we already gave */
		if (!(p->status == 100 && s->sent_continue) && ob_add(&s->ob, u->rb, p->head_len) < 0) {
			s->dead = true;
			return;
		}
		memmove(u->rb, u->rb + p->head_len, u->rlen - p->head_len);
		u->rlen -= p->head_len;
		h1_response_init(p);
		return;
	}
	s->status = p->status;
	pthread_mutex_lock(&s->reg->lock);
	if (s->ep_i >= 0) {
		struct svc_ep *ep = s->bsvc->eps[s->ep_i];

		/* peak-EWMA of response latency: balancing is per request */
		bal_observe(&ep->bal, lat * 1e6, now_of(s));
		if (fail5)
			ep->http->responses_5xx++;
		svc_breaker(s->bsvc, s->ep_i, !fail5, now_of(s), "consecutive 5xx responses or failures");
	}
	pthread_mutex_unlock(&s->reg->lock);
	if (status_retryable(s, p->status) && retry_allowed(s, false)) {
		attempt_span_end(s, p->status, "retried");
		schedule_retry(s);
		return;
	}
	deliver_response_head(s);
	if (s->dead)
		return;
	memmove(u->rb, u->rb + p->head_len, u->rlen - p->head_len);
	u->rlen -= p->head_len;
	if (p->tunnel) {
		if (p->status == 101 && s->x->req.upgrade) {
			start_tunnel(s);
			return;
		}
		/* a 2xx to CONNECT cannot happen (refused above); anything else tunnels: be safe */
		s->close_after = true;
		response_complete(s);
		return;
	}
	h1_body_init_response(&s->x->sbody, p, &s->l7->lim);
	s->st = S_RESPONSE;
	if (h1_body_done(&s->x->sbody))
		response_complete(s);
}

/* ---- I/O ---- */

/*
 * The memory budget refused this session more buffer (state/membudget: its
 * workload is over its share, or the node's budget is full and it is among
 * the biggest): it is shed. Before any response byte: a plain 503 and close
 * (nothing more is read); after: a reset. The workload's other sessions and
 * every other workload go on.
 */
static void shed_for_memory(struct h1s *s)
{
	static const char resp[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
				   "Content-Length: 31\r\nweft-error: overloaded\r\nConnection: close\r\n\r\n"
				   "overloaded: buffer memory full\n";
	char a[ADDR_STRLEN];

	log_debug("service %s: client %s shed: agent.buffer_memory_mb budget (its workload's share or the "
		  "node's) refused more buffer",
		  s->svc->name, addr_format(&s->client, a, sizeof(a)));
	if (s->up) {
		h1up_close(s->up);
		s->up = NULL;
	}
	if (s->resp_head_sent || ob_add(&s->ob, resp, sizeof(resp) - 1) < 0) {
		s->reset_client = true;
		s->dead = true;
		return;
	}
	s->resp_head_sent = true;
	s->close_after = true;
	s->client_eof = true; /* read nothing more */
	s->st = S_CLOSING;
}

static int client_read(struct h1s *s)
{
	bool moved;
	int n = h1_read_grow(s->cfd, NULL, &s->ib, &s->ilen, &s->icap, 8192, s->l7->in_cap, 512, &s->client_eof, &moved,
			     &s->mem);

	/*
	 * The parsed head's pointers (method, target, header fields) point into
	 * the old buffer: parse it again in place (the parser notices the move
	 * and starts over; O(head), once per growth).
	 */
	if (moved && s->head_len &&
	    h1_parse_request(s->ib, s->head_len, &s->x->req, s->hdrs, s->l7->max_headers, &s->l7->lim) !=
		    (int)s->head_len)
		return -EPROTO;
	return n;
}

/* Sets which events the client and upstream watchers wait for, from the state. */
static void sess_arm(struct h1s *s)
{
	struct ev_loop *loop = s->w->loop;
	int ce = 0, ue = 0;
	size_t opend = ob_pending(&s->ob);

	if (opend)
		ce |= EV_WRITE;
	/*
	 * The client is read whenever there is room, also while a response is
	 * on its way: pipelined requests wait in the buffer, an EOF is seen at
	 * once, and the watcher is not switched off and on for every request
	 * (each switch is an epoll_ctl). Backpressure: not past the buffer
	 * limit, not while much output is pending, and a streamed body not
	 * faster than the upstream takes it.
	 */
	switch (s->st) {
	case S_HEAD:
	case S_BODY:
	case S_UPSTREAM:
	case S_BACKOFF:
	case S_RESPONSE:
		if (!s->client_eof && (!s->ib || s->ilen < s->l7->in_cap) && opend < OUT_HIGH &&
		    (!s->streaming || s->body_done || !s->up || ob_pending(&s->up->wb) < OUT_HIGH))
			ce |= EV_READ;
		break;
	case S_TUNNEL:
		if (!s->client_eof && s->up && ob_pending(&s->up->wb) < OUT_HIGH)
			ce |= EV_READ;
		break;
	default:
		break;
	}
	if (s->up) {
		struct h1up *u = s->up;

		if (!u->tcp_up) {
			ue = EV_WRITE;
		} else if (!u->connected) {
			ue = u->want == TLS_WANT_WRITE ? EV_WRITE : EV_READ; /* the TLS setup's wish */
		} else {
			if (ob_pending(&u->wb))
				ue |= EV_WRITE;
			if (!u->eof && opend < OUT_HIGH &&
			    (s->st == S_UPSTREAM || s->st == S_RESPONSE || s->st == S_TUNNEL))
				ue |= EV_READ;
			/* a TLS read may need the socket writable and a write readable */
			if (u->tls && u->want == TLS_WANT_WRITE && ue)
				ue |= EV_WRITE;
			if (u->tls && u->want == TLS_WANT_READ && ue)
				ue |= EV_READ;
		}
		sock_io_want(loop, &u->io, ue);
	}
	sock_io_want(loop, &s->cio, ce);
	/* an idle keep-alive connection holds no buffers and no header arrays */
	if (s->st == S_HEAD && !s->ilen) {
		mb_release(&s->mem, s->icap);
		blk_put(s->ib, s->icap);
		s->ib = NULL;
		s->icap = 0;
		blk_put(s->hdrs, hdrs_bytes(s->l7->max_headers));
		s->hdrs = NULL;
		blk_put(s->rhdrs, hdrs_bytes(s->l7->max_headers));
		s->rhdrs = NULL;
		free(s->x);
		s->x = NULL;
		ob_trim(&s->ob);
	}
}

/* Runs the state machine as far as the buffered bytes allow. */
static void sess_advance(struct h1s *s)
{
	int r, guard;

	for (guard = 0; guard < 64 && !s->dead; guard++) {
		enum h1s_state before = s->st;
		size_t ibefore = s->ilen;

		switch (s->st) {
		case S_HEAD:
			if (!s->ilen) {
				/* nothing more to answer: close once what we owe is written */
				if (s->client_eof || s->w->draining)
					s->st = S_CLOSING;
				break;
			}
			if (!s->x) {
				s->x = malloc(sizeof(*s->x));
				if (!s->x) {
					s->dead = true;
					break;
				}
				x_init(s->x);
			}
			if (!s->hdrs && !(s->hdrs = blk_get(hdrs_bytes(s->l7->max_headers)))) {
				s->dead = true;
				break;
			}
			r = h1_parse_request(s->ib, s->ilen, &s->x->req, s->hdrs, s->l7->max_headers, &s->l7->lim);
			if (r == H1_INCOMPLETE) {
				if (s->client_eof) {
					s->dead = true; /* closed mid-head: nothing to answer */
				} else if (!s->head_timing && s->l7->head_timeout_ms) {
					/* a started head must complete in time: slow clients hold no buffer for ever */
					s->head_timing = true;
					ev_timer_stop(s->w->loop, &s->timer);
					ev_timer_set(&s->timer, s->l7->head_timeout_ms / 1000.0, 0.);
					ev_timer_start(s->w->loop, &s->timer);
				}
				break;
			}
			if (r < 0) {
				reject_request(s, r);
				break;
			}
			s->head_len = (size_t)r;
			begin_request(s);
			break;
		case S_BODY:
			r = body_scan(s);
			if (r < 0) {
				reject_request(s, r);
				break;
			}
			if (s->body_done || s->streaming) {
				attempt_start(s);
				break;
			}
			if (s->client_eof) {
				s->dead = true;
				break;
			}
			break;
		case S_UPSTREAM:
		case S_BACKOFF:
			if (s->streaming && !s->body_done) {
				r = body_scan(s);
				if (r < 0) {
					/* part of the request is upstream already: both sides end */
					reject_count(s, h1_error_status(r));
					s->reset_client = true;
					s->dead = true;
					break;
				}
				if (s->up && queue_body(s, &s->up->wb) < 0)
					s->dead = true;
				if (s->client_eof && !s->body_done) {
					s->reset_client = true;
					s->dead = true;
				}
			}
			break;
		default:
			break;
		}
		if (s->st == before && s->ilen == ibefore)
			break;
	}
}

/* Flushes both output buffers; false when the session died. */
static bool sess_flush(struct h1s *s)
{
	uint64_t moved = s->bytes_in + s->bytes_out;
	int r;

	if (ob_pending(&s->ob)) {
		r = ob_flush(&s->ob, s->cfd, &s->bytes_out);
		if (r < 0) {
			s->dead = true;
			return false;
		}
	}
	if (s->up && s->up->connected && ob_pending(&s->up->wb)) {
		r = h1up_flush(s->up, &s->bytes_in);
		if (r < 0) {
			if (s->st == S_UPSTREAM && !s->x->resp.head_len)
				attempt_failed(s, false, -r);
			else
				s->dead = true;
			return !s->dead;
		}
	}
	if (s->bytes_in + s->bytes_out != moved)
		s->last_io = now_of(s);
	if (s->st == S_CLOSING && !ob_pending(&s->ob))
		s->dead = true;
	if (s->st == S_TUNNEL) {
		if (s->client_eof && s->up && !ob_pending(&s->up->wb)) {
			/* towards another node's agent, close_notify first: a bare FIN reads as a cut */
			if (s->up->tls && !s->up->eof)
				(void)tls_shutdown(s->up->tls);
			shutdown(s->up->fd, SHUT_WR);
		}
		if (s->up && s->up->eof && !ob_pending(&s->ob))
			shutdown(s->cfd, SHUT_WR);
		if (s->client_eof && s->up && s->up->eof && !ob_pending(&s->ob) && !ob_pending(&s->up->wb))
			s->dead = true;
	}
	return !s->dead;
}

static void sess_finish_cb(struct h1s *s)
{
	if (!s->dead) {
		sess_flush(s);
		if (!s->dead)
			sess_advance(s);
		if (!s->dead)
			sess_flush(s);
	}
	if (s->dead) {
		sess_free(s);
		return;
	}
	sess_arm(s);
}

static void sess_client_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct h1s *s = io->data;
	int r;

	(void)loop;
	if (revents & EV_READ) {
		if (s->st == S_TUNNEL) {
			char tmp[READ_CHUNK];
			ssize_t n = recv(s->cfd, tmp, sizeof(tmp), 0);

			if (n > 0)
				ob_add(&s->up->wb, tmp, (size_t)n);
			else if (n == 0)
				s->client_eof = true;
			else if (errno != EAGAIN && errno != EINTR)
				s->dead = true;
		} else {
			r = client_read(s);
			if (r > 0)
				s->last_io = ev_now(loop);
			if (r == -EDQUOT) {
				shed_for_memory(s);
			} else if (r < 0 && r != -EAGAIN && r != -ENOBUFS) {
				s->dead = true;
				if (r == -ECONNRESET)
					s->reset_client = true;
			}
		}
	}
	sess_finish_cb(s);
}

static void up_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct h1up *u = t->data;
	struct h1s *s = u->owner;

	(void)loop;
	(void)revents;
	if (!s)
		return;
	attempt_failed(s, true, ETIMEDOUT);
	sess_finish_cb(s);
}

static void sess_up_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct h1up *u = io->data;
	struct h1s *s = u->owner;
	int r, err = 0;
	socklen_t el = sizeof(err);

	if (!u->tcp_up && (revents & EV_WRITE)) {
		if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			attempt_failed(s, true, err);
			sess_finish_cb(s);
			return;
		}
		u->tcp_up = true;
		revents &= ~EV_WRITE;
	}
	if (u->tcp_up && !u->connected) {
		if (u->nl) {
			/* another node's agent: TLS and the preamble first (any event may advance them) */
			r = h1up_secure_step(u);
			if (r == -EAGAIN) {
				sess_finish_cb(s);
				return;
			}
			if (r < 0) {
				attempt_failed(s, true, -r);
				sess_finish_cb(s);
				return;
			}
		}
		u->connected = true;
		ev_timer_stop(loop, &u->t);
		pthread_mutex_lock(&s->reg->lock);
		u->ep->opened++;
		svc_ep_observe_connect(u->ep, now_of(s) - s->attempt_start);
		pthread_mutex_unlock(&s->reg->lock);
	}
	if (revents & EV_READ) {
		if (s->st == S_TUNNEL) {
			r = h1up_read(u, READ_CHUNK);
			if (r > 0) {
				ob_add(&s->ob, u->rb, u->rlen);
				u->rlen = 0;
			} else if (r < 0 && r != -EAGAIN) {
				s->dead = true;
			}
			sess_finish_cb(s);
			return;
		}
		r = h1up_read(u, s->x->resp.head_len || s->st != S_UPSTREAM
					 ? (size_t)s->l7->buffer_size
					 : (size_t)s->l7->buffer_size + s->l7->in_cap);
		if (r > 0)
			s->last_io = ev_now(loop);
		if (r == -EDQUOT) {
			shed_for_memory(s);
			sess_finish_cb(s);
			return;
		}
		if (r < 0 && r != -EAGAIN && r != -ENOBUFS) {
			if (s->st == S_UPSTREAM && !s->resp_head_sent && !u->rlen) {
				attempt_failed(s, false, -r);
			} else {
				s->reset_client = true;
				s->dead = true;
			}
			sess_finish_cb(s);
			return;
		}
		if (s->st == S_UPSTREAM) {
			if (u->eof && !u->rlen) {
				attempt_failed(s, false, ECONNRESET);
				sess_finish_cb(s);
				return;
			}
			while (s->st == S_UPSTREAM && u == s->up && u->rlen && !s->dead) {
				r = h1_parse_response(u->rb, u->rlen, s->x->req.method_id, &s->x->resp, s->rhdrs,
						      s->l7->max_headers, &s->l7->lim);
				if (r == H1_INCOMPLETE) {
					if (u->eof) {
						attempt_span_end(s, 0, "truncated response");
						respond_error(s, 502, "bad response", true);
					}
					break;
				}
				if (r < 0) {
					log_info_rl("service %s: endpoint %s sent an invalid response (%s); 502",
						    s->bsvc->name, u->ep->addr_str, h1_error_reason(r));
					attempt_span_end(s, 0, "invalid response");
					respond_error(s, 502, "bad response", true);
					break;
				}
				on_response_head(s);
			}
		}
		if (s->st == S_RESPONSE && s->up == u && !s->dead) {
			r = response_body(s);
			if (r < 0) {
				s->reset_client = true;
				s->dead = true;
			} else if (r == 1) {
				response_complete(s);
			} else if (u->eof) {
				if (h1_body_eof(&s->x->sbody) == 1)
					response_complete(s);
				else {
					s->reset_client = true;
					s->dead = true;
				}
			}
		}
	}
	sess_finish_cb(s);
}

/*
 * s->timer fired (or an attempt found the deadline passed): a connection
 * that sent nothing of a request ends (counted, no answer: nginx does the
 * same, and a client that sent nothing expects none), a started head gets
 * 408, a request in flight gets 504.
 */
static void timer_expired(struct h1s *s)
{
	if (s->st == S_HEAD && !s->ilen) {
		/* a response still being written: idle counts from the last byte the client took */
		ev_tstamp left = s->last_io + keepalive_ms(s->l7) / 1000.0 - now_of(s);

		if (ob_pending(&s->ob) && left > 0.001) {
			ev_timer_set(&s->timer, left, 0.);
			ev_timer_start(s->w->loop, &s->timer);
			return;
		}
		/* a new connection silent for http.head_timeout_ms, or keep-alive idle */
		idle_count(s, s->served ? H1_IDLE_KEEPALIVE : H1_IDLE_NEW);
		s->dead = true;
	} else if (s->st == S_HEAD && s->head_timing) {
		reject_count(s, 408);
		s->body_done = false; /* forces Connection: close */
		respond_error(s, 408, "request head timeout", true);
	} else if (s->st == S_HEAD) {
		/* bytes without head_timing: only with head_timeout_ms = 0, under the keep-alive bound */
		idle_count(s, H1_IDLE_KEEPALIVE);
		s->dead = true;
	} else if (s->st != S_CLOSING && s->st != S_TUNNEL) {
		pthread_mutex_lock(&s->reg->lock);
		if (s->route)
			s->route->stat->timeouts++;
		pthread_mutex_unlock(&s->reg->lock);
		attempt_span_end(s, 0, "timeout");
		respond_error(s, 504, "timeout", false);
	}
}

/*
 * s->itimer: http.stream_idle_ms without a byte moving either way while a
 * request is in flight. It fires stream_idle_ms after it was armed; if bytes
 * moved since, it is set again for what is left from the last of them (a
 * retry back-off counts as movement). Waiting for the client's body: 408.
 * Otherwise the endpoint stalled: 504, or a reset once the response head
 * went out.
 */
static void stream_idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct h1s *s = t->data;
	ev_tstamp left = s->last_io + s->l7->stream_idle_ms / 1000.0 - ev_now(loop);

	(void)revents;
	if (s->st == S_BACKOFF) /* weft's own wait between attempts is not the peers' silence */
		left = s->l7->stream_idle_ms / 1000.0;
	if (left > 0.001) {
		ev_timer_set(t, left, 0.);
		ev_timer_start(loop, t);
		return;
	}
	if (s->st == S_BODY || (s->st == S_UPSTREAM && s->streaming && !s->body_done && s->up &&
				!ob_pending(&s->up->wb) && !s->x->resp.head_len)) {
		/* waiting for the client's body, nothing of it held up by the endpoint */
		reject_count(s, 408);
		respond_error(s, 408, "request body timeout", true);
	} else if (s->st == S_UPSTREAM || s->st == S_RESPONSE) {
		pthread_mutex_lock(&s->reg->lock);
		if (s->route)
			s->route->stat->timeouts++;
		pthread_mutex_unlock(&s->reg->lock);
		log_debug("service %s: no bytes either way for %u ms; %s", s->svc->name, s->l7->stream_idle_ms,
			  s->resp_head_sent ? "reset" : "504");
		attempt_span_end(s, 0, "stream idle timeout");
		respond_error(s, 504, "stream idle timeout", false);
	}
	sess_finish_cb(s);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct h1s *s = t->data;

	(void)loop;
	(void)revents;
	timer_expired(s);
	sess_finish_cb(s);
}

static void backoff_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct h1s *s = t->data;

	(void)loop;
	(void)revents;
	if (s->st == S_BACKOFF)
		attempt_start(s);
	sess_finish_cb(s);
}

void h1_start(struct h1_worker *w, int fd, struct svc *svc, const struct weft_orig *orig,
	      const struct weft_sockaddr *peer)
{
	struct registry *reg = w->reg;
	struct h1s *s = calloc(1, sizeof(*s));

	if (!s) {
		pthread_mutex_lock(&reg->lock);
		reg_conn_end_locked(reg, svc, orig->cgroup_id);
		svc_unref_locked(reg, svc);
		pthread_mutex_unlock(&reg->lock);
		sock_reset_close(fd);
		return;
	}
	sock_set_nodelay(fd);
	s->reg = reg;
	s->w = w;
	s->svc = svc;
	s->l7 = svc->http;
	s->orig = *orig;
	s->client = *peer;
	s->cfd = fd;
	s->ep_i = -1;
	s->started = ev_now(w->loop);
	s->rng = trace_random_u64();
	mb_acct_init(&s->mem, w->mb, orig->cgroup_id);
	reset_request(s);
	ev_io_init(&s->cio, sess_client_cb, fd, EV_READ);
	s->cio.data = s;
	ev_timer_init(&s->timer, deadline_cb, 1., 0.);
	s->timer.data = s;
	ev_timer_init(&s->btimer, backoff_cb, 1., 0.);
	s->btimer.data = s;
	ev_timer_init(&s->itimer, stream_idle_cb, 1., 0.);
	s->itimer.data = s;
	pthread_mutex_lock(&reg->lock);
	s->mtls = mtls_ref(reg->mtls);
	sess_list(s);
	pthread_mutex_unlock(&reg->lock);
	ev_io_start(w->loop, &s->cio);
	/*
	 * The first head must be complete within http.head_timeout_ms of accept
	 * (a connection that sends nothing holds a slot like one that sends
	 * slowly); without one, the keep-alive bound applies.
	 */
	if (s->l7->head_timeout_ms) {
		s->head_timing = true;
		timer_arm(s, s->l7->head_timeout_ms);
	} else {
		idle_arm(s);
	}
}

/* ---- worker teardown and drain ---- */

void h1_worker_abort(struct h1_worker *w)
{
	struct registry *reg = w->reg;

	for (;;) {
		struct h1s *s = NULL;

		pthread_mutex_lock(&reg->lock);
		if (!list_empty(&w->sessions))
			s = list_first_entry(&w->sessions, struct h1s, link);
		pthread_mutex_unlock(&reg->lock);
		if (!s)
			break;
		s->reset_client = true;
		sess_free(s);
	}
	h1_worker_close_idle(w);
}

void h1_worker_drain(struct h1_worker *w)
{
	struct h1s *s, *n;

	w->draining = true;
	list_for_each_entry_safe(s, n, &w->sessions, link)
		if (s->st == S_HEAD && !s->ilen)
			sess_free(s);
}

void h1_worker_foreach(struct h1_worker *w, void (*fn)(void *arg, const struct h1_conn_view *v), void *arg)
{
	struct h1_conn_view v;
	struct h1s *s;

	list_for_each_entry(s, &w->sessions, link) {
		v.orig = &s->orig;
		v.client = &s->client;
		v.svc_name = s->svc->name;
		v.endpoint = s->ep_str;
		v.state = s->st == S_HEAD ? "idle" : s->st == S_TUNNEL ? "tunnel" : "request";
		v.bytes_in = s->bytes_in;
		v.bytes_out = s->bytes_out;
		v.started = s->started;
		fn(arg, &v);
	}
}
