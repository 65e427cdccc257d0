// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "tls/mtls.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/certmint.h"
#include "kernel/cgroup.h"
#include "config/config.h"
#include "codec/identity.h"
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
};

static void mtls_free(struct mtls *m)
{
	size_t i;

	for (i = 0; i < m->n_ids; i++) {
		tls_ctx_unref(m->ids[i]);
		free(m->id_names[i]);
	}
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
	certmint_issuer_free(iss);
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

struct tls_ctx *mtls_client_ctx(const struct mtls *m, uint64_t cgroup_id)
{
	char path[CG_PATH_MAX];
	const char *id;
	size_t i;

	if (!m->n_ids || cg_path_of(m->cgmount, cgroup_id, path, sizeof(path)) < 0)
		return m->node;
	id = id_map_lookup(m->map, path);
	if (!id)
		return m->node;
	for (i = 0; i < m->n_ids; i++)
		if (strcmp(m->id_names[i], id) == 0)
			return m->ids[i];
	return m->node;
}

bool mtls_files_changed(const struct mtls *m)
{
	size_t i;

	if (m->renew_at && time(NULL) >= m->renew_at)
		return true; /* a minted certificate reached 2/3 of its lifetime: mint again */
	if (tls_ctx_files_changed(m->node))
		return true;
	for (i = 0; i < m->n_ids; i++)
		if (tls_ctx_files_changed(m->ids[i]))
			return true;
	return false;
}

time_t mtls_earliest_expiry(const struct mtls *m)
{
	time_t t = tls_cert_not_after(m->node);
	size_t i;

	for (i = 0; i < m->n_ids; i++)
		if (tls_cert_not_after(m->ids[i]) < t)
			t = tls_cert_not_after(m->ids[i]);
	return t;
}
