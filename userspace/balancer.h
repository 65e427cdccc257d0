/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * balancer: endpoint choice for one service.
 *
 * Round-robin is smooth weighted round-robin (nginx): each pick adds every
 * endpoint's weight to its current score, takes the highest, and subtracts
 * the total from it. Weights 3:1 give A A B A, A A B A... with no bursts.
 * "ewma" is power of two choices over peak-EWMA cost (Finagle, linkerd2-proxy):
 * two distinct random candidates, the one with the lower
 * ewma_latency * (active + 1) / weight wins. An endpoint without a sample yet
 * costs 0, so new endpoints are tried at once.
 * "least-conn" takes the lowest active / weight, ties broken by rotation.
 * Every mode excludes endpoints already tried for the same connection.
 */
#ifndef WEFT_BALANCER_H
#define WEFT_BALANCER_H

#include <stddef.h>
#include <stdint.h>

struct bal_endpoint {
	uint32_t weight;  /* >= 1 */
	int64_t current;  /* smooth WRR score */
	uint32_t active;  /* open connections */
	uint64_t total;   /* connections ever picked */
	uint64_t failures;/* connect failures */
	double ewma_us;   /* peak-EWMA of connect latency, microseconds */
	double ewma_at;   /* when ewma_us was last updated, seconds */
};

/* Decay time of the peak-EWMA, seconds (Finagle and linkerd2-proxy use 10 s). */
#define BAL_EWMA_DECAY_S 10.0

/*
 * Feeds one latency sample (usec) observed at time now (seconds): a sample
 * above the average replaces it at once (peak), lower ones decay into it.
 */
void bal_observe(struct bal_endpoint *e, double sample_us, double now);

/*
 * The endpoints are owned by the caller (they outlive a config generation:
 * a reload keeps the state of endpoints that stay); the balancer holds an
 * array of pointers to them.
 */
enum bal_mode { BAL_EWMA = 0, BAL_ROUND_ROBIN, BAL_LEAST_CONN };

struct bal {
	struct bal_endpoint **eps;
	size_t n;
	enum bal_mode mode;
	uint64_t rng;     /* xorshift64 state for P2C */
	size_t rotate;    /* least-conn tie breaker */
};

/* Allocates room for n endpoint pointers, all NULL; the caller fills them. 0 or -ENOMEM. */
int bal_init(struct bal *b, size_t n, enum bal_mode mode);
void bal_free(struct bal *b);

/*
 * Picks an endpoint index not set in tried (a bitmask of the first 64
 * endpoints; endpoints beyond 64 are never excluded). Returns the index, or
 * -ENOENT when there is none left. O(n).
 */
int bal_pick(struct bal *b, uint64_t tried);

#endif
