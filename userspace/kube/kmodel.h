/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * kmodel: what weft makes of the Kubernetes objects it watches. Pure (no
 * I/O, no clock): the reflectors feed it decoded objects (codec/k8s), and
 * kmodel_services() turns the current state into weft services:
 *
 * - each TCP port of a Service with ClusterIP(s) (not headless, not
 *   ExternalName) is one service named "<namespace>/<name>:<port>" on
 *   ClusterIP:port for every ClusterIP (dual stack: both);
 * - its endpoints are the ready endpoints of the EndpointSlices labelled
 *   kubernetes.io/service-name = <name> in that namespace, on the slice port
 *   whose name matches the Service port's name (every family's slices: a
 *   dual-stack Service's VIPs share one endpoint set);
 * - an endpoint on this node (nodeName = node_name, or none) is connected
 *   directly; one on another node through that node's agent: the node's
 *   InternalIP of the endpoint's family (else any) and agent.inbound's port,
 *   over mutual TLS. An endpoint on a node weft does not know (yet) is left
 *   out (and counted) rather than guessed;
 * - protocol from appProtocol: "http" -> http, anything else (absent,
 *   "kubernetes.io/h2c", "grpc", ...) -> auto (detection; HTTP/2 is opaque
 *   until weft speaks it).
 *
 * Memory: compact copies, not the decoded objects: an endpoint costs an IP,
 * a condition bit and a node index (about 32 bytes), so 100k endpoints stay
 * within a few MiB. Lookups by namespace/name are hashed.
 * It may call: codec/k8s, config/config (the service struct), lib/addr.
 */
#ifndef WEFT_KMODEL_H
#define WEFT_KMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/k8s.h"

struct kmodel;
struct cfg_service;

struct kmodel *kmodel_new(const char *node_name, uint16_t inbound_port);
void kmodel_free(struct kmodel *m);

/*
 * ADDED/MODIFIED: o is the object now; DELETED: the object goes. Objects of
 * a kind weft does not keep are ignored. 0 or -ENOMEM. Returns 1 when the
 * services may have changed (0: nothing that matters did).
 */
int kmodel_apply(struct kmodel *m, enum k8s_event_type t, const struct k8s_object *o);
/* A relist of kind: objects not applied between begin and end are deleted. */
void kmodel_resync_begin(struct kmodel *m, enum k8s_kind kind);
int kmodel_resync_end(struct kmodel *m, enum k8s_kind kind);

/*
 * The services now (an allocated array of n entries, each with
 * cfg_service_defaults() and its own name, addrs and endpoints); free with
 * kmodel_services_free. 0 or -ENOMEM.
 */
int kmodel_services(const struct kmodel *m, struct cfg_service **out, size_t *n);
void kmodel_services_free(struct cfg_service *s, size_t n);

struct kmodel_stats {
	size_t services, slices, nodes, pods;
	size_t endpoints;           /* ready endpoints in the last kmodel_services() */
	size_t endpoints_no_node;   /* left out: on a node weft has no InternalIP for */
	size_t endpoints_not_ready; /* not ready (or terminating) */
};
void kmodel_stats(const struct kmodel *m, struct kmodel_stats *st);

/*
 * Calls fn for every pod of this node (any order) with its UID, namespace and
 * service account ("default" when the pod names none); returns how many.
 */
size_t kmodel_pods_each(const struct kmodel *m, void (*fn)(void *arg, const char *uid, const char *ns, const char *sa),
			void *arg);

#endif
