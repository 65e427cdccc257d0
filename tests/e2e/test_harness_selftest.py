# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The harness itself, without weftd: cgroup placement, backends, clients,
cleanup. When these fail, the weftd tests' failures mean nothing."""

import os

import weft_harness as wh


def test_cgroup2_mount_detected():
    root = wh.cgroup2_mount()
    assert root and os.path.exists(os.path.join(root, "cgroup.procs")), root


def test_client_joins_cgroup_and_servers_answer(weft):
    cg = weft.cgroup(tag="self")
    sub = weft.cgroup(cg, tag="sub")
    # A backend inside a cgroup reports its cgroup membership through cgroup.procs.
    a = weft.server("http", "A", cgroup=sub)
    assert a.proc.pid in sub.pids()
    res = weft.client("http", a.addr, cgroup=cg)
    assert res["ok"] and res["reply"]["server"] == "A", res
    assert res["reply"]["peer"] == res["sockname"], res
    assert res["peername"] == a.addr
    rc, code, body, err = weft.curl("http://%s/" % a.addr, cgroup=cg)
    assert (rc, code) == (0, "200") and '"server": "A"' in body, (rc, code, body, err)
    # Nothing listens on a fresh VIP.
    assert weft.client("http", wh.vip_addr())["error"] == "ECONNREFUSED"


def test_backends_behave(weft):
    r = weft.server("reset", "R")
    res = weft.client("reset", r.addr)
    assert res["error"] == "ECONNREFUSED" or res["error"] == "ECONNRESET", res
    e = weft.server("eofreply", "E")
    res = weft.client("halfclose", e.addr, nbytes=1000)
    assert res["ok"] and res["reply"] == "%d %s\n" % (res["sent_bytes"], res["sent_sha256"])
    b = weft.server("bulk", "B", nbytes=1 << 20)
    res = weft.client("bulk", b.addr, nbytes=1 << 20)
    d = b.wait_done(1)[0]
    assert res["recv_sha256"] == d["sent_sha256"] and res["sent_sha256"] == d["recv_sha256"]


def test_leftovers_are_found_and_removed(weft_env, tmp_path):
    h = wh.Harness(weft_env.weftd, str(tmp_path))
    cg = h.cgroup(tag="leak")
    child = h.cgroup(cg)
    s = h.server("http", "LEAK", cgroup=child)
    pin = os.path.join(wh.BPFFS, wh.unique_name("leakpin"))
    os.mkdir(pin)
    ns = h.netns()
    found = wh.leftovers(include_dead_runs=False)
    assert cg.path in found["cgroups"] and pin in found["pins"] and ns in found["netns"], found
    assert s.proc.pid in [p for p, _ in found["processes"]], found
    assert h.close() == []
    os.rmdir(pin)
    assert wh.leftovers(include_dead_runs=False) == {"cgroups": [], "pins": [], "netns": [],
                                                      "processes": []}


def test_percpu_dump_parsing():
    raw = [{"key": ["0x06", "0x00", "0x00", "0x00"],
            "values": [{"cpu": 0, "value": ["0x03", "0", "0", "0", "0", "0", "0", "0"]},
                       {"cpu": 1, "value": ["0x01", "0x01", "0", "0", "0", "0", "0", "0"]}]},
           {"key": 0, "values": [{"cpu": 0, "value": 5}, {"cpu": 1, "value": 2}]},
           {"formatted": {"key": 2, "values": [{"cpu": 0, "value": 9}]}}]
    assert wh.parse_percpu_dump(raw) == {6: 3 + 257, 0: 7, 2: 9}


def test_a_skip_fails_under_require_priv(tmp_path):
    """Issue 16: a test that skips (e.g. because a tool is missing) fails in
    CI (WEFT_REQUIRE_PRIV=1) and stays a skip elsewhere."""
    import subprocess
    import sys
    t = tmp_path / "test_skips.py"
    t.write_text("import pytest\n\ndef test_needs_a_tool():\n    pytest.skip('wrk not found')\n")
    here = os.path.dirname(os.path.abspath(__file__))
    base = [sys.executable, "-m", "pytest", "-q", "-p", "weft_requirepriv", "-p", "no:cacheprovider", str(t)]
    env = dict(os.environ, PYTHONPATH=here)
    env.pop("WEFT_REQUIRE_PRIV", None)
    r = subprocess.run(base, capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert r.returncode == 0 and "1 skipped" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(base, capture_output=True, text=True, env=dict(env, WEFT_REQUIRE_PRIV="1"),
                       cwd=str(tmp_path))
    assert r.returncode == 1 and "1 failed" in r.stdout and "wrk not found" in r.stdout, r.stdout + r.stderr
