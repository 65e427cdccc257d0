// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Retry budget (sliding window of 1-second buckets) and full-jitter back-off.
 * See retry.h for the contract.
 */
#include "state/retry.h"

#include <string.h>

/* No call has placed the window yet: the first call anchors it at its second. */
#define RETRY_CUR_NONE INT64_MIN

void retry_budget_init(struct retry_budget *b, double ratio, uint32_t min_per_s, uint32_t window_s)
{
	memset(b, 0, sizeof(*b));
	/* !(ratio >= 0) also catches NaN, which would make every comparison false */
	b->ratio = ratio >= 0 ? ratio : 0;
	b->min_per_s = min_per_s;
	if (window_s < 1)
		window_s = 1;
	if (window_s > RETRY_MAX_WINDOW_S)
		window_s = RETRY_MAX_WINDOW_S;
	b->window_s = window_s;
	b->cur = RETRY_CUR_NONE;
}

static int64_t retry_second(double now)
{
	/*
	 * Converting a double outside int64's range (or NaN) is undefined
	 * behaviour; a monotonic clock never gets there, but a bad caller must
	 * not crash us. NaN maps to 0.
	 */
	if (!(now >= 0))
		return 0;
	if (now >= 9.0e18)
		return (int64_t)9.0e18;
	return (int64_t)now; /* truncation is floor for now >= 0 (and needs no libm) */
}

static size_t retry_slot(const struct retry_budget *b, int64_t sec)
{
	return (size_t)(sec % (int64_t)b->window_s);
}

/*
 * Moves the window so that its newest bucket is the second of now, emptying
 * the buckets of the seconds that left it. A clock that goes backwards (only
 * a fake one can) keeps counting in the newest bucket rather than rewriting
 * history. O(window_s) at worst.
 */
static size_t retry_advance(struct retry_budget *b, double now)
{
	int64_t sec = retry_second(now), s;

	if (b->cur == RETRY_CUR_NONE) {
		b->cur = sec;
		return retry_slot(b, sec);
	}
	if (sec <= b->cur)
		return retry_slot(b, b->cur);
	if (sec - b->cur >= (int64_t)b->window_s) {
		memset(b->reqs, 0, sizeof(b->reqs));
		memset(b->retries, 0, sizeof(b->retries));
		b->sum_reqs = b->sum_retries = 0;
	} else {
		for (s = b->cur + 1; s <= sec; s++) {
			size_t i = retry_slot(b, s);

			b->sum_reqs -= b->reqs[i];
			b->sum_retries -= b->retries[i];
			b->reqs[i] = b->retries[i] = 0;
		}
	}
	b->cur = sec;
	return retry_slot(b, sec);
}

/*
 * ratio * requests + min_per_s * window_s, rounded down, saturating. The
 * epsilon keeps products like 0.29 * 100 (28.999999999999996 in binary
 * floating point) at the integer the operator wrote.
 */
static uint64_t retry_allowed(const struct retry_budget *b)
{
	/* no requests earn nothing, even at an infinite ratio (inf * 0 is NaN) */
	double r = b->sum_reqs ? b->ratio * (double)b->sum_reqs + 1e-9 : 0;
	uint64_t by_ratio, floor_allow;

	if (!(r < 18446744073709549568.0)) /* largest double below 2^64; also catches inf */
		return UINT64_MAX;
	by_ratio = (uint64_t)r;                             /* r >= 0: truncation rounds down */
	floor_allow = (uint64_t)b->min_per_s * b->window_s; /* <= 2^32 * 60: no overflow */
	if (by_ratio > UINT64_MAX - floor_allow)
		return UINT64_MAX;
	return by_ratio + floor_allow;
}

void retry_budget_request(struct retry_budget *b, double now)
{
	size_t i = retry_advance(b, now);

	b->reqs[i]++;
	b->sum_reqs++;
}

bool retry_budget_try(struct retry_budget *b, double now)
{
	size_t i = retry_advance(b, now);

	if (b->sum_retries >= retry_allowed(b)) {
		b->exhausted++;
		return false;
	}
	b->retries[i]++;
	b->sum_retries++;
	return true;
}

uint64_t retry_budget_available(struct retry_budget *b, double now)
{
	uint64_t allowed;

	retry_advance(b, now);
	allowed = retry_allowed(b);
	return allowed > b->sum_retries ? allowed - b->sum_retries : 0;
}

/* Marsaglia's xorshift64 (13, 7, 17): full period over the non-zero states. */
static uint64_t retry_xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	if (!x) /* zero is a fixed point: the contract says non-zero, but never get stuck */
		x = 0x9e3779b97f4a7c15ULL;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/*
 * Uniform in [0, min(max_ms, base_ms * 2^(attempt-1))]; attempt 0 is taken
 * as 1. The doubling is done in 64 bits and stops at the cap, so no attempt
 * number overflows. The modulo bias is below 2^-31 (ceiling < 2^32 against a
 * 64-bit draw): irrelevant for jitter.
 */
uint32_t retry_backoff_ms(uint32_t base_ms, uint32_t max_ms, unsigned attempt, uint64_t *rng)
{
	uint64_t ceil_ms = base_ms;
	unsigned n;

	if (!base_ms || !max_ms)
		return 0;
	for (n = 1; n < attempt && ceil_ms < max_ms; n++)
		ceil_ms <<= 1;
	if (ceil_ms > max_ms)
		ceil_ms = max_ms;
	return (uint32_t)(retry_xorshift64(rng) % (ceil_ms + 1));
}
