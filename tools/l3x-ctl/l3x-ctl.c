/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x-ctl - change rules and read counters of a running steering program
 * through its pinned maps (a capture's, or xdp-loader's).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "l3x/l3x.h"
#include "link.h"
#include "parse.h"
#include "tool.h"

#define PROG	 "l3x-ctl"
#define MAX_LIST 4096

/* clang-format off */
TOOL_DEFINE(PROG,
	    "usage: " PROG " WHERE stats [--json]\n"
	    "       " PROG " WHERE watch\n"
	    "       " PROG " WHERE rules\n"
	    "       " PROG " WHERE add RULE...\n"
	    "       " PROG " WHERE del RULE...\n"
	    "       " PROG " WHERE reap\n"
	    "WHERE is --iface IF (pins in /sys/fs/bpf/l3x/IF) or --pin-dir DIR.\n"
	    "RULE is 'PROTO DST [PORT[-PORT]]', one argument each.\n",
	    1);
/* clang-format on */

enum cmd { CMD_STATS, CMD_WATCH, CMD_RULES, CMD_ADD, CMD_DEL, CMD_REAP };

/* A name to a line; the formatter would pack them in columns. */
/* clang-format off */
static const struct name_value cmds[] = {
	{ "stats", CMD_STATS },
	{ "watch", CMD_WATCH },
	{ "rules", CMD_RULES },
	{ "add", CMD_ADD },
	{ "del", CMD_DEL },
	{ "reap", CMD_REAP },
	{ NULL },
};
/* clang-format on */

static int cmd_rules(struct l3x_ctl *ctl)
{
	static struct l3x_rule rules[MAX_LIST];
	static uint32_t refs[MAX_LIST];
	char buf[L3X_RULE_STRLEN];
	int n, i;

	n = l3x_ctl__rules(ctl, rules, refs, MAX_LIST);
	if (n < 0)
		die("rules: %s", strerror(-n));
	for (i = 0; i < n && i < MAX_LIST; i++) {
		l3x_rule__format(&rules[i], buf, sizeof(buf));
		if (refs[i] > 1)
			printf("%s  (added %u times)\n", buf, refs[i]);
		else
			printf("%s\n", buf);
	}
	return 0;
}

static int cmd_change(struct l3x_ctl *ctl, bool add, char **rules, int n)
{
	struct l3x_rule r;
	int i, err;

	if (!n)
		die("%s: missing RULE", add ? "add" : "del");
	/* All or nothing on bad syntax: check every rule first. */
	for (i = 0; i < n; i++)
		rule_parse(&r, "rule", rules[i]);
	for (i = 0; i < n; i++) {
		rule_parse(&r, "rule", rules[i]);
		err = add ? l3x_ctl__add_rule(ctl, &r)
			  : l3x_ctl__del_rule(ctl, &r);
		if (err == -ENOENT)
			die("del '%s': no such rule", rules[i]);
		if (err == -ENOSPC)
			die("add '%s': no room (at most 4096 rules, 32 port ranges per prefix)",
			    rules[i]);
		if (err)
			die("%s '%s': %s", add ? "add" : "del", rules[i],
			    strerror(-err));
	}
	return 0;
}

static void print_stats(const struct l3x_steer_stats *s, bool json)
{
	if (json)
		printf("{\"passed\": %llu, \"redirected\": %llu, \"redirect_failed\": %llu, "
		       "\"malformed\": %llu, \"frags_tracked\": %llu, \"frags_conflict\": %llu}\n",
		       (unsigned long long)s->passed,
		       (unsigned long long)s->redirected,
		       (unsigned long long)s->redirect_failed,
		       (unsigned long long)s->malformed,
		       (unsigned long long)s->frags_tracked,
		       (unsigned long long)s->frags_conflict);
	else
		printf("passed %llu redirected %llu redirect_failed %llu malformed %llu frags_tracked %llu frags_conflict %llu\n",
		       (unsigned long long)s->passed,
		       (unsigned long long)s->redirected,
		       (unsigned long long)s->redirect_failed,
		       (unsigned long long)s->malformed,
		       (unsigned long long)s->frags_tracked,
		       (unsigned long long)s->frags_conflict);
}

static int cmd_watch(struct l3x_ctl *ctl)
{
	struct l3x_steer_stats a, b;
	int err;

	stop_on_signals(SA_RESTART);
	if ((err = l3x_ctl__stats(ctl, &a)))
		die("stats: %s", strerror(-err));
	printf("%12s %12s %12s %12s  (per second)\n", "passed", "redirected",
	       "redir_failed", "malformed");
	while (!stop_requested()) {
		sleep(1);
		if ((err = l3x_ctl__stats(ctl, &b)))
			die("stats: %s (did the program go away?)",
			    strerror(-err));
		printf("%12llu %12llu %12llu %12llu\n",
		       (unsigned long long)(b.passed - a.passed),
		       (unsigned long long)(b.redirected - a.redirected),
		       (unsigned long long)(b.redirect_failed -
					    a.redirect_failed),
		       (unsigned long long)(b.malformed - a.malformed));
		fflush(stdout);
		a = b;
	}
	return 0;
}

static void run(struct l3x_ctl *ctl, int cmd, char **args, int n, bool json)
{
	struct l3x_steer_stats st;
	int err;

	switch (cmd) {
	case CMD_STATS:
		if ((err = l3x_ctl__stats(ctl, &st)))
			die("stats: %s", strerror(-err));
		print_stats(&st, json);
		break;
	case CMD_WATCH:
		cmd_watch(ctl);
		break;
	case CMD_RULES:
		cmd_rules(ctl);
		break;
	case CMD_ADD:
		cmd_change(ctl, true, args, n);
		break;
	case CMD_DEL:
		cmd_change(ctl, false, args, n);
		break;
	case CMD_REAP:
		if ((err = l3x_ctl__reap(ctl)) < 0)
			die("reap: %s", strerror(-err));
		printf("took back %d rule references of dead processes\n", err);
		break;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "iface", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		TOOL_OPTIONS_END,
	};
	const char *pin_dir = NULL, *iface = NULL, *name;
	struct l3x_ctl *ctl;
	bool json = false;
	int c, cmd;

	while ((c = tool_getopt(argc, argv, "+p:i:jh", opts)) != -1) {
		if (c == 'p')
			pin_dir = optarg;
		else if (c == 'i')
			iface = optarg;
		else
			json = true;
	}
	if (!pin_dir && !iface)
		die_arg("--iface or --pin-dir: missing (where the maps are pinned)");
	if (optind >= argc)
		usage_exit(2);
	name = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--json")) {
		json = true;
		optind++;
	}
	L3X_OPTS(l3x_ctl_opts, o, .pin_dir = pin_dir, .ifname = iface);
	if (!find_name(cmds, name, &cmd))
		die("'%s': unknown command (stats, watch, rules, add, del, reap)",
		    name);
	ctl = l3x_ctl__open(&o);
	if (!ctl && pin_dir)
		die("--pin-dir %s: %s (is an l3x program running with its maps pinned there?)",
		    pin_dir, strerror(errno));
	if (!ctl)
		die("--iface %s: %s (is an l3x program running with its maps pinned in /sys/fs/bpf/l3x/%s?)",
		    iface, strerror(errno), iface);
	run(ctl, cmd, argv + optind, argc - optind, json);
	l3x_ctl__close(ctl);
	return 0;
}
