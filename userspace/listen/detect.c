// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * detect: protocol "auto" (detect.h). The first bytes are peeked
 * (MSG_PEEK), never consumed, so whichever path takes the connection reads
 * them itself.
 */
#include "listen/detect.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "codec/h1route.h"
#include "http/h1session.h"
#include "http/h2session.h"
#include "http/h1svc.h"
#include "lib/sock.h"
#include "state/service.h"
#include "tcp/tcp.h"

/* One connection being classified (this loop's thread only). */
struct detection {
	struct list_head link;
	struct detector *dt;
	struct svc *svc;
	struct weft_orig orig;
	struct weft_sockaddr peer;
	int fd;
	ev_io io;
	ev_timer t;    /* http.detect_timeout_ms */
	ev_timer poll; /* a known prefix arrived: look again shortly (the bytes stay readable) */
};

_Static_assert((int)SVC_DETECT_HTTP1 == (int)H1R_HTTP1 && (int)SVC_DETECT_HTTP2 == (int)H1R_HTTP2 &&
		       (int)SVC_DETECT_TLS == (int)H1R_TLS && (int)SVC_DETECT_OPAQUE == (int)H1R_OPAQUE,
	       "detection outcomes index the same counters");

static void detect_stop(struct detection *d)
{
	ev_io_stop(d->dt->loop, &d->io);
	ev_timer_stop(d->dt->loop, &d->t);
	ev_timer_stop(d->dt->loop, &d->poll);
	list_del(&d->link);
}

/* ---- protocol detection ("auto") ---- */

static void detect_end(struct detection *d, int kind)
{
	struct detector *dt = d->dt;
	struct registry *reg = dt->reg;

	detect_stop(d);
	pthread_mutex_lock(&reg->lock);
	d->svc->stat->detected[kind]++;
	pthread_mutex_unlock(&reg->lock);
	if (kind == SVC_DETECT_HTTP1)
		h1_start(dt->http, d->fd, d->svc, &d->orig, &d->peer);
	else if (kind == SVC_DETECT_HTTP2 && dt->h2)
		h2_start(dt->h2, d->fd, d->svc, &d->orig, &d->peer);
	else
		tcp_start(dt->tcp, d->fd, d->svc, &d->orig, &d->peer);
	free(d);
}

static void detect_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct detection *d = io->data;
	unsigned char b[H1R_DETECT_MAX];
	ssize_t n;
	int k;

	(void)loop;
	(void)revents;
	n = recv(d->fd, b, sizeof(b), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		detect_end(d, SVC_DETECT_OPAQUE); /* EOF or error: the relay deals with it */
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
	ev_io_stop(d->dt->loop, &d->io);
	ev_timer_start(d->dt->loop, &d->poll);
}

static void detect_poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct detection *d = t->data;

	(void)revents;
	detect_io_cb(loop, &d->io, EV_READ);
}

static void detect_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct detection *d = t->data;

	(void)loop;
	(void)revents;
	detect_end(d, SVC_DETECT_TIMEOUT);
}

void detect_start(struct detector *dt, int fd, struct svc *svc, const struct weft_orig *orig,
		  const struct weft_sockaddr *peer)
{
	struct detection *d = calloc(1, sizeof(*d));

	if (!d) {
		pthread_mutex_lock(&dt->reg->lock);
		reg_conn_end_locked(dt->reg, svc, orig->cgroup_id);
		svc_unref_locked(dt->reg, svc);
		pthread_mutex_unlock(&dt->reg->lock);
		sock_reset_close(fd);
		return;
	}
	d->dt = dt;
	d->svc = svc;
	d->orig = *orig;
	d->peer = *peer;
	d->fd = fd;
	list_add(&d->link, &dt->list);
	ev_io_init(&d->io, detect_io_cb, fd, EV_READ);
	d->io.data = d;
	ev_timer_init(&d->t, detect_timeout_cb, svc->http->detect_timeout_ms / 1000.0, 0.);
	d->t.data = d;
	ev_timer_init(&d->poll, detect_poll_cb, 0.002, 0.);
	d->poll.data = d;
	ev_io_start(dt->loop, &d->io);
	ev_timer_start(dt->loop, &d->t);
}

void detector_init(struct detector *dt, struct ev_loop *loop, struct registry *reg, struct tcp_worker *tcp,
		   struct h1_worker *http, struct h2_worker *h2)
{
	dt->loop = loop;
	dt->reg = reg;
	dt->tcp = tcp;
	dt->http = http;
	dt->h2 = h2;
	list_init(&dt->list);
}

void detector_abort(struct detector *dt)
{
	while (!list_empty(&dt->list)) {
		struct detection *d = list_first_entry(&dt->list, struct detection, link);

		detect_stop(d);
		pthread_mutex_lock(&dt->reg->lock);
		reg_conn_end_locked(dt->reg, d->svc, d->orig.cgroup_id);
		svc_unref_locked(dt->reg, d->svc);
		pthread_mutex_unlock(&dt->reg->lock);
		sock_reset_close(d->fd);
		free(d);
	}
}
