# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""weftctl stat (issue 16): golden signals per service over the last 10 s and
minute, computed by weftd from its own counters. Figures are checked against
known traffic: N requests, M of them 503, from a backend with a fixed 30 ms
latency, give exactly N requests in the window, success (N-M)/N and a p50 in
the 25-50 ms histogram bucket; TCP services count connections and failed
connects; tables fit 80 columns and carry no colour off a terminal."""

import json
import os
import subprocess
import time

import pytest

from weft_harness import dead_addr, free_port, http_backend, http_requests, service, vip_addr, wait_for


def ctl(weft, d, *args):
    return subprocess.run([weft.env.weftctl, "-a", d.admin] + list(args), capture_output=True, text=True,
                          timeout=20)


def stat_json(weft, d, *args):
    r = ctl(weft, d, "--json", "stat", *args)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return {s["name"]: s for s in json.loads(r.stdout)["services"]}


def counted(win, key):
    return round(win[key] * win["seconds"]) if win[key] is not None else None


@pytest.fixture
def mesh(weft):
    if not os.access(weft.env.weftctl, os.X_OK):
        pytest.fail("weftctl is missing: run make")
    m = type("Mesh", (), {})()
    m.cg = weft.cgroup(tag="stat")
    m.web = http_backend(weft, "slow", "web", delay=0.03)
    m.db = weft.server("echo", "db")
    m.vip_web, m.vip_db = vip_addr(), vip_addr()
    m.dead = dead_addr()
    m.d = weft.weftd([m.cg], [service("web", [m.vip_web], [m.web.addr], protocol="http"),
                              service("db", [m.vip_db], [m.db.addr, m.dead], balancer="round-robin",
                                      attempts=1)])
    return m


def test_stat_http_figures_match_the_traffic(weft, mesh):
    m = mesh
    r1 = http_requests(m.vip_web, m.cg, n=30, path="/ok", keepalive=True)
    r2 = http_requests(m.vip_web, m.cg, n=10, path="/bad", keepalive=True,
                       headers={"x-test-status": "503"})
    assert r1["rc"] == 0 and r2["rc"] == 0, (r1, r2)
    time.sleep(2.5)  # one sampling period (2 s) after the last request
    web = stat_json(weft, m.d, "web")["web"]
    w = web["windows"]["10s"]
    assert counted(w, "requests_per_s") == 40, w
    assert abs(w["success_rate"] - 0.75) < 1e-6, w
    assert 25 < w["p50_ms"] <= 50 and w["latency"] == "request", w
    assert w["p99_ms"] >= w["p95_ms"] >= w["p50_ms"], w
    assert counted(web["windows"]["1m"], "requests_per_s") == 40, web["windows"]["1m"]
    ep = stat_json(weft, m.d, "-o", "wide", "web")["web"]["endpoint_stats"][0]
    assert ep["address"] == m.web.addr and counted(ep["windows"]["10s"], "requests_per_s") == 40, ep
    assert abs(ep["windows"]["10s"]["success_rate"] - 0.75) < 1e-6, ep

    # the table: the same figures, 80 columns, no escape sequences off a terminal
    r = ctl(weft, m.d, "stat")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout
    assert all(len(l) <= 80 for l in r.stdout.splitlines()), r.stdout
    row = next(l for l in r.stdout.splitlines() if l.startswith("web "))
    assert "75.00%" in row, r.stdout
    wide = ctl(weft, m.d, "stat", "web", "-o", "wide")
    assert wide.returncode == 0 and m.web.addr in wide.stdout, wide.stdout
    assert all(len(l) <= 80 for l in wide.stdout.splitlines()), wide.stdout
    one = ctl(weft, m.d, "stat", "--window", "1m", "web")
    assert one.returncode == 0 and "window 60s" in one.stdout, one.stdout


def test_stat_tcp_connections_and_failed_connects(weft, mesh):
    m = mesh
    ok = sum(1 for _ in range(12) if weft.client("echo", m.vip_db, cgroup=m.cg, nbytes=10).get("echo_ok"))
    time.sleep(2.5)
    db = stat_json(weft, m.d, "--window", "1m", "db")["db"]
    w = db["windows"]["10s"]
    # a live and a dead endpoint, one attempt each (the dead one is ejected after 5 failures)
    assert 6 <= ok < 12
    assert counted(w, "connections_per_s") == ok, (ok, w)
    assert abs(w["connect_success_rate"] - ok / 12) < 0.01, (ok, w)
    assert w["latency"] == "connect" and w["requests_per_s"] == 0 and w["success_rate"] is None, w


def test_stat_errors(weft, mesh):
    r = ctl(weft, mesh.d, "stat", "nosuch")
    assert r.returncode == 1 and "no service 'nosuch'" in r.stderr, (r.stdout, r.stderr)
    r = ctl(weft, mesh.d, "stat", "--window", "5m")
    assert r.returncode == 2 and "10s and 1m" in r.stderr, r.stderr
    r = subprocess.run([weft.env.weftctl, "-a", "127.0.0.1:%d" % free_port(), "stat"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 3, r.stderr
