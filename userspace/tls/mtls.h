/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * mtls: the agent's TLS material for node-to-node mutual TLS. One immutable,
 * refcounted bundle per config generation: the node context (agent.inbound's
 * server side, and the client identity of workloads no identities rule
 * matches) and one client context per identities rule, plus the cgroup ->
 * rule map; and, for workloads whose identity is found at run time
 * (Kubernetes pods: their service account), client contexts minted on first
 * use from the node issuer (the only part that changes after load: under a
 * mutex). Reload builds a new bundle and swaps it; connections keep the
 * contexts they took references on.
 * It may call: codec/identity, config/config, kernel/cgroup, tls/certmint,
 * tls/tls, lib/log.
 */
#ifndef WEFT_MTLS_H
#define WEFT_MTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct mtls;
struct tls_ctx;
struct weft_config;

/* Loads every certificate (checks each names its identity). NULL when cfg has no tls group. */
int mtls_load(const struct weft_config *cfg, const char *cgmount, struct mtls **out, char *err, size_t errlen);
struct mtls *mtls_ref(struct mtls *m);
void mtls_unref(struct mtls *m);

struct tls_ctx *mtls_node_ctx(const struct mtls *m);
const char *mtls_trust_domain(const struct mtls *m);

/*
 * Workload identities found at run time (Kubernetes pods: kube/kident):
 * fn(arg, cgroup_path, trust_domain, id, len) writes the SPIFFE ID of the
 * workload in that cgroup and returns true, or returns false (unknown). Any
 * thread may call it. Set once, before the bundle is used.
 */
typedef bool (*mtls_identity_fn)(void *arg, const char *cgroup_path, const char *trust_domain, char *id, size_t len);
void mtls_set_workload_identity(struct mtls *m, mtls_identity_fn fn, void *arg);

/* Most identities minted at run time per bundle (a node runs far fewer service accounts). */
#define MTLS_MAX_MINTED 1024

/*
 * The client context for connections from cgroup `cgroup_id`: the first
 * identities rule matching its path; else the workload identity fn gives
 * (its certificate minted from tls.issuer_* on first use, kept for the
 * bundle's life); else the node's. Borrowed (valid while the caller holds
 * the bundle). O(rules) fnmatch plus one open_by_handle_at, plus fn and a
 * scan of the minted identities under a mutex; only cross-node connections
 * pay it. A first use mints (about 1 ms) with the mutex held.
 */
struct tls_ctx *mtls_client_ctx(struct mtls *m, uint64_t cgroup_id);

struct mtls_stats {
	size_t configured;      /* identities rules */
	size_t minted;          /* workload identities minted at run time */
	uint64_t mint_failures; /* a workload identity that could not be had (no issuer, minting failed, too many) */
	uint64_t fallbacks;     /* connections that used the node identity because of that */
};
void mtls_stats(struct mtls *m, struct mtls_stats *st);

/*
 * True when a certificate or key file changed on disk since loading, or a
 * minted certificate reached 2/3 of its lifetime: poll it, then load again.
 */
bool mtls_files_changed(struct mtls *m);

/* Earliest notAfter of every certificate in the bundle (expiry gauge). */
time_t mtls_earliest_expiry(struct mtls *m);

#endif
