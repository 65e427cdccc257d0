// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * h1pool: upstream connections and the keep-alive pool (h1pool.h).
 *
 * An idle connection sits on two lists of its worker: its endpoint's (to
 * hand it out again) and the worker's (to close them all at shutdown); it is
 * watched for readability, since an idle connection has nothing to say, and
 * timed by pool_idle_timeout_ms.
 */
#include "http/h1pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/preamble.h"
#include "http/h1svc.h"
#include "link/nodelink.h"
#include "lib/blk.h"
#include "lib/log.h"
#include "lib/netns.h"
#include "lib/sock.h"
#include "state/membudget.h"
#include "state/service.h"

#define READ_CHUNK (16u * 1024)
#define UP_RBUF_MIN (16u * 1024)

void h1_worker_init(struct h1_worker *w, struct ev_loop *loop, unsigned id, struct registry *reg, struct zipkin *zipkin,
		    struct membudget *mb)
{
	w->loop = loop;
	w->mb = mb;
	w->id = id;
	w->reg = reg;
	w->zipkin = zipkin;
	list_init(&w->sessions);
	list_init(&w->idle);
	w->draining = false;
}

static void up_stop(struct h1up *u)
{
	ev_io_stop(u->w->loop, &u->io);
	ev_timer_stop(u->w->loop, &u->t);
}

static void pool_unlink(struct h1up *u)
{
	list_del(&u->link);
	list_del(&u->wlink);
	u->ep->http->n_idle[u->w->id]--;
	u->pooled = false;
}

void h1up_close(struct h1up *u)
{
	struct registry *reg = u->w->reg;

	up_stop(u);
	if (u->pooled)
		pool_unlink(u);
	if (u->acct)
		mb_release(u->acct, u->rcap);
	tls_conn_free(u->tls);
	free(u->nl);
	if (u->fd >= 0)
		close(u->fd);
	blk_put(u->rb, u->rcap);
	ob_free(&u->wb);
	svc_ep_unref(reg, u->ep);
	free(u);
}

void h1_worker_close_idle(struct h1_worker *w)
{
	while (!list_empty(&w->idle))
		h1up_close(list_first_entry(&w->idle, struct h1up, wlink));
}

static void pool_idle_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	/* an idle connection has nothing to say: EOF, a stray byte or an error all end it */
	h1up_close(io->data);
}

static void pool_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	h1up_close(t->data);
}

void h1up_put(struct h1up *u, const struct h1_svc *l)
{
	struct h1_worker *w = u->w;
	struct h1_ep *he = u->ep->http;
	unsigned id = w->id;

	ev_timer_stop(w->loop, &u->t);
	u->owner = NULL;
	if (u->rlen || ob_pending(&u->wb) || u->eof || u->nl || (u->tls && tls_pending(u->tls)) ||
	    he->n_idle[id] >= l->pool_max_idle) {
		h1up_close(u);
		return;
	}
	if (u->acct)
		mb_release(u->acct, u->rcap);
	u->acct = NULL;
	blk_put(u->rb, u->rcap);
	u->rb = NULL;
	u->rlen = u->rcap = 0;
	ob_free(&u->wb);
	list_add(&u->link, &he->idle[id]);
	he->n_idle[id]++;
	list_add(&u->wlink, &w->idle);
	u->pooled = true;
	/* usually already armed for reading: then switching callbacks costs no epoll_ctl */
	ev_set_cb(&u->io, pool_idle_cb);
	sock_io_want(w->loop, &u->io, EV_READ);
	ev_timer_init(&u->t, pool_timeout_cb, l->pool_idle_timeout_ms / 1000.0, 0.);
	u->t.data = u;
	ev_timer_start(w->loop, &u->t);
}

/* A pooled connection to want->ep made with the same identity to the same agent, or NULL. */
static struct h1up *pool_find(struct h1_worker *w, const struct h1up_want *want)
{
	struct list_head *h = &want->ep->http->idle[w->id];
	struct h1up *u;

	list_for_each_entry(u, h, link)
		if (u->ctx == want->ctx && (!want->node || addr_equal(&u->node, want->node)))
			return u;
	return NULL;
}

/* A new connection's secure setup: the preamble naming the endpoint, written after the handshake. */
static int up_link_new(struct h1up *u, const struct h1up_want *want)
{
	char a[ADDR_STRLEN];
	struct preamble pre;
	int n;

	u->nl = malloc(sizeof(*u->nl));
	if (!u->nl)
		return -ENOMEM;
	memset(&pre, 0, sizeof(pre));
	pre.target = want->ep->addr;
	pre.proto = PREAMBLE_PROTO_HTTP1;
	/* a name the preamble cannot carry (a discovered "<ns>/<name>:<port>") stays out: the far side finds the service by target */
	if (preamble_service_name_ok(want->svc_name))
		snprintf(pre.service, sizeof(pre.service), "%s", want->svc_name);
	/* encoded in place: nodelink_init accepts its own buffer as the prefix */
	n = preamble_encode(u->nl->prefix, sizeof(u->nl->prefix), &pre);
	if (n >= 0)
		n = nodelink_init(u->nl, u->nl->prefix, (size_t)n, "endpoint %s (node agent %s)", want->ep->addr_str,
				  addr_format(want->node, a, sizeof(a)));
	if (n < 0)
		return n;
	u->ctx = want->ctx;
	u->node = *want->node;
	return 0;
}

/*
 * Is an idle pooled connection still usable? The pool's read watcher closes
 * one the server closed, but only once the loop runs it: a FIN that arrived
 * since (the server's keep-alive timeout racing our reuse) shows only here.
 * One recv(MSG_PEEK | MSG_DONTWAIT): EAGAIN is the only good answer; EOF, a
 * byte (an idle server has nothing to say; over TLS, a close_notify) or an
 * error mean the request would be written into a dead connection.
 */
static bool pool_alive(const struct h1up *u)
{
	char c;
	ssize_t n = recv(u->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

struct h1up *h1up_get(struct h1_worker *w, const struct h1up_want *want, int *err)
{
	const struct weft_sockaddr *dst = want->node ? want->node : &want->ep->addr;
	struct h1up *u;
	int fd = -1, r;

	while ((u = pool_find(w, want))) {
		pool_unlink(u);
		if (!want->probe || pool_alive(u))
			break;
		log_debug("endpoint %s: pooled connection found closed before reuse", want->ep->addr_str);
		h1up_close(u);
	}
	if (u) {
		ev_timer_stop(w->loop, &u->t);
		ev_set_cb(&u->io, want->io_cb);
		u->reused = true;
	} else {
		u = calloc(1, sizeof(*u));
		if (!u) {
			*err = ENOMEM;
			return NULL;
		}
		u->fd = -1;
		if (want->node && (r = up_link_new(u, want)) < 0) {
			*err = -r;
			goto fail;
		}
		/* in a pod's namespace when dst is a pod here; the mark keeps it out of the BPF redirect */
		fd = netns_upstream_socket(&dst->sa, want->mark);
		if (fd < 0) {
			*err = -fd;
			goto fail;
		}
		if (connect(fd, &dst->sa, dst->len) < 0 && errno != EINPROGRESS) {
			*err = errno;
			close(fd);
			goto fail;
		}
		u->fd = fd;
		u->w = w;
		u->ep = want->ep;
		pthread_mutex_lock(&w->reg->lock);
		svc_ep_ref_locked(want->ep);
		pthread_mutex_unlock(&w->reg->lock);
	}
	u->owner = want->owner;
	u->acct = want->acct;
	u->connected = u->reused;
	if (!u->reused) {
		/* the request is written as soon as the connect completes (the session adjusts from there) */
		ev_io_init(&u->io, want->io_cb, u->fd, EV_WRITE);
		u->io.data = u;
		ev_io_start(w->loop, &u->io);
	}
	/* connect_ms bounds the TCP connect and, to another node, the handshake and preamble too */
	ev_timer_init(&u->t, want->timeout_cb, want->connect_timeout_ms / 1000.0, 0.);
	u->t.data = u;
	if (!u->connected && want->connect_timeout_ms)
		ev_timer_start(w->loop, &u->t);
	return u;
fail:
	free(u->nl);
	free(u);
	return NULL;
}

int h1up_secure_step(struct h1up *u)
{
	int rc;

	if (!u->tls) {
		/* the TLS connection takes its own reference on the context */
		u->tls = tls_conn_new((struct tls_ctx *)u->ctx, u->fd, false);
		if (!u->tls)
			return -ENOMEM;
	}
	rc = nodelink_step(u->nl, u->tls);
	if (rc == -EAGAIN) {
		u->want = tls_want(u->tls);
		return -EAGAIN;
	}
	if (rc == 0) {
		free(u->nl);
		u->nl = NULL;
		u->want = TLS_WANT_NONE;
	}
	return rc;
}

/*
 * Reads what fd has into *p, growing the buffer by doubling (from first, up
 * to limit) when less than slack bytes are free. Returns the bytes read (0:
 * EOF, *eof set), -EAGAIN, -ENOBUFS (full at the limit), -ENOMEM or -errno.
 * *moved tells the caller that pointers into the old buffer are stale.
 */
int h1_read_grow(int fd, struct tls_conn *tls, char **p, size_t *len, size_t *cap, size_t first, size_t limit,
		 size_t slack, bool *eof, bool *moved, struct mb_acct *acct)
{
	ssize_t n;

	*moved = false;
	if (*cap - *len < slack && *cap < limit) {
		size_t want = *cap ? *cap * 2 : first;
		char *np;

		if (want > limit)
			want = limit;
		/* the budget first: a refused session holds no more than it had */
		if (acct && mb_charge(acct, want - *cap) != MB_OK)
			return -EDQUOT;
		np = *p ? realloc(*p, want) : blk_get(want);
		if (!np) {
			if (acct)
				mb_release(acct, want - *cap);
			return -ENOMEM;
		}
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

int h1up_read(struct h1up *u, size_t cap)
{
	bool moved;
	int n, total = 0;

	/*
	 * A response head being parsed restarts by itself when the buffer
	 * moves. Over TLS, bytes already decrypted wait in the TLS layer, where
	 * the socket's readiness does not show them: take them all now.
	 */
	do {
		n = h1_read_grow(u->fd, u->tls, &u->rb, &u->rlen, &u->rcap, UP_RBUF_MIN, cap, READ_CHUNK / 4, &u->eof,
				 &moved, u->acct);
		if (n == -EAGAIN && u->tls)
			u->want = tls_want(u->tls);
		if (n > 0)
			total += n;
	} while (n > 0 && u->tls && tls_pending(u->tls) && u->rlen < u->rcap);
	return total > 0 ? total : n;
}

/* Writes what is pending towards the upstream (plain, or TLS records of at most 16 KiB). Like ob_flush. */
int h1up_flush(struct h1up *u, uint64_t *written)
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
