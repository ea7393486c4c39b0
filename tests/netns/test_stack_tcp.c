/*
 * test_stack_tcp.c - TCP streams through the stack in process, the
 * kernel's TCP as the peer over a TUN in a namespace of the test's own
 * (helpers.h says how): bit-exact echo on both sources, closing in every
 * order, flow control both ways, stream options and the worker's fd in
 * epoll.
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
#include "helpers.h"

/* ------------------------------------------------------------ echo */

#define ECHO_CONNS 6
#define ECHO_BYTES (3u << 20)

struct echo_cli {
	const char *ip;
	uint16_t port;
	uint64_t seed;
	struct sockaddr_storage local, peer;
	size_t sent, rcvd;
	char err[200];
};

/* Sends its seeded stream, then FIN, and checks that the same bytes come
 * back, then EOF. */
static void *echo_client(void *arg)
{
	struct echo_cli *c = arg;
	uint64_t end = now_ms() + 40000;
	socklen_t sl = sizeof(c->local);
	uint8_t *buf = malloc(65536);
	struct src *x = malloc(sizeof(*x));
	struct sink k;
	const uint8_t *p;
	struct pollfd pf;
	size_t avail;
	bool shut = false;
	ssize_t r;
	int fd;

	fd = client_connect_or_say(c->ip, c->port, c->err, sizeof(c->err));
	if (fd < 0)
		goto out;
	getsockname(fd, (struct sockaddr *)&c->local, &sl);
	sl = sizeof(c->peer);
	getpeername(fd, (struct sockaddr *)&c->peer, &sl);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	src_init(x, c->seed, ECHO_BYTES);
	sink_init(&k, c->seed);
	for (;;) {
		if (now_ms() > end) {
			snprintf(c->err, sizeof(c->err),
				 "timed out: sent %zu, got back %zu", c->sent,
				 k.got);
			break;
		}
		pf = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (!shut)
			pf.events |= POLLOUT;
		poll(&pf, 1, 500);
		if (!shut && (pf.revents & POLLOUT)) {
			p = src_peek(x, &avail);
			r = send(fd, p, avail, MSG_NOSIGNAL);
			if (r > 0)
				x->off += (size_t)r;
			else if (errno != EAGAIN) {
				snprintf(c->err, sizeof(c->err), "send: %s",
					 strerror(errno));
				break;
			}
			c->sent = src_taken(x);
			if (c->sent == ECHO_BYTES) {
				shutdown(fd, SHUT_WR);
				shut = true;
			}
		}
		if (!(pf.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		r = recv(fd, buf, 65536, 0);
		if (r > 0) {
			sink_put(&k, buf, (size_t)r);
			c->rcvd = k.got;
			if (k.bad) {
				snprintf(c->err, sizeof(c->err),
					 "byte %zu came back different",
					 k.bad_at);
				break;
			}
			continue;
		}
		if (r == 0) {
			if (k.got != ECHO_BYTES)
				snprintf(c->err, sizeof(c->err),
					 "EOF after %zu of %u bytes", k.got,
					 ECHO_BYTES);
			break;
		}
		if (errno != EAGAIN) {
			snprintf(c->err, sizeof(c->err), "recv after %zu: %s",
				 k.got, strerror(errno));
			break;
		}
	}
	close(fd);
out:
	free(x);
	free(buf);
	return NULL;
}

struct echo_conn {
	struct l3x_stream *s;
	size_t len, off;
	uint8_t buf[65536];
};

struct echo_srv {
	struct l3x_stack *st;
	int expect;
	atomic_int ready;     /* 1 worker open, -1 failed */
	atomic_bool finished; /* every stream closed (or gave up) */
	atomic_bool release;  /* main has checked memory: close the worker */
	int done;
	char err[200];
	struct {
		struct sockaddr_storage client, dst;
	} seen[ECHO_CONNS * 2];
	int nseen;
};

/* Echo what is readable, as the API asks: until -EAGAIN, and a write that
 * says -EAGAIN waits for L3X_EV_WRITABLE. Returns true once closed. */
static bool echo_serve(struct echo_srv *sv, struct echo_conn *c)
{
	unsigned long long n = 0;
	bool in_write;
	long r;

	r = echo_run(c->s, c->buf, sizeof(c->buf), &c->off, &c->len, &n,
		     &in_write);
	if (r == -EAGAIN)
		return false;
	if (r == 0) {
		l3x_stream__close(c->s);
		return true;
	}
	snprintf(sv->err, sizeof(sv->err), "%s: %s",
		 in_write ? "write" : "read", strerror((int)-r));
	l3x_stream__abort(c->s);
	return true;
}

static void *echo_server(void *arg)
{
	struct echo_srv *sv = arg;
	struct echo_conn *conns[ECHO_CONNS * 2] = { 0 };
	uint64_t end = now_ms() + 45000;
	struct l3x_event ev[64];
	struct l3x_stream *s;
	struct l3x_worker *w;
	struct echo_conn *c;
	int n, i, nconn = 0;

	w = l3x_worker__open(sv->st);
	if (!w) {
		atomic_store(&sv->ready, -1);
		return NULL;
	}
	atomic_store(&sv->ready, 1);
	while (sv->done < sv->expect && now_ms() < end &&
	       !atomic_load(&sv->release)) {
		l3x_worker__wait(w, 50);
		while ((s = l3x_worker__accept(w))) {
			if (nconn == ECHO_CONNS * 2) {
				l3x_stream__abort(s);
				continue;
			}
			c = calloc(1, sizeof(*c));
			c->s = s;
			conns[nconn] = c;
			l3x_stream__set_user(s, (void *)(uintptr_t)(nconn + 1));
			l3x_stream__client_addr(
				s, (struct sockaddr *)&sv->seen[nconn].client,
				sizeof(sv->seen[0].client));
			l3x_stream__orig_dst_addr(
				s, (struct sockaddr *)&sv->seen[nconn].dst,
				sizeof(sv->seen[0].dst));
			sv->nseen = ++nconn;
			if (echo_serve(sv, c)) {
				free(c);
				conns[nconn - 1] = NULL;
				sv->done++;
			}
		}
		n = l3x_worker__poll(w, ev, 64);
		for (i = 0; i < n; i++) {
			int idx = (int)(uintptr_t)ev[i].user - 1;

			c = idx >= 0 ? conns[idx] : NULL;
			if (c && echo_serve(sv, c)) {
				free(c);
				conns[idx] = NULL;
				sv->done++;
			}
		}
	}
	for (i = 0; i < nconn; i++) {
		if (conns[i]) {
			l3x_stream__abort(conns[i]->s);
			free(conns[i]);
		}
	}
	atomic_store(&sv->finished, true);
	/* Keep the worker (and its ring) served until main has looked. */
	while (!atomic_load(&sv->release)) {
		l3x_worker__wait(w, 20);
		while (l3x_worker__poll(w, ev, 64) > 0)
			;
	}
	l3x_worker__close(w);
	return NULL;
}

static void echo_test(enum l3x_source src)
{
	static struct echo_cli cl[ECHO_CONNS] = {
		{ .ip = "198.51.100.10", .port = 80 },
		{ .ip = "198.51.100.11", .port = 443 },
		{ .ip = "198.51.100.200", .port = 5001 },
		{ .ip = "2001:db8:100::1", .port = 80 },
		{ .ip = "2001:db8:100::abcd", .port = 8443 },
		{ .ip = "2001:db8:100::ffff:1", .port = 7 },
	};
	static struct echo_srv sv;
	pthread_t ct[ECHO_CONNS], stid;
	struct l3x_stack_stats ss;
	bool joined = false;
	uint64_t end;
	char a[80], b[80];
	int i, j;

	L3X_OPTS(l3x_stack_opts, o, .mtu = 1500);
	stack_up(src, &o, true);
	sv.st = F.st;
	sv.expect = ECHO_CONNS;
	cr_assert_eq(pthread_create(&stid, NULL, echo_server, &sv), 0);
	end = now_ms() + 2000;
	while (!atomic_load(&sv.ready) && now_ms() < end)
		usleep(1000);
	cr_assert_eq(atomic_load(&sv.ready), 1, "worker did not open");
	for (i = 0; i < ECHO_CONNS; i++) {
		cl[i].seed = 1000 + (uint64_t)i;
		cr_assert_eq(pthread_create(&ct[i], NULL, echo_client, &cl[i]),
			     0);
	}
	for (i = 0; i < ECHO_CONNS; i++)
		pthread_join(ct[i], NULL);
	end = now_ms() + 5000;
	while (!atomic_load(&sv.finished) && now_ms() < end)
		usleep(1000);
	if (!atomic_load(&sv.finished)) {
		atomic_store(&sv.release, true);
		pthread_join(stid, NULL);
		joined = true;
	}
	for (i = 0; i < ECHO_CONNS; i++)
		cr_assert_eq(cl[i].err[0], 0, "client %d to %s port %u: %s", i,
			     cl[i].ip, cl[i].port, cl[i].err);
	cr_assert_eq(sv.err[0], 0, "server: %s", sv.err);
	cr_assert_eq(sv.done, ECHO_CONNS, "server finished %d streams",
		     sv.done);
	cr_assert_eq(sv.nseen, ECHO_CONNS);

	/* Each stream names the client's own address and the address it
	 * connected to. */
	for (i = 0; i < ECHO_CONNS; i++) {
		for (j = 0; j < sv.nseen; j++)
			if (sa_eq(&sv.seen[j].client, &cl[i].local))
				break;
		cr_assert_lt(j, sv.nseen, "no stream has client address %s",
			     sa_str(&cl[i].local, a, sizeof(a)));
		cr_assert(sa_eq(&sv.seen[j].dst, &cl[i].peer),
			  "stream of client %s: orig_dst %s, client connected "
			  "to %s",
			  sa_str(&cl[i].local, a, sizeof(a)),
			  sa_str(&sv.seen[j].dst, b, sizeof(b)), cl[i].ip);
	}
	ss = STATS_WAIT(tcp_closed, ECHO_CONNS, 2000);
	/* Counters are read one by one: the release that lowers flows may
	 * come a moment after the close that raised tcp_closed. */
	for (end = now_ms() + 2000; ss.flows && now_ms() < end;
	     ss = stats_now())
		usleep(1000);
	cr_assert_eq(ss.tcp_accepted, ECHO_CONNS);
	cr_assert_eq(ss.tcp_closed, ECHO_CONNS);
	cr_assert_eq(ss.tcp_aborted, 0);
	cr_assert_eq(ss.tcp_reset_by_client, 0);
	cr_assert_eq(ss.flows, 0);
	cr_assert_eq(ss.tx_dropped, 0);
	cr_assert_geq(ss.rx_bytes, (uint64_t)ECHO_CONNS * ECHO_BYTES);
	cr_assert_geq(ss.tx_bytes, (uint64_t)ECHO_CONNS * ECHO_BYTES);

	expect_clean(0);
	atomic_store(&sv.release, true);
	if (!joined)
		pthread_join(stid, NULL);
	stack_down();
}

Test(stack, echo_is_bit_exact_over_many_connections_tun, .timeout = 60)
{
	echo_test(L3X_SOURCE_TUN);
}

Test(stack, echo_is_bit_exact_over_many_connections_callback, .timeout = 60)
{
	echo_test(L3X_SOURCE_CALLBACK);
}

/* ------------------------------------------------------------ closing */

Test(stack, half_close_lets_each_side_finish_its_direction, .timeout = 20)
{
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	char buf[CHUNK];
	ssize_t r;
	int fd;

	w = stack_worker_up(L3X_SOURCE_TUN);
	fd = connect_accept(w, "198.51.100.20", 2000, &s);

	/* Client -> server, then the client's FIN: read gives 0 after all. */
	cli_to_srv(w, s, fd, 7, 100000);
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	r = sread(w, s, buf, sizeof(buf), 3000);
	cr_assert_eq(r, 0, "read after the client's FIN: %zd", r);
	cr_assert(wait_ev(w, s, L3X_EV_EOF, 1000), "no L3X_EV_EOF reported");
	cr_assert_eq(l3x_stream__read(s, buf, sizeof(buf)), 0,
		     "EOF not sticky");

	/* The server still writes; the client still reads. */
	srv_to_cli(w, s, fd, 8, 300000);

	/* The server's half-close: FIN after the data. */
	cr_assert_eq(l3x_stream__shutdown(s), 0);
	cr_assert_eq(l3x_stream__shutdown(s), -ENOTCONN);
	cr_assert_eq(l3x_stream__write(s, "x", 1), -EPIPE);
	r = recv(fd, buf, sizeof(buf), 0);
	cr_assert_eq(r, 0, "client recv after the server's shutdown: %zd (%s)",
		     r, r < 0 ? strerror(errno) : "data");
	stream_close(s);
	close(fd);

	ss = STATS_WAIT(tcp_closed, 1, 1000);
	cr_expect_eq(ss.tcp_closed, 1,
		     "a stream closed in order (both FINs, all acked) is not "
		     "counted in tcp_closed");
	cr_assert_eq(ss.tcp_aborted, 0);
	cr_assert_eq(ss.tcp_reset_by_client, 0);
	stack_worker_down(w, 0);
}

Test(stack, abort_resets_the_client, .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w;
	int fd;

	w = stack_worker_up(L3X_SOURCE_TUN);
	fd = connect_accept(w, "198.51.100.21", 2001, &s);
	cli_to_srv(w, s, fd, 9, 5000);
	stream_abort(s);
	expect_reset(fd, "after l3x_stream__abort");
	close(fd);
	cr_assert_eq(STATS_WAIT(tcp_aborted, 1, 1000).tcp_aborted, 1);
	cr_assert_eq(stats_now().tcp_closed, 0);
	stack_worker_down(w, 0);
}

Test(stack, client_reset_reads_as_econnreset, .timeout = 20)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct l3x_stream *s;
	struct l3x_worker *w;
	char buf[64];
	int fd;

	w = stack_worker_up(L3X_SOURCE_TUN);
	fd = connect_accept(w, "2001:db8:100::21", 2002, &s);
	cli_to_srv(w, s, fd, 10, 5000);
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd); /* RST */
	cr_assert(wait_ev(w, s, L3X_EV_ERROR, 2000),
		  "no L3X_EV_ERROR after RST");
	cr_assert_eq(l3x_stream__read(s, buf, sizeof(buf)), -ECONNRESET);
	cr_assert_eq(l3x_stream__write(s, "x", 1), -ECONNRESET);
	cr_assert_eq(stats_now().tcp_reset_by_client, 1);
	stream_close(s);
	cr_assert_eq(stats_now().tcp_aborted, 0);
	stack_worker_down(w, 0);
}

Test(stack, close_with_unread_data_resets, .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w;
	char data[1000] = { 1 };
	int fd;

	w = stack_worker_up(L3X_SOURCE_TUN);
	fd = connect_accept(w, "198.51.100.22", 2003, &s);
	cr_assert_eq(send(fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
	cr_assert(wait_ev(w, s, L3X_EV_READABLE, 2000), "data never readable");
	stream_close(s); /* 1000 bytes unread */
	expect_reset(fd, "close with unread data");
	close(fd);
	cr_assert_eq(STATS_WAIT(tcp_aborted, 1, 1000).tcp_aborted, 1);
	cr_assert_eq(stats_now().tcp_closed, 0);
	stack_worker_down(w, 0);
}

Test(stack, server_close_first_sends_data_then_fin_and_leaves_time_wait,
     .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w;
	char buf[64];
	ssize_t r;
	int fd;

	w = stack_worker_up(L3X_SOURCE_CALLBACK);
	fd = connect_accept(w, "198.51.100.23", 2004, &s);
	/* Written, then closed at once: the data must still all arrive. */
	cr_assert_eq(l3x_stream__write(s, "last words", 10), 10);
	stream_close(s);
	r = recv(fd, buf, sizeof(buf), MSG_WAITALL);
	cr_assert_eq(r, 10, "client got %zd bytes", r);
	cr_assert_eq(memcmp(buf, "last words", 10), 0);
	r = recv(fd, buf, sizeof(buf), 0);
	cr_assert_eq(r, 0, "client recv after the server's close: %zd", r);
	close(fd); /* l3x closed first: it keeps TIME_WAIT */
	cr_assert_eq(STATS_WAIT(tcp_closed, 1, 1000).tcp_closed, 1);
	stack_worker_down(w, 1);
}

/* ------------------------------------------------------------ flow control */

/* Send from @x without blocking until the kernel has stopped taking data
 * for 300 ms. Returns the bytes sent. */
static size_t send_until_stall(int fd, struct src *x)
{
	uint64_t end = now_ms() + 8000;
	const uint8_t *p;
	struct pollfd pf;
	size_t avail;
	ssize_t r;

	for (;;) {
		cr_assert_lt(now_ms(), end, "client never stalled");
		p = src_peek(x, &avail);
		cr_assert_gt(avail, 0,
			     "client sent everything: no back-pressure");
		r = send(fd, p, avail, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r > 0) {
			x->off += (size_t)r;
			continue;
		}
		cr_assert(errno == EAGAIN, "send: %s", strerror(errno));
		pf = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (!poll(&pf, 1, 300))
			return src_taken(x);
	}
}

/* What the back-pressure tests move, well past any buffer. */
#define BULK_BYTES (2u << 20)

/* The client's kernel buffer @opt (SO_SNDBUF, SO_RCVBUF) as it is set. */
static int sock_buf(int fd, int opt)
{
	socklen_t sl = sizeof(int);
	int v = 0;

	getsockopt(fd, SOL_SOCKET, opt, &v, &sl);
	return v;
}

Test(stack, slow_reader_holds_the_client_to_rx_buf_then_resumes_in_order,
     .timeout = 30)
{
	const uint32_t rx_buf = 65536;
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	static struct src x;
	int fd, sndbuf;
	size_t sent;

	L3X_OPTS(l3x_stack_opts, o, .rx_buf = rx_buf);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = connect_accept_ex(w, "198.51.100.30", 3000, 32768, 0, &s);
	sndbuf = sock_buf(fd, SO_SNDBUF);

	/* Nobody reads: the window closes at rx_buf. */
	src_init(&x, 21, BULK_BYTES);
	sent = send_until_stall(fd, &x);
	ss = stats_now();
	cr_assert_geq(sent, rx_buf, "client stalled after %zu bytes", sent);
	cr_assert_leq(sent, rx_buf + (size_t)sndbuf + 16384,
		      "client got %zu bytes out: more than rx_buf %u plus its "
		      "own send buffer %d",
		      sent, rx_buf, sndbuf);
	cr_assert_leq(ss.buffered_bytes, rx_buf, "buffered_bytes %llu",
		      (unsigned long long)ss.buffered_bytes);
	cr_expect_gt(ss.buffered_bytes, 0,
		     "buffered_bytes is 0 while %zu bytes wait unread (at "
		     "least %zu of them in l3x)",
		     sent, sent - (size_t)sndbuf);

	/* Read it all: the window reopens, the rest follows, in order. */
	cli_to_srv_from(w, s, fd, &x, 21, 15000);
	close_pair(w, fd, s);
	stack_worker_down(w, 0);
}

/* Write until -EAGAIN, and go on after each L3X_EV_WRITABLE, until none
 * comes for 400 ms. Returns bytes written; *first: at the first -EAGAIN. */
static size_t write_until_stall(struct l3x_worker *w, struct l3x_stream *s,
				struct src *x, size_t *first)
{
	uint64_t end = now_ms() + 8000;
	const uint8_t *p;
	size_t avail;
	long r;

	*first = 0;
	for (;;) {
		cr_assert_lt(now_ms(), end, "server writes never stalled");
		p = src_peek(x, &avail);
		cr_assert_gt(avail, 0, "wrote everything: no back-pressure");
		r = l3x_stream__write(s, p, avail);
		if (r > 0) {
			x->off += (size_t)r;
			continue;
		}
		cr_assert_eq(r, -EAGAIN, "write: %ld", r);
		if (!*first)
			*first = src_taken(x);
		if (!wait_ev(w, s, L3X_EV_WRITABLE, 400))
			return src_taken(x);
	}
}

Test(stack, write_stops_at_tx_buf_and_writable_resumes_it, .timeout = 30)
{
	const uint32_t tx_buf = 65536;
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	static struct src x;
	int fd, rcvbuf, writable;
	size_t written, first;

	L3X_OPTS(l3x_stack_opts, o, .tx_buf = tx_buf);
	stack_up(L3X_SOURCE_CALLBACK, &o, true);
	w = worker_open();
	fd = connect_accept_ex(w, "2001:db8:100::30", 3001, 0, 16384, &s);
	rcvbuf = sock_buf(fd, SO_RCVBUF);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_TX_BUF), tx_buf);

	/* The client does not read: writes stop at tx_buf unacknowledged. */
	src_init(&x, 22, BULK_BYTES);
	written = write_until_stall(w, s, &x, &first);
	ss = stats_now();
	cr_assert_geq(first, tx_buf, "first -EAGAIN after %zu bytes", first);
	cr_assert_leq(written, tx_buf + 2 * (size_t)rcvbuf + 16384,
		      "%zu bytes written: more than tx_buf %u plus what the "
		      "client's receive buffer (%d) holds",
		      written, tx_buf, rcvbuf);
	cr_assert_leq(ss.buffered_bytes, tx_buf, "buffered_bytes %llu",
		      (unsigned long long)ss.buffered_bytes);

	/* The client reads: WRITABLE comes, and the writes complete. */
	writable = srv_to_cli_from(w, s, fd, &x, 22, true, 15000);
	cr_assert_geq(writable, 1, "no L3X_EV_WRITABLE once the client read");
	close_pair(w, fd, s);
	stack_worker_down(w, 0);
}

Test(stack, close_gives_up_after_linger_ms_when_the_client_never_reads,
     .timeout = 30)
{
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	static struct src x;
	struct memsnap ms;
	size_t written, first;
	int fd;

	L3X_OPTS(l3x_stack_opts, o, .linger_ms = 300);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = connect_accept_ex(w, "198.51.100.31", 3002, 0, 16384, &s);
	src_init(&x, 23, 64u << 20);
	written = write_until_stall(w, s, &x, &first);
	stream_close(s); /* data unsent, a zero window: linger */

	ss = STATS_WAIT(tcp_aborted, 1, 2500);
	mem_now(&ms);
	cr_expect_eq(ss.tcp_aborted, 1,
		     "%zu bytes written, closed, the client reads nothing: not "
		     "aborted %u ms after linger_ms (tcp_closed %llu)",
		     written, 2500, (unsigned long long)ss.tcp_closed);
	cr_expect_eq(ms.m.tcp_pcbs, 0,
		     "lwIP still holds %u PCB(s) (%u segments) past linger_ms",
		     ms.m.tcp_pcbs, ms.m.tcp_segs);
	expect_reset(fd, "linger expired");
	close(fd);
	stack_worker_down(w, 0);
}

/* ------------------------------------------------------------ streams */

Test(stack, stream_options_reject_bad_values_and_read_back, .timeout = 20)
{
	struct sockaddr_storage ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	static struct src x;
	struct sink k;
	int fd;
	size_t sent;
	long r;
	char buf[CHUNK];

	w = stack_worker_up(L3X_SOURCE_TUN);
	fd = connect_accept_ex(w, "198.51.100.80", 6000, 32768, 0, &s);

	/* Defaults are the stack's. */
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_NODELAY), 0);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_TX_BUF), 256 * 1024);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_RX_BUF), 256 * 1024);

	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_NODELAY, 2), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_NODELAY, -1), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_TX_BUF, 100), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_TX_BUF, 1l << 31),
		     -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_RX_BUF, 1000), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_RX_BUF, 2l << 20),
		     -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, (enum l3x_stream_opt)99, 1),
		     -EINVAL);
	cr_assert_eq(l3x_stream__getopt(s, (enum l3x_stream_opt)99), -EINVAL);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_TX_BUF), 256 * 1024,
		     "a rejected value changed the option");

	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_NODELAY, 1), 0);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_NODELAY), 1);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_TX_BUF, 100000), 0);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_TX_BUF), 100000);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_RX_BUF, 512 * 1024), 0);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_RX_BUF), 512 * 1024);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_RX_BUF, 128 * 1024), 0);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_RX_BUF), 512 * 1024,
		     "RX_BUF shrank; it only grows");

	l3x_stream__set_user(s, &ss);
	cr_assert_eq(l3x_stream__user(s), &ss);
	cr_assert_eq(l3x_stream__client_addr(s, (struct sockaddr *)&ss, 4),
		     -ENOSPC);
	cr_assert_eq(l3x_stream__orig_dst_addr(s, (struct sockaddr *)&ss,
					       sizeof(ss)),
		     (int)sizeof(struct sockaddr_in));

	/* The larger window is real: an unread stream takes about 512 KiB
	 * before the client stalls (256 KiB would stall well before). */
	src_init(&x, 60, 8u << 20);
	sent = send_until_stall(fd, &x);
	cr_assert_geq(sent, 512 * 1024,
		      "client stalled after %zu bytes with "
		      "RX_BUF 512 KiB",
		      sent);
	sink_init(&k, 60);
	while (k.got < sent) {
		r = sread(w, s, buf, sizeof(buf), 2000);
		cr_assert_gt(r, 0, "read after %zu of %zu: %ld", k.got, sent,
			     r);
		sink_put(&k, (uint8_t *)buf, (size_t)r);
	}
	cr_assert(!k.bad, "byte %zu differs", k.bad_at);
	/* Drain whatever else the client had queued. */
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	for (;;) {
		r = sread(w, s, buf, sizeof(buf), 3000);
		if (r <= 0)
			break;
		sink_put(&k, (uint8_t *)buf, (size_t)r);
	}
	cr_assert_eq(r, 0, "read: %ld", r);
	cr_assert_eq(k.got, src_taken(&x));
	cr_assert(!k.bad, "byte %zu differs", k.bad_at);
	stream_close(s);
	cr_assert_eq(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	stack_worker_down(w, 0);
}

Test(stack, worker_fd_in_epoll_wakes_for_connection_and_data, .timeout = 20)
{
	struct epoll_event ee = { .events = EPOLLIN }, got[4];
	struct l3x_event ev[8];
	struct l3x_stream *s;
	struct l3x_worker *w;
	char buf[16];
	int ep, fd, n, i;
	bool readable = false;

	w = stack_worker_up(L3X_SOURCE_TUN);
	ep = epoll_create1(EPOLL_CLOEXEC);
	cr_assert_geq(ep, 0);
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, l3x_worker__fd(w), &ee), 0);

	/* As the API says: put the fd in epoll, call both after it fires.
	 * Nothing has been called on the worker yet. */
	fd = client_connect("198.51.100.90", 7000);
	n = epoll_wait(ep, got, 4, 2000);
	cr_expect_eq(n, 1,
		     "worker fd did not fire for a new connection on a "
		     "fresh worker");
	s = l3x_worker__accept(w);
	cr_assert_not_null(s, "accept after the wake-up: %s", strerror(errno));
	cr_assert_null(l3x_worker__accept(w));
	while (l3x_worker__poll(w, ev, 8) > 0)
		;

	/* Quiet: no wake-up. */
	n = epoll_wait(ep, got, 4, 200);
	cr_assert_eq(n, 0, "worker fd fired with nothing to do");

	/* Data: a wake-up and a READABLE event. */
	cr_assert_eq(send(fd, "hello", 5, 0), 5);
	n = epoll_wait(ep, got, 4, 2000);
	cr_assert_eq(n, 1, "worker fd did not fire for data");
	cr_assert_null(l3x_worker__accept(w));
	while ((n = l3x_worker__poll(w, ev, 8)) > 0)
		for (i = 0; i < n; i++)
			if (ev[i].stream == s &&
			    (ev[i].events & L3X_EV_READABLE))
				readable = true;
	cr_assert(readable, "no READABLE event after the wake-up");
	cr_assert_eq(l3x_stream__read(s, buf, sizeof(buf)), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	close(ep);
	close_pair(w, fd, s);
	stack_worker_down(w, 0);
}

/* ------------------------------------------------------------ ACK coalescing
 */

/*
 * A bulk upload, client to stream, with ack_coalesce at @ack: bit-exact,
 * and the packets the stack sent (ACKs, window updates) against those it
 * received. *@tx_per_100: stack packets out per 100 in.
 */
static struct l3x_stack_stats bulk_upload(uint32_t ack, unsigned *tx_per_100)
{
	struct l3x_stack_stats s0, ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	static struct src x;
	int fd;

	L3X_OPTS(l3x_stack_opts, o, .ack_coalesce = ack);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = connect_accept(w, "198.51.100.31", 5001, &s);
	s0 = stats_now();
	src_init(&x, 77, 16u << 20);
	cli_to_srv_from(w, s, fd, &x, 77, 20000);
	ss = stats_now();
	close_pair(w, fd, s);
	stack_worker_down(w, 0);
	ss.rx_packets -= s0.rx_packets;
	ss.tx_packets -= s0.tx_packets;
	ss.tcp_ack_deferred -= s0.tcp_ack_deferred;
	*tx_per_100 = (unsigned)(ss.tx_packets * 100 / ss.rx_packets);
	cr_log_info("ack_coalesce %u: %llu packets in, %llu out (%u per 100), "
		    "%llu answers deferred",
		    ack, (unsigned long long)ss.rx_packets,
		    (unsigned long long)ss.tx_packets, *tx_per_100,
		    (unsigned long long)ss.tcp_ack_deferred);
	return ss;
}

/* lwIP alone: an ACK for every second segment, nothing deferred. */
Test(stack, bulk_upload_without_ack_coalescing_acks_every_second_segment,
     .timeout = 40)
{
	struct l3x_stack_stats ss;
	unsigned per100;

	ss = bulk_upload(L3X_ACK_COALESCE_OFF, &per100);
	cr_assert_eq(ss.tcp_ack_deferred, 0);
	cr_assert_geq(per100, 40, "%u packets out per 100 in", per100);
}

/* Coalesced: the same bytes, far fewer packets back. */
Test(stack, bulk_upload_with_ack_coalescing_sends_fewer_acks, .timeout = 40)
{
	struct l3x_stack_stats ss;
	unsigned per100;

	ss = bulk_upload(0, &per100);
	cr_assert_gt(ss.tcp_ack_deferred, 0);
	cr_assert_lt(per100, 40, "%u packets out per 100 in", per100);
}
