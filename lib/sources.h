/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sources.h - open flows per client: per source address, and per IPv6
 * source /64 (what one host is usually given), for the optional caps
 * max_flows_per_source and max_flows_per_source64. lib/flow.c counts a
 * flow in when it is offered and out when it is released. Engine thread
 * only.
 *
 * A chained hash table, SipHash under a random key per process (lib/hash.c),
 * one entry per source address and per /64 with flows open: at most two
 * per open flow, so it never outgrows the flow budgets. An entry is freed
 * when its count drops to zero.
 */
#ifndef L3X_SOURCES_H
#define L3X_SOURCES_H

#include <stdint.h>

#include "l3x_internal.h"

struct l3x_sources;

/*
 * l3x_sources_open() - a table for up to @max_flows open flows, capped at
 * @per_addr flows per source address and @per_64 per IPv6 /64 (0: no cap).
 * NULL with errno ENOMEM.
 */
L3X_HIDDEN struct l3x_sources *
l3x_sources_open(uint32_t max_flows, uint32_t per_addr, uint32_t per_64);
L3X_HIDDEN void l3x_sources_close(struct l3x_sources *t);

/*
 * l3x_sources_check() - may one more flow come from @addr (@family 4 or
 * 6)? 0; -EDQUOT a cap is reached; -EBUSY its bucket is full (the bound
 * on every lookup).
 */
L3X_HIDDEN int l3x_sources_check(struct l3x_sources *t, uint8_t family,
				 const uint8_t *addr);

/*
 * l3x_sources_add() / _del() - count a flow from @addr in or out. add
 * after a successful check; it returns false when it could not count the
 * flow (no memory for an entry): then del must not be called for it.
 */
L3X_HIDDEN bool l3x_sources_add(struct l3x_sources *t, uint8_t family,
				const uint8_t *addr);
L3X_HIDDEN void l3x_sources_del(struct l3x_sources *t, uint8_t family,
				const uint8_t *addr);

#endif /* L3X_SOURCES_H */
