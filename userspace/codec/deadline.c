// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Deadline headers: weft-deadline, grpc-timeout, l5d-ctx-deadline. See
 * deadline.h for the grammars. The parsers are hand-written rather than
 * strtoll/sscanf because those accept signs, spaces and locales, and need a
 * NUL the header value does not have.
 */
#include "codec/deadline.h"

#include <errno.h>
#include <string.h>

#define NS_PER_US INT64_C(1000)
#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)

/*
 * 1..max_digits ASCII digits, nothing else, into *out. max_digits <= 19, so
 * the value fits in uint64 without a check per digit.
 */
static int deadline_digits(const char *s, size_t len, size_t max_digits, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len < 1 || len > max_digits)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int deadline_parse_weft(const char *value, size_t len, int64_t *out_ns)
{
	uint64_t ms;

	if (deadline_digits(value, len, 19, &ms))
		return -EINVAL;
	if (ms > (uint64_t)(INT64_MAX / NS_PER_MS)) /* year 2262 and later: not a deadline we can hold */
		return -EINVAL;
	*out_ns = (int64_t)ms * NS_PER_MS;
	return 0;
}

/* grpc-timeout units, finest first: the order deadline_format_grpc_timeout tries them in. */
static const struct {
	char unit;
	int64_t ns;
} grpc_units[] = {
	{ 'n', 1 },        { 'u', NS_PER_US },     { 'm', NS_PER_MS },
	{ 'S', NS_PER_S }, { 'M', 60 * NS_PER_S }, { 'H', 3600 * NS_PER_S },
};
#define GRPC_MAX_VALUE 99999999 /* 8 digits */

int deadline_parse_grpc_timeout(const char *value, size_t len, int64_t *out_ns)
{
	uint64_t v;
	size_t i;

	if (len < 2 || deadline_digits(value, len - 1, 8, &v))
		return -EINVAL;
	for (i = 0; i < sizeof(grpc_units) / sizeof(grpc_units[0]); i++) {
		if (value[len - 1] != grpc_units[i].unit)
			continue;
		/* 99999999H is about 11400 years: more than int64 ns holds */
		if (v > (uint64_t)(INT64_MAX / grpc_units[i].ns))
			return -EINVAL;
		*out_ns = (int64_t)v * grpc_units[i].ns;
		return 0;
	}
	return -EINVAL;
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static int64_t be64_get(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v; /* two's complement on every platform we build for */
}

static void be64_put(uint8_t *p, int64_t sv)
{
	uint64_t v = (uint64_t)sv;
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/*
 * Exactly 24 characters: 22 of the standard alphabet, then "==". The last
 * data character carries 2 bits of the 16th byte and 4 bits that must be zero
 * (RFC 4648 3.5 lets a decoder reject them otherwise, and we do: one value,
 * one spelling). The timestamp is read and ignored: weft only needs the
 * deadline, and the timestamp is the sender's clock, not ours.
 */
int deadline_parse_l5d(const char *value, size_t len, int64_t *out_ns)
{
	uint8_t raw[18]; /* 22 chars decode to 16.5 bytes: room for the spill */
	uint32_t acc = 0;
	int64_t dl;
	size_t i, o = 0;
	int bits = 0, v;

	if (len != 24 || value[22] != '=' || value[23] != '=')
		return -EINVAL;
	for (i = 0; i < 22; i++) {
		v = b64_value(value[i]);
		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (o != 16 || acc != 0) /* 4 leftover bits, non-zero: not canonical */
		return -EINVAL;
	dl = be64_get(raw + 8);
	if (dl < 0)
		return -EINVAL;
	*out_ns = dl;
	return 0;
}

/* Copies s (n bytes) and a NUL into out, or -ENOSPC without writing. */
static int deadline_put(char *out, size_t cap, const char *s, size_t n)
{
	if (n + 1 > cap)
		return -ENOSPC;
	memcpy(out, s, n);
	out[n] = '\0';
	return (int)n;
}

/* Decimal digits of v into the end of tmp (at least 20 bytes); returns the first digit. */
static char *deadline_utoa(char *end, uint64_t v)
{
	char *p = end;

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return p;
}

/* A deadline before 1970 is long expired: written as 0 (the parser accepts no sign). */
int deadline_format_weft(char *out, size_t cap, int64_t abs_ns)
{
	char tmp[24], *end = tmp + sizeof(tmp), *p;

	p = deadline_utoa(end, abs_ns > 0 ? (uint64_t)(abs_ns / NS_PER_MS) : 0);
	return deadline_put(out, cap, p, (size_t)(end - p));
}

/*
 * The finest unit whose value fits 8 digits, rounded down: a receiver then
 * gives up no later than we would. INT64_MAX ns is 2562047 hours, so hours
 * always fit.
 */
int deadline_format_grpc_timeout(char *out, size_t cap, int64_t remaining_ns)
{
	char tmp[24], *end = tmp + sizeof(tmp) - 1, *p;
	int64_t v = remaining_ns > 0 ? remaining_ns : 0;
	size_t i;

	for (i = 0; i + 1 < sizeof(grpc_units) / sizeof(grpc_units[0]); i++)
		if (v / grpc_units[i].ns <= GRPC_MAX_VALUE)
			break;
	*end = grpc_units[i].unit;
	p = deadline_utoa(end, (uint64_t)(v / grpc_units[i].ns));
	return deadline_put(out, cap, p, (size_t)(end + 1 - p));
}

int deadline_format_l5d(char *out, size_t cap, int64_t now_ns, int64_t abs_ns)
{
	uint8_t raw[18] = { 0 }; /* two zero bytes past the 16: the last group reads them */
	char enc[24];
	size_t i, o = 0;

	be64_put(raw, now_ns);
	be64_put(raw + 8, abs_ns);
	for (i = 0; i < 16; i += 3) {
		uint32_t g = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];

		enc[o++] = b64_alphabet[g >> 18 & 63];
		enc[o++] = b64_alphabet[g >> 12 & 63];
		enc[o++] = b64_alphabet[g >> 6 & 63];
		enc[o++] = b64_alphabet[g & 63];
	}
	/* 16 = 5 * 3 + 1: the last group holds one byte, so two pads */
	enc[22] = '=';
	enc[23] = '=';
	return deadline_put(out, cap, enc, sizeof(enc));
}
