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

/* ------------------------------------------------------------ steps */

/* A test's calls as a list of steps, each with the count it must return:
 * enqueues take from seq[], dequeues go to out[]. */
enum ring_op {
	OP_ENQ_BULK,
	OP_ENQ_BURST,
	OP_DEQ_BULK,
	OP_DEQ_BURST,
	OP_COUNT,
	OP_FREE
};

struct ring_step {
	enum ring_op op;
	unsigned n, want;
	const char *what;
};

#define STEP(op, n, want, what) ((struct ring_step){ op, n, want, what })
#define ENQ_BULK(n, want)	STEP(OP_ENQ_BULK, n, want, "enqueue_bulk " #n)
#define ENQ_BURST(n, want)	STEP(OP_ENQ_BURST, n, want, "enqueue_burst " #n)
#define DEQ_BULK(n, want)	STEP(OP_DEQ_BULK, n, want, "dequeue_bulk " #n)
#define DEQ_BURST(n, want)	STEP(OP_DEQ_BURST, n, want, "dequeue_burst " #n)
#define COUNT(want)		STEP(OP_COUNT, 0, want, "count")
#define FREE(want)		STEP(OP_FREE, 0, want, "free_count")

#define RING_STEPS(r, ...)                                                     \
	ring_steps(r, (const struct ring_step[]){ __VA_ARGS__ },               \
		   ARRAY_SIZE(((const struct ring_step[]){ __VA_ARGS__ })))

static uint64_t out[64];

static unsigned ring_call(struct l3x_ring *r, const struct ring_step *st)
{
	switch (st->op) {
	case OP_ENQ_BULK:
		return l3x_ring_enqueue_bulk_sp(r, seq, st->n);
	case OP_ENQ_BURST:
		return l3x_ring_enqueue_burst_sp(r, seq, st->n);
	case OP_DEQ_BULK:
		return l3x_ring_dequeue_bulk_sc(r, out, st->n);
	case OP_DEQ_BURST:
		return l3x_ring_dequeue_burst_sc(r, out, st->n);
	case OP_COUNT:
		return l3x_ring_count(r);
	case OP_FREE:
		return l3x_ring_free_count(r);
	}
	return ~0u;
}

static void ring_steps(struct l3x_ring *r, const struct ring_step *st, size_t n)
{
	unsigned got;
	size_t i;

	for (i = 0; i < n; i++) {
		got = ring_call(r, &st[i]);
		cr_assert_eq(got, st[i].want, "step %zu, %s: %u, want %u", i,
			     st[i].what, got, st[i].want);
	}
}

Test(ring, dequeue_on_empty_returns_zero)
{
	struct l3x_ring *r = l3x_ring_create(8);

	RING_STEPS(r, DEQ_BURST(4, 0), DEQ_BULK(1, 0), COUNT(0));
	l3x_ring_free(r);
}

Test(ring, holds_exactly_its_size_and_burst_on_full_returns_zero)
{
	struct l3x_ring *r = l3x_ring_create(16);

	fill_seq(0);
	/* the second burst fits in part */
	RING_STEPS(r, ENQ_BURST(10, 10), ENQ_BURST(10, 6), COUNT(16), FREE(0),
		   ENQ_BURST(1, 0), ENQ_BULK(1, 0), COUNT(16));
	l3x_ring_free(r);
}

Test(ring, bulk_is_all_or_nothing_both_ways)
{
	struct l3x_ring *r = l3x_ring_create(8);

	fill_seq(100);
	/* a failed bulk call changes nothing; 2 is an exact fit */
	RING_STEPS(r, ENQ_BULK(6, 6), ENQ_BULK(3, 0), COUNT(6), ENQ_BULK(2, 2),
		   DEQ_BULK(8, 8), ENQ_BULK(6, 6), DEQ_BULK(7, 0), COUNT(6),
		   DEQ_BULK(6, 6));
	cr_assert_eq(out[0], 100);
	cr_assert_eq(out[5], 105);
	l3x_ring_free(r);
}

Test(ring, bulk_larger_than_the_ring_never_fits)
{
	struct l3x_ring *r = l3x_ring_create(4);

	fill_seq(0);
	RING_STEPS(r, ENQ_BULK(5, 0), ENQ_BURST(5, 4), DEQ_BULK(5, 0),
		   DEQ_BURST(8, 4));
	l3x_ring_free(r);
}

Test(ring, zero_entries_asked_do_nothing)
{
	struct l3x_ring *r = l3x_ring_create(4);

	fill_seq(0);
	RING_STEPS(r, ENQ_BULK(0, 0), ENQ_BURST(0, 0), DEQ_BULK(0, 0),
		   DEQ_BURST(0, 0), COUNT(0));
	l3x_ring_free(r);
}

Test(ring, keeps_fifo_order)
{
	struct l3x_ring *r = l3x_ring_create(64);
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
	uint64_t next_in = 0, next_out = 0;
	unsigned i, k;

	/* steady traffic across the wrap */
	l3x_ring_reset_at(r, UINT32_MAX - 5);
	for (k = 0; k < 10; k++) {
		fill_seq(next_in);
		RING_STEPS(r, ENQ_BURST(5, 5), COUNT(5), FREE(3),
			   DEQ_BURST(8, 5));
		next_in += 5;
		for (i = 0; i < 5; i++)
			cr_assert_eq(out[i], next_out + i);
		next_out += 5;
	}
	/* full across the wrap: burst, then bulk */
	l3x_ring_reset_at(r, UINT32_MAX - 2);
	fill_seq(0);
	RING_STEPS(r, ENQ_BURST(9, 8), COUNT(8), FREE(0), ENQ_BULK(1, 0),
		   DEQ_BURST(8, 8));
	cr_assert_eq(out[0], 0);
	cr_assert_eq(out[7], 7);
	l3x_ring_reset_at(r, UINT32_MAX);
	RING_STEPS(r, ENQ_BULK(8, 8), DEQ_BULK(9, 0), DEQ_BULK(8, 8));
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
