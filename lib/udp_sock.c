/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * udp_sock.c - the application side of UDP (l3x_udp__*): flows accepted
 * from a worker and sockets bound on one, the same struct l3x_stream as a
 * TCP stream, with one datagram per rx chain and per tx chunk. A bound
 * socket's datagrams carry a small header naming the client (udp.c
 * struct from_hdr). Owner thread of the worker; binding and unbinding
 * replace the engine's bound set under the stack's wlock (lib/udp.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "engine.h"
#include "mem.h"

#define U(u)	 ((struct l3x_stream *)(u))
#define CU(u)	 ((const struct l3x_stream *)(u))
#define FROM_HDR 20 /* udp.c struct from_hdr */

/* A UDP flow or bound socket: what every l3x_udp__* call takes (a TCP
 * stream is the same struct underneath, and refused). */
static bool is_udp(const struct l3x_stream *s)
{
	return s && s->kind == L3X_FLOW_UDP;
}

/* The next datagram, not yet taken: after the last one taken. */
static struct pbuf *udp_peek(struct l3x_stream *s)
{
	if (!s->rx_chain)
		/* Acquire: pairs with the engine's release of rx_first. */
		return atomic_load_explicit(&s->rx_first, memory_order_acquire);
	return l3x_stream_rx_next(s->rx_chain);
}

/* A request not yet answered (defer_accept; the engine set request
 * before it offered @s): its datagrams are held toward the destination
 * but readable, so that the app can judge them or send them on and hear
 * what the destination says (l3x-relay); nothing goes to the client. */
static bool unanswered(const struct l3x_stream *s)
{
	return s->request && !(s->aflags & AF_ANSWERED);
}

bool l3x_udp_readable(struct l3x_stream *s)
{
	return udp_peek(s) != NULL;
}

static void udp_take(struct l3x_stream *s, struct pbuf *c)
{
	if (s->rx_chain)
		s->rx_ndone++; /* the one before: the engine may free it */
	s->rx_chain = c;
	s->rx_nread++;
	/* Release: our reads of the datagrams are done (udp.c frees). */
	atomic_store_explicit(&s->rx_read, s->rx_nread, memory_order_release);
	atomic_store_explicit(&s->rx_done, s->rx_ndone, memory_order_release);
	l3x_stream_request(s, REQ_DATA);
}

long l3x_udp__recvfrom(struct l3x_udp *u, void *buf, size_t len,
		       struct sockaddr *from, size_t from_sz)
{
	struct l3x_stream *s = U(u);
	struct pbuf *c;
	uint32_t state;
	uint16_t skip = 0;
	long n;

	if (!is_udp(s) || (!buf && len))
		return -EINVAL;
	if (unanswered(s)) {
		/* A request that timed out is gone, held datagrams too. */
		state = atomic_load_explicit(&s->state, memory_order_acquire);
		if (state & ST_ERROR)
			return atomic_load_explicit(&s->err,
						    memory_order_relaxed);
	}
	c = udp_peek(s);
	if (!c) {
		state = atomic_load_explicit(&s->state, memory_order_acquire);
		if (!(state & ST_EOF))
			return -EAGAIN;
		c = udp_peek(s); /* published before the bit */
		if (!c)
			return -ETIMEDOUT; /* expired: 0 is an empty datagram */
	}
	if (s->bound) {
		uint8_t h[FROM_HDR];

		pbuf_copy_partial(c, h, FROM_HDR, 0);
		skip = FROM_HDR;
		if (from) {
			uint16_t port;
			int r;

			memcpy(&port, h + 2, 2);
			r = l3x_sockaddr_fill(h[0], h + 4, port, from, from_sz);
			if (r < 0)
				return r;
		}
	} else if (from) {
		int r = l3x_sockaddr_fill(s->family, s->client_addr,
					  s->client_port, from, from_sz);

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
	if (!l3x_stream_tx_credit(s)) {
		/* Seq_cst: as in l3x_stream__write(). */
		atomic_store(&s->want_write, 1);
		if (!l3x_stream_tx_credit(s)) {
			s->aflags |= AF_WANTW;
			return -EAGAIN;
		}
	}
	c = l3x_mem_alloc(L3X_MEM_FLOW, sizeof(*c) + hlen + len);
	if (!c)
		return -ENOMEM;
	c->next = NULL;
	c->len = (uint32_t)(hlen + len);
	c->off = 0;
	if (hlen) /* hdr may be NULL then, and memcpy wants a pointer */
		memcpy(c->data, hdr, hlen);
	memcpy(c->data + hlen, buf, len);
	l3x_stream_tx_append(s, c);
	s->tx_written++;
	l3x_stream_request(s, REQ_DATA);
	return (long)len;
}

long l3x_udp__send(struct l3x_udp *u, const void *buf, size_t len)
{
	struct l3x_stream *s = U(u);

	if (!is_udp(s) || (!buf && len) || s->bound)
		return -EINVAL;
	if (unanswered(s))
		return -ENOTCONN;
	return udp_queue_send(s, NULL, 0, buf, len);
}

int l3x_udp__answer(struct l3x_udp *u, enum l3x_answer answer)
{
	struct l3x_stream *s = U(u);
	int r = l3x_request_answer(s, is_udp(s), answer);

	/* Accepted: held datagrams may wait already, report them. */
	if (!r && answer == L3X_ANSWER_ACCEPT && l3x_udp_readable(s))
		l3x_stream_ready_add(s->w, s);
	return r;
}

/* A sockaddr as family, address bytes and port. */
static int parse_addr(const struct sockaddr *sa, size_t sz, uint8_t *family,
		      uint8_t *addr, uint16_t *port)
{
	memset(addr, 0, 16);
	if (sa && sa->sa_family == AF_INET &&
	    sz >= sizeof(struct sockaddr_in)) {
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

	if (!is_udp(s) || (!buf && len) || !s->bound)
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
	s = l3x_mem_calloc(L3X_MEM_FLOW, 1, sizeof(*s));
	if (!s)
		return NULL;
	if (parse_addr(addr, addr_sz, &s->family, s->dst_addr, &s->dst_port) ||
	    !s->dst_port) {
		l3x_mem_free(L3X_MEM_FLOW, s);
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
		l3x_mem_free(L3X_MEM_FLOW, s);
		errno = -err;
		return NULL;
	}
	s->b_next = w->bound;
	w->bound = s;
	l3x_stream_request(s,
			   REQ_DATA); /* the engine lists it under the worker */
	return (struct l3x_udp *)s;
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

int l3x_udp__close(struct l3x_udp *u)
{
	struct l3x_stream *s = U(u);

	if (!s)
		return 0;
	if (!is_udp(s))
		return -EINVAL;
	if (s->bound)
		udp_unbind(s);
	l3x_stream_done(s, REQ_CLOSE);
	return 0;
}

int l3x_udp__client_addr(const struct l3x_udp *u, struct sockaddr *addr,
			 size_t addr_sz)
{
	const struct l3x_stream *s = CU(u);

	if (!is_udp(s) || !addr)
		return -EINVAL;
	if (s->bound)
		return -ENOTCONN;
	return l3x_sockaddr_fill(s->family, s->client_addr, s->client_port,
				 addr, addr_sz);
}

int l3x_udp__orig_dst_addr(const struct l3x_udp *u, struct sockaddr *addr,
			   size_t addr_sz)
{
	const struct l3x_stream *s = CU(u);

	if (!is_udp(s) || !addr)
		return -EINVAL;
	return l3x_sockaddr_fill(s->family, s->dst_addr, s->dst_port, addr,
				 addr_sz);
}

void l3x_udp__set_user(struct l3x_udp *u, void *user)
{
	if (is_udp(U(u)))
		U(u)->user = user;
}

void *l3x_udp__user(const struct l3x_udp *u)
{
	return is_udp(CU(u)) ? CU(u)->user : NULL;
}
