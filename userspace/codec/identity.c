// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Workload identities: SPIFFE ID validation, the cgroup -> identity map and
 * the per-service allow-list. Nothing here does I/O; all of it runs on the
 * control path (config load) or once per connection (policy check, cached map
 * lookup), so clarity wins over speed: plain arrays and linear scans.
 */
#include "lib/log.h"
#include "codec/identity.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPIFFE_SCHEME "spiffe://"
#define SPIFFE_SCHEME_LEN (sizeof(SPIFFE_SCHEME) - 1)
/* Longest piece of input quoted back in a message: keeps messages one line. */
#define ID_ECHO_MAX 64

/* Quotable copy of untrusted text: at most ID_ECHO_MAX bytes, controls as '?'. */
static const char *id_echo(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 4 < buflen && i < ID_ECHO_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];

		buf[n++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
	}
	if (i < len && n + 4 <= buflen) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

static const char *char_name(unsigned char ch, char *buf, size_t len)
{
	if (ch >= 0x21 && ch < 0x7f)
		snprintf(buf, len, "'%c'", ch);
	else
		snprintf(buf, len, "byte 0x%02x", ch);
	return buf;
}

static inline bool td_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
}

static inline bool seg_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
	       ch == '-' || ch == '_';
}

/* Trust domain bytes [td, td+len): 0 or -EINVAL with the reason. */
static int td_check_n(const char *td, size_t len, char *err, size_t errlen)
{
	char cn[16];
	size_t i;

	if (len == 0) {
		err_set(err, errlen, "has an empty trust domain");
		return -EINVAL;
	}
	if (len > SPIFFE_TD_MAX) {
		err_set(err, errlen, "trust domain is %zu bytes long; at most %d are allowed", len, SPIFFE_TD_MAX);
		return -EINVAL;
	}
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)td[i];

		if (td_char(ch))
			continue;
		if (ch >= 'A' && ch <= 'Z')
			err_set(err, errlen, "trust domain has uppercase '%c'; SPIFFE trust domains are lowercase", ch);
		else if (ch == ':')
			err_set(err, errlen, "trust domain has a port (':'); SPIFFE IDs never carry one");
		else if (ch == '@')
			err_set(err, errlen, "trust domain has userinfo ('@'); SPIFFE IDs never carry one");
		else
			err_set(err, errlen, "trust domain has %s; only a-z, 0-9, '.', '-' and '_' are allowed",
				char_name(ch, cn, sizeof(cn)));
		return -EINVAL;
	}
	return 0;
}

int spiffe_td_check(const char *td, char *err, size_t errlen)
{
	char q[ID_ECHO_MAX + 8], why[160];
	size_t len;

	if (!td) {
		err_set(err, errlen, "no trust domain given");
		return -EINVAL;
	}
	len = strlen(td);
	if (td_check_n(td, len, why, sizeof(why))) {
		err_set(err, errlen, "'%s' %s", id_echo(td, len, q, sizeof(q)), why);
		return -EINVAL;
	}
	return 0;
}

/* The checks of spiffe_id_check without the quoting of the input. */
static int id_check_n(const char *id, size_t len, char *err, size_t errlen)
{
	const char *p, *end = id + len, *td;
	char cn[16];

	if (len > SPIFFE_ID_MAX) {
		err_set(err, errlen, "is %zu bytes long; a SPIFFE ID has at most %d", len, SPIFFE_ID_MAX);
		return -EINVAL;
	}
	if (memchr(id, '\0', len)) {
		err_set(err, errlen, "contains a NUL byte");
		return -EINVAL;
	}
	if (len < SPIFFE_SCHEME_LEN || memcmp(id, SPIFFE_SCHEME, SPIFFE_SCHEME_LEN) != 0) {
		err_set(err, errlen, "does not start with 'spiffe://' (the scheme is lowercase)");
		return -EINVAL;
	}
	td = id + SPIFFE_SCHEME_LEN;
	for (p = td; p < end && *p != '/'; p++)
		;
	if (td_check_n(td, (size_t)(p - td), err, errlen))
		return -EINVAL;
	/* Path: ("/" segment)*, checked one segment at a time. */
	while (p < end) {
		const char *seg = ++p; /* skip '/' */

		while (p < end && *p != '/') {
			unsigned char ch = (unsigned char)*p;

			if (!seg_char(ch)) {
				if (ch == '?')
					err_set(err, errlen, "has a query ('?'); SPIFFE IDs have none");
				else if (ch == '#')
					err_set(err, errlen, "has a fragment ('#'); SPIFFE IDs have none");
				else if (ch == '%')
					err_set(err, errlen, "has percent-encoding ('%%'); SPIFFE IDs do not allow it");
				else
					err_set(err, errlen,
						"path has %s; segments may only hold A-Z, a-z, 0-9, '.', '-' and '_'",
						char_name(ch, cn, sizeof(cn)));
				return -EINVAL;
			}
			p++;
		}
		if (p == seg) {
			err_set(err, errlen,
				p == end ? "ends with '/'; remove the trailing slash"
					 : "has an empty path segment ('//')");
			return -EINVAL;
		}
		if ((p - seg == 1 && seg[0] == '.') || (p - seg == 2 && seg[0] == '.' && seg[1] == '.')) {
			err_set(err, errlen, "has a '%.*s' path segment; SPIFFE IDs do not allow relative segments",
				(int)(p - seg), seg);
			return -EINVAL;
		}
	}
	return 0;
}

int spiffe_id_check(const char *id, size_t len, char *err, size_t errlen)
{
	char q[ID_ECHO_MAX + 8], why[160];

	if (!id) {
		err_set(err, errlen, "no SPIFFE ID given");
		return -EINVAL;
	}
	if (id_check_n(id, len, why, sizeof(why))) {
		err_set(err, errlen, "'%s' is not a valid SPIFFE ID: %s", id_echo(id, len, q, sizeof(q)), why);
		return -EINVAL;
	}
	return 0;
}

int spiffe_trust_domain(const char *id, char *buf, size_t len)
{
	const char *td, *slash;
	size_t n;

	if (!id || id_check_n(id, strlen(id), NULL, 0))
		return -EINVAL;
	td = id + SPIFFE_SCHEME_LEN;
	slash = strchr(td, '/');
	n = slash ? (size_t)(slash - td) : strlen(td);
	if (n + 1 > len)
		return -ENOSPC;
	memcpy(buf, td, n);
	buf[n] = '\0';
	return 0;
}

bool spiffe_in_trust_domain(const char *id, const char *td)
{
	size_t n;

	if (!id || !td || id_check_n(id, strlen(id), NULL, 0))
		return false;
	n = strlen(td);
	if (n == 0 || strncmp(id + SPIFFE_SCHEME_LEN, td, n) != 0)
		return false;
	return id[SPIFFE_SCHEME_LEN + n] == '\0' || id[SPIFFE_SCHEME_LEN + n] == '/';
}

/* --- cgroup -> identity ---------------------------------------------------- */

struct id_rule {
	char *glob; /* normalised: relative to the mount, no leading/trailing '/' */
	char *identity;
};

struct id_map {
	char *mount; /* without trailing '/' */
	struct id_rule *rules;
	size_t n, cap;
};

struct id_map *id_map_new(const char *cg_mount)
{
	struct id_map *m = calloc(1, sizeof(*m));
	size_t n;

	if (!m)
		return NULL;
	if (!cg_mount || !*cg_mount)
		cg_mount = "/sys/fs/cgroup";
	n = strlen(cg_mount);
	while (n > 1 && cg_mount[n - 1] == '/')
		n--;
	m->mount = strndup(cg_mount, n);
	if (!m->mount) {
		free(m);
		return NULL;
	}
	return m;
}

void id_map_free(struct id_map *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++) {
		free(m->rules[i].glob);
		free(m->rules[i].identity);
	}
	free(m->rules);
	free(m->mount);
	free(m);
}

/*
 * Strips the mount prefix (when path is absolute and under it) and the
 * leading and trailing slashes: "/sys/fs/cgroup/a/b", "/a/b" (the form of
 * /proc/PID/cgroup) and "a/b/" all become "a/b". Returns a pointer into path
 * and its length in *len, or NULL for a path under /sys that is not under the
 * mount (a mount path, but not of this hierarchy).
 */
static const char *cg_relative(const struct id_map *m, const char *path, size_t *len)
{
	size_t n = strlen(m->mount);

	if (path[0] == '/' && n > 1) {
		if (strncmp(path, m->mount, n) == 0 && (path[n] == '/' || path[n] == '\0'))
			path += n;
		else if (strncmp(path, "/sys/", 5) == 0)
			return NULL;
	}
	while (*path == '/')
		path++;
	n = strlen(path);
	while (n && path[n - 1] == '/')
		n--;
	*len = n;
	return path;
}

static bool has_dotdot(const char *s)
{
	const char *p = s;

	while ((p = strstr(p, "..")) != NULL) {
		if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
		p += 2;
	}
	return false;
}

int id_map_add(struct id_map *m, const char *cgroup_glob, const char *identity, char *err, size_t errlen)
{
	char why[256];
	const char *rel;
	struct id_rule r;
	size_t len;

	if (!cgroup_glob || !*cgroup_glob) {
		err_set(err, errlen,
			"cgroup: empty; write a path or glob relative to the cgroup2 mount, e.g. \"system.slice/*.service\"");
		return -EINVAL;
	}
	rel = cg_relative(m, cgroup_glob, &len);
	if (!rel) {
		err_set(err, errlen, "cgroup: '%s' is outside the cgroup2 mount '%s'", cgroup_glob, m->mount);
		return -EINVAL;
	}
	if (len == 0) {
		err_set(err, errlen, "cgroup: '%s' names the root cgroup, which would give every workload one identity",
			cgroup_glob);
		return -EINVAL;
	}
	if (has_dotdot(cgroup_glob)) {
		err_set(err, errlen, "cgroup: '%s' has a '..' component", cgroup_glob);
		return -EINVAL;
	}
	if (!identity || spiffe_id_check(identity, strlen(identity), why, sizeof(why))) {
		err_set(err, errlen, "identity: %s", identity ? why : "missing");
		return -EINVAL;
	}
	if (m->n >= ID_MAP_MAX) {
		err_set(err, errlen, "too many identity rules (at most %d); use globs", ID_MAP_MAX);
		return -E2BIG;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 8;
		struct id_rule *nr = realloc(m->rules, cap * sizeof(*nr));

		if (!nr)
			goto nomem;
		m->rules = nr;
		m->cap = cap;
	}
	r.glob = strndup(rel, len);
	r.identity = strdup(identity);
	if (!r.glob || !r.identity) {
		free(r.glob);
		free(r.identity);
		goto nomem;
	}
	m->rules[m->n++] = r;
	return 0;
nomem:
	err_set(err, errlen, "out of memory adding an identity rule");
	return -ENOMEM;
}

const char *id_map_lookup(const struct id_map *m, const char *cgroup_path)
{
	char path[4096];
	const char *rel;
	size_t i, len;

	if (!m || !cgroup_path || m->n == 0)
		return NULL;
	rel = cg_relative(m, cgroup_path, &len);
	if (!rel || len == 0 || len >= sizeof(path))
		return NULL;
	for (i = 0; i < m->n; i++) {
		size_t n = len;

		memcpy(path, rel, len);
		path[len] = '\0';
		/* the cgroup itself, then each ancestor up to (not including) the root */
		for (;;) {
			char *slash;

			if (fnmatch(m->rules[i].glob, path, FNM_PATHNAME) == 0)
				return m->rules[i].identity;
			slash = memrchr(path, '/', n);
			if (!slash)
				break;
			*slash = '\0';
			n = (size_t)(slash - path);
		}
	}
	return NULL;
}

size_t id_map_count(const struct id_map *m)
{
	return m ? m->n : 0;
}

/* --- authorization ---------------------------------------------------------- */

struct id_pattern {
	char *text;   /* as given, less a last "**" segment */
	bool glob;    /* has fnmatch metacharacters */
	bool subtree; /* had a last "**" segment: matches text and everything under it */
};

struct id_policy {
	char td[SPIFFE_TD_MAX + 1];
	struct id_pattern *pats;
	size_t n, cap;
};

const char *id_verdict_name(enum id_verdict v)
{
	switch (v) {
	case ID_ALLOW:
		return "allow";
	case ID_DENY_NOT_ALLOWED:
		return "not_allowed";
	case ID_DENY_TRUST_DOMAIN:
		return "trust_domain";
	case ID_DENY_INVALID:
		return "invalid_identity";
	}
	return "unknown";
}

struct id_policy *id_policy_new(const char *trust_domain)
{
	struct id_policy *p;

	if (spiffe_td_check(trust_domain, NULL, 0))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	memcpy(p->td, trust_domain, strlen(trust_domain) + 1);
	return p;
}

void id_policy_free(struct id_policy *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++)
		free(p->pats[i].text);
	free(p->pats);
	free(p);
}

static inline bool glob_char(unsigned char ch)
{
	return ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '!' || ch == '^';
}

int id_policy_allow(struct id_policy *p, const char *pattern, char *err, size_t errlen)
{
	struct id_pattern pat = { 0 };
	char q[ID_ECHO_MAX + 8], why[256], cn[16];
	size_t len, i;
	bool glob = false;

	if (!pattern || !*pattern) {
		err_set(err, errlen, "empty identity; write a SPIFFE ID such as \"spiffe://%s/ns/prod/sa/web\"", p->td);
		return -EINVAL;
	}
	len = strlen(pattern);
	id_echo(pattern, len, q, sizeof(q));
	if (len > SPIFFE_ID_MAX) {
		err_set(err, errlen, "'%s' is longer than a SPIFFE ID can be (%d bytes)", q, SPIFFE_ID_MAX);
		return -EINVAL;
	}
	if (len >= 3 && strcmp(pattern + len - 3, "/**") == 0) {
		pat.subtree = true;
		len -= 3;
	}
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)pattern[i];

		if (glob_char(ch)) {
			glob = true;
			if (ch == '*' && i + 1 < len && pattern[i + 1] == '*') {
				err_set(err, errlen, "'%s': '**' is only allowed as the whole last segment (\"/**\")",
					q);
				return -EINVAL;
			}
			continue;
		}
		if (ch == '\\') {
			err_set(err, errlen, "'%s': backslash escapes are not supported in identity patterns", q);
			return -EINVAL;
		}
		if (ch != '/' && ch != ':' && !seg_char(ch)) {
			err_set(err, errlen, "'%s' has %s, which no SPIFFE ID contains", q,
				char_name(ch, cn, sizeof(cn)));
			return -EINVAL;
		}
	}
	if (len < SPIFFE_SCHEME_LEN || memcmp(pattern, SPIFFE_SCHEME, SPIFFE_SCHEME_LEN) != 0) {
		err_set(err, errlen, "'%s' does not start with 'spiffe://'", q);
		return -EINVAL;
	}
	if (!glob && id_check_n(pattern, len, why, sizeof(why))) {
		err_set(err, errlen, "'%s' is not a valid SPIFFE ID: %s", q, why);
		return -EINVAL;
	}
	pat.glob = glob;
	pat.text = strndup(pattern, len);
	if (!pat.text)
		goto nomem;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4;
		struct id_pattern *np = realloc(p->pats, cap * sizeof(*np));

		if (!np) {
			free(pat.text);
			goto nomem;
		}
		p->pats = np;
		p->cap = cap;
	}
	p->pats[p->n++] = pat;
	return 0;
nomem:
	err_set(err, errlen, "out of memory adding an allowed identity");
	return -ENOMEM;
}

size_t id_policy_count(const struct id_policy *p)
{
	return p ? p->n : 0;
}

static bool pattern_match(const struct id_pattern *pat, const char *id)
{
	char buf[SPIFFE_ID_MAX + 1];
	size_t n;

	if (!pat->subtree)
		return pat->glob ? fnmatch(pat->text, id, FNM_PATHNAME) == 0 : strcmp(pat->text, id) == 0;
	/* subtree: X itself, or X followed by '/' and anything: try each ancestor */
	n = strlen(id);
	if (n > SPIFFE_ID_MAX)
		return false;
	memcpy(buf, id, n + 1);
	for (;;) {
		char *slash;

		if (pat->glob ? fnmatch(pat->text, buf, FNM_PATHNAME) == 0 : strcmp(pat->text, buf) == 0)
			return true;
		slash = strrchr(buf, '/');
		/* never cut into "spiffe://": the trust domain is the shortest prefix tried */
		if (!slash || slash < buf + SPIFFE_SCHEME_LEN)
			return false;
		*slash = '\0';
	}
}

enum id_verdict id_policy_check(const struct id_policy *p, const char *identity)
{
	size_t i;

	if (!identity || id_check_n(identity, strlen(identity), NULL, 0))
		return ID_DENY_INVALID;
	if (p->n == 0)
		return spiffe_in_trust_domain(identity, p->td) ? ID_ALLOW : ID_DENY_TRUST_DOMAIN;
	for (i = 0; i < p->n; i++)
		if (pattern_match(&p->pats[i], identity))
			return ID_ALLOW;
	return ID_DENY_NOT_ALLOWED;
}
