/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * relay: one proxied TCP connection inside a libev loop. Takes an accepted,
 * non-blocking client socket, connects upstream (trying further endpoints on
 * connect failure, each attempt bounded by a timeout), then moves bytes both
 * ways with backpressure, half-close and reset pass-through.
 *
 * Semantics:
 * - Backpressure: a side is not read while the buffer towards its peer is full.
 * - Half-close: EOF read from one side -> once its buffered bytes are written,
 *   shutdown(SHUT_WR) on the other side; the reverse direction keeps flowing.
 *   The relay ends when both directions are closed and flushed.
 * - Reset: ECONNRESET (or any hard error) on one side -> the other side is
 *   closed with SO_LINGER {1,0} so its peer sees a reset too.
 * - Connect: every attempt fails (refused, unreachable, timeout) -> the client
 *   is reset (SO_LINGER 0), never left hanging.
 * - Memory: buffers come from a per-loop pool only while they hold bytes, so an
 *   idle connection holds no buffer.
 *
 * Splice fast path (RELAY_SPLICE, added): each direction moves bytes with
 * splice(2), src socket -> pipe -> dst socket, so they never enter userspace.
 * Same semantics as above, with the pipe in the buffer's place: a direction
 * holds a pooled pipe only while bytes sit in it, and does not read its source
 * while the pipe holds bytes its destination cannot take yet.
 * - Fallback: when splice fails as unsupported (EINVAL, ENOSYS, EOPNOTSUPP:
 *   an old kernel, a socket type without splice support, a seccomp filter),
 *   the relay moves whatever sits in its pipes into pool buffers and carries
 *   on with the copy path (nothing is lost or reordered), and the pool turns
 *   splice off for every relay started later (one warning per pool; relays
 *   already splicing go on until they meet the error themselves). A relay
 *   that cannot get a pipe (EMFILE, ENFILE, ENOMEM) falls back alone, quietly;
 *   the pool keeps splicing.
 * - SIGPIPE: splice(2) has no MSG_NOSIGNAL, so writing to a socket whose peer
 *   has gone raises SIGPIPE. The first relay_start asking for splice on a pool
 *   checks the SIGPIPE disposition once; at SIG_DFL (which would kill the
 *   process) the pool turns splice off with a warning. weftd ignores SIGPIPE.
 * - File descriptors: 2 pipe fds per direction with bytes in flight, so up to
 *   4 per busy connection on top of its 2 sockets, and 0 when idle; plus 2 per
 *   pipe in the pool's cache (at most 2 * max_cached per pool). RLIMIT_NOFILE
 *   must cover 2 per connection + 4 per connection busy at the same moment +
 *   2 * max_cached per pool; when it does not, the relays that find no pipe
 *   copy instead (above), they do not fail.
 * - Kernel memory: each pipe is sized to the pool's buffer_size (F_SETPIPE_SZ,
 *   rounded up to a power-of-two number of pages; left at the kernel default
 *   when fs.pipe-max-size or fs.pipe-user-pages-soft refuse it), and holds at
 *   most relay_opts.buffer_size bytes, like a buffer.
 *
 * Mutual TLS (added), for the two legs of an inter-agent connection
 * (docs/security.md, "The inter-agent connection"):
 * - Outbound (relay_opts.secure): an attempt the callback makes TLS is, in
 *   order, TCP connect, TLS client handshake, the prefix (the preamble)
 *   written, the 8-byte preamble reply read and decoded; only a reply "ok"
 *   makes the attempt connected (RELAY_EV_CONNECTED, value = usec for the
 *   whole sequence). connect_timeout_ms bounds the whole sequence. Any
 *   failure is that attempt's RELAY_EV_CONNECT_FAIL, and the next attempt is
 *   tried as for a refused connect, with value (errno):
 *     EPROTO       TLS failure (certificates, alerts, protocol, the peer
 *                  closed during the handshake or before its reply), a
 *                  reply that is garbage, or reply "bad_preamble";
 *     EACCES       reply "denied";  ECONNREFUSED  "unknown_target" or
 *                  "unreachable";   EBUSY  "overloaded";
 *     ETIMEDOUT    connect_timeout_ms passed in any step;
 *     ECONNRESET / EIO / ENOMEM   socket error or reset during TLS, memory;
 *     ECONNREFUSED etc.  the TCP connect itself, as for plain attempts.
 *   relay_last_tls_fail() / relay_last_reply() say more, from inside the
 *   CONNECT_FAIL callback (for metrics by reason).
 * - Inbound (relay_start_tls): the client side is an already-handshaken TLS
 *   connection; the upstream is plain TCP picked as usual.
 * - Data path with a TLS side: bytes counted are plaintext bytes; reads go
 *   through tls_read and drain what the TLS layer already holds
 *   (tls_pending) without waiting for the socket; writes through tls_write
 *   (at most one 16 KiB record per call, retried with the same bytes after
 *   -EAGAIN); a TLS read or write that needs the other socket direction
 *   (tls_want) waits for it. EOF from a TLS side is close_notify, or a bare
 *   TCP FIN (then, the TLS layer considering itself failed, a later write
 *   towards that side fails and the relay resets both sides). Half-close
 *   towards a TLS side is close_notify then shutdown(SHUT_WR). A relay with a
 *   TLS side never splices (it copies, silently: not a fallback). Buffers
 *   come from the pool as for plain relays; each TLS side adds wolfSSL's own
 *   memory (about 90 KB, see tls.h).
 */
#ifndef WEFT_RELAY_H
#define WEFT_RELAY_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/addr.h"

struct relay;
struct tls_ctx;
struct tls_conn;

/*
 * Per-attempt transport choice (added), called once per connect attempt right
 * after pick (for attempt 0 inside relay_start; a failure is still reported
 * from the loop), with the relay's arg and the tag pick gave. Returns:
 *   0   plain TCP, as without a callback;
 *   1   this attempt is mutual TLS with *ctx (borrowed: the relay takes its own
 *       reference, through the connection it makes, and drops it when the
 *       attempt or the relay ends); prefix[0 .. *prefix_len) (at most cap =
 *       RELAY_PREFIX_MAX bytes: the encoded preamble) is written right after
 *       the handshake, and then the 8-byte preamble reply is awaited;
 *   <0  fail this attempt with that errno (CONNECT_FAIL, then the next attempt).
 */
typedef int (*relay_secure_fn)(void *arg, void *tag, struct tls_ctx **ctx, uint8_t *prefix, size_t cap,
			       size_t *prefix_len);
#define RELAY_PREFIX_MAX 512 /* = PREAMBLE_MAX */

struct relay_opts {
	uint32_t buffer_size;        /* bytes per direction (clamped to the pool's; 0 = pool's) */
	uint32_t connect_timeout_ms; /* per attempt (0 = none: the kernel's SYN retries) */
	uint32_t idle_timeout_ms;    /* 0 = no idle timeout */
	uint32_t mark;               /* SO_MARK for upstream sockets (0 = none) */
	uint32_t max_attempts;       /* connect attempts in all, >= 1 */
	uint32_t flags;              /* RELAY_* below (added; unknown bits: EINVAL) */
	relay_secure_fn secure;      /* added: per-attempt TLS choice; NULL = every attempt plain */
};

/* Move bytes with splice(2) through pooled pipes (see the top comment). */
#define RELAY_SPLICE 0x1u
/*
 * relay_start_tls only (added): write the preamble reply to the TLS client,
 * "ok" once the upstream connects (before any upstream byte), "unreachable"
 * (best effort) when every attempt failed or there was nothing to pick.
 */
#define RELAY_TLS_REPLY 0x2u

/*
 * Chooses the upstream for attempt number `attempt` (0-based). Fills *out and
 * returns 0, or returns -ENOENT when there is nothing (more) to try.
 * `tag` may be set to an opaque endpoint handle reported back in
 * relay_event callbacks (e.g. to count active connections per endpoint).
 */
typedef int (*relay_pick_fn)(void *arg, unsigned attempt, struct weft_sockaddr *out, void **tag);

enum relay_event_kind {
	RELAY_EV_CONNECTED,    /* upstream connected; tag = chosen endpoint; value = connect usec */
	RELAY_EV_CONNECT_FAIL, /* one attempt failed; tag; value = errno (ETIMEDOUT for timeout) */
	RELAY_EV_FIRST_BYTE,   /* first upstream byte reached the client; tag; value = usec from
				 * the first client byte sent upstream (or from connect, when
				 * the upstream speaks first): the endpoint's response latency */
	RELAY_EV_CLOSED,       /* relay over; the struct relay is freed after this returns */
};
/*
 * Event details (added):
 * - Every relay_start that returned non-NULL gets exactly one RELAY_EV_CLOSED,
 *   always last. Its tag is the connected endpoint's, or NULL when no attempt
 *   connected (so CONNECTED +1 / CLOSED -1 per tag counts active
 *   connections); value = 0; st->error: 0 (both directions closed cleanly),
 *   ECONNRESET/EPIPE/... (a side failed), ETIMEDOUT (idle timeout),
 *   ECONNABORTED (relay_abort), or the last attempt's errno when no attempt
 *   connected.
 * - Callbacks may call relay_abort() on any relay, this one included (then
 *   the relay ends as soon as the callback returns), and relay_get_stats().
 *   Inside RELAY_EV_CLOSED, relay_abort() of the closing relay is a no-op.
 */

struct relay_stats {
	uint64_t bytes_in;  /* client -> upstream (written to the upstream socket) */
	uint64_t bytes_out; /* upstream -> client (written to the client socket) */
	int error;          /* 0, or the errno that ended it */
};

typedef void (*relay_event_fn)(void *arg, struct relay *r, enum relay_event_kind kind, void *tag, int64_t value,
			       const struct relay_stats *st);

struct relay_pool; /* per loop: buffer pool + bookkeeping (not thread-safe: one per loop) */

/*
 * buffer_size: bytes per buffer (>= 64; relay_opts.buffer_size is clamped to
 * it, 0 there meaning this size), and the size asked for each splice pipe.
 * max_cached: free buffers kept for reuse, and separately free pipes; beyond
 * that a drained buffer goes back to malloc and a drained pipe is closed.
 * NULL + errno on failure.
 */
struct relay_pool *relay_pool_new(uint32_t buffer_size, uint32_t max_cached);
/*
 * Every relay on the pool must have ended (relay_abort them first). A pool
 * with relays still running is logged and leaked rather than freed under them.
 */
void relay_pool_free(struct relay_pool *p);

/* Pool counters (added; for /metrics and tests). */
struct relay_pool_stats {
	uint32_t buffers_in_use; /* held by relays: bytes in flight */
	uint32_t buffers_cached; /* free, kept for reuse */
	uint32_t relays;         /* relays running on the pool */
	/* splice fast path (added) */
	uint32_t pipes_in_use;     /* held by relays: bytes in flight (2 fds each) */
	uint32_t pipes_cached;     /* free, kept for reuse (2 fds each) */
	uint32_t splice_fallbacks; /* relays that asked for splice and fell back to copying */
	bool splice_off;           /* the pool turned splice off (unsupported, or SIGPIPE) */
	uint32_t held_max;         /* most buffers + pipes ever held at once */
};
void relay_pool_get_stats(const struct relay_pool *p, struct relay_pool_stats *st);

/*
 * Starts relaying client_fd (ownership passes to the relay: it closes it).
 * Returns the relay, or NULL (errno set) when it could not even start; then
 * client_fd has been reset and closed and no callback fires. Could not start:
 * EINVAL (bad arguments, unknown opts->flags), ENOMEM, or pick had nothing
 * for attempt 0 (its errno, normally ENOENT). Any connect failure, even an
 * immediate one, is reported through the callbacks from the loop, never from
 * inside relay_start.
 */
struct relay *relay_start(struct ev_loop *loop, struct relay_pool *pool, int client_fd, const struct relay_opts *opts,
			  relay_pick_fn pick, relay_event_fn ev, void *arg);

/*
 * Server leg of mutual TLS (added). Like relay_start, but the client side is
 * tls (already handshaken, over client_fd; ownership of both passes to the
 * relay: it frees tls and closes client_fd, on every path, also when this
 * returns NULL). initial[0 .. initial_len) are plaintext bytes the caller
 * already read past the preamble: copied, they go upstream first (at most
 * the relay's buffer size: opts->buffer_size, clamped to the pool's; more is
 * EINVAL). Upstream attempts are plain TCP (opts->secure must be NULL).
 * With RELAY_TLS_REPLY in opts->flags the relay writes the preamble reply:
 * "ok" to the client when an upstream attempt connects, before any upstream
 * byte (not counted in bytes_out); "unreachable" when every attempt failed,
 * or here, when pick has nothing for attempt 0 (then NULL, errno ENOENT),
 * followed by close_notify and a clean close instead of a reset, so the
 * connecting agent reads the reply and tries elsewhere.
 * NULL + errno as relay_start; EINVAL also for tls NULL or not handshaken.
 */
struct relay *relay_start_tls(struct ev_loop *loop, struct relay_pool *pool, struct tls_conn *tls, int client_fd,
			      const void *initial, size_t initial_len, const struct relay_opts *opts,
			      relay_pick_fn pick, relay_event_fn ev, void *arg);

/*
 * Why the last failed attempt failed at the TLS layer (added): an enum
 * tls_fail value (tls_fail_name() gives the metric label): the TLS layer's
 * reason (tls_conn_fail) for a failed handshake, prefix write or reply read
 * (a peer refusing our certificate shows as TLS_FAIL_PEER_ALERT on the reply
 * read); TLS_FAIL_CLOSED also when the peer sent close_notify instead of a
 * reply; TLS_FAIL_TIMEOUT when connect_timeout_ms ran out during the
 * handshake; TLS_FAIL_NONE when the last attempt failed elsewhere (TCP
 * connect, a reply other than "ok", a garbage reply, a timeout after the
 * handshake, a plain attempt) or none failed yet. Meant for the
 * RELAY_EV_CONNECT_FAIL callback; valid until the next attempt starts.
 */
int relay_last_tls_fail(const struct relay *r);
/*
 * The preamble reply status the last TLS attempt received (enum
 * preamble_status), or -1 when it got none (failed before, garbage reply, or
 * a plain attempt). Same validity as relay_last_tls_fail.
 */
int relay_last_reply(const struct relay *r);

/* Current counters (for /conns). */
void relay_get_stats(const struct relay *r, struct relay_stats *st);

/*
 * Forcibly end a relay (drain timeout, shutdown): both sides reset, RELAY_EV_CLOSED fires
 * (st->error = ECONNABORTED) before this returns, unless called from one of this relay's
 * own callbacks: then it happens as soon as that callback returns.
 */
void relay_abort(struct relay *r);

#endif
