#!/usr/bin/env bash
# locks.sh - the lock files that let several processes share one
# interface's program cannot be abused by a local user, and never make a
# process detach a program others use:
#   1. the lock directory is created 0700 and the files in it 0600, plain
#      files of ours; the last process removes them.
#   2. symlinks planted under the lock files' names are not followed: the
#      file they point to is left as it was, and the process refuses in
#      one line (nothing attached).
#   3. a lock held by someone else ends the wait after L3X_LOCK_TIMEOUT_MS
#      with one line saying so; the running process is not disturbed, and
#      a process that cannot take the lock on close leaves the program.
#   4. a process that cannot take the locks (a lock directory others can
#      write) only reuses the attached program and, exiting, leaves it for
#      the process that attached it.
# Lock directories here are under $WORK (L3X_LOCK_DIR), not /run/l3x.
. "$(dirname "$0")/testbed.bash"
require_root_netns
HERE=$(cd "$(dirname "$0")" && pwd)
UDP="$PY $HERE/udp_tool.py"
CAP=$B/l3x-capture
DIR=$PIN/locks
LK=$WORK/locks
N=50

testbed 2 || { not_ok "testbed: cannot build the veth testbed"; exit 1; }
pin_fs || { not_ok "bpffs: cannot mount one at $PIN"; exit 1; }

xdp_attached() { nss ip -d link show "$IF_S" | grep -q 'prog/xdp'; }
xdp_off() {
	nss ip link set "$IF_S" xdp off 2>/dev/null
	nss ip link set "$IF_S" xdpgeneric off 2>/dev/null
	rm -f "$DIR"/l3x_* 2>/dev/null
}
on_exit xdp_off

# start_cap NAME QUEUE [ENV...]: a capture in the background; sets CPID.
# ip netns exec execs the tool, so $! is its pid.
start_cap() {
	local name=$1 q=$2
	shift 2
	env L3X_LOCK_DIR="$LK" "$@" ip netns exec "$NS_S" "$CAP" --iface "$IF_S" --queue "$q" \
		--rule "udp $ADDR4_S 9000" --pin-dir "$DIR" --write "$WORK/$name.pcap" \
		--seconds 60 --verbose 2>"$WORK/$name.log" &
	CPID=$!
	on_exit "kill -9 $CPID 2>/dev/null"
}

# run_cap QUEUE [ENV...]: a capture in the foreground, 5 s at most; output
# in OUT, status in RC.
run_cap() {
	local q=$1
	shift
	OUT=$(env L3X_LOCK_DIR="$LK" "$@" timeout 30 ip netns exec "$NS_S" "$CAP" --iface "$IF_S" \
		--queue "$q" --rule "udp $ADDR4_S 9000" --pin-dir "$DIR" --write "$WORK/fg.pcap" \
		--seconds 5 2>&1)
	RC=$?
}

started() { wait_for bash -c "bpftool map dump pinned $DIR/l3x_rules 2>/dev/null | grep -q key"; }

# ---------------------------------------------------------------- 1
start_cap a 0
A=$CPID
if ! started; then
	not_ok "first capture did not start: $(head -c 300 "$WORK/a.log")"
	exit 1
fi
expect_eq "lock directory created mode 0700, root's" "$(stat -c '%a %U' "$LK")" "700 root"
names=$(cd "$LK" && ls)
expect_eq "two lock files" "$(echo "$names" | wc -l)" 2
expect_eq "lock files are 0600, root's" "$(cd "$LK" && stat -c '%a %U' $names | sort -u)" "600 root"
check "... plain files, not links" bash -c "cd $LK && for f in $(echo $names); do test -f \$f && ! test -L \$f || exit 1; done"
kill -INT $A
wait $A
expect_eq "the last process removes the lock files" "$(ls "$LK" | wc -l)" 0
check "... and detaches the program" bash -c "! ip netns exec $NS_S ip -d link show $IF_S | grep -q prog/xdp"

# ---------------------------------------------------------------- 2
echo "precious" >"$WORK/victim"
before=$(sha256sum <"$WORK/victim")
for n in $names; do ln -s "$WORK/victim" "$LK/$n"; done
run_cap 0
expect_eq "symlinked lock files: the process refuses, exit 1" $RC 1
expect_eq "... in one line" "$(echo "$OUT" | wc -l)" 1
check "... that names the cause" grep -q "lock file .* is a symbolic link: not followed" <<<"$OUT"
expect_eq "... the file behind the symlink is untouched" "$(sha256sum <"$WORK/victim")" "$before"
check "... and nothing is attached" bash -c "! ip netns exec $NS_S ip -d link show $IF_S | grep -q prog/xdp"
rm -f "$LK"/*

# ---------------------------------------------------------------- 3
start_cap a 0 L3X_LOCK_TIMEOUT_MS=1500
A=$CPID
if ! started; then
	not_ok "capture did not start: $(head -c 300 "$WORK/a.log")"
	exit 1
fi
mutex=$(cd "$LK" && ls -- *.mutex)
flock -x "$LK/$mutex" sleep 30 &
H=$!
on_exit "kill $H 2>/dev/null"
sleep 0.3
t0=$(date +%s%N)
run_cap 1 L3X_LOCK_TIMEOUT_MS=1000
t1=$(date +%s%N)
expect_eq "lock held by another: exit status 1" $RC 1
expect_eq "... in one line" "$(echo "$OUT" | wc -l)" 1
check "... saying it timed out waiting for the lock" grep -q "timed out waiting for the interface's lock" <<<"$OUT"
check "... after about the timeout (1 s), not for ever" test $(((t1 - t0) / 1000000)) -lt 5000
check "the running capture is undisturbed" kill -0 $A
kill -INT $A
wait $A
expect_eq "a capture that cannot take the lock on close still exits 0" $? 0
check "... and leaves the program attached (it may have other users)" xdp_attached
kill $H 2>/dev/null
wait $H 2>/dev/null
xdp_off
rm -f "$LK"/*

# ---------------------------------------------------------------- 4
start_cap a 0
A=$CPID
if ! started; then
	not_ok "capture did not start: $(head -c 300 "$WORK/a.log")"
	exit 1
fi
mkdir -p "$WORK/open" && chmod 777 "$WORK/open"
LK=$WORK/open start_cap b 1
Bp=$CPID
LK=$WORK/locks
check "a process without the locks reuses the attached program" \
	wait_for grep -q "already attached" "$WORK/b.log"
check "... saying why it takes no lock" grep -q "no lock in $WORK/open" "$WORK/b.log"
kill -INT $Bp
wait $Bp
expect_eq "... and exits 0" $? 0
check "... leaving the program attached" xdp_attached
check "... and the pins" test -e "$DIR/l3x_xsks"
s0=$(($(l3x_counter "$DIR" 1) + $(l3x_counter "$DIR" 2)))
nsc $UDP send "$ADDR4_S" 9000 $N after 200
sleep 0.3
s1=$(($(l3x_counter "$DIR" 1) + $(l3x_counter "$DIR" 2)))
expect_eq "the program still steers the rule's datagrams" $((s1 - s0)) $N
check "the first capture still runs" kill -0 $A
kill -INT $A
wait $A
check "the first capture, the last user, detaches" \
	bash -c "! ip netns exec $NS_S ip -d link show $IF_S | grep -q prog/xdp"
[ "$FAILS" = 0 ]
