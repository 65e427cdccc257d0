/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * obuf: a growable output buffer of bytes waiting for a non-blocking
 * socket. Memory comes from lib/blk (a per-thread block cache) and an empty
 * buffer can give it back (ob_trim), so an idle connection holds none.
 * Calls only lib/blk and libc; one owner, no locking.
 */
#ifndef WEFT_OBUF_H
#define WEFT_OBUF_H

#include <stddef.h>
#include <stdint.h>

struct obuf {
	char *p;
	size_t off, len, cap; /* pending bytes are p[off..len) */
};

size_t ob_pending(const struct obuf *o);
/* Room for n more bytes (compacting or growing). 0 or -ENOMEM. */
int ob_reserve(struct obuf *o, size_t n);
/* Appends (0 or -ENOMEM). */
int ob_add(struct obuf *o, const void *d, size_t n);
/* Appends v in decimal (no printf on the per-request path). */
int ob_u64(struct obuf *o, uint64_t v);
int ob_str(struct obuf *o, const char *s);
void ob_free(struct obuf *o);
/* Frees the memory of an empty buffer. */
void ob_trim(struct obuf *o);
/* Writes what is pending: 0 all written, 1 some left (EAGAIN), -errno. *written += bytes (may be NULL). */
int ob_flush(struct obuf *o, int fd, uint64_t *written);

#endif
