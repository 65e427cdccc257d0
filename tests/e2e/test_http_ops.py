# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The HTTP proxy under operations a user does: load from wrk with every
request accounted for, /conns while keep-alive connections sit idle, a reload
that changes routes under a live keep-alive connection, and a drain (SIGTERM)
with an idle keep-alive connection and a request in flight."""

import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from weft_harness import (admin_call, admin_json, http_backend, http_raw, in_cgroup_argv, metrics,
                          parse_responses, prom_get, rewrite_config, service, vip_addr, wait_for)


def mval(d, name, **labels):
    return sum(prom_get(metrics(d.admin), name, **labels))


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make deps installs it)")
def test_wrk_every_request_accounted(weft):
    """wrk with 8 keep-alive connections for 2 s through an http service:
    no socket errors, no non-2xx, and weft counted exactly the requests wrk
    completed; the upstream pool kept the connection count far below the
    request count."""
    cg = weft.cgroup()
    b = http_backend(weft, "ok", "wrk")
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [b.addr], protocol="http")], log_level="info")
    argv = ["wrk", "-t1", "-c8", "-d2", "--latency", "http://%s/load" % vip]
    p = subprocess.run(in_cgroup_argv(cg, argv), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    m = re.search(r"(\d+) requests in", out)
    assert m, out
    done = int(m.group(1))
    assert done > 100, out
    assert "Socket errors" not in out and "Non-2xx" not in out, out
    # wrk may cut requests in flight when it stops: weft answered at least what wrk counted
    counted = wait_for(lambda: mval(d, "weft_http_requests_total", service="web", route="default",
                                    **{"class": "2xx"}) >= done, 5)
    total = mval(d, "weft_http_requests_total", service="web", route="default", **{"class": "2xx"})
    assert counted and done <= total <= done + 8, (done, total)
    conns = mval(d, "weft_connections_total", service="web")
    assert 1 <= conns <= 16, (conns, total)
    assert mval(d, "weft_http_requests_in_flight", service="web") == 0


def test_idle_keepalive_in_conns_and_drained_on_sigterm(weft):
    """An idle keep-alive HTTP connection shows in /conns as idle; SIGTERM
    closes it at once (clean EOF, no reset), lets a request in flight finish
    with Connection: close, and weftd exits 0 well before the drain timeout."""
    cg = weft.cgroup()
    fast = http_backend(weft, "ok", "fast")
    slow = http_backend(weft, "slow", "slow", delay=1.5)
    v1, v2 = vip_addr(), vip_addr()
    d = weft.weftd([cg], [service("fast", [v1], [fast.addr], protocol="http"),
                          service("slow", [v2], [slow.addr], protocol="http")],
                   extra_agent="  drain_timeout_ms = 8000;\n")
    results = {}

    def run(key, vip, script):
        results[key] = http_raw(vip, script, cgroup=cg, timeout=10)

    t_idle = threading.Thread(target=run, args=("idle", v1, [
        {"send": "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"recv_until": "}"},
        {"recv_eof": True, "timeout": 10}]))
    t_busy = threading.Thread(target=run, args=("busy", v2, [
        {"send": "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"recv_eof": True, "timeout": 10}]))
    t_idle.start()
    assert wait_for(lambda: any(c.get("state") == "idle" and c.get("protocol") == "http"
                                for c in admin_json(d.admin, "/conns")["conns"]), 5), \
        admin_json(d.admin, "/conns")
    t_busy.start()
    assert wait_for(lambda: any(c.get("state") == "request"
                                for c in admin_json(d.admin, "/conns")["conns"]), 5)
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    t_idle.join(15)
    t_busy.join(15)
    rc = d.proc.wait(15)
    took = time.monotonic() - t0
    assert rc == 0, d.log_tail()
    assert took < 6, took
    ri, rb = results["idle"], results["busy"]
    assert ri.get("error") in (None, ""), ri
    rs, _ = parse_responses(ri["data"])
    assert [r["status"] for r in rs] == [200], ri
    rs, _ = parse_responses(rb["data"])
    assert [r["status"] for r in rs] == [200], rb
    assert rs[0]["headers"].get("connection", "").lower() == "close", rs[0]


def test_reload_changes_routes_for_live_keepalive_connection(weft):
    """A keep-alive connection open across a reload keeps working; requests
    after the reload follow the new routes (each request takes the routes of
    the generation its connection started with: this one started before)."""
    cg = weft.cgroup()
    a = http_backend(weft, "ok", "a")
    b = http_backend(weft, "ok", "b")
    vip, vb = vip_addr(), vip_addr()
    svcs = [service("web", [vip], [a.addr], protocol="http"), service("b", [vb], [b.addr], protocol="http")]
    d = weft.weftd([cg], svcs)
    # the new generation routes /x to service b
    svcs2 = [service("web", [vip], [a.addr], protocol="http",
                     extra=' routes = ( { name = "x"; match = { path_prefix = "/x"; }; '
                           'backends = ( { service = "b"; } ); } );'),
             service("b", [vb], [b.addr], protocol="http")]
    res = {}

    def run():
        res["r"] = http_raw(vip, [
            {"send": "GET /x1 HTTP/1.1\r\nHost: a\r\n\r\n"}, {"recv_until": "}"},
            {"sleep": 1.5},
            {"send": "GET /x2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"}, {"recv_eof": True}],
            cgroup=cg, timeout=10)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    rewrite_config(d, services=svcs2)
    st, _, body = admin_call(d.admin, "POST", "/reload")
    assert st == 200, body
    t.join(20)
    rs, _ = parse_responses(res["r"]["data"])
    assert [r["status"] for r in rs] == [200, 200], res
    # the old connection keeps its generation: both on a; a new connection follows the new route
    assert [r["json"]["server"] for r in rs] == ["a", "a"], rs
    r2 = http_raw(vip, [{"send": "GET /x3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
                        {"recv_eof": True}], cgroup=cg)
    rs2, _ = parse_responses(r2["data"])
    assert rs2[0]["status"] == 200 and rs2[0]["json"]["server"] == "b", rs2


def test_slow_head_gets_408_and_close(weft):
    """A client that starts a request head and stalls gets 408 (weft-error:
    request head timeout, Connection: close) after http.head_timeout_ms and
    the connection is closed; the backend never sees a byte of it; a client
    that sends its head in slow pieces but within the time is served."""
    cg = weft.cgroup()
    b = http_backend(weft, "ok", "b")
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [b.addr], protocol="http",
                                  extra=" http = { head_timeout_ms = 400; };")])
    t0 = time.monotonic()
    r = http_raw(vip, [{"send": "GET /stall HTTP/1.1\r\nHost: a\r\nX-Slow: "}, {"recv_eof": True, "timeout": 5}],
                 cgroup=cg, timeout=5)
    took = time.monotonic() - t0
    rs, _ = parse_responses(r["data"])
    assert [x["status"] for x in rs] == [408], r
    assert rs[0]["headers"]["weft-error"] == "request head timeout", rs[0]
    assert rs[0]["headers"]["connection"].lower() == "close", rs[0]
    assert 0.3 < took < 3, took
    assert mval(d, "weft_http_rejected_total", service="web", status="408") == 1
    # in pieces, each well inside the limit, the whole head within it: served
    r = http_raw(vip, [{"send": "GET /pieces HTTP/1.1\r\n"}, {"sleep": 0.1}, {"send": "Host: a\r\n"},
                       {"sleep": 0.1}, {"send": "Connection: close\r\n\r\n"}, {"recv_eof": True}],
                 cgroup=cg, timeout=5)
    rs, _ = parse_responses(r["data"])
    assert [x["status"] for x in rs] == [200], r
    assert [e["path"] for e in b.requests()] == ["/pieces"]


def test_services_shows_http_state(weft):
    """GET /services carries the per-request view of an HTTP service: routes,
    retries and the budget left, and per-endpoint request counts; an opaque
    service has no "http" object."""
    cg = weft.cgroup()
    b = http_backend(weft, "ok", "b")
    v1, v2 = vip_addr(), vip_addr()
    d = weft.weftd([cg], [service("web", [v1], [b.addr], protocol="http", retry=(
                               "attempts = 2; budget_ratio = 0.5; budget_min_per_s = 1; budget_window_s = 10;"),
                           extra=' routes = ( { name = "api"; match = { path_prefix = "/api"; }; } );'),
                           service("raw", [v2], [b.addr], protocol="tcp")])
    r = http_raw(v1, [{"send": "GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n"}, {"recv_until": "}"},
                      {"send": "GET /y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"}, {"recv_eof": True}],
                 cgroup=cg)
    assert [x["status"] for x in parse_responses(r["data"])[0]] == [200, 200], r
    svcs = {s["name"]: s for s in admin_json(d.admin, "/services")["services"]}
    http = svcs["web"]["http"]
    assert http["routes"] == ["api"], http
    assert http["requests_in_flight"] == 0 and http["retries"] == 0 and http["shed"] == 0, http
    # 2 requests x 0.5 + 1/s x 10 s
    assert http["retry_budget_available"] == 11, http
    assert svcs["web"]["endpoints"][0]["http_requests"] == 2, svcs["web"]
    assert "http" not in svcs["raw"], svcs["raw"]


def test_weftctl_conns_lists_http_sessions(weft):
    """weftctl conns (the table) lists HTTP client connections like TCP
    ones: an idle keep-alive one shows ENDPOINT (idle), with its bytes."""
    cg = weft.cgroup()
    b = http_backend(weft, "ok", "b")
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [b.addr], protocol="http")])
    res = {}

    def run():
        res["r"] = http_raw(vip, [{"send": "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"}, {"recv_until": "}"},
                                  {"sleep": 1.5}], cgroup=cg, timeout=10)

    t = threading.Thread(target=run)
    t.start()
    try:
        def rows():
            p = subprocess.run([weft.env.weftctl, "-a", d.admin, "-o", "wide", "conns"], capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
            lines = p.stdout.splitlines()
            hdr = lines[0].split()
            return [dict(zip(hdr, ln.split())) for ln in lines[1:] if ln.strip()]
        got = wait_for(lambda: [r for r in rows() if r.get("SERVICE") == "web" and r.get("ENDPOINT") == "(idle)"], 5)
        assert got, rows()
        assert got[0]["ORIG_DST"] == vip and int(got[0]["BYTES_OUT"]) > 0, got
    finally:
        t.join(15)
