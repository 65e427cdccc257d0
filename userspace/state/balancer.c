// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "state/balancer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int bal_init(struct bal *b, size_t n, enum bal_mode mode, const struct bal_breaker *brk)
{
	static uint64_t seed = 0x9e3779b97f4a7c15ull;

	b->mode = mode;
	b->rotate = 0;
	b->panics = 0;
	if (brk)
		b->brk = *brk;
	else
		b->brk = (struct bal_breaker){ 0 };
	seed += 0x9e3779b97f4a7c15ull; /* distinct streams per balancer, deterministic for tests */
	b->rng = seed;
	b->n = n;
	b->eps = NULL;
	if (!n)
		return 0;
	b->eps = calloc(n, sizeof(*b->eps));
	if (!b->eps) {
		b->n = 0;
		return -ENOMEM;
	}
	return 0;
}

void bal_free(struct bal *b)
{
	free(b->eps);
	b->eps = NULL;
	b->n = 0;
}

static uint64_t bal_rand(struct bal *b)
{
	uint64_t x = b->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	return x;
}

static bool tried_has(uint64_t tried, size_t i)
{
	return i < 64 && (tried >> i) & 1;
}

static uint32_t weight_of(const struct bal_endpoint *e)
{
	return e->weight ? e->weight : 1;
}

/*
 * Latency below the floor is noise, not quality: sub-millisecond endpoints
 * compete on load alone, and exact ties are common, which is what lets weights
 * show through (see pick_p2c). The estimate decays while it is not refreshed
 * (linkerd2-proxy does the same), so an endpoint starved after a slow spell
 * gets picked again and can prove it recovered.
 */
static double bal_cost(const struct bal_endpoint *e, double now)
{
	double lat = e->ewma_us;

	if (e->ewma_at > 0 && now > e->ewma_at)
		lat *= exp(-(now - e->ewma_at) / BAL_EWMA_DECAY_S);
	if (lat < BAL_EWMA_FLOOR_US)
		lat = BAL_EWMA_FLOOR_US;
	return lat * (double)(e->active + 1);
}

/* Candidate set for one pick: untried, and ready unless in panic. */
struct cands {
	uint64_t tried;
	bool panic;
};

static bool cand_ok(const struct bal *b, const struct cands *c, size_t i)
{
	if (tried_has(c->tried, i))
		return false;
	return c->panic || b->eps[i]->state == BAL_READY;
}

/* One candidate drawn with probability proportional to its weight. O(n). */
static int draw_weighted(struct bal *b, const struct cands *c, uint64_t total)
{
	uint64_t r = bal_rand(b) % total;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (!cand_ok(b, c, i))
			continue;
		if (r < weight_of(b->eps[i]))
			return (int)i;
		r -= weight_of(b->eps[i]);
	}
	return -ENOENT;
}

/*
 * P2C, weighted: two candidates drawn by weight (with replacement); of two
 * different ones, each wins in inverse proportion to its cost. For endpoints
 * of equal cost this sends exactly weight_i / sum(weights) of the picks to
 * each (P(i) = p_i^2 + sum_j p_i p_j), and costs a few percent apart bend that
 * only a little, so weights hold on a noisy LAN; a slow or loaded endpoint
 * wins mostly when drawn twice, so with three equal endpoints a 50x slower
 * one keeps about 1/9 of new connections, enough to see it recover.
 * Deterministic "lower cost always wins" (Finagle) would let a 10% latency
 * difference override a 3:1 weight; this keeps both meanings.
 */
static int pick_p2c(struct bal *b, const struct cands *c, double now)
{
	uint64_t total = 0;
	double cx, cy;
	size_t i;
	int x, y;

	for (i = 0; i < b->n; i++)
		if (cand_ok(b, c, i))
			total += weight_of(b->eps[i]);
	if (!total)
		return -ENOENT;
	x = draw_weighted(b, c, total);
	y = draw_weighted(b, c, total);
	if (x == y)
		return x;
	cx = bal_cost(b->eps[x], now);
	cy = bal_cost(b->eps[y], now);
	/* x wins with probability cy / (cx + cy): 50x slower loses 98% of the time */
	return (double)(bal_rand(b) >> 11) / (double)(1ull << 53) * (cx + cy) < cy ? x : y;
}

/* Lowest active / weight; ties go by smooth weighted round-robin among the tied. */
static int pick_least(struct bal *b, const struct cands *c)
{
	double best_load = -1, load;
	int64_t total = 0;
	int best = -1;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (!cand_ok(b, c, i))
			continue;
		load = (double)b->eps[i]->active / (double)weight_of(b->eps[i]);
		if (best_load < 0 || load < best_load)
			best_load = load;
	}
	if (best_load < 0)
		return -ENOENT;
	for (i = 0; i < b->n; i++) {
		struct bal_endpoint *e = b->eps[i];

		if (!cand_ok(b, c, i) || (double)e->active / (double)weight_of(e) != best_load)
			continue;
		e->current += weight_of(e);
		total += weight_of(e);
		if (best < 0 || e->current > b->eps[best]->current)
			best = (int)i;
	}
	b->eps[best]->current -= total;
	return best;
}

static int pick_rr(struct bal *b, const struct cands *c)
{
	int64_t total = 0;
	int best = -1;
	size_t i;

	for (i = 0; i < b->n; i++) {
		struct bal_endpoint *e = b->eps[i];

		if (!cand_ok(b, c, i))
			continue;
		e->current += weight_of(e);
		total += weight_of(e);
		if (best < 0 || e->current > b->eps[best]->current)
			best = (int)i;
	}
	if (best < 0)
		return -ENOENT;
	b->eps[best]->current -= total;
	return best;
}

int bal_pick(struct bal *b, uint64_t tried, double now)
{
	struct cands c = { .tried = tried, .panic = false };
	size_t i;
	int r;

	/* a due probe goes first: one connection decides whether it is back */
	for (i = 0; i < b->n; i++) {
		struct bal_endpoint *e = b->eps[i];

		if (tried_has(tried, i))
			continue;
		if ((e->state == BAL_EJECTED && now >= e->ejected_until) ||
		    (e->state == BAL_PROBING && now >= e->probe_deadline)) {
			e->state = BAL_PROBING;
			e->probe_deadline = now + BAL_PROBE_TIMEOUT_S;
			e->total++;
			return (int)i;
		}
	}
	for (;;) {
		switch (b->mode) {
		case BAL_ROUND_ROBIN:
			r = pick_rr(b, &c);
			break;
		case BAL_LEAST_CONN:
			r = pick_least(b, &c);
			break;
		default:
			r = pick_p2c(b, &c, now);
			break;
		}
		if (r >= 0 || c.panic)
			break;
		/* nothing ready: balance over everything rather than fail */
		c.panic = true;
		for (i = 0; i < b->n && tried_has(tried, i); i++)
			;
		if (i == b->n && b->n <= 64)
			break;
		b->panics++;
	}
	if (r >= 0)
		b->eps[r]->total++;
	return r;
}

size_t bal_ejected(const struct bal *b)
{
	size_t i, n = 0;

	for (i = 0; i < b->n; i++)
		n += b->eps[i]->state != BAL_READY;
	return n;
}

/* min(max, base * 2^(level-1)), times a jitter in [0.75, 1.25) so ejections do not synchronise */
static double backoff(struct bal *b, uint32_t level)
{
	double d = b->brk.base_ejection_s;
	uint32_t k;

	for (k = 1; k < level && d < b->brk.max_ejection_s; k++)
		d *= 2;
	if (d > b->brk.max_ejection_s)
		d = b->brk.max_ejection_s;
	return d * (0.75 + 0.5 * (double)(bal_rand(b) >> 11) / (double)(1ull << 53));
}

/* fresh: a new ejection (counted); else a failed probe extending the current one */
static void eject(struct bal *b, struct bal_endpoint *e, double now, bool fresh)
{
	e->state = BAL_EJECTED;
	e->backoff_level++;
	if (fresh)
		e->ejections++;
	e->ejected_until = now + backoff(b, e->backoff_level);
}

enum bal_event bal_report(struct bal *b, size_t i, bool ok, double now)
{
	struct bal_endpoint *e;

	if (i >= b->n)
		return BAL_EV_NONE;
	e = b->eps[i];
	if (ok) {
		e->consecutive = 0;
		if (e->state == BAL_READY)
			return BAL_EV_NONE;
		/* a probe (or a panic-mode pick) got through: back in, back-off reset */
		e->state = BAL_READY;
		e->backoff_level = 0;
		return BAL_EV_READMITTED;
	}
	e->failures++;
	e->consecutive++;
	if (e->state == BAL_PROBING || e->state == BAL_EJECTED) {
		eject(b, e, now, false); /* failed probe (or panic pick): out again, for longer */
		return BAL_EV_EJECTED;
	}
	if (!b->brk.consecutive_failures || e->consecutive < b->brk.consecutive_failures)
		return BAL_EV_NONE;
	if ((bal_ejected(b) + 1) * 100 > (size_t)b->brk.max_ejection_percent * b->n)
		return BAL_EV_SPARED;
	eject(b, e, now, true);
	return BAL_EV_EJECTED;
}

void bal_observe(struct bal_endpoint *e, double sample_us, double now)
{
	double w;

	if (e->ewma_at == 0 || sample_us > e->ewma_us) {
		e->ewma_us = sample_us;
	} else {
		w = exp(-(now - e->ewma_at) / BAL_EWMA_DECAY_S);
		e->ewma_us = e->ewma_us * w + sample_us * (1.0 - w);
	}
	e->ewma_at = now;
}
