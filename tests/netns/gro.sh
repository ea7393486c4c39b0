#!/usr/bin/env bash
# gro.sh - receive coalescing (issue 14, lib/gro.c): consecutive in-order
# segments of one connection from one receive burst reach lwIP's TCP as
# one segment. l3x-serve echoes on AF_XDP; the kernel client sends
# without TSO/GSO, so every segment is its own frame on the wire.
# Checks:
#   - a bulk echo over 4 streams comes back exact with coalescing on (the
#     default), and segments were merged (tcp_gro_merged > 0), each run
#     passed on (tcp_gro_flushed > 0); every frame is back at the end
#     (--check-mem);
#   - with --gro off the same echo is exact and nothing is merged;
#   - --gro takes only on and off.
. "$(dirname "$0")/testbed.bash"
require_root_netns
PORT=9510
DIR=$PIN/gro
SLOG=$WORK/serve.log

testbed_pinned 1

# run_echo MODE: the bulk echo against l3x-serve --gro MODE; the server's
# closing line in $SLINE.
run_echo() {
	local out rc
	serve_echo_on_veth "gro $1" "tcp $ADDR4_S $PORT" -- --check-mem --gro "$1"
	out=$(echo_check 4 4000000 2>&1)
	rc=$?
	expect_eq "gro $1: a bulk echo over 4 streams comes back exact ($out)" $rc 0
	serve_end_on_veth "gro $1"
	check "gro $1: every frame back once everything closed ($(grep -o 'check-mem.*' "$SLOG" | head -c 300))" \
		grep -q 'check-mem ok' "$SLOG"
	check "gro $1: no sanitizer report in the server's log" \
		bash -c "! grep -qE 'ERROR: AddressSanitizer|runtime error:' '$SLOG'"
}

run_echo on
merged=$(counter tcp_gro_merged)
flushed=$(counter tcp_gro_flushed)
zc=$(counter rx_zerocopy)
check "gro on: segments were merged (tcp_gro_merged $merged of rx_zerocopy $zc)" \
	test "${merged:-0}" -gt 0
check "gro on: held runs went on at their burst's end (tcp_gro_flushed $flushed)" \
	test "${flushed:-0}" -gt 0

run_echo off
merged=$(counter tcp_gro_merged)
flushed=$(counter tcp_gro_flushed)
expect_eq "gro off: nothing merged (tcp_gro_merged $merged)" "${merged:-x}" 0
expect_eq "gro off: nothing held (tcp_gro_flushed $flushed)" "${flushed:-x}" 0

out=$(nss "$B/l3x-serve" --iface "$IF_S" --rule "tcp $ADDR4_S $PORT" --mode echo \
	--gro maybe 2>&1)
rc=$?
check "gro: --gro maybe is refused naming the option ($rc: $out)" \
	test "$rc" -ne 0 -a -n "$(grep -- '--gro' <<<"$out")"

[ "$FAILS" = 0 ]
