/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * locality: which endpoints of a service a pick may use, by priority and
 * zone. Envoy's model of priority levels with overprovisioning, with the
 * node's own zone as one more level of preference:
 *
 * - Endpoints fall into tiers, in order of preference: priority 0 in the
 *   local zone (agent.zone), priority 0 elsewhere (other zones, or no zone),
 *   priority 1 local, priority 1 elsewhere, ... Priorities are ranked (the
 *   distinct values, lowest first: 0, 10, 20 are three levels), at most
 *   LOC_MAX_LEVELS of them (more share the last). Without agent.zone every
 *   endpoint counts as local, so priorities alone decide.
 * - A tier's health is min(100%, overprovisioning x ready / endpoints):
 *   with the default 1.4 a tier whose ready share is at least 1/1.4 (72%)
 *   is fully healthy.
 * - Loads, as Envoy computes priority loads: tier 0 takes its health, the
 *   next tier what is left up to its own health, and so on; when the
 *   healths add up to less than 100%, each tier takes its share of their
 *   sum instead (so traffic still goes to whatever is ready). With none
 *   ready anywhere the balancer's panic mode uses every endpoint.
 *   E.g. 3 local endpoints, 3 in another zone, all ready: 100% local. One
 *   local one ejected: 2/3 x 1.4 = 93% local, 7% spills over. Two: 46% / 54%.
 *   All three: 0% / 100%. As they come back, traffic returns the same way.
 *
 * The balancer draws a tier by load for each pick (a TCP connection, an
 * HTTP request), then picks within it; a tier with nothing left to try (a
 * retry) gives way to the others in order of preference.
 *
 * Pure: integer percentages as Envoy's, so results are exact and testable.
 * O(endpoints) per call.
 * It may call: libc only.
 */
#ifndef WEFT_LOCALITY_H
#define WEFT_LOCALITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOC_MAX_LEVELS 8
#define LOC_MAX_TIERS (2 * LOC_MAX_LEVELS)
#define LOC_OVERPROVISIONING_PCT 140 /* Envoy's default overprovisioning factor, 1.4 */

struct loc_tier {
	uint32_t priority; /* the endpoints' priority value */
	bool local;        /* in agent.zone (or no agent.zone) */
};

/*
 * Tiers of n endpoints from their priorities and whether each is local:
 * tier[i] for each endpoint, info[] per tier (LOC_MAX_TIERS entries), the
 * number of tiers (2 x levels; some may hold no endpoint). O(n x levels).
 */
size_t loc_tiers(const uint32_t *priority, const bool *local, size_t n, uint8_t *tier, struct loc_tier *info);

struct loc_plan {
	size_t n_tiers;
	uint32_t total[LOC_MAX_TIERS], ready[LOC_MAX_TIERS];
	uint32_t health[LOC_MAX_TIERS]; /* percent */
	uint32_t load[LOC_MAX_TIERS];   /* percent of picks; they add up to 100, or all 0 in panic */
	bool panic;                     /* nothing ready in any tier */
};

/* Loads from per-tier counts already in p (n_tiers, total, ready); overprov in percent (>= 100). */
void loc_loads(struct loc_plan *p, uint32_t overprov_pct);

/* The same from per-endpoint tiers and readiness. */
void loc_plan(const uint8_t *tier, const bool *ready, size_t n, size_t n_tiers, uint32_t overprov_pct,
	      struct loc_plan *p);

/* The tier for a draw r in [0, 100) (the first with load when r is out of range); -1 in panic. */
int loc_draw(const struct loc_plan *p, uint32_t r);

/*
 * One line for people: where traffic goes and why, e.g. "46% to zone a
 * (local, priority 0): 1/3 ready x 1.4 = 46% healthy; 54% to other zones
 * (priority 0): 3/3 ready". local_zone may be NULL (no agent.zone). Returns
 * buf.
 */
char *loc_explain(const struct loc_plan *p, const struct loc_tier *info, const char *local_zone, uint32_t overprov_pct,
		  char *buf, size_t len);

#endif
