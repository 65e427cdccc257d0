// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "balancer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

int bal_init(struct bal *b, size_t n)
{
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

int bal_pick(struct bal *b, uint64_t tried)
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
