# l3x - one plain Makefile. Quiet by default; V=1 shows the commands.
#
#   make                build everything into build/ (never installs anything)
#   make deps           install what is missing (apt) and fetch lwIP 2.2.1
#   make test           every test (runs 'make deps' first when needed)
#   make install        DESTDIR= PREFIX= (default /usr/local): the library and
#                       the tools in tools/NAME/, not the harness in tools/l3x-bench/
#   make SANITIZE=address,undefined test
#                       the same suite under ASan+UBSan, built in build-san/
#                       (B=DIR: another directory); a sanitizer report in any
#                       test or tool it starts fails the run (tests/run-all)
#   make tsan           the ThreadSanitizer drivers (tests/tsan/: the ring,
#                       the engine -> worker handoff), built and run in
#                       build-tsan/ (TSAN_B=DIR: another directory)
#   tests/run-all DIR SUITE NAME...   some tests again, as the suite runs
#                       them: tests/run-all build-san netns serve.sh
#
# A build directory keeps the SANITIZE it was built with ($(B)/.sanitize):
# later makes in it (make B=build-san install) use it unless SANITIZE= is
# given, and objects are rebuilt when it changes.
#
# lwIP comes from LWIP_SRC (default deps/lwip-2.2.1, fetched by make deps);
# it is copied into build/lwip-src and our patches (lib/lwip/patches/series)
# are applied there. The fetched tree itself is never modified.

VERSION     := 0.1.0
SOVERSION   := 0
PREFIX      ?= /usr/local
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
BINDIR      ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
BPFDIR      ?= $(PREFIX)/lib/bpf
DESTDIR     ?=

# B: the build directory; the sanitized build has its own, so that the
# plain and sanitized builds do not clobber each other.
ifeq ($(origin B),undefined)
B           := $(if $(SANITIZE),build-san,build)
endif
ifeq ($(origin SANITIZE),undefined)
SANITIZE    := $(shell cat $(B)/.sanitize 2>/dev/null)
endif
LWIP_SRC    ?= deps/lwip-2.2.1
LWIP_TREE   := $(B)/lwip-src

CC          ?= gcc
CLANG       ?= clang
ARCH_INC    := /usr/include/$(shell $(CC) -print-multiarch)

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif

# Any report stops the program (-fno-sanitize-recover): a run that goes on
# after one could pass.
SAN_FLAGS   := $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
		 -fno-sanitize-recover=all)
PKG_LIBS    := $(shell pkg-config --libs libxdp libbpf 2>/dev/null || echo -lxdp -lbpf) -lelf -lz
WARN        := -Wall -Wextra -Werror
CFLAGS      ?= -O2 -g
BASE_CFLAGS := -std=gnu11 $(WARN) -fPIC -fvisibility=hidden -MMD -MP $(SAN_FLAGS) \
	       -D_GNU_SOURCE -Iinclude -Ilib
LDFLAGS     += $(SAN_FLAGS)
LIBS        := $(PKG_LIBS) -lpthread

LWIP_INC    := -Ilib/lwip -Ilib/lwip/port -I$(LWIP_TREE)/src/include
LWIP_CFLAGS := -std=gnu11 -fPIC -fvisibility=hidden -MMD -MP $(SAN_FLAGS) -Wall -Wno-unused-variable \
	       -Wno-address $(LWIP_INC)

# ------------------------------------------------------------ sources
LIB_SRCS    := $(wildcard lib/*.c) $(wildcard lib/lwip/*.c)
LIB_OBJS    := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRCS)) $(B)/obj/lib/bpf_obj.o
LWIP_DIRS   := src/core src/core/ipv4 src/core/ipv6
LWIP_OBJS    = $(patsubst $(LWIP_TREE)/%.c,$(B)/obj/lwip/%.o,\
		 $(foreach d,$(LWIP_DIRS),$(wildcard $(LWIP_TREE)/$(d)/*.c)))
BPF_SRCS    := $(wildcard bpf/*.bpf.c)
BPF_OBJS    := $(patsubst bpf/%.bpf.c,$(B)/%.bpf.o,$(BPF_SRCS))
# Product tools: tools/NAME/NAME.c, installed. The benchmark harness:
# tools/l3x-bench/NAME/NAME.c, built beside them in build/, never installed.
TOOLS       := $(patsubst tools/%/,%,$(dir $(wildcard tools/*/l3x-*.c)))
BENCH_TOOLS := $(patsubst tools/l3x-bench/%/,%,$(dir $(wildcard tools/l3x-bench/*/l3x-*.c)))
TOOL_BINS   := $(addprefix $(B)/,$(TOOLS))
BENCH_BINS  := $(addprefix $(B)/,$(BENCH_TOOLS))
# Tests: tests/unit/ runs without root, tests/netns/ needs it (namespaces,
# TUN, veth, AF_XDP, BPF); build/tests/{unit,netns}/test_NAME.
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
NETNS_SRCS  := $(wildcard tests/netns/test_*.c)
UNIT_BINS   := $(patsubst tests/%.c,$(B)/tests/%,$(UNIT_SRCS))
NETNS_BINS  := $(patsubst tests/%.c,$(B)/tests/%,$(NETNS_SRCS))
TEST_BINS   := $(UNIT_BINS) $(NETNS_BINS)

.PHONY: all deps deps-check test unit-test netns-test integration-test tsan tsan-build \
	fuzz fuzz-build fuzz-smoke \
	install uninstall clean distclean format format-check compile_commands.json lwip-tree \
	lib-layers
.DEFAULT_GOAL := all
.SECONDARY:

# Plain make never installs: stop with one line naming what is missing.
NEEDS_DEPS := $(filter-out deps deps-check test tsan fuzz fuzz-smoke clean distclean format format-check uninstall,\
		$(or $(MAKECMDGOALS),all))
ifneq ($(NEEDS_DEPS),)
DEPS_MISSING := $(shell LWIP_SRC=$(LWIP_SRC) scripts/deps.sh --check)
ifneq ($(DEPS_MISSING),)
$(error $(DEPS_MISSING))
endif
endif

all: $(B)/libl3x.so $(B)/libl3x.a $(B)/l3x.pc $(BPF_OBJS) $(TOOL_BINS) $(BENCH_BINS)

deps:
	$(Q)LWIP_SRC=$(LWIP_SRC) scripts/deps.sh --install

deps-check:
	$(Q)LWIP_SRC=$(LWIP_SRC) scripts/deps.sh --check

# $(B)/.sanitize: the sanitizers of this build directory. Rewritten only
# when they change, so that every object depending on it is rebuilt then
# and only then.
SAN_STAMP := $(B)/.sanitize
.PHONY: FORCE
$(SAN_STAMP): FORCE
	@mkdir -p $(@D)
	$(Q)[ -e $@ ] && [ "$$(cat $@)" = "$(SANITIZE)" ] || echo "$(SANITIZE)" > $@

# ------------------------------------------------------------ lwIP tree
# A stamp holds the tree: copy the fetched source, apply our patches.
LWIP_PATCHES := $(wildcard lib/lwip/patches/*.patch)
$(B)/.lwip-tree: lib/lwip/patches/series $(LWIP_PATCHES)
	$(call msg,LWIP,$(LWIP_SRC))
	$(Q)rm -rf $(LWIP_TREE) && mkdir -p $(B) && cp -r $(LWIP_SRC) $(LWIP_TREE)
	$(Q)for p in $$(grep -v '^#' lib/lwip/patches/series); do \
		patch -s -d $(LWIP_TREE) -p1 < lib/lwip/patches/$$p || exit 1; done
	$(Q)touch $@

lwip-tree: $(B)/.lwip-tree

# The tree does not exist when this Makefile is read on a clean clone, and
# make caches directory listings, so $(wildcard) here would see nothing:
# the objects are built by a sub-make that reads the new tree, and the
# archive lists them with the shell.
$(B)/liblwip.a: $(B)/.lwip-tree lib/lwip/lwipopts.h $(SAN_STAMP)
	$(Q)$(MAKE) -s --no-print-directory B=$(B) SANITIZE=$(SANITIZE) lwip-objs
	$(Q)rm -f $@ && ar rcs $@ $$(cd $(LWIP_TREE) && for d in $(LWIP_DIRS); do \
		for c in $$d/*.c; do echo $(B)/obj/lwip/$${c%.c}.o; done; done)
	$(Q)test $$(ar t $@ | wc -l) -gt 20 || { echo "liblwip.a: too few objects" >&2; exit 1; }

.PHONY: lwip-objs
lwip-objs: $(LWIP_OBJS)

$(B)/obj/lwip/%.o: $(LWIP_TREE)/%.c lib/lwip/lwipopts.h $(SAN_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(LWIP_CFLAGS) -c $< -o $@

# ------------------------------------------------------------ BPF
$(B)/%.bpf.o: bpf/%.bpf.c bpf/l3x_shared.h
	@mkdir -p $(@D)
	$(call msg,BPF,$<)
	$(Q)$(CLANG) -O2 -g -Wall -Werror -target bpf -I bpf -I$(ARCH_INC) -c $< -o $@

# The library carries its own steering object, so no path has to be found
# at run time; build/l3x.bpf.o is installed too, for xdp-loader.
$(B)/obj/lib/bpf_obj.o: lib/bpf_obj.S $(B)/l3x.bpf.o
	@mkdir -p $(@D)
	$(call msg,AS,$<)
	$(Q)$(CC) -c $< -o $@ -DL3X_BPF_OBJ_PATH='"$(B)/l3x.bpf.o"'

# ------------------------------------------------------------ library
$(B)/obj/lib/lwip/%.o: lib/lwip/%.c $(B)/.lwip-tree $(SAN_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(BASE_CFLAGS) $(LWIP_INC) -c $< -o $@

$(B)/obj/lib/%.o: lib/%.c $(B)/.lwip-tree $(SAN_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(BASE_CFLAGS) $(LWIP_INC) -c $< -o $@

# Tests reach hidden functions through the raw objects.
$(B)/libl3x-internal.a: $(LIB_OBJS) $(B)/liblwip.a
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcsT $@ $(LIB_OBJS) $(B)/liblwip.a

# The static library is one relocatable object with every hidden symbol
# made local, so lwIP's names cannot clash with the application's.
$(B)/libl3x.a: $(LIB_OBJS) $(B)/liblwip.a
	$(call msg,AR,$@)
	$(Q)ld -r -o $(B)/obj/l3x-all.o $(LIB_OBJS) --whole-archive $(B)/liblwip.a
	$(Q)objcopy --localize-hidden $(B)/obj/l3x-all.o
	$(Q)rm -f $@ && ar rcs $@ $(B)/obj/l3x-all.o

$(B)/libl3x.so.$(VERSION): $(LIB_OBJS) $(B)/liblwip.a lib/libl3x.map
	$(call msg,LD,$@)
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,-soname,libl3x.so.$(SOVERSION) \
		-Wl,--version-script=lib/libl3x.map -Wl,--no-undefined \
		-o $@ $(LIB_OBJS) $(B)/liblwip.a $(LIBS)

$(B)/libl3x.so: $(B)/libl3x.so.$(VERSION)
	$(Q)ln -sf libl3x.so.$(VERSION) $(B)/libl3x.so.$(SOVERSION)
	$(Q)ln -sf libl3x.so.$(VERSION) $@

# The .pc names the prefix; install writes it again with its own PREFIX.
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	     -e 's|@VERSION@|$(VERSION)|'
$(B)/l3x.pc: lib/l3x.pc.in Makefile
	$(call msg,GEN,$@)
	$(Q)$(PC_SED) $< > $@

# ------------------------------------------------------------ tools
# Tools link the static library, so they run from build/ as they are. They
# see the public header and tools/common only, never lib/'s internals.
TOOL_CFLAGS := $(filter-out -Ilib,$(BASE_CFLAGS)) -Itools/common
$(B)/obj/tools/%.o: tools/%.c $(SAN_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(TOOL_CFLAGS) -c $< -o $@

# tools/common: what the tools share, one static library linked into each.
TOOLS_COMMON := $(patsubst %.c,$(B)/obj/%.o,$(wildcard tools/common/*.c))
$(B)/libtools.a: $(TOOLS_COMMON)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# tool_rule NAME DIR: build/NAME from DIR/NAME/NAME.c.
define tool_rule
$(B)/$(1): $(B)/obj/$(2)/$(1)/$(1).o $(B)/libtools.a $(B)/libl3x.a
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$< $(B)/libtools.a $(B)/libl3x.a $$(LIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t),tools)))
$(foreach t,$(BENCH_TOOLS),$(eval $(call tool_rule,$(t),tools/l3x-bench)))

# ------------------------------------------------------------ tests
# Every test sees lib/'s internals, lwIP's headers, the rule table of
# tests/unit and tools/common (the one Internet checksum, csum.c).
$(B)/obj/tests/%.o: tests/%.c $(B)/.lwip-tree $(SAN_STAMP)
	@mkdir -p $(@D)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(BASE_CFLAGS) $(LWIP_INC) -I$(<D) -Itests/unit -Itools/common \
		-DL3X_BPF_OBJ='"$(abspath $(B)/l3x.bpf.o)"' -DL3X_BUILD='"$(abspath $(B))"' \
		-c $< -o $@

TEST_CSUM   := $(B)/obj/tools/common/csum.o
# tests/unit/test_proto.c: the tools' HTTP answers (proto.c, with addr.c).
TEST_PROTO  := $(B)/obj/tools/common/proto.o $(B)/obj/tools/common/addr.o
# tests/netns/helpers.c: the namespace, TUN, kernel-client and stack
# harness that the netns tests share.
NETNS_HELPERS := $(patsubst tests/%.c,$(B)/obj/tests/%.o,$(wildcard tests/netns/helpers.c))

# tests/unit/test_crew.c: the rest of tools/common, from libtools.a (a
# member is linked only where a test calls into it).
$(B)/tests/unit/%: $(B)/obj/tests/unit/%.o $(TEST_CSUM) $(TEST_PROTO) $(B)/libtools.a \
		$(B)/libl3x-internal.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(B)/libtools.a $(B)/libl3x-internal.a \
		-lcriterion $(LIBS)

$(B)/tests/netns/%: $(B)/obj/tests/netns/%.o $(NETNS_HELPERS) $(TEST_CSUM) \
		$(B)/libl3x-internal.a $(BPF_OBJS)
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter-out %.bpf.o,$(filter %.o,$^)) $(B)/libl3x-internal.a -lcriterion $(LIBS)

# The fault test's wire and client (tests/fault): test-only, not installed.
FAULT_BINS  := $(B)/tests/fault-middle $(B)/tests/fault-client
$(FAULT_BINS): $(B)/tests/%: tests/fault/%.c tests/fault/fault.h
	@mkdir -p $(@D)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(BASE_CFLAGS) $(LDFLAGS) -o $@ $< -lcrypto

tests-build: all $(TEST_BINS) $(FAULT_BINS)

test:
	$(Q)LWIP_SRC=$(LWIP_SRC) scripts/deps.sh --check >/dev/null || $(MAKE) --no-print-directory deps
	$(Q)$(MAKE) --no-print-directory tests-build
	$(Q)tests/run-all $(B)

# Without root: needs only the library's objects (lib_layers.sh reads them)
# and the unit binaries.
unit-test: $(LIB_OBJS) $(UNIT_BINS)
	$(Q)tests/run-all $(B) unit

netns-test: tests-build
	$(Q)tests/run-all $(B) netns

integration-test: netns-test	# the old name of netns-test

# ThreadSanitizer: criterion cannot start under TSan, so tests/tsan/*.c are
# plain programs printing ok / not ok lines (the ring with two threads, the
# engine -> worker handoff), built with the library and lwIP under
# -fsanitize=thread in a directory of their own and run by tests/run-all.
TSAN_B      ?= build-tsan
TSAN_SRCS   := $(wildcard tests/tsan/*.c)
TSAN_BINS   := $(patsubst tests/%.c,$(B)/tests/%,$(TSAN_SRCS))

$(B)/tests/tsan/%: $(B)/obj/tests/tsan/%.o $(TEST_CSUM) $(B)/libl3x-internal.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(B)/libl3x-internal.a $(LIBS)

tsan-build: $(TSAN_BINS)

tsan:
	$(Q)LWIP_SRC=$(LWIP_SRC) scripts/deps.sh --check >/dev/null || $(MAKE) --no-print-directory deps
	$(Q)$(MAKE) --no-print-directory B=$(TSAN_B) SANITIZE=thread tsan-build
	$(Q)tests/run-all $(TSAN_B) tsan

# libFuzzer (tests/fuzz/): each tests/fuzz/fuzz_NAME.c is a target,
# built with the library and lwIP by clang under
# -fsanitize=fuzzer,address,undefined in a directory of its own, and run
# by tests/fuzz/run over its seed corpus (tests/fuzz/corpus/NAME/).
#   make fuzz FUZZ_SECONDS=N   every target for N seconds (default 60)
#   make fuzz-smoke            every target over its seeds, then
#                              FUZZ_SMOKE_SECONDS (default 10) each
FUZZ_B      ?= build-fuzz
FUZZ_CC     ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS   := $(patsubst tests/%.c,$(B)/tests/%,$(FUZZ_SRCS))

$(B)/tests/fuzz/%: $(B)/obj/tests/fuzz/%.o $(TEST_CSUM) $(B)/libl3x-internal.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(B)/libl3x-internal.a $(LIBS)

fuzz-build: $(FUZZ_BINS)

FUZZ_MAKE = $(MAKE) --no-print-directory B=$(FUZZ_B) CC=$(FUZZ_CC) \
	    SANITIZE=fuzzer-no-link,address,undefined fuzz-build

fuzz:
	$(Q)LWIP_SRC=$(LWIP_SRC) scripts/deps.sh --check >/dev/null || $(MAKE) --no-print-directory deps
	$(Q)$(FUZZ_MAKE)
	$(Q)tests/fuzz/run $(FUZZ_B) $(FUZZ_SECONDS)

fuzz-smoke:
	$(Q)LWIP_SRC=$(LWIP_SRC) scripts/deps.sh --check >/dev/null || $(MAKE) --no-print-directory deps
	$(Q)$(FUZZ_MAKE)
	$(Q)tests/fuzz/run --smoke $(FUZZ_B) $(FUZZ_SMOKE_SECONDS)

# lib/ has no import circle (also run by unit-test).
lib-layers: all
	$(Q)B=$(B) bash tests/unit/lib_layers.sh

# ------------------------------------------------------------ install
MAN3 := $(wildcard man/*.3)
MAN8 := $(foreach t,$(TOOLS),tools/$(t)/$(t).8)
# "FUNCTION PAGE" for every function with a SYNOPSIS line in man/*.3: each
# gets an alias page (".so man3/PAGE") so that "man l3x_stack__open" works,
# as liburing's and libbpf's functions do.
MAN3_FUNCS = for p in $(MAN3); do b=$$(basename $$p); \
	sed -n "/^\.SH SYNOPSIS/,/^\.SH /s/^\.BI \"[^\"]*[ *]\(l3x_[a-z0-9_]*\)(.*/\1 $$b/p" $$p; done

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/l3x \
		$(DESTDIR)$(BINDIR) $(DESTDIR)$(BPFDIR) $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man8
	install -m 644 include/l3x/*.h $(DESTDIR)$(INCLUDEDIR)/l3x/
	install -m 755 $(B)/libl3x.so.$(VERSION) $(DESTDIR)$(LIBDIR)/
	ln -sf libl3x.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libl3x.so.$(SOVERSION)
	ln -sf libl3x.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libl3x.so
	install -m 644 $(B)/libl3x.a $(DESTDIR)$(LIBDIR)/
	$(PC_SED) lib/l3x.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/l3x.pc
	install -m 644 $(BPF_OBJS) $(DESTDIR)$(BPFDIR)/
	$(if $(TOOL_BINS),install -m 755 $(TOOL_BINS) $(DESTDIR)$(BINDIR)/)
	$(if $(MAN3),install -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/)
	@$(MAN3_FUNCS) | while read f p; do [ -e man/$$f.3 ] || \
		printf '.so man3/%s\n' $$p > $(DESTDIR)$(MANDIR)/man3/$$f.3 || exit 1; done
	$(if $(MAN8),install -m 644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/)

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libl3x.so* $(DESTDIR)$(LIBDIR)/libl3x.a \
		$(DESTDIR)$(LIBDIR)/pkgconfig/l3x.pc $(DESTDIR)$(BPFDIR)/l3x.bpf.o
	rm -rf $(DESTDIR)$(INCLUDEDIR)/l3x
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(TOOLS))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man3/,$(notdir $(MAN3)))
	@$(MAN3_FUNCS) | while read f p; do [ -e man/$$f.3 ] || \
		rm -f $(DESTDIR)$(MANDIR)/man3/$$f.3; done
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8)))

# ------------------------------------------------------------ upkeep
clean:
	rm -rf $(B)

# Also the sanitized and TSan builds' default directories.
distclean: clean
	rm -rf deps build-san $(TSAN_B) $(FUZZ_B)

FMT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FMT_SRCS)

format-check:
	clang-format --dry-run --Werror $(FMT_SRCS)

compile_commands.json:
	$(MAKE) clean && bear -- $(MAKE) all tests-build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
