# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The HTTP path against hostile or merely unusual peers (issue 18, items 4,
6 and 9), end to end through the kernel hooks:

- a non-idempotent request that reached an endpoint is never sent again
  automatically (RFC 9112 9.3.1), an idempotent one is, and so is any
  request on a route with retryable = true;
- no total request timeout by default: a slow download outlives what used to
  be the 15 s default (scaled down here), while http.stream_idle_ms ends a
  request on which no byte moves, and an explicit request_timeout_ms still
  cuts a download;
- every state of a client connection has a bound: a connection that never
  sends a byte is closed after http.head_timeout_ms, a keep-alive connection
  idle between requests after http.keepalive_idle_ms.

Backends are tests/e2e/http_backend.py (modes drop2 and trickle were added for
these tests); clients are tests/e2e/http_client.py and a small socket script,
each a process in the enrolled cgroup. Traffic stays on 127.0.0.0/8.
"""

import json
import subprocess
import time

from weft_harness import (PYTHON, admin_json, http_backend, http_raw, http_requests, in_cgroup_argv, metrics,
                          parse_responses, prom_get, run_prefix, service, spawn, vip_addr, wait_for)


def mval(d, name, **labels):
    return sum(prom_get(metrics(d.admin), name, **labels))


def hsvc(name, vip, endpoints, **kw):
    return service(name, [vip], endpoints, protocol="http", **kw)


def requests_on_one_conn(vip, cg, reqs, timeout=10.0):
    """reqs, one after the other on one keep-alive client connection -> results."""
    res = http_requests(vip, cg, detail=True, keepalive=True, requests=reqs, timeout=timeout)
    assert res.get("results") and len(res["results"]) == len(reqs), res
    return res["results"]


def seen(backend):
    """(method, path, backend connection, request number on it) of every request the backend read."""
    return [(e["method"], e["path"], e["conn"], e["req"]) for e in backend.requests()]


# --------------------------------------------------------------------------
# item 4: a request that may have been received is re-sent only when that is safe

def test_non_idempotent_request_not_resent_after_pooled_connection_closes(weft):
    """Backend drop2 reads the 2nd request of every connection and closes
    without answering. On one client connection, each first request makes a
    pooled upstream connection; the next request reuses it and is dropped.
    A POST without a body and a POST with Content-Length: 0 reach the backend
    once and the client gets 502 (weft-error: upstream reset); a GET is
    retried on a new connection and succeeds; a POST on a route with
    retryable = true is retried too."""
    cg = weft.cgroup(tag="app")
    b = http_backend(weft, "drop2", "B")
    vip = vip_addr()
    d = weft.weftd([cg], [hsvc("pay", vip, [b.addr], retry="attempts = 3; backoff_base_ms = 1; backoff_max_ms = 2;",
                               extra=' routes = ( { name = "safe"; match = { path_prefix = "/retryable/"; }; '
                                     'retryable = true; } );')])
    reqs = [
        {"method": "GET", "path": "/w1"},
        {"method": "POST", "path": "/charge"},                # no body, no Content-Length
        {"method": "GET", "path": "/w2"},
        {"method": "POST", "path": "/charge0", "body": ""},   # Content-Length: 0
        {"method": "GET", "path": "/w3"},
        {"method": "GET", "path": "/get"},
        {"method": "POST", "path": "/retryable/charge"},
    ]
    rs = requests_on_one_conn(vip, cg, reqs)
    got = [(r["path"], r["status"], (r.get("headers") or {}).get("weft-error")) for r in rs]
    assert got == [("/w1", 200, None), ("/charge", 502, "upstream reset"), ("/w2", 200, None),
                   ("/charge0", 502, "upstream reset"), ("/w3", 200, None), ("/get", 200, None),
                   ("/retryable/charge", 200, None)], (got, seen(b))
    # what the backend read, connection by connection: each POST /charge* once
    assert seen(b) == [
        ("GET", "/w1", 1, 1), ("POST", "/charge", 1, 2),
        ("GET", "/w2", 2, 1), ("POST", "/charge0", 2, 2),
        ("GET", "/w3", 3, 1), ("GET", "/get", 3, 2), ("GET", "/get", 4, 1),
        ("POST", "/retryable/charge", 4, 2), ("POST", "/retryable/charge", 5, 1)], seen(b)
    assert mval(d, "weft_http_requests_total", service="pay", route="default", **{"class": "5xx"}) == 2
    assert mval(d, "weft_http_requests_total", service="pay", route="safe", **{"class": "2xx"}) == 1


def test_request_dropped_on_new_connection_retried_only_if_idempotent(weft):
    """On a fresh upstream connection (nothing pooled), a request the backend
    reads and drops (x-test-drop): a POST reaches it once and gets 502 with
    no retry counted; a GET is retried as a counted retry up to
    retry.attempts (3 reads, then 502)."""
    cg = weft.cgroup(tag="app")
    b = http_backend(weft, "drop2", "B")
    vip = vip_addr()
    d = weft.weftd([cg], [hsvc("pay", vip, [b.addr], retry="attempts = 3; backoff_base_ms = 1; backoff_max_ms = 2;")])
    drop = {"x-test-drop": "1"}
    rs = requests_on_one_conn(vip, cg, [{"method": "POST", "path": "/p", "body": "x", "headers": drop}])
    assert [(r["status"], r["headers"].get("weft-error")) for r in rs] == [(502, "upstream reset")], rs
    assert [(m, p) for m, p, _, _ in seen(b)] == [("POST", "/p")], seen(b)
    assert mval(d, "weft_http_retries_total", service="pay") == 0
    rs = requests_on_one_conn(vip, cg, [{"method": "GET", "path": "/g", "headers": drop}])
    assert [r["status"] for r in rs] == [502], rs
    assert [(m, p) for m, p, _, _ in seen(b)] == [("POST", "/p")] + [("GET", "/g")] * 3, seen(b)
    assert mval(d, "weft_http_retries_total", service="pay") == 2


# --------------------------------------------------------------------------
# item 9: no total request timeout by default; stream idle instead

TRICKLE_BYTES = 20 * 20480       # trickle's default body: 20 chunks of 20 KB, one every 200 ms (~4 s)


def test_slow_download_not_cut_by_default_but_by_explicit_timeout(weft):
    """A ~4 s download (20 KB every 200 ms) through a service that sets no
    timeout arrives whole: by default there is no total request timeout
    (/config shows request_timeout_ms 0; it was 15 s, which cut long
    downloads and long polls). With request_timeout_ms = 2000 the same
    download is cut: its head was forwarded, so the client connection is
    reset (the client sees a truncated body) and the timeout is counted."""
    cg = weft.cgroup(tag="app")
    b = http_backend(weft, "trickle", "T")
    v_def, v_total = vip_addr(), vip_addr()
    d = weft.weftd([cg], [hsvc("dl", v_def, [b.addr]),
                          hsvc("dl-total", v_total, [b.addr], extra=" http = { request_timeout_ms = 2000; };")])
    svcs = {s["name"]: s for s in admin_json(d.admin, "/config")["services"]}
    assert svcs["dl"]["http"]["request_timeout_ms"] == 0, svcs["dl"]["http"]
    r = requests_on_one_conn(v_def, cg, [{"path": "/big"}], timeout=15)[0]
    assert r["status"] == 200 and not r["error"], r
    assert len(r["body"]) == TRICKLE_BYTES, len(r["body"])
    assert r["elapsed"] >= 3.0, r["elapsed"]     # it really was slow: longer than the 2 s below
    r = requests_on_one_conn(v_total, cg, [{"path": "/big"}], timeout=15)[0]
    assert r["error"] in ("IncompleteRead", "ECONNRESET"), r
    assert r["elapsed"] >= 1.5, r["elapsed"]
    assert mval(d, "weft_http_timeouts_total", service="dl") == 0
    assert mval(d, "weft_http_timeouts_total", service="dl-total") == 1


def test_stream_idle_ends_stalled_request_not_slow_one(weft):
    """http.stream_idle_ms = 500: a backend that reads the request and sends
    nothing gets the client a 504 (weft-error: stream idle timeout) long
    before its 3 s sleep ends; one that sends its head and part of the body
    and then stalls gets the client connection reset; both are counted in
    weft_http_timeouts_total. A ~4 s download whose bytes keep coming every
    200 ms is not cut. A client that stops halfway through a request body
    gets 408 (weft-error: request body timeout). The defaults (/config):
    stream_idle_ms 300000, keepalive_idle_ms 60000."""
    cg = weft.cgroup(tag="app")
    ok = http_backend(weft, "ok", "OK")
    tr = http_backend(weft, "trickle", "T")
    v1, v2, v3 = vip_addr(), vip_addr(), vip_addr()
    idle = " http = { stream_idle_ms = 500; };"
    d = weft.weftd([cg], [hsvc("stall", v1, [ok.addr], extra=idle), hsvc("stall-body", v2, [tr.addr], extra=idle),
                          hsvc("def", v3, [ok.addr])])
    http = {s["name"]: s for s in admin_json(d.admin, "/config")["services"]}["def"]["http"]
    assert (http["stream_idle_ms"], http["keepalive_idle_ms"]) == (300000, 60000), http
    r = requests_on_one_conn(v1, cg, [{"path": "/s", "headers": {"x-test-sleep": "3"}}])[0]
    assert r["status"] == 504 and r["headers"].get("weft-error") == "stream idle timeout", r
    assert r["elapsed"] < 2.5, r["elapsed"]
    assert mval(d, "weft_http_timeouts_total", service="stall") == 1
    r = requests_on_one_conn(v2, cg, [{"path": "/b", "headers": {"x-test-stall-after": "2"}}])[0]
    assert r["error"] in ("IncompleteRead", "ECONNRESET"), r
    assert mval(d, "weft_http_timeouts_total", service="stall-body") == 1
    r = requests_on_one_conn(v2, cg, [{"path": "/big"}], timeout=15)[0]
    assert r["status"] == 200 and not r["error"] and len(r["body"]) == TRICKLE_BYTES, (r["status"], r["error"])
    assert r["elapsed"] >= 3.0, r["elapsed"]
    assert mval(d, "weft_http_timeouts_total", service="stall-body") == 1
    # a client that stops sending its (buffered) body: 408, and the endpoint never sees it
    before = len(ok.requests())
    r = http_raw(v1, [{"send": "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"},
                      {"recv_eof": True}], cgroup=cg, timeout=5)
    rs = parse_responses(r["data"])[0]
    assert [(x["status"], x["headers"].get("weft-error")) for x in rs] == [(408, "request body timeout")], r
    assert r["eof"], r
    assert len(ok.requests()) == before
    assert mval(d, "weft_http_rejected_total", service="stall", status="408") == 1


# --------------------------------------------------------------------------
# item 6 (HTTP): every state of a client connection has a timeout

SILENT_CLIENT = r"""
import json, select, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
n, wait = int(sys.argv[2]), float(sys.argv[3])
t0 = time.monotonic()
socks = [socket.create_connection((host, int(port)), timeout=5) for _ in range(n)]
opened = time.monotonic() - t0
p = select.poll()
fds = {}
for i, s in enumerate(socks):
    s.setblocking(False)
    p.register(s.fileno(), select.POLLIN)
    fds[s.fileno()] = i
ends, data, resets = {}, 0, 0
deadline = time.monotonic() + wait
while len(ends) < n and time.monotonic() < deadline:
    for fd, _ in p.poll(100):
        i = fds[fd]
        try:
            d = socks[i].recv(4096)
        except OSError:
            d, resets = b"", resets + 1
        if d:
            data += len(d)
            continue
        ends[i] = time.monotonic() - t0
        p.unregister(fd)
print(json.dumps({"n": n, "opened_s": opened, "closed": len(ends), "resets": resets, "data": data,
                  "first_s": min(ends.values()) if ends else None, "last_s": max(ends.values()) if ends else None}))
"""


def silent_clients(vip, cg, n, wait):
    """n connections to vip (in cg) that never send a byte; waits up to wait s
    for weft to close them all -> {n, opened_s, closed, resets, data, first_s, last_s}."""
    argv = [PYTHON, "-c", SILENT_CLIENT, vip, str(n), str(wait), run_prefix() + "silent"]
    p = spawn(in_cgroup_argv(cg, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=wait + 30)
    assert p.returncode == 0, err
    return json.loads(out)


def test_silent_new_connections_closed_after_head_timeout(weft):
    """200 client connections to an HTTP service that never send a byte are
    all closed by weft (a clean close, no answer) after http.head_timeout_ms
    (1 s here), counted as weft_http_idle_closed_total{state="new"}; none is
    left in /conns. A client that sends its request within the time is served."""
    cg = weft.cgroup(tag="app")
    b = http_backend(weft, "ok", "B")
    vip = vip_addr()
    d = weft.weftd([cg], [hsvc("web", vip, [b.addr], extra=" http = { head_timeout_ms = 1000; };")])
    res = silent_clients(vip, cg, 200, wait=10)
    assert res["closed"] == 200 and res["resets"] == 0 and res["data"] == 0, res
    assert res["first_s"] >= 0.8, res
    assert mval(d, "weft_http_idle_closed_total", service="web", state="new") == 200
    assert mval(d, "weft_http_idle_closed_total", service="web", state="keepalive") == 0
    assert mval(d, "weft_http_rejected_total", service="web", status="408") == 0
    assert wait_for(lambda: not [c for c in admin_json(d.admin, "/conns")["conns"] if c.get("service") == "web"], 5)
    assert not b.conns(), "a silent client made weft dial the backend"
    r = http_raw(vip, [{"sleep": 0.3}, {"send": "GET /late HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"},
                       {"recv_eof": True}], cgroup=cg)
    assert [x["status"] for x in parse_responses(r["data"])[0]] == [200], r


def test_idle_keepalive_connection_closed(weft):
    """After a response, a keep-alive client connection that sends nothing is
    closed after http.keepalive_idle_ms (500 ms here) and counted as
    weft_http_idle_closed_total{state="keepalive"}; with the defaults
    (60 s) the same connection is still usable after 1.5 s of idling."""
    cg = weft.cgroup(tag="app")
    b = http_backend(weft, "ok", "B")
    v_short, v_def = vip_addr(), vip_addr()
    d = weft.weftd([cg], [hsvc("short", v_short, [b.addr], extra=" http = { keepalive_idle_ms = 500; };"),
                          hsvc("def", v_def, [b.addr])])
    r = http_raw(v_short, [{"send": "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"}, {"recv_until": "}\n"},
                           {"recv_eof": True, "timeout": 10}], cgroup=cg, timeout=10)
    assert r["steps"][2]["eof"] and not r["steps"][2]["data"], r
    assert 0.3 <= r["steps"][2]["elapsed"] < 5, r["steps"][2]
    assert [x["status"] for x in parse_responses(r["data"])[0]] == [200], r
    assert mval(d, "weft_http_idle_closed_total", service="short", state="keepalive") == 1
    assert mval(d, "weft_http_idle_closed_total", service="short", state="new") == 0
    r = http_raw(v_def, [{"send": "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"}, {"recv_until": "}\n"}, {"sleep": 1.5},
                         {"send": "GET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"}, {"recv_eof": True}],
                 cgroup=cg, timeout=10)
    assert [x["status"] for x in parse_responses(r["data"])[0]] == [200, 200], r
    assert mval(d, "weft_http_idle_closed_total", service="def") == 0
