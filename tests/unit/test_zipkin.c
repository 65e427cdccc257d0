// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * zipkin exporter against a real libev loop and a tiny collector living on
 * the same loop (127.0.0.1, ephemeral port): it reads each request by its
 * Content-Length, records it, and answers with a configurable raw reply.
 * Every wait is bounded by a deadline; a guard timer keeps EVRUN_ONCE from
 * blocking when no other watcher would fire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "codec/trace.h"
#include "http/zipkin.h"

#define MAX_REQS 64
#define MAX_CONNS 8
#define WAIT_MS 5000

struct req {
	char *head; /* NUL-terminated, through the blank line */
	char *body; /* NUL-terminated, exactly Content-Length bytes */
	size_t body_len;
	bool extra; /* bytes beyond Content-Length arrived */
};

struct collector;

struct cconn {
	struct collector *c;
	int fd; /* -1: slot free */
	ev_io w;
	struct buf in;
	bool done;  /* request recorded */
	size_t req; /* its index in reqs, once done */
};

struct collector {
	struct ev_loop *loop;
	int lfd;
	ev_io accept_w;
	uint16_t port;
	/* Raw reply after a full request; "" closes without one; NULL never answers. */
	const char *answer;
	struct cconn conns[MAX_CONNS];
	struct req reqs[MAX_REQS];
	size_t n_reqs;
	size_t accepted;
};

struct harness {
	struct ev_loop *loop;
	ev_timer guard;
	struct collector c;
	struct zipkin *z;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_close(struct cconn *cc)
{
	ev_io_stop(cc->c->loop, &cc->w);
	close(cc->fd);
	cc->fd = -1;
	buf_free(&cc->in);
}

/* Records the request once head + Content-Length bytes are in; then answers as configured. */
static void conn_try_request(struct cconn *cc)
{
	struct collector *c = cc->c;
	const char *end, *cl;
	size_t hlen, blen;
	struct req *r;

	end = memmem(cc->in.p, cc->in.len, "\r\n\r\n", 4);
	if (!end)
		return;
	hlen = (size_t)(end - cc->in.p) + 4;
	cl = strcasestr(cc->in.p, "\r\ncontent-length:");
	if (!cl || cl > end)
		return;
	blen = strtoul(cl + 17, NULL, 10);
	if (cc->in.len < hlen + blen)
		return;
	cc->done = true;
	assert_true(c->n_reqs < MAX_REQS);
	cc->req = c->n_reqs;
	r = &c->reqs[c->n_reqs++];
	r->head = strndup(cc->in.p, hlen);
	r->body = strndup(cc->in.p + hlen, blen);
	r->body_len = blen;
	r->extra = cc->in.len > hlen + blen;
	if (!c->answer)
		return; /* keep the connection: the exporter's timeout must end it */
	if (c->answer[0])
		assert_int_equal(send(cc->fd, c->answer, strlen(c->answer), MSG_NOSIGNAL), (ssize_t)strlen(c->answer));
	conn_close(cc);
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct cconn *cc = w->data;
	char chunk[4096];
	ssize_t n;

	n = recv(cc->fd, chunk, sizeof(chunk), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(cc);
		return;
	}
	buf_add(&cc->in, chunk, (size_t)n);
	assert_false(buf_failed(&cc->in));
	if (!cc->done)
		conn_try_request(cc);
	else
		cc->c->reqs[cc->req].extra = true;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct collector *c = w->data;
	size_t i;
	int fd;

	fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	c->accepted++;
	for (i = 0; i < MAX_CONNS; i++)
		if (c->conns[i].fd < 0)
			break;
	assert_true(i < MAX_CONNS);
	c->conns[i].fd = fd;
	c->conns[i].done = false;
	memset(&c->conns[i].in, 0, sizeof(c->conns[i].in));
	ev_io_init(&c->conns[i].w, conn_cb, fd, EV_READ);
	c->conns[i].w.data = &c->conns[i];
	ev_io_start(loop, &c->conns[i].w);
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
}

/* 127.0.0.1 and the port of a socket bound to port 0 and closed at once: nothing listens there. */
static uint16_t closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void h_init(struct harness *h, const char *answer)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	size_t i;

	memset(h, 0, sizeof(*h));
	h->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(h->loop);
	ev_timer_init(&h->guard, guard_cb, 0.05, 0.05);
	ev_timer_start(h->loop, &h->guard);

	h->c.loop = h->loop;
	h->c.answer = answer;
	for (i = 0; i < MAX_CONNS; i++) {
		h->c.conns[i].fd = -1;
		h->c.conns[i].c = &h->c;
	}
	h->c.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(h->c.lfd >= 0);
	assert_int_equal(bind(h->c.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(h->c.lfd, 16), 0);
	assert_int_equal(getsockname(h->c.lfd, (struct sockaddr *)&a, &len), 0);
	h->c.port = ntohs(a.sin_port);
	ev_io_init(&h->c.accept_w, accept_cb, h->c.lfd, EV_READ);
	h->c.accept_w.data = &h->c;
	ev_io_start(h->loop, &h->c.accept_w);
}

static struct zipkin_opts h_opts(uint16_t port, uint32_t queue, uint32_t batch, uint32_t flush_ms)
{
	struct zipkin_opts o = {
		.path = "/api/v2/spans",
		.service_name = "weft-test",
		.queue_size = queue,
		.batch_size = batch,
		.flush_ms = flush_ms,
	};

	o.collector.in4.sin_family = AF_INET;
	o.collector.in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	o.collector.in4.sin_port = htons(port);
	o.collector.len = sizeof(o.collector.in4);
	return o;
}

static void h_start_at(struct harness *h, uint16_t port, uint32_t queue, uint32_t batch, uint32_t flush_ms,
		       uint32_t mark)
{
	struct zipkin_opts o = h_opts(port, queue, batch, flush_ms);

	o.mark = mark;
	h->z = zipkin_new(h->loop, &o);
	assert_non_null(h->z);
}

static void h_start(struct harness *h, uint32_t queue, uint32_t batch, uint32_t flush_ms, uint32_t mark)
{
	h_start_at(h, h->c.port, queue, batch, flush_ms, mark);
}

static void h_fini(struct harness *h)
{
	size_t i;

	zipkin_free(h->z);
	h->z = NULL;
	for (i = 0; i < MAX_CONNS; i++)
		if (h->c.conns[i].fd >= 0)
			conn_close(&h->c.conns[i]);
	ev_io_stop(h->loop, &h->c.accept_w);
	close(h->c.lfd);
	for (i = 0; i < h->c.n_reqs; i++) {
		free(h->c.reqs[i].head);
		free(h->c.reqs[i].body);
	}
	ev_timer_stop(h->loop, &h->guard);
	ev_loop_destroy(h->loop);
}

typedef bool (*pred_fn)(struct harness *h, uint64_t arg);

/* Turns the loop until pred holds or timeout_ms pass; returns whether it held. */
static bool h_run_until(struct harness *h, pred_fn pred, uint64_t arg, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!pred(h, arg)) {
		if (now_ms() > deadline)
			return false;
		ev_run(h->loop, EVRUN_ONCE);
	}
	return true;
}

/* Turns the loop for ms milliseconds (to show nothing more happens). */
static void h_run_for(struct harness *h, int ms)
{
	int64_t deadline = now_ms() + ms;

	while (now_ms() < deadline)
		ev_run(h->loop, EVRUN_ONCE);
}

static bool settled(struct harness *h, uint64_t n)
{
	struct zipkin_stats st;

	zipkin_get_stats(h->z, &st);
	return st.exported + st.dropped_failed >= n;
}

static bool failed_posts(struct harness *h, uint64_t n)
{
	struct zipkin_stats st;

	zipkin_get_stats(h->z, &st);
	return st.posts_failed >= n;
}

static bool got_reqs(struct harness *h, uint64_t n)
{
	return h->c.n_reqs >= n;
}

static void make_span(struct trace_span *s, unsigned i)
{
	static const uint8_t tid[16] = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
					 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x00 };

	memset(s, 0, sizeof(*s));
	memcpy(s->trace_id, tid, sizeof(tid));
	s->trace_id[15] = (uint8_t)i;
	s->id = 0x5af7183fb1d4cf00ull + i;
	s->parent_id = i % 2 ? 0x1122334455667788ull : 0;
	s->start_us = 1700000000000000ll + i;
	s->duration_us = 1234;
	s->kind = TRACE_KIND_SERVER;
	snprintf(s->name, sizeof(s->name), "GET /x");
	snprintf(s->service, sizeof(s->service), "svc");
	snprintf(s->method, sizeof(s->method), "GET");
	snprintf(s->path, sizeof(s->path), "/x");
	s->status = 200;
}

static void submit_n(struct zipkin *z, unsigned from, unsigned n)
{
	struct trace_span s;
	unsigned i;

	for (i = from; i < from + n; i++) {
		make_span(&s, i);
		zipkin_submit(z, &s);
	}
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;
	const char *p = hay;

	while ((p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/* Span i's traceId (32 hex digits: the high half is non-zero) and id appear in body. */
static bool has_span(const char *body, unsigned i)
{
	struct trace_span s;
	char tid[40], id[24];
	size_t k;

	make_span(&s, i);
	for (k = 0; k < 16; k++)
		snprintf(tid + 2 * k, 3, "%02x", s.trace_id[k]);
	snprintf(id, sizeof(id), "\"%016" PRIx64 "\"", s.id);
	return strstr(body, tid) && strstr(body, id);
}

/* A well-formed request: the exact head, a JSON array of n spans. */
static void check_request(const struct harness *h, const struct req *r, size_t n)
{
	char host[64];

	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", h->c.port);
	assert_true(strncmp(r->head, "POST /api/v2/spans HTTP/1.1\r\n", 29) == 0);
	assert_non_null(strstr(r->head, host));
	assert_non_null(strstr(r->head, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(r->head, "\r\nConnection: close\r\n"));
	assert_false(r->extra);
	assert_true(r->body_len >= 2);
	assert_int_equal(r->body[0], '[');
	assert_int_equal(r->body[r->body_len - 1], ']');
	assert_int_equal(count_of(r->body, "\"traceId\""), n);
	assert_int_equal(count_of(r->body, "weft-test"), n); /* localEndpoint.serviceName */
}

/* Spans arrive as one JSON array, with or without a socket mark. */
static void test_export(void **state)
{
	static const uint32_t marks[] = { 0, 0x77 };
	struct zipkin_stats st;
	struct harness h;
	size_t m;
	unsigned i;

	for (m = 0; m < sizeof(marks) / sizeof(marks[0]); m++) {
		h_init(&h, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
		h_start(&h, 64, 10, 20, marks[m]);
		submit_n(h.z, 0, 3);
		assert_true(h_run_until(&h, settled, 3, WAIT_MS));
		zipkin_get_stats(h.z, &st);
		assert_int_equal(st.submitted, 3);
		assert_int_equal(st.exported, 3);
		assert_int_equal(st.dropped_full, 0);
		assert_int_equal(st.dropped_failed, 0);
		assert_int_equal(st.posts_failed, 0);
		assert_int_equal(st.queued, 0);
		assert_int_equal(h.c.n_reqs, 1);
		check_request(&h, &h.c.reqs[0], 3);
		for (i = 0; i < 3; i++)
			assert_true(has_span(h.c.reqs[0].body, i));
		h_fini(&h);
	}
}

/* batch_size 2, 5 spans: 2 + 2 + 1, in submission order; a full batch does not wait for the tick. */
static void test_batching(void **state)
{
	struct zipkin_stats st;
	struct harness h;
	int64_t t0;

	h_init(&h, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
	h_start(&h, 16, 2, 60000, 0); /* no tick within the test: the wake-up must flush */
	submit_n(h.z, 0, 4);
	t0 = now_ms();
	assert_true(h_run_until(&h, settled, 4, WAIT_MS));
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(h.c.n_reqs, 2);
	h_fini(&h);

	/* Now with a tick to send the last, partial batch. */
	h_init(&h, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
	h_start(&h, 16, 2, 20, 0);
	submit_n(h.z, 0, 5);
	assert_true(h_run_until(&h, settled, 5, WAIT_MS));
	h_run_for(&h, 60);
	zipkin_get_stats(h.z, &st);
	assert_int_equal(st.exported, 5);
	assert_int_equal(h.c.n_reqs, 3);
	check_request(&h, &h.c.reqs[0], 2);
	check_request(&h, &h.c.reqs[1], 2);
	check_request(&h, &h.c.reqs[2], 1);
	assert_true(has_span(h.c.reqs[0].body, 0) && has_span(h.c.reqs[0].body, 1));
	assert_true(has_span(h.c.reqs[1].body, 2) && has_span(h.c.reqs[1].body, 3));
	assert_true(has_span(h.c.reqs[2].body, 4));
	h_fini(&h);
}

/* The ring wraps: queue 4, batch 3; the second batch sits at slots 3, 0, 1. */
static void test_ring_wraps(void **state)
{
	struct harness h;

	h_init(&h, "HTTP/1.1 200 OK\r\n\r\n");
	h_start(&h, 4, 3, 20, 0);
	submit_n(h.z, 0, 3);
	assert_true(h_run_until(&h, settled, 3, WAIT_MS));
	submit_n(h.z, 3, 3);
	assert_true(h_run_until(&h, settled, 6, WAIT_MS));
	assert_int_equal(h.c.n_reqs, 2);
	check_request(&h, &h.c.reqs[1], 3);
	assert_true(has_span(h.c.reqs[1].body, 3) && has_span(h.c.reqs[1].body, 4) && has_span(h.c.reqs[1].body, 5));
	h_fini(&h);
}

/* A full ring drops the newest spans and counts them; the queued ones still go out. */
static void test_ring_full(void **state)
{
	struct zipkin_stats st;
	struct harness h;

	h_init(&h, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
	h_start(&h, 2, 10, 20, 0);
	submit_n(h.z, 0, 5);
	zipkin_get_stats(h.z, &st);
	assert_int_equal(st.submitted, 2);
	assert_int_equal(st.dropped_full, 3);
	assert_int_equal(st.queued, 2);
	assert_true(h_run_until(&h, settled, 2, WAIT_MS));
	zipkin_get_stats(h.z, &st);
	assert_int_equal(st.exported, 2);
	assert_int_equal(st.queued, 0);
	assert_int_equal(h.c.n_reqs, 1);
	check_request(&h, &h.c.reqs[0], 2);
	assert_true(has_span(h.c.reqs[0].body, 0) && has_span(h.c.reqs[0].body, 1));
	h_fini(&h);
}

/* Answers: only a 2xx status line counts as exported. */
static const struct {
	const char *answer;
	bool ok;
} answers[] = {
	{ "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", true },
	{ "HTTP/1.0 200 OK\r\n\r\n", true },
	{ "HTTP/1.1 204 No Content\r\n\r\n", true },
	/* failures */
	{ "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false },
	{ "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false },
	{ "HTTP/1.1 301 Moved\r\nLocation: /\r\n\r\n", false },
	{ "HTTP/2.0 200 OK\r\n\r\n", false },
	{ "HTTP/1.1 2x0 OK\r\n\r\n", false },
	{ "garbage that is long enough\r\n\r\n", false },
	{ "HTTP/1.1 20", false }, /* cut short */
	{ "", false },            /* closed without a word */
};

static void test_answers(void **state)
{
	struct zipkin_stats st;
	struct harness h;
	size_t i;

	for (i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		h_init(&h, answers[i].answer);
		h_start(&h, 64, 10, 20, 0);
		submit_n(h.z, 0, 3);
		if (!h_run_until(&h, settled, 3, WAIT_MS))
			fail_msg("case %zu: not settled", i);
		zipkin_get_stats(h.z, &st);
		if (st.exported != (answers[i].ok ? 3u : 0u) || st.dropped_failed != (answers[i].ok ? 0u : 3u) ||
		    st.posts_failed != (answers[i].ok ? 0u : 1u))
			fail_msg("case %zu: exported %" PRIu64 " dropped_failed %" PRIu64 " posts_failed %" PRIu64, i,
				 st.exported, st.dropped_failed, st.posts_failed);
		assert_int_equal(h.c.n_reqs, 1);
		h_fini(&h);
	}
}

/* Reads everything written to fd from the start (the captured stderr). */
static char *slurp(int fd)
{
	struct buf b = { 0 };
	char chunk[1024];
	ssize_t n;

	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_add(&b, chunk, (size_t)n);
	buf_add(&b, "", 0);
	assert_false(buf_failed(&b));
	return b.p;
}

/*
 * Nothing listens: each POST fails (counted, no hang), and the two failures
 * within a minute give one warning, which names the collector and the reason.
 */
static void test_refused(void **state)
{
	struct zipkin_stats st;
	struct harness h;
	char want[160], *log;
	uint16_t port = closed_port();
	FILE *cap;
	int saved;
	bool ok1, ok2;

	h_init(&h, "HTTP/1.1 202 Accepted\r\n\r\n");
	h_start_at(&h, port, 64, 10, 20, 0);

	cap = tmpfile();
	assert_non_null(cap);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	log_set_level(LOG_LVL_WARN);
	assert_true(dup2(fileno(cap), STDERR_FILENO) >= 0);
	submit_n(h.z, 0, 3);
	ok1 = h_run_until(&h, failed_posts, 1, WAIT_MS);
	submit_n(h.z, 3, 2);
	ok2 = h_run_until(&h, failed_posts, 2, WAIT_MS);
	dup2(saved, STDERR_FILENO);
	close(saved);
	log_set_level(LOG_LVL_ERROR);
	assert_true(ok1);
	assert_true(ok2);

	zipkin_get_stats(h.z, &st);
	assert_int_equal(st.posts_failed, 2);
	assert_int_equal(st.dropped_failed, 5);
	assert_int_equal(st.exported, 0);
	assert_int_equal(st.queued, 0);

	assert_int_equal(h.c.accepted, 0);
	log = slurp(fileno(cap));
	fclose(cap);
	snprintf(want, sizeof(want), "tracing: cannot POST spans to 127.0.0.1:%u: connection refused; 3 spans dropped",
		 port);
	if (count_of(log, "cannot POST") != 1 || !strstr(log, want))
		fail_msg("want one warning \"%s\", log:\n%s", want, log);
	free(log);
	h_fini(&h);
}

/* A collector that reads and never answers: the POST times out (1 s floor), and the next one works. */
static void test_timeout(void **state)
{
	struct zipkin_stats st;
	struct harness h;
	int64_t t0;

	h_init(&h, NULL);
	h_start(&h, 64, 10, 20, 0);
	submit_n(h.z, 0, 2);
	t0 = now_ms();
	assert_true(h_run_until(&h, failed_posts, 1, WAIT_MS));
	assert_true(now_ms() - t0 >= 900);
	zipkin_get_stats(h.z, &st);
	assert_int_equal(st.dropped_failed, 2);
	assert_int_equal(st.exported, 0);
	assert_int_equal(h.c.n_reqs, 1);
	check_request(&h, &h.c.reqs[0], 2);

	h.c.answer = "HTTP/1.1 202 Accepted\r\n\r\n";
	submit_n(h.z, 2, 1);
	assert_true(h_run_until(&h, settled, 3, WAIT_MS));
	zipkin_get_stats(h.z, &st);
	assert_int_equal(st.exported, 1);
	h_fini(&h);
}

/* zipkin_free with a POST in flight closes its socket and frees all (valgrind/ASan check the rest). */
static void test_free_in_flight(void **state)
{
	struct harness h;
	size_t i, open_conns = 0;

	h_init(&h, NULL);
	h_start(&h, 64, 10, 20, 0);
	submit_n(h.z, 0, 2);
	assert_true(h_run_until(&h, got_reqs, 1, WAIT_MS));
	zipkin_free(h.z);
	h.z = NULL;
	h_run_for(&h, 60); /* the collector sees the close */
	for (i = 0; i < MAX_CONNS; i++)
		open_conns += h.c.conns[i].fd >= 0;
	assert_int_equal(open_conns, 0);
	h_fini(&h);
}

struct producer {
	struct zipkin *z;
	unsigned n;
	atomic_bool done;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;

	submit_n(p->z, 0, p->n);
	atomic_store(&p->done, true);
	return NULL;
}

/* Submits from another thread while the loop exports. */
static void test_other_thread(void **state)
{
	struct producer p = { .n = 200 };
	struct zipkin_stats st;
	struct harness h;
	pthread_t th;
	size_t i, spans = 0;

	h_init(&h, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
	h_start(&h, 256, 16, 20, 0);
	p.z = h.z;
	assert_int_equal(pthread_create(&th, NULL, producer_main, &p), 0);
	assert_true(h_run_until(&h, settled, p.n, WAIT_MS));
	pthread_join(th, NULL);
	assert_true(atomic_load(&p.done));
	zipkin_get_stats(h.z, &st);
	assert_int_equal(st.submitted, p.n);
	assert_int_equal(st.exported, p.n);
	assert_int_equal(st.dropped_full, 0);
	for (i = 0; i < h.c.n_reqs; i++) {
		size_t n = count_of(h.c.reqs[i].body, "\"traceId\"");

		assert_true(n >= 1 && n <= 16);
		spans += n;
	}
	assert_int_equal(spans, p.n);
	h_fini(&h);
}

/* No exporter: submitting, reading stats and freeing are no-ops. */
static void test_null(void **state)
{
	struct zipkin_stats st;
	struct trace_span s;

	make_span(&s, 0);
	zipkin_submit(NULL, &s);
	memset(&st, 0xff, sizeof(st));
	zipkin_get_stats(NULL, &st);
	assert_int_equal(st.submitted, 0);
	assert_int_equal(st.queued, 0);
	zipkin_free(NULL);
}

/* Failure cases: zipkin_new rejects each bad option with EINVAL. */
static void test_new_bad(void **state)
{
	static const struct {
		const char *what;
		uint32_t queue, batch, flush;
		const char *path;
		int family;
	} bad[] = {
		{ "queue_size 0", 0, 10, 100, "/api/v2/spans", AF_INET },
		{ "batch_size 0", 64, 0, 100, "/api/v2/spans", AF_INET },
		{ "flush_ms 0", 64, 10, 0, "/api/v2/spans", AF_INET },
		{ "path without /", 64, 10, 100, "api/v2/spans", AF_INET },
		{ "empty path", 64, 10, 100, "", AF_INET },
		{ "path with space", 64, 10, 100, "/a b", AF_INET },
		{ "path with CRLF", 64, 10, 100, "/a\r\nX-Evil: 1", AF_INET },
		{ "no address family", 64, 10, 100, "/api/v2/spans", AF_UNSPEC },
		{ "unix family", 64, 10, 100, "/api/v2/spans", AF_UNIX },
	};
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct zipkin_opts o;
	size_t i;

	assert_non_null(loop);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct zipkin *z;

		o = h_opts(9411, bad[i].queue, bad[i].batch, bad[i].flush);
		o.path = bad[i].path;
		o.collector.sa.sa_family = (sa_family_t)bad[i].family;
		errno = 0;
		z = zipkin_new(loop, &o);
		if (z || errno != EINVAL)
			fail_msg("case %zu (%s): got %p errno %d, want NULL EINVAL", i, bad[i].what, (void *)z, errno);
	}
	o = h_opts(9411, 64, 10, 100);
	errno = 0;
	assert_null(zipkin_new(NULL, &o));
	assert_int_equal(errno, EINVAL);
	assert_null(zipkin_new(loop, NULL));
	assert_int_equal(errno, EINVAL);

	/* NULL path and service name take the defaults; batch above queue is clamped. */
	o.path = NULL;
	o.service_name = NULL;
	o.batch_size = 1000;
	{
		struct zipkin *z = zipkin_new(loop, &o);

		assert_non_null(z);
		zipkin_free(z);
	}
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_export),       cmocka_unit_test(test_batching),
		cmocka_unit_test(test_ring_wraps),   cmocka_unit_test(test_ring_full),
		cmocka_unit_test(test_answers),      cmocka_unit_test(test_refused),
		cmocka_unit_test(test_timeout),      cmocka_unit_test(test_free_in_flight),
		cmocka_unit_test(test_other_thread), cmocka_unit_test(test_null),
		cmocka_unit_test(test_new_bad),
	};

	/* The failure cases warn by design; test_refused captures and checks its own. */
	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
