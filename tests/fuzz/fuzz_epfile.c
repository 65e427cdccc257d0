// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: endpoint files (codec/epfile). Another tool writes them (a
 * template, a script), so whatever they hold must give endpoints or
 * messages, never a crash, a leak or a hang. Beyond that, on every input:
 * - success has no message and at most EPFILE_MAX_ENDPOINTS endpoints, each
 *   with a port, a weight of 1..1000, a priority of 0..65535, a valid zone
 *   or none, a line, and no address twice;
 * - failure has 1..EPFILE_MAX_ERRORS + 1 messages, each one line starting
 *   "f.conf:", and no endpoints;
 * - what parsed, written back in the lines format, parses to the same
 *   endpoints (the two formats agree, and the writer of weft's own tests
 *   can trust the reader).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/epfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5 leaks a rejected string token's buffer (see fuzz_config.c); only its scanner is excused. */
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static void check_ok(const struct ep_entry *e, size_t n)
{
	size_t i, j;

	if (n > EPFILE_MAX_ENDPOINTS)
		abort();
	for (i = 0; i < n; i++) {
		if (!addr_port(&e[i].addr) || e[i].weight < 1 || e[i].weight > EP_WEIGHT_MAX ||
		    e[i].priority > EP_PRIORITY_MAX || !e[i].line)
			abort();
		if (e[i].zone[0] && ep_zone_problem(e[i].zone))
			abort();
		for (j = 0; j < i; j++)
			if (addr_equal(&e[i].addr, &e[j].addr))
				abort();
	}
}

/* The endpoints written back as lines, parsed again: the same endpoints, in order. */
static void check_roundtrip(const struct ep_entry *e, size_t n)
{
	struct ep_entry *again = NULL;
	size_t m = 0, i, len = 0;
	char *t, ab[ADDR_STRLEN];

	t = malloc(n * 128 + 1);
	if (!t)
		return;
	t[0] = '\0';
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(t + len, "%s %u %s %u\n", addr_format(&e[i].addr, ab, sizeof(ab)), e[i].weight,
				       e[i].zone[0] ? e[i].zone : "-", e[i].priority);
	if (epfile_parse(t, len, "again", &again, &m, NULL) != 0 || m != n)
		abort();
	for (i = 0; i < n; i++)
		if (!addr_equal(&again[i].addr, &e[i].addr) || again[i].weight != e[i].weight ||
		    again[i].priority != e[i].priority || strcmp(again[i].zone, e[i].zone))
			abort();
	free(again);
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct epfile_errors errs = { 0 };
	struct ep_entry *eps = NULL;
	size_t n = 0, i;
	char *text;
	int r;

	if (size > EPFILE_MAX_BYTES + 1)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	r = epfile_parse(text, size, "f.conf", &eps, &n, &errs);
	if (r == 0) {
		if (errs.n)
			abort();
		check_ok(eps, n);
		check_roundtrip(eps, n);
	} else {
		if (r != -EINVAL || eps || n || !errs.n || errs.n > EPFILE_MAX_ERRORS + 1)
			abort();
		for (i = 0; i < errs.n; i++)
			if (strncmp(errs.msgs[i], "f.conf:", 7) || strchr(errs.msgs[i], '\n') ||
			    strchr(errs.msgs[i], '\r'))
				abort();
	}
	free(eps);
	epfile_errors_free(&errs);
	free(text);
	return 0;
}
