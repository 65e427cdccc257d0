# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Config reload (SIGHUP, POST /reload, weftctl reload): established
connections survive whatever the new config says, new connections follow it,
and a bad file changes nothing but the failure counter."""

import signal
import subprocess

import pytest

from weft_harness import (admin_call, admin_json, metrics, prom_get, rewrite_config, scripted_client,
                          service, vip_addr, wait_for, weft_progs)


def _reloads(d):
    s = metrics(d.admin)
    return (prom_get(s, "weft_config_reloads_total", result="success")[0],
            prom_get(s, "weft_config_reloads_total", result="failure")[0],
            prom_get(s, "weft_config_hash")[0],
            prom_get(s, "weft_config_last_reload_success_timestamp_seconds")[0])


def weftctl(weft, d, *args):
    return subprocess.run([weft.env.weftctl, "-a", d.admin] + list(args),
                          capture_output=True, text=True, timeout=20)


def reload(weft, d, how):
    """Reload d's config with how in sighup/post/weftctl; asserts it was taken."""
    ok0 = _reloads(d)[0]
    if how == "sighup":
        d.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: _reloads(d)[0] == ok0 + 1, 5), \
            "SIGHUP: no successful reload within 5s:\n" + d.log_tail(30)
    elif how == "post":
        st, _, body = admin_call(d.admin, "POST", "/reload", body=b"")
        assert st == 200, (st, body)
        assert body.startswith("reloaded %s" % d.conf_path), body
    elif how == "weftctl":
        r = weftctl(weft, d, "reload")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    else:
        raise ValueError(how)
    assert _reloads(d)[0] == ok0 + 1


def _ticks_advance(c, n=3, timeout=5):
    t0 = c.status()["ticks"]
    st = wait_for(lambda: (lambda s: s if s["ticks"] >= t0 + n or s["error"] else None)(c.status()),
                  timeout)
    assert st and not st["error"] and st["ticks"] >= t0 + n, \
        "the long-lived connection stalled or broke: %r" % (st or c.status())
    return st


def _new_conns_go_to(weft, vip, cg, srv, others, n=3):
    before = {s.name: len(s.conns()) for s in [srv] + others}
    for _ in range(n):
        res = weft.client("echo", vip, cgroup=cg, nbytes=2000)
        assert res["ok"] and res["echo_ok"], res
    assert wait_for(lambda: len(srv.conns()) == before[srv.name] + n, 3), \
        "new connections should all go to %s: %r" % (srv.name, {s.name: len(s.conns()) for s in [srv] + others})
    for s in others:
        assert len(s.conns()) == before[s.name], "%s got new connections: %r" % (s.name, s.conns())


@pytest.mark.parametrize("order", [("sighup", "post", "weftctl"), ("weftctl", "sighup", "post")],
                         ids=["hup-post-ctl", "ctl-hup-post"])
def test_long_lived_connection_survives_reloads(weft, order):
    cg = weft.cgroup(tag="app")
    a, b = weft.server("echo", "A"), weft.server("echo", "B")
    vip, vip_other = vip_addr(), vip_addr()
    other = service("other", [vip_other], [b.addr])
    d = weft.weftd([cg], [service("svc", [vip], [a.addr]), other])

    c = scripted_client(weft, vip, cgroup=cg)
    assert c.connected and c.hello["peername"] == vip, c.hello
    assert c.tick(0.1, 100)["event"] == "ticking"
    _ticks_advance(c)
    assert wait_for(lambda: len(a.conns()) == 1, 3) and b.conns() == [], (a.conns(), b.conns())

    # 1. add an endpoint
    rewrite_config(d, services=[service("svc", [vip], [a.addr, b.addr]), other])
    reload(weft, d, order[0])
    _ticks_advance(c)
    eps = {e["address"] for s in admin_json(d.admin, "/services")["services"] if s["name"] == "svc"
           for e in s["endpoints"]}
    assert eps == {a.addr, b.addr}, eps

    # 2. remove the endpoint in use: new connections go to the new one only
    rewrite_config(d, services=[service("svc", [vip], [b.addr]), other])
    reload(weft, d, order[1])
    _ticks_advance(c)
    _new_conns_go_to(weft, vip, cg, b, [a])
    conns = admin_json(d.admin, "/conns")["conns"]
    mine = [x for x in conns if x["client"] == c.hello["sockname"]]
    assert len(mine) == 1 and mine[0]["endpoint"] == a.addr and mine[0]["service"] == "svc", conns

    # 3. remove the whole service: the VIP is not intercepted any more
    rewrite_config(d, services=[other])
    reload(weft, d, order[2])
    _ticks_advance(c)
    res = weft.client("echo", vip, cgroup=cg, nbytes=10)
    assert res["error"] == "ECONNREFUSED" and res["stage"] == "connect", res
    assert [s["name"] for s in admin_json(d.admin, "/services")["services"]] == ["other"]
    mine = [x for x in admin_json(d.admin, "/conns")["conns"] if x["client"] == c.hello["sockname"]]
    assert len(mine) == 1, "the established connection is still listed: %r" % mine

    st = c.cmd("stop")
    assert st["error"] is None and st["mismatch"] == 0, st
    assert st["ticks"] >= 12, st
    assert st["sent"] == st["recv"] == st["ticks"] * 100, st
    assert st["sent_sha256"] == st["recv_sha256"], st
    r = c.close()
    assert r["event"] == "closed" and r["extra"] == 0, r
    done = a.wait_done(1, 5)
    assert len(done) == 1 and done[0]["bytes"] == st["sent"], done
    assert len(a.conns()) == 1, "A served only the long-lived connection: %r" % a.conns()
    assert wait_for(lambda: admin_json(d.admin, "/conns")["conns"] == [], 5)


def _error_lines(text, conf):
    return [l for l in text.splitlines() if l.startswith(conf + ":")]


def test_bad_config_rejected_old_one_stays(weft):
    cg = weft.cgroup(tag="app")
    a, b = weft.server("echo", "A"), weft.server("echo", "B")
    vip = vip_addr()
    d = weft.weftd([cg], [service("svc", [vip], [a.addr])])
    good = d.config_text
    ok0, fail0, hash0, ts0 = _reloads(d)
    assert (ok0, fail0) == (0, 0)

    def still_serves(srv):
        n = len(srv.conns())
        res = weft.client("echo", vip, cgroup=cg, nbytes=500)
        assert res["ok"] and res["echo_ok"], res
        assert wait_for(lambda: len(srv.conns()) == n + 1, 3), (srv.name, srv.conns())

    # A syntax error (and a different endpoint that must not take effect).
    bad = rewrite_config(d, services=[service("svc", [vip], [b.addr])])
    lines = bad.splitlines()
    idx = next(i for i, l in enumerate(lines) if l.startswith("services"))
    lines.insert(idx, "oops = ;")
    bad_line = idx + 1
    rewrite_config(d, text="\n".join(lines) + "\n")
    want = "%s:%d: syntax error" % (d.conf_path, bad_line)

    st, hdr, body = admin_call(d.admin, "POST", "/reload", body=b"")
    assert st == 400, (st, body)
    errs = _error_lines(body, d.conf_path)
    assert errs and errs[0].startswith(want), body
    assert _reloads(d)[:3] == (0, 1, hash0)

    r = weftctl(weft, d, "reload")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert want in r.stderr, r.stderr
    assert _reloads(d)[:3] == (0, 2, hash0)

    log0 = len(d.log())
    d.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: _reloads(d)[1] == 3, 5), d.log_tail(20)
    assert want in d.log()[log0:], d.log()[log0:]
    assert "reload rejected" in d.log()[log0:]
    assert d.running()
    still_serves(a)

    # An unknown key, with a line number.
    lines = good.splitlines()
    idx = next(i for i, l in enumerate(lines) if l.startswith("  bpf_pin_path"))
    lines.insert(idx + 1, "  zork = 1;")
    rewrite_config(d, text="\n".join(lines) + "\n")
    want = "%s:%d: agent.zork: unknown key" % (d.conf_path, idx + 2)
    st, _, body = admin_call(d.admin, "POST", "/reload", body=b"")
    assert st == 400 and _error_lines(body, d.conf_path)[0].startswith(want), (st, body)
    r = weftctl(weft, d, "reload")
    assert r.returncode == 1 and want in r.stderr, (r.stdout, r.stderr)
    assert _reloads(d)[:3] == (0, 5, hash0)
    still_serves(a)

    # Something that needs a restart: rejected, naming the key.
    lines = good.splitlines()
    idx = next(i for i, l in enumerate(lines) if l.startswith("  outbound_port"))
    lines[idx] = "  outbound_port = %d;" % (d.outbound_port + 1 if d.outbound_port < 65535 else 1024)
    rewrite_config(d, text="\n".join(lines) + "\n")
    st, _, body = admin_call(d.admin, "POST", "/reload", body=b"")
    assert st == 400 and "agent.outbound_port" in body, (st, body)
    assert _reloads(d)[:3] == (0, 6, hash0)
    still_serves(a)

    # A good one: taken, counted, new hash and timestamp, new endpoint.
    rewrite_config(d, text=good)
    rewrite_config(d, services=[service("svc", [vip], [b.addr])])
    st, _, body = admin_call(d.admin, "POST", "/reload", body=b"")
    assert st == 200, (st, body)
    ok1, fail1, hash1, ts1 = _reloads(d)
    assert (ok1, fail1) == (1, 6)
    assert hash1 != hash0, "weft_config_hash must change with the file"
    assert ts1 > ts0, (ts0, ts1)
    still_serves(b)


def test_reload_adds_and_removes_vip(weft):
    cg = weft.cgroup(tag="app")
    a, b = weft.server("echo", "A"), weft.server("echo", "B")
    vip, vip2 = vip_addr(), vip_addr()
    d = weft.weftd([cg], [service("one", [vip], [a.addr])])
    res = weft.client("echo", vip2, cgroup=cg, nbytes=10)
    assert res["error"] == "ECONNREFUSED", "not a service yet: %r" % res

    rewrite_config(d, services=[service("one", [vip], [a.addr]), service("two", [vip2], [b.addr])])
    reload(weft, d, "post")
    res = weft.client("echo", vip2, cgroup=cg, nbytes=1000)
    assert res["ok"] and res["echo_ok"] and res["peername"] == vip2, res
    assert wait_for(lambda: len(b.conns()) == 1, 3), b.conns()

    # remove it again, and give service one a second address
    vip3 = vip_addr()
    rewrite_config(d, services=[service("one", [vip, vip3], [a.addr])])
    reload(weft, d, "sighup")
    res = weft.client("echo", vip2, cgroup=cg, nbytes=10)
    assert res["error"] == "ECONNREFUSED" and res["stage"] == "connect", res
    for v in (vip, vip3):
        res = weft.client("echo", v, cgroup=cg, nbytes=100)
        assert res["ok"] and res["echo_ok"] and res["peername"] == v, res
    assert wait_for(lambda: len(a.conns()) == 2, 3) and len(b.conns()) == 1, (a.conns(), b.conns())

    # no services at all (with a connection open to the last one)
    c = scripted_client(weft, vip3, cgroup=cg)
    assert c.connected and c.send(64)["sent"] == 64 and c.recv(64)["got"] == 64
    rewrite_config(d, services=[])
    reload(weft, d, "weftctl")
    assert admin_json(d.admin, "/services") == {"services": []}
    for v in (vip, vip3):
        res = weft.client("echo", v, cgroup=cg, nbytes=10)
        assert res["error"] == "ECONNREFUSED", res
    assert c.send(1000)["sent"] == 1064 and c.recv(1000)["got"] == 1000
    r = c.close()
    assert r["event"] == "closed" and r["recv"] == 1064 and r["sent_sha256"] == r["recv_sha256"], r


def test_reload_changes_enrolled_cgroups(weft):
    old, new = weft.cgroup(tag="old"), weft.cgroup(tag="new")
    a = weft.server("echo", "A")
    vip = vip_addr()
    d = weft.weftd([old], [service("svc", [vip], [a.addr])])
    assert weft_progs(old.path) and weft_progs(new.path) == []
    res = weft.client("echo", vip, cgroup=old, nbytes=100)
    assert res["ok"], res

    rewrite_config(d, cgroups=[new])
    reload(weft, d, "weftctl")
    assert wait_for(lambda: weft_progs(old.path) == [], 3), \
        "bpftool cgroup show %s still lists: %r" % (old.path, weft_progs(old.path))
    assert weft_progs(new.path), "no weft program on %s" % new.path
    res = weft.client("echo", vip, cgroup=new, nbytes=100)
    assert res["ok"] and res["echo_ok"], res
    res = weft.client("echo", vip, cgroup=old, nbytes=10)
    assert res["error"] == "ECONNREFUSED", "released cgroup still intercepted: %r" % res
    s = metrics(d.admin)
    assert prom_get(s, "weft_enrolled_cgroups") == [1.0], prom_get(s, "weft_enrolled_cgroups")
    cfg = admin_json(d.admin, "/config")
    assert cfg["intercept"]["cgroups"] == [new.path], cfg
