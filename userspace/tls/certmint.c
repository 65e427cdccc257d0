// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Leaf certificate minting with wolfCrypt (wc_MakeCert_ex + wc_SignCert_ex).
 *
 * Everything a peer relies on is set explicitly rather than left to library
 * defaults, which differ between wolfSSL versions: validity (wolfSSL's own
 * default backdates by a day and counts in whole days), serial, key usage,
 * basic constraints and the SAN, encoded here by hand as DER (one
 * GeneralName, [6] uniformResourceIdentifier).
 */
#include "lib/file.h"
#include "lib/log.h"
#include "tls/certmint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include "codec/identity.h"

#if !defined(WOLFSSL_CERT_GEN) || !defined(WOLFSSL_CERT_EXT) || !defined(WOLFSSL_ALT_NAMES) || !defined(HAVE_ECC)
#error "certmint needs wolfSSL with WOLFSSL_CERT_GEN, WOLFSSL_CERT_EXT, WOLFSSL_ALT_NAMES and HAVE_ECC (Debian's libwolfssl-dev has them)"
#endif

#define CM_FILE_MAX (1024 * 1024)
/* DER of a leaf: ~600 bytes plus the SAN (up to 2048) plus the issuer name. */
#define CM_DER_MAX 8192

struct certmint_issuer {
	unsigned char *der; /* issuer certificate, DER */
	int der_len;
	char *chain_pem; /* the issuer file's PEM text, sent after each leaf */
	size_t chain_len;
	ecc_key key;
	int sig_type; /* CTC_SHA256wECDSA ... by the issuer key's curve size */
	time_t not_after;
	WC_RNG rng;
};

static const char *wc_err(int e)
{
	return wc_GetErrorString(e);
}

/*
 * PEM EC private key (SEC1 "EC PRIVATE KEY" or PKCS#8 "PRIVATE KEY") into
 * key, with its public point. 0 or -EINVAL.
 */
static int ec_key_from_pem(const unsigned char *pem, size_t len, ecc_key *key, WC_RNG *rng)
{
	unsigned char *der;
	word32 idx = 0;
	int derlen, ret = -EINVAL;

	der = malloc(len);
	if (!der)
		return -ENOMEM;
	derlen = wc_KeyPemToDer(pem, (int)len, der, (int)len, NULL);
	if (derlen <= 0)
		goto out;
	if (wc_GetPkcs8TraditionalOffset(der, &idx, (word32)derlen) < 0)
		idx = 0;
	if (wc_EccPrivateKeyDecode(der, &idx, key, (word32)derlen) != 0)
		goto out;
	if (key->type == ECC_PRIVATEKEY_ONLY && wc_ecc_make_pub_ex(key, NULL, rng) != 0)
		goto out;
	ret = 0;
out:
	explicit_bzero(der, len);
	free(der);
	return ret;
}

static time_t x509_time(const WOLFSSL_ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!t || wolfSSL_ASN1_TIME_to_tm(t, &tm) != WOLFSSL_SUCCESS)
		return 0;
	return timegm(&tm);
}

void certmint_issuer_free(struct certmint_issuer *iss)
{
	if (!iss)
		return;
	wc_ecc_free(&iss->key);
	wc_FreeRng(&iss->rng);
	free(iss->der);
	free(iss->chain_pem);
	explicit_bzero(iss, sizeof(*iss));
	free(iss);
}

int certmint_issuer_load(const char *cert_file, const char *key_file, struct certmint_issuer **out, char *err,
			 size_t errlen)
{
	struct certmint_issuer *iss;
	unsigned char *pem = NULL, *keypem = NULL, spki[512], a[160], b[160];
	size_t pemlen = 0, keylen = 0;
	struct stat sb;
	word32 alen = sizeof(a), blen = sizeof(b), idx = 0;
	int spkilen = (int)sizeof(spki), ret, csize;
	WOLFSSL_X509 *x = NULL;
	ecc_key pub;
	bool pub_init = false;
	time_t now = time(NULL), nb;

	*out = NULL;
	iss = calloc(1, sizeof(*iss));
	if (!iss) {
		err_set(err, errlen, "issuer: out of memory");
		return -ENOMEM;
	}
	if (wc_ecc_init(&iss->key) != 0) {
		free(iss);
		err_set(err, errlen, "issuer: cannot initialise wolfCrypt");
		return -EIO;
	}
	if (wc_InitRng(&iss->rng) != 0) {
		wc_ecc_free(&iss->key);
		free(iss);
		err_set(err, errlen, "issuer: cannot initialise wolfCrypt's RNG");
		return -EIO;
	}
	ret = file_read_regular("issuer certificate", cert_file, CM_FILE_MAX, &pem, &pemlen, &sb, err, errlen);
	if (ret)
		goto fail;
	ret = file_read_regular("issuer key", key_file, CM_FILE_MAX, &keypem, &keylen, &sb, err, errlen);
	if (ret)
		goto fail;
	ret = -EINVAL;
	x = wolfSSL_X509_load_certificate_buffer(pem, (int)pemlen, WOLFSSL_FILETYPE_PEM);
	if (!x) {
		err_set(err, errlen, "issuer certificate '%s': no PEM certificate", cert_file);
		goto fail;
	}
	if (!wolfSSL_X509_get_isCA(x)) {
		err_set(err, errlen,
			"issuer certificate '%s': not a CA (basicConstraints CA:TRUE); use the node issuer, e.g. issuer.pem from scripts/weft-ca",
			cert_file);
		goto fail;
	}
	nb = x509_time(wolfSSL_X509_get_notBefore(x));
	iss->not_after = x509_time(wolfSSL_X509_get_notAfter(x));
	if (!nb || !iss->not_after) {
		err_set(err, errlen, "issuer certificate '%s': cannot read its validity dates", cert_file);
		goto fail;
	}
	if (now > iss->not_after || now < nb) {
		err_set(err, errlen, "issuer certificate '%s': %s", cert_file,
			now > iss->not_after ? "has expired" : "is not valid yet");
		goto fail;
	}
	{
		const unsigned char *d;
		int dl = 0;

		d = wolfSSL_X509_get_der(x, &dl);
		if (!d || dl <= 0 || !(iss->der = malloc((size_t)dl))) {
			err_set(err, errlen, "issuer certificate '%s': cannot encode it", cert_file);
			goto fail;
		}
		memcpy(iss->der, d, (size_t)dl);
		iss->der_len = dl;
	}
	if (ec_key_from_pem(keypem, keylen, &iss->key, &iss->rng)) {
		err_set(err, errlen, "issuer key '%s': not a PEM EC private key (weft issuers are ECDSA)", key_file);
		goto fail;
	}
	csize = wc_ecc_size(&iss->key);
	iss->sig_type = csize <= 32 ? CTC_SHA256wECDSA : csize <= 48 ? CTC_SHA384wECDSA : CTC_SHA512wECDSA;
	/* wolfSSL_CTX_check_private_key does not catch a mismatched EC pair in
	 * 5.5.4: compare the public points ourselves */
	if (wolfSSL_X509_get_pubkey_buffer(x, spki, &spkilen) != WOLFSSL_SUCCESS || wc_ecc_init(&pub) != 0) {
		err_set(err, errlen, "issuer certificate '%s': cannot read its public key", cert_file);
		goto fail;
	}
	pub_init = true;
	if (wc_EccPublicKeyDecode(spki, &idx, &pub, (word32)spkilen) != 0 ||
	    wc_ecc_export_x963(&iss->key, a, &alen) != 0 || wc_ecc_export_x963(&pub, b, &blen) != 0 || alen != blen ||
	    memcmp(a, b, alen) != 0) {
		err_set(err, errlen, "issuer key '%s': does not match the certificate in '%s'", key_file, cert_file);
		goto fail;
	}
	iss->chain_pem = (char *)pem;
	iss->chain_len = pemlen;
	pem = NULL;
	wc_ecc_free(&pub);
	wolfSSL_X509_free(x);
	explicit_bzero(keypem, keylen);
	free(keypem);
	*out = iss;
	return 0;
fail:
	if (pub_init)
		wc_ecc_free(&pub);
	wolfSSL_X509_free(x);
	free(pem);
	if (keypem)
		explicit_bzero(keypem, keylen);
	free(keypem);
	certmint_issuer_free(iss);
	return ret;
}

time_t certmint_issuer_not_after(const struct certmint_issuer *iss)
{
	return iss->not_after;
}

/* DER time with tag and length: UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
static int der_time(time_t t, unsigned char *out, int *outlen)
{
	struct tm tm;
	char s[20];
	size_t n;

	if (!gmtime_r(&t, &tm))
		return -EINVAL;
	if (tm.tm_year + 1900 < 1950)
		return -EINVAL;
	n = strftime(s, sizeof(s), "%Y%m%d%H%M%SZ", &tm);
	if (n != 15)
		return -EINVAL;
	if (tm.tm_year + 1900 < 2050) {
		/* UTCTime: the same text without the century */
		memmove(s, s + 2, n - 1);
		n -= 2;
		out[0] = 0x17;
	} else {
		out[0] = 0x18;
	}
	out[1] = (unsigned char)n;
	memcpy(out + 2, s, n);
	*outlen = (int)n + 2;
	return 0;
}

/* DER length octets; returns their count. */
static size_t der_len(size_t len, unsigned char *out)
{
	if (len < 0x80) {
		out[0] = (unsigned char)len;
		return 1;
	}
	if (len <= 0xff) {
		out[0] = 0x81;
		out[1] = (unsigned char)len;
		return 2;
	}
	out[0] = 0x82;
	out[1] = (unsigned char)(len >> 8);
	out[2] = (unsigned char)len;
	return 3;
}

/* GeneralNames ::= SEQUENCE { [6] IMPLICIT IA5String uri } */
static int san_uri(const char *uri, unsigned char *out, size_t cap, int *outlen)
{
	unsigned char inner[4], outer[4];
	size_t ulen = strlen(uri), il, ol;

	il = der_len(ulen, inner);
	ol = der_len(1 + il + ulen, outer);
	if (1 + ol + 1 + il + ulen > cap)
		return -E2BIG;
	out[0] = 0x30;
	memcpy(out + 1, outer, ol);
	out[1 + ol] = 0x86;
	memcpy(out + 2 + ol, inner, il);
	memcpy(out + 2 + ol + il, uri, ulen);
	*outlen = (int)(2 + ol + il + ulen);
	return 0;
}

static int to_pem(const unsigned char *der, int derlen, int type, unsigned char **out, size_t *outlen)
{
	/* base64 grows 4/3, plus line breaks and armour */
	int cap = derlen * 2 + 128, n;
	unsigned char *pem = malloc((size_t)cap + 1);

	if (!pem)
		return -ENOMEM;
	n = wc_DerToPem(der, (word32)derlen, pem, (word32)cap, type);
	if (n <= 0) {
		explicit_bzero(pem, (size_t)cap);
		free(pem);
		return -EIO;
	}
	pem[n] = '\0';
	*out = pem;
	*outlen = (size_t)n;
	return 0;
}

int certmint_issue(struct certmint_issuer *iss, const struct certmint_req *req, struct certmint_out *out, char *err,
		   size_t errlen)
{
	unsigned char *der = NULL, keyder[256];
	Cert *cert = NULL; /* ~20 KiB: not on the stack */
	ecc_key key;
	bool key_init = false;
	uint32_t life, back;
	time_t now, nb, na;
	int r, derlen, keylen, ret = -EIO;
	char why[256];

	memset(out, 0, sizeof(*out));
	if (!req->identity || spiffe_id_check(req->identity, strlen(req->identity), why, sizeof(why))) {
		err_set(err, errlen, "mint: %s", req->identity ? why : "no identity");
		return -EINVAL;
	}
	life = req->lifetime_s ? req->lifetime_s : CERTMINT_DEFAULT_LIFETIME;
	back = req->backdate_s ? req->backdate_s : CERTMINT_DEFAULT_BACKDATE;
	if (life > CERTMINT_MAX_LIFETIME || life < 60) {
		err_set(err, errlen, "mint: lifetime %u s is outside 60 s .. %d s", life, CERTMINT_MAX_LIFETIME);
		return -EINVAL;
	}
	if (back >= life) {
		err_set(err, errlen, "mint: backdate %u s is not shorter than the lifetime %u s", back, life);
		return -EINVAL;
	}
	now = req->now ? req->now : time(NULL);
	nb = now - (time_t)back;
	na = now + (time_t)life;
	if (na > iss->not_after)
		na = iss->not_after; /* a leaf never outlives its issuer */
	if (na <= now) {
		err_set(err, errlen,
			"mint: the issuer certificate expires before the leaf would be valid; renew the issuer (scripts/weft-ca init)");
		return -EINVAL;
	}

	cert = calloc(1, sizeof(*cert));
	der = malloc(CM_DER_MAX);
	if (!cert || !der) {
		ret = -ENOMEM;
		err_set(err, errlen, "mint: out of memory");
		goto out;
	}
	if ((r = wc_InitCert(cert)) != 0)
		goto wolf;
	if ((r = wc_ecc_init(&key)) != 0)
		goto wolf;
	key_init = true;
	if ((r = wc_ecc_make_key_ex(&iss->rng, 32, &key, ECC_SECP256R1)) != 0)
		goto wolf;

	cert->version = 2; /* X.509 v3 */
	cert->sigType = iss->sig_type;
	cert->isCA = 0;
	cert->basicConstSet = 1; /* emit basicConstraints CA:FALSE */
	cert->selfSigned = 0;
	snprintf(cert->subject.org, CTC_NAME_SIZE, "weft");
	if (strlen(req->identity) < CTC_NAME_SIZE)
		snprintf(cert->subject.commonName, CTC_NAME_SIZE, "%s", req->identity);
	if ((r = wc_SetIssuerBuffer(cert, iss->der, iss->der_len)) != 0)
		goto wolf;
	/* serial: 128 random bits, positive, no leading zero octet */
	if ((r = wc_RNG_GenerateBlock(&iss->rng, out->serial, sizeof(out->serial))) != 0)
		goto wolf;
	out->serial[0] = (unsigned char)((out->serial[0] & 0x7f) | 0x40);
	memcpy(cert->serial, out->serial, sizeof(out->serial));
	cert->serialSz = (int)sizeof(out->serial);
	if (der_time(nb, cert->beforeDate, &cert->beforeDateSz) || der_time(na, cert->afterDate, &cert->afterDateSz)) {
		ret = -EINVAL;
		err_set(err, errlen, "mint: validity dates out of range");
		goto out;
	}
	if (san_uri(req->identity, cert->altNames, sizeof(cert->altNames), &cert->altNamesSz)) {
		ret = -EINVAL;
		err_set(err, errlen, "mint: identity too long for a SAN");
		goto out;
	}
	if ((r = wc_SetKeyUsage(cert, "digitalSignature")) != 0 ||
	    (r = wc_SetExtKeyUsage(cert, "serverAuth,clientAuth")) != 0 ||
	    (r = wc_SetSubjectKeyIdFromPublicKey_ex(cert, ECC_TYPE, &key)) != 0)
		goto wolf;
	/* the issuer's SKID when it has one, else the hash of its public key (the same thing, normally) */
	if (wc_SetAuthKeyIdFromCert(cert, iss->der, iss->der_len) != 0 &&
	    (r = wc_SetAuthKeyIdFromPublicKey_ex(cert, ECC_TYPE, &iss->key)) != 0)
		goto wolf;
	r = wc_MakeCert_ex(cert, der, CM_DER_MAX, ECC_TYPE, &key, &iss->rng);
	if (r < 0)
		goto wolf;
	r = wc_SignCert_ex(cert->bodySz, cert->sigType, der, CM_DER_MAX, ECC_TYPE, &iss->key, &iss->rng);
	if (r < 0)
		goto wolf;
	derlen = r;
	keylen = wc_EccKeyToDer(&key, keyder, sizeof(keyder));
	if (keylen <= 0) {
		r = keylen;
		goto wolf;
	}

	if (req->format == CERTMINT_DER) {
		out->cert = malloc((size_t)derlen);
		out->key = malloc((size_t)keylen);
		if (!out->cert || !out->key) {
			ret = -ENOMEM;
			err_set(err, errlen, "mint: out of memory");
			goto out;
		}
		memcpy(out->cert, der, (size_t)derlen);
		out->cert_len = (size_t)derlen;
		memcpy(out->key, keyder, (size_t)keylen);
		out->key_len = (size_t)keylen;
	} else {
		unsigned char *leaf;
		size_t leaflen;

		if ((ret = to_pem(der, derlen, CERT_TYPE, &leaf, &leaflen)) != 0 ||
		    (ret = to_pem(keyder, keylen, ECC_PRIVATEKEY_TYPE, &out->key, &out->key_len)) != 0) {
			if (ret == 0)
				free(leaf);
			err_set(err, errlen, "mint: PEM encoding failed");
			goto out;
		}
		if (!req->no_chain) {
			unsigned char *all = realloc(leaf, leaflen + iss->chain_len + 2);

			if (!all) {
				free(leaf);
				ret = -ENOMEM;
				err_set(err, errlen, "mint: out of memory");
				goto out;
			}
			leaf = all;
			if (leaflen && leaf[leaflen - 1] != '\n')
				leaf[leaflen++] = '\n';
			memcpy(leaf + leaflen, iss->chain_pem, iss->chain_len);
			leaflen += iss->chain_len;
			leaf[leaflen] = '\0';
		}
		out->cert = leaf;
		out->cert_len = leaflen;
	}
	out->not_before = nb;
	out->not_after = na;
	ret = 0;
	goto out;
wolf:
	ret = r == MEMORY_E ? -ENOMEM : -EIO;
	err_set(err, errlen, "mint: wolfCrypt: %s (%d)", wc_err(r), r);
out:
	if (key_init)
		wc_ecc_free(&key);
	explicit_bzero(keyder, sizeof(keyder));
	free(der);
	free(cert);
	if (ret)
		certmint_out_free(out);
	return ret;
}

void certmint_out_free(struct certmint_out *out)
{
	if (!out)
		return;
	free(out->cert);
	if (out->key)
		explicit_bzero(out->key, out->key_len);
	free(out->key);
	memset(out, 0, sizeof(*out));
}

time_t certmint_renew_at(time_t not_before, time_t not_after)
{
	return not_before + (not_after - not_before) * 2 / 3;
}
