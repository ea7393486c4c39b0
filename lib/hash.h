/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hash.h - keyed hashing for everything a peer can aim at: SipHash-2-4
 * (Aumasson and Bernstein, the reference algorithm) under keys drawn from
 * the kernel's CSPRNG once per process. The tables the wire fills (lwIP's
 * TCP PCB hash, the UDP flow table, the per-source counts) and the TCP
 * initial sequence numbers each use a key of their own, so no output of
 * one tells anything about another, and no two processes agree on any.
 */
#ifndef L3X_HASH_H
#define L3X_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "l3x_internal.h"

/* What a key is for: one random 128-bit key each. */
enum l3x_hash_use {
	L3X_HASH_TCP_ISN,  /* RFC 6528 initial sequence numbers */
	L3X_HASH_TCP_PCB,  /* lwIP's 4-tuple hash (patch 0005) */
	L3X_HASH_UDP_FLOW, /* lib/udp.c flow table */
	L3X_HASH_SOURCE,   /* lib/flow.c per-source counts */
	L3X_HASH_WAY,	   /* lib/way.c ways back, per flow */
	L3X_HASH_TCP_TS,   /* TCP timestamp offsets (patch 0011) */
	L3X_HASH_FRAG,	   /* lib/rules.c fragments in flight */
	L3X_HASH_USES,
};

/*
 * l3x_hash() - SipHash-2-4 of @len bytes at @in under the process's key
 * for @use. The keys are made on the first call (getrandom) and never
 * change: a table hashed with them stays valid for the process's life.
 * Any thread.
 */
L3X_HIDDEN uint64_t l3x_hash(enum l3x_hash_use use, const void *in, size_t len);

/* A new random key (getrandom; a weak one, warned about, without it), for
 * keys that rotate (SYN cookies, syncookie.h). Any thread. */
L3X_HIDDEN void l3x_hash_new_key(uint64_t key[2]);

/* The reference function under an explicit key, for the test vectors. */
L3X_HIDDEN uint64_t l3x_siphash(const uint64_t key[2], const void *in,
				size_t len);

#endif /* L3X_HASH_H */
