# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""podnet.py itself, without weftd: pods have the kubelet's cgroup shape, the
pause process holds the pod's netns, app processes land in container cgroups
in that netns, the pod reaches its host side and nothing else, and deleting
pods (explicitly or by closing the harness) leaves nothing: no cgroup, netns,
veth, process, nor a network namespace still alive in the kernel."""

import concurrent.futures
import glob
import ipaddress
import json
import os
import re
import socket
import subprocess
import threading
import uuid
import warnings

import pytest

import podnet
import weft_harness as wh

PY = wh.PYTHON

# What an exec'd process reports about itself.
WHOAMI = ("import json, os\n"
          "cg = [l[3:].strip() for l in open('/proc/self/cgroup') if l.startswith('0::')][0]\n"
          "print(json.dumps({'ino': os.stat('/proc/self/ns/net').st_ino, 'cgroup': cg}))\n")

# Connect to argv[1]:argv[2], read to EOF, print it.
DIAL = ("import socket, sys\n"
        "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
        "buf = b''\n"
        "while True:\n"
        "    d = s.recv(4096)\n"
        "    if not d: break\n"
        "    buf += d\n"
        "print(buf.decode())\n")

UID_ = r"[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}"
UID = UID_.replace("_", "-")
SCOPE = r"cri-containerd-[0-9a-f]{64}\.scope"
SHAPES = {
    ("systemd", "burstable"):
        r"kubepods\.slice/kubepods-burstable\.slice/kubepods-burstable-pod(%s)\.slice" % UID_,
    ("systemd", "besteffort"):
        r"kubepods\.slice/kubepods-besteffort\.slice/kubepods-besteffort-pod(%s)\.slice" % UID_,
    ("systemd", "guaranteed"): r"kubepods\.slice/kubepods-pod(%s)\.slice" % UID_,
    ("cgroupfs", "burstable"): r"kubepods/burstable/pod(%s)" % UID,
    ("cgroupfs", "besteffort"): r"kubepods/besteffort/pod(%s)" % UID,
    ("cgroupfs", "guaranteed"): r"kubepods/pod(%s)" % UID,
}
CONTAINER = {"systemd": SCOPE, "cgroupfs": r"[0-9a-f]{64}"}


def _skip_or_fail(reason):   # as conftest's: CI (WEFT_REQUIRE_PRIV=1) must not skip
    if os.environ.get("WEFT_REQUIRE_PRIV") == "1":
        pytest.fail("WEFT_REQUIRE_PRIV=1 but podnet cannot run: " + reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def h(tmp_path):
    """A Harness without weftd (these tests need none)."""
    probs = podnet.problems()
    if probs:
        _skip_or_fail("; ".join(probs))
    harness = wh.Harness(None, str(tmp_path))
    yield harness
    errs = harness.close()
    if errs:
        pytest.fail("teardown: " + "; ".join(errs), pytrace=False)


# --------------------------------------------------------------------------
# checks

def check_shape(pod, root):
    r = os.path.relpath(pod.cgroup, podnet._path(root))
    m = re.fullmatch(SHAPES[(pod.driver, pod.qos)], r)
    assert m, "pod cgroup %s does not have the kubelet shape for %s/%s" % (r, pod.driver, pod.qos)
    want = pod.uid.replace("-", "_") if pod.driver == "systemd" else pod.uid
    assert m.group(1) == want, (m.group(1), pod.uid)
    assert uuid.UUID(pod.uid).version == 4
    for c in pod.container_cgroups():
        assert os.path.dirname(c) == pod.cgroup, c
        assert re.fullmatch(CONTAINER[pod.driver], os.path.basename(c)), c
        assert os.path.isdir(c)


def check_pause(pod):
    pid = pod.pause.proc.pid
    assert pod.pause.proc.poll() is None
    assert pod.container_cgroups()[0] == pod.pause.cgroup
    assert pod.pause.pids() == [pid], "the pause cgroup holds exactly the pause process"
    assert podnet.proc_cgroup(pid) == pod.pause.cgroup
    assert os.stat("/proc/%d/ns/net" % pid).st_ino == podnet.ns_inode(pod.netns)
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert (pod.name + "-pause").encode() in f.read()
    assert pid in [p for p, _ in wh.leftovers(include_dead_runs=False)["processes"]], \
        "leftovers() must see the pause process"


def check_exec(pod):
    before = pod.container_cgroups()
    r = pod.exec([PY, "-c", WHOAMI])
    assert r.returncode == 0, r
    me = json.loads(r.stdout)
    assert me["ino"] == podnet.ns_inode(pod.netns), "exec'd process is not in the pod's netns"
    cg = os.path.join(wh.cgroup2_mount(), me["cgroup"].lstrip("/"))
    assert os.path.dirname(cg) == pod.cgroup, "exec'd process not in a pod container: %s" % cg
    assert re.fullmatch(CONTAINER[pod.driver], os.path.basename(cg)), cg
    assert cg not in before, "exec runs in a new container cgroup"
    assert pod.container_cgroups() == before and not os.path.exists(cg), \
        "the exec's container cgroup is removed after it"
    # kubectl-exec style: into the pause container's cgroup
    r = pod.exec([PY, "-c", WHOAMI], container="pause")
    assert json.loads(r.stdout)["cgroup"] == "/" + os.path.relpath(pod.pause.cgroup,
                                                                   wh.cgroup2_mount())


class Listener:
    """A TCP listener in netns ns (None: this one) on host: answers every
    connection with 'hello <peer ip>' and closes."""

    def __init__(self, host, ns=None):
        self.sock = wh.netns_socket(ns)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.host, self.port = self.sock.getsockname()
        self.peers = []
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[0])
            c.sendall(b"hello %s" % peer[0].encode())
            c.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._t.join(2)


def check_network(pod, host_ns=None):
    """pod reaches a listener on its host side address, has exactly the
    connected /30 and 198.18.0.0/15 via the host side, no default route; the
    host side has just the connected /30."""
    net = ipaddress.ip_network("%s/30" % pod.ip, strict=False)
    assert net.subnet_of(podnet.POD_RANGE) and str(list(net.hosts())[0]) == pod.host_ip
    assert len(pod.host_if) <= 15 and re.fullmatch(r"wp[0-9a-f]{6}h", pod.host_if)
    assert podnet.link_exists(pod.host_if, host_ns)
    assert isinstance(pod.nsid, int) and pod.netns_gone() is False
    lst = Listener(pod.host_ip, host_ns)
    try:
        r = pod.exec([PY, "-c", DIAL, pod.host_ip, str(lst.port)])
        assert r.returncode == 0 and r.stdout.strip() == "hello %s" % pod.ip, r
    finally:
        lst.close()
    routes = podnet._ip_json("route", "show", ns=pod.netns)
    got = sorted((x["dst"], x.get("gateway"), x["dev"]) for x in routes)
    assert got == sorted([(str(net), None, "eth0"), ("198.18.0.0/15", pod.host_ip, "eth0")]), routes
    assert not [x for x in podnet._ip_json("-6", "route", "show", ns=pod.netns)
                if x["dst"] == "default"]
    # no route out: asked of the routing table only, nothing is sent
    r = podnet._ip("route", "get", "192.0.2.1", ns=pod.netns, check=False)
    assert r.returncode != 0 and "unreachable" in r.stderr.lower(), (r.stdout, r.stderr)
    hr = podnet._ip_json("route", "show", "dev", pod.host_if, ns=host_ns)
    assert [(x["dst"], x.get("protocol"), x.get("scope")) for x in hr] == \
        [(str(net), "kernel", "link")], hr
    links = podnet._ip_json("addr", "show", ns=pod.netns)
    addrs = {(l["ifname"], a["local"]) for l in links for a in l.get("addr_info", [])}
    assert {("lo", "127.0.0.1"), ("lo", "::1"), ("eth0", pod.ip)} <= addrs, addrs
    assert {l["ifname"] for l in links} == {"lo", "eth0"}, links


def check_gone(pod, host_ns=None):
    assert not os.path.exists(pod.cgroup), pod.cgroup
    assert not [c for c in pod.container_cgroups() if os.path.exists(c)]
    if not pod.hostnetwork:
        assert not os.path.exists(os.path.join(wh.NETNS_DIR, pod.netns)), pod.netns
        assert not podnet.link_exists(pod.host_if, host_ns), pod.host_if
        assert pod.wait_netns_gone(), "the kernel has not dismantled %s's netns" % pod.name
    assert pod.pause.proc.poll() is not None


def check_count(start, alive=0, timeout=30.0):
    """The kernel-wide netns_count() is start + alive (alive: our pods'
    namespaces still there), or comes back to it. Another weft e2e run
    (creating and deleting namespaces meanwhile) makes that unknowable: then
    only a warning (the per-pod netns_gone() checks still hold)."""
    want = start + alive
    if alive:
        good = wh.wait_for(lambda: podnet.netns_count() == want, 10)
        n = want if good else podnet.netns_count()
    else:
        n = podnet.wait_netns_count(want, timeout)
        good = n <= want
    if not good and podnet.other_runs():
        warnings.warn("netns_count() %d, expected %d: other weft e2e runs %s are making "
                      "namespaces too; not checked" % (n, want, podnet.other_runs()))
        return
    assert good, "netns_count() %d, expected %s%d" % (n, "" if alive else "<= ", want)


def subdirs(path):
    return sorted(e for e in os.listdir(path) if os.path.isdir(os.path.join(path, e)))


# --------------------------------------------------------------------------
# tests

def test_subnet_allocator():
    a = podnet.SubnetAllocator(start=0)
    i0, n0 = a.take([])
    assert (i0, str(n0)) == (1, "198.18.128.4/30"), "198.18.X.0/30 is skipped (two_nodes' /30s)"
    i1, n1 = a.take(["198.18.128.9", "10.0.0.1"])          # .8/30 has an address: skipped
    assert str(n1) == "198.18.128.12/30"
    a.release(i0)
    b = podnet.SubnetAllocator(start=i0)
    b.used = set(a.used)
    assert str(b.take([])[1]) == "198.18.128.4/30", "a released /30 is handed out again"
    c = podnet.SubnetAllocator(start=a.n - 1)
    assert str(c.take([])[1]) == "198.18.255.252/30"
    assert str(c.take([])[1]) == "198.18.128.4/30", "wraps around"
    nets = {str(a.take([])[1]) for _ in range(500)}
    assert len(nets) == 500
    assert all(ipaddress.ip_network(x).subnet_of(podnet.POD_RANGE) for x in nets)


def test_pods_shape_netns_reach_and_delete(h):
    start = podnet.netns_baseline()
    root = h.cgroup(tag="node")
    a = podnet.make_pod(h, root, driver="systemd", qos="burstable")
    b = podnet.make_pod(h, root, driver="cgroupfs", qos="guaranteed")
    c = podnet.make_pod(h, root, driver="systemd", qos="besteffort", hostnetwork=True)

    assert subdirs(root.path) == ["kubepods", "kubepods.slice"]
    assert subdirs(os.path.join(root.path, "kubepods.slice")) == \
        ["kubepods-besteffort.slice", "kubepods-burstable.slice"]
    assert len({a.uid, b.uid, c.uid}) == 3 and len({a.ip, b.ip}) == 2
    check_count(start, alive=2)
    for pod in (a, b, c):
        check_shape(pod, root)
        check_pause(pod)
        check_exec(pod)
    for pod in (a, b):
        assert pod.netns in os.listdir(wh.NETNS_DIR) and pod.netns in \
            wh.leftovers(include_dead_runs=False)["netns"]
        check_network(pod)
    assert (c.netns, c.ip, c.host_ip, c.host_if, c.nsid) == (None,) * 5
    assert c.netns_gone() is None
    assert podnet.ns_inode(c.netns) == podnet.ns_inode(None)

    # the globs a weftd would enrol match exactly the pod-level cgroups
    for driver, pods in (("systemd", {a.cgroup, c.cgroup}), ("cgroupfs", {b.cgroup})):
        globs = podnet.pod_glob(root, driver)
        assert {p for g in globs for p in glob.glob(g)} == pods, globs
        relg = podnet.pod_glob(root, driver, relative=True)
        assert all(not g.startswith("/") for g in relg)
        assert {p for g in relg for p in glob.glob(os.path.join(wh.cgroup2_mount(), g))} == pods

    # a hung exec is killed at its timeout, and its container goes with it
    with pytest.raises(subprocess.TimeoutExpired):
        a.exec([PY, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert a.container_cgroups() == [a.pause.cgroup]

    # an app container: its own cgroup, killed with the pod
    app = a.run([PY, "-c", "import time; time.sleep(600)"], name="app")
    assert app.container.name == "app" and a.container_cgroups() == [a.pause.cgroup,
                                                                    app.container.cgroup]
    assert wh.wait_for(lambda: app.container.pids() == [app.pid], 5)
    assert wh.wait_for(lambda: os.stat("/proc/%d/ns/net" % app.pid).st_ino
                       == podnet.ns_inode(a.netns), 5)

    a.delete()
    check_gone(a)
    assert app.returncode == -9
    a.delete()   # idempotent
    assert subdirs(os.path.join(root.path, "kubepods.slice")) == ["kubepods-besteffort.slice"], \
        "the burstable slice was a's alone; besteffort still holds c"
    with pytest.raises(RuntimeError):
        a.exec(["true"])
    b.delete()
    c.delete()
    for pod in (b, c):
        check_gone(pod)
    assert subdirs(root.path) == [], "shared parents are removed once empty"
    check_count(start)
    assert podnet.pod_leftovers() == {"netns": [], "processes": [], "links": []}


def test_pod_on_node_netns(h):
    """A pod hanging off a "node" netns: the host side of its veth is there."""
    start = podnet.netns_baseline()
    node = h.netns()
    root = h.cgroup(tag="node")
    pod = podnet.make_pod(h, root, driver="cgroupfs", qos="burstable", node_netns=node)
    check_shape(pod, root)
    check_pause(pod)
    assert not podnet.link_exists(pod.host_if), "the host side is in the node netns, not here"
    check_network(pod, host_ns=node)
    # a hostNetwork pod of that node runs in the node's netns
    hn = podnet.make_pod(h, root, hostnetwork=True, node_netns=node)
    check_pause(hn)
    assert hn.netns == node and hn.ip is None
    r = hn.exec([PY, "-c", WHOAMI])
    assert json.loads(r.stdout)["ino"] == podnet.ns_inode(node)
    pod.delete()
    hn.delete()
    check_gone(pod, host_ns=node)
    check_gone(hn)
    assert os.path.exists(os.path.join(wh.NETNS_DIR, node)), "a hostNetwork pod leaves its node be"
    wh.netns_del(node)
    check_count(start)


def test_fallback_server_answers_in_pod_outside_pod_cgroups(h):
    root = h.cgroup(tag="node")
    side = h.cgroup(tag="kubeproxy")     # not enrolled, not the pod's
    pod = podnet.make_pod(h, root)
    vip, _, port = wh.vip_addr().rpartition(":")   # nothing listens there in this netns
    port = int(port)
    s = podnet.fallback_server(pod, "%s:%d" % (vip, port), cgroup=side)
    assert s.addr == "%s:%d" % (vip, port)
    assert side.pids() == [s.proc.pid]
    assert os.stat("/proc/%d/ns/net" % s.proc.pid).st_ino == podnet.ns_inode(pod.netns)
    assert not podnet.proc_cgroup(s.proc.pid).startswith(pod.cgroup + "/")
    get = ("import http.client, sys\n"
           "c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=5)\n"
           "c.request('GET', '/x')\n"
           "r = c.getresponse()\n"
           "print(r.status, r.read().decode())\n")
    r = pod.exec([PY, "-c", get, vip, str(port)])
    status, _, body = r.stdout.strip().partition(" ")
    assert (r.returncode, status) == (0, "200"), r
    assert json.loads(body)["server"] == "direct", body
    # it is inside the pod only: here nothing listens there
    probe = socket.socket()
    probe.settimeout(5)
    try:
        assert probe.connect_ex((vip, port)) != 0
    finally:
        probe.close()
    with pytest.raises(ValueError):
        podnet.fallback_server(pod, "127.0.0.1:0", cgroup=pod.pause.cgroup)
    assert s.proc.poll() is None
    pod.delete()
    assert s.proc.poll() is not None, "pod.delete() stops its fallback servers"
    check_gone(pod)


def test_netns_count_sees_a_namespace_held_after_delete(h):
    """The count is what would catch a leak: a process outside the pod's
    cgroups still in its netns keeps the namespace alive after delete()."""
    start = podnet.netns_baseline()
    pod = podnet.make_pod(h, h.cgroup(tag="node"))
    holder = wh.spawn(wh.netns_argv(pod.netns, [PY, "-c", "import time; time.sleep(60)",
                                                wh.run_prefix() + "holder"]),
                      stdin=subprocess.DEVNULL)
    h._push("holder", lambda: wh.stop_process(holder, 2))
    assert wh.wait_for(lambda: os.stat("/proc/%d/ns/net" % holder.pid).st_ino
                       == podnet.ns_inode(pod.netns), 5)
    pod.delete()
    assert not os.path.exists(os.path.join(wh.NETNS_DIR, pod.netns))
    check_count(start, alive=1)
    assert pod.netns_gone() is False, "the holder keeps it alive"
    wh.stop_process(holder, 2)
    assert pod.wait_netns_gone()
    check_count(start)


def test_twenty_pods_leave_nothing(h):
    start = podnet.netns_baseline()
    root = h.cgroup(tag="node")
    kinds = [(d, q, hn) for d in podnet.DRIVERS for q in podnet.QOS for hn in (False, True)]
    specs = [kinds[i % len(kinds)] for i in range(20)]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        pods = list(ex.map(lambda s: podnet.make_pod(h, root, driver=s[0], qos=s[1],
                                                     hostnetwork=s[2]), specs))
    netted = [p for p in pods if not p.hostnetwork]
    assert len({p.ip for p in netted}) == len(netted)
    assert len({ipaddress.ip_network("%s/30" % p.ip, strict=False) for p in netted}) == len(netted)
    assert len({p.host_if for p in netted}) == len(netted)
    assert len({p.uid for p in pods}) == 20
    check_count(start, alive=len(netted))
    for p in pods:
        check_shape(p, root)
        check_pause(p)
    found = podnet.pod_leftovers()
    assert len(found["netns"]) == len(netted) and len(found["links"]) == len(netted)
    assert len(found["processes"]) == 20
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda p: p.delete(), pods))
    for p in pods:
        check_gone(p)
    assert subdirs(root.path) == []
    assert podnet.pod_leftovers() == {"netns": [], "processes": [], "links": []}
    left = wh.leftovers(include_dead_runs=False)
    assert left["cgroups"] == [root.path] and left["netns"] == [], left
    check_count(start)


def test_harness_close_deletes_pods_and_failed_make_leaves_nothing(tmp_path):
    probs = podnet.problems()
    if probs:
        _skip_or_fail("; ".join(probs))
    start = podnet.netns_baseline()
    hh = wh.Harness(None, str(tmp_path))
    try:
        root = hh.cgroup(tag="node")
        pods = [podnet.make_pod(hh, root, driver=d) for d in podnet.DRIVERS]
        pods[0].run([PY, "-c", "import time; time.sleep(600)"])
        # a pod on a node netns that does not exist: make_pod fails, undoes itself
        with pytest.raises(RuntimeError):
            podnet.make_pod(hh, root, node_netns=wh.unique_name("nosuchnode"))
        assert len(subdirs(os.path.join(root.path, "kubepods.slice",
                                        "kubepods-burstable.slice"))) == 1
        assert len(podnet.pod_leftovers()["netns"]) == 2
    finally:
        errs = hh.close()     # what a failing test's teardown does
    assert errs == []
    for p in pods:
        check_gone(p)
    assert not os.path.exists(root.path)
    assert podnet.pod_leftovers() == {"netns": [], "processes": [], "links": []}
    assert wh.leftovers(include_dead_runs=False) == {"cgroups": [], "pins": [], "netns": [],
                                                      "processes": []}
    check_count(start)
