#!/usr/bin/env bash
# hostile.sh - the steering program on a live link with bad and odd frames:
#   - malformed frames (bad IHL, lengths past the frame, cut headers, a
#     too-long IPv6 extension chain) are each counted malformed and passed,
#     and a capture in progress loses nothing;
#   - IPv4 options, one and two VLAN tags, IPv6 extension headers: steered;
#   - datagrams the kernel fragments: every fragment of a matched datagram is
#     captured, and fragments of the kernel's own flows still reach it.
. "$(dirname "$0")/testbed.bash"
require_root_netns
HERE=$(cd "$(dirname "$0")" && pwd)
UDP="$PY $HERE/udp_tool.py"
PORT=9300
DIR=$PIN/hostile

require_scapy hostile.sh
testbed_pinned 1
MAC_S=$(nss ip -br link show "$IF_S" | awk '{print $3}')

nss "$B/l3x-capture" --iface "$IF_S" --rule "udp $ADDR4_S $PORT" --rule "udp $ADDR6_S $PORT" \
	--write "$WORK/h.pcap" --pin-dir "$DIR" --seconds 120 2>"$WORK/h.log" &
CAPPID=$!
on_exit "kill $CAPPID 2>/dev/null"
if ! wait_for test -e "$DIR/l3x_stats" || ! wait_for bash -c "ip netns exec $NS_S ip -d link show $IF_S | grep -q prog/xdp"; then
	not_ok "hostile: l3x-capture did not attach: $(head -c 300 "$WORK/h.log")"
	exit 1
fi
sleep 0.3

# A good flow before and after the hostile frames.
nsc $UDP send "$ADDR4_S" $PORT 50 pre 100
m0=$(l3x_counter "$DIR" 3)
out=$(nsc $PY "$HERE/hostile_frames.py" "$IF_C" "$MAC_S" "$ADDR4_C" "$ADDR4_S" "$ADDR6_C" "$ADDR6_S" $PORT 2>&1)
mal=$(sed -n 's/.*malformed=\([0-9]*\).*/\1/p' <<<"$out")
steer=$(sed -n 's/.*steered=\([0-9]*\).*/\1/p' <<<"$out")
if [ -z "$mal" ]; then
	not_ok "hostile: scapy could not send: $(head -c 300 <<<"$out")"
	exit 1
fi
sleep 0.3
m1=$(l3x_counter "$DIR" 3)
expect_eq "hostile: each malformed frame counted malformed once" $((m1 - m0)) "$mal"
nsc $UDP send "$ADDR4_S" $PORT 50 post 100

# Fragments: the kernel splits 3000-byte datagrams at MTU 1500.
f0=$(l3x_counter "$DIR" 4)
nsc $PY -c "
import socket
for fam, dst in ((socket.AF_INET, '$ADDR4_S'), (socket.AF_INET6, '$ADDR6_S')):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    for i in range(5):
        s.sendto(b'F' * 3000, (dst, $PORT))
"
nss $UDP recv 0.0.0.0 9301 3 >"$WORK/frag-kernel" &
RPID=$!
sleep 0.5
nsc $PY -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    s.sendto(b'K' * 3000, ('$ADDR4_S', 9301))
"
wait $RPID
expect_eq "fragments: the kernel reassembled its own fragmented datagrams" "$(cat "$WORK/frag-kernel")" 5
f1=$(l3x_counter "$DIR" 4)
expect_eq "fragments: each matched first fragment was tracked" $((f1 - f0)) 10
check "ping still works after the hostile frames" nsc ping -c 2 -i 0.2 -W 2 "$ADDR4_S"

sleep 0.3
kill -INT $CAPPID
wait $CAPPID
n=$(tcpdump -nr "$WORK/h.pcap" 2>/dev/null | wc -l)
# 100 good datagrams + the steered odd ones + 10 datagrams x 3 fragments
# (3000 bytes at MTU 1500: IPv4 1480+1480+48, IPv6 1448+1448+112).
expect_eq "capture holds the good flow, the odd-but-valid frames and every fragment" "$n" $((100 + steer + 30))
vl=$(tshark -r "$WORK/h.pcap" -Y vlan 2>/dev/null | wc -l)
expect_eq "capture holds the one- and two-tag VLAN frames, tags intact" "$vl" 2
bad=$(tshark -r "$WORK/h.pcap" -Y 'udp.dstport != '$PORT' && !ip.frag_offset > 0 && !ipv6.fragment.offset > 0' 2>/dev/null | wc -l)
expect_eq "capture holds nothing to other ports" "$bad" 0
[ "$FAILS" = 0 ]
