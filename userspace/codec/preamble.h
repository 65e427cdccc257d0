/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * preamble: the first bytes the connecting agent sends inside the mutual TLS
 * connection, naming what it wants to reach; and the receiving agent's
 * one-status reply. Both are parsed from bytes a peer chose: every field is
 * bounded and checked, and decoding works on partial input.
 *
 * Preamble, version 1 (integers big-endian):
 *   off len
 *    0   4  magic "WEFT"
 *    4   1  version = 1
 *    5   1  flags: 0x01 protocol hint, 0x02 service name, 0x04 claimed
 *           identity; every other bit must be 0
 *    6   2  N = length of the body that follows; 8 + N <= PREAMBLE_MAX
 *    8   1  address family: 4 or 6
 *    9   2  target port, 1..65535
 *   11 4|16 target address (IPv4-mapped IPv6 is read as IPv4)
 *   then, each present only when its flag is set, in this order:
 *        1  protocol hint: 1 tcp, 2 http/1.x, 3 http/2, 4 tls
 *      1+L  service name: L = 1..63, [a-z0-9][a-z0-9._-]*
 *      1+L  claimed identity: L = 1..255 printable ASCII (0x21..0x7e)
 *   the body ends exactly at 8 + N (no trailing bytes).
 *
 * What is trusted: nothing here is authentication. The caller's identity is
 * the verified certificate's URI SAN (tls_peer_identity); the claimed
 * identity is only for logs (a mismatch is worth a warning). The target is a
 * request: the receiver must check that it is one of its own local endpoints
 * (and of the named service, when named) before connecting, or the mesh is an
 * open proxy. The protocol hint may pick a parser, never a policy.
 *
 * Reply, version 1 (PREAMBLE_REPLY_LEN bytes): "WEFT", version 1, status,
 * two zero bytes. Sent by the receiver once it has connected to the target or
 * refused; the connecting agent may retry elsewhere on anything but
 * PREAMBLE_ST_OK, having delivered nothing from this peer to the application.
 * It may call: lib/addr.
 */
#ifndef WEFT_PREAMBLE_H
#define WEFT_PREAMBLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

#define PREAMBLE_MAGIC "WEFT"
#define PREAMBLE_VERSION 1
#define PREAMBLE_HDR_LEN 8
#define PREAMBLE_MAX 512 /* whole preamble, header included: the receiver's buffer */
#define PREAMBLE_SERVICE_MAX 63
#define PREAMBLE_CLAIMED_MAX 255
#define PREAMBLE_REPLY_LEN 8

#define PREAMBLE_F_PROTO 0x01u
#define PREAMBLE_F_SERVICE 0x02u
#define PREAMBLE_F_CLAIMED_ID 0x04u
#define PREAMBLE_F_KNOWN (PREAMBLE_F_PROTO | PREAMBLE_F_SERVICE | PREAMBLE_F_CLAIMED_ID)

enum preamble_proto {
	PREAMBLE_PROTO_NONE = 0, /* no hint (not on the wire) */
	PREAMBLE_PROTO_TCP = 1,
	PREAMBLE_PROTO_HTTP1 = 2,
	PREAMBLE_PROTO_HTTP2 = 3,
	PREAMBLE_PROTO_TLS = 4,
	PREAMBLE_PROTO_MAX = PREAMBLE_PROTO_TLS,
};

struct preamble {
	uint8_t version;                           /* decoded: always PREAMBLE_VERSION */
	uint8_t flags;                             /* decoded: as on the wire; ignored by encode */
	struct weft_sockaddr target;               /* AF_INET or AF_INET6 with port */
	enum preamble_proto proto;                 /* PREAMBLE_PROTO_NONE: absent */
	char service[PREAMBLE_SERVICE_MAX + 1];    /* "": absent */
	char claimed_id[PREAMBLE_CLAIMED_MAX + 1]; /* "": absent. NOT TRUSTED: logs only */
};

enum preamble_err {
	PREAMBLE_OK = 0,
	PREAMBLE_ERR_MAGIC,      /* not "WEFT": not a weft agent (or not after TLS) */
	PREAMBLE_ERR_VERSION,    /* a version this agent does not speak */
	PREAMBLE_ERR_FLAGS,      /* unknown flag bits */
	PREAMBLE_ERR_LENGTH,     /* body length below the minimum or beyond PREAMBLE_MAX */
	PREAMBLE_ERR_FAMILY,     /* address family not 4 or 6 */
	PREAMBLE_ERR_PORT,       /* port 0 */
	PREAMBLE_ERR_ADDR,       /* unspecified, multicast or broadcast address */
	PREAMBLE_ERR_PROTO,      /* unknown protocol hint */
	PREAMBLE_ERR_SERVICE,    /* service name empty, too long or bad characters */
	PREAMBLE_ERR_CLAIMED_ID, /* claimed identity empty or not printable */
	PREAMBLE_ERR_TRUNCATED,  /* a field runs past the declared body length */
	PREAMBLE_ERR_TRAILING,   /* bytes left in the body after the last field */
	PREAMBLE_ERR__COUNT
};
/* "bad_magic", "bad_version", ...: metric labels and log reasons. */
const char *preamble_err_name(enum preamble_err e);

/*
 * Writes the preamble for p (version and flags are derived from the fields)
 * into buf. Returns its length (<= PREAMBLE_MAX), -ENOSPC when len is too
 * small, -EINVAL when a field would not decode (bad family, port 0, bad
 * service name, ...).
 */
int preamble_encode(void *buf, size_t len, const struct preamble *p);
/*
 * Can s travel as the service name (1..63 of [a-z0-9][a-z0-9._-]*)? A name
 * that cannot (a discovered "<namespace>/<name>:<port>") is left out: the
 * receiver then checks the target against all of its local endpoints.
 */
bool preamble_service_name_ok(const char *s);

/*
 * Decodes a preamble from the first len bytes the peer sent (all of them so
 * far: call again with more). Returns the number of bytes it took (the rest
 * are the application's), -EAGAIN when more bytes are needed, or -EINVAL with
 * *err set. Garbage is refused as early as the first byte that gives it away:
 * a peer cannot make the receiver wait for bytes that could never make a
 * preamble, and never for more than PREAMBLE_MAX in all. *out is written only
 * on success. O(len), no allocation.
 */
int preamble_decode(const void *buf, size_t len, struct preamble *out, enum preamble_err *err);

enum preamble_status {
	PREAMBLE_ST_OK = 0,             /* connected to the target: bytes follow */
	PREAMBLE_ST_DENIED = 1,         /* authorization policy refused the caller */
	PREAMBLE_ST_UNKNOWN_TARGET = 2, /* not a local endpoint of this node */
	PREAMBLE_ST_UNREACHABLE = 3,    /* connecting to the target failed */
	PREAMBLE_ST_BAD_PREAMBLE = 4,
	PREAMBLE_ST_OVERLOADED = 5, /* a limit was reached; try elsewhere */
	PREAMBLE_ST_MAX = PREAMBLE_ST_OVERLOADED,
};
const char *preamble_status_name(enum preamble_status s); /* "ok", "denied", ... */
/*
 * What a reply means to the connecting side, as an attempt's result: 0 (ok),
 * -EACCES (denied), -ECONNREFUSED (unknown_target, unreachable), -EBUSY
 * (overloaded), -EPROTO (bad_preamble: we sent something it did not take).
 */
int preamble_status_errno(enum preamble_status s);

/* PREAMBLE_REPLY_LEN, or -ENOSPC / -EINVAL (unknown status). */
int preamble_reply_encode(void *buf, size_t len, enum preamble_status st);
/* PREAMBLE_REPLY_LEN (bytes taken), -EAGAIN, or -EINVAL (bad magic, version, status, reserved bytes). */
int preamble_reply_decode(const void *buf, size_t len, enum preamble_status *st);

#endif
