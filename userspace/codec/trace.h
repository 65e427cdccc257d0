/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * trace: distributed-trace context for HTTP requests. Reads W3C Trace Context
 * (traceparent, tracestate) and B3 (X-B3-TraceId / X-B3-SpanId /
 * X-B3-ParentSpanId / X-B3-Sampled / X-B3-Flags, and the single "b3" header),
 * writes them for the upstream, and encodes finished spans as Zipkin v2 JSON.
 *
 * Parsing is strict (lower-case hex of exact lengths; W3C version 00 exactly,
 * a higher version parsed by its first four fields as the spec says; all-zero
 * ids invalid); an invalid header is treated as absent. Parsers read only
 * value[0..len) and never allocate.
 * It may call: lib/buf.
 */
#ifndef WEFT_TRACE_H
#define WEFT_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

struct trace_ctx {
	uint8_t trace_id[16]; /* B3 64-bit trace ids are stored in the low 8 bytes (high 8 zero) */
	uint64_t span_id;     /* the caller's span: our span's parent */
	bool sampled;
	bool has_sampled; /* the sampling decision came with the request (else ours) */
	bool b3_trace64;  /* the B3 trace id was 64-bit: write it back as 16 hex digits */
};

/* traceparent "00-<32 hex>-<16 hex>-<2 hex>": 0 or -EINVAL. */
int trace_parse_traceparent(const char *value, size_t len, struct trace_ctx *out);
/* single-header b3 "<trace>-<span>[-<sampled>[-<parent>]]" or "0"/"1"/"d" (sampling only: -ENOENT, *out.sampled set). */
int trace_parse_b3(const char *value, size_t len, struct trace_ctx *out);
/* multi-header B3: each value may be NULL (absent). 0, -ENOENT (no trace id: only the sampling decision, if any, is set) or -EINVAL. */
int trace_parse_b3_multi(const char *trace_id, size_t tlen, const char *span_id, size_t slen, const char *sampled,
			 size_t smplen, const char *flags, size_t flen, struct trace_ctx *out);

/* Writers (NUL-terminated, return length or -ENOSPC). */
#define TRACE_TRACEPARENT_LEN 55
int trace_format_traceparent(char *out, size_t cap, const uint8_t trace_id[16], uint64_t span_id, bool sampled);
/* "b3" single header: trace-span-sampled[-parent] (parent omitted when 0). */
int trace_format_b3(char *out, size_t cap, const struct trace_ctx *c, uint64_t span_id, uint64_t parent_id);
/* lower-case hex, NUL-terminated: trace_hex writes 2*n digits and a NUL (out holds 2*n + 1), trace_hex64 16 and a NUL */
void trace_hex(char *out, const uint8_t *bytes, size_t n);
void trace_hex64(char out[17], uint64_t v);

/* A new random non-zero id (uses getrandom once per thread to seed a per-thread xoshiro/xorshift state). */
uint64_t trace_random_u64(void);
void trace_new_trace_id(uint8_t out[16]);

/* One finished span, as the exporter queues it (fixed size, no pointers). */
struct trace_span {
	uint8_t trace_id[16];
	uint64_t id, parent_id; /* parent 0: root */
	int64_t start_us;       /* Unix epoch microseconds */
	int64_t duration_us;
	uint8_t kind;     /* TRACE_KIND_* */
	char name[64];    /* "GET /path" truncated; Zipkin lower-cases names anyway */
	char service[64]; /* weft service the request went to */
	char route[64];
	char method[16];
	char path[128];    /* truncated, without the query */
	char endpoint[48]; /* remoteEndpoint "ip:port" for CLIENT spans; empty: none */
	uint16_t status;   /* HTTP status, 0: none (error before a response) */
	uint8_t attempt;   /* CLIENT spans: 1 = the first try */
	char error[48];    /* empty, or why it failed ("timeout", "connect refused", ...) */
};
#define TRACE_KIND_SERVER 0 /* the request as weft received it */
#define TRACE_KIND_CLIENT 1 /* one attempt towards an endpoint */

/*
 * Appends one Zipkin v2 span JSON object (no surrounding [ ]) to b:
 * {"traceId","id","parentId"(when non-zero),"kind":"SERVER"|"CLIENT","name",
 *  "timestamp","duration","localEndpoint":{"serviceName":local_service},
 *  "remoteEndpoint":{"ipv4"|"ipv6","port"} (CLIENT with endpoint),
 *  "tags":{"http.method","http.path","http.status_code","weft.service",
 *  "weft.route","weft.attempt","error"}}  (empty tags omitted). Strings are
 * JSON-escaped. traceId is 16 hex digits when its high 8 bytes are zero, else 32.
 */
void trace_span_json(struct buf *b, const struct trace_span *s, const char *local_service);

#endif
