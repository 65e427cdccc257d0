/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * httpcall: one blocking HTTP/1.1 request for command-line tools (weftctl and
 * its checks talking to weftd's admin API): connect, send the request with
 * Connection: close, read until the server closes, split status and body.
 * Bounded in time (timeout_ms per wait: connect, each send, each read) and in
 * size (max_response bytes). Not for weftd: it blocks.
 * It may call: lib/addr, lib/buf.
 */
#ifndef WEFT_HTTPCALL_H
#define WEFT_HTTPCALL_H

#include <stddef.h>

#include "lib/addr.h"
#include "lib/buf.h"

/*
 * method and target ("/ready") to a; fills *status and appends the body to
 * body (the caller frees it). 0, or -errno: the connect's or a read's errno,
 * -ETIMEDOUT (a wait over timeout_ms), -EFBIG (over max_response), -E2BIG
 * (the target does not fit the request buffer), -EPROTO (not an HTTP/1.x
 * answer).
 */
int hcall(const struct weft_sockaddr *a, const char *method, const char *target, int timeout_ms, size_t max_response,
	  int *status, struct buf *body);

#endif
