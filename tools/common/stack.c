/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * stack.c - a tool's l3x_stack and its workers' counters: see stack.h.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "stack.h"
#include "tool.h"

void counters_sum(void *sum, size_t size, const void *first, size_t stride,
		  unsigned n)
{
	const uint64_t *c;
	uint64_t *s = sum;
	unsigned i;
	size_t k;

	memset(sum, 0, size);
	for (i = 0; i < n; i++) {
		c = (const uint64_t *)((const char *)first + i * stride);
		for (k = 0; k < size / sizeof(uint64_t); k++)
			s[k] += counted(&c[k]);
	}
}

unsigned link_queue_list(const struct link_args *a, uint32_t *queues)
{
	unsigned i, nq;

	if (!a->iface)
		return 0;
	nq = a->nqueues ? a->nqueues : link_rx_queues(a->iface);
	for (i = 0; i < nq && i < MAX_QUEUES; i++)
		queues[i] = a->nqueues ? a->queues[i] : i;
	return nq < MAX_QUEUES ? nq : MAX_QUEUES;
}

void stack_add_rules(struct l3x_stack *st, const struct rule_list *l)
{
	unsigned i;
	int err;

	for (i = 0; i < l->n; i++) {
		err = l3x_stack__add_rule(st, &l->rules[i]);
		if (err)
			die("--rule '%s': %s", l->text[i], strerror(-err));
	}
}

void stack_drain_flows(struct l3x_stack *st, int ms)
{
	struct l3x_stack_stats s;
	int i;

	for (i = 0; i < ms / 10; i++) {
		if (l3x_stack__stats(st, &s) || !s.flows)
			return;
		poll(NULL, 0, 10);
	}
}

void stack_close(struct l3x_stack *st)
{
	int err = l3x_stack__close(st);

	if (err)
		fprintf(stderr, "%s: closing the stack: %s\n", this_tool.prog,
			strerror(-err));
}
