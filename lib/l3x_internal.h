/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x_internal.h - what the library's .c files share and users never see.
 */
#ifndef L3X_INTERNAL_H
#define L3X_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "l3x/l3x.h"
#include "../bpf/l3x_shared.h"

#define L3X_HIDDEN __attribute__((visibility("hidden")))

/* --------------------------------------------------------------- print.c */

L3X_HIDDEN void l3x_pr(enum l3x_print_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define pr_warn(...)  l3x_pr(L3X_WARN, __VA_ARGS__)
#define pr_info(...)  l3x_pr(L3X_INFO, __VA_ARGS__)
#define pr_debug(...) l3x_pr(L3X_DEBUG, __VA_ARGS__)

/* ---------------------------------------------------------------- opts.c */

/*
 * l3x_opts_valid() - an options struct of @user_sz bytes (its .sz) is
 * acceptable to a library whose struct is @our_sz bytes: bytes past
 * @our_sz must all be zero. NULL opts are valid. Sets errno-style result.
 */
L3X_HIDDEN bool l3x_opts_valid(const void *opts, size_t our_sz);

/* Does @opts (not NULL) have @field, by its sz? */
#define L3X_OPT_HAS(opts, field)                                               \
	((opts) &&                                                             \
	 offsetof(__typeof__(*(opts)), field) + sizeof((opts)->field) <=       \
		 (opts)->sz)

/* Field of @opts, or @def if @opts is NULL, too old to have it, or zero. */
#define L3X_OPT(opts, field, def)                                              \
	(((opts) &&                                                            \
	  offsetof(__typeof__(*(opts)), field) + sizeof((opts)->field) <=      \
		  (opts)->sz &&                                                \
	  (opts)->field)                                                       \
		 ? (opts)->field                                               \
		 : (def))

/* --------------------------------------------------------------- rules.c */

/* Conversion between the public rule and the map key (same fields). */
L3X_HIDDEN void l3x_rule_to_key(const struct l3x_rule *r,
				struct l3x_rule_key *k);
L3X_HIDDEN void l3x_rule_from_key(const struct l3x_rule_key *k,
				  struct l3x_rule *r);
/* 0 if @r is a valid rule (as parse would produce), else -EINVAL. */
L3X_HIDDEN int l3x_rule_check(const struct l3x_rule *r);

/* One trie entry: key (prefixlen + address; IPv4 uses addr[0..3]). */
struct l3x_prefix_entry {
	struct l3x_lpm6_key key;
	struct l3x_lpm_val val;
};

/*
 * l3x_rules_build() - the trie entries of @family (4 or 6) for a rule set:
 * one per distinct prefix, holding the ranges of every rule whose prefix
 * contains it (deduplicated). *@out is malloc'ed, *@nout entries.
 * Returns 0; -ENOSPC when one entry would need more than L3X_MAX_RANGES;
 * -ENOMEM.
 */
L3X_HIDDEN int l3x_rules_build(const struct l3x_rule_key *rules, size_t n,
			       int family, struct l3x_prefix_entry **out,
			       size_t *nout);

/* fds of the steering maps. */
struct l3x_maps {
	int rules;  /* l3x_rules */
	int lpm4;   /* l3x_lpm4 */
	int lpm6;   /* l3x_lpm6 */
	int xsks;   /* l3x_xsks */
	int stats;  /* l3x_stats */
	int frags;  /* l3x_frags */
	int owners; /* l3x_owners */
};

/*
 * l3x_rules_sync() - rebuild both tries from the l3x_rules map: write new
 * and changed entries first, then delete stale ones, so a packet always
 * sees a per-prefix value that is either the old or the new one.
 */
L3X_HIDDEN int l3x_rules_sync(const struct l3x_maps *m);

/*
 * l3x_rules_add() / l3x_rules_del() - count @r in or out of the l3x_rules
 * map and resync. add rolls back on -ENOSPC. del: -ENOENT if absent.
 */
L3X_HIDDEN int l3x_rules_add(const struct l3x_maps *m,
			     const struct l3x_rule *r);
L3X_HIDDEN int l3x_rules_del(const struct l3x_maps *m,
			     const struct l3x_rule *r);

/*
 * The ruleset object: the rules one owner (a capture, a stack) added, so
 * that they are taken back on close, and the one software matcher.
 *   With @maps, rules go to the steering maps and the XDP program matches.
 *   Without, they go to an immutable snapshot that l3x_ruleset_match()
 *   reads lock-free for the TUN and callback sources; a change publishes a
 *   new snapshot and retires the old one through @ep (NULL: the caller
 *   never matches while rules change, and old snapshots go at once).
 * @maps and @ep must outlive the ruleset.
 */
struct l3x_ruleset;
struct l3x_epoch;

L3X_HIDDEN struct l3x_ruleset *l3x_ruleset_open(const struct l3x_maps *maps,
						struct l3x_epoch *ep);
/* Add (counted: twice means twice) or remove one rule. */
L3X_HIDDEN int l3x_ruleset_add(struct l3x_ruleset *rs,
			       const struct l3x_rule *r);
L3X_HIDDEN int l3x_ruleset_del(struct l3x_ruleset *rs,
			       const struct l3x_rule *r);
/* Remove from the maps every rule this ruleset added; free it. */
L3X_HIDDEN void l3x_ruleset_close(struct l3x_ruleset *rs);

enum l3x_verdict {
	L3X_VERDICT_PASS,      /* no rule takes it */
	L3X_VERDICT_MATCH,     /* a rule takes it */
	L3X_VERDICT_MALFORMED, /* cannot be parsed */
};

#define L3X_MATCH_L2 0x1u /* @pkt starts with an Ethernet header */

/*
 * l3x_ruleset_match() - the software rules' verdict on @pkt of @len bytes,
 * parsed exactly as the XDP program parses a frame: a bare IPv4 or IPv6
 * packet, or with L3X_MATCH_L2 an Ethernet frame (up to two VLAN tags;
 * not IP: PASS). @rs NULL: every packet that parses is a MATCH.
 */
L3X_HIDDEN enum l3x_verdict l3x_ruleset_match(struct l3x_ruleset *rs,
					      const void *pkt, size_t len,
					      unsigned flags);

/* -------------------------------------------------------------- owners.c */

/*
 * l3x_owners_add() / l3x_owners_del() - count one reference to rule @k by
 * this process in or out of the l3x_owners map @fd. 0 or -errno (-ENOSPC
 * when the map is full; del: -ENOENT when we own no such reference).
 * Control thread.
 */
L3X_HIDDEN int l3x_owners_add(int fd, const struct l3x_rule_key *k);
L3X_HIDDEN int l3x_owners_del(int fd, const struct l3x_rule_key *k);

/*
 * l3x_owners_claim_dead() - remove from l3x_owners @fd the entries of
 * owners that are dead, calling @fn for each entry this call removed, with
 * the references that owner held. Returns how many entries, or -errno.
 * Any thread.
 */
L3X_HIDDEN int l3x_owners_claim_dead(int fd,
				     void (*fn)(const struct l3x_owner_key *o,
						uint32_t count, void *arg),
				     void *arg);

/*
 * l3x_rules_reap() - take back the rule references of dead owners and
 * resync the tries. Returns how many references were taken back, or
 * -errno. Any thread.
 */
L3X_HIDDEN int l3x_rules_reap(const struct l3x_maps *m);

/* --------------------------------------------------------------- steer.c */

struct l3x_steer;

struct l3x_steer_cfg {
	const char *pin_dir; /* NULL: default */
	enum l3x_xdp_mode xdp_mode;
};

#define L3X_DEFAULT_PIN_DIR "/sys/fs/bpf/l3x"

/*
 * l3x_steer_open() - on @ifindex, find our program attached with its maps
 * pinned in the pin dir and use it (reused), or load and attach ours.
 */
L3X_HIDDEN struct l3x_steer *l3x_steer_open(int ifindex,
					    const struct l3x_steer_cfg *cfg);
L3X_HIDDEN const struct l3x_maps *l3x_steer_maps(const struct l3x_steer *s);
L3X_HIDDEN bool l3x_steer_reused(const struct l3x_steer *s);
L3X_HIDDEN bool l3x_steer_skb_mode(const struct l3x_steer *s);
L3X_HIDDEN int l3x_steer_stats(const struct l3x_steer *s,
			       struct l3x_steer_stats *st);
/*
 * l3x_pin_dir() - the pin directory into @buf: @dir if given, else the
 * interface's default L3X_DEFAULT_PIN_DIR/IFNAME (@ifname, or the name of
 * @ifindex). 0, -ENAMETOOLONG, or -ENODEV for no such interface.
 */
L3X_HIDDEN int l3x_pin_dir(char *buf, size_t sz, const char *dir, int ifindex,
			   const char *ifname);

/* Open the maps pinned in @pin_dir without any program (lib/ctl.c). */
L3X_HIDDEN int l3x_steer_open_pinned(const char *pin_dir, struct l3x_maps *m);
L3X_HIDDEN void l3x_maps_close(struct l3x_maps *m);
/* Sum the per-CPU counters of @stats_fd. */
L3X_HIDDEN int l3x_stats_read(int stats_fd, struct l3x_steer_stats *st);
/* Detach if we attached, close fds. */
L3X_HIDDEN void l3x_steer_close(struct l3x_steer *s);

/* The steering object embedded in the library (bpf/l3x.bpf.o). */
extern const unsigned char l3x_bpf_obj_start[] L3X_HIDDEN;
extern const unsigned char l3x_bpf_obj_end[] L3X_HIDDEN;

#endif /* L3X_INTERNAL_H */
