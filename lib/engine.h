/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * engine.h - the termination engine, internal: the stack (lib/engine.c),
 * its sources (lib/link_*.c), the lwIP side of TCP streams (lib/tcp.c) and
 * the application side of workers and streams (lib/stream.c).
 *
 * Two threads meet in a stream: the engine thread (lwIP, the source) and
 * the worker's owner thread. They share no lock. Each worker has two
 * doorbell rings of stream pointers (lib/ring.h), one per direction; a
 * stream is in a ring at most once (a flag guards the push), so a ring
 * as large as max_flows never overflows. The data itself moves through
 * per-stream intrusive lists, so an idle stream holds no buffer:
 *   rx: pbuf chains lwIP delivered, linked through pbuf->l3x_qnext; the
 *       engine appends and frees, the application reads and reports how
 *       far (rx_read bytes, rx_done chains);
 *   tx: chunks the application wrote, linked through chunk->next; the
 *       application appends, the engine hands them to lwIP and frees them.
 * Neither side frees the last node of a list: the producer links the next
 * node through it.
 */
#ifndef L3X_ENGINE_H
#define L3X_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"

#include "epoch.h"
#include "l3x_internal.h"
#include "link.h"
#include "ring.h"

#define L3X_MAX_WORKERS		64
#define L3X_TCP_WND_MAX		(1024 * 1024)	/* lwipopts.h TCP_WND */

/* ------------------------------------------------------------ streams */

/* A chunk of written data, app -> engine. */
struct l3x_chunk {
	struct l3x_chunk *next;		/* atomic: written by the app */
	uint32_t len;
	uint32_t off;			/* engine: bytes given to lwIP */
	uint8_t data[];
};

/* Stream state bits, engine -> app (s->state). */
#define ST_EOF		0x1u	/* FIN received: after the data, read gives 0 */
#define ST_ERROR	0x2u	/* reset or failed: s->err */
#define ST_GONE		0x4u	/* the engine has let go of the pcb */

/* Requests, app -> engine (s->req). */
#define REQ_SHUTDOWN	0x1u
#define REQ_CLOSE	0x2u
#define REQ_ABORT	0x4u
#define REQ_NODELAY	0x8u
#define REQ_DELAY	0x10u
#define REQ_RXBUF	0x20u
#define REQ_DATA	0x40u	/* read or wrote: reclaim, reopen, push */
#define REQ_QUEUED	0x80000000u /* in the worker's engine ring */

struct l3x_stream {
	/* ---- set at creation, then read-only */
	struct l3x_worker *w;
	uint8_t kind;			/* enum l3x_flow_kind */
	bool bound;			/* UDP: a bound socket, no client */
	uint8_t family;			/* 4 or 6 */
	uint16_t client_port, dst_port;	/* host order */
	uint8_t client_addr[16], dst_addr[16];

	/* ---- shared */
	struct pbuf *_Atomic rx_first;	/* engine: first chain, once */
	struct l3x_chunk *_Atomic tx_first; /* app: first chunk, once */
	_Atomic uint32_t state;		/* ST_*, engine sets */
	_Atomic int err;		/* -errno with ST_ERROR */
	_Atomic uint64_t rx_read;	/* app: bytes read */
	_Atomic uint64_t rx_done;	/* app: chains read to their end */
	_Atomic uint64_t tx_acked;	/* engine: bytes the client acked */
	_Atomic uint32_t req;		/* REQ_*, app sets, engine takes all;
					 * REQ_QUEUED guards the ring push, so
					 * a request and its push are one
					 * atomic step and the app need not
					 * touch the stream after it */
	_Atomic uint32_t rx_buf_req;	/* with REQ_RXBUF */
	_Atomic uint32_t want_write;	/* app saw -EAGAIN on write */
	_Atomic uint8_t in_app_q;	/* in the worker's app ring */

	/* ---- engine thread only */
	struct tcp_pcb *pcb;
	struct pbuf *rx_last;		/* last chain appended */
	struct pbuf *rx_reclaim;	/* oldest chain not freed */
	uint64_t rx_reclaimed;		/* chains freed */
	uint64_t rx_delivered;		/* bytes appended */
	uint64_t rx_recved;		/* bytes the window reopened for */
	uint32_t rx_wnd_owed;		/* window to open as memory allows */
	uint32_t rx_buf;
	struct l3x_chunk *tx_cur;	/* chunk being sent */
	uint64_t tx_queued;		/* bytes handed to lwIP */
	uint32_t eflags;		/* EF_* */
	uint32_t linger_deadline;	/* sys_now() ms, with EF_LINGER */
	struct l3x_stream *e_prev, *e_next;	/* the worker's streams */
	struct l3x_stream *z_next;		/* zombie or linger list */
	struct l3x_stream **z_pprev;		/* linger list only */
	struct l3x_stream *t_next;		/* todo list */
	/* UDP */
	struct l3x_stream *h_next;		/* flow table chain */
	struct l3x_stream *lru_prev, *lru_next;	/* idle order */
	uint32_t last_active;			/* sys_now() ms */
	uint64_t rx_dgrams;			/* datagrams delivered */
	uint64_t tx_sent;			/* datagrams taken */

	/* ---- owner (application) thread only */
	struct pbuf *rx_chain;		/* chain being read */
	struct pbuf *rx_p;		/* pbuf of it being read */
	uint32_t rx_off;
	uint64_t rx_nread, rx_ndone;
	struct l3x_chunk *tx_last;
	uint64_t tx_written;
	uint32_t tx_buf;
	uint32_t rx_buf_app;		/* L3X_STREAM_RX_BUF as last set */
	uint32_t aflags;		/* AF_* */
	void *user;
	struct l3x_stream *accept_next;	/* accept queue */
	struct l3x_stream *r_prev, *r_next;	/* ready list */
	struct l3x_stream *b_next;		/* worker's bound sockets */
};

/* eflags */
#define EF_APP_DONE	0x1u	/* the app closed or aborted it */
#define EF_CLOSING	0x2u	/* close requested: flush, then FIN */
#define EF_SHUT_PENDING	0x4u	/* shutdown requested: flush, then FIN */
#define EF_SHUT_DONE	0x8u
#define EF_LINGER	0x10u	/* on the linger list */
#define EF_ZOMBIE	0x20u	/* waiting for the app ring to let go */
#define EF_TODO		0x40u	/* on the todo list */
#define EF_RELEASE	0x80u	/* release when taken off the todo list */
#define EF_HASHED	0x100u	/* UDP: in the flow table and idle list */
#define EF_LINKED	0x200u	/* on the worker's stream list */

/* aflags */
#define AF_ACCEPTED	0x1u
#define AF_SHUT		0x2u
#define AF_CLOSED	0x4u
#define AF_QUEUED	0x8u	/* on the accept queue */
#define AF_READY	0x10u	/* on the ready list */
#define AF_WANTW	0x20u	/* write said -EAGAIN: report WRITABLE */
#define AF_NODELAY	0x40u

/* ------------------------------------------------------------ workers */

struct l3x_worker {
	struct l3x_stack *st;
	struct l3x_ring *to_app;	/* streams with news, engine -> app */
	struct l3x_ring *to_eng;	/* streams with requests, app -> engine */
	int efd;			/* eventfd */
	_Atomic uint32_t armed;		/* app is about to sleep: kick it */
	_Atomic uint32_t kicked;	/* eventfd written, not yet drained */
	_Atomic uint32_t closing;	/* app closed the handle */
	_Atomic uint64_t accepted;	/* app: streams accepted */

	/* engine only */
	uint64_t offered;		/* streams pushed as new */
	struct l3x_stream *streams;	/* all streams of this worker */
	struct l3x_stream *zombies;	/* released, still in to_app */
	struct l3x_stream *lingering;	/* closing, data not yet in lwIP */
	struct l3x_stream *todo;	/* to finish outside lwIP callbacks */
	bool pushed;			/* pushed to to_app this turn */
	unsigned slot;

	/* app only */
	struct l3x_stream *acc_head, *acc_tail;
	struct l3x_stream *ready_head, *ready_tail;
	struct l3x_stream *udp_head, *udp_tail;	/* UDP accept queue */
	struct l3x_stream *bound;		/* bound sockets */
};

/* ------------------------------------------------------------ the stack */

/* Bound UDP sockets: an immutable array replaced whole under wlock. */
struct l3x_bound_set {
	struct l3x_retired retired;	/* first: see epoch.h */
	size_t n;
	struct l3x_stream *s[];
};

struct l3x_stats_atomic {
	_Atomic uint64_t v[sizeof(struct l3x_stack_stats) / sizeof(uint64_t)];
};

struct l3x_stack {
	enum l3x_source source;
	struct l3x_link *link;
	struct netif netif;
	struct tcp_pcb *listener;

	/* limits */
	uint32_t max_flows;
	uint64_t max_memory;
	uint32_t rx_buf, tx_buf, backlog, linger_ms, mtu;
	int cpu;

	/* workers: slots written by the control side under wlock, read by
	 * the engine through nworkers (acquire) */
	pthread_mutex_t wlock;
	struct l3x_worker *_Atomic workers[L3X_MAX_WORKERS];
	unsigned rr;			/* engine: next worker for a flow */
	uint32_t ring_size;

	/* engine thread */
	pthread_t thread;
	bool started;
	_Atomic bool stop;
	struct l3x_epoch epoch;		/* turns, and what waits for them */
	bool in_turn;
	uint32_t next_linger_check;
	uint64_t buffered;		/* engine's count of buffered bytes */
	uint64_t streams_alive;

	/* what this stack added, and the software matcher for the TUN and
	 * callback sources (lib/rules.c) */
	struct l3x_ruleset *rules;

	/* UDP */
	struct udp_pcb *udp_pcb;
	uint32_t udp_idle_ms, udp_queue;
	struct l3x_stream **udp_tab;	/* flow table, chained */
	uint32_t udp_mask;
	struct l3x_stream *lru_head, *lru_tail;
	struct l3x_bound_set *_Atomic bound;	/* replaced under wlock */

	/* XDP source */
	struct l3x_steer *steer;

	/* counters: the engine writes (relaxed), anyone reads */
	struct l3x_stats_atomic stats;
};

/* Counter index of a struct l3x_stack_stats field. */
#define STAT(field) (offsetof(struct l3x_stack_stats, field) / sizeof(uint64_t))

static inline void stat_add(struct l3x_stack *st, size_t idx, uint64_t n)
{
	/* Relaxed: a counter; only the engine thread writes it. */
	atomic_store_explicit(&st->stats.v[idx],
			      atomic_load_explicit(&st->stats.v[idx],
						   memory_order_relaxed) + n,
			      memory_order_relaxed);
}
#define STAT_ADD(st, field, n) stat_add((st), STAT(field), (n))
#define STAT_INC(st, field) stat_add((st), STAT(field), 1)

/* A link's output: @len bytes sent (@err 0) or dropped. */
static inline void l3x_count_tx(struct l3x_stack *st, int err, size_t len)
{
	if (err) {
		STAT_INC(st, tx_dropped);
		return;
	}
	STAT_INC(st, tx_packets);
	STAT_ADD(st, tx_bytes, len);
}

/* engine.c */
L3X_HIDDEN extern struct l3x_stack *l3x_the_stack;
L3X_HIDDEN struct l3x_worker *l3x_pick_worker(struct l3x_stack *st);
/* Queue @s on its worker's app ring (once), to report news. */
L3X_HIDDEN void l3x_engine_notify(struct l3x_stream *s);

/* tcp.c */
L3X_HIDDEN int l3x_tcp_listen(struct l3x_stack *st);
L3X_HIDDEN void l3x_tcp_serve(struct l3x_stream *s);	/* app requests */
L3X_HIDDEN void l3x_tcp_reap(struct l3x_stack *st);	/* zombies, linger */
L3X_HIDDEN void l3x_tcp_worker_gone(struct l3x_worker *w);
L3X_HIDDEN void l3x_tcp_close_all(struct l3x_stack *st);

/* Both sides let go: free (or keep as a zombie while the app ring holds
 * it). Engine thread. */
L3X_HIDDEN void l3x_stream_release(struct l3x_stack *st, struct l3x_stream *s);
L3X_HIDDEN void l3x_stream_link(struct l3x_stream *s);

/* udp.c */
L3X_HIDDEN int l3x_udp_listen(struct l3x_stack *st);
L3X_HIDDEN void l3x_udp_serve(struct l3x_stream *s);
L3X_HIDDEN void l3x_udp_reap(struct l3x_stack *st);
L3X_HIDDEN void l3x_udp_forget(struct l3x_stack *st, struct l3x_stream *s);
L3X_HIDDEN void l3x_udp_close_all(struct l3x_stack *st);
/* Replace the bound set (caller holds wlock); the old one is retired. */
L3X_HIDDEN int l3x_udp_bound_swap(struct l3x_stack *st, struct l3x_stream *add,
				  struct l3x_stream *del);

/* stream.c */
L3X_HIDDEN void l3x_worker_free(struct l3x_worker *w);

#endif /* L3X_ENGINE_H */
