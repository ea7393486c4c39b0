/*
 * test_stack_cache.c - the cache of lwIP's blocks (lib/mem.c) under real
 * traffic: the kernel as the peer over a TUN in a namespace of the test's
 * own (helpers.h). Bulk flows in both directions take most of lwIP's
 * blocks from the cache, it never holds more than its cap, the counters
 * come back exactly to where they were once every flow has closed (the
 * teardown's expect_clean: cached blocks are not in heap_bytes), and
 * closing the stack gives every cached block back.
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "l3x/l3x.h"
#include "helpers.h"
#include "mem.h"

#define CONNS 4
#define BYTES (4u << 20)

static struct l3x_mem_cache_stats cache_now(void)
{
	struct l3x_mem_cache_stats c;

	l3x_mem_cache_stats(&c);
	return c;
}

Test(cache, bulk_flows_reuse_blocks_within_the_cap_and_give_them_back,
     .timeout = 60)
{
	struct l3x_mem_cache_stats c0, c;
	struct l3x_stream *s[CONNS];
	struct l3x_worker *w;
	uint64_t hits, misses;
	int fd[CONNS], i;

	L3X_OPTS(l3x_stack_opts, o, .mtu = 1500);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	c0 = cache_now();
	for (i = 0; i < CONNS; i++) {
		fd[i] = connect_accept(
			w, i & 1 ? "2001:db8:100::7" : "198.51.100.7",
			(uint16_t)(8000 + i), &s[i]);
		cli_to_srv(w, s[i], fd[i], 10 + (uint64_t)i, BYTES);
		srv_to_cli(w, s[i], fd[i], 20 + (uint64_t)i, BYTES);
		c = cache_now();
		cr_assert_leq(c.bytes, L3X_MEM_CACHE_CAP);
	}
	for (i = 0; i < CONNS; i++)
		close_pair(w, fd[i], s[i]);
	c = cache_now();
	hits = c.hits - c0.hits;
	misses = c.misses - c0.misses;
	printf("# cache: %llu hits, %llu misses (%.1f%% hits), %llu blocks "
	       "(%llu bytes) cached, %llu refused\n",
	       (unsigned long long)hits, (unsigned long long)misses,
	       100.0 * (double)hits /
		       (double)(hits + misses + !(hits + misses)),
	       (unsigned long long)c.blocks, (unsigned long long)c.bytes,
	       (unsigned long long)(c.refused - c0.refused));
	/* 32 MiB moved: thousands of segments, nearly all on reused blocks. */
	cr_assert_gt(hits, 5000, "only %llu hits", (unsigned long long)hits);
	cr_assert_gt(hits, 9 * misses, "%llu hits, %llu misses",
		     (unsigned long long)hits, (unsigned long long)misses);
	cr_assert_leq(c.bytes, L3X_MEM_CACHE_CAP);
	cr_assert_gt(c.blocks, 0);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
	c = cache_now();
	cr_assert_eq(c.bytes, 0, "%llu bytes cached after close",
		     (unsigned long long)c.bytes);
	cr_assert_eq(c.blocks, 0);
}
