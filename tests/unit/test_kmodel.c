// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/kube/kmodel.c: Kubernetes objects -> weft services. Names and
 * VIPs per Service port, ready endpoints only, this node's endpoints direct,
 * other nodes' through their agent (InternalIP + inbound port), unknown nodes
 * left out, appProtocol, resync deleting what a relist no longer has, pods.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "kube/kmodel.h"
#include "lib/addr.h"

static struct k8s_ip ip4(const char *s)
{
	struct k8s_ip ip;

	memset(&ip, 0, sizeof(ip));
	ip.family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, s, &ip.v4), 1);
	return ip;
}

static struct k8s_ip ip6(const char *s)
{
	struct k8s_ip ip;

	memset(&ip, 0, sizeof(ip));
	ip.family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, s, &ip.v6), 1);
	return ip;
}

static void meta(struct k8s_object *o, enum k8s_kind kind, const char *ns, const char *name, const char *uid)
{
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	snprintf(o->meta.ns, sizeof(o->meta.ns), "%s", ns);
	snprintf(o->meta.name, sizeof(o->meta.name), "%s", name);
	snprintf(o->meta.uid, sizeof(o->meta.uid), "%s", uid);
	snprintf(o->meta.resource_version, sizeof(o->meta.resource_version), "1");
}

static struct k8s_service_port svc_ports[2];

/* shop/cart: 10.96.0.10 and fd00::10, ports "http" 80 (appProtocol http) and "grpc" 9090 */
static void cart_service(struct k8s_object *o, bool dual)
{
	meta(o, K8S_SERVICE, "shop", "cart", "u-cart");
	o->svc.type = K8S_SVC_CLUSTER_IP;
	o->svc.ips[0] = ip4("10.96.0.10");
	o->svc.n_ips = 1;
	if (dual) {
		o->svc.ips[1] = ip6("fd00::10");
		o->svc.n_ips = 2;
	}
	memset(svc_ports, 0, sizeof(svc_ports));
	snprintf(svc_ports[0].name, sizeof(svc_ports[0].name), "http");
	svc_ports[0].port = 80;
	snprintf(svc_ports[0].app_protocol, sizeof(svc_ports[0].app_protocol), "http");
	snprintf(svc_ports[1].name, sizeof(svc_ports[1].name), "grpc");
	svc_ports[1].port = 9090;
	snprintf(svc_ports[1].app_protocol, sizeof(svc_ports[1].app_protocol), "kubernetes.io/h2c");
	o->svc.ports = svc_ports;
	o->svc.n_ports = 2;
}

static struct k8s_endpoint_port es_ports[2];
static struct k8s_endpoint es_eps[4];
static struct k8s_ip es_addrs[4];

/* cart's slice: 4 endpoints: local ready, node-b ready, node-c (unknown) ready, local not ready */
static void cart_slice(struct k8s_object *o, const char *name)
{
	static const char *const nodes[4] = { "node-a", "node-b", "node-c", "node-a" };
	int i;

	meta(o, K8S_ENDPOINTSLICE, "shop", name, "u-slice");
	snprintf(o->es.service_name, sizeof(o->es.service_name), "cart");
	o->es.address_type = K8S_ADDR_IPV4;
	memset(es_ports, 0, sizeof(es_ports));
	snprintf(es_ports[0].name, sizeof(es_ports[0].name), "http");
	es_ports[0].port = 8080;
	snprintf(es_ports[1].name, sizeof(es_ports[1].name), "grpc");
	es_ports[1].port = 9000;
	o->es.ports = es_ports;
	o->es.n_ports = 2;
	memset(es_eps, 0, sizeof(es_eps));
	for (i = 0; i < 4; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.244.%d.%d", i, i + 1);
		es_addrs[i] = ip4(a);
		es_eps[i].addrs = &es_addrs[i];
		es_eps[i].n_addrs = 1;
		es_eps[i].ready = i != 3;
		es_eps[i].serving = es_eps[i].ready;
		snprintf(es_eps[i].node_name, sizeof(es_eps[i].node_name), "%s", nodes[i]);
	}
	o->es.endpoints = es_eps;
	o->es.n_endpoints = 4;
	o->es.addr_pool = es_addrs;
	o->es.n_addrs = 4;
}

static void node_b(struct k8s_object *o)
{
	meta(o, K8S_NODE, "", "node-b", "u-node-b");
	o->node.internal_ips[0] = ip4("192.0.2.2");
	o->node.n_ips = 1;
}

static const struct cfg_service *find(const struct cfg_service *s, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(s[i].name, name))
			return &s[i];
	fail_msg("no service %s", name);
	return NULL;
}

static const char *fmt(const struct weft_sockaddr *a)
{
	static char b[4][ADDR_STRLEN];
	static int i;

	i = (i + 1) % 4;
	return addr_format(a, b[i], sizeof(b[i]));
}

static void test_services(void **state)
{
	struct kmodel *m = kmodel_new("node-a", 4143);
	struct kmodel_stats st;
	struct k8s_object o;
	struct cfg_service *s;
	const struct cfg_service *h, *g;
	size_t n;

	(void)state;
	cart_service(&o, true);
	assert_int_equal(kmodel_apply(m, K8S_EV_ADDED, &o), 1);
	cart_slice(&o, "cart-abc");
	assert_int_equal(kmodel_apply(m, K8S_EV_ADDED, &o), 1);
	node_b(&o);
	assert_int_equal(kmodel_apply(m, K8S_EV_ADDED, &o), 1);
	assert_int_equal(kmodel_services(m, &s, &n), 0);
	assert_int_equal(n, 2);
	h = find(s, n, "shop/cart:80");
	g = find(s, n, "shop/cart:9090");
	assert_int_equal(h->protocol, CFG_PROTO_HTTP);
	assert_int_equal(g->protocol, CFG_PROTO_AUTO); /* h2c: opaque until weft speaks HTTP/2 */
	assert_int_equal(h->n_addrs, 2);
	assert_string_equal(fmt(&h->addrs[0]), "10.96.0.10:80");
	assert_string_equal(fmt(&h->addrs[1]), "[fd00::10]:80");
	/* local ready, node-b ready through its agent; node-c unknown and the not-ready one left out */
	assert_int_equal(h->n_endpoints, 2);
	assert_string_equal(fmt(&h->endpoints[0].addr), "10.244.0.1:8080");
	assert_false(h->endpoints[0].has_node);
	assert_string_equal(fmt(&h->endpoints[1].addr), "10.244.1.2:8080");
	assert_true(h->endpoints[1].has_node);
	assert_string_equal(fmt(&h->endpoints[1].node), "192.0.2.2:4143");
	assert_string_equal(fmt(&g->endpoints[0].addr), "10.244.0.1:9000");
	assert_int_equal(h->connect_timeout_ms, 1000); /* the config's defaults */
	assert_int_equal(h->retry_attempts, 3);
	kmodel_stats(m, &st);
	assert_int_equal(st.services, 1);
	assert_int_equal(st.slices, 1);
	assert_int_equal(st.nodes, 1);
	assert_int_equal(st.endpoints, 4);
	assert_int_equal(st.endpoints_no_node, 2);
	assert_int_equal(st.endpoints_not_ready, 2);
	kmodel_services_free(s, n);

	/* the node of c appears: its endpoint joins */
	meta(&o, K8S_NODE, "", "node-c", "u-node-c");
	o.node.internal_ips[0] = ip6("2001:db8::3");
	o.node.n_ips = 1;
	assert_int_equal(kmodel_apply(m, K8S_EV_ADDED, &o), 1);
	assert_int_equal(kmodel_services(m, &s, &n), 0);
	h = find(s, n, "shop/cart:80");
	assert_int_equal(h->n_endpoints, 3);
	assert_string_equal(fmt(&h->endpoints[2].node), "[2001:db8::3]:4143"); /* no v4 InternalIP: any */
	kmodel_services_free(s, n);

	/* the slice goes: no endpoints (connections are then reset), the service stays */
	cart_slice(&o, "cart-abc");
	assert_int_equal(kmodel_apply(m, K8S_EV_DELETED, &o), 1);
	assert_int_equal(kmodel_services(m, &s, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(find(s, n, "shop/cart:80")->n_endpoints, 0);
	kmodel_services_free(s, n);
	kmodel_free(m);
}

static void test_skipped_kinds_of_service(void **state)
{
	struct kmodel *m = kmodel_new("node-a", 4143);
	struct k8s_object o;
	struct cfg_service *s;
	size_t n;

	(void)state;
	cart_service(&o, false);
	o.svc.headless = true;
	o.svc.n_ips = 0;
	kmodel_apply(m, K8S_EV_ADDED, &o);
	meta(&o, K8S_SERVICE, "shop", "ext", "u2");
	o.svc.type = K8S_SVC_EXTERNAL_NAME;
	kmodel_apply(m, K8S_EV_ADDED, &o);
	cart_service(&o, false);
	snprintf(o.meta.name, sizeof(o.meta.name), "udp-only");
	svc_ports[0].protocol = K8S_PROTO_UDP;
	svc_ports[1].protocol = K8S_PROTO_SCTP;
	kmodel_apply(m, K8S_EV_ADDED, &o);
	assert_int_equal(kmodel_services(m, &s, &n), 0);
	assert_int_equal(n, 0);
	kmodel_services_free(s, n);
	kmodel_free(m);
}

static void test_resync(void **state)
{
	struct kmodel *m = kmodel_new("node-a", 4143);
	struct k8s_object o;
	struct cfg_service *s;
	size_t n;

	(void)state;
	cart_service(&o, false);
	kmodel_apply(m, K8S_EV_ADDED, &o);
	meta(&o, K8S_SERVICE, "shop", "gone", "u3");
	o.svc.ips[0] = ip4("10.96.0.11");
	o.svc.n_ips = 1;
	o.svc.ports = svc_ports;
	o.svc.n_ports = 1;
	kmodel_apply(m, K8S_EV_ADDED, &o);
	/* a relist that has cart only: gone goes */
	kmodel_resync_begin(m, K8S_SERVICE);
	cart_service(&o, false);
	kmodel_apply(m, K8S_EV_ADDED, &o);
	assert_int_equal(kmodel_resync_end(m, K8S_SERVICE), 1);
	assert_int_equal(kmodel_services(m, &s, &n), 0);
	assert_int_equal(n, 2); /* cart's two ports */
	assert_non_null(find(s, n, "shop/cart:80"));
	kmodel_services_free(s, n);
	/* a relist with the same objects changes nothing */
	kmodel_resync_begin(m, K8S_SERVICE);
	kmodel_apply(m, K8S_EV_MODIFIED, &o);
	assert_int_equal(kmodel_resync_end(m, K8S_SERVICE), 0);
	kmodel_free(m);
}

struct pod_seen {
	char uid[64], ns[64], sa[64];
	size_t n;
};

static void pod_seen(void *arg, const char *uid, const char *ns, const char *sa)
{
	struct pod_seen *p = arg;

	p->n++;
	snprintf(p->uid, sizeof(p->uid), "%s", uid);
	snprintf(p->ns, sizeof(p->ns), "%s", ns);
	snprintf(p->sa, sizeof(p->sa), "%s", sa);
}

static void test_pods(void **state)
{
	struct kmodel *m = kmodel_new("node-a", 4143);
	struct pod_seen seen = { 0 };
	struct k8s_object o;

	(void)state;
	meta(&o, K8S_POD, "shop", "cart-1", "0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0d");
	snprintf(o.pod.node_name, sizeof(o.pod.node_name), "node-a");
	snprintf(o.pod.service_account, sizeof(o.pod.service_account), "cart");
	assert_int_equal(kmodel_apply(m, K8S_EV_ADDED, &o), 0); /* pods do not change services */
	assert_int_equal(kmodel_pods_each(m, pod_seen, &seen), 1);
	assert_string_equal(seen.uid, "0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0d");
	assert_string_equal(seen.ns, "shop");
	assert_string_equal(seen.sa, "cart");
	/* another node's pod is not kept */
	meta(&o, K8S_POD, "shop", "cart-2", "11111111-7d1e-4b8a-9c2f-5e6d7a8b9c0d");
	snprintf(o.pod.node_name, sizeof(o.pod.node_name), "node-b");
	kmodel_apply(m, K8S_EV_ADDED, &o);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(kmodel_pods_each(m, pod_seen, &seen), 1);
	assert_string_equal(seen.uid, "0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0d");
	/* no serviceAccountName: "default", as the API server would fill in */
	meta(&o, K8S_POD, "shop", "cart-1", "0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0d");
	snprintf(o.pod.node_name, sizeof(o.pod.node_name), "node-a");
	o.pod.service_account[0] = '\0';
	kmodel_apply(m, K8S_EV_MODIFIED, &o);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(kmodel_pods_each(m, pod_seen, &seen), 1);
	assert_string_equal(seen.sa, "default");
	kmodel_apply(m, K8S_EV_DELETED, &o);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(kmodel_pods_each(m, pod_seen, &seen), 0);
	kmodel_free(m);
}

/* 10k services x 10 endpoints: the cost of a full rebuild, printed for docs/benchmarks.md. */
static void test_scale(void **state)
{
	struct kmodel *m = kmodel_new("node-a", 4143);
	struct k8s_endpoint eps[10];
	struct k8s_ip addrs[10];
	struct k8s_endpoint_port ep = { .port = 8080 };
	struct k8s_service_port sp = { .port = 80 };
	struct k8s_object o;
	struct cfg_service *s;
	struct timespec t0, t1;
	size_t n, i, j, total = 0;

	(void)state;
	snprintf(sp.name, sizeof(sp.name), "http");
	snprintf(ep.name, sizeof(ep.name), "http");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 10000; i++) {
		char name[32];

		snprintf(name, sizeof(name), "svc-%zu", i);
		meta(&o, K8S_SERVICE, "load", name, name);
		o.svc.ips[0].family = AF_INET;
		o.svc.ips[0].v4.s_addr = htonl(0x0a600000u + (uint32_t)i);
		o.svc.n_ips = 1;
		o.svc.ports = &sp;
		o.svc.n_ports = 1;
		assert_int_equal(kmodel_apply(m, K8S_EV_ADDED, &o), 1);
		meta(&o, K8S_ENDPOINTSLICE, "load", name, name);
		snprintf(o.es.service_name, sizeof(o.es.service_name), "%s", name);
		o.es.ports = &ep;
		o.es.n_ports = 1;
		memset(eps, 0, sizeof(eps));
		for (j = 0; j < 10; j++) {
			addrs[j].family = AF_INET;
			addrs[j].v4.s_addr = htonl(0x0af40000u + (uint32_t)(i * 10 + j));
			eps[j].addrs = &addrs[j];
			eps[j].n_addrs = 1;
			eps[j].ready = true;
		}
		o.es.endpoints = eps;
		o.es.n_endpoints = 10;
		assert_int_equal(kmodel_apply(m, K8S_EV_ADDED, &o), 1);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("kmodel: 10k services + 10k slices (100k endpoints) applied in %.3f s\n",
		      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(kmodel_services(m, &s, &n), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (i = 0; i < n; i++)
		total += s[i].n_endpoints;
	assert_int_equal(n, 10000);
	assert_int_equal(total, 100000);
	print_message("kmodel: built 10k services / 100k endpoints in %.3f s\n",
		      (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	kmodel_services_free(s, n);
	kmodel_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_services), cmocka_unit_test(test_skipped_kinds_of_service),
		cmocka_unit_test(test_resync),   cmocka_unit_test(test_pods),
		cmocka_unit_test(test_scale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
