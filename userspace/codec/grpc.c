// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* grpc: status codes and headers of gRPC over HTTP/2 (grpc.h). */
#include "codec/grpc.h"

#include <string.h>
#include <strings.h>

bool grpc_is_content_type(const char *v, size_t len)
{
	static const char ct[] = "application/grpc";
	const size_t n = sizeof(ct) - 1;

	if (len < n || strncasecmp(v, ct, n) != 0)
		return false;
	return len == n || v[n] == '+' || v[n] == ';';
}

int grpc_status_parse(const char *v, size_t len)
{
	int code = 0;
	size_t i;

	if (len == 0 || len > 3)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		code = code * 10 + (v[i] - '0');
	}
	return code;
}

const char *grpc_code_name(int code)
{
	static const char *const names[GRPC_CODES] = {
		"OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
		"ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
		"DATA_LOSS", "UNAUTHENTICATED",
	};

	return code >= 0 && code < GRPC_CODES ? names[code] : "UNKNOWN_CODE";
}

int grpc_code_of_http(int s)
{
	switch (s) {
	case 400:
		return GRPC_INTERNAL;
	case 401:
		return GRPC_UNAUTHENTICATED;
	case 403:
		return GRPC_PERMISSION_DENIED;
	case 404:
		return GRPC_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return GRPC_UNAVAILABLE;
	default:
		return GRPC_UNKNOWN;
	}
}

size_t grpc_message_encode(const char *msg, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	if (!cap)
		return 0;
	for (; *msg; msg++) {
		unsigned char c = (unsigned char)*msg;

		if (c >= 0x20 && c <= 0x7e && c != '%') {
			if (o + 1 >= cap)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= cap)
				break;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return o;
}
