/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mix64.h - splitmix64, the seeded generator behind the harness's streams
 * and fault decisions: its finaliser alone (a hash of a 64-bit word), and
 * as a generator over a state. Header-only, so that the one-file fault
 * programs (tests/fault) share it with l3x-load. Any thread: no state of
 * its own.
 */
#ifndef L3X_TOOL_MIX64_H
#define L3X_TOOL_MIX64_H

#include <stdint.h>

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t rng_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return mix64(*state);
}

#endif /* L3X_TOOL_MIX64_H */
