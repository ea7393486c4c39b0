/*
 * test_syncookie.c - SYN cookies (lib/syncookie.c): a cookie checks out
 * for the SYN it was made for, and for nothing else; it lives one period
 * or two, and the keys rotate with the periods; the window scale and SACK
 * travel in the TSval without ever putting it ahead of the clock; a
 * SYN's options are read as the wire has them, split or malformed. The
 * whole handshake against the kernel's TCP: tests/netns/syn_flood.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "syncookie.h"

#define PERIOD L3X_COOKIE_PERIOD_MS
#define T0     (1000u * PERIOD + 1234u) /* some time into a period */

/* Keys that tell the periods apart: a counter, not random. */
static uint64_t key_seq;

static void fill_seq(uint64_t key[2])
{
	key[0] = ++key_seq * 0x9e3779b97f4a7c15ull;
	key[1] = key_seq;
}

static struct l3x_cookie_keys keys_at(uint32_t now)
{
	struct l3x_cookie_keys ks;

	memset(&ks, 0, sizeof(ks));
	l3x_cookie_rotate(&ks, now, fill_seq);
	return ks;
}

static struct l3x_syn_tuple tuple4(void)
{
	struct l3x_syn_tuple t = { .family = 4,
				   .client = { 192, 0, 2, 1 },
				   .local = { 198, 51, 100, 9 },
				   .client_port = 40000,
				   .local_port = 80 };
	return t;
}

static struct l3x_syn_tuple tuple6(void)
{
	struct l3x_syn_tuple t = { .family = 6,
				   .client = { 0x20, 0x01, 0x0d, 0xb8, 1 },
				   .local = { 0x20, 0x01, 0x0d, 0xb8, 5 },
				   .client_port = 40001,
				   .local_port = 443 };
	t.client[15] = 2;
	t.local[15] = 9;
	return t;
}

Test(syncookie, a_cookie_checks_out_with_the_mss_it_kept)
{
	static const struct {
		uint16_t asked, kept;
	} cases[] = { { 0, 536 },     { 1, 536 },     { 536, 536 },
		      { 1219, 536 },  { 1220, 1220 }, { 1400, 1220 },
		      { 1440, 1440 }, { 1460, 1460 }, { 9000, 1460 },
		      { 65535, 1460 } };
	struct l3x_cookie_keys ks = keys_at(T0);
	struct l3x_syn_tuple t4 = tuple4(), t6 = tuple6();
	uint32_t c;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = l3x_cookie_make(&ks, &t4, 1000u + i, cases[i].asked, T0);
		cr_assert_eq(l3x_cookie_check(&ks, &t4, 1000u + i, c, T0 + 5),
			     cases[i].kept, "IPv4, MSS %u", cases[i].asked);
		c = l3x_cookie_make(&ks, &t6, 7u * i, cases[i].asked, T0);
		cr_assert_eq(l3x_cookie_check(&ks, &t6, 7u * i, c, T0 + 5),
			     cases[i].kept, "IPv6, MSS %u", cases[i].asked);
	}
}

Test(syncookie, a_cookie_is_bound_to_its_tuple_and_client_isn)
{
	struct l3x_cookie_keys ks = keys_at(T0);
	struct l3x_syn_tuple t = tuple4(), o;
	uint32_t irs = 0xfffffff0u, c = l3x_cookie_make(&ks, &t, irs, 1460, T0);

	cr_assert_eq(l3x_cookie_check(&ks, &t, irs, c, T0), 1460);
	cr_assert_eq(l3x_cookie_check(&ks, &t, irs + 1, c, T0), 0);
	o = t;
	o.client_port++;
	cr_assert_eq(l3x_cookie_check(&ks, &o, irs, c, T0), 0);
	o = t;
	o.local_port++;
	cr_assert_eq(l3x_cookie_check(&ks, &o, irs, c, T0), 0);
	o = t;
	o.client[3] ^= 1;
	cr_assert_eq(l3x_cookie_check(&ks, &o, irs, c, T0), 0);
	o = t;
	o.local[0] ^= 0x80;
	cr_assert_eq(l3x_cookie_check(&ks, &o, irs, c, T0), 0);
	/* Another MSS index under the same MAC is not one we made. */
	cr_assert_eq(l3x_cookie_check(&ks, &t, irs, c ^ (1u << 28), T0), 0);
	cr_assert_eq(l3x_cookie_check(&ks, &t, irs, c ^ 1u, T0), 0);
}

/* Good in its period and the next, as the keys rotate; gone after. */
Test(syncookie, a_cookie_lives_one_period_or_two)
{
	struct l3x_cookie_keys ks = keys_at(T0);
	struct l3x_syn_tuple t = tuple4();
	uint32_t c = l3x_cookie_make(&ks, &t, 5, 1460, T0);
	uint64_t old[2];

	memcpy(old, ks.k[0], sizeof(old));
	l3x_cookie_rotate(&ks, T0 + PERIOD, fill_seq);
	cr_assert_eq(memcmp(ks.k[1], old, sizeof(old)), 0,
		     "last period's key kept");
	cr_assert_neq(memcmp(ks.k[0], old, sizeof(old)), 0, "a new key");
	cr_assert_eq(l3x_cookie_check(&ks, &t, 5, c, T0 + PERIOD), 1460);
	l3x_cookie_rotate(&ks, T0 + 2 * PERIOD, fill_seq);
	cr_assert_eq(l3x_cookie_check(&ks, &t, 5, c, T0 + 2 * PERIOD), 0);
	/* Four periods on, the period bits wrap: still refused. */
	l3x_cookie_rotate(&ks, T0 + 4 * PERIOD, fill_seq);
	cr_assert_eq(l3x_cookie_check(&ks, &t, 5, c, T0 + 4 * PERIOD), 0);
}

/* Keys from another run (another process) make other cookies. */
Test(syncookie, keys_decide_the_cookie)
{
	struct l3x_cookie_keys a = keys_at(T0), b = keys_at(T0);
	struct l3x_syn_tuple t = tuple6();
	uint32_t c = l3x_cookie_make(&a, &t, 99, 1440, T0);

	cr_assert_neq(c, l3x_cookie_make(&b, &t, 99, 1440, T0));
	cr_assert_eq(l3x_cookie_check(&b, &t, 99, c, T0), 0);
}

/* A blind attacker guesses a 28-bit MAC: 200,000 tries, none taken. */
Test(syncookie, guessed_cookies_are_refused)
{
	struct l3x_cookie_keys ks = keys_at(T0);
	struct l3x_syn_tuple t = tuple4();
	unsigned i, taken = 0;

	srandom(11);
	for (i = 0; i < 200000; i++) {
		uint32_t c = (uint32_t)random() << 1 ^ (uint32_t)random();

		taken += l3x_cookie_check(&ks, &t, i, c, T0) != 0;
	}
	cr_assert_eq(taken, 0);
}

Test(syncookie, the_tsval_carries_scale_and_sack_and_stays_behind_the_clock)
{
	static const uint8_t scales[] = { 0, 1, 7, 14, 0xff };
	uint32_t nows[] = { T0, T0 + 31, 0x1f, 0xffffffe0u, 12345678 };
	uint8_t ws;
	bool sack;
	size_t i, j, k;

	for (i = 0; i < sizeof(nows) / sizeof(nows[0]); i++)
		for (j = 0; j < sizeof(scales); j++)
			for (k = 0; k < 2; k++) {
				uint32_t ts =
					l3x_cookie_tsval(nows[i], scales[j], k);

				cr_assert_leq((int32_t)(ts - nows[i]), 0);
				cr_assert_gt((int32_t)(ts - nows[i]), -64);
				cr_assert(l3x_cookie_ts_decode(
					ts, nows[i] + 100, &ws, &sack));
				cr_assert_eq(ws, scales[j]);
				cr_assert_eq(sack, k);
			}
}

Test(syncookie, a_tsecr_we_cannot_have_sent_is_refused)
{
	uint32_t now = T0;
	uint8_t ws;
	bool sack;

	cr_assert_not(l3x_cookie_ts_decode(now + 1000, now, &ws, &sack),
		      "ahead of the clock");
	cr_assert_not(
		l3x_cookie_ts_decode(now - 2 * PERIOD - 1, now, &ws, &sack),
		"older than a cookie lives");
	cr_assert(l3x_cookie_ts_decode(now - 2 * PERIOD, now, &ws, &sack));
}

/* Linux's SYN: MSS 1460, SACK permitted, timestamps, NOP, scale 7. */
static const uint8_t linux_syn_opts[20] = { 2,	4,    0x05, 0xb4, 4,	2, 8,
					    10, 0x11, 0x22, 0x33, 0x44, 0, 0,
					    0,	0,    1,    3,	  3,	7 };

static void check_linux_syn(const struct l3x_syn_opts *o)
{
	cr_assert_eq(o->mss, 1460);
	cr_assert(o->sack);
	cr_assert(o->ts);
	cr_assert_eq(o->tsval, 0x11223344u);
	cr_assert_eq(o->tsecr, 0);
	cr_assert_eq(o->wscale, 7);
}

Test(syncookie, options_are_read_whole_or_split)
{
	uint8_t seg[20 + 20];
	struct l3x_syn_opts o;
	uint16_t split;

	memset(seg, 0, 20);
	memcpy(seg + 20, linux_syn_opts, 20);
	l3x_tcp_opts_parse(seg, 20, 20, NULL, &o);
	check_linux_syn(&o);
	/* lwIP splits options that cross pbufs: any split reads the same. */
	for (split = 0; split < 20; split++) {
		l3x_tcp_opts_parse(seg, 20, split, linux_syn_opts + split, &o);
		check_linux_syn(&o);
	}
}

Test(syncookie, malformed_options_end_the_parse)
{
	uint8_t seg[20 + 12] = { 0 };
	struct l3x_syn_opts o;

	/* MSS, then an option of length 0: the MSS stays, no loop. */
	memcpy(seg + 20, (uint8_t[]){ 2, 4, 0x02, 0x18, 30, 0, 8, 10 }, 8);
	l3x_tcp_opts_parse(seg, 12, 12, NULL, &o);
	cr_assert_eq(o.mss, 536);
	cr_assert_not(o.ts);
	cr_assert_eq(o.wscale, 0xff);
	/* A timestamp past the end of the options is not read. */
	memcpy(seg + 20, (uint8_t[]){ 1, 1, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6 },
	       12);
	l3x_tcp_opts_parse(seg, 12, 12, NULL, &o);
	cr_assert_not(o.ts);
	/* A length byte past the end, and a split with nothing after it. */
	memcpy(seg + 20, (uint8_t[]){ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3 }, 12);
	l3x_tcp_opts_parse(seg, 12, 12, NULL, &o);
	cr_assert_eq(o.wscale, 0xff);
	l3x_tcp_opts_parse(seg, 12, 4, NULL, &o);
	cr_assert_eq(o.mss, 0);
}
