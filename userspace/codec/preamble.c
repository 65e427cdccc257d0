// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The inter-agent preamble codec (wire format in preamble.h).
 *
 * The decoder walks a cursor over min(len, 8 + N) bytes. A field that does
 * not fit in what has arrived is "need more" while the declared body is not
 * all here, and "truncated" once it is, so every check runs as soon as its
 * bytes exist: an HTTP request sent to the inbound port fails on its first
 * byte, not after a timeout.
 */
#include "codec/preamble.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#define WIRE_V4 4
#define WIRE_V6 6
/* family + port + IPv4 address: the smallest body */
#define BODY_MIN (1 + 2 + 4)

struct cursor {
	const uint8_t *p;
	size_t pos, avail; /* avail = bytes present, capped at the declared end */
	size_t end;        /* declared end: 8 + N */
};

enum take { TAKE_OK, TAKE_MORE, TAKE_SHORT };

static enum take take(struct cursor *c, size_t n, const uint8_t **out)
{
	if (c->pos + n > c->end)
		return TAKE_SHORT; /* the field overruns the declared body */
	if (c->pos + n > c->avail)
		return TAKE_MORE;
	*out = c->p + c->pos;
	c->pos += n;
	return TAKE_OK;
}

const char *preamble_err_name(enum preamble_err e)
{
	static const char *const names[PREAMBLE_ERR__COUNT] = {
		[PREAMBLE_OK] = "ok",
		[PREAMBLE_ERR_MAGIC] = "bad_magic",
		[PREAMBLE_ERR_VERSION] = "bad_version",
		[PREAMBLE_ERR_FLAGS] = "bad_flags",
		[PREAMBLE_ERR_LENGTH] = "bad_length",
		[PREAMBLE_ERR_FAMILY] = "bad_family",
		[PREAMBLE_ERR_PORT] = "bad_port",
		[PREAMBLE_ERR_ADDR] = "bad_address",
		[PREAMBLE_ERR_PROTO] = "bad_protocol",
		[PREAMBLE_ERR_SERVICE] = "bad_service",
		[PREAMBLE_ERR_CLAIMED_ID] = "bad_claimed_identity",
		[PREAMBLE_ERR_TRUNCATED] = "truncated",
		[PREAMBLE_ERR_TRAILING] = "trailing_bytes",
	};

	return (unsigned)e < PREAMBLE_ERR__COUNT ? names[e] : "unknown";
}

static bool service_ok(const uint8_t *s, size_t n)
{
	size_t i;

	if (n == 0 || n > PREAMBLE_SERVICE_MAX)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (i = 1; i < n; i++) {
		uint8_t ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static bool claimed_ok(const uint8_t *s, size_t n)
{
	size_t i;

	if (n == 0 || n > PREAMBLE_CLAIMED_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

/* Unspecified, multicast and broadcast are never endpoints. */
static bool v4_ok(const uint8_t a[4])
{
	if (!a[0] && !a[1] && !a[2] && !a[3])
		return false;
	if ((a[0] & 0xf0) == 0xe0)
		return false;
	return !(a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
}

static bool v6_ok(const uint8_t a[16])
{
	static const uint8_t zero[16];

	return memcmp(a, zero, 16) != 0 && a[0] != 0xff;
}

static bool is_v4_mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	return memcmp(a, pfx, 12) == 0;
}

static void set_v4(struct weft_sockaddr *t, const uint8_t a[4], uint16_t port)
{
	memset(t, 0, sizeof(*t));
	t->in4.sin_family = AF_INET;
	t->in4.sin_port = htons(port);
	memcpy(&t->in4.sin_addr, a, 4);
	t->len = sizeof(t->in4);
}

int preamble_decode(const void *buf, size_t len, struct preamble *out, enum preamble_err *err)
{
	static const char magic[4] = { 'W', 'E', 'F', 'T' };
	const uint8_t *b = buf, *f;
	struct preamble p;
	struct cursor c;
	enum preamble_err e = PREAMBLE_OK;
	enum take tk = TAKE_OK;
	size_t i, body;
	uint16_t port;
	uint8_t fam, flags;

	for (i = 0; i < len && i < 4; i++)
		if (b[i] != (uint8_t)magic[i]) {
			e = PREAMBLE_ERR_MAGIC;
			goto bad;
		}
	if (len >= 5 && b[4] != PREAMBLE_VERSION) {
		e = PREAMBLE_ERR_VERSION;
		goto bad;
	}
	if (len >= 6 && (b[5] & ~PREAMBLE_F_KNOWN)) {
		e = PREAMBLE_ERR_FLAGS;
		goto bad;
	}
	if (len < PREAMBLE_HDR_LEN)
		return -EAGAIN;
	flags = b[5];
	body = (size_t)b[6] << 8 | b[7];
	if (body < BODY_MIN || PREAMBLE_HDR_LEN + body > PREAMBLE_MAX) {
		e = PREAMBLE_ERR_LENGTH;
		goto bad;
	}

	memset(&p, 0, sizeof(p));
	p.version = PREAMBLE_VERSION;
	p.flags = flags;
	c.p = b;
	c.pos = PREAMBLE_HDR_LEN;
	c.end = PREAMBLE_HDR_LEN + body;
	c.avail = len < c.end ? len : c.end;

	if ((tk = take(&c, 1, &f)) != TAKE_OK)
		goto short_;
	fam = f[0];
	if (fam != WIRE_V4 && fam != WIRE_V6) {
		e = PREAMBLE_ERR_FAMILY;
		goto bad;
	}
	if (body < (size_t)(fam == WIRE_V4 ? 1 + 2 + 4 : 1 + 2 + 16)) {
		e = PREAMBLE_ERR_TRUNCATED; /* the declared body cannot hold this address */
		goto bad;
	}
	if ((tk = take(&c, 2, &f)) != TAKE_OK)
		goto short_;
	port = (uint16_t)(f[0] << 8 | f[1]);
	if (port == 0) {
		e = PREAMBLE_ERR_PORT;
		goto bad;
	}
	if (fam == WIRE_V4) {
		if ((tk = take(&c, 4, &f)) != TAKE_OK)
			goto short_;
		if (!v4_ok(f)) {
			e = PREAMBLE_ERR_ADDR;
			goto bad;
		}
		set_v4(&p.target, f, port);
	} else {
		if ((tk = take(&c, 16, &f)) != TAKE_OK)
			goto short_;
		if (is_v4_mapped(f)) {
			if (!v4_ok(f + 12)) {
				e = PREAMBLE_ERR_ADDR;
				goto bad;
			}
			set_v4(&p.target, f + 12, port);
		} else {
			if (!v6_ok(f)) {
				e = PREAMBLE_ERR_ADDR;
				goto bad;
			}
			p.target.in6.sin6_family = AF_INET6;
			p.target.in6.sin6_port = htons(port);
			memcpy(&p.target.in6.sin6_addr, f, 16);
			p.target.len = sizeof(p.target.in6);
		}
	}
	if (flags & PREAMBLE_F_PROTO) {
		if ((tk = take(&c, 1, &f)) != TAKE_OK)
			goto short_;
		if (f[0] == PREAMBLE_PROTO_NONE || f[0] > PREAMBLE_PROTO_MAX) {
			e = PREAMBLE_ERR_PROTO;
			goto bad;
		}
		p.proto = (enum preamble_proto)f[0];
	}
	if (flags & PREAMBLE_F_SERVICE) {
		size_t n;

		if ((tk = take(&c, 1, &f)) != TAKE_OK)
			goto short_;
		n = f[0];
		if (n == 0 || n > PREAMBLE_SERVICE_MAX) {
			e = PREAMBLE_ERR_SERVICE;
			goto bad;
		}
		if ((tk = take(&c, n, &f)) != TAKE_OK)
			goto short_;
		if (!service_ok(f, n)) {
			e = PREAMBLE_ERR_SERVICE;
			goto bad;
		}
		memcpy(p.service, f, n);
		p.service[n] = '\0';
	}
	if (flags & PREAMBLE_F_CLAIMED_ID) {
		size_t n;

		if ((tk = take(&c, 1, &f)) != TAKE_OK)
			goto short_;
		n = f[0];
		if (n == 0) {
			e = PREAMBLE_ERR_CLAIMED_ID;
			goto bad;
		}
		if ((tk = take(&c, n, &f)) != TAKE_OK)
			goto short_;
		if (!claimed_ok(f, n)) {
			e = PREAMBLE_ERR_CLAIMED_ID;
			goto bad;
		}
		memcpy(p.claimed_id, f, n);
		p.claimed_id[n] = '\0';
	}
	if (c.pos != c.end) {
		/* every field is in; the declared body is longer than them */
		e = PREAMBLE_ERR_TRAILING;
		goto bad;
	}
	*out = p;
	if (err)
		*err = PREAMBLE_OK;
	return (int)c.end;
short_:
	if (tk == TAKE_MORE)
		return -EAGAIN;
	e = PREAMBLE_ERR_TRUNCATED;
bad:
	if (err)
		*err = e;
	return -EINVAL;
}

int preamble_encode(void *buf, size_t len, const struct preamble *p)
{
	uint8_t tmp[PREAMBLE_MAX], *w = tmp + PREAMBLE_HDR_LEN, flags = 0;
	size_t n, body;
	uint16_t port;

	if (p->target.sa.sa_family == AF_INET) {
		port = ntohs(p->target.in4.sin_port);
		if (!v4_ok((const uint8_t *)&p->target.in4.sin_addr))
			return -EINVAL;
		*w++ = WIRE_V4;
		*w++ = (uint8_t)(port >> 8);
		*w++ = (uint8_t)port;
		memcpy(w, &p->target.in4.sin_addr, 4);
		w += 4;
	} else if (p->target.sa.sa_family == AF_INET6) {
		const uint8_t *a = p->target.in6.sin6_addr.s6_addr;

		port = ntohs(p->target.in6.sin6_port);
		if (is_v4_mapped(a) ? !v4_ok(a + 12) : !v6_ok(a))
			return -EINVAL;
		*w++ = WIRE_V6;
		*w++ = (uint8_t)(port >> 8);
		*w++ = (uint8_t)port;
		memcpy(w, a, 16);
		w += 16;
	} else {
		return -EINVAL;
	}
	if (port == 0)
		return -EINVAL;
	if (p->proto != PREAMBLE_PROTO_NONE) {
		if ((unsigned)p->proto > PREAMBLE_PROTO_MAX)
			return -EINVAL;
		flags |= PREAMBLE_F_PROTO;
		*w++ = (uint8_t)p->proto;
	}
	n = strnlen(p->service, sizeof(p->service));
	if (n) {
		if (!service_ok((const uint8_t *)p->service, n))
			return -EINVAL;
		flags |= PREAMBLE_F_SERVICE;
		*w++ = (uint8_t)n;
		memcpy(w, p->service, n);
		w += n;
	}
	n = strnlen(p->claimed_id, sizeof(p->claimed_id));
	if (n) {
		if (!claimed_ok((const uint8_t *)p->claimed_id, n))
			return -EINVAL;
		flags |= PREAMBLE_F_CLAIMED_ID;
		*w++ = (uint8_t)n;
		memcpy(w, p->claimed_id, n);
		w += n;
	}
	/* at most 8 + 19 + 1 + 64 + 256 = 348 bytes: always within tmp */
	body = (size_t)(w - tmp) - PREAMBLE_HDR_LEN;
	memcpy(tmp, PREAMBLE_MAGIC, 4);
	tmp[4] = PREAMBLE_VERSION;
	tmp[5] = flags;
	tmp[6] = (uint8_t)(body >> 8);
	tmp[7] = (uint8_t)body;
	if (PREAMBLE_HDR_LEN + body > len)
		return -ENOSPC;
	memcpy(buf, tmp, PREAMBLE_HDR_LEN + body);
	return (int)(PREAMBLE_HDR_LEN + body);
}

int preamble_status_errno(enum preamble_status s)
{
	switch (s) {
	case PREAMBLE_ST_OK:
		return 0;
	case PREAMBLE_ST_DENIED:
		return -EACCES;
	case PREAMBLE_ST_UNKNOWN_TARGET:
	case PREAMBLE_ST_UNREACHABLE:
		return -ECONNREFUSED;
	case PREAMBLE_ST_OVERLOADED:
		return -EBUSY;
	default:
		return -EPROTO;
	}
}

const char *preamble_status_name(enum preamble_status s)
{
	switch (s) {
	case PREAMBLE_ST_OK:
		return "ok";
	case PREAMBLE_ST_DENIED:
		return "denied";
	case PREAMBLE_ST_UNKNOWN_TARGET:
		return "unknown_target";
	case PREAMBLE_ST_UNREACHABLE:
		return "unreachable";
	case PREAMBLE_ST_BAD_PREAMBLE:
		return "bad_preamble";
	case PREAMBLE_ST_OVERLOADED:
		return "overloaded";
	}
	return "unknown";
}

int preamble_reply_encode(void *buf, size_t len, enum preamble_status st)
{
	uint8_t *b = buf;

	if ((unsigned)st > PREAMBLE_ST_MAX)
		return -EINVAL;
	if (len < PREAMBLE_REPLY_LEN)
		return -ENOSPC;
	memcpy(b, PREAMBLE_MAGIC, 4);
	b[4] = PREAMBLE_VERSION;
	b[5] = (uint8_t)st;
	b[6] = 0;
	b[7] = 0;
	return PREAMBLE_REPLY_LEN;
}

int preamble_reply_decode(const void *buf, size_t len, enum preamble_status *st)
{
	static const uint8_t want[5] = { 'W', 'E', 'F', 'T', PREAMBLE_VERSION };
	const uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len && i < 5; i++)
		if (b[i] != want[i])
			return -EINVAL;
	if (len >= 6 && b[5] > PREAMBLE_ST_MAX)
		return -EINVAL;
	for (i = 6; i < len && i < PREAMBLE_REPLY_LEN; i++)
		if (b[i] != 0)
			return -EINVAL;
	if (len < PREAMBLE_REPLY_LEN)
		return -EAGAIN;
	*st = (enum preamble_status)b[5];
	return PREAMBLE_REPLY_LEN;
}

bool preamble_service_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= PREAMBLE_SERVICE_MAX && service_ok((const uint8_t *)s, n);
}
