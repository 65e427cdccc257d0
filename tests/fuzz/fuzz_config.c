// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target for the config loader: arbitrary bytes -> cfg_load_string.
 * A config is outside input (a file an operator wrote, a ConfigMap), so
 * whatever it holds must give messages, never a crash, a leak or a hang.
 *
 * Every message must be one line "NAME:..." (or the "more" line): the
 * --check output is parsed by scripts, so a message that breaks the format is
 * a bug too, and aborts here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/*
 * libconfig 1.5 leaks the text of a string token that its parser rejects
 * (the grammar has no %destructor): `ca = 0e "/";` loses the buffer of "/",
 * `x""` the one byte of "". Not ours to fix (a failed reload in weftd loses
 * those few bytes). Only the scanner's allocation sites are excused, so a
 * leak of anything else (settings, our own structures) is still found. The
 * corpus files libconfig-*-leak.conf keep this honest.
 */
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_errors errs = { 0 };
	struct weft_config *c = NULL;
	char *text;
	size_t i;
	int r;

	/* libconfig reads a C string: the input stops at its first NUL, as a file's would be refused. */
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	r = cfg_load_string(text, "f.conf", &c, &errs);
	if (r == 0 && (!c || errs.n))
		abort();
	if (r != 0 && (c || !errs.n))
		abort();
	if (errs.n > CFG_MAX_ERRORS + 1)
		abort();
	for (i = 0; i < errs.n; i++) {
		const char *m = errs.msgs[i];

		if (strncmp(m, "f.conf:", 7) && strcmp(m, "... more errors not shown"))
			abort();
		if (strchr(m, '\n') || strchr(m, '\r'))
			abort();
	}
	if (c) {
		/* What a successful load promises its users. */
		for (i = 0; i < c->n_services; i++) {
			const struct cfg_service *s = &c->services[i];
			size_t j;

			if (!s->name || !s->n_addrs || s->n_addrs > CFG_MAX_SVC_ADDRS ||
			    s->n_endpoints > CFG_MAX_ENDPOINTS)
				abort();
			for (j = 0; j < s->n_addrs; j++)
				if (!addr_port(&s->addrs[j]))
					abort();
			for (j = 0; j < s->n_endpoints; j++)
				if (!addr_port(&s->endpoints[j].addr) || s->endpoints[j].weight < 1 ||
				    s->endpoints[j].weight > 1000)
					abort();
		}
		if (!c->outbound_port || !c->mark || c->mark > 0x7fffffff || c->bpf_pin_path[0] != '/')
			abort();
	}
	cfg_free(c);
	cfg_errors_free(&errs);
	free(text);
	return 0;
}
