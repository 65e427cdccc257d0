/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * grpc: the parts of gRPC over HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md and
 * doc/statuscodes.md) a proxy reads and writes. Pure: no I/O, no allocation.
 *
 * - A request is gRPC when its content-type is "application/grpc", alone or
 *   followed by '+' (a message format: "+proto", "+json") or ';'.
 * - grpc-status: 1*DIGIT, 0..16 known; grpc_status_parse takes any decimal
 *   up to 999 (an unknown code is still a code) and refuses the rest.
 * - A status weft makes itself (no endpoint, shed, deadline) goes out as a
 *   trailers-only response: HTTP 200, content-type application/grpc,
 *   grpc-status and grpc-message (percent-encoded as the spec says: bytes
 *   outside 0x20..0x7e, and '%').
 * - An upstream that answers gRPC with a non-200 HTTP status and no
 *   grpc-status: the code comes from the HTTP status (the spec's table).
 */
#ifndef WEFT_GRPC_H
#define WEFT_GRPC_H

#include <stdbool.h>
#include <stddef.h>

enum grpc_code {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_DATA_LOSS = 15,
	GRPC_UNAUTHENTICATED = 16,
	GRPC_CODES = 17
};

/* "application/grpc", "application/grpc+proto", "application/grpc;charset=..."; not "application/grpc-web". */
bool grpc_is_content_type(const char *v, size_t len);

/* 0..999 from a grpc-status value; -1 when it is not 1-3 digits. */
int grpc_status_parse(const char *v, size_t len);

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "UNKNOWN_CODE" beyond 16 (metric label values). */
const char *grpc_code_name(int code);

/* The code for an HTTP status seen where gRPC was expected (no grpc-status). */
int grpc_code_of_http(int http_status);

/* msg percent-encoded into out (NUL-terminated, cut at a whole escape); the length. */
size_t grpc_message_encode(const char *msg, char *out, size_t cap);

#endif
