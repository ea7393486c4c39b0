/*
 * wire_helpers.h - network byte order into and out of the hand-built
 * packets of the lwIP unit tests (test_lwip_anydest.c, test_lwip_tail.c,
 * test_gro.c).
 */
#ifndef L3X_TEST_WIRE_HELPERS_H
#define L3X_TEST_WIRE_HELPERS_H

#include <stdint.h>

static inline void put16(uint8_t *b, uint16_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

static inline void put32(uint8_t *b, uint32_t v)
{
	put16(b, (uint16_t)(v >> 16));
	put16(b + 2, (uint16_t)v);
}

static inline uint16_t get16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t get32(const uint8_t *b)
{
	return (uint32_t)get16(b) << 16 | get16(b + 2);
}

#endif
