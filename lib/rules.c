/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * rules.c - steering rules: the text syntax "PROTO DST [PORT[-PORT]]" and
 * their life in the maps.
 *
 * The l3x_rules hash holds every rule with a reference count; it is the
 * source of truth. From it we build the two LPM tries the XDP program
 * reads: one entry per distinct rule prefix, whose value holds the port
 * ranges of every rule whose prefix contains that prefix.
 *
 * Why one lookup suffices: every rule's prefix is in the trie. Let a packet
 * go to address A and let P be its longest matching entry. Any rule R whose
 * prefix C contains A is in the trie too, so |C| <= |P|; C and P both
 * contain A, so C contains P, and R's ranges were copied into P's entry.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "l3x_internal.h"

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

/* Split @text on blanks into at most @max tokens; returns the count, or
 * max + 1 if there are more. Tokens point into @buf. */
static int tokenize(const char *text, char *buf, size_t sz, char **tok,
		    int max)
{
	char *p;
	int n = 0;

	if (snprintf(buf, sz, "%s", text) >= (int)sz)
		return -1;
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

/* Decimal, no sign, 0..@max. */
static int parse_num(const char *s, size_t len, unsigned long max,
		     unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (!len || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -1;
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

/* Zero the host bits of @addr past @plen; true if any were set. */
static bool clear_host_bits(uint8_t *addr, unsigned len, unsigned plen)
{
	bool set = false;
	unsigned i;

	for (i = 0; i < len; i++) {
		unsigned keep = plen >= 8 * (i + 1) ? 8 :
				plen > 8 * i	    ? plen - 8 * i :
						      0;
		uint8_t mask = keep ? (uint8_t)(0xff << (8 - keep)) : 0;

		set |= (addr[i] & ~mask) != 0;
		addr[i] &= mask;
	}
	return set;
}

static int parse_dst(struct l3x_rule *r, const char *s, char *err,
		     size_t err_sz)
{
	const char *slash = strchr(s, '/');
	char host[INET6_ADDRSTRLEN + 1], canon[INET6_ADDRSTRLEN];
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long plen;
	unsigned max;

	if (hlen >= sizeof(host))
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
		return fail(err, err_sz,
			    "destination '%s': host bits set past /%lu (did you mean %s/%lu?)",
			    s, plen, canon, plen);
	}
	return 0;
}

static int parse_ports(struct l3x_rule *r, const char *s, char *err,
		       size_t err_sz)
{
	const char *dash = strchr(s, '-');
	unsigned long lo, hi;
	size_t llen = dash ? (size_t)(dash - s) : strlen(s);

	if (r->proto == L3X_PROTO_IP)
		return fail(err, err_sz,
			    "ports '%s': only tcp and udp rules take ports", s);
	if (parse_num(s, llen, 65535, &lo))
		return fail(err, err_sz, "port '%.*s': must be 0-65535",
			    (int)llen, s);
	hi = lo;
	if (dash && parse_num(dash + 1, strlen(dash + 1), 65535, &hi))
		return fail(err, err_sz, "port '%s': must be 0-65535",
			    dash + 1);
	if (lo > hi)
		return fail(err, err_sz,
			    "port range '%s': start is above end", s);
	r->port_lo = (uint16_t)lo;
	r->port_hi = (uint16_t)hi;
	return 0;
}

int l3x_rule__parse(struct l3x_rule *rule, const char *text, char *err,
		    size_t err_sz)
{
	struct l3x_rule r = { .port_lo = 0, .port_hi = 65535 };
	char buf[256];
	char *tok[4];
	int n, e;

	if (!rule || !text)
		return fail(err, err_sz, "rule: missing");
	n = tokenize(text, buf, sizeof(buf), tok, 4);
	if (n < 0)
		return fail(err, err_sz, "rule: longer than %zu characters",
			    sizeof(buf) - 1);
	if (n == 0)
		return fail(err, err_sz, "rule: empty");
	if (n > 3)
		return fail(err, err_sz, "'%s': unexpected text after the port",
			    tok[3]);
	if ((e = parse_proto(&r, tok[0], err, err_sz)))
		return e;
	if (n == 1)
		return fail(err, err_sz, "rule: missing destination after '%s'",
			    tok[0]);
	if ((e = parse_dst(&r, tok[1], err, err_sz)))
		return e;
	if (n == 3 && (e = parse_ports(&r, tok[2], err, err_sz)))
		return e;
	*rule = r;
	return 0;
}

int l3x_rule_check(const struct l3x_rule *r)
{
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
	if (r->proto == L3X_PROTO_IP && (r->port_lo != 0 || r->port_hi != 65535))
		return -EINVAL;
	memcpy(addr, r->addr, sizeof(addr));
	if (clear_host_bits(addr, max / 8, r->prefix_len))
		return -EINVAL;
	if (r->family == 4 && memcmp(addr + 4, (uint8_t[12]){ 0 }, 12))
		return -EINVAL;
	return 0;
}

int l3x_rule__format(const struct l3x_rule *r, char *buf, size_t sz)
{
	static const char *const names[] = { [L3X_PROTO_IP] = "ip",
					     [L3X_PROTO_TCP] = "tcp",
					     [L3X_PROTO_UDP] = "udp" };
	char addr[INET6_ADDRSTRLEN], plen[8] = "", ports[16] = "";
	unsigned max;
	int n;

	if (l3x_rule_check(r))
		return -EINVAL;
	max = r->family == 4 ? 32 : 128;
	inet_ntop(r->family == 4 ? AF_INET : AF_INET6, r->addr, addr,
		  sizeof(addr));
	if (r->prefix_len != max)
		snprintf(plen, sizeof(plen), "/%u", r->prefix_len);
	if (r->port_lo == r->port_hi)
		snprintf(ports, sizeof(ports), " %u", r->port_lo);
	else if (r->port_lo != 0 || r->port_hi != 65535)
		snprintf(ports, sizeof(ports), " %u-%u", r->port_lo, r->port_hi);
	n = snprintf(buf, sz, "%s %s%s%s", names[r->proto], addr, plen, ports);
	if (n < 0 || (size_t)n >= sz)
		return -ENOSPC;
	return n;
}

/* ------------------------------------------------------------ keys */

void l3x_rule_to_key(const struct l3x_rule *r, struct l3x_rule_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = r->family;
	k->proto = r->proto;
	k->prefix_len = r->prefix_len;
	k->port_lo = r->port_lo;
	k->port_hi = r->port_hi;
	memcpy(k->addr, r->addr, r->family == 4 ? 4 : 16);
}

void l3x_rule_from_key(const struct l3x_rule_key *k, struct l3x_rule *r)
{
	memset(r, 0, sizeof(*r));
	r->family = k->family;
	r->proto = k->proto;
	r->prefix_len = k->prefix_len;
	r->port_lo = k->port_lo;
	r->port_hi = k->port_hi;
	memcpy(r->addr, k->addr, k->family == 4 ? 4 : 16);
}

/* ------------------------------------------------------------ tries */

/* Does prefix @outer (of @olen bits) contain @inner of @ilen bits? */
static bool contains(const uint8_t *outer, unsigned olen, const uint8_t *inner,
		     unsigned ilen)
{
	unsigned full = olen / 8, rest = olen % 8;

	if (olen > ilen || memcmp(outer, inner, full))
		return false;
	return !rest || !((outer[full] ^ inner[full]) & (0xff << (8 - rest)));
}

static int add_range(struct l3x_lpm_val *v, const struct l3x_rule_key *k)
{
	struct l3x_range r = {
		.proto = k->proto,
		.lo = k->proto == L3X_P_ANY ? 0 : k->port_lo,
		.hi = k->proto == L3X_P_ANY ? 65535 : k->port_hi,
	};
	__u32 i;

	for (i = 0; i < v->count; i++)
		if (v->r[i].proto == r.proto && v->r[i].lo == r.lo &&
		    v->r[i].hi == r.hi)
			return 0;
	if (v->count == L3X_MAX_RANGES)
		return -ENOSPC;
	v->r[v->count++] = r;
	return 0;
}

static bool have_prefix(const struct l3x_prefix_entry *e, size_t n,
			const struct l3x_rule_key *k)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (e[i].key.prefixlen == k->prefix_len &&
		    !memcmp(e[i].key.addr, k->addr, sizeof(k->addr)))
			return true;
	return false;
}

int l3x_rules_build(const struct l3x_rule_key *rules, size_t n, int family,
		    struct l3x_prefix_entry **out, size_t *nout)
{
	struct l3x_prefix_entry *e;
	size_t i, j, ne = 0;
	int err;

	e = calloc(n ? n : 1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (rules[i].family != family || have_prefix(e, ne, &rules[i]))
			continue;
		e[ne].key.prefixlen = rules[i].prefix_len;
		memcpy(e[ne].key.addr, rules[i].addr, sizeof(e[ne].key.addr));
		ne++;
	}
	for (i = 0; i < ne; i++) {
		for (j = 0; j < n; j++) {
			if (rules[j].family != family ||
			    !contains(rules[j].addr, rules[j].prefix_len,
				      e[i].key.addr, e[i].key.prefixlen))
				continue;
			err = add_range(&e[i].val, &rules[j]);
			if (err) {
				free(e);
				return err;
			}
		}
	}
	*out = e;
	*nout = ne;
	return 0;
}

/* ------------------------------------------------------------ maps */

/* Every key of the l3x_rules map; *@n of them. */
static int read_rules(int fd, struct l3x_rule_key **out, size_t *n)
{
	struct l3x_rule_key *keys, *prev = NULL;
	size_t cap = 64, cnt = 0;

	keys = malloc(cap * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	while (!bpf_map_get_next_key(fd, prev, &keys[cnt])) {
		prev = &keys[cnt++];
		if (cnt == cap) {
			struct l3x_rule_key *k = realloc(keys, 2 * cap * sizeof(*k));

			if (!k) {
				free(keys);
				return -ENOMEM;
			}
			keys = k;
			cap *= 2;
			prev = &keys[cnt - 1];
		}
	}
	if (errno != ENOENT) {
		free(keys);
		return -errno;
	}
	*out = keys;
	*n = cnt;
	return 0;
}

/* The trie's key for an entry: IPv4 keys are 4 bytes of address. */
static void *trie_key(int family, const struct l3x_prefix_entry *e,
		      struct l3x_lpm4_key *k4)
{
	if (family == 6)
		return (void *)&e->key;
	k4->prefixlen = e->key.prefixlen;
	memcpy(k4->addr, e->key.addr, 4);
	return k4;
}

static bool in_new_set(int family, const void *key,
		       const struct l3x_prefix_entry *e, size_t n)
{
	struct l3x_lpm4_key k4;
	size_t i, ksz = family == 4 ? sizeof(k4) : sizeof(e->key);

	for (i = 0; i < n; i++)
		if (!memcmp(trie_key(family, &e[i], &k4), key, ksz))
			return true;
	return false;
}

/* Delete the trie keys not in @e: collect first, as deleting while
 * walking an LPM trie skips keys. */
static int delete_stale(int fd, int family, const struct l3x_prefix_entry *e,
			size_t n)
{
	struct l3x_lpm6_key cur, next, *stale = NULL, *s;
	size_t ns = 0, i;
	void *prev = NULL;
	int err = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		cur = next;
		prev = &cur;
		if (in_new_set(family, &cur, e, n))
			continue;
		s = realloc(stale, (ns + 1) * sizeof(*s));
		if (!s) {
			free(stale);
			return -ENOMEM;
		}
		stale = s;
		stale[ns++] = cur;
	}
	for (i = 0; i < ns; i++)
		if (bpf_map_delete_elem(fd, &stale[i]) && errno != ENOENT)
			err = -errno;
	free(stale);
	return err;
}

static int sync_family(int fd, int family, const struct l3x_rule_key *rules,
		       size_t n)
{
	struct l3x_prefix_entry *e;
	struct l3x_lpm4_key k4;
	size_t ne, i;
	int err;

	err = l3x_rules_build(rules, n, family, &e, &ne);
	if (err)
		return err;
	/* New and changed entries first: a packet never misses a prefix
	 * that still has rules. */
	for (i = 0; i < ne; i++) {
		if (bpf_map_update_elem(fd, trie_key(family, &e[i], &k4),
					&e[i].val, BPF_ANY)) {
			err = errno == E2BIG ? -ENOSPC : -errno;
			break;
		}
	}
	if (!err)
		err = delete_stale(fd, family, e, ne);
	free(e);
	return err;
}

/* Check that both families fit before writing either. */
static int check_fits(const struct l3x_rule_key *rules, size_t n)
{
	struct l3x_prefix_entry *e;
	size_t ne;
	int fam, err;

	for (fam = 4; fam <= 6; fam += 2) {
		err = l3x_rules_build(rules, n, fam, &e, &ne);
		if (err)
			return err;
		free(e);
		if (ne > L3X_MAX_PREFIXES)
			return -ENOSPC;
	}
	return 0;
}

int l3x_rules_sync(const struct l3x_maps *m)
{
	struct l3x_rule_key *rules = NULL;
	size_t n = 0;
	int err;

	err = read_rules(m->rules, &rules, &n);
	if (err)
		return err;
	err = check_fits(rules, n);
	if (!err)
		err = sync_family(m->lpm4, 4, rules, n);
	if (!err)
		err = sync_family(m->lpm6, 6, rules, n);
	free(rules);
	return err;
}

static int ref_change(int fd, const struct l3x_rule_key *k, int delta)
{
	__u32 ref = 0;

	if (bpf_map_lookup_elem(fd, k, &ref)) {
		if (errno != ENOENT)
			return -errno;
		if (delta < 0)
			return -ENOENT;
		ref = 0;
	}
	ref += delta;
	if (!ref)
		return bpf_map_delete_elem(fd, k) ? -errno : 0;
	if (bpf_map_update_elem(fd, k, &ref, BPF_ANY))
		return errno == E2BIG ? -ENOSPC : -errno;
	return 0;
}

int l3x_rules_add(const struct l3x_maps *m, const struct l3x_rule *r)
{
	struct l3x_rule_key k;
	int err;

	if (l3x_rule_check(r))
		return -EINVAL;
	l3x_rule_to_key(r, &k);
	err = ref_change(m->rules, &k, 1);
	if (err)
		return err;
	err = l3x_rules_sync(m);
	if (err == -ENOSPC) {
		/* Take it back: the maps stay as they were. */
		ref_change(m->rules, &k, -1);
		l3x_rules_sync(m);
	}
	return err;
}

int l3x_rules_del(const struct l3x_maps *m, const struct l3x_rule *r)
{
	struct l3x_rule_key k;
	int err;

	if (l3x_rule_check(r))
		return -EINVAL;
	l3x_rule_to_key(r, &k);
	err = ref_change(m->rules, &k, -1);
	if (err)
		return err;
	return l3x_rules_sync(m);
}
