#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Installs the Debian packages weft needs to build, test (unit, fuzz, e2e) and
# demo. Quick when everything is there: dpkg-query first, apt only for what is
# missing.
# Usage: scripts/deps.sh           everything (as root, or with everything installed)
#        scripts/deps.sh --build   only what `make` needs (deploy/Containerfile's build stage)
set -euo pipefail

BUILD_PKGS=(
	build-essential clang llvm pkg-config
	libbpf-dev bpftool libelf-dev zlib1g-dev
	libev-dev libconfig-dev libwolfssl-dev libnl-3-dev libnl-route-3-dev libnl-idiag-3-dev
	# Kubernetes API objects (codec/k8s): JSON with jansson
	libjansson-dev
	# HTTP/2 and gRPC at layer 7 (http/h2*)
	libnghttp2-dev
	# DNS service discovery (disc/dnsdisc): asynchronous queries on the event loop
	libc-ares-dev
)
PKGS=(
	"${BUILD_PKGS[@]}"
	# make format, make format-check
	clang-format
	# tests: unit (cmocka), sanitizer + libFuzzer runtime, valgrind, e2e (pytest, clients)
	libcmocka-dev libclang-rt-14-dev valgrind
	python3 python3-pytest curl iproute2 wrk
	# e2e: tests/e2e/test_deploy.py (the manifests: python3-yaml; weftd.service:
	# systemd-analyze verify), test_bpffs.py (unshare, mountpoint: util-linux)
	python3-yaml systemd util-linux
	# e2e: promtool check metrics and check rules (the Grafana dashboard), and a real
	# Prometheus scraping weftd
	prometheus
	# mTLS: scripts/weft-ca (openssl), testssl.sh against the inbound listener
	openssl testssl.sh
	# HTTP/2 and gRPC: h2load and nghttp (nghttp2-client), python gRPC clients and servers,
	# nghttpd (nghttp2-server: the h2c backend of make bench's HTTP/2 phase)
	nghttp2-client nghttp2-server python3-grpcio
	# e2e: DNS service discovery against a real DNS server on 127.0.0.0/8 (the binary only:
	# dnsmasq-base installs no service and leaves the machine's resolver alone)
	dnsmasq-base
)
case "${1:-}" in
"") ;;
--build) PKGS=("${BUILD_PKGS[@]}") ;;
*)
	echo "usage: $0 [--build]" >&2
	exit 2
	;;
esac

missing=()
for p in "${PKGS[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$status" in
	ii*) ;;
	*) missing+=("$p") ;;
	esac
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PKGS[@]} packages present"
	exit 0
fi

echo "deps: missing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: not root: cannot install them. Run as root: sudo $0" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps: apt-get update"
apt-get update -q
echo "deps: apt-get install ${missing[*]}"
apt-get install -y -q --no-install-recommends "${missing[@]}"

# Check again: apt may have said yes and installed nothing useful.
still=()
for p in "${missing[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$status" in
	ii*) ;;
	*) still+=("$p") ;;
	esac
done
if [ ${#still[@]} -ne 0 ]; then
	echo "deps: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "deps: installed ${#missing[@]} package(s)"
