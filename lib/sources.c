/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sources.c - open flows per source address and per IPv6 /64 (sources.h).
 *
 * Lookups are bounded like the flow tables': the table has at least one
 * bucket per possible entry (two per flow of the budgets), the key is
 * secret, so chains stay short by chance alone, and a new entry is refused
 * when its chain already holds SOURCES_BUCKET_MAX (a chain that long comes
 * once in ~5 * 10^13 buckets at full load).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sources.h"

#define SOURCES_BUCKET_MAX 16

/* What an entry counts: a whole address, or an IPv6 /64. */
enum src_kind {
	SRC_V4 = 4,
	SRC_V6 = 6,
	SRC_V6_64 = 64,
};

struct src_key {
	uint8_t kind;	  /* enum src_kind */
	uint8_t addr[16]; /* zero past the address or prefix */
};

struct src_entry {
	struct src_entry *next;
	uint32_t count;
	struct src_key key;
};

struct l3x_sources {
	struct src_entry **tab;
	uint32_t mask;
	uint32_t per_addr, per_64; /* 0: no cap */
};

struct l3x_sources *l3x_sources_open(uint32_t max_flows, uint32_t per_addr,
				     uint32_t per_64)
{
	struct l3x_sources *t = calloc(1, sizeof(*t));
	uint64_t size = 1024;

	if (!t)
		return NULL;
	while (size < 2ull * max_flows)
		size <<= 1;
	t->tab = calloc(size, sizeof(*t->tab));
	if (!t->tab) {
		free(t);
		return NULL;
	}
	t->mask = (uint32_t)(size - 1);
	t->per_addr = per_addr;
	t->per_64 = per_64;
	return t;
}

void l3x_sources_close(struct l3x_sources *t)
{
	struct src_entry *e, *n;
	uint32_t i;

	if (!t)
		return;
	for (i = 0; i <= t->mask; i++) {
		for (e = t->tab[i]; e; e = n) {
			n = e->next;
			free(e);
		}
	}
	free(t->tab);
	free(t);
}

static void key_make(struct src_key *k, enum src_kind kind, const uint8_t *addr)
{
	memset(k, 0, sizeof(*k));
	k->kind = (uint8_t)kind;
	memcpy(k->addr, addr, kind == SRC_V4 ? 4 : kind == SRC_V6 ? 16 : 8);
}

static struct src_entry **bucket(struct l3x_sources *t, const struct src_key *k)
{
	return &t->tab[l3x_hash(L3X_HASH_SOURCE, k, sizeof(*k)) & t->mask];
}

/* The entry of @k, or NULL; *@chain: how long its bucket's chain is. */
static struct src_entry *find(struct l3x_sources *t, const struct src_key *k,
			      unsigned *chain)
{
	struct src_entry *e = *bucket(t, k), *hit = NULL;

	*chain = 0;
	for (; e; e = e->next) {
		(*chain)++;
		if (!hit && !memcmp(&e->key, k, sizeof(*k)))
			hit = e;
	}
	return hit;
}

/* 0 if @k may count one more flow under @cap (0: none). */
static int check_one(struct l3x_sources *t, const struct src_key *k,
		     uint32_t cap)
{
	unsigned chain;
	struct src_entry *e;

	if (!cap)
		return 0;
	e = find(t, k, &chain);
	if (e)
		return e->count >= cap ? -EDQUOT : 0;
	return chain >= SOURCES_BUCKET_MAX ? -EBUSY : 0;
}

int l3x_sources_check(struct l3x_sources *t, uint8_t family,
		      const uint8_t *addr)
{
	struct src_key k;
	int err;

	key_make(&k, family == 4 ? SRC_V4 : SRC_V6, addr);
	err = check_one(t, &k, t->per_addr);
	if (err || family == 4)
		return err;
	key_make(&k, SRC_V6_64, addr);
	return check_one(t, &k, t->per_64);
}

static bool add_one(struct l3x_sources *t, const struct src_key *k)
{
	struct src_entry **head, *e;
	unsigned chain;

	e = find(t, k, &chain);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return false;
		e->key = *k;
		head = bucket(t, k);
		e->next = *head;
		*head = e;
	}
	e->count++;
	return true;
}

static void del_one(struct l3x_sources *t, const struct src_key *k)
{
	struct src_entry **pp = bucket(t, k), *e;

	for (; (e = *pp); pp = &e->next) {
		if (memcmp(&e->key, k, sizeof(*k)))
			continue;
		if (--e->count)
			return;
		*pp = e->next;
		free(e);
		return;
	}
}

bool l3x_sources_add(struct l3x_sources *t, uint8_t family, const uint8_t *addr)
{
	struct src_key k;

	key_make(&k, family == 4 ? SRC_V4 : SRC_V6, addr);
	if (t->per_addr && !add_one(t, &k))
		return false;
	if (family == 4 || !t->per_64)
		return true;
	key_make(&k, SRC_V6_64, addr);
	if (add_one(t, &k))
		return true;
	key_make(&k, SRC_V6, addr);
	if (t->per_addr)
		del_one(t, &k);
	return false;
}

void l3x_sources_del(struct l3x_sources *t, uint8_t family, const uint8_t *addr)
{
	struct src_key k;

	key_make(&k, family == 4 ? SRC_V4 : SRC_V6, addr);
	if (t->per_addr)
		del_one(t, &k);
	if (family == 4 || !t->per_64)
		return;
	key_make(&k, SRC_V6_64, addr);
	del_one(t, &k);
}
