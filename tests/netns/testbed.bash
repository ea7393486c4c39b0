# testbed.bash - shared by the integration tests: a testbed of two network
# namespaces joined by a veth pair, reporting helpers, and cleanup that runs
# however the test ends.
#
#   client namespace $NS_C: veth $IF_C, 192.0.2.1/24, 2001:db8:1::1/64
#   l3x namespace    $NS_S: veth $IF_S, 192.0.2.2/24, 2001:db8:1::2/64
# Documentation prefixes only; nothing leaves the namespaces.
# shellcheck shell=bash

B=${B:-build}
B=$(cd "$B" && pwd)
TAG=l3x$$
NS_C=${TAG}c
NS_S=${TAG}s
IF_C=${TAG}c0
IF_S=${TAG}s0
ADDR4_C=192.0.2.1
ADDR4_S=192.0.2.2
ADDR6_C=2001:db8:1::1
ADDR6_S=2001:db8:1::2
PIN=/run/${TAG}-bpf
WORK=$(mktemp -d /tmp/${TAG}.XXXXXX)
PY=/usr/bin/python3
CLEANUP_CMDS=()
FAILS=0

ok() { echo "ok $*"; }
not_ok() { echo "not ok $*"; FAILS=$((FAILS + 1)); }
skip() { echo "skip $*"; }

# check NAME CMD... : ok if CMD succeeds
check() {
	local name=$1
	shift
	if "$@" >"$WORK/check.out" 2>&1; then
		ok "$name"
	else
		not_ok "$name: $(tail -n 3 "$WORK/check.out" | tr '\n' ' ')"
	fi
}

# expect_eq NAME GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', want '$3'"; fi
}

on_exit() { CLEANUP_CMDS+=("$*"); }

cleanup() {
	local i
	for ((i = ${#CLEANUP_CMDS[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUP_CMDS[$i]}" >/dev/null 2>&1
	done
	ip netns del "$NS_C" 2>/dev/null
	ip netns del "$NS_S" 2>/dev/null
	if mountpoint -q "$PIN" 2>/dev/null; then umount "$PIN"; fi
	rmdir "$PIN" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Skip the whole file (with a reason) when this machine cannot run it.
require_root_netns() {
	if [ "$(id -u)" != 0 ]; then
		skip "$(basename "$0"): needs root for network namespaces and XDP"
		exit 0
	fi
	if ! ip netns add "${TAG}probe" 2>/dev/null; then
		skip "$(basename "$0"): cannot create network namespaces here"
		exit 0
	fi
	ip netns del "${TAG}probe"
}

nsc() { ip netns exec "$NS_C" "$@"; }
nss() { ip netns exec "$NS_S" "$@"; }

# ends_config: the addresses of the client's $IF_C and the server's $IF_S,
# both wire-like (no offloads, so checksums are complete on the wire).
ends_config() {
	nsc ip addr add "$ADDR4_C/24" dev "$IF_C"
	nss ip addr add "$ADDR4_S/24" dev "$IF_S"
	nsc ip -6 addr add "$ADDR6_C/64" dev "$IF_C" nodad
	nss ip -6 addr add "$ADDR6_S/64" dev "$IF_S" nodad
	nsc ethtool -K "$IF_C" tx off tso off gso off >/dev/null 2>&1
	nss ethtool -K "$IF_S" tx off tso off gso off >/dev/null 2>&1
}

# testbed [QUEUES]: the two namespaces, the veth, addresses; the client side
# made wire-like (no offloads, so checksums are complete on the wire).
testbed() {
	local q=${1:-2}
	ip netns add "$NS_C" && ip netns add "$NS_S" || return 1
	ip link add "$IF_C" numtxqueues "$q" numrxqueues "$q" netns "$NS_C" type veth \
		peer name "$IF_S" numtxqueues "$q" numrxqueues "$q" netns "$NS_S" || return 1
	nsc ip link set lo up
	nss ip link set lo up
	ends_config
	nsc ip link set "$IF_C" up
	nss ip link set "$IF_S" up
	# Neighbours resolved before any XDP program sees ARP/ND.
	nsc ping -c1 -W2 "$ADDR4_S" >/dev/null && nsc ping -6 -c1 -W2 "$ADDR6_S" >/dev/null
}

# A bpffs outside /sys, so pins survive from one 'ip netns exec' to the next.
pin_fs() {
	mkdir -p "$PIN" && mount -t bpf bpf "$PIN"
}

# testbed_pinned [QUEUES]: the testbed (QUEUES, default 2) and the bpffs,
# or not ok and the test ends here.
testbed_pinned() {
	testbed "${1:-2}" || { not_ok "testbed: cannot build the veth testbed"; exit 1; }
	pin_fs || { not_ok "bpffs: cannot mount one at $PIN"; exit 1; }
}

# require_scapy NAME: unless $PY has scapy, skip NAME with the reason and
# end the test (exit 0).
require_scapy() {
	$PY -c 'import scapy' 2>/dev/null && return 0
	skip "$1: needs python3-scapy for $PY"
	exit 0
}

# serve_echo_on_veth WHAT RULE... [-- OPTION...]: l3x-serve on $IF_S, echo,
# one worker, a --rule for each RULE, the OPTIONs after "--" as they are,
# pins in $DIR, its stderr in $WORK/serve.log, its pid in $SPID, killed at
# exit. Unless it is ready within 5 s: not ok "WHAT: l3x-serve not ready"
# and the test ends.
serve_echo_on_veth() {
	local what=$1 rules=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		rules+=(--rule "$1")
		shift
	done
	[ $# -gt 0 ] && shift # "--": the rest are more l3x-serve options
	ip netns exec "$NS_S" "$B/l3x-serve" --iface "$IF_S" "${rules[@]}" "$@" \
		--mode echo --workers 1 --pin-dir "$DIR" 2>"$WORK/serve.log" &
	SPID=$!
	on_exit "kill -9 $SPID 2>/dev/null"
	if ! wait_for grep -q ': ready$' "$WORK/serve.log"; then
		not_ok "$what: l3x-serve not ready: $(head -c 300 "$WORK/serve.log")"
		exit 1
	fi
}

# serve_end_on_veth WHAT: the l3x-serve of serve_echo_on_veth stopped
# (SIGINT); expects status 0 and keeps its closing line in $SLINE.
serve_end_on_veth() {
	local rc
	kill -INT "$SPID"
	wait "$SPID"
	rc=$?
	SLINE=$(tail -n 1 "$WORK/serve.log")
	expect_eq "$1: l3x-serve ends with status 0" "$rc" 0
}

# counter KEY: the value of KEY in the server's closing line $SLINE.
counter() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" <<<"$SLINE"; }

# route_via_l3x PFX4 [PFX6]: the client reaches the prefixes through the
# l3x side.
route_via_l3x() {
	nsc ip route add "$1" via "$ADDR4_S"
	[ -z "${2:-}" ] || nsc ip -6 route add "$2" via "$ADDR6_S"
}

# counters: the counters line l3x-serve ($SPID, its stderr in $SLOG) prints
# on SIGUSR1, as "key value" lines; waits up to 2.5 s for the line.
counters() {
	local n
	n=$(grep -c ': counters: ' "$SLOG")
	kill -USR1 "$SPID"
	for _ in $(seq 50); do
		sleep 0.05
		[ "$(grep -c ': counters: ' "$SLOG")" -gt "$n" ] && break
	done
	grep ': counters: ' "$SLOG" | tail -n 1 | grep -oE '[a-z_]+ [0-9]+'
}

# stat NS IF FIELD: one counter of /sys/class/net/IF/statistics
netstat_of() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }

# Sum of one l3x_stats counter over CPUs, read from the pinned map.
l3x_counter() {
	local dir=$1 idx=$2
	bpftool -j map lookup pinned "$dir/l3x_stats" key "$idx" 0 0 0 |
		$PY -c 'import json,sys; d=json.load(sys.stdin); v=d.get("values") or d.get("formatted",{}).get("values"); print(sum(int(x["value"]) if not isinstance(x["value"], list) else int.from_bytes(bytes(int(b,16) for b in x["value"]),"little") for x in v))'
}

# serve_ready LOG PID: true once the server PID has written its ready line
# to LOG (l3x-serve's ": ready", l3x-kserve's ": ready: ..."), within 15 s;
# false when it ends first or the time is up.
serve_ready() {
	local _
	for _ in $(seq 150); do
		grep -qsE ': ready(:|$)' "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# server_started WHAT LOG PID: the server just started as PID is killed at
# exit; true once it is ready, else not ok "WHAT not ready" with its LOG.
server_started() {
	on_exit "kill -9 $3 2>/dev/null"
	serve_ready "$2" "$3" && return 0
	not_ok "$1 not ready: $(head -c 300 "$2" | tr '\n' ' ')"
	return 1
}

# wait_for CMD... : retry up to 5 s
wait_for() {
	local i
	for i in $(seq 50); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# echo_check N BYTES: N streams of seeded BYTES each, in parallel from the
# client namespace to $ADDR4_S:$PORT, echoed and checked by SHA-256.
echo_check() {
	nsc $PY - "$ADDR4_S" $PORT "$1" "$2" <<'EOF'
import hashlib, random, socket, sys, threading
dst, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
res = []
def one(i):
    data = random.Random(i).randbytes(size)
    s = socket.create_connection((dst, port), timeout=10)
    got = bytearray()
    def rd():
        while len(got) < size:
            d = s.recv(1 << 16)
            if not d:
                break
            got.extend(d)
    t = threading.Thread(target=rd)
    t.start()
    s.sendall(data)
    t.join(30)
    s.close()
    res.append(hashlib.sha256(got).digest() == hashlib.sha256(data).digest())
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in ts]
[t.join(60) for t in ts]
print("echo %d/%d exact" % (sum(res), n))
sys.exit(0 if sum(res) == n else 1)
EOF
}
