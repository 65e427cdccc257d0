// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * relay: one proxied TCP connection (contract in relay.h).
 *
 * Each direction (client->upstream, upstream->client) is a two-state machine
 * over one linear buffer:
 *   empty    the source is watched for EV_READ; the buffer is back in the
 *            pool, so an idle relay holds no buffer.
 *   pending  (head < tail) the destination refused part of a write: it is
 *            watched for EV_WRITE and the source is NOT read. The unread
 *            bytes stay in the source's kernel receive queue, so TCP flow
 *            control pushes back on the sender (backpressure).
 * A direction never reads while it holds bytes, so bytes leave in the order
 * they arrived, and a direction holds at most buffer_size bytes in userspace.
 * Reading and writing happen in the same callback: after a read the write is
 * tried at once, and after a flush the source is read at once, which in the
 * common case (the write completes) saves a loop iteration per chunk.
 *
 * The two sockets each have one ev_io whose event mask follows the state
 * (relay_watch); one ev_timer serves first as the per-attempt connect timeout,
 * then as the idle timeout, re-armed lazily from the last-activity time (the
 * libev manual's "timeout with last activity" pattern): activity costs one
 * store of ev_now(), not a timer heap update per read.
 *
 * Splice mode (RELAY_SPLICE) runs the same machine with a pooled pipe in the
 * buffer's place: src -> pipe is splice(2) instead of recv(2), pipe -> dst is
 * splice(2) instead of send(2), and head/tail count the bytes spliced out of
 * and into the pipe, so "pending" (head < tail) means the same thing and
 * relay_watch() serves both modes. A direction only splices into an EMPTY
 * pipe, at most buffer_size bytes, which keeps three things simple: an EAGAIN
 * on the read side always means "src has nothing" (never "pipe full"); the
 * counts are exact, so a pipe is known empty when head == tail, and only then
 * may it go back to the pool (one that may hold bytes is closed instead); and
 * a fallback to the copy path can always move a pipe's bytes into one buffer.
 *
 * TLS (relay.h, "Mutual TLS") runs the same machine: a side with a struct
 * tls_conn reads with tls_read and writes with tls_write instead of
 * recv/send, and each direction keeps what its source read and its
 * destination write wait for (rd_want / wr_want: a TLS read can need the
 * socket writable, a write readable), which relay_watch() follows. Two
 * differences from plain sockets: a short TLS read or write does not mean
 * the socket is drained or full (one record at a time), so both loop until
 * -EAGAIN; and decrypted bytes inside the TLS layer wake no poller, so
 * relay_watch() feeds an EV_READ while tls_pending() says some wait. An
 * outbound TLS attempt is CONNECTING through several steps (TCP connect, then
 * link/nodelink: handshake, prefix, reply) on the same uio watcher and
 * attempt timer.
 * The server leg's reply "ok" is queued as the first u2c bytes (nocount
 * keeps it out of bytes_out), so nothing from upstream can overtake it.
 *
 * User callbacks (pick, secure, event) may call relay_abort() on any relay, this one
 * included. To keep that safe, a relay is only freed by relay_finish(), which
 * is never reached while one of its own user callbacks is on the stack: an
 * abort that arrives then sets RELAY_F_ABORT and the relay ends once the
 * callback returns. Another relay's abort runs at once; libev's ev_io_stop()
 * and ev_timer_stop() also clear pending events, so nothing fires for a freed
 * relay later in the same loop iteration.
 */
#include "tcp/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/netns.h"
#include "lib/sock.h"
#include "codec/preamble.h"
#include "link/nodelink.h"
#include "tls/tls.h"

/* Smallest pool buffer: a free buffer stores the free-list link in itself. */
#define RELAY_MIN_BUFFER 64

/*
 * Read+write rounds per callback and direction. A full-buffer read suggests
 * more is waiting, so we go again rather than return to the loop, but only a
 * few times: one fast connection must not starve the others on the loop.
 */
#define RELAY_ROUNDS 4

enum relay_state {
	RELAY_CONNECTING, /* only uio (EV_WRITE) and the connect timer are active */
	RELAY_RUNNING,
};

#define RELAY_F_IN_USER 0x01   /* one of this relay's user callbacks is on the stack */
#define RELAY_F_ABORT 0x02     /* relay_abort() arrived during it: end on return */
#define RELAY_F_CLOSING 0x04   /* relay_finish() running: aborts are no-ops */
#define RELAY_F_CONNECTED 0x08 /* an attempt connected: CLOSED reports its tag */
#define RELAY_F_FIRSTBYTE 0x10 /* RELAY_EV_FIRST_BYTE was reported */
#define RELAY_F_SPLICE 0x20    /* directions move bytes with splice(2) (see the top) */
#define RELAY_F_TLSREPLY 0x40  /* relay_start_tls with RELAY_TLS_REPLY: reply to the client */

/* relay_dir_splice(): splice is unusable here, copy instead (> 0: not an errno). */
#define RELAY_FALLBACK 1

/* A pool pipe: both ends non-blocking and close-on-exec. */
struct relay_pipe {
	int rfd;
	int wfd;
	struct relay_pipe *next; /* free-list link while cached */
};

struct relay_dir {
	char *buf;               /* copy mode: pool buffer while bytes are pending, else NULL */
	struct relay_pipe *pipe; /* splice mode: pool pipe while bytes are pending, else NULL */
	uint32_t head;           /* next byte to write (splice: bytes spliced out of the pipe) */
	uint32_t tail;           /* end of the bytes read (splice: bytes spliced into the pipe) */
	bool eof;                /* the source sent FIN */
	bool shut;               /* ... and SHUT_WR went to the destination after the last byte */
	uint8_t rd_want;         /* what reading the source waits for: EV_READ, or EV_WRITE (TLS) */
	uint8_t wr_want;         /* what writing the destination waits for: EV_WRITE, or EV_READ (TLS) */
	uint32_t nocount;        /* leading bytes not counted: the preamble reply "ok" (u2c) */
};

_Static_assert(RELAY_PREFIX_MAX == NODELINK_PREFIX_MAX, "relay.h promises the node link's prefix size");

/*
 * One allocation per connection: 360 bytes on x86-64 with Debian's libev
 * 4.33 (two ev_io and one ev_timer are 48 bytes each, half of it; the splice
 * path added a pipe pointer per direction and opts.flags, TLS two connection
 * pointers, the node link pointer, per-direction waits; a TLS attempt holds
 * a 660-byte struct nodelink until it connects, and each TLS side wolfSSL's
 * ~90 KB); buffers
 * and pipes are separate and pooled, and only held while bytes wait. Both
 * socket descriptors live in the ev_io watchers (cio.fd, uio.fd; uio.fd is
 * -1 between attempts).
 */
struct relay {
	ev_io cio;      /* client socket */
	ev_io uio;      /* upstream socket */
	ev_timer timer; /* connect timeout while connecting, then idle timeout */
	struct relay_dir c2u;
	struct relay_dir u2c;
	struct ev_loop *loop;
	struct relay_pool *pool;
	relay_pick_fn pick;
	relay_event_fn ev;
	void *arg;
	void *tag; /* endpoint of the current (or last) attempt */
	union {
		int64_t connect_t0_us; /* RELAY_CONNECTING: when the attempt began */
		ev_tstamp last_active; /* RELAY_RUNNING: ev_now() of the last byte moved */
	};
	ev_tstamp ref_t;    /* connect time, then time the first client byte went upstream */
	uint64_t bytes_in;  /* client -> upstream, written to the upstream socket */
	uint64_t bytes_out; /* upstream -> client, written to the client socket */
	struct relay_opts opts;
	struct tls_conn *ctls; /* client side is TLS (relay_start_tls), else NULL */
	struct tls_conn *utls; /* upstream TLS: the current attempt's, then the connection's */
	struct nodelink *link; /* TLS attempt not connected yet, else NULL */
	uint32_t attempt;
	int last_err;          /* errno of the last failed attempt */
	int16_t last_tls_fail; /* enum tls_fail of the last attempt (relay_last_tls_fail) */
	int16_t last_reply;    /* preamble status the last attempt got, or -1 */
	uint8_t state;
	uint8_t flags;
};

enum pool_splice {
	POOL_SPLICE_UNKNOWN, /* no relay asked yet: SIGPIPE not checked */
	POOL_SPLICE_ON,
	POOL_SPLICE_OFF, /* unsupported here, or SIGPIPE at SIG_DFL: copy only */
};

struct relay_pool {
	uint32_t held_max;             /* high-water mark of buffers + pipes held */
	void *free_list;               /* cached buffers, each holding the next link in its first bytes */
	struct relay_pipe *free_pipes; /* cached pipes, empty */
	uint32_t buffer_size;
	uint32_t max_cached;
	uint32_t cached;
	uint32_t in_use;
	uint32_t relays;
	uint32_t pipes_cached;
	uint32_t pipes_in_use;
	uint32_t splice_fallbacks;
	uint8_t splice; /* enum pool_splice */
};

/* --- buffer pool (O(1) free-list; malloc only when the cache is empty) ---- */

struct relay_pool *relay_pool_new(uint32_t buffer_size, uint32_t max_cached)
{
	struct relay_pool *p;

	if (buffer_size < RELAY_MIN_BUFFER) {
		errno = EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->buffer_size = buffer_size;
	p->max_cached = max_cached;
	return p;
}

static void pipe_close(struct relay_pipe *pp);

void relay_pool_free(struct relay_pool *p)
{
	struct relay_pipe *pp, *pnext;
	void *b, *next;

	if (!p)
		return;
	if (p->relays || p->in_use || p->pipes_in_use) {
		/* Freeing now would leave running relays pointing at freed memory. */
		log_error("relay: buffer pool freed with %u relays still running; leaking it "
			  "(relay_abort every relay before relay_pool_free)",
			  p->relays);
		return;
	}
	for (b = p->free_list; b; b = next) {
		memcpy(&next, b, sizeof(next));
		free(b);
	}
	for (pp = p->free_pipes; pp; pp = pnext) {
		pnext = pp->next;
		pipe_close(pp);
	}
	free(p);
}

void relay_pool_get_stats(const struct relay_pool *p, struct relay_pool_stats *st)
{
	st->buffers_in_use = p->in_use;
	st->buffers_cached = p->cached;
	st->relays = p->relays;
	st->pipes_in_use = p->pipes_in_use;
	st->pipes_cached = p->pipes_cached;
	st->splice_fallbacks = p->splice_fallbacks;
	st->splice_off = p->splice == POOL_SPLICE_OFF;
	st->held_max = p->held_max;
}

static char *pool_get(struct relay_pool *p)
{
	void *b = p->free_list;

	if (b) {
		memcpy(&p->free_list, b, sizeof(p->free_list));
		p->cached--;
	} else {
		b = malloc(p->buffer_size);
		if (!b)
			return NULL;
	}
	p->in_use++;
	if (p->in_use + p->pipes_in_use > p->held_max)
		p->held_max = p->in_use + p->pipes_in_use;
	return b;
}

static void pool_put(struct relay_pool *p, char *b)
{
	p->in_use--;
	if (p->cached < p->max_cached) {
		memcpy(b, &p->free_list, sizeof(p->free_list));
		p->free_list = b;
		p->cached++;
	} else {
		free(b);
	}
}

/* --- pipe pool (splice mode; O(1) free-list, pipe2 only when it is empty) -- */

/*
 * A new pipe sized to the pool's buffers when the kernel lets us: F_SETPIPE_SZ
 * rounds up to a power-of-two number of pages, and refuses (EPERM) beyond
 * fs.pipe-max-size or once the user is over fs.pipe-user-pages-soft; the
 * default size still works then, only in smaller chunks. Returns 0 and *out
 * (the caller owns it), or -ENOMEM, -EMFILE, -ENFILE.
 */
static int pipe_open(const struct relay_pool *p, struct relay_pipe **out)
{
	int size = p->buffer_size > INT_MAX ? INT_MAX : (int)p->buffer_size;
	struct relay_pipe *pp;
	int fds[2], err;

	pp = malloc(sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
		err = -errno;
		free(pp);
		return err;
	}
	if (fcntl(fds[1], F_SETPIPE_SZ, size) < 0 && errno != EPERM)
		log_debug("relay: F_SETPIPE_SZ %d on a splice pipe: %s", size, strerror(errno));
	pp->rfd = fds[0];
	pp->wfd = fds[1];
	pp->next = NULL;
	*out = pp;
	return 0;
}

/* Closes both ends (dropping any bytes still in it) and frees pp. */
static void pipe_close(struct relay_pipe *pp)
{
	close(pp->rfd);
	close(pp->wfd);
	free(pp);
}

static int pool_pipe_get(struct relay_pool *p, struct relay_pipe **out)
{
	struct relay_pipe *pp = p->free_pipes;
	int err;

	if (pp) {
		p->free_pipes = pp->next;
		p->pipes_cached--;
	} else {
		err = pipe_open(p, &pp);
		if (err)
			return err;
	}
	p->pipes_in_use++;
	if (p->in_use + p->pipes_in_use > p->held_max)
		p->held_max = p->in_use + p->pipes_in_use;
	*out = pp;
	return 0;
}

/*
 * Gives back a pipe. Only an empty pipe may be cached: bytes left in it would
 * reach the next relay's destination. `empty` is false when it may hold bytes
 * (a relay ended with bytes in flight); then it is closed.
 */
static void pool_pipe_put(struct relay_pool *p, struct relay_pipe *pp, bool empty)
{
	p->pipes_in_use--;
	if (empty && p->pipes_cached < p->max_cached) {
		pp->next = p->free_pipes;
		p->free_pipes = pp;
		p->pipes_cached++;
	} else {
		pipe_close(pp);
	}
}

/* Turns splice off for the pool's later relays; warns once (per pool). */
static void pool_splice_off(struct relay_pool *p, const char *why)
{
	if (p->splice == POOL_SPLICE_OFF)
		return;
	p->splice = POOL_SPLICE_OFF;
	log_warn("relay: splice fast path off: %s; relays copy through userspace buffers instead "
		 "(correct, only slower)",
		 why);
}

/*
 * May relays on p splice? Decided at the first relay asking (one
 * sigaction(2) per pool), then sticky. splice(2) cannot pass MSG_NOSIGNAL,
 * so with SIGPIPE at SIG_DFL a write to a vanished peer would kill the
 * process; copying, with MSG_NOSIGNAL, is the safe choice then.
 */
static bool pool_splice_usable(struct relay_pool *p)
{
	struct sigaction sa;

	if (p->splice == POOL_SPLICE_UNKNOWN) {
		/* sa_handler and sa_sigaction share storage: SIG_DFL either way. */
		if (sigaction(SIGPIPE, NULL, &sa) < 0 || sa.sa_handler == SIG_DFL)
			pool_splice_off(p, "SIGPIPE is at its default action, which splice(2) cannot "
					   "suppress; ignore SIGPIPE in the process to use it");
		else
			p->splice = POOL_SPLICE_ON;
	}
	return p->splice == POOL_SPLICE_ON;
}

/* --- socket helpers ----------------------------------------------------- */

static int64_t mono_usec(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer (clock_gettime(2)). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --- lifecycle ------------------------------------------------------------ */

/* Gives back what d holds; a pipe with bytes in flight is closed, not cached. */
static void relay_dir_release(struct relay_pool *p, struct relay_dir *d)
{
	if (d->buf)
		pool_put(p, d->buf);
	if (d->pipe)
		pool_pipe_put(p, d->pipe, d->head == d->tail);
	d->buf = NULL;
	d->pipe = NULL;
}

/* Drops the current attempt's TLS state (connection and handshake progress); before its fd closes. */
static void relay_attempt_clear(struct relay *r)
{
	tls_conn_free(r->utls);
	r->utls = NULL;
	free(r->link);
	r->link = NULL;
}

/*
 * Writes the preamble reply st to a TLS client as the last thing it gets,
 * then close_notify: best effort and never waits (the connection is idle and
 * its send buffer empty, so the one small record goes out at once). True when
 * the reply was taken whole: then the caller closes cleanly, not with a reset,
 * so the peer reads it.
 */
static bool tls_reply_last(struct tls_conn *t, enum preamble_status st)
{
	uint8_t b[PREAMBLE_REPLY_LEN];

	if (preamble_reply_encode(b, sizeof(b), st) != PREAMBLE_REPLY_LEN ||
	    tls_write(t, b, sizeof(b)) != (ssize_t)sizeof(b))
		return false;
	tls_shutdown(t);
	return true;
}

/*
 * The one exit: stops the watchers, closes both sockets (reset: with RST),
 * returns the buffers and pipes, reports RELAY_EV_CLOSED and frees r. Callers must not
 * touch r afterwards, and never call this while one of r's user callbacks is
 * on the stack (see RELAY_F_IN_USER).
 */
static void relay_finish(struct relay *r, int err, bool reset)
{
	struct relay_stats st;
	void *tag = (r->flags & RELAY_F_CONNECTED) ? r->tag : NULL;

	r->flags |= RELAY_F_CLOSING;
	ev_io_stop(r->loop, &r->cio);
	ev_io_stop(r->loop, &r->uio);
	ev_timer_stop(r->loop, &r->timer);
	/* TLS objects first: they refer to the descriptors (no close_notify: see relay_dir_copy). */
	tls_conn_free(r->ctls);
	r->ctls = NULL;
	relay_attempt_clear(r);
	sock_close(r->cio.fd, reset);
	if (r->uio.fd >= 0)
		sock_close(r->uio.fd, reset);
	relay_dir_release(r->pool, &r->c2u);
	relay_dir_release(r->pool, &r->u2c);

	st.bytes_in = r->bytes_in;
	st.bytes_out = r->bytes_out;
	st.error = err;
	log_debug("relay %p: closed: in %" PRIu64 " out %" PRIu64 " bytes, %s", (void *)r, st.bytes_in, st.bytes_out,
		  err ? strerror(err) : "clean");
	r->ev(r->arg, r, RELAY_EV_CLOSED, tag, 0, &st);
	r->pool->relays--;
	free(r);
}

/*
 * Reports a CONNECTED / CONNECT_FAIL event. Returns true when relay_abort(r)
 * was called from inside: the caller must then relay_finish() and return.
 */
static bool relay_emit(struct relay *r, enum relay_event_kind kind, int64_t value)
{
	struct relay_stats st;

	relay_get_stats(r, &st);
	r->flags |= RELAY_F_IN_USER;
	r->ev(r->arg, r, kind, r->tag, value, &st);
	r->flags &= (uint8_t)~RELAY_F_IN_USER;
	return r->flags & RELAY_F_ABORT;
}

/*
 * Asks opts.secure whether this attempt (fd, r->tag) is TLS; when it is,
 * sets up r->utls (client side, over fd) and r->link with the prefix. Returns 0
 * (plain or TLS set up) or -errno: the callback's own, -EINVAL for a bad
 * answer (no context, prefix too long), -ENOMEM, -ECONNABORTED when the
 * callback aborted this relay (RELAY_F_ABORT is set then).
 */
static int relay_secure(struct relay *r, int fd)
{
	uint8_t prefix[RELAY_PREFIX_MAX];
	struct tls_ctx *ctx = NULL;
	size_t plen = 0;
	int rc;

	if (!r->opts.secure)
		return 0;
	r->flags |= RELAY_F_IN_USER;
	rc = r->opts.secure(r->arg, r->tag, &ctx, prefix, sizeof(prefix), &plen);
	r->flags &= (uint8_t)~RELAY_F_IN_USER;
	if (r->flags & RELAY_F_ABORT)
		return -ECONNABORTED;
	if (rc <= 0)
		return rc;
	if (!ctx || plen > sizeof(prefix))
		return -EINVAL;
	r->link = malloc(sizeof(*r->link));
	if (!r->link)
		return -ENOMEM;
	/* Named as the relay's own log lines, so one attempt reads as one story. */
	rc = nodelink_init(r->link, prefix, plen, "relay %p: attempt %u", (void *)r, r->attempt);
	if (rc)
		return rc;                      /* the caller's relay_attempt_clear() frees link */
	r->utls = tls_conn_new(ctx, fd, false); /* takes its own reference on ctx */
	if (!r->utls)
		return -ENOMEM; /* the caller's relay_attempt_clear() frees link */
	return 0;
}

/*
 * Starts one connect attempt to a. Returns 0 when it is in flight (uio
 * watches for writability, the timer bounds it), or -errno when it failed at
 * once; then no socket is left open (nor TLS state).
 */
static int relay_connect(struct relay *r, const struct weft_sockaddr *a)
{
	int fd, err;

	r->last_tls_fail = TLS_FAIL_NONE;
	r->last_reply = -1;
	/* in a pod's namespace when a is a pod here; the mark keeps it out of the BPF redirect */
	fd = netns_upstream_socket(&a->sa, r->opts.mark);
	if (fd < 0)
		return fd;
	err = relay_secure(r, fd);
	if (err)
		goto err;
	/* EINTR: connect(2) says the attempt then goes on asynchronously. */
	if (connect(fd, &a->sa, a->len) < 0 && errno != EINPROGRESS && errno != EINTR) {
		err = -errno;
		goto err;
	}
	/*
	 * Even a connect that succeeded at once goes through EV_WRITE: the event
	 * then fires on the next iteration, and CONNECTED is never reported from
	 * inside relay_start().
	 */
	r->connect_t0_us = mono_usec();
	ev_io_set(&r->uio, fd, EV_WRITE);
	ev_io_start(r->loop, &r->uio);
	if (r->opts.connect_timeout_ms) {
		ev_timer_set(&r->timer, r->opts.connect_timeout_ms / 1e3, 0.);
		ev_timer_start(r->loop, &r->timer);
	}
	return 0;
err:
	relay_attempt_clear(r);
	close(fd);
	return err;
}

/*
 * The current attempt failed with err: report it, then try the next
 * endpoints until one attempt is in flight; when none is left, reset the
 * client and end with the last attempt's errno.
 */
static void relay_attempt_failed(struct relay *r, int err)
{
	struct weft_sockaddr addr;
	void *tag;
	int rc;

	for (;;) {
		ev_io_stop(r->loop, &r->uio);
		ev_timer_stop(r->loop, &r->timer);
		relay_attempt_clear(r);
		if (r->uio.fd >= 0) {
			close(r->uio.fd);
			ev_io_set(&r->uio, -1, 0);
		}
		r->last_err = err;
		log_debug("relay %p: attempt %u failed: %s", (void *)r, r->attempt, strerror(err));
		if (relay_emit(r, RELAY_EV_CONNECT_FAIL, err))
			goto aborted;
		if (++r->attempt >= r->opts.max_attempts)
			break;
		tag = NULL;
		r->flags |= RELAY_F_IN_USER;
		rc = r->pick(r->arg, r->attempt, &addr, &tag);
		r->flags &= (uint8_t)~RELAY_F_IN_USER;
		if (r->flags & RELAY_F_ABORT)
			goto aborted;
		if (rc)
			break; /* nothing more to try */
		r->tag = tag;
		rc = relay_connect(r, &addr);
		if (r->flags & RELAY_F_ABORT)
			goto aborted;
		if (!rc)
			return;
		err = -rc;
	}
	/* The connecting agent reads "unreachable" and tries elsewhere; a reset would say less. */
	if ((r->flags & RELAY_F_TLSREPLY) && tls_reply_last(r->ctls, PREAMBLE_ST_UNREACHABLE)) {
		relay_finish(r, r->last_err, false);
		return;
	}
	relay_finish(r, r->last_err, true);
	return;
aborted:
	relay_finish(r, ECONNABORTED, true);
}

/* --- data path ------------------------------------------------------------ */

/* Counts n bytes written, minus the leading ones that are not payload (d->nocount). */
static void count_sent(struct relay_dir *d, uint64_t *count, uint32_t n)
{
	uint32_t skip = n < d->nocount ? n : d->nocount;

	d->nocount -= skip;
	*count += n - skip;
}

/* What a TLS side that returned -EAGAIN waits for. */
static uint8_t tls_wait_ev(const struct tls_conn *t, uint8_t dflt)
{
	switch (tls_want(t)) {
	case TLS_WANT_READ:
		return EV_READ;
	case TLS_WANT_WRITE:
		return EV_WRITE;
	default:
		return dflt;
	}
}

/*
 * Moves bytes one way, src -> dst, as far as the sockets allow right now:
 * flushes what is pending, then reads and writes in turn (see RELAY_ROUNDS).
 * Called when src is readable or dst is writable; either way it does the
 * right thing. Once drained, the buffer goes back to the pool and a pending
 * EOF becomes shutdown(dst, SHUT_WR) (after close_notify when dst is TLS).
 * Returns 0, or -errno on a hard error (the caller resets both sides). No
 * allocation unless the pool is empty.
 *
 * stls / dtls (NULL: plain) make that side TLS: tls_read returns at most one
 * record and may leave decrypted bytes behind, so a short read does not mean
 * src is drained (read on until -EAGAIN; relay_watch() covers what the rounds
 * leave in tls_pending); tls_write takes at most one record per call, so a
 * partial write is not a full socket (write on until -EAGAIN), and after
 * -EAGAIN the same bytes are offered again (head does not move).
 */
static int relay_dir_copy(struct relay *r, struct relay_dir *d, int src, struct tls_conn *stls, int dst,
			  struct tls_conn *dtls, uint64_t *count)
{
	uint32_t cap = r->opts.buffer_size;
	bool more = true; /* src may hold more bytes */
	bool moved = false;
	unsigned round;
	ssize_t n;
	int err = 0;

	for (round = 0; round < RELAY_ROUNDS; round++) {
		if (d->head == d->tail) {
			if (d->eof || !more)
				break;
			if (!d->buf) {
				d->buf = pool_get(r->pool);
				if (!d->buf) {
					err = -ENOMEM;
					goto out;
				}
			}
			if (stls) {
				n = tls_read(stls, d->buf, cap);
				if (n == -EAGAIN) {
					d->rd_want = tls_wait_ev(stls, EV_READ);
					break;
				}
				/* A bare FIN (no close_notify) ends this direction like one. */
				if (n < 0 && tls_conn_fail(stls) == TLS_FAIL_CLOSED)
					n = 0;
				if (n < 0) {
					err = (int)n;
					goto out;
				}
				d->rd_want = EV_READ;
			} else {
				n = recv(src, d->buf, cap, 0);
				if (n < 0) {
					if (sock_would_block(errno))
						break;
					err = -errno;
					goto out;
				}
			}
			if (n == 0) {
				d->eof = true;
				break;
			}
			moved = true;
			d->head = 0;
			d->tail = (uint32_t)n;
			/* A short read means src is drained for now: skip the EAGAIN read (not so for TLS). */
			more = stls || (uint32_t)n == cap;
		}
		while (d->head < d->tail) {
			if (dtls) {
				n = tls_write(dtls, d->buf + d->head, d->tail - d->head);
				if (n == -EAGAIN) {
					d->wr_want = tls_wait_ev(dtls, EV_WRITE);
					goto out; /* pending: relay_watch() waits for wr_want on dst */
				}
				if (n < 0) {
					err = (int)n;
					goto out;
				}
				d->wr_want = EV_WRITE;
			} else {
				n = send(dst, d->buf + d->head, d->tail - d->head, MSG_NOSIGNAL);
				if (n < 0) {
					if (sock_would_block(errno))
						goto out; /* pending: relay_watch() waits for EV_WRITE on dst */
					err = -errno;
					goto out;
				}
			}
			moved = true;
			d->head += (uint32_t)n;
			count_sent(d, count, (uint32_t)n);
			if (!dtls && d->head < d->tail)
				goto out; /* dst's send buffer is full: stop reading src */
		}
		d->head = d->tail = 0;
	}
	/* Empty here: an idle direction holds no buffer. */
	if (d->buf) {
		pool_put(r->pool, d->buf);
		d->buf = NULL;
	}
	if (d->eof && !d->shut) {
		/*
		 * close_notify first, so a TLS peer reads a clean end; -EAGAIN: wait for
		 * dst and try again (relay_watch). Any other error (the TLS side has
		 * failed, e.g. after a bare FIN from it): the FIN alone says it.
		 */
		if (dtls && tls_shutdown(dtls) == -EAGAIN) {
			d->wr_want = EV_WRITE;
			goto out;
		}
		if (shutdown(dst, SHUT_WR) < 0) {
			err = -errno;
			goto out;
		}
		d->shut = true;
	}
out:
	if (moved)
		r->last_active = ev_now(r->loop);
	return err;
}

/*
 * splice(2) failed with e (not EAGAIN). Unsupported here (an old kernel, a
 * socket type without splice_read/splice_write, a seccomp filter answering
 * ENOSYS): nothing moved, so RELAY_FALLBACK, and the pool stops trying for
 * later relays. Anything else is the socket's own error, as recv/send would
 * have reported it: -e.
 */
static int relay_splice_failed(struct relay *r, int e)
{
	switch (e) {
	case EINVAL:
		pool_splice_off(r->pool, "splice(2) refused these sockets (EINVAL)");
		return RELAY_FALLBACK;
	case ENOSYS:
		pool_splice_off(r->pool, "splice(2) is not available (ENOSYS)");
		return RELAY_FALLBACK;
	case EOPNOTSUPP:
		pool_splice_off(r->pool, "splice(2) is not supported here (EOPNOTSUPP)");
		return RELAY_FALLBACK;
	default:
		return -e;
	}
}

/*
 * relay_dir_copy() with splice(2): src -> pipe -> dst, the bytes staying in
 * the kernel. Same rounds, same states, same return values, plus
 * RELAY_FALLBACK when splice cannot serve this relay (unsupported, or no pipe
 * to be had: EMFILE, ENFILE, ENOMEM); then no byte was lost, and whatever sits
 * in the pipe is still counted in head/tail for relay_unsplice(). A pipe is
 * taken only to read into and given back as soon as it is empty, so an idle
 * direction holds none. No allocation unless the pipe cache is empty.
 */
static int relay_dir_splice(struct relay *r, struct relay_dir *d, int src, int dst, uint64_t *count)
{
	const unsigned int sflags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
	uint32_t cap = r->opts.buffer_size;
	bool more = true; /* src may hold more bytes */
	bool moved = false;
	unsigned round;
	ssize_t n;
	int err = 0;

	for (round = 0; round < RELAY_ROUNDS; round++) {
		if (d->head == d->tail) {
			if (d->eof || !more)
				break;
			if (!d->pipe) {
				err = pool_pipe_get(r->pool, &d->pipe);
				if (err) {
					log_debug("relay %p: no splice pipe (%s): copying instead", (void *)r,
						  strerror(-err));
					err = RELAY_FALLBACK;
					goto out;
				}
			}
			/* The pipe is empty: EAGAIN here can only mean src has nothing. */
			n = splice(src, NULL, d->pipe->wfd, NULL, cap, sflags);
			if (n < 0) {
				if (sock_would_block(errno))
					break;
				err = relay_splice_failed(r, errno);
				goto out;
			}
			if (n == 0) {
				d->eof = true;
				break;
			}
			moved = true;
			d->head = 0;
			d->tail = (uint32_t)n;
			/* Short: src is drained, or the pipe ran out of slots; level-triggered either way. */
			more = (uint32_t)n == cap;
		}
		n = splice(d->pipe->rfd, NULL, dst, NULL, d->tail - d->head, sflags);
		if (n < 0) {
			if (sock_would_block(errno))
				goto out; /* pending: relay_watch() waits for EV_WRITE on dst */
			err = relay_splice_failed(r, errno);
			goto out;
		}
		if (n == 0) {
			/* Only for an empty pipe without writers: our count is wrong. Never spin on it. */
			err = -EIO;
			goto out;
		}
		moved = true;
		d->head += (uint32_t)n;
		*count += (uint64_t)n;
		if (d->head < d->tail)
			goto out; /* dst's send buffer is full: stop reading src */
		d->head = d->tail = 0;
	}
	/* Empty here: an idle direction holds no pipe. */
	if (d->pipe) {
		pool_pipe_put(r->pool, d->pipe, true);
		d->pipe = NULL;
	}
	if (d->eof && !d->shut) {
		if (shutdown(dst, SHUT_WR) < 0) {
			err = -errno;
			goto out;
		}
		d->shut = true;
	}
out:
	if (moved)
		r->last_active = ev_now(r->loop);
	return err;
}

/*
 * Leaves splice mode for the rest of r's life: the bytes in each direction's
 * pipe move, in order, into a pool buffer as that direction's pending bytes
 * (they fit: a direction splices at most buffer_size bytes into an empty
 * pipe), and the emptied pipes go back to the pool; the copy path then goes
 * on exactly where splice stopped. Returns 0, or -ENOMEM / -EIO (a pipe gave
 * back fewer bytes than it held): then the caller ends the relay, and
 * relay_finish() closes any pipe that may still hold bytes.
 */
static int relay_unsplice(struct relay *r)
{
	struct relay_dir *dirs[2] = { &r->c2u, &r->u2c };
	struct relay_dir *d;
	uint32_t len, got;
	unsigned i;
	ssize_t n;

	r->flags &= (uint8_t)~RELAY_F_SPLICE;
	r->pool->splice_fallbacks++;
	for (i = 0; i < 2; i++) {
		d = dirs[i];
		if (!d->pipe)
			continue;
		if (d->head != d->tail) {
			len = d->tail - d->head;
			d->buf = pool_get(r->pool);
			if (!d->buf)
				return -ENOMEM;
			for (got = 0; got < len; got += (uint32_t)n) {
				n = read(d->pipe->rfd, d->buf + got, len - got);
				if (n <= 0)
					return n < 0 ? -errno : -EIO;
			}
			d->head = 0;
			d->tail = len;
		}
		pool_pipe_put(r->pool, d->pipe, true);
		d->pipe = NULL;
	}
	return 0;
}

/*
 * Moves bytes one way as far as the sockets allow right now, by splice when
 * the relay is in splice mode, else by copying (relay_dir_copy). Returns 0 or
 * -errno (the caller resets both sides).
 */
static int relay_dir_run(struct relay *r, struct relay_dir *d, int src, struct tls_conn *stls, int dst,
			 struct tls_conn *dtls, uint64_t *count)
{
	int err;

	if (r->flags & RELAY_F_SPLICE) { /* never with a TLS side */
		err = relay_dir_splice(r, d, src, dst, count);
		if (err != RELAY_FALLBACK)
			return err;
		err = relay_unsplice(r);
		if (err)
			return err;
	}
	return relay_dir_copy(r, d, src, stls, dst, dtls, count);
}

/* The two directions, by name: client -> upstream, upstream -> client. */
static int relay_run_c2u(struct relay *r)
{
	return relay_dir_run(r, &r->c2u, r->cio.fd, r->ctls, r->uio.fd, r->utls, &r->bytes_in);
}

static int relay_run_u2c(struct relay *r)
{
	return relay_dir_run(r, &r->u2c, r->uio.fd, r->utls, r->cio.fd, r->ctls, &r->bytes_out);
}

/* d waits for its destination: bytes to write, or (TLS) a close_notify that did not go out. */
static bool dir_waits_dst(const struct relay_dir *d)
{
	return d->head != d->tail || (d->eof && !d->shut);
}

/*
 * Watches exactly what the two directions wait for (see the top comment).
 * For plain sockets rd_want/wr_want are always EV_READ/EV_WRITE; a TLS side
 * may wait for the other socket direction (tls_want). Decrypted bytes a TLS
 * side already holds would never wake the loop: an event is fed for them.
 */
static void relay_watch(struct relay *r)
{
	int cwant = 0, uwant = 0;

	if (dir_waits_dst(&r->c2u))
		uwant |= r->c2u.wr_want;
	else if (!r->c2u.eof)
		cwant |= r->c2u.rd_want;
	if (dir_waits_dst(&r->u2c))
		cwant |= r->u2c.wr_want;
	else if (!r->u2c.eof)
		uwant |= r->u2c.rd_want;
	sock_io_want(r->loop, &r->cio, cwant);
	sock_io_want(r->loop, &r->uio, uwant);
	if (r->ctls && !dir_waits_dst(&r->c2u) && !r->c2u.eof && tls_pending(r->ctls))
		ev_feed_event(r->loop, &r->cio, EV_READ);
	if (r->utls && !dir_waits_dst(&r->u2c) && !r->u2c.eof && tls_pending(r->utls))
		ev_feed_event(r->loop, &r->uio, EV_READ);
}

/* After data-path work: end on error or when both directions are done, else re-watch. */
static void relay_settle(struct relay *r, int err)
{
	if (err)
		relay_finish(r, -err, true);
	else if (r->c2u.shut && r->u2c.shut)
		relay_finish(r, 0, false);
	else
		relay_watch(r);
}

/*
 * Response latency bookkeeping after data-path work that started with the
 * counters at in0 / out0: the first byte back, measured from the first byte
 * sent, is reported once (RELAY_EV_FIRST_BYTE). Returns true when the
 * callback aborted r: the caller must relay_finish() and return.
 */
static bool relay_first_byte(struct relay *r, uint64_t in0, uint64_t out0)
{
	if (r->flags & RELAY_F_FIRSTBYTE)
		return false;
	if (in0 == 0 && r->bytes_in > 0 && out0 == 0)
		r->ref_t = ev_now(r->loop);
	if (out0 == 0 && r->bytes_out > 0) {
		r->flags |= RELAY_F_FIRSTBYTE;
		return relay_emit(r, RELAY_EV_FIRST_BYTE, (int64_t)((ev_now(r->loop) - r->ref_t) * 1e6));
	}
	return false;
}

/*
 * Advances a TLS attempt whose TCP connect is done (link/nodelink: handshake,
 * prefix, reply) and records what it learnt for relay_last_tls_fail() and
 * relay_last_reply(). Returns 0 (reply "ok": connected), -EAGAIN (uio now
 * watches what the TLS layer waits for), or the attempt's -errno. What the
 * upstream sent behind its reply stays in the TLS layer for the data path.
 */
static int relay_link_step(struct relay *r)
{
	int rc = nodelink_step(r->link, r->utls);

	if (rc == -EAGAIN) {
		sock_io_want(r->loop, &r->uio, tls_wait_ev(r->utls, EV_READ));
		return -EAGAIN;
	}
	r->last_tls_fail = r->link->tls_fail;
	r->last_reply = r->link->reply_status;
	return rc;
}

/*
 * Server leg: queues the reply "ok" as the first bytes towards the client,
 * ahead of anything from upstream and not counted as upstream bytes.
 */
static int relay_queue_reply_ok(struct relay *r)
{
	struct relay_dir *d = &r->u2c;

	d->buf = pool_get(r->pool);
	if (!d->buf)
		return -ENOMEM;
	if (preamble_reply_encode(d->buf, r->opts.buffer_size, PREAMBLE_ST_OK) != PREAMBLE_REPLY_LEN)
		return -EINVAL; /* cannot happen: buffers are >= 64 bytes */
	d->head = 0;
	d->tail = PREAMBLE_REPLY_LEN;
	d->nocount = PREAMBLE_REPLY_LEN;
	return 0;
}

/* uio fired (or the TLS steps can go on) while connecting. */
static void relay_connect_done(struct relay *r)
{
	socklen_t len = sizeof(int);
	int64_t usec;
	int err = 0;

	if (!r->link || !nodelink_started(r->link)) {
		if (getsockopt(r->uio.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			relay_attempt_failed(r, err);
			return;
		}
	}
	if (r->link) {
		err = relay_link_step(r);
		if (err == -EAGAIN)
			return;
		if (err) {
			relay_attempt_failed(r, -err);
			return;
		}
		free(r->link);
		r->link = NULL;
	}
	ev_io_stop(r->loop, &r->uio);
	ev_timer_stop(r->loop, &r->timer);
	usec = mono_usec() - r->connect_t0_us;
	r->state = RELAY_RUNNING;
	r->flags |= RELAY_F_CONNECTED;
	if (r->utls || r->ctls)
		r->flags &= (uint8_t)~RELAY_F_SPLICE; /* bytes must pass through the TLS layer */
	r->last_active = ev_now(r->loop);
	r->ref_t = r->last_active;
	log_debug("relay %p: connected in %" PRId64 " us (attempt %u%s)", (void *)r, usec, r->attempt,
		  r->utls ? ", TLS" : "");
	if (relay_emit(r, RELAY_EV_CONNECTED, usec)) {
		relay_finish(r, ECONNABORTED, true);
		return;
	}
	if (r->opts.idle_timeout_ms) {
		ev_timer_set(&r->timer, r->opts.idle_timeout_ms / 1e3, 0.);
		ev_timer_start(r->loop, &r->timer);
	}
	if (r->flags & RELAY_F_TLSREPLY)
		err = relay_queue_reply_ok(r);
	/*
	 * The client's first bytes usually wait in the kernel already (or, from a
	 * TLS client, in the TLS layer or the initial bytes): move them now. A TLS
	 * upstream may hold bytes behind its reply, and the reply "ok" waits in
	 * u2c: move those too.
	 */
	if (!err)
		err = relay_run_c2u(r);
	if (!err && (r->utls || dir_waits_dst(&r->u2c)))
		err = relay_run_u2c(r);
	/* The upstream may have answered already (its bytes moved just now). */
	if (relay_first_byte(r, 0, 0)) {
		relay_finish(r, ECONNABORTED, true);
		return;
	}
	relay_settle(r, err);
}

static void relay_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct relay *r = w->data;
	uint64_t in0, out0;
	int err = 0;

	if (r->state == RELAY_CONNECTING) {
		relay_connect_done(r); /* only uio is watched while connecting */
		return;
	}
	in0 = r->bytes_in;
	out0 = r->bytes_out;
	/*
	 * Flush towards this socket first, then read from it. A TLS socket's
	 * reads may wait for EV_WRITE and its writes for EV_READ (tls_want), so
	 * any event on it serves both of its directions.
	 */
	if (w == &r->cio) {
		if ((revents & EV_WRITE) || (r->ctls && dir_waits_dst(&r->u2c)))
			err = relay_run_u2c(r);
		if (!err && ((revents & EV_READ) || r->ctls))
			err = relay_run_c2u(r);
	} else {
		if ((revents & EV_WRITE) || (r->utls && dir_waits_dst(&r->c2u)))
			err = relay_run_c2u(r);
		if (!err && ((revents & EV_READ) || r->utls))
			err = relay_run_u2c(r);
	}
	if (relay_first_byte(r, in0, out0)) {
		relay_finish(r, ECONNABORTED, true);
		return;
	}
	relay_settle(r, err);
}

static void relay_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct relay *r = w->data;
	ev_tstamp left;

	if (r->state == RELAY_CONNECTING) {
		/* The attempt timed out, or relay_start() deferred one that failed at once. */
		if (r->link) {
			nodelink_expire(r->link); /* TLS_FAIL_TIMEOUT when in the handshake */
			r->last_tls_fail = r->link->tls_fail;
		}
		relay_attempt_failed(r, r->uio.fd < 0 ? r->last_err : ETIMEDOUT);
		return;
	}
	left = r->last_active + r->opts.idle_timeout_ms / 1e3 - ev_now(loop);
	if (left > 0.) {
		/* Bytes moved since the timer was armed: sleep for the rest only. */
		ev_timer_set(w, left, 0.);
		ev_timer_start(loop, w);
		return;
	}
	log_debug("relay %p: idle for %u ms", (void *)r, r->opts.idle_timeout_ms);
	relay_finish(r, ETIMEDOUT, true);
}

/* --- API ------------------------------------------------------------------ */

/*
 * Picks and starts attempt 0. Fails (NULL, errno, client reset, no callback)
 * on bad arguments, ENOMEM, or when pick has nothing at all to offer (its
 * errno, ENOENT normally). A first attempt that fails at once is reported
 * from the loop, never from here, so the caller always gets r before any
 * callback names it. ctls (relay_start_tls): the client side is TLS, with
 * initial plaintext bytes to send upstream first; ctls and client_fd are
 * ours on every path.
 */
static struct relay *relay_begin(struct ev_loop *loop, struct relay_pool *pool, int client_fd, struct tls_conn *ctls,
				 const void *initial, size_t initial_len, const struct relay_opts *opts,
				 relay_pick_fn pick, relay_event_fn ev, void *arg)
{
	struct weft_sockaddr addr;
	struct relay *r = NULL;
	void *tag = NULL;
	bool replied = false;
	int err, rc;

	if (!loop || !pool || client_fd < 0 || !opts || !pick || !ev ||
	    (opts->flags & ~(RELAY_SPLICE | RELAY_TLS_REPLY)) ||
	    (ctls ? opts->secure || !tls_peer_id(ctls) || (initial_len && !initial)
		  : (opts->flags & RELAY_TLS_REPLY) != 0)) {
		err = EINVAL;
		goto err;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		err = ENOMEM;
		goto err;
	}
	r->loop = loop;
	r->pool = pool;
	r->pick = pick;
	r->ev = ev;
	r->arg = arg;
	r->opts = *opts;
	if (!r->opts.buffer_size || r->opts.buffer_size > pool->buffer_size)
		r->opts.buffer_size = pool->buffer_size;
	if (!r->opts.max_attempts)
		r->opts.max_attempts = 1;
	if (initial_len > r->opts.buffer_size) {
		err = EINVAL;
		goto err;
	}
	r->state = RELAY_CONNECTING;
	r->c2u.rd_want = r->u2c.rd_want = EV_READ;
	r->c2u.wr_want = r->u2c.wr_want = EV_WRITE;
	r->last_reply = -1;

	rc = pick(arg, 0, &addr, &tag);
	if (rc) {
		err = rc < 0 ? -rc : ENOENT;
		if (ctls && (opts->flags & RELAY_TLS_REPLY))
			replied = tls_reply_last(ctls, PREAMBLE_ST_UNREACHABLE);
		goto err;
	}
	r->tag = tag;
	if (initial_len) {
		r->c2u.buf = pool_get(pool);
		if (!r->c2u.buf) {
			err = ENOMEM;
			goto err;
		}
		memcpy(r->c2u.buf, initial, initial_len);
		r->c2u.tail = (uint32_t)initial_len;
	}
	/* A TLS client side never splices (nor counts as a fallback); TLS upstreams stop at connect. */
	if ((opts->flags & RELAY_SPLICE) && !ctls) {
		if (pool_splice_usable(pool))
			r->flags |= RELAY_F_SPLICE;
		else
			pool->splice_fallbacks++;
	}
	if (ctls && (opts->flags & RELAY_TLS_REPLY))
		r->flags |= RELAY_F_TLSREPLY;
	r->ctls = ctls;

	sock_set_nodelay(client_fd);
	ev_io_init(&r->cio, relay_io_cb, client_fd, 0);
	ev_io_init(&r->uio, relay_io_cb, -1, 0);
	ev_init(&r->timer, relay_timer_cb);
	r->cio.data = r->uio.data = r->timer.data = r;
	pool->relays++;

	rc = relay_connect(r, &addr);
	if (rc) {
		/* A zero timeout: relay_timer_cb() reports it on the next iteration. */
		r->last_err = -rc;
		ev_timer_set(&r->timer, 0., 0.);
		ev_timer_start(loop, &r->timer);
	}
	return r;
err:
	if (r && r->c2u.buf)
		pool_put(pool, r->c2u.buf);
	free(r);
	tls_conn_free(ctls);
	if (client_fd >= 0)
		sock_close(client_fd, !replied);
	errno = err;
	return NULL;
}

struct relay *relay_start(struct ev_loop *loop, struct relay_pool *pool, int client_fd, const struct relay_opts *opts,
			  relay_pick_fn pick, relay_event_fn ev, void *arg)
{
	return relay_begin(loop, pool, client_fd, NULL, NULL, 0, opts, pick, ev, arg);
}

struct relay *relay_start_tls(struct ev_loop *loop, struct relay_pool *pool, struct tls_conn *tls, int client_fd,
			      const void *initial, size_t initial_len, const struct relay_opts *opts,
			      relay_pick_fn pick, relay_event_fn ev, void *arg)
{
	if (!tls) {
		if (client_fd >= 0)
			sock_close(client_fd, true);
		errno = EINVAL;
		return NULL;
	}
	return relay_begin(loop, pool, client_fd, tls, initial, initial_len, opts, pick, ev, arg);
}

int relay_last_tls_fail(const struct relay *r)
{
	return r->last_tls_fail;
}

int relay_last_reply(const struct relay *r)
{
	return r->last_reply;
}

void relay_get_stats(const struct relay *r, struct relay_stats *st)
{
	st->bytes_in = r->bytes_in;
	st->bytes_out = r->bytes_out;
	st->error = 0;
}

void relay_abort(struct relay *r)
{
	if (r->flags & RELAY_F_CLOSING)
		return;
	if (r->flags & RELAY_F_IN_USER) {
		r->flags |= RELAY_F_ABORT;
		return;
	}
	relay_finish(r, ECONNABORTED, true);
}
