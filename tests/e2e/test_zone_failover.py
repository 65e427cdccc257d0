# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Zones and failover, end to end: the node is in zone "a" (agent.zone);
a service has endpoints in zone a and in zone b. Local endpoints are killed
one by one: traffic stays local while the ready share x 1.4 covers it,
spills over to zone b in proportion when it does not, and comes back as
they do. Per connection for TCP, per request for HTTP (one client
connection sees its requests spread). Dead endpoints cost no failed
connection: connects are retried and the breaker ejects them.
"""

import json
import subprocess
import time

from weft_harness import (admin_json, free_port, http_backend, http_requests, in_cgroup_argv, metrics, prom_get,
                          service, vip_addr, wait_for)

PY = "/usr/bin/python3"

LOOP = r'''
import collections, json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
servers, errors = collections.Counter(), collections.Counter()
for _ in range(n):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, int(port)))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        servers[json.loads(data.partition(b"\r\n\r\n")[2])["server"]] += 1
    except Exception as e:
        errors[type(e).__name__] += 1
    finally:
        s.close()
print(json.dumps({"servers": servers, "errors": errors}))
'''

BREAKER = ("circuit_breaker = { consecutive_failures = 1; base_ejection_ms = 1000; max_ejection_ms = 1000; "
           "max_ejection_percent = 100; };")


def tcp_loop(cg, vip, n, timeout=120):
    p = subprocess.run(in_cgroup_argv(cg, [PY, "-c", LOOP, vip, str(n)]), capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


def svc_of(d, name="api"):
    for s in admin_json(d.admin, "/services")["services"]:
        if s["name"] == name:
            return s
    raise AssertionError("no service %s" % name)


def states(d):
    return {e["address"]: e["state"] for e in svc_of(d)["endpoints"]}


def zoned(endpoints):
    """[(address, zone)] -> the endpoints list, verbatim."""
    return " endpoints = ( %s );" % ", ".join('{ address = "%s"; zone = "%s"; }' % e for e in endpoints)


def local_share(servers):
    local = sum(v for k, v in servers.items() if k.startswith("L"))
    return 100.0 * local / max(1, sum(servers.values()))


def test_tcp_spills_over_at_the_threshold_and_returns(weft):
    cg = weft.cgroup(tag="app")
    addrs = {n: "127.0.0.1:%d" % free_port() for n in ("L1", "L2", "L3", "L4", "R1", "R2")}
    srv = {n: weft.server("http", n, listen=a) for n, a in addrs.items()}
    vip = vip_addr()
    eps = [(addrs[n], "a" if n[0] == "L" else "b") for n in sorted(addrs)]
    d = weft.weftd([cg], [service("api", [vip], None, attempts=3, extra=zoned(eps) + " " + BREAKER)],
                   extra_agent='  zone = "a";\n')
    loc = svc_of(d)["locality"]
    assert loc["zone"] == "a" and loc["in_use"] == {"priority": 0, "local": True}, loc
    assert loc["reason"] == "100% to zone a (local, priority 0): 4/4 ready", loc

    # killed one by one: 3/4 x 1.4 = 105% (no spill), 2/4: 70%, 1/4: 35%, 0/4: 0% local;
    # 400 connections: the bounds are 5 standard deviations wide (70%: 2.3 points)
    expect = [(100, 100), (58, 82), (23, 47), (0, 0)]
    shares = []
    for k, name in enumerate(("L1", "L2", "L3", "L4")):
        srv[name].stop()
        warm = tcp_loop(cg, vip, 12)  # the dead one is picked, fails over, is ejected
        assert warm["errors"] == {}, warm
        assert states(d)[addrs[name]] in ("ejected", "probing"), states(d)
        res = tcp_loop(cg, vip, 400)
        assert res["errors"] == {}, (k, res)
        share = local_share(res["servers"])
        shares.append(share)
        lo, hi = expect[k]
        assert lo <= share <= hi, (k + 1, share, res)
    print("local share with 1, 2, 3, 4 of 4 local endpoints dead: %s%%" % shares)
    loc = svc_of(d)["locality"]
    assert loc["spilling"] is True and loc["in_use"] == {"priority": 0, "local": False}, loc
    assert loc["reason"] == ("0% to zone a (local, priority 0): 0/4 ready x 1.40 = 0% healthy; "
                             "100% to other zones (priority 0): 2/2 ready"), loc

    # they come back one by one (the breaker's probe readmits each), and so does the traffic
    back = []
    for k, name in enumerate(("L4", "L3", "L2", "L1")):
        srv[name] = weft.server("http", name, listen=addrs[name])
        t0 = time.monotonic()
        assert wait_for(lambda: tcp_loop(cg, vip, 4)["errors"] == {} and states(d)[addrs[name]] == "ready",
                        10), states(d)
        took = time.monotonic() - t0
        res = tcp_loop(cg, vip, 400)
        assert res["errors"] == {}, res
        share = local_share(res["servers"])
        back.append((share, round(took, 2)))
        lo, hi = expect[::-1][k + 1] if k < 3 else (100, 100)
        assert lo <= share <= hi, (name, share, res)
    print("local share (and seconds to readmit) as 1, 2, 3, 4 come back: %s" % back)
    assert svc_of(d)["locality"]["spilling"] is False


def test_http_per_request_on_one_connection(weft):
    """HTTP picks per request: one keep-alive client connection sees its
    requests go 70/30 between the zones when half the local ones are gone."""
    cg = weft.cgroup(tag="app")
    b = {n: http_backend(weft, "ok", n) for n in ("L1", "L2", "R1", "R2")}
    addrs = {n: x.addr for n, x in b.items()}
    vip = vip_addr()
    eps = [(addrs[n], "a" if n[0] == "L" else "b") for n in sorted(addrs)]
    d = weft.weftd([cg], [service("api", [vip], None, protocol="http", attempts=3,
                                  extra=zoned(eps) + " " + BREAKER)], extra_agent='  zone = "a";\n')
    res = http_requests(vip, cg, n=100, keepalive=True)
    assert res["statuses"] == {"200": 100} and set(res["servers"]) == {"L1", "L2"}, res

    b["L1"].stop()
    warm = http_requests(vip, cg, n=20, keepalive=True)  # the dead one fails over and is ejected
    assert warm["statuses"] == {"200": 20}, warm
    res = http_requests(vip, cg, n=400, keepalive=True)
    assert res["statuses"] == {"200": 400}, res  # the dead one's requests went elsewhere
    share = local_share(res["servers"])
    print("HTTP, one connection, 1 of 2 local dead: %.0f%% local, %s" % (share, res["servers"]))
    assert 58 <= share <= 82 and res["servers"].get("R1", 0) + res["servers"].get("R2", 0) > 40, res
    samples = metrics(d.admin)
    assert prom_get(samples, "weft_service_locality_load_ratio", service="api", priority="0",
                    locality="local") == [0.7]
    assert prom_get(samples, "weft_service_locality_load_ratio", service="api", priority="0",
                    locality="remote") == [0.3]

    b["L2"].stop()
    res = http_requests(vip, cg, n=100, keepalive=True)
    assert res["statuses"] == {"200": 100} and local_share(res["servers"]) == 0, res

    b["L1"] = http_backend(weft, "ok", "L1", listen=addrs["L1"])
    b["L2"] = http_backend(weft, "ok", "L2", listen=addrs["L2"])
    assert wait_for(lambda: http_requests(vip, cg, n=4)["statuses"] == {"200": 4}
                    and set(states(d).values()) == {"ready"}, 10), states(d)
    res = http_requests(vip, cg, n=100, keepalive=True)
    assert res["statuses"] == {"200": 100} and local_share(res["servers"]) == 100, res


def test_priorities_from_an_endpoint_file(weft, tmp_path):
    """Without agent.zone, priorities alone: priority 1 takes traffic only
    when priority 0 cannot."""
    cg = weft.cgroup(tag="app")
    addrs = {n: "127.0.0.1:%d" % free_port() for n in ("P0a", "P0b", "P1")}
    srv = {n: weft.server("http", n, listen=a) for n, a in addrs.items()}
    path = tmp_path / "api.conf"
    path.write_text("%s 1 - 0\n%s 1 - 0\n%s 1 - 1\n" % (addrs["P0a"], addrs["P0b"], addrs["P1"]))
    vip = vip_addr()
    d = weft.weftd([cg], [service("api", [vip], None, attempts=3, extra=(
        ' endpoints_from = { file = "%s"; }; ' % path) + BREAKER)])
    res = tcp_loop(cg, vip, 50)
    assert res["errors"] == {} and res["servers"].get("P1", 0) == 0, res
    srv["P0a"].stop()
    srv["P0b"].stop()
    tcp_loop(cg, vip, 6)
    res = tcp_loop(cg, vip, 50)
    assert res["errors"] == {} and res["servers"] == {"P1": 50}, res
    loc = svc_of(d)["locality"]
    assert loc["zone"] is None and loc["in_use"] == {"priority": 1, "local": True}, loc
