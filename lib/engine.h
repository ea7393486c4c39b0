/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * engine.h - the termination engine, internal: the stack object
 * (lib/engine.c) and what the files below it share with it. From the top:
 *   engine.c        the stack: open/close, the turn loop, counters; opens
 *                   the source (link.h), the steering, the ruleset, and
 *                   wires the protocols into the flow layer
 *   tcp.c, udp.c    the protocols: lwIP's callbacks and the requests of
 *                   their flows; they call flow.c, lwIP and helpers
 *                   (epoch.c), never each other nor engine.c
 *   flow.c          flows and workers on the engine side (flow.h)
 * and beside them the application side of the same, on the workers'
 * threads: worker.c above udp_sock.c above stream.c (udp_sock.c binds
 * through udp.c). tests/unit/lib_layers.sh checks that no file of lib/
 * imports one above it.
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
#include "flow.h"
#include "gro.h"
#include "l3x_internal.h"
#include "link.h"
#include "sources.h"
#include "syncookie.h"

#define L3X_TCP_WND_MAX (1024 * 1024) /* lwipopts.h TCP_WND */

/* UDP flows evicted (gone for the wire) that the application has not yet
 * closed, at most: they are outside max_udp_flows but still in the rings. */
#define L3X_UDP_EVICTED_MAX 256

/* ------------------------------------------------------------ the stack */

/* Bound UDP sockets: an immutable array replaced whole under wlock. */
struct l3x_bound_set {
	struct l3x_retired retired; /* first: see epoch.h */
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
	uint32_t tcp_bucket_max; /* PCBs in a chain of lwIP's hash */

	/* limits */
	uint32_t max_flows;
	uint32_t max_kind[2]; /* budgets: max_tcp_flows, max_udp_flows */
	uint32_t per_source, per_source64; /* caps; 0: none */
	uint64_t max_memory;
	uint64_t mem_adm; /* max_memory less headroom: kept below it */
	bool mem_pressed; /* under memory pressure (flow.c) */
	uint32_t ooo_max_bytes, ooo_max_segs; /* per stream */
	/* SYN flood defence (tcp.c) */
	uint32_t max_half_open;
	bool defer_accept;
	uint32_t request_timeout_ms;
	enum l3x_syncookies syncookies;
	struct l3x_cookie_keys cookie_keys;
	uint32_t cookie_sent_ms; /* sys_now() of the last cookie sent */
	bool cookie_sent;	 /* one was ever sent */
	size_t seg_cost;	 /* what one lwIP TCP segment costs */
	uint32_t rx_buf, tx_buf, backlog, linger_ms, mtu;
	uint32_t max_time_wait; /* TIME_WAIT PCBs at most (tcp.c) */
	uint32_t ack_coalesce;	/* in-order segments per ACK in a burst */
	bool gro_on;		/* receive coalescing (lib/gro.c) */
	struct l3x_gro gro;
	unsigned gro_segs; /* segments in the one a link replays */
	/* lifetimes (tcp.c): ms, 0 none */
	uint32_t tcp_idle_ms, keepalive_ms, keepalive_intvl_ms, keepalive_cnt,
		persist_ms;
	int cpu;

	/* workers: slots written under wlock by the threads that open
	 * workers, read by the engine slot by slot (acquire) */
	pthread_mutex_t wlock;
	struct l3x_worker *_Atomic workers[L3X_MAX_WORKERS];
	unsigned rr; /* engine: next worker for a flow */
	uint32_t ring_size;
	const struct l3x_flow_ops *flow_ops[2]; /* by enum l3x_flow_kind */

	/* engine thread */
	pthread_t thread;
	bool started;
	_Atomic bool stop;
	/* adaptive polling (engine.c engine_main): the engine sleeps after
	 * idle_spins turns without work, on the link's fds and efd, which
	 * the application's threads write when they post work for it while
	 * it sleeps (l3x_engine_wake) */
	enum l3x_poll poll;
	uint32_t idle_spins;
	bool idle_yield;	   /* sched_yield() on each turn without work */
	int efd;		   /* eventfd */
	_Atomic uint32_t sleeping; /* about to sleep or asleep: wake it */
	struct l3x_epoch epoch;	   /* turns, and what waits for them */
	uint32_t next_reap;	   /* sys_now() ms: lingering, zombies */
	uint64_t buffered;	   /* engine's count of buffered bytes */
	uint64_t streams_alive;
	/* flow budgets (flow.c), by enum l3x_flow_kind: flows counted in
	 * max_kind, and flows still alive but let out of it early (UDP
	 * flows evicted, until the application closes them) */
	uint32_t flows_open[2], flows_outside[2];
	struct l3x_sources *sources; /* per-source caps; NULL: none */
	/* TCP receive memory (tcp.c): streams with a staging buffer to look
	 * at by the end of the turn; streams whose window memory holds
	 * back, looked at every WND_PASS_MS */
	struct l3x_stream *staged, *clamped;
	uint32_t next_wnd_pass; /* sys_now() ms */

	/* what this stack added, and the software matcher for the TUN and
	 * callback sources (lib/rules.c) */
	struct l3x_ruleset *rules;

	/* UDP */
	struct udp_pcb *udp_pcb;
	uint32_t udp_idle_ms, udp_queue;
	struct l3x_stream **udp_tab; /* flow table, chained */
	uint32_t udp_mask;
	uint32_t udp_bucket_max; /* flows in a chain of udp_tab */
	/* flows in activity order: never answered, answered (udp.c) */
	struct {
		struct l3x_stream *head, *tail;
	} udp_idle[2];
	/* UDP requests (defer_accept) and dropped ones kept to silence
	 * retries, in deadline order (all wait request_timeout_ms) */
	struct l3x_stream *udp_rq_head, *udp_rq_tail;
	struct l3x_bound_set *_Atomic bound; /* replaced under wlock */

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
	atomic_store_explicit(
		&st->stats.v[idx],
		atomic_load_explicit(&st->stats.v[idx], memory_order_relaxed) +
			n,
		memory_order_relaxed);
}
#define STAT_ADD(st, field, n) stat_add((st), STAT(field), (n))
#define STAT_INC(st, field)    stat_add((st), STAT(field), 1)

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

/* tcp.c */
L3X_HIDDEN extern const struct l3x_flow_ops l3x_tcp_ops;
L3X_HIDDEN int l3x_tcp_listen(struct l3x_stack *st);
/* Stack close: every pcb lwIP still has goes, the listener too. */
L3X_HIDDEN void l3x_tcp_close_all(struct l3x_stack *st);
/* Once a turn: lwIP's TCP counters (patch 0010) into the stack's. */
L3X_HIDDEN void l3x_tcp_publish(struct l3x_stack *st);
/* End of a turn: publish the staging buffers of the readers that wait;
 * now and then, reopen the windows memory held back. */
L3X_HIDDEN void l3x_tcp_turn_end(struct l3x_stack *st);
/* Around the link's receive burst: ACK coalescing (patch 0061). */
L3X_HIDDEN void l3x_tcp_burst_begin(void);
L3X_HIDDEN void l3x_tcp_burst_end(void);
/* Connections in SYN_RCVD now (max_half_open counts them). */
L3X_HIDDEN uint32_t l3x_tcp_half_open(const struct l3x_stack *st);

/* udp.c */
L3X_HIDDEN extern const struct l3x_flow_ops l3x_udp_ops;
L3X_HIDDEN int l3x_udp_listen(struct l3x_stack *st);
/* Once a turn: expire the flows idle for udp_idle_ms. */
L3X_HIDDEN void l3x_udp_reap(struct l3x_stack *st);
L3X_HIDDEN void l3x_udp_close_all(struct l3x_stack *st);
/* The flow table's hash of a key (for tests: keys differ by process). */
L3X_HIDDEN uint32_t l3x_udp_flow_hash(uint8_t family, const uint8_t *ca,
				      uint16_t cp, const uint8_t *da,
				      uint16_t dp);
/* Replace the bound set (caller holds wlock); the old one is retired.
 * Application threads. */
L3X_HIDDEN int l3x_udp_bound_swap(struct l3x_stack *st, struct l3x_stream *add,
				  struct l3x_stream *del);

#endif /* L3X_ENGINE_H */
