/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * k8s: the Kubernetes API objects weft needs (Service, EndpointSlice, Pod,
 * Node), decoded from the JSON the API server sends: one line of a watch
 * stream, a list response, a Status. Plus a splitter that cuts a watch
 * stream's bytes into lines. Pure: no I/O, no global state, no clock; the
 * caller owns every buffer it passes and what decode allocates (freed by
 * k8s_object_free). It may call: lib/addr, jansson.
 *
 * Shapes are those the API serves (Kubernetes API reference,
 * https://kubernetes.io/docs/reference/kubernetes-api/): Service v1,
 * EndpointSlice discovery.k8s.io/v1, Pod v1, Node v1, Status (meta/v1), watch
 * events and list metadata (reference/using-api/api-concepts). Only the fields
 * below are read; every other field is ignored, so objects of newer servers
 * decode. A field that is read is checked: type, range, length, characters.
 * JSON null is taken as absent (Go writes some empty slices as null, e.g. an
 * EndpointSlice with no endpoints has "endpoints": null).
 *
 * Why jansson: maintained in Debian (libjansson-dev); a strict RFC 8259
 * parser (UTF-8 checked, no comments, no trailing commas, no NaN, integers
 * kept apart from reals, bounded nesting depth: JSON_PARSER_MAX_DEPTH 2048);
 * reference-counted values (one json_decref frees a document); parses a
 * buffer with a length (json_loadb: a watch line needs no NUL and no copy);
 * rejects duplicate keys (JSON_REJECT_DUPLICATES: {"port":80,"port":9999}
 * could otherwise mean one thing to us and another to the API server's own
 * clients) and "\u0000" in strings, so every string we keep is a C string.
 * One leniency of its own: a raw NUL byte after a number or literal is
 * skipped ({"a":1<NUL>} parses), so we refuse any NUL byte before parsing
 * (found by fuzz_k8s).
 * cJSON, also in Debian, is more lenient (duplicate keys, no depth limit in
 * older versions, numbers as doubles) and has a history of CVEs in its parser.
 *
 * Bounds (each checked, a value beyond one is an error naming the field; the
 * API's own validation keeps real objects within them):
 *   K8S_NAME_MAX        253  names: metadata.name, nodeName, serviceAccountName,
 *                            targetRef.name, externalName (DNS subdomain)
 *   K8S_NAMESPACE_MAX    63  namespaces (DNS label)
 *   K8S_LABEL_VALUE_MAX  63  label values (kubernetes.io/service-name), zone
 *   K8S_UID_MAX          63  metadata.uid (the server writes a 36-byte UUID)
 *   K8S_RV_MAX           63  resourceVersion (opaque; etcd's is a uint64 in decimal)
 *   K8S_PORT_NAME_MAX    63  port names, named targetPorts
 *   K8S_APP_PROTOCOL_MAX 317 appProtocol (a qualified name: 253 prefix, '/', 63)
 *   K8S_MAX_PORTS       256  ports per Service or EndpointSlice
 *   K8S_MAX_ENDPOINTS  1000  endpoints per EndpointSlice (the API's maximum)
 *   K8S_MAX_ADDRS       100  addresses per endpoint (the API's maximum);
 *                            also node status.addresses entries
 *   K8S_MAX_IPS           2  clusterIPs, podIPs, node InternalIPs (one per family)
 *   K8S_MAX_LINE      4 MiB  a watch line (k8s_lines default; per instance)
 *   K8S_MAX_BODY     64 MiB  any input to a decode function
 * Memory: jansson builds the whole document before we read it: about 7
 * times the input for real objects (a 250 KB, 1000-endpoint slice peaks at
 * 1.8 MB), 40 to 70 times for adversarial shapes (a line of empty objects or
 * arrays), freed at once before decode returns (an arena: no tree walk; one
 * 256 KiB chunk stays for the next document). Page big lists (?limit=500,
 * k8s_decode_list_page) rather than raising K8S_MAX_BODY. The decoded object
 * is fixed-size (1 KB) except the arrays: 456 bytes a Service port, 784 bytes an
 * endpoint, 20 bytes an address.
 * Time: O(input). A 1000-endpoint slice (250 KB) decodes in 5 to 7 ms on one
 * core of the (shared) build machine; json_loadb alone takes 90% of that
 * (test_k8s prints the figure).
 * jansson seeds its hash function once per process, on first use, from
 * /dev/urandom (json_object_seed): the only I/O, and not ours.
 *
 * Strings we keep are NUL-terminated, within their bound, and checked for
 * their characters (names: [a-z0-9.-]; label values: [A-Za-z0-9._-]; uid,
 * resourceVersion, appProtocol, kind: printable ASCII without spaces), so
 * they can go in logs, metrics labels and JSON without escaping surprises.
 * Status reason and message are free text: control characters become '?',
 * and they are cut (at a UTF-8 boundary) rather than refused when too long.
 *
 * One thread decodes: jansson's allocator is process-wide, and the decode
 * functions point it at this module's arena while they run (k8s.c; weftd
 * decodes on its main loop only). A k8s_lines instance belongs to the one
 * thread that reads its stream.
 */
#ifndef WEFT_K8S_H
#define WEFT_K8S_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

#define K8S_NAME_MAX 253
#define K8S_NAMESPACE_MAX 63
#define K8S_LABEL_VALUE_MAX 63
#define K8S_UID_MAX 63
#define K8S_RV_MAX 63
#define K8S_KIND_MAX 63
#define K8S_PORT_NAME_MAX 63
#define K8S_APP_PROTOCOL_MAX 317
#define K8S_CONTINUE_MAX 2047 /* list metadata.continue: base64 of the server's resume key */
#define K8S_MAX_PORTS 256
#define K8S_MAX_ENDPOINTS 1000
#define K8S_MAX_ADDRS 100
#define K8S_MAX_IPS 2
#define K8S_MAX_LINE (4u << 20)
#define K8S_MAX_BODY (64u << 20)

enum k8s_kind { K8S_SERVICE, K8S_ENDPOINTSLICE, K8S_POD, K8S_NODE };
enum k8s_event_type { K8S_EV_ADDED, K8S_EV_MODIFIED, K8S_EV_DELETED, K8S_EV_BOOKMARK, K8S_EV_ERROR };

/* "Service", "EndpointSlice", "Pod", "Node"; "?" for anything else. */
const char *k8s_kind_name(enum k8s_kind kind);
/* "ADDED", ..., "ERROR" as on the wire; "?" for anything else. */
const char *k8s_event_type_name(enum k8s_event_type t);

/* An IP address, parsed with inet_pton: text is normalized by formatting it. */
struct k8s_ip {
	sa_family_t family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	};
};

/* "10.0.0.1" (port 0) or "10.0.0.1:80" / "[fd00::1]:80": K8S_IP_STRLEN bytes suffice. */
#define K8S_IP_STRLEN ADDR_STRLEN
char *k8s_ip_format(const struct k8s_ip *ip, uint16_t port, char *buf, size_t len);
/* The socket address ip:port; IPv4-mapped IPv6 folds to IPv4, as everywhere in weft. */
void k8s_ip_sockaddr(const struct k8s_ip *ip, uint16_t port, struct weft_sockaddr *out);

struct k8s_meta {
	char ns[K8S_NAMESPACE_MAX + 1]; /* "" for cluster-scoped kinds (Node) */
	char name[K8S_NAME_MAX + 1];
	char uid[K8S_UID_MAX + 1];
	char resource_version[K8S_RV_MAX + 1];
};

enum k8s_proto { K8S_PROTO_TCP, K8S_PROTO_UDP, K8S_PROTO_SCTP }; /* absent: TCP (the API's default) */
const char *k8s_proto_name(enum k8s_proto p);                    /* "TCP", "UDP", "SCTP" */

enum k8s_svc_type { K8S_SVC_CLUSTER_IP, K8S_SVC_NODE_PORT, K8S_SVC_LOAD_BALANCER, K8S_SVC_EXTERNAL_NAME };

/* spec.ports[] of a Service. */
struct k8s_service_port {
	char name[K8S_PORT_NAME_MAX + 1]; /* "" when the service has one unnamed port */
	uint16_t port;                    /* 1..65535 */
	enum k8s_proto protocol;
	char app_protocol[K8S_APP_PROTOCOL_MAX + 1]; /* "" when absent */
	/* targetPort: a number (target_port, name "") or a container port's
	 * name (target_port 0); absent means the same as port, as the API defaults it. */
	uint16_t target_port;
	char target_port_name[K8S_PORT_NAME_MAX + 1];
};

struct k8s_service {
	enum k8s_svc_type type;               /* spec.type; absent: ClusterIP */
	bool headless;                        /* spec.clusterIP "None": n_ips is 0 */
	size_t n_ips;                         /* spec.clusterIPs (or clusterIP): 0 for headless, ExternalName, "" */
	struct k8s_ip ips[K8S_MAX_IPS];       /* primary family first, as served */
	char external_name[K8S_NAME_MAX + 1]; /* spec.externalName (type ExternalName) */
	size_t n_ports;
	struct k8s_service_port *ports; /* n_ports entries, allocated (NULL when 0) */
};

enum k8s_addr_type { K8S_ADDR_IPV4, K8S_ADDR_IPV6, K8S_ADDR_FQDN };

/* ports[] of an EndpointSlice. */
struct k8s_endpoint_port {
	char name[K8S_PORT_NAME_MAX + 1];
	uint16_t port; /* 1..65535; 0 when absent: "all ports" per the API (not for weft) */
	enum k8s_proto protocol;
	char app_protocol[K8S_APP_PROTOCOL_MAX + 1];
};

struct k8s_object_ref {
	char kind[K8S_KIND_MAX + 1]; /* "" when the endpoint has no targetRef */
	char ns[K8S_NAMESPACE_MAX + 1];
	char name[K8S_NAME_MAX + 1];
	char uid[K8S_UID_MAX + 1];
};

struct k8s_endpoint {
	/* addresses[] as IPs (IPv4 or IPv6 slices). FQDN slices: the addresses
	 * are checked as DNS names and counted in n_addrs, addrs is NULL. */
	const struct k8s_ip *addrs; /* points into the slice's addr_pool */
	size_t n_addrs;             /* 1..K8S_MAX_ADDRS */
	/* conditions, absent ones resolved as the API documents: ready absent =
	 * ready ("unknown state ... should be interpreted as ready"); serving
	 * absent = the value of ready ("If nil, consumers should defer to the
	 * ready condition"; newer docs say nil is true, which differs only for a
	 * not-ready endpoint, and there following ready is the safe reading);
	 * terminating absent = false. */
	bool ready, serving, terminating;
	char node_name[K8S_NAME_MAX + 1];
	char zone[K8S_LABEL_VALUE_MAX + 1];
	struct k8s_object_ref target_ref;
};

struct k8s_endpointslice {
	char service_name[K8S_LABEL_VALUE_MAX + 1]; /* label kubernetes.io/service-name; "" when absent */
	enum k8s_addr_type address_type;            /* K8S_ADDR_FQDN: decoded, but no IPs to route to */
	size_t n_ports;
	struct k8s_endpoint_port *ports; /* allocated (NULL when 0) */
	size_t n_endpoints;
	struct k8s_endpoint *endpoints; /* allocated (NULL when 0) */
	size_t n_addrs;                 /* every endpoint's addresses, in order: one allocation */
	struct k8s_ip *addr_pool;
};

enum k8s_pod_phase {
	K8S_POD_PHASE_NONE, /* absent */
	K8S_POD_PENDING,
	K8S_POD_RUNNING,
	K8S_POD_SUCCEEDED,
	K8S_POD_FAILED,
	K8S_POD_UNKNOWN,
};

struct k8s_pod {
	char node_name[K8S_NAME_MAX + 1];       /* spec.nodeName; "" until scheduled */
	char service_account[K8S_NAME_MAX + 1]; /* spec.serviceAccountName; "" when absent */
	bool host_network;                      /* spec.hostNetwork */
	enum k8s_pod_phase phase;               /* status.phase */
	size_t n_ips;                           /* status.podIPs[].ip (or podIP): 0 until assigned */
	struct k8s_ip ips[K8S_MAX_IPS];
};

struct k8s_node {
	/* status.addresses of type InternalIP: the first of each family, in order. */
	size_t n_ips;
	struct k8s_ip internal_ips[K8S_MAX_IPS];
};

struct k8s_object {
	enum k8s_kind kind;
	struct k8s_meta meta;
	union {
		struct k8s_service svc;
		struct k8s_endpointslice es;
		struct k8s_pod pod;
		struct k8s_node node;
	};
};

/* Frees what decode allocated (the arrays) and NULLs them; safe on a zeroed
 * object and twice. */
void k8s_object_free(struct k8s_object *o);

struct k8s_event {
	enum k8s_event_type type;
	/* ADDED, MODIFIED: the object now; DELETED: its last state. BOOKMARK:
	 * only meta.resource_version is set. ERROR: obj.kind only. */
	struct k8s_object obj;
	bool initial_events_end; /* BOOKMARK with annotation k8s.io/initial-events-end "true" */
	/* ERROR: the Status object's code (e.g. 410 with reason "Expired" or
	 * "Gone": the resourceVersion is too old, list again), reason, message. */
	int status_code;
	char status_reason[64];
	char message[256];
};

/*
 * One line of a watch stream ({"type":"ADDED","object":{...}}) of a watch of
 * kind. The object must be of that kind (its "kind" and "apiVersion", when
 * present, are checked). Returns 0 with *ev filled (k8s_object_free(&ev->obj)
 * when done), or -EINVAL with err saying what is wrong and naming the field
 * ("object.spec.ports[2].port: 65536 is out of range 1..65535"); *ev is then
 * zeroed and owns nothing. err may be NULL.
 */
int k8s_decode_event(enum k8s_kind kind, const char *line, size_t len, struct k8s_event *ev, char *err, size_t errlen);

/* A list's metadata: what comes back to resume or page. */
struct k8s_list_meta {
	char resource_version[K8S_RV_MAX + 1]; /* watch from here */
	char cont[K8S_CONTINUE_MAX + 1];       /* metadata.continue: "" on the last page */
};

/*
 * A list response ({"kind":"ServiceList","apiVersion":"v1","metadata":
 * {"resourceVersion":"123"},"items":[...]}). Calls fn for each item in order
 * (o is valid only during the call: copy what you keep); fn returns 0 to go
 * on, anything else stops the walk and is returned. rv gets
 * metadata.resourceVersion (required). Returns 0, fn's value, -EINVAL with
 * err (an item that does not decode fails the whole list, and err names it:
 * "items[3].metadata.name: ..."), or -ENOSPC when rv is too small (checked
 * after the walk). fn may have seen earlier items before a later one fails:
 * build the new state aside and commit it only on 0. A page of a paginated
 * list (metadata.continue set) is -EINVAL before any item, since items would
 * be missed: use k8s_decode_list_page.
 */
int k8s_decode_list(enum k8s_kind kind, const char *body, size_t len, int (*fn)(void *arg, const struct k8s_object *o),
		    void *arg, char *rv, size_t rvlen, char *err, size_t errlen);

/* The same for one page of a list read with ?limit=N: lm gets the
 * resourceVersion and the continue token (ask again with ?continue=...). */
int k8s_decode_list_page(enum k8s_kind kind, const char *body, size_t len,
			 int (*fn)(void *arg, const struct k8s_object *o), void *arg, struct k8s_list_meta *lm,
			 char *err, size_t errlen);

/*
 * A Status object (what a 4xx/5xx answer carries: {"kind":"Status",
 * "apiVersion":"v1","status":"Failure","message":"...","reason":"NotFound",
 * "code":404}): code (0 when absent), reason and message (cut to fit, "" when
 * absent). Returns 0, or -EINVAL when body is not a Status (then code is 0,
 * reason and msg ""). code, reason, msg may be NULL.
 */
int k8s_decode_status(const char *body, size_t len, int *code, char *reason, size_t rlen, char *msg, size_t mlen);

/*
 * Watch stream lines. The API server writes one JSON event per line; bytes
 * arrive in chunks that cut lines anywhere. k8s_lines_feed hands fn every
 * complete line (without its '\n'; empty lines are skipped), straight from
 * the chunk when it is whole there, else from the instance's buffer, which
 * only ever holds the start of one line: memory is at most max bytes, and
 * the only copy is of the line that spans chunks.
 *
 * A line longer than max is -EMSGSIZE (-ENOMEM if the buffer cannot grow).
 * That, or fn returning non-zero, ends the stream: the buffer is freed, the
 * instance refuses further bytes (-EPIPE) and the caller drops the
 * connection (and watches again). fn's value is returned as is.
 */
struct k8s_lines {
	char *buf;   /* the start of a line that spans chunks */
	size_t len;  /* bytes in buf */
	size_t cap;  /* allocated; grows by doubling, never beyond max */
	size_t max;  /* longest line */
	bool failed; /* a line was too long, or fn stopped */
};

/* max 0: K8S_MAX_LINE. Allocates nothing yet. */
void k8s_lines_init(struct k8s_lines *l, size_t max);
void k8s_lines_free(struct k8s_lines *l);
int k8s_lines_feed(struct k8s_lines *l, const char *data, size_t n, int (*fn)(void *arg, const char *line, size_t len),
		   void *arg);
/* Bytes of an unfinished line: non-zero at the end of a stream means it was cut. */
static inline size_t k8s_lines_pending(const struct k8s_lines *l)
{
	return l->len;
}

#endif
