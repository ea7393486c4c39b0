/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * way.c - the table of ways back (way.h): chained buckets, a bucket per
 * flow the budgets allow, hashed with SipHash under a key of this table's
 * use alone, so no sender can choose flows that share a bucket. A chain
 * holds at most WAY_CHAIN_MAX ways; a new way whose chain is full is
 * refused (the flow is refused with it), never written over another.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "mem.h"
#include "way.h"

#define WAY_CHAIN_MAX 16

struct l3x_ways {
	struct l3x_way **b;
	uint32_t mask;
	uint32_t count;
};

static uint32_t key_hash(const struct l3x_flow_key *k)
{
	return (uint32_t)l3x_hash(L3X_HASH_WAY, k, sizeof(*k));
}

struct l3x_ways *l3x_ways_open(uint32_t flows)
{
	struct l3x_ways *t = calloc(1, sizeof(*t));
	uint32_t size = 1024;

	if (!t)
		return NULL;
	while (size < flows && size < (1u << 24))
		size <<= 1;
	t->b = calloc(size, sizeof(*t->b));
	if (!t->b) {
		free(t);
		return NULL;
	}
	t->mask = size - 1;
	return t;
}

void l3x_ways_close(struct l3x_ways *t)
{
	struct l3x_way *w, *next;
	uint32_t i;

	if (!t)
		return;
	for (i = 0; i <= t->mask; i++) {
		for (w = t->b[i]; w; w = next) {
			next = w->next;
			l3x_mem_free(L3X_MEM_FLOW, w);
		}
	}
	free(t->b);
	free(t);
}

const struct l3x_way *l3x_ways_find(const struct l3x_ways *t,
				    const struct l3x_flow_key *k)
{
	const struct l3x_way *w = t->b[key_hash(k) & t->mask];

	for (; w; w = w->next)
		if (!memcmp(&w->key, k, sizeof(*k)))
			return w;
	return NULL;
}

struct l3x_way *l3x_ways_add(struct l3x_ways *t, const struct l3x_flow_key *k,
			     const uint8_t *hdr, unsigned hlen, unsigned vlans,
			     uint16_t qi, int *err)
{
	struct l3x_way **head = &t->b[key_hash(k) & t->mask], *w;
	unsigned chain = 0;

	for (w = *head; w; w = w->next, chain++) {
		if (!memcmp(&w->key, k, sizeof(*k))) {
			w->refs++;
			return w;
		}
	}
	if (chain >= WAY_CHAIN_MAX || hlen > L3X_L2_MAX) {
		*err = -ENOSPC;
		return NULL;
	}
	w = l3x_mem_calloc(L3X_MEM_FLOW, 1, sizeof(*w));
	if (!w) {
		*err = -ENOMEM;
		return NULL;
	}
	w->tab = t;
	w->key = *k;
	w->refs = 1;
	w->qi = qi;
	w->hlen = (uint8_t)hlen;
	w->vlans = (uint8_t)vlans;
	memcpy(w->hdr, hdr, hlen);
	w->next = *head;
	*head = w;
	t->count++;
	return w;
}

void l3x_way_put(struct l3x_way *w)
{
	struct l3x_ways *t;
	struct l3x_way **pp;

	if (!w || --w->refs)
		return;
	t = w->tab;
	for (pp = &t->b[key_hash(&w->key) & t->mask]; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	t->count--;
	l3x_mem_free(L3X_MEM_FLOW, w);
}

uint32_t l3x_ways_count(const struct l3x_ways *t)
{
	return t->count;
}
