/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * balancer: endpoint choice and failure accrual for one service.
 *
 * Modes:
 * - "ewma" (default): power of two choices over peak-EWMA cost (Finagle,
 *   linkerd2-proxy): two candidates drawn by weight; cost is
 *   max(latency, floor) * (active + 1) and each of the two wins in inverse
 *   proportion to its cost. Equal endpoints get traffic in proportion to
 *   their weights; slow or loaded ones lose most draws.
 * - "round-robin": smooth weighted round-robin (nginx): each pick adds every
 *   candidate's weight to its score, takes the highest and subtracts the total
 *   from it. Weights 3:1 give A A B A, never bursts.
 * - "least-conn": lowest active / weight, ties by smooth weighted round-robin.
 * Every mode skips endpoints already tried for the same connection.
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
 * It may call: libc only.
 */
#ifndef WEFT_BALANCER_H
#define WEFT_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bal_state { BAL_READY = 0, BAL_EJECTED, BAL_PROBING };

struct bal_endpoint {
	uint32_t weight;   /* >= 1 (0 counts as 1) */
	int64_t current;   /* smooth WRR score */
	uint32_t active;   /* open connections (the caller maintains it) */
	uint64_t total;    /* times picked */
	uint64_t failures; /* failed connects */
	double ewma_us;    /* peak-EWMA of connect latency, microseconds */
	double ewma_at;    /* when ewma_us was last updated, seconds */
	enum bal_state state;
	uint32_t consecutive;   /* failed connects in a row */
	uint32_t backoff_level; /* ejections since the last successful probe */
	double ejected_until;   /* EJECTED: probe allowed from then on */
	double probe_deadline;  /* PROBING: give up waiting for the probe's result then */
	uint64_t ejections;     /* times ejected */
};

/* Decay time of the peak-EWMA, seconds (Finagle and linkerd2-proxy use 10 s). */
#define BAL_EWMA_DECAY_S 10.0
/* Latencies below this are treated as equal (noise on a LAN or loopback). */
#define BAL_EWMA_FLOOR_US 500.0
/* A probe whose result never came (connection aborted) frees the slot after this. */
#define BAL_PROBE_TIMEOUT_S 30.0

/*
 * Feeds one latency sample (usec) observed at time now (seconds): a sample
 * above the average replaces it at once (peak), lower ones decay into it.
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
};

/* Allocates room for n endpoint pointers, all NULL; the caller fills them. 0 or -ENOMEM. */
int bal_init(struct bal *b, size_t n, enum bal_mode mode, const struct bal_breaker *brk);
void bal_free(struct bal *b);

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
