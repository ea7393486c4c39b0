/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* xsk.h - the AF_XDP link (lib/xsk.c), internal. All calls but open and
 * close are owner-thread only. */
#ifndef L3X_XSK_H
#define L3X_XSK_H

#include "l3x_internal.h"

struct l3x_xsk;

struct l3x_xsk_cfg {
	const char *ifname;
	uint32_t queue;
	uint32_t frame_count;
	uint32_t frame_size; /* power of two */
	uint32_t ring_size;  /* power of two */
	enum l3x_bind_mode bind_mode;
	bool skb_mode;	    /* program in skb mode: copy only */
	int busy_poll_usec; /* < 0: off */
	uint32_t busy_poll_budget;
	int xsks_map_fd;
	uint32_t tx_frames; /* frames kept out of the fill ring
			     * for transmit; 0 for capture */
};

L3X_HIDDEN struct l3x_xsk *l3x_xsk_open(const struct l3x_xsk_cfg *cfg);
L3X_HIDDEN void l3x_xsk_close(struct l3x_xsk *x);
L3X_HIDDEN int l3x_xsk_fd(const struct l3x_xsk *x);
L3X_HIDDEN uint32_t l3x_xsk_queue(const struct l3x_xsk *x);
/* Post free frames to the fill ring, as many as fit. */
L3X_HIDDEN void l3x_xsk_refill(struct l3x_xsk *x);
L3X_HIDDEN unsigned l3x_xsk_rx_burst(struct l3x_xsk *x, struct l3x_frame *f,
				     unsigned n);
/* Give back frames received: 0, or -EINVAL (counted, nothing given back)
 * when one is not held by the application (released twice, not ours). */
L3X_HIDDEN int l3x_xsk_release(struct l3x_xsk *x, const struct l3x_frame *f,
			       unsigned n);
/* Give back one received frame (@addr anywhere in it) to the free stack
 * only: the caller refills later (l3x_xsk_refill), so that frames freed one
 * by one go to the fill ring in one batch. Errors as l3x_xsk_release(). */
L3X_HIDDEN int l3x_xsk_release_one(struct l3x_xsk *x, uint64_t addr);
/* The frames receive may use (the rest are kept for transmit), and those
 * of them ready for the kernel: on the fill ring or free to go there. */
L3X_HIDDEN uint32_t l3x_xsk_rx_frames(const struct l3x_xsk *x);
L3X_HIDDEN uint32_t l3x_xsk_rx_spare(const struct l3x_xsk *x);
L3X_HIDDEN int l3x_xsk_wait(struct l3x_xsk *x, int timeout_ms);
/* Nothing in hand for its owner: the RX ring is empty and the kernel has
 * taken every descriptor of the TX ring, so that the owner may sleep in
 * poll() on l3x_xsk_fd() (POLLIN) until a packet comes. Owner thread. */
L3X_HIDDEN bool l3x_xsk_idle(struct l3x_xsk *x);
L3X_HIDDEN void l3x_xsk_frames(const struct l3x_xsk *x,
			       struct l3x_frame_stats *fs);
/*
 * Transmit: l3x_xsk_tx_alloc() gives a free frame (NULL when none, after
 * reaping completions), l3x_xsk_tx_put() queues @len bytes of it on the
 * TX ring (false, frame freed, when the ring is full), l3x_xsk_tx_flush()
 * publishes what was queued and kicks the kernel when it asks.
 */
L3X_HIDDEN void *l3x_xsk_tx_alloc(struct l3x_xsk *x, uint64_t *addr);
L3X_HIDDEN bool l3x_xsk_tx_put(struct l3x_xsk *x, uint64_t addr, uint32_t len);
L3X_HIDDEN void l3x_xsk_tx_flush(struct l3x_xsk *x);
/* TX kicks (sendto() calls) since the socket was opened. Owner thread. */
L3X_HIDDEN uint64_t l3x_xsk_tx_kicks(const struct l3x_xsk *x);
L3X_HIDDEN uint32_t l3x_xsk_frame_size(const struct l3x_xsk *x);
L3X_HIDDEN int l3x_xsk_stats(const struct l3x_xsk *x,
			     struct l3x_capture_handle_stats *st);

#endif
