# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""End-to-end harness for weft: cgroups, pins, ports, weftd, backends, clients.

Two faces in one file (stdlib only, no pytest import):

* imported by conftest.py / the tests: the Harness class (one per test, every
  object it makes is torn down by Harness.close(), in reverse order, on every
  exit path), Weftd (one agent process), Server (one backend process),
  Cgroup, and module helpers (cgroup2_mount, free_port, leftovers, ...).

* run as a script with /usr/bin/python3: the backends and the client that the
  tests spawn as separate processes, so that each one can sit in its own
  cgroup (the BPF hooks look at the cgroup of the task calling connect()).

    weft_harness.py serve  --mode MODE --name NAME --listen IP:PORT [--bytes N]
        MODE: http      read a request head, answer 200 with a JSON body
                        {"server": NAME, "peer": "ip:port"}, close
              echo      echo until EOF, then close
              eofreply  read until EOF, then answer "<n> <sha256>\n", close
              reset     read one chunk, then close with SO_LINGER 0 (RST)
              banner    server-first: send "NAME\n" at once, close
              bulk      send N random bytes while reading until EOF,
                        hashing both directions
        stdout: one JSON object per line: {"event": "listening", "addr": ..}
        first, then one {"event": "conn", ..} per accepted connection and one
        {"event": "done", ..} when a connection is finished.

    weft_harness.py client --mode MODE --connect IP:PORT [--bytes N] [--timeout S]
                           [--mark M (SO_MARK)] [--delay S (idle after connect)]
        MODE: http | echo | halfclose | reset | banner | bulk | connect
        stdout: one JSON object: {"ok", "error" (errno name or null),
        "stage" (where it failed), "peername", "sockname", "elapsed", ..}.

Every address is "ip:port" or "[ip6]:port", as in weftd's config.
"""

import errno
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.abspath(__file__)
PYTHON = "/usr/bin/python3"
PREFIX = "weft-e2e-"
BPFFS = "/sys/fs/bpf"
NETNS_DIR = "/run/netns"

# weft_stats indices (include/weft/maps.h, enum weft_verdict).
VERDICTS = ["redirected", "not_service", "skipped_own", "skipped_stale",
            "refused_stale", "error", "handoff", "handoff_error", "peername",
            "msg_redirected", "msg_passed", "strict_inbound_dropped",
            "skipped_no_listener", "refused_no_listener"]


# --------------------------------------------------------------------------
# addresses and names

def split_addr(addr):
    """'1.2.3.4:80' or '[::1]:80' -> (family, host, port)."""
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
        return socket.AF_INET6, host, int(port)
    host, _, port = addr.rpartition(":")
    return socket.AF_INET, host, int(port)


def fmt_addr(sa):
    """A socket address tuple -> 'ip:port' / '[ip6]:port'."""
    host, port = sa[0], sa[1]
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


_counter = itertools.count(1)


def run_prefix():
    """Names of everything this pytest process makes start with this."""
    return "%s%d-" % (PREFIX, os.getpid())


def unique_name(tag=""):
    n = "%s%d" % (run_prefix(), next(_counter))
    return n + ("-" + tag if tag else "")


def free_port(host="127.0.0.1"):
    """A TCP port nothing is bound to on host right now (bind :0, close)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def vip_host():
    """A random VIP in 127.10.0.0/16 (loopback: an escaped connect is refused)."""
    return "127.10.%d.%d" % (random.randint(0, 255), random.randint(1, 254))


def vip_addr():
    """'127.10.x.y:port' with no listener on it (nor on the wildcard)."""
    h = vip_host()
    return "%s:%d" % (h, free_port(h))


def vip6_addr():
    return "[::1]:%d" % free_port("::1")


# --------------------------------------------------------------------------
# cgroup v2

def cgroup2_mount():
    """Mount point of cgroup2 from /proc/self/mountinfo, or None."""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, sep, post = line.partition(" - ")
                if sep and post.split()[0] == "cgroup2":
                    return pre.split()[4]
    except OSError:
        pass
    return None


def bpffs_mounted(path=BPFFS):
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, sep, post = line.partition(" - ")
                if sep and post.split()[0] == "bpf" and pre.split()[4] == path:
                    return True
    except OSError:
        pass
    return False


def ensure_bpffs():
    """Mount bpffs on /sys/fs/bpf if it is not (as systemd does at boot).
    Returns None or a reason string."""
    if bpffs_mounted():
        return None
    r = subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS],
                       capture_output=True, text=True)
    if r.returncode != 0 or not bpffs_mounted():
        return "cannot mount bpffs on %s: %s" % (BPFFS, r.stderr.strip())
    return None


class Cgroup:
    """A cgroup v2 directory this suite created (or adopted for removal)."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)

    def __repr__(self):
        return "Cgroup(%s)" % self.path

    @classmethod
    def create(cls, parent_path, name):
        path = os.path.join(parent_path, name)
        os.mkdir(path)
        return cls(path)

    def child(self, name=None):
        return Cgroup.create(self.path, name or unique_name())

    @property
    def procs_file(self):
        return os.path.join(self.path, "cgroup.procs")

    def add_pid(self, pid):
        with open(self.procs_file, "w") as f:
            f.write("%d\n" % pid)

    def pids(self):
        try:
            with open(self.procs_file) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def exists(self):
        return os.path.isdir(self.path)

    def destroy(self, timeout=5.0):
        destroy_cgroup_tree(self.path, timeout)


def destroy_cgroup_tree(path, timeout=5.0):
    """Move every task out (to the root cgroup), then rmdir children first.
    Raises OSError if a directory is still there after timeout."""
    root = cgroup2_mount()
    if not os.path.isdir(path):
        return
    dirs = [d for d, _, _ in os.walk(path)]
    for d in sorted(dirs, key=len, reverse=True):  # deepest first
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    with open(os.path.join(root, "cgroup.procs"), "w") as f:
                        f.write("%d\n" % pid)
                except OSError:
                    pass
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def in_cgroup_argv(cg, argv):
    """argv wrapped so that the process joins cg before exec'ing argv[0]."""
    if cg is None:
        return list(argv)
    path = cg.path if isinstance(cg, Cgroup) else cg
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"',
            os.path.join(path, "cgroup.procs")] + list(argv)


# --------------------------------------------------------------------------
# processes

_started = []          # every Popen this process started (suite-wide check)
_started_lock = threading.Lock()


def spawn(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    with _started_lock:
        _started.append(p)
    return p


def stop_process(p, timeout=5.0, sig=signal.SIGTERM):
    """SIGTERM (or sig), wait up to timeout, then SIGKILL. Returns the exit code."""
    if p.poll() is not None:
        return p.returncode
    try:
        p.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(10)


def started_alive():
    with _started_lock:
        return [p for p in _started if p.poll() is None]


def kill_started():
    for p in started_alive():
        stop_process(p, timeout=2.0)


# --------------------------------------------------------------------------
# leftovers (anything named weft-e2e-*)

def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _owner_pid(name):
    """weft-e2e-<pid>-... -> pid, or None."""
    rest = name[len(PREFIX):] if name.startswith(PREFIX) else ""
    num = rest.split("-", 1)[0]
    return int(num) if num.isdigit() else None


def _ours(name, only_dead_others):
    """Is this weft-e2e-* name this run's (or, with only_dead_others, a dead run's)?"""
    if not name.startswith(PREFIX):
        return False
    pid = _owner_pid(name)
    if pid == os.getpid():
        return True
    return only_dead_others and (pid is None or not _pid_alive(pid))


def leftovers(include_dead_runs=True):
    """Everything named weft-e2e-* that belongs to this run (or to a run whose
    pytest is gone): {'cgroups': [...], 'pins': [...], 'netns': [...],
    'processes': [(pid, cmdline)]}. Other live runs' objects are not listed."""
    out = {"cgroups": [], "pins": [], "netns": [], "processes": []}
    root = cgroup2_mount()
    if root:
        for d, subdirs, _ in os.walk(root):
            for s in list(subdirs):
                if s.startswith(PREFIX):
                    if _ours(s, include_dead_runs):
                        out["cgroups"].append(os.path.join(d, s))
                    subdirs.remove(s)  # a weft-e2e cgroup's children are its own
    if os.path.isdir(BPFFS):
        for e in os.listdir(BPFFS):
            if _ours(e, include_dead_runs):
                out["pins"].append(os.path.join(BPFFS, e))
    if os.path.isdir(NETNS_DIR):
        for e in os.listdir(NETNS_DIR):
            if _ours(e, include_dead_runs):
                out["netns"].append(e)
    me = os.getpid()
    for pid_s in os.listdir("/proc"):
        if not pid_s.isdigit() or int(pid_s) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % pid_s, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if not cmd:
            continue
        for word in cmd.split():
            i = word.find(PREFIX)
            if i >= 0:
                name = word[i:].split("/")[0]
                if _ours(name, include_dead_runs):
                    out["processes"].append((int(pid_s), cmd))
                    break
    return out


def remove_leftovers(found):
    """Best effort removal of what leftovers() listed. Returns error strings."""
    errs = []
    for pid, _ in found["processes"]:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for path in found["cgroups"]:
        try:
            destroy_cgroup_tree(path)
        except OSError as e:
            errs.append("cgroup %s: %s" % (path, e))
    for path in found["pins"]:
        try:
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        except OSError as e:
            errs.append("pin %s: %s" % (path, e))
    for ns in found["netns"]:
        r = subprocess.run(["ip", "netns", "delete", ns], capture_output=True, text=True)
        if r.returncode != 0:
            errs.append("netns %s: %s" % (ns, r.stderr.strip()))
    return errs


# --------------------------------------------------------------------------
# bpftool

def bpftool_json(*args, check=True):
    r = subprocess.run(["bpftool", "-j"] + list(args), capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        if check:
            raise RuntimeError("bpftool %s: rc=%d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
        return None
    return json.loads(r.stdout) if r.stdout.strip() else None


def _le_int(v):
    """A bpftool value: an int, or a list of hex byte strings (little endian)."""
    if isinstance(v, int):
        return v
    if isinstance(v, list):
        return int.from_bytes(bytes(int(b, 16) for b in v), "little")
    if isinstance(v, str):
        return int(v, 0)
    raise ValueError("cannot read counter value %r" % (v,))


def parse_percpu_dump(dump):
    """bpftool -j dump of a PERCPU_ARRAY of u64 -> {index: sum over CPUs}.
    Accepts the BTF form ({"key": 0, "values": [{"cpu": 0, "value": 5}]}),
    the raw form (hex byte lists) and the {"formatted": ...} wrapping."""
    out = {}
    for e in dump or []:
        if "formatted" in e:
            e = e["formatted"]
        key = _le_int(e["key"])
        total = 0
        for cv in e.get("values", []):
            total += _le_int(cv["value"])
        out[key] = total
    return out


def read_stats(pin_path):
    """weft_stats under pin_path -> {'redirected': n, ...}."""
    raw = parse_percpu_dump(bpftool_json("map", "dump", "pinned",
                                         os.path.join(pin_path, "weft_stats")))
    return {name: raw.get(i, 0) for i, name in enumerate(VERDICTS)}


def read_agent_state(pin_path):
    """weft_agent[0] -> dict with at least heartbeat_ns and stale_after_ns
    (from BTF field names, or from the raw bytes of struct weft_agent_state)."""
    dump = bpftool_json("map", "dump", "pinned", os.path.join(pin_path, "weft_agent"))
    e = dump[0]
    if "formatted" in e:
        e = e["formatted"]
    v = e["value"]
    if isinstance(v, dict):
        return v
    raw = bytes(int(b, 16) for b in v)
    u64 = lambda off: int.from_bytes(raw[off:off + 8], "little")
    return {"heartbeat_ns": u64(0), "stale_after_ns": u64(8), "agent_cgroup_id": u64(16),
            "mark": int.from_bytes(raw[24:28], "little"),
            "outbound_port": int.from_bytes(raw[28:30], "little"),
            "fail_mode": raw[30], "enabled": raw[31]}


def cgroup_progs(cg_path, effective=False):
    """Programs attached to a cgroup: list of dicts (bpftool cgroup show)."""
    args = ["cgroup", "show", cg_path] + (["effective"] if effective else [])
    return bpftool_json(*args) or []


def attach_kind(prog):
    """bpftool's attach_type, old ("connect4") or new ("cgroup_inet4_connect")
    spelling -> the old one."""
    t = str(prog.get("attach_type", ""))
    new = {"cgroup_inet4_connect": "connect4", "cgroup_inet6_connect": "connect6",
           "cgroup_inet4_getpeername": "getpeername4", "cgroup_inet6_getpeername": "getpeername6",
           "cgroup_sock_ops": "sock_ops"}
    return new.get(t, t)


def weft_progs(cg_path, effective=False):
    return [p for p in cgroup_progs(cg_path, effective) if str(p.get("name", "")).startswith("weft")]


# --------------------------------------------------------------------------
# weftd

def services_conf(services):
    """[{name, addresses, endpoints, protocol?, balancer?, connect_ms?,
    attempts?, retry?, extra? (more service keys, verbatim)}] -> libconfig text.
    retry: None (default) writes `retry = { attempts = <attempts>; };`; a
    string writes `retry = { <that text> };` instead (attempts is then not
    written unless the text has it); "" or False writes no retry group.
    endpoints None writes no endpoints list (for endpoints_from, in extra)."""
    parts = []
    for s in services:
        # an endpoint is "ip:port" or ("ip:port", weight)
        eps = ", ".join('{ address = "%s"; weight = %d; }' % e if isinstance(e, tuple)
                        else '{ address = "%s"; }' % e for e in s["endpoints"] or [])
        addrs = ", ".join('"%s"' % a for a in s["addresses"])
        retry = s.get("retry")
        if retry is None:
            retry_text = " retry = { attempts = %d; };" % s.get("attempts", 1)
        elif not retry:
            retry_text = ""
        else:
            retry_text = " retry = { %s };" % retry
        parts.append(
            '{ name = "%s"; addresses = [ %s ]; protocol = "%s"; balancer = "%s";\n'
            '%s'
            '    timeouts = { connect_ms = %d; };%s%s }'
            % (s["name"], addrs, s.get("protocol", "tcp"), s.get("balancer", "round-robin"),
               "" if s["endpoints"] is None else "    endpoints = ( %s );\n" % eps,
               s.get("connect_ms", 1000), retry_text, s.get("extra", "")))
    return "services = (\n  " + ",\n  ".join(parts) + "\n);\n"


class Weftd:
    """One weftd process with its own config, ports, pin path and log file."""

    def __init__(self, binary, workdir, cgroups, services, fail_mode="open",
                 stale_ms=1000, log_level="debug", extra_agent="", name=None, extra_root=""):
        self.binary = binary
        self.name = name or unique_name("weftd")
        self.dir = os.path.join(workdir, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.pin_path = os.path.join(BPFFS, self.name)
        self.admin = "127.0.0.1:%d" % free_port()
        self.outbound_port = free_port()
        self.inbound = "127.0.0.1:%d" % free_port()
        self.cgroups = [c.path if isinstance(c, Cgroup) else c for c in cgroups]
        self.services = services
        self.fail_mode = fail_mode
        self.stale_ms = stale_ms
        self.conf_path = os.path.join(self.dir, "weft.conf")
        self.log_path = os.path.join(self.dir, "weftd.log")
        self.config_text = (
            'agent: {\n'
            '  admin = "%s";\n  outbound_port = %d;\n  inbound = "%s";\n'
            '  bpf_pin_path = "%s";\n  fail_mode = "%s";\n  heartbeat_stale_ms = %d;\n'
            '  mark = 0x574546;\n  log_level = "%s";\n%s'
            '};\n%s'
            'intercept: { cgroups = [ %s ]; };\n'
            % (self.admin, self.outbound_port, self.inbound, self.pin_path, fail_mode,
               stale_ms, log_level, extra_agent,
               # extra_root: more top-level groups (e.g. tracing), verbatim; before
               # intercept so that rewrite_config() keeps them
               (extra_root.rstrip("\n") + "\n") if extra_root else "",
               ", ".join('"%s"' % c for c in self.cgroups))
            + services_conf(services))
        with open(self.conf_path, "w") as f:
            f.write(self.config_text)
        self.proc = None
        self.runs = 0
        self.returncodes = []

    def __repr__(self):
        return "Weftd(%s)" % self.name

    def start(self, cgroup=None, wait=True, timeout=10.0, wrap=None):
        """Start (again) with the same config; wait for 'ready:' in the log.
        wrap: argv words put before weftd's own (e.g. unshare ... sh -c
        'SCRIPT; exec "$@"' sh); they must exec weftd, so that the pid is weftd's."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("%s already running" % self.name)
        self.runs += 1
        self._log_offset = self._log_size()
        logf = open(self.log_path, "ab")
        logf.write(b"==== run %d: %s%s -c %s -v%s\n" % (
            self.runs, " ".join(wrap or []).encode() + (b" " if wrap else b""),
            self.binary.encode(), self.conf_path.encode(),
            (b" (in cgroup %s)" % str(getattr(cgroup, "path", cgroup)).encode()) if cgroup else b""))
        logf.flush()
        argv = in_cgroup_argv(cgroup, list(wrap or []) + [self.binary, "-c", self.conf_path, "-v"])
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                          env=env, cwd=self.dir)
        logf.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def run_log(self):
        """Log of the current (last) run only."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(getattr(self, "_log_offset", 0))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=150):
        """The last n lines, without libbpf's debug chatter (the file has all)."""
        lines = [l for l in self.log().splitlines() if "DEBUG libbpf:" not in l]
        return "\n".join(lines[-n:])

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready:" in self.run_log():
                return
            if self.proc.poll() is not None:
                time.sleep(0.1)
                raise RuntimeError("%s exited with %s before 'ready:'\n--- log ---\n%s\n-----------"
                                   % (self.name, self.proc.returncode, self.log_tail()))
            time.sleep(0.05)
        raise RuntimeError("%s: no 'ready:' within %.0fs\n--- log ---\n%s\n-----------"
                           % (self.name, timeout, self.log_tail()))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout=10.0):
        """SIGTERM; returns the exit code (SIGKILL after timeout: then -9)."""
        if self.proc is None:
            return None
        rc = stop_process(self.proc, timeout)
        self.returncodes.append(rc)
        return rc

    def kill9(self):
        if self.proc is None:
            return None
        self.proc.kill()
        rc = self.proc.wait(10)
        self.returncodes.append(rc)
        return rc

    def stats(self):
        return read_stats(self.pin_path)

    def sanitizer_report(self):
        """Lines of the log where ASan/LSan/UBSan reported something ('' if none)."""
        marks = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                 "runtime error:")
        lines = self.log().splitlines()
        for i, l in enumerate(lines):
            if any(m in l for m in marks):
                return "\n".join(lines[i:i + 60])
        return ""

    def cleanup(self):
        """Stop it if running; remove the pin dir if it is still there. Raises
        if it then exits non-zero or the sanitizers reported anything."""
        rc = None
        if self.running():
            rc = self.terminate(5.0)
        if os.path.lexists(self.pin_path):
            shutil.rmtree(self.pin_path, ignore_errors=True)
        problems = []
        if rc not in (None, 0):
            problems.append("exited %s on SIGTERM at teardown" % rc)
        rep = self.sanitizer_report()
        if rep:
            problems.append("sanitizer report in %s:\n%s" % (self.log_path, rep))
        if problems:
            raise RuntimeError("%s: %s" % (self.name, "; ".join(problems)))


# --------------------------------------------------------------------------
# backends (driver side)

class Server:
    """A backend process (this file run as 'serve'); events parsed from its stdout."""

    def __init__(self, mode, name, listen, cgroup=None, nbytes=0, workdir=None):
        self.mode, self.name = mode, name
        self.err_path = os.path.join(workdir or "/tmp", "%s.%s.stderr" % (unique_name(), name))
        argv = [PYTHON, SCRIPT, "serve", "--mode", mode, "--name", name,
                "--listen", listen, "--bytes", str(nbytes), "--tag", run_prefix() + "srv"]
        self._err = open(self.err_path, "wb")
        self.proc = spawn(in_cgroup_argv(cgroup, argv), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=self._err)
        self.events = []
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ev = self.wait_event(lambda e: e["event"] == "listening", timeout=10)
        if ev is None:
            self.stop()
            raise RuntimeError("server %s (%s on %s) did not start: %s"
                               % (name, mode, listen, self.stderr()))
        self.addr = ev["addr"]

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self._cv:
                self.events.append(ev)
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_event(self, pred, timeout=10.0, start=0):
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for e in self.events[start:]:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return None
                self._cv.wait(min(left, 0.2))

    def conns(self):
        with self._cv:
            return [e for e in self.events if e["event"] == "conn"]

    def dones(self):
        with self._cv:
            return [e for e in self.events if e["event"] == "done"]

    def wait_done(self, n=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = self.dones()
            if len(d) >= n:
                return d
            time.sleep(0.02)
        return self.dones()

    def stderr(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        stop_process(self.proc, 3.0)
        self._reader.join(3)
        self._err.close()
        try:
            self.proc.stdout.close()
        except OSError:
            pass


class ClientRun:
    """A client started in the background; result() waits for its JSON."""

    def __init__(self, mode, connect, cgroup=None, nbytes=0, timeout=10.0, extra=()):
        argv = [PYTHON, SCRIPT, "client", "--mode", mode, "--connect", connect,
                "--bytes", str(nbytes), "--timeout", str(timeout),
                "--tag", run_prefix() + "cli"] + list(extra)
        self.timeout = timeout
        self.proc = spawn(in_cgroup_argv(cgroup, argv), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def result(self, timeout=None):
        return _client_result(self.proc, self.timeout + 20 if timeout is None else timeout)


def run_client(mode, connect, cgroup=None, nbytes=0, timeout=10.0, extra=()):
    """Run the client (this file as 'client') once, optionally in a cgroup;
    returns its JSON result (with 'rc' and 'stderr' added)."""
    return ClientRun(mode, connect, cgroup, nbytes, timeout, extra).result()


def _client_result(p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return {"ok": False, "error": "HARNESS_TIMEOUT", "stage": "harness",
                "rc": None, "stderr": err.decode(errors="replace")}
    lines = [l for l in out.decode(errors="replace").splitlines() if l.strip()]
    try:
        res = json.loads(lines[-1])
    except (IndexError, ValueError):
        res = {"ok": False, "error": "NO_JSON", "stage": "harness",
               "stdout": out.decode(errors="replace")}
    res["rc"] = p.returncode
    res["stderr"] = err.decode(errors="replace")
    return res


def run_curl(url, cgroup=None, timeout=5.0):
    """curl url (in cgroup): (exit code, http code, body)."""
    argv = ["curl", "-sS", "--max-time", str(timeout), "-o", "-",
            "-w", "\n%{http_code}", url]
    p = spawn(in_cgroup_argv(cgroup, argv), stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=timeout + 10)
    text = out.decode(errors="replace")
    body, _, code = text.rpartition("\n")
    return p.returncode, code, body, err.decode(errors="replace")


# --------------------------------------------------------------------------
# netns (named weft-e2e-*; the suite deletes them)

def netns_add(name):
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True)
    return name


def netns_del(name):
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)


# --------------------------------------------------------------------------
# Harness: one per test

class Harness:
    """Factory for one test's objects; close() removes all of them, newest first."""

    def __init__(self, weftd_bin, workdir):
        self.weftd_bin = weftd_bin
        self.workdir = workdir
        self.root = cgroup2_mount()
        self._undo = []
        self.daemons = []
        self.servers = []

    def _push(self, what, fn):
        self._undo.append((what, fn))

    def close(self):
        errors = []
        while self._undo:
            what, fn = self._undo.pop()
            try:
                fn()
            except Exception as e:  # keep cleaning; report at the end
                errors.append("%s: %r" % (what, e))
        return errors

    # objects -------------------------------------------------------------
    def cgroup(self, parent=None, tag=""):
        """A new cgroup under parent (a Cgroup) or under the cgroup2 root."""
        base = parent.path if parent is not None else self.root
        cg = Cgroup.create(base, unique_name(tag))
        self._push("cgroup %s" % cg.path, cg.destroy)
        return cg

    def netns(self):
        name = netns_add(unique_name("ns"))
        self._push("netns %s" % name, lambda: netns_del(name))
        return name

    def server(self, mode, name, listen=None, cgroup=None, nbytes=0):
        """Start a backend; listen defaults to a free 127.0.0.1 port."""
        if listen is None:
            listen = "127.0.0.1:%d" % free_port()
        s = Server(mode, name, listen, cgroup=cgroup, nbytes=nbytes, workdir=self.workdir)
        self.servers.append(s)
        self._push("server %s" % name, s.stop)
        return s

    def weftd(self, cgroups, services, start=True, cgroup=None, **kw):
        d = Weftd(self.weftd_bin, self.workdir, cgroups, services, **kw)
        self.daemons.append(d)
        self._push("weftd %s" % d.name, d.cleanup)
        if start:
            d.start(cgroup=cgroup)
        return d

    # clients ---------------------------------------------------------------
    def client(self, mode, connect, cgroup=None, **kw):
        return run_client(mode, connect, cgroup=cgroup, **kw)

    def client_async(self, mode, connect, cgroup=None, **kw):
        c = ClientRun(mode, connect, cgroup=cgroup, **kw)
        self._push("client %s" % connect, lambda: stop_process(c.proc, 2.0))
        return c

    def curl(self, url, cgroup=None, timeout=5.0):
        return run_curl(url, cgroup=cgroup, timeout=timeout)


def http_get(addr, path, timeout=5.0):
    """GET http://addr/path -> (status, body text); (None, error) if no answer."""
    import http.client
    fam, host, port = split_addr(addr)
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    except OSError as e:
        return None, _errname(e)
    finally:
        c.close()


def service(name, addresses, endpoints, **kw):
    d = {"name": name, "addresses": list(addresses),
         "endpoints": None if endpoints is None else list(endpoints)}
    d.update(kw)
    return d


def wait_for(pred, timeout, interval=0.1):
    """Poll pred() until truthy or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# --------------------------------------------------------------------------
# helpers for the admin / weftctl / reload / prometheus tests (added; nothing
# above depends on them)

def rewrite_config(d, cgroups=None, services=None, text=None):
    """Rewrite d's config file for a reload, atomically (write + rename).
    Keeps d's agent block; replaces intercept.cgroups and services (None:
    keep d's current ones). text: write exactly this instead. Returns the text."""
    if text is None:
        if cgroups is not None:
            d.cgroups = [c.path if isinstance(c, Cgroup) else c for c in cgroups]
        if services is not None:
            d.services = services
        head = d.config_text.split("intercept: {", 1)[0]
        text = (head + "intercept: { cgroups = [ %s ]; };\n"
                % ", ".join('"%s"' % c for c in d.cgroups) + services_conf(d.services))
    tmp = d.conf_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, d.conf_path)
    d.config_text = text
    return text


def admin_call(addr, method, path, body=None, timeout=5.0):
    """One HTTP request to the admin API -> (status, headers {lower: value}, body text);
    (None, {}, errno name) if there was no answer."""
    import http.client
    fam, host, port = split_addr(addr)
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as e:
        return None, {}, _errname(e)
    finally:
        c.close()


def admin_json(addr, path, timeout=5.0):
    """GET path and parse the JSON body (raises AssertionError on non-200)."""
    st, _, body = admin_call(addr, "GET", path, timeout=timeout)
    assert st == 200, "GET %s: %r %r" % (path, st, body)
    return json.loads(body)


def raw_exchange(addr, data, timeout=5.0, shut_wr=False):
    """Send raw bytes to addr, read until EOF (or timeout). -> (bytes read,
    'eof' | 'timeout' | errno name)."""
    fam, host, port = split_addr(addr)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    out = b""
    try:
        s.connect((host, port))
        if data:
            s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            d = s.recv(65536)
            if not d:
                return out, "eof"
            out += d
    except socket.timeout:
        return out, "timeout"
    except OSError as e:
        return out, _errname(e)
    finally:
        s.close()


def parse_prom(text):
    """Prometheus text format -> (samples, types, helps): samples is a list of
    (name, {label: value}, float); types/helps map family names to strings."""
    import re
    samples, types, helps = [], {}, {}
    lab_re = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ.strip()
            continue
        if line.startswith("# HELP "):
            parts = line.split(None, 3)
            helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        if line.startswith("#"):
            continue
        m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$', line)
        if not m:
            raise ValueError("not a sample line: %r" % line)
        labels = {}
        rest = m.group(3) or ""
        pos = 0
        while pos < len(rest):
            lm = lab_re.match(rest, pos)
            if not lm:
                raise ValueError("bad labels in %r" % line)
            labels[lm.group(1)] = re.sub(r'\\(.)', lambda x: {"n": "\n"}.get(x.group(1), x.group(1)),
                                         lm.group(2))
            pos = lm.end()
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples, types, helps


def prom_get(samples, name, **labels):
    """Values of the samples named name whose labels include labels."""
    return [v for n, l, v in samples
            if n == name and all(l.get(k) == str(x) for k, x in labels.items())]


def metrics(addr):
    """GET /metrics parsed: the samples list of parse_prom."""
    st, _, body = admin_call(addr, "GET", "/metrics")
    assert st == 200, (st, body)
    return parse_prom(body)[0]


def table_columns(text):
    """An aligned table (header row + rows, columns separated by 2+ spaces,
    no spaces inside cells) -> (header names, [row dicts]). Asserts that every
    cell of every row starts exactly where its header starts."""
    lines = [l for l in text.splitlines() if l.strip()]
    assert lines, "empty table"
    hdr = lines[0]
    import re
    starts = [m.start() for m in re.finditer(r"\S+", hdr)]
    names = hdr.split()
    rows = []
    for l in lines[1:]:
        row = {}
        for m in re.finditer(r"\S+", l):
            assert m.start() in starts, ("cell %r at column %d is not under a header "
                                         "(header columns start at %r):\n%s"
                                         % (m.group(), m.start(), starts, text))
            row[names[starts.index(m.start())]] = m.group()
        rows.append(row)
    return names, rows


_SCRIPTED_CHILD = r'''
import hashlib, json, os, socket, sys, threading, time
def emit(o):
    sys.stdout.write(json.dumps(o) + "\n"); sys.stdout.flush()
def ename(e):
    import errno
    if isinstance(e, socket.timeout): return "TIMEOUT"
    return errno.errorcode.get(getattr(e, "errno", None) or -1, type(e).__name__)
addr, timeout = sys.argv[1], float(sys.argv[2])
if addr.startswith("["):
    host, _, port = addr[1:].partition("]:"); fam = socket.AF_INET6
else:
    host, _, port = addr.rpartition(":"); fam = socket.AF_INET
def fmt(sa):
    return "[%s]:%d" % sa[:2] if ":" in sa[0] else "%s:%d" % sa[:2]
s = socket.socket(fam, socket.SOCK_STREAM)
s.settimeout(timeout)
try:
    s.connect((host, int(port)))
except OSError as e:
    emit({"event": "error", "stage": "connect", "error": ename(e)}); sys.exit(0)
st = {"sent": 0, "recv": 0, "ticks": 0, "error": None, "mismatch": 0}
hs, hr = hashlib.sha256(), hashlib.sha256()
lock = threading.Lock()
stop = threading.Event()
ticker = None
def recv_exact(n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            break
        buf += d
    return buf
def tick(interval, size):
    seq = 0
    while not stop.is_set():
        seq += 1
        msg = (b"%08d" % seq + os.urandom(size))[:size]
        try:
            with lock:
                s.sendall(msg); hs.update(msg); st["sent"] += len(msg)
                got = recv_exact(len(msg)); hr.update(got); st["recv"] += len(got)
        except OSError as e:
            st["error"] = ename(e); return
        if got != msg:
            st["mismatch"] += 1
            st["error"] = "EOF" if len(got) < len(msg) else "MISMATCH"
            return
        st["ticks"] += 1
        stop.wait(interval)
def status():
    return dict(st, sent_sha256=hs.hexdigest(), recv_sha256=hr.hexdigest())
emit({"event": "connected", "sockname": fmt(s.getsockname()), "peername": fmt(s.getpeername()),
      "pid": os.getpid()})
for line in sys.stdin:
    c = json.loads(line)
    cmd = c["cmd"]
    try:
        if cmd == "send":
            data = os.urandom(c["n"])
            with lock:
                s.sendall(data); hs.update(data); st["sent"] += len(data)
            emit(dict(status(), event="sent"))
        elif cmd == "recv":
            with lock:
                got = recv_exact(c["n"]); hr.update(got); st["recv"] += len(got)
            emit(dict(status(), event="recv", got=len(got)))
        elif cmd == "tick":
            stop.clear()
            ticker = threading.Thread(target=tick, args=(c.get("interval", 0.1), c.get("size", 64)),
                                      daemon=True)
            ticker.start()
            emit(dict(status(), event="ticking"))
        elif cmd == "status":
            emit(dict(status(), event="status"))
        elif cmd == "stop":
            stop.set()
            if ticker: ticker.join(timeout + 5)
            emit(dict(status(), event="stopped"))
        elif cmd == "close":
            stop.set()
            if ticker: ticker.join(timeout + 5)
            s.shutdown(socket.SHUT_WR)
            extra = 0
            while True:
                d = s.recv(65536)
                if not d: break
                extra += len(d); hr.update(d); st["recv"] += len(d)
            s.close()
            emit(dict(status(), event="closed", eof=True, extra=extra))
            sys.exit(0)
        else:
            emit({"event": "error", "stage": cmd, "error": "UNKNOWN_COMMAND"})
    except OSError as e:
        emit(dict(status(), event="error", stage=cmd, error=ename(e)))
'''


class ScriptedClient:
    """A client process (optionally in a cgroup) holding one TCP connection
    open and driven one command at a time over stdin: send N random bytes,
    recv exactly N, tick (echo a chunk every interval and check it comes back
    byte-exact, in a thread), status, stop (the ticking), close (shutdown,
    read to EOF). Every answer is a dict with sent/recv/ticks/error/
    sent_sha256/recv_sha256. Start it with Harness-bound scripted_client()."""

    def __init__(self, connect, cgroup=None, timeout=10.0):
        import queue
        self.timeout = timeout
        argv = [PYTHON, "-c", _SCRIPTED_CHILD, connect, str(timeout), run_prefix() + "scripted"]
        self.proc = spawn(in_cgroup_argv(cgroup, argv), stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._q = queue.Queue()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        self.hello = self._next(timeout + 10)
        self.pid = self.proc.pid

    def _read(self):
        for line in self.proc.stdout:
            try:
                self._q.put(json.loads(line))
            except ValueError:
                pass
        self._q.put(None)

    def _next(self, timeout):
        import queue
        try:
            ev = self._q.get(timeout=timeout)
        except queue.Empty:
            return {"event": "error", "error": "HARNESS_TIMEOUT"}
        if ev is None:
            return {"event": "error", "error": "EXITED",
                    "stderr": self.proc.stderr.read().decode(errors="replace")
                    if self.proc.poll() is not None else ""}
        return ev

    @property
    def connected(self):
        return self.hello.get("event") == "connected"

    def cmd(self, cmd, timeout=None, **kw):
        kw["cmd"] = cmd
        try:
            self.proc.stdin.write((json.dumps(kw) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as e:
            return {"event": "error", "error": "STDIN_" + _errname(e)}
        return self._next(self.timeout + 10 if timeout is None else timeout)

    def send(self, n):
        return self.cmd("send", n=n)

    def recv(self, n):
        return self.cmd("recv", n=n)

    def tick(self, interval=0.1, size=64):
        return self.cmd("tick", interval=interval, size=size)

    def status(self):
        return self.cmd("status")

    def close(self):
        r = self.cmd("close")
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        return r

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        stop_process(self.proc, 2.0)
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


def scripted_client(h, connect, cgroup=None, timeout=10.0):
    """A ScriptedClient whose process h (a Harness) stops at close()."""
    c = ScriptedClient(connect, cgroup=cgroup, timeout=timeout)
    h._push("scripted client %s" % connect, c.stop)
    return c


class ReplyServer:
    """An in-process backend on 127.0.0.1 (threads): per connection, read
    `expect` bytes, answer `reply` bytes, then read until EOF and close.
    conns: one dict per connection (peer, got, sent, done)."""

    def __init__(self, expect, reply, host="127.0.0.1"):
        self.expect, self.reply = expect, reply
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.addr = fmt_addr(self.sock.getsockname())
        self.conns = []
        self._stop = False
        self._threads = []
        self._t = threading.Thread(target=self._accept, daemon=True)
        self._t.start()

    def _accept(self):
        while not self._stop:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            info = {"peer": fmt_addr(peer), "got": 0, "sent": 0, "done": False}
            self.conns.append(info)
            t = threading.Thread(target=self._serve, args=(c, info), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, c, info):
        try:
            c.settimeout(30)
            while info["got"] < self.expect:
                d = c.recv(min(65536, self.expect - info["got"]))
                if not d:
                    break
                info["got"] += len(d)
            if info["got"] >= self.expect and self.reply:
                c.sendall(os.urandom(self.reply))
                info["sent"] = self.reply
            while True:
                d = c.recv(65536)
                if not d:
                    break
                info["got"] += len(d)
        except OSError as e:
            info["error"] = _errname(e)
        finally:
            info["done"] = True
            c.close()

    def stop(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._t.join(2)


def reply_server(h, expect, reply, host="127.0.0.1"):
    s = ReplyServer(expect, reply, host)
    h._push("reply server %s" % s.addr, s.stop)
    return s


def dead_addr(host="127.0.0.1"):
    """'host:port' where nothing listens (a connect is refused)."""
    return "%s:%d" % (host, free_port(host))



# ==========================================================================
# the processes: serve / client

_out_lock = threading.Lock()


def _emit(obj):
    with _out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def _errname(e):
    if isinstance(e, socket.timeout):
        return "TIMEOUT"
    if getattr(e, "errno", None) in errno.errorcode:
        return errno.errorcode[e.errno]
    return type(e).__name__


def _recv_until(sock, pred, limit=1 << 20):
    buf = b""
    while not pred(buf) and len(buf) < limit:
        d = sock.recv(65536)
        if not d:
            break
        buf += d
    return buf


def _recv_all(sock, h=None):
    """Read until EOF; returns (nbytes, data or None when hashing)."""
    n, chunks = 0, []
    while True:
        d = sock.recv(1 << 18)
        if not d:
            return n, (None if h else b"".join(chunks))
        n += len(d)
        if h:
            h.update(d)
        else:
            chunks.append(d)


def _send_random(sock, nbytes, h, shut=True):
    left = nbytes
    while left > 0:
        chunk = os.urandom(min(left, 1 << 18))
        h.update(chunk)
        sock.sendall(chunk)
        left -= len(chunk)
    if shut:
        sock.shutdown(socket.SHUT_WR)


def _serve_conn(args, c, peer):
    info = {"event": "conn", "server": args.name, "mode": args.mode,
            "peer": fmt_addr(peer), "local": fmt_addr(c.getsockname())}
    _emit(info)
    done = {"event": "done", "server": args.name, "peer": info["peer"]}
    try:
        c.settimeout(60)
        if args.mode == "http":
            req = _recv_until(c, lambda b: b"\r\n\r\n" in b)
            body = json.dumps({"server": args.name, "peer": info["peer"],
                               "local": info["local"]}).encode() + b"\n"
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            done["request_line"] = req.split(b"\r\n", 1)[0].decode(errors="replace")
        elif args.mode == "echo":
            n = 0
            while True:
                d = c.recv(65536)
                if not d:
                    break
                n += len(d)
                c.sendall(d)
            done["bytes"] = n
        elif args.mode == "eofreply":
            h = hashlib.sha256()
            n, _ = _recv_all(c, h)
            c.sendall(b"%d %s\n" % (n, h.hexdigest().encode()))
            done.update(bytes=n, sha256=h.hexdigest())
        elif args.mode == "reset":
            c.settimeout(5)
            try:
                d = c.recv(65536)
                done["got"] = len(d)
            except OSError as e:
                done["recv_error"] = _errname(e)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        elif args.mode == "banner":
            c.sendall(args.name.encode() + b"\n")
        elif args.mode == "bulk":
            hs = hashlib.sha256()
            err = []

            def sender():
                try:
                    _send_random(c, args.bytes, hs)
                except OSError as e:
                    err.append(_errname(e))
            t = threading.Thread(target=sender, daemon=True)
            t.start()
            hr = hashlib.sha256()
            n, _ = _recv_all(c, hr)
            t.join(120)
            done.update(recv_bytes=n, recv_sha256=hr.hexdigest(),
                        sent_bytes=args.bytes, sent_sha256=hs.hexdigest(),
                        send_error=err[0] if err else None)
        done["ok"] = True
    except OSError as e:
        done.update(ok=False, error=_errname(e))
    finally:
        c.close()
        _emit(done)


def serve_main(args):
    fam, host, port = split_addr(args.listen)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(256)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    _emit({"event": "listening", "addr": fmt_addr(s.getsockname()), "pid": os.getpid()})
    while True:
        c, peer = s.accept()
        threading.Thread(target=_serve_conn, args=(args, c, peer), daemon=True).start()


def client_main(args):
    fam, host, port = split_addr(args.connect)
    res = {"ok": False, "error": None, "stage": "socket", "mode": args.mode,
           "target": args.connect, "peername": None, "sockname": None}
    t0 = time.monotonic()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    if args.mark:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, args.mark)
    try:
        res["stage"] = "connect"
        s.connect((host, port))
        res["connect_s"] = round(time.monotonic() - t0, 4)
        res["sockname"] = fmt_addr(s.getsockname())
        res["peername"] = fmt_addr(s.getpeername())
        if args.delay:
            time.sleep(args.delay)
        m = args.mode
        if m == "connect":
            pass
        elif m == "http":
            res["stage"] = "send"
            s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host.encode())
            res["stage"] = "recv"
            _, data = _recv_all(s)
            head, _, body = data.partition(b"\r\n\r\n")
            res["status_line"] = head.split(b"\r\n", 1)[0].decode(errors="replace")
            res["body"] = body.decode(errors="replace")
            try:
                res["reply"] = json.loads(body)
            except ValueError:
                res["reply"] = None
        elif m == "echo":
            payload = os.urandom(max(args.bytes, 1))
            res["stage"] = "send"
            s.sendall(payload)
            res["stage"] = "recv"
            got = _recv_until(s, lambda b: len(b) >= len(payload), limit=len(payload))
            res["echo_ok"] = got == payload
            s.shutdown(socket.SHUT_WR)
            res["eof"] = s.recv(1) == b""
        elif m == "halfclose":
            payload = b"weft half-close payload\n" * max(1, args.bytes // 24)
            res["sent_bytes"] = len(payload)
            res["sent_sha256"] = hashlib.sha256(payload).hexdigest()
            res["stage"] = "send"
            s.sendall(payload)
            res["stage"] = "shutdown"
            s.shutdown(socket.SHUT_WR)
            res["stage"] = "recv"
            _, data = _recv_all(s)  # returns at EOF only
            res["reply"] = data.decode(errors="replace")
            res["eof"] = True
        elif m == "banner":
            res["stage"] = "recv"
            _, data = _recv_all(s)
            res["reply"] = data.decode(errors="replace")
            res["eof"] = True
        elif m == "reset":
            res["stage"] = "send"
            s.sendall(b"ping\n")
            res["stage"] = "recv"
            _, data = _recv_all(s)
            res["reply"] = data.decode(errors="replace")
            res["eof"] = True
        elif m == "bulk":
            hs = hashlib.sha256()
            err = []

            def sender():
                try:
                    _send_random(s, args.bytes, hs)
                except OSError as e:
                    err.append(_errname(e))
            t = threading.Thread(target=sender, daemon=True)
            t.start()
            res["stage"] = "recv"
            hr = hashlib.sha256()
            n, _ = _recv_all(s, hr)
            t.join(args.timeout)
            res.update(recv_bytes=n, recv_sha256=hr.hexdigest(),
                       sent_bytes=args.bytes, sent_sha256=hs.hexdigest())
            if err or t.is_alive():
                res["stage"] = "send"
                res["error"] = err[0] if err else "SEND_TIMEOUT"
                _emit_and_exit(res, s, t0)
        else:
            raise SystemExit("unknown client mode %r" % m)
        res["ok"] = True
        res["stage"] = "done"
    except OSError as e:
        res["error"] = _errname(e)
    finally:
        res["elapsed"] = round(time.monotonic() - t0, 4)
        s.close()
    _emit(res)


def _emit_and_exit(res, s, t0):
    res["elapsed"] = round(time.monotonic() - t0, 4)
    s.close()
    _emit(res)
    sys.stdout.flush()
    os._exit(0)


def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="weft_harness.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve")
    sp.add_argument("--mode", required=True,
                    choices=["http", "echo", "eofreply", "reset", "banner", "bulk"])
    sp.add_argument("--name", required=True)
    sp.add_argument("--listen", required=True)
    sp.add_argument("--bytes", type=int, default=0)
    sp.add_argument("--tag", default="")
    cp = sub.add_parser("client")
    cp.add_argument("--mode", required=True)
    cp.add_argument("--connect", required=True)
    cp.add_argument("--bytes", type=int, default=0)
    cp.add_argument("--timeout", type=float, default=10.0)
    cp.add_argument("--tag", default="")
    cp.add_argument("--mark", type=lambda x: int(x, 0), default=0, help="SO_MARK")
    cp.add_argument("--delay", type=float, default=0.0, help="idle seconds after connect")
    args = ap.parse_args(argv)
    if args.cmd == "serve":
        serve_main(args)
    else:
        client_main(args)


if __name__ == "__main__":
    _main(sys.argv[1:])


# ==========================================================================
# two "nodes" (network namespaces joined by veth) and mutual TLS between
# their agents: helpers for test_mtls.py (added; nothing above depends on them)
#
# Why nsenter and not `ip netns exec`: `ip netns exec` also unshares the mount
# namespace and mounts a fresh sysfs on /sys, which hides /sys/fs/cgroup and
# /sys/fs/bpf (weftd needs both; so does `echo $$ > CG/cgroup.procs`).
# `nsenter --net=/run/netns/NS` changes only the network namespace, and execs
# the program in the same process (pid unchanged: signals reach weftd).
# In this process, netns_socket() makes a socket inside a namespace from a
# short-lived thread that setns()es itself (a socket stays in the namespace
# it was made in), so admin calls, raw probes and the packet capture need no
# helper process.

CLONE_NEWNET = 0x40000000
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
WEFT_CA = os.path.join(REPO, "scripts", "weft-ca")


def netns_argv(ns, argv):
    """argv run inside network namespace ns (only the netns changes)."""
    if ns is None:
        return list(argv)
    return ["nsenter", "--net=%s" % os.path.join(NETNS_DIR, ns), "--"] + list(argv)


def netns_socket(ns, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0):
    """A socket created inside network namespace ns (None: this one)."""
    if ns is None:
        return socket.socket(family, type, proto)
    import ctypes
    out = {}

    def run():
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(os.path.join(NETNS_DIR, ns), os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                out["err"] = OSError(e, "setns(%s): %s" % (ns, os.strerror(e)))
                return
            out["sock"] = socket.socket(family, type, proto)
        except OSError as e:
            out["err"] = e
        finally:
            os.close(fd)
    t = threading.Thread(target=run)  # the thread (and its netns) ends here
    t.start()
    t.join()
    if "err" in out:
        raise out["err"]
    return out["sock"]


def netns_connect(ns, addr, timeout=5.0):
    fam, host, port = split_addr(addr)
    s = netns_socket(ns, fam)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except OSError:
        s.close()
        raise
    return s


def ns_admin_call(ns, addr, method, path, body=None, timeout=5.0):
    """admin_call() through a socket in netns ns."""
    import http.client

    class _Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = netns_connect(ns, addr, self.timeout)

    fam, host, port = split_addr(addr)
    c = _Conn(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as e:
        return None, {}, _errname(e)
    finally:
        c.close()


def ns_admin_json(ns, addr, path, timeout=5.0):
    st, _, body = ns_admin_call(ns, addr, "GET", path, timeout=timeout)
    assert st == 200, "GET %s (netns %s): %r %r" % (path, ns, st, body)
    return json.loads(body)


def ns_metrics(ns, addr):
    """GET /metrics in netns ns, parsed: the samples list of parse_prom."""
    st, _, body = ns_admin_call(ns, addr, "GET", "/metrics")
    assert st == 200, (st, body)
    return parse_prom(body)[0]


def ns_raw_exchange(ns, addr, data, timeout=5.0, shut_wr=False, delay=0.0):
    """raw_exchange() from netns ns: connect, wait delay, send data, read until
    EOF or timeout. -> (bytes read, 'eof' | 'timeout' | errno name, seconds
    from connect to the end)."""
    out = b""
    t0 = None
    try:
        s = netns_connect(ns, addr, timeout)
    except OSError as e:
        return out, "connect:" + _errname(e), 0.0
    t0 = time.monotonic()
    try:
        if delay:
            time.sleep(delay)
        if data:
            s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        deadline = t0 + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            d = s.recv(65536)
            if not d:
                return out, "eof", time.monotonic() - t0
            out += d
    except socket.timeout:
        return out, "timeout", time.monotonic() - t0
    except OSError as e:
        return out, _errname(e), time.monotonic() - t0
    finally:
        s.close()


def wait_log(d, needle, timeout=5.0, since=0):
    """Wait until needle (str, or a callable on the log text) shows up in d's
    log after character offset since. Returns the matching line(s) or ''."""
    def check():
        text = d.log()[since:]
        if callable(needle):
            return needle(text)
        return "\n".join(l for l in text.splitlines() if needle in l)
    return wait_for(check, timeout) or ""


# --------------------------------------------------------------------------
# the CA (scripts/weft-ca)

def weft_ca(*args, timeout=60):
    # through bash: a copy of the tree may have lost the exec bit
    r = subprocess.run(["bash", WEFT_CA] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("weft-ca %s: rc=%d\n%s%s" % (" ".join(map(str, args)), r.returncode,
                                                        r.stdout, r.stderr))
    return r


class CertAuthority:
    """One trust domain made by `weft-ca init`; issue() -> (cert path, key path)."""

    def __init__(self, directory, trust_domain="example.org"):
        self.dir = directory
        self.trust_domain = trust_domain
        weft_ca("init", directory, "--trust-domain", trust_domain)
        self.ca = os.path.join(directory, "ca.pem")

    def issue(self, spiffe_id, out_prefix, *flags):
        weft_ca("issue", self.dir, spiffe_id, out_prefix, *flags)
        return out_prefix + ".pem", out_prefix + ".key"


def cert_not_after(pem_path):
    """notAfter of the first certificate in pem_path (openssl x509), as text."""
    r = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-serial", "-in", pem_path],
                       capture_output=True, text=True)
    return r.stdout.strip()


# --------------------------------------------------------------------------
# topology: two namespaces, one veth pair, 198.18.X.1/30 <-> 198.18.X.2/30

_subnet = itertools.count((os.getpid() * 7) % 200)


class TwoNodes:
    """ns1/ns2 (network namespaces), veth1 (in ns1) / veth2 (in ns2),
    ip1/ip2 on a /30 of 198.18.0.0/15. No default route in either."""

    def __init__(self, ns1, ns2, veth1, veth2, ip1, ip2):
        self.ns1, self.ns2 = ns1, ns2
        self.veth1, self.veth2 = veth1, veth2
        self.ip1, self.ip2 = ip1, ip2

    def __repr__(self):
        return "TwoNodes(%s %s/%s <-> %s %s/%s)" % (self.ns1, self.veth1, self.ip1,
                                                  self.ns2, self.veth2, self.ip2)


def two_nodes(h):
    """Two netns joined by a veth pair (made inside them: nothing appears in
    this namespace; deleting the namespaces removes it)."""
    ns1, ns2 = h.netns(), h.netns()
    x = next(_subnet) % 256
    tag = "%x%x" % (os.getpid() % 0xffff, next(_counter))
    veth1, veth2 = ("wa" + tag)[:15], ("wb" + tag)[:15]
    ip1, ip2 = "198.18.%d.1" % x, "198.18.%d.2" % x

    def ip(*args):
        r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    ip("link", "add", veth1, "netns", ns1, "type", "veth", "peer", "name", veth2, "netns", ns2)
    ip("-n", ns1, "addr", "add", ip1 + "/30", "dev", veth1)
    ip("-n", ns2, "addr", "add", ip2 + "/30", "dev", veth2)
    ip("-n", ns1, "link", "set", veth1, "up")
    ip("-n", ns2, "link", "set", veth2, "up")
    return TwoNodes(ns1, ns2, veth1, veth2, ip1, ip2)


# --------------------------------------------------------------------------
# weftd inside a namespace, with tls/identities

def tls_conf(tls=None, identities=None):
    """libconfig text of the tls group and the identities list.
    tls: {ca, cert, key, and any other key (verbatim values: ints, or strings
    already quoted)}; identities: [{cgroup, identity, cert?, key?}] (without
    cert/key: minted from tls.issuer_cert/issuer_key)."""
    out = ""
    if tls:
        parts = []
        for k, v in tls.items():
            if k in ("ca", "cert", "key", "trust_domain", "issuer_cert", "issuer_key"):
                parts.append('%s = "%s";' % (k, v))
            else:
                parts.append("%s = %s;" % (k, v))
        out += "tls: { %s };\n" % " ".join(parts)
    if identities:
        out += "identities = (\n  %s\n);\n" % ",\n  ".join(
            '{ cgroup = "%s"; identity = "%s";%s }'
            % (i["cgroup"].path if isinstance(i["cgroup"], Cgroup) else i["cgroup"],
               i["identity"],
               ' cert = "%s"; key = "%s";' % (i["cert"], i["key"]) if i.get("cert") else "")
            for i in identities)
    return out


class NodeWeftd(Weftd):
    """A Weftd that runs inside network namespace ns (through a wrapper
    script: nsenter --net=... -- weftd "$@"), with agent.inbound on the
    node's own address and a tls / identities block appended."""

    def __init__(self, binary, workdir, ns, inbound, cgroups, services, tls=None,
                 identities=None, **kw):
        kw.setdefault("stale_ms", 3000)
        super().__init__(binary, workdir, cgroups, services, **kw)
        self.ns = ns
        self.real_binary = binary
        old = 'inbound = "%s";' % self.inbound
        self.inbound = inbound
        assert old in self.config_text
        self.config_text = self.config_text.replace(old, 'inbound = "%s";' % inbound)
        self.config_text += tls_conf(tls, identities)
        with open(self.conf_path, "w") as f:
            f.write(self.config_text)
        self.binary = os.path.join(self.dir, "weftd-in-netns")
        with open(self.binary, "w") as f:
            f.write('#!/bin/sh\nexec nsenter --net=%s -- %s "$@"\n'
                    % (os.path.join(NETNS_DIR, ns), binary))
        os.chmod(self.binary, 0o755)

    def metrics(self):
        return ns_metrics(self.ns, self.admin)

    def admin_json(self, path):
        return ns_admin_json(self.ns, self.admin, path)

    def admin_call(self, method, path, body=None):
        return ns_admin_call(self.ns, self.admin, method, path, body=body)


def node_weftd(h, ns, inbound, cgroups, services, start=True, **kw):
    """Harness.weftd() for a node: a NodeWeftd in ns, torn down with h."""
    d = NodeWeftd(h.weftd_bin, h.workdir, ns, inbound, cgroups, services, **kw)
    h.daemons.append(d)
    h._push("weftd %s" % d.name, d.cleanup)
    if start:
        d.start()
    return d


class NsServer(Server):
    """A backend (this file run as 'serve') inside network namespace ns."""

    def __init__(self, ns, mode, name, listen, nbytes=0, workdir=None):
        self.mode, self.name, self.ns = mode, name, ns
        self.err_path = os.path.join(workdir or "/tmp", "%s.%s.stderr" % (unique_name(), name))
        argv = [PYTHON, SCRIPT, "serve", "--mode", mode, "--name", name,
                "--listen", listen, "--bytes", str(nbytes), "--tag", run_prefix() + "srv"]
        self._err = open(self.err_path, "wb")
        self.proc = spawn(netns_argv(ns, argv), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=self._err)
        self.events = []
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ev = self.wait_event(lambda e: e["event"] == "listening", timeout=10)
        if ev is None:
            self.stop()
            raise RuntimeError("server %s (%s on %s in %s) did not start: %s"
                               % (name, mode, listen, ns, self.stderr()))
        self.addr = ev["addr"]


def ns_server(h, ns, mode, name, listen):
    s = NsServer(ns, mode, name, listen, workdir=h.workdir)
    h.servers.append(s)
    h._push("server %s" % name, s.stop)
    return s


_MARKER_CLIENT = r'''
import errno, json, os, socket, sys, time
addr, payload, timeout = sys.argv[1], bytes.fromhex(sys.argv[2]), float(sys.argv[3])
host, _, port = addr.rpartition(":")
def ename(e):
    if isinstance(e, socket.timeout): return "TIMEOUT"
    return errno.errorcode.get(getattr(e, "errno", None) or -1, type(e).__name__)
res = {"ok": False, "error": None, "stage": "connect", "peername": None, "sockname": None,
       "got": 0, "echo_ok": False, "eof": False}
t0 = time.monotonic()
s = socket.socket()
s.settimeout(timeout)
got = b""
try:
    s.connect((host, int(port)))
    res["sockname"] = "%s:%d" % s.getsockname()
    res["peername"] = "%s:%d" % s.getpeername()
    res["stage"] = "send"
    s.sendall(payload)
    res["stage"] = "recv"
    while len(got) < len(payload):
        d = s.recv(65536)
        if not d:
            res["eof"] = True
            break
        got += d
    res["echo_ok"] = got == payload
    if res["echo_ok"]:
        res["stage"] = "close"
        s.shutdown(socket.SHUT_WR)
        res["eof"] = s.recv(1) == b""
        res["ok"] = res["eof"]
        res["stage"] = "done"
except OSError as e:
    res["error"] = ename(e)
finally:
    res["got"] = len(got)
    res["elapsed"] = round(time.monotonic() - t0, 4)
    s.close()
print(json.dumps(res)); sys.stdout.flush()
'''


def ns_marker_client(ns, connect, payload, cgroup=None, timeout=10.0):
    """In netns ns and cgroup: connect, send payload (bytes), expect it echoed
    byte-exact, half-close, expect EOF. -> dict (ok, error, stage, peername,
    got, echo_ok, eof, elapsed, rc, stderr)."""
    argv = [PYTHON, "-c", _MARKER_CLIENT, connect, payload.hex(), str(timeout),
            run_prefix() + "marker"]
    p = spawn(in_cgroup_argv(cgroup, netns_argv(ns, argv)), stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return _client_result(p, timeout + 20)


class NsScriptedClient(ScriptedClient):
    """ScriptedClient in netns ns (and cgroup)."""

    def __init__(self, ns, connect, cgroup=None, timeout=10.0):
        import queue
        self.timeout = timeout
        argv = [PYTHON, "-c", _SCRIPTED_CHILD, connect, str(timeout), run_prefix() + "scripted"]
        self.proc = spawn(in_cgroup_argv(cgroup, netns_argv(ns, argv)), stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._q = queue.Queue()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        self.hello = self._next(timeout + 10)
        self.pid = self.proc.pid


def ns_scripted_client(h, ns, connect, cgroup=None, timeout=10.0):
    c = NsScriptedClient(ns, connect, cgroup=cgroup, timeout=timeout)
    h._push("scripted client %s" % connect, c.stop)
    return c


# --------------------------------------------------------------------------
# packet capture on an interface of a namespace (AF_PACKET, no tcpdump)

class PacketCapture:
    """Every frame seen on iface (inside ns), both directions, until stop().
    Frames are kept raw (bytes); tcp_segments() parses the IPv4/TCP ones."""

    ETH_P_ALL = 0x0003

    def __init__(self, ns, iface, max_bytes=64 << 20):
        self.sock = netns_socket(ns, socket.AF_PACKET, socket.SOCK_RAW,
                                 socket.htons(self.ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((iface, 0))
        self.sock.settimeout(0.1)
        self.frames = []
        self.bytes = 0
        self.max_bytes = max_bytes
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(1 << 17)
            except socket.timeout:
                continue
            except OSError:
                return
            if self.bytes < self.max_bytes:
                self.frames.append(data)
                self.bytes += len(data)

    def stop(self):
        if not self._stop.is_set():
            time.sleep(0.2)  # let the last frames in
            self._stop.set()
            self._t.join(2)
            self.sock.close()
        return self.frames

    def tcp_segments(self):
        """[(src ip, src port, dst ip, dst port, seq, flags, payload)] of the
        IPv4 TCP frames."""
        out = []
        for f in list(self.frames):
            if len(f) < 14 + 20 or f[12:14] != b"\x08\x00":
                continue
            ip = f[14:]
            ihl = (ip[0] & 0x0f) * 4
            if ip[9] != 6:
                continue
            tot = int.from_bytes(ip[2:4], "big")
            tcp = ip[ihl:tot] if tot else ip[ihl:]
            if len(tcp) < 20:
                continue
            doff = (tcp[12] >> 4) * 4
            out.append((socket.inet_ntoa(ip[12:16]), int.from_bytes(tcp[0:2], "big"),
                        socket.inet_ntoa(ip[16:20]), int.from_bytes(tcp[2:4], "big"),
                        int.from_bytes(tcp[4:8], "big"), tcp[13], bytes(tcp[doff:])))
        return out

    def streams(self, port):
        """Reassembled TCP byte streams of the connections to/from port:
        {(client ip, client port): {"to_server": bytes, "to_client": bytes}}."""
        segs = {}
        for src, sp, dst, dp, seq, flags, payload in self.tcp_segments():
            if dp == port:
                key, d = (src, sp), "to_server"
            elif sp == port:
                key, d = (dst, dp), "to_client"
            else:
                continue
            st = segs.setdefault(key, {"to_server": {}, "to_client": {}})
            if flags & 0x02:  # SYN: the stream starts at seq + 1
                st[d]["isn"] = seq
            elif payload:
                st[d].setdefault("segs", []).append((seq, payload))
        out = {}
        for key, st in segs.items():
            out[key] = {}
            for d in ("to_server", "to_client"):
                info = st[d]
                buf = bytearray()
                if info.get("segs"):
                    base = (info["isn"] + 1) if "isn" in info else min(s for s, _ in info["segs"])
                    for seq, p in info["segs"]:
                        off = (seq - base) % (1 << 32)
                        if off > 64 << 20:
                            continue
                        if len(buf) < off + len(p):
                            buf.extend(b"\0" * (off + len(p) - len(buf)))
                        buf[off:off + len(p)] = p
                out[key][d] = bytes(buf)
        return out


def tls_records(stream):
    """Split a TLS byte stream into records: [(content type, version, length)],
    and the number of bytes left over (an incomplete last record, or garbage:
    then the walk stops there)."""
    recs, i = [], 0
    while i + 5 <= len(stream):
        ctype, ver, ln = stream[i], int.from_bytes(stream[i + 1:i + 3], "big"), \
            int.from_bytes(stream[i + 3:i + 5], "big")
        if ctype not in (20, 21, 22, 23) or ver not in (0x0301, 0x0302, 0x0303) \
                or i + 5 + ln > len(stream):
            break
        recs.append((ctype, ver, ln))
        i += 5 + ln
    return recs, len(stream) - i


def packet_capture(h, ns, iface):
    c = PacketCapture(ns, iface)
    h._push("capture on %s in %s" % (iface, ns), c.stop)
    return c


# ==========================================================================
# HTTP (layer 7) helpers for test_http.py (added; nothing above depends on
# them): the HTTP/1.1 backend (http_backend.py) and the HTTP clients
# (http_client.py), both run as separate processes like serve/client above.

HTTP_BACKEND = os.path.join(HERE, "http_backend.py")
HTTP_CLIENT = os.path.join(HERE, "http_client.py")


class HttpBackend:
    """http_backend.py running: .addr, .log_path; .events() reads its log."""

    def __init__(self, mode, name, listen, workdir, delay=None, status=None, seed=None,
                 fail_rate=None, cgroup=None, netns=None):
        self.mode, self.name = mode, name
        base = os.path.join(workdir or "/tmp", "%s.%s" % (unique_name(), name))
        self.log_path = base + ".log"
        self.err_path = base + ".stderr"
        open(self.log_path, "w").close()
        argv = [PYTHON, HTTP_BACKEND, "--mode", mode, "--name", name, "--listen", listen,
                "--log", self.log_path, "--tag", run_prefix() + "httpsrv"]
        if delay is not None:
            argv += ["--delay", str(delay)]
        if status is not None:
            argv += ["--status", str(status)]
        if seed is not None:
            argv += ["--seed", str(seed)]
        if fail_rate is not None:
            argv += ["--fail-rate", str(fail_rate)]
        self._err = open(self.err_path, "wb")
        self.proc = spawn(in_cgroup_argv(cgroup, netns_argv(netns, argv)), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=self._err)
        line = b""
        import select
        if select.select([self.proc.stdout], [], [], 10)[0]:
            line = self.proc.stdout.readline()
        try:
            ev = json.loads(line)
        except ValueError:
            self.stop()
            raise RuntimeError("http backend %s (%s on %s) did not start: %s"
                               % (name, mode, listen, self.stderr()))
        self.addr = ev["addr"]

    def __repr__(self):
        return "HttpBackend(%s %s %s)" % (self.name, self.mode, self.addr)

    def events(self, kind=None):
        out = []
        try:
            with open(self.log_path) as f:
                for line in f:
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue
                    if kind is None or e.get("event") == kind:
                        out.append(e)
        except OSError:
            pass
        return out

    def requests(self):
        return self.events("request")

    def conns(self):
        return self.events("conn")

    def bad_requests(self):
        return self.events("bad_request")

    def stderr(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        stop_process(self.proc, 3.0)
        self._err.close()
        try:
            self.proc.stdout.close()
        except OSError:
            pass


def http_backend(h, mode, name, listen=None, **kw):
    """Start http_backend.py (torn down with h); listen defaults to a free
    127.0.0.1 port. kw: delay, status, seed, fail_rate, cgroup, netns."""
    if listen is None:
        listen = "127.0.0.1:%d" % free_port()
    b = HttpBackend(mode, name, listen, h.workdir, **kw)
    h.servers.append(b)     # the report hook attaches its stderr on failure
    h._push("http backend %s" % name, b.stop)
    return b


def _run_json(argv, timeout):
    p = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return _client_result(p, timeout)


def http_requests(connect, cgroup=None, timeout=5.0, wait=None, netns=None, **spec):
    """http_client.py requests (in cgroup): spec keys as documented there
    (n, method, path, paths, headers, header_list, body, body_len, chunked,
    keepalive, concurrency, detail, host). Returns its JSON (+ rc, stderr)."""
    spec.setdefault("timeout", timeout)
    argv = [PYTHON, HTTP_CLIENT, "requests", "--connect", connect, "--spec", json.dumps(spec),
            "--timeout", str(timeout), "--tag", run_prefix() + "httpcli"]
    n = int(spec.get("n", 1))
    conc = int(spec.get("concurrency", 1))
    return _run_json(in_cgroup_argv(cgroup, netns_argv(netns, argv)),
                     wait if wait is not None else 20 + timeout * (1 + n // max(conc, 1)))


def http_raw(connect, script, cgroup=None, timeout=5.0):
    """http_client.py raw (in cgroup): one connection driven by script (a list
    of steps: send / recv_until / recv_n / recv_eof / shut_wr / sleep).
    Text is latin-1 bytes. Returns its JSON (+ rc, stderr)."""
    argv = [PYTHON, HTTP_CLIENT, "raw", "--connect", connect, "--script", json.dumps(script),
            "--timeout", str(timeout), "--tag", run_prefix() + "httpraw"]
    total = sum(float(s.get("timeout", timeout)) + float(s.get("sleep", 0)) for s in script)
    return _run_json(in_cgroup_argv(cgroup, argv), total + 20)


def parse_responses(data):
    """Raw response bytes (latin-1 text or bytes) -> ([{"status", "version",
    "reason", "headers" {lower: value}, "header_list", "body" (bytes),
    "json" (or None)}], leftover bytes). Frames by Content-Length, chunked,
    or to the end (no length: the rest is the body). 1xx are included."""
    if isinstance(data, str):
        data = data.encode("latin-1")
    out = []
    i = 0
    while i < len(data):
        end = data.find(b"\r\n\r\n", i)
        if end < 0:
            break
        head = data[i:end].decode("latin-1").split("\r\n")
        version, _, rest = head[0].partition(" ")
        code, _, reason = rest.partition(" ")
        hl = []
        for line in head[1:]:
            n, _, v = line.partition(":")
            hl.append((n, v.strip()))
        hd = {}
        for n, v in hl:
            hd[n.lower()] = v if n.lower() not in hd else hd[n.lower()] + ", " + v
        try:
            status = int(code)
        except ValueError:
            status = None
        j = end + 4
        body = b""
        if status is not None and (100 <= status < 200 or status in (204, 304)):
            pass
        elif "chunked" in hd.get("transfer-encoding", "").lower():
            while True:
                le = data.find(b"\r\n", j)
                if le < 0:
                    j = len(data)
                    break
                size = int(data[j:le].split(b";")[0] or b"0", 16)
                j = le + 2
                if size == 0:
                    te = data.find(b"\r\n\r\n", j - 2)
                    j = te + 4 if te >= 0 else len(data)
                    break
                body += data[j:j + size]
                j += size + 2
        elif "content-length" in hd:
            n = int(hd["content-length"].split(",")[0])
            body = data[j:j + n]
            j += n
        else:
            body = data[j:]
            j = len(data)
        try:
            js = json.loads(body) if body else None
        except ValueError:
            js = None
        out.append({"status": status, "version": version, "reason": reason, "headers": hd,
                    "header_list": hl, "body": body, "json": js})
        i = j
    return out, data[i:]


# --------------------------------------------------------------------------
# DNS for the discovery tests: dnsmasq on 127.0.0.0/8 (never the machine's
# resolver: weftd is given its address in agent.dns_servers), and an
# in-process "upstream" that answers every query with one rcode.

def dns_query(addr, name, qtype=1, timeout=1.0):
    """One UDP query -> (rcode, answer count), or None without an answer."""
    import struct
    fam, host, port = split_addr(addr)
    q = struct.pack(">HHHHHH", random.randint(0, 65535), 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(q, (host, port))
            r, _ = s.recvfrom(4096)
        except OSError:
            return None
    return r[3] & 0x0f, struct.unpack(">H", r[6:8])[0]


class DnsResponder:
    """A UDP DNS server thread answering every query with .rcode and no
    record (2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED): dnsmasq's upstream for
    names it has no data for."""

    def __init__(self, rcode=2):
        self.rcode = rcode
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                q, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(q) < 12:
                continue
            i = 12
            while i < len(q) and q[i]:
                i += q[i] + 1
            hdr = bytearray(q[:12])
            hdr[2] = 0x80 | (q[2] & 0x01)
            hdr[3] = 0x80 | self.rcode
            hdr[6:12] = b"\0" * 6
            self.queries += 1
            try:
                self.sock.sendto(bytes(hdr) + q[12:i + 5], peer)
            except OSError:
                pass

    def stop(self):
        self._stop.set()
        self._t.join(2)
        self.sock.close()


class DnsServer:
    """dnsmasq on a random 127.53.x.y address and port: an addn-hosts file
    the test rewrites (set_hosts: SIGHUP), SRV records (set_srv: dnsmasq
    reads them from its command line, so it restarts on the same address),
    answers with TTL `ttl`, no cache. Names under `domain` that it has no
    data for are NXDOMAIN, or go to `upstream` (a DnsResponder address)."""

    def __init__(self, workdir, hosts=(), srv=(), ttl=1, domain="internal", upstream=None):
        self.name = unique_name("dns")
        self.dir = os.path.join(workdir, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.host = "127.53.%d.%d" % (random.randint(0, 255), random.randint(1, 254))
        self.port = free_port(self.host)
        self.addr = "%s:%d" % (self.host, self.port)
        self.hosts_path = os.path.join(self.dir, "hosts")
        self.log_path = os.path.join(self.dir, "dnsmasq.log")
        self.srv, self.ttl, self.domain, self.upstream = list(srv), ttl, domain, upstream
        self.proc = None
        self._write_hosts(hosts)
        self.start()

    def _write_hosts(self, hosts):
        """hosts: [(ip, name), ...]"""
        tmp = self.hosts_path + ".tmp"
        with open(tmp, "w") as f:
            for ip, name in hosts:
                f.write("%s %s\n" % (ip, name))
        os.rename(tmp, self.hosts_path)

    def argv(self):
        a = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=", "--user=root",
             "--port=%d" % self.port, "--listen-address=%s" % self.host, "--bind-interfaces",
             "--no-resolv", "--no-hosts", "--addn-hosts=%s" % self.hosts_path, "--cache-size=0",
             "--local-ttl=%d" % self.ttl, "--log-queries", "--log-facility=%s" % self.log_path]
        if self.upstream:
            fam, host, port = split_addr(self.upstream)
            a.append("--server=/%s/%s#%d" % (self.domain, host, port))
        else:
            a.append("--local=/%s/" % self.domain)
        # (name, target, port, priority, weight)
        a += ["--srv-host=%s,%s,%d,%d,%d" % r for r in self.srv]
        return a

    def start(self, timeout=10.0):
        self.proc = spawn(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(self.dir, "stderr"), "ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited with %s: %s" % (self.proc.returncode, self.log()))
            if dns_query(self.addr, "weft-ready." + self.domain, timeout=0.2) is not None:
                return
        raise RuntimeError("dnsmasq on %s does not answer: %s" % (self.addr, self.log()))

    def log(self):
        out = ""
        for f in ("stderr", "dnsmasq.log"):
            try:
                with open(os.path.join(self.dir, f), errors="replace") as fh:
                    out += fh.read()[-3000:]
            except OSError:
                pass
        return out

    def set_hosts(self, hosts):
        self._write_hosts(hosts)
        self.proc.send_signal(signal.SIGHUP)

    def set_srv(self, srv):
        self.srv = list(srv)
        self.stop()
        self.start()

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc, 3.0)
            self.proc = None


def dns_server(h, **kw):
    """A DnsServer torn down with h (kw: hosts, srv, ttl, domain, upstream)."""
    d = DnsServer(h.workdir, **kw)
    h._push("dnsmasq %s" % d.addr, d.stop)
    return d


def dns_responder(h, rcode=2):
    r = DnsResponder(rcode)
    h._push("dns responder %s" % r.addr, r.stop)
    return r
