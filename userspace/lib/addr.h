/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket addresses: parsing "ip:port" / "[ip6]:port", formatting, and
 * conversion to the BPF map key (struct weft_addr). IPv4-mapped IPv6
 * addresses are normalised to IPv4 everywhere, as the BPF side does.
 * It may call: libc only.
 */
#ifndef WEFT_ADDR_H
#define WEFT_ADDR_H

#include <linux/types.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "weft/maps.h"

/*
 * An IPv4 or IPv6 socket address, the only families weft handles: 32 bytes
 * (a sockaddr_storage would be 136, and the registry holds several per
 * endpoint: 100k discovered endpoints). accept() and getsockname() are given
 * sizeof(x.in6), the larger member.
 */
struct weft_sockaddr {
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	};
	socklen_t len;
};

/* "ip:port" or "[ipv6]:port"; longest text addr_format writes, NUL included. */
#define ADDR_STRLEN (INET6_ADDRSTRLEN + 8)

/*
 * Parse a numeric "a.b.c.d:port" or "[v6]:port" (no host names: config must
 * not depend on DNS). Port 1..65535 unless allow_port0. Returns 0, or -EINVAL
 * with a user-facing reason in err (e.g. "'10.0.0.1' has no port; write it as
 * host:port").
 */
int addr_parse(const char *s, bool allow_port0, struct weft_sockaddr *out, char *err, size_t errlen);

/* Writes "ip:port" / "[ip6]:port" into buf (ADDR_STRLEN bytes); returns buf. */
char *addr_format(const struct weft_sockaddr *a, char *buf, size_t buflen);

/* Socket address -> BPF key, normalising v4-mapped to AF_INET. */
void addr_to_key(const struct weft_sockaddr *a, struct weft_addr *key);
/* BPF key -> socket address. */
void addr_from_key(const struct weft_addr *key, struct weft_sockaddr *out);

/*
 * A non-blocking, close-on-exec TCP listener on a (SO_REUSEADDR; IPv6 only
 * for IPv6 addresses). Returns the fd, or -errno (socket, bind or listen).
 */
int addr_listen(const struct weft_sockaddr *a, int backlog);

bool addr_equal(const struct weft_sockaddr *a, const struct weft_sockaddr *b);
int addr_port(const struct weft_sockaddr *a); /* host byte order */

#endif
