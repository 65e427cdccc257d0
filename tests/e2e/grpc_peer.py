# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A gRPC server and client for the end-to-end tests, with python3-grpcio
from Debian and no generated code: the methods take and return raw bytes
(grpc's generic handlers, no serializer), which is all a proxy sees anyway.

  serve  --listen ADDR --name NAME   service weft.Echo:
      Who(b"")        -> NAME
      Fail(b"CODE")   -> aborts with StatusCode CODE ("NOT_FOUND", ...)
      Sleep(b"SECS")  -> sleeps, then b"slept"
      Stream(b"N")    -> N messages of 100 bytes (server streaming)
      Upload(stream)  -> b"<bytes received>" (client streaming)
      Meta(b"")       -> the call's metadata as JSON
      Chat(stream)    -> b"re:" + each message (bidirectional streaming)
    (call --method Cancel: a Sleep call cancelled by the client after 0.5 s;
     the server prints {"event": "cancelled"} when it sees it)
      Blob(b"N")      -> N bytes
    prints {"event": "listening", "addr": ...} once serving.
  call   --connect ADDR --method M [--payload P] [--n N] [--timeout S]
      N calls on ONE channel (one HTTP/2 connection), prints
      {"ok": k, "codes": {code: count}, "replies": {reply: count}, "messages": n}
"""

import argparse
import json
import sys
import time
from concurrent import futures

import grpc

OPTS = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]


def serve(args):
    def who(req, ctx):
        return args.name.encode()

    def fail(req, ctx):
        ctx.abort(grpc.StatusCode[req.decode()], "failed on purpose")

    def sleep(req, ctx):
        # a cancelled call (the client's RST_STREAM, through weft) is reported on stdout
        ctx.add_callback(lambda: print(json.dumps({"event": "done", "active": ctx.is_active()}), flush=True))
        end = time.monotonic() + float(req.decode())
        while time.monotonic() < end and ctx.is_active():
            time.sleep(0.01)
        if not ctx.is_active():
            print(json.dumps({"event": "cancelled"}), flush=True)
        return b"slept"

    def chat(it, ctx):
        for m in it:
            yield b"re:" + m

    def stream(req, ctx):
        for _ in range(int(req.decode())):
            yield b"x" * 100

    def upload(it, ctx):
        return str(sum(len(m) for m in it)).encode()

    def meta(req, ctx):
        return json.dumps(dict(ctx.invocation_metadata())).encode()

    def blob(req, ctx):
        return b"b" * int(req.decode())

    handlers = {
        "Who": grpc.unary_unary_rpc_method_handler(who),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Meta": grpc.unary_unary_rpc_method_handler(meta),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Blob": grpc.unary_unary_rpc_method_handler(blob),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=OPTS)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("weft.Echo", handlers),))
    port = server.add_insecure_port(args.listen)
    if not port:
        print(json.dumps({"event": "error", "error": "cannot listen on %s" % args.listen}), flush=True)
        return 1
    server.start()
    print(json.dumps({"event": "listening", "addr": args.listen}), flush=True)
    server.wait_for_termination()
    return 0


def call(args):
    out = {"ok": 0, "codes": {}, "replies": {}, "messages": 0, "errors": []}
    with grpc.insecure_channel(args.connect, options=OPTS) as ch:
        path = "/weft.Echo/" + args.method
        for _ in range(args.n):
            try:
                if args.method == "Stream":
                    n = 0
                    for _m in ch.unary_stream(path)(args.payload.encode(), timeout=args.timeout):
                        n += 1
                    out["messages"] += n
                    reply = "stream"
                elif args.method == "Chat":
                    msgs = [b"m%d" % i for i in range(int(args.payload))]
                    got = [r for r in ch.stream_stream(path)(iter(msgs), timeout=args.timeout)]
                    out["messages"] += len(got)
                    reply = "ok" if got == [b"re:" + m for m in msgs] else "mismatch"
                elif args.method == "Cancel":
                    fut = ch.unary_unary("/weft.Echo/Sleep").future(args.payload.encode(), timeout=args.timeout)
                    time.sleep(0.5)
                    fut.cancel()
                    reply = "cancelled" if fut.cancelled() else "not cancelled"
                elif args.method == "Upload":
                    chunks = (b"u" * 1000 for _ in range(int(args.payload)))
                    reply = ch.stream_unary(path)(chunks, timeout=args.timeout).decode()
                else:
                    md = (("traceparent", args.traceparent),) if args.traceparent else None
                    reply = ch.unary_unary(path)(args.payload.encode(), timeout=args.timeout,
                                                 metadata=md).decode()
                out["ok"] += 1
                out["codes"]["OK"] = out["codes"].get("OK", 0) + 1
                out["replies"][reply] = out["replies"].get(reply, 0) + 1
            except grpc.RpcError as e:
                code = e.code().name
                out["codes"][code] = out["codes"].get(code, 0) + 1
                if len(out["errors"]) < 5:
                    out["errors"].append("%s: %s" % (code, e.details()))
    print(json.dumps(out), flush=True)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--listen", required=True)
    s.add_argument("--name", required=True)
    c = sub.add_parser("call")
    c.add_argument("--connect", required=True)
    c.add_argument("--method", default="Who")
    c.add_argument("--payload", default="")
    c.add_argument("--n", type=int, default=1)
    c.add_argument("--timeout", type=float, default=5.0)
    c.add_argument("--traceparent", default="")
    a = p.parse_args()
    return serve(a) if a.cmd == "serve" else call(a)


if __name__ == "__main__":
    sys.exit(main())
