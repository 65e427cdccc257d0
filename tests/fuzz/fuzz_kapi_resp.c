// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: codec/httpresp, the Kubernetes API client's response reader
 * (bytes from the API server, or from whatever answers at its address).
 *
 * Input: byte 0 picks the options (bit 0: the server closes cleanly after
 * the bytes; bits 1-2: max_line 1, 7, 64 or 4096; bits 3-4: max_body 16,
 * 256, 4096 or 1 MiB), byte 1 seeds the split sizes, the rest is the
 * response.
 *
 * Besides crashes and sanitizer reports, it aborts when:
 *  - feeding at once, in pieces, or byte by byte gives different events,
 *    lines, bodies or errors, in either mode;
 *  - an event breaks its contract: a line holds a newline, passes max_line,
 *    or is not NUL-terminated; a body passes max_body; used passes the input;
 *    MORE leaves input untaken; an error is not sticky;
 *  - the two modes disagree: a 2xx body read whole must be exactly the lines
 *    each followed by '\n' (or lines mode failed for a line over max_line, or
 *    for an unterminated last line, and the body shows why); a non-2xx answer
 *    is the same whole body in both modes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/httpresp.h"

#define CHECK(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

/* What one run saw: the events in order (a tag byte, then the length and bytes) and the end. */
struct trace {
	unsigned char *p;
	size_t len, cap;
	int end; /* HRESP_END, an error, or HRESP_MORE when the input ran out */
	int status;
	bool whole;
	char *body;
	size_t body_len;
	unsigned char *lines; /* the lines, each followed by '\n' */
	size_t lines_len;
};

static void put(struct trace *t, const void *d, size_t n)
{
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap : 256;

		while (cap < t->len + n)
			cap *= 2;
		t->p = realloc(t->p, cap);
		CHECK(t->p);
		t->cap = cap;
	}
	memcpy(t->p + t->len, d, n);
	t->len += n;
}

static void trace_free(struct trace *t)
{
	free(t->p);
	free(t->body);
	free(t->lines);
}

/* Splits: 0 = at once, 1 = byte by byte, else piece sizes from seed. */
static void run(const uint8_t *buf, size_t n, enum hresp_mode mode, size_t max_body, size_t max_line, bool eof, int how,
		uint8_t seed, struct trace *t)
{
	struct hresp *r = malloc(sizeof(*r));
	struct hresp_out out;
	size_t off = 0, used;
	uint32_t x = seed * 2654435761u + 1;
	int ev = HRESP_MORE;
	bool ended = false;

	CHECK(r);
	memset(t, 0, sizeof(*t));
	hresp_init(r, mode, max_body, max_line);
	while (!ended && off < n) {
		size_t piece = how == 0 ? n - off : how == 1 ? 1 : 1 + (x >> 24) % 97;
		const char *p;
		size_t left;

		x = x * 1103515245u + 12345u;
		if (piece > n - off)
			piece = n - off;
		p = (const char *)buf + off;
		left = piece;
		for (;;) {
			ev = hresp_feed(r, p, left, &used, &out);
			CHECK(used <= left);
			p += used;
			left -= used;
			if (ev < 0 || ev == HRESP_END) {
				ended = true;
				break;
			}
			if (ev == HRESP_MORE) {
				CHECK(left == 0);
				break;
			}
			CHECK(ev == HRESP_LINE);
			CHECK(out.len <= max_line);
			CHECK(out.data[out.len] == '\0');
			CHECK(!memchr(out.data, '\n', out.len));
			CHECK(out.status >= 200 && out.status <= 299);
			put(t, "L", 1);
			put(t, &out.len, sizeof(out.len));
			put(t, out.data, out.len);
			t->lines = realloc(t->lines, t->lines_len + out.len + 1);
			CHECK(t->lines);
			memcpy(t->lines + t->lines_len, out.data, out.len);
			t->lines_len += out.len;
			t->lines[t->lines_len++] = '\n';
		}
		off += piece;
	}
	if (!ended && eof) {
		ev = hresp_eof(r, &out);
		CHECK(ev < 0 || ev == HRESP_END);
	}
	t->end = ev;
	if (ev == HRESP_END) {
		t->status = out.status;
		t->whole = out.whole;
		CHECK(out.status >= 100 && out.status <= 599);
		if (out.whole) {
			CHECK(out.len <= max_body);
			CHECK(out.data[out.len] == '\0');
			t->body = malloc(out.len + 1);
			CHECK(t->body);
			memcpy(t->body, out.data, out.len);
			t->body_len = out.len;
		} else {
			CHECK(mode == HRESP_LINES && out.len == 0);
		}
		/* END is sticky, and takes nothing more */
		CHECK(hresp_feed(r, "x", 1, &used, &out) == HRESP_END && used == 0);
	} else if (ev < 0) {
		CHECK(ev == -EPROTO || ev == -EMSGSIZE || ev == -EPIPE || ev == -ENOMEM);
		CHECK(hresp_error(r)[0] != '\0');
		CHECK(hresp_feed(r, "x", 1, &used, &out) == ev);
		CHECK(hresp_eof(r, &out) == ev);
	}
	hresp_free(r);
	free(r);
}

static bool same(const struct trace *a, const struct trace *b)
{
	return a->end == b->end && a->len == b->len && (!a->len || memcmp(a->p, b->p, a->len) == 0) &&
	       a->status == b->status && a->whole == b->whole && a->body_len == b->body_len &&
	       (!a->body_len || memcmp(a->body, b->body, a->body_len) == 0);
}

/* Some line of body (n bytes) is longer than max_line. */
static bool has_long_line(const char *body, size_t n, size_t max_line)
{
	size_t start = 0, i;

	for (i = 0; i <= n; i++) {
		if (i == n || body[i] == '\n') {
			if (i - start > max_line)
				return true;
			start = i + 1;
		}
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t lines_opt[4] = { 1, 7, 64, 4096 };
	static const size_t bodies_opt[4] = { 16, 256, 4096, 1 << 20 };
	struct trace w0, w1, l0, l1, l2;
	size_t max_line, max_body, n;
	const uint8_t *buf;
	uint8_t sel, seed;
	uint8_t *copy;
	bool eof;

	if (size < 2)
		return 0;
	sel = data[0];
	seed = data[1];
	eof = sel & 1;
	max_line = lines_opt[(sel >> 1) & 3];
	max_body = bodies_opt[(sel >> 3) & 3];
	n = size - 2;
	/* an exact-size copy: ASan flags any read past the end */
	copy = malloc(n ? n : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 2, n);
	buf = copy;

	run(buf, n, HRESP_WHOLE, max_body, max_line, eof, 0, seed, &w0);
	run(buf, n, HRESP_WHOLE, max_body, max_line, eof, 2, seed, &w1);
	CHECK(same(&w0, &w1));
	CHECK(w0.len == 0); /* whole mode has no line events */
	run(buf, n, HRESP_LINES, max_body, max_line, eof, 0, seed, &l0);
	run(buf, n, HRESP_LINES, max_body, max_line, eof, 2, seed, &l1);
	CHECK(same(&l0, &l1));
	if (n <= 4096) {
		run(buf, n, HRESP_LINES, max_body, max_line, eof, 1, seed, &l2);
		CHECK(same(&l0, &l2));
		trace_free(&l2);
	}

	/* the two modes agree */
	if (w0.end == HRESP_END && (w0.status < 200 || w0.status > 299)) {
		CHECK(l0.end == HRESP_END && l0.whole && l0.status == w0.status);
		CHECK(l0.body_len == w0.body_len && (!w0.body_len || memcmp(l0.body, w0.body, w0.body_len) == 0));
	} else if (w0.end == HRESP_END) {
		/* the lines so far are always a prefix of the body */
		CHECK(l0.lines_len <= w0.body_len && (!l0.lines_len || memcmp(l0.lines, w0.body, l0.lines_len) == 0));
		if (l0.end == HRESP_END) {
			CHECK(!l0.whole && l0.lines_len == w0.body_len);
		} else if (l0.end == -EMSGSIZE) {
			CHECK(has_long_line(w0.body, w0.body_len, max_line));
		} else {
			CHECK(l0.end == -EPIPE);
			CHECK(w0.body_len && w0.body[w0.body_len - 1] != '\n');
			CHECK(!has_long_line(w0.body, w0.body_len, max_line));
		}
	} else if (w0.end == -EPROTO || w0.end == -EPIPE || w0.end == HRESP_MORE) {
		/* the same framing gives the same end, unless lines mode stopped first at a long line */
		CHECK(l0.end == w0.end || l0.end == -EMSGSIZE);
	}
	if (l0.end == HRESP_END && !l0.whole && l0.status >= 200 && l0.status <= 299 && l0.lines_len <= max_body) {
		/* a 2xx body that fits max_body reads the same whole */
		CHECK(w0.end == HRESP_END && w0.body_len == l0.lines_len);
	}
	trace_free(&w0);
	trace_free(&w1);
	trace_free(&l0);
	trace_free(&l1);
	free(copy);
	return 0;
}
