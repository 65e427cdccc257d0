/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * addr.h: build struct weft_addr keys from what the hooks see.
 *   addr_from_v4(a, ip_be, port_be)        IPv4
 *   addr_from_v6(a, ip6_be[4], port_be)    IPv6; v4-mapped (::ffff:a.b.c.d) becomes IPv4
 *   addr_is_v4mapped(ip6_be[4])
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
	a->addr[0] = ip;
	a->port = port;
}

static __always_inline void addr_from_v6(struct weft_addr *a, const __u32 *ip6, __u16 port)
{
	if (addr_is_v4mapped(ip6)) {
		addr_from_v4(a, ip6[3], port);
		return;
	}
	a->family = WEFT_AF_INET6;
	a->addr[0] = ip6[0];
	a->addr[1] = ip6[1];
	a->addr[2] = ip6[2];
	a->addr[3] = ip6[3];
	a->port = port;
}

#endif
