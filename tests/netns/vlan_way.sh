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
. "$(dirname "$0")/testbed.bash"
require_root_netns
PORT=9500
DIR=$PIN/vlan

require_scapy vlan_way.sh
testbed_pinned 1
# Tags stay in the frame as sent and as read, not in skb metadata.
nsc ethtool -K "$IF_C" rxvlan off txvlan off rx-vlan-stag-hw-parse off \
	tx-vlan-stag-hw-insert off >/dev/null 2>&1
MAC_S=$(nss ip -br link show "$IF_S" | awk '{print $3}')
MAC_C=$(nsc ip -br link show "$IF_C" | awk '{print $3}')

serve_echo_on_veth vlan_way "udp $ADDR4_S $PORT vlan 100"

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

serve_end_on_veth vlan_way
expect_eq "vlan_way: two datagrams reached the stack, two echoes left" \
	"$(counter delivered):$(counter sent)" "2:2"
expect_eq "vlan_way: every reply had a way back" "$(counter tx_no_way)" 0

check "vlan_way: no sanitizer report in the server's log" \
	bash -c "! grep -qE 'ERROR: AddressSanitizer|runtime error:' '$WORK/serve.log'"

[ "$FAILS" = 0 ]
