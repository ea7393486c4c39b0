/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ring.h - single-producer single-consumer ring of 64-bit entries, for the
 * handoff between an engine thread and an application thread.
 *
 * DPDK rte_ring's shape (its C11 flavour):
 *   - a power-of-two slot array; free-running 32-bit head and tail
 *     counters, masked on access, so the count is head - tail, wrap-around
 *     included, and the ring holds its full size (no slot kept empty);
 *   - the producer writes only its line (head and its cached tail), the
 *     consumer only its own (tail and its cached head), and both read a
 *     third, read-only line (size, mask);
 *   - each side keeps a private copy of the other side's counter and reads
 *     the shared one only when the copy says "full" or "empty", so in
 *     steady state neither core pulls the other's line;
 *   - one acquire/release pair per direction: head publishes filled slots
 *     to the consumer, tail hands emptied slots back to the producer.
 * The fast path is here, static inline; creation is in ring.c.
 */
#ifndef L3X_RING_H
#define L3X_RING_H

#include <stdatomic.h>
#include <stdint.h>

#include "l3x_internal.h"

#define L3X_CACHE_LINE 64
/* Each part of the ring owns an aligned pair of lines: Intel's adjacent
 * line prefetcher fetches lines in 128-byte pairs and would otherwise
 * drag the other side's line along (DPDK's RTE_CACHE_GUARD). */
#define L3X_RING_ALIGN (2 * L3X_CACHE_LINE)

struct l3x_ring {
	/* read-only after l3x_ring_create() */
	_Alignas(L3X_RING_ALIGN) uint32_t size; /* entries it holds */
	uint32_t mask;				/* size - 1 */

	/* written by the producer only */
	_Alignas(L3X_RING_ALIGN) _Atomic uint32_t head; /* next slot to fill */
	uint32_t prod_tail; /* tail as the producer last read it */

	/* written by the consumer only */
	_Alignas(L3X_RING_ALIGN) _Atomic uint32_t tail; /* next slot to take */
	uint32_t cons_head; /* head as the consumer last read it */

	_Alignas(L3X_RING_ALIGN) uint64_t slots[];
};

/*
 * l3x_ring_create() - an empty ring holding @count entries, a power of two
 * from 2 to 2^31. Returns NULL with errno EINVAL (bad @count) or ENOMEM.
 * Any thread.
 */
L3X_HIDDEN struct l3x_ring *l3x_ring_create(uint32_t count);

/*
 * l3x_ring_free() - free @r. NULL is a no-op.
 * Any thread, once neither side uses the ring.
 */
L3X_HIDDEN void l3x_ring_free(struct l3x_ring *r);

/*
 * l3x_ring_reset_at() - for tests: empty @r with both counters at @start,
 * to reach the 2^32 wrap-around without 2^32 operations.
 * Any thread, while neither side uses the ring.
 */
L3X_HIDDEN void l3x_ring_reset_at(struct l3x_ring *r, uint32_t start);

/* Free slots as the producer sees them at @head: read the consumer's tail
 * only when the cached one leaves fewer than @want. */
static inline uint32_t l3x_ring_prod_room(struct l3x_ring *r, uint32_t head,
					  uint32_t want)
{
	uint32_t room = r->size - (head - r->prod_tail);

	if (room >= want)
		return room;
	/* Acquire: pairs with the release store of tail in
	 * l3x_ring_do_dequeue(): the consumer's reads of the slots it freed
	 * happen before we overwrite them. */
	r->prod_tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	return r->size - (head - r->prod_tail);
}

/* Entries waiting as the consumer sees them at @tail: read the producer's
 * head only when the cached one shows fewer than @want. */
static inline uint32_t l3x_ring_cons_avail(struct l3x_ring *r, uint32_t tail,
					   uint32_t want)
{
	uint32_t avail = r->cons_head - tail;

	if (avail >= want)
		return avail;
	/* Acquire: pairs with the release store of head in
	 * l3x_ring_do_enqueue(): the producer's writes of the slots below
	 * head happen before we read them. */
	r->cons_head = atomic_load_explicit(&r->head, memory_order_acquire);
	return r->cons_head - tail;
}

/* How many of @n to move when @have can: all of them, or with @bulk none
 * unless all fit, else as many as fit. */
static inline unsigned l3x_ring_clip(unsigned n, uint32_t have, int bulk)
{
	if (n > have)
		return bulk ? 0 : have;
	return n;
}

static inline unsigned l3x_ring_do_enqueue(struct l3x_ring *r,
					   const uint64_t *objs, unsigned n,
					   int bulk)
{
	/* Relaxed: only this thread writes head. */
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	unsigned i;

	n = l3x_ring_clip(n, l3x_ring_prod_room(r, head, n), bulk);
	if (!n)
		return 0; /* no store: the consumer's copy stays valid */
	for (i = 0; i < n; i++)
		r->slots[(head + i) & r->mask] = objs[i];
	/* Release: pairs with the acquire load of head in
	 * l3x_ring_cons_avail(): publishes the slots written above. */
	atomic_store_explicit(&r->head, head + n, memory_order_release);
	return n;
}

static inline unsigned l3x_ring_do_dequeue(struct l3x_ring *r, uint64_t *objs,
					   unsigned n, int bulk)
{
	/* Relaxed: only this thread writes tail. */
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	unsigned i;

	n = l3x_ring_clip(n, l3x_ring_cons_avail(r, tail, n), bulk);
	if (!n)
		return 0;
	for (i = 0; i < n; i++)
		objs[i] = r->slots[(tail + i) & r->mask];
	/* Release: pairs with the acquire load of tail in
	 * l3x_ring_prod_room(): our reads of the slots are done before the
	 * producer may refill them. */
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
	return n;
}

/*
 * l3x_ring_enqueue_burst_sp() - add as many of the @n entries @objs as
 * fit. Returns how many (0 when full). Producer thread only.
 */
static inline unsigned
l3x_ring_enqueue_burst_sp(struct l3x_ring *r, const uint64_t *objs, unsigned n)
{
	return l3x_ring_do_enqueue(r, objs, n, 0);
}

/*
 * l3x_ring_enqueue_bulk_sp() - add all @n entries @objs, or none.
 * Returns @n or 0. Producer thread only.
 */
static inline unsigned
l3x_ring_enqueue_bulk_sp(struct l3x_ring *r, const uint64_t *objs, unsigned n)
{
	return l3x_ring_do_enqueue(r, objs, n, 1);
}

/*
 * l3x_ring_dequeue_burst_sc() - take up to @n entries into @objs, oldest
 * first. Returns how many (0 when empty). Consumer thread only.
 */
static inline unsigned l3x_ring_dequeue_burst_sc(struct l3x_ring *r,
						 uint64_t *objs, unsigned n)
{
	return l3x_ring_do_dequeue(r, objs, n, 0);
}

/*
 * l3x_ring_dequeue_bulk_sc() - take exactly @n entries into @objs, or
 * none. Returns @n or 0. Consumer thread only.
 */
static inline unsigned l3x_ring_dequeue_bulk_sc(struct l3x_ring *r,
						uint64_t *objs, unsigned n)
{
	return l3x_ring_do_dequeue(r, objs, n, 1);
}

/*
 * l3x_ring_count() - entries in @r, 0 to its size. On the consumer thread
 * at least that many can be dequeued; elsewhere a snapshot.
 * Any thread.
 */
static inline uint32_t l3x_ring_count(struct l3x_ring *r)
{
	/* Acquire: pairs with the release store of tail in
	 * l3x_ring_do_dequeue(). The consumer read a head at least that
	 * far before storing this tail, so the head we load next is no
	 * older and head - tail cannot go below zero. */
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	/* Relaxed: only the value is used, no slot is read through it. */
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t n = head - tail;

	/* Off the two owning threads, both counters may move between the
	 * loads, the producer's by up to a whole ring: clamp. */
	return n > r->size ? r->size : n;
}

/*
 * l3x_ring_free_count() - free slots in @r, 0 to its size. On the
 * producer thread at least that many can be enqueued; elsewhere a
 * snapshot. Any thread.
 */
static inline uint32_t l3x_ring_free_count(struct l3x_ring *r)
{
	return r->size - l3x_ring_count(r);
}

#endif /* L3X_RING_H */
