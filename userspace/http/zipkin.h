/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * zipkin: exports finished spans to a Zipkin v2 collector over HTTP/1.1
 * (POST <path>, Content-Type: application/json, a JSON array of spans).
 *
 * Any thread may submit (zipkin_submit copies the span into a bounded ring
 * under a mutex: O(1), never blocks on the network, never allocates). The
 * loop given to zipkin_new (weftd's main loop) flushes: every flush_ms, or
 * as soon as batch_size spans wait (an ev_async wakes it), it takes up to
 * batch_size spans, encodes them, and POSTs them on a non-blocking socket
 * (SO_MARK set so weft never intercepts its own export), one request in
 * flight at a time, each bounded by a timeout (flush_ms * 5, at least 1 s).
 * A full ring drops the new span and counts it; a failed POST (connect
 * refused, timeout, non-2xx) drops that batch and counts it (no retry: spans
 * are best effort, and a dead collector must not grow memory).
 * It may call: codec/trace, lib/addr, lib/buf, lib/log, libev.
 */
#ifndef WEFT_ZIPKIN_H
#define WEFT_ZIPKIN_H

#include <ev.h>
#include <stdint.h>

#include "lib/addr.h"
#include "codec/trace.h"

struct zipkin;

struct zipkin_opts {
	struct weft_sockaddr collector;
	const char *path;         /* copied */
	const char *service_name; /* copied: localEndpoint.serviceName */
	uint32_t queue_size;      /* spans the ring holds */
	uint32_t batch_size;      /* spans per POST */
	uint32_t flush_ms;
	uint32_t mark; /* SO_MARK of the export socket (0: none) */
};

/* NULL + errno on failure. Starts its timer and async watcher on loop. */
struct zipkin *zipkin_new(struct ev_loop *loop, const struct zipkin_opts *o);
/* Thread-safe; z may be NULL (no exporter: a no-op). */
void zipkin_submit(struct zipkin *z, const struct trace_span *s);

struct zipkin_stats {
	uint64_t submitted;      /* spans accepted into the ring */
	uint64_t dropped_full;   /* spans dropped: ring full */
	uint64_t dropped_failed; /* spans dropped: their POST failed */
	uint64_t exported;       /* spans the collector accepted (2xx) */
	uint64_t posts_failed;   /* POSTs that failed */
	uint32_t queued;         /* in the ring now */
};
void zipkin_get_stats(struct zipkin *z, struct zipkin_stats *st);

/* Stops the watchers, aborts an in-flight POST, frees (queued spans are lost). Must run on the loop's thread. */
void zipkin_free(struct zipkin *z);

#endif
