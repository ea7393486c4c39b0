/*
 * test_lwip_tail.c - patch 0071 (lib/lwip/patches): lwIP keeps the last
 * segment of pcb->unacked in the PCB (l3x_unacked_tail), so that
 * tcp_output() appends in O(1). Every path that edits the list must keep
 * it true: output, full and partial ACKs, fast retransmit (which puts a
 * segment back before the tail), RTO (the list moves to unsent), close,
 * abort and a peer's RST, all with a long queue in flight.
 *
 * As test_lwip_anydest.c: crafted IPv4 segments go in through
 * netif->input; what lwIP sends is parsed from the netif's output (data
 * segments' sequence numbers and lengths). Criterion forks each test;
 * teardown checks that every lwIP pool and the heap are back where they
 * started. In the sanitized build, lwIP itself walks the list after every
 * tcp_output() and tcp_receive() (TCP_L3X_CHECK_TAILS).
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/mem.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/tcp.h"

#include "csum.h"
#include "mem.h"
#include "wire_helpers.h"

#define PEER	  "203.0.113.5"
#define DST	  "198.51.100.77"
#define PEER_PORT 40000
#define DST_PORT  8080
#define PEER_ISN  1000u
/* The MSS floor (patch 0004): the most segments a 65535-byte window holds. */
#define MSS    536
#define WINDOW 65535

static struct netif nif;
static uint32_t pool_start[MEMP_MAX];
static uint64_t mem_start;

/* What lwIP sent: every TCP segment's sequence number, length, flags. */
static struct sent {
	uint32_t seq, ack;
	uint16_t len;
	uint8_t flags;
} out[4096];
static unsigned nout;

static struct tcp_pcb *listener, *conn;
static uint32_t iss;	  /* lwIP's initial sequence number */
static uint32_t peer_seq; /* the peer's next sequence number */

/* ------------------------------------------------------------ wire */

static uint32_t pseudo(const uint8_t *src, const uint8_t *dst, size_t len)
{
	uint8_t ph[12];

	memcpy(ph, src, 4);
	memcpy(ph + 4, dst, 4);
	ph[8] = 0;
	ph[9] = IP_PROTO_TCP;
	put16(ph + 10, (uint16_t)len);
	return csum_partial(ph, sizeof(ph), 0);
}

/* A segment from the peer, window WINDOW; mss 0: no MSS option. */
static void send_tcp(uint32_t seq, uint32_t ack, uint8_t flags, uint16_t mss)
{
	uint8_t pkt[64] = { 0 }, *t = pkt + 20, s[4], d[4];
	size_t hlen = mss ? 24 : 20;
	struct pbuf *p;
	uint16_t c;

	cr_assert_eq(inet_pton(AF_INET, PEER, s), 1);
	cr_assert_eq(inet_pton(AF_INET, DST, d), 1);
	put16(t, PEER_PORT);
	put16(t + 2, DST_PORT);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = (uint8_t)(hlen / 4 << 4);
	t[13] = flags;
	put16(t + 14, WINDOW);
	if (mss) {
		t[20] = 2;
		t[21] = 4;
		put16(t + 22, mss);
	}
	c = csum_fold(csum_partial(t, hlen, pseudo(s, d, hlen)));
	put16(t + 16, c);
	pkt[0] = 0x45;
	put16(pkt + 2, (uint16_t)(20 + hlen));
	pkt[8] = 64;
	pkt[9] = IP_PROTO_TCP;
	memcpy(pkt + 12, s, 4);
	memcpy(pkt + 16, d, 4);
	put16(pkt + 10, csum_fold(csum_partial(pkt, 20, 0)));
	p = pbuf_alloc(PBUF_RAW, (u16_t)(20 + hlen), PBUF_RAM);
	cr_assert_not_null(p);
	cr_assert_eq(pbuf_take(p, pkt, (u16_t)(20 + hlen)), ERR_OK);
	nif.input(p, &nif);
}

static void ack_to(uint32_t ack)
{
	send_tcp(peer_seq, ack, TCP_ACK, 0);
}

static err_t out4(struct netif *n, struct pbuf *p, const ip4_addr_t *dst)
{
	uint8_t b[128];
	size_t hlen;

	(void)n;
	(void)dst;
	cr_assert_lt(nout, sizeof(out) / sizeof(out[0]));
	cr_assert_eq(pbuf_copy_partial(p, b, 40, 0), 40);
	cr_assert_eq(b[0], 0x45);
	cr_assert_eq(b[9], IP_PROTO_TCP);
	hlen = (size_t)(b[32] >> 4) * 4;
	out[nout].seq = get32(b + 24);
	out[nout].ack = get32(b + 28);
	out[nout].flags = b[33] & 0x3f;
	out[nout].len = (uint16_t)(p->tot_len - 20 - hlen);
	nout++;
	return ERR_OK;
}

/* ------------------------------------------------------------ the tail */

/* The list is in sequence order and the PCB's tail is its last segment;
 * returns the list's length. */
static unsigned assert_tail(const struct tcp_pcb *pcb)
{
	const struct tcp_seg *seg, *last = NULL;
	unsigned n = 0;

	for (seg = pcb->unacked; seg; seg = seg->next) {
		if (last)
			cr_assert(TCP_SEQ_LT(lwip_ntohl(last->tcphdr->seqno),
					     lwip_ntohl(seg->tcphdr->seqno)),
				  "unacked out of order at %u", n);
		last = seg;
		n++;
	}
	cr_assert_eq(pcb->l3x_unacked_tail, last,
		     "tail %p, last of %u segments %p",
		     (void *)pcb->l3x_unacked_tail, n, (void *)last);
	return n;
}

static uint32_t seg_seq(const struct tcp_seg *seg)
{
	return lwip_ntohl(seg->tcphdr->seqno);
}

/* ------------------------------------------------------------ set-up */

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	cr_assert_eq(err, ERR_OK);
	cr_assert_null(conn);
	conn = pcb;
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	(void)arg;
	(void)err;
	conn = NULL; /* lwIP has freed it */
}

static err_t nif_init(struct netif *n)
{
	n->name[0] = 't';
	n->name[1] = '1';
	n->mtu = 1500;
	n->output = out4;
	n->flags = NETIF_FLAG_L3X_ANYDEST;
	return ERR_OK;
}

/* A connection from the peer, MSS 536, and room for a long queue: the
 * congestion window is opened as a long transfer would have opened it. */
static void setup(void)
{
	static int initialised;
	unsigned i;

	/* Once per process: criterion forks each test, --no-fork does not. */
	if (!initialised++)
		lwip_init();
	for (i = 0; i < MEMP_MAX; i++)
		pool_start[i] = lwip_stats.memp[i]->used;
	mem_start = l3x_mem_used(L3X_MEM_LWIP);
	cr_assert_not_null(
		netif_add(&nif, NULL, NULL, NULL, NULL, nif_init, ip_input));
	netif_set_default(&nif);
	netif_set_up(&nif);
	netif_set_link_up(&nif);

	listener = tcp_new_ip_type(IPADDR_TYPE_ANY);
	cr_assert_not_null(listener);
	ip_set_option(listener, SOF_L3X_ANYDEST);
	listener = tcp_listen(listener);
	cr_assert_not_null(listener);
	tcp_accept(listener, on_accept);

	nout = 0;
	send_tcp(PEER_ISN, 0, TCP_SYN, MSS);
	cr_assert_eq(nout, 1);
	cr_assert_eq(out[0].flags, TCP_SYN | TCP_ACK);
	iss = out[0].seq;
	peer_seq = PEER_ISN + 1;
	ack_to(iss + 1);
	cr_assert_not_null(conn, "not accepted");
	cr_assert_eq(conn->mss, MSS);
	tcp_err(conn, on_err);
	tcp_nagle_disable(conn);
	conn->cwnd = 1u << 20;
	cr_assert_null(conn->l3x_unacked_tail);
	nout = 0;
}

static void teardown(void)
{
	uint32_t deadline;
	unsigned i;

	if (conn)
		tcp_abort(conn);
	if (listener)
		tcp_close(listener);
	for (i = 0; i < 1000 && (tcp_active_pcbs || tcp_tw_pcbs); i++) {
		tcp_tmr();
		while (tcp_l3x_timer_slice(100000))
			;
	}
	cr_expect_null(tcp_active_pcbs, "a connection was left open");
	cr_expect_null(tcp_tw_pcbs);
	netif_remove(&nif);
	deadline = sys_now() + 2000;
	while (lwip_stats.memp[MEMP_SYS_TIMEOUT]->used !=
		       pool_start[MEMP_SYS_TIMEOUT] &&
	       (int32_t)(deadline - sys_now()) > 0) {
		sys_check_timeouts();
		usleep(5000);
	}
	for (i = 0; i < MEMP_MAX; i++)
		cr_expect_eq(lwip_stats.memp[i]->used, pool_start[i],
			     "pool %s: %u in use, %u at start",
			     lwip_stats.memp[i]->name,
			     (unsigned)lwip_stats.memp[i]->used, pool_start[i]);
	cr_expect_eq(l3x_mem_used(L3X_MEM_LWIP), mem_start,
		     "heap: %lu, %lu at start",
		     (unsigned long)l3x_mem_used(L3X_MEM_LWIP),
		     (unsigned long)mem_start);
}

TestSuite(tail, .init = setup, .fini = teardown);

/* Queue n full segments and send what the window lets go; returns how
 * many data segments went out. */
static unsigned write_segs(unsigned n)
{
	static char data[MSS];
	unsigned i, before = nout, sent = 0;

	memset(data, 'd', sizeof(data));
	for (i = 0; i < n; i++)
		cr_assert_eq(tcp_write(conn, data, MSS, TCP_WRITE_FLAG_COPY),
			     ERR_OK, "segment %u", i);
	cr_assert_eq(tcp_output(conn), ERR_OK);
	for (i = before; i < nout; i++) {
		cr_assert_eq(out[i].len, MSS);
		sent++;
	}
	return sent;
}

/* The sequence number just past the i-th data segment. */
static uint32_t past(unsigned i)
{
	return iss + 1 + (i + 1) * MSS;
}

/* ACK everything sent until both queues are empty, checking the tail at
 * every step (the window lets what waits in unsent go as ACKs come). */
static void drain(void)
{
	unsigned i;

	for (i = 0; i < 1000 && (conn->unacked || conn->unsent); i++) {
		ack_to(conn->snd_nxt);
		assert_tail(conn);
	}
	cr_assert_null(conn->unacked);
	cr_assert_null(conn->unsent);
	cr_assert_null(conn->l3x_unacked_tail);
	cr_assert_eq(conn->lastack, conn->snd_nxt);
}

/* ------------------------------------------------------------ tests */

Test(tail, follows_output_and_partial_acks)
{
	const struct tcp_seg *tail;
	unsigned n = WINDOW / MSS;

	/* A window's worth in flight: 122 segments. */
	cr_assert_eq(write_segs(n), n);
	cr_assert_eq(assert_tail(conn), n);
	tail = conn->l3x_unacked_tail;
	cr_assert_eq(seg_seq(tail), past(n - 2));

	/* An ACK inside the first segment frees nothing. */
	ack_to(iss + 1 + 100);
	cr_assert_eq(assert_tail(conn), n);
	cr_assert_eq(conn->l3x_unacked_tail, tail);

	/* Ten segments acknowledged from the front: the tail stays. */
	ack_to(past(9));
	cr_assert_eq(assert_tail(conn), n - 10);
	cr_assert_eq(conn->l3x_unacked_tail, tail);

	/* The window slid by ten: five more go out, appended at the tail. */
	cr_assert_eq(write_segs(5), 5);
	cr_assert_eq(assert_tail(conn), n - 5);
	cr_assert_eq(seg_seq(conn->l3x_unacked_tail), past(n + 3));

	/* One by one, then all: the tail clears with the list. */
	ack_to(past(10));
	ack_to(past(11));
	cr_assert_eq(assert_tail(conn), n - 7);
	ack_to(conn->snd_nxt);
	cr_assert_eq(assert_tail(conn), 0);
	cr_assert_null(conn->l3x_unacked_tail);

	/* And starts again from an empty list. */
	cr_assert_eq(write_segs(3), 3);
	cr_assert_eq(assert_tail(conn), 3);
	cr_assert_eq(seg_seq(conn->l3x_unacked_tail), past(n + 6));
	drain();
}

Test(tail, fast_retransmit_puts_a_segment_back_before_the_tail)
{
	const struct tcp_seg *tail;
	unsigned n = 100, before, i;

	cr_assert_eq(write_segs(n), n);
	tail = conn->l3x_unacked_tail;
	ack_to(past(4));
	cr_assert_eq(assert_tail(conn), n - 5);

	/* Three duplicate ACKs: tcp_rexmit() moves the first unacked segment
	 * to unsent and tcp_output() sends it again, into unacked before the
	 * tail. */
	before = nout;
	for (i = 0; i < 3; i++) {
		ack_to(past(4));
		assert_tail(conn);
	}
	cr_assert(conn->flags & TF_INFR, "no fast retransmit");
	cr_assert_eq(nout, before + 1, "%u segments out", nout - before);
	cr_assert_eq(out[before].seq, past(4));
	cr_assert_eq(out[before].len, MSS);
	cr_assert_eq(assert_tail(conn), n - 5);
	cr_assert_eq(conn->l3x_unacked_tail, tail);
	cr_assert_eq(seg_seq(conn->unacked), past(4));

	/* More to send while in recovery goes after the tail (the
	 * congestion window opened again for it). */
	conn->cwnd = 1u << 20;
	cr_assert_eq(write_segs(4), 4);
	cr_assert_eq(assert_tail(conn), n - 1);
	cr_assert_eq(seg_seq(conn->l3x_unacked_tail), past(n + 2));

	/* A partial ACK, then the rest. */
	ack_to(past(40));
	cr_assert_eq(assert_tail(conn), n + 4 - 41);
	drain();
}

/* The retransmission timer (lwIP's slow timer, in slices: patch 0006)
 * moves the whole list to unsent and sends one segment (the congestion
 * window falls to one MSS); the window then reopens ACK by ACK. */
Test(tail, rto_moves_the_list_to_unsent_and_it_grows_back)
{
	unsigned n = 60, before, i;

	cr_assert_eq(write_segs(n), n);
	ack_to(past(1));
	cr_assert_eq(assert_tail(conn), n - 2);
	cr_assert_geq(conn->rto, 1);
	before = nout;
	conn->rtime = (s16_t)(conn->rto - 1);
	for (i = 0; i < 4 && nout == before; i++) {
		tcp_tmr();
		while (tcp_l3x_timer_slice(100000))
			;
	}
	cr_assert_eq(nout, before + 1, "%u segments out after the RTO",
		     nout - before);
	cr_assert_eq(out[before].seq, past(1));
	cr_assert_eq(conn->nrtx, 1);
	cr_assert_eq(assert_tail(conn), 1);
	cr_assert_eq(seg_seq(conn->l3x_unacked_tail), past(1));
	cr_assert_not_null(conn->unsent);

	/* The first ACK lets two go, and so on. */
	ack_to(past(2));
	cr_assert_geq(assert_tail(conn), 1);
	cr_assert_eq(seg_seq(conn->unacked), past(2));
	drain();
}

/* tcp_rexmit_rto() as tcp_process() calls it, with the congestion window
 * left open: the whole list goes out again and back into unacked. */
Test(tail, rto_resend_of_the_whole_list)
{
	unsigned n = 80, before;

	cr_assert_eq(write_segs(n), n);
	ack_to(past(9));
	cr_assert_eq(assert_tail(conn), n - 10);
	before = nout;
	tcp_rexmit_rto(conn);
	cr_assert_eq(nout - before, n - 10);
	cr_assert_eq(out[before].seq, past(9));
	cr_assert_eq(assert_tail(conn), n - 10);
	cr_assert_null(conn->unsent);
	cr_assert_eq(seg_seq(conn->l3x_unacked_tail), past(n - 2));
	drain();
}

/* A FIN queued behind a long queue is appended to it, ACKed last. */
Test(tail, fin_goes_at_the_tail)
{
	unsigned n = 50;

	cr_assert_eq(write_segs(n), n);
	cr_assert_eq(tcp_close(conn), ERR_OK);
	tcp_err(conn, NULL);
	cr_assert_eq(assert_tail(conn), n + 1);
	cr_assert_eq(seg_seq(conn->l3x_unacked_tail), past(n - 1));
	cr_assert(TCPH_FLAGS(conn->l3x_unacked_tail->tcphdr) & TCP_FIN);
	ack_to(past(24));
	cr_assert_eq(assert_tail(conn), n + 1 - 25);
	ack_to(past(n - 1) + 1);
	cr_assert_eq(conn->state, FIN_WAIT_2);
	cr_assert_null(conn->unacked);
	cr_assert_null(conn->l3x_unacked_tail);
	/* The peer's FIN: TIME-WAIT, which teardown waits out. */
	send_tcp(peer_seq, past(n - 1) + 1, TCP_FIN | TCP_ACK, 0);
	cr_assert_eq(conn->state, TIME_WAIT);
	conn = NULL;
}

Test(tail, abort_with_a_long_queue_frees_it)
{
	cr_assert_eq(write_segs(120), 120);
	cr_assert_eq(assert_tail(conn), 120);
	tcp_err(conn, NULL);
	tcp_abort(conn); /* teardown: every segment back in its pool */
	conn = NULL;
}

Test(tail, peer_reset_with_a_long_queue_frees_it)
{
	cr_assert_eq(write_segs(120), 120);
	ack_to(past(30));
	cr_assert_eq(assert_tail(conn), 89);
	send_tcp(peer_seq, 0, TCP_RST, 0);
	cr_assert_null(conn, "RST in the window did not end the connection");
}

/* The assertion lwIP makes at the end of tcp_output() is alive: a tail
 * that is not the last segment stops the program. */
#if defined(__SANITIZE_ADDRESS__)
Test(tail, a_wrong_tail_fails_the_assertion)
{
	/* tests/run-all has ASan handle SIGABRT (handle_abort=1): the abort
	 * this test expects would be a sanitizer report, failing the run.
	 * This build walks the list in lwIP after every output instead. */
	cr_skip_test("the abort it expects is a sanitizer report under ASan");
}
#else
Test(tail, a_wrong_tail_fails_the_assertion, .signal = SIGABRT)
{
	cr_assert_eq(write_segs(5), 5);
	cr_assert_eq(assert_tail(conn), 5);
	conn->l3x_unacked_tail = conn->unacked; /* not the last */
	tcp_output(conn);
	cr_assert_fail("tcp_output() took a tail that is not the last");
}
#endif
