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

/* Run the table through the software matcher; returns the steps run. */
static unsigned run_software(bool l2)
{
	unsigned n = 0, bad = 0;
	struct rc_frame f;
	size_t ci;
	int i;

	for (ci = 0; ci < RULE_CASES; ci++) {
		const struct rule_case *c = &rule_cases[ci];
		struct l3x_ruleset *rs = sw_open(c);

		for (i = 0; i < 10 && c->steps[i].want; i++) {
			enum rc_verdict got;

			build(c, i, &f);
			if (!l2 && !rc_has_l3_run(&c->steps[i].f, &f))
				continue;
			got = sw_verdict(rs, &f, l2);
			n++;
			if (got == c->steps[i].want)
				continue;
			bad++;
			cr_log_error("%s, step %d (%s): %s, want %s", c->name,
				     i + 1, l2 ? "frame" : "bare IP",
				     rc_verdict_name[got],
				     rc_verdict_name[c->steps[i].want]);
		}
		l3x_ruleset_close(rs);
	}
	cr_assert_eq(bad, 0, "%u of %u verdicts wrong (see above)", bad, n);
	return n;
}

Test(rules_table, software_matcher_gives_every_frame_its_verdict)
{
	cr_assert_gt(run_software(true), 100, "the table ran too few frames");
}

Test(rules_table, software_matcher_gives_bare_ip_packets_the_same_verdict)
{
	cr_assert_gt(run_software(false), 80, "the table ran too few packets");
}
