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

static void table_widths(const struct table *t, size_t *w)
{
	size_t r, c, n;
	const char *s;

	memset(w, 0, TABLE_MAX_COLS * sizeof(*w));
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			s = t->cells[r * t->ncols + c];
			n = s ? strlen(s) : 0;
			if (t->maxw[c] && n > t->maxw[c])
				n = t->maxw[c];
			if (n > w[c])
				w[c] = n;
		}
}

static size_t table_total(const struct table *t, const size_t *w)
{
	size_t c, total = 0, shown = 0;

	for (c = 0; c < t->ncols; c++)
		if (!t->hidden[c]) {
			total += w[c];
			shown++;
		}
	return total + (shown ? 2 * (shown - 1) : 0);
}

void table_fit(struct table *t, size_t width, const int *drop, int cut)
{
	size_t w[TABLE_MAX_COLS], total;

	if (t->failed)
		return;
	table_widths(t, w);
	for (; drop && *drop >= 0 && (total = table_total(t, w)) > width; drop++)
		if ((size_t)*drop < t->ncols)
			t->hidden[*drop] = 1;
	total = table_total(t, w);
	if (total > width && cut >= 0 && (size_t)cut < t->ncols && !t->hidden[cut]) {
		size_t over = total - width;

		t->maxw[cut] = w[cut] > over + 8 ? w[cut] - over : 8;
	}
}

void table_render(struct table *t, struct buf *out)
{
	size_t w[TABLE_MAX_COLS], r, c, last = 0;
	const char *s;

	table_widths(t, w);
	for (c = 0; c < t->ncols; c++)
		if (!t->hidden[c])
			last = c;
	for (r = 0; r < t->nrows && !t->failed; r++) {
		for (c = 0; c < t->ncols; c++) {
			size_t n;

			if (t->hidden[c])
				continue;
			s = t->cells[r * t->ncols + c];
			s = s ? s : "";
			n = strlen(s);
			if (t->maxw[c] && n > t->maxw[c]) {
				/* cut: '~' and the tail */
				s += n - (t->maxw[c] - 1);
				buf_add(out, "~", 1);
				n = t->maxw[c];
			}
			if (c < last)
				buf_printf(out, "%s%*s", s, (int)(w[c] - n + 2), "");
			else
				buf_printf(out, "%s\n", s);
		}
	}
	if (t->failed)
		out->failed = true;
	for (r = 0; r < t->nrows * t->ncols; r++)
		free(t->cells[r]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
