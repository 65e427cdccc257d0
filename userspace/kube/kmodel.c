// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* kmodel: Kubernetes objects -> weft services (kmodel.h). */
#include "kube/kmodel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config.h"

#define KM_BUCKETS 4096
#define KM_NO_NODE UINT32_MAX
#define KM_KEY_MAX (K8S_NAMESPACE_MAX + 1 + K8S_NAME_MAX + 1)

/* What every table entry starts with. */
struct km_head {
	struct km_head *next;
	uint64_t gen; /* resync mark */
	char key[KM_KEY_MAX];
};

struct km_table {
	struct km_head *b[KM_BUCKETS];
	size_t n;
};

struct km_port {
	char name[K8S_PORT_NAME_MAX + 1];
	uint16_t port;
	bool http;
};

struct km_svc {
	struct km_head h; /* key "ns/name" (all a service's name needs) */
	struct k8s_ip ips[K8S_MAX_IPS];
	size_t n_ips;
	struct km_port *ports;
	size_t n_ports;
};

struct km_ep {
	struct k8s_ip ip;
	uint32_t node; /* index in names, KM_NO_NODE: none given */
	bool ready;
};

struct km_slice {
	struct km_head h;            /* key "ns/name" */
	char svc_key[KM_KEY_MAX];    /* "ns/<kubernetes.io/service-name>" */
	struct km_slice *build_next; /* kmodel_services' per-service chain */
	sa_family_t family;          /* AF_INET or AF_INET6 */
	struct km_port *ports;
	size_t n_ports;
	struct km_ep *eps;
	size_t n_eps;
};

struct km_node {
	struct km_head h; /* key: the node name */
	struct k8s_ip ips[K8S_MAX_IPS];
	size_t n_ips;
};

struct km_pod {
	struct km_head h; /* key: the pod UID */
	char ns[K8S_NAMESPACE_MAX + 1];
	char sa[K8S_NAME_MAX + 1];
};

struct kmodel {
	char node_name[K8S_NAME_MAX + 1];
	uint16_t inbound_port;
	struct km_table svcs, slices, nodes, pods;
	uint64_t gen[4]; /* resync generation per kind */
	/* node names seen in endpoints, interned */
	char **names;
	size_t n_names, cap_names;
	size_t last_eps, last_no_node, last_not_ready;
};

static size_t km_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return (size_t)(h % KM_BUCKETS);
}

static struct km_head *km_find(const struct km_table *t, const char *key)
{
	struct km_head *e;

	for (e = t->b[km_hash(key)]; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

static void km_insert(struct km_table *t, struct km_head *e)
{
	size_t h = km_hash(e->key);

	e->next = t->b[h];
	t->b[h] = e;
	t->n++;
}

static struct km_head *km_unlink(struct km_table *t, const char *key)
{
	struct km_head **pp = &t->b[km_hash(key)];

	for (; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->key, key)) {
			struct km_head *e = *pp;

			*pp = e->next;
			t->n--;
			return e;
		}
	return NULL;
}

static void km_free_entry(enum k8s_kind kind, struct km_head *e)
{
	if (kind == K8S_SERVICE)
		free(((struct km_svc *)e)->ports);
	else if (kind == K8S_ENDPOINTSLICE) {
		free(((struct km_slice *)e)->ports);
		free(((struct km_slice *)e)->eps);
	}
	free(e);
}

static struct km_table *km_table_of(struct kmodel *m, enum k8s_kind kind)
{
	switch (kind) {
	case K8S_SERVICE:
		return &m->svcs;
	case K8S_ENDPOINTSLICE:
		return &m->slices;
	case K8S_NODE:
		return &m->nodes;
	case K8S_POD:
		return &m->pods;
	}
	return NULL;
}

struct kmodel *kmodel_new(const char *node_name, uint16_t inbound_port)
{
	struct kmodel *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	snprintf(m->node_name, sizeof(m->node_name), "%s", node_name ? node_name : "");
	m->inbound_port = inbound_port;
	return m;
}

void kmodel_free(struct kmodel *m)
{
	static const enum k8s_kind kinds[] = { K8S_SERVICE, K8S_ENDPOINTSLICE, K8S_POD, K8S_NODE };
	size_t i, b;

	if (!m)
		return;
	for (i = 0; i < 4; i++) {
		struct km_table *t = km_table_of(m, kinds[i]);

		for (b = 0; b < KM_BUCKETS; b++)
			while (t->b[b]) {
				struct km_head *e = t->b[b];

				t->b[b] = e->next;
				km_free_entry(kinds[i], e);
			}
	}
	for (i = 0; i < m->n_names; i++)
		free(m->names[i]);
	free(m->names);
	free(m);
}

static uint32_t km_intern(struct kmodel *m, const char *name)
{
	size_t i;

	if (!*name)
		return KM_NO_NODE;
	/* few nodes per cluster view; a linear scan per new slice is fine */
	for (i = 0; i < m->n_names; i++)
		if (!strcmp(m->names[i], name))
			return (uint32_t)i;
	if (m->n_names == m->cap_names) {
		size_t cap = m->cap_names ? m->cap_names * 2 : 16;
		char **n = realloc(m->names, cap * sizeof(*n));

		if (!n)
			return KM_NO_NODE;
		m->names = n;
		m->cap_names = cap;
	}
	m->names[m->n_names] = strdup(name);
	if (!m->names[m->n_names])
		return KM_NO_NODE;
	return (uint32_t)m->n_names++;
}

static bool km_http(const char *app_protocol)
{
	return !strcmp(app_protocol, "http");
}

static void km_key(char *key, const struct k8s_meta *meta)
{
	if (meta->ns[0])
		snprintf(key, KM_KEY_MAX, "%s/%s", meta->ns, meta->name);
	else
		snprintf(key, KM_KEY_MAX, "%s", meta->name);
}

/* A new entry for o (not yet in a table): NULL on out of memory. */
static struct km_head *km_build(struct kmodel *m, const struct k8s_object *o)
{
	size_t i;

	switch (o->kind) {
	case K8S_SERVICE: {
		struct km_svc *s = calloc(1, sizeof(*s));

		if (!s)
			return NULL;
		if (o->svc.type != K8S_SVC_EXTERNAL_NAME && !o->svc.headless) {
			s->n_ips = o->svc.n_ips;
			memcpy(s->ips, o->svc.ips, sizeof(s->ips[0]) * s->n_ips);
		}
		if (o->svc.n_ports) {
			s->ports = calloc(o->svc.n_ports, sizeof(*s->ports));
			if (!s->ports) {
				free(s);
				return NULL;
			}
		}
		for (i = 0; i < o->svc.n_ports; i++) {
			const struct k8s_service_port *p = &o->svc.ports[i];

			if (p->protocol != K8S_PROTO_TCP)
				continue;
			snprintf(s->ports[s->n_ports].name, sizeof(s->ports[0].name), "%s", p->name);
			s->ports[s->n_ports].port = p->port;
			s->ports[s->n_ports].http = km_http(p->app_protocol);
			s->n_ports++;
		}
		return &s->h;
	}
	case K8S_ENDPOINTSLICE: {
		struct km_slice *s = calloc(1, sizeof(*s));
		size_t n = 0;

		if (!s)
			return NULL;
		snprintf(s->svc_key, sizeof(s->svc_key), "%s/%s", o->meta.ns, o->es.service_name);
		s->family = o->es.address_type == K8S_ADDR_IPV6 ? AF_INET6 : AF_INET;
		if (o->es.address_type == K8S_ADDR_FQDN || !o->es.service_name[0])
			return &s->h; /* nothing weft can route to */
		if (o->es.n_ports)
			s->ports = calloc(o->es.n_ports, sizeof(*s->ports));
		if (o->es.n_endpoints)
			s->eps = calloc(o->es.n_endpoints, sizeof(*s->eps));
		if ((o->es.n_ports && !s->ports) || (o->es.n_endpoints && !s->eps)) {
			km_free_entry(K8S_ENDPOINTSLICE, &s->h);
			return NULL;
		}
		for (i = 0; i < o->es.n_ports; i++) {
			const struct k8s_endpoint_port *p = &o->es.ports[i];

			if (p->protocol != K8S_PROTO_TCP || !p->port)
				continue;
			snprintf(s->ports[s->n_ports].name, sizeof(s->ports[0].name), "%s", p->name);
			s->ports[s->n_ports].port = p->port;
			s->ports[s->n_ports].http = km_http(p->app_protocol);
			s->n_ports++;
		}
		for (i = 0; i < o->es.n_endpoints; i++) {
			const struct k8s_endpoint *e = &o->es.endpoints[i];

			/* addresses: the API says consumers use the first (the others are for the same pod) */
			if (!e->n_addrs || !e->addrs)
				continue;
			s->eps[n].ip = e->addrs[0];
			s->eps[n].ready = e->ready && !e->terminating;
			s->eps[n].node = km_intern(m, e->node_name);
			n++;
		}
		s->n_eps = n;
		return &s->h;
	}
	case K8S_NODE: {
		struct km_node *nd = calloc(1, sizeof(*nd));

		if (!nd)
			return NULL;
		nd->n_ips = o->node.n_ips;
		memcpy(nd->ips, o->node.internal_ips, sizeof(nd->ips[0]) * nd->n_ips);
		return &nd->h;
	}
	case K8S_POD: {
		struct km_pod *p;

		/* this node's pods only (the watch asks for them; a list may not) */
		if (m->node_name[0] && strcmp(o->pod.node_name, m->node_name))
			return NULL;
		p = calloc(1, sizeof(*p));
		if (!p)
			return NULL;
		snprintf(p->ns, sizeof(p->ns), "%s", o->meta.ns);
		snprintf(p->sa, sizeof(p->sa), "%s", o->pod.service_account[0] ? o->pod.service_account : "default");
		return &p->h;
	}
	}
	return NULL;
}

int kmodel_apply(struct kmodel *m, enum k8s_event_type t, const struct k8s_object *o)
{
	struct km_table *tab = km_table_of(m, o->kind);
	struct km_head *old, *e;
	char key[KM_KEY_MAX];

	if (!tab || (t != K8S_EV_ADDED && t != K8S_EV_MODIFIED && t != K8S_EV_DELETED))
		return 0;
	if (o->kind == K8S_POD)
		snprintf(key, sizeof(key), "%s", o->meta.uid);
	else
		km_key(key, &o->meta);
	old = km_unlink(tab, key);
	if (old)
		km_free_entry(o->kind, old);
	if (t == K8S_EV_DELETED)
		return old && o->kind != K8S_POD ? 1 : 0;
	e = km_build(m, o);
	if (!e)
		return o->kind == K8S_POD ? (old ? 1 : 0) : -ENOMEM;
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->gen = m->gen[o->kind];
	km_insert(tab, e);
	return o->kind == K8S_POD ? 0 : 1;
}

void kmodel_resync_begin(struct kmodel *m, enum k8s_kind kind)
{
	m->gen[kind]++;
}

int kmodel_resync_end(struct kmodel *m, enum k8s_kind kind)
{
	struct km_table *t = km_table_of(m, kind);
	int changed = 0;
	size_t b;

	for (b = 0; b < KM_BUCKETS; b++) {
		struct km_head **pp = &t->b[b];

		while (*pp) {
			struct km_head *e = *pp;

			if (e->gen == m->gen[kind]) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			t->n--;
			km_free_entry(kind, e);
			changed = 1;
		}
	}
	return changed;
}

static void km_sockaddr(const struct k8s_ip *ip, uint16_t port, struct weft_sockaddr *out)
{
	k8s_ip_sockaddr(ip, port, out);
}

/* Where an endpoint on node idx is reached: false when that node is unknown. */
static bool km_via(const struct kmodel *m, uint32_t idx, sa_family_t fam, struct weft_sockaddr *node)
{
	const struct km_node *nd;
	size_t i;

	if (idx == KM_NO_NODE || idx >= m->n_names)
		return false;
	nd = (const struct km_node *)km_find(&m->nodes, m->names[idx]);
	if (!nd || !nd->n_ips)
		return false;
	for (i = 0; i < nd->n_ips; i++)
		if (nd->ips[i].family == fam) {
			km_sockaddr(&nd->ips[i], m->inbound_port, node);
			return true;
		}
	km_sockaddr(&nd->ips[0], m->inbound_port, node);
	return true;
}

static bool km_local(const struct kmodel *m, uint32_t idx)
{
	return idx == KM_NO_NODE || (idx < m->n_names && !strcmp(m->names[idx], m->node_name));
}

void kmodel_services_free(struct cfg_service *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(s[i].name);
		free(s[i].addrs);
		free(s[i].endpoints);
	}
	free(s);
}

int kmodel_services(const struct kmodel *mc, struct cfg_service **out, size_t *nout)
{
	struct kmodel *m = (struct kmodel *)mc; /* build_next links and the counters only */
	struct km_slice **heads = NULL;
	struct cfg_service *res = NULL;
	size_t n = 0, cap = 0, b, i, j;

	*out = NULL;
	*nout = 0;
	m->last_eps = m->last_no_node = m->last_not_ready = 0;
	/* slices by service, for this build */
	heads = calloc(KM_BUCKETS, sizeof(*heads));
	if (!heads)
		return -ENOMEM;
	for (b = 0; b < KM_BUCKETS; b++) {
		struct km_head *e;

		for (e = m->slices.b[b]; e; e = e->next) {
			struct km_slice *s = (struct km_slice *)e;
			size_t h = km_hash(s->svc_key);

			s->build_next = heads[h];
			heads[h] = s;
		}
	}
	for (b = 0; b < KM_BUCKETS; b++) {
		struct km_head *e;

		for (e = m->svcs.b[b]; e; e = e->next) {
			const struct km_svc *sv = (const struct km_svc *)e;

			if (!sv->n_ips)
				continue;
			for (i = 0; i < sv->n_ports; i++) {
				const struct km_port *sp = &sv->ports[i];
				struct cfg_service *cs;
				struct km_slice *sl;
				size_t neps = 0, k;
				char name[KM_KEY_MAX + 8];

				if (n == cap) {
					size_t nc = cap ? cap * 2 : 64;
					struct cfg_service *r = realloc(res, nc * sizeof(*r));

					if (!r)
						goto oom;
					res = r;
					cap = nc;
				}
				cs = &res[n];
				memset(cs, 0, sizeof(*cs));
				cfg_service_defaults(cs);
				cs->protocol = sp->http ? CFG_PROTO_HTTP : CFG_PROTO_AUTO;
				cs->source = CFG_SRC_KUBERNETES;
				snprintf(name, sizeof(name), "%s:%u", sv->h.key, sp->port);
				cs->name = strdup(name);
				cs->addrs = calloc(sv->n_ips, sizeof(*cs->addrs));
				n++;
				if (!cs->name || !cs->addrs)
					goto oom;
				for (k = 0; k < sv->n_ips; k++)
					km_sockaddr(&sv->ips[k], sp->port, &cs->addrs[k]);
				cs->n_addrs = sv->n_ips;
				/* count first, then fill */
				for (sl = heads[km_hash(sv->h.key)]; sl; sl = sl->build_next)
					if (!strcmp(sl->svc_key, sv->h.key))
						neps += sl->n_eps;
				if (!neps)
					continue;
				cs->endpoints = calloc(neps, sizeof(*cs->endpoints));
				if (!cs->endpoints)
					goto oom;
				for (sl = heads[km_hash(sv->h.key)]; sl; sl = sl->build_next) {
					const struct km_port *ep_port = NULL;

					if (strcmp(sl->svc_key, sv->h.key))
						continue;
					for (k = 0; k < sl->n_ports; k++)
						if (!strcmp(sl->ports[k].name, sp->name)) {
							ep_port = &sl->ports[k];
							break;
						}
					if (!ep_port)
						continue;
					for (j = 0; j < sl->n_eps; j++) {
						const struct km_ep *ep = &sl->eps[j];
						struct cfg_endpoint *ce = &cs->endpoints[cs->n_endpoints];

						if (!ep->ready) {
							m->last_not_ready++;
							continue;
						}
						if (!km_local(m, ep->node)) {
							if (!km_via(m, ep->node, ep->ip.family, &ce->node)) {
								m->last_no_node++;
								continue;
							}
							ce->has_node = true;
						}
						km_sockaddr(&ep->ip, ep_port->port, &ce->addr);
						ce->weight = 1;
						if (ep_port->http)
							cs->protocol = CFG_PROTO_HTTP;
						cs->n_endpoints++;
						m->last_eps++;
					}
				}
			}
		}
	}
	free(heads);
	*out = res;
	*nout = n;
	return 0;
oom:
	free(heads);
	kmodel_services_free(res, n);
	return -ENOMEM;
}

void kmodel_stats(const struct kmodel *m, struct kmodel_stats *st)
{
	st->services = m->svcs.n;
	st->slices = m->slices.n;
	st->nodes = m->nodes.n;
	st->pods = m->pods.n;
	st->endpoints = m->last_eps;
	st->endpoints_no_node = m->last_no_node;
	st->endpoints_not_ready = m->last_not_ready;
}

size_t kmodel_pods_each(const struct kmodel *m, void (*fn)(void *arg, const char *uid, const char *ns, const char *sa),
			void *arg)
{
	const struct km_head *e;
	size_t b, n = 0;

	for (b = 0; b < KM_BUCKETS; b++)
		for (e = m->pods.b[b]; e; e = e->next, n++)
			fn(arg, e->key, ((const struct km_pod *)e)->ns, ((const struct km_pod *)e)->sa);
	return n;
}
