/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fuzz_engine.c - libFuzzer target: the engine's receive path through the
 * callback source, lwIP included, with an application on the other side.
 *
 * One stack stays open across inputs (as on a wire, state carries over:
 * listeners, connections, reassembly, UDP flows), with rules that steer
 * everything to it, one worker and a bound UDP socket. An input is a
 * sequence of records, each starting with an op byte:
 *
 *   op & 3 == 0 or 1   a packet: u16 length (little-endian), then that
 *                      many bytes, handed to l3x_stack__input(). Before
 *                      that the harness may repair it, so that the fuzzer
 *                      gets past checks it cannot guess:
 *                        0x04  IPv4/IPv6 and UDP length fields = the size
 *                        0x10  TCP acknowledgment = the next sequence
 *                              number of the last TCP segment the stack
 *                              sent (its ISN is not in the input)
 *                        0x08  IPv4 header and TCP/UDP/ICMP checksums
 *                        0x20  l3x_stack__poll() after it
 *   op & 3 == 2        the application: accept, read and echo every
 *                      stream and UDP flow; then by op >> 2 write to,
 *                      shut down, close or abort one stream
 *   op & 3 == 3        l3x_stack__poll(), 1 to 4 times
 *
 * Properties checked after every record (abort, a crash to libFuzzer):
 * every packet the stack sends is well formed (lengths, IPv4 header
 * checksum, TCP/UDP/ICMP checksums) and no larger than the MTU; after every
 * input the counters add up (rx_packets is the sum of its fates) and the
 * flows stay within their budgets. ASan and UBSan check the rest.
 *
 * L3X_FUZZ_FRESH=1 in the environment closes the stack and opens a new one
 * for every input: slower, but a crash then replays from its input alone.
 * L3X_FUZZ_LEAKCHECK=1 runs LeakSanitizer after every input (slow; with
 * L3X_FUZZ_FRESH=1 it names the input that leaked, where libFuzzer's own
 * check may only notice a later one).
 * L3X_FUZZ_VERBOSE=1 prints the main counters after every input (to see
 * what a seed reaches).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/lsan_interface.h>

#include "csum.h"
#include "l3x/l3x.h"

#define FUZZ_NAME "fuzz_engine"
#include "fuzz.h"

#define MTU	    1500
#define MAX_TCP	    32
#define MAX_UDP	    32
#define MAX_STREAMS 32
#define BOUND_PORT  5353

const char *__lsan_default_options(void);

/*
 * LeakSanitizer looks for pointers at aligned offsets only. lwIP links the
 * IPv6 fragments it holds through a packed helper struct written over each
 * fragment header (ip6_frag.c, IPV6_FRAG_COPYHEADER), 36 bytes into the
 * packet: its next_pbuf pointer is not 8-byte aligned, so every fragment
 * after the first looked leaked while lwIP still held it. use_unaligned
 * makes LSan read those pointers too.
 */
const char *__lsan_default_options(void)
{
	return "use_unaligned=1";
}

static struct {
	struct l3x_stack *st;
	struct l3x_worker *w;
	struct l3x_udp *bound;
	struct l3x_stream *s[MAX_STREAMS];
	struct l3x_udp *u[MAX_UDP];
	uint32_t out_next; /* the last TCP segment sent: seq + its length */
	bool fresh, verbose, leakcheck;
	uint8_t pkt[65535];
	uint8_t io[4096];
} F;

/* ------------------------------------------------------------ packets */

/* Where the upper-layer header starts and which it is; false if the
 * packet is not IPv4/IPv6 with one right after the IP header, or is a
 * later fragment. */
static bool l4_of(const uint8_t *p, size_t n, size_t *l4, uint8_t *proto)
{
	if (n >= 20 && p[0] >> 4 == 4) {
		*l4 = (size_t)(p[0] & 0xf) * 4;
		*proto = p[9];
		return *l4 >= 20 && *l4 <= n &&
		       !(((p[6] << 8) | p[7]) & 0x1fff);
	}
	if (n >= 40 && p[0] >> 4 == 6) {
		*l4 = 40;
		*proto = p[6];
		return true;
	}
	return false;
}

/* The pseudo-header's sum for an upper-layer length of @len. */
static uint32_t pseudo(const uint8_t *p, uint8_t proto, size_t len)
{
	if (p[0] >> 4 == 4)
		return csum_partial(p + 12, 8, 0) + proto + (uint32_t)len;
	return csum_partial(p + 8, 32, 0) + (uint32_t)(len >> 16) +
	       (uint32_t)(len & 0xffff) + proto;
}

/* Offset of the checksum field in @proto's header, 0 if none we know. */
static size_t csum_off(uint8_t proto, size_t room)
{
	switch (proto) {
	case IPPROTO_TCP:
		return room >= 20 ? 16 : 0;
	case IPPROTO_UDP:
		return room >= 8 ? 6 : 0;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return room >= 4 ? 2 : 0;
	}
	return 0;
}

/* The sum over the upper layer, with the pseudo-header except for ICMP. */
static uint32_t l4_sum(const uint8_t *p, size_t l4, size_t n, uint8_t proto)
{
	uint32_t s = csum_partial(p + l4, n - l4, 0);

	return proto == IPPROTO_ICMP ? s : s + pseudo(p, proto, n - l4);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void fix_lengths(uint8_t *p, size_t n)
{
	size_t l4;
	uint8_t proto;

	if (n >= 20 && p[0] >> 4 == 4)
		put16(p + 2, (uint16_t)n);
	else if (n >= 40 && p[0] >> 4 == 6)
		put16(p + 4, (uint16_t)(n - 40));
	if (l4_of(p, n, &l4, &proto) && proto == IPPROTO_UDP && n - l4 >= 8)
		put16(p + l4 + 4, (uint16_t)(n - l4));
}

static void fix_ack(uint8_t *p, size_t n)
{
	size_t l4;
	uint8_t proto;
	uint32_t a = htonl(F.out_next);

	if (l4_of(p, n, &l4, &proto) && proto == IPPROTO_TCP && n - l4 >= 20)
		memcpy(p + l4 + 8, &a, 4);
}

static void fix_csums(uint8_t *p, size_t n)
{
	size_t l4, off;
	uint8_t proto;
	uint16_t c;

	if (n >= 20 && p[0] >> 4 == 4 && (size_t)(p[0] & 0xf) * 4 <= n) {
		put16(p + 10, 0);
		put16(p + 10, csum_fold(csum_partial(p, (p[0] & 0xfu) * 4, 0)));
	}
	if (!l4_of(p, n, &l4, &proto))
		return;
	off = csum_off(proto, n - l4);
	if (!off)
		return;
	put16(p + l4 + off, 0);
	c = csum_fold(l4_sum(p, l4, n, proto));
	if (proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	put16(p + l4 + off, c);
}

/* What the stack sends must be a packet a kernel would take: checked
 * here, and the TCP sequence remembered for fix_ack(). */
static int output(void *ctx, const void *pkt, size_t n)
{
	const uint8_t *p = pkt;
	size_t l4, off;
	uint8_t proto;
	uint32_t seq;

	(void)ctx;
	CHECK(n >= 20 && n <= MTU);
	if (p[0] >> 4 == 4) {
		CHECK((size_t)(p[2] << 8 | p[3]) == n);
		CHECK(csum_fold(csum_partial(p, (p[0] & 0xfu) * 4, 0)) == 0);
	} else {
		CHECK(p[0] >> 4 == 6 && n >= 40);
		CHECK((size_t)(p[4] << 8 | p[5]) == n - 40);
	}
	if (!l4_of(p, n, &l4, &proto))
		return 0;
	off = csum_off(proto, n - l4);
	if (off)
		CHECK(csum_fold(l4_sum(p, l4, n, proto)) == 0);
	if (proto == IPPROTO_UDP)
		CHECK((size_t)(p[l4 + 4] << 8 | p[l4 + 5]) == n - l4);
	if (proto == IPPROTO_TCP) {
		CHECK(n - l4 >= 20 && (size_t)(p[l4 + 12] >> 4) * 4 <= n - l4);
		seq = get32(p + l4 + 4);
		F.out_next = seq + (uint32_t)(n - l4 - (p[l4 + 12] >> 4) * 4u) +
			     !!(p[l4 + 13] & 0x02) + !!(p[l4 + 13] & 0x01);
	}
	return 0;
}

/* ------------------------------------------------------------ the stack */

static void add_rule(const char *text)
{
	struct l3x_rule r;

	CHECK(l3x_rule__parse(&r, text, NULL, 0) == 0);
	CHECK(l3x_stack__add_rule(F.st, &r) == 0);
}

static void up(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(BOUND_PORT) };
	L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
		 .output = output, .mtu = MTU, .max_tcp_flows = MAX_TCP,
		 .max_udp_flows = MAX_UDP, .max_memory = 8u << 20,
		 .rx_buf = 64 << 10, .tx_buf = 64 << 10, .backlog = 16,
		 .linger_ms = 2000, .udp_idle_ms = 2000, .udp_queue = 16,
		 .ooo_max_segs = 16, .ooo_max_bytes = 64 << 10,
		 .cpu = L3X_CPU_NONE);

	F.st = l3x_stack__open(&o);
	CHECK(F.st);
	add_rule("tcp 0.0.0.0/0");
	add_rule("udp 0.0.0.0/0");
	add_rule("ip 198.51.100.0/24");
	add_rule("ip ::/0");
	F.w = l3x_worker__open(F.st);
	CHECK(F.w);
	inet_pton(AF_INET, "198.51.100.53", &a.sin_addr);
	F.bound = l3x_udp__bind(F.w, (struct sockaddr *)&a, sizeof(a));
	CHECK(F.bound);
}

static void down(void)
{
	unsigned i;

	for (i = 0; i < MAX_STREAMS; i++)
		l3x_stream__abort(F.s[i]);
	for (i = 0; i < MAX_UDP; i++)
		l3x_udp__close(F.u[i]);
	memset(F.s, 0, sizeof(F.s));
	memset(F.u, 0, sizeof(F.u));
	l3x_udp__close(F.bound);
	CHECK(l3x_worker__close(F.w) == 0);
	CHECK(l3x_stack__close(F.st) == 0);
	F.st = NULL;
}

/* ------------------------------------------------------------ the app */

static void drop_stream(unsigned i, bool abort_it)
{
	if (abort_it)
		l3x_stream__abort(F.s[i]);
	else
		l3x_stream__close(F.s[i]);
	F.s[i] = NULL;
}

/* Read what there is and write it back; close at EOF or error. */
static void echo_stream(unsigned i)
{
	long r, w;

	while (F.s[i]) {
		r = l3x_stream__read(F.s[i], F.io, sizeof(F.io));
		if (r == -EAGAIN)
			return;
		if (r <= 0) {
			CHECK(r == 0 || r == -ECONNRESET || r == -ETIMEDOUT);
			drop_stream(i, false);
			return;
		}
		w = l3x_stream__write(F.s[i], F.io, (size_t)r);
		CHECK(w <= r);
		CHECK(w >= 0 || w == -EAGAIN || w == -EPIPE ||
		      w == -ECONNRESET || w == -ETIMEDOUT);
	}
}

static void echo_udp(struct l3x_udp **u)
{
	struct sockaddr_storage from;
	long r;

	while (*u) {
		r = l3x_udp__recvfrom(*u, F.io, sizeof(F.io),
				      (struct sockaddr *)&from, sizeof(from));
		if (r == -EAGAIN)
			return;
		if (r < 0) {
			CHECK(r == -ETIMEDOUT && *u != F.bound);
			l3x_udp__close(*u);
			*u = NULL;
			return;
		}
		if (*u == F.bound)
			l3x_udp__sendto(*u, F.io,
					(size_t)r < sizeof(F.io) ? (size_t)r
								 : sizeof(F.io),
					(struct sockaddr *)&from, sizeof(from));
		else
			l3x_udp__send(*u, F.io,
				      (size_t)r < sizeof(F.io) ? (size_t)r
							       : sizeof(F.io));
	}
}

static void accept_all(void)
{
	struct l3x_stream *s;
	struct l3x_udp *u;
	unsigned i;

	while ((s = l3x_worker__accept(F.w))) {
		for (i = 0; i < MAX_STREAMS && F.s[i]; i++)
			;
		if (i == MAX_STREAMS)
			drop_stream(0, true);
		F.s[i == MAX_STREAMS ? 0 : i] = s;
	}
	while ((u = l3x_worker__accept_udp(F.w))) {
		for (i = 0; i < MAX_UDP && F.u[i]; i++)
			;
		if (i == MAX_UDP) {
			l3x_udp__close(F.u[0]);
			i = 0;
		}
		F.u[i] = u;
	}
}

/* One stream chosen by @arg, the first open one from there. */
static int pick(unsigned arg)
{
	unsigned i, k;

	for (k = 0; k < MAX_STREAMS; k++) {
		i = (arg + k) % MAX_STREAMS;
		if (F.s[i])
			return (int)i;
	}
	return -1;
}

static void app(unsigned arg)
{
	struct l3x_event ev[16];
	int i, n;

	accept_all();
	while ((n = l3x_worker__poll(F.w, ev, 16)) > 0)
		; /* edge-triggered hints: every flow is read below anyway */
	for (i = 0; i < MAX_STREAMS; i++)
		echo_stream((unsigned)i);
	for (i = 0; i < MAX_UDP; i++)
		echo_udp(&F.u[i]);
	echo_udp(&F.bound);
	i = pick(arg >> 2);
	if (i < 0)
		return;
	switch (arg & 3) {
	case 0:
		memset(F.io, 'x', sizeof(F.io));
		l3x_stream__write(F.s[i], F.io, ((arg >> 2) + 1) * 61u);
		break;
	case 1:
		l3x_stream__shutdown(F.s[i]);
		break;
	default:
		drop_stream((unsigned)i, (arg & 3) == 3);
	}
}

/* ------------------------------------------------------------ checks */

static void check_counters(void)
{
	struct l3x_stack_stats s;

	CHECK(l3x_stack__stats(F.st, &s) == 0);
	if (s.rx_packets !=
	    s.rx_not_ip + s.rx_no_rule + s.rx_no_memory + s.rx_ip_bad +
		    s.rx_frag_held + s.rx_frag_bad + s.rx_tcp_flow +
		    s.rx_tcp_listen + s.rx_tcp_timewait + s.rx_tcp_bad +
		    s.rx_udp + s.rx_udp_bad + s.rx_icmp + s.rx_icmp_bad) {
		fprintf(stderr,
			"fuzz_engine: rx_packets %llu is not the sum of its "
			"fates\n",
			(unsigned long long)s.rx_packets);
		abort();
	}
	CHECK(s.rx_bad == s.rx_ip_bad + s.rx_frag_bad + s.rx_tcp_bad +
				  s.rx_udp_bad + s.rx_icmp_bad);
	CHECK(s.tcp_flows_open <= MAX_TCP);
	CHECK(s.udp_flows_open <= MAX_UDP);
	if (F.verbose)
		fprintf(stderr,
			"fuzz_engine: rx %llu tx %llu tcp_accepted %llu closed "
			"%llu reset %llu aborted %llu flow %llu listen %llu "
			"bad %llu udp %llu udp_rx %llu udp_tx %llu icmp %llu "
			"frag_held %llu frag_bad %llu ip_bad %llu\n",
			(unsigned long long)s.rx_packets,
			(unsigned long long)s.tx_packets,
			(unsigned long long)s.tcp_accepted,
			(unsigned long long)s.tcp_closed,
			(unsigned long long)s.tcp_reset_by_client,
			(unsigned long long)s.tcp_aborted,
			(unsigned long long)s.rx_tcp_flow,
			(unsigned long long)s.rx_tcp_listen,
			(unsigned long long)s.rx_bad,
			(unsigned long long)s.rx_udp,
			(unsigned long long)s.udp_rx,
			(unsigned long long)s.udp_tx,
			(unsigned long long)s.rx_icmp,
			(unsigned long long)s.rx_frag_held,
			(unsigned long long)s.rx_frag_bad,
			(unsigned long long)s.rx_ip_bad);
}

/* ------------------------------------------------------------ libFuzzer */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	l3x_set_print(NULL);
	F.fresh = getenv("L3X_FUZZ_FRESH") && *getenv("L3X_FUZZ_FRESH") == '1';
	F.verbose = getenv("L3X_FUZZ_VERBOSE") &&
		    *getenv("L3X_FUZZ_VERBOSE") == '1';
	F.leakcheck = getenv("L3X_FUZZ_LEAKCHECK") &&
		      *getenv("L3X_FUZZ_LEAKCHECK") == '1';
	if (!F.fresh)
		up();
	return 0;
}

static size_t packet(unsigned op, const uint8_t *d, size_t n)
{
	size_t len;
	int e;

	if (n < 2)
		return n;
	len = (size_t)d[0] | (size_t)d[1] << 8;
	if (len > n - 2)
		len = n - 2;
	memcpy(F.pkt, d + 2, len);
	if (op & 0x04)
		fix_lengths(F.pkt, len);
	if (op & 0x10)
		fix_ack(F.pkt, len);
	if (op & 0x08)
		fix_csums(F.pkt, len);
	e = l3x_stack__input(F.st, F.pkt, len);
	CHECK(e == 0 || e == -ENOBUFS || (e == -EINVAL && len == 0));
	if (op & 0x20)
		l3x_stack__poll(F.st);
	return len + 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	unsigned op, k;

	if (F.fresh)
		up();
	while (n) {
		op = *d++;
		n--;
		switch (op & 3) {
		case 0:
		case 1:
			k = (unsigned)packet(op, d, n);
			d += k;
			n -= k;
			break;
		case 2:
			app(op >> 2);
			break;
		case 3:
			for (k = 0; k <= ((op >> 2) & 3); k++)
				l3x_stack__poll(F.st);
			break;
		}
	}
	l3x_stack__poll(F.st);
	app(0);
	check_counters();
	if (F.fresh)
		down();
	if (F.leakcheck && __lsan_do_recoverable_leak_check()) {
		fprintf(stderr, "fuzz_engine: this input leaked\n");
		abort();
	}
	return 0;
}
