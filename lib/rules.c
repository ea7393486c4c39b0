/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * rules.c - what a steering rule means, decided here only: the text syntax
 * "PROTO DST [PORT[-PORT]] [vlan ID]", the rules' life in the maps the XDP
 * program reads, the ruleset object (the rules one owner added, taken back on
 * close), and the software matcher that the TUN and callback sources use
 * in place of the program (it parses exactly as bpf/l3x.bpf.c does).
 *
 * The l3x_rules hash holds every rule with a reference count; it is the
 * source of truth, shared by every process that changes rules. From it we
 * build the two LPM tries the XDP program reads: one entry per distinct
 * rule prefix, whose value holds the port ranges of every rule whose
 * prefix contains that prefix.
 *
 * Why one lookup suffices. The trie holds every rule's prefix. Let a
 * packet go to address A and let P be its longest matching entry. Take any
 * rule R whose prefix C contains A: C is in the trie and matches A, so C
 * is no longer than P, and two prefixes that both contain A are nested, so
 * C contains P. P's entry was given the ranges of every rule whose prefix
 * contains P, R's among them. Conversely every rule in P's entry contains
 * P, hence A. So the single LPM lookup finds exactly the rules that cover
 * the packet's address, and the program only has to check their ranges.
 *
 * Updating. A sync writes new and changed entries before it deletes stale
 * ones, and the kernel swaps an LPM entry's value whole, so a packet sees
 * for each prefix the old or the new value, never a hole where rules
 * remain. Several processes may change rules at once (a capture and
 * l3x-ctl): a sync re-reads the rules after writing and goes again if
 * they changed meanwhile, so the last sync to finish leaves the tries
 * matching the rules.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bpf/bpf.h>

#include "epoch.h"
#include "hash.h"
#include "l3x_internal.h"

/* Passes of l3x_rules_sync() before it gives up on rules that keep
 * changing under it. */
#define SYNC_PASSES 16
/* Keys read from one map walk before we call it a livelock: a concurrent
 * delete restarts the kernel's walk from the first key. */
#define WALK_LIMIT (1u << 20)
/* Read-modify-write attempts on one reference count. */
#define REF_TRIES 8

/* ------------------------------------------------------------ text */

static int fail(char *err, size_t err_sz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_sz, const char *fmt, ...)
{
	va_list ap;

	if (err && err_sz) {
		va_start(ap, fmt);
		vsnprintf(err, err_sz, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Split @text on blanks into at most @max tokens in @buf. Returns the
 * count, @max + 1 if there are more, or -1 if @text does not fit @buf. */
static int tokenize(const char *text, char *buf, size_t sz, char **tok, int max)
{
	size_t len = strlen(text);
	char *p;
	int n = 0;

	if (len >= sz)
		return -1;
	memcpy(buf, text, len + 1);
	for (p = buf; *p;) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (!*p)
			break;
		if (n == max)
			return max + 1;
		tok[n++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	return n;
}

/* @len decimal digits (no sign, not empty) making at most @max. */
static int parse_num(const char *s, size_t len, unsigned long max,
		     unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (!len)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > max) /* also keeps v far from overflow */
			return -1;
	}
	*out = v;
	return 0;
}

static int parse_proto(struct l3x_rule *r, const char *s, char *err,
		       size_t err_sz)
{
	if (!strcasecmp(s, "tcp"))
		r->proto = L3X_PROTO_TCP;
	else if (!strcasecmp(s, "udp"))
		r->proto = L3X_PROTO_UDP;
	else if (!strcasecmp(s, "ip"))
		r->proto = L3X_PROTO_IP;
	else
		return fail(err, err_sz,
			    "protocol '%s': must be tcp, udp or ip", s);
	return 0;
}

/* Zero the bits of @addr (@len bytes) past @plen; true if any were set. */
static bool clear_host_bits(uint8_t *addr, unsigned len, unsigned plen)
{
	bool set = false;
	unsigned i, keep;
	uint8_t mask;

	for (i = 0; i < len; i++) {
		keep = plen > 8 * i ? plen - 8 * i : 0; /* bits kept here */
		mask = (uint8_t)(0xff00 >> (keep < 8 ? keep : 8));
		set |= (addr[i] & ~mask) != 0;
		addr[i] &= mask;
	}
	return set;
}

static int parse_dst(struct l3x_rule *r, const char *s, char *err,
		     size_t err_sz)
{
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	char host[INET6_ADDRSTRLEN], canon[INET6_ADDRSTRLEN];
	unsigned long plen;
	unsigned max;

	if (!hlen || hlen >= sizeof(host))
		return fail(err, err_sz,
			    "destination '%s': not an IPv4 or IPv6 address", s);
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(r->addr, 0, sizeof(r->addr));
	if (inet_pton(AF_INET, host, r->addr) == 1)
		r->family = 4;
	else if (inet_pton(AF_INET6, host, r->addr) == 1)
		r->family = 6;
	else
		return fail(err, err_sz,
			    "destination '%s': not an IPv4 or IPv6 address",
			    host);
	max = r->family == 4 ? 32 : 128;
	plen = max;
	if (slash && parse_num(slash + 1, strlen(slash + 1), max, &plen))
		return fail(err, err_sz, "prefix '%s': must be 0-%u for IPv%u",
			    slash, max, r->family);
	r->prefix_len = (uint8_t)plen;
	if (clear_host_bits(r->addr, max / 8, r->prefix_len)) {
		inet_ntop(r->family == 4 ? AF_INET : AF_INET6, r->addr, canon,
			  sizeof(canon));
		return fail(
			err, err_sz,
			"destination '%s': host bits set past /%lu (did you mean %s/%lu?)",
			s, plen, canon, plen);
	}
	return 0;
}

static int parse_ports(struct l3x_rule *r, const char *s, char *err,
		       size_t err_sz)
{
	const char *dash = strchr(s, '-');
	size_t llen = dash ? (size_t)(dash - s) : strlen(s);
	unsigned long lo, hi;

	if (r->proto == L3X_PROTO_IP)
		return fail(err, err_sz,
			    "ports: only tcp and udp rules take ports");
	if (dash && (!llen || !dash[1]))
		return fail(err, err_sz, "port range '%s': missing %s", s,
			    llen ? "end" : "start");
	if (parse_num(s, llen, 65535, &lo))
		return fail(err, err_sz, "port '%.*s': must be 0-65535",
			    (int)llen, s);
	hi = lo;
	if (dash && parse_num(dash + 1, strlen(dash + 1), 65535, &hi))
		return fail(err, err_sz, "port '%s': must be 0-65535",
			    dash + 1);
	if (lo > hi)
		return fail(err, err_sz, "port range '%s': start is above end",
			    s);
	r->port_lo = (uint16_t)lo;
	r->port_hi = (uint16_t)hi;
	return 0;
}

static int parse_vlan(struct l3x_rule *r, const char *s, char *err,
		      size_t err_sz)
{
	unsigned long v;

	if (!s)
		return fail(err, err_sz, "vlan: missing its ID");
	if (parse_num(s, strlen(s), 4094, &v) || !v)
		return fail(err, err_sz, "vlan '%s': must be 1-4094", s);
	r->vlan = (uint16_t)v;
	return 0;
}

/*
 * l3x_rule__parse() - see l3x.h. The parts are checked left to right, so
 * the message names the first one at fault. @rule is written only on
 * success. Any thread.
 */
int l3x_rule__parse(struct l3x_rule *rule, const char *text, char *err,
		    size_t err_sz)
{
	struct l3x_rule r = { .port_lo = 0, .port_hi = 65535 };
	char buf[256];
	char *tok[6];
	int n, e, i;

	if (!rule)
		return fail(err, err_sz, "rule: nowhere to store it");
	n = text ? tokenize(text, buf, sizeof(buf), tok, 6) : 0;
	if (n < 0)
		return fail(err, err_sz, "rule: longer than %zu characters",
			    sizeof(buf) - 1);
	if (n == 0)
		return fail(err, err_sz, "rule: empty");
	e = parse_proto(&r, tok[0], err, err_sz);
	if (e)
		return e;
	if (n == 1)
		return fail(err, err_sz, "rule: missing destination");
	e = parse_dst(&r, tok[1], err, err_sz);
	if (e)
		return e;
	i = 2;
	if (n > i && strcasecmp(tok[i], "vlan")) {
		e = parse_ports(&r, tok[i++], err, err_sz);
		if (e)
			return e;
	}
	if (n > i && !strcasecmp(tok[i], "vlan")) {
		e = parse_vlan(&r, n > i + 1 ? tok[i + 1] : NULL, err, err_sz);
		if (e)
			return e;
		i += 2;
	}
	if (n > i)
		return fail(err, err_sz, "'%s': unexpected text after the %s",
			    tok[i],
			    i == 2   ? "destination"
			    : r.vlan ? "vlan"
				     : "port");
	*rule = r;
	return 0;
}

/*
 * l3x_rule_check() - see l3x_internal.h: family, protocol, prefix length,
 * port order, no ports on ip rules, no host bits, nothing past an IPv4
 * address. Any thread.
 */
int l3x_rule_check(const struct l3x_rule *r)
{
	static const uint8_t zero[12];
	uint8_t addr[16];
	unsigned max;

	if (!r || (r->family != 4 && r->family != 6))
		return -EINVAL;
	if (r->proto != L3X_PROTO_IP && r->proto != L3X_PROTO_TCP &&
	    r->proto != L3X_PROTO_UDP)
		return -EINVAL;
	max = r->family == 4 ? 32 : 128;
	if (r->prefix_len > max || r->port_lo > r->port_hi)
		return -EINVAL;
	if (r->proto == L3X_PROTO_IP &&
	    (r->port_lo != 0 || r->port_hi != 65535))
		return -EINVAL;
	if (r->vlan > 4094)
		return -EINVAL;
	memcpy(addr, r->addr, sizeof(addr));
	if (clear_host_bits(addr, max / 8, r->prefix_len))
		return -EINVAL;
	if (r->family == 4 && memcmp(addr + 4, zero, sizeof(zero)))
		return -EINVAL;
	return 0;
}

/*
 * l3x_rule__format() - see l3x.h. Canonical: a full-length prefix is
 * written as the bare address, every port as nothing, so
 * parse(format(r)) == r. The longest output ("udp" + 39 characters of
 * IPv6 + "/127 65534-65535 vlan 4094") is 69 characters. Any thread.
 */
int l3x_rule__format(const struct l3x_rule *r, char *buf, size_t sz)
{
	static const char *const names[] = {
		[L3X_PROTO_IP] = "ip",
		[L3X_PROTO_TCP] = "tcp",
		[L3X_PROTO_UDP] = "udp",
	};
	char addr[INET6_ADDRSTRLEN], plen[8] = "", ports[16] = "",
				     vlan[16] = "";
	unsigned max;
	int n;

	if (buf && sz)
		buf[0] = '\0'; /* a caller that ignores an error prints "" */
	if (!r || (!buf && sz) || l3x_rule_check(r))
		return -EINVAL;
	max = r->family == 4 ? 32 : 128;
	inet_ntop(r->family == 4 ? AF_INET : AF_INET6, r->addr, addr,
		  sizeof(addr));
	if (r->prefix_len != max)
		snprintf(plen, sizeof(plen), "/%u", r->prefix_len);
	if (r->port_lo == r->port_hi)
		snprintf(ports, sizeof(ports), " %u", r->port_lo);
	else if (r->port_lo != 0 || r->port_hi != 65535)
		snprintf(ports, sizeof(ports), " %u-%u", r->port_lo,
			 r->port_hi);
	if (r->vlan)
		snprintf(vlan, sizeof(vlan), " vlan %u", r->vlan);
	n = snprintf(buf, sz, "%s %s%s%s%s", names[r->proto], addr, plen, ports,
		     vlan);
	if (n < 0 || (size_t)n >= sz)
		return -ENOSPC;
	return n;
}

/* ------------------------------------------------------------ keys */

/* The fields a rule and its map key share, @src's into @dst: a rule and a
 * key are different structs with the same field names. */
#define RULE_FIELDS_COPY(dst, src)                                             \
	do {                                                                   \
		(dst)->family = (src)->family;                                 \
		(dst)->proto = (src)->proto;                                   \
		(dst)->prefix_len = (src)->prefix_len;                         \
		(dst)->port_lo = (src)->port_lo;                               \
		(dst)->port_hi = (src)->port_hi;                               \
		(dst)->vlan = (src)->vlan;                                     \
		memcpy((dst)->addr, (src)->addr, (src)->family == 4 ? 4 : 16); \
	} while (0)

/* l3x_rule_to_key() - see l3x_internal.h. Padding and the address bytes
 * past the family's length are zero. Any thread. */
void l3x_rule_to_key(const struct l3x_rule *r, struct l3x_rule_key *k)
{
	memset(k, 0, sizeof(*k));
	RULE_FIELDS_COPY(k, r);
}

/* l3x_rule_from_key() - see l3x_internal.h; zeroes as above. Any thread. */
void l3x_rule_from_key(const struct l3x_rule_key *k, struct l3x_rule *r)
{
	memset(r, 0, sizeof(*r));
	RULE_FIELDS_COPY(r, k);
}

/* ------------------------------------------------------------ tries */

/* Does prefix @outer of @olen bits contain prefix @inner of @ilen bits? */
static bool contains(const uint8_t *outer, unsigned olen, const uint8_t *inner,
		     unsigned ilen)
{
	unsigned full = olen / 8, rest = olen % 8;

	if (olen > ilen || memcmp(outer, inner, full))
		return false;
	return !rest || !((outer[full] ^ inner[full]) & (0xff00 >> rest));
}

/* Order of trie keys: prefix length, then address. */
static int cmp_key(const void *a, const void *b)
{
	const struct l3x_lpm6_key *x = a, *y = b;

	if (x->prefixlen != y->prefixlen)
		return x->prefixlen < y->prefixlen ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

static int cmp_range(const void *a, const void *b)
{
	const struct l3x_range *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return x->vlan < y->vlan ? -1 : x->vlan > y->vlan;
}

/* Add @k's range to @v unless it is there already. An ip rule matches
 * every protocol and port. */
static int add_range(struct l3x_lpm_val *v, const struct l3x_rule_key *k)
{
	struct l3x_range r = {
		.proto = k->proto,
		.lo = k->proto == L3X_P_ANY ? 0 : k->port_lo,
		.hi = k->proto == L3X_P_ANY ? 65535 : k->port_hi,
		.vlan = k->vlan,
	};
	__u32 i;

	for (i = 0; i < v->count; i++)
		if (!cmp_range(&v->r[i], &r))
			return 0;
	if (v->count == L3X_MAX_RANGES)
		return -ENOSPC;
	v->r[v->count++] = r;
	return 0;
}

/* The distinct prefixes of @family's rules, as keys of @e, sorted. */
static size_t collect_prefixes(const struct l3x_rule_key *rules, size_t n,
			       int family, struct l3x_prefix_entry *e)
{
	size_t i, ne = 0, out = 0;

	for (i = 0; i < n; i++) {
		if (rules[i].family != family)
			continue;
		e[ne].key.prefixlen = rules[i].prefix_len;
		memcpy(e[ne].key.addr, rules[i].addr, sizeof(e[ne].key.addr));
		ne++;
	}
	qsort(e, ne, sizeof(*e), cmp_key);
	for (i = 0; i < ne; i++)
		if (!out || cmp_key(&e[out - 1].key, &e[i].key))
			e[out++] = e[i];
	return out;
}

/* Give @e the ranges of every @family rule whose prefix contains its own,
 * in a fixed order so equal sets make equal values. */
static int fill_entry(struct l3x_prefix_entry *e,
		      const struct l3x_rule_key *rules, size_t n, int family)
{
	size_t i;
	int err;

	for (i = 0; i < n; i++) {
		if (rules[i].family != family ||
		    !contains(rules[i].addr, rules[i].prefix_len, e->key.addr,
			      e->key.prefixlen))
			continue;
		err = add_range(&e->val, &rules[i]);
		if (err)
			return err;
	}
	qsort(e->val.r, e->val.count, sizeof(e->val.r[0]), cmp_range);
	return 0;
}

/*
 * l3x_rules_build() - see l3x_internal.h. Entries come sorted by key, their
 * ranges sorted too. O(prefixes x rules): at most 4096 x 4096 cheap
 * comparisons, on the control path only. Any thread.
 */
int l3x_rules_build(const struct l3x_rule_key *rules, size_t n, int family,
		    struct l3x_prefix_entry **out, size_t *nout)
{
	struct l3x_prefix_entry *e;
	size_t i, ne;
	int err;

	e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	ne = collect_prefixes(rules, n, family, e);
	for (i = 0; i < ne; i++) {
		err = fill_entry(&e[i], rules, n, family);
		if (err) {
			free(e);
			return err;
		}
	}
	*out = e;
	*nout = ne;
	return 0;
}

/* ------------------------------------------------------------ maps */

/* The rules of the l3x_rules map: valid, sorted, each once. */
struct rule_set {
	struct l3x_rule_key *k;
	size_t n;
};

/* A trie's own key: IPv4 tries take 4 bytes of address. */
union trie_key {
	struct l3x_lpm4_key k4;
	struct l3x_lpm6_key k6;
};

static const void *to_trie_key(int family, const struct l3x_lpm6_key *k,
			       union trie_key *buf)
{
	if (family == 6)
		return k;
	memset(buf, 0, sizeof(*buf));
	buf->k4.prefixlen = k->prefixlen;
	memcpy(buf->k4.addr, k->addr, sizeof(buf->k4.addr));
	return &buf->k4;
}

static void from_trie_key(int family, const union trie_key *buf,
			  struct l3x_lpm6_key *k)
{
	memset(k, 0, sizeof(*k));
	if (family == 6) {
		*k = buf->k6;
		return;
	}
	k->prefixlen = buf->k4.prefixlen;
	memcpy(k->addr, buf->k4.addr, sizeof(buf->k4.addr));
}

/* Make room for one more element of @size in *@arr. */
static int grow(void **arr, size_t n, size_t *cap, size_t size)
{
	size_t ncap = *cap ? 2 * *cap : 64;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, ncap * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static int cmp_rule_key(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct l3x_rule_key));
}

/* Is @k a live rule as we would have stored it? Others are skipped: gone
 * since the walk found them, a zero count, or written by something else. */
static bool live_rule(int fd, const struct l3x_rule_key *k)
{
	struct l3x_rule_key canon;
	struct l3x_rule r;
	__u32 ref;

	if (bpf_map_lookup_elem(fd, k, &ref) || !ref)
		return false;
	l3x_rule_from_key(k, &r);
	l3x_rule_to_key(&r, &canon);
	if (l3x_rule_check(&r) || memcmp(&canon, k, sizeof(canon))) {
		pr_warn("l3x_rules: ignoring a malformed rule key\n");
		return false;
	}
	return true;
}

/* Sort @s and drop repeats (a walk restarted by a concurrent delete sees
 * keys twice). */
static void sort_unique(struct rule_set *s)
{
	size_t i, out = 0;

	if (!s->n)
		return;
	qsort(s->k, s->n, sizeof(s->k[0]), cmp_rule_key);
	for (i = 0; i < s->n; i++)
		if (!out || cmp_rule_key(&s->k[out - 1], &s->k[i]))
			s->k[out++] = s->k[i];
	s->n = out;
}

static int read_rules(int fd, struct rule_set *s)
{
	struct l3x_rule_key cur, next;
	size_t cap = 0, walked = 0;
	void *prev = NULL;
	int err;

	s->k = NULL;
	s->n = 0;
	while (!(err = bpf_map_get_next_key(fd, prev, &next))) {
		cur = next;
		prev = &cur;
		if (++walked > WALK_LIMIT) {
			err = -EAGAIN;
			goto out_free;
		}
		if (!live_rule(fd, &cur))
			continue;
		err = grow((void **)&s->k, s->n, &cap, sizeof(s->k[0]));
		if (err)
			goto out_free;
		s->k[s->n++] = cur;
	}
	if (err != -ENOENT)
		goto out_free;
	sort_unique(s);
	return 0;

out_free:
	free(s->k);
	s->k = NULL;
	return err;
}

static bool same_rules(const struct rule_set *a, const struct rule_set *b)
{
	return a->n == b->n &&
	       (!a->n || !memcmp(a->k, b->k, a->n * sizeof(a->k[0])));
}

/* Every entry of the trie @fd, sorted by key. We collect before we change
 * anything: deleting while walking an LPM trie skips keys. */
static int read_trie(int fd, int family, struct l3x_prefix_entry **out,
		     size_t *nout)
{
	struct l3x_prefix_entry *e = NULL;
	union trie_key cur, next;
	size_t n = 0, cap = 0, walked = 0;
	void *prev = NULL;
	int err;

	memset(&next, 0, sizeof(next));
	while (!(err = bpf_map_get_next_key(fd, prev, &next))) {
		cur = next;
		prev = &cur;
		if (++walked > WALK_LIMIT) {
			err = -EAGAIN;
			goto out_free;
		}
		err = grow((void **)&e, n, &cap, sizeof(*e));
		if (err)
			goto out_free;
		/* An existing key's own entry is its longest match. */
		err = bpf_map_lookup_elem(fd, &cur, &e[n].val);
		if (err == -ENOENT)
			continue; /* deleted meanwhile */
		if (err)
			goto out_free;
		from_trie_key(family, &cur, &e[n++].key);
	}
	if (err != -ENOENT)
		goto out_free;
	if (n)
		qsort(e, n, sizeof(*e), cmp_key);
	*out = e;
	*nout = n;
	return 0;

out_free:
	free(e);
	return err;
}

static const struct l3x_prefix_entry *
find_entry(const struct l3x_prefix_entry *e, size_t n,
	   const struct l3x_lpm6_key *k)
{
	return n ? bsearch(k, e, n, sizeof(*e), cmp_key) : NULL;
}

static bool same_val(const struct l3x_lpm_val *a, const struct l3x_lpm_val *b)
{
	return a->count == b->count && a->count <= L3X_MAX_RANGES &&
	       !memcmp(a->r, b->r, a->count * sizeof(a->r[0]));
}

/* Write the entries of @e that @old lacks or holds with another value. */
static int write_changed(int fd, int family, const struct l3x_prefix_entry *e,
			 size_t n, const struct l3x_prefix_entry *old,
			 size_t nold)
{
	const struct l3x_prefix_entry *o;
	union trie_key buf;
	size_t i;
	int err;

	for (i = 0; i < n; i++) {
		o = find_entry(old, nold, &e[i].key);
		if (o && same_val(&o->val, &e[i].val))
			continue;
		err = bpf_map_update_elem(fd,
					  to_trie_key(family, &e[i].key, &buf),
					  &e[i].val, BPF_ANY);
		if (err)
			return err == -E2BIG ? -ENOSPC : err;
	}
	return 0;
}

/* Delete the entries of @old that @e does not have. */
static int delete_stale(int fd, int family, const struct l3x_prefix_entry *e,
			size_t n, const struct l3x_prefix_entry *old,
			size_t nold)
{
	union trie_key buf;
	size_t i;
	int err, ret = 0;

	for (i = 0; i < nold; i++) {
		if (find_entry(e, n, &old[i].key))
			continue;
		err = bpf_map_delete_elem(
			fd, to_trie_key(family, &old[i].key, &buf));
		if (err && err != -ENOENT && !ret)
			ret = err;
	}
	return ret;
}

/* Make the trie @fd hold exactly the entries @e. */
static int sync_trie(int fd, int family, const struct l3x_prefix_entry *e,
		     size_t n)
{
	struct l3x_prefix_entry *old;
	size_t nold;
	int err;

	err = read_trie(fd, family, &old, &nold);
	if (err)
		return err;
	err = write_changed(fd, family, e, n, old, nold);
	if (err == -ENOSPC) {
		/* The trie cannot hold old and new at once. Deleting the
		 * stale entries first is safe too: they hold no rule of
		 * their own, so their packets fall to a shorter entry that
		 * still holds every remaining rule covering them. */
		err = delete_stale(fd, family, e, n, old, nold);
		if (!err)
			err = write_changed(fd, family, e, n, old, nold);
	}
	if (!err)
		err = delete_stale(fd, family, e, n, old, nold);
	free(old);
	return err;
}

/* Write the tries for @s. Both are built before either is written, so a
 * set that does not fit changes nothing. */
static int apply(const struct l3x_maps *m, const struct rule_set *s)
{
	struct l3x_prefix_entry *e4 = NULL, *e6 = NULL;
	size_t n4 = 0, n6 = 0;
	int err;

	err = l3x_rules_build(s->k, s->n, 4, &e4, &n4);
	if (!err)
		err = l3x_rules_build(s->k, s->n, 6, &e6, &n6);
	if (!err && (n4 > L3X_MAX_PREFIXES || n6 > L3X_MAX_PREFIXES))
		err = -ENOSPC;
	if (!err)
		err = sync_trie(m->lpm4, 4, e4, n4);
	if (!err)
		err = sync_trie(m->lpm6, 6, e6, n6);
	free(e4);
	free(e6);
	return err;
}

/*
 * l3x_rules_sync() - see l3x_internal.h. Returns 0; -ENOSPC when the rules
 * need more than L3X_MAX_PREFIXES entries or L3X_MAX_RANGES ranges on one
 * (nothing is written then); -EAGAIN when other processes kept changing
 * the rules for SYNC_PASSES passes; -ENOMEM; others from the bpf syscall.
 * Any thread, any process: concurrent syncs converge.
 */
int l3x_rules_sync(const struct l3x_maps *m)
{
	struct rule_set cur, next;
	int pass, err;
	bool same = false;

	err = read_rules(m->rules, &cur);
	if (err)
		return err;
	for (pass = 0; pass < SYNC_PASSES && !same; pass++) {
		err = apply(m, &cur);
		if (err)
			break;
		/* Wrote from a view another process may have changed since:
		 * look again, and go again if it did. */
		err = read_rules(m->rules, &next);
		if (err)
			break;
		same = same_rules(&cur, &next);
		free(cur.k);
		cur = next;
	}
	free(cur.k);
	if (!err && !same) {
		pr_warn("rules kept changing during %d syncs\n", SYNC_PASSES);
		err = -EAGAIN;
	}
	return err;
}

/* One read-modify-write of @k's count; -EAGAIN if another process added
 * or removed @k in between. */
static int ref_try(int fd, const struct l3x_rule_key *k, int delta)
{
	__u32 ref;
	int err;

	err = bpf_map_lookup_elem(fd, k, &ref);
	if (err == -ENOENT) {
		if (delta < 0)
			return -ENOENT;
		ref = 1;
		err = bpf_map_update_elem(fd, k, &ref, BPF_NOEXIST);
		if (err == -EEXIST)
			return -EAGAIN;
		return err == -E2BIG ? -ENOSPC : err;
	}
	if (err)
		return err;
	if (delta < 0 && ref <= 1) {
		err = bpf_map_delete_elem(fd, k);
		return err == -ENOENT ? -EAGAIN : err;
	}
	if (delta > 0 && ref == UINT32_MAX)
		return -EOVERFLOW;
	ref += delta;
	err = bpf_map_update_elem(fd, k, &ref, BPF_EXIST);
	return err == -ENOENT ? -EAGAIN : err;
}

/*
 * Count @k in (@delta 1) or out (-1) of the l3x_rules map. The value is a
 * bare __u32 (no bpf_spin_lock, so no BPF_F_LOCK): two processes changing
 * the same rule's count at the same instant can still lose one change.
 * The EXIST/NOEXIST flags at least keep an insert or a delete from being
 * overwritten. Rule changes are rare, so this is accepted.
 */
static int ref_change(int fd, const struct l3x_rule_key *k, int delta)
{
	int i, err = -EAGAIN;

	for (i = 0; i < REF_TRIES && err == -EAGAIN; i++)
		err = ref_try(fd, k, delta);
	return err;
}

/* Count valid rule @r (its key in @k) in or out of the l3x_rules map. */
static int count_rule(const struct l3x_maps *m, const struct l3x_rule *r,
		      int delta, struct l3x_rule_key *k)
{
	if (l3x_rule_check(r))
		return -EINVAL;
	l3x_rule_to_key(r, k);
	return ref_change(m->rules, k, delta);
}

/*
 * l3x_rules_add() - see l3x_internal.h. Returns 0; -EINVAL bad rule;
 * -ENOSPC l3x_rules full, or the tries would overflow; -EOVERFLOW count at
 * its maximum; others from l3x_rules_sync(). Whenever the sync fails, the
 * count is taken back and the tries resynced, so a failed add leaves no
 * rule behind. Any thread.
 */
int l3x_rules_add(const struct l3x_maps *m, const struct l3x_rule *r)
{
	struct l3x_rule_key k;
	int err;

	err = count_rule(m, r, 1, &k);
	if (err)
		return err;
	err = l3x_rules_sync(m);
	if (err) {
		ref_change(m->rules, &k, -1);
		l3x_rules_sync(m);
	}
	return err;
}

/*
 * l3x_rules_del() - see l3x_internal.h. Returns 0; -EINVAL bad rule;
 * -ENOENT no such rule; others from l3x_rules_sync() (the count is down
 * then, and the next sync removes what is stale). Any thread.
 */
int l3x_rules_del(const struct l3x_maps *m, const struct l3x_rule *r)
{
	struct l3x_rule_key k;
	int err;

	err = count_rule(m, r, -1, &k);
	if (err)
		return err;
	return l3x_rules_sync(m);
}

/* Take back the references of one dead owner (l3x_rules_reap()). */
struct reap {
	const struct l3x_maps *m;
	int refs;
};

static void reap_one(const struct l3x_owner_key *o, uint32_t count, void *arg)
{
	struct reap *r = arg;
	uint32_t i;

	for (i = 0; i < count; i++)
		if (!ref_change(r->m->rules, &o->rule, -1))
			r->refs++;
}

/* l3x_rules_reap() - see l3x_internal.h. */
int l3x_rules_reap(const struct l3x_maps *m)
{
	struct reap r = { m, 0 };
	int n, err;

	n = l3x_owners_claim_dead(m->owners, reap_one, &r);
	if (n <= 0)
		return n;
	err = l3x_rules_sync(m);
	return err ? err : r.refs;
}

/* A rule counted in the maps on behalf of this process: the reference
 * first, then its owner entry, so that a crash in between leaves a rule
 * no one reaps (a leak) rather than an owner entry whose reaping would
 * take back someone else's reference. Deleting goes the other way. */
static int owned_add(const struct l3x_maps *m, const struct l3x_rule *r)
{
	struct l3x_rule_key k;
	int err;

	err = l3x_rules_add(m, r);
	if (err)
		return err;
	l3x_rule_to_key(r, &k);
	err = l3x_owners_add(m->owners, &k);
	if (err)
		l3x_rules_del(m, r);
	return err;
}

static int owned_del(const struct l3x_maps *m, const struct l3x_rule *r)
{
	struct l3x_rule_key k;

	l3x_rule_to_key(r, &k);
	l3x_owners_del(m->owners, &k);
	return l3x_rules_del(m, r);
}

/* ------------------------------------------------------------ ruleset */

/* The software rules: an immutable array replaced whole, retired by epoch. */
struct rule_snap {
	struct l3x_retired retired; /* first: see epoch.h */
	size_t n;
	struct l3x_rule r[];
};

/* The software l3x_frags: a datagram's key and where it goes. */
struct frag_slot {
	struct l3x_frag_key key;
	bool used;
	bool divert; /* L3X_FRAG_DIVERT */
};

struct l3x_ruleset {
	const struct l3x_maps *maps; /* steering maps; NULL: software */
	struct l3x_epoch *ep;	     /* software: retires old snapshots */
	struct l3x_rule *own;	     /* added here: removed on close */
	size_t nown, own_cap;
	struct rule_snap *_Atomic snap; /* software: what the matcher reads */
	struct frag_slot *frags;	/* software: datagrams in flight,
					 * FRAG_SLOTS; the matcher's thread */
};

/*
 * l3x_ruleset_open() - see l3x_internal.h. Returns NULL with errno ENOMEM.
 * Any thread.
 */
struct l3x_ruleset *l3x_ruleset_open(const struct l3x_maps *maps,
				     struct l3x_epoch *ep)
{
	struct l3x_ruleset *rs = calloc(1, sizeof(*rs));

	if (!rs)
		return NULL;
	rs->maps = maps;
	rs->ep = ep;
	return rs;
}

/* Publish a copy of the snapshot with @r added or removed. */
static int snap_swap(struct l3x_ruleset *rs, const struct l3x_rule *r, bool add)
{
	struct rule_snap *old = atomic_load(&rs->snap), *s;
	size_t n = old ? old->n : 0, i;

	s = malloc(sizeof(*s) + (n + 1) * sizeof(s->r[0]));
	if (!s)
		return -ENOMEM;
	s->n = 0;
	for (i = 0; i < n; i++)
		s->r[s->n++] = old->r[i];
	if (add) {
		s->r[s->n++] = *r;
	} else {
		for (i = 0; i < s->n; i++)
			if (!memcmp(&s->r[i], r, sizeof(*r)))
				break;
		if (i == s->n) {
			free(s);
			return -ENOENT;
		}
		s->r[i] = s->r[--s->n];
	}
	/* Seq_cst: the matcher's next turn reads the new snapshot; the old
	 * one waits for the turns that may hold it (epoch.h). */
	atomic_store(&rs->snap, s);
	if (rs->ep)
		l3x_epoch_retire(rs->ep, old ? &old->retired : NULL);
	else
		free(old);
	return 0;
}

static void own_del(struct l3x_ruleset *rs, const struct l3x_rule *r)
{
	size_t i;

	for (i = 0; i < rs->nown; i++) {
		if (!memcmp(&rs->own[i], r, sizeof(*r))) {
			rs->own[i] = rs->own[--rs->nown];
			return;
		}
	}
}

/*
 * l3x_ruleset_add() - see l3x_internal.h. Returns 0; -EINVAL bad rule;
 * -ENOMEM; others from l3x_rules_add(). Control thread.
 */
int l3x_ruleset_add(struct l3x_ruleset *rs, const struct l3x_rule *r)
{
	int err;

	if (!rs || l3x_rule_check(r))
		return -EINVAL;
	err = grow((void **)&rs->own, rs->nown, &rs->own_cap,
		   sizeof(rs->own[0]));
	if (err)
		return err;
	err = rs->maps ? owned_add(rs->maps, r) : snap_swap(rs, r, true);
	if (!err)
		rs->own[rs->nown++] = *r;
	return err;
}

/*
 * l3x_ruleset_del() - see l3x_internal.h. Returns 0; -EINVAL bad rule;
 * -ENOENT no such rule; others from l3x_rules_del(). Control thread.
 */
int l3x_ruleset_del(struct l3x_ruleset *rs, const struct l3x_rule *r)
{
	int err;

	if (!rs || l3x_rule_check(r))
		return -EINVAL;
	err = rs->maps ? owned_del(rs->maps, r) : snap_swap(rs, r, false);
	if (!err)
		own_del(rs, r);
	return err;
}

/*
 * l3x_ruleset_close() - see l3x_internal.h. A reused program stays
 * attached with other owners' rules: only ours are taken back. Control
 * thread, with no matcher running.
 */
void l3x_ruleset_close(struct l3x_ruleset *rs)
{
	size_t i;

	if (!rs)
		return;
	for (i = 0; rs->maps && i < rs->nown; i++)
		owned_del(rs->maps, &rs->own[i]);
	free(atomic_load(&rs->snap));
	free(rs->frags);
	free(rs->own);
	free(rs);
}

/* ------------------------------------------------------------ matcher */

/*
 * The software matcher, for the sources the XDP program does not see (TUN,
 * callback). It parses as bpf/l3x.bpf.c does, step for step, so that a rule
 * means one thing on every source; tests/netns/test_rules_table_xdp.c
 * drives one table of frames through both and wants the same verdict from
 * each:
 *   - Ethernet and up to two VLAN tags (802.1Q / 802.1ad), or a bare IP
 *     packet whose version says its family;
 *   - IPv4: IHL at least 5, header and total length within the buffer;
 *     IPv6: payload length within the buffer, then up to six extension
 *     headers (hop-by-hop, routing, destination options, AH, fragment),
 *     each within the payload; a longer chain is malformed;
 *   - bounds checked against the buffer's end and the datagram's own
 *     length, so padding is never read as a header or a port;
 *   - neighbour discovery always passes; ports only for TCP and UDP;
 *   - fragments: every first fragment's decision is remembered (the key
 *     and values of the program's l3x_frags) until the last fragment, so
 *     the rest of its datagram follows it; a second first fragment of a
 *     live datagram is a conflict and sends the datagram to the kernel; a
 *     later fragment of an unknown datagram is taken only by an "ip" rule.
 */

#define ETH_HDR_LEN    14
#define ETH_P_IP_      0x0800
#define ETH_P_IPV6_    0x86DD
#define ETH_P_8021Q_   0x8100
#define ETH_P_8021AD_  0x88A8
#define IP_MF_	       0x2000
#define IP_OFFSET_     0x1FFF
#define IP6_MF_	       0x0001
#define IP6_OFFSET_    0xFFF8
#define MAX_VLAN_TAGS  2
#define MAX_EXT_HDRS   6
#define NH_HOPOPTS     0
#define NH_TCP	       6
#define NH_UDP	       17
#define NH_ROUTING     43
#define NH_FRAGMENT    44
#define NH_AH	       51
#define NH_ICMPV6      58
#define NH_DSTOPTS     60
#define ICMP6_ND_FIRST 133 /* router solicitation */
#define ICMP6_ND_LAST  137 /* redirect */
/* First fragments remembered, as many as the program's l3x_frags holds. */
#define FRAG_SLOTS L3X_MAX_FRAGS

enum frag {
	FRAG_NONE,
	FRAG_FIRST, /* offset 0, more to come: carries the L4 header */
	FRAG_LATER, /* offset != 0: no L4 header, so no ports */
};

/* What parsing found: struct pkt of the program, with offsets. */
struct pkt {
	size_t l4;	    /* offset of the upper-layer header */
	uint32_t l4_room;   /* datagram bytes from l4 on */
	uint8_t family;	    /* 4 or 6 */
	uint8_t proto;	    /* upper-layer protocol */
	uint8_t frag_proto; /* the same in every fragment */
	uint8_t frag;	    /* enum frag */
	uint8_t frag_last;  /* no more fragments (MF clear) */
	uint32_t frag_id;   /* host order */
	uint16_t dport;	    /* host order, TCP/UDP only */
	uint16_t vlan;	    /* the innermost tag's ID; 0 untagged */
	uint8_t src[16];    /* IPv4 in the first 4 bytes, rest zero */
	uint8_t dst[16];
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Ethertype after up to two VLAN tags, in either order; *@l3 is set past
 * them, *@vlan to the innermost one's ID (0: none). -1 if the frame is cut
 * short. */
static int parse_eth(const uint8_t *d, size_t end, size_t *l3, uint16_t *vlan)
{
	size_t off = ETH_HDR_LEN;
	uint16_t proto;
	int i;

	if (end < off)
		return -1;
	proto = get16(d + 12);
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		if (proto != ETH_P_8021Q_ && proto != ETH_P_8021AD_)
			break;
		if (off + 4 > end)
			return -1;
		*vlan = get16(d + off) & 0xfff;
		proto = get16(d + off + 2); /* TCI, then the inner type */
		off += 4;
	}
	*l3 = off;
	return proto;
}

static int parse_ipv4(struct pkt *k, const uint8_t *d, size_t l3, size_t end)
{
	const uint8_t *ip = d + l3;
	uint32_t ihl, tot;
	uint16_t frag;

	if (l3 + 20 > end || ip[0] >> 4 != 4 || (ip[0] & 0xf) < 5)
		return -1;
	ihl = (uint32_t)(ip[0] & 0xf) * 4;
	tot = get16(ip + 2);
	if (l3 + ihl > end || tot < ihl || l3 + tot > end)
		return -1;
	k->family = 4;
	k->proto = ip[9];
	k->frag_proto = ip[9];
	memcpy(k->src, ip + 12, 4);
	memcpy(k->dst, ip + 16, 4);
	frag = get16(ip + 6);
	if (frag & IP_OFFSET_)
		k->frag = FRAG_LATER;
	else if (frag & IP_MF_)
		k->frag = FRAG_FIRST;
	k->frag_last = !(frag & IP_MF_);
	k->frag_id = get16(ip + 4);
	k->l4 = l3 + ihl;
	k->l4_room = tot - ihl;
	return 0;
}

/* The fragment header at @h: what it says about this fragment. Its next
 * header is the same in every fragment of a datagram, while the
 * upper-layer protocol is only known in the first one. */
static void ipv6_frag(struct pkt *k, const uint8_t *h)
{
	uint16_t off = get16(h + 2);

	k->frag_proto = h[0];
	k->frag_id = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 |
		     (uint32_t)h[6] << 8 | h[7];
	if (off & IP6_OFFSET_)
		k->frag = FRAG_LATER;
	else if (off & IP6_MF_)
		k->frag = FRAG_FIRST;
	k->frag_last = !(off & IP6_MF_);
}

static bool ipv6_is_ext(uint8_t nh)
{
	return nh == NH_HOPOPTS || nh == NH_ROUTING || nh == NH_DSTOPTS ||
	       nh == NH_AH || nh == NH_FRAGMENT;
}

/* Length of the extension header @nh at @h (one we walk). */
static uint32_t ipv6_ext_len(uint8_t nh, const uint8_t *h)
{
	if (nh == NH_AH)
		return ((uint32_t)h[1] + 2) * 4;
	if (nh == NH_FRAGMENT)
		return 8;
	return ((uint32_t)h[1] + 1) * 8;
}

/* Walk the extension headers to the upper-layer header. Every header we
 * walk is at least 8 bytes, so checking its length against the payload
 * left also catches one cut short. A later fragment ends the walk: what
 * follows its fragment header is payload, not a header. */
static int ipv6_walk(struct pkt *k, const uint8_t *d, uint8_t nh, size_t end)
{
	const uint8_t *h;
	uint32_t len;
	int i;

	for (i = 0; i < MAX_EXT_HDRS; i++) {
		if (!ipv6_is_ext(nh) || k->frag == FRAG_LATER)
			break;
		if (k->l4 + 8 > end)
			return -1;
		h = d + k->l4;
		if (nh == NH_FRAGMENT)
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

static int parse_ipv6(struct pkt *k, const uint8_t *d, size_t l3, size_t end)
{
	const uint8_t *ip = d + l3;

	if (l3 + 40 > end || ip[0] >> 4 != 6)
		return -1;
	k->l4 = l3 + 40;
	k->l4_room = get16(ip + 4);
	if (k->l4 + k->l4_room > end)
		return -1;
	k->family = 6;
	memcpy(k->src, ip + 8, 16);
	memcpy(k->dst, ip + 24, 16);
	return ipv6_walk(k, d, ip[6], end);
}

/* Neighbour discovery, which the kernel must always see. -1 if the type
 * is cut off. */
static int is_nd(const struct pkt *k, const uint8_t *d, size_t end)
{
	if (k->family != 6 || k->proto != NH_ICMPV6 || k->frag == FRAG_LATER)
		return 0;
	if (k->l4 + 1 > end || k->l4_room < 1)
		return -1;
	return d[k->l4] >= ICMP6_ND_FIRST && d[k->l4] <= ICMP6_ND_LAST;
}

/* Destination port of TCP and UDP: both start with the two ports. */
static int parse_dport(struct pkt *k, const uint8_t *d, size_t end)
{
	if (k->frag == FRAG_LATER || (k->proto != NH_TCP && k->proto != NH_UDP))
		return 0;
	if (k->l4 + 4 > end || k->l4_room < 4)
		return -1;
	k->dport = get16(d + k->l4 + 2);
	return 0;
}

/* Parse @d as the program does: 0 and @k filled for an IP packet, 1 for a
 * frame that is not IP (it passes), -1 malformed. */
static int parse_frame(struct pkt *k, const uint8_t *d, size_t len,
		       unsigned flags)
{
	size_t l3 = 0;
	uint16_t vlan = 0;
	int proto;

	memset(k, 0, sizeof(*k));
	if (flags & L3X_MATCH_L2)
		proto = parse_eth(d, len, &l3, &vlan);
	else if (len && d[0] >> 4 == 4)
		proto = ETH_P_IP_;
	else if (len && d[0] >> 4 == 6)
		proto = ETH_P_IPV6_;
	else
		return -1; /* a bare packet must be IP */
	k->vlan = vlan;
	if (proto == ETH_P_IP_)
		return parse_ipv4(k, d, l3, len);
	if (proto == ETH_P_IPV6_)
		return parse_ipv6(k, d, l3, len);
	return proto < 0 ? -1 : 1;
}

/* Does rule @r take the packet? Without ports (a later fragment) only an
 * "ip" rule can, as in the program's range check. */
static bool rule_takes(const struct l3x_rule *r, const struct pkt *k,
		       bool ports_known)
{
	if (r->family != k->family || !contains(r->addr, r->prefix_len, k->dst,
						k->family == 4 ? 32 : 128))
		return false;
	if (r->vlan && r->vlan != k->vlan)
		return false;
	if (r->proto == L3X_PROTO_IP)
		return true;
	return ports_known && r->proto == k->proto && r->port_lo <= k->dport &&
	       k->dport <= r->port_hi;
}

static bool match_rules(const struct l3x_ruleset *rs, const struct pkt *k,
			bool ports_known)
{
	/* Acquire: pairs with the seq_cst store in snap_swap(). */
	const struct rule_snap *s =
		atomic_load_explicit(&rs->snap, memory_order_acquire);
	size_t i;

	for (i = 0; s && i < s->n; i++)
		if (rule_takes(&s->r[i], k, ports_known))
			return true;
	return false;
}

/* ---- first fragments that matched: the program's l3x_frags, as a table
 * that overwrites on collision (the program's map is an LRU) */

static void frag_key(struct l3x_frag_key *fk, const struct pkt *k)
{
	memset(fk, 0, sizeof(*fk)); /* padding is part of the key */
	fk->family = k->family;
	fk->proto = k->frag_proto;
	fk->id = k->frag_id;
	memcpy(fk->src, k->src, 16);
	memcpy(fk->dst, k->dst, 16);
}

/* The slot of @fk's datagram: direct-mapped, so a collision evicts as
 * the program's LRU does (the evicted datagram's rest goes to the
 * kernel). */
/* Slots a datagram may take after its home one. */
#define FRAG_PROBE 8

/*
 * The slot of @fk: where it is, else with @add a free one of the
 * FRAG_PROBE from its home (a keyed SipHash, lib/hash.c, so that no one
 * can aim datagrams at one home), else with @add the home one, whose
 * datagram is forgotten as the program's LRU map forgets one; NULL
 * otherwise, or without memory (later fragments then pass).
 */
static struct frag_slot *frag_find(struct l3x_ruleset *rs,
				   const struct l3x_frag_key *fk, bool add)
{
	struct frag_slot *s, *free_slot = NULL;
	size_t home, i;

	if (!rs->frags)
		rs->frags = calloc(FRAG_SLOTS, sizeof(*rs->frags));
	if (!rs->frags)
		return NULL;
	home = l3x_hash(L3X_HASH_FRAG, fk, sizeof(*fk)) % FRAG_SLOTS;
	for (i = 0; i < FRAG_PROBE; i++) {
		s = &rs->frags[(home + i) % FRAG_SLOTS];
		if (s->used && !memcmp(&s->key, fk, sizeof(*fk)))
			return s;
		if (!s->used && !free_slot)
			free_slot = s;
	}
	if (!add)
		return NULL;
	return free_slot ? free_slot : &rs->frags[home];
}

static bool slot_holds(const struct frag_slot *s, const struct l3x_frag_key *fk)
{
	return s && s->used && !memcmp(&s->key, fk, sizeof(*fk));
}

/* The program's frag_first(): a first fragment whose datagram is live
 * already is a conflict, and the datagram goes to the kernel. */
static bool frag_first(struct l3x_ruleset *rs, const struct pkt *k, bool match)
{
	struct l3x_frag_key fk;
	struct frag_slot *s;

	frag_key(&fk, k);
	s = frag_find(rs, &fk, true);
	if (slot_holds(s, &fk)) {
		s->divert = false;
		return false;
	}
	if (s) {
		s->key = fk;
		s->used = true;
		s->divert = match;
	}
	return match;
}

/* The program's frag_later(): 1 to a socket, 0 to the kernel, -1
 * unknown; the last fragment ends the entry. */
static int frag_later(struct l3x_ruleset *rs, const struct pkt *k)
{
	struct l3x_frag_key fk;
	struct frag_slot *s;
	int div;

	frag_key(&fk, k);
	s = frag_find(rs, &fk, false);
	if (!s)
		return -1;
	div = s->divert;
	if (k->frag_last)
		s->used = false;
	return div;
}

/* The program's decide(); @rs NULL takes every packet that parses. */
static enum l3x_verdict decide(struct l3x_ruleset *rs, struct pkt *k,
			       const uint8_t *d, size_t end)
{
	int nd = is_nd(k, d, end), div;
	bool match;

	if (nd)
		return nd < 0 ? L3X_VERDICT_MALFORMED : L3X_VERDICT_PASS;
	if (parse_dport(k, d, end))
		return L3X_VERDICT_MALFORMED;
	if (!rs)
		return L3X_VERDICT_MATCH;
	if (k->frag == FRAG_LATER) {
		div = frag_later(rs, k);
		match = div > 0 || (div < 0 && match_rules(rs, k, false));
		return match ? L3X_VERDICT_MATCH : L3X_VERDICT_PASS;
	}
	match = match_rules(rs, k, true);
	if (k->frag == FRAG_FIRST)
		match = frag_first(rs, k, match);
	return match ? L3X_VERDICT_MATCH : L3X_VERDICT_PASS;
}

/*
 * l3x_ruleset_match() - see l3x_internal.h. Lock-free for rule changes: one
 * acquire load of the snapshot. Engine thread (inside an epoch turn): the
 * fragment table is the engine's.
 */
enum l3x_verdict l3x_ruleset_match(struct l3x_ruleset *rs, const void *pkt,
				   size_t len, unsigned flags)
{
	struct pkt k;
	int r = parse_frame(&k, pkt, len, flags);

	if (r)
		return r < 0 ? L3X_VERDICT_MALFORMED : L3X_VERDICT_PASS;
	return decide(rs, &k, pkt, len);
}
