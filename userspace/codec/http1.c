// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * http1: strict incremental HTTP/1.1 head parser and body framing; see
 * http1.h for the API and docs/http1.md for the accept/reject rules.
 *
 * How it stays linear when bytes trickle in: the head parser is a resumable
 * state machine. Its state (struct h1_head_state, inside the message) holds
 * the offset of the next byte to look at and, for the element being scanned
 * (method, target, field name, value), where it started. A call resumes at
 * that byte; nothing already seen is scanned again. Errors are decided in
 * byte order, and a limit error is decided by the first byte that would lie
 * beyond the limit, so the outcome never depends on how the input was split.
 */
#include "codec/http1.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

/* ---- character classes ------------------------------------------------- */

#define IN(c, a, b) ((c) >= (a) && (c) <= (b))
#define IS_DIGIT(c) IN(c, '0', '9')
#define IS_ALPHA(c) (IN(c, 'a', 'z') || IN(c, 'A', 'Z'))
#define IS_HEXC(c) (IS_DIGIT(c) || IN(c, 'a', 'f') || IN(c, 'A', 'F'))
#define IS_WSC(c) ((c) == ' ' || (c) == '\t')
/* tchar (RFC 9110 5.6.2) */
#define IS_TCHAR(c)                                                                                          \
	(IS_DIGIT(c) || IS_ALPHA(c) || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || \
	 (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||  \
	 (c) == '`' || (c) == '|' || (c) == '~')
/* RFC 3986 */
#define IS_UNRESERVED(c) (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~')
#define IS_SUBDELIM(c)                                                                                      \
	((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || (c) == ')' || (c) == '*' || \
	 (c) == '+' || (c) == ',' || (c) == ';' || (c) == '=')
/* Characters of a request-target: RFC 3986 URI characters minus '#'. */
#define IS_URIC(c)                                                                                                   \
	(IS_UNRESERVED(c) || IS_SUBDELIM(c) || (c) == ':' || (c) == '@' || (c) == '/' || (c) == '?' || (c) == '%' || \
	 (c) == '[' || (c) == ']')
/* field-content bytes: SP, HTAB, VCHAR, obs-text (RFC 9110 5.5) */
#define IS_FVAL(c) ((c) == '\t' || IN(c, 0x20, 0x7e) || IN(c, 0x80, 0xff))
/* qdtext (RFC 9110 5.6.4) */
#define IS_QDTEXT(c) \
	((c) == '\t' || (c) == ' ' || (c) == 0x21 || IN(c, 0x23, 0x5b) || IN(c, 0x5d, 0x7e) || IN(c, 0x80, 0xff))

enum {
	C_TCHAR = 0x01,
	C_FVAL = 0x02,
	C_URI = 0x04,
	C_BRACKET = 0x08,
	C_HEX = 0x10,
	C_REG = 0x20, /* reg-name character other than '%' */
	C_WS = 0x40,
	C_QD = 0x80,
};

#define CLS(c)                                                                                \
	((IS_TCHAR(c) ? C_TCHAR : 0) | (IS_FVAL(c) ? C_FVAL : 0) | (IS_URIC(c) ? C_URI : 0) | \
	 ((c) == '[' || (c) == ']' ? C_BRACKET : 0) | (IS_HEXC(c) ? C_HEX : 0) |              \
	 (IS_UNRESERVED(c) || IS_SUBDELIM(c) ? C_REG : 0) | (IS_WSC(c) ? C_WS : 0) | (IS_QDTEXT(c) ? C_QD : 0))
#define CLS4(c) CLS(c), CLS((c) + 1), CLS((c) + 2), CLS((c) + 3)
#define CLS16(c) CLS4(c), CLS4((c) + 4), CLS4((c) + 8), CLS4((c) + 12)
#define CLS64(c) CLS16(c), CLS16((c) + 16), CLS16((c) + 32), CLS16((c) + 48)

/* Built at compile time from the RFC grammar above: no hand-typed table. */
static const unsigned char cls[256] = { CLS64(0), CLS64(64), CLS64(128), CLS64(192) };

static inline unsigned char lower(unsigned char c)
{
	return (unsigned char)(IN(c, 'A', 'Z') ? c + 32 : c);
}

/* a[0..n) equals the lowercase literal lit (n bytes), ignoring ASCII case. */
static bool ci_eq(const unsigned char *a, size_t n, const char *lit, size_t litlen)
{
	size_t i;

	if (n != litlen)
		return false;
	for (i = 0; i < n; i++)
		if (lower(a[i]) != (unsigned char)lit[i])
			return false;
	return true;
}
#define CI_EQ(a, n, lit) ci_eq((a), (n), lit, sizeof(lit) - 1)

/* ---- errors ------------------------------------------------------------- */

static const struct {
	short status;
	const char *reason;
} errs[] = {
	[H1_E_BARE_CR - H1_E_BARE_CR] = { 400, "CR not followed by LF" },
	[H1_E_BARE_LF - H1_E_BARE_CR] = { 400, "LF without CR" },
	[H1_E_REQUEST_LINE - H1_E_BARE_CR] = { 400, "malformed request line" },
	[H1_E_METHOD - H1_E_BARE_CR] = { 400, "invalid method" },
	[H1_E_TARGET - H1_E_BARE_CR] = { 400, "invalid request-target" },
	[H1_E_VERSION - H1_E_BARE_CR] = { 400, "malformed HTTP version" },
	[H1_E_VERSION_UNSUPPORTED - H1_E_BARE_CR] = { 505, "HTTP version not supported" },
	[H1_E_STATUS - H1_E_BARE_CR] = { 400, "invalid status code" },
	[H1_E_REASON - H1_E_BARE_CR] = { 400, "invalid reason phrase" },
	[H1_E_START_LINE_TOO_LONG - H1_E_BARE_CR] = { 414, "request line too long" },
	[H1_E_HEADERS_TOO_LARGE - H1_E_BARE_CR] = { 431, "header section too large" },
	[H1_E_TOO_MANY_HEADERS - H1_E_BARE_CR] = { 431, "too many header fields" },
	[H1_E_HEADER_NAME - H1_E_BARE_CR] = { 400, "invalid field name or missing colon" },
	[H1_E_HEADER_WS - H1_E_BARE_CR] = { 400, "whitespace before colon" },
	[H1_E_HEADER_VALUE - H1_E_BARE_CR] = { 400, "control character in field value" },
	[H1_E_OBS_FOLD - H1_E_BARE_CR] = { 400, "obsolete line folding" },
	[H1_E_CL_INVALID - H1_E_BARE_CR] = { 400, "invalid Content-Length" },
	[H1_E_CL_CONFLICT - H1_E_BARE_CR] = { 400, "conflicting Content-Length values" },
	[H1_E_CL_AND_TE - H1_E_BARE_CR] = { 400, "both Content-Length and Transfer-Encoding" },
	[H1_E_TE_INVALID - H1_E_BARE_CR] = { 400, "invalid Transfer-Encoding" },
	[H1_E_TE_UNKNOWN - H1_E_BARE_CR] = { 501, "transfer coding not implemented" },
	[H1_E_TE_CHUNKED_REPEATED - H1_E_BARE_CR] = { 400, "chunked applied more than once" },
	[H1_E_TE_NOT_CHUNKED - H1_E_BARE_CR] = { 400, "chunked is not the final transfer coding" },
	[H1_E_TE_HTTP10 - H1_E_BARE_CR] = { 400, "Transfer-Encoding in HTTP/1.0" },
	[H1_E_HOST_MISSING - H1_E_BARE_CR] = { 400, "missing Host" },
	[H1_E_HOST_REPEATED - H1_E_BARE_CR] = { 400, "more than one Host" },
	[H1_E_HOST_INVALID - H1_E_BARE_CR] = { 400, "invalid Host" },
	[H1_E_CHUNK_SIZE - H1_E_BARE_CR] = { 400, "invalid chunk size" },
	[H1_E_CHUNK_EXT - H1_E_BARE_CR] = { 400, "invalid chunk extension" },
	[H1_E_CHUNK_LINE_TOO_LONG - H1_E_BARE_CR] = { 400, "chunk size line too long" },
	[H1_E_CHUNK_DATA - H1_E_BARE_CR] = { 400, "chunk data not followed by CRLF" },
	[H1_E_TRAILERS_TOO_LARGE - H1_E_BARE_CR] = { 431, "trailer section too large" },
	[H1_E_BODY_TRUNCATED - H1_E_BARE_CR] = { 400, "connection closed inside the body" },
	[H1_E_ARG - H1_E_BARE_CR] = { 500, "invalid argument" },
};

_Static_assert(sizeof(errs) / sizeof(errs[0]) == H1_E_LAST_ - H1_E_BARE_CR,
	       "every H1_E_* code has a status and a reason");

int h1_error_status(int err)
{
	if (err >= H1_E_BARE_CR && err < H1_E_LAST_)
		return errs[err - H1_E_BARE_CR].status;
	return 400;
}

const char *h1_error_reason(int err)
{
	if (err == H1_INCOMPLETE)
		return "incomplete";
	if (err >= H1_E_BARE_CR && err < H1_E_LAST_)
		return errs[err - H1_E_BARE_CR].reason;
	return "bad request";
}

/* ---- limits --------------------------------------------------------------- */

/* Caps keep every offset and the returned head length inside an int. */
#define H1_LIMIT_CAP ((size_t)1 << 28)

static struct h1_limits get_limits(const struct h1_limits *lim)
{
	struct h1_limits l = { H1_DEFAULT_MAX_START_LINE, H1_DEFAULT_MAX_HEADER_BYTES, H1_DEFAULT_MAX_HEADERS,
			       H1_DEFAULT_MAX_CHUNK_LINE };

	if (lim) {
		if (lim->max_start_line)
			l.max_start_line = lim->max_start_line < H1_LIMIT_CAP ? lim->max_start_line : H1_LIMIT_CAP;
		if (lim->max_header_bytes)
			l.max_header_bytes = lim->max_header_bytes < H1_LIMIT_CAP ? lim->max_header_bytes
										  : H1_LIMIT_CAP;
		if (lim->max_headers)
			l.max_headers = lim->max_headers;
		if (lim->max_chunk_line)
			l.max_chunk_line = lim->max_chunk_line;
	}
	return l;
}

/* ---- semantic checks ------------------------------------------------------ */

/*
 * authority = host [ ":" port ] without userinfo (RFC 9110 4.2.4: '@' is an
 * error). host is an IP-literal ("[" hex, ':' and '.' "]"), or a non-empty
 * reg-name of unreserved, sub-delims and well-formed %HH. The port is at most
 * 5 digits and 65535; need_port requires one (CONNECT's authority-form).
 */
static bool valid_authority(const unsigned char *s, size_t n, bool need_port)
{
	size_t i = 0, j, digits;
	unsigned port = 0;

	if (n == 0)
		return false;
	if (s[0] == '[') {
		bool colon = false;

		for (j = 1; j < n && s[j] != ']'; j++) {
			if (s[j] == ':')
				colon = true;
			else if (!(cls[s[j]] & C_HEX) && s[j] != '.')
				return false;
		}
		if (j == n || !colon)
			return false;
		i = j + 1;
	} else {
		while (i < n && s[i] != ':') {
			if (s[i] == '%') {
				if (n - i < 3 || !(cls[s[i + 1]] & C_HEX) || !(cls[s[i + 2]] & C_HEX))
					return false;
				i += 3;
			} else if (cls[s[i]] & C_REG) {
				i++;
			} else {
				return false;
			}
		}
		if (i == 0)
			return false;
	}
	if (i == n)
		return !need_port;
	if (s[i] != ':')
		return false;
	i++;
	digits = n - i;
	if (digits > 5 || (need_port && digits == 0))
		return false;
	for (; i < n; i++) {
		if (!IS_DIGIT(s[i]))
			return false;
		port = port * 10 + (unsigned)(s[i] - '0');
	}
	return port <= 65535;
}

static uint8_t method_id(const unsigned char *m, size_t n)
{
	// clang-format off
#define M(lit, id) \
	if (n == sizeof(lit) - 1 && memcmp(m, lit, n) == 0) return id
	switch (n) {
	case 3: M("GET", H1_M_GET); M("PUT", H1_M_PUT); break;
	case 4: M("HEAD", H1_M_HEAD); M("POST", H1_M_POST); break;
	case 5: M("PATCH", H1_M_PATCH); M("TRACE", H1_M_TRACE); break;
	case 6: M("DELETE", H1_M_DELETE); break;
	case 7: M("CONNECT", H1_M_CONNECT); M("OPTIONS", H1_M_OPTIONS); break;
	default: break;
	}
	// clang-format on
#undef M
	return H1_M_OTHER;
}

/*
 * The request-target's form must fit the method (RFC 9112 3.2): origin-form
 * for anything but CONNECT; "*" for OPTIONS only; authority-form for CONNECT
 * only; absolute-form with scheme http or https and a valid, non-empty
 * authority. Brackets are allowed only around an IP-literal host. Characters
 * were already checked while scanning; acc is the OR of their classes.
 */
static int check_target(struct h1_head_state *st, const unsigned char *b)
{
	const unsigned char *t = b + st->t_off;
	size_t n = st->t_len, s, a, i;

	if (t[0] == '/') {
		if (st->method == H1_M_CONNECT || (st->acc & C_BRACKET))
			return H1_E_TARGET;
		st->form = H1_TARGET_ORIGIN;
		st->path_off = st->t_off;
		st->path_len = n;
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		if (st->method != H1_M_OPTIONS)
			return H1_E_TARGET;
		st->form = H1_TARGET_ASTERISK;
		return 0;
	}
	if (st->method == H1_M_CONNECT) {
		if (!valid_authority(t, n, true))
			return H1_E_TARGET;
		st->form = H1_TARGET_AUTHORITY;
		st->host_off = st->t_off;
		st->host_len = n;
		return 0;
	}
	if (n > 7 && ci_eq(t, 7, "http://", 7))
		s = 7;
	else if (n > 8 && ci_eq(t, 8, "https://", 8))
		s = 8;
	else
		return H1_E_TARGET;
	for (a = s; a < n && t[a] != '/' && t[a] != '?'; a++)
		;
	if (!valid_authority(t + s, a - s, false))
		return H1_E_TARGET;
	for (i = a; i < n; i++)
		if (t[i] == '[' || t[i] == ']')
			return H1_E_TARGET;
	st->form = H1_TARGET_ABSOLUTE;
	st->host_off = st->t_off + s;
	st->host_len = a - s;
	st->path_off = st->t_off + a;
	st->path_len = n - a;
	return 0;
}

/* Next element of a #list in v[*i..n): skips OWS and empty elements (RFC 9110
 * 5.6.1). The element is trimmed. Returns false at the end. */
static bool list_next(const unsigned char *v, size_t n, size_t *i, size_t *es, size_t *el)
{
	size_t p = *i, s, e;

	while (p < n && (v[p] == ',' || IS_WSC(v[p])))
		p++;
	if (p >= n)
		return false;
	s = p;
	while (p < n && v[p] != ',')
		p++;
	e = p;
	while (e > s && IS_WSC(v[e - 1]))
		e--;
	*es = s;
	*el = e - s;
	*i = p;
	return true;
}

/*
 * Content-Length = 1*DIGIT (RFC 9110 8.6). A list of identical values
 * ("42, 42", or the field repeated) is accepted and flagged H1_F_CL_REPEATED:
 * the proxy must forward a single Content-Length. Empty elements, signs,
 * whitespace inside a number and values above INT64_MAX are rejected.
 */
static int on_content_length(struct h1_head_state *st, const unsigned char *v, size_t n)
{
	size_t i = 0;

	for (;;) {
		int64_t x = 0;
		size_t digits = 0;

		while (i < n && IS_WSC(v[i]))
			i++;
		while (i < n && IS_DIGIT(v[i])) {
			int d = v[i] - '0';

			if (x > (INT64_MAX - d) / 10)
				return H1_E_CL_INVALID;
			x = x * 10 + d;
			digits++;
			i++;
		}
		while (i < n && IS_WSC(v[i]))
			i++;
		if (digits == 0 || (i < n && v[i] != ','))
			return H1_E_CL_INVALID;
		if (st->flags & H1_F_HAS_CL) {
			if (x != st->content_length)
				return H1_E_CL_CONFLICT;
			st->flags |= H1_F_CL_REPEATED;
		}
		st->flags |= H1_F_HAS_CL;
		st->content_length = x;
		if (i == n)
			return 0;
		i++; /* ',' */
	}
}

#define I_TE_CHUNKED 0x1u      /* chunked seen */
#define I_TE_LAST_CHUNKED 0x2u /* ... and it is the last coding so far */
#define I_EXPECT_CONTINUE 0x4u

/*
 * Transfer-Encoding = #transfer-coding, case-insensitive, across all field
 * lines in order. chunked at most once and last; gzip, x-gzip, deflate,
 * compress, x-compress may precede it (flagged H1_F_TE_OTHER; finish_head
 * refuses them in requests). Anything else, and any coding with parameters,
 * is not implemented (501).
 *
 * Stricter than the #list rule on purpose: an empty element ("gzip,,
 * chunked", ", chunked") is invalid here, although RFC 9110 5.6.1 tells
 * recipients to skip them. Backends with naive list parsing (nodejs
 * http-parser 2.9, found by differential fuzzing) do not see chunked there,
 * and would frame the body differently: request smuggling.
 */
static int on_transfer_encoding(struct h1_head_state *st, const unsigned char *v, size_t n)
{
	size_t i = 0, s, e, k;

	st->flags |= H1_F_HAS_TE;
	for (;;) {
		const unsigned char *el;
		size_t len;

		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (s < e && IS_WSC(v[s]))
			s++;
		while (e > s && IS_WSC(v[e - 1]))
			e--;
		el = v + s;
		len = e - s;
		for (k = 0; k < len && (cls[el[k]] & C_TCHAR); k++)
			;
		if (k == 0)
			return H1_E_TE_INVALID; /* empty element, or not a token */
		if (k < len) {
			while (k < len && IS_WSC(el[k]))
				k++;
			/* transfer-parameter: syntactically fine, but no coding we know has one */
			return el[k] == ';' ? H1_E_TE_UNKNOWN : H1_E_TE_INVALID;
		}
		if (CI_EQ(el, len, "chunked")) {
			if (st->internal & I_TE_CHUNKED)
				return H1_E_TE_CHUNKED_REPEATED;
			st->internal |= I_TE_CHUNKED | I_TE_LAST_CHUNKED;
		} else if (CI_EQ(el, len, "gzip") || CI_EQ(el, len, "x-gzip") || CI_EQ(el, len, "deflate") ||
			   CI_EQ(el, len, "compress") || CI_EQ(el, len, "x-compress")) {
			if (st->internal & I_TE_CHUNKED)
				return H1_E_TE_NOT_CHUNKED;
			st->internal &= ~I_TE_LAST_CHUNKED;
			st->flags |= H1_F_TE_OTHER;
		} else {
			return H1_E_TE_UNKNOWN;
		}
		if (i == n)
			return 0;
		i++; /* ',' */
	}
}

/* Called once per complete field line: dispatch on name length, then compare. */
static int on_field(struct h1_head_state *st, const unsigned char *b, bool req)
{
	const unsigned char *name = b + st->mark, *v = b + st->vstart;
	size_t nlen = st->name_len, vlen = st->vend - st->vstart, i = 0, es, el;

	switch (nlen) {
	case 4:
		if (!req || !CI_EQ(name, nlen, "host"))
			break;
		if (st->flags & H1_F_HAS_HOST)
			return H1_E_HOST_REPEATED;
		st->flags |= H1_F_HAS_HOST;
		/* empty is valid: "the target URI has no authority" (RFC 9112 3.2) */
		if (vlen && !valid_authority(v, vlen, false))
			return H1_E_HOST_INVALID;
		/* absolute and authority forms: the target's authority wins (RFC 9112 3.2.2) */
		if (st->form == H1_TARGET_ORIGIN || st->form == H1_TARGET_ASTERISK) {
			st->host_off = st->vstart;
			st->host_len = vlen;
		}
		break;
	case 6:
		if (!req || !CI_EQ(name, nlen, "expect"))
			break;
		while (list_next(v, vlen, &i, &es, &el))
			if (CI_EQ(v + es, el, "100-continue"))
				st->internal |= I_EXPECT_CONTINUE;
		break;
	case 7:
		if (!CI_EQ(name, nlen, "upgrade") || vlen == 0 || (st->flags & H1_F_HAS_UPGRADE))
			break;
		st->flags |= H1_F_HAS_UPGRADE;
		st->up_off = st->vstart;
		st->up_len = vlen;
		break;
	case 10:
		if (!CI_EQ(name, nlen, "connection"))
			break;
		while (list_next(v, vlen, &i, &es, &el)) {
			if (CI_EQ(v + es, el, "close"))
				st->flags |= H1_F_CONN_CLOSE;
			else if (CI_EQ(v + es, el, "keep-alive"))
				st->flags |= H1_F_CONN_KEEP_ALIVE;
			else if (CI_EQ(v + es, el, "upgrade"))
				st->flags |= H1_F_CONN_UPGRADE;
		}
		break;
	case 14:
		if (CI_EQ(name, nlen, "content-length"))
			return on_content_length(st, v, vlen);
		break;
	case 17:
		if (CI_EQ(name, nlen, "transfer-encoding"))
			return on_transfer_encoding(st, v, vlen);
		break;
	default:
		break;
	}
	return 0;
}

/* Framing checks that need the whole header block (RFC 9112 6.1, 6.3, 3.2). */
static int finish_head(struct h1_head_state *st, bool req)
{
	if (st->flags & H1_F_HAS_TE) {
		if (st->flags & H1_F_HAS_CL)
			return H1_E_CL_AND_TE;
		if (st->minor == 0)
			return H1_E_TE_HTTP10;
		if (req && !(st->internal & I_TE_LAST_CHUNKED))
			return H1_E_TE_NOT_CHUNKED;
		/* A request's framing header must be exactly "chunked": a backend
		 * that tests for that string would not frame "gzip, chunked" as we
		 * do. We do not implement the other codings for requests: 501. */
		if (req && (st->flags & H1_F_TE_OTHER))
			return H1_E_TE_UNKNOWN;
	}
	if (req && st->minor == 1 && !(st->flags & H1_F_HAS_HOST))
		return H1_E_HOST_MISSING;
	return 0;
}

/* ---- the head state machine -------------------------------------------- */

enum {
	HS_START = 0, /* request: leading CRLF or method; response: version */
	HS_LEAD_LF,   /* CR of a leading empty line seen */
	HS_METHOD,
	HS_TARGET,
	HS_VERSION,
	HS_STATUS,
	HS_REASON,
	HS_START_LF, /* CR ending the start line seen */
	HS_LINE,     /* start of a field line, or of the final CRLF */
	HS_NAME,
	HS_VALUE_OWS,
	HS_VALUE,
	HS_VALUE_LF,
	HS_FINAL_LF,
	HS_DONE,
	HS_ERROR,
};

static inline size_t sat_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* "HTTP/" DIGIT "." DIGIT, byte k of it (RFC 9112 2.3; case-sensitive). */
static inline bool version_byte_ok(size_t k, unsigned char c)
{
	return k < 5 ? c == (unsigned char)"HTTP/"[k] : k == 6 ? c == '.' : IS_DIGIT(c);
}

/*
 * Needs the byte at pos. A byte at or past the limit is the limit's error even
 * when it has not arrived yet: the message cannot fit whatever comes.
 */
#define NEED(limit, lerr)                \
	do {                             \
		if (pos >= (limit)) {    \
			err = (lerr);    \
			goto fail;       \
		}                        \
		if (pos >= len)          \
			goto incomplete; \
		c = b[pos];              \
	} while (0)

/* Advances pos over bytes of class bit, stopping at the limit; c is the stop byte. */
#define SCAN(bit, limit, lerr)                             \
	do {                                               \
		size_t e_ = len < (limit) ? len : (limit); \
		while (pos < e_ && (cls[b[pos]] & (bit)))  \
			pos++;                             \
		NEED(limit, lerr);                         \
	} while (0)

/*
 * Field values are most of a head's bytes: check 8 at a time (SWAR, portable).
 * A word passes when no byte is below 0x20 and none is 0x7f; bytes >= 0x80
 * (obs-text) pass. The bit tricks may report a bad byte that is not there
 * (borrows), never miss one; the byte loop after it decides exactly.
 */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline size_t fval_skip8(const unsigned char *b, size_t pos, size_t end)
{
	while (end - pos >= 8) {
		uint64_t x, y;

		memcpy(&x, b + pos, 8);
		y = x ^ (ONES * 0x7f);
		if (((x - ONES * 0x20) & ~x & HIGHS) | ((y - ONES) & ~y & HIGHS))
			break;
		pos += 8;
	}
	return pos;
}

#define SCAN_FVAL(limit, lerr)                             \
	do {                                               \
		size_t e_ = len < (limit) ? len : (limit); \
		pos = fval_skip8(b, pos, e_);              \
		while (pos < e_ && (cls[b[pos]] & C_FVAL)) \
			pos++;                             \
		NEED(limit, lerr);                         \
	} while (0)

static int parse_head(struct h1_head_state *st, const unsigned char *b, size_t len, bool req, struct h1_header *hdrs,
		      size_t maxh, const struct h1_limits *lim)
{
	size_t pos = st->pos;
	size_t sl_lim = sat_add(lim->max_start_line, 2);
	size_t hl_lim = sat_add(st->block_start, lim->max_header_bytes);
	unsigned char c;
	int err;

	for (;;) {
		switch (st->state) {
		case HS_START:
			NEED(sl_lim, H1_E_START_LINE_TOO_LONG);
			st->mark = pos;
			if (!req) {
				st->state = HS_VERSION;
				break;
			}
			if (c == '\r') {
				pos++;
				st->state = HS_LEAD_LF;
				break;
			}
			if (c == '\n') {
				err = H1_E_BARE_LF;
				goto fail;
			}
			st->state = HS_METHOD;
			break;

		case HS_LEAD_LF:
			NEED(sl_lim, H1_E_START_LINE_TOO_LONG);
			if (c != '\n') {
				err = H1_E_BARE_CR;
				goto fail;
			}
			pos++;
			st->state = HS_START;
			break;

		case HS_METHOD:
			SCAN(C_TCHAR, sl_lim, H1_E_START_LINE_TOO_LONG);
			if (c != ' ' || pos == st->mark) {
				err = pos > st->mark && (c == '\r' || c == '\n') ? H1_E_REQUEST_LINE : H1_E_METHOD;
				goto fail;
			}
			st->a_off = st->mark;
			st->a_len = pos - st->mark;
			st->method = method_id(b + st->mark, st->a_len);
			st->mark = ++pos;
			st->acc = 0;
			st->state = HS_TARGET;
			break;

		case HS_TARGET: {
			size_t e = len < sl_lim ? len : sl_lim;
			unsigned char acc = st->acc, k;

			while (pos < e && ((k = cls[b[pos]]) & C_URI)) {
				acc |= k;
				pos++;
			}
			st->acc = acc;
			NEED(sl_lim, H1_E_START_LINE_TOO_LONG);
			if (c != ' ') {
				err = c == '\r' || c == '\n' ? H1_E_REQUEST_LINE : H1_E_TARGET;
				goto fail;
			}
			if (pos == st->mark) {
				err = H1_E_REQUEST_LINE;
				goto fail;
			}
			st->t_off = st->mark;
			st->t_len = pos - st->mark;
			err = check_target(st, b);
			if (err)
				goto fail;
			st->mark = ++pos;
			st->state = HS_VERSION;
			break;
		}

		case HS_VERSION:
			while (pos - st->mark < 8) {
				NEED(sl_lim, H1_E_START_LINE_TOO_LONG);
				if (!version_byte_ok(pos - st->mark, c)) {
					err = H1_E_VERSION;
					goto fail;
				}
				pos++;
			}
			NEED(sl_lim, H1_E_START_LINE_TOO_LONG);
			if (c != (req ? '\r' : ' ')) {
				err = c == '\n' ? H1_E_BARE_LF : !req && c == '\r' ? H1_E_STATUS : H1_E_VERSION;
				goto fail;
			}
			if (b[st->mark + 5] != '1' || b[st->mark + 7] > '1') {
				err = H1_E_VERSION_UNSUPPORTED;
				goto fail;
			}
			st->minor = (uint8_t)(b[st->mark + 7] - '0');
			st->mark = ++pos;
			st->state = req ? HS_START_LF : HS_STATUS;
			break;

		case HS_STATUS:
			while (pos - st->mark < 3) {
				NEED(sl_lim, H1_E_START_LINE_TOO_LONG);
				if (!IS_DIGIT(c)) {
					err = H1_E_STATUS;
					goto fail;
				}
				pos++;
			}
			NEED(sl_lim, H1_E_START_LINE_TOO_LONG);
			st->status = (b[st->mark] - '0') * 100 + (b[st->mark + 1] - '0') * 10 + (b[st->mark + 2] - '0');
			if (st->status < 100 || st->status > 599 || (c != ' ' && c != '\r')) {
				err = H1_E_STATUS;
				goto fail;
			}
			/* "HTTP/1.1 200\r\n" (no SP, no reason) is accepted: framing is unaffected */
			if (c == ' ')
				pos++;
			st->mark = pos;
			st->state = HS_REASON;
			break;

		case HS_REASON:
			SCAN_FVAL(sl_lim, H1_E_START_LINE_TOO_LONG);
			if (c != '\r') {
				err = c == '\n' ? H1_E_BARE_LF : H1_E_REASON;
				goto fail;
			}
			st->a_off = st->mark;
			st->a_len = pos - st->mark;
			pos++;
			st->state = HS_START_LF;
			break;

		case HS_START_LF:
			NEED(sl_lim, H1_E_START_LINE_TOO_LONG);
			if (c != '\n') {
				err = H1_E_BARE_CR;
				goto fail;
			}
			st->block_start = ++pos;
			hl_lim = sat_add(st->block_start, lim->max_header_bytes);
			st->state = HS_LINE;
			break;

		case HS_LINE:
			NEED(hl_lim, H1_E_HEADERS_TOO_LARGE);
			if (c == '\r') {
				pos++;
				st->state = HS_FINAL_LF;
				break;
			}
			if (c == '\n' || c == ' ' || c == '\t') {
				/* SP/HTAB here is obs-fold, or whitespace before the first field
				 * (RFC 9112 2.2, 5.2): rejected either way */
				err = c == '\n' ? H1_E_BARE_LF : H1_E_OBS_FOLD;
				goto fail;
			}
			if (st->n_headers >= maxh) {
				err = H1_E_TOO_MANY_HEADERS;
				goto fail;
			}
			st->mark = pos;
			st->state = HS_NAME;
			break;

		case HS_NAME:
			SCAN(C_TCHAR, hl_lim, H1_E_HEADERS_TOO_LARGE);
			if (c != ':' || pos == st->mark) {
				err = c == ' ' || c == '\t' ? H1_E_HEADER_WS : H1_E_HEADER_NAME;
				goto fail;
			}
			st->name_len = pos - st->mark;
			pos++;
			st->state = HS_VALUE_OWS;
			break;

		case HS_VALUE_OWS:
			SCAN(C_WS, hl_lim, H1_E_HEADERS_TOO_LARGE);
			st->vstart = pos;
			st->state = HS_VALUE;
			/* fall through */
		case HS_VALUE:
			SCAN_FVAL(hl_lim, H1_E_HEADERS_TOO_LARGE);
			if (c != '\r') {
				err = c == '\n' ? H1_E_BARE_LF : H1_E_HEADER_VALUE;
				goto fail;
			}
			st->vend = pos;
			while (st->vend > st->vstart && IS_WSC(b[st->vend - 1]))
				st->vend--;
			pos++;
			st->state = HS_VALUE_LF;
			break;

		case HS_VALUE_LF:
			NEED(hl_lim, H1_E_HEADERS_TOO_LARGE);
			if (c != '\n') {
				err = H1_E_BARE_CR;
				goto fail;
			}
			hdrs[st->n_headers] = (struct h1_header){
				.name = (const char *)b + st->mark,
				.name_len = st->name_len,
				.value = (const char *)b + st->vstart,
				.value_len = st->vend - st->vstart,
			};
			err = on_field(st, b, req);
			if (err)
				goto fail;
			st->n_headers++;
			pos++;
			st->state = HS_LINE;
			break;

		case HS_FINAL_LF:
			NEED(hl_lim, H1_E_HEADERS_TOO_LARGE);
			if (c != '\n') {
				err = H1_E_BARE_CR;
				goto fail;
			}
			pos++;
			err = finish_head(st, req);
			if (err)
				goto fail;
			st->pos = pos;
			st->state = HS_DONE;
			st->result = (int)pos; /* < 2 * H1_LIMIT_CAP + 4 */
			return st->result;

		default: /* HS_DONE, HS_ERROR */
			return st->result;
		}
	}

incomplete:
	st->pos = pos;
	return H1_INCOMPLETE;
fail:
	st->pos = pos;
	st->state = HS_ERROR;
	st->result = err;
	return err;
}

/* Starts over when the caller's buffer or header array moved, or shrank. */
static void begin(struct h1_head_state *st, const char *buf, size_t len, const struct h1_header *hdrs,
		  uint8_t req_method)
{
	if (st->base == buf && st->hdrs == hdrs && len >= st->pos)
		return;
	memset(st, 0, sizeof(*st));
	st->base = buf;
	st->hdrs = hdrs;
	st->content_length = -1;
	st->method = req_method;
}

void h1_request_init(struct h1_request *req)
{
	memset(req, 0, sizeof(*req));
	req->content_length = -1;
}

void h1_response_init(struct h1_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->content_length = -1;
}

int h1_parse_request(const char *buf, size_t len, struct h1_request *req, struct h1_header *hdrs, size_t max_hdrs,
		     const struct h1_limits *lim)
{
	struct h1_limits l = get_limits(lim);
	struct h1_head_state *st;
	int r;

	if (!req || (!buf && len) || (!hdrs && max_hdrs))
		return H1_E_ARG;
	st = &req->st;
	begin(st, buf, len, hdrs, H1_M_OTHER);
	r = parse_head(st, (const unsigned char *)buf, len, true, hdrs,
		       max_hdrs < l.max_headers ? max_hdrs : l.max_headers, &l);
	if (r <= 0)
		return r;

	req->method = buf + st->a_off;
	req->method_len = st->a_len;
	req->method_id = (enum h1_method)st->method;
	req->target = buf + st->t_off;
	req->target_len = st->t_len;
	req->target_form = (enum h1_target_form)st->form;
	req->path = buf + st->path_off;
	req->path_len = st->path_len;
	req->host = (st->flags & H1_F_HAS_HOST) || st->form == H1_TARGET_ABSOLUTE || st->form == H1_TARGET_AUTHORITY
			    ? buf + st->host_off
			    : NULL;
	req->host_len = req->host ? st->host_len : 0;
	req->minor_version = st->minor;
	req->headers = hdrs;
	req->n_headers = st->n_headers;
	req->chunked = (st->flags & H1_F_HAS_TE) != 0;
	req->content_length = req->chunked ? -1 : st->content_length;
	req->keep_alive = st->minor ? !(st->flags & H1_F_CONN_CLOSE)
				    : (st->flags & (H1_F_CONN_KEEP_ALIVE | H1_F_CONN_CLOSE)) == H1_F_CONN_KEEP_ALIVE;
	/* HTTP/1.0: ignore 100-continue (RFC 9110 10.1.1) and Upgrade (7.8) */
	req->expect_continue = st->minor == 1 && (st->internal & I_EXPECT_CONTINUE);
	req->upgrade = st->minor == 1 && (st->flags & H1_F_CONN_UPGRADE) && (st->flags & H1_F_HAS_UPGRADE);
	req->upgrade_proto = (st->flags & H1_F_HAS_UPGRADE) ? buf + st->up_off : NULL;
	req->upgrade_proto_len = (st->flags & H1_F_HAS_UPGRADE) ? st->up_len : 0;
	req->flags = st->flags;
	req->head_len = (size_t)r;
	return r;
}

int h1_parse_response(const char *buf, size_t len, enum h1_method req_method, struct h1_response *resp,
		      struct h1_header *hdrs, size_t max_hdrs, const struct h1_limits *lim)
{
	struct h1_limits l = get_limits(lim);
	struct h1_head_state *st;
	int r, s;

	if (!resp || (!buf && len) || (!hdrs && max_hdrs))
		return H1_E_ARG;
	st = &resp->st;
	if (st->method != (uint8_t)req_method)
		st->base = NULL; /* force a restart */
	begin(st, buf, len, hdrs, (uint8_t)req_method);
	r = parse_head(st, (const unsigned char *)buf, len, false, hdrs,
		       max_hdrs < l.max_headers ? max_hdrs : l.max_headers, &l);
	if (r <= 0)
		return r;

	s = st->status;
	resp->minor_version = st->minor;
	resp->status = s;
	resp->reason = buf + st->a_off;
	resp->reason_len = st->a_len;
	resp->headers = hdrs;
	resp->n_headers = st->n_headers;
	resp->content_length = st->content_length;
	resp->interim = s < 200 && s != 101;
	resp->tunnel = s == 101 || (req_method == H1_M_CONNECT && s >= 200 && s < 300);
	resp->no_body = s < 200 || s == 204 || s == 304 || req_method == H1_M_HEAD || resp->tunnel;
	resp->chunked = !resp->no_body && (st->internal & I_TE_LAST_CHUNKED);
	/* RFC 9112 6.3: a final coding other than chunked, or no length at all */
	resp->close_delimited = !resp->no_body && !resp->chunked &&
				((st->flags & H1_F_HAS_TE) || !(st->flags & H1_F_HAS_CL));
	resp->keep_alive = !resp->close_delimited && !resp->tunnel &&
			   (st->minor ? !(st->flags & H1_F_CONN_CLOSE)
				      : (st->flags & (H1_F_CONN_KEEP_ALIVE | H1_F_CONN_CLOSE)) == H1_F_CONN_KEEP_ALIVE);
	resp->flags = st->flags;
	resp->head_len = (size_t)r;
	return r;
}

const struct h1_header *h1_find_header(const struct h1_header *hdrs, size_t n, const char *name, size_t name_len)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		if (hdrs[i].name_len != name_len)
			continue;
		for (k = 0; k < name_len; k++)
			if (lower((unsigned char)hdrs[i].name[k]) != lower((unsigned char)name[k]))
				break;
		if (k == name_len)
			return &hdrs[i];
	}
	return NULL;
}

/* ---- bodies ----------------------------------------------------------------- */

enum {
	CS_SIZE = 0,     /* chunk-size hex digits */
	CS_SIZE_BWS,     /* whitespace after the size: only ';' may follow */
	CS_EXT_PRE_NAME, /* after ';' */
	CS_EXT_NAME,
	CS_EXT_POST_NAME, /* whitespace after a name: '=' or ';' may follow */
	CS_EXT_PRE_VAL,   /* after '=' */
	CS_EXT_TOKEN,
	CS_EXT_QSTR,
	CS_EXT_QSTR_ESC,
	CS_EXT_AFTER_QSTR,
	CS_EXT_POST_VAL, /* whitespace after a value: only ';' may follow */
	CS_SIZE_LF,
	CS_DATA,
	CS_DATA_CR,
	CS_DATA_LF,
	CS_TR_LINE,
	CS_TR_NAME,
	CS_TR_VALUE,
	CS_TR_VALUE_LF,
	CS_TR_FINAL_LF,
};

void h1_body_init(struct h1_body *b, int64_t content_length, bool chunked, const struct h1_limits *lim)
{
	struct h1_limits l = get_limits(lim);

	memset(b, 0, sizeof(*b));
	b->max_chunk_line = l.max_chunk_line;
	b->max_trailer_bytes = l.max_header_bytes;
	b->max_trailers = l.max_headers;
	if (chunked) {
		b->kind = H1_BODY_CHUNKED;
		b->state = CS_SIZE;
	} else if (content_length >= 0) {
		b->kind = H1_BODY_LENGTH;
		b->remaining = (uint64_t)content_length;
		b->done = content_length == 0;
	} else {
		b->kind = H1_BODY_CLOSE;
	}
}

void h1_body_init_request(struct h1_body *b, const struct h1_request *req, const struct h1_limits *lim)
{
	h1_body_init(b, req->content_length < 0 ? 0 : req->content_length, req->chunked, lim);
}

void h1_body_init_response(struct h1_body *b, const struct h1_response *resp, const struct h1_limits *lim)
{
	if (resp->no_body || resp->tunnel)
		h1_body_init(b, 0, false, lim);
	else if (resp->close_delimited)
		h1_body_init(b, -1, false, lim);
	else
		h1_body_init(b, resp->content_length, resp->chunked, lim);
}

int h1_body_eof(const struct h1_body *b)
{
	return b->done || (b->kind == H1_BODY_CLOSE && !b->error) ? 1 : H1_E_BODY_TRUNCATED;
}

/*
 * The chunked decoder (RFC 9112 7.1): one switch per framing byte, data
 * skipped in bulk. Strict where parsers are known to disagree (the request
 * smuggling literature): no whitespace after the size unless an extension
 * follows, no bare CR or LF anywhere, CRLF exactly after the data, extensions
 * and trailers fully validated and bounded.
 */
static int chunked_feed(struct h1_body *b, const unsigned char *p, size_t len, size_t *consumed, size_t *data_off,
			size_t *data_len)
{
	size_t i = 0;
	int err;

	while (i < len) {
		unsigned char c = p[i];

		if (b->state == CS_DATA) {
			size_t n = len - i;

			if ((uint64_t)n > b->remaining)
				n = (size_t)b->remaining;
			b->remaining -= n;
			if (b->remaining == 0)
				b->state = CS_DATA_CR;
			if (data_off) {
				*data_off = i;
				*data_len = n;
				*consumed = i + n;
				return 0;
			}
			i += n;
			continue;
		}
		if (b->state <= CS_SIZE_LF) {
			if (++b->line_len > b->max_chunk_line) {
				err = H1_E_CHUNK_LINE_TOO_LONG;
				goto fail;
			}
		} else if (b->state >= CS_TR_LINE) {
			if (++b->trailer_bytes > b->max_trailer_bytes) {
				err = H1_E_TRAILERS_TOO_LARGE;
				goto fail;
			}
		}
		if (c == '\n' && b->state != CS_SIZE_LF && b->state != CS_DATA_LF && b->state != CS_TR_VALUE_LF &&
		    b->state != CS_TR_FINAL_LF) {
			err = b->state == CS_DATA_CR ? H1_E_CHUNK_DATA : H1_E_BARE_LF;
			goto fail;
		}
		i++;
		switch (b->state) {
		case CS_SIZE:
			if (cls[c] & C_HEX) {
				if (b->remaining >> 60) {
					err = H1_E_CHUNK_SIZE;
					goto fail;
				}
				b->remaining = b->remaining << 4 |
					       (uint64_t)(IS_DIGIT(c) ? c - '0' : lower(c) - 'a' + 10);
				b->ndigits = 1;
				break;
			}
			if (!b->ndigits) {
				err = H1_E_CHUNK_SIZE;
				goto fail;
			}
			if (c == '\r')
				b->state = CS_SIZE_LF;
			else if (c == ';')
				b->state = CS_EXT_PRE_NAME;
			else if (IS_WSC(c))
				b->state = CS_SIZE_BWS;
			else {
				err = H1_E_CHUNK_SIZE;
				goto fail;
			}
			break;
		case CS_SIZE_BWS:
			if (c == ';')
				b->state = CS_EXT_PRE_NAME;
			else if (!IS_WSC(c)) {
				err = H1_E_CHUNK_SIZE;
				goto fail;
			}
			break;
		case CS_EXT_PRE_NAME:
			if (cls[c] & C_TCHAR)
				b->state = CS_EXT_NAME;
			else if (!IS_WSC(c)) {
				err = H1_E_CHUNK_EXT;
				goto fail;
			}
			break;
		case CS_EXT_NAME:
		case CS_EXT_TOKEN:
			if (cls[c] & C_TCHAR)
				break;
			if (c == '\r')
				b->state = CS_SIZE_LF;
			else if (c == ';')
				b->state = CS_EXT_PRE_NAME;
			else if (c == '=' && b->state == CS_EXT_NAME)
				b->state = CS_EXT_PRE_VAL;
			else if (IS_WSC(c))
				b->state = b->state == CS_EXT_NAME ? CS_EXT_POST_NAME : CS_EXT_POST_VAL;
			else {
				err = H1_E_CHUNK_EXT;
				goto fail;
			}
			break;
		case CS_EXT_POST_NAME:
		case CS_EXT_POST_VAL:
			if (c == ';')
				b->state = CS_EXT_PRE_NAME;
			else if (c == '=' && b->state == CS_EXT_POST_NAME)
				b->state = CS_EXT_PRE_VAL;
			else if (!IS_WSC(c)) {
				err = H1_E_CHUNK_EXT;
				goto fail;
			}
			break;
		case CS_EXT_PRE_VAL:
			if (cls[c] & C_TCHAR)
				b->state = CS_EXT_TOKEN;
			else if (c == '"')
				b->state = CS_EXT_QSTR;
			else if (!IS_WSC(c)) {
				err = H1_E_CHUNK_EXT;
				goto fail;
			}
			break;
		case CS_EXT_QSTR:
			if (c == '"')
				b->state = CS_EXT_AFTER_QSTR;
			else if (c == '\\')
				b->state = CS_EXT_QSTR_ESC;
			else if (!(cls[c] & C_QD)) {
				err = H1_E_CHUNK_EXT;
				goto fail;
			}
			break;
		case CS_EXT_QSTR_ESC:
			/* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
			if (!(cls[c] & C_FVAL)) {
				err = H1_E_CHUNK_EXT;
				goto fail;
			}
			b->state = CS_EXT_QSTR;
			break;
		case CS_EXT_AFTER_QSTR:
			if (c == '\r')
				b->state = CS_SIZE_LF;
			else if (c == ';')
				b->state = CS_EXT_PRE_NAME;
			else if (IS_WSC(c))
				b->state = CS_EXT_POST_VAL;
			else {
				err = H1_E_CHUNK_EXT;
				goto fail;
			}
			break;
		case CS_SIZE_LF:
			if (c != '\n') {
				err = H1_E_BARE_CR;
				goto fail;
			}
			b->line_len = 0;
			b->ndigits = 0;
			b->state = b->remaining ? CS_DATA : CS_TR_LINE;
			break;
		case CS_DATA_CR:
			if (c != '\r') {
				err = H1_E_CHUNK_DATA;
				goto fail;
			}
			b->state = CS_DATA_LF;
			break;
		case CS_DATA_LF:
			if (c != '\n') {
				err = H1_E_CHUNK_DATA;
				goto fail;
			}
			b->state = CS_SIZE;
			break;
		case CS_TR_LINE:
			if (c == '\r') {
				b->state = CS_TR_FINAL_LF;
				break;
			}
			if (IS_WSC(c)) {
				err = H1_E_OBS_FOLD;
				goto fail;
			}
			if (b->n_trailers >= b->max_trailers) {
				err = H1_E_TRAILERS_TOO_LARGE;
				goto fail;
			}
			if (!(cls[c] & C_TCHAR)) {
				err = H1_E_HEADER_NAME;
				goto fail;
			}
			b->n_trailers++;
			b->state = CS_TR_NAME;
			break;
		case CS_TR_NAME:
			if (c == ':')
				b->state = CS_TR_VALUE;
			else if (!(cls[c] & C_TCHAR)) {
				err = IS_WSC(c) ? H1_E_HEADER_WS : H1_E_HEADER_NAME;
				goto fail;
			}
			break;
		case CS_TR_VALUE:
			if (c == '\r')
				b->state = CS_TR_VALUE_LF;
			else if (!(cls[c] & C_FVAL)) {
				err = H1_E_HEADER_VALUE;
				goto fail;
			}
			break;
		case CS_TR_VALUE_LF:
			if (c != '\n') {
				err = H1_E_BARE_CR;
				goto fail;
			}
			b->state = CS_TR_LINE;
			break;
		case CS_TR_FINAL_LF:
			if (c != '\n') {
				err = H1_E_BARE_CR;
				goto fail;
			}
			b->done = true;
			*consumed = i;
			return 1;
		default:
			err = H1_E_ARG;
			goto fail;
		}
	}
	*consumed = i;
	return 0;
fail:
	*consumed = i;
	b->error = err;
	return err;
}

int h1_body_feed(struct h1_body *b, const char *buf, size_t len, size_t *consumed, size_t *data_off, size_t *data_len)
{
	size_t n;

	*consumed = 0;
	if (data_off && data_len)
		*data_off = *data_len = 0;
	else
		data_off = data_len = NULL;
	if (b->error)
		return b->error;
	if (b->done)
		return 1;
	switch (b->kind) {
	case H1_BODY_LENGTH:
		n = (uint64_t)len < b->remaining ? len : (size_t)b->remaining;
		b->remaining -= n;
		*consumed = n;
		if (data_off)
			*data_len = n;
		if (b->remaining == 0) {
			b->done = true;
			return 1;
		}
		return 0;
	case H1_BODY_CLOSE:
		*consumed = len;
		if (data_off)
			*data_len = len;
		return 0;
	case H1_BODY_CHUNKED:
		return chunked_feed(b, (const unsigned char *)buf, len, consumed, data_off, data_len);
	}
	return H1_E_ARG;
}

const char *h1_status_text(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

bool h1_is_tchar(unsigned char c)
{
	return IS_TCHAR(c);
}

bool h1_name_is(const struct h1_header *h, const char *lc, size_t n)
{
	return h->name_len == n && strncasecmp(h->name, lc, n) == 0;
}
