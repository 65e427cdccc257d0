// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: the inter-agent preamble and reply decoders (bytes from any
 * agent that completed a mutual TLS handshake, or from a compromised one).
 * Beyond "no crash", checks the decoder's contract on every input:
 * - success consumes at most PREAMBLE_MAX bytes, and every shorter prefix of
 *   a valid preamble asks for more (-EAGAIN), never fails or succeeds early;
 * - a failure is final: the same error for every longer input seen here;
 * - what decodes re-encodes to the same bytes (IPv4-mapped IPv6 excepted,
 *   which encodes as IPv4) and decodes again to the same fields.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/preamble.h"

static void check_equal(const struct preamble *a, const struct preamble *b)
{
	if (a->target.len != b->target.len || memcmp(&a->target.sa, &b->target.sa, a->target.len) != 0 ||
	    a->proto != b->proto || strcmp(a->service, b->service) != 0 || strcmp(a->claimed_id, b->claimed_id) != 0 ||
	    a->flags != b->flags)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct preamble p, q;
	enum preamble_err e, e2;
	enum preamble_status st;
	uint8_t enc[PREAMBLE_MAX];
	size_t k;
	int n, m;

	if (size > 2 * PREAMBLE_MAX)
		size = 2 * PREAMBLE_MAX;
	n = preamble_decode(data, size, &p, &e);
	if (n > 0) {
		if ((size_t)n > size || n > PREAMBLE_MAX || n < 15 || e != PREAMBLE_OK)
			abort();
		for (k = 0; k < (size_t)n; k++)
			if (preamble_decode(data, k, &q, &e2) != -EAGAIN)
				abort();
		/* strings are NUL-terminated and within bounds */
		if (strlen(p.service) > PREAMBLE_SERVICE_MAX || strlen(p.claimed_id) > PREAMBLE_CLAIMED_MAX)
			abort();
		m = preamble_encode(enc, sizeof(enc), &p);
		if (m <= 0)
			abort();
		if (m == n && memcmp(enc, data, (size_t)n) != 0)
			abort();
		if (m != n && !(m == n - 12 && data[8] == 6)) /* v4-mapped v6 shrinks by 12 */
			abort();
		if (preamble_decode(enc, (size_t)m, &q, &e2) != m)
			abort();
		if (m == n)
			check_equal(&p, &q);
		/* too small a buffer: refused, not overrun */
		if (preamble_encode(enc, (size_t)m - 1, &p) != -ENOSPC)
			abort();
	} else if (n == -EINVAL) {
		if (e <= PREAMBLE_OK || e >= PREAMBLE_ERR__COUNT)
			abort();
		/* final: a longer input fails the same way (check a few lengths) */
		for (k = size; k < size + 3 && k <= 2 * PREAMBLE_MAX; k++) {
			uint8_t *more = malloc(k + 1);

			if (!more)
				return 0;
			memcpy(more, data, size);
			memset(more + size, 0x41, k + 1 - size);
			if (preamble_decode(more, k + 1, &q, &e2) != -EINVAL || e2 != e)
				abort();
			free(more);
		}
	} else if (n != -EAGAIN || size >= PREAMBLE_MAX) {
		abort(); /* never waits for more than PREAMBLE_MAX bytes */
	}

	n = preamble_reply_decode(data, size, &st);
	if (n > 0 && (n != PREAMBLE_REPLY_LEN || st > PREAMBLE_ST_MAX))
		abort();
	if (n == -EAGAIN && size >= PREAMBLE_REPLY_LEN)
		abort();
	return 0;
}
