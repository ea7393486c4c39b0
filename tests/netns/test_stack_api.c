/*
 * test_stack_api.c - the stack's limits (flows, backlog, workers), rule
 * changes on a running stack, and API errors: options refused at open,
 * one stack per process, calls checked against the source and state,
 * l3x_stack__input()'s checks and counters. Over a TUN in a namespace of
 * the test's own where a peer is needed (helpers.h says how).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "l3x/l3x.h"
#include "csum.h"
#include "helpers.h"

/* ------------------------------------------------------------ limits */

Test(stack, max_flows_refuses_the_next_connection, .timeout = 20)
{
	static const char *const ip[3] = { "198.51.100.40", "2001:db8:100::40",
					   "198.51.100.41" };
	struct l3x_stream *s[2], *s3;
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	int fd[2], fd3;

	L3X_OPTS(l3x_stack_opts, o, .max_flows = 2);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	ss = two_then_refused(w, ip, 4000, fd, s);
	cr_assert_eq(ss.flows, 2);
	cr_assert_eq(l3x_worker__accept(w), NULL, "a refused flow was offered");

	/* One closes: there is room again once the client has acknowledged
	 * our FIN (a closing stream still holds its slot until then). */
	close_pair(w, fd[0], s[0]);
	STATS_WAIT(tcp_closed, 1, 2000);
	fd3 = connect_accept(w, "198.51.100.42", 4000, &s3);
	cli_to_srv(w, s3, fd3, 30, 1000);
	ss = stats_now();
	cr_assert_eq(ss.tcp_accepted, 3);
	cr_assert_eq(ss.tcp_refused_flows, 1);
	close_pair(w, fd[1], s[1]);
	close_pair(w, fd3, s3);
	stack_worker_down(w, 0);
}

Test(stack, no_worker_refuses_with_backlog_counter, .timeout = 20)
{
	struct l3x_stack_stats ss;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_CALLBACK, &o, true);
	expect_refused("198.51.100.43", 4001);
	ss = stats_now();
	cr_assert_eq(ss.tcp_refused_backlog, 1);
	cr_assert_eq(ss.tcp_accepted, 0);
	cr_assert_eq(ss.flows, 0);
	expect_clean(0);
	stack_down();
}

Test(stack, backlog_full_refuses_until_accepted, .timeout = 20)
{
	struct l3x_stream *s1, *s3;
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	int fd1, fd3;

	L3X_OPTS(l3x_stack_opts, o, .backlog = 1);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd1 = client_connect("198.51.100.44", 4002);
	cr_assert_eq(STATS_WAIT(tcp_accepted, 1, 2000).tcp_accepted, 1);
	expect_refused("198.51.100.45", 4002); /* nobody accepted fd1 */
	ss = stats_now();
	cr_assert_eq(ss.tcp_refused_backlog, 1);
	cr_assert_eq(ss.tcp_accepted, 1);

	s1 = accept_wait(w, 2000);
	cr_assert_not_null(s1);
	expect_no_accept(w);
	cli_to_srv(w, s1, fd1, 31, 2000);
	fd3 = connect_accept(w, "198.51.100.46", 4002, &s3);
	cr_assert_eq(stats_now().tcp_refused_backlog, 1);
	close_pair(w, fd1, s1);
	close_pair(w, fd3, s3);
	stack_worker_down(w, 0);
}

Test(stack, worker_close_resets_accepted_and_waiting_streams, .timeout = 20)
{
	struct l3x_stream *s1;
	struct l3x_worker *w;
	int fd1, fd2;

	w = stack_worker_up(L3X_SOURCE_TUN);
	fd1 = connect_accept(w, "198.51.100.47", 4003, &s1);
	fd2 = client_connect("198.51.100.48", 4003);
	cr_assert_eq(STATS_WAIT(tcp_accepted, 2, 2000).tcp_accepted, 2);
	log_forget(s1);
	l3x_worker__close(w);
	expect_reset(fd1, "accepted stream of a closed worker");
	expect_reset(fd2, "waiting stream of a closed worker");
	close(fd1);
	close(fd2);
	cr_assert_eq(STATS_WAIT(tcp_aborted, 2, 1000).tcp_aborted, 2);
	cr_assert_eq(stats_now().flows, 0);
	expect_clean(0);
	stack_down();
}

Test(stack, flows_go_round_robin_over_workers, .timeout = 20)
{
	struct l3x_stream *s[4];
	struct l3x_worker *w[2];
	int fd[4], i;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w[0] = worker_open();
	w[1] = worker_open();
	for (i = 0; i < 4; i++) {
		fd[i] = client_connect(i & 1 ? "2001:db8:100::50"
					     : "198.51.100.50",
				       (uint16_t)(5000 + i));
		s[i] = accept_wait(w[i & 1], 2000);
		cr_assert_not_null(s[i],
				   "connection %d not offered to worker %d", i,
				   i & 1);
		cr_assert_null(l3x_worker__accept(w[!(i & 1)]),
			       "connection %d offered to both workers", i);
	}
	for (i = 0; i < 4; i++) {
		cli_to_srv(w[i & 1], s[i], fd[i], 40 + (uint64_t)i, 3000);
		close_pair(w[i & 1], fd[i], s[i]);
	}
	expect_clean(0);
	l3x_worker__close(w[0]);
	l3x_worker__close(w[1]);
	stack_down();
}

/* ------------------------------------------------------------ rules */

Test(stack, packet_outside_the_rules_is_counted_and_unanswered, .timeout = 20)
{
	struct l3x_stack_stats before, after;
	struct sockaddr_storage ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	socklen_t sl;
	int fd, ufd;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, false);
	/* No IPv6 on the TUN: the kernel's own IPv6 chatter (router and
	 * listener reports) would add to rx_no_rule. */
	sh("echo 1 > /proc/sys/net/ipv6/conf/" TUN "/disable_ipv6");
	add_rule_text("tcp 198.51.100.0/24 80");
	w = worker_open();
	usleep(50000);

	before = stats_now();
	fd = client_connect_unanswered("198.51.100.60", 81, 400);
	sl = sa_make("198.51.100.60", 80, &ss);
	ufd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_eq(sendto(ufd, "u", 1, 0, (struct sockaddr *)&ss, sl), 1);
	usleep(100000);
	after = stats_now();
	close(ufd);
	close(fd);
	cr_assert_eq(
		after.rx_no_rule - before.rx_no_rule, 2,
		"rx_no_rule went up by %llu for one SYN to port 81 and one "
		"UDP datagram",
		(unsigned long long)(after.rx_no_rule - before.rx_no_rule));
	cr_assert_eq(after.tx_packets, before.tx_packets, "the stack answered");
	cr_assert_eq(after.tcp_accepted, 0);
	cr_assert_eq(after.rx_bad, before.rx_bad);

	/* The rule itself works. */
	fd = connect_accept(w, "198.51.100.60", 80, &s);
	cli_to_srv(w, s, fd, 50, 1000);
	close_pair(w, fd, s);
	stack_worker_down(w, 0);
}

Test(stack, rules_change_live, .timeout = 20)
{
	struct l3x_stack_stats before, after;
	struct l3x_stream *s;
	struct l3x_worker *w;
	struct l3x_rule r80, bad;
	socklen_t el = sizeof(int);
	struct pollfd pf;
	int fd, err = 0;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_CALLBACK, &o, false);
	w = worker_open();
	cr_assert_eq(l3x_rule__parse(&r80, "tcp 198.51.100.0/24 80", NULL, 0),
		     0);

	/* Added on the running stack: connections come in. */
	cr_assert_eq(l3x_stack__add_rule(F.st, &r80), 0);
	fd = connect_accept(w, "198.51.100.61", 80, &s);
	close_pair(w, fd, s);
	/* Rules steer packets, not flows: the client's ACK of our FIN must
	 * get in before the rule goes. */
	STATS_WAIT(tcp_closed, 1, 2000);

	/* Deleted: new connections get no answer. */
	cr_assert_eq(l3x_stack__del_rule(F.st, &r80), 0);
	before = stats_now();
	fd = client_connect_unanswered("198.51.100.62", 80, 400);
	after = stats_now();
	cr_assert_geq(after.rx_no_rule, before.rx_no_rule + 1);
	cr_assert_eq(after.tcp_accepted, before.tcp_accepted);

	/* Added again: the same connect completes on its SYN retransmit. */
	cr_assert_eq(l3x_stack__add_rule(F.st, &r80), 0);
	pf = (struct pollfd){ .fd = fd, .events = POLLOUT };
	cr_assert_eq(poll(&pf, 1, 3000), 1, "SYN retransmit not answered");
	cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el), 0);
	cr_assert_eq(err, 0, "connect after the rule came back: %s",
		     strerror(err));
	s = accept_wait(w, 2000);
	cr_assert_not_null(s);
	make_blocking(fd);
	close_pair(w, fd, s);
	STATS_WAIT(tcp_closed, 2, 2000);

	/* Absent and bad rules. */
	cr_assert_eq(l3x_stack__del_rule(F.st, &r80), 0);
	cr_assert_eq(l3x_stack__del_rule(F.st, &r80), -ENOENT);
	bad = r80;
	bad.family = 5;
	cr_assert_eq(l3x_stack__add_rule(F.st, &bad), -EINVAL);
	cr_assert_eq(l3x_stack__del_rule(F.st, &bad), -EINVAL);
	bad = r80;
	bad.prefix_len = 33;
	cr_assert_eq(l3x_stack__add_rule(F.st, &bad), -EINVAL);
	bad = r80;
	bad.port_lo = 90;
	bad.port_hi = 80;
	cr_assert_eq(l3x_stack__add_rule(F.st, &bad), -EINVAL);
	cr_assert_eq(l3x_stack__add_rule(F.st, NULL), -EINVAL);
	cr_assert_eq(l3x_stack__add_rule(NULL, &r80), -EINVAL);
	stack_worker_down(w, 0);
}

Test(stack, rules_change_back_to_back_on_a_running_stack, .timeout = 20)
{
	struct l3x_rule r[64];
	char text[64];
	int i, err;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, false);
	for (i = 0; i < 64; i++) {
		snprintf(text, sizeof(text), "tcp 198.51.100.%d %d", i,
			 1000 + i);
		cr_assert_eq(l3x_rule__parse(&r[i], text, NULL, 0), 0);
	}
	/* A control thread adding rules in a row must not see an error the
	 * API does not document (the engine is mid-turn most of the time). */
	for (i = 0; i < 64; i++) {
		err = l3x_stack__add_rule(F.st, &r[i]);
		cr_assert_eq(err, 0, "add rule %d of 64 on a running stack: %s",
			     i, strerror(-err));
	}
	for (i = 0; i < 64; i++) {
		err = l3x_stack__del_rule(F.st, &r[i]);
		cr_assert_eq(err, 0, "del rule %d of 64 on a running stack: %s",
			     i, strerror(-err));
	}
	expect_clean(0);
	stack_down();
}

/* ------------------------------------------------------------ API errors */

/* A callback stack with nowhere to send: no namespace needed. */
static struct l3x_stack *open_cb(struct l3x_stack_opts *o)
{
	o->source = L3X_SOURCE_CALLBACK;
	o->output = null_output;
	return l3x_stack__open(o);
}

/* Open must fail with @want, and leave nothing open. */
static void expect_open_fails(const struct l3x_stack_opts *o, int want,
			      const char *what)
{
	struct l3x_stack *st;
	int e;

	errno = 0;
	st = l3x_stack__open(o);
	e = errno;
	if (st)
		l3x_stack__close(st);
	cr_assert_null(st, "%s: opened", what);
	cr_assert_eq(e, want, "%s: errno %d (%s), want %d", what, e,
		     strerror(e), want);
}

Test(stack, open_rejects_bad_options)
{
	struct {
		struct l3x_stack_opts o;
		uint64_t newer;
	} big;
	struct l3x_stack *st;

	l3x_set_print(NULL);
	expect_open_fails(NULL, EINVAL, "NULL opts (XDP, no interface)");
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_XDP);
		expect_open_fails(&o, EINVAL, "XDP without ifname");
	}
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_TUN);
		expect_open_fails(&o, EINVAL, "TUN without tun_name");
		o.tun_name = "a-name-longer-than-ifnamsiz";
		expect_open_fails(&o, EINVAL, "TUN name too long");
	}
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK);
		expect_open_fails(&o, EINVAL, "callback without output");
	}
	{
		L3X_OPTS(l3x_stack_opts, o, .source = 7, .output = null_output);
		expect_open_fails(&o, EINVAL, "unknown source");
	}
#define BAD_OPT(field, val)                                                    \
	do {                                                                   \
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,     \
			 .output = null_output, .field = (val));               \
		expect_open_fails(&o, EINVAL, #field " = " #val);              \
	} while (0)
	BAD_OPT(mtu, 100);
	BAD_OPT(mtu, 65000);
	BAD_OPT(rx_buf, 2u << 20);
	BAD_OPT(rx_buf, 1000);
	BAD_OPT(tx_buf, 100);
	BAD_OPT(cpu, -2); /* L3X_CPU_NONE (-1) is valid */
	BAD_OPT(cpu, CPU_SETSIZE);
	BAD_OPT(ack_coalesce, 65);
	BAD_OPT(gro, 2);
#undef BAD_OPT

	/* A newer caller's struct: unknown bytes must be zero. */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.source = L3X_SOURCE_CALLBACK;
	big.o.output = null_output;
	big.newer = 1;
	expect_open_fails(&big.o, EINVAL, "unknown non-zero trailing bytes");
	big.newer = 0;
	st = l3x_stack__open(&big.o);
	cr_assert_not_null(st, "zero trailing bytes: %s", strerror(errno));
	cr_assert_eq(l3x_stack__close(st), 0);

	/* An older caller's struct: fields past its sz are not read. */
	big.o.sz = offsetof(struct l3x_stack_opts, mtu);
	big.o.mtu = 100;
	st = l3x_stack__open(&big.o);
	cr_assert_not_null(st, "mtu past sz was read: %s", strerror(errno));
	cr_assert_eq(l3x_stack__close(st), 0);
	big.o.sz = 4;
	expect_open_fails(&big.o, EINVAL, "sz smaller than the sz field");
}

Test(stack, one_stack_per_process_and_close_needs_workers_closed)
{
	struct l3x_stack_stats ss;
	struct l3x_stack *st2;
	struct l3x_worker *w;

	l3x_set_print(NULL);
	{
		L3X_OPTS(l3x_stack_opts, o);
		F.src = L3X_SOURCE_CALLBACK;
		F.st = open_cb(&o);
		cr_assert_not_null(F.st, "open: %s", strerror(errno));
		cr_assert_eq(l3x_stack__mem(F.st, &F.mem0), 0);
	}
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
			 .output = null_output);
		expect_open_fails(&o, EBUSY, "a second stack");
	}
	w = l3x_worker__open(F.st);
	cr_assert_not_null(w);
	cr_assert_geq(l3x_worker__fd(w), 0);
	expect_no_accept(w);
	cr_assert_eq(l3x_worker__poll(w, NULL, 0), 0);
	cr_assert_eq(l3x_worker__wait(w, 0), 0);
	cr_assert_eq(l3x_stack__close(F.st), -EBUSY);
	cr_assert_eq(l3x_stack__stats(F.st, &ss), 0,
		     "stack unusable after "
		     "-EBUSY");
	cr_assert_eq(l3x_stack__poll(F.st), 0, "engine unusable after -EBUSY");
	l3x_worker__close(w);
	expect_clean(0);
	cr_assert_eq(l3x_stack__close(F.st), 0);
	cr_assert_eq(l3x_stack__close(NULL), 0);

	/* Closed: the process may open one again. */
	{
		L3X_OPTS(l3x_stack_opts, o);
		st2 = open_cb(&o);
		cr_assert_not_null(st2, "reopen after close: %s",
				   strerror(errno));
		cr_assert_eq(l3x_stack__close(st2), 0);
	}
}

Test(stack, engine_calls_check_source_and_state, .timeout = 20)
{
	struct l3x_steer_stats sst;
	uint8_t pkt[40] = { 0x45 };

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	cr_assert_eq(l3x_stack__input(F.st, pkt, sizeof(pkt)), -EINVAL,
		     "input on a TUN stack");
	cr_assert_eq(l3x_stack__steer_stats(F.st, &sst), -EOPNOTSUPP);
	cr_assert_eq(l3x_stack__poll(F.st), -EBUSY, "poll while started");
	cr_assert_eq(l3x_stack__start(F.st), -EALREADY);
	cr_assert_eq(l3x_stack__stop(F.st), 0);
	F.running = false;
	cr_assert_eq(l3x_stack__stop(F.st), -EALREADY);
	cr_assert_geq(l3x_stack__poll(F.st), 0, "poll once stopped");
	eng_start();
	expect_clean(0);
	stack_down();
}

static uint8_t cap_pkt[2048];
static size_t cap_len;
static int cap_n;

static int cap_output(void *ctx, const void *pkt, size_t len)
{
	(void)ctx;
	cap_n++;
	cap_len = len < sizeof(cap_pkt) ? len : sizeof(cap_pkt);
	memcpy(cap_pkt, pkt, cap_len);
	return 0;
}

/* IPv4 203.0.113.9 -> 198.51.100.70 carrying @len bytes of @l4 at
 * fragment offset @off (bytes), more fragments to come if @mf. */
static size_t make_ip4_frag(uint8_t *p, const uint8_t *l4, size_t len,
			    size_t off, bool mf)
{
	uint16_t c, fo = (uint16_t)(off / 8 | (mf ? 0x2000 : 0));

	memset(p, 0, 20);
	p[0] = 0x45;
	p[2] = (uint8_t)((20 + len) >> 8);
	p[3] = (uint8_t)(20 + len);
	p[4] = 0x12; /* identification */
	p[6] = (uint8_t)(fo >> 8);
	p[7] = (uint8_t)fo;
	p[8] = 64;
	p[9] = 1;
	memcpy(p + 12, (uint8_t[]){ 203, 0, 113, 9 }, 4);
	memcpy(p + 16, (uint8_t[]){ 198, 51, 100, 70 }, 4);
	c = csum_fold(csum_partial(p, 20, 0));
	p[10] = (uint8_t)(c >> 8);
	p[11] = (uint8_t)c;
	memcpy(p + 20, l4, len);
	return 20 + len;
}

/* An echo request of @len bytes (ICMP header included). */
static void make_echo(uint8_t *icmp, size_t len)
{
	uint16_t c;
	size_t i;

	memset(icmp, 0, 8);
	icmp[0] = 8;
	icmp[5] = 7; /* identifier */
	icmp[7] = 1; /* sequence */
	for (i = 8; i < len; i++)
		icmp[i] = (uint8_t)i;
	c = csum_fold(csum_partial(icmp, len, 0));
	icmp[2] = (uint8_t)(c >> 8);
	icmp[3] = (uint8_t)c;
}

/* lwIP does not fragment (IP_FRAG 0), and an echo reply is as large as
 * its request: a request reassembled past the MTU got a reply past it,
 * handed to the link as one packet (found by tests/fuzz/fuzz_engine,
 * whose output must fit the MTU). Such a packet is dropped and counted in
 * tx_dropped; an echo that fits is answered. */
Test(stack, packets_past_the_mtu_are_dropped_not_sent)
{
	static uint8_t echo[2000], pkt[1500];
	struct l3x_stack_stats ss;
	size_t n;

	l3x_set_print(NULL);
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
			 .output = cap_output);
		F.src = L3X_SOURCE_CALLBACK;
		F.st = l3x_stack__open(&o);
		cr_assert_not_null(F.st, "open: %s", strerror(errno));
		cr_assert_eq(l3x_stack__mem(F.st, &F.mem0), 0);
	}
	add_rule_text("ip 198.51.100.0/24");
	cap_n = 0;
	make_echo(echo, sizeof(echo));
	n = make_ip4_frag(pkt, echo, 1480, 0, true);
	cr_assert_eq(l3x_stack__input(F.st, pkt, n), 0);
	n = make_ip4_frag(pkt, echo + 1480, sizeof(echo) - 1480, 1480, false);
	cr_assert_eq(l3x_stack__input(F.st, pkt, n), 0);
	l3x_stack__poll(F.st);
	ss = stats_now();
	cr_assert_eq(ss.rx_icmp, 1, "the echo request was not reassembled");
	cr_assert_eq(cap_n, 0, "a %zu-byte packet left past a 1500-byte MTU",
		     cap_len);
	cr_assert_eq(ss.tx_dropped, 1, "tx_dropped %llu",
		     (unsigned long long)ss.tx_dropped);

	make_echo(echo, 1480);
	n = make_ip4_frag(pkt, echo, 1480, 0, false);
	cr_assert_eq(l3x_stack__input(F.st, pkt, n), 0);
	l3x_stack__poll(F.st);
	cr_assert_eq(cap_n, 1, "a 1500-byte echo request was not answered");
	cr_assert_eq(cap_len, 1500);
	expect_clean(0);
	cr_assert_eq(l3x_stack__close(F.st), 0);
}

Test(stack, input_checks_its_arguments_and_counts_what_it_drops)
{
	struct l3x_stack_stats ss;
	uint8_t pkt[40], junk[40] = { 0 };

	L3X_OPTS(l3x_stack_opts, o, .output = cap_output);
	stack_open_callback(&o);
	make_tcp4(pkt, 40000, 0x02, 1000, 0, NULL, 0);
	cr_assert_eq(l3x_stack__input(F.st, NULL, 40), -EINVAL);
	cr_assert_eq(l3x_stack__input(F.st, pkt, 0), -EINVAL);
	cr_assert_eq(l3x_stack__input(F.st, pkt, 65536), -EINVAL);
	cr_assert_eq(l3x_stack__input(NULL, pkt, 40), -EINVAL);

	/* Not IP. */
	cr_assert_eq(l3x_stack__input(F.st, junk, sizeof(junk)), 0);
	ss = stats_now();
	cr_assert_eq(ss.rx_not_ip, 1);

	/* No rule yet: dropped and counted, no answer. */
	cr_assert_eq(l3x_stack__input(F.st, pkt, 40), 0);
	l3x_stack__poll(F.st);
	ss = stats_now();
	cr_assert_eq(ss.rx_no_rule, 1);
	cr_assert_eq(cap_n, 0, "answered a packet no rule matched");

	add_rule_text("tcp 198.51.100.0/24 80");

	/* A bad TCP checksum: lwIP drops it; rx_bad counts it. */
	pkt[37] ^= 0x55;
	cr_assert_eq(l3x_stack__input(F.st, pkt, 40), 0);
	l3x_stack__poll(F.st);
	pkt[37] ^= 0x55;
	cr_assert_eq(cap_n, 0, "answered a SYN with a bad checksum");
	ss = stats_now();
	cr_expect_eq(ss.rx_bad, 1, "a SYN with a bad TCP checksum: rx_bad %llu",
		     (unsigned long long)ss.rx_bad);

	/* A good SYN: a SYN-ACK from the original destination. */
	cr_assert_eq(l3x_stack__input(F.st, pkt, 40), 0);
	l3x_stack__poll(F.st);
	cr_assert_eq(cap_n, 1, "no SYN-ACK");
	cr_assert_geq(cap_len, 40);
	cr_assert_eq(memcmp(cap_pkt + 12, pkt + 16, 4), 0,
		     "SYN-ACK not from "
		     "198.51.100.70");
	cr_assert_eq(cap_pkt[33] & 0x12, 0x12, "not a SYN-ACK: flags %#x",
		     cap_pkt[33]);

	/* The client's RST at the exact sequence ends it. */
	make_tcp4(pkt, 40000, 0x04, 1001, 0, NULL, 0);
	cr_assert_eq(l3x_stack__input(F.st, pkt, 40), 0);
	l3x_stack__poll(F.st);
	ss = stats_now();
	cr_assert_eq(ss.tcp_accepted, 0);
	cr_assert_eq(ss.tx_packets, 1);
	/* Each packet in exactly one counter: the bad checksum dropped by
	 * TCP, the SYN and the RST taken by the listener and the flow. */
	cr_expect_eq(ss.rx_tcp_bad, 1);
	cr_expect_eq(ss.rx_tcp_listen, 1);
	cr_expect_eq(ss.rx_tcp_flow, 1);
	cr_expect_eq(ss.rx_packets,
		     ss.rx_not_ip + ss.rx_no_rule + ss.rx_no_memory +
			     ss.rx_ip_bad + ss.rx_frag_held + ss.rx_frag_bad +
			     ss.rx_tcp_flow + ss.rx_tcp_listen +
			     ss.rx_tcp_timewait + ss.rx_tcp_bad + ss.rx_udp +
			     ss.rx_udp_bad + ss.rx_icmp + ss.rx_icmp_bad,
		     "rx_packets %llu is not the sum of the fates",
		     (unsigned long long)ss.rx_packets);
	expect_clean(0);
	cr_assert_eq(l3x_stack__close(F.st), 0);
}
