// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "lib/table.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

void table_init(struct table *t, size_t ncols, const char *const *header)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols > TABLE_MAX_COLS ? TABLE_MAX_COLS : ncols;
	table_row(t, header);
}

void table_row(struct table *t, const char *const *cells)
{
	size_t i;

	if (t->failed)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **n = realloc(t->cells, cap * t->ncols * sizeof(*n));

		if (!n) {
			t->failed = 1;
			return;
		}
		t->cells = n;
		t->cap = cap;
	}
	for (i = 0; i < t->ncols; i++) {
		char *c = strdup(cells[i] ? cells[i] : "-");

		if (!c)
			t->failed = 1;
		t->cells[t->nrows * t->ncols + i] = c;
	}
	t->nrows++;
}

void table_render(struct table *t, struct buf *out)
{
	size_t w[TABLE_MAX_COLS] = { 0 };
	size_t r, c, n;
	const char *s;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			s = t->cells[r * t->ncols + c];
			n = s ? strlen(s) : 0;
			if (n > w[c])
				w[c] = n;
		}
	for (r = 0; r < t->nrows && !t->failed; r++) {
		for (c = 0; c < t->ncols; c++) {
			s = t->cells[r * t->ncols + c];
			if (c + 1 < t->ncols)
				buf_printf(out, "%-*s  ", (int)w[c], s ? s : "");
			else
				buf_printf(out, "%s\n", s ? s : "");
		}
	}
	if (t->failed)
		out->failed = true;
	for (r = 0; r < t->nrows * t->ncols; r++)
		free(t->cells[r]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
