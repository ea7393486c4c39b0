/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * stream.c - the application side of a TCP stream (l3x_stream__*), and
 * what every handle of a worker shares, TCP stream or UDP flow and socket
 * (lib/udp_sock.c): the doorbell to the engine, membership of the
 * worker's ready list, the closing handshake, the received and written
 * data lists. Everything here runs on the worker's owner thread and talks
 * to the engine only through the stream's atomics and the worker's rings
 * (flow.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "engine.h"
#include "mem.h"

#define MAX_CHUNK (256 * 1024)

/* A TCP stream: what every l3x_stream__* call takes. A UDP flow or bound
 * socket handed in by mistake (they are the same struct underneath) is
 * refused, not served as a stream: a bound socket closed this way would
 * stay in the engine's bound set after it is freed. */
static bool is_tcp(const struct l3x_stream *s)
{
	return s && s->kind == L3X_FLOW_TCP;
}

/* ------------------------------------------------------------ requests */

/* Ask the engine for @bits. After this the caller must not rely on @s
 * staying alive if @bits closes or aborts it. */
void l3x_stream_request(struct l3x_stream *s, uint32_t bits)
{
	struct l3x_worker *w = s->w;
	uint64_t v = (uintptr_t)s;
	uint32_t old;

	/* Release: what the request covers (data written, bytes read) is
	 * visible to the engine's acq_rel exchange in tcp_serve() and
	 * udp_serve(). */
	old = atomic_fetch_or_explicit(&s->req, bits | REQ_QUEUED,
				       memory_order_release);
	if (old & REQ_QUEUED)
		return;
	/* The ring holds max_flows + 64 and a stream is in it at most once
	 * (REQ_QUEUED): this cannot fail. */
	l3x_ring_enqueue_bulk_sp(w->to_eng, &v, 1);
	l3x_engine_wake(w->st);
}

/* ------------------------------------------------------------ ready list */

void l3x_stream_ready_add(struct l3x_worker *w, struct l3x_stream *s)
{
	if (s->aflags & AF_READY)
		return;
	s->aflags |= AF_READY;
	s->r_next = NULL;
	s->r_prev = w->ready_tail;
	if (w->ready_tail)
		w->ready_tail->r_next = s;
	else
		w->ready_head = s;
	w->ready_tail = s;
}

void l3x_stream_ready_del(struct l3x_worker *w, struct l3x_stream *s)
{
	if (!(s->aflags & AF_READY))
		return;
	s->aflags &= ~AF_READY;
	if (s->r_prev)
		s->r_prev->r_next = s->r_next;
	else
		w->ready_head = s->r_next;
	if (s->r_next)
		s->r_next->r_prev = s->r_prev;
	else
		w->ready_tail = s->r_prev;
	s->r_prev = s->r_next = NULL;
}

/* ------------------------------------------------------------ rx */

/* The chain after @p, once the engine has linked it. */
struct pbuf *l3x_stream_rx_next(struct pbuf *p)
{
	/* Acquire: pairs with the engine's release in pbuf_set_qnext(). */
	return __atomic_load_n(&p->l3x_qnext, __ATOMIC_ACQUIRE);
}

/* Position on readable bytes if any: true when rx_p has some. */
static bool rx_seek(struct l3x_stream *s)
{
	struct pbuf *next;

	if (!s->rx_chain) {
		/* Acquire: pairs with the engine's release of rx_first. */
		s->rx_chain = atomic_load_explicit(&s->rx_first,
						   memory_order_acquire);
		if (!s->rx_chain)
			return false;
		s->rx_p = s->rx_chain;
		s->rx_off = 0;
	}
	for (;;) {
		while (s->rx_p && s->rx_off == s->rx_p->len) {
			s->rx_p = s->rx_p->next;
			s->rx_off = 0;
		}
		if (s->rx_p)
			return true;
		next = l3x_stream_rx_next(s->rx_chain);
		if (!next)
			return false;
		/* The chain is read to its end: the engine may free it. */
		s->rx_chain = next;
		s->rx_p = next;
		s->rx_off = 0;
		s->rx_ndone++;
	}
}

bool l3x_stream_readable(struct l3x_stream *s)
{
	return rx_seek(s);
}

static size_t rx_copy(struct l3x_stream *s, uint8_t *buf, size_t len)
{
	size_t n = 0, k;

	while (n < len && rx_seek(s)) {
		k = s->rx_p->len - s->rx_off;
		if (k > len - n)
			k = len - n;
		memcpy(buf + n, (uint8_t *)s->rx_p->payload + s->rx_off, k);
		s->rx_off += (uint32_t)k;
		n += k;
	}
	/* Let go of a chain read to its end now, not on the next read. */
	rx_seek(s);
	return n;
}

long l3x_stream__read(struct l3x_stream *s, void *buf, size_t len)
{
	uint32_t state;
	size_t n;

	if (!is_tcp(s) || (!buf && len))
		return -EINVAL;
	if (!len)
		return 0;
	n = rx_copy(s, buf, len);
	if (!n) {
		state = atomic_load_explicit(&s->state, memory_order_acquire);
		if (!(state & (ST_EOF | ST_ERROR)))
			return -EAGAIN;
		/* Data published before the bit is readable first. */
		n = rx_copy(s, buf, len);
		if (!n) {
			if (state & ST_ERROR)
				return atomic_load_explicit(
					&s->err, memory_order_relaxed);
			return 0;
		}
	}
	s->rx_nread += n;
	/* Release: the engine frees chains and reopens the window only
	 * after our reads of them (tcp.c reopen_window). */
	atomic_store_explicit(&s->rx_read, s->rx_nread, memory_order_release);
	atomic_store_explicit(&s->rx_done, s->rx_ndone, memory_order_release);
	l3x_stream_request(s, REQ_DATA);
	return (long)n;
}

/* ------------------------------------------------------------ tx */

void l3x_stream_tx_append(struct l3x_stream *s, struct l3x_chunk *c)
{
	if (!s->tx_last)
		/* Release: pairs with the engine's acquire in tx_push(). */
		atomic_store_explicit(&s->tx_first, c, memory_order_release);
	else
		__atomic_store_n(&s->tx_last->next, c, __ATOMIC_RELEASE);
	s->tx_last = c;
}

uint64_t l3x_stream_tx_credit(struct l3x_stream *s)
{
	uint64_t unacked = s->tx_written - atomic_load(&s->tx_acked);

	return unacked >= s->tx_buf ? 0 : s->tx_buf - unacked;
}

long l3x_stream__write(struct l3x_stream *s, const void *buf, size_t len)
{
	struct l3x_chunk *c;
	uint32_t state;
	uint64_t credit;

	if (!is_tcp(s) || (!buf && len))
		return -EINVAL;
	state = atomic_load_explicit(&s->state, memory_order_acquire);
	if (state & ST_ERROR)
		return atomic_load_explicit(&s->err, memory_order_relaxed);
	if ((s->aflags & AF_SHUT) || (state & ST_GONE))
		return -EPIPE;
	if (!len)
		return 0;
	credit = l3x_stream_tx_credit(s);
	if (!credit) {
		/* Seq_cst: want_write before re-reading the credit, as the
		 * engine adds credit before reading want_write (on_sent). */
		atomic_store(&s->want_write, 1);
		credit = l3x_stream_tx_credit(s);
		if (!credit) {
			s->aflags |= AF_WANTW;
			return -EAGAIN;
		}
	}
	if (len > credit)
		len = credit;
	if (len > MAX_CHUNK)
		len = MAX_CHUNK;
	c = l3x_mem_alloc(L3X_MEM_FLOW, sizeof(*c) + len);
	if (!c)
		return -ENOMEM;
	c->next = NULL;
	c->len = (uint32_t)len;
	c->off = 0;
	memcpy(c->data, buf, len);
	l3x_stream_tx_append(s, c);
	s->tx_written += len;
	l3x_stream_request(s, REQ_DATA);
	return (long)len;
}

int l3x_stream__shutdown(struct l3x_stream *s)
{
	uint32_t state;

	if (!is_tcp(s))
		return -EINVAL;
	state = atomic_load_explicit(&s->state, memory_order_acquire);
	if ((s->aflags & AF_SHUT) || (state & (ST_ERROR | ST_GONE)))
		return -ENOTCONN;
	s->aflags |= AF_SHUT;
	l3x_stream_request(s, REQ_SHUTDOWN);
	return 0;
}

void l3x_stream_done(struct l3x_stream *s, uint32_t req)
{
	l3x_stream_ready_del(s->w, s);
	s->aflags |= AF_CLOSED;
	/* Publish what was read, so the engine can tell unread data. */
	atomic_store_explicit(&s->rx_read, s->rx_nread, memory_order_release);
	atomic_store_explicit(&s->rx_done, s->rx_ndone, memory_order_release);
	l3x_stream_request(s, req); /* the engine may free @s from here on */
}

int l3x_stream__close(struct l3x_stream *s)
{
	if (!s)
		return 0;
	if (!is_tcp(s))
		return -EINVAL;
	l3x_stream_done(s, REQ_CLOSE);
	return 0;
}

int l3x_stream__abort(struct l3x_stream *s)
{
	if (!s)
		return 0;
	if (!is_tcp(s))
		return -EINVAL;
	l3x_stream_done(s, REQ_ABORT);
	return 0;
}

/* ------------------------------------------------------------ answers */

/* A request the application has not yet accepted (the engine wrote
 * request and the syn_ fields before it offered @s, which the app ring's
 * release/acquire orders before our first look). */
static bool unanswered(const struct l3x_stream *s)
{
	return s->request && !(s->aflags & AF_ANSWERED);
}

int l3x_stream__request(const struct l3x_stream *s, struct l3x_request *req)
{
	if (!is_tcp(s) || !req)
		return -EINVAL;
	if (!unanswered(s))
		return -ENOENT;
	memset(req, 0, sizeof(*req));
	req->mss = s->syn_mss;
	req->wscale = s->syn_wscale;
	req->sack = s->syn_sack;
	req->ts = s->syn_ts;
	req->tsval = s->syn_tsval;
	return 0;
}

int l3x_request_answer(struct l3x_stream *s, bool kind_ok,
		       enum l3x_answer answer)
{
	if (!kind_ok || !s->request || (unsigned)answer > L3X_ANSWER_DROP)
		return -EINVAL;
	if (s->aflags & AF_ANSWERED)
		return -EALREADY;
	switch (answer) {
	case L3X_ANSWER_ACCEPT:
		/* Acquire: the error published with ST_ERROR. */
		if (atomic_load_explicit(&s->state, memory_order_acquire) &
		    ST_ERROR)
			return atomic_load_explicit(&s->err,
						    memory_order_relaxed);
		s->aflags |= AF_ANSWERED;
		l3x_stream_request(s, REQ_ACCEPT);
		return 0;
	case L3X_ANSWER_REFUSE:
		/* A request's abort: a RST (TCP), port unreachable (UDP). */
		l3x_stream_done(s, REQ_ABORT);
		return 0;
	default:
		l3x_stream_done(s, REQ_DROP);
		return 0;
	}
}

int l3x_stream__answer(struct l3x_stream *s, enum l3x_answer answer)
{
	return l3x_request_answer(s, is_tcp(s), answer);
}

/* ------------------------------------------------------------ info */

int l3x_sockaddr_fill(uint8_t family, const uint8_t *a, uint16_t port,
		      struct sockaddr *sa, size_t sz)
{
	if (family == 4) {
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_port = htons(port) };

		if (sz < sizeof(sin))
			return -ENOSPC;
		memcpy(&sin.sin_addr, a, 4);
		memcpy(sa, &sin, sizeof(sin));
		return sizeof(sin);
	} else {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
					     .sin6_port = htons(port) };

		if (sz < sizeof(sin6))
			return -ENOSPC;
		memcpy(&sin6.sin6_addr, a, 16);
		memcpy(sa, &sin6, sizeof(sin6));
		return sizeof(sin6);
	}
}

int l3x_stream__client_addr(const struct l3x_stream *s, struct sockaddr *addr,
			    size_t addr_sz)
{
	if (!is_tcp(s) || !addr)
		return -EINVAL;
	return l3x_sockaddr_fill(s->family, s->client_addr, s->client_port,
				 addr, addr_sz);
}

int l3x_stream__orig_dst_addr(const struct l3x_stream *s, struct sockaddr *addr,
			      size_t addr_sz)
{
	if (!is_tcp(s) || !addr)
		return -EINVAL;
	return l3x_sockaddr_fill(s->family, s->dst_addr, s->dst_port, addr,
				 addr_sz);
}

int l3x_stream__setopt(struct l3x_stream *s, enum l3x_stream_opt opt, long val)
{
	if (!is_tcp(s))
		return -EINVAL;
	switch (opt) {
	case L3X_STREAM_NODELAY:
		if (val != 0 && val != 1)
			return -EINVAL;
		s->aflags =
			val ? s->aflags | AF_NODELAY : s->aflags & ~AF_NODELAY;
		l3x_stream_request(s, val ? REQ_NODELAY : REQ_DELAY);
		return 0;
	case L3X_STREAM_TX_BUF:
		if (val < 4096 || val > (1l << 30))
			return -EINVAL;
		s->tx_buf = (uint32_t)val;
		return 0;
	case L3X_STREAM_RX_BUF:
		if (val < 65536 || val > L3X_TCP_WND_MAX)
			return -EINVAL;
		if ((uint32_t)val > s->rx_buf_app) {
			s->rx_buf_app = (uint32_t)val;
			atomic_store_explicit(&s->rx_buf_req, (uint32_t)val,
					      memory_order_relaxed);
			l3x_stream_request(s, REQ_RXBUF);
		}
		return 0;
	case L3X_STREAM_IDLE_MS:
		if (s->kind != L3X_FLOW_TCP || val < 1000 ||
		    (unsigned long)val > L3X_MS_NEVER)
			return -EINVAL;
		s->idle_ms_app = val == L3X_MS_NEVER ? 0 : (uint32_t)val;
		/* Relaxed: published by the request's release (the engine
		 * takes REQ_IDLE with acquire, tcp.c tcp_serve). */
		atomic_store_explicit(&s->idle_req, s->idle_ms_app,
				      memory_order_relaxed);
		l3x_stream_request(s, REQ_IDLE);
		return 0;
	}
	return -EINVAL;
}

long l3x_stream__getopt(const struct l3x_stream *s, enum l3x_stream_opt opt)
{
	if (!is_tcp(s))
		return -EINVAL;
	switch (opt) {
	case L3X_STREAM_NODELAY:
		return !!(s->aflags & AF_NODELAY);
	case L3X_STREAM_TX_BUF:
		return s->tx_buf;
	case L3X_STREAM_RX_BUF:
		return s->rx_buf_app;
	case L3X_STREAM_IDLE_MS:
		if (s->kind != L3X_FLOW_TCP)
			return -EINVAL;
		return s->idle_ms_app ? (long)s->idle_ms_app : L3X_MS_NEVER;
	}
	return -EINVAL;
}

void l3x_stream__set_user(struct l3x_stream *s, void *user)
{
	if (is_tcp(s))
		s->user = user;
}

void *l3x_stream__user(const struct l3x_stream *s)
{
	return is_tcp(s) ? s->user : NULL;
}
