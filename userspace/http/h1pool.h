/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * h1pool: upstream connections of the HTTP/1.1 path and their keep-alive
 * pool. A connection goes to a local endpoint (plain TCP) or to another
 * node's agent (TCP, then the node link: mutual TLS with the calling
 * workload's identity and the preamble naming the endpoint); once ready,
 * both carry requests alike (h1up_read / h1up_flush pick recv/send or
 * tls_read/tls_write). Idle connections wait per endpoint and per worker; a
 * TLS one is handed out again only for the identity it proved.
 * It may call: http/h1svc, state/service, link/nodelink, tls/, codec/preamble,
 * lib/. The session above owns a connection in use and gets its events
 * through the callbacks it passes (struct h1up_ops): nothing here calls up.
 *
 * Threading: a struct h1_worker and everything on it belong to one worker
 * loop; its session list alone is linked under registry.lock (for the admin
 * snapshot).
 */
#ifndef WEFT_H1POOL_H
#define WEFT_H1POOL_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/addr.h"
#include "lib/list.h"
#include "lib/obuf.h"
#include "tls/tls.h"

struct registry;
struct svc_ep;
struct h1_svc;
struct nodelink;
struct zipkin;
struct membudget;
struct mb_acct;

/* The HTTP path's part of one worker loop. */
struct h1_worker {
	struct ev_loop *loop;
	unsigned id;
	struct registry *reg;
	struct zipkin *zipkin;     /* span exporter, or NULL (borrowed) */
	struct membudget *mb;      /* agent.buffer_memory_mb: what buffers are charged to (borrowed) */
	struct list_head sessions; /* struct h1s.link, under reg->lock */
	struct list_head idle;     /* every idle pooled connection of this worker (struct h1up.wlink) */
	bool draining;             /* stop accepting was asked: close keep-alive sessions */
};

/* One upstream connection: in use by a session, or idle in its endpoint's pool. */
struct h1up {
	struct list_head link;  /* endpoint's idle list for this worker */
	struct list_head wlink; /* worker's list of idle connections */
	struct h1_worker *w;
	struct svc_ep *ep;    /* ref held */
	void *owner;          /* the session using it; NULL while idle */
	struct mb_acct *acct; /* the owner's memory account (rb is charged to it), NULL while idle */
	int fd;
	ev_io io;
	ev_timer t;                  /* connect timeout, or idle timeout in the pool */
	bool tcp_up;                 /* the TCP connect completed */
	bool connected, reused, eof; /* connected: ready for HTTP (TLS and preamble done, if any) */
	bool pooled;                 /* linked in the idle lists */
	char *rb;                    /* response bytes */
	size_t rlen, rcap;
	struct obuf wb; /* towards the upstream */
	uint64_t written;
	/* an endpoint on another node: mutual TLS to that node's agent, then the preamble */
	struct tls_conn *tls;
	const struct tls_ctx *ctx; /* identity it was made with: the pool never hands it to another */
	struct weft_sockaddr node; /* the agent it goes to */
	enum tls_want want;        /* what the last TLS call that returned -EAGAIN waits for */
	struct nodelink *nl;       /* during the secure setup only (handshake, preamble, reply) */
};

/* What a session asks for: where, as whom, and its callbacks (io->data and t->data are the h1up). */
struct h1up_want {
	struct svc_ep *ep;
	const struct weft_sockaddr *node; /* non-NULL: ep lives on another node, behind this agent */
	struct tls_ctx *ctx;              /* the calling workload's identity (node only) */
	const char *svc_name;             /* for the preamble */
	uint32_t mark;                    /* SO_MARK of new sockets */
	uint32_t connect_timeout_ms;      /* bounds TCP connect + TLS + preamble */
	void (*io_cb)(struct ev_loop *, ev_io *, int);
	void (*timeout_cb)(struct ev_loop *, ev_timer *, int);
	void *owner;
	struct mb_acct *acct; /* the owner's memory account */
	bool probe;           /* hand out a pooled connection only if a peek finds it open and silent */
};

void h1_worker_init(struct h1_worker *w, struct ev_loop *loop, unsigned id, struct registry *reg, struct zipkin *zipkin,
		    struct membudget *mb);
/* Closes every idle pooled connection of the worker (its thread). */
void h1_worker_close_idle(struct h1_worker *w);

/*
 * A connection for want: a pooled one (same endpoint, same identity, same
 * agent; with want->probe, one a non-blocking MSG_PEEK finds neither closed
 * nor with bytes waiting: the others are closed), or a new non-blocking
 * connect. The session's callbacks are armed;
 * for a new connection the first event is writability (connect done).
 * NULL + *err (an errno) when even the connect could not start.
 */
struct h1up *h1up_get(struct h1_worker *w, const struct h1up_want *want, int *err);
/*
 * The secure setup after the TCP connect (another node's agent, through
 * link/nodelink): 0 done (what the agent sent behind its reply waits in the
 * TLS layer), -EAGAIN wait for u->want, or the attempt's -errno
 * (nodelink.h). Failures are logged once, at debug, by nodelink.
 */
int h1up_secure_step(struct h1up *u);
/* After a complete exchange: back to the pool (l's limits), or closed. */
void h1up_put(struct h1up *u, const struct h1_svc *l);
void h1up_close(struct h1up *u);

/*
 * Reads what fd (or tls) has into *p, growing the buffer by doubling (from
 * first, up to limit) when less than slack bytes are free. Returns the
 * bytes read (0: EOF, *eof set), -EAGAIN, -ENOBUFS (full at the limit),
 * -ENOMEM or -errno. *moved: pointers into the old buffer are stale.
 * acct (may be NULL): growth is charged to it first; -EDQUOT when the
 * memory budget refuses (nothing read, the buffer unchanged).
 */
int h1_read_grow(int fd, struct tls_conn *tls, char **p, size_t *len, size_t *cap, size_t first, size_t limit,
		 size_t slack, bool *eof, bool *moved, struct mb_acct *acct);
/* Reads the response bytes available (all a TLS layer holds), up to cap buffered. Like h1_read_grow. */
int h1up_read(struct h1up *u, size_t cap);
/* Writes what is pending towards the upstream. Like ob_flush. */
int h1up_flush(struct h1up *u, uint64_t *written);

#endif
