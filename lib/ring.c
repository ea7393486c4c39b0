/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ring.c - creating and freeing SPSC rings; the fast path is in ring.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

/* l3x_ring_create() - see ring.h. Any thread. */
struct l3x_ring *l3x_ring_create(uint32_t count)
{
	struct l3x_ring *r;
	uint64_t bytes;
	size_t sz;

	if (count < 2 || count > (1u << 31) || (count & (count - 1))) {
		errno = EINVAL;
		return NULL;
	}
	bytes = sizeof(*r) + (uint64_t)count * sizeof(r->slots[0]);
	if (bytes > SIZE_MAX - L3X_RING_ALIGN) {
		errno = ENOMEM; /* only in a 32-bit address space */
		return NULL;
	}
	/* aligned_alloc() wants a multiple of the alignment. */
	sz = (size_t)bytes;
	sz = (sz + L3X_RING_ALIGN - 1) & ~(size_t)(L3X_RING_ALIGN - 1);
	r = aligned_alloc(L3X_RING_ALIGN, sz);
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->size = count;
	r->mask = count - 1;
	return r;
}

/* l3x_ring_free() - see ring.h. */
void l3x_ring_free(struct l3x_ring *r)
{
	free(r);
}

/* l3x_ring_reset_at() - see ring.h. Relaxed: no other thread runs. */
void l3x_ring_reset_at(struct l3x_ring *r, uint32_t start)
{
	atomic_store_explicit(&r->head, start, memory_order_relaxed);
	atomic_store_explicit(&r->tail, start, memory_order_relaxed);
	r->prod_tail = start;
	r->cons_head = start;
}
