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
	unsigned char hidden[TABLE_MAX_COLS]; /* table_fit: columns left out */
	size_t maxw[TABLE_MAX_COLS];          /* table_fit: a cut column's width (0: whole) */
};

/* Terminal width the admin's text tables fit (one column short of 80: no wrap at the edge). */
#define TABLE_WIDTH 79

/* Starts a table with the given header (ncols <= TABLE_MAX_COLS). */
void table_init(struct table *t, size_t ncols, const char *const *header);
/* Adds one row of ncols cells (NULL prints as "-"). */
void table_row(struct table *t, const char *const *cells);
/*
 * Makes the table fit width columns, for people at a terminal: leaves out
 * columns in drop order (indexes, -1 terminated) while it is wider, then
 * cuts the cells of column cut (-1: none) to what is left, at least 8
 * ('~' and the cell's tail: names differ at their ends). A table that fits
 * is unchanged. Call after the last row; `-o wide` callers skip it.
 */
void table_fit(struct table *t, size_t width, const int *drop, int cut);
/* Appends the aligned table to out and frees t. */
void table_render(struct table *t, struct buf *out);

#endif
