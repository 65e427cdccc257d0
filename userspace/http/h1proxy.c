// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * HTTP/1.1 at layer 7 (see h1proxy.h and docs/http1.md).
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
#include "http/h1proxy.h"

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

#include "lib/buf.h"
#include "codec/deadline.h"
#include "codec/h1route.h"
#include "codec/http1.h"
#include "lib/log.h"
#include "tls/mtls.h"
#include "lib/table.h"
#include "codec/preamble.h"
#include "tls/tls.h"
#include "codec/trace.h"
#include "http/zipkin.h"

#define OUT_HIGH (64u * 1024)  /* bytes pending towards a side before we stop reading the other */
#define READ_CHUNK (16u * 1024)
#define UP_RBUF_MIN (16u * 1024)

static const double req_bounds[PX_REQ_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};
static const char *const reject_names[PX_REJECT__MAX] = { "400", "408", "414", "431", "501", "505" };
static const char *const detect_names[PX_DETECT__MAX] = { "http1", "http2", "tls", "opaque", "timeout" };
_Static_assert((int)PX_DETECT_HTTP1 == (int)H1R_HTTP1 && (int)PX_DETECT_HTTP2 == (int)H1R_HTTP2 &&
		       (int)PX_DETECT_TLS == (int)H1R_TLS && (int)PX_DETECT_OPAQUE == (int)H1R_OPAQUE,
	       "detection outcomes index the same counters");

/* ---- per-thread block cache ------------------------------------------------ */

/*
 * Request, response and header buffers come and go with every request (an
 * idle keep-alive connection holds none). malloc of 4-16 KiB blocks is not
 * free, so each worker thread keeps a few freed blocks of the three sizes
 * buffers start with and hands them out again: O(1), no lock (a block is
 * only cached by the thread that frees it). Bounded: BLK_CACHED per size.
 */
#define BLK_CLASSES 3
#define BLK_CACHED 32
static const size_t blk_size[BLK_CLASSES] = { 4096, 8192, 16384 };
static _Thread_local void *blk_cache[BLK_CLASSES][BLK_CACHED];
static _Thread_local unsigned blk_n[BLK_CLASSES];

static int blk_class(size_t n)
{
	int c;

	for (c = 0; c < BLK_CLASSES; c++)
		if (n == blk_size[c])
			return c;
	return -1;
}

/* A block of exactly n bytes (uninitialised), or NULL. */
static void *blk_get(size_t n)
{
	int c = blk_class(n);

	if (c >= 0 && blk_n[c])
		return blk_cache[c][--blk_n[c]];
	return malloc(n);
}

/* Frees p, whose size is cap (as given to blk_get or realloc). */
static void blk_put(void *p, size_t cap)
{
	int c = blk_class(cap);

	if (!p)
		return;
	if (c >= 0 && blk_n[c] < BLK_CACHED) {
		blk_cache[c][blk_n[c]++] = p;
		return;
	}
	free(p);
}

/* Called when a worker thread ends (and for the main loop at exit): returns the cache to malloc. */
void h1p_thread_cleanup(void)
{
	int c;

	for (c = 0; c < BLK_CLASSES; c++)
		while (blk_n[c])
			free(blk_cache[c][--blk_n[c]]);
}

/* Bytes of a header array: rounded up to a cached block size when it fits one. */
static size_t hdrs_bytes(size_t max_headers)
{
	size_t n = max_headers * sizeof(struct h1_header);

	return n <= blk_size[0] ? blk_size[0] : n;
}

/* dst = src[0..n), truncated to fit, NUL-terminated. */
static void copy_trunc(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* ---- growable output buffer ------------------------------------------------ */

struct obuf {
	char *p;
	size_t off, len, cap; /* pending bytes are p[off..len) */
};

static size_t ob_pending(const struct obuf *o)
{
	return o->len - o->off;
}

static int ob_reserve(struct obuf *o, size_t n)
{
	size_t want;
	char *np;

	if (o->off && o->off == o->len)
		o->off = o->len = 0;
	if (o->cap - o->len >= n)
		return 0;
	if (o->off) {
		memmove(o->p, o->p + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
		if (o->cap - o->len >= n)
			return 0;
	}
	want = o->cap ? o->cap : 4096;
	while (want - o->len < n)
		want *= 2;
	np = o->p ? realloc(o->p, want) : blk_get(want);
	if (!np)
		return -ENOMEM;
	o->p = np;
	o->cap = want;
	return 0;
}

static int ob_add(struct obuf *o, const void *d, size_t n)
{
	if (!n)
		return 0;
	if (ob_reserve(o, n) < 0)
		return -ENOMEM;
	memcpy(o->p + o->len, d, n);
	o->len += n;
	return 0;
}

/* Appends v in decimal (no printf on the per-request path). */
static int ob_u64(struct obuf *o, uint64_t v)
{
	char b[24], *e = b + sizeof(b), *p = e;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return ob_add(o, p, (size_t)(e - p));
}

static int ob_str(struct obuf *o, const char *s)
{
	return ob_add(o, s, strlen(s));
}

static void ob_free(struct obuf *o)
{
	blk_put(o->p, o->cap);
	memset(o, 0, sizeof(*o));
}

/* Frees the memory of an empty buffer (idle keep-alive connections hold none). */
static void ob_trim(struct obuf *o)
{
	if (!ob_pending(o))
		ob_free(o);
}

/* Writes what is pending: 0 all written, 1 some left (EAGAIN), -errno. *written += bytes. */
static int ob_flush(struct obuf *o, int fd, uint64_t *written)
{
	while (ob_pending(o)) {
		ssize_t n = send(fd, o->p + o->off, ob_pending(o), MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -errno;
		}
		o->off += (size_t)n;
		if (written)
			*written += (uint64_t)n;
	}
	o->off = o->len = 0;
	return 0;
}

/* Points a watcher at the events wanted (none: stopped). */
static void io_want(struct ev_loop *loop, ev_io *io, int fd, int events)
{
	if ((io->events & (EV_READ | EV_WRITE)) != events) {
		ev_io_stop(loop, io);
		ev_io_set(io, fd, events);
		if (events)
			ev_io_start(loop, io);
	} else if (events && !ev_is_active(io)) {
		ev_io_start(loop, io);
	}
}

/* ---- per-generation HTTP settings ----------------------------------------- */

struct h1p_svc {
	struct h1r_route *routes;
	size_t n_routes;
	struct h1r_route def; /* no route matched: the service itself */
	struct h1_limits lim;
	size_t max_headers;
	size_t in_cap;        /* request buffer limit: head limits + retry body */
	uint32_t detect_timeout_ms, max_requests, max_retry_body, pool_max_idle, pool_idle_timeout_ms;
	uint32_t head_timeout_ms;
	uint32_t attempts, backoff_base_ms, backoff_max_ms;
	uint16_t on_status[CFG_MAX_RETRY_STATUS];
	size_t n_on_status;
	uint32_t connect_timeout_ms, idle_timeout_ms, mark, buffer_size;
	double sample_rate;
	bool tracing;
};

static struct px_routestat *routestat_get(struct proxy_svcstat *st, const char *name)
{
	struct px_routestat *r;

	for (r = st->routes; r; r = r->next)
		if (strcmp(r->name, name) == 0)
			return r;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->next = st->routes;
	st->routes = r;
	return r;
}

void h1p_stat_free(struct proxy_svcstat *st)
{
	while (st->routes) {
		struct px_routestat *n = st->routes->next;

		free(st->routes);
		st->routes = n;
	}
}

struct h1p_svc *h1p_svc_new(const struct weft_config *cfg, const struct cfg_service *cs,
			    struct proxy_svcstat *st)
{
	struct h1p_svc *l;
	size_t i;

	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	if (cs->n_routes) {
		l->routes = calloc(cs->n_routes, sizeof(*l->routes));
		if (!l->routes)
			goto err;
	}
	for (i = 0; i < cs->n_routes; i++) {
		l->n_routes++;
		if (h1r_route_init(&l->routes[i], &cs->routes[i]) < 0)
			goto err;
		l->routes[i].stat = routestat_get(st, l->routes[i].name);
		if (!l->routes[i].stat)
			goto err;
	}
	l->def.name = strdup("default");
	if (!l->def.name)
		goto err;
	l->def.timeout_ms = cs->request_timeout_ms;
	l->def.stat = routestat_get(st, "default");
	if (!l->def.stat)
		goto err;
	l->lim.max_start_line = cs->max_request_line;
	l->lim.max_header_bytes = cs->max_header_bytes;
	l->lim.max_headers = cs->max_headers;
	l->max_headers = cs->max_headers ? cs->max_headers : H1_DEFAULT_MAX_HEADERS;
	l->detect_timeout_ms = cs->detect_timeout_ms;
	l->max_requests = cs->max_requests;
	l->max_retry_body = cs->max_retry_body;
	l->pool_max_idle = cs->pool_max_idle;
	l->pool_idle_timeout_ms = cs->pool_idle_timeout_ms;
	l->head_timeout_ms = cs->head_timeout_ms;
	l->in_cap = (size_t)(cs->max_request_line ? cs->max_request_line : H1_DEFAULT_MAX_START_LINE) +
		    (cs->max_header_bytes ? cs->max_header_bytes : H1_DEFAULT_MAX_HEADER_BYTES) + 16 +
		    (cs->max_retry_body > READ_CHUNK ? cs->max_retry_body : READ_CHUNK);
	l->attempts = cs->retry_attempts ? cs->retry_attempts : 1;
	l->backoff_base_ms = cs->retry_backoff_base_ms;
	l->backoff_max_ms = cs->retry_backoff_max_ms;
	l->n_on_status = cs->n_retry_on_status;
	for (i = 0; i < cs->n_retry_on_status && i < CFG_MAX_RETRY_STATUS; i++)
		l->on_status[i] = (uint16_t)cs->retry_on_status[i];
	l->connect_timeout_ms = cs->connect_timeout_ms;
	l->idle_timeout_ms = cs->idle_timeout_ms;
	l->mark = cfg->mark;
	l->buffer_size = cfg->buffer_size;
	l->sample_rate = cfg->tracing.sample_rate;
	l->tracing = cfg->tracing.enabled;
	/* the budget carries over reloads; a new window size starts a new window */
	if (st->budget.window_s != cs->retry_budget_window_s)
		retry_budget_init(&st->budget, cs->retry_budget_ratio, cs->retry_budget_min_per_s,
				  cs->retry_budget_window_s);
	st->budget.ratio = cs->retry_budget_ratio;
	st->budget.min_per_s = cs->retry_budget_min_per_s;
	return l;
err:
	h1p_svc_free(l);
	return NULL;
}

void h1p_svc_free(struct h1p_svc *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n_routes; i++)
		h1r_route_free(&l->routes[i]);
	free(l->routes);
	h1r_route_free(&l->def);
	free(l);
}

/* ---- sessions --------------------------------------------------------------- */

enum h1s_state { S_HEAD, S_BODY, S_UPSTREAM, S_BACKOFF, S_RESPONSE, S_TUNNEL, S_CLOSING };

/* One upstream connection: in use by a session, or idle in its endpoint's pool. */
struct h1up {
	struct h1up *next, *prev;    /* endpoint's idle list for this worker */
	struct h1up *wnext, *wprev;  /* worker's list of idle connections */
	struct proxy_worker *w;
	struct proxy_ep *ep;         /* ref held */
	struct h1s *s;               /* NULL while idle */
	int fd;
	ev_io io;
	ev_timer t;                  /* connect timeout, or idle timeout in the pool */
	bool tcp_up;                 /* the TCP connect completed */
	bool connected, reused, eof; /* connected: ready for HTTP (TLS and preamble done, if any) */
	bool pooled;                 /* linked in the idle lists */
	char *rb;                    /* response bytes */
	size_t rlen, rcap;
	struct obuf wb;              /* towards the upstream */
	uint64_t written;
	/* an endpoint on another node: mutual TLS to that node's agent, then the preamble */
	struct tls_conn *tls;
	const struct tls_ctx *ctx;   /* identity it was made with: the pool never hands it to another */
	struct weft_sockaddr node;   /* the agent it goes to */
	enum tls_want want;          /* what the last TLS call that returned -EAGAIN waits for */
	struct up_hs *hs;            /* during the setup only */
};

/* The secure setup of a connection to another node's agent (docs/security.md). */
struct up_hs {
	uint8_t pre[RELAY_PREFIX_MAX];
	size_t pre_len, pre_off;
	uint8_t reply[PREAMBLE_REPLY_LEN];
	size_t got;
	bool prefix_sent;
};

/*
 * What one exchange needs beyond the session: allocated when a request's
 * first bytes arrive, freed when the connection goes idle, so an idle
 * keep-alive connection is only its struct h1s. Under 1 KiB: glibc's
 * per-thread cache serves it without locking.
 */
struct h1x {
	struct h1_request req;
	struct h1_response resp;
	struct h1_body rbody;        /* request body framing */
	struct h1_body sbody;        /* response body framing */
	struct trace_ctx tc;
	char method[16], path[128];  /* for spans */
};

struct h1s {
	struct h1s *prev, *next;     /* worker's session list (under px->lock) */
	struct proxy *px;
	struct proxy_worker *w;
	struct proxy_svc *svc;       /* the dialled service (ref) */
	struct h1p_svc *l7;          /* svc->l7 */
	struct weft_orig orig;
	struct weft_sockaddr client;
	struct mtls *mtls;           /* TLS bundle for endpoints on other nodes (ref; NULL: none) */
	int cfd;
	ev_io cio;
	ev_timer timer;              /* request deadline, or keep-alive idle */
	ev_timer btimer;             /* retry back-off */
	ev_tstamp started;
	uint64_t bytes_in, bytes_out;
	bool dead, listed, client_eof, reset_client;
	bool head_timing;            /* s->timer runs http.head_timeout_ms for a started head */
	enum h1s_state st;

	struct h1x *x;               /* the exchange in progress; NULL while idle */

	/* request bytes: head at ib[0..head_len), body from there */
	char *ib;
	size_t ilen, icap;
	struct h1_header *hdrs;
	size_t head_len, bscan;      /* body parsed up to ib[bscan] */
	bool body_done, streaming, body_dropped, has_body;

	/* the exchange */
	struct h1r_route *route;
	struct proxy_svc *bsvc;      /* backend service (ref), per request */
	bool counted;                /* in svc->stat->inflight */
	bool retry_method;           /* idempotent or route.retryable */
	bool sent_continue, close_after, http10;
	unsigned attempt;
	uint64_t tried;
	int ep_i;                    /* index in bsvc of the attempt's endpoint, -1 none */
	struct h1up *up;
	char ep_str[ADDR_STRLEN];    /* the attempt's endpoint, for /conns (written under px->lock) */
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
	struct obuf ob;              /* towards the client */
};

struct h1detect {
	struct h1detect *next, *prev;
	struct proxy_worker *w;
	struct proxy_svc *svc;
	struct weft_orig orig;
	struct weft_sockaddr peer;
	int fd;
	ev_io io;
	ev_timer t;     /* http.detect_timeout_ms */
	ev_timer poll;  /* a known prefix arrived: look again shortly (the bytes stay readable) */
};

static void up_close(struct h1up *u);
static void sess_client_cb(struct ev_loop *loop, ev_io *io, int revents);
static void sess_up_cb(struct ev_loop *loop, ev_io *io, int revents);
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

static bool name_is(const struct h1_header *h, const char *lc, size_t n)
{
	return h->name_len == n && strncasecmp(h->name, lc, n) == 0;
}

/* ---- session bookkeeping ---- */

static void sess_list(struct h1s *s)
{
	struct proxy_worker *w = s->w;

	s->prev = NULL;
	s->next = w->h1_head;
	if (w->h1_head)
		w->h1_head->prev = s;
	w->h1_head = s;
	s->listed = true;
}

static void sess_unlist(struct h1s *s)
{
	if (!s->listed)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		s->w->h1_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->listed = false;
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
		s->svc->stat->inflight--;
		s->counted = false;
	}
	if (s->bsvc) {
		px_svc_unref(s->px, s->bsvc);
		s->bsvc = NULL;
	}
}

static void sess_free(struct h1s *s)
{
	struct proxy *px = s->px;

	ev_io_stop(s->w->loop, &s->cio);
	ev_timer_stop(s->w->loop, &s->timer);
	ev_timer_stop(s->w->loop, &s->btimer);
	if (s->up)
		up_close(s->up);
	s->up = NULL;
	if (s->cfd >= 0) {
		if (s->reset_client)
			px_reset_close(s->cfd);
		else
			close(s->cfd);
	}
	/* before the service reference goes: its settings size the header arrays */
	blk_put(s->ib, s->icap);
	blk_put(s->hdrs, hdrs_bytes(s->l7->max_headers));
	blk_put(s->rhdrs, hdrs_bytes(s->l7->max_headers));
	ob_free(&s->ob);
	free(s->x);
	pthread_mutex_lock(&px->lock);
	exchange_release_locked(s);
	sess_unlist(s);
	px->active--;
	s->svc->stat->active--;
	px->ctr.completed++;
	mtls_unref(s->mtls);
	px_svc_unref(px, s->svc);
	pthread_mutex_unlock(&px->lock);
	free(s);
}

/* ---- upstream connections and the pool ---- */

static void up_stop(struct h1up *u)
{
	ev_io_stop(u->w->loop, &u->io);
	ev_timer_stop(u->w->loop, &u->t);
}

static void pool_unlink(struct h1up *u)
{
	struct proxy_worker *w = u->w;
	unsigned id = w->id;

	if (u->prev)
		u->prev->next = u->next;
	else
		u->ep->idle[id] = u->next;
	if (u->next)
		u->next->prev = u->prev;
	u->ep->n_idle[id]--;
	u->pooled = false;
	if (u->wprev)
		u->wprev->wnext = u->wnext;
	else
		w->idle_head = u->wnext;
	if (u->wnext)
		u->wnext->wprev = u->wprev;
	u->next = u->prev = u->wnext = u->wprev = NULL;
}

static void up_close(struct h1up *u)
{
	struct proxy *px = u->w->px;

	up_stop(u);
	if (u->pooled)
		pool_unlink(u);
	tls_conn_free(u->tls);
	free(u->hs);
	if (u->fd >= 0)
		close(u->fd);
	blk_put(u->rb, u->rcap);
	ob_free(&u->wb);
	pthread_mutex_lock(&px->lock);
	px_ep_unref(px, u->ep);
	pthread_mutex_unlock(&px->lock);
	free(u);
}

static void pool_idle_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct h1up *u = io->data;

	(void)loop;
	(void)revents;
	/* an idle connection has nothing to say: EOF, a stray byte or an error all end it */
	up_close(u);
}

static void pool_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	up_close(t->data);
}

/* After a complete exchange: keep the connection for the next request, or close it. */
static void pool_put(struct h1up *u, const struct h1p_svc *l)
{
	struct proxy_worker *w = u->w;
	unsigned id = w->id;

	ev_timer_stop(w->loop, &u->t);
	u->s = NULL;
	if (u->rlen || ob_pending(&u->wb) || u->eof || u->hs || (u->tls && tls_pending(u->tls)) ||
	    u->ep->n_idle[id] >= l->pool_max_idle) {
		up_close(u);
		return;
	}
	blk_put(u->rb, u->rcap);
	u->rb = NULL;
	u->rlen = u->rcap = 0;
	ob_free(&u->wb);
	u->next = u->ep->idle[id];
	u->prev = NULL;
	if (u->next)
		u->next->prev = u;
	u->ep->idle[id] = u;
	u->ep->n_idle[id]++;
	u->wnext = w->idle_head;
	u->wprev = NULL;
	if (w->idle_head)
		w->idle_head->wprev = u;
	w->idle_head = u;
	u->pooled = true;
	/* usually already armed for reading: then switching callbacks costs no epoll_ctl */
	ev_set_cb(&u->io, pool_idle_cb);
	io_want(w->loop, &u->io, u->fd, EV_READ);
	ev_timer_init(&u->t, pool_timeout_cb, l->pool_idle_timeout_ms / 1000.0, 0.);
	u->t.data = u;
	ev_timer_start(w->loop, &u->t);
}

static void up_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents);

/* An upstream connection to ep for s: pooled, or a new non-blocking connect. */
/*
 * An upstream connection to ep for s: a pooled one, or a new non-blocking
 * connect. node non-NULL: ep lives on another node, reached through that
 * node's agent over mutual TLS with the calling workload's identity, the
 * preamble naming ep (docs/security.md); a pooled connection is reused only
 * if it was made with the same identity to the same agent.
 */
static struct h1up *up_get(struct h1s *s, struct proxy_ep *ep, const struct weft_sockaddr *node, int *err)
{
	struct proxy_worker *w = s->w;
	const struct weft_sockaddr *dst = node ? node : &ep->addr;
	struct tls_ctx *ctx = NULL;
	struct h1up *u;
	int fd, one = 1;

	if (node) {
		ctx = s->mtls ? mtls_client_ctx(s->mtls, s->orig.cgroup_id) : NULL;
		if (!ctx) {
			*err = EHOSTUNREACH; /* the config forbids node endpoints without tls: be safe */
			return NULL;
		}
	}
	for (u = ep->idle[w->id]; u; u = u->next)
		if (u->ctx == ctx && (!node || addr_equal(&u->node, node)))
			break;
	if (u) {
		pool_unlink(u);
		ev_timer_stop(w->loop, &u->t);
		ev_set_cb(&u->io, sess_up_cb);
		u->reused = true;
	} else {
		u = calloc(1, sizeof(*u));
		if (!u) {
			*err = ENOMEM;
			return NULL;
		}
		if (node) {
			struct preamble pre;
			int n;

			u->hs = calloc(1, sizeof(*u->hs));
			if (!u->hs) {
				free(u);
				*err = ENOMEM;
				return NULL;
			}
			memset(&pre, 0, sizeof(pre));
			pre.target = ep->addr;
			pre.proto = PREAMBLE_PROTO_HTTP1;
			copy_trunc(pre.service, sizeof(pre.service), s->bsvc->name, strlen(s->bsvc->name));
			n = preamble_encode(u->hs->pre, sizeof(u->hs->pre), &pre);
			if (n < 0) {
				free(u->hs);
				free(u);
				*err = -n;
				return NULL;
			}
			u->hs->pre_len = (size_t)n;
			u->ctx = ctx;
			u->node = *node;
		}
		fd = socket(dst->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
		if (fd < 0) {
			*err = errno;
			free(u->hs);
			free(u);
			return NULL;
		}
		if (s->l7->mark)
			(void)setsockopt(fd, SOL_SOCKET, SO_MARK, &s->l7->mark, sizeof(s->l7->mark));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, &dst->sa, dst->len) < 0 && errno != EINPROGRESS) {
			*err = errno;
			close(fd);
			free(u->hs);
			free(u);
			return NULL;
		}
		u->fd = fd;
		u->w = w;
		u->ep = ep;
		pthread_mutex_lock(&w->px->lock);
		ep->refs++;
		pthread_mutex_unlock(&w->px->lock);
	}
	u->s = s;
	u->connected = u->reused;
	if (!u->reused) {
		/* the request is written as soon as the connect completes (sess_arm adjusts from there) */
		ev_io_init(&u->io, sess_up_cb, u->fd, EV_WRITE);
		u->io.data = u;
		ev_io_start(w->loop, &u->io);
	}
	/* connect_ms bounds the TCP connect and, to another node, the handshake and preamble too */
	ev_timer_init(&u->t, up_timeout_cb, s->l7->connect_timeout_ms / 1000.0, 0.);
	u->t.data = u;
	if (!u->connected && s->l7->connect_timeout_ms)
		ev_timer_start(w->loop, &u->t);
	return u;
}

/*
 * The secure setup after the TCP connect: TLS handshake, the preamble
 * written, the 8-byte reply read. 0: done (ready for HTTP), -EAGAIN: wait
 * for u->want, or the attempt's -errno (-EPROTO for TLS failures and
 * garbage, the reply's meaning otherwise: preamble_status_errno).
 */
static int up_secure_step(struct h1up *u)
{
	struct up_hs *hs = u->hs;
	enum preamble_status st;
	ssize_t n;
	int rc;

	if (!u->tls) {
		/* the TLS connection takes its own reference on the context */
		u->tls = tls_conn_new((struct tls_ctx *)u->ctx, u->fd, false);
		if (!u->tls)
			return -ENOMEM;
	}
	for (;;) {
		if (!hs->prefix_sent) {
			rc = tls_handshake(u->tls);
			if (rc == -EAGAIN)
				goto wait;
			if (rc < 0) {
				char a[ADDR_STRLEN];

				log_info("endpoint %s: TLS handshake with the node agent %s failed: %s", u->ep->addr_str,
					 addr_format(&u->node, a, sizeof(a)), tls_conn_detail(u->tls));
				return rc == -ECONNRESET ? -ECONNRESET : -EPROTO;
			}
			while (hs->pre_off < hs->pre_len) {
				n = tls_write(u->tls, hs->pre + hs->pre_off, hs->pre_len - hs->pre_off);
				if (n == -EAGAIN)
					goto wait;
				if (n < 0)
					return -EPROTO;
				hs->pre_off += (size_t)n;
			}
			hs->prefix_sent = true;
		}
		n = tls_read(u->tls, hs->reply + hs->got, PREAMBLE_REPLY_LEN - hs->got);
		if (n == -EAGAIN)
			goto wait;
		if (n <= 0)
			return -EPROTO; /* closed instead of replying, or a TLS failure (the peer refused us) */
		hs->got += (size_t)n;
		rc = preamble_reply_decode(hs->reply, hs->got, &st);
		if (rc == -EAGAIN)
			continue;
		if (rc < 0)
			return -EPROTO;
		if (st != PREAMBLE_ST_OK)
			log_info("endpoint %s: the node agent replied %s", u->ep->addr_str, preamble_status_name(st));
		rc = preamble_status_errno(st);
		if (rc == 0) {
			free(u->hs);
			u->hs = NULL;
			u->want = TLS_WANT_NONE;
		}
		return rc;
	}
wait:
	u->want = tls_want(u->tls);
	return -EAGAIN;
}

/* ---- responses weft makes itself ---- */


static void reject_count(struct h1s *s, int status)
{
	int k = status == 408 ? PX_REJECT_408 : status == 414 ? PX_REJECT_414 : status == 431 ? PX_REJECT_431 : status == 501 ? PX_REJECT_501 :
		status == 505 ? PX_REJECT_505 : PX_REJECT_400;

	pthread_mutex_lock(&s->px->lock);
	s->svc->stat->rejected[k]++;
	pthread_mutex_unlock(&s->px->lock);
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
		up_close(s->up);
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
		     status, h1_status_text(status), strlen(why) + 1, why, close_conn ? "Connection: close\r\n" : "", why);
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
			int status, const char *err, const struct proxy_ep *ep)
{
	struct trace_span sp;

	if (!s->px->zipkin || !s->x->tc.sampled)
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
	zipkin_submit(s->px->zipkin, &sp);
}

/* The CLIENT span of the attempt that just ended. */
static void attempt_span_end(struct h1s *s, int status, const char *err)
{
	const struct proxy_ep *ep = s->up ? s->up->ep : NULL;

	if (!s->attempt_span)
		return;
	span_submit(s, TRACE_KIND_CLIENT, s->attempt_span, s->span_id, s->attempt_wall_us,
		    (int64_t)((now_of(s) - s->attempt_start) * 1e6), status, err, ep);
	s->attempt_span = 0;
}

static void exchange_metrics(struct h1s *s)
{
	struct px_routestat *rs = s->route ? s->route->stat : NULL;
	double d = now_of(s) - s->req_start;
	size_t i;

	if (!rs)
		return;
	pthread_mutex_lock(&s->px->lock);
	if (s->status >= 100 && s->status <= 599)
		rs->by_class[s->status / 100]++;
	for (i = 0; i < PX_REQ_BUCKETS; i++)
		if (d <= req_bounds[i])
			rs->buckets[i]++;
	rs->count++;
	rs->sum += d;
	pthread_mutex_unlock(&s->px->lock);
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

/* timeouts.idle_ms bounds a keep-alive connection waiting for (the rest of) its next head. */
static void idle_arm(struct h1s *s)
{
	ev_timer_stop(s->w->loop, &s->timer);
	if (!s->l7->idle_timeout_ms)
		return;
	ev_timer_set(&s->timer, s->l7->idle_timeout_ms / 1000.0, 0.);
	ev_timer_start(s->w->loop, &s->timer);
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
	if (s->up) {
		if (up_reusable)
			pool_put(s->up, s->bsvc && s->bsvc->l7 ? s->bsvc->l7 : s->l7);
		else
			up_close(s->up);
		s->up = NULL;
	}
	if (s->span_id)
		span_submit(s, TRACE_KIND_SERVER, s->span_id, s->have_parent ? s->x->tc.span_id : 0, s->wall_start_us,
			    (int64_t)((now_of(s) - s->req_start) * 1e6), s->status,
			    s->status >= 500 ? "error" : NULL, NULL);
	exchange_metrics(s);
	pthread_mutex_lock(&s->px->lock);
	exchange_release_locked(s);
	pthread_mutex_unlock(&s->px->lock);
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
static struct proxy_svc *backend_pick_locked(struct h1s *s)
{
	struct proxy *px = s->px;
	struct h1r_route *r = s->route;
	struct h1r_backend *best = NULL;
	struct proxy_svc *b = NULL;
	size_t i;

	if (!r->n_be) {
		b = s->svc;
	} else {
		int k = h1r_backend_pick(r);

		if (k < 0)
			return NULL;
		best = &r->be[k];
		/* the index is this generation's; a reload may have moved it: then by name */
		if (best->index < px->n_svcs && strcmp(px->svcs[best->index]->name, best->service) == 0) {
			b = px->svcs[best->index];
		} else {
			for (i = 0; i < px->n_svcs && !b; i++)
				if (strcmp(px->svcs[i]->name, best->service) == 0)
					b = px->svcs[i];
		}
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
#define NAME(s) { s, sizeof(s) - 1 }
	static const struct {
		const char *name;
		size_t len;
	} drop[] = {
		NAME("host"), NAME("content-length"), NAME("transfer-encoding"), NAME("connection"),
		NAME("keep-alive"), NAME("proxy-connection"), NAME("te"), NAME("trailer"), NAME("upgrade"),
		NAME("weft-deadline"), NAME("grpc-timeout"), NAME("l5d-ctx-deadline"), NAME("traceparent"),
		NAME("b3"), NAME("x-b3-traceid"), NAME("x-b3-spanid"), NAME("x-b3-parentspanid"),
		NAME("x-b3-sampled"), NAME("x-b3-flags"),
	};
#undef NAME
	size_t i;

	for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		if (name_is(h, drop[i].name, drop[i].len))
			return true;
	if (s->sent_continue && name_is(h, "expect", 6))
		return true;
	for (i = 0; i < ntok; i++)
		if (h->name_len == tokl[i] && strncasecmp(h->name, tokp[i], tokl[i]) == 0)
			return true;
	if (s->route) {
		for (i = 0; i < s->route->n_rm; i++)
			if (name_is(h, s->route->rm[i].name, s->route->rm[i].nlen))
				return true;
		for (i = 0; i < s->route->n_add; i++)
			if (name_is(h, s->route->add[i].name, s->route->add[i].nlen))
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
	pthread_mutex_lock(&s->px->lock);
	ok = retry_budget_try(&s->svc->stat->budget, now_of(s));
	if (ok)
		s->svc->stat->retries++;
	else
		s->svc->stat->budget_exhausted++;
	pthread_mutex_unlock(&s->px->lock);
	if (!ok)
		log_debug("service %s: retry budget exhausted; not retrying", s->svc->name);
	return ok;
}

/* Abandons the current attempt: its connection closes, its endpoint stops counting it. */
static void attempt_drop(struct h1s *s)
{
	if (s->up) {
		up_close(s->up);
		s->up = NULL;
	}
	pthread_mutex_lock(&s->px->lock);
	attempt_release_locked(s);
	pthread_mutex_unlock(&s->px->lock);
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

/* An attempt failed before any response: retry it, or answer. */
static void attempt_failed(struct h1s *s, bool connect_fail, int err)
{
	struct proxy_ep *ep = s->up ? s->up->ep : NULL;
	bool reused = s->up && s->up->reused;

	attempt_span_end(s, 0, connect_fail ? "connect failed" : "upstream closed");
	if (ep) {
		pthread_mutex_lock(&s->px->lock);
		if (connect_fail)
			ep->connect_errors[px_err_of(err)]++;
		/* a remote agent's "denied" is about the caller, not the endpoint's health */
		if (!reused && s->ep_i >= 0 && err != EACCES)
			px_breaker(s->bsvc, s->ep_i, false, now_of(s),
				   connect_fail ? "consecutive connect failures" : "consecutive failures");
		pthread_mutex_unlock(&s->px->lock);
		log_debug("service %s: endpoint %s: %s: %s", s->bsvc->name, ep->addr_str,
			  connect_fail ? "connect failed" : "closed before responding", strerror(err));
	}
	/* a pooled connection the server closed while idle: the request never reached it */
	if (reused && !s->body_dropped && (s->retry_method || !s->has_body)) {
		attempt_drop(s);
		s->attempt--;
		attempt_start(s);
		return;
	}
	if (retry_allowed(s, connect_fail)) {
		schedule_retry(s);
		return;
	}
	respond_error(s, connect_fail ? 503 : 502, connect_fail ? "unavailable" : "upstream reset", false);
}

/* Starts attempt number s->attempt + 1. */
static void attempt_start(struct h1s *s)
{
	struct proxy *px = s->px;
	struct proxy_svc *b = s->bsvc;
	struct proxy_ep *ep = NULL;
	const struct weft_sockaddr *node = NULL;
	struct h1up *u;
	int i = -1, err = 0;

	if (s->deadline && now_of(s) >= s->deadline) {
		timer_expired(s);
		return;
	}
	s->attempt++;
	pthread_mutex_lock(&px->lock);
	i = bal_pick(&b->bal, s->tried, now_of(s));
	if (i < 0 && s->tried) {
		/* every endpoint was tried: a retry may go to one again */
		s->tried = 0;
		i = bal_pick(&b->bal, 0, now_of(s));
	}
	if (i >= 0) {
		if (i < 64)
			s->tried |= 1ull << i;
		ep = b->eps[i];
		ep->bal.active++;
		ep->requests++;
		s->ep_i = i;
		memcpy(s->ep_str, ep->addr_str, sizeof(s->ep_str));
		/* this generation's view of where the endpoint lives */
		if (b->remote[i])
			node = &b->nodes[i];
	}
	pthread_mutex_unlock(&px->lock);
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
	s->attempt_wall_us = wall_us();
	u = up_get(s, ep, node, &err);
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
	struct h1p_svc *l = s->l7;
	int64_t now_ns = wall_us() * 1000;
	bool shed;
	size_t i;

	s->req_start = now_of(s);
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
	pthread_mutex_lock(&s->px->lock);
	shed = s->svc->stat->inflight >= l->max_requests;
	if (shed) {
		s->svc->stat->shed++;
	} else {
		s->svc->stat->inflight++;
		s->counted = true;
		retry_budget_request(&s->svc->stat->budget, now_of(s));
		s->bsvc = backend_pick_locked(s);
	}
	pthread_mutex_unlock(&s->px->lock);
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
			pthread_mutex_lock(&s->px->lock);
			s->route->stat->timeouts++;
			pthread_mutex_unlock(&s->px->lock);
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
		bool drop = name_is(h, "connection", 10) || name_is(h, "keep-alive", 10) ||
			    name_is(h, "proxy-connection", 16) || name_is(h, "transfer-encoding", 17) ||
			    name_is(h, "trailer", 7) || name_is(h, "upgrade", 7) ||
			    (name_is(h, "content-length", 14) && !p->no_body);

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
	pthread_mutex_lock(&s->px->lock);
	if (s->ep_i >= 0) {
		struct proxy_ep *ep = s->bsvc->eps[s->ep_i];

		/* peak-EWMA of response latency: balancing is per request */
		bal_observe(&ep->bal, lat * 1e6, now_of(s));
		if (fail5)
			ep->responses_5xx++;
		px_breaker(s->bsvc, s->ep_i, !fail5, now_of(s), "consecutive 5xx responses or failures");
	}
	pthread_mutex_unlock(&s->px->lock);
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
 * Reads what fd has into *p, growing the buffer by doubling (from first, up
 * to limit) when less than slack bytes are free. Returns the bytes read (0:
 * EOF, *eof set), -EAGAIN, -ENOBUFS (full at the limit), -ENOMEM or -errno.
 * *moved tells the caller that pointers into the old buffer are stale.
 */
static int read_grow(int fd, struct tls_conn *tls, char **p, size_t *len, size_t *cap, size_t first, size_t limit,
		     size_t slack, bool *eof, bool *moved)
{
	ssize_t n;

	*moved = false;
	if (*cap - *len < slack && *cap < limit) {
		size_t want = *cap ? *cap * 2 : first;
		char *np;

		if (want > limit)
			want = limit;
		np = *p ? realloc(*p, want) : blk_get(want);
		if (!np)
			return -ENOMEM;
		*moved = np != *p;
		*p = np;
		*cap = want;
	}
	if (*len == *cap)
		return -ENOBUFS;
	if (tls) {
		n = tls_read(tls, *p + *len, *cap - *len);
		if (n < 0)
			return (int)n;
	} else {
		n = recv(fd, *p + *len, *cap - *len, 0);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
	}
	if (n == 0)
		*eof = true;
	*len += (size_t)n;
	return (int)n;
}

static int up_read(struct h1up *u, size_t cap)
{
	bool moved;
	int n, total = 0;

	/*
	 * A response head being parsed restarts by itself when the buffer
	 * moves. Over TLS, bytes already decrypted wait in the TLS layer, where
	 * the socket's readiness does not show them: take them all now.
	 */
	do {
		n = read_grow(u->fd, u->tls, &u->rb, &u->rlen, &u->rcap, UP_RBUF_MIN, cap, READ_CHUNK / 4, &u->eof,
			      &moved);
		if (n == -EAGAIN && u->tls)
			u->want = tls_want(u->tls);
		if (n > 0)
			total += n;
	} while (n > 0 && u->tls && tls_pending(u->tls) && u->rlen < u->rcap);
	return total > 0 ? total : n;
}

/* Writes what is pending towards the upstream (plain, or TLS records of at most 16 KiB). Like ob_flush. */
static int up_flush(struct h1up *u, uint64_t *written)
{
	struct obuf *o = &u->wb;

	if (!u->tls)
		return ob_flush(o, u->fd, written);
	while (ob_pending(o)) {
		ssize_t n = tls_write(u->tls, o->p + o->off, ob_pending(o));

		if (n == -EAGAIN) {
			u->want = tls_want(u->tls);
			return 1;
		}
		if (n < 0)
			return (int)n;
		o->off += (size_t)n;
		*written += (uint64_t)n;
	}
	o->off = o->len = 0;
	return 0;
}

static int client_read(struct h1s *s)
{
	bool moved;
	int n = read_grow(s->cfd, NULL, &s->ib, &s->ilen, &s->icap, 8192, s->l7->in_cap, 512, &s->client_eof, &moved);

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
		io_want(loop, &u->io, u->fd, ue);
	}
	io_want(loop, &s->cio, s->cfd, ce);
	/* an idle keep-alive connection holds no buffers and no header arrays */
	if (s->st == S_HEAD && !s->ilen) {
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
	int r;

	if (ob_pending(&s->ob)) {
		r = ob_flush(&s->ob, s->cfd, &s->bytes_out);
		if (r < 0) {
			s->dead = true;
			return false;
		}
	}
	if (s->up && s->up->connected && ob_pending(&s->up->wb)) {
		r = up_flush(s->up, &s->bytes_in);
		if (r < 0) {
			if (s->st == S_UPSTREAM && !s->x->resp.head_len)
				attempt_failed(s, false, -r);
			else
				s->dead = true;
			return !s->dead;
		}
	}
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
			if (r < 0 && r != -EAGAIN && r != -ENOBUFS) {
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
	struct h1s *s = u->s;

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
	struct h1s *s = u->s;
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
		if (u->hs) {
			/* another node's agent: TLS and the preamble first (any event may advance them) */
			r = up_secure_step(u);
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
		pthread_mutex_lock(&s->px->lock);
		u->ep->opened++;
		px_ep_observe_latency(u->ep, now_of(s) - s->attempt_start);
		pthread_mutex_unlock(&s->px->lock);
	}
	if (revents & EV_READ) {
		if (s->st == S_TUNNEL) {
			r = up_read(u, READ_CHUNK);
			if (r > 0) {
				ob_add(&s->ob, u->rb, u->rlen);
				u->rlen = 0;
			} else if (r < 0 && r != -EAGAIN) {
				s->dead = true;
			}
			sess_finish_cb(s);
			return;
		}
		r = up_read(u, s->x->resp.head_len || s->st != S_UPSTREAM ? (size_t)s->l7->buffer_size
				: (size_t)s->l7->buffer_size + s->l7->in_cap);
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
					log_info("service %s: endpoint %s sent an invalid response (%s); 502",
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
 * s->timer fired (or an attempt found the deadline passed): a stalled head
 * gets 408, an idle keep-alive connection ends, a request in flight gets 504.
 */
static void timer_expired(struct h1s *s)
{
	if (s->st == S_HEAD && s->head_timing) {
		reject_count(s, 408);
		s->body_done = false; /* forces Connection: close */
		respond_error(s, 408, "request head timeout", true);
	} else if (s->st == S_HEAD) {
		/* keep-alive idle timeout */
		s->dead = true;
	} else if (s->st != S_CLOSING && s->st != S_TUNNEL) {
		pthread_mutex_lock(&s->px->lock);
		if (s->route)
			s->route->stat->timeouts++;
		pthread_mutex_unlock(&s->px->lock);
		attempt_span_end(s, 0, "timeout");
		respond_error(s, 504, "timeout", false);
	}
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

void h1p_start(struct proxy_worker *w, int fd, struct proxy_svc *svc, const struct weft_orig *orig,
	       const struct weft_sockaddr *peer)
{
	struct proxy *px = w->px;
	struct h1s *s = calloc(1, sizeof(*s));
	int one = 1;

	if (!s) {
		pthread_mutex_lock(&px->lock);
		px_svc_unref(px, svc);
		pthread_mutex_unlock(&px->lock);
		px_reset_close(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->px = px;
	s->w = w;
	s->svc = svc;
	s->l7 = svc->l7;
	s->orig = *orig;
	s->client = *peer;
	s->cfd = fd;
	s->ep_i = -1;
	s->started = ev_now(w->loop);
	s->rng = trace_random_u64();
	reset_request(s);
	ev_io_init(&s->cio, sess_client_cb, fd, EV_READ);
	s->cio.data = s;
	ev_timer_init(&s->timer, deadline_cb, 1., 0.);
	s->timer.data = s;
	ev_timer_init(&s->btimer, backoff_cb, 1., 0.);
	s->btimer.data = s;
	pthread_mutex_lock(&px->lock);
	px->active++;
	svc->stat->active++;
	s->mtls = mtls_ref(px->mtls);
	sess_list(s);
	pthread_mutex_unlock(&px->lock);
	ev_io_start(w->loop, &s->cio);
	idle_arm(s);
}

/* ---- protocol detection ("auto") ---- */

static void detect_end(struct h1detect *d, int kind)
{
	struct proxy_worker *w = d->w;
	struct proxy *px = w->px;

	ev_io_stop(w->loop, &d->io);
	ev_timer_stop(w->loop, &d->t);
	ev_timer_stop(w->loop, &d->poll);
	if (d->prev)
		d->prev->next = d->next;
	else
		w->detecting = d->next;
	if (d->next)
		d->next->prev = d->prev;
	pthread_mutex_lock(&px->lock);
	d->svc->stat->detected[kind]++;
	pthread_mutex_unlock(&px->lock);
	if (kind == PX_DETECT_HTTP1)
		h1p_start(w, d->fd, d->svc, &d->orig, &d->peer);
	else
		px_start_relay(w, d->fd, d->svc, &d->orig, &d->peer);
	free(d);
}

static void detect_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct h1detect *d = io->data;
	unsigned char b[H1R_DETECT_MAX];
	ssize_t n;
	int k;

	(void)loop;
	(void)revents;
	n = recv(d->fd, b, sizeof(b), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		detect_end(d, PX_DETECT_OPAQUE); /* EOF or error: the relay deals with it */
		return;
	}
	k = h1r_detect(b, (size_t)n);
	if (k < 0 && (size_t)n >= H1R_DETECT_MAX)
		k = H1R_OPAQUE;
	if (k >= 0) {
		detect_end(d, k);
		return;
	}
	/*
	 * A prefix of something we know ("GE"): the bytes stay queued, so the
	 * socket stays readable and a level-triggered watcher would spin. Look
	 * again in 2 ms instead, until the detection timeout.
	 */
	ev_io_stop(d->w->loop, &d->io);
	ev_timer_start(d->w->loop, &d->poll);
}

static void detect_poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct h1detect *d = t->data;

	(void)revents;
	detect_io_cb(loop, &d->io, EV_READ);
}

static void detect_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct h1detect *d = t->data;

	(void)loop;
	(void)revents;
	detect_end(d, PX_DETECT_TIMEOUT);
}

void h1p_detect(struct proxy_worker *w, int fd, struct proxy_svc *svc, const struct weft_orig *orig,
		const struct weft_sockaddr *peer)
{
	struct h1detect *d = calloc(1, sizeof(*d));

	if (!d) {
		pthread_mutex_lock(&w->px->lock);
		px_svc_unref(w->px, svc);
		pthread_mutex_unlock(&w->px->lock);
		px_reset_close(fd);
		return;
	}
	d->w = w;
	d->svc = svc;
	d->orig = *orig;
	d->peer = *peer;
	d->fd = fd;
	d->next = w->detecting;
	if (d->next)
		d->next->prev = d;
	w->detecting = d;
	ev_io_init(&d->io, detect_io_cb, fd, EV_READ);
	d->io.data = d;
	ev_timer_init(&d->t, detect_timeout_cb, svc->l7->detect_timeout_ms / 1000.0, 0.);
	d->t.data = d;
	ev_timer_init(&d->poll, detect_poll_cb, 0.002, 0.);
	d->poll.data = d;
	ev_io_start(w->loop, &d->io);
	ev_timer_start(w->loop, &d->t);
}

/* ---- worker teardown and drain ---- */

void h1p_worker_abort(struct proxy_worker *w)
{
	struct proxy *px = w->px;

	while (w->detecting) {
		struct h1detect *d = w->detecting;

		ev_io_stop(w->loop, &d->io);
		ev_timer_stop(w->loop, &d->t);
		ev_timer_stop(w->loop, &d->poll);
		w->detecting = d->next;
		pthread_mutex_lock(&px->lock);
		px_svc_unref(px, d->svc);
		pthread_mutex_unlock(&px->lock);
		px_reset_close(d->fd);
		free(d);
	}
	for (;;) {
		struct h1s *s;

		pthread_mutex_lock(&px->lock);
		s = w->h1_head;
		pthread_mutex_unlock(&px->lock);
		if (!s)
			break;
		s->reset_client = true;
		sess_free(s);
	}
	while (w->idle_head)
		up_close(w->idle_head);
}

void h1p_worker_drain(struct proxy_worker *w)
{
	struct h1s *s, *n;

	w->draining = true;
	for (s = w->h1_head; s; s = n) {
		n = s->next;
		if (s->st == S_HEAD && !s->ilen)
			sess_free(s);
	}
}

/* ---- admin ---- */

void h1p_render_conns(struct proxy_worker *w, struct buf *out, bool *first,
		      const char *(*cgroup_name)(void *arg, uint64_t id), void *arg)
{
	struct h1s *s;
	char a[ADDR_STRLEN], c[ADDR_STRLEN];

	for (s = w->h1_head; s; s = s->next) {
		struct weft_sockaddr dst;
		const char *cg = cgroup_name ? cgroup_name(arg, s->orig.cgroup_id) : NULL;

		addr_from_key(&s->orig.dst, &dst);
		buf_puts(out, *first ? "{\"cgroup\":" : ",{\"cgroup\":");
		*first = false;
		if (cg)
			buf_json_str(out, cg);
		else
			buf_puts(out, "null");
		buf_printf(out, ",\"cgroup_id\":%llu,\"pid\":%u,\"client\":\"%s\",\"orig_dst\":\"%s\",\"service\":",
			   (unsigned long long)s->orig.cgroup_id, s->orig.pid, addr_format(&s->client, c, sizeof(c)),
			   addr_format(&dst, a, sizeof(a)));
		buf_json_str(out, s->svc->name);
		buf_puts(out, ",\"endpoint\":");
		if (s->ep_str[0])
			buf_json_str(out, s->ep_str);
		else
			buf_puts(out, "null");
		buf_printf(out, ",\"state\":\"%s\",\"protocol\":\"http\",\"bytes_in\":%llu,\"bytes_out\":%llu,"
			   "\"age_s\":%.3f}", s->st == S_HEAD ? "idle" : s->st == S_TUNNEL ? "tunnel" : "request",
			   (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out, ev_time() - s->started);
	}
}

void h1p_render_conns_text(struct proxy_worker *w, struct table *t,
			   const char *(*cgroup_name)(void *arg, uint64_t id), void *arg)
{
	char pid[16], cl[ADDR_STRLEN], od[ADDR_STRLEN], bi[24], bo[24], age[24], cgid[32];
	ev_tstamp now = ev_time();
	struct weft_sockaddr dst;
	struct h1s *s;

	for (s = w->h1_head; s; s = s->next) {
		const char *cg = cgroup_name ? cgroup_name(arg, s->orig.cgroup_id) : NULL;

		if (!cg) {
			snprintf(cgid, sizeof(cgid), "id:%llu", (unsigned long long)s->orig.cgroup_id);
			cg = cgid;
		}
		snprintf(pid, sizeof(pid), "%u", s->orig.pid);
		addr_format(&s->client, cl, sizeof(cl));
		addr_from_key(&s->orig.dst, &dst);
		addr_format(&dst, od, sizeof(od));
		snprintf(bi, sizeof(bi), "%llu", (unsigned long long)s->bytes_in);
		snprintf(bo, sizeof(bo), "%llu", (unsigned long long)s->bytes_out);
		snprintf(age, sizeof(age), "%.1f", now - s->started);
		{
			const char *row[] = { cg, pid, cl, od, s->svc->name,
					      s->st == S_HEAD ? "(idle)" : s->ep_str[0] ? s->ep_str : "(routing)",
					      bi, bo, age };
			table_row(t, row);
		}
	}
}

void h1p_render_service(const struct proxy_svc *s, struct buf *out, double now)
{
	const struct h1p_svc *l = s->l7;
	struct proxy_svcstat *st = s->stat;
	size_t i;

	if (!l)
		return;
	buf_printf(out,
		   ",\"http\":{\"requests_in_flight\":%u,\"max_requests\":%u,\"retries\":%llu,"
		   "\"retry_budget_exhausted\":%llu,\"retry_budget_available\":%llu,\"shed\":%llu,\"routes\":[",
		   st->inflight, l->max_requests, (unsigned long long)st->retries,
		   (unsigned long long)st->budget_exhausted,
		   (unsigned long long)retry_budget_available(&st->budget, now), (unsigned long long)st->shed);
	for (i = 0; i < l->n_routes; i++) {
		buf_puts(out, i ? "," : "");
		buf_json_str(out, l->routes[i].name);
	}
	buf_puts(out, "]}");
}

/* Starts a sample: metric{service="<name, escaped>  (the caller closes the quote and adds labels) */
static void metric_svc(struct buf *out, const char *metric, const char *svc)
{
	buf_puts(out, metric);
	buf_puts(out, "{service=\"");
	buf_prom_label(out, svc);
}

/* Starts a sample: metric{service="<svc>",route="<route>  (escaped; the caller goes on) */
static void metric_route(struct buf *out, const char *metric, const char *svc, const char *route)
{
	metric_svc(out, metric, svc);
	buf_puts(out, "\",route=\"");
	buf_prom_label(out, route);
}

void h1p_render_metrics(struct proxy *px, struct buf *out)
{
	static const char *const cls[] = { "", "1xx", "2xx", "3xx", "4xx", "5xx" };
	struct proxy_svcstat *st;
	struct px_routestat *r;
	struct proxy_ep *ep;
	size_t i;

	buf_puts(out, "# HELP weft_http_requests_total HTTP requests answered, by service, route and status class.\n"
		      "# TYPE weft_http_requests_total counter\n");
	for (st = px->stat_registry; st; st = st->next)
		for (r = st->routes; r; r = r->next)
			for (i = 1; i < 6; i++) {
				if (!r->by_class[i] && i != 2 && i != 5)
					continue;
				metric_route(out, "weft_http_requests_total", st->name, r->name);
				buf_printf(out, "\",class=\"%s\"} %llu\n", cls[i], (unsigned long long)r->by_class[i]);
			}
	buf_puts(out, "# HELP weft_http_request_duration_seconds HTTP request duration, from the request head to the "
		      "end of the response.\n# TYPE weft_http_request_duration_seconds histogram\n");
	for (st = px->stat_registry; st; st = st->next)
		for (r = st->routes; r; r = r->next) {
			for (i = 0; i <= PX_REQ_BUCKETS; i++) {
				metric_route(out, "weft_http_request_duration_seconds_bucket", st->name, r->name);
				if (i < PX_REQ_BUCKETS)
					buf_printf(out, "\",le=\"%g\"} %llu\n", req_bounds[i],
						   (unsigned long long)r->buckets[i]);
				else
					buf_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)r->count);
			}
			metric_route(out, "weft_http_request_duration_seconds_sum", st->name, r->name);
			buf_printf(out, "\"} %.6f\n", r->sum);
			metric_route(out, "weft_http_request_duration_seconds_count", st->name, r->name);
			buf_printf(out, "\"} %llu\n", (unsigned long long)r->count);
		}
	buf_puts(out, "# HELP weft_http_timeouts_total HTTP requests answered 504 by weft (route timeout or deadline).\n"
		      "# TYPE weft_http_timeouts_total counter\n");
	for (st = px->stat_registry; st; st = st->next)
		for (r = st->routes; r; r = r->next) {
			metric_route(out, "weft_http_timeouts_total", st->name, r->name);
			buf_printf(out, "\"} %llu\n", (unsigned long long)r->timeouts);
		}
#define SVC_COUNTER(metric, help, field)                                                        \
	do {                                                                                    \
		buf_puts(out, "# HELP " metric " " help "\n# TYPE " metric " counter\n");      \
		for (st = px->stat_registry; st; st = st->next) {                               \
			if (!st->routes)                                                        \
				continue;                                                       \
			metric_svc(out, metric, st->name);                                      \
			buf_printf(out, "\"} %llu\n", (unsigned long long)st->field);           \
		}                                                                               \
	} while (0)
	SVC_COUNTER("weft_http_retries_total", "HTTP attempts made after the first, per service.", retries);
	SVC_COUNTER("weft_http_retry_budget_exhausted_total",
		    "HTTP retries not made because the service's retry budget was spent.", budget_exhausted);
	SVC_COUNTER("weft_http_shed_total", "HTTP requests answered 503 at once: limits.max_requests in flight.",
		    shed);
#undef SVC_COUNTER
	buf_puts(out, "# HELP weft_http_requests_in_flight HTTP requests in flight, per service.\n"
		      "# TYPE weft_http_requests_in_flight gauge\n");
	for (st = px->stat_registry; st; st = st->next) {
		if (!st->routes)
			continue;
		metric_svc(out, "weft_http_requests_in_flight", st->name);
		buf_printf(out, "\"} %u\n", st->inflight);
	}
	buf_puts(out, "# HELP weft_http_rejected_total Malformed or unsupported HTTP requests refused by weft, by "
		      "status.\n# TYPE weft_http_rejected_total counter\n");
	for (st = px->stat_registry; st; st = st->next) {
		if (!st->routes)
			continue;
		for (i = 0; i < PX_REJECT__MAX; i++) {
			metric_svc(out, "weft_http_rejected_total", st->name);
			buf_printf(out, "\",status=\"%s\"} %llu\n", reject_names[i], (unsigned long long)st->rejected[i]);
		}
	}
	buf_puts(out, "# HELP weft_protocol_detected_total Connections to protocol \"auto\" services, by what their "
		      "first bytes were.\n# TYPE weft_protocol_detected_total counter\n");
	for (st = px->stat_registry; st; st = st->next) {
		uint64_t sum = 0;

		for (i = 0; i < PX_DETECT__MAX; i++)
			sum += st->detected[i];
		if (!sum)
			continue;
		for (i = 0; i < PX_DETECT__MAX; i++) {
			metric_svc(out, "weft_protocol_detected_total", st->name);
			buf_printf(out, "\",protocol=\"%s\"} %llu\n", detect_names[i], (unsigned long long)st->detected[i]);
		}
	}
	buf_puts(out, "# HELP weft_http_endpoint_requests_total HTTP attempts sent to an endpoint, retries included.\n"
		      "# TYPE weft_http_endpoint_requests_total counter\n");
	for (ep = px->ep_registry; ep; ep = ep->next) {
		if (!ep->requests)
			continue;
		metric_svc(out, "weft_http_endpoint_requests_total", ep->svc->name);
		buf_printf(out, "\",endpoint=\"%s\"} %llu\n", ep->addr_str, (unsigned long long)ep->requests);
	}
	buf_puts(out, "# HELP weft_http_endpoint_responses_5xx_total HTTP attempts an endpoint answered with a 5xx "
		      "status (they count toward ejection).\n# TYPE weft_http_endpoint_responses_5xx_total counter\n");
	for (ep = px->ep_registry; ep; ep = ep->next) {
		if (!ep->requests)
			continue;
		metric_svc(out, "weft_http_endpoint_responses_5xx_total", ep->svc->name);
		buf_printf(out, "\",endpoint=\"%s\"} %llu\n", ep->addr_str, (unsigned long long)ep->responses_5xx);
	}
	if (px->zipkin) {
		struct zipkin_stats zs;

		zipkin_get_stats(px->zipkin, &zs);
		buf_printf(out,
			   "# HELP weft_tracing_spans_exported_total Spans the Zipkin collector accepted.\n"
			   "# TYPE weft_tracing_spans_exported_total counter\n"
			   "weft_tracing_spans_exported_total %llu\n"
			   "# HELP weft_tracing_spans_dropped_total Spans dropped: export queue full, or their POST failed.\n"
			   "# TYPE weft_tracing_spans_dropped_total counter\n"
			   "weft_tracing_spans_dropped_total{reason=\"queue_full\"} %llu\n"
			   "weft_tracing_spans_dropped_total{reason=\"export_failed\"} %llu\n"
			   "# HELP weft_tracing_spans_queued Spans waiting for export.\n"
			   "# TYPE weft_tracing_spans_queued gauge\n"
			   "weft_tracing_spans_queued %u\n",
			   (unsigned long long)zs.exported, (unsigned long long)zs.dropped_full,
			   (unsigned long long)zs.dropped_failed, zs.queued);
	}
}
