/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kernel/userspace contract: every key and value that crosses the BPF map
 * boundary is defined here, once. bpf/ includes it after vmlinux.h, userspace
 * after <linux/types.h>; both see the same __u8/__u16/__u32/__u64 layout, and
 * the BTF emitted for the BPF objects lets `bpftool map dump` print field
 * names.
 *
 * Addresses: one struct weft_addr serves IPv4 and IPv6. IPv4 (and IPv4-mapped
 * IPv6, ::ffff:a.b.c.d, which is normalised to IPv4 on both sides) is stored
 * as family = AF_INET with the address in ip[0..3] and ip[4..15] = 0. The
 * address is in network byte order as bytes, and the port in host byte order,
 * so that `bpftool map dump` shows 127.10.0.1:80 as [127,10,0,1,...] and 80.
 */
#ifndef WEFT_MAPS_H
#define WEFT_MAPS_H

#define WEFT_AF_INET 2
#define WEFT_AF_INET6 10

/* Map capacities (max_entries). Userspace checks config against them. */
#define WEFT_MAX_SERVICE_ADDRS 65536 /* weft_services: VIP:port entries */
#define WEFT_MAX_ORIGDST 65536       /* weft_origdst: in-flight handoffs (LRU) */
#define WEFT_MAX_SOCKHASH 131072     /* weft_sockhash: both ends of each redirected app<->agent pair */
#define WEFT_MAX_LISTENERS 32768     /* weft_listeners: (network namespace, family) pairs served */

struct weft_addr {
	__u8 ip[16];  /* network byte order; IPv4 in ip[0..3] */
	__u16 port;   /* host byte order */
	__u16 family; /* WEFT_AF_INET or WEFT_AF_INET6 */
} __attribute__((aligned(4)));

/* weft_services: HASH, what apps dial -> which service. */
struct weft_service_key {
	struct weft_addr vip;
};

struct weft_service_val {
	__u32 service_id; /* index into weftd's service table, stable per config generation */
	__u32 flags;      /* reserved, 0 */
};

/*
 * Original destination of an intercepted connection. Stored per app socket in
 * weft_sock_orig (socket-local storage, freed with the socket; getpeername
 * reads it) and copied by sockops into weft_origdst under a key weftd can
 * compute from the socket it accepted.
 */
struct weft_orig {
	struct weft_addr dst; /* the VIP:port the app dialled */
	__u64 cgroup_id;      /* cgroup v2 id of the connecting task (workload identity) */
	__u32 service_id;
	__u32 pid; /* tgid of the connecting task, for logs */
};

/* weft_origdst: LRU_HASH key. weftd deletes each entry once it has read it. */
struct weft_conn_key {
	__u64 netns_cookie;      /* SO_NETNS_COOKIE of the app's network namespace */
	struct weft_addr client; /* the app socket's local address = accepted socket's peer */
	__u32 pad;               /* explicit, zero: keys are hashed bytewise */
};

/*
 * weft_sockhash: SOCKHASH of both ends of each app <-> agent loopback
 * connection, keyed by (netns, own address, peer address). sk_msg looks up
 * the peer of the sending socket and moves the bytes straight into its
 * receive queue, skipping the loopback TCP/IP stack (agent.redirect_loopback).
 */
struct weft_sock_key {
	__u64 netns_cookie;
	struct weft_addr local;
	struct weft_addr remote;
	__u32 pad; /* explicit, zero */
};

/*
 * weft_listeners: SOCKHASH, (netns cookie, family) -> one of weftd's outbound
 * listening sockets in that network namespace (the host's, and each pod's).
 * connect4/6 redirect only when the connecting socket's namespace has an
 * entry for the destination's family; elsewhere fail_mode applies, as for a
 * stale agent. The kernel drops an entry when its socket closes, so a weftd
 * that exits, drains or dies (even by SIGKILL) never leaves a namespace
 * pointing at a port where nothing listens. `bpftool map dump` shows the key
 * fields and the socket cookie of each listener.
 */
struct weft_listener_key {
	__u64 netns_cookie; /* SO_NETNS_COOKIE of the namespace the listener was made in */
	__u16 family;       /* WEFT_AF_INET or WEFT_AF_INET6: the family of the dialled address */
	__u16 pad[3];       /* explicit, zero */
};

/* weft_agent: ARRAY[1], written by weftd; read by every hook. */
enum weft_fail_mode {
	WEFT_FAIL_OPEN = 0,   /* agent stale: leave the connect alone (go direct) */
	WEFT_FAIL_CLOSED = 1, /* agent stale: make the connect fail with ECONNREFUSED */
};

struct weft_agent_state {
	__u64 heartbeat_ns;    /* CLOCK_MONOTONIC (== bpf_ktime_get_ns) of the last beat */
	__u64 stale_after_ns;  /* heartbeat older than this: agent treated as gone */
	__u64 agent_cgroup_id; /* connects from this cgroup are never redirected */
	__u32 mark;            /* SO_MARK carried by every agent socket; never redirected */
	__u16 outbound_port;   /* host byte order; the agent listens on loopback:port */
	__u8 fail_mode;        /* enum weft_fail_mode */
	__u8 enabled;          /* 0 until weftd has filled the maps and listens */
	__u8 redirect;         /* 1: sockops adds app sockets to weft_sockhash (sk_msg fast path) */
	__u8 strict_inbound;   /* 1: TCP SYNs to enrolled workloads must come from the agent (mark) */
	__u8 reserved[6];
};

/* weft_stats: PERCPU_ARRAY indexed by verdict; userspace sums the CPUs. */
enum weft_verdict {
	WEFT_V_REDIRECTED = 0,      /* connect rewritten to the agent */
	WEFT_V_NOT_SERVICE,         /* destination not in weft_services: untouched */
	WEFT_V_SKIPPED_OWN,         /* agent's own socket (mark or cgroup): untouched */
	WEFT_V_SKIPPED_STALE,       /* agent heartbeat stale, fail_mode open: untouched */
	WEFT_V_REFUSED_STALE,       /* agent heartbeat stale, fail_mode closed: refused */
	WEFT_V_ERROR,               /* internal failure (storage full...): untouched (fail-open) */
	WEFT_V_HANDOFF,             /* sockops moved the record into weft_origdst */
	WEFT_V_HANDOFF_ERROR,       /* sockops could not store the record (map full) */
	WEFT_V_PEERNAME,            /* getpeername answered with the original destination */
	WEFT_V_MSG_REDIRECTED,      /* sk_msg: a send went straight to the peer socket */
	WEFT_V_MSG_PASSED,          /* sk_msg: no peer in weft_sockhash, normal path */
	WEFT_V_STRICT_DROPPED,      /* strict inbound: a SYN that did not come through the agent, dropped */
	WEFT_V_SKIPPED_NO_LISTENER, /* no agent listener in the app's netns yet, fail_mode open: untouched */
	WEFT_V_REFUSED_NO_LISTENER, /* no agent listener in the app's netns yet, fail_mode closed: refused */
	WEFT_V__MAX,
};

#endif /* WEFT_MAPS_H */
