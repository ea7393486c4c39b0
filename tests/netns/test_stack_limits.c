/*
 * test_stack_limits.c - the flow budgets in process, the kernel as the
 * peer over a TUN in a namespace of the test's own (helpers.h): TCP and UDP
 * have budgets of their own, so no UDP flood takes TCP's room; a full UDP
 * budget evicts the flows never answered, oldest first, and never an
 * answered one; the per-source and per-/64 caps refuse and count, for TCP
 * and UDP together.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "l3x/l3x.h"
#include "helpers.h"

/* A UDP client (from @src, or the kernel's choice) that has sent @msg to
 * @ip port @port. */
static int udp_from(const char *src, const char *ip, uint16_t port,
		    const char *msg)
{
	struct sockaddr_storage dst, from;
	socklen_t dl = sa_make(ip, port, &dst), fl;
	int fd = socket(dst.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	cr_assert_geq(fd, 0);
	if (src) {
		fl = sa_make(src, 0, &from);
		cr_assert_eq(bind(fd, (struct sockaddr *)&from, fl), 0,
			     "bind %s: %s", src, strerror(errno));
	}
	cr_assert_eq(connect(fd, (struct sockaddr *)&dst, dl), 0);
	cr_assert_eq(send(fd, msg, strlen(msg), 0), (ssize_t)strlen(msg));
	return fd;
}

/* The next UDP flow offered, within @ms. */
static struct l3x_udp *accept_udp_wait(struct l3x_worker *w, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	struct l3x_udp *u;

	while (!(u = l3x_worker__accept_udp(w)) && now_ms() < end)
		worker_step(w, 10);
	return u;
}

/* @u's next datagram within @ms: its length, or the error. */
static long udp_recv_wait(struct l3x_worker *w, struct l3x_udp *u, char *buf,
			  size_t len, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	long r;

	while ((r = l3x_udp__recv(u, buf, len)) == -EAGAIN && now_ms() < end)
		worker_step(w, 10);
	return r;
}

/* The engine takes the application's closes on its next turns. */
static void wait_flows(uint64_t want)
{
	uint64_t end = now_ms() + 2000;
	struct l3x_stack_stats ss = stats_now();

	while (ss.flows != want && now_ms() < end) {
		usleep(1000);
		ss = stats_now();
	}
	cr_assert_eq(ss.flows, want, "%llu flows open, want %llu",
		     (unsigned long long)ss.flows, (unsigned long long)want);
}

/* ------------------------------------------------------------ budgets */

/* A flood of new UDP flows nobody answers fills the UDP budget only, and
 * evicts its own oldest flows: TCP keeps all of its budget. */
Test(limits, udp_flood_never_takes_tcp_room, .timeout = 30)
{
	static const char *const ip[3] = { "198.51.100.61", "198.51.100.62",
					   "198.51.100.63" };
	struct l3x_stream *s[2];
	struct l3x_udp *u[8];
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	int fd[2], ufd[8], i;
	char buf[32], msg[16];
	long r;

	L3X_OPTS(l3x_stack_opts, o, .max_tcp_flows = 2, .max_udp_flows = 3);
	stack_up(L3X_SOURCE_TUN, &o, true);
	add_rule_text("udp " NET4);
	w = worker_open();

	for (i = 0; i < 8; i++) {
		snprintf(msg, sizeof(msg), "flow %d", i);
		ufd[i] = udp_from(NULL, "198.51.100.60", 7000, msg);
		/* one at a time: eviction goes by age */
		STATS_WAIT(udp_flows, (uint64_t)i + 1, 2000);
	}
	ss = stats_now();
	cr_assert_eq(ss.udp_flows, 8, "flows made: %llu",
		     (unsigned long long)ss.udp_flows);
	cr_assert_eq(ss.udp_flows_open, 3);
	cr_assert_eq(ss.udp_evicted, 5);
	cr_assert_eq(ss.udp_refused, 0);

	/* TCP has its whole budget, and no more. */
	ss = two_then_refused(w, ip, 80, fd, s);
	cr_assert_eq(ss.tcp_flows_open, 2);

	/* The application sees every flow: the five oldest give their
	 * datagram, then end as expired ones; the three newest live on. */
	for (i = 0; i < 8; i++) {
		u[i] = accept_udp_wait(w, 2000);
		cr_assert_not_null(u[i], "flow %d not offered", i);
		snprintf(msg, sizeof(msg), "flow %d", i);
		r = l3x_udp__recv(u[i], buf, sizeof(buf));
		cr_assert_eq(r, (long)strlen(msg), "flow %d: recv %ld", i, r);
		cr_assert_eq(memcmp(buf, msg, (size_t)r), 0,
			     "flows offered out of order");
		r = l3x_udp__recv(u[i], buf, sizeof(buf));
		cr_assert_eq(r, i < 5 ? -ETIMEDOUT : -EAGAIN,
			     "flow %d: second recv %ld", i, r);
	}
	for (i = 0; i < 8; i++) {
		l3x_udp__close(u[i]);
		close(ufd[i]);
	}
	close_pair(w, fd[0], s[0]);
	close_pair(w, fd[1], s[1]);
	wait_flows(0);
	stack_worker_down(w, 0);
}

/* A flow that was answered is never evicted; with every flow answered, a
 * new one is refused. */
Test(limits, answered_udp_flows_are_not_evicted, .timeout = 30)
{
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	struct l3x_udp *a, *b, *c;
	struct pollfd pf;
	int fa, fb, fc, fd;
	char buf[32];
	long r;

	L3X_OPTS(l3x_stack_opts, o, .max_udp_flows = 2);
	stack_up(L3X_SOURCE_CALLBACK, &o, false);
	add_rule_text("udp " NET4);
	w = worker_open();

	fa = udp_from(NULL, "198.51.100.70", 53, "a");
	pf = (struct pollfd){ .fd = fa, .events = POLLIN };
	a = accept_udp_wait(w, 2000);
	cr_assert_not_null(a);
	cr_assert_eq(udp_recv_wait(w, a, buf, sizeof(buf), 1000), 1);
	cr_assert_eq(l3x_udp__send(a, "A", 1), 1);
	cr_assert_eq(poll(&pf, 1, 2000), 1, "no answer to the client");
	cr_assert_eq(recv(fa, buf, sizeof(buf), 0), 1);

	/* b is never answered: c takes its place, then d finds no flow it
	 * may evict. */
	fb = udp_from(NULL, "198.51.100.71", 53, "b");
	b = accept_udp_wait(w, 2000);
	cr_assert_not_null(b);
	fc = udp_from(NULL, "198.51.100.72", 53, "c");
	ss = STATS_WAIT(udp_evicted, 1, 2000);
	cr_assert_eq(ss.udp_evicted, 1);
	cr_assert_eq(udp_recv_wait(w, b, buf, sizeof(buf), 1000), 1);
	cr_assert_eq(udp_recv_wait(w, b, buf, sizeof(buf), 1000), -ETIMEDOUT,
		     "the flow never answered was not evicted");
	c = accept_udp_wait(w, 2000);
	cr_assert_not_null(c);
	cr_assert_eq(l3x_udp__send(c, "C", 1), 1);
	STATS_WAIT(udp_tx, 2, 2000); /* c is answered once the engine sent */
	fd = udp_from(NULL, "198.51.100.73", 53, "d");
	ss = STATS_WAIT(udp_refused, 1, 2000);
	cr_assert_eq(ss.udp_refused, 1);
	cr_assert_eq(ss.udp_evicted, 1, "an answered flow was evicted");

	/* a lives on: its client's next datagram reaches it. */
	cr_assert_eq(send(fa, "a2", 2, 0), 2);
	r = udp_recv_wait(w, a, buf, sizeof(buf), 2000);
	cr_assert_eq(r, 2, "the answered flow: recv %ld", r);
	l3x_udp__close(a);
	l3x_udp__close(b);
	l3x_udp__close(c);
	close(fa);
	close(fb);
	close(fc);
	close(fd);
	wait_flows(0);
	stack_worker_down(w, 0);
}

/* ------------------------------------------------------------ caps */

/* Two flows per address, three per IPv6 /64, TCP and UDP counted
 * together; a flow that ends makes room again. */
Test(limits, per_source_caps_refuse_and_count, .timeout = 30)
{
	struct l3x_stream *s[5];
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	struct l3x_udp *u;
	int fd[5], ufd;
	char buf[8];

	L3X_OPTS(l3x_stack_opts, o, .max_flows_per_source = 2,
		 .max_flows_per_source64 = 3);
	stack_up(L3X_SOURCE_TUN, &o, true);
	add_rule_text("udp " NET4);
	sh("ip addr add 10.99.0.2/24 dev " TUN);
	sh("ip -6 addr add fd00:99::2/64 dev " TUN " nodad");
	sh("ip -6 addr add fd00:98::1/64 dev " TUN " nodad");
	w = worker_open();

	/* IPv4: per address. */
	F.client_src = "10.99.0.1";
	fd[0] = connect_accept(w, "198.51.100.80", 80, &s[0]);
	fd[1] = connect_accept(w, "198.51.100.81", 80, &s[1]);
	expect_refused("198.51.100.82", 80);
	ufd = udp_from("10.99.0.1", "198.51.100.83", 53, "x");
	ss = STATS_WAIT(udp_refused_source, 1, 2000);
	cr_assert_eq(ss.tcp_refused_source, 1);
	cr_assert_eq(ss.udp_refused_source, 1, "a UDP flow past the cap");
	cr_assert_null(l3x_worker__accept_udp(w));
	F.client_src = "10.99.0.2";
	fd[2] = connect_accept(w, "198.51.100.82", 80, &s[2]);
	close_pair(w, fd[2], s[2]);

	/* One closes: room for one more from 10.99.0.1. */
	close_pair(w, fd[1], s[1]);
	wait_flows(1);
	cr_assert_eq(send(ufd, "y", 1, 0), 1);
	u = accept_udp_wait(w, 2000);
	cr_assert_not_null(u, "no room after a flow closed");
	cr_assert_eq(udp_recv_wait(w, u, buf, sizeof(buf), 1000), 1);

	/* IPv6: two addresses of one /64 share three flows; another /64
	 * has its own. */
	F.client_src = "fd00:99::1";
	fd[1] = connect_accept(w, "2001:db8:100::80", 80, &s[1]);
	fd[2] = connect_accept(w, "2001:db8:100::81", 80, &s[2]);
	F.client_src = "fd00:99::2";
	fd[3] = connect_accept(w, "2001:db8:100::82", 80, &s[3]);
	expect_refused("2001:db8:100::83", 80);
	ss = stats_now();
	cr_assert_eq(ss.tcp_refused_source, 2);
	F.client_src = "fd00:98::1";
	fd[4] = connect_accept(w, "2001:db8:100::83", 80, &s[4]);
	F.client_src = NULL;

	wait_flows(6); /* the closed ones let go, the UDP flow is open */
	ss = stats_now();
	cr_assert_eq(ss.tcp_accepted, 7);
	cr_assert_eq(ss.tcp_flows_open, 5);
	cr_assert_eq(ss.udp_flows_open, 1);
	l3x_udp__close(u);
	close(ufd);
	close_pair(w, fd[0], s[0]);
	close_pair(w, fd[1], s[1]);
	close_pair(w, fd[2], s[2]);
	close_pair(w, fd[3], s[3]);
	close_pair(w, fd[4], s[4]);
	wait_flows(0);
	stack_worker_down(w, 0);
}
