/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * udp.c - the engine side of UDP: one lwIP PCB takes every datagram
 * (lib/lwip/patches 0003) and we sort them:
 *   1. to a bound socket when one covers the destination (address, port):
 *      an immutable array the application threads replace under the
 *      stack's wlock, the old one freed by epoch (lib/epoch.c);
 *   2. else to the flow of (zone, client, destination), the zone being
 *      the VLAN IDs of the frame (0 untagged, lib/link_xsk.c): a chained
 *      hash table
 *      under a secret key, at most UDP_BUCKET_MAX flows per chain, so
 *      O(1) per datagram whatever the number of flows or who chose them;
 *      a new key makes a new flow, handed to a worker like a TCP stream,
 *      within the UDP flow budget (max_udp_flows): when it is full, the
 *      oldest flow never answered is evicted to make room.
 * A protocol leaf: it calls lib/flow.c (l3x_udp_ops is how flow.c calls
 * it back), lib/epoch.c and lwIP, nothing else.
 * Datagrams queue on the same intrusive pbuf lists as TCP data, one chain
 * per datagram; a bound socket's carry a small header naming the client.
 * Idle flows expire from the heads of two lists kept in activity order
 * (never answered, answered), so the timer costs O(expired), not
 * O(flows).
 * With defer_accept a new flow is a request (the requests section below).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/icmp.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip.h"
#include "lwip/prot/icmp6.h"
#include "lwip/sys.h"
#include "lwip/udp.h"

#include "engine.h"
#include "hash.h"
#include "l3x_csum.h"
#include "l3x_hooks.h"
#include "mem.h"
#include "way.h"

/* The client of a datagram a bound socket receives, ahead of the data. */
struct from_hdr {
	uint8_t family;
	uint8_t pad;
	uint16_t port; /* host order */
	uint8_t addr[16];
};

static void addr_bytes(const ip_addr_t *a, uint8_t *out, uint8_t *family)
{
	if (IP_IS_V6(a)) {
		*family = 6;
		memcpy(out, ip_2_ip6(a)->addr, 16);
	} else {
		*family = 4;
		memset(out, 0, 16);
		memcpy(out, &ip_2_ip4(a)->addr, 4);
	}
}

static void bytes_addr(uint8_t family, const uint8_t *in, ip_addr_t *a)
{
	if (family == 6) {
		ip_addr_set_zero_ip6(a);
		memcpy(ip_2_ip6(a)->addr, in, 16);
	} else {
		ip_addr_set_zero_ip4(a);
		memcpy(&ip_2_ip4(a)->addr, in, 4);
	}
}

/*
 * The flow table's hash: SipHash under a random key per process (hash.c),
 * so that no client can choose flows that share a bucket. A chain holds at
 * most udp_bucket_max flows (a new flow whose bucket is full is refused,
 * counted): the table has a bucket per flow max_udp_flows allows, so at
 * full load a chain of 16 comes once in ~5 * 10^13 buckets, and a lookup
 * compares at most 16 keys.
 */
#define UDP_BUCKET_MAX 16

static uint32_t key_hash(uint32_t zone, uint8_t family, const uint8_t *ca,
			 uint16_t cp, const uint8_t *da, uint16_t dp)
{
	uint8_t k[42];
	unsigned n = family == 4 ? 4 : 16;

	memset(k, 0, sizeof(k));
	k[0] = family;
	memcpy(k + 2, &cp, 2);
	memcpy(k + 4, &dp, 2);
	memcpy(k + 6, ca, n);
	memcpy(k + 22, da, n);
	memcpy(k + 38, &zone, 4);
	return (uint32_t)l3x_hash(L3X_HASH_UDP_FLOW, k, sizeof(k));
}

uint32_t l3x_udp_flow_hash(uint8_t family, const uint8_t *ca, uint16_t cp,
			   const uint8_t *da, uint16_t dp)
{
	return key_hash(0, family, ca, cp, da, dp);
}

static uint32_t flow_hash(const struct l3x_stream *s)
{
	return key_hash(s->zone, s->family, s->client_addr, s->client_port,
			s->dst_addr, s->dst_port);
}

/* ------------------------------------------------------------ idle lists */

/* The flows in activity order, in two lists: those never answered (what a
 * spoofed flood makes, evicted first), and those answered. */
#define QUIET	 0
#define ANSWERED 1

static unsigned list_of(const struct l3x_stream *s)
{
	return s->eflags & EF_ANSWERED ? ANSWERED : QUIET;
}

static void lru_del(struct l3x_stack *st, struct l3x_stream *s)
{
	unsigned l = list_of(s);

	if (s->lru_prev)
		s->lru_prev->lru_next = s->lru_next;
	else
		st->udp_idle[l].head = s->lru_next;
	if (s->lru_next)
		s->lru_next->lru_prev = s->lru_prev;
	else
		st->udp_idle[l].tail = s->lru_prev;
	s->lru_prev = s->lru_next = NULL;
}

static void lru_add(struct l3x_stack *st, struct l3x_stream *s)
{
	unsigned l = list_of(s);

	s->last_active = sys_now();
	s->lru_next = NULL;
	s->lru_prev = st->udp_idle[l].tail;
	if (st->udp_idle[l].tail)
		st->udp_idle[l].tail->lru_next = s;
	else
		st->udp_idle[l].head = s;
	st->udp_idle[l].tail = s;
}

static void touch(struct l3x_stack *st, struct l3x_stream *s)
{
	if (!(s->eflags & EF_HASHED) || st->udp_idle[list_of(s)].tail == s) {
		s->last_active = sys_now();
		return;
	}
	lru_del(st, s);
	lru_add(st, s);
}

/* We sent on @s: active now, and answered from now on. */
static void touch_answered(struct l3x_stack *st, struct l3x_stream *s)
{
	if (!(s->eflags & EF_HASHED) || (s->eflags & EF_ANSWERED)) {
		touch(st, s);
		return;
	}
	lru_del(st, s);
	s->eflags |= EF_ANSWERED;
	lru_add(st, s);
}

/* Out of the table and the idle list: no datagram finds it any more. */
static void forget(struct l3x_stack *st, struct l3x_stream *s)
{
	struct l3x_stream **pp;

	if (!(s->eflags & EF_HASHED))
		return;
	s->eflags &= ~EF_HASHED;
	l3x_way_put(s->way);
	s->way = NULL;
	for (pp = &st->udp_tab[flow_hash(s) & st->udp_mask]; *pp;
	     pp = &(*pp)->h_next) {
		if (*pp == s) {
			*pp = s->h_next;
			break;
		}
	}
	lru_del(st, s);
}

/* ------------------------------------------------------------ requests */

/*
 * Deferred accept (opts.defer_accept): a new flow is offered as a request,
 * its datagrams held (at most udp_queue, as any flow's; the app reads none
 * before it accepts). The app answers (udp_serve): REQ_ACCEPT lets it go
 * on; REQ_ABORT (refuse) sends ICMP/ICMPv6 port unreachable quoting the
 * first datagram and removes the flow; REQ_DROP or REQ_CLOSE (drop)
 * removes it silently, but keeps its key in the table for
 * request_timeout_ms (EF_HUSH), so that the client's retries are dropped
 * (udp_rx_dropped) and make no new request. A request not answered within
 * request_timeout_ms is dropped (l3x_udp_reap). Requests and hushed flows
 * wait on one list in deadline order, as all wait the same time.
 */
static void urq_del(struct l3x_stack *st, struct l3x_stream *s)
{
	if (!(s->eflags & (EF_REQUEST | EF_HUSH)))
		return;
	if (s->urq_prev)
		s->urq_prev->urq_next = s->urq_next;
	else
		st->udp_rq_head = s->urq_next;
	if (s->urq_next)
		s->urq_next->urq_prev = s->urq_prev;
	else
		st->udp_rq_tail = s->urq_prev;
	s->urq_prev = s->urq_next = NULL;
	s->eflags &= ~(EF_REQUEST | EF_HUSH);
}

static void urq_add(struct l3x_stack *st, struct l3x_stream *s, uint32_t flag)
{
	s->eflags |= flag;
	s->rq_deadline = sys_now() + st->request_timeout_ms;
	s->urq_next = NULL;
	s->urq_prev = st->udp_rq_tail;
	if (st->udp_rq_tail)
		st->udp_rq_tail->urq_next = s;
	else
		st->udp_rq_head = s;
	st->udp_rq_tail = s;
}

static void quote_free(struct l3x_stream *s)
{
	l3x_mem_free(L3X_MEM_FLOW, s->rq_quote);
	s->rq_quote = NULL;
	s->rq_quote_len = 0;
}

/* The start of datagram @p being input now, as an ICMP error quotes it:
 * its IP header and UDP header (RFC 792), and for IPv6 as much of the rest
 * as fits in 1280 bytes (RFC 4443). False: no memory (then no ICMP). */
static bool quote_keep(struct l3x_stream *s, struct pbuf *p)
{
	const uint8_t *ip = s->family == 4
				    ? (const uint8_t *)ip4_current_header()
				    : (const uint8_t *)ip6_current_header();
	const uint8_t *uh = (const uint8_t *)p->payload - UDP_HLEN;
	size_t hl = ip_current_header_tot_len(), fixed = hl, n;
	uint8_t *q;

	/* The UDP header lies just before the data (udp_input() took it
	 * off), after the IP headers unless reassembly moved them: then
	 * the fixed header alone, saying UDP follows. */
	if (s->family == 6 && uh != ip + hl)
		fixed = IP6_HLEN;
	n = fixed + UDP_HLEN;
	if (s->family == 6) {
		n += p->tot_len;
		if (n > 1280 - IP6_HLEN - 8)
			n = 1280 - IP6_HLEN - 8;
	}
	q = l3x_mem_alloc(L3X_MEM_FLOW, n);
	if (!q)
		return false;
	memcpy(q, ip, fixed);
	if (fixed != hl)
		q[6] = IP_PROTO_UDP; /* next header */
	memcpy(q + fixed, uh, UDP_HLEN);
	if (n > fixed + UDP_HLEN)
		pbuf_copy_partial(p, q + fixed + UDP_HLEN,
				  (u16_t)(n - fixed - UDP_HLEN), 0);
	s->rq_quote = q;
	s->rq_quote_len = (uint16_t)n;
	return true;
}

/* Refuse request @s: port unreachable to its client, from its original
 * destination, by the flow's way back (the link finds it from the quoted
 * datagram: lib/link_xsk.c way_of()). */
static void refuse_send(struct l3x_stack *st, struct l3x_stream *s)
{
	struct netif_hint hint, *saved = st->netif.hints;
	bool v4 = s->family == 4;
	ip_addr_t src, dst;
	struct pbuf *p;
	uint8_t *h;
	u16_t sum;
	err_t err;

	if (!s->rq_quote)
		return;
	p = pbuf_alloc(PBUF_IP, (u16_t)(8 + s->rq_quote_len), PBUF_RAM);
	if (!p) {
		STAT_INC(st, udp_tx_failed);
		return;
	}
	h = p->payload;
	memset(h, 0, 8);
	h[0] = v4 ? ICMP_DUR : ICMP6_TYPE_DUR;
	h[1] = v4 ? ICMP_DUR_PORT : ICMP6_DUR_PORT;
	memcpy(h + 8, s->rq_quote, s->rq_quote_len);
	bytes_addr(s->family, s->dst_addr, &src);
	bytes_addr(s->family, s->client_addr, &dst);
	if (v4)
		sum = inet_chksum(h, p->len);
	else
		sum = ip_chksum_pseudo(p, IP6_NEXTH_ICMP6, p->tot_len, &src,
				       &dst);
	memcpy(h + 2, &sum, 2);
	memset(&hint, 0, sizeof(hint));
	hint.l3x_zone = s->zone;
	st->netif.hints = &hint;
	err = ip_output_if(p, &src, &dst, v4 ? ICMP_TTL : 255, 0,
			   v4 ? IP_PROTO_ICMP : IP6_NEXTH_ICMP6, &st->netif);
	st->netif.hints = saved;
	pbuf_free(p);
	if (err != ERR_OK)
		STAT_INC(st, udp_tx_failed);
}

/* Hushed flow @s (the app let go of it) ends: out of the table, freed. */
static void hush_end(struct l3x_stack *st, struct l3x_stream *s)
{
	urq_del(st, s);
	forget(st, s);
	l3x_flow_release(s);
}

/* ------------------------------------------------------------ receive */

static struct l3x_stream *find_bound(struct l3x_stack *st, uint8_t family,
				     const uint8_t *da, uint16_t dp)
{
	/* Acquire: pairs with the release in l3x_udp_bound_swap(). */
	struct l3x_bound_set *b =
		atomic_load_explicit(&st->bound, memory_order_acquire);
	size_t i;

	for (i = 0; b && i < b->n; i++) {
		struct l3x_stream *s = b->s[i];

		if (s->family == family && s->dst_port == dp &&
		    !memcmp(s->dst_addr, da, family == 4 ? 4 : 16))
			return s;
	}
	return NULL;
}

/* The flow of a key, or NULL; *@chain: flows in its bucket. */
static struct l3x_stream *find_flow(struct l3x_stack *st, uint32_t zone,
				    uint8_t family, const uint8_t *ca,
				    uint16_t cp, const uint8_t *da, uint16_t dp,
				    uint32_t *chain)
{
	struct l3x_stream *s;
	unsigned n = family == 4 ? 4 : 16;

	*chain = 0;
	s = st->udp_tab[key_hash(zone, family, ca, cp, da, dp) & st->udp_mask];
	for (; s; s = s->h_next) {
		if (s->zone == zone && s->family == family &&
		    s->client_port == cp && s->dst_port == dp &&
		    !memcmp(s->client_addr, ca, n) &&
		    !memcmp(s->dst_addr, da, n))
			return s;
		(*chain)++;
	}
	return NULL;
}

/* The flow budget is full: the oldest flow never answered goes, as if it
 * had expired, to make room. False when there is none, or when too many
 * evicted flows still wait for the application to close them. */
static bool evict_quiet(struct l3x_stack *st)
{
	struct l3x_stream *s = st->udp_idle[QUIET].head;

	if (!s || st->flows_outside[L3X_FLOW_UDP] >= L3X_UDP_EVICTED_MAX)
		return false;
	if (s->eflags & EF_HUSH) {
		hush_end(st, s);
		return true;
	}
	urq_del(st, s);
	quote_free(s);
	forget(st, s);
	l3x_flow_unbudget(s);
	/* Release: before the app sees the bits. */
	atomic_fetch_or_explicit(&s->state, ST_EOF | ST_GONE,
				 memory_order_release);
	STAT_INC(st, udp_evicted);
	l3x_flow_notify(s);
	return true;
}

/* Room for a new flow from @ca whose bucket holds @chain flows; else
 * counted, false. */
static bool admit(struct l3x_stack *st, uint8_t family, const uint8_t *ca,
		  uint32_t chain)
{
	int err;

	if (chain >= st->udp_bucket_max) {
		STAT_INC(st, udp_refused_hash);
		return false;
	}
	if (l3x_flow_mem_full(st)) {
		STAT_INC(st, rx_dropped_memory);
		return false;
	}
	err = l3x_flow_admit(st, L3X_FLOW_UDP, family, ca);
	if (err == -ENOSPC && evict_quiet(st))
		err = l3x_flow_admit(st, L3X_FLOW_UDP, family, ca);
	if (err == -EDQUOT)
		STAT_INC(st, udp_refused_source);
	else if (err == -EBUSY)
		STAT_INC(st, udp_refused_hash);
	return !err;
}

static struct l3x_stream *new_flow(struct l3x_stack *st, uint32_t zone,
				   uint8_t family, const uint8_t *ca,
				   uint16_t cp, const uint8_t *da, uint16_t dp,
				   uint32_t chain, struct pbuf *p)
{
	struct l3x_stream *s, **head;
	struct l3x_worker *w;
	struct l3x_way *way;

	if (!admit(st, family, ca, chain))
		return NULL;
	w = l3x_flow_pick_worker(st);
	if (!w)
		return NULL;
	if (l3x_flow_way(st, family, IP_PROTO_UDP, ca, cp, da, dp, &way))
		return NULL;
	s = l3x_flow_new(w, L3X_FLOW_UDP);
	if (!s) {
		l3x_way_put(way);
		return NULL;
	}
	s->way = way;
	s->zone = zone;
	s->family = family;
	s->client_port = cp;
	s->dst_port = dp;
	memcpy(s->client_addr, ca, 16);
	memcpy(s->dst_addr, da, 16);
	s->tx_buf = st->udp_queue;
	head = &st->udp_tab[flow_hash(s) & st->udp_mask];
	s->h_next = *head;
	*head = s;
	s->eflags |= EF_HASHED;
	lru_add(st, s);
	if (st->defer_accept) {
		/* Before the offer: the app reads request after it. */
		s->request = true;
		quote_keep(s, p); /* without it, a refusal sends nothing */
		urq_add(st, s, EF_REQUEST);
		STAT_INC(st, udp_requests);
	}
	l3x_flow_offer(s);
	STAT_INC(st, udp_flows);
	return s;
}

/* Memory for one more datagram of @cost on @s: below mem_adm, and under
 * pressure within a flow's share (a bound socket serves many clients:
 * only the first bound applies to it). Else counted, false. */
static bool mem_admits(struct l3x_stack *st, struct l3x_stream *s, size_t cost)
{
	if (!l3x_flow_mem_full(st) &&
	    (s->bound || !l3x_flow_mem_pressure(st) ||
	     s->rx_charge + cost <= l3x_flow_mem_share(st, L3X_FLOW_UDP)))
		return true;
	STAT_INC(st, rx_dropped_memory);
	return false;
}

static void deliver(struct l3x_stack *st, struct l3x_stream *s, struct pbuf *p)
{
	uint64_t read = atomic_load_explicit(&s->rx_read, memory_order_acquire);
	size_t cost = l3x_flow_pbuf_cost(p);

	if (s->rx_dgrams - read >= st->udp_queue) {
		STAT_INC(st, udp_rx_dropped);
		pbuf_free(p);
		return;
	}
	if (!mem_admits(st, s, cost)) {
		pbuf_free(p);
		return;
	}
	s->rx_charge += cost;
	p->l3x_qnext = NULL;
	if (!s->rx_last) {
		s->rx_reclaim = p;
		/* Release: pairs with the acquire in udp_sock.c udp_peek(). */
		atomic_store_explicit(&s->rx_first, p, memory_order_release);
	} else {
		/* Release: the datagram is written before it is linked. */
		__atomic_store_n(&s->rx_last->l3x_qnext, p, __ATOMIC_RELEASE);
	}
	s->rx_last = p;
	s->rx_dgrams++;
	STAT_INC(st, udp_rx);
	l3x_flow_notify(s);
}

/*
 * A bound socket answers clients by address, long after their datagrams
 * came: it keeps the ways of the senders of its last 2 * udp_queue
 * datagrams (a ring; the oldest reference goes as a new one comes), and a
 * reply to a client older than that has no way (tx_no_way). False when the
 * way is refused (counted).
 */
static bool bound_learn(struct l3x_stack *st, struct l3x_stream *s,
			uint8_t family, const uint8_t *ca, uint16_t cp,
			const uint8_t *da, uint16_t dp)
{
	struct l3x_way *way, **slot;
	uint32_t n = 2;

	if (l3x_flow_way(st, family, IP_PROTO_UDP, ca, cp, da, dp, &way))
		return false;
	if (!way)
		return true; /* no layer 2 */
	if (!s->ways) {
		while (n < 2 * st->udp_queue)
			n <<= 1;
		s->ways = l3x_mem_calloc(L3X_MEM_FLOW, n, sizeof(*s->ways));
		if (!s->ways) {
			STAT_INC(st, way_refused);
			l3x_way_put(way);
			return false;
		}
		s->ways_mask = n - 1;
	}
	slot = &s->ways[s->ways_next++ & s->ways_mask];
	l3x_way_put(*slot);
	*slot = way;
	return true;
}

/* A bound socket is done: its clients' ways go. */
static void bound_forget(struct l3x_stream *s)
{
	uint32_t i;

	if (!s->ways)
		return;
	for (i = 0; i <= s->ways_mask; i++)
		l3x_way_put(s->ways[i]);
	l3x_mem_free(L3X_MEM_FLOW, s->ways);
	s->ways = NULL;
}

static void on_udp(void *arg, struct udp_pcb *pcb, struct pbuf *p,
		   const ip_addr_t *addr, u16_t port)
{
	struct l3x_stack *st = arg;
	uint8_t ca[16], da[16], family, f2;
	uint16_t dp = udp_current_dest_port();
	struct l3x_stream *s;
	uint32_t chain;

	(void)pcb;
	addr_bytes(addr, ca, &family);
	addr_bytes(ip_current_dest_addr(), da, &f2);
	s = find_bound(st, family, da, dp);
	if (s) {
		struct from_hdr *h;

		if (!bound_learn(st, s, family, ca, port, da, dp) ||
		    pbuf_add_header(p, sizeof(*h))) {
			STAT_INC(st, udp_rx_dropped);
			pbuf_free(p);
			return;
		}
		h = p->payload;
		h->family = family;
		h->port = port;
		memcpy(h->addr, ca, 16);
		l3x_flow_link(s);
		deliver(st, s, p);
		return;
	}
	s = find_flow(st, l3x_zone_in, family, ca, port, da, dp, &chain);
	if (!s) {
		s = new_flow(st, l3x_zone_in, family, ca, port, da, dp, chain,
			     p);
		if (!s) {
			STAT_INC(st, udp_refused);
			pbuf_free(p);
			return;
		}
	} else if (s->eflags & EF_HUSH) {
		STAT_INC(st, udp_rx_dropped); /* a dropped request's retry */
		pbuf_free(p);
		return;
	} else {
		touch(st, s);
	}
	deliver(st, s, p);
}

int l3x_udp_listen(struct l3x_stack *st)
{
	uint32_t size = 1024;

	/* A bucket per flow the budget allows: the chain bound above. */
	while (size < st->max_kind[L3X_FLOW_UDP] && size < (1u << 24))
		size <<= 1;
	st->udp_tab = calloc(size, sizeof(*st->udp_tab));
	if (!st->udp_tab)
		return -ENOMEM;
	st->udp_mask = size - 1;
	st->udp_bucket_max = UDP_BUCKET_MAX;
	st->udp_pcb = udp_new_ip_type(IPADDR_TYPE_ANY);
	if (!st->udp_pcb)
		return -ENOMEM;
	ip_set_option(st->udp_pcb, SOF_L3X_ANYDEST);
	if (udp_bind(st->udp_pcb, IP_ANY_TYPE, 0) != ERR_OK)
		return -EADDRINUSE;
	udp_recv(st->udp_pcb, on_udp, st);
	return 0;
}

/* ------------------------------------------------------------ send */

/* The zone of a bound socket's reply to the client of @h: that of the
 * latest datagram from it among those whose ways the socket keeps (the
 * newest first), else 0 (and it has no way: tx_no_way). */
static uint32_t bound_zone(const struct l3x_stream *s, const struct from_hdr *h)
{
	unsigned n = h->family == 4 ? 4 : 16;
	const struct l3x_way *w;
	uint32_t i;

	for (i = 0; s->ways && i <= s->ways_mask; i++) {
		w = s->ways[(s->ways_next - 1 - i) & s->ways_mask];
		if (w && w->key.family == h->family &&
		    w->key.rport == h->port &&
		    !memcmp(w->key.raddr, h->addr, n))
			return w->key.zone;
	}
	return 0;
}

static void send_one(struct l3x_stack *st, struct l3x_stream *s,
		     const struct l3x_chunk *c)
{
	const uint8_t *data = c->data;
	uint32_t len = c->len;
	ip_addr_t to, from;
	uint16_t to_port;
	uint32_t zone = s->zone;
	struct pbuf *p;
	uint16_t sum;
	err_t err;

	if (s->bound) {
		const struct from_hdr *h = (const void *)data;

		/* l3x_udp__sendto() puts one on every chunk; a chunk without
		 * (an API misuse let through) is not sent. */
		if (len < sizeof(*h)) {
			STAT_INC(st, udp_tx_failed);
			return;
		}
		bytes_addr(h->family, h->addr, &to);
		to_port = h->port;
		zone = bound_zone(s, h);
		data += sizeof(*h);
		len -= (uint32_t)sizeof(*h);
	} else {
		bytes_addr(s->family, s->client_addr, &to);
		to_port = s->client_port;
	}
	bytes_addr(s->family, s->dst_addr, &from);
	p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
	if (!p) {
		STAT_INC(st, udp_tx_failed);
		return;
	}
	/* Summed as copied: lwIP does not read the data again (0051). */
	sum = l3x_csum_copy(p->payload, data, len);
	/* The link reads the zone from the hint lwIP points the netif at. */
	st->udp_pcb->netif_hints.l3x_zone = zone;
	err = udp_sendto_from_chksum(st->udp_pcb, p, &to, to_port, &from,
				     s->dst_port, 1, sum);
	pbuf_free(p);
	if (err != ERR_OK) {
		STAT_INC(st, udp_tx_failed);
		return;
	}
	STAT_INC(st, udp_tx);
	touch_answered(st, s);
}

/* Send every datagram the app queued. */
static void tx_all(struct l3x_stack *st, struct l3x_stream *s)
{
	struct l3x_chunk *c;
	uint64_t sent = s->tx_sent;

	/* Sent is off past len: an empty datagram is still sent. */
	while ((c = l3x_flow_tx_next(s, 1))) {
		send_one(st, s, c);
		c->off = c->len + 1;
		s->tx_sent++;
	}
	if (s->tx_sent == sent)
		return;
	/* Seq_cst: the credit before want_write, as in tcp.c on_sent. */
	atomic_store(&s->tx_acked, s->tx_sent);
	if (atomic_load(&s->want_write) && atomic_exchange(&s->want_write, 0))
		l3x_flow_notify(s);
}

/* The app's answer to request @s in @req, if any: true when @s is done
 * with (refused: released; dropped: hushed). */
static bool request_answer(struct l3x_stack *st, struct l3x_stream *s,
			   uint32_t req)
{
	if (req & REQ_ACCEPT) {
		urq_del(st, s);
		quote_free(s);
		l3x_flow_notify(s); /* what it holds is readable now */
		return false;
	}
	if (!(req & (REQ_ABORT | REQ_DROP | REQ_CLOSE)))
		return false;
	s->eflags |= EF_APP_DONE;
	urq_del(st, s);
	if (req & REQ_ABORT) {
		STAT_INC(st, udp_requests_refused);
		refuse_send(st, s);
		quote_free(s);
		forget(st, s);
		l3x_flow_release(s);
		return true;
	}
	STAT_INC(st, udp_requests_dropped);
	quote_free(s);
	urq_add(st, s, EF_HUSH);
	return true;
}

static void udp_serve(struct l3x_stream *s)
{
	struct l3x_stack *st = s->w->st;
	uint64_t done;
	uint32_t req;

	/* Acq_rel: as in tcp.c tcp_serve(). */
	req = atomic_exchange_explicit(&s->req, 0, memory_order_acq_rel);
	l3x_flow_link(s);
	if ((s->eflags & EF_REQUEST) && request_answer(st, s, req))
		return;
	/* Acquire: pairs with the app's release after reading them. */
	done = atomic_load_explicit(&s->rx_done, memory_order_acquire);
	while (s->rx_reclaimed < done) {
		struct pbuf *p = s->rx_reclaim;

		s->rx_reclaim =
			__atomic_load_n(&p->l3x_qnext, __ATOMIC_ACQUIRE);
		s->rx_charge -= l3x_flow_pbuf_cost(p);
		pbuf_free(p);
		s->rx_reclaimed++;
	}
	tx_all(st, s);
	/* REQ_DROP here: a request answered after it timed out. */
	if (req & (REQ_CLOSE | REQ_ABORT | REQ_DROP)) {
		s->eflags |= EF_APP_DONE;
		forget(st, s);
		bound_forget(s);
		l3x_flow_release(s);
	}
}

/* ------------------------------------------------------------ idle */

/* A flow whose time is up (its request unanswered, or idle) leaves the
 * table; false when it was only hushed (a dropped request's quiet time),
 * which ends here instead. */
static bool flow_leaves(struct l3x_stack *st, struct l3x_stream *s)
{
	if (s->eflags & EF_HUSH) {
		hush_end(st, s);
		return false;
	}
	urq_del(st, s);
	quote_free(s);
	forget(st, s);
	return true;
}

void l3x_udp_reap(struct l3x_stack *st)
{
	uint32_t now = sys_now();
	struct l3x_stream *s;
	unsigned l;

	while ((s = st->udp_rq_head) && (int32_t)(now - s->rq_deadline) >= 0) {
		if (!flow_leaves(st, s))
			continue;
		STAT_INC(st, udp_requests_timed_out);
		atomic_store_explicit(&s->err, -ETIMEDOUT,
				      memory_order_relaxed);
		/* Release: err before the state bits that announce it. */
		atomic_fetch_or_explicit(&s->state, ST_ERROR | ST_GONE,
					 memory_order_release);
		l3x_flow_notify(s);
	}
	for (l = QUIET; l <= ANSWERED; l++) {
		while ((s = st->udp_idle[l].head) &&
		       (int32_t)(now - s->last_active) >=
			       (int32_t)st->udp_idle_ms) {
			if (!flow_leaves(st, s))
				continue;
			/* Release: before the app sees the bits. */
			atomic_fetch_or_explicit(&s->state, ST_EOF | ST_GONE,
						 memory_order_release);
			STAT_INC(st, udp_expired);
			l3x_flow_notify(s);
		}
	}
}

/* ------------------------------------------------------------ bound */

int l3x_udp_bound_swap(struct l3x_stack *st, struct l3x_stream *add,
		       struct l3x_stream *del)
{
	struct l3x_bound_set *old = atomic_load(&st->bound), *nb;
	size_t n = old ? old->n : 0, i;

	if (add && find_bound(st, add->family, add->dst_addr, add->dst_port))
		return -EADDRINUSE;
	nb = malloc(sizeof(*nb) + (n + 1) * sizeof(nb->s[0]));
	if (!nb)
		return -ENOMEM;
	nb->n = 0;
	for (i = 0; i < n; i++)
		if (old->s[i] != del)
			nb->s[nb->n++] = old->s[i];
	if (add)
		nb->s[nb->n++] = add;
	/* Release: pairs with the engine's acquire in find_bound(); the
	 * socket is complete before the engine can reach it. Seq_cst for
	 * the epoch helper (epoch.h). */
	atomic_store(&st->bound, nb);
	l3x_epoch_retire(&st->epoch, old ? &old->retired : NULL);
	return 0;
}

void l3x_udp_close_all(struct l3x_stack *st)
{
	if (st->udp_pcb) {
		udp_remove(st->udp_pcb);
		st->udp_pcb = NULL;
	}
	free(atomic_load(&st->bound));
	atomic_store(&st->bound, NULL);
	free(st->udp_tab);
	st->udp_tab = NULL;
}

/* The worker of @s was closed: no datagram may find it any more. */
static void udp_gone(struct l3x_stream *s)
{
	urq_del(s->w->st, s);
	quote_free(s);
	forget(s->w->st, s);
	bound_forget(s);
}

/* @s is about to be freed: off the request list, its quote freed. */
static void udp_release(struct l3x_stream *s)
{
	urq_del(s->w->st, s);
	quote_free(s);
}

const struct l3x_flow_ops l3x_udp_ops = {
	.serve = udp_serve,
	.gone = udp_gone,
	.release = udp_release,
};
