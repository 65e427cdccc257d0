#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Raw HTTP/2 (h2c, prior knowledge) helpers of the benchmark's memory
measurements (scripts/bench/bench.py, the HTTP/2 phase). Frames are written
by hand (no HTTP/2 library in Debian's python3 that the tests already use),
HPACK as literal fields without indexing, so what the peer holds is what the
protocol makes it hold, nothing more.

  idle --connect IP:PORT --conns N [--request PATH]
      Opens N connections, one after the other: the preface and an empty
      SETTINGS, waits for the peer's SETTINGS and the ACK of ours, ACKs its
      SETTINGS. With --request, makes one GET of PATH on each first (and
      reads to the end of its response). Prints {"held": n, "errors": e,
      "first_error": ..., "open_s": s}, then holds them until its standard
      input closes, and prints {"closed_by_peer": k}.

  streams --connect IP:PORT --conns C --per-conn K [--path P]
      Opens C connections as idle does, prints {"connected": c, ...}; on a
      line on its standard input opens K streams on each (a gRPC-shaped
      request head, END_STREAM, no body), prints {"sent": n}; holds
      everything until its standard input closes (the peer's frames are
      read and dropped meanwhile), prints {"closed_by_peer": k}.

  slow --listen IP:PORT
      An h2c server that never answers: SETTINGS (MAX_CONCURRENT_STREAMS
      100000), ACKs the client's, counts request heads and leaves every
      stream open. Prints {"event": "listening"} once listening; runs until
      SIGTERM.

Only 127.0.0.0/8 addresses: the benchmark's traffic stays on loopback.
"""

import argparse
import ipaddress
import json
import select
import signal
import socket
import struct
import sys
import threading
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def addr_of(s):
    host, _, port = s.rpartition(":")
    if not ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8"):
        raise SystemExit("h2hold: %s is not on 127.0.0.0/8" % host)
    return host, int(port)


def frame(typ, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", typ, flags, sid) + payload


def hpack_str(b):
    if len(b) >= 127:
        raise ValueError("field too long for this encoder")
    return bytes([len(b)]) + b


def hpack(fields):
    """Literal header fields without indexing, new name (RFC 7541 6.2.2)."""
    return b"".join(b"\x00" + hpack_str(n.encode()) + hpack_str(v.encode()) for n, v in fields)


def read_frame(sock):
    """(type, flags, stream id, payload) or None at EOF."""
    hd = recv_exact(sock, 9)
    if hd is None:
        return None
    ln = struct.unpack(">I", b"\0" + hd[:3])[0]
    typ, flags, sid = struct.unpack(">BBI", hd[3:])
    body = recv_exact(sock, ln) if ln else b""
    if body is None:
        return None
    return typ, flags, sid & 0x7FFFFFFF, body


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        b = sock.recv(n - len(out))
        if not b:
            return None
        out += b
    return out


def handshake(sock):
    """Client side: preface + SETTINGS, then until both SETTINGS are seen and acknowledged."""
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
    got_settings = got_ack = False
    while not (got_settings and got_ack):
        f = read_frame(sock)
        if f is None:
            raise OSError("closed during the handshake")
        typ, flags, _, _ = f
        if typ == SETTINGS and flags & ACK:
            got_ack = True
        elif typ == SETTINGS:
            sock.sendall(frame(SETTINGS, ACK, 0))
            got_settings = True
        elif typ == GOAWAY:
            raise OSError("GOAWAY during the handshake")


def one_get(sock, authority, path, sid=1):
    sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, sid, hpack(
        [(":method", "GET"), (":scheme", "http"), (":authority", authority), (":path", path)])))
    while True:
        f = read_frame(sock)
        if f is None:
            raise OSError("closed before the response ended")
        typ, flags, s, body = f
        if typ == GOAWAY:
            raise OSError("GOAWAY before the response ended")
        if typ == RST and s == sid:
            raise OSError("stream reset")
        if typ == PING and not flags & ACK:
            sock.sendall(frame(PING, ACK, 0, body))
        if s == sid and typ in (HEADERS, DATA) and flags & END_STREAM:
            return


def open_conns(addr, n, timeout, request=None):
    conns, errors, first_error = [], 0, None
    for _ in range(n):
        s = None
        try:
            s = socket.create_connection(addr, timeout=timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            handshake(s)
            if request:
                one_get(s, "%s:%d" % addr, request)
            conns.append(s)
        except OSError as e:
            errors += 1
            first_error = first_error or str(e)
            if s is not None:
                s.close()
    return conns, errors, first_error


def drain_until_stdin_closes(conns):
    """Reads (and drops) what the peers send until stdin closes; -> how many peers closed."""
    closed = set()
    by_fd = {c.fileno(): c for c in conns}
    for c in conns:
        c.setblocking(False)
    stdin = sys.stdin.fileno()
    poll = select.poll()
    poll.register(stdin, select.POLLIN)
    for fd in by_fd:
        poll.register(fd, select.POLLIN)
    while True:
        for fd, ev in poll.poll():
            if fd == stdin:
                if not sys.stdin.buffer.raw.read(4096):
                    return len(closed)
                continue
            try:
                if not by_fd[fd].recv(65536):
                    closed.add(fd)
                    poll.unregister(fd)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(fd)
                poll.unregister(fd)


def cmd_idle(a):
    addr = addr_of(a.connect)
    t0 = time.monotonic()
    conns, errors, first_error = open_conns(addr, a.conns, a.timeout, a.request)
    print(json.dumps({"held": len(conns), "errors": errors, "first_error": first_error,
                      "open_s": round(time.monotonic() - t0, 3)}), flush=True)
    closed = drain_until_stdin_closes(conns)
    print(json.dumps({"closed_by_peer": closed}), flush=True)
    for c in conns:
        c.close()
    return 0


def cmd_streams(a):
    addr = addr_of(a.connect)
    t0 = time.monotonic()
    conns, errors, first_error = open_conns(addr, a.conns, a.timeout)
    print(json.dumps({"connected": len(conns), "errors": errors, "first_error": first_error,
                      "open_s": round(time.monotonic() - t0, 3)}), flush=True)
    if not sys.stdin.readline():
        return 0
    head = hpack([(":method", "POST"), (":scheme", "http"), (":authority", "%s:%d" % addr),
                  (":path", a.path), ("content-type", "application/grpc"), ("te", "trailers"),
                  ("user-agent", "weft-bench-h2hold"), ("grpc-accept-encoding", "identity")])
    n = 0
    for c in conns:
        c.sendall(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, 2 * k + 1, head) for k in range(a.per_conn)))
        n += a.per_conn
    print(json.dumps({"sent": n}), flush=True)
    closed = drain_until_stdin_closes(conns)
    print(json.dumps({"closed_by_peer": closed}), flush=True)
    for c in conns:
        c.close()
    return 0


def cmd_slow(a):
    host, port = addr_of(a.listen)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1024)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    heads = [0]
    lock = threading.Lock()

    def serve(c):
        try:
            if recv_exact(c, len(PREFACE)) != PREFACE:
                return
            c.sendall(frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 100000)))
            while True:
                f = read_frame(c)
                if f is None:
                    return
                typ, flags, _, body = f
                if typ == SETTINGS and not flags & ACK:
                    c.sendall(frame(SETTINGS, ACK, 0))
                elif typ == PING and not flags & ACK:
                    c.sendall(frame(PING, ACK, 0, body))
                elif typ == HEADERS:
                    with lock:
                        heads[0] += 1
        except OSError:
            pass
        finally:
            c.close()

    print(json.dumps({"event": "listening", "addr": a.listen}), flush=True)
    ls.settimeout(0.2)
    while not stop.is_set():
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        c.settimeout(None)
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    sys.stderr.write("h2hold slow: %d request heads seen\n" % heads[0])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("idle")
    i.add_argument("--connect", required=True)
    i.add_argument("--conns", type=int, required=True)
    i.add_argument("--request")
    i.add_argument("--timeout", type=float, default=10.0)
    s = sub.add_parser("streams")
    s.add_argument("--connect", required=True)
    s.add_argument("--conns", type=int, required=True)
    s.add_argument("--per-conn", type=int, required=True)
    s.add_argument("--path", default="/weft.Echo/Sleep")
    s.add_argument("--timeout", type=float, default=10.0)
    w = sub.add_parser("slow")
    w.add_argument("--listen", required=True)
    a = ap.parse_args()
    return {"idle": cmd_idle, "streams": cmd_streams, "slow": cmd_slow}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
