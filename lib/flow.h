/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * flow.h - flows (TCP streams, UDP flows and bound UDP sockets, all one
 * struct l3x_stream) and workers, internal: their state, shared by the
 * engine side (lib/flow.c and the protocols lib/tcp.c, lib/udp.c) and the
 * application side (lib/worker.c, lib/stream.c, lib/udp_sock.c).
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
#ifndef L3X_FLOW_H
#define L3X_FLOW_H

#include <pthread.h>
#include <stdatomic.h>

#include "lwip/pbuf.h"
#include "lwip/tcp.h"

#include "l3x_internal.h"
#include "ring.h"

#define L3X_MAX_WORKERS 64

/* ------------------------------------------------------------ streams */

/* A chunk of written data, app -> engine. */
struct l3x_chunk {
	struct l3x_chunk *next; /* atomic: written by the app */
	uint32_t len;
	uint32_t off; /* engine: bytes given to lwIP */
	uint8_t data[];
};

/* Stream state bits, engine -> app (s->state). */
#define ST_EOF	 0x1u /* FIN received: after the data, read gives 0 */
#define ST_ERROR 0x2u /* reset or failed: s->err */
#define ST_GONE	 0x4u /* the engine has let go of the pcb */

/* Requests, app -> engine (s->req). */
#define REQ_SHUTDOWN 0x1u
#define REQ_CLOSE    0x2u
#define REQ_ABORT    0x4u
#define REQ_NODELAY  0x8u
#define REQ_DELAY    0x10u
#define REQ_RXBUF    0x20u
#define REQ_DATA     0x40u	 /* read or wrote: reclaim, reopen, push */
#define REQ_IDLE     0x80u	 /* L3X_STREAM_IDLE_MS: idle_req */
#define REQ_ACCEPT   0x100u	 /* request answered: send the SYN-ACK */
#define REQ_DROP     0x200u	 /* request answered: drop, app done */
#define REQ_QUEUED   0x80000000u /* in the worker's engine ring */

struct l3x_stream {
	/* ---- set at creation, then read-only */
	struct l3x_worker *w;
	uint8_t kind;			/* enum l3x_flow_kind */
	bool bound;			/* UDP: a bound socket, no client */
	uint8_t family;			/* 4 or 6 */
	uint16_t client_port, dst_port; /* host order */
	uint32_t zone; /* UDP: VLAN IDs (lib/link_xsk.c), 0 untagged */
	uint8_t client_addr[16], dst_addr[16];
	/* TCP request (deferred accept): the SYN's options, as sent */
	bool request;	    /* made a request: the SYN-ACK waits */
	uint8_t syn_wscale; /* 0xff none */
	uint8_t syn_sack;   /* SACK permitted */
	uint8_t syn_ts;	    /* timestamps */
	uint16_t syn_mss;   /* 0 none */
	uint32_t syn_tsval; /* with syn_ts */

	/* ---- shared */
	struct pbuf *_Atomic rx_first;	    /* engine: first chain, once */
	struct l3x_chunk *_Atomic tx_first; /* app: first chunk, once */
	_Atomic uint32_t state;		    /* ST_*, engine sets */
	_Atomic int err;		    /* -errno with ST_ERROR */
	_Atomic uint64_t rx_read;	    /* app: bytes read */
	_Atomic uint64_t rx_done;	    /* app: chains read to their end */
	_Atomic uint64_t tx_acked;	    /* engine: bytes the client acked */
	_Atomic uint32_t req;	     /* REQ_*, app sets, engine takes all;
				      * REQ_QUEUED guards the ring push, so
				      * a request and its push are one
				      * atomic step and the app need not
				      * touch the stream after it */
	_Atomic uint32_t rx_buf_req; /* with REQ_RXBUF */
	_Atomic uint32_t idle_req;   /* with REQ_IDLE: ms, 0 never */
	_Atomic uint32_t want_write; /* app saw -EAGAIN on write */
	_Atomic uint8_t in_app_q;    /* in the worker's app ring */

	/* ---- engine thread only */
	struct tcp_pcb *pcb;
	struct pbuf *rx_last;	 /* last chain appended */
	struct pbuf *rx_reclaim; /* oldest chain not freed */
	struct l3x_way *way;	 /* UDP flow: its way back (lib/way.h) */
	struct l3x_way **ways;	 /* bound socket: its last clients' ways */
	uint32_t ways_mask, ways_next;
	uint64_t rx_reclaimed; /* chains freed */
	uint64_t rx_delivered; /* bytes appended */
	uint64_t rx_recved;    /* bytes the window reopened for */
	uint32_t rx_wnd_owed;  /* window to open as memory allows */
	uint32_t rx_buf;
	struct l3x_chunk *tx_cur;	    /* chunk being sent */
	uint64_t tx_queued;		    /* bytes handed to lwIP */
	uint32_t eflags;		    /* EF_* */
	uint32_t linger_deadline;	    /* sys_now() ms, with EF_LINGER */
	struct l3x_stream *e_prev, *e_next; /* the worker's streams */
	struct l3x_stream *z_next;	    /* zombie or linger list */
	struct l3x_stream **z_pprev;	    /* linger list only */
	struct l3x_stream *t_next;	    /* todo list */
	struct l3x_stream *rq_next;	    /* worker's pending requests */
	struct l3x_stream **rq_pprev;
	uint32_t rq_deadline; /* sys_now() ms, with EF_REQUEST */
	uint32_t req_kept;    /* REQ_* held until the handshake is done */
	/* UDP */
	struct l3x_stream *h_next;		/* flow table chain */
	struct l3x_stream *lru_prev, *lru_next; /* idle order */
	uint32_t last_active;			/* sys_now() ms */
	uint64_t rx_dgrams;			/* datagrams delivered */
	uint64_t tx_sent;			/* datagrams taken */
	/* UDP request (defer_accept): the first datagram's IP header, UDP
	 * header and, for IPv6, as much data as an ICMPv6 error quotes */
	struct l3x_stream *urq_prev, *urq_next; /* stack's request list */
	uint8_t *rq_quote;
	uint16_t rq_quote_len;
	/* memory: what is allocated for what this flow received and the
	 * application has not yet let go (chains, the staging buffer) */
	uint64_t rx_charge;
	/* TCP: small segments copied here, published at the end of the
	 * turn once the reader has caught up, or when full (tcp.c) */
	struct pbuf *rx_stage;
	uint32_t rx_stage_fill;
	struct l3x_stream *sg_next, **sg_pprev; /* stack's staged list */
	struct l3x_stream *cl_next, **cl_pprev; /* stack's clamped list */

	/* ---- owner (application) thread only */
	struct pbuf *rx_chain; /* chain being read */
	struct pbuf *rx_p;     /* pbuf of it being read */
	uint32_t rx_off;
	uint64_t rx_nread, rx_ndone;
	struct l3x_chunk *tx_last;
	uint64_t tx_written;
	uint32_t tx_buf;
	uint32_t rx_buf_app;  /* L3X_STREAM_RX_BUF as last set */
	uint32_t idle_ms_app; /* L3X_STREAM_IDLE_MS: ms, 0 never */
	uint32_t aflags;      /* AF_* */
	void *user;
	struct l3x_stream *accept_next;	    /* accept queue */
	struct l3x_stream *r_prev, *r_next; /* ready list */
	struct l3x_stream *b_next;	    /* worker's bound sockets */
};

/* eflags */
#define EF_APP_DONE	0x1u /* the app closed or aborted it */
#define EF_CLOSING	0x2u /* close requested: flush, then FIN */
#define EF_SHUT_PENDING 0x4u /* shutdown requested: flush, then FIN */
#define EF_SHUT_DONE	0x8u
#define EF_LINGER	0x10u	 /* on the linger list */
#define EF_ZOMBIE	0x20u	 /* waiting for the app ring to let go */
#define EF_TODO		0x40u	 /* on the todo list */
#define EF_RELEASE	0x80u	 /* release when taken off the todo list */
#define EF_HASHED	0x100u	 /* UDP: in the flow table and idle list */
#define EF_LINKED	0x200u	 /* on the worker's stream list */
#define EF_BUDGET	0x400u	 /* counted in its kind's flow budget */
#define EF_SOURCED	0x800u	 /* counted in its source's flows */
#define EF_ANSWERED	0x1000u	 /* UDP: sent a datagram (its idle list) */
#define EF_OUTSIDE	0x2000u	 /* let out of its budget, still alive */
#define EF_STAGED	0x4000u	 /* TCP: on the stack's staged list */
#define EF_CLAMPED	0x8000u	 /* TCP: window held back for memory */
#define EF_STAGE_BIG	0x10000u /* TCP: next staging buffer the big one */
#define EF_REQUEST	0x20000u /* a request not yet answered */
#define EF_SYNACK	0x40000u /* TCP: request accepted, handshake not done */
#define EF_HUSH                                                                \
	0x80000u /* UDP: a dropped request, kept to drop                       \
		  * the client's retries for a while */

/* aflags */
#define AF_ACCEPTED 0x1u
#define AF_SHUT	    0x2u
#define AF_CLOSED   0x4u
#define AF_QUEUED   0x8u  /* on the accept queue */
#define AF_READY    0x10u /* on the ready list */
#define AF_WANTW    0x20u /* write said -EAGAIN: report WRITABLE */
#define AF_NODELAY  0x40u
#define AF_ANSWERED 0x80u /* request answered (accept) */

/* ------------------------------------------------------------ workers */

struct l3x_worker {
	struct l3x_stack *st;
	struct l3x_ring *to_app;   /* streams with news, engine -> app */
	struct l3x_ring *to_eng;   /* streams with requests, app -> engine */
	int efd;		   /* eventfd */
	_Atomic uint32_t armed;	   /* app is about to sleep: kick it */
	_Atomic uint32_t kicked;   /* eventfd written, not yet drained */
	_Atomic uint32_t closing;  /* app closed the handle */
	_Atomic uint64_t accepted; /* app: streams accepted */

	/* engine only */
	uint64_t offered;	      /* streams pushed as new */
	struct l3x_stream *streams;   /* all streams of this worker */
	struct l3x_stream *zombies;   /* released, still in to_app */
	struct l3x_stream *lingering; /* closing, data not yet in lwIP */
	struct l3x_stream *todo;      /* to finish outside lwIP callbacks */
	struct l3x_stream *requests;  /* TCP requests not yet answered */
	bool pushed;		      /* pushed to to_app this turn */
	unsigned slot;

	/* app only */
	struct l3x_stream *acc_head, *acc_tail;
	struct l3x_stream *ready_head, *ready_tail;
	struct l3x_stream *udp_head, *udp_tail; /* UDP accept queue */
	struct l3x_stream *bound;		/* bound sockets */
};

/* ------------------------------------------------------------ flow ops */

struct l3x_stack;

/*
 * What the flow layer asks of the protocol of a flow's kind (lib/tcp.c,
 * lib/udp.c). The engine wires one table per kind at open
 * (st->flow_ops[kind]); flow.c never calls a protocol by name, as lwIP's
 * core reaches a driver only through its netif. Engine thread.
 */
struct l3x_flow_ops {
	/* serve the requests the application made on @s (REQ_*) */
	void (*serve)(struct l3x_stream *s);
	/* optional: @s came off its worker's todo list */
	void (*todo)(struct l3x_stream *s);
	/* optional: @w's streams that wait to close, every REAP_MS */
	void (*linger)(struct l3x_worker *w, uint32_t now);
	/* @s's worker was closed: let go of whatever the protocol holds
	 * (a closing stream goes to lwIP alone, the rest is reset) */
	void (*gone)(struct l3x_stream *s);
	/* optional: @s is about to be freed; free what the protocol keeps
	 * for it beyond the data lists */
	void (*release)(struct l3x_stream *s);
};

/* ------------------------------------------------------------ flow.c */

/* A new flow of @kind on @w, zeroed but for its worker and kind; NULL when
 * out of memory. l3x_flow_offer() then puts it on the worker, counted,
 * as new: the application will accept it. Engine thread. */
L3X_HIDDEN struct l3x_stream *l3x_flow_new(struct l3x_worker *w, uint8_t kind);
L3X_HIDDEN void l3x_flow_offer(struct l3x_stream *s);
/* May a new flow of @kind come from client @addr (@family 4 or 6)? 0, or
 * -ENOSPC its kind's budget (max_tcp_flows, max_udp_flows) is full,
 * -EDQUOT a per-source cap is reached, -EBUSY the per-source table's
 * bucket is full. Nothing is taken: l3x_flow_offer() counts the flow. */
L3X_HIDDEN int l3x_flow_admit(struct l3x_stack *st, uint8_t kind,
			      uint8_t family, const uint8_t *addr);
/* Let @s out of its budget and its source's count before it is released
 * (a UDP flow evicted: gone for the wire, still the application's until
 * it closes it); counted in flows_outside meanwhile. */
L3X_HIDDEN void l3x_flow_unbudget(struct l3x_stream *s);
/* Memory (lib/mem.c) against max_memory. Past mem_adm (max_memory less
 * a headroom for what is on its way) nothing more is kept: full. From
 * half of max_memory on (until it falls below three eighths of it),
 * pressure: each flow is held to a share, a quarter of max_memory divided
 * among the TCP streams, an eighth among the UDP flows. No floor: the
 * shares together must fit, however many flows there are, or the flows
 * that hold nothing would be starved by those that hold their floor. */
L3X_HIDDEN bool l3x_flow_mem_full(const struct l3x_stack *st);

/*
 * l3x_flow_way() - keep the way back of the packet being input now (the
 * link's: lib/way.h) for the flow of @proto from client @ca:@cp to @da:@dp
 * (@family 4 or 6, addresses of 16 bytes, zero-padded). 0 and in *@way a
 * reference to drop with l3x_way_put() (NULL on a link without layer 2);
 * or -ENOSPC, -ENOMEM, counted in way_refused: the flow must be refused,
 * as its replies would have no way. Engine thread, from within input.
 */
struct l3x_way;
L3X_HIDDEN int l3x_flow_way(struct l3x_stack *st, uint8_t family, uint8_t proto,
			    const uint8_t *ca, uint16_t cp, const uint8_t *da,
			    uint16_t dp, struct l3x_way **way);
L3X_HIDDEN bool l3x_flow_mem_pressure(struct l3x_stack *st);
L3X_HIDDEN uint64_t l3x_flow_mem_share(const struct l3x_stack *st,
				       uint8_t kind);
/* What the pbufs of chain @p cost, as allocated. */
L3X_HIDDEN size_t l3x_flow_pbuf_cost(const struct pbuf *p);
/* On its worker's list of streams (bound sockets join it this way). */
L3X_HIDDEN void l3x_flow_link(struct l3x_stream *s);
/* The chunk the app wrote that is to be sent from next: the current one
 * until its off reaches len + @past (TCP 0; UDP 1, so that an empty
 * datagram is sent too), then the one linked after it, the spent one
 * freed. NULL when all that was written is spent. */
L3X_HIDDEN struct l3x_chunk *l3x_flow_tx_next(struct l3x_stream *s,
					      uint32_t past);
/* Queue @s on its worker's app ring (once), to report news. */
L3X_HIDDEN void l3x_flow_notify(struct l3x_stream *s);
/* Finish @s later, outside lwIP's callbacks (l3x_flow_ops.todo). */
L3X_HIDDEN void l3x_flow_todo(struct l3x_stream *s);
/* Both sides let go: free @s, or keep it as a zombie while the app ring
 * still holds it. */
L3X_HIDDEN void l3x_flow_release(struct l3x_stream *s);
/* The next open worker, round-robin, with room in its accept backlog;
 * NULL when none (the new flow is refused). */
L3X_HIDDEN struct l3x_worker *l3x_flow_pick_worker(struct l3x_stack *st);

/* Once a turn: serve every worker's requests, let closed workers go. */
L3X_HIDDEN int l3x_flow_serve(struct l3x_stack *st);
/* Once a turn: todo lists; every REAP_MS lingering streams and zombies. */
L3X_HIDDEN void l3x_flow_reap(struct l3x_stack *st);
/* The engine is about to sleep: true if a worker posted work meanwhile (a
 * request in its engine ring, or its close). After a seq_cst fence. */
L3X_HIDDEN bool l3x_flow_pending(struct l3x_stack *st);
/*
 * l3x_engine_wake() - an application thread has posted work for the
 * engine (a request in a worker's ring, a worker closed), or the control
 * thread stops it: wake the engine thread if it sleeps (engine.c
 * engine_sleep). Any thread.
 */
L3X_HIDDEN void l3x_engine_wake(struct l3x_stack *st);
/* End of a turn: wake the workers that sleep and got news. */
L3X_HIDDEN void l3x_flow_kick(struct l3x_stack *st);
/* Free a worker's rings, eventfd and memory (not its streams). */
L3X_HIDDEN void l3x_worker_free(struct l3x_worker *w);

/* ------------------------------------------------ application side */

/* stream.c: what every handle shares. Owner thread of its worker. */
struct sockaddr;
/* Ask the engine for @bits (REQ_*) through the worker's doorbell ring.
 * After it, @s may be freed if @bits closes or aborts it. */
L3X_HIDDEN void l3x_stream_request(struct l3x_stream *s, uint32_t bits);
/* The application is done with @s: off the ready list, what was read
 * published, then @req (REQ_CLOSE or REQ_ABORT). */
L3X_HIDDEN void l3x_stream_done(struct l3x_stream *s, uint32_t req);

/* The answer @answer to the request @s (accept, refuse, drop), @kind_ok
 * saying the handle is of the call's kind: 0, or -EINVAL, -EALREADY, or
 * for an accept the error that ended the request already. After a refuse
 * or a drop @s may be gone. Application thread. */
L3X_HIDDEN int l3x_request_answer(struct l3x_stream *s, bool kind_ok,
				  enum l3x_answer answer);
L3X_HIDDEN void l3x_stream_ready_add(struct l3x_worker *w,
				     struct l3x_stream *s);
L3X_HIDDEN void l3x_stream_ready_del(struct l3x_worker *w,
				     struct l3x_stream *s);
/* The rx chain after @p, once the engine has linked it. */
L3X_HIDDEN struct pbuf *l3x_stream_rx_next(struct pbuf *p);
/* TCP: bytes wait to be read. */
L3X_HIDDEN bool l3x_stream_readable(struct l3x_stream *s);
/* Link written chunk @c for the engine; the credit left under tx_buf. */
L3X_HIDDEN void l3x_stream_tx_append(struct l3x_stream *s, struct l3x_chunk *c);
L3X_HIDDEN uint64_t l3x_stream_tx_credit(struct l3x_stream *s);
/* A sockaddr_in or sockaddr_in6 for @family, @a, @port into @sa of @sz
 * bytes; its length, or -ENOSPC. */
L3X_HIDDEN int l3x_sockaddr_fill(uint8_t family, const uint8_t *a,
				 uint16_t port, struct sockaddr *sa, size_t sz);

/* udp_sock.c: a datagram waits to be received. */
L3X_HIDDEN bool l3x_udp_readable(struct l3x_stream *s);

#endif /* L3X_FLOW_H */
