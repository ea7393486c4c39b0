#!/usr/bin/env bash
# privdrop.sh - root sets up once, the application runs unprivileged:
#   root:  xdp-loader load -p DIR IF l3x.bpf.o, then the pins (and DIR)
#          handed to a group: l3x-ctl --pin-dir DIR grant --group G
#          (0660 pins, 0750 DIR).
#   then:  l3x-capture and l3x-serve as another user (uid/gid 4242 here,
#          no supplementary groups), holding CAP_NET_RAW only (setpriv
#          --ambient-caps), a UMEM within RLIMIT_MEMLOCK (--frames). Each
#          adds its rule to the pinned maps, serves or captures, and takes
#          the rule back on exit; the program stays attached.
#   and:   without CAP_NET_RAW the tool refuses in one line; without the
#          group's access to the pins likewise.
. "$(dirname "$0")/testbed.bash"
require_root_netns
HERE=$(cd "$(dirname "$0")" && pwd)
UDP="$PY $HERE/udp_tool.py"
DIR=$PIN/priv
U=4242
N=100

command -v setpriv >/dev/null || { skip "privdrop.sh: needs setpriv (util-linux)"; exit 0; }
command -v xdp-loader >/dev/null || { skip "privdrop.sh: needs xdp-loader (xdp-tools)"; exit 0; }
testbed 1 || { not_ok "testbed: cannot build the veth testbed"; exit 1; }
pin_fs || { not_ok "bpffs: cannot mount one at $PIN"; exit 1; }

# ---------------------------------------------------------------- setup
if ! nss xdp-loader load -p "$DIR" "$IF_S" "$B/l3x.bpf.o" >"$WORK/xl.log" 2>&1; then
	not_ok "setup: xdp-loader load -p failed: $(tail -n 2 "$WORK/xl.log" | tr '\n' ' ')"
	exit 1
fi
on_exit "ip netns exec $NS_S xdp-loader unload -a $IF_S"
chmod 0755 "$PIN"
out=$("$B/l3x-ctl" --pin-dir "$DIR" grant --group $U 2>&1)
expect_eq "setup: l3x-ctl grant hands the pins to the group" "$out" \
	"pins in $DIR: group $U, mode 0660 (directory 0750)"
expect_eq "... pins 0660, group $U" "$(stat -c '%a %g' "$DIR"/l3x_* | sort -u)" "660 $U"
expect_eq "... directory 0750, group $U" "$(stat -c '%a %g' "$DIR")" "750 $U"
# The binaries and the work dir must be reachable by the user.
chmod 0755 "$WORK"
ok "setup: program loaded by root, pins handed to group $U"

# Run as uid/gid U with CAP_NET_RAW only (NOCAP: with none). ip netns exec
# execs setpriv, which execs the tool: $! is the tool's pid. The tools run
# with --frames 512: the UMEM (2 MiB a queue) fits in the default
# RLIMIT_MEMLOCK of 8 MiB, which a user without CAP_IPC_LOCK is charged for.
USER_RAW=(ip netns exec "$NS_S" setpriv --reuid=$U --regid=$U --clear-groups
	--inh-caps=+net_raw --ambient-caps=+net_raw --)
USER_NOCAP=(ip netns exec "$NS_S" setpriv --reuid=$U --regid=$U --clear-groups --)

rules() { "$B/l3x-ctl" --pin-dir "$DIR" rules | sort | tr '\n' ','; }

# ---------------------------------------------------------------- capture
"${USER_RAW[@]}" "$B/l3x-capture" --iface "$IF_S" --rule "udp $ADDR4_S 9000" --pin-dir "$DIR" \
	--frames 512 --write - --seconds 60 --verbose >"$WORK/cap.pcap" 2>"$WORK/cap.log" &
CPID=$!
on_exit "kill -9 $CPID 2>/dev/null"
if wait_for bash -c "'$B/l3x-ctl' --pin-dir $DIR rules | grep -q 9000"; then
	ok "capture as uid $U with CAP_NET_RAW only adds its rule to the pinned maps"
else
	not_ok "capture as uid $U did not start: $(grep -v 'libbpf\|libxdp' "$WORK/cap.log" | head -c 400)"
fi
expect_eq "... it runs as uid $U" "$(ps -o uid= -p $CPID | tr -d ' ')" $U
expect_eq "... with CAP_NET_RAW only" "$(grep CapEff /proc/$CPID/status | awk '{print $2}')" 0000000000002000
check "... says it uses the pinned maps" grep -q "maps pinned in $DIR" "$WORK/cap.log"
sleep 0.3
nsc $UDP send "$ADDR4_S" 9000 $N priv 200
sleep 0.5
kill -INT $CPID
wait $CPID
expect_eq "... exits 0 on SIGINT" $? 0
expect_eq "... captured every datagram" "$(tcpdump -nr "$WORK/cap.pcap" 2>/dev/null | wc -l)" $N
expect_eq "... took its rule back" "$(rules)" ""
check "... left the program attached" bash -c "ip netns exec $NS_S ip -d link show $IF_S | grep -q prog/xdp"

# ---------------------------------------------------------------- serve
"${USER_RAW[@]}" "$B/l3x-serve" --iface "$IF_S" --rule "tcp $ADDR4_S 7000" --pin-dir "$DIR" \
	--frames 512 --mode echo --quiet 2>"$WORK/serve.log" &
SPID=$!
on_exit "kill -9 $SPID 2>/dev/null"
if wait_for grep -q ': ready$' "$WORK/serve.log"; then
	ok "serve as uid $U with CAP_NET_RAW only is ready"
else
	not_ok "serve as uid $U not ready: $(head -c 400 "$WORK/serve.log")"
fi
got=$(echo "unprivileged-echo" | nsc timeout 5 socat -t 2 - TCP:$ADDR4_S:7000 2>/dev/null)
expect_eq "... echoes over TCP" "$got" "unprivileged-echo"
expect_eq "... its rule is in the pinned maps" "$(rules)" "tcp $ADDR4_S 7000,"
kill -INT $SPID
wait $SPID
expect_eq "... takes its rule back on exit" "$(rules)" ""

# ---------------------------------------------------------------- refusals
out=$("${USER_NOCAP[@]}" "$B/l3x-capture" --iface "$IF_S" --rule "udp $ADDR4_S 9000" \
	--pin-dir "$DIR" --frames 512 --write /dev/null --seconds 2 2>&1)
rc=$?
expect_eq "without CAP_NET_RAW: exit status 1" $rc 1
expect_eq "... one line" "$(echo "$out" | wc -l)" 1
check "... saying what is not permitted and what is needed" grep -q "not permitted: without root, a process needs CAP_NET_RAW" <<<"$out"
expect_eq "... and no rule left behind" "$(rules)" ""
chgrp -R root "$DIR"
out=$("${USER_RAW[@]}" "$B/l3x-capture" --iface "$IF_S" --rule "udp $ADDR4_S 9000" \
	--pin-dir "$DIR" --frames 512 --write /dev/null --seconds 2 2>&1)
rc=$?
expect_eq "pins not handed to the group: exit status 1" $rc 1
expect_eq "... one line" "$(echo "$out" | wc -l)" 1
[ "$FAILS" = 0 ]
