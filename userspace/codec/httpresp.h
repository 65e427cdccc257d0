/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * httpresp: one HTTP/1.1 response to a GET, read as a client reads it (the
 * Kubernetes API client, kube/kapi): the head, the framing and the payload,
 * either whole or cut into newline-terminated lines (a watch stream). Built
 * on codec/http1 (the strict parser the proxy uses, fuzzed on its own), which
 * does the head and the framing: Content-Length, chunked (strict hex sizes,
 * extensions checked and ignored, trailers checked and ignored, each line
 * bounded) or until the server closes. This module adds what a client needs
 * on top: the bounds, the payload sink, and one answer per event.
 *
 * Pure: bytes in, events out. No I/O, no clock, no callbacks (the caller
 * acts on each event and may stop at any point, which is what makes
 * cancelling from a callback simple). It allocates only the payload buffer,
 * grown by doubling up to its bound (never per byte or per read), plus a
 * fixed struct.
 *
 * Use, for each block of bytes read:
 *   for (;;) {
 *     ev = hresp_feed(r, p, n, &used, &out); p += used; n -= used;
 *     if (ev < 0)          -> failed for good: hresp_error(r) says what
 *     if (ev == HRESP_MORE) -> everything taken; read more
 *     if (ev == HRESP_LINE) -> out.data[0..out.len) is a line, '\n' removed
 *     if (ev == HRESP_END)  -> the response is complete (out.whole: the body)
 *   }
 * Call again after LINE even when n is 0: the body may have ended with it.
 * Bytes after END are not part of the response (ignored: kapi sends
 * Connection: close). When the server closes cleanly (TLS close_notify),
 * call hresp_eof(): it ends a close-delimited body, and is -EPIPE anywhere
 * else.
 *
 * Bounds: the head (status line, fields, blank line) within HRESP_HEAD_MAX
 * bytes and HRESP_MAX_HEADERS fields; a whole body within max_body bytes
 * (a Content-Length above it fails at the head, before any body byte); a
 * line within max_line bytes without its '\n' (it fails as soon as the
 * partial line passes the bound, not when its newline comes). Memory: the
 * struct (about 19 KiB) plus at most max_body + 1 or max_line + 1 bytes.
 *
 * Refused: anything codec/http1 refuses in a response (-EPROTO, or -EMSGSIZE
 * for its size limits), a status other than 1xx interim, 2xx to 5xx final
 * (101: we never ask to switch), a transfer coding other than chunked and a
 * Content-Encoding other than identity (we ask for neither), and in lines
 * mode a body whose last bytes are not a newline (-EPIPE: a watch writes
 * one JSON object and '\n' per event, so an unterminated tail is an event
 * the server did not finish, whatever the framing says). Interim 1xx heads
 * are skipped.
 * It may call: codec/http1.
 */
#ifndef WEFT_HTTPRESP_H
#define WEFT_HTTPRESP_H

#include <stdbool.h>
#include <stddef.h>

#include "codec/http1.h"

#define HRESP_HEAD_MAX 16384
#define HRESP_MAX_HEADERS 64
#define HRESP_ERR_MAX 160

enum hresp_mode {
	HRESP_WHOLE = 0, /* the body, once, at the end */
	HRESP_LINES,     /* each line as it completes; a non-2xx body whole, for its Status */
};

enum hresp_ev {
	HRESP_MORE = 0, /* all the input was taken; nothing else to report */
	HRESP_LINE,     /* out.data/out.len: a line */
	HRESP_END,      /* the response ended; out.whole says whether out.data is the body */
};

struct hresp_out {
	const char *data; /* NUL-terminated at data[len]; valid until the next call */
	size_t len;
	int status; /* the final status, once the head is in (0 before) */
	bool whole; /* END: data/len is the whole body (whole mode, or a non-2xx answer) */
};

/* Private: the reader's state. Zero it with hresp_init, free with hresp_free. */
struct hresp {
	enum hresp_mode mode;
	size_t max_body, max_line;
	unsigned char phase;
	bool lines;      /* this response is delivered as lines (lines mode, 2xx) */
	bool body_done;  /* the framing says the body is complete */
	bool line_ready; /* acc holds a line already delivered */
	int err;
	size_t span_left; /* payload bytes at the start of the next input, framed already */
	char *acc;        /* the body, or the line being assembled */
	size_t acc_len, acc_cap;
	struct h1_response resp;
	struct h1_body body;
	size_t head_len;
	struct h1_header hdrs[HRESP_MAX_HEADERS];
	char head[HRESP_HEAD_MAX];
	char why[HRESP_ERR_MAX];
};

/* max_body / max_line 0: the defaults below. */
#define HRESP_DEFAULT_MAX_BODY ((size_t)64 << 20)
#define HRESP_DEFAULT_MAX_LINE ((size_t)4 << 20)
void hresp_init(struct hresp *r, enum hresp_mode mode, size_t max_body, size_t max_line);
/* Frees the payload buffer; r may be reused after hresp_init. */
void hresp_free(struct hresp *r);

/*
 * Takes bytes of the response. Returns an enum hresp_ev (>= 0) with *used
 * the bytes of buf it took (all of them for HRESP_MORE; those up to the
 * line's newline for HRESP_LINE; those up to the end of the response for
 * HRESP_END), or a negative errno, sticky: -EPROTO (not a response we
 * accept), -EMSGSIZE (a bound), -EPIPE (lines mode: the body ended inside a
 * line), -ENOMEM. out is filled for every event. After END, END again.
 */
int hresp_feed(struct hresp *r, const char *buf, size_t len, size_t *used, struct hresp_out *out);

/*
 * The server closed cleanly after everything fed so far. HRESP_END when that
 * ends the response (close-delimited body, or it had ended), else -EPIPE
 * (the head or the body is incomplete) or the sticky error.
 */
int hresp_eof(struct hresp *r, struct hresp_out *out);

/* One line for a log: why it failed ("" when it did not). */
const char *hresp_error(const struct hresp *r);
/* The final status, or 0 before the head is complete. */
int hresp_status(const struct hresp *r);

#endif
