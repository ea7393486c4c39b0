/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * link_xsk.c - the AF_XDP source: one socket per served queue (lib/xsk.c),
 * all polled by the engine, bound into the XSKMAP of the steering program
 * that the stack attached (lib/steer.c, opened and closed by engine.c).
 *
 * lwIP sees layer 3 only. On the way in we strip Ethernet and up to two
 * VLAN tags, and keep the frame at hand while lwIP takes it in. When that
 * frame starts a flow (the engine asks: way_learn), its way back, the
 * sender's MAC, our MAC, the same tags, and the queue it came by, is kept
 * with the flow (lib/way.c) for as long as the flow lives: one ring per
 * flow keeps its segments in order, and no later frame, from whoever,
 * changes where its replies go. On the way out a packet takes its flow's
 * way; one that belongs to no flow (a reset for a segment of no
 * connection, an ICMP answer) goes back the way the frame at hand came, if
 * it answers that frame; anything else has no way and is counted
 * (tx_no_way), never sent to a guessed next hop. Frames from a group
 * (multicast or broadcast) source MAC are no station's: dropped, counted.
 * Every reply leaves from the interface's own MAC.
 *
 * The VLAN IDs of a frame are its zone, part of the identity of the flow
 * it belongs to: 0 untagged, the VLAN ID with one tag, (outer << 12) |
 * inner with two (QinQ), so the same addresses and ports on two VLANs are
 * two flows, each with its own way. The zone of the frame at hand is
 * lwIP's LWIP_L3X_ZONE_CURRENT() (l3x_zone_in, patch 0016) while lwIP
 * takes it in; on the way out a packet names its zone by the netif hint
 * of the PCB that sends it (TCP: the PCB's own; UDP: lib/udp.c sets it
 * per datagram), else it is the frame at hand's.
 *
 * Zero-copy receive. An unfragmented TCP segment goes to lwIP in its UMEM
 * frame: a custom pbuf (one per frame, made in place) whose free gives the
 * frame back to the free stack, and the next turn to the fill ring; only
 * the engine thread frees pbufs. Everything else is copied, as are
 * fragments (reassembly would hold them) and UDP (its queues are the
 * application's). What lwIP keeps, out-of-order segments and data not yet
 * read, is bounded here: at most half of a queue's receive frames are in
 * lwIP's hands, the other half left to the kernel (the fill and RX rings);
 * past that bound, or while the fill ring and the free frames run low, a
 * segment is copied (rx_zerocopy_fallback), so the fill ring never runs
 * dry. The frames lwIP holds count as the application's in the frame
 * accounting (lib/xsk.c), released one by one as lwIP frees them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_xdp.h>

#include "engine.h"
#include "l3x_hooks.h"
#include "way.h"
#include "xsk.h"

#define ETH_P_IP_	     0x0800
#define ETH_P_IPV6_	     0x86dd
#define ETH_P_8021Q_	     0x8100
#define ETH_P_8021AD_	     0x88a8
#define XDP_PACKET_HEADROOM_ 256 /* the kernel's, before RX data */
#define PROTO_TCP	     6
#define PROTO_UDP	     17

/* The frame lwIP is taking in now, during link->input only. */
struct l2_cur {
	const uint8_t *ip; /* its IP packet */
	uint32_t iplen;
	/* Its tuple, taken before lwIP gets a frame it keeps (zero copy):
	 * tcp_input() turns the header's fields to host order in place. */
	struct l3x_flow_key tuple;
	bool tuple_kept, tuple_ok;
	uint16_t qi;
	uint8_t hlen, vlans;
	uint32_t zone;		 /* its VLAN IDs */
	uint8_t hdr[L3X_L2_MAX]; /* the way back: MACs swapped, same tags */
};

/* A frame's pbuf while lwIP holds it. */
struct zc_pbuf {
	struct pbuf_custom pc; /* first: the pbuf lwIP frees */
	struct zc_queue *q;
	uint16_t qi;  /* its queue, */
	uint8_t hlen; /* and its layer 2's length, for xsk_replay */
};

/* Zero-copy state of one queue; it outlives the link while lwIP still
 * holds frames of it (closed: the last free closes the socket). */
struct zc_queue {
	struct l3x_xsk *x;
	uint32_t frame_size;
	uint32_t held; /* frames in lwIP's pbufs */
	uint32_t max;  /* bound on held */
	uint32_t low;  /* copy while fill ring + free frames are under it */
	bool freed;    /* frames freed since the last refill */
	bool closed;
	struct zc_pbuf pb[]; /* one per frame */
};

struct link_xsk {
	struct l3x_link link;
	struct l3x_xsk *xsks[L3X_MAX_QUEUES];
	struct zc_queue *zq[L3X_MAX_QUEUES];
	unsigned nxsk;
	uint8_t mac[6]; /* the interface's: the source of every reply */
	struct l3x_ways *ways;
	struct l2_cur cur;
	bool in_input;
	uint64_t tx_kicks; /* the sockets' kicks already in the stack stats */
};

/* Parse layer 2 of @d: returns its length, the family, the VLAN tags and
 * the zone (their IDs: outer << 12 | inner); 0 if not IP or too short for
 * an IP header. */
static unsigned l2_parse(const uint8_t *d, uint32_t len, uint8_t *family,
			 unsigned *vlans, uint32_t *zone)
{
	unsigned off = 12, tags = 0;
	uint16_t type;

	*zone = 0;
	for (;;) {
		if (len < off + 2)
			return 0;
		type = (uint16_t)(d[off] << 8 | d[off + 1]);
		if ((type == ETH_P_8021Q_ || type == ETH_P_8021AD_) &&
		    tags < 2) {
			if (len < off + 4)
				return 0;
			*zone = *zone << 12 |
				((uint32_t)(d[off + 2] & 0xf) << 8 |
				 d[off + 3]);
			off += 4;
			tags++;
			continue;
		}
		break;
	}
	off += 2;
	if (type == ETH_P_IP_)
		*family = 4;
	else if (type == ETH_P_IPV6_)
		*family = 6;
	else
		return 0;
	*vlans = tags;
	return len >= off + (*family == 4 ? 20 : 40) ? off : 0;
}

/* The 5-tuple of IP packet @ip (@len bytes) as its sender sees it (local
 * = source). Ports stay 0 unless TCP or UDP with their header present.
 * False if it is not a packet we can read. */
static bool ip_tuple(const uint8_t *ip, uint32_t len, struct l3x_flow_key *k)
{
	unsigned hl;

	memset(k, 0, sizeof(*k));
	if (len >= 20 && ip[0] >> 4 == 4) {
		hl = (ip[0] & 0xf) * 4u;
		if (hl < 20 || hl > len)
			return false;
		k->family = 4;
		k->proto = ip[9];
		memcpy(k->laddr, ip + 12, 4);
		memcpy(k->raddr, ip + 16, 4);
		if ((ip[6] & 0x1f) || ip[7])
			return true; /* a later fragment has no ports */
	} else if (len >= 40 && ip[0] >> 4 == 6) {
		hl = 40;
		k->family = 6;
		k->proto = ip[6];
		memcpy(k->laddr, ip + 8, 16);
		memcpy(k->raddr, ip + 24, 16);
	} else {
		return false;
	}
	if ((k->proto == PROTO_TCP || k->proto == PROTO_UDP) && len >= hl + 4) {
		k->lport = (uint16_t)(ip[hl] << 8 | ip[hl + 1]);
		k->rport = (uint16_t)(ip[hl + 2] << 8 | ip[hl + 3]);
	}
	return true;
}

/* Hold the frame @d (@hlen bytes of layer 2, then IP) at hand. */
static void cur_set(struct link_xsk *lx, const uint8_t *d, uint32_t len,
		    unsigned hlen, unsigned vlans, uint32_t zone, unsigned qi)
{
	struct l2_cur *c = &lx->cur;

	c->zone = zone;
	c->ip = d + hlen;
	c->iplen = len - hlen;
	c->tuple_kept = false;
	c->qi = (uint16_t)qi;
	c->hlen = (uint8_t)hlen;
	c->vlans = (uint8_t)vlans;
	memcpy(c->hdr, d + 6, 6);		/* to the sender */
	memcpy(c->hdr + 6, lx->mac, 6);		/* from us */
	memcpy(c->hdr + 12, d + 12, hlen - 12); /* same tags, type */
}

static struct l3x_way *xsk_way_learn(struct l3x_link *l,
				     const struct l3x_flow_key *k, int *err)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	struct l2_cur *c = &lx->cur;
	struct l3x_flow_key kz;

	if (!lx->in_input) {
		*err = -ENOENT;
		return NULL;
	}
	kz = *k;
	kz.zone = c->zone; /* the flow lives in the zone of its first frame */
	return l3x_ways_add(lx->ways, &kz, c->hdr, c->hlen, c->vlans, c->qi,
			    err);
}

/* Is @out (as we send it) an answer to the frame at hand? The same zone,
 * the same two addresses swapped and, when both are TCP or UDP, the same
 * ports swapped; ICMP answers any protocol. */
static bool answers_cur(const struct link_xsk *lx,
			const struct l3x_flow_key *out)
{
	struct l3x_flow_key in;
	unsigned alen = out->family == 4 ? 4 : 16;

	if (!lx->in_input || out->zone != lx->cur.zone)
		return false;
	if (lx->cur.tuple_kept) {
		if (!lx->cur.tuple_ok)
			return false;
		in = lx->cur.tuple;
	} else if (!ip_tuple(lx->cur.ip, lx->cur.iplen, &in)) {
		return false;
	}
	if (in.family != out->family || memcmp(in.laddr, out->raddr, alen) ||
	    memcmp(in.raddr, out->laddr, alen))
		return false;
	if (out->proto != PROTO_TCP && out->proto != PROTO_UDP)
		return true;
	return in.proto == out->proto && in.lport == out->rport &&
	       in.rport == out->lport;
}

/* An ICMP (ICMPv6) destination unreachable we send, @k its tuple: in *@f
 * the flow of the datagram it quotes, as seen from our side (a refused
 * UDP request, lib/udp.c, goes by its flow's way). */
static bool icmp_quoted(const uint8_t *ip, uint32_t len,
			const struct l3x_flow_key *k, struct l3x_flow_key *f)
{
	unsigned hl = k->family == 4 ? (ip[0] & 0xf) * 4u : 40;
	struct l3x_flow_key in;

	if (!(k->family == 4 && k->proto == 1 && len > hl && ip[hl] == 3) &&
	    !(k->family == 6 && k->proto == 58 && len > hl && ip[hl] == 1))
		return false;
	if (len < hl + 8 || !ip_tuple(ip + hl + 8, len - hl - 8, &in) ||
	    in.family != k->family)
		return false;
	memset(f, 0, sizeof(*f));
	f->family = in.family;
	f->proto = in.proto;
	f->zone = k->zone;
	f->lport = in.rport;
	f->rport = in.lport;
	memcpy(f->laddr, in.raddr, 16);
	memcpy(f->raddr, in.laddr, 16);
	return true;
}

/* The way @p (an IP packet lwIP sends) takes: its flow's (for an ICMP
 * error, that of the datagram it quotes), else the frame at hand's if it
 * answers it; NULL (counted) when there is none. Its zone: the sending
 * PCB's (netif hint), else the frame at hand's. */
static bool way_of(struct link_xsk *lx, struct pbuf *p, const uint8_t **hdr,
		   unsigned *hlen, unsigned *qi)
{
	const struct netif_hint *hint = lx->link.st->netif.hints;
	uint8_t ip[128];
	struct l3x_flow_key k, f;
	const struct l3x_way *w;
	uint16_t n = p->tot_len < sizeof(ip) ? p->tot_len : sizeof(ip);

	pbuf_copy_partial(p, ip, n, 0);
	if (!ip_tuple(ip, n, &k))
		return false;
	if (hint)
		k.zone = hint->l3x_zone;
	else if (lx->in_input)
		k.zone = lx->cur.zone;
	w = l3x_ways_find(lx->ways, &k);
	if (!w && icmp_quoted(ip, n, &k, &f))
		w = l3x_ways_find(lx->ways, &f);
	if (w) {
		*hdr = w->hdr;
		*hlen = w->hlen;
		*qi = w->qi;
		return true;
	}
	if (!answers_cur(lx, &k))
		return false;
	*hdr = lx->cur.hdr;
	*hlen = lx->cur.hlen;
	*qi = lx->cur.qi;
	return true;
}

/* ------------------------------------------------------------ zero copy */

static struct zc_queue *zc_open(struct l3x_xsk *x, uint32_t frame_count)
{
	struct zc_queue *q;
	uint32_t rx = l3x_xsk_rx_frames(x);

	q = calloc(1, sizeof(*q) + (size_t)frame_count * sizeof(q->pb[0]));
	if (!q)
		return NULL;
	q->x = x;
	q->frame_size = l3x_xsk_frame_size(x);
	/* Half the receive frames for lwIP, half for the kernel: the fill
	 * ring keeps at least that many whatever lwIP holds. */
	q->max = rx / 2;
	q->low = rx / 8;
	return q;
}

/* Close @q's socket now, or once lwIP has freed the last frame it holds. */
static void zc_close(struct zc_queue *q)
{
	if (q->held) {
		q->closed = true;
		return;
	}
	l3x_xsk_close(q->x);
	free(q);
}

/* lwIP frees a frame's pbuf (engine thread): the frame goes back. */
static void zc_free(struct pbuf *p)
{
	struct zc_pbuf *zp = (struct zc_pbuf *)p;
	struct zc_queue *q = zp->q;

	l3x_xsk_release_one(q->x, (uint64_t)(zp - q->pb) * q->frame_size);
	q->held--;
	q->freed = true;
	if (q->closed && !q->held)
		zc_close(q);
}

/* May lwIP keep IP packet @ip in its frame? Unfragmented TCP only (IPv6:
 * TCP the first next header): lwIP holds nothing else past its input
 * but reassembly and UDP queues, which have no bound of ours. l2_parse
 * checked the fixed header is there. */
static bool zc_kind(const uint8_t *ip)
{
	if (ip[0] >> 4 == 4)
		return ip[9] == PROTO_TCP && !(ip[6] & 0x3f) && !ip[7];
	return ip[6] == PROTO_TCP;
}

static bool zc_room(struct zc_queue *q)
{
	return q->held < q->max && l3x_xsk_rx_spare(q->x) >= q->low;
}

/* Frame @f (IP from @hlen) to lwIP in place; it stays lwIP's until its
 * pbuf is freed. */
static void zc_input(struct l3x_link *l, struct zc_queue *q,
		     const struct l3x_frame *f, unsigned hlen)
{
	struct zc_pbuf *zp = &q->pb[f->addr / q->frame_size];
	u16_t len = (u16_t)(f->len - hlen);
	struct pbuf *p;

	zp->q = q;
	zp->qi = ((struct link_xsk *)l)->cur.qi; /* rx_one set it */
	zp->hlen = (uint8_t)hlen;
	zp->pc.custom_free_function = zc_free;
	/* The frame is ours to write until released (lwIP turns TCP
	 * header fields in place). */
	p = pbuf_alloced_custom(PBUF_RAW, len, PBUF_REF, &zp->pc,
				(uint8_t *)(uintptr_t)(f->data + hlen), len);
	q->held++;
	l->input_pbuf(l->st, p);
}

/* ------------------------------------------------------------ rx */

/* One frame to the engine: true if lwIP keeps it (zero copy), false if
 * it is done with (copied, or dropped). */
static bool rx_one(struct link_xsk *lx, unsigned qi, const struct l3x_frame *f)
{
	struct l3x_stack *st = lx->link.st;
	struct zc_queue *q = lx->zq[qi];
	unsigned hlen, vlans;
	uint32_t zone;
	uint8_t family;
	bool kept = false;

	hlen = l2_parse(f->data, f->len, &family, &vlans, &zone);
	if (!hlen) {
		STAT_INC(st, rx_packets);
		STAT_INC(st, rx_not_ip);
		return false;
	}
	/* A group address sends nothing: no station can take replies
	 * there. */
	if (f->data[6] & 1) {
		STAT_INC(st, rx_packets);
		STAT_INC(st, rx_src_mac_group);
		return false;
	}
	cur_set(lx, f->data, f->len, hlen, vlans, zone, qi);
	lx->in_input = true;
	l3x_zone_in = zone;
	if (q && lx->link.input_pbuf && zc_kind(f->data + hlen)) {
		kept = zc_room(q);
		if (!kept)
			STAT_INC(st, rx_zerocopy_fallback);
	}
	if (kept) {
		/* A reply sent from inside lwIP (a SYN cookie's SYN-ACK, a
		 * RST) finds its way by this frame's tuple: read it now. */
		lx->cur.tuple_ok =
			ip_tuple(lx->cur.ip, lx->cur.iplen, &lx->cur.tuple);
		lx->cur.tuple_kept = true;
		zc_input(&lx->link, q, f, hlen);
	} else
		lx->link.input(st, f->data + hlen, f->len - hlen);
	l3x_zone_in = 0;
	lx->in_input = false;
	return kept;
}

/* A frame's pbuf the engine held (receive coalescing), to lwIP as the
 * frame at hand: its way back and zone, as rx_one set them, then those of
 * the frame really at hand (if any) again. Its layer 2 is still in the
 * frame; lwIP has not seen its IP header yet (the engine set the length
 * of the segments it merged behind it). */
static void xsk_replay(struct l3x_link *l, struct pbuf *p)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	const struct zc_pbuf *zp = (const struct zc_pbuf *)p;
	const uint8_t *d = (const uint8_t *)p->payload - zp->hlen;
	uint32_t len = zp->hlen + p->len, zone, zone_was = l3x_zone_in;
	struct l2_cur was = lx->cur;
	bool was_in = lx->in_input;
	unsigned vlans;
	uint8_t family;

	l2_parse(d, len, &family, &vlans, &zone);
	cur_set(lx, d, len, zp->hlen, vlans, zone, zp->qi);
	lx->cur.tuple_ok = ip_tuple(lx->cur.ip, lx->cur.iplen, &lx->cur.tuple);
	lx->cur.tuple_kept = true;
	lx->in_input = true;
	l3x_zone_in = zone;
	l->feed(l->st, p);
	l3x_zone_in = zone_was;
	lx->in_input = was_in;
	lx->cur = was;
}

static int xsk_rx(struct l3x_link *l)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	struct l3x_frame f[L3X_RX_BURST];
	unsigned qi, n, i, done;
	int work = 0;

	for (qi = 0; qi < lx->nxsk; qi++) {
		struct zc_queue *q = lx->zq[qi];

		/* Frames lwIP freed since: to the fill ring in one go. */
		if (q && q->freed) {
			q->freed = false;
			l3x_xsk_refill(lx->xsks[qi]);
		}
		n = l3x_xsk_rx_burst(lx->xsks[qi], f, L3X_RX_BURST);
		for (i = 0, done = 0; i < n; i++)
			if (!rx_one(lx, qi, &f[i]))
				f[done++] = f[i];
		if (done)
			l3x_xsk_release(lx->xsks[qi], f, done);
		work += (int)n;
	}
	return work;
}

static int xsk_output(struct l3x_link *l, struct pbuf *p, const ip_addr_t *dst)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	struct l3x_stack *st = l->st;
	const uint8_t *hdr;
	unsigned hlen, qi;
	struct l3x_xsk *x;
	uint64_t addr;
	uint8_t *frame;
	uint32_t len;

	(void)dst; /* the packet's own addresses name its flow */
	if (!way_of(lx, p, &hdr, &hlen, &qi)) {
		STAT_INC(st, tx_no_way);
		goto drop;
	}
	x = lx->xsks[qi];
	len = hlen + p->tot_len;
	if (len > l3x_xsk_frame_size(x) - XDP_PACKET_HEADROOM_)
		goto drop;
	frame = l3x_xsk_tx_alloc(x, &addr);
	if (!frame)
		goto drop;
	memcpy(frame, hdr, hlen);
	pbuf_copy_partial(p, frame + hlen, p->tot_len, 0);
	if (!l3x_xsk_tx_put(x, addr, len))
		goto drop;
	STAT_INC(st, tx_packets);
	STAT_ADD(st, tx_bytes, p->tot_len);
	return 0;
drop:
	STAT_INC(st, tx_dropped);
	return -ENOBUFS;
}

static void xsk_flush(struct l3x_link *l)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	uint64_t kicks = 0;
	unsigned qi;

	for (qi = 0; qi < lx->nxsk; qi++) {
		l3x_xsk_tx_flush(lx->xsks[qi]);
		kicks += l3x_xsk_tx_kicks(lx->xsks[qi]);
	}
	/* A full ring flushes (and kicks) inside l3x_xsk_tx_put() too: the
	 * sockets count every kick, the stack gets what is new. */
	STAT_ADD(l->st, tx_kicks, kicks - lx->tx_kicks);
	lx->tx_kicks = kicks;
}

static int xsk_wait_fds(struct l3x_link *l, struct pollfd *pfd, unsigned max)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	unsigned qi;

	for (qi = 0; qi < lx->nxsk && qi < max; qi++) {
		if (!l3x_xsk_idle(lx->xsks[qi]))
			return -EAGAIN;
		/* With need_wakeup, poll() kicks the kernel if it asks. */
		pfd[qi] = (struct pollfd){ .fd = l3x_xsk_fd(lx->xsks[qi]),
					   .events = POLLIN };
	}
	return (int)qi;
}

static void xsk_frames(struct l3x_link *l, struct l3x_frame_stats *fs)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	struct l3x_frame_stats q;
	unsigned qi;

	memset(fs, 0, sizeof(*fs));
	for (qi = 0; qi < lx->nxsk; qi++) {
		l3x_xsk_frames(lx->xsks[qi], &q);
		fs->total += q.total;
		fs->free += q.free;
		fs->fill += q.fill;
		fs->kernel += q.kernel;
		fs->app += q.app;
		fs->tx += q.tx;
		fs->completion += q.completion;
	}
}

/* What the sockets dropped of what the program steered to them: no free
 * frame in the fill ring, or the RX ring full (XDP_STATISTICS). */
static uint64_t xsk_rx_dropped(struct l3x_link *l)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	struct xdp_statistics xs;
	socklen_t len;
	uint64_t n = 0;
	unsigned qi;

	/* The kernel's counters only: the socket's own are the engine's. */
	for (qi = 0; qi < lx->nxsk; qi++) {
		memset(&xs, 0, sizeof(xs));
		len = sizeof(xs);
		if (!getsockopt(l3x_xsk_fd(lx->xsks[qi]), SOL_XDP,
				XDP_STATISTICS, &xs, &len))
			n += xs.rx_dropped + xs.rx_ring_full;
	}
	return n;
}

static void xsk_close(struct l3x_link *l)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	unsigned qi;

	for (qi = 0; qi < lx->nxsk; qi++) {
		if (lx->zq[qi])
			zc_close(lx->zq[qi]);
		else
			l3x_xsk_close(lx->xsks[qi]);
	}
	l3x_ways_close(lx->ways);
	free(lx);
}

static const struct l3x_link_ops xsk_ops = {
	.rx = xsk_rx,
	.output = xsk_output,
	.flush = xsk_flush,
	.frames = xsk_frames,
	.rx_dropped = xsk_rx_dropped,
	.way_learn = xsk_way_learn,
	.wait_fds = xsk_wait_fds,
	.replay = xsk_replay,
	.close = xsk_close,
};

static int open_queues(struct link_xsk *lx, const struct l3x_stack_opts *o,
		       struct l3x_xsk_cfg *cfg)
{
	uint32_t nq = L3X_OPT(o, queue_count, 0), i;
	const uint32_t *q = L3X_OPT(o, queues, NULL);
	uint32_t zero = 0;

	if (!nq) {
		nq = 1;
		q = &zero;
	}
	for (i = 0; i < nq; i++) {
		cfg->queue = q[i];
		lx->xsks[i] = l3x_xsk_open(cfg);
		if (!lx->xsks[i])
			return -errno;
		lx->nxsk++;
		lx->zq[i] = zc_open(lx->xsks[i], cfg->frame_count);
		if (!lx->zq[i])
			return -ENOMEM;
	}
	return 0;
}

/* The socket configuration @o asks for, or -EINVAL. */
static int xsk_cfg(const struct l3x_stack_opts *o, uint32_t mtu,
		   struct l3x_xsk_cfg *cfg)
{
	*cfg = (struct l3x_xsk_cfg){
		.ifname = o->ifname,
		.frame_count = L3X_OPT(o, frame_count, 8192),
		.frame_size = 4096,
		.ring_size = L3X_OPT(o, ring_size, 2048),
		.bind_mode = L3X_OPT(o, bind_mode, L3X_BIND_AUTO),
		.busy_poll_usec = L3X_OPT(o, busy_poll_usec, 20),
		.busy_poll_budget = 64,
	};
	if (mtu + L3X_L2_MAX > cfg->frame_size - XDP_PACKET_HEADROOM_ ||
	    (cfg->frame_count & (cfg->frame_count - 1)) ||
	    cfg->frame_count < 256 || (cfg->ring_size & (cfg->ring_size - 1)) ||
	    cfg->bind_mode > L3X_BIND_ZEROCOPY)
		return -EINVAL;
	cfg->tx_frames = cfg->frame_count / 2;
	return 0;
}

/* The MAC address of @ifname. */
static int if_mac(const char *ifname, uint8_t *mac)
{
	struct ifreq ifr = {};
	int fd, err = 0;

	if (strlen(ifname) >= sizeof(ifr.ifr_name))
		return -EINVAL;
	strcpy(ifr.ifr_name, ifname);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

int l3x_link_xsk_check(const struct l3x_stack_opts *o, uint32_t mtu)
{
	struct l3x_xsk_cfg cfg;

	return xsk_cfg(o, mtu, &cfg);
}

struct l3x_link *l3x_link_xsk_open(struct l3x_stack *st,
				   const struct l3x_stack_opts *o, int xsks_fd,
				   bool skb_mode)
{
	struct l3x_xsk_cfg cfg;
	struct link_xsk *lx;
	int err;

	err = xsk_cfg(o, st->mtu, &cfg);
	if (err) {
		errno = -err;
		return NULL;
	}
	cfg.skb_mode = skb_mode;
	cfg.xsks_map_fd = xsks_fd;
	lx = calloc(1, sizeof(*lx));
	if (!lx)
		return NULL;
	lx->link.ops = &xsk_ops;
	lx->link.st = st;
	err = if_mac(o->ifname, lx->mac);
	if (err)
		goto err_close;
	lx->ways = l3x_ways_open(st->max_kind[L3X_FLOW_TCP] +
				 st->max_kind[L3X_FLOW_UDP]);
	if (!lx->ways) {
		err = -ENOMEM;
		goto err_close;
	}
	err = open_queues(lx, o, &cfg);
	if (err)
		goto err_close;
	return &lx->link;

err_close:
	xsk_close(&lx->link);
	errno = -err;
	return NULL;
}
