# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A dead agent must not take the applications with it.

kill -9 leaves the pins (and so the attached programs) behind; once the
heartbeat is older than heartbeat_stale_ms the programs stop redirecting:
fail_mode "open" lets the connect go to the VIP itself (here a listener bound
on the VIP stands in for kube-proxy), fail_mode "closed" refuses it. A
restarted weftd with the same config takes over the stale pins.
"""

import os
import time

from weft_harness import read_agent_state, service, vip_addr, wait_for, weft_progs

STALE_MS = 1000
MARGIN_S = 3.0   # heartbeat period (1 s) + scheduling slack


def _mesh(weft, fail_mode):
    cg = weft.cgroup(tag="app")
    a, b = weft.server("http", "A"), weft.server("http", "B")
    vip = vip_addr()
    kp = weft.server("http", "KUBEPROXY", listen=vip)
    d = weft.weftd([cg], [service("web", [vip], [a.addr, b.addr])],
                   fail_mode=fail_mode, stale_ms=STALE_MS)
    return cg, a, b, vip, kp, d


def _reply(res):
    return res["reply"]["server"] if res.get("ok") and res.get("reply") else None


def test_healthy_agent_never_goes_stale(weft):
    """With the smallest stale window (1000 ms) a live weftd keeps its
    heartbeat fresh: ~3 s of connects, every one intercepted."""
    cg, a, b, vip, kp, d = _mesh(weft, "open")
    t_end = time.monotonic() + 3.0
    seen = []
    while time.monotonic() < t_end:
        seen.append(_reply(weft.client("http", vip, cgroup=cg)))
        time.sleep(0.05)
    assert seen and all(s in ("A", "B") for s in seen), seen
    assert kp.conns() == [], "connects went direct while weftd was alive: %r" % seen
    st = d.stats()
    assert st["skipped_stale"] == 0 and st["refused_stale"] == 0, st


def test_heartbeat_refreshed_well_within_stale_window(weft):
    """Sample the age of weft_agent.heartbeat_ns (CLOCK_MONOTONIC, as
    bpf_ktime_get_ns) for 2.5 s: a live agent must keep it clearly below
    heartbeat_stale_ms, or connects fail open/closed while it is healthy.
    Allowed: stale window minus 250 ms of scheduling slack."""
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    d = weft.weftd([cg], [service("web", [vip_addr()], [a.addr])], stale_ms=STALE_MS)
    st = read_agent_state(d.pin_path)
    assert st["stale_after_ns"] == STALE_MS * 1000000, st
    assert st["enabled"] == 1, st
    ages = []
    t_end = time.monotonic() + 2.5
    while time.monotonic() < t_end:
        hb = read_agent_state(d.pin_path)["heartbeat_ns"]
        ages.append((time.clock_gettime_ns(time.CLOCK_MONOTONIC) - hb) / 1e6)
        time.sleep(0.01)
    limit_ms = STALE_MS - 250
    assert max(ages) < limit_ms, (
        "heartbeat age reached %.0f ms with heartbeat_stale_ms=%d (limit %d ms): the "
        "agent beats too rarely for its stale window; %d samples" % (max(ages), STALE_MS,
                                                                     limit_ms, len(ages)))


def test_kill9_fails_open_then_restart_resumes(weft):
    cg, a, b, vip, kp, d = _mesh(weft, "open")
    assert _reply(weft.client("http", vip, cgroup=cg)) in ("A", "B")
    progs = weft_progs(cg.path)
    assert progs, "no weft programs attached to %s" % cg.path

    assert d.kill9() == -9
    t_kill = time.monotonic()
    # Pins and attachments survive the agent.
    assert os.path.isdir(d.pin_path) and os.path.exists(os.path.join(d.pin_path, "weft_stats"))
    assert {p["id"] for p in weft_progs(cg.path)} == {p["id"] for p in progs}

    outcomes = []

    def reached_kp():
        res = weft.client("http", vip, cgroup=cg, timeout=3)
        outcomes.append(_reply(res) or res["error"])
        return _reply(res) == "KUBEPROXY"
    assert wait_for(reached_kp, STALE_MS / 1000 + MARGIN_S, 0.1), \
        "enrolled client never reached the VIP directly after kill -9: %r" % outcomes
    took = time.monotonic() - t_kill
    # The killed agent's listeners left weft_listeners with their sockets, so
    # not one connect was redirected to a port where nothing listens.
    assert all(o == "KUBEPROXY" for o in outcomes), outcomes
    assert took <= STALE_MS / 1000 + MARGIN_S
    for _ in range(2):  # and it stays direct while the agent is down
        res = weft.client("http", vip, cgroup=cg)
        assert _reply(res) == "KUBEPROXY", res
        assert res["reply"]["peer"] == res["sockname"], res      # direct
    assert d.stats()["skipped_no_listener"] >= 3

    n_ab = len(a.conns()) + len(b.conns())
    n_kp = len(kp.conns())
    d.start()   # same config, stale pins still there
    for _ in range(2):
        res = weft.client("http", vip, cgroup=cg)
        assert _reply(res) in ("A", "B"), "interception did not resume: %r" % res
        assert res["peername"] == vip
    assert len(a.conns()) + len(b.conns()) == n_ab + 2
    assert len(kp.conns()) == n_kp

    # A clean stop now also removes what the killed instance left.
    assert d.terminate() == 0
    assert not os.path.exists(d.pin_path)
    assert weft_progs(cg.path) == [], weft_progs(cg.path)
    assert _reply(weft.client("http", vip, cgroup=cg)) == "KUBEPROXY"


def test_kill9_fail_closed_refuses(weft):
    cg, a, b, vip, kp, d = _mesh(weft, "closed")
    assert _reply(weft.client("http", vip, cgroup=cg)) in ("A", "B")
    assert d.kill9() == -9

    outcomes = []

    def refused_by_bpf():
        res = weft.client("http", vip, cgroup=cg, timeout=3)
        outcomes.append(_reply(res) or res["error"])
        st = d.stats()
        return st["refused_stale"] + st["refused_no_listener"] >= 1
    assert wait_for(refused_by_bpf, STALE_MS / 1000 + MARGIN_S, 0.1), \
        "refused_no_listener never counted after kill -9: %r stats=%r" % (outcomes, d.stats())
    assert all(o == "ECONNREFUSED" for o in outcomes), outcomes
    for _ in range(2):
        res = weft.client("http", vip, cgroup=cg)
        assert not res["ok"] and res["error"] == "ECONNREFUSED" and res["stage"] == "connect", res
    assert kp.conns() == [], "fail_mode closed let a connect through to the VIP"
    st = d.stats()
    assert st["refused_no_listener"] + st["refused_stale"] >= 3, st
    assert st["skipped_stale"] == 0 and st["skipped_no_listener"] == 0, st

    # Outside the enrolled cgroup nothing changes: the VIP listener answers.
    assert _reply(weft.client("http", vip)) == "KUBEPROXY"
