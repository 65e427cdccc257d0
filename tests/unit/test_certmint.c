// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/certmint.c: mint leaves from a scripts/weft-ca node issuer, then
 * check them three ways: parsed back (SAN, dates, serial, CA:FALSE), verified
 * by openssl against the trust bundle (what other tools will see), and used
 * in a real mutual TLS handshake whose server reads the URI SAN back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
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

#include "tls/certmint.h"
#include "tls/tls.h"

#define ID "spiffe://example.org/ns/default/sa/web"

static char dir[256];
static unsigned char ca_pem[16384];
static size_t ca_len;

static const char *path(const char *name)
{
	static char bufs[8][512];
	static int i;
	char *b = bufs[i++ % 8];

	snprintf(b, 512, "%s/%s", dir, name);
	return b;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	const char *src = getenv("WEFT_SRCDIR");
	char ca[600];
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/weft-test-certmint.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return -1;
	snprintf(ca, sizeof(ca), "%s/scripts/weft-ca", src ? src : ".");
	if (access(ca, X_OK) != 0) {
		fprintf(stderr, "test_certmint: %s not found: run from the repository root or set WEFT_SRCDIR\n", ca);
		return -1;
	}
	if (run("%s init %s --trust-domain example.org >/dev/null", ca, path("ca")) ||
	    run("%s init %s --trust-domain example.org >/dev/null", ca, path("evil")) ||
	    run("%s issue %s spiffe://example.org/node/b %s >/dev/null", ca, path("ca"), path("srv")))
		return -1;
	f = fopen(path("ca/ca.pem"), "r");
	if (!f)
		return -1;
	ca_len = fread(ca_pem, 1, sizeof(ca_pem), f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (dir[0] && !getenv("TEST_KEEP"))
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static struct certmint_issuer *issuer(void)
{
	struct certmint_issuer *iss = NULL;
	char err[512];

	if (certmint_issuer_load(path("ca/issuer.pem"), path("ca/issuer.key"), &iss, err, sizeof(err)))
		fail_msg("%s", err);
	return iss;
}

static void mint(struct certmint_issuer *iss, const struct certmint_req *req, struct certmint_out *out)
{
	char err[512];

	if (certmint_issue(iss, req, out, err, sizeof(err)))
		fail_msg("certmint_issue: %s", err);
}

static int count(const unsigned char *s, size_t len, const char *needle)
{
	int n = 0;
	const char *p = (const char *)s;

	(void)len;
	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p++;
	}
	return n;
}

static void write_file(const char *name, const void *data, size_t len)
{
	FILE *f = fopen(path(name), "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* The single URI SAN of a parsed certificate. */
static void uri_san(WOLFSSL_X509 *x, char *buf, size_t len)
{
	WOLFSSL_GENERAL_NAMES *names = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int i, uris = 0;

	assert_non_null(names);
	buf[0] = '\0';
	for (i = 0; i < wolfSSL_sk_GENERAL_NAME_num(names); i++) {
		WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(names, i);

		assert_int_equal(gn->type, 6 /* URI */);
		uris++;
		snprintf(buf, len, "%.*s", wolfSSL_ASN1_STRING_length(gn->d.uniformResourceIdentifier),
			 (const char *)wolfSSL_ASN1_STRING_data(gn->d.uniformResourceIdentifier));
	}
	assert_int_equal(uris, 1);
	wolfSSL_GENERAL_NAMES_free(names);
}

static time_t x509_time(const WOLFSSL_ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	assert_int_equal(wolfSSL_ASN1_TIME_to_tm(t, &tm), WOLFSSL_SUCCESS);
	return timegm(&tm);
}

static void test_mint_pem(void **state)
{
	struct certmint_issuer *iss = issuer();
	struct certmint_req req = { .identity = ID };
	struct certmint_out a, b;
	WOLFSSL_X509 *x;
	WOLFSSL_CERT_MANAGER *cm;
	char san[TLS_ID_MAX];
	unsigned char serial[32];
	int slen = sizeof(serial);
	time_t now = time(NULL);

	mint(iss, &req, &a);
	assert_int_equal(a.cert_len, strlen((const char *)a.cert));
	assert_int_equal(count(a.cert, a.cert_len, "-----BEGIN CERTIFICATE-----"), 2); /* leaf + issuer */
	assert_int_equal(count(a.key, a.key_len, "-----BEGIN EC PRIVATE KEY-----"), 1);
	assert_true(a.not_before >= now - 61 && a.not_before <= now - 59);
	assert_int_equal(a.not_after - a.not_before, CERTMINT_DEFAULT_LIFETIME + CERTMINT_DEFAULT_BACKDATE);
	assert_int_equal(certmint_renew_at(a.not_before, a.not_after),
			 a.not_before + (a.not_after - a.not_before) * 2 / 3);

	x = wolfSSL_X509_load_certificate_buffer(a.cert, (int)a.cert_len, WOLFSSL_FILETYPE_PEM);
	assert_non_null(x);
	uri_san(x, san, sizeof(san));
	assert_string_equal(san, ID);
	assert_false(wolfSSL_X509_get_isCA(x));
	assert_int_equal(x509_time(wolfSSL_X509_get_notBefore(x)), a.not_before);
	assert_int_equal(x509_time(wolfSSL_X509_get_notAfter(x)), a.not_after);
	assert_int_equal(wolfSSL_X509_get_serial_number(x, serial, &slen), WOLFSSL_SUCCESS);
	assert_int_equal(slen, 16);
	assert_memory_equal(serial, a.serial, 16);
	assert_true(serial[0] & 0x40);
	assert_false(serial[0] & 0x80);
	wolfSSL_X509_free(x);

	/* verifies against root + issuer in wolfSSL's certificate manager */
	cm = wolfSSL_CertManagerNew();
	assert_non_null(cm);
	assert_int_equal(wolfSSL_CertManagerLoadCA(cm, path("ca/ca.pem"), NULL), WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_CertManagerLoadCA(cm, path("ca/issuer.pem"), NULL), WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_CertManagerVerifyBuffer(cm, a.cert, (long)a.cert_len, WOLFSSL_FILETYPE_PEM),
			 WOLFSSL_SUCCESS);
	wolfSSL_CertManagerFree(cm);

	/* a second mint: new key, new serial */
	mint(iss, &req, &b);
	assert_memory_not_equal(a.serial, b.serial, 16);
	assert_true(a.key_len != b.key_len || memcmp(a.key, b.key, a.key_len) != 0);
	certmint_out_free(&a);
	certmint_out_free(&b);
	assert_null(a.cert);
	certmint_out_free(&a); /* twice is fine */
	certmint_issuer_free(iss);
}

/* What openssl (and so testssl.sh, curl, every other tool) makes of a minted leaf. */
static void test_openssl_agrees(void **state)
{
	struct certmint_issuer *iss = issuer();
	struct certmint_req req = { .identity = ID, .no_chain = true };
	struct certmint_out o;
	char txt[8192];
	FILE *f;
	size_t n;

	mint(iss, &req, &o);
	assert_int_equal(count(o.cert, o.cert_len, "-----BEGIN CERTIFICATE-----"), 1);
	write_file("minted.pem", o.cert, o.cert_len);
	write_file("minted.key", o.key, o.key_len);
	assert_int_equal(run("openssl verify -CAfile %s -untrusted %s %s >/dev/null 2>&1", path("ca/ca.pem"),
			     path("ca/issuer.pem"), path("minted.pem")),
			 0);
	assert_int_equal(run("openssl verify -purpose sslclient -CAfile %s -untrusted %s %s >/dev/null 2>&1",
			     path("ca/ca.pem"), path("ca/issuer.pem"), path("minted.pem")),
			 0);
	assert_int_equal(run("openssl verify -purpose sslserver -CAfile %s -untrusted %s %s >/dev/null 2>&1",
			     path("ca/ca.pem"), path("ca/issuer.pem"), path("minted.pem")),
			 0);
	/* the key is the certificate's */
	assert_int_equal(run("test \"$(openssl x509 -in %s -noout -pubkey)\" = \"$(openssl pkey -in %s -pubout)\"",
			     path("minted.pem"), path("minted.key")),
			 0);
	assert_int_equal(run("openssl x509 -in %s -noout -text > %s", path("minted.pem"), path("minted.txt")), 0);
	f = fopen(path("minted.txt"), "r");
	assert_non_null(f);
	n = fread(txt, 1, sizeof(txt) - 1, f);
	txt[n] = '\0';
	fclose(f);
	/* non-critical: wolfSSL 5.5.4 has no knob for it; RFC 5280 allows either in a leaf */
	assert_non_null(strstr(txt, "X509v3 Basic Constraints: \n                CA:FALSE"));
	assert_non_null(strstr(txt, "X509v3 Key Usage: critical\n                Digital Signature\n"));
	assert_non_null(strstr(txt, "TLS Web Server Authentication, TLS Web Client Authentication"));
	assert_non_null(strstr(txt, "URI:" ID "\n"));
	assert_non_null(strstr(txt, "Subject: O = weft, CN = " ID "\n"));
	assert_non_null(strstr(txt, "X509v3 Subject Key Identifier"));
	assert_non_null(strstr(txt, "X509v3 Authority Key Identifier"));
	assert_non_null(strstr(txt, "ASN1 OID: prime256v1"));
	assert_non_null(strstr(txt, "Signature Algorithm: ecdsa-with-SHA256"));
	assert_null(strstr(txt, "DNS:"));
	certmint_out_free(&o);
	certmint_issuer_free(iss);
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* Drives both handshakes; returns the server's result (client's in *crc). */
static int handshake(struct tls_conn *s, struct tls_conn *c, int sv[2], int *crc)
{
	int rs = -EAGAIN, rc = -EAGAIN, i;

	for (i = 0; i < 1000 && (rs == -EAGAIN || rc == -EAGAIN); i++) {
		struct pollfd pfd[2] = { { .fd = sv[0], .events = POLLIN }, { .fd = sv[1], .events = POLLIN } };

		if (rs == -EAGAIN)
			rs = tls_handshake(s);
		if (rc == -EAGAIN)
			rc = tls_handshake(c);
		if ((rs == -EAGAIN) != (rc == -EAGAIN) && poll(pfd, 2, 1000) == 0)
			break;
		if (rs == -EAGAIN && rc == -EAGAIN)
			poll(pfd, 2, 1000);
	}
	*crc = rc;
	return rs;
}

static struct tls_ctx *ctx_from(const struct certmint_out *o)
{
	struct tls_ctx_opts opts = { .ca_pem = ca_pem, .ca_pem_len = ca_len };
	struct tls_ctx *t;
	char err[512];

	opts.cert_pem = o->cert;
	opts.cert_pem_len = o->cert_len;
	opts.key_pem = o->key;
	opts.key_pem_len = o->key_len;
	t = tls_ctx_load(&opts, err, sizeof(err));
	if (!t)
		fail_msg("tls_ctx_load(minted): %s", err);
	return t;
}

static struct tls_ctx *ctx_files(const char *leaf)
{
	struct tls_ctx_opts opts = { 0 };
	char cert[64], key[64], err[512];
	struct tls_ctx *t;

	snprintf(cert, sizeof(cert), "%s.pem", leaf);
	snprintf(key, sizeof(key), "%s.key", leaf);
	opts.ca_file = path("ca/ca.pem");
	opts.cert_file = path(cert);
	opts.key_file = path(key);
	t = tls_ctx_load(&opts, err, sizeof(err));
	if (!t)
		fail_msg("%s", err);
	return t;
}

/* Minted client and minted server, both from memory, identity read from the peer's certificate. */
static void test_mint_handshake(void **state)
{
	struct certmint_issuer *iss = issuer();
	struct certmint_req creq = { .identity = ID }, sreq = { .identity = "spiffe://example.org/node/a" };
	struct certmint_out co, so;
	struct tls_ctx *tc, *ts, *tfile;
	struct tls_conn *c, *s;
	int sv[2], rc;

	mint(iss, &creq, &co);
	mint(iss, &sreq, &so);
	tc = ctx_from(&co);
	ts = ctx_from(&so);
	assert_int_equal(tls_cert_not_after(tc), co.not_after);
	assert_string_equal(tls_ctx_identity(tc), ID);

	pair(sv);
	s = tls_conn_new(ts, sv[0], true);
	c = tls_conn_new(tc, sv[1], false);
	assert_int_equal(handshake(s, c, sv, &rc), 0);
	assert_int_equal(rc, 0);
	assert_string_equal(tls_peer_id(s), ID);
	assert_string_equal(tls_peer_id(c), "spiffe://example.org/node/a");
	tls_conn_free(s);
	tls_conn_free(c);
	close(sv[0]);
	close(sv[1]);

	/* a minted client against a server with a weft-ca leaf from files */
	tfile = ctx_files("srv");
	pair(sv);
	s = tls_conn_new(tfile, sv[0], true);
	c = tls_conn_new(tc, sv[1], false);
	assert_int_equal(handshake(s, c, sv, &rc), 0);
	assert_int_equal(rc, 0);
	assert_string_equal(tls_peer_id(s), ID);
	tls_conn_free(s);
	tls_conn_free(c);
	close(sv[0]);
	close(sv[1]);

	tls_ctx_unref(tfile);
	tls_ctx_unref(tc);
	tls_ctx_unref(ts);
	certmint_out_free(&co);
	certmint_out_free(&so);
	certmint_issuer_free(iss);
}

/* Expired and not-yet-valid minted leaves are refused by the peer, with the right reason. */
static void test_mint_dates(void **state)
{
	static const struct {
		long shift;
		uint32_t life;
		enum tls_fail want;
	} cases[] = {
		{ -3 * 86400, 86400, TLS_FAIL_EXPIRED },
		{ 2 * 86400, 86400, TLS_FAIL_NOT_YET_VALID },
		{ 0, 3600, TLS_FAIL_NONE },
	};
	struct certmint_issuer *iss = issuer();
	struct tls_ctx *ts = ctx_files("srv");
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct certmint_req req = { .identity = ID, .lifetime_s = cases[i].life };
		struct certmint_out o;
		struct tls_ctx *tc;
		struct tls_conn *s, *c;
		int sv[2], rc, rs;

		req.now = time(NULL) + cases[i].shift;
		mint(iss, &req, &o);
		assert_int_equal(o.not_after - o.not_before, cases[i].life + CERTMINT_DEFAULT_BACKDATE);
		tc = ctx_from(&o);
		pair(sv);
		s = tls_conn_new(ts, sv[0], true);
		c = tls_conn_new(tc, sv[1], false);
		rs = handshake(s, c, sv, &rc);
		if (tls_conn_fail(s) != cases[i].want)
			fail_msg("case %zu: %s (%s)", i, tls_fail_name(tls_conn_fail(s)), tls_conn_detail(s));
		assert_int_equal(rs == 0, cases[i].want == TLS_FAIL_NONE);
		tls_conn_free(s);
		tls_conn_free(c);
		close(sv[0]);
		close(sv[1]);
		tls_ctx_unref(tc);
		certmint_out_free(&o);
	}
	tls_ctx_unref(ts);
	certmint_issuer_free(iss);
}

/* The issuer of another CA: the peer does not know it. */
static void test_mint_foreign_issuer(void **state)
{
	struct certmint_issuer *iss = NULL;
	struct certmint_req req = { .identity = ID };
	struct certmint_out o;
	struct tls_ctx *ts = ctx_files("srv"), *tc;
	struct tls_conn *s, *c;
	char err[512];
	int sv[2], rc;

	if (certmint_issuer_load(path("evil/issuer.pem"), path("evil/issuer.key"), &iss, err, sizeof(err)))
		fail_msg("%s", err);
	mint(iss, &req, &o);
	tc = ctx_from(&o);
	pair(sv);
	s = tls_conn_new(ts, sv[0], true);
	c = tls_conn_new(tc, sv[1], false);
	assert_true(handshake(s, c, sv, &rc) < 0);
	assert_int_equal(tls_conn_fail(s), TLS_FAIL_UNKNOWN_CA);
	tls_conn_free(s);
	tls_conn_free(c);
	close(sv[0]);
	close(sv[1]);
	tls_ctx_unref(tc);
	tls_ctx_unref(ts);
	certmint_out_free(&o);
	certmint_issuer_free(iss);
}

static void test_mint_der_and_long_id(void **state)
{
	struct certmint_issuer *iss = issuer();
	struct certmint_req req = { .format = CERTMINT_DER };
	struct certmint_out o;
	WOLFSSL_X509 *x;
	char id[2049], san[TLS_ID_MAX];
	size_t i;

	/* the longest valid SPIFFE ID: 2048 bytes, the SAN length takes two octets */
	strcpy(id, "spiffe://example.org/");
	for (i = strlen(id); i < 2048; i++)
		id[i] = (i % 64 == 0) ? '/' : 'a';
	id[2048] = '\0';
	req.identity = id;
	mint(iss, &req, &o);
	assert_int_equal(o.cert[0], 0x30); /* DER SEQUENCE */
	x = wolfSSL_X509_load_certificate_buffer(o.cert, (int)o.cert_len, WOLFSSL_FILETYPE_ASN1);
	assert_non_null(x);
	uri_san(x, san, sizeof(san));
	assert_string_equal(san, id);
	wolfSSL_X509_free(x);
	certmint_out_free(&o);

	/* a short one, DER; and 300 bytes (one-octet long form) in PEM */
	req.identity = "spiffe://e.org/x";
	mint(iss, &req, &o);
	x = wolfSSL_X509_load_certificate_buffer(o.cert, (int)o.cert_len, WOLFSSL_FILETYPE_ASN1);
	assert_non_null(x);
	uri_san(x, san, sizeof(san));
	assert_string_equal(san, "spiffe://e.org/x");
	wolfSSL_X509_free(x);
	certmint_out_free(&o);
	id[200] = '\0';
	req.identity = id;
	req.format = CERTMINT_PEM;
	mint(iss, &req, &o);
	x = wolfSSL_X509_load_certificate_buffer(o.cert, (int)o.cert_len, WOLFSSL_FILETYPE_PEM);
	assert_non_null(x);
	uri_san(x, san, sizeof(san));
	assert_string_equal(san, id);
	wolfSSL_X509_free(x);
	certmint_out_free(&o);
	certmint_issuer_free(iss);
}

static void test_issue_fail(void **state)
{
	static const struct {
		const char *id;
		uint32_t life, back;
		const char *msg;
	} cases[] = {
		{ NULL, 0, 0, "mint: no identity" },
		{ "spiffe://Example.org/x", 0, 0, "trust domain has uppercase 'E'" },
		{ "https://example.org/x", 0, 0, "does not start with 'spiffe://'" },
		{ "spiffe://example.org/x/", 0, 0, "ends with '/'" },
		{ ID, 30, 0, "lifetime 30 s is outside" },
		{ ID, CERTMINT_MAX_LIFETIME + 1, 0, "is outside 60 s" },
		{ ID, 3600, 3600, "backdate 3600 s is not shorter than the lifetime" },
	};
	struct certmint_issuer *iss = issuer();
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct certmint_req req = { .identity = cases[i].id,
					    .lifetime_s = cases[i].life,
					    .backdate_s = cases[i].back };
		struct certmint_out o;
		char err[512] = "";

		memset(&o, 0xa5, sizeof(o));
		assert_int_equal(certmint_issue(iss, &req, &o, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].msg);
		assert_null(o.cert);
		assert_null(o.key);
	}
	{
		/* a leaf never outlives its issuer: mint "now" = a day before the issuer expires */
		struct certmint_req req = { .identity = ID, .lifetime_s = 7 * 86400 };
		struct certmint_out o;

		req.now = certmint_issuer_not_after(iss) - 86400;
		mint(iss, &req, &o);
		assert_int_equal(o.not_after, certmint_issuer_not_after(iss));
		certmint_out_free(&o);
		req.now = certmint_issuer_not_after(iss) + 10;
		assert_int_equal(certmint_issue(iss, &req, &o, NULL, 0), -EINVAL);
	}
	certmint_issuer_free(iss);
}

static void test_issuer_load_fail(void **state)
{
	static const struct {
		const char *cert, *key, *msg;
	} cases[] = {
		{ "ca/nope.pem", "ca/issuer.key", "nope.pem': cannot open: No such file or directory" },
		{ "ca/issuer.pem", "ca/nope.key", "nope.key': cannot open: No such file or directory" },
		{ "ca/issuer.pem", "ca/root.key", "does not match the certificate in" },
		{ "ca/root.pem", "ca/issuer.key", "does not match the certificate in" },
		{ "srv.pem", "srv.key", "not a CA (basicConstraints CA:TRUE)" },
		{ "ca/issuer.key", "ca/issuer.key", "no PEM certificate" },
		{ "ca/issuer.pem", "ca/issuer.pem", "not a PEM EC private key" },
		{ "ca", "ca/issuer.key", "not a regular file" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct certmint_issuer *iss = (void *)1;
		char err[512] = "";

		assert_true(certmint_issuer_load(path(cases[i].cert), path(cases[i].key), &iss, err, sizeof(err)) < 0);
		assert_null(iss);
		if (!strstr(err, cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].msg);
	}
	/* the root works as an issuer too (with its own key): same code path */
	{
		struct certmint_issuer *iss = NULL;

		assert_int_equal(certmint_issuer_load(path("ca/root.pem"), path("ca/root.key"), &iss, NULL, 0), 0);
		certmint_issuer_free(iss);
	}
	/* a SEC1 key works as well as PKCS#8 */
	assert_int_equal(run("openssl ec -in %s -out %s 2>/dev/null", path("ca/issuer.key"), path("issuer-sec1.key")),
			 0);
	{
		struct certmint_issuer *iss = NULL;
		char err[512];

		if (certmint_issuer_load(path("ca/issuer.pem"), path("issuer-sec1.key"), &iss, err, sizeof(err)))
			fail_msg("%s", err);
		certmint_issuer_free(iss);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mint_pem),
		cmocka_unit_test(test_openssl_agrees),
		cmocka_unit_test(test_mint_handshake),
		cmocka_unit_test(test_mint_dates),
		cmocka_unit_test(test_mint_foreign_issuer),
		cmocka_unit_test(test_mint_der_and_long_id),
		cmocka_unit_test(test_issue_fail),
		cmocka_unit_test(test_issuer_load_fail),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
