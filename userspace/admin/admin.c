// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "admin/admin.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "codec/http1.h"
#include "lib/log.h"
#include "lib/lpause.h"

struct admin_conn {
	struct admin *adm;
	struct admin_conn *prev, *next;
	ev_io io;
	ev_timer timer;
	size_t len;     /* bytes of request read */
	struct buf out; /* response */
	size_t sent;
	bool writing;
	/* a stream (admin_resp_stream): the connection is the stream */
	bool streaming, ending;
	void (*on_close)(void *arg);
	void *close_arg;
	char req[ADMIN_MAX_REQUEST + 1];
};

/* struct admin_stream is never defined: a stream is its connection (the cast is the whole of it). */

struct admin {
	struct ev_loop *loop;
	ev_io lis;
	struct lpause pause; /* lis, paused while accept lacks descriptors or memory */
	admin_handler_fn fn;
	void *arg;
	unsigned nconns;
	struct admin_conn conns; /* list head */
};

static void conn_free(struct admin_conn *c)
{
	struct admin *a = c->adm;

	if (c->streaming && !c->ending && c->on_close)
		c->on_close(c->close_arg); /* the owner forgets the stream */
	ev_io_stop(a->loop, &c->io);
	ev_timer_stop(a->loop, &c->timer);
	close(c->io.fd);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	a->nconns--;
	buf_free(&c->out);
	free(c);
}

int admin_parse_request(char *buf, size_t len, char **method, char **path, char **query)
{
	char *eol, *sp1, *sp2, *end, *q;

	end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end) {
		/* the request line alone may already be too long */
		eol = memchr(buf, '\n', len);
		if (!eol && len >= ADMIN_MAX_REQUEST)
			return 414;
		return len >= ADMIN_MAX_REQUEST ? 431 : -EAGAIN;
	}
	eol = memmem(buf, (size_t)(end - buf) + 2, "\r\n", 2);
	*eol = '\0';
	sp1 = strchr(buf, ' ');
	if (!sp1 || sp1 == buf)
		return 400;
	*sp1 = '\0';
	for (q = buf; *q; q++)
		if (!h1_is_tchar((unsigned char)*q))
			return 400;
	sp2 = strchr(sp1 + 1, ' ');
	if (!sp2 || sp2 == sp1 + 1 || sp1[1] != '/')
		return 400;
	*sp2 = '\0';
	if (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0)
		return strncmp(sp2 + 1, "HTTP/", 5) == 0 ? 505 : 400;
	for (q = sp1 + 1; *q; q++)
		if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return 400;
	*method = buf;
	*path = sp1 + 1;
	q = strchr(*path, '?');
	if (q) {
		*q = '\0';
		*query = q + 1;
	} else {
		*query = sp2; /* points at the NUL we wrote: "" */
	}
	return 0;
}

static void conn_respond(struct admin_conn *c, int status, const char *ctype, struct buf *body)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
		     status, h1_status_text(status), ctype, body ? body->len : 0);
	buf_add(&c->out, head, (size_t)n);
	if (body && body->len)
		buf_add(&c->out, body->p, body->len);
	c->writing = true;
	ev_io_stop(c->adm->loop, &c->io);
	ev_io_set(&c->io, c->io.fd, EV_WRITE);
	ev_io_start(c->adm->loop, &c->io);
}

static void conn_error(struct admin_conn *c, int status)
{
	struct buf b = { 0 };

	buf_printf(&b, "%d %s\n", status, h1_status_text(status));
	conn_respond(c, status, "text/plain; charset=utf-8", &b);
	buf_free(&b);
}

/* ---- streams ------------------------------------------------------------------ */

/* Watch for the client going away, and for room to write when something is pending. */
static void conn_stream_arm(struct admin_conn *c)
{
	int ev = (c->ending ? 0 : EV_READ) | (c->sent < c->out.len ? EV_WRITE : 0);

	if ((c->io.events & (EV_READ | EV_WRITE)) == ev && ev_is_active(&c->io))
		return;
	ev_io_stop(c->adm->loop, &c->io);
	ev_io_set(&c->io, c->io.fd, ev);
	ev_io_start(c->adm->loop, &c->io);
}

static void conn_stream_flush(struct admin_conn *c)
{
	ssize_t n;

	while (c->sent < c->out.len) {
		n = send(c->io.fd, c->out.p + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			conn_free(c);
			return;
		}
		c->sent += (size_t)n;
	}
	if (c->sent == c->out.len) {
		c->out.len = c->sent = 0;
		if (c->ending) {
			conn_free(c);
			return;
		}
	} else if (c->sent > (64u << 10)) {
		memmove(c->out.p, c->out.p + c->sent, c->out.len - c->sent);
		c->out.len -= c->sent;
		c->sent = 0;
	}
	conn_stream_arm(c);
}

static void conn_stream_io(struct admin_conn *c, int revents)
{
	char sink[512];
	ssize_t n;

	if ((revents & EV_READ) && !c->ending) {
		/* a stream takes no more input: anything read is discarded; EOF or an error ends it */
		n = recv(c->io.fd, sink, sizeof(sink), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			conn_free(c);
			return;
		}
	}
	if (revents & EV_WRITE)
		conn_stream_flush(c);
}

static void conn_stream_start(struct admin_conn *c, const char *ctype, struct buf *body)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
		     "Connection: close\r\n\r\n",
		     ctype);
	buf_add(&c->out, head, (size_t)n);
	if (body->len)
		buf_add(&c->out, body->p, body->len);
	ev_timer_stop(c->adm->loop, &c->timer); /* a stream lasts as long as its reader */
	conn_stream_flush(c);
}

struct admin_stream *admin_resp_stream(struct admin_response *r, void (*on_close)(void *arg), void *arg)
{
	struct admin_conn *c = r->conn;

	c->streaming = true;
	c->on_close = on_close;
	c->close_arg = arg;
	r->stream = (struct admin_stream *)(void *)c;
	return r->stream;
}

/* Buffered; the loop sends it (never from here: the owner may be walking its streams). */
int admin_stream_write(struct admin_stream *s, const void *p, size_t n)
{
	struct admin_conn *c = (struct admin_conn *)(void *)s;

	if (c->ending)
		return -EPIPE;
	if (c->out.len - c->sent + n > ADMIN_STREAM_MAX_PENDING)
		return -ENOBUFS;
	buf_add(&c->out, p, n);
	if (buf_failed(&c->out))
		return -ENOMEM;
	conn_stream_arm(c);
	return 0;
}

void admin_stream_end(struct admin_stream *s)
{
	struct admin_conn *c = (struct admin_conn *)(void *)s;

	c->ending = true;
	/* the next write event sends what is pending, then closes */
	ev_io_stop(c->adm->loop, &c->io);
	ev_io_set(&c->io, c->io.fd, EV_WRITE);
	ev_io_start(c->adm->loop, &c->io);
}

static void conn_on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct admin_conn *c = w->data;
	struct admin *a = c->adm;
	char *method, *path, *query;
	ssize_t n;
	int r;

	(void)loop;
	if (c->streaming) {
		conn_stream_io(c, revents);
		return;
	}
	if (c->writing) {
		if (buf_failed(&c->out)) {
			conn_free(c);
			return;
		}
		n = send(w->fd, c->out.p + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_free(c);
			return;
		}
		c->sent += (size_t)n;
		if (c->sent == c->out.len)
			conn_free(c);
		return;
	}
	n = recv(w->fd, c->req + c->len, ADMIN_MAX_REQUEST - c->len, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_free(c);
		return;
	}
	if (n == 0) {
		conn_free(c);
		return;
	}
	c->len += (size_t)n;
	c->req[c->len] = '\0';
	r = admin_parse_request(c->req, c->len, &method, &path, &query);
	if (r == -EAGAIN)
		return;
	if (r > 0) {
		conn_error(c, r);
		return;
	}
	{
		struct buf body = { 0 };
		struct admin_response resp = { .status = 200, .ctype = "application/json", .body = &body };

		resp.conn = c;
		a->fn(a->arg, method, path, query, &resp);
		if (resp.stream && resp.status == 200 && !buf_failed(&body))
			conn_stream_start(c, resp.ctype, &body);
		else if (buf_failed(&body))
			conn_error(c, 500);
		else
			conn_respond(c, resp.status, resp.ctype, &body);
		buf_free(&body);
	}
}

static void conn_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct admin_conn *c = w->data;

	(void)loop;
	(void)revents;
	if (c->writing)
		conn_free(c);
	else
		conn_error(c, 408);
}

static void admin_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct admin *a = w->data;
	struct admin_conn *c;
	int fd, i;

	(void)revents;
	for (i = 0; i < 16; i++) {
		fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* EMFILE and the like pause the listener (lib/lpause.h) */
			if (lpause_accept_error(&a->pause, errno) == LPAUSE_NEXT)
				continue;
			return;
		}
		lpause_accepted(&a->pause);
		if (a->nconns >= ADMIN_MAX_CONNS) {
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
						   "Connection: close\r\n\r\n";
			(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->adm = a;
		ev_io_init(&c->io, conn_on_io, fd, EV_READ);
		c->io.data = c;
		ev_timer_init(&c->timer, conn_on_timeout, ADMIN_TIMEOUT_S, 0.);
		c->timer.data = c;
		c->next = a->conns.next;
		c->prev = &a->conns;
		a->conns.next->prev = c;
		a->conns.next = c;
		a->nconns++;
		ev_io_start(loop, &c->io);
		ev_timer_start(loop, &c->timer);
	}
}

int admin_start(struct ev_loop *loop, const struct weft_sockaddr *addr, admin_handler_fn fn, void *arg,
		struct admin **out, char *err, size_t errlen)
{
	char as[ADDR_STRLEN];
	struct admin *a;
	int fd, r;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->fn = fn;
	a->arg = arg;
	a->conns.next = a->conns.prev = &a->conns;
	fd = addr_listen(addr, 64);
	if (fd < 0) {
		errno = -fd;
		goto err;
	}
	ev_io_init(&a->lis, admin_on_accept, fd, EV_READ);
	a->lis.data = a;
	lpause_init(&a->pause, loop, &a->lis, 1, "the admin listener (agent.admin)");
	ev_io_start(loop, &a->lis);
	*out = a;
	log_info("admin API on http://%s", addr_format(addr, as, sizeof(as)));
	return 0;
err:
	r = -errno;
	snprintf(err, errlen, "cannot listen on %s (agent.admin): %s%s", addr_format(addr, as, sizeof(as)),
		 strerror(errno), errno == EADDRINUSE ? "; choose another agent.admin address" : "");
	free(a);
	return r;
}

void admin_free(struct admin *a)
{
	if (!a)
		return;
	while (a->conns.next != &a->conns)
		conn_free(a->conns.next);
	lpause_stop(&a->pause);
	ev_io_stop(a->loop, &a->lis);
	close(a->lis.fd);
	free(a);
}

bool admin_url_decode(char *s)
{
	char *o = s;
	unsigned v;

	for (; *s; s++, o++) {
		if (*s == '%') {
			if (!s[1] || !s[2] || sscanf(s + 1, "%2x", &v) != 1 || v == 0)
				return false;
			*o = (char)v;
			s += 2;
		} else {
			*o = *s == '+' ? ' ' : *s;
		}
	}
	*o = '\0';
	return true;
}

bool admin_query_get(const char *query, const char *key, char *val, size_t len)
{
	size_t kl = strlen(key);
	const char *p = query, *e;

	while (*p) {
		e = strchr(p, '&');
		if (!e)
			e = p + strlen(p);
		if ((size_t)(e - p) > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			if ((size_t)(e - p - (ptrdiff_t)kl - 1) >= len)
				return false;
			memcpy(val, p + kl + 1, (size_t)(e - p) - kl - 1);
			val[e - p - (ptrdiff_t)kl - 1] = '\0';
			return admin_url_decode(val);
		}
		p = *e ? e + 1 : e;
	}
	return false;
}

void admin_resp_text(struct admin_response *r, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->status = status;
	r->ctype = "text/plain; charset=utf-8";
	buf_printf(r->body, "%s\n", msg);
}

void admin_route(const struct admin_route *routes, size_t n, void *arg, const char *method, const char *path,
		 const char *query, struct admin_response *r)
{
	size_t i;
	int pass;

	for (i = 0; i < n; i++) {
		if (strcmp(routes[i].path, path) != 0)
			continue;
		if (strcmp(routes[i].method, method) != 0) {
			admin_resp_text(r, 405, "%s %s: use %s", method, path, routes[i].method);
			return;
		}
		routes[i].fn(arg, query, r);
		return;
	}
	r->status = 404;
	r->ctype = "text/plain; charset=utf-8";
	buf_printf(r->body, "no such endpoint %s; try", path);
	/* GET routes, then the others: "try /a /b, POST /c /d" */
	for (pass = 0; pass < 2; pass++) {
		bool first = true;

		for (i = 0; i < n; i++) {
			if ((strcmp(routes[i].method, "GET") == 0) != (pass == 0))
				continue;
			if (pass && first)
				buf_printf(r->body, ", %s", routes[i].method);
			buf_printf(r->body, " %s", routes[i].path);
			first = false;
		}
	}
	buf_puts(r->body, "\n");
}
