/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * deadline: reading and writing the request deadline headers weft honours.
 * All times are nanoseconds since the Unix epoch (CLOCK_REALTIME): deadlines
 * cross hosts, so they are wall-clock; hosts must keep NTP time.
 *
 *   weft-deadline: <unix milliseconds>     absolute, 1*19DIGIT, e.g. 1795786800123
 *   grpc-timeout: 1*8DIGIT unit            relative (gRPC over HTTP/2 spec):
 *                                          H hours, M minutes, S seconds,
 *                                          m millis, u micros, n nanos
 *   l5d-ctx-deadline: base64(16 bytes)     Linkerd 1 / Finagle Deadline context:
 *                                          big-endian int64 timestamp ns, then
 *                                          int64 deadline ns (both since epoch);
 *                                          standard base64 with padding
 *
 * Parsers accept exactly that grammar (no signs, no spaces inside, no
 * overflow: values that do not fit are rejected) and return 0 with *out set,
 * or -EINVAL. They read only value[0..len). The caller treats an invalid
 * header as absent (and may count it).
 * It may call: libc only.
 */
#ifndef WEFT_DEADLINE_H
#define WEFT_DEADLINE_H

#include <stddef.h>
#include <stdint.h>

/* weft-deadline: *out_ns = absolute deadline. */
int deadline_parse_weft(const char *value, size_t len, int64_t *out_ns);
/* grpc-timeout: *out_ns = relative timeout (>= 0). */
int deadline_parse_grpc_timeout(const char *value, size_t len, int64_t *out_ns);
/* l5d-ctx-deadline: *out_ns = the deadline field (absolute). */
int deadline_parse_l5d(const char *value, size_t len, int64_t *out_ns);

/*
 * Writers: NUL-terminated value (no header name) into out[0..cap); return the
 * length, or -ENOSPC. Sizes below always suffice.
 */
#define DEADLINE_VALUE_MAX 32
/* abs_ns rounded down to milliseconds. */
int deadline_format_weft(char *out, size_t cap, int64_t abs_ns);
/* remaining ns (clamped to >= 0) in the finest unit that fits 8 digits, rounded down (250 ms: "250000u", 1999999999 ns: "1999999u", 0: "0n"). */
int deadline_format_grpc_timeout(char *out, size_t cap, int64_t remaining_ns);
/* timestamp now_ns and deadline abs_ns, base64 of the 16 bytes (24 characters). */
int deadline_format_l5d(char *out, size_t cap, int64_t now_ns, int64_t abs_ns);

#endif
