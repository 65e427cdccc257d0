#!/usr/bin/python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""gRPC unary latency at a fixed rate, for the benchmark's HTTP/2 phase
(scripts/bench/bench.py), with Debian's python3-grpcio and no generated code
(the server is tests/e2e/grpc_peer.py; method /weft.Echo/Who).

  grpc_rate.py --connect IP:PORT --rate R --duration S [--warmup S] [--method M]

One channel (one HTTP/2 connection); call k is due at t0 + k/R and is made
then, blocking, one at a time. Its latency runs from when it was due to its
answer, so a call that overran delays the next ones and that wait counts
(no coordinated omission); the plain call time (start to answer) is reported
too. Calls due during the warm-up are made but not recorded. Busy-waits the
last 200 us before each due time (the benchmark pins it to a CPU of its own).
Prints one JSON object: percentiles in microseconds, calls, errors.
"""

import argparse
import json
import sys
import time

import grpc

OPTS = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]


def pct(vals, p):
    if not vals:
        return None
    v = sorted(vals)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--method", default="Who")
    ap.add_argument("--timeout", type=float, default=5.0)
    a = ap.parse_args()
    lat, svc, errors, first_error, late = [], [], 0, None, 0
    with grpc.insecure_channel(a.connect, options=OPTS) as ch:
        fn = ch.unary_unary("/weft.Echo/" + a.method)
        fn(b"", timeout=a.timeout)     # connected before the clock starts
        n_warm = int(a.warmup * a.rate)
        n = n_warm + int(a.duration * a.rate)
        t0 = time.perf_counter() + 0.01
        for k in range(n):
            due = t0 + k / a.rate
            now = time.perf_counter()
            if due - now > 0.0002:
                time.sleep(due - now - 0.0002)
            while time.perf_counter() < due:
                pass
            start = time.perf_counter()
            try:
                fn(b"", timeout=a.timeout)
                ok = True
            except grpc.RpcError as e:
                ok = False
                errors += 1
                first_error = first_error or "%s: %s" % (e.code(), e.details())
            end = time.perf_counter()
            if k < n_warm:
                continue
            if start - due > 0.001:
                late += 1
            if ok:
                lat.append((end - due) * 1e6)
                svc.append((end - start) * 1e6)
    out = {"calls": len(lat) + errors, "ok": len(lat), "errors": errors, "first_error": first_error,
           "late_1ms": late, "rate": a.rate, "duration_s": a.duration,
           "latency_us": {p: pct(lat, q) for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9))},
           "call_us": {p: pct(svc, q) for p, q in (("p50", 50), ("p99", 99))}}
    print(json.dumps(out), flush=True)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
