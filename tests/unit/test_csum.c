/*
 * test_csum.c - the Internet checksum (lib/csum.c) that lwIP uses as
 * LWIP_CHKSUM and LWIP_CHKSUM_COPY: against lwIP's own algorithm (its
 * LWIP_CHKSUM_ALGORITHM 2, copied here: with LWIP_CHKSUM set, lwIP no
 * longer builds it) and a byte-at-a-time reference, for random data of
 * every length up to 9000 at every alignment; the copy copies exactly
 * and only what it is told; and lwIP's pseudo-header sums over pbuf
 * chains with odd-length parts still give what the reference gives.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lwip/inet_chksum.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/prot/ip.h"

#include "l3x_csum.h"

#define MAXLEN 9000
#define ALIGNS 8

/* lwIP 2.2.1 src/core/inet_chksum.c, LWIP_CHKSUM_ALGORITHM 2. */
static uint16_t lwip_algorithm2(const void *dataptr, int len)
{
	const uint8_t *pb = dataptr;
	const uint16_t *ps;
	uint16_t t = 0;
	uint32_t sum = 0;
	int odd = ((uintptr_t)pb & 1);

	if (odd && len > 0) {
		((uint8_t *)&t)[1] = *pb++;
		len--;
	}
	ps = (const uint16_t *)(const void *)pb;
	while (len > 1) {
		sum += *ps++;
		len -= 2;
	}
	if (len > 0)
		((uint8_t *)&t)[0] = *(const uint8_t *)ps;
	sum += t;
	sum = (sum >> 16) + (sum & 0xffff);
	sum = (sum >> 16) + (sum & 0xffff);
	if (odd)
		sum = ((sum & 0xff) << 8) | ((sum & 0xff00) >> 8);
	return (uint16_t)sum;
}

/* RFC 1071 byte by byte, in network order, then stored in memory order
 * as lwIP's sums are. */
static uint16_t naive(const uint8_t *b, size_t len)
{
	uint32_t s = 0;
	uint16_t r;
	uint8_t be[2];
	size_t i;

	for (i = 0; i < len; i++)
		s += i & 1 ? b[i] : (uint32_t)b[i] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	be[0] = (uint8_t)(s >> 8);
	be[1] = (uint8_t)s;
	memcpy(&r, be, 2);
	return r;
}

static uint8_t *random_buf(size_t len, unsigned seed)
{
	uint8_t *b = malloc(len);
	size_t i;

	cr_assert(b);
	srand(seed);
	for (i = 0; i < len; i++)
		b[i] = (uint8_t)rand();
	return b;
}

Test(csum, every_length_and_alignment_matches_lwip_and_the_reference)
{
	uint8_t *b = random_buf(MAXLEN + ALIGNS, 1);
	size_t len, a;

	for (len = 0; len <= MAXLEN; len++)
		for (a = 0; a < ALIGNS; a++) {
			uint16_t want = lwip_algorithm2(b + a, (int)len);

			cr_assert_eq(l3x_csum(b + a, (int)len), want,
				     "len %zu align %zu", len, a);
			if (len < 2000)
				cr_assert_eq(naive(b + a, len), want,
					     "len %zu align %zu", len, a);
		}
	free(b);
}

/* The sums that could go wrong in a fold: all zero, all 0xff (a sum
 * that is a multiple of 0xffff), and 0xff bytes long enough to carry
 * through every accumulator. */
Test(csum, zero_and_all_ones_fold_as_lwip_folds)
{
	static uint8_t b[MAXLEN + ALIGNS];
	size_t len, a;

	for (len = 0; len <= MAXLEN; len += len < 100 ? 1 : 97)
		for (a = 0; a < ALIGNS; a++) {
			memset(b, 0, sizeof(b));
			cr_assert_eq(l3x_csum(b + a, (int)len), 0);
			memset(b, 0xff, sizeof(b));
			cr_assert_eq(l3x_csum(b + a, (int)len),
				     lwip_algorithm2(b + a, (int)len),
				     "len %zu align %zu", len, a);
		}
	cr_assert_eq(l3x_csum(b, -1), 0);
}

Test(csum, copy_copies_exactly_and_sums_what_it_copied)
{
	uint8_t *src = random_buf(MAXLEN + ALIGNS, 2);
	uint8_t *dst = malloc(MAXLEN + 2 * ALIGNS);
	size_t len, a, d;

	cr_assert(dst);
	for (len = 0; len <= MAXLEN; len += len < 300 ? 1 : 61)
		for (a = 0; a < ALIGNS; a++)
			for (d = 0; d < ALIGNS; d += 3) {
				memset(dst, 0xa5, MAXLEN + 2 * ALIGNS);
				cr_assert_eq(
					l3x_csum_copy(dst + d, src + a, len),
					lwip_algorithm2(src + a, (int)len),
					"len %zu align %zu/%zu", len, a, d);
				cr_assert_eq(memcmp(dst + d, src + a, len), 0);
				cr_assert_eq(dst[d + len], 0xa5, "wrote past");
				if (d)
					cr_assert_eq(dst[d - 1], 0xa5);
			}
	free(src);
	free(dst);
}

Test(csum, lwip_macros_are_ours)
{
	uint8_t *b = random_buf(1500, 3), d[1500];

	cr_assert_eq(LWIP_CHKSUM_COPY(d, b, 1500), lwip_algorithm2(b, 1500));
	cr_assert_eq(inet_chksum(b, 1500), (uint16_t)~lwip_algorithm2(b, 1500));
	free(b);
}

/* The pseudo-header sum over a chain of pbufs whose parts have odd
 * lengths (lwIP swaps the part sums that start at an odd offset): the
 * same as the reference over the flat pseudo header and data. */
Test(csum, pseudo_header_sums_over_odd_chains_are_unchanged)
{
	uint8_t *b = random_buf(4000, 4), flat[12 + 4000];
	static const int cuts[][3] = { { 1, 2, 3 },
				       { 7, 100, 1 },
				       { 1499, 1, 1 },
				       { 33, 33, 33 },
				       { 2000, 999, 1 } };
	ip_addr_t src = IPADDR4_INIT_BYTES(10, 1, 2, 3);
	ip_addr_t dst = IPADDR4_INIT_BYTES(192, 168, 200, 9);
	unsigned c, i;

	for (c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
		struct pbuf *head = NULL;
		uint16_t len = 0, want, sum;
		const uint8_t *at = b;

		for (i = 0; i < 3; i++) {
			struct pbuf *p = pbuf_alloc(
				PBUF_RAW, (uint16_t)cuts[c][i], PBUF_RAM);

			cr_assert(p);
			memcpy(p->payload, at, (size_t)cuts[c][i]);
			at += cuts[c][i];
			len = (uint16_t)(len + cuts[c][i]);
			if (head)
				pbuf_cat(head, p);
			else
				head = p;
		}
		/* src, dst, zero, protocol, length, in network order */
		memcpy(flat, &ip_2_ip4(&src)->addr, 4);
		memcpy(flat + 4, &ip_2_ip4(&dst)->addr, 4);
		flat[8] = 0;
		flat[9] = IP_PROTO_TCP;
		flat[10] = (uint8_t)(len >> 8);
		flat[11] = (uint8_t)len;
		memcpy(flat + 12, b, len);
		want = (uint16_t)~naive(flat, 12u + len);
		sum = ip_chksum_pseudo(head, IP_PROTO_TCP, len, &src, &dst);
		cr_assert_eq(sum, want, "cuts %u", c);
		pbuf_free(head);
	}
	free(b);
}
