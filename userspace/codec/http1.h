/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * http1: a strict, incremental, zero-copy HTTP/1.1 message parser for a proxy
 * (RFC 9110, RFC 9112). It parses request and response heads and tells where a
 * body ends; it never allocates, never copies and never writes to the input.
 * Everything it returns points into the caller's buffer.
 *
 * Heads. h1_parse_request()/h1_parse_response() return the length of the head
 * (> 0, up to and including the empty line) once it is complete, H1_INCOMPLETE
 * when more bytes are needed, or an H1_E_* code (< 0, != H1_INCOMPLETE) for a
 * message that must be rejected: h1_error_status() maps it to the status to
 * answer a client with (400, 414, 431, 501, 505; a response that fails to
 * parse is the upstream's fault: answer 502), h1_error_reason() to a short
 * text. After an error, close the connection: nothing after a bad head can be
 * framed safely.
 *
 * Incremental use. Initialise the message with h1_request_init() (or
 * h1_response_init()) once per message, then call the parser each time more
 * bytes arrive, with the same message struct, the same header array and the
 * same buffer start, and the new total length. The parser resumes where it
 * stopped, so a head costs O(its length) however it is split across reads (no
 * rescans: a byte-a-second client costs no more CPU than a fast one). If the
 * buffer start moves (realloc, compaction) the parser notices and starts
 * over from the new start, which is correct, only slower. Calling the parser
 * again after it finished returns the same result. Parsing the same bytes in
 * one call or split anywhere gives the same result (the fuzzer checks this).
 *
 * Bodies. struct h1_body tells where a body ends: Content-Length counting, the
 * chunked decoder (chunk-size lines, extensions, trailers, all validated and
 * bounded) and close-delimited responses. The proxy forwards bytes verbatim;
 * the decoder can also report where payload data is (for buffering retries).
 *
 * Costs: one pass over each byte, one 256-entry table lookup per byte in the
 * hot loops, no calls per byte; semantic work (Content-Length,
 * Transfer-Encoding, Host, Connection, Expect, Upgrade) once per header line,
 * selected by name length before any comparison. See docs/http1.md for what
 * is accepted and rejected, and why.
 * It may call: libc only.
 */
#ifndef WEFT_HTTP1_H
#define WEFT_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Return codes. Positive values are lengths. */
enum {
	H1_INCOMPLETE = -11, /* like -EAGAIN: need more bytes */

	H1_E_BARE_CR = -1001,     /* 400 CR not followed by LF */
	H1_E_BARE_LF,             /* 400 LF not preceded by CR */
	H1_E_REQUEST_LINE,        /* 400 separators: not "method SP target SP version" */
	H1_E_METHOD,              /* 400 method is not a token */
	H1_E_TARGET,              /* 400 request-target: bad character or form */
	H1_E_VERSION,             /* 400 not "HTTP/" DIGIT "." DIGIT */
	H1_E_VERSION_UNSUPPORTED, /* 505 well formed but not HTTP/1.0 or HTTP/1.1 */
	H1_E_STATUS,              /* 400 status code not 3 digits in 100..599 */
	H1_E_REASON,              /* 400 control character in reason phrase */
	H1_E_START_LINE_TOO_LONG, /* 414 request (or status) line over the limit */
	H1_E_HEADERS_TOO_LARGE,   /* 431 header block over the byte limit */
	H1_E_TOO_MANY_HEADERS,    /* 431 more field lines than the limit */
	H1_E_HEADER_NAME,         /* 400 empty or non-token field name, or no colon */
	H1_E_HEADER_WS,           /* 400 whitespace between field name and colon */
	H1_E_HEADER_VALUE,        /* 400 control character (not HTAB) in a field value */
	H1_E_OBS_FOLD,            /* 400 field line starting with SP/HTAB (obs-fold) */
	H1_E_CL_INVALID,          /* 400 Content-Length not 1*DIGIT or overflowing */
	H1_E_CL_CONFLICT,         /* 400 several Content-Length with different values */
	H1_E_CL_AND_TE,           /* 400 both Content-Length and Transfer-Encoding */
	H1_E_TE_INVALID,          /* 400 Transfer-Encoding empty, empty element, not tokens */
	H1_E_TE_UNKNOWN,          /* 501 coding we do not implement (requests: all but chunked) */
	H1_E_TE_CHUNKED_REPEATED, /* 400 chunked applied twice */
	H1_E_TE_NOT_CHUNKED,      /* 400 request whose final coding is not chunked */
	H1_E_TE_HTTP10,           /* 400 Transfer-Encoding in an HTTP/1.0 message */
	H1_E_HOST_MISSING,        /* 400 HTTP/1.1 request without Host */
	H1_E_HOST_REPEATED,       /* 400 more than one Host field line */
	H1_E_HOST_INVALID,        /* 400 Host is not uri-host [ ":" port ] */
	H1_E_CHUNK_SIZE,          /* 400 chunk-size not 1*HEXDIG or overflowing */
	H1_E_CHUNK_EXT,           /* 400 malformed chunk extension */
	H1_E_CHUNK_LINE_TOO_LONG, /* 400 chunk-size line (with extensions) over the limit */
	H1_E_CHUNK_DATA,          /* 400 chunk data not followed by CRLF */
	H1_E_TRAILERS_TOO_LARGE,  /* 431 trailer section over the byte or count limit */
	H1_E_BODY_TRUNCATED,      /* 400 connection closed before the body ended */
	H1_E_ARG,                 /* 500 API misuse (NULL message, ...) */
	H1_E_LAST_
};

/* The HTTP status to answer a client with for a request error (502 is right
 * for any response error), and a short reason for logs and error pages.
 * Unknown codes give 400 / "bad request". */
int h1_error_status(int err);
const char *h1_error_reason(int err);
/* The standard reason phrase of a status code ("Not Found"), "Unknown" for codes without one here. */
const char *h1_status_text(int status);

/*
 * Limits. 0 in a field means the default. Every byte of the request (or status)
 * line, including leading empty lines and the CRLF, must lie within the first
 * max_start_line + 2 bytes; the field lines plus the final CRLF within
 * max_header_bytes; trailers use max_header_bytes and max_headers too.
 */
struct h1_limits {
	size_t max_start_line;   /* default 8192 */
	size_t max_header_bytes; /* default 65536 */
	size_t max_headers;      /* default 100 */
	size_t max_chunk_line;   /* default 4096: chunk-size line incl. extensions and CRLF */
};
#define H1_DEFAULT_MAX_START_LINE 8192
#define H1_DEFAULT_MAX_HEADER_BYTES 65536
#define H1_DEFAULT_MAX_HEADERS 100
#define H1_DEFAULT_MAX_CHUNK_LINE 4096

/* A field line; name and value point into the caller's buffer. The value has
 * its leading and trailing whitespace removed and may be empty. */
struct h1_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

enum h1_method {
	H1_M_OTHER = 0, /* any other token: extension methods are allowed */
	H1_M_GET,
	H1_M_HEAD,
	H1_M_POST,
	H1_M_PUT,
	H1_M_DELETE,
	H1_M_CONNECT,
	H1_M_OPTIONS,
	H1_M_TRACE,
	H1_M_PATCH,
};

enum h1_target_form {
	H1_TARGET_ORIGIN = 0, /* "/path?query" */
	H1_TARGET_ABSOLUTE,   /* "http://authority/path?query" (http or https only) */
	H1_TARGET_AUTHORITY,  /* "host:port", CONNECT only */
	H1_TARGET_ASTERISK,   /* "*", OPTIONS only */
};

/* flags: what the header block said, for the proxy to act on. */
#define H1_F_HAS_CL 0x0001u          /* Content-Length present */
#define H1_F_CL_REPEATED 0x0002u     /* ... more than once, same value: forward one */
#define H1_F_HAS_TE 0x0004u          /* Transfer-Encoding present */
#define H1_F_TE_OTHER 0x0008u        /* ... with codings besides chunked (responses only) */
#define H1_F_CONN_CLOSE 0x0010u      /* Connection: close */
#define H1_F_CONN_KEEP_ALIVE 0x0020u /* Connection: keep-alive */
#define H1_F_CONN_UPGRADE 0x0040u    /* Connection: upgrade */
#define H1_F_HAS_HOST 0x0080u        /* Host field present */
#define H1_F_HAS_UPGRADE 0x0100u     /* Upgrade field present and not empty */

/* Parser state inside a message: private, do not touch. */
struct h1_head_state {
	const char *base;             /* buffer start the offsets refer to */
	const struct h1_header *hdrs; /* header array in use */
	size_t pos;                   /* next byte to examine */
	size_t mark;                  /* start of the current element */
	size_t name_len, vstart, vend;
	size_t block_start;  /* offset of the first field line */
	size_t a_off, a_len; /* method, or reason phrase */
	size_t t_off, t_len; /* request-target */
	size_t path_off, path_len;
	size_t host_off, host_len;
	size_t up_off, up_len; /* Upgrade value */
	size_t n_headers;
	int64_t content_length;
	int result;        /* once finished */
	unsigned flags;    /* H1_F_* */
	unsigned internal; /* private bits */
	int status;
	uint8_t state, minor, method, form, acc;
};

struct h1_request {
	const char *method; /* token, case-sensitive */
	size_t method_len;
	enum h1_method method_id;
	const char *target; /* the request-target as sent */
	size_t target_len;
	enum h1_target_form target_form;
	const char *path;          /* path and query: the target for origin-form, */
	size_t path_len;           /* after the authority for absolute-form (may be
				       * empty: means "/"), empty for the other forms */
	const char *host;          /* the target's authority for absolute and authority */
	size_t host_len;           /* forms (RFC 9112 3.2.2), else the Host value; NULL
				       * when there is none (HTTP/1.0 without Host) */
	int minor_version;         /* 0 or 1 */
	struct h1_header *headers; /* the caller's array, n_headers filled */
	size_t n_headers;
	int64_t content_length;    /* -1 when absent */
	bool chunked;              /* the body is chunked (content_length is -1) */
	bool keep_alive;           /* 1.1 without "close", or 1.0 with "keep-alive" */
	bool expect_continue;      /* HTTP/1.1 and Expect: 100-continue */
	bool upgrade;              /* HTTP/1.1, Connection: upgrade and an Upgrade field */
	const char *upgrade_proto; /* the Upgrade value ("websocket"), when present */
	size_t upgrade_proto_len;
	unsigned flags;          /* H1_F_* */
	size_t head_len;         /* same as the parser's return value */
	struct h1_head_state st; /* private */
};

struct h1_response {
	int minor_version;
	int status;         /* 100..599 */
	const char *reason; /* may be empty */
	size_t reason_len;
	struct h1_header *headers;
	size_t n_headers;
	int64_t content_length; /* -1 when absent */
	bool chunked;           /* framing: chunked body follows */
	bool close_delimited;   /* framing: the body ends when the server closes */
	bool no_body;           /* 1xx, 204, 304, a response to HEAD, or tunnel */
	bool interim;           /* 1xx other than 101: the final response follows */
	bool tunnel;            /* 101, or 2xx to CONNECT: the rest is opaque bytes */
	bool keep_alive;        /* the connection may carry another exchange */
	unsigned flags;
	size_t head_len;
	struct h1_head_state st; /* private */
};

void h1_request_init(struct h1_request *req);
void h1_response_init(struct h1_response *resp);

/*
 * Parses a request head in buf[0..len). hdrs[0..max_hdrs) receives the field
 * lines; more than min(max_hdrs, lim->max_headers) is 431. lim may be NULL for
 * the defaults. Returns the head length, H1_INCOMPLETE or an H1_E_* error.
 * Leading empty lines (CRLF) before the request line are skipped (RFC 9112
 * 2.2) and counted in the head length.
 */
int h1_parse_request(const char *buf, size_t len, struct h1_request *req, struct h1_header *hdrs, size_t max_hdrs,
		     const struct h1_limits *lim);

/*
 * Parses a response head. req_method is the method of the request it answers
 * (H1_M_HEAD: no body; H1_M_CONNECT and 2xx: tunnel). Same returns.
 */
int h1_parse_response(const char *buf, size_t len, enum h1_method req_method, struct h1_response *resp,
		      struct h1_header *hdrs, size_t max_hdrs, const struct h1_limits *lim);

/* Case-insensitive lookup of the first field named name (len bytes); NULL if none. */
/* An RFC 9110 tchar: what methods, field names and tokens are made of (NUL is not). */
bool h1_is_tchar(unsigned char c);
/* h's name equals lc (n bytes, lower case), case-insensitively. */
bool h1_name_is(const struct h1_header *h, const char *lc, size_t n);

const struct h1_header *h1_find_header(const struct h1_header *hdrs, size_t n, const char *name, size_t name_len);

/* Body framing. */
enum h1_body_kind {
	H1_BODY_LENGTH = 0, /* Content-Length (0 for none) */
	H1_BODY_CHUNKED,
	H1_BODY_CLOSE, /* until the peer closes (responses only) */
};

struct h1_body {
	enum h1_body_kind kind;
	uint64_t remaining; /* LENGTH: body bytes left; CHUNKED: of this chunk */
	size_t line_len;    /* bytes of the current chunk-size line */
	size_t trailer_bytes, n_trailers;
	size_t max_chunk_line, max_trailer_bytes, max_trailers;
	uint8_t state;   /* private */
	uint8_t ndigits; /* private */
	bool done;
	int error; /* sticky error, 0 if none */
};

/*
 * Sets up body framing. chunked wins; else content_length >= 0 counts bytes;
 * else the body is close-delimited. lim may be NULL.
 */
void h1_body_init(struct h1_body *b, int64_t content_length, bool chunked, const struct h1_limits *lim);
/* Framing for a parsed request (no length and not chunked: no body). */
void h1_body_init_request(struct h1_body *b, const struct h1_request *req, const struct h1_limits *lim);
/* Framing for a parsed response (no_body and tunnel: no body). */
void h1_body_init_response(struct h1_body *b, const struct h1_response *resp, const struct h1_limits *lim);

/*
 * Feeds body bytes. *consumed is how many bytes of buf belong to this body
 * (always all of them unless the body ended inside buf: the rest is the next
 * message). Returns 1 when the body is complete (*consumed includes its last
 * byte), 0 when it needs more, or an H1_E_* error (sticky).
 *
 * data_off/data_len may be NULL: then the whole input is processed in one
 * call. If given, the call stops after the first span of payload data, which
 * is buf[*data_off .. *data_off + *data_len) (*data_len is 0 when the bytes
 * consumed held only framing); call again with buf + *consumed for the rest.
 * Cost: O(framing bytes) with one switch per framing byte; data spans O(1).
 */
int h1_body_feed(struct h1_body *b, const char *buf, size_t len, size_t *consumed, size_t *data_off, size_t *data_len);

/* The peer closed: 1 if that ends the body cleanly (close-delimited, or already
 * complete), else H1_E_BODY_TRUNCATED. */
int h1_body_eof(const struct h1_body *b);

static inline bool h1_body_done(const struct h1_body *b)
{
	return b->done;
}

#endif
