/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * stack.c - a tool's l3x_stack and its workers' counters: see stack.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

void crew_fail(struct crew *c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->lock);
	if (!c->fail[0]) {
		va_start(ap, fmt);
		vsnprintf(c->fail, sizeof(c->fail), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&c->lock);
	request_stop();
}

void crew_opened(struct crew *c)
{
	pthread_mutex_lock(&c->lock);
	c->opened++;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void crew_wait(struct crew *c, unsigned n)
{
	pthread_mutex_lock(&c->lock);
	while (c->opened < n)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	if (c->fail[0])
		die("%s", c->fail);
}

/* Worker @i of the array at @first, @size bytes each. */
static struct crew_member *member(void *first, size_t size, unsigned i)
{
	return (struct crew_member *)((char *)first + (size_t)i * size);
}

void *crew_alloc(unsigned n, size_t size)
{
	void *w = calloc(n, size);
	unsigned i;

	if (!w)
		die("--workers %u: %s", n, strerror(errno));
	for (i = 0; i < n; i++)
		member(w, size, i)->stop_fd = -1;
	return w;
}

void crew_start_all(struct crew *c, void *first, size_t size, unsigned n,
		    void *(*fn)(void *))
{
	struct crew_member *m;
	unsigned i;
	int err;

	for (i = 0; i < n; i++) {
		m = member(first, size, i);
		m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (m->stop_fd < 0)
			die("eventfd: %s", strerror(errno));
		err = pthread_create(&m->thread, NULL, fn, m);
		if (err)
			die("--workers %u: cannot start a thread: %s", n,
			    strerror(err));
		m->started = true;
	}
	crew_wait(c, n);
}

void crew_wake_all(void *first, size_t size, unsigned n)
{
	const uint64_t one = 1;
	struct crew_member *m;
	unsigned i;

	for (i = 0; i < n; i++) {
		m = member(first, size, i);
		if (m->started &&
		    write(m->stop_fd, &one, sizeof(one)) != sizeof(one))
			fprintf(stderr, "%s: eventfd: %s\n", this_tool.prog,
				strerror(errno));
	}
}

void crew_join_all(void *first, size_t size, unsigned n)
{
	struct crew_member *m;
	unsigned i;

	for (i = 0; i < n; i++) {
		m = member(first, size, i);
		if (m->started)
			pthread_join(m->thread, NULL);
		m->started = false;
		if (m->stop_fd >= 0)
			close(m->stop_fd);
		m->stop_fd = -1;
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

struct l3x_stack *stack_open(struct l3x_stack_opts *o,
			     const struct link_args *a, const char *tun,
			     const uint32_t *queues, unsigned nq)
{
	struct l3x_stack *st;

	o->source = tun ? L3X_SOURCE_TUN : L3X_SOURCE_XDP;
	o->ifname = a->iface;
	o->tun_name = tun;
	o->queues = tun ? NULL : queues;
	o->queue_count = tun ? 0 : nq;
	o->pin_dir = a->pin_dir;
	o->xdp_mode = a->xdp_mode;
	o->bind_mode = a->bind_mode;
	o->busy_poll_usec = a->no_busy_poll ? -1 : 0;
	o->poll = a->poll;
	o->idle_spins = a->idle_spins;
	o->ack_coalesce = a->ack_coalesce;
	o->gro = a->gro;
	o->idle_yield = a->idle_yield;
	o->frame_count = a->frames;
	st = l3x_stack__open(o);
	if (!st && tun)
		die("--tun %s: %s", tun, strerror(errno));
	if (!st && errno == EOPNOTSUPP && a->bind_mode == L3X_BIND_ZEROCOPY)
		die("--bind zerocopy: %s: %s (zero-copy AF_XDP needs a driver that offers it, in native XDP mode; veth has none: use --bind auto or copy)",
		    a->iface, strerror(errno));
	if (!st)
		die("--iface %s: %s", a->iface, link_strerror(errno));
	return st;
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
