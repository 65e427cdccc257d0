// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: DNS answers (codec/dnsmsg). A DNS server, or anyone who can
 * get a datagram to weftd's resolver socket first, chooses these bytes.
 * Input: one byte choosing the type asked for (A, AAAA, SRV), the name asked
 * for up to a NUL, then the message. Beyond "no crash, no leak", on every
 * input:
 * - the result is 0 or -EBADMSG (with a reason), and nothing is kept on error;
 * - a non-NOERROR rcode returns no record;
 * - at most DNS_MAX_RRS records; A records are IPv4, AAAA IPv6; SRV records
 *   have a port and a non-empty target of at most DNS_NAME_MAX characters
 *   with no upper case;
 * - the TTL is the least of the records' (CNAMEs may lower it), never with
 *   the top bit set, and 0 with no record.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/dnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_SRV };
	char qname[DNS_NAME_MAX + 2], err[256];
	struct dns_answer a;
	const uint8_t *nul;
	uint16_t type;
	size_t ql, i;
	int r;

	if (size < 2)
		return 0;
	type = types[data[0] % 3];
	data++;
	size--;
	nul = memchr(data, '\0', size < sizeof(qname) ? size : sizeof(qname));
	if (!nul)
		return 0;
	ql = (size_t)(nul - data);
	memcpy(qname, data, ql + 1);
	data += ql + 1;
	size -= ql + 1;

	memset(&a, 0x5a, sizeof(a));
	r = dns_parse_answer(data, size, qname, type, &a, err, sizeof(err));
	if (r == -EBADMSG) {
		if (a.rr || a.n || strncmp(err, "malformed answer: ", 18))
			abort();
		return 0;
	}
	if (r != 0 || a.type != type || a.n > DNS_MAX_RRS || (a.n && !a.rr) || a.rcode > 15)
		abort();
	if (a.rcode != DNS_RCODE_NOERROR && a.n)
		abort();
	if (!a.n && a.ttl)
		abort();
	if (a.ttl & 0x80000000u)
		abort();
	for (i = 0; i < a.n; i++) {
		const struct dns_rr *rr = &a.rr[i];

		if (rr->ttl < a.ttl || (rr->ttl & 0x80000000u))
			abort();
		if (type == DNS_T_A && rr->addr.sa.sa_family != AF_INET)
			abort();
		if (type == DNS_T_AAAA && rr->addr.sa.sa_family != AF_INET6)
			abort();
		if (type == DNS_T_SRV) {
			size_t tl = strnlen(rr->target, sizeof(rr->target));

			if (!rr->port || !tl || tl > DNS_NAME_MAX)
				abort();
			for (size_t k = 0; k < tl; k++)
				if ((rr->target[k] >= 'A' && rr->target[k] <= 'Z') ||
				    (unsigned char)rr->target[k] <= ' ')
					abort();
		}
	}
	dns_answer_free(&a);
	return 0;
}
