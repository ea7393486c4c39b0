#!/usr/bin/env bash
# corpus.sh - a malformed-packet corpus (tests/netns/corpus.py: 50-odd
# classes, 1000 frames each, seeded) sent at a live l3x-serve --mode echo,
# first on AF_XDP (veth testbed), then on a TUN device, while live flows
# run beside it (kernel TCP and UDP sockets, IPv4 and IPv6, checked bit for
# bit: corpus_live.py). For each source:
#   - every class's frames land in the counters the class expects (per
#     class, from l3x-serve's counters line on SIGUSR1), and the raw TCP
#     flows the stateful classes aim at answer in-window RSTs and SYNs with
#     challenge ACKs and still echo exactly;
#   - the counters add up: AF_XDP: every frame the veth received was
#     counted once by the steering program (passed + redirected +
#     redirect_failed + malformed), and every redirected frame once by the
#     stack (rx_packets + rx_ring_dropped); TUN: every packet the device
#     handed over is in rx_packets; both: rx_packets is the sum of
#     rx_not_ip, rx_no_rule, rx_no_memory and the fates (l3x_stack(3));
#   - the live flows stay exact; new connections succeed within 1 s after
#     the corpus ends; the server exits 0 on SIGINT with flows 0 and no
#     sanitizer report in its log;
#   - one summary line per source: frames per class, the counters, time.
# CORPUS_SEED (default 11), CORPUS_COUNT (frames per class, default 1000),
# CORPUS_CLASSES (comma-separated names, default all: corpus.py list),
# CORPUS_SOURCES (xdp,tun), CORPUS_KEEP=DIR keeps the logs and the pcaps of
# every class (replay: corpus.py replay). See tests/README.md.
. "$(dirname "$0")/testbed.bash"
require_root_netns
HERE=$(cd "$(dirname "$0")" && pwd)
SERVE=$B/l3x-serve
CORPUS="$PY $HERE/corpus.py"
LIVE="$PY $HERE/corpus_live.py"
SEED=${CORPUS_SEED:-11}
COUNT=${CORPUS_COUNT:-1000}
CLASSES=${CORPUS_CLASSES:-}
SOURCES=${CORPUS_SOURCES:-xdp,tun}
PFX4=198.51.100.0/24
PFX6=2001:db8:100::/64
TUN=${TAG}t
SPID=
LPID=

if ! command -v tcpdump >/dev/null; then
	skip "corpus.sh: needs tcpdump (the raw flows' socket filter)"
	exit 0
fi
testbed 1 || { not_ok "testbed: cannot build the veth testbed"; exit 1; }
pin_fs || { not_ok "bpffs: cannot mount one at $PIN"; exit 1; }
if [ -n "${CORPUS_KEEP:-}" ]; then
	mkdir -p "$CORPUS_KEEP"
	on_exit "cp -r $WORK/. $CORPUS_KEEP/"
fi
on_exit "ip netns exec $NS_S ip link del $TUN"
MAC_S=$(nss cat "/sys/class/net/$IF_S/address")
MAC_C=$(nsc cat "/sys/class/net/$IF_C/address")
# Neighbours fixed, so that no ARP or ND of the kernels' crosses the
# steering program while the counters are read; the client may send
# frames past 1500 bytes (over-MTU), its routes to the prefixes stay at
# 1500; the server namespace drops what l3x answers to the corpus's
# sources (no ICMP errors come back into the TUN).
nsc ip neigh replace "$ADDR4_S" lladdr "$MAC_S" nud permanent dev "$IF_C"
nsc ip -6 neigh replace "$ADDR6_S" lladdr "$MAC_S" nud permanent dev "$IF_C"
nss ip neigh replace "$ADDR4_C" lladdr "$MAC_C" nud permanent dev "$IF_S"
nss ip -6 neigh replace "$ADDR6_C" lladdr "$MAC_C" nud permanent dev "$IF_S"
nsc ip link set "$IF_C" mtu 1600
nsc ip route add "$PFX4" via "$ADDR4_S" mtu 1500
nsc ip -6 route add "$PFX6" via "$ADDR6_S" mtu 1500
# Both namespaces drop what l3x answers to the corpus's sources, silently
# (an IPv6 packet for no route is answered with an ICMPv6 error, which
# would come back to l3x), and the client sends no more router
# solicitations (they would cross the steering program at any time).
for ns in "$NS_C" "$NS_S"; do
	ip netns exec "$ns" ip route add blackhole 203.0.113.0/24
	ip netns exec "$ns" ip -6 route add blackhole 2001:db8:bad::/64
done
nsc sysctl -qw "net.ipv6.conf.$IF_C.router_solicitations=0"
LIVE_TARGETS=(198.51.100.7:7 198.51.100.8:8080 '[2001:db8:100::7]:7' '[2001:db8:100::8]:8080')
NEW_TARGETS=(198.51.100.9:80 '[2001:db8:100::9]:80')

# server_start KIND LOG: l3x-serve --mode echo on the veth (xdp) or the
# TUN device (tun), rules for the whole prefixes, any protocol.
server_start() {
	local kind=$1 i
	SLOG=$2
	: >"$SLOG"
	case $kind in
	xdp)
		ip netns exec "$NS_S" "$SERVE" --iface "$IF_S" --rule "ip $PFX4" --rule "ip $PFX6" \
			--mode echo --workers 2 --pin-dir "$PIN/corpus" --quiet 2>"$SLOG" &
		;;
	tun)
		ip netns exec "$NS_S" "$SERVE" --tun "$TUN" --rule "ip $PFX4" --rule "ip $PFX6" \
			--mode echo --workers 2 --quiet 2>"$SLOG" &
		;;
	esac
	SPID=$!
	server_started "$kind: l3x-serve" "$SLOG" "$SPID"
}

# key NAME FILE: the value of NAME in a file of "key value" lines.
key() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

# The sum of the fates in FILE (as l3x_stack(3) adds them up).
fates() {
	local f=$1 s=0 k
	for k in not_ip rx_src_mac_group no_rule no_memory rx_ip_bad rx_frag_held rx_frag_bad \
		rx_tcp_flow rx_tcp_listen rx_tcp_timewait rx_tcp_bad rx_udp rx_udp_bad \
		rx_icmp rx_icmp_bad; do
		s=$((s + $(key $k "$f")))
	done
	echo $s
}

# quiet_snapshot KIND DIR: counters and the device's count of what reached
# l3x, read while nothing moves (both read twice, equal).
quiet_snapshot() {
	local kind=$1 out=$2 a b i
	for i in $(seq 20); do
		a=$(dev_count "$kind")
		counters >"$out"
		b=$(dev_count "$kind")
		if [ "$a" = "$b" ]; then
			echo "$a" >"$out.dev"
			[ "$kind" = tun ] && netstat_of "$NS_S" "$TUN" tx_dropped >"$out.drop"
			[ "$kind" = xdp ] && nss ethtool -S "$IF_S" >"$out.ethtool" 2>&1
			return 0
		fi
		sleep 0.2
	done
	echo "$b" >"$out.dev"
}

# wait_quiet KIND: until nothing has reached l3x for 1.5 s (at most 8 s).
wait_quiet() {
	local last=-1 now same=0 i
	for i in $(seq 16); do
		now=$(dev_count "$1")
		if [ "$now" = "$last" ]; then
			same=$((same + 1))
			[ $same -ge 3 ] && return 0
		else
			same=0
		fi
		last=$now
		sleep 0.5
	done
}

# What reached l3x's side of the link: the veth's received frames (every
# one passes the steering program), or what the TUN device handed to its
# reader (its tx_packets).
dev_count() {
	case $1 in
	xdp) netstat_of "$NS_S" "$IF_S" rx_packets ;;
	tun) netstat_of "$NS_S" "$TUN" tx_packets ;;
	esac
}

# new_connections KIND: right after the corpus, each target takes a new
# connection and echoes within 1 s.
new_connections() {
	local kind=$1 t bad=()
	for t in "${NEW_TARGETS[@]}"; do
		nsc $PY - "$t" <<'EOF' || bad+=("$t")
import socket, sys, time
t = sys.argv[1]
host, _, port = t.strip("[").rpartition(":")
host = host.rstrip("]")
start = time.monotonic()
try:
    s = socket.create_connection((host, int(port)), timeout=1)
    s.settimeout(max(0.01, 1 - (time.monotonic() - start)))
    s.sendall(b"new-connection")
    got = b""
    while len(got) < 14:
        got += s.recv(64) or b"?" * 14
except OSError:
    sys.exit(1)
sys.exit(0 if got == b"new-connection" else 1)
EOF
	done
	if [ ${#bad[@]} = 0 ]; then
		ok "corpus $kind: new connections succeed within 1 s after the corpus ends"
	else
		counters >"$WORK/$kind.newconn"
		not_ok "corpus $kind: new connections within 1 s after the corpus: failed to ${bad[*]}" \
			"(tcp_accepted $(key accepted "$WORK/$kind.newconn")," \
			"refused_backlog $(key refused_backlog "$WORK/$kind.newconn")," \
			"rx_tcp_listen $(key rx_tcp_listen "$WORK/$kind.newconn");" \
			"PCBs left: the closing line's memory, below)"
	fi
}

run_source() {
	local kind=$1 iface ns mac=() t0 rc line
	SLOG=$WORK/$kind-serve.log
	t0=$(date +%s%N)
	server_start "$kind" "$SLOG" || return
	if [ "$kind" = tun ]; then
		if ! nss ip route add "$PFX4" dev "$TUN" || ! nss ip -6 route add "$PFX6" dev "$TUN"; then
			not_ok "tun: cannot route the prefixes into $TUN"
			return
		fi
		nss ip link set "$TUN" txqueuelen 10000
	fi
	wait_quiet "$kind"	# the kernel's first MLD reports on a new device
	quiet_snapshot "$kind" "$WORK/$kind.c0"

	# a simple command, so that LPID is the client itself
	ip netns exec "$NS_C" $LIVE --tcp 2 --udp 1 --seed "$SEED" --max-seconds 300 \
		"${LIVE_TARGETS[@]}" >"$WORK/$kind-live.log" 2>&1 &
	LPID=$!
	on_exit "kill $LPID 2>/dev/null"
	if ! wait_for grep -q 'live: ready' "$WORK/$kind-live.log"; then
		not_ok "corpus $kind: live flows did not start: $(head -c 300 "$WORK/$kind-live.log")"
		kill $LPID 2>/dev/null
		return
	fi

	if [ "$kind" = xdp ]; then
		iface=$IF_C
		mac=(--dst-mac "$MAC_S")
		ns=$NS_C
	else
		iface=$TUN
		ns=$NS_S
	fi
	ip netns exec "$ns" $CORPUS run --mode "$kind" --iface "$iface" "${mac[@]}" \
		--server-pid "$SPID" --server-log "$SLOG" --seed "$SEED" --count "$COUNT" \
		${CLASSES:+--classes "$CLASSES"} --pcap-dir "$WORK/pcap" \
		>"$WORK/$kind-corpus.log" 2>&1
	rc=$?
	grep -E '^(ok|not ok|skip) ' "$WORK/$kind-corpus.log"
	if [ $rc != 0 ] && ! grep -q '^not ok ' "$WORK/$kind-corpus.log"; then
		not_ok "corpus $kind: corpus.py exited $rc: $(tail -n 3 "$WORK/$kind-corpus.log" | tr '\n' ' ')"
	fi

	new_connections "$kind"

	kill -TERM $LPID
	wait $LPID
	rc=$?
	line=$(grep '^live: ' "$WORK/$kind-live.log" | tail -n 1)
	if [ $rc = 0 ]; then
		ok "corpus $kind: live flows stayed exact: ${line#live: }"
	else
		not_ok "corpus $kind: live flows: ${line#live: }"
	fi

	sleep 0.5
	quiet_snapshot "$kind" "$WORK/$kind.c1"
	check_sums "$kind"
	t0=$((($(date +%s%N) - t0) / 1000000))
	grep '^corpus ' "$WORK/$kind-corpus.log" | sed "s/\$/; $((t0 / 1000)).$((t0 % 1000 / 100)) s in all/"
	stop_server "$kind"
}

# d NAME: how much NAME moved during the run.
d() { echo $(($(key "$1" "$WORK/$K.c1") - $(key "$1" "$WORK/$K.c0"))); }

check_sums() {
	local kind=$1 dev seen rx fates_now
	K=$kind
	dev=$(($(cat "$WORK/$kind.c1.dev") - $(cat "$WORK/$kind.c0.dev")))
	if [ "$kind" = xdp ]; then
		seen=$(($(d passed) + $(d redirected) + $(d redirect_failed) + $(d malformed)))
		expect_eq "corpus xdp: the steering program counted every frame the veth received once" \
			"$seen" "$dev"
		expect_eq "corpus xdp: every redirected frame reached the stack or the sockets' drop count" \
			"$(($(d rx_packets) + $(d rx_ring_dropped)))" "$(d redirected)"
	else
		expect_eq "corpus tun: every packet the TUN device handed over is in rx_packets" \
			"$(d rx_packets)" "$dev"
		expect_eq "corpus tun: the TUN device dropped nothing on its way to l3x" \
			"$(($(cat "$WORK/tun.c1.drop") - $(cat "$WORK/tun.c0.drop")))" 0
	fi
	rx=$(key rx_packets "$WORK/$kind.c1")
	fates_now=$(fates "$WORK/$kind.c1")
	expect_eq "corpus $kind: rx_packets is the sum of not_ip, no_rule, no_memory and the fates" \
		"$fates_now" "$rx"
}

stop_server() {
	local kind=$1 rc i
	kill -INT $SPID
	for i in $(seq 100); do
		kill -0 $SPID 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $SPID 2>/dev/null; then
		kill -9 $SPID
		rc=124
	else
		wait $SPID
		rc=$?
	fi
	expect_eq "corpus $kind: l3x-serve ends with status 0 on SIGINT" "$rc" 0
	local last
	last=$(tail -n 1 "$SLOG")
	echo "corpus $kind: closing line: ${last##*; mem }"
	expect_eq "corpus $kind: the closing line shows flows 0" \
		"$(sed -n 's/.* flows \([0-9]*\) .*/\1/p' <<<"$last")" 0
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$SLOG"; then
		not_ok "corpus $kind: sanitizer report: $(grep -m1 -E 'ERROR|runtime error' "$SLOG")"
	else
		ok "corpus $kind: no crash, no sanitizer report in the server's log"
	fi
}

for src in ${SOURCES//,/ }; do
	case $src in
	xdp) run_source xdp ;;
	tun)
		nss sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
		nss ip tuntap add dev "$TUN" mode tun
		# no link-local address, no router solicitation: nothing of the
		# kernel's own goes into the device but the first MLD reports
		nss sysctl -qw "net.ipv6.conf.$TUN.router_solicitations=0" \
			"net.ipv6.conf.$TUN.addr_gen_mode=1"
		run_source tun
		;;
	esac
done
[ "$FAILS" = 0 ]
