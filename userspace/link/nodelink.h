/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nodelink: the client leg of the node-to-node mutual TLS connection
 * (docs/security.md, "The inter-agent connection"), written once for every
 * path that dials another node's agent: tcp/relay for opaque TCP, and
 * http/h1pool's pooled HTTP upstreams. After the caller's TCP connect: TLS client handshake, the prefix
 * (the encoded preamble) written, the 8-byte preamble reply read and
 * decoded. Only a reply "ok" connects.
 *
 * May call: tls/tls, codec/preamble, lib/ (log). Nothing else: no libev, no
 * sockets, no timers. The caller owns the socket, the struct tls_conn (client
 * side, over that socket), the watcher and the deadline; a struct nodelink
 * is plain memory the caller allocates (embedded or malloc'd; about 660
 * bytes, most of it the prefix) and drops with no cleanup call. One
 * nodelink per attempt and thread, like the tls_conn it drives.
 *
 * Use, in a non-blocking loop:
 *   nodelink_init(l, prefix, len, "relay %p: attempt %u", r, n);
 *   ... TCP connect completes ...
 *   rc = nodelink_step(l, tls);   (again on every event of the socket)
 *   -EAGAIN -> wait for tls_want(tls) (readable or writable), step again;
 *   0       -> connected: the link's bytes are the application's from here;
 *   other   -> the attempt failed: -errno, l->tls_fail, l->reply_status;
 *   deadline passed -> rc = nodelink_expire(l) (-ETIMEDOUT).
 *
 * Errno of a failed attempt (the contract relay.h documents for its
 * RELAY_EV_CONNECT_FAIL):
 *   EPROTO       TLS failure (certificates, alerts, protocol, the peer
 *                closing during the handshake or before its reply), a reply
 *                that is garbage, or reply "bad_preamble";
 *   EACCES       reply "denied";  ECONNREFUSED  "unknown_target" or
 *                "unreachable";   EBUSY  "overloaded";
 *   ECONNRESET / EIO   socket reset / other socket error inside TLS;
 *   ENOMEM       the TLS layer failed internally (memory, library error);
 *   ETIMEDOUT    nodelink_expire.
 *
 * Logging, in one place (the attempt's end) and at one level, debug: one
 * line per failed attempt, "<name>: <why>", where why is
 *   "TLS failed (<tls_fail_name>): <tls_conn_detail>",
 *   "peer closed before its preamble reply", "not a preamble reply",
 *   "peer agent replied <status>", or "timed out <in which step>".
 * Nothing on success (the caller logs the connect). Debug because a peer
 * that refuses every attempt would otherwise log at the connection rate; the
 * caller counts failures by reason (tls_fail, reply_status) and keeps its
 * own line per failed attempt (service, errno) at whatever level it has.
 */
#ifndef WEFT_NODELINK_H
#define WEFT_NODELINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/preamble.h"

struct tls_conn;

#define NODELINK_PREFIX_MAX PREAMBLE_MAX /* 512: the receiver's preamble buffer */
#define NODELINK_NAME_MAX 128            /* log name; longer ones are cut */

enum nodelink_step {
	NODELINK_NEW,       /* nodelink_step not called yet: the caller's TCP connect */
	NODELINK_HANDSHAKE, /* TLS client handshake */
	NODELINK_PREFIX,    /* writing the prefix */
	NODELINK_REPLY,     /* reading the 8-byte preamble reply */
	NODELINK_DONE,      /* over: result holds the outcome */
};

/* One attempt's progress. Read tls_fail and reply_status; the rest is private. */
struct nodelink {
	uint8_t step;   /* enum nodelink_step */
	uint8_t got;    /* reply bytes read */
	uint16_t len;   /* prefix length */
	uint16_t off;   /* prefix bytes written */
	int16_t result; /* step DONE: what nodelink_step returns from now on */
	/*
	 * Why the attempt failed at the TLS layer (enum tls_fail): the TLS
	 * layer's own reason (tls_conn_fail) for a failed handshake, prefix
	 * write or reply read (a peer refusing our certificate shows as
	 * TLS_FAIL_PEER_ALERT on the reply read); TLS_FAIL_CLOSED also when the
	 * peer sent close_notify (or FIN) instead of a reply; TLS_FAIL_TIMEOUT
	 * when nodelink_expire came during the handshake; TLS_FAIL_NONE
	 * otherwise (connected, a reply other than "ok", garbage, a timeout
	 * after the handshake or before it began).
	 */
	int16_t tls_fail;
	/* The reply's status (enum preamble_status, "ok" included), or -1: none (yet) or garbage. */
	int16_t reply_status;
	uint8_t reply[PREAMBLE_REPLY_LEN];
	char name[NODELINK_NAME_MAX];
	uint8_t prefix[NODELINK_PREFIX_MAX];
};

/*
 * Starts an attempt: prefix[0 .. len) is written right after the handshake
 * (copied; it may point into l->prefix itself, so a caller can encode the
 * preamble in place). len 0 writes nothing and goes straight to the reply.
 * fmt... names the attempt in the log lines ("relay 0x...: attempt 2").
 * Returns 0, or -EINVAL (len > NODELINK_PREFIX_MAX, or prefix NULL with
 * len > 0) and then l is untouched.
 */
int nodelink_init(struct nodelink *l, const void *prefix, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Advances handshake -> prefix -> reply as far as the socket allows, on a
 * client-side tls over the caller's connected socket (the same tls on every
 * call). Returns 0 (reply "ok": connected), -EAGAIN (wait for tls_want(tls),
 * then call again), or the attempt's -errno (top of this file). Once it has
 * returned anything but -EAGAIN it returns that again and does not touch tls.
 * Reads exactly the reply's 8 bytes: what the peer sent behind it stays in
 * the TLS layer for the caller (read it with tls_read at once: tls_pending
 * may hold it already, with nothing left on the socket to wake a poller).
 * No allocation; O(bytes moved).
 */
int nodelink_step(struct nodelink *l, struct tls_conn *tls);

/*
 * The caller's deadline for the whole attempt passed. Returns -ETIMEDOUT
 * and ends the attempt (tls_fail = TLS_FAIL_TIMEOUT when it was in the
 * handshake); an attempt already over keeps its result, which is returned.
 * Logs which step timed out, except before the first nodelink_step (the TCP
 * connect is the caller's).
 */
int nodelink_expire(struct nodelink *l);

/* True once nodelink_step ran: the caller's TCP connect is done. */
static inline bool nodelink_started(const struct nodelink *l)
{
	return l->step != NODELINK_NEW;
}

#endif
