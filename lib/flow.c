/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * flow.c - flows and workers on the engine side, whatever the protocol:
 * a flow's life from its offer to a worker until both sides let go, the
 * news it sends to the worker's app ring, and the requests the workers
 * send back, handed to the protocol of each flow's kind through its
 * l3x_flow_ops (flow.h). The protocols (lib/tcp.c, lib/udp.c) call this
 * file; it calls them only through those tables. Engine thread only,
 * but l3x_engine_wake(), which the other threads call to wake it.
 *
 * A flow lives until both sides let go: the application (close or abort,
 * seen as EF_APP_DONE) and the protocol (the pcb closed, aborted or
 * failed; the UDP flow forgotten). Then l3x_flow_release() frees it,
 * unless its pointer still waits in the worker's app ring: it becomes a
 * zombie until the application has dequeued it.
 *
 * The bounds both protocols share are decided here too: the flow budgets
 * (a budget per kind and the per-source caps, taken at the offer and
 * given back at the release), and the memory policy against max_memory
 * (full, pressure, a flow's share), which tcp.c and udp.c apply to what
 * they receive.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lwip/sys.h"

#include "engine.h"
#include "mem.h"
#include "way.h"

/* How often lingering streams and zombies are looked at. */
#define REAP_MS 100

/* ------------------------------------------------------------ life */

struct l3x_stream *l3x_flow_new(struct l3x_worker *w, uint8_t kind)
{
	struct l3x_stream *s = l3x_mem_calloc(L3X_MEM_FLOW, 1, sizeof(*s));

	if (!s)
		return NULL;
	s->w = w;
	s->kind = kind;
	return s;
}

void l3x_flow_link(struct l3x_stream *s)
{
	struct l3x_worker *w = s->w;

	if (s->eflags & EF_LINKED)
		return;
	s->eflags |= EF_LINKED;
	s->e_prev = NULL;
	s->e_next = w->streams;
	if (w->streams)
		w->streams->e_prev = s;
	w->streams = s;
}

/* ------------------------------------------------------------ budgets */

int l3x_flow_admit(struct l3x_stack *st, uint8_t kind, uint8_t family,
		   const uint8_t *addr)
{
	if (st->flows_open[kind] >= st->max_kind[kind])
		return -ENOSPC;
	return st->sources ? l3x_sources_check(st->sources, family, addr) : 0;
}

/* Count @s in its budget and its source's flows. */
static void budget_take(struct l3x_stack *st, struct l3x_stream *s)
{
	st->flows_open[s->kind]++;
	s->eflags |= EF_BUDGET;
	if (st->sources &&
	    l3x_sources_add(st->sources, s->family, s->client_addr))
		s->eflags |= EF_SOURCED;
}

/* Count @s out of its budget and its source's flows. */
static void budget_give(struct l3x_stack *st, struct l3x_stream *s)
{
	if (s->eflags & EF_SOURCED)
		l3x_sources_del(st->sources, s->family, s->client_addr);
	if (s->eflags & EF_BUDGET)
		st->flows_open[s->kind]--;
	if (s->eflags & EF_OUTSIDE)
		st->flows_outside[s->kind]--;
	s->eflags &= ~(EF_BUDGET | EF_SOURCED | EF_OUTSIDE);
}

/* ------------------------------------------------------------ memory */

int l3x_flow_way(struct l3x_stack *st, uint8_t family, uint8_t proto,
		 const uint8_t *ca, uint16_t cp, const uint8_t *da, uint16_t dp,
		 struct l3x_way **way)
{
	struct l3x_flow_key k = {
		.family = family, .proto = proto, .lport = dp, .rport = cp
	};
	unsigned alen = family == 4 ? 4 : 16;
	int err = 0;

	*way = NULL;
	if (!st->link->ops->way_learn)
		return 0;
	memcpy(k.laddr, da, alen);
	memcpy(k.raddr, ca, alen);
	*way = st->link->ops->way_learn(st->link, &k, &err);
	if (*way)
		return 0;
	STAT_INC(st, way_refused);
	return err ? err : -ENOMEM;
}

bool l3x_flow_mem_full(const struct l3x_stack *st)
{
	return l3x_mem_total() > st->mem_adm;
}

bool l3x_flow_mem_pressure(struct l3x_stack *st)
{
	uint64_t m = l3x_mem_total();

	/* On at half of max_memory, off below three eighths: windows that
	 * open again in a rush do not bring pressure straight back. */
	if (st->mem_pressed)
		st->mem_pressed = m >= st->max_memory / 8 * 3;
	else
		st->mem_pressed = m >= st->max_memory / 2;
	return st->mem_pressed;
}

uint64_t l3x_flow_mem_share(const struct l3x_stack *st, uint8_t kind)
{
	uint64_t n = st->flows_open[kind] ? st->flows_open[kind] : 1;

	/* With pressure from half of max_memory, the TCP shares, the half
	 * share a window may stay over (tcp.c), and the UDP shares come to
	 * at most the other half. */
	return st->max_memory / (kind == L3X_FLOW_TCP ? 4 : 8) / n;
}

size_t l3x_flow_pbuf_cost(const struct pbuf *p)
{
	size_t c = 0;

	/* PBUF_RAM and pool pbufs: the header starts the block (no size
	 * word in front: lwipopts.h MEM_STATS 0, MEMP_SIZE 0). A custom
	 * pbuf is a UMEM frame (zero-copy receive, lib/link_xsk.c): no
	 * heap, and its frames are bounded there; it costs what the same
	 * bytes would in a buffer of their own, so that a small segment is
	 * still copied out (and its frame freed) as tcp.c rx_costly says. */
	for (; p; p = p->next)
		c += (p->flags & PBUF_FLAG_IS_CUSTOM)
			     ? sizeof(struct pbuf_custom) + p->len
			     : l3x_mem_size(p);
	return c;
}

void l3x_flow_unbudget(struct l3x_stream *s)
{
	struct l3x_stack *st = s->w->st;

	if (!(s->eflags & EF_BUDGET))
		return;
	budget_give(st, s);
	s->eflags |= EF_OUTSIDE;
	st->flows_outside[s->kind]++;
}

void l3x_flow_offer(struct l3x_stream *s)
{
	struct l3x_stack *st = s->w->st;

	l3x_flow_link(s);
	s->w->offered++;
	st->streams_alive++;
	budget_take(st, s);
	STAT_INC(st, flows);
}

static void unlink_stream(struct l3x_stream *s)
{
	struct l3x_worker *w = s->w;

	if (!(s->eflags & EF_LINKED))
		return;
	s->eflags &= ~EF_LINKED;
	if (s->e_prev)
		s->e_prev->e_next = s->e_next;
	else
		w->streams = s->e_next;
	if (s->e_next)
		s->e_next->e_prev = s->e_prev;
	s->e_prev = s->e_next = NULL;
}

static void free_data(struct l3x_stack *st, struct l3x_stream *s)
{
	struct pbuf *p = s->rx_reclaim, *pn;
	struct l3x_chunk *c, *cn;

	while (p) {
		pn = __atomic_load_n(&p->l3x_qnext, __ATOMIC_ACQUIRE);
		pbuf_free(p);
		p = pn;
	}
	s->rx_reclaim = s->rx_last = NULL;
	c = s->tx_cur
		    ? s->tx_cur
		    : atomic_load_explicit(&s->tx_first, memory_order_acquire);
	while (c) {
		cn = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE);
		l3x_mem_free(L3X_MEM_FLOW, c);
		c = cn;
	}
	s->tx_cur = NULL;
	if (s->kind != L3X_FLOW_TCP)
		return;
	/* TCP's bytes count against max_memory until freed. */
	st->buffered -= s->rx_delivered - s->rx_recved;
	st->buffered -= s->tx_queued - atomic_load(&s->tx_acked);
	s->rx_recved = s->rx_delivered;
	s->tx_queued = atomic_load(&s->tx_acked);
}

/* Its data freed, off its worker, no longer counted. */
static void forget(struct l3x_stack *st, struct l3x_stream *s)
{
	if (st->flow_ops[s->kind]->release)
		st->flow_ops[s->kind]->release(s);
	free_data(st, s);
	unlink_stream(s);
	if (!s->bound) {
		budget_give(st, s);
		st->streams_alive--;
		STAT_ADD(st, flows, (uint64_t)-1);
	}
}

void l3x_flow_release(struct l3x_stream *s)
{
	if (s->eflags & EF_TODO) {
		s->eflags |= EF_RELEASE; /* reap_todo() finishes it */
		return;
	}
	forget(s->w->st, s);
	/* Acquire: pairs with the app's release store of in_app_q, its last
	 * touch of a closed stream (worker.c worker_drain). */
	if (atomic_load_explicit(&s->in_app_q, memory_order_acquire)) {
		s->eflags |= EF_ZOMBIE;
		s->z_next = s->w->zombies;
		s->w->zombies = s;
		return;
	}
	l3x_mem_free(L3X_MEM_FLOW, s);
}

void l3x_flow_todo(struct l3x_stream *s)
{
	if (s->eflags & EF_TODO)
		return;
	s->eflags |= EF_TODO;
	s->t_next = s->w->todo;
	s->w->todo = s;
}

struct l3x_chunk *l3x_flow_tx_next(struct l3x_stream *s, uint32_t past)
{
	struct l3x_chunk *c, *next;

	for (;;) {
		/* Acquire: pairs with the app's release publishing a chunk
		 * (stream.c l3x_stream_tx_append). */
		c = s->tx_cur ? s->tx_cur
			      : atomic_load_explicit(&s->tx_first,
						     memory_order_acquire);
		if (!c)
			return NULL;
		s->tx_cur = c;
		if (c->off < c->len + past)
			return c;
		next = __atomic_load_n(&c->next, __ATOMIC_ACQUIRE);
		if (!next)
			return NULL;
		l3x_mem_free(L3X_MEM_FLOW,
			     c); /* the app links only through the last */
		s->tx_cur = next;
	}
}

/* ------------------------------------------------------------ news */

void l3x_flow_notify(struct l3x_stream *s)
{
	struct l3x_worker *w = s->w;
	uint64_t v = (uintptr_t)s;

	/* Seq_cst exchange: pairs with the app's clearing of in_app_q before
	 * it reads the stream's state, so news after that read re-queues. */
	if (atomic_exchange(&s->in_app_q, 1))
		return;
	if (!l3x_ring_enqueue_bulk_sp(w->to_app, &v, 1)) {
		/* Cannot happen: the ring holds max_flows and each stream is
		 * in it at most once. Keep the flag consistent anyway. */
		atomic_store(&s->in_app_q, 0);
		return;
	}
	w->pushed = true;
}

void l3x_flow_kick(struct l3x_stack *st)
{
	uint64_t one = 1;
	unsigned i;

	for (i = 0; i < L3X_MAX_WORKERS; i++) {
		struct l3x_worker *w = atomic_load_explicit(
			&st->workers[i], memory_order_acquire);

		if (!w || !w->pushed)
			continue;
		w->pushed = false;
		/* Seq_cst fence: our ring pushes before the armed read, as
		 * the app's armed store is before its ring re-check
		 * (worker.c worker_arm). */
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_exchange(&w->armed, 0)) {
			atomic_store(&w->kicked, 1);
			if (write(w->efd, &one, sizeof(one)) < 0)
				continue; /* counter full: already readable */
		}
	}
}

void l3x_engine_wake(struct l3x_stack *st)
{
	uint64_t one = 1;

	/* Seq_cst fence: the post before the read of sleeping, as the
	 * engine's store of sleeping is before its last look at the rings
	 * (engine.c engine_sleep): either it sees the post, or we see it
	 * about to sleep and write its eventfd. Only the thread whose
	 * exchange takes sleeping from 1 writes. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&st->sleeping, memory_order_relaxed) ||
	    !atomic_exchange(&st->sleeping, 0))
		return;
	if (write(st->efd, &one, sizeof(one)) < 0)
		return; /* counter full: readable already */
}

bool l3x_flow_pending(struct l3x_stack *st)
{
	unsigned i;

	for (i = 0; i < L3X_MAX_WORKERS; i++) {
		/* Acquire: pairs with the release in l3x_worker__open(). */
		struct l3x_worker *w = atomic_load_explicit(
			&st->workers[i], memory_order_acquire);

		if (w &&
		    (l3x_ring_count(w->to_eng) ||
		     atomic_load_explicit(&w->closing, memory_order_relaxed)))
			return true;
	}
	return false;
}

struct l3x_worker *l3x_flow_pick_worker(struct l3x_stack *st)
{
	unsigned i;

	for (i = 0; i < L3X_MAX_WORKERS; i++) {
		unsigned slot = (st->rr + i) % L3X_MAX_WORKERS;
		/* Acquire: pairs with the release in l3x_worker__open(). */
		struct l3x_worker *w = atomic_load_explicit(
			&st->workers[slot], memory_order_acquire);

		if (!w ||
		    atomic_load_explicit(&w->closing, memory_order_relaxed))
			continue;
		if (w->offered - atomic_load_explicit(&w->accepted,
						      memory_order_relaxed) >=
		    st->backlog)
			continue;
		st->rr = slot + 1;
		return w;
	}
	return NULL;
}

/* ------------------------------------------------------------ requests */

static int serve_ring(struct l3x_stack *st, struct l3x_worker *w)
{
	uint64_t v[64];
	unsigned n, j;
	int work = 0;

	while ((n = l3x_ring_dequeue_burst_sc(w->to_eng, v, 64))) {
		for (j = 0; j < n; j++) {
			struct l3x_stream *s = (void *)(uintptr_t)v[j];

			/* Done with on our side: later requests are moot. */
			if (s->eflags & (EF_APP_DONE | EF_ZOMBIE))
				continue;
			st->flow_ops[s->kind]->serve(s);
		}
		work += (int)n;
	}
	return work;
}

/* The app closed its worker: reset and free everything it had. */
static void worker_gone(struct l3x_stack *st, struct l3x_worker *w)
{
	struct l3x_stream *s;

	while ((s = w->zombies)) {
		w->zombies = s->z_next;
		l3x_mem_free(L3X_MEM_FLOW, s);
	}
	while ((s = w->streams)) {
		st->flow_ops[s->kind]->gone(s);
		forget(st, s);
		l3x_mem_free(L3X_MEM_FLOW, s);
	}
	w->todo = w->lingering = NULL;
}

int l3x_flow_serve(struct l3x_stack *st)
{
	unsigned i;
	int work = 0;

	for (i = 0; i < L3X_MAX_WORKERS; i++) {
		/* Acquire: pairs with the release store in
		 * l3x_worker__open(): the worker is fully built. */
		struct l3x_worker *w = atomic_load_explicit(
			&st->workers[i], memory_order_acquire);

		if (!w)
			continue;
		work += serve_ring(st, w);
		/* Acquire: pairs with the release in l3x_worker__close();
		 * what the app queued before it is in the ring: serve it
		 * (closing its bound sockets), then let the worker go. */
		if (atomic_load_explicit(&w->closing, memory_order_acquire)) {
			serve_ring(st, w);
			worker_gone(st, w);
			atomic_store_explicit(&st->workers[i], NULL,
					      memory_order_release);
			l3x_worker_free(w);
			work++;
		}
	}
	return work;
}

void l3x_worker_free(struct l3x_worker *w)
{
	if (!w)
		return;
	l3x_ring_free(w->to_app);
	l3x_ring_free(w->to_eng);
	if (w->efd >= 0)
		close(w->efd);
	free(w);
}

/* ------------------------------------------------------------ reaping */

static void reap_todo(struct l3x_stack *st, struct l3x_worker *w)
{
	struct l3x_stream *s;

	while ((s = w->todo)) {
		w->todo = s->t_next;
		s->eflags &= ~EF_TODO;
		if (s->eflags & EF_RELEASE) {
			l3x_flow_release(s);
			continue;
		}
		if (st->flow_ops[s->kind]->todo)
			st->flow_ops[s->kind]->todo(s);
	}
}

static void reap_zombies(struct l3x_worker *w)
{
	struct l3x_stream **pp = &w->zombies, *s;

	while ((s = *pp)) {
		/* Acquire: pairs with the app's last release of in_app_q. */
		if (atomic_load_explicit(&s->in_app_q, memory_order_acquire)) {
			pp = &s->z_next;
			continue;
		}
		*pp = s->z_next;
		l3x_mem_free(L3X_MEM_FLOW, s);
	}
}

void l3x_flow_reap(struct l3x_stack *st)
{
	uint32_t now = sys_now();
	bool check = (int32_t)(now - st->next_reap) >= 0;
	unsigned i, k;

	if (check)
		st->next_reap = now + REAP_MS;
	for (i = 0; i < L3X_MAX_WORKERS; i++) {
		/* Acquire: pairs with the release in l3x_worker__open(); the
		 * worker's fields are read below. */
		struct l3x_worker *w = atomic_load_explicit(
			&st->workers[i], memory_order_acquire);

		if (!w)
			continue;
		reap_todo(st, w);
		if (!check)
			continue;
		for (k = 0; k < 2; k++)
			if (st->flow_ops[k]->linger)
				st->flow_ops[k]->linger(w, now);
		reap_zombies(w);
	}
}
