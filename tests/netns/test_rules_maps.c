/*
 * test_rules_maps.c - the sync of rules into real BPF maps created here
 * with the sizes the program uses (skipped, with the reason, where BPF
 * maps cannot be created: it needs CAP_BPF). Rule syntax, keys and the
 * trie build are tests/unit/test_rules.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
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
#include "rule_helpers.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ maps */

static struct l3x_maps maps = { -1, -1, -1, -1, -1, -1, -1 };

/*
 * A link-time seam: rules.c's calls to bpf_map_update_elem() land here
 * (the test's own definition wins over libbpf's shared one), so a test can
 * act at the exact moment between two writes, as another process might.
 */
static int (*real_update)(int, const void *, const void *, __u64);
static int (*real_delete)(int, const void *);
static void (*before_update)(int fd);
static char trie_log[64]; /* 'W'rite, 'D'elete on the IPv4 trie */
static size_t trie_log_n;

static void log_op(int fd, char op)
{
	if (fd == maps.lpm4 && trie_log_n < sizeof(trie_log) - 1)
		trie_log[trie_log_n++] = op;
}

int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags)
{
	void (*hook)(int) = before_update;

	if (!real_update)
		real_update =
			(int (*)(int, const void *, const void *, __u64))dlsym(
				RTLD_NEXT, "bpf_map_update_elem");
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
	maps.rules =
		new_map(BPF_MAP_TYPE_HASH, "t_rules",
			sizeof(struct l3x_rule_key), sizeof(__u32), max_rules);
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
	struct l3x_rule_key cur, next; /* big enough for every key here */
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

/* Add each rule: every one must be taken. */
#define ADD_OK(...) add_all((const char *const[]){ __VA_ARGS__, NULL })

static void add_all(const char *const *texts)
{
	for (; *texts; texts++)
		cr_assert_eq(add(*texts), 0, "add %s", *texts);
}

/* Each rule refused by @op (add or del) with @err, and the maps left as
 * they were. */
#define REFUSED_UNCHANGED(op, err, ...)                                        \
	refused_unchanged(op, #op, err,                                        \
			  (const char *const[]){ __VA_ARGS__, NULL })

static void refused_unchanged(int (*op)(const char *), const char *name,
			      int err, const char *const *texts)
{
	static struct snapshot before, after;

	before = snap();
	for (; *texts; texts++)
		cr_assert_eq(op(*texts), err, "%s %s", name, *texts);
	after = snap();
	assert_same_snap(&before, &after);
}

/* The trie entry for @addr holds @count ranges; it is left in *@v. */
static void expect_ranges(const char *addr, unsigned count,
			  struct l3x_lpm_val *v)
{
	cr_assert_eq(lookup(addr, v), 0, "no entry for %s", addr);
	cr_assert_eq(v->count, count, "%s: %u ranges, want %u", addr, v->count,
		     count);
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

	ADD_OK("tcp 198.51.100.0/24 80", "udp 198.51.100.128/25 53",
	       "udp 2001:db8::/32 53", "ip 2001:db8:1::/48");

	expect_ranges("198.51.100.200", 2, &v);
	cr_assert(has_range(&v, L3X_P_TCP, 80, 80));
	cr_assert(has_range(&v, L3X_P_UDP, 53, 53));
	expect_ranges("198.51.100.1", 1, &v);
	cr_assert(has_range(&v, L3X_P_TCP, 80, 80));
	cr_assert_eq(lookup("192.0.2.1", &v), -ENOENT);

	expect_ranges("2001:db8:1::5", 2, &v);
	cr_assert(has_range(&v, L3X_P_UDP, 53, 53));
	cr_assert(has_range(&v, L3X_P_ANY, 0, 65535));
	expect_ranges("2001:db8:2::5", 1, &v);
	cr_assert_eq(lookup("2001:db9::5", &v), -ENOENT);
	cr_assert_eq(map_size(maps.rules), 4);
	assert_tries_match_rules();
}

Test(rules_maps, del_removes_stale_prefixes)
{
	struct l3x_lpm_val v;

	ADD_OK("tcp 198.51.100.0/24 80", "udp 198.51.100.128/25 53",
	       "udp 2001:db8::/32 53");
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

	ADD_OK("tcp 10.0.0.0/8 80", "udp 10.1.0.0/16 53");
	expect_ranges("10.1.2.3", 2, &v);
	cr_assert_eq(del("tcp 10.0.0.0/8 80"), 0);
	expect_ranges("10.1.2.3", 1, &v);
	cr_assert(has_range(&v, L3X_P_UDP, 53, 53));
	cr_assert_eq(lookup("10.2.0.1", &v), -ENOENT);
	assert_tries_match_rules();
}

Test(rules_maps, rule_added_twice_stays_until_deleted_twice)
{
	struct l3x_lpm_val v;

	ADD_OK("tcp 198.51.100.0/24 80", "tcp 198.51.100.0/24 80");
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
	cr_assert_eq(add("tcp 198.51.100.0/24 80"), 0);
	REFUSED_UNCHANGED(del, -ENOENT, "tcp 198.51.100.0/24 81",
			  "udp 198.51.100.0/24 80", "tcp 198.51.100.0/25 80");
}

Test(rules_maps, enospc_leaves_the_maps_as_they_were)
{
	struct l3x_lpm_val v;
	char text[64];
	int i;

	ADD_OK("tcp 198.51.100.0/24 80", "udp 2001:db8::/32 53");
	for (i = 0; i < L3X_MAX_RANGES; i++) {
		snprintf(text, sizeof(text), "udp 192.0.2.0/24 %d", 1000 + i);
		cr_assert_eq(add(text), 0);
	}
	/* on the full prefix, on a new prefix inside it, and from outside
	 * through a shorter prefix: all would give the /24 one range too
	 * many */
	REFUSED_UNCHANGED(add, -ENOSPC, "tcp 192.0.2.0/24 80",
			  "tcp 192.0.2.128/25 80", "ip 0.0.0.0/0");
	expect_ranges("192.0.2.9", L3X_MAX_RANGES, &v);
	cr_assert_eq(del("tcp 192.0.2.0/24 80"), -ENOENT, "refused rule kept");
	/* a range already there, and a rule elsewhere, still fit */
	ADD_OK("udp 192.0.2.0/24 1000", "tcp 192.0.3.0/24 80", "ip ::/0");
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

	ADD_OK("tcp 198.51.100.0/24 80", "tcp 10.0.0.0/8 80");
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
	close_maps();
	make_maps_with(2, L3X_MAX_PREFIXES);
	ADD_OK("tcp 192.0.2.1 80", "tcp 192.0.2.2 80");
	cr_assert_eq(add("tcp 192.0.2.1 80"), 0, "a recount takes no room");
	REFUSED_UNCHANGED(add, -ENOSPC, "tcp 192.0.2.3 80");
}

Test(rules_maps, sync_writes_every_entry_before_it_deletes_any)
{
	ADD_OK("tcp 10.0.0.0/8 80", "udp 10.1.0.0/16 53", "udp 10.2.0.0/16 53");
	log_start();
	cr_assert_eq(del("tcp 10.0.0.0/8 80"), 0);
	cr_assert_str_eq(trie_log, "WWD");
	assert_tries_match_rules();
}

Test(rules_maps, sync_leaves_unchanged_entries_alone)
{
	ADD_OK("tcp 10.0.0.0/8 80", "udp 10.1.0.0/16 53");
	log_start();
	ADD_OK("udp 2001:db8::/32 53", "udp 10.1.0.0/16 53");
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
		"tcp 10.0.0.0/8 80",
		"udp 10.1.0.0/16 53",
		"ip 2001:db8::/32",
		NULL,
	};
	static const char *const b[] = {
		"tcp 10.1.2.0/24 443",
		"udp 0.0.0.0/0 123",
		"tcp 2001:db8:1::/48 22",
		NULL,
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
