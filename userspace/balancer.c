// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "balancer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int bal_init(struct bal *b, size_t n, enum bal_mode mode)
{
	static uint64_t seed = 0x9e3779b97f4a7c15ull;

	b->mode = mode;
	b->rotate = 0;
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

static int tried_has(uint64_t tried, size_t i)
{
	return i < 64 && (tried >> i) & 1;
}

static int bal_pick_rr(struct bal *b, uint64_t tried);

static uint64_t bal_rand(struct bal *b)
{
	uint64_t x = b->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	return x;
}

static double bal_cost(const struct bal_endpoint *e)
{
	return e->ewma_us * (double)(e->active + 1) / (double)(e->weight ? e->weight : 1);
}

/* P2C: two distinct random untried candidates, lower cost wins. O(n) to list candidates. */
static int bal_pick_p2c(struct bal *b, uint64_t tried)
{
	size_t cand[64], nc = 0, i, x, y;
	double cx, cy;

	for (i = 0; i < b->n && nc < 64; i++)
		if (!tried_has(tried, i))
			cand[nc++] = i;
	if (!nc)
		return -ENOENT;
	if (nc == 1)
		return (int)cand[0];
	x = (size_t)(bal_rand(b) % nc);
	y = (size_t)(bal_rand(b) % (nc - 1));
	if (y >= x)
		y++;
	cx = bal_cost(b->eps[cand[x]]);
	cy = bal_cost(b->eps[cand[y]]);
	if (cx == cy) /* weights still matter when costs tie (e.g. no samples yet) */
		return b->eps[cand[x]]->weight >= b->eps[cand[y]]->weight ? (int)cand[x] : (int)cand[y];
	return cx < cy ? (int)cand[x] : (int)cand[y];
}

static int bal_pick_least(struct bal *b, uint64_t tried)
{
	double best_load = 0, load;
	int best = -1;
	size_t k, i;

	for (k = 0; k < b->n; k++) {
		i = (b->rotate + k) % b->n;
		if (tried_has(tried, i))
			continue;
		load = (double)b->eps[i]->active / (double)(b->eps[i]->weight ? b->eps[i]->weight : 1);
		if (best < 0 || load < best_load) {
			best = (int)i;
			best_load = load;
		}
	}
	b->rotate++;
	return best < 0 ? -ENOENT : best;
}

int bal_pick(struct bal *b, uint64_t tried)
{
	int r;

	if (b->mode == BAL_EWMA || b->mode == BAL_LEAST_CONN) {
		r = b->mode == BAL_EWMA ? bal_pick_p2c(b, tried) : bal_pick_least(b, tried);
		if (r >= 0)
			b->eps[r]->total++;
		return r;
	}
	return bal_pick_rr(b, tried);
}

static int bal_pick_rr(struct bal *b, uint64_t tried)
{
	int64_t total = 0;
	int best = -1;
	size_t i;

	for (i = 0; i < b->n; i++) {
		struct bal_endpoint *e = b->eps[i];

		if (tried_has(tried, i))
			continue;
		e->current += e->weight ? e->weight : 1;
		total += e->weight ? e->weight : 1;
		if (best < 0 || e->current > b->eps[best]->current)
			best = (int)i;
	}
	if (best < 0)
		return -ENOENT;
	b->eps[best]->current -= total;
	b->eps[best]->total++;
	return best;
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
