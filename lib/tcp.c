/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * tcp.c - the engine side of TCP streams: one listener that matches every
 * destination (lib/lwip/patches), lwIP's callbacks, and the requests the
 * application sends through its worker (l3x_tcp_ops, which lib/flow.c
 * calls). A protocol leaf: it calls lib/flow.c and lwIP, nothing else.
 * Engine thread only.
 *
 * A stream's life is flow.c's: it ends when both the app (EF_APP_DONE)
 * and lwIP (the pcb closed, aborted or failed: s->pcb NULL) let go.
 *
 * Flow control. Receive: lwIP's window reopens (tcp_recved) only for bytes
 * the app has read, so a reader that stops slows its client and nothing
 * else. Send: the app may have at most tx_buf bytes written and not yet
 * acknowledged (stream.c checks; tcp_sent returns the credit).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/memp.h"
#include "lwip/priv/memp_priv.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"

#include "engine.h"
#include "hash.h"
#include "l3x_hooks.h"
#include "mem.h"
#include "way.h"

static void pbuf_set_qnext(struct pbuf *p, struct pbuf *next)
{
	/* Release: pairs with the acquire load in stream.c
	 * l3x_stream_rx_next(): the chain's contents are written before the
	 * app can reach it. */
	__atomic_store_n(&p->l3x_qnext, next, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------ requests */

/*
 * Deferred accept (opts.defer_accept). A SYN the verdict defers makes its
 * half-open PCB (patch 0014) and a stream offered at once as a request,
 * the PCB's SYN-ACK unsent. The request waits on its worker's list until
 * the app answers (tcp_serve: REQ_ACCEPT sends the SYN-ACK, REQ_ABORT
 * resets, REQ_DROP and REQ_CLOSE abandon it silently) or its deadline
 * passes (tcp_linger). lwIP then completes the handshake as its own and
 * calls on_accept(), which wires the stream up as any other. The PCB
 * counts in the listener's half-open (max_half_open) until then.
 */
static void request_del(struct l3x_stream *s)
{
	if (!(s->eflags & EF_REQUEST))
		return;
	*s->rq_pprev = s->rq_next;
	if (s->rq_next)
		s->rq_next->rq_pprev = s->rq_pprev;
	s->eflags &= ~EF_REQUEST;
	STAT_ADD(s->w->st, tcp_requests_pending, (uint64_t)-1);
}

static void request_add(struct l3x_stack *st, struct l3x_stream *s)
{
	struct l3x_worker *w = s->w;

	s->eflags |= EF_REQUEST;
	s->rq_deadline = sys_now() + st->request_timeout_ms;
	s->rq_next = w->requests;
	if (s->rq_next)
		s->rq_next->rq_pprev = &s->rq_next;
	s->rq_pprev = &w->requests;
	w->requests = s;
	STAT_INC(st, tcp_requests_pending);
}

/* ------------------------------------------------------------ abort */

static void detach(struct tcp_pcb *pcb)
{
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
}

/* Reset the connection (outside lwIP callbacks, or a callback that then
 * returns ERR_ABRT). */
static void stream_abort(struct l3x_stack *st, struct l3x_stream *s)
{
	if (!s->pcb)
		return;
	detach(s->pcb);
	tcp_abort(s->pcb);
	s->pcb = NULL;
	STAT_INC(st, tcp_aborted);
	atomic_store_explicit(&s->err, -ECONNABORTED, memory_order_relaxed);
	/* Release: err before the state bit that announces it. */
	atomic_fetch_or_explicit(&s->state, ST_ERROR | ST_GONE,
				 memory_order_release);
}

/* ------------------------------------------------------------ rx */

/*
 * Received data costs what is allocated for it (mem.h), charged to its
 * stream (rx_charge) from the moment lwIP hands it over until the reader
 * is done with it. A segment arrives in a buffer of its own, headers and
 * pbuf included: for a full segment a few percent more than its bytes, for
 * a 1-byte segment a hundred times more. So a chain that costs more than
 * a quarter over its bytes is copied into the stream's staging buffer and
 * freed. A staging buffer is one block of STAGE_SMALL bytes, or once one
 * has filled up, of STAGE_BIG (its bytes at a few percent over).
 *
 * The staging buffer is the engine's until it is published: then, like
 * any chain, it is linked for the reader (engine.h) and never changes. It
 * is published when full, before a chain that comes after it, with a FIN
 * or an error, and at the end of a turn once the reader has read all that
 * was published before (l3x_tcp_turn_end): so a reader that keeps up gets
 * every byte within the turn, and one that does not gets full buffers.
 * Either way a stream holds at most two partial buffers: the one being
 * filled, and one published to a reader that had caught up.
 */
#define STAGE_SMALL 256
#define STAGE_BIG   2048
#define STAGE_CAP(block)                                                       \
	((block) - sizeof(size_t) - LWIP_MEM_ALIGN_SIZE(sizeof(struct pbuf)))

/* Worth copying: the chain costs more than a quarter over its bytes. */
static bool rx_costly(const struct pbuf *p, size_t cost)
{
	return cost > (size_t)p->tot_len + p->tot_len / 4;
}

/* Link chain @p (charged already) for the reader: from here on it is the
 * reader's to read and nothing in it changes. */
static void rx_link(struct l3x_stream *s, struct pbuf *p)
{
	p->l3x_qnext = NULL;
	if (!s->rx_last) {
		s->rx_reclaim = p;
		/* Release: pairs with the acquire in stream.c rx_seek(). */
		atomic_store_explicit(&s->rx_first, p, memory_order_release);
	} else {
		pbuf_set_qnext(s->rx_last, p);
	}
	s->rx_last = p;
	if (s->eflags & EF_APP_DONE)
		l3x_flow_todo(s); /* data after close: try_close() resets */
	else
		l3x_flow_notify(s);
}

static void staged_del(struct l3x_stream *s)
{
	if (!(s->eflags & EF_STAGED))
		return;
	*s->sg_pprev = s->sg_next;
	if (s->sg_next)
		s->sg_next->sg_pprev = s->sg_pprev;
	s->eflags &= ~EF_STAGED;
}

static void staged_add(struct l3x_stack *st, struct l3x_stream *s)
{
	if (s->eflags & EF_STAGED)
		return;
	s->eflags |= EF_STAGED;
	s->sg_next = st->staged;
	if (s->sg_next)
		s->sg_next->sg_pprev = &s->sg_next;
	s->sg_pprev = &st->staged;
	st->staged = s;
}

/* The staging buffer, as full as it is, to the reader. */
static void stage_publish(struct l3x_stream *s)
{
	struct pbuf *p = s->rx_stage;

	if (!p)
		return;
	if (s->rx_stage_fill < p->len)
		s->eflags &= ~EF_STAGE_BIG; /* a reader that keeps up */
	s->rx_stage = NULL;
	pbuf_realloc(p, (u16_t)s->rx_stage_fill); /* same block, shorter */
	s->rx_stage_fill = 0;
	rx_link(s, p);
}

/* The reader has read every byte published: it waits for more. */
static bool reader_waits(struct l3x_stream *s)
{
	/* Acquire: pairs with the app's release of rx_read after it copied
	 * the bytes out (stream.c l3x_stream__read). */
	uint64_t read = atomic_load_explicit(&s->rx_read, memory_order_acquire);

	return read >= s->rx_delivered - s->rx_stage_fill;
}

/* A staging buffer, small unless the last one filled up; charged. */
static struct pbuf *stage_alloc(struct l3x_stream *s)
{
	size_t cap =
		STAGE_CAP(s->eflags & EF_STAGE_BIG ? STAGE_BIG : STAGE_SMALL);
	struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)cap, PBUF_RAM);

	if (p)
		s->rx_charge += l3x_mem_size(p);
	return p;
}

/* Copy chain @p into @s's staging buffer, publishing each that fills, and
 * free it. Without memory for a buffer, what is left of @p is returned to
 * be linked as it is; else NULL. */
static struct pbuf *stage_copy(struct l3x_stack *st, struct l3x_stream *s,
			       struct pbuf *p)
{
	u16_t off = 0, n;

	while (off < p->tot_len) {
		if (!s->rx_stage) {
			s->rx_stage = stage_alloc(s);
			if (!s->rx_stage)
				return pbuf_free_header(p, off);
		}
		n = (u16_t)(p->tot_len - off);
		if (n > s->rx_stage->len - s->rx_stage_fill)
			n = (u16_t)(s->rx_stage->len - s->rx_stage_fill);
		pbuf_copy_partial(
			p, (uint8_t *)s->rx_stage->payload + s->rx_stage_fill,
			n, off);
		s->rx_stage_fill += n;
		off = (u16_t)(off + n);
		if (s->rx_stage_fill == s->rx_stage->len) {
			s->eflags |= EF_STAGE_BIG; /* bytes keep coming */
			stage_publish(s);
		}
	}
	pbuf_free(p);
	if (s->rx_stage)
		staged_add(st, s);
	return NULL;
}

/* ---- the receive window and memory */

/*
 * The window lwIP offers for @s is what rx_buf leaves after the bytes
 * that wait unread. Under memory pressure (flow.h) it is also held to the
 * stream's share less what the stream holds: a stream whose reader keeps
 * up gets a window of at least its share, one that does not read gets
 * none. Held back, a window is shrunk at once (the right edge moves back,
 * as Linux does under pressure: data the client already sent past it is
 * dropped and sent again later), and the stream goes on the clamped list,
 * whose windows open again as memory allows (every WND_PASS_MS).
 */
#define WND_PASS_MS 100

static void clamped_del(struct l3x_stream *s)
{
	if (!(s->eflags & EF_CLAMPED))
		return;
	*s->cl_pprev = s->cl_next;
	if (s->cl_next)
		s->cl_next->cl_pprev = s->cl_pprev;
	s->eflags &= ~EF_CLAMPED;
}

static void clamped_add(struct l3x_stack *st, struct l3x_stream *s)
{
	if (s->eflags & EF_CLAMPED)
		return;
	s->eflags |= EF_CLAMPED;
	s->cl_next = st->clamped;
	if (s->cl_next)
		s->cl_next->cl_pprev = &s->cl_next;
	s->cl_pprev = &st->clamped;
	st->clamped = s;
}

/* The window rx_buf leaves after the bytes waiting unread. */
static uint32_t wnd_room(const struct l3x_stream *s)
{
	uint64_t unread = s->rx_delivered - s->rx_recved;

	return s->rx_buf > unread ? (uint32_t)(s->rx_buf - unread) : 0;
}

static void wnd_open(struct tcp_pcb *pcb, uint32_t add)
{
	bool was_shut = pcb->rcv_ann_wnd < pcb->mss;

	while (add) {
		u16_t step = add > 0xffff ? 0xffff : (u16_t)add;

		tcp_recved(pcb, step);
		add -= step;
	}
	/* lwIP announces a window that grew by less than a segment only
	 * later, and an ACK for it only past a threshold: a client that saw
	 * less than a segment (a window memory pressure made small) must
	 * hear of all of it at once, not by its probes. */
	if (was_shut && pcb->rcv_wnd > pcb->rcv_ann_wnd) {
		pcb->rcv_ann_wnd = pcb->rcv_wnd;
		pcb->rcv_ann_right_edge = pcb->rcv_nxt + pcb->rcv_wnd;
		tcp_ack_now(pcb);
		tcp_output(pcb); /* inside tcp_input(): sent after it */
	}
}

/* Take the window back to @to: the right edge too, and what lwIP queued
 * out of order past it. */
static void wnd_shrink(struct l3x_stack *st, struct tcp_pcb *pcb, uint32_t to)
{
	u32_t edge = pcb->rcv_nxt + to;
	struct tcp_seg *seg;

	pcb->rcv_wnd = (tcpwnd_size_t)to;
	if (TCP_SEQ_GT(pcb->rcv_ann_right_edge, edge))
		pcb->rcv_ann_right_edge = edge;
	pcb->rcv_ann_wnd = TCP_SEQ_GT(pcb->rcv_ann_right_edge, pcb->rcv_nxt)
				   ? (tcpwnd_size_t)(pcb->rcv_ann_right_edge -
						     pcb->rcv_nxt)
				   : 0;
	/* lwIP takes an out-of-order segment in only within the window it
	 * will have: none may lie past the new edge. */
	for (seg = pcb->ooseq; seg; seg = seg->next) {
		if (TCP_SEQ_GT(seg->tcphdr->seqno + TCP_TCPLEN(seg), edge)) {
			tcp_free_ooseq(pcb);
			break;
		}
	}
	tcp_ack_now(pcb);
	STAT_INC(st, tcp_window_shrunk);
}

/* The window @s may have now. */
static uint32_t wnd_target(struct l3x_stack *st, struct l3x_stream *s,
			   bool pressure)
{
	uint32_t room = wnd_room(s);
	uint64_t share;

	if (!pressure)
		return room;
	share = l3x_flow_mem_share(st, L3X_FLOW_TCP);
	if (share <= s->rx_charge)
		return 0;
	return share - s->rx_charge < room ? (uint32_t)(share - s->rx_charge)
					   : room;
}

/* How far past its target a window may stay under pressure: a stream
 * that reads along sees its window shrink a little with each segment (a
 * segment costs more than its bytes); taking that back every time would
 * make its client resend what it sent in good faith. Half a share: so
 * every stream holds less than one and a half. */
static uint32_t wnd_slack(struct l3x_stack *st)
{
	return (uint32_t)(l3x_flow_mem_share(st, L3X_FLOW_TCP) / 2);
}

/* Give @s the window it may have now: open it, or under pressure shrink
 * it; on the clamped list while that is less than rx_buf allows. */
static void wnd_sync(struct l3x_stack *st, struct l3x_stream *s)
{
	bool pressure = l3x_flow_mem_pressure(st);
	uint32_t target, cur;

	if (!s->pcb) {
		clamped_del(s);
		return;
	}
	target = wnd_target(st, s, pressure);
	cur = (uint32_t)s->pcb->rcv_wnd;
	if (target > cur)
		wnd_open(s->pcb, target - cur);
	else if (pressure && cur - target > wnd_slack(st))
		wnd_shrink(st, s->pcb, target);
	if (target < wnd_room(s))
		clamped_add(st, s);
	else
		clamped_del(s);
}

static void reopen_window(struct l3x_stack *st, struct l3x_stream *s)
{
	/* Acquire: pairs with the app's release of rx_read and rx_done after
	 * it copied the bytes out (stream.c l3x_stream__read). */
	uint64_t read = atomic_load_explicit(&s->rx_read, memory_order_acquire);
	uint64_t done = atomic_load_explicit(&s->rx_done, memory_order_acquire);

	while (s->rx_reclaimed < done) {
		struct pbuf *p = s->rx_reclaim;

		s->rx_reclaim =
			__atomic_load_n(&p->l3x_qnext, __ATOMIC_ACQUIRE);
		s->rx_charge -= l3x_flow_pbuf_cost(p);
		pbuf_free(p);
		s->rx_reclaimed++;
	}
	if (s->rx_stage && reader_waits(s))
		stage_publish(s);
	if (read <= s->rx_recved)
		return;
	st->buffered -= read - s->rx_recved;
	s->rx_recved = read;
	wnd_sync(st, s);
}

static void grow_window(struct l3x_stack *st, struct l3x_stream *s,
			uint32_t want)
{
	if (!s->pcb || want <= s->rx_buf)
		return;
	s->rx_buf = want > L3X_TCP_WND_MAX ? L3X_TCP_WND_MAX : want;
	wnd_sync(st, s);
}

void l3x_tcp_turn_end(struct l3x_stack *st)
{
	struct l3x_stream *s, *next;
	uint32_t now;

	while ((s = st->staged)) {
		staged_del(s);
		if (reader_waits(s))
			stage_publish(s);
	}
	if (!st->clamped)
		return;
	now = sys_now();
	if ((int32_t)(now - st->next_wnd_pass) < 0)
		return;
	st->next_wnd_pass = now + WND_PASS_MS;
	for (s = st->clamped; s; s = next) {
		next = s->cl_next;
		wnd_sync(st, s);
	}
}

/* ------------------------------------------------------------ tx */

/* Hand written chunks to lwIP while it has room. Returns true when every
 * byte the app wrote is in lwIP. */
static bool tx_push(struct l3x_stream *s)
{
	struct l3x_chunk *c;
	bool wrote = false;
	uint32_t n;
	u16_t room;

	while ((c = l3x_flow_tx_next(s, 0))) {
		if (!s->pcb)
			return false;
		room = tcp_sndbuf(s->pcb);
		n = c->len - c->off;
		if (!room)
			break;
		if (n > room)
			n = room;
		if (tcp_write(s->pcb, c->data + c->off, (u16_t)n,
			      TCP_WRITE_FLAG_COPY) != ERR_OK)
			break; /* segment queue full: after an ack */
		c->off += n;
		s->tx_queued += n;
		s->w->st->buffered += n;
		wrote = true;
	}
	if (wrote && s->pcb)
		tcp_output(s->pcb);
	return !c;
}

static void add_linger(struct l3x_stack *st, struct l3x_stream *s)
{
	if (s->eflags & EF_LINGER)
		return;
	s->eflags |= EF_LINGER;
	s->linger_deadline = sys_now() + st->linger_ms;
	s->z_next = s->w->lingering;
	if (s->z_next)
		s->z_next->z_pprev = &s->z_next;
	s->z_pprev = &s->w->lingering;
	s->w->lingering = s;
}

static void del_linger(struct l3x_stream *s)
{
	*s->z_pprev = s->z_next;
	if (s->z_next)
		s->z_next->z_pprev = s->z_pprev;
	s->z_next = NULL;
	s->eflags &= ~EF_LINGER;
}

/* The app closed: FIN after the data, or RST with data unread (as the
 * kernel does). The stream stays with the pcb until the client has
 * acknowledged everything, FIN included, so that linger_ms can still reset
 * a client that never reads; only then does lwIP get the pcb alone
 * (FIN_WAIT_2, TIME_WAIT). Returns false while that has not happened. */
static bool try_close(struct l3x_stack *st, struct l3x_stream *s)
{
	uint64_t read = atomic_load_explicit(&s->rx_read, memory_order_acquire);
	struct tcp_pcb *pcb = s->pcb;

	if (!pcb)
		return true;
	if (s->rx_delivered > read) {
		stream_abort(st, s);
		return true;
	}
	if (!tx_push(s))
		return false;
	if (!(s->eflags & EF_SHUT_DONE)) {
		/* Our FIN after the data, as shutdown(SHUT_WR) sends it; with
		 * no memory for it lwIP sends it later (TF_CLOSEPEND). */
		if ((pcb->state == ESTABLISHED || pcb->state == SYN_RCVD ||
		     pcb->state == CLOSE_WAIT) &&
		    tcp_shutdown(pcb, 0, 1) != ERR_OK)
			return false;
		s->eflags |= EF_SHUT_DONE;
	}
	if (pcb->unsent || pcb->unacked || (pcb->flags & TF_CLOSEPEND))
		return false;
	/* All acknowledged: FIN_WAIT_2 or TIME_WAIT, where tcp_close() only
	 * marks the receive side closed and lwIP's timers finish it. */
	detach(pcb);
	tcp_close(pcb);
	s->pcb = NULL;
	STAT_INC(st, tcp_closed);
	return true;
}

/* Finish what the app asked once its data is in lwIP. Not from inside
 * an lwIP callback (close and abort free the pcb). */
static void progress(struct l3x_stack *st, struct l3x_stream *s)
{
	bool flushed;

	if (s->eflags & EF_CLOSING) {
		if (try_close(st, s)) {
			s->eflags &= ~EF_CLOSING;
			if (s->eflags & EF_LINGER)
				del_linger(s);
			l3x_flow_release(s);
		} else {
			add_linger(st, s);
		}
		return;
	}
	flushed = tx_push(s);
	if ((s->eflags & EF_SHUT_PENDING) && flushed && s->pcb) {
		if (tcp_shutdown(s->pcb, 0, 1) == ERR_OK) {
			s->eflags &= ~EF_SHUT_PENDING;
			s->eflags |= EF_SHUT_DONE;
		}
	}
}

/* ------------------------------------------------------------ callbacks */

/* Data came in: with a window under two segments left (memory pressure
 * made it small), say so at once. lwIP would hold the ACK for up to its
 * 250 ms timer, waiting for a second segment the window does not let
 * come, and the stream would crawl. */
static void ack_small_window(struct tcp_pcb *pcb)
{
	if (pcb->rcv_wnd < 2u * pcb->mss)
		tcp_ack_now(pcb);
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct l3x_stream *s = arg;
	struct l3x_stack *st;
	size_t cost;

	if (!s) {
		if (p) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	if (!p) {
		stage_publish(s);
		/* Release: the data before the FIN is published first. */
		atomic_fetch_or_explicit(&s->state, ST_EOF,
					 memory_order_release);
		l3x_flow_notify(s);
		return ERR_OK;
	}
	if (err != ERR_OK) {
		pbuf_free(p);
		return ERR_OK;
	}
	st = s->w->st;
	s->rx_delivered += p->tot_len;
	st->buffered += p->tot_len;
	ack_small_window(pcb);
	cost = l3x_flow_pbuf_cost(p);
	if (rx_costly(p, cost)) {
		STAT_INC(st, tcp_rx_merged);
		p = stage_copy(st, s, p);
		if (!p)
			return ERR_OK;
		cost = l3x_flow_pbuf_cost(p);
	}
	stage_publish(s); /* what came before goes first */
	s->rx_charge += cost;
	rx_link(s, p);
	return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct l3x_stream *s = arg;

	(void)pcb;
	if (!s)
		return ERR_OK;
	/* Seq_cst: the credit is visible before we read want_write, as the
	 * app sets want_write before it re-reads the credit (Dekker). */
	atomic_fetch_add(&s->tx_acked, len);
	s->w->st->buffered -= len;
	/* linger_ms bounds a client that takes nothing, not a slow reader:
	 * it counts again from each acknowledgment that moves. */
	if ((s->eflags & EF_LINGER) && len)
		s->linger_deadline = sys_now() + s->w->st->linger_ms;
	if (atomic_load(&s->want_write) && atomic_exchange(&s->want_write, 0))
		l3x_flow_notify(s);
	if (s->eflags & (EF_CLOSING | EF_SHUT_PENDING))
		l3x_flow_todo(s);
	else
		tx_push(s);
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	struct l3x_stream *s = arg;
	struct l3x_stack *st;
	int e;

	if (!s)
		return;
	st = s->w->st;
	request_del(s); /* lwIP ended it first (a RST, its timer) */
	s->eflags &= ~EF_SYNACK;
	if (s->req_kept)
		l3x_flow_todo(s); /* a close kept through the handshake */
	s->pcb = NULL;		  /* lwIP has freed it */
	stage_publish(s);	  /* readable before the error */
	clamped_del(s);
	switch (err) {
	case ERR_RST:
		e = -ECONNRESET;
		STAT_INC(st, tcp_reset_by_client);
		break;
	case ERR_CLSD:
		e = 0; /* closed in order after our shutdown */
		STAT_INC(st, tcp_closed);
		break;
	case ERR_ABRT:
		e = -ETIMEDOUT; /* lwIP gave up: retransmits, keepalive */
		STAT_INC(st, tcp_aborted);
		break;
	default:
		e = -ECONNABORTED;
		STAT_INC(st, tcp_aborted);
		break;
	}
	atomic_store_explicit(&s->err, e, memory_order_relaxed);
	/* Release: err before the bits that announce it. */
	atomic_fetch_or_explicit(&s->state, (e ? ST_ERROR : ST_EOF) | ST_GONE,
				 memory_order_release);
	if (s->eflags & EF_APP_DONE)
		l3x_flow_todo(s); /* released by flow.c, outside lwIP */
	else
		l3x_flow_notify(s);
}

/* ------------------------------------------------------------ accept */

static void set_addrs(struct l3x_stream *s, const struct tcp_pcb *pcb)
{
	s->client_port = pcb->remote_port;
	s->dst_port = pcb->local_port;
	if (IP_IS_V6(&pcb->remote_ip)) {
		s->family = 6;
		memcpy(s->client_addr, ip_2_ip6(&pcb->remote_ip)->addr, 16);
		memcpy(s->dst_addr, ip_2_ip6(&pcb->local_ip)->addr, 16);
	} else {
		s->family = 4;
		memcpy(s->client_addr, &ip_2_ip4(&pcb->remote_ip)->addr, 4);
		memcpy(s->dst_addr, &ip_2_ip4(&pcb->local_ip)->addr, 4);
	}
}

static err_t refuse(struct tcp_pcb *pcb)
{
	tcp_abort(pcb); /* RST to the client */
	return ERR_ABRT;
}

/* Room for one more stream from @pcb's client: else counted, false. */
static bool admit(struct l3x_stack *st, const struct tcp_pcb *pcb)
{
	uint8_t a[16] = { 0 }, family = IP_IS_V6(&pcb->remote_ip) ? 6 : 4;

	if (family == 6)
		memcpy(a, ip_2_ip6(&pcb->remote_ip)->addr, 16);
	else
		memcpy(a, &ip_2_ip4(&pcb->remote_ip)->addr, 4);
	switch (l3x_flow_admit(st, L3X_FLOW_TCP, family, a)) {
	case 0:
		return true;
	case -ENOSPC:
		STAT_INC(st, tcp_refused_flows);
		return false;
	case -EDQUOT:
		STAT_INC(st, tcp_refused_source);
		return false;
	default: /* the per-source table's bucket is full */
		STAT_INC(st, tcp_refused_hash);
		return false;
	}
}

/* Patch 0013's idle timeout, and lwIP's keepalive when asked for. */
static void set_lifetimes(struct l3x_stack *st, struct tcp_pcb *pcb)
{
	pcb->l3x_idle_ms = st->tcp_idle_ms;
	if (!st->keepalive_ms)
		return;
	ip_set_option(pcb, SOF_KEEPALIVE);
	pcb->keep_idle = st->keepalive_ms;
	pcb->keep_intvl = st->keepalive_intvl_ms;
	pcb->keep_cnt = st->keepalive_cnt;
}

/* A stream for @pcb on a worker, within every budget; NULL counted. */
static struct l3x_stream *stream_new(struct l3x_stack *st, struct tcp_pcb *pcb)
{
	struct l3x_stream *s;
	struct l3x_worker *w;

	if (!admit(st, pcb))
		return NULL;
	if (l3x_flow_mem_full(st)) {
		STAT_INC(st, tcp_refused_memory);
		return NULL;
	}
	w = l3x_flow_pick_worker(st);
	if (!w) {
		STAT_INC(st, tcp_refused_backlog);
		return NULL;
	}
	s = l3x_flow_new(w, L3X_FLOW_TCP);
	if (!s) {
		STAT_INC(st, tcp_refused_memory);
		return NULL;
	}
	s->pcb = pcb;
	s->tx_buf = st->tx_buf;
	s->rx_buf_app = st->rx_buf;
	s->idle_ms_app = st->tcp_idle_ms;
	set_addrs(s, pcb);
	return s;
}

static void stream_wire(struct l3x_stack *st, struct l3x_stream *s,
			struct tcp_pcb *pcb);

/* The handshake of an accepted request completed: the stream the app
 * holds goes on as any other; what it asked meanwhile (written, shut
 * down, closed) is served off the todo list. */
static err_t request_established(struct l3x_stream *s, struct tcp_pcb *pcb)
{
	s->eflags &= ~EF_SYNACK;
	stream_wire(s->w->st, s, pcb);
	if (s->req_kept)
		l3x_flow_todo(s);
	return ERR_OK;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct l3x_stack *st = arg;
	struct l3x_stream *s;

	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	if (pcb->errf == on_err) /* a request's PCB: its arg the stream */
		return request_established(arg, pcb);
	s = stream_new(st, pcb);
	if (!s)
		return refuse(pcb);
	l3x_flow_offer(s);
	stream_wire(st, s, pcb);
	return ERR_OK;
}

/* Established: @s gets @pcb's callbacks and its window. */
static void stream_wire(struct l3x_stack *st, struct l3x_stream *s,
			struct tcp_pcb *pcb)
{
	set_lifetimes(st, pcb);
	/* lwIP opens every window to TCP_WND, the most rx_buf can be; the
	 * stream's starts at rx_buf instead. Nothing is taken back from the
	 * client: only the SYN-ACK's unscaled window (at most 65535, below
	 * the smallest rx_buf) has been announced, although lwIP counts the
	 * right edge from the whole TCP_WND. */
	if (pcb->rcv_wnd > st->rx_buf) {
		pcb->rcv_wnd = pcb->rcv_ann_wnd = (tcpwnd_size_t)st->rx_buf;
		pcb->rcv_ann_right_edge = pcb->rcv_nxt + st->rx_buf;
	}
	s->rx_buf = pcb->rcv_wnd;
	tcp_arg(pcb, s);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
	/* rx_buf, or under memory pressure the stream's share. */
	wnd_sync(st, s);
	STAT_INC(st, tcp_accepted);
	l3x_flow_notify(s);
}

/* ------------------------------------------------------------ admission */

/*
 * Every chain of lwIP's connection hash (patch 0005) holds at most
 * st->tcp_bucket_max PCBs, so that a segment's lookup compares at most that
 * many tuples. The hash is keyed (SipHash, a random key per process), so a
 * chain grows only by chance: at a load of one PCB per bucket, a chain of
 * 16 comes once in ~5 * 10^13 buckets. The bound is 16 per started unit of
 * load that max_tcp_flows and max_time_wait allow, as the table has
 * TCP_PCB_HASH_SIZE buckets whatever the options. Only segments
 * to the listener make PCBs (a SYN; with SYN cookies the ACK that ends
 * one), so refusing those whose bucket is full keeps the bound.
 */
#define TCP_BUCKET_PER_LOAD 16

/* How long a connection may stay half-open (SYN_RCVD): lwIP's 20 s, and
 * under a SYN flood 4 s, one SYN-ACK retransmit (lwIP's first RTO is 3 s). */
#define L3X_SYN_RCVD_MS		 20000
#define L3X_SYN_RCVD_PRESSURE_MS 4000

static uint32_t bucket_max(uint32_t max_tcp_flows, uint32_t max_time_wait)
{
	uint64_t pcbs = (uint64_t)max_tcp_flows + max_time_wait;

	return TCP_BUCKET_PER_LOAD *
	       (uint32_t)((pcbs + TCP_PCB_HASH_SIZE - 1) / TCP_PCB_HASH_SIZE);
}

/* A segment to the listener: it may make a PCB. */
static err_t listen_admit(struct l3x_stack *st, const struct tcp_hdr *hdr)
{
	if (TCPH_FLAGS(hdr) & TCP_RST)
		return ERR_OK;
	if (l3x_flow_mem_full(st)) {
		STAT_INC(st, rx_dropped_memory);
		return ERR_MEM;
	}
	if (tcp_l3x_bucket_len(ip_current_dest_addr(), hdr->dest,
			       ip_current_src_addr(),
			       hdr->src) < st->tcp_bucket_max)
		return ERR_OK;
	STAT_INC(st, tcp_refused_hash);
	return ERR_MEM;
}

/* Would @p, out of order, keep @pcb's queue within the stream's caps? */
static bool ooo_fits(struct l3x_stack *st, const struct l3x_stream *s,
		     const struct pbuf *p, bool pressure)
{
	size_t bytes = l3x_flow_pbuf_cost(p) + st->seg_cost;
	uint32_t segs = 1;
	const struct tcp_seg *seg;

	/* At most ooo_max_segs long, as this keeps it. */
	for (seg = s->pcb->ooseq; seg; seg = seg->next) {
		bytes += l3x_flow_pbuf_cost(seg->p) + st->seg_cost;
		segs++;
	}
	if (segs > st->ooo_max_segs || bytes > st->ooo_max_bytes)
		return false;
	/* Under pressure it counts in the stream's share with the rest. */
	return !pressure ||
	       s->rx_charge + bytes <=
		       l3x_flow_mem_share(st, L3X_FLOW_TCP) + wnd_slack(st);
}

/*
 * Data for stream @s: kept only while memory is below mem_adm, out of
 * order only within the stream's caps, and under pressure only within
 * the window the stream may have now (wnd_sync shrinks it first, and lwIP
 * then drops what lies past it, answering with the new window). Segments
 * without data, and data lwIP already has, always pass: they free memory.
 */
static err_t data_admit(struct l3x_stack *st, struct l3x_stream *s,
			const struct tcp_hdr *hdr, const struct pbuf *p)
{
	struct tcp_pcb *pcb = s->pcb;
	u32_t seq = hdr->seqno;
	bool pressure;

	if (!p->tot_len || !TCP_SEQ_GT(seq + p->tot_len, pcb->rcv_nxt))
		return ERR_OK;
	if (l3x_flow_mem_full(st)) {
		STAT_INC(st, rx_dropped_memory);
		return ERR_MEM;
	}
	pressure = l3x_flow_mem_pressure(st);
	if (TCP_SEQ_GT(seq, pcb->rcv_nxt) && !ooo_fits(st, s, p, pressure)) {
		STAT_INC(st, tcp_ooo_dropped);
		return ERR_MEM;
	}
	if (pressure || (s->eflags & EF_CLAMPED))
		wnd_sync(st, s);
	return ERR_OK;
}

/*
 * An out-of-order segment that runs past the window. lwIP queues the first
 * out-of-order segment (and one put before the first) without trimming it
 * to the window, and when the gap before it fills, takes its length off
 * the window: past the window, that asserts (or, without assertions,
 * wraps the window round). A client can do that to any connection, and
 * one whose window we shrank does it by itself. Dropped: the client sends
 * it again within the window.
 */
static bool ooo_overruns(const struct tcp_pcb *pcb, const struct tcp_hdr *hdr,
			 const struct pbuf *p)
{
	u32_t len =
		p->tot_len + (TCPH_FLAGS(hdr) & (TCP_FIN | TCP_SYN) ? 1 : 0);

	if (!len || !TCP_SEQ_GT(hdr->seqno, pcb->rcv_nxt))
		return false;
	/* In SYN_RCVD the window is lwIP's whole TCP_WND until on_accept()
	 * sets the stream's: any out-of-order data may lie past that. */
	return pcb->state == SYN_RCVD ||
	       TCP_SEQ_GT(hdr->seqno + len, pcb->rcv_nxt + pcb->rcv_wnd);
}

err_t l3x_tcp_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen,
		       u16_t opt1len, u8_t *opt2, struct pbuf *p)
{
	struct l3x_stream *s = NULL;

	(void)optlen;
	(void)opt1len;
	(void)opt2;
	/* Which PCB took it, for the engine's fates (engine.c). */
	l3x_tcp_in_state = (u8_t)(pcb->state + 1);
	/* Only ours: lwIP's own tests run PCBs of other owners. */
	if (pcb->state == LISTEN) {
		struct tcp_pcb_listen *lpcb = (struct tcp_pcb_listen *)pcb;

		if (lpcb->accept == on_accept && pcb->callback_arg)
			return listen_admit(pcb->callback_arg, hdr);
		return ERR_OK;
	}
	if (pcb->recv == on_recv && pcb->callback_arg)
		s = pcb->callback_arg;
	if (pcb->state >= SYN_RCVD && pcb->state != TIME_WAIT &&
	    ooo_overruns(pcb, hdr, p)) {
		if (s)
			STAT_INC(s->w->st, tcp_ooo_dropped);
		return ERR_VAL;
	}
	return s ? data_admit(s->w->st, s, hdr, p) : ERR_OK;
}

/* ------------------------------------------------------------ SYNs */

/*
 * The SYN flood defence (RFC 4987). A SYN makes a half-open PCB (lwIP's
 * SYN_RCVD, counted on the listener in accepts_pending, which patch 0012
 * widens and which the accept backlog no longer bounds: on_accept() runs
 * when the handshake completes and has budgets of its own) while fewer
 * than max_half_open are half-open. Past that it gets a SYN cookie
 * (syncookie.h) and nothing is kept, or with syncookies NEVER it is
 * dropped and counted; with ALWAYS every SYN gets a cookie. The ACK that
 * brings a good cookie back makes the PCB, and lwIP takes it through its
 * own handshake to on_accept() like any other.
 */

/* Ours, not a listener of lwIP's own tests: its stack, else NULL. */
static struct l3x_stack *listener_stack(const struct tcp_pcb_listen *lpcb)
{
	return lpcb->accept == on_accept ? lpcb->callback_arg : NULL;
}

uint32_t l3x_tcp_half_open(const struct l3x_stack *st)
{
	const struct tcp_pcb_listen *lpcb =
		(const struct tcp_pcb_listen *)st->listener;

	return lpcb ? lpcb->accepts_pending : 0;
}

u8_t l3x_tcp_syn_verdict(struct tcp_pcb_listen *lpcb, struct tcp_hdr *hdr,
			 u16_t optlen, u16_t opt1len, u8_t *opt2)
{
	struct l3x_stack *st = listener_stack(lpcb);

	(void)hdr;
	(void)optlen;
	(void)opt1len;
	(void)opt2;
	if (!st)
		return lpcb->accepts_pending >= lpcb->backlog
			       ? TCP_L3X_SYN_DROP
			       : TCP_L3X_SYN_ACCEPT;
	STAT_INC(st, tcp_syn_received);
	if (st->syncookies == L3X_SYNCOOKIES_ALWAYS)
		return TCP_L3X_SYN_COOKIE;
	if (lpcb->accepts_pending < st->max_half_open)
		return st->defer_accept ? TCP_L3X_SYN_DEFER
					: TCP_L3X_SYN_ACCEPT;
	if (st->syncookies == L3X_SYNCOOKIES_WHEN_FULL)
		return TCP_L3X_SYN_COOKIE;
	STAT_INC(st, tcp_half_open_dropped);
	return TCP_L3X_SYN_DROP;
}

err_t l3x_tcp_syn_defer(struct tcp_pcb_listen *lpcb, struct tcp_pcb *pcb,
			struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len,
			u8_t *opt2)
{
	struct l3x_stack *st = listener_stack(lpcb);
	struct l3x_syn_opts o;
	struct l3x_stream *s;

	if (!st)
		return ERR_VAL;
	s = stream_new(st, pcb);
	if (!s)
		return ERR_RST; /* as on_accept() refuses: a RST */
	l3x_tcp_opts_parse(hdr, optlen, opt1len, opt2, &o);
	s->request = true;
	s->syn_mss = o.mss;
	s->syn_wscale = o.wscale;
	s->syn_sack = o.sack;
	s->syn_ts = o.ts;
	s->syn_tsval = o.tsval;
	tcp_arg(pcb, s);
	tcp_err(pcb, on_err); /* also what on_accept() knows it by */
	l3x_flow_offer(s);
	request_add(st, s);
	STAT_INC(st, tcp_requests);
	l3x_flow_notify(s);
	return ERR_OK;
}

/* The segment being received, as a cookie binds it. */
static void cookie_tuple(const struct tcp_hdr *hdr, struct l3x_syn_tuple *t)
{
	const ip_addr_t *c = ip_current_src_addr(), *l = ip_current_dest_addr();

	memset(t, 0, sizeof(*t));
	t->family = IP_IS_V6(c) ? 6 : 4;
	if (t->family == 6) {
		memcpy(t->client, ip_2_ip6(c)->addr, 16);
		memcpy(t->local, ip_2_ip6(l)->addr, 16);
	} else {
		memcpy(t->client, &ip_2_ip4(c)->addr, 4);
		memcpy(t->local, &ip_2_ip4(l)->addr, 4);
	}
	t->client_port = hdr->src;
	t->local_port = hdr->dest;
}

static uint8_t *put_be32(uint8_t *o, uint32_t v)
{
	o[0] = (uint8_t)(v >> 24);
	o[1] = (uint8_t)(v >> 16);
	o[2] = (uint8_t)(v >> 8);
	o[3] = (uint8_t)v;
	return o + 4;
}

/* Our options for a cookie SYN-ACK: MSS; with timestamps, SACK permitted
 * (or two NOPs) and the timestamp, then the window scale. Returns their
 * length. */
static u16_t cookie_opts(uint8_t *o, const struct l3x_syn_opts *syn, u16_t mss,
			 uint32_t now)
{
	uint8_t *p = o;

	*p++ = 2;
	*p++ = 4;
	*p++ = (uint8_t)(mss >> 8);
	*p++ = (uint8_t)mss;
	if (!syn->ts)
		return (u16_t)(p - o); /* nowhere to keep scale and SACK */
	*p++ = syn->sack ? 4 : 1;
	*p++ = syn->sack ? 2 : 1;
	*p++ = 8;
	*p++ = 10;
	p = put_be32(p, l3x_cookie_tsval(now, syn->wscale, syn->sack));
	p = put_be32(p, syn->tsval);
	if (syn->wscale != 0xff) {
		*p++ = 1;
		*p++ = 3;
		*p++ = 3;
		*p++ = TCP_RCV_SCALE;
	}
	return (u16_t)(p - o);
}

/* The clock of the connection the segment being received would make, as
 * its timestamps will show it (patch 0011: sys_now() plus the 4-tuple's
 * offset), so that a cookie connection's timestamps never go back after
 * the handshake. */
static uint32_t cookie_ts_now(const struct tcp_hdr *hdr, uint32_t now)
{
	return now + l3x_tcp_ts_offset(ip_current_dest_addr(), hdr->dest,
				       ip_current_src_addr(), hdr->src);
}

/* The SYN-ACK with our ISN @iss, from where the SYN went, as lwIP's own
 * would be but for its options. */
static bool cookie_send(const struct tcp_hdr *syn, const struct l3x_syn_opts *o,
			u32_t iss, uint32_t now)
{
	const ip_addr_t *src = ip_current_dest_addr(),
			*dst = ip_current_src_addr();
	uint8_t opts[20];
	u16_t optlen =
		cookie_opts(opts, o, tcp_eff_send_mss(TCP_MSS, src, dst), now);
	struct pbuf *p = pbuf_alloc(PBUF_IP, TCP_HLEN + optlen, PBUF_RAM);
	struct tcp_hdr *h;
	err_t err;

	if (!p)
		return false;
	h = p->payload;
	h->src = lwip_htons(syn->dest);
	h->dest = lwip_htons(syn->src);
	h->seqno = lwip_htonl(iss);
	h->ackno = lwip_htonl(syn->seqno + 1);
	TCPH_HDRLEN_FLAGS_SET(h, (TCP_HLEN + optlen) / 4, TCP_SYN | TCP_ACK);
	h->wnd = lwip_htons(TCPWND_MIN16(TCP_WND));
	h->chksum = 0;
	h->urgp = 0;
	memcpy(h + 1, opts, optlen);
	h->chksum = ip_chksum_pseudo(p, IP_PROTO_TCP, p->tot_len, src, dst);
	err = ip_output_if(p, src, dst, TCP_TTL, 0, IP_PROTO_TCP,
			   ip_current_input_netif());
	pbuf_free(p);
	return err == ERR_OK;
}

void l3x_tcp_syn_cookie(struct tcp_pcb_listen *lpcb, struct tcp_hdr *hdr,
			u16_t optlen, u16_t opt1len, u8_t *opt2)
{
	struct l3x_stack *st = listener_stack(lpcb);
	struct l3x_syn_opts o;
	struct l3x_syn_tuple t;
	uint32_t now = sys_now();
	u32_t iss;

	if (!st)
		return;
	l3x_tcp_opts_parse(hdr, optlen, opt1len, opt2, &o);
	cookie_tuple(hdr, &t);
	l3x_cookie_rotate(&st->cookie_keys, now, l3x_hash_new_key);
	iss = l3x_cookie_make(&st->cookie_keys, &t, hdr->seqno, o.mss, now);
	if (!cookie_send(hdr, &o, iss, cookie_ts_now(hdr, now))) {
		STAT_INC(st, tcp_half_open_dropped);
		return;
	}
	STAT_INC(st, tcp_syn_cookies_sent);
	st->cookie_sent_ms = now;
	st->cookie_sent = true;
}

/* Cookies went out lately: an ACK to the listener may be one. */
static bool cookies_out(const struct l3x_stack *st, uint32_t now)
{
	return st->cookie_sent &&
	       now - st->cookie_sent_ms <= 2 * L3X_COOKIE_PERIOD_MS;
}

/* What the ACK's timestamp option brings back of the SYN's; false when it
 * cannot be ours. */
static bool cookie_ts(const struct l3x_syn_opts *o, uint32_t now,
		      struct tcp_l3x_cookie *c)
{
	bool sack = false;

	c->snd_scale = 0xff;
	c->sack = 0;
	c->ts = 0;
	if (!o->ts)
		return true; /* no timestamps: neither scale nor SACK */
	if (!l3x_cookie_ts_decode(o->tsecr, now, &c->snd_scale, &sack))
		return false;
	c->sack = sack;
	c->ts = 1;
	c->ts_recent = o->tsval;
	return true;
}

int l3x_tcp_cookie_ack(struct tcp_pcb_listen *lpcb, struct tcp_hdr *hdr,
		       u16_t optlen, u16_t opt1len, u8_t *opt2,
		       struct tcp_l3x_cookie *c)
{
	struct l3x_stack *st = listener_stack(lpcb);
	struct l3x_syn_opts o;
	struct l3x_syn_tuple t;
	uint32_t now = sys_now();
	uint16_t mss;

	if (!st || !cookies_out(st, now))
		return 0;
	cookie_tuple(hdr, &t);
	l3x_cookie_rotate(&st->cookie_keys, now, l3x_hash_new_key);
	mss = l3x_cookie_check(&st->cookie_keys, &t, hdr->seqno - 1,
			       hdr->ackno - 1, now);
	l3x_tcp_opts_parse(hdr, optlen, opt1len, opt2, &o);
	if (!mss || !cookie_ts(&o, cookie_ts_now(hdr, now), c)) {
		STAT_INC(st, tcp_syn_cookies_bad);
		return 0;
	}
	/* The floor of patch 0004 for IPv6, as the SYN would have had it. */
	if (t.family == 6 && mss < TCP_MSS_MIN_IPV6)
		mss = TCP_MSS_MIN_IPV6;
	c->mss = mss > TCP_MSS ? TCP_MSS : mss;
	STAT_INC(st, tcp_syn_cookies_ok);
	return 1;
}

/* ------------------------------------------------------------ ways */

/*
 * The way back of a connection is kept from its SYN: lwIP calls
 * passive_open when the SYN has passed its checks and opened a PCB, before
 * the SYN-ACK goes out, and destroy when the PCB is freed, whatever its
 * end. The way is the PCB's extension argument.
 */
static u8_t way_id = 0xff;

static void way_destroyed(u8_t id, void *data)
{
	(void)id;
	l3x_way_put(data);
}

static err_t way_passive_open(u8_t id, struct tcp_pcb_listen *lpcb,
			      struct tcp_pcb *cpcb);

static const struct tcp_ext_arg_callbacks way_cbs = {
	.destroy = way_destroyed,
	.passive_open = way_passive_open,
};

static err_t way_passive_open(u8_t id, struct tcp_pcb_listen *lpcb,
			      struct tcp_pcb *cpcb)
{
	struct l3x_stack *st = lpcb->callback_arg;
	uint8_t ca[16] = { 0 }, da[16] = { 0 }, family = 4;
	struct l3x_way *way;

	if (lpcb->accept != on_accept || !st)
		return ERR_OK; /* lwIP's own tests run listeners of theirs */
	if (IP_IS_V6(&cpcb->remote_ip)) {
		family = 6;
		memcpy(ca, ip_2_ip6(&cpcb->remote_ip)->addr, 16);
		memcpy(da, ip_2_ip6(&cpcb->local_ip)->addr, 16);
	} else {
		memcpy(ca, &ip_2_ip4(&cpcb->remote_ip)->addr, 4);
		memcpy(da, &ip_2_ip4(&cpcb->local_ip)->addr, 4);
	}
	if (l3x_flow_way(st, family, IP_PROTO_TCP, ca, cpcb->remote_port, da,
			 cpcb->local_port, &way))
		return ERR_MEM; /* lwIP abandons the PCB: no SYN-ACK */
	tcp_ext_arg_set_callbacks(cpcb, id, &way_cbs);
	tcp_ext_arg_set(cpcb, id, way);
	return ERR_OK;
}

/* ------------------------------------------------------------ lifetimes */

/*
 * TIME_WAIT (patch 0010: a new SYN past the old connection reopens the
 * tuple, a RST in sequence ends it, at most max_time_wait PCBs, the one
 * longest there recycled first), PAWS (0011) and the idle and persist
 * timeouts (0013) are lwIP's. Their bounds and counters are plain lwIP
 * variables, one stack per process: set at open, published once a turn.
 * Each stream's idle timeout is its PCB's (set_lifetimes, REQ_IDLE).
 */
static void lwip_bounds_start(struct l3x_stack *st)
{
	tcp_l3x_tw_max = st->max_time_wait;
	tcp_l3x_tw_peak = tcp_l3x_tw_count;
	tcp_l3x_tw_reused = 0;
	tcp_l3x_tw_recycled = 0;
	tcp_l3x_tw_rst = 0;
	tcp_l3x_paws_dropped = 0;
	tcp_l3x_persist_ms = st->persist_ms;
	tcp_l3x_idle_timeouts = 0;
	tcp_l3x_persist_timeouts = 0;
	tcp_l3x_keepalive_timeouts = 0;
	tcp_l3x_syn_rcvd_ms = L3X_SYN_RCVD_MS;
	tcp_l3x_syn_rcvd_expired = 0;
	tcp_l3x_ack_max = (u8_t)st->ack_coalesce;
	tcp_l3x_ack_deferred = 0;
}

/* ACK coalescing (patch 0061): between these, the tcp_output() that ends
 * each segment's tcp_input() waits, for a synchronized connection, for
 * the end of the burst; out-of-order and duplicate segments, the
 * handshake and every ack_coalesce-th in-order segment still answer at
 * once. A connection freed meanwhile leaves lwIP's list (tcp_free). */
void l3x_tcp_burst_begin(void)
{
	tcp_l3x_burst_begin();
}

void l3x_tcp_burst_end(void)
{
	tcp_l3x_burst_end();
}

/* Under a SYN flood (the half-open table at least half full) a half-open
 * connection gets one SYN-ACK retransmit, not two, and leaves SYN_RCVD
 * after L3X_SYN_RCVD_PRESSURE_MS instead of lwIP's 20 s (RFC 4987 3.2;
 * patch 0015): room for the SYNs of clients that will answer. */
static void syn_rcvd_pressure(const struct l3x_stack *st)
{
	uint32_t half_open = l3x_tcp_half_open(st);

	tcp_l3x_syn_rcvd_ms = half_open >= st->max_half_open / 2
				      ? L3X_SYN_RCVD_PRESSURE_MS
				      : L3X_SYN_RCVD_MS;
}

void l3x_tcp_publish(struct l3x_stack *st)
{
	syn_rcvd_pressure(st);
	/* Relaxed: counters; only the engine thread writes them. */
	atomic_store_explicit(&st->stats.v[STAT(tcp_half_open_expired)],
			      tcp_l3x_syn_rcvd_expired, memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_time_wait)],
			      tcp_l3x_tw_count, memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_time_wait_peak)],
			      tcp_l3x_tw_peak, memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_tw_reused)],
			      tcp_l3x_tw_reused, memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_tw_recycled)],
			      tcp_l3x_tw_recycled, memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_tw_rst)], tcp_l3x_tw_rst,
			      memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_paws_dropped)],
			      tcp_l3x_paws_dropped, memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_idle_timeouts)],
			      tcp_l3x_idle_timeouts, memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_keepalive_timeouts)],
			      tcp_l3x_keepalive_timeouts, memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_persist_timeouts)],
			      tcp_l3x_persist_timeouts, memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_ack_deferred)],
			      tcp_l3x_ack_deferred, memory_order_relaxed);
}

int l3x_tcp_listen(struct l3x_stack *st)
{
	struct tcp_pcb *pcb, *lpcb;

	pcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
	if (!pcb)
		return -ENOMEM;
	ip_set_option(pcb, SOF_L3X_ANYDEST);
	if (tcp_bind(pcb, IP_ANY_TYPE, 0) != ERR_OK) {
		tcp_close(pcb);
		return -EADDRINUSE;
	}
	lpcb = tcp_listen_with_backlog(pcb, TCP_DEFAULT_LISTEN_BACKLOG);
	if (!lpcb) {
		tcp_close(pcb);
		return -ENOMEM;
	}
	tcp_arg(lpcb, st);
	tcp_accept(lpcb, on_accept);
	if (way_id == 0xff) /* lwIP's ids are for the process's life */
		way_id = tcp_ext_arg_alloc_id();
	tcp_ext_arg_set_callbacks(lpcb, way_id, &way_cbs);
	st->listener = lpcb;
	st->seg_cost = l3x_mem_cost(
		MEMP_SIZE + MEMP_ALIGN_SIZE(memp_pools[MEMP_TCP_SEG]->size));
	st->tcp_bucket_max =
		bucket_max(st->max_kind[L3X_FLOW_TCP], st->max_time_wait);
	lwip_bounds_start(st);
	return 0;
}

/* ------------------------------------------------------------ requests */

/* Request @s ends without a SYN-ACK: RST with @rst, else nothing. */
static void request_end(struct l3x_stack *st, struct l3x_stream *s, bool rst)
{
	struct tcp_pcb *pcb = s->pcb;

	request_del(s);
	if (!pcb)
		return;
	detach(pcb);
	s->pcb = NULL;
	tcp_abandon(pcb, rst);
	if (rst)
		STAT_INC(st, tcp_aborted);
}

/* The app's answer to request @s in @req, if any: true when @s is done
 * with (refused or dropped, released). */
static bool request_answer(struct l3x_stack *st, struct l3x_stream *s,
			   uint32_t req)
{
	if (req & REQ_ACCEPT) {
		request_del(s);
		if (s->pcb &&
		    tcp_enqueue_flags(s->pcb, TCP_SYN | TCP_ACK) == ERR_OK) {
			tcp_output(s->pcb);
			s->eflags |= EF_SYNACK;
			STAT_INC(st, tcp_requests_accepted);
			return false;
		}
		stream_abort(st, s); /* no memory for the SYN-ACK */
		l3x_flow_notify(s);
		return false;
	}
	if (!(req & (REQ_ABORT | REQ_DROP | REQ_CLOSE)))
		return false; /* data written early: sent after the SYN-ACK */
	if (req & REQ_ABORT)
		STAT_INC(st, tcp_requests_refused);
	else
		STAT_INC(st, tcp_requests_dropped);
	request_end(st, s, req & REQ_ABORT);
	s->eflags |= EF_APP_DONE;
	l3x_flow_release(s);
	return true;
}

/* Requests of @w past their deadline: dropped, the app told. */
static void request_expire(struct l3x_stack *st, struct l3x_worker *w,
			   uint32_t now)
{
	struct l3x_stream *s, *next;

	for (s = w->requests; s; s = next) {
		next = s->rq_next;
		if ((int32_t)(now - s->rq_deadline) < 0)
			continue;
		request_end(st, s, false);
		STAT_INC(st, tcp_requests_timed_out);
		atomic_store_explicit(&s->err, -ETIMEDOUT,
				      memory_order_relaxed);
		/* Release: err before the state bits that announce it. */
		atomic_fetch_or_explicit(&s->state, ST_ERROR | ST_GONE,
					 memory_order_release);
		l3x_flow_notify(s);
	}
}

static void serve_bits(struct l3x_stack *st, struct l3x_stream *s,
		       uint32_t req);

static void tcp_serve(struct l3x_stream *s)
{
	struct l3x_stack *st = s->w->st;
	uint32_t req;

	/* Acq_rel: takes the requests and REQ_QUEUED in one step, so a
	 * request the app makes after this re-queues the stream; acquire
	 * pairs with the app's release when it set the bits. */
	req = atomic_exchange_explicit(&s->req, 0, memory_order_acq_rel);
	serve_bits(st, s, req & ~REQ_QUEUED);
}

/* Requests @req, with those kept while the handshake was not done. */
static void serve_bits(struct l3x_stack *st, struct l3x_stream *s, uint32_t req)
{
	req |= s->req_kept;
	s->req_kept = 0;
	if ((s->eflags & EF_REQUEST) && request_answer(st, s, req))
		return;
	/* Not answered yet, or the SYN-ACK not yet acknowledged: the PCB
	 * is not the stream's before its handshake (on_accept()). Only a
	 * reset goes at once; the rest waits for request_established(). */
	if ((s->eflags & (EF_REQUEST | EF_SYNACK)) &&
	    !((s->eflags & EF_SYNACK) && (req & REQ_ABORT))) {
		s->req_kept = req & ~(REQ_ACCEPT | REQ_QUEUED);
		return;
	}
	if (req & REQ_DROP) /* a request that timed out: its PCB is gone */
		req |= REQ_CLOSE;
	reopen_window(st, s);
	if ((req & REQ_RXBUF) && s->pcb)
		grow_window(st, s, atomic_load(&s->rx_buf_req));
	/* Relaxed: the exchange of req above (acquire) pairs with the
	 * release that set REQ_IDLE after idle_req was stored. */
	if ((req & REQ_IDLE) && s->pcb)
		s->pcb->l3x_idle_ms = atomic_load_explicit(
			&s->idle_req, memory_order_relaxed);
	if ((req & REQ_NODELAY) && s->pcb)
		tcp_nagle_disable(s->pcb);
	if ((req & REQ_DELAY) && s->pcb)
		tcp_nagle_enable(s->pcb);
	if (req & REQ_ABORT) {
		s->eflags |= EF_APP_DONE;
		stream_abort(st, s);
		l3x_flow_release(s);
		return;
	}
	if (req & REQ_SHUTDOWN)
		s->eflags |= EF_SHUT_PENDING;
	if (req & REQ_CLOSE) {
		s->eflags |= EF_APP_DONE | EF_CLOSING;
		if (!s->pcb) {
			l3x_flow_release(s);
			return;
		}
	}
	progress(st, s);
}

/* ------------------------------------------------------------ reaping */

/* Off the todo list, outside lwIP's callbacks. */
static void tcp_todo(struct l3x_stream *s)
{
	if (s->req_kept &&
	    !(s->eflags & (EF_REQUEST | EF_SYNACK | EF_ZOMBIE))) {
		serve_bits(s->w->st, s, 0); /* kept through the handshake */
		return;
	}
	if ((s->eflags & EF_APP_DONE) && !s->pcb &&
	    !(s->eflags & (EF_LINGER | EF_ZOMBIE))) {
		l3x_flow_release(s);
		return;
	}
	if (!(s->eflags & EF_ZOMBIE))
		progress(s->w->st, s);
}

static void tcp_linger(struct l3x_worker *w, uint32_t now)
{
	struct l3x_stack *st = w->st;
	struct l3x_stream *s, *next;

	request_expire(st, w, now);
	for (s = w->lingering; s; s = next) {
		bool done = !s->pcb || !(s->eflags & EF_CLOSING);

		next = s->z_next;
		if (!done && (int32_t)(now - s->linger_deadline) >= 0) {
			stream_abort(st, s); /* the client would not take it */
			done = true;
		} else if (!done && try_close(st, s)) {
			done = true;
		}
		if (!done)
			continue;
		del_linger(s);
		s->eflags &= ~EF_CLOSING;
		l3x_flow_release(s);
	}
}

/* A stream the app closed, on a worker that goes away: lwIP alone
 * finishes sending what it has, then the FIN, as the kernel does for a
 * closed socket (without linger_ms: lwIP's own retransmission limits end
 * it). Data still waiting for lwIP, or unread, means a reset instead. */
static void hand_over(struct l3x_stack *st, struct l3x_stream *s)
{
	uint64_t read = atomic_load_explicit(&s->rx_read, memory_order_acquire);
	struct tcp_pcb *pcb = s->pcb;

	if (!pcb || s->rx_delivered > read || !tx_push(s))
		return;
	/* lwIP resets on close unless the window is whole again. */
	while (pcb->rcv_wnd < TCP_WND_MAX(pcb)) {
		tcpwnd_size_t gap = TCP_WND_MAX(pcb) - pcb->rcv_wnd;

		tcp_recved(pcb, gap > 0xffff ? 0xffff : (u16_t)gap);
	}
	detach(pcb);
	if (tcp_close(pcb) != ERR_OK) {
		tcp_abort(pcb);
		STAT_INC(st, tcp_aborted);
	} else {
		STAT_INC(st, tcp_closed);
	}
	s->pcb = NULL;
}

/* @s is about to be freed: its staging buffer goes, and it leaves the
 * stack's lists. */
static void tcp_release(struct l3x_stream *s)
{
	request_del(s);
	staged_del(s);
	clamped_del(s);
	if (s->rx_stage)
		pbuf_free(s->rx_stage);
	s->rx_stage = NULL;
	s->rx_stage_fill = 0;
}

/* The app closed the worker of @s: what it still held is reset. */
static void tcp_gone(struct l3x_stream *s)
{
	struct l3x_stack *st = s->w->st;

	if (s->eflags & EF_CLOSING)
		hand_over(st, s);
	if (s->eflags & EF_REQUEST)
		request_end(st, s, true); /* as a closed port */
	stream_abort(st, s);
}

/* Stack close: every pcb lwIP still has (closing, TIME_WAIT) goes. */
void l3x_tcp_close_all(struct l3x_stack *st)
{
	while (tcp_active_pcbs)
		tcp_abort(tcp_active_pcbs);
	while (tcp_tw_pcbs)
		tcp_abort(tcp_tw_pcbs);
	if (st->listener) {
		tcp_close(st->listener);
		st->listener = NULL;
	}
}

const struct l3x_flow_ops l3x_tcp_ops = {
	.serve = tcp_serve,
	.todo = tcp_todo,
	.linger = tcp_linger,
	.gone = tcp_gone,
	.release = tcp_release,
};
