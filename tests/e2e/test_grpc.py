# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""HTTP/2 and gRPC at layer 7 (issue 14), with Debian's python gRPC on both
sides (tests/e2e/grpc_peer.py): one client channel (one HTTP/2 connection)
through weft is balanced per call over the endpoints; status codes come
through and are counted; weft's own answers are gRPC statuses
(UNAVAILABLE, DEADLINE_EXCEEDED); streams flow both ways."""

import json
import os
import subprocess
import threading

import pytest

from weft_harness import (PYTHON, dead_addr, free_port, in_cgroup_argv, metrics, prom_get, service, spawn,
                          stop_process, vip_addr, wait_for)

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grpc_peer.py")


class GrpcServer:
    def __init__(self, weft, name):
        self.addr = "127.0.0.1:%d" % free_port()
        self.p = spawn([PYTHON, PEER, "serve", "--listen", self.addr, "--name", name],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        weft._push("grpc server %s" % name, lambda: stop_process(self.p, 3.0))
        line = self.p.stdout.readline()
        assert '"listening"' in line, (line, self.p.stderr.read() if self.p.poll() is not None else "")


def call(cg, target, method="Who", payload="", n=1, timeout=5.0):
    r = subprocess.run(in_cgroup_argv(cg, [PYTHON, PEER, "call", "--connect", target, "--method", method,
                                           "--payload", payload, "--n", str(n), "--timeout", str(timeout)]),
                       capture_output=True, text=True, timeout=60 + n * timeout / 10)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return json.loads(r.stdout)


@pytest.fixture
def mesh(weft):
    m = type("Mesh", (), {})()
    m.cg = weft.cgroup(tag="grpc")
    m.a, m.b = GrpcServer(weft, "a"), GrpcServer(weft, "b")
    m.vip, m.vip_auto, m.vip_none = vip_addr(), vip_addr(), vip_addr()
    m.d = weft.weftd([m.cg], [
        service("grpc", [m.vip], [m.a.addr, m.b.addr], protocol="http2", balancer="round-robin"),
        service("grpc-auto", [m.vip_auto], [m.a.addr, m.b.addr], protocol="auto", balancer="ewma"),
        service("grpc-none", [m.vip_none], [dead_addr()], protocol="http2", attempts=2),
    ])
    return m


def test_one_channel_is_balanced_per_call(weft, mesh):
    m = mesh
    r = call(m.cg, m.vip, n=300)
    assert r["ok"] == 300, r
    assert set(r["replies"]) == {"a", "b"} and min(r["replies"].values()) >= 140, r
    # "auto": the HTTP/2 preface is detected; the latency-aware ewma balancer uses both endpoints
    # too (in shares that follow their latency, so only "both" is asserted)
    r = call(m.cg, m.vip_auto, n=300)
    assert r["ok"] == 300 and set(r["replies"]) == {"a", "b"}, r
    print("ewma over one channel:", r["replies"])
    ms = metrics(m.d.admin)
    assert sum(prom_get(ms, "weft_grpc_requests_total", service="grpc", code="OK")) == 300
    assert sum(prom_get(ms, "weft_protocol_detected_total", service="grpc-auto", protocol="http2")) >= 1, \
        [x for x in ms if x[0] == "weft_protocol_detected_total"]


def test_status_codes_and_weft_s_own_answers(weft, mesh):
    m = mesh
    r = call(m.cg, m.vip, method="Fail", payload="NOT_FOUND", n=4)
    assert r["codes"] == {"NOT_FOUND": 4}, r
    # the only endpoint refuses connections: weft answers UNAVAILABLE itself (after its retry)
    r = call(m.cg, m.vip_none, n=3)
    assert r["codes"] == {"UNAVAILABLE": 3}, r
    assert all("refused" in e.lower() for e in r["errors"]), r  # weft's grpc-message says why
    r = call(m.cg, m.vip, method="Sleep", payload="2", timeout=0.5)
    assert r["codes"] == {"DEADLINE_EXCEEDED": 1}, r
    ms = metrics(m.d.admin)
    assert sum(prom_get(ms, "weft_grpc_requests_total", service="grpc", code="NOT_FOUND")) == 4
    assert sum(prom_get(ms, "weft_grpc_requests_total", service="grpc-none", code="UNAVAILABLE")) == 3


def test_streams_both_ways(weft, mesh):
    m = mesh
    r = call(m.cg, m.vip, method="Stream", payload="20000", n=1, timeout=30)
    assert r["ok"] == 1 and r["messages"] == 20000, r
    r = call(m.cg, m.vip, method="Upload", payload="5000", n=2, timeout=30)
    assert r["ok"] == 2 and r["replies"] == {"5000000": 2}, r


def test_connection_windows_come_back(weft, mesh):
    """Every byte weft holds for a stream is given back to its sender's connection window, also when the
    stream ends before weft passed the byte on. Answers whose last DATA comes with the end of the stream:
    200 calls of 10 kB on one channel (2 MB through one upstream connection, twice its 1 MiB window);
    request bodies no endpoint ever read (the only endpoint refuses connections): 200 calls of 10 kB on one
    channel, all UNAVAILABLE, none stalled to DEADLINE_EXCEEDED."""
    m = mesh
    r = call(m.cg, m.vip, method="Blob", payload="10000", n=200, timeout=2)
    assert r["ok"] == 200 and r["replies"] == {"b" * 10000: 200}, {k: v for k, v in r.items() if k != "replies"}
    r = call(m.cg, m.vip_none, payload="x" * 10000, n=200, timeout=2)
    assert r["codes"] == {"UNAVAILABLE": 200}, r


def test_conns_tap_and_stat_see_grpc(weft, mesh):
    m = mesh
    import time
    from weft_harness import admin_json, spawn as _spawn
    tap = _spawn([weft.env.weftctl, "-a", m.d.admin, "--json", "tap", "grpc"], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True)
    weft._push("weftctl tap", lambda: stop_process(tap, 3.0))
    lines = []
    threading.Thread(target=lambda: [lines.append(l) for l in tap.stdout], daemon=True).start()
    assert wait_for(lambda: sum(prom_get(metrics(m.d.admin), "weft_tap_readers")) == 1, 5)
    # a slow call keeps its HTTP/2 connection in /conns with one stream open
    slow = _spawn(in_cgroup_argv(m.cg, [PYTHON, PEER, "call", "--connect", m.vip, "--method", "Sleep",
                                        "--payload", "1.5"]), stdout=subprocess.PIPE, text=True)
    weft._push("slow call", lambda: stop_process(slow, 3.0))
    conns = wait_for(lambda: [c for c in admin_json(m.d.admin, "/conns")["conns"]
                              if c.get("protocol") == "http2" and c.get("streams") == 1], 5)
    assert conns and conns[0]["service"] == "grpc" and conns[0]["endpoint"] in (m.a.addr, m.b.addr), conns
    assert json.loads(slow.communicate(timeout=20)[0])["ok"] == 1
    call(m.cg, m.vip, method="Fail", payload="PERMISSION_DENIED", n=2)
    evs = lambda: [json.loads(l) for l in lines if '"time"' in l]
    assert wait_for(lambda: len([e for e in evs() if e.get("grpc_status") == "PERMISSION_DENIED"]) == 2, 5), lines
    e = [e for e in evs() if e.get("grpc_status") == "PERMISSION_DENIED"][0]
    assert e["path"] == "/weft.Echo/Fail" and e["method"] == "POST" and e["status"] == 200, e
    time.sleep(2.2)
    st = json.loads(subprocess.run([weft.env.weftctl, "-a", m.d.admin, "--json", "stat", "grpc"],
                                   capture_output=True, text=True).stdout)["services"][0]
    assert round(st["windows"]["1m"]["requests_per_s"] * st["windows"]["1m"]["seconds"]) >= 3, st


def test_a_dead_endpoint_costs_no_failed_call(weft):
    """One endpoint of two refuses connections: every call still succeeds
    (the attempt goes to the other one), and the dead one is ejected."""
    cg = weft.cgroup(tag="grpc-dead")
    a = GrpcServer(weft, "a")
    vip = vip_addr()
    d = weft.weftd([cg], [service("grpc", [vip], [dead_addr(), a.addr], protocol="http2",
                                  balancer="round-robin", attempts=3)])
    r = call(cg, vip, n=100)
    assert r["ok"] == 100 and r["replies"] == {"a": 100}, r
    svc = [s for s in __import__("weft_harness").admin_json(d.admin, "/services")["services"]
           if s["name"] == "grpc"][0]
    assert any(e["state"] != "ready" for e in svc["endpoints"]), svc


def test_stalled_streams_and_idle_connections_time_out(weft):
    """http.stream_idle_ms: a call on which nothing moves is answered
    DEADLINE_EXCEEDED ("stalled"); http.keepalive_idle_ms: a client
    connection without streams gets a GOAWAY and closes."""
    cg = weft.cgroup(tag="grpc-idle")
    a = GrpcServer(weft, "a")
    vip = vip_addr()
    d = weft.weftd([cg], [service("grpc", [vip], [a.addr], protocol="http2",
                                  extra=" http = { stream_idle_ms = 1000; keepalive_idle_ms = 1500; };")])
    r = call(cg, vip, method="Sleep", payload="3", timeout=10)
    assert r["codes"] == {"DEADLINE_EXCEEDED": 1} and "stalled" in r["errors"][0], r
    from weft_harness import admin_json
    import time
    # a channel that stays open but idle: weft closes it after keepalive_idle_ms
    p = spawn(in_cgroup_argv(cg, [PYTHON, "-c",
                                  "import grpc,time,sys\n"
                                  "ch=grpc.insecure_channel(sys.argv[1],options=[('grpc.enable_http_proxy',0)])\n"
                                  "print(ch.unary_unary('/weft.Echo/Who')(b'',timeout=5).decode(),flush=True)\n"
                                  "time.sleep(6)\n", vip]), stdout=subprocess.PIPE, text=True)
    weft._push("idle channel", lambda: stop_process(p, 3.0))
    assert p.stdout.readline().strip() == "a"
    assert wait_for(lambda: any(c.get("protocol") == "http2" for c in admin_json(d.admin, "/conns")["conns"]), 3)
    assert wait_for(lambda: not any(c.get("protocol") == "http2" for c in admin_json(d.admin, "/conns")["conns"]),
                    5), admin_json(d.admin, "/conns")
    assert sum(prom_get(metrics(d.admin), "weft_http_idle_closed_total", service="grpc", state="keepalive")) >= 1


def test_grpc_across_nodes_over_mtls(weft, tmp_path):
    """An HTTP/2 service whose endpoints are on another node: the calls go to
    that node's agent over mutual TLS as the calling workload's identity,
    multiplexed on one connection, balanced per call over both remote
    endpoints; the far agent's allow-list decides (another identity gets
    UNAVAILABLE with the denial in grpc-message, and no endpoint is ejected
    for it)."""
    import shutil
    from weft_harness import CertAuthority, netns_argv, node_weftd, two_nodes
    if not shutil.which("openssl"):
        pytest.fail("openssl not found (scripts/weft-ca needs it): run `make deps`")
    td = "example.org"
    ca = CertAuthority(str(tmp_path / "ca"), td)
    n1, n2 = ca.issue("spiffe://%s/node/n1" % td, str(tmp_path / "n1")), \
        ca.issue("spiffe://%s/node/n2" % td, str(tmp_path / "n2"))
    client_id = "spiffe://%s/ns/shop/sa/checkout" % td
    t = two_nodes(weft)
    servers = []
    for name in ("x", "y"):
        addr = "%s:%d" % (t.ip2, free_port())
        p = spawn(netns_argv(t.ns2, [PYTHON, PEER, "serve", "--listen", addr, "--name", name]),
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        weft._push("grpc server %s" % name, lambda p=p: stop_process(p, 3.0))
        assert '"listening"' in p.stdout.readline()
        servers.append(addr)
    cg1, cg2, cg_other = weft.cgroup(tag="n1-app"), weft.cgroup(tag="n2-app"), weft.cgroup(tag="n1-other")
    in1, in2 = "%s:%d" % (t.ip1, free_port()), "%s:%d" % (t.ip2, free_port())
    vip = vip_addr()
    tls = {"ca": ca.ca, "issuer_cert": os.path.join(ca.dir, "issuer.pem"),
           "issuer_key": os.path.join(ca.dir, "issuer.key"), "cert_lifetime_s": 3600}
    node_weftd(weft, t.ns2, in2, [cg2],
               [service("grpc", [vip_addr()], servers, protocol="http2",
                        extra=' authorization = { allow = [ "%s" ]; };' % client_id)],
               tls=dict(tls, cert=n2[0], key=n2[1]))
    d1 = node_weftd(weft, t.ns1, in1, [cg1, cg_other],
                    [service("grpc", [vip], ['%s"; node = "%s' % (a, in2) for a in servers], protocol="http2",
                             balancer="round-robin")],
                    tls=dict(tls, cert=n1[0], key=n1[1]),
                    identities=[{"cgroup": cg1, "identity": client_id}])

    def ns_call(cg, n):
        r = subprocess.run(in_cgroup_argv(cg, netns_argv(t.ns1, [PYTHON, PEER, "call", "--connect", vip,
                                                                  "--n", str(n)])),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    r = ns_call(cg1, 100)
    assert r["ok"] == 100 and r["replies"] == {"x": 50, "y": 50}, r
    # multiplexed: one TLS connection per remote endpoint for these 100 calls, not 100
    ms = d1.metrics()
    opened = sum(prom_get(ms, "weft_connections_total", service="grpc"))
    assert 1 <= opened <= 4, opened
    r = ns_call(cg_other, 3)
    assert r["codes"] == {"UNAVAILABLE": 3} and "denied" in " ".join(r["errors"]), r



def test_grpc_tracing(weft):
    """A call with a traceparent: the endpoint gets a traceparent of the same
    trace whose parent is weft's CLIENT span; Zipkin gets weft's SERVER span
    (child of the caller's) and the CLIENT span."""
    from test_http import Collector
    col = Collector()
    weft._push("collector", col.stop)
    cg = weft.cgroup(tag="grpc-trace")
    a = GrpcServer(weft, "a")
    vip = vip_addr()
    weft.weftd([cg], [service("grpc", [vip], [a.addr], protocol="http2")],
               extra_root='tracing = { collector = "%s"; sample_rate = 1.0; flush_ms = 100; };' % col.addr)
    trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = subprocess.run(in_cgroup_argv(cg, [PYTHON, PEER, "call", "--connect", vip, "--method", "Meta",
                                           "--traceparent", "00-%s-%s-01" % (trace, parent)]),
                       capture_output=True, text=True, timeout=30)
    md = json.loads(list(json.loads(r.stdout)["replies"])[0])
    tp = md["traceparent"].split("-")
    assert tp[1] == trace and tp[2] != parent and tp[3] == "01", md
    assert wait_for(lambda: len(col.of(trace)) >= 2, 5), col.spans
    spans = {s["kind"]: s for s in col.of(trace)}
    assert spans["SERVER"]["parentId"] == parent and spans["CLIENT"]["parentId"] == spans["SERVER"]["id"], spans
    assert spans["CLIENT"]["id"] == tp[2], (spans, tp)



def test_bidi_streaming_and_cancellation(weft):
    """Bidirectional streaming passes every message in order; a client's
    cancel (RST_STREAM CANCEL) reaches the endpoint through weft, which sees
    its call cancelled long before the call would have ended."""
    cg = weft.cgroup(tag="grpc-bidi")
    addr = "127.0.0.1:%d" % free_port()
    srv = spawn([PYTHON, PEER, "serve", "--listen", addr, "--name", "a"], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
    weft._push("grpc server", lambda: stop_process(srv, 3.0))
    assert '"listening"' in srv.stdout.readline()
    events = []
    threading.Thread(target=lambda: [events.append(l) for l in srv.stdout], daemon=True).start()
    vip = vip_addr()
    weft.weftd([cg], [service("grpc", [vip], [addr], protocol="http2")])
    r = call(cg, vip, method="Chat", payload="2000", n=2, timeout=30)
    assert r["ok"] == 2 and r["replies"] == {"ok": 2} and r["messages"] == 4000, r
    r = call(cg, vip, method="Cancel", payload="10", timeout=30)
    assert r["replies"] == {"cancelled": 1}, r
    assert wait_for(lambda: any('"cancelled"' in e for e in events), 3), events


def test_curl_http2_prior_knowledge(weft, mesh):
    """An unmodified curl speaking h2c with prior knowledge through weft: the
    endpoint's answer comes back over HTTP/2 (a gRPC server answers a plain
    GET with its own error status; what matters is that HTTP/2 carried it)."""
    import shutil
    if not shutil.which("curl"):
        pytest.fail("curl not found: run `make deps`")
    r = subprocess.run(in_cgroup_argv(mesh.cg, ["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null",
                                                "-w", "%{http_version} %{http_code}", "--max-time", "5",
                                                "http://%s/weft.Echo/Who" % mesh.vip]),
                       capture_output=True, text=True, timeout=20)
    version, code = r.stdout.split()
    assert r.returncode == 0 and version == "2" and code.isdigit() and int(code) >= 200, (r.stdout, r.stderr)
    # and a gRPC-shaped request with curl gets a gRPC answer (trailers included)
    r = subprocess.run(in_cgroup_argv(mesh.cg, ["curl", "-sS", "--http2-prior-knowledge", "-D", "-", "-o",
                                                "/dev/null", "-X", "POST", "-H", "content-type: application/grpc",
                                                "-H", "te: trailers", "--data-binary", "@-", "--max-time", "5",
                                                "http://%s/weft.Echo/Who" % mesh.vip]),
                       input=b"\x00\x00\x00\x00\x00", capture_output=True, timeout=20)
    head = r.stdout.decode(errors="replace").lower()
    assert r.returncode == 0 and "http/2 200" in head and "grpc-status: 0" in head, head
