#!/usr/bin/env bash
# serve.sh - l3x-serve terminating TCP and UDP for whole prefixes (any
# address, any port) on a veth testbed, the kernel's TCP/UDP as the client.
# The client namespace routes 198.51.100.0/24 and 2001:db8:100::/64 to the
# l3x namespace.
#
# Every client check runs twice: first against the kernel itself answering
# the prefixes ("ip route add local PREFIX dev lo" and a python server that
# does what l3x-serve does), which shows the check is right; then against
# l3x-serve on AF_XDP with rules "tcp PREFIX" and "udp PREFIX", which shows
# l3x behaves like the kernel:
#   1. http: curl to 20 IPv4 and 20 IPv6 addresses on several ports gets
#      200 and a body naming the client and the original destination;
#   2. echo: 32 connections x 4 MiB per family at once, each bit-exact
#      (checked as it arrives and by SHA-256) and ended by EOF; UDP echo to
#      16 addresses x 2 ports per family, every datagram (0 to 1472 bytes)
#      back once and unchanged from the address and port it was sent to;
#      dig against the DNS sockets (--dns) on one address per family gets
#      NXDOMAIN with its question; meanwhile ping and a kernel TCP and UDP
#      echo on the namespace's own addresses (outside the rules) work;
#   3. half-close: full echo, then EOF; a client RST is counted by the
#      server; a server reset reaches the client as ECONNRESET;
#   4. SIGINT: exit 0, closing line with flows 0; (l3x) no XDP left, no pins.
# l3x once more with --ack-coalesce 1 (off): echo still exact, no ACK waits.
# Then l3x-serve on a TUN device (--tun) in the l3x namespace, which routes
# the prefixes into it and forwards the client's traffic there: the TCP and
# UDP echo checks of 2 and half-close of 3, SIGINT, and the device gone;
# its workers spin before they sleep (--worker-spins), its engine does not
# yield (--idle-yield): the same answers, and SIGINT still ends them.
# Last, bad arguments: one line naming the problem, exit 1, nothing left.
# SERVE_KEEP=DIR keeps the logs, and a client-side tcpdump of the l3x runs.
. "$(dirname "$0")/testbed.bash"
require_root_netns
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENT="$PY $HERE/stream_client.py"
SERVE=$B/l3x-serve
PFX4=198.51.100.0/24
PFX6=2001:db8:100::/64
PORTS=(80 443 7 8080 31337)	# the kernel server listens on these
ECHO_PORTS=(7 8080)
DNS4=198.51.100.53
DNS6=2001:db8:100::53
KPORT=9999			# a kernel TCP and UDP echo on the host's own address
TUN=${TAG}t
SPID=
SLOG=
NSTART=0

testbed_pinned
route_via_l3x "$PFX4" "$PFX6"
if [ -n "${SERVE_KEEP:-}" ]; then
	mkdir -p "$SERVE_KEEP"
	on_exit "cp -r $WORK/. $SERVE_KEEP/"
fi
# Whatever happens, no TUN device is left behind.
on_exit "ip netns exec $NS_S ip link del $TUN"

# Addresses spread over each prefix, in the form inet_ntop writes them.
mapfile -t HTTP4 < <($PY -c 'for i in range(20): print(f"198.51.100.{1 + i * 13}")')
mapfile -t HTTP6 < <($PY -c '
import ipaddress
for i in range(20):
    print(ipaddress.IPv6Address(0x20010db8010000000000000000000000 + 1 + i * 0x0001000300050007))')
mapfile -t ECHO4 < <($PY -c 'for i in range(16): print(f"198.51.100.{100 + i}")')
mapfile -t ECHO6 < <($PY -c 'for i in range(16): print(f"2001:db8:100::e:{i:x}")')

# url_host ADDR: brackets around IPv6.
url_host() { case $1 in *:*) echo "[$1]" ;; *) echo "$1" ;; esac; }

# targets ADDR...: ADDR:PORT with the echo ports in turn.
targets() {
	local i=0 a
	for a in "$@"; do
		echo "$(url_host "$a"):${ECHO_PORTS[i % ${#ECHO_PORTS[@]}]}"
		i=$((i + 1))
	done
}

# udp_targets ADDR...: every address on every echo port.
udp_targets() {
	local a p
	for a in "$@"; do
		for p in "${ECHO_PORTS[@]}"; do echo "$(url_host "$a"):$p"; done
	done
}

# server_start KIND MODE [ARGS...]: the kernel reference server, l3x-serve
# on the veth (l3x) or on a TUN device (tun), started in the l3x namespace;
# waits for its "ready" line. Each is started as a simple command, so that
# SPID is the server itself and SIGINT reaches it.
server_start() {
	local kind=$1 mode=$2 i
	shift 2
	NSTART=$((NSTART + 1))
	SLOG=$WORK/$kind-$NSTART-$mode.log
	case $kind in
	kernel)
		ip netns exec "$NS_S" $CLIENT kernel-server --mode "$mode" \
			--ports "$(IFS=,; echo "${PORTS[*]}")" "$@" 2>"$SLOG" &
		;;
	l3x)
		ip netns exec "$NS_S" "$SERVE" --iface "$IF_S" --rule "tcp $PFX4" --rule "tcp $PFX6" \
			--rule "udp $PFX4" --rule "udp $PFX6" --mode "$mode" --workers 2 \
			--pin-dir "$PIN/serve" --quiet "$@" 2>"$SLOG" &
		;;
	tun)
		ip netns exec "$NS_S" "$SERVE" --tun "$TUN" --rule "tcp $PFX4" --rule "tcp $PFX6" \
			--rule "udp $PFX4" --rule "udp $PFX6" --mode "$mode" --workers 2 \
			--quiet "$@" 2>"$SLOG" &
		;;
	esac
	SPID=$!
	server_started "$kind $mode: server" "$SLOG" "$SPID" && return 0
	kill -9 $SPID 2>/dev/null
	wait $SPID 2>/dev/null
	return 1
}

# wait_exit PID SECONDS: wait for PID to end; its status, or 124 (killed)
# when it outlives SECONDS.
wait_exit() {
	local pid=$1 i
	for i in $(seq $(($2 * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid"
}

# server_stop KIND MODE: SIGINT, then the checks every server must pass at
# its end; SLINE is its closing line.
server_stop() {
	local kind=$1 mode=$2 rc
	kill -INT $SPID
	wait_exit $SPID 10
	rc=$?
	SLINE=$(tail -n 1 "$SLOG")
	expect_eq "$kind $mode: SIGINT ends the server with status 0" $rc 0
	expect_eq "$kind $mode: closing line shows flows 0" "$(counter flows)" 0
	case $kind in
	l3x)
		check "$kind $mode: no XDP program left on the link" \
			bash -c "! ip netns exec $NS_S ip -d link show $IF_S | grep -q xdp"
		check "$kind $mode: pinned maps removed" bash -c "! ls $PIN/serve/l3x_stats"
		;;
	tun)
		check "$kind $mode: the TUN device is gone" \
			bash -c "! ip netns exec $NS_S ip link show $TUN"
		;;
	esac
}

# ---------------------------------------------------------------- 1
# http_family KIND FAM ADDR...: one curl per address, port by turn; the body
# must name curl's own address and port and the address and port it asked.
http_family() {
	local kind=$1 fam=$2 i=0 good=0 first="" a port out meta body want code lip lport
	shift 2
	for a in "$@"; do
		port=${PORTS[i % ${#PORTS[@]}]}
		i=$((i + 1))
		out=$(nsc curl -sS -g --max-time 5 -w '\n%{http_code} %{local_ip} %{local_port}' \
			"http://$(url_host "$a"):$port/" 2>&1)
		meta=${out##*$'\n'}
		body=${out%$'\n'*}
		body=${body%$'\n'}	# as $(...) strips it from want
		read -r code lip lport <<<"$meta"
		want=$(printf 'client %s:%s\ndestination %s:%s\n' "$(url_host "$lip")" "$lport" \
			"$(url_host "$a")" "$port")
		if [ "$code" = 200 ] && [ "$body" = "$want" ]; then
			good=$((good + 1))
		elif [ -z "$first" ]; then
			first="$a port $port: $(echo "$out" | tr '\n' '|' | head -c 200)"
		fi
	done
	if [ $good = $# ]; then
		ok "$kind http: $fam: $# of $# addresses answered 200 naming the client and the original destination"
	else
		not_ok "$kind http: $fam: $good of $# right; first wrong: $first"
	fi
}

http_checks() {
	local kind=$1
	server_start "$kind" http || return
	http_family "$kind" IPv4 "${HTTP4[@]}"
	http_family "$kind" IPv6 "${HTTP6[@]}"
	server_stop "$kind" http
	expect_eq "$kind http: every request was accepted and closed in order" \
		"$(counter accepted):$(counter closed)" "40:40"
}

# ---------------------------------------------------------------- 2, 3
# A kernel TCP and UDP echo on the namespace's own addresses, outside the
# rules (the reference server on its own port, for both runs).
kernel_echo_start() {
	ip netns exec "$NS_S" $CLIENT kernel-server --mode echo --ports $KPORT \
		2>"$WORK/outside.log" &
	on_exit "kill $! 2>/dev/null"
	wait_for grep -q ': ready$' "$WORK/outside.log"
}

kernel_traffic() {
	local kind=$1 got
	got=$(echo "kernel-$kind" | nsc socat -t 2 - TCP:$ADDR4_S:$KPORT)
	expect_eq "$kind echo: a kernel TCP echo on $ADDR4_S:$KPORT works meanwhile" "$got" "kernel-$kind"
	got=$(echo "kernel6-$kind" | nsc socat -t 2 - "TCP:[$ADDR6_S]:$KPORT")
	expect_eq "$kind echo: a kernel TCP echo on [$ADDR6_S]:$KPORT works meanwhile" "$got" "kernel6-$kind"
	check "$kind echo: a kernel UDP echo on $ADDR4_S and $ADDR6_S port $KPORT works meanwhile" \
		nsc $CLIENT udp-echo --count 10 "$ADDR4_S:$KPORT" "[$ADDR6_S]:$KPORT"
}

# dig_check KIND FAM SERVER NAME TYPE: NXDOMAIN, the question copied, and
# (dig ignores replies from elsewhere) from SERVER.
dig_check() {
	local kind=$1 fam=$2 out
	out=$(nsc dig +tries=1 +time=3 "@$3" "$4" "$5" 2>&1)
	if grep -q 'status: NXDOMAIN' <<<"$out" &&
		grep -qE "^;$4\.[[:space:]]+IN[[:space:]]+$5\$" <<<"$out" &&
		grep -q "SERVER: $3#53" <<<"$out"; then
		ok "$kind dns: $fam: dig @$3 $4 $5 gets NXDOMAIN with its question"
	else
		not_ok "$kind dns: $fam: dig @$3 $4 $5: $(grep -E 'status|timed out|WARN' <<<"$out" | head -n 2 | tr '\n' ' ')"
	fi
}

# empty_datagram KIND: an empty datagram is echoed as the kernel echoes it.
empty_datagram() {
	local kind=$1 what="an empty datagram to each family is echoed"
	if nsc $CLIENT udp-echo --count 1 --size-min 0 --size-max 0 --timeout 3 \
		198.51.100.120:7 '[2001:db8:100::e:20]:7' >"$WORK/empty.out" 2>&1; then
		ok "$kind udp: $what"
	else
		not_ok "$kind udp: $what: $(tail -n 2 "$WORK/empty.out" | tr '\n' ' ')"
	fi
}

# echo_streams KIND: the TCP and UDP echo checks shared by every source.
echo_streams() {
	local kind=$1
	check "$kind echo: IPv4: 32 streams x 4 MiB at once, bit-exact, each ended by EOF" \
		nsc $CLIENT echo --conns 32 --bytes 4M --timeout 60 $(targets "${ECHO4[@]}")
	check "$kind echo: IPv6: 32 streams x 4 MiB at once, bit-exact, each ended by EOF" \
		nsc $CLIENT echo --conns 32 --bytes 4M --timeout 60 --seed 2 $(targets "${ECHO6[@]}")
	check "$kind udp: IPv4: 32 flows x 20 datagrams echoed from the address sent to" \
		nsc $CLIENT udp-echo --count 20 $(udp_targets "${ECHO4[@]}")
	check "$kind udp: IPv6: 32 flows x 20 datagrams echoed from the address sent to" \
		nsc $CLIENT udp-echo --count 20 --seed 2 $(udp_targets "${ECHO6[@]}")
	empty_datagram "$kind"
	check "$kind echo: IPv4 half-close: full echo, then EOF" \
		nsc $CLIENT halfclose 198.51.100.200:7
	check "$kind echo: IPv6 half-close: full echo, then EOF" \
		nsc $CLIENT halfclose '[2001:db8:100::200]:8080'
}

# The flows and datagrams every run of echo_streams sends: 2 x 32 flows x
# 20, and two flows of one empty datagram.
UDP_FLOWS=66
UDP_DGRAMS=$((2 * 32 * 20 + 2))

echo_checks() {
	local kind=$1 p4 p6 dns=(--dns "$DNS4,$DNS6")
	[ "$kind" = l3x ] && dns=(--dns "$DNS4" --dns "[$DNS6]:53")
	server_start "$kind" echo "${dns[@]}" || return
	nsc ping -c 20 -i 0.2 -W 2 "$ADDR4_S" >"$WORK/ping4.$kind" 2>&1 &
	p4=$!
	nsc ping -6 -c 20 -i 0.2 -W 2 "$ADDR6_S" >"$WORK/ping6.$kind" 2>&1 &
	p6=$!
	echo_streams "$kind"
	dig_check "$kind" IPv4 "$DNS4" example.com A
	dig_check "$kind" IPv6 "$DNS6" no.such.name.test AAAA
	kernel_traffic "$kind"
	wait $p4 $p6
	check "$kind echo: ping $ADDR4_S loses nothing meanwhile" grep -q ' 0% packet loss' "$WORK/ping4.$kind"
	check "$kind echo: ping $ADDR6_S loses nothing meanwhile" grep -q ' 0% packet loss' "$WORK/ping6.$kind"
	check "$kind echo: IPv4 client closes with RST" nsc $CLIENT reset-by-client 198.51.100.201:7
	check "$kind echo: IPv6 client closes with RST" nsc $CLIENT reset-by-client '[2001:db8:100::201]:7'
	sleep 0.5	# the RSTs reach the server
	server_stop "$kind" echo
	expect_eq "$kind echo: accepted every stream (64 echo, 2 half-close, 2 reset)" "$(counter accepted)" 68
	expect_eq "$kind echo: closed in order every stream the client ended with FIN" "$(counter closed)" 66
	expect_eq "$kind echo: counted both client resets" "$(counter reset_by_client)" 2
	expect_eq "$kind echo: reset nothing itself" "$(counter aborted)" 0
	expect_eq "$kind udp: one flow per client socket and address, every datagram in and out" \
		"$(counter flows_served) $(counter datagrams_in) $(counter datagrams_out)" \
		"$UDP_FLOWS $UDP_DGRAMS $UDP_DGRAMS"
	expect_eq "$kind dns: both queries answered" "$(counter queries):$(counter answered)" "2:2"
	[ "$kind" = l3x ] || return 0
	# A kick sends what a flush queued, many frames under 64 busy streams.
	check "$kind echo: TX kicks counted, fewer than frames sent ($(counter tx_kicks) for $(counter tx_packets))" \
		test "$(counter tx_kicks)" -gt 0 -a "$(counter tx_kicks)" -lt "$(counter tx_packets)"
	check "$kind echo: ACKs coalesced by default ($(counter tcp_ack_deferred) segments waited)" \
		test "$(counter tcp_ack_deferred)" -gt 0
}

# With --ack-coalesce 1 (off) every ACK leaves at once, and echo stays exact.
ack_off_checks() {
	local kind=$1
	server_start "$kind" echo --ack-coalesce 1 || return
	check "$kind ack-coalesce 1: IPv4: 8 streams x 4 MiB at once, bit-exact, each ended by EOF" \
		nsc $CLIENT echo --conns 8 --bytes 4M --timeout 60 --seed 3 $(targets "${ECHO4[@]:0:8}")
	check "$kind ack-coalesce 1: IPv6: 8 streams x 4 MiB at once, bit-exact, each ended by EOF" \
		nsc $CLIENT echo --conns 8 --bytes 4M --timeout 60 --seed 4 $(targets "${ECHO6[@]:0:8}")
	server_stop "$kind" ack-coalesce
	expect_eq "$kind ack-coalesce 1: accepted all 16, no ACK waited" \
		"$(counter accepted) $(counter tcp_ack_deferred)" "16 0"
}

abort_checks() {
	local kind=$1
	server_start "$kind" echo --abort-after 65536 || return
	check "$kind abort: IPv4: a server reset reaches the client as ECONNRESET" \
		nsc $CLIENT reset-by-server 198.51.100.202:80
	check "$kind abort: IPv6: a server reset reaches the client as ECONNRESET" \
		nsc $CLIENT reset-by-server '[2001:db8:100::202]:443'
	server_stop "$kind" abort
	expect_eq "$kind abort: the server counted both resets it sent" "$(counter aborted)" 2
}

suite() {
	http_checks "$1"
	echo_checks "$1"
	abort_checks "$1"
}

# ---------------------------------------------------------------- TUN
# The l3x namespace routes the prefixes into the TUN device and forwards
# the client's packets there; the replies come out of the device and are
# forwarded back over the veth.
tun_checks() {
	nss sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	server_start tun echo --worker-spins 200 --idle-yield || return
	if ! nss ip route add "$PFX4" dev "$TUN" || ! nss ip -6 route add "$PFX6" dev "$TUN"; then
		not_ok "tun: cannot route the prefixes into $TUN"
		return
	fi
	echo_streams tun
	server_stop tun echo
	expect_eq "tun echo: accepted every stream (64 echo, 2 half-close)" "$(counter accepted)" 66
	expect_eq "tun echo: closed every stream in order" "$(counter closed)" 66
	expect_eq "tun udp: one flow per client socket and address, every datagram in and out" \
		"$(counter flows_served) $(counter datagrams_in) $(counter datagrams_out)" \
		"$UDP_FLOWS $UDP_DGRAMS $UDP_DGRAMS"
}

# ---------------------------------------------------------------- 5
# bad ARGS... WANT: one line containing WANT, exit 1.
bad() {
	local want=${*: -1} out rc
	out=$(nss "$SERVE" "${@:1:$#-1}" 2>&1)
	rc=$?
	if [ $rc = 1 ] && [ "$(echo "$out" | wc -l)" = 1 ] && grep -qF -- "$want" <<<"$out"; then
		ok "bad arguments: '$want': one line, exit 1"
	else
		not_ok "bad arguments: want one line with '$want' and exit 1, got $rc: $(head -c 200 <<<"$out")"
	fi
}

bad_args() {
	local r4="tcp $PFX4" pd="$PIN/bad"
	bad --iface "$IF_S" --rule "$r4" --mode gopher --pin-dir "$pd" "--mode 'gopher'"
	bad --iface "$IF_S" --rule "tcp 198.51.100.0/33" --mode echo --pin-dir "$pd" "prefix '/33'"
	bad --iface "$IF_S" --rule "icmp $PFX4" --mode echo --pin-dir "$pd" "--rule 'icmp"
	bad --iface "$IF_S" --mode echo --pin-dir "$pd" "--rule: missing"
	bad --iface "$IF_S" --rule "$r4" --pin-dir "$pd" "--mode: missing"
	bad --iface "$IF_S" --tun "$TUN" --rule "$r4" --mode echo --pin-dir "$pd" "not both"
	bad --tun "$TUN" --queue 1 --rule "$r4" --mode echo "--queue"
	bad --iface nosuch0 --rule "$r4" --mode echo --pin-dir "$pd" "nosuch0"
	bad --iface "$IF_S" --rule "$r4" --mode http --abort-after 10 --pin-dir "$pd" "--abort-after"
	bad --iface "$IF_S" --rule "$r4" --mode echo --workers 0 --pin-dir "$pd" "--workers '0'"
	bad --iface "$IF_S" --rule "$r4" --mode echo --mtu 100 --pin-dir "$pd" "--mtu '100'"
	bad --iface "$IF_S" --rule "$r4" --mode echo --ack-coalesce 0 --pin-dir "$pd" "--ack-coalesce '0'"
	bad --iface "$IF_S" --rule "$r4" --mode echo --ack-coalesce 65 --pin-dir "$pd" "--ack-coalesce '65'"
	bad --iface "$IF_S" --rule "$r4" --mode echo --worker-spins 1000001 --pin-dir "$pd" \
		"--worker-spins '1000001'"
	bad --iface "$IF_S" --rule "$r4" --mode echo --dns example.com --pin-dir "$pd" "--dns 'example.com'"
	bad --iface "$IF_S" --rule "$r4" --mode echo --dns "$DNS4" --dns "$DNS4:53" --pin-dir "$pd" \
		"--dns '$DNS4:53'"
	check "bad arguments: no XDP program left on the link" \
		bash -c "! ip netns exec $NS_S ip -d link show $IF_S | grep -q xdp"
	check "bad arguments: nothing pinned" bash -c "! ls $pd/l3x_stats"
	check "bad arguments: no TUN device left" bash -c "! ip netns exec $NS_S ip link show $TUN"
}

# ---------------------------------------------------------------- run
kernel_echo_start

nss ip route add local "$PFX4" dev lo
nss ip -6 route add local "$PFX6" dev lo
suite kernel
nss ip route del local "$PFX4" dev lo
nss ip -6 route del local "$PFX6" dev lo

if [ ! -x "$SERVE" ]; then
	skip "l3x: $SERVE is not built"
else
	if [ -n "${SERVE_KEEP:-}" ]; then
		nsc tcpdump -i "$IF_C" -s 128 -w "$WORK/l3x-client.pcap" tcp or udp >/dev/null 2>&1 &
		on_exit "kill $! 2>/dev/null"
	fi
	suite l3x
	ack_off_checks l3x
	tun_checks
	bad_args
fi
[ "$FAILS" = 0 ]
