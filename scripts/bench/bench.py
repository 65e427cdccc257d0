#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""weft benchmark driver. Run it through scripts/bench/run.sh (or `make bench`),
which installs the tools, builds the load generator, and sweeps up after this
script even if it is killed.

One run, one machine, one backend (nginx, 100-byte static file, keep-alive),
six ways to reach it:

  direct           client -> nginx                                    (no proxy)
  weft-tcp         client (enrolled cgroup) -> VIP -> weftd -> nginx  protocol "tcp",
                   weftd's defaults (kernel fast paths on, where it has them)
  weft-tcp-nofast  the same through a second weftd with agent.redirect_loopback
                   and agent.splice off (only if this weftd has those switches)
  weft-http        like weft-tcp, service protocol "http" (layer 7: per-request parsing, pool)
  haproxy-tcp      client -> HAProxy (mode tcp, nbthread 1) -> nginx
  haproxy-http     client -> HAProxy (mode http, nbthread 1) -> nginx

and, from inside a Kubernetes-shaped pod (its own network namespace joined to
the host by a veth, kubelet-layout cgroups under the benchmark's, a pause
process; the benchmark's weftd enrols it and listens inside it):

  direct-pod       client in the pod -> veth -> nginx on the host side of the veth
  weft-http-pod    client in the pod -> VIP -> weftd's listener in the pod -> nginx

and, for raw TCP latency, a sockperf server reached directly, through weftd and
through HAProxy mode tcp. Per target and round: wrk requests/s (and the proxy's
CPU time per 100k requests), open-loop HTTP latency at a fixed rate
(build/bench/weft-loadgen rate), sockperf ping-pong one-way latency at a fixed
message rate. Once per proxy target, on a freshly started proxy: resident
memory idle and with N idle connections held open through it. At the end, the
per-pod cost: weftd's descriptors and RSS before and after BENCH_PODS more pods
(network namespace, cgroups, a pause process each) are served. Last, the
Kubernetes discovery phase (run_kube; alone with BENCH_ONLY=kube): a third
weftd discovering 10k Services / 100k endpoints from the e2e tests' API server
(tests/e2e/kubeapi.py, run in this process): initial sync, full relists after
a 410, single watch events, with weftd's CPU and peak RSS. Results:
build/bench/results.md and results.json; configs and logs in build/bench/logs/.

Every object is named weft-bench-<run id>: the cgroup tree under the cgroup2
mount (the pods' cgroups are inside it), the bpffs pin directories
(weft-bench-<id>, weft-bench-<id>-nofast, weft-bench-<id>-kube), the network namespaces
weft-bench-<id>-*, the pod's veth wbench<id> (host side), the temp directory.
All traffic stays on 127.0.0.0/8 and on the pod's veth (a free /30 of
198.18.254.0/24; the pod has no route beyond it); the discovery phase's
ClusterIPs (127.13.0.0/16) and endpoints (198.18.0.0/15) are only written to
its weftd's state, never dialled. Knobs (environment): see ENV
below and docs/benchmarks.md.
"""

import argparse
import datetime
import ipaddress
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BPFFS = "/sys/fs/bpf"
PREFIX = "weft-bench-"
PYTHON = "/usr/bin/python3"
GRPC_PEER = os.path.join(REPO, "tests", "e2e", "grpc_peer.py")     # the gRPC server of the e2e tests
H2HOLD = os.path.join(REPO, "scripts", "bench", "h2hold.py")       # raw HTTP/2 holds, the server that never answers
GRPC_RATE = os.path.join(REPO, "scripts", "bench", "grpc_rate.py")  # gRPC unary calls at a fixed rate
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
NETNS_DIR = "/run/netns"
# The bench pod's veth gets a free /30 of this (host side .1, pod side .2). The
# e2e tests' pods take /30s of 198.18.128.0/17 but never a 198.18.X.0/30, and
# this one is tried first; every candidate is checked against the addresses
# and routes already on the host.
POD_NET = "198.18.254.0/24"

# The Kubernetes phase's node names: weftd is on KUBE_NODE; a fifth of the
# endpoints are on KUBE_OTHER_NODE (its InternalIP is never dialled).
KUBE_NODE = "bench-node-a"
KUBE_OTHER_NODE = "bench-node-b"
# Targets of issue 13 for a relist of 10k Services / 100k endpoints.
KUBE_TARGET_CPU_S = 1.0
KUBE_TARGET_RSS_MIB = 64.0

L7_NOTE = ("this weftd shows no per-request metrics for the weft-http service "
           '(protocol = "http"), so it relayed the bytes as opaque TCP, like weft-tcp: the row '
           "does not measure HTTP at layer 7 (an old weftd, or the service fell back to opaque).")

ENV = {
    # name: (default, type, what)
    "BENCH_ROUNDS": (3, int, "rounds (median and min-max are reported)"),
    "BENCH_WRK_SECONDS": (4, int, "wrk duration per target and round"),
    "BENCH_WRK_CONNS": (32, int, "wrk connections (keep-alive)"),
    "BENCH_WRK_THREADS": (1, int, "wrk threads"),
    "BENCH_LAT_SECONDS": (3.0, float, "recorded seconds of the fixed-rate HTTP latency run"),
    "BENCH_HTTP_RATE": (2000, int, "fixed request rate of the HTTP latency run (req/s)"),
    "BENCH_HTTP_CONNS": (16, int, "connections of the HTTP latency run"),
    "BENCH_SOCKPERF_MPS": (10000, int, "sockperf ping-pong message rate (msg/s)"),
    "BENCH_SOCKPERF_SECONDS": (4, int, "sockperf duration (its first 400 ms are warm-up)"),
    "BENCH_SOCKPERF_MSG": (64, int, "sockperf message size (bytes)"),
    "BENCH_HOLD_CONNS": (10000, int, "idle connections held through each proxy (capped by RLIMIT_NOFILE)"),
    "BENCH_THREADS": (1, int, "proxy threads: HAProxy nbthread, weftd agent.workers when it exists"),
    "BENCH_PIN": ("split", str, "split: clients on BENCH_CLIENT_CPU, servers+proxies on the others; none: no pinning"),
    "BENCH_CLIENT_CPU": (NCPU - 1, int, "CPU of the load generators when pinning"),
    "BENCH_BODY_BYTES": (100, int, "size of the static file nginx serves"),
    "BENCH_QUIET_WAIT": (15, int, "seconds to wait, at most, for other load on the machine to drop below 15% of a CPU before starting"),
    "BENCH_POD": (1, int, "1: measure direct and weft HTTP from inside a pod too; 0: skip"),
    "BENCH_PODS": (200, int, "pods made for the per-pod cost of weftd (0: skip)"),
    "BENCH_NICE": (-10, int, "nice value of the benchmark's own scheduling group (all its processes alike); "
                   "negative favours the benchmark over other work on a shared machine"),
    "BENCH_KUBE": (1, int, "1: measure weftd's Kubernetes discovery (initial sync, a full relist, watch "
                   "events) against the test API server; 0: skip"),
    "BENCH_KUBE_SERVICES": (10000, int, "Services of the discovery phase (one TCP port and one EndpointSlice each)"),
    "BENCH_KUBE_ENDPOINTS": (10, int, "ready endpoints per EndpointSlice"),
    "BENCH_KUBE_RELISTS": (3, int, "full relists timed (median and range reported)"),
    "BENCH_KUBE_EVENTS": (20, int, "watch events timed (one EndpointSlice change each; median reported)"),
    "BENCH_H2": (1, int, "1: the HTTP/2 and gRPC phase (h2load and gRPC direct, through weft and through "
                 "HAProxy; weftd's memory per idle HTTP/2 connection and per open stream); 0: skip"),
    "BENCH_H2_SECONDS": (4, int, "h2load duration per target and round (after a 0.5 s warm-up)"),
    "BENCH_H2_CONNS": (4, int, "h2load connections (-c)"),
    "BENCH_H2_STREAMS": (16, int, "h2load concurrent streams per connection (-m)"),
    "BENCH_H2_RATE": (2000, int, "total request rate of the h2load latency run (req/s, split over the connections)"),
    "BENCH_H2_LAT_SECONDS": (3, int, "recorded seconds of the h2load latency run (after a 0.5 s warm-up)"),
    "BENCH_GRPC_RATE": (500, int, "gRPC unary calls per second of the gRPC latency run (one channel)"),
    "BENCH_GRPC_SECONDS": (5, int, "recorded seconds of the gRPC latency run (after a 0.5 s warm-up)"),
    "BENCH_H2_IDLE_CONNS": (1000, int, "idle HTTP/2 connections held through each proxy for its memory per connection"),
    "BENCH_H2_OPEN_STREAMS": (1000, int, "streams held open through each proxy (to an endpoint that never answers), "
                              "100 per connection, for its memory per stream"),
    "BENCH_ONLY": ("", str, "empty: every part; kube: the Kubernetes discovery phase alone (no proxies, no load); "
                   "h2: the HTTP/2 and gRPC phase alone"),
}


def knob(name):
    default, typ, _ = ENV[name]
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return typ(v)
    except ValueError:
        raise SystemExit("bench: %s=%r is not a valid %s" % (name, v, typ.__name__))


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------------
# small system helpers

def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, sep, post = line.partition(" - ")
            if sep and post.split()[0] == "cgroup2":
                return pre.split()[4]
    return None


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(addr, timeout=10.0, proc=None):
    host, _, port = addr.rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def proc_cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rpartition(")")[2].split()
    return int(rest[11]) + int(rest[12])


def proc_cpu_ns(pid):
    """CPU time of the whole process in ns: the sum of its threads' run time
    (/proc/PID/task/*/schedstat, nanoseconds), or utime + stime in clock
    ticks (10 ms steps) where schedstat is missing."""
    total, seen = 0, False
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        tasks = []
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
                seen = True
        except (OSError, ValueError, IndexError):
            pass
    return total if seen else proc_cpu_ticks(pid) * 1e9 / CLK_TCK


def proc_mem(pid):
    """{'rss_kb', 'anon_kb', 'hwm_kb'} from /proc/PID/status (hwm: VmHWM, peak RSS)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                out["rss_kb"] = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                out["anon_kb"] = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                out["hwm_kb"] = int(line.split()[1])
    return out


def reset_peak_rss(pid):
    """VmHWM starts again from the current RSS (clear_refs 5, Linux 4.0+). False: it could not."""
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5\n")
        return True
    except OSError:
        return False


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def ip_cmd(*args, check=True):
    argv = ["ip"] + [str(a) for a in args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise Failure("%s: rc %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r


def ip_batch(lines, force=False):
    """One `ip -batch` for many commands (netns add/delete for 200 pods in a
    fraction of a second). force: go on past a failing line."""
    argv = ["ip"] + (["-force"] if force else []) + ["-batch", "-"]
    return subprocess.run(argv, input="".join(l + "\n" for l in lines), capture_output=True,
                          text=True, timeout=300)


def link_exists(name):
    return ip_cmd("link", "show", "dev", name, check=False).returncode == 0


def free_pod_subnet():
    """A /30 of POD_NET that no address or route on the host overlaps."""
    used = []
    for link in json.loads(ip_cmd("-j", "addr", "show").stdout or "[]"):
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                used.append(ipaddress.ip_interface("%s/%s" % (a["local"], a["prefixlen"])).network)
    for r in json.loads(ip_cmd("-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = r.get("dst")
        if dst and dst != "default":
            try:
                used.append(ipaddress.ip_network(dst, strict=False))
            except ValueError:
                pass
    for net in ipaddress.ip_network(POD_NET).subnets(new_prefix=30):
        if not any(net.overlaps(u) for u in used):
            return net
    raise Failure("no free /30 left in %s for the pod's veth" % POD_NET)


def cgroup_populated(path):
    try:
        with open(os.path.join(path, "cgroup.events")) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if k == "populated":
                    return v.strip() != "0"
    except FileNotFoundError:
        return False
    return True


def netns_inode(path):
    return os.stat(path).st_ino


def proc_in_netns(pid, comm, ino):
    """Is pid running comm (exec done) inside the network namespace ino?"""
    try:
        with open("/proc/%d/comm" % pid) as f:
            if f.read().strip() != comm:
                return False
        return os.stat("/proc/%d/ns/net" % pid).st_ino == ino
    except OSError:
        return False


class WeftLog:
    """weftd's log, read as it grows: lines() gives the complete lines
    written since the last call as (epoch seconds, message), for the
    "kubernetes: ..." lines only (the others are skipped unparsed)."""
    LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z weftd\[\d+\] \w+\s+(kubernetes: .*)$")

    def __init__(self, path):
        self.path, self.off, self.rest = path, 0, b""

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except OSError:
            return []
        self.off += len(data)
        data = self.rest + data
        cut = data.rfind(b"\n") + 1
        data, self.rest = data[:cut], data[cut:]
        out = []
        for raw in data.split(b"\n"):
            if b"kubernetes: " not in raw:
                continue
            m = self.LINE.match(raw.decode(errors="replace"))
            if m:
                t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
                out.append((t.replace(tzinfo=datetime.timezone.utc).timestamp(), m.group(2)))
        return out


class Pod:
    """A pod as a kubelet and containerd make it, minus the runtime: network
    namespace <run name>-<tag>, cgroups in the kubelet's systemd layout under
    the benchmark's cgroup, containers as cri-containerd-<64 hex>.scope."""

    def __init__(self, bench, tag, qos="besteffort"):
        self.name = "%s-%s" % (bench.name, tag)
        self.netns_path = os.path.join(NETNS_DIR, self.name)
        self.uid = str(uuid.uuid4())
        u = self.uid.replace("-", "_")
        self.rel = os.path.join("kubepods.slice", "kubepods-%s.slice" % qos,
                                "kubepods-%s-pod%s.slice" % (qos, u))
        self.base = bench.cg
        self.cgroup = os.path.join(bench.cg, self.rel)
        self.ip = self.host_ip = None
        self.proc = None
        self.containers = []

    def make_cgroup(self):
        os.makedirs(self.cgroup)

    def container(self):
        """A new container cgroup of the pod (made): its path relative to the bench cgroup."""
        rel = os.path.join(self.rel, "cri-containerd-%s.scope" % secrets.token_hex(32))
        os.mkdir(os.path.join(self.base, rel))
        self.containers.append(rel)
        return rel

    def nsenter(self, argv):
        return ["nsenter", "--net=%s" % self.netns_path, "--"] + list(argv)


def fd_kinds(pid):
    """Open descriptors of pid by kind: socket, bpf_link, other."""
    out = {"socket": 0, "bpf_link": 0, "other": 0}
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for fd in fds:
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:"):
            out["socket"] += 1
        elif t == "anon_inode:bpf_link":
            out["bpf_link"] += 1
        else:
            out["other"] += 1
    return out


def busy_ticks():
    """(user+nice+system, steal) ticks of the whole machine. irq/softirq time
    is left out on both sides: with IRQ time accounting it is charged to no task."""
    with open("/proc/stat") as f:
        v = f.readline().split()[1:]
    return int(v[0]) + int(v[1]) + int(v[2]), int(v[7])


def first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (r.stdout + r.stderr).strip()
        return text.splitlines()[0].strip() if text else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not found"


def pctl(sorted_vals, p):
    """The p-th percentile (nearest rank) of an ascending list."""
    if not sorted_vals:
        return None
    return sorted_vals[min(len(sorted_vals) - 1, int(round(p / 100.0 * (len(sorted_vals) - 1))))]


def parse_h2load(out):
    """h2load's summary: {'rps', 'total', 'started', 'done', 'succeeded', 'failed', 'errored', 'timeout',
    '2xx', 'req_mean_us'}, or None."""
    m = re.search(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", out)
    n = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", out)
    c = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not m or not n or not c:
        return None
    res = {"finished_s": float(m.group(1)) / {"us": 1e6, "ms": 1e3, "s": 1}[m.group(2)], "rps": float(m.group(3)),
           "2xx": int(c.group(1)), "not_2xx": int(c.group(2)) + int(c.group(3)) + int(c.group(4))}
    res.update(zip(("total", "started", "done", "succeeded", "failed", "errored", "timeout"),
                   (int(x) for x in n.groups())))
    t = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)
    if t:
        res["req_mean_us"] = float(t.group(5)) * {"us": 1, "ms": 1e3, "s": 1e6}[t.group(6)]
    return res


def q(vals, p):
    """Median and friends of a list; None-safe."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    if p == "median":
        return statistics.median(vals)
    if p == "min":
        return min(vals)
    if p == "max":
        return max(vals)
    raise ValueError(p)


# --------------------------------------------------------------------------
# the benchmark

class Failure(Exception):
    pass


class Bench:
    def __init__(self, run_id, tmpdir):
        self.run_id = run_id
        self.name = PREFIX + str(run_id)
        self.tmp = tmpdir
        self.outdir = os.path.join(REPO, "build", "bench")
        self.loadgen = os.path.join(self.outdir, "weft-loadgen")
        self.weftd_bin = os.path.join(REPO, "build", "weftd")
        self.cgroot = cgroup2_mount()
        if not self.cgroot:
            raise Failure("no cgroup2 mount in /proc/self/mountinfo")
        self.cg = os.path.join(self.cgroot, self.name)
        self.pin_path = os.path.join(BPFFS, self.name)
        self.procs = {}        # name -> Popen (servers and proxies)
        self.logs = {}         # name -> log path
        self.notes = []
        self.k = {n: knob(n) for n in ENV}
        self.pin = self.k["BENCH_PIN"]
        if self.pin not in ("split", "none"):
            raise Failure("BENCH_PIN must be split or none")
        self.only = self.k["BENCH_ONLY"]
        if self.only not in ("", "kube", "h2"):
            raise Failure("BENCH_ONLY must be empty (every part), kube or h2")
        if self.only == "kube" and not self.k["BENCH_KUBE"]:
            raise Failure("BENCH_ONLY=kube with BENCH_KUBE=0 leaves nothing to run")
        if self.only == "h2" and not self.k["BENCH_H2"]:
            raise Failure("BENCH_ONLY=h2 with BENCH_H2=0 leaves nothing to run")
        if self.k["BENCH_H2"] and (self.k["BENCH_H2_CONNS"] < 1 or self.k["BENCH_H2_STREAMS"] < 1
                                   or self.k["BENCH_H2_RATE"] < self.k["BENCH_H2_CONNS"]
                                   or self.k["BENCH_GRPC_RATE"] < 1 or self.k["BENCH_H2_IDLE_CONNS"] < 1
                                   or self.k["BENCH_H2_OPEN_STREAMS"] < 1):
            raise Failure("BENCH_H2_CONNS, BENCH_H2_STREAMS, BENCH_GRPC_RATE, BENCH_H2_IDLE_CONNS and "
                          "BENCH_H2_OPEN_STREAMS must be >= 1, BENCH_H2_RATE at least BENCH_H2_CONNS")
        if self.k["BENCH_KUBE"] and (self.k["BENCH_KUBE_ENDPOINTS"] < 1 or self.k["BENCH_KUBE_EVENTS"] < 1
                                     or self.k["BENCH_KUBE_RELISTS"] < 1
                                     or self.k["BENCH_KUBE_SERVICES"] < self.k["BENCH_KUBE_RELISTS"]
                                     + self.k["BENCH_KUBE_EVENTS"] + 1):
            raise Failure("BENCH_KUBE_ENDPOINTS, BENCH_KUBE_RELISTS and BENCH_KUBE_EVENTS must be >= 1, and "
                          "BENCH_KUBE_SERVICES more than BENCH_KUBE_RELISTS + BENCH_KUBE_EVENTS")
        self.kube_api = None       # the test API server of the discovery phase (kubeapi.KubeAPI)
        self.targets = []
        self.hold_n = self.fd_limit = None
        if self.pin == "split" and NCPU < 2:
            log("one CPU only: no pinning")
            self.pin = "none"
        self.client_cpu = str(self.k["BENCH_CLIENT_CPU"])
        self.server_cpus = ",".join(str(c) for c in range(NCPU) if str(c) != self.client_cpu)
        self.have_sockperf = shutil.which("sockperf") is not None
        if self.k["BENCH_THREADS"] > 1 and self.pin == "split":
            self.notes.append("BENCH_THREADS=%d with BENCH_PIN=split: the proxies' threads all share "
                              "CPU %s; use BENCH_PIN=none to let them spread."
                              % (self.k["BENCH_THREADS"], self.server_cpus))
        self.results = {}
        self.steal_s = self.steal_wall = 0.0
        self.weft_l7 = False
        self.weft_fast_switches = False
        self.weft_workers = None
        self.weftds = {}
        self.pod = None            # the pod the pod case runs in (Pod)
        self.pod_entry = None      # its /pods entry, last seen
        self.cost_pods = []        # the pods of the per-pod cost (Pod)
        self.veth = "wbench%s" % run_id        # host side of the pod's veth (run.sh knows the name)
        if len(self.veth) > 15:
            raise Failure("run id %s too long for an interface name" % run_id)
        self.apply_nice()

    def apply_nice(self):
        """run.sh starts this driver in a session of its own, so with the
        scheduler's autogroups (sched_autogroup_enabled) the benchmark is one
        group competing with the rest of the machine: its nice value is the
        group's. Without autogroups, nice every process we start instead."""
        n = self.k["BENCH_NICE"]
        self.nice_how = None
        if not n:
            return
        try:
            with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
                ag = f.read().strip() == "1"
        except OSError:
            ag = False
        if ag and os.getsid(0) == os.getpid():
            with open("/proc/self/autogroup", "w") as f:
                f.write("%d\n" % n)
            self.nice_how = "autogroup nice %d" % n
        else:
            os.setpriority(os.PRIO_PROCESS, 0, n)
            self.nice_how = "nice %d" % n
        self.notes.append("Run with BENCH_NICE=%d (%s): the benchmark's processes were favoured over "
                          "other work on the machine." % (n, self.nice_how))

    # -- cgroups and processes ----------------------------------------------
    def make_cgroups(self):
        os.mkdir(self.cg)
        if self.only == "kube":
            leaves = ["weftd"]
        elif self.only == "h2":
            leaves = ["haproxy", "weftd", "client"]
        else:
            leaves = ["nginx", "sockperf", "haproxy", "weftd", "client", "mesh", "mesh-nofast"]
        if self.k["BENCH_KUBE"] and self.only in ("", "kube"):
            leaves.append("kube")   # what the discovery phase's weftd enrols (no process in it)
        if self.k["BENCH_H2"] and self.only in ("", "h2"):
            leaves += ["h2srv", "mesh-h2"]   # nghttpd, the gRPC and slow servers; the h2 weftd's enrolled cgroup
        for leaf in leaves:
            os.mkdir(os.path.join(self.cg, leaf))
        if self.only:
            return
        if self.k["BENCH_POD"] or self.k["BENCH_PODS"] > 0:
            # the kubelet's shared parents: the pods' cgroups come and go below
            os.makedirs(os.path.join(self.cg, "kubepods.slice", "kubepods-besteffort.slice"))

    def pod_glob(self):
        """What the benchmark's weftd enrols for the pods: the kubelet's
        systemd-driver glob (docs/config.md), under the benchmark's cgroup."""
        return os.path.join(self.cg, "kubepods.slice", "*", "*pod*.slice")

    def make_bench_pod(self):
        """The pod of the pod case: netns + lo up, a veth to the host (a free
        /30 of POD_NET, no other route in the pod), cgroups, a pause process
        in a container of its own, and a second container for the clients."""
        pod = Pod(self, "pod")
        if os.path.lexists(pod.netns_path):
            raise Failure("%s already exists" % pod.netns_path)
        if link_exists(self.veth):
            raise Failure("an interface %s already exists" % self.veth)
        net = free_pod_subnet()
        hosts = list(net.hosts())
        pod.subnet, pod.host_ip, pod.ip = str(net), str(hosts[0]), str(hosts[1])
        self.pod = pod
        ip_cmd("netns", "add", pod.name)
        ip_cmd("-n", pod.name, "link", "set", "lo", "up")
        ip_cmd("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", pod.name)
        ip_cmd("link", "set", "dev", self.veth, "alias", pod.name)
        ip_cmd("addr", "add", "%s/30" % pod.host_ip, "dev", self.veth)
        ip_cmd("link", "set", "dev", self.veth, "up")
        ip_cmd("-n", pod.name, "addr", "add", "%s/30" % pod.ip, "dev", "eth0")
        ip_cmd("-n", pod.name, "link", "set", "dev", "eth0", "up")
        pod.make_cgroup()
        pause = pod.container()
        pod.app = pod.container()
        p = self.start("pod-pause", pause, pod.nsenter(["sleep", "infinity"]))
        ino = netns_inode(pod.netns_path)
        deadline = time.monotonic() + 10
        while not proc_in_netns(p.pid, "sleep", ino):
            if p.poll() is not None or time.monotonic() > deadline:
                raise Failure("the pod's pause process did not start:\n%s" % self.tail("pod-pause"))
            time.sleep(0.01)
        log("pod %s: uid %s, %s (host side %s on %s), cgroup %s"
            % (pod.name, pod.uid, pod.ip, pod.host_ip, self.veth, pod.cgroup))

    def admin_json(self, name, path, timeout=5):
        with urllib.request.urlopen("http://%s%s" % (self.weftds[name]["admin"], path), timeout=timeout) as r:
            return json.loads(r.read().decode())

    def pods_doc(self, name="weftd"):
        return self.admin_json(name, "/pods")["pods"]

    def wait_pod_serving(self, name, pod, timeout=15.0):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = self.pods_doc(name)
                e = next((x for x in last if x.get("uid") == pod.uid), None)
                if e and e.get("state") == "serving":
                    return e
            except (OSError, ValueError) as ex:
                last = repr(ex)
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                raise Failure("%s does not serve pod %s within %.0f s; /pods: %s\n%s"
                              % (name, pod.uid, timeout, last, self.tail(name)))
            time.sleep(0.05)

    def pods_serving(self, name="weftd"):
        m = re.search(r'^weft_pods\{state="serving"\}\s+(\d+)', self.weftd_metrics(name), re.M)
        return int(m.group(1)) if m else None

    def wrap(self, cg, argv, role):
        """argv started inside cgroup leaf cg, pinned according to role."""
        pre = []
        if self.pin == "split":
            pre += ["taskset", "-c", self.client_cpu if role == "client" else self.server_cpus]
        procs = os.path.join(self.cg, cg, "cgroup.procs")
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procs] + pre + list(argv)

    def start(self, name, cg, argv, ready_addr=None):
        logp = os.path.join(self.tmp, name + ".log")
        self.logs[name] = logp
        with open(logp, "ab") as lf:
            p = subprocess.Popen(self.wrap(cg, argv, "server"), stdin=subprocess.DEVNULL,
                                 stdout=lf, stderr=lf, cwd=self.tmp)
        self.procs[name] = p
        with open(os.path.join(self.tmp, name + ".pid"), "w") as f:
            f.write("%d\n" % p.pid)
        if ready_addr and not wait_port(ready_addr, 10, p):
            raise Failure("%s did not start listening on %s:\n%s" % (name, ready_addr, self.tail(name)))
        return p

    def tail(self, name, n=30):
        try:
            with open(self.logs[name], errors="replace") as f:
                lines = [l for l in f.read().splitlines() if "DEBUG libbpf" not in l]
            return "\n".join(lines[-n:])
        except (OSError, KeyError):
            return "(no log)"

    def check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise Failure("%s exited (status %s) during the run:\n%s" % (name, p.returncode, self.tail(name)))

    def client(self, argv, cg, timeout, netns=None, **kw):
        """Run a client to completion in cgroup leaf cg (and in network
        namespace netns, a path, if given); returns CompletedProcess."""
        if netns:
            argv = ["nsenter", "--net=%s" % netns, "--"] + list(argv)
        return subprocess.run(self.wrap(cg, argv, "client"), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, cwd=self.tmp, **kw)

    def our_cpu_usec(self, leaf=None):
        try:
            with open(os.path.join(self.cg, leaf or "", "cpu.stat")) as f:
                for line in f:
                    if line.startswith("usage_usec"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def foreign_begin(self):
        return (time.monotonic(), busy_ticks(), self.our_cpu_usec())

    def foreign_end(self, b):
        """CPU used outside the benchmark's cgroup since b, in % of one CPU
        (approximate: ticks against the cgroup's precise usage). The time the
        hypervisor stole is added up in self.steal."""
        t0, (busy0, steal0), ours0 = b
        dt = time.monotonic() - t0
        busy1, steal1 = busy_ticks()
        busy = (busy1 - busy0) / CLK_TCK
        ours = (self.our_cpu_usec() - ours0) / 1e6
        self.steal_s += (steal1 - steal0) / CLK_TCK
        self.steal_wall += dt
        return max(0.0, round(100.0 * (busy - ours) / dt, 1)) if dt > 0 else None

    # -- setup -----------------------------------------------------------------
    def setup(self):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.fd_limit = hard
        want = self.k["BENCH_HOLD_CONNS"]
        # A proxy holds two sockets per connection, plus its own few.
        cap = max(100, (hard - 1000) // 2 // 500 * 500)
        self.hold_n = min(want, cap)
        if self.hold_n < want:
            self.notes.append(
                "Idle connections held: %d, not %d: RLIMIT_NOFILE's hard limit here is %d "
                "(and cannot be raised without CAP_SYS_RESOURCE); a proxy needs two descriptors "
                "per connection." % (self.hold_n, want, hard))
        self.make_cgroups()
        if self.k["BENCH_POD"]:
            self.make_bench_pod()

        # nginx: one process, keep-alive, no access log, a small static file.
        www = os.path.join(self.tmp, "www")
        os.makedirs(www)
        os.makedirs(os.path.join(self.tmp, "nginx-tmp"))
        os.chmod(self.tmp, 0o755)
        with open(os.path.join(www, "bench.txt"), "wb") as f:
            body = (b"weft bench " * 100)[:self.k["BENCH_BODY_BYTES"] - 1] + b"\n"
            f.write(body)
        self.path = "/bench.txt"
        self.nginx_addr = "127.0.0.1:%d" % free_port()
        # The pod reaches nginx directly on the host side of its veth, same port.
        listen_pod = ""
        if self.pod:
            self.nginx_pod_addr = "%s:%s" % (self.pod.host_ip, self.nginx_addr.rpartition(":")[2])
            listen_pod = "\n        listen %s backlog=4096;" % self.nginx_pod_addr
        nt = os.path.join(self.tmp, "nginx-tmp")
        conf = """daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile %(fd)d;
pid %(tmp)s/nginx.pid;
error_log %(tmp)s/nginx-error.log warn;
events { worker_connections %(wc)d; }
http {
    access_log off;
    default_type text/plain;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 600s;
    keepalive_requests 1000000000;
    client_body_temp_path %(nt)s/body;
    proxy_temp_path %(nt)s/proxy;
    fastcgi_temp_path %(nt)s/fastcgi;
    uwsgi_temp_path %(nt)s/uwsgi;
    scgi_temp_path %(nt)s/scgi;
    server {
        listen %(addr)s backlog=4096;%(listen_pod)s
        root %(www)s;
    }
}
""" % {"tmp": self.tmp, "fd": hard, "wc": hard - 100, "nt": nt, "addr": self.nginx_addr, "www": www,
       "listen_pod": listen_pod}
        nconf = os.path.join(self.tmp, "nginx.conf")
        with open(nconf, "w") as f:
            f.write(conf)
        self.start("nginx", "nginx", ["nginx", "-p", self.tmp, "-c", nconf,
                                      "-e", os.path.join(self.tmp, "nginx-error.log")],
                   self.nginx_addr)
        if self.pod and not wait_port(self.nginx_pod_addr, 5, self.procs["nginx"]):
            raise Failure("nginx is not listening on %s:\n%s" % (self.nginx_pod_addr, self.tail("nginx")))

        if self.have_sockperf:
            self.sockperf_addr = "127.0.0.1:%d" % free_port()
            h, _, p = self.sockperf_addr.rpartition(":")
            self.start("sockperf", "sockperf", ["sockperf", "server", "--tcp", "-i", h, "-p", p],
                       self.sockperf_addr)
        else:
            self.sockperf_addr = None
            self.notes.append("sockperf is not installed: no TCP ping-pong latency.")

        self.start_haproxy(hard)
        self.start_weftd()

        T = [
            dict(key="direct", label="direct (no proxy)", http=self.nginx_addr,
                 tcp=self.sockperf_addr, cg="client", proxy=None, mode=None),
            dict(key="weft-tcp", label="weft TCP", http=self.weftds["weftd"]["vip"]["tcp"],
                 tcp=self.weftds["weftd"]["vip"].get("sockperf"), cg="mesh", proxy="weftd", mode="tcp"),
        ]
        if "weftd-nofast" in self.weftds:
            T[-1]["label"] = "weft TCP (fast paths on)"
            w = self.weftds["weftd-nofast"]
            T.append(dict(key="weft-tcp-nofast", label="weft TCP, fast paths off", http=w["vip"]["tcp"],
                          tcp=w["vip"].get("sockperf"), cg="mesh-nofast", proxy="weftd-nofast", mode="tcp"))
        T += [
            dict(key="weft-http", label="weft HTTP (opaque?)", http=self.weftds["weftd"]["vip"]["http"],
                 tcp=None, cg="mesh", proxy="weftd", mode="http"),
            dict(key="haproxy-tcp", label="HAProxy mode tcp", http=self.hap["tcp"],
                 tcp=self.hap.get("sockperf"), cg="client", proxy="haproxy", mode="tcp"),
            dict(key="haproxy-http", label="HAProxy mode http", http=self.hap["http"], tcp=None,
                 cg="client", proxy="haproxy", mode="http"),
        ]
        if self.pod:
            # From inside the pod (a container of its own, in the pod's netns);
            # compared with direct from the same pod.
            T += [
                dict(key="direct-pod", label="direct (pod)", http=self.nginx_pod_addr, tcp=None,
                     cg=self.pod.app, netns=self.pod.netns_path, proxy=None, mode=None,
                     pod=True, base="direct-pod"),
                dict(key="weft-http-pod", label="weft HTTP (pod)", http=self.weftds["weftd"]["vip"]["http"],
                     tcp=None, cg=self.pod.app, netns=self.pod.netns_path, proxy="weftd", mode="http",
                     pod=True, base="direct-pod"),
            ]
        for t in T:
            t.setdefault("pod", False)
            t.setdefault("base", "direct")
            t.setdefault("netns", None)
        self.targets = T

    def start_haproxy(self, hard):
        maxconn = max(1000, (hard - 200) // 2)
        self.hap = {"tcp": "127.0.0.1:%d" % free_port(), "http": "127.0.0.1:%d" % free_port()}
        if self.sockperf_addr:
            self.hap["sockperf"] = "127.0.0.1:%d" % free_port()
        threads = self.k["BENCH_THREADS"]
        cfg = ["global",
               "    nbthread %d" % threads,
               "    maxconn %d" % maxconn,
               "defaults",
               "    timeout connect 5s",
               "    timeout client 600s",
               "    timeout server 600s",
               "    timeout http-keep-alive 600s",
               "    timeout http-request 600s",
               "    maxconn %d" % maxconn]

        def pair(name, mode, bind, server):
            cfg.extend(["frontend fe_%s" % name, "    mode %s" % mode, "    bind %s" % bind,
                        "    default_backend be_%s" % name,
                        "backend be_%s" % name, "    mode %s" % mode,
                        "    server s1 %s" % server])
        pair("tcp", "tcp", self.hap["tcp"], self.nginx_addr)
        pair("http", "http", self.hap["http"], self.nginx_addr)
        if self.sockperf_addr:
            pair("sockperf", "tcp", self.hap["sockperf"], self.sockperf_addr)
        path = os.path.join(self.tmp, "haproxy.cfg")
        with open(path, "w") as f:
            f.write("\n".join(cfg) + "\n")
        r = subprocess.run(["haproxy", "-c", "-f", path], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure("haproxy -c rejected %s:\n%s%s" % (path, r.stdout, r.stderr))
        self.haproxy_cfg = path
        self.start_haproxy_proc()

    def start_haproxy_proc(self):
        self.start("haproxy", "haproxy", ["haproxy", "-db", "-f", self.haproxy_cfg], self.hap["tcp"])
        for a in self.hap.values():
            if not wait_port(a, 5, self.procs["haproxy"]):
                raise Failure("haproxy is not listening on %s:\n%s" % (a, self.tail("haproxy")))

    def weftd_config(self, w, workers, fast):
        """Config text of weftd variant w. fast: None (weftd defaults), or
        False to switch both kernel fast paths off."""
        svc = []
        for key, proto, dst in w.get("services") or (
                ("tcp", "tcp", self.nginx_addr), ("http", "http", self.nginx_addr),
                ("sockperf", "tcp", self.sockperf_addr)):
            if not dst or key not in w["vip"]:
                continue
            svc.append('  { name = "bench-%s"; addresses = [ "%s" ]; protocol = "%s"; '
                       'balancer = "round-robin";\n    endpoints = ( { address = "%s"; } ); '
                       'retry = { attempts = 1; }; }' % (key, w["vip"][key], proto, dst))
        extra = ""
        if workers:
            extra += "  workers = %d;\n" % workers
        if fast is False:
            extra += "  redirect_loopback = false;\n  splice = false;\n"
        elif fast:
            # both fast paths on explicitly (redirect_loopback is off by default)
            extra += "  redirect_loopback = true;\n  splice = true;\n"
        return ('agent: {\n  admin = "%s";\n  outbound_port = %d;\n  inbound = "%s";\n'
                '  bpf_pin_path = "%s";\n  fail_mode = "open";\n  log_level = "warn";\n'
                '  drain_timeout_ms = 1000;\n%s};\n'
                'intercept: { cgroups = [ %s ]; };\n'
                'services = (\n%s\n);\n'
                % (w["admin"], w["outbound"], w["inbound"], w["pin"], extra,
                   ", ".join('"%s"' % c for c in w["cgroups"]), ",\n".join(svc)))

    def weftd_check(self, w, workers, fast):
        with open(w["conf"], "w") as f:
            f.write(self.weftd_config(w, workers, fast))
        r = subprocess.run([self.weftd_bin, "-c", w["conf"], "--check"], capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr

    def start_weftd(self):
        """One weftd with its defaults (kernel fast paths on, where it has
        them) and, if it has the switches, a second one with both off; each
        with its own pin directory, enrolled cgroup, ports and VIPs."""
        # VIPs in 127.12.0.0/16 that nothing listens on: an escaped connect is refused locally.
        host = "127.12.%d.%d" % (random.randint(0, 255), random.randint(1, 254))
        self.weftds = {}

        def variant(name, cg, pin, keys):
            if os.path.lexists(pin):
                raise Failure("%s already exists" % pin)
            w = {"name": name, "cg": cg, "pin": pin, "cgroups": [os.path.join(self.cg, cg)],
                 "vip": {k: "%s:%d" % (host, free_port(host)) for k in keys},
                 "admin": "127.0.0.1:%d" % free_port(), "outbound": free_port(),
                 "inbound": "127.0.0.1:%d" % free_port(),
                 "conf": os.path.join(self.tmp, name + ".conf")}
            if not self.sockperf_addr:
                w["vip"].pop("sockperf", None)
            return w
        fastw = variant("weftd", "mesh", self.pin_path, ("tcp", "http", "sockperf"))
        if self.k["BENCH_POD"] or self.k["BENCH_PODS"] > 0:
            fastw["cgroups"].append(self.pod_glob())      # this weftd serves the pods
        slow = variant("weftd-nofast", "mesh-nofast", self.pin_path + "-nofast", ("tcp", "sockperf"))
        threads = self.k["BENCH_THREADS"]
        # Same thread count as HAProxy (agent.workers), if this weftd has the setting.
        self.weft_workers = threads
        rc, out = self.weftd_check(fastw, threads, True)
        if rc != 0 and "workers" in out:
            self.weft_workers = None
            self.notes.append("weftd has no agent.workers setting: it runs one event loop "
                              "(single-threaded), like HAProxy with nbthread %d." % threads)
            rc, out = self.weftd_check(fastw, None, True)
        if rc != 0:
            raise Failure("weftd --check rejected %s:\n%s" % (fastw["conf"], out))
        self.weft_fast_switches = True
        rc, out = self.weftd_check(slow, self.weft_workers, False)
        if rc != 0 and ("redirect_loopback" in out or "splice" in out):
            self.weft_fast_switches = False
            self.notes.append("weftd has no agent.redirect_loopback / agent.splice switches: "
                              "no kernel fast paths to compare.")
        elif rc != 0:
            raise Failure("weftd --check rejected %s:\n%s" % (slow["conf"], out))
        self.weftds["weftd"] = fastw
        if self.weft_fast_switches:
            self.weftds["weftd-nofast"] = slow
        for name in self.weftds:
            self.start_weftd_proc(name)

    def start_weftd_proc(self, name):
        w = self.weftds[name]
        p = self.start(name, "weftd", [self.weftd_bin, "-c", w["conf"]])
        deadline = time.monotonic() + 15
        while True:
            if p.poll() is not None:
                raise Failure("%s exited with %s:\n%s" % (name, p.returncode, self.tail(name)))
            try:
                with urllib.request.urlopen("http://%s/ready" % w["admin"], timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Failure("%s not ready within 15 s:\n%s" % (name, self.tail(name)))
            time.sleep(0.1)
        if name == "weftd" and self.pod:
            self.pod_entry = self.wait_pod_serving(name, self.pod)

    def weftd_metrics(self, name):
        try:
            with urllib.request.urlopen("http://%s/metrics" % self.weftds[name]["admin"], timeout=5) as r:
                return r.read().decode(errors="replace")
        except OSError:
            return ""

    def restart(self, name):
        """Stop a proxy (SIGTERM) and start a fresh one with the same config and ports."""
        p = self.procs[name]
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Failure("%s did not stop within 15 s of SIGTERM" % name)
        if name.startswith("weftd") and rc != 0:
            raise Failure("%s exited %s on SIGTERM:\n%s" % (name, rc, self.tail(name)))
        if name.startswith("weftd"):
            self.start_weftd_proc(name)
        elif name == "haproxy-h2":
            self.start_haproxy_h2_proc()
        else:
            self.start_haproxy_proc()
        time.sleep(0.5)

    # -- measurements ---------------------------------------------------------
    def proxy_pid(self, t):
        return self.procs[t["proxy"]].pid if t["proxy"] else None

    def run_wrk(self, t, seconds, record=True):
        url = "http://%s%s" % (t["http"], self.path)
        argv = ["wrk", "-t%d" % self.k["BENCH_WRK_THREADS"], "-c%d" % self.k["BENCH_WRK_CONNS"],
                "-d%ds" % seconds, "--latency", url]
        pp, ng = self.proxy_pid(t), self.procs["nginx"].pid
        fb = self.foreign_begin()
        p0 = proc_cpu_ticks(pp) if pp else None
        n0 = proc_cpu_ticks(ng)
        c0, tc0 = self.our_cpu_usec(t["cg"]), time.monotonic()
        r = self.client(argv, t["cg"], timeout=seconds + 30, netns=t.get("netns"))
        c1, tc1 = self.our_cpu_usec(t["cg"]), time.monotonic()
        p1 = proc_cpu_ticks(pp) if pp else None
        n1 = proc_cpu_ticks(ng)
        foreign = self.foreign_end(fb)
        out = r.stdout
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        reqs = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
        if r.returncode != 0 or not m or not reqs:
            raise Failure("wrk against %s (%s) failed (rc %s):\n%s%s"
                          % (t["key"], url, r.returncode, out, r.stderr))
        n = int(reqs.group(1))
        errs = 0
        se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if se:
            errs = sum(int(x) for x in se.groups())
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        non2xx = int(non2xx.group(1)) if non2xx else 0
        if errs or non2xx:
            raise Failure("wrk against %s: %d socket errors, %d non-2xx answers:\n%s"
                          % (t["key"], errs, non2xx, out))
        res = {"rps": float(m.group(1)), "requests": n,
               "proxy_cpu_s": (p1 - p0) / CLK_TCK if pp else None,
               "nginx_cpu_s": (n1 - n0) / CLK_TCK, "foreign_cpu_pct": foreign,
               "wrk_cpu_pct": round(100.0 * (c1 - c0) / 1e6 / (tc1 - tc0), 1),
               "wall_s": round(tc1 - tc0, 3)}
        res["proxy_cpu_s_per_100k"] = res["proxy_cpu_s"] * 1e5 / n if pp and n else None
        res["nginx_cpu_s_per_100k"] = res["nginx_cpu_s"] * 1e5 / n if n else None
        lat = {}
        for pc, val, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
            lat["p" + pc] = float(val) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
        res["wrk_latency_us"] = lat
        return res

    def run_rate(self, t):
        argv = [self.loadgen, "rate", "--connect", t["http"], "--path", self.path,
                "--rate", str(self.k["BENCH_HTTP_RATE"]), "--conns", str(self.k["BENCH_HTTP_CONNS"]),
                "--duration", str(self.k["BENCH_LAT_SECONDS"]), "--warmup", "0.5",
                "--spin", "1" if self.pin == "split" else "0"]
        fb = self.foreign_begin()
        r = self.client(argv, t["cg"], timeout=self.k["BENCH_LAT_SECONDS"] + 60, netns=t.get("netns"))
        foreign = self.foreign_end(fb)
        try:
            d = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise Failure("weft-loadgen rate against %s failed (rc %s):\n%s%s"
                          % (t["key"], r.returncode, r.stdout, r.stderr))
        if d["errors"] or d["unfinished"]:
            raise Failure("weft-loadgen rate against %s: %d errors, %d unfinished"
                          % (t["key"], d["errors"], d["unfinished"]))
        d["foreign_cpu_pct"] = foreign
        return d

    def run_sockperf(self, t):
        h, _, p = t["tcp"].rpartition(":")
        argv = ["sockperf", "ping-pong", "--tcp", "-i", h, "-p", p,
                "--mps=%d" % self.k["BENCH_SOCKPERF_MPS"], "-t", str(self.k["BENCH_SOCKPERF_SECONDS"]),
                "-m", str(self.k["BENCH_SOCKPERF_MSG"])]
        fb = self.foreign_begin()
        r = self.client(argv, t["cg"], timeout=self.k["BENCH_SOCKPERF_SECONDS"] + 30)
        foreign = self.foreign_end(fb)
        text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
        res = {"foreign_cpu_pct": foreign}
        for name, val in re.findall(r"percentile\s+([\d.]+)\s*=\s*([\d.]+)", text):
            res[{"50.000": "p50", "99.000": "p99", "99.900": "p99.9", "90.000": "p90",
                 "99.990": "p99.99"}.get(name, "p" + name)] = float(val)
        m = re.search(r"avg-latency=([\d.]+)", text)
        if m:
            res["avg"] = float(m.group(1))
        m = re.search(r"\[Valid Duration\].*SentMessages=(\d+); ReceivedMessages=(\d+)", text)
        if m:
            res["sent"], res["received"] = int(m.group(1)), int(m.group(2))
        m = re.search(r"# dropped messages = (\d+)", text)
        if r.returncode != 0 or "p50" not in res or (m and int(m.group(1))):
            raise Failure("sockperf against %s (%s) failed (rc %s):\n%s"
                          % (t["key"], t["tcp"], r.returncode, text[-3000:]))
        return res

    def settle(self, pid, fds0, timeout=15.0):
        """Wait until the proxy is back to about fds0 descriptors."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc_fds(pid) <= fds0 + 4:
                return True
            time.sleep(0.1)
        return False

    def run_hold(self, t):
        pid = self.proxy_pid(t)
        fds0 = proc_fds(pid)
        before = proc_mem(pid)
        argv = [self.loadgen, "hold", "--connect", t["http"], "--path", self.path,
                "--conns", str(self.hold_n), "--parallel", "256", "--timeout", "60"]
        p = subprocess.Popen(self.wrap(t["cg"], argv, "client"), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.tmp)
        try:
            line = p.stdout.readline()
            try:
                first = json.loads(line)
            except ValueError:
                raise Failure("weft-loadgen hold against %s failed: %r %s"
                              % (t["key"], line, p.stderr.read() if p.poll() is not None else ""))
            time.sleep(1.0)
            held_mem = proc_mem(pid)
            held_fds = proc_fds(pid)
            p.stdin.close()
            second = p.stdout.readline()
            p.wait(30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        try:
            closed = json.loads(second).get("closed_by_peer")
        except ValueError:
            closed = None
        settled = self.settle(pid, fds0)
        after = proc_mem(pid)
        n = first["held"]
        res = {"conns": self.hold_n, "held": n, "errors": first["errors"],
               "first_error": first["first_error"], "open_s": first["open_s"],
               "closed_by_peer": closed,
               "rss_before_kb": before["rss_kb"], "rss_held_kb": held_mem["rss_kb"],
               "rss_after_kb": after["rss_kb"], "anon_before_kb": before.get("anon_kb"),
               "anon_held_kb": held_mem.get("anon_kb"), "fds_before": fds0, "fds_held": held_fds,
               "settled": settled}
        res["bytes_per_conn"] = ((held_mem["rss_kb"] - before["rss_kb"]) * 1024.0 / n) if n else None
        if n != self.hold_n:
            raise Failure("hold through %s: only %d of %d connections held (%s)"
                          % (t["key"], n, self.hold_n, first["first_error"]))
        return res

    # -- the run ----------------------------------------------------------------
    def run(self):
        t_start = time.monotonic()
        self.machine = self.describe()
        # Other work on the machine skews everything: wait a little for quiet.
        deadline = time.monotonic() + self.k["BENCH_QUIET_WAIT"]
        while True:
            fb = self.foreign_begin()
            time.sleep(1.0)
            busy = self.foreign_end(fb)
            if busy < 15 or time.monotonic() >= deadline:
                break
            log("%.0f%% of a CPU busy with other work: waiting up to %.0f s more for quiet"
                % (busy, deadline - time.monotonic()))
        self.machine["background_cpu_pct_before"] = busy
        if busy >= 15:
            log("WARNING: %.0f%% of a CPU is busy outside the benchmark: numbers will be noisy" % busy)
        if self.only == "kube":
            log("BENCH_ONLY=kube: the Kubernetes discovery phase alone (cgroup %s)" % self.cg)
            self.make_cgroups()
            self.results["kube"] = self.run_kube()
            self.elapsed = time.monotonic() - t_start
            return
        if self.only == "h2":
            log("BENCH_ONLY=h2: the HTTP/2 and gRPC phase alone (cgroup %s)" % self.cg)
            self.make_cgroups()
            self.results["h2"] = self.run_h2()
            self.elapsed = time.monotonic() - t_start
            return
        log("setting up in %s (cgroup %s, pins %s)" % (self.tmp, self.cg, self.pin_path))
        self.setup()
        R = self.results
        R["idle_fresh"] = {}
        time.sleep(0.5)
        for name in self.procs:
            R["idle_fresh"][name] = proc_mem(self.procs[name].pid)
        # Memory with N idle connections held open through each proxy, each
        # time on a freshly started proxy (memory a process freed is kept for
        # reuse, so a second hold on the same process would look cheaper).
        R["hold"] = {}
        used = set()
        for t in self.targets:
            if not t["proxy"] or t["pod"]:
                continue
            if t["proxy"] in used:
                self.restart(t["proxy"])
            used.add(t["proxy"])
            log("holding %d idle connections through %s" % (self.hold_n, t["key"]))
            R["hold"][t["key"]] = self.run_hold(t)
        self.check_alive()
        # Check each target once (and warm up): a short wrk must see no error.
        log("checking every target (1 s wrk each)")
        for t in self.targets:
            self.run_wrk(t, 1)
        self.check_alive()
        # Does this weftd act on protocol "http" (per-request metrics for the
        # bench-http service), or relay it as opaque TCP?
        metrics = self.weftd_metrics("weftd")
        self.weft_l7 = any('service="bench-http"' in line and "request" in line.split("{")[0]
                           for line in metrics.splitlines() if not line.startswith("#"))
        if self.weft_l7:
            for t in self.targets:
                if t["key"] == "weft-http":
                    t["label"] = "weft HTTP (L7)"
        rounds = self.k["BENCH_ROUNDS"]
        R["rounds"] = []
        for i in range(rounds):
            order = self.targets[i % len(self.targets):] + self.targets[:i % len(self.targets)]
            rr = {}
            for t in order:
                log("round %d/%d: %s" % (i + 1, rounds, t["key"]))
                m = {"wrk": self.run_wrk(t, self.k["BENCH_WRK_SECONDS"]), "http_rate": self.run_rate(t)}
                if t["tcp"]:
                    m["sockperf"] = self.run_sockperf(t)
                rr[t["key"]] = m
                self.check_alive()
            R["rounds"].append(rr)
        R["idle_after"] = {name: proc_mem(self.procs[name].pid) for name in self.procs}
        # What the kernel side of each weftd did (sk_msg redirects and the rest).
        R["weftd_verdicts"] = {}
        for name in self.weftds:
            R["weftd_verdicts"][name] = {
                m.group(1): float(m.group(2)) for m in re.finditer(
                    r'^weft_bpf_verdicts_total\{[^}]*verdict="([^"]+)"[^}]*\}\s+([\d.e+]+)',
                    self.weftd_metrics(name), re.M)}
        if self.pod:
            R["pod"] = {"name": self.pod.name, "uid": self.pod.uid, "cgroup": self.pod.cgroup,
                        "subnet": self.pod.subnet, "ip": self.pod.ip, "host_ip": self.pod.host_ip,
                        "veth": self.veth, "pods_entry": self.pod_entry}
        if self.k["BENCH_PODS"] > 0:
            log("per-pod cost: %d pods on a freshly started weftd" % self.k["BENCH_PODS"])
            R["pod_cost"] = self.run_pod_cost(self.k["BENCH_PODS"])
        if self.k["BENCH_H2"]:
            R["h2"] = self.run_h2()
        if self.k["BENCH_KUBE"]:
            R["kube"] = self.run_kube()
        self.elapsed = time.monotonic() - t_start

    def run_pod_cost(self, n):
        """weftd's descriptors and RSS before, with n more pods served, and
        after they are deleted. On a freshly started weftd (a process that has
        run traffic has freed heap that the pods' allocations would reuse, so
        they would look cheaper than they are); the bench pod, if any, is
        served throughout (the first pod's one-time allocations are in the
        baseline). Pods: netns + lo up, kubelet-shaped cgroups, a pause
        process each; no veth (so no address: weftd looks for one every
        250 ms, its documented behaviour for a pod the CNI has not set up)."""
        self.restart("weftd")
        pid = self.procs["weftd"].pid
        workers = self.weft_workers or 1
        base_pods = 1 if self.pod else 0
        # The admin calls used below, once, so that their buffers are in the baseline.
        self.pods_doc()
        if self.pods_serving() != base_pods:
            raise Failure("weftd serves %s pods before the per-pod run, expected %d"
                          % (self.pods_serving(), base_pods))
        time.sleep(1.0)
        fds0, mem0, cpu0, kinds0 = proc_fds(pid), proc_mem(pid), proc_cpu_ticks(pid), fd_kinds(pid)
        pods = [Pod(self, "p%03d" % i) for i in range(n)]
        self.cost_pods = pods
        t0 = time.monotonic()
        r = ip_batch(["netns add %s" % p.name for p in pods])
        if r.returncode != 0:
            raise Failure("ip -batch netns add: %s" % r.stderr.strip())
        r = ip_batch(["netns exec %s ip link set lo up" % p.name for p in pods])
        if r.returncode != 0:
            raise Failure("ip -batch netns exec ... lo up: %s" % r.stderr.strip())
        for p in pods:
            p.make_cgroup()
            p.pause = p.container()
        t_made = time.monotonic()
        errlog = open(os.path.join(self.tmp, "pods-pause.log"), "ab")
        try:
            # The pause process enters the pod's netns, then joins its
            # container cgroup, then becomes `sleep infinity`.
            for p in pods:
                p.proc = subprocess.Popen(
                    p.nsenter(["/bin/sh", "-c", 'echo $$ > "$0" && exec sleep infinity',
                               os.path.join(self.cg, p.pause, "cgroup.procs")]),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errlog, cwd=self.tmp)
        finally:
            errlog.close()
        for p in pods:
            ino = netns_inode(p.netns_path)
            deadline = time.monotonic() + 10
            while not proc_in_netns(p.proc.pid, "sleep", ino):
                if p.proc.poll() is not None or time.monotonic() > deadline:
                    raise Failure("pause of %s did not start (rc %s)" % (p.name, p.proc.poll()))
                time.sleep(0.005)
        t_started = time.monotonic()
        deadline = time.monotonic() + 120
        while self.pods_serving() != base_pods + n:
            self.check_alive()
            if time.monotonic() > deadline:
                raise Failure("weftd serves %s pods 120 s after %d were started (expected %d)"
                              % (self.pods_serving(), n, base_pods + n))
            time.sleep(0.05)
        t_served = time.monotonic()
        cpu1 = proc_cpu_ticks(pid)
        # Wait for the descriptor count to stay put for a second (the listeners
        # are handed to the workers after the pod is published).
        last, since = proc_fds(pid), time.monotonic()
        while time.monotonic() - since < 1.0 and time.monotonic() - t_served < 15:
            time.sleep(0.1)
            f = proc_fds(pid)
            if f != last:
                last, since = f, time.monotonic()
        fds1, mem1, kinds1 = proc_fds(pid), proc_mem(pid), fd_kinds(pid)
        # Then what /pods says (after the measurement: its answer for 200
        # pods is a large buffer, which is not what a pod costs).
        doc = self.pods_doc()
        mem_listed = proc_mem(pid)
        ours = {p.uid for p in pods}
        listed = [e for e in doc if e.get("uid") in ours]
        serving = [e for e in listed if e.get("state") == "serving"]
        listeners = sorted({e.get("listeners") for e in serving})
        # Delete them all, the way a kubelet would: kill the pod's processes,
        # remove its cgroups, then its network namespace.
        t_del = time.monotonic()
        for p in pods:
            with open(os.path.join(p.cgroup, "cgroup.kill"), "w") as f:
                f.write("1\n")
        for p in pods:
            try:
                p.proc.wait(10)
            except subprocess.TimeoutExpired:
                raise Failure("pause of %s did not die" % p.name)
            deadline = time.monotonic() + 10
            while cgroup_populated(p.cgroup):
                if time.monotonic() > deadline:
                    raise Failure("cgroup %s still populated" % p.cgroup)
                time.sleep(0.01)
            for c in p.containers:
                os.rmdir(os.path.join(self.cg, c))
            os.rmdir(p.cgroup)
        r = ip_batch(["netns delete %s" % p.name for p in pods], force=True)
        if r.returncode != 0:
            raise Failure("ip -batch netns delete: %s" % r.stderr.strip())
        t_deleted = time.monotonic()
        deadline = time.monotonic() + 60
        while self.pods_serving() != base_pods:
            self.check_alive()
            if time.monotonic() > deadline:
                raise Failure("weftd still serves %s pods 60 s after %d were deleted (expected %d)"
                              % (self.pods_serving(), n, base_pods))
            time.sleep(0.05)
        t_gone = time.monotonic()
        deadline = time.monotonic() + 30
        while proc_fds(pid) != fds0 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        fds2, mem2, cpu2 = proc_fds(pid), proc_mem(pid), proc_cpu_ticks(pid)
        self.cost_pods = []
        res = {"pods": n, "workers": workers, "base_pods": base_pods,
               "fds_before": fds0, "fds_with_pods": fds1, "fds_after": fds2,
               "rss_before_kb": mem0["rss_kb"], "rss_with_pods_kb": mem1["rss_kb"],
               "rss_after_kb": mem2["rss_kb"], "rss_listed_kb": mem_listed["rss_kb"],
               "anon_before_kb": mem0.get("anon_kb"),
               "anon_with_pods_kb": mem1.get("anon_kb"), "anon_after_kb": mem2.get("anon_kb"),
               "listed": len(listed), "listed_serving": len(serving), "listeners_per_pod": listeners,
               "make_s": round(t_made - t0, 3), "start_pause_s": round(t_started - t_made, 3),
               "serve_s": round(t_served - t_started, 3), "delete_s": round(t_deleted - t_del, 3),
               "let_go_s": round(t_gone - t_deleted, 3),
               "weftd_cpu_s_setup": (cpu1 - cpu0) / CLK_TCK, "weftd_cpu_s_total": (cpu2 - cpu0) / CLK_TCK}
        res["fds_per_pod"] = (fds1 - fds0) / n
        res["fds_per_pod_per_worker"] = res["fds_per_pod"] / workers
        # what they are: the pod's listeners (sockets), and the cgroup program
        # attachments of each enrolled cgroup (bpf_link: the glob enrols every
        # pod's cgroup on its own)
        res["fd_kinds_before"], res["fd_kinds_with_pods"] = kinds0, kinds1
        res["fds_per_pod_by_kind"] = {k: (kinds1[k] - kinds0[k]) / n for k in kinds0}
        res["kib_per_pod"] = (mem1["rss_kb"] - mem0["rss_kb"]) / n
        res["anon_kib_per_pod"] = ((mem1["anon_kb"] - mem0["anon_kb"]) / n
                                   if "anon_kb" in mem0 and "anon_kb" in mem1 else None)
        res["fds_back"] = fds2 == fds0
        if len(serving) != n:
            raise Failure("/pods lists %d of the %d pods as serving (%d listed)" % (len(serving), n, len(listed)))
        log("per-pod cost: fds %d -> %d -> %d, RSS %d -> %d -> %d KiB: %.2f fds/pod, %.2f KiB/pod"
            % (fds0, fds1, fds2, mem0["rss_kb"], mem1["rss_kb"], mem2["rss_kb"],
               res["fds_per_pod"], res["kib_per_pod"]))
        return res

    # -- HTTP/2 and gRPC (issue 14) -------------------------------------------------
    def run_h2(self):
        """The HTTP/2 phase, self-contained (its own servers, HAProxy and
        weftd, so BENCH_ONLY=h2 runs it alone): nghttpd serving the small file
        over h2c, the e2e tests' gRPC server (tests/e2e/grpc_peer.py) and an
        h2c server that never answers (scripts/bench/h2hold.py slow), each
        reached three ways: direct, through a weftd whose services are
        protocol "http2" (the client in its enrolled cgroup dials a VIP), and
        through HAProxy with h2 on both sides (bind ... proto h2, server ...
        proto h2). Per round, in a rotated order: h2load -c C -m M for a fixed
        time (req/s, the proxy's CPU per request), h2load at a fixed total
        rate with --log-file (per-request latency: p50/p99), gRPC unary calls
        at a fixed rate on one channel (scripts/bench/grpc_rate.py). Then,
        once per proxy and each time on a freshly started one: RSS with N idle
        HTTP/2 connections (preface and SETTINGS only, and again after one
        request each) and with M streams held open by the server that never
        answers."""
        k = self.k
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        t_phase = time.monotonic()
        H = {"conns": k["BENCH_H2_CONNS"], "streams": k["BENCH_H2_STREAMS"], "seconds": k["BENCH_H2_SECONDS"],
             "rate": k["BENCH_H2_RATE"], "lat_seconds": k["BENCH_H2_LAT_SECONDS"],
             "grpc_rate": k["BENCH_GRPC_RATE"], "grpc_seconds": k["BENCH_GRPC_SECONDS"]}
        H["rps_per_conn"] = max(1, int(round(k["BENCH_H2_RATE"] / float(k["BENCH_H2_CONNS"]))))
        log("HTTP/2: setting up nghttpd, the gRPC server, the slow server, HAProxy (h2) and weftd-h2")
        www = os.path.join(self.tmp, "h2www")
        os.makedirs(www)
        os.chmod(self.tmp, 0o755)
        with open(os.path.join(www, "bench.txt"), "wb") as f:
            f.write((b"weft bench " * 100)[:k["BENCH_BODY_BYTES"] - 1] + b"\n")
        a = self.h2addr = {"nghttpd": "127.0.0.1:%d" % free_port(), "grpc": "127.0.0.1:%d" % free_port(),
                           "slow": "127.0.0.1:%d" % free_port()}
        self.start("nghttpd", "h2srv", ["nghttpd", "--no-tls", "-a", "127.0.0.1", "-d", www,
                                        a["nghttpd"].rpartition(":")[2]], a["nghttpd"])
        self.start("grpc-server", "h2srv", [PYTHON, GRPC_PEER, "serve", "--listen", a["grpc"], "--name", "bench"],
                   a["grpc"])
        self.start("h2-slow", "h2srv", [PYTHON, H2HOLD, "slow", "--listen", a["slow"]], a["slow"])
        self.start_haproxy_h2(hard)
        w = self.start_weftd_h2()
        T = self.h2_targets = [
            dict(key="direct", label="direct (no proxy)", h2=a["nghttpd"], grpc=a["grpc"], slow=a["slow"],
                 cg="client", proxy=None),
            dict(key="weft", label="weft (http2 service)", h2=w["vip"]["h2"], grpc=w["vip"]["grpc"],
                 slow=w["vip"]["slow"], cg="mesh-h2", proxy="weftd-h2"),
            dict(key="haproxy", label="HAProxy (h2 both sides)", h2=self.hap_h2["h2"], grpc=self.hap_h2["grpc"],
                 slow=self.hap_h2["slow"], cg="client", proxy="haproxy-h2"),
        ]
        # Every target once (and warm): no failed request, no failed call.
        log("HTTP/2: checking every target")
        for t in T:
            self.h2load_check(t)
            self.run_grpc_rate(t, 1)
        self.check_alive()
        m = re.search(r"^weft_http2_streams_total (\d+)", self.weftd_metrics("weftd-h2"), re.M)
        H["weft_streams_seen"] = int(m.group(1)) if m else None
        if not H["weft_streams_seen"]:
            raise Failure("weftd-h2 counted no HTTP/2 stream after the check (weft_http2_streams_total %s): "
                          "the http2 services are not proxied per stream" % H["weft_streams_seen"])
        H["rounds"] = []
        for i in range(k["BENCH_ROUNDS"]):
            order = T[i % len(T):] + T[:i % len(T)]
            rr = {}
            for t in order:
                log("HTTP/2 round %d/%d: %s" % (i + 1, k["BENCH_ROUNDS"], t["key"]))
                rr[t["key"]] = {"h2load": self.run_h2load(t, k["BENCH_H2_SECONDS"]),
                                "h2rate": self.run_h2rate(t, H["rps_per_conn"]),
                                "grpc": self.run_grpc_rate(t, k["BENCH_GRPC_SECONDS"])}
                self.check_alive()
            H["rounds"].append(rr)
        H["memory"] = {}
        for t in T:
            if not t["proxy"]:
                continue
            log("HTTP/2: memory through %s (%d idle connections, then %d open streams)"
                % (t["key"], k["BENCH_H2_IDLE_CONNS"], k["BENCH_H2_OPEN_STREAMS"]))
            H["memory"][t["key"]] = {"idle": self.h2_hold_idle(t, None),
                                     "idle_after_request": self.h2_hold_idle(t, "/bench.txt"),
                                     "streams": self.h2_hold_streams(t)}
        H["idle_rss_kb"] = {t["proxy"]: proc_mem(self.procs[t["proxy"]].pid)["rss_kb"] for t in T if t["proxy"]}
        H["phase_s"] = round(time.monotonic() - t_phase, 1)
        # the phase's servers and proxies stop here (cleanup() would stop them too)
        for name in ("weftd-h2", "haproxy-h2", "nghttpd", "grpc-server", "h2-slow"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise Failure("%s did not stop within 15 s of SIGTERM" % name)
            if name == "weftd-h2" and rc != 0:
                raise Failure("weftd-h2 exited %s on SIGTERM:\n%s" % (rc, self.tail(name)))
        self.weftds.pop("weftd-h2", None)
        return H

    def start_haproxy_h2(self, hard):
        maxconn = max(1000, (hard - 200) // 2)
        a = self.h2addr
        self.hap_h2 = {"h2": "127.0.0.1:%d" % free_port(), "grpc": "127.0.0.1:%d" % free_port(),
                       "slow": "127.0.0.1:%d" % free_port()}
        cfg = ["global", "    nbthread %d" % self.k["BENCH_THREADS"], "    maxconn %d" % maxconn,
               "defaults", "    mode http", "    timeout connect 5s", "    timeout client 600s",
               "    timeout server 600s", "    timeout http-keep-alive 600s", "    timeout http-request 600s",
               "    maxconn %d" % maxconn]
        for name, dst in (("h2", a["nghttpd"]), ("grpc", a["grpc"]), ("slow", a["slow"])):
            # h2c on both sides; server connections shared by every client stream (as weft does)
            cfg += ["frontend fe_%s" % name, "    bind %s proto h2" % self.hap_h2[name],
                    "    default_backend be_%s" % name, "backend be_%s" % name, "    http-reuse always",
                    "    server s1 %s proto h2" % dst]
        path = self.haproxy_h2_cfg = os.path.join(self.tmp, "haproxy-h2.cfg")
        with open(path, "w") as f:
            f.write("\n".join(cfg) + "\n")
        r = subprocess.run(["haproxy", "-c", "-f", path], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure("haproxy -c rejected %s:\n%s%s" % (path, r.stdout, r.stderr))
        self.start_haproxy_h2_proc()

    def start_haproxy_h2_proc(self):
        self.start("haproxy-h2", "haproxy", ["haproxy", "-db", "-f", self.haproxy_h2_cfg], self.hap_h2["h2"])
        for x in self.hap_h2.values():
            if not wait_port(x, 5, self.procs["haproxy-h2"]):
                raise Failure("haproxy-h2 is not listening on %s:\n%s" % (x, self.tail("haproxy-h2")))

    def start_weftd_h2(self):
        """weftd with three protocol "http2" services (VIPs in 127.12.0.0/16)
        in front of nghttpd, the gRPC server and the slow server; its own pins
        and enrolled cgroup, agent.workers and the kernel fast paths as the
        main phase's weftd (weft HTTP)."""
        host = "127.12.%d.%d" % (random.randint(0, 255), random.randint(1, 254))
        pin = self.pin_path + "-h2"
        if os.path.lexists(pin):
            raise Failure("%s already exists" % pin)
        a = self.h2addr
        w = {"name": "weftd-h2", "cg": "mesh-h2", "pin": pin, "cgroups": [os.path.join(self.cg, "mesh-h2")],
             "vip": {key: "%s:%d" % (host, free_port(host)) for key in ("h2", "grpc", "slow")},
             "admin": "127.0.0.1:%d" % free_port(), "outbound": free_port(),
             "inbound": "127.0.0.1:%d" % free_port(), "conf": os.path.join(self.tmp, "weftd-h2.conf"),
             "services": (("h2", "http2", a["nghttpd"]), ("grpc", "http2", a["grpc"]),
                          ("slow", "http2", a["slow"]))}
        workers, fast = self.k["BENCH_THREADS"], True
        rc, out = self.weftd_check(w, workers, fast)
        if rc != 0 and "workers" in out:
            workers = None
            rc, out = self.weftd_check(w, workers, fast)
        if rc != 0 and ("redirect_loopback" in out or "splice" in out):
            fast = None
            rc, out = self.weftd_check(w, workers, fast)
        if rc != 0:
            raise Failure("weftd --check rejected %s:\n%s" % (w["conf"], out))
        self.h2_weft = {"workers": workers, "fast": fast}
        self.weftds["weftd-h2"] = w
        self.start_weftd_proc("weftd-h2")
        return w

    def h2_url(self, t):
        return "http://%s/bench.txt" % t["h2"]

    def h2load_check(self, t):
        argv = ["h2load", "-t1", "-c%d" % self.k["BENCH_H2_CONNS"], "-m%d" % self.k["BENCH_H2_STREAMS"],
                "-n", "2000", self.h2_url(t)]
        r = self.client(argv, t["cg"], timeout=60)
        res = parse_h2load(r.stdout)
        if r.returncode != 0 or not res or res["succeeded"] != 2000 or res["2xx"] != 2000:
            raise Failure("h2load against %s (%s) failed (rc %s):\n%s%s"
                          % (t["key"], self.h2_url(t), r.returncode, r.stdout, r.stderr))

    def run_h2load(self, t, seconds):
        """h2load -c C -m M for a fixed time: req/s, and the proxy's and
        nghttpd's CPU (all threads, schedstat) per 100k requests: their CPU
        share over the run divided by the rate (the 0.5 s warm-up runs at the
        same rate and is in both)."""
        argv = ["h2load", "-t1", "-c%d" % self.k["BENCH_H2_CONNS"], "-m%d" % self.k["BENCH_H2_STREAMS"],
                "-D", str(seconds), "--warm-up-time", "500ms", self.h2_url(t)]
        pp = self.procs[t["proxy"]].pid if t["proxy"] else None
        bp = self.procs["nghttpd"].pid
        fb = self.foreign_begin()
        p0, b0, t0 = proc_cpu_ns(pp) if pp else None, proc_cpu_ns(bp), time.monotonic()
        c0 = self.our_cpu_usec(t["cg"])
        r = self.client(argv, t["cg"], timeout=seconds + 30)
        c1 = self.our_cpu_usec(t["cg"])
        p1, b1, t1 = proc_cpu_ns(pp) if pp else None, proc_cpu_ns(bp), time.monotonic()
        foreign = self.foreign_end(fb)
        res = parse_h2load(r.stdout)
        if r.returncode != 0 or not res or not res["succeeded"]:
            raise Failure("h2load against %s (%s) failed (rc %s):\n%s%s"
                          % (t["key"], self.h2_url(t), r.returncode, r.stdout, r.stderr))
        # (h2load counts the status of a request that straddles the warm-up's end in neither part:
        # 2xx may be a little short of succeeded; any non-2xx fails the run)
        if res["failed"] or res["errored"] or res["timeout"] or res["not_2xx"]:
            raise Failure("h2load against %s: %d failed, %d errored, %d timed out, %d not 2xx:\n%s"
                          % (t["key"], res["failed"], res["errored"], res["timeout"], res["not_2xx"], r.stdout))
        wall = t1 - t0
        res["wall_s"] = round(wall, 3)
        res["foreign_cpu_pct"] = foreign
        res["client_cpu_pct"] = round(100.0 * (c1 - c0) / 1e6 / wall, 1)
        res["proxy_cpu_pct"] = round(100.0 * (p1 - p0) / 1e9 / wall, 1) if pp else None
        res["backend_cpu_pct"] = round(100.0 * (b1 - b0) / 1e9 / wall, 1)
        res["proxy_cpu_s_per_100k"] = ((p1 - p0) / 1e9 / wall / res["rps"] * 1e5) if pp else None
        res["backend_cpu_s_per_100k"] = (b1 - b0) / 1e9 / wall / res["rps"] * 1e5
        return res

    def run_h2rate(self, t, rps):
        """h2load at a fixed rate (--rps per connection), per-request times
        from --log-file: percentiles of the time from a request's start to the
        end of its response, over the requests of the main duration."""
        logf = os.path.join(self.tmp, "h2load-%s.tsv" % t["key"])
        try:
            os.unlink(logf)
        except FileNotFoundError:
            pass
        secs = self.k["BENCH_H2_LAT_SECONDS"]
        argv = ["h2load", "-t1", "-c%d" % self.k["BENCH_H2_CONNS"], "-m%d" % self.k["BENCH_H2_STREAMS"],
                "--rps", str(rps), "-D", str(secs), "--warm-up-time", "500ms", "--log-file", logf,
                self.h2_url(t)]
        fb = self.foreign_begin()
        r = self.client(argv, t["cg"], timeout=secs + 30)
        foreign = self.foreign_end(fb)
        res = parse_h2load(r.stdout)
        lat, bad = [], 0
        try:
            with open(logf) as f:
                for line in f:
                    c = line.split()
                    if len(c) >= 3 and c[1] == "200":
                        lat.append(int(c[2]))
                    else:
                        bad += 1
            os.unlink(logf)
        except OSError as e:
            raise Failure("h2load --log-file against %s: %s (rc %s):\n%s%s"
                          % (t["key"], e, r.returncode, r.stdout, r.stderr))
        if r.returncode != 0 or not res or bad or not lat or res["failed"] or res["errored"]:
            raise Failure("h2load --rps against %s failed (rc %s, %d bad log rows):\n%s%s"
                          % (t["key"], r.returncode, bad, r.stdout, r.stderr))
        lat.sort()
        return {"requests": len(lat), "rate": round(len(lat) / float(secs), 1), "foreign_cpu_pct": foreign,
                "latency_us": {p: pctl(lat, x) for p, x in (("p50", 50), ("p90", 90), ("p99", 99),
                                                             ("p99.9", 99.9))},
                "mean_us": statistics.mean(lat)}

    def run_grpc_rate(self, t, seconds):
        argv = [PYTHON, GRPC_RATE, "--connect", t["grpc"], "--rate", str(self.k["BENCH_GRPC_RATE"]),
                "--duration", str(seconds), "--warmup", "0.5"]
        fb = self.foreign_begin()
        r = self.client(argv, t["cg"], timeout=seconds + 60)
        foreign = self.foreign_end(fb)
        try:
            d = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise Failure("grpc_rate.py against %s (%s) failed (rc %s):\n%s%s"
                          % (t["key"], t["grpc"], r.returncode, r.stdout, r.stderr))
        if d["errors"] or not d["ok"]:
            raise Failure("grpc_rate.py against %s: %d of %d calls failed (%s)"
                          % (t["key"], d["errors"], d["calls"], d["first_error"]))
        d["foreign_cpu_pct"] = foreign
        return d

    def h2_fresh(self, t):
        """A freshly started proxy (memory a process has freed stays in its
        heap: a second measurement on the same process would look cheaper),
        with one request through it first, so that one-time allocations
        (nghttp2's callbacks, the first upstream connection, pools) are in the
        baseline and not charged to the connections measured. -> pid"""
        self.restart(t["proxy"])
        r = self.client(["h2load", "-n1", "-c1", self.h2_url(t)], t["cg"], timeout=30)
        res = parse_h2load(r.stdout)
        if r.returncode != 0 or not res or res["succeeded"] != 1:
            raise Failure("h2load -n1 through a fresh %s failed:\n%s%s" % (t["proxy"], r.stdout, r.stderr))
        time.sleep(0.5)
        return self.procs[t["proxy"]].pid

    def h2_http2_conns(self, t, svc):
        """weftd-h2's HTTP/2 client connections of service svc in /conns: (count, streams open)."""
        conns = [c for c in self.admin_json("weftd-h2", "/conns", timeout=30)["conns"]
                 if c.get("protocol") == "http2" and c.get("service") == svc]
        return len(conns), sum(c.get("streams", 0) for c in conns)

    def h2_hold_idle(self, t, request):
        n = self.k["BENCH_H2_IDLE_CONNS"]
        pid = self.h2_fresh(t)
        fds0, before = proc_fds(pid), proc_mem(pid)
        argv = [PYTHON, H2HOLD, "idle", "--connect", t["h2"], "--conns", str(n)]
        if request:
            argv += ["--request", request]
        p = subprocess.Popen(self.wrap(t["cg"], argv, "client"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=self.tmp)
        seen = None
        try:
            line = p.stdout.readline()
            try:
                first = json.loads(line)
            except ValueError:
                raise Failure("h2hold.py idle through %s failed: %r %s"
                              % (t["key"], line, p.stderr.read() if p.poll() is not None else ""))
            time.sleep(1.0)
            held, held_fds = proc_mem(pid), proc_fds(pid)
            if t["proxy"].startswith("weftd"):
                seen = self.h2_http2_conns(t, "bench-h2")[0]
            p.stdin.close()
            second = p.stdout.readline()
            p.wait(30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        try:
            closed = json.loads(second).get("closed_by_peer")
        except ValueError:
            closed = None
        if first["held"] != n:
            raise Failure("h2hold.py through %s: %d of %d connections held (%s)"
                          % (t["key"], first["held"], n, first["first_error"]))
        if seen is not None and seen != n:
            raise Failure("weftd-h2's /conns shows %d HTTP/2 connections of bench-h2 while %d were held"
                          % (seen, n))
        self.settle(pid, fds0)
        return {"conns": n, "request": request, "open_s": first["open_s"], "closed_by_peer": closed,
                "rss_before_kb": before["rss_kb"], "rss_held_kb": held["rss_kb"],
                "anon_before_kb": before.get("anon_kb"), "anon_held_kb": held.get("anon_kb"),
                "fds_before": fds0, "fds_held": held_fds, "weft_conns_seen": seen,
                "kib_per_conn": (held["rss_kb"] - before["rss_kb"]) / float(n)}

    def h2_hold_streams(self, t):
        """RSS with M streams open (100 per connection, as both proxies allow
        per client connection) to the server that never answers, against RSS
        with the same connections open and idle: per stream."""
        m = self.k["BENCH_H2_OPEN_STREAMS"]
        per = min(100, m)
        nconn = (m + per - 1) // per
        total = nconn * per
        pid = self.h2_fresh(t)
        argv = [PYTHON, H2HOLD, "streams", "--connect", t["slow"], "--conns", str(nconn),
                "--per-conn", str(per)]
        p = subprocess.Popen(self.wrap(t["cg"], argv, "client"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=self.tmp)
        seen = None
        try:
            line = p.stdout.readline()
            try:
                first = json.loads(line)
            except ValueError:
                raise Failure("h2hold.py streams through %s failed: %r %s"
                              % (t["key"], line, p.stderr.read() if p.poll() is not None else ""))
            if first["connected"] != nconn:
                raise Failure("h2hold.py streams through %s: %d of %d connections (%s)"
                              % (t["key"], first["connected"], nconn, first["first_error"]))
            time.sleep(1.0)
            idle = proc_mem(pid)
            p.stdin.write("go\n")
            p.stdin.flush()
            json.loads(p.stdout.readline())
            deadline = time.monotonic() + 20
            if t["proxy"].startswith("weftd"):
                # every stream open in weftd (and so sent on to the server)
                while True:
                    seen = self.h2_http2_conns(t, "bench-slow")[1]
                    if seen == total:
                        break
                    if time.monotonic() > deadline:
                        raise Failure("weftd-h2 shows %s of %d streams open" % (seen, total))
                    time.sleep(0.1)
            else:
                # no per-stream view: RSS that has stopped growing for a second
                last, since = proc_mem(pid)["rss_kb"], time.monotonic()
                while time.monotonic() - since < 1.0 and time.monotonic() < deadline:
                    time.sleep(0.1)
                    r_ = proc_mem(pid)["rss_kb"]
                    if r_ != last:
                        last, since = r_, time.monotonic()
            time.sleep(1.0)
            held = proc_mem(pid)
            p.stdin.close()
            second = p.stdout.readline()
            p.wait(30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        try:
            closed = json.loads(second).get("closed_by_peer")
        except ValueError:
            closed = None
        return {"conns": nconn, "per_conn": per, "streams": total, "closed_by_peer": closed,
                "rss_conns_kb": idle["rss_kb"], "rss_streams_kb": held["rss_kb"],
                "anon_conns_kb": idle.get("anon_kb"), "anon_streams_kb": held.get("anon_kb"),
                "weft_streams_seen": seen, "kib_per_stream": (held["rss_kb"] - idle["rss_kb"]) / float(total)}

    # -- Kubernetes discovery (issue 13) ----------------------------------------
    def kube_objects(self, api, n, per):
        """n Services (one TCP port each, a ClusterIP in 127.13.0.0/16 and up:
        no other part of the benchmark uses it, and they are only written to
        this weftd's own weft_services) and n EndpointSlices of per ready
        endpoints each, shaped as the EndpointSlice controller writes them
        (targetRef with the pod's uid, nodeName, zone). Endpoint addresses are
        in 198.18.0.0/15 and never dialled. Every fifth endpoint is on the
        other node (the cross-node path of kmodel; without node-to-node mTLS
        weftd reaches it directly, as the DaemonSet's default does).
        -> the slices as [(namespace, name)], slice i for Service i."""
        import kubeapi
        node, other = KUBE_NODE, KUBE_OTHER_NODE
        api.upsert(kubeapi.node(node, ["127.0.0.1"]))
        api.upsert(kubeapi.node(other, ["127.0.0.2"]))
        slices = []
        k = 0
        for i in range(n):
            ns, name = "bench-%03d" % (i % 100), "svc-%05d" % i
            c = i + 1
            vip = "127.%d.%d.%d" % (13 + (c >> 16), (c >> 8) & 255, c & 255)
            svc = api.upsert(kubeapi.service(ns, name, [vip], [("http", 80, None, 8080)]))
            eps = []
            for j in range(per):
                a = k % 131070 + 1
                k += 1
                on = other if j % 5 == 4 else node
                eps.append(kubeapi.endpoint(
                    ["198.%d.%d.%d" % (18 + (a >> 16), (a >> 8) & 255, a & 255)], node_name=on,
                    target_ref={"kind": "Pod", "namespace": ns, "name": "%s-7c9d8f6b5-%05x" % (name, j),
                                "uid": str(uuid.uuid4())},
                    zone="zone-%s" % on[-1], ns=ns))
            sl = kubeapi.endpointslice(ns, "%s-%05x" % (name, i & 0xfffff), name, "IPv4",
                                       [("http", 8080, None)], eps, service_uid=svc["metadata"]["uid"])
            api.upsert(sl)
            slices.append((ns, sl["metadata"]["name"]))
        return slices

    def kube_wait_applied(self, fol, want, kinds, timeout, what):
        """Follow weftd's log until each of kinds has logged `want` ("listed"
        or "relisted"), then until the next "N discovered services applied
        in S s" line (the coalesced apply that includes them all).
        -> (log time of that line (epoch s), N, S, monotonic when seen)."""
        pid = self.procs["weftd-kube"].pid
        seen = set()
        deadline = time.monotonic() + timeout
        while True:
            for ts, msg in fol.lines():
                m = re.match(r"kubernetes: (\w+) (listed|relisted) \(", msg)
                if m and m.group(2) == want:
                    seen.add(m.group(1))
                    continue
                m = re.match(r"kubernetes: (\d+) discovered services applied in ([\d.]+) s", msg)
                if m and seen >= set(kinds):
                    return ts, int(m.group(1)), float(m.group(2)), time.monotonic()
            if self.procs["weftd-kube"].poll() is not None:
                raise Failure("weftd-kube exited (%s) during %s:\n%s"
                              % (self.procs["weftd-kube"].returncode, what, self.tail("weftd-kube")))
            if time.monotonic() > deadline:
                raise Failure("weftd-kube: %s not done within %.0f s (seen %s %s of %s; pid %d):\n%s"
                              % (what, timeout, want, sorted(seen), sorted(kinds), pid, self.tail("weftd-kube")))
            time.sleep(0.003)

    def kube_admin(self, path, pid, timeout=120):
        """GET path from weftd-kube's admin API: (body, wall s, weftd CPU s)."""
        c0, t0 = proc_cpu_ns(pid), time.monotonic()
        with urllib.request.urlopen("http://%s%s" % (self.kube_admin_addr, path), timeout=timeout) as r:
            body = r.read()
        return body, time.monotonic() - t0, (proc_cpu_ns(pid) - c0) / 1e9

    def run_kube(self):
        """weftd discovering a big cluster from the test API server
        (tests/e2e/kubeapi.py, in this process: TLS, bearer token, lists in
        pages, watches), end to end. Measured from weftd's side: the initial
        sync (CPU from the first request it makes, wall time to the apply that
        holds every Service and slice, peak RSS), a full relist after a 410
        (the API away while a Service goes, its history compacted: every kind
        lists again in pages), and single watch events (one EndpointSlice
        changed: wall time to the applied change, weftd's CPU). Progress is
        read from weftd's own log (log_level debug: one line per apply), not
        from the admin API: at this size /services and /metrics are large
        answers made on weftd's main loop (measured once, at the end)."""
        sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
        import tempfile
        import kubeapi
        n, per, nev = (self.k["BENCH_KUBE_SERVICES"], self.k["BENCH_KUBE_ENDPOINTS"],
                       self.k["BENCH_KUBE_EVENTS"])
        nrel = self.k["BENCH_KUBE_RELISTS"]
        nev = min(nev, n - 1 - nrel)
        res = {"services": n, "endpoints_per_slice": per, "endpoints": n * per, "node": KUBE_NODE}
        t_phase = time.monotonic()
        log("kubernetes: %d Services, %d EndpointSlices of %d endpoints in the test API server" % (n, n, per))

        class API(kubeapi.KubeAPI):
            """Calls on_request (once) when the next request comes in."""
            on_request = None

            def _log(self, *a, **kw):
                cb, self.on_request = self.on_request, None
                if cb:
                    cb()
                return kubeapi.KubeAPI._log(self, *a, **kw)

        tempfile.tempdir = self.tmp     # the API server's certificates: in the run's temp dir
        t0, c0 = time.monotonic(), time.process_time()
        api = self.kube_api = API(self.tmp)
        slices = self.kube_objects(api, n, per)
        res["build_s"] = round(time.monotonic() - t0, 2)
        res["build_cpu_s"] = round(time.process_time() - c0, 2)
        api.start()

        pin = self.pin_path + "-kube"
        if os.path.lexists(pin):
            raise Failure("%s already exists" % pin)
        self.kube_admin_addr = "127.0.0.1:%d" % free_port()
        workers = res["workers"] = self.weft_workers or self.k["BENCH_THREADS"]
        conf = os.path.join(self.tmp, "weftd-kube.conf")
        with open(conf, "w") as f:
            f.write('agent: {\n  admin = "%s";\n  outbound_port = %d;\n  inbound = "127.0.0.1:%d";\n'
                    '  bpf_pin_path = "%s";\n  fail_mode = "open";\n  log_level = "debug";\n'
                    '  drain_timeout_ms = 1000;\n  workers = %d;\n};\n'
                    'intercept: { cgroups = [ "%s" ]; };\nservices = ( );\n'
                    'kubernetes: { api = "%s"; token_file = "%s"; ca_file = "%s"; node_name = "%s"; };\n'
                    % (self.kube_admin_addr, free_port(), free_port(), pin, workers,
                       os.path.join(self.cg, "kube"), api.url, api.token_file, api.ca_file, KUBE_NODE))
        r = subprocess.run([self.weftd_bin, "-c", conf, "--check"], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure("weftd --check rejected %s:\n%s%s" % (conf, r.stdout, r.stderr))

        # 1. the initial sync
        first = {}

        def at_first_request():
            # in a server thread, before the request is served
            try:
                first.update(t=time.time(), cpu_ns=proc_cpu_ns(self.procs["weftd-kube"].pid))
            except (OSError, KeyError):
                pass    # weftd is gone: the wait below says so
        api.on_request = at_first_request
        pc0 = time.process_time()
        t_exec = time.time()
        p = self.start("weftd-kube", "weftd", [self.weftd_bin, "-c", conf])
        pid = p.pid
        fol = WeftLog(self.logs["weftd-kube"])
        kinds = ("services", "endpointslices", "pods", "nodes")
        ts, count, apply_s, _ = self.kube_wait_applied(fol, "listed", kinds, 120 + n / 100.0, "the initial sync")
        cpu = proc_cpu_ns(pid)
        if "t" not in first:
            raise Failure("weftd-kube synced without a request seen by the test API server")
        mem = proc_mem(pid)
        if count != n:
            raise Failure("weftd-kube applied %d discovered services after the initial sync, expected %d:\n%s"
                          % (count, n, self.tail("weftd-kube")))
        reqs = api.requests
        res["sync"] = {
            "wall_s": round(ts - first["t"], 3), "wall_from_exec_s": round(ts - t_exec, 3),
            "cpu_s": round((cpu - first["cpu_ns"]) / 1e9, 3), "cpu_startup_s": round(first["cpu_ns"] / 1e9, 3),
            "cpu_total_s": round(cpu / 1e9, 3), "last_apply_s": apply_s,
            "rss_kb": mem["rss_kb"], "hwm_kb": mem["hwm_kb"], "anon_kb": mem.get("anon_kb"),
            "api_cpu_s": round(time.process_time() - pc0, 2),
            "pages": {k: sum(1 for q in reqs if q.get("resource") == k and q.get("verb") == "list")
                      for k in kinds}}
        log("kubernetes: initial sync in %.2f s, %.2f s of weftd CPU, peak RSS %.1f MiB"
            % (res["sync"]["wall_s"], res["sync"]["cpu_s"], mem["hwm_kb"] / 1024.0))

        # 2. full relists: the API goes away, a Service (and its slice) is
        # deleted meanwhile and the history compacted, the API comes back: the
        # watches resume from a version that is gone (410) and every kind lists
        # again, in pages; the deleted Service can only be learnt from the relist.
        # Repeated (BENCH_KUBE_RELISTS): median and range, as for the other parts.
        time.sleep(1.0)
        res["idle_after_sync_rss_kb"] = proc_mem(pid)["rss_kb"]
        victims, res["relists"] = [], []
        for i in range(nrel):
            victim = (n // 2 + i * 101) % n
            victims.append(victim)
            vns, vslice = slices[victim]
            time.sleep(0.5)
            idle = proc_mem(pid)
            peak_reset = reset_peak_rss(pid)
            since = len(api.requests)
            api.stop()
            api.delete("EndpointSlice", vns, vslice)
            api.delete("Service", vns, "svc-%05d" % victim)
            api.compact()
            first.clear()
            api.on_request = at_first_request
            pc0 = time.process_time()
            api.start()
            ts, count, apply_s, _ = self.kube_wait_applied(fol, "relisted", kinds, 120 + n / 100.0,
                                                           "relist %d" % (i + 1))
            cpu = proc_cpu_ns(pid)
            mem = proc_mem(pid)
            if "t" not in first:
                raise Failure("weftd-kube relisted without a request seen by the test API server")
            if count != n - len(victims):
                raise Failure("weftd-kube applied %d discovered services after relist %d, expected %d"
                              % (count, i + 1, n - len(victims)))
            reqs = api.requests[since:]
            rl = {"wall_s": round(ts - first["t"], 3), "cpu_s": round((cpu - first["cpu_ns"]) / 1e9, 3),
                  "last_apply_s": apply_s, "rss_kb": mem["rss_kb"], "hwm_kb": mem["hwm_kb"],
                  "hwm_since": "relist" if peak_reset else "start",
                  "anon_kb": mem.get("anon_kb"), "rss_before_kb": idle["rss_kb"],
                  "api_cpu_s": round(time.process_time() - pc0, 2),
                  "expired_410": sum(1 for q in reqs if q.get("verb") == "watch" and q.get("expired")),
                  "pages": {k: sum(1 for q in reqs if q.get("resource") == k and q.get("verb") == "list")
                            for k in kinds}}
            res["relists"].append(rl)
            log("kubernetes: relist %d/%d in %.2f s, %.2f s of weftd CPU, peak RSS %.1f MiB"
                % (i + 1, nrel, rl["wall_s"], rl["cpu_s"], mem["hwm_kb"] / 1024.0))
        RL = res["relists"]
        res["relist"] = {key: statistics.median([x[key] for x in RL])
                         for key in ("wall_s", "cpu_s", "last_apply_s", "rss_kb", "api_cpu_s")}
        res["relist"].update({"hwm_kb": max(x["hwm_kb"] for x in RL), "expired_410": RL[-1]["expired_410"],
                              "pages": RL[-1]["pages"], "hwm_since": RL[0]["hwm_since"],
                              "cpu_min_s": min(x["cpu_s"] for x in RL), "cpu_max_s": max(x["cpu_s"] for x in RL),
                              "wall_min_s": min(x["wall_s"] for x in RL),
                              "wall_max_s": max(x["wall_s"] for x in RL)})
        gone = len(victims)

        # 3. watch events: one endpoint of one slice stops being ready
        events = []
        flipped = []
        for e in range(nev):
            idx = (1 + e * 7919) % n
            while idx in victims or idx in flipped:
                idx = (idx + 1) % n
            flipped.append(idx)
            sl = api.get("EndpointSlice", *slices[idx])
            sl["endpoints"][0]["conditions"] = {"ready": False, "serving": False, "terminating": False}
            time.sleep(0.2)
            fol.lines()     # whatever came before this event
            c0, t0, m0 = proc_cpu_ns(pid), time.time(), time.monotonic()
            api.upsert(sl)
            ts, count, apply_s, seen = self.kube_wait_applied(fol, "", (), 30, "watch event %d" % e)
            cpu = proc_cpu_ns(pid)
            events.append({"latency_s": ts - t0, "seen_s": seen - m0, "cpu_s": (cpu - c0) / 1e9,
                           "apply_s": apply_s, "services": count})
        res["events"] = events
        for key in ("latency_s", "seen_s", "cpu_s", "apply_s"):
            vals = [x[key] for x in events]
            res["event_" + key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
        mem = proc_mem(pid)
        res["after_events"] = {"rss_kb": mem["rss_kb"], "hwm_kb": mem["hwm_kb"]}
        log("kubernetes: watch event applied in %.0f ms (median of %d), %.1f ms of weftd CPU"
            % (res["event_latency_s"]["median"] * 1e3, nev, res["event_cpu_s"]["median"] * 1e3))

        # 4. what weftd serves now, checked once through the admin API (and what that costs)
        body, wall, cpu_s = self.kube_admin("/services", pid)
        doc = json.loads(body)
        kube = {s_["name"]: s_ for s_ in doc["services"] if s_.get("source") == "kubernetes"}
        n_eps = sum(len(s_["endpoints"]) for s_ in kube.values())
        want_eps = (n - gone) * per - nev
        bad = [i for i in flipped if len(kube.get("%s/svc-%05d:80" % (slices[i][0], i), {}).get("endpoints", ()))
               != per - 1]
        res["services_page"] = {"bytes": len(body), "wall_s": round(wall, 3), "cpu_s": round(cpu_s, 3),
                                "services": len(kube), "endpoints": n_eps}
        left = [v for v in victims if "%s/svc-%05d:80" % (slices[v][0], v) in kube]
        if len(kube) != n - gone or n_eps != want_eps or bad or left:
            raise Failure("weftd-kube's /services after the run: %d discovered services with %d endpoints, "
                          "expected %d with %d (changed slices not applied: %s; deleted but served: %s)"
                          % (len(kube), n_eps, n - gone, want_eps, bad[:5], left[:5]))
        del doc, kube, body
        body, wall, cpu_s = self.kube_admin("/metrics", pid)
        mem = proc_mem(pid)
        km = {m_.group(1).decode() + m_.group(2).decode(): int(m_.group(3)) for m_ in re.finditer(
            rb"^weft_kubernetes_(relists_total|endpoints|objects)(\{[^}]*\}) (\d+)$", body, re.M)}
        res["metrics_page"] = {"bytes": len(body), "wall_s": round(wall, 3), "cpu_s": round(cpu_s, 3),
                               "lines": body.count(b"\n"), "hwm_kb_after": mem["hwm_kb"],
                               "rss_kb_after": mem["rss_kb"]}
        del body
        res["metrics"] = km
        if any(km.get('relists_total{kind="%s"}' % k_, 0) < 1 for k_ in kinds):
            self.notes.append("Kubernetes phase: weft_kubernetes_relists_total did not count a relist for every "
                              "kind: %s" % {k_: v for k_, v in km.items() if k_.startswith("relists")})

        # done: stop it (SIGTERM: detach, unpin) and the API server
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Failure("weftd-kube did not stop within 15 s of SIGTERM")
        if rc != 0:
            raise Failure("weftd-kube exited %s on SIGTERM:\n%s" % (rc, self.tail("weftd-kube")))
        api.stop()
        if api.errors:
            raise Failure("the test API server broke:\n%s" % "\n".join(api.errors))
        res["phase_s"] = round(time.monotonic() - t_phase, 1)
        return res

    def describe(self):
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        mem_kb = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
        virt = first_line(["systemd-detect-virt"]) if shutil.which("systemd-detect-virt") else None
        hv = None
        try:
            r = subprocess.run(["lscpu"], capture_output=True, text=True)
            m = re.search(r"Hypervisor vendor:\s+(.*)", r.stdout)
            hv = m.group(1).strip() if m else None
        except OSError:
            pass
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "bpf", "userspace",
                                "include"], capture_output=True, text=True).stdout.strip()
        idle_gov = None
        try:
            with open("/sys/devices/system/cpu/cpuidle/current_governor_ro") as f:
                idle_gov = f.read().strip()
        except OSError:
            pass
        return {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu, "cpus": NCPU, "mem_gib": round(mem_kb / 1048576, 1),
            "kernel": os.uname().release, "hypervisor": hv or virt, "cpuidle_governor": idle_gov,
            "os": first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
            "weftd": first_line([self.weftd_bin, "--version"]) + " (git %s%s)" % (rev, "+local changes" if dirty else ""),
            "haproxy": re.sub(r"^(HAProxy version \S+).*", r"\1", first_line(["haproxy", "-v"])),
            "nginx": first_line(["nginx", "-v"]),
            "wrk": first_line(["wrk", "-v"]).split("Copyright")[0].strip(),
            "sockperf": first_line(["sockperf", "--version"]) if self.have_sockperf else "not installed",
            "nghttpd": first_line(["nghttpd", "--version"]),
            "h2load": first_line(["h2load", "--version"]),
            "grpcio": first_line([PYTHON, "-c", "import grpc; print(grpc.__version__)"]),
        }

    # -- cleanup ----------------------------------------------------------------
    def cleanup(self):
        errs = []
        weftds = [(n, p) for n, p in self.procs.items() if n.startswith("weftd") and p.poll() is None]
        for n, w in weftds:
            w.send_signal(signal.SIGTERM)  # drain, detach the programs, exit 0
        for n, w in weftds:
            try:
                rc = w.wait(10)
                if rc != 0:
                    errs.append("%s exited %s on SIGTERM" % (n, rc))
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
                errs.append("%s did not exit within 10 s of SIGTERM" % n)
        for name, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, p in self.procs.items():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if os.path.isdir(self.cg):
            # Anything left in our cgroups (a client we lost track of) goes too.
            try:
                with open(os.path.join(self.cg, "cgroup.kill"), "w") as f:
                    f.write("1\n")
            except OSError:
                pass
            # the pods' pause processes are ours to reap
            for pod in self.cost_pods:
                if pod.proc is not None:
                    try:
                        pod.proc.wait(10)
                    except subprocess.TimeoutExpired:
                        errs.append("pause process %d of %s did not die" % (pod.proc.pid, pod.name))
            deadline = time.monotonic() + 10
            while os.path.isdir(self.cg):
                for d, _, _ in sorted(os.walk(self.cg), key=lambda x: -len(x[0])):
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
                if time.monotonic() > deadline:
                    errs.append("could not remove cgroup %s" % self.cg)
                    break
                if os.path.isdir(self.cg):
                    time.sleep(0.1)
        # The bench pod's veth (it would go with its netns, but the kernel
        # dismantles namespaces asynchronously), then the pods' network
        # namespaces (the processes in them are gone with the cgroups).
        try:
            if link_exists(self.veth):
                ip_cmd("link", "del", "dev", self.veth, check=False)
                if link_exists(self.veth):
                    errs.append("could not delete interface %s" % self.veth)
        except (Failure, OSError, subprocess.SubprocessError) as e:
            errs.append("interface %s: %s" % (self.veth, e))
        try:
            nss = sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(self.name + "-"))
        except FileNotFoundError:
            nss = []
        if nss:
            ip_batch(["netns delete %s" % n for n in nss], force=True)
            left = [n for n in nss if os.path.lexists(os.path.join(NETNS_DIR, n))]
            if left:
                errs.append("could not delete network namespaces %s" % " ".join(left))
        if self.kube_api is not None:
            try:
                self.kube_api.stop()
            except Exception as e:   # noqa: BLE001 (cleanup goes on)
                errs.append("test API server: %s" % e)
        for pin in (self.pin_path, self.pin_path + "-nofast", self.pin_path + "-kube", self.pin_path + "-h2"):
            if os.path.lexists(pin):
                shutil.rmtree(pin, ignore_errors=True)
                if os.path.lexists(pin):
                    errs.append("could not remove %s" % pin)
        # Keep the logs of the servers and proxies next to the results.
        logdir = os.path.join(self.outdir, "logs")
        shutil.rmtree(logdir, ignore_errors=True)
        os.makedirs(logdir, exist_ok=True)
        for name, pth in list(self.logs.items()) + [("nginx-error", os.path.join(self.tmp, "nginx-error.log"))]:
            try:
                shutil.copy(pth, os.path.join(logdir, name + ".log"))
            except OSError:
                pass
        for f in ("weftd.conf", "weftd-nofast.conf", "weftd-kube.conf", "weftd-h2.conf", "haproxy.cfg",
                  "haproxy-h2.cfg", "nginx.conf"):
            try:
                shutil.copy(os.path.join(self.tmp, f), os.path.join(logdir, f))
            except OSError:
                pass
        return errs


# --------------------------------------------------------------------------
# report

def fmt_int(v):
    return "n/a" if v is None else "{:,}".format(int(round(v)))


def fmt_f(v, nd=1):
    return "n/a" if v is None else "%.*f" % (nd, v)


def fmt_x(v):
    return "n/a" if v is None else "%.2fx" % v


def spread(vals, f=fmt_int):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"
    return "%s-%s" % (f(min(vals)), f(max(vals)))


def summarize(b):
    """Per target: medians and ranges over the rounds."""
    R = b.results
    S = {}
    for t in b.targets:
        k = t["key"]
        rows = [r[k] for r in R["rounds"] if k in r]
        s = {"label": t["label"], "proxy": t["proxy"], "mode": t["mode"]}

        def col(path):
            out = []
            for r in rows:
                v = r
                for p in path:
                    v = v.get(p) if isinstance(v, dict) else None
                out.append(v)
            return out
        s["rps"] = col(["wrk", "rps"])
        s["proxy_cpu"] = col(["wrk", "proxy_cpu_s_per_100k"])
        s["nginx_cpu"] = col(["wrk", "nginx_cpu_s_per_100k"])
        for pc in ("p50", "p99", "p99.9"):
            s["http_" + pc] = col(["http_rate", "latency_us", pc])
            s["svc_" + pc] = col(["http_rate", "service_us", pc])
            s["tcp_" + pc] = col(["sockperf", pc]) if t["tcp"] else []
        s["lag_p99"] = col(["http_rate", "send_lag_us", "p99"])
        s["foreign"] = [v for v in col(["wrk", "foreign_cpu_pct"]) + col(["http_rate", "foreign_cpu_pct"])
                        + (col(["sockperf", "foreign_cpu_pct"]) if t["tcp"] else []) if v is not None]
        S[k] = s
    return S


def render_kube(b, K):
    """The Kubernetes discovery section (issue 13)."""
    L = ["## Kubernetes discovery (issue 13)\n"]
    S, R, E = K["sync"], K["relist"], K["events"]
    mib = lambda kb: kb / 1024.0
    L.append("weftd (agent.workers = %d, log_level debug, no node-to-node mTLS) discovering from the test API "
             "server (tests/e2e/kubeapi.py, TLS and a bearer token, lists in pages of 500 as weftd asks, "
             "watches), which runs in the benchmark's own Python process: %s Services with one TCP port and a "
             "ClusterIP each, %s EndpointSlices of %d ready endpoints each (%s endpoints, targetRef with the "
             "pod's uid, nodeName, zone; every fifth endpoint on another node that has a Node with an "
             "InternalIP), 2 Nodes. Building them took %.1f s. CPU is weftd's (all threads, "
             "/proc/PID/task/*/schedstat); peak RSS is VmHWM, reset (clear_refs) before each relist (the relist row: the highest). Progress is "
             "read from weftd's log (one line per apply), not from the admin API: its answers at this size "
             "are measured apart, below.\n"
             % (K["workers"], fmt_int(K["services"]),
                fmt_int(K["services"]), K["endpoints_per_slice"], fmt_int(K["endpoints"]), K["build_s"]))
    L.append("| step | wall | weftd CPU | peak RSS | RSS after | last apply |")
    L.append("|---|---:|---:|---:|---:|---:|")
    L.append("| initial sync (first request to the apply holding everything) | %.2f s | %.3f s | %.1f MiB | "
             "%.1f MiB | %.3f s |" % (S["wall_s"], S["cpu_s"], mib(S["hwm_kb"]), mib(S["rss_kb"]),
                                     S["last_apply_s"]))
    L.append("| full relist after a 410 (all 4 kinds, in pages; one Service gone meanwhile), median of %d "
             "| %.2f s (%.2f-%.2f) | %.3f s (%.3f-%.3f) | %.1f MiB | %.1f MiB | %.3f s |"
             % (len(K["relists"]), R["wall_s"], R["wall_min_s"], R["wall_max_s"], R["cpu_s"], R["cpu_min_s"],
                R["cpu_max_s"], mib(R["hwm_kb"]), mib(R["rss_kb"]), R["last_apply_s"]))
    el, ec, ea = K["event_latency_s"], K["event_cpu_s"], K["event_apply_s"]
    L.append("| one watch event (an endpoint of one slice not ready), median of %d | %.0f ms (%.0f-%.0f) | "
             "%.1f ms (%.1f-%.1f) | - | %.1f MiB | %.3f s |"
             % (len(E), el["median"] * 1e3, el["min"] * 1e3, el["max"] * 1e3, ec["median"] * 1e3,
                ec["min"] * 1e3, ec["max"] * 1e3, mib(K["after_events"]["rss_kb"]), ea["median"]))
    L.append("")
    L.append("Initial sync: weftd's start-up before its first request to the API took %.3f s of CPU more "
             "(%.2f s from exec to synced). The test API server's own CPU (this Python process, serving one page "
             "at a time as weftd asks) was %.1f s during the sync and %.1f s during a relist (median). Pages read "
             "(list requests) in the sync: %s; in a relist: %s; watches answered 410: %d. A watch event "
             "is applied after weftd's 20 ms coalescing, by rebuilding every discovered service (the *last "
             "apply* column: weftd's own timing of that rebuild).\n"
             % (S["cpu_startup_s"], S["wall_from_exec_s"], S["api_cpu_s"], R["api_cpu_s"],
                ", ".join("%s %d" % kv for kv in S["pages"].items()),
                ", ".join("%s %d" % kv for kv in R["pages"].items()), R["expired_410"]))
    sp, mp = K["services_page"], K["metrics_page"]
    L.append("The admin API at this size, once each after the measurements: `/services` is %.1f MB "
             "(%s services, %s endpoints, checked against the API's state) and took %.3f s of weftd CPU; "
             "`/metrics` is %.1f MB (%s lines) and took %.3f s of weftd CPU (%.1f s wall), peak RSS %.1f MiB "
             "after it. Both are made on weftd's main loop, which discovery shares.\n"
             % (sp["bytes"] / 1e6, fmt_int(sp["services"]), fmt_int(sp["endpoints"]), sp["cpu_s"],
                mp["bytes"] / 1e6, fmt_int(mp["lines"]), mp["cpu_s"], mp["wall_s"], mib(mp["hwm_kb_after"])))
    L.append("| target (issue 13, 10k Services / 100k endpoints) | measured | met |")
    L.append("|---|---|---|")
    L.append("| a relist under %.0f s of CPU | %.3f s (median; %.3f-%.3f) | %s |"
             % (KUBE_TARGET_CPU_S, R["cpu_s"], R["cpu_min_s"], R["cpu_max_s"],
                "yes" if R["cpu_s"] < KUBE_TARGET_CPU_S else "**no**"))
    peak = max(S["hwm_kb"], R["hwm_kb"]) / 1024.0
    L.append("| under %.0f MiB RSS (peak of sync and relist) | %.1f MiB | %s |"
             % (KUBE_TARGET_RSS_MIB, peak, "yes" if peak < KUBE_TARGET_RSS_MIB else "**no**"))
    if K["services"] != 10000 or K["endpoints_per_slice"] != 10:
        L.append("\n(The targets are for 10,000 Services and 100,000 endpoints; this run had %s and %s.)"
                 % (fmt_int(K["services"]), fmt_int(K["endpoints"])))
    L.append("")
    return L


def render_h2(b, H):
    """The HTTP/2 and gRPC section (issue 14)."""
    T = b.h2_targets
    rounds = H["rounds"]

    def col(key, *path):
        out = []
        for r in rounds:
            v = r.get(key)
            for p in path:
                v = v.get(p) if isinstance(v, dict) else None
            out.append(v)
        return [x for x in out if x is not None]

    def med(key, *path):
        return q(col(key, *path), "median")

    def ratio(x, y):
        return x / y if x is not None and y else None

    hw = getattr(b, "h2_weft", {}) or {}
    L = ["## HTTP/2 and gRPC (issue 14)\n"]
    L.append("nghttpd (%s, one worker, h2c) serves the %d-byte file on 127.0.0.1; gRPC calls go to the e2e "
             "tests' server (tests/e2e/grpc_peer.py, python3-grpcio, method /weft.Echo/Who). Each is reached "
             "directly, through a weftd whose services are `protocol = \"http2\"` (%s, %s; the client runs in "
             "its enrolled cgroup and dials a VIP: one client connection, streams proxied one by one over a "
             "pooled upstream connection) and through HAProxy (nbthread %d, mode http, `bind ... proto h2`, "
             "`server ... proto h2`, `http-reuse always`). %s\n"
             % (b.machine.get("nghttpd", "nghttpd"), b.k["BENCH_BODY_BYTES"],
                ("agent.workers = %d" % hw["workers"]) if hw.get("workers") else "one event loop",
                "agent.redirect_loopback and agent.splice on" if hw.get("fast") else "weftd's default fast paths",
                b.k["BENCH_THREADS"],
                ("Clients pinned to CPU %s; servers and proxies to CPU %s." % (b.client_cpu, b.server_cpus))
                if b.pin == "split" else "No CPU pinning."))
    L.append("### Throughput\n")
    L.append("h2load -t1 -c%d -m%d -D %d (after a 0.5 s warm-up), GET of the file. CPU: the process's (all "
             "threads, schedstat) share of the run divided by the rate, per 100k requests.\n"
             % (H["conns"], H["streams"], H["seconds"]))
    L.append("| target | req/s | min-max | vs direct | vs HAProxy | proxy CPU s/100k req | proxy CPU % | "
             "nghttpd CPU s/100k req |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    d_rps, h_rps = med("direct", "h2load", "rps"), med("haproxy", "h2load", "rps")
    for t in T:
        k_ = t["key"]
        rps = med(k_, "h2load", "rps")
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            t["label"], fmt_int(rps), spread(col(k_, "h2load", "rps")), fmt_x(ratio(rps, d_rps)),
            fmt_x(ratio(rps, h_rps)) if k_ == "weft" else "-",
            fmt_f(med(k_, "h2load", "proxy_cpu_s_per_100k"), 3) if t["proxy"] else "-",
            fmt_f(med(k_, "h2load", "proxy_cpu_pct"), 0) if t["proxy"] else "-",
            fmt_f(med(k_, "h2load", "backend_cpu_s_per_100k"), 3)))
    L.append("")
    L.append("### Latency at a fixed rate\n")
    L.append("h2load -t1 -c%d -m%d --rps %d (%d req/s in all) -D %d after a 0.5 s warm-up; per-request times "
             "from `--log-file` (a request's start to the end of its response, microseconds; the rows of "
             "the main duration). h2load's rate timer sends each connection's requests in bursts (about "
             "%d every 10 ms), not evenly: a request waits for the ones before it in its burst, and that "
             "wait is in the figures. *added* = minus direct's (medians over the rounds).\n"
             % (H["conns"], H["streams"], H["rps_per_conn"], H["rps_per_conn"] * H["conns"], H["lat_seconds"],
                max(1, H["rps_per_conn"] // 100)))
    L.append("| target | p50 us | p50 min-max | p90 us | p99 us | p99 min-max | added p50 us | added p99 us | "
             "added p50 vs HAProxy's |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    d50, d99 = med("direct", "h2rate", "latency_us", "p50"), med("direct", "h2rate", "latency_us", "p99")
    add = {t["key"]: (med(t["key"], "h2rate", "latency_us", "p50") - d50) if d50 is not None else None
           for t in T}
    for t in T:
        k_ = t["key"]
        p99 = med(k_, "h2rate", "latency_us", "p99")
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            t["label"], fmt_f(med(k_, "h2rate", "latency_us", "p50")),
            spread(col(k_, "h2rate", "latency_us", "p50"), fmt_f), fmt_f(med(k_, "h2rate", "latency_us", "p90")),
            fmt_f(p99), spread(col(k_, "h2rate", "latency_us", "p99"), fmt_f),
            fmt_f(add[k_]) if t["proxy"] else "-", fmt_f(p99 - d99) if t["proxy"] and d99 is not None else "-",
            fmt_x(ratio(add[k_], add["haproxy"])) if k_ == "weft" and (add["haproxy"] or 0) > 0 else "-"))
    L.append("")
    L.append("### gRPC unary latency\n")
    L.append("%d calls/s of /weft.Echo/Who (empty message) on one channel for %d s after a 0.5 s warm-up "
             "(scripts/bench/grpc_rate.py: python3-grpcio, one blocking call at a time, each due at t0 + k/rate; "
             "latency from when it was due to its answer, so an overrun delays the next calls and counts). "
             "Microseconds; the Python client and server are most of the time.\n"
             % (H["grpc_rate"], H["grpc_seconds"]))
    L.append("| target | p50 us | p50 min-max | p99 us | p99 min-max | p99.9 us | added p50 us | added p99 us | "
             "added p50 vs HAProxy's |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    g50, g99 = med("direct", "grpc", "latency_us", "p50"), med("direct", "grpc", "latency_us", "p99")
    gadd = {t["key"]: (med(t["key"], "grpc", "latency_us", "p50") - g50) if g50 is not None else None for t in T}
    for t in T:
        k_ = t["key"]
        p99 = med(k_, "grpc", "latency_us", "p99")
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            t["label"], fmt_f(med(k_, "grpc", "latency_us", "p50")), spread(col(k_, "grpc", "latency_us", "p50"), fmt_f),
            fmt_f(p99), spread(col(k_, "grpc", "latency_us", "p99"), fmt_f),
            fmt_f(med(k_, "grpc", "latency_us", "p99.9")),
            fmt_f(gadd[k_]) if t["proxy"] else "-", fmt_f(p99 - g99) if t["proxy"] and g99 is not None else "-",
            fmt_x(ratio(gadd[k_], gadd["haproxy"])) if k_ == "weft" and (gadd["haproxy"] or 0) > 0 else "-"))
    L.append("")
    L.append("### Memory per HTTP/2 connection and per stream\n")
    M = H["memory"]
    any_m = next(iter(M.values()), None)
    if any_m:
        L.append("VmRSS of the proxy, each measurement on a freshly started one that has made one request "
                 "first (so one-time allocations and the first upstream connection are in its baseline). "
                 "*idle*: %s connections (scripts/bench/h2hold.py: the preface and SETTINGS, both acknowledged, "
                 "then nothing); *after a request*: the same, each after one GET of the file; *open streams*: "
                 "%s streams, %d per connection, to an h2c server that never answers (a gRPC-shaped request "
                 "head each), against the same %d connections idle. Kernel socket memory is not in RSS.\n"
                 % (fmt_int(any_m["idle"]["conns"]), fmt_int(any_m["streams"]["streams"]),
                    any_m["streams"]["per_conn"], any_m["streams"]["conns"]))
        L.append("| proxy | RSS before KiB | idle: KiB per connection | after a request: KiB per connection | "
                 "open streams: KiB per stream |")
        L.append("|---|---:|---:|---:|---:|")
        for t in T:
            mm = M.get(t["key"])
            if not mm:
                continue
            L.append("| %s | %s | %s | %s | %s |" % (
                t["label"], fmt_int(mm["idle"]["rss_before_kb"]), fmt_f(mm["idle"]["kib_per_conn"], 2),
                fmt_f(mm["idle_after_request"]["kib_per_conn"], 2), fmt_f(mm["streams"]["kib_per_stream"], 2)))
        L.append("")
    L.append("### Goals (issue 14)\n")
    L.append("| goal | measured | met |")
    L.append("|---|---|---|")
    r1 = ratio(med("weft", "h2load", "rps"), h_rps)
    L.append("| weft HTTP/2 req/s >= 1.2x HAProxy's (h2load -c%d -m%d) | %s (%s vs %s req/s) | %s |"
             % (H["conns"], H["streams"], fmt_x(r1), fmt_int(med("weft", "h2load", "rps")), fmt_int(h_rps),
                "n/a" if r1 is None else ("yes" if r1 >= 1.2 else "**no**")))
    r2 = ratio(add["weft"], add["haproxy"]) if (add["haproxy"] or 0) > 0 else None
    L.append("| weft's added p50 <= 0.7x HAProxy's (h2load at %d req/s) | %s us vs %s us: %s | %s |"
             % (H["rps_per_conn"] * H["conns"], fmt_f(add["weft"]), fmt_f(add["haproxy"]), fmt_x(r2),
                "n/a" if r2 is None else ("yes" if r2 <= 0.7 else "**no**")))
    L.append("")
    L.append("Raw numbers per round:\n")
    L.append("| round | target | h2load req/s | proxy CPU s/100k | proxy / nghttpd / h2load CPU % | h2load p50/p99 us "
             "(fixed rate) | gRPC p50/p99 us | busy elsewhere % |")
    L.append("|---|---|---:|---:|---|---|---|---:|")
    for i, rr in enumerate(rounds):
        for t in T:
            m_ = rr.get(t["key"])
            if not m_:
                continue
            h, r_, g = m_["h2load"], m_["h2rate"], m_["grpc"]
            fg = [x for x in (h.get("foreign_cpu_pct"), r_.get("foreign_cpu_pct"), g.get("foreign_cpu_pct"))
                  if x is not None]
            L.append("| %d | %s | %s | %s | %s / %s / %s | %s / %s | %s / %s | %s |" % (
                i + 1, t["key"], fmt_int(h["rps"]), fmt_f(h.get("proxy_cpu_s_per_100k"), 3),
                fmt_f(h.get("proxy_cpu_pct"), 0) if t["proxy"] else "-", fmt_f(h["backend_cpu_pct"], 0),
                fmt_f(h["client_cpu_pct"], 0), fmt_f(r_["latency_us"]["p50"]), fmt_f(r_["latency_us"]["p99"]),
                fmt_f(g["latency_us"]["p50"]), fmt_f(g["latency_us"]["p99"]), fmt_f(max(fg)) if fg else "n/a"))
    L.append("")
    if M:
        L.append("Memory runs: " + "; ".join(
            "%s: idle %s -> %s KiB (%d conns in %.2f s), after a request %s -> %s KiB, streams %s -> %s KiB "
            "(%s streams%s)" % (
                kk, fmt_int(v["idle"]["rss_before_kb"]), fmt_int(v["idle"]["rss_held_kb"]), v["idle"]["conns"],
                v["idle"]["open_s"], fmt_int(v["idle_after_request"]["rss_before_kb"]),
                fmt_int(v["idle_after_request"]["rss_held_kb"]), fmt_int(v["streams"]["rss_conns_kb"]),
                fmt_int(v["streams"]["rss_streams_kb"]), fmt_int(v["streams"]["streams"]),
                (", %s seen open in /conns" % fmt_int(v["streams"]["weft_streams_seen"]))
                if v["streams"].get("weft_streams_seen") is not None else "")
            for kk, v in M.items()) + ".")
        L.append("")
    return L


def render(b, cleanup_errs):
    R, S, k = b.results, summarize(b), b.k
    med = lambda k_, f: q(S[k_][f], "median") if k_ in S else None
    base_of = {t["key"]: t["base"] for t in b.targets}
    pod_rows = any(t["pod"] for t in b.targets)
    peer = {"weft-tcp": "haproxy-tcp", "weft-tcp-nofast": "haproxy-tcp", "weft-http": "haproxy-http",
            "haproxy-tcp": "haproxy-tcp", "haproxy-http": "haproxy-http"}
    L = []
    m = b.machine
    L.append("# weft benchmark results\n")
    if b.only == "kube":
        L.append("%s. BENCH_ONLY=kube: the Kubernetes discovery phase alone. Generated by `make bench` "
                 "(scripts/bench/run.sh).\n" % m["date"])
    elif b.only == "h2":
        L.append("%s. BENCH_ONLY=h2: the HTTP/2 and gRPC phase alone, %d round(s); every figure is the median "
                 "over the rounds, with the min-max spread where shown. Generated by `make bench` "
                 "(scripts/bench/run.sh).\n" % (m["date"], k["BENCH_ROUNDS"]))
    else:
        L.append("%s. %d round(s); every figure is the median over the rounds, with the min-max "
                 "spread where shown. Generated by `make bench` (scripts/bench/run.sh).\n"
                 % (m["date"], k["BENCH_ROUNDS"]))
    fg = [v for s in S.values() for v in s["foreign"]]
    for rr in (R.get("h2") or {}).get("rounds", []):
        fg += [m_[x]["foreign_cpu_pct"] for m_ in rr.values() for x in ("h2load", "h2rate", "grpc")
               if m_[x].get("foreign_cpu_pct") is not None]
    if ((q(fg, "median") or 0) >= 10 or (q(fg, "max") or 0) >= 25
            or (m.get("background_cpu_pct_before") or 0) >= 15):
        L.append("**Warning: other work was running on this %d-CPU machine (it used about %s%% of a "
                 "CPU during the median measurement, %s%% at the worst, %s%% before the start)%s. "
                 "Expect noise; compare the spreads, and rerun on a quiet machine to be sure.**\n"
                 % (NCPU, fmt_f(q(fg, "median")), fmt_f(q(fg, "max")),
                    fmt_f(m.get("background_cpu_pct_before")),
                    ("; the benchmark ran with %s, which gave it precedence but still shares caches, "
                     "wake-ups and memory bandwidth" % b.nice_how) if b.nice_how else ""))
    L.append("## Machine\n")
    L.append("| | |\n|---|---|")
    for key, label in (("cpu", "CPU"), ("cpus", "CPUs"), ("mem_gib", "memory (GiB)"), ("kernel", "kernel"),
                       ("os", "OS"), ("hypervisor", "hypervisor"), ("cpuidle_governor", "cpuidle governor"),
                       ("weftd", "weftd"), ("haproxy", "HAProxy"), ("nginx", "nginx"),
                       ("wrk", "wrk"), ("sockperf", "sockperf"), ("nghttpd", "nghttpd"), ("h2load", "h2load"),
                       ("grpcio", "python3-grpcio")):
        if key in ("nginx", "wrk", "sockperf") and b.only == "h2":
            continue
        if key in ("nghttpd", "h2load", "grpcio") and (b.only == "kube" or not b.k["BENCH_H2"]):
            continue
        L.append("| %s | %s |" % (label, m.get(key)))
    L.append("| CPU busy outside the benchmark (approx.) | %s%% of one CPU before the run; during "
             "measurements median %s%%, max %s%% |"
             % (fmt_f(m.get("background_cpu_pct_before")), fmt_f(q(fg, "median")), fmt_f(q(fg, "max"))))
    L.append("| CPU time stolen by the hypervisor | %s%% of one CPU on average during the run |"
             % fmt_f(100.0 * b.steal_s / b.steal_wall if b.steal_wall else None))
    L.append("")
    if b.only in ("kube", "h2"):
        L += render_kube(b, R["kube"]) if b.only == "kube" else render_h2(b, R["h2"])
        L.append("## Notes\n")
        for n_ in ["BENCH_ONLY=%s: only the %s phase ran." % (
                b.only, "Kubernetes discovery" if b.only == "kube" else "HTTP/2 and gRPC")] + b.notes + (
                ["Cleanup problems: " + "; ".join(cleanup_errs)] if cleanup_errs else []):
            L.append("- " + n_)
        L.append("")
        L.append("Full data: build/bench/results.json; configs and logs: build/bench/logs/. "
                 "Run took %.0f s." % b.elapsed)
        return "\n".join(L) + "\n"
    pin = ("clients (wrk, weft-loadgen, sockperf) pinned to CPU %s; nginx, sockperf server and "
           "the proxies pinned to CPU %s (they share it)" % (b.client_cpu, b.server_cpus)
           if b.pin == "split" else "no CPU pinning")
    fast = ("with its defaults for the kernel fast paths (agent.redirect_loopback and agent.splice "
            "on), and a second weftd with both off" if b.weft_fast_switches else "(no kernel fast paths)")
    L.append("Setup: nginx (1 process, keep-alive, access_log off) serving a %d-byte file on "
             "127.0.0.1%s; HAProxy nbthread %d; weftd with %s, %s; %s%s. All traffic on 127.0.0.0/8%s.\n"
             % (k["BENCH_BODY_BYTES"], (" and on %s (the host side of the pod's veth)" % b.pod.host_ip)
                if b.pod else "", k["BENCH_THREADS"],
                ("agent.workers = %d" % b.weft_workers) if b.weft_workers else "one event loop (no agent.workers)",
                fast, pin, "; %s for the benchmark's processes" % b.nice_how if b.nice_how else "",
                (" and on the pod's veth (%s)" % b.pod.subnet) if b.pod else ""))
    if b.pod:
        L.append("Pod rows: the client (wrk, weft-loadgen) runs inside a pod: network namespace %s "
                 "(lo, and a veth %s <-> %s to the host, no other route), kubelet-shaped cgroups "
                 "(`kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice/"
                 "cri-containerd-<id>.scope`, one container for a `sleep` pause process, one for the "
                 "clients), enrolled in the fast weftd by the glob `kubepods.slice/*/*pod*.slice`. "
                 "*direct (pod)* goes over the veth to nginx on %s; *weft HTTP (pod)* dials the same "
                 "HTTP VIP as *weft HTTP*, which weftd's listener inside the pod takes. Pod rows are "
                 "compared with *direct (pod)*, host rows with *direct*.\n"
                 % (b.pod.name, b.pod.ip, b.pod.host_ip, b.nginx_pod_addr))

    # throughput
    L.append("## Throughput and proxy CPU\n")
    L.append("wrk -t%d -c%d -d%ds, keep-alive, GET of the %d-byte file.%s *vs HAProxy* compares "
             "with HAProxy in the same mode (tcp for weft TCP, http for weft HTTP). CPU: "
             "utime+stime of the proxy (and of nginx) from /proc/PID/stat over the wrk run, "
             "per 100k requests.\n"
             % (k["BENCH_WRK_THREADS"], k["BENCH_WRK_CONNS"], k["BENCH_WRK_SECONDS"], k["BENCH_BODY_BYTES"],
                " *vs direct* is against direct (pod) for the pod rows." if pod_rows else ""))
    L.append("| target | req/s | min-max | vs direct | vs HAProxy | proxy CPU s/100k req | nginx CPU s/100k req |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for t in b.targets:
        key = t["key"]
        rps = med(key, "rps")
        d_rps = med(t["base"], "rps")
        vs_h = None
        if key in peer:
            h = med(peer[key], "rps")
            vs_h = rps / h if h else None
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            t["label"], fmt_int(rps), spread(S[key]["rps"]), fmt_x(rps / d_rps if d_rps else None),
            fmt_x(vs_h) if key in peer else "-",
            fmt_f(med(key, "proxy_cpu"), 3) if t["proxy"] else "-", fmt_f(med(key, "nginx_cpu"), 3)))
    L.append("")

    # latency
    L.append("## Latency\n")
    L.append("HTTP: weft-loadgen, open loop at %d req/s over %d keep-alive connections for %.0f s "
             "(after 0.5 s warm-up); each request's latency runs from when it was due to its last "
             "byte, so a stall is charged to every request it delays (no coordinated omission). "
             "Round trip, microseconds. *added* = p50 minus direct's p50%s.\n"
             % (k["BENCH_HTTP_RATE"], k["BENCH_HTTP_CONNS"], k["BENCH_LAT_SECONDS"],
                " (for pod rows: minus direct (pod)'s)" if pod_rows else ""))
    L.append("| target | p50 us | p50 min-max | p99 us | p99.9 us | added p50 us | added p50 vs HAProxy's |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    added = {}
    for key in S:
        d50 = med(base_of[key], "http_p50")
        added[key] = (med(key, "http_p50") - d50) if d50 is not None and med(key, "http_p50") is not None else None
    for t in b.targets:
        key = t["key"]
        ratio = "-"
        if key in peer and key != peer[key]:
            h = added.get(peer[key])
            ratio = fmt_x(added[key] / h) if h and h > 0 and added[key] is not None else "n/a"
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            t["label"], fmt_f(med(key, "http_p50")), spread(S[key]["http_p50"], fmt_f),
            fmt_f(med(key, "http_p99")), fmt_f(med(key, "http_p99.9")),
            fmt_f(added[key]) if key != t["base"] else "-", ratio))
    L.append("")
    if b.have_sockperf:
        L.append("TCP: sockperf ping-pong, %d-byte messages at %d msg/s for %d s (its first 400 ms are "
                 "warm-up), one connection; sockperf reports one-way latency (round trip / 2), "
                 "microseconds.\n" % (k["BENCH_SOCKPERF_MSG"], k["BENCH_SOCKPERF_MPS"], k["BENCH_SOCKPERF_SECONDS"]))
        L.append("| target | p50 us | p50 min-max | p99 us | p99.9 us | added p50 us | added p99 us | added p50 vs HAProxy's |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        t50, t99 = med("direct", "tcp_p50"), med("direct", "tcp_p99")
        tadd = {}
        for t in b.targets:
            if not t["tcp"]:
                continue
            key = t["key"]
            a50 = med(key, "tcp_p50") - t50 if key != "direct" else None
            a99 = med(key, "tcp_p99") - t99 if key != "direct" else None
            tadd[key] = a50
            ratio = "-"
            if key.startswith("weft-tcp"):
                h = tadd.get("haproxy-tcp")
                if h is None and med("haproxy-tcp", "tcp_p50") is not None:
                    h = med("haproxy-tcp", "tcp_p50") - t50
                ratio = fmt_x(a50 / h) if h and h > 0 else "n/a"
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                t["label"], fmt_f(med(key, "tcp_p50")), spread(S[key]["tcp_p50"], fmt_f),
                fmt_f(med(key, "tcp_p99")), fmt_f(med(key, "tcp_p99.9")),
                fmt_f(a50) if a50 is not None else "-", fmt_f(a99) if a99 is not None else "-", ratio))
        L.append("")

    # memory
    L.append("## Memory\n")
    L.append("Resident set (VmRSS) of the proxy process. *idle* = just after the first start, "
             "before any traffic. Each hold runs on a freshly started proxy: *before hold* is its "
             "RSS then, *held* with %s idle keep-alive connections open through it (each made one "
             "request first); per connection = (held - before hold) / N. *after runs* = idle "
             "again at the end of the benchmark. Kernel socket memory is not in RSS.\n" % fmt_int(b.hold_n))
    L.append("| target | idle MiB | before hold MiB | held MiB | per connection | after runs MiB |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for t in b.targets:
        if not t["proxy"] or t["pod"]:
            continue
        h = R["hold"][t["key"]]
        L.append("| %s | %.2f | %.2f | %.2f | %s B | %.2f |" % (
            t["label"], R["idle_fresh"][t["proxy"]]["rss_kb"] / 1024.0, h["rss_before_kb"] / 1024.0,
            h["rss_held_kb"] / 1024.0, fmt_int(h["bytes_per_conn"]),
            R["idle_after"][t["proxy"]]["rss_kb"] / 1024.0))
    L.append("")

    # goals from issue 7
    L.append("## Goals (issue 7) and where weft stands\n")
    L.append("| goal | measured | met |")
    L.append("|---|---|---|")

    def goal(text, val, ok, shown):
        L.append("| %s | %s | %s |" % (text, shown, "n/a" if val is None else ("yes" if ok else "**no**")))
    r1 = (med("weft-tcp", "rps") / med("haproxy-tcp", "rps")) if med("haproxy-tcp", "rps") else None
    goal("weft TCP req/s >= 1.5x HAProxy mode tcp", r1, r1 is not None and r1 >= 1.5, fmt_x(r1))
    r2 = (med("weft-http", "rps") / med("haproxy-http", "rps")) if med("haproxy-http", "rps") else None
    goal("weft HTTP req/s >= 1.2x HAProxy mode http%s" % ("" if b.weft_l7 else " (weft HTTP is opaque TCP today)"), r2,
         r2 is not None and r2 >= 1.2, fmt_x(r2))
    if b.have_sockperf and med("haproxy-tcp", "tcp_p50") is not None:
        a_w = med("weft-tcp", "tcp_p50") - med("direct", "tcp_p50")
        a_h = med("haproxy-tcp", "tcp_p50") - med("direct", "tcp_p50")
        r3 = a_w / a_h if a_h > 0 else None
        goal("added p50 one-way TCP latency (sockperf) <= 0.7x HAProxy's", r3, r3 is not None and r3 <= 0.7,
             "%s us vs %s us: %s" % (fmt_f(a_w), fmt_f(a_h), fmt_x(r3)))
    a_w, a_h = added.get("weft-http"), added.get("haproxy-http")
    r4 = a_w / a_h if a_w is not None and a_h and a_h > 0 else None
    goal("added p50 HTTP latency <= 0.7x HAProxy mode http's", r4, r4 is not None and r4 <= 0.7,
         "%s us vs %s us: %s" % (fmt_f(a_w), fmt_f(a_h), fmt_x(r4)))
    idle = R["idle_fresh"]["weftd"]["rss_kb"] / 1024.0
    goal("weftd idle RSS <= 4 MB", idle, idle <= 4.0, "%.2f MiB" % idle)
    pc = R["hold"]["weft-tcp"]["bytes_per_conn"]
    goal("<= 4 KB per idle proxied connection", pc, pc is not None and pc <= 4096, "%s B" % fmt_int(pc))
    C = R.get("pod_cost")
    if C:
        v = C["fds_per_pod_per_worker"]
        bk = C.get("fds_per_pod_by_kind", {})
        goal("pods (issue 12): <= 2 fds per worker per pod", v, v <= 2.0,
             "%s per pod, %d worker(s): %s (listener sockets %s, bpf_link %s, other %s per pod)"
             % (fmt_f(C["fds_per_pod"], 2), C["workers"], fmt_f(v, 2), fmt_f(bk.get("socket"), 2),
                fmt_f(bk.get("bpf_link"), 2), fmt_f(bk.get("other"), 2)))
        v = C["kib_per_pod"]
        goal("pods (issue 12): <= 4 KiB of weftd RSS per pod", v, v <= 4.0, "%s KiB" % fmt_f(v, 2))
    L.append("")

    if b.pod or C:
        L.append("## Pods\n")
    if b.pod:
        pe = b.pod_entry or {}
        L.append("The pod case (rows marked *(pod)* above): pod %s, uid %s, served by weftd with %s "
                 "listeners in its namespace (/pods: state %s, ips %s). Throughput and latency against "
                 "*direct (pod)*: weft HTTP (pod) does %s of its req/s (weft HTTP from the host: %s of "
                 "direct) and adds %s us at p50 (from the host: %s us).\n"
                 % (b.pod.name, b.pod.uid, pe.get("listeners"), pe.get("state"), pe.get("ips"),
                    fmt_x(med("weft-http-pod", "rps") / med("direct-pod", "rps"))
                    if med("direct-pod", "rps") else "n/a",
                    fmt_x(med("weft-http", "rps") / med("direct", "rps")) if med("direct", "rps") else "n/a",
                    fmt_f(added.get("weft-http-pod")), fmt_f(added.get("weft-http"))))
    if C:
        L.append("Per-pod cost: on a freshly restarted weftd (agent.workers = %d) serving %d pod(s), "
                 "%d more pods were made (`ip -batch` netns add, lo up, kubelet-shaped cgroups, then a "
                 "`sleep` pause process in each, entering the netns before its cgroup), and weftd's "
                 "open descriptors (/proc/PID/fd) and VmRSS were read before, once `weft_pods{state="
                 "\"serving\"}` counted them all and the descriptor count had stayed put for 1 s, "
                 "and again after the pods were deleted (cgroup.kill, rmdir, netns delete). The pods "
                 "have no veth and so no address (weftd rereads their addresses every 250 ms, as for a "
                 "pod the CNI has not finished).\n" % (C["workers"], C["base_pods"], C["pods"]))
        L.append("| weftd | before | with %d pods | after deleting them | per pod |" % C["pods"])
        L.append("|---|---:|---:|---:|---:|")
        L.append("| open fds | %d | %d | %d | %s (%s per worker) |" % (
            C["fds_before"], C["fds_with_pods"], C["fds_after"], fmt_f(C["fds_per_pod"], 2),
            fmt_f(C["fds_per_pod_per_worker"], 2)))
        L.append("| VmRSS KiB | %s | %s | %s | %s KiB |" % (
            fmt_int(C["rss_before_kb"]), fmt_int(C["rss_with_pods_kb"]), fmt_int(C["rss_after_kb"]),
            fmt_f(C["kib_per_pod"], 2)))
        bk = C.get("fds_per_pod_by_kind")
        if bk:
            kb, kp = C["fd_kinds_before"], C["fd_kinds_with_pods"]
            for kind, what in (("socket", "of which sockets"), ("bpf_link", "of which bpf_link"),
                               ("other", "of which other")):
                L.append("| %s | %d | %d | - | %s |" % (what, kb[kind], kp[kind], fmt_f(bk[kind], 2)))
        if C.get("anon_kib_per_pod") is not None:
            L.append("| RssAnon KiB | %s | %s | %s | %s KiB |" % (
                fmt_int(C["anon_before_kb"]), fmt_int(C["anon_with_pods_kb"]), fmt_int(C["anon_after_kb"]),
                fmt_f(C["anon_kib_per_pod"], 2)))
        L.append("")
        L.append("*after deleting them* includes what weftd's heap kept from answering /pods for all "
                 "of them once, just after the measurement (VmRSS %s KiB right after that answer): "
                 "freed memory stays in the process.\n" % fmt_int(C.get("rss_listed_kb")))
        L.append("/pods listed %d of them, %d serving, with %s listeners each. Making the namespaces and "
                 "cgroups took %.2f s, starting the pause processes %.2f s; weftd served the last one "
                 "%.2f s after the last pause process was in its namespace (%.2f s of weftd CPU from "
                 "the first netns to the last pod served). Deleting them took %.2f s; weftd had let "
                 "the last one go %.2f s later (polled every 50 ms). Descriptors back to where they "
                 "started: %s.\n"
                 % (C["listed"], C["listed_serving"], "/".join(str(x) for x in C["listeners_per_pod"]),
                    C["make_s"], C["start_pause_s"], C["serve_s"], C["weftd_cpu_s_setup"], C["delete_s"],
                    C["let_go_s"], "yes" if C["fds_back"] else "**no** (%d, started at %d)"
                    % (C["fds_after"], C["fds_before"])))
        if bk and bk.get("bpf_link"):
            L.append("The bpf_link descriptors are not the pod listeners: weftd attaches its cgroup "
                     "programs to every cgroup it enrols, and the kubelet glob enrols each pod's cgroup "
                     "on its own (%s links per pod). Enrolling the parent (`kubepods.slice`) instead "
                     "attaches once for all pods (docs/config.md).\n" % fmt_f(bk["bpf_link"], 0))

    if R.get("h2"):
        L += render_h2(b, R["h2"])
    if R.get("kube"):
        L += render_kube(b, R["kube"])

    L.append("## Notes\n")
    notes = [] if b.weft_l7 else [L7_NOTE]
    if b.weft_fast_switches:
        vd = R.get("weftd_verdicts", {})
        notes.append("Kernel fast paths: *weft TCP* and *weft HTTP* run weftd with its defaults "
                     "(agent.redirect_loopback = true: sk_msg moves weftd's sends straight into the app's socket; the app's own sends stay on TCP "
                     "weftd's socket and back; agent.splice = true: opaque bytes move with splice(2) "
                     "through a pipe); *fast paths off* is a second weftd with both false. Since their "
                     "last start (after the memory holds), sk_msg redirected %s sends in the first "
                     "and %s in the second (weft_bpf_verdicts_total{verdict=\"msg_redirected\"})."
                     % (fmt_int(vd.get("weftd", {}).get("msg_redirected")),
                        fmt_int(vd.get("weftd-nofast", {}).get("msg_redirected"))))
    else:
        notes.append("This weftd has no kernel fast paths (sk_msg, splice): every byte goes "
                     "through userspace buffers.")
    notes += b.notes
    if cleanup_errs:
        notes.append("Cleanup problems: " + "; ".join(cleanup_errs))
    for n in notes:
        L.append("- " + n)
    L.append("")

    # raw numbers
    L.append("## Raw numbers (per round)\n")
    L.append("| round | target | req/s | proxy CPU s/100k | proxy / nginx / wrk CPU % | HTTP p50/p99/p99.9 us | "
             "HTTP service p50 us | gen. lag p99 us | TCP p50/p99/p99.9 us | busy elsewhere % |")
    L.append("|---|---|---:|---:|---|---|---:|---:|---|---:|")
    for i, rr in enumerate(R["rounds"]):
        for t in b.targets:
            m_ = rr.get(t["key"])
            if not m_:
                continue
            w, h = m_["wrk"], m_["http_rate"]
            sp = m_.get("sockperf")
            fg = [x for x in (w.get("foreign_cpu_pct"), h.get("foreign_cpu_pct"),
                              sp.get("foreign_cpu_pct") if sp else None) if x is not None]
            dur = w["wall_s"]
            L.append("| %d | %s | %s | %s | %s / %s / %s | %s / %s / %s | %s | %s | %s | %s |" % (
                i + 1, t["key"], fmt_int(w["rps"]), fmt_f(w["proxy_cpu_s_per_100k"], 3),
                fmt_f(100 * w["proxy_cpu_s"] / dur, 0) if w["proxy_cpu_s"] is not None else "-",
                fmt_f(100 * w["nginx_cpu_s"] / dur, 0), fmt_f(w["wrk_cpu_pct"], 0),
                fmt_f(h["latency_us"]["p50"]), fmt_f(h["latency_us"]["p99"]), fmt_f(h["latency_us"]["p99.9"]),
                fmt_f(h["service_us"]["p50"]), fmt_f(h["send_lag_us"]["p99"]),
                ("%s / %s / %s" % (fmt_f(sp["p50"]), fmt_f(sp.get("p99")), fmt_f(sp.get("p99.9")))) if sp else "-",
                fmt_f(max(fg)) if fg else "n/a"))
    L.append("")
    L.append("Hold runs: " + "; ".join(
        "%s: %d held in %.2f s, %s closed by the far side, proxy fds %d -> %d"
        % (kk, v["held"], v["open_s"], v["closed_by_peer"], v["fds_before"], v["fds_held"])
        for kk, v in R["hold"].items()) + ".")
    L.append("")
    L.append("Full data: build/bench/results.json; configs and logs: build/bench/logs/. "
             "Run took %.0f s." % b.elapsed)
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--tmp", required=True)
    args = ap.parse_args()

    def on_sig(sig, _frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_sig)
    signal.signal(signal.SIGHUP, on_sig)
    signal.signal(signal.SIGINT, on_sig)

    try:
        b = Bench(args.run_id, args.tmp)
    except Failure as e:
        log("FAILED: %s" % e)
        return 1
    os.makedirs(b.outdir, exist_ok=True)
    ok = False
    try:
        b.run()
        ok = True
    except Failure as e:
        log("FAILED: %s" % e)
    except SystemExit as e:
        log("interrupted (exit %s): cleaning up" % e.code)
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        errs = b.cleanup()
        for e in errs:
            log("cleanup: %s" % e)
    if not ok:
        return 1
    md = render(b, errs)
    data = {"machine": b.machine, "knobs": b.k, "pinning": b.pin, "client_cpu": b.client_cpu,
            "server_cpus": b.server_cpus, "hold_conns": b.hold_n, "fd_limit": b.fd_limit,
            "weft_workers": b.weft_workers, "weft_fast_switches": b.weft_fast_switches,
            "weft_l7": b.weft_l7, "notes": ([] if b.weft_l7 else [L7_NOTE]) + b.notes,
            "targets": [{k_: v for k_, v in t.items()} for t in b.targets],
            "results": b.results, "summary": summarize(b), "elapsed_s": round(b.elapsed, 1),
            "cleanup_errors": errs,
            "steal_pct": round(100.0 * b.steal_s / b.steal_wall, 1) if b.steal_wall else None}
    with open(os.path.join(b.outdir, "results.json"), "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    with open(os.path.join(b.outdir, "results.md"), "w") as f:
        f.write(md)
    sys.stdout.write(md)
    log("wrote build/bench/results.md and build/bench/results.json")
    return 0 if not errs else 1


if __name__ == "__main__":
    sys.exit(main())
