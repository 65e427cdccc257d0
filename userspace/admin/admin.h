/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * admin: a small HTTP/1.1 server for the admin API, in weftd's event loop.
 * One request per connection (Connection: close), bounded everywhere: request
 * head ADMIN_MAX_REQUEST bytes (431 beyond), ADMIN_MAX_CONNS connections at
 * once (503 beyond), ADMIN_TIMEOUT_S to send the request (408). Routing is
 * table-driven (admin_route); URL decoding and query parsing live here too, so
 * the admin fuzz target reaches them. It may call: codec/http1, lib/.
 */
#ifndef WEFT_ADMIN_H
#define WEFT_ADMIN_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/addr.h"

#define ADMIN_MAX_REQUEST 8192
#define ADMIN_MAX_CONNS 64
#define ADMIN_TIMEOUT_S 10.0

struct admin;
struct buf;

struct admin_response {
	int status;        /* 200 unless set */
	const char *ctype; /* "application/json" unless set */
	struct buf *body;  /* empty buffer to fill */
	/* admin_resp_stream's (private) */
	struct admin_conn *conn;
	struct admin_stream *stream;
};

/*
 * A streamed answer (GET /tap): the handler calls admin_resp_stream; the
 * head goes out with no Content-Length (the body ends when the connection
 * closes), then whatever the owner writes, for as long as it likes. The
 * client closing (or resetting) the connection calls on_close, once, after
 * which the stream is gone. At most ADMIN_STREAM_MAX_PENDING bytes wait
 * for a slow reader: a write beyond that is refused (-ENOBUFS), never
 * queued, so the owner drops and counts instead of growing.
 */
#define ADMIN_STREAM_MAX_PENDING (256u << 10)
struct admin_stream;
struct admin_stream *admin_resp_stream(struct admin_response *r, void (*on_close)(void *arg), void *arg);
int admin_stream_write(struct admin_stream *s, const void *p, size_t n);
/* The owner ends it: what is pending is sent, then the connection closes; no on_close. */
void admin_stream_end(struct admin_stream *s);

/*
 * Called once per complete request. method and path are NUL-terminated;
 * path excludes the query string, query is "" when absent.
 */
typedef void (*admin_handler_fn)(void *arg, const char *method, const char *path, const char *query,
				 struct admin_response *resp);

int admin_start(struct ev_loop *loop, const struct weft_sockaddr *addr, admin_handler_fn fn, void *arg,
		struct admin **out, char *err, size_t errlen);
void admin_free(struct admin *a);

/* One route of the API: handler for method + path (query: "" when absent). */
struct admin_route {
	const char *path;
	const char *method;
	void (*fn)(void *arg, const char *query, struct admin_response *resp);
};
/*
 * Calls the route for path, or answers 405 ("use GET") for another method,
 * or 404 listing the routes (GET ones first, then POST), in the table's order.
 */
void admin_route(const struct admin_route *routes, size_t n, void *arg, const char *method, const char *path,
		 const char *query, struct admin_response *resp);
/* A text/plain answer: status, then the formatted line (with its newline). */
void admin_resp_text(struct admin_response *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Decodes %XX and '+' in place; false on a malformed escape (or an encoded NUL). */
bool admin_url_decode(char *s);
/* Finds key=value in a query string, decoded into val; false when absent, too long or malformed. */
bool admin_query_get(const char *query, const char *key, char *val, size_t len);

/* Parses the request head in buf[0..len): 0 and fills method/path/query, -EAGAIN if incomplete,
 * or an HTTP status (400, 414, 431, 505) when it is malformed. Exposed for tests and fuzzing. */
int admin_parse_request(char *buf, size_t len, char **method, char **path, char **query);

#endif
