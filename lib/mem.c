/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mem.c - the counting allocator (mem.h): the C library's malloc, each
 * block counted at malloc_usable_size() plus the size word malloc keeps in
 * front of it (glibc's chunk size; with a sanitizer, what it reports).
 *
 * The counters are relaxed atomics: lwIP allocates on the engine thread,
 * but application threads allocate the chunks they write, which the
 * engine frees. The peak is kept with a compare-and-swap, taken only when
 * a new high is reached.
 */
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "mem.h"

static _Atomic uint64_t used[L3X_MEM_KINDS];
static _Atomic uint64_t peak;

size_t l3x_mem_size(const void *p)
{
	return malloc_usable_size((void *)p) + sizeof(size_t);
}

size_t l3x_mem_cost(size_t n)
{
	void *p = malloc(n ? n : 1);
	size_t c;

	if (!p)
		return n + sizeof(size_t);
	c = l3x_mem_size(p);
	free(p);
	return c;
}

static void charge(enum l3x_mem_kind kind, uint64_t n)
{
	uint64_t now, high;

	/* Relaxed: counters; the sum is a snapshot. */
	atomic_fetch_add_explicit(&used[kind], n, memory_order_relaxed);
	now = l3x_mem_total();
	high = atomic_load_explicit(&peak, memory_order_relaxed);
	while (now > high && !atomic_compare_exchange_weak_explicit(
				     &peak, &high, now, memory_order_relaxed,
				     memory_order_relaxed))
		;
}

void *l3x_mem_alloc(enum l3x_mem_kind kind, size_t n)
{
	void *p = malloc(n);

	if (p)
		charge(kind, l3x_mem_size(p));
	return p;
}

void *l3x_mem_calloc(enum l3x_mem_kind kind, size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (p)
		charge(kind, l3x_mem_size(p));
	return p;
}

void l3x_mem_free(enum l3x_mem_kind kind, void *p)
{
	if (!p)
		return;
	atomic_fetch_sub_explicit(&used[kind], l3x_mem_size(p),
				  memory_order_relaxed);
	free(p);
}

uint64_t l3x_mem_used(enum l3x_mem_kind kind)
{
	return atomic_load_explicit(&used[kind], memory_order_relaxed);
}

uint64_t l3x_mem_total(void)
{
	return l3x_mem_used(L3X_MEM_LWIP) + l3x_mem_used(L3X_MEM_FLOW);
}

uint64_t l3x_mem_peak(void)
{
	return atomic_load_explicit(&peak, memory_order_relaxed);
}

void l3x_mem_peak_reset(void)
{
	atomic_store_explicit(&peak, l3x_mem_total(), memory_order_relaxed);
}

/* lwIP's heap (lwipopts.h MEM_CUSTOM_*): its pools come from it too. */
void *l3x_lwip_malloc(size_t n)
{
	return l3x_mem_alloc(L3X_MEM_LWIP, n);
}

void *l3x_lwip_calloc(size_t n, size_t sz)
{
	return l3x_mem_calloc(L3X_MEM_LWIP, n, sz);
}

void l3x_lwip_free(void *p)
{
	l3x_mem_free(L3X_MEM_LWIP, p);
}
