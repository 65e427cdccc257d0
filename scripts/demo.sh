#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# make demo: runs the real weftd with config/weft.conf, intercepting a real
# cgroup, and shows what happened. Cleans up on every exit path.
set -euo pipefail
cd "$(dirname "$0")/.."

B=$'\e[1m'; D=$'\e[2m'; N=$'\e[0m'
[ -t 1 ] || { B=; D=; N=; }
say()  { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
show() { printf '%s$ %s%s\n' "$D" "$*" "$N"; "$@"; }

[ "$(id -u)" = 0 ] || { echo "make demo needs root (BPF and cgroups): run it with sudo" >&2; exit 1; }
CONF=config/weft.conf
WEFTD=build/weftd
PY=/usr/bin/python3
CG2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$CG2" ] || { echo "no cgroup v2 mount found in /proc/self/mountinfo" >&2; exit 1; }
PIN=$(sed -n 's/^[[:space:]]*bpf_pin_path[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "$CONF" | head -1)
PIN=${PIN:-/sys/fs/bpf/weft}
SLICE="$CG2/weft-demo.slice"
CG="$SLICE/client"
LOG=$(mktemp /tmp/weft-demo.XXXXXX.log)
pids=()
# A Kubernetes-shaped pod: its own network namespace, cgroups as the kubelet
# (systemd driver) and containerd make them.
POD_NS="weft-demo-pod-$$"
POD_UID=$(cat /proc/sys/kernel/random/uuid)
POD_CG="$SLICE/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_UID//-/_}.slice"
rand_id() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
PAUSE_CG="$POD_CG/cri-containerd-$(rand_id).scope"
APP_CG="$POD_CG/cri-containerd-$(rand_id).scope"

cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	for d in "$APP_CG" "$PAUSE_CG"; do
		[ -d "$d" ] || continue
		while read -r p; do kill -9 "$p" 2>/dev/null; done < "$d/cgroup.procs"
		for _ in $(seq 50); do [ -s "$d/cgroup.procs" ] || break; sleep 0.1; done
		rmdir "$d" 2>/dev/null
	done
	for d in "$POD_CG" "$SLICE/kubepods.slice/kubepods-besteffort.slice" "$SLICE/kubepods.slice"; do
		rmdir "$d" 2>/dev/null
	done
	ip netns delete "$POD_NS" 2>/dev/null
	if [ -d "$CG" ]; then
		while read -r p; do echo "$p" > "$CG2/cgroup.procs"; done < "$CG/cgroup.procs" 2>/dev/null
		rmdir "$CG" 2>/dev/null
	fi
	rmdir "$SLICE" 2>/dev/null
	rm -f "$LOG"
}
trap cleanup EXIT INT TERM

for port in 18081 18082 15001 9990; do
	if ss -Htln "sport = :$port" | grep -q .; then
		echo "port $port is in use; the demo needs 18081, 18082 (backends), 15001 and 9990 (weftd)" >&2
		exit 1
	fi
done
if [ -e "$PIN" ]; then
	echo "$PIN exists: is another weftd running? Stop it first (it removes its pins on SIGTERM)." >&2
	exit 1
fi

say "Two ordinary backends: 127.0.0.1:18081 and 127.0.0.1:18082 (they say who they are)"
for i in 1 2; do
	$PY - "$i" <<'PY' &
import http.server, sys
n = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        extra = " %s x-routed-by=%s" % (self.path, self.headers.get("x-routed-by")) if self.path != "/" else ""
        body = ("hello from backend-%s (it saw the client as %s:%d)%s\n" % ((n,) + self.client_address + (extra,))).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", 18080 + int(n)), H).serve_forever()
PY
	pids+=($!)
done

say "The service 'demo' lives at 127.10.0.1:80 - nothing listens there; weft makes it real"
show grep -v '^[[:space:]]*#' "$CONF" | sed '/^[[:space:]]*$/d'

say "Start weftd (the agent) with $CONF"
$WEFTD -c "$CONF" 2> "$LOG" &
WPID=$!
pids+=($WPID)
for _ in $(seq 100); do
	grep -q 'ready:' "$LOG" && break
	kill -0 "$WPID" 2>/dev/null || { cat "$LOG"; echo "weftd exited" >&2; exit 1; }
	sleep 0.1
done
grep -q 'ready:' "$LOG" || { cat "$LOG"; echo "weftd did not become ready" >&2; exit 1; }
sed 's/^/    /' "$LOG"

say "A workload cgroup that matches intercept.cgroups ('weft-demo.slice/*'): $CG"
mkdir -p "$CG"
for _ in $(seq 30); do grep -q "enrolled cgroup $CG" "$LOG" && break; sleep 0.1; done
grep "enrolled cgroup $CG" "$LOG" | sed 's/^/    /'

say "An unmodified curl inside that cgroup dials http://127.10.0.1/ four times"
for i in 1 2 3 4; do
	printf '  curl #%d: ' "$i"
	sh -c 'echo $$ > "$1/cgroup.procs"; exec curl -sS --max-time 3 http://127.10.0.1/' sh "$CG"
done
echo "  ${D}(round-robin over the two endpoints; the backends saw weftd's connection, not curl's)${N}"

say "Per request (protocol \"http\"): /v2/... is routed to the service demo-v2, with a header added"
for i in 1 2; do
	printf '  curl #%d: ' "$i"
	sh -c 'echo $$ > "$1/cgroup.procs"; exec curl -sS --max-time 3 http://127.10.0.1/v2/hello' sh "$CG"
done
echo "  weft's own per-request metrics:"
build/weftctl metrics | grep '^weft_http_requests_total' | grep -v ' 0$' | sed 's/^/    /'

say "The same curl outside the cgroup is not intercepted: nothing listens on 127.10.0.1:80"
printf '  '; curl -sS --max-time 3 http://127.10.0.1/ 2>&1 || true

say "A pod: its own network namespace ($POD_NS) and kubelet-shaped cgroups"
ip netns add "$POD_NS"
ip -n "$POD_NS" link set lo up
mkdir -p "$PAUSE_CG" "$APP_CG"
echo "  ${POD_CG#"$CG2"/}"
echo "    pause container: ${PAUSE_CG##*/}"
echo "    app container:   ${APP_CG##*/}"
echo "  its sandbox (pause) process joins the pod's cgroup and network namespace, as a runtime does:"
sh -c 'echo $$ > "$1/cgroup.procs"; exec ip netns exec "$2" sleep 3600' sh "$PAUSE_CG" "$POD_NS" &
pids+=($!)
for _ in $(seq 50); do grep -q "pod $POD_UID: serving" "$LOG" && break; sleep 0.1; done
grep "pod $POD_UID: serving" "$LOG" | sed 's/^/    /'
show build/weftctl pods

say "An unmodified curl in the pod's app container dials http://127.10.0.1/ (inside the pod)"
for i in 1 2; do
	printf '  curl #%d: ' "$i"
	sh -c 'echo $$ > "$1/cgroup.procs"; exec ip netns exec "$2" curl -sS --max-time 3 http://127.10.0.1/' sh "$APP_CG" "$POD_NS"
done
echo "  ${D}(the pod's connect went to weftd's listener inside the pod's namespace; weftd proxied it from the host)${N}"

say "What weftd knows (weftctl, the admin API's CLI)"
show build/weftctl services

say "What the kernel holds (bpftool)"
show bpftool cgroup tree "$SLICE"
show bpftool map dump pinned "$PIN/weft_services"
echo "  weft_listeners: the network namespaces (host and pod) where weftd listens, by netns cookie and family:"
bpftool map dump pinned "$PIN/weft_listeners" | sed 's/^/    /'
echo "  the BPF verdict counters (weft_stats), summed over CPUs by weftd's admin API:"
build/weftctl metrics | grep '^weft_bpf_verdicts_total' | grep -v ' 0$' | sed 's/^/    /'
show ls "$PIN" "$PIN/links"

say "Stop weftd (SIGTERM): it drains, detaches and removes its pins"
kill -TERM "$WPID"; wait "$WPID" || true
tail -n 3 "$LOG" | sed 's/^/    /'
if [ -e "$PIN" ]; then echo "  pins still present at $PIN" >&2; exit 1; fi
echo "  $PIN is gone; 'bpftool cgroup tree' shows nothing of weft's."
echo
echo "${B}Done.${N} Next: make test, docs/operations.md, docs/config.md."
