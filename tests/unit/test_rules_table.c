/*
 * test_rules_table.c - one table of frames (rule_cases.h) through the
 * software matcher of the TUN and callback sources (l3x_ruleset_match),
 * which must give every frame the verdict the table names, whole and as
 * the bare IP packet a TUN delivers. Runs anywhere. The XDP program's half
 * of the same table, which needs root, is
 * tests/netns/test_rules_table_xdp.c.
 */
#include <stdbool.h>
#include <stddef.h>

#include <criterion/criterion.h>

#include "l3x_internal.h"
#include "rule_cases.h"
#include "rule_helpers.h"

/* ------------------------------------------------------------ software */

/* One step through the software matcher: whole when *@ctx (l2), or as
 * its bare IP packet when the step has one. */
static int judge_sw(void *ctx, const struct rule_case *c, int i,
		    struct l3x_ruleset *rs, const struct rc_frame *f)
{
	bool l2 = *(const bool *)ctx;
	enum rc_verdict got;

	if (!l2 && !rc_has_l3_run(&c->steps[i].f, f))
		return -1;
	got = sw_verdict(rs, f, l2);
	if (got == c->steps[i].want)
		return 0;
	cr_log_error("%s, step %d (%s): %s, want %s", c->name, i + 1,
		     l2 ? "frame" : "bare IP", rc_verdict_name[got],
		     rc_verdict_name[c->steps[i].want]);
	return 1;
}

/* Run the table through the software matcher; returns the steps run. */
static unsigned run_software(bool l2)
{
	return rc_walk(NULL, judge_sw, &l2, "verdicts wrong");
}

Test(rules_table, software_matcher_gives_every_frame_its_verdict)
{
	cr_assert_gt(run_software(true), 100, "the table ran too few frames");
}

Test(rules_table, software_matcher_gives_bare_ip_packets_the_same_verdict)
{
	cr_assert_gt(run_software(false), 80, "the table ran too few packets");
}
