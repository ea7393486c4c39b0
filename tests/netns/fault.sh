#!/usr/bin/env bash
# fault.sh - echo through a faulty wire: the client and the server
# namespaces are joined through a third, where fault-middle (tests/fault)
# forwards every frame between two veth pairs and drops 1%, reorders 1%,
# duplicates 0.1%, corrupts 0.1% (one bit) and truncates 0.05% of them,
# both ways, from a seed:
#
#   client $NS_C  c0 ==== m0  middle $NS_M  m1 ==== s0  $NS_S server
#
# fault-client sends 1 GiB in all over 256 concurrent TCP flows (128 IPv4,
# 128 IPv6, 4 MiB each) plus 32 UDP flows, to 16 addresses of each prefix,
# and checks every byte as it arrives and a SHA-256 per flow; a flow that
# makes no progress for 30 s, or is not done by a deadline that grows with
# the bytes, fails. Each check runs first against the kernel (l3x-kserve,
# the prefixes routed to lo), which shows the harness is right, then
# against l3x-serve --mode echo on AF_XDP with --check-mem: the engine's
# pbufs, segments, PCBs, heap and UMEM frames must be back where they
# started once the flows are closed. One summary line per server.
#
#   FAULT_SEED=N     rerun with the seed a failure printed (default: random)
#   FAULT_SOAK=1     4 GiB over 1,000 TCP flows (and 64 UDP); on demand only
#   FAULT_ONLY=kernel|l3x   one server only
#   FAULT_QUEUE=BYTES  fault-middle's socket queue (default 64 MiB); a small
#                    one adds tail-drop bursts on top of the faults
#   FAULT_KEEP=DIR   keep the logs
. "$(dirname "$0")/testbed.bash"
require_root_netns
FM=$B/tests/fault-middle
FC=$B/tests/fault-client
SERVE=$B/l3x-serve
KSERVE=$B/l3x-kserve
NS_M=${TAG}m
IF_M0=${TAG}m0
IF_M1=${TAG}m1
PFX4=198.51.100.0/24
PFX6=2001:db8:100::/64
DST4=198.51.100.16
DST6=2001:db8:100::16
PORT=7
SEED=${FAULT_SEED:-$((RANDOM * 32768 + RANDOM))}
FAULTS=(--drop 10000 --reorder 10000 --dup 1000 --corrupt 1000 --truncate 500)
[ -n "${FAULT_QUEUE:-}" ] && FAULTS+=(--queue "$FAULT_QUEUE")
if [ "${FAULT_SOAK:-0}" = 1 ]; then
	TCP=500 UDP=32 BYTES=4400000 DGRAMS=400 WHAT=soak
else
	TCP=128 UDP=16 BYTES=4194304 DGRAMS=200 WHAT=test
fi
TOTAL=$((2 * TCP * BYTES))
# Generous: 10 MB/s is far below what either server does on this wire.
DEADLINE=$((30 + TOTAL / 10000000))

for p in "$FM" "$FC" "$SERVE" "$KSERVE"; do
	[ -x "$p" ] || { not_ok "fault: $p is not built (make tests-build)"; exit 1; }
done
nsm() { ip netns exec "$NS_M" "$@"; }
on_exit "ip netns del $NS_M"
if [ -n "${FAULT_KEEP:-}" ]; then
	mkdir -p "$FAULT_KEEP"
	on_exit "cp -r $WORK/. $FAULT_KEEP/"
fi

# The three namespaces; every sender wire-like (no offloads), the middle
# without IPv6 or addresses of its own, its kernel dropping what it gets
# once our sockets have a copy.
topology() {
	local q=2 i
	ip netns add "$NS_C" && ip netns add "$NS_M" && ip netns add "$NS_S" || return 1
	nsm sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip link add "$IF_C" numtxqueues $q numrxqueues $q netns "$NS_C" type veth \
		peer name "$IF_M0" numtxqueues $q numrxqueues $q netns "$NS_M" || return 1
	ip link add "$IF_M1" numtxqueues $q numrxqueues $q netns "$NS_M" type veth \
		peer name "$IF_S" numtxqueues $q numrxqueues $q netns "$NS_S" || return 1
	ends_config
	for i in "$IF_M0" "$IF_M1"; do
		nsm ethtool -K "$i" tx off tso off gso off gro off >/dev/null 2>&1
		nsm ip link set "$i" up
		nsm tc qdisc add dev "$i" clsact 2>/dev/null &&
			nsm tc filter add dev "$i" ingress matchall action drop 2>/dev/null
	done
	for i in "$NS_C:$IF_C" "$NS_S:$IF_S"; do
		ip netns exec "${i%%:*}" ip link set lo up
		ip netns exec "${i%%:*}" ip link set "${i#*:}" up
	done
	nsc ip route add "$PFX4" via "$ADDR4_S"
	nsc ip -6 route add "$PFX6" via "$ADDR6_S"
}

MPID=
# middle_start NAME: fault-middle with the faults and the seed; then the
# neighbours are resolved through it (a lost ARP or ND is retried).
middle_start() {
	local log=$WORK/middle-$1 _
	(exec ip netns exec "$NS_M" "$FM" --a "$IF_M0" --b "$IF_M1" --seed "$SEED" \
		"${FAULTS[@]}" >"$log.out" 2>"$log.err") &
	MPID=$!
	on_exit "kill -9 $MPID 2>/dev/null"
	wait_for grep -q ': ready' "$log.err" || return 1
	for _ in $(seq 20); do
		nsc ping -c1 -W1 "$ADDR4_S" >/dev/null 2>&1 &&
			nsc ping -6 -c1 -W1 "$ADDR6_S" >/dev/null 2>&1 && return 0
	done
	return 1
}

# middle_stop NAME: its summary line into MLINE.
middle_stop() {
	kill -INT "$MPID" 2>/dev/null
	wait "$MPID" 2>/dev/null
	MLINE=$(tail -n 1 "$WORK/middle-$1.out")
}

# key LINE KEY: the number after the last " KEY " in LINE.
key() { sed -n "s/.* $2 \([0-9.]*\).*/\1/p" <<<"$1"; }
# total KEY: a figure of the middle's totals.
total() { key " ${MLINE##*; total }" "$1"; }
# snmp NS NAME: a kernel TCP counter (nstat's names) of a namespace.
snmp() { ip netns exec "$1" nstat -asz "$2" 2>/dev/null | awk -v k="$2" '$1 == k { print $2 }'; }

SPID=
# server_start KIND: the echo server in the server namespace, until ready.
server_start() {
	local kind=$1 log=$WORK/$1.log
	case $kind in
	kernel)
		nss ip route add local "$PFX4" dev lo
		nss ip -6 route add local "$PFX6" dev lo
		(exec ip netns exec "$NS_S" "$KSERVE" --mode echo --port $PORT --workers 2 \
			2>"$log") &
		;;
	l3x)
		(exec ip netns exec "$NS_S" "$SERVE" --iface "$IF_S" --rule "tcp $PFX4" \
			--rule "tcp $PFX6" --rule "udp $PFX4" --rule "udp $PFX6" \
			--mode echo --workers 2 --pin-dir "$PIN/serve" --check-mem --quiet \
			2>"$log") &
		;;
	esac
	SPID=$!
	server_started "$kind: the server is" "$log" "$SPID"
}

# server_stop KIND: SIGINT, at most 40 s (--check-mem may wait for the
# last FIN exchanges); its exit status in SRC.
server_stop() {
	local i
	kill -INT "$SPID"
	for i in $(seq 400); do
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$SPID" 2>/dev/null
	wait "$SPID"
	SRC=$?
	if [ "$1" = kernel ]; then
		nss ip route del local "$PFX4" dev lo
		nss ip -6 route del local "$PFX6" dev lo
	fi
}

# selfcheck: the harness can fail. Through the same wire, a kernel server
# that flips one byte in 1,000,003 is caught (wrong bytes, SHA-256), and
# one that discards instead of echoing leaves every flow stuck.
selfcheck() {
	local out rc pids=() p
	for p in "9013 --mode echo --corrupt-every 1000003" "9009 --mode discard"; do
		# shellcheck disable=SC2086
		(exec ip netns exec "$NS_S" "$KSERVE" --port $p 2>/dev/null) &
		pids+=($!)
		on_exit "kill -9 $! 2>/dev/null"
	done
	sleep 0.5
	rc=0
	out=$(nsc "$FC" --dst "$DST4" --dst "$DST6" --port 9013 --tcp4 2 --tcp6 2 \
		--bytes 4194304 --seed "$SEED" 2>/dev/null) || rc=$?
	if [ "$rc" = 1 ] && [ "$(key "$out" wrong_bytes)" -gt 0 ] &&
		[ "$(key "$out" sha_mismatch)" = 4 ]; then
		ok "harness: a server that corrupts the echo is caught (wrong bytes, SHA-256)"
	else
		not_ok "harness: a corrupting server went unseen (exit $rc: $out)"
	fi
	rc=0
	out=$(nsc "$FC" --dst "$DST4" --port 9009 --tcp4 2 --bytes 4194304 --stall 2 \
		--deadline 10 --seed "$SEED" 2>/dev/null) || rc=$?
	if [ "$rc" = 1 ] && [ "$(key "$out" stuck)" = 2 ]; then
		ok "harness: flows that get no echo are found stuck"
	else
		not_ok "harness: flows with no echo were not found stuck (exit $rc: $out)"
	fi
	kill "${pids[@]}" 2>/dev/null
	wait "${pids[@]}" 2>/dev/null
}

# phase KIND: the whole check against one server.
phase() {
	local kind=$1 rc=0 t0 t1 out line rt0 rt1 cs0 cs1 srt0=0 srt1=0 sline extra
	middle_start "$kind" || { not_ok "$kind: the neighbours do not resolve through the middle"; return; }
	server_start "$kind" || { middle_stop "$kind"; return; }
	rt0=$(snmp "$NS_C" TcpRetransSegs) cs0=$(snmp "$NS_C" TcpInCsumErrors)
	[ "$kind" = kernel ] && srt0=$(snmp "$NS_S" TcpRetransSegs)
	t0=$(date +%s.%N)
	out=$(nsc "$FC" --dst "$DST4" --dst "$DST6" --port $PORT --addrs 16 \
		--tcp4 "$TCP" --tcp6 "$TCP" --bytes "$BYTES" --udp4 "$UDP" --udp6 "$UDP" \
		--dgrams "$DGRAMS" --udp-timeout 0.25 --seed "$SEED" --stall 30 --deadline "$DEADLINE" \
		2>"$WORK/client-$kind.err") || rc=$?
	t1=$(date +%s.%N)
	rt1=$(snmp "$NS_C" TcpRetransSegs) cs1=$(snmp "$NS_C" TcpInCsumErrors)
	[ "$kind" = kernel ] && srt1=$(snmp "$NS_S" TcpRetransSegs)
	line=$(tail -n 1 <<<"$out")
	echo "$line" >"$WORK/client-$kind.out"
	[ "$kind" = kernel ] && selfcheck
	server_stop "$kind"
	middle_stop "$kind"

	local why
	why="seed $SEED: $(head -n 3 "$WORK/client-$kind.err" | tr '\n' ' ')"
	if [ "$rc" = 0 ] && [ "$(key "$line" tcp4_ok)" = "$TCP" ] &&
		[ "$(key "$line" tcp6_ok)" = "$TCP" ] && [ "$(key "$line" udp4_ok)" = "$UDP" ] &&
		[ "$(key "$line" udp6_ok)" = "$UDP" ]; then
		ok "$kind: $((2 * TCP)) TCP flows (IPv4, IPv6) and $((2 * UDP)) UDP flows echoed bit-exact, SHA-256 equal"
	else
		not_ok "$kind: not every flow came back whole (exit $rc; $line): $why"
	fi
	expect_eq "$kind: no flow stuck" "$(key "$line" stuck)" 0
	if [ "$(key "$line" tcp_bytes)" -ge $((1 << 30)) ] 2>/dev/null; then
		ok "$kind: at least 1 GiB echoed"
	else
		not_ok "$kind: $(key "$line" tcp_bytes) bytes echoed, below 1 GiB (seed $SEED)"
	fi
	local f missing=
	for f in dropped reordered duplicated corrupted truncated; do
		[ "$(total "$f")" -gt 0 ] 2>/dev/null || missing="$missing $f"
	done
	if [ -z "$missing" ]; then
		ok "$kind: the wire dropped, reordered, duplicated, corrupted and truncated frames"
	else
		not_ok "$kind: the middle did not inject:$missing ($MLINE)"
	fi
	sline=$(tail -n 1 "$WORK/$kind.log")
	case $kind in
	kernel)
		expect_eq "kernel: l3x-kserve ends with status 0" "$SRC" 0
		extra="server retransmits $((srt1 - srt0))"
		;;
	l3x)
		expect_eq "l3x: l3x-serve ends with status 0" "$SRC" 0
		local mem
		mem=$(grep ': check-mem ' "$WORK/$kind.log")
		check "l3x: pbufs, segments, PCBs, heap and UMEM frames back at their start" \
			grep -q ': check-mem ok:' <<<"$mem"
		[ -n "$mem" ] && grep -q FAILED <<<"$mem" && echo "# $mem"
		check "l3x: no XDP program left on the link" \
			bash -c "! ip netns exec $NS_S ip -d link show $IF_S | grep -q xdp"
		extra="server rx_bad $(key "$sline" bad) tx_dropped $(key "$sline" tx_dropped)"
		extra="$extra no_memory $(key "$sline" no_memory) aborted $(key "$sline" aborted)"
		;;
	esac
	printf 'fault %s %s: %s bytes echoed, tcp v4 %s/%s v6 %s/%s, udp %s/%s flows (%s datagrams, %s resent), %.1f s; wire %s frames: dropped %s reordered %s duplicated %s corrupted %s truncated %s overflow %s; client retransmits %s csum_errors %s, %s; seed %s\n' \
		"$WHAT" "$kind" "$(key "$line" tcp_bytes)" "$(key "$line" tcp4_ok)" "$TCP" \
		"$(key "$line" tcp6_ok)" "$TCP" "$(($(key "$line" udp4_ok) + $(key "$line" udp6_ok)))" \
		"$((2 * UDP))" "$(key "$line" udp_dgrams)" "$(key "$line" udp_retries)" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$(total frames)" "$(total dropped)" "$(total reordered)" \
		"$(total duplicated)" "$(total corrupted)" "$(total truncated)" "$(total overflow)" \
		"$((rt1 - rt0))" "$((cs1 - cs0))" "$extra" "$SEED"
}

topology || { not_ok "fault: cannot build the three-namespace testbed"; exit 1; }
pin_fs || { not_ok "fault: cannot mount a bpffs at $PIN"; exit 1; }
echo "# fault: seed $SEED (rerun with FAULT_SEED=$SEED)"
case ${FAULT_ONLY:-both} in
kernel) phase kernel ;;
l3x) phase l3x ;;
*) phase kernel; phase l3x ;;
esac
exit 0
