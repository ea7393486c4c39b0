/*
 * test_bpf.c - the steering program (bpf/l3x.bpf.c) run by the kernel on
 * frames crafted here (BPF_PROG_TEST_RUN).
 *
 * Each test loads a fresh object with nothing pinned and fills the LPM
 * tries by hand, as lib/rules.c would: every entry holds the ranges of all
 * rules whose CIDR contains it. l3x_xsks stays empty, so a frame that
 * matches comes back XDP_PASS counted redirect_failed, and one that does
 * not comes back XDP_PASS counted passed: the counters tell the verdicts
 * apart. Every check also asserts that exactly one of the four per-frame
 * counters moved.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>

#include "../../bpf/l3x_shared.h"
#include "helpers.h"

#ifndef L3X_BPF_OBJ
#error "build with -DL3X_BPF_OBJ=\"path/to/l3x.bpf.o\""
#endif

#define ETH_IP	  0x0800
#define ETH_ARP	  0x0806
#define ETH_IP6	  0x86DD
#define ETH_VLAN  0x8100
#define ETH_QINQ  0x88A8
#define ETH_LLDP  0x88CC
#define P_ICMP	  1
#define P_TCP	  6
#define P_UDP	  17
#define P_HOP	  0
#define P_ROUTING 43
#define P_FRAG	  44
#define P_ICMP6	  58
#define P_DSTOPTS 60
#define P_AH	  51
#define IP4_MF	  0x2000

static struct bpf_object *obj;
static int prog_fd, lpm4_fd, lpm6_fd, stats_fd, frags_fd;
static int ncpus;

/* ------------------------------------------------------------ fixture */

static void load(void)
{
	struct bpf_program *prog = xdp_obj_load(&obj);

	cr_assert_eq(bpf_program__type(prog), BPF_PROG_TYPE_XDP);
	prog_fd = bpf_program__fd(prog);
	lpm4_fd = xdp_obj_map_fd(obj, "l3x_lpm4");
	lpm6_fd = xdp_obj_map_fd(obj, "l3x_lpm6");
	stats_fd = xdp_obj_map_fd(obj, "l3x_stats");
	frags_fd = xdp_obj_map_fd(obj, "l3x_frags");
	ncpus = libbpf_num_possible_cpus();
	cr_assert_gt(ncpus, 0);
}

static void unload(void)
{
	bpf_object__close(obj); /* closes the program and map fds */
	obj = NULL;
}

TestSuite(bpf, .init = load, .fini = unload);

/* ------------------------------------------------------------ tries */

#define RANGE(p, l, h)                                                         \
	((struct l3x_range){ .proto = (p), .lo = (l), .hi = (h) })
#define ANY RANGE(L3X_P_ANY, 0, 65535)
#define N_RANGES(...)                                                          \
	(sizeof((struct l3x_range[]){ __VA_ARGS__ }) / sizeof(struct l3x_range))
#define LPM4(addr, plen, ...)                                                  \
	lpm_add(4, addr, plen, (struct l3x_range[]){ __VA_ARGS__ },            \
		N_RANGES(__VA_ARGS__))
#define LPM6(addr, plen, ...)                                                  \
	lpm_add(6, addr, plen, (struct l3x_range[]){ __VA_ARGS__ },            \
		N_RANGES(__VA_ARGS__))

static void lpm_add(int family, const char *addr, __u32 plen,
		    const struct l3x_range *r, size_t n)
{
	struct l3x_lpm6_key k6 = { .prefixlen = plen };
	struct l3x_lpm4_key k4 = { .prefixlen = plen };
	struct l3x_lpm_val v = { .count = n };
	int err;

	cr_assert_leq(n, L3X_MAX_RANGES);
	memcpy(v.r, r, n * sizeof(*r));
	if (family == 4) {
		cr_assert_eq(inet_pton(AF_INET, addr, k4.addr), 1);
		err = bpf_map_update_elem(lpm4_fd, &k4, &v, BPF_ANY);
	} else {
		cr_assert_eq(inet_pton(AF_INET6, addr, k6.addr), 1);
		err = bpf_map_update_elem(lpm6_fd, &k6, &v, BPF_ANY);
	}
	cr_assert_eq(err, 0, "adding %s/%u: %s", addr, plen, strerror(errno));
}

/* ------------------------------------------------------------ frames */

struct frame {
	uint8_t b[1024];
	size_t len;
	size_t l3; /* where the IP header starts */
	size_t nh; /* the next-header byte the next header sets */
	int family;
};

static uint8_t *put(struct frame *f, size_t n)
{
	uint8_t *p = f->b + f->len;

	cr_assert_leq(f->len + n, sizeof(f->b));
	memset(p, 0, n);
	f->len += n;
	return p;
}

/* Ethernet header; @type may be a VLAN TPID, then vlan() follows. */
static void eth(struct frame *f, uint16_t type)
{
	uint8_t *p = put(f, 14);

	memset(p, 0x02, 12);
	put16(p + 12, type);
}

/* One VLAN tag (VID 100) whose inner type is @type. */
static void vlan(struct frame *f, uint16_t type)
{
	uint8_t *p = put(f, 4);

	put16(p, 100);
	put16(p + 2, type);
}

/* Append an IP header of @family: version, TTL 64, and the byte that the
 * next header links is its next-header field. Returns it. */
static uint8_t *ip_start(struct frame *f, int family)
{
	uint8_t *p;

	f->l3 = f->len;
	f->family = family;
	p = put(f, family == 4 ? 20 : 40);
	p[0] = family == 4 ? 0x45 : 0x60;
	p[family == 4 ? 8 : 7] = 64;
	f->nh = f->l3 + (family == 4 ? 9 : 6);
	return p;
}

static void ipv4(struct frame *f, const char *src, const char *dst, uint16_t id,
		 uint16_t frag_off)
{
	uint8_t *p = ip_start(f, 4);

	put16(p + 4, id);
	put16(p + 6, frag_off);
	cr_assert_eq(inet_pton(AF_INET, src, p + 12), 1);
	cr_assert_eq(inet_pton(AF_INET, dst, p + 16), 1);
}

static void ipv6(struct frame *f, const char *src, const char *dst)
{
	uint8_t *p = ip_start(f, 6);

	cr_assert_eq(inet_pton(AF_INET6, src, p + 8), 1);
	cr_assert_eq(inet_pton(AF_INET6, dst, p + 24), 1);
}

/* Link a header of protocol @proto in the chain and append its @len bytes. */
static uint8_t *next(struct frame *f, uint8_t proto, size_t len)
{
	f->b[f->nh] = proto;
	return put(f, len);
}

/* IPv6 extension header of @len bytes (hop-by-hop, routing, dest opts). */
static void ext6(struct frame *f, uint8_t type, size_t len)
{
	size_t at = f->len;
	uint8_t *p = next(f, type, len);

	p[1] = len / 8 - 1;
	f->nh = at;
}

static void ah6(struct frame *f)
{
	size_t at = f->len;
	uint8_t *p = next(f, P_AH, 16);

	p[1] = 16 / 4 - 2;
	f->nh = at;
}

/* IPv6 fragment header: @off in 8-byte units, @more the M flag. */
static void frag6(struct frame *f, uint32_t id, uint16_t off, bool more)
{
	size_t at = f->len;
	uint8_t *p = next(f, P_FRAG, 8);

	put16(p + 2, off << 3 | more);
	p[4] = id >> 24;
	p[5] = id >> 16;
	p[6] = id >> 8;
	p[7] = id;
	f->nh = at;
}

static void udp(struct frame *f, uint16_t dport)
{
	uint8_t *p = next(f, P_UDP, 8 + 4);

	put16(p, 40000);
	put16(p + 2, dport);
	put16(p + 4, 8 + 4);
}

static void tcp(struct frame *f, uint16_t dport)
{
	uint8_t *p = next(f, P_TCP, 20);

	put16(p, 40000);
	put16(p + 2, dport);
	p[12] = 5 << 4;
	p[13] = 0x02; /* SYN */
}

static void icmp(struct frame *f, uint8_t type)
{
	uint8_t *p = next(f, f->family == 4 ? P_ICMP : P_ICMP6, 8);

	p[0] = type;
}

/* Payload of a later fragment: protocol @proto, @n bytes of data. */
static void frag_data(struct frame *f, uint8_t proto, size_t n)
{
	memset(next(f, proto, n), 0xAB, n);
}

/* Set the IP length fields from what the frame holds. */
static void done(struct frame *f)
{
	if (f->family == 4)
		put16(f->b + f->l3 + 2, f->len - f->l3);
	else
		put16(f->b + f->l3 + 4, f->len - f->l3 - 40);
}

/* A fresh frame holding Ethernet and an IPv4 header from 203.0.113.1 to
 * 192.0.2.1, or an IPv6 one from 2001:db8::1 to 2001:db8::2. */
static void start4(struct frame *f, uint16_t id, uint16_t frag_off)
{
	*f = (struct frame){ 0 };
	eth(f, ETH_IP);
	ipv4(f, "203.0.113.1", "192.0.2.1", id, frag_off);
}

static void start6(struct frame *f)
{
	*f = (struct frame){ 0 };
	eth(f, ETH_IP6);
	ipv6(f, "2001:db8::1", "2001:db8::2");
}

/* The upper layer of the common cases: TCP or UDP to @dport, or an echo
 * request of the frame's ICMP. */
static void upper(struct frame *f, uint8_t proto, uint16_t dport)
{
	if (proto == P_TCP)
		tcp(f, dport);
	else if (proto == P_UDP)
		udp(f, dport);
	else
		icmp(f, f->family == 4 ? 8 : 128);
	done(f);
}

/* Whole frames for the common cases. */
static struct frame v4(const char *dst, uint8_t proto, uint16_t dport)
{
	struct frame f = { 0 };

	eth(&f, ETH_IP);
	ipv4(&f, "203.0.113.1", dst, 1, 0);
	upper(&f, proto, dport);
	return f;
}

static struct frame v6(const char *dst, uint8_t proto, uint16_t dport)
{
	struct frame f = { 0 };

	eth(&f, ETH_IP6);
	ipv6(&f, "2001:db8:ffff::1", dst);
	upper(&f, proto, dport);
	return f;
}

/* ------------------------------------------------------------ running */

enum outcome {
	PASSED = L3X_CNT_PASSED,
	MATCHED = L3X_CNT_REDIRECT_FAILED, /* no socket in l3x_xsks */
	MALFORMED = L3X_CNT_MALFORMED,
};

static const char *const cnt_names[] = {
	"passed",    "redirected",    "redirect_failed",
	"malformed", "frags_tracked", "frags_conflict",
};

static void read_counters(uint64_t out[L3X_CNT_MAX])
{
	uint64_t vals[ncpus];
	__u32 i;
	int c;

	for (i = 0; i < L3X_CNT_MAX; i++) {
		cr_assert_eq(bpf_map_lookup_elem(stats_fd, &i, vals), 0);
		out[i] = 0;
		for (c = 0; c < ncpus; c++)
			out[i] += vals[c];
	}
}

static uint64_t counter(enum l3x_cnt idx)
{
	uint64_t c[L3X_CNT_MAX];

	read_counters(c);
	return c[idx];
}

/* Run one frame (its first @len bytes) and check that it came back
 * XDP_PASS and moved exactly the counter of @want among the four. */
static void run_len(const struct frame *f, size_t len, enum outcome want,
		    const char *what)
{
	uint64_t before[L3X_CNT_MAX], after[L3X_CNT_MAX];
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f->b,
		    .data_size_in = len, .repeat = 1);
	int i, err;

	read_counters(before);
	err = bpf_prog_test_run_opts(prog_fd, &opts);
	cr_assert_eq(err, 0, "%s: test run failed: %s", what, strerror(errno));
	cr_assert_eq(opts.retval, XDP_PASS, "%s: returned %u, not XDP_PASS",
		     what, opts.retval);
	read_counters(after);
	for (i = L3X_CNT_PASSED; i <= L3X_CNT_MALFORMED; i++)
		cr_assert_eq(after[i] - before[i], i == (int)want,
			     "%s: expected %s, but %s moved by %llu", what,
			     cnt_names[want], cnt_names[i],
			     (unsigned long long)(after[i] - before[i]));
}

static void run(const struct frame *f, enum outcome want, const char *what)
{
	run_len(f, f->len, want, what);
}

static void expect_(struct frame f, enum outcome want, const char *what)
{
	run(&f, want, what);
}

/* expect(v4(...), MATCHED): the frame's expression names the check. */
#define expect(frame, want) expect_(frame, want, #frame)

/* The same, and then the fragments tracked so far must be @tracked. */
#define expect_tracked(frame, want, tracked)                                   \
	do {                                                                   \
		expect(frame, want);                                           \
		cr_assert_eq(counter(L3X_CNT_FRAGS_TRACKED), tracked);         \
	} while (0)

/* Frames made by @mk (v4 or v6) to @dst by @proto, one per port after
 * @want, or one per destination: each must come back @want. */
typedef struct frame (*frame_fn)(const char *, uint8_t, uint16_t);

static void expect_each(frame_fn mk, const char *name, const char *dst,
			uint8_t proto, int port, enum outcome want)
{
	struct frame f = mk(dst, proto, port);
	char what[96];

	snprintf(what, sizeof(what), "%s(\"%s\", %u, %d)", name, dst, proto,
		 port);
	run(&f, want, what);
}

#define expect_ports(mk, dst, proto, want, ...)                                \
	do {                                                                   \
		const int ports_[] = { __VA_ARGS__ };                          \
		size_t i_;                                                     \
		for (i_ = 0; i_ < sizeof(ports_) / sizeof(*ports_); i_++)      \
			expect_each(mk, #mk, dst, proto, ports_[i_], want);    \
	} while (0)

#define expect_dsts(mk, proto, port, want, ...)                                \
	do {                                                                   \
		const char *const dsts_[] = { __VA_ARGS__ };                   \
		size_t i_;                                                     \
		for (i_ = 0; i_ < sizeof(dsts_) / sizeof(*dsts_); i_++)        \
			expect_each(mk, #mk, dsts_[i_], proto, port, want);    \
	} while (0)

/* ------------------------------------------------------------ rules */

Test(bpf, tcp_rule_matches_its_port_only)
{
	LPM4("192.0.2.0", 24, RANGE(L3X_P_TCP, 80, 80));

	expect_ports(v4, "192.0.2.7", P_TCP, MATCHED, 80);
	expect_ports(v4, "192.0.2.7", P_TCP, PASSED, 81, 79);
	expect_ports(v4, "192.0.2.7", P_UDP, PASSED, 80);
	expect_ports(v4, "192.0.3.7", P_TCP, PASSED, 80);
	cr_assert_eq(counter(L3X_CNT_FRAGS_TRACKED), 0,
		     "an unfragmented packet was tracked");
}

Test(bpf, tcp_port_range_boundaries)
{
	LPM4("10.0.0.0", 8, RANGE(L3X_P_TCP, 1000, 2000),
	     RANGE(L3X_P_TCP, 65535, 65535));

	expect_ports(v4, "10.9.8.7", P_TCP, PASSED, 999, 2001, 65534, 0);
	expect_ports(v4, "10.9.8.7", P_TCP, MATCHED, 1000, 1500, 2000, 65535);
}

Test(bpf, udp_rule_matches_udp_only)
{
	LPM4("198.51.100.0", 24, RANGE(L3X_P_UDP, 53, 53));
	LPM6("2001:db8::", 32, RANGE(L3X_P_UDP, 5000, 5010));

	expect_ports(v4, "198.51.100.1", P_UDP, MATCHED, 53);
	expect_ports(v4, "198.51.100.1", P_UDP, PASSED, 54);
	expect_ports(v4, "198.51.100.1", P_TCP, PASSED, 53);
	expect(v4("198.51.100.1", P_ICMP, 0), PASSED);
	expect_ports(v6, "2001:db8:1::1", P_UDP, MATCHED, 5000, 5010);
	expect_ports(v6, "2001:db8:1::1", P_UDP, PASSED, 5011);
	expect(v6("2001:db8:1::1", P_TCP, 5005), PASSED);
	expect_dsts(v6, P_UDP, 5005, PASSED, "2001:db9::1");
}

Test(bpf, ip_rule_matches_every_protocol_and_port)
{
	LPM4("198.51.100.0", 24, ANY);
	LPM6("2001:db8:42::", 48, ANY);

	expect(v4("198.51.100.200", P_TCP, 1), MATCHED);
	expect(v4("198.51.100.200", P_UDP, 65535), MATCHED);
	expect(v4("198.51.100.200", P_ICMP, 0), MATCHED);
	expect(v4("198.51.101.200", P_ICMP, 0), PASSED);
	expect_ports(v6, "2001:db8:42::9", P_TCP, MATCHED, 443);
	expect_ports(v6, "2001:db8:42::9", P_ICMP6, MATCHED, 0);
	expect_ports(v6, "2001:db8:43::9", P_ICMP6, PASSED, 0);
}

Test(bpf, ip_rule_ignores_its_port_fields)
{
	/* Whatever the ports say, proto "any" takes every packet. */
	LPM4("192.0.2.0", 24, RANGE(L3X_P_ANY, 7, 7));

	expect(v4("192.0.2.1", P_UDP, 8), MATCHED);
	expect(v4("192.0.2.1", P_ICMP, 0), MATCHED);
}

Test(bpf, zero_prefix_matches_every_address)
{
	LPM4("0.0.0.0", 0, RANGE(L3X_P_TCP, 443, 443));
	LPM6("::", 0, RANGE(L3X_P_UDP, 443, 443));

	expect_dsts(v4, P_TCP, 443, MATCHED, "1.2.3.4", "255.255.255.255");
	expect_ports(v4, "1.2.3.4", P_TCP, PASSED, 444);
	expect_dsts(v6, P_UDP, 443, MATCHED, "2001:db8::1", "ffff::1");
	expect_ports(v6, "2001:db8::1", P_TCP, PASSED, 443);
}

Test(bpf, host_prefix_matches_that_address_only)
{
	LPM4("192.0.2.5", 32, RANGE(L3X_P_UDP, 9, 9));
	LPM6("2001:db8::5", 128, RANGE(L3X_P_TCP, 9, 9));

	expect_dsts(v4, P_UDP, 9, MATCHED, "192.0.2.5");
	expect_dsts(v4, P_UDP, 9, PASSED, "192.0.2.4", "192.0.2.6");
	expect_dsts(v6, P_TCP, 9, MATCHED, "2001:db8::5");
	expect_dsts(v6, P_TCP, 9, PASSED, "2001:db8::4", "2001:db8::5:0");
}

Test(bpf, longer_prefix_keeps_the_shorter_prefix_rules)
{
	/* Rules "tcp 10.0.0.0/8 22" and "udp 10.1.0.0/16 53": the /16
	 * entry carries both, as lib/rules.c builds it. */
	LPM4("10.0.0.0", 8, RANGE(L3X_P_TCP, 22, 22));
	LPM4("10.1.0.0", 16, RANGE(L3X_P_TCP, 22, 22),
	     RANGE(L3X_P_UDP, 53, 53));
	/* Same shape in IPv6 with an "ip" rule on the longer prefix. */
	LPM6("2001:db8::", 32, RANGE(L3X_P_TCP, 22, 22));
	LPM6("2001:db8:1::", 48, RANGE(L3X_P_TCP, 22, 22), ANY);

	expect_dsts(v4, P_TCP, 22, MATCHED, "10.1.2.3", "10.2.2.3");
	expect_dsts(v4, P_UDP, 53, MATCHED, "10.1.2.3");
	expect_dsts(v4, P_UDP, 54, PASSED, "10.1.2.3");
	expect_dsts(v4, P_UDP, 53, PASSED, "10.2.2.3");
	expect_dsts(v6, P_TCP, 22, MATCHED, "2001:db8:1::1", "2001:db8:2::1");
	expect_dsts(v6, P_UDP, 1, MATCHED, "2001:db8:1::1");
	expect_dsts(v6, P_UDP, 1, PASSED, "2001:db8:2::1");
}

Test(bpf, ranges_past_count_are_ignored)
{
	struct l3x_lpm4_key k = { .prefixlen = 24, .addr = { 192, 0, 2, 0 } };
	struct l3x_lpm_val v = { .count = 1 };

	/* A stale range beyond count must not match. */
	v.r[0] = RANGE(L3X_P_TCP, 80, 80);
	v.r[1] = RANGE(L3X_P_TCP, 443, 443);
	cr_assert_eq(bpf_map_update_elem(lpm4_fd, &k, &v, BPF_ANY), 0);
	expect(v4("192.0.2.1", P_TCP, 80), MATCHED);
	expect(v4("192.0.2.1", P_TCP, 443), PASSED);
}

Test(bpf, last_of_a_full_range_list_matches)
{
	struct l3x_lpm4_key k = { .prefixlen = 24, .addr = { 192, 0, 2, 0 } };
	struct l3x_lpm_val v = { .count = L3X_MAX_RANGES };
	int i;

	for (i = 0; i < L3X_MAX_RANGES; i++)
		v.r[i] = RANGE(L3X_P_UDP, 1000 + i, 1000 + i);
	cr_assert_eq(bpf_map_update_elem(lpm4_fd, &k, &v, BPF_ANY), 0);
	expect(v4("192.0.2.1", P_UDP, 1000 + L3X_MAX_RANGES - 1), MATCHED);
	expect(v4("192.0.2.1", P_UDP, 1000 + L3X_MAX_RANGES), PASSED);
}

/* ------------------------------------------------------------ link layer */

static struct frame tagged_v4(uint16_t outer, uint16_t inner, uint16_t dport)
{
	struct frame f = { 0 };

	eth(&f, outer);
	if (inner)
		vlan(&f, inner);
	vlan(&f, ETH_IP);
	ipv4(&f, "203.0.113.1", "192.0.2.1", 1, 0);
	udp(&f, dport);
	done(&f);
	return f;
}

Test(bpf, one_vlan_tag_is_parsed)
{
	LPM4("192.0.2.0", 24, RANGE(L3X_P_UDP, 53, 53));

	expect(tagged_v4(ETH_VLAN, 0, 53), MATCHED);
	expect(tagged_v4(ETH_VLAN, 0, 54), PASSED);
	expect(tagged_v4(ETH_QINQ, 0, 53), MATCHED);
}

Test(bpf, two_vlan_tags_are_parsed_in_either_order)
{
	struct frame f = { 0 };

	LPM4("192.0.2.0", 24, RANGE(L3X_P_UDP, 53, 53));
	LPM6("2001:db8::", 32, RANGE(L3X_P_TCP, 80, 80));

	expect(tagged_v4(ETH_QINQ, ETH_VLAN, 53), MATCHED);
	expect(tagged_v4(ETH_QINQ, ETH_VLAN, 54), PASSED);
	expect(tagged_v4(ETH_VLAN, ETH_QINQ, 53), MATCHED);
	expect(tagged_v4(ETH_VLAN, ETH_VLAN, 53), MATCHED);

	eth(&f, ETH_QINQ);
	vlan(&f, ETH_VLAN);
	vlan(&f, ETH_IP6);
	ipv6(&f, "2001:db8::1", "2001:db8::2");
	tcp(&f, 80);
	done(&f);
	run(&f, MATCHED, "QinQ IPv6 TCP 80");
}

Test(bpf, third_vlan_tag_goes_to_the_kernel)
{
	struct frame f = { 0 };

	LPM4("0.0.0.0", 0, ANY);
	eth(&f, ETH_QINQ);
	vlan(&f, ETH_VLAN);
	vlan(&f, ETH_VLAN);
	vlan(&f, ETH_IP);
	ipv4(&f, "203.0.113.1", "192.0.2.1", 1, 0);
	udp(&f, 53);
	done(&f);
	run(&f, PASSED, "three VLAN tags");
}

Test(bpf, arp_passes_despite_an_ip_rule)
{
	struct frame f = { 0 };
	uint8_t *p;

	LPM4("0.0.0.0", 0, ANY);
	eth(&f, ETH_ARP);
	p = put(&f, 28);
	put16(p, 1); /* Ethernet */
	put16(p + 2, ETH_IP);
	p[4] = 6;
	p[5] = 4;
	put16(p + 6, 1); /* request */
	inet_pton(AF_INET, "192.0.2.1", p + 14);
	inet_pton(AF_INET, "192.0.2.2", p + 24);
	run(&f, PASSED, "ARP request");
}

Test(bpf, non_ip_ethertype_passes)
{
	struct frame f = { 0 };

	LPM4("0.0.0.0", 0, ANY);
	LPM6("::", 0, ANY);
	eth(&f, ETH_LLDP);
	put(&f, 46);
	run(&f, PASSED, "LLDP");
}

static struct frame icmp6_to(const char *dst, uint8_t type)
{
	struct frame f = { 0 };

	eth(&f, ETH_IP6);
	ipv6(&f, "fe80::1", dst);
	icmp(&f, type);
	done(&f);
	return f;
}

Test(bpf, neighbour_discovery_passes_despite_an_ip_rule)
{
	struct frame f;
	int t;

	LPM6("2001:db8::5", 128, ANY);

	for (t = 133; t <= 137; t++)
		expect_(icmp6_to("2001:db8::5", t), PASSED, "ND message");
	/* ICMPv6 too short to say its type, cut or padded. */
	f = icmp6_to("2001:db8::5", 135);
	put16(f.b + f.l3 + 4, 0);
	run(&f, MALFORMED, "ICMPv6 with its type in padding");
	run_len(&f, f.len - 8, MALFORMED, "ICMPv6 without a type");
	/* Other ICMPv6 follows the rule. */
	expect(icmp6_to("2001:db8::5", 128), MATCHED);
	expect(icmp6_to("2001:db8::5", 132), MATCHED);
	expect(icmp6_to("2001:db8::5", 138), MATCHED);
}

/* ------------------------------------------------------------ IPv6 chain */

static struct frame hop_dstopts_udp(uint16_t dport)
{
	struct frame f;

	start6(&f);
	ext6(&f, P_HOP, 8);
	ext6(&f, P_DSTOPTS, 24);
	udp(&f, dport);
	done(&f);
	return f;
}

Test(bpf, ipv6_extension_headers_are_walked)
{
	struct frame f = { 0 };

	LPM6("2001:db8::", 32, RANGE(L3X_P_UDP, 53, 53));

	expect_(hop_dstopts_udp(53), MATCHED,
		"hop-by-hop + dest opts + UDP 53");
	expect_(hop_dstopts_udp(54), PASSED, "hop-by-hop + dest opts + UDP 54");

	start6(&f);
	ext6(&f, P_ROUTING, 16);
	ah6(&f);
	udp(&f, 53);
	done(&f);
	run(&f, MATCHED, "routing + AH + UDP 53");
}

static struct frame dstopts_chain(int n)
{
	struct frame f = { 0 };
	int i;

	start6(&f);
	for (i = 0; i < n; i++)
		ext6(&f, P_DSTOPTS, 8);
	udp(&f, 53);
	done(&f);
	return f;
}

Test(bpf, ipv6_chain_of_six_is_walked_seven_is_malformed)
{
	LPM6("2001:db8::", 32, RANGE(L3X_P_UDP, 53, 53));

	expect(dstopts_chain(6), MATCHED);
	expect(dstopts_chain(7), MALFORMED);
}

Test(bpf, ipv6_extension_header_past_the_payload_is_malformed)
{
	struct frame f = { 0 };

	LPM6("2001:db8::", 32, ANY);
	start6(&f);
	ext6(&f, P_DSTOPTS, 8);
	udp(&f, 53);
	f.b[f.l3 + 40 + 1] = 4; /* claims 40 bytes, 20 are there */
	done(&f);
	run(&f, MALFORMED, "dest opts longer than the packet");

	/* Longer than the payload but not the frame: what follows the
	 * payload (padding here) is not the next header. */
	start6(&f);
	ext6(&f, P_DSTOPTS, 8);
	f.b[f.nh] = P_UDP;
	f.b[f.nh + 1] = 1; /* 16 bytes, 8 in the payload */
	done(&f);
	memset(put(&f, 16), 0xAB, 16);
	run(&f, MALFORMED, "dest opts past the payload");

	start6(&f);
	ext6(&f, P_HOP, 8);
	f.b[f.nh] = P_UDP;
	put16(f.b + f.l3 + 4, 4); /* lengths agree: 4 bytes of it */
	run_len(&f, f.len - 4, MALFORMED, "hop-by-hop cut short");
}

/* ------------------------------------------------------------ malformed */

Test(bpf, frame_cut_in_the_link_layer_is_malformed)
{
	struct frame f = tagged_v4(ETH_QINQ, ETH_VLAN, 53);

	LPM4("0.0.0.0", 0, ANY);
	/* The kernel's test run refuses frames under 14 bytes, so cut
	 * inside the VLAN tags and just past the Ethernet header. */
	run_len(&f, 14, MALFORMED, "outer tag missing");
	run_len(&f, 16, MALFORMED, "outer tag cut");
	run_len(&f, 20, MALFORMED, "inner tag cut");
	f = v4("192.0.2.1", P_UDP, 53);
	run_len(&f, 14, MALFORMED, "Ethernet only, type IPv4");
	f = v6("2001:db8::1", P_UDP, 53);
	run_len(&f, 14, MALFORMED, "Ethernet only, type IPv6");
}

Test(bpf, frame_cut_in_the_ip_header_is_malformed)
{
	struct frame f = v4("192.0.2.1", P_UDP, 53);

	LPM4("0.0.0.0", 0, ANY);
	LPM6("::", 0, ANY);
	run_len(&f, 14 + 10, MALFORMED, "IPv4 header cut");
	run_len(&f, 14 + 19, MALFORMED, "IPv4 header one byte short");
	f = v6("2001:db8::1", P_UDP, 53);
	run_len(&f, 14 + 39, MALFORMED, "IPv6 header one byte short");
}

/* An IP@family packet whose upper layer is @n bytes of @proto, lengths
 * consistent. */
static struct frame upper_of(int family, uint8_t proto, size_t n)
{
	struct frame f;

	if (family == 4)
		start4(&f, 1, 0);
	else
		start6(&f);
	next(&f, proto, n);
	done(&f);
	return f;
}

Test(bpf, frame_cut_in_the_ports_is_malformed)
{
	LPM4("0.0.0.0", 0, ANY);
	LPM6("::", 0, ANY);

	/* Consistent lengths, only two bytes of UDP: the ports are cut. */
	expect_(upper_of(4, P_UDP, 2), MALFORMED, "IPv4 UDP, 2 bytes");
	expect_(upper_of(4, P_TCP, 3), MALFORMED, "IPv4 TCP, 3 bytes");
	expect_(upper_of(6, P_UDP, 3), MALFORMED, "IPv6 UDP, 3 bytes");
	/* Four bytes are enough: only the ports are read. */
	expect_(upper_of(4, P_UDP, 4), MATCHED, "IPv4 UDP, 4 bytes");
}

Test(bpf, ports_in_ethernet_padding_are_malformed)
{
	struct frame f = { 0 };

	LPM4("192.0.2.0", 24, RANGE(L3X_P_UDP, 0, 0));
	/* An IPv4 header alone, padded to the Ethernet minimum: the zeros
	 * after it are not a UDP header (port 0 would match). */
	start4(&f, 1, 0);
	f.b[f.nh] = P_UDP;
	done(&f);
	put(&f, 60 - f.len);
	run(&f, MALFORMED, "IPv4 UDP header in padding");

	/* With a real UDP header the same frame matches. */
	f = v4("192.0.2.1", P_UDP, 0);
	run(&f, MATCHED, "IPv4 UDP port 0");
}

Test(bpf, ipv4_ihl_below_five_is_malformed)
{
	struct frame f;
	int ihl;

	LPM4("0.0.0.0", 0, ANY);
	for (ihl = 0; ihl < 5; ihl++) {
		f = v4("192.0.2.1", P_UDP, 53);
		f.b[14] = 0x40 | ihl;
		run(&f, MALFORMED, "IHL < 5");
	}
}

Test(bpf, ipv4_options_are_skipped)
{
	struct frame f = { 0 };
	uint8_t *p;

	LPM4("192.0.2.0", 24, RANGE(L3X_P_UDP, 53, 53));
	start4(&f, 1, 0);
	f.b[f.l3] = 0x47; /* 8 bytes of options */
	p = put(&f, 8);
	p[0] = 0x01; /* NOP; the rest is end of options */
	udp(&f, 53);
	done(&f);
	run(&f, MATCHED, "IHL 7, UDP 53");

	f.b[f.l3] = 0x46; /* now the UDP header looks 4 bytes later */
	run(&f, PASSED, "IHL 6 reads other ports");

	f.b[f.l3] = 0x4f; /* 60 bytes of header, more than the packet */
	run(&f, MALFORMED, "IHL 15 past the packet");
}

Test(bpf, ipv4_total_length_out_of_bounds_is_malformed)
{
	struct frame f;

	LPM4("0.0.0.0", 0, ANY);
	f = v4("192.0.2.1", P_UDP, 53);
	put16(f.b + 14 + 2, f.len - 14 + 1);
	run(&f, MALFORMED, "total length one past the frame");
	put16(f.b + 14 + 2, 19);
	run(&f, MALFORMED, "total length below the header");
	put16(f.b + 14 + 2, f.len - 14);
	run(&f, MATCHED, "total length right");
}

Test(bpf, ip_version_must_match_the_ethertype)
{
	struct frame f;

	LPM4("0.0.0.0", 0, ANY);
	LPM6("::", 0, ANY);
	f = v4("192.0.2.1", P_UDP, 53);
	f.b[14] = 0x65;
	run(&f, MALFORMED, "version 6 in an IPv4 frame");
	f = v6("2001:db8::1", P_UDP, 53);
	f.b[14] = 0x40;
	run(&f, MALFORMED, "version 4 in an IPv6 frame");
}

Test(bpf, ipv6_payload_length_past_the_frame_is_malformed)
{
	struct frame f = v6("2001:db8::1", P_UDP, 53);

	LPM6("::", 0, ANY);
	put16(f.b + 14 + 4, f.len - 14 - 40 + 1);
	run(&f, MALFORMED, "payload length one past the frame");
	put16(f.b + 14 + 4, f.len - 14 - 40);
	run(&f, MATCHED, "payload length right");
}

/* ------------------------------------------------------------ fragments */

static struct frame frag4(const char *src, uint16_t id, uint16_t frag_off,
			  uint16_t dport)
{
	struct frame f = { 0 };

	eth(&f, ETH_IP);
	ipv4(&f, src, "192.0.2.1", id, frag_off);
	if (frag_off & 0x1fff)
		frag_data(&f, P_UDP, 16);
	else
		udp(&f, dport);
	done(&f);
	return f;
}

Test(bpf, ipv4_later_fragments_follow_a_matched_first)
{
	LPM4("192.0.2.0", 24, RANGE(L3X_P_UDP, 53, 53));

	expect_tracked(frag4("203.0.113.1", 0x1234, IP4_MF, 53), MATCHED, 1);
	expect(frag4("203.0.113.1", 0x1234, IP4_MF | 185, 0), MATCHED);
	expect(frag4("203.0.113.1", 0x1234, 370, 0), MATCHED);
	/* Another datagram: other id, or same id from another source. */
	expect(frag4("203.0.113.1", 0x9999, 370, 0), PASSED);
	expect(frag4("203.0.113.2", 0x1234, 370, 0), PASSED);

	/* A first fragment that does not match is not tracked. */
	expect(frag4("203.0.113.1", 0x4321, IP4_MF, 54), PASSED);
	expect_tracked(frag4("203.0.113.1", 0x4321, 185, 0), PASSED, 1);
}

Test(bpf, ipv4_later_fragment_matches_an_ip_rule)
{
	LPM4("192.0.2.0", 24, ANY);

	/* No first fragment seen: the "ip" rule alone takes it. */
	expect_tracked(frag4("203.0.113.1", 0x7777, 185, 0), MATCHED, 0);

	/* A port rule cannot take a later fragment on its own. */
	LPM4("192.0.2.0", 24, RANGE(L3X_P_UDP, 53, 53));
	expect(frag4("203.0.113.1", 0x7777, 185, 0), PASSED);
}

Test(bpf, ipv4_first_fragment_too_short_for_ports_is_malformed)
{
	struct frame f = { 0 };

	LPM4("0.0.0.0", 0, ANY);
	start4(&f, 5, IP4_MF);
	next(&f, P_UDP, 2);
	done(&f);
	run(&f, MALFORMED, "first fragment with 2 bytes of UDP");
	cr_assert_eq(counter(L3X_CNT_FRAGS_TRACKED), 0);
}

/* IPv6 fragment: dest opts in the fragmentable part when @opts, so the
 * fragment header's next header is not the upper-layer protocol. */
static struct frame frag6_to(const char *src, uint32_t id, uint16_t off,
			     bool more, bool opts, uint16_t dport)
{
	struct frame f = { 0 };

	eth(&f, ETH_IP6);
	ipv6(&f, src, "2001:db8::2");
	ext6(&f, P_HOP, 8);
	frag6(&f, id, off, more);
	if (off)
		frag_data(&f, opts ? P_DSTOPTS : P_UDP, 8);
	else if (opts)
		ext6(&f, P_DSTOPTS, 8);
	if (!off)
		udp(&f, dport);
	done(&f);
	return f;
}

Test(bpf, ipv6_later_fragments_follow_a_matched_first)
{
	LPM6("2001:db8::", 32, RANGE(L3X_P_UDP, 53, 53));

	expect_tracked(frag6_to("2001:db8::1", 0xabcdef01, 0, true, false, 53),
		       MATCHED, 1);
	expect(frag6_to("2001:db8::1", 0xabcdef01, 2, true, false, 0), MATCHED);
	expect(frag6_to("2001:db8::1", 0xabcdef01, 4, false, false, 0),
	       MATCHED);
	expect(frag6_to("2001:db8::1", 0xabcdef02, 4, false, false, 0), PASSED);
	expect(frag6_to("2001:db8::3", 0xabcdef01, 4, false, false, 0), PASSED);

	/* Not matched first, not tracked. */
	expect(frag6_to("2001:db8::1", 7, 0, true, false, 54), PASSED);
	expect_tracked(frag6_to("2001:db8::1", 7, 2, false, false, 0), PASSED,
		       1);
}

Test(bpf, ipv6_fragment_with_options_after_the_fragment_header)
{
	LPM6("2001:db8::", 32, RANGE(L3X_P_UDP, 53, 53));

	/* The first fragment walks on to UDP; the later one must stop at
	 * the fragment header (what follows is data) and still find it. */
	expect_tracked(frag6_to("2001:db8::1", 99, 0, true, true, 53), MATCHED,
		       1);
	expect(frag6_to("2001:db8::1", 99, 2, false, true, 0), MATCHED);
}

Test(bpf, ipv6_later_fragment_matches_an_ip_rule)
{
	LPM6("2001:db8::", 32, ANY);

	expect_tracked(frag6_to("2001:db8::1", 5, 2, false, false, 0), MATCHED,
		       0);
}

Test(bpf, ipv6_atomic_fragment_matches_without_tracking)
{
	LPM6("2001:db8::", 32, RANGE(L3X_P_UDP, 53, 53));

	/* Offset 0 and no more fragments: a whole datagram (RFC 6946). */
	expect_tracked(frag6_to("2001:db8::1", 11, 0, false, false, 53),
		       MATCHED, 0);
}
