// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Mutual TLS between agents with wolfSSL (Debian's libwolfssl 5.5.x, built
 * with TLS 1.3, ALPN, OPENSSL_EXTRA/ALL, KEEP_PEER_CERT, ALT_NAMES and
 * WOLFSSL_ALWAYS_VERIFY_CB; see docs/security.md).
 *
 * How the pieces fit:
 * - A tls_ctx holds two WOLFSSL_CTX (server and client side) built from the
 *   same bytes: files are read once into memory and both sides load those
 *   bytes, so a rotation on disk halfway through a load cannot give the two
 *   sides different certificates.
 * - Each tls_conn has its own I/O callbacks on the raw fd (recv/send with
 *   MSG_NOSIGNAL), so that EOF, reset and EAGAIN are told apart exactly, and
 *   a verify callback that runs for every certificate of the peer chain: it
 *   records the first failure reason wolfSSL reports, and checks the leaf for
 *   the X.509-SVID rules (not a CA, one URI SAN, valid SPIFFE ID, our trust
 *   domain) while the handshake is still running, so a bad peer is refused
 *   with an alert rather than after the fact.
 * - After the handshake: ALPN and TLS version are checked once more, and the
 *   peer identity recorded by the verify callback is what tls_peer_identity
 *   returns. Nothing the peer sends later can change it.
 */
#include "lib/file.h"
#include "lib/log.h"
#include "tls/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include "codec/identity.h"

#if !defined(WOLFSSL_TLS13) || !defined(HAVE_ALPN) || !defined(OPENSSL_EXTRA) || !defined(KEEP_PEER_CERT)
#error "weft needs wolfSSL with TLS 1.3, ALPN, OPENSSL_EXTRA and KEEP_PEER_CERT (Debian's libwolfssl-dev has them)"
#endif
#ifndef WOLFSSL_ALWAYS_VERIFY_CB
#error "weft checks the peer identity in the verify callback: wolfSSL must call it on success too (WOLFSSL_ALWAYS_VERIFY_CB)"
#endif

/* AEAD only. The library also knows CCM-8 and integrity-only suites (Debian
 * builds HAVE_NULL_CIPHER): naming the list keeps them out. */
/*
 * ChaCha20-Poly1305 first: Debian's wolfSSL is built without AES-NI, and on
 * this project's VM its ChaCha20-Poly1305 moves 193 MB/s against 89 MB/s for
 * AES-128-GCM (16 KiB records, one core): the suite a peer picks from our
 * order (weft on both sides of the node link; Go's API server when the client
 * prefers ChaCha20) decides how much CPU every proxied byte costs.
 */
#define TLS_CIPHERS "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384"
/* HTTPS client: the same TLS 1.3 suites, and for TLS 1.2 servers (API servers
 * speak both) ECDHE with AEAD only: forward secrecy, no CBC, no static RSA. */
#define TLS_HTTPS_CIPHERS                                                                                      \
	TLS_CIPHERS ":ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256" \
		    ":ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
/* Largest file read as a CA bundle, certificate chain or key. */
#define TLS_FILE_MAX (1024 * 1024)
/* One TLS record of plaintext: the most tls_write takes per call. */
#define TLS_WRITE_MAX 16384
#define TLS_DETAIL_MAX 384
#define ALERT_FATAL 2
/* GeneralName tag [6] uniformResourceIdentifier (GEN_URI of the OpenSSL
 * compatibility headers, which would bring their macros in with it). */
#define TLS_GEN_URI 6
#define TLS_GEN_DNS 2
#define TLS_GEN_IPADD 7

struct tls_stamp {
	char *path; /* NULL: loaded from a buffer */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct tls_ctx {
	atomic_int refs;
	bool https; /* an HTTPS client context (tls_https_ctx_load): cli only, no certificate */
	WOLFSSL_CTX *srv, *cli;
	char id[TLS_ID_MAX];
	char td[SPIFFE_TD_MAX + 1];
	time_t not_before, not_after;
	struct tls_stamp stamps[3]; /* ca, cert, key */
};

struct tls_conn {
	struct tls_ctx *ctx;
	WOLFSSL *ssl;
	int fd;
	bool server, done, failed, io_eof;
	enum tls_want want;
	enum tls_fail fail;
	int ret;             /* negative errno returned once failed */
	int io_errno;        /* errno of the last failed recv/send */
	int alert;           /* last fatal alert received, or -1 */
	enum tls_fail vfail; /* first failure seen by the verify callback */
	char *peer_id;       /* set by the verify callback when the leaf passes */
	char detail[TLS_DETAIL_MAX];
	/* HTTPS client: the address the server's certificate must name */
	unsigned char server_ip[16];
	size_t server_ip_len; /* 4 or 16 */
	char server_ip_str[INET6_ADDRSTRLEN];
};

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int tls_init_rc;

static void tls_global_init(void)
{
	tls_init_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

static const char *wolf_strerror(int e, char *buf, size_t len)
{
	wolfSSL_ERR_error_string_n((unsigned long)e, buf, len);
	return buf;
}

const char *tls_fail_name(enum tls_fail f)
{
	static const char *const names[TLS_FAIL__COUNT] = {
		[TLS_FAIL_NONE] = "none",
		[TLS_FAIL_UNKNOWN_CA] = "unknown_ca",
		[TLS_FAIL_EXPIRED] = "cert_expired",
		[TLS_FAIL_NOT_YET_VALID] = "cert_not_yet_valid",
		[TLS_FAIL_BAD_CERT] = "bad_cert",
		[TLS_FAIL_NO_CERT] = "no_peer_cert",
		[TLS_FAIL_BAD_IDENTITY] = "bad_identity",
		[TLS_FAIL_TRUST_DOMAIN] = "wrong_trust_domain",
		[TLS_FAIL_ALPN] = "alpn",
		[TLS_FAIL_VERSION] = "protocol_version",
		[TLS_FAIL_PROTOCOL] = "protocol",
		[TLS_FAIL_PEER_ALERT] = "peer_alert",
		[TLS_FAIL_CLOSED] = "closed",
		[TLS_FAIL_IO] = "io",
		[TLS_FAIL_INTERNAL] = "internal",
		[TLS_FAIL_TIMEOUT] = "timeout",
	};

	return (unsigned)f < TLS_FAIL__COUNT ? names[f] : "unknown";
}

/* One line for people: what the reason means (log detail without a better one). */
static const char *fail_text(enum tls_fail f)
{
	switch (f) {
	case TLS_FAIL_NONE:
		return "no failure";
	case TLS_FAIL_UNKNOWN_CA:
		return "peer certificate is not signed by a trusted CA";
	case TLS_FAIL_EXPIRED:
		return "peer certificate has expired";
	case TLS_FAIL_NOT_YET_VALID:
		return "peer certificate is not valid yet";
	case TLS_FAIL_BAD_CERT:
		return "peer certificate is unacceptable";
	case TLS_FAIL_NO_CERT:
		return "peer presented no certificate";
	case TLS_FAIL_BAD_IDENTITY:
		return "peer certificate has no valid SPIFFE ID";
	case TLS_FAIL_TRUST_DOMAIN:
		return "peer identity is in another trust domain";
	case TLS_FAIL_ALPN:
		return "peer does not speak ALPN \"" TLS_ALPN "\"";
	case TLS_FAIL_VERSION:
		return "peer does not speak TLS 1.3";
	case TLS_FAIL_PROTOCOL:
		return "not TLS, or a TLS protocol violation";
	case TLS_FAIL_PEER_ALERT:
		return "peer refused us";
	case TLS_FAIL_CLOSED:
		return "peer closed the connection";
	case TLS_FAIL_IO:
		return "socket error";
	case TLS_FAIL_INTERNAL:
		return "internal error (out of memory?)";
	case TLS_FAIL_TIMEOUT:
		return "handshake timed out";
	case TLS_FAIL__COUNT:
		break;
	}
	return "unknown failure";
}

static const char *alert_name(int a)
{
	switch (a) {
	case 0:
		return "close_notify";
	case 10:
		return "unexpected_message";
	case 20:
		return "bad_record_mac";
	case 22:
		return "record_overflow";
	case 40:
		return "handshake_failure";
	case 42:
		return "bad_certificate";
	case 43:
		return "unsupported_certificate";
	case 44:
		return "certificate_revoked";
	case 45:
		return "certificate_expired";
	case 46:
		return "certificate_unknown";
	case 47:
		return "illegal_parameter";
	case 48:
		return "unknown_ca";
	case 49:
		return "access_denied";
	case 50:
		return "decode_error";
	case 51:
		return "decrypt_error";
	case 70:
		return "protocol_version";
	case 71:
		return "insufficient_security";
	case 80:
		return "internal_error";
	case 86:
		return "inappropriate_fallback";
	case 90:
		return "user_canceled";
	case 109:
		return "missing_extension";
	case 110:
		return "unsupported_extension";
	case 112:
		return "unrecognized_name";
	case 116:
		return "certificate_required";
	case 120:
		return "no_application_protocol";
	}
	return "unknown alert";
}

/* --- certificates ----------------------------------------------------------- */

static time_t asn1_time(const WOLFSSL_ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!t || wolfSSL_ASN1_TIME_to_tm(t, &tm) != WOLFSSL_SUCCESS)
		return 0;
	return timegm(&tm);
}

/* "2026-11-27T10:12:18Z", or "?" for 0 */
static void fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (!t || !gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "?");
}

/*
 * The SPIFFE ID of an X.509-SVID: exactly one URI SAN, a valid SPIFFE ID.
 * Copies it into buf and returns 0, or returns -EINVAL with the reason in why.
 */
static int x509_spiffe_id(WOLFSSL_X509 *x, char *buf, size_t len, char *why, size_t whylen)
{
	WOLFSSL_GENERAL_NAMES *names;
	const unsigned char *uri = NULL;
	int i, n, uris = 0, urilen = 0, ret = -EINVAL;
	char reason[256];

	names = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (!names) {
		err_set(why, whylen, "certificate has no subjectAltName (a SPIFFE ID is a URI SAN)");
		return -EINVAL;
	}
	n = wolfSSL_sk_GENERAL_NAME_num(names);
	for (i = 0; i < n; i++) {
		WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(names, i);

		if (!gn || gn->type != TLS_GEN_URI || !gn->d.uniformResourceIdentifier)
			continue;
		if (uris++ == 0) {
			uri = wolfSSL_ASN1_STRING_data(gn->d.uniformResourceIdentifier);
			urilen = wolfSSL_ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		}
	}
	if (uris == 0) {
		err_set(why, whylen, "certificate has no URI SAN (a SPIFFE ID is a URI SAN)");
		goto out;
	}
	if (uris > 1) {
		err_set(why, whylen, "certificate has %d URI SANs; an X.509-SVID has exactly one", uris);
		goto out;
	}
	if (!uri || urilen <= 0 || spiffe_id_check((const char *)uri, (size_t)urilen, reason, sizeof(reason))) {
		err_set(why, whylen, "URI SAN %s", uri ? reason : "is empty");
		goto out;
	}
	if ((size_t)urilen + 1 > len) {
		err_set(why, whylen, "URI SAN too long");
		goto out;
	}
	memcpy(buf, uri, (size_t)urilen);
	buf[urilen] = '\0';
	ret = 0;
out:
	wolfSSL_GENERAL_NAMES_free(names);
	return ret;
}

/*
 * Does the PEM private key belong to the certificate? Compares the public
 * point derived from the key with the certificate's public key.
 * wolfSSL_CTX_check_private_key cannot be used: wolfSSL 5.5.4 returns success
 * for a mismatched ECC pair. ECDSA keys only (all weft issues); 0, -EINVAL
 * (mismatch, or not an EC key: why says which), -ENOMEM.
 */
static int key_matches_cert(WOLFSSL_X509 *x, const unsigned char *key_pem, size_t key_len, char *why, size_t whylen)
{
	unsigned char *der = NULL, spki[512], a[160], b[160];
	int derlen, spkilen = (int)sizeof(spki), ret = -EINVAL;
	word32 idx = 0, alen = sizeof(a), blen = sizeof(b);
	ecc_key priv, pub;
	bool priv_init = false, pub_init = false;

	der = malloc(key_len);
	if (!der) {
		err_set(why, whylen, "out of memory");
		return -ENOMEM;
	}
	derlen = wc_KeyPemToDer(key_pem, (int)key_len, der, (int)key_len, NULL);
	if (derlen <= 0) {
		err_set(why, whylen, "not a PEM private key");
		goto out;
	}
	if (wc_GetPkcs8TraditionalOffset(der, &idx, (word32)derlen) < 0)
		idx = 0; /* SEC1 "EC PRIVATE KEY", not PKCS#8 */
	if (wc_ecc_init(&priv) != 0)
		goto out;
	priv_init = true;
	if (wc_EccPrivateKeyDecode(der, &idx, &priv, (word32)derlen) != 0) {
		err_set(why, whylen, "not an EC private key (weft uses ECDSA P-256 keys)");
		goto out;
	}
	if (priv.type == ECC_PRIVATEKEY_ONLY) {
		WC_RNG rng;

		if (wc_InitRng(&rng) != 0)
			goto out;
		ret = wc_ecc_make_pub_ex(&priv, NULL, &rng);
		wc_FreeRng(&rng);
		if (ret != 0) {
			ret = -EINVAL;
			err_set(why, whylen, "cannot derive the public key");
			goto out;
		}
		ret = -EINVAL;
	}
	if (wolfSSL_X509_get_pubkey_buffer(x, spki, &spkilen) != WOLFSSL_SUCCESS || wc_ecc_init(&pub) != 0) {
		err_set(why, whylen, "cannot read the certificate's public key");
		goto out;
	}
	pub_init = true;
	idx = 0;
	if (wc_EccPublicKeyDecode(spki, &idx, &pub, (word32)spkilen) != 0) {
		err_set(why, whylen, "the certificate's key is not an EC key");
		goto out;
	}
	if (wc_ecc_export_x963(&priv, a, &alen) != 0 || wc_ecc_export_x963(&pub, b, &blen) != 0 || alen != blen ||
	    memcmp(a, b, alen) != 0) {
		err_set(why, whylen, "does not match the certificate");
		goto out;
	}
	ret = 0;
out:
	if (priv_init)
		wc_ecc_free(&priv);
	if (pub_init)
		wc_ecc_free(&pub);
	explicit_bzero(der, key_len);
	free(der);
	return ret;
}

static void x509_subject(WOLFSSL_X509 *x, char *buf, int len)
{
	WOLFSSL_X509_NAME *name = x ? wolfSSL_X509_get_subject_name(x) : NULL;

	buf[0] = '\0';
	if (!name || !wolfSSL_X509_NAME_oneline(name, buf, len))
		snprintf(buf, (size_t)len, "?");
}

/* --- I/O callbacks ------------------------------------------------------------ */

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_conn *c = arg;
	ssize_t n;

	(void)ssl;
	do
		n = recv(c->fd, buf, (size_t)sz, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return (int)n;
	if (n == 0) {
		c->io_eof = true;
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	c->io_errno = errno;
	return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_conn *c = arg;
	ssize_t n;

	(void)ssl;
	do
		n = send(c->fd, buf, (size_t)sz, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return WOLFSSL_CBIO_ERR_WANT_WRITE;
	c->io_errno = errno;
	if (errno == EPIPE)
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
}

/* --- verification ------------------------------------------------------------ */

static enum tls_fail fail_of_code(int e)
{
	switch (e) {
	case ASN_NO_SIGNER_E:
		return TLS_FAIL_UNKNOWN_CA;
	case ASN_AFTER_DATE_E:
		return TLS_FAIL_EXPIRED;
	case ASN_BEFORE_DATE_E:
		return TLS_FAIL_NOT_YET_VALID;
	case NO_PEER_CERT:
		return TLS_FAIL_NO_CERT;
	case UNKNOWN_ALPN_PROTOCOL_NAME_E:
		return TLS_FAIL_ALPN;
	case VERSION_ERROR:
		return TLS_FAIL_VERSION;
	case FATAL_ERROR:
		return TLS_FAIL_PEER_ALERT;
	case SOCKET_PEER_CLOSED_E:
		return TLS_FAIL_CLOSED;
	case SOCKET_ERROR_E:
		return TLS_FAIL_IO;
	case MEMORY_E:
	case MEMORY_ERROR:
		return TLS_FAIL_INTERNAL;
	case VERIFY_CERT_ERROR:
		return TLS_FAIL_BAD_CERT;
	}
	/* wolfCrypt's certificate parsing and checking errors (ASN_*) */
	if (e <= ASN_PARSE_E && e >= ASN_PATHLEN_INV_E)
		return TLS_FAIL_BAD_CERT;
	return TLS_FAIL_PROTOCOL;
}

/*
 * The verify callback's error: wolfSSL built with OPENSSL_EXTRA translates
 * the usual ones to OpenSSL's X509_V_ERR_* (positive); the rest stay wolfSSL
 * codes (negative). Every failure here is about a certificate.
 */
static enum tls_fail fail_of_verify(int e, WOLFSSL_X509 *x)
{
	enum tls_fail f;
	time_t now, nb, na;

	switch (e) {
	case X509_V_ERR_CERT_NOT_YET_VALID:
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
	case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
		/* 5.5.4 reports an expired certificate as "error in notAfter field"
		 * (14): decide from the dates themselves */
		now = time(NULL);
		nb = x ? asn1_time(wolfSSL_X509_get_notBefore(x)) : 0;
		na = x ? asn1_time(wolfSSL_X509_get_notAfter(x)) : 0;
		if (nb && now < nb)
			return TLS_FAIL_NOT_YET_VALID;
		if (na && now > na)
			return TLS_FAIL_EXPIRED;
		if (!x)
			return e == X509_V_ERR_CERT_NOT_YET_VALID || e == X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD
				       ? TLS_FAIL_NOT_YET_VALID
				       : TLS_FAIL_EXPIRED;
		return TLS_FAIL_BAD_CERT;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		return TLS_FAIL_UNKNOWN_CA;
	case X509_V_ERR_OUT_OF_MEM:
		return TLS_FAIL_INTERNAL;
	}
	if (e > 0)
		return TLS_FAIL_BAD_CERT;
	f = fail_of_code(e);
	switch (f) {
	case TLS_FAIL_UNKNOWN_CA:
	case TLS_FAIL_EXPIRED:
	case TLS_FAIL_NOT_YET_VALID:
	case TLS_FAIL_INTERNAL:
		return f;
	default:
		return TLS_FAIL_BAD_CERT;
	}
}

/*
 * The leaf checks of an X.509-SVID, beyond what wolfSSL verified (chain,
 * dates, signatures): not a CA, one valid SPIFFE URI SAN, our trust domain.
 */
static enum tls_fail check_leaf(struct tls_conn *c, WOLFSSL_X509 *x)
{
	char id[TLS_ID_MAX], why[256];

	if (!x) {
		snprintf(c->detail, sizeof(c->detail), "no peer certificate to check");
		return TLS_FAIL_BAD_CERT;
	}
	if (wolfSSL_X509_get_isCA(x)) {
		snprintf(c->detail, sizeof(c->detail), "peer leaf certificate is a CA certificate (CA:TRUE)");
		return TLS_FAIL_BAD_CERT;
	}
	if (x509_spiffe_id(x, id, sizeof(id), why, sizeof(why))) {
		char subj[128];

		x509_subject(x, subj, sizeof(subj));
		snprintf(c->detail, sizeof(c->detail), "peer certificate '%.100s': %.200s", subj, why);
		return TLS_FAIL_BAD_IDENTITY;
	}
	if (!spiffe_in_trust_domain(id, c->ctx->td)) {
		snprintf(c->detail, sizeof(c->detail), "peer identity '%.200s' is not in trust domain '%.64s'", id,
			 c->ctx->td);
		return TLS_FAIL_TRUST_DOMAIN;
	}
	free(c->peer_id);
	c->peer_id = strdup(id);
	if (!c->peer_id) {
		snprintf(c->detail, sizeof(c->detail), "out of memory");
		return TLS_FAIL_INTERNAL;
	}
	return TLS_FAIL_NONE;
}

/*
 * HTTPS client: the server's leaf must carry the address we connected to as
 * an iPAddress subjectAltName (RFC 9525 6.2.1: IP addresses are matched in
 * iPAddress SANs only). wolfSSL_X509_check_ip_asc is not used: in Debian's
 * 5.5.4 it also accepts a DNS SAN spelling the address and, with no SAN at
 * all, a CN equal to it, and it never matches an IPv6 address (tested).
 * The octets are compared, so "::1" and "0:0::1" are the same address.
 */
static enum tls_fail check_server_ip(struct tls_conn *c, WOLFSSL_X509 *x)
{
	WOLFSSL_GENERAL_NAMES *names;
	char seen[160] = "", subj[128];
	size_t slen = 0;
	int i, n;

	if (!x) {
		snprintf(c->detail, sizeof(c->detail), "no server certificate to check");
		return TLS_FAIL_BAD_CERT;
	}
	names = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	n = names ? wolfSSL_sk_GENERAL_NAME_num(names) : 0;
	for (i = 0; i < n; i++) {
		WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(names, i);
		const unsigned char *d;
		char ip[INET6_ADDRSTRLEN];
		int len;

		if (!gn)
			continue;
		if (gn->type == TLS_GEN_IPADD && gn->d.iPAddress) {
			d = wolfSSL_ASN1_STRING_data(gn->d.iPAddress);
			len = wolfSSL_ASN1_STRING_length(gn->d.iPAddress);
			if (d && len > 0 && (size_t)len == c->server_ip_len &&
			    memcmp(d, c->server_ip, (size_t)len) == 0) {
				wolfSSL_GENERAL_NAMES_free(names);
				free(c->peer_id);
				c->peer_id = strdup(c->server_ip_str);
				if (!c->peer_id) {
					snprintf(c->detail, sizeof(c->detail), "out of memory");
					return TLS_FAIL_INTERNAL;
				}
				return TLS_FAIL_NONE;
			}
			if (!d || (len != 4 && len != 16) ||
			    !inet_ntop(len == 4 ? AF_INET : AF_INET6, d, ip, sizeof(ip)))
				snprintf(ip, sizeof(ip), "?");
			if (slen < sizeof(seen))
				slen += (size_t)snprintf(seen + slen, sizeof(seen) - slen, "%sIP %s", slen ? ", " : "",
							 ip);
		} else if (gn->type == TLS_GEN_DNS && gn->d.dNSName) {
			d = wolfSSL_ASN1_STRING_data(gn->d.dNSName);
			len = wolfSSL_ASN1_STRING_length(gn->d.dNSName);
			if (slen < sizeof(seen))
				slen += (size_t)snprintf(seen + slen, sizeof(seen) - slen, "%sDNS %.*s",
							 slen ? ", " : "", d && len > 0 ? (len > 64 ? 64 : len) : 1,
							 d && len > 0 ? (const char *)d : "?");
		}
	}
	wolfSSL_GENERAL_NAMES_free(names);
	x509_subject(x, subj, sizeof(subj));
	snprintf(c->detail, sizeof(c->detail),
		 "server certificate '%.80s' does not name IP %s in its subjectAltName (%s%.150s)", subj,
		 c->server_ip_str, n ? "it names: " : "it has none", seen);
	return TLS_FAIL_BAD_IDENTITY;
}

static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	struct tls_conn *c = store ? store->userCtx : NULL;
	enum tls_fail f;

	if (!c)
		return 0; /* not one of ours: refuse rather than guess */
	if (c->vfail != TLS_FAIL_NONE)
		return 0;
	if (!preverify) {
		char subj[128], es[80], when[32];
		WOLFSSL_X509 *x = store->current_cert;
		const char *what;

		c->vfail = fail_of_verify(store->error, x);
		x509_subject(x, subj, sizeof(subj));
		if (c->vfail == TLS_FAIL_EXPIRED) {
			what = "expired at";
			fmt_time(x ? asn1_time(wolfSSL_X509_get_notAfter(x)) : 0, when, sizeof(when));
		} else if (c->vfail == TLS_FAIL_NOT_YET_VALID) {
			what = "is not valid before";
			fmt_time(x ? asn1_time(wolfSSL_X509_get_notBefore(x)) : 0, when, sizeof(when));
		} else {
			what = store->error > 0 ? wolfSSL_X509_verify_cert_error_string(store->error)
						: wolf_strerror(store->error, es, sizeof(es));
			when[0] = '\0';
		}
		snprintf(c->detail, sizeof(c->detail), "peer certificate at depth %d ('%.100s') %s%s%s (%d)",
			 store->error_depth, subj, what, when[0] ? " " : "", when, store->error);
		return 0;
	}
	if (store->error_depth != 0)
		return 1; /* an intermediate that verified: the leaf decides */
	f = c->ctx->https ? check_server_ip(c, store->current_cert) : check_leaf(c, store->current_cert);
	if (f != TLS_FAIL_NONE) {
		c->vfail = f;
		return 0;
	}
	return 1;
}

/* --- contexts ------------------------------------------------------------------ */

/* Reads a whole regular file (at most TLS_FILE_MAX bytes) and stamps it. */
static int read_file(const char *what, const char *path, unsigned char **out, size_t *outlen, struct tls_stamp *st,
		     char *err, size_t errlen)
{
	struct stat sb;
	int r;

	r = file_read_regular(what, path, TLS_FILE_MAX, out, outlen, &sb, err, errlen);
	if (r < 0)
		return r;
	st->path = strdup(path);
	if (!st->path) {
		explicit_bzero(*out, *outlen);
		free(*out);
		*out = NULL;
		err_set(err, errlen, "%s '%s': out of memory", what, path);
		return -ENOMEM;
	}
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
	st->ctime = sb.st_ctim;
	return 0;
}

/* The file or the buffer of one input; the bytes in *buf are owned when *owned. */
static int get_input(const char *what, const char *path, const unsigned char *pem, size_t pemlen, unsigned char **buf,
		     size_t *len, bool *owned, struct tls_stamp *st, char *err, size_t errlen)
{
	*owned = false;
	if (path && pem) {
		err_set(err, errlen, "%s: give a file or a buffer, not both", what);
		return -EINVAL;
	}
	if (path) {
		int r = read_file(what, path, buf, len, st, err, errlen);

		*owned = r == 0;
		return r;
	}
	if (!pem || pemlen == 0 || pemlen > TLS_FILE_MAX) {
		err_set(err, errlen, "%s: missing", what);
		return -EINVAL;
	}
	*buf = (unsigned char *)pem;
	*len = pemlen;
	return 0;
}

static const char *src_name(const char *path)
{
	return path ? path : "(buffer)";
}

static WOLFSSL_CTX *ctx_side(bool server, const struct tls_ctx_opts *o, const unsigned char *ca, size_t calen,
			     const unsigned char *cert, size_t certlen, const unsigned char *key, size_t keylen,
			     char *err, size_t errlen)
{
	int groups[] = { WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1 };
	WOLFSSL_CTX *ctx;
	char es[80];
	int r;

	ctx = wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method());
	if (!ctx) {
		err_set(err, errlen, "tls: cannot create a wolfSSL context (out of memory?)");
		return NULL;
	}
	if (wolfSSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != WOLFSSL_SUCCESS) {
		err_set(err, errlen, "tls: wolfSSL refused the cipher suites %s", TLS_CIPHERS);
		goto fail;
	}
	if (wolfSSL_CTX_set_groups(ctx, groups, (int)(sizeof(groups) / sizeof(groups[0]))) != WOLFSSL_SUCCESS) {
		err_set(err, errlen, "tls: wolfSSL refused the key exchange groups X25519, P-256, P-384");
		goto fail;
	}
	r = wolfSSL_CTX_load_verify_buffer(ctx, ca, (long)calen, WOLFSSL_FILETYPE_PEM);
	if (r != WOLFSSL_SUCCESS) {
		err_set(err, errlen, "tls.ca '%s': no usable PEM CA certificate (%s)", src_name(o->ca_file),
			wolf_strerror(r, es, sizeof(es)));
		goto fail;
	}
	r = wolfSSL_CTX_use_certificate_chain_buffer_format(ctx, cert, (long)certlen, WOLFSSL_FILETYPE_PEM);
	if (r != WOLFSSL_SUCCESS) {
		err_set(err, errlen, "tls.cert '%s': no usable PEM certificate chain (%s)", src_name(o->cert_file),
			wolf_strerror(r, es, sizeof(es)));
		goto fail;
	}
	r = wolfSSL_CTX_use_PrivateKey_buffer(ctx, key, (long)keylen, WOLFSSL_FILETYPE_PEM);
	if (r != WOLFSSL_SUCCESS) {
		err_set(err, errlen, "tls.key '%s': no usable PEM private key (%s)", src_name(o->key_file),
			wolf_strerror(r, es, sizeof(es)));
		goto fail;
	}
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
	if (server) {
		wolfSSL_CTX_no_ticket_TLSv13(ctx);
		wolfSSL_CTX_no_dhe_psk(ctx);
	}
	return ctx;
fail:
	wolfSSL_CTX_free(ctx);
	return NULL;
}

/* Identity, validity and key of our own leaf (the first certificate in the chain). */
static int inspect_own_cert(struct tls_ctx *t, const struct tls_ctx_opts *o, const unsigned char *cert, size_t certlen,
			    const unsigned char *key, size_t keylen, char *err, size_t errlen)
{
	WOLFSSL_X509 *x;
	char why[256];
	int ret = -EINVAL;

	x = wolfSSL_X509_load_certificate_buffer(cert, (int)certlen, WOLFSSL_FILETYPE_PEM);
	if (!x) {
		err_set(err, errlen, "tls.cert '%s': cannot parse the first certificate", src_name(o->cert_file));
		return -EINVAL;
	}
	if (wolfSSL_X509_get_isCA(x)) {
		err_set(err, errlen, "tls.cert '%s': the first certificate is a CA (CA:TRUE); it must be the leaf",
			src_name(o->cert_file));
		goto out;
	}
	if (x509_spiffe_id(x, t->id, sizeof(t->id), why, sizeof(why))) {
		err_set(err, errlen, "tls.cert '%s': %s", src_name(o->cert_file), why);
		goto out;
	}
	ret = key_matches_cert(x, key, keylen, why, sizeof(why));
	if (ret) {
		if (ret == -EINVAL && strcmp(why, "does not match the certificate") == 0)
			err_set(err, errlen, "tls.key '%s': does not match the certificate in '%s'",
				src_name(o->key_file), src_name(o->cert_file));
		else
			err_set(err, errlen, "tls.key '%s': %s", src_name(o->key_file), why);
		goto out;
	}
	ret = -EINVAL;
	t->not_before = asn1_time(wolfSSL_X509_get_notBefore(x));
	t->not_after = asn1_time(wolfSSL_X509_get_notAfter(x));
	if (!t->not_before || !t->not_after) {
		err_set(err, errlen, "tls.cert '%s': cannot read the validity dates", src_name(o->cert_file));
		goto out;
	}
	ret = 0;
out:
	wolfSSL_X509_free(x);
	return ret;
}

static void ctx_free(struct tls_ctx *t)
{
	int i;

	wolfSSL_CTX_free(t->srv);
	wolfSSL_CTX_free(t->cli);
	for (i = 0; i < 3; i++)
		free(t->stamps[i].path);
	free(t);
}

struct tls_ctx *tls_ctx_load(const struct tls_ctx_opts *o, char *err, size_t errlen)
{
	unsigned char *ca = NULL, *cert = NULL, *key = NULL;
	size_t calen = 0, certlen = 0, keylen = 0;
	bool ca_own = false, cert_own = false, key_own = false;
	struct tls_ctx *t;
	char why[256];

	pthread_once(&tls_once, tls_global_init);
	if (tls_init_rc) {
		err_set(err, errlen, "tls: wolfSSL_Init failed");
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		err_set(err, errlen, "tls: out of memory");
		return NULL;
	}
	atomic_init(&t->refs, 1);
	if (get_input("tls.ca", o->ca_file, o->ca_pem, o->ca_pem_len, &ca, &calen, &ca_own, &t->stamps[0], err,
		      errlen) ||
	    get_input("tls.cert", o->cert_file, o->cert_pem, o->cert_pem_len, &cert, &certlen, &cert_own, &t->stamps[1],
		      err, errlen) ||
	    get_input("tls.key", o->key_file, o->key_pem, o->key_pem_len, &key, &keylen, &key_own, &t->stamps[2], err,
		      errlen))
		goto fail;
	if (inspect_own_cert(t, o, cert, certlen, key, keylen, err, errlen))
		goto fail;
	if (o->trust_domain) {
		if (spiffe_td_check(o->trust_domain, why, sizeof(why))) {
			err_set(err, errlen, "tls: trust domain %s", why);
			goto fail;
		}
		snprintf(t->td, sizeof(t->td), "%s", o->trust_domain);
	} else if (spiffe_trust_domain(t->id, t->td, sizeof(t->td))) {
		err_set(err, errlen, "tls.cert '%s': no trust domain in '%s'", src_name(o->cert_file), t->id);
		goto fail;
	}
	if (!spiffe_in_trust_domain(t->id, t->td)) {
		err_set(err, errlen, "tls.cert '%s': identity '%.200s' is not in trust domain '%s'",
			src_name(o->cert_file), t->id, t->td);
		goto fail;
	}
	t->srv = ctx_side(true, o, ca, calen, cert, certlen, key, keylen, err, errlen);
	if (!t->srv)
		goto fail;
	t->cli = ctx_side(false, o, ca, calen, cert, certlen, key, keylen, err, errlen);
	if (!t->cli)
		goto fail;
	if (ca_own)
		free(ca);
	if (cert_own)
		free(cert);
	if (key_own) {
		explicit_bzero(key, keylen);
		free(key);
	}
	return t;
fail:
	if (ca_own)
		free(ca);
	if (cert_own)
		free(cert);
	if (key_own) {
		explicit_bzero(key, keylen);
		free(key);
	}
	ctx_free(t);
	return NULL;
}

struct tls_ctx *tls_https_ctx_load(const char *ca_file, char *err, size_t errlen)
{
	int groups[] = { WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1 };
	unsigned char *ca = NULL;
	size_t calen = 0;
	struct tls_ctx *t;
	char es[80];
	int r;

	pthread_once(&tls_once, tls_global_init);
	if (tls_init_rc) {
		err_set(err, errlen, "tls: wolfSSL_Init failed");
		return NULL;
	}
	if (!ca_file || !*ca_file) {
		err_set(err, errlen, "no CA file to verify the server with");
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		err_set(err, errlen, "tls: out of memory");
		return NULL;
	}
	atomic_init(&t->refs, 1);
	t->https = true;
	if (read_file("CA file", ca_file, &ca, &calen, &t->stamps[0], err, errlen))
		goto fail;
	/* any version the library has, then at least 1.2: the server picks 1.3 when it can */
	t->cli = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (!t->cli) {
		err_set(err, errlen, "tls: cannot create a wolfSSL context (out of memory?)");
		goto fail;
	}
	if (wolfSSL_CTX_SetMinVersion(t->cli, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
		err_set(err, errlen, "tls: wolfSSL refused TLS 1.2 as the lowest version");
		goto fail;
	}
	if (wolfSSL_CTX_set_cipher_list(t->cli, TLS_HTTPS_CIPHERS) != WOLFSSL_SUCCESS) {
		err_set(err, errlen, "tls: wolfSSL refused the cipher suites %s", TLS_HTTPS_CIPHERS);
		goto fail;
	}
	if (wolfSSL_CTX_set_groups(t->cli, groups, (int)(sizeof(groups) / sizeof(groups[0]))) != WOLFSSL_SUCCESS) {
		err_set(err, errlen, "tls: wolfSSL refused the key exchange groups X25519, P-256, P-384");
		goto fail;
	}
	r = wolfSSL_CTX_load_verify_buffer(t->cli, ca, (long)calen, WOLFSSL_FILETYPE_PEM);
	if (r != WOLFSSL_SUCCESS) {
		err_set(err, errlen, "CA file '%s': no usable PEM CA certificate (%s)", ca_file,
			wolf_strerror(r, es, sizeof(es)));
		goto fail;
	}
	wolfSSL_CTX_set_verify(t->cli, WOLFSSL_VERIFY_PEER, verify_cb);
	wolfSSL_CTX_set_session_cache_mode(t->cli, WOLFSSL_SESS_CACHE_OFF);
	free(ca);
	return t;
fail:
	free(ca);
	ctx_free(t);
	return NULL;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	return t;
}

void tls_ctx_unref(struct tls_ctx *t)
{
	if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		ctx_free(t);
}

const char *tls_ctx_identity(const struct tls_ctx *t)
{
	return t->id;
}

const char *tls_ctx_trust_domain(const struct tls_ctx *t)
{
	return t->td;
}

time_t tls_cert_not_before(const struct tls_ctx *t)
{
	return t->not_before;
}

time_t tls_cert_not_after(const struct tls_ctx *t)
{
	return t->not_after;
}

bool tls_ctx_files_changed(const struct tls_ctx *t)
{
	struct stat sb;
	int i;

	for (i = 0; i < 3; i++) {
		const struct tls_stamp *s = &t->stamps[i];

		if (!s->path)
			continue;
		if (stat(s->path, &sb) < 0)
			return true;
		if (sb.st_dev != s->dev || sb.st_ino != s->ino || sb.st_size != s->size ||
		    sb.st_mtim.tv_sec != s->mtime.tv_sec || sb.st_mtim.tv_nsec != s->mtime.tv_nsec ||
		    sb.st_ctim.tv_sec != s->ctime.tv_sec || sb.st_ctim.tv_nsec != s->ctime.tv_nsec)
			return true;
	}
	return false;
}

/* --- connections ---------------------------------------------------------------- */

/* A connection of either kind; the caller adds what its policy needs. */
static struct tls_conn *conn_new(struct tls_ctx *t, int fd, bool is_server)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ssl = wolfSSL_new(is_server ? t->srv : t->cli);
	if (!c->ssl) {
		free(c);
		return NULL;
	}
	c->ctx = tls_ctx_ref(t);
	c->fd = fd;
	c->server = is_server;
	c->alert = -1;
	wolfSSL_SSLSetIORecv(c->ssl, io_recv);
	wolfSSL_SSLSetIOSend(c->ssl, io_send);
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	wolfSSL_SetCertCbCtx(c->ssl, c);
	return c;
}

struct tls_conn *tls_conn_new(struct tls_ctx *t, int fd, bool is_server)
{
	struct tls_conn *c;

	if (t->https) {
		errno = EINVAL; /* an HTTPS client context: tls_https_conn_new */
		return NULL;
	}
	c = conn_new(t, fd, is_server);
	if (!c)
		return NULL;
	if (wolfSSL_UseALPN(c->ssl, (char *)TLS_ALPN, sizeof(TLS_ALPN) - 1, WOLFSSL_ALPN_FAILED_ON_MISMATCH) !=
	    WOLFSSL_SUCCESS) {
		tls_conn_free(c);
		return NULL;
	}
	return c;
}

struct tls_conn *tls_https_conn_new(struct tls_ctx *t, int fd, const char *server_ip)
{
	unsigned char ip[16];
	size_t iplen;
	struct tls_conn *c;

	if (!t->https || !server_ip) {
		errno = EINVAL;
		return NULL;
	}
	if (inet_pton(AF_INET, server_ip, ip) == 1) {
		iplen = 4;
	} else if (inet_pton(AF_INET6, server_ip, ip) == 1) {
		iplen = 16;
	} else {
		errno = EINVAL;
		return NULL;
	}
	c = conn_new(t, fd, false);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(c->server_ip, ip, iplen);
	c->server_ip_len = iplen;
	/* the canonical text, for messages and tls_peer_id */
	inet_ntop(iplen == 4 ? AF_INET : AF_INET6, ip, c->server_ip_str, sizeof(c->server_ip_str));
	return c;
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	wolfSSL_free(c->ssl);
	tls_ctx_unref(c->ctx);
	free(c->peer_id);
	free(c);
}

/* Records the last fatal alert the peer sent, if any. */
static void note_alert(struct tls_conn *c)
{
	WOLFSSL_ALERT_HISTORY h;

	if (wolfSSL_get_alert_history(c->ssl, &h) == WOLFSSL_SUCCESS && h.last_rx.level == ALERT_FATAL)
		c->alert = h.last_rx.code;
}

/*
 * Turns a wolfSSL error into the connection's final state: reason, detail,
 * errno. The verify callback's reason, when it has one, wins: wolfSSL reports
 * its own refusal of a certificate with less precise codes.
 */
static int conn_fail(struct tls_conn *c, int e, const char *when)
{
	char es[80];

	c->failed = true;
	c->want = TLS_WANT_NONE;
	note_alert(c);
	if (c->vfail != TLS_FAIL_NONE) {
		c->fail = c->vfail; /* detail already written by the verify callback */
		c->ret = c->fail == TLS_FAIL_INTERNAL ? -ENOMEM : -EPROTO;
		return c->ret;
	}
	if (c->io_eof) {
		c->fail = TLS_FAIL_CLOSED;
		c->ret = -ECONNRESET;
		snprintf(c->detail, sizeof(c->detail), "peer closed the connection %s", when);
		return c->ret;
	}
	if (c->io_errno) {
		c->fail = TLS_FAIL_IO;
		c->ret = c->io_errno == ECONNRESET || c->io_errno == EPIPE ? -ECONNRESET : -EIO;
		snprintf(c->detail, sizeof(c->detail), "socket error %s: %s", when, strerror(c->io_errno));
		return c->ret;
	}
	c->fail = fail_of_code(e);
	c->ret = c->fail == TLS_FAIL_INTERNAL ? -ENOMEM : -EPROTO;
	if (c->fail == TLS_FAIL_PEER_ALERT && c->alert >= 0)
		snprintf(c->detail, sizeof(c->detail), "peer refused us %s with alert %d (%s)", when, c->alert,
			 alert_name(c->alert));
	else
		snprintf(c->detail, sizeof(c->detail), "%s, %s (wolfSSL %d: %s)",
			 c->ctx->https && c->fail == TLS_FAIL_VERSION ? "server speaks neither TLS 1.2 nor TLS 1.3"
								      : fail_text(c->fail),
			 when, e, wolf_strerror(e, es, sizeof(es)));
	return c->ret;
}

/* A local, non-wolfSSL failure (post-handshake checks). */
static int conn_fail_local(struct tls_conn *c, enum tls_fail f)
{
	c->failed = true;
	c->want = TLS_WANT_NONE;
	c->fail = f;
	c->ret = -EPROTO;
	return c->ret;
}

/* What the handshake established, checked once more before anyone relies on it. */
static int handshake_checks(struct tls_conn *c)
{
	char *proto = NULL;
	unsigned short plen = 0;

	if (c->ctx->https) {
		int v = wolfSSL_version(c->ssl);

		if (v != TLS1_3_VERSION && v != TLS1_2_VERSION) {
			snprintf(c->detail, sizeof(c->detail), "negotiated %s, not TLS 1.2 or 1.3",
				 wolfSSL_get_version(c->ssl));
			return conn_fail_local(c, TLS_FAIL_VERSION);
		}
		if (!c->peer_id) {
			/* unreachable with WOLFSSL_ALWAYS_VERIFY_CB; never accept a server unchecked */
			snprintf(c->detail, sizeof(c->detail), "the server certificate was not checked");
			return conn_fail_local(c, TLS_FAIL_BAD_IDENTITY);
		}
		return 0;
	}

	if (wolfSSL_version(c->ssl) != TLS1_3_VERSION) {
		snprintf(c->detail, sizeof(c->detail), "negotiated %s, not TLS 1.3", wolfSSL_get_version(c->ssl));
		return conn_fail_local(c, TLS_FAIL_VERSION);
	}
	if (wolfSSL_ALPN_GetProtocol(c->ssl, &proto, &plen) != WOLFSSL_SUCCESS || !proto ||
	    plen != sizeof(TLS_ALPN) - 1 || memcmp(proto, TLS_ALPN, plen) != 0) {
		snprintf(c->detail, sizeof(c->detail), "peer did not agree on ALPN \"%s\"", TLS_ALPN);
		return conn_fail_local(c, TLS_FAIL_ALPN);
	}
	if (!c->peer_id) {
		/* unreachable with WOLFSSL_ALWAYS_VERIFY_CB; never accept a peer unchecked */
		snprintf(c->detail, sizeof(c->detail), "the peer certificate was not checked");
		return conn_fail_local(c, TLS_FAIL_BAD_IDENTITY);
	}
	return 0;
}

/* -EAGAIN with the direction to wait for, or the final failure. */
static int conn_error(struct tls_conn *c, int r, const char *when)
{
	int e = wolfSSL_get_error(c->ssl, r);

	if (e == WOLFSSL_ERROR_WANT_READ) {
		c->want = TLS_WANT_READ;
		return -EAGAIN;
	}
	if (e == WOLFSSL_ERROR_WANT_WRITE) {
		c->want = TLS_WANT_WRITE;
		return -EAGAIN;
	}
	return conn_fail(c, e, when);
}

int tls_handshake(struct tls_conn *c)
{
	int r;

	if (c->failed)
		return c->ret;
	if (c->done)
		return 0;
	r = c->server ? wolfSSL_accept(c->ssl) : wolfSSL_connect(c->ssl);
	if (r != WOLFSSL_SUCCESS)
		return conn_error(c, r, "during the handshake");
	if (handshake_checks(c))
		return c->ret;
	c->done = true;
	c->want = TLS_WANT_NONE;
	return 0;
}

enum tls_want tls_want(const struct tls_conn *c)
{
	return c->want;
}

enum tls_fail tls_conn_fail(const struct tls_conn *c)
{
	return c->fail;
}

const char *tls_conn_detail(const struct tls_conn *c)
{
	return c->detail;
}

int tls_conn_alert(const struct tls_conn *c)
{
	return c->alert;
}

bool tls_conn_is_server(const struct tls_conn *c)
{
	return c->server;
}

int tls_peer_identity(const struct tls_conn *c, char *buf, size_t len)
{
	size_t n;

	if (!c->done || c->failed || !c->peer_id)
		return -ENOTCONN;
	n = strlen(c->peer_id);
	if (n + 1 > len)
		return -ENOSPC;
	memcpy(buf, c->peer_id, n + 1);
	return (int)n;
}

const char *tls_peer_id(const struct tls_conn *c)
{
	return c->done && !c->failed ? c->peer_id : NULL;
}

const char *tls_conn_cipher(const struct tls_conn *c)
{
	const char *s = c->done ? wolfSSL_get_cipher_name(c->ssl) : NULL;

	return s ? s : "";
}

ssize_t tls_read(struct tls_conn *c, void *buf, size_t len)
{
	int r, e;

	if (c->failed)
		return c->ret;
	if (!c->done)
		return -ENOTCONN;
	if (len > INT_MAX)
		len = INT_MAX;
	r = wolfSSL_read(c->ssl, buf, (int)len);
	if (r > 0) {
		c->want = TLS_WANT_NONE;
		return r;
	}
	e = wolfSSL_get_error(c->ssl, r);
	if (e == WOLFSSL_ERROR_ZERO_RETURN) {
		c->want = TLS_WANT_NONE;
		return 0; /* close_notify: the peer will send no more */
	}
	return conn_error(c, r, "while reading");
}

ssize_t tls_write(struct tls_conn *c, const void *buf, size_t len)
{
	int r;

	if (c->failed)
		return c->ret;
	if (!c->done)
		return -ENOTCONN;
	if (len == 0)
		return 0;
	if (len > TLS_WRITE_MAX)
		len = TLS_WRITE_MAX;
	r = wolfSSL_write(c->ssl, buf, (int)len);
	if (r > 0) {
		c->want = TLS_WANT_NONE;
		return r;
	}
	return conn_error(c, r, "while writing");
}

size_t tls_pending(const struct tls_conn *c)
{
	int n = c->done && !c->failed ? wolfSSL_pending(c->ssl) : 0;

	return n > 0 ? (size_t)n : 0;
}

int tls_shutdown(struct tls_conn *c)
{
	int r;

	if (!c->done || c->failed)
		return -ENOTCONN;
	r = wolfSSL_shutdown(c->ssl);
	if (r == WOLFSSL_SUCCESS || r == WOLFSSL_SHUTDOWN_NOT_DONE)
		return 0;
	r = wolfSSL_get_error(c->ssl, r);
	return r == WOLFSSL_ERROR_WANT_WRITE || r == WOLFSSL_ERROR_WANT_READ ? -EAGAIN : -EIO;
}

void tls_thread_cleanup(void)
{
#ifdef FP_ECC
	wc_ecc_fp_free(); /* this thread's fixed-point ECC cache (thread-local in wolfSSL) */
#endif
}

void tls_global_cleanup(void)
{
	tls_thread_cleanup();
	wolfSSL_Cleanup();
}
