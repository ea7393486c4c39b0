/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * stack.h - what the tools that run an l3x_stack with worker threads
 * (l3x-serve, l3x-relay) do the same way: the queue list from the command
 * line, the rules added, the workers' counters, the wait for open flows
 * at the end and the closing of the stack. Main thread unless said.
 */
#ifndef L3X_TOOL_STACK_H
#define L3X_TOOL_STACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "l3x/l3x.h"
#include "link.h"

/* A worker's counter: @n more. Single writer (the worker); main's relaxed
 * loads see some recent value, nothing else is published through it. */
static inline void count(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
}

/* A worker's counter as main reads it. Any thread. */
static inline uint64_t counted(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/*
 * @sum (a struct of @size bytes, uint64_t counters only) set to the sum of
 * the same struct in @n workers: the first at @first, the next @stride
 * bytes on. Any thread.
 */
void counters_sum(void *sum, size_t size, const void *first, size_t stride,
		  unsigned n);

/*
 * The worker threads' side of main: each worker says once that its start
 * is done (crew_opened), main waits for all of them (crew_wait), and the
 * first error any of them hits is kept for main to report.
 */
struct crew {
	pthread_mutex_t lock; /* guards opened, fail */
	pthread_cond_t cond;
	unsigned opened; /* workers done with their start */
	char fail[200];	 /* first error a worker hit, "" if none */
};

#define CREW_INIT                                                              \
	{                                                                      \
		.lock = PTHREAD_MUTEX_INITIALIZER,                             \
		.cond = PTHREAD_COND_INITIALIZER,                              \
	}

/* Keep the message, unless one is kept already, and ask for a stop
 * (request_stop()). Any thread. */
void crew_fail(struct crew *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A worker's start is done (well, or with crew_fail() called). Any
 * thread. */
void crew_opened(struct crew *c);

/* Wait until @n workers have called crew_opened(); if one failed, refuse
 * to go on with its message (die()). */
void crew_wait(struct crew *c, unsigned n);

/*
 * One worker as the crew sees it: the first member of a tool's struct
 * worker, so that the tool's array of workers is walked by its size and
 * each thread starts with a pointer to its own struct worker. Main thread
 * only, but for stop_fd, which the worker reads.
 */
struct crew_member {
	pthread_t thread;
	bool started;
	int stop_fd; /* eventfd: main wakes the worker (crew_wake_all) */
};

/* An array of @n workers of @size bytes each, struct crew_member first,
 * zeroed but every stop_fd -1 (none open); or the tool refused
 * ("--workers N: ..."). */
void *crew_alloc(unsigned n, size_t size);

/* Start the @n workers of the array at @first (@size bytes each): each
 * gets its eventfd (non-blocking), then its thread running @fn(its
 * struct); then crew_wait(). The tool is refused when one cannot start
 * (eventfd, "--workers N: cannot start a thread") or its start failed. */
void crew_start_all(struct crew *c, void *first, size_t size, unsigned n,
		    void *(*fn)(void *));

/* Add 1 to the eventfd of every started worker of the array, which its
 * worker sleeps on; a line on stderr if a write fails. */
void crew_wake_all(void *first, size_t size, unsigned n);

/* The end of every worker of the array: its thread joined if it started,
 * then its eventfd closed (stop_fd -1). */
void crew_join_all(void *first, size_t size, unsigned n);

/* The queues to open on --iface: those given with --queue, else every RX
 * queue of the interface. Fills @queues (MAX_QUEUES) and returns how
 * many, at most MAX_QUEUES. */
unsigned link_queue_list(const struct link_args *a, uint32_t *queues);

/*
 * The stack on the link of @a (--iface, its @nq @queues), or on the TUN
 * device @tun when not NULL: @o's source and link fields filled in from
 * them, the rest left as the caller set it. Refuses to go on naming
 * --tun or --iface and why when the stack does not open.
 */
struct l3x_stack *stack_open(struct l3x_stack_opts *o,
			     const struct link_args *a, const char *tun,
			     const uint32_t *queues, unsigned nq);

/* Every --rule of @l added to @st, or the tool refused as
 * "--rule 'TEXT': why". */
void stack_add_rules(struct l3x_stack *st, const struct rule_list *l);

/* Wait up to @ms for the open flows of @st to reach 0: streams closed in
 * order finish their FIN exchange, the RSTs just sent reach the clients. */
void stack_drain_flows(struct l3x_stack *st, int ms);

/* l3x_stack__close(@st), a line on stderr if it fails. */
void stack_close(struct l3x_stack *st);

#endif /* L3X_TOOL_STACK_H */
