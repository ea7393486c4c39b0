/*
 * test_ring.c - the SPSC ring: sizes, capacity, burst against bulk, FIFO
 * order, the 32-bit counters wrapping, the cache-line layout, and a
 * three-thread run (producer, consumer, observer) checking order, loss
 * and the counts.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "ring.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t seq[64];

static void fill_seq(uint64_t from)
{
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(seq); i++)
		seq[i] = from + i;
}

Test(ring, create_refuses_sizes_that_are_not_powers_of_two_from_2)
{
	static const uint32_t bad[] = {
		0, 1, 3, 6, 1000, (1u << 31) + 1, UINT32_MAX,
	};
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		errno = 0;
		cr_assert_null(l3x_ring_create(bad[i]), "size %u accepted",
			       bad[i]);
		cr_assert_eq(errno, EINVAL, "size %u: errno %d", bad[i], errno);
	}
}

Test(ring, new_ring_is_empty_with_every_slot_free)
{
	static const uint32_t good[] = { 2, 4, 1024, 1u << 20 };
	struct l3x_ring *r;
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(good); i++) {
		r = l3x_ring_create(good[i]);
		cr_assert_not_null(r, "size %u refused", good[i]);
		cr_assert_eq(l3x_ring_count(r), 0);
		cr_assert_eq(l3x_ring_free_count(r), good[i],
			     "capacity is count, not count - 1");
		l3x_ring_free(r);
	}
	l3x_ring_free(NULL);
}

Test(ring, state_of_each_side_is_on_its_own_cache_lines)
{
	struct l3x_ring *r = l3x_ring_create(8);
	size_t ro = offsetof(struct l3x_ring, size);
	size_t prod = offsetof(struct l3x_ring, head);
	size_t cons = offsetof(struct l3x_ring, tail);
	size_t slots = offsetof(struct l3x_ring, slots);

	cr_assert_eq((uintptr_t)r % L3X_RING_ALIGN, 0);
	cr_assert_eq(prod % L3X_RING_ALIGN, 0);
	cr_assert_eq(cons % L3X_RING_ALIGN, 0);
	cr_assert_eq(slots % L3X_RING_ALIGN, 0);
	cr_assert_geq(prod - ro, L3X_RING_ALIGN);
	cr_assert_geq(cons - prod, L3X_RING_ALIGN);
	cr_assert_geq(slots - cons, L3X_RING_ALIGN);
	cr_assert_lt(offsetof(struct l3x_ring, prod_tail),
		     prod + L3X_CACHE_LINE);
	cr_assert_lt(offsetof(struct l3x_ring, cons_head),
		     cons + L3X_CACHE_LINE);
	l3x_ring_free(r);
}

Test(ring, dequeue_on_empty_returns_zero)
{
	struct l3x_ring *r = l3x_ring_create(8);
	uint64_t out[4];

	cr_assert_eq(l3x_ring_dequeue_burst_sc(r, out, 4), 0);
	cr_assert_eq(l3x_ring_dequeue_bulk_sc(r, out, 1), 0);
	cr_assert_eq(l3x_ring_count(r), 0);
	l3x_ring_free(r);
}

Test(ring, holds_exactly_its_size_and_burst_on_full_returns_zero)
{
	struct l3x_ring *r = l3x_ring_create(16);

	fill_seq(0);
	cr_assert_eq(l3x_ring_enqueue_burst_sp(r, seq, 10), 10);
	cr_assert_eq(l3x_ring_enqueue_burst_sp(r, seq, 10), 6, "partial fit");
	cr_assert_eq(l3x_ring_count(r), 16);
	cr_assert_eq(l3x_ring_free_count(r), 0);
	cr_assert_eq(l3x_ring_enqueue_burst_sp(r, seq, 1), 0);
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 1), 0);
	cr_assert_eq(l3x_ring_count(r), 16);
	l3x_ring_free(r);
}

Test(ring, bulk_is_all_or_nothing_both_ways)
{
	struct l3x_ring *r = l3x_ring_create(8);
	uint64_t out[8];

	fill_seq(100);
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 6), 6);
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 3), 0);
	cr_assert_eq(l3x_ring_count(r), 6, "failed bulk enqueue changed it");
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 2), 2, "exact fit");
	cr_assert_eq(l3x_ring_dequeue_bulk_sc(r, out, 8), 8);
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 6), 6);
	cr_assert_eq(l3x_ring_dequeue_bulk_sc(r, out, 7), 0);
	cr_assert_eq(l3x_ring_count(r), 6, "failed bulk dequeue changed it");
	cr_assert_eq(l3x_ring_dequeue_bulk_sc(r, out, 6), 6);
	cr_assert_eq(out[0], 100);
	cr_assert_eq(out[5], 105);
	l3x_ring_free(r);
}

Test(ring, bulk_larger_than_the_ring_never_fits)
{
	struct l3x_ring *r = l3x_ring_create(4);
	uint64_t out[8];

	fill_seq(0);
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 5), 0);
	cr_assert_eq(l3x_ring_enqueue_burst_sp(r, seq, 5), 4);
	cr_assert_eq(l3x_ring_dequeue_bulk_sc(r, out, 5), 0);
	cr_assert_eq(l3x_ring_dequeue_burst_sc(r, out, 8), 4);
	l3x_ring_free(r);
}

Test(ring, zero_entries_asked_do_nothing)
{
	struct l3x_ring *r = l3x_ring_create(4);
	uint64_t out[1];

	fill_seq(0);
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 0), 0);
	cr_assert_eq(l3x_ring_enqueue_burst_sp(r, seq, 0), 0);
	cr_assert_eq(l3x_ring_dequeue_bulk_sc(r, out, 0), 0);
	cr_assert_eq(l3x_ring_dequeue_burst_sc(r, out, 0), 0);
	cr_assert_eq(l3x_ring_count(r), 0);
	l3x_ring_free(r);
}

Test(ring, keeps_fifo_order)
{
	struct l3x_ring *r = l3x_ring_create(64);
	uint64_t out[64];
	unsigned i, n, total = 0;

	fill_seq(1000);
	cr_assert_eq(l3x_ring_enqueue_burst_sp(r, seq, 64), 64);
	while ((n = l3x_ring_dequeue_burst_sc(r, out, 5))) {
		for (i = 0; i < n; i++)
			cr_assert_eq(out[i], 1000 + total + i);
		total += n;
	}
	cr_assert_eq(total, 64);
	l3x_ring_free(r);
}

Test(ring, counters_wrap_around_2_pow_32)
{
	struct l3x_ring *r = l3x_ring_create(8);
	uint64_t out[8], next_in = 0, next_out = 0;
	unsigned i, k, n;

	/* steady traffic across the wrap */
	l3x_ring_reset_at(r, UINT32_MAX - 5);
	for (k = 0; k < 10; k++) {
		fill_seq(next_in);
		n = l3x_ring_enqueue_burst_sp(r, seq, 5);
		cr_assert_eq(n, 5);
		next_in += n;
		cr_assert_eq(l3x_ring_count(r), 5);
		cr_assert_eq(l3x_ring_free_count(r), 3);
		n = l3x_ring_dequeue_burst_sc(r, out, 8);
		cr_assert_eq(n, 5);
		for (i = 0; i < n; i++)
			cr_assert_eq(out[i], next_out + i);
		next_out += n;
	}
	/* full across the wrap: burst, then bulk */
	l3x_ring_reset_at(r, UINT32_MAX - 2);
	fill_seq(0);
	cr_assert_eq(l3x_ring_enqueue_burst_sp(r, seq, 9), 8);
	cr_assert_eq(l3x_ring_count(r), 8);
	cr_assert_eq(l3x_ring_free_count(r), 0);
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 1), 0);
	cr_assert_eq(l3x_ring_dequeue_burst_sc(r, out, 8), 8);
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[7], 7);
	l3x_ring_reset_at(r, UINT32_MAX);
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 8), 8);
	cr_assert_eq(l3x_ring_dequeue_bulk_sc(r, out, 9), 0);
	cr_assert_eq(l3x_ring_dequeue_bulk_sc(r, out, 8), 8);
	cr_assert_eq(out[7], 7);
	cr_assert_eq(l3x_ring_count(r), 0);
	l3x_ring_free(r);
}

/* ------------------------------------------------------------ threads */

#define STRESS_N    10000000ull
#define STRESS_SIZE 1024u

struct stress {
	struct l3x_ring *r;
	atomic_bool done;    /* consumer finished: observer stops */
	uint64_t bad_counts; /* written by the observer only */
};

/* Random batch of 1..32, and every fourth call a bulk one. */
static unsigned batch(unsigned *seed, int *bulk)
{
	unsigned x = (unsigned)rand_r(seed);

	*bulk = !(x & 3);
	return 1 + (x >> 2) % 32;
}

static void *producer(void *arg)
{
	struct stress *s = arg;
	uint64_t next = 0, buf[32];
	unsigned seed = 1, b, i;
	int bulk;

	while (next < STRESS_N) {
		b = batch(&seed, &bulk);
		if (b > STRESS_N - next)
			b = (unsigned)(STRESS_N - next);
		for (i = 0; i < b; i++)
			buf[i] = next + i;
		next += bulk ? l3x_ring_enqueue_bulk_sp(s->r, buf, b)
			     : l3x_ring_enqueue_burst_sp(s->r, buf, b);
	}
	return NULL;
}

/* A third thread: the counts it sees stay within the ring. */
static void *observer(void *arg)
{
	struct stress *s = arg;
	uint32_t n, f;

	while (!atomic_load_explicit(&s->done, memory_order_relaxed)) {
		n = l3x_ring_count(s->r);
		f = l3x_ring_free_count(s->r);
		s->bad_counts += n > STRESS_SIZE || f > STRESS_SIZE;
	}
	return NULL;
}

Test(ring, two_threads_pass_ten_million_in_order_without_loss, .timeout = 120)
{
	struct stress s = { .r = l3x_ring_create(STRESS_SIZE) };
	uint64_t expect = 0, bad = 0, buf[32];
	unsigned seed = 2, b, i, n;
	pthread_t prod, obs;
	int bulk;

	cr_assert_not_null(s.r);
	/* the counters wrap during the run */
	l3x_ring_reset_at(s.r, UINT32_MAX - 1000);
	cr_assert_eq(pthread_create(&prod, NULL, producer, &s), 0);
	cr_assert_eq(pthread_create(&obs, NULL, observer, &s), 0);
	while (expect < STRESS_N) {
		b = batch(&seed, &bulk);
		n = bulk ? l3x_ring_dequeue_bulk_sc(s.r, buf, b)
			 : l3x_ring_dequeue_burst_sc(s.r, buf, b);
		cr_assert(!bulk || n == 0 || n == b);
		for (i = 0; i < n; i++)
			bad += buf[i] != expect + i;
		expect += n;
	}
	atomic_store_explicit(&s.done, true, memory_order_relaxed);
	pthread_join(prod, NULL);
	pthread_join(obs, NULL);
	cr_assert_eq(bad, 0, "%llu entries out of order or lost",
		     (unsigned long long)bad);
	cr_assert_eq(expect, STRESS_N, "more entries than were sent");
	cr_assert_eq(s.bad_counts, 0, "count or free count beyond the size");
	cr_assert_eq(l3x_ring_count(s.r), 0);
	l3x_ring_free(s.r);
}
