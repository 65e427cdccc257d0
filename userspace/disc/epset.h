/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * epset: endpoint sets of discovery sources (DNS, files), the pure part of
 * disc/: a DNS answer made into endpoints, sets put in one order so that a
 * refresh can tell whether anything changed, and the status every source
 * keeps for /services and the metrics.
 *
 * A set is an array of struct ep_entry (codec/epfile.h) sorted by address
 * with each address once. DNS answers become endpoints as SRV says (RFC
 * 2782): each SRV record's target, at the record's port, with its priority
 * and its weight (clamped to 1..EP_WEIGHT_MAX: SRV's 0, "rarely", is 1; more
 * than 1000 is 1000). A plain name is one pseudo-record: the name itself, at
 * the configured port, weight and priority. An address reached by two
 * records keeps the lower priority and, at that priority, the larger weight.
 *
 * Pure: no I/O. O(n log n) in endpoints.
 * It may call: codec/epfile (its endpoint type), lib/addr.
 */
#ifndef WEFT_EPSET_H
#define WEFT_EPSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/epfile.h"
#include "lib/addr.h"

/* One record to resolve: an SRV record, or a plain name's pseudo-record. */
struct epset_rec {
	const char *target; /* the name whose addresses serve it */
	uint16_t port;
	uint32_t priority, weight; /* weight clamped to 1..EP_WEIGHT_MAX when merged */
};

/* The addresses a name has (port 0; A and AAAA answers may come as two of these). */
struct epset_addrs {
	const char *name;
	const struct weft_sockaddr *addrs;
	size_t n;
};

/*
 * The endpoints of recs given each target's addresses (names compare
 * case-insensitively; a target with no addresses gives nothing), all in
 * zone (NULL: none). *out is a sorted set (malloc'd, NULL when empty) of at
 * most EPFILE_MAX_ENDPOINTS (*dropped counts the rest). 0 or -ENOMEM.
 */
int epset_merge(const struct epset_rec *recs, size_t n_recs, const struct epset_addrs *ans, size_t n_ans,
		const char *zone, struct ep_entry **out, size_t *n, size_t *dropped);

/*
 * Puts e[0..n) in set order (by address) with each address once (the rule
 * above for duplicates); returns the new count. O(n log n).
 */
size_t epset_normalize(struct ep_entry *e, size_t n);

/* Same endpoints with the same weight, priority and zone (both sets normalized). */
bool epset_equal(const struct ep_entry *a, size_t na, const struct ep_entry *b, size_t nb);

/* Counts of one source's refreshes, by how they ended (metric label "result"). */
enum disc_result {
	DISC_OK,     /* an answer or a file read with endpoints */
	DISC_EMPTY,  /* no endpoint (NXDOMAIN, no record, an empty file): the last set kept */
	DISC_FAILED, /* an error (SERVFAIL, timeout, unreadable or malformed file): the last set kept */
	DISC__RESULTS
};
extern const char *const disc_result_names[DISC__RESULTS];

/* What a source says about itself (/services, metrics). Times are ev_now() of the main loop, 0: never. */
struct disc_status {
	uint64_t refreshes[DISC__RESULTS];
	uint64_t changes;    /* times the set in force changed */
	double last_refresh; /* when the last refresh ended */
	double last_ok;      /* ... the last one with endpoints */
	double last_change;
	double next_refresh; /* DNS: when the next query goes (0: in flight, or a file) */
	uint32_t ttl;        /* DNS: the least TTL of the last answer, seconds */
	enum disc_result last_result;
	bool kept;            /* the set in force is older than the last refresh (it failed or was empty) */
	char last_error[320]; /* of the last refresh that was not ok ("" never) */
};

/*
 * A refresh ended: counts it, stamps it, keeps err (when not ok). changed:
 * the set in force was replaced.
 */
void disc_status_note(struct disc_status *st, enum disc_result r, bool changed, const char *err, double now);

#endif
