/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * gro.h - receive coalescing, internal: consecutive in-order TCP segments
 * of one connection that arrive in one receive burst are merged into one
 * segment before lwIP's tcp_input() takes them, as Linux's
 * tcp_gro_receive() does. The engine (lib/engine.c) hands every packet
 * that may be held to l3x_gro_add() and ends each burst with
 * l3x_gro_flush(), before lwIP's deferred ACKs go (patch 0061), so no
 * segment waits past its burst. What comes out goes to the feed function
 * the engine gave, with the number of segments merged (lwIP patch 0062
 * acknowledges it as that many).
 *
 * A segment is merged into the one held for its flow (the same zone,
 * family, addresses and ports) when: IPv4 without options or
 * fragmentation, IPv6 without extension headers; the IP packet is the
 * whole pbuf; its flags are ACK (or ACK|PSH: the run then ends); its
 * sequence number is the held one's end; its acknowledgment number,
 * window and TCP options are the held one's byte for byte; it carries
 * data, no more than the first segment of the run (a shorter one ends
 * the run); the merged packet stays within 65535 bytes and max_segs
 * segments; and its TCP checksum (and IPv4 header checksum) is right,
 * verified here (PBUF_FLAG_L3X_CSUM_OK: lwIP does not sum it again).
 * Anything else sends the flow's held segment on first and goes on
 * unchanged, so segments of a flow never overtake each other.
 *
 * The merged segment is the first one's pbuf with the IP length (and
 * IPv4 header checksum) set for the whole, and the later segments' pbufs,
 * their headers removed, chained behind it: a UMEM frame stays in place
 * (zero copy) and every part is freed on its own. Engine thread only.
 */
#ifndef L3X_GRO_H
#define L3X_GRO_H

#include <stdbool.h>
#include <stdint.h>

#include "lwip/pbuf.h"

#include "l3x_internal.h"

#define L3X_GRO_FLOWS	 8     /* flows held at once, per burst */
#define L3X_GRO_MAX_LEN	 65535 /* a merged IP packet at most */
#define L3X_GRO_MAX_SEGS 64    /* segments in a merged one at most */

/* @p (taken) to lwIP: @segs segments merged into it (1: as it came);
 * @held when it waited in the table (it is no longer the packet the
 * source handed in now). */
typedef void (*l3x_gro_feed_fn)(void *ctx, struct pbuf *p, unsigned segs,
				bool held);

/* One flow's run of segments. */
struct l3x_gro_key {
	uint32_t zone;
	uint8_t family; /* 4 or 6; 0: the slot is free */
	uint8_t pad;
	uint16_t sport, dport;
	uint8_t src[16], dst[16];
};

struct l3x_gro_run {
	struct l3x_gro_key key;
	struct pbuf *head;
	uint32_t next_seq; /* the run's end (host order) */
	uint32_t ack;	   /* as on the wire */
	uint16_t win;	   /* as on the wire */
	uint16_t mss;	   /* the first segment's data */
	uint32_t tot;	   /* IP length of the merged packet */
	uint16_t segs;
	uint8_t iphl, tcphl;
};

struct l3x_gro {
	struct l3x_gro_run run[L3X_GRO_FLOWS];
	unsigned held;	   /* runs in use */
	unsigned evict;	   /* the next slot to send on when all are used */
	unsigned max_segs; /* 2..L3X_GRO_MAX_SEGS */
	l3x_gro_feed_fn feed;
	void *ctx;
	uint64_t merged;  /* segments merged into the one before them */
	uint64_t flushed; /* runs sent on (merged or not) */
};

/* An empty table; runs end at @max_segs segments (at least 2, at most
 * L3X_GRO_MAX_SEGS). */
L3X_HIDDEN void l3x_gro_init(struct l3x_gro *g, unsigned max_segs,
			     l3x_gro_feed_fn feed, void *ctx);
/* IP packet @p (taken: one pbuf, the packet from its payload) of zone
 * @zone: merged, held, or fed on now (after its flow's run, if any). */
L3X_HIDDEN void l3x_gro_add(struct l3x_gro *g, struct pbuf *p, uint32_t zone);
/* A packet that is not held (@len bytes of IP at @ip, zone @zone) is
 * about to go to lwIP: its flow's run goes first. */
L3X_HIDDEN void l3x_gro_pass(struct l3x_gro *g, const void *ip, size_t len,
			     uint32_t zone);
/* Every run held to the feed function: the burst is over. */
L3X_HIDDEN void l3x_gro_flush(struct l3x_gro *g);

#endif /* L3X_GRO_H */
