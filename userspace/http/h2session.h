/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * h2session: HTTP/2 and gRPC at layer 7 (nghttp2) for services with protocol
 * "http2" (and "auto" once detection saw the HTTP/2 connection preface).
 *
 * Towards the app weft is an h2c server with prior knowledge; towards the
 * endpoints an h2c client with one multiplexed connection per endpoint and
 * worker (another one once SETTINGS_MAX_CONCURRENT_STREAMS is reached), so a
 * gRPC client's one long-lived connection is balanced per call, not per
 * connection: every stream is routed (method, authority, path, headers, as
 * HTTP/1.1: codec/h1route), its backend service picked by weight and its
 * endpoint by the service's balancer (P2C on the EWMA of response
 * latency by default).
 *
 * Flow control end to end: neither session sends WINDOW_UPDATE by itself
 * (nghttp2's automatic window update is off); a DATA frame's bytes are
 * given back to the side that sent them only once the other side's session
 * has taken them. A slow reader on one side therefore stops the writer on
 * the other through HTTP/2 windows, and weft holds at most a window per
 * stream (H2_STREAM_WINDOW) and per connection (H2_CONN_WINDOW) each way.
 *
 * gRPC (content-type application/grpc): grpc-status from trailers or a
 * trailers-only response, counted by code (weft_grpc_requests_total); what
 * weft answers itself is a trailers-only response with a gRPC status
 * (UNAVAILABLE when no endpoint can be had or the service sheds load,
 * DEADLINE_EXCEEDED when grpc-timeout or the route's timeout passes), never
 * a bare HTTP error. grpc-timeout sets the stream's deadline and goes
 * upstream with what is left of it.
 *
 * Retries: a stream whose upstream connection failed, or that the endpoint
 * refused (REFUSED_STREAM, or beyond a GOAWAY's last stream) before any
 * response byte, goes to another endpoint while its request body is still
 * whole in memory (http.max_retry_body) and the retry budget allows.
 * * Timeouts (checked every H2_TICK_S): a stream with no byte moving either
 * way for http.stream_idle_ms (a zero-window stall included) is reset, or
 * answered 504 / DEADLINE_EXCEEDED before its response; a client
 * connection with no stream for http.keepalive_idle_ms gets a GOAWAY and
 * closes; an upstream connection with no stream for
 * http.pool_idle_timeout_ms closes.
 *
 * Defences: SETTINGS_MAX_CONCURRENT_STREAMS H2_MAX_STREAMS per client
 * connection; header lists beyond http.max_header_bytes are refused (HPACK
 * bombs); stream resets by the client are rate-limited (CVE-2023-44487,
 * nghttp2's stream_reset_rate_limit: H2_RST_BURST, then H2_RST_RATE per
 * second, then GOAWAY); CONTINUATION floods are cut at H2_MAX_CONTINUATIONS.
 *
 * Endpoints on other nodes: through that node's agent (link/nodelink:
 * mutual TLS as the calling workload, the preamble), then h2c inside TLS;
 * connections are pooled per (endpoint, identity), never shared across
 * identities.
 *
 * Tracing as HTTP/1.1: the caller's traceparent or b3 continued (else a
 * trace sampled by tracing.sample_rate), a SERVER span per stream and a
 * CLIENT span per attempt to Zipkin, traceparent (and b3) to the endpoint.
 *
 * Not yet (docs/http2.md): request trailers from the client.
 *
 * It may call: state/service, state/retry, state/tap, http/h1svc (the
 * settings and counters it shares with HTTP/1.1), link/nodelink, tls/,
 * codec/ (h1route, http1, deadline, grpc, preamble), lib/, nghttp2.
 * Threading: a struct h2_worker and everything on it belong to one worker
 * loop; shared state is the registry's, under its lock.
 */
#ifndef WEFT_H2SESSION_H
#define WEFT_H2SESSION_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/addr.h"
#include "lib/list.h"
#include "weft/maps.h"

#define H2_MAX_STREAMS 100            /* concurrent streams a client may open */
#define H2_STREAM_WINDOW (256u << 10) /* per stream, each way */
#define H2_CONN_WINDOW (1u << 20)     /* per connection, each way */
#define H2_RST_BURST 1000             /* client resets before the rate applies */
#define H2_RST_RATE 33                /* resets per second after the burst; beyond: GOAWAY */
#define H2_MAX_CONTINUATIONS 8        /* CONTINUATION frames per header block */
#define H2_MAX_UPSTREAM_STREAMS 100   /* until the endpoint's SETTINGS say otherwise */
#define H2_TICK_S 1.0                 /* how often idle connections and stalled streams are looked for */

struct registry;
struct svc;
struct zipkin;

/* The HTTP/2 path's part of one worker loop. */
struct h2_worker {
	struct ev_loop *loop;
	unsigned id;
	struct registry *reg;
	struct zipkin *zipkin;       /* span exporter, or NULL (borrowed) */
	struct list_head sessions;   /* struct h2s.link (linked under registry.lock, for /conns) */
	struct list_head ups;        /* struct h2up.link: upstream connections */
	struct list_head dirty_list; /* connections with frames to send once the loop's events are handled */
	ev_prepare flush;            /* runs w_run before the loop polls again, while dirty_list is not empty */
	ev_timer tick;               /* idle and stall checks, every H2_TICK_S while anything is open */
	bool draining;
};

/* zipkin: the span exporter, or NULL (borrowed). */
void h2_worker_init(struct h2_worker *w, struct ev_loop *loop, unsigned id, struct registry *reg,
		    struct zipkin *zipkin);

/*
 * An admitted client connection of an HTTP/2 service: takes over fd, the
 * caller's svc reference and its admission (ended here, on every path).
 * pre/pre_len: bytes already read from fd (none when detection peeked).
 */
void h2_start(struct h2_worker *w, int fd, struct svc *svc, const struct weft_orig *orig,
	      const struct weft_sockaddr *peer);

/* What /conns shows of one HTTP/2 client connection (valid while registry.lock is held). */
struct h2_conn_view {
	const struct weft_orig *orig;
	const struct weft_sockaddr *client;
	const char *svc_name;
	const char *endpoint; /* the last stream's endpoint, "" before the first */
	unsigned streams;     /* open now */
	uint64_t bytes_in, bytes_out;
	ev_tstamp started;
};
/* Calls fn for every HTTP/2 session of w (registry.lock held: sessions are linked under it). */
void h2_worker_foreach(struct h2_worker *w, void (*fn)(void *arg, const struct h2_conn_view *v), void *arg);

/* Drain (its thread): GOAWAY to every client; each closes once its streams are done. */
void h2_worker_drain(struct h2_worker *w);
/* Teardown (its thread): everything closes now. */
void h2_worker_abort(struct h2_worker *w);

struct buf;
/* weft_http2_* metrics (process-wide counters). */
void h2_metrics(struct buf *out);

#endif
