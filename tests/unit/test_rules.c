/*
 * test_rules.c - rule syntax and its messages, canonical formatting, the
 * map keys and the trie build: all in process, no privilege needed. The
 * sync into real BPF maps is tests/netns/test_rules_maps.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "l3x_internal.h"
#include "rule_helpers.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static void parse_bad(const char *text, const char *why)
{
	struct l3x_rule r, before;
	char err[160] = "";

	memset(&r, 0xa5, sizeof(r));
	before = r;
	cr_assert_eq(l3x_rule__parse(&r, text, err, sizeof(err)), -EINVAL,
		     "'%s' accepted", text);
	cr_assert(strstr(err, why), "'%s': message '%s' lacks '%s'", text, err,
		  why);
	cr_assert(!strchr(err, '\n'), "'%s': message is more than one line",
		  text);
	cr_assert_eq(memcmp(&r, &before, sizeof(r)), 0,
		     "'%s': refused rule was written", text);
}

/* ------------------------------------------------------------ parse */

static void expect_ports(const struct l3x_rule *r, unsigned lo, unsigned hi)
{
	cr_assert_eq(r->port_lo, lo, "port_lo %u, want %u", r->port_lo, lo);
	cr_assert_eq(r->port_hi, hi, "port_hi %u, want %u", r->port_hi, hi);
}

Test(rules, parse_accepts_the_documented_examples)
{
	struct l3x_rule r;

	r = parse_ok("tcp 198.51.100.0/24 80");
	cr_assert_eq(r.proto, L3X_PROTO_TCP);
	cr_assert_eq(r.family, 4);
	cr_assert_eq(r.prefix_len, 24);
	expect_ports(&r, 80, 80);
	cr_assert_eq(memcmp(r.addr, (uint8_t[16]){ 198, 51, 100, 0 }, 16), 0);

	r = parse_ok("udp 2001:db8::/32 53");
	cr_assert_eq(r.proto, L3X_PROTO_UDP);
	cr_assert_eq(r.family, 6);
	cr_assert_eq(r.prefix_len, 32);
	cr_assert_eq(memcmp(r.addr, (uint8_t[16]){ 0x20, 1, 0x0d, 0xb8 }, 16),
		     0);

	r = parse_ok("tcp 0.0.0.0/0 1-1024");
	cr_assert_eq(r.prefix_len, 0);
	expect_ports(&r, 1, 1024);

	r = parse_ok("ip 192.0.2.7");
	cr_assert_eq(r.proto, L3X_PROTO_IP);
	cr_assert_eq(r.prefix_len, 32);
	expect_ports(&r, 0, 65535);
}

Test(rules, parse_takes_any_case_and_spaces_or_tabs)
{
	struct l3x_rule r = parse_ok("  UDP\t2001:db8::7 \t 9000-9001 ");

	cr_assert_eq(r.proto, L3X_PROTO_UDP);
	cr_assert_eq(r.prefix_len, 128);
	expect_ports(&r, 9000, 9001);
	cr_assert_eq(parse_ok("Tcp 192.0.2.1").proto, L3X_PROTO_TCP);
	cr_assert_eq(parse_ok("iP ::/0").prefix_len, 0);
}

Test(rules, parse_without_port_means_every_port)
{
	struct l3x_rule r = parse_ok("tcp 192.0.2.0/24");

	expect_ports(&r, 0, 65535);
	r = parse_ok("udp 192.0.2.0/24 0-65535");
	expect_ports(&r, 0, 65535);
	r = parse_ok("udp 192.0.2.0/24 0");
	cr_assert_eq(r.port_hi, 0);
}

Test(rules, parse_refuses_each_bad_part_naming_it)
{
	parse_bad("", "rule: empty");
	parse_bad(" \t ", "rule: empty");
	parse_bad("icmp 192.0.2.1", "protocol 'icmp': must be tcp, udp or ip");
	parse_bad("tcp", "rule: missing destination");
	parse_bad("tcp 300.1.2.3 80",
		  "destination '300.1.2.3': not an IPv4 or IPv6 address");
	parse_bad("tcp 300.1.2.3/24", "destination '300.1.2.3': not an");
	parse_bad("tcp example.com 80", "not an IPv4 or IPv6 address");
	parse_bad("tcp /24 80", "destination '/24': not an IPv4 or IPv6");
	parse_bad("tcp 192.0.2.0/33 80", "prefix '/33': must be 0-32 for IPv4");
	parse_bad("tcp 2001:db8::/129",
		  "prefix '/129': must be 0-128 for IPv6");
	parse_bad("tcp 192.0.2.0/ 80", "prefix '/': must be 0-32");
	parse_bad("tcp 192.0.2.0/-1 80", "prefix '/-1'");
	parse_bad("tcp 192.0.2.0/+24 80", "prefix '/+24'");
	parse_bad("tcp 192.0.2.0/0x18 80", "prefix '/0x18'");
	parse_bad(
		"tcp 198.51.100.7/24 80",
		"destination '198.51.100.7/24': host bits set past /24 (did you mean 198.51.100.0/24?)");
	parse_bad("udp 2001:db8::1/32", "did you mean 2001:db8::/32?");
	parse_bad("tcp 192.0.2.1 70000", "port '70000': must be 0-65535");
	parse_bad("tcp 192.0.2.1 99999999999999999999", "must be 0-65535");
	parse_bad("tcp 192.0.2.1 +80", "port '+80': must be 0-65535");
	parse_bad("tcp 192.0.2.1 8x", "port '8x'");
	parse_bad("tcp 192.0.2.1 0x50", "port '0x50'");
	parse_bad("tcp 192.0.2.1 80-70000", "port '70000': must be 0-65535");
	parse_bad("tcp 192.0.2.1 -80", "port range '-80': missing start");
	parse_bad("tcp 192.0.2.1 80-", "port range '80-': missing end");
	parse_bad("tcp 192.0.2.1 90-80",
		  "port range '90-80': start is above end");
	parse_bad("ip 192.0.2.1 80",
		  "ports: only tcp and udp rules take ports");
	parse_bad("tcp 192.0.2.1 80 extra",
		  "'extra': unexpected text after the port");
}

Test(rules, parse_takes_a_vlan_after_the_destination_or_the_port)
{
	struct l3x_rule r;
	char buf[L3X_RULE_STRLEN];

	r = parse_ok("tcp 198.51.100.0/24 vlan 100");
	cr_assert_eq(r.vlan, 100);
	expect_ports(&r, 0, 65535);
	r = parse_ok("udp 2001:db8::/32 53 VLAN 4094");
	cr_assert_eq(r.vlan, 4094);
	cr_assert_eq(r.port_lo, 53);
	r = parse_ok("ip 192.0.2.7 vlan 1");
	cr_assert_eq(r.vlan, 1);
	cr_assert_eq(l3x_rule__format(&r, buf, sizeof(buf)),
		     (int)strlen("ip 192.0.2.7 vlan 1"));
	cr_assert_str_eq(buf, "ip 192.0.2.7 vlan 1");
	r = parse_ok("tcp 192.0.2.7 80");
	cr_assert_eq(r.vlan, 0, "no vlan: any");
	parse_bad("tcp 192.0.2.0/24 vlan", "vlan: missing its ID");
	parse_bad("tcp 192.0.2.0/24 vlan 0", "vlan '0': must be 1-4094");
	parse_bad("tcp 192.0.2.0/24 vlan 4095", "vlan '4095': must be 1-4094");
	parse_bad("tcp 192.0.2.0/24 vlan x", "vlan 'x': must be 1-4094");
	parse_bad("tcp 192.0.2.0/24 80 vlan 7 extra",
		  "'extra': unexpected text after the vlan");
	parse_bad("tcp 192.0.2.0/24 vlan 7 80",
		  "'80': unexpected text after the vlan");
	r.vlan = 4095;
	cr_assert_eq(l3x_rule__format(&r, buf, sizeof(buf)), -EINVAL);
}

Test(rules, parse_names_the_first_bad_part_from_the_left)
{
	parse_bad("icmp 300.1.2.3 70000 extra", "protocol 'icmp'");
	parse_bad("tcp 300.1.2.3 70000 extra", "destination '300.1.2.3'");
	parse_bad("tcp 192.0.2.1 70000 extra", "port '70000'");
}

Test(rules, parse_refuses_null_and_overlong_text)
{
	char text[400];
	struct l3x_rule r;
	char err[64] = "";

	cr_assert_eq(l3x_rule__parse(&r, NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "rule: empty"), "%s", err);
	memset(text, ' ', sizeof(text));
	memcpy(text + sizeof(text) - 20, "tcp 192.0.2.1 80", 17);
	cr_assert_eq(l3x_rule__parse(&r, text, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "rule: longer than"), "%s", err);
	cr_assert_eq(l3x_rule__parse(NULL, "tcp 192.0.2.1", NULL, 0), -EINVAL);
}

Test(rules, parse_never_writes_past_the_error_buffer)
{
	struct l3x_rule r;
	char err[8];

	memset(err, 'X', sizeof(err));
	cr_assert_eq(l3x_rule__parse(&r, "icmp 1.2.3.4", err, 4), -EINVAL);
	cr_assert_eq(err[3], '\0');
	cr_assert_eq(err[4], 'X');
	memset(err, 'X', sizeof(err));
	cr_assert_eq(l3x_rule__parse(&r, "icmp 1.2.3.4", err, 0), -EINVAL);
	cr_assert_eq(err[0], 'X');
	cr_assert_eq(l3x_rule__parse(&r, "icmp 1.2.3.4", NULL, 0), -EINVAL);
	cr_assert_eq(l3x_rule__parse(&r, "icmp 1.2.3.4", NULL, 99), -EINVAL);
}

/* ------------------------------------------------------------ format */

Test(rules, format_writes_the_canonical_text)
{
	static const char *const same[] = {
		"tcp 198.51.100.0/24 80",
		"udp 2001:db8::/32 53",
		"tcp 0.0.0.0/0 1-1024",
		"ip 192.0.2.7",
		"ip ::/0",
		"udp 2001:db8::7 0",
		"tcp 10.0.0.0/8 0-65534",
		"udp 192.0.2.128/25 9000-9001",
		"tcp 192.0.2.1",
		"udp ::ffff:192.0.2.1 53",
	};
	static const char *const canon[][2] = {
		{ "TCP 192.0.2.1/32 80", "tcp 192.0.2.1 80" },
		{ "udp 2001:DB8:0:0::/64 0-65535", "udp 2001:db8::/64" },
		{ "ip 2001:db8::1/128", "ip 2001:db8::1" },
		{ "tcp 192.0.2.0/024 080-0090", "tcp 192.0.2.0/24 80-90" },
		{ "tcp 192.0.2.1 443-443", "tcp 192.0.2.1 443" },
	};
	char buf[L3X_RULE_STRLEN];
	struct l3x_rule r;
	size_t i;
	int n;

	for (i = 0; i < ARRAY_SIZE(same); i++) {
		r = parse_ok(same[i]);
		n = l3x_rule__format(&r, buf, sizeof(buf));
		cr_assert_eq(n, (int)strlen(same[i]), "%s: %d", same[i], n);
		cr_assert_str_eq(buf, same[i]);
	}
	for (i = 0; i < ARRAY_SIZE(canon); i++) {
		r = parse_ok(canon[i][0]);
		cr_assert_gt(l3x_rule__format(&r, buf, sizeof(buf)), 0);
		cr_assert_str_eq(buf, canon[i][1]);
	}
}

Test(rules, format_refuses_small_buffers_and_bad_rules)
{
	struct l3x_rule r = parse_ok("udp 2001:db8::7 9000");
	char buf[L3X_RULE_STRLEN];

	cr_assert_eq(l3x_rule__format(&r, buf, 5), -ENOSPC);
	cr_assert_eq(l3x_rule__format(&r, buf, strlen("udp 2001:db8::7 9000")),
		     -ENOSPC, "no room for the NUL");
	cr_assert_eq(l3x_rule__format(&r, NULL, 0), -ENOSPC);
	r.family = 5;
	cr_assert_eq(l3x_rule__format(&r, buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(l3x_rule__format(NULL, buf, sizeof(buf)), -EINVAL);
}

Test(rules, format_of_the_longest_rule_fits_l3x_rule_strlen)
{
	struct l3x_rule r =
		parse_ok("udp ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"
			 "/127 65534-65535 vlan 4094");
	char buf[L3X_RULE_STRLEN];

	cr_assert_gt(l3x_rule__format(&r, buf, sizeof(buf)), 0);
}

static uint32_t rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* A random valid rule, built field by field rather than parsed. */
static struct l3x_rule random_rule(uint32_t *s)
{
	struct l3x_rule r;
	unsigned i, len, a, b;

	memset(&r, 0, sizeof(r));
	r.family = rnd(s) % 2 ? 6 : 4;
	len = r.family == 4 ? 4 : 16;
	r.prefix_len = (uint8_t)(rnd(s) % (8 * len + 1));
	if (rnd(s) % 4 == 0)
		r.prefix_len = (uint8_t)(8 * len);
	for (i = 0; i < len; i++) {
		/* some zero runs, so IPv6 text uses "::" */
		r.addr[i] = rnd(s) % 3 ? (uint8_t)rnd(s) : 0;
		if (8 * (i + 1) > r.prefix_len)
			r.addr[i] &= r.prefix_len > 8 * i
					     ? (uint8_t)(0xff00 >>
							 (r.prefix_len - 8 * i))
					     : 0;
	}
	r.proto = (uint8_t[]){ L3X_PROTO_IP, L3X_PROTO_TCP,
			       L3X_PROTO_UDP }[rnd(s) % 3];
	r.port_lo = 0;
	r.port_hi = 65535;
	if (r.proto != L3X_PROTO_IP && rnd(s) % 4) {
		a = rnd(s) % 65536;
		b = rnd(s) % 3 ? a : rnd(s) % 65536;
		r.port_lo = (uint16_t)(a < b ? a : b);
		r.port_hi = (uint16_t)(a < b ? b : a);
	}
	if (rnd(s) % 3 == 0)
		r.vlan = (uint16_t)(1 + rnd(s) % 4094);
	return r;
}

Test(rules, parse_of_format_gives_the_rule_back_for_many_rules)
{
	char buf[L3X_RULE_STRLEN], again[L3X_RULE_STRLEN];
	struct l3x_rule r, back;
	uint32_t seed = 42;
	int i;

	for (i = 0; i < 20000; i++) {
		r = random_rule(&seed);
		cr_assert_eq(l3x_rule_check(&r), 0);
		cr_assert_gt(l3x_rule__format(&r, buf, sizeof(buf)), 0);
		back = parse_ok(buf);
		cr_assert_eq(memcmp(&r, &back, sizeof(r)), 0, "%s", buf);
		cr_assert_gt(l3x_rule__format(&back, again, sizeof(again)), 0);
		cr_assert_str_eq(buf, again);
	}
}

/* ------------------------------------------------------------ check, keys */

/* Rule @text as parsed, then changed by @change (on r): check refuses it. */
#define CHECK_REFUSES(text, change, what)                                      \
	do {                                                                   \
		struct l3x_rule r = parse_ok(text);                            \
		change;                                                        \
		cr_assert_eq(l3x_rule_check(&r), -EINVAL, what);               \
	} while (0)

Test(rules, check_refuses_what_parse_would_not_make)
{
	struct l3x_rule r = parse_ok("tcp 192.0.2.0/24 80");

	cr_assert_eq(l3x_rule_check(&r), 0);
	CHECK_REFUSES("tcp 192.0.2.0/24 80", r.addr[3] = 1, "host bits");
	CHECK_REFUSES("ip 192.0.2.1", r.port_lo = 5, "ports on ip");
	CHECK_REFUSES("tcp 192.0.2.1 80", r.addr[8] = 1, "bytes past IPv4");
	CHECK_REFUSES("tcp 192.0.2.1 80", r.proto = 1, "protocol");
	CHECK_REFUSES("tcp 192.0.2.1 80", r.prefix_len = 33, "prefix length");
	CHECK_REFUSES("tcp 2001:db8::1 80", r.port_lo = 81, "port order");
	CHECK_REFUSES("tcp 2001:db8::1 80", (r.port_lo = 81, r.family = 0),
		      "family");
	cr_assert_eq(l3x_rule_check(NULL), -EINVAL);
}

Test(rules, key_has_the_same_fields_and_zero_elsewhere)
{
	struct l3x_rule r = parse_ok("udp 192.0.2.0/24 53-54 vlan 9"), back;
	struct l3x_rule_key k, want;

	memset(&k, 0xa5, sizeof(k));
	r.addr[9] = 0x77; /* junk past IPv4: not carried */
	l3x_rule_to_key(&r, &k);
	memset(&want, 0, sizeof(want));
	want.family = 4;
	want.proto = L3X_P_UDP;
	want.prefix_len = 24;
	want.port_lo = 53;
	want.port_hi = 54;
	want.vlan = 9;
	memcpy(want.addr, (uint8_t[]){ 192, 0, 2, 0 }, 4);
	cr_assert_eq(memcmp(&k, &want, sizeof(k)), 0);
	memset(&back, 0xa5, sizeof(back));
	l3x_rule_from_key(&k, &back);
	r.addr[9] = 0;
	cr_assert_eq(memcmp(&back, &r, sizeof(r)), 0);

	r = parse_ok("tcp 2001:db8::8:0:1 80");
	l3x_rule_to_key(&r, &k);
	cr_assert_eq(k.family, 6);
	cr_assert_eq(memcmp(k.addr, r.addr, 16), 0);
	l3x_rule_from_key(&k, &back);
	cr_assert_eq(memcmp(&back, &r, sizeof(r)), 0);
}

/* ------------------------------------------------------------ build */

static const struct l3x_prefix_entry *
entry_for(const struct l3x_prefix_entry *e, size_t n, const char *prefix)
{
	struct l3x_rule_key k = key_of(prefix);
	size_t i;

	for (i = 0; i < n; i++)
		if (e[i].key.prefixlen == k.prefix_len &&
		    !memcmp(e[i].key.addr, k.addr, 16))
			return &e[i];
	return NULL;
}

Test(rules, build_gives_a_longer_prefix_the_ranges_of_the_shorter_rules)
{
	struct l3x_rule_key k[] = {
		key_of("tcp 10.0.0.0/8 80"),
		key_of("udp 10.1.0.0/16 53"),
	};
	const struct l3x_prefix_entry *p8, *p16;
	struct l3x_prefix_entry *e;
	size_t n;

	cr_assert_eq(l3x_rules_build(k, ARRAY_SIZE(k), 4, &e, &n), 0);
	cr_assert_eq(n, 2);
	p8 = entry_for(e, n, "ip 10.0.0.0/8");
	p16 = entry_for(e, n, "ip 10.1.0.0/16");
	cr_assert(p8 && p16);
	cr_assert_eq(p16->val.count, 2);
	cr_assert(has_range(&p16->val, L3X_P_TCP, 80, 80));
	cr_assert(has_range(&p16->val, L3X_P_UDP, 53, 53));
	cr_assert_eq(p8->val.count, 1, "the /16 rule leaked into the /8");
	cr_assert(has_range(&p8->val, L3X_P_TCP, 80, 80));
	free(e);
}

Test(rules, build_leaves_sibling_prefixes_apart)
{
	struct l3x_rule_key k[] = {
		key_of("tcp 198.51.100.0/25 80"),
		key_of("udp 198.51.100.128/25 53"),
	};
	const struct l3x_prefix_entry *p;
	struct l3x_prefix_entry *e;
	size_t n;

	cr_assert_eq(l3x_rules_build(k, ARRAY_SIZE(k), 4, &e, &n), 0);
	cr_assert_eq(n, 2);
	p = entry_for(e, n, "ip 198.51.100.128/25");
	cr_assert(p);
	cr_assert_eq(p->val.count, 1);
	cr_assert(has_range(&p->val, L3X_P_UDP, 53, 53));
	free(e);
}

Test(rules, build_stores_each_range_once_and_ip_as_any_protocol_any_port)
{
	struct l3x_rule_key k[] = {
		key_of("tcp 192.0.2.7 80"),
		key_of("tcp 192.0.2.0/24 80"), /* same range, wider prefix */
		key_of("tcp 192.0.2.7 80"),    /* the same rule twice */
		key_of("ip 192.0.2.0/24"),
		key_of("ip 192.0.2.0/25"),  /* same ANY range again */
		key_of("udp 192.0.2.7 80"), /* other protocol: distinct */
	};
	const struct l3x_prefix_entry *p;
	struct l3x_prefix_entry *e;
	size_t n;

	cr_assert_eq(l3x_rules_build(k, ARRAY_SIZE(k), 4, &e, &n), 0);
	cr_assert_eq(n, 3, "a prefix given twice made two entries");
	p = entry_for(e, n, "ip 192.0.2.7");
	cr_assert(p);
	cr_assert_eq(p->val.count, 3, "duplicate ranges stored");
	cr_assert(has_range(&p->val, L3X_P_TCP, 80, 80));
	cr_assert(has_range(&p->val, L3X_P_UDP, 80, 80));
	cr_assert(has_range(&p->val, L3X_P_ANY, 0, 65535));
	free(e);
}

Test(rules, build_puts_a_default_route_rule_in_every_entry)
{
	struct l3x_rule_key k[] = {
		key_of("tcp 192.0.2.7 80"), key_of("udp 198.51.100.0/24 53"),
		key_of("ip 0.0.0.0/0"),	    key_of("tcp 10.0.0.0/8 22"),
		key_of("ip ::/0"), /* the IPv6 one stays in its trie */
	};
	struct l3x_prefix_entry *e;
	size_t n, i;

	cr_assert_eq(l3x_rules_build(k, ARRAY_SIZE(k), 4, &e, &n), 0);
	cr_assert_eq(n, 4);
	for (i = 0; i < n; i++) {
		cr_assert(has_range(&e[i].val, L3X_P_ANY, 0, 65535),
			  "entry /%u lacks the /0 rule", e[i].key.prefixlen);
		cr_assert_eq(e[i].val.count, e[i].key.prefixlen ? 2 : 1);
	}
	free(e);
}

Test(rules, build_keeps_the_families_apart)
{
	struct l3x_rule_key k[] = {
		key_of("ip 0.0.0.0/0"),
		key_of("tcp 192.0.2.0/24 80"),
		key_of("udp 2001:db8::/32 53"),
		key_of("tcp ::/0 443"),
		/* the same address bytes in both families */
		key_of("ip 0.0.0.0/32"),
		key_of("ip ::/32"),
	};
	const struct l3x_prefix_entry *p;
	struct l3x_prefix_entry *e;
	size_t n, i;

	cr_assert_eq(l3x_rules_build(k, ARRAY_SIZE(k), 6, &e, &n), 0);
	cr_assert_eq(n, 3);
	for (i = 0; i < n; i++) {
		cr_assert(!has_range(&e[i].val, L3X_P_TCP, 80, 80));
		cr_assert(has_range(&e[i].val, L3X_P_TCP, 443, 443));
	}
	p = entry_for(e, n, "ip ::/32");
	cr_assert(p);
	cr_assert_eq(p->val.count, 2, "the IPv4 /32 leaked in");
	free(e);
	cr_assert_eq(l3x_rules_build(k, ARRAY_SIZE(k), 4, &e, &n), 0);
	cr_assert_eq(n, 3);
	p = entry_for(e, n, "ip 0.0.0.0/32");
	cr_assert(p);
	cr_assert_eq(p->val.count, 1);
	cr_assert_eq(memcmp(p->key.addr + 4, (uint8_t[12]){ 0 }, 12), 0);
	free(e);
}

Test(rules, build_of_no_rules_is_empty)
{
	struct l3x_prefix_entry *e;
	size_t n = 99;

	cr_assert_eq(l3x_rules_build(NULL, 0, 4, &e, &n), 0);
	cr_assert_eq(n, 0);
	free(e);
}

Test(rules, build_gives_the_same_entries_for_any_rule_order)
{
	struct l3x_rule_key k[] = {
		key_of("udp 10.1.0.0/16 53"),
		key_of("tcp 10.0.0.0/8 80"),
		key_of("tcp 10.1.2.0/24 1-9"),
		key_of("ip 10.1.2.3"),
	};
	struct l3x_rule_key rev[ARRAY_SIZE(k)];
	struct l3x_prefix_entry *a, *b;
	size_t na, nb, i;

	for (i = 0; i < ARRAY_SIZE(k); i++)
		rev[i] = k[ARRAY_SIZE(k) - 1 - i];
	cr_assert_eq(l3x_rules_build(k, ARRAY_SIZE(k), 4, &a, &na), 0);
	cr_assert_eq(l3x_rules_build(rev, ARRAY_SIZE(k), 4, &b, &nb), 0);
	cr_assert_eq(na, nb);
	cr_assert_eq(memcmp(a, b, na * sizeof(*a)), 0);
	free(a);
	free(b);
}

Test(rules, build_refuses_more_than_l3x_max_ranges_on_one_prefix)
{
	struct l3x_rule_key k[L3X_MAX_RANGES + 2];
	struct l3x_prefix_entry *e;
	char text[64];
	size_t n;
	int i;

	for (i = 0; i < L3X_MAX_RANGES; i++) {
		snprintf(text, sizeof(text), "udp 192.0.2.0/24 %d", 1000 + i);
		k[i] = key_of(text);
	}
	k[L3X_MAX_RANGES] = k[0]; /* a duplicate does not count */
	cr_assert_eq(l3x_rules_build(k, L3X_MAX_RANGES + 1, 4, &e, &n), 0);
	cr_assert_eq(e[0].val.count, L3X_MAX_RANGES);
	free(e);
	k[L3X_MAX_RANGES + 1] = key_of("tcp 192.0.2.0/24 1000");
	cr_assert_eq(l3x_rules_build(k, L3X_MAX_RANGES + 2, 4, &e, &n),
		     -ENOSPC);
	/* the same through a shorter prefix */
	k[L3X_MAX_RANGES + 1] = key_of("tcp 192.0.0.0/16 1000");
	cr_assert_eq(l3x_rules_build(k, L3X_MAX_RANGES + 2, 4, &e, &n),
		     -ENOSPC);
	/* but IPv6 does not care */
	cr_assert_eq(l3x_rules_build(k, L3X_MAX_RANGES + 2, 6, &e, &n), 0);
	cr_assert_eq(n, 0);
	free(e);
}
