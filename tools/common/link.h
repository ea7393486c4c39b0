/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * link.h - the options of the tools that steer traffic off a link with
 * libl3x (l3x-capture, l3x-serve), with one meaning each: the interface and
 * its queues, the rules, how the program attaches and the sockets bind, and
 * the library's messages. A tool puts LINK_OPTIONS into its option table
 * and hands every option to link_opt() first. Main thread, at start.
 */
#ifndef L3X_TOOL_LINK_H
#define L3X_TOOL_LINK_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "l3x/l3x.h"

#define MAX_RULES  256
#define MAX_QUEUES 256

/* Rules as given on the command line, parsed. */
struct rule_list {
	struct l3x_rule rules[MAX_RULES];
	char text[MAX_RULES][L3X_RULE_STRLEN]; /* as given, for messages */
	unsigned n;
};

struct link_args {
	const char *iface;
	const char *pin_dir;
	uint32_t queues[MAX_QUEUES];
	unsigned nqueues; /* 0: every queue */
	struct rule_list rules;
	enum l3x_xdp_mode xdp_mode;
	enum l3x_bind_mode bind_mode;
	uint32_t frames; /* UMEM frames per queue; 0: the library's */
	bool no_busy_poll;
	enum l3x_poll poll;    /* the stack's engine: --poll (STACK_OPTIONS) */
	uint32_t idle_spins;   /* --idle-spins; 0: the library's */
	uint32_t ack_coalesce; /* --ack-coalesce; 0: the library's */
	uint32_t gro;	       /* --gro: 0 (on) or L3X_GRO_OFF */
	bool idle_yield;       /* --idle-yield */
	bool quiet;	       /* no progress line */
	bool verbose;	       /* the library's info and debug messages too */
};

/* The struct option entries of struct link_args, for a tool's table. */
/* clang-format off */
#define LINK_OPTIONS \
	{ "iface", required_argument, NULL, 'i' }, \
	{ "queue", required_argument, NULL, 'q' }, \
	{ "rule", required_argument, NULL, 'r' }, \
	{ "pin-dir", required_argument, NULL, 'p' }, \
	{ "xdp-mode", required_argument, NULL, 'm' }, \
	{ "bind", required_argument, NULL, 'b' }, \
	{ "no-busy-poll", no_argument, NULL, 'B' }, \
	{ "frames", required_argument, NULL, 'F' }, \
	{ "quiet", no_argument, NULL, 'Q' }, \
	{ "verbose", no_argument, NULL, 'v' }
/* The options of the tools that run a stack's engine (l3x-serve,
 * l3x-relay), parsed by link_opt() too. */
#define STACK_OPTIONS \
	{ "poll", required_argument, NULL, 'P' }, \
	{ "idle-spins", required_argument, NULL, 'N' }, \
	{ "ack-coalesce", required_argument, NULL, 'A' }, \
	{ "gro", required_argument, NULL, 'G' }, \
	{ "idle-yield", no_argument, NULL, 'Y' }
/* clang-format on */

/* Option @c (its value @arg) into @a when it is one of LINK_OPTIONS.
 * Returns whether it was. */
bool link_opt(struct link_args *a, int c, const char *arg);

/* Parse @text into the next rule of @l, or refuse it naming --rule. */
void rule_list_add(struct rule_list *l, const char *text);

/* Parse @text into @r, or refuse it: "WHAT 'TEXT': why". */
void rule_parse(struct l3x_rule *r, const char *what, const char *text);

/* The library's warnings (and with @verbose everything else) on stderr,
 * each after "PROG: ". */
void link_print_init(bool verbose);

/* How many RX queues @ifname has in our network namespace (at least 1):
 * a stack serves only queue 0 unless told, and a flow hashed to another
 * queue would find no socket there. */
unsigned link_rx_queues(const char *ifname);
/* strerror(@err) for opening a link, with what to do where the cause is
 * known (EBUSY: a queue taken by another process). */
const char *link_strerror(int err);

#endif /* L3X_TOOL_LINK_H */
