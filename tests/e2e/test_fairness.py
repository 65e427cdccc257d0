# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""One workload cannot take every slot (issue: "one workload can starve the
rest"): agent.max_connections_per_workload caps the connections one cgroup
holds through weftd, so with the node limit reached by one noisy cgroup,
another cgroup is still served."""

import json
import subprocess
import sys

from weft_harness import (PYTHON, in_cgroup_argv, metrics, prom_get, service, spawn, stop_process, vip_addr,
                          wait_for, admin_json)

# A child that opens N connections to ADDR, sends one byte on each and
# reads the echo: prints {"ok": n, "reset": n}, then holds them until stdin
# closes (so the slots stay taken while the test looks).
_HOLDER = r"""
import json, socket, sys
addr, n = sys.argv[1], int(sys.argv[2])
host, port = addr.rsplit(":", 1)
socks, ok, reset = [], 0, 0
for _ in range(n):
    try:
        socks.append(socket.create_connection((host, int(port)), timeout=5))
    except OSError:
        reset += 1
for s in socks:
    try:
        s.sendall(b"x")
        if s.recv(1) == b"x":
            ok += 1
        else:
            reset += 1
    except OSError:
        reset += 1
print(json.dumps({"ok": ok, "reset": reset}), flush=True)
sys.stdin.read()
"""


class Holder:
    def __init__(self, weft, addr, n, cgroup):
        self.proc = spawn(in_cgroup_argv(cgroup, [PYTHON, "-c", _HOLDER, addr, str(n)]),
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        weft._push("holder %s" % addr, lambda: stop_process(self.proc, 2.0))
        line = self.proc.stdout.readline()
        assert line, "holder failed: %s" % self.proc.stderr.read()
        self.result = json.loads(line)


def test_one_workload_cannot_take_every_slot(weft):
    noisy, quiet = weft.cgroup(tag="noisy"), weft.cgroup(tag="quiet")
    echo = weft.server("echo", "E")
    vip = vip_addr()
    # 40 slots on the node; per workload, the default: a quarter of them
    d = weft.weftd([noisy, quiet], [service("svc", [vip], [echo.addr])],
                   extra_agent="  max_connections = 40;\n")
    cfg = admin_json(d.admin, "/config")
    assert cfg["agent"]["max_connections_per_workload"] == 10, cfg["agent"]

    # the noisy cgroup tries 25 silent, long-lived connections: 10 are proxied
    h = Holder(weft, vip, 25, noisy)
    assert h.result == {"ok": 10, "reset": 15}, h.result
    # while it holds its 10, another workload is served (before the cap: every slot would be its)
    h2 = Holder(weft, vip, 5, quiet)
    assert h2.result == {"ok": 5, "reset": 0}, h2.result
    m = metrics(d.admin)
    assert prom_get(m, "weft_connections_failed_total", service="svc",
                    reason="workload_max_connections") == [15.0]
    svc = admin_json(d.admin, "/services")["services"][0]
    assert svc["over_workload_limit"] == 15 and svc["active"] == 15, svc
    # the noisy workload lets go: its slots come back
    stop_process(h.proc, 2.0)
    assert wait_for(lambda: admin_json(d.admin, "/services")["services"][0]["active"] == 5, 5)
    h3 = Holder(weft, vip, 10, noisy)
    assert h3.result == {"ok": 10, "reset": 0}, h3.result


def test_workload_cap_is_configurable_and_checked(weft):
    noisy = weft.cgroup(tag="noisy")
    echo = weft.server("echo", "E")
    vip = vip_addr()
    d = weft.weftd([noisy], [service("svc", [vip], [echo.addr])],
                   extra_agent="  max_connections = 40;\n  max_connections_per_workload = 3;\n")
    h = Holder(weft, vip, 5, noisy)
    assert h.result == {"ok": 3, "reset": 2}, h.result
    # validated like every key: a negative value is refused with FILE:LINE
    bad = d.config_text.replace("max_connections_per_workload = 3;", "max_connections_per_workload = -1;")
    path = d.conf_path + ".bad"
    with open(path, "w") as f:
        f.write(bad)
    r = subprocess.run([weft.env.weftd, "-c", path, "--check"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "agent.max_connections_per_workload" in r.stderr, r.stderr
