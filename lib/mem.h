/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mem.h - the memory of flows and packets, counted as allocated: every
 * block lwIP takes from the heap (packet buffers, PCBs, segments: its heap
 * and pools come from here through lwipopts.h) and every stream object and
 * written chunk of ours. A block costs what malloc gave for it (its usable
 * size plus malloc's header), not what was asked: the figure max_memory is
 * held to, exact at every moment.
 */
#ifndef L3X_MEM_H
#define L3X_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "l3x_internal.h"

enum l3x_mem_kind {
	L3X_MEM_LWIP, /* lwIP's heap and pools (engine thread) */
	L3X_MEM_FLOW, /* stream objects, written chunks (any thread) */
	L3X_MEM_KINDS,
};

/*
 * l3x_mem_alloc() / _calloc() / _free() - malloc, calloc and free, counted
 * in @kind. A block must be freed with the kind it was allocated with.
 * Any thread.
 */
L3X_HIDDEN void *l3x_mem_alloc(enum l3x_mem_kind kind, size_t n);
L3X_HIDDEN void *l3x_mem_calloc(enum l3x_mem_kind kind, size_t n, size_t sz);
L3X_HIDDEN void l3x_mem_free(enum l3x_mem_kind kind, void *p);

/* What the block at @p costs (it must come from l3x_mem_alloc() or lwIP's
 * heap); what a block of @n bytes would cost. Any thread. */
L3X_HIDDEN size_t l3x_mem_size(const void *p);
L3X_HIDDEN size_t l3x_mem_cost(size_t n);

/* Bytes held now in @kind; in all kinds; the most held at once since the
 * last l3x_mem_peak_reset(). Any thread (relaxed: a snapshot). */
L3X_HIDDEN uint64_t l3x_mem_used(enum l3x_mem_kind kind);
L3X_HIDDEN uint64_t l3x_mem_total(void);
L3X_HIDDEN uint64_t l3x_mem_peak(void);
L3X_HIDDEN void l3x_mem_peak_reset(void);

/*
 * The cache of lwIP's blocks (mem.c): blocks of 1 to 2.5 KiB lwIP frees,
 * kept for its next allocations of the same cost, at most
 * L3X_MEM_CACHE_CAP bytes (each block at its cost, as l3x_mem_size()
 * says). Not in l3x_mem_used() nor
 * l3x_mem_total(): a cached block holds no flow's memory, and is reused
 * before malloc() is asked for more.
 */
#define L3X_MEM_CACHE_CAP (1024 * 1024)

struct l3x_mem_cache_stats {
	uint64_t bytes;	  /* cached now, at their cost */
	uint64_t blocks;  /* cached now */
	uint64_t hits;	  /* allocations served from the cache */
	uint64_t misses;  /* allocations of a cacheable size it could not */
	uint64_t kept;	  /* blocks freed into the cache */
	uint64_t refused; /* blocks freed to free(): the cache was full */
};

/* The figures of the cache. Any thread (relaxed: a snapshot). */
L3X_HIDDEN void l3x_mem_cache_stats(struct l3x_mem_cache_stats *s);

/* Free every cached block. lwIP's thread, or with no engine running. */
L3X_HIDDEN void l3x_mem_cache_drain(void);

#endif /* L3X_MEM_H */
