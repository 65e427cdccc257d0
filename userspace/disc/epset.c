// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* epset: endpoint sets of discovery sources (epset.h). */
#include "disc/epset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const disc_result_names[DISC__RESULTS] = { "success", "empty", "failure" };

/* Address order: family, then the address bytes, then the port. */
static int addr_cmp(const struct weft_sockaddr *a, const struct weft_sockaddr *b)
{
	struct weft_addr ka, kb;

	addr_to_key(a, &ka);
	addr_to_key(b, &kb);
	return memcmp(&ka, &kb, sizeof(ka));
}

static int ep_cmp(const void *pa, const void *pb)
{
	const struct ep_entry *a = pa, *b = pb;
	int c = addr_cmp(&a->addr, &b->addr);

	if (c)
		return c;
	/* the preferred of two entries for one address first: lower priority, then larger weight */
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	if (a->weight != b->weight)
		return a->weight > b->weight ? -1 : 1;
	return 0;
}

size_t epset_normalize(struct ep_entry *e, size_t n)
{
	size_t i, o = 0;

	if (n < 2)
		return n;
	qsort(e, n, sizeof(*e), ep_cmp);
	for (i = 0; i < n; i++) {
		if (o && addr_cmp(&e[o - 1].addr, &e[i].addr) == 0)
			continue; /* the first of a run is the preferred one */
		if (o != i)
			e[o] = e[i];
		o++;
	}
	return o;
}

bool epset_equal(const struct ep_entry *a, size_t na, const struct ep_entry *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (!addr_equal(&a[i].addr, &b[i].addr) || a[i].weight != b[i].weight ||
		    a[i].priority != b[i].priority || strcmp(a[i].zone, b[i].zone))
			return false;
	return true;
}

static uint32_t clamp_weight(uint32_t w)
{
	return w < 1 ? 1 : w > EP_WEIGHT_MAX ? EP_WEIGHT_MAX : w;
}

/* Names as DNS compares them: case-insensitive, a trailing dot or not. */
static bool name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	return la == lb && !strncasecmp(a, b, la);
}

int epset_merge(const struct epset_rec *recs, size_t n_recs, const struct epset_addrs *ans, size_t n_ans,
		const char *zone, struct ep_entry **out, size_t *n, size_t *dropped)
{
	struct ep_entry *e = NULL;
	size_t total = 0, i, j, k, m = 0;

	*out = NULL;
	*n = 0;
	*dropped = 0;
	for (i = 0; i < n_recs; i++)
		for (j = 0; j < n_ans; j++)
			if (name_eq(recs[i].target, ans[j].name))
				total += ans[j].n;
	if (!total)
		return 0;
	e = calloc(total, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (i = 0; i < n_recs; i++) {
		for (j = 0; j < n_ans; j++) {
			if (!name_eq(recs[i].target, ans[j].name))
				continue;
			for (k = 0; k < ans[j].n; k++) {
				struct ep_entry *x = &e[m++];

				x->addr = ans[j].addrs[k];
				if (x->addr.sa.sa_family == AF_INET)
					x->addr.in4.sin_port = htons(recs[i].port);
				else
					x->addr.in6.sin6_port = htons(recs[i].port);
				x->weight = clamp_weight(recs[i].weight);
				x->priority = recs[i].priority > EP_PRIORITY_MAX ? EP_PRIORITY_MAX : recs[i].priority;
				if (zone)
					snprintf(x->zone, sizeof(x->zone), "%s", zone);
			}
		}
	}
	m = epset_normalize(e, m);
	if (m > EPFILE_MAX_ENDPOINTS) {
		*dropped = m - EPFILE_MAX_ENDPOINTS;
		m = EPFILE_MAX_ENDPOINTS;
	}
	*out = e;
	*n = m;
	return 0;
}

void disc_status_note(struct disc_status *st, enum disc_result r, bool changed, const char *err, double now)
{
	st->refreshes[r]++;
	st->last_result = r;
	st->last_refresh = now;
	if (r == DISC_OK) {
		st->last_ok = now;
		st->kept = false;
	} else {
		st->kept = true;
		snprintf(st->last_error, sizeof(st->last_error), "%s", err ? err : "");
	}
	if (changed) {
		st->changes++;
		st->last_change = now;
	}
}
