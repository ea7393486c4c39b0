#!/usr/bin/env bash
# api_docs.sh - the public API is finished only when every exported function
# is listed by name in lib/libl3x.map, declared in include/l3x/l3x.h and has
# a SYNOPSIS line in one man page under man/, and those pages render cleanly.
# Checked against what build/libl3x.so really exports (nm -D), both ways, so
# that neither an undocumented export nor a page for a function that is gone
# passes. Also: every field of a public struct and every L3X_ name appears in
# some page, SEE ALSO points at pages that exist, and the examples (whole
# programs) compile and link against the built library.
# Needs a build (make); no root, no network.
set -u
B=${B:-build}
cd "$(dirname "$0")/../.." || exit 1
FAILS=0
ok() { echo "ok $*"; }
not_ok() { echo "not ok $*"; FAILS=$((FAILS + 1)); }
skip() { echo "skip $*"; }
WORK=$(mktemp -d /tmp/l3x-api-docs.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

MAP=lib/libl3x.map
HDR=include/l3x/l3x.h
SO=$B/libl3x.so
PAGES=(man/*.3)

# words FILE: its lines as one space-separated list (for messages).
words() { tr '\n' ' ' <"$1" | sed 's/ $//'; }
# missing A B: names in sorted list A that are not in sorted list B.
missing() { comm -23 "$1" "$2"; }
# check_none NAME LIST WHY: ok when LIST is empty, else not ok naming them.
check_none() {
	if [ -s "$2" ]; then not_ok "$1: $3: $(words "$2")"; else ok "$1"; fi
}

if [ ! -e "$SO" ]; then
	not_ok "api: $SO missing (run make first)"
	exit 1
fi

# ------------------------------------------------------------ the lists
# Exported: every defined dynamic symbol but the version node itself
# (an absolute symbol named after the node).
nm -D --defined-only "$SO" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
	sort -u >"$WORK/exported"

# The map: names in its global: part. A glob there would export by accident.
awk '/^[[:space:]]*global:/ { g = 1; next }
     /^[[:space:]]*local:/ { g = 0 }
     g' "$MAP" | sed 's,/\*.*\*/,,' | tr -d ' \t' | grep -v '^$' >"$WORK/map-raw"
grep -vE '^[A-Za-z_][A-Za-z0-9_]*;$' "$WORK/map-raw" >"$WORK/map-bad"
sed -n 's/;$//p' "$WORK/map-raw" | sort >"$WORK/map-all"
sort -u "$WORK/map-all" >"$WORK/map"
comm -23 "$WORK/map-all" "$WORK/map" >"$WORK/map-dup"

# The header: every function declared L3X_API (name: the identifier before
# the first '(' after L3X_API, the declaration may span lines).
tr '\n' ' ' <"$HDR" | grep -oE 'L3X_API[^;(]*\(' |
	grep -oE 'l3x_[a-z0-9_]+[[:space:]]*\($' | tr -d ' (' | sort -u >"$WORK/header"

# ------------------------------------------------------------ the map
n=$(wc -l <"$WORK/exported")
if [ "$n" -gt 0 ] && [ -z "$(missing "$WORK/exported" "$WORK/map")" ]; then
	ok "api: all $n symbols libl3x.so exports are named in $MAP"
else
	not_ok "api: exported but not named in $MAP: $(missing "$WORK/exported" "$WORK/map" | tr '\n' ' ')"
fi
missing "$WORK/map" "$WORK/exported" >"$WORK/x"
check_none "api: every name in $MAP is exported" "$WORK/x" "named in the map, not exported"
# Nodes: L3X_0.1 first; a later release adds its own node after it.
grep -E '^[A-Za-z_][A-Za-z0-9_.]*[[:space:]]*\{' "$MAP" | tr -d ' \t{' >"$WORK/nodes"
if [ "$(head -n1 "$WORK/nodes")" = L3X_0.1 ] && ! grep -qvE '^L3X_[0-9.]+$' "$WORK/nodes" &&
	tr -d ' \t\n' <"$MAP" | grep -q 'local:\*;};' &&
	[ ! -s "$WORK/map-bad" ] && [ ! -s "$WORK/map-dup" ]; then
	ok "api: $MAP: nodes L3X_0.1 onwards, names only, each once, local: *"
else
	not_ok "api: $MAP must read L3X_0.1 { global: NAME; ... local: *; }: nodes: $(words "$WORK/nodes"), not names: $(words "$WORK/map-bad"), twice: $(words "$WORK/map-dup")"
fi

# ------------------------------------------------------------ the header
missing "$WORK/exported" "$WORK/header" >"$WORK/x"
check_none "api: every exported symbol is declared L3X_API in $HDR" "$WORK/x" "not declared"
missing "$WORK/header" "$WORK/exported" >"$WORK/x"
check_none "api: every L3X_API function of $HDR is exported" "$WORK/x" "declared, not exported"

# ------------------------------------------------------------ the pages
if ! command -v groff >/dev/null; then
	skip "api: man pages: groff is not installed (Debian: groff-base), cannot read them"
	exit $((FAILS > 0))
fi

# render PAGE: plain text, wide, no hyphenation games, no escapes.
render() { groff -man -Tascii -P-cbou -rLL=250n "$1" 2>/dev/null; }
# section NAME < text: the lines of one top-level section.
section() { awk -v s="$1" '/^[A-Z]/ { in_s = ($0 == s); next } in_s'; }

: >"$WORK/synopsis"
for p in "${PAGES[@]}"; do
	render "$p" >"$WORK/$(basename "$p").txt"
	# A SYNOPSIS line declares a function: "RET name(" or "RET *name(";
	# names inside comments (of struct fields) are not declarations.
	section SYNOPSIS <"$WORK/$(basename "$p").txt" |
		sed 's,/\*.*\*/,,' | grep -oE '(^|[ *])l3x_[a-z0-9_]+\(' | tr -d ' *(' |
		sed "s|\$| $p|" >>"$WORK/synopsis"
done
cut -d' ' -f1 "$WORK/synopsis" | sort -u >"$WORK/documented"

missing "$WORK/exported" "$WORK/documented" >"$WORK/x"
if [ ! -s "$WORK/x" ]; then
	ok "api: all $n exported symbols have a SYNOPSIS line in man/ (${#PAGES[@]} pages)"
else
	not_ok "api: exported without a SYNOPSIS line in man/: $(words "$WORK/x")"
fi
missing "$WORK/documented" "$WORK/exported" >"$WORK/x"
check_none "api: every function in a SYNOPSIS is exported" "$WORK/x" "documented, not exported"
sort -u "$WORK/synopsis" | cut -d' ' -f1 | uniq -d >"$WORK/x"
check_none "api: each function has its SYNOPSIS line in one page only" "$WORK/x" "in two pages"

# NAME lists the page's functions (whatis, apropos and the alias pages read it).
: >"$WORK/x"
while read -r f p; do
	section NAME <"$WORK/$(basename "$p").txt" | tr ',' ' ' | grep -qw -- "$f" ||
		echo "$f ($p)" >>"$WORK/x"
done <"$WORK/synopsis"
check_none "api: every SYNOPSIS function is in its page's NAME" "$WORK/x" "missing from NAME"

# Every field of a public struct, every L3X_ constant and macro: in a page.
cat "$WORK"/*.3.txt >"$WORK/all.txt"
awk '/^(struct|union) l3x_[a-z0-9_]+ \{/ { s = 1; next }
     s && /^\};/ { s = 0 }
     s && /^\t+[a-z_][^:]*[ *]([a-z_][a-z0-9_]*)(\[[A-Z0-9_]+\])?;/ {
	sub(/;.*/, ""); sub(/\[.*/, ""); n = split($0, w, /[ \t*]+/); print w[n] }' "$HDR" |
	sort -u >"$WORK/fields"
{ grep -oE '^#define L3X_[A-Z0-9_]+' "$HDR" | cut -d' ' -f2
  grep -oE '^[[:space:]]+L3X_[A-Z0-9_]+[[:space:]]*(=|,)' "$HDR" | tr -d ' \t=,'
} | grep -vE '^L3X_(L3X_H|API)$' | sort -u >"$WORK/consts"
: >"$WORK/x"
while read -r w; do grep -qw -- "$w" "$WORK/all.txt" || echo "$w" >>"$WORK/x"; done <"$WORK/fields"
check_none "api: every field of the public structs ($(wc -l <"$WORK/fields")) is in a page" "$WORK/x" "undocumented fields"
: >"$WORK/x"
while read -r w; do grep -qw -- "$w" "$WORK/all.txt" || echo "$w" >>"$WORK/x"; done <"$WORK/consts"
check_none "api: every L3X_ constant and macro ($(wc -l <"$WORK/consts")) is in a page" "$WORK/x" "undocumented"

# Rendering: groff's warnings (all of them) and the NAME line mandb reads.
for p in "${PAGES[@]}"; do
	w=$(groff -ww -man -z "$p" 2>&1)
	if [ -z "$w" ]; then
		ok "api: $p renders without groff warnings"
	else
		not_ok "api: $p: groff warns: $(echo "$w" | head -n 3 | tr '\n' ' ')"
	fi
	if ! command -v lexgrog >/dev/null; then
		skip "api: $p: NAME not checked: lexgrog is not installed (Debian: man-db)"
	elif lexgrog "$p" >/dev/null 2>&1; then
		ok "api: $p: lexgrog reads its NAME"
	else
		not_ok "api: $p: lexgrog cannot read its NAME section"
	fi
done

# SEE ALSO: every l3x page it names exists (man/*.3, tools/*/*.8).
: >"$WORK/x"
for p in "${PAGES[@]}"; do
	section "SEE ALSO" <"$WORK/$(basename "$p").txt" |
		grep -oE 'l3x[a-z0-9_-]*\([0-9]\)' | while read -r ref; do
		name=${ref%(*} sec=${ref#*(}
		sec=${sec%)}
		[ -e "man/$name.$sec" ] || [ -n "$(find tools -name "$name.$sec" 2>/dev/null)" ] ||
			echo "$ref in $p"
	done >>"$WORK/x"
done
check_none "api: SEE ALSO names only l3x pages that exist" "$WORK/x" "no such page"

# ------------------------------------------------------------ the examples
# Each EXAMPLES block holding "int main(" is a whole program: it must build
# with the project's warnings against the header and link against the
# library, so an example cannot drift from the API.
if ! grep -q L3X_CPU_NONE "$HDR"; then
	skip "api: examples compile: $HDR predates issue 9's API (no L3X_CPU_NONE) that the pages describe"
else
	for p in "${PAGES[@]}"; do
		base=$(basename "$p" .3)
		section EXAMPLES <"$WORK/$base.3.txt" | awk -v out="$WORK/ex-$base-" '
			function flush() { if (blk ~ /int main\(/) { n++; printf "%s", blk > (out n ".c"); close(out n ".c") } blk = "" }
			/^           / { blk = blk substr($0, 12) "\n"; next }
			/^$/ { if (blk != "") blk = blk "\n"; next }
			{ flush() }
			END { flush() }'
	done
	for c in "$WORK"/ex-*.c; do
		[ -e "$c" ] || { not_ok "api: no EXAMPLES program found in man/"; break; }
		name=$(basename "$c" .c)
		if gcc -std=gnu11 -Wall -Wextra -Werror -Iinclude -o "$WORK/a.out" "$c" "$SO" -lpthread \
			2>"$WORK/cc.log"; then
			ok "api: ${name#ex-}: the example builds against the library"
		else
			not_ok "api: ${name#ex-}: the example does not build: $(grep -m1 error "$WORK/cc.log")"
		fi
	done
fi

exit $((FAILS > 0))
