#!/usr/bin/env bash
# load_kernel.sh - the benchmark's client and baseline against each other,
# with no l3x in the way: l3x-load drives l3x-kserve, which answers for
# whole prefixes through local routes, over the veth testbed.
#   1. every mode (bulk, bulk --discard, rr, crr, udp-rr, hold), IPv4 and
#      IPv6, completes with no error and no wrong byte;
#   2. a server that flips bytes (--corrupt-every) is caught, TCP and UDP,
#      with exit status 1;
#   3. hold --check-all: every held flow echoes, past one process's open
#      files too (l3x-load and l3x-kserve over several processes); a server
#      killed while flows are held fails the check;
#   4. http names the original destination; bad arguments exit 2 with one
#      line.
. "$(dirname "$0")/testbed.bash"
require_root_netns
LOAD=$B/l3x-load
KSERVE=$B/l3x-kserve
PFX4=198.51.100.0/24
PFX6=2001:db8:100::/64
KPIDS=()

testbed 2 || { not_ok "testbed: cannot build the veth testbed"; exit 1; }
nsc ip route add "$PFX4" via "$ADDR4_S"
nsc ip -6 route add "$PFX6" via "$ADDR6_S"
nss ip route add local "$PFX4" dev lo
nss ip -6 route add local "$PFX6" dev lo

# kserve PORT ARGS...: l3x-kserve in the server namespace, until ready.
kserve() {
	local port=$1 log=$WORK/kserve-$1.log _
	shift
	# exec: $! is the server itself, so that kill reaches it.
	(exec ip netns exec "$NS_S" "$KSERVE" --port "$port" "$@" 2>"$log") &
	KPIDS+=($!)
	on_exit "kill $! 2>/dev/null"
	for _ in $(seq 50); do
		grep -q ': ready' "$log" && return 0
		sleep 0.1
	done
	not_ok "l3x-kserve $*: not ready: $(head -c 200 "$log")"
	return 1
}

# load NAME WANT_RC ARGS...: l3x-load in the client namespace with --json;
# ok when it exits WANT_RC. Its JSON is left in $J.
load() {
	local name=$1 want=$2 rc=0
	shift 2
	J=$(nsc "$LOAD" "$@" --json 2>"$WORK/load.err") || rc=$?
	if [ "$rc" = "$want" ]; then
		ok "$name"
	else
		not_ok "$name: exit $rc, want $want: $(head -n 2 "$WORK/load.err" | tr '\n' ' ')"
	fi
}

# field KEY: a number from the last l3x-load JSON.
field() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" <<<"$J"; }

# positive NAME KEY: ok when KEY of the last JSON is above 0.
positive() {
	if awk -v v="$(field "$2")" 'BEGIN { exit !(v > 0) }'; then
		ok "$1: $2 above 0"
	else
		not_ok "$1: $2 is '$(field "$2")'"
	fi
}

kserve 9000 --mode echo || exit 1
kserve 9009 --mode discard || exit 1
kserve 9013 --mode echo --corrupt-every 100003 || exit 1
kserve 80 --mode http || exit 1

# ---------------------------------------------------------------- 1
for dst in 198.51.100.7 2001:db8:100::7; do
	fam=v4 len=24
	[ "${dst#*:}" = "$dst" ] || fam=v6 len=120
	load "bulk $fam: 1 stream, every byte echoed" 0 bulk --dst "$dst" --port 9000 --seconds 1
	positive "bulk $fam" bytes
	load "bulk $fam: 8 streams to 8 addresses" 0 bulk --dst "$dst/$len" --addrs 8 --conns 8 \
		--port 9000 --seconds 1 --threads 2
	load "rr $fam" 0 rr --dst "$dst" --port 9000 --conns 4 --seconds 1 --size 1000
	positive "rr $fam" p99_us
	load "crr $fam" 0 crr --dst "$dst/$len" --addrs 50 --port 9000 --seconds 1
	positive "crr $fam" ops
	load "udp-rr $fam: replies from the address asked" 0 udp-rr --dst "$dst/$len" --addrs 4 \
		--conns 4 --port 9000 --seconds 1 --size 1200
	positive "udp-rr $fam" ops
done
load "bulk --discard: acknowledged bytes count" 0 bulk --discard --dst 198.51.100.9 --port 9009 --seconds 1
positive "bulk --discard" bytes
load "crr --rst" 0 crr --rst --dst 198.51.100.9 --port 9000 --seconds 1

# ---------------------------------------------------------------- 2
load "bulk against a corrupting server: exit 1" 1 bulk --dst 198.51.100.9 --port 9013 --seconds 1
positive "bulk against a corrupting server" verify_failures
check "the first wrong byte is named at its offset" grep -q 'offset 100002: ' "$WORK/load.err"
load "udp-rr against a corrupting server: exit 1" 1 udp-rr --dst 198.51.100.9 --port 9013 \
	--seconds 1 --size 2000
positive "udp-rr against a corrupting server" verify_failures

# ---------------------------------------------------------------- 3
load "hold --check-all: 3000 flows" 0 hold --dst 198.51.100.1/24 --addrs 200 --conns 3000 \
	--port 9000 --seconds 2 --check-all
expect_eq "hold: every flow echoed in the final check" "$(field checked)" 3000
kserve 9100 --mode echo --processes 3 || exit 1
load "hold --check-all: 22000 flows over processes on both sides" 0 hold --dst 198.51.100.1/24 \
	--addrs 200 --conns 22000 --port 9100 --seconds 2 --check-all --timeout 5 --quiet
expect_eq "hold: 22000 flows echoed" "$(field checked)" 22000
kserve 9200 --mode echo || exit 1
victim=${KPIDS[-1]}
(sleep 1.5; kill "$victim") &
load "hold: a server killed under held flows fails the check" 1 hold --dst 198.51.100.1/24 \
	--addrs 50 --conns 500 --port 9200 --seconds 3 --check-all --quiet
expect_eq "hold: no flow of the killed server passes" "$(field checked)" 0

# ---------------------------------------------------------------- 4
body=$(nsc curl -s -m 3 http://198.51.100.77/)
check "http: the body names the original destination" grep -q 'destination 198.51.100.77:80' <<<"$body"
body=$(nsc curl -s -m 3 -g 'http://[2001:db8:100::77]:80/')
check "http: IPv6 too" grep -qF 'destination [2001:db8:100::77]:80' <<<"$body"
load "l3x-load without a mode: exit 2" 2 --dst 198.51.100.1 --port 9000
check "l3x-load: one line names the problem" bash -c "[ \$(wc -l <$WORK/load.err) = 1 ] && grep -q MODE $WORK/load.err"
rc=0
"$KSERVE" --mode chat --port 1 2>"$WORK/ks.err" || rc=$?
expect_eq "l3x-kserve: a bad mode exits 2" "$rc" 2
check "l3x-kserve: one line names the problem" grep -q -- "--mode 'chat'" "$WORK/ks.err"
exit 0
