# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Interception: who is redirected, where to, and what the application sees.

Each test runs its own weftd with its own cgroups, pins and ports. Backends
answer with their name and the peer they saw, so a test can tell a proxied
connection (peer = weftd's socket) from a direct one (peer = the client's own
socket address).
"""

import collections
import os

from weft_harness import service, vip6_addr, vip_addr, wait_for


def assert_proxied(res, vip, names):
    """res (an http client result) went through weftd to one of names."""
    assert res["ok"], "client failed: %r" % res
    assert res["status_line"] == "HTTP/1.1 200 OK", res
    assert res["peername"] == vip, "getpeername() should show the VIP: %r" % res
    assert res["reply"]["server"] in names, res
    # The backend saw weftd's socket, not the client's.
    assert res["reply"]["peer"] != res["sockname"], "connection was not proxied: %r" % res
    return res["reply"]["server"]


def test_round_robin_peername_and_outside_untouched(weft):
    cg = weft.cgroup(tag="app")
    a, b = weft.server("http", "A"), weft.server("http", "B")
    vip = vip_addr()
    weft.weftd([cg], [service("web", [vip], [a.addr, b.addr])])

    seq = [assert_proxied(weft.client("http", vip, cgroup=cg), vip, ("A", "B"))
           for _ in range(6)]
    counts = collections.Counter(seq)
    assert counts == {"A": 3, "B": 3}, "round-robin over 2 endpoints, 6 connections: got %s" % seq
    assert all(x != y for x, y in zip(seq, seq[1:])), "round-robin must alternate: %s" % seq
    assert len(a.conns()) == 3 and len(b.conns()) == 3

    # A real client: curl through the mesh.
    rc, code, body, err = weft.curl("http://%s/" % vip, cgroup=cg)
    assert (rc, code) == (0, "200"), (rc, code, body, err)
    assert '"server": "A"' in body or '"server": "B"' in body, body

    # The same client outside the enrolled cgroup is left alone: nothing
    # listens on the VIP, so the connect is refused by the kernel.
    res = weft.client("http", vip)
    assert not res["ok"] and res["error"] == "ECONNREFUSED" and res["stage"] == "connect", res
    assert len(a.conns()) + len(b.conns()) == 7  # 6 clients + curl, nothing more


def test_descendant_cgroups_intercepted(weft):
    parent = weft.cgroup(tag="pod")
    child = weft.cgroup(parent, tag="ctr")           # exists before weftd starts
    a = weft.server("http", "A")
    vip = vip_addr()
    weft.weftd([parent], [service("web", [vip], [a.addr])])
    late = weft.cgroup(weft.cgroup(parent, tag="late"), tag="deep")  # created after attach

    for cg in (parent, child, late):
        assert_proxied(weft.client("http", vip, cgroup=cg), vip, ("A",))
    assert len(a.conns()) == 3

    # A sibling of the enrolled cgroup is not enrolled.
    other = weft.cgroup(tag="other")
    res = weft.client("http", vip, cgroup=other)
    assert res["error"] == "ECONNREFUSED", res


def test_non_service_destination_untouched(weft):
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    direct = weft.server("http", "D")                 # 127.0.0.1:P, not a service
    vip = vip_addr()
    vip_ip = vip.rsplit(":", 1)[0]
    # A listener on the VIP's IP but another port: the key is address AND port.
    same_ip = weft.server("http", "SAMEIP", listen="%s:0" % vip_ip)
    weft.weftd([cg], [service("web", [vip], [a.addr])])

    for srv in (direct, same_ip):
        res = weft.client("http", srv.addr, cgroup=cg)
        assert res["ok"], res
        assert res["reply"]["server"] == srv.name, res
        assert res["peername"] == srv.addr, res
        # Direct: the backend saw the client's own socket address.
        assert res["reply"]["peer"] == res["sockname"], res
    assert a.conns() == []


def test_ipv6_vip(weft):
    cg = weft.cgroup(tag="app6")
    a6 = weft.server("http", "A6", listen="[::1]:0")
    vip = vip6_addr()
    weft.weftd([cg], [service("web6", [vip], [a6.addr])])

    for _ in range(2):
        res = weft.client("http", vip, cgroup=cg)
        assert_proxied(res, vip, ("A6",))
        assert res["sockname"].startswith("[::1]:"), res
    assert len(a6.conns()) == 2

    res = weft.client("http", vip)                      # outside: untouched
    assert res["error"] == "ECONNREFUSED", res


def test_ipv6_vip_to_ipv4_endpoint(weft):
    cg = weft.cgroup(tag="app64")
    a = weft.server("http", "A4")
    vip = vip6_addr()
    weft.weftd([cg], [service("web64", [vip], [a.addr])])
    res = weft.client("http", vip, cgroup=cg)
    assert_proxied(res, vip, ("A4",))
    assert res["reply"]["peer"].startswith("127.0.0.1:"), res


def test_v4_mapped_dial_from_v6_socket(weft):
    """A dual-stack AF_INET6 socket dialling ::ffff:VIP (what many runtimes
    do) hits connect6 with a v4-mapped address: same service, same answer,
    and getpeername() shows the mapped VIP."""
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    vip = vip_addr()
    weft.weftd([cg], [service("web", [vip], [a.addr])])
    mapped = "[::ffff:%s]:%s" % tuple(vip.rsplit(":", 1))
    res = weft.client("http", mapped, cgroup=cg)
    assert_proxied(res, mapped, ("A",))
    res = weft.client("http", mapped)                    # outside: untouched
    assert res["error"] == "ECONNREFUSED", res


def test_glob_enrollment(weft):
    tag = "glob"
    m1 = weft.cgroup(tag=tag + "-m1")
    m2 = weft.cgroup(tag=tag + "-m2")
    nomatch = weft.cgroup(tag="nomatch")
    a = weft.server("http", "A")
    vip = vip_addr()
    # weft-e2e-<pid>-<n>-glob-m1 and ...-glob-m2 match, ...-nomatch does not.
    pattern = os.path.join(weft.root, "-".join(m1.name.split("-")[:3]) + "-*-" + tag + "-m*")
    weft.weftd([pattern], [service("web", [vip], [a.addr])])

    for cg in (m1, m2):
        assert_proxied(weft.client("http", vip, cgroup=cg), vip, ("A",))
    res = weft.client("http", vip, cgroup=nomatch)
    assert res["error"] == "ECONNREFUSED", res

    # The globs are watched: a matching cgroup created later is enrolled too.
    m3 = weft.cgroup(tag=tag + "-m3")
    outcomes = []

    def enrolled():
        r = weft.client("http", vip, cgroup=m3, timeout=3)
        outcomes.append(r.get("error") or r["reply"]["server"])
        return r["ok"]
    assert wait_for(enrolled, 5.0, 0.2), "new matching cgroup never enrolled: %r" % outcomes
    assert_proxied(weft.client("http", vip, cgroup=m3), vip, ("A",))


def test_verdict_counters(weft):
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    direct = weft.server("http", "D")
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [a.addr])])

    before = d.stats()
    assert before["redirected"] == 0 and before["handoff"] == 0, before
    n = 3
    for _ in range(n):
        assert_proxied(weft.client("http", vip, cgroup=cg), vip, ("A",))
    st = d.stats()
    assert st["redirected"] == n, st
    assert st["handoff"] == n, st
    assert st["peername"] >= n, st      # each client called getpeername() once
    assert st["error"] == 0 and st["handoff_error"] == 0, st
    assert st["skipped_stale"] == 0 and st["refused_stale"] == 0, st

    res = weft.client("http", direct.addr, cgroup=cg)
    assert res["ok"] and res["reply"]["server"] == "D", res
    st2 = d.stats()
    assert st2["not_service"] >= 1, st2
    assert st2["redirected"] == n, st2


def test_agent_inside_enrolled_cgroup(weft):
    """weftd itself in an enrolled cgroup: its own connects to the endpoints
    must not be redirected back to itself."""
    pod = weft.cgroup(tag="pod")
    agent_cg = weft.cgroup(pod, tag="agent")     # enrolled through its parent
    app_cg = weft.cgroup(pod, tag="app")
    other = weft.cgroup(tag="other")             # a second enrolled cgroup
    a, b = weft.server("http", "A"), weft.server("http", "B")
    vip = vip_addr()
    d = weft.weftd([pod, other], [service("web", [vip], [a.addr, b.addr])], cgroup=agent_cg)
    assert d.pid in agent_cg.pids()

    n = 0
    for cg in (other, app_cg, other, app_cg):
        assert_proxied(weft.client("http", vip, cgroup=cg), vip, ("A", "B"))
        n += 1
    assert len(a.conns()) + len(b.conns()) == n
    st = d.stats()
    assert st["redirected"] == n, "no redirect loop: one redirect per client connect: %r" % st
    # weftd's n connects to the endpoints passed the hook without redirect.
    assert st["skipped_own"] + st["not_service"] >= n, st
    assert st["error"] == 0, st


def test_agent_own_sockets_skipped(weft):
    """What makes a socket the agent's own: its cgroup and its SO_MARK. A
    connect to a VIP from weftd's own cgroup, or carrying weftd's mark, is
    left alone (SKIPPED_OWN) and reaches whatever listens on the VIP (here a
    stand-in for kube-proxy), even though that cgroup is enrolled. (Config
    cannot make weftd dial a VIP itself: endpoints that are VIPs are rejected.)"""
    pod = weft.cgroup(tag="pod")
    agent_cg = weft.cgroup(pod, tag="agent")
    app = weft.cgroup(pod, tag="app")
    a = weft.server("http", "A")
    vip = vip_addr()
    kp = weft.server("http", "KUBEPROXY", listen=vip)
    d = weft.weftd([pod], [service("web", [vip], [a.addr])], cgroup=agent_cg)

    assert_proxied(weft.client("http", vip, cgroup=app), vip, ("A",))
    st0 = d.stats()
    assert st0["redirected"] == 1 and st0["skipped_own"] == 0, st0

    for label, kw in (("agent cgroup", {"cgroup": agent_cg}),
                      ("agent mark", {"cgroup": app, "extra": ["--mark", "0x574546"]})):
        res = weft.client("http", vip, **kw)
        assert res["ok"] and res["reply"]["server"] == "KUBEPROXY", (label, res)
        assert res["reply"]["peer"] == res["sockname"], (label, res)    # direct
    st = d.stats()
    assert st["skipped_own"] == 2, st
    assert st["redirected"] == 1, st
    assert len(kp.conns()) == 2 and len(a.conns()) == 1

    # Another mark is not the agent's.
    res = weft.client("http", vip, cgroup=app, extra=["--mark", "0x1234"])
    assert_proxied(res, vip, ("A",))
