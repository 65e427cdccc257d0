# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Byte moving through the mesh: exactness, half-close, resets, dead endpoints.

One weftd per fast-path setting with one service per behaviour (protocol
"tcp", so weftd forwards opaque bytes). Every test runs twice: with the kernel
fast paths on (sk_msg redirect on the loopback leg, splice(2) for the bytes)
and with both off.
"""

import pytest

from weft_harness import free_port, service, vip_addr

BULK = 100 * 1024 * 1024


class Mesh:
    pass


FAST_PATHS = {
    "fast": "  redirect_loopback = true;\n  splice = true;\n",
    "plain": "  redirect_loopback = false;\n  splice = false;\n",
}


@pytest.fixture(scope="module", params=sorted(FAST_PATHS))
def mesh(weft_module, request):
    h = weft_module
    m = Mesh()
    m.h = h
    m.mode = request.param
    m.cg = h.cgroup(tag="xfer")
    m.bulk = h.server("bulk", "BULK", nbytes=BULK)
    m.eofreply = h.server("eofreply", "EOFREPLY")
    m.reset = h.server("reset", "RESET")
    m.banner = h.server("banner", "BANNER")
    m.echo = h.server("echo", "ECHO")
    m.dead_ep = "127.0.0.1:%d" % free_port()  # nothing listens
    m.vip = {k: vip_addr() for k in ("bulk", "half", "reset", "banner", "echo", "dead")}
    m.weftd = h.weftd([m.cg], [
        service("bulk", [m.vip["bulk"]], [m.bulk.addr]),
        service("half", [m.vip["half"]], [m.eofreply.addr]),
        service("reset", [m.vip["reset"]], [m.reset.addr]),
        service("banner", [m.vip["banner"]], [m.banner.addr]),
        service("echo", [m.vip["echo"]], [m.echo.addr]),
        service("dead", [m.vip["dead"]], [m.dead_ep], connect_ms=1000, attempts=1),
    ], extra_agent=FAST_PATHS[m.mode])
    return m


def test_bulk_100mb_each_way_concurrently(mesh):
    n0 = len(mesh.bulk.dones())
    res = mesh.h.client("bulk", mesh.vip["bulk"], cgroup=mesh.cg, nbytes=BULK, timeout=90)
    assert res["ok"], res
    assert res["peername"] == mesh.vip["bulk"], res
    done = mesh.bulk.wait_done(n0 + 1, timeout=30)
    assert len(done) == n0 + 1, "backend never finished: %r" % done
    srv = done[-1]
    assert srv["ok"] and srv["send_error"] is None, srv
    # client -> server
    assert srv["recv_bytes"] == BULK, srv
    assert srv["recv_sha256"] == res["sent_sha256"], (srv, res)
    # server -> client
    assert res["recv_bytes"] == BULK, res
    assert res["recv_sha256"] == srv["sent_sha256"], (srv, res)
    # it went through weftd
    assert srv["peer"] != res["sockname"], (srv, res)
    # and through the fast path when it is on (not at all when off)
    redirected = mesh.weftd.stats()["msg_redirected"]
    if mesh.mode == "fast":
        assert redirected > 0, mesh.weftd.stats()
    else:
        assert redirected == 0, mesh.weftd.stats()


def test_echo_roundtrip(mesh):
    res = mesh.h.client("echo", mesh.vip["echo"], cgroup=mesh.cg, nbytes=300000)
    assert res["ok"] and res["echo_ok"] and res["eof"], res


def test_half_close(mesh):
    """Client sends, shuts down its write side, and still gets the reply the
    server sends only after it has read EOF; then EOF."""
    n0 = len(mesh.eofreply.dones())
    res = mesh.h.client("halfclose", mesh.vip["half"], cgroup=mesh.cg, nbytes=200000)
    assert res["ok"], res
    assert res["eof"] is True, res
    assert res["reply"] == "%d %s\n" % (res["sent_bytes"], res["sent_sha256"]), res
    done = mesh.eofreply.wait_done(n0 + 1)
    assert done[-1]["bytes"] == res["sent_bytes"] and done[-1]["sha256"] == res["sent_sha256"]


def test_server_first_protocol(mesh):
    """The client sends nothing; the endpoint speaks first (protocol tcp)."""
    res = mesh.h.client("banner", mesh.vip["banner"], cgroup=mesh.cg, timeout=5)
    assert res["ok"], res
    assert res["reply"] == "BANNER\n", res
    assert res["elapsed"] < 3, res


def test_endpoint_reset_propagates(mesh):
    """The endpoint answers the first bytes with a RST: the client sees
    ECONNRESET (not a clean EOF)."""
    n0 = len(mesh.reset.dones())
    res = mesh.h.client("reset", mesh.vip["reset"], cgroup=mesh.cg, timeout=5)
    done = mesh.reset.wait_done(n0 + 1)
    assert len(done) == n0 + 1 and done[-1].get("got") == 5, done  # "ping\n" arrived
    assert not res["ok"], res
    assert res["error"] == "ECONNRESET", res
    assert res["elapsed"] < 3, res


def test_unreachable_endpoint_fails_fast(mesh):
    """The only endpoint is a closed port: the client's connection (which
    succeeded, to weftd) is closed or reset promptly, never left hanging."""
    res = mesh.h.client("reset", mesh.vip["dead"], cgroup=mesh.cg, timeout=10)
    assert res["peername"] == mesh.vip["dead"] or res["stage"] == "connect", res
    if res["ok"]:
        assert res["eof"] and res["reply"] == "", res     # clean EOF, no data
    else:
        assert res["error"] in ("ECONNRESET", "EPIPE", "ECONNREFUSED"), res
    assert res["elapsed"] < 2.0, "took %.2fs (must fail within 2 s): %r" % (res["elapsed"], res)
