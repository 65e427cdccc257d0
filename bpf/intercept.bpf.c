// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Transparent interception of outbound TCP connects from enrolled cgroups.
 *
 *   cgroup/connect4|6   dst in weft_services? -> remember it on the socket
 *                       (weft_sock_orig) and rewrite dst to the agent's
 *                       loopback listener.
 *   sockops             ACTIVE_ESTABLISHED: copy that record into weft_origdst
 *                       under (netns cookie, client addr:port), which weftd
 *                       computes from the socket it accepts.
 *   cgroup/getpeername4|6  the app sees the address it dialled.
 *
 * Verdicts on every path of connect4/6, decided here in one place:
 *   not TCP, not a service            -> untouched                 (NOT_SERVICE)
 *   agent's own socket (mark/cgroup)  -> untouched                 (SKIPPED_OWN)
 *   agent state missing/disabled/stale-> fail_mode open: untouched (SKIPPED_STALE)
 *                                        fail_mode closed: ECONNREFUSED (REFUSED_STALE)
 *   no agent listener in the app's    -> fail_mode open: untouched (SKIPPED_NO_LISTENER)
 *   network namespace (a pod weftd has   fail_mode closed: ECONNREFUSED (REFUSED_NO_LISTENER)
 *   not set up yet, or weftd gone)
 *   cannot store the record           -> untouched, fail-open      (ERROR)
 *   otherwise                         -> redirected                (REDIRECTED)
 * A connect hook must return 1 to let connect() proceed; on refusal it returns
 * 0 after bpf_set_retval(-ECONNREFUSED) so the app sees ECONNREFUSED, not EPERM.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "weft/maps.h"
#include "lib/addr.h"
#include "lib/stats.h"

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define BPF_TCP_LISTEN 10
#define ECONNREFUSED 111

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WEFT_MAX_SERVICE_ADDRS);
	__type(key, struct weft_service_key);
	__type(value, struct weft_service_val);
} weft_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct weft_orig);
} weft_sock_orig SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WEFT_MAX_ORIGDST);
	__type(key, struct weft_conn_key);
	__type(value, struct weft_orig);
} weft_origdst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, WEFT_MAX_SOCKHASH);
	__type(key, struct weft_sock_key);
	__type(value, __u64); /* 8 bytes: what lets bpftool dump it (socket cookies) */
} weft_sockhash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, WEFT_MAX_LISTENERS);
	__type(key, struct weft_listener_key);
	__type(value, __u64); /* the listener; bpftool shows its socket cookie */
} weft_listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weft_agent_state);
} weft_agent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEFT_V__MAX);
	__type(key, __u32);
	__type(value, __u64);
} weft_stats SEC(".maps");

enum connect_action { ACT_PASS, ACT_REDIRECT, ACT_REFUSE };

/* The single decision point for connect4/6; see the table at the top. */
static __always_inline enum connect_action connect_decide(struct bpf_sock_addr *ctx, const struct weft_addr *dst,
							  struct weft_agent_state **agp, struct weft_orig **origp)
{
	struct weft_service_key skey = {};
	struct weft_listener_key lkey = {};
	struct weft_service_val *svc;
	struct weft_agent_state *ag;
	struct weft_orig *orig;
	struct bpf_sock *sk, *lsk;
	__u32 zero = 0;
	__u64 cgid;

	if (ctx->type != SOCK_STREAM || ctx->protocol != IPPROTO_TCP) {
		stats_inc(&weft_stats, WEFT_V_NOT_SERVICE);
		return ACT_PASS;
	}
	/*
	 * A socket may connect again (after a failed connect, or AF_UNSPEC): a
	 * record from an earlier redirected connect must not describe this one.
	 */
	if (ctx->sk)
		bpf_sk_storage_delete(&weft_sock_orig, ctx->sk);
	skey.vip = *dst;
	svc = bpf_map_lookup_elem(&weft_services, &skey);
	if (!svc) {
		stats_inc(&weft_stats, WEFT_V_NOT_SERVICE);
		return ACT_PASS;
	}
	ag = bpf_map_lookup_elem(&weft_agent, &zero);
	if (!ag) {
		stats_inc(&weft_stats, WEFT_V_ERROR);
		return ACT_PASS;
	}
	sk = ctx->sk;
	if (!sk) {
		stats_inc(&weft_stats, WEFT_V_ERROR);
		return ACT_PASS;
	}
	cgid = bpf_get_current_cgroup_id();
	if ((ag->mark && sk->mark == ag->mark) || cgid == ag->agent_cgroup_id) {
		stats_inc(&weft_stats, WEFT_V_SKIPPED_OWN);
		return ACT_PASS;
	}
	if (!ag->enabled || (__s64)(bpf_ktime_get_ns() - ag->heartbeat_ns) > (__s64)ag->stale_after_ns) {
		if (ag->fail_mode == WEFT_FAIL_CLOSED) {
			stats_inc(&weft_stats, WEFT_V_REFUSED_STALE);
			return ACT_REFUSE;
		}
		stats_inc(&weft_stats, WEFT_V_SKIPPED_STALE);
		return ACT_PASS;
	}
	/*
	 * Redirect only into a namespace where weftd listens: a pod's listeners
	 * appear shortly after its first process, and vanish with weftd.
	 */
	lkey.netns_cookie = bpf_get_netns_cookie(ctx);
	lkey.family = dst->family;
	lsk = bpf_map_lookup_elem(&weft_listeners, &lkey);
	if (!lsk) {
		if (ag->fail_mode == WEFT_FAIL_CLOSED) {
			stats_inc(&weft_stats, WEFT_V_REFUSED_NO_LISTENER);
			return ACT_REFUSE;
		}
		stats_inc(&weft_stats, WEFT_V_SKIPPED_NO_LISTENER);
		return ACT_PASS;
	}
	bpf_sk_release(lsk);
	orig = bpf_sk_storage_get(&weft_sock_orig, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!orig) {
		stats_inc(&weft_stats, WEFT_V_ERROR);
		return ACT_PASS;
	}
	orig->dst = *dst;
	orig->cgroup_id = cgid;
	orig->service_id = svc->service_id;
	orig->pid = bpf_get_current_pid_tgid() >> 32;
	*agp = ag;
	*origp = orig;
	stats_inc(&weft_stats, WEFT_V_REDIRECTED);
	return ACT_REDIRECT;
}

SEC("cgroup/connect4")
int weft_connect4(struct bpf_sock_addr *ctx)
{
	struct weft_agent_state *ag = NULL;
	struct weft_orig *orig = NULL;
	struct weft_addr dst = {};

	addr_from_v4(&dst, ctx->user_ip4, bpf_ntohs((__u16)ctx->user_port));
	switch (connect_decide(ctx, &dst, &ag, &orig)) {
	case ACT_REDIRECT:
		if (!ag)
			return 1;
		ctx->user_ip4 = bpf_htonl(0x7f000001); /* 127.0.0.1 */
		ctx->user_port = bpf_htons(ag->outbound_port);
		return 1;
	case ACT_REFUSE:
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	default:
		return 1;
	}
}

SEC("cgroup/connect6")
int weft_connect6(struct bpf_sock_addr *ctx)
{
	struct weft_agent_state *ag = NULL;
	struct weft_orig *orig = NULL;
	struct weft_addr dst = {};
	__u32 ip6[4];

	ip6[0] = ctx->user_ip6[0];
	ip6[1] = ctx->user_ip6[1];
	ip6[2] = ctx->user_ip6[2];
	ip6[3] = ctx->user_ip6[3];
	addr_from_v6(&dst, ip6, bpf_ntohs((__u16)ctx->user_port));
	switch (connect_decide(ctx, &dst, &ag, &orig)) {
	case ACT_REDIRECT:
		if (!ag)
			return 1;
		if (dst.family == WEFT_AF_INET) {
			/* v4-mapped dial from a dual-stack socket: ::ffff:127.0.0.1 */
			ctx->user_ip6[0] = 0;
			ctx->user_ip6[1] = 0;
			ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
			ctx->user_ip6[3] = bpf_htonl(0x7f000001);
		} else {
			ctx->user_ip6[0] = 0;
			ctx->user_ip6[1] = 0;
			ctx->user_ip6[2] = 0;
			ctx->user_ip6[3] = bpf_htonl(1); /* ::1 */
		}
		ctx->user_port = bpf_htons(ag->outbound_port);
		return 1;
	case ACT_REFUSE:
		bpf_set_retval(-ECONNREFUSED);
		return 0;
	default:
		return 1;
	}
}

/*
 * Hand the record over once the app's connection to the agent is established:
 * the client's local address is known only now (autobind happens inside
 * connect(), after connect4 ran). On loopback this callback runs before the
 * final ACK is sent, so the entry exists before weftd can accept().
 * Failure here is counted; weftd then finds no record and resets the client.
 */
SEC("sockops")
int weft_sockops(struct bpf_sock_ops *skops)
{
	struct weft_conn_key key = {};
	struct weft_agent_state *ag;
	struct weft_orig *orig;
	struct bpf_sock *sk;
	__u32 ip6[4], zero = 0;

	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	sk = skops->sk;
	if (!sk)
		return 1;
	orig = bpf_sk_storage_get(&weft_sock_orig, sk, 0, 0);
	if (!orig)
		return 1;
	ag = bpf_map_lookup_elem(&weft_agent, &zero);
	/* only the connection connect4/6 redirected to the agent */
	if (!ag || bpf_ntohs((__u16)(skops->remote_port >> 16)) != ag->outbound_port)
		return 1;
	key.netns_cookie = bpf_get_netns_cookie(skops);
	if (skops->family == AF_INET) {
		addr_from_v4(&key.client, skops->local_ip4, (__u16)skops->local_port);
	} else {
		ip6[0] = skops->local_ip6[0];
		ip6[1] = skops->local_ip6[1];
		ip6[2] = skops->local_ip6[2];
		ip6[3] = skops->local_ip6[3];
		addr_from_v6(&key.client, ip6, (__u16)skops->local_port);
	}
	if (bpf_map_update_elem(&weft_origdst, &key, orig, BPF_ANY) == 0)
		stats_inc(&weft_stats, WEFT_V_HANDOFF);
	else
		stats_inc(&weft_stats, WEFT_V_HANDOFF_ERROR);

	/* fast path: this end goes in the sockhash; weftd adds its end at accept */
	if (ag->redirect) {
		struct weft_sock_key sk_key = {};

		sk_key.netns_cookie = key.netns_cookie;
		sk_key.local = key.client;
		if (skops->family == AF_INET) {
			addr_from_v4(&sk_key.remote, skops->remote_ip4, bpf_ntohs((__u16)(skops->remote_port >> 16)));
		} else {
			ip6[0] = skops->remote_ip6[0];
			ip6[1] = skops->remote_ip6[1];
			ip6[2] = skops->remote_ip6[2];
			ip6[3] = skops->remote_ip6[3];
			addr_from_v6(&sk_key.remote, ip6, bpf_ntohs((__u16)(skops->remote_port >> 16)));
		}
		/* failure (map full) only means this connection takes the normal path */
		bpf_sock_hash_update(skops, &weft_sockhash, &sk_key, BPF_NOEXIST);
	}
	return 1;
}

/*
 * sk_msg on weft_sockhash: a send by the agent's end of an app <-> agent pair
 * is put straight into the app socket's receive queue (BPF_F_INGRESS),
 * skipping the loopback TCP/IP stack.
 *
 * Only agent -> app is redirected. The app's end joins the map at
 * ACTIVE_ESTABLISHED, before the agent can send anything, so every agent byte
 * takes the redirect and the app's receive order is exact (the FIN still
 * comes by TCP, after the data). The agent's end can only join after
 * accept(): app bytes sent before that sit in its normal receive queue, and
 * redirecting later ones into the sockmap queue, which is read first, would
 * reorder the stream. So app -> agent stays on TCP: correctness over the
 * other half of the saving.
 * Ports: local_port is host order; remote_port holds the network-order port
 * in its upper 16 bits (as in sock_ops).
 */
SEC("sk_msg")
int weft_skmsg(struct sk_msg_md *msg)
{
	struct weft_sock_key peer = {};
	struct weft_agent_state *ag;
	__u32 ip6[4], zero = 0;

	ag = bpf_map_lookup_elem(&weft_agent, &zero);
	if (!ag || msg->local_port != ag->outbound_port)
		return SK_PASS; /* the app's end: normal path (see above) */
	peer.netns_cookie = bpf_get_netns_cookie(msg);
	if (msg->family == AF_INET) {
		addr_from_v4(&peer.local, msg->remote_ip4, bpf_ntohs((__u16)(msg->remote_port >> 16)));
		addr_from_v4(&peer.remote, msg->local_ip4, (__u16)msg->local_port);
	} else {
		ip6[0] = msg->remote_ip6[0];
		ip6[1] = msg->remote_ip6[1];
		ip6[2] = msg->remote_ip6[2];
		ip6[3] = msg->remote_ip6[3];
		addr_from_v6(&peer.local, ip6, bpf_ntohs((__u16)(msg->remote_port >> 16)));
		ip6[0] = msg->local_ip6[0];
		ip6[1] = msg->local_ip6[1];
		ip6[2] = msg->local_ip6[2];
		ip6[3] = msg->local_ip6[3];
		addr_from_v6(&peer.remote, ip6, (__u16)msg->local_port);
	}
	if (bpf_msg_redirect_hash(msg, &weft_sockhash, &peer, BPF_F_INGRESS) == SK_PASS) {
		stats_inc(&weft_stats, WEFT_V_MSG_REDIRECTED);
		return SK_PASS;
	}
	stats_inc(&weft_stats, WEFT_V_MSG_PASSED);
	return SK_PASS;
}

/*
 * Strict inbound (agent.strict_inbound): an enrolled workload accepts TCP
 * connections only through the agent. A packet for a listening socket of an
 * enrolled cgroup (a SYN, or the handshake's last ACK) passes if it carries
 * the agent's mark (weftd's connects to local endpoints set SO_MARK, and
 * loopback delivery keeps it), else it is dropped and the client's connect
 * times out. The decision uses the socket the kernel found, not header
 * parsing, so IP options or IPv6 extension headers cannot slip past it.
 * Packets for established sockets (the workload's own connections) pass.
 * With the agent stale, fail_mode decides as for connects: open lets
 * everything in, closed keeps dropping. Verdicts: pass 1, drop 0.
 */
SEC("cgroup_skb/ingress")
int weft_strict_in(struct __sk_buff *skb)
{
	struct weft_agent_state *ag;
	struct bpf_sock *sk;
	__u32 zero = 0;

	ag = bpf_map_lookup_elem(&weft_agent, &zero);
	if (!ag || !ag->strict_inbound)
		return 1;
	sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_TCP || sk->state != BPF_TCP_LISTEN)
		return 1;
	if (ag->mark && skb->mark == ag->mark)
		return 1;
	/* the agent's own listeners (admin, inbound, outbound), should its cgroup be enrolled (a pod glob) */
	if (bpf_skb_cgroup_id(skb) == ag->agent_cgroup_id)
		return 1;
	if ((!ag->enabled || (__s64)(bpf_ktime_get_ns() - ag->heartbeat_ns) > (__s64)ag->stale_after_ns) &&
	    ag->fail_mode != WEFT_FAIL_CLOSED)
		return 1;
	stats_inc(&weft_stats, WEFT_V_STRICT_DROPPED);
	return 0;
}

/* getpeername must return 1; a socket without a record is left as is. */
SEC("cgroup/getpeername4")
int weft_peername4(struct bpf_sock_addr *ctx)
{
	struct weft_orig *orig;

	if (!ctx->sk)
		return 1;
	orig = bpf_sk_storage_get(&weft_sock_orig, ctx->sk, 0, 0);
	if (!orig || orig->dst.family != WEFT_AF_INET)
		return 1;
	ctx->user_ip4 = addr_v4(&orig->dst);
	ctx->user_port = bpf_htons(orig->dst.port);
	stats_inc(&weft_stats, WEFT_V_PEERNAME);
	return 1;
}

SEC("cgroup/getpeername6")
int weft_peername6(struct bpf_sock_addr *ctx)
{
	struct weft_orig *orig;

	if (!ctx->sk)
		return 1;
	orig = bpf_sk_storage_get(&weft_sock_orig, ctx->sk, 0, 0);
	if (!orig)
		return 1;
	if (orig->dst.family == WEFT_AF_INET) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0x0000ffff);
		ctx->user_ip6[3] = addr_v4(&orig->dst);
	} else {
		ctx->user_ip6[0] = addr_v6_word(&orig->dst, 0);
		ctx->user_ip6[1] = addr_v6_word(&orig->dst, 1);
		ctx->user_ip6[2] = addr_v6_word(&orig->dst, 2);
		ctx->user_ip6[3] = addr_v6_word(&orig->dst, 3);
	}
	ctx->user_port = bpf_htons(orig->dst.port);
	stats_inc(&weft_stats, WEFT_V_PEERNAME);
	return 1;
}
