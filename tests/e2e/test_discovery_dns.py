# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Endpoints from DNS (endpoints_from dns / dns_srv) against a real DNS
server: dnsmasq on 127.53.x.y (never the machine's resolver: weftd is told
where it is in agent.dns_servers), serving a hosts file the test rewrites
(SIGHUP) and SRV records (dnsmasq restarts with them), with short TTLs.

Each dialogue: what DNS says, what /services and the metrics say, and where
real client connections go, through the kernel redirect and weftd.
"""

import json
import os
import random
import subprocess
import time

from weft_harness import (admin_json, dns_responder, dns_server, free_port, in_cgroup_argv, metrics, prom_get,
                          service, vip_addr, wait_for)

PY = "/usr/bin/python3"

# N sequential GETs to VIP, one connection each; prints {"servers": {...}, "errors": {...}}.
LOOP = r'''
import collections, json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
servers, errors = collections.Counter(), collections.Counter()
for _ in range(n):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, int(port)))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        servers[json.loads(data.partition(b"\r\n\r\n")[2])["server"]] += 1
    except Exception as e:
        errors[type(e).__name__] += 1
    finally:
        s.close()
print(json.dumps({"servers": servers, "errors": errors}))
'''


def tcp_loop(cg, vip, n, timeout=120):
    p = subprocess.run(in_cgroup_argv(cg, [PY, "-c", LOOP, vip, str(n)]), capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def svc_of(d, name):
    for s in admin_json(d.admin, "/services")["services"]:
        if s["name"] == name:
            return s
    raise AssertionError("no service %s" % name)


def eps(d, name):
    return {e["address"] for e in svc_of(d, name)["endpoints"]}


def src(d, name, i=0):
    return svc_of(d, name)["endpoints_from"][i]


def disc_metric(d, metric, svc, **labels):
    v = prom_get(metrics(d.admin), metric, service=svc, **labels)
    return v[0] if v else None


def lo_ips(n):
    """n distinct loopback addresses on one random /24 of 127.41.0.0/16."""
    b = random.randint(0, 255)
    return ["127.41.%d.%d" % (b, i + 1) for i in range(n)]


def agent_dns(*servers, timeout_ms=300):
    return '  dns_servers = [ %s ];\n  dns_timeout_ms = %d;\n' % (", ".join('"%s"' % s.addr for s in servers),
                                                              timeout_ms)


def test_a_aaaa_ttl_followed_state_kept(weft):
    """A and AAAA records become endpoints; a change in DNS is followed
    within the TTL (1 s); endpoints that stay keep their state."""
    cg = weft.cgroup(tag="app")
    port = free_port()
    a_ip, c_ip = lo_ips(2)
    a = weft.server("http", "A", listen="%s:%d" % (a_ip, port))
    b = weft.server("http", "B", listen="[::1]:%d" % port)
    c = weft.server("http", "C", listen="%s:%d" % (c_ip, port))
    dns = dns_server(weft, hosts=[(a_ip, "api.internal"), ("::1", "api.internal")], ttl=1)
    vip = vip_addr()
    d = weft.weftd([cg], [service("api", [vip], None, attempts=3, extra=(
        ' endpoints_from = { dns = "api.internal"; port = %d; refresh_min_ms = 200; refresh_max_ms = 5000; };'
        % port))], extra_agent=agent_dns(dns))
    A, B, C = a.addr, b.addr, c.addr
    assert wait_for(lambda: eps(d, "api") == {A, B}, 5), svc_of(d, "api")
    s = svc_of(d, "api")
    assert all(e["source"] == "dns" for e in s["endpoints"]), s
    assert src(d, "api")["ttl_s"] == 1 and src(d, "api")["last_result"] == "success", src(d, "api")

    res = tcp_loop(cg, vip, 20)
    assert res["errors"] == {} and res["servers"] == {"A": 10, "B": 10}, res
    before = {e["address"]: e for e in svc_of(d, "api")["endpoints"]}[B]["connections"]

    t0 = time.monotonic()
    dns.set_hosts([("::1", "api.internal"), (c_ip, "api.internal")])
    assert wait_for(lambda: eps(d, "api") == {B, C}, 5), svc_of(d, "api")
    took = time.monotonic() - t0
    print("DNS change to endpoints in force: %.2f s (TTL 1 s)" % took)
    assert took < 3.0, took

    a_conns = len(a.conns())
    res = tcp_loop(cg, vip, 20)
    assert res["errors"] == {} and res["servers"] == {"B": 10, "C": 10}, res
    # B stayed: its counters (and balancer state) went on, not reset
    assert {e["address"]: e for e in svc_of(d, "api")["endpoints"]}[B]["connections"] == before + 10
    assert len(a.conns()) == a_conns, "A got connections after it left DNS"

    lab = dict(source="dns", target="api.internal")
    assert disc_metric(d, "weft_discovery_changes_total", "api", **lab) == 2
    assert disc_metric(d, "weft_discovery_endpoints", "api", **lab) == 2
    assert disc_metric(d, "weft_discovery_refreshes_total", "api", result="success", **lab) >= 2
    assert disc_metric(d, "weft_discovery_refreshes_total", "api", result="failure", **lab) == 0
    assert disc_metric(d, "weft_discovery_stale", "api", **lab) == 0
    assert "service api: dns api.internal: 2 endpoints (were 2)" in d.log()


def test_ttl_bounds(weft):
    """The next query comes after the TTL, raised to refresh_min_ms and cut
    to refresh_max_ms; counted over 5 s of each."""
    ip = lo_ips(1)[0]
    short = dns_server(weft, hosts=[(ip, "n.internal")], ttl=1)
    long_ = dns_server(weft, hosts=[(ip, "n.internal")], ttl=30)
    vips = [vip_addr() for _ in range(4)]

    def svc(name, vip, lo, hi):
        return service(name, [vip], None, extra=(
            ' endpoints_from = { dns = "n.internal"; port = 80; family = "ipv4"; refresh_min_ms = %d;'
            ' refresh_max_ms = %d; };' % (lo, hi)))
    # agent.dns_servers are one resolver's servers (the second asked only when the first
    # fails), so one weftd per DNS server: TTLs of 1 s and of 30 s
    d1 = weft.weftd([], [svc("ttl1", vips[0], 200, 5000), svc("held", vips[1], 2500, 5000)],
                    extra_agent=agent_dns(short))
    d2 = weft.weftd([], [svc("ttl30", vips[2], 200, 300000), svc("capped", vips[3], 200, 1000)],
                    extra_agent=agent_dns(long_))

    def count(d, name):
        return sum(src(d, name)["refreshes"].values())
    assert wait_for(lambda: all(count(d, n) for d, n in ((d1, "ttl1"), (d1, "held"), (d2, "ttl30"),
                                                          (d2, "capped"))), 5)
    before = {n: count(d, n) for d, n in ((d1, "ttl1"), (d1, "held"), (d2, "ttl30"), (d2, "capped"))}
    time.sleep(5.0)
    after = {n: count(d, n) for d, n in ((d1, "ttl1"), (d1, "held"), (d2, "ttl30"), (d2, "capped"))}
    delta = {n: after[n] - before[n] for n in before}
    print("refreshes in 5 s:", delta)
    assert 4 <= delta["ttl1"] <= 6, delta      # TTL 1 s
    assert 1 <= delta["held"] <= 3, delta      # TTL 1 s raised to 2.5 s
    assert delta["ttl30"] == 0, delta          # TTL 30 s
    assert 4 <= delta["capped"] <= 6, delta    # TTL 30 s cut to 1 s
    assert src(d2, "ttl30")["ttl_s"] == 30 and src(d2, "ttl30")["next_refresh_in_s"] > 20, src(d2, "ttl30")


def test_nxdomain_and_servfail_keep_the_last_set(weft):
    """The name disappears (NXDOMAIN), then DNS fails (SERVFAIL): the last
    good set stays in force, said in /services, the metrics and the log,
    and traffic goes on; a good answer replaces it again."""
    cg = weft.cgroup(tag="app")
    port = free_port()
    a_ip, b_ip, c_ip = lo_ips(3)
    a = weft.server("http", "A", listen="%s:%d" % (a_ip, port))
    b = weft.server("http", "B", listen="%s:%d" % (b_ip, port))
    weft.server("http", "C", listen="%s:%d" % (c_ip, port))
    up = dns_responder(weft, rcode=3)
    dns = dns_server(weft, hosts=[(a_ip, "api.internal"), (b_ip, "api.internal")], ttl=1, upstream=up.addr)
    vip = vip_addr()
    d = weft.weftd([cg], [service("api", [vip], None, attempts=3, extra=(
        ' endpoints_from = { dns = "api.internal"; port = %d; family = "ipv4"; refresh_min_ms = 200;'
        ' refresh_max_ms = 1000; };' % port))], extra_agent=agent_dns(dns))
    A, B = a.addr, b.addr
    lab = dict(source="dns", target="api.internal")
    assert wait_for(lambda: eps(d, "api") == {A, B}, 5), svc_of(d, "api")

    # NXDOMAIN: dnsmasq has no data for the name and its upstream says it does not exist
    dns.set_hosts([])
    assert wait_for(lambda: src(d, "api")["last_result"] == "empty", 5), src(d, "api")
    st = src(d, "api")
    assert st["stale"] is True and "no address (NXDOMAIN, or no record)" in st["last_error"], st
    assert eps(d, "api") == {A, B}
    assert disc_metric(d, "weft_discovery_refreshes_total", "api", result="empty", **lab) >= 1
    assert disc_metric(d, "weft_discovery_stale", "api", **lab) == 1
    assert "keeping the last 2 endpoints" in d.log()
    res = tcp_loop(cg, vip, 10)
    assert res["errors"] == {} and res["servers"] == {"A": 5, "B": 5}, res

    # SERVFAIL
    up.rcode = 2
    assert wait_for(lambda: "SERVFAIL" in (src(d, "api")["last_error"] or "")
                    and src(d, "api")["last_result"] == "failure", 5), src(d, "api")
    assert eps(d, "api") == {A, B}
    assert disc_metric(d, "weft_discovery_refreshes_total", "api", result="failure", **lab) >= 1
    assert "A api.internal: SERVFAIL (failed); keeping the last 2 endpoints" in d.log()
    res = tcp_loop(cg, vip, 10)
    assert res["errors"] == {} and res["servers"] == {"A": 5, "B": 5}, res
    changes = disc_metric(d, "weft_discovery_changes_total", "api", **lab)

    # a good answer again: it replaces the kept set (within the back-off, at most refresh_max_ms)
    dns.set_hosts([(c_ip, "api.internal")])
    assert wait_for(lambda: eps(d, "api") == {"%s:%d" % (c_ip, port)}, 5), svc_of(d, "api")
    st = src(d, "api")
    assert st["stale"] is False and st["last_result"] == "success", st
    assert disc_metric(d, "weft_discovery_changes_total", "api", **lab) == changes + 1
    assert "service api: dns api.internal answers again: 1 endpoints" in d.log()
    res = tcp_loop(cg, vip, 6)
    assert res["errors"] == {} and res["servers"] == {"C": 6}, res


def test_srv_weights_priorities_and_changes(weft):
    """SRV records give each endpoint its port, weight and priority: 3:1
    between the two of priority 0, nothing to priority 1 while they are
    up; a changed record set is followed."""
    cg = weft.cgroup(tag="app")
    ips = lo_ips(3)
    ports = [free_port() for _ in range(3)]
    srvs = [weft.server("http", "T%d" % (i + 1), listen="%s:%d" % (ips[i], ports[i])) for i in range(3)]
    name = "_api._tcp.internal"
    records = [(name, "t1.internal", ports[0], 0, 3), (name, "t2.internal", ports[1], 0, 1),
               (name, "t3.internal", ports[2], 1, 1)]
    dns = dns_server(weft, hosts=[(ips[i], "t%d.internal" % (i + 1)) for i in range(3)], srv=records, ttl=1)
    vip = vip_addr()
    d = weft.weftd([cg], [service("api", [vip], None, attempts=3, extra=(
        ' endpoints_from = { dns_srv = "%s"; family = "ipv4"; refresh_min_ms = 200; };' % name))],
        extra_agent=agent_dns(dns))
    want = {s.addr for s in srvs}
    assert wait_for(lambda: eps(d, "api") == want, 5), svc_of(d, "api")
    got = {e["address"]: (e["weight"], e["priority"], e["source"]) for e in svc_of(d, "api")["endpoints"]}
    assert got == {srvs[0].addr: (3, 0, "dns_srv"), srvs[1].addr: (1, 0, "dns_srv"),
                   srvs[2].addr: (1, 1, "dns_srv")}, got
    loc = svc_of(d, "api")["locality"]
    assert loc["in_use"] == {"priority": 0, "local": True} and loc["spilling"] is False, loc

    res = tcp_loop(cg, vip, 200)
    assert res["errors"] == {} and res["servers"] == {"T1": 150, "T2": 50}, res

    # t2's record goes, t1's weight changes
    dns.set_srv([(name, "t1.internal", ports[0], 0, 2), (name, "t3.internal", ports[2], 1, 1)])
    assert wait_for(lambda: eps(d, "api") == {srvs[0].addr, srvs[2].addr}, 5), svc_of(d, "api")
    assert {e["address"]: e["weight"] for e in svc_of(d, "api")["endpoints"]}[srvs[0].addr] == 2
    res = tcp_loop(cg, vip, 20)
    assert res["errors"] == {} and res["servers"] == {"T1": 20}, res


def test_startup_does_not_wait_for_dns(weft):
    """DNS down at start: weftd is ready at once, the service has no
    endpoints (and says why); when DNS comes up, they arrive."""
    cg = weft.cgroup(tag="app")
    port = free_port()
    ip = lo_ips(1)[0]
    a = weft.server("http", "A", listen="%s:%d" % (ip, port))
    dns = dns_server(weft, hosts=[(ip, "api.internal")], ttl=1)
    dns.stop()
    vip = vip_addr()
    t0 = time.monotonic()
    d = weft.weftd([cg], [service("api", [vip], None, attempts=2, extra=(
        ' endpoints_from = { dns = "api.internal"; port = %d; refresh_min_ms = 200; refresh_max_ms = 1000; };'
        % port))], extra_agent=agent_dns(dns, timeout_ms=2000))
    print("ready %.2f s after start with DNS down" % (time.monotonic() - t0))
    assert svc_of(d, "api")["endpoints"] == []
    assert wait_for(lambda: src(d, "api")["last_result"] == "failure", 5), src(d, "api")
    assert "connection refused" in src(d, "api")["last_error"] or "timed out" in src(d, "api")["last_error"]
    assert "keeping the last 0 endpoints" in d.log()
    dns.start()
    assert wait_for(lambda: eps(d, "api") == {a.addr}, 5), svc_of(d, "api")
    res = tcp_loop(cg, vip, 4)
    assert res["errors"] == {} and res["servers"] == {"A": 4}, res


def test_reload_keeps_sources_and_their_state(weft):
    """A reload that keeps a source keeps its set and counters (no empty
    window); one that changes its zone applies it without asking again."""
    cg = weft.cgroup(tag="app")
    port = free_port()
    ip = lo_ips(1)[0]
    a = weft.server("http", "A", listen="%s:%d" % (ip, port))
    dns = dns_server(weft, hosts=[(ip, "api.internal")], ttl=30)
    vip = vip_addr()
    extra = ' endpoints_from = { dns = "api.internal"; port = %d; family = "ipv4"; zone = "%s"; };'
    d = weft.weftd([cg], [service("api", [vip], None, extra=extra % (port, "z1"))], extra_agent=agent_dns(dns))
    assert wait_for(lambda: eps(d, "api") == {a.addr}, 5)
    n = sum(src(d, "api")["refreshes"].values())
    from weft_harness import rewrite_config, admin_call
    rewrite_config(d, services=[service("api", [vip], None, extra=extra % (port, "z2"))])
    st, _, body = admin_call(d.admin, "POST", "/reload")
    assert st == 200, body
    s = svc_of(d, "api")
    assert [e.get("zone") for e in s["endpoints"]] == ["z2"], s
    assert sum(src(d, "api")["refreshes"].values()) == n, src(d, "api")  # not asked again (TTL 30 s)
    res = tcp_loop(cg, vip, 3)
    assert res["errors"] == {} and res["servers"] == {"A": 3}, res


def test_next_server_when_one_fails(weft):
    """agent.dns_servers are asked in order: a server answering SERVFAIL
    (or not there at all) gives way to the next for that query."""
    cg = weft.cgroup(tag="app")
    port = free_port()
    ip = lo_ips(1)[0]
    a = weft.server("http", "A", listen="%s:%d" % (ip, port))
    bad = dns_responder(weft, rcode=2)
    dns = dns_server(weft, hosts=[(ip, "api.internal")], ttl=1)

    class Addr:
        def __init__(self, addr):
            self.addr = addr
    gone = Addr("127.0.0.1:%d" % free_port())  # nothing listens there
    vip = vip_addr()
    d = weft.weftd([cg], [service("api", [vip], None, extra=(
        ' endpoints_from = { dns = "api.internal"; port = %d; family = "ipv4"; refresh_min_ms = 200; };'
        % port))], extra_agent=agent_dns(Addr(bad.addr), gone, dns))
    assert wait_for(lambda: eps(d, "api") == {a.addr}, 5), svc_of(d, "api")
    assert src(d, "api")["last_result"] == "success", src(d, "api")
    assert bad.queries >= 1
    res = tcp_loop(cg, vip, 3)
    assert res["errors"] == {} and res["servers"] == {"A": 3}, res
    # the last one fails too: its failure is what is said, with the server
    dns.stop()
    assert wait_for(lambda: src(d, "api")["last_result"] == "failure", 5), src(d, "api")
    assert "(server %s)" % dns.addr in src(d, "api")["last_error"], src(d, "api")
    assert eps(d, "api") == {a.addr}
