#!/usr/bin/env bash
# probe.sh - can GSO-sized TCP segments reach l3x through multi-buffer
# AF_XDP on a veth? (issue 14). Run as root; a few seconds per case, on a
# veth pair of its own (names with this shell's PID), removed at exit.
#
# Cases, each a fresh veth pair, a socat bulk upload from the client side:
#   kernel   no XDP: the largest IP packet the kernel's receiver sees
#            (tcpdump), with the client's offloads off (as l3x-bench and
#            tests/netns/testbed.bash set them) and on
#   xdp      sg_probe.bpf.c (SEC("xdp.frags")) on the receiver, an AF_XDP
#            socket bound with XDP_USE_SG (or without): the client's TSO
#            state once the program is attached, and what the socket got
# What it showed on Linux 6.18 is in README.md (Performance).
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "probe.sh: must run as root" >&2; exit 1; }
tmp=$(mktemp -d /tmp/xdp-sg-probe.XXXXXX)
ns_c=sgpc$$ ns_s=sgps$$ if_c=sgpa$$ if_s=sgpb$$
cleanup() {
	ip netns del "$ns_c" 2>/dev/null || true
	ip netns del "$ns_s" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

clang -O2 -g -Wall -target bpf -I"/usr/include/$(uname -m)-linux-gnu" \
	-c sg_probe.bpf.c -o "$tmp/sg_probe.bpf.o"
gcc -O2 -Wall -o "$tmp/sg_probe" sg_probe.c -lxdp -lbpf

# testbed MTU CLIENT_FEATURES
testbed() {
	cleanup_ns
	ip netns add "$ns_c"
	ip netns add "$ns_s"
	ip link add "$if_c" netns "$ns_c" type veth peer "$if_s" netns "$ns_s"
	ip -n "$ns_c" addr add 10.217.0.1/24 dev "$if_c"
	ip -n "$ns_s" addr add 10.217.0.2/24 dev "$if_s"
	ip -n "$ns_c" link set "$if_c" mtu "$1" up
	ip -n "$ns_s" link set "$if_s" mtu "$1" up
	ip netns exec "$ns_c" ethtool -K "$if_c" $2 >/dev/null 2>&1 || true
	ip netns exec "$ns_c" ping -c 1 -W 2 10.217.0.2 >/dev/null
}
cleanup_ns() {
	ip netns del "$ns_c" 2>/dev/null || true
	ip netns del "$ns_s" 2>/dev/null || true
}

# upload SECONDS: zeros from the client to a socat sink on the server side
upload() {
	ip netns exec "$ns_s" timeout $(($1 + 1)) socat -u \
		TCP-LISTEN:5999,reuseaddr OPEN:/dev/null &
	sleep 0.3
	ip netns exec "$ns_c" timeout "$1" socat -u OPEN:/dev/zero \
		TCP:10.217.0.2:5999 2>/dev/null || true
	wait
}

tso() {
	ip netns exec "$ns_c" ethtool -k "$if_c" |
		awk '/^\ttx-tcp-segmentation:/ { $1 = ""; print substr($0, 2) }'
}

# kernel FEATURES
kernel() {
	testbed 1500 "$1"
	ip netns exec "$ns_s" timeout 3 tcpdump -i "$if_s" -nn -s 80 \
		-w "$tmp/k.pcap" tcp port 5999 2>/dev/null &
	sleep 0.5
	upload 1
	wait
	echo "kernel, client '$1' (TSO $(tso)): largest IP packet received" \
		"$(tcpdump -nn -v -r "$tmp/k.pcap" 2>/dev/null |
			grep -o 'length [0-9]*)' | tr -dc '0-9\n' | sort -n |
			tail -n 1) bytes"
}

# xdp MTU FEATURES SG
xdp() {
	testbed "$1" "$2"
	ip netns exec "$ns_s" "$tmp/sg_probe" "$if_s" 4 "$3" \
		"$tmp/sg_probe.bpf.o" >"$tmp/p.out" 2>&1 &
	sleep 1
	# Asked again with the program attached: veth may have taken it away.
	ip netns exec "$ns_c" ethtool -K "$if_c" $2 >/dev/null 2>&1 || true
	t=$(tso)
	upload 2
	wait
	echo "xdp.frags, MTU $1, client '$2' (TSO $t), XDP_USE_SG $3:"
	grep -v ready "$tmp/p.out" | sed 's/^/    /'
}

kernel "tx off tso off gso off"
kernel "tx on tso on gso on"
xdp 1500 "tx off tso off gso off" 1
xdp 1500 "tx on tso on gso on" 1
xdp 9000 "tx off tso off gso off" 1
xdp 9000 "tx on tso off gso off" 1
xdp 9000 "tx off tso off gso off" 0
