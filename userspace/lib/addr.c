// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket addresses: "ip:port" / "[ip6]:port" parsing and formatting, and the
 * conversion to and from struct weft_addr, the key the BPF maps are hashed on.
 *
 * Only numeric addresses are accepted: configuration must mean the same thing
 * whether or not DNS answers, and the BPF side only ever sees numbers.
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) is folded to plain IPv4 on parse and in
 * keys, as the BPF programs do, so that one destination has one spelling.
 */
#include "lib/addr.h"

#include <unistd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Longest piece of user input echoed back in a message: keeps messages one short line. */
#define ADDR_ECHO_MAX 64

/*
 * Copy s into buf for quoting in an error message: at most ADDR_ECHO_MAX
 * bytes, "..." when cut, control characters as '?' so that the message stays
 * on one line whatever the input held.
 */
static const char *addr_echo(const char *s, char *buf, size_t buflen)
{
	size_t i, n = 0;

	for (i = 0; s[i] && n + 4 < buflen && i < ADDR_ECHO_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];

		buf[n++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	if (s[i] && n + 4 <= buflen) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* Fold ::ffff:a.b.c.d into an AF_INET address; anything else is left alone. */
static void addr_unmap(struct weft_sockaddr *a)
{
	struct sockaddr_in in4;

	if (a->sa.sa_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr))
		return;
	memset(&in4, 0, sizeof(in4));
	in4.sin_family = AF_INET;
	in4.sin_port = a->in6.sin6_port;
	memcpy(&in4.sin_addr, &a->in6.sin6_addr.s6_addr[12], 4);
	memset(a, 0, sizeof(*a));
	a->in4 = in4;
	a->len = sizeof(in4);
}

/*
 * Port text -> number. Only decimal digits (no sign, no spaces, no service
 * names); a run of digits too long to fit is reported as out of range with
 * the text as written.
 */
static int addr_parse_port(const char *whole, const char *p, bool allow_port0, unsigned *port, char *err, size_t errlen)
{
	char echo[ADDR_ECHO_MAX + 8], pecho[ADDR_ECHO_MAX + 8];
	unsigned long v = 0;
	const char *q;

	if (*p == '\0') {
		snprintf(err, errlen, "'%s' has no port; write it as host:port", addr_echo(whole, echo, sizeof(echo)));
		return -1;
	}
	for (q = p; *q; q++) {
		if (*q < '0' || *q > '9') {
			snprintf(err, errlen, "'%s' has a bad port '%s'; the port must be a number (%d-65535)",
				 addr_echo(whole, echo, sizeof(echo)), addr_echo(p, pecho, sizeof(pecho)),
				 allow_port0 ? 0 : 1);
			return -1;
		}
		if (v <= 65535)
			v = v * 10 + (unsigned long)(*q - '0');
	}
	if (v > 65535 || (v == 0 && !allow_port0)) {
		snprintf(err, errlen, "port %s is out of range (%d-65535)", addr_echo(p, pecho, sizeof(pecho)),
			 allow_port0 ? 0 : 1);
		return -1;
	}
	*port = (unsigned)v;
	return 0;
}

int addr_parse(const char *s, bool allow_port0, struct weft_sockaddr *out, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1], echo[ADDR_ECHO_MAX + 8];
	struct weft_sockaddr a;
	const char *hs, *he, *ps, *colon;
	unsigned port = 0;
	size_t hl;
	int ret = -EINVAL;

	if (errlen)
		err[0] = '\0';
	memset(&a, 0, sizeof(a));
	if (!s || !*s) {
		snprintf(err, errlen, "the address is empty; write it as ip:port, e.g. 127.0.0.1:80");
		goto out;
	}
	addr_echo(s, echo, sizeof(echo));

	if (s[0] == '[') {
		hs = s + 1;
		he = strchr(hs, ']');
		if (!he) {
			snprintf(err, errlen, "'%s' is missing ']'", echo);
			goto out;
		}
		if (he[1] == '\0') {
			snprintf(err, errlen, "'%s' has no port; write it as host:port", echo);
			goto out;
		}
		if (he[1] != ':') {
			snprintf(err, errlen, "'%s' has text after ']'; write it as [ipv6]:port", echo);
			goto out;
		}
		ps = he + 2;
		hl = (size_t)(he - hs);
		if (hl == 0 || hl >= sizeof(host))
			goto bad_v6;
		memcpy(host, hs, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1)
			goto bad_v6;
		if (addr_parse_port(s, ps, allow_port0, &port, err, errlen))
			goto out;
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons((uint16_t)port);
		a.len = sizeof(a.in6);
		addr_unmap(&a);
		goto done;
	}

	colon = strchr(s, ':');
	if (!colon) {
		/* Say what is most wrong: a host name matters more than a missing port. */
		if (inet_pton(AF_INET, s, &a.in4.sin_addr) != 1)
			goto bad_name;
		snprintf(err, errlen, "'%s' has no port; write it as host:port", echo);
		goto out;
	}
	if (strchr(colon + 1, ':')) {
		/* Two colons: an IPv6 address without brackets, port or not. */
		snprintf(err, errlen, "'%s' looks like an IPv6 address without brackets; write it as [ipv6]:port",
			 echo);
		goto out;
	}
	hl = (size_t)(colon - s);
	if (hl == 0) {
		snprintf(err, errlen, "'%s' has no IP address; write it as ip:port, e.g. 127.0.0.1:80", echo);
		goto out;
	}
	if (hl >= sizeof(host))
		goto bad_name;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &a.in4.sin_addr) != 1)
		goto bad_name;
	if (addr_parse_port(s, colon + 1, allow_port0, &port, err, errlen))
		goto out;
	a.in4.sin_family = AF_INET;
	a.in4.sin_port = htons((uint16_t)port);
	a.len = sizeof(a.in4);

done:
	*out = a;
	ret = 0;
	goto out;
bad_v6:
	snprintf(err, errlen, "'%s' is not a numeric IPv6 address (host names are not resolved)", echo);
	goto out;
bad_name:
	snprintf(err, errlen,
		 "'%s' is not a numeric IP address (host names are not resolved; write an IPv4 or [IPv6] address)",
		 echo);
out:
	return ret;
}

char *addr_format(const struct weft_sockaddr *a, char *buf, size_t buflen)
{
	struct weft_sockaddr n = *a;
	char ip[INET6_ADDRSTRLEN];

	if (!buflen)
		return buf;
	addr_unmap(&n);
	switch (n.sa.sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &n.in4.sin_addr, ip, sizeof(ip));
		snprintf(buf, buflen, "%s:%u", ip, (unsigned)ntohs(n.in4.sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &n.in6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, buflen, "[%s]:%u", ip, (unsigned)ntohs(n.in6.sin6_port));
		break;
	default:
		snprintf(buf, buflen, "(none)");
		break;
	}
	return buf;
}

/*
 * The key is hashed bytewise by the kernel, so every byte (padding included)
 * is set: two spellings of one address must give identical bytes.
 */
void addr_to_key(const struct weft_sockaddr *a, struct weft_addr *key)
{
	memset(key, 0, sizeof(*key));
	switch (a->sa.sa_family) {
	case AF_INET:
		key->family = WEFT_AF_INET;
		memcpy(key->ip, &a->in4.sin_addr.s_addr, 4);
		key->port = ntohs(a->in4.sin_port);
		break;
	case AF_INET6:
		key->port = ntohs(a->in6.sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&a->in6.sin6_addr)) {
			key->family = WEFT_AF_INET;
			memcpy(key->ip, &a->in6.sin6_addr.s6_addr[12], 4);
		} else {
			key->family = WEFT_AF_INET6;
			memcpy(key->ip, &a->in6.sin6_addr, 16);
		}
		break;
	default:
		break; /* all zero: family 0 never matches a real address */
	}
}

void addr_from_key(const struct weft_addr *key, struct weft_sockaddr *out)
{
	memset(out, 0, sizeof(*out));
	switch (key->family) {
	case WEFT_AF_INET:
		out->in4.sin_family = AF_INET;
		memcpy(&out->in4.sin_addr.s_addr, key->ip, 4);
		out->in4.sin_port = htons(key->port);
		out->len = sizeof(out->in4);
		break;
	case WEFT_AF_INET6:
		out->in6.sin6_family = AF_INET6;
		memcpy(&out->in6.sin6_addr, key->ip, 16);
		out->in6.sin6_port = htons(key->port);
		out->len = sizeof(out->in6);
		addr_unmap(out);
		break;
	default:
		out->sa.sa_family = AF_UNSPEC;
		break;
	}
}

/* Equal as the BPF side sees them: same key bytes (v4-mapped == v4). */
bool addr_equal(const struct weft_sockaddr *a, const struct weft_sockaddr *b)
{
	struct weft_addr ka, kb;

	addr_to_key(a, &ka);
	addr_to_key(b, &kb);
	return memcmp(&ka, &kb, sizeof(ka)) == 0;
}

int addr_port(const struct weft_sockaddr *a)
{
	switch (a->sa.sa_family) {
	case AF_INET:
		return ntohs(a->in4.sin_port);
	case AF_INET6:
		return ntohs(a->in6.sin6_port);
	default:
		return 0;
	}
}

int addr_listen(const struct weft_sockaddr *a, int backlog)
{
	int fd, one = 1, err;

	fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (a->sa.sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, &a->sa, a->len) < 0 || listen(fd, backlog) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}
