/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * kdisc: service discovery from the Kubernetes API. One reflector per kind
 * (Services, EndpointSlices, this node's Pods, Nodes), each the way the API
 * defines it: list (in pages of KDISC_PAGE items with limit/continue, so
 * memory follows a page, not the cluster; an expired continue token
 * restarts the list), then watch from the list's resourceVersion with
 * bookmarks; a watch that ends cleanly (timeoutSeconds) is resumed from the
 * last version seen; "410 Gone" (an ERROR event or an answer) means relist;
 * any other failure retries with jittered exponential back-off
 * (KDISC_BACKOFF_MIN_S doubling to KDISC_BACKOFF_MAX_S), never a busy loop.
 * While the API is away, the last known state keeps serving.
 *
 * What the objects mean for weft is kube/kmodel's; kdisc calls changed()
 * (coalesced: at most once per KDISC_COALESCE_S, and not while a list is
 * being read, for KDISC_HOLD_MAX_S at most) when the services may have
 * changed, and the agent then asks kmodel_services() and applies them.
 * Changes to this node's Pods do not rebuild services: they replace the
 * pod identity table (kube/kident) instead.
 * Main loop only.
 * It may call: kube/kapi, kube/kident, kube/kmodel, codec/k8s, config/config, lib/log,
 * lib/buf, libev.
 */
#ifndef WEFT_KDISC_H
#define WEFT_KDISC_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#define KDISC_BACKOFF_MIN_S 0.5
#define KDISC_BACKOFF_MAX_S 30.0
#define KDISC_COALESCE_S 0.02
#define KDISC_HOLD_MAX_S 5.0      /* longest an apply waits for lists being read */
#define KDISC_WATCH_TIMEOUT_S 300 /* timeoutSeconds asked of each watch (the API ends it cleanly) */

struct kdisc;
struct kmodel;
struct kident;
struct cfg_kubernetes;
struct buf;

/*
 * Starts the reflectors. ident (may be NULL): the table of this node's pods'
 * identities that kdisc keeps current from the Pods watch (it must outlive
 * kdisc; the workers read it). inbound_port: agent.inbound's port (how other
 * nodes' agents are reached); mark: SO_MARK for the API connections. 0, or
 * -errno with err set (a bad URL or CA file: what to fix).
 */
int kdisc_start(struct ev_loop *loop, const struct cfg_kubernetes *kc, uint16_t inbound_port, uint32_t mark,
		struct kident *ident, void (*changed)(void *arg), void *arg, struct kdisc **out, char *err,
		size_t errlen);
void kdisc_free(struct kdisc *d);
const struct kmodel *kdisc_model(const struct kdisc *d);
/* Every kind listed at least once (until then the services are partial). */
bool kdisc_synced(const struct kdisc *d);
/* weft_kubernetes_* metrics. */
void kdisc_metrics(struct kdisc *d, struct buf *out);

#endif
