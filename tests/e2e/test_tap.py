# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""weftctl tap (issue 16): the HTTP requests of a run appear live, one line
each, with method, authority, path, status, latency, endpoint and retries;
filters (service, path prefix, status class) hold; header values only when
asked and never the secrets; a reader that never reads loses events
(counted) while the data path keeps its pace; readers are bounded."""

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from weft_harness import (http_backend, http_requests, metrics, prom_get, service, split_addr, vip_addr,
                          wait_for)


class Tap:
    """weftctl tap ARGS running in the background; .lines collected."""

    def __init__(self, weft, d, *args):
        self.lines = []
        self.p = subprocess.Popen([weft.env.weftctl, "-a", d.admin, "tap"] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        weft._push("weftctl tap", self.stop)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(5)

    def json(self):
        return [json.loads(l) for l in self.lines if l.startswith("{") and '"time"' in l]


@pytest.fixture
def mesh(weft):
    if not os.access(weft.env.weftctl, os.X_OK):
        pytest.fail("weftctl is missing: run make")
    m = type("Mesh", (), {})()
    m.cg = weft.cgroup(tag="tap")
    m.a = http_backend(weft, "ok", "a")
    m.b = http_backend(weft, "ok", "b")
    m.vip_a, m.vip_b = vip_addr(), vip_addr()
    m.d = weft.weftd([m.cg], [service("web", [m.vip_a], [m.a.addr], protocol="http"),
                              service("api", [m.vip_b], [m.b.addr], protocol="http")])
    return m


def readers(d):
    return wait_for(lambda: prom_get(d.metrics(), "weft_tap_readers"), 3)


def test_tap_shows_the_requests_of_a_run(weft, mesh):
    m = mesh
    t_all = Tap(weft, m.d, "--json", "--headers")
    t_web5 = Tap(weft, m.d, "web", "--status", "5xx", "--path", "/fail")
    t_text = Tap(weft, m.d, "-o", "wide")
    assert wait_for(lambda: prom_get(metrics(m.d.admin), "weft_tap_readers") == [3], 5), metrics(m.d.admin)
    r = http_requests(m.vip_a, m.cg, n=5, path="/hello?x=1", keepalive=True,
                      headers={"Authorization": "Bearer s3cret", "Cookie": "id=s3cret", "X-Trace": "yes"})
    assert r["rc"] == 0, r
    r = http_requests(m.vip_a, m.cg, n=3, path="/fail/now", headers={"x-test-status": "503"})
    r = http_requests(m.vip_b, m.cg, n=2, path="/other")
    assert wait_for(lambda: len(t_all.json()) >= 10, 5), t_all.lines
    evs = t_all.json()
    hello = [e for e in evs if e["path"] == "/hello?x=1"]
    assert len(hello) == 5, evs
    e = hello[0]
    assert (e["service"], e["method"], e["status"], e["endpoint"], e["retries"]) == \
        ("web", "GET", 200, m.a.addr, 0), e
    assert e["latency_ms"] >= 0 and e["cgroup"] == m.cg.path and e["pid"] > 0, e
    hdrs = "\n".join(e["headers"])
    assert "X-Trace: yes" in hdrs or "x-trace: yes" in hdrs.lower(), hdrs
    assert "s3cret" not in json.dumps(evs), "a secret header value reached the tap"
    assert "Authorization: <redacted>" in hdrs and "Cookie: <redacted>" in hdrs, hdrs
    assert len([x for x in evs if x["status"] == 503]) == 3
    assert len([x for x in evs if x["service"] == "api"]) == 2
    # the filtered reader: only web's 5xx under /fail
    assert wait_for(lambda: len([l for l in t_web5.lines if not l.startswith("#")]) >= 3, 5), t_web5.lines
    time.sleep(0.3)
    rows = [l for l in t_web5.lines if not l.startswith("#")]
    assert len(rows) == 3 and all(" web " in l and "/fail/now" in l and " 503 " in l for l in rows), rows
    assert all(len(l) < 80 for l in rows), rows
    # -o wide: endpoint and workload
    assert wait_for(lambda: any("ep=%s" % m.b.addr in l for l in t_text.lines), 5), t_text.lines
    assert all("s3cret" not in l and "X-Trace" not in l for l in t_text.lines)  # no header values unasked
    for t in (t_all, t_web5, t_text):
        t.stop()
    assert wait_for(lambda: prom_get(metrics(m.d.admin), "weft_tap_readers") == [0], 5)


def test_a_reader_that_never_reads_costs_events_not_latency(weft, mesh):
    """A tap whose reader never reads: weftd drops its events (counted) once
    256 KiB wait for it; requests keep their pace; its memory is bounded."""
    m = mesh
    fam, host, port = split_addr(m.d.admin)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    s.sendall(b"GET /tap?headers=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    weft._push("tap socket", s.close)
    assert wait_for(lambda: prom_get(metrics(m.d.admin), "weft_tap_readers") == [1], 5)
    t0 = time.monotonic()
    r = http_requests(m.vip_a, m.cg, n=3000, path="/" + "p" * 150, keepalive=True, concurrency=4,
                      headers={"X-Pad": "v" * 400})
    took = time.monotonic() - t0
    assert r["rc"] == 0, r
    assert wait_for(lambda: sum(prom_get(metrics(m.d.admin), "weft_tap_events_total", result="dropped_reader")) > 0,
                    5), metrics(m.d.admin)
    def counts():
        ms = metrics(m.d.admin)
        return (sum(prom_get(ms, "weft_tap_events_total", result="sent")),
                sum(prom_get(ms, "weft_tap_events_total", result="dropped_reader")) +
                sum(prom_get(ms, "weft_tap_events_total", result="dropped_ring")))
    # every request accounted for, once the feed has drained (every 50 ms)
    assert wait_for(lambda: sum(counts()) == 3000, 5), counts()
    sent, dropped = counts()
    print("3000 requests in %.2f s with a stalled tap: %d sent, %d dropped" % (took, sent, dropped))
    s.close()
    assert wait_for(lambda: prom_get(metrics(m.d.admin), "weft_tap_readers") == [0], 5)
    assert m.d.running()


def test_tap_refusals(weft, mesh):
    m = mesh
    r = subprocess.run([weft.env.weftctl, "-a", m.d.admin, "tap", "--status", "9xx"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1 and "5xx" in r.stderr, (r.stdout, r.stderr)
    taps = [Tap(weft, m.d) for _ in range(8)]
    assert wait_for(lambda: prom_get(metrics(m.d.admin), "weft_tap_readers") == [8], 5)
    r = subprocess.run([weft.env.weftctl, "-a", m.d.admin, "tap"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "taps are open already" in r.stderr, (r.stdout, r.stderr)
    for t in taps:
        t.stop()
