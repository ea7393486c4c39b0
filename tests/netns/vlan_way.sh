#!/usr/bin/env bash
# vlan_way.sh - "vlan N" rules on a live link, and replies that keep their
# tags (issue 12). This kernel has no 8021q module, so the client's tagged
# frames are built with scapy and its replies read from a packet socket.
# l3x-serve echoes UDP with the rule "udp ADDR PORT vlan 100":
#   - a datagram on 802.1Q VLAN 100 is echoed, the reply tagged VLAN 100;
#   - in QinQ (802.1ad 10, then 802.1Q 100) it is echoed with both tags,
#     in that order: the inner tag is the one a rule names;
#   - on VLAN 200, in QinQ with 100 outside, or untagged, the program
#     leaves it to the kernel: no echo (the steering counts it passed).
# The VLAN ID is part of a flow's identity. With rules for both VLANs on
# ZPORT (UDP) and ZPORT + 1 (TCP), the same client 4-tuple on VLAN 100 and
# VLAN 200 is two flows:
#   - UDP: each datagram is echoed its own payload, with its own tag;
#   - TCP: two SYNs get two SYN-ACKs (each with its tag, different ISNs),
#     both handshakes complete and each connection echoes its own data;
#   - a bound socket (--dns on ZPORT + 2, a rule of any VLAN) answers each
#     query on the VLAN it came by.
. "$(dirname "$0")/testbed.bash"
require_root_netns
PORT=9500
ZPORT=9510
DIR=$PIN/vlan

require_scapy vlan_way.sh
testbed_pinned 1
# Tags stay in the frame as sent and as read, not in skb metadata.
nsc ethtool -K "$IF_C" rxvlan off txvlan off rx-vlan-stag-hw-parse off \
	tx-vlan-stag-hw-insert off >/dev/null 2>&1
MAC_S=$(nss ip -br link show "$IF_S" | awk '{print $3}')
MAC_C=$(nsc ip -br link show "$IF_C" | awk '{print $3}')

serve_echo_on_veth vlan_way "udp $ADDR4_S $PORT vlan 100" \
	"udp $ADDR4_S $ZPORT vlan 100" "udp $ADDR4_S $ZPORT vlan 200" \
	"tcp $ADDR4_S $((ZPORT + 1)) vlan 100" "tcp $ADDR4_S $((ZPORT + 1)) vlan 200" \
	-- --dns "$ADDR4_S:$((ZPORT + 2))"

# Each case: the tags to send with (TPID:ID, outer first), and whether an
# echo must come back with the same tags. One line per case.
nsc $PY - "$IF_C" "$MAC_C" "$MAC_S" "$ADDR4_C" "$ADDR4_S" $PORT >"$WORK/vlan.out" 2>&1 <<'EOF'
import sys, time
from scapy.all import Ether, Dot1Q, Dot1AD, IP, UDP, Raw, AsyncSniffer, sendp, conf
conf.verb = 0
iface, cmac, smac, cip, sip, port = sys.argv[1:7]
port = int(port)
cases = [
    ("802.1Q VLAN 100 is served", [(0x8100, 100)], True),
    ("QinQ outer 10, inner 100 is served", [(0x88a8, 10), (0x8100, 100)], True),
    ("802.1Q VLAN 200 is left to the kernel", [(0x8100, 200)], False),
    ("QinQ outer 100, inner 10 is left to the kernel", [(0x88a8, 100), (0x8100, 10)], False),
    ("untagged is left to the kernel", [], False),
]


def tags_of(p):
    out, q = [], p.payload
    while isinstance(q, (Dot1Q, Dot1AD)):
        out.append((0x88a8 if isinstance(q, Dot1AD) else 0x8100, q.vlan))
        q = q.payload
    return out


# One capture for every case, up before the first frame leaves.
ready = []
sn = AsyncSniffer(iface=iface, started_callback=lambda: ready.append(1),
                  lfilter=lambda p: p.haslayer(IP) and p[IP].src == sip and p[IP].proto == 17)
sn.start()
for _ in range(50):
    if ready:
        break
    time.sleep(0.1)
time.sleep(0.2)
for i, (name, tags, want) in enumerate(cases):
    l = Ether(src=cmac, dst=smac)
    for tpid, vid in tags:
        l = l / (Dot1AD(vlan=vid) if tpid == 0x88a8 else Dot1Q(vlan=vid))
    sendp(l / IP(src=cip, dst=sip) / UDP(sport=47000 + i, dport=port) / Raw(b"vlan-case-%d" % i),
          iface=iface)
    time.sleep(0.2)
time.sleep(1)
sn.stop()
res = sn.results or []
bad = 0
for i, (name, tags, want) in enumerate(cases):
    got = [p for p in res if bytes(p).endswith(b"vlan-case-%d" % i)]
    if want:
        ok = len(got) == 1 and tags_of(got[0]) == tags and got[0][Ether].src == smac
        why = "replies %d, tags %s" % (len(got), [tags_of(g) for g in got])
    else:
        ok = len(got) == 0
        why = "replies %d" % len(got)
    print("%s vlan_way: %s (%s)" % ("ok" if ok else "not ok", name, why))
    bad += not ok
sys.exit(1 if bad else 0)
EOF
rc=$?
cat "$WORK/vlan.out"
grep -q 'vlan_way: untagged' "$WORK/vlan.out" || not_ok "vlan_way: scapy could not run: $(head -c 300 "$WORK/vlan.out")"
[ $rc = 0 ] || FAILS=$((FAILS + 1))

# Two zones, one 4-tuple: UDP, then TCP.
nsc $PY - "$IF_C" "$MAC_C" "$MAC_S" "$ADDR4_C" "$ADDR4_S" $ZPORT >"$WORK/zone.out" 2>&1 <<'EOF'
import sys, time
from scapy.all import Ether, Dot1Q, IP, UDP, TCP, Raw, AsyncSniffer, sendp, conf
conf.verb = 0
iface, cmac, smac, cip, sip, port = sys.argv[1:7]
uport, tport, dport, cport = int(port), int(port) + 1, int(port) + 2, 47100
vids = (100, 200)
cisn = {100: 1000, 200: 900000}  # the client's ISNs: different on purpose
bad = 0


def vid_of(p):
    """The VLAN ID of a frame with exactly one tag, else None."""
    if not p.haslayer(Dot1Q) or p[Dot1Q].payload.haslayer(Dot1Q):
        return None
    return p[Dot1Q].vlan


def frame(vid, l4):
    return Ether(src=cmac, dst=smac) / Dot1Q(vlan=vid) / IP(src=cip, dst=sip) / l4


def sniff_start():
    ready = []
    sn = AsyncSniffer(iface=iface, started_callback=lambda: ready.append(1),
                      lfilter=lambda p: p.haslayer(IP) and p[IP].src == sip)
    sn.start()
    for _ in range(50):
        if ready:
            break
        time.sleep(0.1)
    time.sleep(0.2)
    return sn


def report(ok, what, why):
    global bad
    print("%s vlan_way: %s (%s)" % ("ok" if ok else "not ok", what, why))
    bad += not ok


sn = sniff_start()
# UDP: one datagram per VLAN, the same 4-tuple.
for vid in vids:
    sendp(frame(vid, UDP(sport=cport, dport=uport) / Raw(b"zone-udp-%d" % vid)), iface=iface)
    time.sleep(0.2)
# A bound socket: a DNS query per VLAN (its ID the VLAN's), the same 4-tuple.
for vid in vids:
    q = bytes([vid >> 8, vid & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 97, 0, 0, 1, 0, 1])
    sendp(frame(vid, UDP(sport=cport, dport=dport) / Raw(q)), iface=iface)
    time.sleep(0.3)
# TCP: a SYN per VLAN, the same 4-tuple.
for vid in vids:
    sendp(frame(vid, TCP(sport=cport, dport=tport, flags="S", seq=cisn[vid], window=65535)),
          iface=iface)
    time.sleep(0.3)
time.sleep(0.5)
sn.stop()
res = list(sn.results or [])

for vid in vids:
    got = [p for p in res if p.haslayer(UDP) and bytes(p[UDP].payload) == b"zone-udp-%d" % vid]
    report(len(got) == 1 and vid_of(got[0]) == vid and got[0][UDP].dport == cport,
           "same UDP 4-tuple on VLAN %d: a flow of its own, echoed with its tag" % vid,
           "replies %d, vlans %s" % (len(got), [vid_of(g) for g in got]))
for vid in vids:
    got = [p for p in res if p.haslayer(UDP) and p[UDP].sport == dport and
           bytes(p[UDP].payload)[:2] == bytes([vid >> 8, vid & 255])]
    report(len(got) == 1 and vid_of(got[0]) == vid,
           "a bound socket answers the query of VLAN %d on VLAN %d" % (vid, vid),
           "answers %d, vlans %s" % (len(got), [vid_of(g) for g in got]))
isn = {}
for vid in vids:
    got = [p for p in res if p.haslayer(TCP) and p[TCP].sport == tport and
           p[TCP].flags.S and p[TCP].flags.A and p[TCP].ack == cisn[vid] + 1]
    report(len(got) >= 1 and all(vid_of(g) == vid for g in got),
           "SYN on VLAN %d gets a SYN-ACK tagged %d" % (vid, vid),
           "syn-acks %d, vlans %s" % (len(got), [vid_of(g) for g in got]))
    if got:
        isn[vid] = got[0][TCP].seq
report(len(isn) == 2 and isn[100] != isn[200], "the two SYN-ACKs have different ISNs", str(isn))

if len(isn) == 2:
    sn = sniff_start()
    for vid in vids:
        sendp(frame(vid, TCP(sport=cport, dport=tport, flags="A", seq=cisn[vid] + 1,
                             ack=isn[vid] + 1, window=65535)), iface=iface)
        sendp(frame(vid, TCP(sport=cport, dport=tport, flags="PA", seq=cisn[vid] + 1,
                             ack=isn[vid] + 1, window=65535) / Raw(b"zone-tcp-%d" % vid)),
              iface=iface)
        time.sleep(0.3)
    time.sleep(1)
    sn.stop()
    res = [p for p in (sn.results or []) if p.haslayer(TCP)]
    for vid in vids:
        mine = b"zone-tcp-%d" % vid
        got = [p for p in res if bytes(p[TCP].payload) == mine]
        report(len(got) >= 1 and all(vid_of(g) == vid and g[TCP].seq == isn[vid] + 1 and
                                     g[TCP].ack == cisn[vid] + 1 + len(mine) for g in got),
               "the connection on VLAN %d completes and echoes its own data, tagged %d" % (vid, vid),
               "echoes %d, vlans %s" % (len(got), [vid_of(g) for g in got]))
    # Both connections go: a reset each.
    for vid in vids:
        sendp(frame(vid, TCP(sport=cport, dport=tport, flags="R", seq=cisn[vid] + 11)),
              iface=iface)
    time.sleep(0.3)
print("vlan_way: zone cases done")
sys.exit(1 if bad else 0)
EOF
rc=$?
cat "$WORK/zone.out"
grep -q 'vlan_way: zone cases done' "$WORK/zone.out" ||
	not_ok "vlan_way: scapy could not run the zone cases: $(head -c 300 "$WORK/zone.out")"
[ $rc = 0 ] || FAILS=$((FAILS + 1))

serve_end_on_veth vlan_way
expect_eq "vlan_way: six datagrams reached the stack, four in four flows, six replies left" \
	"$(counter delivered):$(counter created):$(counter sent)" "6:4:6"
expect_eq "vlan_way: two TCP connections were accepted, one per VLAN" "$(counter accepted)" 2
expect_eq "vlan_way: every reply had a way back" "$(counter tx_no_way)" 0

check "vlan_way: no sanitizer report in the server's log" \
	bash -c "! grep -qE 'ERROR: AddressSanitizer|runtime error:' '$WORK/serve.log'"

[ "$FAILS" = 0 ]
