/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * disc: endpoints of services from outside the config file, for the agent:
 * each `services[].endpoints_from` source followed by disc/dnsdisc (DNS
 * names and SRV records) or disc/filedisc (endpoint files).
 *
 * The agent owns one. disc_configure() makes the sources match a config
 * (at start and at each reload): a source that stays (same service, kind,
 * name and port) keeps its last good set, its counters and its timers, and
 * takes the new attributes (zone, weight, refresh bounds); new ones start
 * (a file is read at once, a name is asked at the loop's next turn); gone
 * ones stop. When a source's set changes, disc calls changed() (coalesced:
 * at most once per DISC_COALESCE_S), and the agent rebuilds the services in
 * force, asking disc_endpoints() for each service with sources, the way it
 * does for Kubernetes (kube/kdisc). Endpoint state (EWMA, ejection) is kept
 * by the registry for addresses that stay.
 *
 * Main loop only.
 * It may call: disc/dnsdisc, disc/filedisc, disc/epset, config/, lib/, libev.
 */
#ifndef WEFT_DISC_H
#define WEFT_DISC_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

#define DISC_COALESCE_S 0.02

struct disc;
struct buf;

/* mark: SO_MARK for DNS sockets. 0 or -ENOMEM. */
int disc_new(struct ev_loop *loop, uint32_t mark, void (*changed)(void *arg), void *arg, struct disc **out);
void disc_free(struct disc *d);

/*
 * Makes the sources those of cfg (and the DNS servers agent.dns_servers).
 * 0, or -errno with err (the DNS resolver could not be set up: nothing
 * changed; or out of memory).
 */
int disc_configure(struct disc *d, const struct weft_config *cfg, char *err, size_t errlen);

/*
 * The endpoints svc's sources give now, in the order of its endpoints_from
 * (an address two sources give is kept once, from the first), at most
 * CFG_MAX_ENDPOINTS: *out (the caller frees the array; zones point into the
 * sources' sets, valid until the loop runs again). 0 or -ENOMEM.
 */
int disc_endpoints(struct disc *d, const struct cfg_service *svc, struct cfg_endpoint **out, size_t *n);

/* weft_discovery_* metrics. */
void disc_metrics(struct disc *d, struct buf *out);

/* ,"endpoints_from":[...] of service svc in /services (a render_svc_fn; d may be NULL). */
void disc_render_service(void *d, const char *svc, struct buf *out);

#endif
