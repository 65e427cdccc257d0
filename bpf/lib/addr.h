/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * addr.h: build struct weft_addr keys from what the hooks see.
 *   addr_from_v4(a, ip_be, port_host)       IPv4
 *   addr_from_v6(a, ip6_be[4], port_host)   IPv6; v4-mapped (::ffff:a.b.c.d) becomes IPv4
 *   addr_is_v4mapped(ip6_be[4])
 *   addr_v4(a) / addr_v6_word(a, i)         the address back as the kernel's words
 * Keys are hashed bytewise, so callers zero-initialise them (= {}) first.
 */
#ifndef WEFT_BPF_LIB_ADDR_H
#define WEFT_BPF_LIB_ADDR_H

#include <bpf/bpf_endian.h>
#include "weft/maps.h"

static __always_inline bool addr_is_v4mapped(const __u32 *ip6)
{
	return ip6[0] == 0 && ip6[1] == 0 && ip6[2] == bpf_htonl(0x0000ffff);
}

static __always_inline void addr_from_v4(struct weft_addr *a, __u32 ip, __u16 port)
{
	a->family = WEFT_AF_INET;
	__builtin_memcpy(&a->ip[0], &ip, 4);
	a->port = port;
}

static __always_inline __u32 addr_v4(const struct weft_addr *a)
{
	__u32 w;

	__builtin_memcpy(&w, &a->ip[0], 4);
	return w;
}

static __always_inline __u32 addr_v6_word(const struct weft_addr *a, int i)
{
	__u32 w;

	__builtin_memcpy(&w, &a->ip[i * 4], 4);
	return w;
}

static __always_inline void addr_from_v6(struct weft_addr *a, const __u32 *ip6, __u16 port)
{
	if (addr_is_v4mapped(ip6)) {
		addr_from_v4(a, ip6[3], port);
		return;
	}
	a->family = WEFT_AF_INET6;
	__builtin_memcpy(&a->ip[0], &ip6[0], 4);
	__builtin_memcpy(&a->ip[4], &ip6[1], 4);
	__builtin_memcpy(&a->ip[8], &ip6[2], 4);
	__builtin_memcpy(&a->ip[12], &ip6[3], 4);
	a->port = port;
}

#endif
