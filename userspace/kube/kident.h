/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * kident: the workload identity of each pod on this node, for the threads
 * that open cross-node connections.
 *
 * A pod's identity is spiffe://<trust domain>/ns/<namespace>/sa/<service
 * account>. The namespace and service account come from the Pods watch
 * (kube/kdisc, main thread), which replaces the whole table whenever a pod
 * of this node comes, goes or changes; a worker that dials another node asks
 * with the cgroup path of the connecting socket, which names the pod UID
 * (codec/kubepath). A pod the watch has not shown yet (or a cgroup that is
 * not a pod's) has no identity here, and the caller falls back to the node's.
 *
 * Threading: the table is an immutable sorted array behind a mutex; lookups
 * (any thread) hold it for one binary search and a copy, replacement (main
 * thread) for a pointer swap. O(log pods) per lookup; a node has a few
 * hundred pods at most, so a replacement is O(pods) and rare.
 * It may call: codec/kubepath, codec/identity.
 */
#ifndef WEFT_KIDENT_H
#define WEFT_KIDENT_H

#include <stdbool.h>
#include <stddef.h>

struct kident;

struct kident_pod {
	const char *uid, *ns, *sa; /* borrowed for the call to kident_replace */
};

struct kident *kident_new(void);
void kident_free(struct kident *k); /* NULL is fine */

/* The pods now (copied). 0, or -ENOMEM and the previous table stays. Main thread. */
int kident_replace(struct kident *k, const struct kident_pod *pods, size_t n);

/* Pods in the table now. Any thread. */
size_t kident_count(struct kident *k);

/*
 * The identity of the pod whose cgroup is cgroup_path (or lies inside it):
 * spiffe://<trust_domain>/ns/<ns>/sa/<sa> into id. false when the path is not
 * a pod's, the pod is unknown, or the ID would not be a valid SPIFFE ID or
 * fit in len. Any thread.
 */
bool kident_of_cgroup(struct kident *k, const char *cgroup_path, const char *trust_domain, char *id, size_t len);

#endif
