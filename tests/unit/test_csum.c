/*
 * test_csum.c - the Internet checksum (lib/csum.c) that lwIP uses as
 * LWIP_CHKSUM and LWIP_CHKSUM_COPY: against lwIP's own algorithm (its
 * LWIP_CHKSUM_ALGORITHM 2, copied here: with LWIP_CHKSUM set, lwIP no
 * longer builds it) and a byte-at-a-time reference, for random data of
 * every length up to 9000 at every alignment; the copy copies exactly
 * and only what it is told; and lwIP's pseudo-header sums over pbuf
 * chains with odd-length parts still give what the reference gives.
 * l3x_csum_copy_ip(), the engine's copy of a received packet: a right TCP
 * or UDP sum passes, one wrong bit anywhere it covers fails, and what
 * lwIP must sum itself (fragments, extension headers, lying lengths) is
 * never passed; every byte is copied either way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "lwip/inet_chksum.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/prot/ip.h"

#include "csum.h" /* tools/common: the reference for packets */
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

/* ------------------------------------------------ l3x_csum_copy_ip() */

/* An IPv4 (@v6 0, @ihl 32-bit words of header) or IPv6 packet of
 * protocol @proto with @l4len random bytes of payload, its TCP (offset
 * 16) or UDP (offset 6) checksum right; @pad bytes of junk after it (as
 * an Ethernet minimum frame pads). Returns the packet's length. */
static size_t make_packet(uint8_t *b, int v6, unsigned ihl, uint8_t proto,
			  size_t l4len, size_t pad, unsigned seed)
{
	size_t hl = v6 ? 40 : ihl * 4, i, coff = proto == 6 ? 16 : 6;
	uint8_t ph[40];
	uint16_t c;

	srand(seed);
	for (i = 0; i < hl + l4len + pad; i++)
		b[i] = (uint8_t)rand();
	if (v6) {
		b[0] = 0x60;
		b[4] = (uint8_t)(l4len >> 8);
		b[5] = (uint8_t)l4len;
		b[6] = proto;
	} else {
		b[0] = (uint8_t)(0x40 | ihl);
		b[2] = (uint8_t)((hl + l4len) >> 8);
		b[3] = (uint8_t)(hl + l4len);
		b[6] = 0x40; /* DF, no fragment */
		b[7] = 0;
		b[9] = proto;
	}
	/* pseudo header: addresses, zero, protocol, length */
	memcpy(ph, b + (v6 ? 8 : 12), v6 ? 32 : 8);
	i = v6 ? 32 : 8;
	ph[i] = 0;
	ph[i + 1] = proto;
	ph[i + 2] = (uint8_t)(l4len >> 8);
	ph[i + 3] = (uint8_t)l4len;
	b[hl + coff] = b[hl + coff + 1] = 0;
	c = csum_fold(csum_partial(b + hl, l4len, csum_partial(ph, i + 4, 0)));
	b[hl + coff] = (uint8_t)(c >> 8);
	b[hl + coff + 1] = (uint8_t)c;
	return hl + l4len + pad;
}

/* Copies all @len bytes, exactly, whatever it returns. */
static bool copy_ip(const uint8_t *pkt, size_t len)
{
	static uint8_t dst[70000];
	bool ok;

	memset(dst, 0xa5, len + 1);
	ok = l3x_csum_copy_ip(dst, pkt, len);
	cr_assert_eq(memcmp(dst, pkt, len), 0, "copy differs");
	cr_assert_eq(dst[len], 0xa5, "wrote past");
	return ok;
}

Test(csum_ip, right_sums_pass_with_options_padding_any_length)
{
	static uint8_t b[70000];
	static const struct {
		int v6;
		unsigned ihl;
		uint8_t proto;
	} k[] = { { 0, 5, 6 },	{ 0, 15, 6 }, { 0, 5, 17 },
		  { 0, 7, 17 }, { 1, 0, 6 },  { 1, 0, 17 } };
	size_t len, l4len, pad;
	unsigned i;

	for (i = 0; i < sizeof(k) / sizeof(k[0]); i++)
		for (l4len = 20; l4len <= 9000; l4len += l4len < 100 ? 1 : 83)
			for (pad = 0; pad < 3; pad++) {
				len = make_packet(b, k[i].v6, k[i].ihl,
						  k[i].proto, l4len, pad,
						  (unsigned)(l4len + i));
				cr_assert(copy_ip(b, len),
					  "kind %u l4len %zu pad %zu", i, l4len,
					  pad);
			}
	/* the largest IPv6 payload */
	len = make_packet(b, 1, 0, 17, 65535, 0, 9);
	cr_assert(copy_ip(b, len));
}

/* One bit wrong anywhere the sum covers (the addresses, the protocol, the
 * IP length, the payload) fails it; fields it does not cover do not. */
Test(csum_ip, any_covered_bit_wrong_fails)
{
	uint8_t b[2000];
	size_t len, i;
	unsigned bit;
	int v6;

	for (v6 = 0; v6 < 2; v6++) {
		len = make_packet(b, v6, 5, 6, 1001, 0, 7);
		for (i = v6 ? 8 : 12; i < len; i++)
			for (bit = 0; bit < 8; bit++) {
				b[i] ^= (uint8_t)(1 << bit);
				cr_assert_not(copy_ip(b, len),
					      "v6 %d byte %zu bit %u", v6, i,
					      bit);
				b[i] ^= (uint8_t)(1 << bit);
			}
		/* the protocol, TCP <-> UDP: a different sum */
		b[v6 ? 6 : 9] = 17;
		cr_assert_not(copy_ip(b, len));
		b[v6 ? 6 : 9] = 6;
		/* a shorter IP length: the sum over fewer bytes */
		b[v6 ? 5 : 3]--;
		cr_assert_not(copy_ip(b, len));
		b[v6 ? 5 : 3]++;
		/* TTL / hop limit: IP's business, not the sum's */
		b[v6 ? 7 : 8] ^= 0xff;
		cr_assert(copy_ip(b, len));
	}
}

/* What lwIP must still sum: fragments, extension headers, other
 * protocols, lengths that lie; anything at all is copied whole. */
Test(csum_ip, fragments_other_protocols_and_lies_are_left_to_lwip)
{
	static uint8_t b[10000];
	size_t len, i;

	len = make_packet(b, 0, 5, 6, 500, 0, 1);
	b[6] |= 0x20; /* more fragments */
	cr_assert_not(copy_ip(b, len));
	b[6] &= (uint8_t)~0x20;
	b[7] = 1; /* offset 8 */
	cr_assert_not(copy_ip(b, len));
	b[7] = 0;
	cr_assert(copy_ip(b, len));
	b[9] = 1; /* ICMP */
	cr_assert_not(copy_ip(b, len));
	b[9] = 6;
	b[2] = 0x40; /* IP length past the packet */
	cr_assert_not(copy_ip(b, len));
	b[2] = 0;
	b[0] = 0x44; /* header shorter than 20 */
	cr_assert_not(copy_ip(b, len));
	b[0] = 0x4f; /* header past the IP length */
	b[3] = 40;
	cr_assert_not(copy_ip(b, 40));

	len = make_packet(b, 1, 0, 17, 500, 0, 2);
	b[6] = 0; /* hop-by-hop options first */
	cr_assert_not(copy_ip(b, len));
	b[4] = b[5] = 0; /* jumbogram length 0 */
	b[6] = 17;
	cr_assert_not(copy_ip(b, len));

	/* short and random packets, every length: copied, never trusted
	 * unless their sum is right (they cannot all be) */
	for (len = 0; len < 200; len++) {
		srand((unsigned)len);
		for (i = 0; i < len; i++)
			b[i] = (uint8_t)rand();
		copy_ip(b, len);
	}
}
