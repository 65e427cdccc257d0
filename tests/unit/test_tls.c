// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/tls.c: handshakes between two in-process endpoints over a
 * non-blocking socketpair, driven step by step as a libev loop would.
 * Certificates come from scripts/weft-ca (the tool the demo and e2e tests use),
 * made once per run in a temporary directory that is removed at the end.
 * Peers that our API refuses to build (no certificate, TLS 1.2 only, another
 * ALPN, a CA as leaf, several URI SANs) are raw wolfSSL endpoints.
 *
 * Success table first, then failures: each row says which reason each side
 * must report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "tls/tls.h"

#define TD "example.org"
#define ID_SRV "spiffe://example.org/node/b"
#define ID_CLI "spiffe://example.org/ns/default/sa/web"

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
	char cmd[2048];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	r = system(cmd);
	if (r != 0)
		fail_msg("fixture command failed (%d): %s", r, cmd);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/*
 * Fixtures:
 *   ca/       trust domain example.org (root + node issuer)
 *   evil/     another CA that also claims example.org (unknown CA)
 *   srv, cli  leaves for ID_SRV and ID_CLI
 *   cli2      a second client leaf (rotation)
 *   expired, future   expired and not-yet-valid client leaves
 *   evil-cli, evil-srv leaves of the unknown CA
 *   otherdom  a leaf of our CA for spiffe://other.org/x
 *   twouri    a leaf of our CA with two URI SANs
 *   dnsonly   a leaf of our CA with a DNS SAN only
 */
static int setup(void **state)
{
	const char *src = getenv("WEFT_SRCDIR");
	char ca[600];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/weft-test-tls.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(ca, sizeof(ca), "%s/scripts/weft-ca", src ? src : ".");
	if (access(ca, X_OK) != 0) {
		fprintf(stderr, "test_tls: %s not found: run from the repository root or set WEFT_SRCDIR\n", ca);
		return -1;
	}
#define Q " >/dev/null"
	run("%s init %s --trust-domain " TD Q, ca, path("ca"));
	run("%s init %s --trust-domain " TD Q, ca, path("evil"));
	run("%s issue %s " ID_SRV " %s" Q, ca, path("ca"), path("srv"));
	run("%s issue %s " ID_CLI " %s" Q, ca, path("ca"), path("cli"));
	run("%s issue %s spiffe://example.org/ns/default/sa/web2 %s" Q, ca, path("ca"), path("cli2"));
	run("%s issue %s " ID_CLI " %s --expired" Q, ca, path("ca"), path("expired"));
	run("%s issue %s " ID_CLI " %s --not-yet-valid" Q, ca, path("ca"), path("future"));
	run("%s issue %s " ID_CLI " %s" Q, ca, path("evil"), path("evil-cli"));
	run("%s issue %s " ID_SRV " %s" Q, ca, path("evil"), path("evil-srv"));
	run("%s issue %s spiffe://other.org/x %s --foreign-trust-domain" Q, ca, path("ca"), path("otherdom"));
	/* X.509-SVID violations the tool refuses to make: plain openssl, signed by our issuer */
	run("cd %s && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out twouri.key 2>/dev/null && "
	    "openssl req -new -key twouri.key -subj /O=weft -out twouri.csr && "
	    "printf 'subjectAltName=URI:spiffe://example.org/a,URI:spiffe://example.org/b\\n' > twouri.ext && "
	    "openssl x509 -req -in twouri.csr -CA ca/issuer.pem -CAkey ca/issuer.key -days 1 -extfile twouri.ext "
	    "-out twouri.leaf 2>/dev/null && cat twouri.leaf ca/issuer.pem > twouri.pem",
	    dir);
	run("cd %s && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out dnsonly.key 2>/dev/null && "
	    "openssl req -new -key dnsonly.key -subj /O=weft -out dnsonly.csr && "
	    "printf 'subjectAltName=DNS:web.example.org\\n' > dnsonly.ext && "
	    "openssl x509 -req -in dnsonly.csr -CA ca/issuer.pem -CAkey ca/issuer.key -days 1 -extfile dnsonly.ext "
	    "-out dnsonly.leaf 2>/dev/null && cat dnsonly.leaf ca/issuer.pem > dnsonly.pem",
	    dir);
#undef Q
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static struct tls_ctx *load(const char *ca, const char *leaf)
{
	char cert[64], key[64], err[512];
	struct tls_ctx_opts o = { 0 };
	struct tls_ctx *t;

	snprintf(cert, sizeof(cert), "%s.pem", leaf);
	snprintf(key, sizeof(key), "%s.key", leaf);
	o.ca_file = path(ca);
	o.cert_file = path(cert);
	o.key_file = path(key);
	t = tls_ctx_load(&o, err, sizeof(err));
	if (!t)
		fail_msg("tls_ctx_load(%s, %s): %s", ca, leaf, err);
	return t;
}

/* --- one endpoint: our API, or a raw wolfSSL peer ------------------------- */

struct raw_spec {
	bool tls12;       /* TLS 1.2 only */
	const char *leaf; /* "name" -> name.pem/name.key; NULL: no certificate */
	const char *cert; /* explicit cert/key files (overrides leaf) */
	const char *key;
	const char *alpn; /* NULL: no ALPN extension */
	bool no_verify;   /* do not verify the peer (so only our side judges) */
};

struct party {
	bool server;
	struct tls_conn *tc; /* ours */
	WOLFSSL_CTX *rctx;   /* raw */
	WOLFSSL *raw;
	int fd;
	int rc; /* last step result: 0, -EAGAIN, or < 0 */
	bool want_write;
};

static void party_api(struct party *p, struct tls_ctx *t, int fd, bool server)
{
	memset(p, 0, sizeof(*p));
	p->server = server;
	p->fd = fd;
	p->rc = -EAGAIN;
	p->tc = tls_conn_new(t, fd, server);
	assert_non_null(p->tc);
}

static void party_raw(struct party *p, const struct raw_spec *s, int fd, bool server)
{
	WOLFSSL_METHOD *m;

	memset(p, 0, sizeof(*p));
	p->server = server;
	p->fd = fd;
	p->rc = -EAGAIN;
	if (s->tls12)
		m = server ? wolfTLSv1_2_server_method() : wolfTLSv1_2_client_method();
	else
		m = server ? wolfSSLv23_server_method() : wolfSSLv23_client_method();
	p->rctx = wolfSSL_CTX_new(m);
	assert_non_null(p->rctx);
	assert_int_equal(wolfSSL_CTX_load_verify_locations(p->rctx, path("ca/ca.pem"), NULL), WOLFSSL_SUCCESS);
	if (s->leaf || s->cert) {
		char cert[64], key[64];

		snprintf(cert, sizeof(cert), "%s.pem", s->leaf);
		snprintf(key, sizeof(key), "%s.key", s->leaf);
		assert_int_equal(wolfSSL_CTX_use_certificate_chain_file(p->rctx, s->cert ? s->cert : path(cert)),
				 WOLFSSL_SUCCESS);
		assert_int_equal(wolfSSL_CTX_use_PrivateKey_file(p->rctx, s->key ? s->key : path(key),
								 WOLFSSL_FILETYPE_PEM),
				 WOLFSSL_SUCCESS);
	}
	wolfSSL_CTX_set_verify(p->rctx, s->no_verify ? WOLFSSL_VERIFY_NONE : WOLFSSL_VERIFY_PEER, NULL);
	p->raw = wolfSSL_new(p->rctx);
	assert_non_null(p->raw);
	wolfSSL_set_fd(p->raw, fd);
	if (s->alpn)
		assert_int_equal(wolfSSL_UseALPN(p->raw, (char *)s->alpn, (unsigned)strlen(s->alpn),
						 WOLFSSL_ALPN_CONTINUE_ON_MISMATCH),
				 WOLFSSL_SUCCESS);
}

static void party_free(struct party *p)
{
	tls_conn_free(p->tc);
	if (p->raw)
		wolfSSL_free(p->raw);
	if (p->rctx)
		wolfSSL_CTX_free(p->rctx);
	memset(p, 0, sizeof(*p));
}

static int party_step(struct party *p)
{
	int r, e;

	if (p->rc != -EAGAIN)
		return p->rc;
	if (p->tc) {
		p->rc = tls_handshake(p->tc);
		p->want_write = p->rc == -EAGAIN && tls_want(p->tc) == TLS_WANT_WRITE;
		if (p->rc == -EAGAIN)
			assert_true(tls_want(p->tc) == TLS_WANT_READ || tls_want(p->tc) == TLS_WANT_WRITE);
		return p->rc;
	}
	r = p->server ? wolfSSL_accept(p->raw) : wolfSSL_connect(p->raw);
	if (r == WOLFSSL_SUCCESS)
		return p->rc = 0;
	e = wolfSSL_get_error(p->raw, r);
	if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) {
		p->want_write = e == WOLFSSL_ERROR_WANT_WRITE;
		return p->rc = -EAGAIN;
	}
	return p->rc = -EPROTO;
}

/* Steps both until neither can progress; polls when both wait. Fails on a hang. */
static void drive(struct party *a, struct party *b)
{
	int i;

	for (i = 0; i < 10000; i++) {
		struct pollfd pfd[2];
		int n = 0;

		party_step(a);
		party_step(b);
		if (a->rc != -EAGAIN && b->rc != -EAGAIN)
			return;
		if (a->rc == -EAGAIN)
			pfd[n++] = (struct pollfd){ .fd = a->fd, .events = a->want_write ? POLLOUT : POLLIN };
		if (b->rc == -EAGAIN)
			pfd[n++] = (struct pollfd){ .fd = b->fd, .events = b->want_write ? POLLOUT : POLLIN };
		if (poll(pfd, (nfds_t)n, 3000) == 0) {
			/* one side waits for the other, which is done: that is the outcome */
			if ((a->rc == -EAGAIN) != (b->rc == -EAGAIN))
				return;
			fail_msg("handshake hung: both sides wait");
		}
	}
	fail_msg("handshake did not finish in 10000 steps");
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/*
 * After our client completed, the server's verdict on the client's
 * certificate arrives as an alert: read until something other than -EAGAIN.
 */
static ssize_t read_verdict(struct tls_conn *c, int fd)
{
	char buf[64];
	ssize_t r;
	int i;

	for (i = 0; i < 100; i++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		r = tls_read(c, buf, sizeof(buf));
		if (r != -EAGAIN)
			return r;
		if (poll(&pfd, 1, 2000) == 0)
			return -ETIMEDOUT;
	}
	return -ETIMEDOUT;
}

/* --- success ----------------------------------------------------------------- */

static void test_handshake_ok(void **state)
{
	struct tls_ctx *ts = load("ca/ca.pem", "srv"), *tc = load("ca/ca.pem", "cli");
	struct party s, c;
	char id[TLS_ID_MAX], small[8];
	int sv[2];
	time_t now = time(NULL);

	assert_string_equal(tls_ctx_identity(ts), ID_SRV);
	assert_string_equal(tls_ctx_trust_domain(ts), TD);
	assert_true(tls_cert_not_after(tc) > now + 86400 - 300 && tls_cert_not_after(tc) <= now + 86400 + 300);
	assert_true(tls_cert_not_before(tc) <= now && tls_cert_not_before(tc) > now - 600);
	assert_false(tls_ctx_files_changed(tc));

	pair(sv);
	party_api(&s, ts, sv[0], true);
	party_api(&c, tc, sv[1], false);
	/* before any byte: the server waits to read, and says so */
	assert_int_equal(tls_handshake(s.tc), -EAGAIN);
	assert_int_equal(tls_want(s.tc), TLS_WANT_READ);
	assert_int_equal(tls_peer_identity(s.tc, id, sizeof(id)), -ENOTCONN);
	assert_null(tls_peer_id(s.tc));
	drive(&s, &c);
	if (s.rc || c.rc)
		fail_msg("server %d (%s: %s), client %d (%s: %s)", s.rc, tls_fail_name(tls_conn_fail(s.tc)),
			 tls_conn_detail(s.tc), c.rc, tls_fail_name(tls_conn_fail(c.tc)), tls_conn_detail(c.tc));
	assert_int_equal(tls_handshake(s.tc), 0); /* idempotent */
	assert_int_equal(tls_peer_identity(s.tc, id, sizeof(id)), (int)strlen(ID_CLI));
	assert_string_equal(id, ID_CLI);
	assert_int_equal(tls_peer_identity(c.tc, id, sizeof(id)), (int)strlen(ID_SRV));
	assert_string_equal(id, ID_SRV);
	assert_int_equal(tls_peer_identity(c.tc, small, sizeof(small)), -ENOSPC);
	assert_string_equal(tls_peer_id(c.tc), ID_SRV);
	assert_int_equal(tls_conn_fail(s.tc), TLS_FAIL_NONE);
	assert_true(tls_conn_is_server(s.tc));
	assert_false(tls_conn_is_server(c.tc));
	assert_non_null(strstr(tls_conn_cipher(c.tc), "TLS13-"));
	party_free(&s);
	party_free(&c);
	close(sv[0]);
	close(sv[1]);
	tls_ctx_unref(ts);
	tls_ctx_unref(tc);
}

/* Bytes both ways, more than the socket buffers hold, then close_notify each way. */
static void pump(struct tls_conn *w, int wfd, const unsigned char *data, size_t len, struct tls_conn *r, int rfd,
		 unsigned char *out)
{
	size_t sent = 0, got = 0;
	int spins = 0, blocked = 0;

	while (got < len) {
		struct pollfd pfd[2];
		ssize_t n;

		assert_true(++spins < 100000);
		/* write until the socket is full, then drain: both sides wait in turn */
		while (sent < len) {
			n = tls_write(w, data + sent, len - sent);
			if (n > 0) {
				sent += (size_t)n;
				continue;
			}
			assert_int_equal(n, -EAGAIN);
			assert_int_equal(tls_want(w), TLS_WANT_WRITE);
			blocked++;
			break;
		}
		do {
			n = tls_read(r, out + got, len - got);
			if (n > 0)
				got += (size_t)n;
		} while (n > 0 && got < len);
		if (n <= 0 && n != -EAGAIN)
			fail_msg("tls_read: %zd (%s)", n, tls_conn_detail(r));
		pfd[0] = (struct pollfd){ .fd = wfd, .events = POLLOUT };
		pfd[1] = (struct pollfd){ .fd = rfd, .events = POLLIN };
		poll(pfd, 2, 100);
	}
	assert_memory_equal(data, out, len);
	/* 1 MiB is more than a socketpair holds: the write side had to wait and resume */
	assert_true(blocked > 0);
}

static void test_data_and_close(void **state)
{
	struct tls_ctx *ts = load("ca/ca.pem", "srv"), *tc = load("ca/ca.pem", "cli");
	const size_t len = 1 << 20;
	unsigned char *data = malloc(len), *out = malloc(len);
	struct party s, c;
	char b[16];
	size_t i;
	int sv[2];

	assert_non_null(data);
	assert_non_null(out);
	for (i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 131 + (i >> 9));
	pair(sv);
	party_api(&s, ts, sv[0], true);
	party_api(&c, tc, sv[1], false);
	drive(&s, &c);
	assert_int_equal(s.rc, 0);
	assert_int_equal(c.rc, 0);
	/* before reading anything the server has nothing */
	assert_int_equal(tls_read(s.tc, b, sizeof(b)), -EAGAIN);
	assert_int_equal(tls_want(s.tc), TLS_WANT_READ);
	assert_int_equal(tls_pending(s.tc), 0);
	/* a short write is taken whole and read back; the rest of the record waits in tls_pending */
	assert_int_equal(tls_write(c.tc, "hello, world", 12), 12);
	{
		struct pollfd pfd = { .fd = sv[0], .events = POLLIN };

		poll(&pfd, 1, 1000);
	}
	assert_int_equal(tls_read(s.tc, b, 5), 5);
	assert_memory_equal(b, "hello", 5);
	assert_int_equal(tls_pending(s.tc), 7);
	assert_int_equal(tls_read(s.tc, b, sizeof(b)), 7);
	assert_memory_equal(b, ", world", 7);
	assert_int_equal(tls_write(c.tc, data, 0), 0);

	pump(c.tc, sv[1], data, len, s.tc, sv[0], out);
	memset(out, 0, len);
	pump(s.tc, sv[0], data, len, c.tc, sv[1], out);

	/* half-close: client sends close_notify; server reads 0 and can still answer */
	assert_int_equal(tls_shutdown(c.tc), 0);
	assert_int_equal(read_verdict(s.tc, sv[0]), 0);
	assert_int_equal(tls_write(s.tc, "bye", 3), 3);
	assert_int_equal(read_verdict(c.tc, sv[1]), 3);

	party_free(&s);
	party_free(&c);
	close(sv[0]);
	close(sv[1]);
	tls_ctx_unref(ts);
	tls_ctx_unref(tc);
	free(data);
	free(out);
}

/*
 * The client speaks first right after its handshake (the preamble), often
 * before the server has finished its own: those bytes can already sit in
 * wolfSSL's buffer when tls_handshake returns 0, with nothing left on the
 * socket to wake a poller. tls_read must hand them out without waiting.
 */
static void test_pipelined_after_handshake(void **state)
{
	struct tls_ctx *ts = load("ca/ca.pem", "srv"), *tc = load("ca/ca.pem", "cli");
	struct tls_conn *s, *c;
	int sv[2], rs = -EAGAIN, rc = -EAGAIN, i;
	char b[16];

	pair(sv);
	s = tls_conn_new(ts, sv[0], true);
	c = tls_conn_new(tc, sv[1], false);
	/* step until the client is done, without letting the server finish */
	for (i = 0; i < 100 && rc != 0; i++) {
		rc = tls_handshake(c);
		if (rc != 0)
			rs = tls_handshake(s);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(rs, -EAGAIN); /* the server still waits for the client's Finished */
	assert_int_equal(tls_write(c, "early", 5), 5);
	assert_int_equal(tls_handshake(s), 0);
	{
		struct pollfd pfd = { .fd = sv[0], .events = POLLIN };

		/* the socket may well say "nothing to read" now: wolfSSL has the record */
		(void)poll(&pfd, 1, 0);
	}
	assert_int_equal(tls_read(s, b, sizeof(b)), 5);
	assert_memory_equal(b, "early", 5);
	assert_int_equal(tls_read(s, b, sizeof(b)), -EAGAIN);
	tls_conn_free(s);
	tls_conn_free(c);
	close(sv[0]);
	close(sv[1]);
	tls_ctx_unref(ts);
	tls_ctx_unref(tc);
}

/* EOF without close_notify after the handshake: a truncation, not a clean end. */
static void test_eof_after_handshake(void **state)
{
	struct tls_ctx *ts = load("ca/ca.pem", "srv"), *tc = load("ca/ca.pem", "cli");
	struct party s, c;
	char b[16];
	int sv[2];

	pair(sv);
	party_api(&s, ts, sv[0], true);
	party_api(&c, tc, sv[1], false);
	drive(&s, &c);
	assert_int_equal(s.rc, 0);
	assert_int_equal(c.rc, 0);
	party_free(&c);
	close(sv[1]);
	assert_int_equal(tls_read(s.tc, b, sizeof(b)), -ECONNRESET);
	assert_int_equal(tls_conn_fail(s.tc), TLS_FAIL_CLOSED);
	assert_int_equal(tls_write(s.tc, "x", 1), -ECONNRESET); /* failed for good */
	party_free(&s);
	close(sv[0]);
	tls_ctx_unref(ts);
	tls_ctx_unref(tc);
}

/*
 * Rotation: a connection made with the old context keeps working after the
 * swap (and after the old context's last outside reference is dropped); a new
 * connection presents the new certificate.
 */
static void test_reload(void **state)
{
	struct tls_ctx *ts = load("ca/ca.pem", "srv"), *tc = load("ca/ca.pem", "cli"), *tc2;
	struct party s, c, s2, c2;
	char b[8], cmd_path[600];
	int sv[2], sv2[2];

	pair(sv);
	party_api(&s, ts, sv[0], true);
	party_api(&c, tc, sv[1], false);
	drive(&s, &c);
	assert_int_equal(s.rc, 0);
	assert_int_equal(c.rc, 0);
	assert_string_equal(tls_peer_id(s.tc), ID_CLI);

	/* the files change on disk: the context notices */
	snprintf(cmd_path, sizeof(cmd_path), "%s", path("rot"));
	run("cp %s/cli.pem %s.pem && cp %s/cli.key %s.key", dir, cmd_path, dir, cmd_path);
	tc2 = load("ca/ca.pem", "rot");
	assert_false(tls_ctx_files_changed(tc2));
	run("sleep 0.01; cp %s/cli2.pem %s.pem && cp %s/cli2.key %s.key", dir, cmd_path, dir, cmd_path);
	assert_true(tls_ctx_files_changed(tc2));
	tls_ctx_unref(tc2);
	tc2 = load("ca/ca.pem", "rot");
	assert_string_equal(tls_ctx_identity(tc2), "spiffe://example.org/ns/default/sa/web2");

	/* swap: drop the old context; the old connection still works */
	tls_ctx_unref(tc);
	tc = tc2;
	assert_int_equal(tls_write(c.tc, "old", 3), 3);
	assert_int_equal(read_verdict(s.tc, sv[0]), 3);

	pair(sv2);
	party_api(&s2, ts, sv2[0], true);
	party_api(&c2, tc, sv2[1], false);
	drive(&s2, &c2);
	assert_int_equal(s2.rc, 0);
	assert_int_equal(c2.rc, 0);
	assert_string_equal(tls_peer_id(s2.tc), "spiffe://example.org/ns/default/sa/web2");
	assert_int_equal(tls_write(c.tc, "again", 5), 5);
	assert_int_equal(tls_read(c2.tc, b, sizeof(b)), -EAGAIN);
	assert_int_equal(read_verdict(s.tc, sv[0]), 5);

	party_free(&s);
	party_free(&c);
	party_free(&s2);
	party_free(&c2);
	close(sv[0]);
	close(sv[1]);
	close(sv2[0]);
	close(sv2[1]);
	tls_ctx_unref(ts);
	tls_ctx_unref(tc);
}

/* In-memory material (what weftd does with minted certificates). */
static void test_load_buffers(void **state)
{
	struct tls_ctx_opts o = { 0 };
	struct tls_ctx *t;
	char err[512];
	FILE *f;
	static unsigned char ca[8192], cert[8192], key[8192];
	size_t calen, certlen, keylen;

	f = fopen(path("ca/ca.pem"), "r");
	calen = fread(ca, 1, sizeof(ca), f);
	fclose(f);
	f = fopen(path("cli.pem"), "r");
	certlen = fread(cert, 1, sizeof(cert), f);
	fclose(f);
	f = fopen(path("cli.key"), "r");
	keylen = fread(key, 1, sizeof(key), f);
	fclose(f);
	o.ca_pem = ca;
	o.ca_pem_len = calen;
	o.cert_pem = cert;
	o.cert_pem_len = certlen;
	o.key_pem = key;
	o.key_pem_len = keylen;
	t = tls_ctx_load(&o, err, sizeof(err));
	if (!t)
		fail_msg("%s", err);
	assert_string_equal(tls_ctx_identity(t), ID_CLI);
	assert_false(tls_ctx_files_changed(t));
	tls_ctx_unref(t);
	/* file and buffer for one input: refused */
	o.ca_file = path("ca/ca.pem");
	assert_null(tls_ctx_load(&o, err, sizeof(err)));
	assert_string_equal(err, "tls.ca: give a file or a buffer, not both");
}

/* --- context load failures ------------------------------------------------ */

struct load_fail {
	const char *ca, *cert, *key, *td;
	const char *msg; /* substring of the error */
};

static void test_load_fail(void **state)
{
	static const struct load_fail cases[] = {
		{ "ca/missing.pem", "cli.pem", "cli.key", NULL,
		  "missing.pem': cannot open: No such file or directory" },
		{ "ca/ca.pem", "cli.pem", "srv.key", NULL, "does not match the certificate" },
		{ "ca/ca.pem", "cli.key", "cli.key", NULL, "tls.cert '" },
		{ "cli.key", "cli.pem", "cli.key", NULL, "tls.ca '" },
		{ "ca/ca.pem", "cli.pem", "cli.pem", NULL, "tls.key '" },
		{ "ca/ca.pem", "ca/issuer.pem", "ca/issuer.key", NULL, "is a CA (CA:TRUE); it must be the leaf" },
		{ "ca/ca.pem", "dnsonly.pem", "dnsonly.key", NULL, "has no URI SAN" },
		{ "ca/ca.pem", "twouri.pem", "twouri.key", NULL, "has 2 URI SANs; an X.509-SVID has exactly one" },
		{ "ca/ca.pem", "otherdom.pem", "otherdom.key", TD,
		  "'spiffe://other.org/x' is not in trust domain 'example.org'" },
		{ "ca/ca.pem", "cli.pem", "cli.key", "Example.org", "trust domain has uppercase 'E'" },
		{ "ca", "cli.pem", "cli.key", NULL, "not a regular file" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_ctx_opts o = { 0 };
		char err[512] = "";
		struct tls_ctx *t;

		o.ca_file = path(cases[i].ca);
		o.cert_file = path(cases[i].cert);
		o.key_file = path(cases[i].key);
		o.trust_domain = cases[i].td;
		t = tls_ctx_load(&o, err, sizeof(err));
		if (t)
			fail_msg("case %zu loaded", i);
		if (!strstr(err, cases[i].msg))
			fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].msg);
	}
}

/* --- handshake failures -------------------------------------------------- */

enum kind { API, RAW };

struct hs_fail {
	const char *name;
	enum kind skind, ckind;
	const char *sleaf, *cleaf;  /* API leaves */
	struct raw_spec sraw, craw; /* RAW peers */
	const char *sca, *cca;      /* API trust bundles (default ca/ca.pem) */
	enum tls_fail sfail, cfail; /* expected (API sides only); client: after a read */
	int calert;                 /* alert the API client must have received, or -1 */
};

static void check_side(const struct hs_fail *t, const char *side, struct party *p, enum tls_fail want, int fd)
{
	enum tls_fail got;

	if (!p->tc)
		return;
	if (p->rc == 0 && !p->server && want != TLS_FAIL_NONE) {
		/* TLS 1.3: the client finished first; the server's verdict is an alert */
		ssize_t r = read_verdict(p->tc, fd);

		if (r >= 0)
			fail_msg("%s: %s read %zd, expected a failure", t->name, side, r);
	} else if (want != TLS_FAIL_NONE && p->rc == 0) {
		fail_msg("%s: %s handshake succeeded, expected %s", t->name, side, tls_fail_name(want));
	}
	got = tls_conn_fail(p->tc);
	if (got != want)
		fail_msg("%s: %s failed with %s (%s), expected %s", t->name, side, tls_fail_name(got),
			 tls_conn_detail(p->tc), tls_fail_name(want));
	if (want != TLS_FAIL_NONE)
		assert_true(tls_conn_detail(p->tc)[0] != '\0');
	/* a failed connection stays failed and hands out nothing */
	if (want != TLS_FAIL_NONE) {
		char id[TLS_ID_MAX], b[4];

		assert_true(tls_handshake(p->tc) < 0 && tls_handshake(p->tc) != -EAGAIN);
		assert_int_equal(tls_peer_identity(p->tc, id, sizeof(id)), -ENOTCONN);
		assert_true(tls_read(p->tc, b, sizeof(b)) < 0);
		assert_true(tls_write(p->tc, b, sizeof(b)) < 0);
	}
}

static void test_handshake_fail(void **state)
{
	static const struct hs_fail cases[] = {
		{ .name = "client cert from an unknown CA",
		  .sleaf = "srv",
		  .cleaf = "evil-cli",
		  .sfail = TLS_FAIL_UNKNOWN_CA,
		  .cfail = TLS_FAIL_PEER_ALERT,
		  .calert = -2 },
		{ .name = "server cert from an unknown CA",
		  .sleaf = "evil-srv",
		  .cleaf = "cli",
		  .sfail = TLS_FAIL_PEER_ALERT,
		  .cfail = TLS_FAIL_UNKNOWN_CA,
		  .calert = -1 },
		{ .name = "client trusts only another CA",
		  .sleaf = "srv",
		  .cleaf = "cli",
		  .cca = "evil/ca.pem",
		  .sfail = TLS_FAIL_PEER_ALERT,
		  .cfail = TLS_FAIL_UNKNOWN_CA,
		  .calert = -1 },
		{ .name = "expired client cert",
		  .sleaf = "srv",
		  .cleaf = "expired",
		  .sfail = TLS_FAIL_EXPIRED,
		  .cfail = TLS_FAIL_PEER_ALERT,
		  .calert = -2 },
		{ .name = "expired server cert",
		  .sleaf = "expired",
		  .cleaf = "srv",
		  .sfail = TLS_FAIL_PEER_ALERT,
		  .cfail = TLS_FAIL_EXPIRED,
		  .calert = -1 },
		{ .name = "not-yet-valid client cert",
		  .sleaf = "srv",
		  .cleaf = "future",
		  .sfail = TLS_FAIL_NOT_YET_VALID,
		  .cfail = TLS_FAIL_PEER_ALERT,
		  .calert = -2 },
		{ .name = "not-yet-valid server cert",
		  .sleaf = "future",
		  .cleaf = "cli",
		  .sfail = TLS_FAIL_PEER_ALERT,
		  .cfail = TLS_FAIL_NOT_YET_VALID,
		  .calert = -1 },
		{ .name = "client without a certificate",
		  .ckind = RAW,
		  .sleaf = "srv",
		  .craw = { .alpn = TLS_ALPN, .no_verify = true },
		  .sfail = TLS_FAIL_NO_CERT },
		{ .name = "client offers another ALPN",
		  .ckind = RAW,
		  .sleaf = "srv",
		  .craw = { .leaf = "cli", .alpn = "h2", .no_verify = true },
		  .sfail = TLS_FAIL_ALPN },
		{ .name = "client offers no ALPN",
		  .ckind = RAW,
		  .sleaf = "srv",
		  .craw = { .leaf = "cli", .no_verify = true },
		  .sfail = TLS_FAIL_ALPN },
		{ .name = "server answers no ALPN",
		  .skind = RAW,
		  .cleaf = "cli",
		  .sraw = { .leaf = "srv", .no_verify = true },
		  .cfail = TLS_FAIL_ALPN,
		  .calert = -1 },
		{ .name = "TLS 1.2-only client",
		  .ckind = RAW,
		  .sleaf = "srv",
		  .craw = { .tls12 = true, .leaf = "cli", .alpn = TLS_ALPN, .no_verify = true },
		  .sfail = TLS_FAIL_VERSION },
		{ .name = "TLS 1.2-only server",
		  .skind = RAW,
		  .cleaf = "cli",
		  .sraw = { .tls12 = true, .leaf = "srv", .alpn = TLS_ALPN, .no_verify = true },
		  .cfail = TLS_FAIL_PEER_ALERT,
		  .calert = 40 /* handshake_failure: no common version */ },
		{ .name = "client identity in another trust domain",
		  .ckind = RAW,
		  .sleaf = "srv",
		  .craw = { .leaf = "otherdom", .alpn = TLS_ALPN, .no_verify = true },
		  .sfail = TLS_FAIL_TRUST_DOMAIN },
		{ .name = "client cert with two URI SANs",
		  .ckind = RAW,
		  .sleaf = "srv",
		  .craw = { .leaf = "twouri", .alpn = TLS_ALPN, .no_verify = true },
		  .sfail = TLS_FAIL_BAD_IDENTITY },
		{ .name = "client cert without a URI SAN",
		  .ckind = RAW,
		  .sleaf = "srv",
		  .craw = { .leaf = "dnsonly", .alpn = TLS_ALPN, .no_verify = true },
		  .sfail = TLS_FAIL_BAD_IDENTITY },
		{ .name = "client presents a CA certificate",
		  .ckind = RAW,
		  .sleaf = "srv",
		  .craw = { .leaf = "ca/issuer", .alpn = TLS_ALPN, .no_verify = true },
		  .sfail = TLS_FAIL_BAD_CERT },
		{ .name = "server identity in another trust domain",
		  .skind = RAW,
		  .cleaf = "cli",
		  .sraw = { .leaf = "otherdom", .alpn = TLS_ALPN, .no_verify = true },
		  .cfail = TLS_FAIL_TRUST_DOMAIN,
		  .calert = -1 },
		{ .name = "server presents a CA certificate",
		  .skind = RAW,
		  .cleaf = "cli",
		  .sraw = { .leaf = "ca/issuer", .alpn = TLS_ALPN, .no_verify = true },
		  .cfail = TLS_FAIL_BAD_CERT,
		  .calert = -1 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct hs_fail *t = &cases[i];
		struct tls_ctx *ts = NULL, *tc = NULL;
		struct party s, c;
		int sv[2];

		pair(sv);
		if (t->skind == API) {
			ts = load(t->sca ? t->sca : "ca/ca.pem", t->sleaf);
			party_api(&s, ts, sv[0], true);
		} else {
			party_raw(&s, &t->sraw, sv[0], true);
		}
		if (t->ckind == API) {
			tc = load(t->cca ? t->cca : "ca/ca.pem", t->cleaf);
			party_api(&c, tc, sv[1], false);
		} else {
			party_raw(&c, &t->craw, sv[1], false);
		}
		drive(&s, &c);
		if (t->skind == API && t->sfail != TLS_FAIL_NONE && s.rc == 0)
			fail_msg("%s: server handshake succeeded", t->name);
		check_side(t, "server", &s, t->sfail, sv[0]);
		check_side(t, "client", &c, t->cfail, sv[1]);
		if (t->ckind == API && t->calert == -2 && tls_conn_alert(c.tc) < 0)
			fail_msg("%s: client saw no alert", t->name);
		if (t->ckind == API && t->calert > 0 && tls_conn_alert(c.tc) != t->calert)
			fail_msg("%s: client saw alert %d, expected %d", t->name, tls_conn_alert(c.tc), t->calert);
		if (t->skind == API && t->sfail == TLS_FAIL_PEER_ALERT && tls_conn_alert(s.tc) < 0)
			fail_msg("%s: server saw no alert", t->name);
		if (getenv("TEST_VERBOSE"))
			fprintf(stderr, "%-40s server=%s [%s] client=%s [%s]\n", t->name,
				s.tc ? tls_fail_name(tls_conn_fail(s.tc)) : "raw", s.tc ? tls_conn_detail(s.tc) : "",
				c.tc ? tls_fail_name(tls_conn_fail(c.tc)) : "raw", c.tc ? tls_conn_detail(c.tc) : "");
		party_free(&s);
		party_free(&c);
		close(sv[0]);
		close(sv[1]);
		tls_ctx_unref(ts);
		tls_ctx_unref(tc);
	}
}

/* Not TLS at all: the server fails at once, with no hang and no crash. */
static void test_garbage(void **state)
{
	static const struct {
		const char *name;
		const char *bytes;
		size_t len;
		enum tls_fail fail;
	} cases[] = {
		{ "HTTP request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, TLS_FAIL_PROTOCOL },
		{ "SSH banner", "SSH-2.0-OpenSSH_9.2\r\n", 21, TLS_FAIL_PROTOCOL },
		{ "zeros", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16, TLS_FAIL_PROTOCOL },
		{ "handshake record, nonsense body", "\x16\x03\x01\x00\x08\x01\x00\x00\x04\xff\xff\xff\xff", 13,
		  TLS_FAIL_PROTOCOL },
		{ "alert record", "\x15\x03\x03\x00\x02\x02\x28", 7, TLS_FAIL_PEER_ALERT },
		{ "truncated record header, then EOF", "\x16\x03\x01", 3, TLS_FAIL_CLOSED },
		{ "huge record length", "\x16\x03\x01\xff\xff", 5, TLS_FAIL_PROTOCOL },
	};
	struct tls_ctx *ts = load("ca/ca.pem", "srv");
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tls_conn *c;
		int sv[2], r = -EAGAIN, n;

		pair(sv);
		c = tls_conn_new(ts, sv[0], true);
		assert_non_null(c);
		assert_int_equal(send(sv[1], cases[i].bytes, cases[i].len, 0), (ssize_t)cases[i].len);
		if (cases[i].fail == TLS_FAIL_CLOSED)
			shutdown(sv[1], SHUT_WR);
		for (n = 0; n < 10 && r == -EAGAIN; n++) {
			struct pollfd pfd = { .fd = sv[0], .events = POLLIN };

			r = tls_handshake(c);
			if (r == -EAGAIN && poll(&pfd, 1, 500) == 0)
				break;
		}
		if (r == -EAGAIN)
			fail_msg("%s: still waiting", cases[i].name);
		if (tls_conn_fail(c) != cases[i].fail)
			fail_msg("%s: %s (%s), expected %s", cases[i].name, tls_fail_name(tls_conn_fail(c)),
				 tls_conn_detail(c), tls_fail_name(cases[i].fail));
		assert_true(r < 0);
		if (getenv("TEST_VERBOSE"))
			fprintf(stderr, "%-40s %d %s [%s]\n", cases[i].name, r, tls_fail_name(tls_conn_fail(c)),
				tls_conn_detail(c));
		tls_conn_free(c);
		close(sv[0]);
		close(sv[1]);
	}
	tls_ctx_unref(ts);
}

static void test_fail_names(void **state)
{
	int f;

	assert_string_equal(tls_fail_name(TLS_FAIL_UNKNOWN_CA), "unknown_ca");
	assert_string_equal(tls_fail_name(TLS_FAIL_EXPIRED), "cert_expired");
	assert_string_equal(tls_fail_name(TLS_FAIL_TIMEOUT), "timeout");
	assert_string_equal(tls_fail_name(TLS_FAIL__COUNT), "unknown");
	for (f = 0; f < TLS_FAIL__COUNT; f++) {
		const char *n = tls_fail_name((enum tls_fail)f);

		assert_non_null(n);
		assert_true(strspn(n, "abcdefghijklmnopqrstuvwxyz_") == strlen(n)); /* metric label */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_ok),
		cmocka_unit_test(test_data_and_close),
		cmocka_unit_test(test_pipelined_after_handshake),
		cmocka_unit_test(test_eof_after_handshake),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_load_buffers),
		cmocka_unit_test(test_load_fail),
		cmocka_unit_test(test_handshake_fail),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_fail_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
