# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""weftd's HTTP/1.1 layer-7 proxy (services with protocol "http" or "auto"),
end to end through the real kernel hooks.

Backends are tests/e2e/http_backend.py (a strict HTTP/1.1 server that logs
every connection and request it gets, and answers with a JSON echo of what it
saw); clients are curl, tests/e2e/http_client.py (http.client requests, or a
raw socket driven by a script) and harness clients, each a separate process
in the enrolled cgroup. Test traffic stays on 127.0.0.0/8.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import http_client
from weft_harness import (admin_call, http_backend, http_raw, http_requests, in_cgroup_argv,
                          metrics, parse_responses, prom_get, service, vip_addr, wait_for)


# --------------------------------------------------------------------------
# helpers

def hsvc(name, vip, endpoints, protocol="http", **kw):
    """An HTTP service with one VIP."""
    return service(name, [vip], endpoints, protocol=protocol, **kw)


def mval(d, name, **labels):
    """Sum of the samples of name whose labels include labels (0 if none)."""
    return sum(prom_get(metrics(d.admin), name, **labels))


def curl(cg, *args, timeout=5.0):
    """curl (in cg) -> (rc, stdout text, stderr text, seconds)."""
    argv = ["curl", "-sS", "--max-time", str(timeout)] + list(args)
    t0 = time.monotonic()
    p = subprocess.run(in_cgroup_argv(cg, argv), capture_output=True, timeout=timeout + 15)
    return (p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"),
            time.monotonic() - t0)


def one(vip, cg, **spec):
    """One request through http_client.py: its result dict (status, headers,
    body, elapsed, error)."""
    res = http_requests(vip, cg, detail=True, **spec)
    assert res.get("results"), res
    return res["results"][0]


def many(vip, cg, reqs, **spec):
    """Several requests on one keep-alive connection: their result dicts."""
    res = http_requests(vip, cg, detail=True, requests=reqs, **spec)
    assert res.get("results") and len(res["results"]) == len(reqs), res
    return res["results"]


def raw_once(vip, cg, data, timeout=5.0):
    """Send data, read until EOF: (responses, leftover bytes, raw result)."""
    r = http_raw(vip, [{"send": data}, {"recv_eof": True}], cgroup=cg, timeout=timeout)
    rs, left = parse_responses(r["data"])
    return rs, left, r


def routes_conf(*routes):
    return " routes = ( %s );" % ", ".join("{ %s }" % r for r in routes)


def seen_paths(backend):
    return [e["path"] for e in backend.requests()]


def pool(name, backend):
    """A service that only serves as a route backend (its own unique VIP)."""
    return hsvc(name, vip_addr(), [backend.addr])


# --------------------------------------------------------------------------
# 1. basic GET, canonical framing, hop-by-hop headers

def test_basic_get_canonical_headers(weft):
    cg = weft.cgroup(tag="app")
    a = http_backend(weft, "ok", "A")
    vip = vip_addr()
    d = weft.weftd([cg], [hsvc("web", vip, [a.addr])])

    rc, out, err, _ = curl(cg, "-D", "-", "-o", "-",
                           "-H", "Connection: keep-alive, x-hop",
                           "-H", "x-hop: secret",
                           "-H", "Keep-Alive: timeout=5",
                           "-H", "TE: trailers",
                           "-H", "Proxy-Connection: keep-alive",
                           "-H", "Trailer: x-t",
                           "-H", "Upgrade: foo/1",       # not an upgrade: no "upgrade" token
                           "-H", "x-end: kept",
                           "http://%s/hello?q=1" % vip)
    assert rc == 0, (rc, out, err)
    rs, _ = parse_responses(out)
    assert rs and rs[0]["status"] == 200, out
    body = rs[0]["json"]
    assert body["server"] == "A" and body["method"] == "GET", body
    assert body["path"] == "/hello" and body["target"] == "/hello?q=1", body
    assert rs[0]["headers"].get("x-server") == "A", rs[0]["headers"]
    hd = body["headers"]
    assert hd.get("x-end") == "kept", hd
    assert hd.get("host") == vip, hd
    assert hd.get("user-agent", "").startswith("curl/"), hd
    for hop in ("x-hop", "keep-alive", "te", "proxy-connection", "trailer", "upgrade"):
        assert hop not in hd, "hop-by-hop header %r reached the backend: %r" % (hop, hd)
    assert "x-hop" not in hd.get("connection", "").lower(), hd
    assert set(t.strip() for t in hd.get("connection", "").lower().split(",") if t.strip()) \
        <= {"keep-alive", "close"}, hd

    def framing_of(req):
        return [(n.lower(), v) for n, v in req["header_list"]
                if n.lower() in ("content-length", "transfer-encoding")]

    # The same Content-Length twice (allowed): the backend gets exactly one.
    rs, _, r = raw_once(vip, cg, "POST /dup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                                 "Content-Length: 5\r\nConnection: close\r\n\r\nhello")
    assert rs and rs[0]["status"] == 200, r
    seen = rs[0]["json"]
    assert framing_of(seen) == [("content-length", "5")], seen["header_list"]
    assert seen["body_len"] == 5 and seen["body_sha256"] == hashlib.sha256(b"hello").hexdigest()

    # Leading zeros: forwarded as the canonical number.
    rs, _, r = raw_once(vip, cg, "POST /zeros HTTP/1.1\r\nHost: x\r\nContent-Length: 0005\r\n"
                                 "Connection: close\r\n\r\nworld")
    assert rs and rs[0]["status"] == 200, r
    assert framing_of(rs[0]["json"]) == [("content-length", "5")], rs[0]["json"]["header_list"]
    assert rs[0]["json"]["body_len"] == 5

    # "Chunked" in another case: one framing header upstream, the body intact.
    rs, _, r = raw_once(vip, cg, "POST /chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n"
                                 "Connection: close\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    assert rs and rs[0]["status"] == 200, r
    seen = rs[0]["json"]
    fr = framing_of(seen)
    assert fr in ([("transfer-encoding", "chunked")], [("content-length", "7")]), seen["header_list"]
    assert seen["body_len"] == 7 and seen["body_sha256"] == hashlib.sha256(b"abcdefg").hexdigest()

    # Absolute-form target: origin-form upstream, Host from the target.
    rs, _, r = raw_once(vip, cg, "GET http://api.example/abs?x=1 HTTP/1.1\r\nHost: other\r\n"
                                 "Connection: close\r\n\r\n")
    assert rs and rs[0]["status"] == 200, r
    assert rs[0]["json"]["target"] == "/abs?x=1", rs[0]["json"]
    assert rs[0]["json"]["headers"]["host"] == "api.example", rs[0]["json"]["headers"]

    assert len(a.requests()) == 5 and not a.bad_requests(), a.events()
    assert mval(d, "weft_http_requests_total", service="web", route="default",
                **{"class": "2xx"}) == 5
    assert mval(d, "weft_http_request_duration_seconds_count", service="web",
                route="default") == 5


# --------------------------------------------------------------------------
# 2. retries hide a flaky backend

def test_retries_mask_flaky_backend(weft):
    cg = weft.cgroup(tag="app")
    healthy = http_backend(weft, "ok", "H")
    f1 = http_backend(weft, "flaky", "F1")   # fails its 1st, 3rd, 5th, ... request
    f2 = http_backend(weft, "flaky", "F2")
    vip_mix, vip_one = vip_addr(), vip_addr()
    fast = "backoff_base_ms = 1; backoff_max_ms = 2;"
    d = weft.weftd([cg], [
        # Two endpoints, round-robin: half the first attempts go to F1 and half of
        # those fail; each failure is retried on H (another endpoint when there is
        # one). That is ~125 retries for 500 requests, inside the default budget
        # (0.2 * 500 + 10/s * 10 s = 200).
        hsvc("mix", vip_mix, [healthy.addr, f1.addr],
             retry="attempts = 3; on_status = [502, 503, 504]; " + fast),
        # One endpoint failing every other request: every client request needs
        # exactly one retry (on the same endpoint), 500 retries for 500
        # requests, so the budget must allow one retry per request: ratio 1.0
        # (1.0 * 500 + 10 * 10 = 600 >= 500).
        hsvc("one", vip_one, [f2.addr],
             retry="attempts = 3; on_status = [503]; budget_ratio = 1.0; budget_min_per_s = 10; "
                   "budget_window_s = 10; " + fast),
    ])

    for vip, name, n in ((vip_mix, "mix", 500), (vip_one, "one", 500)):
        res = http_requests(vip, cg, n=n, path="/r", keepalive=True, timeout=10)
        ok = res["statuses"].get("200", 0)
        assert ok >= 0.99 * n, (name, res)
        retries = mval(d, "weft_http_retries_total", service=name)
        assert retries > 0, (name, retries)
    assert healthy.requests() and f1.requests(), "both endpoints serve"
    # every retry of "one" reached F2: it saw the requests plus the retries
    retries_one = mval(d, "weft_http_retries_total", service="one")
    assert len(f2.requests()) == 500 + retries_one, (len(f2.requests()), retries_one)
    assert retries_one >= 495, retries_one
    assert mval(d, "weft_http_retry_budget_exhausted_total", service="one") == 0


def test_retry_rules_methods_and_bodies(weft):
    """Which requests are retried: idempotent methods, retryable routes, and
    only bodies up to http.max_retry_body. The backend fails its odd-numbered
    requests (1st, 3rd, ...), so the sequence below is exact."""
    cg = weft.cgroup(tag="app")
    f = http_backend(weft, "flaky", "F")
    vip = vip_addr()
    d = weft.weftd([cg], [
        hsvc("bodies", vip, [f.addr],
             retry="attempts = 3; on_status = [503]; budget_ratio = 1.0; backoff_base_ms = 1; "
                   "backoff_max_ms = 2;",
             extra=' http = { max_retry_body = 1024; };'
                   + routes_conf('name = "r"; match = { path_prefix = "/r/"; }; retryable = true; '
                                 'backends = ( { service = "bodies-pool"; } );')),
        hsvc("bodies-pool", vip_addr(), [f.addr],
             retry="attempts = 3; on_status = [503]; budget_ratio = 1.0; backoff_base_ms = 1; "
                   "backoff_max_ms = 2;"),
    ])
    steps = [
        # (request, expected status, backend requests seen after it)
        ({"method": "PUT", "path": "/big", "body_len": 2000}, 503, 1),   # #1 fails; body > max_retry_body
        ({"method": "GET", "path": "/sync"}, 200, 2),                    # #2 ok
        ({"method": "POST", "path": "/post", "body": "0123456789"}, 503, 3),  # #3 fails; POST: no retry
        ({"method": "GET", "path": "/sync"}, 200, 4),                    # #4 ok
        ({"method": "PUT", "path": "/small", "body": "0123456789"}, 200, 6),  # #5 fails, #6 ok
        ({"method": "DELETE", "path": "/del"}, 200, 8),                  # #7 fails, #8 ok
        ({"method": "POST", "path": "/r/post", "body": "abcdefghij"}, 200, 10),  # retryable route
    ]
    results = []
    for req, want, seen in steps:
        r = one(vip, cg, **req)
        results.append((req["method"], req["path"], r["status"], len(f.requests())))
        assert (r["status"], len(f.requests())) == (want, seen), results
    reqs = f.requests()
    # the retried bodies arrived whole both times
    assert [q["body_len"] for q in reqs[4:6]] == [10, 10], reqs[4:6]
    assert reqs[9]["body_sha256"] == hashlib.sha256(b"abcdefghij").hexdigest()
    assert reqs[9]["method"] == "POST" and reqs[8]["method"] == "POST"
    # retried: PUT /small, DELETE /del, POST /r/post; nothing else
    assert mval(d, "weft_http_retries_total") == 3


# --------------------------------------------------------------------------
# 3. the retry budget caps the load on a dead backend

def test_retry_budget_caps_failing_backend(weft):
    cg = weft.cgroup(tag="app")
    f = http_backend(weft, "fail", "F")
    vip = vip_addr()
    n, ratio, min_per_s, window = 200, 0.1, 1, 10
    bound = int(ratio * n + min_per_s * window)     # 30 retries at most
    d = weft.weftd([cg], [hsvc(
        "down", vip, [f.addr],
        retry="attempts = 3; on_status = [503]; budget_ratio = %s; budget_min_per_s = %d; "
              "budget_window_s = %d; backoff_base_ms = 1; backoff_max_ms = 2;"
              % (ratio, min_per_s, window),
        # no ejection: every request must reach the backend
        extra=" circuit_breaker = { consecutive_failures = 0; };")])

    res = http_requests(vip, cg, n=n, path="/down", keepalive=True, timeout=10)
    assert res["statuses"] == {"503": n}, res
    got = len(f.requests())
    retries = mval(d, "weft_http_retries_total", service="down")
    assert n <= got <= n + bound, "backend got %d requests for %d client requests (bound %d)" \
        % (got, n, n + bound)
    assert got == n + retries, (got, retries)
    assert mval(d, "weft_http_retry_budget_exhausted_total", service="down") > 0
    # a refused retry returns the last upstream response as is: the backend's 503
    from_backend = res["by"].get("503 F -", 0)
    assert from_backend >= n - bound, res["by"]
    assert mval(d, "weft_http_requests_total", service="down", **{"class": "5xx"}) == n


# --------------------------------------------------------------------------
# 4. routing: path, headers, host, method, weighted split

def test_routing_and_weighted_split(weft):
    cg = weft.cgroup(tag="app")
    names = ["D", "API", "CAN", "PRES", "HOST", "V1", "V2"]
    b = {nm: http_backend(weft, "ok", nm) for nm in names}
    vip = vip_addr()
    routes = routes_conf(
        'name = "exact"; match = { path = "/exact"; }; backends = ( { service = "api"; } );',
        'name = "api"; match = { path_prefix = "/api/"; }; backends = ( { service = "api"; } );',
        'name = "canary"; match = { headers = ( { name = "x-canary"; value = "1"; } ); }; '
        'backends = ( { service = "canary"; } );',
        'name = "present"; match = { headers = ( { name = "x-present"; } ); }; '
        'backends = ( { service = "present"; } );',
        'name = "host"; match = { host = "api.example"; }; backends = ( { service = "hosts"; } );',
        'name = "post"; match = { method = "POST"; path_prefix = "/m/"; }; '
        'backends = ( { service = "api"; } );',
        'name = "split"; match = { path_prefix = "/split/"; }; '
        'backends = ( { service = "web-v1"; weight = 90; }, { service = "web-v2"; weight = 10; } );')
    d = weft.weftd([cg], [hsvc("web", vip, [b["D"].addr], extra=routes),
                          pool("api", b["API"]), pool("canary", b["CAN"]),
                          pool("present", b["PRES"]), pool("hosts", b["HOST"]),
                          pool("web-v1", b["V1"]), pool("web-v2", b["V2"])])
    cases = [
        ({"path": "/exact"}, "API"),
        ({"path": "/exact?x=1"}, "API"),
        ({"path": "/exact/more"}, "D"),
        ({"path": "/api/v1/users"}, "API"),
        ({"path": "/apix"}, "D"),
        ({"path": "/other", "headers": {"x-canary": "1"}}, "CAN"),
        ({"path": "/other", "headers": {"X-Canary": "1"}}, "CAN"),
        ({"path": "/other", "headers": {"x-canary": "2"}}, "D"),
        ({"path": "/other", "headers": {"x-present": "whatever"}}, "PRES"),
        ({"path": "/other", "host": "api.example"}, "HOST"),
        ({"path": "/other", "host": "API.Example:8080"}, "HOST"),
        ({"path": "/other", "host": "www.example"}, "D"),
        ({"method": "POST", "path": "/m/x", "body": "x"}, "API"),
        ({"method": "GET", "path": "/m/x"}, "D"),
        ({"path": "/api/v1", "headers": {"x-canary": "1"}}, "API"),    # first match wins
        ({"path": "/exact", "host": "api.example"}, "API"),
    ]
    results = many(vip, cg, [c for c, _ in cases])
    got = [(c, r["status"], (r.get("body") or {}).get("server") if isinstance(r.get("body"), dict)
            else r.get("body")) for (c, _), r in zip(cases, results)]
    want = [(c, 200, srv) for c, srv in cases]
    assert got == want
    n_default = sum(1 for _, srv in cases if srv == "D")

    n = 2000
    res = http_requests(vip, cg, n=n, path="/split/x", keepalive=True, concurrency=4, timeout=10)
    assert res["statuses"] == {"200": n}, res
    v1, v2 = res["servers"].get("V1", 0), res["servers"].get("V2", 0)
    assert v1 + v2 == n, res["servers"]
    assert abs(v1 / n - 0.90) <= 0.03, res["servers"]
    samples = metrics(d.admin)
    req = lambda route: sum(prom_get(samples, "weft_http_requests_total", service="web",
                                     route=route))
    assert req("split") == n
    assert req("default") == n_default
    assert req("exact") == 3 and req("canary") == 2 and req("host") == 2


# --------------------------------------------------------------------------
# 5. request header add / remove

def test_request_headers_add_remove(weft):
    cg = weft.cgroup(tag="app")
    a, h = http_backend(weft, "ok", "A"), http_backend(weft, "ok", "HDR")
    vip = vip_addr()
    weft.weftd([cg], [
        hsvc("web", vip, [a.addr], extra=routes_conf(
            'name = "hdr"; match = { path_prefix = "/h/"; }; backends = ( { service = "hdr"; } ); '
            'request_headers = { add = ( { name = "x-via"; value = "weft"; }, '
            '{ name = "x-env"; value = "test"; } ); remove = [ "x-internal", "x-secret" ]; };')),
        pool("hdr", h)])
    sent = {"x-internal": "1", "X-Secret": "2", "x-keep": "3"}
    r1, r2 = many(vip, cg, [{"path": "/h/x", "headers": sent}, {"path": "/plain", "headers": sent}])
    assert r1["status"] == 200 and r1["body"]["server"] == "HDR", r1
    hd = r1["body"]["headers"]
    assert hd.get("x-via") == "weft" and hd.get("x-env") == "test", hd
    assert "x-internal" not in hd and "x-secret" not in hd, hd
    assert hd.get("x-keep") == "3", hd
    # another route (the default) is untouched
    assert r2["status"] == 200 and r2["body"]["server"] == "A", r2
    hd = r2["body"]["headers"]
    assert hd.get("x-internal") == "1" and hd.get("x-secret") == "2", hd
    assert "x-via" not in hd and "x-env" not in hd, hd


# --------------------------------------------------------------------------
# 6. request timeouts

def test_timeout_504(weft):
    cg = weft.cgroup(tag="app")
    slow = http_backend(weft, "slow", "SLOW", delay=3)
    vip_r, vip_d = vip_addr(), vip_addr()
    d = weft.weftd([cg], [
        # route timeout 500 ms; attempts = 3 with 504 retryable: the timeout
        # covers the whole request, retries included
        hsvc("slow", vip_r, [slow.addr], attempts=3, extra=routes_conf(
            'name = "r"; match = { path_prefix = "/"; }; timeout_ms = 500; '
            'backends = ( { service = "slow-pool"; } );')),
        hsvc("slow-pool", vip_addr(), [slow.addr], attempts=3),
        # no routes: http.request_timeout_ms is the default route's timeout
        hsvc("slow2", vip_d, [slow.addr], attempts=3,
             extra=" http = { request_timeout_ms = 700; };"),
    ])
    r = one(vip_r, cg, path="/t", timeout=10)
    assert r["status"] == 504 and r["headers"].get("weft-error") == "timeout", r
    assert 0.4 <= r["elapsed"] <= 1.3, r
    r = one(vip_d, cg, path="/t2", timeout=10)
    assert r["status"] == 504 and r["headers"].get("weft-error") == "timeout", r
    assert 0.6 <= r["elapsed"] <= 1.5, r
    assert mval(d, "weft_http_timeouts_total", service="slow", route="r") == 1
    assert mval(d, "weft_http_timeouts_total", service="slow2", route="default") == 1


# --------------------------------------------------------------------------
# 7. deadlines

def grpc_timeout_s(v):
    m = re.fullmatch(r"(\d{1,8})([HMSmun])", v or "")
    assert m, "bad grpc-timeout %r" % v
    mult = {"H": 3600, "M": 60, "S": 1, "m": 1e-3, "u": 1e-6, "n": 1e-9}[m.group(2)]
    return int(m.group(1)) * mult


def l5d_deadline(now_ns, deadline_ns):
    return base64.b64encode(struct.pack(">qq", now_ns, deadline_ns)).decode()


def test_deadlines_propagated_and_enforced(weft):
    cg = weft.cgroup(tag="app")
    a = http_backend(weft, "ok", "A")
    vip = vip_addr()
    route_ms = 5000
    weft.weftd([cg], [hsvc("dl", vip, [a.addr],
                               extra=" http = { request_timeout_ms = %d; };" % route_ms)])
    now_ms = int(time.time() * 1000)
    abs_near = now_ms + 2000            # tighter than the route timeout: kept as is
    abs_far = now_ms + 60000            # looser: replaced by now + route timeout
    l5d_dl_ns = (now_ms + 1500) * 1000000 + 123456
    reqs = [
        {"path": "/none"},
        {"path": "/near", "headers": {"weft-deadline": str(abs_near)}},
        {"path": "/far", "headers": {"weft-deadline": str(abs_far)}},
        {"path": "/grpc", "headers": {"grpc-timeout": "2S"}},
        {"path": "/l5d", "headers": {"l5d-ctx-deadline": l5d_deadline(now_ms * 1000000,
                                                                       l5d_dl_ns)}},
    ]
    t_before = time.time() * 1000
    rs = many(vip, cg, reqs)
    t_after = time.time() * 1000
    assert [r["status"] for r in rs] == [200] * len(reqs), rs
    seen = {r["body"]["path"]: r["body"]["headers"] for r in rs}
    dl = {p: int(h["weft-deadline"]) if "weft-deadline" in h else None for p, h in seen.items()}
    assert None not in dl.values(), "upstream always gets weft-deadline: %r" % seen

    def around(value, offset_ms):
        return t_before + offset_ms - 2 <= value <= t_after + offset_ms

    assert around(dl["/none"], route_ms), (dl, t_before, t_after)
    assert dl["/near"] == abs_near, dl
    assert around(dl["/far"], route_ms), (dl, t_before, t_after)
    assert around(dl["/grpc"], 2000), (dl, t_before, t_after)
    assert abs(dl["/l5d"] - l5d_dl_ns // 1000000) <= 1, (dl, l5d_dl_ns)
    left = grpc_timeout_s(seen["/grpc"].get("grpc-timeout"))
    assert 1.0 < left < 2.0, "grpc-timeout must be rewritten with the time left: %r" % seen["/grpc"]

    # a deadline that already passed: 504 at once, never sent upstream
    before = len(a.requests())
    r = one(vip, cg, path="/expired", headers={"weft-deadline": str(int(time.time() * 1000) - 1000)})
    assert r["status"] == 504 and r["headers"].get("weft-error") == "deadline exceeded", r
    assert r["elapsed"] < 0.5, r
    time.sleep(0.2)
    assert len(a.requests()) == before and "/expired" not in seen_paths(a), seen_paths(a)

    # a short grpc-timeout tightens the 5 s route timeout
    r = one(vip, cg, path="/tight", headers={"grpc-timeout": "300m", "x-test-sleep": "2"},
            timeout=10)
    assert r["status"] == 504 and r["headers"].get("weft-error") in ("timeout", "deadline exceeded"), r
    assert 0.2 <= r["elapsed"] <= 1.0, r


# --------------------------------------------------------------------------
# 8. load shedding: limits.max_requests

def test_max_requests_sheds_503(weft):
    cg = weft.cgroup(tag="app")
    slow = http_backend(weft, "slow", "SLOW", delay=1.5)
    vip = vip_addr()
    d = weft.weftd([cg], [hsvc("busy", vip, [slow.addr],
                               extra=" limits = { max_requests = 2; };")])
    res = http_requests(vip, cg, n=8, concurrency=8, path="/busy", keepalive=True, detail=True,
                        timeout=10)
    ok = [r for r in res["results"] if r["status"] == 200]
    shed = [r for r in res["results"] if r["status"] == 503]
    assert len(ok) + len(shed) == 8, res
    assert len(ok) >= 2 and len(shed) >= 1, res["by"]
    for r in shed:
        assert r["headers"].get("weft-error") == "overloaded", r
        assert r["elapsed"] < 0.5, "shed at once, not queued: %r" % r
    assert mval(d, "weft_http_shed_total", service="busy") == len(shed)
    assert len(slow.requests()) == len(ok), "shed requests never reach the backend"


# --------------------------------------------------------------------------
# 9. request smuggling and parse errors: rejected, closed, never forwarded

class Strict:
    pass


@pytest.fixture(scope="module")
def strict(weft_module):
    h = weft_module
    s = Strict()
    s.h = h
    s.cg = h.cgroup(tag="strict")
    s.a = http_backend(h, "ok", "A")
    s.vip = vip_addr()
    s.d = h.weftd([s.cg], [hsvc(
        "strict", s.vip, [s.a.addr],
        extra=" http = { max_request_line = 256; max_header_bytes = 1024; max_headers = 8; };")])
    return s


H = "Host: x\r\n"
SMUGGLING = [
    ("cl_te", "POST /s HTTP/1.1\r\n" + H + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
              "0\r\n\r\nX", 400),
    ("te_cl", "POST /s HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
              "5c\r\nGPOST /smuggled HTTP/1.1\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n", 400),
    ("cl_cl_differing", "POST /s HTTP/1.1\r\n" + H + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"
                        "hello!", 400),
    ("cl_list_differing", "POST /s HTTP/1.1\r\n" + H + "Content-Length: 5, 6\r\n\r\nhello!", 400),
    ("te_gzip_chunked", "POST /s HTTP/1.1\r\n" + H + "Transfer-Encoding: gzip, chunked\r\n\r\n"
                        "0\r\n\r\n", 501),
    ("te_identity", "POST /s HTTP/1.1\r\n" + H + "Transfer-Encoding: identity\r\n\r\nhello", 501),
    ("obs_fold", "GET /s HTTP/1.1\r\n" + H + "X-A: 1\r\n  folded\r\n\r\n", 400),
    ("obs_fold_te", "POST /s HTTP/1.1\r\n" + H + "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked"
                    "\r\n\r\n0\r\n\r\n", 400),
    ("bare_cr", "GET /s HTTP/1.1\r\n" + H + "X-A: a\rb\r\n\r\n", 400),
    ("space_before_colon", "POST /s HTTP/1.1\r\n" + H + "Content-Length: 5\r\n"
                           "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400),
    ("bad_header_name", "GET /s HTTP/1.1\r\n" + H + "X-Bad@Name: 1\r\n\r\n", 400),
    ("long_request_line", "GET /" + "a" * 400 + " HTTP/1.1\r\n" + H + "\r\n", 414),
    ("header_too_big", "GET /s HTTP/1.1\r\n" + H + "X-Big: " + "b" * 2000 + "\r\n\r\n", 431),
    ("too_many_headers", "GET /s HTTP/1.1\r\n" + H + "".join("X-H%d: v\r\n" % i for i in range(20))
                         + "\r\n", 431),
    ("http_1_2", "GET /s HTTP/1.2\r\n" + H + "\r\n", 505),
    ("http_2_0", "GET /s HTTP/2.0\r\n" + H + "\r\n", 505),
]


def _backend_saw(s):
    return len(s.a.requests()) + len(s.a.bad_requests())


def _control(s, tag):
    """A valid request after a bad one: it (only it) reaches the backend."""
    before = len(s.a.requests())
    rs, _, r = raw_once(s.vip, s.cg, "GET /control-%s HTTP/1.1\r\n%sConnection: close\r\n\r\n"
                        % (tag, H))
    assert rs and rs[0]["status"] == 200, ("control request failed", r)
    reqs = s.a.requests()[before:]
    assert [q["path"] for q in reqs] == ["/control-" + tag], reqs


@pytest.mark.parametrize("case,data,status", SMUGGLING, ids=[c[0] for c in SMUGGLING])
def test_smuggling_rejected(strict, weft_module, case, data, status):
    s = strict
    saw = _backend_saw(s)
    rejected = sum(prom_get(metrics(s.d.admin), "weft_http_rejected_total", service="strict",
                            status=str(status)))
    rs, left, r = raw_once(s.vip, s.cg, data, timeout=3)
    assert rs, "no response: %r" % r
    assert rs[0]["status"] == status, (rs[0]["status"], rs[0]["reason"], r["data"][:300])
    assert "close" in rs[0]["headers"].get("connection", "").lower(), rs[0]["headers"]
    assert rs[0]["headers"].get("weft-error"), rs[0]["headers"]
    assert len(rs) == 1 and not left, "only the error response: %r" % r["data"]
    assert r["eof"] and r["error"] is None, "the connection must be closed: %r" % r
    time.sleep(0.1)
    assert _backend_saw(s) == saw, "the backend got something: %r" % s.a.events()[-3:]
    assert sum(prom_get(metrics(s.d.admin), "weft_http_rejected_total", service="strict",
                        status=str(status))) == rejected + 1
    _control(s, case)


PIPELINED = [
    # CL.TE: a front end using Content-Length would pass "0\r\n\r\nGET /smuggled" as a body
    ("pipelined_cl_te", "POST /s HTTP/1.1\r\n" + H + "Content-Length: 38\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + H
                        + "\r\n"),
    # TE.CL hidden behind whitespace before the colon
    ("pipelined_te_space", "POST /s HTTP/1.1\r\n" + H + "Content-Length: 4\r\n"
                           "Transfer-Encoding : chunked\r\n\r\n2e\r\nGET /smuggled HTTP/1.1\r\n"
                           + H + "X: \r\n0\r\n\r\n"),
]


@pytest.mark.parametrize("case,bad", PIPELINED, ids=[c[0] for c in PIPELINED])
def test_smuggling_pipelined_behind_valid(strict, weft_module, case, bad):
    s = strict
    before = len(s.a.requests())
    bad_before = len(s.a.bad_requests())
    data = "GET /valid-%s HTTP/1.1\r\n%s\r\n" % (case, H) + bad
    rs, left, r = raw_once(s.vip, s.cg, data, timeout=3)
    assert r["eof"], "the connection must be closed: %r" % r
    statuses = [x["status"] for x in rs]
    assert statuses in ([200, 400], [400]), (statuses, r["data"][:500])
    assert "close" in rs[-1]["headers"].get("connection", "").lower(), rs[-1]
    time.sleep(0.1)
    paths = [q["path"] for q in s.a.requests()[before:]]
    assert paths in ([], ["/valid-" + case]), "only the valid request may reach the backend: %r" \
        % paths
    assert len(s.a.bad_requests()) == bad_before, s.a.bad_requests()
    assert "/smuggled" not in seen_paths(s.a)
    _control(s, case)


# --------------------------------------------------------------------------
# 10. HTTP/1.1 features: pipelining, chunked, HTTP/1.0, 100-continue, reuse

@pytest.fixture(scope="module")
def plain(weft_module):
    h = weft_module
    s = Strict()
    s.cg = h.cgroup(tag="plain")
    s.a = http_backend(h, "ok", "A")
    s.vip = vip_addr()
    s.d = h.weftd([s.cg], [hsvc("plain", s.vip, [s.a.addr])])
    return s


def test_pipelined_requests_answered_in_order(plain, weft_module):
    p = plain
    data = ("GET /p1 HTTP/1.1\r\n" + H + "\r\n" + "GET /p2 HTTP/1.1\r\n" + H + "\r\n"
            + "GET /p3 HTTP/1.1\r\n" + H + "Connection: close\r\n\r\n")
    rs, left, r = raw_once(p.vip, p.cg, data)
    assert [x["status"] for x in rs] == [200, 200, 200], r["data"][:600]
    assert [x["json"]["path"] for x in rs] == ["/p1", "/p2", "/p3"], rs
    assert not left and r["eof"], r


def test_chunked_request_and_response_bodies(plain, weft_module):
    p = plain
    big = 100000
    body = http_client.body_bytes({"body_len": big})
    res = http_requests(p.vip, p.cg, method="POST", path="/chunked", body_len=big, chunked=True,
                        headers={"x-test-chunked": "1"}, detail=True, n=2)
    for r in res["results"]:
        assert r["status"] == 200, r
        assert r["body"]["body_len"] == big, r["body"]
        assert r["body"]["body_sha256"] == hashlib.sha256(body).hexdigest()
    # raw: odd chunk sizes, an extension and a trailer
    rs, left, r = raw_once(p.vip, p.cg, "POST /c2 HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n"
                           "x-test-chunked: 1\r\nConnection: close\r\n\r\n"
                           "1\r\na\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert rs and rs[0]["status"] == 200 and not left, r
    assert rs[0]["json"]["body_len"] == 17
    assert rs[0]["json"]["body_sha256"] == hashlib.sha256(b"a0123456789abcdef").hexdigest()


def test_http10(plain, weft_module):
    p = plain
    for req in ("GET /ten HTTP/1.0\r\n\r\n", "GET /ten HTTP/1.0\r\n" + H + "\r\n"):
        rs, left, r = raw_once(p.vip, p.cg, req)
        assert rs and rs[0]["status"] == 200, r
        assert rs[0]["version"] in ("HTTP/1.0", "HTTP/1.1"), rs[0]
        assert rs[0]["json"]["path"] == "/ten", rs[0]
        assert r["eof"], "HTTP/1.0 without keep-alive: closed after the response: %r" % r
    rc, out, err, _ = curl(p.cg, "--http1.0", "http://%s/ten-curl" % p.vip)
    assert rc == 0 and json.loads(out)["path"] == "/ten-curl", (rc, out, err)


def test_expect_100_continue(plain, weft_module, tmp_path):
    p = plain
    f = tmp_path / "body.bin"
    payload = os.urandom(3000)
    f.write_bytes(payload)
    rc, out, err, took = curl(p.cg, "-v", "--http1.1", "-H", "Expect: 100-continue",
                              "--data-binary", "@%s" % f, "http://%s/expect" % p.vip)
    assert rc == 0, (rc, out, err)
    assert "< HTTP/1.1 100 Continue" in err, err
    got = json.loads(out)
    assert got["body_len"] == 3000 and got["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert "expect" not in got["headers"], "Expect must be stripped: %r" % got["headers"]
    assert took < 0.9, "curl waited for its 1 s expect timeout (%.2fs): no 100 from weft" % took

    # raw: weft answers 100 before the body is sent, then the real response
    r = http_raw(p.vip, [
        {"send": "PUT /expect-raw HTTP/1.1\r\n" + H + "Content-Length: 5\r\n"
                 "Expect: 100-continue\r\nConnection: close\r\n\r\n"},
        {"recv_until": "\r\n\r\n", "timeout": 2},
        {"send": "hello"},
        {"recv_eof": True}], cgroup=p.cg)
    assert r["steps"][1]["data"].startswith("HTTP/1.1 100 Continue\r\n"), r
    rs, _ = parse_responses(r["steps"][3]["data"])
    assert rs and rs[0]["status"] == 200 and rs[0]["json"]["body_len"] == 5, r
    assert "expect" not in rs[0]["json"]["headers"]


def test_upstream_connection_reused(plain, weft_module):
    p = plain
    res = http_requests(p.vip, p.cg, n=10, path="/reuse", keepalive=True, detail=True)
    assert res["statuses"] == {"200": 10}, res
    conns = [r["body"]["conn"] for r in res["results"]]
    assert len(set(conns)) == 1, "10 requests on one client connection used upstream conns %r" \
        % conns
    reqs = [r["body"]["req"] for r in res["results"]]
    assert reqs == list(range(reqs[0], reqs[0] + 10)), reqs


def test_upstream_connection_reused_fresh(weft):
    """Counted at the backend: 10 sequential requests, 1 TCP connection."""
    cg = weft.cgroup(tag="app")
    a = http_backend(weft, "ok", "A")
    vip = vip_addr()
    weft.weftd([cg], [hsvc("web", vip, [a.addr])])
    res = http_requests(vip, cg, n=10, path="/reuse", keepalive=True)
    assert res["statuses"] == {"200": 10}, res
    assert len(a.conns()) == 1, a.conns()
    assert [(q["conn"], q["req"]) for q in a.requests()] == [(1, i) for i in range(1, 11)]


def test_upstream_pool_across_client_connections(weft):
    """The pool outlives a client connection: 10 client connections one after
    the other (one request each) reuse idle upstream connections; at most one
    per worker is opened (2 workers here)."""
    cg = weft.cgroup(tag="app")
    a = http_backend(weft, "ok", "A")
    vip = vip_addr()
    weft.weftd([cg], [hsvc("web", vip, [a.addr])], extra_agent="  workers = 2;\n")
    for i in range(10):
        r = one(vip, cg, path="/pool-%d" % i, keepalive=False)
        assert r["status"] == 200, r
    assert len(a.requests()) == 10
    assert len(a.conns()) <= 2, "10 sequential client connections opened %d upstream " \
        "connections" % len(a.conns())


def test_consecutive_5xx_eject_endpoint(weft):
    """5xx answers count toward ejection like connect failures: with
    consecutive_failures = 3, the always-503 endpoint gets exactly 3 requests
    (round-robin, no retries), then only the healthy one is used."""
    cg = weft.cgroup(tag="app")
    h, f = http_backend(weft, "ok", "H"), http_backend(weft, "fail", "F")
    vip = vip_addr()
    d = weft.weftd([cg], [hsvc("web", vip, [h.addr, f.addr], retry="attempts = 1;",
                               extra=" circuit_breaker = { consecutive_failures = 3; "
                                     "base_ejection_ms = 60000; max_ejection_ms = 60000; };")])
    res = http_requests(vip, cg, n=20, path="/cb", keepalive=True)
    assert len(f.requests()) == 3, (len(f.requests()), res)
    assert res["statuses"] == {"200": 17, "503": 3}, res
    st, _, body = admin_call(d.admin, "GET", "/services")
    assert st == 200, body
    eps = {e["address"]: e for s in json.loads(body)["services"] if s["name"] == "web"
           for e in s["endpoints"]}
    assert eps[f.addr]["state"] == "ejected", eps
    assert eps[h.addr]["state"] == "ready", eps


# --------------------------------------------------------------------------
# 11. protocol "auto"

def client_hello():
    """A syntactically valid TLS 1.2 ClientHello record (SNI api.example)."""
    sni = b"api.example"
    ext_sni = struct.pack(">HHHBH", 0, len(sni) + 5, len(sni) + 3, 0, len(sni)) + sni
    exts = ext_sni + struct.pack(">HH", 0x000d, 4) + struct.pack(">HH", 2, 0x0403)
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack(">H", 4) + b"\xc0\x2f\x00\x9c"
            + b"\x01\x00" + struct.pack(">H", len(exts)) + exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def echo_script(payload):
    text = payload.decode("latin-1")
    return [{"send": text}, {"recv_n": len(payload)}, {"shut_wr": True}, {"recv_eof": True}]


def test_auto_detection(weft):
    cg = weft.cgroup(tag="app")
    a = http_backend(weft, "ok", "A")
    ban = weft.server("banner", "BANNER")
    echo = weft.server("echo", "E")
    vip_http, vip_ban, vip_echo = vip_addr(), vip_addr(), vip_addr()
    d = weft.weftd([cg], [
        hsvc("auto-http", vip_http, [a.addr], protocol="auto", extra=routes_conf(
            'name = "tag"; match = { path_prefix = "/"; }; backends = ( { service = "auto-pool"; } ); '
            'request_headers = { add = ( { name = "x-detected"; value = "http"; } ); };')),
        pool("auto-pool", a),
        hsvc("auto-banner", vip_ban, [ban.addr], protocol="auto",
             extra=" http = { detect_timeout_ms = 100; };"),
        hsvc("auto-echo", vip_echo, [echo.addr], protocol="auto",
             extra=" http = { detect_timeout_ms = 100; };"),
    ])
    det = lambda svc, proto: mval(d, "weft_protocol_detected_total", service=svc, protocol=proto)

    r = one(vip_http, cg, path="/auto")
    assert r["status"] == 200 and r["body"]["headers"].get("x-detected") == "http", r
    assert det("auto-http", "http1") == 1

    # server-first: the banner comes within ~detect_timeout_ms, not a long stall
    res = weft.client("banner", vip_ban, cgroup=cg, timeout=5)
    assert res["ok"] and res["reply"] == "BANNER\n", res
    assert res["elapsed"] < 1.0, "banner took %.2fs through auto" % res["elapsed"]
    assert det("auto-banner", "timeout") == 1

    # TLS ClientHello, other bytes: relayed opaquely, byte-exact
    other = b"\x00\x01\x02 not http at all \xff\xfe" + os.urandom(100)
    for proto, payload in (("tls", client_hello()), ("opaque", other)):
        r = http_raw(vip_echo, echo_script(payload), cgroup=cg)
        assert r["ok"] and r["eof"], (proto, r)
        assert r["data"].encode("latin-1") == payload, (proto, "not echoed byte-exact", r)
        assert det("auto-echo", proto) == 1, (proto, metrics(d.admin))
    # the HTTP/2 preface goes to weft's HTTP/2 path (docs/http2.md): its SETTINGS answer, then
    # a GOAWAY for the garbage after the client's SETTINGS, and the connection closes
    h2 = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
          + b"\x00\x00\x08\x07\x00\x00\x00\x00\x01" + os.urandom(64))
    r = http_raw(vip_echo, [{"send": h2.decode("latin-1")}, {"shut_wr": True}, {"recv_eof": True}], cgroup=cg)
    data, types, off = r["data"].encode("latin-1"), [], 0
    while off + 9 <= len(data):
        types.append(data[off + 3])
        off += 9 + int.from_bytes(data[off:off + 3], "big")
    assert types[:1] == [4] and 7 in types and r["eof"], ("want SETTINGS ... GOAWAY", types, data[:64])
    assert det("auto-echo", "http2") == 1, metrics(d.admin)
    assert not a.bad_requests()


# --------------------------------------------------------------------------
# 12. WebSocket

def test_websocket_upgrade_tunnel(weft):
    cg = weft.cgroup(tag="app")
    w = http_backend(weft, "ws", "WS")
    vip = vip_addr()
    weft.weftd([cg], [hsvc("ws", vip, [w.addr])])
    key = base64.b64encode(os.urandom(16)).decode()
    up = ("GET /chat HTTP/1.1\r\n" + H + "Upgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key)
    # after the upgrade nothing is parsed: bytes that look like HTTP pass as is
    m1 = "\x82\x7e\x01\x00" + "".join(chr(i) for i in range(256))
    m2 = "GET /not-a-request HTTP/1.1\r\nHost: x\r\n\r\n" + "\x00" * 10
    r = http_raw(vip, [{"send": up}, {"recv_until": "\r\n\r\n"},
                       {"send": m1}, {"recv_n": len(m1)},
                       {"send": m2}, {"recv_n": len(m2)},
                       {"shut_wr": True}, {"recv_eof": True}], cgroup=cg)
    rs, _ = parse_responses(r["steps"][1]["data"])
    assert rs and rs[0]["status"] == 101, r
    assert rs[0]["headers"].get("upgrade", "").lower() == "websocket", rs[0]
    expect = base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                              .digest()).decode()
    assert rs[0]["headers"].get("sec-websocket-accept") == expect, rs[0]
    assert r["steps"][3]["data"] == m1 and r["steps"][5]["data"] == m2, r
    assert r["eof"] and r["ok"], r
    reqs = w.requests()
    assert len(reqs) == 1, reqs
    assert wait_for(lambda: w.events("ws_end"), 3)
    assert w.events("ws_end")[0]["echoed"] == len(m1) + len(m2), w.events()


# --------------------------------------------------------------------------
# 13. tracing

class Collector:
    """A Zipkin v2 collector on 127.0.0.1 (this process, a thread)."""

    def __init__(self):
        self.spans = []
        self.posts = []
        self.lock = threading.Lock()
        col = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                with col.lock:
                    col.posts.append((self.path, self.headers.get("Content-Type"), body))
                    try:
                        col.spans.extend(json.loads(body))
                    except ValueError:
                        pass
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = "127.0.0.1:%d" % self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def of(self, trace_id):
        with self.lock:
            return [s for s in self.spans if s.get("traceId") == trace_id]

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def tp_parts(v):
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})", v or "")
    assert m, "bad traceparent %r" % v
    return m.groups()


class Traced:
    pass


def traced(weft):
    """weftd exporting to a Collector: services tr (A, ok) and trf (F, flaky:
    its first request fails, the retry succeeds)."""
    t = Traced()
    t.col = Collector()
    weft._push("collector", t.col.stop)
    t.cg = weft.cgroup(tag="app")
    t.a = http_backend(weft, "ok", "A")
    t.f = http_backend(weft, "flaky", "F")
    t.vip, t.vip_f = vip_addr(), vip_addr()
    t.d = weft.weftd([t.cg], [
        hsvc("tr", t.vip, [t.a.addr]),
        hsvc("trf", t.vip_f, [t.f.addr], retry="attempts = 3; on_status = [503]; "
                                               "backoff_base_ms = 1; backoff_max_ms = 2;"),
    ], extra_root='tracing = { collector = "%s"; sample_rate = 1.0; batch_size = 100; '
                  'flush_ms = 100; };' % t.col.addr)
    return t


def spans_for(col, t, n):
    """Wait for n spans of trace t (and no more): (SERVER spans, CLIENT spans)."""
    assert wait_for(lambda: len(col.of(t)) >= n, 5), (t, col.of(t), col.posts[-3:])
    time.sleep(0.3)    # nothing more should come
    sp = col.of(t)
    assert len(sp) == n, sp
    return ([s for s in sp if s.get("kind") == "SERVER"],
            [s for s in sp if s.get("kind") == "CLIENT"])


def test_tracing_w3c_spans_and_attempts(weft):
    t = traced(weft)
    col, cg = t.col, t.cg
    # W3C traceparent, sampled
    t1, p1 = secrets.token_hex(16), secrets.token_hex(8)
    state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    r = one(t.vip, cg, path="/w3c", headers={"traceparent": "00-%s-%s-01" % (t1, p1),
                                             "tracestate": state})
    assert r["status"] == 200, r
    hd = r["body"]["headers"]
    bt, ba, bf = tp_parts(hd.get("traceparent"))
    assert (bt, bf) == (t1, "01") and ba != p1, hd
    assert hd.get("tracestate") == state, hd
    srv, cli = spans_for(col, t1, 2)
    assert len(srv) == 1 and len(cli) == 1, (srv, cli)
    assert srv[0]["parentId"] == p1, srv
    assert cli[0]["parentId"] == srv[0]["id"] and cli[0]["id"] == ba, (srv, cli, ba)
    assert srv[0]["id"] not in (p1, ba)
    assert col.posts[0][0] == "/api/v2/spans", col.posts[0][:2]

    # one CLIENT span per attempt: F fails the first attempt, the retry succeeds
    t2, p2 = secrets.token_hex(16), secrets.token_hex(8)
    r = one(t.vip_f, cg, path="/retry", headers={"traceparent": "00-%s-%s-01" % (t2, p2)})
    assert r["status"] == 200, r
    attempts = [tp_parts(q["headers"].get("traceparent")) for q in t.f.requests()]
    assert len(attempts) == 2 and all(x[0] == t2 for x in attempts), attempts
    srv, cli = spans_for(col, t2, 3)
    assert len(srv) == 1 and len(cli) == 2, (srv, cli)
    assert srv[0]["parentId"] == p2
    assert all(c["parentId"] == srv[0]["id"] for c in cli), (srv, cli)
    assert sorted(c["id"] for c in cli) == sorted(x[1] for x in attempts), (cli, attempts)

    total = len(col.spans)
    assert total == 5, col.spans
    assert wait_for(lambda: mval(t.d, "weft_tracing_spans_exported_total") >= total, 3)
    assert mval(t.d, "weft_tracing_spans_dropped_total") == 0


def test_tracing_b3_multi_headers(weft):
    """B3 multi headers, 128-bit and 64-bit trace ids (the latter written back
    as 16 hex digits), a few requests each."""
    t = traced(weft)
    for bits in (128, 64, 128, 64):
        t3, p3 = secrets.token_hex(bits // 8), secrets.token_hex(8)
        r = one(t.vip, t.cg, path="/b3-%d" % bits,
                headers={"X-B3-TraceId": t3, "X-B3-SpanId": p3, "X-B3-Sampled": "1"})
        assert r["status"] == 200, (bits, r)
        hd = r["body"]["headers"]
        assert hd.get("x-b3-traceid") == t3 and hd.get("x-b3-sampled") == "1", (bits, hd)
        a3 = hd.get("x-b3-spanid")
        assert a3 and re.fullmatch("[0-9a-f]{16}", a3) and a3 != p3, (bits, hd)
        srv, cli = spans_for(t.col, t3, 2)
        assert len(srv) == 1 and len(cli) == 1, (srv, cli)
        assert srv[0]["parentId"] == p3, srv
        assert cli[0]["parentId"] == srv[0]["id"] and cli[0]["id"] == a3, (srv, cli, a3)


def test_tracing_unsampled_and_new_trace(weft):
    t = traced(weft)
    col = t.col
    # not sampled: propagated, nothing exported
    t4, p4 = secrets.token_hex(16), secrets.token_hex(8)
    r = one(t.vip, t.cg, path="/unsampled", headers={"traceparent": "00-%s-%s-00" % (t4, p4)})
    assert r["status"] == 200, r
    bt, _, bf = tp_parts(r["body"]["headers"].get("traceparent"))
    assert (bt, bf) == (t4, "00"), r["body"]["headers"]

    # no incoming context: a new sampled trace (sent after the unsampled one,
    # so once its spans are in, the unsampled one's would be too)
    r = one(t.vip, t.cg, path="/fresh")
    assert r["status"] == 200, r
    t5, a5, f5 = tp_parts(r["body"]["headers"].get("traceparent"))
    assert f5 == "01" and t5 != t4
    srv, cli = spans_for(col, t5, 2)
    assert len(srv) == 1 and len(cli) == 1, (srv, cli)
    assert not srv[0].get("parentId"), srv
    assert cli[0]["parentId"] == srv[0]["id"] and cli[0]["id"] == a5
    assert col.of(t4) == [], "an unsampled request exported spans: %r" % col.of(t4)
    assert len(col.spans) == 2, col.spans
