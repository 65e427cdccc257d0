# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Pods: weftd serves workloads that live in their own network namespaces
(issue 12). Each pod here is what a kubelet and containerd make (podnet.py):
a network namespace joined to its node by a veth (198.18.128.0/17, no route
out), cgroups in the kubelet's layout, a sleeping "pause" process holding the
namespace, and app processes started in containers of their own. weftd is
told only the globs that match the pods' cgroups."""

import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

import podnet
from podnet import fallback_server, make_pod, pod_glob, wait_netns_count
from weft_harness import (PYTHON, SCRIPT, CertAuthority, bpftool_json, free_port, http_get,
                          netns_argv, node_weftd, ns_admin_call, ns_server, service, two_nodes, vip_addr, vip6_addr,
                          wait_for)


@pytest.fixture(autouse=True)
def _pods_possible(weft_env):
    podnet.require_pods()


# --------------------------------------------------------------------------
# helpers

def pods_doc(d):
    if hasattr(d, "admin_json"):          # a weftd in a node's namespace
        return d.admin_json("/pods")["pods"]
    st, body = http_get(d.admin, "/pods")
    assert st == 200, (st, body)
    return json.loads(body)["pods"]


def pod_entry(d, pod):
    for p in pods_doc(d):
        if p["uid"] == pod.uid:
            return p
    return None


def wait_serving(d, pod, timeout=5.0):
    e = wait_for(lambda: (pod_entry(d, pod) or {}).get("state") == "serving" and pod_entry(d, pod),
                 timeout, 0.02)
    assert e, "pod %s never served; /pods=%r\n%s" % (pod.uid, pods_doc(d), d.log_tail(40))
    return e


def metric(d, name):
    """Sum of the samples of one metric family (labels ignored)."""
    st, body = http_get(d.admin, "/metrics")
    assert st == 200
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def pod_client(pod, mode, connect, timeout=10.0, extra=()):
    """weft_harness's client, run once in a new container of pod."""
    argv = [PYTHON, SCRIPT, "client", "--mode", mode, "--connect", connect,
            "--timeout", str(timeout)] + list(extra)
    r = pod.exec(argv, timeout=timeout + 10)
    assert r.stdout.strip(), (r.returncode, r.stderr)
    return json.loads(r.stdout)


def server_of(res):
    return (res.get("reply") or {}).get("server")


def socket_fds(pid):
    return sum(1 for v in fd_list(pid).values() if v.startswith("socket:"))


def fd_list(pid):
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


def listener_entries(d):
    return len(bpftool_json("map", "dump", "pinned", os.path.join(d.pin_path, "weft_listeners")))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# A client that keeps dialling the VIP from the moment its process exists,
# and says for each attempt who answered ("direct": the kube-proxy stand-in;
# a backend name: through weft) or which error it got.
LOOP_CLIENT = r'''
import json, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
until = time.monotonic() + float(sys.argv[2])
t0 = time.monotonic()
out = []
while time.monotonic() < until:
    t = time.monotonic() - t0
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
        out.append([round(t, 4), json.loads(body)["server"] if body else "empty"])
    except OSError as e:
        out.append([round(t, 4), "error:%s" % (e.strerror or e)])
    finally:
        s.close()
    time.sleep(0.005)
print(json.dumps(out))
'''


def loop_client(pod, vip, seconds):
    return pod.run([PYTHON, "-c", LOOP_CLIENT, vip, str(seconds)], stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True)


def loop_result(p, seconds):
    out, err = p.communicate(timeout=seconds + 30)
    assert p.returncode == 0, err
    return json.loads(out)


def mesh(weft, root, services, driver="systemd", **kw):
    globs = pod_glob(root, "systemd") + pod_glob(root, "cgroupfs")
    return weft.weftd(globs, services, **kw)


# --------------------------------------------------------------------------
# tests

def test_two_pods_reach_their_services_and_see_the_vip(weft):
    root = weft.cgroup(tag="k8s")
    a = weft.server("http", "svc-a")
    b = weft.server("http", "svc-b")
    vip_a, vip_b = vip_addr(), vip_addr()
    d = mesh(weft, root, [service("a", [vip_a], [a.addr], protocol="http"),
                          service("b", [vip_b], [b.addr])])
    pa = make_pod(weft, root, driver="systemd", qos="burstable")
    pb = make_pod(weft, root, driver="cgroupfs", qos="besteffort")
    ea, eb = wait_serving(d, pa), wait_serving(d, pb)
    assert ea["ips"] == [pa.ip] and eb["ips"] == [pb.ip], (ea, eb)
    assert ea["cgroup"] == pa.cgroup and eb["cgroup"] == pb.cgroup, (ea, eb)
    assert ea["netns"] == podnet.ns_inode(pa.netns) and eb["netns"] == podnet.ns_inode(pb.netns)
    assert ea["listeners"] >= 2 and ea["listeners"] % 2 == 0, ea

    # both pods at once, each to its own service
    results = {}

    def run(pod, vip, key):
        results[key] = [pod_client(pod, "http", vip) for _ in range(3)]
    ts = [threading.Thread(target=run, args=(pa, vip_a, "a")),
          threading.Thread(target=run, args=(pb, vip_b, "b"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for key, vip in (("a", vip_a), ("b", vip_b)):
        for res in results[key]:
            assert res["ok"], res
            assert server_of(res) == "svc-" + key, res
            assert res["peername"] == vip, res          # getpeername shows the VIP
            # the app's own address is the pod's loopback: it dialled inside the pod
            assert res["sockname"].startswith("127.0.0.1:"), res
    st = d.stats()
    assert st["redirected"] >= 6 and st["skipped_no_listener"] == 0, st

    # /conns names the pod of a live connection
    p = pa.run([PYTHON, SCRIPT, "client", "--mode", "connect", "--connect", vip_b, "--delay", "3"],
               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    conns = wait_for(lambda: json.loads(http_get(d.admin, "/conns")[1])["conns"], 5, 0.05)
    assert conns, "no connection listed"
    assert conns[0]["pod_uid"] == pa.uid, conns
    assert conns[0]["cgroup"].startswith(pa.cgroup + "/"), conns
    p.communicate(timeout=20)


def test_pod_dials_an_ipv6_service(weft):
    root = weft.cgroup(tag="k8s")
    backend = weft.server("http", "b6")
    vip6 = vip6_addr()
    d = mesh(weft, root, [service("v6", [vip6], [backend.addr])])
    pod = make_pod(weft, root, driver="cgroupfs", qos="guaranteed")
    wait_serving(d, pod)
    res = pod_client(pod, "http", vip6)
    assert res["ok"] and server_of(res) == "b6" and res["peername"] == vip6, res
    assert res["sockname"].startswith("[::1]:"), res     # the pod's own ::1


def test_new_pod_is_served_from_its_first_connect(weft):
    """The app is the pod's first process and dials from its first moment:
    until weftd listens in the pod, the connect goes where it was going (the
    kube-proxy stand-in answers "direct"); never to an empty port."""
    root = weft.cgroup(tag="k8s")
    backend = weft.server("http", "meshed")
    vip = vip_addr()
    d = mesh(weft, root, [service("web", [vip], [backend.addr], protocol="http")])
    outside = weft.cgroup(tag="kubeproxy")
    for attempt in range(3):
        pod = make_pod(weft, root, start_pause=False)
        fallback_server(pod, vip, cgroup=outside)
        p = loop_client(pod, vip, 1.5)
        res = loop_result(p, 1.5)
        errors = [r for r in res if r[1].startswith("error") or r[1] == "empty"]
        assert not errors, "connects failed while the pod was being set up: %r" % errors[:5]
        who = [r[1] for r in res]
        assert set(who) <= {"direct", "meshed"}, who
        assert "meshed" in who, "never served by weft within 1.5 s: %r" % who[:20]
        first = who.index("meshed")
        assert all(w == "meshed" for w in who[first:]), "went back to direct: %r" % who
        print("attempt %d: %d direct connects, first meshed after %.1f ms (of %d)"
              % (attempt, first, res[first][0] * 1000, len(res)))
        pod.delete()
    st = d.stats()
    assert st["refused_no_listener"] == 0, st


def test_deleting_a_pod_returns_sockets_map_and_netns(weft):
    root = weft.cgroup(tag="k8s")
    backend = weft.server("http", "b")
    vip = vip_addr()
    d = mesh(weft, root, [service("web", [vip], [backend.addr])])
    base_netns = podnet.netns_baseline()
    base_socks = socket_fds(d.pid)
    assert listener_entries(d) == 2           # the host's, IPv4 and IPv6
    pod = make_pod(weft, root)
    e = wait_serving(d, pod)
    # (an admin connection of ours may still be closing on weftd's side)
    assert wait_for(lambda: socket_fds(d.pid) == base_socks + e["listeners"], 5, 0.05), \
        (socket_fds(d.pid), base_socks, e)
    assert listener_entries(d) == 2 + 2
    assert server_of(pod_client(pod, "http", vip)) == "b"
    pod.delete()
    assert wait_for(lambda: pod_entry(d, pod) is None, 5, 0.05), pods_doc(d)
    assert wait_for(lambda: socket_fds(d.pid) == base_socks, 5, 0.05), \
        (socket_fds(d.pid), base_socks)
    assert listener_entries(d) == 2
    n = wait_netns_count(base_netns, timeout=30)
    assert n <= base_netns, "network namespaces: %d, before the pod %d" % (n, base_netns)
    assert "no enrolled process is left in its network namespace" in d.log()


def test_200_pods_created_and_deleted_leak_nothing(weft):
    root = weft.cgroup(tag="k8s")
    backend = weft.server("http", "b")
    vip = vip_addr()
    d = mesh(weft, root, [service("web", [vip], [backend.addr])], log_level="info")
    warm = make_pod(weft, root)                 # first-use allocations (and the relay's
    wait_serving(d, warm)                       # pooled splice pipes) out of the way
    assert server_of(pod_client(warm, "http", vip)) == "b"
    warm.delete()
    assert wait_for(lambda: not pods_doc(d), 5, 0.05)
    base_netns = podnet.netns_baseline()
    base_list = fd_list(d.pid)
    ok0 = metric(d, "weft_pod_setups_total")
    batch, rounds = 20, 10
    for r in range(rounds):
        pods = [make_pod(weft, root, driver="systemd" if i % 2 else "cgroupfs")
                for i in range(batch)]
        for p in pods:
            wait_serving(d, p, timeout=10)
        if r == 0:
            assert server_of(pod_client(pods[0], "http", vip)) == "b"
            assert listener_entries(d) == 2 + 2 * batch
            # a pod costs weftd its listeners (two per worker) and no other
            # descriptor: the enrolled cgroups' links are held by their pins
            # (sockets and links only: the pod thread's scans open cgroup
            # directories for a moment)
            listeners = sum(e["listeners"] for e in pods_doc(d))

            def held():
                return [v for k, v in fd_list(d.pid).items() if base_list.get(k) != v
                        and (v.startswith("socket:") or "bpf_link" in v)]
            # (the admin connection that just answered may still be closing)
            assert wait_for(lambda: len(held()) == listeners, 5, 0.05), (held(), listeners)
            assert all(e["listeners"] <= 2 * os.cpu_count() for e in pods_doc(d))
        for p in pods:
            p.delete()
        assert wait_for(lambda: not pods_doc(d), 10, 0.05), pods_doc(d)
    assert metric(d, "weft_pod_setups_total") - ok0 == batch * rounds
    # every descriptor is back, but the relays' pooled splice pipes (one
    # pool per worker, filled on first use by whichever worker relays)
    def extra():
        return sorted(v for k, v in fd_list(d.pid).items()
                      if base_list.get(k) != v and not v.startswith("pipe:"))
    assert wait_for(lambda: not extra(), 5, 0.05), extra()
    assert sum(1 for v in fd_list(d.pid).values() if v.startswith("socket:")) == \
        sum(1 for v in base_list.values() if v.startswith("socket:"))
    assert listener_entries(d) == 2
    n = wait_netns_count(base_netns, timeout=60)
    assert n <= base_netns, "network namespaces: %d, before %d" % (n, base_netns)
    # memory: LeakSanitizer checks at exit (Weftd.cleanup); RSS, which ASan's
    # quarantine inflates, in test_pod_churn_memory_plain_build


def test_pod_churn_memory_plain_build(weft_env, tmp_path):
    """The build without sanitizers: 100 pods made and deleted leave weftd's
    resident memory where it was (within 1 MiB: malloc keeps some)."""
    import weft_harness as wh
    if not os.access(weft_env.weftd_plain, os.X_OK):
        pytest.fail("the build without sanitizers %s is missing (make)" % weft_env.weftd_plain)
    h = wh.Harness(weft_env.weftd_plain, str(tmp_path))
    try:
        root = h.cgroup(tag="k8s")
        backend = h.server("http", "b")
        vip = vip_addr()
        d = mesh(h, root, [service("web", [vip], [backend.addr])], log_level="info")
        warm = [make_pod(h, root) for _ in range(20)]
        for p in warm:
            wait_serving(d, p, timeout=10)
        assert server_of(pod_client(warm[0], "http", vip)) == "b"
        for p in warm:
            p.delete()
        assert wait_for(lambda: not pods_doc(d), 10, 0.05)
        base_rss = rss_kib(d.pid)
        for _ in range(5):
            pods = [make_pod(h, root) for _ in range(20)]
            for p in pods:
                wait_serving(d, p, timeout=10)
            for p in pods:
                p.delete()
            assert wait_for(lambda: not pods_doc(d), 10, 0.05)
        grown = rss_kib(d.pid) - base_rss
        print("RSS %d KiB before 100 pods, %+d KiB after" % (base_rss, grown))
        assert grown < 1024, "RSS grew by %d KiB over 100 pods" % grown
    finally:
        errs = h.close()
        assert not errs, errs


def test_hostnetwork_pod_is_served_as_a_host_workload(weft):
    root = weft.cgroup(tag="k8s")
    backend = weft.server("http", "b")
    vip = vip_addr()
    d = mesh(weft, root, [service("web", [vip], [backend.addr])])
    pod = make_pod(weft, root, hostnetwork=True)
    res = pod_client(pod, "http", vip)
    assert res["ok"] and server_of(res) == "b" and res["peername"] == vip, res
    assert pods_doc(d) == []                   # no namespace of its own to serve
    assert d.stats()["skipped_no_listener"] == 0


def test_pod_whose_app_holds_the_outbound_port_fails_open(weft):
    root = weft.cgroup(tag="k8s")
    backend = weft.server("http", "b")
    vip = vip_addr()
    d = mesh(weft, root, [service("web", [vip], [backend.addr])], start=False)
    pod = make_pod(weft, root)
    outside = weft.cgroup(tag="kubeproxy")
    fallback_server(pod, vip, cgroup=outside)
    squatter = pod.run([PYTHON, "-c", "import socket,time\ns=socket.socket()\n"
                        "s.bind(('127.0.0.1', %d))\ns.listen()\ntime.sleep(60)" % d.outbound_port])
    time.sleep(0.3)
    assert squatter.poll() is None
    d.start()
    e = wait_for(lambda: (pod_entry(d, pod) or {}).get("state") == "failed" and pod_entry(d, pod),
                 5, 0.05)
    assert e and "in use" in e["error"], pods_doc(d)
    assert "cannot serve its network namespace" in d.log()
    res = pod_client(pod, "http", vip)
    assert res["ok"] and server_of(res) == "direct", res      # fail_mode open
    assert d.stats()["skipped_no_listener"] >= 1
    assert metric(d, 'weft_pods') >= 1


def test_weftd_restart_with_pods_running(weft):
    root = weft.cgroup(tag="k8s")
    backend = weft.server("http", "meshed")
    vip = vip_addr()
    d = mesh(weft, root, [service("web", [vip], [backend.addr], protocol="http")])
    outside = weft.cgroup(tag="kubeproxy")
    pods = [make_pod(weft, root), make_pod(weft, root, driver="cgroupfs")]
    for p in pods:
        fallback_server(p, vip, cgroup=outside)
        wait_serving(d, p)
    # a clean restart (SIGTERM), then a crash (SIGKILL) and a start: the pods'
    # connects never fail; between the agents they go where they were going
    for stop in (d.terminate, d.kill9):
        loops = [loop_client(p, vip, 4.0) for p in pods]
        time.sleep(0.7)
        stop()
        d.start()          # returns once weftd says ready
        t_ready = time.monotonic()
        for p in pods:
            wait_serving(d, p, timeout=d.stale_ms / 1000.0)
        print("%s: pods served again %.0f ms after ready"
              % (stop.__name__, (time.monotonic() - t_ready) * 1000))
        for lp in loops:
            res = loop_result(lp, 4.0)
            errors = [r for r in res if r[1].startswith("error") or r[1] == "empty"]
            # SIGKILL may cut the one request in flight at that instant; a
            # connect is never refused, and nothing else fails
            cut = [r for r in errors if "reset" in r[1].lower() or r[1] == "empty"]
            assert len(cut) <= (1 if stop == d.kill9 else 0), \
                "across %s: %r" % (stop.__name__, errors[:5])
            assert not [r for r in errors if r not in cut], \
                "connects failed across %s: %r" % (stop.__name__, errors[:5])
            res = [r for r in res if r not in cut]
            who = [r[1] for r in res]
            assert who[0] == "meshed" and who[-1] == "meshed", who
            assert "direct" in who, "the restart went unnoticed? %r" % who


# --------------------------------------------------------------------------
# across nodes: a pod endpoint on node 2 reached from a pod on node 1 over mTLS

TD = "example.org"
CLIENT_ID = "spiffe://example.org/ns/shop/sa/frontend"


@pytest.fixture(scope="module")
def pki(weft_env, tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found (scripts/weft-ca needs it): run `make deps`")
    d = str(tmp_path_factory.mktemp("pki"))
    ca = CertAuthority(os.path.join(d, "ca"), TD)
    return {"ca": ca.ca,
            "node1": ca.issue("spiffe://example.org/node/node1", os.path.join(d, "node1")),
            "node2": ca.issue("spiffe://example.org/node/node2", os.path.join(d, "node2")),
            "client": ca.issue(CLIENT_ID, os.path.join(d, "client"))}


def test_pod_endpoint_from_another_node_over_mtls_and_strict_inbound(weft, pki):
    t = two_nodes(weft)
    root1, root2 = weft.cgroup(tag="k8s1"), weft.cgroup(tag="k8s2")
    server_pod = make_pod(weft, root2, node_netns=t.ns2)
    port = free_port()
    srv = server_pod.run([PYTHON, SCRIPT, "serve", "--mode", "http", "--name", "in-pod",
                          "--listen", "%s:%d" % (server_pod.ip, port)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ep = "%s:%d" % (server_pod.ip, port)
    assert wait_for(lambda: subprocess.run(
        netns_argv(server_pod.netns, ["ss", "-Htln", "sport = :%d" % port]),
        capture_output=True, text=True).stdout.strip(), 5, 0.05), "server in pod not listening"
    vip = vip_addr()
    inbound2 = "%s:%d" % (t.ip2, free_port())
    d2 = node_weftd(weft, t.ns2, inbound2, pod_glob(root2), [
        service("shop", [vip], [ep], extra='\n    authorization = { allow = [ "%s" ]; };' % CLIENT_ID)],
        tls={"ca": pki["ca"], "cert": pki["node2"][0], "key": pki["node2"][1]},
        extra_agent="  strict_inbound = true;\n")
    wait_serving(d2, server_pod)
    client_pod = make_pod(weft, root1, node_netns=t.ns1)
    d1 = node_weftd(weft, t.ns1, "%s:%d" % (t.ip1, free_port()), pod_glob(root1), [
        service("shop", [vip], ['%s"; node = "%s' % (ep, inbound2)])],
        tls={"ca": pki["ca"], "cert": pki["node1"][0], "key": pki["node1"][1]},
        identities=[{"cgroup": client_pod.cgroup, "identity": CLIENT_ID,
                     "cert": pki["client"][0], "key": pki["client"][1]}])
    wait_serving(d1, client_pod)

    for _ in range(3):
        res = pod_client(client_pod, "http", vip)
        assert res["ok"] and server_of(res) == "in-pod" and res["peername"] == vip, res
    # node 2's agent reached the pod from inside it: the server saw a local peer
    peer = (res["reply"] or {}).get("peer", "")
    assert peer.split(":")[0] == server_pod.ip, res
    m2 = ns_admin_call(t.ns2, d2.admin, "GET", "/metrics")[2]
    m2 = m2.decode() if isinstance(m2, bytes) else m2
    assert re.search(r'weft_inbound_connections_total\{result="ok"\} [3-9]', m2), m2

    # strict inbound: a direct connect to the pod from its node is dropped
    before = d2.stats()["strict_inbound_dropped"]
    r = subprocess.run(netns_argv(t.ns2, [PYTHON, SCRIPT, "client", "--mode", "http",
                                          "--connect", ep, "--timeout", "1.5"]),
                       capture_output=True, text=True, timeout=30)
    res = json.loads(r.stdout)
    assert not res["ok"] and res["stage"] == "connect" and res["error"] == "TIMEOUT", res
    assert d2.stats()["strict_inbound_dropped"] > before
    # ...and the mesh still gets in
    assert server_of(pod_client(client_pod, "http", vip)) == "in-pod"
    srv.kill()
    srv.communicate()
