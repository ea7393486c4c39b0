/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * syncookie.c - SYN cookies: make and check them, carry the options in
 * the TSval, read a segment's options (syncookie.h). No lwIP here: the
 * segment that carries a cookie is built by lib/tcp.c.
 */
#include <string.h>

#include "hash.h"
#include "syncookie.h"

#define COOKIE_MAC_MASK 0x0fffffffu
#define TS_BITS		5
#define TS_MASK		((1u << TS_BITS) - 1)

const uint16_t l3x_cookie_mss[4] = { 536, 1220, 1440, 1460 };

/* ------------------------------------------------------------ options */

/* Byte @i of the options: the first @opt1len after the header, then @opt2. */
static uint8_t opt_byte(const uint8_t *opt1, uint16_t opt1len,
			const uint8_t *opt2, uint16_t i)
{
	return i < opt1len ? opt1[i] : opt2[i - opt1len];
}

static uint32_t opt_be32(const uint8_t *opt1, uint16_t opt1len,
			 const uint8_t *opt2, uint16_t i)
{
	uint32_t v = 0;
	int k;

	for (k = 0; k < 4; k++)
		v = v << 8 | opt_byte(opt1, opt1len, opt2, (uint16_t)(i + k));
	return v;
}

void l3x_tcp_opts_parse(const void *hdr, uint16_t optlen, uint16_t opt1len,
			const uint8_t *opt2, struct l3x_syn_opts *o)
{
	const uint8_t *opt1 = (const uint8_t *)hdr + 20;
	uint16_t i = 0, len;
	uint8_t kind;

	memset(o, 0, sizeof(*o));
	o->wscale = 0xff;
	if (opt1len > optlen || (opt1len < optlen && !opt2))
		return;
	while (i < optlen) {
		kind = opt_byte(opt1, opt1len, opt2, i);
		if (kind == 0)
			return;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= optlen)
			return;
		len = opt_byte(opt1, opt1len, opt2, (uint16_t)(i + 1));
		if (len < 2 || i + len > optlen)
			return;
		if (kind == 2 && len == 4)
			o->mss = (uint16_t)(opt_byte(opt1, opt1len, opt2,
						     (uint16_t)(i + 2))
						    << 8 |
					    opt_byte(opt1, opt1len, opt2,
						     (uint16_t)(i + 3)));
		else if (kind == 3 && len == 3)
			o->wscale = opt_byte(opt1, opt1len, opt2,
					     (uint16_t)(i + 2));
		else if (kind == 4 && len == 2)
			o->sack = true;
		else if (kind == 8 && len == 10) {
			o->ts = true;
			o->tsval = opt_be32(opt1, opt1len, opt2,
					    (uint16_t)(i + 2));
			o->tsecr = opt_be32(opt1, opt1len, opt2,
					    (uint16_t)(i + 6));
		}
		i = (uint16_t)(i + len);
	}
}

/* ------------------------------------------------------------ keys */

static uint32_t period_of(uint32_t now_ms)
{
	return now_ms / L3X_COOKIE_PERIOD_MS;
}

void l3x_cookie_rotate(struct l3x_cookie_keys *ks, uint32_t now_ms,
		       void (*fill)(uint64_t key[2]))
{
	uint32_t p = period_of(now_ms);

	if (ks->init && p == ks->period)
		return;
	if (ks->init && p == ks->period + 1) {
		memcpy(ks->k[1], ks->k[0], sizeof(ks->k[0]));
	} else {
		fill(ks->k[1]);
	}
	fill(ks->k[0]);
	ks->period = p;
	ks->init = true;
}

/* ------------------------------------------------------------ cookies */

/* The key of period @p, NULL if it is neither this one nor the last. */
static const uint64_t *key_of(const struct l3x_cookie_keys *ks, uint32_t p)
{
	if (!ks->init)
		return NULL;
	if (p == ks->period)
		return ks->k[0];
	if (p + 1 == ks->period)
		return ks->k[1];
	return NULL;
}

static uint32_t mac(const uint64_t key[2], const struct l3x_syn_tuple *t,
		    uint32_t irs, uint32_t p, unsigned mss_idx)
{
	uint8_t buf[1 + 32 + 4 + 4 + 4 + 1];
	size_t alen = t->family == 6 ? 16 : 4, n = 0;

	buf[n++] = t->family;
	memcpy(buf + n, t->client, alen);
	n += alen;
	memcpy(buf + n, t->local, alen);
	n += alen;
	memcpy(buf + n, &t->client_port, 2);
	memcpy(buf + n + 2, &t->local_port, 2);
	memcpy(buf + n + 4, &irs, 4);
	memcpy(buf + n + 8, &p, 4);
	n += 12;
	buf[n++] = (uint8_t)mss_idx;
	return (uint32_t)l3x_siphash(key, buf, n) & COOKIE_MAC_MASK;
}

static unsigned mss_index(uint16_t mss)
{
	unsigned i = 3;

	if (!mss)
		return 0; /* none given: RFC 9293's default, 536 */
	while (i && l3x_cookie_mss[i] > mss)
		i--;
	return i;
}

uint32_t l3x_cookie_make(const struct l3x_cookie_keys *ks,
			 const struct l3x_syn_tuple *t, uint32_t irs,
			 uint16_t mss, uint32_t now_ms)
{
	uint32_t p = period_of(now_ms);
	unsigned idx = mss_index(mss);
	const uint64_t *key = key_of(ks, p);

	if (!key)
		return 0; /* keys not rotated to now: never checks */
	return (p & 3u) << 30 | (uint32_t)idx << 28 | mac(key, t, irs, p, idx);
}

uint16_t l3x_cookie_check(const struct l3x_cookie_keys *ks,
			  const struct l3x_syn_tuple *t, uint32_t irs,
			  uint32_t cookie, uint32_t now_ms)
{
	uint32_t now_p = period_of(now_ms), p;
	unsigned idx = cookie >> 28 & 3u;
	const uint64_t *key;

	/* The period it names: this one, or the one before. */
	p = now_p - ((now_p - (cookie >> 30)) & 3u);
	key = key_of(ks, p);
	if (!key || now_p - p > 1)
		return 0;
	if (mac(key, t, irs, p, idx) != (cookie & COOKIE_MAC_MASK))
		return 0;
	return l3x_cookie_mss[idx];
}

/* ------------------------------------------------------------ TSval */

uint32_t l3x_cookie_tsval(uint32_t now_ms, uint8_t wscale, bool sack)
{
	uint32_t bits = (wscale > 14 ? L3X_COOKIE_WS_NONE : wscale) |
			(sack ? 1u << 4 : 0);
	uint32_t ts = (now_ms & ~TS_MASK) | bits;

	/* Never ahead of the clock: lwIP's TSvals after it must not go
	 * back (the client's PAWS would drop them). */
	if ((int32_t)(ts - now_ms) > 0)
		ts -= 1u << TS_BITS;
	return ts;
}

bool l3x_cookie_ts_decode(uint32_t tsecr, uint32_t now_ms, uint8_t *wscale,
			  bool *sack)
{
	uint32_t ws = tsecr & 0xfu;
	int32_t age = (int32_t)(now_ms - tsecr);

	if (age < 0 || (uint32_t)age > 2 * L3X_COOKIE_PERIOD_MS)
		return false;
	*wscale = ws == L3X_COOKIE_WS_NONE ? 0xff : (uint8_t)ws;
	*sack = tsecr & (1u << 4);
	return true;
}
