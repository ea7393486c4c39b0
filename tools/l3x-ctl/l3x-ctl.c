/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x-ctl - change rules and read counters of a running steering program
 * through its pinned maps (a capture's, or xdp-loader's).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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
	    "       " PROG " WHERE grant --group GROUP\n"
	    "WHERE is --iface IF (pins in /sys/fs/bpf/l3x/IF) or --pin-dir DIR.\n"
	    "RULE is 'PROTO DST [PORT[-PORT]] [vlan ID]', one argument each.\n",
	    1);
/* clang-format on */

enum cmd {
	CMD_STATS,
	CMD_WATCH,
	CMD_RULES,
	CMD_ADD,
	CMD_DEL,
	CMD_REAP,
	CMD_GRANT,
};

/* A name to a line; the formatter would pack them in columns. */
/* clang-format off */
static const struct name_value cmds[] = {
	{ "stats", CMD_STATS },
	{ "watch", CMD_WATCH },
	{ "rules", CMD_RULES },
	{ "add", CMD_ADD },
	{ "del", CMD_DEL },
	{ "reap", CMD_REAP },
	{ "grant", CMD_GRANT },
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
		/* A map another program wrote may hold what we cannot
		 * format: say so instead of printing an unwritten buffer. */
		if (l3x_rule__format(&rules[i], buf, sizeof(buf)) < 0) {
			printf("(not a valid rule: proto %u family %u prefix_len %u ports %u-%u)\n",
			       rules[i].proto, rules[i].family,
			       rules[i].prefix_len, rules[i].port_lo,
			       rules[i].port_hi);
			continue;
		}
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

/* One line of @s: "name value" pairs, or a JSON object of them. */
static void print_stats(const struct l3x_steer_stats *s, bool json)
{
	const struct {
		const char *name;
		uint64_t v;
	} f[] = {
		{ "passed", s->passed },
		{ "redirected", s->redirected },
		{ "redirect_failed", s->redirect_failed },
		{ "malformed", s->malformed },
		{ "frags_tracked", s->frags_tracked },
		{ "frags_conflict", s->frags_conflict },
	};
	unsigned i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		printf(json ? "%s\"%s\": %llu" : "%s%s %llu",
		       i ? (json ? ", " : " ") : (json ? "{" : ""), f[i].name,
		       (unsigned long long)f[i].v);
	fputs(json ? "}\n" : "\n", stdout);
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

/* The group named @name (or numbered), or die. */
static gid_t group_of(const char *name)
{
	struct group *g = getgrnam(name);

	if (g)
		return g->gr_gid;
	if (name[0] < '0' || name[0] > '9')
		die("--group '%s': no such group", name);
	return (gid_t)parse_uint("--group", name, 0, UINT32_MAX - 1);
}

/* One entry of the pin dir to group @gid, mode @mode; symlinks refused. */
static void grant_one(int dfd, const char *dir, const char *name, gid_t gid,
		      mode_t mode)
{
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		die("grant: %s/%s: %s", dir, name, strerror(errno));
	if (S_ISLNK(st.st_mode))
		die("grant: %s/%s is a symbolic link: not followed", dir, name);
	if (fchownat(dfd, name, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW) ||
	    fchmodat(dfd, name, mode, 0))
		die("grant: %s/%s: %s", dir, name, strerror(errno));
}

/*
 * Hand the pins to a group: the directory 0750, every l3x_* pin 0660, so
 * that its members (holding CAP_NET_RAW) can run l3x on the program root
 * attached. The pins must be there: the caller opened them.
 */
static void cmd_grant(const char *dir, char **args, int n)
{
	struct dirent *e;
	gid_t gid;
	DIR *d;

	if (n != 2 || strcmp(args[0], "--group"))
		die_arg("grant: --group GROUP: missing");
	gid = group_of(args[1]);
	d = opendir(dir);
	if (!d)
		die("grant: %s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "l3x_", 4))
			grant_one(dirfd(d), dir, e->d_name, gid, 0660);
	closedir(d);
	grant_one(AT_FDCWD, "", dir, gid, 0750);
	printf("pins in %s: group %s, mode 0660 (directory 0750)\n", dir,
	       args[1]);
}

static void run(struct l3x_ctl *ctl, const char *pin_dir, int cmd, char **args,
		int n, bool json)
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
	case CMD_GRANT:
		cmd_grant(pin_dir, args, n);
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
	char dir[PATH_MAX];
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
	if (optind >= argc)
		usage_exit(2);
	if (!pin_dir && !iface)
		die_arg("--iface or --pin-dir: missing (where the maps are pinned)");
	name = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--json")) {
		json = true;
		optind++;
	}
	L3X_OPTS(l3x_ctl_opts, o, .pin_dir = pin_dir, .ifname = iface);
	if (!find_name(cmds, name, &cmd))
		die("'%s': unknown command (stats, watch, rules, add, del, reap, grant)",
		    name);
	ctl = l3x_ctl__open(&o);
	if (!ctl && pin_dir)
		die("--pin-dir %s: %s (is an l3x program running with its maps pinned there?)",
		    pin_dir, strerror(errno));
	if (!ctl)
		die("--iface %s: %s (is an l3x program running with its maps pinned in /sys/fs/bpf/l3x/%s?)",
		    iface, strerror(errno), iface);
	if (!pin_dir) {
		snprintf(dir, sizeof(dir), "/sys/fs/bpf/l3x/%s", iface);
		pin_dir = dir;
	}
	run(ctl, pin_dir, cmd, argv + optind, argc - optind, json);
	l3x_ctl__close(ctl);
	return 0;
}
