# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""An HTTP/1.1 backend for weft's layer-7 tests (stdlib only, one thread per
connection, keep-alive and pipelining capable).

    http_backend.py --mode MODE --name NAME --listen IP:PORT --log PATH
                    [--delay S] [--status N] [--seed N] [--fail-rate P]

MODE
  ok      answer 200
  fail    answer --status (503) to every request
  flaky   answer --status (503) to every other request, counted over the
          whole process: the 1st, 3rd, 5th ... requests fail, the others get
          200. With --seed: each request fails with probability --fail-rate
          (0.5), from a random.Random(seed)
  slow    sleep --delay seconds after reading a request, then answer 200
  ws      an Upgrade request (Connection: upgrade + Upgrade: websocket) gets
          101 Switching Protocols, then every byte that arrives is echoed
          until EOF; other requests are answered as in "ok"
  drop2   the 2nd request on each connection, and any request with the
          header x-test-drop: 1, is read whole (and logged), then the
          connection is closed without an answer (a server that crashed, or
          closed a keep-alive connection, after receiving it); every other
          request is answered as in "ok"
  trickle answer 200 with a body sent slowly: the head at once (with
          Content-Length), then x-test-chunks (20) chunks of
          x-test-chunk-size (20480) bytes, one every x-test-interval (0.2)
          seconds; with x-test-stall-after: K, nothing more after K chunks
          until the peer closes. The body is bytes "a".."z" repeated

Per-request overrides (request headers, for any mode):
  x-test-sleep: S      sleep S seconds before answering
  x-test-status: N     answer with status N
  x-test-chunked: 1    send the response body chunked (several chunks)
  x-test-close: 1      answer with Connection: close and close

Every response (except 101 and HEAD) has a JSON body:
  {"server": NAME, "method", "path" (target without the query), "target",
   "version", "headers": {lower-case name: value (repeats joined ", ")},
   "header_list": [[name as sent, value], ...], "body_len", "body_sha256",
   "conn": connection sequence number (1, 2, ...), "req": request number on
   that connection (1, 2, ...), "status"}
and the header "x-server: NAME".

The request parser is strict: it frames bodies by Content-Length (one value)
or "Transfer-Encoding: chunked" only, and anything it would have to guess
about (CL and TE together, other codings, obs-fold, bare CR/LF, whitespace
before a colon, a non-token name, differing Content-Length) is logged as a
"bad_request" event with the raw bytes, answered 400 and the connection
closed: so a test can see that such bytes reached the backend at all.

Expect: 100-continue is answered with "HTTP/1.1 100 Continue" before the
body is read (as servers do); the request's log line records it.

Log (--log PATH, appended, one JSON object per line, flushed at once):
  {"event": "conn", "conn": n, "peer", "local", "t"}              per accept
  {"event": "request", "conn", "req", "method", "target", "path",
   "version", "headers", "header_list", "body_len", "body_sha256",
   "status", "t" (unix seconds when the head was complete)}        per request
  {"event": "bad_request", "conn", "reason", "raw" (latin-1), "t"}
  {"event": "upgrade", "conn", "t"} / {"event": "ws_end", "conn", "echoed"}
  {"event": "conn_end", "conn", "requests", "reason", "t"}
stdout: {"event": "listening", "addr": "ip:port", "pid": n} once, nothing else.
"""

import argparse
import base64
import hashlib
import itertools
import json
import os
import random
import signal
import socket
import sys
import threading
import time

TCHAR = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
MAX_LINE = 1 << 20
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class BadRequest(Exception):
    def __init__(self, reason, status=400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Backend:
    def __init__(self, args):
        self.args = args
        self.log_lock = threading.Lock()
        self.logf = open(args.log, "a") if args.log else None
        self.conn_seq = itertools.count(1)
        self.req_lock = threading.Lock()
        self.req_total = 0
        self.rng = random.Random(args.seed) if args.seed is not None else None

    def log(self, obj):
        obj.setdefault("server", self.args.name)
        obj.setdefault("t", time.time())
        if self.logf is None:
            return
        line = json.dumps(obj) + "\n"
        with self.log_lock:
            self.logf.write(line)
            self.logf.flush()

    def failing(self):
        """flaky: does this request fail? (counted over the whole process)"""
        with self.req_lock:
            self.req_total += 1
            if self.rng is not None:
                return self.rng.random() < self.args.fail_rate
            return self.req_total % 2 == 1


def read_line(rf, raw):
    """One CRLF-terminated line (without CRLF); raw collects the bytes."""
    line = rf.readline(MAX_LINE)
    raw.append(line)
    if not line:
        return None
    if not line.endswith(b"\r\n"):
        raise BadRequest("line not ended by CRLF" if line.endswith(b"\n") or len(line) >= MAX_LINE
                         else "truncated line")
    line = line[:-2]
    if b"\r" in line or b"\n" in line:
        raise BadRequest("bare CR or LF")
    return line


def parse_head(rf, raw):
    """-> (method, target, version, header_list) or None at a clean EOF."""
    line = read_line(rf, raw)
    while line == b"":               # leading empty lines (RFC 9112 2.2)
        line = read_line(rf, raw)
    if line is None:
        return None
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise BadRequest("bad request line")
    method, target, version = parts
    if not all(c in TCHAR for c in method):
        raise BadRequest("bad method")
    if version not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise BadRequest("bad version", 505)
    headers = []
    while True:
        line = read_line(rf, raw)
        if line is None:
            raise BadRequest("EOF in head")
        if line == b"":
            break
        if line[:1] in (b" ", b"\t"):
            raise BadRequest("obs-fold")
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadRequest("no colon")
        if not name or not all(c in TCHAR for c in name):
            raise BadRequest("bad header name %r" % name)
        value = value.strip(b" \t")
        if any(c < 0x20 and c != 0x09 or c == 0x7f for c in value):
            raise BadRequest("control character in value")
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
        if len(headers) > 1000:
            raise BadRequest("too many headers", 431)
    return method.decode(), target.decode("latin-1"), version.decode(), headers


def header_dict(headers):
    d = {}
    for n, v in headers:
        k = n.lower()
        d[k] = v if k not in d else d[k] + ", " + v
    return d


def tokens(value):
    return [t.strip().lower() for t in value.split(",") if t.strip()]


def framing(headers):
    """-> ('length', n) | ('chunked', None) | ('none', None)."""
    cls = [v for n, v in headers if n.lower() == "content-length"]
    tes = [v for n, v in headers if n.lower() == "transfer-encoding"]
    if cls and tes:
        raise BadRequest("Content-Length and Transfer-Encoding")
    if tes:
        if len(tes) != 1 or tes[0].strip().lower() != "chunked":
            raise BadRequest("unsupported Transfer-Encoding %r" % tes, 501)
        return "chunked", None
    if cls:
        vals = set()
        for v in cls:
            for x in v.split(","):
                x = x.strip()
                if not x.isdigit():
                    raise BadRequest("bad Content-Length %r" % v)
                vals.add(int(x))
        if len(vals) != 1:
            raise BadRequest("differing Content-Length %r" % cls)
        return "length", vals.pop()
    return "none", None


def read_body(rf, kind, n, raw):
    h = hashlib.sha256()
    total = 0
    if kind == "length":
        left = n
        while left > 0:
            d = rf.read(min(left, 1 << 16))
            if not d:
                raise BadRequest("EOF in body")
            h.update(d)
            total += len(d)
            left -= len(d)
    elif kind == "chunked":
        while True:
            line = read_line(rf, raw)
            if line is None:
                raise BadRequest("EOF in chunked body")
            size_s = line.split(b";", 1)[0]
            if not size_s or any(c not in b"0123456789abcdefABCDEF" for c in size_s):
                raise BadRequest("bad chunk size %r" % line)
            size = int(size_s, 16)
            if size == 0:
                while True:          # trailers
                    t = read_line(rf, raw)
                    if t is None:
                        raise BadRequest("EOF in trailers")
                    if t == b"":
                        break
                break
            left = size
            while left > 0:
                d = rf.read(min(left, 1 << 16))
                if not d:
                    raise BadRequest("EOF in chunk")
                h.update(d)
                total += len(d)
                left -= len(d)
            if rf.read(2) != b"\r\n":
                raise BadRequest("chunk data not followed by CRLF")
    return total, h.hexdigest()


REASONS = {100: "Continue", 101: "Switching Protocols", 200: "OK", 400: "Bad Request",
           404: "Not Found", 500: "Internal Server Error", 501: "Not Implemented",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
           505: "HTTP Version Not Supported", 431: "Request Header Fields Too Large"}


def respond(c, status, body, keep, version="HTTP/1.1", chunked=False, head=False, extra=()):
    lines = ["%s %d %s" % ("HTTP/1.1", status, REASONS.get(status, "Status")),
             "Content-Type: application/json"]
    lines += list(extra)
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append("Content-Length: %d" % len(body))
    if not keep:
        lines.append("Connection: close")
    elif version == "HTTP/1.0":
        lines.append("Connection: keep-alive")
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if head:
        c.sendall(out)
        return
    if chunked:
        # several chunks, one with an extension, then an empty trailer section
        parts, step = [], max(1, len(body) // 3)
        for i in range(0, len(body), step):
            parts.append(body[i:i + step])
        for i, p in enumerate(parts):
            out += b"%x%s\r\n%s\r\n" % (len(p), b";x=y" if i == 1 else b"", p)
        out += b"0\r\n\r\n"
        c.sendall(out)
    else:
        c.sendall(out + body)


def trickle(c, rf, hd):
    """trickle mode: a 200 whose body comes slowly (see the module doc)."""
    chunks = int(hd.get("x-test-chunks", 20))
    size = int(hd.get("x-test-chunk-size", 20480))
    interval = float(hd.get("x-test-interval", 0.2))
    stall = int(hd.get("x-test-stall-after", -1))
    pattern = bytes(range(ord("a"), ord("z") + 1))
    chunk = (pattern * (size // len(pattern) + 1))[:size]
    c.sendall(("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
               "Content-Length: %d\r\n\r\n" % (chunks * size)).encode())
    for i in range(chunks):
        if i == stall:
            while rf.read1(65536):      # hold the connection, send nothing, until the peer goes
                pass
            raise OSError("stalled until the peer closed")
        if i:
            time.sleep(interval)
        c.sendall(chunk)


def serve_conn(be, c, peer):
    args = be.args
    n = next(be.conn_seq)
    be.log({"event": "conn", "conn": n, "peer": "%s:%d" % peer[:2],
            "local": "%s:%d" % c.getsockname()[:2]})
    rf = c.makefile("rb")
    reqs = 0
    reason = "eof"
    try:
        c.settimeout(120)
        while True:
            raw = []
            try:
                head = parse_head(rf, raw)
                if head is None:
                    break
                method, target, version, headers = head
                hd = header_dict(headers)
                if version == "HTTP/1.1" and "host" not in hd:
                    raise BadRequest("HTTP/1.1 without Host")
                kind, clen = framing(headers)
                t_head = time.time()
                expect = hd.get("expect", "").lower() == "100-continue"
                if expect and version == "HTTP/1.1":
                    c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body_len, body_sha = read_body(rf, kind, clen, raw)
            except BadRequest as e:
                be.log({"event": "bad_request", "conn": n, "reason": e.reason,
                        "raw": b"".join(raw)[:4096].decode("latin-1")})
                try:
                    respond(c, e.status, json.dumps({"server": args.name, "error": e.reason}).encode(),
                            keep=False)
                except OSError:
                    pass
                reason = "bad_request"
                break
            reqs += 1
            conn_tokens = tokens(hd.get("connection", ""))
            if version == "HTTP/1.1":
                keep = "close" not in conn_tokens
            else:
                keep = "keep-alive" in conn_tokens and "close" not in conn_tokens
            status = 200
            if args.mode == "fail":
                status = args.status
            elif args.mode == "flaky" and be.failing():
                status = args.status
            upgrade = (args.mode == "ws" and "upgrade" in conn_tokens
                       and hd.get("upgrade", "").lower() == "websocket")
            if "x-test-status" in hd:
                status = int(hd["x-test-status"])
            if "x-test-close" in hd:
                keep = False
            path = target.split("?", 1)[0]
            info = {"server": args.name, "method": method, "path": path, "target": target,
                    "version": version, "headers": hd, "header_list": [list(x) for x in headers],
                    "body_len": body_len, "body_sha256": body_sha, "conn": n, "req": reqs,
                    "status": 101 if upgrade else status, "expect_continue": expect}
            be.log(dict(info, event="request", t=t_head))
            if args.mode == "drop2" and (reqs == 2 or hd.get("x-test-drop") == "1"):
                reason = "dropped"
                break
            if args.mode == "trickle" and not upgrade:
                trickle(c, rf, hd)
                if not keep:
                    reason = "close"
                    break
                continue
            delay = float(hd.get("x-test-sleep", 0) or 0)
            if args.mode == "slow":
                delay = max(delay, args.delay)
            if delay:
                time.sleep(delay)
            if upgrade:
                key = hd.get("sec-websocket-key", "").encode()
                accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
                c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                           % accept).encode())
                be.log({"event": "upgrade", "conn": n})
                echoed = 0
                while True:
                    d = rf.read1(65536)
                    if not d:
                        break
                    c.sendall(d)
                    echoed += len(d)
                try:
                    c.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                be.log({"event": "ws_end", "conn": n, "echoed": echoed})
                reason = "upgrade"
                break
            body = (json.dumps(info) + "\n").encode()
            respond(c, status, body, keep, version=version,
                    chunked=hd.get("x-test-chunked") == "1" and version == "HTTP/1.1",
                    head=(method == "HEAD"), extra=["X-Server: %s" % args.name])
            if not keep:
                reason = "close"
                break
    except OSError as e:
        reason = "error: %s" % e
    finally:
        be.log({"event": "conn_end", "conn": n, "requests": reqs, "reason": reason})
        try:
            rf.close()
            c.close()
        except OSError:
            pass


def main(argv):
    ap = argparse.ArgumentParser(prog="http_backend.py")
    ap.add_argument("--mode", required=True, choices=["ok", "fail", "flaky", "slow", "ws", "drop2", "trickle"])
    ap.add_argument("--name", required=True)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--log", default=None)
    ap.add_argument("--delay", type=float, default=1.0)
    ap.add_argument("--status", type=int, default=503)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--fail-rate", type=float, default=0.5)
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    if args.listen.startswith("["):
        host, _, port = args.listen[1:].partition("]:")
        fam = socket.AF_INET6
    else:
        host, _, port = args.listen.rpartition(":")
        fam = socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(512)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    be = Backend(args)
    sa = s.getsockname()
    addr = "[%s]:%d" % sa[:2] if fam == socket.AF_INET6 else "%s:%d" % sa[:2]
    sys.stdout.write(json.dumps({"event": "listening", "addr": addr, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    while True:
        c, peer = s.accept()
        threading.Thread(target=serve_conn, args=(be, c, peer), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1:])
