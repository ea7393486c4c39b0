/*
 * rule_cases.h - one table of frames and the verdict a rule set must give
 * each, for every matcher of l3x: the XDP program (bpf/l3x.bpf.c, run with
 * BPF_PROG_TEST_RUN) and the software matcher of the TUN and callback
 * sources (lib/rules.c l3x_ruleset_match), which must agree frame for
 * frame. tests/unit/test_rules_table.c runs it through the software
 * matcher, tests/netns/test_rules_table_xdp.c through both.
 *
 * A case is a rule set and frames sent in order to one fresh matcher, so
 * that state carries from frame to frame within a case (a first fragment,
 * then the rest of its datagram) and never between cases. A frame is
 * described, not written out: struct frame_spec says what each layer holds
 * and how to damage it, and build_frame() makes the bytes. Every frame runs
 * with its Ethernet header and, unless .l2_only, again as the bare IP
 * packet a TUN device would deliver, with the same verdict expected.
 *
 * To add a dimension (issue 12: "vlan N" in rules, fragments tracked per
 * source, destination, protocol and id), add a field to struct frame_spec,
 * teach build_frame() to write it, and add cases; the runners need no
 * change.
 */
#ifndef L3X_RULE_CASES_H
#define L3X_RULE_CASES_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RC_ETH_IP    0x0800
#define RC_ETH_ARP   0x0806
#define RC_ETH_IP6   0x86DD
#define RC_ETH_VLAN  0x8100
#define RC_ETH_QINQ  0x88A8
#define RC_ETH_LLDP  0x88CC
#define RC_ICMP	     1
#define RC_TCP	     6
#define RC_UDP	     17
#define RC_HOP	     0
#define RC_ROUTING   43
#define RC_FRAG	     44
#define RC_AH	     51
#define RC_ICMP6     58
#define RC_DSTOPTS   60
#define RC_IP4_MF    0x2000
#define RC_VID	     100  /* the VLAN ID of a tag without .vids */
#define RC_L4_NONE   (-1) /* .l4_len: no upper-layer bytes at all */
#define RC_FRAME_MAX 512

enum rc_verdict {
	RC_END = 0,   /* ends a case's list of steps */
	RC_PASS,      /* no rule takes it: to the kernel */
	RC_MATCH,     /* a rule takes it */
	RC_MALFORMED, /* cannot be parsed: to the kernel, counted */
};

static const char *const rc_verdict_name[] = {
	"end",
	"pass",
	"match",
	"malformed",
};

/* One IPv6 extension header: hop-by-hop, routing, destination options
 * (@len a multiple of 8), AH (@len a multiple of 4, at least 12) or the
 * fragment header (8 bytes; the frag_* fields of the frame fill it). */
struct rc_ext {
	uint8_t type;
	uint8_t len;
};

struct frame_spec {
	/* layer 2 */
	uint16_t tags[3];   /* VLAN TPIDs, outer first; 0 ends */
	uint16_t vids[3];   /* their VLAN IDs; 0: RC_VID */
	uint16_t ethertype; /* 0: from .ip */
	const uint8_t *raw; /* not IP: these bytes follow the L2 header */
	size_t raw_len;
	/* layer 3 */
	uint8_t ip; /* 4 or 6 (0 with .raw) */
	const char *src, *dst;
	uint8_t v4_opts;  /* bytes of IPv4 options (multiple of 4) */
	uint16_t v4_frag; /* IPv4 flags and fragment offset field */
	uint16_t v4_id;
	struct rc_ext ext[8]; /* IPv6 extension headers in order */
	uint32_t frag_id;     /* IPv6 fragment header */
	uint16_t frag_off;    /* in 8-byte units */
	bool frag_more;
	/* layer 4: a header of .proto (or, in a later fragment, data) */
	uint8_t proto;
	uint16_t dport;
	uint8_t icmp_type;
	int l4_len; /* bytes of it; 0: the whole header; RC_L4_NONE */
	/* damage, applied in this order after the lengths are set */
	int ip_len_delta; /* added to the IPv4 total / IPv6 payload length */
	struct {
		uint16_t at; /* offset from the IP header */
		uint8_t val;
	} poke[2];
	uint8_t npoke;
	size_t pad;   /* zero bytes appended (Ethernet padding) */
	size_t cut;   /* bytes taken off the end */
	size_t keep;  /* if set: only the first .keep bytes */
	bool l2_only; /* the bare-IP run would read other bytes */
};

struct rc_step {
	struct frame_spec f;
	enum rc_verdict want;
};

struct rule_case {
	const char *name;
	const char *rules[4]; /* rule texts; NULL ends */
	struct rc_step steps[10];
};

/* ------------------------------------------------------------ building */

struct rc_frame {
	uint8_t b[RC_FRAME_MAX];
	size_t len;
	size_t l3; /* where the IP header starts */
	size_t nh; /* the next-header byte the next header sets */
};

static inline uint8_t *rc_put(struct rc_frame *f, size_t n)
{
	uint8_t *p = f->b + f->len;

	if (f->len + n > sizeof(f->b))
		return NULL;
	memset(p, 0, n);
	f->len += n;
	return p;
}

static inline void rc_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline int rc_l2(struct rc_frame *f, const struct frame_spec *s)
{
	uint16_t type = s->ethertype;
	uint8_t *p = rc_put(f, 12);
	int i;

	if (!type)
		type = s->ip == 4 ? RC_ETH_IP : RC_ETH_IP6;
	memset(p, 0x02, 12);
	for (i = 0; i < 3 && s->tags[i]; i++) {
		rc_put16(rc_put(f, 2), s->tags[i]);
		rc_put16(rc_put(f, 2), s->vids[i] ? s->vids[i] : RC_VID);
	}
	rc_put16(rc_put(f, 2), type);
	return 0;
}

static inline int rc_ipv4(struct rc_frame *f, const struct frame_spec *s)
{
	uint8_t *p;

	f->l3 = f->len;
	p = rc_put(f, 20u + s->v4_opts);
	if (!p || s->v4_opts % 4)
		return -1;
	p[0] = (uint8_t)(0x40 | (5 + s->v4_opts / 4));
	if (s->v4_opts)
		p[20] = 0x01; /* NOP, then end of options */
	p[8] = 64;
	rc_put16(p + 4, s->v4_id);
	rc_put16(p + 6, s->v4_frag);
	f->nh = f->l3 + 9;
	if (inet_pton(AF_INET, s->src, p + 12) != 1 ||
	    inet_pton(AF_INET, s->dst, p + 16) != 1)
		return -1;
	return 0;
}

static inline int rc_ext6(struct rc_frame *f, const struct frame_spec *s,
			  const struct rc_ext *e)
{
	size_t at = f->len;
	size_t len = e->type == RC_FRAG ? 8 : e->len;
	uint8_t *p = rc_put(f, len);

	if (!p || len < 8)
		return -1;
	f->b[f->nh] = e->type;
	f->nh = at;
	if (e->type == RC_FRAG) {
		rc_put16(p + 2, (uint16_t)(s->frag_off << 3 | s->frag_more));
		rc_put16(p + 4, (uint16_t)(s->frag_id >> 16));
		rc_put16(p + 6, (uint16_t)s->frag_id);
	} else if (e->type == RC_AH) {
		p[1] = (uint8_t)(len / 4 - 2);
	} else {
		p[1] = (uint8_t)(len / 8 - 1);
	}
	return 0;
}

static inline int rc_ipv6(struct rc_frame *f, const struct frame_spec *s)
{
	uint8_t *p;
	int i;

	f->l3 = f->len;
	p = rc_put(f, 40);
	p[0] = 0x60;
	p[7] = 64;
	f->nh = f->l3 + 6;
	if (inet_pton(AF_INET6, s->src, p + 8) != 1 ||
	    inet_pton(AF_INET6, s->dst, p + 24) != 1)
		return -1;
	for (i = 0; i < 8 && s->ext[i].type + s->ext[i].len; i++)
		if (rc_ext6(f, s, &s->ext[i]))
			return -1;
	return 0;
}

/* Is this frame a later fragment (its upper-layer bytes are data)? */
static inline bool rc_later(const struct frame_spec *s)
{
	int i;

	if (s->ip == 4)
		return (s->v4_frag & 0x1fff) != 0;
	for (i = 0; i < 8 && s->ext[i].type + s->ext[i].len; i++)
		if (s->ext[i].type == RC_FRAG)
			return s->frag_off != 0;
	return false;
}

static inline int rc_l4(struct rc_frame *f, const struct frame_spec *s)
{
	uint8_t h[20] = { 0 };
	size_t whole, n;
	uint8_t *p;

	f->b[f->nh] = s->proto;
	if (rc_later(s)) {
		memset(h, 0xAB, sizeof(h));
		whole = 16;
	} else if (s->proto == RC_TCP) {
		rc_put16(h, 40000);
		rc_put16(h + 2, s->dport);
		h[12] = 5 << 4;
		h[13] = 0x02; /* SYN */
		whole = 20;
	} else if (s->proto == RC_UDP) {
		rc_put16(h, 40000);
		rc_put16(h + 2, s->dport);
		rc_put16(h + 4, 8 + 4);
		whole = 12; /* and 4 bytes of data */
	} else {
		h[0] = s->icmp_type;
		whole = 8;
	}
	n = s->l4_len == RC_L4_NONE ? 0 : s->l4_len ? (size_t)s->l4_len : whole;
	p = rc_put(f, n);
	if (!p)
		return -1;
	memcpy(p, h, n < whole ? n : whole);
	return 0;
}

/* Set the IP length field from what the frame holds, plus @delta. */
static inline void rc_lengths(struct rc_frame *f, const struct frame_spec *s)
{
	if (s->ip == 4)
		rc_put16(f->b + f->l3 + 2,
			 (uint16_t)(f->len - f->l3 + s->ip_len_delta));
	else
		rc_put16(f->b + f->l3 + 4,
			 (uint16_t)(f->len - f->l3 - 40 + s->ip_len_delta));
}

static inline int rc_damage(struct rc_frame *f, const struct frame_spec *s)
{
	unsigned i;

	for (i = 0; i < s->npoke && i < 2; i++) {
		if (f->l3 + s->poke[i].at >= f->len)
			return -1;
		f->b[f->l3 + s->poke[i].at] = s->poke[i].val;
	}
	if (s->pad && !rc_put(f, s->pad))
		return -1;
	if (s->cut > f->len)
		return -1;
	f->len -= s->cut;
	if (s->keep) {
		if (s->keep > f->len)
			return -1;
		f->len = s->keep;
	}
	return 0;
}

/* The bytes of @s in @f. Returns 0, -1 if @s cannot be built. */
static inline int build_frame(const struct frame_spec *s, struct rc_frame *f)
{
	memset(f, 0, sizeof(*f));
	rc_l2(f, s);
	if (s->raw) {
		uint8_t *p = rc_put(f, s->raw_len);

		if (!p)
			return -1;
		memcpy(p, s->raw, s->raw_len);
		f->l3 = f->len;
		return rc_damage(f, s);
	}
	if ((s->ip == 4 ? rc_ipv4(f, s) : rc_ipv6(f, s)) || rc_l4(f, s))
		return -1;
	rc_lengths(f, s);
	return rc_damage(f, s);
}

/* Does the bare IP packet of @s have the same meaning as the frame? */
static inline bool rc_has_l3_run(const struct frame_spec *s,
				 const struct rc_frame *f)
{
	return !s->raw && !s->ethertype && !s->l2_only && f->len > f->l3;
}

/* ------------------------------------------------------------ the table */

/* The table is laid out by hand, a case to a block and a frame to a line;
 * the formatter would pack and reflow it. */
/* clang-format off */
/* Frames of the common shapes; more fields after the first three. */
#define V4(d, p, port, ...)                                                    \
	{ .ip = 4, .src = "203.0.113.1", .dst = (d), .proto = (p),           \
	  .dport = (port), __VA_ARGS__ }
#define V6(d, p, port, ...)                                                    \
	{ .ip = 6, .src = "2001:db8:ffff::1", .dst = (d), .proto = (p),      \
	  .dport = (port), __VA_ARGS__ }
#define POKE1(off, v) .poke = { { (off), (v) } }, .npoke = 1
#define EXT(...) .ext = { __VA_ARGS__ }
/* IPv4 fragment: flags and offset in @fo, id @id, from @from. */
#define F4(from, id, fo, port)                                                  \
	{ .ip = 4, .src = (from), .dst = "192.0.2.1", .proto = RC_UDP,        \
	  .dport = (port), .v4_id = (id), .v4_frag = (fo) }
/* IPv6 fragment behind a hop-by-hop header: @opts puts destination
 * options in the fragmentable part, so the fragment header's next header
 * is not the upper-layer protocol. */
#define F6(from, id, off, more, opts, p, port)                                  \
	{ .ip = 6, .src = (from), .dst = "2001:db8::2", .proto = (p),         \
	  .dport = (port), .frag_id = (id), .frag_off = (off),                \
	  .frag_more = (more),                                                 \
	  .ext = { { RC_HOP, 8 }, { RC_FRAG, 8 },                              \
		   { (opts) && !(off) ? RC_DSTOPTS : 0, (opts) && !(off) ? 8 : 0 } } }

static const uint8_t rc_arp[28] = {
	0, 1, 0x08, 0, 6, 4, 0, 1,		/* Ethernet, IPv4, request */
	2, 2, 2, 2, 2, 2, 192, 0, 2, 1,	/* sender */
	0, 0, 0, 0, 0, 0, 192, 0, 2, 2,	/* target */
};
static const uint8_t rc_lldp[46];

static const struct rule_case rule_cases[] = {
	/* ---- what a rule takes (test_bpf.c's rule tests) */
	{ "tcp rule takes its port only", { "tcp 192.0.2.0/24 80" }, {
		{ V4("192.0.2.7", RC_TCP, 80), RC_MATCH },
		{ V4("192.0.2.7", RC_TCP, 81), RC_PASS },
		{ V4("192.0.2.7", RC_TCP, 79), RC_PASS },
		{ V4("192.0.2.7", RC_UDP, 80), RC_PASS },
		{ V4("192.0.3.7", RC_TCP, 80), RC_PASS },
	} },
	{ "port range boundaries", { "tcp 10.0.0.0/8 1000-2000",
				     "tcp 10.0.0.0/8 65535" }, {
		{ V4("10.9.8.7", RC_TCP, 999), RC_PASS },
		{ V4("10.9.8.7", RC_TCP, 1000), RC_MATCH },
		{ V4("10.9.8.7", RC_TCP, 2000), RC_MATCH },
		{ V4("10.9.8.7", RC_TCP, 2001), RC_PASS },
		{ V4("10.9.8.7", RC_TCP, 65534), RC_PASS },
		{ V4("10.9.8.7", RC_TCP, 65535), RC_MATCH },
		{ V4("10.9.8.7", RC_TCP, 0), RC_PASS },
	} },
	{ "udp rule takes udp only", { "udp 198.51.100.0/24 53",
				       "udp 2001:db8::/32 5000-5010" }, {
		{ V4("198.51.100.1", RC_UDP, 53), RC_MATCH },
		{ V4("198.51.100.1", RC_UDP, 54), RC_PASS },
		{ V4("198.51.100.1", RC_TCP, 53), RC_PASS },
		{ V4("198.51.100.1", RC_ICMP, 0, .icmp_type = 8), RC_PASS },
		{ V6("2001:db8:1::1", RC_UDP, 5000), RC_MATCH },
		{ V6("2001:db8:1::1", RC_UDP, 5010), RC_MATCH },
		{ V6("2001:db8:1::1", RC_UDP, 5011), RC_PASS },
		{ V6("2001:db8:1::1", RC_TCP, 5005), RC_PASS },
		{ V6("2001:db9::1", RC_UDP, 5005), RC_PASS },
	} },
	{ "ip rule takes every protocol and port", { "ip 198.51.100.0/24",
						     "ip 2001:db8:42::/48" }, {
		{ V4("198.51.100.200", RC_TCP, 1), RC_MATCH },
		{ V4("198.51.100.200", RC_UDP, 65535), RC_MATCH },
		{ V4("198.51.100.200", RC_ICMP, 0, .icmp_type = 8), RC_MATCH },
		{ V4("198.51.101.200", RC_ICMP, 0, .icmp_type = 8), RC_PASS },
		{ V6("2001:db8:42::9", RC_TCP, 443), RC_MATCH },
		{ V6("2001:db8:42::9", RC_ICMP6, 0, .icmp_type = 128), RC_MATCH },
		{ V6("2001:db8:43::9", RC_ICMP6, 0, .icmp_type = 128), RC_PASS },
	} },
	{ "zero prefix takes every address", { "tcp 0.0.0.0/0 443",
					       "udp ::/0 443" }, {
		{ V4("1.2.3.4", RC_TCP, 443), RC_MATCH },
		{ V4("255.255.255.255", RC_TCP, 443), RC_MATCH },
		{ V4("1.2.3.4", RC_TCP, 444), RC_PASS },
		{ V6("2001:db8::1", RC_UDP, 443), RC_MATCH },
		{ V6("ffff::1", RC_UDP, 443), RC_MATCH },
		{ V6("2001:db8::1", RC_TCP, 443), RC_PASS },
	} },
	{ "host prefix takes that address only", { "udp 192.0.2.5 9",
						   "tcp 2001:db8::5 9" }, {
		{ V4("192.0.2.5", RC_UDP, 9), RC_MATCH },
		{ V4("192.0.2.4", RC_UDP, 9), RC_PASS },
		{ V4("192.0.2.6", RC_UDP, 9), RC_PASS },
		{ V6("2001:db8::5", RC_TCP, 9), RC_MATCH },
		{ V6("2001:db8::4", RC_TCP, 9), RC_PASS },
		{ V6("2001:db8::5:0", RC_TCP, 9), RC_PASS },
	} },
	{ "a longer prefix keeps the shorter prefix's rules",
	  { "tcp 10.0.0.0/8 22", "udp 10.1.0.0/16 53", "tcp 2001:db8::/32 22",
	    "ip 2001:db8:1::/48" }, {
		{ V4("10.1.2.3", RC_TCP, 22), RC_MATCH },
		{ V4("10.1.2.3", RC_UDP, 53), RC_MATCH },
		{ V4("10.1.2.3", RC_UDP, 54), RC_PASS },
		{ V4("10.2.2.3", RC_TCP, 22), RC_MATCH },
		{ V4("10.2.2.3", RC_UDP, 53), RC_PASS },
		{ V6("2001:db8:1::1", RC_TCP, 22), RC_MATCH },
		{ V6("2001:db8:1::1", RC_UDP, 1), RC_MATCH },
		{ V6("2001:db8:2::1", RC_TCP, 22), RC_MATCH },
		{ V6("2001:db8:2::1", RC_UDP, 1), RC_PASS },
	} },
	{ "no rule takes nothing", { NULL }, {
		{ V4("192.0.2.1", RC_TCP, 80), RC_PASS },
		{ V6("2001:db8::1", RC_UDP, 53), RC_PASS },
	} },

	/* ---- link layer */
	{ "one VLAN tag, 802.1Q or 802.1ad", { "udp 192.0.2.0/24 53" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .tags = { RC_ETH_VLAN }), RC_MATCH },
		{ V4("192.0.2.1", RC_UDP, 54, .tags = { RC_ETH_VLAN }), RC_PASS },
		{ V4("192.0.2.1", RC_UDP, 53, .tags = { RC_ETH_QINQ }), RC_MATCH },
	} },
	{ "two VLAN tags in either order", { "udp 192.0.2.0/24 53",
					     "tcp 2001:db8::/32 80" }, {
		{ V4("192.0.2.1", RC_UDP, 53,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN }), RC_MATCH },
		{ V4("192.0.2.1", RC_UDP, 54,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN }), RC_PASS },
		{ V4("192.0.2.1", RC_UDP, 53,
		     .tags = { RC_ETH_VLAN, RC_ETH_QINQ }), RC_MATCH },
		{ V4("192.0.2.1", RC_UDP, 53,
		     .tags = { RC_ETH_VLAN, RC_ETH_VLAN }), RC_MATCH },
		{ V6("2001:db8::2", RC_TCP, 80,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN }), RC_MATCH },
	} },
	/* "vlan N": the innermost tag's ID; the bare-IP run has no tag */
	{ "vlan N takes only 802.1Q frames of VLAN N",
	  { "udp 192.0.2.0/24 53 vlan 100" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true,
		     .tags = { RC_ETH_VLAN }, .vids = { 100 }), RC_MATCH },
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true,
		     .tags = { RC_ETH_VLAN }, .vids = { 200 }), RC_PASS },
		{ V4("192.0.2.1", RC_UDP, 54, .l2_only = true,
		     .tags = { RC_ETH_VLAN }, .vids = { 100 }), RC_PASS },
		{ V4("192.0.2.1", RC_UDP, 53), RC_PASS },
		/* the priority and DEI bits of the TCI are not the ID */
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true,
		     .tags = { RC_ETH_VLAN }, .vids = { 0xf064 }), RC_MATCH },
	} },
	{ "vlan N in QinQ names the inner tag", { "ip 192.0.2.0/24 vlan 100",
						  "tcp 2001:db8::/32 vlan 7" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN }, .vids = { 10, 100 }),
		  RC_MATCH },
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN }, .vids = { 100, 10 }),
		  RC_PASS },
		{ V4("192.0.2.1", RC_TCP, 80, .l2_only = true,
		     .tags = { RC_ETH_QINQ }, .vids = { 100 }), RC_MATCH },
		{ V6("2001:db8::2", RC_TCP, 80, .l2_only = true,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN }, .vids = { 100, 7 }),
		  RC_MATCH },
		{ V6("2001:db8::2", RC_TCP, 80, .l2_only = true,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN }, .vids = { 7, 100 }),
		  RC_PASS },
	} },
	{ "two VLANs with the same addresses keep their own rules",
	  { "udp 192.0.2.0/24 53 vlan 100", "udp 192.0.2.0/24 vlan 200",
	    "tcp 192.0.2.9 80" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true,
		     .tags = { RC_ETH_VLAN }, .vids = { 100 }), RC_MATCH },
		{ V4("192.0.2.1", RC_UDP, 54, .l2_only = true,
		     .tags = { RC_ETH_VLAN }, .vids = { 100 }), RC_PASS },
		{ V4("192.0.2.1", RC_UDP, 54, .l2_only = true,
		     .tags = { RC_ETH_VLAN }, .vids = { 200 }), RC_MATCH },
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true,
		     .tags = { RC_ETH_VLAN }, .vids = { 300 }), RC_PASS },
		/* a rule without vlan still takes every VLAN, and none */
		{ V4("192.0.2.9", RC_TCP, 80, .l2_only = true,
		     .tags = { RC_ETH_VLAN }, .vids = { 300 }), RC_MATCH },
		{ V4("192.0.2.9", RC_TCP, 80), RC_MATCH },
	} },
	{ "a third VLAN tag goes to the kernel", { "ip 0.0.0.0/0" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN, RC_ETH_VLAN }),
		  RC_PASS },
	} },
	{ "ARP and other ethertypes pass despite ip rules",
	  { "ip 0.0.0.0/0", "ip ::/0" }, {
		{ { .ethertype = RC_ETH_ARP, .raw = rc_arp,
		    .raw_len = sizeof(rc_arp) }, RC_PASS },
		{ { .ethertype = RC_ETH_LLDP, .raw = rc_lldp,
		    .raw_len = sizeof(rc_lldp) }, RC_PASS },
	} },
	{ "a frame cut in the link layer is malformed", { "ip 0.0.0.0/0" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true, .keep = 14,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN }), RC_MALFORMED },
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true, .keep = 16,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN }), RC_MALFORMED },
		{ V4("192.0.2.1", RC_UDP, 53, .l2_only = true, .keep = 20,
		     .tags = { RC_ETH_QINQ, RC_ETH_VLAN }), RC_MALFORMED },
		{ V4("192.0.2.1", RC_UDP, 53, .keep = 14), RC_MALFORMED },
		{ V6("2001:db8::1", RC_UDP, 53, .keep = 14), RC_MALFORMED },
	} },

	/* ---- neighbour discovery */
	{ "neighbour discovery passes despite an ip rule",
	  { "ip 2001:db8::5" }, {
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 133), RC_PASS },
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 134), RC_PASS },
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 135), RC_PASS },
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 136), RC_PASS },
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 137), RC_PASS },
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 128), RC_MATCH },
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 132), RC_MATCH },
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 138), RC_MATCH },
		/* too short to say its type: in padding, or cut off */
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 135,
		     .ip_len_delta = -8), RC_MALFORMED },
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 135,
		     .l4_len = RC_L4_NONE), RC_MALFORMED },
	} },
	{ "neighbour discovery behind a hop-by-hop header passes",
	  { "ip 2001:db8::5" }, {
		{ V6("2001:db8::5", RC_ICMP6, 0, .icmp_type = 135,
		     EXT({ RC_HOP, 8 })), RC_PASS },
	} },

	/* ---- IPv6 extension header chains */
	{ "tcp behind a hop-by-hop header", { "tcp 2001:db8::/32 80" }, {
		{ V6("2001:db8::2", RC_TCP, 80, EXT({ RC_HOP, 8 })), RC_MATCH },
		{ V6("2001:db8::2", RC_TCP, 81, EXT({ RC_HOP, 8 })), RC_PASS },
		{ V6("2001:db8::2", RC_TCP, 80, EXT({ RC_HOP, 16 })), RC_MATCH },
	} },
	{ "extension headers are walked to the ports",
	  { "udp 2001:db8::/32 53" }, {
		{ V6("2001:db8::2", RC_UDP, 53,
		     EXT({ RC_HOP, 8 }, { RC_DSTOPTS, 24 })), RC_MATCH },
		{ V6("2001:db8::2", RC_UDP, 54,
		     EXT({ RC_HOP, 8 }, { RC_DSTOPTS, 24 })), RC_PASS },
		{ V6("2001:db8::2", RC_UDP, 53,
		     EXT({ RC_ROUTING, 16 }, { RC_AH, 16 })), RC_MATCH },
		{ V6("2001:db8::2", RC_UDP, 53,
		     EXT({ RC_HOP, 8 }, { RC_ROUTING, 8 }, { RC_AH, 12 },
			 { RC_DSTOPTS, 8 })), RC_MATCH },
	} },
	{ "a chain of six is walked, seven is malformed",
	  { "udp 2001:db8::/32 53" }, {
		{ V6("2001:db8::2", RC_UDP, 53,
		     EXT({ RC_DSTOPTS, 8 }, { RC_DSTOPTS, 8 }, { RC_DSTOPTS, 8 },
			 { RC_DSTOPTS, 8 }, { RC_DSTOPTS, 8 },
			 { RC_DSTOPTS, 8 })), RC_MATCH },
		{ V6("2001:db8::2", RC_UDP, 53,
		     EXT({ RC_DSTOPTS, 8 }, { RC_DSTOPTS, 8 }, { RC_DSTOPTS, 8 },
			 { RC_DSTOPTS, 8 }, { RC_DSTOPTS, 8 }, { RC_DSTOPTS, 8 },
			 { RC_DSTOPTS, 8 })), RC_MALFORMED },
		{ V6("2001:db8::2", RC_TCP, 80,
		     EXT({ RC_HOP, 8 }, { RC_ROUTING, 8 }, { RC_DSTOPTS, 8 },
			 { RC_AH, 12 }, { RC_DSTOPTS, 8 }, { RC_DSTOPTS, 8 },
			 { RC_DSTOPTS, 8 })), RC_MALFORMED },
	} },
	{ "a truncated extension chain is malformed", { "ip 2001:db8::/32" }, {
		/* claims 40 bytes, 20 are there */
		{ V6("2001:db8::2", RC_UDP, 53, EXT({ RC_DSTOPTS, 8 }),
		     POKE1(40 + 1, 4)), RC_MALFORMED },
		/* longer than the payload though not the frame: what
		 * follows the payload (padding) is not a header */
		{ V6("2001:db8::2", RC_UDP, 53, EXT({ RC_DSTOPTS, 8 }),
		     .l4_len = RC_L4_NONE, POKE1(40 + 1, 1), .pad = 16),
		  RC_MALFORMED },
		/* lengths agree on 4 bytes of a hop-by-hop header */
		{ V6("2001:db8::2", RC_UDP, 53, EXT({ RC_HOP, 8 }),
		     .l4_len = RC_L4_NONE, .ip_len_delta = -4, .cut = 4),
		  RC_MALFORMED },
		/* the frame ends inside the second header */
		{ V6("2001:db8::2", RC_UDP, 53,
		     EXT({ RC_HOP, 8 }, { RC_ROUTING, 16 }), .cut = 12 + 8,
		     .ip_len_delta = -20), RC_MALFORMED },
	} },

	/* ---- IPv4 header */
	{ "IPv4 options are skipped", { "udp 192.0.2.0/24 53" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .v4_opts = 8), RC_MATCH },
		{ V4("192.0.2.1", RC_UDP, 53, .v4_opts = 40), RC_MATCH },
		/* IHL 6 where 7 is right: the ports are read 4 bytes early */
		{ V4("192.0.2.1", RC_UDP, 53, .v4_opts = 8, POKE1(0, 0x46)),
		  RC_PASS },
		{ V4("192.0.2.1", RC_UDP, 53, .v4_opts = 8, POKE1(0, 0x4f)),
		  RC_MALFORMED },
	} },
	{ "IPv4 IHL below five is malformed", { "ip 0.0.0.0/0" }, {
		{ V4("192.0.2.1", RC_UDP, 53, POKE1(0, 0x40)), RC_MALFORMED },
		{ V4("192.0.2.1", RC_UDP, 53, POKE1(0, 0x43)), RC_MALFORMED },
		{ V4("192.0.2.1", RC_UDP, 53, POKE1(0, 0x44)), RC_MALFORMED },
	} },
	{ "IPv4 total length out of bounds is malformed", { "ip 0.0.0.0/0" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .ip_len_delta = 1), RC_MALFORMED },
		{ V4("192.0.2.1", RC_UDP, 53, .ip_len_delta = -13),
		  RC_MALFORMED },	/* 19: below the header */
		{ V4("192.0.2.1", RC_UDP, 53), RC_MATCH },
	} },
	{ "IPv6 payload length past the frame is malformed", { "ip ::/0" }, {
		{ V6("2001:db8::1", RC_UDP, 53, .ip_len_delta = 1),
		  RC_MALFORMED },
		{ V6("2001:db8::1", RC_UDP, 53), RC_MATCH },
	} },
	{ "the IP version must match the ethertype",
	  { "ip 0.0.0.0/0", "ip ::/0" }, {
		/* as bare packets the version decides: not the same bytes */
		{ V4("192.0.2.1", RC_UDP, 53, POKE1(0, 0x65), .l2_only = true),
		  RC_MALFORMED },
		{ V6("2001:db8::1", RC_UDP, 53, POKE1(0, 0x40), .l2_only = true),
		  RC_MALFORMED },
	} },

	/* ---- truncated */
	{ "a frame cut in the IP header is malformed",
	  { "ip 0.0.0.0/0", "ip ::/0" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .keep = 14 + 10), RC_MALFORMED },
		{ V4("192.0.2.1", RC_UDP, 53, .keep = 14 + 19), RC_MALFORMED },
		{ V6("2001:db8::1", RC_UDP, 53, .keep = 14 + 39), RC_MALFORMED },
	} },
	{ "ports cut short are malformed, four bytes suffice",
	  { "ip 0.0.0.0/0", "ip ::/0" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .l4_len = 2), RC_MALFORMED },
		{ V4("192.0.2.1", RC_TCP, 80, .l4_len = 3), RC_MALFORMED },
		{ V6("2001:db8::2", RC_UDP, 53, .l4_len = 3), RC_MALFORMED },
		{ V4("192.0.2.1", RC_UDP, 53, .l4_len = 4), RC_MATCH },
		{ V6("2001:db8::2", RC_TCP, 80, .l4_len = 4,
		     EXT({ RC_HOP, 8 })), RC_MATCH },
	} },
	{ "ports in Ethernet padding are malformed",
	  { "udp 192.0.2.0/24 0" }, {
		/* an IPv4 header alone, padded to the Ethernet minimum:
		 * the zeros after it would say port 0 */
		{ V4("192.0.2.1", RC_UDP, 0, .l4_len = RC_L4_NONE, .pad = 26),
		  RC_MALFORMED },
		{ V4("192.0.2.1", RC_UDP, 0), RC_MATCH },
	} },

	/* ---- IPv4 fragments */
	{ "IPv4: later fragments follow a matched first",
	  { "udp 192.0.2.0/24 53" }, {
		{ F4("203.0.113.1", 0x1234, RC_IP4_MF, 53), RC_MATCH },
		{ F4("203.0.113.1", 0x1234, RC_IP4_MF | 185, 0), RC_MATCH },
		{ F4("203.0.113.1", 0x1234, 370, 0), RC_MATCH },
		/* another datagram: another id, or the same from elsewhere */
		{ F4("203.0.113.1", 0x9999, 370, 0), RC_PASS },
		{ F4("203.0.113.2", 0x1234, 370, 0), RC_PASS },
		/* a first fragment no rule takes is not remembered */
		{ F4("203.0.113.1", 0x4321, RC_IP4_MF, 54), RC_PASS },
		{ F4("203.0.113.1", 0x4321, 185, 0), RC_PASS },
	} },
	{ "IPv4: the last fragment ends the datagram's entry",
	  { "udp 192.0.2.0/24 53" }, {
		{ F4("203.0.113.1", 0x2222, RC_IP4_MF, 53), RC_MATCH },
		{ F4("203.0.113.1", 0x2222, 185, 0), RC_MATCH },
		/* a straggler after the last: unknown, no ip rule */
		{ F4("203.0.113.1", 0x2222, RC_IP4_MF | 370, 0), RC_PASS },
		/* the id free again: a new datagram is tracked afresh */
		{ F4("203.0.113.1", 0x2222, RC_IP4_MF, 53), RC_MATCH },
		{ F4("203.0.113.1", 0x2222, 185, 0), RC_MATCH },
	} },
	{ "IPv4: a forged first fragment after a kernel datagram's",
	  { "udp 192.0.2.0/24 53" }, {
		{ F4("203.0.113.1", 0x5555, RC_IP4_MF, 54), RC_PASS },
		/* same source, destination, protocol, id; a rule's port */
		{ F4("203.0.113.1", 0x5555, RC_IP4_MF, 53), RC_PASS },
		{ F4("203.0.113.1", 0x5555, RC_IP4_MF | 185, 0), RC_PASS },
		{ F4("203.0.113.1", 0x5555, 370, 0), RC_PASS },
	} },
	{ "IPv4: a forged first fragment ahead of a kernel datagram's",
	  { "udp 192.0.2.0/24 53" }, {
		{ F4("203.0.113.1", 0x6666, RC_IP4_MF, 53), RC_MATCH },
		/* the kernel's own first fragment: a conflict */
		{ F4("203.0.113.1", 0x6666, RC_IP4_MF, 54), RC_PASS },
		{ F4("203.0.113.1", 0x6666, RC_IP4_MF | 185, 0), RC_PASS },
		{ F4("203.0.113.1", 0x6666, 370, 0), RC_PASS },
		/* another source with that id is another datagram */
		{ F4("203.0.113.9", 0x6666, RC_IP4_MF, 53), RC_MATCH },
		{ F4("203.0.113.9", 0x6666, 185, 0), RC_MATCH },
	} },
	{ "IPv4: a later fragment alone takes an ip rule only",
	  { "ip 192.0.2.0/24", "udp 198.51.100.0/24 53" }, {
		{ F4("203.0.113.1", 0x7777, 185, 0), RC_MATCH },
		{ { .ip = 4, .src = "203.0.113.1", .dst = "198.51.100.1",
		    .proto = RC_UDP, .v4_id = 0x7777, .v4_frag = 185 },
		  RC_PASS },
	} },
	{ "IPv4: a first fragment too short for ports is malformed",
	  { "ip 0.0.0.0/0" }, {
		{ { .ip = 4, .src = "203.0.113.1", .dst = "192.0.2.1",
		    .proto = RC_UDP, .v4_id = 5, .v4_frag = RC_IP4_MF,
		    .l4_len = 2 }, RC_MALFORMED },
	} },
	{ "IPv4: a fragment with options", { "udp 192.0.2.0/24 53" }, {
		{ V4("192.0.2.1", RC_UDP, 53, .v4_opts = 4, .v4_id = 3,
		     .v4_frag = RC_IP4_MF), RC_MATCH },
		{ V4("192.0.2.1", RC_UDP, 0, .v4_id = 3, .v4_frag = 2),
		  RC_MATCH },
	} },

	/* ---- IPv6 fragments */
	{ "IPv6: later fragments follow a matched first",
	  { "udp 2001:db8::/32 53" }, {
		{ F6("2001:db8::1", 0xabcdef01, 0, true, false, RC_UDP, 53),
		  RC_MATCH },
		{ F6("2001:db8::1", 0xabcdef01, 2, true, false, RC_UDP, 0),
		  RC_MATCH },
		{ F6("2001:db8::1", 0xabcdef01, 4, false, false, RC_UDP, 0),
		  RC_MATCH },
		{ F6("2001:db8::1", 0xabcdef02, 4, false, false, RC_UDP, 0),
		  RC_PASS },
		{ F6("2001:db8::3", 0xabcdef01, 4, false, false, RC_UDP, 0),
		  RC_PASS },
		{ F6("2001:db8::1", 7, 0, true, false, RC_UDP, 54), RC_PASS },
		{ F6("2001:db8::1", 7, 2, false, false, RC_UDP, 0), RC_PASS },
	} },
	{ "IPv6: a forged first fragment ahead of a kernel datagram's",
	  { "udp 2001:db8::/32 53" }, {
		{ F6("2001:db8::1", 77, 0, true, false, RC_UDP, 53), RC_MATCH },
		{ F6("2001:db8::1", 77, 0, true, false, RC_UDP, 54), RC_PASS },
		{ F6("2001:db8::1", 77, 2, true, false, RC_UDP, 0), RC_PASS },
		{ F6("2001:db8::1", 77, 4, false, false, RC_UDP, 0), RC_PASS },
		/* ended by the last fragment: tracked afresh */
		{ F6("2001:db8::1", 77, 0, true, false, RC_UDP, 53), RC_MATCH },
		{ F6("2001:db8::1", 77, 4, false, false, RC_UDP, 0), RC_MATCH },
	} },
	{ "IPv6: options after the fragment header",
	  { "udp 2001:db8::/32 53" }, {
		/* the first walks on to UDP; the later one stops at the
		 * fragment header (what follows is data) and still finds
		 * its datagram by the fragment header's next header */
		{ F6("2001:db8::1", 99, 0, true, true, RC_UDP, 53), RC_MATCH },
		{ { .ip = 6, .src = "2001:db8::1", .dst = "2001:db8::2",
		    .proto = RC_DSTOPTS, .frag_id = 99, .frag_off = 2,
		    .ext = { { RC_HOP, 8 }, { RC_FRAG, 8 } } }, RC_MATCH },
	} },
	{ "IPv6: tcp behind hop-by-hop in fragments",
	  { "tcp 2001:db8::/32 80" }, {
		{ F6("2001:db8::1", 42, 0, true, false, RC_TCP, 80), RC_MATCH },
		{ F6("2001:db8::1", 42, 3, false, false, RC_TCP, 0), RC_MATCH },
		{ F6("2001:db8::1", 43, 3, false, false, RC_TCP, 0), RC_PASS },
	} },
	{ "IPv6: a later fragment alone takes an ip rule only",
	  { "ip 2001:db8::/32", "udp 2001:db9::/32 53" }, {
		{ F6("2001:db8::1", 5, 2, false, false, RC_UDP, 0), RC_MATCH },
		{ { .ip = 6, .src = "2001:db8::1", .dst = "2001:db9::2",
		    .proto = RC_UDP, .frag_id = 5, .frag_off = 2,
		    .ext = { { RC_FRAG, 8 } } }, RC_PASS },
	} },
	{ "IPv6: an atomic fragment matches as a whole datagram",
	  { "udp 2001:db8::/32 53" }, {
		{ F6("2001:db8::1", 11, 0, false, false, RC_UDP, 53), RC_MATCH },
		{ F6("2001:db8::1", 11, 0, false, false, RC_UDP, 54), RC_PASS },
	} },
	{ "IPv6: a first fragment too short for ports is malformed",
	  { "ip ::/0" }, {
		{ { .ip = 6, .src = "2001:db8::1", .dst = "2001:db8::2",
		    .proto = RC_UDP, .frag_id = 6, .frag_more = true,
		    .ext = { { RC_FRAG, 8 } }, .l4_len = 3 }, RC_MALFORMED },
	} },
};

#define RULE_CASES (sizeof(rule_cases) / sizeof(rule_cases[0]))
/* clang-format on */

#endif /* L3X_RULE_CASES_H */
