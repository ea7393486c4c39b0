/*
 * test_mem.c - the cache of lwIP's blocks (lib/mem.c): a freed block comes
 * back for the next allocation of the same cost and only for it, zeroed
 * for calloc, the counters exactly as without the cache, at most
 * L3X_MEM_CACHE_CAP bytes kept (the rest freed), blocks too big or too
 * small never kept, and everything given back by l3x_mem_cache_drain(); under
 * AddressSanitizer a cached block stays poisoned. Each test runs
 * in its own process (criterion), so it starts with an empty cache.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

#include "mem.h"

/* lwIP's heap (lib/lwip/port/arch/cc.h). */
void *l3x_lwip_malloc(size_t n);
void *l3x_lwip_calloc(size_t n, size_t sz);
void l3x_lwip_free(void *p);

static struct l3x_mem_cache_stats stats(void)
{
	struct l3x_mem_cache_stats s;

	l3x_mem_cache_stats(&s);
	return s;
}

Test(mem, freed_block_comes_back_for_the_same_cost_counted_as_before)
{
	uint64_t base = l3x_mem_used(L3X_MEM_LWIP);
	void *p = l3x_lwip_malloc(1600), *q, *r;
	size_t cost;

	cr_assert_not_null(p);
	cost = l3x_mem_size(p);
	cr_assert_eq(cost, l3x_mem_cost(1600));
	cr_assert_eq(l3x_mem_used(L3X_MEM_LWIP), base + cost);
	l3x_lwip_free(p);
	cr_assert_eq(l3x_mem_used(L3X_MEM_LWIP), base,
		     "a cached block counted");
	cr_assert_eq(stats().bytes, cost);
	cr_assert_eq(stats().blocks, 1);
#ifdef __SANITIZE_ADDRESS__
	/* Cached, it is still freed memory to AddressSanitizer. */
	cr_assert(__asan_address_is_poisoned((char *)p + sizeof(void *)));
#endif
	/* Another cost: not that block. */
	r = l3x_lwip_malloc(200);
	cr_assert_neq(r, p);
	q = l3x_lwip_malloc(1600);
	cr_assert_eq(q, p, "the cached block was not reused");
	cr_assert_eq(stats().hits, 1);
	cr_assert_eq(stats().bytes, 0);
	cr_assert_eq(l3x_mem_size(q), cost);
	cr_assert_eq(l3x_mem_used(L3X_MEM_LWIP), base + cost + l3x_mem_size(r));
	l3x_lwip_free(q);
	l3x_lwip_free(r);
	cr_assert_eq(l3x_mem_used(L3X_MEM_LWIP), base);
	l3x_mem_cache_drain();
}

Test(mem, calloc_of_a_cached_block_is_zeroed)
{
	unsigned char *p = l3x_lwip_malloc(1536), *q;
	size_t i;

	cr_assert_not_null(p);
	memset(p, 0xa5, 1536);
	l3x_lwip_free(p);
	q = l3x_lwip_calloc(3, 512);
	cr_assert_eq(q, p, "the cached block was not reused");
	for (i = 0; i < 1536; i++)
		cr_assert_eq(q[i], 0, "byte %zu not zeroed", i);
	l3x_lwip_free(q);
	/* An overflowing product is refused, not wrapped into a hit. */
	cr_assert_null(l3x_lwip_calloc(SIZE_MAX / 2, 4));
	l3x_mem_cache_drain();
}

Test(mem, the_cache_keeps_at_most_its_cap_and_frees_the_rest)
{
	enum { N = 1200 }; /* 1200 blocks of ~2 KiB: over twice the cap */
	static void *p[N];
	uint64_t base = l3x_mem_used(L3X_MEM_LWIP), peak_cost = 0;
	struct l3x_mem_cache_stats s;
	size_t cost;
	int i;

	for (i = 0; i < N; i++) {
		p[i] = l3x_lwip_malloc(2000);
		cr_assert_not_null(p[i]);
		peak_cost += l3x_mem_size(p[i]);
	}
	cost = l3x_mem_size(p[0]);
	cr_assert_gt((uint64_t)N * cost, 2 * L3X_MEM_CACHE_CAP);
	cr_assert_eq(l3x_mem_used(L3X_MEM_LWIP), base + peak_cost);
	for (i = 0; i < N; i++)
		l3x_lwip_free(p[i]);
	s = stats();
	cr_assert_leq(s.bytes, L3X_MEM_CACHE_CAP);
	cr_assert_gt(s.bytes + cost, L3X_MEM_CACHE_CAP, "cache not filled");
	cr_assert_eq(s.bytes, s.blocks * cost);
	cr_assert_eq(s.kept, s.blocks);
	cr_assert_eq(s.refused, N - s.blocks);
	cr_assert_eq(l3x_mem_used(L3X_MEM_LWIP), base);
	/* They all come back, then malloc gives the rest. */
	for (i = 0; i < N; i++)
		p[i] = l3x_lwip_malloc(2000);
	cr_assert_eq(stats().hits, s.blocks);
	cr_assert_eq(stats().bytes, 0);
	cr_assert_eq(l3x_mem_used(L3X_MEM_LWIP), base + peak_cost);
	for (i = 0; i < N; i++)
		l3x_lwip_free(p[i]);
	l3x_mem_cache_drain();
	cr_assert_eq(stats().bytes, 0);
	cr_assert_eq(stats().blocks, 0);
	cr_assert_eq(l3x_mem_used(L3X_MEM_LWIP), base);
}

Test(mem, big_blocks_go_back_to_free)
{
	void *p = l3x_lwip_malloc(16384);

	cr_assert_not_null(p);
	l3x_lwip_free(p);
	cr_assert_eq(stats().kept, 0);
	cr_assert_eq(stats().bytes, 0);
}

/* Segments, headers and ACKs stay with glibc's own per-thread cache. */
Test(mem, small_blocks_go_back_to_free)
{
	static const size_t sizes[] = { 1, 24, 64, 200, 512, 1000, 1024 };
	uint64_t base = l3x_mem_used(L3X_MEM_LWIP);
	size_t i;
	void *p;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		p = l3x_lwip_malloc(sizes[i]);
		cr_assert_not_null(p);
		l3x_lwip_free(p);
	}
	cr_assert_eq(stats().kept, 0);
	cr_assert_eq(stats().misses, 0);
	cr_assert_eq(stats().bytes, 0);
	cr_assert_eq(l3x_mem_used(L3X_MEM_LWIP), base);
}

Test(mem, drain_gives_every_block_back)
{
	static const size_t sizes[] = { 1100, 1300, 1600, 1800, 2048, 2400 };
	uint64_t base = l3x_mem_used(L3X_MEM_LWIP);
	void *p[sizeof(sizes) / sizeof(sizes[0])];
	size_t i, n = sizeof(sizes) / sizeof(sizes[0]);

	for (i = 0; i < n; i++)
		p[i] = l3x_lwip_malloc(sizes[i]);
	for (i = 0; i < n; i++)
		l3x_lwip_free(p[i]);
	cr_assert_eq(stats().blocks, n);
	l3x_mem_cache_drain();
	cr_assert_eq(stats().blocks, 0);
	cr_assert_eq(stats().bytes, 0);
	cr_assert_eq(l3x_mem_used(L3X_MEM_LWIP), base);
	/* The lists are empty: the next allocations miss. */
	p[0] = l3x_lwip_malloc(sizes[0]);
	cr_assert_eq(stats().hits, 0);
	l3x_lwip_free(p[0]);
	l3x_mem_cache_drain();
}

/* The cost read from glibc's size word (mem.c) is what
 * malloc_usable_size() says, for every size lwIP uses and for a block of
 * its own mapping; on the main thread and on another (its own arena, a
 * flag in the word). */
static void *costs_match(void *arg)
{
	size_t n;
	void *p;

	(void)arg;
	for (n = 0; n <= 20000; n += n < 4200 ? 1 : 97) {
		p = malloc(n);
		cr_assert_not_null(p);
		cr_assert_eq(l3x_mem_size(p),
			     malloc_usable_size(p) + sizeof(size_t),
			     "size %zu: %zu", n, l3x_mem_size(p));
		free(p);
	}
	p = malloc(4 << 20); /* past the mmap threshold */
	cr_assert_not_null(p);
	cr_assert_eq(l3x_mem_size(p), malloc_usable_size(p) + sizeof(size_t));
	free(p);
	return NULL;
}

Test(mem, a_block_costs_its_usable_size_on_any_thread)
{
	pthread_t t;

	costs_match(NULL);
	cr_assert_eq(pthread_create(&t, NULL, costs_match, NULL), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
}
