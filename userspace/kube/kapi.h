/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * kapi: the HTTPS client weftd lists and watches the Kubernetes API with, on
 * a libev loop, non-blocking throughout (connect, TLS, request, response).
 *
 * One TCP + TLS connection per request, closed at its end (the request says
 * Connection: close). Watches are long-lived and lists are rare, so a pool
 * would save little and add states; every request starts from a fresh
 * connection, a fresh token and a fresh view of the CA file.
 *
 *   GET <path> HTTP/1.1
 *   Host: <ip>:<port>
 *   Authorization: Bearer <token_file, read now>
 *   Accept: application/json
 *   User-Agent: weft/<version>
 *   Connection: close
 *
 * The response is read by codec/httpresp: head within 16 KiB, then a body
 * framed by Content-Length, chunked or the server's close (with a TLS
 * close_notify: a bare TCP close mid-body is a cut, not an end). No gzip is
 * asked for, and none is accepted.
 *
 * TLS (tls/tls.h, "HTTPS client"): TLS 1.3 or 1.2 (ECDHE + AEAD only), the
 * server chain verified against ca_file, and the server's certificate must
 * carry the URL's IP address as an iPAddress subjectAltName. The CA file is
 * checked at each request (one stat) and loaded again when it changed; a
 * change that does not load keeps the previous CA, with a warning.
 *
 * Callbacks. For each request, exactly one on_done, last, unless the request
 * was cancelled (kapi_cancel, kapi_free): then none at all, from that call
 * on. Never from inside kapi_get: every outcome, even an immediate failure
 * (no token), comes from the loop.
 *   on_body(arg, status, body, len): KAPI_WHOLE: the whole body, once, for
 *     any status. KAPI_LINES: only for a status outside 2xx, with its body (a
 *     metav1.Status to decode), and no line is delivered then.
 *   on_line(arg, line, len): KAPI_LINES, 2xx: each line as it completes,
 *     without its '\n'. An empty line is delivered too (len 0).
 *   on_done(arg, err, detail): 0 when the server ended the response cleanly
 *     (whatever its status: look at on_body), else a negative errno, and
 *     detail one line for the log naming the server and the reason:
 *       -ETIMEDOUT     connect + TLS handshake over connect_timeout_ms, or
 *                      no byte for idle_timeout_ms once the request is sent
 *       -ECONNREFUSED, -ENETUNREACH, ...: the connect failed (connect(2)'s errno)
 *       -EPROTO        TLS failed (the detail says which check: unknown CA,
 *                      address not in the certificate, version, alert, ...)
 *                      or the response is not HTTP/1.1 as we accept it
 *       -EMSGSIZE      the head, the body (max_body) or a line (max_line)
 *                      is over its bound
 *       -EPIPE         the server closed cleanly inside the head, the body,
 *                      a chunk or (lines) a line
 *       -ECONNRESET    the connection was reset or closed without TLS
 *                      close_notify before the response ended
 *       -ENOENT, -EINVAL, ...: the token file cannot be read, is empty or
 *                      holds a byte that cannot go in a header
 *       -ENOMEM
 *     detail and the data pointers are valid during the call only. The
 *     request is freed when on_done returns: drop every pointer to it there.
 * Inside any callback the caller may cancel this or any other request,
 * start new ones and call kapi_free.
 *
 * Bounds: per request about 35 KiB of fixed buffers (read buffer, response
 * head) plus wolfSSL's connection (about 90 KB once connected, tls.h), plus
 * the payload: at most max_body + 1 bytes (whole, and non-2xx answers) or
 * max_line + 1 bytes (lines), grown by doubling, never per byte. Nothing
 * else grows. A list of known Content-Length over max_body fails at the
 * head, before its body is read.
 *
 * Threads: a kapi and its requests belong to the loop's thread.
 * It may call: codec/httpresp, lib/addr, lib/file, lib/list, lib/log, lib/sock,
 * tls/tls, libev.
 */
#ifndef WEFT_KAPI_H
#define WEFT_KAPI_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#define KAPI_DEFAULT_MAX_BODY ((size_t)64 << 20) /* a list of every pod of a large cluster */
#define KAPI_DEFAULT_MAX_LINE ((size_t)4 << 20)  /* one watch event: one object, etcd's limit is 1.5 MiB */
#define KAPI_DEFAULT_CONNECT_TIMEOUT_MS 10000u
/*
 * A watch that brings no byte for this long is dead. Over HTTP/1.1 nothing
 * else proves a quiet watch alive (HTTP/2 has PINGs; we do not speak it).
 * With allowWatchBookmarks=true the API server sends a BOOKMARK about once a
 * minute from its watch cache, so 5 minutes is five missed bookmarks, not a
 * quiet cluster. A watch served without bookmarks (watch cache off) may stay
 * silent until its timeoutSeconds: ask for timeoutSeconds below this (e.g.
 * 240 s), so the server ends every healthy watch (on_done 0, then watch again
 * from the last resourceVersion) before the idle timer could. TCP keepalive
 * (probes after 60 s idle, every 15 s, 4 lost: about 2 minutes) finds a
 * vanished host sooner; the idle timeout also catches a wedged server.
 */
#define KAPI_DEFAULT_IDLE_TIMEOUT_MS 300000u

struct kapi;
struct kapi_req;

struct kapi_opts {
	/*
	 * "https://10.96.0.1:443", "https://[fd00::1]:443", "https://127.0.0.1"
	 * (443), an optional "/" at the end and nothing else: no path, query,
	 * user. The host must be an IP literal: resolving a name would block the
	 * loop; in a pod, the address is $KUBERNETES_SERVICE_HOST.
	 */
	const char *url;
	const char *ca_file;         /* PEM bundle that signs the API server's certificate */
	const char *token_file;      /* bearer token, read at each request (rotation) */
	uint32_t mark;               /* SO_MARK of our sockets, so weft never intercepts them (0: none) */
	size_t max_body;             /* 0: KAPI_DEFAULT_MAX_BODY */
	size_t max_line;             /* 0: KAPI_DEFAULT_MAX_LINE */
	uint32_t connect_timeout_ms; /* TCP connect + TLS handshake; 0: default */
	uint32_t idle_timeout_ms;    /* after the request is sent; 0: default */
};

enum kapi_mode {
	KAPI_WHOLE = 0, /* deliver the whole body once (on_body) */
	KAPI_LINES,     /* deliver each newline-terminated line as it arrives (on_line): a watch */
};

struct kapi_ops {
	void (*on_body)(void *arg, int status, const char *body, size_t len); /* required */
	void (*on_line)(void *arg, const char *line, size_t len);             /* required for KAPI_LINES */
	void (*on_done)(void *arg, int err, const char *detail);              /* required */
};

/*
 * Checks o (the URL, the CA file loads; the token file is read per request)
 * and makes a client on loop. 0 and *out, or a negative errno with err
 * naming the option and the fix ("Kubernetes API URL 'https://kubernetes.
 * default.svc': the host must be an IP address (...)").
 */
int kapi_new(struct ev_loop *loop, const struct kapi_opts *o, struct kapi **out, char *err, size_t errlen);

/* Cancels every request (no callback after this call) and frees. NULL is fine. */
void kapi_free(struct kapi *k);

/*
 * Starts GET path_and_query ("/api/v1/pods?watch=1&allowWatchBookmarks=true",
 * origin form, visible ASCII only, at most 8 KiB). Returns the request; its
 * outcome comes through ops (see above). NULL with errno EINVAL (bad path,
 * a required callback missing) or ENOMEM, and no callback then.
 */
struct kapi_req *kapi_get(struct kapi *k, const char *path_and_query, enum kapi_mode mode, const struct kapi_ops *ops,
			  void *arg);

/*
 * Stops r: its connection is closed now, no callback comes after this call.
 * Safe from inside any callback, r's own included (r is freed when that
 * callback returns). r must be a request that has not had its on_done yet;
 * NULL is fine. Inside r's own on_done it does nothing (r ends anyway).
 */
void kapi_cancel(struct kapi_req *r);

#endif
