// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "lib/obuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/blk.h"

size_t ob_pending(const struct obuf *o)
{
	return o->len - o->off;
}

int ob_reserve(struct obuf *o, size_t n)
{
	size_t want;
	char *np;

	if (o->off && o->off == o->len)
		o->off = o->len = 0;
	if (o->cap - o->len >= n)
		return 0;
	if (o->off) {
		memmove(o->p, o->p + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
		if (o->cap - o->len >= n)
			return 0;
	}
	want = o->cap ? o->cap : 4096;
	while (want - o->len < n)
		want *= 2;
	np = o->p ? realloc(o->p, want) : blk_get(want);
	if (!np)
		return -ENOMEM;
	o->p = np;
	o->cap = want;
	return 0;
}

int ob_add(struct obuf *o, const void *d, size_t n)
{
	if (!n)
		return 0;
	if (ob_reserve(o, n) < 0)
		return -ENOMEM;
	memcpy(o->p + o->len, d, n);
	o->len += n;
	return 0;
}

/* Appends v in decimal (no printf on the per-request path). */
int ob_u64(struct obuf *o, uint64_t v)
{
	char b[24], *e = b + sizeof(b), *p = e;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return ob_add(o, p, (size_t)(e - p));
}

int ob_str(struct obuf *o, const char *s)
{
	return ob_add(o, s, strlen(s));
}

void ob_free(struct obuf *o)
{
	blk_put(o->p, o->cap);
	memset(o, 0, sizeof(*o));
}

/* Frees the memory of an empty buffer (idle keep-alive connections hold none). */
void ob_trim(struct obuf *o)
{
	if (!ob_pending(o))
		ob_free(o);
}

/* Writes what is pending: 0 all written, 1 some left (EAGAIN), -errno. *written += bytes. */
int ob_flush(struct obuf *o, int fd, uint64_t *written)
{
	while (ob_pending(o)) {
		ssize_t n = send(fd, o->p + o->off, ob_pending(o), MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -errno;
		}
		o->off += (size_t)n;
		if (written)
			*written += (uint64_t)n;
	}
	o->off = o->len = 0;
	return 0;
}
