/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mem.c - the counting allocator (mem.h): the C library's malloc, each
 * block counted at malloc_usable_size() plus the size word malloc keeps in
 * front of it (glibc's chunk size; with a sanitizer, what it reports).
 *
 * The counters are relaxed atomics: lwIP allocates on the engine thread,
 * but application threads allocate the chunks they write, which the
 * engine frees. The peak is kept with a compare-and-swap, taken only when
 * a new high is reached. lwIP's counter has one writer at a time (lwIP
 * runs on the engine thread, or on the caller's before the engine starts
 * and after it stops: pthread_create and _join order them), so it is
 * kept with a relaxed load and store, without a locked instruction.
 *
 * The cache: lwIP frees a block and takes one of the same size again at
 * once, packet after packet (a received packet, a staging buffer of
 * 2 KiB), blocks too big for the C library's per-thread cache, so that
 * each malloc() and free() of them searched its bins. A block lwIP frees
 * that costs from CACHE_MIN to CACHE_MAX bytes goes on a free list of its
 * cost instead of back to free(), up to CACHE_CAP bytes
 * in all, and the next allocation that malloc() would have given a block
 * of that same cost takes it: what a block costs, and so every figure of
 * the counters, is what it was without the cache. Only lwIP's heap is
 * cached: its blocks are taken and freed by one thread at a time, so the
 * lists need no lock; the chunks application threads allocate for the
 * engine to free (L3X_MEM_FLOW) go to malloc() and free() as before, as
 * a list written by two threads would need atomics that cost what the
 * C library's own path does.
 *
 * Cached blocks are counted apart (l3x_mem_cache_stats()), not in
 * l3x_mem_total(): that is what max_memory holds, the memory flows and
 * packets hold, and a block on a free list holds none; it is taken before
 * malloc() is asked for more. The process holds at most CACHE_CAP bytes
 * more than the counters say; l3x_mem_cache_drain() gives them back
 * (l3x_stack__close()).
 */
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The sanitizers, as GCC and as Clang say them. */
#if defined(__SANITIZE_ADDRESS__)
#define MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define MEM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MEM_TSAN 1
#endif
#endif
#ifdef MEM_ASAN
#include <sanitizer/asan_interface.h>
#endif

#include "mem.h"

static _Atomic uint64_t used[L3X_MEM_KINDS];
static _Atomic uint64_t peak;

/*
 * What a block costs is glibc's chunk size, the word in front of it less
 * its three flag bits, and reading it there costs one load of a line the
 * caller has just used; malloc_usable_size() also reads the header of the
 * next chunk, a cache miss on a block freed long after it was written
 * (an acknowledged segment), paid on every allocation and free. The word
 * is read only where it was checked to give what malloc_usable_size()
 * does (glibc, no sanitizer, checked once on blocks of a few sizes), and
 * never for a chunk of its own mapping (flag 2), whose size word counts
 * differently.
 */
#if defined(__GLIBC__) && !defined(MEM_ASAN) && !defined(MEM_TSAN)
#define CHUNK_MMAPPED 2
#define CHUNK_FLAGS   7

/* 0 not checked yet, 1 the size word, -1 malloc_usable_size(). Relaxed:
 * any thread may check, and all find the same. */
static _Atomic int size_word;

/* The word in front of the block at @a. An address, not a pointer, and
 * not analysed across calls: it is glibc's word, in no object the
 * compiler knows of, and a pointer's callers would be told they pass
 * memory not yet written. */
__attribute__((noipa)) static size_t size_word_of(uintptr_t a)
{
	return *(const size_t *)(a - sizeof(size_t));
}

static size_t usable_cost(uintptr_t a)
{
	return malloc_usable_size((void *)a) + sizeof(size_t);
}

static int size_word_check(void)
{
	static const size_t sizes[] = {
		1, 24, 100, 200, 1000, 1600, 2100, 9000
	};
	size_t i, w;
	int ok = 1;
	void *p;

	for (i = 0; ok > 0 && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		p = malloc(sizes[i]);
		if (!p)
			return 0; /* try again later */
		w = size_word_of((uintptr_t)p);
		if ((w & CHUNK_MMAPPED) ||
		    (w & ~(size_t)CHUNK_FLAGS) != usable_cost((uintptr_t)p))
			ok = -1;
		free(p);
	}
	atomic_store_explicit(&size_word, ok, memory_order_relaxed);
	return ok;
}

static size_t block_cost(uintptr_t a)
{
	int mode = atomic_load_explicit(&size_word, memory_order_relaxed);
	size_t w;

	if (!mode)
		mode = size_word_check();
	if (mode > 0) {
		w = size_word_of(a);
		if (!(w & CHUNK_MMAPPED))
			return w & ~(size_t)CHUNK_FLAGS;
	}
	return usable_cost(a);
}
#else
static size_t block_cost(uintptr_t a)
{
	return malloc_usable_size((void *)a) + sizeof(size_t);
}
#endif

size_t l3x_mem_size(const void *p)
{
	return block_cost((uintptr_t)p);
}

size_t l3x_mem_cost(size_t n)
{
	void *p = malloc(n ? n : 1);
	size_t c;

	if (!p)
		return n + sizeof(size_t);
	c = block_cost((uintptr_t)p);
	free(p);
	return c;
}

/* Relaxed: counters; the sum is a snapshot. lwIP's has one writer at a
 * time (above): no locked instruction. */
static void count(enum l3x_mem_kind kind, uint64_t n, bool add)
{
	uint64_t v;

	if (kind != L3X_MEM_LWIP) {
		if (add)
			atomic_fetch_add_explicit(&used[kind], n,
						  memory_order_relaxed);
		else
			atomic_fetch_sub_explicit(&used[kind], n,
						  memory_order_relaxed);
		return;
	}
	v = atomic_load_explicit(&used[kind], memory_order_relaxed);
	atomic_store_explicit(&used[kind], add ? v + n : v - n,
			      memory_order_relaxed);
}

static void charge(enum l3x_mem_kind kind, uint64_t n)
{
	uint64_t now, high;

	count(kind, n, true);
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
		charge(kind, block_cost((uintptr_t)p));
	return p;
}

void *l3x_mem_calloc(enum l3x_mem_kind kind, size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (p)
		charge(kind, block_cost((uintptr_t)p));
	return p;
}

void l3x_mem_free(enum l3x_mem_kind kind, void *p)
{
	if (!p)
		return;
	count(kind, block_cost((uintptr_t)p), false);
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

/* ---- the cache of lwIP's blocks (above: the cache) */

/* Blocks of a cost from CACHE_MIN to CACHE_MAX are kept: a 2 KiB staging
 * buffer, a full-size packet. Smaller ones (segments, headers, ACKs) stay
 * with glibc, whose per-thread cache keeps them as well (to 1040 bytes):
 * in tcp-bulk-many, malloc and free took the same share of l3x-serve
 * (about 2%) whether they were cached or not. */
#define CACHE_MIN 1041
#define CACHE_MAX 2560
#define CACHE_CAP L3X_MEM_CACHE_CAP

struct cached {
	struct cached *next;
};

/* Under AddressSanitizer a cached block is poisoned but for its link, so a
 * use after lwIP freed it is still reported. */
#ifdef MEM_ASAN
#define CACHE_POISON(b, c)                                                     \
	ASAN_POISON_MEMORY_REGION((char *)(b) + sizeof(struct cached),         \
				  (c) - sizeof(size_t) -                       \
					  sizeof(struct cached))
#define CACHE_UNPOISON(b, c)                                                   \
	ASAN_UNPOISON_MEMORY_REGION((char *)(b), (c) - sizeof(size_t))
#else
#define CACHE_POISON(b, c)   ((void)(b), (void)(c))
#define CACHE_UNPOISON(b, c) ((void)(b), (void)(c))
#endif

/* A free list per cost (one slot per byte: glibc's costs are multiples
 * of 16, a sanitizer's any number); what malloc(n) costs, learned once
 * per n (0: not yet). lwIP's thread only, but the figures any thread. */
static struct cached *cache[CACHE_MAX + 1];
static uint16_t cost_of[CACHE_MAX + 1];
static size_t cache_bytes;
static struct {
	_Atomic uint64_t bytes, blocks, hits, misses, kept, refused;
} cache_stat;

/* Relaxed: statistics, written by lwIP's thread only. */
static void stat_add(_Atomic uint64_t *v, int64_t n)
{
	atomic_store_explicit(
		v, atomic_load_explicit(v, memory_order_relaxed) + (uint64_t)n,
		memory_order_relaxed);
}

/* A cached block that malloc(@n) would have given at the same cost. */
static void *cache_take(size_t n)
{
	struct cached *b;
	size_t c;

	if (n > CACHE_MAX)
		return NULL;
	if (!cost_of[n])
		cost_of[n] = (uint16_t)l3x_mem_cost(n);
	c = cost_of[n];
	if (c < CACHE_MIN || c > CACHE_MAX)
		return NULL;
	if (!(b = cache[c])) {
		stat_add(&cache_stat.misses, 1);
		return NULL;
	}
	cache[c] = b->next;
	/* The next one's link is read when it is taken: the line in now,
	 * rather than a miss then (the list's blocks were freed long ago). */
	if (b->next)
		__builtin_prefetch(b->next, 1, 3);
	CACHE_UNPOISON(b, c);
	cache_bytes -= c;
	stat_add(&cache_stat.bytes, -(int64_t)c);
	stat_add(&cache_stat.blocks, -1);
	stat_add(&cache_stat.hits, 1);
	return b;
}

/* Keep @p, which costs @c, unless the cache is full. */
static bool cache_keep(void *p, size_t c)
{
	struct cached *b = p;

	if (c < CACHE_MIN || c > CACHE_MAX)
		return false;
	if (cache_bytes + c > CACHE_CAP) {
		stat_add(&cache_stat.refused, 1);
		return false;
	}
	b->next = cache[c];
	cache[c] = b;
	CACHE_POISON(b, c);
	cache_bytes += c;
	stat_add(&cache_stat.bytes, (int64_t)c);
	stat_add(&cache_stat.blocks, 1);
	stat_add(&cache_stat.kept, 1);
	return true;
}

void l3x_mem_cache_drain(void)
{
	struct cached *b;
	size_t c;

	for (c = 0; c <= CACHE_MAX; c++) {
		while ((b = cache[c])) {
			cache[c] = b->next;
			CACHE_UNPOISON(b, c);
			free(b);
		}
	}
	cache_bytes = 0;
	atomic_store_explicit(&cache_stat.bytes, 0, memory_order_relaxed);
	atomic_store_explicit(&cache_stat.blocks, 0, memory_order_relaxed);
}

void l3x_mem_cache_stats(struct l3x_mem_cache_stats *s)
{
	s->bytes =
		atomic_load_explicit(&cache_stat.bytes, memory_order_relaxed);
	s->blocks =
		atomic_load_explicit(&cache_stat.blocks, memory_order_relaxed);
	s->hits = atomic_load_explicit(&cache_stat.hits, memory_order_relaxed);
	s->misses =
		atomic_load_explicit(&cache_stat.misses, memory_order_relaxed);
	s->kept = atomic_load_explicit(&cache_stat.kept, memory_order_relaxed);
	s->refused =
		atomic_load_explicit(&cache_stat.refused, memory_order_relaxed);
}

/* lwIP's heap (lwipopts.h MEM_CUSTOM_*): its pools come from it too. */
void *l3x_lwip_malloc(size_t n)
{
	void *p = cache_take(n);

	if (!p)
		return l3x_mem_alloc(L3X_MEM_LWIP, n);
	charge(L3X_MEM_LWIP, cost_of[n]); /* the list's cost: its cost */
	return p;
}

void *l3x_lwip_calloc(size_t n, size_t sz)
{
	void *p;

	if (sz && n > SIZE_MAX / sz)
		return NULL; /* as calloc() would, without its report */
	p = cache_take(n * sz);
	if (!p)
		return l3x_mem_calloc(L3X_MEM_LWIP, n, sz);
	memset(p, 0, n * sz);
	charge(L3X_MEM_LWIP, cost_of[n * sz]);
	return p;
}

void l3x_lwip_free(void *p)
{
	size_t c;

	if (!p)
		return;
	c = block_cost((uintptr_t)p);
	if (!cache_keep(p, c)) {
		l3x_mem_free(L3X_MEM_LWIP, p);
		return;
	}
	count(L3X_MEM_LWIP, c, false);
}
