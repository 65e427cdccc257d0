# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""kubeapi.py itself, without weftd: the fake Kubernetes API server, seen by
real clients (curl, http.client over TLS, and a raw TLS reader that shows the
HTTP chunks as they come). When these fail, the discovery tests mean nothing.

Needs no root: every test runs on 127.0.0.1, and the Harness removes the
server (and any curl it spawned) on every exit path."""

import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

import kubeapi
import weft_harness as wh

CURL_TIMEOUT = 10


@pytest.fixture
def h(tmp_path):
    harness = wh.Harness(None, str(tmp_path))
    yield harness
    errs = harness.close()
    if errs:
        pytest.fail("teardown: " + "; ".join(errs), pytrace=False)


@pytest.fixture
def api(h):
    a = kubeapi.KubeAPI(h)
    a.start()
    yield a
    assert not a.errors, "the fake API server broke:\n" + "\n".join(a.errors)


# --------------------------------------------------------------------------
# clients

def curl(api, path, *extra, token=None, auth=True):
    """curl -sS; -> (exit code, HTTP status, body, stderr)."""
    argv = ["curl", "-sS", "--max-time", "8", "-o", "-", "-w", "\n%{http_code}",
            "--cacert", api.ca_file]
    if auth:
        argv += ["-H", "Authorization: Bearer %s" % (token or api.token)]
    argv += list(extra) + [api.url + path]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=CURL_TIMEOUT)
    body, _, code = r.stdout.rpartition("\n")
    return r.returncode, code, body, r.stderr


def curl_json(api, path, *extra, **kw):
    rc, code, body, err = curl(api, path, *extra, **kw)
    assert rc == 0, (rc, err)
    return int(code), json.loads(body)


def curl_watch(h, api, path):
    """A streaming curl (-N) on path; stopped by the harness at the latest."""
    p = wh.spawn(["curl", "-sSN", "--max-time", "15", "--cacert", api.ca_file,
                  "-H", "Authorization: Bearer %s" % api.token, api.url + path],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    h._push("curl watch %s" % path, lambda: wh.stop_process(p, 2.0))
    return p


def https(api, timeout=5.0):
    ctx = ssl.create_default_context(cafile=api.ca_file)   # verifies the IP SAN
    return http.client.HTTPSConnection("127.0.0.1", api.port, context=ctx, timeout=timeout)


def get(api, path, token=None, conn=None):
    c = conn or https(api)
    hdr = {"Authorization": "Bearer %s" % (token or api.token)} if token is not False else {}
    c.request("GET", path, headers=hdr)
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, json.loads(body) if body.startswith(b"{") else body, r


class RawWatch:
    """GET over TLS on a plain socket, reading the chunked body chunk by chunk
    (http.client hides where chunks and the stream end)."""

    def __init__(self, api, path, token=None, timeout=5.0):
        ctx = ssl.create_default_context(cafile=api.ca_file)
        raw = socket.create_connection(("127.0.0.1", api.port), timeout=timeout)
        self.s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n"
                        "Authorization: Bearer %s\r\nUser-Agent: weft-selftest\r\n\r\n"
                        % (path, api.port, token or api.token)).encode())
        self.buf = b""
        self.eof = False
        self.ended = False           # the terminating chunk came
        self.data = b""              # the body so far (chunk payloads)
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise AssertionError("no response head: %r" % self.buf)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or self.eof:
            return False
        self.s.settimeout(left)
        try:
            d = self.s.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (ssl.SSLError, ConnectionError):   # (python's ssl reads an RST as EOF)
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def chunk(self, timeout=5.0):
        """The next chunk's payload; b'' for the terminating chunk; None if
        the stream stopped (EOF or timeout) before a whole chunk came."""
        deadline = time.monotonic() + timeout
        while True:
            if b"\r\n" in self.buf:
                size_line, rest = self.buf.split(b"\r\n", 1)
                n = int(size_line.split(b";")[0], 16)
                if len(rest) >= n + 2:
                    assert rest[n:n + 2] == b"\r\n", rest[:n + 2]
                    self.buf = rest[n + 2:]
                    self.data += rest[:n]
                    if n == 0:
                        self.ended = True
                    return rest[:n]
            if not self._fill(deadline):
                return None

    def event(self, timeout=5.0):
        c = self.chunk(timeout)
        assert c, "no event chunk (got %r; eof=%s)" % (c, self.eof)
        assert c.endswith(b"\n") and c.count(b"\n") == 1, "one event per chunk: %r" % c
        return json.loads(c)

    def wait_eof(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not self.eof and self._fill(deadline):
            pass
        return self.eof

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def raw_watch(h, api, path, **kw):
    w = RawWatch(api, path, **kw)
    h._push("raw watch", w.close)
    return w


def load_all(api):
    """The fixtures, stored; -> {file name: stored object}."""
    out = {}
    for name in kubeapi.fixture_names():
        obj = kubeapi.load_fixture(name)
        if obj["kind"].endswith("List"):
            continue
        out[name] = api.upsert(obj)
    return out


# --------------------------------------------------------------------------
# TLS, tokens, the service account directory

def test_tls_identity_and_service_account_files(api):
    # curl verifies the chain with the CA file, and the IP and DNS SANs
    rc, code, body, err = curl(api, "/version")
    assert (rc, code) == (0, "200"), err
    assert json.loads(body)["gitVersion"].startswith("v1.")
    r = subprocess.run(["curl", "-sS", "--cacert", api.ca_file, "--resolve",
                        "kubernetes.default.svc:%d:127.0.0.1" % api.port,
                        "https://kubernetes.default.svc:%d/healthz" % api.port],
                       capture_output=True, text=True, timeout=CURL_TIMEOUT)
    assert (r.returncode, r.stdout) == (0, "ok"), r.stderr
    # without the CA the certificate is not trusted (curl: 60)
    r = subprocess.run(["curl", "-sS", api.url + "/version"], capture_output=True, text=True,
                       timeout=CURL_TIMEOUT)
    assert r.returncode == 60, (r.returncode, r.stderr)
    assert wh.wait_for(lambda: api.tls_errors, 2), "the server saw the handshake fail"
    # http.client, hostname checking on (an IP SAN for 127.0.0.1)
    st, body, resp = get(api, "/api/v1/nodes")
    assert st == 200 and body["kind"] == "NodeList"
    assert resp.getheader("Content-Type") == "application/json"
    assert resp.getheader("Server") is None and resp.getheader("Audit-Id")
    # the kubelet's projected service account volume layout
    sa = api.sa_dir
    assert os.path.islink(os.path.join(sa, "..data"))
    assert os.readlink(os.path.join(sa, "token")) == "..data/token"
    assert open(api.token_file).read() == api.token
    assert open(os.path.join(sa, "ca.crt")).read() == open(api.ca_file).read()
    assert open(os.path.join(sa, "namespace")).read() == "weft-system"
    # one generation of certificates per process
    assert kubeapi.make_certs()["ca"] == api.ca_file


def test_token_rotation_and_401(h, api):
    unauthorized = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    code, body = curl_json(api, "/api/v1/services", auth=False)
    assert (code, body) == (401, unauthorized)
    code, body = curl_json(api, "/api/v1/services", token="not-the-token")
    assert (code, body) == (401, unauthorized)
    old = api.token
    stream = raw_watch(h, api, "/api/v1/services?watch=true")   # opened with the old token
    assert stream.status == 200
    new = api.rotate_token()
    assert new != old and api.token == new and open(api.token_file).read() == new
    assert get(api, "/api/v1/services", token=old)[:2] == (401, unauthorized)
    assert get(api, "/api/v1/services", token=new)[0] == 200
    # a stream authenticated before the rotation goes on (as on a real server)
    api.upsert(kubeapi.service("default", "after-rotation", ["198.19.0.50"], [("http", 80)]))
    assert stream.event()["object"]["metadata"]["name"] == "after-rotation"
    # a grace period: both tokens, then only the new one
    newer = api.rotate_token(grace=0.6)
    assert get(api, "/api/v1/services", token=new)[0] == 200
    assert get(api, "/api/v1/services", token=newer)[0] == 200
    time.sleep(0.8)
    assert get(api, "/api/v1/services", token=new)[0] == 401
    assert get(api, "/api/v1/services", token=newer)[0] == 200
    # the log tells which requests had a header, and which were valid
    log = [(e["auth_present"], e["auth_valid"]) for e in api.requests
           if e["resource"] == "services"]
    assert log[:3] == [(False, False), (True, False), (True, True)], log
    assert (True, False) in log[3:] and log[-1] == (True, True)


# --------------------------------------------------------------------------
# lists

def test_list_shapes(api):
    stored = load_all(api)
    p = api.upsert(api.pod("shop", "web-on-b", None, "node-b", "web", ["198.18.66.40"]))
    rv = api.resource_version
    # one counter across resources, in the order of the writes
    rvs = [int(o["metadata"]["resourceVersion"]) for o in stored.values()]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs) and rv == rvs[-1] + 1

    code, sl = curl_json(api, "/api/v1/services")
    assert code == 200
    assert list(sl) == ["kind", "apiVersion", "metadata", "items"]
    assert (sl["kind"], sl["apiVersion"], sl["metadata"]) == ("ServiceList", "v1",
                                                             {"resourceVersion": str(rv)})
    assert [i["metadata"]["name"] for i in sl["items"]] == ["api", "db", "web"]
    raw = json.load(open(os.path.join(kubeapi.FIXTURES, "servicelist-raw.json")))
    assert list(raw) == list(sl) and set(raw["items"][0]) == set(sl["items"][0])
    for it in sl["items"]:
        assert "kind" not in it and "apiVersion" not in it
        md = it["metadata"]
        assert md["uid"] and md["creationTimestamp"].endswith("Z")
        assert isinstance(md["resourceVersion"], str) and int(md["resourceVersion"]) <= rv
    web = next(i for i in sl["items"] if i["metadata"]["name"] == "web")
    assert web["metadata"]["uid"] == kubeapi.load_fixture("service")["metadata"]["uid"]

    assert len(curl_json(api, "/api/v1/namespaces/shop/services")[1]["items"]) == 3
    empty = curl_json(api, "/api/v1/namespaces/nothing-here/services")[1]
    assert empty["items"] == [] and empty["kind"] == "ServiceList"

    st, es, _ = get(api, "/apis/discovery.k8s.io/v1/endpointslices")
    assert (st, es["kind"], es["apiVersion"]) == (200, "EndpointSliceList", "discovery.k8s.io/v1")
    assert len(es["items"]) == 3
    st, es, _ = get(api, "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"
                         "?labelSelector=kubernetes.io%2Fservice-name%3Dweb")
    assert [i["metadata"]["name"] for i in es["items"]] == ["web-x7k2m"]
    conds = [e["conditions"] for e in es["items"][0]["endpoints"]]
    assert conds == [{"ready": True, "serving": True, "terminating": False},
                     {"ready": False, "serving": False, "terminating": False},
                     {"ready": False, "serving": True, "terminating": True}]

    # pods of one node (the agent's view), other selectors, limit/continue
    code, pl = curl_json(api, "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a")
    assert (pl["kind"], pl["apiVersion"]) == ("PodList", "v1")
    assert sorted(i["metadata"]["name"] for i in pl["items"]) == [
        "node-exporter-p7r2t", "web-5d8f7b9c6-k2xqp"]
    code, pl = curl_json(api, "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-b"
                              "&limit=500&continue=&resourceVersion=0")
    assert [i["metadata"]["uid"] for i in pl["items"]] == [p["metadata"]["uid"]]
    code, pl = curl_json(api, "/api/v1/pods?fieldSelector=spec.hostNetwork%3Dtrue,"
                              "metadata.namespace!%3Dshop")
    assert [i["metadata"]["name"] for i in pl["items"]] == ["node-exporter-p7r2t"]
    code, bad = curl_json(api, "/api/v1/pods?fieldSelector=spec.nope%3Dx")
    assert (code, bad["reason"], bad["message"]) == (400, "BadRequest",
                                                      "field label not supported: spec.nope")

    code, nl = curl_json(api, "/api/v1/nodes")
    assert (nl["kind"], [i["metadata"]["name"] for i in nl["items"]]) == ("NodeList", ["node-a"])
    # a single object carries kind/apiVersion; a missing one is a NotFound Status
    code, one = curl_json(api, "/api/v1/namespaces/shop/services/web")
    assert (code, one["kind"], one["apiVersion"]) == (200, "Service", "v1")
    code, nf = curl_json(api, "/api/v1/namespaces/shop/services/nope")
    assert (code, nf["kind"], nf["reason"], nf["message"]) == (
        404, "Status", "NotFound", 'services "nope" not found')
    code, nf = curl_json(api, "/api/v1/configmaps")
    assert (code, nf["reason"]) == (404, "NotFound")
    code, nf = curl_json(api, "/api/v1/namespaces/shop/nodes")   # nodes are not namespaced
    assert code == 404
    assert api.find_requests(resource="pods", verb="list", status=200)


# --------------------------------------------------------------------------
# watches

def test_watch_events_bookmarks_and_keepalive(h, api):
    api.upsert(kubeapi.service("default", "web", ["198.19.0.10"], [("http", 80, "http")]))
    st, sl, _ = get(api, "/api/v1/services")
    list_rv = int(sl["metadata"]["resourceVersion"])
    c = https(api)
    c.request("GET", "/api/v1/services?watch=true&resourceVersion=%d&allowWatchBookmarks=true"
              "&timeoutSeconds=8" % list_rv, headers={"Authorization": "Bearer " + api.token})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
    assert r.getheader("Content-Type") == "application/json"
    assert api.wait_watchers(lambda n: n == 1, "services") == 1
    assert api.watchers("pods") == 0

    def ev():
        line = r.readline()
        assert line.endswith(b"\n"), line
        return json.loads(line)

    a = api.upsert(kubeapi.service("default", "db", ["198.19.0.11"], [("pg", 5432)]))
    e = ev()
    assert e["type"] == "ADDED" and list(e["object"])[:2] == ["kind", "apiVersion"]
    assert (e["object"]["kind"], e["object"]["apiVersion"]) == ("Service", "v1")
    assert e["object"]["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
    assert int(a["metadata"]["resourceVersion"]) == list_rv + 1
    api.upsert(kubeapi.node("node-x", ["198.18.0.99"]))             # another resource: no event
    m = kubeapi.service("default", "db", ["198.19.0.11"], [("pg", 5432), ("metrics", 9187)])
    b = api.upsert(m)
    e = ev()
    assert e["type"] == "MODIFIED" and len(e["object"]["spec"]["ports"]) == 2
    assert e["object"]["metadata"]["uid"] == a["metadata"]["uid"]
    assert int(b["metadata"]["resourceVersion"]) == list_rv + 3    # one counter
    assert api.upsert(m)["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"]
    bm_rv = api.bookmark()                                          # (the no-op sent nothing)
    assert ev() == {"type": "BOOKMARK", "object": {"kind": "Service", "apiVersion": "v1",
                                                   "metadata": {"resourceVersion": str(bm_rv)}}}
    d = api.delete("Service", "default", "db")
    e = ev()
    assert e["type"] == "DELETED" and e["object"]["metadata"]["name"] == "db"
    assert e["object"]["metadata"]["resourceVersion"] == d["metadata"]["resourceVersion"]
    assert int(d["metadata"]["resourceVersion"]) == bm_rv + 1
    r.close()
    c.close()
    assert api.wait_watchers(lambda n: n == 0) == 0   # the server noticed the client left

    # raw framing: one event per chunk; no resourceVersion: the state as ADDED first
    w = raw_watch(h, api, "/apis/discovery.k8s.io/v1/endpointslices?watch=1&timeoutSeconds=1")
    api.upsert(kubeapi.endpointslice("default", "web-abc", "web", "IPv4", [("http", 8080)],
                                     [{"addresses": ["198.18.65.7"], "nodeName": "node-a",
                                       "targetRef": "web-1"}]))
    e = w.event()
    assert (e["type"], e["object"]["kind"], e["object"]["apiVersion"]) == (
        "ADDED", "EndpointSlice", "discovery.k8s.io/v1")
    # timeoutSeconds: the terminating chunk, and the connection is reused
    t0 = time.monotonic()
    assert w.chunk(timeout=3) == b"" and w.ended and not w.eof
    assert 0.5 < time.monotonic() - t0 < 2.5
    conns = api.connections
    w.s.sendall(b"GET /api/v1/services?watch=true&timeoutSeconds=1 HTTP/1.1\r\n"
                b"Host: x\r\nAuthorization: Bearer " + api.token.encode() + b"\r\n\r\n")
    w.buf = b""
    deadline = time.monotonic() + 3
    while b"\r\n\r\n" not in w.buf and w._fill(deadline):
        pass
    w.buf = w.buf.split(b"\r\n\r\n", 1)[1]
    assert w.event()["object"]["metadata"]["name"] == "web"        # synthetic ADDED
    assert w.chunk(timeout=3) == b""
    assert api.connections == conns

    # resuming from an older version replays what came after it
    w = raw_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d&timeoutSeconds=1"
                  % list_rv)
    seen = []
    while True:
        ch = w.chunk(timeout=3)
        if not ch:
            break
        seen.append((json.loads(ch)["type"], json.loads(ch)["object"]["metadata"]["name"]))
    assert seen == [("ADDED", "db"), ("MODIFIED", "db"), ("DELETED", "db")] and w.ended


def test_pod_watch_by_node(h, api):
    api.upsert(kubeapi.node("node-a", ["198.18.0.11"]))
    w = raw_watch(h, api, "/api/v1/pods?watch=true&fieldSelector=spec.nodeName%%3Dnode-a"
                  "&resourceVersion=%d&allowWatchBookmarks=true" % api.resource_version)
    api.wait_watchers(lambda n: n == 1, "pods")
    api.upsert(api.pod("shop", "elsewhere", None, "node-b", "web", ["198.18.66.3"]))
    pending = api.upsert(kubeapi.pod("shop", "p1", None, None, "web"))
    assert pending["status"]["phase"] == "Pending"
    bound = api.pod("shop", "p1", pending["metadata"]["uid"], "node-a", "web", ["198.18.65.3"])
    api.upsert(bound)                  # scheduled onto node-a: starts matching -> ADDED
    e = w.event()
    assert (e["type"], e["object"]["metadata"]["name"]) == ("ADDED", "p1")
    assert e["object"]["status"]["hostIP"] == "198.18.0.11"      # from the stored Node
    assert e["object"]["spec"]["nodeName"] == "node-a"
    api.upsert(api.pod("shop", "hostnet", None, "node-a", "agent", host_network=True))
    e = w.event()
    assert e["object"]["spec"]["hostNetwork"] is True
    assert e["object"]["status"]["podIPs"] == [{"ip": "198.18.0.11"}]
    api.delete("Pod", "shop", "p1")
    e = w.event()
    assert (e["type"], e["object"]["metadata"]["name"]) == ("DELETED", "p1")
    api.bookmark()
    assert w.event()["type"] == "BOOKMARK"
    assert api.watchers("pods") == 1


def test_compact_410(h, api):
    api.upsert(kubeapi.service("default", "a", ["198.19.0.1"], [("http", 80)]))
    old = api.resource_version
    api.upsert(kubeapi.service("default", "b", ["198.19.0.2"], [("http", 80)]))
    live = raw_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d" % old)
    assert live.event()["object"]["metadata"]["name"] == "b"
    c = api.compact()
    assert c == api.resource_version
    n = len(api.requests)
    w = raw_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d&allowWatchBookmarks=true"
                  % old)
    assert w.status == 200 and w.headers["transfer-encoding"] == "chunked"
    assert w.event() == {"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version: %d (%d)" % (old, c), "reason": "Expired",
        "code": 410}}
    assert w.chunk() == b"" and w.ended            # and the stream ends
    e = api.wait_request(since=n, resource="services", verb="watch")
    assert e["expired"] is True and e["resourceVersion"] == str(old)
    # a relist, then a watch from its version works
    st, sl, _ = get(api, "/api/v1/services")
    assert api.find_requests(since=n, resource="services", verb="list")
    ok = raw_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%s&timeoutSeconds=1"
                   % sl["metadata"]["resourceVersion"])
    assert ok.chunk(timeout=3) == b""               # nothing to replay; clean end
    # the open watch was not touched by the compaction...
    api.upsert(kubeapi.service("default", "c", ["198.19.0.3"], [("http", 80)]))
    assert live.event()["object"]["metadata"]["name"] == "c"
    # ...unless asked: then it gets the 410 too, and ends
    c2 = api.compact(end_watches=True)
    e = live.event()
    assert e["type"] == "ERROR" and e["object"]["code"] == 410
    assert e["object"]["message"] == "too old resource version: %d (%d)" % (c2, c2)
    assert live.chunk() == b""
    assert api.wait_watchers(lambda x: x == 0) == 0


def test_cut_streams(h, api):
    api.upsert(kubeapi.service("default", "a", ["198.19.0.1"], [("http", 80)]))
    rv = api.resource_version
    # a whole chunk holding half a line, then FIN: the raw reader sees it
    w = raw_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d" % rv)
    api.wait_watchers(lambda n: n == 1)
    api.upsert(kubeapi.service("default", "b", ["198.19.0.2"], [("http", 80)]))
    assert w.event()["object"]["metadata"]["name"] == "b"
    assert api.cut_streams(mid_line=True) == 1
    assert api.watchers() == 0
    half = w.chunk()
    assert half and not half.endswith(b"\n") and half.startswith(b'{"type":')
    with pytest.raises(ValueError):
        json.loads(half)
    assert w.chunk() is None and w.eof and not w.ended     # no terminating chunk

    # curl: exit 18, its output ends inside a line
    p = curl_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d" % rv)
    first = p.stdout.readline()                                        # "b", replayed in full
    assert json.loads(first)["object"]["metadata"]["name"] == "b"
    assert api.cut_streams() == 1
    out, err = p.communicate(timeout=CURL_TIMEOUT)
    assert p.returncode == 18, (p.returncode, err)
    assert out and b"\n" not in out and out.startswith(b'{"type":')   # the cut line

    # reset: the half line, then an RST (curl: 56, connection reset by peer)
    p = curl_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d" % rv)
    assert json.loads(p.stdout.readline())["object"]["metadata"]["name"] == "b"
    assert api.cut_streams(reset=True) == 1
    out, err = p.communicate(timeout=CURL_TIMEOUT)
    assert p.returncode == 56 and b"reset" in err, (p.returncode, err)
    assert out and b"\n" not in out

    # the chunk header promises the whole line: http.client raises IncompleteRead
    c = https(api)
    c.request("GET", "/api/v1/services?watch=1&resourceVersion=%d"
              % api.resource_version, headers={"Authorization": "Bearer " + api.token})
    r = c.getresponse()
    api.wait_watchers(lambda n: n == 1)
    api.cut_streams(mid_chunk=True)
    with pytest.raises(http.client.IncompleteRead):
        r.readline()
    c.close()

    # at the next event: that event is cut, and a resumed watch gets it whole
    w = raw_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d" % api.resource_version)
    api.wait_watchers(lambda n: n == 1)
    last = api.resource_version
    assert api.cut_streams(at_next_event=True) == 1
    assert w.chunk(timeout=0.3) is None and not w.eof      # armed, nothing sent yet
    api.upsert(kubeapi.service("default", "lost", ["198.19.0.9"], [("http", 80)]))
    half = w.chunk()
    assert w.chunk() is None and w.eof and not w.ended
    w2 = raw_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d" % last)
    full = w2.chunk()
    e = json.loads(full)
    assert (e["type"], e["object"]["metadata"]["name"]) == ("ADDED", "lost")
    assert full.startswith(half) and len(half) < len(full) - 1   # the lost event, cut


def test_slow(h, api):
    api.upsert(kubeapi.service("default", "a", ["198.19.0.1"], [("http", 80)]))
    api.slow(0.3)
    t0 = time.monotonic()
    st, sl, _ = get(api, "/api/v1/services")
    assert st == 200 and len(sl["items"]) == 1
    assert time.monotonic() - t0 >= 0.55          # head delayed, body in two delayed halves
    w = raw_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d" % api.resource_version)
    api.wait_watchers(lambda n: n == 1)
    t0 = time.monotonic()
    api.upsert(kubeapi.service("default", "b", ["198.19.0.2"], [("http", 80)]))
    assert w.chunk(timeout=0.15) is None          # not yet
    assert w.event()["object"]["metadata"]["name"] == "b"
    assert time.monotonic() - t0 >= 0.28
    api.slow(0)
    t0 = time.monotonic()
    api.upsert(kubeapi.service("default", "c", ["198.19.0.3"], [("http", 80)]))
    w.event()
    assert time.monotonic() - t0 < 0.25


def test_forbidden_and_injected_failures(h):
    api = kubeapi.KubeAPI(h, forbidden=["endpointslices"])
    api.start()
    code, body = curl_json(api, "/apis/discovery.k8s.io/v1/endpointslices")
    assert (code, body) == (403, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'endpointslices is forbidden: User "system:serviceaccount:weft-system:weftd" '
                   'cannot list resource "endpointslices" in API group "discovery.k8s.io" '
                   'at the cluster scope',
        "reason": "Forbidden", "details": {"group": "discovery.k8s.io", "kind": "endpointslices"},
        "code": 403})
    code, body = curl_json(api, "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"
                                "?watch=true")
    assert code == 403 and body["message"].endswith(
        'cannot watch resource "endpointslices" in API group "discovery.k8s.io" '
        'in the namespace "shop"')
    api.forbid("pods")
    code, body = curl_json(api, "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a")
    assert code == 403 and body["details"] == {"kind": "pods"} and 'API group ""' in \
        body["message"]
    api.allow("endpointslices", "pods")
    assert curl_json(api, "/apis/discovery.k8s.io/v1/endpointslices")[0] == 200
    # a 500 for one request, then back to normal
    api.fail("services", 500, times=1)
    code, body = curl_json(api, "/api/v1/services")
    assert (code, body["reason"], body["code"]) == (500, "InternalError", 500)
    assert curl_json(api, "/api/v1/services")[0] == 200
    # 401 although the token is fine; every resource at once
    api.fail("nodes", 401)
    assert curl_json(api, "/api/v1/nodes")[1]["reason"] == "Unauthorized"
    api.fail("nodes", None)
    api.fail("*", 503)
    assert curl_json(api, "/api/v1/nodes")[1]["reason"] == "ServiceUnavailable"
    assert curl_json(api, "/api/v1/services?watch=1")[0] == 503
    api.fail("*", None)
    assert curl_json(api, "/api/v1/nodes")[0] == 200
    # writes are not served
    rc, code, body, _ = curl(api, "/api/v1/services", "-X", "POST", "-d", "{}")
    assert code == "405" and json.loads(body)["reason"] == "MethodNotAllowed"
    assert not api.errors, api.errors


def test_stop_and_restart(h, api):
    api.upsert(kubeapi.service("default", "a", ["198.19.0.1"], [("http", 80)]))
    rv = api.resource_version
    w = raw_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d" % rv)
    p = curl_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d" % rv)
    idle = https(api)                      # a keep-alive connection between requests
    assert get(api, "/api/v1/nodes", conn=idle)[0] == 200
    assert api.wait_watchers(lambda n: n == 2) == 2
    port, url = api.port, api.url
    api.stop()
    assert w.wait_eof() and not w.ended                       # no terminating chunk
    out, err = p.communicate(timeout=CURL_TIMEOUT)
    assert p.returncode == 18, (p.returncode, err)
    assert api.watchers() == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        get(api, "/api/v1/nodes", conn=idle)
    assert not [t for t in threading.enumerate() if t.name.startswith("kubeapi-")]
    api.stop()                                                # idempotent
    # back on the same port, with the same objects and versions
    assert api.start() == url
    st, sl, _ = get(api, "/api/v1/services")
    assert st == 200 and sl["metadata"]["resourceVersion"] == str(rv)
    assert [i["metadata"]["name"] for i in sl["items"]] == ["a"]
    w = raw_watch(h, api, "/api/v1/services?watch=1&resourceVersion=%d" % rv)
    api.upsert(kubeapi.service("default", "b", ["198.19.0.2"], [("http", 80)]))
    assert w.event()["object"]["metadata"]["name"] == "b"
    # the harness stops it (and the watch) at close
    assert h.close() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert not [t for t in threading.enumerate() if t.name.startswith("kubeapi-")]


# --------------------------------------------------------------------------
# fixtures and builders

OPAQUE = {"labels", "annotations", "selector", "capacity", "allocatable", "requests", "limits"}


def _paths(o, pre=""):
    """Every field path in o ('/spec/ports[]/name'); the keys of maps that
    hold data (labels, selectors, ...) are not fields."""
    if isinstance(o, dict):
        out = set()
        for k, v in o.items():
            out.add(pre + "/" + k)
            if k not in OPAQUE:
                out |= _paths(v, pre + "/" + k)
        return out
    if isinstance(o, list):
        return set().union(*[_paths(v, pre + "[]") for v in o]) if o else set()
    return set()


def test_fixtures_and_builders(api):
    names = kubeapi.fixture_names()
    assert set(names) >= {"service", "service-dualstack", "service-headless", "endpointslice",
                          "endpointslice-ipv6", "endpointslice-headless", "pod",
                          "pod-hostnetwork", "node", "servicelist-raw"}
    for name in names:
        o = kubeapi.load_fixture(name)
        if name == "servicelist-raw":
            assert all("kind" not in i and "apiVersion" not in i for i in o["items"])
            continue
        res = kubeapi.resource_of(o["kind"])
        assert o["apiVersion"] == res.api_version, name
        assert o["metadata"]["uid"] and o["metadata"]["resourceVersion"]
        stored = api.upsert(o)
        back = api.get(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        assert back == stored and back["metadata"]["uid"] == o["metadata"]["uid"]
        strip = ("resourceVersion", "creationTimestamp")
        assert {k: v for k, v in back["metadata"].items() if k not in strip} == \
            {k: v for k, v in o["metadata"].items() if k not in strip}
        assert {k: v for k, v in back.items() if k != "metadata"} == \
            {k: v for k, v in o.items() if k != "metadata"}
    ds = kubeapi.load_fixture("service-dualstack")["spec"]
    assert ds["clusterIP"] == ds["clusterIPs"][0] and ds["ipFamilies"] == ["IPv4", "IPv6"]
    assert kubeapi.load_fixture("service-headless")["spec"]["clusterIP"] == "None"

    # the builders make nothing the real objects do not have
    svc = api.service("shop", "web", ["198.19.0.10"],
                      [("http", 80, "http", 8080), ("grpc", 9090, "kubernetes.io/h2c", "grpc")])
    built = {
        "service": svc,
        "service-dualstack": api.service("shop", "api", ["198.19.0.20", "2001:2:0:1::14"],
                                         [("https", 443, None, 8443)],
                                         ip_family_policy="PreferDualStack"),
        "service-headless": api.service("shop", "db", ["None"], [("postgres", 5432)]),
        "endpointslice": api.endpointslice(
            "shop", "web-x7k2m", "web", "IPv4", [("http", 8080, "http")],
            [{"addresses": ["198.18.65.7"], "nodeName": "node-a", "zone": "zone-a",
              "targetRef": kubeapi.load_fixture("pod")},
             {"addresses": ["198.18.66.12"], "ready": False},
             {"addresses": ["198.18.65.9"], "ready": False, "serving": True,
              "terminating": True}]),
        "endpointslice-headless": api.endpointslice(
            "shop", "db-x", "db", "IPv4", [("postgres", 5432)],
            [kubeapi.endpoint(["198.18.66.30"], hostname="db-0", node_name="node-b",
                              target_ref="db-0", ns="shop")]),
        "pod": api.pod("shop", "web-1", None, "node-a", "web", ["198.18.65.7", "2001:2:0:2::7"]),
        "pod-hostnetwork": api.pod("monitoring", "ne", None, "node-a", "ne", host_network=True),
        "node": api.node("node-a", ["198.18.0.11", "2001:2::11"],
                         pod_cidrs=["198.18.65.0/24", "2001:2:0:2::/64"]),
    }
    for name, obj in built.items():
        extra = _paths(obj) - _paths(kubeapi.load_fixture(name))
        assert not extra, "%s builder makes fields the fixture lacks: %s" % (name, sorted(extra))
    assert svc["spec"]["ports"][1]["targetPort"] == "grpc"
    assert built["service-dualstack"]["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    owner = built["endpointslice"]["metadata"]["ownerReferences"][0]
    assert owner["uid"] == kubeapi.load_fixture("service")["metadata"]["uid"]   # stored above
    assert built["endpointslice"]["endpoints"][0]["targetRef"]["uid"] == \
        kubeapi.load_fixture("pod")["metadata"]["uid"]
    assert built["pod-hostnetwork"]["status"]["podIPs"] == [{"ip": "198.18.0.11"}]
