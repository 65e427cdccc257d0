/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * balancer: endpoint choice and failure accrual for one service.
 *
 * Modes:
 * - "ewma" (default): power of two choices (P2C) over a moving average of
 *   response latency, the model of Finagle and linkerd2-proxy. A pick:
 *   1. draws x by weight, then y by weight among the other candidates (two
 *      distinct candidates);
 *   2. costs each: latency * (active / weight + 1), the latency its average
 *      (bal_observe) decayed towards 0 since its last sample, at least
 *      BAL_EWMA_FLOOR_US;
 *   3. gives it to y if y costs less than x / BAL_COST_TIE (2.25), else to x.
 *   An endpoint whose latency is unknown (no sample yet, or none for
 *   BAL_LAT_PROBE_S: 0.25 s, doubling while its probes keep it out, up to
 *   BAL_EWMA_DECAY_S) costs the floor, so the next pick that draws it first
 *   is a latency probe; the probe's answer replaces its estimate, and until it
 *   comes the endpoint costs BAL_UNKNOWN_US (one probe in flight, no burst).
 *   What follows, and is tested (tests/unit/test_balancer.c, fake clock):
 *   - An endpoint clearly slower than all its peers loses every pair it is
 *     drawn into, so all it gets is its probes: one request per
 *     BAL_EWMA_DECAY_S once the back-off has grown. A 50x slower one of
 *     three gets 0.001-0.01% of the picks (one at a time, or 8 in flight).
 *     The old rule drew with replacement and let each of two candidates win
 *     in inverse proportion to its cost: the slow one won whenever drawn
 *     twice (1/9) and 2% of its mixed pairs, 11.4% in all.
 *   - Equal endpoints share by weight: x alone is drawn by weight and keeps
 *     the pick unless y is clearly cheaper; a slow endpoint's share goes to
 *     the others in proportion to their weights. Load counts per unit of
 *     weight, so this holds with requests in flight too (3:1 comes out
 *     between 73:27 and 77:23 from 1 to 16 in flight). The band is what
 *     lets weights through: a strict "cheaper wins" would let a 10% latency
 *     difference, or one request in flight against none, decide every pick.
 *     It sits above 2 because that ratio is the commonest load step (an idle
 *     weight-1 endpoint against one with a request in flight).
 *   - An endpoint that recovers gets its share back within BAL_EWMA_DECAY_S
 *     (its next probe), at once when the back-off is short.
 *   - A new endpoint takes one request before its first answer says how fast
 *     it is (Finagle's penalty for pending requests on an endpoint with no
 *     estimate; linkerd2-proxy starts it at a default latency instead).
 * - "round-robin": smooth weighted round-robin (nginx): each pick adds every
 *   candidate's weight to its score, takes the highest and subtracts the total
 *   from it. Weights 3:1 give A A B A, never bursts.
 * - "least-conn": lowest active / weight, ties by smooth weighted round-robin.
 * Every mode skips endpoints already tried for the same connection.
 *
 * Locality (state/locality.h): with tiers set (bal_set_tiers: priorities,
 * and the node's zone), each pick first draws a tier by its load (Envoy's
 * priority loads with overprovisioning), then the mode picks within it.
 *
 * Failure accrual (outlier ejection), Linkerd 1 style: `consecutive_failures`
 * failed connects in a row eject an endpoint for a jittered exponential
 * back-off (base doubling up to max). When the back-off has passed, the next
 * pick sends exactly one probe connection to it: success readmits it (and
 * resets the back-off), failure ejects it again for twice as long. An
 * ejection that would leave more than max_ejection_percent of the endpoints
 * ejected does not happen. If no candidate is ready at all, the pick falls
 * back to every endpoint (panic mode) rather than fail the connection.
 *
 * Time is passed in (seconds, monotonic) so the state machine is testable
 * with a fake clock. Costs are O(n) per pick; n is endpoints of one service.
 * It may call: state/locality, libc.
 */
#ifndef WEFT_BALANCER_H
#define WEFT_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bal_state { BAL_READY = 0, BAL_EJECTED, BAL_PROBING };

struct bal_endpoint {
	uint32_t weight;      /* >= 1 (0 counts as 1) */
	int64_t current;      /* smooth WRR score */
	uint32_t active;      /* open connections (the caller maintains it) */
	uint64_t total;       /* times picked */
	uint64_t failures;    /* failed connects */
	double ewma_us;       /* moving average of response latency, microseconds */
	double ewma_at;       /* when ewma_us was last updated, seconds (0: never) */
	double lat_probe_at;  /* last latency probe (a pick while the latency was unknown), seconds */
	uint32_t lat_probes;  /* latency probes since it was last picked on its estimate */
	uint32_t lat_samples; /* samples averaged in ewma_us since it was last replaced */
	enum bal_state state;
	uint32_t consecutive;   /* failed connects in a row */
	uint32_t backoff_level; /* ejections since the last successful probe */
	double ejected_until;   /* EJECTED: probe allowed from then on */
	double probe_deadline;  /* PROBING: give up waiting for the probe's result then */
	uint64_t ejections;     /* times ejected */
};

/*
 * Time constant of the latency average, seconds (Finagle and linkerd2-proxy
 * use 10 s): between samples an estimate decays by e in this time; it is
 * also the longest a starved endpoint waits for its next latency probe.
 */
#define BAL_EWMA_DECAY_S 10.0
/*
 * The least weight one sample has in the average: it spans about the last
 * 100 answers (fewer when they are far apart in time). Small enough that one
 * outlier does not starve an endpoint (a 20x answer moves its estimate by a
 * fifth), large enough that an endpoint turning 50x slower is past the tie
 * band at its third answer; a new or stale one is judged on its first.
 */
#define BAL_EWMA_ALPHA 0.01
/*
 * An estimate not refreshed for this long is stale, and the endpoint is
 * probed; doubled for each probe in a row that did not bring it back (the
 * first after one that answered twice as fast as before restarts at this),
 * up to BAL_EWMA_DECAY_S.
 */
#define BAL_LAT_PROBE_S 0.25
/* Latencies below this are treated as equal (noise on a LAN or loopback). */
#define BAL_EWMA_FLOOR_US 500.0
/* Of two candidates, the second wins only when it costs less than the first over this. */
#define BAL_COST_TIE 2.25
/* Latency assumed for an endpoint whose latency probe has not answered yet (1000 s). */
#define BAL_UNKNOWN_US 1e9
/* A probe whose result never came (connection aborted) frees the slot after this. */
#define BAL_PROBE_TIMEOUT_S 30.0

/*
 * Feeds one latency sample (usec) observed at time now (seconds). The first,
 * and the answer to a latency probe (or any sample while the estimate is
 * stale), replaces the estimate; later ones are averaged in with weight
 * max(1/k for the k-th since then, 1 - (1 - BAL_EWMA_ALPHA) e^(-dt /
 * BAL_EWMA_DECAY_S)), dt the time since the previous sample.
 */
void bal_observe(struct bal_endpoint *e, double sample_us, double now);

enum bal_mode { BAL_EWMA = 0, BAL_ROUND_ROBIN, BAL_LEAST_CONN };

struct bal_breaker {
	uint32_t consecutive_failures; /* 0: never eject */
	double base_ejection_s;        /* first ejection, before jitter */
	double max_ejection_s;         /* cap of the doubling */
	uint32_t max_ejection_percent; /* 0..100 */
};

/*
 * The endpoints are owned by the caller (they outlive a config generation:
 * a reload keeps the state of endpoints that stay); the balancer holds an
 * array of pointers to them.
 */
struct bal {
	struct bal_endpoint **eps;
	size_t n;
	enum bal_mode mode;
	struct bal_breaker brk;
	uint64_t rng;    /* xorshift64 state: P2C and jitter */
	size_t rotate;   /* least-conn tie breaker */
	uint64_t panics; /* picks made in panic mode */
	/* locality (state/locality.h): per endpoint its tier, or NULL when all share one */
	uint8_t *tier;
	size_t n_tiers;
	uint32_t overprov_pct; /* failover.overprovisioning, in percent (140) */
};

/* Allocates room for n endpoint pointers, all NULL; the caller fills them. 0 or -ENOMEM. */
int bal_init(struct bal *b, size_t n, enum bal_mode mode, const struct bal_breaker *brk);
void bal_free(struct bal *b);
/*
 * Sets each endpoint's locality tier (tier[0..n), copied; loc_tiers makes
 * them) and the overprovisioning factor in percent. Fewer than 2 tiers:
 * none (every endpoint in one). 0 or -ENOMEM (then none).
 */
int bal_set_tiers(struct bal *b, const uint8_t *tier, size_t n_tiers, uint32_t overprov_pct);

/*
 * Picks an endpoint index not set in tried (a bitmask over the first 64
 * endpoints; endpoints beyond 64 are never excluded, so a retry may reuse
 * one). A due probe is returned first (and marked PROBING). Returns the
 * index, or -ENOENT when nothing is left to try.
 */
int bal_pick(struct bal *b, uint64_t tried, double now);

enum bal_event { BAL_EV_NONE = 0, BAL_EV_EJECTED, BAL_EV_READMITTED, BAL_EV_SPARED };

/*
 * Reports the outcome of a connect to endpoint i. Returns what changed:
 * EJECTED (ejected, or ejected again after a failed probe), READMITTED (probe
 * succeeded), SPARED (would have been ejected but max_ejection_percent holds).
 */
enum bal_event bal_report(struct bal *b, size_t i, bool ok, double now);

/* Endpoints ejected or probing now. O(n). */
size_t bal_ejected(const struct bal *b);

#endif
