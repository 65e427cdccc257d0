# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Clean shutdown: SIGTERM detaches everything and removes the pins."""

import os
import signal
import time

from weft_harness import attach_kind, http_get, service, vip_addr, weft_progs


def test_sigterm_detaches_and_unpins(weft):
    parent = weft.cgroup(tag="app")
    child = weft.cgroup(parent, tag="ctr")
    a = weft.server("http", "A")
    vip = vip_addr()
    kp = weft.server("http", "KUBEPROXY", listen=vip)
    d = weft.weftd([parent], [service("web", [vip], [a.addr])])

    res = weft.client("http", vip, cgroup=child)
    assert res["ok"] and res["reply"]["server"] == "A", res
    attached = weft_progs(parent.path)
    assert attached, "bpftool cgroup show %s lists no weft program" % parent.path
    kinds = {attach_kind(p) for p in attached}
    assert {"connect4", "connect6", "getpeername4", "getpeername6", "sock_ops"} <= kinds, attached
    assert os.path.isdir(d.pin_path)
    assert http_get(d.admin, "/ready")[0] == 200

    t0 = time.monotonic()
    rc = d.terminate(timeout=10)
    took = time.monotonic() - t0
    assert rc == 0, "weftd exit code after SIGTERM: %r" % rc
    assert took < 5, "SIGTERM took %.1fs" % took
    assert not os.path.exists(d.pin_path), os.listdir(d.pin_path)
    assert weft_progs(parent.path) == [], weft_progs(parent.path)
    assert weft_progs(child.path, effective=True) == []

    # Nothing intercepts any more: the client reaches the VIP itself.
    for cg in (parent, child):
        res = weft.client("http", vip, cgroup=cg)
        assert res["ok"] and res["reply"]["server"] == "KUBEPROXY", res
        assert res["reply"]["peer"] == res["sockname"], res
    assert len(a.conns()) == 1 and len(kp.conns()) == 2


def test_sigterm_restart_cycle(weft):
    """Stop and start again with the same config (pins reused by name)."""
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [a.addr])])
    for _ in range(2):
        res = weft.client("http", vip, cgroup=cg)
        assert res["ok"] and res["reply"]["server"] == "A", res
        assert d.terminate() == 0
        assert not os.path.exists(d.pin_path)
        d.start()
    res = weft.client("http", vip, cgroup=cg)
    assert res["ok"] and res["reply"]["server"] == "A", res


def test_sigterm_drains_inflight_connection(weft):
    """SIGTERM while a proxied connection is open (idle, then active): new
    connects stop being redirected at once, the open one finishes byte-exact
    through weftd, then weftd exits 0 and unpins."""
    cg = weft.cgroup(tag="app")
    half = weft.server("eofreply", "EOFREPLY")
    a = weft.server("http", "A")
    vip_half, vip_web = vip_addr(), vip_addr()
    kp = weft.server("http", "KUBEPROXY", listen=vip_web)
    d = weft.weftd([cg], [service("half", [vip_half], [half.addr]),
                          service("web", [vip_web], [a.addr])])
    assert weft.client("http", vip_web, cgroup=cg)["reply"]["server"] == "A"

    slow = weft.client_async("halfclose", vip_half, cgroup=cg, nbytes=100000,
                             extra=["--delay", "1.5"])
    assert half.wait_event(lambda e: e["event"] == "conn", timeout=5), "no connection upstream"
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    assert d.running(), "weftd exited at once with a connection in flight"
    res = weft.client("http", vip_web, cgroup=cg)            # new connect while draining
    assert res["ok"] and res["reply"]["server"] == "KUBEPROXY", res
    assert http_get(d.admin, "/ready")[0] == 503              # draining: not ready
    assert time.monotonic() - t0 < 1.4, "probes too late to be meaningful"

    r = slow.result()
    assert r["ok"] and r["eof"], r
    assert r["reply"] == "%d %s\n" % (r["sent_bytes"], r["sent_sha256"]), r
    assert r["peername"] == vip_half
    rc = d.proc.wait(10)
    took = time.monotonic() - t0
    d.returncodes.append(rc)
    assert rc == 0, rc
    assert 1.2 < took < 6, "exit %.2fs after SIGTERM (the open connection needed ~1.5s)" % took
    assert not os.path.exists(d.pin_path)
    assert len(kp.conns()) == 1
