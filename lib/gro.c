/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * gro.c - receive coalescing (gro.h): a small table of the flows whose
 * run of segments is held in this burst, searched linearly (at most
 * L3X_GRO_FLOWS), each run a pbuf chain that grows at its end.
 */
#include <string.h>

#include "gro.h"
#include "l3x_csum.h"

#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_ACK 0x10

/* A segment that may be held, parsed. */
struct gro_seg {
	struct l3x_gro_key key;
	uint8_t *ip, *tcp;
	uint32_t seq, ack; /* seq in host order, ack as on the wire */
	uint16_t win;	   /* as on the wire */
	uint32_t tot;	   /* IP length */
	uint16_t dlen;	   /* TCP data */
	uint8_t iphl, tcphl, flags;
};

static uint32_t get32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

/* The flow of TCP packet @ip (@len bytes), in @k, and the IP header's
 * length: 0 when it is not TCP, or too short for its ports. */
static unsigned gro_tuple(const uint8_t *ip, size_t len, uint32_t zone,
			  struct l3x_gro_key *k)
{
	unsigned hl;

	memset(k, 0, sizeof(*k));
	if (len >= 20 && ip[0] >> 4 == 4 && ip[9] == 6) {
		hl = (ip[0] & 0xfu) * 4;
		k->family = 4;
		memcpy(k->src, ip + 12, 4);
		memcpy(k->dst, ip + 16, 4);
	} else if (len >= 40 && ip[0] >> 4 == 6 && ip[6] == 6) {
		hl = 40;
		k->family = 6;
		memcpy(k->src, ip + 8, 16);
		memcpy(k->dst, ip + 24, 16);
	} else {
		return 0;
	}
	if (hl < 20 || len < hl + 20)
		return 0;
	k->zone = zone;
	memcpy(&k->sport, ip + hl, 2);
	memcpy(&k->dport, ip + hl + 2, 2);
	return hl;
}

/* May @p start or extend a run? Parsed into @s when it may: the rules
 * of gro.h, the checksums last (verified here, and so marked). */
static bool gro_parse(struct pbuf *p, uint32_t zone, struct gro_seg *s)
{
	uint8_t *ip = p->payload;
	unsigned hl;

	if (p->next)
		return false;
	hl = gro_tuple(ip, p->len, zone, &s->key);
	if (!hl)
		return false;
	if (s->key.family == 4) {
		if (hl != 20 || (ip[6] & 0x3f) || ip[7])
			return false; /* options, or a fragment */
		s->tot = (uint32_t)ip[2] << 8 | ip[3];
	} else {
		s->tot = 40 + ((uint32_t)ip[4] << 8 | ip[5]);
	}
	if (s->tot != p->len)
		return false; /* padded, or a length that lies */
	s->ip = ip;
	s->tcp = ip + hl;
	s->iphl = (uint8_t)hl;
	s->tcphl = (uint8_t)((s->tcp[12] >> 4) * 4);
	s->flags = s->tcp[13];
	/* ACK, or ACK|PSH; no reserved bits, ECN, URG, SYN, FIN, RST */
	if (s->tcphl < 20 || (s->tcp[12] & 0x0f) || hl + s->tcphl >= s->tot ||
	    (s->flags != TCP_FLAG_ACK &&
	     s->flags != (TCP_FLAG_ACK | TCP_FLAG_PSH)))
		return false;
	s->dlen = (uint16_t)(s->tot - hl - s->tcphl);
	s->seq = get32(s->tcp + 4);
	memcpy(&s->ack, s->tcp + 8, 4);
	memcpy(&s->win, s->tcp + 14, 2);
	if (s->key.family == 4 && l3x_csum(ip, 20) != 0xffff)
		return false;
	if (!(p->flags & PBUF_FLAG_L3X_CSUM_OK)) {
		if (!l3x_csum_ip_ok(ip, p->len))
			return false; /* lwIP drops it, and counts */
		p->flags |= PBUF_FLAG_L3X_CSUM_OK;
	}
	return true;
}

static struct l3x_gro_run *gro_find(struct l3x_gro *g,
				    const struct l3x_gro_key *k)
{
	unsigned i;

	for (i = 0; g->held && i < L3X_GRO_FLOWS; i++)
		if (g->run[i].key.family &&
		    !memcmp(&g->run[i].key, k, sizeof(*k)))
			return &g->run[i];
	return NULL;
}

/* @r's merged packet to lwIP: the first segment's IP header gets the
 * whole's length. */
static void gro_send(struct l3x_gro *g, struct l3x_gro_run *r)
{
	struct pbuf *p = r->head;
	uint8_t *ip = p->payload;
	unsigned segs = r->segs;
	uint16_t c;

	if (segs > 1 && r->key.family == 4) {
		ip[2] = (uint8_t)(r->tot >> 8);
		ip[3] = (uint8_t)r->tot;
		ip[10] = ip[11] = 0;
		c = (uint16_t)~l3x_csum(ip, 20);
		memcpy(ip + 10, &c, 2);
	} else if (segs > 1) {
		ip[4] = (uint8_t)((r->tot - 40) >> 8);
		ip[5] = (uint8_t)(r->tot - 40);
	}
	r->key.family = 0;
	r->head = NULL;
	g->held--;
	g->flushed++;
	g->feed(g->ctx, p, segs, true);
}

/* Does @s continue @r? */
static bool gro_fits(const struct l3x_gro *g, const struct l3x_gro_run *r,
		     const struct gro_seg *s)
{
	const uint8_t *tcp = (const uint8_t *)r->head->payload + r->iphl;

	return s->seq == r->next_seq && s->ack == r->ack && s->win == r->win &&
	       s->tcphl == r->tcphl && s->dlen <= r->mss &&
	       r->tot + s->dlen <= L3X_GRO_MAX_LEN && r->segs < g->max_segs &&
	       !memcmp(s->tcp + 20, tcp + 20, s->tcphl - 20u);
}

/* @p (parsed in @s) onto the end of @r; the run ends after a PSH, a
 * short segment, or where the next could not fit. */
static void gro_merge(struct l3x_gro *g, struct l3x_gro_run *r,
		      const struct gro_seg *s, struct pbuf *p)
{
	pbuf_remove_header(p, (size_t)s->iphl + s->tcphl);
	pbuf_cat(r->head, p);
	r->next_seq += s->dlen;
	r->tot += s->dlen;
	r->segs++;
	g->merged++;
	if (s->flags & TCP_FLAG_PSH)
		((uint8_t *)r->head->payload)[r->iphl + 13] |= TCP_FLAG_PSH;
	if ((s->flags & TCP_FLAG_PSH) || s->dlen < r->mss ||
	    r->segs >= g->max_segs || r->tot + r->mss > L3X_GRO_MAX_LEN)
		gro_send(g, r);
}

/* A run for @flow from @p (parsed in @s), in a free slot; with none, the
 * oldest slot's run goes on first. */
static void gro_start(struct l3x_gro *g, const struct gro_seg *s,
		      struct pbuf *p)
{
	struct l3x_gro_run *r;
	unsigned i;

	if (g->held == L3X_GRO_FLOWS) {
		gro_send(g, &g->run[g->evict]);
		g->evict = (g->evict + 1) % L3X_GRO_FLOWS;
	}
	for (i = 0; g->run[i].key.family; i++)
		;
	r = &g->run[i];
	r->key = s->key;
	r->head = p;
	r->next_seq = s->seq + s->dlen;
	r->ack = s->ack;
	r->win = s->win;
	r->mss = s->dlen;
	r->tot = s->tot;
	r->segs = 1;
	r->iphl = s->iphl;
	r->tcphl = s->tcphl;
	g->held++;
}

void l3x_gro_init(struct l3x_gro *g, unsigned max_segs, l3x_gro_feed_fn feed,
		  void *ctx)
{
	memset(g, 0, sizeof(*g));
	if (max_segs < 2)
		max_segs = 2;
	g->max_segs = max_segs < L3X_GRO_MAX_SEGS ? max_segs : L3X_GRO_MAX_SEGS;
	g->feed = feed;
	g->ctx = ctx;
}

void l3x_gro_add(struct l3x_gro *g, struct pbuf *p, uint32_t zone)
{
	struct l3x_gro_run *r;
	struct gro_seg s;

	if (!gro_parse(p, zone, &s)) {
		l3x_gro_pass(g, p->payload, p->len, zone);
		g->feed(g->ctx, p, 1, false);
		return;
	}
	r = gro_find(g, &s.key);
	if (r && gro_fits(g, r, &s)) {
		gro_merge(g, r, &s, p);
		return;
	}
	if (r)
		gro_send(g, r);
	/* PSH ends a run: one that starts with it has nothing to wait for */
	if (s.flags & TCP_FLAG_PSH) {
		g->feed(g->ctx, p, 1, false);
		return;
	}
	gro_start(g, &s, p);
}

void l3x_gro_pass(struct l3x_gro *g, const void *ip, size_t len, uint32_t zone)
{
	struct l3x_gro_key k;
	struct l3x_gro_run *r;

	if (!g->held || !gro_tuple(ip, len, zone, &k))
		return;
	r = gro_find(g, &k);
	if (r)
		gro_send(g, r);
}

void l3x_gro_flush(struct l3x_gro *g)
{
	unsigned i;

	for (i = 0; g->held && i < L3X_GRO_FLOWS; i++)
		if (g->run[i].key.family)
			gro_send(g, &g->run[i]);
	g->evict = 0;
}
