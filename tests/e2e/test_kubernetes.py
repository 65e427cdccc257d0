# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Kubernetes discovery (issue 13): weftd lists and watches Services,
EndpointSlices, this node's Pods and Nodes from an API server (kubeapi.py, the
real wire format over TLS with a bearer token) and serves each Service port as
a weft service: a client in a pod dials the ClusterIP and reaches pod
endpoints. Scaling is followed within a second; the API going away, a token
rotation and a 410 relist keep traffic flowing. A pod's calls to an endpoint
on another node go over mutual TLS with the pod's service account identity."""

import json
import os
import subprocess
import time

import pytest

import podnet
from kubeapi import KubeAPI
from podnet import make_pod, pod_glob
from weft_harness import (PYTHON, SCRIPT, CertAuthority, admin_call, free_port, http_get, node_weftd,
                          ns_server, rewrite_config, service, tls_conf, vip_addr, vip_host, wait_for)

NODE = "node-a"


@pytest.fixture(autouse=True)
def _pods_possible(weft_env):
    podnet.require_pods()


class Cluster:
    """One node: a weftd discovering from api, pods under root."""


def cluster(weft, extra="", extra_root="", services_text=None):
    """services_text: the config's services list, verbatim (default: none)."""
    c = Cluster()
    c.api = KubeAPI(weft)
    c.api.start()
    c.root = weft.cgroup(tag="k8s")
    c.api.upsert(c.api.node(NODE, ["127.0.0.1"]))
    kube = ('kubernetes: { api = "%s"; token_file = "%s"; ca_file = "%s"; node_name = "%s"; %s };\n'
            % (c.api.url.rstrip("/"), c.api.token_file, c.api.ca_file, NODE, extra))
    c.d = weft.weftd(pod_glob(c.root, "systemd"), [], extra_root=kube + extra_root, start=False)
    if services_text is not None:
        c.d.config_text = c.d.config_text.split("services = (", 1)[0] + services_text
        with open(c.d.conf_path, "w") as f:
            f.write(c.d.config_text)
    c.d.start()
    return c


def services_doc(d):
    st, body = http_get(d.admin, "/services")
    assert st == 200
    return {s["name"]: s for s in json.loads(body)["services"]}


def server_pod(weft, c, name):
    """A pod on this node running an HTTP server that says its name."""
    p = make_pod(weft, c.root)
    port = free_port()
    p.run([PYTHON, SCRIPT, "serve", "--mode", "http", "--name", name, "--listen",
           "%s:%d" % (p.ip, port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_for(lambda: subprocess.run(
        ["nsenter", "--net=/run/netns/%s" % p.netns, "ss", "-Htln", "sport = :%d" % port],
        capture_output=True, text=True).stdout.strip(), 5, 0.05)
    p.port = port
    return p


def who(pod, vip):
    r = pod.exec([PYTHON, SCRIPT, "client", "--mode", "http", "--connect", vip, "--timeout", "5"],
                 timeout=15)
    res = json.loads(r.stdout)
    return (res.get("reply") or {}).get("server") if res["ok"] else "error:%s" % res["error"]


def slice_for(api, name, pods, ready=None):
    ready = ready or {}
    return api.endpointslice("shop", name + "-x1", name, "IPv4", [("http", pods[0].port, "http")],
                             [{"addresses": [p.ip], "ready": ready.get(p.ip, True), "nodeName": NODE}
                              for p in pods])


def test_clusterip_to_pod_endpoints_and_scaling(weft):
    c = cluster(weft)
    vip = vip_host()
    a, b = server_pod(weft, c, "cart-a"), server_pod(weft, c, "cart-b")
    client = make_pod(weft, c.root)
    c.api.upsert(c.api.service("shop", "cart", [vip], [("http", 80, "http")]))
    # both servers listen on their own port; one slice per port keeps the example honest
    c.api.upsert(c.api.endpointslice("shop", "cart-a", "cart", "IPv4", [("http", a.port, "http")],
                                     [{"addresses": [a.ip], "nodeName": NODE}]))
    name = "shop/cart:80"
    # Services and slices come on separate watches: wait for both
    assert wait_for(lambda: (services_doc(c.d).get(name) or {}).get("endpoints"), 5, 0.05), services_doc(c.d)
    svc = services_doc(c.d)[name]
    assert svc["addresses"] == ["%s:80" % vip], svc
    assert svc["source"] == "kubernetes" and svc["protocol"] == "http", svc
    assert [e["address"] for e in svc["endpoints"]] == ["%s:%d" % (a.ip, a.port)], svc
    assert who(client, "%s:80" % vip) == "cart-a"

    # scale up: a second slice (another pod, ready) is used within a second
    t0 = time.monotonic()
    c.api.upsert(c.api.endpointslice("shop", "cart-b", "cart", "IPv4", [("http", b.port, "http")],
                                     [{"addresses": [b.ip], "nodeName": NODE}]))
    assert wait_for(lambda: len(services_doc(c.d)[name]["endpoints"]) == 2, 1.0, 0.02), \
        services_doc(c.d)[name]
    print("scale up seen in %.0f ms" % ((time.monotonic() - t0) * 1000))
    seen = {who(client, "%s:80" % vip) for _ in range(8)}
    assert seen == {"cart-a", "cart-b"}, seen

    # not ready: out within a second
    t0 = time.monotonic()
    c.api.upsert(c.api.endpointslice("shop", "cart-a", "cart", "IPv4", [("http", a.port, "http")],
                                     [{"addresses": [a.ip], "nodeName": NODE, "ready": False}]))
    assert wait_for(lambda: len(services_doc(c.d)[name]["endpoints"]) == 1, 1.0, 0.02)
    assert {who(client, "%s:80" % vip) for _ in range(4)} == {"cart-b"}
    # scale down: the slice goes
    c.api.delete("EndpointSlice", "shop", "cart-b")
    assert wait_for(lambda: len(services_doc(c.d)[name]["endpoints"]) == 0, 1.0, 0.02)
    # the Service goes
    c.api.delete("Service", "shop", "cart")
    assert wait_for(lambda: name not in services_doc(c.d), 1.0, 0.02)


def test_api_away_token_rotation_and_410(weft):
    c = cluster(weft)
    vip = vip_host()
    a = server_pod(weft, c, "cart-a")
    client = make_pod(weft, c.root)
    c.api.upsert(c.api.service("shop", "cart", [vip], [("http", 80, "http")]))
    c.api.upsert(c.api.endpointslice("shop", "cart-a", "cart", "IPv4", [("http", a.port, "http")],
                                     [{"addresses": [a.ip], "nodeName": NODE}]))
    name = "shop/cart:80"
    assert wait_for(lambda: name in services_doc(c.d) and services_doc(c.d)[name]["endpoints"], 5, 0.05)
    assert who(client, "%s:80" % vip) == "cart-a"

    # the API goes away: traffic keeps flowing on the last known state
    c.api.stop()
    for _ in range(3):
        assert who(client, "%s:80" % vip) == "cart-a"
        time.sleep(0.3)
    assert c.d.running()
    c.api.start()
    assert c.api.wait_watchers(lambda n: n >= 4, timeout=40), c.api.watchers()

    # a token rotation: the next requests carry the new token
    since = len(c.api.requests)
    c.api.rotate_token()
    c.api.cut_streams()
    assert c.api.wait_watchers(lambda n: n >= 4, timeout=40), c.api.watchers()
    later = c.api.requests[since:]
    assert later and all(r["auth_valid"] for r in later if r["verb"] == "watch"), later[-5:]

    # 410: the watched version is compacted away; weftd relists and follows changes made meanwhile
    since = len(c.api.requests)
    c.api.delete("EndpointSlice", "shop", "cart-a")
    c.api.compact(end_watches=True)
    c.api.upsert(c.api.endpointslice("shop", "cart-a2", "cart", "IPv4", [("http", a.port, "http")],
                                     [{"addresses": [a.ip], "nodeName": NODE}]))
    assert wait_for(lambda: any(r["verb"] == "list" for r in c.api.requests[since:]), 10, 0.05)
    assert wait_for(lambda: len(services_doc(c.d)[name]["endpoints"]) == 1, 5, 0.05)
    assert who(client, "%s:80" % vip) == "cart-a"
    st, body = http_get(c.d.admin, "/metrics")
    assert 'weft_kubernetes_relists_total{kind="endpointslices"}' in body


def test_namespaces_limit_what_is_served(weft):
    c = cluster(weft, extra='namespaces = [ "shop" ];')
    vip1, vip2 = vip_host(), vip_host()
    c.api.upsert(c.api.service("shop", "cart", [vip1], [("http", 80, "http")]))
    c.api.upsert(c.api.service("other", "cart", [vip2], [("http", 80, "http")]))
    assert wait_for(lambda: "shop/cart:80" in services_doc(c.d), 5, 0.05), services_doc(c.d)
    time.sleep(0.3)
    assert "other/cart:80" not in services_doc(c.d)
    st, body = http_get(c.d.admin, "/metrics")
    assert 'weft_kubernetes_synced{kind="services"} 1' in body


def test_big_lists_are_read_in_pages(weft):
    """A list bigger than a page (500) is read with limit/continue, every page
    applied, nothing lost; a continue token that expired mid-list restarts it."""
    c = cluster(weft)
    base = [int(x) for x in vip_host().split(".")[:2]]
    for i in range(1200):
        c.api.upsert(c.api.service("load", "svc-%d" % i,
                                   ["%d.%d.%d.%d" % (base[0], base[1] or 10, 100 + i // 250, i % 250 + 1)],
                                   [("tcp", 80, None)]))
    assert wait_for(lambda: sum(1 for n in services_doc(c.d) if n.startswith("load/")) == 1200, 20, 0.2), \
        len(services_doc(c.d))
    # a relist (the watched version compacted away) reads the 1200 in pages of 500
    since = len(c.api.requests)
    c.api.delete("Service", "load", "svc-7")
    c.api.compact(end_watches=True)
    assert wait_for(lambda: sum(1 for r in c.api.requests[since:] if r.get("verb") == "list"
                                and "services" in r["path"] and r.get("continue")) >= 2, 20, 0.1)
    assert wait_for(lambda: sum(1 for n in services_doc(c.d) if n.startswith("load/")) == 1199, 20, 0.2)
    assert "load/svc-7:80" not in services_doc(c.d)
    pages = [r for r in c.api.requests[since:] if r.get("verb") == "list" and "services" in r["path"]
             and r.get("status") == 200]
    assert sum(1 for r in pages if r.get("continue")) >= 2, [(r["path"], r.get("query")) for r in pages]


TD = "example.org"


def test_pod_identity_across_nodes(weft, tmp_path):
    """A pod's call to an endpoint on another node goes over mTLS with a
    certificate minted for its service account
    (spiffe://example.org/ns/shop/sa/checkout): the far agent's allow-list
    admits it; a pod of another service account, and a pod the API has not
    shown (the node identity), are denied."""
    if not __import__("shutil").which("openssl"):
        pytest.fail("openssl not found (scripts/weft-ca needs it): run `make deps`")
    ca = CertAuthority(str(tmp_path / "ca"), TD)
    node_a = ca.issue("spiffe://%s/node/node-a" % TD, str(tmp_path / "node-a"))
    node_b = ca.issue("spiffe://%s/node/node-b" % TD, str(tmp_path / "node-b"))
    checkout = "spiffe://%s/ns/shop/sa/checkout" % TD
    tls_a = {"ca": ca.ca, "cert": node_a[0], "key": node_a[1],
             "issuer_cert": os.path.join(ca.dir, "issuer.pem"),
             "issuer_key": os.path.join(ca.dir, "issuer.key"), "cert_lifetime_s": 3600}
    c = cluster(weft, extra_root=tls_conf(tls_a))
    inbound_port = int(c.d.inbound.rsplit(":", 1)[1])

    # node B: its own namespace (a veth to this one, not enrolled here), its agent on
    # the same inbound port, a backend, and an allow-list naming one service account
    nb = make_pod(weft, weft.cgroup(tag="node-b"))
    backend = ns_server(weft, nb.netns, "http", "cart-b", "%s:%d" % (nb.ip, free_port()))
    d2 = node_weftd(weft, nb.netns, "%s:%d" % (nb.ip, inbound_port), [weft.cgroup(tag="node-b-apps")],
                    [service("cart", [vip_addr()], [backend.addr], protocol="http",
                             extra=' authorization = { allow = [ "%s" ]; };' % checkout)],
                    tls={"ca": ca.ca, "cert": node_b[0], "key": node_b[1]})
    c.api.upsert(c.api.node("node-b", [nb.ip]))

    good, other, unknown = (make_pod(weft, c.root) for _ in range(3))
    c.api.upsert(c.api.pod("shop", "checkout-1", uid=good.uid, node=NODE, sa="checkout", ips=[good.ip]))
    c.api.upsert(c.api.pod("shop", "report-1", uid=other.uid, node=NODE, sa="report", ips=[other.ip]))
    vip = vip_host()
    # port 80 is appProtocol http, 81 the same server without one (auto: detected as HTTP)
    c.api.upsert(c.api.service("shop", "cart", [vip], [("http", 80, "http"), ("raw", 81, None)]))
    bport = int(backend.addr.rsplit(":", 1)[1])
    c.api.upsert(c.api.endpointslice("shop", "cart-b", "cart", "IPv4",
                                     [("http", bport, "http"), ("raw", bport, None)],
                                     [{"addresses": [nb.ip], "nodeName": "node-b"}]))
    name = "shop/cart:80"
    assert wait_for(lambda: (services_doc(c.d).get(name) or {}).get("endpoints"), 5, 0.05), services_doc(c.d)
    ep = services_doc(c.d)[name]["endpoints"][0]
    assert ep["address"] == backend.addr and ep.get("node") == "%s:%d" % (nb.ip, inbound_port), ep
    # the Pods watch has shown both pods (a weftd metric: this node's pods)
    assert wait_for(lambda: 'weft_kubernetes_pod_identities 2' in http_get(c.d.admin, "/metrics")[1],
                    5, 0.05), http_get(c.d.admin, "/metrics")[1]

    def call(pod, port=80):
        r = pod.exec([PYTHON, SCRIPT, "client", "--mode", "http", "--connect", "%s:%d" % (vip, port),
                      "--timeout", "5"], timeout=15)
        res = json.loads(r.stdout)
        return res.get("status_line", ""), (res.get("reply") or {}).get("server")

    st, server = call(good)
    assert " 200 " in st and server == "cart-b", (st, server, services_doc(c.d)[name], d2.log_tail(20))
    st, server = call(good, 81)
    assert " 200 " in st and server == "cart-b", (st, server, d2.log_tail(20))
    assert [x for x in d2.metrics() if checkout in x[1].values()], \
        "node B counts nothing by %s: %r" % (checkout, d2.metrics())
    for pod, who_ in ((other, "spiffe://%s/ns/shop/sa/report" % TD), (unknown, "spiffe://%s/node/node-a" % TD)):
        since = len(d2.log())
        st, server = call(pod)
        assert " 503 " in st and server is None, (st, server)
        st, server = call(pod, 81)
        assert " 503 " in st and server is None, (st, server)
        assert wait_for(lambda: who_ in d2.log()[since:] and "denied" in d2.log()[since:], 3, 0.05), \
            d2.log()[since:]
    body = http_get(c.d.admin, "/metrics")[1]
    assert 'weft_tls_workload_identities{source="pod"} 2' in body, body
    assert "weft_tls_identity_fallbacks_total 0" in body
    # the pod goes: its identity goes with it (a pod UID is never reused)
    c.api.delete("Pod", "shop", "checkout-1")
    assert wait_for(lambda: 'weft_kubernetes_pod_identities 1' in http_get(c.d.admin, "/metrics")[1],
                    5, 0.05)
    st, _ = call(good)
    assert " 503 " in st, st


OVERRIDES = """services = (
  { name = "shop/cart:80"; protocol = "http";
    routes = ( { name = "v2"; match = { path_prefix = "/v2/"; };
                 backends = ( { service = "shop/cart-v2:80"; } ); } ); },
  { name = "shop/cart-v2:80"; }
);
"""


def test_config_sets_the_policy_of_a_discovered_service(weft):
    """A config entry named like a discovered service sets its policy (here
    protocol and a route to another discovered service); the API gives the
    addresses and endpoints. Before the Service exists the entry waits with
    no address; a reload that drops the route takes effect."""
    c = cluster(weft, services_text=OVERRIDES)
    svcs = services_doc(c.d)
    assert svcs["shop/cart:80"]["source"] == "kubernetes+config" and svcs["shop/cart:80"]["addresses"] == [], svcs
    vip = vip_host()
    a, b = server_pod(weft, c, "cart-a"), server_pod(weft, c, "cart-b")
    client = make_pod(weft, c.root)
    # no appProtocol: discovery alone would make both "auto"
    c.api.upsert(c.api.service("shop", "cart", [vip], [("web", 80, None)]))
    c.api.upsert(c.api.service("shop", "cart-v2", [vip_host()], [("web", 80, None)]))
    c.api.upsert(c.api.endpointslice("shop", "cart-a", "cart", "IPv4", [("web", a.port, None)],
                                     [{"addresses": [a.ip], "nodeName": NODE}]))
    c.api.upsert(c.api.endpointslice("shop", "cart-v2-b", "cart-v2", "IPv4", [("web", b.port, None)],
                                     [{"addresses": [b.ip], "nodeName": NODE}]))
    assert wait_for(lambda: all((services_doc(c.d).get(n) or {}).get("endpoints")
                                for n in ("shop/cart:80", "shop/cart-v2:80")), 5, 0.05), services_doc(c.d)
    svcs = services_doc(c.d)
    cart, v2 = svcs["shop/cart:80"], svcs["shop/cart-v2:80"]
    assert cart["addresses"] == ["%s:80" % vip] and cart["protocol"] == "http", cart
    assert [r if isinstance(r, str) else r["name"] for r in cart["http"]["routes"]] == ["v2"], cart["http"]
    assert v2["source"] == "kubernetes+config" and v2["protocol"] == "auto", v2  # not set: from the API
    assert len([n for n in svcs if n.startswith("shop/")]) == 2, svcs  # no duplicate entries

    def get(path):
        r = client.exec(["curl", "-sS", "--max-time", "5", "http://%s:80%s" % (vip, path)], timeout=15)
        return json.loads(r.stdout)["server"] if r.returncode == 0 else "curl: %s" % r.stderr

    assert get("/") == "cart-a"
    assert get("/v2/items") == "cart-b"
    # endpoints change under the override: followed as for any discovered service
    c.api.upsert(c.api.endpointslice("shop", "cart-a", "cart", "IPv4", [("web", a.port, None)],
                                     [{"addresses": [a.ip], "nodeName": NODE, "ready": False}]))
    assert wait_for(lambda: not services_doc(c.d)["shop/cart:80"]["endpoints"], 1.0, 0.02)
    # a reload without the route: /v2/ goes to the service's own endpoints again
    c.api.upsert(c.api.endpointslice("shop", "cart-a", "cart", "IPv4", [("web", a.port, None)],
                                     [{"addresses": [a.ip], "nodeName": NODE}]))
    text = c.d.config_text.split("services = (", 1)[0] + 'services = ( { name = "shop/cart:80"; } );\n'
    rewrite_config(c.d, text=text)
    st, _, body = admin_call(c.d.admin, "POST", "/reload")
    assert st == 200, body
    assert wait_for(lambda: services_doc(c.d)["shop/cart:80"]["endpoints"], 2, 0.05)
    svc = services_doc(c.d)["shop/cart:80"]
    assert svc["protocol"] == "auto" and not (svc.get("http") or {}).get("routes"), svc
    assert get("/v2/items") == "cart-a"
    assert "shop/cart-v2:80" in services_doc(c.d)  # discovered still, without the file's entry
    assert services_doc(c.d)["shop/cart-v2:80"]["source"] == "kubernetes"


def test_refusals_cut_and_slow_streams(weft):
    """RBAC refusing one kind (403) and a rejected token (401) are logged with
    what to do, counted, retried with back-off, and do not stop the other
    kinds; a stream cut in the middle of an event loses nothing (the watch
    resumes from the last version seen); a slow API is followed."""
    c = cluster(weft)
    vip = vip_host()
    a = server_pod(weft, c, "cart-a")
    client = make_pod(weft, c.root)
    name = "shop/cart:80"
    assert c.api.wait_watchers(lambda n: n >= 4, timeout=10), c.api.watchers()

    # 403 on pods: the other kinds keep serving; the log names RBAC
    since_log = len(c.d.log())
    c.api.forbid("pods")
    c.api.cut_streams()
    c.api.upsert(c.api.service("shop", "cart", [vip], [("http", 80, "http")]))
    c.api.upsert(c.api.endpointslice("shop", "cart-a", "cart", "IPv4", [("http", a.port, "http")],
                                     [{"addresses": [a.ip], "nodeName": NODE}]))
    assert wait_for(lambda: (services_doc(c.d).get(name) or {}).get("endpoints"), 10, 0.05), services_doc(c.d)
    assert who(client, "%s:80" % vip) == "cart-a"
    assert wait_for(lambda: "HTTP 403" in c.d.log()[since_log:] and "RBAC" in c.d.log()[since_log:], 10, 0.1), \
        c.d.log_tail(20)
    errs = lambda: sum(int(l.rsplit(" ", 1)[1]) for l in http_get(c.d.admin, "/metrics")[1].splitlines()
                       if l.startswith('weft_kubernetes_errors_total{kind="pods"}'))
    n0 = errs()
    assert n0 >= 1
    time.sleep(1.0)
    assert errs() - n0 <= 3, "retried too often while forbidden: %d in 1 s" % (errs() - n0)  # back-off
    c.api.allow("pods")

    # 401: the token is refused; the log says which file
    since_log = len(c.d.log())
    c.api.fail("*", 401, times=2)
    c.api.cut_streams()
    assert wait_for(lambda: "HTTP 401" in c.d.log()[since_log:] and "token" in c.d.log()[since_log:], 10, 0.1), \
        c.d.log_tail(20)
    assert c.api.wait_watchers(lambda n: n >= 4, timeout=40), c.api.watchers()
    assert who(client, "%s:80" % vip) == "cart-a"

    # a cut in the middle of the next event: that event comes again on the resumed watch
    since = len(c.api.requests)
    c.api.cut_streams(at_next_event=True)
    c.api.upsert(c.api.endpointslice("shop", "cart-a", "cart", "IPv4", [("http", a.port, "http")],
                                     [{"addresses": [a.ip], "nodeName": NODE, "ready": False}]))
    assert wait_for(lambda: not services_doc(c.d)[name]["endpoints"], 10, 0.05), services_doc(c.d)[name]
    assert not any(r["verb"] == "list" for r in c.api.requests[since:]), "a cut stream needs no relist"

    # slow: every write of the API delayed; changes still arrive
    c.api.slow(0.2)
    c.api.upsert(c.api.endpointslice("shop", "cart-a", "cart", "IPv4", [("http", a.port, "http")],
                                     [{"addresses": [a.ip], "nodeName": NODE}]))
    assert wait_for(lambda: services_doc(c.d)[name]["endpoints"], 10, 0.05)
    c.api.slow(0)
    assert who(client, "%s:80" % vip) == "cart-a"
    assert c.d.running()
