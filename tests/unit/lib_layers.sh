#!/usr/bin/env bash
# lib_layers.sh - lib/ has no import circle: the files of the library call
# each other in layers (a DAG), as lwIP's core never calls its netif
# drivers. The call graph comes from the objects themselves: file A imports
# file B when A's object leaves a symbol undefined that B's object defines
# (nm). tsort finds a loop if there is one.
#
# Prints "ok NAME" / "not ok NAME: why" like the integration scripts, and
# "# " lines with the graph: every file, then the files it imports.
# B=BUILD_DIR (default build) after "make".
set -u
B=${B:-build}
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The source a build/obj/lib/... object comes from: lib/x.c or lib/x.S;
# nothing for the object of a source that is gone.
src_of() {
	local rel=${1#"$B"/obj/}
	rel=${rel%.o}
	if [ -f "$rel.c" ]; then echo "$rel.c"; elif [ -f "$rel.S" ]; then echo "$rel.S"; fi
}

OBJS=()
for o in "$B"/obj/lib/*.o "$B"/obj/lib/lwip/*.o; do
	[ -f "$o" ] && [ -n "$(src_of "$o")" ] && OBJS+=("$o")
done
if [ "${#OBJS[@]}" -lt 10 ]; then
	echo "not ok lib_layers: no library objects under $B/obj/lib (run make first)"
	exit 1
fi

for o in "${OBJS[@]}"; do
	f=$(src_of "$o")
	nm -g --defined-only "$o" | awk -v f="$f" 'NF == 3 { print $3, f }'
done | sort -u >"$WORK/defs"
for o in "${OBJS[@]}"; do
	f=$(src_of "$o")
	nm -u "$o" | awk -v f="$f" '{ print $NF, f }'
done | sort -u >"$WORK/uses"

# "importer imported" for every symbol one lib file takes from another.
join "$WORK/uses" "$WORK/defs" | awk '$2 != $3 { print $2, $3 }' | sort -u \
	>"$WORK/edges"

awk '{ a[$1] = a[$1] " " $2 } END { for (f in a) print "# " f " ->" a[f] }' \
	"$WORK/edges" | sort

if ! tsort "$WORK/edges" >"$WORK/order" 2>"$WORK/loop"; then
	loop=$(sed -n 's/^tsort: \(lib\/.*\)$/\1/p' "$WORK/loop" | tr '\n' ' ')
	echo "not ok lib_layers: an import circle in lib/: $loop"
	exit 1
fi
echo "# top to bottom: $(tr '\n' ' ' <"$WORK/order")"
echo "ok lib_layers: no import circle among $(wc -l <"$WORK/order") files of lib/"
