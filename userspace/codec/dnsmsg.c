// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * dnsmsg: DNS answers (dnsmsg.h). Two passes over the answer section: the
 * first collects CNAMEs (so the chain can be followed whatever the order of
 * the records), the second takes the records of the type asked for whose
 * owner ends the chain. Names are decoded into fixed buffers (255 bytes), so
 * nothing is allocated but the result.
 */
#include "codec/dnsmsg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_HDR 12
#define DNS_MAX_JUMPS 64 /* compression pointers followed in one name */
#define DNS_CLASS_IN 1

struct cname {
	char owner[DNS_NAME_MAX + 2], target[DNS_NAME_MAX + 2];
	uint32_t ttl;
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/*
 * Decodes the name at *off into out (DNS_NAME_MAX + 2 bytes; lower case,
 * dotted, no trailing dot, "" for the root) and moves *off past it (past
 * the first pointer when compressed). -EBADMSG: runs past len, a pointer
 * loop (or more than DNS_MAX_JUMPS), a label over 63 bytes or a reserved
 * label type, a name over 255 bytes. -EINVAL (still moved past): a byte
 * that is not printable ASCII, or a '.' inside a label: the name cannot be
 * written as text (or asked for), but the message goes on.
 */
static int read_name(const uint8_t *m, size_t len, size_t *off, char *out, const char **why)
{
	size_t p = *off, o = 0, wire = 1, end = 0;
	unsigned jumps = 0;
	bool bad = false;

	for (;;) {
		uint8_t l;

		if (p >= len) {
			*why = "a name runs past the end of the message";
			return -EBADMSG;
		}
		l = m[p];
		if ((l & 0xc0) == 0xc0) {
			if (p + 1 >= len) {
				*why = "a compression pointer runs past the end of the message";
				return -EBADMSG;
			}
			if (!end)
				end = p + 2;
			if (++jumps > DNS_MAX_JUMPS || (size_t)((l & 0x3f) << 8 | m[p + 1]) >= p) {
				/* pointers go backwards only: that alone rules out loops */
				*why = "a compression pointer does not point back into the message";
				return -EBADMSG;
			}
			p = (size_t)((l & 0x3f) << 8 | m[p + 1]);
			continue;
		}
		if (l & 0xc0) {
			*why = "a label has a reserved type";
			return -EBADMSG;
		}
		if (!l) {
			p++;
			break;
		}
		wire += (size_t)l + 1;
		if (wire > 255) {
			*why = "a name is longer than 255 bytes";
			return -EBADMSG;
		}
		if (p + 1 + l > len) {
			*why = "a label runs past the end of the message";
			return -EBADMSG;
		}
		if (o)
			out[o++] = '.';
		for (size_t i = 0; i < l; i++) {
			char c = (char)m[p + 1 + i];

			if (c <= ' ' || c >= 0x7f || c == '.')
				bad = true;
			out[o++] = lower(c);
		}
		p += 1 + (size_t)l;
	}
	out[o] = '\0';
	*off = end ? end : p;
	return bad ? -EINVAL : 0;
}

/* qname as the decoder writes names: lower case, no trailing dot. */
static bool name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;

	if (la && a[la - 1] == '.')
		la--;
	if (lb && b[lb - 1] == '.')
		lb--;
	if (la != lb)
		return false;
	for (i = 0; i < la; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

struct rrhead {
	char owner[DNS_NAME_MAX + 2];
	bool owner_ok;
	uint16_t type, class;
	uint32_t ttl;
	size_t rdata, rdlen;
};

/* One record's head at *off; *off moves past the whole record. */
static int read_rr(const uint8_t *m, size_t len, size_t *off, struct rrhead *h, const char **why)
{
	int r = read_name(m, len, off, h->owner, why);

	if (r == -EBADMSG)
		return r;
	h->owner_ok = r == 0;
	if (*off + 10 > len) {
		*why = "a record runs past the end of the message";
		return -EBADMSG;
	}
	h->type = rd16(m + *off);
	h->class = rd16(m + *off + 2);
	h->ttl = rd32(m + *off + 4);
	if (h->ttl & 0x80000000u)
		h->ttl = 0; /* RFC 2181 8 */
	h->rdlen = rd16(m + *off + 8);
	h->rdata = *off + 10;
	if (h->rdata + h->rdlen > len) {
		*why = "a record's data runs past the end of the message";
		return -EBADMSG;
	}
	*off = h->rdata + h->rdlen;
	return 0;
}

/* Skips the questions; *off is where the answers start. */
static int skip_questions(const uint8_t *m, size_t len, unsigned qd, size_t *off, const char **why)
{
	char name[DNS_NAME_MAX + 2];
	unsigned i;

	for (i = 0; i < qd; i++) {
		if (read_name(m, len, off, name, why) == -EBADMSG)
			return -EBADMSG;
		if (*off + 4 > len) {
			*why = "a question runs past the end of the message";
			return -EBADMSG;
		}
		*off += 4;
	}
	return 0;
}

static int add_rr(struct dns_answer *a, size_t *cap, const struct dns_rr *rr)
{
	if (a->n == DNS_MAX_RRS) {
		a->dropped++;
		return 0;
	}
	if (a->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct dns_rr *n = realloc(a->rr, nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		a->rr = n;
		*cap = nc;
	}
	a->rr[a->n++] = *rr;
	return 0;
}

/* The record's data as what was asked for; 1: left out (unusable SRV), -EBADMSG. */
static int read_rdata(const uint8_t *m, size_t len, const struct rrhead *h, struct dns_rr *rr, const char **why)
{
	size_t off;
	int r;

	memset(rr, 0, sizeof(*rr));
	rr->ttl = h->ttl;
	switch (h->type) {
	case DNS_T_A:
		if (h->rdlen != 4) {
			*why = "an A record's data is not 4 bytes";
			return -EBADMSG;
		}
		rr->addr.in4.sin_family = AF_INET;
		memcpy(&rr->addr.in4.sin_addr, m + h->rdata, 4);
		rr->addr.len = sizeof(rr->addr.in4);
		return 0;
	case DNS_T_AAAA:
		if (h->rdlen != 16) {
			*why = "an AAAA record's data is not 16 bytes";
			return -EBADMSG;
		}
		rr->addr.in6.sin6_family = AF_INET6;
		memcpy(&rr->addr.in6.sin6_addr, m + h->rdata, 16);
		rr->addr.len = sizeof(rr->addr.in6);
		return 0;
	default: /* SRV */
		if (h->rdlen < 7) {
			*why = "an SRV record's data is shorter than 7 bytes";
			return -EBADMSG;
		}
		rr->priority = rd16(m + h->rdata);
		rr->weight = rd16(m + h->rdata + 2);
		rr->port = rd16(m + h->rdata + 4);
		off = h->rdata + 6;
		/* the target must end inside the record's data (a pointer may lead elsewhere) */
		r = read_name(m, h->rdata + h->rdlen, &off, rr->target, why);
		if (r == -EBADMSG)
			return r;
		if (off != h->rdata + h->rdlen) {
			*why = "an SRV record's target does not end its data";
			return -EBADMSG;
		}
		if (r < 0 || !rr->target[0] || !rr->port)
			return 1; /* not a name we could ask for, "." (not offered), or no port */
		return 0;
	}
}

int dns_parse_answer(const uint8_t *msg, size_t len, const char *qname, uint16_t qtype, struct dns_answer *out,
		     char *err, size_t errlen)
{
	struct cname cn[DNS_MAX_CNAMES * 2];
	char cur[DNS_NAME_MAX + 2];
	const char *why = NULL;
	size_t off, start, cap = 0, ncn = 0, i;
	unsigned an, k;
	uint32_t ttl = UINT32_MAX;
	int r;

	memset(out, 0, sizeof(*out));
	out->type = qtype;
	if (errlen)
		err[0] = '\0';
	if (len < DNS_HDR) {
		why = "shorter than a DNS header";
		goto bad;
	}
	if (!(msg[2] & 0x80)) {
		why = "not a response (QR is 0)";
		goto bad;
	}
	out->rcode = msg[3] & 0x0f;
	an = rd16(msg + 6);
	off = DNS_HDR;
	if (skip_questions(msg, len, rd16(msg + 4), &off, &why) < 0)
		goto bad;
	if (out->rcode != DNS_RCODE_NOERROR)
		return 0;
	start = off;

	/* pass 1: CNAMEs */
	for (k = 0; k < an; k++) {
		struct rrhead h;

		if (read_rr(msg, len, &off, &h, &why) < 0)
			goto bad;
		if (h.type != DNS_T_CNAME || h.class != DNS_CLASS_IN || !h.owner_ok ||
		    ncn == sizeof(cn) / sizeof(cn[0]))
			continue;
		i = h.rdata;
		r = read_name(msg, h.rdata + h.rdlen, &i, cn[ncn].target, &why);
		if (r == -EBADMSG)
			goto bad;
		if (r < 0)
			continue;
		memcpy(cn[ncn].owner, h.owner, sizeof(h.owner));
		cn[ncn].ttl = h.ttl;
		ncn++;
	}
	/* the chain from qname: its end owns the records */
	snprintf(cur, sizeof(cur), "%s", qname);
	for (k = 0; k < DNS_MAX_CNAMES; k++) {
		for (i = 0; i < ncn && !name_eq(cn[i].owner, cur); i++)
			;
		if (i == ncn)
			break;
		memcpy(cur, cn[i].target, sizeof(cur));
		if (cn[i].ttl < ttl)
			ttl = cn[i].ttl;
	}

	/* pass 2: the records */
	off = start;
	for (k = 0; k < an; k++) {
		struct rrhead h;
		struct dns_rr rr;

		if (read_rr(msg, len, &off, &h, &why) < 0)
			goto bad;
		if (h.type != qtype || h.class != DNS_CLASS_IN || !h.owner_ok || !name_eq(h.owner, cur))
			continue;
		r = read_rdata(msg, len, &h, &rr, &why);
		if (r < 0)
			goto bad;
		if (r > 0) {
			out->dropped++;
			continue;
		}
		if (add_rr(out, &cap, &rr) < 0) {
			dns_answer_free(out);
			return -ENOMEM;
		}
		if (rr.ttl < ttl)
			ttl = rr.ttl;
	}
	out->ttl = out->n ? ttl : 0;
	return 0;
bad:
	dns_answer_free(out);
	snprintf(err, errlen, "malformed answer: %s", why ? why : "?");
	return -EBADMSG;
}

void dns_answer_free(struct dns_answer *a)
{
	free(a->rr);
	a->rr = NULL;
	a->n = 0;
}

const char *dns_name_problem(const char *name)
{
	size_t len = strlen(name), i, l = 0;

	if (len && name[len - 1] == '.')
		len--;
	if (!len)
		return "is empty";
	if (len > DNS_NAME_MAX)
		return "is longer than 253 characters";
	for (i = 0; i <= len; i++) {
		char c = i < len ? name[i] : '.';

		if (c == '.') {
			if (!l)
				return "has an empty label (two dots, or a leading dot)";
			l = 0;
			continue;
		}
		if (++l > 63)
			return "has a label longer than 63 characters";
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_'))
			return "has a character other than A-Z, a-z, 0-9, '-', '_' and the dots between labels";
	}
	return NULL;
}
