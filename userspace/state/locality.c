// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* locality: priority and zone tiers, Envoy's priority loads (locality.h). */
#include "state/locality.h"

#include <stdio.h>
#include <string.h>

size_t loc_tiers(const uint32_t *priority, const bool *local, size_t n, uint8_t *tier, struct loc_tier *info)
{
	uint32_t levels[LOC_MAX_LEVELS + 1];
	size_t nl = 0, i, j, k;

	/* the LOC_MAX_LEVELS lowest distinct priorities, sorted (insertion: few levels) */
	for (i = 0; i < n; i++) {
		for (j = 0; j < nl && levels[j] < priority[i]; j++)
			;
		if (j < nl && levels[j] == priority[i])
			continue;
		if (j == LOC_MAX_LEVELS)
			continue; /* beyond the last level: shares it */
		for (k = nl < LOC_MAX_LEVELS ? nl : LOC_MAX_LEVELS - 1; k > j; k--)
			levels[k] = levels[k - 1];
		levels[j] = priority[i];
		if (nl < LOC_MAX_LEVELS)
			nl++;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j + 1 < nl && levels[j] < priority[i]; j++)
			;
		tier[i] = (uint8_t)(2 * j + (local[i] ? 0 : 1));
	}
	for (j = 0; j < nl; j++) {
		info[2 * j] = (struct loc_tier){ .priority = levels[j], .local = true };
		info[2 * j + 1] = (struct loc_tier){ .priority = levels[j], .local = false };
	}
	return 2 * nl;
}

void loc_loads(struct loc_plan *p, uint32_t overprov_pct)
{
	uint32_t sum = 0, left = 100, given = 0;
	size_t i;

	for (i = 0; i < p->n_tiers; i++) {
		uint64_t h = p->total[i] ? (uint64_t)overprov_pct * p->ready[i] / p->total[i] : 0;

		p->health[i] = h > 100 ? 100 : (uint32_t)h;
		sum += p->health[i];
		p->load[i] = 0;
	}
	p->panic = sum == 0;
	if (p->panic)
		return;
	if (sum >= 100) {
		/* waterfall: each tier takes what is left, up to its health */
		for (i = 0; i < p->n_tiers && left; i++) {
			p->load[i] = p->health[i] < left ? p->health[i] : left;
			left -= p->load[i];
		}
		return;
	}
	/* less than 100% healthy in all: shares of the healthy total (the rounding to the best tier with any) */
	for (i = 0; i < p->n_tiers; i++) {
		p->load[i] = p->health[i] * 100 / sum;
		given += p->load[i];
	}
	for (i = 0; i < p->n_tiers && given < 100; i++)
		if (p->health[i]) {
			p->load[i] += 100 - given;
			given = 100;
		}
}

void loc_plan(const uint8_t *tier, const bool *ready, size_t n, size_t n_tiers, uint32_t overprov_pct,
	      struct loc_plan *p)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	p->n_tiers = n_tiers > LOC_MAX_TIERS ? LOC_MAX_TIERS : n_tiers;
	for (i = 0; i < n; i++) {
		if (tier[i] >= p->n_tiers)
			continue;
		p->total[tier[i]]++;
		p->ready[tier[i]] += ready[i];
	}
	loc_loads(p, overprov_pct);
}

int loc_draw(const struct loc_plan *p, uint32_t r)
{
	uint32_t acc = 0;
	size_t i;

	if (p->panic)
		return -1;
	for (i = 0; i < p->n_tiers; i++) {
		acc += p->load[i];
		if (r < acc)
			return (int)i;
	}
	for (i = 0; i < p->n_tiers; i++)
		if (p->load[i])
			return (int)i;
	return -1;
}

static const char *tier_name(const struct loc_tier *t, const char *local_zone, char *buf, size_t len)
{
	if (!local_zone)
		snprintf(buf, len, "priority %u", t->priority);
	else if (t->local)
		snprintf(buf, len, "zone %s (local, priority %u)", local_zone, t->priority);
	else
		snprintf(buf, len, "other zones (priority %u)", t->priority);
	return buf;
}

char *loc_explain(const struct loc_plan *p, const struct loc_tier *info, const char *local_zone, uint32_t overprov_pct,
		  char *buf, size_t len)
{
	size_t i, o = 0;
	char name[96];
	int w;

	buf[0] = '\0';
	if (p->panic) {
		snprintf(buf, len, "no endpoint is ready in any zone or priority: every endpoint is tried (panic)");
		return buf;
	}
	/* every tier with endpoints down to the first fully healthy one: nothing spills past it */
	for (i = 0; i < p->n_tiers && o < len; i++) {
		if (!p->total[i])
			continue;
		tier_name(&info[i], local_zone, name, sizeof(name));
		if (p->health[i] >= 100)
			w = snprintf(buf + o, len - o, "%s%u%% to %s: %u/%u ready", o ? "; " : "", p->load[i], name,
				     p->ready[i], p->total[i]);
		else
			w = snprintf(buf + o, len - o, "%s%u%% to %s: %u/%u ready x %u.%02u = %u%% healthy",
				     o ? "; " : "", p->load[i], name, p->ready[i], p->total[i], overprov_pct / 100,
				     overprov_pct % 100, p->health[i]);
		if (w < 0)
			break;
		o += (size_t)w;
		if (p->health[i] >= 100)
			break;
	}
	return buf;
}
