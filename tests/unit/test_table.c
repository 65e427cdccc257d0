// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/lib/table.c: aligned columns; table_fit leaves columns out in
 * the order given while the table is too wide, then cuts one column's cells
 * ('~' and the tail); a table that fits is unchanged; NULL cells print "-".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/table.h"

static const char *const hdr[] = { "NAME", "ADDRESS", "STATE", "NOTE" };

static void fill(struct table *t)
{
	const char *r1[] = { "shop/a-rather-long-service-name:8080", "127.0.0.1:8080", "ready", "first" };
	const char *r2[] = { "db", NULL, "ejected", "second row, longer note" };

	table_init(t, 4, hdr);
	table_row(t, r1);
	table_row(t, r2);
}

static char *render(struct table *t)
{
	struct buf out = { 0 };

	table_render(t, &out);
	buf_add(&out, "", 1);
	return out.p;
}

static void test_fit(void **state)
{
	static const int drop[] = { 3, 1, -1 };
	struct table t;
	char *s;

	(void)state;
	fill(&t);
	s = render(&t);
	assert_string_equal(s,
			    "NAME                                  ADDRESS         STATE    NOTE\n"
			    "shop/a-rather-long-service-name:8080  127.0.0.1:8080  ready    first\n"
			    "db                                    -               ejected  second row, longer note\n");
	free(s);

	/* 61 columns: NOTE goes, then it fits */
	fill(&t);
	table_fit(&t, 61, drop, 0);
	s = render(&t);
	assert_string_equal(s, "NAME                                  ADDRESS         STATE\n"
			       "shop/a-rather-long-service-name:8080  127.0.0.1:8080  ready\n"
			       "db                                    -               ejected\n");
	free(s);

	/* 30 columns: NOTE and ADDRESS go, NAME is cut to what is left (keeping its tail) */
	fill(&t);
	table_fit(&t, 30, drop, 0);
	s = render(&t);
	assert_string_equal(s, "NAME                   STATE\n"
			       "~ng-service-name:8080  ready\n"
			       "db                     ejected\n");
	free(s);

	/* never below 8 */
	fill(&t);
	table_fit(&t, 5, drop, 0);
	s = render(&t);
	assert_non_null(strstr(s, "~me:8080  ready\n"));
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
