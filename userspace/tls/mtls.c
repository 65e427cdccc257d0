// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "tls/mtls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/certmint.h"
#include "kernel/cgroup.h"
#include "config/config.h"
#include "codec/identity.h"
#include "lib/log.h"
#include "tls/tls.h"

struct mtls {
	atomic_uint refs;
	struct tls_ctx *node;
	struct tls_ctx **ids; /* per identities rule */
	char **id_names;
	size_t n_ids;
	struct id_map *map;
	time_t renew_at; /* earliest 2/3-of-lifetime point of a minted certificate; 0: none */
	char cgmount[CG_PATH_MAX];

	/* workload identities found at run time (mtls_set_workload_identity), minted on first use */
	mtls_identity_fn wid;
	void *wid_arg;
	struct certmint_issuer *iss; /* tls.issuer_*; NULL: none configured */
	uint32_t lifetime_s;
	char *ca_file;
	pthread_mutex_t mint_lock; /* guards everything below, iss's RNG and renew_at */
	struct mtls_minted {
		char *id;
		struct tls_ctx *ctx;
	} * minted;
	size_t n_minted, cap_minted;
	bool mint_failed_logged, full_logged;
	atomic_ullong n_mint_fail, n_fallback;
};

static void mtls_free(struct mtls *m)
{
	size_t i;

	for (i = 0; i < m->n_ids; i++) {
		tls_ctx_unref(m->ids[i]);
		free(m->id_names[i]);
	}
	for (i = 0; i < m->n_minted; i++) {
		tls_ctx_unref(m->minted[i].ctx);
		free(m->minted[i].id);
	}
	free(m->minted);
	certmint_issuer_free(m->iss);
	free(m->ca_file);
	pthread_mutex_destroy(&m->mint_lock);
	free(m->ids);
	free(m->id_names);
	tls_ctx_unref(m->node);
	id_map_free(m->map);
	free(m);
}

int mtls_load(const struct weft_config *cfg, const char *cgmount, struct mtls **out, char *err, size_t errlen)
{
	struct certmint_issuer *iss = NULL;
	struct tls_ctx_opts o;
	struct mtls *m;
	char e2[512];
	size_t i;

	*out = NULL;
	if (!cfg->tls_ca)
		return 0;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	atomic_init(&m->refs, 1);
	if (pthread_mutex_init(&m->mint_lock, NULL) != 0) {
		free(m);
		return -ENOMEM;
	}
	m->lifetime_s = cfg->tls_cert_lifetime_s;
	m->ca_file = strdup(cfg->tls_ca);
	if (!m->ca_file) {
		pthread_mutex_destroy(&m->mint_lock);
		free(m);
		return -ENOMEM;
	}
	snprintf(m->cgmount, sizeof(m->cgmount), "%s", cgmount);
	memset(&o, 0, sizeof(o));
	o.ca_file = cfg->tls_ca;
	o.cert_file = cfg->tls_cert;
	o.key_file = cfg->tls_key;
	o.trust_domain = cfg->tls_trust_domain;
	m->node = tls_ctx_load(&o, e2, sizeof(e2));
	if (!m->node) {
		snprintf(err, errlen, "%s: tls: %s", cfg->path, e2);
		goto err;
	}
	m->map = id_map_new(cgmount);
	m->ids = calloc(cfg->n_identities ? cfg->n_identities : 1, sizeof(*m->ids));
	m->id_names = calloc(cfg->n_identities ? cfg->n_identities : 1, sizeof(*m->id_names));
	if (!m->map || !m->ids || !m->id_names) {
		snprintf(err, errlen, "out of memory");
		goto err;
	}
	if (cfg->tls_issuer_cert &&
	    certmint_issuer_load(cfg->tls_issuer_cert, cfg->tls_issuer_key, &iss, e2, sizeof(e2)) < 0) {
		snprintf(err, errlen, "%s: tls.issuer_cert: %s", cfg->path, e2);
		goto err;
	}
	for (i = 0; i < cfg->n_identities; i++) {
		const struct cfg_identity *id = &cfg->identities[i];
		struct certmint_out mo = { 0 };

		o.trust_domain = tls_ctx_trust_domain(m->node);
		if (id->cert) {
			o.cert_file = id->cert;
			o.key_file = id->key;
			o.cert_pem = o.key_pem = NULL;
		} else {
			/* minted in memory: the key never touches the disk */
			struct certmint_req req = { .identity = id->identity, .lifetime_s = cfg->tls_cert_lifetime_s };
			time_t ra;

			if (certmint_issue(iss, &req, &mo, e2, sizeof(e2)) < 0) {
				snprintf(err, errlen, "%s:%d: identities[%zu]: cannot mint a certificate: %s",
					 cfg->path, id->line, i, e2);
				goto err;
			}
			o.cert_file = o.key_file = NULL;
			o.cert_pem = mo.cert;
			o.cert_pem_len = mo.cert_len;
			o.key_pem = mo.key;
			o.key_pem_len = mo.key_len;
			ra = certmint_renew_at(mo.not_before, mo.not_after);
			if (!m->renew_at || ra < m->renew_at)
				m->renew_at = ra;
		}
		m->ids[i] = tls_ctx_load(&o, e2, sizeof(e2));
		certmint_out_free(&mo);
		if (!m->ids[i]) {
			snprintf(err, errlen, "%s:%d: identities[%zu]: %s", cfg->path, id->line, i, e2);
			goto err;
		}
		m->n_ids++;
		if (strcmp(tls_ctx_identity(m->ids[i]), id->identity) != 0) {
			snprintf(err, errlen,
				 "%s:%d: identities[%zu]: certificate '%s' is for %s, not %s; issue one for "
				 "this identity (scripts/weft-ca issue)",
				 cfg->path, id->line, i, id->cert, tls_ctx_identity(m->ids[i]), id->identity);
			goto err;
		}
		m->id_names[i] = strdup(id->identity);
		if (!m->id_names[i] || id_map_add(m->map, id->cgroup, id->identity, e2, sizeof(e2)) < 0) {
			snprintf(err, errlen, "%s:%d: identities[%zu]: %s", cfg->path, id->line, i,
				 m->id_names[i] ? e2 : "out of memory");
			goto err;
		}
	}
	m->iss = iss; /* kept: workload identities found at run time are minted with it */
	*out = m;
	return 0;
err:
	certmint_issuer_free(iss);
	mtls_free(m);
	return -EINVAL;
}

struct mtls *mtls_ref(struct mtls *m)
{
	if (m)
		atomic_fetch_add(&m->refs, 1);
	return m;
}

void mtls_unref(struct mtls *m)
{
	if (m && atomic_fetch_sub(&m->refs, 1) == 1)
		mtls_free(m);
}

struct tls_ctx *mtls_node_ctx(const struct mtls *m)
{
	return m->node;
}

const char *mtls_trust_domain(const struct mtls *m)
{
	return tls_ctx_trust_domain(m->node);
}

void mtls_set_workload_identity(struct mtls *m, mtls_identity_fn fn, void *arg)
{
	m->wid = fn;
	m->wid_arg = arg;
}

/*
 * The context for a workload identity found at run time: the one minted
 * before, or a new one (a fresh key and certificate from the node issuer:
 * about a millisecond, once per identity and bundle). NULL when it cannot be
 * had (no issuer, minting failed, MTLS_MAX_MINTED reached): the caller uses
 * the node's. Takes mint_lock.
 */
static struct tls_ctx *mtls_minted_ctx(struct mtls *m, const char *id)
{
	struct certmint_req req = { .identity = id, .lifetime_s = m->lifetime_s };
	struct certmint_out mo = { 0 };
	struct tls_ctx_opts o;
	struct tls_ctx *ctx = NULL;
	char e2[512];
	size_t i;

	pthread_mutex_lock(&m->mint_lock);
	for (i = 0; i < m->n_minted; i++)
		if (strcmp(m->minted[i].id, id) == 0) {
			ctx = m->minted[i].ctx;
			goto out;
		}
	if (!m->iss) {
		if (!m->mint_failed_logged)
			log_warn("workload %s: no tls.issuer_cert/issuer_key to mint its certificate; its cross-node "
				 "connections use the node identity %s",
				 id, tls_ctx_identity(m->node));
		m->mint_failed_logged = true;
		goto out;
	}
	if (m->n_minted >= MTLS_MAX_MINTED) {
		if (!m->full_logged)
			log_warn("more than %d workload identities on this node; %s and later ones use the node "
				 "identity",
				 MTLS_MAX_MINTED, id);
		m->full_logged = true;
		goto out;
	}
	if (m->n_minted == m->cap_minted) {
		size_t cap = m->cap_minted ? m->cap_minted * 2 : 16;
		struct mtls_minted *v = realloc(m->minted, cap * sizeof(*v));

		if (!v)
			goto out;
		m->minted = v;
		m->cap_minted = cap;
	}
	if (certmint_issue(m->iss, &req, &mo, e2, sizeof(e2)) < 0) {
		log_error_rl("workload %s: cannot mint a certificate (%s); using the node identity", id, e2);
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.trust_domain = tls_ctx_trust_domain(m->node);
	o.ca_file = m->ca_file;
	o.cert_pem = mo.cert;
	o.cert_pem_len = mo.cert_len;
	o.key_pem = mo.key;
	o.key_pem_len = mo.key_len;
	ctx = tls_ctx_load(&o, e2, sizeof(e2));
	if (ctx) {
		time_t ra = certmint_renew_at(mo.not_before, mo.not_after);
		char *dup = strdup(id);

		if (!dup) {
			tls_ctx_unref(ctx);
			ctx = NULL;
		} else {
			m->minted[m->n_minted].id = dup;
			m->minted[m->n_minted].ctx = ctx;
			m->n_minted++;
			if (!m->renew_at || ra < m->renew_at)
				m->renew_at = ra;
			log_info("workload identity %s: certificate minted (valid until %lld)", id,
				 (long long)mo.not_after);
		}
	} else {
		log_error_rl("workload %s: the minted certificate does not load (%s); using the node identity", id, e2);
	}
	certmint_out_free(&mo);
out:
	pthread_mutex_unlock(&m->mint_lock);
	if (!ctx)
		atomic_fetch_add(&m->n_mint_fail, 1);
	return ctx;
}

struct tls_ctx *mtls_client_ctx(struct mtls *m, uint64_t cgroup_id)
{
	char path[CG_PATH_MAX], wid[SPIFFE_ID_MAX + 1];
	struct tls_ctx *ctx;
	const char *id;
	size_t i;

	if ((!m->n_ids && !m->wid) || cg_path_of(m->cgmount, cgroup_id, path, sizeof(path)) < 0)
		return m->node;
	id = m->n_ids ? id_map_lookup(m->map, path) : NULL;
	if (id) {
		for (i = 0; i < m->n_ids; i++)
			if (strcmp(m->id_names[i], id) == 0)
				return m->ids[i];
		return m->node;
	}
	if (!m->wid || !m->wid(m->wid_arg, path, tls_ctx_trust_domain(m->node), wid, sizeof(wid)))
		return m->node;
	ctx = mtls_minted_ctx(m, wid);
	if (!ctx)
		atomic_fetch_add(&m->n_fallback, 1);
	return ctx ? ctx : m->node;
}

void mtls_stats(struct mtls *m, struct mtls_stats *st)
{
	pthread_mutex_lock(&m->mint_lock);
	st->minted = m->n_minted;
	pthread_mutex_unlock(&m->mint_lock);
	st->configured = m->n_ids;
	st->mint_failures = atomic_load(&m->n_mint_fail);
	st->fallbacks = atomic_load(&m->n_fallback);
}

bool mtls_files_changed(struct mtls *m)
{
	time_t renew_at;
	size_t i;

	pthread_mutex_lock(&m->mint_lock);
	renew_at = m->renew_at;
	pthread_mutex_unlock(&m->mint_lock);
	if (renew_at && time(NULL) >= renew_at)
		return true; /* a minted certificate reached 2/3 of its lifetime: mint again */
	if (tls_ctx_files_changed(m->node))
		return true;
	for (i = 0; i < m->n_ids; i++)
		if (tls_ctx_files_changed(m->ids[i]))
			return true;
	return false;
}

time_t mtls_earliest_expiry(struct mtls *m)
{
	time_t t = tls_cert_not_after(m->node);
	size_t i;

	for (i = 0; i < m->n_ids; i++)
		if (tls_cert_not_after(m->ids[i]) < t)
			t = tls_cert_not_after(m->ids[i]);
	pthread_mutex_lock(&m->mint_lock);
	for (i = 0; i < m->n_minted; i++)
		if (tls_cert_not_after(m->minted[i].ctx) < t)
			t = tls_cert_not_after(m->minted[i].ctx);
	pthread_mutex_unlock(&m->mint_lock);
	return t;
}
