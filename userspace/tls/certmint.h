/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * certmint: short-lived X.509-SVID leaf certificates for local workload
 * identities, signed by the node issuer (an intermediate CA whose key weftd
 * holds), with wolfCrypt's certificate generation (WOLFSSL_CERT_GEN,
 * WOLFSSL_CERT_EXT, WOLFSSL_ALT_NAMES: all in Debian's libwolfssl).
 *
 * Each leaf: a fresh ECDSA P-256 key; serial 128 random bits; notBefore one
 * minute in the past (clock skew between nodes), notAfter 24 h later by
 * default, never beyond the issuer's notAfter; subject O=weft (CN = the
 * identity when it fits in 64 bytes; peers never read it); extensions
 * basicConstraints CA:FALSE (non-critical: wolfSSL 5.5.4 cannot mark it, and
 * RFC 5280 allows either in a leaf), keyUsage digitalSignature
 * (critical), extKeyUsage serverAuth+clientAuth, subjectAltName with exactly
 * one URI (the SPIFFE ID), subject and authority key identifiers.
 *
 * Renewal is the caller's: certmint_renew_at() says when (2/3 of the
 * lifetime); mint, build a new tls_ctx from the buffers, swap. Connections on
 * the old certificate are unaffected.
 *
 * Thread safety: an issuer holds one RNG; use it from one thread at a time.
 * It may call: codec/identity, lib/file, lib/log, wolfSSL.
 */
#ifndef WEFT_CERTMINT_H
#define WEFT_CERTMINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CERTMINT_DEFAULT_LIFETIME (24 * 3600)
#define CERTMINT_DEFAULT_BACKDATE 60
#define CERTMINT_MAX_LIFETIME (366 * 24 * 3600)

struct certmint_issuer;

/*
 * Loads the issuing CA: cert_file is PEM, the issuer first, then any further
 * intermediates (not the root) to send after each leaf; key_file is the
 * issuer's PEM EC private key (SEC1 or PKCS#8). Checks that the issuer is a CA
 * (basicConstraints CA:TRUE), that the key belongs to it, and that it is
 * within its validity period. Returns 0 and *out, or negative errno with a
 * message in err naming the file ("tls.issuer_key '/x.key': does not match
 * the certificate in '/x.pem'").
 */
int certmint_issuer_load(const char *cert_file, const char *key_file, struct certmint_issuer **out, char *err,
			 size_t errlen);
void certmint_issuer_free(struct certmint_issuer *iss); /* NULL is fine */
time_t certmint_issuer_not_after(const struct certmint_issuer *iss);

enum certmint_format { CERTMINT_PEM = 0, CERTMINT_DER };

struct certmint_req {
	const char *identity;        /* SPIFFE ID, required; validated */
	uint32_t lifetime_s;         /* 0: CERTMINT_DEFAULT_LIFETIME; at most CERTMINT_MAX_LIFETIME */
	uint32_t backdate_s;         /* notBefore = now - backdate; 0: CERTMINT_DEFAULT_BACKDATE */
	time_t now;                  /* 0: time(NULL). Tests mint expired or future certs with it */
	enum certmint_format format; /* of both cert and key */
	bool no_chain;               /* PEM: leaf only (default: leaf, then the issuer's chain) */
};

struct certmint_out {
	unsigned char *cert; /* PEM (NUL-terminated, length without the NUL) or DER */
	size_t cert_len;
	unsigned char *key; /* PEM "EC PRIVATE KEY" (SEC1) or its DER; wiped by certmint_out_free */
	size_t key_len;
	time_t not_before, not_after;
	unsigned char serial[16];
};

/*
 * Mints one leaf. Returns 0 with *out filled (free with certmint_out_free),
 * or -EINVAL (bad identity or lifetime, issuer expired: err says which),
 * -ENOMEM, -EIO (a wolfCrypt failure, err has its message).
 */
int certmint_issue(struct certmint_issuer *iss, const struct certmint_req *req, struct certmint_out *out, char *err,
		   size_t errlen);
void certmint_out_free(struct certmint_out *out);

/* When to mint the next one: notBefore + 2/3 of the lifetime. */
time_t certmint_renew_at(time_t not_before, time_t not_after);

#endif
