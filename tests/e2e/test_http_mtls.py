# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""HTTP at layer 7 to endpoints on another node: node 1's weftd routes,
balances and retries per request, and reaches each endpoint through node 2's
agent over mutual TLS with the calling workload's identity and the preamble
(docs/security.md); pooled TLS connections carry keep-alive requests. Two
network namespaces joined by a veth (198.18.0.0/15, no route out)."""

from test_mtls import CLIENT_ID, HANDSHAKE_TIMEOUT_MS, TD, node_endpoint, pki  # noqa: F401 (fixture)
from weft_harness import (free_port, http_backend, http_requests, node_weftd, prom_get, service,
                          two_nodes, vip_addr, wait_for)


def build(weft, pki, backends=("ok",), extra1=""):
    """Node 2 runs the backends (http_backend.py in its netns) and weftd with
    the local endpoints; node 1 runs weftd with one http service whose
    endpoints are those backends through node 2's agent."""
    t = two_nodes(weft)
    cg1, cg2 = weft.cgroup(tag="client"), weft.cgroup(tag="node2")
    bs = [http_backend(weft, mode, "b%d" % i, listen="%s:%d" % (t.ip2, free_port()), netns=t.ns2)
          for i, mode in enumerate(backends)]
    inbound1, inbound2 = "%s:%d" % (t.ip1, free_port()), "%s:%d" % (t.ip2, free_port())
    vip = vip_addr()
    tls = {"ca": pki.ca, "handshake_timeout_ms": HANDSHAKE_TIMEOUT_MS}
    d2 = node_weftd(weft, t.ns2, inbound2, [cg2],
                    [service("web", [vip], [b.addr for b in bs], protocol="http",
                             extra=' authorization = { allow = [ "%s" ]; };' % CLIENT_ID)],
                    tls=dict(tls, cert=pki.node2[0], key=pki.node2[1]))
    d1 = node_weftd(weft, t.ns1, inbound1, [cg1],
                    [service("web", [vip], [node_endpoint(b.addr, inbound2) for b in bs], protocol="http",
                             attempts=3, extra=extra1)],
                    tls=dict(tls, cert=pki.node1[0], key=pki.node1[1]),
                    identities=[{"cgroup": cg1, "identity": CLIENT_ID, "cert": pki.client[0],
                                 "key": pki.client[1]}])
    return t, cg1, bs, vip, d1, d2


def mval(d, name, **labels):
    return sum(prom_get(d.metrics(), name, **labels))


def test_http_to_remote_endpoint_over_mtls(weft, pki):
    """Keep-alive requests from node 1 reach the backend on node 2 through
    its agent: 200s with the backend's answers, node 1 counts them per
    request, node 2 admitted the caller's identity, and the pooled TLS
    connection carried them all (one handshake for ten requests)."""
    t, cg1, (b,), vip, d1, d2 = build(weft, pki)
    res = http_requests(vip, cg1, netns=t.ns1, n=10, path="/remote", keepalive=True, detail=True)
    st = [r["status"] for r in res["results"]]
    assert st == [200] * 10, (res, d1.log_tail(), d2.log_tail())
    assert {r["body"]["server"] for r in res["results"]} == {"b0"}, res["results"][0]
    # the backend saw node 2's agent, with weft's request headers from node 1 (no
    # weft-deadline: no timeout applies by default since http.request_timeout_ms is 0)
    reqs = b.requests()
    assert len(reqs) == 10 and all("traceparent" in r["headers"] and "weft-deadline" not in r["headers"]
                                   for r in reqs), reqs[:1]
    assert mval(d1, "weft_http_requests_total", service="web", **{"class": "2xx"}) == 10
    assert mval(d2, "weft_inbound_connections_total", result="ok") == 1, d2.metrics()
    # one TLS connection, one backend connection: the pool reused them
    assert len(b.conns()) == 1, b.conns()
    assert [x for x in d2.metrics() if CLIENT_ID in x[1].values()], "node 2 did not see the caller's identity"


def test_http_retries_across_nodes(weft, pki):
    """One of two remote endpoints answers 503 always: node 1 retries on the
    other endpoint (through the same node agent) and every client request
    succeeds; the failing endpoint's 5xx count toward its ejection."""
    t, cg1, (bad, good), vip, d1, d2 = build(weft, pki, backends=("fail", "ok"),
                                             extra1=" circuit_breaker = { consecutive_failures = 3; };")
    res = http_requests(vip, cg1, netns=t.ns1, n=40, path="/r", keepalive=True)
    assert res.get("statuses", {}).get("200") == 40, (res, d1.log_tail())
    assert mval(d1, "weft_http_retries_total", service="web") >= 1
    svc = d1.admin_json("/services")["services"][0]
    states = {e["address"]: e["state"] for e in svc["endpoints"]}
    assert states[bad.addr] in ("ejected", "probing"), svc
    assert len(bad.requests()) <= 5, len(bad.requests())


def test_denied_identity_gets_503_without_ejection(weft, pki):
    """Node 2 denies the caller: node 1 answers 503 (every attempt was
    refused) and does not eject the endpoint for it."""
    t = two_nodes(weft)
    cg1, cg2 = weft.cgroup(tag="client"), weft.cgroup(tag="node2")
    b = http_backend(weft, "ok", "b", listen="%s:%d" % (t.ip2, free_port()), netns=t.ns2)
    inbound1, inbound2 = "%s:%d" % (t.ip1, free_port()), "%s:%d" % (t.ip2, free_port())
    vip = vip_addr()
    tls = {"ca": pki.ca, "handshake_timeout_ms": HANDSHAKE_TIMEOUT_MS}
    node_weftd(weft, t.ns2, inbound2, [cg2],
               [service("web", [vip], [b.addr], protocol="http",
                        extra=' authorization = { allow = [ "spiffe://%s/somebody-else" ]; };' % TD)],
               tls=dict(tls, cert=pki.node2[0], key=pki.node2[1]))
    d1 = node_weftd(weft, t.ns1, inbound1, [cg1],
                    [service("web", [vip], [node_endpoint(b.addr, inbound2)], protocol="http", attempts=2,
                             extra=" circuit_breaker = { consecutive_failures = 1; };")],
                    tls=dict(tls, cert=pki.node1[0], key=pki.node1[1]),
                    identities=[{"cgroup": cg1, "identity": CLIENT_ID, "cert": pki.client[0],
                                 "key": pki.client[1]}])
    res = http_requests(vip, cg1, netns=t.ns1, n=3, path="/x", keepalive=True, detail=True)
    assert [r["status"] for r in res["results"]] == [503] * 3, res
    assert all(r["headers"].get("weft-error") == "unavailable" for r in res["results"]), res["results"][0]
    assert b.requests() == []
    svc = d1.admin_json("/services")["services"][0]
    assert svc["endpoints"][0]["state"] == "ready", svc


def test_pooled_tls_connection_never_serves_another_identity(weft, pki):
    """Two workloads on node 1 with different identities; node 2 allows only
    one. After the allowed one has left a pooled TLS connection (made with
    its identity), the other one's requests must not ride on it: they get
    503 (node 2 denies its own connection) and never reach the backend."""
    from test_mtls import INTRUDER_ID
    t = two_nodes(weft)
    cga, cgb, cg2 = weft.cgroup(tag="alice"), weft.cgroup(tag="mallory"), weft.cgroup(tag="node2")
    b = http_backend(weft, "ok", "b", listen="%s:%d" % (t.ip2, free_port()), netns=t.ns2)
    inbound1, inbound2 = "%s:%d" % (t.ip1, free_port()), "%s:%d" % (t.ip2, free_port())
    vip = vip_addr()
    tls = {"ca": pki.ca, "handshake_timeout_ms": HANDSHAKE_TIMEOUT_MS}
    node_weftd(weft, t.ns2, inbound2, [cg2],
               [service("web", [vip], [b.addr], protocol="http",
                        extra=' authorization = { allow = [ "%s" ]; };' % CLIENT_ID)],
               tls=dict(tls, cert=pki.node2[0], key=pki.node2[1]))
    # one worker: one pool, so the second workload's requests would find the first one's connection
    d1 = node_weftd(weft, t.ns1, inbound1, [cga, cgb],
                    [service("web", [vip], [node_endpoint(b.addr, inbound2)], protocol="http", attempts=1)],
                    tls=dict(tls, cert=pki.node1[0], key=pki.node1[1]), extra_agent="  workers = 1;\n",
               identities=[{"cgroup": cga, "identity": CLIENT_ID, "cert": pki.client[0], "key": pki.client[1]},
                           {"cgroup": cgb, "identity": INTRUDER_ID, "cert": pki.intruder[0],
                            "key": pki.intruder[1]}])
    ra = http_requests(vip, cga, netns=t.ns1, n=3, path="/alice", keepalive=True)
    assert ra["statuses"] == {"200": 3}, ra
    assert wait_for(lambda: d1.admin_json("/services")["services"][0]["endpoints"][0]["active"] == 0, 3)
    rb = http_requests(vip, cgb, netns=t.ns1, n=3, path="/mallory", keepalive=True)
    assert rb["statuses"] == {"503": 3}, rb
    assert [r["path"] for r in b.requests()] == ["/alice"] * 3, b.requests()
