/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * outbound: the outbound side of weftd, on top of the data path. Listens on
 * the agent's outbound port on loopback (127.0.0.1 and ::1), one set of
 * listeners per worker loop, and for each accepted connection finds the
 * original destination the BPF side recorded, maps it to a service (the
 * registry), applies admission, and dispatches: opaque TCP to tcp/tcp, HTTP
 * to http/h1session, protocol "auto" to listen/detect first.
 * It may call: state/service, tcp/tcp, http/h1session, listen/detect,
 * kernel/kernel, config/, lib/.
 *
 * Threading: worker 0 runs in the caller's loop (which also serves admin and
 * signals); workers 1..n-1 get their own loop and thread. Commands from the
 * main thread reach a worker through its async watcher.
 */
#ifndef WEFT_OUTBOUND_H
#define WEFT_OUTBOUND_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct outbound;
struct kern;
struct registry;
struct weft_config;
struct zipkin;
struct membudget;
struct tcp_worker;
struct h1_worker;

/*
 * Binds the outbound listeners and starts accepting. reg, mb (the buffer
 * memory budget) and zipkin (the span exporter for HTTP requests, or NULL)
 * are borrowed: they must outlive the outbound. 0 or -errno with err set.
 */
int outbound_start(struct ev_loop *loop, struct kern *k, const struct weft_config *cfg, unsigned nworkers,
		   struct registry *reg, struct membudget *mb, struct zipkin *zipkin, struct outbound **out, char *err,
		   size_t errlen);

/*
 * A worker thread whose loop has not turned for max_age seconds (stuck in a
 * loop, or starved): returns its index and sets *age, or -1 when all are well.
 */
int outbound_stuck_worker(struct outbound *ob, double max_age, double *age);

/*
 * Every worker's listeners have failed to accept (descriptors or memory
 * exhausted: lib/lpause) for more than max_age seconds, with no accept
 * working since: new connections only pile up in the backlogs. true and
 * *age set. The agent then lets the heartbeat go stale, as for a stuck
 * worker, so new connects follow agent.fail_mode instead of hanging.
 */
bool outbound_starved(struct outbound *ob, double max_age, double *age);

/* Closes the listeners of every worker (drain); asynchronous for worker threads. */
void outbound_stop_accepting(struct outbound *ob);
/* Resets every active connection (each worker its own; asynchronous for threads). */
void outbound_abort_all(struct outbound *ob);
/* Frees everything; active connections are aborted first. */
void outbound_free(struct outbound *ob);

/*
 * Pods (listen/pods): the outbound listeners of a pod's network namespace.
 * outbound_pod_listen runs on the pod manager's thread while it is inside the
 * pod's namespace: it makes worker i's listeners fds[2i] (127.0.0.1) and
 * fds[2i+1] (::1, or -1 when the namespace has no IPv6 loopback) on port;
 * fds has 2 * outbound_nworkers() slots. 0, or -errno with err set (then
 * nothing is left open: e.g. EADDRINUSE when the pod's own app holds the
 * port). outbound_pod_attach hands them to the workers, who own and close
 * them from then on (asynchronously: each worker takes them in its loop);
 * outbound_pod_detach makes each worker close the listeners of pod. Both
 * 0 or -ENOMEM (then nothing was handed over). Any thread.
 */
#define OB_MAX_WORKERS 64
int outbound_pod_listen(struct outbound *ob, uint16_t port, int *fds, char *err, size_t errlen);
int outbound_pod_attach(struct outbound *ob, uint64_t pod, const int *fds);
int outbound_pod_detach(struct outbound *ob, uint64_t pod);

/* For the admin snapshot: what each worker holds (registry.lock held while it is read). */
struct outbound_worker_view {
	uint64_t accepted;
	struct tcp_worker *tcp;
	struct h1_worker *http;
	struct h2_worker *h2;
};
unsigned outbound_nworkers(const struct outbound *ob);
/* false: worker i never started (nothing to show). */
bool outbound_worker_view(struct outbound *ob, unsigned i, struct outbound_worker_view *v);

#endif
