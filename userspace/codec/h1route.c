// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "codec/h1route.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void kv_free(struct h1r_kv *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

static int kv_copy(struct h1r_kv **out, const struct cfg_header_kv *in, size_t n)
{
	size_t i;

	*out = NULL;
	if (!n)
		return 0;
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		/* on failure the caller frees all n entries: the rest are NULL */
		(*out)[i].name = xstrdup(in[i].name);
		(*out)[i].value = xstrdup(in[i].value);
		if (!(*out)[i].name || (in[i].value && !(*out)[i].value))
			return -ENOMEM;
		(*out)[i].nlen = strlen(in[i].name);
		(*out)[i].vlen = in[i].value ? strlen(in[i].value) : 0;
	}
	return 0;
}

void h1r_route_free(struct h1r_route *r)
{
	size_t i;

	free(r->name);
	free(r->method);
	free(r->host);
	free(r->path);
	kv_free(r->mh, r->n_mh);
	for (i = 0; r->be && i < r->n_be; i++)
		free(r->be[i].service);
	free(r->be);
	kv_free(r->add, r->n_add);
	kv_free(r->rm, r->n_rm);
}

int h1r_route_init(struct h1r_route *r, const struct cfg_route *c)
{
	size_t i;

	r->name = xstrdup(c->name);
	r->method = xstrdup(c->method);
	r->host = xstrdup(c->host);
	r->path = xstrdup(c->path);
	if (!r->name || (c->method && !r->method) || (c->host && !r->host) || (c->path && !r->path))
		return -ENOMEM;
	r->host_len = r->host ? strlen(r->host) : 0;
	r->path_kind = c->path ? c->path_kind : CFG_PATH_ANY;
	r->path_len = r->path ? strlen(r->path) : 0;
	r->n_mh = c->n_match_headers;
	if (kv_copy(&r->mh, c->match_headers, c->n_match_headers) < 0)
		return -ENOMEM;
	r->n_add = c->n_add_headers;
	if (kv_copy(&r->add, c->add_headers, c->n_add_headers) < 0)
		return -ENOMEM;
	if (c->n_remove_headers) {
		r->rm = calloc(c->n_remove_headers, sizeof(*r->rm));
		if (!r->rm)
			return -ENOMEM;
		r->n_rm = c->n_remove_headers;
		for (i = 0; i < c->n_remove_headers; i++) {
			r->rm[i].name = xstrdup(c->remove_headers[i]);
			if (!r->rm[i].name)
				return -ENOMEM;
			r->rm[i].nlen = strlen(r->rm[i].name);
		}
	}
	if (c->n_backends) {
		r->be = calloc(c->n_backends, sizeof(*r->be));
		if (!r->be)
			return -ENOMEM;
		r->n_be = c->n_backends;
		for (i = 0; i < c->n_backends; i++) {
			r->be[i].service = xstrdup(c->backends[i].service);
			if (!r->be[i].service)
				return -ENOMEM;
			r->be[i].index = c->backends[i].index;
			r->be[i].weight = c->backends[i].weight;
			r->be_total += c->backends[i].weight;
		}
	}
	r->timeout_ms = c->timeout_ms;
	r->retryable = c->retryable;
	return 0;
}

static bool host_matches(const struct h1r_route *r, const struct h1_request *q)
{
	size_t n;

	if (!r->host)
		return true;
	if (!q->host)
		return false;
	n = q->host_len;
	/* the port is not part of the match; an IPv6 literal keeps its brackets */
	if (n && q->host[0] != '[') {
		const char *c = memchr(q->host, ':', n);

		if (c)
			n = (size_t)(c - q->host);
	} else if (n) {
		const char *c = memchr(q->host, ']', n);

		if (c)
			n = (size_t)(c - q->host) + 1;
	}
	return n == r->host_len && strncasecmp(q->host, r->host, n) == 0;
}

bool h1r_route_matches(const struct h1r_route *r, const struct h1_request *q)
{
	size_t plen, i, j;

	if (r->method && (strlen(r->method) != q->method_len || memcmp(r->method, q->method, q->method_len)))
		return false;
	if (!host_matches(r, q))
		return false;
	if (r->path_kind != CFG_PATH_ANY) {
		const char *qm = memchr(q->path, '?', q->path_len);

		plen = qm ? (size_t)(qm - q->path) : q->path_len;
		if (r->path_kind == CFG_PATH_EXACT && (plen != r->path_len || memcmp(q->path, r->path, plen)))
			return false;
		if (r->path_kind == CFG_PATH_PREFIX && (plen < r->path_len || memcmp(q->path, r->path, r->path_len)))
			return false;
	}
	for (i = 0; i < r->n_mh; i++) {
		bool found = false;

		for (j = 0; j < q->n_headers && !found; j++) {
			const struct h1_header *h = &q->headers[j];

			if (!h1_name_is(h, r->mh[i].name, r->mh[i].nlen))
				continue;
			found = !r->mh[i].value ||
				(h->value_len == r->mh[i].vlen && memcmp(h->value, r->mh[i].value, h->value_len) == 0);
		}
		if (!found)
			return false;
	}
	return true;
}

int h1r_backend_pick(struct h1r_route *r)
{
	struct h1r_backend *best = NULL;
	size_t i;

	for (i = 0; i < r->n_be; i++) {
		if (!r->be[i].weight)
			continue;
		r->be[i].current += r->be[i].weight;
		if (!best || r->be[i].current > best->current)
			best = &r->be[i];
	}
	if (!best)
		return -1;
	best->current -= r->be_total;
	return (int)(best - r->be);
}

/* The names listed in Connection (RFC 9110 7.6.1): hop-by-hop, never forwarded. */
size_t h1r_connection_tokens(const struct h1_header *hs, size_t n, const char **p, size_t *l)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		const char *v, *e;

		if (!h1_name_is(&hs[i], "connection", 10))
			continue;
		v = hs[i].value;
		e = v + hs[i].value_len;
		while (v < e && k < H1R_MAX_CONN_TOKENS) {
			const char *t;

			while (v < e && (*v == ',' || *v == ' ' || *v == '\t'))
				v++;
			t = v;
			while (v < e && *v != ',' && *v != ' ' && *v != '\t')
				v++;
			if (v > t) {
				p[k] = t;
				l[k++] = (size_t)(v - t);
			}
		}
	}
	return k;
}

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

int h1r_detect(const unsigned char *p, size_t n)
{
	size_t i, m = sizeof(h2_preface) - 1;

	if (!n)
		return -1;
	if (memcmp(p, h2_preface, n < m ? n : m) == 0)
		return n >= m ? H1R_HTTP2 : -1;
	if (p[0] == 0x16)
		return n < 2 ? -1 : p[1] == 0x03 ? H1R_TLS : H1R_OPAQUE;
	for (i = 0; i < n && i <= 20; i++) {
		if (p[i] == ' ')
			return i ? H1R_HTTP1 : H1R_OPAQUE;
		if (p[i] < 'A' || p[i] > 'Z')
			return H1R_OPAQUE;
	}
	return i > 20 ? H1R_OPAQUE : -1;
}
