/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * link_xsk.c - the AF_XDP source: one socket per served queue (lib/xsk.c),
 * all polled by the engine, bound into the XSKMAP of the steering program
 * that the stack attached (lib/steer.c, opened and closed by engine.c).
 *
 * lwIP sees layer 3 only. On the way in we strip Ethernet and up to two
 * VLAN tags and remember, per client address, the layer-2 header that
 * brought it (MACs swapped, the same tags) and a queue (the first that
 * brought it: one ring per client keeps each flow in order). On the way out
 * we put that header back, so no ARP or neighbour discovery is needed for
 * any destination: replies go to the next hop that sent the traffic. The
 * table is a fixed-size hash that overwrites on collision; a miss uses the
 * last header seen for the family, which on a router-fed link is the same
 * router.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if_xdp.h>

#include "engine.h"
#include "xsk.h"

#define L2_MAX		     22 /* Ethernet + two VLAN tags */
#define ETH_P_IP_	     0x0800
#define ETH_P_IPV6_	     0x86dd
#define ETH_P_8021Q_	     0x8100
#define ETH_P_8021AD_	     0x88a8
#define XDP_PACKET_HEADROOM_ 256 /* the kernel's, before RX data */

struct l2_entry {
	uint8_t family; /* 0: empty */
	uint8_t hlen;
	uint16_t qi; /* index into xsks */
	uint8_t addr[16];
	uint8_t hdr[L2_MAX];
};

struct link_xsk {
	struct l3x_link link;
	struct l3x_xsk *xsks[L3X_MAX_QUEUES];
	unsigned nxsk;
	struct l2_entry *l2;
	uint32_t l2_mask;
	struct l2_entry last[2]; /* IPv4, IPv6 */
};

static uint32_t addr_hash(const uint8_t *a, unsigned n)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	unsigned i;

	for (i = 0; i < n; i++)
		h = (h ^ a[i]) * 16777619u;
	return h;
}

/* Parse layer 2 of @f: returns its length and the family, 0 if not IP. */
static unsigned l2_parse(const uint8_t *d, uint32_t len, uint8_t *family)
{
	unsigned off = 12, tags = 0;
	uint16_t type;

	for (;;) {
		if (len < off + 2)
			return 0;
		type = (uint16_t)(d[off] << 8 | d[off + 1]);
		if ((type == ETH_P_8021Q_ || type == ETH_P_8021AD_) &&
		    tags < 2) {
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
	/* room for the source address we learn from */
	return len >= off + (*family == 4 ? 20 : 40) ? off : 0;
}

static void l2_learn(struct link_xsk *lx, const uint8_t *d, unsigned hlen,
		     uint8_t family, unsigned qi)
{
	const uint8_t *src = family == 4 ? d + hlen + 12 : d + hlen + 8;
	unsigned alen = family == 4 ? 4 : 16;
	struct l2_entry *e = &lx->l2[addr_hash(src, alen) & lx->l2_mask];
	struct l2_entry *last = &lx->last[family == 6];

	bool known = e->family == family && !memcmp(e->addr, src, alen);

	if (known && e->hlen == hlen && !memcmp(e->hdr, d + 6, 6) &&
	    !memcmp(e->hdr + 6, d, 6) &&
	    !memcmp(e->hdr + 12, d + 12, hlen - 12))
		return;
	/* The queue is the first that brought the client, and stays: its
	 * flows arrive spread over queues by RSS, and one flow's segments
	 * must leave through one ring, or they go out of order. */
	if (!known)
		e->qi = (uint16_t)qi;
	e->family = family;
	e->hlen = (uint8_t)hlen;
	memcpy(e->addr, src, alen);
	memcpy(e->hdr, d + 6, 6);		/* to the sender */
	memcpy(e->hdr + 6, d, 6);		/* from us */
	memcpy(e->hdr + 12, d + 12, hlen - 12); /* same tags, type */
	*last = *e;
}

static const struct l2_entry *l2_find(struct link_xsk *lx, const ip_addr_t *dst)
{
	const uint8_t *a;
	uint8_t family;
	unsigned alen;
	struct l2_entry *e;

	if (IP_IS_V6(dst)) {
		family = 6;
		alen = 16;
		a = (const uint8_t *)ip_2_ip6(dst)->addr;
	} else {
		family = 4;
		alen = 4;
		a = (const uint8_t *)&ip_2_ip4(dst)->addr;
	}
	e = &lx->l2[addr_hash(a, alen) & lx->l2_mask];
	if (e->family == family && !memcmp(e->addr, a, alen))
		return e;
	e = &lx->last[family == 6];
	return e->family ? e : NULL;
}

static int xsk_rx(struct l3x_link *l)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	struct l3x_stack *st = l->st;
	struct l3x_frame f[L3X_RX_BURST];
	unsigned qi, n, i, hlen;
	uint8_t family;
	int work = 0;

	for (qi = 0; qi < lx->nxsk; qi++) {
		n = l3x_xsk_rx_burst(lx->xsks[qi], f, L3X_RX_BURST);
		for (i = 0; i < n; i++) {
			hlen = l2_parse(f[i].data, f[i].len, &family);
			if (!hlen) {
				STAT_INC(st, rx_packets);
				STAT_INC(st, rx_not_ip);
				continue;
			}
			l2_learn(lx, f[i].data, hlen, family, qi);
			l->input(st, f[i].data + hlen, f[i].len - hlen);
		}
		if (n)
			l3x_xsk_release(lx->xsks[qi], f, n);
		work += (int)n;
	}
	return work;
}

static int xsk_output(struct l3x_link *l, struct pbuf *p, const ip_addr_t *dst)
{
	struct link_xsk *lx = (struct link_xsk *)l;
	struct l3x_stack *st = l->st;
	const struct l2_entry *e = l2_find(lx, dst);
	struct l3x_xsk *x;
	uint64_t addr;
	uint8_t *frame;
	uint32_t len;

	if (!e)
		goto drop;
	x = lx->xsks[e->qi];
	len = e->hlen + p->tot_len;
	if (len > l3x_xsk_frame_size(x) - XDP_PACKET_HEADROOM_)
		goto drop;
	frame = l3x_xsk_tx_alloc(x, &addr);
	if (!frame)
		goto drop;
	memcpy(frame, e->hdr, e->hlen);
	pbuf_copy_partial(p, frame + e->hlen, p->tot_len, 0);
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
	unsigned qi;

	for (qi = 0; qi < lx->nxsk; qi++)
		l3x_xsk_tx_flush(lx->xsks[qi]);
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

	for (qi = 0; qi < lx->nxsk; qi++)
		l3x_xsk_close(lx->xsks[qi]);
	free(lx->l2);
	free(lx);
}

static const struct l3x_link_ops xsk_ops = {
	.rx = xsk_rx,
	.output = xsk_output,
	.flush = xsk_flush,
	.frames = xsk_frames,
	.rx_dropped = xsk_rx_dropped,
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
	if (mtu + L2_MAX > cfg->frame_size - XDP_PACKET_HEADROOM_ ||
	    (cfg->frame_count & (cfg->frame_count - 1)) ||
	    cfg->frame_count < 256 || (cfg->ring_size & (cfg->ring_size - 1)) ||
	    cfg->bind_mode > L3X_BIND_ZEROCOPY)
		return -EINVAL;
	cfg->tx_frames = cfg->frame_count / 2;
	return 0;
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
	uint32_t size = 1024;
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
	while (size < st->max_flows && size < (1u << 20))
		size <<= 1;
	lx->l2 = calloc(size, sizeof(*lx->l2));
	lx->l2_mask = size - 1;
	if (!lx->l2) {
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
