/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * syncookie.h - SYN cookies (RFC 4987), as lib/tcp.c uses them once the
 * half-open table is full: what a SYN asked for travels in our ISN and,
 * when the client sends timestamps, in our TSval, so that nothing is kept
 * until the ACK that proves the client's address comes back.
 *
 * The ISN (32 bits):   [31:30] period  [29:28] MSS index  [27:0] MAC
 *   period: the 64 s period it was made in, modulo 4;
 *   MAC: SipHash-2-4 of the 4-tuple, the client's ISN, the period and the
 *        MSS index, under that period's key. Keys are random and rotate
 *        with the period: a cookie is good in its period and the next
 *        (64 to 128 s), and a key is forgotten after that.
 * The TSval (when the SYN had timestamps): our clock in ms with its low 5
 * bits replaced by the client's window scale (0-14, 15: none) and SACK
 * permitted (bit 4); never ahead of the clock, so that lwIP's later TSvals
 * (sys_now()) do not go back. Those bits are not authenticated (as on
 * Linux): a client can only choose them for its own connection.
 *
 * The pure functions take their keys and clock as arguments (the unit
 * tests drive them); lib/tcp.c owns the keys. Engine thread only.
 */
#ifndef L3X_SYNCOOKIE_H
#define L3X_SYNCOOKIE_H

#include <stdbool.h>
#include <stdint.h>

#include "l3x_internal.h"

#define L3X_COOKIE_PERIOD_MS 64000u
#define L3X_COOKIE_WS_NONE   0xf

/* A connection as the cookie binds it: the client's and our address and
 * port (ports in host order), IPv4 in the first 4 bytes. */
struct l3x_syn_tuple {
	uint8_t family; /* 4 or 6 */
	uint8_t client[16], local[16];
	uint16_t client_port, local_port;
};

/* What a segment's options said (l3x_tcp_opts_parse). */
struct l3x_syn_opts {
	uint16_t mss;	/* 0: no MSS option */
	uint8_t wscale; /* 0xff: no window scale option */
	bool sack;	/* SACK permitted */
	bool ts;	/* a timestamp option */
	uint32_t tsval, tsecr;
};

/* The keys: one per period, this one and the one before. */
struct l3x_cookie_keys {
	uint64_t k[2][2]; /* [0]: period `period`, [1]: period - 1 */
	uint32_t period;
	bool init;
};

/* The MSS a cookie can say, by index: the largest not above the client's
 * is kept. */
L3X_HIDDEN extern const uint16_t l3x_cookie_mss[4];

/*
 * l3x_tcp_opts_parse() - the options of a TCP header: @optlen bytes, the
 * first @opt1len right after the 20-byte header @hdr, the rest at @opt2
 * (lwIP's split when the header crosses pbufs). Malformed options end the
 * parse; what was read before stays.
 */
L3X_HIDDEN void l3x_tcp_opts_parse(const void *hdr, uint16_t optlen,
				   uint16_t opt1len, const uint8_t *opt2,
				   struct l3x_syn_opts *o);

/* Key rotation to the period of @now_ms; @fill draws a new key (getrandom
 * in the library; the tests pass their own). */
L3X_HIDDEN void l3x_cookie_rotate(struct l3x_cookie_keys *ks, uint32_t now_ms,
				  void (*fill)(uint64_t key[2]));

/*
 * l3x_cookie_make() - our ISN for a SYN from @t with ISN @irs asking for
 * MSS @mss (0: none, 536 then), at @now_ms. Rotate the keys to @now_ms
 * first.
 */
L3X_HIDDEN uint32_t l3x_cookie_make(const struct l3x_cookie_keys *ks,
				    const struct l3x_syn_tuple *t, uint32_t irs,
				    uint16_t mss, uint32_t now_ms);

/*
 * l3x_cookie_check() - the ACK from @t with sequence number @irs + 1 and
 * acknowledgment @cookie + 1: the MSS the cookie holds, or 0 when it was
 * not made by us for this tuple and ISN within the last period or two.
 */
L3X_HIDDEN uint16_t l3x_cookie_check(const struct l3x_cookie_keys *ks,
				     const struct l3x_syn_tuple *t,
				     uint32_t irs, uint32_t cookie,
				     uint32_t now_ms);

/* Our TSval for a cookie SYN-ACK at @now_ms (a TSval clock in ms),
 * carrying @wscale (0xff: none) and @sack. */
L3X_HIDDEN uint32_t l3x_cookie_tsval(uint32_t now_ms, uint8_t wscale,
				     bool sack);

/* From the TSecr of the ACK: the window scale (0xff: none) and SACK; false
 * when the TSecr cannot be ours (ahead of the clock, older than a cookie
 * lives). */
L3X_HIDDEN bool l3x_cookie_ts_decode(uint32_t tsecr, uint32_t now_ms,
				     uint8_t *wscale, bool *sack);

#endif /* L3X_SYNCOOKIE_H */
