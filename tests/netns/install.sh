#!/usr/bin/env bash
# install.sh - what we ship: only l3x_* exported (lwIP and the rest hidden,
# in the shared and the static library), a soname, and an install tree that
# a program builds and links against with pkg-config, shared and static.
set -u
B=${B:-build}
B=$(cd "$B" && pwd)
WORK=$(mktemp -d /tmp/l3x-install.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FAILS=0
ok() { echo "ok $*"; }
not_ok() { echo "not ok $*"; FAILS=$((FAILS + 1)); }
cd "$(dirname "$0")/../.."
# A sanitized build (make SANITIZE=...) needs its runtime in every program
# that links it: the consumer is built with the same -fsanitize flags.
SAN=$(cat "$B/.sanitize" 2>/dev/null)
SAN_CFLAGS=${SAN:+-fsanitize=$SAN -fno-sanitize-recover=all}

bad=$(nm -D --defined-only "$B/libl3x.so" | awk '{print $3}' | grep -v '^l3x_' | grep -v '^L3X_' | head -5)
[ -z "$bad" ] && ok "libl3x.so exports only l3x_* symbols" ||
	not_ok "libl3x.so exports non-l3x symbols: $bad"
nm -D --defined-only "$B/libl3x.so" | grep -q ' l3x_capture__open' &&
	ok "libl3x.so exports the API" || not_ok "libl3x.so lacks l3x_capture__open"
readelf -d "$B/libl3x.so" | grep -q 'SONAME.*libl3x.so.0' &&
	ok "libl3x.so has soname libl3x.so.0" || not_ok "libl3x.so: no soname libl3x.so.0"
bad=$(nm --defined-only -g "$B/libl3x.a" 2>/dev/null | awk 'NF==3 {print $3}' | grep -v '^l3x_' | head -5)
[ -z "$bad" ] && ok "libl3x.a has no global symbol but l3x_* (lwIP localised)" ||
	not_ok "libl3x.a leaks globals: $bad"

if make -s install DESTDIR="$WORK/root" PREFIX=/usr >"$WORK/install.log" 2>&1; then
	ok "make install DESTDIR= PREFIX= succeeds"
else
	not_ok "make install failed: $(tail -n 3 "$WORK/install.log" | tr '\n' ' ')"
fi
for f in usr/include/l3x/l3x.h usr/lib/libl3x.so.0 usr/lib/libl3x.a usr/lib/pkgconfig/l3x.pc \
	usr/lib/bpf/l3x.bpf.o usr/sbin/l3x-capture usr/sbin/l3x-ctl usr/share/man/man3/l3x.3 \
	usr/share/man/man8/l3x-capture.8; do
	[ -e "$WORK/root/$f" ] && ok "installed /$f" || not_ok "not installed: /$f"
done
# The benchmark harness (tools/l3x-bench/) is built, never installed.
for t in l3x-load l3x-kserve l3x-flood l3x-bench; do
	if [ -e "$WORK/root/usr/sbin/$t" ] || [ -e "$WORK/root/usr/share/man/man8/$t.8" ]; then
		not_ok "harness installed: $t"
	else
		ok "harness not installed: $t"
	fi
done

cat >"$WORK/app.c" <<'C'
#include <stdio.h>
#include <l3x/l3x.h>
int main(void)
{
	struct l3x_rule r;
	char buf[L3X_RULE_STRLEN], err[128];

	if (l3x_rule__parse(&r, "tcp 198.51.100.0/24 80", err, sizeof(err)))
		return 1;
	l3x_rule__format(&r, buf, sizeof(buf));
	puts(buf);
	return 0;
}
C
export PKG_CONFIG_SYSROOT_DIR="$WORK/root" PKG_CONFIG_LIBDIR="$WORK/root/usr/lib/pkgconfig:/usr/lib/x86_64-linux-gnu/pkgconfig:/usr/share/pkgconfig"
if gcc $SAN_CFLAGS -o "$WORK/app" "$WORK/app.c" $(pkg-config --cflags --libs l3x) 2>"$WORK/cc.log" &&
	[ "$(LD_LIBRARY_PATH=$WORK/root/usr/lib "$WORK/app")" = "tcp 198.51.100.0/24 80" ]; then
	ok "a program builds against the installed tree (pkg-config, shared) and runs"
else
	not_ok "shared build against the install failed: $(head -c 300 "$WORK/cc.log")"
fi
if gcc $SAN_CFLAGS -static-libgcc -o "$WORK/app-static" "$WORK/app.c" $(pkg-config --cflags l3x) \
	"$WORK/root/usr/lib/libl3x.a" $(pkg-config --libs --static libxdp libbpf) -lelf -lz -lpthread 2>"$WORK/cc2.log" &&
	[ "$("$WORK/app-static")" = "tcp 198.51.100.0/24 80" ]; then
	ok "a program links the static library and runs"
else
	not_ok "static build against the install failed: $(head -c 300 "$WORK/cc2.log")"
fi
[ "$FAILS" = 0 ]
