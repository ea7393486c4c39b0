// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tsan_ring.c - the SPSC ring (lib/ring.h) under ThreadSanitizer: one
 * producer and one consumer thread move pointers to objects the producer
 * fills and the consumer reads and frees, in bursts and bulks of varied
 * sizes, across the 2^32 wrap-around of the counters, while a third thread
 * takes snapshots with l3x_ring_count(). The objects are plain memory:
 * TSan sees a race on them, or on the slots, unless the ring's
 * release/acquire pairs order every access (make tsan; criterion cannot
 * start under TSan). The order and content are checked too.
 *
 * Prints "ok NAME" or "not ok NAME: why" lines (tests/run-all reads them).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

#define ITEMS	  200000u
#define MAX_BURST 48u

/* What crosses the ring: written by the producer before the enqueue, read
 * by the consumer after the dequeue, never touched by both at once. */
struct item {
	uint32_t seq;
	uint32_t check; /* a function of seq */
	uint8_t pad[40];
};

struct run {
	struct l3x_ring *r;
	atomic_bool done;
	uint64_t got;	     /* consumer */
	char err[160];	     /* consumer */
	uint64_t snaps;	     /* watcher */
	char watch_err[160]; /* watcher */
};

static uint32_t check_of(uint32_t seq)
{
	return seq * 2654435761u ^ 0x5bd1e995u;
}

/* A small xorshift: burst sizes differ from call to call. */
static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void *producer(void *arg)
{
	struct run *run = arg;
	uint64_t objs[MAX_BURST];
	uint32_t seq = 0, rnd = 12345, n, want, i, put;

	while (seq < ITEMS) {
		/* A bulk larger than the ring would never fit. */
		want = 1 + next_rand(&rnd) % MAX_BURST % run->r->size;
		if (want > ITEMS - seq)
			want = ITEMS - seq;
		for (i = 0; i < want; i++) {
			struct item *it = malloc(sizeof(*it));

			if (!it)
				abort();
			it->seq = seq + i;
			it->check = check_of(seq + i);
			memset(it->pad, (int)(seq + i), sizeof(it->pad));
			objs[i] = (uint64_t)(uintptr_t)it;
		}
		/* Every other round all or nothing (bulk), else what fits. */
		for (put = 0; put < want;) {
			if (rnd & 1)
				n = l3x_ring_enqueue_bulk_sp(run->r, objs + put,
							     want - put);
			else
				n = l3x_ring_enqueue_burst_sp(
					run->r, objs + put, want - put);
			put += n;
			if (!n)
				sched_yield();
		}
		seq += want;
	}
	return NULL;
}

static bool take(struct run *run, struct item *it)
{
	unsigned k;

	if (it->seq != (uint32_t)run->got || it->check != check_of(it->seq)) {
		snprintf(run->err, sizeof(run->err),
			 "entry %llu: seq %u check %#x",
			 (unsigned long long)run->got, it->seq, it->check);
		return false;
	}
	for (k = 0; k < sizeof(it->pad); k++) {
		if (it->pad[k] != (uint8_t)it->seq) {
			snprintf(run->err, sizeof(run->err),
				 "entry %u: byte %u of its body differs",
				 it->seq, k);
			return false;
		}
	}
	run->got++;
	free(it);
	return true;
}

static void *consumer(void *arg)
{
	struct run *run = arg;
	uint64_t objs[MAX_BURST];
	uint32_t rnd = 777, want, n, i;

	while (run->got < ITEMS) {
		want = 1 + next_rand(&rnd) % MAX_BURST % run->r->size;
		if (rnd & 1)
			n = l3x_ring_dequeue_bulk_sc(run->r, objs, want);
		else
			n = l3x_ring_dequeue_burst_sc(run->r, objs, want);
		if (!n) {
			sched_yield();
			continue;
		}
		for (i = 0; i < n; i++) {
			if (!take(run, (struct item *)(uintptr_t)objs[i]))
				goto out;
		}
	}
out:
	atomic_store(&run->done, true);
	return NULL;
}

/* The "any thread" snapshots stay within the ring's size. */
static void *watcher(void *arg)
{
	struct run *run = arg;
	uint32_t c, f;

	while (!atomic_load(&run->done)) {
		c = l3x_ring_count(run->r);
		f = l3x_ring_free_count(run->r);
		if (c > run->r->size || f > run->r->size) {
			snprintf(run->watch_err, sizeof(run->watch_err),
				 "count %u, free %u, size %u", c, f,
				 run->r->size);
			break;
		}
		run->snaps++;
		sched_yield();
	}
	return NULL;
}

/* One run on a ring of @size entries whose counters start at @start. */
static int one_run(const char *name, uint32_t size, uint32_t start)
{
	struct run run = { 0 };
	pthread_t p, c, w;
	int fails = 0;

	run.r = l3x_ring_create(size);
	if (!run.r) {
		printf("not ok %s: l3x_ring_create(%u): %s\n", name, size,
		       strerror(errno));
		return 1;
	}
	l3x_ring_reset_at(run.r, start);
	if (pthread_create(&c, NULL, consumer, &run) ||
	    pthread_create(&w, NULL, watcher, &run) ||
	    pthread_create(&p, NULL, producer, &run)) {
		printf("not ok %s: pthread_create failed\n", name);
		exit(1);
	}
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	pthread_join(w, NULL);
	if (run.err[0] || run.got != ITEMS) {
		printf("not ok %s: got %llu of %u in order: %s\n", name,
		       (unsigned long long)run.got, ITEMS, run.err);
		fails++;
	} else if (run.watch_err[0]) {
		printf("not ok %s: snapshot: %s\n", name, run.watch_err);
		fails++;
	} else if (l3x_ring_count(run.r) != 0) {
		printf("not ok %s: %u entries left\n", name,
		       l3x_ring_count(run.r));
		fails++;
	} else {
		printf("ok %s: %u entries in order through %u slots from "
		       "counter %#x, %llu snapshots\n",
		       name, ITEMS, size, start, (unsigned long long)run.snaps);
	}
	l3x_ring_free(run.r);
	return fails;
}

int main(void)
{
	int fails = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A small ring is full and empty often: both sides reload the
	 * other's counter all the time. A larger one lets bursts pass. */
	fails += one_run("tsan ring: 8 slots across the wrap", 8,
			 UINT32_MAX - ITEMS / 2);
	fails += one_run("tsan ring: 256 slots across the wrap", 256,
			 UINT32_MAX - 1000);
	return fails ? 1 : 0;
}
