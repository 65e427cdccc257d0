/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * buf: a growable byte buffer for control-plane text (admin responses, JSON,
 * metrics). Not for the data path. On allocation failure the buffer is
 * marked failed and further appends are ignored; check buf_failed() once at
 * the end instead of after every append.
 * It may call: libc only.
 */
#ifndef WEFT_BUF_H
#define WEFT_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quotes included), escaping as RFC 8259 requires. */
void buf_json_str(struct buf *b, const char *s);
/* Appends s escaped as a Prometheus label value (\\, \", \n). */
void buf_prom_label(struct buf *b, const char *s);
static inline bool buf_failed(const struct buf *b)
{
	return b->failed;
}

#endif
