/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fuzz_rules.c - libFuzzer target: the rule parser and the software
 * matcher (lib/rules.c).
 *
 * An input is rule text, one rule a line, then optionally a NUL byte and
 * a packet. Every line goes through l3x_rule__parse(); what parses must
 * pass l3x_rule_check(), format, and parse back to the same rule; what
 * does not must give -EINVAL and a message. The rules that parsed make a
 * software ruleset, and the packet after the NUL is matched against it,
 * bare and as an Ethernet frame. The input's first bytes, taken as a
 * struct l3x_rule, check that format accepts exactly the rules that
 * l3x_rule_check() accepts, and round-trips them.
 *
 * A failed property aborts, which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l3x_internal.h"

#define FUZZ_NAME "fuzz_rules"
#include "fuzz.h"

#define MAX_TEXT  4096
#define MAX_RULES 16

static bool same_rule(const struct l3x_rule *a, const struct l3x_rule *b)
{
	return a->proto == b->proto && a->family == b->family &&
	       a->prefix_len == b->prefix_len && a->port_lo == b->port_lo &&
	       a->port_hi == b->port_hi &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

/* format(@r) parses back to @r; short buffers give -ENOSPC. */
static void round_trip(const struct l3x_rule *r, size_t small)
{
	char txt[L3X_RULE_STRLEN], err[128];
	struct l3x_rule back;
	int len, e;

	len = l3x_rule__format(r, txt, sizeof(txt));
	CHECK(len > 0 && (size_t)len < sizeof(txt) &&
	      strlen(txt) == (size_t)len);
	e = l3x_rule__parse(&back, txt, err, sizeof(err));
	if (e)
		fprintf(stderr, "fuzz_rules: '%s': %s\n", txt, err);
	CHECK(e == 0 && same_rule(r, &back));
	small %= sizeof(txt);
	e = l3x_rule__format(r, txt, small);
	CHECK(small > (size_t)len ? e == len : e == -ENOSPC);
}

/* One line: parse it; a rule goes into @rs. */
static void one_line(struct l3x_ruleset *rs, unsigned *nrules, const char *line,
		     size_t small)
{
	struct l3x_rule r;
	char err[128] = "";
	int e;

	memset(&r, 0xa5, sizeof(r));
	e = l3x_rule__parse(&r, line, err, sizeof(err));
	if (e) {
		CHECK(e == -EINVAL && err[0] != '\0');
		CHECK(strlen(err) < sizeof(err));
		return;
	}
	CHECK(l3x_rule_check(&r) == 0);
	round_trip(&r, small);
	if (*nrules < MAX_RULES && l3x_ruleset_add(rs, &r) == 0)
		(*nrules)++;
}

/* The raw bytes as a struct: format takes exactly the valid ones. */
static void raw_rule(const uint8_t *d, size_t n)
{
	struct l3x_rule r;
	char txt[L3X_RULE_STRLEN];

	if (n < sizeof(r))
		return;
	memcpy(&r, d, sizeof(r));
	r.pad = 0;
	if (l3x_rule_check(&r))
		CHECK(l3x_rule__format(&r, txt, sizeof(txt)) == -EINVAL);
	else
		round_trip(&r, d[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static char text[MAX_TEXT + 1];
	const uint8_t *nul = memchr(d, '\0', n);
	size_t tlen = nul ? (size_t)(nul - d) : n;
	struct l3x_ruleset *rs;
	unsigned nrules = 0;
	enum l3x_verdict v;
	char *line, *next;

	if (tlen > MAX_TEXT)
		return 0;
	rs = l3x_ruleset_open(NULL, NULL);
	CHECK(rs);
	memcpy(text, d, tlen);
	text[tlen] = '\0';
	for (line = text; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		one_line(rs, &nrules, line, tlen);
	}
	raw_rule(d, n);
	if (nul) {
		v = l3x_ruleset_match(rs, nul + 1, n - tlen - 1, 0);
		CHECK(v <= L3X_VERDICT_MALFORMED);
		v = l3x_ruleset_match(rs, nul + 1, n - tlen - 1, L3X_MATCH_L2);
		CHECK(v <= L3X_VERDICT_MALFORMED);
	}
	l3x_ruleset_close(rs);
	return 0;
}
