# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Balancing and failure handling for TCP services (and the ewma balancer on
an HTTP service), through the real kernel.

Each dialogue runs one weftd, real backends, and a client inside an enrolled
cgroup. Many-connection runs use client processes (LOOP below) that each make
N sequential HTTP requests to the VIP, one connection each, and report which
backend answered each; loops() runs several at once.
"""

import collections
import json
import os
import socket
import subprocess
import threading
import time

from weft_harness import (free_port, http_backend, http_get, http_requests, in_cgroup_argv, service,
                          spawn, stop_process, vip_addr, wait_for)

PY = "/usr/bin/python3"

# N sequential GETs to VIP; prints {"servers": {...}, "errors": {...}}.
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
        body = data.partition(b"\r\n\r\n")[2]
        servers[json.loads(body)["server"]] += 1
    except Exception as e:
        errors[type(e).__name__] += 1
    finally:
        s.close()
print(json.dumps({"servers": servers, "errors": errors}))
'''


def loop(cg, vip, n, timeout=120):
    p = subprocess.run(in_cgroup_argv(cg, [PY, "-c", LOOP, vip, str(n)]),
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def services_of(d):
    st, body = http_get(d.admin, "/services")
    assert st == 200, body
    return {s["name"]: s for s in json.loads(body)["services"]}


def endpoint(d, svc, addr):
    for e in services_of(d)[svc]["endpoints"]:
        if e["address"] == addr:
            return e
    raise AssertionError("no endpoint %s in %s" % (addr, services_of(d)))


def metric(d, name, **labels):
    st, body = http_get(d.admin, "/metrics")
    assert st == 200
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in body.splitlines():
        if line.startswith(name + "{"):
            lab, _, val = line[len(name) + 1:].rpartition("} ")
            if ",".join(sorted(lab.split(","))) == want:
                return float(val)
    return None


def test_dead_endpoint_ejected_then_probed_back(weft):
    cg = weft.cgroup(tag="app")
    a, b = weft.server("http", "A"), weft.server("http", "B")
    dead = "127.0.0.1:%d" % free_port()          # nothing listens here (yet)
    vip = vip_addr()
    brk = ("circuit_breaker = { consecutive_failures = 3; base_ejection_ms = 1000; "
           "max_ejection_ms = 2000; max_ejection_percent = 50; };")
    d = weft.weftd([cg], [service("web", [vip], [a.addr, b.addr, dead], attempts=3,
                                  extra=brk)])

    # Every client connection succeeds: failed connects are retried elsewhere.
    res = loop(cg, vip, 30)
    assert res["errors"] == {}, res
    assert sum(res["servers"].values()) == 30 and set(res["servers"]) == {"A", "B"}, res

    ep = endpoint(d, "web", dead)
    assert ep["state"] in ("ejected", "probing"), ep
    assert ep["ejections"] == 1 and ep["connect_errors"] >= 3, ep
    assert ep["reason"] == "consecutive connect failures", ep
    assert metric(d, "weft_endpoint_ejections_total", service="web", endpoint=dead,
                  direction="outbound") == 1
    assert metric(d, "weft_service_endpoints_ejected", service="web") == 1
    assert "ejected for" in d.log()

    # It comes back: after the back-off one probe readmits it and it gets traffic again.
    c = weft.server("http", "C", listen=dead)
    seen = collections.Counter()

    def back():
        seen.update(loop(cg, vip, 6)["servers"])
        return seen["C"] > 0
    assert wait_for(back, timeout=10, interval=0.2), (seen, endpoint(d, "web", dead))
    assert endpoint(d, "web", dead)["state"] == "ready"
    assert "readmitted" in d.log()
    assert c.conns()


def test_max_ejection_percent_keeps_serving(weft):
    """Two of two endpoints failing: only one may be ejected (50%); panic keeps trying."""
    cg = weft.cgroup(tag="app")
    d1, d2 = "127.0.0.1:%d" % free_port(), "127.0.0.1:%d" % free_port()
    vip = vip_addr()
    brk = "circuit_breaker = { consecutive_failures = 2; base_ejection_ms = 60000; };"
    d = weft.weftd([cg], [service("web", [vip], [d1, d2], attempts=2, extra=brk)])
    res = loop(cg, vip, 10)
    assert res["servers"] == {} and sum(res["errors"].values()) == 10, res
    states = sorted(e["state"] for e in services_of(d)["web"]["endpoints"])
    assert states == ["ejected", "ready"], states
    assert "max_ejection_percent" in d.log()
    # the one left keeps being tried: when it comes up, clients succeed at once
    srv = weft.server("http", "UP", listen=[e["address"] for e in services_of(d)["web"]["endpoints"]
                                            if e["state"] == "ready"][0])
    res = loop(cg, vip, 5)
    assert res["servers"] == {"UP": 5}, res
    assert srv.conns()


# An HTTP/1.1 server answering {"server": NAME} (argv[3], default SLOW) after
# argv[2] seconds: a number, or a file holding one (read at each request, so a
# test can make it recover).
SLOW = r'''
import json, socket, sys, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
host, port = sys.argv[1].rsplit(":", 1); s.bind((host, int(port))); s.listen(256)
body = json.dumps({"server": sys.argv[3] if len(sys.argv) > 3 else "SLOW"}).encode()
def delay():
    if sys.argv[2].startswith("/"):
        with open(sys.argv[2]) as f:
            return float(f.read())
    return float(sys.argv[2])
def serve(c):
    c.recv(65536); time.sleep(delay())
    c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' % len(body) + body)
    c.close()
print("listening", flush=True)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
'''


def slow_server(delay, name="SLOW"):
    # (process, address); the caller stops the process
    addr = "127.0.0.1:%d" % free_port()
    p = spawn([PY, "-c", SLOW, addr, str(delay), name], stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"listening"
    return p, addr


def loops(cg, vip, clients, n, timeout=120):
    # `clients` LOOP clients at once, n connections each: merged counts
    ps = [subprocess.Popen(in_cgroup_argv(cg, [PY, "-c", LOOP, vip, str(n)]), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE) for _ in range(clients)]
    servers, errors = collections.Counter(), collections.Counter()
    for p in ps:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err.decode()
        res = json.loads(out.decode().strip().splitlines()[-1])
        servers.update(res["servers"])
        errors.update(res["errors"])
    return {"servers": dict(servers), "errors": dict(errors)}


def test_slow_endpoint_starved_under_ewma(weft):
    # The shape: three endpoints of an opaque TCP service, one answering
    # after 100 ms (hundreds of times the others), 8 clients at once making
    # connections. The latency sample of a TCP connection is connect time plus
    # the wait for the first byte back, and the slow endpoint loses every pair
    # it is drawn into: after a warm-up it only gets its latency probes (0.25 s,
    # 0.5 s, 1 s, ... apart): 1 of 320 measured. Target under 5%; the old
    # balancer (draws with replacement, a soft choice) gave it 12.5%.
    cg = weft.cgroup(tag="app")
    a, b = weft.server("http", "A"), weft.server("http", "B")
    p, slow = slow_server(0.1)
    try:
        vip = vip_addr()
        d = weft.weftd([cg], [service("web", [vip], [a.addr, b.addr, slow], balancer="ewma")])
        warm = loop(cg, vip, 40)
        assert warm["errors"] == {}, warm
        res = loops(cg, vip, 8, 40)
        assert res["errors"] == {}, res
        got = res["servers"]
        assert sum(got.values()) == 320, got
        assert got.get("SLOW", 0) < 16, got
        assert got["A"] > 100 and got["B"] > 100, got
        assert endpoint(d, "web", slow)["ewma_ms"] > 50, services_of(d)
    finally:
        stop_process(p)


def test_slow_endpoint_starved_under_ewma_http(weft):
    # The same per request: an HTTP service over keep-alive connections, one of
    # three backends answering after 100 ms, 8 clients at once. The sample is
    # the time to the response head. Counted at the backends, after a warm-up:
    # 0 of 400 measured (the old balancer: 11%).
    cg = weft.cgroup(tag="app")
    a, b = http_backend(weft, "ok", "A"), http_backend(weft, "ok", "B")
    s = http_backend(weft, "slow", "S", delay=0.1)
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [a.addr, b.addr, s.addr], protocol="http",
                                  balancer="ewma")])
    warm = http_requests(vip, cg, n=40, concurrency=8, keepalive=True, timeout=10)
    assert warm["statuses"] == {"200": 40}, warm
    before = {x.name: len(x.requests()) for x in (a, b, s)}
    res = http_requests(vip, cg, n=400, concurrency=8, keepalive=True, timeout=10)
    assert res["statuses"] == {"200": 400}, res
    got = {x.name: len(x.requests()) - before[x.name] for x in (a, b, s)}
    assert got == {k: res["servers"].get(k, 0) for k in got}, (got, res["servers"])
    assert got["S"] < 20, got
    assert got["A"] > 150 and got["B"] > 150, got
    assert endpoint(d, "web", s.addr)["ewma_ms"] > 50, services_of(d)


def test_recovered_endpoint_gets_traffic_back_ewma(weft, tmp_path):
    # Starved while slow; once it answers at once again its next latency probe
    # (at most 10 s later; here, early in its back-off, within a second or so)
    # brings it back to its share.
    cg = weft.cgroup(tag="app")
    a, b = weft.server("http", "A"), weft.server("http", "B")
    delay = tmp_path / "delay"

    def set_delay(v):
        # atomically: the server reads the file at each request
        (tmp_path / "delay.new").write_text(v)
        os.replace(tmp_path / "delay.new", delay)
    set_delay("0.1")
    p, slow = slow_server(str(delay))
    try:
        vip = vip_addr()
        d = weft.weftd([cg], [service("web", [vip], [a.addr, b.addr, slow], balancer="ewma")])
        res = loop(cg, vip, 100)
        assert res["errors"] == {} and res["servers"].get("SLOW", 0) < 5, res
        set_delay("0")
        seen = collections.Counter()

        def back():
            seen.update(loop(cg, vip, 30)["servers"])
            return seen["SLOW"] > 0
        assert wait_for(back, timeout=15, interval=0.1), (seen, endpoint(d, "web", slow))
        res = loop(cg, vip, 600)
        assert res["errors"] == {}, res
        # a third would be 200; ~190 measured, a loaded host's outliers cost some
        assert res["servers"].get("SLOW", 0) > 60, res
        assert endpoint(d, "web", slow)["ewma_ms"] < 20, services_of(d)
    finally:
        stop_process(p)


def weighted_run(weft, balancer, n):
    cg = weft.cgroup(tag="app")
    a, b = weft.server("http", "A"), weft.server("http", "B")
    vip = vip_addr()
    weft.weftd([cg], [service("web", [vip], [(a.addr, 3), (b.addr, 1)], balancer=balancer)])
    res = loop(cg, vip, n)
    assert res["errors"] == {}, res
    return res["servers"]


def test_weights_round_robin(weft):
    got = weighted_run(weft, "round-robin", 400)
    assert got == {"A": 300, "B": 100}, got


def test_weights_least_conn(weft):
    """least-conn balances active / weight: 40 held connections split 30:10."""
    cg = weft.cgroup(tag="app")
    a, b = weft.server("echo", "A"), weft.server("echo", "B")
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [(a.addr, 3), (b.addr, 1)],
                                  balancer="least-conn")])
    # each pick sees the connections opened before it (none close for 12 s),
    # whatever order they arrive in
    held = [weft.client_async("echo", vip, cgroup=cg, extra=("--delay", "12")) for _ in range(40)]
    assert wait_for(lambda: services_of(d)["web"]["active"] == 40, timeout=20), services_of(d)
    eps = {e["address"]: e["active"] for e in services_of(d)["web"]["endpoints"]}
    assert eps == {a.addr: 30, b.addr: 10}, eps
    for h in held:
        assert h.result(timeout=30)["ok"]


def test_weights_ewma(weft):
    # Equal endpoints get their weight share: of the two candidates of a pick the
    # first, drawn by weight, keeps it unless the other is clearly (1.5x) cheaper,
    # and load counts per unit of weight (3 connections in flight on the weight-3
    # endpoint cost what 1 does on the other). "Equal" needs backends that stay
    # equal under the test's load: each answers after 5 ms, so a Python server
    # busier with 3x the connections (slower by a millisecond or two on this VM,
    # which a latency-aware balancer rightly holds against it) does not count.
    # 8 clients at once, after a warm-up: 3:1 within 10% (0.675-0.825).
    cg = weft.cgroup(tag="app")
    pa, a = slow_server(0.005, "A")
    pb, b = slow_server(0.005, "B")
    try:
        vip = vip_addr()
        weft.weftd([cg], [service("web", [vip], [(a, 3), (b, 1)], balancer="ewma")])
        warm = loops(cg, vip, 8, 10)
        assert warm["errors"] == {}, warm
        res = loops(cg, vip, 8, 200)
        assert res["errors"] == {}, res
        got = res["servers"]
        assert 0.675 <= got["A"] / 1600 <= 0.825, got
    finally:
        stop_process(pa)
        stop_process(pb)


def test_connection_limit_refuses_excess_at_once(weft):
    cg = weft.cgroup(tag="app")
    e = weft.server("echo", "E")
    vip = vip_addr()
    d = weft.weftd([cg], [service("echo", [vip], [e.addr],
                                  extra="limits = { max_connections = 2; };")])
    held = [weft.client_async("echo", vip, cgroup=cg, extra=("--delay", "4")) for _ in range(2)]
    assert wait_for(lambda: services_of(d)["echo"]["active"] == 2, timeout=5), services_of(d)

    t0 = time.monotonic()
    res = weft.client("echo", vip, cgroup=cg, timeout=5)
    took = time.monotonic() - t0
    assert not res["ok"] and res["error"] in ("ECONNRESET", "EPIPE"), res
    assert took < 1.5, "the excess connection must be refused at once, took %.2fs" % took
    assert metric(d, "weft_connections_failed_total", service="echo", direction="outbound",
                  reason="max_connections") == 1
    assert services_of(d)["echo"]["over_service_limit"] == 1

    for h in held:
        assert h.result(timeout=10)["ok"]
    res = weft.client("echo", vip, cgroup=cg)
    assert res["ok"] and res["echo_ok"], res


def test_state_survives_reload(weft):
    """An ejected endpoint stays ejected across a reload that keeps it."""
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    dead = "127.0.0.1:%d" % free_port()
    vip = vip_addr()
    brk = "circuit_breaker = { consecutive_failures = 2; base_ejection_ms = 60000; };"
    d = weft.weftd([cg], [service("web", [vip], [a.addr, dead], attempts=2, extra=brk)])
    loop(cg, vip, 8)
    assert endpoint(d, "web", dead)["state"] == "ejected"
    before = endpoint(d, "web", a.addr)["connections"]

    b = weft.server("http", "B")
    text = open(d.conf_path).read().replace('{ address = "%s"; }' % dead,
                                            '{ address = "%s"; }, { address = "%s"; }'
                                            % (dead, b.addr))
    with open(d.conf_path, "w") as f:
        f.write(text)
    os.kill(d.pid, 1)
    assert wait_for(lambda: "reloaded:" in d.log(), timeout=5), d.log_tail()
    assert endpoint(d, "web", dead)["state"] == "ejected"
    assert endpoint(d, "web", dead)["ejections"] == 1
    assert endpoint(d, "web", a.addr)["connections"] == before
    res = loop(cg, vip, 10)
    assert res["errors"] == {} and set(res["servers"]) == {"A", "B"}, res
