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
 *
 * Every frame adds one to exactly one of passed / redirected /
 * redirect_failed / malformed; whatever we cannot parse goes to the kernel
 * untouched. Bounds are checked twice where it matters: against the frame
 * end (what the verifier trusts) and against the IP datagram's own length,
 * so Ethernet padding is never read as a header or a port.
 *
 * Maps are pinned by name so that "xdp-loader load -p DIR" leaves them
 * where the library finds them.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <xdp/xdp_helpers.h>

#include "l3x_shared.h"

#define ETH_P_8021Q_   0x8100
#define ETH_P_8021AD_  0x88A8
#define IP_MF_	       0x2000
#define IP_OFFSET_     0x1FFF
#define IP6_MF_	       0x0001
#define IP6_OFFSET_    0xFFF8
#define MAX_VLAN_TAGS  2
#define MAX_EXT_HDRS   6
#define ICMP6_ND_FIRST 133 /* router solicitation */
#define ICMP6_ND_LAST  137 /* redirect */

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

/* Not read here: who added which rule (bpf/l3x_shared.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L3X_MAX_OWNED);
	__type(key, struct l3x_owner_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} l3x_owners SEC(".maps");

/* Run inside libxdp's dispatcher where the kernel allows it. */
struct {
	__uint(priority, 20);
	__uint(XDP_PASS, 1);
} XDP_RUN_CONFIG(l3x_xdp);

enum frag {
	FRAG_NONE,
	FRAG_FIRST, /* offset 0, more to come: carries the L4 header */
	FRAG_LATER, /* offset != 0: no L4 header, so no ports */
};

/* What parsing found. */
struct pkt {
	void *l4;	 /* upper-layer header */
	__u32 l4_room;	 /* datagram bytes from l4 on */
	__u8 family;	 /* 4 or 6 */
	__u8 proto;	 /* upper-layer protocol */
	__u8 frag_proto; /* same in every fragment: see ipv6_frag */
	__u8 frag;	 /* enum frag */
	__u8 frag_last;	 /* no more fragments (MF clear) */
	__u32 frag_id;	 /* host order */
	__u16 dport;	 /* host order, TCP/UDP only */
	__u16 vlan;	 /* the innermost tag's ID; 0 untagged */
	__u8 src[16];	 /* IPv4 in the first 4 bytes, rest zero */
	__u8 dst[16];
};

enum verdict {
	V_PASS,	     /* to the kernel, counted passed */
	V_MATCH,     /* to the queue's socket */
	V_MALFORMED, /* to the kernel, counted malformed */
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&l3x_stats, &idx);

	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

/* Ethertype (host order) after up to two VLAN tags, in either order;
 * *@l3 is set past them, *@vlan to the innermost one's ID (0: none). -1
 * if the frame is cut short. */
static __always_inline int parse_eth(void *data, void *end, void **l3,
				     __u16 *vlan)
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
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		if (proto != bpf_htons(ETH_P_8021Q_) &&
		    proto != bpf_htons(ETH_P_8021AD_))
			break;
		if (p + 4 > end)
			return -1;
		*vlan = bpf_ntohs(*(__u16 *)p) & 0xfff;
		proto = *(__u16 *)(p + 2); /* TCI, then the inner type */
		p += 4;
	}
	*l3 = p;
	return bpf_ntohs(proto);
}

static __always_inline int parse_ipv4(struct pkt *k, void *l3, void *end)
{
	struct iphdr *ip = l3;
	__u32 ihl, tot;
	__u16 frag;

	if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
		return -1;
	ihl = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (l3 + ihl > end || tot < ihl || l3 + tot > end)
		return -1;
	k->family = 4;
	k->proto = ip->protocol;
	k->frag_proto = ip->protocol;
	__builtin_memcpy(k->src, &ip->saddr, 4);
	__builtin_memcpy(k->dst, &ip->daddr, 4);
	frag = bpf_ntohs(ip->frag_off);
	if (frag & IP_OFFSET_)
		k->frag = FRAG_LATER;
	else if (frag & IP_MF_)
		k->frag = FRAG_FIRST;
	k->frag_last = !(frag & IP_MF_);
	k->frag_id = bpf_ntohs(ip->id);
	k->l4 = l3 + ihl;
	k->l4_room = tot - ihl;
	return 0;
}

/* The fragment header: what it says about this fragment. */
static __always_inline void ipv6_frag(struct pkt *k, const __u8 *h)
{
	__u16 off = bpf_ntohs(*(__u16 *)(h + 2));

	/* Its next header is the same in every fragment of a datagram, while
	 * the upper-layer protocol is only known in the first one. */
	k->frag_proto = h[0];
	k->frag_id = bpf_ntohl(*(__u32 *)(h + 4));
	if (off & IP6_OFFSET_)
		k->frag = FRAG_LATER;
	else if (off & IP6_MF_)
		k->frag = FRAG_FIRST;
	k->frag_last = !(off & IP6_MF_);
}

/* Length of the extension header @nh at @h, 0 if @nh is not one we walk. */
static __always_inline __u32 ipv6_ext_len(__u8 nh, const __u8 *h)
{
	switch (nh) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
		return (h[1] + 1) * 8;
	case IPPROTO_AH:
		return (h[1] + 2) * 4;
	case IPPROTO_FRAGMENT:
		return 8;
	default:
		return 0;
	}
}

static __always_inline bool ipv6_is_ext(__u8 nh)
{
	return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING ||
	       nh == IPPROTO_DSTOPTS || nh == IPPROTO_AH ||
	       nh == IPPROTO_FRAGMENT;
}

/* Walk the extension header chain to the upper-layer header. Every header
 * we walk is at least 8 bytes, so checking its length against the payload
 * left also catches one cut short. A later fragment ends the walk: what
 * follows its fragment header is payload, not a header. */
static __always_inline int ipv6_walk(struct pkt *k, __u8 nh, void *end)
{
	__u8 *h;
	__u32 len;
	int i;

#pragma unroll
	for (i = 0; i < MAX_EXT_HDRS; i++) {
		if (!ipv6_is_ext(nh) || k->frag == FRAG_LATER)
			break;
		h = k->l4;
		if ((void *)(h + 8) > end)
			return -1;
		if (nh == IPPROTO_FRAGMENT)
			ipv6_frag(k, h);
		len = ipv6_ext_len(nh, h);
		if (len > k->l4_room)
			return -1;
		nh = h[0];
		k->l4 += len;
		k->l4_room -= len;
	}
	if (ipv6_is_ext(nh) && k->frag != FRAG_LATER)
		return -1; /* chain longer than we walk */
	k->proto = nh;
	return 0;
}

static __always_inline int parse_ipv6(struct pkt *k, void *l3, void *end)
{
	struct ipv6hdr *ip6 = l3;

	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return -1;
	k->l4 = ip6 + 1;
	k->l4_room = bpf_ntohs(ip6->payload_len);
	if (k->l4 + k->l4_room > end)
		return -1;
	k->family = 6;
	__builtin_memcpy(k->src, &ip6->saddr, 16);
	__builtin_memcpy(k->dst, &ip6->daddr, 16);
	return ipv6_walk(k, ip6->nexthdr, end);
}

/* ICMPv6 neighbour discovery, which the kernel must always see: it is how
 * the peer learns our link-layer address. -1 if the type is cut off. */
static __always_inline int is_nd(const struct pkt *k, void *end)
{
	__u8 *type = k->l4;

	if (k->family != 6 || k->proto != IPPROTO_ICMPV6 ||
	    k->frag == FRAG_LATER)
		return 0;
	if ((void *)(type + 1) > end || k->l4_room < 1)
		return -1;
	return *type >= ICMP6_ND_FIRST && *type <= ICMP6_ND_LAST;
}

/* Destination port of TCP and UDP: both start with the two ports. */
static __always_inline int parse_ports(struct pkt *k, void *end)
{
	__u16 *ports = k->l4;

	if (k->frag == FRAG_LATER ||
	    (k->proto != IPPROTO_TCP && k->proto != IPPROTO_UDP))
		return 0;
	if ((void *)(ports + 2) > end || k->l4_room < 4)
		return -1;
	k->dport = bpf_ntohs(ports[1]);
	return 0;
}

static __always_inline bool range_ok(const struct l3x_range *r,
				     const struct pkt *k, bool ports_known)
{
	if (r->vlan && r->vlan != k->vlan)
		return false;
	if (r->proto == L3X_P_ANY)
		return true;
	if (r->proto != k->proto || !ports_known)
		return false;
	return r->lo <= k->dport && k->dport <= r->hi;
}

static __always_inline bool match_ranges(const struct l3x_lpm_val *v,
					 const struct pkt *k, bool ports_known)
{
	__u32 i;

	for (i = 0; i < L3X_MAX_RANGES; i++) {
		if (i >= v->count)
			break;
		if (range_ok(&v->r[i], k, ports_known))
			return true;
	}
	return false;
}

/* Does a rule for this destination take the packet? The longest prefix
 * alone answers, as its entry holds the ranges of every containing rule.
 * Without ports (a later fragment) only "ip" rules can say yes. */
static __always_inline bool match_rules(const struct pkt *k, bool ports_known)
{
	struct l3x_lpm6_key key6;
	struct l3x_lpm4_key key4;
	struct l3x_lpm_val *v;

	if (k->family == 4) {
		key4.prefixlen = 32;
		__builtin_memcpy(key4.addr, k->dst, 4);
		v = bpf_map_lookup_elem(&l3x_lpm4, &key4);
	} else {
		key6.prefixlen = 128;
		__builtin_memcpy(key6.addr, k->dst, 16);
		v = bpf_map_lookup_elem(&l3x_lpm6, &key6);
	}
	return v && match_ranges(v, k, ports_known);
}

/*
 * Fragments. The first fragment of a datagram (the only one with ports)
 * decides where the whole datagram goes, and l3x_frags remembers the
 * decision under (family, source, destination, protocol, id) until the
 * last fragment passes: L3X_FRAG_DIVERT (a rule took it) or
 * L3X_FRAG_KERNEL. A first fragment whose key is live already is a
 * conflict: two datagrams claim one identity, and one of them is forged
 * (or the id came round while a datagram was still in flight). The entry
 * turns L3X_FRAG_KERNEL for good and the fragment goes to the kernel,
 * counted in frags_conflict: a forged first fragment sent ahead of a
 * kernel datagram, or after it, never carries that datagram's later
 * fragments off to a socket. The map is an LRU of L3X_MAX_FRAGS: a flood
 * of first fragments evicts entries, and an evicted datagram's later
 * fragments then go to the kernel (or to an "ip" rule), never elsewhere.
 */
static __always_inline void frag_key(struct l3x_frag_key *fk,
				     const struct pkt *k)
{
	__builtin_memset(fk, 0, sizeof(*fk)); /* padding is part of the key */
	fk->family = k->family;
	fk->proto = k->frag_proto;
	fk->id = k->frag_id;
	__builtin_memcpy(fk->src, k->src, 16);
	__builtin_memcpy(fk->dst, k->dst, 16);
}

/* A first fragment: remember where its datagram goes. Returns whether it
 * may go to a socket (@match, and no conflict). */
static __always_inline bool frag_first(const struct pkt *k, bool match)
{
	__u32 v = match ? L3X_FRAG_DIVERT : L3X_FRAG_KERNEL;
	__u32 kernel = L3X_FRAG_KERNEL;
	struct l3x_frag_key fk;

	frag_key(&fk, k);
	if (!bpf_map_update_elem(&l3x_frags, &fk, &v, BPF_NOEXIST)) {
		if (match)
			count(L3X_CNT_FRAGS_TRACKED);
		return match;
	}
	bpf_map_update_elem(&l3x_frags, &fk, &kernel, BPF_ANY);
	count(L3X_CNT_FRAGS_CONFLICT);
	return false;
}

/* A later fragment: 1 if its first fragment sent the datagram to a
 * socket, 0 to the kernel, -1 unknown. The last fragment ends the entry. */
static __always_inline int frag_later(const struct pkt *k)
{
	struct l3x_frag_key fk;
	__u32 *v;
	int div;

	frag_key(&fk, k);
	v = bpf_map_lookup_elem(&l3x_frags, &fk);
	if (!v)
		return -1;
	div = *v == L3X_FRAG_DIVERT;
	if (k->frag_last)
		bpf_map_delete_elem(&l3x_frags, &fk);
	return div;
}

static __always_inline enum verdict decide(struct pkt *k, void *end)
{
	int nd = is_nd(k, end), div;
	bool match;

	if (nd)
		return nd < 0 ? V_MALFORMED : V_PASS;
	if (parse_ports(k, end))
		return V_MALFORMED;
	if (k->frag == FRAG_LATER) {
		div = frag_later(k);
		if (div > 0 || (div < 0 && match_rules(k, false)))
			return V_MATCH;
		return V_PASS;
	}
	match = match_rules(k, true);
	if (k->frag == FRAG_FIRST)
		match = frag_first(k, match);
	return match ? V_MATCH : V_PASS;
}

static __always_inline enum verdict classify(void *data, void *end)
{
	struct pkt k = {};
	void *l3;
	int proto;

	proto = parse_eth(data, end, &l3, &k.vlan);
	if (proto < 0)
		return V_MALFORMED;
	if (proto == ETH_P_IP) {
		if (parse_ipv4(&k, l3, end))
			return V_MALFORMED;
	} else if (proto == ETH_P_IPV6) {
		if (parse_ipv6(&k, l3, end))
			return V_MALFORMED;
	} else {
		return V_PASS; /* ARP and everything else not IP */
	}
	return decide(&k, end);
}

SEC("xdp")
int l3x_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	switch (classify(data, end)) {
	case V_MATCH:
		break;
	case V_MALFORMED:
		count(L3X_CNT_MALFORMED);
		return XDP_PASS;
	default:
		count(L3X_CNT_PASSED);
		return XDP_PASS;
	}
	/* No socket on this queue (yet): the kernel gets the frame. */
	if (bpf_redirect_map(&l3x_xsks, ctx->rx_queue_index, XDP_PASS) !=
	    XDP_REDIRECT) {
		count(L3X_CNT_REDIRECT_FAILED);
		return XDP_PASS;
	}
	count(L3X_CNT_REDIRECTED);
	return XDP_REDIRECT;
}

char _license[] SEC("license") = "Dual BSD/GPL";
