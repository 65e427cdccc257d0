/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dnsdisc: a service's endpoints from DNS (`endpoints_from = { dns = NAME;
 * port = N; }` or `{ dns_srv = NAME; }`), resolved with c-ares on weftd's
 * main libev loop: c-ares' sockets are watched with ev_io and its timeouts
 * with one ev_timer, so nothing ever blocks on DNS. c-ares moves the bytes
 * (UDP, TCP when an answer is truncated, agent.dns_timeout_ms per try,
 * DNSDISC_TRIES tries per server, the next server on SERVFAIL or REFUSED);
 * codec/dnsmsg reads the answers, with their TTLs.
 *
 * One refresh of a source: for `dns`, an A and/or an AAAA query (family);
 * for `dns_srv`, an SRV query, then A and/or AAAA queries for each distinct
 * target (at most DNSDISC_MAX_TARGETS). Each query keeps its last good
 * answer: one that fails (SERVFAIL, a timeout, a malformed answer) is
 * replaced by that, while a definite answer (records, NXDOMAIN, no record
 * of the type) replaces it. The endpoints (disc/epset) are then:
 * - not empty: they are the set in force (changed() when they differ);
 *   the refresh counts as "success", or "failure" when a query failed;
 * - empty: the set in force stays (an empty answer is far more often a
 *   mistake or an outage than a decision to drain a service; remove the
 *   source to do that), counted "empty" (or "failure"), with a warning.
 * The next refresh comes after the least TTL of the answers used, held
 * between refresh_min_ms and refresh_max_ms; after a refresh that was not a
 * success, after refresh_min_ms doubling per such refresh in a row, at most
 * min(refresh_max_ms, DNSDISC_FAIL_MAX_MS).
 *
 * Main loop only. c-ares' sockets carry agent.mark (weftd's own traffic is
 * never intercepted).
 * It may call: disc/epset, codec/dnsmsg, config/ (types), lib/, c-ares, libev.
 */
#ifndef WEFT_DNSDISC_H
#define WEFT_DNSDISC_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/epfile.h"
#include "config/config.h"
#include "disc/epset.h"

#define DNSDISC_TRIES 2
#define DNSDISC_MAX_TARGETS 64
#define DNSDISC_FAIL_MAX_MS 30000

struct dnsdisc;
struct dns_src;

/* The resolver (no channel until dnsdisc_set_servers). mark: SO_MARK of its sockets. 0 or -ENOMEM. */
int dnsdisc_new(struct ev_loop *loop, uint32_t mark, struct dnsdisc **out);
/* Cancels every query and frees the resolver; sources must be freed first. */
void dnsdisc_free(struct dnsdisc *d);
/*
 * Servers to ask (n 0: those of /etc/resolv.conf, read now) and the
 * timeout of one try. A change restarts the queries in flight on the new
 * channel. 0, or -errno with err set (the old channel stays).
 */
int dnsdisc_set_servers(struct dnsdisc *d, const struct weft_sockaddr *servers, size_t n, uint32_t timeout_ms,
			char *err, size_t errlen);

/*
 * Starts following cfg (kind CFG_EP_DNS or CFG_EP_DNS_SRV; copied) for
 * service svc: the first query goes at once. changed(arg) when its set
 * changes. NULL: no memory.
 */
struct dns_src *dns_src_new(struct dnsdisc *d, const char *svc, const struct cfg_epsource *cfg,
			    void (*changed)(void *arg), void *arg);
/* New attributes of the same source (zone, weight, priority, family, refresh bounds); may call changed(). */
void dns_src_update(struct dns_src *s, const struct cfg_epsource *cfg);
void dns_src_free(struct dns_src *s);
/* The set in force (sorted; valid until the loop runs again). */
const struct ep_entry *dns_src_endpoints(const struct dns_src *s, size_t *n);
const struct disc_status *dns_src_status(const struct dns_src *s);

#endif
