// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * zipkin: the span exporter (see zipkin.h for the contract).
 *
 * Two sides share one mutex. Submitters (any thread) only copy a span into
 * the ring and bump counters; everything that touches the network runs on
 * the loop given to zipkin_new. The loop side takes a batch out of the ring
 * under the lock and then works on its own copy, so a slow collector never
 * holds the lock and never blocks a submitter.
 *
 * Memory is fixed after zipkin_new, apart from the two request buffers: the
 * ring (queue_size spans), one batch (batch_size spans), and the encoded
 * request head and body, which grow to the largest batch seen and are reused.
 *
 * One POST is in flight at a time:
 *   IDLE -> CONNECTING (EV_WRITE, SO_ERROR) -> SENDING (EV_WRITE, sendmsg)
 *        -> READING (EV_READ, until "HTTP/1.x NNN" is known) -> IDLE
 * A timer bounds the whole exchange. A success with spans still queued starts
 * the next POST at once (a backlog drains at the collector's pace); a failure
 * waits for the next tick, so a dead collector costs one connect per
 * flush_ms, never a busy loop.
 */
#include "http/zipkin.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"

/* Longest tracing.path accepted: it goes into the request line as is. */
#define ZIPKIN_PATH_MAX 1024
/* A failing collector is reported at most once per this many seconds. */
#define ZIPKIN_WARN_EVERY_S 60.
/* Status-line bytes we need: "HTTP/1.1 202". */
#define ZIPKIN_STATUS_LEN 12

enum zipkin_state {
	ZK_IDLE = 0,
	ZK_CONNECTING,
	ZK_SENDING,
	ZK_READING,
};

struct zipkin {
	struct ev_loop *loop;
	struct weft_sockaddr collector;
	char collector_str[ADDR_STRLEN];
	char *path;
	char *service;
	uint32_t queue_size;
	uint32_t batch_cap; /* min(batch_size, queue_size): a batch never exceeds the ring */
	uint32_t flush_ms;
	uint32_t timeout_ms;
	uint32_t mark;

	/* Shared with submitters: everything below up to the marker, under lock. */
	pthread_mutex_t lock;
	struct trace_span *ring;
	uint32_t head; /* index of the oldest span */
	uint32_t count;
	struct zipkin_stats st; /* st.queued is filled in by zipkin_get_stats */
	/* --- loop thread only below --- */

	struct trace_span *batch; /* the spans of the POST in flight */
	uint32_t batch_n;
	struct buf req_head;
	struct buf req_body;
	size_t sent; /* bytes of head + body written */
	char resp[ZIPKIN_STATUS_LEN];
	size_t resp_len;
	enum zipkin_state state;

	ev_timer tick;
	ev_timer timeout;
	ev_async wake;
	ev_io io; /* io.fd is -1 when no POST is in flight */

	/* Rate-limited reporting. */
	bool fail_warned;
	ev_tstamp fail_warned_at;
	uint64_t fail_unreported; /* spans dropped by failed POSTs since the last warning */
	bool full_warned;
	ev_tstamp full_warned_at;
	uint64_t full_reported; /* st.dropped_full at the last warning */
};

/* strerror, lower-cased at the start so it reads inside a sentence. */
static void zipkin_errstr(char *out, size_t n, int err)
{
	snprintf(out, n, "%s", strerror(err));
	if (out[0] >= 'A' && out[0] <= 'Z')
		out[0] = (char)(out[0] - 'A' + 'a');
}

/*
 * The path goes into the request line unescaped, so it must be origin-form
 * and free of anything that could end the line or split the target.
 */
static bool zipkin_path_ok(const char *p)
{
	size_t i;

	if (p[0] != '/')
		return false;
	for (i = 0; p[i]; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= 0x20 || c >= 0x7f || i >= ZIPKIN_PATH_MAX)
			return false;
	}
	return true;
}

static void zipkin_flush(struct zipkin *z);

/*
 * Accounts for the POST that just ended, closes its socket and reports a
 * failure (reason non-NULL), at most once per ZIPKIN_WARN_EVERY_S; the
 * warning carries every span dropped since the previous one. On success,
 * starts the next POST at once if spans are waiting.
 */
static void zipkin_end(struct zipkin *z, const char *reason)
{
	uint32_t n = z->batch_n;
	ev_tstamp now;

	ev_io_stop(z->loop, &z->io);
	ev_timer_stop(z->loop, &z->timeout);
	if (z->io.fd >= 0)
		close(z->io.fd);
	ev_io_set(&z->io, -1, 0);
	z->state = ZK_IDLE;
	z->batch_n = 0;

	pthread_mutex_lock(&z->lock);
	if (reason) {
		z->st.posts_failed++;
		z->st.dropped_failed += n;
	} else {
		z->st.exported += n;
	}
	pthread_mutex_unlock(&z->lock);

	if (!reason) {
		zipkin_flush(z);
		return;
	}
	z->fail_unreported += n;
	log_debug("tracing: POST of %" PRIu32 " spans to %s failed: %s", n, z->collector_str, reason);
	now = ev_now(z->loop);
	if (z->fail_warned && now - z->fail_warned_at < ZIPKIN_WARN_EVERY_S)
		return;
	log_warn("tracing: cannot POST spans to %s: %s; %" PRIu64 " spans dropped "
		 "(check that a Zipkin collector serves POST %s there: tracing.collector, tracing.path)",
		 z->collector_str, reason, z->fail_unreported, z->path);
	z->fail_warned = true;
	z->fail_warned_at = now;
	z->fail_unreported = 0;
}

/*
 * Encodes z->batch as the request: head and body in two buffers (written
 * with one sendmsg), so the body is never copied to prepend the head.
 * Returns 0 or -ENOMEM.
 */
static int zipkin_encode(struct zipkin *z)
{
	uint32_t i;

	buf_reset(&z->req_body);
	buf_add(&z->req_body, "[", 1);
	for (i = 0; i < z->batch_n; i++) {
		if (i)
			buf_add(&z->req_body, ",", 1);
		trace_span_json(&z->req_body, &z->batch[i], z->service);
	}
	buf_add(&z->req_body, "]", 1);
	buf_reset(&z->req_head);
	buf_printf(&z->req_head,
		   "POST %s HTTP/1.1\r\n"
		   "Host: %s\r\n"
		   "Content-Type: application/json\r\n"
		   "Content-Length: %zu\r\n"
		   "Connection: close\r\n"
		   "\r\n",
		   z->path, z->collector_str, z->req_body.len);
	if (buf_failed(&z->req_body) || buf_failed(&z->req_head))
		return -ENOMEM;
	return 0;
}

/*
 * Opens the non-blocking socket and starts the connect. Returns 0 when the
 * POST is in flight (io watcher and timeout running), or -errno with no
 * socket left open.
 */
static int zipkin_connect(struct zipkin *z)
{
	int fd, err;

	fd = socket(z->collector.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	/*
	 * The mark keeps our own export out of the BPF redirect. Without
	 * CAP_NET_ADMIN it cannot be set; the export may still work (e.g. the
	 * collector is not a meshed service), so go on and say so in debug.
	 */
	if (z->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &z->mark, sizeof(z->mark)) < 0)
		log_debug("tracing: cannot set SO_MARK 0x%" PRIx32 " on the export socket: %s; continuing", z->mark,
			  strerror(errno));
	/* EINTR: connect(2) says the attempt then goes on asynchronously. */
	if (connect(fd, &z->collector.sa, z->collector.len) < 0) {
		if (errno != EINPROGRESS && errno != EINTR) {
			err = -errno;
			goto err;
		}
		z->state = ZK_CONNECTING;
	} else {
		z->state = ZK_SENDING;
	}
	z->sent = 0;
	z->resp_len = 0;
	ev_io_set(&z->io, fd, EV_WRITE);
	ev_io_start(z->loop, &z->io);
	ev_timer_set(&z->timeout, z->timeout_ms / 1e3, 0.);
	ev_timer_start(z->loop, &z->timeout);
	return 0;
err:
	close(fd);
	return err;
}

/*
 * Starts a POST of up to batch_size queued spans, unless one is in flight or
 * nothing waits. The spans leave the ring here: whatever happens to the POST,
 * they are either exported or counted as dropped.
 */
static void zipkin_flush(struct zipkin *z)
{
	char reason[96];
	uint32_t n, first;
	int err;

	if (z->state != ZK_IDLE)
		return;
	pthread_mutex_lock(&z->lock);
	n = z->count < z->batch_cap ? z->count : z->batch_cap;
	/* At most two runs: up to the end of the ring, then from its start. */
	first = z->queue_size - z->head;
	if (first > n)
		first = n;
	memcpy(z->batch, z->ring + z->head, first * sizeof(*z->batch));
	memcpy(z->batch + first, z->ring, (n - first) * sizeof(*z->batch));
	z->head = (z->head + n) % z->queue_size;
	z->count -= n;
	pthread_mutex_unlock(&z->lock);
	if (!n)
		return;
	z->batch_n = n;

	err = zipkin_encode(z);
	if (!err)
		err = zipkin_connect(z);
	if (!err)
		return;
	if (err == -ENOMEM)
		snprintf(reason, sizeof(reason), "out of memory encoding %" PRIu32 " spans", n);
	else
		zipkin_errstr(reason, sizeof(reason), -err);
	zipkin_end(z, reason);
}

/* Writes what is left of head + body. Returns 1 when all is sent, 0 on EAGAIN, -errno. */
static int zipkin_send(struct zipkin *z)
{
	size_t hlen = z->req_head.len, total = hlen + z->req_body.len;

	while (z->sent < total) {
		struct iovec iov[2];
		struct msghdr msg = { .msg_iov = iov };
		ssize_t w;

		if (z->sent < hlen) {
			iov[0].iov_base = z->req_head.p + z->sent;
			iov[0].iov_len = hlen - z->sent;
			iov[1].iov_base = z->req_body.p;
			iov[1].iov_len = z->req_body.len;
			msg.msg_iovlen = 2;
		} else {
			iov[0].iov_base = z->req_body.p + (z->sent - hlen);
			iov[0].iov_len = total - z->sent;
			msg.msg_iovlen = 1;
		}
		/* MSG_NOSIGNAL: a collector that hung up must not SIGPIPE weftd. */
		w = sendmsg(z->io.fd, &msg, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		z->sent += (size_t)w;
	}
	return 1;
}

/*
 * Parses the status line's start: "HTTP/1.<d> <3 digits>". Returns the
 * status (100..599) or -EPROTO. Headers and body are never read: the status
 * is all we need, and Connection: close ends the exchange.
 */
static int zipkin_status(const char *s, size_t len)
{
	int st;

	if (len < ZIPKIN_STATUS_LEN || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return -EPROTO;
	if (s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9')
		return -EPROTO;
	st = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	return st;
}

/* Reads until the status line is known. Returns 1 when the POST is over (reason set or empty: success), 0 to wait. */
static int zipkin_read(struct zipkin *z, char *reason, size_t rlen)
{
	int st;

	while (z->resp_len < sizeof(z->resp)) {
		ssize_t r = recv(z->io.fd, z->resp + z->resp_len, sizeof(z->resp) - z->resp_len, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			zipkin_errstr(reason, rlen, errno);
			return 1;
		}
		if (r == 0) {
			snprintf(reason, rlen, "the collector closed the connection without an HTTP status");
			return 1;
		}
		z->resp_len += (size_t)r;
	}
	st = zipkin_status(z->resp, z->resp_len);
	if (st < 0)
		snprintf(reason, rlen, "the collector's answer is not HTTP/1.x");
	else if (st < 200 || st > 299)
		snprintf(reason, rlen, "the collector answered HTTP %d", st);
	else
		reason[0] = '\0';
	return 1;
}

static void zipkin_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct zipkin *z = w->data;
	char reason[96];
	int err, r;

	if (z->state == ZK_CONNECTING) {
		socklen_t elen = sizeof(err);

		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err) {
			zipkin_errstr(reason, sizeof(reason), err);
			zipkin_end(z, reason);
			return;
		}
		z->state = ZK_SENDING;
	}
	if (z->state == ZK_SENDING) {
		r = zipkin_send(z);
		if (r < 0) {
			zipkin_errstr(reason, sizeof(reason), -r);
			zipkin_end(z, reason);
			return;
		}
		if (r == 0)
			return;
		z->state = ZK_READING;
		ev_io_stop(loop, w);
		ev_io_set(w, w->fd, EV_READ);
		ev_io_start(loop, w);
		return; /* the answer cannot be there yet; EV_READ will say */
	}
	if (z->state == ZK_READING && (revents & EV_READ)) {
		if (!zipkin_read(z, reason, sizeof(reason)))
			return;
		zipkin_end(z, reason[0] ? reason : NULL);
	}
}

static void zipkin_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct zipkin *z = w->data;
	char reason[96];

	(void)loop;
	(void)revents;
	snprintf(reason, sizeof(reason), "no answer within %" PRIu32 " ms", z->timeout_ms);
	zipkin_end(z, reason);
}

/* Reports ring overflow here, on the loop, so submitters never log. */
static void zipkin_report_full(struct zipkin *z)
{
	uint64_t full;
	ev_tstamp now = ev_now(z->loop);

	if (z->full_warned && now - z->full_warned_at < ZIPKIN_WARN_EVERY_S)
		return;
	pthread_mutex_lock(&z->lock);
	full = z->st.dropped_full;
	pthread_mutex_unlock(&z->lock);
	if (full == z->full_reported)
		return;
	log_warn("tracing: span queue full (tracing.queue_size %" PRIu32 "); %" PRIu64
		 " spans dropped; raise tracing.queue_size or lower tracing.sample_rate",
		 z->queue_size, full - z->full_reported);
	z->full_reported = full;
	z->full_warned = true;
	z->full_warned_at = now;
}

static void zipkin_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct zipkin *z = w->data;

	(void)loop;
	(void)revents;
	zipkin_report_full(z);
	zipkin_flush(z);
}

static void zipkin_wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	zipkin_flush(w->data);
}

/*
 * Validates o (collector IPv4/IPv6, path origin-form, sizes non-zero; NULL
 * path or service name take the config defaults), allocates the ring and
 * the batch, and starts the tick timer and wake-up watcher on loop. Returns
 * the exporter (free with zipkin_free on loop's thread) or NULL with errno
 * EINVAL or ENOMEM.
 */
struct zipkin *zipkin_new(struct ev_loop *loop, const struct zipkin_opts *o)
{
	struct zipkin *z = NULL;
	const char *path, *service;
	uint64_t tmo;
	int err;

	if (!loop || !o || !o->queue_size || !o->batch_size || !o->flush_ms ||
	    (o->collector.sa.sa_family != AF_INET && o->collector.sa.sa_family != AF_INET6)) {
		err = EINVAL;
		goto err;
	}
	path = o->path ? o->path : "/api/v2/spans";
	service = o->service_name ? o->service_name : "weft";
	if (!zipkin_path_ok(path)) {
		err = EINVAL;
		goto err;
	}
	z = calloc(1, sizeof(*z));
	if (!z) {
		err = ENOMEM;
		goto err;
	}
	/* Watchers first, so the error path can stop them whatever failed. */
	ev_io_init(&z->io, zipkin_io_cb, -1, 0);
	z->io.data = z;
	ev_timer_init(&z->timeout, zipkin_timeout_cb, 0., 0.);
	z->timeout.data = z;
	ev_timer_init(&z->tick, zipkin_tick_cb, o->flush_ms / 1e3, o->flush_ms / 1e3);
	z->tick.data = z;
	ev_async_init(&z->wake, zipkin_wake_cb);
	z->wake.data = z;
	err = pthread_mutex_init(&z->lock, NULL);
	if (err) {
		free(z);
		z = NULL;
		goto err;
	}
	z->loop = loop; /* from here on zipkin_free() also destroys the mutex */
	z->collector = o->collector;
	addr_format(&z->collector, z->collector_str, sizeof(z->collector_str));
	z->queue_size = o->queue_size;
	z->batch_cap = o->batch_size < o->queue_size ? o->batch_size : o->queue_size;
	z->flush_ms = o->flush_ms;
	tmo = (uint64_t)o->flush_ms * 5;
	z->timeout_ms = tmo < 1000 ? 1000 : tmo > UINT32_MAX ? UINT32_MAX : (uint32_t)tmo;
	z->mark = o->mark;
	z->path = strdup(path);
	z->service = strdup(service);
	/* calloc checks the multiplication: queue_size is bounded by config, but not here. */
	z->ring = calloc(z->queue_size, sizeof(*z->ring));
	z->batch = calloc(z->batch_cap, sizeof(*z->batch));
	if (!z->path || !z->service || !z->ring || !z->batch) {
		err = ENOMEM;
		goto err;
	}
	ev_timer_start(loop, &z->tick);
	ev_async_start(loop, &z->wake);
	return z;
err:
	zipkin_free(z); /* nothing started yet: only frees */
	errno = err;
	return NULL;
}

/*
 * O(1) copy under the lock; never blocks on I/O, never allocates. Wakes the
 * loop once, when the ring reaches a full batch: later submits until the
 * flush would only repeat the wake-up.
 */
void zipkin_submit(struct zipkin *z, const struct trace_span *s)
{
	bool wake = false;

	if (!z || !s)
		return;
	pthread_mutex_lock(&z->lock);
	if (z->count == z->queue_size) {
		z->st.dropped_full++;
	} else {
		z->ring[(z->head + z->count) % z->queue_size] = *s;
		z->count++;
		z->st.submitted++;
		wake = z->count == z->batch_cap;
	}
	pthread_mutex_unlock(&z->lock);
	if (wake)
		ev_async_send(z->loop, &z->wake); /* thread-safe by libev's contract */
}

/* A consistent snapshot (one lock). z NULL: all zero. */
void zipkin_get_stats(struct zipkin *z, struct zipkin_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!z)
		return;
	pthread_mutex_lock(&z->lock);
	*st = z->st;
	st->queued = z->count;
	pthread_mutex_unlock(&z->lock);
}

void zipkin_free(struct zipkin *z)
{
	if (!z)
		return;
	if (z->loop) {
		ev_timer_stop(z->loop, &z->tick);
		ev_timer_stop(z->loop, &z->timeout);
		ev_async_stop(z->loop, &z->wake);
		ev_io_stop(z->loop, &z->io);
		if (z->io.fd >= 0)
			close(z->io.fd);
		pthread_mutex_destroy(&z->lock);
	}
	buf_free(&z->req_head);
	buf_free(&z->req_body);
	free(z->batch);
	free(z->ring);
	free(z->service);
	free(z->path);
	free(z);
}
