# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""One workload cannot get the agent OOM-killed (issue: "agent OOM from one
workload"). 4000 connections each send a ~60 KiB request head without its
final CRLF. Before the memory budget weftd held ~73 KB per connection (296 MB,
killed under the DaemonSet's 256 MiB limit; the node failed open). Now:
agent.buffer_memory_mb bounds the buffered bytes, the offending workload is
shed (its share), weftd stays alive under a 256 MiB memory limit, another
workload is served meanwhile, and the memory goes back after the flood.

Runs the build without sanitizers (ASan's shadow memory and quarantine would
be what gets measured)."""

import json
import os
import subprocess
import time

import pytest

import weft_harness as wh
from weft_harness import PYTHON, in_cgroup_argv, metrics, prom_get, service, spawn, stop_process, vip_addr, wait_for

N_CONNS = 4000
HEAD_BYTES = 60 * 1024
LIMIT = 256 << 20

# In the attacking workload: N connections, each sends a 60 KiB head with no
# end; prints a summary once all are sent, then holds them until stdin closes.
_ATTACK = r"""
import json, resource, socket, sys
addr, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
host, port = addr.rsplit(":", 1)
head = b"GET /charge HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * size  # no CRLF CRLF: never complete
socks, sent, failed = [], 0, 0
for _ in range(n):
    try:
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(head)
        socks.append(s)
        sent += 1
    except OSError:
        failed += 1
print(json.dumps({"sent": sent, "failed": failed}), flush=True)
sys.stdin.read()
"""


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class MemoryLimit:
    """A memory limit for one process: cgroup v1's memory controller where
    that is where it is mounted (this CI machine), else nothing (the RSS bound
    still holds). remove() takes the process out and deletes the group."""

    def __init__(self, pid, limit):
        self.dir = None
        v1 = "/sys/fs/cgroup/memory"
        if os.path.isfile(os.path.join(v1, "memory.limit_in_bytes")):
            self.dir = os.path.join(v1, wh.unique_name("mem"))
            os.mkdir(self.dir)
            with open(os.path.join(self.dir, "memory.limit_in_bytes"), "w") as f:
                f.write(str(limit))
            with open(os.path.join(self.dir, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def oom_kills(self):
        if not self.dir:
            return 0
        with open(os.path.join(self.dir, "memory.oom_control")) as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        return 0

    def remove(self):
        if not self.dir:
            return
        try:
            with open(os.path.join(self.dir, "cgroup.procs")) as f:
                pids = f.read().split()
            for p in pids:
                with open("/sys/fs/cgroup/memory/cgroup.procs", "w") as f:
                    f.write(p)
        except OSError:
            pass
        for _ in range(50):
            try:
                os.rmdir(self.dir)
                return
            except OSError:
                time.sleep(0.1)


def test_incomplete_heads_cannot_oom_the_agent(weft_env, tmp_path):
    if not os.access(weft_env.weftd_plain, os.X_OK):
        pytest.fail("the build without sanitizers %s is missing (make)" % weft_env.weftd_plain)
    h = wh.Harness(weft_env.weftd_plain, str(tmp_path))
    mem = None
    try:
        attacker, good = h.cgroup(tag="attacker"), h.cgroup(tag="good")
        backend = h.server("http", "B")
        vip = vip_addr()
        d = h.weftd([attacker, good], [service("web", [vip], [backend.addr], protocol="http")],
                    log_level="info")
        mem = MemoryLimit(d.pid, LIMIT)
        base = rss_bytes(d.pid)

        atk = spawn(in_cgroup_argv(attacker, [PYTHON, "-c", _ATTACK, vip, str(N_CONNS), str(HEAD_BYTES)]),
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        h._push("attacker", lambda: stop_process(atk, 2.0))
        peak = 0
        line = None
        deadline = time.monotonic() + 120
        os.set_blocking(atk.stdout.fileno(), False)
        while time.monotonic() < deadline and d.running():
            peak = max(peak, rss_bytes(d.pid))
            line = atk.stdout.readline()
            if line:
                break
            time.sleep(0.05)
        assert line, "the attacker did not finish: %s" % atk.stderr.read()
        summary = json.loads(line)
        # held: a few more samples while the heads sit there
        for _ in range(20):
            peak = max(peak, rss_bytes(d.pid))
            time.sleep(0.05)
        m = metrics(d.admin)
        buffered = prom_get(m, "weft_buffer_memory_bytes")[0]
        limit = prom_get(m, "weft_buffer_memory_limit_bytes")[0]
        refused = prom_get(m, "weft_buffer_memory_refused_total", reason="workload_share")[0]
        # another workload is served in the middle of it
        rc, code, body, err = wh.run_curl("http://%s/ok" % vip, cgroup=good, timeout=10)
        print("attack %r; weftd RSS %.1f MiB before, peak %.1f MiB; buffered %.1f MiB of %.0f MiB; "
              "refused (workload share) %d" % (summary, base / 2**20, peak / 2**20, buffered / 2**20,
                                               limit / 2**20, refused))
        assert d.running(), d.log_tail(30)
        assert mem.oom_kills() == 0
        assert peak < LIMIT, peak
        assert buffered <= limit
        assert refused > 0
        assert (rc, code) == (0, "200"), (rc, code, body, err)

        # the flood ends: the memory goes back (malloc_trim after the spike)
        stop_process(atk, 2.0)
        assert wait_for(lambda: prom_get(metrics(d.admin), "weft_buffer_memory_bytes")[0] == 0, 10)
        assert wait_for(lambda: rss_bytes(d.pid) < base + (8 << 20), 10), \
            "RSS %.1f MiB, before %.1f MiB" % (rss_bytes(d.pid) / 2**20, base / 2**20)
        print("after: %.1f MiB, trims %d" % (rss_bytes(d.pid) / 2**20, prom_get(metrics(d.admin), "weft_buffer_memory_trims_total")[0]))
    finally:
        errs = h.close()
        if mem:
            mem.remove()
    assert not errs, errs


def test_idle_keepalive_holds_no_budget(weft):
    """Accounting stays exact: requests on a keep-alive connection charge
    their buffers and give them back; an idle connection holds nothing (a
    leak here would slowly shed healthy traffic as 503s)."""
    cg = weft.cgroup(tag="app")
    a = wh.http_backend(weft, "ok", "A")
    vip = vip_addr()
    d = weft.weftd([cg], [service("web", [vip], [a.addr], protocol="http")])
    req = "GET /x HTTP/1.1\r\nHost: w\r\n\r\n"
    script = [{"send": req}, {"recv_until": "}"}] * 20 + [{"sleep": 2.0}]
    out = {}
    t = __import__("threading").Thread(target=lambda: out.update(wh.http_raw(vip, script, cgroup=cg)))
    t.start()
    try:
        # while the connection sits idle after its 20 requests
        assert wait_for(lambda: prom_get(metrics(d.admin), "weft_http_requests_total", service="web",
                                         route="default", **{"class": "2xx"}) == [20.0], 10)
        m = metrics(d.admin)
        assert prom_get(m, "weft_buffer_memory_bytes") == [0.0]
        assert prom_get(m, "weft_buffer_memory_workloads") == [0.0]
    finally:
        t.join(15)
    assert out.get("rc", 0) == 0, out
