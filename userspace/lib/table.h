/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * table: aligned plain-text tables for people (weftctl's default output, which
 * the admin API renders with ?format=text). Cells are copied; column widths
 * are computed at render time. Control plane only.
 * It may call: lib/buf.
 */
#ifndef WEFT_TABLE_H
#define WEFT_TABLE_H

#include <stddef.h>

struct buf;

#define TABLE_MAX_COLS 12

struct table {
	size_t ncols;
	size_t nrows; /* header included */
	size_t cap;
	char **cells; /* nrows * ncols */
	int failed;
};

/* Starts a table with the given header (ncols <= TABLE_MAX_COLS). */
void table_init(struct table *t, size_t ncols, const char *const *header);
/* Adds one row of ncols cells (NULL prints as "-"). */
void table_row(struct table *t, const char *const *cells);
/* Appends the aligned table to out and frees t. */
void table_render(struct table *t, struct buf *out);

#endif
