#!/usr/bin/env bash
# l2_way.sh - replies go back the way the flow came (issue 12). l3x-serve
# echoes on AF_XDP; a real client keeps a TCP stream and a UDP flow going
# while a spoofer on the same segment (frames from the client's namespace
# with a MAC of its own) sends with the client's address and ports: TCP
# segments in and out of the window, a SYN, datagrams. Checks:
#   - the spoofer receives none of the client's replies (nothing to its
#     MAC on the client's ports), while a flow of its own (the client's
#     address, another port) is answered to its MAC: the capture would see
#     misdirected replies;
#   - the client's stream and datagrams come back exact;
#   - frames from group (multicast, broadcast) source MACs are dropped and
#     counted in rx_src_mac_group, and open no flow.
. "$(dirname "$0")/testbed.bash"
require_root_netns
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=9400
SPOOF_MAC=02:00:00:5b:00:66
DIR=$PIN/way

require_scapy l2_way.sh
testbed_pinned 1
MAC_S=$(nss ip -br link show "$IF_S" | awk '{print $3}')

serve_echo_on_veth l2_way "tcp $ADDR4_S $PORT" "udp $ADDR4_S $PORT"

ip netns exec "$NS_C" tcpdump -i "$IF_C" -n -U -w "$WORK/spoof.pcap" "ether dst $SPOOF_MAC" 2>/dev/null &
TPID=$!
on_exit "kill $TPID 2>/dev/null"
sleep 1

# The client: a TCP stream of seeded chunks, 20 ms apart, and a datagram
# with each, until the spoofer is done (at least 1 s, at most 30 s); every
# echo checked. Its ports go to a file for the spoofer.
nsc $PY - "$ADDR4_S" $PORT "$WORK/ports" "$WORK/spoof.done" >"$WORK/client.out" 2>&1 <<'EOF' &
import hashlib, os, random, select, socket, sys, time
dst, port, pfile, done = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
t = socket.create_connection((dst, port), timeout=5)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 0))
u.setblocking(False)
with open(pfile + ".tmp", "w") as f:
    f.write("%d %d\n" % (t.getsockname()[1], u.getsockname()[1]))
os.rename(pfile + ".tmp", pfile)
rng = random.Random(12)
sent = bytearray()
got = bytearray()
dg_sent, dg_back = 0, 0
start = time.time()
t.setblocking(False)
while time.time() < start + 30 and (time.time() < start + 1 or not os.path.exists(done)):
    chunk = bytes(rng.getrandbits(8) for _ in range(1000))
    t.setblocking(True); t.sendall(chunk); t.setblocking(False)
    sent += chunk
    u.sendto(b"dg-%d" % dg_sent, (dst, port))
    dg_sent += 1
    stop = time.time() + 0.02
    while time.time() < stop:
        r, _, _ = select.select([t, u], [], [], max(0, stop - time.time()))
        if t in r:
            got += t.recv(65536)
        if u in r:
            d = u.recv(2048)
            if d.startswith(b"dg-"):
                dg_back += 1
t.shutdown(socket.SHUT_WR)
t.setblocking(True)
t.settimeout(5)
while len(got) < len(sent):
    d = t.recv(65536)
    if not d:
        break
    got += d
u.settimeout(1)
try:
    while dg_back < dg_sent:
        if u.recv(2048).startswith(b"dg-"):
            dg_back += 1
except socket.timeout:
    pass
ok = got == sent and dg_back == dg_sent
print("%s tcp %d/%d bytes sha %s udp %d/%d" % ("ok" if ok else "bad", len(got), len(sent),
      hashlib.sha256(got).hexdigest()[:16] == hashlib.sha256(sent).hexdigest()[:16],
      dg_back, dg_sent))
sys.exit(0 if ok else 1)
EOF
CPID=$!
wait_for test -s "$WORK/ports" || { not_ok "l2_way: the client did not start: $(cat "$WORK/client.out")"; exit 1; }
read -r TPORT UPORT <"$WORK/ports"

# The spoofer, for about 2 s, while the client runs.
nsc $PY - "$IF_C" "$SPOOF_MAC" "$MAC_S" "$ADDR4_C" "$ADDR4_S" $PORT "$TPORT" "$UPORT" \
	>"$WORK/spoof.out" 2>&1 <<'EOF'
import random, sys, time
from scapy.all import Ether, IP, TCP, UDP, Raw, sendp, conf
conf.verb = 0
iface, smac, dmac, cip, sip = sys.argv[1:6]
port, tport, uport = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
rng = random.Random(7)
e = Ether(src=smac, dst=dmac)
frames = []
for i in range(40):
    seq, ack = rng.getrandbits(32), rng.getrandbits(32)
    frames.append(e / IP(src=cip, dst=sip) / TCP(sport=tport, dport=port, flags="A", seq=seq, ack=ack))
    frames.append(e / IP(src=cip, dst=sip) / TCP(sport=tport, dport=port, flags="PA", seq=seq, ack=ack) / Raw(b"spoof" * 4))
    frames.append(e / IP(src=cip, dst=sip) / UDP(sport=uport, dport=port) / Raw(b"spoof-%d" % i))
frames.append(e / IP(src=cip, dst=sip) / TCP(sport=tport, dport=port, flags="S", seq=rng.getrandbits(32)))
# group source MACs: dropped, counted, no flow
group = [Ether(src=m, dst=dmac) / IP(src=cip, dst=sip) / UDP(sport=41000 + i, dport=port) / Raw(b"group")
         for i, m in enumerate(["01:00:5e:00:00:01"] * 10 + ["ff:ff:ff:ff:ff:ff"] * 10)]
# a flow of the spoofer's own: the client's address, a port nobody uses
own = e / IP(src=cip, dst=sip) / UDP(sport=45999, dport=port) / Raw(b"own-flow")
for f in frames[:60]:
    sendp(f, iface=iface)
    time.sleep(0.01)
sendp(group, iface=iface)
sendp(own, iface=iface)
for f in frames[60:]:
    sendp(f, iface=iface)
    time.sleep(0.01)
print("sent %d spoofed, %d group, 1 own" % (len(frames), len(group)))
EOF
touch "$WORK/spoof.done"
if ! grep -q '^sent ' "$WORK/spoof.out"; then
	not_ok "l2_way: scapy could not send: $(head -c 300 "$WORK/spoof.out")"
	exit 1
fi

wait $CPID
crc=$?
expect_eq "l2_way: the client's stream and datagrams come back exact while spoofed ($(cat "$WORK/client.out"))" $crc 0
sleep 0.5
kill -TERM $TPID
wait $TPID 2>/dev/null
mis=$(tcpdump -n -r "$WORK/spoof.pcap" "port $TPORT or port $UPORT" 2>/dev/null | wc -l)
own=$(tcpdump -n -r "$WORK/spoof.pcap" "udp port 45999" 2>/dev/null | wc -l)
expect_eq "l2_way: the spoofer received none of the client's replies" "$mis" 0
expect_eq "l2_way: the spoofer's own flow is answered to its MAC (the capture sees it)" "$own" 1

serve_end_on_veth l2_way
expect_eq "l2_way: group source MACs dropped and counted" "$(counter rx_src_mac_group)" 20
# The client's UDP flow, the spoofer's own flow; none from the group frames.
expect_eq "l2_way: no flow from a group source MAC" "$(counter created)" 2
expect_eq "l2_way: every reply had a way back" "$(counter tx_no_way)" 0

check "l2_way: no sanitizer report in the server's log" \
	bash -c "! grep -qE 'ERROR: AddressSanitizer|runtime error:' '$WORK/serve.log'"

[ "$FAILS" = 0 ]
