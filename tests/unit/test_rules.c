/*
 * test_rules.c - rule syntax and its messages, canonical formatting, the
 * map keys, the trie build, and the sync into real BPF maps created here
 * with the sizes the program uses (skipped, with the reason, where BPF
 * maps cannot be created).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* RTLD_NEXT */
#endif
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>

#include "l3x_internal.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct l3x_rule parse_ok(const char *text)
{
	struct l3x_rule r;
	char err[128] = "";

	cr_assert_eq(l3x_rule__parse(&r, text, err, sizeof(err)), 0,
		     "'%s' refused: %s", text, err);
	return r;
}

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

Test(rules, parse_accepts_the_documented_examples)
{
	struct l3x_rule r;

	r = parse_ok("tcp 198.51.100.0/24 80");
	cr_assert_eq(r.proto, L3X_PROTO_TCP);
	cr_assert_eq(r.family, 4);
	cr_assert_eq(r.prefix_len, 24);
	cr_assert_eq(r.port_lo, 80);
	cr_assert_eq(r.port_hi, 80);
	cr_assert_eq(memcmp(r.addr, (uint8_t[16]){ 198, 51, 100, 0 }, 16), 0);

	r = parse_ok("udp 2001:db8::/32 53");
	cr_assert_eq(r.proto, L3X_PROTO_UDP);
	cr_assert_eq(r.family, 6);
	cr_assert_eq(r.prefix_len, 32);
	cr_assert_eq(memcmp(r.addr, (uint8_t[16]){ 0x20, 1, 0x0d, 0xb8 }, 16), 0);

	r = parse_ok("tcp 0.0.0.0/0 1-1024");
	cr_assert_eq(r.prefix_len, 0);
	cr_assert_eq(r.port_lo, 1);
	cr_assert_eq(r.port_hi, 1024);

	r = parse_ok("ip 192.0.2.7");
	cr_assert_eq(r.proto, L3X_PROTO_IP);
	cr_assert_eq(r.prefix_len, 32);
	cr_assert_eq(r.port_lo, 0);
	cr_assert_eq(r.port_hi, 65535);
}

Test(rules, parse_takes_any_case_and_spaces_or_tabs)
{
	struct l3x_rule r = parse_ok("  UDP\t2001:db8::7 \t 9000-9001 ");

	cr_assert_eq(r.proto, L3X_PROTO_UDP);
	cr_assert_eq(r.prefix_len, 128);
	cr_assert_eq(r.port_lo, 9000);
	cr_assert_eq(r.port_hi, 9001);
	cr_assert_eq(parse_ok("Tcp 192.0.2.1").proto, L3X_PROTO_TCP);
	cr_assert_eq(parse_ok("iP ::/0").prefix_len, 0);
}

Test(rules, parse_without_port_means_every_port)
{
	struct l3x_rule r = parse_ok("tcp 192.0.2.0/24");

	cr_assert_eq(r.port_lo, 0);
	cr_assert_eq(r.port_hi, 65535);
	r = parse_ok("udp 192.0.2.0/24 0-65535");
	cr_assert_eq(r.port_lo, 0);
	cr_assert_eq(r.port_hi, 65535);
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
	parse_bad("tcp 2001:db8::/129", "prefix '/129': must be 0-128 for IPv6");
	parse_bad("tcp 192.0.2.0/ 80", "prefix '/': must be 0-32");
	parse_bad("tcp 192.0.2.0/-1 80", "prefix '/-1'");
	parse_bad("tcp 192.0.2.0/+24 80", "prefix '/+24'");
	parse_bad("tcp 192.0.2.0/0x18 80", "prefix '/0x18'");
	parse_bad("tcp 198.51.100.7/24 80",
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
	parse_bad("tcp 192.0.2.1 90-80", "port range '90-80': start is above end");
	parse_bad("ip 192.0.2.1 80", "ports: only tcp and udp rules take ports");
	parse_bad("tcp 192.0.2.1 80 extra",
		  "'extra': unexpected text after the port");
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
		"tcp 198.51.100.0/24 80", "udp 2001:db8::/32 53",
		"tcp 0.0.0.0/0 1-1024",	  "ip 192.0.2.7",
		"ip ::/0",		  "udp 2001:db8::7 0",
		"tcp 10.0.0.0/8 0-65534", "udp 192.0.2.128/25 9000-9001",
		"tcp 192.0.2.1",	  "udp ::ffff:192.0.2.1 53",
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
		parse_ok("udp ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127 65534-65535");
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
			r.addr[i] &= r.prefix_len > 8 * i ?
				(uint8_t)(0xff00 >> (r.prefix_len - 8 * i)) : 0;
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

Test(rules, check_refuses_what_parse_would_not_make)
{
	struct l3x_rule r = parse_ok("tcp 192.0.2.0/24 80");

	cr_assert_eq(l3x_rule_check(&r), 0);
	r.addr[3] = 1;
	cr_assert_eq(l3x_rule_check(&r), -EINVAL, "host bits");
	r = parse_ok("ip 192.0.2.1");
	r.port_lo = 5;
	cr_assert_eq(l3x_rule_check(&r), -EINVAL, "ports on ip");
	r = parse_ok("tcp 192.0.2.1 80");
	r.addr[8] = 1;
	cr_assert_eq(l3x_rule_check(&r), -EINVAL, "bytes past IPv4");
	r = parse_ok("tcp 192.0.2.1 80");
	r.proto = 1;
	cr_assert_eq(l3x_rule_check(&r), -EINVAL, "protocol");
	r = parse_ok("tcp 192.0.2.1 80");
	r.prefix_len = 33;
	cr_assert_eq(l3x_rule_check(&r), -EINVAL, "prefix length");
	r = parse_ok("tcp 2001:db8::1 80");
	r.port_lo = 81;
	cr_assert_eq(l3x_rule_check(&r), -EINVAL, "port order");
	r.family = 0;
	cr_assert_eq(l3x_rule_check(&r), -EINVAL, "family");
	cr_assert_eq(l3x_rule_check(NULL), -EINVAL);
}

Test(rules, key_has_the_same_fields_and_zero_elsewhere)
{
	struct l3x_rule r = parse_ok("udp 192.0.2.0/24 53-54"), back;
	struct l3x_rule_key k, want;

	memset(&k, 0xa5, sizeof(k));
	r.addr[9] = 0x77;	/* junk past IPv4: not carried */
	l3x_rule_to_key(&r, &k);
	memset(&want, 0, sizeof(want));
	want.family = 4;
	want.proto = L3X_P_UDP;
	want.prefix_len = 24;
	want.port_lo = 53;
	want.port_hi = 54;
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

static struct l3x_rule_key key_of(const char *text)
{
	struct l3x_rule r = parse_ok(text);
	struct l3x_rule_key k;

	l3x_rule_to_key(&r, &k);
	return k;
}

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

static bool has_range(const struct l3x_lpm_val *v, int proto, int lo, int hi)
{
	__u32 i;

	for (i = 0; i < v->count; i++)
		if (v->r[i].proto == proto && v->r[i].lo == lo &&
		    v->r[i].hi == hi)
			return true;
	return false;
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
		key_of("tcp 192.0.2.0/24 80"),	/* same range, wider prefix */
		key_of("tcp 192.0.2.7 80"),	/* the same rule twice */
		key_of("ip 192.0.2.0/24"),
		key_of("ip 192.0.2.0/25"),	/* same ANY range again */
		key_of("udp 192.0.2.7 80"),	/* other protocol: distinct */
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
		key_of("tcp 192.0.2.7 80"),
		key_of("udp 198.51.100.0/24 53"),
		key_of("ip 0.0.0.0/0"),
		key_of("tcp 10.0.0.0/8 22"),
		key_of("ip ::/0"),	/* the IPv6 one stays in its trie */
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
		key_of("udp 10.1.0.0/16 53"),  key_of("tcp 10.0.0.0/8 80"),
		key_of("tcp 10.1.2.0/24 1-9"), key_of("ip 10.1.2.3"),
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
	k[L3X_MAX_RANGES] = k[0];	/* a duplicate does not count */
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

/* ------------------------------------------------------------ maps */

static struct l3x_maps maps = { -1, -1, -1, -1, -1, -1 };

/*
 * A link-time seam: rules.c's calls to bpf_map_update_elem() land here
 * (the test's own definition wins over libbpf's shared one), so a test can
 * act at the exact moment between two writes, as another process might.
 */
static int (*real_update)(int, const void *, const void *, __u64);
static int (*real_delete)(int, const void *);
static void (*before_update)(int fd);
static char trie_log[64];	/* 'W'rite, 'D'elete on the IPv4 trie */
static size_t trie_log_n;

static void log_op(int fd, char op)
{
	if (fd == maps.lpm4 && trie_log_n < sizeof(trie_log) - 1)
		trie_log[trie_log_n++] = op;
}

int bpf_map_update_elem(int fd, const void *key, const void *value,
			__u64 flags)
{
	void (*hook)(int) = before_update;

	if (!real_update)
		real_update = (int (*)(int, const void *, const void *,
				       __u64))dlsym(RTLD_NEXT,
						    "bpf_map_update_elem");
	if (hook)
		hook(fd);
	log_op(fd, 'W');
	return real_update(fd, key, value, flags);
}

int bpf_map_delete_elem(int fd, const void *key)
{
	if (!real_delete)
		real_delete = (int (*)(int, const void *))dlsym(
			RTLD_NEXT, "bpf_map_delete_elem");
	log_op(fd, 'D');
	return real_delete(fd, key);
}

static void log_start(void)
{
	memset(trie_log, 0, sizeof(trie_log));
	trie_log_n = 0;
}

/* A map like the program's; skips the test where BPF maps are refused. */
static int new_map(enum bpf_map_type type, const char *name, __u32 key_sz,
		   __u32 val_sz, __u32 max)
{
	LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);
	int fd;

	fd = bpf_map_create(type, name, key_sz, val_sz, max,
			    type == BPF_MAP_TYPE_LPM_TRIE ? &lpm : NULL);
	if (fd == -EPERM)
		cr_skip_test("bpf_map_create: EPERM: creating BPF maps needs "
			     "CAP_BPF (run the tests as root)");
	cr_assert_geq(fd, 0, "bpf_map_create %s: %s", name, strerror(-fd));
	return fd;
}

static void make_maps_with(__u32 max_rules, __u32 max_prefixes)
{
	maps.rules = new_map(BPF_MAP_TYPE_HASH, "t_rules",
			     sizeof(struct l3x_rule_key), sizeof(__u32),
			     max_rules);
	maps.lpm4 = new_map(BPF_MAP_TYPE_LPM_TRIE, "t_lpm4",
			    sizeof(struct l3x_lpm4_key),
			    sizeof(struct l3x_lpm_val), max_prefixes);
	maps.lpm6 = new_map(BPF_MAP_TYPE_LPM_TRIE, "t_lpm6",
			    sizeof(struct l3x_lpm6_key),
			    sizeof(struct l3x_lpm_val), L3X_MAX_PREFIXES);
}

static void make_maps(void)
{
	make_maps_with(L3X_MAX_RULES, L3X_MAX_PREFIXES);
}

static void close_maps(void)
{
	l3x_maps_close(&maps);
}

/* The entry a packet to @addr finds: 0, or -ENOENT when it finds none. */
static int lookup(const char *addr, struct l3x_lpm_val *v)
{
	struct l3x_lpm6_key k6 = { .prefixlen = 128 };
	struct l3x_lpm4_key k4 = { .prefixlen = 32 };

	memset(v, 0, sizeof(*v));
	if (inet_pton(AF_INET, addr, k4.addr) == 1)
		return bpf_map_lookup_elem(maps.lpm4, &k4, v);
	cr_assert_eq(inet_pton(AF_INET6, addr, k6.addr), 1);
	return bpf_map_lookup_elem(maps.lpm6, &k6, v);
}

static int map_size(int fd)
{
	struct l3x_rule_key cur, next;	/* big enough for every key here */
	void *prev = NULL;
	int n = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		cur = next;
		prev = &cur;
		n++;
	}
	return n;
}

/* A map's content as sorted key+value records, to compare two states. */
struct dump {
	size_t n, rec;
	unsigned char *d;
};

static size_t dump_rec;

static int cmp_rec(const void *a, const void *b)
{
	return memcmp(a, b, dump_rec);
}

static struct dump dump_map(int fd, size_t ksz, size_t vsz)
{
	struct dump dm = { .rec = ksz + vsz };
	unsigned char cur[64], next[64], *val;
	void *prev = NULL;

	dm.d = malloc(L3X_MAX_RULES * dm.rec);
	cr_assert(dm.d);
	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(cur, next, ksz);
		prev = cur;
		memcpy(dm.d + dm.n * dm.rec, cur, ksz);
		val = dm.d + dm.n * dm.rec + ksz;
		cr_assert_eq(bpf_map_lookup_elem(fd, cur, val), 0);
		dm.n++;
	}
	dump_rec = dm.rec;
	qsort(dm.d, dm.n, dm.rec, cmp_rec);
	return dm;
}

struct snapshot {
	struct dump rules, lpm4, lpm6;
};

static struct snapshot snap(void)
{
	return (struct snapshot){
		.rules = dump_map(maps.rules, sizeof(struct l3x_rule_key), 4),
		.lpm4 = dump_map(maps.lpm4, sizeof(struct l3x_lpm4_key),
				 sizeof(struct l3x_lpm_val)),
		.lpm6 = dump_map(maps.lpm6, sizeof(struct l3x_lpm6_key),
				 sizeof(struct l3x_lpm_val)),
	};
}

static bool same_dump(const struct dump *a, const struct dump *b)
{
	return a->n == b->n && !memcmp(a->d, b->d, a->n * a->rec);
}

static void assert_same_snap(struct snapshot *a, struct snapshot *b)
{
	cr_assert(same_dump(&a->rules, &b->rules), "l3x_rules changed");
	cr_assert(same_dump(&a->lpm4, &b->lpm4), "IPv4 trie changed");
	cr_assert(same_dump(&a->lpm6, &b->lpm6), "IPv6 trie changed");
	free(a->rules.d);
	free(a->lpm4.d);
	free(a->lpm6.d);
	free(b->rules.d);
	free(b->lpm4.d);
	free(b->lpm6.d);
}

/* The tries hold exactly what l3x_rules_build() makes of l3x_rules. */
static void assert_tries_match_rules(void)
{
	struct l3x_rule_key keys[64], cur, next;
	struct l3x_prefix_entry *e;
	struct l3x_lpm_val v;
	struct l3x_lpm4_key k4;
	void *prev = NULL;
	size_t n = 0, ne, i;

	while (!bpf_map_get_next_key(maps.rules, prev, &next)) {
		cur = next;
		prev = &cur;
		cr_assert_lt(n, ARRAY_SIZE(keys));
		keys[n++] = cur;
	}
	cr_assert_eq(l3x_rules_build(keys, n, 4, &e, &ne), 0);
	cr_assert_eq(map_size(maps.lpm4), (int)ne);
	for (i = 0; i < ne; i++) {
		k4.prefixlen = e[i].key.prefixlen;
		memcpy(k4.addr, e[i].key.addr, 4);
		cr_assert_eq(bpf_map_lookup_elem(maps.lpm4, &k4, &v), 0);
		cr_assert_eq(memcmp(&v, &e[i].val, sizeof(v)), 0);
	}
	free(e);
	cr_assert_eq(l3x_rules_build(keys, n, 6, &e, &ne), 0);
	cr_assert_eq(map_size(maps.lpm6), (int)ne);
	for (i = 0; i < ne; i++) {
		cr_assert_eq(bpf_map_lookup_elem(maps.lpm6, &e[i].key, &v), 0);
		cr_assert_eq(memcmp(&v, &e[i].val, sizeof(v)), 0);
	}
	free(e);
}

static int add(const char *text)
{
	struct l3x_rule r = parse_ok(text);

	return l3x_rules_add(&maps, &r);
}

static int del(const char *text)
{
	struct l3x_rule r = parse_ok(text);

	return l3x_rules_del(&maps, &r);
}

static __u32 refcount(const char *text)
{
	struct l3x_rule_key k = key_of(text);
	__u32 ref = 0;

	bpf_map_lookup_elem(maps.rules, &k, &ref);
	return ref;
}

TestSuite(rules_maps, .init = make_maps, .fini = close_maps);

Test(rules_maps, add_makes_addresses_match_in_the_tries)
{
	struct l3x_lpm_val v;

	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(add("udp 198.51.100.128/25 53"), 0);
	cr_assert_eq(add("udp 2001:db8::/32 53"), 0);
	cr_assert_eq(add("ip 2001:db8:1::/48"), 0);

	cr_assert_eq(lookup("198.51.100.200", &v), 0);
	cr_assert_eq(v.count, 2);
	cr_assert(has_range(&v, L3X_P_TCP, 80, 80));
	cr_assert(has_range(&v, L3X_P_UDP, 53, 53));
	cr_assert_eq(lookup("198.51.100.1", &v), 0);
	cr_assert_eq(v.count, 1);
	cr_assert(has_range(&v, L3X_P_TCP, 80, 80));
	cr_assert_eq(lookup("192.0.2.1", &v), -ENOENT);

	cr_assert_eq(lookup("2001:db8:1::5", &v), 0);
	cr_assert_eq(v.count, 2);
	cr_assert(has_range(&v, L3X_P_UDP, 53, 53));
	cr_assert(has_range(&v, L3X_P_ANY, 0, 65535));
	cr_assert_eq(lookup("2001:db8:2::5", &v), 0);
	cr_assert_eq(v.count, 1);
	cr_assert_eq(lookup("2001:db9::5", &v), -ENOENT);
	cr_assert_eq(map_size(maps.rules), 4);
	assert_tries_match_rules();
}

Test(rules_maps, del_removes_stale_prefixes)
{
	struct l3x_lpm_val v;

	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(add("udp 198.51.100.128/25 53"), 0);
	cr_assert_eq(add("udp 2001:db8::/32 53"), 0);
	cr_assert_eq(map_size(maps.lpm4), 2);
	cr_assert_eq(del("udp 198.51.100.128/25 53"), 0);
	cr_assert_eq(map_size(maps.lpm4), 1, "stale /25 left in the trie");
	cr_assert_eq(lookup("198.51.100.200", &v), 0);
	cr_assert_eq(v.count, 1, "the /24 entry kept the /25's range");
	cr_assert_eq(del("udp 2001:db8::/32 53"), 0);
	cr_assert_eq(map_size(maps.lpm6), 0);
	cr_assert_eq(del("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(map_size(maps.lpm4), 0);
	cr_assert_eq(map_size(maps.rules), 0);
	cr_assert_eq(lookup("198.51.100.200", &v), -ENOENT);
}

Test(rules_maps, del_of_a_shorter_prefix_updates_the_longer_entries)
{
	struct l3x_lpm_val v;

	cr_assert_eq(add("tcp 10.0.0.0/8 80"), 0);
	cr_assert_eq(add("udp 10.1.0.0/16 53"), 0);
	cr_assert_eq(lookup("10.1.2.3", &v), 0);
	cr_assert_eq(v.count, 2);
	cr_assert_eq(del("tcp 10.0.0.0/8 80"), 0);
	cr_assert_eq(lookup("10.1.2.3", &v), 0);
	cr_assert_eq(v.count, 1);
	cr_assert(has_range(&v, L3X_P_UDP, 53, 53));
	cr_assert_eq(lookup("10.2.0.1", &v), -ENOENT);
	assert_tries_match_rules();
}

Test(rules_maps, rule_added_twice_stays_until_deleted_twice)
{
	struct l3x_lpm_val v;

	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(refcount("tcp 198.51.100.0/24 80"), 2);
	cr_assert_eq(del("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(refcount("tcp 198.51.100.0/24 80"), 1);
	cr_assert_eq(lookup("198.51.100.200", &v), 0,
		     "rule added twice gone after one del");
	cr_assert_eq(del("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(lookup("198.51.100.200", &v), -ENOENT);
	cr_assert_eq(map_size(maps.rules), 0, "count 0 kept as an entry");
}

Test(rules_maps, del_of_an_absent_rule_is_enoent)
{
	struct snapshot before, after;

	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	before = snap();
	cr_assert_eq(del("tcp 198.51.100.0/24 81"), -ENOENT);
	cr_assert_eq(del("udp 198.51.100.0/24 80"), -ENOENT);
	cr_assert_eq(del("tcp 198.51.100.0/25 80"), -ENOENT);
	after = snap();
	assert_same_snap(&before, &after);
}

Test(rules_maps, enospc_leaves_the_maps_as_they_were)
{
	struct snapshot before, after;
	struct l3x_lpm_val v;
	char text[64];
	int i;

	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(add("udp 2001:db8::/32 53"), 0);
	for (i = 0; i < L3X_MAX_RANGES; i++) {
		snprintf(text, sizeof(text), "udp 192.0.2.0/24 %d", 1000 + i);
		cr_assert_eq(add(text), 0);
	}
	before = snap();
	/* on the full prefix, on a new prefix inside it, and from outside
	 * through a shorter prefix: all would give the /24 one range too
	 * many */
	cr_assert_eq(add("tcp 192.0.2.0/24 80"), -ENOSPC);
	cr_assert_eq(add("tcp 192.0.2.128/25 80"), -ENOSPC);
	cr_assert_eq(add("ip 0.0.0.0/0"), -ENOSPC);
	after = snap();
	assert_same_snap(&before, &after);
	cr_assert_eq(lookup("192.0.2.9", &v), 0);
	cr_assert_eq(v.count, L3X_MAX_RANGES);
	cr_assert_eq(del("tcp 192.0.2.0/24 80"), -ENOENT, "refused rule kept");
	/* a range already there, and a rule elsewhere, still fit */
	cr_assert_eq(add("udp 192.0.2.0/24 1000"), 0);
	cr_assert_eq(add("tcp 192.0.3.0/24 80"), 0);
	cr_assert_eq(add("ip ::/0"), 0);
	assert_tries_match_rules();
}

Test(rules_maps, add_refuses_invalid_rules)
{
	struct l3x_rule r = parse_ok("tcp 192.0.2.0/24 80");

	r.addr[3] = 9;
	cr_assert_eq(l3x_rules_add(&maps, &r), -EINVAL);
	cr_assert_eq(l3x_rules_del(&maps, &r), -EINVAL);
	cr_assert_eq(map_size(maps.rules), 0);
	cr_assert_eq(map_size(maps.lpm4), 0);
}

Test(rules_maps, sync_repairs_tries_that_drifted)
{
	struct l3x_lpm4_key junk = { .prefixlen = 24, .addr = { 203, 0, 113 } };
	struct l3x_lpm4_key mine = { .prefixlen = 24,
				     .addr = { 198, 51, 100 } };
	struct l3x_lpm_val v = { .count = 1, .r = { { .proto = 6, .hi = 9 } } };

	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(add("tcp 10.0.0.0/8 80"), 0);
	cr_assert_eq(bpf_map_update_elem(maps.lpm4, &junk, &v, BPF_ANY), 0);
	cr_assert_eq(bpf_map_update_elem(maps.lpm4, &mine, &v, BPF_ANY), 0);
	cr_assert_eq(l3x_rules_sync(&maps), 0);
	assert_tries_match_rules();
	cr_assert_eq(bpf_map_delete_elem(maps.lpm4, &mine), 0);
	cr_assert_eq(l3x_rules_sync(&maps), 0);
	assert_tries_match_rules();
}

static int quiet(enum l3x_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

Test(rules_maps, sync_ignores_malformed_and_zero_count_entries)
{
	struct l3x_rule_key bad = key_of("tcp 192.0.2.0/24 80");
	struct l3x_rule_key zero = key_of("tcp 198.51.100.0/24 80");
	l3x_print_fn_t old;
	__u32 one = 1, none = 0;

	bad.prefix_len = 40;
	cr_assert_eq(bpf_map_update_elem(maps.rules, &bad, &one, BPF_ANY), 0);
	cr_assert_eq(bpf_map_update_elem(maps.rules, &zero, &none, BPF_ANY), 0);
	old = l3x_set_print(quiet);
	cr_assert_eq(add("udp 2001:db8::/32 53"), 0);
	l3x_set_print(old);
	cr_assert_eq(map_size(maps.lpm4), 0);
	cr_assert_eq(map_size(maps.lpm6), 1);
}

Test(rules_maps, full_rules_map_is_enospc_and_changes_nothing)
{
	struct snapshot before, after;

	close_maps();
	make_maps_with(2, L3X_MAX_PREFIXES);
	cr_assert_eq(add("tcp 192.0.2.1 80"), 0);
	cr_assert_eq(add("tcp 192.0.2.2 80"), 0);
	cr_assert_eq(add("tcp 192.0.2.1 80"), 0, "a recount takes no room");
	before = snap();
	cr_assert_eq(add("tcp 192.0.2.3 80"), -ENOSPC);
	after = snap();
	assert_same_snap(&before, &after);
}

Test(rules_maps, sync_writes_every_entry_before_it_deletes_any)
{
	cr_assert_eq(add("tcp 10.0.0.0/8 80"), 0);
	cr_assert_eq(add("udp 10.1.0.0/16 53"), 0);
	cr_assert_eq(add("udp 10.2.0.0/16 53"), 0);
	log_start();
	cr_assert_eq(del("tcp 10.0.0.0/8 80"), 0);
	cr_assert_str_eq(trie_log, "WWD");
	assert_tries_match_rules();
}

Test(rules_maps, sync_leaves_unchanged_entries_alone)
{
	cr_assert_eq(add("tcp 10.0.0.0/8 80"), 0);
	cr_assert_eq(add("udp 10.1.0.0/16 53"), 0);
	log_start();
	cr_assert_eq(add("udp 2001:db8::/32 53"), 0);
	cr_assert_eq(add("udp 10.1.0.0/16 53"), 0);
	cr_assert_eq(l3x_rules_sync(&maps), 0);
	cr_assert_str_eq(trie_log, "", "unchanged IPv4 entries rewritten");
	cr_assert_eq(add("udp 10.3.0.0/16 53"), 0);
	cr_assert_str_eq(trie_log, "W", "only the new entry is written");
}

/* Another process adds a rule (without syncing yet) just as our sync
 * writes its first trie entry. */
static void sneak_rule_in(int fd)
{
	struct l3x_rule_key k = key_of("udp 203.0.113.0/24 53");
	__u32 one = 1;

	if (fd != maps.lpm4)
		return;
	before_update = NULL;
	cr_assert_eq(real_update(maps.rules, &k, &one, BPF_NOEXIST), 0);
}

Test(rules_maps, sync_goes_again_when_the_rules_change_under_it)
{
	struct l3x_lpm_val v;

	before_update = sneak_rule_in;
	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_null(before_update, "the seam never ran");
	cr_assert_eq(lookup("203.0.113.1", &v), 0,
		     "a rule added during the sync is missing from the trie");
	cr_assert(has_range(&v, L3X_P_UDP, 53, 53));
	assert_tries_match_rules();
}

Test(rules_maps, sync_drops_stale_entries_first_when_the_trie_is_full)
{
	struct l3x_lpm4_key junk = { .prefixlen = 24, .addr = { 203, 0, 113 } };
	struct l3x_lpm_val v = { .count = 1, .r = { { .proto = 6, .hi = 9 } } };

	close_maps();
	make_maps_with(L3X_MAX_RULES, 2);
	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(bpf_map_update_elem(maps.lpm4, &junk, &v, BPF_ANY), 0);
	cr_assert_eq(add("tcp 192.0.2.0/24 80"), 0);
	assert_tries_match_rules();
}

/* Two threads change disjoint rules in step (a barrier before each change,
 * so their syncs overlap): each may write the tries from a view the other
 * has just changed, yet the tries must end up matching the rules. */
static pthread_barrier_t step;

static void *churn(void *arg)
{
	const char *const *texts = arg;
	const char *fail = NULL;
	int i, k;

	for (i = 0; i < 100; i++)
		for (k = 0; texts[k]; k++) {
			pthread_barrier_wait(&step);
			if (fail)
				continue;
			if (i % 2 == 0 && add(texts[k]))
				fail = "add failed";
			if (i % 2 == 1 && i < 99 && del(texts[k]))
				fail = "del failed";
		}
	return (void *)fail;
}

Test(rules_maps, changes_from_two_threads_at_once_converge)
{
	static const char *const a[] = {
		"tcp 10.0.0.0/8 80", "udp 10.1.0.0/16 53", "ip 2001:db8::/32",
		NULL,
	};
	static const char *const b[] = {
		"tcp 10.1.2.0/24 443", "udp 0.0.0.0/0 123",
		"tcp 2001:db8:1::/48 22", NULL,
	};
	pthread_t ta, tb;
	void *ra, *rb;

	cr_assert_eq(pthread_barrier_init(&step, NULL, 2), 0);
	cr_assert_eq(pthread_create(&ta, NULL, churn, (void *)a), 0);
	cr_assert_eq(pthread_create(&tb, NULL, churn, (void *)b), 0);
	pthread_join(ta, &ra);
	pthread_join(tb, &rb);
	pthread_barrier_destroy(&step);
	cr_assert_null(ra, "%s", (char *)ra);
	cr_assert_null(rb, "%s", (char *)rb);
	cr_assert_eq(map_size(maps.rules), 6);
	assert_tries_match_rules();
}
