// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* libFuzzer: the admin API's request-head parser and query decoding (bytes from any local client). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *method, *path, *query;
	char *buf;
	int r;

	if (size > ADMIN_MAX_REQUEST)
		size = ADMIN_MAX_REQUEST;
	/* admin.c reads into a buffer of ADMIN_MAX_REQUEST + 1 and NUL-terminates */
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	r = admin_parse_request(buf, size, &method, &path, &query);
	if (r == 0) {
		/* the outputs are NUL-terminated strings inside buf */
		if (strlen(method) == 0 || path[0] != '/')
			abort();
		(void)strlen(query);
		/* what handlers do with the query: look keys up, decoded */
		{
			char v[64];
			static const char *const keys[] = { "format", "cgroup", "" };
			size_t k;

			for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
				if (admin_query_get(query, keys[k], v, sizeof(v)) && strlen(v) >= sizeof(v))
					abort();
		}
	}
	free(buf);
	return 0;
}
