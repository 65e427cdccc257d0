# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""HTTP/2 defences (issue 14), with hand-made frames (HPACK literals, no
library): rapid reset (CVE-2023-44487) ends in a GOAWAY once the burst of
resets (1000) is spent (nghttp2's limiter says INTERNAL_ERROR),
a CONTINUATION flood is cut, a header list over http.max_header_bytes gets
431 on its stream and the connection lives on; after each, weftd still
serves gRPC calls."""

import os
import socket
import struct
import subprocess
import time

import pytest

from test_grpc import GrpcServer, call
from weft_harness import in_cgroup_argv, metrics, prom_get, service, split_addr, vip_addr, wait_for

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, DATA, RST, SETTINGS, GOAWAY, CONT = 1, 0, 3, 4, 7, 9
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hint(v, prefix):
    """HPACK integer with an N-bit prefix (RFC 7541 5.1), first byte's flag bits 0."""
    m = (1 << prefix) - 1
    if v < m:
        return bytes([v])
    out, v = [m], v - m
    while v >= 128:
        out.append(v % 128 + 128)
        v //= 128
    return bytes(out + [v])


def literal(name, value):
    """Literal header field without indexing, new name, no Huffman."""
    return b"\x00" + hint(len(name), 7) + name + hint(len(value), 7) + value


def request_block(authority=b"weft.test", path=b"/", extra=()):
    # :method GET (static 2), :scheme http (6), :path from a literal, :authority literal
    b = b"\x82\x86" + literal(b":path", path) + literal(b":authority", authority)
    for n, v in extra:
        b += literal(n, v)
    return b


class Raw:
    """One HTTP/2 connection with prior knowledge, from inside the client cgroup (a helper process)."""

    def __init__(self, cg, target):
        # a socket made by a process in the enrolled cgroup is intercepted; pass it back over a socketpair
        self.sock = connect_in_cgroup(cg, target)
        self.sock.settimeout(5)
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        self.sock.sendall(data)

    def frames(self, until_eof=True, timeout=5.0):
        """Frames read until EOF (or timeout): [(type, flags, sid, payload)]."""
        buf, out, end = b"", [], time.monotonic() + timeout
        self.sock.settimeout(0.5)
        while time.monotonic() < end:
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                if not until_eof:
                    break
                continue
            except ConnectionResetError:
                break
            if not d:
                break
            buf += d
        off = 0
        while off + 9 <= len(buf):
            n = int.from_bytes(buf[off:off + 3], "big")
            out.append((buf[off + 3], buf[off + 4], int.from_bytes(buf[off + 5:off + 9], "big") & 0x7fffffff,
                        buf[off + 9:off + 9 + n]))
            off += 9 + n
        return out


_CONNECT = r'''
import array, socket, sys
fam, host, port, ufd = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(fam, socket.SOCK_STREAM)
s.connect((host, port))
u = socket.socket(fileno=ufd)
u.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno()]))])
'''


def connect_in_cgroup(cg, target):
    """A TCP socket to target, made by a process in cg (so BPF redirects it), handed over by SCM_RIGHTS."""
    import array
    fam, host, port = split_addr(target)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    p = subprocess.Popen(in_cgroup_argv(cg, ["/usr/bin/python3", "-c", _CONNECT, str(int(fam)), host, str(port),
                                             str(b.fileno())]),
                         pass_fds=(b.fileno(),), stdin=subprocess.DEVNULL)
    b.close()
    fds = array.array("i")
    _, anc, _, _ = a.recvmsg(1, socket.CMSG_LEN(fds.itemsize))
    p.wait(10)
    a.close()
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[:fds.itemsize])
    assert fds, "no socket came back from the cgroup helper"
    return socket.socket(fileno=fds[0])


@pytest.fixture
def mesh(weft):
    m = type("Mesh", (), {})()
    m.cg = weft.cgroup(tag="h2def")
    m.a = GrpcServer(weft, "a")
    m.vip = vip_addr()
    m.d = weft.weftd([m.cg], [service("grpc", [m.vip], [m.a.addr], protocol="http2",
                                      extra=" http = { max_header_bytes = 8192; };")])
    return m


def goaways(d, code):
    return sum(prom_get(metrics(d.admin), "weft_http2_goaways_total", code=code))


def test_rapid_reset_ends_in_goaway(weft, mesh):
    m = mesh
    c = Raw(m.cg, m.vip)
    burst = b"".join(frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block()) +
                     frame(RST, 0, sid, struct.pack(">I", 8)) for sid in range(1, 2 * 3000, 2))
    try:
        c.send(burst)
    except (BrokenPipeError, ConnectionResetError):
        pass
    fs = c.frames()
    ga = [f for f in fs if f[0] == GOAWAY]
    assert ga, ("want a GOAWAY", fs[-3:])
    last, code = struct.unpack(">II", ga[-1][3][:8])
    # 3000 streams opened and reset at once: cut after the burst (1000 resets), not at the end
    assert code == 0x2 and 1000 <= (last & 0x7fffffff) // 2 + 1 < 3000, (last, code)
    assert wait_for(lambda: goaways(m.d, "internal_error") >= 1, 3)
    assert m.d.running()
    r = call(m.cg, m.vip, n=5)
    assert r["ok"] == 5, r


def test_continuation_flood_is_cut(weft, mesh):
    m = mesh
    c = Raw(m.cg, m.vip)
    # a header block cut into one-byte CONTINUATION frames: past 8 of them, the connection goes
    block = request_block(extra=[(b"x-pad", b"p" * 300)])
    flood = frame(HEADERS, 0, 1, block[:4]) + b"".join(frame(CONT, 0, 1, block[i:i + 1])
                                                        for i in range(4, len(block)))
    try:
        c.send(flood)
    except (BrokenPipeError, ConnectionResetError):
        pass
    fs = c.frames()
    ga = [f for f in fs if f[0] == GOAWAY]
    assert ga and struct.unpack(">I", ga[-1][3][4:8])[0] == 0xb, ("want GOAWAY ENHANCE_YOUR_CALM", fs[-3:])
    assert wait_for(lambda: goaways(m.d, "enhance_your_calm") >= 1, 3)
    assert m.d.running()
    assert call(m.cg, m.vip, n=3)["ok"] == 3


def test_oversized_header_list_gets_431_and_the_connection_lives(weft, mesh):
    m = mesh
    c = Raw(m.cg, m.vip)
    big = request_block(extra=[(b"x-big", b"v" * 20000)])
    # 20 KiB of fields: a HEADERS frame and a CONTINUATION (16 KiB frames)
    c.send(frame(HEADERS, 0, 1, big[:16000]) + frame(CONT, END_HEADERS | END_STREAM, 1, big[16000:]))
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block(path=b"/weft.Echo/Who",
                                                                    extra=[(b"content-type", b"application/grpc"),
                                                                           (b"te", b"trailers")])))
    fs = c.frames(until_eof=False, timeout=3)
    heads = {f[2]: f for f in fs if f[0] == HEADERS}
    assert 1 in heads and b"431" in heads[1][3], ("stream 1: want 431 (a literal :status)", fs)
    assert 3 in heads, ("stream 3 got no answer on the same connection", fs)
    assert not any(f[0] == GOAWAY for f in fs), fs
    # more than 128 fields, each small (1.6 kB in all): 431 too, not the first 128 passed on
    many = request_block(extra=[(b"x-f%d" % i, b"v") for i in range(129)])
    c.send(frame(HEADERS, END_HEADERS | END_STREAM, 5, many))
    fs = c.frames(until_eof=False, timeout=3)
    body = b"".join(f[3] for f in fs if f[0] == DATA and f[2] == 5)
    assert b"too large" in body, ("stream 5: want 431 for 129 fields (its :status is indexed now)", fs)
    assert m.d.running()



def test_ping_and_settings_floods_are_cut(weft, mesh):
    """A client that sends PINGs (or SETTINGS) and never reads the ACKs: once
    nghttp2 holds 1000 unsent ACKs (the socket buffers between us full), it
    calls it a flood; weft ends the connection (GOAWAY ENHANCE_YOUR_CALM when
    it can still be written), counts it, and serves others as before."""
    m = mesh
    for k, (ftype, payload) in enumerate(((6, b"12345678"), (SETTINGS, b""))):
        c = Raw(m.cg, m.vip)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read
        c.sock.settimeout(60)  # weft reads as fast as it can: slow only on a loaded machine (sanitizers)
        cut = False
        try:
            for _ in range(400):
                c.send(frame(ftype, 0, 0, payload) * 5000)
        except (BrokenPipeError, ConnectionResetError):
            cut = True
        assert cut, "a flood of %d frames of type %d was not cut" % (400 * 5000, ftype)
        assert wait_for(lambda: goaways(m.d, "enhance_your_calm") >= k + 1, 5), metrics(m.d.admin)
        c.sock.close()
    assert m.d.running()
    assert call(m.cg, m.vip, n=3)["ok"] == 3
