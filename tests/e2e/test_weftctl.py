# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""weftctl, the operator's CLI: every command, tables and --json, exit codes
(0 ok, 1 the agent said no, 2 usage, 3 unreachable), -a and $WEFT_ADMIN, and
enroll/unenroll doing what they say to real clients."""

import json
import os
import subprocess

import pytest

from weft_harness import (dead_addr, scripted_client, service, table_columns,
                          vip_addr, wait_for, weft_progs)

SERVICES_HDR = ["SERVICE", "PROTOCOL", "ADDRESSES", "ENDPOINT", "STATE", "WEIGHT", "EWMA_MS",
                "ACTIVE", "CONNS", "ERRORS", "REQUESTS"]
CONNS_HDR = ["CGROUP", "POD", "PID", "CLIENT", "ORIG_DST", "SERVICE", "ENDPOINT", "BYTES_IN",
             "BYTES_OUT", "AGE_S"]


class Agent:
    pass


@pytest.fixture(scope="module")
def agent(weft_module):
    h = weft_module
    ag = Agent()
    ag.h = h
    ag.ctl_bin = h.env.weftctl
    if not os.access(ag.ctl_bin, os.X_OK):
        pytest.skip("weftctl binary %s is missing (run `make`, or set WEFTCTL=)" % ag.ctl_bin)
    ag.cg = h.cgroup(tag="ctl")
    ag.a, ag.b = h.server("echo", "A"), h.server("echo", "B")
    ag.vip = vip_addr()
    ag.d = h.weftd([ag.cg], [service("echo", [ag.vip], [ag.a.addr, ag.b.addr])])
    for _ in range(2):
        res = h.client("echo", ag.vip, cgroup=ag.cg, nbytes=100)
        assert res["ok"] and res["echo_ok"], res
    return ag


def ctl(ag_or_bin, *args, env=None, admin=True):
    """Run weftctl (with -a ADDR of the agent unless admin=False)."""
    if isinstance(ag_or_bin, str):
        binary, argv = ag_or_bin, list(args)
    else:
        binary = ag_or_bin.ctl_bin
        argv = (["-a", ag_or_bin.d.admin] if admin else []) + list(args)
    e = dict(os.environ)
    e.pop("WEFT_ADMIN", None)
    if env:
        e.update(env)
    return subprocess.run([binary] + argv, capture_output=True, text=True, timeout=20, env=e)


def ok(r):
    assert r.returncode == 0, (r.args, r.returncode, r.stdout, r.stderr)
    return r.stdout


# --------------------------------------------------------------------------
# read-only commands

def test_status(agent):
    out = ok(ctl(agent, "-o", "wide", "status"))
    first, _, rest = out.partition("\n")
    assert first == "weftd at %s: ready" % agent.d.admin, out
    names, rows = table_columns(rest)
    assert names == SERVICES_HDR, out
    assert rows[0]["SERVICE"] == "echo", out

    doc = json.loads(ok(ctl(agent, "--json", "status")))
    assert doc["ready"] is True and doc["state"] == "ready", doc
    assert doc["admin"] == agent.d.admin, doc
    # -j is --json too
    assert json.loads(ok(ctl(agent, "-j", "status")))["ready"] is True


def test_services(agent):
    out = ok(ctl(agent, "services", "-o", "wide"))
    names, rows = table_columns(out)
    assert names == SERVICES_HDR, out
    assert len(rows) == 2, out
    assert (rows[0]["SERVICE"], rows[0]["PROTOCOL"], rows[0]["ADDRESSES"]) == \
        ("echo", "tcp", agent.vip), out
    assert "SERVICE" not in rows[1] and "ADDRESSES" not in rows[1], out
    assert {rows[0]["ENDPOINT"], rows[1]["ENDPOINT"]} == {agent.a.addr, agent.b.addr}, out
    conns = {r["ENDPOINT"]: int(r["CONNS"]) for r in rows}
    assert sum(conns.values()) >= 2, out

    doc = json.loads(ok(ctl(agent, "--json", "services")))
    assert set(doc) == {"services"} and [s["name"] for s in doc["services"]] == ["echo"], doc
    svc = doc["services"][0]
    assert svc["name"] == "echo", doc
    eps = {e["address"]: e for e in svc["endpoints"]}
    assert set(eps) == {agent.a.addr, agent.b.addr}, doc
    for e in eps.values():
        assert e["state"] == "ready" and e["weight"] == 1 and e["active"] == 0, e
        assert isinstance(e["ewma_ms"], (int, float)), e
        assert e["connections"] == conns[e["address"]], (e, out)


def test_conns(agent):
    h = agent.h
    out = ok(ctl(agent, "-o", "wide", "conns"))
    assert out.split() == CONNS_HDR, out
    assert json.loads(ok(ctl(agent, "--json", "conns"))) == {"conns": []}

    c = scripted_client(h, agent.vip, cgroup=agent.cg)
    try:
        assert c.connected, c.hello
        assert c.send(300)["sent"] == 300 and c.recv(300)["got"] == 300
        out = ok(ctl(agent, "-o", "wide", "conns"))
        names, rows = table_columns(out)
        assert names == CONNS_HDR and len(rows) == 1, out
        # without -o wide: 80 columns, the less important ones left out
        narrow = ok(ctl(agent, "conns"))
        assert all(len(l) < 80 for l in narrow.splitlines()), narrow
        nnames, nrows = table_columns(narrow)
        assert {"SERVICE", "ENDPOINT", "BYTES_IN", "BYTES_OUT"} <= set(nnames), narrow
        assert nrows[0]["SERVICE"] == "echo", narrow
        row = rows[0]
        assert (row["CGROUP"], row["PID"], row["CLIENT"], row["ORIG_DST"], row["SERVICE"],
                row["BYTES_IN"], row["BYTES_OUT"]) == \
            (agent.cg.path, str(c.pid), c.hello["sockname"], agent.vip, "echo", "300", "300"), out
        assert row["ENDPOINT"] in (agent.a.addr, agent.b.addr), out
        assert row["POD"] == "-", out   # not a kubelet pod's cgroup
        assert float(row["AGE_S"]) >= 0, out

        doc = json.loads(ok(ctl(agent, "--json", "conns")))
        assert len(doc["conns"]) == 1, doc
        cn = doc["conns"][0]
        assert (cn["cgroup"], cn["orig_dst"], cn["service"], cn["endpoint"], cn["bytes_in"],
                cn["bytes_out"]) == (agent.cg.path, agent.vip, "echo", row["ENDPOINT"], 300, 300), cn
        assert cn["age_s"] >= 0, cn
    finally:
        r = c.close()
    assert r["event"] == "closed", r
    assert wait_for(lambda: json.loads(ok(ctl(agent, "--json", "conns")))["conns"] == [], 5)


def test_metrics(agent):
    out = ok(ctl(agent, "metrics"))
    assert "# TYPE weft_connections_total counter\n" in out, out[:3000]
    assert 'weft_connections_total{service="echo",endpoint="%s"' % agent.a.addr in out, out[:3000]
    assert "weft_ready 1\n" in out


def test_config(agent):
    for args in (("config",), ("--json", "config")):
        cfg = json.loads(ok(ctl(agent, *args)))
        assert cfg["agent"]["admin"] == agent.d.admin, cfg
        assert cfg["agent"]["fail_mode"] == "open", cfg
        assert cfg["intercept"]["cgroups"] == [agent.cg.path], cfg
        assert [s["name"] for s in cfg["services"]] == ["echo"], cfg
        assert cfg["services"][0]["balancer"] == "round-robin", cfg


def test_reload(agent):
    r = ctl(agent, "reload")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.startswith("reloaded %s" % agent.d.conf_path), r.stdout
    assert r.stderr == "", r.stderr
    # still serving
    res = agent.h.client("echo", agent.vip, cgroup=agent.cg, nbytes=100)
    assert res["ok"] and res["echo_ok"], res


def test_reload_error_exit_1(agent, tmp_path):
    good = agent.d.config_text
    try:
        with open(agent.d.conf_path, "w") as f:
            f.write(good + "zork = 1;\n")
        line = good.count("\n") + 1
        r = ctl(agent, "reload")
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert "%s:%d: zork: unknown key" % (agent.d.conf_path, line) in r.stderr, r.stderr
        assert r.stdout == "", r.stdout
    finally:
        with open(agent.d.conf_path, "w") as f:
            f.write(good)
    res = agent.h.client("echo", agent.vip, cgroup=agent.cg, nbytes=100)
    assert res["ok"] and res["echo_ok"], res


# --------------------------------------------------------------------------
# enroll / unenroll

def test_enroll_unenroll(agent):
    h = agent.h
    new = h.cgroup(tag="late")
    res = h.client("echo", agent.vip, cgroup=new, nbytes=10)
    assert res["error"] == "ECONNREFUSED", "not enrolled yet: %r" % res

    r = ctl(agent, "enroll", new.path)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert new.path in r.stdout, r.stdout
    assert weft_progs(new.path), "bpftool cgroup show lists no weft program on %s" % new.path
    res = h.client("echo", agent.vip, cgroup=new, nbytes=1000)
    assert res["ok"] and res["echo_ok"] and res["peername"] == agent.vip, res
    assert res["stderr"] == "", res

    r = ctl(agent, "unenroll", new.path)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert new.path in r.stdout, r.stdout
    assert wait_for(lambda: weft_progs(new.path) == [], 3), weft_progs(new.path)
    res = h.client("echo", agent.vip, cgroup=new, nbytes=10)
    assert res["error"] == "ECONNREFUSED", "unenrolled: %r" % res
    # the config's cgroup was not touched
    res = h.client("echo", agent.vip, cgroup=agent.cg, nbytes=10)
    assert res["ok"], res


def test_enroll_relative_path_and_idempotent(agent):
    h = agent.h
    new = h.cgroup(tag="rel")
    rel = os.path.relpath(new.path, h.root)
    assert not rel.startswith("/") and not rel.startswith("..")
    for _ in range(2):
        r = ctl(agent, "enroll", rel)
        assert r.returncode == 0, (r.stdout, r.stderr)
    res = h.client("echo", agent.vip, cgroup=new, nbytes=100)
    assert res["ok"] and res["echo_ok"], res
    r = ctl(agent, "unenroll", rel)
    assert r.returncode == 0, (r.stdout, r.stderr)
    res = h.client("echo", agent.vip, cgroup=new, nbytes=10)
    assert res["error"] == "ECONNREFUSED", res
    # and now it is not enrolled: a second unenroll is an error
    r = ctl(agent, "unenroll", rel)
    assert r.returncode == 1, (r.stdout, r.stderr)


def _one_line_error(r):
    assert r.stdout == "", r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("weftctl: "), r.stderr
    return lines[0]


def test_unenroll_not_enrolled_exit_1(agent):
    other = agent.h.cgroup(tag="never")
    r = ctl(agent, "unenroll", other.path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    line = _one_line_error(r)
    assert other.path in line and "not enrolled" in line, line


def test_unenroll_config_cgroup_exit_1_names_config(agent):
    r = ctl(agent, "unenroll", agent.cg.path)
    assert r.returncode == 1, (r.stdout, r.stderr)
    line = _one_line_error(r)
    assert agent.d.conf_path in line and "intercept.cgroups" in line, line
    assert weft_progs(agent.cg.path), "the config's cgroup must stay enrolled"
    res = agent.h.client("echo", agent.vip, cgroup=agent.cg, nbytes=10)
    assert res["ok"], res


@pytest.mark.parametrize("arg,word", [("/sys/fs/cgroup-nope/x", "not under"),
                                      ("no-such-cgroup-for-weftctl-test", "does not exist"),
                                      ("../etc", "")])
def test_enroll_bad_cgroup_exit_1(agent, arg, word):
    r = ctl(agent, "enroll", arg)
    assert r.returncode == 1, (r.stdout, r.stderr)
    line = _one_line_error(r)
    assert word in line, line


# --------------------------------------------------------------------------
# usage, reachability, $WEFT_ADMIN

@pytest.mark.parametrize("args", [
    ["frobnicate"],
    [],
    ["enroll"],
    ["unenroll"],
    ["enroll", "a", "b"],
    ["status", "extra"],
    ["--bogus", "status"],
    ["-a"],
    ["-a", "not-an-address", "status"],
])
def test_usage_errors_exit_2(weft_env, args):
    r = ctl(weft_env.weftctl, *args)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert r.stdout == "", r.stdout
    assert r.stderr.strip(), "a usage error says what is wrong"


def test_help_exit_0(weft_env):
    r = ctl(weft_env.weftctl, "--help")
    assert r.returncode == 0 and "usage: weftctl" in r.stdout, (r.stdout, r.stderr)


@pytest.mark.parametrize("cmd", [["status"], ["services"], ["--json", "conns"], ["reload"],
                                 ["enroll", "/sys/fs/cgroup/x"]])
def test_unreachable_exit_3(weft_env, cmd):
    addr = dead_addr()
    r = ctl(weft_env.weftctl, "-a", addr, *cmd)
    assert r.returncode == 3, (cmd, r.returncode, r.stdout, r.stderr)
    assert r.stdout == "", r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "cannot reach weftd" in lines[0] and addr in lines[0], r.stderr


def test_weft_admin_env(agent):
    env = {"WEFT_ADMIN": agent.d.admin}
    r = ctl(agent, "--json", "status", env=env, admin=False)
    assert r.returncode == 0 and json.loads(r.stdout)["admin"] == agent.d.admin, (r.stdout, r.stderr)
    # -a wins over $WEFT_ADMIN
    dead = dead_addr()
    r = ctl(agent, "--json", "status", env={"WEFT_ADMIN": dead})
    assert r.returncode == 0, (r.stdout, r.stderr)
    # $WEFT_ADMIN pointing nowhere: exit 3 naming that address
    r = ctl(agent, "services", env={"WEFT_ADMIN": dead}, admin=False)
    assert r.returncode == 3 and dead in r.stderr and "cannot reach weftd" in r.stderr, \
        (r.stdout, r.stderr)


def test_tables_fit_80_columns(agent):
    """Without -o wide, tables fit an 80-column terminal (columns left out
    in a fixed order, long names cut with '~' keeping their tail); with it,
    every column. No escape sequences off a terminal."""
    for cmd in ("status", "services", "conns", "pods"):
        out = ok(ctl(agent, cmd))
        assert "\x1b" not in out, (cmd, out)
        assert all(len(l) < 80 for l in out.splitlines()), (cmd, out)
    names, rows = table_columns(ok(ctl(agent, "services")))
    assert names[0] == "SERVICE" and "ENDPOINT" in names and "STATE" in names, names
    assert {r["ENDPOINT"] for r in rows} == {agent.a.addr, agent.b.addr}, rows
    assert len(ok(ctl(agent, "services", "-o", "wide")).splitlines()[0]) > 80
