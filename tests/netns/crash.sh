#!/usr/bin/env bash
# crash.sh - what a SIGKILL leaves behind is cleaned up, and the kernel's
# own traffic never notices:
#   1. l3x-serve (echo) serves while ping and kernel TCP (outside the rules)
#      run; it is killed with SIGKILL in the middle of an l3x echo stream.
#      Its rules stay (nobody took them back), then a new l3x-serve on the
#      interface reaps them: only the new process's rules are left, once
#      each; the service comes back; no ping was lost and every kernel TCP
#      connection succeeded the whole time.
#   2. l3x-ctl reap takes back a dead process's rules when no process
#      follows; a rule added with l3x-ctl add (no owner) stays.
#   3. default pin directories are per interface: processes on two
#      interfaces pin in /sys/fs/bpf/l3x/IF each, and one exiting leaves
#      the other's pins and program alone; each removes its own directory,
#      and the last /sys/fs/bpf/l3x, which the first made.
. "$(dirname "$0")/testbed.bash"
require_root_netns
HERE=$(cd "$(dirname "$0")" && pwd)
UDP="$PY $HERE/udp_tool.py"
SERVE=$B/l3x-serve
CTL=$B/l3x-ctl
DIR=$PIN/crash
PORT=7000	# served by l3x
KPORT=8080	# served by the kernel, no rule

testbed 1 || { not_ok "testbed: cannot build the veth testbed"; exit 1; }
pin_fs || { not_ok "bpffs: cannot mount one at $PIN"; exit 1; }

xdp_off() {
	nss ip link set "$IF_S" xdp off 2>/dev/null
	nss ip link set "$IF_S" xdpgeneric off 2>/dev/null
}
on_exit xdp_off

# serve NAME RULE...: l3x-serve in the background (ip netns exec execs it,
# so $! is the server), waits for "ready"; sets SPID.
serve() {
	local name=$1 i args=()
	shift
	for i in "$@"; do args+=(--rule "$i"); done
	ip netns exec "$NS_S" "$SERVE" --iface "$IF_S" "${args[@]}" --mode echo \
		--pin-dir "$DIR" --quiet --verbose 2>"$WORK/$name.log" &
	SPID=$!
	on_exit "kill -9 $SPID 2>/dev/null"
	for i in $(seq 100); do
		grep -q ': ready$' "$WORK/$name.log" && return 0
		kill -0 $SPID 2>/dev/null || break
		sleep 0.1
	done
	return 1
}

echo_ok() {
	local got
	got=$(echo "l3x-$1" | nsc timeout 5 socat -t 2 - TCP:$ADDR4_S:$PORT 2>/dev/null)
	[ "$got" = "l3x-$1" ]
}

rules() { "$CTL" --pin-dir "$DIR" rules 2>&1 | sort | tr '\n' ','; }

# ---------------------------------------------------------------- 1
ip netns exec "$NS_S" socat TCP-LISTEN:$KPORT,reuseaddr,fork EXEC:cat &
on_exit "kill $! 2>/dev/null"
wait_for nss ss -ltn "sport = :$KPORT"

if ! serve a "tcp $ADDR4_S $PORT" "udp $ADDR4_S 5353"; then
	not_ok "first l3x-serve not ready: $(head -c 300 "$WORK/a.log")"
	exit 1
fi
A=$SPID
check "l3x serves echo before the crash" echo_ok before

# The kernel's traffic, across the crash and the restart.
nsc ping -q -i 0.1 -c 80 -W 1 "$ADDR4_S" >"$WORK/ping.out" 2>&1 &
PING=$!
(
	ok=0
	for i in $(seq 25); do
		got=$(echo "k$i" | nsc timeout 3 socat -t 1 - TCP:$ADDR4_S:$KPORT 2>/dev/null)
		[ "$got" = "k$i" ] && ok=$((ok + 1))
		sleep 0.25
	done
	echo $ok >"$WORK/ktcp.out"
) &
KTCP=$!
# An l3x echo stream that the kill cuts.
(yes l3x-stream | head -c 20000000 | nsc timeout 10 socat -u - TCP:$ADDR4_S:$PORT) >/dev/null 2>&1 &
STREAM=$!
sleep 1
kill -9 $A
wait $A 2>/dev/null
expect_eq "SIGKILL leaves the dead process's rules (nobody took them back)" \
	"$(rules)" "tcp $ADDR4_S $PORT,udp $ADDR4_S 5353,"
sleep 1
if ! serve b "tcp $ADDR4_S $PORT"; then
	not_ok "l3x-serve after the crash not ready: $(head -c 300 "$WORK/b.log")"
	exit 1
fi
Bp=$SPID
check "the new process says it reaped the dead one's rules" \
	grep -q "took back 2 rule references of processes that died" "$WORK/b.log"
expect_eq "no stale rule: only the new process's rule, counted once" "$(rules)" "tcp $ADDR4_S $PORT,"
check "service comes back after the crash" wait_for echo_ok after
wait $PING
check "ping: no loss across the crash and restart" grep -q " 0% packet loss" "$WORK/ping.out"
wait $KTCP
expect_eq "kernel TCP outside the rules: every connection echoed" "$(cat "$WORK/ktcp.out")" 25
kill $STREAM 2>/dev/null
wait $STREAM 2>/dev/null

# ---------------------------------------------------------------- 2
check "l3x-ctl adds a rule with no owner" "$CTL" --pin-dir "$DIR" add "udp $ADDR4_S 9999"
kill -9 $Bp
wait $Bp 2>/dev/null
out=$("$CTL" --pin-dir "$DIR" reap 2>&1)
expect_eq "l3x-ctl reap takes back the dead process's rule" "$out" \
	"took back 1 rule references of dead processes"
expect_eq "... and leaves the rule that has no owner" "$(rules)" "udp $ADDR4_S 9999,"
out=$("$CTL" --pin-dir "$DIR" reap 2>&1)
expect_eq "reaping again takes nothing" "$out" "took back 0 rule references of dead processes"
check "the kernel still answers ping with the dead process's program attached" \
	nsc ping -c 2 -i 0.2 -W 1 "$ADDR4_S"
xdp_off

# ---------------------------------------------------------------- 3
# Default pin directories live on /sys/fs/bpf, which each 'ip netns exec'
# mounts anew: both processes run inside one.
IF2=${TAG}x0
IF2P=${TAG}x1
nss ip link add "$IF2" type veth peer name "$IF2P"
nss ip link set "$IF2" up
nss ip link set "$IF2P" up
cat >"$WORK/two.sh" <<EOF
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
"$B/l3x-capture" --iface $IF_S --rule "udp $ADDR4_S 9000" --write /dev/null --seconds 20 2>$WORK/c1.log &
c1=\$!
# the first makes /sys/fs/bpf/l3x, the second finds it
for i in \$(seq 50); do
	[ -e /sys/fs/bpf/l3x/$IF_S/l3x_stats ] && break
	sleep 0.1
done
"$B/l3x-capture" --iface $IF2 --rule "udp 192.0.2.77 9000" --write /dev/null --seconds 20 2>$WORK/c2.log &
c2=\$!
for i in \$(seq 50); do
	[ -e /sys/fs/bpf/l3x/$IF2/l3x_stats ] && break
	sleep 0.1
done
ls /sys/fs/bpf/l3x | sort | tr '\n' ' '; echo
sleep 0.5
kill -INT \$c2; wait \$c2
test -e /sys/fs/bpf/l3x/$IF_S/l3x_stats && echo "first pins stay"
test -e /sys/fs/bpf/l3x/$IF2 || echo "second pins gone"
kill -0 \$c1 && echo "first runs"
ip -d link show $IF_S | grep -q prog/xdp && echo "first attached"
kill -INT \$c1; wait \$c1
test -e /sys/fs/bpf/l3x || echo "no pin directory left"
EOF
out=$(nss timeout 30 bash "$WORK/two.sh" 2>&1)
expect_eq "default pins per interface: /sys/fs/bpf/l3x/IF for each" "$(echo "$out" | head -n 1)" \
	"$(printf '%s\n' "$IF_S" "$IF2" | sort | tr '\n' ' ')"
check "the second exiting leaves the first's pins" grep -q "first pins stay" <<<"$out"
check "... removes its own, and its directory" grep -q "second pins gone" <<<"$out"
check "... and the first still runs, attached" bash -c "grep -q 'first runs' <<<'$out' && grep -q 'first attached' <<<'$out'"
check "the first, the last, removes /sys/fs/bpf/l3x, which it made" grep -q "no pin directory left" <<<"$out"
nss ip link del "$IF2" 2>/dev/null
[ "$FAILS" = 0 ]
