/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * worker.c - the application side of a worker (l3x_worker__*): the handle
 * one application thread owns, with the streams and UDP flows it accepts.
 * Everything here runs on the owner thread and talks to the engine only
 * through the worker's two rings and its eventfd (flow.h).
 *
 * A worker drains its app ring into private lists: new flows (an accept
 * queue per kind) and accepted ones with news (the ready list, doubly
 * linked so that close can take a stream off it). Events are computed
 * from the stream's state when reported, so they are never stale.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "engine.h"

struct l3x_worker *l3x_worker__open(struct l3x_stack *st)
{
	struct l3x_worker *w;
	unsigned i;
	int err = -ENOMEM;

	if (!st) {
		errno = EINVAL;
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		goto err;
	w->st = st;
	w->efd = -1;
	w->to_app = l3x_ring_create(st->ring_size);
	w->to_eng = l3x_ring_create(st->ring_size);
	if (!w->to_app || !w->to_eng)
		goto err_free;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		err = -errno;
		goto err_free;
	}
	/* Armed from the start: an app that goes straight to epoll on the
	 * fd is woken by its first stream. */
	atomic_store(&w->armed, 1);
	pthread_mutex_lock(&st->wlock);
	for (i = 0; i < L3X_MAX_WORKERS; i++)
		if (!atomic_load(&st->workers[i]))
			break;
	if (i == L3X_MAX_WORKERS) {
		pthread_mutex_unlock(&st->wlock);
		err = -ENOSPC;
		goto err_free;
	}
	w->slot = i;
	/* Release: pairs with the engine's acquire loads of the slot; the
	 * worker is complete before the engine can see it. */
	atomic_store_explicit(&st->workers[i], w, memory_order_release);
	pthread_mutex_unlock(&st->wlock);
	return w;

err_free:
	l3x_worker_free(w);
err:
	errno = -err;
	return NULL;
}

int l3x_worker__fd(const struct l3x_worker *w)
{
	return w ? w->efd : -EINVAL;
}

static void accept_add(struct l3x_worker *w, struct l3x_stream *s)
{
	struct l3x_stream **head = &w->acc_head, **tail = &w->acc_tail;

	if (s->aflags & (AF_QUEUED | AF_ACCEPTED))
		return;
	if (s->kind == L3X_FLOW_UDP) {
		head = &w->udp_head;
		tail = &w->udp_tail;
	}
	s->aflags |= AF_QUEUED;
	s->accept_next = NULL;
	if (*tail)
		(*tail)->accept_next = s;
	else
		*head = s;
	*tail = s;
}

/* Move everything in the app ring onto the private lists. */
static void worker_drain(struct l3x_worker *w)
{
	uint64_t v[64];
	unsigned n, i;
	uint64_t junk;

	if (atomic_load_explicit(&w->kicked, memory_order_relaxed) &&
	    atomic_exchange(&w->kicked, 0)) {
		if (read(w->efd, &junk, sizeof(junk)) < 0)
			junk = 0; /* EAGAIN: nothing to drain */
	}
	while ((n = l3x_ring_dequeue_burst_sc(w->to_app, v, 64))) {
		for (i = 0; i < n; i++) {
			struct l3x_stream *s = (void *)(uintptr_t)v[i];

			if (s->aflags & AF_CLOSED) {
				/* Release: our last touch of a stream we
				 * closed; the engine may free it after
				 * (flow.c reap_zombies). */
				atomic_store_explicit(&s->in_app_q, 0,
						      memory_order_release);
				continue;
			}
			/* Seq_cst: cleared before we look at the state, so
			 * news after the look queues the stream again. */
			atomic_store(&s->in_app_q, 0);
			if (s->aflags & AF_ACCEPTED)
				l3x_stream_ready_add(w, s);
			else
				accept_add(w, s);
		}
	}
}

/* About to report "nothing": ask the engine to kick the eventfd on its
 * next push. Returns true if something arrived meanwhile. */
static bool worker_arm(struct l3x_worker *w)
{
	atomic_store(&w->armed, 1);
	/* Seq_cst fence: the armed store before the ring read, as the
	 * engine's ring push is before its armed read (flow.c
	 * l3x_flow_kick). */
	atomic_thread_fence(memory_order_seq_cst);
	return l3x_ring_count(w->to_app) > 0;
}

static struct l3x_stream *accept_kind(struct l3x_worker *w,
				      struct l3x_stream **head,
				      struct l3x_stream **tail)
{
	struct l3x_stream *s;

	if (!w) {
		errno = EINVAL;
		return NULL;
	}
	if (!*head) {
		worker_drain(w);
		if (!*head && worker_arm(w))
			worker_drain(w);
	}
	s = *head;
	if (!s) {
		errno = EAGAIN;
		return NULL;
	}
	*head = s->accept_next;
	if (!*head)
		*tail = NULL;
	s->aflags = (s->aflags & ~AF_QUEUED) | AF_ACCEPTED;
	/* Relaxed: a count the engine reads for the backlog limit. */
	atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
	return s;
}

struct l3x_stream *l3x_worker__accept(struct l3x_worker *w)
{
	return w ? accept_kind(w, &w->acc_head, &w->acc_tail)
		 : accept_kind(NULL, NULL, NULL);
}

struct l3x_udp *l3x_worker__accept_udp(struct l3x_worker *w)
{
	return (struct l3x_udp *)(w ? accept_kind(w, &w->udp_head, &w->udp_tail)
				    : accept_kind(NULL, NULL, NULL));
}

static uint32_t stream_events(struct l3x_stream *s)
{
	/* Acquire: pairs with the engine's release of the state bits. */
	uint32_t state = atomic_load_explicit(&s->state, memory_order_acquire);
	uint32_t ev = 0;

	if ((s->kind == L3X_FLOW_UDP ? l3x_udp_readable(s)
				     : l3x_stream_readable(s)) ||
	    (state & (ST_EOF | ST_ERROR)))
		ev |= L3X_EV_READABLE;
	if (state & ST_EOF)
		ev |= L3X_EV_EOF;
	if (state & ST_ERROR)
		ev |= L3X_EV_ERROR;
	if (s->aflags & AF_WANTW) {
		uint64_t acked = atomic_load(&s->tx_acked);

		if (s->tx_written - acked < s->tx_buf || (state & ST_GONE)) {
			s->aflags &= ~AF_WANTW;
			ev |= L3X_EV_WRITABLE;
		}
	}
	return ev;
}

int l3x_worker__poll(struct l3x_worker *w, struct l3x_event *ev, unsigned n)
{
	unsigned got = 0;
	bool armed = false;

	if (!w || (!ev && n))
		return -EINVAL;
	for (;;) {
		worker_drain(w);
		while (got < n && w->ready_head) {
			struct l3x_stream *s = w->ready_head;
			uint32_t e;

			l3x_stream_ready_del(w, s);
			e = stream_events(s);
			if (!e)
				continue;
			ev[got].stream = s;
			ev[got].user = s->user;
			ev[got].events = e;
			ev[got].kind = s->kind;
			got++;
		}
		if (got || armed || w->acc_head || w->udp_head)
			return (int)got;
		armed = true;
		if (!worker_arm(w))
			return 0;
	}
}

int l3x_worker__wait(struct l3x_worker *w, int timeout_ms)
{
	struct pollfd pfd;
	int r;

	if (!w)
		return -EINVAL;
	worker_drain(w);
	if (w->acc_head || w->udp_head || w->ready_head)
		return 1;
	if (worker_arm(w))
		return 1;
	pfd.fd = w->efd;
	pfd.events = POLLIN;
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return -errno;
	return r > 0 || l3x_ring_count(w->to_app) > 0;
}

int l3x_worker__spin(struct l3x_worker *w, uint32_t spins)
{
	uint32_t i;

	if (!w || spins > L3X_WORKER_SPINS_MAX)
		return -EINVAL;
	if (w->acc_head || w->udp_head || w->ready_head)
		return 1;
	/* Unarmed while we look: the engine's pushes meanwhile write no
	 * eventfd. Had it taken the flag already, its write only makes
	 * the fd readable once more: a wake-up that finds nothing. */
	atomic_store(&w->armed, 0);
	for (i = 0; i < spins; i++) {
		if (l3x_ring_count(w->to_app) > 0)
			return 1;
		/* An engine on this core runs now; alone, this returns at
		 * once. */
		sched_yield();
	}
	/* Armed again before we report nothing, as __poll does. */
	return worker_arm(w) ? 1 : 0;
}

int l3x_worker__close(struct l3x_worker *w)
{
	struct l3x_stack *st;

	if (!w)
		return 0;
	st = w->st;
	while (w->bound)
		l3x_udp__close((struct l3x_udp *)w->bound);
	/* Release: our last touch; the engine resets the streams and frees
	 * the worker (flow.c l3x_flow_serve). */
	atomic_store_explicit(&w->closing, 1, memory_order_release);
	l3x_engine_wake(st); /* the stack outlives its workers */
	return 0;
}
