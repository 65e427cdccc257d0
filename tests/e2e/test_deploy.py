# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""deploy/: what nobody can run here (a cluster, an image build) checked by
what can: every YAML document of deploy/kubernetes/ parsed and held to the
fields the DaemonSet relies on, the ConfigMap's weft.conf through
`weftd --check`, the Containerfile's packages against Debian 12's and against
the libraries build/weftd really links, and deploy/weftd.service through
`systemd-analyze verify`. No kubectl, no docker, no root needed.
"""

import fnmatch
import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KDIR = os.path.join(REPO, "deploy", "kubernetes")
CONTAINERFILE = os.path.join(REPO, "deploy", "Containerfile")
UNIT = os.path.join(REPO, "deploy", "weftd.service")
NS = "weft-system"

# The kubelet's pod cgroups, one per layout (docs/config.md "Kubernetes pods").
POD_CGROUPS = [
    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3f0e2c1a_9b7d_4e0f_8a51_0c2f6d1b9e77.slice",
    "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod3f0e2c1a_9b7d_4e0f_8a51_0c2f6d1b9e77.slice",
    "kubepods.slice/kubepods-pod3f0e2c1a_9b7d_4e0f_8a51_0c2f6d1b9e77.slice",
    "kubepods/burstable/pod3f0e2c1a-9b7d-4e0f-8a51-0c2f6d1b9e77",
    "kubepods/besteffort/pod3f0e2c1a-9b7d-4e0f-8a51-0c2f6d1b9e77",
    "kubepods/pod3f0e2c1a-9b7d-4e0f-8a51-0c2f6d1b9e77",
]
# ... and what must not be enrolled by itself (a QoS class is not a pod).
NOT_POD_CGROUPS = [
    "kubepods.slice", "kubepods.slice/kubepods-burstable.slice",
    "kubepods.slice/kubepods-besteffort.slice", "kubepods", "kubepods/burstable",
    "kubepods/besteffort", "system.slice/kubelet.service",
]


def _skip_or_fail(reason):
    """As conftest: CI (WEFT_REQUIRE_PRIV=1) fails where a run elsewhere may skip."""
    if os.environ.get("WEFT_REQUIRE_PRIV") == "1":
        pytest.fail("WEFT_REQUIRE_PRIV=1 but: " + reason, pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------
# the manifests

class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps
    the last one silently; the API server would see only that one too)."""


def _no_dup_mapping(loader, node, deep=False):
    seen = set()
    for k, _ in node.value:
        key = loader.construct_object(k, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), k.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_dup_mapping)


def load_docs():
    """[(file, doc)] for every YAML document in deploy/kubernetes/, in the
    order `kubectl apply -f deploy/kubernetes/` uses (file names, sorted)."""
    files = sorted(glob.glob(os.path.join(KDIR, "*.yaml")) + glob.glob(os.path.join(KDIR, "*.yml")))
    assert files, "no manifests in %s" % KDIR
    out = []
    for f in files:
        with open(f) as fh:
            for doc in yaml.load_all(fh, Loader=_StrictLoader):
                if doc is not None:
                    out.append((os.path.basename(f), doc))
    return out


@pytest.fixture(scope="module")
def docs():
    return load_docs()


def one(docs, kind):
    found = [d for _, d in docs if d["kind"] == kind]
    assert len(found) == 1, "expected one %s, found %d" % (kind, len(found))
    return found[0]


@pytest.fixture(scope="module")
def ds(docs):
    return one(docs, "DaemonSet")


@pytest.fixture(scope="module")
def pod(ds):
    return ds["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def weftd_ctr(pod):
    assert [c["name"] for c in pod["containers"]] == ["weftd"]
    return pod["containers"][0]


@pytest.fixture(scope="module")
def weft_conf(docs):
    cm = one(docs, "ConfigMap")
    assert cm["metadata"]["name"] == "weft-config"
    return cm["data"]["weft.conf"]


def conf_value(conf, key):
    """The value of `key = value;` in weft.conf (first occurrence outside comments)."""
    for line in conf.splitlines():
        line = line.split("#", 1)[0]
        m = re.match(r'\s*%s\s*[=:]\s*("[^"]*"|[^;]+);' % re.escape(key), line)
        if m:
            return m.group(1).strip().strip('"')
    return None


def test_documents_and_order(docs):
    kinds = [d["kind"] for _, d in docs]
    assert sorted(kinds) == sorted(["Namespace", "ServiceAccount", "ClusterRole",
                                    "ClusterRoleBinding", "ConfigMap", "DaemonSet"]), kinds
    # the namespace exists before anything is created in it
    assert kinds[0] == "Namespace", kinds
    for f, d in docs:
        assert d.get("apiVersion") and d.get("metadata", {}).get("name"), (f, d)
        if d["kind"] in ("ServiceAccount", "ConfigMap", "DaemonSet"):
            assert d["metadata"].get("namespace") == NS, (f, d["kind"])
        else:
            assert "namespace" not in d["metadata"], (f, d["kind"])
    nsdoc = one(docs, "Namespace")
    assert nsdoc["metadata"]["name"] == NS
    # a privileged pod is refused in a namespace that enforces baseline/restricted
    assert nsdoc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_rbac_exactly_read_only(docs, pod):
    role = one(docs, "ClusterRole")
    got = set()
    for r in role["rules"]:
        assert set(r) == {"apiGroups", "resources", "verbs"}, r  # no resourceNames, nonResourceURLs
        for g in r["apiGroups"]:
            for res in r["resources"]:
                for v in r["verbs"]:
                    got.add((g, res, v))
    want = {(g, res, v) for g, res in [("", "services"), ("", "pods"), ("", "nodes"),
                                       ("discovery.k8s.io", "endpointslices")]
            for v in ("get", "list", "watch")}
    assert got == want, "extra: %s; missing: %s" % (sorted(got - want), sorted(want - got))

    sa = one(docs, "ServiceAccount")
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": NS}]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert pod.get("automountServiceAccountToken", True) is True  # the token API discovery will use


def test_daemonset_pod(ds, pod, weftd_ctr):
    sel = ds["spec"]["selector"]["matchLabels"]
    labels = ds["spec"]["template"]["metadata"]["labels"]
    assert sel and all(labels.get(k) == v for k, v in sel.items()), (sel, labels)
    assert pod["hostNetwork"] is True
    assert pod["hostPID"] is True
    assert pod["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in pod["tolerations"], "must tolerate every taint: %r" % pod["tolerations"]
    sc = weftd_ctr["securityContext"]
    if not sc.get("privileged"):
        caps = set(sc["capabilities"]["add"])
        need = {"BPF", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"}
        assert need <= {c.replace("CAP_", "") for c in caps}, caps
    assert weftd_ctr["command"] == ["/usr/bin/weftd"]
    assert weftd_ctr["args"] == ["-c", "/etc/weft/weft.conf"]
    req = weftd_ctr["resources"]["requests"]
    assert req.get("cpu") and req.get("memory"), req
    assert weftd_ctr["resources"]["limits"].get("memory")
    env = {e["name"]: e for e in weftd_ctr["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_volumes(pod, weftd_ctr):
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in weftd_ctr["volumeMounts"]}
    assert {m["name"] for m in mounts.values()} == set(vols), "unused or undeclared volumes"

    def host(path):
        return vols[mounts[path]["name"]]["hostPath"]["path"]

    bpf = mounts["/sys/fs/bpf"]
    assert host("/sys/fs/bpf") == "/sys/fs/bpf"
    assert bpf["mountPropagation"] == "Bidirectional" and not bpf.get("readOnly")
    # the API server accepts Bidirectional only in a privileged container
    assert weftd_ctr["securityContext"].get("privileged") is True
    assert host("/sys/fs/cgroup") == "/sys/fs/cgroup"
    assert mounts["/sys/fs/cgroup"].get("mountPropagation", "None") in ("None", "HostToContainer")
    assert host("/run/netns") == "/run/netns"
    assert mounts["/run/netns"]["mountPropagation"] == "HostToContainer"
    assert vols[mounts["/etc/weft"]["name"]]["configMap"]["name"] == "weft-config"
    assert mounts["/etc/weft"]["readOnly"] is True
    assert "/proc" not in mounts, "hostPID gives the host's /proc; mounting it again is not needed"


def test_probes_reach_the_admin_api(weftd_ctr, weft_conf):
    admin = conf_value(weft_conf, "admin")
    host, port = admin.rsplit(":", 1)
    # unauthenticated: never on the node's other addresses
    assert host == "127.0.0.1", admin
    for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/live")):
        g = weftd_ctr[probe]["httpGet"]
        # hostNetwork: the kubelet's 127.0.0.1 is weftd's
        assert (g["host"], int(g["port"]), g["path"]) == (host, int(port), path), (probe, g)


def test_rollout_and_shutdown(ds, pod, weftd_ctr, weft_conf):
    st = ds["spec"]["updateStrategy"]
    assert st["type"] == "RollingUpdate"
    assert st["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    # hostNetwork makes declared ports host ports: the surge pod would not fit beside the old one
    assert not weftd_ctr.get("ports"), weftd_ctr.get("ports")
    # SIGTERM drains for agent.drain_timeout_ms; the kubelet must wait longer
    drain_ms = int(conf_value(weft_conf, "drain_timeout_ms") or 10000)
    assert pod["terminationGracePeriodSeconds"] * 1000 >= drain_ms + 5000, (pod["terminationGracePeriodSeconds"], drain_ms)
    assert "lifecycle" not in weftd_ctr, "no preStop: SIGTERM drains"


def test_configmap_weft_conf_checks(weft_binaries, weft_conf, tmp_path):
    path = tmp_path / "weft.conf"
    path.write_text(weft_conf)
    pod_env = dict(os.environ, KUBERNETES_SERVICE_HOST="10.96.0.1", KUBERNETES_SERVICE_PORT="443",
                   NODE_NAME="node-a")
    r = subprocess.run([weft_binaries.weftd, "-c", str(path), "--check"], capture_output=True, text=True,
                       env=pod_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK (0 services, 4 cgroups)" in r.stdout, r.stdout
    assert conf_value(weft_conf, "fail_mode") == "open"
    assert conf_value(weft_conf, "bpf_pin_path") == "/sys/fs/bpf/weft"
    assert re.search(r"^services = \( \);", weft_conf, re.M)


def test_configmap_discovers_from_the_api(weft_binaries, weft_conf, tmp_path):
    """The ConfigMap turns discovery on: it passes weftd --check in the
    environment a DaemonSet pod has (the API's address from the service
    links, NODE_NAME from the downward API); outside it the only complaints
    are exactly those two missing values."""
    assert re.search(r"^\s*kubernetes:\s*\{\s*\};", weft_conf, re.M), weft_conf
    for key in ("api", "token_file", "ca_file", "node_name", "namespaces"):
        assert re.search(r"^\s*#\s+%s\s+=" % key, weft_conf, re.M), "key %s not shown" % key
    path = tmp_path / "weft.conf"
    path.write_text(weft_conf)
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "NODE_NAME")}
    pod_env = dict(env, KUBERNETES_SERVICE_HOST="10.96.0.1", KUBERNETES_SERVICE_PORT="443",
                   NODE_NAME="node-a")
    r = subprocess.run([weft_binaries.weftd, "-c", str(path), "--check"], capture_output=True, text=True,
                       env=pod_env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([weft_binaries.weftd, "-c", str(path), "--check"], capture_output=True, text=True,
                       env=env)
    errs = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    assert r.returncode == 2 and len(errs) == 2, errs
    assert "kubernetes.api: not set and $KUBERNETES_SERVICE_HOST is empty" in errs[0], errs
    assert "kubernetes.node_name: not set and $NODE_NAME is empty" in errs[1], errs


def _glob_match(glob_, path):
    """glob(3) semantics as weftd uses them: '*' never crosses a '/'."""
    g, p = glob_.split("/"), path.split("/")
    return len(g) == len(p) and all(fnmatch.fnmatchcase(pp, gg) for gg, pp in zip(g, p))


def test_configmap_globs_cover_both_kubelet_drivers(weft_conf):
    m = re.search(r"cgroups\s*=\s*\[(.*?)\];", weft_conf, re.S)
    globs = re.findall(r'"([^"]+)"', re.sub(r"#[^\n]*", "", m.group(1)))
    assert set(globs) == {"kubepods.slice/*/*pod*.slice", "kubepods.slice/kubepods-pod*.slice",
                          "kubepods/*/pod*", "kubepods/pod*"}, globs
    for p in POD_CGROUPS:
        assert any(_glob_match(g, p) for g in globs), p
    for p in NOT_POD_CGROUPS:
        assert not any(_glob_match(g, p) for g in globs), p


# --------------------------------------------------------------------------
# the image

def containerfile_stages():
    """[(FROM image, [instruction lines])] with continuation lines joined."""
    with open(CONTAINERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line.split()[1], []))
        else:
            stages[-1][1].append(line)
    return stages


def runtime_packages():
    image, lines = containerfile_stages()[-1]
    assert image == "debian:12-slim", image
    pkgs = []
    for l in lines:
        m = re.search(r"apt-get install (.*?)(&&|$)", l)
        if m:
            pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    assert pkgs, "no apt-get install in the runtime stage"
    return pkgs


def _debian_12():
    try:
        with open("/etc/debian_version") as f:
            return f.read().strip().startswith("12")
    except OSError:
        return False


def test_containerfile_layout():
    stages = containerfile_stages()
    assert len(stages) == 2 and stages[0][0].startswith("debian:12"), [s[0] for s in stages]
    build = " ".join(stages[0][1])
    assert "scripts/deps.sh --build" in build and "make -j" in build
    for b in ("weftd", "weftctl"):
        assert re.search(r"install -D -m 0755 \S+/%s /out/usr/bin/%s" % (b, b), build), b
    final = stages[1][1]
    assert "COPY --from=build /out/ /" in final
    assert 'ENTRYPOINT ["/usr/bin/weftd"]' in final
    assert not any(l.upper().startswith("USER ") for l in final), "weftd needs root (see the comment)"
    assert not os.path.exists(os.path.join(REPO, "deploy", "Dockerfile")), "replaced by deploy/Containerfile"


def test_containerfile_packages_exist():
    """Every runtime package name is a Debian 12 package: apt-cache when the
    lists are there, else dpkg (they are all installed where weft is built)."""
    if not _debian_12():
        pytest.skip("not Debian 12: this machine's packages say nothing about debian:12-slim's")
    have_lists = bool(glob.glob("/var/lib/apt/lists/*_Packages*"))
    missing = []
    for p in runtime_packages():
        if have_lists and subprocess.run(["apt-cache", "show", p], capture_output=True).returncode == 0:
            continue
        r = subprocess.run(["dpkg-query", "-W", "-f=${Package}", p], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout == p:
            continue
        missing.append(p)
    if missing and not have_lists:
        pytest.skip("not installed and no apt lists to look them up (apt-get update): %s" % missing)
    assert not missing, "not Debian 12 package names: %s" % missing


def test_containerfile_covers_weftd_libraries(weft_binaries):
    """Each shared library build/weftd links comes from a package the runtime
    stage installs (or libc6, which debian:12-slim has)."""
    if not _debian_12():
        pytest.skip("not Debian 12: the libraries here may be other packages than debian:12-slim's")
    pkgs = set(runtime_packages()) | {"libc6"}
    r = subprocess.run(["ldd", weft_binaries.weftd_plain], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    libs = re.findall(r"=> (/\S+) \(", r.stdout)
    assert libs, r.stdout
    uncovered = []
    for lib in libs:
        owners = set()
        for path in {lib, os.path.realpath(lib)}:
            q = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            if q.returncode == 0:
                owners |= {o.strip().split(":")[0] for o in q.stdout.split(":", 1)[0].split(",")}
        if not owners & pkgs:
            uncovered.append((lib, sorted(owners)))
    assert not uncovered, "libraries of weftd not installed by deploy/Containerfile: %s" % uncovered


# --------------------------------------------------------------------------
# the systemd unit

def unit_entries():
    out = {}
    section = None
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            out.setdefault((section, k), []).append(v)
    return out


def test_unit_fields():
    u = unit_entries()
    svc = lambda k: u.get(("Service", k), [])  # noqa: E731
    assert svc("Type") == ["exec"]
    assert svc("ExecStart") == ["/usr/local/bin/weftd -c /etc/weft/weft.conf"]
    assert "/usr/local/bin/weftd -c /etc/weft/weft.conf --check" in svc("ExecStartPre")
    assert svc("ExecReload")[-1] == "/bin/kill -HUP $MAINPID"
    assert svc("KillSignal") == ["SIGTERM"]
    assert int(svc("TimeoutStopSec")[0]) * 1000 >= 10000 + 5000  # agent.drain_timeout_ms default + margin
    assert svc("Restart") == ["on-failure"] and svc("RestartPreventExitStatus") == ["2"]
    assert int(svc("LimitNOFILE")[0]) >= 65536
    need = {"CAP_BPF", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}
    assert set(svc("CapabilityBoundingSet")[0].split()) == need
    assert set(svc("AmbientCapabilities")[0].split()) == need
    for k in ("ProtectSystem", "PrivateTmp", "PrivateMounts", "ProtectKernelTunables", "ReadOnlyPaths"):
        assert not svc(k), "%s= gives weftd its own mount namespace (see the unit's comment)" % k
    assert u[("Install", "WantedBy")] == ["multi-user.target"]


def test_unit_verifies(weft_binaries, tmp_path):
    """systemd-analyze verify, with the binaries where this build has them
    (it checks that each Exec path exists). It warns but exits 0 on unknown
    keys and bad values: any line about the unit fails the test."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        _skip_or_fail("systemd-analyze not found (Debian package systemd; make deps installs it)")
    with open(UNIT) as f:
        text = f.read()
    unit = tmp_path / "weftd.service"
    unit.write_text(text.replace("/usr/local/bin/weftd", weft_binaries.weftd_plain))
    r = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True,
                       env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
    out = [l for l in (r.stdout + r.stderr).splitlines() if "weftd.service" in l]
    assert r.returncode == 0 and not out, "systemd-analyze verify: rc %d\n%s" % (
        r.returncode, r.stdout + r.stderr)
