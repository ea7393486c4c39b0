/*
 * test_stack_udp.c - UDP flows through the stack in process, the kernel's
 * UDP as the peer over a TUN in a namespace of the test's own (helpers.h
 * says how): echo to many addresses with idle expiry on both sources, a
 * bound socket answering every client, the receive queue bound,
 * fragmented datagrams, and malformed ones dropped and counted.
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

/* ------------------------------------------------------------ udp */

#define UDP_DESTS 6

static const struct {
	const char *ip;
	uint16_t port;
} udp_dests[UDP_DESTS] = {
	{ "198.51.100.1", 53 },		{ "198.51.100.77", 9000 },
	{ "198.51.100.254", 40000 },	{ "2001:db8:100::1", 53 },
	{ "2001:db8:100::abcd", 5353 }, { "2001:db8:100::ffff:7", 7 },
};

/* A client datagram socket that has sent @len bytes of @msg to @dst. */
static int udp_client_send(const struct sockaddr_storage *dst, socklen_t dl,
			   const void *msg, size_t len)
{
	int fd = socket(dst->ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(sendto(fd, msg, len, 0, (const struct sockaddr *)dst, dl),
		     (ssize_t)len, "sendto: %s", strerror(errno));
	return fd;
}

/* The client's reply: @want bytes from exactly @from, within @ms. */
static void udp_client_expect(int fd, const struct sockaddr_storage *from,
			      const void *want, size_t len, int ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	struct sockaddr_storage src;
	socklen_t sl = sizeof(src);
	char buf[2048], a[80], b[80];
	ssize_t r;

	cr_assert_eq(poll(&pf, 1, ms), 1, "no reply from %s",
		     sa_str(from, a, sizeof(a)));
	r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&src, &sl);
	cr_assert_eq(r, (ssize_t)len, "reply of %zd bytes, want %zu", r, len);
	cr_assert_eq(memcmp(buf, want, len), 0, "reply differs");
	cr_assert(sa_eq(&src, from), "reply from %s, sent to %s",
		  sa_str(&src, a, sizeof(a)), sa_str(from, b, sizeof(b)));
}

/* Accept flows and echo what they hold until @n flows have been seen and
 * each has echoed @per datagrams, or @ms pass. */
static int udp_echo_flows(struct l3x_worker *w, struct l3x_udp **flows, int n,
			  int per, int ms)
{
	static int echoed[64];
	uint64_t end = now_ms() + (uint64_t)ms;
	int have = 0, i, done;
	char buf[2048];
	long r;

	memset(echoed, 0, sizeof(echoed));
	for (;;) {
		struct l3x_udp *u;

		while (have < n && (u = l3x_worker__accept_udp(w)))
			flows[have++] = u;
		for (i = 0, done = 0; i < have; i++) {
			while ((r = l3x_udp__recv(flows[i], buf, sizeof(buf))) >
			       0) {
				cr_assert_eq(
					l3x_udp__send(flows[i], buf, (size_t)r),
					r);
				echoed[i]++;
			}
			cr_assert(r == -EAGAIN, "recv: %ld", r);
			done += echoed[i] >= per;
		}
		if ((have == n && done == n) || now_ms() > end)
			return have;
		worker_step(w, 10);
	}
}

static void udp_echo_test(enum l3x_source src)
{
	struct sockaddr_storage dst[UDP_DESTS], got, cli;
	struct l3x_udp *flows[UDP_DESTS];
	struct l3x_stack_stats ss;
	int fd[UDP_DESTS], i, j;
	socklen_t dl[UDP_DESTS], cl;
	char msg[UDP_DESTS][64], a[80], b[80];
	uint64_t end;
	long r;

	L3X_OPTS(l3x_stack_opts, o, .udp_idle_ms = 400);
	stack_up(src, &o, false);
	add_rule_text("udp " NET4);
	add_rule_text("udp " NET6);
	struct l3x_worker *w = worker_open();

	/* One client per destination; each reply must come from the
	 * address and port the client sent to. */
	for (i = 0; i < UDP_DESTS; i++) {
		dl[i] = sa_make(udp_dests[i].ip, udp_dests[i].port, &dst[i]);
		snprintf(msg[i], sizeof(msg[i]), "datagram %d to %s", i,
			 udp_dests[i].ip);
		fd[i] = udp_client_send(&dst[i], dl[i], msg[i], strlen(msg[i]));
	}
	cr_assert_eq(udp_echo_flows(w, flows, UDP_DESTS, 1, 3000), UDP_DESTS,
		     "not every datagram became a flow");
	for (i = 0; i < UDP_DESTS; i++)
		udp_client_expect(fd[i], &dst[i], msg[i], strlen(msg[i]), 5000);

	/* Each flow names its client and the destination it was sent to. */
	for (i = 0; i < UDP_DESTS; i++) {
		cr_assert_gt(l3x_udp__orig_dst_addr(flows[i],
						    (struct sockaddr *)&got,
						    sizeof(got)),
			     0);
		for (j = 0; j < UDP_DESTS; j++)
			if (sa_eq(&got, &dst[j]))
				break;
		cr_assert_lt(j, UDP_DESTS,
			     "flow %d: orig_dst %s sent to by "
			     "nobody",
			     i, sa_str(&got, a, sizeof(a)));
		cl = sizeof(cli);
		cr_assert_eq(getsockname(fd[j], (struct sockaddr *)&cli, &cl),
			     0);
		cr_assert_gt(l3x_udp__client_addr(flows[i],
						  (struct sockaddr *)&got,
						  sizeof(got)),
			     0);
		cr_assert_eq(((struct sockaddr_in *)&got)->sin_port,
			     ((struct sockaddr_in *)&cli)->sin_port,
			     "flow to %s: client %s, socket bound to %s",
			     udp_dests[j].ip, sa_str(&got, a, sizeof(a)),
			     sa_str(&cli, b, sizeof(b)));
	}

	/* A second datagram of each client goes to the same flow. */
	for (i = 0; i < UDP_DESTS; i++)
		cr_assert_eq(sendto(fd[i], msg[i], 5, 0,
				    (struct sockaddr *)&dst[i], dl[i]),
			     5);
	end = now_ms() + 2000;
	for (i = 0; i < UDP_DESTS; i++) {
		char buf[64];

		for (;;) {
			r = l3x_udp__recv(flows[i], buf, sizeof(buf));
			if (r != -EAGAIN || now_ms() > end)
				break;
			worker_step(w, 10);
		}
		cr_assert_eq(r, 5, "flow %d: second datagram: %ld", i, r);
		cr_assert_eq(l3x_udp__send(flows[i], buf, 5), 5);
	}
	for (i = 0; i < UDP_DESTS; i++)
		udp_client_expect(fd[i], &dst[i], msg[i], 5, 2000);
	cr_assert_null(l3x_worker__accept_udp(w), "a known client made a new "
						  "flow");
	/* The engine counts a send after the datagram left: it may come a
	 * moment after the client has it. */
	ss = STATS_WAIT(udp_tx, 2 * UDP_DESTS, 1000);
	cr_assert_eq(ss.udp_flows, UDP_DESTS);
	cr_assert_eq(ss.udp_rx, 2 * UDP_DESTS);
	cr_assert_eq(ss.udp_tx, 2 * UDP_DESTS);
	cr_assert_eq(ss.flows, UDP_DESTS);

	/* Idle for udp_idle_ms: every flow expires, recv says -ETIMEDOUT,
	 * send EPIPE, and closing them leaves nothing behind. */
	ss = STATS_WAIT(udp_expired, UDP_DESTS, 3000);
	cr_assert_eq(ss.udp_expired, UDP_DESTS, "flows expired: %llu",
		     (unsigned long long)ss.udp_expired);
	for (i = 0; i < UDP_DESTS; i++) {
		char buf[8];

		end = now_ms() + 1000;
		while ((r = l3x_udp__recv(flows[i], buf, sizeof(buf))) ==
			       -EAGAIN &&
		       now_ms() < end)
			worker_step(w, 10);
		cr_assert_eq(r, -ETIMEDOUT,
			     "expired flow %d: recv %ld, want "
			     "-ETIMEDOUT",
			     i, r);
		cr_assert_eq(l3x_udp__send(flows[i], buf, 1), -EPIPE);
		l3x_udp__close(flows[i]);
		close(fd[i]);
	}
	/* The engine takes the closes on its next turns. */
	for (end = now_ms() + 2000, ss = stats_now();
	     ss.flows && now_ms() < end; ss = stats_now())
		usleep(1000);
	cr_assert_eq(ss.flows, 0);
	stack_worker_down(w, 0);
}

Test(stack, udp_echo_to_many_addresses_then_idle_expiry_tun, .timeout = 30)
{
	udp_echo_test(L3X_SOURCE_TUN);
}

Test(stack, udp_echo_to_many_addresses_then_idle_expiry_callback, .timeout = 30)
{
	udp_echo_test(L3X_SOURCE_CALLBACK);
}

/* The reference design's per-destination socket: recvfrom names each
 * client, sendto answers it from the bound address. */
Test(stack, udp_bound_socket_answers_every_client, .timeout = 20)
{
	struct sockaddr_storage dst, from, cli;
	struct l3x_stack_stats ss;
	struct l3x_udp *u, *dup;
	socklen_t dl, cl;
	int fd[3], i, got = 0;
	char buf[64];
	uint64_t end;
	long r;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, false);
	add_rule_text("udp " NET4);
	struct l3x_worker *w = worker_open();

	dl = sa_make("198.51.100.53", 53, &dst);
	u = l3x_udp__bind(w, (struct sockaddr *)&dst, dl);
	cr_assert_not_null(u, "bind: %s", strerror(errno));
	errno = 0;
	dup = l3x_udp__bind(w, (struct sockaddr *)&dst, dl);
	cr_assert_null(dup);
	cr_assert_eq(errno, EADDRINUSE);

	for (i = 0; i < 3; i++)
		fd[i] = udp_client_send(&dst, dl, "question", 8);
	end = now_ms() + 3000;
	while (got < 3 && now_ms() < end) {
		r = l3x_udp__recvfrom(u, buf, sizeof(buf),
				      (struct sockaddr *)&from, sizeof(from));
		if (r == -EAGAIN) {
			worker_step(w, 10);
			continue;
		}
		cr_assert_eq(r, 8, "recvfrom: %ld", r);
		cr_assert_eq(l3x_udp__sendto(u, "answer", 6,
					     (struct sockaddr *)&from,
					     sizeof(from)),
			     6);
		got++;
	}
	cr_assert_eq(got, 3, "bound socket got %d of 3 datagrams", got);
	for (i = 0; i < 3; i++) {
		udp_client_expect(fd[i], &dst, "answer", 6, 2000);
		cl = sizeof(cli);
		cr_assert_eq(getsockname(fd[i], (struct sockaddr *)&cli, &cl),
			     0);
		close(fd[i]);
	}
	cr_assert_null(l3x_worker__accept_udp(w),
		       "a datagram to a bound address made a flow");
	/* Wrong family and a flow-only call are refused. */
	sa_make("2001:db8:100::1", 9, &from);
	cr_assert_eq(l3x_udp__sendto(u, "x", 1, (struct sockaddr *)&from,
				     sizeof(from)),
		     -EINVAL);
	cr_assert_eq(l3x_udp__send(u, "x", 1), -EINVAL);
	ss = STATS_WAIT(udp_tx, 3, 1000);
	cr_assert_eq(ss.udp_rx, 3);
	cr_assert_eq(ss.udp_tx, 3);
	cr_assert_eq(ss.udp_flows, 0);
	l3x_udp__close(u);
	stack_worker_down(w, 0);
}

/* An application that stops reading loses the newest datagrams past
 * udp_queue, counted; the queued ones are kept in order. */
Test(stack, udp_queue_bound_drops_and_counts, .timeout = 20)
{
	struct sockaddr_storage dst;
	struct l3x_stack_stats ss;
	struct l3x_udp *u = NULL;
	socklen_t dl;
	char buf[16];
	uint64_t end;
	int fd, i;
	long r;

	L3X_OPTS(l3x_stack_opts, o, .udp_queue = 4);
	stack_up(L3X_SOURCE_CALLBACK, &o, false);
	add_rule_text("udp " NET4);
	struct l3x_worker *w = worker_open();

	dl = sa_make("198.51.100.9", 4444, &dst);
	fd = udp_client_send(&dst, dl, "d0", 2);
	for (i = 1; i < 10; i++) {
		snprintf(buf, sizeof(buf), "d%d", i);
		cr_assert_eq(sendto(fd, buf, 2, 0, (struct sockaddr *)&dst, dl),
			     2);
	}
	ss = STATS_WAIT(udp_rx_dropped, 6, 3000);
	cr_assert_eq(ss.udp_rx_dropped, 6,
		     "dropped %llu of 10 with a queue "
		     "of 4",
		     (unsigned long long)ss.udp_rx_dropped);
	end = now_ms() + 2000;
	while (!(u = l3x_worker__accept_udp(w)) && now_ms() < end)
		worker_step(w, 10);
	cr_assert_not_null(u);
	for (i = 0; i < 4; i++) {
		char want[4];

		r = l3x_udp__recv(u, buf, sizeof(buf));
		snprintf(want, sizeof(want), "d%d", i);
		cr_assert_eq(r, 2, "datagram %d: %ld", i, r);
		cr_assert_eq(memcmp(buf, want, 2), 0,
			     "datagram %d out of "
			     "order",
			     i);
	}
	cr_assert_eq(l3x_udp__recv(u, buf, sizeof(buf)), -EAGAIN);
	l3x_udp__close(u);
	close(fd);
	stack_worker_down(w, 0);
}

/* A datagram larger than the MTU arrives in fragments and is delivered
 * whole; v4 and v6. */
Test(stack, udp_fragmented_datagrams_are_reassembled, .timeout = 20)
{
	static const char *ips[2] = { "198.51.100.99", "2001:db8:100::99" };
	static uint8_t big[6000], buf[8192];
	struct sockaddr_storage dst;
	struct l3x_stack_stats ss;
	socklen_t dl;
	uint64_t end;
	int fd, i, k;
	long r;

	for (i = 0; i < (int)sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + 3);
	L3X_OPTS(l3x_stack_opts, o, .mtu = 1500);
	stack_up(L3X_SOURCE_TUN, &o, false);
	add_rule_text("udp " NET4);
	add_rule_text("udp " NET6);
	struct l3x_worker *w = worker_open();

	for (k = 0; k < 2; k++) {
		struct l3x_udp *u = NULL;

		dl = sa_make(ips[k], 6000, &dst);
		fd = udp_client_send(&dst, dl, big, sizeof(big));
		end = now_ms() + 3000;
		while (!(u = l3x_worker__accept_udp(w)) && now_ms() < end)
			worker_step(w, 10);
		cr_assert_not_null(u, "%s: no flow for a fragmented datagram",
				   ips[k]);
		r = l3x_udp__recv(u, buf, sizeof(buf));
		cr_assert_eq(r, (long)sizeof(big), "%s: datagram of %ld bytes",
			     ips[k], r);
		cr_assert_eq(memcmp(buf, big, sizeof(big)), 0);
		l3x_udp__close(u);
		close(fd);
	}
	ss = stats_now();
	cr_assert_eq(ss.udp_rx, 2);
	stack_worker_down(w, 0);
}

/* ------------------------------------------------------------ malformed */

static int discard_output(void *ctx, const void *pkt, size_t len)
{
	(void)ctx;
	(void)pkt;
	(void)len;
	return 0;
}

/* An IPv4 datagram 203.0.113.9:5000 -> 198.51.100.90:53 in @p: @n bytes of
 * payload, the UDP length field @ulen, a correct checksum, or none (0,
 * which IPv4 allows) when !@sum. Returns the packet's length. */
static size_t make_udp4(uint8_t *p, const char *data, size_t n, uint16_t ulen,
			bool sum)
{
	size_t len = 28 + n;

	memset(p, 0, 28);
	make_ip4(p, 17, (uint8_t[]){ 198, 51, 100, 90 }, len);
	put16(p + 20, 5000);
	put16(p + 22, 53);
	put16(p + 24, ulen);
	memcpy(p + 28, data, n);
	if (!sum)
		return len;
	/* Over what is there, so that only the length field is wrong. */
	put16(p + 26, ip4_l4_csum(p, len));
	return len;
}

/* An IPv6 datagram 2001:db8:99::9:5000 -> 2001:db8:100::90:53: @n bytes of
 * payload, a correct checksum or 0 when !@sum. */
static size_t make_udp6(uint8_t *p, const char *data, size_t n, bool sum)
{
	static const uint8_t src[16] = { 0x20, 0x01, 0x0d,    0xb8,
					 0,    0x99, [15] = 9 };
	static const uint8_t dst[16] = { 0x20, 0x01, 0x0d,	 0xb8,
					 0x01, 0,    [15] = 0x90 };
	size_t ulen = 8 + n;
	uint8_t ph[8] = { 0 };
	uint16_t c;

	memset(p, 0, 48);
	p[0] = 0x60;
	put16(p + 4, ulen);
	p[6] = 17;
	p[7] = 64;
	memcpy(p + 8, src, 16);
	memcpy(p + 24, dst, 16);
	put16(p + 40, 5000);
	put16(p + 42, 53);
	put16(p + 44, ulen);
	memcpy(p + 48, data, n);
	if (!sum)
		return 40 + ulen;
	put16(ph + 2, ulen);
	ph[7] = 17;
	c = csum_fold(csum_partial(
		p + 40, ulen, csum_partial(ph, 8, csum_partial(p + 8, 32, 0))));
	put16(p + 46, c);
	return 40 + ulen;
}

/* Hand @len bytes of @p in, and run a turn. */
static void input(const uint8_t *p, size_t len)
{
	cr_assert_eq(l3x_stack__input(F.st, p, len), 0);
	l3x_stack__poll(F.st);
}

/* A UDP length field that says more, or less, than the IP payload holds,
 * and IPv6 UDP with checksum 0, are dropped and counted; IPv4's checksum 0
 * (none) and good IPv6 datagrams are delivered. */
Test(stack, udp_bad_length_and_ipv6_zero_checksum_are_dropped_and_counted)
{
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	struct l3x_udp *u;
	uint8_t p[128];
	char buf[32];

	L3X_OPTS(l3x_stack_opts, o, .output = discard_output);
	stack_open_callback(&o);
	add_rule_text("udp " NET4);
	add_rule_text("udp " NET6);
	w = worker_open();

	input(p, make_udp4(p, "hello", 5, 8 + 5 + 3, true)); /* says more */
	input(p, make_udp4(p, "hello", 5, 8 + 2, true));     /* says less */
	input(p, make_udp6(p, "hello", 5, false));	     /* no checksum */
	ss = stats_now();
	cr_assert_eq(ss.udp_bad_length, 2, "udp_bad_length %llu",
		     (unsigned long long)ss.udp_bad_length);
	cr_assert_eq(ss.udp6_zero_checksum, 1, "udp6_zero_checksum %llu",
		     (unsigned long long)ss.udp6_zero_checksum);
	cr_assert_eq(ss.rx_bad, 3, "lwIP's own drop counters: %llu",
		     (unsigned long long)ss.rx_bad);
	cr_assert_eq(ss.udp_flows, 0, "a malformed datagram made a flow");
	cr_assert_eq(ss.udp_rx, 0);

	/* The same, well formed: delivered. */
	input(p, make_udp4(p, "v4", 2, 8 + 2, false));
	input(p, make_udp6(p, "v6", 2, true));
	ss = stats_now();
	cr_assert_eq(ss.udp_rx, 2, "good datagrams delivered: %llu",
		     (unsigned long long)ss.udp_rx);
	cr_assert_eq(ss.udp_bad_length, 2);
	cr_assert_eq(ss.udp6_zero_checksum, 1);
	while ((u = l3x_worker__accept_udp(w))) {
		cr_assert_eq(l3x_udp__recv(u, buf, sizeof(buf)), 2);
		cr_assert(!memcmp(buf, "v4", 2) || !memcmp(buf, "v6", 2));
		l3x_udp__close(u);
	}
	l3x_stack__poll(F.st);
	expect_clean(0);
	l3x_worker__close(w);
	l3x_stack__poll(F.st);
	cr_assert_eq(l3x_stack__close(F.st), 0);
}
