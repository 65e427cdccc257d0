// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tcp: the opaque TCP path (tcp.h). One struct tcp_conn per connection, a
 * relay under it; the relay calls back for each pick, each attempt's
 * transport (plain, or mutual TLS to another node's agent) and each event,
 * and those callbacks are the only places that touch the shared state, each
 * under registry.lock once.
 */
#include "tcp/tcp.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/preamble.h"
#include "lib/log.h"
#include "lib/sock.h"
#include "state/service.h"
#include "tcp/relay.h"
#include "tls/mtls.h"

static int conn_pick(void *arg, unsigned attempt, struct weft_sockaddr *out, void **tag)
{
	struct tcp_conn *c = arg;
	struct registry *reg = c->tw->reg;
	int i;

	(void)attempt;
	pthread_mutex_lock(&reg->lock);
	i = bal_pick(&c->svc->bal, c->tried, ev_now(c->tw->loop));
	if (i >= 0) {
		if (i < 64)
			c->tried |= 1ull << i;
		c->cur = i;
		/* counted from the pick, so concurrent picks see each other (least-conn, P2C) */
		c->trying = c->svc->eps[i];
		c->trying->bal.active++;
		*out = c->svc->remote[i] ? c->svc->nodes[i] : c->svc->eps[i]->addr;
		*tag = c->svc->eps[i];
	}
	pthread_mutex_unlock(&reg->lock);
	return i < 0 ? -ENOENT : 0;
}

/*
 * relay_opts.secure: an endpoint on another node is reached through that
 * node's agent, over mutual TLS with the calling workload's identity, the
 * preamble naming the endpoint.
 */
static int conn_secure(void *arg, void *tag, struct tls_ctx **ctx, uint8_t *prefix, size_t cap, size_t *prefix_len)
{
	struct tcp_conn *c = arg;
	struct svc_ep *ep = tag;
	struct preamble pre;
	int n;

	/* c->cur is the attempt pick just chose; svc is this connection's own generation */
	if (!c->svc->remote[c->cur])
		return 0;
	if (!c->mtls)
		return -EHOSTUNREACH; /* config forbids this; be safe */
	*ctx = mtls_client_ctx(c->mtls, c->orig.cgroup_id);
	memset(&pre, 0, sizeof(pre));
	pre.target = ep->addr;
	pre.proto = PREAMBLE_PROTO_TCP;
	if (preamble_service_name_ok(c->svc->name))
		snprintf(pre.service, sizeof(pre.service), "%s", c->svc->name);
	n = preamble_encode(prefix, cap, &pre);
	if (n < 0)
		return n;
	*prefix_len = (size_t)n;
	return 1;
}

/* Lock held. */
static void conn_unlink_locked(struct registry *reg, struct tcp_conn *c)
{
	list_del(&c->link);
	reg_conn_end_locked(reg, c->svc, c->orig.cgroup_id);
	if (c->trying)
		c->trying->bal.active--; /* aborted mid-connect */
	mtls_unref(c->mtls);
	if (c->ep) {
		c->ep->bal.active--;
		svc_ep_unref_locked(reg, c->ep);
	}
	svc_unref_locked(reg, c->svc);
	free(c);
}

static void conn_breaker(struct tcp_conn *c, bool ok)
{
	svc_breaker(c->svc, c->cur, ok, ev_now(c->tw->loop), "consecutive connect failures");
}

static void conn_event(void *arg, struct relay *r, enum relay_event_kind kind, void *tag, int64_t value,
		       const struct relay_stats *st)
{
	struct tcp_conn *c = arg;
	struct registry *reg = c->tw->reg;
	struct svc_ep *ep = tag;
	char a[ADDR_STRLEN];

	(void)r;
	pthread_mutex_lock(&reg->lock);
	switch (kind) {
	case RELAY_EV_CONNECTED:
		c->ep = svc_ep_ref_locked(ep); /* its active count moves from the attempt to the connection */
		c->trying = NULL;
		ep->opened++;
		c->svc->stat->pending--;
		conn_breaker(c, true);
		svc_ep_observe_connect(ep, (double)value / 1e6);
		c->connect_us = value; /* the latency sample waits for the first byte back */
		log_debug("conn %s -> %s: connected to %s in %lld us", addr_format(&c->client, a, sizeof(a)),
			  c->svc->name, ep->addr_str, (long long)value);
		break;
	case RELAY_EV_FIRST_BYTE:
		/*
		 * One latency sample per connection: connect plus the wait for the
		 * first byte back (after the client's first bytes went up, or
		 * after connect when the server speaks first), what the client
		 * waits for its first answer. Connect time alone is no sample: the
		 * kernel accepts for a server however slow it is to answer, and
		 * it would make a new endpoint look fast before its first answer.
		 */
		bal_observe(&ep->bal, (double)(c->connect_us + value), ev_now(c->tw->loop));
		log_debug("conn %s -> %s: first byte from %s after %lld us (connect %lld us)",
			  addr_format(&c->client, a, sizeof(a)), c->svc->name, ep->addr_str, (long long)value,
			  (long long)c->connect_us);
		break;
	case RELAY_EV_CONNECT_FAIL:
		ep->connect_errors[svc_err_of((int)value)]++;
		ep->bal.active--;
		c->trying = NULL;
		/*
		 * a remote agent's "denied" is about the caller, not the endpoint's
		 * health; nor is our own lack of descriptors
		 */
		if (value != EACCES && value != EMFILE && value != ENFILE)
			conn_breaker(c, false);
		log_info_rl("service %s: connect to endpoint %s failed: %s", c->svc->name, ep->addr_str,
			    strerror((int)value));
		break;
	case RELAY_EV_CLOSED:
		if (c->ep) {
			c->ep->bytes_in += st ? st->bytes_in : 0;
			c->ep->bytes_out += st ? st->bytes_out : 0;
			reg->ctr.completed++;
		} else {
			c->svc->stat->pending--;
			reg->ctr.connect_failed++;
			c->svc->stat->no_endpoint++;
			log_warn_rl("conn %s -> %s: no endpoint could be reached; client reset",
				    addr_format(&c->client, a, sizeof(a)), c->svc->name);
		}
		log_debug("conn %s -> %s: closed, %llu bytes in, %llu out (%s)", addr_format(&c->client, a, sizeof(a)),
			  c->svc->name, (unsigned long long)(st ? st->bytes_in : 0),
			  (unsigned long long)(st ? st->bytes_out : 0), st && st->error ? strerror(st->error) : "ok");
		conn_unlink_locked(reg, c);
		break;
	}
	pthread_mutex_unlock(&reg->lock);
}

void tcp_start(struct tcp_worker *tw, int fd, struct svc *svc, const struct weft_orig *orig,
	       const struct weft_sockaddr *peer)
{
	struct registry *reg = tw->reg;
	struct relay_opts opts;
	struct tcp_conn *c;
	struct relay *rl;

	c = calloc(1, sizeof(*c));
	pthread_mutex_lock(&reg->lock);
	if (!c) {
		reg_conn_end_locked(reg, svc, orig->cgroup_id);
		svc_unref_locked(reg, svc);
		pthread_mutex_unlock(&reg->lock);
		sock_reset_close(fd);
		return;
	}
	c->tw = tw;
	c->svc = svc; /* the caller's reference */
	c->orig = *orig;
	c->client = *peer;
	c->mtls = mtls_ref(reg->mtls);
	c->started = ev_now(tw->loop);
	list_init(&c->link); /* not listed until it has a relay (the admin snapshot reads c->relay) */
	svc->stat->pending++;
	pthread_mutex_unlock(&reg->lock);
	memset(&opts, 0, sizeof(opts));
	opts.buffer_size = svc->opts.buffer_size;
	opts.connect_timeout_ms = svc->opts.connect_timeout_ms;
	opts.idle_timeout_ms = svc->opts.idle_timeout_ms;
	opts.mark = svc->opts.mark;
	opts.max_attempts = svc->opts.max_attempts;
	/* opaque bytes never need to be in our memory */
	opts.flags = svc->opts.splice ? RELAY_SPLICE : 0;
	opts.secure = conn_secure;
	/*
	 * relay_start calls conn_pick (which locks) but fires no event before it
	 * returns, and events fire on this thread: listing the connection right
	 * after is race-free.
	 */
	rl = relay_start(tw->loop, tw->pool, fd, &opts, conn_pick, conn_event, c);
	pthread_mutex_lock(&reg->lock);
	if (rl) {
		c->relay = rl;
		list_add(&c->link, &tw->conns);
	} else {
		/* relay_start reset and closed fd; no callback fired */
		svc->stat->pending--;
		conn_unlink_locked(reg, c);
	}
	pthread_mutex_unlock(&reg->lock);
}

int tcp_worker_init(struct tcp_worker *tw, struct ev_loop *loop, unsigned id, struct registry *reg,
		    uint32_t buffer_size)
{
	tw->loop = loop;
	tw->id = id;
	tw->reg = reg;
	list_init(&tw->conns);
	tw->pool = relay_pool_new(buffer_size, 64);
	return tw->pool ? 0 : -ENOMEM;
}

void tcp_worker_abort(struct tcp_worker *tw)
{
	struct registry *reg = tw->reg;
	struct relay *r;

	if (!tw->pool)
		return;
	for (;;) {
		/* relay_abort fires RELAY_EV_CLOSED, which takes the lock, unlinks and frees */
		pthread_mutex_lock(&reg->lock);
		r = list_empty(&tw->conns) ? NULL : list_first_entry(&tw->conns, struct tcp_conn, link)->relay;
		pthread_mutex_unlock(&reg->lock);
		if (!r)
			break;
		relay_abort(r);
	}
}

void tcp_worker_free(struct tcp_worker *tw)
{
	if (tw->pool)
		relay_pool_free(tw->pool);
	tw->pool = NULL;
}
