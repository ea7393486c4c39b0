/*
 * test_stack_guard.c - TCP lifetimes, segment by segment: the test is the
 * client, handing crafted segments to a stack on the callback source and
 * reading what it answers, so that sequence numbers and timestamps are
 * exactly what each case needs (tests/netns/tcp_guard.sh runs the same
 * behaviours with the kernel's TCP and ab as the client).
 *   - TIME_WAIT: a SYN past the old connection reopens the tuple (RFC
 *     6191), an older one gets an ACK and the client's RST in sequence
 *     ends TIME_WAIT; only the client's FIN sent again restarts its
 *     timer; max_time_wait recycles the oldest;
 *   - timestamps: a clock of their own per connection, and PAWS;
 *   - lifetimes: the idle timeout (per stack and per stream), keepalive,
 *     the persist timeout against a client that holds its window shut,
 *     and linger_ms counted from the last acknowledgment that moved (a
 *     kernel client reading slowly after close is not reset).
 */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lwip/priv/tcp_priv.h"

#include "l3x/l3x.h"
#include "csum.h"
#include "helpers.h"

/* ------------------------------------------------------------ the wire */

#define OUT_MAX 64

/* What the stack sent, in order, since out_reset(). */
static uint8_t out_pkt[OUT_MAX][256];
static size_t out_len[OUT_MAX];
static unsigned out_n;
/* The window our segments announce. */
static uint16_t seg_wnd = 0xffff;

static int out_keep(void *ctx, const void *pkt, size_t len)
{
	(void)ctx;
	if (out_n == OUT_MAX)
		return 0;
	out_len[out_n] = len < sizeof(out_pkt[0]) ? len : sizeof(out_pkt[0]);
	memcpy(out_pkt[out_n], pkt, out_len[out_n]);
	out_n++;
	return 0;
}

static void out_reset(void)
{
	out_n = 0;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* A segment the stack sent (IPv4, 20-byte header). */
struct out_seg {
	uint8_t flags;
	uint32_t seq, ack;
	bool has_ts;
	uint32_t tsval, tsecr;
	uint16_t dport;
};

static struct out_seg out_parse(unsigned i)
{
	const uint8_t *p = out_pkt[i], *o;
	struct out_seg g = { 0 };
	size_t hl, k;

	cr_assert_geq(out_len[i], 40, "short packet out");
	g.dport = (uint16_t)(p[22] << 8 | p[23]);
	g.seq = get32(p + 24);
	g.ack = get32(p + 28);
	g.flags = p[33];
	hl = (size_t)(p[32] >> 4) * 4;
	o = p + 40;
	for (k = 0; k + 40 < 20 + hl && k + 40 < out_len[i];) {
		if (o[k] == 0)
			break;
		if (o[k] == 1) {
			k++;
			continue;
		}
		if (o[k] == 8 && o[k + 1] == 10) {
			g.has_ts = true;
			g.tsval = get32(o + k + 2);
			g.tsecr = get32(o + k + 6);
		}
		k += o[k + 1] ? o[k + 1] : 1;
	}
	return g;
}

/* The last segment the stack sent; fails when it sent none. */
static struct out_seg out_last(void)
{
	cr_assert_gt(out_n, 0, "the stack sent nothing");
	return out_parse(out_n - 1);
}

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_PSH 0x08
#define F_ACK 0x10

/* One segment 203.0.113.9:@sport -> 198.51.100.70:80; a timestamp option
 * when @tsval is not 0. Handed in, then a turn of the engine. */
static void seg(uint16_t sport, uint8_t flags, uint32_t seq, uint32_t ack,
		uint32_t tsval, uint32_t tsecr, const void *data, size_t n)
{
	size_t olen = tsval ? 12 : 0, len = 40 + olen + n;
	uint8_t p[1500], ph[12];
	uint16_t c;

	memset(p, 0, 40 + olen);
	p[0] = 0x45;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	p[8] = 64;
	p[9] = 6;
	memcpy(p + 12, (uint8_t[]){ 203, 0, 113, 9 }, 4);
	memcpy(p + 16, (uint8_t[]){ 198, 51, 100, 70 }, 4);
	c = csum_fold(csum_partial(p, 20, 0));
	p[10] = (uint8_t)(c >> 8);
	p[11] = (uint8_t)c;
	p[20] = (uint8_t)(sport >> 8);
	p[21] = (uint8_t)sport;
	p[23] = 80;
	put32(p + 24, seq);
	put32(p + 28, ack);
	p[32] = (uint8_t)((5 + olen / 4) << 4);
	p[33] = flags;
	p[34] = (uint8_t)(seg_wnd >> 8);
	p[35] = (uint8_t)seg_wnd;
	if (tsval) {
		memcpy(p + 40, (uint8_t[]){ 1, 1, 8, 10 }, 4);
		put32(p + 44, tsval);
		put32(p + 48, tsecr);
	}
	if (n)
		memcpy(p + 40 + olen, data, n);
	memcpy(ph, p + 12, 8);
	ph[8] = 0;
	ph[9] = 6;
	ph[10] = (uint8_t)((len - 20) >> 8);
	ph[11] = (uint8_t)(len - 20);
	c = csum_fold(csum_partial(p + 20, len - 20, csum_partial(ph, 12, 0)));
	p[36] = (uint8_t)(c >> 8);
	p[37] = (uint8_t)c;
	cr_assert_eq(l3x_stack__input(F.st, p, len), 0);
	l3x_stack__poll(F.st);
}

/* Turns of the engine for @ms. */
static void turns(int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end) {
		l3x_stack__poll(F.st);
		usleep(1000);
	}
}

static void up(struct l3x_stack_opts *o)
{
	l3x_set_print(NULL);
	o->source = L3X_SOURCE_CALLBACK;
	o->output = out_keep;
	F.src = L3X_SOURCE_CALLBACK;
	F.st = l3x_stack__open(o);
	cr_assert_not_null(F.st, "open: %s", strerror(errno));
	cr_assert_eq(l3x_stack__mem(F.st, &F.mem0), 0);
	add_rule_text("tcp 198.51.100.0/24 80");
}

static void down(struct l3x_worker *w, unsigned n_tw)
{
	l3x_stack__poll(F.st);
	expect_clean(n_tw);
	l3x_worker__close(w);
	l3x_stack__poll(F.st);
	cr_assert_eq(l3x_stack__close(F.st), 0);
}

/* A client of ours: its port and where its sequence numbers are. */
struct cli {
	uint16_t port;
	uint32_t seq;	/* next to send */
	uint32_t ours;	/* next expected from the stack */
	uint32_t isn_s; /* the stack's ISN */
	uint32_t ts;	/* our clock; 0: no timestamps */
};

/* SYN, SYN-ACK, ACK, accept. */
static struct l3x_stream *handshake(struct l3x_worker *w, struct cli *c)
{
	struct l3x_stream *s;
	struct out_seg g;

	out_reset();
	seg(c->port, F_SYN, c->seq, 0, c->ts, 0, NULL, 0);
	g = out_last();
	cr_assert_eq(g.flags & (F_SYN | F_ACK), F_SYN | F_ACK, "no SYN-ACK");
	cr_assert_eq(g.ack, c->seq + 1);
	c->seq++;
	c->isn_s = g.seq;
	c->ours = g.seq + 1;
	if (c->ts)
		c->ts++;
	seg(c->port, F_ACK, c->seq, c->ours, c->ts, g.tsval, NULL, 0);
	s = l3x_worker__accept(w);
	cr_assert_not_null(s, "not accepted");
	return s;
}

/* The stack closes first: its FIN, our ACK and FIN, its ACK; the stack
 * holds the tuple in TIME_WAIT. */
static void server_closes(struct l3x_stream *s, struct cli *c)
{
	struct out_seg g = { 0 };
	unsigned i;

	out_reset();
	l3x_stream__close(s);
	turns(20);
	cr_assert_gt(out_n, 0, "no FIN");
	for (i = 0; i < out_n; i++) {
		g = out_parse(i);
		if (g.flags & F_FIN)
			break;
	}
	cr_assert(g.flags & F_FIN, "no FIN");
	c->ours = g.seq + 1;
	if (c->ts)
		c->ts++;
	seg(c->port, F_ACK | F_FIN, c->seq, c->ours, c->ts, g.tsval, NULL, 0);
	c->seq++;
	turns(120); /* the engine lets go of the PCB (try_close) */
}

/* ------------------------------------------------------------ TIME_WAIT */

/* A stack with the default options and one worker, and @c's connection
 * accepted and closed by us: in TIME_WAIT. */
static struct l3x_worker *up_in_time_wait(struct cli *c)
{
	struct l3x_worker *w;

	L3X_OPTS(l3x_stack_opts, o);
	up(&o);
	w = worker_open();
	server_closes(handshake(w, c), c);
	return w;
}

/* What the stack answers last to a SYN of @c's port at @seq (timestamp
 * @ts, 0: none). */
static struct out_seg syn_answer(const struct cli *c, uint32_t seq, uint32_t ts)
{
	out_reset();
	seg(c->port, F_SYN, seq, 0, ts, 0, NULL, 0);
	return out_last();
}

Test(guard, syn_past_time_wait_reopens_the_tuple)
{
	struct cli c = { .port = 40001, .seq = 1000 };
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	struct out_seg g;

	w = up_in_time_wait(&c);
	ss = stats_now();
	cr_assert_eq(ss.tcp_time_wait, 1, "in TIME_WAIT: %llu",
		     (unsigned long long)ss.tcp_time_wait);

	/* The same tuple again, its sequence past the old one's. */
	g = syn_answer(&c, c.seq + 100000, 0);
	cr_assert_eq(g.flags & (F_SYN | F_ACK), F_SYN | F_ACK,
		     "a SYN past TIME_WAIT got flags 0x%x, not a SYN-ACK",
		     g.flags);
	cr_assert_eq(g.ack, c.seq + 100001);
	cr_assert_eq(g.seq, c.ours + 65535 + 2,
		     "new ISN %u: want the old one's end + 65537 (%u)", g.seq,
		     c.ours + 65537);
	l3x_stack__poll(F.st);
	ss = stats_now();
	cr_assert_eq(ss.tcp_tw_reused, 1);
	cr_assert_eq(ss.tcp_time_wait, 0);
	c.seq += 100001;
	c.ours = g.seq + 1;
	seg(c.port, F_ACK, c.seq, c.ours, 0, 0, NULL, 0);
	s = l3x_worker__accept(w);
	cr_assert_not_null(s, "the reopened connection was not accepted");
	seg(c.port, F_RST, c.seq, 0, 0, 0, NULL, 0);
	l3x_stream__close(s);
	turns(50);
	down(w, 0);
}

Test(guard, syn_behind_time_wait_gets_an_ack_and_the_rst_ends_it)
{
	struct cli c = { .port = 40002, .seq = 0x80000000u };
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	struct out_seg g;

	w = up_in_time_wait(&c);

	/* A SYN behind the old connection: answered by an ACK of rcv_nxt,
	 * as the kernel answers; nothing reopened. */
	g = syn_answer(&c, c.seq - 5000, 0);
	cr_assert_eq(g.flags & (F_SYN | F_ACK | F_RST), F_ACK,
		     "flags 0x%x, want a bare ACK", g.flags);
	cr_assert_eq(g.ack, c.seq);
	/* A RST out of sequence is ignored (RFC 1337)... */
	seg(c.port, F_RST, c.seq + 1, 0, 0, 0, NULL, 0);
	ss = stats_now();
	cr_assert_eq(ss.tcp_time_wait, 1, "an inexact RST ended TIME_WAIT");
	/* ...the client's answer to that ACK, exactly rcv_nxt, ends it. */
	seg(c.port, F_RST, g.ack, 0, 0, 0, NULL, 0);
	l3x_stack__poll(F.st);
	ss = stats_now();
	cr_assert_eq(ss.tcp_tw_rst, 1);
	cr_assert_eq(ss.tcp_time_wait, 0);
	/* And the client's SYN, sent again, opens a connection. */
	g = syn_answer(&c, c.seq - 5000, 0);
	cr_assert_eq(g.flags & (F_SYN | F_ACK), F_SYN | F_ACK);
	seg(c.port, F_RST | F_ACK, c.seq - 4999, g.seq + 1, 0, 0, NULL, 0);
	down(w, 0);
}

Test(guard, syn_with_an_older_timestamp_keeps_time_wait)
{
	struct cli c = { .port = 40003, .seq = 1000, .ts = 500000 };
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	struct out_seg g;

	w = up_in_time_wait(&c);

	/* Past in sequence, but an older timestamp (PAWS): an ACK. */
	g = syn_answer(&c, c.seq + 100000, c.ts - 1000);
	cr_assert_eq(g.flags & (F_SYN | F_ACK | F_RST), F_ACK,
		     "flags 0x%x, want a bare ACK", g.flags);
	/* Behind in sequence, but a newer timestamp: a new connection. */
	g = syn_answer(&c, c.seq - 100000, c.ts + 1000);
	cr_assert_eq(g.flags & (F_SYN | F_ACK), F_SYN | F_ACK,
		     "flags 0x%x, want a SYN-ACK", g.flags);
	ss = stats_now();
	cr_assert_eq(ss.tcp_tw_reused, 1);
	seg(c.port, F_RST | F_ACK, c.seq - 99999, g.seq + 1, 0, 0, NULL, 0);
	down(w, 0);
}

/* lwIP's TIME_WAIT timer of the only PCB in TIME_WAIT: when it started,
 * in slow-timer ticks. Read with the engine idle (callback source). */
static uint32_t tw_started(void)
{
	cr_assert_not_null(tcp_tw_pcbs, "nothing in TIME_WAIT");
	cr_assert_null(tcp_tw_pcbs->next, "more than one in TIME_WAIT");
	return tcp_tw_pcbs->tmr;
}

Test(guard, only_the_fin_sent_again_restarts_time_wait)
{
	struct cli c = { .port = 40004, .seq = 5000 };
	struct l3x_worker *w;
	uint32_t t0;

	w = up_in_time_wait(&c);
	t0 = tw_started();
	turns(1200); /* lwIP's ticks move on */
	cr_assert_neq(tcp_ticks, t0, "no tick in 1.2 s");
	/* A FIN out of sequence: acknowledged, the timer left alone. */
	out_reset();
	seg(c.port, F_ACK | F_FIN, c.seq + 1000, c.ours, 0, 0, NULL, 0);
	cr_assert_eq(out_last().flags & (F_ACK | F_RST), F_ACK);
	cr_assert_eq(tw_started(), t0, "an out-of-sequence FIN restarted it");
	/* The client's FIN again (our ACK was lost): the timer restarts. */
	seg(c.port, F_ACK | F_FIN, c.seq - 1, c.ours, 0, 0, NULL, 0);
	cr_assert_eq(tw_started(), tcp_ticks, "the FIN sent again did not");
	down(w, 1);
}

Test(guard, max_time_wait_recycles_the_oldest)
{
	struct cli c[3] = { { .port = 41001, .seq = 7 },
			    { .port = 41002, .seq = 7 },
			    { .port = 41003, .seq = 7 } };
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	struct out_seg g;
	unsigned i;

	L3X_OPTS(l3x_stack_opts, o, .max_time_wait = 2);
	up(&o);
	w = worker_open();
	for (i = 0; i < 3; i++)
		server_closes(handshake(w, &c[i]), &c[i]);
	ss = stats_now();
	cr_assert_eq(ss.tcp_time_wait, 2, "in TIME_WAIT: %llu",
		     (unsigned long long)ss.tcp_time_wait);
	cr_assert_eq(ss.tcp_time_wait_peak, 2);
	cr_assert_eq(ss.tcp_tw_recycled, 1);
	/* The first one went: its FIN sent again finds no connection (RST);
	 * the two others' are acknowledged. */
	for (i = 0; i < 3; i++) {
		out_reset();
		seg(c[i].port, F_ACK | F_FIN, c[i].seq - 1, c[i].ours, 0, 0,
		    NULL, 0);
		g = out_last();
		if (i == 0)
			cr_assert(g.flags & F_RST, "oldest: flags 0x%x",
				  g.flags);
		else
			cr_assert_eq(g.flags & (F_RST | F_ACK), F_ACK,
				     "port %u: flags 0x%x", c[i].port, g.flags);
	}
	down(w, 2);
}

/* ------------------------------------------------------------ timestamps */

/* sys_now() as lwIP reads it. */
static uint32_t coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)(ts.tv_sec * 1000u + ts.tv_nsec / 1000000u);
}

static bool near(uint32_t a, uint32_t b, uint32_t within)
{
	return a - b <= within || b - a <= within;
}

Test(guard, timestamps_run_on_a_clock_per_connection)
{
	struct cli c[2] = { { .port = 42001, .seq = 1, .ts = 100 },
			    { .port = 42002, .seq = 1, .ts = 100 } };
	struct l3x_stream *s[2];
	struct l3x_worker *w;
	uint32_t first[2], now;
	struct out_seg g;
	unsigned i;

	L3X_OPTS(l3x_stack_opts, o);
	up(&o);
	w = worker_open();
	for (i = 0; i < 2; i++) {
		s[i] = handshake(w, &c[i]);
		g = out_parse(0); /* the SYN-ACK */
		cr_assert(g.has_ts, "no timestamp in the SYN-ACK");
		cr_assert_eq(g.tsecr, 100);
		first[i] = g.tsval;
	}
	now = coarse_ms();
	/* Neither the host's uptime nor one clock for both: a random
	 * offset each (a chance in ~10^6 of a false failure). */
	cr_assert(!near(first[0], now, 2000), "TSval %u is the uptime %u",
		  first[0], now);
	cr_assert(!near(first[0], first[1], 2000),
		  "two connections share a clock: %u, %u", first[0], first[1]);
	/* Each clock runs on in milliseconds. */
	usleep(300000);
	out_reset();
	seg(c[0].port, F_ACK | F_PSH, c[0].seq, c[0].ours, c[0].ts + 1,
	    first[0], "x", 1);
	turns(300); /* the delayed ACK */
	g = out_last();
	cr_assert(g.has_ts);
	cr_assert(g.tsval - first[0] >= 250 && g.tsval - first[0] <= 2000,
		  "TSval moved %d ms in ~300 ms", (int)(g.tsval - first[0]));
	for (i = 0; i < 2; i++) {
		seg(c[i].port, F_RST, c[i].seq + (i == 0), 0, 0, 0, NULL, 0);
		l3x_stream__close(s[i]);
	}
	turns(50);
	down(w, 0);
}

Test(guard, paws_drops_a_segment_with_an_older_timestamp)
{
	struct cli c = { .port = 43001, .seq = 1, .ts = 1000000 };
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	char got[16];
	long r;

	L3X_OPTS(l3x_stack_opts, o);
	up(&o);
	w = worker_open();
	s = handshake(w, &c);
	seg(c.port, F_ACK | F_PSH, c.seq, c.ours, c.ts + 10, 0, "ab", 2);
	c.seq += 2;
	r = l3x_stream__read(s, got, sizeof(got));
	cr_assert_eq(r, 2, "read %ld", r);
	/* In sequence, but stamped before the last: an old duplicate. */
	out_reset();
	seg(c.port, F_ACK | F_PSH, c.seq, c.ours, c.ts + 5, 0, "XY", 2);
	ss = stats_now();
	cr_assert_eq(ss.tcp_paws_dropped, 1);
	cr_assert_eq(l3x_stream__read(s, got, sizeof(got)), -EAGAIN,
		     "the old duplicate was delivered");
	cr_assert_eq(out_last().flags & F_ACK, F_ACK, "not acknowledged");
	/* The same bytes with a current stamp go through. */
	seg(c.port, F_ACK | F_PSH, c.seq, c.ours, c.ts + 20, 0, "cd", 2);
	c.seq += 2;
	r = l3x_stream__read(s, got, sizeof(got));
	cr_assert_eq(r, 2, "read %ld", r);
	cr_assert_eq(memcmp(got, "cd", 2), 0);
	/* A RST carries no PAWS check. */
	seg(c.port, F_RST, c.seq, 0, c.ts, 0, NULL, 0);
	ss = stats_now();
	cr_assert_eq(ss.tcp_paws_dropped, 1);
	cr_assert_eq(ss.tcp_reset_by_client, 1);
	l3x_stream__close(s);
	turns(50);
	down(w, 0);
}

/* ------------------------------------------------------------ lifetimes */

/* The stream ended with an error: its read says which. */
static long read_err(struct l3x_stream *s)
{
	char b[64];
	long r;

	do
		r = l3x_stream__read(s, b, sizeof(b));
	while (r > 0);
	return r;
}

Test(guard, idle_timeout_resets_a_silent_stream_unless_it_says_never,
     .timeout = 20)
{
	struct cli c[2] = { { .port = 44001, .seq = 1 },
			    { .port = 44002, .seq = 1 } };
	struct l3x_stack_stats ss;
	struct l3x_stream *s[2];
	struct l3x_worker *w;
	struct out_seg g;
	unsigned i;
	bool rst = false;

	L3X_OPTS(l3x_stack_opts, o, .tcp_idle_ms = 1000);
	up(&o);
	w = worker_open();
	for (i = 0; i < 2; i++)
		s[i] = handshake(w, &c[i]);
	cr_assert_eq(l3x_stream__getopt(s[0], L3X_STREAM_IDLE_MS), 1000);
	cr_assert_eq(l3x_stream__setopt(s[1], L3X_STREAM_IDLE_MS, 999),
		     -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s[1], L3X_STREAM_IDLE_MS,
					(long)L3X_MS_NEVER),
		     0);
	cr_assert_eq(l3x_stream__getopt(s[1], L3X_STREAM_IDLE_MS),
		     (long)L3X_MS_NEVER);
	out_reset();
	turns(2600);
	ss = stats_now();
	cr_assert_eq(ss.tcp_idle_timeouts, 1, "idle timeouts: %llu",
		     (unsigned long long)ss.tcp_idle_timeouts);
	for (i = 0; i < out_n; i++) {
		g = out_parse(i);
		if ((g.flags & F_RST) && g.dport == c[0].port)
			rst = true;
	}
	cr_assert(rst, "no RST to the idle client");
	cr_assert_eq(read_err(s[0]), -ETIMEDOUT);
	cr_assert_eq(read_err(s[1]), -EAGAIN, "the NEVER stream ended");
	seg(c[1].port, F_RST, c[1].seq, 0, 0, 0, NULL, 0);
	for (i = 0; i < 2; i++)
		l3x_stream__close(s[i]);
	turns(50);
	down(w, 0);
}

Test(guard, keepalive_resets_a_client_that_does_not_answer, .timeout = 20)
{
	struct cli c = { .port = 45001, .seq = 1 };
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	unsigned i, probes = 0;
	struct out_seg g;

	L3X_OPTS(l3x_stack_opts, o, .tcp_keepalive_ms = 1000,
		 .tcp_keepalive_intvl_ms = 500, .tcp_keepalive_cnt = 2);
	up(&o);
	w = worker_open();
	s = handshake(w, &c);
	out_reset();
	turns(3500);
	for (i = 0; i < out_n; i++) {
		g = out_parse(i);
		if (!(g.flags & F_RST) && g.seq == c.ours - 1)
			probes++;
	}
	cr_assert_geq(probes, 2, "keepalive probes: %u", probes);
	ss = stats_now();
	cr_assert_eq(ss.tcp_keepalive_timeouts, 1);
	cr_assert_eq(out_last().flags & F_RST, F_RST);
	cr_assert_eq(read_err(s), -ETIMEDOUT);
	l3x_stream__close(s);
	turns(50);
	down(w, 0);
}

Test(guard, persist_timeout_resets_a_client_that_keeps_its_window_shut,
     .timeout = 20)
{
	struct cli c = { .port = 46001, .seq = 1 };
	static const char data[3000];
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	uint64_t end;
	unsigned seen = 0, answered = 0;
	struct out_seg g;

	L3X_OPTS(l3x_stack_opts, o, .persist_timeout_ms = 1500);
	up(&o);
	w = worker_open();
	s = handshake(w, &c);
	/* 500 bytes come (one segment: no MSS option, so 536); we take them
	 * and shut our window, as a kernel client whose reader stopped does. */
	cr_assert_eq(l3x_stream__write(s, data, 500), 500);
	turns(20);
	c.ours += 500;
	seg_wnd = 0;
	seg(c.port, F_ACK, c.seq, c.ours, 0, 0, NULL, 0);
	cr_assert_eq(l3x_stream__write(s, data, sizeof(data)),
		     (long)sizeof(data));
	out_reset();
	/* Answer every probe at once, the window still shut: stock lwIP
	 * keeps probing for ever. */
	end = now_ms() + 4000;
	while (now_ms() < end && !stats_now().tcp_persist_timeouts) {
		l3x_stack__poll(F.st);
		for (; seen < out_n; seen++) {
			g = out_parse(seen);
			if ((g.flags & F_RST) || out_len[seen] <= 40)
				continue; /* a probe carries a byte */
			seg(c.port, F_ACK, c.seq, c.ours, 0, 0, NULL, 0);
			answered++;
		}
		usleep(1000);
	}
	seg_wnd = 0xffff;
	ss = stats_now();
	cr_assert_eq(ss.tcp_persist_timeouts, 1,
		     "not reset after %u probes answered with a shut window",
		     answered);
	cr_assert_geq(answered, 1, "no probe");
	cr_assert_eq(read_err(s), -ETIMEDOUT);
	l3x_stream__close(s);
	turns(50);
	down(w, 0);
}

/* A kernel client that reads 4 KiB every 100 ms until EOF or an error. */
struct slow_reader {
	int fd;
	size_t got;
	int err; /* errno of the recv that failed; 0 at EOF */
};

static void *slow_read(void *arg)
{
	struct slow_reader *r = arg;
	char buf[4096];
	ssize_t n;

	for (;;) {
		n = recv(r->fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			r->err = n ? errno : 0;
			return NULL;
		}
		r->got += (size_t)n;
		usleep(100000);
	}
}

Test(guard, linger_counts_from_the_last_ack_that_moved, .timeout = 30)
{
	const size_t total = 96 << 10;
	struct slow_reader r = { 0 };
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	static char data[96 << 10];
	uint64_t t0;
	pthread_t th;
	int err = 0;

	L3X_OPTS(l3x_stack_opts, o, .linger_ms = 500);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	r.fd = client_connect_ex("198.51.100.33", 3003, 0, 4096, 3000, &err);
	cr_assert_geq(r.fd, 0, "connect: %s", strerror(err));
	s = accept_wait(w, 2000);
	cr_assert_not_null(s);
	cr_assert_eq(l3x_stream__write(s, data, total), (long)total);
	t0 = now_ms();
	stream_close(s); /* all of it written; the client reads slowly */
	pthread_create(&th, NULL, slow_read, &r);
	pthread_join(th, NULL);
	ss = stats_now();
	cr_assert_eq(r.err, 0,
		     "the slow reader got %s after %zu of %zu bytes "
		     "in %llu ms (linger_ms 500)",
		     strerror(r.err), r.got, total,
		     (unsigned long long)(now_ms() - t0));
	cr_assert_eq(r.got, total);
	cr_assert_gt(now_ms() - t0, 1000, "read too fast to show anything");
	cr_assert_eq(ss.tcp_aborted, 0);
	close(r.fd);
	expect_clean(1); /* we closed first */
	l3x_worker__close(w);
	stack_down();
}

/* Open a stack on the callback source with lifetime option @i set to a
 * bad value: must fail with EINVAL. */
static void open_bad(unsigned i)
{
	struct l3x_stack *st;

	L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
		 .output = out_keep);
	switch (i) {
	case 0:
		o.tcp_idle_ms = 999;
		break;
	case 1:
		o.persist_timeout_ms = 10;
		break;
	case 2:
		o.tcp_keepalive_cnt = 256;
		break;
	case 3:
		o.tcp_keepalive_intvl_ms = 1u << 23;
		break;
	case 4:
		o.max_time_wait = (1u << 24) + 1;
		break;
	default:
		o.tcp_keepalive_ms = (1u << 30) + 1;
		break;
	}
	st = l3x_stack__open(&o);
	cr_assert_null(st, "bad option %u accepted", i);
	cr_assert_eq(errno, EINVAL, "option %u: %s", i, strerror(errno));
}

Test(guard, lifetime_options_are_checked)
{
	struct l3x_stack *st;
	unsigned i;

	l3x_set_print(NULL);
	for (i = 0; i < 6; i++)
		open_bad(i);
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
			 .output = out_keep, .tcp_idle_ms = L3X_MS_NEVER,
			 .persist_timeout_ms = L3X_MS_NEVER,
			 .max_time_wait = 1);
		st = l3x_stack__open(&o);
		cr_assert_not_null(st, "NEVER refused: %s", strerror(errno));
		cr_assert_eq(l3x_stack__close(st), 0);
	}
}

/* ------------------------------------------------------------ SYN_RCVD */

/* SYNs from @n ports of the client, never acknowledged; their SYN-ACKs
 * checked. */
static void half_open(unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		out_reset();
		seg((uint16_t)(42001 + i), F_SYN, 5000 + i, 0, 0, 0, NULL, 0);
		cr_assert_eq(out_last().flags & (F_SYN | F_ACK), F_SYN | F_ACK,
			     "SYN %u: no SYN-ACK", i);
	}
}

Test(guard, syn_rcvd_is_short_while_the_half_open_table_is_half_full,
     .timeout = 30)
{
	struct l3x_stack_stats ss;
	struct l3x_worker *w;

	L3X_OPTS(l3x_stack_opts, o, .max_half_open = 4);
	up(&o);
	w = worker_open();
	half_open(2); /* 2 of 4: pressure */
	l3x_stack__poll(F.st);
	cr_assert_eq(stats_now().tcp_half_open, 2);
	turns(6000); /* past 4 s and a slow-timer pass, short of 20 s */
	ss = stats_now();
	cr_assert_eq(ss.tcp_half_open, 0, "still half-open after 6 s: %llu",
		     (unsigned long long)ss.tcp_half_open);
	cr_assert_eq(ss.tcp_half_open_expired, 2, "expired %llu, want 2",
		     (unsigned long long)ss.tcp_half_open_expired);
	down(w, 0);
}

Test(guard, syn_rcvd_keeps_its_20_s_without_pressure, .timeout = 30)
{
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	unsigned i;

	L3X_OPTS(l3x_stack_opts, o, .max_half_open = 100);
	up(&o);
	w = worker_open();
	half_open(2); /* 2 of 100: no pressure */
	turns(6000);
	ss = stats_now();
	cr_assert_eq(ss.tcp_half_open, 2, "half-open after 6 s: %llu, want 2",
		     (unsigned long long)ss.tcp_half_open);
	cr_assert_eq(ss.tcp_half_open_expired, 0);
	for (i = 0; i < 2; i++) /* the client gives up: a RST in window */
		seg((uint16_t)(42001 + i), F_RST, 5000 + i + 1, 0, 0, 0, NULL,
		    0);
	turns(50);
	cr_assert_eq(stats_now().tcp_half_open, 0);
	down(w, 0);
}
