# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Kubernetes-pod-shaped test objects, made the way a kubelet and a container
runtime (containerd) would make them, for the in-pod interception tests.
Stdlib only; builds on weft_harness.py.

A pod is:

* a network namespace named unique_name("pod") (so leftovers() finds it),
  lo up (127.0.0.1 and ::1 exist inside), joined to the current netns (or to
  the "node" netns node_netns) by a veth pair: host side "wp<6 hex>h" (its
  alias is the pod name), pod side "eth0". Each pod gets a /30 of
  198.18.128.0/17: pod side .2, host side .1 (SubnetAllocator). Inside the
  pod: the connected /30 and 198.18.0.0/15 via the host side, no default
  route. On the host side: only the connected /30. With hostnetwork=True
  there is no netns and no veth: processes run in the current netns (or in
  node_netns).

* cgroups in the kubelet layout under a root cgroup that the caller owns
  (a harness Cgroup or a path; the caller enrols pod_glob(root, driver)):

    systemd   ROOT/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<UID_>.slice/
                  cri-containerd-<64 hex>.scope
              guaranteed: ROOT/kubepods.slice/kubepods-pod<UID_>.slice/cri-containerd-<64 hex>.scope
    cgroupfs  ROOT/kubepods/<qos>/pod<UID>/<64 hex>
              guaranteed: ROOT/kubepods/pod<UID>/<64 hex>

  (UID_ is the UID with '-' replaced by '_'.) The shared intermediate
  directories (kubepods.slice, kubepods-burstable.slice, kubepods, burstable)
  are made when missing and removed at teardown when empty.

* the pause (sandbox) container: its own container cgroup, and a process
  that holds the netns. It joins its cgroup and the netns before exec'ing
  the final program (sh: echo $$ > cgroup.procs; exec nsenter --net=...),
  and its command line carries the pod name so leftovers() lists it.

* app containers: Pod.run() / Pod.exec() start a process in a new container
  cgroup of the pod, in the pod's netns (harness spawn(), so the suite's
  end-of-session process check sees them).

Pod.delete() (idempotent; make_pod registers it with the Harness, so a failing
test cleans up too) kills everything in the pod's cgroups (cgroup.kill), waits
for them to be empty, removes the container cgroups, the pod cgroup and the
now-empty shared parents, the veth and the netns. Pod.netns_gone() tells
whether the kernel has dismantled the pod's netns (nothing holds it any more).

fallback_server() stands in for kube-proxy's ClusterIP: an HTTP server in the
pod's netns, outside the pod's cgroups, answering {"server": "direct", ...}.

netns_count() counts the live network namespaces of the whole kernel (from
/proc/slabinfo, made exact: see the comment above it); wait_netns_count()
polls it, since namespace teardown is asynchronous in the kernel;
netns_baseline() is the value to start from.
"""

import errno
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
import uuid

import weft_harness as wh

DRIVERS = ("systemd", "cgroupfs")
QOS = ("guaranteed", "burstable", "besteffort")
POD_RANGE = ipaddress.ip_network("198.18.128.0/17")   # one /30 per pod
MESH_RANGE = "198.18.0.0/15"                           # routed via the host side
SLAB_SHRINK = "/sys/kernel/slab/net_namespace/shrink"

# The pause program: sleeps until killed; argv[1] (the pod name) is ignored by
# the program and is there for leftovers().
_PAUSE = "import time\nwhile True:\n    time.sleep(86400)\n"

_lock = threading.RLock()     # the shared cgroup parents (made / removed when empty)


# --------------------------------------------------------------------------
# small helpers

def _path(cg):
    return cg.path if isinstance(cg, wh.Cgroup) else str(cg)


def _ip(*args, ns=None, check=True):
    argv = ["ip"] + (["-n", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError("%s: rc=%d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r


def _ip_json(*args, ns=None):
    r = _ip("-j", *args, ns=ns)
    return json.loads(r.stdout) if r.stdout.strip() else []


def ns_inode(netns=None):
    """Inode of a named netns (None: this process's netns): compare it with
    os.stat('/proc/PID/ns/net').st_ino."""
    if netns is None:
        return os.stat("/proc/self/ns/net").st_ino
    return os.stat(os.path.join(wh.NETNS_DIR, netns)).st_ino


def link_exists(ifname, netns=None):
    """Is there a network interface ifname in netns (None: this one)?"""
    return _ip("link", "show", "dev", ifname, ns=netns, check=False).returncode == 0


def problems():
    """Reasons pods cannot be made here (empty list: they can)."""
    probs = []
    if os.geteuid() != 0:
        probs.append("not root (euid %d): pods need netns, veth and cgroups" % os.geteuid())
    if wh.cgroup2_mount() is None:
        probs.append("no cgroup2 mount in /proc/self/mountinfo")
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            probs.append("%s not found" % tool)
    if not os.access(wh.PYTHON, os.X_OK):
        probs.append("%s not found" % wh.PYTHON)
    if not probs:
        try:
            _slab_net_objects()
        except (OSError, RuntimeError) as e:
            probs.append("cannot count network namespaces: %s" % e)
    return probs


# --------------------------------------------------------------------------
# addresses: one /30 of 198.18.128.0/17 per pod

class SubnetAllocator:
    """/30s of POD_RANGE, handed out round-robin from a start index (taken
    from the pid: two concurrent runs are unlikely to start at the same
    place). Never hands out a /30 that a live pod of this process holds, nor
    one that has an address already on it in the netns where the host side
    goes, nor a 198.18.X.0/30 (the /30s weft_harness.two_nodes() uses)."""

    def __init__(self, start=None, network=POD_RANGE):
        self.network = network
        self.n = network.num_addresses // 4
        self.next = (os.getpid() * 2654435761 if start is None else start) % self.n
        self.used = set()
        self.lock = threading.Lock()

    def subnet(self, i):
        return ipaddress.ip_network((int(self.network.network_address) + 4 * i, 30))

    def take(self, existing):
        """existing: IPv4 addresses (strings) present where the host side will
        be. -> (index, ipaddress.IPv4Network /30)."""
        taken = [ipaddress.ip_address(a) for a in existing]
        with self.lock:
            for _ in range(self.n):
                i = self.next
                self.next = (self.next + 1) % self.n
                net = self.subnet(i)
                if i in self.used or int(net.network_address) % 256 == 0:
                    continue
                if any(a in net for a in taken):
                    continue
                self.used.add(i)
                return i, net
        raise RuntimeError("no free /30 left in %s" % self.network)

    def release(self, i):
        with self.lock:
            self.used.discard(i)


_alloc = SubnetAllocator()


def _addresses(netns=None):
    """IPv4 addresses on every interface of netns (None: this one)."""
    out = []
    for link in _ip_json("addr", "show", ns=netns):
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                out.append(a["local"])
    return out


# --------------------------------------------------------------------------
# network namespace counting (kernel wide)
#
# /proc/slabinfo's net_namespace active_objs is the number of struct net
# allocated, which is more than the live namespaces in two ways:
# * SLUB counts the free objects of each CPU's current slab as active: a
#   shrink of the cache (/sys/kernel/slab/net_namespace/shrink) flushes them;
# * the kernel frees a dismantled namespace's struct net only in the *next*
#   dismantle round (net/core/net_namespace.c: net_passive_dec() queues it on
#   defer_free_list, the next cleanup_net() frees it in net_complete_free()),
#   so the last batch of deleted namespaces stays counted until some other
#   namespace dies. netns_count() starts such a round itself, with a
#   throwaway namespace, and subtracts that one.
# init_net is not in the cache (it is static): netns_count() adds it.

def _slab_net_objects():
    """net_namespace active_objs from /proc/slabinfo, after a shrink."""
    try:
        with open(SLAB_SHRINK, "w") as f:
            f.write("1\n")
    except OSError:
        pass
    with open("/proc/slabinfo") as f:
        for line in f:
            parts = line.split()
            if parts and parts[0] == "net_namespace":
                return int(parts[1])
    raise RuntimeError("no net_namespace line in /proc/slabinfo")


def _throwaway_netns():
    """Make a network namespace and drop it at once (a thread unshares one and
    exits): the kernel runs a dismantle round for it."""
    import ctypes
    err = []

    def run():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(wh.CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            err.append(OSError(e, "unshare(CLONE_NEWNET): %s" % os.strerror(e)))
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]


def netns_count(settle=0.15, timeout=3.0):
    """Live network namespaces in the kernel, init_net included (root only):
    net_namespace's active_objs in /proc/slabinfo, made exact (see above) by
    a shrink and a dismantle round of a throwaway namespace, read once it has
    stayed the same for settle seconds (at most timeout). Namespaces deleted
    but not yet freed are counted (teardown is asynchronous): the value never
    undercounts and, polled, comes down to the exact number."""
    _throwaway_netns()
    deadline = time.monotonic() + timeout
    n, since = _slab_net_objects(), time.monotonic()
    while time.monotonic() - since < settle and time.monotonic() < deadline:
        time.sleep(0.01)
        m = _slab_net_objects()
        if m != n:
            n, since = m, time.monotonic()
    return n - 1 + 1    # - the throwaway namespace + init_net


def netns_baseline(timeout=30.0):
    """netns_count() once two reads in a row agree (at most timeout): the
    value to come back to at the end of a test, without the namespaces that
    an earlier test deleted and the kernel is still tearing down."""
    deadline = time.monotonic() + timeout
    last = netns_count()
    while time.monotonic() < deadline:
        n = netns_count()
        if n == last:
            break
        last = n
    return last


def other_runs():
    """Pids of other live weft e2e runs (their weft-e2e-<pid>-* netns or
    processes): while there are some, kernel-wide counts such as
    netns_count() move under a test's feet."""
    me, pids = os.getpid(), set()
    names = os.listdir(wh.NETNS_DIR) if os.path.isdir(wh.NETNS_DIR) else []
    for pid_s in os.listdir("/proc"):
        if pid_s.isdigit() and int(pid_s) != me:
            try:
                with open("/proc/%s/cmdline" % pid_s, "rb") as f:
                    names += f.read().decode(errors="replace").replace("\0", " ").split()
            except OSError:
                pass
    for word in names:
        i = word.find(wh.PREFIX)
        if i >= 0:
            pid = wh._owner_pid(word[i:].split("/")[0])
            if pid is not None and pid != me and wh._pid_alive(pid):
                pids.add(pid)
    return sorted(pids)


def wait_netns_count(target, timeout=30.0, interval=0.05):
    """Poll netns_count() until it is <= target or timeout; returns the last
    count (<= target on success). '<=' and not '==' so that a namespace of
    someone else freed meanwhile does not make it wait in vain."""
    deadline = time.monotonic() + timeout
    while True:
        n = netns_count()
        if n <= target or time.monotonic() >= deadline:
            return n
        time.sleep(interval)


# --------------------------------------------------------------------------
# cgroups

def _container_id():
    return secrets.token_hex(32)


def pod_cgroup_path(root, driver, qos, uid):
    """(shared parent dirs, outermost first; pod cgroup) for a pod under root."""
    root = _path(root)
    u = uid.replace("-", "_")
    if driver == "systemd":
        kp = os.path.join(root, "kubepods.slice")
        if qos == "guaranteed":
            return [kp], os.path.join(kp, "kubepods-pod%s.slice" % u)
        q = os.path.join(kp, "kubepods-%s.slice" % qos)
        return [kp, q], os.path.join(q, "kubepods-%s-pod%s.slice" % (qos, u))
    if driver == "cgroupfs":
        kp = os.path.join(root, "kubepods")
        if qos == "guaranteed":
            return [kp], os.path.join(kp, "pod%s" % uid)
        q = os.path.join(kp, qos)
        return [kp, q], os.path.join(q, "pod%s" % uid)
    raise ValueError("driver %r: one of %s" % (driver, DRIVERS))


def container_cgroup_name(driver, cid):
    return "cri-containerd-%s.scope" % cid if driver == "systemd" else cid


def pod_glob(root_cgroup, driver="systemd", relative=False):
    """intercept.cgroups entries matching every pod-level cgroup of driver
    under root_cgroup (all QoS classes), as a list of globs. Absolute paths,
    like the other tests pass (relative=True: relative to the cgroup2 mount;
    weftd takes both)."""
    root = _path(root_cgroup)
    if driver == "systemd":
        globs = [os.path.join(root, "kubepods.slice", "kubepods-pod*.slice"),
                 os.path.join(root, "kubepods.slice", "kubepods-*.slice", "kubepods-*-pod*.slice")]
    elif driver == "cgroupfs":
        globs = [os.path.join(root, "kubepods", "pod*"),
                 os.path.join(root, "kubepods", "burstable", "pod*"),
                 os.path.join(root, "kubepods", "besteffort", "pod*")]
    else:
        raise ValueError("driver %r: one of %s" % (driver, DRIVERS))
    if relative:
        mount = wh.cgroup2_mount()
        globs = [os.path.relpath(g, mount) for g in globs]
    return globs


def cgroup_populated(path):
    """True if path or a descendant has a live process (cgroup.events)."""
    try:
        with open(os.path.join(path, "cgroup.events")) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == "populated":
                    return v.strip() != "0"
    except FileNotFoundError:
        return False
    return True


def kill_cgroup(path, timeout=10.0):
    """SIGKILL every process in path and below; wait until it is empty.
    Raises RuntimeError if it is not empty after timeout."""
    if not os.path.isdir(path):
        return
    deadline = time.monotonic() + timeout
    while cgroup_populated(path):
        try:
            with open(os.path.join(path, "cgroup.kill"), "w") as f:
                f.write("1\n")
        except FileNotFoundError:
            if not os.path.isdir(path):
                return
            # no cgroup.kill (kernel < 5.14): kill the pids one by one
            for d, _, _ in os.walk(path):
                for pid in wh.Cgroup(d).pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
        if time.monotonic() > deadline:
            raise RuntimeError("cgroup %s still has processes after %.0fs: %s"
                               % (path, timeout, wh.Cgroup(path).pids()))
        time.sleep(0.02)


def _rmdir(path, timeout=5.0):
    """rmdir path (gone already: fine); retries while busy, then raises."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


# --------------------------------------------------------------------------
# pods

class Container:
    """One container of a pod: name, id (64 hex), cgroup (path), proc (the
    Popen started in it, or None)."""

    def __init__(self, name, cid, cgroup):
        self.name, self.id, self.cgroup = name, cid, cgroup
        self.proc = None

    def __repr__(self):
        return "Container(%s %s)" % (self.name, self.id[:12])

    def pids(self):
        return wh.Cgroup(self.cgroup).pids()


class Pod:
    """A pod (see the module doc). Made by make_pod(); attributes:
    name, uid, driver, qos, hostnetwork, cgroup (pod-level cgroup path),
    netns (the netns name its processes run in; None: the current one),
    ip / host_ip (pod side / host side veth addresses; None for hostNetwork),
    host_if (host side veth name), nsid (the pod netns's id in the host
    side's netns), node_netns, pause (Container), containers."""

    def __init__(self, harness, root_cgroup, driver="systemd", qos="burstable",
                 hostnetwork=False, node_netns=None):
        if driver not in DRIVERS:
            raise ValueError("driver %r: one of %s" % (driver, DRIVERS))
        if qos not in QOS:
            raise ValueError("qos %r: one of %s" % (qos, QOS))
        self.harness = harness
        self.root = _path(root_cgroup)
        self.driver, self.qos = driver, qos
        self.hostnetwork = bool(hostnetwork)
        self.node_netns = node_netns
        self.name = wh.unique_name("pod")
        self.uid = str(uuid.uuid4())
        self.parents, self.cgroup = pod_cgroup_path(self.root, driver, qos, self.uid)
        self.netns = node_netns if self.hostnetwork else None
        self.ip = self.host_ip = self.host_if = self.nsid = None
        self.prefixlen = 30
        self.pause = None
        self.containers = []
        self.fallbacks = []
        self._subnet = None          # allocator index
        self._own_netns = None       # the netns name this pod made
        self._made_cgroup = False
        self._link_made = False
        self._deleted = False
        self._procs = []

    def __repr__(self):
        return "Pod(%s %s/%s uid=%s ip=%s netns=%s)" % (self.name, self.driver, self.qos,
                                                       self.uid, self.ip, self.netns)

    # making ---------------------------------------------------------------
    def _create(self, start_pause=True):
        with _lock:
            for d in self.parents:
                try:
                    os.mkdir(d)
                except FileExistsError:
                    pass
            os.mkdir(self.cgroup)
            self._made_cgroup = True
        if not self.hostnetwork:
            self._make_network()
        if start_pause:
            self._start_pause()

    def _make_network(self):
        node = self.node_netns
        self._subnet, net = _alloc.take(_addresses(node))
        hosts = list(net.hosts())
        self.host_ip, self.ip = str(hosts[0]), str(hosts[1])
        self._own_netns = self.name
        wh.netns_add(self.name)             # lo up
        self.netns = self.name
        for _ in range(20):
            name = "wp%sh" % secrets.token_hex(3)
            r = _ip("link", "add", name, "type", "veth", "peer", "name", "eth0",
                    "netns", self.name, ns=node, check=False)
            if r.returncode == 0:
                self.host_if = name
                self._link_made = True
                break
            if "exists" not in r.stderr:
                raise RuntimeError("ip link add %s (veth to %s): %s"
                                   % (name, self.name, r.stderr.strip()))
        else:
            raise RuntimeError("no free veth name after 20 tries")
        _ip("link", "set", "dev", self.host_if, "alias", self.name, ns=node)
        _ip("addr", "add", "%s/30" % self.host_ip, "dev", self.host_if, ns=node)
        _ip("link", "set", "dev", self.host_if, "up", ns=node)
        _ip("addr", "add", "%s/30" % self.ip, "dev", "eth0", ns=self.name)
        _ip("link", "set", "dev", "eth0", "up", ns=self.name)
        _ip("route", "add", MESH_RANGE, "via", self.host_ip, "dev", "eth0", ns=self.name)
        # the veth gave the pod's netns an id in the host side's netns; it
        # stays there until the kernel dismantles the pod's netns
        ids = [e["nsid"] for e in _ip_json("netns", "list-id", ns=node)
               if e.get("name") == self.name]
        self.nsid = ids[0] if ids else None

    def _new_container(self, name):
        cid = _container_id()
        path = os.path.join(self.cgroup, container_cgroup_name(self.driver, cid))
        os.mkdir(path)
        c = Container(name or "c%d" % len(self.containers), cid, path)
        self.containers.append(c)
        return c

    def argv(self, container, argv):
        """argv wrapped to join container's cgroup, then the pod's netns."""
        cg = container.cgroup if isinstance(container, Container) else container
        return wh.in_cgroup_argv(cg, wh.netns_argv(self.netns, argv))

    def _start_pause(self, timeout=10.0):
        c = self._new_container("pause")
        self.pause = c
        p = wh.spawn(self.argv(c, [wh.PYTHON, "-S", "-c", _PAUSE, self.name + "-pause"]),
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE)
        c.proc = p
        self._procs.append(p)
        want = ns_inode(self.netns)
        deadline = time.monotonic() + timeout
        while True:     # until it runs the pause program in the netns
            try:
                with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                    cmd = f.read()
                ok = (self.name.encode() + b"-pause" in cmd and b"nsenter" not in cmd
                      and b"/bin/sh" not in cmd
                      and os.stat("/proc/%d/ns/net" % p.pid).st_ino == want)
            except OSError:
                ok = False
            if ok:
                return c
            if p.poll() is not None or time.monotonic() > deadline:
                err = ""
                if p.poll() is not None:
                    err = p.stderr.read().decode(errors="replace")
                raise RuntimeError("pause of %s did not start (rc %s): %s"
                                   % (self.name, p.returncode, err.strip()))
            time.sleep(0.01)

    # using ----------------------------------------------------------------
    def container_cgroups(self):
        """Paths of the container cgroups (the pause container's first)."""
        return [c.cgroup for c in self.containers]

    def run(self, argv, name=None, **popen_kw):
        """Start argv in a new container (cgroup) of the pod, in its netns.
        Returns the Popen (harness spawn()); .container is its Container.
        stdin defaults to /dev/null. Its command line is argv: put a
        run_prefix() word in it if leftovers() must see it (pod.delete()
        kills it either way)."""
        self._check_alive()
        c = self._new_container(name)
        popen_kw.setdefault("stdin", subprocess.DEVNULL)
        p = wh.spawn(self.argv(c, argv), **popen_kw)
        c.proc = p
        p.container = c
        self._procs.append(p)
        return p

    def exec(self, argv, timeout=30.0, container=None, input=None):
        """Run argv to completion in the pod's netns -> CompletedProcess
        (text stdout/stderr). container None: in a new container cgroup,
        removed afterwards (with whatever it left running); a Container (or
        its name): in that container's cgroup, like `kubectl exec`. On
        timeout the process is killed and TimeoutExpired raised."""
        self._check_alive()
        temp = container is None
        if temp:
            c = self._new_container(None)
        elif isinstance(container, Container):
            c = container
        else:
            found = [x for x in self.containers if x.name == container]
            if not found:
                raise ValueError("%s has no container %r" % (self.name, container))
            c = found[0]
        p = wh.spawn(self.argv(c, argv), stdin=subprocess.PIPE if input is not None
                     else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True)
        try:
            out, err = p.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise subprocess.TimeoutExpired(argv, timeout, out, err)
        finally:
            if temp:
                kill_cgroup(c.cgroup)
                _rmdir(c.cgroup)
                self.containers.remove(c)
        return subprocess.CompletedProcess(argv, p.returncode, out, err)

    def _check_alive(self):
        if self._deleted:
            raise RuntimeError("%s is deleted" % self.name)

    def netns_gone(self):
        """Has the kernel dismantled the pod's netns (nothing holds it any
        more: no process, socket or mount)? Looks for the pod's nsid in the
        host side's netns (`ip netns list-id`), which the kernel removes when
        it dismantles the namespace; an nsid now shown with another name was
        reused. None for a hostNetwork pod (or if that cannot be told)."""
        if self.hostnetwork or self.nsid is None:
            return None
        try:
            ids = _ip_json("netns", "list-id", ns=self.node_netns)
        except RuntimeError:
            return None     # the node netns is gone
        for e in ids:
            if e["nsid"] == self.nsid:
                return e.get("name") not in (None, self.name)
        return True

    def wait_netns_gone(self, timeout=10.0):
        """Poll netns_gone() until True or timeout; returns its last value."""
        return wh.wait_for(self.netns_gone, timeout, 0.05)

    # deleting -------------------------------------------------------------
    def delete(self, timeout=10.0):
        """Kill the pod's processes, remove its cgroups (and the shared
        parents left empty), its veth and its netns. Idempotent; raises
        RuntimeError if something could not be removed (a retry goes on
        from there)."""
        self._deleted = True
        for s in list(self.fallbacks):
            s.stop()
            self.fallbacks.remove(s)
        if self._made_cgroup:
            kill_cgroup(self.cgroup, timeout)
            for p in self._procs:
                try:
                    p.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
                for f in (p.stdin, p.stdout, p.stderr):
                    if f is not None:
                        try:
                            f.close()
                        except OSError:
                            pass
            with _lock:
                for c in list(self.containers):
                    _rmdir(c.cgroup)
                    self.containers.remove(c)
                _rmdir(self.cgroup)
                self._made_cgroup = False
        with _lock:
            if not os.path.isdir(self.cgroup):
                for d in reversed(self.parents):   # innermost first; shared: only if empty
                    try:
                        os.rmdir(d)
                    except OSError as e:
                        if e.errno in (errno.ENOTEMPTY, errno.EBUSY):
                            break
                        if e.errno != errno.ENOENT:
                            raise
        if self._link_made:
            r = _ip("link", "del", "dev", self.host_if, ns=self.node_netns, check=False)
            if r.returncode != 0 and link_exists(self.host_if, self.node_netns):
                raise RuntimeError("ip link del %s: %s" % (self.host_if, r.stderr.strip()))
            self._link_made = False
        if self._own_netns is not None:
            wh.netns_del(self._own_netns)
            if os.path.exists(os.path.join(wh.NETNS_DIR, self._own_netns)):
                raise RuntimeError("ip netns delete %s failed" % self._own_netns)
            self._own_netns = None
        if self._subnet is not None:
            _alloc.release(self._subnet)
            self._subnet = None


def make_pod(harness, root_cgroup, driver="systemd", qos="burstable", hostnetwork=False,
             node_netns=None, start_pause=True):
    """A Pod under root_cgroup (a Cgroup or a path), deleted when harness
    closes (or earlier by pod.delete()). driver: "systemd" | "cgroupfs";
    qos: "burstable" | "besteffort" | "guaranteed"; hostnetwork: no netns of
    its own (processes run in node_netns, or in the current netns);
    node_netns: the netns the veth's host side goes to (None: the current
    one); start_pause: start the pause container. If making it fails, what
    was made is removed and the error raised."""
    pod = Pod(harness, root_cgroup, driver, qos, hostnetwork, node_netns)
    harness._push("pod %s" % pod.name, pod.delete)
    try:
        pod._create(start_pause)
    except BaseException:
        try:
            pod.delete()
        except Exception:
            pass        # the harness tries again at close
        raise
    return pod


# --------------------------------------------------------------------------
# the stand-in for kube-proxy's ClusterIP

class FallbackServer(wh.Server):
    """weft_harness.py `serve --mode http --name direct` inside a pod's netns
    (and in cgroup, never one of the pod's): every request gets 200 with the
    JSON body {"server": "direct", "peer": ..., "local": ...}."""

    def __init__(self, pod, listen, cgroup=None, workdir=None):
        self.mode, self.name, self.pod = "http", "direct", pod
        self.err_path = os.path.join(workdir or "/tmp", "%s.direct.stderr" % wh.unique_name())
        argv = [wh.PYTHON, wh.SCRIPT, "serve", "--mode", "http", "--name", "direct",
                "--listen", listen, "--tag", pod.name + "-direct"]
        self._err = open(self.err_path, "wb")
        self.proc = wh.spawn(wh.in_cgroup_argv(cgroup, wh.netns_argv(pod.netns, argv)),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._err)
        self.events = []
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ev = self.wait_event(lambda e: e["event"] == "listening", timeout=10)
        if ev is None:
            self.stop()
            raise RuntimeError("fallback server on %s in %s did not start: %s"
                               % (listen, pod.name, self.stderr()))
        self.addr = ev["addr"]

    def stop(self):
        if not self._err.closed:
            super().stop()


def fallback_server(pod, addr, cgroup=None):
    """Start, inside pod's netns, an HTTP server on addr (e.g. a 127.x VIP:port)
    answering every request with {"server": "direct", ...}: what a connect
    the mesh does not take reaches (kube-proxy's ClusterIP stand-in). It runs
    in cgroup (a Cgroup or path the caller gives, never enrolled; None: the
    cgroup of this process), not in the pod's cgroups. Stopped by pod.delete()
    or when the harness closes."""
    if cgroup is not None:
        cp = _path(cgroup)
        if cp == pod.cgroup or cp.startswith(pod.cgroup + "/"):
            raise ValueError("the fallback server must not be in the pod's cgroups")
    h = pod.harness
    s = FallbackServer(pod, addr, cgroup=cgroup, workdir=getattr(h, "workdir", None))
    pod.fallbacks.append(s)
    h.servers.append(s)
    h._push("fallback server %s in %s" % (s.addr, pod.name), s.stop)
    return s


# --------------------------------------------------------------------------
# inspection helpers (for the tests)

def proc_cgroup(pid):
    """The cgroup2 path of pid, absolute (under the cgroup2 mount)."""
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            if line.startswith("0::"):
                return os.path.join(wh.cgroup2_mount(), line[3:].strip().lstrip("/"))
    return None


def pod_leftovers(found=None):
    """leftovers() (of this run) restricted to pod objects: netns and
    processes whose name carries '-pod' after the run prefix, plus every
    host-side veth 'wp*h' (in this netns) whose alias is one of this run's."""
    found = found if found is not None else wh.leftovers(include_dead_runs=False)
    pat = re.compile(re.escape(wh.run_prefix()) + r"\d+-pod\b")
    out = {"netns": [n for n in found["netns"] if pat.match(n)],
           "processes": [(pid, cmd) for pid, cmd in found["processes"] if pat.search(cmd)],
           "links": []}
    for link in _ip_json("link", "show"):
        if pat.match(link.get("ifalias", "") or ""):
            out["links"].append(link["ifname"])
    return out


def require_pods():
    """In a test (or autouse fixture): skip when pods cannot be made here,
    with the reasons; under WEFT_REQUIRE_PRIV=1 (CI) fail instead."""
    import pytest
    probs = problems()
    if probs:
        msg = "pods cannot be made here: %s" % "; ".join(probs)
        if os.environ.get("WEFT_REQUIRE_PRIV") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
