/*
 * test_rules.c - rule syntax, the trie build, and the sync into real BPF
 * maps (created here with the sizes the program uses).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>

#include "l3x_internal.h"

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
	struct l3x_rule r;
	char err[160] = "";

	cr_assert_eq(l3x_rule__parse(&r, text, err, sizeof(err)), -EINVAL,
		     "'%s' accepted", text);
	cr_assert(strstr(err, why), "'%s': message '%s' lacks '%s'", text, err,
		  why);
	cr_assert(!strchr(err, '\n'), "message is more than one line");
}

Test(rules, parse_accepts_the_documented_examples)
{
	struct l3x_rule r;

	r = parse_ok("tcp 198.51.100.0/24 80");
	cr_assert_eq(r.proto, L3X_PROTO_TCP);
	cr_assert_eq(r.family, 4);
	cr_assert_eq(r.prefix_len, 24);
	cr_assert_eq(r.port_lo, 80);
	cr_assert_eq(r.port_hi, 80);
	cr_assert_eq(r.addr[0], 198);
	cr_assert_eq(r.addr[2], 100);

	r = parse_ok("udp 2001:db8::/32 53");
	cr_assert_eq(r.family, 6);
	cr_assert_eq(r.prefix_len, 32);
	cr_assert_eq(r.addr[0], 0x20);
	cr_assert_eq(r.addr[3], 0xb8);

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

Test(rules, parse_is_lenient_on_case_and_blanks_only)
{
	struct l3x_rule r = parse_ok("  UDP\t2001:db8::7   9000-9001 ");

	cr_assert_eq(r.proto, L3X_PROTO_UDP);
	cr_assert_eq(r.prefix_len, 128);
	cr_assert_eq(r.port_lo, 9000);
	cr_assert_eq(r.port_hi, 9001);
}

Test(rules, parse_refuses_each_bad_part_naming_it)
{
	parse_bad("", "rule: empty");
	parse_bad("   ", "rule: empty");
	parse_bad("icmp 192.0.2.1", "protocol 'icmp': must be tcp, udp or ip");
	parse_bad("tcp", "missing destination");
	parse_bad("tcp 300.1.2.3 80", "destination '300.1.2.3': not an IPv4 or IPv6 address");
	parse_bad("tcp example.com 80", "not an IPv4 or IPv6 address");
	parse_bad("tcp 192.0.2.0/33 80", "prefix '/33': must be 0-32 for IPv4");
	parse_bad("tcp 2001:db8::/129", "prefix '/129': must be 0-128 for IPv6");
	parse_bad("tcp 192.0.2.0/ 80", "prefix '/'");
	parse_bad("tcp 192.0.2.0/-1 80", "prefix '/-1'");
	parse_bad("tcp 198.51.100.7/24 80", "host bits set past /24 (did you mean 198.51.100.0/24?)");
	parse_bad("udp 2001:db8::1/32", "did you mean 2001:db8::/32?");
	parse_bad("tcp 192.0.2.1 70000", "port '70000': must be 0-65535");
	parse_bad("tcp 192.0.2.1 +80", "port '+80'");
	parse_bad("tcp 192.0.2.1 8x", "port '8x'");
	parse_bad("tcp 192.0.2.1 -80", "port ''");
	parse_bad("tcp 192.0.2.1 80-", "port ''");
	parse_bad("tcp 192.0.2.1 90-80", "port range '90-80': start is above end");
	parse_bad("ip 192.0.2.1 80", "only tcp and udp rules take ports");
	parse_bad("tcp 192.0.2.1 80 extra", "'extra': unexpected text after the port");
}

Test(rules, parse_never_writes_past_the_error_buffer)
{
	struct l3x_rule r;
	char err[8];

	memset(err, 'X', sizeof(err));
	cr_assert_eq(l3x_rule__parse(&r, "icmp 1.2.3.4", err, 4), -EINVAL);
	cr_assert_eq(err[3], '\0');
	cr_assert_eq(err[4], 'X');
	cr_assert_eq(l3x_rule__parse(&r, "icmp 1.2.3.4", NULL, 0), -EINVAL);
}

Test(rules, format_round_trips)
{
	static const char *const texts[] = {
		"tcp 198.51.100.0/24 80", "udp 2001:db8::/32 53",
		"tcp 0.0.0.0/0 1-1024",	  "ip 192.0.2.7",
		"ip ::/0",		  "udp 2001:db8::7 0",
		"tcp 10.0.0.0/8 0-65534", "udp 192.0.2.128/25 9000-9001",
	};
	char buf[L3X_RULE_STRLEN];
	struct l3x_rule r, back;
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		r = parse_ok(texts[i]);
		cr_assert_gt(l3x_rule__format(&r, buf, sizeof(buf)), 0);
		cr_assert_str_eq(buf, texts[i]);
		back = parse_ok(buf);
		cr_assert_eq(memcmp(&r, &back, sizeof(r)), 0);
	}
	r = parse_ok("udp 2001:db8::7 9000");
	cr_assert_eq(l3x_rule__format(&r, buf, 5), -ENOSPC);
	r.family = 5;
	cr_assert_eq(l3x_rule__format(&r, buf, sizeof(buf)), -EINVAL);
}

Test(rules, check_refuses_what_parse_would_not_make)
{
	struct l3x_rule r = parse_ok("tcp 192.0.2.0/24 80");

	cr_assert_eq(l3x_rule_check(&r), 0);
	r.addr[3] = 1;
	cr_assert_eq(l3x_rule_check(&r), -EINVAL);
	r = parse_ok("ip 192.0.2.1");
	r.port_lo = 5;
	cr_assert_eq(l3x_rule_check(&r), -EINVAL);
	r = parse_ok("tcp 192.0.2.1 80");
	r.addr[8] = 1;	/* garbage past an IPv4 address */
	cr_assert_eq(l3x_rule_check(&r), -EINVAL);
	r = parse_ok("tcp 192.0.2.1 80");
	r.proto = 1;
	cr_assert_eq(l3x_rule_check(&r), -EINVAL);
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
find_entry(const struct l3x_prefix_entry *e, size_t n, const char *prefix)
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
		if (v->r[i].proto == proto && v->r[i].lo == lo && v->r[i].hi == hi)
			return true;
	return false;
}

Test(rules, build_gives_longer_prefixes_the_shorter_rules)
{
	struct l3x_rule_key k[] = {
		key_of("tcp 198.51.100.0/24 80"),
		key_of("udp 198.51.100.128/25 53"),
		key_of("udp 2001:db8::/32 53"),
	};
	const struct l3x_prefix_entry *p24, *p25;
	struct l3x_prefix_entry *e;
	size_t n;

	cr_assert_eq(l3x_rules_build(k, 3, 4, &e, &n), 0);
	cr_assert_eq(n, 2, "IPv6 rule leaked into the IPv4 trie");
	p24 = find_entry(e, n, "ip 198.51.100.0/24");
	p25 = find_entry(e, n, "ip 198.51.100.128/25");
	cr_assert(p24 && p25);
	cr_assert_eq(p24->val.count, 1);
	cr_assert(has_range(&p24->val, L3X_P_TCP, 80, 80));
	cr_assert_eq(p25->val.count, 2);
	cr_assert(has_range(&p25->val, L3X_P_TCP, 80, 80));
	cr_assert(has_range(&p25->val, L3X_P_UDP, 53, 53));
	free(e);
}

Test(rules, build_puts_a_default_route_rule_in_every_entry)
{
	struct l3x_rule_key k[] = {
		key_of("ip 0.0.0.0/0"),
		key_of("tcp 192.0.2.7 80"),
		key_of("tcp 192.0.2.0/24 80"),	/* duplicate range: once */
	};
	const struct l3x_prefix_entry *p;
	struct l3x_prefix_entry *e;
	size_t n;

	cr_assert_eq(l3x_rules_build(k, 3, 4, &e, &n), 0);
	cr_assert_eq(n, 3);
	p = find_entry(e, n, "ip 192.0.2.7");
	cr_assert(p);
	cr_assert_eq(p->val.count, 2, "duplicate range stored twice");
	cr_assert(has_range(&p->val, L3X_P_ANY, 0, 65535));
	cr_assert(has_range(&p->val, L3X_P_TCP, 80, 80));
	p = find_entry(e, n, "ip 0.0.0.0/0");
	cr_assert_eq(p->val.count, 1);
	free(e);
}

Test(rules, build_refuses_too_many_ranges_on_one_prefix)
{
	struct l3x_rule_key k[L3X_MAX_RANGES + 1];
	struct l3x_prefix_entry *e;
	char text[64];
	size_t n;
	int i;

	for (i = 0; i <= L3X_MAX_RANGES; i++) {
		snprintf(text, sizeof(text), "udp 192.0.2.0/24 %d", 1000 + i);
		k[i] = key_of(text);
	}
	cr_assert_eq(l3x_rules_build(k, L3X_MAX_RANGES, 4, &e, &n), 0);
	free(e);
	cr_assert_eq(l3x_rules_build(k, L3X_MAX_RANGES + 1, 4, &e, &n), -ENOSPC);
}

/* ------------------------------------------------------------ maps */

static struct l3x_maps maps;

static void make_maps(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);

	if (geteuid() != 0)
		cr_skip_test("needs root (CAP_BPF) to create BPF maps");
	memset(&maps, -1, sizeof(maps));
	maps.rules = bpf_map_create(BPF_MAP_TYPE_HASH, "t_rules",
				    sizeof(struct l3x_rule_key), 4,
				    L3X_MAX_RULES, NULL);
	maps.lpm4 = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_lpm4",
				   sizeof(struct l3x_lpm4_key),
				   sizeof(struct l3x_lpm_val), L3X_MAX_PREFIXES,
				   &lpm);
	maps.lpm6 = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_lpm6",
				   sizeof(struct l3x_lpm6_key),
				   sizeof(struct l3x_lpm_val), L3X_MAX_PREFIXES,
				   &lpm);
	if (maps.rules < 0 || maps.lpm4 < 0 || maps.lpm6 < 0)
		cr_skip_test("cannot create BPF maps here: %s", strerror(errno));
}

static void close_maps(void)
{
	l3x_maps_close(&maps);
}

/* The value a packet to @addr would find, or NULL-ish (count -1). */
static int lookup(const char *addr, struct l3x_lpm_val *v)
{
	struct l3x_lpm6_key k6 = { .prefixlen = 128 };
	struct l3x_lpm4_key k4 = { .prefixlen = 32 };

	if (inet_pton(AF_INET, addr, k4.addr) == 1)
		return bpf_map_lookup_elem(maps.lpm4, &k4, v) ? -errno : 0;
	cr_assert_eq(inet_pton(AF_INET6, addr, k6.addr), 1);
	return bpf_map_lookup_elem(maps.lpm6, &k6, v) ? -errno : 0;
}

static int trie_size(int fd)
{
	struct l3x_lpm6_key cur, next;
	void *prev = NULL;
	int n = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		cur = next;
		prev = &cur;
		n++;
	}
	return n;
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

TestSuite(rules_maps, .init = make_maps, .fini = close_maps);

Test(rules_maps, add_makes_addresses_match_in_the_tries)
{
	struct l3x_lpm_val v;

	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(add("udp 198.51.100.128/25 53"), 0);
	cr_assert_eq(add("udp 2001:db8::/32 53"), 0);
	cr_assert_eq(lookup("198.51.100.200", &v), 0);
	cr_assert_eq(v.count, 2);
	cr_assert_eq(lookup("198.51.100.1", &v), 0);
	cr_assert_eq(v.count, 1);
	cr_assert_eq(lookup("192.0.2.1", &v), -ENOENT);
	cr_assert_eq(lookup("2001:db8:1::5", &v), 0);
	cr_assert(has_range(&v, L3X_P_UDP, 53, 53));
	cr_assert_eq(lookup("2001:db9::5", &v), -ENOENT);
}

Test(rules_maps, del_removes_stale_prefixes_and_keeps_counted_rules)
{
	struct l3x_lpm_val v;

	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(add("udp 198.51.100.128/25 53"), 0);
	cr_assert_eq(trie_size(maps.lpm4), 2);
	cr_assert_eq(del("udp 198.51.100.128/25 53"), 0);
	cr_assert_eq(trie_size(maps.lpm4), 1, "stale /25 left in the trie");
	cr_assert_eq(lookup("198.51.100.200", &v), 0);
	cr_assert_eq(v.count, 1);
	cr_assert_eq(del("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(lookup("198.51.100.200", &v), 0,
		     "rule added twice gone after one del");
	cr_assert_eq(del("tcp 198.51.100.0/24 80"), 0);
	cr_assert_eq(lookup("198.51.100.200", &v), -ENOENT);
	cr_assert_eq(trie_size(maps.lpm4), 0);
	cr_assert_eq(del("tcp 198.51.100.0/24 80"), -ENOENT);
}

Test(rules_maps, enospc_leaves_the_maps_as_they_were)
{
	struct l3x_lpm_val v;
	char text[64];
	int i;

	for (i = 0; i < L3X_MAX_RANGES; i++) {
		snprintf(text, sizeof(text), "udp 192.0.2.0/24 %d", 1000 + i);
		cr_assert_eq(add(text), 0);
	}
	cr_assert_eq(add("tcp 192.0.2.0/24 80"), -ENOSPC);
	cr_assert_eq(lookup("192.0.2.9", &v), 0);
	cr_assert_eq(v.count, L3X_MAX_RANGES);
	cr_assert(!has_range(&v, L3X_P_TCP, 80, 80));
	cr_assert_eq(del("tcp 192.0.2.0/24 80"), -ENOENT, "refused rule was kept");
	/* a rule on another prefix still fits */
	cr_assert_eq(add("tcp 192.0.3.0/24 80"), 0);
}

Test(rules_maps, add_refuses_invalid_rules)
{
	struct l3x_rule r = parse_ok("tcp 192.0.2.0/24 80");

	r.addr[3] = 9;
	cr_assert_eq(l3x_rules_add(&maps, &r), -EINVAL);
	cr_assert_eq(trie_size(maps.lpm4), 0);
}
