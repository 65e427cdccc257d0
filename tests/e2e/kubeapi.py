# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A fake Kubernetes API server for weft's end-to-end tests (stdlib only).

No kube-apiserver can run here, so the tests that make weftd discover Services,
EndpointSlices, Pods and Nodes talk to this one. It speaks the real wire format
over HTTPS/HTTP/1.1, enough of it for a list-then-watch client:

  GET /api/v1/services                       ServiceList        (v1)
  GET /api/v1/namespaces/{ns}/services[/{name}]
  GET /apis/discovery.k8s.io/v1/endpointslices   EndpointSliceList (discovery.k8s.io/v1)
  GET /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices[/{name}]
  GET /api/v1/pods?fieldSelector=spec.nodeName%3D<node>   PodList (v1)
  GET /api/v1/namespaces/{ns}/pods[/{name}]
  GET /api/v1/nodes[/{name}]                 NodeList           (v1)
  GET /version, /healthz, /livez, /readyz

Query parameters: watch=true|1, resourceVersion, allowWatchBookmarks,
timeoutSeconds, fieldSelector (metadata.name, metadata.namespace, and per
resource e.g. spec.nodeName for pods; =, ==, !=), labelSelector (=, ==, !=,
in, notin, exists, !exists), sendInitialEvents; limit/continue page a list as the
real server does from etcd (each page at the first page's resourceVersion; a
continue token older than the last compact() is a 410).

Semantics that follow the real server (k8s.io/apiserver's watch cache):
  * one resourceVersion counter for every resource (etcd's revision);
  * list: {"kind":"<Kind>List","apiVersion":..,"metadata":{"resourceVersion":"N"},
    "items":[..]}, items without kind/apiVersion; a single GET and every watch
    event object carry kind/apiVersion;
  * watch: 200, Transfer-Encoding: chunked, one JSON event per chunk, ending in
    a newline; no resourceVersion (or "0"): synthetic ADDED events for the
    current state first; resourceVersion=X: every event after X (replayed from
    the history), then live ones; X older than the last compact(): one ERROR
    event with a 410 Expired Status ("too old resource version: X (C)") and the
    end of the stream;
  * a selector watch sees an object that starts matching as ADDED and one that
    stops matching as DELETED (its previous state, at the event's version);
  * BOOKMARK objects hold kind, apiVersion and metadata.resourceVersion only,
    and go only to watches that asked with allowWatchBookmarks=true;
  * timeoutSeconds ends the watch cleanly (terminating chunk); the connection
    stays open for the next request (keep-alive);
  * a no-op update (same labels/annotations/spec/status/...) changes nothing and
    sends no event, as the real server skips writes that change nothing;
  * errors are Status objects: 401 Unauthorized, 403 Forbidden (RBAC wording),
    404 NotFound, 400 BadRequest, 405 MethodNotAllowed, 410 Expired, 429, 500, 503.

Python API (see KubeAPI): upsert/delete objects, build them (service,
endpointslice, pod, node, or load_fixture), rotate the token, and inject faults:
compact, cut_streams, slow, bookmark, fail, stop. Every request is logged in
api.requests for assertions.

The server certificate (CA-signed, subjectAltName IP:127.0.0.1, IP:::1,
DNS:kubernetes, kubernetes.default, kubernetes.default.svc,
kubernetes.default.svc.cluster.local, localhost) and its CA are made with
openssl once per Python process, in a temp dir removed at exit.
"""

import atexit
import base64
import copy
import datetime
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "k8s-fixtures")

SA_USER = "system:serviceaccount:weft-system:weftd"
GIT_VERSION = "v1.30.2"


# --------------------------------------------------------------------------
# resources

class Resource:
    def __init__(self, plural, kind, group, version, namespaced, fields):
        self.plural, self.kind, self.group, self.version = plural, kind, group, version
        self.namespaced = namespaced
        self.api_version = "%s/%s" % (group, version) if group else version
        self.prefix = "/apis/%s/%s" % (group, version) if group else "/api/%s" % version
        # the field selectors the real server accepts for this resource (the
        # "Field Selectors" concept page: metadata.name/namespace for all)
        self.fields = set(fields) | {"metadata.name", "metadata.namespace"}

    def __repr__(self):
        return "Resource(%s)" % self.plural


RESOURCES = {r.plural: r for r in [
    Resource("services", "Service", "", "v1", True, []),
    Resource("endpointslices", "EndpointSlice", "discovery.k8s.io", "v1", True, []),
    Resource("pods", "Pod", "", "v1", True,
             ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
              "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
              "status.podIPs", "status.nominatedNodeName"]),
    Resource("nodes", "Node", "", "v1", False, ["spec.unschedulable"]),
]}
BY_KIND = {r.kind.lower(): r for r in RESOURCES.values()}


def resource_of(kind):
    """'Service' / 'service' / 'services' / 'EndpointSlice' -> Resource."""
    k = kind.lower()
    r = RESOURCES.get(k) or BY_KIND.get(k) or RESOURCES.get(k + "s")
    if r is None:
        raise KeyError("unknown kind %r (have %s)" % (kind, sorted(RESOURCES)))
    return r


def _field_value(obj, field):
    if field == "status.podIPs":   # matches any of the pod's IPs
        return [p.get("ip", "") for p in (obj.get("status") or {}).get("podIPs") or []]
    cur = obj
    for part in field.split("."):
        if not isinstance(cur, dict):
            cur = None
            break
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


# --------------------------------------------------------------------------
# selectors

class SelectorError(ValueError):
    pass


def parse_field_selector(text, res):
    """'spec.nodeName=a,metadata.namespace!=b' -> [(field, op, value)]."""
    terms = []
    for raw in (text or "").split(","):
        t = raw.strip()
        if not t:
            continue
        m = re.fullmatch(r"([^=!]+?)\s*(==|!=|=)\s*(.*)", t)
        if not m:
            raise SelectorError("invalid selector: '%s'; can't understand '%s'" % (text, t))
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if field not in res.fields:
            raise SelectorError('field label not supported: %s' % field)
        terms.append((field, "!=" if op == "!=" else "=", value))
    return terms


def _split_terms(text):
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [t.strip() for t in out if t.strip()]


_LABEL_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"


def parse_label_selector(text):
    """Equality and set based label selectors -> [(key, op, values)]."""
    terms = []
    for t in _split_terms(text or ""):
        m = re.fullmatch(r"(%s)\s+(in|notin)\s+\(([^)]*)\)" % _LABEL_KEY, t)
        if m:
            vals = {v.strip() for v in m.group(3).split(",") if v.strip()}
            terms.append((m.group(1), m.group(2), vals))
            continue
        m = re.fullmatch(r"(%s)\s*(==|!=|=)\s*([-A-Za-z0-9_.]*)" % _LABEL_KEY, t)
        if m:
            terms.append((m.group(1), "!=" if m.group(2) == "!=" else "=", {m.group(3)}))
            continue
        m = re.fullmatch(r"(!?)\s*(%s)" % _LABEL_KEY, t)
        if m:
            terms.append((m.group(2), "!exists" if m.group(1) else "exists", set()))
            continue
        raise SelectorError("unable to parse requirement: %r" % t)
    return terms


class Filter:
    """Namespace + field selector + label selector of one list or watch."""

    def __init__(self, res, namespace=None, field_selector="", label_selector=""):
        self.res, self.namespace = res, namespace
        self.fields = parse_field_selector(field_selector, res)
        self.labels = parse_label_selector(label_selector)

    def match(self, obj):
        if obj is None:
            return False
        md = obj.get("metadata", {})
        if self.namespace is not None and md.get("namespace") != self.namespace:
            return False
        for field, op, value in self.fields:
            v = _field_value(obj, field)
            hit = value in v if isinstance(v, list) else v == value
            if hit != (op == "="):
                return False
        labels = md.get("labels") or {}
        for key, op, vals in self.labels:
            has = key in labels
            if op == "exists" and not has:
                return False
            if op == "!exists" and has:
                return False
            if op in ("=", "in") and (not has or labels[key] not in vals):
                return False
            if op in ("!=", "notin") and has and labels[key] in vals:
                return False
        return True


# --------------------------------------------------------------------------
# Status bodies

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
           405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Expired",
           422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable", 504: "Timeout"}


def status_object(code, message, reason=None, details=None):
    """A metav1.Status as the real server writes it (field order included)."""
    st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
          "message": message, "reason": reason or REASONS.get(code, "")}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


def forbidden_status(res, verb, namespace, user=SA_USER):
    where = ('in the namespace "%s"' % namespace) if namespace else "at the cluster scope"
    msg = ('%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s" %s'
           % (res.plural, user, verb, res.plural, res.group, where))
    details = {"kind": res.plural}
    if res.group:
        details = {"group": res.group, "kind": res.plural}
    return status_object(403, msg, "Forbidden", details)


def failure_status(code, res=None, verb="list", namespace=None, user=SA_USER, message=None):
    if code == 401:
        return status_object(401, message or "Unauthorized", "Unauthorized")
    if code == 403 and message is None and res is not None:
        return forbidden_status(res, verb, namespace, user)
    if code == 500:
        msg = message or "Internal error occurred: injected by the test"
        return status_object(500, msg, "InternalError",
                             {"causes": [{"message": msg}]})
    if code == 429:
        return status_object(429, message or "Too many requests, please try again later.",
                             "TooManyRequests", {"retryAfterSeconds": 1})
    if code == 503:
        return status_object(503, message or "the server is currently unable to handle the request",
                             "ServiceUnavailable")
    if code == 504:
        return status_object(504, message or "Timeout: request did not complete within the "
                             "requested timeout", "Timeout")
    return status_object(code, message or REASONS.get(code, "error"))


def expired_status(rv, oldest):
    return status_object(410, "too old resource version: %d (%d)" % (rv, oldest), "Expired")


def dumps(o):
    """Compact JSON, as Go's encoding/json writes it."""
    return json.dumps(o, separators=(",", ":"))


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------
# certificates (openssl, once per process)

_cert_lock = threading.Lock()
_cert_cache = {}
_cert_root = []

DEFAULT_SANS = ("IP:127.0.0.1", "IP:::1", "DNS:kubernetes", "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local",
                "DNS:localhost")


def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, cwd=cwd,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: rc=%d\n%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                        r.stderr))
    return r


def _cleanup_certs():
    for d in _cert_root:
        shutil.rmtree(d, ignore_errors=True)


def make_certs(extra_sans=()):
    """-> dict(dir, ca, ca_key, cert, key): a CA (CN=kubernetes, as kubeadm's)
    and a server certificate it signed for the API server. RSA 2048, as kubeadm.
    Made once per set of SANs per process; the files live until exit."""
    sans = tuple(DEFAULT_SANS) + tuple(s for s in extra_sans if s not in DEFAULT_SANS)
    with _cert_lock:
        if sans in _cert_cache:
            return _cert_cache[sans]
        if not _cert_root:
            _cert_root.append(tempfile.mkdtemp(prefix="weft-kubeapi-certs-"))
            atexit.register(_cleanup_certs)
        d = os.path.join(_cert_root[0], "set%d" % len(_cert_cache))
        os.mkdir(d, 0o700)
        ca, ca_key = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
        crt, key = os.path.join(d, "apiserver.crt"), os.path.join(d, "apiserver.key")
        csr, ext = os.path.join(d, "apiserver.csr"), os.path.join(d, "apiserver.ext")
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
                 "-days", "3650", "-subj", "/CN=kubernetes", "-sha256",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign")
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                 "-subj", "/CN=kube-apiserver", "-sha256")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "authorityKeyIdentifier=keyid\n"
                    "subjectAltName=%s\n" % ",".join(sans))
        _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                 "-out", crt, "-days", "365", "-sha256", "-extfile", ext, cwd=d)
        out = {"dir": d, "ca": ca, "ca_key": ca_key, "cert": crt, "key": key, "sans": sans}
        _cert_cache[sans] = out
        return out


# --------------------------------------------------------------------------
# object builders (the shapes of the API reference; see k8s-fixtures/README.md)

def _family(ip):
    return "IPv6" if ":" in ip else "IPv4"


def _ports(ports, slice_ports=False):
    out = []
    for p in ports or []:
        if isinstance(p, dict):
            out.append(dict(p))
            continue
        p = tuple(p) + (None,) * (5 - len(p))
        name, port, app, target, proto = p
        d = {}
        if app:
            d["appProtocol"] = app
        if name is not None:
            d["name"] = name
        d["port"] = port
        d["protocol"] = proto or "TCP"
        if not slice_ports:
            d["targetPort"] = target if target is not None else port
        out.append(d)
    if not slice_ports:
        return out
    # EndpointSlice ports: name, port, protocol, appProtocol (key order of kubectl)
    return [dict(sorted(d.items())) for d in out]


def service(ns, name, cluster_ips, ports=(), selector=None, labels=None,
            ip_family_policy=None, type_="ClusterIP", annotations=None):
    """A Service as `kubectl get -o json` shows it after the API server defaulted
    it. cluster_ips: ["198.19.0.10"], ["198.19.0.11", "2001:2:0:1::b"] (dual
    stack), ["None"] (headless). ports: [(name, port, appProtocol[, targetPort
    [, protocol]])] or dicts."""
    ips = list(cluster_ips)
    headless = ips == ["None"]
    fams = ["IPv4"] if headless else [_family(ip) for ip in ips]
    if ip_family_policy is None:
        ip_family_policy = "RequireDualStack" if len(fams) > 1 else "SingleStack"
    md = {"name": name, "namespace": ns, "labels": dict(labels or {"app": name})}
    if annotations:
        md["annotations"] = dict(annotations)
    spec = {
        "clusterIP": ips[0],
        "clusterIPs": ips,
        "internalTrafficPolicy": "Cluster",
        "ipFamilies": fams,
        "ipFamilyPolicy": ip_family_policy,
        "ports": _ports(ports),
        "selector": dict(selector or {"app": name}),
        "sessionAffinity": "None",
        "type": type_,
    }
    return {"kind": "Service", "apiVersion": "v1", "metadata": md, "spec": spec,
            "status": {"loadBalancer": {}}}


def _target_ref(t, ns):
    if t is None:
        return None
    if isinstance(t, str):
        return {"kind": "Pod", "name": t, "namespace": ns}
    if "metadata" in t:    # a pod object
        md = t["metadata"]
        ref = {"kind": t.get("kind", "Pod"), "name": md["name"],
               "namespace": md.get("namespace", ns)}
        if md.get("uid"):
            ref["uid"] = md["uid"]
        return ref
    return dict(t)


def endpoint(addresses, ready=True, serving=None, terminating=False, node_name=None,
             target_ref=None, zone=None, hostname=None, ns="default"):
    """One endpoints[] entry: conditions set the way the EndpointSlice
    controller sets them (all three, explicitly)."""
    if serving is None:
        serving = ready
    e = {"addresses": list(addresses),
         "conditions": {"ready": bool(ready), "serving": bool(serving),
                        "terminating": bool(terminating)}}
    if hostname:
        e["hostname"] = hostname
    if node_name:
        e["nodeName"] = node_name
    tr = _target_ref(target_ref, ns)
    if tr:
        e["targetRef"] = tr
    if zone:
        e["zone"] = zone
    return e


def endpointslice(ns, name, service, address_type, ports, endpoints=(), service_uid=None,
                  labels=None):
    """An EndpointSlice owned by `service` (label kubernetes.io/service-name,
    managed-by the endpointslice controller). endpoints: dicts with addresses,
    ready, serving, terminating, nodeName, targetRef (a pod name, a pod object,
    or a dict), zone, hostname; or entries made by endpoint()."""
    eps = []
    for e in endpoints:
        if "conditions" in e:
            eps.append(copy.deepcopy(e))
            continue
        eps.append(endpoint(e["addresses"], e.get("ready", True), e.get("serving"),
                            e.get("terminating", False), e.get("nodeName"),
                            e.get("targetRef"), e.get("zone"), e.get("hostname"), ns))
    lab = {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
           "kubernetes.io/service-name": service}
    lab.update(labels or {})
    md = {"name": name, "generateName": service + "-", "namespace": ns, "labels": lab,
          "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": now_rfc3339()}}
    if service_uid:
        md["ownerReferences"] = [{"apiVersion": "v1", "blockOwnerDeletion": True,
                                  "controller": True, "kind": "Service", "name": service,
                                  "uid": service_uid}]
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1", "metadata": md,
            "addressType": address_type, "endpoints": eps,
            "ports": _ports(ports, slice_ports=True)}


def pod(ns, name, uid=None, node=None, sa="default", ips=(), host_network=False, host_ip=None,
        labels=None, phase="Running", ready=True, containers=("app",), deletion=False):
    """A scheduled, running Pod (status as the kubelet reports it). uid: the
    pod's UID (the kubelet names the pod's cgroup after it); None -> a new one.
    host_network: podIPs are the node's (host_ip, default ips[0])."""
    ips = list(ips)
    if host_network and not ips and host_ip:
        ips = [host_ip]
    if host_ip is None and host_network and ips:
        host_ip = ips[0]
    md = {"name": name, "namespace": ns, "uid": uid or str(uuid.uuid4()),
          "labels": dict(labels or {"app": name})}
    if deletion:
        md["deletionTimestamp"] = now_rfc3339()
        md["deletionGracePeriodSeconds"] = 30
    ctrs = [{"image": "registry.example/%s:1.0" % c, "imagePullPolicy": "IfNotPresent",
             "name": c, "resources": {}, "terminationMessagePath": "/dev/termination-log",
             "terminationMessagePolicy": "File"} for c in containers]
    spec = {"containers": ctrs, "dnsPolicy": "ClusterFirstWithHostNet" if host_network
            else "ClusterFirst", "enableServiceLinks": True}
    if host_network:
        spec["hostNetwork"] = True
    if node:
        spec["nodeName"] = node
    spec.update({"preemptionPolicy": "PreemptLowerPriority", "priority": 0,
                 "restartPolicy": "Always", "schedulerName": "default-scheduler",
                 "securityContext": {}, "serviceAccount": sa, "serviceAccountName": sa,
                 "terminationGracePeriodSeconds": 30})
    t = now_rfc3339()
    st = {"phase": phase}
    if node:
        rs = "True" if ready and phase == "Running" else "False"
        st["conditions"] = [
            {"lastProbeTime": None, "lastTransitionTime": t, "status": "True",
             "type": "PodReadyToStartContainers"},
            {"lastProbeTime": None, "lastTransitionTime": t, "status": "True",
             "type": "Initialized"},
            {"lastProbeTime": None, "lastTransitionTime": t, "status": rs, "type": "Ready"},
            {"lastProbeTime": None, "lastTransitionTime": t, "status": rs,
             "type": "ContainersReady"},
            {"lastProbeTime": None, "lastTransitionTime": t, "status": "True",
             "type": "PodScheduled"}]
        if host_ip:
            st["hostIP"] = host_ip
            st["hostIPs"] = [{"ip": host_ip}]
        if ips:
            st["podIP"] = ips[0]
            st["podIPs"] = [{"ip": ip} for ip in ips]
        st["qosClass"] = "BestEffort"
        st["startTime"] = t
    else:
        st["conditions"] = [{"lastProbeTime": None, "lastTransitionTime": t,
                             "message": "0/1 nodes are available", "reason": "Unschedulable",
                             "status": "False", "type": "PodScheduled"}]
        st["phase"] = "Pending"
        st["qosClass"] = "BestEffort"
    return {"kind": "Pod", "apiVersion": "v1", "metadata": md, "spec": spec, "status": st}


def node(name, internal_ips, pod_cidrs=(), ready=True, labels=None):
    """A Node with InternalIP addresses (one per family) and a Hostname."""
    lab = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
           "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
           "kubernetes.io/os": "linux"}
    lab.update(labels or {})
    md = {"name": name, "labels": lab,
          "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                          "volumes.kubernetes.io/controller-managed-attach-detach": "true"}}
    spec = {}
    if pod_cidrs:
        spec = {"podCIDR": pod_cidrs[0], "podCIDRs": list(pod_cidrs)}
    t = now_rfc3339()
    addrs = [{"address": ip, "type": "InternalIP"} for ip in internal_ips]
    addrs.append({"address": name, "type": "Hostname"})
    st = {"addresses": addrs,
          "conditions": [{"lastHeartbeatTime": t, "lastTransitionTime": t,
                          "message": "kubelet is posting ready status", "reason": "KubeletReady",
                          "status": "True" if ready else "False", "type": "Ready"}],
          "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
          "nodeInfo": {"architecture": "amd64", "containerRuntimeVersion": "containerd://1.7.13",
                       "kernelVersion": "6.1.0-18-amd64", "kubeProxyVersion": GIT_VERSION,
                       "kubeletVersion": GIT_VERSION, "operatingSystem": "linux",
                       "osImage": "Debian GNU/Linux 12 (bookworm)"}}
    return {"kind": "Node", "apiVersion": "v1", "metadata": md, "spec": spec, "status": st}


def load_fixture(name):
    """tests/e2e/k8s-fixtures/<name>(.json) -> the object (a dict)."""
    if not name.endswith(".json"):
        name += ".json"
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def fixture_names():
    return sorted(f[:-5] for f in os.listdir(FIXTURES) if f.endswith(".json"))


# --------------------------------------------------------------------------
# the store's view of objects

_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation",
                  "managedFields", "selfLink")


def _content(obj):
    """What a no-op update compares: the object less server-set metadata."""
    o = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
    md = {k: v for k, v in o.get("metadata", {}).items() if k not in _SERVER_FIELDS}
    o["metadata"] = md
    return o


def with_type(res, obj):
    """kind, apiVersion first (as the server writes them), then the rest."""
    out = {"kind": res.kind, "apiVersion": res.api_version}
    out.update({k: v for k, v in obj.items() if k not in ("kind", "apiVersion")})
    return out


def without_type(obj):
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _at_rv(obj, rv):
    o = copy.deepcopy(obj)
    o["metadata"]["resourceVersion"] = str(rv)
    return o


class Event:
    __slots__ = ("rv", "res", "type", "obj", "prev")

    def __init__(self, rv, res, type_, obj, prev):
        self.rv, self.res, self.type, self.obj, self.prev = rv, res, type_, obj, prev


# --------------------------------------------------------------------------
# watchers

class _Cut:
    def __init__(self, mid_line, mid_chunk, reset, done):
        self.mid_line, self.mid_chunk, self.reset, self.done = mid_line, mid_chunk, reset, done


class _End:
    """Send this line (if any), then the terminating chunk."""

    def __init__(self, line=None):
        self.line = line


class Watcher:
    def __init__(self, api, res, flt, bookmarks, rv, peer):
        self.api, self.res, self.filter = api, res, flt
        self.bookmarks = bookmarks
        self.rv = rv                # the last version this watch has been sent (or started at)
        self.peer = peer
        self.queue = deque()
        self.cond = threading.Condition(api._lock)   # shares the store's lock
        self.closed = False
        self.cut_next = None        # a _Cut applied to the next event
        self.sent = 0

    def __repr__(self):
        return "Watcher(%s, rv=%s, peer=%s)" % (self.res.plural, self.rv, self.peer)

    # called with api._lock held
    def offer(self, ev):
        """The watch event line for ev as this watcher sees it, or None."""
        new_ok = ev.type != "DELETED" and self.filter.match(ev.obj)
        old_ok = self.filter.match(ev.prev)
        if ev.type == "DELETED":
            if not old_ok:
                return None
            return ("DELETED", ev.obj)
        if new_ok and ev.prev is not None and old_ok:
            return ("MODIFIED", ev.obj)
        if new_ok:
            return ("ADDED", ev.obj)
        if old_ok:   # stopped matching: DELETED with the previous state at this version
            return ("DELETED", _at_rv(ev.prev, ev.rv))
        return None

    def line(self, type_, obj):
        return (dumps({"type": type_, "object": with_type(self.res, obj)}) + "\n").encode()

    def bookmark_line(self, rv, initial_end=False):
        md = {"resourceVersion": str(rv)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        return (dumps({"type": "BOOKMARK", "object": {"kind": self.res.kind,
                                                      "apiVersion": self.res.api_version,
                                                      "metadata": md}}) + "\n").encode()

    def push(self, item, front=False):
        if front:
            self.queue.appendleft(item)
        else:
            self.queue.append(item)
        self.cond.notify_all()


# --------------------------------------------------------------------------
# HTTP

class _Abort(Exception):
    """The connection was cut on purpose: write nothing more."""


_PATH_RE = re.compile(r"^(?P<prefix>/api/v1|/apis/[^/]+/[^/]+)"
                      r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?/?$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60                      # idle keep-alive / blocked write limit

    def __init__(self, request, client_address, api):
        self.api = api
        BaseHTTPRequestHandler.__init__(self, request, client_address, None)

    def log_message(self, fmt, *args):   # quiet: api.requests is the log
        pass

    def send_response(self, code, message=None):
        # Go's net/http: no Server header
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    # -- plumbing ---------------------------------------------------------
    def _headers(self, code, ctype="application/json", length=None, chunked=False):
        self.api._delay()
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ctype)
        self.send_header("X-Kubernetes-Pf-Flowschema-Uid", self.api._flowschema_uid)
        self.send_header("X-Kubernetes-Pf-Prioritylevel-Uid", self.api._prioritylevel_uid)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length or 0))
        self.end_headers()

    def _body(self, code, body, ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = dumps(body)
        if isinstance(body, str):
            body = body.encode()
        self._headers(code, ctype, len(body))
        if self.command == "HEAD":
            return
        d = self.api._slow
        if d > 0 and len(body) > 1:   # slow: the body in two pieces, each delayed
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.api._delay()
            self.wfile.write(body[half:])
        else:
            self.wfile.write(body)

    def _status(self, st):
        self._body(st["code"], st)
        return st["code"]

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def _drain_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 0:
            self.rfile.read(n)

    # -- verbs --------------------------------------------------------------
    def do_GET(self):
        try:
            self._get()
        except (_Abort, OSError):    # cut on purpose, or the client went away
            self.close_connection = True

    def do_HEAD(self):
        self.do_GET()

    def _other(self):
        self._drain_body()
        entry = self.api._log(self, None, None, None, None, False)
        self.api._auth_ok(entry)
        entry["status"] = self._status(status_object(
            405, "the server does not allow this method on the requested resource"))

    do_POST = do_PUT = do_PATCH = do_DELETE = _other

    def _get(self):
        api = self.api
        u = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        path = u.path
        if path in ("/healthz", "/livez", "/readyz"):
            entry = api._log(self, path, q, None, None, False)
            api._auth_ok(entry)
            self._body(200, "ok", "text/plain; charset=utf-8")
            entry["status"] = 200
            return
        m = _PATH_RE.match(path)
        res = RESOURCES.get(m.group("plural")) if m else None
        ns = m.group("ns") if m else None
        name = m.group("name") if m else None
        watch = q.get("watch", "").lower() in ("true", "1")
        verb = "watch" if watch else ("get" if name else "list")
        entry = api._log(self, path, q, res, ns, watch, verb=verb if res else None, name=name)
        if not api._auth_ok(entry):
            entry["status"] = self._status(failure_status(401))
            return
        if path == "/version":
            entry["status"] = 200
            self._body(200, {"major": "1", "minor": GIT_VERSION.split(".")[1],
                             "gitVersion": GIT_VERSION, "gitCommit": "0" * 40,
                             "gitTreeState": "clean", "buildDate": "2024-06-11T20:20:00Z",
                             "goVersion": "go1.22.4", "compiler": "gc",
                             "platform": "linux/amd64"})
            return
        if (res is None or m.group("prefix") != res.prefix or (ns and not res.namespaced)
                or (watch and name)):
            entry["status"] = self._status(status_object(
                404, "the server could not find the requested resource", "NotFound",
                {}))
            return
        fail = api._failure(res.plural)
        if fail is not None:
            code, msg = fail
            entry["status"] = self._status(failure_status(code, res, verb, ns, api.user, msg))
            return
        try:
            flt = Filter(res, ns, q.get("fieldSelector", ""), q.get("labelSelector", ""))
        except SelectorError as e:
            entry["status"] = self._status(status_object(400, str(e), "BadRequest"))
            return
        if name:
            self._get_one(entry, res, ns, name)
        elif watch:
            self._watch(entry, res, flt, q)
        else:
            self._list(entry, res, flt, q)

    def _get_one(self, entry, res, ns, name):
        with self.api._lock:
            obj = self.api._store.get((res.plural, ns or "", name))
            obj = copy.deepcopy(obj) if obj is not None else None
        if obj is None:
            entry["status"] = self._status(status_object(
                404, '%s "%s" not found' % (res.plural, name), "NotFound",
                dict({"name": name}, **({"group": res.group} if res.group else {}),
                     kind=res.plural)))
            return
        entry["status"] = 200
        self._body(200, with_type(res, obj))

    def _list(self, entry, res, flt, q=None):
        """A list, paged as the real server pages from etcd when asked
        (limit=N): every page at the first page's resourceVersion, the
        continue token an opaque base64 string (here: that version and the
        next item's key); a token whose version was compacted away is a 410."""
        q = q or {}
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            limit = 0
        cont = q.get("continue", "")
        after = None
        with self.api._lock:
            rv = self.api._rv
            if cont:
                try:
                    tok = json.loads(base64.b64decode(cont).decode())
                    rv, after = int(tok["rv"]), tuple(tok["after"])
                except (ValueError, KeyError, TypeError):
                    entry["status"] = self._status(status_object(400, "invalid continue token", "BadRequest"))
                    return
                if rv < self.api._compacted:
                    entry["status"] = self._status(status_object(
                        410, "The provided continue parameter is too old to display a consistent list "
                        "result. You can start a new list without the continue parameter.", "Expired"))
                    return
            # filter, then sort: a page of a 20k-object store costs what the
            # kind holds past the token, not the whole store
            keyed = sorted(((k, o) for k, o in self.api._store.items()
                            if k[0] == res.plural and (after is None or k > after) and flt.match(o)),
                           key=lambda kv: kv[0])
        more = ""
        if limit > 0 and len(keyed) > limit:
            keyed = keyed[:limit]
            more = base64.b64encode(json.dumps({"rv": rv, "after": list(keyed[-1][0])}).encode()).decode()
        md = {"resourceVersion": str(rv)}
        if more:
            md["continue"] = more
        entry["status"] = 200
        entry["list_rv"] = rv
        entry["continue"] = bool(cont)
        # the same bytes as dumps() of the whole list, each item's JSON made
        # once per stored version (a 10k-object relist lists the same objects
        # again). No copy: a stored object is never changed in place (upsert
        # stores a new one), so it is read after the lock is let go.
        cache = self.api._item_json
        items = []
        for k, o in keyed:
            got = cache.get(k)
            if got is None or got[0] is not o:
                got = cache[k] = (o, dumps(without_type(o)).encode())
            items.append(got[1])
        self._body(200, b"".join((dumps({"kind": res.kind + "List", "apiVersion": res.api_version,
                                         "metadata": md})[:-1].encode(),
                                  b',"items":[', b",".join(items), b"]}")))

    def _watch(self, entry, res, flt, q):
        api = self.api
        rv_s = q.get("resourceVersion", "")
        bookmarks = q.get("allowWatchBookmarks", "").lower() in ("true", "1")
        initial = q.get("sendInitialEvents", "").lower() in ("true", "1")
        try:
            timeout = float(q.get("timeoutSeconds") or 0)
            if timeout <= 0:
                timeout = api.default_watch_timeout
            rv = int(rv_s) if rv_s else 0
            if rv < 0:
                raise ValueError(rv_s)
        except ValueError:
            entry["status"] = self._status(status_object(
                400, 'invalid resource version "%s" or timeout' % rv_s, "BadRequest"))
            return
        w = Watcher(api, res, flt, bookmarks, 0, entry["peer"])
        expired = None
        with api._lock:
            if rv_s in ("", "0") or initial:
                # state now, as synthetic ADDED events (the watch cache's
                # "start at most recent/any" and streaming lists)
                w.rv = api._rv
                for k, o in sorted(api._store.items()):
                    if k[0] == res.plural and flt.match(o):
                        w.queue.append(w.line("ADDED", o))
                if initial and bookmarks:
                    w.queue.append(w.bookmark_line(api._rv, initial_end=True))
            elif rv < api._compacted:
                expired = expired_status(rv, api._compacted)
            else:
                w.rv = rv
                for ev in api._history:
                    if ev.rv > rv and ev.res is res:
                        got = w.offer(ev)
                        if got:
                            w.queue.append(w.line(*got))
            if expired is None:
                api._watchers.append(w)
                api._watcher_total += 1
        entry["expired"] = expired is not None
        entry["status"] = 200
        self._headers(200, chunked=True)
        if expired is not None:
            self._chunk(dumps({"type": "ERROR", "object": expired}).encode() + b"\n")
            self._chunk(b"")
            return
        try:
            self._stream(w, time.monotonic() + timeout)
        finally:
            with api._lock:
                w.closed = True
                if w in api._watchers:
                    api._watchers.remove(w)
                api._lock_cond.notify_all()

    def _stream(self, w, deadline):
        api = self.api
        while True:
            with w.cond:
                while not w.queue and not w.closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    w.cond.wait(min(left, 0.2))
                    if self._peer_gone():   # the client went away: end the watch
                        w.closed = True
                if w.closed:
                    raise _Abort()
                if not w.queue:          # timeoutSeconds: end cleanly
                    item = _End()
                else:
                    item = w.queue.popleft()
                    if isinstance(item, bytes) and w.cut_next is not None:
                        item, w.cut_next = (w.cut_next, item), None
                    elif isinstance(item, _Cut):    # cut inside the next line
                        nxt = next((x for x in w.queue if isinstance(x, bytes)), None)
                        item = (item, nxt or w.bookmark_line(api._rv))
            if isinstance(item, tuple):
                self._cut(w, item[0], item[1])
            if isinstance(item, _End):
                if item.line:
                    api._delay()
                    self._chunk(item.line)
                api._delay()
                self._chunk(b"")
                return
            api._delay()
            self._chunk(item)
            w.sent += 1

    def _peer_gone(self):
        """FIN or RST from the client (TCP state CLOSE_WAIT or CLOSE), as Go's
        net/http notices a gone client and cancels the watch."""
        try:
            info = socket.socket.getsockopt(self.connection, socket.IPPROTO_TCP,
                                            socket.TCP_INFO, 1)
        except OSError:
            return True
        return info[0] in (7, 8)

    def _cut(self, w, cut, line):
        """Close at the TCP level (no TLS close_notify, no terminating chunk),
        inside `line` if cut.mid_line."""
        try:
            self.api._delay()
            if cut.mid_line:
                half = line[:max(1, len(line) // 2)]
                if cut.mid_chunk:   # the chunk header promises the whole line
                    self.wfile.write(b"%x\r\n" % len(line) + half)
                else:               # a whole chunk holding half a line
                    self._chunk(half)
            raw = self.connection
            if cut.reset:   # close with SO_LINGER 0: an RST
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                raw.close()
            else:           # a FIN
                socket.socket.shutdown(raw, socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            with self.api._lock:
                w.closed = True
                if w in self.api._watchers:
                    self.api._watchers.remove(w)
            cut.done.set()
        raise _Abort()


# --------------------------------------------------------------------------
# the server

class KubeAPI:
    """A fake kube-apiserver on 127.0.0.1 (HTTPS, HTTP/1.1, one thread per
    connection; every method is thread-safe).

    h: a weft_harness.Harness (its close() calls stop()) or a directory for
    the files (then call stop() yourself, or use `with KubeAPI(dir) as api`).
    forbidden: resources answered with 403 (RBAC denial) until allow().
    netns: listen inside that network namespace (host must then be an address
    there, and extra_sans its "IP:a.b.c.d" so clients can verify the cert).

    After start(): url, address ('127.0.0.1:port'), port, ca_file (the CA to
    verify with), token (the current bearer token), sa_dir (token, ca.crt,
    namespace laid out as the kubelet's projected service account volume),
    token_file. Objects: upsert, delete, get, objects, resource_version, and
    the builders service/endpointslice/pod/node (module functions too).
    Faults: rotate_token, fail/forbid/allow, slow, compact, bookmark,
    cut_streams, stop (and start again). Observation: requests, find_requests,
    wait_request, watchers, wait_watchers, connections, tls_errors, errors."""

    def __init__(self, h, host="127.0.0.1", port=0, token=None, forbidden=(), user=SA_USER,
                 namespace="weft-system", extra_sans=(), default_watch_timeout=1800.0,
                 netns=None):
        self.harness = h if hasattr(h, "_push") else None
        self.workdir = h.workdir if self.harness else str(h)
        self.host, self.port, self.netns = host, port, netns
        self.user = user
        self.namespace = namespace
        self.default_watch_timeout = default_watch_timeout
        certs = make_certs(tuple(extra_sans))
        self.ca_file, self.cert_file, self.key_file = certs["ca"], certs["cert"], certs["key"]
        self._lock = threading.RLock()
        self._lock_cond = threading.Condition(self._lock)
        self._store = {}            # (plural, ns, name) -> obj (no kind/apiVersion)
        self._item_json = {}        # (plural, ns, name) -> (obj, its JSON as a list item)
        self._history = []          # Events after the compaction point
        self._rv = 1000             # as a fresh cluster's revision is not 0
        self._compacted = 0
        self._watchers = []
        self._watcher_total = 0
        self._fail = {}             # plural or "*" -> [code, times_left or None, message]
        for r in forbidden:
            self._fail[resource_of(r).plural] = [403, None, None]
        self._requests = []
        self._slow = 0.0
        self._tokens = {}           # token -> expiry (monotonic) or None (current)
        self.token = token or self._new_token()
        self._tokens[self.token] = None
        self._conns = set()
        self._running = False
        self._threads = []
        self._lsock = None
        self._accept_t = None
        self.tls_errors = []         # failed handshakes ("peer: reason")
        self.errors = []             # tracebacks of exceptions in the server (bugs)
        self.connections = 0
        self._flowschema_uid = str(uuid.uuid4())
        self._prioritylevel_uid = str(uuid.uuid4())
        self.sa_dir = os.path.join(self.workdir, "kubeapi-%s" % uuid.uuid4().hex[:8],
                                   "serviceaccount")
        os.makedirs(self.sa_dir)
        self._write_sa()
        if self.harness:
            self.harness._push("kubeapi %s" % self.sa_dir, self.stop)

    def __enter__(self):
        if self._lsock is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "KubeAPI(%s)" % (self.url if self._lsock else "stopped")

    # -- lifecycle --------------------------------------------------------
    @property
    def url(self):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "https://%s:%d" % (h, self.port)

    @property
    def address(self):
        """'127.0.0.1:port' (weftd's address syntax)."""
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "%s:%d" % (h, self.port)

    def start(self):
        """Listen (the same port again after a stop()) and serve. -> url."""
        if self._lsock is not None:
            return self.url
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        if self.netns:
            import weft_harness as wh
            s = wh.netns_socket(self.netns, fam)
        else:
            s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        self.port = s.getsockname()[1]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.set_alpn_protocols(["http/1.1"])
        self._ctx = ctx
        self._lsock = s
        with self._lock:
            self._running = True
        self._accept_t = threading.Thread(target=self._accept, args=(s,), daemon=True,
                                          name="kubeapi-accept")
        self._accept_t.start()
        return self.url

    def stop(self, timeout=5.0):
        """The API going away: close the listener and every connection (watch
        streams end without a terminating chunk). Idempotent; start() again
        serves the same port and the same objects."""
        s, self._lsock = self._lsock, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        with self._lock:
            self._running = False
            conns = list(self._conns)
            for w in self._watchers:
                w.closed = True
                w.cond.notify_all()
            self._lock_cond.notify_all()
        for c in conns:
            try:
                socket.socket.shutdown(c, socket.SHUT_RDWR)
            except OSError:
                pass
        if self._accept_t is not None:
            self._accept_t.join(timeout)
            self._accept_t = None
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            for c in list(self._conns):
                try:
                    c.close()
                except OSError:
                    pass

    def _accept(self, lsock):
        while True:
            try:
                c, peer = lsock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve_conn, args=(c, peer), daemon=True,
                                 name="kubeapi-conn")
            with self._lock:
                self.connections += 1
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def _serve_conn(self, c, peer):
        peer_s = "%s:%d" % (peer[0], peer[1])
        with self._lock:
            if not self._running:
                c.close()
                return
            self._conns.add(c)
        tc = None
        try:
            c.settimeout(10)
            tc = self._ctx.wrap_socket(c, server_side=True, do_handshake_on_connect=False)
            with self._lock:
                self._conns.discard(c)
                self._conns.add(tc)
            try:
                tc.do_handshake()
            except (OSError, ValueError) as e:
                self.tls_errors.append("%s: %s" % (peer_s, e))
                return
            Handler(tc, (peer_s, peer[1]), self)
        except (OSError, ValueError):
            pass
        except Exception:   # a bug here: keep it for the test to see
            self.errors.append(traceback.format_exc())
        finally:
            with self._lock:
                self._conns.discard(c)
                self._conns.discard(tc)
            for s in (tc, c):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    # -- auth -------------------------------------------------------------
    @staticmethod
    def _new_token():
        # the shape of a bound service account token: a JWT (unsigned here)
        def b64(d):
            return base64.urlsafe_b64encode(dumps(d).encode()).rstrip(b"=").decode()
        head = b64({"alg": "RS256", "kid": uuid.uuid4().hex[:16]})
        body = b64({"sub": SA_USER, "jti": str(uuid.uuid4()), "iat": int(time.time())})
        return "%s.%s.%s" % (head, body, base64.urlsafe_b64encode(os.urandom(32))
                             .rstrip(b"=").decode())

    def rotate_token(self, grace=0.0):
        """A new token (returned, and written to sa_dir/token); the old one is
        rejected (401) at once, or after `grace` seconds."""
        with self._lock:
            old = self.token
            self.token = self._new_token()
            self._tokens[self.token] = None
            if grace and grace > 0:
                self._tokens[old] = time.monotonic() + grace
            else:
                self._tokens.pop(old, None)
        self._write_sa()
        return self.token

    def _auth_ok(self, entry):
        hdr = entry.pop("_auth", None)
        entry["auth_present"] = hdr is not None
        ok = False
        if hdr is not None and hdr[:7].lower() == "bearer ":
            tok = hdr[7:].strip()
            with self._lock:
                if tok in self._tokens:
                    exp = self._tokens[tok]
                    ok = exp is None or time.monotonic() < exp
                    entry["token"] = "current" if tok == self.token else "old"
        entry["auth_valid"] = ok
        return ok

    def _write_sa(self):
        """sa_dir laid out as the kubelet's projected service account volume:
        ..<ts>/{token,ca.crt,namespace}, ..data -> ..<ts>, token -> ..data/token.
        A rotation swaps ..data atomically (rename of a symlink)."""
        ts = "..%s.%s" % (time.strftime("%Y_%m_%d_%H_%M_%S"), uuid.uuid4().hex[:6])
        d = os.path.join(self.sa_dir, ts)
        os.mkdir(d)
        with open(os.path.join(d, "token"), "w") as f:
            f.write(self.token)
        shutil.copyfile(self.ca_file, os.path.join(d, "ca.crt"))
        with open(os.path.join(d, "namespace"), "w") as f:
            f.write(self.namespace)
        data = os.path.join(self.sa_dir, "..data")
        old = os.readlink(data) if os.path.islink(data) else None
        tmp = os.path.join(self.sa_dir, "..data_tmp")
        os.symlink(ts, tmp)
        os.rename(tmp, data)
        for f in ("token", "ca.crt", "namespace"):
            p = os.path.join(self.sa_dir, f)
            if not os.path.islink(p):
                os.symlink(os.path.join("..data", f), p)
        if old:
            shutil.rmtree(os.path.join(self.sa_dir, old), ignore_errors=True)

    @property
    def token_file(self):
        return os.path.join(self.sa_dir, "token")

    # -- faults -----------------------------------------------------------
    def fail(self, resource, status, times=None, message=None):
        """Answer list/get/watch of `resource` ('services', 'Pod', ... or '*')
        with `status` (401, 403 with RBAC wording, 429, 500, 503, ...) and a
        Status body; `times` requests only (None: until fail(resource, None))."""
        key = "*" if resource == "*" else resource_of(resource).plural
        with self._lock:
            if status is None:
                self._fail.pop(key, None)
            else:
                self._fail[key] = [status, times, message]

    def forbid(self, *resources):
        """RBAC denial (403) for these resources, until allow()."""
        for r in resources:
            self.fail(r, 403)

    def allow(self, *resources):
        for r in resources:
            self.fail(r, None)

    def _failure(self, plural):
        with self._lock:
            for key in (plural, "*"):
                f = self._fail.get(key)
                if f is None:
                    continue
                code, times, msg = f
                if times is not None:
                    if times <= 1:
                        self._fail.pop(key)
                    else:
                        f[1] = times - 1
                return code, msg
        return None

    def slow(self, seconds):
        """Delay every response write (headers, each body half, each watch
        event chunk) by `seconds`; 0 turns it off."""
        self._slow = float(seconds)

    def _delay(self):
        d = self._slow
        if d > 0:
            time.sleep(d)

    def compact(self, end_watches=False):
        """Every resourceVersion before now is too old: a watch from one gets
        the 410 ERROR event. end_watches: open watches get it too, and end.
        -> the compaction revision."""
        with self._lock:
            self._compacted = self._rv
            self._history = [e for e in self._history if e.rv > self._rv]
            if end_watches:
                for w in list(self._watchers):
                    line = (dumps({"type": "ERROR", "object": expired_status(
                        w.rv, self._compacted)}) + "\n").encode()
                    w.push(_End(line))
            return self._compacted

    def bookmark(self):
        """A BOOKMARK at the current resourceVersion to every watch that
        allows bookmarks. -> that resourceVersion."""
        with self._lock:
            for w in self._watchers:
                if w.bookmarks:
                    w.push(w.bookmark_line(self._rv))
            return self._rv

    def cut_streams(self, mid_line=True, mid_chunk=False, reset=False, at_next_event=False,
                    timeout=5.0):
        """Close every open watch stream at the TCP level: no terminating
        chunk, no TLS close_notify (reset: an RST instead of a FIN).
        mid_line: first write half of a JSON event line (the next queued event,
        else a BOOKMARK line), as one whole chunk (mid_chunk=False) or as a
        chunk whose header promises the whole line (mid_chunk=True).
        at_next_event: arm the cut and return; each stream is cut in the middle
        of the next event it sends (that event is lost with the stream and is
        sent again to a watch resumed from the last version the client saw).
        Otherwise wait until every stream is cut. -> number of streams."""
        events = []
        with self._lock:
            for w in self._watchers:
                if w.closed:
                    continue
                ev = threading.Event()
                events.append(ev)
                cut = _Cut(mid_line, mid_chunk, reset, ev)
                if at_next_event:
                    w.cut_next = cut
                else:
                    w.push(cut, front=True)
        if not at_next_event:
            deadline = time.monotonic() + timeout + 4 * self._slow
            for ev in events:
                ev.wait(max(0.0, deadline - time.monotonic()))
        return len(events)

    # -- objects ------------------------------------------------------------
    def _bump(self):
        self._rv += 1
        return self._rv

    def upsert(self, obj):
        """Create or update obj (a dict with kind): sets metadata.resourceVersion
        (a new global one), uid and creationTimestamp (kept across updates),
        namespace 'default' if a namespaced object has none; emits ADDED or
        MODIFIED to matching watches. An update that changes nothing is a
        no-op (no new version, no event), as on the real server.
        -> the stored object (with kind/apiVersion)."""
        res = resource_of(obj["kind"])
        o = copy.deepcopy(without_type(obj))
        md = o.setdefault("metadata", {})
        if res.namespaced:
            md.setdefault("namespace", "default")
        else:
            md.pop("namespace", None)
        key = (res.plural, md.get("namespace", ""), md["name"])
        with self._lock:
            prev = self._store.get(key)
            if prev is not None:
                if _content(prev) == _content(o):
                    return with_type(res, copy.deepcopy(prev))
                md["uid"] = prev["metadata"]["uid"]
                md["creationTimestamp"] = prev["metadata"]["creationTimestamp"]
                if "generation" in prev["metadata"]:
                    gen = prev["metadata"]["generation"]
                    md["generation"] = gen + (1 if prev.get("spec") != o.get("spec") else 0)
            else:
                md.setdefault("uid", str(uuid.uuid4()))
                md["creationTimestamp"] = now_rfc3339()
            rv = self._bump()
            md["resourceVersion"] = str(rv)
            md = self._order_md(md)
            o["metadata"] = md
            self._store[key] = o
            self._emit(Event(rv, res, "MODIFIED" if prev is not None else "ADDED", o, prev))
            return with_type(res, copy.deepcopy(o))

    @staticmethod
    def _order_md(md):
        # ObjectMeta's field order: name, generateName, namespace, uid,
        # resourceVersion, generation, creationTimestamp, deletion*, labels, ...
        order = ["name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
                 "generation", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
                 "finalizers", "managedFields"]
        out = {k: md[k] for k in order if k in md}
        out.update({k: v for k, v in md.items() if k not in out})
        return out

    def delete(self, kind, ns, name):
        """Delete an object: DELETED (its last state, at the deletion's new
        resourceVersion) to matching watches. -> that object; KeyError if none."""
        res = resource_of(kind)
        key = (res.plural, (ns or "") if res.namespaced else "", name)
        with self._lock:
            prev = self._store.pop(key)
            rv = self._bump()
            gone = _at_rv(prev, rv)
            self._emit(Event(rv, res, "DELETED", gone, prev))
            return with_type(res, copy.deepcopy(gone))

    def _emit(self, ev):
        self._history.append(ev)
        for w in self._watchers:
            if w.res is not ev.res or w.closed:
                continue
            got = w.offer(ev)
            if got:
                w.push(w.line(*got))
                w.rv = ev.rv

    def get(self, kind, ns, name):
        """The stored object (with kind/apiVersion), or None."""
        res = resource_of(kind)
        with self._lock:
            o = self._store.get((res.plural, (ns or "") if res.namespaced else "", name))
            return with_type(res, copy.deepcopy(o)) if o is not None else None

    def objects(self, kind=None):
        with self._lock:
            return [with_type(RESOURCES[k[0]], copy.deepcopy(o))
                    for k, o in sorted(self._store.items())
                    if kind is None or k[0] == resource_of(kind).plural]

    @property
    def resource_version(self):
        with self._lock:
            return self._rv

    # builders that know the store (owner uid, node addresses)
    def service(self, ns, name, cluster_ips, ports=(), **kw):
        return service(ns, name, cluster_ips, ports, **kw)

    def endpointslice(self, ns, name, service_name, address_type, ports, endpoints=(), **kw):
        """endpointslice() owned by the stored Service's uid (ownerReferences)."""
        if "service_uid" not in kw:
            svc = self.get("services", ns, service_name)
            kw["service_uid"] = svc["metadata"]["uid"] if svc else None
        return endpointslice(ns, name, service_name, address_type, ports, endpoints, **kw)

    def pod(self, ns, name, uid=None, node=None, sa="default", ips=(), host_network=False,
            **kw):
        """pod() whose hostIP is the node's InternalIP when that Node is stored."""
        if "host_ip" not in kw and node:
            n = self.get("nodes", None, node)
            if n:
                kw["host_ip"] = next((a["address"] for a in n["status"]["addresses"]
                                      if a["type"] == "InternalIP"), None)
        if host_network and not ips and kw.get("host_ip"):
            ips = [kw["host_ip"]]
        return pod(ns, name, uid, node, sa, ips, host_network, **kw)

    def node(self, name, internal_ips, **kw):
        return node(name, internal_ips, **kw)

    # -- observation --------------------------------------------------------
    def _log(self, handler, path, q, res, ns, watch, verb=None, name=None):
        entry = {"time": time.time(), "method": handler.command, "path": path or handler.path,
                 "query": q or {}, "raw": handler.path, "resource": res.plural if res else None,
                 "namespace": ns, "name": name, "verb": verb, "watch": watch,
                 "resourceVersion": (q or {}).get("resourceVersion"),
                 "peer": handler.client_address[0], "status": None,
                 "_auth": handler.headers.get("Authorization"),
                 "auth_present": None, "auth_valid": None}
        with self._lock:
            self._requests.append(entry)
            self._lock_cond.notify_all()
        return entry

    @property
    def requests(self):
        """A copy of the request log: dicts with method, path, query (dict),
        raw, resource, namespace, name, verb (list/watch/get), watch,
        resourceVersion, auth_present, auth_valid, token (current/old), status,
        list_rv (lists), expired (a 410 watch), time, peer."""
        with self._lock:
            return [{k: v for k, v in e.items() if k != "_auth"} for e in self._requests]

    def find_requests(self, since=0, **match):
        return [e for e in self.requests[since:]
                if all(e.get(k) == v for k, v in match.items())]

    def wait_request(self, timeout=5.0, since=0, **match):
        """Wait for a logged request with these field values (status set);
        -> it, or None."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for e in self._requests[since:]:
                    if e["status"] is not None and all(e.get(k) == v for k, v in match.items()):
                        return {k: v for k, v in e.items() if k != "_auth"}
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock_cond.wait(min(left, 0.05))

    def watchers(self, resource=None):
        """Open watch streams (of resource, or all)."""
        with self._lock:
            return sum(1 for w in self._watchers if not w.closed and
                       (resource is None or w.res is resource_of(resource)))

    def wait_watchers(self, pred, resource=None, timeout=5.0):
        """Wait until pred(watchers(resource)); -> the last count."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.watchers(resource)
            if pred(n) or time.monotonic() >= deadline:
                return n
            time.sleep(0.02)
