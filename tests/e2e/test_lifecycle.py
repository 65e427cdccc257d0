# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Clean shutdown: SIGTERM detaches everything and removes the pins."""

import os
import time

from weft_harness import service, vip_addr, weft_progs


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
    kinds = {p.get("attach_type") for p in attached}
    assert {"connect4", "connect6"} <= kinds, attached
    assert os.path.isdir(d.pin_path)

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
