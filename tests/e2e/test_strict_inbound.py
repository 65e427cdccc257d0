# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""agent.strict_inbound: enrolled workloads accept TCP connections only through the agent."""

import socket

from weft_harness import service, vip_addr, wait_for


def direct_connect(addr, timeout=1.0):
    host, port = addr.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((host, int(port)))
        return "connected"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return e.__class__.__name__
    finally:
        s.close()


def test_strict_inbound_drops_direct_syns_but_not_the_agents(weft):
    srv_cg = weft.cgroup(tag="srv")
    cli_cg = weft.cgroup(tag="cli")
    backend = weft.server("http", "B", cgroup=srv_cg)   # a workload: enrolled, listening
    vip = vip_addr()
    d = weft.weftd([srv_cg, cli_cg], [service("web", [vip], [backend.addr])],
                   extra_agent="  strict_inbound = true;\n")

    # through the mesh: the agent's connect carries its mark and passes
    res = weft.client("http", vip, cgroup=cli_cg)
    assert res["ok"] and res["reply"]["server"] == "B", res

    # straight to the workload's port, not through the agent: the SYN is dropped
    assert direct_connect(backend.addr) == "timeout"
    assert d.stats()["strict_inbound_dropped"] >= 1, d.stats()
    # the workload's own outbound connections are unaffected (SYN-ACKs pass)
    res = weft.client("http", vip, cgroup=srv_cg)
    assert res["ok"], res


def test_permissive_by_default(weft):
    srv_cg = weft.cgroup(tag="srv")
    backend = weft.server("http", "B", cgroup=srv_cg)
    d = weft.weftd([srv_cg], [service("web", [vip_addr()], [backend.addr])])
    assert direct_connect(backend.addr) == "connected"
    assert d.stats()["strict_inbound_dropped"] == 0


def test_agent_in_an_enrolled_cgroup_keeps_its_own_listeners(weft):
    """On Kubernetes the pod globs enrol weftd's own pod too: strict inbound
    must not drop connections to weftd itself (admin API, outbound port)."""
    parent = weft.cgroup(tag="pods")
    agent_cg = weft.cgroup(parent=parent, tag="agent")
    cli_cg = weft.cgroup(parent=parent, tag="cli")
    backend = weft.server("http", "B")
    vip = vip_addr()
    d = weft.weftd([parent], [service("web", [vip], [backend.addr])],
                   extra_agent="  strict_inbound = true;\n", start=False)
    d.start(cgroup=agent_cg)
    assert direct_connect(d.admin) == "connected"
    res = weft.client("http", vip, cgroup=cli_cg)
    assert res["ok"] and res["reply"]["server"] == "B", res
    assert d.stats()["strict_inbound_dropped"] == 0, d.stats()
