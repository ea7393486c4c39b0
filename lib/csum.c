/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * csum.c - the Internet checksum (l3x_csum.h).
 *
 * The one's complement sum of 16-bit words is the same number, modulo
 * 0xffff, as the plain sum of the 32-bit words they pair into: 2^16 is 1
 * modulo 0xffff. So the data is read 8 bytes a load, each load split into
 * its two 32-bit halves added into 64-bit accumulators, which cannot
 * overflow before 2^32 loads (32 GiB), and no carry is ever taken in the
 * loop. Four accumulators keep the adds independent. Loads are memcpy()s
 * of a fixed size, which the compiler turns into plain (unaligned) loads;
 * no alignment is needed, and the halves of a load are native-order 32-bit
 * words whichever the host's byte order, so the folded result is lwIP's
 * on any host. The copy stores each load it sums: one pass over the data
 * instead of memcpy() then a sum.
 */
#include <stdbool.h>
#include <string.h>

#include "l3x_csum.h"

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* A 64-bit sum of 32-bit words folded to 16 bits; 0 only when @s is. */
static inline uint16_t fold(uint64_t s)
{
	s = (s & 0xffffffff) + (s >> 32); /* < 2^33 */
	s = (s & 0xffff) + (s >> 16);	  /* < 2^18 */
	s = (s & 0xffff) + (s >> 16);	  /* <= 0x10002 */
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* The last @len (< 8) bytes at @p as one zero-padded load. */
static inline uint64_t tail64(const uint8_t *p, size_t len)
{
	uint64_t v = 0;

	if (len) /* p may be NULL then, and memcpy wants a pointer */
		memcpy(&v, p, len);
	return v;
}

#define HALVES(v) (((v)&0xffffffff) + ((v) >> 32))

uint16_t l3x_csum(const void *p, int len)
{
	const uint8_t *b = p;
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, v;
	size_t n = len > 0 ? (size_t)len : 0;

	for (; n >= 32; n -= 32, b += 32) {
		v = load64(b);
		s0 += HALVES(v);
		v = load64(b + 8);
		s1 += HALVES(v);
		v = load64(b + 16);
		s2 += HALVES(v);
		v = load64(b + 24);
		s3 += HALVES(v);
	}
	for (; n >= 8; n -= 8, b += 8) {
		v = load64(b);
		s0 += HALVES(v);
	}
	v = tail64(b, n);
	s1 += HALVES(v);
	return fold(s0 + s1 + s2 + s3);
}

uint16_t l3x_csum_copy(void *dst, const void *src, size_t len)
{
	const uint8_t *s = src;
	uint8_t *d = dst;
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, v0, v1, v2, v3;
	size_t n = len;

	for (; n >= 32; n -= 32, s += 32, d += 32) {
		v0 = load64(s);
		v1 = load64(s + 8);
		v2 = load64(s + 16);
		v3 = load64(s + 24);
		memcpy(d, &v0, 8);
		memcpy(d + 8, &v1, 8);
		memcpy(d + 16, &v2, 8);
		memcpy(d + 24, &v3, 8);
		s0 += HALVES(v0);
		s1 += HALVES(v1);
		s2 += HALVES(v2);
		s3 += HALVES(v3);
	}
	for (; n >= 8; n -= 8, s += 8, d += 8) {
		v0 = load64(s);
		memcpy(d, &v0, 8);
		s0 += HALVES(v0);
	}
	v0 = tail64(s, n);
	if (n)
		memcpy(d, s, n);
	s1 += HALVES(v0);
	return fold(s0 + s1 + s2 + s3);
}

/* Where the TCP or UDP checksum of IP packet @pkt (@len bytes) lies, for
 * lwIP's own sum: over the IP payload as the IP header gives its length
 * (lwIP trims the pbuf to it), with the pseudo header from that IP header.
 * False for anything lwIP sums otherwise (a fragment, another protocol, a
 * header that lies). */
struct ip_sum {
	size_t hl, tot, aoff, alen;
	uint8_t proto;
};

static bool ip_sum_at(const uint8_t *pkt, size_t len, struct ip_sum *w)
{
	if (len >= 20 && pkt[0] >> 4 == 4) {
		w->hl = (size_t)(pkt[0] & 0xf) * 4;
		w->tot = (size_t)pkt[2] << 8 | pkt[3];
		w->proto = pkt[9];
		w->aoff = 12; /* src, dst */
		w->alen = 8;
		if ((pkt[6] & 0x3f) || pkt[7])
			return false; /* a fragment: lwIP sums the datagram */
	} else if (len >= 40 && pkt[0] >> 4 == 6) {
		w->hl = 40;
		w->tot = 40 + ((size_t)pkt[4] << 8 | pkt[5]);
		w->proto = pkt[6];
		w->aoff = 8; /* src, dst */
		w->alen = 32;
	} else {
		return false;
	}
	return (w->proto == 6 || w->proto == 17) && w->hl >= 20 &&
	       w->tot <= len && w->hl + 8 <= w->tot;
}

/* Is @sum, that of the payload of @pkt at @w, right with the pseudo header
 * (the protocol, then the payload's length, as 16-bit words: the IPv6
 * pseudo header's 32-bit length and 3 zero bytes sum the same for a
 * payload under 64 KiB)? */
static bool ip_sum_ok(const uint8_t *pkt, const struct ip_sum *w, uint16_t sum)
{
	uint8_t pseudo[4];

	pseudo[0] = 0;
	pseudo[1] = w->proto;
	pseudo[2] = (uint8_t)((w->tot - w->hl) >> 8);
	pseudo[3] = (uint8_t)(w->tot - w->hl);
	sum = l3x_csum_add(sum, l3x_csum(pseudo, 4), 0);
	sum = l3x_csum_add(sum, l3x_csum(pkt + w->aoff, (int)w->alen), 0);
	return sum == 0xffff;
}

bool l3x_csum_copy_ip(void *dst_, const void *pkt_, size_t len)
{
	const uint8_t *pkt = pkt_;
	uint8_t *dst = dst_;
	struct ip_sum w;
	uint16_t sum;

	if (!ip_sum_at(pkt, len, &w)) {
		memcpy(dst, pkt, len);
		return false;
	}
	memcpy(dst, pkt, w.hl);
	sum = l3x_csum_copy(dst + w.hl, pkt + w.hl, w.tot - w.hl);
	memcpy(dst + w.tot, pkt + w.tot, len - w.tot);
	return ip_sum_ok(pkt, &w, sum);
}

bool l3x_csum_ip_ok(const void *pkt_, size_t len)
{
	const uint8_t *pkt = pkt_;
	struct ip_sum w;

	if (!ip_sum_at(pkt, len, &w))
		return false;
	return ip_sum_ok(pkt, &w, l3x_csum(pkt + w.hl, (int)(w.tot - w.hl)));
}
