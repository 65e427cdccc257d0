# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""HTTP clients for weft's layer-7 tests, run as a separate process (so the
test can place it in an enrolled cgroup). stdlib only. Prints ONE JSON object.

    http_client.py requests --connect IP:PORT --spec JSON
        http.client requests. spec keys (all optional):
          n (1), method ("GET"), path ("/"), paths (a list, cycled instead of
          path), headers ({name: value}), header_list ([[name, value]], sent
          after headers, repeats allowed), body (text), body_len (that many
          pseudo-random bytes), chunked (send the body chunked),
          keepalive (true: one connection per thread, reused), concurrency (1:
          threads, each with its own connection, started together),
          timeout (5), detail (false: true adds one entry per request),
          host (Host header; default: the address),
          requests (a list of {method, path, headers, host, body, body_len,
          chunked} overriding the above for request i; n = its length)
        -> {"n", "statuses": {"200": k}, "servers": {name: k},
            "weft_errors": {reason: k}, "errors": {exception: k},
            "by": {"<status> <server or -> <weft-error or ->": k},
            "elapsed", "max_elapsed", "results": [...] (detail)}
        each result: {"status", "headers" {lower: value}, "body" (parsed JSON
        or text), "elapsed", "error", "thread", "i"}

    http_client.py raw --connect IP:PORT --script JSON
        One TCP connection driven by a list of steps:
          {"send": text}           bytes = text encoded as latin-1
          {"recv_until": text}     read until the bytes appear (or EOF/timeout)
          {"recv_n": n}            read until n more bytes arrived
          {"recv_eof": true}       read until EOF
          {"shut_wr": true}        shutdown(SHUT_WR)
          {"sleep": s}
          any step may have "timeout" (seconds, default the --timeout)
        -> {"ok", "steps": [{"data" (latin-1 text), "eof", "error",
            "elapsed"}], "data" (everything received, latin-1), "eof",
            "error", "elapsed", "first_byte_s", "sockname", "peername"}
"""

import argparse
import collections
import errno
import hashlib
import http.client
import json
import socket
import sys
import threading
import time


def ename(e):
    if isinstance(e, socket.timeout):
        return "TIMEOUT"
    if getattr(e, "errno", None) in errno.errorcode:
        return errno.errorcode[e.errno]
    return type(e).__name__


def split(addr):
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
        return socket.AF_INET6, host, int(port)
    host, _, port = addr.rpartition(":")
    return socket.AF_INET, host, int(port)


def body_bytes(spec):
    if "body" in spec:
        return spec["body"].encode()
    n = spec.get("body_len")
    if n is None:
        return None
    out, i = bytearray(), 0
    while len(out) < n:
        out += hashlib.sha256(b"%d" % i).digest()
        i += 1
    return bytes(out[:n])


def requests_main(args):
    spec = json.loads(args.spec)
    fam, host, port = split(args.connect)
    per = spec.get("requests")
    n = len(per) if per else int(spec.get("n", 1))
    conc = int(spec.get("concurrency", 1))
    method = spec.get("method", "GET")
    paths = spec.get("paths") or [spec.get("path", "/")]
    hdrs = dict(spec.get("headers", {}))
    hlist = [tuple(x) for x in spec.get("header_list", [])]
    body = body_bytes(spec)
    chunked = bool(spec.get("chunked"))
    keepalive = spec.get("keepalive", True)
    timeout = float(spec.get("timeout", args.timeout))
    detail = bool(spec.get("detail"))
    host_hdr = spec.get("host")

    lock = threading.Lock()
    agg = {"statuses": collections.Counter(), "servers": collections.Counter(),
           "weft_errors": collections.Counter(), "errors": collections.Counter(),
           "by": collections.Counter()}
    results = []
    counter = iter(range(n))
    barrier = threading.Barrier(conc)
    max_el = [0.0]

    def one(conn, i, tid):
        path = paths[i % len(paths)]
        method_, hdrs_, host_, body_, chunked_ = method, hdrs, host_hdr, body, chunked
        if per:
            o = per[i]
            path = o.get("path", path)
            method_ = o.get("method", method)
            hdrs_ = o.get("headers", hdrs)
            host_ = o.get("host", host_hdr)
            if "body" in o or "body_len" in o:
                body_ = body_bytes(o)
            chunked_ = o.get("chunked", chunked)
        t0 = time.monotonic()
        r = {"i": i, "thread": tid, "status": None, "error": None, "path": path}
        try:
            conn.putrequest(method_, path, skip_host=host_ is not None,
                            skip_accept_encoding=True)
            if host_ is not None:
                conn.putheader("Host", host_)
            for k, v in hdrs_.items():
                conn.putheader(k, v)
            for k, v in hlist:
                conn.putheader(k, v)
            if not keepalive:
                conn.putheader("Connection", "close")
            if body_ is not None:
                if chunked_:
                    conn.putheader("Transfer-Encoding", "chunked")
                else:
                    conn.putheader("Content-Length", str(len(body_)))
            conn.endheaders()
            if body_ is not None:
                if chunked_:
                    step = max(1, len(body_) // 3)
                    for j in range(0, len(body_), step):
                        p = body_[j:j + step]
                        conn.send(b"%x\r\n%s\r\n" % (len(p), p))
                    conn.send(b"0\r\n\r\n")
                else:
                    conn.send(body_)
            resp = conn.getresponse()
            data = resp.read()
            r["status"] = resp.status
            r["headers"] = {k.lower(): v for k, v in resp.getheaders()}
            try:
                r["body"] = json.loads(data)
            except ValueError:
                r["body"] = data.decode(errors="replace")
            if resp.will_close:
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            r["error"] = ename(e)
            conn.close()
        r["elapsed"] = round(time.monotonic() - t0, 4)
        srv = r["body"].get("server") if isinstance(r.get("body"), dict) else None
        werr = (r.get("headers") or {}).get("weft-error")
        with lock:
            max_el[0] = max(max_el[0], r["elapsed"])
            if r["error"]:
                agg["errors"][r["error"]] += 1
            else:
                agg["statuses"][str(r["status"])] += 1
            if srv:
                agg["servers"][srv] += 1
            if werr:
                agg["weft_errors"][werr] += 1
            agg["by"]["%s %s %s" % (r["status"] if not r["error"] else r["error"],
                                    srv or "-", werr or "-")] += 1
            if detail:
                results.append(r)

    def worker(tid):
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.connect()
        except OSError:
            pass  # request() reconnects and reports the error
        try:
            barrier.wait(timeout + 10)
        except threading.BrokenBarrierError:
            pass
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            one(conn, i, tid)
            if not keepalive:
                conn.close()
        conn.close()

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out = {k: dict(v) for k, v in agg.items()}
    out.update(n=n, elapsed=round(time.monotonic() - t0, 4), max_elapsed=max_el[0],
               ok=not agg["errors"])
    if detail:
        out["results"] = sorted(results, key=lambda r: r["i"])
    return out


def raw_main(args):
    script = json.loads(args.script)
    fam, host, port = split(args.connect)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    res = {"ok": False, "steps": [], "data": "", "eof": False, "error": None,
           "first_byte_s": None, "sockname": None, "peername": None}
    got = bytearray()
    t0 = time.monotonic()
    try:
        s.connect((host, port))
        res["sockname"] = "%s:%d" % s.getsockname()[:2]
        res["peername"] = "%s:%d" % s.getpeername()[:2]
    except OSError as e:
        res["error"] = "connect:" + ename(e)
        res["elapsed"] = round(time.monotonic() - t0, 4)
        return res
    t0 = time.monotonic()

    def recv_some(deadline):
        s.settimeout(max(0.01, deadline - time.monotonic()))
        d = s.recv(65536)
        if d and res["first_byte_s"] is None:
            res["first_byte_s"] = round(time.monotonic() - t0, 4)
        return d

    for st in script:
        ts = time.monotonic()
        deadline = ts + float(st.get("timeout", args.timeout))
        out = {"data": "", "eof": False, "error": None}
        buf = bytearray()
        try:
            if "send" in st:
                s.sendall(st["send"].encode("latin-1"))
            elif "shut_wr" in st:
                s.shutdown(socket.SHUT_WR)
            elif "sleep" in st:
                time.sleep(st["sleep"])
            elif "recv_until" in st:
                want = st["recv_until"].encode("latin-1")
                while want not in buf:
                    d = recv_some(deadline)
                    if not d:
                        out["eof"] = res["eof"] = True
                        break
                    buf += d
            elif "recv_n" in st:
                while len(buf) < st["recv_n"]:
                    d = recv_some(deadline)
                    if not d:
                        out["eof"] = res["eof"] = True
                        break
                    buf += d
            elif "recv_eof" in st:
                while True:
                    d = recv_some(deadline)
                    if not d:
                        out["eof"] = res["eof"] = True
                        break
                    buf += d
        except OSError as e:
            out["error"] = ename(e)
        got += buf
        out["data"] = bytes(buf).decode("latin-1")
        out["elapsed"] = round(time.monotonic() - ts, 4)
        res["steps"].append(out)
        if out["error"] and out["error"] != "TIMEOUT":
            res["error"] = out["error"]
            break
        if out["error"]:
            res["error"] = out["error"]
    res["data"] = bytes(got).decode("latin-1")
    res["elapsed"] = round(time.monotonic() - t0, 4)
    res["ok"] = res["error"] is None
    s.close()
    return res


def main(argv):
    ap = argparse.ArgumentParser(prog="http_client.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("requests")
    rp.add_argument("--connect", required=True)
    rp.add_argument("--spec", default="{}")
    rp.add_argument("--timeout", type=float, default=5.0)
    rp.add_argument("--tag", default="")
    wp = sub.add_parser("raw")
    wp.add_argument("--connect", required=True)
    wp.add_argument("--script", required=True)
    wp.add_argument("--timeout", type=float, default=5.0)
    wp.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    out = requests_main(args) if args.cmd == "requests" else raw_main(args)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
