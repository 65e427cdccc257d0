// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "listen/proxy.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "state/balancer.h"
#include "lib/buf.h"
#include "config/config.h"
#include "codec/identity.h"
#include "kernel/kernel.h"
#include "tls/mtls.h"
#include "codec/preamble.h"
#include "lib/log.h"
#include "tcp/relay.h"
#include "lib/table.h"
#include "tls/tls.h"
#include "listen/proxy-int.h"
#include "http/h1proxy.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define ACCEPT_BATCH 64 /* accepts per wakeup, so one busy listener cannot starve the loop */

const double proxy_lat_bounds[PROXY_LAT_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};

const char *const proxy_err_names[PROXY_ERR__MAX] = {
	[PROXY_ERR_REFUSED] = "refused",
	[PROXY_ERR_TIMEOUT] = "timeout",
	[PROXY_ERR_UNREACHABLE] = "unreachable",
	[PROXY_ERR_OTHER] = "other",
};

enum proxy_err px_err_of(int e)
{
	switch (e) {
	case ECONNREFUSED:
		return PROXY_ERR_REFUSED;
	case ETIMEDOUT:
		return PROXY_ERR_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EADDRNOTAVAIL:
		return PROXY_ERR_UNREACHABLE;
	default:
		return PROXY_ERR_OTHER;
	}
}

void px_stat_unref(struct proxy *px, struct proxy_svcstat *st)
{
	struct proxy_svcstat **pp;

	if (!st || --st->refs)
		return;
	for (pp = &px->stat_registry; *pp; pp = &(*pp)->next) {
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	}
	h1p_stat_free(st);
	free(st->name);
	free(st);
}

struct proxy_svcstat *px_stat_get(struct proxy *px, const char *name)
{
	struct proxy_svcstat *st;

	for (st = px->stat_registry; st; st = st->next) {
		if (strcmp(st->name, name) == 0) {
			st->refs++;
			return st;
		}
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->name = strdup(name);
	if (!st->name) {
		free(st);
		return NULL;
	}
	st->refs = 1;
	st->next = px->stat_registry;
	px->stat_registry = st;
	return st;
}

void px_ep_unref(struct proxy *px, struct proxy_ep *ep)
{
	struct proxy_ep **pp;

	if (!ep || --ep->refs)
		return;
	for (pp = &px->ep_registry; *pp; pp = &(*pp)->next) {
		if (*pp == ep) {
			*pp = ep->next;
			break;
		}
	}
	px_stat_unref(px, ep->svc);
	free(ep);
}

/* Finds or creates the shared state of (service, address). O(endpoints on the node). */
static struct proxy_ep *ep_get(struct proxy *px, struct proxy_svcstat *st,
			       const struct weft_sockaddr *addr)
{
	struct proxy_ep *ep;

	for (ep = px->ep_registry; ep; ep = ep->next) {
		if (ep->svc == st && addr_equal(&ep->addr, addr)) {
			ep->refs++;
			return ep;
		}
	}
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	ep->refs = 1;
	ep->svc = st;
	st->refs++;
	ep->addr = *addr;
	addr_format(addr, ep->addr_str, sizeof(ep->addr_str));
	ep->next = px->ep_registry;
	px->ep_registry = ep;
	return ep;
}

static int conn_secure(void *arg, void *tag, struct tls_ctx **ctx, uint8_t *prefix, size_t cap,
		       size_t *prefix_len);

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

void px_svc_unref(struct proxy *px, struct proxy_svc *s)
{
	size_t i;

	if (!s || --s->refs)
		return;
	for (i = 0; i < s->n_eps; i++)
		px_ep_unref(px, s->eps[i]);
	bal_free(&s->bal);
	h1p_svc_free(s->l7);
	id_policy_free(s->policy);
	px_stat_unref(px, s->stat);
	free(s->name);
	free(s->vips);
	free(s->eps);
	free(s->nodes);
	free(s->remote);
	free(s);
}

static struct proxy_svc *svc_new(struct proxy *px, const struct weft_config *cfg, uint32_t id)
{
	const struct cfg_service *cs = &cfg->services[id];
	struct bal_breaker brk;
	struct proxy_svc *s;
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
	s->stat = px_stat_get(px, cs->name);
	if (!s->stat)
		goto err;
	memcpy(s->vips, cs->addrs, cs->n_addrs * sizeof(*s->vips));
	s->n_vips = cs->n_addrs;
	for (i = 0; i < cs->n_endpoints; i++) {
		s->eps[i] = ep_get(px, s->stat, &cs->endpoints[i].addr);
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
	s->protocol = cs->protocol;
	if (cs->protocol == CFG_PROTO_HTTP || cs->protocol == CFG_PROTO_AUTO) {
		s->l7 = h1p_svc_new(cfg, cs, s->stat);
		if (!s->l7)
			goto err;
	}
	if (px->mtls) {
		char err[256];

		s->policy = id_policy_new(mtls_trust_domain(px->mtls));
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
	/* opaque TCP is the only protocol today: its bytes never need to be in our memory */
	s->opts.flags = cfg->splice ? RELAY_SPLICE : 0;
	s->opts.secure = conn_secure;
	return s;
err:
	px_svc_unref(px, s);
	return NULL;
}

static bool svc_has_vip(const struct proxy_svc *s, const struct weft_sockaddr *a)
{
	size_t i;

	for (i = 0; i < s->n_vips; i++)
		if (addr_equal(&s->vips[i], a))
			return true;
	return false;
}

/*
 * The BPF record names the service by its index in the config generation that
 * filled weft_services. After a reload the index may point elsewhere, so the
 * VIP is checked and, on mismatch, looked up by address (O(services)).
 */
static struct proxy_svc *proxy_find_svc(struct proxy *px, const struct weft_orig *o)
{
	struct weft_sockaddr dst;
	size_t i;

	addr_from_key(&o->dst, &dst);
	if (o->service_id < px->n_svcs && svc_has_vip(px->svcs[o->service_id], &dst))
		return px->svcs[o->service_id];
	for (i = 0; i < px->n_svcs; i++)
		if (svc_has_vip(px->svcs[i], &dst))
			return px->svcs[i];
	return NULL;
}

int proxy_set_config(struct proxy *px, const struct weft_config *cfg)
{
	struct proxy_svc **n;
	size_t i;
	int r = 0;

	n = calloc(cfg->n_services ? cfg->n_services : 1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	/* the registries are shared with the workers: build and swap under the lock */
	pthread_mutex_lock(&px->lock);
	for (i = 0; i < cfg->n_services; i++) {
		n[i] = svc_new(px, cfg, (uint32_t)i);
		if (!n[i]) {
			while (i--)
				px_svc_unref(px, n[i]);
			free(n);
			r = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < px->n_svcs; i++)
		px_svc_unref(px, px->svcs[i]);
	free(px->svcs);
	px->svcs = n;
	px->n_svcs = cfg->n_services;
	px->max_conns = cfg->max_connections;
	px->redirect = cfg->redirect_loopback;
	px->splice = cfg->splice;
out:
	pthread_mutex_unlock(&px->lock);
	return r;
}

/* Ends a connection we will not proxy: the client sees a reset, not a hang. */
void px_reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static int conn_pick(void *arg, unsigned attempt, struct weft_sockaddr *out, void **tag)
{
	struct proxy_conn *c = arg;
	int i;

	(void)attempt;
	pthread_mutex_lock(&c->px->lock);
	i = bal_pick(&c->svc->bal, c->tried, ev_now(c->w->loop));
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
	pthread_mutex_unlock(&c->px->lock);
	return i < 0 ? -ENOENT : 0;
}

/*
 * relay_opts.secure: an endpoint on another node is reached through that
 * node's agent, over mutual TLS with the calling workload's identity, the
 * preamble naming the endpoint.
 */
static int conn_secure(void *arg, void *tag, struct tls_ctx **ctx, uint8_t *prefix, size_t cap,
		       size_t *prefix_len)
{
	struct proxy_conn *c = arg;
	struct proxy_ep *ep = tag;
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
	snprintf(pre.service, sizeof(pre.service), "%s", c->svc->name);
	n = preamble_encode(prefix, cap, &pre);
	if (n < 0)
		return n;
	*prefix_len = (size_t)n;
	return 1;
}

void px_ep_observe_latency(struct proxy_ep *ep, double secs)
{
	size_t i;

	for (i = 0; i < PROXY_LAT_BUCKETS; i++)
		if (secs <= proxy_lat_bounds[i])
			ep->lat_buckets[i]++;
	ep->lat_count++;
	ep->lat_sum += secs;
}

static void conn_unlink(struct proxy *px, struct proxy_conn *c)
{
	c->prev->next = c->next;
	c->next->prev = c->prev;
	px->active--;
	c->svc->stat->active--;
	if (c->trying)
		c->trying->bal.active--; /* aborted mid-connect */
	mtls_unref(c->mtls);
	if (c->ep) {
		c->ep->bal.active--;
		px_ep_unref(px, c->ep);
	}
	px_svc_unref(px, c->svc);
	free(c);
}

/* Feeds an outcome to the failure accrual; logs and names state changes. */
void px_breaker(struct proxy_svc *svc, int i, bool ok, double now, const char *why)
{
	struct proxy_ep *ep = svc->eps[i];

	switch (bal_report(&svc->bal, (size_t)i, ok, now)) {
	case BAL_EV_EJECTED:
		ep->eject_reason = why;
		log_warn("service %s: endpoint %s ejected for %.1f s after %u %s", svc->name, ep->addr_str,
			 ep->bal.ejected_until - now, ep->bal.consecutive, why);
		break;
	case BAL_EV_READMITTED:
		log_info("service %s: endpoint %s readmitted (probe succeeded)", svc->name, ep->addr_str);
		break;
	case BAL_EV_SPARED:
		log_warn("service %s: endpoint %s keeps failing but is not ejected: "
			 "circuit_breaker.max_ejection_percent (%u%%) reached", svc->name, ep->addr_str,
			 svc->bal.brk.max_ejection_percent);
		break;
	default:
		break;
	}
}

static void conn_breaker(struct proxy_conn *c, bool ok)
{
	px_breaker(c->svc, c->cur, ok, ev_now(c->w->loop), "consecutive connect failures");
}

static void conn_event(void *arg, struct relay *r, enum relay_event_kind kind, void *tag,
		       int64_t value, const struct relay_stats *st)
{
	struct proxy_conn *c = arg;
	struct proxy *px = c->px;
	struct proxy_ep *ep = tag;
	char a[ADDR_STRLEN];

	(void)r;
	pthread_mutex_lock(&px->lock);
	switch (kind) {
	case RELAY_EV_CONNECTED:
		c->ep = ep; /* its active count moves from the attempt to the connection */
		c->trying = NULL;
		ep->refs++;
		ep->opened++;
		c->svc->stat->pending--;
		conn_breaker(c, true);
		px_ep_observe_latency(ep, (double)value / 1e6);
		bal_observe(&ep->bal, (double)value, ev_now(c->w->loop));
		log_debug("conn %s -> %s: connected to %s in %lld us", addr_format(&c->client, a, sizeof(a)),
			  c->svc->name, ep->addr_str, (long long)value);
		break;
	case RELAY_EV_FIRST_BYTE:
		/* peak-EWMA keeps the larger of connect and response latency */
		bal_observe(&ep->bal, (double)value, ev_now(c->w->loop));
		break;
	case RELAY_EV_CONNECT_FAIL:
		ep->connect_errors[px_err_of((int)value)]++;
		ep->bal.active--;
		c->trying = NULL;
		/* a remote agent's "denied" is about the caller, not the endpoint's health */
		if (value != EACCES)
			conn_breaker(c, false);
		log_info("service %s: connect to endpoint %s failed: %s", c->svc->name, ep->addr_str,
			 strerror((int)value));
		break;
	case RELAY_EV_CLOSED:
		if (c->ep) {
			c->ep->bytes_in += st ? st->bytes_in : 0;
			c->ep->bytes_out += st ? st->bytes_out : 0;
			px->ctr.completed++;
		} else {
			c->svc->stat->pending--;
			px->ctr.connect_failed++;
			c->svc->stat->no_endpoint++;
			log_warn("conn %s -> %s: no endpoint could be reached; client reset",
				 addr_format(&c->client, a, sizeof(a)), c->svc->name);
		}
		log_debug("conn %s -> %s: closed, %llu bytes in, %llu out (%s)",
			  addr_format(&c->client, a, sizeof(a)), c->svc->name,
			  (unsigned long long)(st ? st->bytes_in : 0),
			  (unsigned long long)(st ? st->bytes_out : 0),
			  st && st->error ? strerror(st->error) : "ok");
		conn_unlink(px, c);
		break;
	}
	pthread_mutex_unlock(&px->lock);
}

/*
 * Adds our end of the app <-> agent connection to weft_sockhash; with the
 * app's end (added by sockops) sk_msg then moves bytes between the two
 * without the loopback stack. Failing only costs the fast path.
 */
static void proxy_fast_path(struct proxy *px, int fd, uint64_t cookie, const struct weft_sockaddr *peer)
{
	struct weft_sock_key sk;
	struct weft_sockaddr local;

	local.len = sizeof(local.ss);
	if (getsockname(fd, &local.sa, &local.len) < 0)
		return;
	memset(&sk, 0, sizeof(sk));
	sk.netns_cookie = cookie;
	addr_to_key(&local, &sk.local);
	addr_to_key(peer, &sk.remote);
	if (kern_sockhash_add(px->kern, fd, &sk) < 0)
		log_debug("weft_sockhash: cannot add connection from a client: %s", strerror(errno));
}

void px_start_relay(struct proxy_worker *w, int fd, struct proxy_svc *svc, const struct weft_orig *orig,
		    const struct weft_sockaddr *peer)
{
	struct proxy *px = w->px;
	struct proxy_conn *c;
	struct relay *rl;

	c = calloc(1, sizeof(*c));
	pthread_mutex_lock(&px->lock);
	if (!c) {
		px_svc_unref(px, svc);
		pthread_mutex_unlock(&px->lock);
		px_reset_close(fd);
		return;
	}
	c->px = px;
	c->w = w;
	c->svc = svc; /* the caller's reference */
	c->orig = *orig;
	c->client = *peer;
	c->mtls = mtls_ref(px->mtls);
	c->started = ev_now(w->loop);
	c->next = c->prev = c; /* not listed until it has a relay (the admin API reads c->relay) */
	px->active++;
	svc->stat->active++;
	svc->stat->pending++;
	pthread_mutex_unlock(&px->lock);
	/*
	 * relay_start calls conn_pick (which locks) but fires no event before it
	 * returns, and events fire on this thread: listing the connection right
	 * after is race-free.
	 */
	rl = relay_start(w->loop, w->pool, fd, &svc->opts, conn_pick, conn_event, c);
	pthread_mutex_lock(&px->lock);
	if (rl) {
		c->relay = rl;
		c->next = w->conns.next;
		c->prev = &w->conns;
		w->conns.next->prev = c;
		w->conns.next = c;
	} else {
		/* relay_start reset and closed fd; no callback fired */
		svc->stat->pending--;
		conn_unlink(px, c);
	}
	pthread_mutex_unlock(&px->lock);
}

static void proxy_handle(struct proxy_worker *w, int fd, const struct weft_sockaddr *peer)
{
	struct proxy *px = w->px;
	struct weft_conn_key key;
	struct proxy_svc *svc;
	struct weft_orig orig;
	char a[ADDR_STRLEN];
	socklen_t len;
	uint64_t cookie = 0;
	int r;

	memset(&key, 0, sizeof(key));
	len = sizeof(cookie);
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) < 0) {
		log_error("getsockopt(SO_NETNS_COOKIE): %s; weft needs Linux 5.14+", strerror(errno));
		goto reset_unlocked;
	}
	key.netns_cookie = cookie;
	addr_to_key(peer, &key.client);
	/* the map lookup is a syscall: outside the lock */
	r = kern_take_orig(px->kern, &key, &orig);
	if (r == 0 && px->redirect)
		proxy_fast_path(px, fd, cookie, peer);
	pthread_mutex_lock(&px->lock);
	px->ctr.accepted++;
	w->accepted++;
	if (r < 0) {
		px->ctr.no_orig++;
		log_debug("connection from %s was not redirected by weft (no original destination); reset",
			  addr_format(peer, a, sizeof(a)));
		goto reset;
	}
	svc = proxy_find_svc(px, &orig);
	if (!svc || !svc->n_eps) {
		struct weft_sockaddr dst;

		px->ctr.no_service++;
		if (svc)
			svc->stat->no_endpoint++;
		addr_from_key(&orig.dst, &dst);
		log_warn("connection to %s: %s; reset", addr_format(&dst, a, sizeof(a)),
			 svc ? "service has no endpoints" : "no service has this address any more");
		goto reset;
	}
	if (px->active >= px->max_conns) {
		px->ctr.over_limit++;
		svc->stat->over_limit++;
		log_warn("agent.max_connections (%u) reached; connection to service %s reset",
			 px->max_conns, svc->name);
		goto reset;
	}
	if (svc->stat->active >= svc->max_conns) {
		svc->stat->over_service_limit++;
		log_debug("service %s: limits.max_connections (%u) reached; connection reset", svc->name,
			  svc->max_conns);
		goto reset;
	}
	if (svc->stat->pending >= svc->max_pending) {
		svc->stat->over_pending++;
		log_debug("service %s: limits.max_pending (%u) connects in progress; connection reset",
			  svc->name, svc->max_pending);
		goto reset;
	}
	svc->refs++;
	pthread_mutex_unlock(&px->lock);
	switch (svc->protocol) {
	case CFG_PROTO_HTTP:
		if (svc->l7) {
			h1p_start(w, fd, svc, &orig, peer);
			return;
		}
		break;
	case CFG_PROTO_AUTO:
		if (svc->l7) {
			h1p_detect(w, fd, svc, &orig, peer);
			return;
		}
		break;
	default:
		break;
	}
	px_start_relay(w, fd, svc, &orig, peer);
	return;
reset:
	pthread_mutex_unlock(&px->lock);
reset_unlocked:
	px_reset_close(fd);
}

static void worker_on_accept_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct proxy_worker *w = t->data;
	int i;

	(void)revents;
	w->accept_paused = false;
	for (i = 0; i < w->nlis; i++)
		ev_io_start(loop, &w->lis[i]);
}

static void worker_pause_accept(struct proxy_worker *w, int err)
{
	int i;

	if (w->accept_paused)
		return;
	w->accept_paused = true;
	log_warn("worker %u: accept: %s; pausing the outbound listeners for 100 ms (raise RLIMIT_NOFILE "
		 "or lower agent.max_connections)", w->id, strerror(err));
	for (i = 0; i < w->nlis; i++)
		ev_io_stop(w->loop, &w->lis[i]);
	ev_timer_start(w->loop, &w->accept_retry);
}

static void proxy_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct proxy_worker *wk = w->data;
	struct weft_sockaddr peer;
	int i, fd;

	(void)loop;
	(void)revents;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		peer.len = sizeof(peer.ss);
		fd = accept4(w->fd, &peer.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			/*
			 * EMFILE/ENFILE/ENOBUFS/ENOMEM: the connection waits in the backlog.
			 * The listener is level-triggered: pause it for 100 ms instead of
			 * spinning (and logging) until a descriptor frees up.
			 */
			worker_pause_accept(wk, errno);
			return;
		}
		proxy_handle(wk, fd, &peer);
	}
}

static int proxy_listen(struct proxy_worker *w, const char *ip, uint16_t port, char *err, size_t errlen)
{
	struct weft_sockaddr a;
	char spec[64];
	int fd, one = 1, r;

	if (strchr(ip, ':'))
		snprintf(spec, sizeof(spec), "[%s]:%u", ip, port);
	else
		snprintf(spec, sizeof(spec), "%s:%u", ip, port);
	if (addr_parse(spec, false, &a, err, errlen) < 0)
		return -EINVAL;
	fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto err;
	if (a.sa.sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto err;
	if (w->id == 0) {
		/*
		 * SO_REUSEPORT would let a second agent configured with the same port
		 * silently share (and break) our connections: bind once without it
		 * first, so that case fails with EADDRINUSE as it should.
		 */
		int probe = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (probe < 0)
			goto err;
		if (a.sa.sa_family == AF_INET6)
			setsockopt(probe, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(probe, &a.sa, a.len) < 0) {
			r = errno;
			close(probe);
			errno = r;
			goto err;
		}
		close(probe);
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto err;
	if (bind(fd, &a.sa, a.len) < 0)
		goto err;
	if (listen(fd, 4096) < 0)
		goto err;
	ev_io_init(&w->lis[w->nlis], proxy_on_accept, fd, EV_READ);
	w->lis[w->nlis].data = w;
	w->nlis++;
	if (w->id == 0)
		log_info("outbound listener on %s", spec);
	return 0;
err:
	r = -errno;
	snprintf(err, errlen, "cannot listen on %s (agent.outbound_port): %s%s", spec, strerror(errno),
		 errno == EADDRINUSE ? "; another process (or weftd) uses this port: choose another "
				       "agent.outbound_port" : "");
	if (fd >= 0)
		close(fd);
	return r;
}

static void worker_stop_accepting(struct proxy_worker *w)
{
	int i;

	ev_timer_stop(w->loop, &w->accept_retry);
	h1p_worker_drain(w);
	for (i = 0; i < w->nlis; i++) {
		ev_io_stop(w->loop, &w->lis[i]);
		close(w->lis[i].fd);
	}
	w->nlis = 0;
}

/* Resets this worker's connections; must run in the worker's thread. */
static void worker_abort_all(struct proxy_worker *w)
{
	struct proxy *px = w->px;
	struct relay *r;

	for (;;) {
		/* relay_abort fires RELAY_EV_CLOSED, which takes the lock, unlinks and frees */
		pthread_mutex_lock(&px->lock);
		r = w->conns.next != &w->conns ? w->conns.next->relay : NULL;
		pthread_mutex_unlock(&px->lock);
		if (!r)
			break;
		relay_abort(r);
	}
	h1p_worker_abort(w);
}

static void worker_on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	struct proxy_worker *w = a->data;
	unsigned cmds = atomic_exchange(&w->cmds, 0);

	(void)revents;
	if (cmds & (WCMD_STOP_ACCEPT | WCMD_EXIT))
		worker_stop_accepting(w);
	if (cmds & (WCMD_ABORT | WCMD_EXIT))
		worker_abort_all(w);
	if (cmds & WCMD_EXIT) {
		ev_timer_stop(loop, &w->tick);
		ev_async_stop(loop, &w->wake);
		ev_break(loop, EVBREAK_ALL);
	}
}

static void worker_on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct proxy_worker *w = t->data;

	(void)revents;
	atomic_store(&w->last_tick, ev_now(loop));
}

/* Runs a command on every worker: directly for worker 0, via its async watcher for the rest. */
static void proxy_command(struct proxy *px, unsigned cmd)
{
	unsigned i;

	for (i = 0; i < px->nworkers; i++) {
		struct proxy_worker *w = &px->workers[i];

		if (!w->loop)
			continue;
		if (!w->threaded) {
			if (cmd & WCMD_STOP_ACCEPT)
				worker_stop_accepting(w);
			if (cmd & WCMD_ABORT)
				worker_abort_all(w);
			continue;
		}
		atomic_fetch_or(&w->cmds, cmd);
		ev_async_send(w->loop, &w->wake);
	}
}

static void *worker_main(void *arg)
{
	struct proxy_worker *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "weftd-w%u", w->id);
	pthread_setname_np(pthread_self(), name);
	ev_run(w->loop, 0);
	h1p_thread_cleanup();
	tls_thread_cleanup();
	return NULL;
}

static int worker_init(struct proxy *px, struct proxy_worker *w, unsigned id, const struct weft_config *cfg,
		       char *err, size_t errlen)
{
	int r;

	w->px = px;
	w->id = id;
	w->conns.next = w->conns.prev = &w->conns;
	w->threaded = id > 0;
	w->loop = id == 0 ? px->loop : ev_loop_new(EVFLAG_AUTO);
	if (!w->loop) {
		snprintf(err, errlen, "libev could not create an event loop for worker %u", id);
		return -ENOMEM;
	}
	w->pool = relay_pool_new(cfg->buffer_size, 64);
	if (!w->pool) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = proxy_listen(w, "127.0.0.1", cfg->outbound_port, err, errlen);
	if (r < 0)
		return r;
	r = proxy_listen(w, "::1", cfg->outbound_port, err, errlen);
	if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
		if (id == 0)
			log_warn("IPv6 loopback unavailable (%s); IPv6 services will not be intercepted", err);
		err[0] = '\0';
	} else if (r < 0) {
		return r;
	}
	ev_async_init(&w->wake, worker_on_wake);
	w->wake.data = w;
	ev_timer_init(&w->tick, worker_on_tick, 0., 0.25);
	ev_timer_init(&w->accept_retry, worker_on_accept_retry, 0.1, 0.);
	w->accept_retry.data = w;
	w->tick.data = w;
	atomic_store(&w->last_tick, ev_now(w->loop));
	if (w->threaded) {
		ev_async_start(w->loop, &w->wake);
		ev_timer_start(w->loop, &w->tick);
	}
	return 0;
}

int proxy_start(struct ev_loop *loop, struct kern *k, const struct weft_config *cfg, unsigned nworkers,
		struct zipkin *zipkin, struct proxy **out, char *err, size_t errlen)
{
	struct proxy *px;
	unsigned i;
	int r, j;

	px = calloc(1, sizeof(*px));
	if (!px)
		return -ENOMEM;
	px->loop = loop;
	px->kern = k;
	px->zipkin = zipkin;
	pthread_mutex_init(&px->lock, NULL);
	px->workers = calloc(nworkers ? nworkers : 1, sizeof(*px->workers));
	if (!px->workers) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	px->nworkers = nworkers ? nworkers : 1;
	r = proxy_set_config(px, cfg);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	for (i = 0; i < px->nworkers; i++) {
		r = worker_init(px, &px->workers[i], i, cfg, err, errlen);
		if (r < 0)
			goto err;
	}
	/* listeners go live only once every worker could bind */
	for (i = 0; i < px->nworkers; i++) {
		struct proxy_worker *w = &px->workers[i];

		/* a worker thread's loop is not running yet: touching it here is safe */
		for (j = 0; j < w->nlis; j++)
			ev_io_start(w->loop, &w->lis[j]);
		if (w->threaded) {
			r = pthread_create(&w->thread, NULL, worker_main, w);
			if (r) {
				snprintf(err, errlen, "cannot start worker thread %u: %s", i, strerror(r));
				r = -r;
				goto err;
			}
			w->started = true;
		}
	}
	log_info("%u worker%s moving bytes", px->nworkers, px->nworkers == 1 ? "" : "s");
	*out = px;
	return 0;
err:
	proxy_free(px);
	return r;
}

void proxy_set_mtls(struct proxy *px, struct mtls *m)
{
	struct mtls *old;

	pthread_mutex_lock(&px->lock);
	old = px->mtls;
	px->mtls = mtls_ref(m);
	pthread_mutex_unlock(&px->lock);
	mtls_unref(old);
}

int proxy_inbound_admit(struct proxy *px, const struct weft_sockaddr *target, const char *peer_id,
			char *svc_name, size_t len, struct relay_opts *opts)
{
	struct proxy_svc *svc = NULL;
	enum id_verdict v;
	size_t i, j;
	int st = PREAMBLE_ST_UNKNOWN_TARGET;

	pthread_mutex_lock(&px->lock);
	/* only this node's own endpoints: the mesh is not an open proxy */
	for (i = 0; i < px->n_svcs && !svc; i++)
		for (j = 0; j < px->svcs[i]->n_eps; j++)
			if (!px->svcs[i]->remote[j] && addr_equal(&px->svcs[i]->eps[j]->addr, target)) {
				svc = px->svcs[i];
				break;
			}
	if (!svc)
		goto out;
	snprintf(svc_name, len, "%s", svc->name);
	v = svc->policy ? id_policy_check(svc->policy, peer_id) : ID_DENY_NOT_ALLOWED;
	if (v != ID_ALLOW) {
		svc->stat->inbound_denied++;
		st = PREAMBLE_ST_DENIED;
		goto out;
	}
	svc->stat->inbound_ok++;
	*opts = svc->opts;
	opts->secure = NULL;
	opts->flags = RELAY_TLS_REPLY;
	opts->max_attempts = 1;
	st = PREAMBLE_ST_OK;
out:
	pthread_mutex_unlock(&px->lock);
	return st;
}

struct relay_pool *proxy_main_pool(struct proxy *px)
{
	return px->workers[0].pool;
}

void proxy_stop_accepting(struct proxy *px)
{
	proxy_command(px, WCMD_STOP_ACCEPT);
}

size_t proxy_active(struct proxy *px)
{
	size_t n;

	pthread_mutex_lock(&px->lock);
	n = px->active;
	pthread_mutex_unlock(&px->lock);
	return n;
}

void proxy_abort_all(struct proxy *px)
{
	proxy_command(px, WCMD_ABORT);
}

int proxy_stuck_worker(struct proxy *px, double max_age, double *age)
{
	double now = ev_time();
	unsigned i;

	for (i = 0; i < px->nworkers; i++) {
		struct proxy_worker *w = &px->workers[i];
		double t;

		if (!w->threaded)
			continue; /* worker 0 is the caller's own loop */
		t = atomic_load(&w->last_tick);
		if (now - t > max_age) {
			*age = now - t;
			return (int)i;
		}
	}
	return -1;
}

void proxy_free(struct proxy *px)
{
	unsigned i;
	size_t k;

	if (!px)
		return;
	/* threads first: each stops, resets its connections and leaves its loop */
	for (i = 0; i < px->nworkers; i++) {
		struct proxy_worker *w = &px->workers[i];

		if (!w->started)
			continue;
		atomic_fetch_or(&w->cmds, WCMD_EXIT);
		ev_async_send(w->loop, &w->wake);
		pthread_join(w->thread, NULL);
	}
	for (i = 0; i < px->nworkers; i++) {
		struct proxy_worker *w = &px->workers[i];

		if (!w->loop)
			continue;
		if (!w->started) {
			/* worker 0, or a thread that never ran: clean it up from here */
			worker_stop_accepting(w);
			worker_abort_all(w);
		}
		if (w->pool)
			relay_pool_free(w->pool);
		if (w->loop != px->loop)
			ev_loop_destroy(w->loop);
	}
	free(px->workers);
	h1p_thread_cleanup(); /* worker 0's, on this thread */
	for (k = 0; k < px->n_svcs; k++)
		px_svc_unref(px, px->svcs[k]);
	free(px->svcs);
	mtls_unref(px->mtls);
	pthread_mutex_destroy(&px->lock);
	free(px);
}

/* ---- admin renderings (main thread, under the lock) ---------------------- */

/* Every connection of every worker; px->lock must be held. */
#define FOR_EACH_CONN(px, wi, c)                                                    \
	for ((wi) = 0; (wi) < (px)->nworkers; (wi)++)                               \
		for ((c) = (px)->workers[wi].conns.next; (px)->workers[wi].loop &&  \
		     (c) != &(px)->workers[wi].conns; (c) = (c)->next)

static const char *bal_mode_name(enum bal_mode m)
{
	return m == BAL_ROUND_ROBIN ? "round-robin" : m == BAL_LEAST_CONN ? "least-conn" : "ewma";
}

static const char *ep_state_name(const struct proxy_ep *ep)
{
	return ep->bal.state == BAL_READY ? "ready" : ep->bal.state == BAL_PROBING ? "probing" : "ejected";
}

void proxy_render_services(struct proxy *px, struct buf *out)
{
	double now = ev_now(px->loop);
	char a[ADDR_STRLEN];
	size_t i, j;

	pthread_mutex_lock(&px->lock);
	buf_puts(out, "{\"services\":[");
	for (i = 0; i < px->n_svcs; i++) {
		const struct proxy_svc *s = px->svcs[i];

		buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
		buf_json_str(out, s->name);
		buf_printf(out, ",\"protocol\":\"%s\",\"addresses\":[", cfg_protocol_name(s->protocol));
		for (j = 0; j < s->n_vips; j++)
			buf_printf(out, "%s\"%s\"", j ? "," : "", addr_format(&s->vips[j], a, sizeof(a)));
		buf_printf(out, "],\"balancer\":\"%s\",\"active\":%u,\"pending\":%u,\"ejected\":%zu,"
			   "\"panic_picks\":%llu,\"connect_failed\":%llu,\"over_limit\":%llu,"
			   "\"over_service_limit\":%llu,\"over_pending\":%llu,\"endpoints\":[",
			   bal_mode_name(s->bal.mode), s->stat->active, s->stat->pending,
			   bal_ejected(&s->bal), (unsigned long long)s->bal.panics,
			   (unsigned long long)s->stat->no_endpoint,
			   (unsigned long long)s->stat->over_limit,
			   (unsigned long long)s->stat->over_service_limit,
			   (unsigned long long)s->stat->over_pending);
		for (j = 0; j < s->n_eps; j++) {
			const struct proxy_ep *ep = s->eps[j];
			uint64_t errs = 0;
			int k;

			for (k = 0; k < PROXY_ERR__MAX; k++)
				errs += ep->connect_errors[k];
			buf_printf(out,
				   "%s{\"address\":\"%s\",\"state\":\"%s\",\"weight\":%u,\"ewma_ms\":%.3f,"
				   "\"active\":%u,\"connections\":%llu,\"connect_errors\":%llu,"
				   "\"consecutive_failures\":%u,\"ejections\":%llu",
				   j ? "," : "", ep->addr_str, ep_state_name(ep), ep->bal.weight,
				   ep->bal.ewma_us / 1000.0, ep->bal.active, (unsigned long long)ep->opened,
				   (unsigned long long)errs, ep->bal.consecutive,
				   (unsigned long long)ep->bal.ejections);
			if (ep->bal.state != BAL_READY) {
				buf_printf(out, ",\"ejected_for_s\":%.3f,\"reason\":",
					   ep->bal.state == BAL_EJECTED && ep->bal.ejected_until > now ?
						   ep->bal.ejected_until - now : 0.0);
				buf_json_str(out, ep->eject_reason ? ep->eject_reason : "");
			}
			if (ep->requests)
				buf_printf(out, ",\"http_requests\":%llu,\"http_5xx\":%llu",
					   (unsigned long long)ep->requests, (unsigned long long)ep->responses_5xx);
			buf_puts(out, "}");
		}
		buf_puts(out, "]");
		h1p_render_service(s, out, now);
		buf_puts(out, "}");
	}
	buf_puts(out, "]}\n");
	pthread_mutex_unlock(&px->lock);
}

void proxy_render_conns(struct proxy *px, struct buf *out,
			const char *(*cgroup_name)(void *arg, uint64_t id), void *arg)
{
	ev_tstamp now = ev_time(); /* connections started on other loops' clocks */
	struct weft_sockaddr dst;
	struct relay_stats st;
	struct proxy_conn *c;
	char a[ADDR_STRLEN];
	const char *cg;
	bool first = true;
	unsigned wi;

	pthread_mutex_lock(&px->lock);
	buf_puts(out, "{\"conns\":[");
	FOR_EACH_CONN(px, wi, c) {
		relay_get_stats(c->relay, &st);
		cg = cgroup_name ? cgroup_name(arg, c->orig.cgroup_id) : NULL;
		buf_puts(out, first ? "{\"cgroup\":" : ",{\"cgroup\":");
		first = false;
		if (cg)
			buf_json_str(out, cg);
		else
			buf_puts(out, "null");
		addr_from_key(&c->orig.dst, &dst);
		buf_printf(out, ",\"cgroup_id\":%llu,\"pid\":%u,\"client\":\"%s\"",
			   (unsigned long long)c->orig.cgroup_id, c->orig.pid,
			   addr_format(&c->client, a, sizeof(a)));
		buf_printf(out, ",\"orig_dst\":\"%s\",\"service\":", addr_format(&dst, a, sizeof(a)));
		buf_json_str(out, c->svc->name);
		if (c->ep)
			buf_printf(out, ",\"endpoint\":\"%s\",\"state\":\"established\"", c->ep->addr_str);
		else
			buf_puts(out, ",\"endpoint\":null,\"state\":\"connecting\"");
		buf_printf(out, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"age_s\":%.3f}",
			   (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
			   now - c->started);
	}
	for (wi = 0; wi < px->nworkers; wi++)
		h1p_render_conns(&px->workers[wi], out, &first, cgroup_name, arg);
	buf_puts(out, "]}\n");
	pthread_mutex_unlock(&px->lock);
}

/* Labels for one endpoint series: service="..",endpoint="..",direction="outbound" */
static void ep_labels(struct buf *out, const struct proxy_ep *ep)
{
	buf_puts(out, "service=\"");
	buf_prom_label(out, ep->svc->name);
	buf_printf(out, "\",endpoint=\"%s\",direction=\"outbound\"", ep->addr_str);
}

void proxy_render_metrics(struct proxy *px, struct buf *out)
{
	struct proxy_svcstat *st;
	struct proxy_conn *c;
	struct proxy_ep *ep;
	struct relay_stats rs;
	size_t i;
	int k;
	unsigned wi;

	pthread_mutex_lock(&px->lock);
	buf_puts(out, "# HELP weft_connections_total Proxied connections established to an endpoint.\n"
		      "# TYPE weft_connections_total counter\n");
	for (ep = px->ep_registry; ep; ep = ep->next) {
		buf_puts(out, "weft_connections_total{");
		ep_labels(out, ep);
		buf_printf(out, "} %llu\n", (unsigned long long)ep->opened);
	}
	buf_puts(out, "# HELP weft_connections_active Proxied connections open now.\n"
		      "# TYPE weft_connections_active gauge\n");
	for (ep = px->ep_registry; ep; ep = ep->next) {
		buf_puts(out, "weft_connections_active{");
		ep_labels(out, ep);
		buf_printf(out, "} %u\n", ep->bal.active);
	}
	/* live bytes of open connections: one pass over them, not one per endpoint */
	for (ep = px->ep_registry; ep; ep = ep->next)
		ep->live_in = ep->live_out = 0;
	FOR_EACH_CONN(px, wi, c) {
		if (!c->ep)
			continue;
		relay_get_stats(c->relay, &rs);
		c->ep->live_in += rs.bytes_in;
		c->ep->live_out += rs.bytes_out;
	}
	buf_puts(out, "# HELP weft_bytes_total Bytes proxied; flow to_endpoint is client to endpoint.\n"
		      "# TYPE weft_bytes_total counter\n");
	for (ep = px->ep_registry; ep; ep = ep->next) {
		buf_puts(out, "weft_bytes_total{");
		ep_labels(out, ep);
		buf_printf(out, ",flow=\"to_endpoint\"} %llu\n", (unsigned long long)(ep->bytes_in + ep->live_in));
		buf_puts(out, "weft_bytes_total{");
		ep_labels(out, ep);
		buf_printf(out, ",flow=\"to_client\"} %llu\n", (unsigned long long)(ep->bytes_out + ep->live_out));
	}
	buf_puts(out, "# HELP weft_connect_errors_total Failed connect attempts to an endpoint, by reason.\n"
		      "# TYPE weft_connect_errors_total counter\n");
	for (ep = px->ep_registry; ep; ep = ep->next) {
		for (k = 0; k < PROXY_ERR__MAX; k++) {
			buf_puts(out, "weft_connect_errors_total{");
			ep_labels(out, ep);
			buf_printf(out, ",reason=\"%s\"} %llu\n", proxy_err_names[k],
				   (unsigned long long)ep->connect_errors[k]);
		}
	}
	buf_puts(out, "# HELP weft_connect_duration_seconds Time to establish the upstream connection.\n"
		      "# TYPE weft_connect_duration_seconds histogram\n");
	for (ep = px->ep_registry; ep; ep = ep->next) {
		for (i = 0; i < PROXY_LAT_BUCKETS; i++) {
			/* buckets are kept cumulative (see ep_observe_latency) */
			buf_puts(out, "weft_connect_duration_seconds_bucket{");
			ep_labels(out, ep);
			buf_printf(out, ",le=\"%g\"} %llu\n", proxy_lat_bounds[i], (unsigned long long)ep->lat_buckets[i]);
		}
		buf_puts(out, "weft_connect_duration_seconds_bucket{");
		ep_labels(out, ep);
		buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)ep->lat_count);
		buf_puts(out, "weft_connect_duration_seconds_sum{");
		ep_labels(out, ep);
		buf_printf(out, "} %.9f\n", ep->lat_sum);
		buf_puts(out, "weft_connect_duration_seconds_count{");
		ep_labels(out, ep);
		buf_printf(out, "} %llu\n", (unsigned long long)ep->lat_count);
	}
	buf_puts(out, "# HELP weft_connections_failed_total Client connections reset before reaching an "
		      "endpoint, by reason.\n# TYPE weft_connections_failed_total counter\n");
	for (st = px->stat_registry; st; st = st->next) {
		buf_puts(out, "weft_connections_failed_total{service=\"");
		buf_prom_label(out, st->name);
		buf_printf(out, "\",direction=\"outbound\",reason=\"no_endpoint\"} %llu\n",
			   (unsigned long long)st->no_endpoint);
		buf_puts(out, "weft_connections_failed_total{service=\"");
		buf_prom_label(out, st->name);
		buf_printf(out, "\",direction=\"outbound\",reason=\"agent_max_connections\"} %llu\n",
			   (unsigned long long)st->over_limit);
		buf_puts(out, "weft_connections_failed_total{service=\"");
		buf_prom_label(out, st->name);
		buf_printf(out, "\",direction=\"outbound\",reason=\"max_connections\"} %llu\n",
			   (unsigned long long)st->over_service_limit);
		buf_puts(out, "weft_connections_failed_total{service=\"");
		buf_prom_label(out, st->name);
		buf_printf(out, "\",direction=\"outbound\",reason=\"max_pending\"} %llu\n",
			   (unsigned long long)st->over_pending);
	}
	buf_puts(out, "# HELP weft_endpoint_ejections_total Times an endpoint was ejected by failure accrual.\n"
		      "# TYPE weft_endpoint_ejections_total counter\n");
	for (ep = px->ep_registry; ep; ep = ep->next) {
		buf_puts(out, "weft_endpoint_ejections_total{");
		ep_labels(out, ep);
		buf_printf(out, "} %llu\n", (unsigned long long)ep->bal.ejections);
	}
	buf_puts(out, "# HELP weft_endpoint_ejected 1 while an endpoint is ejected (or being probed).\n"
		      "# TYPE weft_endpoint_ejected gauge\n");
	for (ep = px->ep_registry; ep; ep = ep->next) {
		buf_puts(out, "weft_endpoint_ejected{");
		ep_labels(out, ep);
		buf_printf(out, "} %d\n", ep->bal.state != BAL_READY);
	}
	buf_puts(out, "# HELP weft_service_endpoints_ejected Endpoints of a service ejected now.\n"
		      "# TYPE weft_service_endpoints_ejected gauge\n");
	for (i = 0; i < px->n_svcs; i++) {
		buf_puts(out, "weft_service_endpoints_ejected{service=\"");
		buf_prom_label(out, px->svcs[i]->name);
		buf_printf(out, "\"} %zu\n", bal_ejected(&px->svcs[i]->bal));
	}
	buf_puts(out, "# HELP weft_service_panic_picks_total Endpoint picks made with every endpoint "
		      "ejected (panic mode).\n# TYPE weft_service_panic_picks_total counter\n");
	for (i = 0; i < px->n_svcs; i++) {
		buf_puts(out, "weft_service_panic_picks_total{service=\"");
		buf_prom_label(out, px->svcs[i]->name);
		buf_printf(out, "\"} %llu\n", (unsigned long long)px->svcs[i]->bal.panics);
	}
	buf_printf(out,
		   "# HELP weft_accepted_total Connections accepted on the outbound listeners.\n"
		   "# TYPE weft_accepted_total counter\nweft_accepted_total %llu\n"
		   "# HELP weft_unattributed_total Accepted connections with no original destination "
		   "(not redirected by weft), reset.\n"
		   "# TYPE weft_unattributed_total counter\nweft_unattributed_total %llu\n",
		   (unsigned long long)px->ctr.accepted, (unsigned long long)px->ctr.no_orig);
	buf_puts(out, "# HELP weft_worker_accepted_total Connections accepted per worker event loop.\n"
		      "# TYPE weft_worker_accepted_total counter\n");
	for (i = 0; i < px->nworkers; i++)
		buf_printf(out, "weft_worker_accepted_total{worker=\"%zu\"} %llu\n", i,
			   (unsigned long long)px->workers[i].accepted);
	h1p_render_metrics(px, out);
	pthread_mutex_unlock(&px->lock);
}

void proxy_render_services_text(struct proxy *px, struct buf *out)
{
	static const char *const hdr[] = { "SERVICE", "PROTOCOL", "ADDRESSES", "ENDPOINT", "STATE",
					   "WEIGHT", "EWMA_MS", "ACTIVE", "CONNS", "ERRORS", "REQUESTS" };
	char addrs[256], a[ADDR_STRLEN], w[16], ewma[32], act[16], conns[24], errs[24], reqs[24];
	struct table t;
	size_t i, j, n;

	pthread_mutex_lock(&px->lock);
	table_init(&t, 11, hdr);
	for (i = 0; i < px->n_svcs; i++) {
		const struct proxy_svc *s = px->svcs[i];

		addrs[0] = '\0';
		for (j = 0, n = 0; j < s->n_vips && n < sizeof(addrs) - 1; j++)
			n += (size_t)snprintf(addrs + n, sizeof(addrs) - n, "%s%s", j ? "," : "",
					      addr_format(&s->vips[j], a, sizeof(a)));
		if (!s->n_eps) {
			const char *row[] = { s->name, cfg_protocol_name(s->protocol), addrs, "(none)",
					      NULL, NULL, NULL, NULL, NULL, NULL, NULL };
			table_row(&t, row);
		}
		for (j = 0; j < s->n_eps; j++) {
			const struct proxy_ep *ep = s->eps[j];
			uint64_t e = 0;
			int k;

			for (k = 0; k < PROXY_ERR__MAX; k++)
				e += ep->connect_errors[k];
			snprintf(w, sizeof(w), "%u", ep->bal.weight);
			snprintf(ewma, sizeof(ewma), "%.3f", ep->bal.ewma_us / 1000.0);
			snprintf(act, sizeof(act), "%u", ep->bal.active);
			snprintf(conns, sizeof(conns), "%llu", (unsigned long long)ep->opened);
			snprintf(errs, sizeof(errs), "%llu", (unsigned long long)e);
			/* HTTP attempts sent (per request); "-" for opaque services */
			if (s->l7)
				snprintf(reqs, sizeof(reqs), "%llu", (unsigned long long)ep->requests);
			else
				snprintf(reqs, sizeof(reqs), "-");
			{
				const char *row[] = { j ? "" : s->name, j ? "" : cfg_protocol_name(s->protocol),
						      j ? "" : addrs, ep->addr_str, ep_state_name(ep), w, ewma, act,
						      conns, errs, reqs };
				table_row(&t, row);
			}
		}
	}
	table_render(&t, out);
	pthread_mutex_unlock(&px->lock);
}

void proxy_render_conns_text(struct proxy *px, struct buf *out,
			     const char *(*cgroup_name)(void *arg, uint64_t id), void *arg)
{
	static const char *const hdr[] = { "CGROUP", "PID", "CLIENT", "ORIG_DST", "SERVICE",
					   "ENDPOINT", "BYTES_IN", "BYTES_OUT", "AGE_S" };
	char pid[16], cl[ADDR_STRLEN], od[ADDR_STRLEN], bi[24], bo[24], age[24], cgid[32];
	ev_tstamp now = ev_time();
	struct weft_sockaddr dst;
	struct relay_stats st;
	struct proxy_conn *c;
	struct table t;
	const char *cg;
	unsigned wi;

	pthread_mutex_lock(&px->lock);
	table_init(&t, 9, hdr);
	FOR_EACH_CONN(px, wi, c) {
		relay_get_stats(c->relay, &st);
		cg = cgroup_name ? cgroup_name(arg, c->orig.cgroup_id) : NULL;
		if (!cg) {
			snprintf(cgid, sizeof(cgid), "id:%llu", (unsigned long long)c->orig.cgroup_id);
			cg = cgid;
		}
		snprintf(pid, sizeof(pid), "%u", c->orig.pid);
		addr_format(&c->client, cl, sizeof(cl));
		addr_from_key(&c->orig.dst, &dst);
		addr_format(&dst, od, sizeof(od));
		snprintf(bi, sizeof(bi), "%llu", (unsigned long long)st.bytes_in);
		snprintf(bo, sizeof(bo), "%llu", (unsigned long long)st.bytes_out);
		snprintf(age, sizeof(age), "%.1f", now - c->started);
		{
			const char *row[] = { cg, pid, cl, od, c->svc->name,
					      c->ep ? c->ep->addr_str : "(connecting)", bi, bo, age };
			table_row(&t, row);
		}
	}
	for (wi = 0; wi < px->nworkers; wi++)
		h1p_render_conns_text(&px->workers[wi], &t, cgroup_name, arg);
	table_render(&t, out);
	pthread_mutex_unlock(&px->lock);
}
