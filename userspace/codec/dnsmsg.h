/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * dnsmsg: the answer section of a DNS response (RFC 1035), the records
 * weft's DNS discovery uses: A, AAAA and SRV (RFC 2782), with their TTLs,
 * following CNAMEs. c-ares moves the bytes (UDP, TCP on truncation, retries,
 * servers); this reads them, because c-ares 1.18's SRV parser drops the TTL
 * and weft refreshes on TTLs.
 *
 * What is read: the header (QR set, the rcode), the questions skipped, then
 * every answer record of class IN. The records returned are those of the
 * type asked for whose owner is the name asked for, or the end of the CNAME
 * chain that starts there (at most DNS_MAX_CNAMES links, in any order in the
 * section); names compare case-insensitively, trailing dot or not. The TTL
 * returned is the least of those records' and of the CNAMEs followed (TTLs
 * with the top bit set count as 0, RFC 2181 8). An SRV record with target
 * "." (the service is not offered there) or port 0 is left out. The
 * authority and additional sections are not read.
 *
 * Malformed input (a name or record running past the end, compression
 * loops, labels over 63 bytes, names over 255, rdata of the wrong length,
 * bytes in a name that are not printable ASCII or are a '.' inside a label)
 * is -EBADMSG with what is wrong; a record with an unusable name is skipped,
 * not an error, unless it is one we need.
 *
 * Pure: no I/O, no clock. O(message + answers x CNAME chain).
 * It may call: lib/addr.
 */
#ifndef WEFT_DNSMSG_H
#define WEFT_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

#define DNS_T_A 1
#define DNS_T_CNAME 5
#define DNS_T_AAAA 28
#define DNS_T_SRV 33
#define DNS_NAME_MAX 253 /* text form, no trailing dot */
#define DNS_MAX_CNAMES 8 /* links followed */
#define DNS_MAX_RRS 1024 /* records returned; more are counted in `dropped` */

/* DNS rcodes weft tells apart. */
#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3

struct dns_rr {
	uint32_t ttl;
	struct weft_sockaddr addr; /* A, AAAA: the address (port 0) */
	/* SRV */
	uint16_t priority, weight, port;
	char target[DNS_NAME_MAX + 1]; /* lower case, no trailing dot */
};

struct dns_answer {
	unsigned rcode;
	uint16_t type;     /* what was asked for */
	uint32_t ttl;      /* least TTL of the records returned and CNAMEs followed; 0 with none */
	struct dns_rr *rr; /* malloc'd; NULL when n is 0 */
	size_t n;
	size_t dropped; /* matching records beyond DNS_MAX_RRS, or unusable SRV ones */
};

/*
 * Reads msg[0..len), a response to (qname, qtype). 0 with *out filled (free
 * it with dns_answer_free), even when the rcode is not NOERROR (then n is
 * 0); -EBADMSG with a reason in err; -ENOMEM.
 */
int dns_parse_answer(const uint8_t *msg, size_t len, const char *qname, uint16_t qtype, struct dns_answer *out,
		     char *err, size_t errlen);
void dns_answer_free(struct dns_answer *a);

/*
 * Is name a host name weft will query: 1 to DNS_NAME_MAX characters, an
 * optional trailing dot, labels of 1 to 63 characters of A-Z a-z 0-9 '-' '_'
 * ('_' for SRV's _service._proto labels). What is wrong, or NULL.
 */
const char *dns_name_problem(const char *name);

#endif
