// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * httpresp: a client's reading of one response (see httpresp.h).
 *
 * The head is copied into a fixed buffer inside the struct (its start never
 * moves, so codec/http1 resumes where it stopped: a head costs O(its length)
 * however it is split). The body goes through h1_body_feed in data-span
 * mode: framing is checked in place and each span of payload goes to the
 * sink, which either appends it to the body or cuts it at newlines. A line
 * event stops in the middle of a span; the rest of the span, which the
 * framing decoder has already counted, is the start of the next input
 * (span_left), because the caller feeds again from buf + used.
 */
#include "codec/httpresp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { PH_HEAD = 0, PH_BODY, PH_DONE, PH_FAILED };

/* First size of the payload buffer when the length is not known. */
#define HRESP_ACC_MIN 4096

static const struct h1_limits hresp_lim = {
	.max_start_line = HRESP_HEAD_MAX,
	.max_header_bytes = HRESP_HEAD_MAX,
	.max_headers = HRESP_MAX_HEADERS,
	.max_chunk_line = H1_DEFAULT_MAX_CHUNK_LINE, /* also bounds trailers: max_header_bytes, max_headers */
};

static int fail(struct hresp *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct hresp *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	r->err = err;
	r->phase = PH_FAILED;
	return err;
}

/* The errno for a codec/http1 error: its size limits are ours too. */
static int h1_errno(int h1err)
{
	switch (h1err) {
	case H1_E_START_LINE_TOO_LONG:
	case H1_E_HEADERS_TOO_LARGE:
	case H1_E_TOO_MANY_HEADERS:
	case H1_E_CHUNK_LINE_TOO_LONG:
	case H1_E_TRAILERS_TOO_LARGE:
		return -EMSGSIZE;
	}
	return -EPROTO;
}

void hresp_init(struct hresp *r, enum hresp_mode mode, size_t max_body, size_t max_line)
{
	memset(r, 0, offsetof(struct hresp, hdrs));
	r->why[0] = '\0';
	r->mode = mode;
	r->max_body = max_body ? max_body : HRESP_DEFAULT_MAX_BODY;
	r->max_line = max_line ? max_line : HRESP_DEFAULT_MAX_LINE;
	/* the sink adds 1 for the NUL: keep need = bound + 1 representable */
	if (r->max_body > SIZE_MAX / 2)
		r->max_body = SIZE_MAX / 2;
	if (r->max_line > SIZE_MAX / 2)
		r->max_line = SIZE_MAX / 2;
	r->phase = PH_HEAD;
	h1_response_init(&r->resp);
}

void hresp_free(struct hresp *r)
{
	free(r->acc);
	r->acc = NULL;
	r->acc_len = r->acc_cap = 0;
}

const char *hresp_error(const struct hresp *r)
{
	return r->phase == PH_FAILED ? r->why : "";
}

int hresp_status(const struct hresp *r)
{
	return r->phase == PH_HEAD ? 0 : r->resp.status;
}

/*
 * Makes room for need bytes (the NUL included) in the payload buffer, never
 * beyond limit (need <= limit, checked by the caller). Doubling: O(log) calls
 * per response, O(final size) bytes copied in all; exact: need itself (a
 * known Content-Length).
 */
static int reserve(struct hresp *r, size_t need, size_t limit, bool exact)
{
	size_t cap = r->acc_cap ? r->acc_cap : HRESP_ACC_MIN;
	char *p;

	if (need <= r->acc_cap)
		return 0;
	while (cap < need)
		cap = cap > limit / 2 ? limit : cap * 2;
	if (cap > limit)
		cap = limit;
	if (exact)
		cap = need;
	p = realloc(r->acc, cap);
	if (!p)
		return fail(r, -ENOMEM, "out of memory for a %zu-byte %s", cap, r->lines ? "line" : "body");
	r->acc = p;
	r->acc_cap = cap;
	return 0;
}

/*
 * The head is complete: checks what a client of ours accepts and sets up the
 * framing and the sink. 0, or the failure.
 */
static int head_done(struct hresp *r)
{
	const struct h1_response *h = &r->resp;
	const struct h1_header *ce;
	int64_t cl = h->content_length;

	if (h->tunnel)
		return fail(r, -EPROTO, "the server answered %d (a protocol switch or tunnel we did not ask for)",
			    h->status);
	if (h->flags & H1_F_TE_OTHER || ((h->flags & H1_F_HAS_TE) && !h->chunked && !h->no_body))
		return fail(r, -EPROTO, "the server used a transfer coding other than chunked (we asked for none)");
	ce = h1_find_header(h->headers, h->n_headers, "content-encoding", 16);
	if (ce && !(ce->value_len == 8 && strncasecmp(ce->value, "identity", 8) == 0))
		return fail(r, -EPROTO, "the server sent Content-Encoding '%.*s' (we asked for none)",
			    (int)(ce->value_len > 32 ? 32 : ce->value_len), ce->value);
	r->lines = r->mode == HRESP_LINES && h->status >= 200 && h->status <= 299;
	if (!r->lines && !h->no_body && !h->chunked && cl >= 0) {
		if ((uint64_t)cl > r->max_body)
			return fail(r, -EMSGSIZE, "the body (Content-Length %lld) is over max_body (%zu bytes)",
				    (long long)cl, r->max_body);
		/* the exact size at once: no doubling for a list of known length */
		if (reserve(r, (size_t)cl + 1, r->max_body + 1, true))
			return r->err;
	}
	h1_body_init_response(&r->body, h, &hresp_lim);
	r->body_done = h1_body_done(&r->body);
	r->phase = PH_BODY;
	return 0;
}

/*
 * Copies what fits of buf into the head buffer and parses. Returns 1 with
 * *used the bytes of buf that belong to the head when it is complete, 0 when
 * all of buf was taken and more is needed, or the failure.
 */
static int head_feed(struct hresp *r, const char *buf, size_t len, size_t *used)
{
	size_t prev = r->head_len, n = sizeof(r->head) - prev;
	int ret;

	if (n > len)
		n = len;
	memcpy(r->head + prev, buf, n);
	r->head_len += n;
	ret = h1_parse_response(r->head, r->head_len, H1_M_GET, &r->resp, r->hdrs, HRESP_MAX_HEADERS, &hresp_lim);
	if (ret == H1_INCOMPLETE) {
		if (r->head_len == sizeof(r->head))
			return fail(r, -EMSGSIZE, "the response head is over %d bytes", HRESP_HEAD_MAX);
		*used = n;
		return 0;
	}
	if (ret < 0)
		return fail(r, h1_errno(ret), "bad response head: %s", h1_error_reason(ret));
	*used = (size_t)ret - prev;
	return 1;
}

/*
 * Takes up to n payload bytes. Whole: appends them all (0). Lines: appends up
 * to the first newline; returns 1 when that completes a line (*took counts
 * the newline), else 0 with *took == n. Or the failure.
 */
static int sink(struct hresp *r, const char *p, size_t n, size_t *took)
{
	const char *nl;
	size_t k;

	if (!r->lines) {
		if (n > r->max_body - r->acc_len)
			return fail(r, -EMSGSIZE, "the body is over max_body (%zu bytes)", r->max_body);
		if (reserve(r, r->acc_len + n + 1, r->max_body + 1, false))
			return r->err;
		memcpy(r->acc + r->acc_len, p, n);
		r->acc_len += n;
		*took = n;
		return 0;
	}
	nl = memchr(p, '\n', n);
	k = nl ? (size_t)(nl - p) : n;
	if (k > r->max_line - r->acc_len)
		return fail(r, -EMSGSIZE, "a line is over max_line (%zu bytes without a newline)", r->max_line);
	if (reserve(r, r->acc_len + k + 1, r->max_line + 1, false))
		return r->err;
	memcpy(r->acc + r->acc_len, p, k);
	r->acc_len += k;
	if (!nl) {
		*took = n;
		return 0;
	}
	r->acc[r->acc_len] = '\0';
	r->line_ready = true;
	*took = k + 1;
	return 1;
}

static void fill(const struct hresp *r, struct hresp_out *out, bool with_data)
{
	out->status = hresp_status(r);
	out->whole = false;
	out->data = "";
	out->len = 0;
	if (with_data && r->acc) {
		out->data = r->acc;
		out->len = r->acc_len;
	}
}

/* The framing says the body is complete: END, or -EPIPE for an unfinished line. */
static int finish(struct hresp *r, struct hresp_out *out)
{
	if (r->lines && r->acc_len && !r->line_ready)
		return fail(r, -EPIPE, "the body ended inside a line (%zu bytes after the last newline)", r->acc_len);
	if (r->lines) {
		r->acc_len = 0; /* no line is pending: END carries no data */
		r->line_ready = false;
	} else if (r->acc) {
		r->acc[r->acc_len] = '\0';
	}
	r->phase = PH_DONE;
	fill(r, out, !r->lines);
	out->whole = !r->lines;
	return HRESP_END;
}

int hresp_feed(struct hresp *r, const char *buf, size_t len, size_t *used, struct hresp_out *out)
{
	size_t pos = 0, n = 0, consumed = 0, off = 0, dlen = 0, took = 0;
	int ret;

	*used = 0;
	fill(r, out, false);
	if (r->phase == PH_FAILED)
		return r->err;
	if (r->phase == PH_DONE) {
		fill(r, out, !r->lines);
		out->whole = !r->lines;
		return HRESP_END;
	}
	if (r->line_ready) {
		r->acc_len = 0;
		r->line_ready = false;
	}
	while (r->phase == PH_HEAD) {
		ret = head_feed(r, buf + pos, len - pos, &n);
		if (ret < 0)
			return ret;
		pos += n;
		if (ret == 0) {
			*used = pos;
			return HRESP_MORE;
		}
		if (r->resp.interim) {
			/* 1xx: the final response follows; start over after it */
			r->head_len = 0;
			h1_response_init(&r->resp);
			continue;
		}
		ret = head_done(r);
		if (ret < 0)
			return ret;
	}
	out->status = r->resp.status;
	for (;;) {
		if (r->span_left) {
			n = len - pos < r->span_left ? len - pos : r->span_left;
			ret = sink(r, buf + pos, n, &took);
			if (ret < 0)
				return ret;
			pos += took;
			r->span_left -= took;
			if (ret == 1) {
				*used = pos;
				fill(r, out, true);
				return HRESP_LINE;
			}
			if (r->span_left) {
				*used = pos; /* the input ended inside the span */
				return HRESP_MORE;
			}
		}
		if (r->body_done) {
			*used = pos;
			return finish(r, out);
		}
		if (pos == len) {
			*used = pos;
			return HRESP_MORE;
		}
		ret = h1_body_feed(&r->body, buf + pos, len - pos, &consumed, &off, &dlen);
		if (ret < 0)
			return fail(r, h1_errno(ret), "bad chunked body: %s", h1_error_reason(ret));
		/* in span mode the call stops right after a span: nothing follows it in consumed */
		pos += off;
		r->span_left = dlen;
		if (consumed > off + dlen)
			pos += consumed - off - dlen;
		if (ret == 1)
			r->body_done = true;
	}
}

int hresp_eof(struct hresp *r, struct hresp_out *out)
{
	fill(r, out, false);
	switch (r->phase) {
	case PH_FAILED:
		return r->err;
	case PH_DONE:
		fill(r, out, !r->lines);
		out->whole = !r->lines;
		return HRESP_END;
	case PH_HEAD:
		if (r->head_len == 0)
			return fail(r, -EPIPE, "the server closed the connection without answering");
		return fail(r, -EPIPE, "the server closed the connection inside the response head (%zu bytes)",
			    r->head_len);
	}
	if (r->line_ready) {
		r->acc_len = 0;
		r->line_ready = false;
	}
	if (r->span_left || h1_body_eof(&r->body) != 1)
		return fail(r, -EPIPE, "the server closed the connection inside the %s body",
			    r->body.kind == H1_BODY_CHUNKED ? "chunked" : "Content-Length");
	r->body_done = true;
	return finish(r, out);
}
