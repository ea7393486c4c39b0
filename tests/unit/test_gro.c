/*
 * test_gro.c - receive coalescing (lib/gro.c): hand-built TCP segments go
 * through l3x_gro_add() and come out of its feed function, merged or as
 * they came; the last tests feed what comes out to lwIP itself. Criterion
 * forks each test; teardown checks every pbuf came back.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/priv/tcp_priv.h"

#include "csum.h"
#include "gro.h"
#include "mem.h"
#include "wire_helpers.h"

#define ACK 0x10
#define PSH 0x08
#define FIN 0x01
#define SYN 0x02

/* A segment to build: IPv4 (or IPv6) 203.0.113.5:sport -> 198.51.100.7:80. */
struct spec {
	int v6;
	uint16_t sport;
	uint32_t seq, ack;
	uint16_t win;
	uint8_t flags;
	uint16_t dlen;
	uint32_t tsval; /* a timestamps option (12 bytes) unless 0 */
	int bad_sum;	/* a wrong TCP checksum */
	int udp;	/* a UDP datagram instead */
};

/* What the feed function got. */
static struct fed {
	struct pbuf *p;
	unsigned segs;
	bool held;
} fed[128];
static unsigned nfed;
static struct l3x_gro g;
static uint32_t pool_start[MEMP_MAX];
static uint64_t mem_start;
/* feed_lwip(): to lwIP's ip_input() instead of fed[] */
static struct netif nif;
static uint8_t sent[8][128];
static unsigned nsent;

static void feed(void *ctx, struct pbuf *p, unsigned segs, bool held)
{
	(void)ctx;
	cr_assert_lt(nfed, sizeof(fed) / sizeof(fed[0]));
	fed[nfed++] = (struct fed){ p, segs, held };
}

/* The data byte at sequence number @seq: a pattern a merge must keep. */
static uint8_t data_at(uint32_t seq)
{
	return (uint8_t)(seq * 7 + (seq >> 8));
}

/* @s as a PBUF_RAM pbuf holding its IP packet, checksums right (but the
 * TCP one when bad_sum). */
static struct pbuf *seg(const struct spec *s)
{
	static uint8_t pkt[70000];
	size_t hl = s->v6 ? 40 : 20, th = s->udp ? 8 : (s->tsval ? 32 : 20);
	size_t l4 = th + s->dlen, i;
	uint8_t *t = pkt + hl;
	uint32_t sum;
	struct pbuf *p;

	memset(pkt, 0, hl + th);
	if (s->v6) {
		pkt[0] = 0x60;
		put16(pkt + 4, (uint16_t)l4);
		pkt[6] = s->udp ? 17 : 6;
		pkt[7] = 64;
		inet_pton(AF_INET6, "2001:db8:1::2", pkt + 8);
		inet_pton(AF_INET6, "2001:db8:5::9", pkt + 24);
	} else {
		pkt[0] = 0x45;
		put16(pkt + 2, (uint16_t)(hl + l4));
		pkt[8] = 64;
		pkt[9] = s->udp ? 17 : 6;
		inet_pton(AF_INET, "203.0.113.5", pkt + 12);
		inet_pton(AF_INET, "198.51.100.7", pkt + 16);
		put16(pkt + 10, csum_fold(csum_partial(pkt, 20, 0)));
	}
	put16(t, s->sport);
	put16(t + 2, 80);
	if (s->udp) {
		put16(t + 4, (uint16_t)l4);
	} else {
		put32(t + 4, s->seq);
		put32(t + 8, s->ack);
		t[12] = (uint8_t)(th / 4 << 4);
		t[13] = s->flags;
		put16(t + 14, s->win);
		if (s->tsval) {
			t[20] = t[21] = 1; /* NOP NOP TS */
			t[22] = 8;
			t[23] = 10;
			put32(t + 24, s->tsval);
			put32(t + 28, 77);
		}
	}
	for (i = 0; i < s->dlen; i++)
		t[th + i] = data_at(s->seq + (uint32_t)i);
	sum = csum_partial(pkt + (s->v6 ? 8 : 12), s->v6 ? 32 : 8, 0);
	sum += (s->udp ? 17u : 6u) + (uint32_t)l4;
	put16(t + (s->udp ? 6 : 16),
	      (uint16_t)(csum_fold(csum_partial(t, l4, sum)) + s->bad_sum));
	p = pbuf_alloc(PBUF_RAW, (u16_t)(hl + l4), PBUF_RAM);
	cr_assert_not_null(p);
	cr_assert_eq(pbuf_take(p, pkt, (u16_t)(hl + l4)), ERR_OK);
	return p;
}

/* A full segment of 1000 bytes of flow @sport at @seq. */
static struct spec full(uint16_t sport, uint32_t seq)
{
	return (struct spec){ .sport = sport,
			      .seq = seq,
			      .ack = 5000,
			      .win = 8000,
			      .flags = ACK,
			      .dlen = 1000,
			      .tsval = 42 };
}

static void add(struct spec s)
{
	l3x_gro_add(&g, seg(&s), 0);
}

/* fed[@i] is the run of @segs segments from @seq, @dlen bytes of data,
 * every header field right for the whole. */
static void assert_run(unsigned i, unsigned segs, uint32_t seq, size_t dlen)
{
	static uint8_t buf[70000];
	struct pbuf *p;
	size_t hl, th, j;
	uint8_t *t;

	cr_assert_lt(i, nfed, "run %u not fed (%u were)", i, nfed);
	p = fed[i].p;
	cr_assert_eq(fed[i].segs, segs, "run %u: %u segments, not %u", i,
		     fed[i].segs, segs);
	cr_assert_eq(pbuf_copy_partial(p, buf, p->tot_len, 0), p->tot_len);
	hl = buf[0] >> 4 == 6 ? 40 : 20;
	if (hl == 20) {
		cr_assert_eq(get16(buf + 2), p->tot_len, "IPv4 total length");
		cr_assert_eq(csum_fold(csum_partial(buf, 20, 0)), 0,
			     "IPv4 header checksum");
	} else {
		cr_assert_eq(get16(buf + 4) + 40u, p->tot_len, "IPv6 length");
	}
	t = buf + hl;
	th = (size_t)(t[12] >> 4) * 4;
	cr_assert_eq(get32(t + 4), seq);
	cr_assert_eq(p->tot_len, hl + th + dlen, "length %u", p->tot_len);
	for (j = 0; j < dlen; j++)
		cr_assert_eq(t[th + j], data_at(seq + (uint32_t)j),
			     "data at %zu", j);
	cr_assert(p->flags & PBUF_FLAG_L3X_CSUM_OK, "checksums verified");
}

static void setup(void)
{
	static int initialised;
	unsigned i;

	if (!initialised++)
		lwip_init();
	for (i = 0; i < MEMP_MAX; i++)
		pool_start[i] = lwip_stats.memp[i]->used;
	mem_start = l3x_mem_used(L3X_MEM_LWIP);
	nfed = 0;
	l3x_gro_init(&g, 16, feed, NULL);
}

static void teardown(void)
{
	unsigned i;

	cr_expect_eq(g.held, 0, "runs left held");
	for (i = 0; i < nfed; i++)
		pbuf_free(fed[i].p);
	for (i = 0; i < MEMP_MAX; i++)
		cr_expect_eq(lwip_stats.memp[i]->used, pool_start[i],
			     "pool %s: %u in use, %u at start",
			     lwip_stats.memp[i]->name,
			     (unsigned)lwip_stats.memp[i]->used, pool_start[i]);
	cr_expect_eq(l3x_mem_used(L3X_MEM_LWIP), mem_start, "heap");
}

TestSuite(gro, .init = setup, .fini = teardown);

Test(gro, consecutive_segments_merge_into_one_held_to_the_burst_end)
{
	add(full(1, 1000));
	add(full(1, 2000));
	add(full(1, 3000));
	cr_assert_eq(nfed, 0, "fed before the burst's end");
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 1);
	cr_assert(fed[0].held);
	assert_run(0, 3, 1000, 3000);
	cr_assert_eq(g.merged, 2);
	cr_assert_eq(g.flushed, 1);
	/* three pbufs chained: the parts stay where they were */
	cr_assert_not_null(fed[0].p->next);
	cr_assert_not_null(fed[0].p->next->next);
	cr_assert_null(fed[0].p->next->next->next);
}

Test(gro, ipv6_segments_merge_with_the_payload_length_set)
{
	struct spec s = full(1, 1000);

	s.v6 = 1;
	add(s);
	s.seq = 2000;
	add(s);
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 1);
	assert_run(0, 2, 1000, 2000);
}

Test(gro, no_merge_across_a_hole)
{
	add(full(1, 1000));
	add(full(1, 3000)); /* 2000..2999 missing */
	cr_assert_eq(nfed, 1, "the run before the hole goes on at once");
	assert_run(0, 1, 1000, 1000);
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 2);
	assert_run(1, 1, 3000, 1000);
	cr_assert_eq(g.merged, 0);
}

Test(gro, no_merge_with_another_ack_window_or_options)
{
	struct spec s = full(1, 2000);

	add(full(1, 1000));
	s.ack = 6000;
	add(s);
	s = full(1, 3000);
	s.ack = 6000;
	s.win = 9000;
	add(s);
	s = full(1, 4000);
	s.ack = 6000;
	s.win = 9000;
	s.tsval = 43;
	add(s);
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 4);
	cr_assert_eq(g.merged, 0);
	assert_run(0, 1, 1000, 1000);
	assert_run(3, 1, 4000, 1000);
}

Test(gro, other_flags_pass_after_the_run_unchanged)
{
	struct spec s = full(1, 2000);

	add(full(1, 1000));
	s.flags = ACK | FIN;
	add(s);
	cr_assert_eq(nfed, 2, "the run, then the FIN, at once");
	cr_assert(fed[0].held);
	assert_run(0, 1, 1000, 1000);
	cr_assert_not(fed[1].held);
	cr_assert_eq(fed[1].segs, 1);
	cr_assert_null(fed[1].p->next);
	/* a pure ACK is not held either */
	s = full(1, 3000);
	s.dlen = 0;
	add(s);
	cr_assert_eq(nfed, 3);
	cr_assert_not(fed[2].held);
	cr_assert_eq(g.held, 0);
	cr_assert_eq(g.merged, 0);
}

Test(gro, psh_ends_the_run_it_joins_and_is_kept)
{
	struct spec s = full(1, 2000);

	add(full(1, 1000));
	s.flags = ACK | PSH;
	add(s);
	cr_assert_eq(nfed, 1, "sent on with its last segment");
	assert_run(0, 2, 1000, 2000);
	cr_assert_eq(((uint8_t *)fed[0].p->payload)[20 + 13], ACK | PSH);
	/* a PSH segment with nothing before it is not held */
	s.seq = 3000;
	add(s);
	cr_assert_eq(nfed, 2);
	cr_assert_not(fed[1].held);
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 2);
}

Test(gro, a_short_segment_ends_the_run_a_longer_one_starts_the_next)
{
	struct spec s = full(1, 2000);

	add(full(1, 1000));
	s.dlen = 400;
	add(s);
	cr_assert_eq(nfed, 1);
	assert_run(0, 2, 1000, 1400);
	s = full(1, 2400);
	add(s);
	s.seq = 3400;
	s.dlen = 1200; /* longer than the run's first */
	add(s);
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 3);
	assert_run(1, 1, 2400, 1000);
	assert_run(2, 1, 3400, 1200);
}

Test(gro, flows_are_held_apart)
{
	add(full(1, 1000));
	add(full(2, 1000));
	add(full(1, 2000));
	add(full(2, 2000));
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 2);
	assert_run(0, 2, 1000, 2000);
	assert_run(1, 2, 1000, 2000);
	cr_assert_eq(get16((uint8_t *)fed[0].p->payload + 20), 1);
	cr_assert_eq(get16((uint8_t *)fed[1].p->payload + 20), 2);
}

Test(gro, the_same_flow_in_another_zone_is_another_flow)
{
	struct spec s = full(1, 2000);

	add(full(1, 1000));
	l3x_gro_add(&g, seg(&s), 7);
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 2);
	cr_assert_eq(g.merged, 0);
}

Test(gro, a_merged_packet_stays_within_64k)
{
	uint32_t seq = 1000, at = 1000;
	unsigned i, segs = 0;
	struct spec s;

	l3x_gro_init(&g, 64, feed, NULL);
	for (i = 0; i < 50; i++) {
		s = full(1, seq);
		s.dlen = 1400;
		add(s);
		seq += 1400;
	}
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 2);
	for (i = 0; i < nfed; i++) {
		cr_assert_leq(fed[i].p->tot_len, 65535);
		assert_run(i, fed[i].segs, at, (size_t)fed[i].segs * 1400);
		at += fed[i].segs * 1400;
		segs += fed[i].segs;
	}
	cr_assert_eq(segs, 50);
	/* 20 + 32 + 46 * 1400 = 64452; one more would not fit */
	cr_assert_eq(fed[0].segs, 46);
}

Test(gro, a_run_ends_at_max_segs)
{
	unsigned i;

	l3x_gro_init(&g, 4, feed, NULL);
	for (i = 0; i < 10; i++)
		add(full(1, 1000 + i * 1000));
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 3);
	assert_run(0, 4, 1000, 4000);
	assert_run(1, 4, 5000, 4000);
	assert_run(2, 2, 9000, 2000);
}

Test(gro, past_eight_flows_the_oldest_run_goes_on_first)
{
	unsigned i;

	for (i = 0; i < L3X_GRO_FLOWS + 1; i++)
		add(full((uint16_t)(100 + i), 1000));
	cr_assert_eq(nfed, 1);
	cr_assert_eq(get16((uint8_t *)fed[0].p->payload + 20), 100);
	cr_assert_eq(g.held, L3X_GRO_FLOWS);
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, L3X_GRO_FLOWS + 1);
}

Test(gro, a_bad_checksum_part_is_not_merged_and_goes_unmarked)
{
	struct spec s = full(1, 2000);

	add(full(1, 1000));
	s.bad_sum = 1;
	add(s);
	cr_assert_eq(nfed, 2, "the run, then the bad one, at once");
	assert_run(0, 1, 1000, 1000);
	cr_assert_not(fed[1].held);
	cr_assert_not(fed[1].p->flags & PBUF_FLAG_L3X_CSUM_OK,
		      "a wrong sum left for lwIP to find");
	cr_assert_eq(g.merged, 0);
}

Test(gro, a_packet_passed_by_sends_its_flows_run_first)
{
	struct pbuf *p;
	struct spec s = full(1, 2000);

	add(full(1, 1000));
	add(full(2, 1000));
	p = seg(&s);
	l3x_gro_pass(&g, p->payload, p->len, 0);
	pbuf_free(p);
	cr_assert_eq(nfed, 1);
	cr_assert_eq(get16((uint8_t *)fed[0].p->payload + 20), 1);
	l3x_gro_flush(&g);
	cr_assert_eq(nfed, 2);
}

Test(gro, udp_and_ip_options_go_on_at_once)
{
	struct spec s = full(1, 1000);
	struct pbuf *p;

	s.udp = 1;
	add(s);
	cr_assert_eq(nfed, 1);
	cr_assert_not(fed[0].held);
	/* an IPv4 header with options (IHL 6) */
	s = full(1, 1000);
	p = seg(&s);
	((uint8_t *)p->payload)[0] = 0x46;
	l3x_gro_add(&g, p, 0);
	cr_assert_eq(nfed, 2);
	cr_assert_not(fed[1].held);
}

/* ------------------------------------------------------------ into lwIP */

static err_t out4(struct netif *n, struct pbuf *p, const ip4_addr_t *dst)
{
	(void)n;
	(void)dst;
	cr_assert_lt(nsent, 8);
	pbuf_copy_partial(p, sent[nsent++], sizeof(sent[0]), 0);
	return ERR_OK;
}

static err_t nif_init(struct netif *n)
{
	n->mtu = 1500;
	n->output = out4;
	n->flags = NETIF_FLAG_L3X_ANYDEST;
	return ERR_OK;
}

/* As the engine feeds lwIP (lib/engine.c input_feed). */
static void feed_lwip(void *ctx, struct pbuf *p, unsigned segs, bool held)
{
	(void)ctx;
	(void)held;
	tcp_l3x_in_segs = (u8_t)segs;
	nif.input(p, &nif);
	tcp_l3x_in_segs = 1;
}

static void nif_up(void)
{
	cr_assert_not_null(
		netif_add(&nif, NULL, NULL, NULL, NULL, nif_init, ip_input));
	netif_set_default(&nif);
	netif_set_up(&nif);
	netif_set_link_up(&nif);
	l3x_gro_init(&g, 16, feed_lwip, NULL);
}

Test(gro, lwip_takes_the_merged_segment_whole_and_drops_the_bad_part)
{
	struct spec s = full(1, 2000);
	uint32_t chkerr = lwip_stats.tcp.chkerr;

	nif_up();
	add(full(1, 1000));
	add(s);
	s = full(1, 3000);
	s.bad_sum = 1;
	add(s);
	l3x_gro_flush(&g);
	/* No connection: the merged segment gets one RST, acknowledging
	 * all of it; the bad one is dropped for its sum, unanswered. */
	cr_assert_eq(nsent, 1, "%u packets out", nsent);
	cr_assert_eq(sent[0][33] & 0x04, 0x04, "a RST");
	cr_assert_eq(get32(sent[0] + 28), 3000, "ack %u", get32(sent[0] + 28));
	cr_assert_eq(lwip_stats.tcp.chkerr, chkerr + 1);
	netif_remove(&nif);
}

static struct tcp_pcb *accepted;
static size_t received;

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	(void)arg;
	(void)pcb;
	(void)err;
	if (p) {
		received += p->tot_len;
		pbuf_free(p); /* no tcp_recved(): no window update to count */
	}
	return ERR_OK;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	(void)err;
	accepted = pcb;
	tcp_recv(pcb, on_recv);
	return ERR_OK;
}

/* Patch 0062: lwIP acknowledges a merged segment at once, as it would the
 * second of the segments it merged, where one segment alone only arms
 * the delayed ACK. */
Test(gro, lwip_acks_a_merged_segment_at_once)
{
	struct tcp_pcb *l = tcp_new_ip_type(IPADDR_TYPE_ANY);
	struct spec s = { .sport = 1, .seq = 999, .flags = SYN, .win = 8000 };
	uint32_t iss, deadline;

	cr_assert_not_null(l);
	ip_set_option(l, SOF_L3X_ANYDEST);
	l = tcp_listen(l);
	cr_assert_not_null(l);
	tcp_accept(l, on_accept);
	nif_up();
	add(s);
	cr_assert_eq(nsent, 1, "a SYN-ACK");
	iss = get32(sent[0] + 24);
	s.seq = 1000;
	s.ack = iss + 1;
	s.flags = ACK;
	add(s);
	cr_assert_not_null(accepted, "the handshake completed");
	nsent = 0;
	s = full(1, 1000);
	s.ack = iss + 1;
	s.tsval = 0;
	add(s);
	s.seq = 2000;
	add(s);
	l3x_gro_flush(&g);
	cr_assert_eq(received, 2000);
	cr_assert_eq(g.merged, 1);
	cr_assert_eq(nsent, 1, "%u packets out for the merged segment", nsent);
	cr_assert_eq(get32(sent[0] + 28), 3000, "ack %u", get32(sent[0] + 28));
	/* one segment alone: the delayed ACK only */
	s.seq = 3000;
	add(s);
	l3x_gro_flush(&g);
	cr_assert_eq(received, 3000);
	cr_assert_eq(nsent, 1, "no ACK yet for one segment");
	tcp_abort(accepted);
	tcp_close(l);
	netif_remove(&nif);
	/* The TCP timer frees its timeout once it finds no PCB. */
	deadline = sys_now() + 2000;
	while (lwip_stats.memp[MEMP_SYS_TIMEOUT]->used !=
		       pool_start[MEMP_SYS_TIMEOUT] &&
	       (int32_t)(deadline - sys_now()) > 0) {
		sys_check_timeouts();
		usleep(5000);
	}
}
