/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * retry: the retry budget and back-off of one HTTP service (Linkerd/Finagle
 * style), so retries never multiply an outage.
 *
 * Budget: over a sliding window of window_s seconds (1-second buckets), the
 * retries made may not exceed ratio * requests + min_per_s * window_s, where
 * requests are original requests (not retries). retry_budget_try() answers
 * and, when it allows, counts the retry. Time is passed in (seconds,
 * monotonic) so tests can use a fake clock. O(window_s) per call at worst
 * (bucket roll-over), O(1) usually. Not thread-safe: the caller locks.
 *
 * Back-off: "full jitter" exponential (AWS architecture blog): attempt n
 * (1 = the first retry) waits uniform [0, min(max, base * 2^(n-1))] ms.
 * It may call: libc only.
 */
#ifndef WEFT_RETRY_H
#define WEFT_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#define RETRY_MAX_WINDOW_S 60

struct retry_budget {
	double ratio;       /* retries allowed per request */
	uint32_t min_per_s; /* retries allowed per second regardless */
	uint32_t window_s;  /* 1..RETRY_MAX_WINDOW_S */
	int64_t cur;        /* the second the newest bucket is for */
	uint64_t reqs[RETRY_MAX_WINDOW_S];
	uint64_t retries[RETRY_MAX_WINDOW_S];
	uint64_t sum_reqs, sum_retries; /* over the window */
	uint64_t exhausted;             /* retries refused, ever */
};

/* window_s is clamped to 1..RETRY_MAX_WINDOW_S, ratio to >= 0. */
void retry_budget_init(struct retry_budget *b, double ratio, uint32_t min_per_s, uint32_t window_s);
/* Counts one original request at now. */
void retry_budget_request(struct retry_budget *b, double now);
/* May a retry be made at now? If so it is counted; if not, exhausted++. */
bool retry_budget_try(struct retry_budget *b, double now);
/* Retries still allowed at now (for /services and tests); may be 0. */
uint64_t retry_budget_available(struct retry_budget *b, double now);

/* Full-jitter back-off in ms before retry number attempt (>= 1); *rng is xorshift64 state (non-zero). */
uint32_t retry_backoff_ms(uint32_t base_ms, uint32_t max_ms, unsigned attempt, uint64_t *rng);

#endif
