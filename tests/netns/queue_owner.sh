#!/usr/bin/env bash
# queue_owner.sh - a queue has one owner. On a one-queue veth:
#   1. l3x-capture A takes queue 0 and captures.
#   2. a second l3x-capture on queue 0 fails at once: exit 1, one line that
#      says the queue is taken; A keeps its slot and goes on capturing
#      (the failed socket's close did not empty A's slot).
#   3. A second process on the same queue of an l3x-serve is refused alike.
#   4. A dies by SIGKILL: its slot is reclaimed, a new process takes queue
#      0 and captures.
. "$(dirname "$0")/testbed.bash"
require_root_netns
HERE=$(cd "$(dirname "$0")" && pwd)
UDP="$PY $HERE/udp_tool.py"
CAP=$B/l3x-capture
DIR=$PIN/q
N=100

testbed 1 || { not_ok "testbed: cannot build the veth testbed"; exit 1; }
pin_fs || { not_ok "bpffs: cannot mount one at $PIN"; exit 1; }

pcap_count() { tcpdump -nr "$1" 2>/dev/null | wc -l; }

# start_cap NAME: a capture on queue 0 writing $WORK/NAME.pcap; sets CPID
start_cap() {
	# ip netns exec execs the tool: $! is its pid, for kill -9
	ip netns exec "$NS_S" "$CAP" --iface "$IF_S" --queue 0 --rule "udp $ADDR4_S 9000" --pin-dir "$DIR" \
		--write "$WORK/$1.pcap" --seconds 60 2>"$WORK/$1.log" &
	CPID=$!
	on_exit "kill -9 $CPID 2>/dev/null"
}

# ---------------------------------------------------------------- 1
start_cap a
A=$CPID
if ! wait_for test -e "$DIR/l3x_stats" ||
	! wait_for bash -c "bpftool map dump pinned $DIR/l3x_rules | grep -q key"; then
	not_ok "first capture did not start: $(head -c 300 "$WORK/a.log")"
	exit 1
fi
sleep 0.5
nsc $UDP send "$ADDR4_S" 9000 $N a1 200

# ---------------------------------------------------------------- 2
out=$(timeout 20 ip netns exec "$NS_S" "$CAP" --iface "$IF_S" --queue 0 \
	--rule "udp $ADDR4_S 9000" --pin-dir "$DIR" --write "$WORK/b.pcap" --seconds 10 2>&1)
rc=$?
expect_eq "second capture on a taken queue: exit status 1" $rc 1
expect_eq "... one line" "$(echo "$out" | wc -l)" 1
check "... saying the queue is taken by another AF_XDP socket" \
	grep -q "queue 0 on $IF_S: queue taken by another AF_XDP socket" <<<"$out"
check "first capture still runs" kill -0 $A
sleep 0.3
nsc $UDP send "$ADDR4_S" 9000 $N a2 200

# ---------------------------------------------------------------- 3
out=$(timeout 20 ip netns exec "$NS_S" "$B/l3x-serve" --iface "$IF_S" --queue 0 \
	--rule "tcp $ADDR4_S 7" --pin-dir "$DIR" --mode echo 2>&1)
rc=$?
expect_eq "l3x-serve on a taken queue: exit status 1" $rc 1
expect_eq "... one line" "$(echo "$out" | wc -l)" 1
check "... saying the queue is taken" grep -q "queue taken by another AF_XDP socket" <<<"$out"
sleep 0.3
nsc $UDP send "$ADDR4_S" 9000 $N a3 200
sleep 0.5
kill -INT $A
wait $A
expect_eq "first capture got every datagram, before and after both refusals" \
	"$(pcap_count "$WORK/a.pcap")" $((3 * N))

# ---------------------------------------------------------------- 4
start_cap c
C=$CPID
wait_for bash -c "bpftool map dump pinned $DIR/l3x_rules | grep -q key"
sleep 0.5
kill -9 $C
wait $C 2>/dev/null
# A syscall cannot read an XSKMAP: the program's counters tell. The rule
# stays (crash.sh covers reaping), the slot is empty, so the program hands
# the datagrams to the kernel (redirect_failed), which receives them.
f0=$(l3x_counter "$DIR" 2)
nss $UDP recv 0.0.0.0 9000 3 >"$WORK/k.count" &
r=$!
sleep 0.5
nsc $UDP send "$ADDR4_S" 9000 $N k 200
wait $r
f1=$(l3x_counter "$DIR" 2)
expect_eq "SIGKILL: the dead socket's slot is empty (redirect_failed)" $((f1 - f0)) $N
expect_eq "... and the kernel receives the datagrams" "$(cat "$WORK/k.count")" $N
start_cap d
D=$CPID
sleep 1
if kill -0 $D 2>/dev/null; then
	ok "after SIGKILL a new process takes the queue"
else
	not_ok "after SIGKILL a new process takes the queue: $(head -c 300 "$WORK/d.log")"
fi
nsc $UDP send "$ADDR4_S" 9000 $N d 200
sleep 0.5
kill -INT $D
wait $D
expect_eq "... and captures every datagram" "$(pcap_count "$WORK/d.pcap")" $N
nss ip link set "$IF_S" xdp off 2>/dev/null
nss ip link set "$IF_S" xdpgeneric off 2>/dev/null
[ "$FAILS" = 0 ]
