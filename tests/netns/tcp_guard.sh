#!/usr/bin/env bash
# tcp_guard.sh - TCP lifetimes with real clients: the server closes first
# (HTTP/1.0) and keeps each 4-tuple in TIME_WAIT, and the client reuses its
# source ports. The client namespace's ephemeral range is narrowed to 2,000
# ports, so that every port comes back several times within TIME_WAIT's
# 60 s.
#   1. ab -n 20000 -c 32 against the kernel (the python HTTP server of
#      stream_client.py on an AnyIP route) and against l3x-serve --mode
#      http: every request completes, none fails, within 120 s. The l3x run
#      must have reopened 4-tuples in TIME_WAIT (tcp_tw_reused) and its
#      closing line shows flows 0.
#   2. TIME_WAIT capped: l3x-serve --max-time-wait 500 under the same load
#      keeps at most 500 PCBs in TIME_WAIT, recycling the oldest
#      (tcp_tw_recycled), and every request still completes.
. "$(dirname "$0")/testbed.bash"
require_root_netns
HERE=$(cd "$(dirname "$0")" && pwd)
SERVE=$B/l3x-serve
PFX4=198.51.100.0/24
ADDR=198.51.100.9
N=${GUARD_REQUESTS:-20000}
SPID=
SLOG=
SLINE=

if ! command -v ab >/dev/null; then
	skip "tcp_guard: ab (apache2-utils) is not installed"
	exit 0
fi
if [ ! -x "$SERVE" ]; then
	skip "tcp_guard: $SERVE is not built"
	exit 0
fi
testbed 2 || { not_ok "testbed: cannot build the veth testbed"; exit 1; }
pin_fs || { not_ok "bpffs: cannot mount one at $PIN"; exit 1; }
nsc ip route add "$PFX4" via "$ADDR4_S"
nsc sysctl -qw net.ipv4.ip_local_port_range="40000 41999"
if [ -n "${GUARD_KEEP:-}" ]; then
	mkdir -p "$GUARD_KEEP"
	on_exit "cp -r $WORK/. $GUARD_KEEP/"
fi

# wait_ready PID LOG: the server printed its "ready" line.
wait_ready() {
	local i
	for i in $(seq 150); do
		grep -q 'ready' "$2" 2>/dev/null && return 0
		kill -0 "$1" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# ab_run NAME: N requests, 32 at once, HTTP/1.0 (the server closes first);
# ok when all complete and none fails within 120 s.
ab_run() {
	local name=$1 out complete failed
	out=$WORK/$name-ab.log
	nsc timeout 120 ab -n "$N" -c 32 -s 10 -r "http://$ADDR/" >"$out" 2>&1
	complete=$(sed -n 's/^Complete requests: *\([0-9]*\)/\1/p' "$out")
	failed=$(sed -n 's/^Failed requests: *\([0-9]*\)/\1/p' "$out")
	if [ "$complete" = "$N" ] && [ "$failed" = 0 ]; then
		ok "$name: ab -n $N -c 32: all complete, 0 failed ($(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$out") req/s)"
	else
		not_ok "$name: ab -n $N -c 32: complete '${complete:-?}', failed '${failed:-?}': $(tail -n 2 "$out" | tr '\n' ' ')"
	fi
}

# l3x_start NAME ARGS...: l3x-serve --mode http on the veth.
l3x_start() {
	local name=$1
	shift
	SLOG=$WORK/$name.log
	ip netns exec "$NS_S" "$SERVE" --iface "$IF_S" --rule "tcp $PFX4" --mode http \
		--workers 2 --pin-dir "$PIN/serve" --quiet "$@" 2>"$SLOG" &
	SPID=$!
	on_exit "kill -9 $SPID 2>/dev/null"
	wait_ready $SPID "$SLOG" && return 0
	not_ok "$name: server not ready: $(head -c 300 "$SLOG" | tr '\n' ' ')"
	return 1
}

l3x_stop() {
	kill -INT $SPID
	wait $SPID
	expect_eq "$1: SIGINT ends the server with status 0" $? 0
	SLINE=$(tail -n 1 "$SLOG")
	expect_eq "$1: closing line shows flows 0" "$(counter flows)" 0
}

# ---------------------------------------------------------------- 1
nss ip route add local "$PFX4" dev lo
ip netns exec "$NS_S" $PY "$HERE/stream_client.py" kernel-server --mode http \
	--ports 80 2>"$WORK/kernel.log" &
KPID=$!
on_exit "kill -9 $KPID 2>/dev/null"
if wait_ready $KPID "$WORK/kernel.log"; then
	ab_run kernel
else
	not_ok "kernel: server not ready: $(head -c 300 "$WORK/kernel.log" | tr '\n' ' ')"
fi
kill $KPID 2>/dev/null
wait $KPID 2>/dev/null
nss ip route del local "$PFX4" dev lo

if l3x_start l3x; then
	ab_run l3x
	l3x_stop l3x
	reused=$(counter tcp_tw_reused)
	check "l3x: 4-tuples in TIME_WAIT reopened by a new SYN (tcp_tw_reused ${reused:-?})" \
		test "${reused:-0}" -gt 0
fi

# ---------------------------------------------------------------- 2
if l3x_start l3x-cap --max-time-wait 500; then
	ab_run l3x-cap
	kill -USR1 $SPID
	sleep 0.5
	l3x_stop l3x-cap
	recycled=$(counter tcp_tw_recycled)
	check "l3x-cap: the oldest TIME_WAIT PCBs recycled at 500 (tcp_tw_recycled ${recycled:-?})" \
		test "${recycled:-0}" -gt 0
	tw_max=$(counter tcp_time_wait_peak)
	check "l3x-cap: at most 500 PCBs in TIME_WAIT (peak ${tw_max:-?})" \
		test -n "$tw_max" -a "${tw_max:-501}" -le 500
fi

[ "$FAILS" = 0 ]
