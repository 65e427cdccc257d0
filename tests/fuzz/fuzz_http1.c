// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: the HTTP/1.1 parser (bytes from any meshed client or upstream).
 *
 * Input: byte 0 selects the mode and limits, byte 1 a split point, the rest is
 * the message. Modes: request head, response head (byte 0 also picks the
 * request method), chunked body, and a pipeline of requests with bodies.
 *
 * Besides crashes and sanitizer reports, it aborts when:
 *  - parsing at once and parsing split at the chosen point (resuming the same
 *    state) disagree, or a prefix gives anything but INCOMPLETE or the final
 *    answer;
 *  - resuming after the buffer moved disagrees with parsing at once;
 *  - a successful parse breaks an invariant (head ends in CRLFCRLF, names are
 *    tokens, values hold no CR/LF/NUL, framing is unambiguous);
 *  - the chunked decoder answers differently in one call, split in two, or
 *    in data-span mode, or a data span falls outside the bytes consumed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/http1.h"

#define NHDRS 64
#define CHECK(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

static const struct h1_limits small_limits = {
	.max_start_line = 64,
	.max_header_bytes = 160,
	.max_headers = 6,
	.max_chunk_line = 24,
};

static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_headers(const char *buf, size_t head, const struct h1_header *h, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		CHECK(h[i].name >= buf && h[i].name + h[i].name_len <= buf + head);
		CHECK(h[i].value >= buf && h[i].value + h[i].value_len <= buf + head);
		CHECK(h[i].name_len > 0);
		for (k = 0; k < h[i].name_len; k++)
			CHECK(is_tchar((unsigned char)h[i].name[k]));
		for (k = 0; k < h[i].value_len; k++) {
			unsigned char c = (unsigned char)h[i].value[k];

			CHECK(c != '\r' && c != '\n' && c != 0 && c != 0x7f);
		}
		if (h[i].value_len) {
			CHECK(h[i].value[0] != ' ' && h[i].value[0] != '\t');
			CHECK(h[i].value[h[i].value_len - 1] != ' ' && h[i].value[h[i].value_len - 1] != '\t');
		}
	}
}

/* Offsets relative to the buffer, so parses of two copies can be compared. */
#define OFF(p) ((p) ? (ptrdiff_t)((p)-base) : (ptrdiff_t)-1)

struct req_view {
	ptrdiff_t method, target, path, host, up;
	size_t method_len, target_len, path_len, host_len, up_len, n_headers, head_len;
	int64_t cl;
	int method_id, form, minor;
	unsigned flags;
	bool chunked, ka, expect, upgrade;
	ptrdiff_t hn[NHDRS], hv[NHDRS];
	size_t hnl[NHDRS], hvl[NHDRS];
};

static void req_view(struct req_view *v, const struct h1_request *r, const char *base)
{
	size_t i;

	memset(v, 0, sizeof(*v));
	v->method = OFF(r->method);
	v->target = OFF(r->target);
	v->path = OFF(r->path);
	v->host = OFF(r->host);
	v->up = OFF(r->upgrade_proto);
	v->method_len = r->method_len;
	v->target_len = r->target_len;
	v->path_len = r->path_len;
	v->host_len = r->host_len;
	v->up_len = r->upgrade_proto_len;
	v->n_headers = r->n_headers;
	v->head_len = r->head_len;
	v->cl = r->content_length;
	v->method_id = r->method_id;
	v->form = r->target_form;
	v->minor = r->minor_version;
	v->flags = r->flags;
	v->chunked = r->chunked;
	v->ka = r->keep_alive;
	v->expect = r->expect_continue;
	v->upgrade = r->upgrade;
	for (i = 0; i < r->n_headers; i++) {
		v->hn[i] = r->headers[i].name - base;
		v->hv[i] = r->headers[i].value - base;
		v->hnl[i] = r->headers[i].name_len;
		v->hvl[i] = r->headers[i].value_len;
	}
}

static int parse_req_once(const char *buf, size_t n, const struct h1_limits *lim, struct req_view *v,
			  struct h1_header *h)
{
	struct h1_request r;
	int ret;

	h1_request_init(&r);
	ret = h1_parse_request(buf, n, &r, h, NHDRS, lim);
	if (ret > 0)
		req_view(v, &r, buf);
	return ret;
}

static void fuzz_request(const char *buf, size_t n, size_t split, const struct h1_limits *lim)
{
	struct h1_header h0[NHDRS], h1[NHDRS], h2[NHDRS];
	struct req_view v0, v1, v2;
	struct h1_request r;
	char *moved;
	int want, got;

	want = parse_req_once(buf, n, lim, &v0, h0);
	CHECK(want == H1_INCOMPLETE || want > 0 || (want >= H1_E_BARE_CR && want < H1_E_LAST_));
	if (want > 0) {
		const struct h1_limits *l = lim ? lim : &(struct h1_limits){ 8192, 65536, 100, 4096 };

		CHECK((size_t)want <= n && (size_t)want >= 16);
		CHECK(memcmp(buf + want - 4, "\r\n\r\n", 4) == 0);
		CHECK(v0.n_headers <= l->max_headers);
		CHECK(!(v0.chunked && v0.cl >= 0));
		CHECK(!((v0.flags & H1_F_HAS_CL) && (v0.flags & H1_F_HAS_TE)));
		CHECK(v0.minor == 0 || v0.minor == 1);
		CHECK(v0.minor == 0 || v0.host >= 0);
		CHECK(v0.method_len > 0 && v0.target_len > 0);
		CHECK((size_t)v0.target + v0.target_len < (size_t)want);
		CHECK(v0.path_len == 0 || (v0.path >= v0.target &&
					   v0.path + (ptrdiff_t)v0.path_len <= v0.target + (ptrdiff_t)v0.target_len));
		check_headers(buf, (size_t)want, h0, v0.n_headers);
	}

	/* split at the fuzzer's point, resuming the same state */
	h1_request_init(&r);
	got = h1_parse_request(buf, split, &r, h1, NHDRS, lim);
	CHECK(got == H1_INCOMPLETE || got == want);
	got = h1_parse_request(buf, n, &r, h1, NHDRS, lim);
	CHECK(got == want);
	if (want > 0) {
		req_view(&v1, &r, buf);
		CHECK(memcmp(&v0, &v1, sizeof(v0)) == 0);
	}

	/* the prefix parsed in one buffer, the rest after it moved */
	moved = malloc(n ? n : 1);
	if (!moved)
		return;
	memcpy(moved, buf, n);
	h1_request_init(&r);
	(void)h1_parse_request(buf, split, &r, h2, NHDRS, lim);
	got = h1_parse_request(moved, n, &r, h2, NHDRS, lim);
	CHECK(got == want);
	if (want > 0) {
		req_view(&v2, &r, moved);
		CHECK(memcmp(&v0, &v2, sizeof(v0)) == 0);
	}
	free(moved);
}

static void fuzz_response(const char *buf, size_t n, size_t split, enum h1_method m, const struct h1_limits *lim)
{
	struct h1_header h0[NHDRS], h1[NHDRS];
	struct h1_response r0, r1;
	struct h1_body b;
	int want, got;

	h1_response_init(&r0);
	want = h1_parse_response(buf, n, m, &r0, h0, NHDRS, lim);
	CHECK(want == H1_INCOMPLETE || want > 0 || (want >= H1_E_BARE_CR && want < H1_E_LAST_));
	if (want > 0) {
		CHECK(memcmp(buf + want - 4, "\r\n\r\n", 4) == 0);
		CHECK(r0.status >= 100 && r0.status <= 599);
		/* exactly one framing */
		CHECK((int)r0.no_body + (int)r0.chunked + (int)r0.close_delimited +
			      (int)(!r0.no_body && !r0.chunked && !r0.close_delimited && r0.content_length >= 0) ==
		      1);
		CHECK(!r0.tunnel || r0.no_body);
		CHECK(!r0.close_delimited || !r0.keep_alive);
		check_headers(buf, (size_t)want, h0, r0.n_headers);
		h1_body_init_response(&b, &r0, lim);
	}
	h1_response_init(&r1);
	got = h1_parse_response(buf, split, m, &r1, h1, NHDRS, lim);
	CHECK(got == H1_INCOMPLETE || got == want);
	got = h1_parse_response(buf, n, m, &r1, h1, NHDRS, lim);
	CHECK(got == want);
	if (want > 0) {
		size_t i;

		CHECK(r1.status == r0.status && r1.reason == r0.reason && r1.reason_len == r0.reason_len);
		CHECK(r1.n_headers == r0.n_headers && r1.content_length == r0.content_length);
		CHECK(r1.chunked == r0.chunked && r1.close_delimited == r0.close_delimited);
		CHECK(r1.no_body == r0.no_body && r1.tunnel == r0.tunnel && r1.interim == r0.interim);
		CHECK(r1.keep_alive == r0.keep_alive && r1.flags == r0.flags);
		for (i = 0; i < r0.n_headers; i++)
			CHECK(h0[i].name == h1[i].name && h0[i].value_len == h1[i].value_len);
	}
}

/* Feeds buf in data-span mode; returns the result, total consumed and data bytes. */
static int feed_spans(struct h1_body *b, const char *buf, size_t n, size_t *pos, size_t *data)
{
	size_t used, off, dlen;
	int r = 0;

	while (*pos < n) {
		r = h1_body_feed(b, buf + *pos, n - *pos, &used, &off, &dlen);
		if (r < 0)
			return r;
		CHECK(off + dlen <= used);
		CHECK(used > 0 || r == 1);
		*data += dlen;
		*pos += used;
		if (r == 1)
			break;
	}
	return r;
}

static void fuzz_chunked(const char *buf, size_t n, size_t split, const struct h1_limits *lim)
{
	struct h1_body b;
	size_t used1, used2, used3, pos = 0, data = 0, pos2 = 0, data2 = 0;
	int r1, r2, r3;

	h1_body_init(&b, -1, true, lim);
	r1 = h1_body_feed(&b, buf, n, &used1, NULL, NULL);
	CHECK(r1 == 0 || r1 == 1 || (r1 >= H1_E_BARE_CR && r1 < H1_E_LAST_));
	CHECK(used1 <= n);
	CHECK(r1 != 0 || used1 == n);
	CHECK(h1_body_eof(&b) == (r1 == 1 ? 1 : H1_E_BODY_TRUNCATED));
	if (r1 == 1)
		CHECK(used1 >= 5 && memcmp(buf + used1 - 2, "\r\n", 2) == 0);

	/* split in two */
	h1_body_init(&b, -1, true, lim);
	r2 = h1_body_feed(&b, buf, split, &used2, NULL, NULL);
	if (r2 == 0) {
		CHECK(used2 == split);
		r3 = h1_body_feed(&b, buf + split, n - split, &used3, NULL, NULL);
		CHECK(r3 == r1);
		if (r1 == 1)
			CHECK(split + used3 == used1);
	} else {
		CHECK(r2 == r1);
		if (r1 == 1)
			CHECK(used2 == used1);
	}

	/* data spans, in two reads */
	h1_body_init(&b, -1, true, lim);
	r2 = feed_spans(&b, buf, split, &pos, &data);
	if (r2 == 0)
		r2 = feed_spans(&b, buf, n, &pos, &data);
	CHECK(r2 == r1);
	if (r1 == 1)
		CHECK(pos == used1);
	/* ... and in one */
	h1_body_init(&b, -1, true, lim);
	r3 = feed_spans(&b, buf, n, &pos2, &data2);
	CHECK(r3 == r1);
	if (r1 >= 0)
		CHECK(data2 == data && pos2 == pos);
}

/* Request after request, each with its body: what the proxy will do. */
static void fuzz_pipeline(const char *buf, size_t n, const struct h1_limits *lim)
{
	struct h1_header h[NHDRS];
	struct h1_request r;
	struct h1_body b;
	size_t off = 0, used;
	int ret, rounds = 0;

	while (off < n && rounds++ < 64) {
		h1_request_init(&r);
		ret = h1_parse_request(buf + off, n - off, &r, h, NHDRS, lim);
		if (ret <= 0)
			return;
		off += (size_t)ret;
		h1_body_init_request(&b, &r, lim);
		if (h1_body_done(&b))
			continue;
		ret = h1_body_feed(&b, buf + off, n - off, &used, NULL, NULL);
		CHECK(used <= n - off);
		if (ret != 1)
			return;
		off += used;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct h1_limits *lim;
	size_t n, split;
	uint8_t sel;
	char *buf;

	if (size < 2)
		return 0;
	sel = data[0];
	n = size - 2;
	split = n ? (size_t)data[1] * (n + 1) / 256 : 0;
	lim = (sel & 0x80) ? &small_limits : NULL;
	/* an exact-size copy: ASan flags any read past the end */
	buf = malloc(n ? n : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 2, n);
	switch (sel & 3) {
	case 0:
		fuzz_request(buf, n, split, lim);
		break;
	case 1:
		fuzz_response(buf, n, split, (enum h1_method)((sel >> 2) % 10), lim);
		break;
	case 2:
		fuzz_chunked(buf, n, split, lim);
		break;
	default:
		fuzz_pipeline(buf, n, lim);
		break;
	}
	free(buf);
	return 0;
}
