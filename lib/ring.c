/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* ring.c - creating and freeing SPSC rings; the fast path is in ring.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

struct l3x_ring *l3x_ring_create(uint32_t count)
{
	struct l3x_ring *r;
	size_t sz;

	if (count < 2 || count > (1u << 31) || (count & (count - 1))) {
		errno = EINVAL;
		return NULL;
	}
	sz = sizeof(*r) + (size_t)count * sizeof(r->slots[0]);
	sz = (sz + 63) & ~(size_t)63;
	r = aligned_alloc(64, sz);
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->size = count;
	r->mask = count - 1;
	return r;
}

void l3x_ring_free(struct l3x_ring *r)
{
	free(r);
}

void l3x_ring_reset_at(struct l3x_ring *r, uint32_t start)
{
	atomic_store_explicit(&r->head, start, memory_order_relaxed);
	atomic_store_explicit(&r->tail, start, memory_order_relaxed);
	r->prod_tail_cache = start;
	r->cons_head_cache = start;
}
