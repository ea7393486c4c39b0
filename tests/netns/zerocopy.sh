#!/usr/bin/env bash
# zerocopy.sh - zero-copy receive (issue 14): TCP segments stay in their
# UMEM frame while lwIP and the reader hold them, within a bound, and every
# frame comes back. l3x-serve echoes on AF_XDP with 8192 frames (4096
# receive frames, the default: lwIP may hold 2048) and --check-mem.
# Checks:
#   - a bulk echo over 4 streams comes back exact, and most segments went
#     in zero copy (rx_zerocopy);
#   - stalled readers (32 clients that send and never read: the echo
#     stops, then the server's reading) and an out-of-order flood (scapy,
#     4 connections of spoofed sources, each segment past a hole) hold
#     frames past the bound: the engine copies instead
#     (rx_zerocopy_fallback), the fill ring never runs dry once they are
#     held (no frame lost by the socket: rx_ring_dropped stays) and a new
#     flow still echoes;
#   - once everything closes, every frame is back where it started
#     (--check-mem: none held, the parts add up to the total).
. "$(dirname "$0")/testbed.bash"
require_root_netns
PORT=9500
DIR=$PIN/zc
SLOG=$WORK/serve.log

require_scapy zerocopy.sh
testbed_pinned 1
MAC_S=$(nss ip -br link show "$IF_S" | awk '{print $3}')
MAC_C=$(nsc ip -br link show "$IF_C" | awk '{print $3}')
serve_echo_on_veth zerocopy "tcp $ADDR4_S $PORT" -- --check-mem

out=$(echo_check 4 4000000 2>&1)
expect_eq "zerocopy: a bulk echo over 4 streams comes back exact ($out)" $? 0
c=$(counters)
zc=$(awk '$1 == "rx_zerocopy" {print $2}' <<<"$c")
cp=$(awk '$1 == "rx_copied" {print $2}' <<<"$c")
check "zerocopy: most segments of the bulk went in their frame (rx_zerocopy $zc, rx_copied $cp)" \
	test "${zc:-0}" -gt 10000 -a "${zc:-0}" -gt "${cp:-0}"

# Stalled readers: 32 clients that send up to 4 MB each and read nothing,
# their sockets kept open. The echo stops, then the server's reading: each
# stream holds a receive window (256 KiB, ~180 frames) of unread data,
# more than all 4096 receive frames together, were there no bound.
nsc $PY - "$ADDR4_S" $PORT "$WORK/stall.ready" >"$WORK/stall.out" 2>&1 <<'EOF' &
import os, socket, sys, time
ss = [socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) for _ in range(32)]
sent = [0] * len(ss)
for s in ss:
    s.setblocking(False)
end = time.time() + 4
while time.time() < end and min(sent) < 4000000:
    busy = False
    for i, s in enumerate(ss):
        try:
            sent[i] += s.send(b"x" * 65536)
            busy = True
        except BlockingIOError:
            pass
    if not busy:
        time.sleep(0.05)
open(sys.argv[3], "w").write("%d\n" % sum(sent))
time.sleep(60)
EOF
STALL=$!
on_exit "kill $STALL 2>/dev/null"
wait_for test -s "$WORK/stall.ready" || { not_ok "zerocopy: the stalled client did not start: $(cat "$WORK/stall.out")"; exit 1; }
# The burst of the stall itself may overrun the RX ring; what counts is
# that nothing is lost once the frames are held.
sleep 1
rd0=$(counters | awk '$1 == "rx_ring_dropped" {print $2}')

# The out-of-order flood: 4 connections from spoofed sources (replies go
# to the client's MAC, where the kernel drops them as not its own), then
# 40 segments each, every one past a hole of 1400 bytes.
nsc $PY - "$IF_C" "$MAC_C" "$MAC_S" "$ADDR4_S" $PORT >"$WORK/ooo.out" 2>&1 <<'EOF'
import sys
from scapy.all import Ether, IP, TCP, Raw, AsyncSniffer, sendp, conf
conf.verb = 0
iface, cmac, smac, sip, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
e = Ether(src=cmac, dst=smac)
srcs = ["192.0.2.%d" % (100 + i) for i in range(4)]
sn = AsyncSniffer(iface=iface, filter="tcp and src port %d" % port)
sn.start()
import time
time.sleep(0.5)
for i, src in enumerate(srcs):
    sendp(e / IP(src=src, dst=sip) / TCP(sport=40000 + i, dport=port, flags="S", seq=1000), iface=iface)
time.sleep(1)
synacks = {}
for p in sn.stop():
    if TCP in p and p[TCP].flags & 0x12 == 0x12:
        synacks[p[IP].dst] = p[TCP].seq
frames = []
for i, src in enumerate(srcs):
    if src not in synacks:
        continue
    ack = synacks[src] + 1
    frames.append(e / IP(src=src, dst=sip) / TCP(sport=40000 + i, dport=port, flags="A", seq=1001, ack=ack))
for k in range(1, 41):
    for i, src in enumerate(srcs):
        if src in synacks:
            frames.append(e / IP(src=src, dst=sip) / TCP(sport=40000 + i, dport=port, flags="A",
                          seq=1001 + k * 1400, ack=synacks[src] + 1) / Raw(b"o" * 1400))
sendp(frames, iface=iface)
print("handshakes %d, sent %d" % (len(synacks), len(frames)))
EOF
check "zerocopy: the out-of-order flood made its 4 connections ($(cat "$WORK/ooo.out"))" \
	grep -q '^handshakes 4,' "$WORK/ooo.out"

out=$(echo_check 1 1000000 2>&1)
expect_eq "zerocopy: with a stalled reader and an out-of-order flood held, a new flow echoes ($out)" $? 0
c=$(counters)
fb=$(awk '$1 == "rx_zerocopy_fallback" {print $2}' <<<"$c")
rd=$(awk '$1 == "rx_ring_dropped" {print $2}' <<<"$c")
check "zerocopy: past its bound of frames the engine copied (rx_zerocopy_fallback $fb)" test "${fb:-0}" -gt 0
expect_eq "zerocopy: while frames were held, the fill ring never ran dry (rx_ring_dropped $rd0 -> $rd)" "$((${rd:-0} - ${rd0:-0}))" 0

kill $STALL 2>/dev/null
wait $STALL 2>/dev/null
serve_end_on_veth zerocopy
check "zerocopy: every frame back once everything closed ($(grep -o 'check-mem.*' "$SLOG" | head -c 300))" \
	grep -q 'check-mem ok' "$SLOG"
check "zerocopy: no sanitizer report in the server's log" \
	bash -c "! grep -qE 'ERROR: AddressSanitizer|runtime error:' '$SLOG'"

[ "$FAILS" = 0 ]
