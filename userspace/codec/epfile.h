/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * epfile: endpoint files (a service's `endpoints_from = { file = PATH; }`),
 * text in, endpoints out. Whatever writes the file (Consul template,
 * Ansible, a script) picks one of two formats:
 *
 *   lines:      one endpoint per line, `address [weight [zone [priority]]]`,
 *               fields separated by blanks, '#' starts a comment (at the
 *               start of a line or after a blank), blank lines ignored; a
 *               zone of "-" means none (to give a priority without a zone):
 *                 # api endpoints
 *                 10.0.0.1:8080
 *                 10.0.0.2:8080  3  eu-west-1a
 *                 [2001:db8::7]:8080 1 - 1
 *   libconfig:  the file's first word is `endpoints`, and it reads as the
 *               config file's endpoint lists do:
 *                 endpoints = ( { address = "10.0.0.1:8080"; weight = 2; zone = "a"; priority = 0; } );
 *
 * Every problem is one message "NAME:LINE: what is wrong; what to do", as
 * the config's: a file with any problem gives no endpoints (the caller keeps
 * the last good set). Checked: addresses (numeric ip:port), weight 1..1000,
 * zone names (ep_zone_problem), priority 0..65535, an address listed twice,
 * more than EPFILE_MAX_ENDPOINTS endpoints, lines longer than
 * EPFILE_MAX_LINE, NUL bytes, and (libconfig) syntax, unknown keys, types,
 * @include (refused: a file another tool writes must not open others).
 *
 * Pure: no I/O, the text is passed in. O(n^2) in endpoints for the duplicate
 * check (n <= 1024: well under a millisecond).
 * It may call: codec/lcfg, lib/addr, libconfig.
 */
#ifndef WEFT_EPFILE_H
#define WEFT_EPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/addr.h"

#define EPFILE_MAX_ENDPOINTS 1024 /* as a service's endpoints in the config (CFG_MAX_ENDPOINTS) */
#define EPFILE_MAX_BYTES (1u << 20)
#define EPFILE_MAX_LINE 1024 /* bytes per line (lines format) */
#define EPFILE_MAX_ERRORS 20 /* messages kept (then one "... more errors" line) */
#define EP_ZONE_MAX 63
#define EP_WEIGHT_MAX 1000
#define EP_PRIORITY_MAX 65535

/* One endpoint from a discovery source (files here; DNS in disc/). */
struct ep_entry {
	struct weft_sockaddr addr;
	uint32_t weight;            /* 1..EP_WEIGHT_MAX, default 1 */
	uint32_t priority;          /* 0..EP_PRIORITY_MAX, default 0: lower is preferred */
	char zone[EP_ZONE_MAX + 1]; /* "" when none */
	unsigned line;              /* where it was read (files), 0 otherwise */
};

struct epfile_errors {
	char **msgs;
	size_t n;
	bool more; /* messages beyond EPFILE_MAX_ERRORS were dropped (the last one says so) */
};
void epfile_errors_free(struct epfile_errors *e);

/*
 * Parses text[0..len) (text[len] must be '\0'; NUL bytes inside are an
 * error); name is the file's name in messages. On success 0 with *out
 * (malloc'd, the caller frees; NULL when *n is 0) and *n, in file order.
 * On problems -EINVAL with messages appended to errs (which may be NULL),
 * *out NULL; -ENOMEM. An empty file (no endpoint) is not an error here.
 */
int epfile_parse(const char *text, size_t len, const char *name, struct ep_entry **out, size_t *n,
		 struct epfile_errors *errs);

/*
 * What is wrong with a zone name, or NULL when it is one: 1 to EP_ZONE_MAX
 * characters of A-Z a-z 0-9 '.' '_' '-', starting with a letter or digit
 * (Kubernetes' topology.kubernetes.io/zone values, "eu-west-1a", "dc1").
 */
const char *ep_zone_problem(const char *zone);

#endif
