// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * kapi: the Kubernetes API client (see kapi.h for the contract).
 *
 * One request, one connection, one state machine on the loop:
 *   CONNECTING (EV_WRITE, SO_ERROR) -> HANDSHAKE (tls_want) -> SENDING
 *   (tls_want) -> READING (EV_READ; tls_read until -EAGAIN) -> on_done
 * and FAILING: a failure found inside kapi_get (no token, no socket), held
 * for one loop turn so that on_done never runs inside kapi_get.
 *
 * One timer per request: the connect timeout until the handshake is done,
 * then the idle timeout, checked against the time of the last byte read
 * (libev's "last activity" pattern: no timer update per read).
 *
 * Callbacks run with r->in_cb raised. kapi_cancel and kapi_free inside one
 * close the connection at once but leave the struct to whoever raised
 * in_cb, who sees r->cancelled when the callback returns and frees it;
 * nothing touches r (or its kapi, possibly freed too) after that.
 */
#include "kube/kapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec/httpresp.h"
#include "lib/addr.h"
#include "lib/file.h"
#include "lib/list.h"
#include "lib/log.h"
#include "lib/sock.h"
#include "tls/tls.h"

#ifndef WEFT_VERSION
#define WEFT_VERSION "0.1.0"
#endif

#define KAPI_PATH_MAX 8192
/* A service account token is a JWT of 1-2 KB; a file much larger is not one. */
#define KAPI_TOKEN_MAX 16384
/* One TLS record of plaintext per read. */
#define KAPI_RBUF 16384
#define KAPI_DETAIL_MAX 512
/* TCP keepalive: probes after 60 s of silence, every 15 s, 4 lost: about 2 minutes. */
#define KAPI_KEEPIDLE_S 60
#define KAPI_KEEPINTVL_S 15
#define KAPI_KEEPCNT 4

struct kapi {
	struct ev_loop *loop;
	struct tls_ctx *tls; /* swapped when the CA file changes; requests hold their own reference */
	char *ca_file, *token_file;
	struct weft_sockaddr addr;
	char ip[INET6_ADDRSTRLEN];   /* what the server's certificate must name */
	char authority[ADDR_STRLEN]; /* "10.96.0.1:443", "[fd00::1]:443": Host and messages */
	uint32_t mark;
	size_t max_body, max_line;
	uint32_t connect_timeout_ms, idle_timeout_ms;
	struct list_head reqs;
};

enum req_state { RQ_CONNECTING = 0, RQ_HANDSHAKE, RQ_SENDING, RQ_READING, RQ_FAILING };

struct kapi_req {
	struct kapi *k; /* NULL once kapi_free let go of it (then r is cancelled or ending) */
	struct ev_loop *loop;
	struct list_head link; /* k->reqs */
	struct kapi_ops ops;
	void *arg;
	enum req_state state;
	int fd;
	struct tls_conn *tls;
	ev_io io;
	ev_timer timer;
	ev_tstamp last_rx;
	char *out; /* the request; it holds the token: wiped once sent or dropped */
	size_t out_len, out_sent;
	unsigned in_cb; /* a callback of this request is running */
	bool cancelled; /* no callback any more; freed by whoever lowers in_cb to 0 */
	bool ended;     /* on_done is running or ran */
	int err;        /* FAILING: what on_done says */
	char detail[KAPI_DETAIL_MAX];
	struct hresp resp;
	char rbuf[KAPI_RBUF];
};

/* --- setup ---------------------------------------------------------------------- */

/*
 * "https://" IP-literal [":" port] ["/"]: fills k->addr, k->ip, k->authority.
 * Everything else is refused with a message saying what to write instead.
 */
static int parse_url(struct kapi *k, const char *url, char *err, size_t errlen)
{
	char auth[ADDR_STRLEN + 8], host[INET6_ADDRSTRLEN + 2], why[160];
	const char *p, *hs, *he;
	size_t n, hl;
	bool v6;

	if (!url || !*url) {
		err_set(err, errlen,
			"no Kubernetes API URL; in a pod it is https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT");
		return -EINVAL;
	}
	if (strncmp(url, "https://", 8) != 0) {
		err_set(err, errlen,
			"Kubernetes API URL '%.200s': write it as https://IP:PORT (the API is spoken to over TLS only)",
			url);
		return -EINVAL;
	}
	p = url + 8;
	n = strlen(p);
	if (n && p[n - 1] == '/')
		n--;
	if (n == 0) {
		err_set(err, errlen, "Kubernetes API URL '%.200s': no host; write it as https://IP:PORT", url);
		return -EINVAL;
	}
	if (memchr(p, '/', n) || memchr(p, '?', n) || memchr(p, '#', n) || memchr(p, '@', n)) {
		err_set(err, errlen,
			"Kubernetes API URL '%.200s': only https://IP[:PORT] is accepted (no path, query or user: "
			"request paths start at /api and /apis)",
			url);
		return -EINVAL;
	}
	if (n >= sizeof(auth) - 4) {
		err_set(err, errlen,
			"Kubernetes API URL '%.200s': the host is not an IP address (too long); write it as "
			"https://IP:PORT",
			url);
		return -EINVAL;
	}
	memcpy(auth, p, n);
	auth[n] = '\0';
	v6 = auth[0] == '[';
	hs = auth + v6;
	he = v6 ? strchr(hs, ']') : strchr(hs, ':');
	if (v6 && !he) {
		err_set(err, errlen, "Kubernetes API URL '%.200s': missing ']' after the IPv6 address", url);
		return -EINVAL;
	}
	if (!he)
		he = auth + n;
	hl = (size_t)(he - hs);
	if (hl >= sizeof(host))
		hl = sizeof(host) - 1;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (!v6 && strchr(he + (*he == ':'), ':')) {
		err_set(err, errlen,
			"Kubernetes API URL '%.200s': write an IPv6 address in brackets, e.g. https://[fd00::1]:443",
			url);
		return -EINVAL;
	}
	{
		unsigned char tmp[16];

		if (inet_pton(v6 ? AF_INET6 : AF_INET, host, tmp) != 1) {
			err_set(err, errlen,
				"Kubernetes API URL '%.200s': the host '%.100s' must be an IP address: weft resolves no "
				"names (a lookup would block its event loop); in a pod, use $KUBERNETES_SERVICE_HOST",
				url, host);
			return -EINVAL;
		}
	}
	if (*(he + v6) == '\0') /* no port: https's */
		strcat(auth, ":443");
	if (addr_parse(auth, false, &k->addr, why, sizeof(why))) {
		err_set(err, errlen, "Kubernetes API URL '%.200s': %s", url, why);
		return -EINVAL;
	}
	addr_format(&k->addr, k->authority, sizeof(k->authority));
	if (k->addr.sa.sa_family == AF_INET)
		inet_ntop(AF_INET, &k->addr.in4.sin_addr, k->ip, sizeof(k->ip));
	else
		inet_ntop(AF_INET6, &k->addr.in6.sin6_addr, k->ip, sizeof(k->ip));
	return 0;
}

int kapi_new(struct ev_loop *loop, const struct kapi_opts *o, struct kapi **out, char *err, size_t errlen)
{
	struct kapi *k;
	char why[384];
	int ret;

	*out = NULL;
	if (!loop || !o) {
		err_set(err, errlen, "kapi_new: no loop or no options");
		return -EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		err_set(err, errlen, "Kubernetes API client: out of memory");
		return -ENOMEM;
	}
	k->loop = loop;
	list_init(&k->reqs);
	ret = parse_url(k, o->url, err, errlen);
	if (ret)
		goto fail;
	ret = -EINVAL;
	if (!o->ca_file || !*o->ca_file) {
		err_set(err, errlen,
			"Kubernetes API: no CA file; in a pod it is "
			"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
		goto fail;
	}
	if (!o->token_file || !*o->token_file) {
		err_set(err, errlen,
			"Kubernetes API: no token file; in a pod it is "
			"/var/run/secrets/kubernetes.io/serviceaccount/token");
		goto fail;
	}
	k->tls = tls_https_ctx_load(o->ca_file, why, sizeof(why));
	if (!k->tls) {
		err_set(err, errlen, "Kubernetes API: %s", why);
		goto fail;
	}
	ret = -ENOMEM;
	k->ca_file = strdup(o->ca_file);
	k->token_file = strdup(o->token_file);
	if (!k->ca_file || !k->token_file) {
		err_set(err, errlen, "Kubernetes API client: out of memory");
		goto fail;
	}
	k->mark = o->mark;
	k->max_body = o->max_body ? o->max_body : KAPI_DEFAULT_MAX_BODY;
	k->max_line = o->max_line ? o->max_line : KAPI_DEFAULT_MAX_LINE;
	k->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : KAPI_DEFAULT_CONNECT_TIMEOUT_MS;
	k->idle_timeout_ms = o->idle_timeout_ms ? o->idle_timeout_ms : KAPI_DEFAULT_IDLE_TIMEOUT_MS;
	*out = k;
	return 0;
fail:
	kapi_free(k);
	return ret;
}

/*
 * The CA file changed on disk (one stat per file): load it again. A file
 * that does not load keeps the CA in use; requests go on with it.
 */
static void kapi_check_ca(struct kapi *k)
{
	struct tls_ctx *t;
	char why[384];

	if (!tls_ctx_files_changed(k->tls))
		return;
	t = tls_https_ctx_load(k->ca_file, why, sizeof(why));
	if (!t) {
		log_warn("Kubernetes API: the CA file changed and cannot be loaded: %s; still using the previous CA",
			 why);
		return;
	}
	tls_ctx_unref(k->tls);
	k->tls = t;
	log_info("Kubernetes API: CA file '%s' loaded again", k->ca_file);
}

/* --- requests: lifetime ------------------------------------------------------- */

/* Closes the connection and stops the watchers; keeps the struct. */
static void req_release(struct kapi_req *r)
{
	ev_io_stop(r->loop, &r->io);
	ev_timer_stop(r->loop, &r->timer);
	if (r->tls) {
		(void)tls_shutdown(r->tls); /* best effort close_notify; no-op before the handshake */
		tls_conn_free(r->tls);
		r->tls = NULL;
	}
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	if (r->out) {
		explicit_bzero(r->out, r->out_len);
		free(r->out);
		r->out = NULL;
	}
}

static void req_free(struct kapi_req *r)
{
	list_del(&r->link);
	req_release(r);
	hresp_free(&r->resp);
	free(r);
}

/* Ends r with on_done(err, detail) and frees it. Only from a watcher callback, never inside one of r's callbacks. */
static void req_finish(struct kapi_req *r, int err, const char *detail)
{
	req_release(r);
	r->ended = true;
	r->in_cb++;
	r->ops.on_done(r->arg, err, detail);
	r->in_cb--;
	req_free(r);
}

static void req_fail(struct kapi_req *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void req_fail(struct kapi_req *r, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	req_finish(r, err, r->detail);
}

/* After one of r's callbacks: true when r was cancelled in it and must not be touched (freed here when it may be). */
static bool req_gone(struct kapi_req *r)
{
	r->in_cb--;
	if (!r->cancelled)
		return false;
	if (!r->in_cb)
		req_free(r);
	return true;
}

void kapi_cancel(struct kapi_req *r)
{
	if (!r || r->cancelled || r->ended)
		return;
	r->cancelled = true;
	req_release(r);
	if (!r->in_cb)
		req_free(r);
}

void kapi_free(struct kapi *k)
{
	struct kapi_req *r, *n;

	if (!k)
		return;
	list_for_each_entry_safe(r, n, &k->reqs, link) {
		list_del(&r->link);
		r->k = NULL;
		if (r->ended)
			continue; /* inside its on_done: freed when that returns */
		r->cancelled = true;
		req_release(r);
		if (!r->in_cb)
			req_free(r);
	}
	tls_ctx_unref(k->tls);
	free(k->ca_file);
	free(k->token_file);
	free(k);
}

/* --- requests: the steps ------------------------------------------------------- */

static void step_handshake(struct kapi_req *r);
static void step_send(struct kapi_req *r);
static void step_read(struct kapi_req *r);

static void want_tls(struct kapi_req *r)
{
	sock_io_want(r->loop, &r->io, tls_want(r->tls) == TLS_WANT_WRITE ? EV_WRITE : EV_READ);
}

static void step_connect(struct kapi_req *r)
{
	socklen_t len = sizeof(int);
	int e = 0;

	if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (e) {
		req_fail(r, -e, "Kubernetes API %s: cannot connect: %s", r->k->authority, strerror(e));
		return;
	}
	r->state = RQ_HANDSHAKE;
	step_handshake(r);
}

static void step_handshake(struct kapi_req *r)
{
	int ret = tls_handshake(r->tls);

	if (ret == -EAGAIN) {
		want_tls(r);
		return;
	}
	if (ret < 0) {
		req_fail(r, ret, "Kubernetes API %s: TLS handshake failed (%s): %s", r->k->authority,
			 tls_fail_name(tls_conn_fail(r->tls)), tls_conn_detail(r->tls));
		return;
	}
	/* connected: from now on the idle timeout, counted from here */
	r->state = RQ_SENDING;
	r->last_rx = ev_now(r->loop);
	ev_timer_stop(r->loop, &r->timer);
	ev_timer_set(&r->timer, r->k->idle_timeout_ms / 1e3, 0.);
	ev_timer_start(r->loop, &r->timer);
	step_send(r);
}

static void step_send(struct kapi_req *r)
{
	while (r->out_sent < r->out_len) {
		ssize_t w = tls_write(r->tls, r->out + r->out_sent, r->out_len - r->out_sent);

		if (w == -EAGAIN) {
			want_tls(r);
			return;
		}
		if (w < 0) {
			req_fail(r, (int)w, "Kubernetes API %s: sending the request failed (%s): %s", r->k->authority,
				 tls_fail_name(tls_conn_fail(r->tls)), tls_conn_detail(r->tls));
			return;
		}
		r->out_sent += (size_t)w;
	}
	explicit_bzero(r->out, r->out_len);
	free(r->out);
	r->out = NULL;
	r->state = RQ_READING;
	step_read(r);
}

/* The response ended cleanly: the body if it is delivered whole, then on_done(0). */
static void req_end(struct kapi_req *r, const struct hresp_out *out)
{
	if (out->whole) {
		r->in_cb++;
		r->ops.on_body(r->arg, out->status, out->data, out->len);
		if (req_gone(r))
			return;
	}
	req_finish(r, 0, "");
}

/* Hands n bytes to the response reader and acts on its events. True when r is finished or gone. */
static bool deliver(struct kapi_req *r, const char *p, size_t n)
{
	struct hresp_out out;
	size_t used;
	int ev;

	for (;;) {
		ev = hresp_feed(&r->resp, p, n, &used, &out);
		p += used;
		n -= used;
		if (ev < 0) {
			req_fail(r, ev, "Kubernetes API %s: %s", r->k->authority, hresp_error(&r->resp));
			return true;
		}
		if (ev == HRESP_MORE)
			return false;
		if (ev == HRESP_END) {
			req_end(r, &out);
			return true;
		}
		r->in_cb++;
		r->ops.on_line(r->arg, out.data, out.len);
		if (req_gone(r))
			return true;
	}
}

static void step_read(struct kapi_req *r)
{
	struct hresp_out out;
	ssize_t n;
	int ev;

	/* until -EAGAIN: wolfSSL may hold decrypted bytes with nothing left on the socket (tls.h) */
	for (;;) {
		n = tls_read(r->tls, r->rbuf, sizeof(r->rbuf));
		if (n > 0) {
			r->last_rx = ev_now(r->loop);
			if (deliver(r, r->rbuf, (size_t)n))
				return;
			continue;
		}
		if (n == -EAGAIN) {
			want_tls(r);
			return;
		}
		break;
	}
	if (n == 0) {
		/* close_notify: the server's clean end */
		ev = hresp_eof(&r->resp, &out);
		if (ev < 0)
			req_fail(r, ev, "Kubernetes API %s: %s", r->k->authority, hresp_error(&r->resp));
		else
			req_end(r, &out);
		return;
	}
	if (n == -ECONNRESET)
		req_fail(r, -ECONNRESET, "Kubernetes API %s: the connection ended before the response did (%s)",
			 r->k->authority, tls_conn_detail(r->tls));
	else
		req_fail(r, (int)n, "Kubernetes API %s: reading the response failed (%s): %s", r->k->authority,
			 tls_fail_name(tls_conn_fail(r->tls)), tls_conn_detail(r->tls));
}

static void req_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct kapi_req *r = w->data;

	(void)loop;
	(void)revents;
	switch (r->state) {
	case RQ_CONNECTING:
		step_connect(r);
		break;
	case RQ_HANDSHAKE:
		step_handshake(r);
		break;
	case RQ_SENDING:
		step_send(r);
		break;
	case RQ_READING:
		step_read(r);
		break;
	case RQ_FAILING:
		break;
	}
}

static void req_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kapi_req *r = w->data;
	ev_tstamp left;

	(void)revents;
	switch (r->state) {
	case RQ_FAILING:
		req_finish(r, r->err, r->detail);
		return;
	case RQ_CONNECTING:
		req_fail(r, -ETIMEDOUT, "Kubernetes API %s: no TCP connection within %u ms (connect timeout)",
			 r->k->authority, r->k->connect_timeout_ms);
		return;
	case RQ_HANDSHAKE:
		req_fail(r, -ETIMEDOUT, "Kubernetes API %s: TLS handshake not done within %u ms (connect timeout)",
			 r->k->authority, r->k->connect_timeout_ms);
		return;
	case RQ_SENDING:
	case RQ_READING:
		break;
	}
	left = r->last_rx + r->k->idle_timeout_ms / 1e3 - ev_now(loop);
	if (left > 0.) {
		ev_timer_set(w, left, 0.);
		ev_timer_start(loop, w);
		return;
	}
	req_fail(r, -ETIMEDOUT, "Kubernetes API %s: no byte for %u ms (idle timeout): the connection is dead",
		 r->k->authority, r->k->idle_timeout_ms);
}

/* --- requests: the start ------------------------------------------------------- */

/* Origin form, visible ASCII: nothing that could end the request line or split the target. */
static bool path_ok(const char *p)
{
	size_t i;

	if (p[0] != '/')
		return false;
	for (i = 0; p[i]; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c <= 0x20 || c >= 0x7f || i >= KAPI_PATH_MAX)
			return false;
	}
	return true;
}

/*
 * Reads the token now (a rotated token is used from the next request on):
 * a regular file, opened without blocking, at most KAPI_TOKEN_MAX bytes;
 * trailing whitespace trimmed; what remains must be non-empty visible ASCII
 * (it goes into a header). The caller wipes and frees *tok.
 */
static int read_token(struct kapi_req *r, const char *path, char **tok, size_t *toklen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0, i;
	int fd, ret;

	fd = file_open_regular(path, &st);
	if (fd == -EINVAL || fd == -EISDIR) {
		snprintf(r->detail, sizeof(r->detail), "Kubernetes API: token file '%.200s' is not a regular file (%s)",
			 path, file_kind(st.st_mode));
		return -EINVAL;
	}
	if (fd < 0) {
		snprintf(r->detail, sizeof(r->detail), "Kubernetes API: token file '%.200s': cannot open: %s", path,
			 strerror(-fd));
		return fd;
	}
	ret = -EINVAL;
	if (st.st_size > KAPI_TOKEN_MAX) {
		snprintf(r->detail, sizeof(r->detail),
			 "Kubernetes API: token file '%.200s' holds %lld bytes: not a token (at most %d)", path,
			 (long long)st.st_size, KAPI_TOKEN_MAX);
		goto out;
	}
	ret = -ENOMEM;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(r->detail, sizeof(r->detail), "Kubernetes API: out of memory reading the token");
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(r->detail, sizeof(r->detail), "Kubernetes API: token file '%.200s': read failed: %s",
				 path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break; /* shrank meanwhile: take what is there */
		got += (size_t)n;
	}
	while (got && (buf[got - 1] == '\n' || buf[got - 1] == '\r' || buf[got - 1] == ' ' || buf[got - 1] == '\t'))
		got--;
	ret = -EINVAL;
	if (!got) {
		snprintf(r->detail, sizeof(r->detail), "Kubernetes API: token file '%.200s' is empty", path);
		goto out;
	}
	for (i = 0; i < got; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c <= 0x20 || c >= 0x7f) {
			snprintf(r->detail, sizeof(r->detail),
				 "Kubernetes API: token file '%.200s': byte 0x%02x at offset %zu cannot go in an "
				 "HTTP header; is it a token?",
				 path, c, i);
			goto out;
		}
	}
	buf[got] = '\0';
	*tok = buf;
	*toklen = got;
	buf = NULL;
	ret = 0;
out:
	if (buf) {
		explicit_bzero(buf, (size_t)st.st_size + 1);
		free(buf);
	}
	close(fd);
	return ret;
}

/* The request, with the token read now. 0, or -errno with r->detail set. */
static int build_request(struct kapi_req *r, const char *path)
{
	struct kapi *k = r->k;
	char *tok = NULL;
	size_t toklen = 0, cap;
	int ret, n;

	ret = read_token(r, k->token_file, &tok, &toklen);
	if (ret)
		return ret;
	cap = strlen(path) + toklen + strlen(k->authority) + 256;
	r->out = malloc(cap);
	if (!r->out) {
		ret = -ENOMEM;
		snprintf(r->detail, sizeof(r->detail), "Kubernetes API: out of memory for a request");
		goto out;
	}
	n = snprintf(r->out, cap,
		     "GET %s HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "Authorization: Bearer %s\r\n"
		     "Accept: application/json\r\n"
		     "User-Agent: weft/" WEFT_VERSION "\r\n"
		     "Connection: close\r\n"
		     "\r\n",
		     path, k->authority, tok);
	if (n < 0 || (size_t)n >= cap) {
		ret = -EOVERFLOW; /* cannot happen: cap counts every part */
		snprintf(r->detail, sizeof(r->detail), "Kubernetes API: the request does not fit its buffer");
		goto out;
	}
	r->out_len = (size_t)n;
	ret = 0;
out:
	explicit_bzero(tok, toklen);
	free(tok);
	return ret;
}

static void sock_options(struct kapi_req *r, int fd)
{
	int one = 1, idle = KAPI_KEEPIDLE_S, intvl = KAPI_KEEPINTVL_S, cnt = KAPI_KEEPCNT;

	/*
	 * The mark keeps our own connection out of the BPF redirect. Without
	 * CAP_NET_ADMIN it cannot be set; weftd's own cgroup is skipped by the
	 * hooks anyway, so go on and say so in debug.
	 */
	if (r->k->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &r->k->mark, sizeof(r->k->mark)) < 0)
		log_debug("Kubernetes API: cannot set SO_MARK 0x%x on our socket: %s; continuing", r->k->mark,
			  strerror(errno));
	sock_set_nodelay(fd);
	/* keepalive finds a vanished server before the idle timeout does; failures only cost that */
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Token, request, socket, TLS, connect. 0 when the connect is under way, or -errno with r->detail set. */
static int req_start(struct kapi_req *r, const char *path)
{
	struct kapi *k = r->k;
	int ret;

	ret = build_request(r, path);
	if (ret)
		return ret;
	r->fd = socket(k->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (r->fd < 0) {
		ret = -errno;
		snprintf(r->detail, sizeof(r->detail), "Kubernetes API %s: cannot make a socket: %s", k->authority,
			 strerror(errno));
		return ret;
	}
	sock_options(r, r->fd);
	r->tls = tls_https_conn_new(k->tls, r->fd, k->ip);
	if (!r->tls) {
		snprintf(r->detail, sizeof(r->detail), "Kubernetes API %s: cannot set up TLS: %s", k->authority,
			 strerror(errno));
		return -ENOMEM;
	}
	/* EINTR: connect(2) says the attempt goes on asynchronously */
	if (connect(r->fd, &k->addr.sa, k->addr.len) < 0 && errno != EINPROGRESS && errno != EINTR) {
		ret = -errno;
		snprintf(r->detail, sizeof(r->detail), "Kubernetes API %s: cannot connect: %s", k->authority,
			 strerror(errno));
		return ret;
	}
	r->state = RQ_CONNECTING;
	ev_io_set(&r->io, r->fd, EV_WRITE);
	ev_io_start(r->loop, &r->io);
	/* the loop's cached time may be old (a caller busy with a large list): the timeout counts from now */
	ev_now_update(r->loop);
	ev_timer_set(&r->timer, k->connect_timeout_ms / 1e3, 0.);
	ev_timer_start(r->loop, &r->timer);
	return 0;
}

struct kapi_req *kapi_get(struct kapi *k, const char *path, enum kapi_mode mode, const struct kapi_ops *ops, void *arg)
{
	struct kapi_req *r;
	int ret;

	if (!k || !path || !ops || !ops->on_done || !ops->on_body || (mode != KAPI_WHOLE && mode != KAPI_LINES) ||
	    (mode == KAPI_LINES && !ops->on_line) || !path_ok(path)) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		errno = ENOMEM;
		return NULL;
	}
	r->k = k;
	r->loop = k->loop;
	r->ops = *ops;
	r->arg = arg;
	r->fd = -1;
	ev_io_init(&r->io, req_io_cb, -1, 0);
	r->io.data = r;
	ev_timer_init(&r->timer, req_timer_cb, 0., 0.);
	r->timer.data = r;
	hresp_init(&r->resp, mode == KAPI_LINES ? HRESP_LINES : HRESP_WHOLE, k->max_body, k->max_line);
	list_add_tail(&r->link, &k->reqs);
	kapi_check_ca(k);
	ret = req_start(r, path);
	if (ret) {
		/* on_done from the loop, never from inside kapi_get */
		req_release(r);
		r->state = RQ_FAILING;
		r->err = ret;
		ev_timer_set(&r->timer, 0., 0.);
		ev_timer_start(r->loop, &r->timer);
	}
	return r;
}
