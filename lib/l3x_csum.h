/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x_csum.h - the Internet checksum (RFC 1071) for lwIP and the engine: one
 * pass, 8 bytes a load, and a copy that sums what it copies, so that a
 * packet's checksum costs no pass of its own over the data.
 *
 * Every sum here is lwIP's: the one's complement sum of the data read as
 * 16-bit words in memory order (a trailing odd byte padded with a zero
 * after it), folded to 16 bits and not inverted. Stored as it is, it is
 * in network byte order on any host; it is 0 only for all-zero data.
 * lwipopts.h makes l3x_csum LWIP_CHKSUM and l3x_csum_copy LWIP_CHKSUM_COPY.
 * Included from lwipopts.h, so fixed-width types only.
 */
#ifndef L3X_LIB_CSUM_H
#define L3X_LIB_CSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sum of @len bytes at @p, any alignment; @len < 0 sums nothing.
 * Any thread. */
uint16_t l3x_csum(const void *p, int len);

/* memcpy(@dst, @src, @len) that returns l3x_csum(@src, @len) (the buffers
 * must not overlap). Any thread. */
uint16_t l3x_csum_copy(void *dst, const void *src, size_t len);

/*
 * memcpy(@dst, @pkt, @len) of an IP packet that verifies, on the way, the
 * TCP or UDP checksum of an unfragmented IPv4 packet or an IPv6 one without
 * extension headers: true when the checksum is right, so lwIP need not sum
 * it again (PBUF_FLAG_L3X_CSUM_OK, patch 0051). False for a wrong sum and
 * for anything else (a fragment, another protocol, a header that lies):
 * lwIP sums, drops and counts those as it always did. Any thread.
 */
bool l3x_csum_copy_ip(void *dst, const void *pkt, size_t len);

/* l3x_csum_copy_ip()'s verdict on @pkt without the copy: the sum is read
 * in place (receive coalescing, lib/gro.c, checks each segment it merges).
 * Any thread. */
bool l3x_csum_ip_ok(const void *pkt, size_t len);

/* The sum of @a and @b, two sums of the kind above; @b is the sum of data
 * that started at an odd offset from @a's when @odd (it is byte-swapped
 * first). */
static inline uint16_t l3x_csum_add(uint16_t a, uint16_t b, int odd)
{
	uint32_t s;

	if (odd)
		b = (uint16_t)(b << 8 | b >> 8);
	s = (uint32_t)a + b;
	return (uint16_t)((s & 0xffff) + (s >> 16));
}

#endif /* L3X_LIB_CSUM_H */
