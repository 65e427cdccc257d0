/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * pods: serves workloads that live in network namespaces other than weftd's
 * (Kubernetes pods), with no per-pod configuration.
 *
 * For every enrolled cgroup tree (intercept.cgroups, weftctl enroll) it finds
 * the processes (cgroup.procs) and their network namespaces. Each namespace
 * other than weftd's own, however many containers share it, gets one set of
 * outbound listeners (127.0.0.1 and ::1 on agent.outbound_port, one pair per
 * worker, made inside the namespace: listen/outbound), served by the same
 * worker loops as the host's, and is published in weft_listeners: only then
 * do connect4/6 redirect there (before, fail_mode applies, as for a stale
 * agent). When no enrolled process is left in a namespace (the pod is gone,
 * or no longer enrolled), its listeners close: a listening socket pins its
 * namespace, so nothing of a pod may outlive it here.
 *
 * Following the kubelet: a pod's cgroup is made first (cgwatch enrols it),
 * then its sandbox ("pause") process joins it, which flips the cgroup's
 * cgroup.events ("populated 1"): an inotify watch on cgroup.events (and on
 * each directory, for cgroups made below) wakes a scan within milliseconds.
 * A process seen in weftd's own namespace in a pod-shaped cgroup may be on
 * its way into the pod's (runtimes join the cgroup and the namespace in
 * either order): the scan is repeated with back-off for a short while. The
 * agent's periodic scan (pods_rescan) is the backstop; it also refreshes the
 * pods' addresses (a CNI plugin configures the pod IP after the sandbox
 * starts; pods without one are looked at every POD_ADDR_POLL_S meanwhile).
 *
 * Local endpoints in pods: the pods' addresses are indexed, and the
 * placement hook of lib/netns makes every upstream socket to a pod address
 * inside that pod's namespace, so agent-to-pod connections are local to the
 * pod and keep the agent's SO_MARK (strict_inbound for pods).
 *
 * Threading: one dedicated thread with its own loop does all the scanning,
 * setns() and listener work (setns() moves only the calling thread). The
 * pod table is under a rwlock: the placement hook reads it from any worker,
 * the admin snapshot from the main thread.
 * It may call: listen/outbound, kernel/kernel, kernel/cgroup, codec/kubepath,
 * lib/netns, lib/log, lib/buf, libev.
 */
#ifndef WEFT_PODS_H
#define WEFT_PODS_H

#include <stddef.h>
#include <stdint.h>

struct pods;
struct outbound;
struct kern;
struct buf;

#define POD_MAX_IPS 4
#define POD_ADDR_POLL_S 0.25    /* a pod without an address yet: looked at this often */
#define POD_ADDR_POLL_MAX_S 120 /* for at most this long after it appeared */
#define POD_RETRY_S 10.         /* a pod whose listeners could not be made: tried again after this */

/*
 * Starts the pod thread. ob and k are borrowed (they must outlive pods_free).
 * 0 or -errno with err set.
 */
int pods_start(struct outbound *ob, struct kern *k, uint16_t outbound_port, struct pods **out, char *err,
	       size_t errlen);
/* The enrolled cgroup directories (absolute paths), copied; a scan follows. Main thread. */
void pods_set_cgroups(struct pods *p, const char *const *dirs, size_t n);
/* A full scan soon, with every pod's addresses refreshed (the backstop). Any thread. */
void pods_rescan(struct pods *p);
/*
 * Closes every pod's listeners (they leave weft_listeners first) and stops
 * the thread; no pod is served after it returns. For drain and shutdown,
 * before the outbound stops accepting. Main thread; idempotent.
 */
void pods_stop(struct pods *p);
void pods_free(struct pods *p);

/* What the admin API shows of one pod. */
struct pod_info {
	char uid[37];     /* pod UID; "" when the cgroup is not a kubelet pod's */
	char cgroup[512]; /* the cgroup the namespace was found through */
	uint64_t netns_ino;
	uint64_t netns_cookie;
	char ips[POD_MAX_IPS][48];
	int nips;
	int listeners;  /* sockets open in the pod (all workers) */
	int failed_err; /* errno of the last setup failure, 0 when serving */
	double age_s;
};
/* A copy of the table (malloc'd, *out; the caller frees); the count. */
size_t pods_snapshot(struct pods *p, struct pod_info **out);
/* weft_pods* metrics (Prometheus text). */
void pods_metrics(struct pods *p, struct buf *out);

#endif
