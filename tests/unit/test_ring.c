/*
 * test_ring.c - the SPSC ring: capacity, burst vs bulk, FIFO order, 32-bit
 * counter wrap-around, and a two-thread stress run checking order and loss.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "ring.h"

static uint64_t seq[64];

static void fill_seq(uint64_t from)
{
	unsigned i;

	for (i = 0; i < 64; i++)
		seq[i] = from + i;
}

Test(ring, create_refuses_sizes_that_are_not_powers_of_two)
{
	static const uint32_t bad[] = { 0, 1, 3, 6, 1000, (1u << 31) + 1, UINT32_MAX };
	struct l3x_ring *r;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		cr_assert_null(l3x_ring_create(bad[i]), "size %u accepted", bad[i]);
		cr_assert_eq(errno, EINVAL);
	}
	r = l3x_ring_create(2);
	cr_assert_not_null(r);
	cr_assert_eq(l3x_ring_free_count(r), 2);
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
	l3x_ring_free(r);
}

Test(ring, bulk_is_all_or_nothing_both_ways)
{
	struct l3x_ring *r = l3x_ring_create(8);
	uint64_t out[8];

	fill_seq(100);
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 6), 6);
	cr_assert_eq(l3x_ring_enqueue_bulk_sp(r, seq, 3), 0);
	cr_assert_eq(l3x_ring_count(r), 6, "failed bulk enqueue changed the ring");
	cr_assert_eq(l3x_ring_dequeue_bulk_sc(r, out, 7), 0);
	cr_assert_eq(l3x_ring_count(r), 6, "failed bulk dequeue changed the ring");
	cr_assert_eq(l3x_ring_dequeue_bulk_sc(r, out, 6), 6);
	cr_assert_eq(out[5], 105);
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
}

Test(ring, counters_wrap_around_2_pow_32)
{
	struct l3x_ring *r = l3x_ring_create(8);
	uint64_t out[8];
	uint64_t next_in = 0, next_out = 0;
	unsigned i, k, n;

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
	/* full across the wrap */
	l3x_ring_reset_at(r, UINT32_MAX - 2);
	fill_seq(0);
	cr_assert_eq(l3x_ring_enqueue_burst_sp(r, seq, 9), 8);
	cr_assert_eq(l3x_ring_count(r), 8);
	cr_assert_eq(l3x_ring_dequeue_burst_sc(r, out, 8), 8);
	cr_assert_eq(out[7], 7);
	l3x_ring_free(r);
}

#define STRESS_N 10000000ull

struct stress {
	struct l3x_ring *r;
	uint64_t bad;
};

static void *producer(void *arg)
{
	struct stress *s = arg;
	unsigned seed = 1, b, i;
	uint64_t next = 0, buf[32];

	while (next < STRESS_N) {
		b = 1 + rand_r(&seed) % 32;
		if (b > STRESS_N - next)
			b = (unsigned)(STRESS_N - next);
		for (i = 0; i < b; i++)
			buf[i] = next + i;
		next += l3x_ring_enqueue_burst_sp(s->r, buf, b);
	}
	return NULL;
}

Test(ring, two_threads_pass_ten_million_in_order_without_loss, .timeout = 60)
{
	struct stress s = { .r = l3x_ring_create(1024) };
	unsigned seed = 2, b, i, n;
	uint64_t expect = 0, buf[32];
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, producer, &s), 0);
	while (expect < STRESS_N) {
		b = 1 + rand_r(&seed) % 32;
		n = l3x_ring_dequeue_burst_sc(s.r, buf, b);
		for (i = 0; i < n; i++)
			s.bad += buf[i] != expect + i;
		expect += n;
	}
	pthread_join(t, NULL);
	cr_assert_eq(s.bad, 0, "%llu entries out of order or lost",
		     (unsigned long long)s.bad);
	cr_assert_eq(l3x_ring_count(s.r), 0);
	l3x_ring_free(s.r);
}
