/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * stack.h - what the tools that run an l3x_stack with worker threads
 * (l3x-serve, l3x-relay) do the same way: the queue list from the command
 * line, the rules added, the workers' counters, the wait for open flows
 * at the end and the closing of the stack. Main thread unless said.
 */
#ifndef L3X_TOOL_STACK_H
#define L3X_TOOL_STACK_H

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

/* The queues to open on --iface: those given with --queue, else every RX
 * queue of the interface. Fills @queues (MAX_QUEUES) and returns how
 * many, at most MAX_QUEUES. */
unsigned link_queue_list(const struct link_args *a, uint32_t *queues);

/* Every --rule of @l added to @st, or the tool refused as
 * "--rule 'TEXT': why". */
void stack_add_rules(struct l3x_stack *st, const struct rule_list *l);

/* Wait up to @ms for the open flows of @st to reach 0: streams closed in
 * order finish their FIN exchange, the RSTs just sent reach the clients. */
void stack_drain_flows(struct l3x_stack *st, int ms);

/* l3x_stack__close(@st), a line on stderr if it fails. */
void stack_close(struct l3x_stack *st);

#endif /* L3X_TOOL_STACK_H */
