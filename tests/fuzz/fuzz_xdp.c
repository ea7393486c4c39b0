/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fuzz_xdp.c - libFuzzer target, differential: the XDP steering program
 * (the object the library embeds, run by BPF_PROG_TEST_RUN) against the
 * software matcher of the TUN and callback sources (l3x_ruleset_match).
 * The same rules and the same frame must get the same verdict: pass,
 * match or malformed.
 *
 * An input is rule text, one rule a line (at most four are used), a NUL
 * byte, then frames: u16 length (little-endian) and that many bytes of
 * Ethernet frame, in order, so that a first fragment's record in both
 * fragment tables decides the later fragments' verdict. Each input starts
 * from empty maps and an empty software ruleset.
 *
 * As in tests/netns/test_rules_table_xdp.c the object is loaded with
 * nothing pinned and l3x_xsks empty, so a frame the program takes comes
 * back XDP_PASS counted redirect_failed, and the counters tell the
 * verdicts apart. Needs root (CAP_BPF, CAP_NET_ADMIN): without it every
 * input is skipped and "fuzz_xdp: skipped: REASON" is printed once.
 * L3X_FUZZ_VERBOSE=1 prints each frame's verdict.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "l3x_internal.h"

#define FUZZ_NAME "fuzz_xdp"
#include "fuzz.h"

#define MAX_RULES  4
#define MAX_FRAMES 8
#define MAX_FRAME  1514 /* BPF_PROG_TEST_RUN takes up to about a page */
#define ETH_HLEN_  14

static const char *const verdict_name[] = { "pass", "match", "malformed" };

static struct {
	struct bpf_object *obj;
	struct l3x_maps maps;
	int prog_fd, ncpus;
	bool skip, verbose;
} X;

static int quiet(enum libbpf_print_level l, const char *fmt, va_list ap)
{
	(void)l;
	(void)fmt;
	(void)ap;
	return 0;
}

static int map_fd(const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(X.obj, name);

	CHECK(m);
	return bpf_map__fd(m);
}

static void skip(const char *why, int err)
{
	fprintf(stderr, "fuzz_xdp: skipped: %s: %s\n", why, strerror(err));
	X.skip = true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	size_t sz = (size_t)(l3x_bpf_obj_end - l3x_bpf_obj_start);
	struct bpf_program *prog;
	struct bpf_map *m;
	int err;

	(void)argc;
	(void)argv;
	libbpf_set_print(quiet);
	X.verbose = getenv("L3X_FUZZ_VERBOSE") &&
		    *getenv("L3X_FUZZ_VERBOSE") == '1';
	if (geteuid() != 0)
		return skip("needs root (CAP_BPF, CAP_NET_ADMIN) to load XDP",
			    EPERM),
		       0;
	X.obj = bpf_object__open_mem(l3x_bpf_obj_start, sz, NULL);
	CHECK(X.obj);
	/* Never pin, nor pick up the maps of a live l3x. */
	bpf_object__for_each_map(m, X.obj)
		CHECK(bpf_map__set_pin_path(m, NULL) == 0);
	err = bpf_object__load(X.obj);
	if (err)
		return skip("loading the XDP object", -err), 0;
	prog = bpf_object__find_program_by_name(X.obj, "l3x_xdp");
	CHECK(prog);
	X.prog_fd = bpf_program__fd(prog);
	X.maps.rules = map_fd("l3x_rules");
	X.maps.lpm4 = map_fd("l3x_lpm4");
	X.maps.lpm6 = map_fd("l3x_lpm6");
	X.maps.xsks = map_fd("l3x_xsks");
	X.maps.stats = map_fd("l3x_stats");
	X.maps.frags = map_fd("l3x_frags");
	X.ncpus = libbpf_num_possible_cpus();
	CHECK(X.ncpus > 0);
	return 0;
}

static void clear_map(int fd)
{
	uint8_t key[64];

	while (!bpf_map_get_next_key(fd, NULL, key))
		CHECK(bpf_map_delete_elem(fd, key) == 0);
}

static void read_counters(uint64_t out[L3X_CNT_MAX])
{
	uint64_t vals[X.ncpus];
	__u32 i;
	int c;

	for (i = 0; i < L3X_CNT_MAX; i++) {
		CHECK(bpf_map_lookup_elem(X.maps.stats, &i, vals) == 0);
		out[i] = 0;
		for (c = 0; c < X.ncpus; c++)
			out[i] += vals[c];
	}
}

/* The program's verdict: the one per-frame counter that moved. */
static enum l3x_verdict bpf_verdict(const uint8_t *f, size_t len)
{
	uint64_t b[L3X_CNT_MAX], a[L3X_CNT_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f,
		    .data_size_in = (__u32)len, .repeat = 1);
	enum l3x_verdict v = L3X_VERDICT_PASS;
	int moved = 0;

	read_counters(b);
	CHECK(bpf_prog_test_run_opts(X.prog_fd, &opts) == 0);
	CHECK(opts.retval == XDP_PASS);
	read_counters(a);
	if (a[L3X_CNT_PASSED] != b[L3X_CNT_PASSED])
		moved++, v = L3X_VERDICT_PASS;
	if (a[L3X_CNT_REDIRECT_FAILED] != b[L3X_CNT_REDIRECT_FAILED])
		moved++, v = L3X_VERDICT_MATCH;
	if (a[L3X_CNT_MALFORMED] != b[L3X_CNT_MALFORMED])
		moved++, v = L3X_VERDICT_MALFORMED;
	CHECK(a[L3X_CNT_REDIRECTED] == b[L3X_CNT_REDIRECTED]);
	CHECK(moved == 1);
	return v;
}

/* Rules from the text before the NUL, into the maps and @rs. */
static void add_rules(struct l3x_ruleset *rs, char *text)
{
	struct l3x_rule r;
	char *line, *next;
	unsigned n = 0;

	for (line = text; line && n < MAX_RULES; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (l3x_rule__parse(&r, line, NULL, 0))
			continue;
		CHECK(l3x_rules_add(&X.maps, &r) == 0);
		CHECK(l3x_ruleset_add(rs, &r) == 0);
		n++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static char text[1024];
	const uint8_t *nul = memchr(d, '\0', n);
	enum l3x_verdict hw, sw;
	struct l3x_ruleset *rs;
	unsigned frames = 0;
	size_t len, tlen;

	if (X.skip || !nul || (tlen = (size_t)(nul - d)) >= sizeof(text))
		return 0;
	clear_map(X.maps.rules);
	clear_map(X.maps.lpm4);
	clear_map(X.maps.lpm6);
	clear_map(X.maps.frags);
	rs = l3x_ruleset_open(NULL, NULL);
	CHECK(rs);
	memcpy(text, d, tlen);
	text[tlen] = '\0';
	add_rules(rs, text);
	d += tlen + 1;
	n -= tlen + 1;
	while (n >= 2 && frames++ < MAX_FRAMES) {
		len = (size_t)d[0] | (size_t)d[1] << 8;
		d += 2;
		n -= 2;
		if (len > n)
			len = n;
		if (len >= ETH_HLEN_ && len <= MAX_FRAME) {
			hw = bpf_verdict(d, len);
			sw = l3x_ruleset_match(rs, d, len, L3X_MATCH_L2);
			if (X.verbose)
				fprintf(stderr, "fuzz_xdp: frame %u: %s\n",
					frames, verdict_name[hw]);
			if (hw != sw) {
				fprintf(stderr,
					"fuzz_xdp: frame %u (%zu bytes): "
					"program %s, software %s\n",
					frames, len, verdict_name[hw],
					verdict_name[sw]);
				abort();
			}
		}
		d += len;
		n -= len;
	}
	l3x_ruleset_close(rs);
	return 0;
}
