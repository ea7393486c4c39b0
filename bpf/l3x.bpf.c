// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * l3x.bpf.c - steering: IP traffic that matches a rule goes to the AF_XDP
 * socket of the queue it arrived on; everything else to the kernel.
 *
 * Per frame: Ethernet, up to two VLAN tags (802.1Q / 802.1ad), IPv4 or
 * IPv6 (walking extension headers), the destination port; one LPM lookup
 * on the destination address (the entry carries the ranges of every rule
 * containing it: see lib/rules.c), then the port ranges. ARP and neighbour
 * discovery always pass. Fragments: a first fragment that matches is
 * remembered in l3x_frags so the rest of its datagram follows it.
 * Every frame adds one to exactly one of passed / redirected /
 * redirect_failed / malformed. Maps are pinned by name so that
 * "xdp-loader load -p DIR" leaves them where the library finds them.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <xdp/xdp_helpers.h>

#include "l3x_shared.h"

#define ETH_P_8021Q_	0x8100
#define ETH_P_8021AD_	0x88A8
#define IP_MF_		0x2000
#define IP_OFFSET_	0x1FFF
#define MAX_EXT_HDRS	6

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L3X_MAX_RULES);
	__type(key, struct l3x_rule_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} l3x_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, L3X_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct l3x_lpm4_key);
	__type(value, struct l3x_lpm_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} l3x_lpm4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, L3X_MAX_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct l3x_lpm6_key);
	__type(value, struct l3x_lpm_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} l3x_lpm6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, L3X_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} l3x_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L3X_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} l3x_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L3X_MAX_FRAGS);
	__type(key, struct l3x_frag_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} l3x_frags SEC(".maps");

/* Run inside libxdp's dispatcher where the kernel allows it. */
struct {
	__uint(priority, 20);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(l3x_xdp);

/* What parsing found. */
struct pkt {
	void *l4;		/* start of the transport header */
	__u8 family;		/* 4 or 6 */
	__u8 proto;		/* upper-layer protocol */
	__u8 frag_first;	/* first fragment of a fragmented datagram */
	__u8 frag_later;	/* fragment with an offset: no ports */
	__u32 frag_id;
	__u16 dport;		/* host order; 0 if none */
	__u8 src[16];
	__u8 dst[16];
};

enum verdict {
	V_PASS,		/* to the kernel, counted passed */
	V_MATCH,	/* to the socket */
	V_MALFORMED,
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&l3x_stats, &idx);

	if (v)
		*v += 1;	/* per-CPU: no atomics needed */
}

/* Ethertype after up to two VLAN tags; *@l3 set past them. -1 if cut. */
static __always_inline int parse_eth(void *data, void *end, void **l3)
{
	struct ethhdr *eth = data;
	__u16 proto;
	void *p;
	int i;

	if ((void *)(eth + 1) > end)
		return -1;
	proto = eth->h_proto;
	p = eth + 1;
#pragma unroll
	for (i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q_) &&
		    proto != bpf_htons(ETH_P_8021AD_))
			break;
		if (p + 4 > end)
			return -1;
		proto = *(__u16 *)(p + 2);
		p += 4;
	}
	*l3 = p;
	return bpf_ntohs(proto);
}

static __always_inline int parse_ipv4(struct pkt *k, void *l3, void *end)
{
	struct iphdr *ip = l3;
	__u32 ihl;
	__u16 frag;

	if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
		return -1;
	ihl = ip->ihl * 4;
	if (l3 + ihl > end || bpf_ntohs(ip->tot_len) < ihl ||
	    l3 + bpf_ntohs(ip->tot_len) > end)
		return -1;
	k->family = 4;
	k->proto = ip->protocol;
	__builtin_memcpy(k->src, &ip->saddr, 4);
	__builtin_memcpy(k->dst, &ip->daddr, 4);
	frag = bpf_ntohs(ip->frag_off);
	k->frag_later = (frag & IP_OFFSET_) != 0;
	k->frag_first = !k->frag_later && (frag & IP_MF_);
	k->frag_id = bpf_ntohs(ip->id);
	k->l4 = l3 + ihl;
	return 0;
}

/* Walk the extension header chain to the upper-layer header. */
static __always_inline int parse_ipv6(struct pkt *k, void *l3, void *end)
{
	struct ipv6hdr *ip6 = l3;
	__u8 nh;
	void *p;
	int i;

	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return -1;
	if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > end)
		return -1;
	k->family = 6;
	__builtin_memcpy(k->src, &ip6->saddr, 16);
	__builtin_memcpy(k->dst, &ip6->daddr, 16);
	nh = ip6->nexthdr;
	p = ip6 + 1;
#pragma unroll
	for (i = 0; i < MAX_EXT_HDRS; i++) {
		__u8 *h = p;

		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if (p + 8 > end)
				return -1;
			nh = h[0];
			p += (h[1] + 1) * 8;
			continue;
		case IPPROTO_AH:
			if (p + 8 > end)
				return -1;
			nh = h[0];
			p += (h[1] + 2) * 4;
			continue;
		case IPPROTO_FRAGMENT:
			if (p + 8 > end)
				return -1;
			nh = h[0];
			k->frag_later = (bpf_ntohs(*(__u16 *)(h + 2)) & 0xFFF8) != 0;
			k->frag_first = !k->frag_later && (h[3] & 1);
			k->frag_id = *(__u32 *)(h + 4);
			p += 8;
			continue;
		default:
			k->proto = nh;
			k->l4 = p;
			return 0;
		}
	}
	return -1;	/* too long a chain */
}

/* ICMPv6 neighbour discovery (router/neighbour solicit/advert, redirect). */
static __always_inline bool is_nd(const struct pkt *k, void *end)
{
	__u8 *t = k->l4;

	if (k->family != 6 || k->proto != IPPROTO_ICMPV6 || k->frag_later)
		return false;
	if ((void *)(t + 1) > end)
		return false;
	return *t >= 133 && *t <= 137;
}

/* Ports for TCP and UDP (both start with source and destination port). */
static __always_inline int parse_ports(struct pkt *k, void *end)
{
	__u16 *ports = k->l4;

	k->dport = 0;
	if (k->frag_later ||
	    (k->proto != IPPROTO_TCP && k->proto != IPPROTO_UDP))
		return 0;
	if ((void *)(ports + 2) > end)
		return -1;
	k->dport = bpf_ntohs(ports[1]);
	return 0;
}

static __always_inline bool range_ok(const struct l3x_range *r,
				     const struct pkt *k, bool ports_known)
{
	if (r->proto == L3X_P_ANY)
		return true;
	if (r->proto != k->proto || !ports_known)
		return false;
	return r->lo <= k->dport && k->dport <= r->hi;
}

/* Any rule for this destination that the packet satisfies? Without ports
 * (a later fragment), only "ip" rules can say yes. */
static __always_inline bool match_rules(const struct pkt *k, bool ports_known)
{
	struct l3x_lpm6_key key6;
	struct l3x_lpm4_key key4;
	struct l3x_lpm_val *v;
	__u32 i;

	if (k->family == 4) {
		key4.prefixlen = 32;
		__builtin_memcpy(key4.addr, k->dst, 4);
		v = bpf_map_lookup_elem(&l3x_lpm4, &key4);
	} else {
		key6.prefixlen = 128;
		__builtin_memcpy(key6.addr, k->dst, 16);
		v = bpf_map_lookup_elem(&l3x_lpm6, &key6);
	}
	if (!v)
		return false;
	for (i = 0; i < L3X_MAX_RANGES; i++) {
		if (i >= v->count)
			break;
		if (range_ok(&v->r[i], k, ports_known))
			return true;
	}
	return false;
}

static __always_inline void frag_key(struct l3x_frag_key *fk,
				     const struct pkt *k)
{
	__builtin_memset(fk, 0, sizeof(*fk));
	fk->family = k->family;
	fk->proto = k->proto;
	fk->id = k->frag_id;
	__builtin_memcpy(fk->src, k->src, 16);
	__builtin_memcpy(fk->dst, k->dst, 16);
}

static __always_inline enum verdict decide(struct pkt *k, void *end)
{
	struct l3x_frag_key fk;
	__u32 one = 1;

	if (is_nd(k, end))
		return V_PASS;
	if (parse_ports(k, end))
		return V_MALFORMED;
	if (k->frag_later) {
		frag_key(&fk, k);
		if (bpf_map_lookup_elem(&l3x_frags, &fk))
			return V_MATCH;
		return match_rules(k, false) ? V_MATCH : V_PASS;
	}
	if (!match_rules(k, true))
		return V_PASS;
	if (k->frag_first) {
		frag_key(&fk, k);
		if (!bpf_map_update_elem(&l3x_frags, &fk, &one, BPF_ANY))
			count(L3X_CNT_FRAGS_TRACKED);
	}
	return V_MATCH;
}

SEC("xdp")
int l3x_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct pkt k = {};
	enum verdict v;
	void *l3;
	int proto, err;

	proto = parse_eth(data, end, &l3);
	if (proto < 0) {
		count(L3X_CNT_MALFORMED);
		return XDP_PASS;
	}
	if (proto == ETH_P_IP)
		err = parse_ipv4(&k, l3, end);
	else if (proto == ETH_P_IPV6)
		err = parse_ipv6(&k, l3, end);
	else	/* ARP and everything not IP */
		goto pass;
	v = err ? V_MALFORMED : decide(&k, end);
	if (v == V_MALFORMED) {
		count(L3X_CNT_MALFORMED);
		return XDP_PASS;
	}
	if (v == V_PASS)
		goto pass;
	if (bpf_redirect_map(&l3x_xsks, ctx->rx_queue_index, XDP_PASS) ==
	    XDP_REDIRECT) {
		count(L3X_CNT_REDIRECTED);
		return XDP_REDIRECT;
	}
	count(L3X_CNT_REDIRECT_FAILED);
	return XDP_PASS;
pass:
	count(L3X_CNT_PASSED);
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
