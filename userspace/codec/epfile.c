// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * epfile: endpoint files, two formats (epfile.h). The format is chosen by
 * the first word: `endpoints` is libconfig, anything else (an address) is
 * lines. Both feed one collector, which checks limits and duplicates, so
 * the two formats accept exactly the same endpoints.
 */
#include "codec/epfile.h"

#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/lcfg.h"

#define ECHO_MAX 64

struct ep_ctx {
	const char *name;
	struct epfile_errors *errs;
	size_t problems; /* found, whether or not the message was kept */
	bool oom;
	bool full; /* EPFILE_MAX_ENDPOINTS reached (reported once) */
	struct ep_entry *eps;
	size_t n, cap;
};

void epfile_errors_free(struct epfile_errors *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = 0;
	e->more = false;
}

static int errs_push(struct epfile_errors *e, char *msg)
{
	char **m = realloc(e->msgs, (e->n + 1) * sizeof(*m));

	if (!m) {
		free(msg);
		return -ENOMEM;
	}
	e->msgs = m;
	e->msgs[e->n++] = msg;
	return 0;
}

/* One message "NAME:LINE: ..." (control characters shown as '?', so it stays one line). */
static void ep_err(struct ep_ctx *x, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ep_err(struct ep_ctx *x, unsigned line, const char *fmt, ...)
{
	char body[512], *msg = NULL, *p;
	va_list ap;
	int r;

	x->problems++;
	if (!x->errs || x->errs->more)
		return;
	if (x->errs->n >= EPFILE_MAX_ERRORS) {
		x->errs->more = true;
		r = asprintf(&msg, "%s: ... more errors not shown", x->name);
	} else {
		va_start(ap, fmt);
		vsnprintf(body, sizeof(body), fmt, ap);
		va_end(ap);
		r = line ? asprintf(&msg, "%s:%u: %s", x->name, line, body) : asprintf(&msg, "%s: %s", x->name, body);
	}
	if (r < 0) {
		x->oom = true;
		return;
	}
	for (p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (errs_push(x->errs, msg) < 0)
		x->oom = true;
}

/* User text quoted in a message, cut at ECHO_MAX bytes (buf: ECHO_MAX + 4). */
static const char *echo(const char *s, char *buf)
{
	size_t n = strnlen(s, ECHO_MAX + 1);

	if (n > ECHO_MAX) {
		memcpy(buf, s, ECHO_MAX);
		memcpy(buf + ECHO_MAX, "...", 4);
	} else {
		memcpy(buf, s, n + 1);
	}
	return buf;
}

const char *ep_zone_problem(const char *z)
{
	size_t i;

	if (!z[0])
		return "is empty";
	if (!((z[0] >= 'a' && z[0] <= 'z') || (z[0] >= 'A' && z[0] <= 'Z') || (z[0] >= '0' && z[0] <= '9')))
		return "does not start with a letter or digit";
	for (i = 0; z[i]; i++) {
		char c = z[i];

		if (i >= EP_ZONE_MAX)
			return "is longer than 63 characters";
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return "has a character other than A-Z, a-z, 0-9, '.', '_', '-'";
	}
	return NULL;
}

/* Adds e (its line set) unless the file already lists the address or holds the maximum. */
static void collect(struct ep_ctx *x, const struct ep_entry *e)
{
	char ab[ADDR_STRLEN];
	size_t i;

	for (i = 0; i < x->n; i++) {
		if (addr_equal(&x->eps[i].addr, &e->addr)) {
			ep_err(x, e->line, "%s is already on line %u; list each endpoint once (a weight favours one)",
			       addr_format(&e->addr, ab, sizeof(ab)), x->eps[i].line);
			return;
		}
	}
	if (x->n == EPFILE_MAX_ENDPOINTS) {
		if (!x->full)
			ep_err(x, e->line, "more than %d endpoints; that is the most one service can have",
			       EPFILE_MAX_ENDPOINTS);
		x->full = true;
		return;
	}
	if (x->n == x->cap) {
		size_t nc = x->cap ? x->cap * 2 : 16;
		struct ep_entry *ne = realloc(x->eps, nc * sizeof(*ne));

		if (!ne) {
			x->oom = true;
			return;
		}
		x->eps = ne;
		x->cap = nc;
	}
	x->eps[x->n++] = *e;
}

/* A decimal number of 1 to 10 digits, no sign, at most max. */
static bool parse_uint(const char *s, uint32_t max, uint32_t *out)
{
	unsigned long long v = 0;
	size_t i;

	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return false;
		v = v * 10 + (unsigned long long)(s[i] - '0');
	}
	if (!i || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* --- lines ------------------------------------------------------------------- */

/* One line (NUL-terminated, no newline, comment cut): `address [weight [zone [priority]]]`. */
static void parse_line(struct ep_ctx *x, char *s, unsigned line)
{
	char *tok[5], eb[ECHO_MAX + 4], why[256];
	struct ep_entry e;
	const char *zp;
	size_t nt = 0;

	while (*s && nt < 5) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		tok[nt++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		if (*s)
			*s++ = '\0';
	}
	if (!nt)
		return;
	if (nt > 4) {
		ep_err(x, line, "more than 4 fields; a line is: address [weight [zone [priority]]]");
		return;
	}
	memset(&e, 0, sizeof(e));
	e.line = line;
	e.weight = 1;
	if (addr_parse(tok[0], false, &e.addr, why, sizeof(why)) < 0) {
		ep_err(x, line, "%s", why);
		return;
	}
	if (nt > 1 && !parse_uint(tok[1], EP_WEIGHT_MAX, &e.weight)) {
		ep_err(x, line, "weight '%s' is not a number from 1 to %d", echo(tok[1], eb), EP_WEIGHT_MAX);
		return;
	}
	if (nt > 1 && !e.weight) {
		ep_err(x, line, "weight 0 is out of range (1-%d); leave the endpoint out instead", EP_WEIGHT_MAX);
		return;
	}
	if (nt > 2 && strcmp(tok[2], "-")) {
		zp = ep_zone_problem(tok[2]);
		if (zp) {
			ep_err(x, line, "zone '%s' %s; write a zone name such as eu-west-1a, or '-' for none",
			       echo(tok[2], eb), zp);
			return;
		}
		memcpy(e.zone, tok[2], strlen(tok[2]) + 1);
	}
	if (nt > 3 && !parse_uint(tok[3], EP_PRIORITY_MAX, &e.priority)) {
		ep_err(x, line, "priority '%s' is not a number from 0 to %d (lower is preferred)", echo(tok[3], eb),
		       EP_PRIORITY_MAX);
		return;
	}
	collect(x, &e);
}

static void parse_lines(struct ep_ctx *x, const char *text, size_t len)
{
	char buf[EPFILE_MAX_LINE + 1];
	size_t pos = 0, n, i;
	unsigned line = 0;

	while (pos < len && !x->oom) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len;

		line++;
		n = end - pos;
		if (n && text[pos + n - 1] == '\r')
			n--;
		if (n > EPFILE_MAX_LINE) {
			ep_err(x, line, "the line is longer than %d bytes", EPFILE_MAX_LINE);
		} else {
			memcpy(buf, text + pos, n);
			buf[n] = '\0';
			/* '#' starts a comment at the start of the line or after a blank */
			for (i = 0; i < n; i++)
				if (buf[i] == '#' && (i == 0 || buf[i - 1] == ' ' || buf[i - 1] == '\t')) {
					buf[i] = '\0';
					break;
				}
			parse_line(x, buf, line);
		}
		pos = end + 1;
	}
}

/* --- libconfig ------------------------------------------------------------------- */

static const char *type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array [...]";
	case CONFIG_TYPE_LIST:
		return "a list (...)";
	case CONFIG_TYPE_GROUP:
		return "a group {...}";
	default:
		return "nothing";
	}
}

static unsigned line_of(const config_setting_t *s)
{
	return s ? config_setting_source_line(s) : 0;
}

/* Optional integer member in [min, max]; false (with a message) when present and wrong. */
static bool lc_uint(struct ep_ctx *x, const config_setting_t *g, const char *path, const char *key, long long min,
		    long long max, uint32_t *out)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	long long v;

	if (!s)
		return true;
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64) {
		ep_err(x, line_of(s), "%s.%s: expected an integer, got %s", path, key, type_name(s));
		return false;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		ep_err(x, line_of(s), "%s.%s: %lld is out of range (%lld-%lld)", path, key, v, min, max);
		return false;
	}
	*out = (uint32_t)v;
	return true;
}

static void lc_endpoint(struct ep_ctx *x, const config_setting_t *g, size_t i)
{
	static const char *const keys[] = { "address", "weight", "zone", "priority", NULL };
	const config_setting_t *s;
	char path[48], eb[ECHO_MAX + 4], why[256];
	struct ep_entry e;
	const char *v, *zp;
	bool ok = true;
	int k, m;

	snprintf(path, sizeof(path), "endpoints[%zu]", i);
	if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
		ep_err(x, line_of(g), "%s: expected a group { address = \"ip:port\"; }, got %s", path, type_name(g));
		return;
	}
	for (m = 0; m < config_setting_length(g); m++) {
		const char *name = config_setting_name(config_setting_get_elem(g, (unsigned)m));

		for (k = 0; keys[k] && strcmp(keys[k], name); k++)
			;
		if (!keys[k]) {
			ep_err(x, line_of(config_setting_get_elem(g, (unsigned)m)),
			       "%s.%s: unknown key; valid keys are address, weight, zone, priority", path,
			       echo(name, eb));
			ok = false;
		}
	}
	memset(&e, 0, sizeof(e));
	e.weight = 1;
	e.line = line_of(g);
	s = config_setting_get_member(g, "address");
	if (!s) {
		ep_err(x, line_of(g), "%s: missing required key 'address'; write address = \"ip:port\";", path);
		ok = false;
	} else if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		ep_err(x, line_of(s), "%s.address: expected a string \"ip:port\", got %s", path, type_name(s));
		ok = false;
	} else if (addr_parse(config_setting_get_string(s), false, &e.addr, why, sizeof(why)) < 0) {
		ep_err(x, line_of(s), "%s.address: %s", path, why);
		ok = false;
	} else {
		e.line = line_of(s);
	}
	ok &= lc_uint(x, g, path, "weight", 1, EP_WEIGHT_MAX, &e.weight);
	ok &= lc_uint(x, g, path, "priority", 0, EP_PRIORITY_MAX, &e.priority);
	s = config_setting_get_member(g, "zone");
	if (s && config_setting_type(s) != CONFIG_TYPE_STRING) {
		ep_err(x, line_of(s), "%s.zone: expected a string, got %s", path, type_name(s));
		ok = false;
	} else if (s) {
		v = config_setting_get_string(s);
		zp = ep_zone_problem(v);
		if (zp) {
			ep_err(x, line_of(s), "%s.zone: '%s' %s; write a zone name such as \"eu-west-1a\"", path,
			       echo(v, eb), zp);
			ok = false;
		} else {
			memcpy(e.zone, v, strlen(v) + 1);
		}
	}
	if (ok)
		collect(x, &e);
}

static void parse_libconfig(struct ep_ctx *x, const char *text)
{
	const config_setting_t *root, *l;
	char *fixed = NULL, eb[ECHO_MAX + 4];
	unsigned line;
	config_t lc;
	int i, n;

	for (line = lcfg_include_line(text, 0); line; line = lcfg_include_line(text, line))
		ep_err(x, line, "@include is not allowed in an endpoint file");
	if (x->problems)
		return;
	if (lcfg_fix_ints(text, &fixed) < 0) {
		x->oom = true;
		return;
	}
	config_init(&lc);
	if (config_read_string(&lc, fixed ? fixed : text) != CONFIG_TRUE) {
		const char *t = config_error_text(&lc);

		ep_err(x, config_error_line(&lc) > 0 ? (unsigned)config_error_line(&lc) : 0,
		       "syntax error: %s; write endpoints = ( { address = \"ip:port\"; }, ... );",
		       t && strcmp(t, "syntax error") ? t : "unexpected text");
		goto out;
	}
	root = config_root_setting(&lc);
	n = config_setting_length(root);
	for (i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(root, (unsigned)i);

		if (strcmp(config_setting_name(m), "endpoints"))
			ep_err(x, line_of(m), "%s: unknown key; an endpoint file holds only endpoints = ( ... );",
			       echo(config_setting_name(m), eb));
	}
	l = config_setting_get_member(root, "endpoints");
	if (!l)
		goto out; /* the first word was "endpoints...", so the loop above said what it is */
	if (config_setting_type(l) != CONFIG_TYPE_LIST) {
		ep_err(x, line_of(l), "endpoints: expected a list ( { address = \"ip:port\"; }, ... ), got %s",
		       type_name(l));
		goto out;
	}
	n = config_setting_length(l);
	for (i = 0; i < n && !x->oom && !x->full; i++)
		lc_endpoint(x, config_setting_get_elem(l, (unsigned)i), (size_t)i);
out:
	config_destroy(&lc);
	free(fixed);
}

/* --- both ------------------------------------------------------------------------ */

/*
 * Is the first word (past blanks and comments of either format) "endpoints",
 * libconfig's "endpoints = ( ... )" (or an @include, refused there)? Any
 * other first word is a line's address, and a mistake there (a host name)
 * gets the address's message, not a syntax error.
 */
static bool is_libconfig(const char *t, size_t len)
{
	static const char kw[] = "endpoints";
	size_t i = 0, k = sizeof(kw) - 1;

	while (i < len) {
		if (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\n') {
			i++;
		} else if (t[i] == '#' || (t[i] == '/' && i + 1 < len && t[i + 1] == '/')) {
			while (i < len && t[i] != '\n')
				i++;
		} else if (t[i] == '/' && i + 1 < len && t[i + 1] == '*') {
			for (i += 2; i + 1 < len && !(t[i] == '*' && t[i + 1] == '/'); i++)
				;
			i += 2;
		} else if (t[i] == '@') {
			return true;
		} else {
			if (len - i < k || memcmp(t + i, kw, k))
				return false;
			return i + k == len || t[i + k] == ' ' || t[i + k] == '\t' || t[i + k] == '\r' ||
			       t[i + k] == '\n' || t[i + k] == '=' || t[i + k] == ':' || t[i + k] == '#' ||
			       t[i + k] == '/';
		}
	}
	return false;
}

int epfile_parse(const char *text, size_t len, const char *name, struct ep_entry **out, size_t *n,
		 struct epfile_errors *errs)
{
	struct ep_ctx x = { .name = name ? name : "<endpoints>", .errs = errs };
	const char *nul = memchr(text, '\0', len);

	*out = NULL;
	*n = 0;
	if (nul) {
		unsigned line = 1;
		const char *q;

		for (q = text; q < nul; q++)
			line += *q == '\n';
		ep_err(&x, line, "contains a NUL byte; an endpoint file is text");
	} else if (len > EPFILE_MAX_BYTES) {
		ep_err(&x, 0, "is larger than %u KiB", EPFILE_MAX_BYTES >> 10);
	} else if (is_libconfig(text, len)) {
		parse_libconfig(&x, text);
	} else {
		parse_lines(&x, text, len);
	}
	if (x.oom || x.problems) {
		free(x.eps);
		return x.oom ? -ENOMEM : -EINVAL;
	}
	*out = x.eps;
	*n = x.n;
	return 0;
}
