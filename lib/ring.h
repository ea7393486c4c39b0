/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ring.h - single-producer single-consumer ring of 64-bit entries, for the
 * handoff between an engine thread and an application thread.
 *
 * DPDK rte_ring (c11 flavour) shape: a power-of-two slot array, free-running
 * 32-bit head and tail counters masked on access (so count = head - tail,
 * wrap-around included), producer and consumer state on separate cache
 * lines. Each side keeps a private copy of the other side's counter and
 * reads the shared one only when the copy says "full" or "empty", so in
 * steady state the two cores do not bounce each other's cache line.
 */
#ifndef L3X_RING_H
#define L3X_RING_H

#include <stdatomic.h>
#include <stdint.h>

#include "l3x_internal.h"

struct l3x_ring {
	/* producer side */
	_Alignas(64) _Atomic uint32_t head;	/* next slot to fill */
	uint32_t prod_tail_cache;		/* last tail the producer saw */
	/* consumer side */
	_Alignas(64) _Atomic uint32_t tail;	/* next slot to take */
	uint32_t cons_head_cache;		/* last head the consumer saw */
	/* read-only after create */
	_Alignas(64) uint32_t size;
	uint32_t mask;
	uint64_t slots[];
};

/*
 * l3x_ring_create() - a ring of @count entries (a power of two, 2..2^31).
 * Returns NULL with errno EINVAL (bad count) or ENOMEM. Any thread.
 */
L3X_HIDDEN struct l3x_ring *l3x_ring_create(uint32_t count);
/* l3x_ring_free() - NULL is a no-op. Any thread, once both sides stopped. */
L3X_HIDDEN void l3x_ring_free(struct l3x_ring *r);
/* Test only: empty the ring with both counters at @start. */
L3X_HIDDEN void l3x_ring_reset_at(struct l3x_ring *r, uint32_t start);

/* Free slots, refreshing the cached tail only when needed. */
static inline uint32_t l3x_ring__prod_room(struct l3x_ring *r, uint32_t head,
					   uint32_t want)
{
	uint32_t room = r->size - (head - r->prod_tail_cache);

	if (room < want) {
		/* Acquire: pairs with the consumer's release store of tail
		 * in l3x_ring__cons_done(), so the slots it freed are no
		 * longer being read when we overwrite them. */
		r->prod_tail_cache =
			atomic_load_explicit(&r->tail, memory_order_acquire);
		room = r->size - (head - r->prod_tail_cache);
	}
	return room;
}

static inline unsigned l3x_ring__enqueue(struct l3x_ring *r,
					 const uint64_t *objs, unsigned n,
					 int bulk)
{
	/* Relaxed: only this thread writes head. */
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t room = l3x_ring__prod_room(r, head, n);
	unsigned i;

	if (n > room) {
		if (bulk)
			return 0;
		n = room;
	}
	for (i = 0; i < n; i++)
		r->slots[(head + i) & r->mask] = objs[i];
	/* Release: pairs with the consumer's acquire load of head in
	 * l3x_ring__cons_avail(), publishing the slots written above. */
	atomic_store_explicit(&r->head, head + n, memory_order_release);
	return n;
}

/*
 * l3x_ring_enqueue_burst_sp() - add as many of @objs as fit.
 * Returns how many. Producer thread only.
 */
static inline unsigned l3x_ring_enqueue_burst_sp(struct l3x_ring *r,
						 const uint64_t *objs,
						 unsigned n)
{
	return l3x_ring__enqueue(r, objs, n, 0);
}

/*
 * l3x_ring_enqueue_bulk_sp() - add all @n of @objs, or none.
 * Returns n or 0. Producer thread only.
 */
static inline unsigned l3x_ring_enqueue_bulk_sp(struct l3x_ring *r,
						const uint64_t *objs,
						unsigned n)
{
	return l3x_ring__enqueue(r, objs, n, 1);
}

static inline uint32_t l3x_ring__cons_avail(struct l3x_ring *r, uint32_t tail,
					    uint32_t want)
{
	uint32_t avail = r->cons_head_cache - tail;

	if (avail < want) {
		/* Acquire: pairs with the producer's release store of head
		 * in l3x_ring__enqueue(): the slots are written. */
		r->cons_head_cache =
			atomic_load_explicit(&r->head, memory_order_acquire);
		avail = r->cons_head_cache - tail;
	}
	return avail;
}

static inline unsigned l3x_ring__dequeue(struct l3x_ring *r, uint64_t *objs,
					 unsigned n, int bulk)
{
	/* Relaxed: only this thread writes tail. */
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t avail = l3x_ring__cons_avail(r, tail, n);
	unsigned i;

	if (n > avail) {
		if (bulk)
			return 0;
		n = avail;
	}
	for (i = 0; i < n; i++)
		objs[i] = r->slots[(tail + i) & r->mask];
	/* Release: pairs with the producer's acquire load of tail in
	 * l3x_ring__prod_room(): our reads of the slots are done. */
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
	return n;
}

/*
 * l3x_ring_dequeue_burst_sc() - take up to @n entries into @objs.
 * Returns how many. Consumer thread only.
 */
static inline unsigned l3x_ring_dequeue_burst_sc(struct l3x_ring *r,
						 uint64_t *objs, unsigned n)
{
	return l3x_ring__dequeue(r, objs, n, 0);
}

/*
 * l3x_ring_dequeue_bulk_sc() - take exactly @n entries, or none.
 * Returns n or 0. Consumer thread only.
 */
static inline unsigned l3x_ring_dequeue_bulk_sc(struct l3x_ring *r,
						uint64_t *objs, unsigned n)
{
	return l3x_ring__dequeue(r, objs, n, 1);
}

/*
 * l3x_ring_count() / l3x_ring_free_count() - entries in the ring / free
 * slots: exact from either side's own thread, a snapshot elsewhere.
 * Any thread.
 */
static inline uint32_t l3x_ring_count(struct l3x_ring *r)
{
	/* Acquire both: a snapshot, consistent for either side's thread. */
	uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	return head - tail;
}

static inline uint32_t l3x_ring_free_count(struct l3x_ring *r)
{
	return r->size - l3x_ring_count(r);
}

#endif /* L3X_RING_H */
