#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# weft benchmark: `make bench` runs this after building build/weftd.
#
#   scripts/bench/run.sh        (as root: BPF programs, cgroups)
#
# 1. installs the benchmark's own tools if they are missing (wrk, haproxy,
#    nginx-light, sockperf; for the HTTP/2 phase nghttp2-client (h2load),
#    nghttp2-server (nghttpd), python3-grpcio; Debian packages),
# 2. builds the open-loop load generator build/bench/weft-loadgen,
# 3. runs scripts/bench/bench.py, which measures direct / weft / HAProxy,
#    then weftd's Kubernetes discovery against the test API server, and
#    writes build/bench/results.md and results.json (docs/benchmarks.md),
# 4. on every exit path (normal, error, Ctrl-C, SIGTERM) sweeps away whatever
#    this run made: cgroups weft-bench-<pid>* under the cgroup2 mount (the
#    pods' cgroups are inside), the pin directory /sys/fs/bpf/weft-bench-<pid>,
#    the network namespaces weft-bench-<pid>-* (the pods'), the pod's veth
#    wbench<pid>, the temp dir, and processes.
#
# Knobs are environment variables (BENCH_ROUNDS=3, BENCH_WRK_SECONDS=4, ...):
# see docs/benchmarks.md or the ENV table in scripts/bench/bench.py.
# BENCH_ONLY=kube runs the discovery phase alone (steps 1 and 2 skipped),
# BENCH_ONLY=h2 the HTTP/2 and gRPC phase alone (step 2 skipped).
set -euo pipefail

cd "$(dirname "$0")/../.."
REPO=$(pwd)
PY=/usr/bin/python3

die() { echo "bench: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (it attaches BPF programs and creates cgroups): sudo make bench"
[ -x build/weftd ] || die "build/weftd is missing: run make first (make bench does)"
[ -x "$PY" ] || die "$PY is missing (make deps)"

# --- tools ----------------------------------------------------------------
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_RC_OURS=0
remove_policy_rc() {
	if [ "$POLICY_RC_OURS" = 1 ]; then
		rm -f "$POLICY_RC"
		POLICY_RC_OURS=0
	fi
}

install_pkgs() {
	local log=/tmp/weft-bench-apt.$$.log
	echo "bench: installing benchmark tools with apt-get: $* (log: $log)" >&2
	export DEBIAN_FRONTEND=noninteractive
	# Packages like nginx and haproxy start their service on install; the
	# benchmark runs its own instances, so forbid that (the standard
	# policy-rc.d switch), unless the machine already has a policy.
	if [ ! -e "$POLICY_RC" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
		chmod 755 "$POLICY_RC"
		POLICY_RC_OURS=1
	fi
	local rc=0
	{ apt-get update -q && apt-get install -y -q --no-install-recommends "$@"; } >"$log" 2>&1 || rc=$?
	remove_policy_rc
	if [ $rc -ne 0 ]; then
		tail -n 20 "$log" >&2
		return 1
	fi
	rm -f "$log"
}

have() { command -v "$1" >/dev/null 2>&1; }

ONLY=${BENCH_ONLY:-}
H2=${BENCH_H2:-1}
have_grpcio() { "$PY" -c 'import grpc' >/dev/null 2>&1; }
# The HTTP/2 phase's tools (BENCH_H2, or alone with BENCH_ONLY=h2): h2load,
# nghttpd, python3-grpcio, and HAProxy.
install_h2_tools() {
	local need=() p
	have haproxy || need+=(haproxy)
	have h2load || need+=(nghttp2-client)
	have nghttpd || need+=(nghttp2-server)
	have_grpcio || need+=(python3-grpcio)
	if [ ${#need[@]} -gt 0 ]; then
		install_pkgs "${need[@]}" || die "could not install ${need[*]}"
	fi
	for p in haproxy h2load nghttpd; do
		have "$p" || die "$p not found after install"
	done
	have_grpcio || die "python3-grpcio not importable by $PY after install"
}
install_tools() {
	local need=() retry=() p
	have wrk || need+=(wrk)
	have haproxy || need+=(haproxy)
	have nginx || need+=(nginx-light)
	have sockperf || need+=(sockperf)
	if [ ${#need[@]} -gt 0 ]; then
		if ! install_pkgs "${need[@]}"; then
			# nginx-light is gone from newer Debian releases: plain nginx then.
			# sockperf is optional (no TCP ping-pong latency without it).
			for p in "${need[@]}"; do
				case $p in
				nginx-light) retry+=(nginx) ;;
				sockperf) ;;
				*) retry+=("$p") ;;
				esac
			done
			[ ${#retry[@]} -eq 0 ] || install_pkgs "${retry[@]}" || die "could not install ${retry[*]}"
			have sockperf || install_pkgs sockperf ||
				echo "bench: sockperf not available: TCP ping-pong latency will be skipped" >&2
		fi
	fi
	for p in wrk haproxy nginx ip nsenter; do
		have "$p" || die "$p not found after install"
	done
}
# The discovery phase alone (BENCH_ONLY=kube) needs weftd, Python and openssl only.
case "$ONLY" in
kube) ;;
h2) install_h2_tools ;;
*)
	install_tools
	[ "$H2" = 0 ] || install_h2_tools
	;;
esac
have taskset || die "taskset not found (util-linux)"
have openssl || die "openssl not found (the test API server makes its certificates with it)"

# --- load generator --------------------------------------------------------
mkdir -p build/bench
LOADGEN=build/bench/weft-loadgen
if [ -z "$ONLY" ] && { [ ! -x "$LOADGEN" ] || [ scripts/bench/loadgen.c -nt "$LOADGEN" ]; }; then
	echo "bench: CC $LOADGEN" >&2
	${CC:-cc} -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow \
		-o "$LOADGEN" scripts/bench/loadgen.c -lm
fi

# --- the run, and the sweep on every exit path ----------------------------
RUN_ID=$$
NAME=weft-bench-$RUN_ID
TMP=$(mktemp -d "/tmp/$NAME.XXXXXX")
CG2=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo)
[ -n "$CG2" ] || die "no cgroup2 mount"
PYPID=

sweep() {
	local rc=$?
	trap - EXIT INT TERM HUP
	remove_policy_rc
	# The driver cleans up after itself; ask it to stop if it is still running.
	if [ -n "$PYPID" ] && kill -0 "$PYPID" 2>/dev/null; then
		kill -TERM "$PYPID" 2>/dev/null || true
		for _ in $(seq 1 300); do kill -0 "$PYPID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$PYPID" 2>/dev/null || true
	fi
	# Then make sure: weftd first (SIGTERM detaches its programs), then
	# everything else in our cgroups, the cgroups, the pins, the temp dir.
	local f w
	for f in "$TMP"/weftd*.pid; do
		[ -f "$f" ] || continue
		w=$(cat "$f")
		if [ -n "$w" ] && grep -qsx "$w" "$CG2/$NAME/weftd/cgroup.procs"; then
			kill -TERM "$w" 2>/dev/null || true
			for _ in $(seq 1 50); do kill -0 "$w" 2>/dev/null || break; sleep 0.1; done
		fi
	done
	if [ -d "$CG2/$NAME" ]; then
		echo 1 >"$CG2/$NAME/cgroup.kill" 2>/dev/null || true
		for _ in $(seq 1 100); do
			find "$CG2/$NAME" -depth -type d -exec rmdir {} + 2>/dev/null || true
			[ -d "$CG2/$NAME" ] || break
			sleep 0.1
		done
		[ ! -d "$CG2/$NAME" ] || echo "bench: could not remove $CG2/$NAME" >&2
	fi
	# The pod's veth (named by bench.py: wbench<run id>), then the pods'
	# network namespaces (their processes died with the cgroups above).
	if ip link show dev "wbench$RUN_ID" >/dev/null 2>&1; then
		ip link del dev "wbench$RUN_ID" 2>/dev/null || echo "bench: could not remove interface wbench$RUN_ID" >&2
	fi
	for f in "/run/netns/$NAME-"*; do
		[ -e "$f" ] || continue
		ip netns delete "${f##*/}" 2>/dev/null || echo "bench: could not remove netns ${f##*/}" >&2
	done
	for f in "/sys/fs/bpf/$NAME" "/sys/fs/bpf/$NAME-"*; do
		[ -e "$f" ] || continue
		rm -rf "$f" || echo "bench: could not remove $f" >&2
	done
	rm -rf "$TMP"
	exit "$rc"
}
trap sweep EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if [ "$ONLY" = kube ]; then
	echo "bench: run $NAME, the Kubernetes discovery phase alone (about a minute; results in build/bench/results.md)" >&2
elif [ "$ONLY" = h2 ]; then
	echo "bench: run $NAME, the HTTP/2 and gRPC phase alone (about 3 minutes; results in build/bench/results.md)" >&2
else
	echo "bench: run $NAME (about 6-7 minutes; results in build/bench/results.md)" >&2
fi
# A session of its own: one scheduling autogroup for the whole benchmark (BENCH_NICE).
setsid "$PY" scripts/bench/bench.py --run-id "$RUN_ID" --tmp "$TMP" &
PYPID=$!
rc=0
wait "$PYPID" || rc=$?
PYPID=
exit "$rc"
