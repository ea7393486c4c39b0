/*
 * rule_helpers.h - what the rule tests share across their two halves:
 * tests/unit/ runs the parts that need no privilege (rule syntax, the trie
 * build, the software matcher), tests/netns/ the parts that need root (real
 * BPF maps, the XDP program through BPF_PROG_TEST_RUN). Both halves parse
 * rules and ask the software matcher the same way, so they do it here.
 *
 * Static inline: each test file takes what it uses.
 */
#ifndef L3X_TEST_RULE_HELPERS_H
#define L3X_TEST_RULE_HELPERS_H

#include <stdbool.h>
#include <string.h>

#include <criterion/criterion.h>

#include "l3x_internal.h"
#include "rule_cases.h"

/* ------------------------------------------------------------ rules */

static inline struct l3x_rule parse_ok(const char *text)
{
	struct l3x_rule r;
	char err[128] = "";

	cr_assert_eq(l3x_rule__parse(&r, text, err, sizeof(err)), 0,
		     "'%s' refused: %s", text, err);
	return r;
}

static inline struct l3x_rule_key key_of(const char *text)
{
	struct l3x_rule r = parse_ok(text);
	struct l3x_rule_key k;

	l3x_rule_to_key(&r, &k);
	return k;
}

static inline bool has_range(const struct l3x_lpm_val *v, int proto, int lo,
			     int hi)
{
	__u32 i;

	for (i = 0; i < v->count; i++)
		if (v->r[i].proto == proto && v->r[i].lo == lo &&
		    v->r[i].hi == hi)
			return true;
	return false;
}

/* ------------------------------------------------------------ software */

static inline enum rc_verdict from_sw(enum l3x_verdict v)
{
	switch (v) {
	case L3X_VERDICT_PASS:
		return RC_PASS;
	case L3X_VERDICT_MATCH:
		return RC_MATCH;
	case L3X_VERDICT_MALFORMED:
		return RC_MALFORMED;
	}
	return RC_END;
}

static inline void add_rules(const struct rule_case *c, struct l3x_ruleset *rs)
{
	struct l3x_rule r;
	char err[128] = "";
	int i;

	for (i = 0; i < 4 && c->rules[i]; i++) {
		cr_assert_eq(l3x_rule__parse(&r, c->rules[i], err, sizeof(err)),
			     0, "%s: rule '%s': %s", c->name, c->rules[i], err);
		cr_assert_eq(l3x_ruleset_add(rs, &r), 0, "%s: adding '%s'",
			     c->name, c->rules[i]);
	}
}

static inline struct l3x_ruleset *sw_open(const struct rule_case *c)
{
	struct l3x_ruleset *rs = l3x_ruleset_open(NULL, NULL);

	cr_assert_not_null(rs);
	add_rules(c, rs);
	return rs;
}

/* The software verdict on frame @f: whole, or its bare IP packet. */
static inline enum rc_verdict sw_verdict(struct l3x_ruleset *rs,
					 const struct rc_frame *f, bool l2)
{
	if (l2)
		return from_sw(
			l3x_ruleset_match(rs, f->b, f->len, L3X_MATCH_L2));
	return from_sw(l3x_ruleset_match(rs, f->b + f->l3, f->len - f->l3, 0));
}

static inline void build(const struct rule_case *c, int i, struct rc_frame *f)
{
	cr_assert_eq(build_frame(&c->steps[i].f, f), 0,
		     "%s: step %d cannot be built", c->name, i + 1);
}

/* ------------------------------------------------------------ the table */

/* A test's judgement of one step: @c's step @i, built in @f, with @rs the
 * case's software ruleset. Returns 0 (right), 1 (wrong, logged) or -1
 * (not judged). */
typedef int (*rc_judge_fn)(void *ctx, const struct rule_case *c, int i,
			   struct l3x_ruleset *rs, const struct rc_frame *f);

/* Every step of every case of the table to @judge, each case's rules
 * added to its software ruleset and then handed to @setup (when not NULL);
 * none may be wrong ("N of M @what"). Returns how many were judged. */
static inline unsigned rc_walk(void (*setup)(const struct rule_case *c),
			       rc_judge_fn judge, void *ctx, const char *what)
{
	unsigned n = 0, bad = 0;
	struct l3x_ruleset *rs;
	struct rc_frame f;
	size_t ci;
	int i, r;

	for (ci = 0; ci < RULE_CASES; ci++) {
		const struct rule_case *c = &rule_cases[ci];

		rs = sw_open(c);
		if (setup)
			setup(c);
		for (i = 0; i < 10 && c->steps[i].want; i++) {
			build(c, i, &f);
			r = judge(ctx, c, i, rs, &f);
			if (r < 0)
				continue;
			n++;
			bad += r;
		}
		l3x_ruleset_close(rs);
	}
	cr_assert_eq(bad, 0, "%u of %u %s (see above)", bad, n, what);
	return n;
}

#endif /* L3X_TEST_RULE_HELPERS_H */
