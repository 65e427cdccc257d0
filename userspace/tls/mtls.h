/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * mtls: the agent's TLS material for node-to-node mutual TLS. One immutable,
 * refcounted bundle per config generation: the node context (agent.inbound's
 * server side, and the client identity of workloads no identities rule
 * matches) and one client context per identities rule, plus the cgroup ->
 * rule map. Reload builds a new bundle and swaps it; connections keep the
 * contexts they took references on.
 * It may call: codec/identity, config/config, kernel/cgroup, tls/certmint,
 * tls/tls.
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
 * The client context for connections from cgroup `cgroup_id`: the first
 * identities rule matching its path, else the node's. Borrowed (valid while
 * the caller holds the bundle). O(rules) fnmatch plus one open_by_handle_at;
 * only cross-node connections pay it.
 */
struct tls_ctx *mtls_client_ctx(const struct mtls *m, uint64_t cgroup_id);

/*
 * True when a certificate or key file changed on disk since loading, or a
 * minted certificate reached 2/3 of its lifetime: poll it, then load again.
 */
bool mtls_files_changed(const struct mtls *m);

/* Earliest notAfter of every certificate in the bundle (expiry gauge). */
time_t mtls_earliest_expiry(const struct mtls *m);

#endif
