# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""`weftctl check [-c FILE] [--json]` (issue 13): what this node lacks for
weftd, without weftd. Here, as root, everything is there; then each thing
taken away in turn: the API's RBAC (403 for pods), the token (401), the API
itself, bpffs at the pin path (a pin path on /tmp; nothing mounted at
/sys/fs/bpf, in a mount namespace of its own), the capabilities (a process
as nobody), a weftd already on the pin path and one that died. Every run
also checks that weftctl check changed nothing: no pin directory, nothing
new under /sys/fs/bpf, no mount.

The fake API server is kubeapi.py (as in test_kubernetes.py); everything a
test makes is registered with its harness and removed on every exit path.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from kubeapi import KubeAPI
from weft_harness import BPFFS, free_port, http_get, run_prefix, unique_name, wait_for

NODE = "node-a"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CAPS = {"CAP_BPF", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}
LINE = re.compile(r"^(ok  |warn|FAIL)  ([a-z0-9_.]+):( |$)")


@pytest.fixture
def ctl(weft_env):
    if not os.access(weft_env.weftctl, os.X_OK):
        pytest.skip("weftctl binary %s is missing (run `make`, or set WEFTCTL=)" % weft_env.weftctl)
    return weft_env.weftctl


def write_conf(weft, pin=None, extra="", agent_extra="max_connections = 1000;", where=None):
    """A config of this test (its own pin path, unique per run); -> (path, pin)."""
    pin = pin or os.path.join(BPFFS, unique_name("check"))
    path = os.path.join(where or weft.workdir, unique_name("check") + ".conf")
    with open(path, "w") as f:
        f.write('agent: { admin = "127.0.0.1:%d"; bpf_pin_path = "%s"; %s };\n%s'
                % (free_port(), pin, agent_extra, extra))
    return path, pin


def kube_group(api, token_file=None, node=NODE):
    return ('kubernetes: { api = "%s"; token_file = "%s"; ca_file = "%s"; node_name = "%s"; };\n'
            % (api.url, token_file or api.token_file, api.ca_file, node))


def host_state():
    """What a check could change that others on this machine do not: this
    run's names under /sys/fs/bpf, and the mounts of bpffs and under
    /sys/fs (other tests make their own netns mounts, other runs their pins)."""
    mine = sorted(e for e in os.listdir(BPFFS) if e.startswith(run_prefix()))
    with open("/proc/self/mountinfo") as f:
        mnts = sorted(l.split(" - ")[0].split()[4] + " " + l.split(" - ")[1].split()[0] for l in f
                      if " - bpf " in l or l.split()[4].startswith("/sys/fs"))
    return mine, mnts


def run(ctl, conf, *args, env=None, wrap=(), timeout=30):
    e = dict(os.environ)
    e.pop("NODE_NAME", None)
    e.update(env or {})
    return subprocess.run(list(wrap) + [ctl, "check", "-c", conf] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=e)


def check(ctl, conf, pin=None, **kw):
    """Runs weftctl check twice (text and --json) and asserts it changed
    nothing. -> (returncode, text, {name: check})."""
    before = host_state()
    r = run(ctl, conf, **kw)
    j = run(ctl, conf, "--json", **kw)
    assert host_state() == before, "weftctl check changed the host"
    if pin:
        assert not os.path.lexists(pin), "weftctl check made %s" % pin
    assert r.returncode == j.returncode, (r, j)
    doc = json.loads(j.stdout)
    assert set(doc) == {"checks"}
    checks = {c["name"]: c for c in doc["checks"]}
    assert len(checks) == len(doc["checks"]), "a check name twice: %s" % j.stdout
    for c in doc["checks"]:
        assert set(c) == {"name", "status", "detail", "fix"} and c["status"] in ("ok", "warn", "fail"), c
    # the text says the same, one entry per check, within 80 columns
    heads = [LINE.match(l) for l in r.stdout.splitlines() if not l.startswith("      ")]
    assert all(heads), r.stdout
    assert [(m.group(2), m.group(1).strip().lower()) for m in heads] == \
        [(c["name"], c["status"]) for c in doc["checks"]], (r.stdout, j.stdout)
    for l in r.stdout.splitlines():
        assert len(l) <= 80 or " " not in l.strip(), "line over 80 columns: %r" % l
    assert "\033" not in r.stdout, "colour on a pipe"
    assert r.stderr == "" and j.stderr == "", (r.stderr, j.stderr)
    return r.returncode, r.stdout, checks


def flat(text):
    """The text report with its wrapping undone (runs of white space as one space)."""
    return re.sub(r"\s+", " ", text)


def statuses(checks):
    return {n: c["status"] for n, c in checks.items()}


def test_this_node_is_ready(weft, ctl):
    conf, pin = write_conf(weft)
    rc, out, checks = check(ctl, conf, pin)
    assert rc == 0, out
    bad = {n: c for n, c in checks.items() if c["status"] != "ok"}
    assert not bad, out
    names = set(checks)
    assert {"config", "kernel", "btf", "cgroup2", "bpffs", "capabilities", "nofile", "agent"} <= names, names
    assert {"bpf.connect", "bpf.getpeername", "bpf.sockops", "bpf.sk_msg", "bpf.sockhash", "bpf.sk_storage",
            "bpf.link", "bpf.set_retval", "bpf.netns_cookie_sockops"} <= names, names
    assert not any(n.startswith("k8s.") for n in names), names
    assert "weft needs 5.18 or later, for bpf_set_retval in cgroup/connect" in checks["kernel"]["detail"]
    assert checks["bpf.set_retval"]["detail"] == "bpf_set_retval in cgroup/connect (5.18)"
    assert checks["cgroup2"]["detail"].startswith(weft.root), checks["cgroup2"]
    assert checks["bpffs"]["detail"] == "%s is bpffs; weftd will make the pin path %s there" % (BPFFS, pin)
    assert checks["agent"]["detail"] == "no weftd on %s (no pins there)" % pin
    caps = set(re.findall(r"CAP_[A-Z_]+", checks["capabilities"]["detail"]))
    assert caps == CAPS, checks["capabilities"]
    assert flat(out).startswith("ok config: %s: valid (0 services, 0 cgroups) ok kernel: " % conf), out


def test_usage(weft, ctl):
    conf, _ = write_conf(weft)
    r = subprocess.run([ctl, "check", "-c", conf, "extra"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "check takes no arguments" in r.stderr, r
    r = subprocess.run([ctl, "-c", conf, "status"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "-c FILE is for 'check' only" in r.stderr, r
    r = subprocess.run([ctl, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "weftctl check [-c FILE] [--json]" in r.stdout, r


def test_config_errors_as_weftd_prints_them(weft, ctl):
    """A config weftd would refuse: the same lines weftd --check prints, and
    the host checks still run. A kubernetes group without node_name (and no
    $NODE_NAME) is one of them."""
    conf, pin = write_conf(weft, extra='kubernetes: { api = "https://127.0.0.1:6443"; };\n')
    rc, out, checks = check(ctl, conf, pin)
    assert rc == 1, out
    env = dict(os.environ)
    env.pop("NODE_NAME", None)
    weftd = subprocess.run([weft.env.weftd, "-c", conf, "--check"], capture_output=True, text=True, timeout=30,
                           env=env)
    assert weftd.returncode == 2
    lines = weftd.stderr.splitlines()
    assert len(lines) == 1 and "kubernetes.node_name: not set and $NODE_NAME is empty; set it" in lines[0], lines
    assert checks["config"]["status"] == "fail"
    assert checks["config"]["detail"] == "%s: 1 problem, as weftd prints them:\n%s" % (conf, lines[0])
    assert flat(out).startswith("FAIL config: %s: 1 problem, as weftd prints them: %s fix: correct the file"
                                % (conf, flat(lines[0]))), out
    assert checks["kernel"]["status"] == "ok" and checks["capabilities"]["status"] == "ok"
    assert "bpffs" not in checks and "k8s.api" not in checks

    rc, out, checks = check(ctl, os.path.join(weft.workdir, "missing.conf"))
    assert rc == 1
    assert "cannot open" in checks["config"]["detail"] and "-c FILE" in checks["config"]["fix"], checks["config"]


def test_kubernetes_all_ok(weft, ctl):
    api = KubeAPI(weft)
    api.start()
    api.upsert(api.node(NODE, ["127.0.0.1"]))
    conf, pin = write_conf(weft, extra=kube_group(api))
    rc, out, checks = check(ctl, conf, pin)
    assert rc == 0, out
    assert all(c["status"] == "ok" for c in checks.values()), out
    for res in ("services", "endpointslices", "pods", "nodes"):
        assert checks["k8s.rbac." + res]["detail"].startswith("list and watch %s allowed" % res), checks
    assert "spec.nodeName=%s" % NODE in checks["k8s.rbac.pods"]["detail"]
    assert checks["k8s.api"]["detail"] == "%s answers over TLS (its certificate verified with %s)" \
        % (api.url, api.ca_file)
    assert checks["k8s.node"]["detail"] == "%s is a Node of this cluster" % NODE
    # what it asked: GETs only, a list and a watch per resource, the pods of this node only, with a valid token
    reqs = [r for r in api.requests if r.get("verb")]
    assert {(r["verb"], r["path"]) for r in reqs} == {
        (v, p) for v in ("list", "watch") for p in ("/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices",
                                                    "/api/v1/pods", "/api/v1/nodes")}, reqs
    assert all(r["auth_valid"] for r in reqs), reqs
    pods = [r for r in reqs if r["path"] == "/api/v1/pods"]
    assert all(r["query"]["fieldSelector"].startswith("spec.nodeName=%s" % NODE) for r in pods), pods
    assert all(r["query"].get("limit") == "1" for r in reqs if r["verb"] == "list"), reqs
    assert not api.errors, api.errors


def test_rbac_without_pods(weft, ctl):
    """The ClusterRole lacks pods: FAIL naming pods and the exact rule."""
    api = KubeAPI(weft, forbidden=("pods",))
    api.start()
    api.upsert(api.node(NODE, ["127.0.0.1"]))
    conf, pin = write_conf(weft, extra=kube_group(api))
    rc, out, checks = check(ctl, conf, pin)
    assert rc == 1, out
    st = statuses(checks)
    assert st["k8s.rbac.pods"] == "fail", out
    assert [n for n, s in st.items() if s != "ok"] == ["k8s.rbac.pods"], out
    c = checks["k8s.rbac.pods"]
    assert c["detail"].startswith("403 Forbidden to list and watch pods: pods is forbidden: User "
                                  "\"system:serviceaccount:weft-system:weftd\" cannot list resource \"pods\""), c
    assert c["fix"].endswith('- {apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]}'), c
    assert "deploy/kubernetes/10-rbac.yaml" in c["fix"], c
    assert 'FAIL k8s.rbac.pods: 403 Forbidden to list and watch pods: pods is forbidden:' in flat(out), out
    assert '- {apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"]} ok k8s.rbac.nodes:' in flat(out), out

    # only the watch verb missing (one 403, for the next request of endpointslices: the list or the watch)
    api.allow("pods")
    api.fail("endpointslices", 403, times=1)
    r = run(ctl, conf, "--json")
    assert r.returncode == 1, r
    c = {x["name"]: x for x in json.loads(r.stdout)["checks"]}["k8s.rbac.endpointslices"]
    assert c["status"] == "fail" and '["discovery.k8s.io"], resources: ["endpointslices"]' in c["fix"], c
    assert re.search(r'verbs: \["(list|watch)"\]\}$', c["fix"]), c


def test_wrong_token(weft, ctl):
    api = KubeAPI(weft)
    api.start()
    bad = os.path.join(weft.workdir, "token")
    with open(bad, "w") as f:
        f.write("not-the-token\n")
    conf, pin = write_conf(weft, extra=kube_group(api, token_file=bad))
    rc, out, checks = check(ctl, conf, pin)
    assert rc == 1, out
    assert checks["k8s.api"]["status"] == "ok"
    assert checks["k8s.token"]["status"] == "fail"
    assert checks["k8s.token"]["detail"] == "the API server rejected the token in %s (401 Unauthorized)" % bad
    assert not any(n.startswith("k8s.rbac") for n in checks), checks

    # an empty token is never sent
    open(bad, "w").close()
    since = len(api.requests)
    rc, out, checks = check(ctl, conf, pin)
    assert rc == 1 and checks["k8s.token"]["detail"] == "kubernetes.token_file '%s' is empty" % bad, checks
    assert len(api.requests) == since


def test_api_down(weft, ctl):
    api = KubeAPI(weft)
    api.start()
    conf, pin = write_conf(weft, extra=kube_group(api))
    api.stop()
    rc, out, checks = check(ctl, conf, pin)
    assert rc == 1, out
    c = checks["k8s.api"]
    assert c["status"] == "fail", c
    assert c["detail"] == "%s unreachable: Kubernetes API 127.0.0.1:%d: cannot connect: Connection refused" \
        % (api.url, api.port), c
    assert "nothing listens there" in c["fix"]
    assert not any(n.startswith("k8s.rbac") or n == "k8s.token" for n in checks), checks


def test_pin_path_not_on_bpffs(weft, ctl):
    """A pin path on another filesystem is what weftd refuses: FAIL, and
    nothing is made there."""
    pin = os.path.join(weft.workdir, "pins", "weft")
    conf, _ = write_conf(weft, pin=pin)
    rc, out, checks = check(ctl, conf, pin)
    assert rc == 1, out
    c = checks["bpffs"]
    assert c["status"] == "fail"
    assert c["detail"] == "agent.bpf_pin_path %s is not on a BPF filesystem (%s is not bpffs): weftd refuses it" \
        % (pin, weft.workdir), c
    assert not os.path.exists(os.path.join(weft.workdir, "pins"))
    # weftd says no too
    d = weft.weftd([], [], start=False)
    with open(d.conf_path, "w") as f:
        f.write(d.config_text.replace('bpf_pin_path = "%s"' % d.pin_path, 'bpf_pin_path = "%s"' % pin))
    d.start(wait=False)
    assert d.proc.wait(10) == 1
    assert "is not on a BPF filesystem ('%s' is not bpffs)" % weft.workdir in d.run_log()


def test_weftd_would_mount_bpffs(weft, ctl):
    """Nothing mounted at /sys/fs/bpf (a mount namespace of its own): weftd
    would mount bpffs there; weftctl check says so and mounts nothing."""
    conf, pin = write_conf(weft)
    script = ('while mountpoint -q {b}; do umount -l {b} || exit 97; done; '
              '"$@"; rc=$?; if mountpoint -q {b}; then echo MOUNTED >&2; fi; '
              'ls -A {b} >&2; exit $rc').format(b=BPFFS)
    wrap = ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, "sh"]
    rc, out, checks = check(ctl, conf, pin, wrap=wrap)
    assert rc == 0, out
    assert checks["bpffs"] == {
        "name": "bpffs", "status": "ok", "fix": "",
        "detail": "nothing is mounted at /sys/fs/bpf: weftd will mount bpffs there for agent.bpf_pin_path %s "
                  "(it needs CAP_SYS_ADMIN for that)" % pin}
    assert checks["agent"]["status"] == "ok", checks["agent"]


def test_without_capabilities(weft, ctl):
    """As nobody with no capabilities: FAIL naming each one weftd uses (the
    same set deploy/weftd.service grants), and the BPF features unprobed."""
    d = tempfile.mkdtemp(prefix=unique_name("check") + "-")
    weft._push("dir %s" % d, lambda: shutil.rmtree(d, ignore_errors=True))
    os.chmod(d, 0o755)
    conf, pin = write_conf(weft, where=d)
    os.chmod(conf, 0o644)
    wrap = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all"]
    rc, out, checks = check(ctl, conf, pin, wrap=wrap)
    assert rc == 1, out
    c = checks["capabilities"]
    assert c["status"] == "fail", c
    assert c["detail"].startswith("this process (uid %d) lacks CAP_BPF (load programs, make maps), "
                                  % int(subprocess.check_output(["id", "-u", "nobody"]))), c
    assert set(re.findall(r"CAP_[A-Z_]+", c["detail"])) == CAPS, c
    assert "FAIL capabilities: this process (uid" in flat(out), out
    assert checks["bpf"]["status"] == "warn" and "not allowed to load BPF programs" in checks["bpf"]["detail"]
    assert not any(n.startswith("bpf.") for n in checks), checks
    # the same five as the systemd unit grants, and as the DaemonSet's comment explains
    with open(os.path.join(REPO, "deploy", "weftd.service")) as f:
        unit = f.read()
    for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
        m = re.search(r"^%s=(.*)$" % key, unit, re.M)
        assert m and set(m.group(1).split()) == CAPS, (key, m and m.group(0))
    with open(os.path.join(REPO, "deploy", "kubernetes", "30-daemonset.yaml")) as f:
        ds = f.read()
    assert "privileged: true" in ds and CAPS <= set(re.findall(r"CAP_[A-Z_]+", ds)), "30-daemonset.yaml"


def test_low_descriptor_limit_warns(weft, ctl):
    conf, pin = write_conf(weft, agent_extra="")
    rc, out, checks = check(ctl, conf, pin, wrap=["prlimit", "--nofile=4096:4096"])
    assert rc == 0, out   # a warning is not a failure
    c = checks["nofile"]
    assert c["status"] == "warn", c
    assert c["detail"] == ("hard limit 4096 allows about 768 proxied connections (4 descriptors each with "
                           "agent.splice); agent.max_connections is 65536"), c
    assert "LimitNOFILE=" in c["fix"]


def test_agent_running_then_gone(weft, ctl):
    """A weftd on the pin path is reported (and left alone); once killed, its
    stale pins are a warning saying what they do and how to remove them."""
    cg = weft.cgroup(tag="app")
    d = weft.weftd([cg], [])
    rc, out, checks = check(ctl, d.conf_path)
    assert rc == 0, out
    c = checks["agent"]
    assert c["status"] == "ok", c
    assert re.fullmatch(r"weftd runs on %s \(heartbeat \d+\.\d s ago; admin %s: /ready 200\); another weftd "
                        r"with this pin path would not start" % (re.escape(d.pin_path), re.escape(d.admin)),
                        c["detail"]), c
    assert checks["bpffs"]["detail"] == "agent.bpf_pin_path %s is on bpffs" % d.pin_path
    assert d.running() and http_get(d.admin, "/ready")[0] == 200

    d.kill9()

    def agent_check():
        r = run(ctl, d.conf_path, "--json")
        return {x["name"]: x for x in json.loads(r.stdout)["checks"]}["agent"]

    assert wait_for(lambda: agent_check()["status"] == "warn", 10, 0.2), agent_check()
    rc, out, checks = check(ctl, d.conf_path)
    assert rc == 0, out
    c = checks["agent"]
    assert re.match(r"%s holds the pins of a weftd that is gone or wedged \(heartbeat \d+ s old\): its "
                    r"programs stay attached and let enrolled cgroups' connects go direct \(fail_mode \"open\"\)"
                    % re.escape(d.pin_path), c["detail"]), c
    assert c["fix"] == ("restart weftd (a new one removes stale pins first), or remove them to detach the "
                        "programs: rm -rf %s" % d.pin_path), c
