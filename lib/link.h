/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * link.h - a source of IP packets for the stack, internal: AF_XDP
 * (lib/link_xsk.c), a TUN device (lib/link_tun.c) or the application's
 * callbacks (lib/link_cb.c). The engine (lib/engine.c) opens one, polls its
 * rx, sends lwIP's packets through its output and closes it. A link never
 * calls the engine by name: it hands packets in through the input function
 * the engine gives it, as an lwIP netif driver does through netif->input,
 * so the sources sit below the engine and import nothing from it.
 */
#ifndef L3X_LINK_H
#define L3X_LINK_H

#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"

#include "l3x_internal.h"

#define L3X_RX_BURST 64
#define L3X_PKT_MAX  65535 /* largest IP packet */

struct l3x_stack;
struct l3x_link;
struct l3x_flow_key;
struct l3x_way;
struct pollfd;

/* rx feeds each packet it reads to link->input; output sends one lwIP
 * packet; flush (optional) ends a burst of output; frames (optional)
 * counts UMEM frames; rx_dropped (optional, any thread) counts packets
 * the source lost before rx could read them; way_learn (optional: links
 * with a layer 2) keeps the way back of the packet being input now for
 * flow @k, called from within input only, and returns a reference for
 * l3x_way_put() (lib/way.h), or NULL with -errno in *@err (counted);
 * wait_fds (optional: without it the engine sleeps on its own eventfd
 * and timers only) fills @pfd with at most @max fds that poll readable
 * when packets arrive, for the engine to sleep on when idle, and returns
 * how many, or -EAGAIN when the link has work in hand that sleeping would
 * stall (packets in its rings, frames not yet sent);
 * close frees the link. */
struct l3x_link_ops {
	int (*rx)(struct l3x_link *l); /* packets handled, or 0 */
	int (*output)(struct l3x_link *l, struct pbuf *p, const ip_addr_t *dst);
	void (*flush)(struct l3x_link *l);
	void (*frames)(struct l3x_link *l, struct l3x_frame_stats *fs);
	uint64_t (*rx_dropped)(struct l3x_link *l);
	struct l3x_way *(*way_learn)(struct l3x_link *l,
				     const struct l3x_flow_key *k, int *err);
	int (*wait_fds)(struct l3x_link *l, struct pollfd *pfd, unsigned max);
	/* replay (optional: for links whose input has a context, the frame
	 * at hand of way_learn): @p, a pbuf the link gave input_pbuf earlier
	 * in this rx burst and the engine held (receive coalescing, lib/gro.c),
	 * to link->feed as if it were the frame at hand; the context of the
	 * frame really at hand (if any) is back after. Engine thread. */
	void (*replay)(struct l3x_link *l, struct pbuf *p);
	void (*close)(struct l3x_link *l);
};

struct l3x_link {
	const struct l3x_link_ops *ops;
	struct l3x_stack *st;
	/* Set by the engine after open: one IP packet (copied) into the
	 * stack. Returns 0, or -ENOBUFS (counted). Engine thread. */
	int (*input)(struct l3x_stack *st, const void *pkt, size_t len);
	/* Set for the XDP source only: one IP packet in pbuf @p, a single
	 * pbuf of the link's own (a UMEM frame) that lwIP keeps as it is;
	 * taken in every case (freed when dropped). Same returns. */
	int (*input_pbuf)(struct l3x_stack *st, struct pbuf *p);
	/* Set by the engine: a pbuf it held, to lwIP (for ops->replay). */
	void (*feed)(struct l3x_stack *st, struct pbuf *p);
};

/* 0 if the XDP source's options are good for an MTU of @mtu, -EINVAL. */
L3X_HIDDEN int l3x_link_xsk_check(const struct l3x_stack_opts *o, uint32_t mtu);
/* Sockets on the queues of @o, bound into the XSKMAP @xsks_fd of the
 * stack's steering program (in skb mode: @skb_mode). */
L3X_HIDDEN struct l3x_link *l3x_link_xsk_open(struct l3x_stack *st,
					      const struct l3x_stack_opts *o,
					      int xsks_fd, bool skb_mode);
L3X_HIDDEN struct l3x_link *l3x_link_tun_open(struct l3x_stack *st,
					      const char *name, uint32_t mtu);
L3X_HIDDEN struct l3x_link *l3x_link_cb_open(struct l3x_stack *st,
					     l3x_output_fn_t fn, void *ctx);

/* @p as one contiguous buffer: its payload, or a copy in @buf
 * (L3X_PKT_MAX bytes). */
static inline const void *l3x_pbuf_flat(struct pbuf *p, uint8_t *buf)
{
	if (!p->next)
		return p->payload;
	pbuf_copy_partial(p, buf, p->tot_len, 0);
	return buf;
}

#endif /* L3X_LINK_H */
