#!/usr/bin/env bash
# small_umem.sh - a small UMEM serves a busy echo. Half of a socket's
# frames are for transmit and half for receive (lib/xsk.c); transmit holds
# at most its half, so echoing (every received segment answered with data)
# never takes the receive frames and runs the fill ring dry. Before, with
# l3x-serve --frames 256, 16 echo streams of 4 MB stalled for good.
# Checks, with --frames 256 (the least l3x-serve takes) and --check-mem:
#   - 16 streams of 4 MB each come back exact;
#   - once everything closes, every frame is back where it started.
. "$(dirname "$0")/testbed.bash"
require_root_netns
PORT=9510
DIR=$PIN/su
SLOG=$WORK/serve.log

testbed_pinned 1
serve_echo_on_veth small_umem "tcp $ADDR4_S $PORT" -- --frames 256 --check-mem

out=$(echo_check 16 4000000 2>&1)
expect_eq "small_umem: 16 echo streams of 4 MB through 256 frames come back exact ($(tail -n 1 <<<"$out"))" $? 0

serve_end_on_veth small_umem
check "small_umem: every frame back once everything closed ($(grep -o 'check-mem.*' "$SLOG" | head -c 300))" \
	grep -q 'check-mem ok' "$SLOG"

[ "$FAILS" = 0 ]
