// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * outbound: the outbound listeners (outbound.h). One SO_REUSEPORT set of
 * listeners per worker; an accepted connection is attributed (its BPF
 * record), admitted (the registry's limits), and dispatched to a path; the
 * paths below never see a listener.
 */
#include "listen/outbound.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "http/h1session.h"
#include "kernel/kernel.h"
#include "lib/blk.h"
#include "lib/list.h"
#include "lib/log.h"
#include "lib/lpause.h"
#include "lib/netns.h"
#include "lib/sock.h"
#include "listen/detect.h"
#include "http/h2session.h"
#include "state/service.h"
#include "tcp/tcp.h"
#include "tls/tls.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define ACCEPT_BATCH 64 /* accepts per wakeup, so one busy listener cannot starve the loop */

/* Commands from the main thread to a worker (bitmask in ob_worker.cmds). */
#define WCMD_STOP_ACCEPT 0x1
#define WCMD_ABORT 0x2
#define WCMD_EXIT 0x4
#define WCMD_PODS 0x8 /* look at podq */

/*
 * One worker's listeners in one pod's network namespace (or, queued in podq,
 * a command: del = close the listeners of pod). Owned by the worker thread
 * once taken off the queue.
 */
struct ob_plis {
	struct list_head link;
	uint64_t pod;
	bool del;
	int n;
	ev_io io[2];
};

/*
 * One event loop moving bytes. Worker 0 runs in the main loop (admin,
 * heartbeat and signals share it); workers 1..n-1 run their own loop on their
 * own thread. Each has its own listeners and its own part of each path
 * (tcp, http, detect); shared state is the registry's, under its lock.
 */
struct ob_worker {
	struct outbound *ob;
	unsigned id;
	struct ev_loop *loop;
	ev_io lis[2];
	int nlis;
	struct list_head pods; /* struct ob_plis: listeners in pods' namespaces (worker thread only) */
	pthread_mutex_t qlock; /* guards podq */
	struct list_head podq; /* struct ob_plis from the pod manager, not yet taken */
	bool accepting;        /* until drain: pod listeners handed over later are started */
	struct tcp_worker tcp;
	struct h1_worker http;
	struct h2_worker h2;
	struct detector detect;
	ev_async wake; /* main -> worker: look at cmds */
	atomic_uint cmds;
	ev_timer tick;                /* proves the loop turns (stuck-worker detection) */
	struct lpause pause;          /* the listeners, paused while accept lacks descriptors or memory */
	_Atomic double starved_since; /* ev_time() of the first failed accept with none working since, or 0 */
	_Atomic double last_tick;
	uint64_t accepted; /* under registry.lock */
	pthread_t thread;
	bool threaded; /* has (or will have) its own loop and thread */
	bool started;  /* its thread runs: only then signal and join it */
};

struct outbound {
	struct ev_loop *loop; /* the main loop (worker 0's) */
	struct kern *kern;
	struct registry *reg;
	struct zipkin *zipkin;
	struct membudget *mb;
	struct ob_worker *workers;
	unsigned nworkers;
};

static void ob_fast_path(struct outbound *ob, int fd, uint64_t cookie, const struct weft_sockaddr *peer)
{
	struct weft_sock_key sk;
	struct weft_sockaddr local;

	local.len = sizeof(local.in6);
	if (getsockname(fd, &local.sa, &local.len) < 0)
		return;
	memset(&sk, 0, sizeof(sk));
	sk.netns_cookie = cookie;
	addr_to_key(&local, &sk.local);
	addr_to_key(peer, &sk.remote);
	if (kern_sockhash_add(ob->kern, fd, &sk) < 0)
		log_debug("weft_sockhash: cannot add connection from a client: %s", strerror(errno));
}

static void ob_handle(struct ob_worker *w, int fd, const struct weft_sockaddr *peer)
{
	struct outbound *ob = w->ob;
	struct registry *reg = ob->reg;
	struct weft_conn_key key;
	struct svc *svc;
	struct weft_orig orig;
	char a[ADDR_STRLEN];
	socklen_t len;
	uint64_t cookie = 0;
	int r;

	memset(&key, 0, sizeof(key));
	len = sizeof(cookie);
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) < 0) {
		log_error_rl("getsockopt(SO_NETNS_COOKIE): %s; weft needs Linux 5.14+", strerror(errno));
		goto reset_unlocked;
	}
	key.netns_cookie = cookie;
	addr_to_key(peer, &key.client);
	/* the map lookup is a syscall: outside the lock */
	r = kern_take_orig(ob->kern, &key, &orig);
	if (r == 0 && ob->reg->redirect)
		ob_fast_path(ob, fd, cookie, peer);
	pthread_mutex_lock(&reg->lock);
	reg->ctr.accepted++;
	w->accepted++;
	if (r < 0) {
		reg->ctr.no_orig++;
		log_debug("connection from %s was not redirected by weft (no original destination); reset",
			  addr_format(peer, a, sizeof(a)));
		goto reset;
	}
	svc = reg_find_svc_locked(reg, &orig);
	if (!svc || !svc->n_eps) {
		struct weft_sockaddr dst;

		reg->ctr.no_service++;
		if (svc)
			svc->stat->no_endpoint++;
		addr_from_key(&orig.dst, &dst);
		log_warn_rl("connection to %s: %s; reset", addr_format(&dst, a, sizeof(a)),
			    svc ? "service has no endpoints" : "no service has this address any more");
		goto reset;
	}
	switch (reg_admit_locked(reg, svc, orig.cgroup_id)) {
	case SVC_ADMIT_OK:
		break;
	case SVC_ADMIT_AGENT_LIMIT:
		log_warn_rl("agent.max_connections (%u) reached; connection to service %s reset", reg->max_conns,
			    svc->name);
		goto reset;
	case SVC_ADMIT_WORKLOAD_LIMIT:
		log_warn("agent.max_connections_per_workload (%u) reached by cgroup %llu; connection to service %s "
			 "reset",
			 reg->max_per_workload, (unsigned long long)orig.cgroup_id, svc->name);
		goto reset;
	case SVC_ADMIT_SERVICE_LIMIT:
		log_debug("service %s: limits.max_connections (%u) reached; connection reset", svc->name,
			  svc->max_conns);
		goto reset;
	case SVC_ADMIT_PENDING_LIMIT:
		log_debug("service %s: limits.max_pending (%u) connects in progress; connection reset", svc->name,
			  svc->max_pending);
		goto reset;
	}
	/*
	 * Counted now, under the lock that admitted it: two workers admitting at
	 * once must not both see the last free slot (they did: one workload got
	 * max_connections_per_workload + 1).
	 */
	if (reg_conn_begin_locked(reg, svc, orig.cgroup_id) < 0) {
		log_warn_rl("out of memory admitting a connection to service %s; reset", svc->name);
		goto reset;
	}
	svc_ref_locked(svc);
	pthread_mutex_unlock(&reg->lock);
	/* dispatch: each path takes over fd, the reference and the count */
	if (svc->protocol == CFG_PROTO_HTTP && svc->http)
		h1_start(&w->http, fd, svc, &orig, peer);
	else if (svc->protocol == CFG_PROTO_HTTP2 && svc->http)
		h2_start(&w->h2, fd, svc, &orig, peer);
	else if (svc->protocol == CFG_PROTO_AUTO && svc->http)
		detect_start(&w->detect, fd, svc, &orig, peer);
	else
		tcp_start(&w->tcp, fd, svc, &orig, peer);
	return;
reset:
	pthread_mutex_unlock(&reg->lock);
reset_unlocked:
	sock_reset_close(fd);
}

static void ob_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ob_worker *wk = w->data;
	struct weft_sockaddr peer;
	int i, fd;

	(void)loop;
	(void)revents;
	for (i = 0; i < ACCEPT_BATCH; i++) {
		peer.len = sizeof(peer.in6);
		fd = accept4(w->fd, &peer.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* EMFILE and the like pause this worker's listeners (lib/lpause.h) */
			enum lpause_verdict v = lpause_accept_error(&wk->pause, errno);

			if (v == LPAUSE_NEXT)
				continue;
			if (v == LPAUSE_PAUSED && atomic_load_explicit(&wk->starved_since, memory_order_relaxed) == 0)
				atomic_store(&wk->starved_since, ev_time());
			return;
		}
		lpause_accepted(&wk->pause);
		if (atomic_load_explicit(&wk->starved_since, memory_order_relaxed) != 0)
			atomic_store(&wk->starved_since, 0.);
		ob_handle(wk, fd, &peer);
		/* its upstream socket took the reserve descriptor: take no more for now */
		if (netns_reserve_spent()) {
			if (lpause_accept_error(&wk->pause, EMFILE) == LPAUSE_PAUSED &&
			    atomic_load_explicit(&wk->starved_since, memory_order_relaxed) == 0)
				atomic_store(&wk->starved_since, ev_time());
			return;
		}
	}
}

/*
 * A listening socket on ip:port, non-blocking, with SO_REUSEPORT so every
 * worker has its own. With probe, a socket without SO_REUSEPORT is bound
 * first: another process (or weftd) holding the port then shows as
 * EADDRINUSE instead of silently sharing our connections. Made in the
 * calling thread's network namespace. The fd, or -errno with err set.
 */
static int ob_make_listener(const char *ip, uint16_t port, bool probe, char *err, size_t errlen)
{
	struct weft_sockaddr a;
	char spec[64];
	int fd = -1, one = 1, r;

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
	if (a.sa.sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto err;
	if (probe) {
		int pfd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (pfd < 0)
			goto err;
		if (a.sa.sa_family == AF_INET6)
			setsockopt(pfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(pfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(pfd, &a.sa, a.len) < 0) {
			r = errno;
			close(pfd);
			errno = r;
			goto err;
		}
		close(pfd);
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto err;
	if (bind(fd, &a.sa, a.len) < 0)
		goto err;
	if (listen(fd, 4096) < 0)
		goto err;
	return fd;
err:
	r = -errno;
	snprintf(err, errlen, "cannot listen on %s (agent.outbound_port): %s%s", spec, strerror(errno),
		 errno == EADDRINUSE ? "; another process (or weftd) uses this port: choose another "
				       "agent.outbound_port"
				     : "");
	if (fd >= 0)
		close(fd);
	return r;
}

static int ob_listen(struct ob_worker *w, const char *ip, uint16_t port, char *err, size_t errlen)
{
	int fd = ob_make_listener(ip, port, w->id == 0, err, errlen);

	if (fd < 0)
		return fd;
	ev_io_init(&w->lis[w->nlis], ob_on_accept, fd, EV_READ);
	w->lis[w->nlis].data = w;
	w->nlis++;
	if (w->id == 0)
		log_info("outbound listener on %s%s%s:%u", strchr(ip, ':') ? "[" : "", ip, strchr(ip, ':') ? "]" : "",
			 port);
	return 0;
}

/*
 * Puts one listener per family of worker w into weft_listeners under the
 * namespace they were made in. Until then connect4/6 apply fail_mode to that
 * namespace; once a listener closes, the kernel drops its entry by itself.
 */
static int ob_publish(struct outbound *ob, struct ob_worker *w, char *err, size_t errlen)
{
	uint64_t cookie;
	socklen_t len;
	int i, r;

	for (i = 0; i < w->nlis; i++) {
		struct weft_sockaddr a;

		len = sizeof(cookie);
		a.len = sizeof(a.in6);
		if (getsockopt(w->lis[i].fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) < 0 ||
		    getsockname(w->lis[i].fd, &a.sa, &a.len) < 0) {
			r = -errno;
			snprintf(err, errlen,
				 "getsockopt(SO_NETNS_COOKIE) on the outbound listener: %s; weft needs "
				 "Linux 5.14 or later",
				 strerror(errno));
			return r;
		}
		r = kern_listener_add(ob->kern, w->lis[i].fd, cookie, a.sa.sa_family);
		if (r < 0) {
			snprintf(err, errlen, "cannot add the outbound listener to weft_listeners: %s", strerror(-r));
			return r;
		}
	}
	return 0;
}

/*
 * Before a listening socket closes: take the connections already in its
 * backlog (their connect was redirected here before the listener left
 * weft_listeners, or before the drain), so they are served instead of reset
 * by the close. Bounded: a few accept batches.
 */
static void lis_take_backlog(struct ob_worker *w, ev_io *io)
{
	int k;

	for (k = 0; k < 4; k++)
		ob_on_accept(w->loop, io, EV_READ);
}

static void plis_close(struct ob_worker *w, struct ob_plis *pl)
{
	int i;

	for (i = 0; i < pl->n; i++) {
		ev_io_stop(w->loop, &pl->io[i]);
		lis_take_backlog(w, &pl->io[i]);
		close(pl->io[i].fd);
	}
	list_del(&pl->link);
	free(pl);
}

/*
 * lpause's hook: the pods' listeners pause and resume with the host's. A
 * pause that began with the reserve descriptor spent ends only once a spare
 * can be taken again (else accept would work and connect fail).
 */
static void worker_pods_run(void *arg, bool run)
{
	struct ob_worker *w = arg;
	struct ob_plis *pl;
	int i, r;

	if (run && netns_reserve_spent() && (r = netns_reserve_restore()) < 0) {
		(void)lpause_accept_error(&w->pause, -r);
		return;
	}

	list_for_each_entry(pl, &w->pods, link)
		for (i = 0; i < pl->n; i++) {
			if (run)
				ev_io_start(w->loop, &pl->io[i]);
			else
				ev_io_stop(w->loop, &pl->io[i]);
		}
}

/* Takes the pod manager's commands: new pods' listeners start, gone pods' close. Worker thread. */
static void worker_take_pods(struct ob_worker *w)
{
	struct list_head q;
	struct ob_plis *pl, *tmp, *have, *htmp;
	int i;

	list_init(&q);
	pthread_mutex_lock(&w->qlock);
	if (!list_empty(&w->podq)) {
		q.next = w->podq.next;
		q.prev = w->podq.prev;
		q.next->prev = &q;
		q.prev->next = &q;
		list_init(&w->podq);
	}
	pthread_mutex_unlock(&w->qlock);
	list_for_each_entry_safe(pl, tmp, &q, link) {
		if (pl->del) {
			list_for_each_entry_safe(have, htmp, &w->pods, link)
				if (have->pod == pl->pod)
					plis_close(w, have);
			list_del(&pl->link);
			free(pl);
			continue;
		}
		list_del(&pl->link);
		list_add_tail(&pl->link, &w->pods);
		for (i = 0; i < pl->n; i++) {
			pl->io[i].data = w;
			if (w->accepting && !lpause_paused(&w->pause))
				ev_io_start(w->loop, &pl->io[i]);
		}
		if (!w->accepting) {
			/* handed over during a drain: nothing will accept them */
			plis_close(w, pl);
		}
	}
}

static void worker_stop_accepting(struct ob_worker *w)
{
	struct ob_plis *pl, *tmp;
	int i;

	w->accepting = false;
	worker_take_pods(w);
	list_for_each_entry_safe(pl, tmp, &w->pods, link)
		plis_close(w, pl);
	lpause_stop(&w->pause);
	h1_worker_drain(&w->http);
	h2_worker_drain(&w->h2);
	for (i = 0; i < w->nlis; i++) {
		ev_io_stop(w->loop, &w->lis[i]);
		lis_take_backlog(w, &w->lis[i]);
		close(w->lis[i].fd);
	}
	w->nlis = 0;
	lpause_set_ios(&w->pause, w->lis, 0);
}

/* Resets this worker's connections; must run in the worker's thread. */
static void worker_abort_all(struct ob_worker *w)
{
	tcp_worker_abort(&w->tcp);
	detector_abort(&w->detect);
	h1_worker_abort(&w->http);
	h2_worker_abort(&w->h2);
}

static void worker_on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	struct ob_worker *w = a->data;
	unsigned cmds = atomic_exchange(&w->cmds, 0);

	(void)revents;
	if (cmds & WCMD_PODS)
		worker_take_pods(w);
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
	struct ob_worker *w = t->data;

	(void)revents;
	atomic_store(&w->last_tick, ev_now(loop));
}

/* Runs a command on every worker: directly for worker 0, via its async watcher for the rest. */
static void ob_command(struct outbound *ob, unsigned cmd)
{
	unsigned i;

	for (i = 0; i < ob->nworkers; i++) {
		struct ob_worker *w = &ob->workers[i];

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
	struct ob_worker *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "weftd-w%u", w->id);
	pthread_setname_np(pthread_self(), name);
	if (netns_reserve_init() < 0)
		log_warn("worker %u: no reserve descriptor: %s", w->id, strerror(errno));
	ev_run(w->loop, 0);
	netns_reserve_free();
	blk_thread_cleanup();
	tls_thread_cleanup();
	return NULL;
}

static int worker_init(struct outbound *ob, struct ob_worker *w, unsigned id, const struct weft_config *cfg, char *err,
		       size_t errlen)
{
	char what[48];
	int r;

	w->ob = ob;
	w->id = id;
	list_init(&w->pods);
	list_init(&w->podq);
	pthread_mutex_init(&w->qlock, NULL);
	w->accepting = true;
	w->threaded = id > 0;
	w->loop = id == 0 ? ob->loop : ev_loop_new(EVFLAG_AUTO);
	if (!w->loop) {
		snprintf(err, errlen, "libev could not create an event loop for worker %u", id);
		return -ENOMEM;
	}
	h1_worker_init(&w->http, w->loop, id, ob->reg, ob->zipkin, ob->mb);
	h2_worker_init(&w->h2, w->loop, id, ob->reg, ob->zipkin);
	detector_init(&w->detect, w->loop, ob->reg, &w->tcp, &w->http, &w->h2);
	if (tcp_worker_init(&w->tcp, w->loop, id, ob->reg, cfg->buffer_size) < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = ob_listen(w, "127.0.0.1", cfg->outbound_port, err, errlen);
	if (r < 0)
		return r;
	r = ob_listen(w, "::1", cfg->outbound_port, err, errlen);
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
	snprintf(what, sizeof(what), "worker %u: outbound listeners", id);
	lpause_init(&w->pause, w->loop, w->lis, w->nlis, what);
	lpause_set_hook(&w->pause, worker_pods_run, w);
	if (!w->threaded && netns_reserve_init() < 0)
		log_warn("worker 0: no reserve descriptor: %s", strerror(errno));
	w->tick.data = w;
	atomic_store(&w->last_tick, ev_now(w->loop));
	/* worker 0's wake serves the pod manager's commands (from its thread) */
	ev_async_start(w->loop, &w->wake);
	if (w->threaded)
		ev_timer_start(w->loop, &w->tick);
	return 0;
}

int outbound_start(struct ev_loop *loop, struct kern *k, const struct weft_config *cfg, unsigned nworkers,
		   struct registry *reg, struct membudget *mb, struct zipkin *zipkin, struct outbound **out, char *err,
		   size_t errlen)
{
	struct outbound *ob;
	unsigned i;
	int r, j;

	ob = calloc(1, sizeof(*ob));
	if (!ob)
		return -ENOMEM;
	ob->loop = loop;
	ob->kern = k;
	ob->reg = reg;
	ob->zipkin = zipkin;
	ob->mb = mb;
	ob->workers = calloc(nworkers ? nworkers : 1, sizeof(*ob->workers));
	if (!ob->workers) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	ob->nworkers = nworkers ? nworkers : 1;
	for (i = 0; i < ob->nworkers; i++) {
		r = worker_init(ob, &ob->workers[i], i, cfg, err, errlen);
		if (r < 0)
			goto err;
	}
	/* listeners go live only once every worker could bind */
	for (i = 0; i < ob->nworkers; i++) {
		struct ob_worker *w = &ob->workers[i];

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
	/* the host's namespace is served from here on: connect4/6 may redirect into it */
	r = ob_publish(ob, &ob->workers[0], err, errlen);
	if (r < 0)
		goto err;
	log_info("%u worker%s moving bytes", ob->nworkers, ob->nworkers == 1 ? "" : "s");
	*out = ob;
	return 0;
err:
	outbound_free(ob);
	return r;
}

void outbound_stop_accepting(struct outbound *ob)
{
	ob_command(ob, WCMD_STOP_ACCEPT);
}

void outbound_abort_all(struct outbound *ob)
{
	ob_command(ob, WCMD_ABORT);
}

bool outbound_starved(struct outbound *ob, double max_age, double *age)
{
	double now = ev_time(), oldest = now;
	unsigned i;

	for (i = 0; i < ob->nworkers; i++) {
		double t = atomic_load(&ob->workers[i].starved_since);

		if (!ob->workers[i].loop)
			continue;
		if (t == 0 || now - t <= max_age)
			return false; /* this worker still accepts (or only just stopped) */
		if (t < oldest)
			oldest = t;
	}
	*age = now - oldest;
	return ob->nworkers > 0;
}

int outbound_stuck_worker(struct outbound *ob, double max_age, double *age)
{
	double now = ev_time();
	unsigned i;

	for (i = 0; i < ob->nworkers; i++) {
		struct ob_worker *w = &ob->workers[i];
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

void outbound_free(struct outbound *ob)
{
	unsigned i;

	if (!ob)
		return;
	/* threads first: each stops, resets its connections and leaves its loop */
	for (i = 0; i < ob->nworkers; i++) {
		struct ob_worker *w = &ob->workers[i];

		if (!w->started)
			continue;
		atomic_fetch_or(&w->cmds, WCMD_EXIT);
		ev_async_send(w->loop, &w->wake);
		pthread_join(w->thread, NULL);
	}
	for (i = 0; i < ob->nworkers; i++) {
		struct ob_worker *w = &ob->workers[i];

		if (!w->loop)
			continue;
		if (!w->started) {
			/* worker 0, or a thread that never ran: clean it up from here */
			worker_stop_accepting(w);
			worker_abort_all(w);
		}
		tcp_worker_free(&w->tcp);
		if (!w->threaded)
			ev_async_stop(w->loop, &w->wake);
		pthread_mutex_destroy(&w->qlock);
		if (w->loop != ob->loop)
			ev_loop_destroy(w->loop);
	}
	free(ob->workers);
	blk_thread_cleanup(); /* worker 0's, on this thread */
	netns_reserve_free();
	free(ob);
}

unsigned outbound_nworkers(const struct outbound *ob)
{
	return ob->nworkers;
}

bool outbound_worker_view(struct outbound *ob, unsigned i, struct outbound_worker_view *v)
{
	struct ob_worker *w = &ob->workers[i];

	if (!w->loop || !w->tcp.pool)
		return false;
	v->accepted = w->accepted;
	v->tcp = &w->tcp;
	v->http = &w->http;
	v->h2 = &w->h2;
	return true;
}

int outbound_pod_listen(struct outbound *ob, uint16_t port, int *fds, char *err, size_t errlen)
{
	unsigned i;
	int r;

	for (i = 0; i < 2 * ob->nworkers; i++)
		fds[i] = -1;
	for (i = 0; i < ob->nworkers; i++) {
		r = ob_make_listener("127.0.0.1", port, i == 0, err, errlen);
		if (r < 0)
			goto err;
		fds[2 * i] = r;
		r = ob_make_listener("::1", port, i == 0, err, errlen);
		if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT) {
			err[0] = '\0'; /* no IPv6 in this namespace: IPv4 only */
			continue;
		}
		if (r < 0)
			goto err;
		fds[2 * i + 1] = r;
	}
	return 0;
err:
	for (i = 0; i < 2 * ob->nworkers; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
	return r;
}

static void ob_pod_post(struct ob_worker *w, struct ob_plis *pl)
{
	pthread_mutex_lock(&w->qlock);
	list_add_tail(&pl->link, &w->podq);
	pthread_mutex_unlock(&w->qlock);
	atomic_fetch_or(&w->cmds, WCMD_PODS);
	ev_async_send(w->loop, &w->wake);
}

/*
 * One command per worker about pod (fds: its listeners, 2 per worker; NULL:
 * close them), allocated first so that either every worker gets it or none.
 */
static int ob_pod_command(struct outbound *ob, uint64_t pod, const int *fds)
{
	struct ob_plis *pl[OB_MAX_WORKERS];
	unsigned i;
	int j;

	if (ob->nworkers > OB_MAX_WORKERS)
		return -EINVAL;
	for (i = 0; i < ob->nworkers; i++) {
		pl[i] = calloc(1, sizeof(*pl[i]));
		if (!pl[i]) {
			while (i--)
				free(pl[i]);
			return -ENOMEM;
		}
	}
	for (i = 0; i < ob->nworkers; i++) {
		pl[i]->pod = pod;
		pl[i]->del = !fds;
		for (j = 0; fds && j < 2; j++)
			if (fds[2 * i + j] >= 0) {
				ev_io_init(&pl[i]->io[pl[i]->n], ob_on_accept, fds[2 * i + j], EV_READ);
				pl[i]->n++;
			}
		ob_pod_post(&ob->workers[i], pl[i]);
	}
	return 0;
}

int outbound_pod_attach(struct outbound *ob, uint64_t pod, const int *fds)
{
	return ob_pod_command(ob, pod, fds);
}

int outbound_pod_detach(struct outbound *ob, uint64_t pod)
{
	return ob_pod_command(ob, pod, NULL);
}

_Static_assert(OB_MAX_WORKERS >= CFG_MAX_WORKERS, "a pod needs listener slots for every worker");
