/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * identity: workload identities (SPIFFE IDs), which cgroup has which, and
 * which identities a service lets in.
 *
 * - SPIFFE ID syntax, exactly as the SPIFFE-ID spec (sections 2.1 to 2.3):
 *   "spiffe://" trust-domain path; trust domain of [a-z0-9._-] (lowercase
 *   only, 1..255 bytes, no port, no userinfo); path of zero or more "/segment"
 *   with segments of [A-Za-z0-9._-], never empty, "." or ".."; no trailing
 *   "/", no query, no fragment, no percent-encoding; 2048 bytes at most.
 * - Identity map: ordered rules "cgroup glob -> SPIFFE ID", first match wins.
 *   Globs are fnmatch(3) patterns with FNM_PATHNAME ('*' stays inside one path
 *   component), relative to the cgroup2 mount. A rule matches a cgroup when it
 *   matches its path or the path of one of its ancestors, so a rule for a pod
 *   or a service covers the containers and sub-cgroups under it.
 * - Policy: an allow-list of identities, each exact or a glob (fnmatch,
 *   FNM_PATHNAME: '*' matches within one path segment; a last segment of
 *   "**" matches the path before it and everything under it). Empty list:
 *   any identity of the policy's trust domain.
 * It may call: lib/log.
 */
#ifndef WEFT_IDENTITY_H
#define WEFT_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#define SPIFFE_ID_MAX 2048 /* bytes, without NUL */
#define SPIFFE_TD_MAX 255

/*
 * Checks that the len bytes at id are one valid SPIFFE ID (a NUL inside is
 * invalid). Returns 0, or -EINVAL with a reason in err ("trust domain has
 * uppercase 'E'; SPIFFE trust domains are lowercase").
 */
int spiffe_id_check(const char *id, size_t len, char *err, size_t errlen);
/* The same for a trust domain name alone. */
int spiffe_td_check(const char *td, char *err, size_t errlen);
/* Copies the trust domain of a valid SPIFFE ID into buf (SPIFFE_TD_MAX + 1 fits); 0 or -EINVAL/-ENOSPC. */
int spiffe_trust_domain(const char *id, char *buf, size_t len);
/* True if id is a valid SPIFFE ID whose trust domain is td. */
bool spiffe_in_trust_domain(const char *id, const char *td);

/* --- cgroup -> identity ---------------------------------------------------- */

struct id_map;

/*
 * cg_mount: the cgroup2 mount point (NULL: "/sys/fs/cgroup"). Rules and
 * lookups take a path relative to it ("system.slice/app.service"), the same
 * with a leading '/' (as /proc/PID/cgroup prints it), or an absolute path
 * under the mount. NULL on allocation failure.
 */
struct id_map *id_map_new(const char *cg_mount);
void id_map_free(struct id_map *m); /* NULL is fine */
/*
 * Appends a rule (it matches after every rule added before it). Rejects an
 * empty glob, one with a ".." component, an absolute path outside cg_mount,
 * and an identity that is not a valid SPIFFE ID: -EINVAL with a reason in
 * err. -ENOMEM. At most ID_MAP_MAX rules (-E2BIG).
 */
#define ID_MAP_MAX 4096
int id_map_add(struct id_map *m, const char *cgroup_glob, const char *identity, char *err, size_t errlen);
/*
 * The identity of the cgroup at path (relative to the mount, or absolute
 * under it), or NULL when no rule matches. Borrowed from m.
 * O(rules x depth) fnmatch calls: cache the answer per cgroup id.
 */
const char *id_map_lookup(const struct id_map *m, const char *cgroup_path);
size_t id_map_count(const struct id_map *m);

/* --- authorization ---------------------------------------------------------- */

enum id_verdict {
	ID_ALLOW = 0,
	ID_DENY_NOT_ALLOWED,  /* valid, in the trust domain, not on the allow-list */
	ID_DENY_TRUST_DOMAIN, /* empty allow-list and a foreign trust domain */
	ID_DENY_INVALID,      /* not a valid SPIFFE ID (never reaches matching) */
};
/* "allow", "not_allowed", "trust_domain", "invalid_identity": metric labels. */
const char *id_verdict_name(enum id_verdict v);

struct id_policy;

/* trust_domain: must be valid (NULL on invalid input or allocation failure). */
struct id_policy *id_policy_new(const char *trust_domain);
void id_policy_free(struct id_policy *p); /* NULL is fine */
// Adds an allowed identity: an exact SPIFFE ID, or a glob over one
// ("spiffe://example.org/ns/prod/sa/*", "spiffe://example.org/ns/prod/**").
// Rejects text that could never match a valid SPIFFE ID, backslashes, and
// "**" anywhere but as the whole last segment: -EINVAL with a reason.
int id_policy_allow(struct id_policy *p, const char *pattern, char *err, size_t errlen);
size_t id_policy_count(const struct id_policy *p);
/*
 * Decides for a peer identity (as read from its verified certificate). The
 * identity is validated again here: a policy never matches invalid text.
 * O(patterns) fnmatch calls.
 */
enum id_verdict id_policy_check(const struct id_policy *p, const char *identity);

#endif
