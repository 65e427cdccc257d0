// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/codec/k8s.c: a table of watch events and list responses shaped
 * as the API server sends them, each decoded and rendered to one line of text
 * compared exactly; Status objects; a table of failures, each with its errno
 * and the field the error must name; the line splitter fed every way a stream
 * can be cut; and the time to decode a 1000-endpoint slice.
 *
 * Where the shapes come from (Kubernetes API reference,
 * https://kubernetes.io/docs/reference/kubernetes-api/):
 *   Service        service-resources/service-v1 (ServiceSpec, ServicePort),
 *                  and concepts/services-networking/dual-stack (the dual-stack
 *                  Service with clusterIPs and ipFamilies), service (headless,
 *                  ExternalName)
 *   EndpointSlice  service-resources/endpoint-slice-v1 (Endpoint,
 *                  EndpointConditions, EndpointPort), and
 *                  concepts/services-networking/endpoint-slices (the example-abc
 *                  slice)
 *   Pod            workload-resources/pod-v1 (PodSpec, PodStatus.podIPs)
 *   Node           cluster-resources/node-v1 (NodeStatus.addresses)
 *   Status         common-definitions/status
 *   watch events, bookmarks, 410 Gone, lists, pagination:
 *                  https://kubernetes.io/docs/reference/using-api/api-concepts/
 * Server-written fields weft ignores (creationTimestamp, managedFields,
 * ownerReferences, status.conditions, ...) are kept in the fixtures so that
 * ignoring them is tested too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/k8s.h"

/* --- rendering a decoded object as one line ------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < o->cap - o->len);
	o->len += (size_t)n;
}

static void out_ips(struct out *o, const struct k8s_ip *ips, size_t n)
{
	char a[K8S_IP_STRLEN];
	size_t i;

	outf(o, "[");
	for (i = 0; i < n; i++)
		outf(o, "%s%s", i ? "," : "", k8s_ip_format(&ips[i], 0, a, sizeof(a)));
	outf(o, "]");
}

static const char *svc_type(enum k8s_svc_type t)
{
	static const char *const n[] = { "ClusterIP", "NodePort", "LoadBalancer", "ExternalName" };

	return n[t];
}

static const char *pod_phase(enum k8s_pod_phase p)
{
	static const char *const n[] = { "-", "Pending", "Running", "Succeeded", "Failed", "Unknown" };

	return n[p];
}

/*
 * Service ns/name uid=U rv=R type=T headless ips=[..] ext=E ports=[name:80/TCP->9376 app=http,...]
 * EndpointSlice ns/name ... svc=S IPv4 ports=[...] eps=[{10.0.0.1 R S T node=n zone=z ref=Pod/ns/name}]
 */
static void render(struct out *o, const struct k8s_object *obj)
{
	size_t i;

	outf(o, "%s %s%s%s uid=%s rv=%s", k8s_kind_name(obj->kind), obj->meta.ns, obj->meta.ns[0] ? "/" : "",
	     obj->meta.name, obj->meta.uid, obj->meta.resource_version);
	switch (obj->kind) {
	case K8S_SERVICE: {
		const struct k8s_service *s = &obj->svc;

		outf(o, " type=%s%s ips=", svc_type(s->type), s->headless ? " headless" : "");
		out_ips(o, s->ips, s->n_ips);
		if (s->external_name[0])
			outf(o, " ext=%s", s->external_name);
		outf(o, " ports=[");
		for (i = 0; i < s->n_ports; i++) {
			const struct k8s_service_port *p = &s->ports[i];

			outf(o, "%s%s:%u/%s->", i ? "," : "", p->name, p->port, k8s_proto_name(p->protocol));
			if (p->target_port_name[0])
				outf(o, "%s", p->target_port_name);
			else
				outf(o, "%u", p->target_port);
			if (p->app_protocol[0])
				outf(o, " app=%s", p->app_protocol);
		}
		outf(o, "]");
		break;
	}
	case K8S_ENDPOINTSLICE: {
		const struct k8s_endpointslice *es = &obj->es;
		static const char *const at[] = { "IPv4", "IPv6", "FQDN" };

		outf(o, " svc=%s %s ports=[", es->service_name, at[es->address_type]);
		for (i = 0; i < es->n_ports; i++)
			outf(o, "%s%s:%u/%s%s%s", i ? "," : "", es->ports[i].name, es->ports[i].port,
			     k8s_proto_name(es->ports[i].protocol), es->ports[i].app_protocol[0] ? " app=" : "",
			     es->ports[i].app_protocol);
		outf(o, "] eps=[");
		for (i = 0; i < es->n_endpoints; i++) {
			const struct k8s_endpoint *e = &es->endpoints[i];

			outf(o, "%s{", i ? "," : "");
			if (e->addrs)
				out_ips(o, e->addrs, e->n_addrs);
			else
				outf(o, "%zu names", e->n_addrs);
			outf(o, " %c%c%c", e->ready ? 'R' : 'r', e->serving ? 'S' : 's', e->terminating ? 'T' : 't');
			if (e->node_name[0])
				outf(o, " node=%s", e->node_name);
			if (e->zone[0])
				outf(o, " zone=%s", e->zone);
			if (e->target_ref.kind[0] || e->target_ref.name[0])
				outf(o, " ref=%s/%s/%s/%s", e->target_ref.kind, e->target_ref.ns, e->target_ref.name,
				     e->target_ref.uid);
			outf(o, "}");
		}
		outf(o, "]");
		break;
	}
	case K8S_POD:
		outf(o, " node=%s sa=%s%s phase=%s ips=", obj->pod.node_name, obj->pod.service_account,
		     obj->pod.host_network ? " hostNetwork" : "", pod_phase(obj->pod.phase));
		out_ips(o, obj->pod.ips, obj->pod.n_ips);
		break;
	case K8S_NODE:
		outf(o, " internal=");
		out_ips(o, obj->node.internal_ips, obj->node.n_ips);
		break;
	}
}

static void render_event(struct out *o, const struct k8s_event *ev)
{
	outf(o, "%s ", k8s_event_type_name(ev->type));
	if (ev->type == K8S_EV_BOOKMARK)
		outf(o, "rv=%s%s", ev->obj.meta.resource_version, ev->initial_events_end ? " initial-events-end" : "");
	else if (ev->type == K8S_EV_ERROR)
		outf(o, "%d %s: %s", ev->status_code, ev->status_reason, ev->message);
	else
		render(o, &ev->obj);
}

/* --- fixtures: objects as the API server writes them ------------------------------ */

#define UID1 "b5c2a0e1-3f7d-4c6b-9a8e-1d2c3b4a5f60"
#define UID2 "0f3c9a52-7d1e-4b8a-9c2f-5e6d7a8b9c0d"
#define UID3 "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"

/* A dual-stack ClusterIP Service (concepts/services-networking/dual-stack,
 * "PreferDualStack"), one numeric and one named targetPort, as read back from
 * the server: defaults filled in, managedFields and status included. */
#define SVC_DUAL                                                                                                           \
	"{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"my-service\",\"namespace\":\"default\","     \
	"\"uid\":\"" UID1 "\",\"resourceVersion\":\"184467\",\"creationTimestamp\":\"2024-05-02T10:11:12Z\","              \
	"\"labels\":{\"app.kubernetes.io/name\":\"MyApp\"},\"managedFields\":[{\"manager\":\"kubectl-client-side-apply\"," \
	"\"operation\":\"Update\",\"apiVersion\":\"v1\",\"time\":\"2024-05-02T10:11:12Z\",\"fieldsType\":\"FieldsV1\","    \
	"\"fieldsV1\":{\"f:spec\":{\"f:ports\":{}}}}]},"                                                                   \
	"\"spec\":{\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"appProtocol\":\"http\",\"port\":80,"               \
	"\"targetPort\":9376},{\"name\":\"grpc\",\"protocol\":\"TCP\",\"appProtocol\":\"kubernetes.io/h2c\","              \
	"\"port\":9090,\"targetPort\":\"grpc-web\"}],\"selector\":{\"app.kubernetes.io/name\":\"MyApp\"},"                 \
	"\"clusterIP\":\"10.96.1.10\",\"clusterIPs\":[\"10.96.1.10\",\"fd00:10:96::a\"],\"type\":\"ClusterIP\","           \
	"\"sessionAffinity\":\"None\",\"ipFamilies\":[\"IPv4\",\"IPv6\"],\"ipFamilyPolicy\":\"PreferDualStack\","          \
	"\"internalTrafficPolicy\":\"Cluster\"},\"status\":{\"loadBalancer\":{}}}"

/* A headless Service (clusterIP "None"; concepts/services-networking/service). */
#define SVC_HEADLESS                                                                                                      \
	"{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\","               \
	"\"uid\":\"" UID2                                                                                                 \
	"\",\"resourceVersion\":\"9001\"},\"spec\":{\"ports\":[{\"name\":\"pg\",\"protocol\":\"TCP\","                    \
	"\"port\":5432,\"targetPort\":5432}],\"selector\":{\"app\":\"db\"},\"clusterIP\":\"None\","                       \
	"\"clusterIPs\":[\"None\"],\"type\":\"ClusterIP\",\"ipFamilies\":[\"IPv4\"],\"ipFamilyPolicy\":\"SingleStack\"}," \
	"\"status\":{\"loadBalancer\":{}}}"

/* ExternalName: no clusterIP at all, no ports. */
#define SVC_EXTNAME                                                                                                  \
	"{\"kind\":\"Service\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"my-database\",\"namespace\":\"prod\"," \
	"\"uid\":\"" UID3 "\",\"resourceVersion\":\"77\"},\"spec\":{\"type\":\"ExternalName\","                      \
	"\"externalName\":\"my.database.example.com\",\"sessionAffinity\":\"None\"},\"status\":{\"loadBalancer\":{}}}"

/* A NodePort Service as a pre-1.20 server wrote it: clusterIP only, UDP, no targetPort, no port name. */
#define SVC_NODEPORT_OLD                                                                                            \
	"{\"metadata\":{\"name\":\"dns\",\"namespace\":\"kube-system\",\"uid\":\"" UID1                             \
	"\",\"resourceVersion\":\"5\"},"                                                                            \
	"\"spec\":{\"ports\":[{\"protocol\":\"UDP\",\"port\":53,\"nodePort\":30053}],\"clusterIP\":\"10.96.0.10\"," \
	"\"type\":\"NodePort\",\"externalTrafficPolicy\":\"Cluster\"}}"

/* An EndpointSlice of my-service (endpoint-slice-v1 and the endpoint-slices concept
 * page): ready, not ready, terminating but serving, and conditions absent. */
#define ES_V4                                                                                                              \
	"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\",\"metadata\":{\"name\":\"my-service-abc12\","  \
	"\"generateName\":\"my-service-\",\"namespace\":\"default\",\"uid\":\"" UID2                                       \
	"\",\"resourceVersion\":\"184470\","                                                                               \
	"\"labels\":{\"endpointslice.kubernetes.io/managed-by\":\"endpointslice-controller.k8s.io\","                      \
	"\"kubernetes.io/service-name\":\"my-service\"},\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"Service\"," \
	"\"name\":\"my-service\",\"uid\":\"" UID1 "\",\"controller\":true,\"blockOwnerDeletion\":true}]},"                 \
	"\"addressType\":\"IPv4\",\"endpoints\":["                                                                         \
	"{\"addresses\":[\"10.244.1.5\"],\"conditions\":{\"ready\":true,\"serving\":true,\"terminating\":false},"          \
	"\"targetRef\":{\"kind\":\"Pod\",\"namespace\":\"default\",\"name\":\"web-7d4b9c-x2x5q\",\"uid\":\"" UID3          \
	"\"},"                                                                                                             \
	"\"nodeName\":\"node-1\",\"zone\":\"us-west2-a\"},"                                                                \
	"{\"addresses\":[\"10.244.2.7\"],\"conditions\":{\"ready\":false,\"serving\":false,\"terminating\":false},"        \
	"\"nodeName\":\"node-2\",\"zone\":\"us-west2-b\"},"                                                                \
	"{\"addresses\":[\"10.244.2.8\"],\"conditions\":{\"ready\":false,\"serving\":true,\"terminating\":true},"          \
	"\"nodeName\":\"node-2\"},"                                                                                        \
	"{\"addresses\":[\"10.244.3.9\"],\"conditions\":{}},"                                                              \
	"{\"addresses\":[\"10.244.3.10\"],\"conditions\":{\"ready\":false}},"                                              \
	"{\"addresses\":[\"10.244.3.11\",\"10.244.3.12\"]}],"                                                              \
	"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":9376,\"appProtocol\":\"http\"},"                      \
	"{\"name\":\"grpc\",\"protocol\":\"TCP\",\"port\":8080}]}"

/* The IPv6 slice of the dual-stack service. */
#define ES_V6                                                                                                             \
	"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\",\"metadata\":{\"name\":\"my-service-def34\"," \
	"\"namespace\":\"default\",\"uid\":\"" UID3 "\",\"resourceVersion\":\"184471\","                                  \
	"\"labels\":{\"kubernetes.io/service-name\":\"my-service\"}},\"addressType\":\"IPv6\",\"endpoints\":["            \
	"{\"addresses\":[\"fd00:10:244:1::5\"],\"conditions\":{\"ready\":true,\"serving\":true,\"terminating\":false},"   \
	"\"nodeName\":\"node-1\"},{\"addresses\":[\"FD00:10:244:0002:0000::7\"],\"conditions\":{\"ready\":true}}],"       \
	"\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":9376}]}"

/* An FQDN slice (user-managed: no service-name label, no conditions). */
#define ES_FQDN                                                                                                \
	"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\",\"metadata\":{\"name\":\"ext-1\"," \
	"\"namespace\":\"default\",\"uid\":\"" UID1 "\",\"resourceVersion\":\"3\",\"labels\":{"                \
	"\"endpointslice.kubernetes.io/managed-by\":\"staff\"}},\"addressType\":\"FQDN\",\"endpoints\":["      \
	"{\"addresses\":[\"db-1.example.com\"]},{\"addresses\":[\"db-2.example.com\"]}],"                      \
	"\"ports\":[{\"name\":\"\",\"protocol\":\"TCP\",\"port\":5432}]}"

/* A slice of a service with no ready pods and no ports: Go writes both empty slices as null. */
#define ES_EMPTY                                                                                                  \
	"{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\",\"metadata\":{\"name\":\"idle-xyz\"," \
	"\"namespace\":\"default\",\"uid\":\"" UID2 "\",\"resourceVersion\":\"10\",\"labels\":{"                  \
	"\"kubernetes.io/service-name\":\"idle\"}},\"addressType\":\"IPv4\",\"endpoints\":null,\"ports\":null}"

/* A dual-stack Pod, Running (pod-v1: status.podIP and status.podIPs). */
#define POD_DUAL                                                                                                                \
	"{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"web-7d4b9c-x2x5q\",\"generateName\":\"web-7d4b9c-\"," \
	"\"namespace\":\"default\",\"uid\":\"" UID3 "\",\"resourceVersion\":\"184460\",\"labels\":{\"app\":\"web\"}},"          \
	"\"spec\":{\"volumes\":[{\"name\":\"kube-api-access-abcde\",\"projected\":{\"defaultMode\":420}}],"                     \
	"\"containers\":[{\"name\":\"web\",\"image\":\"nginx:1.25\",\"ports\":[{\"name\":\"http\",\"containerPort\":9376,"      \
	"\"protocol\":\"TCP\"}]}],\"restartPolicy\":\"Always\",\"serviceAccountName\":\"web\",\"serviceAccount\":\"web\","      \
	"\"nodeName\":\"node-1\",\"hostNetwork\":false,\"schedulerName\":\"default-scheduler\"},"                               \
	"\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"                          \
	"\"hostIP\":\"192.168.10.11\",\"hostIPs\":[{\"ip\":\"192.168.10.11\"}],\"podIP\":\"10.244.1.5\","                       \
	"\"podIPs\":[{\"ip\":\"10.244.1.5\"},{\"ip\":\"fd00:10:244:1::5\"}],\"startTime\":\"2024-05-02T10:11:14Z\","            \
	"\"qosClass\":\"BestEffort\"}}"

/* Just created: not scheduled yet, no IP, no serviceAccountName. */
#define POD_PENDING                                                                                          \
	"{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"batch-1\",\"namespace\":\"jobs\"," \
	"\"uid\":\"" UID1                                                                                    \
	"\",\"resourceVersion\":\"12\"},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"busybox\"}]}," \
	"\"status\":{\"phase\":\"Pending\",\"qosClass\":\"BestEffort\"}}"

/* A hostNetwork Pod (podIP is the node's), podIP only (servers before podIPs). */
#define POD_HOSTNET                                                                                        \
	"{\"metadata\":{\"name\":\"kube-proxy-8xk2p\",\"namespace\":\"kube-system\",\"uid\":\"" UID2 "\"," \
	"\"resourceVersion\":\"400\"},\"spec\":{\"nodeName\":\"node-2\",\"hostNetwork\":true,"             \
	"\"serviceAccountName\":\"kube-proxy\"},\"status\":{\"phase\":\"Running\",\"podIP\":\"192.168.10.12\"}}"

/* A Node with InternalIP, ExternalIP and Hostname (node-v1), dual stack, a second
 * IPv4 InternalIP (ignored: the first of each family is the node's). */
#define NODE_DUAL                                                                                                                \
	"{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"node-1\",\"uid\":\"" UID1 "\","                       \
	"\"resourceVersion\":\"184400\",\"labels\":{\"kubernetes.io/hostname\":\"node-1\","                                      \
	"\"topology.kubernetes.io/zone\":\"us-west2-a\"}},\"spec\":{\"podCIDR\":\"10.244.1.0/24\","                              \
	"\"podCIDRs\":[\"10.244.1.0/24\",\"fd00:10:244:1::/64\"]},\"status\":{\"capacity\":{\"cpu\":\"4\"},"                     \
	"\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],\"addresses\":["                                              \
	"{\"type\":\"InternalIP\",\"address\":\"192.168.10.11\"},{\"type\":\"ExternalIP\",\"address\":\"203.0.113.7\"},"         \
	"{\"type\":\"InternalIP\",\"address\":\"fd00:192:168:10::11\"},{\"type\":\"InternalIP\",\"address\":\"192.168.20.11\"}," \
	"{\"type\":\"Hostname\",\"address\":\"node-1\"}],\"daemonEndpoints\":{\"kubeletEndpoint\":{\"Port\":10250}},"            \
	"\"nodeInfo\":{\"kubeletVersion\":\"v1.30.1\"}}}"

#define NODE_NOADDR                                                                                        \
	"{\"kind\":\"Node\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"node-9\",\"uid\":\"" UID2 "\"," \
	"\"resourceVersion\":\"1\"},\"spec\":{},\"status\":{}}"

#define EV(type, obj) "{\"type\":\"" type "\",\"object\":" obj "}"

struct good {
	enum k8s_kind kind;
	const char *line;
	const char *want;
};

static const struct good good_events[] = {
	{ K8S_SERVICE, EV("ADDED", SVC_DUAL),
	  "ADDED Service default/my-service uid=" UID1 " rv=184467 type=ClusterIP ips=[10.96.1.10,fd00:10:96::a] "
	  "ports=[http:80/TCP->9376 app=http,grpc:9090/TCP->grpc-web app=kubernetes.io/h2c]" },
	{ K8S_SERVICE, EV("MODIFIED", SVC_HEADLESS),
	  "MODIFIED Service shop/db uid=" UID2 " rv=9001 type=ClusterIP headless ips=[] ports=[pg:5432/TCP->5432]" },
	{ K8S_SERVICE, EV("ADDED", SVC_EXTNAME),
	  "ADDED Service prod/my-database uid=" UID3 " rv=77 type=ExternalName ips=[] ext=my.database.example.com "
	  "ports=[]" },
	{ K8S_SERVICE, EV("DELETED", SVC_NODEPORT_OLD),
	  "DELETED Service kube-system/dns uid=" UID1 " rv=5 type=NodePort ips=[10.96.0.10] ports=[:53/UDP->53]" },
	{ K8S_ENDPOINTSLICE, EV("ADDED", ES_V4),
	  "ADDED EndpointSlice default/my-service-abc12 uid=" UID2 " rv=184470 svc=my-service IPv4 "
	  "ports=[http:9376/TCP app=http,grpc:8080/TCP] eps=["
	  "{[10.244.1.5] RSt node=node-1 zone=us-west2-a ref=Pod/default/web-7d4b9c-x2x5q/" UID3 "},"
	  "{[10.244.2.7] rst node=node-2 zone=us-west2-b},"
	  "{[10.244.2.8] rST node=node-2},"
	  "{[10.244.3.9] RSt},"
	  "{[10.244.3.10] rst},"
	  "{[10.244.3.11,10.244.3.12] RSt}]" },
	{ K8S_ENDPOINTSLICE, EV("MODIFIED", ES_V6),
	  "MODIFIED EndpointSlice default/my-service-def34 uid=" UID3 " rv=184471 svc=my-service IPv6 "
	  "ports=[http:9376/TCP] eps=[{[fd00:10:244:1::5] RSt node=node-1},{[fd00:10:244:2::7] RSt}]" },
	{ K8S_ENDPOINTSLICE, EV("ADDED", ES_FQDN),
	  "ADDED EndpointSlice default/ext-1 uid=" UID1 " rv=3 svc= FQDN ports=[:5432/TCP] "
	  "eps=[{1 names RSt},{1 names RSt}]" },
	{ K8S_ENDPOINTSLICE, EV("MODIFIED", ES_EMPTY),
	  "MODIFIED EndpointSlice default/idle-xyz uid=" UID2 " rv=10 svc=idle IPv4 ports=[] eps=[]" },
	{ K8S_POD, EV("ADDED", POD_DUAL),
	  "ADDED Pod default/web-7d4b9c-x2x5q uid=" UID3 " rv=184460 node=node-1 sa=web phase=Running "
	  "ips=[10.244.1.5,fd00:10:244:1::5]" },
	{ K8S_POD, EV("ADDED", POD_PENDING),
	  "ADDED Pod jobs/batch-1 uid=" UID1 " rv=12 node= sa= phase=Pending ips=[]" },
	{ K8S_POD, EV("DELETED", POD_HOSTNET),
	  "DELETED Pod kube-system/kube-proxy-8xk2p uid=" UID2 " rv=400 node=node-2 sa=kube-proxy hostNetwork "
	  "phase=Running ips=[192.168.10.12]" },
	{ K8S_NODE, EV("ADDED", NODE_DUAL),
	  "ADDED Node node-1 uid=" UID1 " rv=184400 internal=[192.168.10.11,fd00:192:168:10::11]" },
	{ K8S_NODE, EV("MODIFIED", NODE_NOADDR), "MODIFIED Node node-9 uid=" UID2 " rv=1 internal=[]" },
	/* api-concepts, "Watch bookmarks": only metadata.resourceVersion is set; a
	 * real server writes the rest of an empty object too */
	{ K8S_POD,
	  "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{"
	  "\"resourceVersion\":\"12746\",\"creationTimestamp\":null},\"spec\":{\"containers\":null},\"status\":{}}}",
	  "BOOKMARK rv=12746" },
	/* api-concepts, "Streaming lists": the bookmark that ends the initial events */
	{ K8S_ENDPOINTSLICE,
	  "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\","
	  "\"metadata\":{\"resourceVersion\":\"13000\",\"annotations\":{\"k8s.io/initial-events-end\":\"true\"}},"
	  "\"addressType\":\"\",\"endpoints\":null}}",
	  "BOOKMARK rv=13000 initial-events-end" },
	/* api-concepts, "410 Gone responses": the watch's resourceVersion is compacted away */
	{ K8S_SERVICE,
	  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
	  "\"status\":\"Failure\",\"message\":\"too old resource version: 184000 (184467)\",\"reason\":\"Expired\","
	  "\"code\":410}}",
	  "ERROR 410 Expired: too old resource version: 184000 (184467)" },
	{ K8S_NODE,
	  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
	  "\"status\":\"Failure\",\"message\":\"The resourceVersion for the provided watch is too old.\","
	  "\"reason\":\"Gone\",\"code\":410}}",
	  "ERROR 410 Gone: The resourceVersion for the provided watch is too old." },
	/* whitespace around tokens and a trailing newline are JSON whitespace */
	{ K8S_NODE, " {\"type\" : \"DELETED\",\r\n \"object\": " NODE_NOADDR " }\n",
	  "DELETED Node node-9 uid=" UID2 " rv=1 internal=[]" },
};

static void test_events(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(good_events) / sizeof(good_events[0]); i++) {
		const struct good *g = &good_events[i];
		char text[8192], err[256];
		struct out o = { text, 0, sizeof(text) };
		struct k8s_event ev;
		int rc;

		rc = k8s_decode_event(g->kind, g->line, strlen(g->line), &ev, err, sizeof(err));
		if (rc)
			fail_msg("case %zu: %d: %s", i, rc, err);
		render_event(&o, &ev);
		if (strcmp(text, g->want) != 0)
			fail_msg("case %zu:\n got  %s\n want %s", i, text, g->want);
		k8s_object_free(&ev.obj);
		k8s_object_free(&ev.obj); /* twice is fine */
	}
}

/* The endpoint's addrs point into the slice's pool, in order. */
static void test_endpoint_pool(void **state)
{
	const char *line = EV("ADDED", ES_V4);
	struct k8s_event ev;
	const struct k8s_endpointslice *es;
	size_t i, k = 0;

	assert_int_equal(k8s_decode_event(K8S_ENDPOINTSLICE, line, strlen(line), &ev, NULL, 0), 0);
	es = &ev.obj.es;
	assert_int_equal(es->n_addrs, 7);
	for (i = 0; i < es->n_endpoints; i++) {
		assert_ptr_equal(es->endpoints[i].addrs, es->addr_pool + k);
		k += es->endpoints[i].n_addrs;
	}
	assert_int_equal(k, es->n_addrs);
	k8s_object_free(&ev.obj);
	assert_null(ev.obj.es.endpoints);
	assert_int_equal(ev.obj.es.n_endpoints, 0);
}

static void test_ip_format(void **state)
{
	struct k8s_ip v4 = { .family = AF_INET }, v6 = { .family = AF_INET6 }, m = { .family = AF_INET6 };
	struct weft_sockaddr sa;
	char a[K8S_IP_STRLEN], b[ADDR_STRLEN];

	inet_pton(AF_INET, "10.0.0.1", &v4.v4);
	inet_pton(AF_INET6, "fd00::1", &v6.v6);
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &m.v6);
	assert_string_equal(k8s_ip_format(&v4, 0, a, sizeof(a)), "10.0.0.1");
	assert_string_equal(k8s_ip_format(&v4, 8080, a, sizeof(a)), "10.0.0.1:8080");
	assert_string_equal(k8s_ip_format(&v6, 443, a, sizeof(a)), "[fd00::1]:443");
	k8s_ip_sockaddr(&v6, 443, &sa);
	assert_string_equal(addr_format(&sa, b, sizeof(b)), "[fd00::1]:443");
	k8s_ip_sockaddr(&v4, 80, &sa);
	assert_string_equal(addr_format(&sa, b, sizeof(b)), "10.0.0.1:80");
	k8s_ip_sockaddr(&m, 80, &sa);
	assert_int_equal(sa.sa.sa_family, AF_INET);
	assert_string_equal(addr_format(&sa, b, sizeof(b)), "10.1.2.3:80");
	/* a short buffer is cut, never overrun */
	assert_string_equal(k8s_ip_format(&v4, 8080, a, 5), "10.0");
}

/* --- lists ------------------------------------------------------------------------------ */

struct collect {
	char text[16384];
	struct out o;
	int stop_after; /* 0: never */
	int seen;
};

static int collect_fn(void *arg, const struct k8s_object *obj)
{
	struct collect *c = arg;

	if (c->seen++)
		outf(&c->o, " | ");
	render(&c->o, obj);
	return c->stop_after && c->seen == c->stop_after ? 42 : 0;
}

static void collect_init(struct collect *c, int stop_after)
{
	memset(c, 0, sizeof(*c));
	c->o.p = c->text;
	c->o.cap = sizeof(c->text);
	c->stop_after = stop_after;
}

/* Items in lists carry neither kind nor apiVersion: the list has them. */
#define LIST(kind, api, rv, extra, items)                                                                           \
	"{\"kind\":\"" kind "\",\"apiVersion\":\"" api "\",\"metadata\":{\"resourceVersion\":\"" rv "\"" extra "}," \
	"\"items\":" items "}"
#define ITEM_SVC_A                                                                                                   \
	"{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns1\",\"uid\":\"" UID1 "\",\"resourceVersion\":\"100\"},"     \
	"\"spec\":{\"ports\":[{\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080}],\"clusterIP\":\"10.96.0.20\"," \
	"\"clusterIPs\":[\"10.96.0.20\"],\"type\":\"ClusterIP\"},\"status\":{\"loadBalancer\":{}}}"
#define ITEM_SVC_B                                                                                               \
	"{\"metadata\":{\"name\":\"b\",\"namespace\":\"ns1\",\"uid\":\"" UID2 "\",\"resourceVersion\":\"101\"}," \
	"\"spec\":{\"ports\":[{\"name\":\"https\",\"port\":443,\"protocol\":\"TCP\",\"targetPort\":\"https\"}]," \
	"\"clusterIP\":\"fd00:10:96::14\",\"clusterIPs\":[\"fd00:10:96::14\"],\"type\":\"LoadBalancer\"},"       \
	"\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"203.0.113.9\"}]}}}"
#define ITEM_SVC_BAD                                                                                             \
	"{\"metadata\":{\"name\":\"c\",\"namespace\":\"ns1\",\"uid\":\"" UID3 "\",\"resourceVersion\":\"102\"}," \
	"\"spec\":{\"ports\":[{\"port\":70000}],\"clusterIP\":\"10.96.0.22\"}}"

static void test_lists(void **state)
{
	static const struct {
		enum k8s_kind kind;
		const char *body;
		const char *want_rv;
		const char *want;
	} cases[] = {
		{ K8S_SERVICE, LIST("ServiceList", "v1", "184500", "", "[" ITEM_SVC_A "," ITEM_SVC_B "]"), "184500",
		  "Service ns1/a uid=" UID1 " rv=100 type=ClusterIP ips=[10.96.0.20] ports=[:80/TCP->8080] | "
		  "Service ns1/b uid=" UID2
		  " rv=101 type=LoadBalancer ips=[fd00:10:96::14] ports=[https:443/TCP->https]" },
		{ K8S_ENDPOINTSLICE, LIST("EndpointSliceList", "discovery.k8s.io/v1", "7", "", "[" ES_V6 "]"), "7",
		  "EndpointSlice default/my-service-def34 uid=" UID3 " rv=184471 svc=my-service IPv6 "
		  "ports=[http:9376/TCP] eps=[{[fd00:10:244:1::5] RSt node=node-1},{[fd00:10:244:2::7] RSt}]" },
		{ K8S_POD, LIST("PodList", "v1", "55", "", "[]"), "55", "" },
		{ K8S_NODE, LIST("NodeList", "v1", "56", "", "null"), "56", "" },
		{ K8S_NODE, LIST("NodeList", "v1", "57", ",\"continue\":\"\"", "[" NODE_DUAL "]"), "57",
		  "Node node-1 uid=" UID1 " rv=184400 internal=[192.168.10.11,fd00:192:168:10::11]" },
		/* no kind/apiVersion at the top (a proxy rewrote it): still a list */
		{ K8S_POD, "{\"metadata\":{\"resourceVersion\":\"58\"},\"items\":[" POD_PENDING "]}", "58",
		  "Pod jobs/batch-1 uid=" UID1 " rv=12 node= sa= phase=Pending ips=[]" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct collect *c = malloc(sizeof(*c));
		char rv[K8S_RV_MAX + 1], err[256];
		int rc;

		collect_init(c, 0);
		rc = k8s_decode_list(cases[i].kind, cases[i].body, strlen(cases[i].body), collect_fn, c, rv, sizeof(rv),
				     err, sizeof(err));
		if (rc)
			fail_msg("case %zu: %d: %s", i, rc, err);
		assert_string_equal(rv, cases[i].want_rv);
		if (strcmp(c->text, cases[i].want) != 0)
			fail_msg("case %zu:\n got  %s\n want %s", i, c->text, cases[i].want);
		free(c);
	}
}

static void test_list_paging_and_stop(void **state)
{
	const char *page =
		LIST("ServiceList", "v1", "184500",
		     ",\"continue\":\"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTg0NTAwLCJzdGFydCI6Im5zMS9hXHUwMDAwIn0\","
		     "\"remainingItemCount\":1",
		     "[" ITEM_SVC_A "]");
	const char *two = LIST("ServiceList", "v1", "9", "", "[" ITEM_SVC_A "," ITEM_SVC_B "]");
	const char *bad = LIST("ServiceList", "v1", "9", "", "[" ITEM_SVC_A "," ITEM_SVC_BAD "]");
	struct k8s_list_meta lm;
	struct collect *c = malloc(sizeof(*c));
	char rv[K8S_RV_MAX + 1], err[256];

	/* one page: decode_list refuses it (items would be missed), decode_list_page says where to go on */
	collect_init(c, 0);
	assert_int_equal(k8s_decode_list(K8S_SERVICE, page, strlen(page), collect_fn, c, rv, sizeof(rv), err,
					 sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "metadata.continue: set: this is one page of a paginated list (read with ?limit=); "
				 "decode it with k8s_decode_list_page and ask for the next page");
	assert_int_equal(c->seen, 0);
	collect_init(c, 0);
	assert_int_equal(k8s_decode_list_page(K8S_SERVICE, page, strlen(page), collect_fn, c, &lm, err, sizeof(err)),
			 0);
	assert_string_equal(lm.resource_version, "184500");
	assert_string_equal(lm.cont, "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTg0NTAwLCJzdGFydCI6Im5zMS9hXHUwMDAwIn0");
	assert_int_equal(c->seen, 1);

	/* fn's non-zero value stops the walk and comes back */
	collect_init(c, 1);
	assert_int_equal(
		k8s_decode_list(K8S_SERVICE, two, strlen(two), collect_fn, c, rv, sizeof(rv), err, sizeof(err)), 42);
	assert_int_equal(c->seen, 1);

	/* a bad item fails the list and is named; items before it were seen */
	collect_init(c, 0);
	assert_int_equal(k8s_decode_list(K8S_SERVICE, bad, strlen(bad), collect_fn, c, rv, sizeof(rv), err,
					 sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "items[1].spec.ports[0].port: 70000 is out of range 1..65535");
	assert_int_equal(c->seen, 1);

	/* rv too small */
	collect_init(c, 0);
	assert_int_equal(k8s_decode_list(K8S_SERVICE, two, strlen(two), collect_fn, c, rv, 1, err, sizeof(err)),
			 -ENOSPC);
	free(c);
}

/* --- Status ------------------------------------------------------------------------------- */

static void test_status(void **state)
{
	/* common-definitions/status, as a 404 from GET /api/v1/namespaces/default/services/nope */
	const char *nf = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
			 "\"message\":\"services \\\"nope\\\" not found\",\"reason\":\"NotFound\","
			 "\"details\":{\"name\":\"nope\",\"kind\":\"services\"},\"code\":404}";
	/* a 403 with a message that has a newline and non-ASCII text */
	const char *fb = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
			 "\"message\":\"pods is forbidden:\\nUser \\\"system:serviceaccount:weft:weft\\\" "
			 "cannot list \\u00e9\\u00e9\\u00e9\",\"reason\":\"Forbidden\",\"code\":403}";
	char reason[64], msg[256], small[8];
	int code = -1;

	assert_int_equal(k8s_decode_status(nf, strlen(nf), &code, reason, sizeof(reason), msg, sizeof(msg)), 0);
	assert_int_equal(code, 404);
	assert_string_equal(reason, "NotFound");
	assert_string_equal(msg, "services \"nope\" not found");
	assert_int_equal(k8s_decode_status(fb, strlen(fb), &code, reason, sizeof(reason), msg, sizeof(msg)), 0);
	assert_int_equal(code, 403);
	assert_string_equal(msg, "pods is forbidden:?User \"system:serviceaccount:weft:weft\" cannot list "
				 "\xc3\xa9\xc3\xa9\xc3\xa9");
	/* cut to fit at a character boundary: 70 bytes up to "cannot list ", then
	 * three 2-byte characters; 73 bytes of room cut the second in half */
	assert_int_equal(k8s_decode_status(fb, strlen(fb), NULL, NULL, 0, msg, 74), 0);
	assert_int_equal(strlen(msg), 72);
	assert_string_equal(msg + 70, "\xc3\xa9");
	assert_int_equal(k8s_decode_status(fb, strlen(fb), &code, small, sizeof(small), NULL, 0), 0);
	assert_string_equal(small, "Forbidd");
	/* not a Status */
	assert_int_equal(k8s_decode_status(SVC_DUAL, strlen(SVC_DUAL), &code, reason, sizeof(reason), msg, sizeof(msg)),
			 -EINVAL);
	assert_int_equal(k8s_decode_status("<html>", 6, &code, reason, sizeof(reason), msg, sizeof(msg)), -EINVAL);
	assert_int_equal(k8s_decode_status("{\"kind\":\"Status\",\"code\":\"404\"}", 29, &code, NULL, 0, NULL, 0),
			 -EINVAL);
	assert_int_equal(
		k8s_decode_status("{\"kind\":\"Status\"}", 17, &code, reason, sizeof(reason), msg, sizeof(msg)), 0);
	assert_int_equal(code, 0);
	assert_string_equal(reason, "");
}

/* --- failures ------------------------------------------------------------------------------- */

#define MD(name) "\"metadata\":{\"name\":\"" name "\",\"namespace\":\"ns\",\"uid\":\"u1\",\"resourceVersion\":\"1\"}"
#define SVC(spec) EV("ADDED", "{" MD("s") ",\"spec\":" spec "}")
#define ESL(rest) EV("ADDED", "{" MD("e") "," rest "}")
#define POD(rest) EV("ADDED", "{" MD("p") "," rest "}")
#define NODE(status) \
	EV("ADDED", "{\"metadata\":{\"name\":\"n\",\"uid\":\"u\",\"resourceVersion\":\"1\"},\"status\":" status "}")

struct bad {
	enum k8s_kind kind;
	const char *line;
	const char *err; /* the message must start with this */
};

static const struct bad bad_events[] = {
	/* not JSON, not one object */
	{ K8S_SERVICE, "", "invalid JSON at byte 0" },
	{ K8S_SERVICE, "{\"type\":\"ADDED\",\"object\":{", "invalid JSON" },
	{ K8S_SERVICE, SVC("{}") "x", "invalid JSON" },
	{ K8S_SERVICE, SVC("{}") "{}", "invalid JSON" },
	{ K8S_SERVICE, "[" SVC("{}") "]", "expected a JSON object, got an array" },
	{ K8S_SERVICE, "{\"type\":\"ADDED\",\"object\":{},}", "invalid JSON" },
	{ K8S_SERVICE, "{\"type\":\"ADDED\",\"object\":NaN}", "invalid JSON" },
	{ K8S_SERVICE, "{\"type\":\"ADDED\" /* c */,\"object\":{}}", "invalid JSON" },
	/* invalid UTF-8, NUL inside a string */
	{ K8S_SERVICE, EV("ADDED", "{" MD("s\xff") ",\"spec\":{}}"), "invalid JSON" },
	{ K8S_SERVICE, EV("ADDED", "{" MD("s\\u0000x") ",\"spec\":{}}"), "invalid JSON" },
	/* duplicate keys, at the top and deep down */
	{ K8S_SERVICE, "{\"type\":\"ADDED\",\"type\":\"DELETED\",\"object\":{}}", "invalid JSON" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":80,\"port\":9999}]}"), "invalid JSON" },
	/* the event */
	{ K8S_SERVICE, "{\"object\":{}}", "type: required, missing" },
	{ K8S_SERVICE, "{\"type\":\"CHANGED\",\"object\":{}}", "type: 'CHANGED' is not one of ADDED" },
	{ K8S_SERVICE, "{\"type\":1,\"object\":{}}", "type: expected a string, got an integer" },
	{ K8S_SERVICE, "{\"type\":\"ADDED\"}", "object: required, missing" },
	{ K8S_SERVICE, "{\"type\":\"ADDED\",\"object\":null}", "object: required, missing" },
	{ K8S_SERVICE, "{\"type\":\"ADDED\",\"object\":[]}", "object: expected an object, got an array" },
	{ K8S_SERVICE, EV("ADDED", "{\"kind\":\"Pod\"," MD("s") ",\"spec\":{}}"),
	  "object.kind: 'Pod' where Service was expected" },
	{ K8S_ENDPOINTSLICE,
	  EV("ADDED", "{\"apiVersion\":\"discovery.k8s.io/v1beta1\"," MD("e") ",\"addressType\":\"IPv4\"}"),
	  "object.apiVersion: 'discovery.k8s.io/v1beta1' where discovery.k8s.io/v1 was expected" },
	{ K8S_SERVICE, "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{}}}",
	  "object.metadata.resourceVersion: required, missing" },
	{ K8S_SERVICE, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":41}}",
	  "object.code: 41 is out of range 100..599" },
	/* metadata */
	{ K8S_SERVICE, EV("ADDED", "{\"spec\":{}}"), "object.metadata: required, missing" },
	{ K8S_SERVICE,
	  EV("ADDED", "{\"metadata\":{\"namespace\":\"ns\",\"uid\":\"u\",\"resourceVersion\":\"1\"},\"spec\":{}}"),
	  "object.metadata.name: required, missing" },
	{ K8S_SERVICE,
	  EV("ADDED", "{\"metadata\":{\"name\":\"s\",\"uid\":\"u\",\"resourceVersion\":\"1\"},\"spec\":{}}"),
	  "object.metadata.namespace: required, missing" },
	{ K8S_SERVICE,
	  EV("ADDED", "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"resourceVersion\":\"1\"},\"spec\":{}}"),
	  "object.metadata.uid: required, missing" },
	{ K8S_SERVICE, EV("ADDED", "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"uid\":\"u\"},\"spec\":{}}"),
	  "object.metadata.resourceVersion: required, missing" },
	{ K8S_SERVICE, EV("ADDED", "{" MD("") ",\"spec\":{}}"), "object.metadata.name: must not be empty" },
	{ K8S_SERVICE, EV("ADDED", "{" MD("My-Service") ",\"spec\":{}}"),
	  "object.metadata.name: 'My-Service' is not a DNS subdomain name" },
	{ K8S_SERVICE, EV("ADDED", "{" MD("-s") ",\"spec\":{}}"), "object.metadata.name: '-s' is not a DNS" },
	{ K8S_SERVICE, EV("ADDED", "{\"metadata\":{\"name\":7,\"namespace\":\"ns\"},\"spec\":{}}"),
	  "object.metadata.name: expected a string, got an integer" },
	{ K8S_SERVICE,
	  EV("ADDED",
	     "{\"metadata\":{\"name\":\"s\",\"namespace\":\"a.b\",\"uid\":\"u\",\"resourceVersion\":\"1\"},\"spec\":{}}"),
	  "object.metadata.namespace: 'a.b' is not a DNS label" },
	{ K8S_SERVICE,
	  EV("ADDED",
	     "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"uid\":\"u u\",\"resourceVersion\":\"1\"},\"spec\":{}}"),
	  "object.metadata.uid: 'u u' is not printable ASCII without spaces" },
	{ K8S_NODE,
	  EV("ADDED", "{\"metadata\":{\"name\":\"n\",\"namespace\":\"x\",\"uid\":\"u\",\"resourceVersion\":\"1\"}}"),
	  "object.metadata.namespace: a Node has no namespace" },
	/* Service */
	{ K8S_SERVICE, EV("ADDED", "{" MD("s") "}"), "object.spec: required, missing" },
	{ K8S_SERVICE, SVC("[]"), "object.spec: expected an object, got an array" },
	{ K8S_SERVICE, SVC("{\"type\":\"Internal\"}"), "object.spec.type: 'Internal' is not one of ClusterIP" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":0}]}"), "object.spec.ports[0].port: 0 is out of range 1..65535" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":80},{\"port\":65536}]}"),
	  "object.spec.ports[1].port: 65536 is out of range 1..65535" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":-1}]}"), "object.spec.ports[0].port: -1 is out of range" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":99999999999999999999}]}"), "invalid JSON" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":\"80\"}]}"),
	  "object.spec.ports[0].port: expected an integer, got a string" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":80.0}]}"),
	  "object.spec.ports[0].port: expected an integer, got a real number" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"name\":\"http\"}]}"), "object.spec.ports[0].port: required, missing" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":80,\"protocol\":\"ICMP\"}]}"),
	  "object.spec.ports[0].protocol: 'ICMP' is not one of TCP, UDP, SCTP" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":80,\"targetPort\":0}]}"),
	  "object.spec.ports[0].targetPort: 0 is out of range 1..65535" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":80,\"targetPort\":\"\"}]}"),
	  "object.spec.ports[0].targetPort: must not be empty" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":80,\"targetPort\":true}]}"),
	  "object.spec.ports[0].targetPort: expected an integer or a string, got a boolean" },
	{ K8S_SERVICE, SVC("{\"ports\":[{\"port\":80,\"name\":\"Web\"}]}"),
	  "object.spec.ports[0].name: 'Web' is not a DNS label" },
	{ K8S_SERVICE, SVC("{\"ports\":{\"port\":80}}"), "object.spec.ports: expected an array, got an object" },
	{ K8S_SERVICE, SVC("{\"ports\":[80]}"), "object.spec.ports[0]: expected an object, got an integer" },
	{ K8S_SERVICE, SVC("{\"clusterIP\":\"10.0.0.256\"}"),
	  "object.spec.clusterIP: '10.0.0.256' is not an IP address" },
	{ K8S_SERVICE, SVC("{\"clusterIP\":\"010.0.0.1\"}"),
	  "object.spec.clusterIP: '010.0.0.1' is not an IP address" },
	{ K8S_SERVICE, SVC("{\"clusterIP\":\" 10.0.0.1\"}"),
	  "object.spec.clusterIP: ' 10.0.0.1' is not an IP address" },
	{ K8S_SERVICE, SVC("{\"clusterIP\":\"fd00::1%eth0\"}"), "object.spec.clusterIP: 'fd00::1%eth0' is not an IP" },
	{ K8S_SERVICE, SVC("{\"clusterIP\":\"0.0.0.0\"}"),
	  "object.spec.clusterIP: '0.0.0.0' is not a unicast address" },
	{ K8S_SERVICE, SVC("{\"clusterIP\":\"ff02::1\"}"),
	  "object.spec.clusterIP: 'ff02::1' is not a unicast address" },
	{ K8S_SERVICE, SVC("{\"clusterIP\":\"10.0.0.1\",\"clusterIPs\":[\"10.0.0.2\"]}"),
	  "object.spec.clusterIP: differs from clusterIPs[0]" },
	{ K8S_SERVICE, SVC("{\"clusterIP\":\"None\",\"clusterIPs\":[\"10.0.0.2\"]}"),
	  "object.spec.clusterIP: differs from clusterIPs[0]" },
	{ K8S_SERVICE, SVC("{\"clusterIPs\":[\"10.0.0.1\",\"10.0.0.2\"]}"),
	  "object.spec.clusterIPs: two addresses of one family" },
	{ K8S_SERVICE, SVC("{\"clusterIPs\":[\"10.0.0.1\",\"fd00::1\",\"10.0.0.2\"]}"),
	  "object.spec.clusterIPs: 3 addresses, more than the limit of 2" },
	{ K8S_SERVICE, SVC("{\"clusterIPs\":[\"10.0.0.1\",\"None\"]}"),
	  "object.spec.clusterIPs[1]: 'None' where an IP address was expected" },
	{ K8S_SERVICE, SVC("{\"clusterIPs\":[10]}"), "object.spec.clusterIPs[0]: expected a string, got an integer" },
	{ K8S_SERVICE, SVC("{\"type\":\"ExternalName\",\"externalName\":\"my_db.example.com\"}"),
	  "object.spec.externalName: 'my_db.example.com' is not a DNS subdomain name" },
	/* EndpointSlice */
	{ K8S_ENDPOINTSLICE, ESL("\"endpoints\":[]"), "object.addressType: required, missing" },
	{ K8S_ENDPOINTSLICE, ESL("\"addressType\":\"IPv5\""), "object.addressType: 'IPv5' is not one of IPv4, IPv6" },
	{ K8S_ENDPOINTSLICE, ESL("\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"fd00::1\"]}]"),
	  "object.endpoints[0].addresses[0]: 'fd00::1' is not an IPv4 address" },
	{ K8S_ENDPOINTSLICE,
	  ESL("\"addressType\":\"IPv6\",\"endpoints\":[{\"addresses\":[\"fd00::1\"]},"
	      "{\"addresses\":[\"fd00::2\",\"10.0.0.1\"]}]"),
	  "object.endpoints[1].addresses[1]: '10.0.0.1' is not an IPv6 address" },
	{ K8S_ENDPOINTSLICE, ESL("\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"224.0.0.1\"]}]"),
	  "object.endpoints[0].addresses[0]: '224.0.0.1' is not a unicast address" },
	{ K8S_ENDPOINTSLICE, ESL("\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[]}]"),
	  "object.endpoints[0].addresses: empty" },
	{ K8S_ENDPOINTSLICE, ESL("\"addressType\":\"IPv4\",\"endpoints\":[{\"nodeName\":\"n\"}]"),
	  "object.endpoints[0].addresses: required, missing" },
	{ K8S_ENDPOINTSLICE,
	  ESL("\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],"
	      "\"conditions\":{\"ready\":\"true\"}}]"),
	  "object.endpoints[0].conditions.ready: expected a boolean, got a string" },
	{ K8S_ENDPOINTSLICE,
	  ESL("\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],"
	      "\"conditions\":{\"terminating\":1}}]"),
	  "object.endpoints[0].conditions.terminating: expected a boolean, got an integer" },
	{ K8S_ENDPOINTSLICE, ESL("\"addressType\":\"IPv4\",\"endpoints\":[\"10.0.0.1\"]"),
	  "object.endpoints[0]: expected an object, got a string" },
	{ K8S_ENDPOINTSLICE, ESL("\"addressType\":\"FQDN\",\"endpoints\":[{\"addresses\":[\"db_1.example.com\"]}]"),
	  "object.endpoints[0].addresses[0]: 'db_1.example.com' is not a DNS subdomain name" },
	{ K8S_ENDPOINTSLICE, ESL("\"addressType\":\"IPv4\",\"ports\":[{\"port\":0}]"),
	  "object.ports[0].port: 0 is out of range 1..65535" },
	{ K8S_ENDPOINTSLICE, ESL("\"addressType\":\"IPv4\",\"ports\":[{\"port\":65536}]"),
	  "object.ports[0].port: 65536 is out of range 1..65535" },
	{ K8S_ENDPOINTSLICE,
	  ESL("\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],"
	      "\"targetRef\":{\"kind\":\"Pod\",\"name\":\"UPPER\"}}]"),
	  "object.endpoints[0].targetRef.name: 'UPPER' is not a DNS subdomain name" },
	{ K8S_ENDPOINTSLICE,
	  ESL("\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],"
	      "\"zone\":\"us west\"}]"),
	  "object.endpoints[0].zone: 'us west' is not a label value" },
	{ K8S_ENDPOINTSLICE,
	  EV("ADDED", "{\"metadata\":{\"name\":\"e\",\"namespace\":\"ns\",\"uid\":\"u\",\"resourceVersion\":\"1\","
		      "\"labels\":{\"kubernetes.io/service-name\":5}},\"addressType\":\"IPv4\"}"),
	  "object.metadata.labels.kubernetes.io/service-name: expected a string, got an integer" },
	/* Pod */
	{ K8S_POD, POD("\"spec\":{\"hostNetwork\":\"yes\"}"), "object.spec.hostNetwork: expected a boolean" },
	{ K8S_POD, POD("\"spec\":{},\"status\":{\"phase\":\"Sleeping\"}"),
	  "object.status.phase: 'Sleeping' is not one of" },
	{ K8S_POD, POD("\"spec\":{},\"status\":{\"podIP\":\"10.1.1.1\",\"podIPs\":[{\"ip\":\"10.1.1.2\"}]}"),
	  "object.status.podIP: differs from podIPs[0]" },
	{ K8S_POD, POD("\"spec\":{},\"status\":{\"podIPs\":[{\"ip\":\"10.1.1.2\"}]}"),
	  "object.status.podIP: differs from podIPs[0]" },
	{ K8S_POD,
	  POD("\"spec\":{},\"status\":{\"podIP\":\"10.1.1.1\",\"podIPs\":[{\"ip\":\"10.1.1.1\"},{\"ip\":\"10.1.1.3\"}]}"),
	  "object.status.podIPs: two addresses of one family" },
	{ K8S_POD, POD("\"spec\":{},\"status\":{\"podIPs\":[\"10.1.1.2\"]}"),
	  "object.status.podIPs[0]: expected an object, got a string" },
	{ K8S_POD, POD("\"spec\":{},\"status\":{\"podIPs\":[{}]}"), "object.status.podIPs[0].ip: required, missing" },
	{ K8S_POD, POD("\"spec\":{},\"status\":{\"podIP\":\"10.1.1\"}"), "object.status.podIP: '10.1.1' is not an IP" },
	{ K8S_POD, POD("\"spec\":{\"serviceAccountName\":\"a/b\"}"),
	  "object.spec.serviceAccountName: 'a/b' is not a DNS" },
	/* Node */
	{ K8S_NODE, NODE("{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"node-1\"}]}"),
	  "object.status.addresses[0].address: 'node-1' is not an IP address" },
	{ K8S_NODE, NODE("{\"addresses\":[{\"type\":\"InternalIP\"}]}"),
	  "object.status.addresses[0].address: required" },
	{ K8S_NODE, NODE("{\"addresses\":[{\"address\":\"10.0.0.1\"}]}"), "object.status.addresses[0].type: required" },
	{ K8S_NODE, NODE("{\"addresses\":\"10.0.0.1\"}"), "object.status.addresses: expected an array, got a string" },
	{ K8S_NODE,
	  EV("ADDED", "{\"metadata\":{\"name\":\"n\",\"uid\":\"u\",\"resourceVersion\":\"1\"},\"status\":[]}"),
	  "object.status: expected an object, got an array" },
	/* lists */
};

/* One decode that must fail: -EINVAL, err starting with want, *ev zeroed. */
static void expect_fail(size_t i, enum k8s_kind kind, const char *line, size_t len, const char *want)
{
	struct k8s_event ev, zero;
	char err[512];
	int rc;

	memset(&ev, 0x5a, sizeof(ev));
	rc = k8s_decode_event(kind, line, len, &ev, err, sizeof(err));
	if (rc != -EINVAL)
		fail_msg("case %zu: %d, want -EINVAL (%.200s)", i, rc, line);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("case %zu:\n got  %s\n want %s...", i, err, want);
	memset(&zero, 0, sizeof(zero));
	zero.obj.kind = kind;
	assert_memory_equal(&ev, &zero, sizeof(ev));
}

static void test_event_fail(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(bad_events) / sizeof(bad_events[0]); i++)
		expect_fail(i, bad_events[i].kind, bad_events[i].line, strlen(bad_events[i].line), bad_events[i].err);
	/* a NUL byte between tokens: jansson alone would skip this one (found by fuzz_k8s) */
	expect_fail(i, K8S_SERVICE, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410\0}}", 55,
		    "invalid JSON at byte 52: a NUL byte");
	expect_fail(i, K8S_SERVICE, "{\"type\":\"ERROR\",\"object\":{}}\0", 29, "invalid JSON at byte 28: a NUL byte");
}

/* Appends to a malloc'd string. */
static void cat(char **s, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void cat(char **s, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*s + *len, *cap - *len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < *cap - *len)
			break;
		*cap = (*cap + (size_t)n) * 2;
		*s = realloc(*s, *cap);
		assert_non_null(*s);
	}
	*len += (size_t)n;
}

/* A slice with n endpoints of a addresses each (IPv4, all distinct). */
static char *big_slice(size_t n, size_t a, size_t *len)
{
	size_t cap = 1024, i, k;
	char *s = malloc(cap);

	*len = 0;
	cat(&s, len, &cap,
	    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"EndpointSlice\",\"apiVersion\":\"discovery.k8s.io/v1\","
	    "\"metadata\":{\"name\":\"big-abcde\",\"namespace\":\"default\",\"uid\":\"" UID1 "\","
	    "\"resourceVersion\":\"99\",\"labels\":{\"kubernetes.io/service-name\":\"big\"}},"
	    "\"addressType\":\"IPv4\",\"ports\":[{\"name\":\"http\",\"protocol\":\"TCP\",\"port\":8080}],\"endpoints\":[");
	for (i = 0; i < n; i++) {
		cat(&s, len, &cap, "%s{\"addresses\":[", i ? "," : "");
		for (k = 0; k < a; k++)
			cat(&s, len, &cap, "%s\"10.%zu.%zu.%zu\"", k ? "," : "", k, i / 250, i % 250 + 1);
		cat(&s, len, &cap,
		    "],\"conditions\":{\"ready\":true,\"serving\":true,\"terminating\":false},"
		    "\"nodeName\":\"node-%zu\",\"zone\":\"zone-a\",\"targetRef\":{\"kind\":\"Pod\",\"namespace\":\"default\","
		    "\"name\":\"big-6f7c8d9b4-%05zu\",\"uid\":\"" UID3 "\"}}",
		    i % 50, i);
	}
	cat(&s, len, &cap, "]}}");
	return s;
}

/* Service with n ports. */
static char *many_ports(size_t n, size_t *len)
{
	size_t cap = 1024, i;
	char *s = malloc(cap);

	*len = 0;
	cat(&s, len, &cap, "{\"type\":\"ADDED\",\"object\":{" MD("s") ",\"spec\":{\"ports\":[");
	for (i = 0; i < n; i++)
		cat(&s, len, &cap, "%s{\"name\":\"p%zu\",\"port\":%zu}", i ? "," : "", i, i + 1);
	cat(&s, len, &cap, "]}}}");
	return s;
}

static char *with_name(const char *key, size_t n, size_t *len)
{
	size_t cap = 1024;
	char *s = malloc(cap), *name = malloc(n + 1);

	memset(name, 'a', n);
	name[n] = '\0';
	*len = 0;
	if (strcmp(key, "name") == 0)
		cat(&s, len, &cap,
		    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"uid\":\"u\","
		    "\"resourceVersion\":\"1\"},\"spec\":{}}}",
		    name);
	else if (strcmp(key, "namespace") == 0)
		cat(&s, len, &cap,
		    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"s\",\"namespace\":\"%s\",\"uid\":\"u\","
		    "\"resourceVersion\":\"1\"},\"spec\":{}}}",
		    name);
	else /* the service-name label */
		cat(&s, len, &cap,
		    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"e\",\"namespace\":\"ns\",\"uid\":\"u\","
		    "\"resourceVersion\":\"1\",\"labels\":{\"kubernetes.io/service-name\":\"%s\"}},\"addressType\":\"IPv4\"}}",
		    name);
	free(name);
	return s;
}

static void ok_event(enum k8s_kind kind, const char *s, size_t len)
{
	struct k8s_event ev;
	char err[256];

	if (k8s_decode_event(kind, s, len, &ev, err, sizeof(err)))
		fail_msg("%s", err);
	k8s_object_free(&ev.obj);
}

/* The bounds: the largest allowed decodes, one more fails naming the limit. */
static void test_bounds(void **state)
{
	size_t len;
	char *s;

	s = many_ports(K8S_MAX_PORTS, &len);
	ok_event(K8S_SERVICE, s, len);
	free(s);
	s = many_ports(K8S_MAX_PORTS + 1, &len);
	expect_fail(0, K8S_SERVICE, s, len, "object.spec.ports: 257 ports, more than the limit of 256");
	free(s);

	s = with_name("name", K8S_NAME_MAX, &len);
	ok_event(K8S_SERVICE, s, len);
	free(s);
	s = with_name("name", K8S_NAME_MAX + 1, &len);
	expect_fail(1, K8S_SERVICE, s, len, "object.metadata.name: 'aaaa");
	assert_non_null(strstr(s, "aaaa")); /* and the message says why: */
	{
		struct k8s_event ev;
		char err[512];

		assert_int_equal(k8s_decode_event(K8S_SERVICE, s, len, &ev, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "...' is 254 bytes long, more than the limit of 253"));
	}
	free(s);
	s = with_name("namespace", K8S_NAMESPACE_MAX, &len);
	ok_event(K8S_SERVICE, s, len);
	free(s);
	s = with_name("namespace", K8S_NAMESPACE_MAX + 1, &len);
	expect_fail(2, K8S_SERVICE, s, len, "object.metadata.namespace: ");
	free(s);
	s = with_name("label", K8S_LABEL_VALUE_MAX, &len);
	ok_event(K8S_ENDPOINTSLICE, s, len);
	free(s);
	s = with_name("label", K8S_LABEL_VALUE_MAX + 1, &len);
	expect_fail(3, K8S_ENDPOINTSLICE, s, len, "object.metadata.labels.kubernetes.io/service-name: ");
	free(s);

	s = big_slice(K8S_MAX_ENDPOINTS, 1, &len);
	ok_event(K8S_ENDPOINTSLICE, s, len);
	free(s);
	s = big_slice(K8S_MAX_ENDPOINTS + 1, 1, &len);
	expect_fail(4, K8S_ENDPOINTSLICE, s, len, "object.endpoints: 1001 endpoints, more than the limit of 1000");
	free(s);
	s = big_slice(2, K8S_MAX_ADDRS, &len);
	ok_event(K8S_ENDPOINTSLICE, s, len);
	free(s);
	s = big_slice(2, K8S_MAX_ADDRS + 1, &len);
	expect_fail(5, K8S_ENDPOINTSLICE, s, len,
		    "object.endpoints[0].addresses: 101 addresses, more than the limit of 100");
	free(s);

	/* the body bound is checked before a byte is read */
	expect_fail(6, K8S_SERVICE, "{}", (size_t)K8S_MAX_BODY + 1, "67108865 bytes, more than the limit of 67108864");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A full slice (1000 endpoints, each as the controller writes it): the
 * decode cost a node pays on each change of a big service's slice. */
static void test_decode_time(void **state)
{
	struct k8s_event ev;
	size_t len, rounds = 0;
	char *s = big_slice(K8S_MAX_ENDPOINTS, 1, &len);
	double t0, dt;

	/* as many rounds as fit in 0.2 s (one, under valgrind) */
	t0 = now_s();
	do {
		assert_int_equal(k8s_decode_event(K8S_ENDPOINTSLICE, s, len, &ev, NULL, 0), 0);
		assert_int_equal(ev.obj.es.n_endpoints, 1000);
		k8s_object_free(&ev.obj);
		rounds++;
	} while (now_s() - t0 < 0.2);
	dt = (now_s() - t0) / (double)rounds;
	printf("[ info ] 1000-endpoint slice: %zu bytes, %.3f ms per decode (%.0f MB/s, %zu rounds)\n", len, dt * 1e3,
	       (double)len / dt / 1e6, rounds);
	/* a bound only against the pathological: valgrind is ~300x slower than the plain build */
	assert_true(dt < 10.0);
	free(s);
}

/* --- the line splitter ------------------------------------------------------------------- */

struct lines_out {
	char got[4096];
	size_t len;
	int calls, stop_at;
};

static int line_fn(void *arg, const char *line, size_t len)
{
	struct lines_out *o = arg;

	assert_true(len > 0);
	assert_null(memchr(line, '\n', len));
	assert_true(o->len + len + 1 < sizeof(o->got));
	memcpy(o->got + o->len, line, len);
	o->len += len;
	o->got[o->len++] = '|';
	o->got[o->len] = '\0';
	o->calls++;
	return o->stop_at && o->calls == o->stop_at ? 7 : 0;
}

/* Feeds s in chunks of step bytes (0: one chunk). */
static int feed_steps(struct k8s_lines *l, const char *s, size_t n, size_t step, struct lines_out *o)
{
	size_t i, k;
	int rc;

	if (!step)
		step = n ? n : 1;
	for (i = 0; i < n; i += k) {
		k = n - i < step ? n - i : step;
		rc = k8s_lines_feed(l, s + i, k, line_fn, o);
		if (rc)
			return rc;
		assert_true(l->cap <= l->max);
	}
	return 0;
}

static void test_lines(void **state)
{
	static const struct {
		const char *in;
		size_t max;
		int rc;
		const char *want; /* lines joined by '|' */
		size_t pending;
	} cases[] = {
		{ "a\nbb\nccc\n", 0, 0, "a|bb|ccc|", 0 },
		{ "a\n\n\nb\n", 0, 0, "a|b|", 0 },              /* empty lines skipped */
		{ "{\"x\":1}\n{\"y\"", 0, 0, "{\"x\":1}|", 4 }, /* a cut line waits */
		{ "", 0, 0, "", 0 },
		{ "\n", 0, 0, "", 0 },
		{ "12345678\n1234\n", 8, 0, "12345678|1234|", 0 }, /* exactly max */
		{ "123456789\n", 8, -EMSGSIZE, "", 0 },            /* one more */
		{ "ab\n123456789", 8, -EMSGSIZE, "ab|", 0 },       /* too long and unfinished */
		{ "ab\n12345678", 8, 0, "ab|", 8 },                /* max unfinished: may still end */
		{ "a\r\nb\n", 0, 0, "a\r|b|", 0 },                 /* '\r' is the line's (JSON whitespace) */
	};
	size_t i, step;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (step = 0; step <= strlen(cases[i].in) + 1; step++) {
			struct k8s_lines l;
			struct lines_out o = { .len = 0 };
			int rc;

			k8s_lines_init(&l, cases[i].max);
			rc = feed_steps(&l, cases[i].in, strlen(cases[i].in), step, &o);
			if (rc != cases[i].rc || strcmp(o.got, cases[i].want) != 0)
				fail_msg("case %zu step %zu: rc %d want %d; got '%s' want '%s'", i, step, rc,
					 cases[i].rc, o.got, cases[i].want);
			if (rc == 0) {
				assert_int_equal(k8s_lines_pending(&l), cases[i].pending);
			} else { /* the stream is over: nothing more is taken, nothing held */
				assert_int_equal(k8s_lines_feed(&l, "x\n", 2, line_fn, &o), -EPIPE);
				assert_null(l.buf);
			}
			k8s_lines_free(&l);
		}
	}
}

/* Counts lines and their bytes (for lines too long to keep). */
static int count_fn(void *arg, const char *line, size_t len)
{
	size_t *c = arg;

	c[0]++;
	c[1] += len;
	return 0;
}

static void test_lines_stop_and_memory(void **state)
{
	struct k8s_lines l;
	struct lines_out o = { .stop_at = 2 };
	char *big;
	size_t i, max = 1u << 20, count[2] = { 0, 0 };

	/* fn's value stops the stream */
	k8s_lines_init(&l, 0);
	assert_int_equal(l.max, K8S_MAX_LINE);
	assert_int_equal(k8s_lines_feed(&l, "a\nb\nc\n", 6, line_fn, &o), 7);
	assert_string_equal(o.got, "a|b|");
	assert_int_equal(k8s_lines_feed(&l, "d\n", 2, line_fn, &o), -EPIPE);
	k8s_lines_free(&l);

	/* a line of max bytes in 1000-byte chunks: the buffer grows to max, not
	 * beyond, and is let go once the line has been handed over */
	big = malloc(max + 1);
	memset(big, 'x', max);
	big[max] = '\n';
	k8s_lines_init(&l, max);
	memset(&o, 0, sizeof(o));
	for (i = 0; i < max + 1; i += 1000) {
		size_t k = max + 1 - i < 1000 ? max + 1 - i : 1000;

		assert_int_equal(k8s_lines_feed(&l, big + i, k, count_fn, count), 0);
		assert_true(l.cap <= max);
	}
	assert_int_equal(count[0], 1);
	assert_int_equal(count[1], max);
	assert_null(l.buf);
	assert_int_equal(k8s_lines_pending(&l), 0);
	/* one byte more than max, cut anywhere: -EMSGSIZE, buffer freed */
	assert_int_equal(k8s_lines_feed(&l, big, max, count_fn, count), 0);
	assert_int_equal(k8s_lines_pending(&l), max);
	assert_int_equal(k8s_lines_feed(&l, "y", 1, count_fn, count), -EMSGSIZE);
	assert_null(l.buf);
	k8s_lines_free(&l);
	free(big);
}

/* Watch lines through the splitter into the decoder: the path weft takes. */
static void test_lines_decode(void **state)
{
	const char *stream = EV("ADDED", SVC_DUAL) "\n" EV(
		"MODIFIED",
		SVC_HEADLESS) "\n"
			      "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\",\"apiVersion\":\"v1\","
			      "\"metadata\":{\"resourceVersion\":\"9100\"}}}\n";
	struct k8s_lines l;
	struct lines_out o = { .len = 0 };
	size_t n = strlen(stream), a, b;

	/* every way of cutting it in three gives the same three lines */
	for (a = 0; a <= n; a += 7)
		for (b = a; b <= n; b += 13) {
			memset(&o, 0, sizeof(o));
			k8s_lines_init(&l, 0);
			assert_int_equal(k8s_lines_feed(&l, stream, a, line_fn, &o), 0);
			assert_int_equal(k8s_lines_feed(&l, stream + a, b - a, line_fn, &o), 0);
			assert_int_equal(k8s_lines_feed(&l, stream + b, n - b, line_fn, &o), 0);
			assert_int_equal(o.calls, 3);
			assert_int_equal(k8s_lines_pending(&l), 0);
			k8s_lines_free(&l);
		}
	/* each line decodes */
	{
		char *save = NULL, *line, copy[sizeof(o.got)];
		const enum k8s_event_type want[] = { K8S_EV_ADDED, K8S_EV_MODIFIED, K8S_EV_BOOKMARK };
		int k = 0;

		strcpy(copy, o.got);
		for (line = strtok_r(copy, "|", &save); line; line = strtok_r(NULL, "|", &save), k++) {
			struct k8s_event ev;

			assert_int_equal(k8s_decode_event(K8S_SERVICE, line, strlen(line), &ev, NULL, 0), 0);
			assert_int_equal(ev.type, want[k]);
			k8s_object_free(&ev.obj);
		}
		assert_int_equal(k, 3);
	}
}

static void test_names(void **state)
{
	assert_string_equal(k8s_kind_name(K8S_ENDPOINTSLICE), "EndpointSlice");
	assert_string_equal(k8s_kind_name((enum k8s_kind)9), "?");
	assert_string_equal(k8s_event_type_name(K8S_EV_BOOKMARK), "BOOKMARK");
	assert_string_equal(k8s_event_type_name((enum k8s_event_type)9), "?");
	assert_string_equal(k8s_proto_name(K8S_PROTO_SCTP), "SCTP");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_endpoint_pool),
		cmocka_unit_test(test_ip_format),
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_list_paging_and_stop),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_event_fail),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_decode_time),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_lines_stop_and_memory),
		cmocka_unit_test(test_lines_decode),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
