# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Endpoints from a file (endpoints_from = { file = PATH; }), rewritten the
ways real tools write files: renamed over (Consul template, Ansible), written
in place (a script), a Kubernetes ConfigMap's symlink swap; broken, emptied,
removed, and in a directory that appears later.

The dialogues: what the file says, what /services, the metrics and the log
say, and that real client connections never fail while it changes.
"""

import json
import os
import subprocess
import threading
import time

from weft_harness import admin_json, in_cgroup_argv, metrics, prom_get, service, spawn, unique_name, vip_addr, wait_for

PY = "/usr/bin/python3"

# N sequential GETs to VIP, one connection each; prints {"servers": {...}, "errors": {...}}.
LOOP = r'''
import collections, json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
servers, errors = collections.Counter(), collections.Counter()
for _ in range(n):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, int(port)))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        servers[json.loads(data.partition(b"\r\n\r\n")[2])["server"]] += 1
    except Exception as e:
        errors[type(e).__name__] += 1
    finally:
        s.close()
print(json.dumps({"servers": servers, "errors": errors}))
'''


def tcp_loop(cg, vip, n, timeout=120):
    p = subprocess.run(in_cgroup_argv(cg, [PY, "-c", LOOP, vip, str(n)]), capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def svc_of(d, name="api"):
    for s in admin_json(d.admin, "/services")["services"]:
        if s["name"] == name:
            return s
    raise AssertionError("no service %s" % name)


def eps(d, name="api"):
    return {e["address"] for e in svc_of(d, name)["endpoints"]}


def src(d, name="api"):
    return svc_of(d, name)["endpoints_from"][0]


def metric(d, name, path, **labels):
    v = prom_get(metrics(d.admin), name, service="api", source="file", target=path, **labels)
    return v[0] if v else None


def write_renamed(path, text):
    """As Consul template and Ansible do: a temporary file, renamed over."""
    tmp = "%s.tmp%d" % (path, threading.get_ident())
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def write_in_place(path, text):
    with open(path, "w") as f:
        f.write(text)


def lines(*addrs):
    return "# written by the test\n" + "".join("%s\n" % a for a in addrs)


def file_service(vip, path, **kw):
    kw.setdefault("attempts", 1)
    return service("api", [vip], None, extra=' endpoints_from = { file = "%s"; };' % path, **kw)


def test_rewritten_under_load_no_failed_connection(weft):
    """Four clients make connections while the file is rewritten 60 times
    (renamed over, in place, in either format): not one connection fails,
    with retries off (retry.attempts 1), and the last file is in force."""
    cg = weft.cgroup(tag="app")
    srv = {n: weft.server("http", n) for n in "ABC"}
    A, B, C = (srv[n].addr for n in "ABC")
    d_ = os.path.join(weft.workdir, unique_name("eps"))
    os.makedirs(d_)
    path = os.path.join(d_, "api.conf")
    write_renamed(path, lines(A, B))
    vip = vip_addr()
    d = weft.weftd([cg], [file_service(vip, path)])
    assert eps(d) == {A, B}  # read before ready: no wait
    sets = [(A, B), (B, C), (A, C), (A, B, C), (C,), (A,)]
    clients = [spawn(in_cgroup_argv(cg, [PY, "-c", LOOP, vip, "250"]), stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE) for _ in range(4)]
    for p in clients:
        weft._push("client", lambda p=p: p.kill() if p.poll() is None else None)
    for i in range(60):
        members = sets[i % len(sets)]
        if i % 3 == 2:
            text = "endpoints = ( %s );\n" % ", ".join('{ address = "%s"; }' % a for a in members)
        else:
            text = lines(*members)
        (write_in_place if i % 2 else write_renamed)(path, text)
        time.sleep(0.05)
    servers, errors = {}, {}
    for p in clients:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        res = json.loads(out.decode().strip().splitlines()[-1])
        for k, v in res["servers"].items():
            servers[k] = servers.get(k, 0) + v
        for k, v in res["errors"].items():
            errors[k] = errors.get(k, 0) + v
    print("1000 connections while the file changed 60 times:", servers, errors)
    assert errors == {}, (servers, errors)
    assert sum(servers.values()) == 1000 and set(servers) == {"A", "B", "C"}, servers
    last = sets[59 % len(sets)]
    assert wait_for(lambda: eps(d) == set(last), 3), (svc_of(d), last)
    changes = metric(d, "weft_discovery_changes_total", path)
    print("endpoint-set changes applied:", changes)
    assert changes >= 20, changes
    assert all(e["source"] == "file" for e in svc_of(d)["endpoints"])


def test_malformed_missing_empty_keep_the_last_set(weft):
    """A broken file says FILE:LINE: what, in the log and /services, and
    keeps the set in force; so do a removed and an empty file; a good file
    (libconfig this time) is taken at once."""
    cg = weft.cgroup(tag="app")
    a, b, c = (weft.server("http", n) for n in "ABC")
    d_ = os.path.join(weft.workdir, unique_name("eps"))
    os.makedirs(d_)
    path = os.path.join(d_, "api.conf")
    write_renamed(path, lines(a.addr, b.addr))
    vip = vip_addr()
    d = weft.weftd([cg], [file_service(vip, path)])
    assert eps(d) == {a.addr, b.addr}

    write_renamed(path, "# api\n%s 2 eu-west-1a\n%s heavy\n" % (a.addr, c.addr))
    assert wait_for(lambda: src(d)["last_result"] == "failure", 3), src(d)
    want = "%s:3: weight 'heavy' is not a number from 1 to 1000" % path
    assert src(d)["last_error"] == want and src(d)["stale"] is True, src(d)
    assert "ERROR service api: " + want in d.log()
    assert "endpoint file %s not used; keeping the last 2 endpoints" % path in d.log()
    assert eps(d) == {a.addr, b.addr}
    assert metric(d, "weft_discovery_refreshes_total", path, result="failure") == 1
    assert metric(d, "weft_discovery_stale", path) == 1
    res = tcp_loop(cg, vip, 6)
    assert res["errors"] == {} and res["servers"] == {"A": 3, "B": 3}, res

    write_renamed(path, 'endpoints = (\n  { address = "%s"; weight = 2; zone = "z1"; priority = 1; }\n);\n' % c.addr)
    assert wait_for(lambda: eps(d) == {c.addr}, 3), svc_of(d)
    e = svc_of(d)["endpoints"][0]
    assert (e["weight"], e["zone"], e["priority"], e["source"]) == (2, "z1", 1, "file"), e
    assert src(d)["stale"] is False and src(d)["last_result"] == "success", src(d)

    os.unlink(path)
    assert wait_for(lambda: src(d)["last_result"] == "failure", 3), src(d)
    assert src(d)["last_error"] == "%s: cannot open: No such file or directory" % path, src(d)
    assert eps(d) == {c.addr}

    write_renamed(path, "# nothing yet\n")
    assert wait_for(lambda: src(d)["last_result"] == "empty", 3), src(d)
    assert "no endpoint in the file; keeping the last 1 endpoints" in d.log()
    assert eps(d) == {c.addr}
    res = tcp_loop(cg, vip, 3)
    assert res["errors"] == {} and res["servers"] == {"C": 3}, res

    write_in_place(path, lines(a.addr))
    assert wait_for(lambda: eps(d) == {a.addr}, 3), svc_of(d)
    assert metric(d, "weft_discovery_refreshes_total", path, result="empty") == 1


def test_configmap_symlink_swap(weft):
    """A Kubernetes ConfigMap volume: PATH is a symlink into ..data, itself a
    symlink to a timestamped directory that the kubelet swaps by rename."""
    cg = weft.cgroup(tag="app")
    a, b = weft.server("http", "A"), weft.server("http", "B")
    vol = os.path.join(weft.workdir, unique_name("cm"))
    os.makedirs(os.path.join(vol, "..v1"))
    with open(os.path.join(vol, "..v1", "api.conf"), "w") as f:
        f.write(lines(a.addr))
    os.symlink("..v1", os.path.join(vol, "..data"))
    os.symlink("..data/api.conf", os.path.join(vol, "api.conf"))
    vip = vip_addr()
    d = weft.weftd([cg], [file_service(vip, os.path.join(vol, "api.conf"))])
    assert eps(d) == {a.addr}
    os.makedirs(os.path.join(vol, "..v2"))
    with open(os.path.join(vol, "..v2", "api.conf"), "w") as f:
        f.write(lines(b.addr))
    os.symlink("..v2", os.path.join(vol, "..data_tmp"))
    t0 = time.monotonic()
    os.rename(os.path.join(vol, "..data_tmp"), os.path.join(vol, "..data"))
    assert wait_for(lambda: eps(d) == {b.addr}, 3), svc_of(d)
    print("symlink swap to endpoints in force: %.3f s" % (time.monotonic() - t0))
    assert time.monotonic() - t0 < 1.5  # inotify, not the 2 s poll
    res = tcp_loop(cg, vip, 3)
    assert res["errors"] == {} and res["servers"] == {"B": 3}, res


def test_directory_that_appears_later(weft):
    """A file whose directory does not exist yet: the service starts with no
    endpoints (and says why), and takes them when the file appears."""
    cg = weft.cgroup(tag="app")
    a = weft.server("http", "A")
    d_ = os.path.join(weft.workdir, unique_name("late"))
    path = os.path.join(d_, "api.conf")
    vip = vip_addr()
    d = weft.weftd([cg], [file_service(vip, path)])
    assert svc_of(d)["endpoints"] == []
    assert src(d)["last_error"] == "%s: cannot open: No such file or directory" % path, src(d)
    os.makedirs(d_)
    write_renamed(path, lines(a.addr))
    assert wait_for(lambda: eps(d) == {a.addr}, 5), svc_of(d)
    res = tcp_loop(cg, vip, 3)
    assert res["errors"] == {} and res["servers"] == {"A": 3}, res
    # now watched: the next change is seen at once
    b = weft.server("http", "B")
    t0 = time.monotonic()
    write_renamed(path, lines(b.addr))
    assert wait_for(lambda: eps(d) == {b.addr}, 3), svc_of(d)
    assert time.monotonic() - t0 < 1.5
