/*
 * test_stack_defer.c - deferred accept (opts.defer_accept): each new
 * connection reaches the worker as a request before any SYN-ACK, and
 * the answer decides what the client sees. The kernel's TCP is the
 * client over a TUN in a namespace of the test's own (helpers.h): accept
 * (the handshake completes only then, data flows), refuse (ECONNREFUSED),
 * drop (the client hears nothing), and the timeout of a request nobody
 * answers, whether the application took it or not. UDP likewise: the
 * first datagram of a flow is the request (accept delivers what is held,
 * refuse sends ICMP port unreachable, drop hushes the client for a while).
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "l3x/l3x.h"
#include "helpers.h"

/* A stack in request mode on TUN, rules for both prefixes, a worker. */
static struct l3x_worker *defer_up(uint32_t timeout_ms)
{
	L3X_OPTS(l3x_stack_opts, o);

	o.defer_accept = true;
	o.request_timeout_ms = timeout_ms;
	stack_up(L3X_SOURCE_TUN, &o, true);
	return worker_open();
}

/* The client's non-blocking connect: 0 still pending after @ms, else
 * its outcome (0 connected is 1 here, or the errno). */
static int connect_outcome(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t el = sizeof(err);

	if (poll(&p, 1, ms) == 0)
		return 0;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	return err ? err : 1;
}

/* A connect started, its request taken, no SYN-ACK seen for @ms. */
static struct l3x_stream *request_take(struct l3x_worker *w, const char *ip,
				       uint16_t port, int ms, int *fd)
{
	struct l3x_stream *s;

	*fd = client_connect_unanswered(ip, port, 0);
	s = accept_wait(w, 2000);
	cr_assert_not_null(s, "no request for the SYN to %s port %u", ip, port);
	cr_assert_eq(connect_outcome(*fd, ms), 0,
		     "the client connected before the request was answered");
	cr_assert_eq(stats_now().tcp_requests_pending, 1);
	return s;
}

/* After a client gave up: requests its SYN copies made meanwhile (after
 * a drop or a timeout the tuple is new again) are dropped too. */
static void drain_requests(struct l3x_worker *w)
{
	struct l3x_stream *s;

	while ((s = accept_wait(w, 300))) {
		cr_assert_eq(l3x_stream__answer(s, L3X_ANSWER_DROP), 0);
		log_forget(s);
	}
}

Test(defer, accept_completes_the_handshake_only_then_and_data_flows,
     .timeout = 30)
{
	struct sockaddr_storage ca, da;
	struct l3x_request rq;
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w = defer_up(5000);
	char want[64];
	int fd;

	/* Past the client's first SYN retransmit (1 s): the copy makes no
	 * second request and gets no answer. */
	s = request_take(w, "198.51.100.40", 3000, 1500, &fd);
	expect_no_accept(w);
	ss = stats_now();
	cr_assert_eq(ss.tcp_requests, 1, "SYN copies made %lu requests",
		     (unsigned long)ss.tcp_requests);
	cr_assert_eq(ss.tcp_accepted, 0);

	/* The request: the client, the destination, the SYN's options as
	 * Linux sends them. */
	cr_assert_eq(l3x_stream__request(s, &rq), 0);
	cr_expect_gt(rq.mss, 500, "mss %u", rq.mss);
	cr_expect_neq(rq.wscale, 0xff, "no window scale");
	cr_expect_eq(rq.sack, 1);
	cr_expect_eq(rq.ts, 1);
	cr_assert_gt(l3x_stream__orig_dst_addr(s, (struct sockaddr *)&da,
					       sizeof(da)),
		     0);
	cr_assert_str_eq(sa_str(&da, want, sizeof(want)),
			 "198.51.100.40 port 3000");
	cr_assert_gt(
		l3x_stream__client_addr(s, (struct sockaddr *)&ca, sizeof(ca)),
		0);

	/* Written before the answer: sent after the handshake. */
	cr_assert_eq(l3x_stream__write(s, "hello", 5), 5);
	cr_assert_eq(l3x_stream__answer(s, L3X_ANSWER_ACCEPT), 0);
	cr_assert_eq(l3x_stream__answer(s, L3X_ANSWER_ACCEPT), -EALREADY);
	cr_assert_eq(l3x_stream__request(s, &rq), -ENOENT);
	cr_assert_eq(connect_outcome(fd, 2000), 1, "connect after accept");
	make_blocking(fd);
	cr_assert_eq(recv(fd, want, 5, MSG_WAITALL), 5);
	cr_assert_eq(memcmp(want, "hello", 5), 0);
	cli_to_srv(w, s, fd, 21, 200000);
	srv_to_cli(w, s, fd, 22, 200000);
	close_pair(w, fd, s);
	ss = STATS_WAIT(tcp_requests_accepted, 1, 1000);
	cr_assert_eq(ss.tcp_requests_accepted, 1);
	cr_assert_eq(ss.tcp_accepted, 1);
	cr_assert_eq(ss.tcp_requests_pending, 0);
	stack_worker_down(w, 0);
}

/* What the app asks between its accept and the client's ACK (a relay
 * whose upstream answered and closed at once) waits for the handshake. */
Test(defer, write_shutdown_close_right_after_accept_reach_the_client,
     .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w = defer_up(5000);
	char buf[16];
	int fd;

	s = request_take(w, "198.51.100.47", 3008, 100, &fd);
	cr_assert_eq(l3x_stream__answer(s, L3X_ANSWER_ACCEPT), 0);
	cr_assert_eq(l3x_stream__write(s, "bye", 3), 3);
	cr_assert_eq(l3x_stream__shutdown(s), 0);
	stream_close(s);
	cr_assert_eq(connect_outcome(fd, 2000), 1, "connect after accept");
	make_blocking(fd);
	cr_assert_eq(recv(fd, buf, sizeof(buf), MSG_WAITALL), 3,
		     "want 'bye' then EOF");
	cr_assert_eq(memcmp(buf, "bye", 3), 0);
	close(fd);
	cr_assert_eq(STATS_WAIT(tcp_closed, 1, 2000).tcp_closed, 1);
	cr_assert_eq(stats_now().tcp_aborted, 0);
	stack_worker_down(w, 1); /* we closed first: TIME_WAIT */
}

Test(defer, accept_over_ipv6, .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w = defer_up(5000);
	int fd;

	s = request_take(w, "2001:db8:100::40", 3001, 200, &fd);
	cr_assert_eq(l3x_stream__answer(s, L3X_ANSWER_ACCEPT), 0);
	cr_assert_eq(connect_outcome(fd, 2000), 1, "connect after accept");
	make_blocking(fd);
	cli_to_srv(w, s, fd, 23, 100000);
	close_pair(w, fd, s);
	stack_worker_down(w, 0);
}

Test(defer, refuse_gives_the_client_econnrefused, .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w = defer_up(5000);
	int fd;

	s = request_take(w, "198.51.100.41", 3002, 200, &fd);
	cr_assert_eq(l3x_stream__answer(s, L3X_ANSWER_REFUSE), 0);
	log_forget(s);
	cr_assert_eq(connect_outcome(fd, 2000), ECONNREFUSED,
		     "connect after refuse: want ECONNREFUSED");
	close(fd);
	cr_assert_eq(
		STATS_WAIT(tcp_requests_refused, 1, 1000).tcp_requests_refused,
		1);
	cr_assert_eq(stats_now().tcp_requests_pending, 0);
	cr_assert_eq(stats_now().tcp_accepted, 0);
	stack_worker_down(w, 0);
}

Test(defer, drop_leaves_the_client_unanswered, .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w = defer_up(5000);
	int fd;

	s = request_take(w, "198.51.100.42", 3003, 200, &fd);
	cr_assert_eq(l3x_stream__answer(s, L3X_ANSWER_DROP), 0);
	log_forget(s);
	cr_assert_eq(
		STATS_WAIT(tcp_requests_dropped, 1, 1000).tcp_requests_dropped,
		1);
	/* Its SYN copies come as new requests: dropped again, the client
	 * never hears a thing. */
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(connect_outcome(fd, 0), 0,
			     "the client heard an answer after drop");
		drain_requests(w);
	}
	cr_assert_eq(connect_outcome(fd, 0), 0);
	close(fd);
	drain_requests(w);
	cr_assert_eq(stats_now().tcp_accepted, 0);
	cr_assert_eq(stats_now().tcp_requests_pending, 0);
	stack_worker_down(w, 0);
}

Test(defer, closing_an_unanswered_request_drops_it, .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w = defer_up(5000);
	int fd;

	s = request_take(w, "198.51.100.43", 3004, 200, &fd);
	stream_close(s);
	cr_assert_eq(
		STATS_WAIT(tcp_requests_dropped, 1, 1000).tcp_requests_dropped,
		1);
	cr_assert_eq(connect_outcome(fd, 500), 0);
	close(fd);
	drain_requests(w);
	stack_worker_down(w, 0);
}

Test(defer, a_request_taken_and_not_answered_times_out, .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w = defer_up(300);
	char buf[16];
	int fd;

	s = request_take(w, "198.51.100.44", 3005, 0, &fd);
	cr_assert(wait_ev(w, s, L3X_EV_ERROR, 2000),
		  "no L3X_EV_ERROR for a request past its timeout");
	cr_assert_eq(stats_now().tcp_requests_timed_out, 1);
	cr_assert_eq(stats_now().tcp_requests_pending, 0);
	cr_assert_eq(l3x_stream__read(s, buf, sizeof(buf)), -ETIMEDOUT);
	cr_assert_eq(l3x_stream__answer(s, L3X_ANSWER_ACCEPT), -ETIMEDOUT);
	cr_assert_eq(connect_outcome(fd, 0), 0,
		     "the client heard an answer after the timeout");
	close(fd);
	stream_close(s);
	drain_requests(w);
	stack_worker_down(w, 0);
}

Test(defer, a_request_never_taken_times_out_too, .timeout = 20)
{
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w = defer_up(300);
	char buf[16];
	int fd;

	fd = client_connect_unanswered("198.51.100.45", 3006, 0);
	ss = STATS_WAIT(tcp_requests_timed_out, 1, 2000);
	cr_assert_eq(ss.tcp_requests_timed_out, 1,
		     "an application that never answers: no timeout");
	cr_assert_eq(ss.tcp_requests_pending, 0);
	cr_assert_eq(connect_outcome(fd, 0), 0);
	close(fd);
	s = accept_wait(w, 1000);
	cr_assert_not_null(s, "the timed-out request is not to be accepted");
	cr_assert_eq(l3x_stream__read(s, buf, sizeof(buf)), -ETIMEDOUT);
	stream_close(s);
	drain_requests(w);
	stack_worker_down(w, 0);
}

/* The stateless path: past max_half_open a SYN gets a cookie without
 * asking, and the connection made from it is no request. */
Test(defer, past_max_half_open_a_cookie_connection_is_no_request, .timeout = 20)
{
	L3X_OPTS(l3x_stack_opts, o);
	struct l3x_request rq;
	struct l3x_stream *s, *c;
	struct l3x_worker *w;
	int fd, fd2;

	o.defer_accept = true;
	o.max_half_open = 1;
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	s = request_take(w, "198.51.100.48", 3009, 100, &fd);
	fd2 = client_connect("198.51.100.49", 3010);
	c = accept_wait(w, 2000);
	cr_assert_not_null(c, "the cookie connection was not accepted");
	cr_assert_eq(l3x_stream__request(c, &rq), -ENOENT);
	cr_assert_eq(stats_now().tcp_syn_cookies_ok, 1);
	cr_assert_eq(stats_now().tcp_requests, 1);
	close_pair(w, fd2, c);
	cr_assert_eq(l3x_stream__answer(s, L3X_ANSWER_REFUSE), 0);
	log_forget(s);
	cr_assert_eq(connect_outcome(fd, 2000), ECONNREFUSED);
	close(fd);
	stack_worker_down(w, 0);
}

Test(defer, answers_are_checked, .timeout = 20)
{
	struct l3x_request rq;
	struct l3x_stream *s;
	struct l3x_worker *w;
	int fd;

	w = stack_worker_up(L3X_SOURCE_TUN); /* no defer_accept */
	fd = connect_accept(w, "198.51.100.46", 3007, &s);
	cr_assert_eq(l3x_stream__request(s, &rq), -ENOENT);
	cr_assert_eq(l3x_stream__request(s, NULL), -EINVAL);
	cr_assert_eq(l3x_stream__request(NULL, &rq), -EINVAL);
	cr_assert_eq(l3x_stream__answer(s, L3X_ANSWER_ACCEPT), -EINVAL);
	cr_assert_eq(l3x_stream__answer(s, (enum l3x_answer)7), -EINVAL);
	cr_assert_eq(l3x_stream__answer(NULL, L3X_ANSWER_DROP), -EINVAL);
	close_pair(w, fd, s);
	stack_worker_down(w, 0);
}

Test(defer, request_timeout_out_of_range_is_einval, .timeout = 20)
{
	L3X_OPTS(l3x_stack_opts, o);

	netns_own("a TUN device");
	o.source = L3X_SOURCE_TUN;
	o.tun_name = "l3xdef0";
	o.defer_accept = true;
	o.request_timeout_ms = 50;
	cr_assert_null(l3x_stack__open(&o));
	cr_assert_eq(errno, EINVAL);
	o.request_timeout_ms = 20000;
	cr_assert_null(l3x_stack__open(&o));
	cr_assert_eq(errno, EINVAL);
}

/* ------------------------------------------------------------ udp */

/* A stack in request mode on TUN with UDP rules for both prefixes. */
static struct l3x_worker *udp_defer_up(uint32_t timeout_ms)
{
	struct l3x_worker *w = defer_up(timeout_ms);

	add_rule_text("udp " NET4);
	add_rule_text("udp " NET6);
	return w;
}

/* A kernel UDP socket connected to @ip:@port that has sent @msg. */
static int udp_client(const char *ip, uint16_t port, const char *msg)
{
	struct sockaddr_storage dst;
	socklen_t dl = sa_make(ip, port, &dst);
	int fd = socket(dst.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&dst, dl), 0);
	cr_assert_eq(send(fd, msg, strlen(msg), 0), (ssize_t)strlen(msg));
	return fd;
}

/* The request the client's first datagram made, within 2 s. */
static struct l3x_udp *udp_request_take(struct l3x_worker *w)
{
	uint64_t end = now_ms() + 2000;
	struct l3x_udp *u;

	while (!(u = l3x_worker__accept_udp(w)) && now_ms() < end)
		worker_step(w, 20);
	cr_assert_not_null(u, "no UDP request");
	return u;
}

/* What the client's socket hears within @ms: 0 nothing, else the byte
 * count of a datagram (into @buf) or -errno (a pending ICMP error). */
static long udp_client_hears(int fd, char *buf, size_t n, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t r;

	if (poll(&p, 1, ms) == 0)
		return 0;
	r = recv(fd, buf, n, 0);
	return r < 0 ? -errno : r;
}

/* Accept UDP request @u's datagrams, read in order after the accept. */
static void udp_read_expect(struct l3x_worker *w, struct l3x_udp *u,
			    const char *want)
{
	uint64_t end = now_ms() + 2000;
	char buf[64];
	long r;

	while ((r = l3x_udp__recv(u, buf, sizeof(buf))) == -EAGAIN &&
	       now_ms() < end)
		worker_step(w, 20);
	cr_assert_eq(r, (long)strlen(want), "recv %ld, want '%s'", r, want);
	cr_assert_eq(memcmp(buf, want, (size_t)r), 0);
}

Test(defer, udp_accept_delivers_the_held_datagrams_and_replies_go_out,
     .timeout = 20)
{
	struct l3x_worker *w = udp_defer_up(5000);
	struct l3x_stack_stats ss;
	struct l3x_udp *u;
	char buf[64];
	int fd;

	fd = udp_client("198.51.100.50", 5300, "first");
	u = udp_request_take(w);
	cr_assert_eq(send(fd, "second", 6, 0), 6);
	/* Held: nothing to send before the answer, no second request,
	 * nothing back to the client; what came is readable already. */
	worker_step(w, 200);
	cr_assert_null(l3x_worker__accept_udp(w), "a second request");
	cr_assert_eq(l3x_udp__send(u, "x", 1), -ENOTCONN);
	cr_assert_eq(udp_client_hears(fd, buf, sizeof(buf), 0), 0);
	udp_read_expect(w, u, "first");
	cr_assert_eq(l3x_udp__answer(u, L3X_ANSWER_ACCEPT), 0);
	cr_assert_eq(l3x_udp__answer(u, L3X_ANSWER_ACCEPT), -EALREADY);
	udp_read_expect(w, u, "second");
	cr_assert_eq(l3x_udp__send(u, "reply", 5), 5);
	worker_step(w, 50);
	cr_assert_eq(udp_client_hears(fd, buf, sizeof(buf), 2000), 5,
		     "no reply after accept");
	cr_assert_eq(memcmp(buf, "reply", 5), 0);
	ss = stats_now();
	cr_assert_eq(ss.udp_requests, 1);
	cr_assert_eq(ss.udp_flows, 1);
	cr_assert_eq(ss.udp_requests_refused + ss.udp_requests_dropped +
			     ss.udp_requests_timed_out,
		     0);
	close(fd);
	l3x_udp__close(u);
	stack_worker_down(w, 0);
}

static void udp_refuse_test(const char *ip)
{
	struct l3x_worker *w = udp_defer_up(5000);
	struct l3x_udp *u;
	char buf[64];
	int fd;

	fd = udp_client(ip, 5301, "question");
	u = udp_request_take(w);
	/* Read first, as a relay does: the refusal still quotes it. */
	udp_read_expect(w, u, "question");
	cr_assert_eq(l3x_udp__answer(u, L3X_ANSWER_REFUSE), 0);
	worker_step(w, 50);
	cr_assert_eq(udp_client_hears(fd, buf, sizeof(buf), 2000),
		     -ECONNREFUSED, "to %s: want ECONNREFUSED", ip);
	cr_assert_eq(
		STATS_WAIT(udp_requests_refused, 1, 1000).udp_requests_refused,
		1);
	/* The flow is gone: a new datagram is a new request. */
	cr_assert_eq(send(fd, "again", 5, 0), 5);
	u = udp_request_take(w);
	cr_assert_eq(l3x_udp__answer(u, L3X_ANSWER_REFUSE), 0);
	worker_step(w, 50);
	cr_assert_eq(udp_client_hears(fd, buf, sizeof(buf), 2000),
		     -ECONNREFUSED);
	cr_assert_eq(stats_now().udp_requests, 2);
	close(fd);
	stack_worker_down(w, 0);
}

Test(defer, udp_refuse_gives_the_client_econnrefused, .timeout = 20)
{
	udp_refuse_test("198.51.100.51");
}

Test(defer, udp_refuse_over_ipv6_gives_econnrefused, .timeout = 20)
{
	udp_refuse_test("2001:db8:100::51");
}

Test(defer, udp_drop_is_silent_and_retries_make_no_request, .timeout = 20)
{
	struct l3x_worker *w = udp_defer_up(600);
	struct l3x_stack_stats ss;
	struct l3x_udp *u;
	char buf[64];
	int fd, i;

	fd = udp_client("198.51.100.52", 5302, "q0");
	u = udp_request_take(w);
	cr_assert_eq(l3x_udp__answer(u, L3X_ANSWER_DROP), 0);
	cr_assert_eq(
		STATS_WAIT(udp_requests_dropped, 1, 1000).udp_requests_dropped,
		1);
	ss = stats_now();
	for (i = 0; i < 3; i++)
		cr_assert_eq(send(fd, "retry", 5, 0), 5);
	ss = STATS_WAIT(udp_rx_dropped, ss.udp_rx_dropped + 3, 1000);
	worker_step(w, 100);
	cr_assert_null(l3x_worker__accept_udp(w),
		       "a retry within the quiet time made a request");
	cr_assert_eq(ss.udp_requests, 1);
	cr_assert_eq(udp_client_hears(fd, buf, sizeof(buf), 200), 0,
		     "the client heard something after drop");
	/* After the quiet time the client is new again. */
	usleep(800 * 1000);
	cr_assert_eq(send(fd, "later", 5, 0), 5);
	u = udp_request_take(w);
	l3x_udp__close(u); /* closing unanswered: a drop */
	cr_assert_eq(
		STATS_WAIT(udp_requests_dropped, 2, 1000).udp_requests_dropped,
		2);
	cr_assert_eq(udp_client_hears(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	stack_worker_down(w, 0);
}

Test(defer, udp_a_request_not_answered_times_out, .timeout = 20)
{
	struct l3x_worker *w = udp_defer_up(300);
	struct l3x_udp *u;
	char buf[64];
	int fd;

	fd = udp_client("2001:db8:100::53", 5303, "hello");
	u = udp_request_take(w);
	cr_assert(wait_ev(w, (struct l3x_stream *)u, L3X_EV_ERROR, 2000),
		  "no L3X_EV_ERROR for a UDP request past its timeout");
	cr_assert_eq(stats_now().udp_requests_timed_out, 1);
	cr_assert_eq(l3x_udp__recv(u, buf, sizeof(buf)), -ETIMEDOUT);
	cr_assert_eq(l3x_udp__answer(u, L3X_ANSWER_ACCEPT), -ETIMEDOUT);
	cr_assert_eq(udp_client_hears(fd, buf, sizeof(buf), 0), 0);
	log_forget((struct l3x_stream *)u);
	l3x_udp__close(u);
	close(fd);
	stack_worker_down(w, 0);
}

Test(defer, udp_answers_are_checked, .timeout = 20)
{
	struct l3x_worker *w;
	struct l3x_udp *u;
	int fd;

	w = stack_worker_up(L3X_SOURCE_TUN); /* no defer_accept */
	add_rule_text("udp " NET4);
	fd = udp_client("198.51.100.54", 5304, "x");
	u = udp_request_take(w);
	cr_assert_eq(l3x_udp__answer(u, L3X_ANSWER_ACCEPT), -EINVAL);
	cr_assert_eq(l3x_udp__answer(NULL, L3X_ANSWER_DROP), -EINVAL);
	cr_assert_eq(l3x_udp__answer(u, (enum l3x_answer)7), -EINVAL);
	cr_assert_eq(stats_now().udp_requests, 0);
	l3x_udp__close(u);
	close(fd);
	stack_worker_down(w, 0);
}
