#!/usr/bin/env bash
# http.sh - HTTP/1.1 keep-alive and pipelining in l3x-serve --mode http,
# measured by real clients, and its kernel twin l3x-kserve answering byte
# for byte the same. The client namespace routes 198.51.100.0/24 and
# 2001:db8:100::/64 to the l3x namespace; l3x-kserve gets the prefixes on
# a local route there, l3x-serve steers them with rules.
#
# For each server (kernel first, which shows the checks are right):
#   1. curl asking twice in one call reuses one connection (IPv4, IPv6);
#   2. curl --http1.0 gets "Connection: close" and the server closes;
#   3. three pipelined requests in one write get three answers in order,
#      the last (Connection: close) followed by the server's FIN; a
#      malformed request line gets a 400 and Connection: close;
#   4. ab -k: every request answered on kept-alive connections;
#   5. wrk -t1 -c32 -d3s: requests answered, no socket or HTTP errors.
# Then the raw answers of 2 and 3 from both servers must be the same bytes
# (the client's port, which names itself in the body, set alike), and the
# l3x closing line counts the requests and the one bad request.
. "$(dirname "$0")/testbed.bash"
require_root_netns
for t in wrk ab socat curl; do
	if ! command -v $t >/dev/null; then
		skip "$(basename "$0"): $t not installed (scripts/deps.sh --install)"
		exit 0
	fi
done
PFX4=198.51.100.0/24
PFX6=2001:db8:100::/64
A4=198.51.100.80
A6=2001:db8:100::80
SPID=
SLOG=

testbed_pinned
route_via_l3x "$PFX4" "$PFX6"

# server_start KIND: l3x-kserve (kernel) or l3x-serve (l3x), http on port 80.
server_start() {
	local kind=$1
	SLOG=$WORK/$kind.log
	case $kind in
	kernel)
		nss ip route add local "$PFX4" dev lo
		nss ip -6 route add local "$PFX6" dev lo
		ip netns exec "$NS_S" "$B/l3x-kserve" --mode http --port 80 --no-udp \
			2>"$SLOG" &
		;;
	l3x)
		ip netns exec "$NS_S" "$B/l3x-serve" --iface "$IF_S" --rule "tcp $PFX4" \
			--rule "tcp $PFX6" --mode http --pin-dir "$PIN/serve" --quiet 2>"$SLOG" &
		;;
	esac
	SPID=$!
	server_started "$kind: server" "$SLOG" "$SPID"
}

server_stop() {
	local kind=$1 i
	kill -INT $SPID
	for i in $(seq 100); do
		kill -0 $SPID 2>/dev/null || break
		sleep 0.1
	done
	kill -9 $SPID 2>/dev/null
	wait $SPID
	expect_eq "$kind: SIGINT ends the server with status 0" $? 0
	if [ "$kind" = l3x ]; then
		check "l3x: no XDP program left on the link" \
			bash -c "! ip netns exec $NS_S ip -d link show $IF_S | grep -q xdp"
		expect_eq "l3x: the closing line shows flows 0" \
			"$(tail -n 1 "$SLOG" | sed -n 's/.* flows \([0-9]*\) buffered.*/\1/p')" 0
	fi
	if [ "$kind" = kernel ]; then
		nss ip route del local "$PFX4" dev lo
		nss ip -6 route del local "$PFX6" dev lo
	fi
}

# raw KIND NAME SPORT: send $WORK/NAME.req from source port SPORT, keep the
# answer bytes (with the port in the body as P) in $WORK/KIND-NAME.out.
raw() {
	nsc socat -t 3 -T 5 - "TCP:$A4:80,sourceport=$3,reuseaddr" \
		<"$WORK/$2.req" >"$WORK/$1-$2.raw" 2>"$WORK/$1-$2.err"
	sed "s/^client \(.*\):$3\$/client \1:P/" "$WORK/$1-$2.raw" >"$WORK/$1-$2.out"
}

curl_checks() {
	local kind=$1 a url out n
	for a in "$A4" "[$A6]"; do
		url="http://$a:80/"
		out=$(nsc curl -sS -g -v --max-time 5 "$url" "$url" 2>&1)
		n=$(grep -c '^\* Connected to' <<<"$out")
		if [ "$n" = 1 ] && grep -q 'Re-using existing connection' <<<"$out" &&
			[ "$(grep -c '^< HTTP/1.1 200 OK' <<<"$out")" = 2 ]; then
			ok "$kind: curl $a: two requests, two 200s on one connection"
		else
			not_ok "$kind: curl $a: connects $n, $(grep -c '^< HTTP/1.1 200' <<<"$out") answers: $(tr '\n' '|' <<<"$out" | head -c 300)"
		fi
	done
	out=$(nsc curl -sS -g -v --http1.0 --max-time 5 "http://$A4:80/" 2>&1)
	if grep -q '^< Connection: close' <<<"$out" && grep -q '^client ' <<<"$out"; then
		ok "$kind: curl --http1.0 gets Connection: close"
	else
		not_ok "$kind: curl --http1.0: $(tr '\n' '|' <<<"$out" | head -c 300)"
	fi
}

pipeline_checks() {
	local kind=$1 sp=$2 n t0 dt
	t0=$(date +%s%N)
	raw "$kind" pipe "$sp"
	dt=$((($(date +%s%N) - t0) / 1000000))
	n=$(grep -c '^HTTP/1.1 200 OK' "$WORK/$kind-pipe.out")
	if [ "$n" = 3 ] && [ "$(grep -c '^Connection: close' "$WORK/$kind-pipe.out")" = 1 ] &&
		[ $dt -lt 2500 ]; then
		ok "$kind: three pipelined requests answered in order, the server closed after the last (${dt} ms)"
	else
		not_ok "$kind: pipelining: $n answers in $dt ms: $(head -c 300 "$WORK/$kind-pipe.out" | tr '\r\n' '||')"
	fi
	raw "$kind" bad $((sp + 1))
	if grep -q '^HTTP/1.1 400 Bad Request' "$WORK/$kind-bad.out" &&
		grep -q '^Connection: close' "$WORK/$kind-bad.out"; then
		ok "$kind: a malformed request line gets 400 and Connection: close"
	else
		not_ok "$kind: malformed: $(head -c 300 "$WORK/$kind-bad.out" | tr '\r\n' '||')"
	fi
	raw "$kind" http10 $((sp + 2))
}

load_checks() {
	local kind=$1 out req fail ka reqs errs non2
	out=$(nsc timeout 30 ab -k -n 2000 -c 8 "http://$A4:80/" 2>&1)
	req=$(sed -n 's/^Complete requests: *\([0-9]*\)/\1/p' <<<"$out")
	fail=$(sed -n 's/^Failed requests: *\([0-9]*\)/\1/p' <<<"$out")
	ka=$(sed -n 's/^Keep-Alive requests: *\([0-9]*\)/\1/p' <<<"$out")
	expect_eq "$kind: ab -k -n 2000 -c 8: complete, failed, kept alive" \
		"$req:$fail:$ka" "2000:0:2000"
	out=$(nsc timeout 30 wrk -t1 -c32 -d3s "http://$A4:80/" 2>&1)
	reqs=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$out")
	errs=$(sed -n 's/^ *Socket errors: \(.*\)/\1/p' <<<"$out")
	non2=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' <<<"$out")
	echo "# $kind: wrk -t1 -c32 -d3s: $(grep -E 'Requests/sec' <<<"$out" | tr -s ' ')"
	if [ "${reqs:-0}" -gt 0 ] && [ -z "$errs" ] && [ -z "$non2" ]; then
		ok "$kind: wrk -t1 -c32 -d3s: $reqs requests, no errors"
	else
		not_ok "$kind: wrk: requests ${reqs:-none}, socket errors '${errs}', non-2xx '${non2}'"
	fi
}

printf 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$WORK/pipe.req"
printf 'GARBAGE\r\n\r\n' >"$WORK/bad.req"
printf 'GET / HTTP/1.0\r\n\r\n' >"$WORK/http10.req"

sp=40100
for kind in kernel l3x; do
	server_start "$kind" || continue
	curl_checks "$kind"
	pipeline_checks "$kind" $sp
	load_checks "$kind"
	server_stop "$kind"
	sp=$((sp + 10))
done
for r in pipe bad http10; do
	check "kernel and l3x answer '$r' with the same bytes" \
		cmp "$WORK/kernel-$r.out" "$WORK/l3x-$r.out"
done
line=$(tail -n 1 "$WORK/l3x.log")
bad=$(sed -n 's/.* http requests [0-9]* bad \([0-9]*\).*/\1/p' <<<"$line")
expect_eq "l3x: the closing line counts the one malformed request" "$bad" 1
kline=$(grep 'http requests' "$WORK/kernel.log" | tail -n 1)
check "kernel: the closing line counts the one malformed request" \
	grep -q '(1 bad)' <<<"$kline"
[ $FAILS = 0 ]
