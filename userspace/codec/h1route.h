/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * h1route: the pure parts of HTTP routing, kept apart from the I/O so they
 * can be unit-tested: a service's routes as copied from the config, matching
 * a parsed request against them, the weighted choice of a backend service,
 * the names a Connection header lists, and protocol detection of the first
 * bytes of a connection ("auto").
 * It may call: codec/http1, config/config.
 */
#ifndef WEFT_H1ROUTE_H
#define WEFT_H1ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "codec/http1.h"

struct h1_routestat;

struct h1r_kv {
	char *name; /* lower-case */
	size_t nlen;
	char *value; /* match: NULL = any value */
	size_t vlen;
};

struct h1r_backend {
	char *service;
	uint32_t index; /* in the config generation the route came from */
	uint32_t weight;
	int64_t current; /* smooth weighted round-robin score (the caller serialises picks) */
};

struct h1r_route {
	char *name;
	char *method; /* NULL: any */
	char *host;   /* NULL: any; lower-case */
	size_t host_len;
	enum cfg_path_match path_kind;
	char *path;
	size_t path_len;
	struct h1r_kv *mh; /* header conditions */
	size_t n_mh;
	struct h1r_backend *be; /* none: the service itself */
	size_t n_be;
	uint32_t be_total; /* sum of weights */
	uint32_t timeout_ms;
	bool retryable;
	struct h1r_kv *add; /* request headers to set */
	size_t n_add;
	struct h1r_kv *rm; /* request headers to remove */
	size_t n_rm;
	struct h1_routestat *stat; /* the caller's counters */
};

/* Deep copy of a config route (the config does not outlive a reload). 0 or -ENOMEM (free with h1r_route_free either way). */
int h1r_route_init(struct h1r_route *r, const struct cfg_route *c);
void h1r_route_free(struct h1r_route *r);

/*
 * Does the request match? Method exact (case-sensitive), host
 * case-insensitive without its port, path exact or prefix against the raw
 * path before '?' (not percent-decoded or normalised: routes steer traffic,
 * they are not access control), and every header condition (name
 * case-insensitive; value exact, or any value). O(conditions * headers).
 */
bool h1r_route_matches(const struct h1r_route *r, const struct h1_request *q);

/*
 * Smooth weighted round-robin over the route's backends: the index of the
 * next one (weights 9:1 give exactly 9 of every 10 in an even spread), or -1
 * when there are none or all weights are 0. Mutates the scores.
 */
int h1r_backend_pick(struct h1r_route *r);

/* Names listed in Connection field values, at most H1R_MAX_CONN_TOKENS (the rest are ignored). */
#define H1R_MAX_CONN_TOKENS 16
size_t h1r_connection_tokens(const struct h1_header *hs, size_t n, const char **p, size_t *l);

/* Protocol detection of a connection's first bytes. */
enum h1r_proto { H1R_HTTP1 = 0, H1R_HTTP2, H1R_TLS, H1R_OPAQUE };
/*
 * Classifies p[0..n): an enum h1r_proto, or -1 when the bytes are a prefix
 * of something known and more are needed. HTTP/1.x: a method of 1..20
 * upper-case letters then SP (extension methods included); HTTP/2: the
 * client connection preface; TLS: a handshake record (0x16 0x03).
 */
int h1r_detect(const unsigned char *p, size_t n);
/* Bytes h1r_detect may need before it decides (a longer prefix is always decided). */
#define H1R_DETECT_MAX 24

#endif
