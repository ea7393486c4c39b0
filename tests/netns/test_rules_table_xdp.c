/*
 * test_rules_table_xdp.c - one table of frames (rule_cases.h) through the
 * XDP program (build/l3x.bpf.o through BPF_PROG_TEST_RUN, rules written to
 * its maps by lib/rules.c), checked frame by frame against the verdict the
 * table names and against the software matcher
 * (tests/unit/test_rules_table.c runs the software matcher alone).
 *
 * Needs root to load XDP (skipped with the reason otherwise); as in
 * test_bpf.c the object is loaded with nothing pinned and l3x_xsks empty,
 * so a frame the program takes comes back XDP_PASS counted
 * redirect_failed, and the counters tell the verdicts apart.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>

#include "l3x_internal.h"
#include "rule_cases.h"
#include "helpers.h"
#include "rule_helpers.h"

#ifndef L3X_BPF_OBJ
#error "build with -DL3X_BPF_OBJ=\"path/to/l3x.bpf.o\""
#endif

/* ------------------------------------------------------------ program */

static struct bpf_object *obj;
static int prog_fd, ncpus;
static struct l3x_maps maps;

static void load(void)
{
	prog_fd = bpf_program__fd(xdp_obj_load(&obj));
	maps.rules = xdp_obj_map_fd(obj, "l3x_rules");
	maps.lpm4 = xdp_obj_map_fd(obj, "l3x_lpm4");
	maps.lpm6 = xdp_obj_map_fd(obj, "l3x_lpm6");
	maps.xsks = xdp_obj_map_fd(obj, "l3x_xsks");
	maps.stats = xdp_obj_map_fd(obj, "l3x_stats");
	maps.frags = xdp_obj_map_fd(obj, "l3x_frags");
	maps.owners = xdp_obj_map_fd(obj, "l3x_owners");
	ncpus = libbpf_num_possible_cpus();
	cr_assert_gt(ncpus, 0);
}

static void unload(void)
{
	bpf_object__close(obj); /* closes the program and map fds */
	obj = NULL;
}

/* Empty a map: the next case starts from nothing. */
static void clear_map(int fd)
{
	uint8_t key[64];

	while (!bpf_map_get_next_key(fd, NULL, key))
		cr_assert_eq(bpf_map_delete_elem(fd, key), 0);
}

static void bpf_rules(const struct rule_case *c)
{
	struct l3x_rule r;
	int i;

	clear_map(maps.rules);
	clear_map(maps.lpm4);
	clear_map(maps.lpm6);
	clear_map(maps.frags);
	for (i = 0; i < 4 && c->rules[i]; i++) {
		cr_assert_eq(l3x_rule__parse(&r, c->rules[i], NULL, 0), 0);
		cr_assert_eq(l3x_rules_add(&maps, &r), 0, "%s: adding '%s'",
			     c->name, c->rules[i]);
	}
}

static void read_counters(uint64_t out[L3X_CNT_MAX])
{
	uint64_t vals[ncpus];
	__u32 i;
	int c;

	for (i = 0; i < L3X_CNT_MAX; i++) {
		cr_assert_eq(bpf_map_lookup_elem(maps.stats, &i, vals), 0);
		out[i] = 0;
		for (c = 0; c < ncpus; c++)
			out[i] += vals[c];
	}
}

/* The program's verdict on @f: the one per-frame counter that moved. */
static enum rc_verdict bpf_verdict(const struct rc_frame *f, const char *what)
{
	uint64_t before[L3X_CNT_MAX], after[L3X_CNT_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f->b,
		    .data_size_in = (__u32)f->len, .repeat = 1);
	enum rc_verdict v = RC_END;
	int moved = 0;

	read_counters(before);
	cr_assert_eq(bpf_prog_test_run_opts(prog_fd, &opts), 0,
		     "%s: test run failed: %s", what, strerror(errno));
	cr_assert_eq(opts.retval, XDP_PASS, "%s: returned %u, not XDP_PASS",
		     what, opts.retval);
	read_counters(after);
	if (after[L3X_CNT_PASSED] != before[L3X_CNT_PASSED])
		moved++, v = RC_PASS;
	if (after[L3X_CNT_REDIRECT_FAILED] != before[L3X_CNT_REDIRECT_FAILED])
		moved++, v = RC_MATCH;
	if (after[L3X_CNT_MALFORMED] != before[L3X_CNT_MALFORMED])
		moved++, v = RC_MALFORMED;
	cr_assert_eq(after[L3X_CNT_REDIRECTED], before[L3X_CNT_REDIRECTED]);
	cr_assert_eq(moved, 1, "%s: %d per-frame counters moved", what, moved);
	return v;
}

/* One step through the program and the software matcher: both must give
 * the table's verdict. */
static int judge_both(void *ctx, const struct rule_case *c, int i,
		      struct l3x_ruleset *rs, const struct rc_frame *f)
{
	enum rc_verdict want = c->steps[i].want, hw, sw;
	char what[160];

	(void)ctx;
	snprintf(what, sizeof(what), "%s, step %d", c->name, i + 1);
	hw = bpf_verdict(f, what);
	sw = sw_verdict(rs, f, true);
	if (hw == want && sw == want)
		return 0;
	cr_log_error("%s: program %s, software %s, want %s", what,
		     rc_verdict_name[hw], rc_verdict_name[sw],
		     rc_verdict_name[want]);
	return 1;
}

Test(rules_table, program_gives_every_frame_the_software_verdict, .init = load,
     .fini = unload)
{
	unsigned n =
		rc_walk(bpf_rules, judge_both, NULL, "frames judged apart");

	cr_assert_gt(n, 100, "the table ran too few frames");
}
