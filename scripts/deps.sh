#!/usr/bin/env bash
# deps.sh - what l3x needs from Debian, and lwIP 2.2.1 from Debian's source
# package.
#   scripts/deps.sh --check    print one line naming what is missing; exit 1
#   scripts/deps.sh --install  apt-get install what is missing, fetch lwIP
# LWIP_SRC=DIR: use that lwIP tree instead of fetching one.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build needs these; tests and tools need the rest.
BUILD_PKGS="gcc make pkg-config clang llvm libxdp-dev libbpf-dev libelf-dev zlib1g-dev dpkg-dev"
TEST_PKGS="groff-base man-db iputils-ping python3 libcriterion-dev libssl-dev bpftool xdp-tools iproute2 ethtool tcpdump tshark python3-scapy socat iperf3 curl bind9-dnsutils wrk apache2-utils microsocks dante-server nginx-light"
LWIP_VERSION=2.2.1
LWIP_DIR=deps/lwip-$LWIP_VERSION
# CI (.ci/run) needs these too: make format-check. The sanitizer runtimes
# (libasan8, libubsan1, liblsan0, libtsan2) come with gcc (libgcc-12-dev
# depends on them).
CI_PKGS="clang-format"
# make fuzz / fuzz-smoke: libFuzzer and the sanitizer runtimes of clang
# (clang itself is a build package above).
FUZZ_PKGS="libclang-rt-dev"

missing_pkgs() {
	local p st
	for p in $BUILD_PKGS $TEST_PKGS $CI_PKGS $FUZZ_PKGS; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[ "$st" = "install ok installed" ] || echo "$p"
	done
}

lwip_ok() {
	local d=${LWIP_SRC:-$LWIP_DIR}
	[ -f "$d/src/include/lwip/init.h" ]
}

check() {
	local m
	m=$(missing_pkgs | tr '\n' ' ')
	lwip_ok || m="$m lwIP-$LWIP_VERSION-source(${LWIP_SRC:-$LWIP_DIR})"
	if [ -n "${m// /}" ]; then
		echo "l3x: missing: ${m% }; run 'make deps'"
		return 1
	fi
}

# The suite carrying lwIP 2.2.1 (trixie) needs a deb-src entry on bookworm.
add_deb_src() {
	local f=/etc/apt/sources.list.d/l3x-lwip-src.sources
	apt-cache showsrc lwip 2>/dev/null | grep -q "^Version: $LWIP_VERSION" && return 0
	cat >"$f" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	apt-get update -qq
}

fetch_lwip() {
	local ver tmp
	lwip_ok && return 0
	if [ -n "${LWIP_SRC:-}" ] && [ "$LWIP_SRC" != "$LWIP_DIR" ]; then
		echo "l3x: LWIP_SRC=$LWIP_SRC is not an lwIP tree (no src/include/lwip/init.h)" >&2
		exit 1
	fi
	add_deb_src
	ver=$(apt-cache showsrc lwip | sed -n "s/^Version: \($LWIP_VERSION[^ ]*\)/\1/p" | head -n1)
	if [ -z "$ver" ]; then
		echo "l3x: no lwIP $LWIP_VERSION source package in apt's lists" >&2
		exit 1
	fi
	tmp=$(mktemp -d deps/.fetch.XXXXXX)
	(cd "$tmp" && apt-get source -qq "lwip=$ver" >/dev/null 2>&1) || {
		echo "l3x: 'apt-get source lwip=$ver' failed" >&2
		rm -rf "$tmp"
		exit 1
	}
	rm -rf "$LWIP_DIR"
	mv "$tmp"/lwip-"$LWIP_VERSION"*/ "$LWIP_DIR"
	rm -rf "$tmp"
	echo "l3x: lwIP $ver unpacked in $LWIP_DIR"
}

install() {
	local m
	m=$(missing_pkgs | tr '\n' ' ')
	if [ -n "${m// /}" ]; then
		[ "$(id -u)" = 0 ] || { echo "l3x: installing packages needs root" >&2; exit 1; }
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $m >/dev/null
	fi
	mkdir -p deps
	fetch_lwip
}

case "${1:-}" in
--check) check ;;
--install) install ;;
*) echo "usage: $0 --check|--install" >&2; exit 2 ;;
esac
