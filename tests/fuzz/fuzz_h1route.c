// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: what h1proxy does with a client's first bytes and request head
 * before anything goes upstream: protocol detection ("auto"), route matching
 * against a fixed set of routes, and the Connection token list. Checks:
 * - detection: every prefix is undecided (-1) or gives the final answer, and
 *   H1R_DETECT_MAX bytes always decide;
 * - a request that parses matches the catch-all route, matches the exact-path
 *   route only if the prefix route with the same path matches too, and the
 *   header-presence route only if the header-value route's name is there;
 * - Connection tokens are non-empty sub-strings of a Connection value, with
 *   no separator inside, at most H1R_MAX_CONN_TOKENS.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/h1route.h"

static struct h1r_route routes[5];
static int ready;

static void setup(void)
{
	static struct cfg_header_kv val[] = { { (char *)"x-canary", (char *)"1" } };
	static struct cfg_header_kv any[] = { { (char *)"x-canary", NULL } };
	struct cfg_route c[5];
	int i;

	memset(c, 0, sizeof(c));
	for (i = 0; i < 5; i++)
		c[i].name = (char *)"r";
	c[1].path_kind = CFG_PATH_EXACT;
	c[1].path = (char *)"/api/v1";
	c[2].path_kind = CFG_PATH_PREFIX;
	c[2].path = (char *)"/api/v1";
	c[3].match_headers = val;
	c[3].n_match_headers = 1;
	c[4].match_headers = any;
	c[4].n_match_headers = 1;
	c[4].method = (char *)"GET";
	c[4].host = (char *)"api.example";
	for (i = 0; i < 5; i++)
		if (h1r_route_init(&routes[i], &c[i]) < 0)
			abort();
	ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct h1_request q;
	struct h1_header hs[64];
	const char *tp[H1R_MAX_CONN_TOKENS];
	size_t tl[H1R_MAX_CONN_TOKENS], n, i, k;
	int d, r;

	if (!ready)
		setup();
	d = h1r_detect(data, size);
	if (size >= H1R_DETECT_MAX && d == -1)
		abort();
	for (k = 0; k < size && k < H1R_DETECT_MAX; k++) {
		int p = h1r_detect(data, k);

		if (p != -1 && p != d)
			abort();
	}
	h1_request_init(&q);
	r = h1_parse_request((const char *)data, size, &q, hs, 64, NULL);
	if (r <= 0)
		return 0;
	if (!h1r_route_matches(&routes[0], &q))
		abort();
	if (h1r_route_matches(&routes[1], &q) && !h1r_route_matches(&routes[2], &q))
		abort();
	if (h1r_route_matches(&routes[3], &q) && q.method_id == H1_M_GET && q.host && q.host_len == 11 &&
	    strncasecmp(q.host, "api.example", 11) == 0 && !h1r_route_matches(&routes[4], &q))
		abort();
	n = h1r_connection_tokens(q.headers, q.n_headers, tp, tl);
	if (n > H1R_MAX_CONN_TOKENS)
		abort();
	for (i = 0; i < n; i++) {
		if (!tl[i] || tp[i] < (const char *)data || tp[i] + tl[i] > (const char *)data + size)
			abort();
		for (k = 0; k < tl[i]; k++)
			if (tp[i][k] == ',' || tp[i][k] == ' ' || tp[i][k] == '\t')
				abort();
	}
	return 0;
}
