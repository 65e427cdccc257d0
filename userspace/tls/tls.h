/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tls: mutual TLS between weft agents (wolfSSL), for non-blocking sockets
 * driven by a libev loop; and, with its own constructors and policy, the
 * client side of HTTPS to a server that is not an agent (the Kubernetes API:
 * see "HTTPS client" below). The two share the connection code (I/O
 * callbacks, failure reasons, read/write), never a policy.
 *
 * Agent-to-agent policy, fixed here and not configurable (docs/security.md):
 * - TLS 1.3 only; AEAD suites only (AES-128-GCM, AES-256-GCM,
 *   ChaCha20-Poly1305); groups X25519, P-256, P-384.
 * - Both sides present a certificate; a peer without one fails the handshake.
 * - ALPN "weft/1" on both sides: a peer offering no or another protocol fails.
 * - No session resumption, no tickets, no PSK: every connection verifies a
 *   full certificate chain, so the peer identity always comes from a
 *   certificate checked now.
 * - The peer's leaf must be an X.509-SVID: not a CA, exactly one URI SAN, a
 *   valid SPIFFE ID in the context's trust domain.
 *
 * Contexts are immutable once loaded and reference counted: reloading builds
 * a new context and swaps the pointer; connections hold a reference to the
 * context they were made with, so they are unaffected by the swap.
 *   new = tls_ctx_load(&opts, err, sizeof(err));
 *   if (new) { tls_ctx_unref(cur); cur = new; } else log the error, keep cur.
 *
 * Thread safety: a context may be used from several threads (reference
 * counting is atomic); a connection belongs to one thread.
 *
 * In a libev loop (one ev_io per connection, one ev_timer for the deadline):
 *   r = tls_handshake(c);
 *   if (r == -EAGAIN) -> ev_io_set(&w, fd, tls_want(c) == TLS_WANT_WRITE ? EV_WRITE : EV_READ);
 *   else if (r < 0)   -> count tls_fail_name(tls_conn_fail(c)), log tls_conn_detail(c), close;
 *   else              -> peer = tls_peer_id(c); then call tls_read AT ONCE (see below).
 * The same after tls_read/tls_write returning -EAGAIN. Bytes the peer sent
 * right behind its handshake (the preamble) may already sit decrypted or
 * undecrypted inside wolfSSL when tls_handshake returns 0 or after a read, with
 * nothing left on the socket to wake the loop: read until -EAGAIN before
 * waiting for EV_READ again.
 *
 * Memory: wolfSSL as Debian builds it takes about 57 KB per connection object
 * and about 90 KB once the handshake is done (record buffers, the peer's
 * chain). Bound concurrent handshakes and connections accordingly.
 * It may call: codec/identity, lib/file, lib/log, wolfSSL.
 */
#ifndef WEFT_TLS_H
#define WEFT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define TLS_ALPN "weft/1"
/* A SPIFFE ID is at most 2048 bytes (SPIFFE-ID spec); + NUL. */
#define TLS_ID_MAX 2049

struct tls_ctx;
struct tls_conn;

/*
 * Where a context's material comes from. For each of ca, cert and key, give
 * either a file path or an in-memory PEM buffer (minted certificates never
 * touch the disk), not both.
 * - ca: PEM bundle of trust anchors (one or more CA certificates).
 * - cert: PEM, the leaf first, then the intermediates a peer needs to reach a
 *   trust anchor (the chain is sent as is).
 * - key: PEM private key of the leaf (SEC1 "EC PRIVATE KEY" or PKCS#8).
 * - trust_domain: peers must have SPIFFE IDs in it. NULL: the trust domain of
 *   this context's own certificate.
 */
struct tls_ctx_opts {
	const char *ca_file, *cert_file, *key_file;
	const unsigned char *ca_pem, *cert_pem, *key_pem;
	size_t ca_pem_len, cert_pem_len, key_pem_len;
	const char *trust_domain;
};

/*
 * Builds a context (a server and a client side) from opts. Checks: every
 * file or buffer loads, the key matches the certificate, the certificate is
 * an X.509-SVID (one URI SAN, a valid SPIFFE ID) and the trust domain is
 * valid. Returns a context with one reference, or NULL with err set to a
 * message naming the file and the problem (e.g. "tls.key
 * '/etc/weft/node.key': does not match the certificate in '...'").
 * The certificate may be expired or not yet valid (a warning is the caller's:
 * see tls_cert_not_after); peers will refuse it.
 */
struct tls_ctx *tls_ctx_load(const struct tls_ctx_opts *opts, char *err, size_t errlen);
struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_unref(struct tls_ctx *ctx); /* NULL is fine */

/* This context's own SPIFFE ID (the URI SAN of its certificate). */
const char *tls_ctx_identity(const struct tls_ctx *ctx);
/* The trust domain peers must belong to. */
const char *tls_ctx_trust_domain(const struct tls_ctx *ctx);
/* notBefore / notAfter of this context's leaf certificate (expiry gauge, renewal). */
time_t tls_cert_not_before(const struct tls_ctx *ctx);
time_t tls_cert_not_after(const struct tls_ctx *ctx);
/*
 * True when one of the files the context was loaded from has changed on disk
 * since (inode, size, mtime, ctime differ, or it went away). O(3 stat calls):
 * poll it from a timer, then tls_ctx_load again. Always false for buffers.
 */
bool tls_ctx_files_changed(const struct tls_ctx *ctx);

/* Why a handshake (or a connection) failed: metric label and log reason. */
enum tls_fail {
	TLS_FAIL_NONE = 0,
	TLS_FAIL_UNKNOWN_CA,    /* peer chain does not lead to a trust anchor */
	TLS_FAIL_EXPIRED,       /* a certificate in the peer chain has expired */
	TLS_FAIL_NOT_YET_VALID, /* ... or is not valid yet */
	TLS_FAIL_BAD_CERT,      /* bad signature, bad encoding, CA as leaf, other checks */
	TLS_FAIL_NO_CERT,       /* the peer presented no certificate */
	TLS_FAIL_BAD_IDENTITY,  /* leaf has no, several, or an invalid SPIFFE URI SAN; HTTPS: not the server IP */
	TLS_FAIL_TRUST_DOMAIN,  /* valid SPIFFE ID, foreign trust domain */
	TLS_FAIL_ALPN,          /* peer offered no or another application protocol */
	TLS_FAIL_VERSION,       /* peer does not speak TLS 1.3 */
	TLS_FAIL_PROTOCOL,      /* not TLS (garbage), or a TLS protocol violation */
	TLS_FAIL_PEER_ALERT,    /* the peer refused us: see tls_conn_alert() */
	TLS_FAIL_CLOSED,        /* peer closed the connection mid-handshake */
	TLS_FAIL_IO,            /* socket error (reset, ...) */
	TLS_FAIL_INTERNAL,      /* out of memory, library error */
	TLS_FAIL_TIMEOUT,       /* never set here: the caller's timer; for its metrics */
	TLS_FAIL__COUNT
};
/* Stable snake_case name ("unknown_ca", "cert_expired", ...) for metrics and logs. */
const char *tls_fail_name(enum tls_fail f);

enum tls_want { TLS_WANT_NONE = 0, TLS_WANT_READ, TLS_WANT_WRITE };

/*
 * A connection over a connected, non-blocking socket fd (not owned: the
 * caller closes it after tls_conn_free). Takes a reference on ctx.
 * is_server selects the side. NULL on allocation failure, or (errno EINVAL)
 * for an HTTPS client context (tls_https_conn_new).
 */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, int fd, bool is_server);

/*
 * HTTPS client (kube/kapi: the Kubernetes API). Policy, fixed here:
 * - TLS 1.3 or TLS 1.2 (API servers speak both); 1.3 with the suites above,
 *   1.2 with ECDHE and AEAD only (AES-GCM, ChaCha20-Poly1305; ECDSA or RSA
 *   server keys); groups X25519, P-256, P-384.
 * - The server's chain must lead to a CA in ca_file; dates are checked.
 * - The server's leaf must carry the IP address we connected to in an
 *   iPAddress subjectAltName: octets compared, no CN fallback, a DNS SAN
 *   that spells the address does not count (RFC 9525). Only IP literals:
 *   weft connects to the in-cluster API address and resolves no names.
 *   (wolfSSL_X509_check_ip_asc is not used: in Debian's 5.5.4 it accepts a
 *   DNS SAN or CN spelling the address, and never matches IPv6.)
 * - No client certificate (the client authenticates in HTTP, with a bearer
 *   token), no ALPN (HTTP/1.1), no SNI (RFC 6066 allows no IP address
 *   there), no session resumption.
 * A failed check is TLS_FAIL_UNKNOWN_CA, _EXPIRED, _NOT_YET_VALID,
 * _BAD_CERT, or _BAD_IDENTITY (the address is not in the certificate), with
 * tls_conn_detail saying what the certificate holds; a server with no
 * suite or version in common fails the handshake (an alert, or _VERSION).
 *
 * tls_https_ctx_load: a context trusting the PEM bundle ca_file (read once;
 * tls_ctx_files_changed says when to load it again). NULL with err set
 * ("CA file '/x': cannot open: ...") on failure. tls_ctx_identity is "".
 * tls_https_conn_new: the client side over fd, for the server at server_ip
 * (an IPv4 or IPv6 literal, no brackets). NULL with errno EINVAL (not an
 * HTTPS context, not an IP literal) or ENOMEM. Then as any connection:
 * tls_handshake, tls_read, tls_write; tls_peer_id gives the verified
 * address.
 */
struct tls_ctx *tls_https_ctx_load(const char *ca_file, char *err, size_t errlen);
struct tls_conn *tls_https_conn_new(struct tls_ctx *ctx, int fd, const char *server_ip);
/* Frees the connection (no close_notify: see tls_shutdown). NULL is fine. */
void tls_conn_free(struct tls_conn *c);

/*
 * Advances the handshake as far as the socket allows.
 * Returns 0: done, peer verified (identity, trust domain, ALPN); call again
 *   and it returns 0 again.
 * -EAGAIN: wait for tls_want(c) (readable or writable), then call again.
 * Other negative errno: failed for good; tls_conn_fail(c) says why, and
 *   tls_conn_detail(c) gives a one-line explanation for the log. -EPROTO for
 *   TLS-level failures (certificates, protocol, alerts), -ECONNRESET when the
 *   peer closed or reset, -EIO for other socket errors, -ENOMEM.
 * The handshake timeout is the caller's (an ev_timer; then report
 * TLS_FAIL_TIMEOUT). TLS 1.3 note: the client completes before the server has
 * checked the client's certificate; a server that refuses it says so with an
 * alert the client sees on its first tls_read (TLS_FAIL_PEER_ALERT).
 */
int tls_handshake(struct tls_conn *c);
enum tls_want tls_want(const struct tls_conn *c);
enum tls_fail tls_conn_fail(const struct tls_conn *c);
const char *tls_conn_detail(const struct tls_conn *c);
/* The last fatal alert received from the peer (TLS AlertDescription), or -1. */
int tls_conn_alert(const struct tls_conn *c);
bool tls_conn_is_server(const struct tls_conn *c);

/*
 * The SPIFFE ID of the verified peer, copied into buf (TLS_ID_MAX bytes is
 * always enough). Returns the length, or -ENOTCONN before a successful
 * handshake, -ENOSPC when buf is too small.
 */
int tls_peer_identity(const struct tls_conn *c, char *buf, size_t len);
/* The same, borrowed (valid until tls_conn_free); NULL before the handshake. */
const char *tls_peer_id(const struct tls_conn *c);
/* The negotiated cipher suite name, for logs ("TLS13-AES128-GCM-SHA256"). */
const char *tls_conn_cipher(const struct tls_conn *c);

/*
 * Non-blocking I/O after the handshake.
 * tls_read: >0 bytes read; 0 when the peer closed (close_notify or EOF);
 *   -EAGAIN (see tls_want: a read can need the socket writable); other
 *   negative errno on failure (tls_conn_fail / tls_conn_detail say why).
 *   After a read, tls_pending(c) bytes may already be decrypted and waiting:
 *   read them before waiting on the socket again.
 * tls_write: len bytes written (all of them; len is capped at 16384, one
 *   record: the return value says how many were taken), -EAGAIN, or negative
 *   errno. After -EAGAIN, call again with the same bytes (at least the same
 *   first len bytes): wolfSSL has already encrypted part of them.
 */
ssize_t tls_read(struct tls_conn *c, void *buf, size_t len);
ssize_t tls_write(struct tls_conn *c, const void *buf, size_t len);
size_t tls_pending(const struct tls_conn *c);
/*
 * Sends close_notify, best effort, once (-EAGAIN is not retried: the caller
 * is about to close). Returns 0 or negative errno.
 */
int tls_shutdown(struct tls_conn *c);

/*
 * wolfSSL keeps a per-thread fixed-point ECC cache: every thread that made
 * TLS connections calls tls_thread_cleanup() before it exits, and the process
 * tls_global_cleanup() at the very end (after every context is released).
 */
void tls_thread_cleanup(void);
void tls_global_cleanup(void);

#endif
