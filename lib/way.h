/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * way.h - the way back of each flow: the layer-2 header (our MAC, the
 * client's next hop, the VLAN tags) and the queue its replies leave by,
 * kept per flow in a table keyed by the flow's 5-tuple, internal.
 *
 * A way is made only from a frame the stack has accepted as the start of a
 * flow (the SYN lwIP opens a connection for, the first datagram of a UDP
 * flow, a datagram a bound socket takes) and is never changed after: a
 * later frame, whoever sends it, cannot redirect a flow's replies. The
 * flow holds a reference and drops it when it ends. The table is hashed
 * with SipHash under a key of its own (lib/hash.c), chains are bounded,
 * and a way that finds its chain full is refused, not written over
 * another flow's. Engine thread only.
 */
#ifndef L3X_WAY_H
#define L3X_WAY_H

#include <stdint.h>

#include "l3x_internal.h"

#define L3X_L2_MAX 22 /* Ethernet and two VLAN tags */

/* A flow as seen from our side: what a reply carries, and the zone (VLAN
 * IDs, l3x_zone_of()) it lives in. Addresses are zero past the family's
 * length, ports in host order; no padding (pad is 0): keys are hashed and
 * compared as bytes. */
struct l3x_flow_key {
	uint8_t family; /* 4 or 6 */
	uint8_t proto;	/* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t lport, rport;
	uint16_t pad;
	uint32_t zone;
	uint8_t laddr[16], raddr[16];
};

struct l3x_way {
	struct l3x_way *next; /* in its bucket */
	struct l3x_ways *tab;
	struct l3x_flow_key key;
	uint32_t refs;
	uint16_t qi;   /* the queue replies leave by */
	uint8_t hlen;  /* bytes of hdr */
	uint8_t vlans; /* tags in hdr: 0, 1 or 2 */
	uint8_t hdr[L3X_L2_MAX];
};

struct l3x_ways;

/* A table for about @flows flows at once. NULL: no memory. */
L3X_HIDDEN struct l3x_ways *l3x_ways_open(uint32_t flows);
/* Free the table and every way in it. */
L3X_HIDDEN void l3x_ways_close(struct l3x_ways *t);

/*
 * l3x_ways_add() - a reference to the way of @k: the one already kept
 * (whose header stays as it was), or a new one from @hdr. NULL with -errno
 * in *@err: -ENOSPC the chain of @k is full, -ENOMEM.
 */
L3X_HIDDEN struct l3x_way *l3x_ways_add(struct l3x_ways *t,
					const struct l3x_flow_key *k,
					const uint8_t *hdr, unsigned hlen,
					unsigned vlans, uint16_t qi, int *err);

/* The way of @k, or NULL. */
L3X_HIDDEN const struct l3x_way *l3x_ways_find(const struct l3x_ways *t,
					       const struct l3x_flow_key *k);

/* Drop a reference (NULL: nothing); the last one frees the way. */
L3X_HIDDEN void l3x_way_put(struct l3x_way *w);

/* Ways kept now. */
L3X_HIDDEN uint32_t l3x_ways_count(const struct l3x_ways *t);

#endif /* L3X_WAY_H */
