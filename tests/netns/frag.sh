#!/usr/bin/env bash
# frag.sh - a forged first fragment cannot carry a kernel datagram off to
# l3x. l3x-capture takes "udp ADDR 9000"; the kernel receives fragmented
# UDP datagrams (3000 bytes, MTU 1500) on port 9001 while forged first
# fragments with the same source, destination, protocol and IP id, but a
# port the rule takes, arrive:
#   1. forged ahead of each datagram's own first fragment (scapy, ids
#      chosen): every datagram reaches the kernel intact, each conflict is
#      counted (frags_conflict), l3x gets the forged fragments only.
#   2. forged after the datagram's own first fragment: counted, and not
#      one of the datagram's fragments reaches l3x.
#   3. the kernel's own datagrams (its ids) while forged first fragments
#      cover the ids the kernel is about to use: every datagram arrives.
#   4. the entries of datagrams whose last fragment passed are gone (the
#      table is an LRU of 8192 entries: bounded by construction).
. "$(dirname "$0")/testbed.bash"
require_root_netns
HERE=$(cd "$(dirname "$0")" && pwd)
FT="$PY $HERE/frag_tool.py"
CAP=$B/l3x-capture
DIR=$PIN/frag
N=50	# datagrams per phase
K=200	# kernel datagrams in phase 3

require_scapy frag.sh
testbed_pinned 1
export DSTMAC
DSTMAC=$(nss cat "/sys/class/net/$IF_S/address")

ip netns exec "$NS_S" "$CAP" --iface "$IF_S" --rule "udp $ADDR4_S 9000" --pin-dir "$DIR" \
	--write "$WORK/cap.pcap" --seconds 120 2>"$WORK/cap.log" &
CPID=$!
on_exit "kill -9 $CPID 2>/dev/null; ip netns exec $NS_S ip link set $IF_S xdp off"
if ! wait_for bash -c "bpftool map dump pinned $DIR/l3x_rules 2>/dev/null | grep -q key"; then
	not_ok "l3x-capture did not start: $(head -c 300 "$WORK/cap.log")"
	exit 1
fi
sleep 0.3

conflicts() { l3x_counter "$DIR" 5; }
redirected() { l3x_counter "$DIR" 1; }

# phase ORDER ID0: N pairs; sets GOT (intact datagrams at the kernel),
# CONF and REDIR (counter deltas)
phase() {
	local c0 r0
	c0=$(conflicts)
	r0=$(redirected)
	nss $FT recv 9001 $((N / 10 + 4)) >"$WORK/recv.out" &
	local rp=$!
	sleep 0.5
	nsc $FT pairs "$IF_C" "$ADDR4_C" "$ADDR4_S" "$1" $N "$2"
	wait $rp
	GOT=$(cat "$WORK/recv.out")
	CONF=$(($(conflicts) - c0))
	REDIR=$(($(redirected) - r0))
}

# ---------------------------------------------------------------- 1
phase ahead 1000
expect_eq "forged ahead: every kernel datagram arrives intact" "$GOT" $N
expect_eq "forged ahead: each conflict counted" "$CONF" $N
expect_eq "forged ahead: l3x gets the forged fragments, none of the datagrams'" "$REDIR" $N

# ---------------------------------------------------------------- 2
# The kernel then holds two first fragments of one datagram: it drops the
# datagram as overlapping, as it would without l3x. What matters here is
# that none of its fragments went to l3x.
phase after 2000
expect_eq "forged after: each conflict counted" "$CONF" $N
expect_eq "forged after: not one fragment diverted to l3x" "$REDIR" 0

# ---------------------------------------------------------------- 3
r0=$(redirected)
c0=$(conflicts)
nss $FT recv 9001 8 >"$WORK/recv3.out" &
rp=$!
sleep 0.5
id0=$(nsc $FT race "$IF_C" "$ADDR4_C" "$ADDR4_S" 4000 $K)
wait $rp
if [ "${id0:--1}" -lt 0 ]; then
	not_ok "kernel ids: could not see the id of a probe datagram"
else
	expect_eq "4000 forged first fragments over the kernel's next ids reach l3x" \
		$(($(redirected) - r0)) 4000
	expect_eq "the kernel's own fragmented datagrams all arrive intact" "$(cat "$WORK/recv3.out")" $K
	expect_eq "... each met a forged entry: a conflict, counted" $(($(conflicts) - c0)) $K
fi

# ---------------------------------------------------------------- 4
entries=$(bpftool -j map dump pinned "$DIR/l3x_frags" 2>/dev/null |
	$PY -c 'import json,sys; print(len(json.load(sys.stdin)))')
# Of the 4000 forged entries of phase 3, the K the kernel's datagrams met
# went with their last fragments; so did every datagram of phases 1-2.
expect_eq "l3x_frags holds only datagrams without a last fragment" "$entries" $((4000 - K))
kill -INT $CPID
wait $CPID
[ "$FAILS" = 0 ]
