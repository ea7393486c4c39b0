/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x_shared.h - the contract between the steering program (bpf/l3x.bpf.c)
 * and user space (lib/steer.c, lib/rules.c, tests).
 *
 * Rules live in maps so they change with no reload:
 *   - l3x_rules   HASH: every rule as the user gave it -> reference count.
 *                 The source of truth, so several processes (or a later
 *                 process after xdp-loader) can rebuild the tries.
 *   - l3x_lpm4/6  LPM_TRIE: one entry per distinct rule prefix. Its value
 *                 holds the port ranges of every rule whose CIDR contains
 *                 that prefix, so the longest match alone answers
 *                 "does any rule match" (see lib/rules.c).
 *   - l3x_xsks    XSKMAP indexed by RX queue.
 *   - l3x_frags   LRU_HASH: (family, source, destination, protocol, id)
 *                 of a datagram whose first fragment passed -> where the
 *                 datagram goes (L3X_FRAG_*), so its later fragments follow
 *                 the first; deleted when the last fragment passes.
 *   - l3x_stats   PERCPU_ARRAY of counters, one per L3X_CNT_*.
 *   - l3x_owners  HASH: (rule, owning process) -> how many times that
 *                 process counted the rule in l3x_rules. Not read by the
 *                 program: the next process reaps the rules of owners that
 *                 died without taking them back (lib/owners.c).
 *
 * Fixed-width types only: this header is compiled by clang -target bpf and
 * by gcc for user space.
 */
#ifndef L3X_SHARED_H
#define L3X_SHARED_H

#include <linux/types.h>

#define L3X_MAX_RULES	 4096  /* l3x_rules entries */
#define L3X_MAX_PREFIXES 4096  /* entries per LPM trie */
#define L3X_MAX_RANGES	 32    /* port ranges per prefix entry */
#define L3X_MAX_QUEUES	 256   /* l3x_xsks entries */
#define L3X_MAX_FRAGS	 8192  /* l3x_frags entries */
#define L3X_MAX_OWNED	 16384 /* l3x_owners entries */

/* Protocol numbers as on the wire; L3X_P_ANY matches every protocol. */
#define L3X_P_ANY 0
#define L3X_P_TCP 6
#define L3X_P_UDP 17

/* Counters. Every frame the program sees adds one to exactly one of the
 * first four, so their sum is the number of frames seen. (Not formatted:
 * clang-format 14 would wrap the first entry to fit its comment.) */
/* clang-format off */
enum l3x_cnt {
	L3X_CNT_PASSED = 0,	/* no rule matched (ARP, ND, other traffic): XDP_PASS */
	L3X_CNT_REDIRECTED,	/* matched, handed to the queue's socket */
	L3X_CNT_REDIRECT_FAILED,/* matched, no socket on the queue: XDP_PASS */
	L3X_CNT_MALFORMED,	/* unparseable (truncated, bad IHL...): XDP_PASS */
	L3X_CNT_FRAGS_TRACKED,	/* extra: first fragments recorded in l3x_frags */
	L3X_CNT_FRAGS_CONFLICT,	/* extra: first fragments whose datagram was live
				 * already: to the kernel, datagram not diverted */
	L3X_CNT_MAX,
};
/* clang-format on */

/* One rule as stored in l3x_rules (key). Addresses in network order, an
 * IPv4 address in addr[0..3] with the rest zero. Ports in host order;
 * "any port" is 0-65535. */
struct l3x_rule_key {
	__u8 family; /* 4 or 6 */
	__u8 proto;  /* L3X_P_* */
	__u8 prefix_len;
	__u8 pad;
	__u16 port_lo;
	__u16 port_hi;
	__u8 addr[16];
	__u16 vlan; /* 0: any; else the innermost VLAN tag's ID */
	__u16 pad2;
};

/* LPM trie keys: prefixlen first, as the kernel requires. */
struct l3x_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct l3x_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct l3x_range {
	__u8 proto; /* L3X_P_* */
	__u8 pad;
	__u16 lo; /* host order, inclusive */
	__u16 hi;
	__u16 vlan; /* 0: any; else the innermost VLAN tag's ID */
};

/* Value of both tries. */
struct l3x_lpm_val {
	__u32 count; /* used entries of r[] */
	__u32 pad;
	struct l3x_range r[L3X_MAX_RANGES];
};

/* l3x_frags values: where the datagram's first fragment went. */
#define L3X_FRAG_KERNEL 0
#define L3X_FRAG_DIVERT 1

/* l3x_frags key: identifies the datagram a fragment belongs to. */
struct l3x_frag_key {
	__u8 family; /* 4 or 6 */
	__u8 proto;  /* IPv4 protocol; IPv6: the fragment header's
		      * next header (the same in every fragment) */
	__u16 pad;
	__u32 id; /* host order: IPv4 id (zero-extended) or IPv6
		   * fragment id */
	__u8 src[16];
	__u8 dst[16];
};

/* l3x_owners key: a rule and the process that added it, named so that a
 * reused pid is another owner: pid, start time (clock ticks after boot, as
 * /proc/PID/stat field 22) and the inode of its pid namespace. */
struct l3x_owner_key {
	struct l3x_rule_key rule;
	__u32 pid;
	__u32 pad;
	__u64 start;
	__u64 pidns;
};

#endif /* L3X_SHARED_H */
