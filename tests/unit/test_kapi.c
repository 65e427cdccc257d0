// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/kube/kapi.c against a real TLS server: a wolfSSL server in a
 * thread of the test process (blocking sockets, 127.0.0.1 or ::1, ephemeral
 * port) plays a script per connection: it records the request head, writes
 * the response as the script cuts it into TLS records (with pauses, so the
 * client's reads see the cuts), and ends with close_notify, a bare close, a
 * reset, or by waiting for the client to go. The client runs on the test's
 * own libev loop, as weftd runs it.
 *
 * Certificates are made once per run with openssl in a temporary directory:
 * a test CA, leaves for IP 127.0.0.1 and ::1 (EC and RSA), a leaf that names
 * 127.0.0.1 only as CN and DNS name (no iPAddress SAN), and a leaf of
 * another CA.
 *
 * Every wait is bounded; a guard timer keeps EVRUN_ONCE from blocking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "kube/kapi.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "tls/tls.h"

#define WAIT_MS 5000
#define MAX_CONNS 4
#define MAX_LINES 64
#define MAX_CUTS 512

static char dir[256];

static const char *path(const char *name)
{
	static char bufs[8][512];
	static int i;
	char *b = bufs[i++ % 8];

	snprintf(b, 512, "%s/%s", dir, name);
	return b;
}

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	if (r != 0)
		fail_msg("fixture command failed (%d): %s", r, cmd);
}

static void write_file(const char *p, const char *content)
{
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Fixtures (NAME.pem is the leaf, then its CA; NAME.key its key):
 *   ca.pem     the test CA (EC P-256)           other-ca.pem  another CA
 *   srv        EC leaf: IP 127.0.0.1, IP ::1, DNS kubernetes.default.svc
 *   rsa        RSA 2048 leaf: IP 127.0.0.1 (TLS 1.2 ECDHE-RSA)
 *   v4only     EC leaf: IP 127.0.0.1 only (refused on ::1)
 *   noip       EC leaf: CN=127.0.0.1, DNS 127.0.0.1, no iPAddress SAN
 *   other      EC leaf of other-ca: IP 127.0.0.1, IP ::1
 */
static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/weft-test-kapi.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return -1;
#define Q " >/dev/null 2>&1"
#define CA_EXT "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
	run("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
	    "-subj /CN=weft-test-kube-ca -days 2 " CA_EXT Q,
	    dir);
	run("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key "
	    "-out other-ca.pem -subj /CN=weft-test-other-ca -days 2 " CA_EXT Q,
	    dir);
	/* leaf NAME KEYALG CA SAN */
#define LEAF(name, newkey, ca, san)                                                                             \
	run("cd %s && openssl req -new -newkey " newkey " -nodes -keyout " name ".key -out " name ".csr -subj " \
	    "/CN=127.0.0.1" Q " && printf 'subjectAltName=" san "\\nextendedKeyUsage=serverAuth\\n' > " name    \
	    ".ext && "                                                                                          \
	    "openssl x509 -req -in " name ".csr -CA " ca ".pem -CAkey " ca ".key -days 1 -extfile " name        \
	    ".ext -out " name ".leaf" Q " && cat " name ".leaf " ca ".pem > " name ".pem",                      \
	    dir)
	LEAF("srv", "ec -pkeyopt ec_paramgen_curve:P-256", "ca", "IP:127.0.0.1,IP:::1,DNS:kubernetes.default.svc");
	LEAF("rsa", "rsa:2048", "ca", "IP:127.0.0.1");
	LEAF("v4only", "ec -pkeyopt ec_paramgen_curve:P-256", "ca", "IP:127.0.0.1");
	LEAF("noip", "ec -pkeyopt ec_paramgen_curve:P-256", "ca", "DNS:127.0.0.1,DNS:localhost");
	LEAF("other", "ec -pkeyopt ec_paramgen_curve:P-256", "other-ca", "IP:127.0.0.1,IP:::1");
#undef LEAF
#undef CA_EXT
#undef Q
	write_file(path("token"), "tok-one\n");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* --- the scripted TLS server --------------------------------------------------- */

enum srv_end {
	END_NOTIFY = 0, /* close_notify, then close */
	END_CLOSE,      /* close without close_notify (a bare TCP FIN) */
	END_RST,        /* reset */
	END_HANG,       /* keep the connection until the client goes */
};

struct script {
	const char *wire;      /* the response; NULL: none */
	size_t len;            /* 0: strlen(wire) */
	size_t cuts[MAX_CUTS]; /* record boundaries, increasing; none: one write */
	size_t ncuts;
	bool bytewise; /* every byte its own record */
	int pause_ms;  /* between records */
	enum srv_end end;
	bool no_tls; /* accept TCP, never speak TLS */
};

struct srv {
	/* set by the test */
	int family;
	const char *leaf;    /* fixture name */
	int tls12;           /* 1: TLS 1.2 only */
	const char *ciphers; /* NULL: the library's */
	struct script sc[MAX_CONNS];
	int nconns;
	/* runtime */
	int lfd;
	uint16_t port;
	pthread_t th;
	WOLFSSL_CTX *ctx;
	atomic_bool stop;
	/* results, read after srv_join */
	char heads[MAX_CONNS][4096];
	atomic_int accepted, handshakes;
	char cipher[64];
	char version[32];
};

static bool srv_stopping(struct srv *s, int64_t deadline)
{
	return atomic_load(&s->stop) || now_ms() > deadline;
}

/* wolfSSL call on a blocking socket with a 50 ms receive timeout: retry on WANT_* until done or told to stop. */
static bool srv_retry(struct srv *s, WOLFSSL *ssl, int ret, int64_t deadline)
{
	int e = wolfSSL_get_error(ssl, ret);

	return (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) && !srv_stopping(s, deadline);
}

static void srv_wait_gone(struct srv *s, int fd, WOLFSSL *ssl, int64_t deadline)
{
	char b[512];
	int r;

	while (!srv_stopping(s, deadline)) {
		if (ssl) {
			r = wolfSSL_read(ssl, b, sizeof(b));
			if (r > 0 || srv_retry(s, ssl, r, deadline))
				continue;
		} else {
			r = (int)recv(fd, b, sizeof(b), 0);
			if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR)))
				continue;
		}
		break;
	}
}

static void srv_conn(struct srv *s, int idx, int fd)
{
	const struct script *sc = &s->sc[idx];
	int64_t deadline = now_ms() + 10000;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 50000 };
	WOLFSSL *ssl = NULL;
	size_t hl = 0, len, off, i, nrec;
	int r;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sc->no_tls) {
		srv_wait_gone(s, fd, NULL, deadline);
		return;
	}
	ssl = wolfSSL_new(s->ctx);
	if (!ssl)
		return;
	wolfSSL_set_fd(ssl, fd);
	do
		r = wolfSSL_accept(ssl);
	while (r != WOLFSSL_SUCCESS && srv_retry(s, ssl, r, deadline));
	if (r != WOLFSSL_SUCCESS)
		goto out;
	atomic_fetch_add(&s->handshakes, 1);
	snprintf(s->cipher, sizeof(s->cipher), "%s", wolfSSL_get_cipher_name(ssl));
	snprintf(s->version, sizeof(s->version), "%s", wolfSSL_get_version(ssl));
	/* the request head */
	while (!strstr(s->heads[idx], "\r\n\r\n") && hl < sizeof(s->heads[idx]) - 1) {
		r = wolfSSL_read(ssl, s->heads[idx] + hl, (int)(sizeof(s->heads[idx]) - 1 - hl));
		if (r > 0) {
			hl += (size_t)r;
			s->heads[idx][hl] = '\0';
			continue;
		}
		if (!srv_retry(s, ssl, r, deadline))
			goto out;
	}
	len = sc->wire ? (sc->len ? sc->len : strlen(sc->wire)) : 0;
	nrec = sc->bytewise ? len : sc->ncuts + 1;
	for (i = 0, off = 0; i < nrec && off < len; i++) {
		size_t end = sc->bytewise ? off + 1 : i < sc->ncuts ? sc->cuts[i] : len;

		while (off < end) {
			r = wolfSSL_write(ssl, sc->wire + off, (int)(end - off));
			if (r > 0) {
				off += (size_t)r;
				continue;
			}
			if (!srv_retry(s, ssl, r, deadline))
				goto out; /* the client went away */
		}
		if (sc->pause_ms && off < len)
			usleep((useconds_t)sc->pause_ms * 1000);
	}
	switch (sc->end) {
	case END_NOTIFY:
		wolfSSL_shutdown(ssl);
		break;
	case END_CLOSE:
		break;
	case END_RST: {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		/* a reset drops what the client has not read yet: let it read first */
		usleep(50000);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		break;
	}
	case END_HANG:
		srv_wait_gone(s, fd, ssl, deadline);
		break;
	}
out:
	wolfSSL_free(ssl);
}

struct srv_conn_arg {
	struct srv *s;
	int idx, fd;
};

static void *srv_conn_main(void *arg)
{
	struct srv_conn_arg *a = arg;

	srv_conn(a->s, a->idx, a->fd);
	close(a->fd);
	tls_thread_cleanup(); /* wolfSSL's per-thread cache */
	return NULL;
}

/* Accepts up to nconns connections, each served by its own thread (a watch must not hold up the next request). */
static void *srv_main(void *arg)
{
	struct srv *s = arg;
	struct srv_conn_arg args[MAX_CONNS];
	pthread_t th[MAX_CONNS];
	int i, n = 0;

	for (i = 0; i < s->nconns; i++) {
		struct pollfd p = { .fd = s->lfd, .events = POLLIN };
		int fd;

		while (!atomic_load(&s->stop) && poll(&p, 1, 20) == 0)
			;
		if (atomic_load(&s->stop))
			break;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			break;
		atomic_fetch_add(&s->accepted, 1);
		args[n] = (struct srv_conn_arg){ .s = s, .idx = i, .fd = fd };
		if (pthread_create(&th[n], NULL, srv_conn_main, &args[n]) != 0) {
			close(fd);
			break;
		}
		n++;
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return NULL;
}

/* A listener on 127.0.0.1 / ::1, port from the kernel. */
static int listen_any(int family, int backlog, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static void srv_start(struct srv *s)
{
	char cert[64], key[64];

	if (!s->family)
		s->family = AF_INET;
	if (!s->leaf)
		s->leaf = "srv";
	if (!s->nconns)
		s->nconns = 1;
	s->ctx = wolfSSL_CTX_new(s->tls12 ? wolfTLSv1_2_server_method() : wolfSSLv23_server_method());
	assert_non_null(s->ctx);
	snprintf(cert, sizeof(cert), "%s.pem", s->leaf);
	snprintf(key, sizeof(key), "%s.key", s->leaf);
	assert_int_equal(wolfSSL_CTX_use_certificate_chain_file(s->ctx, path(cert)), WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_CTX_use_PrivateKey_file(s->ctx, path(key), WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
	if (s->ciphers)
		assert_int_equal(wolfSSL_CTX_set_cipher_list(s->ctx, s->ciphers), WOLFSSL_SUCCESS);
	s->lfd = listen_any(s->family, 16, &s->port);
	atomic_init(&s->stop, false);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_join(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	close(s->lfd);
	wolfSSL_CTX_free(s->ctx);
}

/* --- the client side ------------------------------------------------------------ */

struct res {
	struct kapi *k;
	struct kapi_req *req;
	int done, err;
	char detail[512];
	int bodies, status;
	char *body;
	size_t body_len;
	int nlines;
	char *lines[MAX_LINES];
	size_t line_len[MAX_LINES];
	/* actions from inside callbacks */
	int cancel_at_line; /* cancel when this many lines arrived */
	bool cancel_in_body;
	bool cancel_in_done;
	bool free_at_line; /* kapi_free(k) at cancel_at_line instead */
};

static void on_body(void *arg, int status, const char *body, size_t len)
{
	struct res *r = arg;

	r->bodies++;
	r->status = status;
	free(r->body);
	r->body = malloc(len + 1);
	assert_non_null(r->body);
	memcpy(r->body, body, len);
	r->body[len] = '\0';
	r->body_len = len;
	assert_int_equal(body[len], '\0'); /* the contract: NUL-terminated */
	if (r->cancel_in_body)
		kapi_cancel(r->req);
}

static void on_line(void *arg, const char *line, size_t len)
{
	struct res *r = arg;

	assert_int_equal(line[len], '\0');
	assert_null(memchr(line, '\n', len));
	if (r->nlines < MAX_LINES) {
		r->lines[r->nlines] = strndup(line, len);
		r->line_len[r->nlines] = len;
	}
	r->nlines++;
	if (r->cancel_at_line && r->nlines == r->cancel_at_line) {
		if (r->free_at_line) {
			kapi_free(r->k);
			r->k = NULL;
		} else {
			kapi_cancel(r->req);
			kapi_cancel(r->req); /* twice is fine */
		}
	}
}

static void on_done(void *arg, int err, const char *detail)
{
	struct res *r = arg;

	r->done++;
	r->err = err;
	snprintf(r->detail, sizeof(r->detail), "%s", detail);
	if (r->cancel_in_done)
		kapi_cancel(r->req); /* a no-op: the request ends anyway */
	r->req = NULL;
}

static const struct kapi_ops ops = { .on_body = on_body, .on_line = on_line, .on_done = on_done };

static void res_free(struct res *r)
{
	int i;

	free(r->body);
	for (i = 0; i < r->nlines && i < MAX_LINES; i++)
		free(r->lines[i]);
	memset(r, 0, sizeof(*r));
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

struct harness {
	struct ev_loop *loop;
	ev_timer guard;
};

static void h_init(struct harness *h)
{
	h->loop = ev_loop_new(EVFLAG_AUTO);
	assert_non_null(h->loop);
	ev_timer_init(&h->guard, guard_cb, 0.02, 0.02);
	ev_timer_start(h->loop, &h->guard);
}

static void h_fini(struct harness *h)
{
	ev_timer_stop(h->loop, &h->guard);
	ev_loop_destroy(h->loop);
}

static void url_of(char *buf, size_t len, int family, uint16_t port)
{
	snprintf(buf, len, family == AF_INET6 ? "https://[::1]:%u" : "https://127.0.0.1:%u", port);
}

static struct kapi *mk(struct harness *h, int family, uint16_t port, const struct kapi_opts *base)
{
	struct kapi_opts o = { 0 };
	char url[64], err[512];
	struct kapi *k = NULL;

	if (base)
		o = *base;
	url_of(url, sizeof(url), family ? family : AF_INET, port);
	o.url = url;
	if (!o.ca_file)
		o.ca_file = path("ca.pem");
	if (!o.token_file)
		o.token_file = path("token");
	if (kapi_new(h->loop, &o, &k, err, sizeof(err)))
		fail_msg("kapi_new: %s", err);
	return k;
}

/* Turns the loop until r has its on_done, or ms pass. */
static bool wait_done(struct harness *h, struct res *r, int ms)
{
	int64_t deadline = now_ms() + ms;

	while (!r->done) {
		if (now_ms() > deadline)
			return false;
		ev_run(h->loop, EVRUN_ONCE);
	}
	return true;
}

static void run_for(struct harness *h, int ms)
{
	int64_t deadline = now_ms() + ms;

	while (now_ms() < deadline)
		ev_run(h->loop, EVRUN_ONCE);
}

/* One request against one scripted connection: srv (already configured), then the outcome in r. */
static void exchange(struct srv *s, const struct kapi_opts *o, const char *p, enum kapi_mode mode, struct res *r)
{
	struct harness h;

	h_init(&h);
	srv_start(s);
	r->k = mk(&h, s->family, s->port, o);
	r->req = kapi_get(r->k, p, mode, &ops, r);
	assert_non_null(r->req);
	assert_int_equal(r->done, 0); /* never from inside kapi_get */
	if (!wait_done(&h, r, WAIT_MS))
		fail_msg("no on_done within %d ms", WAIT_MS);
	assert_int_equal(r->done, 1);
	run_for(&h, 30); /* and nothing after it */
	assert_int_equal(r->done, 1);
	kapi_free(r->k);
	srv_join(s);
	h_fini(&h);
}

static void expect_err(const struct res *r, int err, const char *needle)
{
	if (r->err != err || (needle && !strstr(r->detail, needle)))
		fail_msg("on_done(%d, \"%s\"), want %d with \"%s\"", r->err, r->detail, err, needle ? needle : "");
}

/* "HTTP/1.1 200 OK" head with Transfer-Encoding: chunked, then the chunks of each part, then the last chunk. */
static void chunked(struct buf *b, const char *status_line, const char *const *parts, size_t n, bool last)
{
	size_t i;

	buf_printf(b, "%s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", status_line);
	for (i = 0; i < n; i++)
		buf_printf(b, "%zx\r\n%s\r\n", strlen(parts[i]), parts[i]);
	if (last)
		buf_puts(b, "0\r\n\r\n");
}

/* --- tests ------------------------------------------------------------------------ */

static void test_whole_content_length(void **state)
{
	static const char body[] = "{\"kind\":\"PodList\",\"items\":[]}";
	struct srv s = { 0 };
	struct res r = { 0 };
	char wire[256], want[128];

	(void)state;
	snprintf(wire, sizeof(wire),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(body),
		 body);
	s.sc[0].wire = wire;
	s.sc[0].end = END_HANG; /* the framing ends it, not the server */
	exchange(&s, NULL, "/api/v1/pods?limit=500", KAPI_WHOLE, &r);
	expect_err(&r, 0, NULL);
	assert_string_equal(r.detail, "");
	assert_int_equal(r.bodies, 1);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, body);
	assert_int_equal(r.nlines, 0);
	/* the request, as the server saw it */
	assert_int_equal(s.handshakes, 1);
	assert_string_equal(s.version, "TLSv1.3");
	assert_true(strncmp(s.heads[0], "GET /api/v1/pods?limit=500 HTTP/1.1\r\n", 37) == 0);
	snprintf(want, sizeof(want), "\r\nHost: 127.0.0.1:%u\r\n", s.port);
	assert_non_null(strstr(s.heads[0], want));
	assert_non_null(strstr(s.heads[0], "\r\nAuthorization: Bearer tok-one\r\n"));
	assert_non_null(strstr(s.heads[0], "\r\nAccept: application/json\r\n"));
	assert_non_null(strstr(s.heads[0], "\r\nUser-Agent: weft/"));
	assert_non_null(strstr(s.heads[0], "\r\nConnection: close\r\n"));
	assert_null(strstr(s.heads[0], "Accept-Encoding"));
	res_free(&r);
}

static void test_whole_chunked_and_close(void **state)
{
	static const char *const parts[] = { "{\"kind\":", "\"PodList\"", ",\"items\":[]}" };
	struct buf b = { 0 };
	struct srv s = { 0 };
	struct res r = { 0 };

	(void)state;
	chunked(&b, "HTTP/1.1 200 OK", parts, 3, true);
	buf_puts(&b, "HTTP/1.1 200 OK\r\n\r\n"); /* after the body: not part of it */
	s.sc[0].wire = b.p;
	s.sc[0].end = END_HANG;
	exchange(&s, NULL, "/api/v1/pods", KAPI_WHOLE, &r);
	expect_err(&r, 0, NULL);
	assert_int_equal(r.bodies, 1);
	assert_string_equal(r.body, "{\"kind\":\"PodList\",\"items\":[]}");
	res_free(&r);

	/* close-delimited: ended by close_notify */
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"items\":[]}";
	s.sc[0].end = END_NOTIFY;
	exchange(&s, NULL, "/api/v1/pods", KAPI_WHOLE, &r);
	expect_err(&r, 0, NULL);
	assert_string_equal(r.body, "{\"items\":[]}");
	res_free(&r);

	/* ... but a bare TCP close is a cut, not an end */
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"items\":[]}";
	s.sc[0].end = END_CLOSE;
	exchange(&s, NULL, "/api/v1/pods", KAPI_WHOLE, &r);
	expect_err(&r, -ECONNRESET, "ended before the response did");
	assert_int_equal(r.bodies, 0);
	res_free(&r);

	/* 204: no body */
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
	s.sc[0].end = END_HANG;
	exchange(&s, NULL, "/api/v1/pods", KAPI_WHOLE, &r);
	expect_err(&r, 0, NULL);
	assert_int_equal(r.bodies, 1);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.body_len, 0);
	res_free(&r);
	buf_free(&b);
}

static const char *const watch_parts[] = {
	"{\"a\":", "1}\n", "{\"b\":2}\n{\"", "c\":3}\n", "{\"d\":4}\n{}\n\n", "{\"type\":\"BOOKMARK\"}\n",
};
static const char *const watch_lines[] = {
	"{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\":4}", "{}", "", "{\"type\":\"BOOKMARK\"}"
};

static void check_watch_lines(const struct res *r)
{
	size_t i, n = sizeof(watch_lines) / sizeof(watch_lines[0]);

	if (r->nlines != (int)n)
		fail_msg("%d lines, want %zu (on_done %d: %s)", r->nlines, n, r->err, r->detail);
	for (i = 0; i < n; i++)
		assert_string_equal(r->lines[i], watch_lines[i]);
}

/* Lines split across chunks and across TLS records, every way we can think of. */
static void test_lines_split(void **state)
{
	struct buf b = { 0 };
	struct srv s;
	struct res r = { 0 };
	size_t i, head;

	(void)state;
	chunked(&b, "HTTP/1.1 200 OK", watch_parts, sizeof(watch_parts) / sizeof(watch_parts[0]), true);
	head = (size_t)(strstr(b.p, "\r\n\r\n") + 4 - b.p);

	/* 1: one record for the whole stream */
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = b.p;
	s.sc[0].end = END_NOTIFY;
	exchange(&s, NULL, "/api/v1/pods?watch=1", KAPI_LINES, &r);
	expect_err(&r, 0, NULL);
	assert_int_equal(r.bodies, 0);
	check_watch_lines(&r);
	res_free(&r);

	/* 2: every byte its own record (head included) */
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = b.p;
	s.sc[0].bytewise = true;
	s.sc[0].end = END_HANG;
	exchange(&s, NULL, "/api/v1/pods?watch=1", KAPI_LINES, &r);
	expect_err(&r, 0, NULL);
	check_watch_lines(&r);
	res_free(&r);

	/* 3: records cut at every 7th byte of the body, with pauses so each read sees one */
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = b.p;
	for (i = head; i < b.len && s.sc[0].ncuts < MAX_CUTS; i += 7)
		s.sc[0].cuts[s.sc[0].ncuts++] = i;
	s.sc[0].pause_ms = 2;
	s.sc[0].end = END_HANG;
	exchange(&s, NULL, "/api/v1/pods?watch=1", KAPI_LINES, &r);
	expect_err(&r, 0, NULL);
	check_watch_lines(&r);
	res_free(&r);

	/* 4: cuts inside a chunk-size line, inside its CRLF, inside the data CRLF, inside the last chunk */
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = b.p;
	s.sc[0].cuts[0] = head + 1;  /* after the first size digit */
	s.sc[0].cuts[1] = head + 2;  /* between CR and LF */
	s.sc[0].cuts[2] = head + 8;  /* inside "{\"a\":" */
	s.sc[0].cuts[3] = head + 9;  /* after the data, before its CRLF */
	s.sc[0].cuts[4] = head + 10; /* between that CR and LF */
	s.sc[0].cuts[5] = b.len - 3; /* inside "0\r\n\r\n" */
	s.sc[0].ncuts = 6;
	s.sc[0].pause_ms = 5;
	s.sc[0].end = END_HANG;
	exchange(&s, NULL, "/api/v1/pods?watch=1", KAPI_LINES, &r);
	expect_err(&r, 0, NULL);
	check_watch_lines(&r);
	res_free(&r);
	buf_free(&b);
}

static void test_line_over_max(void **state)
{
	static const char *const parts[] = { "0123456789abcdef\n", "0123456789", "abcdefX\n", "never\n" };
	struct kapi_opts o = { .max_line = 16 };
	struct buf b = { 0 };
	struct srv s = { 0 };
	struct res r = { 0 };

	(void)state;
	chunked(&b, "HTTP/1.1 200 OK", parts, 4, true);
	s.sc[0].wire = b.p;
	s.sc[0].end = END_HANG;
	exchange(&s, &o, "/api/v1/pods?watch=1", KAPI_LINES, &r);
	expect_err(&r, -EMSGSIZE, "max_line (16 bytes");
	assert_int_equal(r.nlines, 1); /* exactly max_line: delivered */
	assert_string_equal(r.lines[0], "0123456789abcdef");
	res_free(&r);
	buf_free(&b);
}

static void test_body_over_max(void **state)
{
	struct kapi_opts o = { .max_body = 4096 };
	struct buf b = { 0 };
	struct srv s = { 0 };
	struct res r = { 0 };
	char *big = malloc(5001);
	const char *parts[2];

	(void)state;
	assert_non_null(big);
	memset(big, 'x', 5000);
	big[5000] = '\0';

	/* Content-Length over the bound: refused at the head */
	buf_printf(&b, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n%s", big);
	s.sc[0].wire = b.p;
	s.sc[0].end = END_HANG;
	exchange(&s, &o, "/api/v1/pods", KAPI_WHOLE, &r);
	expect_err(&r, -EMSGSIZE, "Content-Length 5000) is over max_body (4096");
	assert_int_equal(r.bodies, 0);
	res_free(&r);

	/* chunked: refused when it passes the bound */
	buf_reset(&b);
	big[2500] = '\0';
	parts[0] = big;
	parts[1] = big;
	chunked(&b, "HTTP/1.1 200 OK", parts, 2, true);
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = b.p;
	s.sc[0].end = END_HANG;
	exchange(&s, &o, "/api/v1/pods", KAPI_WHOLE, &r);
	expect_err(&r, -EMSGSIZE, "over max_body (4096");
	res_free(&r);

	/* exactly max_body: fine */
	buf_reset(&b);
	big[2048] = '\0';
	parts[0] = big;
	parts[1] = big;
	chunked(&b, "HTTP/1.1 200 OK", parts, 2, true);
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = b.p;
	s.sc[0].end = END_HANG;
	exchange(&s, &o, "/api/v1/pods", KAPI_WHOLE, &r);
	expect_err(&r, 0, NULL);
	assert_int_equal(r.body_len, 4096);
	res_free(&r);

	/* a head over 16 KiB */
	buf_reset(&b);
	memset(big, 'h', 5000);
	big[5000] = '\0';
	buf_printf(&b, "HTTP/1.1 200 OK\r\nX-A: %s\r\nX-B: %s\r\nX-C: %s\r\nX-D: %s\r\nContent-Length: 0\r\n\r\n", big,
		   big, big, big);
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = b.p;
	s.sc[0].end = END_HANG;
	exchange(&s, &o, "/api/v1/pods", KAPI_WHOLE, &r);
	expect_err(&r, -EMSGSIZE, "head");
	res_free(&r);
	free(big);
	buf_free(&b);
}

static void test_cut(void **state)
{
	static const char *const parts[] = { "{\"a\":1}\n{\"b\"" };
	static const struct {
		const char *what;
		bool last;        /* send the last chunk */
		enum srv_end end; /* then */
		int err;
		const char *needle;
	} cases[] = {
		{ "mid-line, mid-chunked body, close_notify", false, END_NOTIFY, -EPIPE, "inside the chunked body" },
		{ "mid-line, mid-chunked body, bare close", false, END_CLOSE, -ECONNRESET, "ended before" },
		{ "mid-line, mid-chunked body, reset", false, END_RST, -ECONNRESET, "ended before" },
		{ "body complete but the last line unterminated", true, END_HANG, -EPIPE, "inside a line" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = { 0 };
		struct srv s = { 0 };
		struct res r = { 0 };

		chunked(&b, "HTTP/1.1 200 OK", parts, 1, cases[i].last);
		s.sc[0].wire = b.p;
		s.sc[0].end = cases[i].end;
		exchange(&s, NULL, "/api/v1/pods?watch=1", KAPI_LINES, &r);
		if (r.err != cases[i].err || !strstr(r.detail, cases[i].needle))
			fail_msg("%s: on_done(%d, \"%s\"), want %d with \"%s\"", cases[i].what, r.err, r.detail,
				 cases[i].err, cases[i].needle);
		if (r.nlines != 1)
			fail_msg("%s: %d lines (on_done %d: %s)", cases[i].what, r.nlines, r.err, r.detail);
		assert_string_equal(r.lines[0], "{\"a\":1}");
		res_free(&r);
		buf_free(&b);
	}

	/* mid-chunk, inside the data, chunk size promising more */
	{
		struct srv s = { 0 };
		struct res r = { 0 };

		s.sc[0].wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n{\"a\":1}\n{\"b";
		s.sc[0].end = END_NOTIFY;
		exchange(&s, NULL, "/api/v1/pods?watch=1", KAPI_LINES, &r);
		expect_err(&r, -EPIPE, "inside the chunked body");
		assert_int_equal(r.nlines, 1);
		res_free(&r);
	}
	/* closed before answering */
	{
		struct srv s = { 0 };
		struct res r = { 0 };

		s.sc[0].end = END_NOTIFY;
		exchange(&s, NULL, "/api/v1/pods?watch=1", KAPI_LINES, &r);
		expect_err(&r, -EPIPE, "without answering");
		res_free(&r);
	}
}

static void test_status_body(void **state)
{
	static const char status[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
				     "\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}\n";
	static const char gone[] = "{\"kind\":\"Status\",\"reason\":\"Expired\",\"code\":410}";
	struct srv s = { 0 };
	struct res r = { 0 };
	char wire[512];
	struct buf b = { 0 };
	const char *parts[1] = { gone };

	(void)state;
	snprintf(wire, sizeof(wire),
		 "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(status), status);
	s.sc[0].wire = wire;
	s.sc[0].end = END_HANG;
	exchange(&s, NULL, "/api/v1/pods?watch=1", KAPI_LINES, &r);
	expect_err(&r, 0, NULL);
	assert_int_equal(r.bodies, 1);
	assert_int_equal(r.status, 401);
	assert_string_equal(r.body, status); /* whole, newline and all: not cut into lines */
	assert_int_equal(r.nlines, 0);
	res_free(&r);

	/* chunked, no final newline: fine for a body delivered whole */
	chunked(&b, "HTTP/1.1 410 Gone", parts, 1, true);
	memset(&s, 0, sizeof(s));
	s.sc[0].wire = b.p;
	s.sc[0].end = END_HANG;
	exchange(&s, NULL, "/api/v1/pods?watch=1&resourceVersion=1", KAPI_LINES, &r);
	expect_err(&r, 0, NULL);
	assert_int_equal(r.status, 410);
	assert_string_equal(r.body, gone);
	res_free(&r);
	buf_free(&b);
}

static void test_bad_responses(void **state)
{
	static const struct {
		const char *wire;
		int err;
		const char *needle;
	} cases[] = {
		{ "SSH-2.0-OpenSSH_9.2\r\n\r\n", -EPROTO, "bad response head" },
		{ "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nxx", -EPROTO,
		  "Content-Encoding" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", -EPROTO, "transfer coding" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", -EPROTO, "chunked" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", -EPROTO,
		  "chunked" },
		{ "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n", -EPROTO, "101" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", -EPROTO, "bad response head" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct srv s = { 0 };
		struct res r = { 0 };

		s.sc[0].wire = cases[i].wire;
		s.sc[0].end = END_HANG;
		exchange(&s, NULL, "/api/v1/pods", KAPI_WHOLE, &r);
		if (r.err != cases[i].err || !strstr(r.detail, cases[i].needle))
			fail_msg("case %zu: on_done(%d, \"%s\"), want %d with \"%s\"", i, r.err, r.detail, cases[i].err,
				 cases[i].needle);
		assert_int_equal(r.bodies, 0);
		res_free(&r);
	}
}

/* The token is read at each request: a rotation is used from the next one on. */
static void test_token(void **state)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
	struct harness h;
	struct srv s = { 0 };
	struct res r1 = { 0 }, r2 = { 0 };
	struct kapi *k;

	(void)state;
	h_init(&h);
	s.nconns = 2;
	s.sc[0].wire = ok;
	s.sc[0].end = END_HANG;
	s.sc[1] = s.sc[0];
	srv_start(&s);
	k = mk(&h, AF_INET, s.port, NULL);
	write_file(path("token"), "tok-one\n");
	r1.req = kapi_get(k, "/api/v1/namespaces", KAPI_WHOLE, &ops, &r1);
	assert_non_null(r1.req);
	assert_true(wait_done(&h, &r1, WAIT_MS));
	expect_err(&r1, 0, NULL);
	write_file(path("token"), "tok-two\r\n\n");
	r2.req = kapi_get(k, "/api/v1/namespaces", KAPI_WHOLE, &ops, &r2);
	assert_true(wait_done(&h, &r2, WAIT_MS));
	expect_err(&r2, 0, NULL);
	srv_join(&s);
	assert_non_null(strstr(s.heads[0], "\r\nAuthorization: Bearer tok-one\r\n"));
	assert_non_null(strstr(s.heads[1], "\r\nAuthorization: Bearer tok-two\r\n"));
	res_free(&r1);
	res_free(&r2);

	/* a missing, empty or odd token fails that request, from the loop, not from kapi_get */
	{
		static const struct {
			const char *content; /* NULL: no file */
			int err;
			const char *needle;
		} bad[] = {
			{ NULL, -ENOENT, "cannot open" },
			{ "", -EINVAL, "is empty" },
			{ "\n\n", -EINVAL, "is empty" },
			{ "tok en\n", -EINVAL, "byte 0x20 at offset 3" },
			{ "tok\r\nX-Evil: 1\n", -EINVAL, "byte 0x0d" },
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			struct res r = { 0 };

			unlink(path("token"));
			if (bad[i].content)
				write_file(path("token"), bad[i].content);
			r.req = kapi_get(k, "/api/v1/namespaces", KAPI_WHOLE, &ops, &r);
			assert_non_null(r.req);
			assert_int_equal(r.done, 0);
			assert_true(wait_done(&h, &r, WAIT_MS));
			if (r.err != bad[i].err || !strstr(r.detail, bad[i].needle) || !strstr(r.detail, "token file"))
				fail_msg("token case %zu: on_done(%d, \"%s\"), want %d with \"%s\"", i, r.err, r.detail,
					 bad[i].err, bad[i].needle);
			res_free(&r);
		}
		/* a directory */
		{
			struct res r = { 0 };
			struct kapi_opts o = { .token_file = dir };
			struct kapi *k2 = mk(&h, AF_INET, s.port, &o);

			r.req = kapi_get(k2, "/api", KAPI_WHOLE, &ops, &r);
			assert_true(wait_done(&h, &r, WAIT_MS));
			expect_err(&r, -EINVAL, "not a regular file (a directory)");
			kapi_free(k2);
		}
		write_file(path("token"), "tok-one\n");
	}
	kapi_free(k);
	h_fini(&h);
}

static void test_tls_versions(void **state)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
	struct srv s = { 0 };
	struct res r = { 0 };

	(void)state;
	/* TLS 1.2, RSA key: ECDHE-RSA with AES-GCM */
	s.leaf = "rsa";
	s.tls12 = 1;
	s.sc[0].wire = ok;
	s.sc[0].end = END_HANG;
	exchange(&s, NULL, "/api", KAPI_WHOLE, &r);
	expect_err(&r, 0, NULL);
	assert_string_equal(s.version, "TLSv1.2");
	if (!strstr(s.cipher, "ECDHE") || (!strstr(s.cipher, "GCM") && !strstr(s.cipher, "CHACHA")))
		fail_msg("TLS 1.2 negotiated %s, want ECDHE with an AEAD", s.cipher);
	res_free(&r);

	/* TLS 1.2, EC key */
	memset(&s, 0, sizeof(s));
	s.tls12 = 1;
	s.sc[0].wire = ok;
	s.sc[0].end = END_HANG;
	exchange(&s, NULL, "/api", KAPI_WHOLE, &r);
	expect_err(&r, 0, NULL);
	assert_string_equal(s.version, "TLSv1.2");
	res_free(&r);

	/* TLS 1.2 with CBC suites only: no suite in common */
	memset(&s, 0, sizeof(s));
	s.tls12 = 1;
	s.ciphers = "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA";
	s.sc[0].wire = ok;
	exchange(&s, NULL, "/api", KAPI_WHOLE, &r);
	expect_err(&r, -EPROTO, "TLS handshake failed");
	assert_int_equal(s.handshakes, 0);
	res_free(&r);
}

static void test_tls_verify(void **state)
{
	static const struct {
		const char *leaf;
		int family;
		const char *needle;
	} cases[] = {
		/* CN and DNS SAN spell 127.0.0.1: neither counts */
		{ "noip", AF_INET, "bad_identity): server certificate '/CN=127.0.0.1' does not name IP 127.0.0.1" },
		{ "noip", AF_INET, "DNS 127.0.0.1" },
		{ "v4only", AF_INET6, "does not name IP ::1 in its subjectAltName (it names: IP 127.0.0.1)" },
		{ "other", AF_INET, "unknown_ca" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct srv s = { 0 };
		struct res r = { 0 };

		s.leaf = cases[i].leaf;
		s.family = cases[i].family;
		s.sc[0].wire = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
		exchange(&s, NULL, "/api", KAPI_WHOLE, &r);
		if (r.err != -EPROTO || !strstr(r.detail, cases[i].needle))
			fail_msg("%s over %s: on_done(%d, \"%s\"), want -EPROTO with \"%s\"", cases[i].leaf,
				 cases[i].family == AF_INET ? "IPv4" : "IPv6", r.err, r.detail, cases[i].needle);
		assert_int_equal(r.bodies, 0);
		assert_null(strstr(s.heads[0], "Bearer")); /* the token never left */
		res_free(&r);
	}

	/* IPv6 with a certificate that names ::1 */
	{
		struct srv s = { 0 };
		struct res r = { 0 };

		s.family = AF_INET6;
		s.sc[0].wire = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
		s.sc[0].end = END_HANG;
		exchange(&s, NULL, "/api", KAPI_WHOLE, &r);
		expect_err(&r, 0, NULL);
		assert_non_null(strstr(s.heads[0], "\r\nHost: [::1]:"));
		res_free(&r);
	}
}

static void test_connect_failures(void **state)
{
	struct kapi_opts o = { .connect_timeout_ms = 300 };
	struct harness h;
	struct res r = { 0 };
	struct kapi *k;
	uint16_t port;
	int lfd, fillers[3], i;
	int64_t t0;

	(void)state;
	h_init(&h);

	/* refused: a port nobody listens on */
	lfd = listen_any(AF_INET, 1, &port);
	close(lfd);
	k = mk(&h, AF_INET, port, &o);
	r.req = kapi_get(k, "/api", KAPI_WHOLE, &ops, &r);
	assert_true(wait_done(&h, &r, WAIT_MS));
	expect_err(&r, -ECONNREFUSED, "cannot connect: Connection refused");
	kapi_free(k);
	res_free(&r);

	/* timeout: a listener that never accepts, its backlog (0) full, so our SYN is dropped */
	lfd = listen_any(AF_INET, 0, &port);
	for (i = 0; i < 3; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		assert_true(fillers[i] >= 0);
		(void)connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
	}
	usleep(50000);
	k = mk(&h, AF_INET, port, &o);
	t0 = now_ms();
	r.req = kapi_get(k, "/api", KAPI_WHOLE, &ops, &r);
	assert_true(wait_done(&h, &r, WAIT_MS));
	expect_err(&r, -ETIMEDOUT, "no TCP connection within 300 ms");
	assert_true(now_ms() - t0 >= 250);
	kapi_free(k);
	res_free(&r);
	for (i = 0; i < 3; i++)
		close(fillers[i]);
	close(lfd);

	h_fini(&h);

	/* TCP connects, TLS never answers: the same timeout covers the handshake */
	{
		struct srv s = { 0 };

		s.sc[0].no_tls = true;
		exchange(&s, &o, "/api", KAPI_WHOLE, &r);
		expect_err(&r, -ETIMEDOUT, "TLS handshake not done within 300 ms");
		res_free(&r);
	}
}

static void test_idle_timeout(void **state)
{
	struct kapi_opts o = { .idle_timeout_ms = 300 };
	static const char *const parts[] = { "{\"a\":1}\n" };
	struct buf b = { 0 };
	struct srv s = { 0 };
	struct res r = { 0 };
	int64_t t0 = now_ms();

	(void)state;
	chunked(&b, "HTTP/1.1 200 OK", parts, 1, false);
	s.sc[0].wire = b.p;
	s.sc[0].end = END_HANG;
	exchange(&s, &o, "/api/v1/pods?watch=1", KAPI_LINES, &r);
	expect_err(&r, -ETIMEDOUT, "no byte for 300 ms (idle timeout)");
	assert_int_equal(r.nlines, 1);
	assert_true(now_ms() - t0 >= 250);
	res_free(&r);

	/* bytes keep it alive: 6 records 100 ms apart outlive a 300 ms idle timeout */
	memset(&s, 0, sizeof(s));
	buf_reset(&b);
	chunked(&b, "HTTP/1.1 200 OK", watch_parts, sizeof(watch_parts) / sizeof(watch_parts[0]), true);
	s.sc[0].wire = b.p;
	s.sc[0].cuts[0] = (size_t)(strstr(b.p, "\r\n\r\n") + 4 - b.p);
	for (s.sc[0].ncuts = 1; s.sc[0].ncuts < 6; s.sc[0].ncuts++)
		s.sc[0].cuts[s.sc[0].ncuts] = s.sc[0].cuts[0] + s.sc[0].ncuts * 10;
	s.sc[0].pause_ms = 100;
	s.sc[0].end = END_HANG;
	exchange(&s, &o, "/api/v1/pods?watch=1", KAPI_LINES, &r);
	expect_err(&r, 0, NULL);
	check_watch_lines(&r);
	res_free(&r);
	buf_free(&b);
}

/* Cancel and free from inside callbacks: no callback after, nothing leaks (ASan, valgrind). */
static void test_cancel(void **state)
{
	static const char *const parts[] = { "{\"a\":1}\n", "{\"b\":2}\n", "{\"c\":3}\n", "{\"d\":4}\n" };
	struct harness h;
	struct buf b = { 0 };
	size_t head;
	int variant;

	(void)state;
	chunked(&b, "HTTP/1.1 200 OK", parts, 4, false);
	head = (size_t)(strstr(b.p, "\r\n\r\n") + 4 - b.p);

	/* 0: kapi_cancel in on_line; 1: kapi_free in on_line, another request outstanding; 2: both lines in one record */
	for (variant = 0; variant < 3; variant++) {
		struct srv s = { 0 };
		struct res r = { 0 }, other = { 0 };

		h_init(&h);
		s.sc[0].wire = b.p;
		if (variant != 2) {
			s.sc[0].cuts[0] = head;
			s.sc[0].cuts[1] = head + 12;
			s.sc[0].cuts[2] = head + 24;
			s.sc[0].ncuts = 3;
			s.sc[0].pause_ms = 20;
		}
		s.sc[0].end = END_HANG;
		if (variant == 1) {
			s.nconns = 2;
			s.sc[1] = s.sc[0];
		}
		srv_start(&s);
		r.k = mk(&h, AF_INET, s.port, NULL);
		if (variant == 1) {
			/* the same watch, outstanding on the same kapi */
			other.req = kapi_get(r.k, "/api/v1/pods?watch=1", KAPI_LINES, &ops, &other);
			assert_non_null(other.req);
		}
		r.cancel_at_line = 1;
		r.free_at_line = variant == 1;
		r.req = kapi_get(r.k, "/api/v1/pods?watch=1", KAPI_LINES, &ops, &r);
		assert_non_null(r.req);
		run_for(&h, 300);
		assert_int_equal(r.nlines, 1); /* the cancel stopped the rest, even those in the same read */
		assert_int_equal(r.done, 0);
		assert_int_equal(other.done, 0);
		if (variant != 1)
			kapi_free(r.k);
		srv_join(&s);
		h_fini(&h);
		res_free(&r);
		res_free(&other);
	}

	/* cancel in on_body; cancel in on_done (a no-op) */
	{
		struct srv s = { 0 };
		struct res r = { 0 };

		s.sc[0].wire = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
		s.sc[0].end = END_HANG;
		h_init(&h);
		srv_start(&s);
		r.k = mk(&h, AF_INET, s.port, NULL);
		r.cancel_in_body = true;
		r.req = kapi_get(r.k, "/api", KAPI_WHOLE, &ops, &r);
		run_for(&h, 200);
		assert_int_equal(r.bodies, 1);
		assert_int_equal(r.done, 0);
		kapi_free(r.k);
		srv_join(&s);
		h_fini(&h);
		res_free(&r);

		memset(&s, 0, sizeof(s));
		s.sc[0].wire = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
		s.sc[0].end = END_HANG;
		r.cancel_in_done = true;
		exchange(&s, NULL, "/api", KAPI_WHOLE, &r);
		expect_err(&r, 0, NULL);
		res_free(&r);
	}

	/* cancel before anything happened, and kapi_free with a request in flight */
	{
		struct res r = { 0 }, r2 = { 0 };
		struct kapi *k;

		h_init(&h);
		k = mk(&h, AF_INET, 9, NULL);
		r.req = kapi_get(k, "/api", KAPI_WHOLE, &ops, &r);
		kapi_cancel(r.req);
		unlink(path("token"));
		r2.req = kapi_get(k, "/api", KAPI_WHOLE, &ops, &r2); /* a pending failure */
		write_file(path("token"), "tok-one\n");
		kapi_cancel(NULL);
		kapi_free(k);
		run_for(&h, 50);
		assert_int_equal(r.done + r2.done, 0);
		h_fini(&h);
	}
	buf_free(&b);
}

/* The usual watch loop: a new request from inside on_done. */
struct rewatch {
	struct kapi *k;
	int rounds;
	int errs[3];
};

static void rw_body(void *arg, int status, const char *body, size_t len)
{
	(void)arg;
	(void)status;
	(void)body;
	(void)len;
}

static void rw_line(void *arg, const char *line, size_t len)
{
	(void)arg;
	(void)line;
	(void)len;
}

static void rw_done(void *arg, int err, const char *detail)
{
	static const struct kapi_ops rw_ops = { .on_body = rw_body, .on_line = rw_line, .on_done = rw_done };
	struct rewatch *w = arg;

	(void)detail;
	w->errs[w->rounds++] = err;
	if (w->rounds < 3)
		assert_non_null(kapi_get(w->k, "/api/v1/pods?watch=1", KAPI_LINES, &rw_ops, w));
}

static void test_rewatch_from_done(void **state)
{
	static const struct kapi_ops rw_ops = { .on_body = rw_body, .on_line = rw_line, .on_done = rw_done };
	struct harness h;
	struct srv s = { 0 };
	struct rewatch w = { 0 };
	int64_t deadline = now_ms() + WAIT_MS;
	int i;

	(void)state;
	h_init(&h);
	s.nconns = 3;
	for (i = 0; i < 3; i++) {
		s.sc[i].wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"a\":1}\n\r\n0\r\n\r\n";
		s.sc[i].end = END_NOTIFY;
	}
	srv_start(&s);
	w.k = mk(&h, AF_INET, s.port, NULL);
	assert_non_null(kapi_get(w.k, "/api/v1/pods?watch=1", KAPI_LINES, &rw_ops, &w));
	while (w.rounds < 3 && now_ms() < deadline)
		ev_run(h.loop, EVRUN_ONCE);
	assert_int_equal(w.rounds, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(w.errs[i], 0);
	kapi_free(w.k);
	srv_join(&s);
	h_fini(&h);
}

static void test_new_and_get_bad(void **state)
{
	static const struct {
		const char *url;
		const char *needle;
	} bad[] = {
		{ NULL, "no Kubernetes API URL" },
		{ "", "no Kubernetes API URL" },
		{ "https://kubernetes.default.svc", "host 'kubernetes.default.svc' must be an IP address" },
		{ "https://kubernetes.default.svc:443", "must be an IP address" },
		{ "http://127.0.0.1:6443", "https://IP:PORT" },
		{ "127.0.0.1:6443", "https://IP:PORT" },
		{ "https://", "no host" },
		{ "https:///", "no host" },
		{ "https://127.0.0.1:6443/api", "no path" },
		{ "https://127.0.0.1:6443?x=1", "no path, query" },
		{ "https://admin@127.0.0.1:6443", "no path, query or user" },
		{ "https://fd00::1:443", "in brackets" },
		{ "https://[fd00::1:443", "missing ']'" },
		{ "https://[fd00::1]x", "text after ']'" },
		{ "https://127.0.0.1:0", "out of range" },
		{ "https://127.0.0.1:65536", "out of range" },
		{ "https://127.0.0.1:http", "bad port" },
		{ "https://256.0.0.1:443", "must be an IP address" },
		{ "https://[fe80::1%eth0]:443", "must be an IP address" },
	};
	static const char *const good[] = { "https://127.0.0.1", "https://127.0.0.1/", "https://[::1]:6443",
					    "https://10.96.0.1:443", "https://[fd00::1]" };
	struct harness h;
	struct kapi_opts o = { 0 };
	struct kapi *k;
	char err[512];
	size_t i;

	(void)state;
	h_init(&h);
	o.ca_file = path("ca.pem");
	o.token_file = path("token");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.url = bad[i].url;
		err[0] = '\0';
		if (kapi_new(h.loop, &o, &k, err, sizeof(err)) != -EINVAL || k || !strstr(err, bad[i].needle))
			fail_msg("url '%s': got '%s', want -EINVAL with \"%s\"", bad[i].url ? bad[i].url : "(null)",
				 err, bad[i].needle);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		o.url = good[i];
		if (kapi_new(h.loop, &o, &k, err, sizeof(err)))
			fail_msg("url '%s': %s", good[i], err);
		kapi_free(k);
	}

	/* CA and token options */
	o.url = "https://127.0.0.1:6443";
	o.ca_file = path("missing.pem");
	assert_true(kapi_new(h.loop, &o, &k, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "missing.pem': cannot open"));
	o.ca_file = path("token"); /* not PEM */
	assert_true(kapi_new(h.loop, &o, &k, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "no usable PEM CA certificate"));
	o.ca_file = NULL;
	assert_int_equal(kapi_new(h.loop, &o, &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no CA file"));
	o.ca_file = path("ca.pem");
	o.token_file = NULL;
	assert_int_equal(kapi_new(h.loop, &o, &k, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no token file"));
	o.token_file = path("token");

	/* kapi_get refuses bad paths and missing callbacks, with no callback */
	assert_int_equal(kapi_new(h.loop, &o, &k, err, sizeof(err)), 0);
	{
		static const char *const paths[] = { "", "api", "/api v1", "/api\r\nX: 1", "/api\x7f", "http://x/api" };
		struct kapi_ops no_line = { .on_body = on_body, .on_done = on_done };
		struct kapi_ops no_done = { .on_body = on_body, .on_line = on_line };
		struct res r = { 0 };
		char *longp = malloc(9000);

		for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			errno = 0;
			assert_null(kapi_get(k, paths[i], KAPI_WHOLE, &ops, &r));
			assert_int_equal(errno, EINVAL);
		}
		assert_non_null(longp);
		longp[0] = '/';
		memset(longp + 1, 'a', 8998);
		longp[8999] = '\0';
		assert_null(kapi_get(k, longp, KAPI_WHOLE, &ops, &r));
		free(longp);
		assert_null(kapi_get(k, "/api", KAPI_LINES, &no_line, &r));
		assert_null(kapi_get(k, "/api", KAPI_WHOLE, &no_done, &r));
		assert_null(kapi_get(k, "/api", (enum kapi_mode)7, &ops, &r));
		assert_null(kapi_get(k, NULL, KAPI_WHOLE, &ops, &r));
		assert_null(kapi_get(NULL, "/api", KAPI_WHOLE, &ops, &r));
		run_for(&h, 30);
		assert_int_equal(r.done, 0);
	}
	kapi_free(k);
	kapi_free(NULL);
	h_fini(&h);
}

/* A CA file rotated on disk is used from the next request on. */
static void test_ca_reload(void **state)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
	struct harness h;
	struct srv s = { 0 };
	struct res r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	struct kapi_opts o = { 0 };
	struct kapi *k;

	(void)state;
	run("cp %s %s", path("other-ca.pem"), path("rot-ca.pem"));
	h_init(&h);
	s.nconns = 3;
	s.sc[0].wire = ok;
	s.sc[0].end = END_HANG;
	s.sc[1] = s.sc[0];
	s.sc[2] = s.sc[0];
	srv_start(&s);
	o.ca_file = path("rot-ca.pem");
	k = mk(&h, AF_INET, s.port, &o);
	r1.req = kapi_get(k, "/api", KAPI_WHOLE, &ops, &r1);
	assert_true(wait_done(&h, &r1, WAIT_MS));
	expect_err(&r1, -EPROTO, "unknown_ca");
	/* a broken file keeps the CA in use */
	write_file(path("rot-ca.pem"), "not a certificate\n");
	r2.req = kapi_get(k, "/api", KAPI_WHOLE, &ops, &r2);
	assert_true(wait_done(&h, &r2, WAIT_MS));
	expect_err(&r2, -EPROTO, "unknown_ca");
	run("cp %s %s.tmp && mv %s.tmp %s", path("ca.pem"), path("rot-ca.pem"), path("rot-ca.pem"), path("rot-ca.pem"));
	r3.req = kapi_get(k, "/api", KAPI_WHOLE, &ops, &r3);
	assert_true(wait_done(&h, &r3, WAIT_MS));
	expect_err(&r3, 0, NULL);
	kapi_free(k);
	srv_join(&s);
	h_fini(&h);
	res_free(&r1);
	res_free(&r2);
	res_free(&r3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_content_length),
		cmocka_unit_test(test_whole_chunked_and_close),
		cmocka_unit_test(test_lines_split),
		cmocka_unit_test(test_line_over_max),
		cmocka_unit_test(test_body_over_max),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_status_body),
		cmocka_unit_test(test_bad_responses),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_tls_versions),
		cmocka_unit_test(test_tls_verify),
		cmocka_unit_test(test_connect_failures),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_rewatch_from_done),
		cmocka_unit_test(test_new_and_get_bad),
		cmocka_unit_test(test_ca_reload),
	};
	int ret;

	signal(SIGPIPE, SIG_IGN); /* the server thread writes to clients that went away */
	log_set_level(LOG_LVL_ERROR);
	wolfSSL_Init(); /* the server side's; tls.c makes its own */
	ret = cmocka_run_group_tests(tests, setup, teardown);
	wolfSSL_Cleanup();
	tls_global_cleanup(); /* the last TLS user of the process */
	return ret;
}
