// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: the Kubernetes API decoders (bytes from the API server, or from
 * whatever answers in its place) and the watch stream line splitter. Every
 * input is decoded as a watch event of each kind, as a list of each kind, and
 * as a Status, and is fed to the splitter in chunks whose sizes come from the
 * input, each line then decoded as an event. Beyond "no crash", checks:
 * - a decoded object keeps its bounds: counts within the limits, service ports
 *   in 1..65535, IP families AF_INET/AF_INET6 (of the slice's type),
 *   endpoint addresses inside the slice's pool, every string NUL-terminated
 *   inside its array;
 * - a failure leaves a NUL-terminated, non-empty message and an event that
 *   owns nothing;
 * - what decodes was valid JSON (tests/common/json_valid.h agrees with
 *   jansson, where nesting lets it judge);
 * - the splitter hands over the same lines as a split of the whole input,
 *   never a line longer than its max, and never holds more than max bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/k8s.h"
#include "../common/json_valid.h"

#define STR_OK(a) (memchr((a), '\0', sizeof(a)) != NULL)

static void check_ip(const struct k8s_ip *ip)
{
	char buf[K8S_IP_STRLEN];
	struct weft_sockaddr sa;

	if (ip->family != AF_INET && ip->family != AF_INET6)
		abort();
	k8s_ip_format(ip, 65535, buf, sizeof(buf));
	if (strlen(buf) >= sizeof(buf))
		abort();
	k8s_ip_sockaddr(ip, 1, &sa);
}

static void check_meta(const struct k8s_meta *m)
{
	if (!STR_OK(m->ns) || !STR_OK(m->name) || !STR_OK(m->uid) || !STR_OK(m->resource_version))
		abort();
}

static void check_object(const struct k8s_object *o)
{
	size_t i, j, k = 0;

	check_meta(&o->meta);
	if (!o->meta.name[0] || !o->meta.uid[0] || !o->meta.resource_version[0])
		abort();
	switch (o->kind) {
	case K8S_SERVICE:
		if (o->svc.n_ips > K8S_MAX_IPS || o->svc.n_ports > K8S_MAX_PORTS || (o->svc.headless && o->svc.n_ips) ||
		    !STR_OK(o->svc.external_name) || (!o->svc.ports) != (o->svc.n_ports == 0))
			abort();
		for (i = 0; i < o->svc.n_ips; i++)
			check_ip(&o->svc.ips[i]);
		for (i = 0; i < o->svc.n_ports; i++) {
			const struct k8s_service_port *p = &o->svc.ports[i];

			if (p->port == 0 || (p->target_port == 0) == !p->target_port_name[0] || !STR_OK(p->name) ||
			    !STR_OK(p->app_protocol) || !STR_OK(p->target_port_name) || p->protocol > K8S_PROTO_SCTP)
				abort();
		}
		break;
	case K8S_ENDPOINTSLICE:
		if (o->es.n_ports > K8S_MAX_PORTS || o->es.n_endpoints > K8S_MAX_ENDPOINTS ||
		    o->es.n_addrs > (size_t)K8S_MAX_ENDPOINTS * K8S_MAX_ADDRS || !STR_OK(o->es.service_name) ||
		    o->es.address_type > K8S_ADDR_FQDN)
			abort();
		for (i = 0; i < o->es.n_ports; i++)
			if (!STR_OK(o->es.ports[i].name) || !STR_OK(o->es.ports[i].app_protocol))
				abort();
		for (i = 0; i < o->es.n_endpoints; i++) {
			const struct k8s_endpoint *e = &o->es.endpoints[i];

			if (e->n_addrs == 0 || e->n_addrs > K8S_MAX_ADDRS || !STR_OK(e->node_name) ||
			    !STR_OK(e->zone) || !STR_OK(e->target_ref.kind) || !STR_OK(e->target_ref.ns) ||
			    !STR_OK(e->target_ref.name) || !STR_OK(e->target_ref.uid))
				abort();
			if (o->es.address_type == K8S_ADDR_FQDN) {
				if (e->addrs)
					abort();
				continue;
			}
			if (e->addrs != o->es.addr_pool + k)
				abort();
			for (j = 0; j < e->n_addrs; j++) {
				check_ip(&e->addrs[j]);
				if (e->addrs[j].family != (o->es.address_type == K8S_ADDR_IPV4 ? AF_INET : AF_INET6))
					abort();
			}
			k += e->n_addrs;
		}
		if (o->es.address_type != K8S_ADDR_FQDN && k != o->es.n_addrs)
			abort();
		break;
	case K8S_POD:
		if (o->pod.n_ips > K8S_MAX_IPS || !STR_OK(o->pod.node_name) || !STR_OK(o->pod.service_account) ||
		    o->pod.phase > K8S_POD_UNKNOWN)
			abort();
		for (i = 0; i < o->pod.n_ips; i++)
			check_ip(&o->pod.ips[i]);
		break;
	case K8S_NODE:
		if (o->node.n_ips > K8S_MAX_IPS || o->meta.ns[0])
			abort();
		for (i = 0; i < o->node.n_ips; i++)
			check_ip(&o->node.internal_ips[i]);
		break;
	default:
		abort();
	}
}

static void check_err(const char *err, size_t errlen)
{
	if (!memchr(err, '\0', errlen) || !err[0])
		abort();
}

/* jansson and the test validator agree on what is JSON (when nesting lets the validator judge). */
static void check_json(const uint8_t *data, size_t size)
{
	size_t i, open = 0;

	for (i = 0; i < size; i++)
		open += data[i] == '{' || data[i] == '[';
	if (open < 64 && !json_valid((const char *)data, size))
		abort();
}

static int list_fn(void *arg, const struct k8s_object *o)
{
	size_t *n = arg;

	check_object(o);
	return ++*n == 1000 ? 1 : 0; /* also walks the early-stop path */
}

static void decode_event(enum k8s_kind kind, const uint8_t *data, size_t size)
{
	struct k8s_event ev;
	char err[256];
	int rc;

	rc = k8s_decode_event(kind, (const char *)data, size, &ev, err, sizeof(err));
	if (rc == 0) {
		check_json(data, size);
		if (ev.obj.kind != kind || ev.type > K8S_EV_ERROR || !STR_OK(ev.status_reason) || !STR_OK(ev.message))
			abort();
		if (ev.type == K8S_EV_BOOKMARK)
			check_meta(&ev.obj.meta);
		else if (ev.type != K8S_EV_ERROR)
			check_object(&ev.obj);
		k8s_object_free(&ev.obj);
	} else if (rc == -EINVAL) {
		check_err(err, sizeof(err));
		if (ev.obj.svc.ports || ev.obj.es.endpoints || ev.obj.es.addr_pool)
			abort();
	} else {
		abort();
	}
}

struct split {
	const uint8_t *whole;
	size_t size, pos; /* where the next line must start in whole */
	size_t max;
};

/* Each line is the next '\n'-terminated run of the whole input. */
static int split_fn(void *arg, const char *line, size_t len)
{
	struct split *s = arg;
	const uint8_t *nl;

	while (s->pos < s->size && s->whole[s->pos] == '\n')
		s->pos++; /* empty lines are skipped */
	nl = memchr(s->whole + s->pos, '\n', s->size - s->pos);
	if (!nl || (size_t)(nl - (s->whole + s->pos)) != len || memcmp(line, s->whole + s->pos, len) != 0 ||
	    len > s->max || len == 0)
		abort();
	s->pos += len + 1;
	decode_event(K8S_ENDPOINTSLICE, (const uint8_t *)line, len);
	return 0;
}

static void split(const uint8_t *data, size_t size)
{
	struct k8s_lines l;
	struct split s = { data, size, 0, 0 };
	size_t i = 0, k, seed = size;
	int rc = 0;

	/* a small max so that too-long lines happen; chunk sizes from the input */
	k8s_lines_init(&l, size ? 16 + data[0] % 200 : 0);
	s.max = l.max;
	while (i < size) {
		seed = seed * 6364136223846793005u + 1442695040888963407u;
		k = 1 + (seed >> 33) % 97;
		if (k > size - i)
			k = size - i;
		rc = k8s_lines_feed(&l, (const char *)data + i, k, split_fn, &s);
		if (l.len > l.max || l.cap > l.max)
			abort();
		if (rc)
			break;
		i += k;
	}
	if (rc && rc != -EMSGSIZE)
		abort();
	if (rc == 0) {
		/* what is pending is exactly the unfinished tail */
		while (s.pos < size && data[s.pos] == '\n')
			s.pos++;
		if (l.len != size - s.pos)
			abort();
	} else if (k8s_lines_feed(&l, "x\n", 2, split_fn, &s) != -EPIPE || l.buf) {
		abort();
	}
	k8s_lines_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char rv[K8S_RV_MAX + 1], err[256], reason[16], msg[32];
	struct k8s_list_meta lm;
	size_t n;
	int kind, rc, code;

	for (kind = K8S_SERVICE; kind <= K8S_NODE; kind++) {
		decode_event((enum k8s_kind)kind, data, size);

		n = 0;
		rc = k8s_decode_list((enum k8s_kind)kind, (const char *)data, size, list_fn, &n, rv, sizeof(rv), err,
				     sizeof(err));
		if (rc == 0) {
			check_json(data, size);
			if (!rv[0] || !STR_OK(rv))
				abort();
		} else if (rc == -EINVAL || rc == -ENOSPC) {
			check_err(err, sizeof(err));
		} else if (rc != 1) {
			abort();
		}
		n = 0;
		rc = k8s_decode_list_page((enum k8s_kind)kind, (const char *)data, size, list_fn, &n, &lm, err,
					  sizeof(err));
		if (rc == 0 && (!lm.resource_version[0] || !STR_OK(lm.cont)))
			abort();
	}
	rc = k8s_decode_status((const char *)data, size, &code, reason, sizeof(reason), msg, sizeof(msg));
	if (rc == 0 && (code < 0 || code > 599 || !STR_OK(reason) || !STR_OK(msg)))
		abort();
	split(data, size);
	return 0;
}
