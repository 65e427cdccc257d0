# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""agent.workers: several event loops share the outbound port (SO_REUSEPORT)."""

import os
import re
import socket
import subprocess

import pytest

from weft_harness import free_port, http_get, service, vip_addr

from test_balancing import loop, services_of


def accepted_per_worker(d):
    st, body = http_get(d.admin, "/metrics")
    assert st == 200
    return {int(m.group(1)): int(m.group(2)) for m in
            re.finditer(r'^weft_worker_accepted_total\{worker="(\d+)"\} (\d+)$', body, re.M)}


def test_two_workers_share_the_load_and_state(weft):
    cg = weft.cgroup(tag="app")
    a, b = weft.server("http", "A"), weft.server("http", "B")
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [a.addr, b.addr])],
                   extra_agent="  workers = 2;\n")
    assert "2 workers moving bytes" in d.log()
    res = loop(cg, vip, 200)
    assert res["errors"] == {} and sum(res["servers"].values()) == 200, res
    per = accepted_per_worker(d)
    assert sorted(per) == [0, 1] and sum(per.values()) == 200, per
    # the kernel spreads connections by 4-tuple hash: both loops get a share
    assert min(per.values()) > 20, per
    # shared state: round-robin is global across workers, counters add up
    assert res["servers"] == {"A": 100, "B": 100}, res
    eps = {e["address"]: e["connections"] for e in services_of(d)["web"]["endpoints"]}
    assert eps == {a.addr: 100, b.addr: 100}, eps


def test_second_agent_on_same_outbound_port_is_refused(weft):
    """SO_REUSEPORT must not let a second agent silently share the port."""
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    vip = vip_addr()
    d1 = weft.weftd([cg], [service("web", [vip], [a.addr])], extra_agent="  workers = 2;\n")
    d2 = weft.weftd([], [service("web2", [vip_addr()], [a.addr])], start=False)
    text = open(d2.conf_path).read()
    text = re.sub(r"outbound_port = \d+;", "outbound_port = %d;" % d1.outbound_port, text)
    with open(d2.conf_path, "w") as f:
        f.write(text)
    with pytest.raises(Exception):
        d2.start(timeout=5)
    assert "Address already in use" in d2.log() and "agent.outbound_port" in d2.log(), d2.log_tail()
    # the first agent is unaffected
    res = loop(cg, vip, 10)
    assert res["servers"] == {"A": 10}, res


def test_second_agent_on_same_pin_path_leaves_the_first_intact(weft):
    """A weftd refused for a pin path in use must not remove the running agent's pins."""
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    vip = vip_addr()
    d1 = weft.weftd([cg], [service("web", [vip], [a.addr])])
    before = sorted(os.listdir(d1.pin_path))
    d2 = weft.weftd([], [service("web2", [vip_addr()], [a.addr])], start=False)
    text = re.sub(r'bpf_pin_path = "[^"]*";', 'bpf_pin_path = "%s";' % d1.pin_path,
                  open(d2.conf_path).read())
    with open(d2.conf_path, "w") as f:
        f.write(text)
    with pytest.raises(Exception):
        d2.start(timeout=5)
    assert "in use by another weftd" in d2.log(), d2.log_tail()
    assert sorted(os.listdir(d1.pin_path)) == before
    res = loop(cg, vip, 5)
    assert res["servers"] == {"A": 5}, res


def test_foreign_pins_under_pin_path_survive(weft):
    """Only weft's own pins are removed at start and stop; anything else is left alone."""
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    d = weft.weftd([cg], [service("web", [vip_addr()], [a.addr])], start=False)
    os.makedirs(d.pin_path, exist_ok=True)
    foreign = os.path.join(d.pin_path, "not-weft")
    subprocess.run(["bpftool", "map", "create", foreign, "type", "array", "key", "4", "value", "4",
                    "entries", "1", "name", "notweft"], check=True)
    try:
        d.start()
        assert os.path.exists(foreign)
        assert "leaving" in d.log() and "not a weft pin" in d.log()
        assert d.terminate() == 0
        assert os.path.exists(foreign)
    finally:
        if os.path.exists(foreign):
            os.unlink(foreign)
