/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tcp: the opaque TCP path. An admitted client connection of a service is
 * handed to a relay (tcp/relay) towards an endpoint the service's balancer
 * picks, over mutual TLS and the preamble when the endpoint lives on another
 * node; connect failures go to the breaker and to the next endpoint.
 * It may call: state/service (the registry), tcp/relay, link/nodelink,
 * tls/mtls, lib/. It never calls the HTTP path, and nothing below calls it.
 *
 * Threading: a struct tcp_worker belongs to one worker loop; its
 * connections run only on that loop's thread. The connection list is linked
 * and unlinked under registry.lock, so the admin snapshot can read it.
 */
#ifndef WEFT_TCP_H
#define WEFT_TCP_H

#include <ev.h>
#include <stdint.h>

#include "lib/addr.h"
#include "lib/list.h"
#include "weft/maps.h"

struct registry;
struct relay;
struct relay_pool;
struct svc;
struct svc_ep;
struct mtls;

struct tcp_worker {
	struct ev_loop *loop;
	unsigned id;
	struct registry *reg;
	struct relay_pool *pool; /* this loop's buffers and pipes */
	struct list_head conns;  /* struct tcp_conn.link, under reg->lock */
};

/* One proxied opaque connection (fields read by the admin snapshot under reg->lock). */
struct tcp_conn {
	struct list_head link;
	struct tcp_worker *tw;
	struct svc *svc; /* the generation it started with (ref held) */
	struct relay *relay;
	struct svc_ep *ep;     /* endpoint in use (ref held), NULL while connecting */
	struct svc_ep *trying; /* endpoint of the attempt in flight (counted in its active) */
	struct weft_orig orig;
	struct weft_sockaddr client;
	uint64_t tried;    /* endpoints tried, bitmask by index in svc */
	int cur;           /* index in svc of the endpoint being tried */
	struct mtls *mtls; /* TLS bundle this connection may use (ref held) */
	ev_tstamp started;
	int64_t connect_us; /* connect time of the connected attempt, usec */
};

/* 0, or -ENOMEM. buffer_size: agent.buffer_size (the relay pool's). */
int tcp_worker_init(struct tcp_worker *tw, struct ev_loop *loop, unsigned id, struct registry *reg,
		    uint32_t buffer_size);
/* Resets every connection of this worker (its thread). */
void tcp_worker_abort(struct tcp_worker *tw);
/* After tcp_worker_abort: frees the pool. */
void tcp_worker_free(struct tcp_worker *tw);

/*
 * Relays an admitted connection: takes over fd, the caller's reference on
 * svc and its admission (counted by reg_conn_begin_locked in the same locked
 * step that admitted it; ended here, on every path). registry.lock not held.
 */
void tcp_start(struct tcp_worker *tw, int fd, struct svc *svc, const struct weft_orig *orig,
	       const struct weft_sockaddr *peer);

#endif
