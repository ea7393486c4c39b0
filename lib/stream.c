/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * stream.c - the application side: workers and TCP streams. Everything
 * here runs on the worker's owner thread and talks to the engine only
 * through the stream's atomics and the worker's two rings (engine.h).
 *
 * A worker drains its app ring into two private lists: new streams
 * (accept queue) and accepted streams with news (ready list, doubly
 * linked so that close can take a stream off it). Events are computed
 * from the stream's state when reported, so they are never stale.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/eventfd.h>

#include "engine.h"

#define MAX_CHUNK (256 * 1024)

/* ------------------------------------------------------------ requests */

/* Ask the engine for @bits. After this the caller must not rely on @s
 * staying alive if @bits closes or aborts it. */
static void request(struct l3x_stream *s, uint32_t bits)
{
	struct l3x_worker *w = s->w;
	uint64_t v = (uintptr_t)s;
	uint32_t old;

	/* Release: what the request covers (data written, bytes read) is
	 * visible to the engine's acq_rel exchange in l3x_tcp_serve(). */
	old = atomic_fetch_or_explicit(&s->req, bits | REQ_QUEUED,
				       memory_order_release);
	if (old & REQ_QUEUED)
		return;
	/* The ring holds max_flows + 64 and a stream is in it at most once
	 * (REQ_QUEUED): this cannot fail. */
	l3x_ring_enqueue_bulk_sp(w->to_eng, &v, 1);
}

/* ------------------------------------------------------------ worker */

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

static void ready_add(struct l3x_worker *w, struct l3x_stream *s)
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

static void ready_del(struct l3x_worker *w, struct l3x_stream *s)
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
			junk = 0;	/* EAGAIN: nothing to drain */
	}
	while ((n = l3x_ring_dequeue_burst_sc(w->to_app, v, 64))) {
		for (i = 0; i < n; i++) {
			struct l3x_stream *s = (void *)(uintptr_t)v[i];

			if (s->aflags & AF_CLOSED) {
				/* Release: our last touch of a stream we
				 * closed; the engine may free it after
				 * (tcp.c reap_zombies). */
				atomic_store_explicit(&s->in_app_q, 0,
						      memory_order_release);
				continue;
			}
			/* Seq_cst: cleared before we look at the state, so
			 * news after the look queues the stream again. */
			atomic_store(&s->in_app_q, 0);
			if (s->aflags & AF_ACCEPTED)
				ready_add(w, s);
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
	 * engine's ring push is before its armed read (kick_workers). */
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

static bool rx_pending(struct l3x_stream *s);
static struct pbuf *udp_peek(struct l3x_stream *s);

static uint32_t stream_events(struct l3x_stream *s)
{
	/* Acquire: pairs with the engine's release of the state bits. */
	uint32_t state = atomic_load_explicit(&s->state, memory_order_acquire);
	uint32_t ev = 0;

	if ((s->kind == L3X_FLOW_UDP ? udp_peek(s) != NULL : rx_pending(s)) ||
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

			ready_del(w, s);
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

static void udp_unbind(struct l3x_stream *s)
{
	struct l3x_worker *w = s->w;
	struct l3x_stream **pp;

	pthread_mutex_lock(&w->st->wlock);
	l3x_udp_bound_swap(w->st, NULL, s);
	pthread_mutex_unlock(&w->st->wlock);
	for (pp = &w->bound; *pp; pp = &(*pp)->b_next) {
		if (*pp == s) {
			*pp = s->b_next;
			break;
		}
	}
}

static void stream_done(struct l3x_stream *s, uint32_t req);

void l3x_worker__close(struct l3x_worker *w)
{
	if (!w)
		return;
	while (w->bound) {
		struct l3x_stream *s = w->bound;

		udp_unbind(s);
		stream_done(s, REQ_CLOSE);
	}
	/* Release: our last touch; the engine resets the streams and frees
	 * the worker (engine.c serve_workers). */
	atomic_store_explicit(&w->closing, 1, memory_order_release);
}

/* ------------------------------------------------------------ rx */

/* The chain after @p, once the engine has linked it. */
static struct pbuf *rx_next(struct pbuf *p)
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
		next = rx_next(s->rx_chain);
		if (!next)
			return false;
		/* The chain is read to its end: the engine may free it. */
		s->rx_chain = next;
		s->rx_p = next;
		s->rx_off = 0;
		s->rx_ndone++;
	}
}

static bool rx_pending(struct l3x_stream *s)
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

	if (!s || (!buf && len))
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
	request(s, REQ_DATA);
	return (long)n;
}

/* ------------------------------------------------------------ tx */

static void tx_append(struct l3x_stream *s, struct l3x_chunk *c)
{
	if (!s->tx_last)
		/* Release: pairs with the engine's acquire in tx_push(). */
		atomic_store_explicit(&s->tx_first, c, memory_order_release);
	else
		__atomic_store_n(&s->tx_last->next, c, __ATOMIC_RELEASE);
	s->tx_last = c;
}

static uint64_t tx_credit(struct l3x_stream *s)
{
	uint64_t unacked = s->tx_written - atomic_load(&s->tx_acked);

	return unacked >= s->tx_buf ? 0 : s->tx_buf - unacked;
}

long l3x_stream__write(struct l3x_stream *s, const void *buf, size_t len)
{
	struct l3x_chunk *c;
	uint32_t state;
	uint64_t credit;

	if (!s || (!buf && len))
		return -EINVAL;
	state = atomic_load_explicit(&s->state, memory_order_acquire);
	if (state & ST_ERROR)
		return atomic_load_explicit(&s->err, memory_order_relaxed);
	if ((s->aflags & AF_SHUT) || (state & ST_GONE))
		return -EPIPE;
	if (!len)
		return 0;
	credit = tx_credit(s);
	if (!credit) {
		/* Seq_cst: want_write before re-reading the credit, as the
		 * engine adds credit before reading want_write (on_sent). */
		atomic_store(&s->want_write, 1);
		credit = tx_credit(s);
		if (!credit) {
			s->aflags |= AF_WANTW;
			return -EAGAIN;
		}
	}
	if (len > credit)
		len = credit;
	if (len > MAX_CHUNK)
		len = MAX_CHUNK;
	c = malloc(sizeof(*c) + len);
	if (!c)
		return -ENOMEM;
	c->next = NULL;
	c->len = (uint32_t)len;
	c->off = 0;
	memcpy(c->data, buf, len);
	tx_append(s, c);
	s->tx_written += len;
	request(s, REQ_DATA);
	return (long)len;
}

int l3x_stream__shutdown(struct l3x_stream *s)
{
	uint32_t state;

	if (!s)
		return -EINVAL;
	state = atomic_load_explicit(&s->state, memory_order_acquire);
	if ((s->aflags & AF_SHUT) || (state & (ST_ERROR | ST_GONE)))
		return -ENOTCONN;
	s->aflags |= AF_SHUT;
	request(s, REQ_SHUTDOWN);
	return 0;
}

static void stream_done(struct l3x_stream *s, uint32_t req)
{
	ready_del(s->w, s);
	s->aflags |= AF_CLOSED;
	/* Publish what was read, so the engine can tell unread data. */
	atomic_store_explicit(&s->rx_read, s->rx_nread, memory_order_release);
	atomic_store_explicit(&s->rx_done, s->rx_ndone, memory_order_release);
	request(s, req);	/* the engine may free @s from here on */
}

void l3x_stream__close(struct l3x_stream *s)
{
	if (s)
		stream_done(s, REQ_CLOSE);
}

void l3x_stream__abort(struct l3x_stream *s)
{
	if (s)
		stream_done(s, REQ_ABORT);
}

/* ------------------------------------------------------------ info */

static int fill_addr(uint8_t family, const uint8_t *a, uint16_t port,
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
	if (!s || !addr)
		return -EINVAL;
	return fill_addr(s->family, s->client_addr, s->client_port, addr,
			 addr_sz);
}

int l3x_stream__orig_dst_addr(const struct l3x_stream *s,
			      struct sockaddr *addr, size_t addr_sz)
{
	if (!s || !addr)
		return -EINVAL;
	return fill_addr(s->family, s->dst_addr, s->dst_port, addr, addr_sz);
}

int l3x_stream__setopt(struct l3x_stream *s, enum l3x_stream_opt opt, long val)
{
	if (!s)
		return -EINVAL;
	switch (opt) {
	case L3X_STREAM_NODELAY:
		if (val != 0 && val != 1)
			return -EINVAL;
		s->aflags = val ? s->aflags | AF_NODELAY : s->aflags & ~AF_NODELAY;
		request(s, val ? REQ_NODELAY : REQ_DELAY);
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
			request(s, REQ_RXBUF);
		}
		return 0;
	}
	return -EINVAL;
}

long l3x_stream__getopt(const struct l3x_stream *s, enum l3x_stream_opt opt)
{
	if (!s)
		return -EINVAL;
	switch (opt) {
	case L3X_STREAM_NODELAY:
		return !!(s->aflags & AF_NODELAY);
	case L3X_STREAM_TX_BUF:
		return s->tx_buf;
	case L3X_STREAM_RX_BUF:
		return s->rx_buf_app;
	}
	return -EINVAL;
}

void l3x_stream__set_user(struct l3x_stream *s, void *user)
{
	if (s)
		s->user = user;
}

void *l3x_stream__user(const struct l3x_stream *s)
{
	return s ? s->user : NULL;
}

/* ------------------------------------------------------------ udp */

#define U(u) ((struct l3x_stream *)(u))
#define FROM_HDR 20	/* udp.c struct from_hdr */

/* The next datagram, not yet taken: after the last one taken. */
static struct pbuf *udp_peek(struct l3x_stream *s)
{
	if (!s->rx_chain)
		/* Acquire: pairs with the engine's release of rx_first. */
		return atomic_load_explicit(&s->rx_first, memory_order_acquire);
	return rx_next(s->rx_chain);
}

static void udp_take(struct l3x_stream *s, struct pbuf *c)
{
	if (s->rx_chain)
		s->rx_ndone++;	/* the one before: the engine may free it */
	s->rx_chain = c;
	s->rx_nread++;
	/* Release: our reads of the datagrams are done (udp.c frees). */
	atomic_store_explicit(&s->rx_read, s->rx_nread, memory_order_release);
	atomic_store_explicit(&s->rx_done, s->rx_ndone, memory_order_release);
	request(s, REQ_DATA);
}

long l3x_udp__recvfrom(struct l3x_udp *u, void *buf, size_t len,
		       struct sockaddr *from, size_t from_sz)
{
	struct l3x_stream *s = U(u);
	struct pbuf *c;
	uint32_t state;
	uint16_t skip = 0;
	long n;

	if (!s || (!buf && len) || s->kind != L3X_FLOW_UDP)
		return -EINVAL;
	c = udp_peek(s);
	if (!c) {
		state = atomic_load_explicit(&s->state, memory_order_acquire);
		if (!(state & ST_EOF))
			return -EAGAIN;
		c = udp_peek(s);	/* published before the bit */
		if (!c)
			return -ETIMEDOUT;	/* expired: 0 is an empty datagram */
	}
	if (s->bound) {
		uint8_t h[FROM_HDR];

		pbuf_copy_partial(c, h, FROM_HDR, 0);
		skip = FROM_HDR;
		if (from) {
			uint16_t port;
			int r;

			memcpy(&port, h + 2, 2);
			r = fill_addr(h[0], h + 4, port, from, from_sz);
			if (r < 0)
				return r;
		}
	} else if (from) {
		int r = fill_addr(s->family, s->client_addr, s->client_port,
				  from, from_sz);

		if (r < 0)
			return r;
	}
	n = c->tot_len - skip;
	if (len > (size_t)n)
		len = (size_t)n;
	pbuf_copy_partial(c, buf, (u16_t)len, skip);
	udp_take(s, c);
	return n;
}

long l3x_udp__recv(struct l3x_udp *u, void *buf, size_t len)
{
	return l3x_udp__recvfrom(u, buf, len, NULL, 0);
}

static long udp_queue_send(struct l3x_stream *s, const void *hdr, size_t hlen,
			   const void *buf, size_t len)
{
	size_t max = s->w->st->mtu - (s->family == 4 ? 28 : 48);
	uint32_t state = atomic_load_explicit(&s->state, memory_order_acquire);
	struct l3x_chunk *c;

	if (state & ST_GONE)
		return -EPIPE;
	if (len > max)
		return -EMSGSIZE;
	if (!tx_credit(s)) {
		/* Seq_cst: as in l3x_stream__write(). */
		atomic_store(&s->want_write, 1);
		if (!tx_credit(s)) {
			s->aflags |= AF_WANTW;
			return -EAGAIN;
		}
	}
	c = malloc(sizeof(*c) + hlen + len);
	if (!c)
		return -ENOMEM;
	c->next = NULL;
	c->len = (uint32_t)(hlen + len);
	c->off = 0;
	if (hlen)	/* hdr may be NULL then, and memcpy wants a pointer */
		memcpy(c->data, hdr, hlen);
	memcpy(c->data + hlen, buf, len);
	tx_append(s, c);
	s->tx_written++;
	request(s, REQ_DATA);
	return (long)len;
}

long l3x_udp__send(struct l3x_udp *u, const void *buf, size_t len)
{
	struct l3x_stream *s = U(u);

	if (!s || (!buf && len) || s->kind != L3X_FLOW_UDP || s->bound)
		return -EINVAL;
	return udp_queue_send(s, NULL, 0, buf, len);
}

/* A sockaddr as family, address bytes and port. */
static int parse_addr(const struct sockaddr *sa, size_t sz, uint8_t *family,
		      uint8_t *addr, uint16_t *port)
{
	memset(addr, 0, 16);
	if (sa && sa->sa_family == AF_INET && sz >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const void *)sa;

		*family = 4;
		memcpy(addr, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa && sa->sa_family == AF_INET6 &&
	    sz >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		*family = 6;
		memcpy(addr, &in6->sin6_addr, 16);
		*port = ntohs(in6->sin6_port);
		return 0;
	}
	return -EINVAL;
}

long l3x_udp__sendto(struct l3x_udp *u, const void *buf, size_t len,
		     const struct sockaddr *to, size_t to_sz)
{
	struct l3x_stream *s = U(u);
	uint8_t h[FROM_HDR] = {};
	uint16_t port;

	if (!s || (!buf && len) || s->kind != L3X_FLOW_UDP || !s->bound)
		return -EINVAL;
	if (parse_addr(to, to_sz, &h[0], h + 4, &port) || h[0] != s->family ||
	    !port)
		return -EINVAL;
	memcpy(h + 2, &port, 2);
	return udp_queue_send(s, h, sizeof(h), buf, len);
}

struct l3x_udp *l3x_udp__bind(struct l3x_worker *w, const struct sockaddr *addr,
			      size_t addr_sz)
{
	struct l3x_stream *s;
	int err;

	if (!w) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (parse_addr(addr, addr_sz, &s->family, s->dst_addr, &s->dst_port) ||
	    !s->dst_port) {
		free(s);
		errno = EINVAL;
		return NULL;
	}
	s->w = w;
	s->kind = L3X_FLOW_UDP;
	s->bound = true;
	s->tx_buf = w->st->udp_queue;
	s->aflags = AF_ACCEPTED;
	pthread_mutex_lock(&w->st->wlock);
	err = l3x_udp_bound_swap(w->st, s, NULL);
	pthread_mutex_unlock(&w->st->wlock);
	if (err) {
		free(s);
		errno = -err;
		return NULL;
	}
	s->b_next = w->bound;
	w->bound = s;
	request(s, REQ_DATA);	/* the engine lists it under the worker */
	return (struct l3x_udp *)s;
}

void l3x_udp__close(struct l3x_udp *u)
{
	struct l3x_stream *s = U(u);

	if (!s)
		return;
	if (s->bound)
		udp_unbind(s);
	stream_done(s, REQ_CLOSE);
}

int l3x_udp__client_addr(const struct l3x_udp *u, struct sockaddr *addr,
			 size_t addr_sz)
{
	const struct l3x_stream *s = (const struct l3x_stream *)u;

	if (!s || !addr)
		return -EINVAL;
	if (s->bound)
		return -ENOTCONN;
	return fill_addr(s->family, s->client_addr, s->client_port, addr,
			 addr_sz);
}

int l3x_udp__orig_dst_addr(const struct l3x_udp *u, struct sockaddr *addr,
			   size_t addr_sz)
{
	return l3x_stream__orig_dst_addr((const struct l3x_stream *)u, addr,
					 addr_sz);
}

void l3x_udp__set_user(struct l3x_udp *u, void *user)
{
	l3x_stream__set_user(U(u), user);
}

void *l3x_udp__user(const struct l3x_udp *u)
{
	return l3x_stream__user((const struct l3x_stream *)u);
}
