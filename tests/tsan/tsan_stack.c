// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tsan_stack.c - the engine -> worker handoff under ThreadSanitizer: a
 * stack in process on a TUN device in a network namespace of its own, the
 * kernel's TCP and UDP as clients (threads of this process), and worker
 * threads that accept, read, write, close and see resets, while the
 * engine runs on a thread of its own. Two runs, each in a child process
 * (lwIP keeps its state in globals: one stack per process):
 *   tun       L3X_SOURCE_TUN: the engine thread is the stack's
 *             (l3x_stack__start);
 *   callback  L3X_SOURCE_CALLBACK: our pump thread reads the TUN into
 *             l3x_stack__input() and calls l3x_stack__poll(), and
 *             opts.output writes back into the TUN.
 * Flows, spread over the workers round-robin:
 *   - echo: the client sends a seeded stream while reading it back, then
 *     FIN; the worker reads until EOF and closes (LAST_ACK);
 *   - reset: the client sends half as much, reads some of it back, then
 *     resets (SO_LINGER 0) with the rest unread; the worker reads or
 *     writes -ECONNRESET and closes;
 *   - greet (port GREET_PORT): the worker writes a seeded stream and
 *     closes first, with data still queued (linger, then TIME_WAIT);
 *   - UDP: seeded datagrams echoed one by one; "END" closes the flow.
 * Everything is checked (bytes, counters, the stack's memory back to its
 * start); TSan checks every access between the threads. criterion cannot
 * start under TSan, hence a program (make tsan).
 *
 * Prints "ok NAME", "not ok NAME: why" or "skip NAME: reason" lines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "l3x/l3x.h"
#include "../netns/harness.h"

#define TUN	    "l3x0"
#define NET4	    "198.51.100.0/24"
#define NET6	    "2001:db8:100::/64"
#define WORKERS	    2
#define TCP_CLI	    4 /* client threads, connections one after another */
#define TCP_CONNS   9 /* per client thread */
#define ECHO_BYTES  (256u << 10)
#define GREET_PORT  7777
#define GREET_BYTES (160u << 10)
#define UDP_CLI	    2 /* client threads */
#define UDP_FLOWS   3 /* per client thread, one socket each */
#define UDP_DGRAMS  40
#define RUN_MS	    90000 /* give up: something is stuck */

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* The first failure of the run, for its "not ok" line. */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char err_msg[256];

static void fail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&err_lock);
	if (!err_msg[0]) {
		va_start(ap, fmt);
		vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&err_lock);
}

static bool failed(void)
{
	bool f;

	pthread_mutex_lock(&err_lock);
	f = err_msg[0] != 0;
	pthread_mutex_unlock(&err_lock);
	return f;
}

/* ------------------------------------------------------------ seeded data */

/* Byte @i of the stream of @seed: both ends compute it. */
static uint8_t seed_byte(uint64_t seed, uint64_t i)
{
	uint64_t x = (seed + 1) * 0x9e3779b97f4a7c15ull + (i >> 3);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (uint8_t)(x >> ((i & 7) * 8));
}

static void seed_fill(uint64_t seed, uint64_t off, uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = seed_byte(seed, off + i);
}

/* The offset of the first byte of @p that differs, or -1. */
static long seed_check(uint64_t seed, uint64_t off, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != seed_byte(seed, off + i))
			return (long)(off + i);
	return -1;
}

/* ------------------------------------------------------------ the stack */

struct run {
	enum l3x_source src;
	struct l3x_stack *st;
	int tun_fd;	      /* callback source */
	struct tun_pump pump; /* callback source: the engine thread */
	atomic_bool stop;     /* clients are done: workers finish */
	atomic_int workers_ready;
	/* what the workers saw */
	atomic_uint echo_closed, resets_seen, greets_closed, udp_closed;
	atomic_ullong bytes_echoed, dgrams_echoed;
};

static struct run R = { .tun_fd = -1 };

static int sh(const char *cmd)
{
	int r = system(cmd);

	if (r)
		fail("command failed (%d): %s", r, cmd);
	return r;
}

static int tun_create(void)
{
	int fd, err;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	err = tun_attach(fd, TUN);
	if (err) {
		fail("TUNSETIFF: %s", strerror(-err));
		close(fd);
		return -1;
	}
	return fd;
}

static int eng_start(void)
{
	if (R.src == L3X_SOURCE_TUN)
		return l3x_stack__start(R.st);
	return -tun_pump_start(&R.pump, R.st, R.tun_fd);
}

static void eng_stop(void)
{
	if (R.src == L3X_SOURCE_TUN) {
		l3x_stack__stop(R.st);
		return;
	}
	tun_pump_stop(&R.pump);
}

static int add_rule(const char *text)
{
	struct l3x_rule r;

	if (l3x_rule__parse(&r, text, NULL, 0) ||
	    l3x_stack__add_rule(R.st, &r)) {
		fail("rule %s refused", text);
		return -1;
	}
	return 0;
}

/* The stack on R.src in this (new) namespace, both prefixes routed to the
 * TUN and steered to it. */
static int stack_up(void)
{
	L3X_OPTS(l3x_stack_opts, o, .source = R.src, .cpu = L3X_CPU_NONE,
		 .mtu = 1500, .tx_buf = 64 << 10, .linger_ms = 20000);

	if (R.src == L3X_SOURCE_TUN) {
		o.tun_name = TUN;
	} else {
		R.tun_fd = tun_create();
		if (R.tun_fd < 0)
			return -1;
		o.output = tun_output;
		o.output_ctx = &R.tun_fd;
	}
	R.st = l3x_stack__open(&o);
	if (!R.st) {
		fail("l3x_stack__open: %s", strerror(errno));
		return -1;
	}
	if (sh("ip link set " TUN " mtu 1500 up") ||
	    sh("ip addr add 10.99.0.1/24 dev " TUN) ||
	    sh("ip -6 addr add fd00:99::1/64 dev " TUN " nodad") ||
	    sh("ip route add " NET4 " dev " TUN) ||
	    sh("ip -6 route add " NET6 " dev " TUN))
		return -1;
	if (add_rule("tcp " NET4) || add_rule("tcp " NET6) ||
	    add_rule("udp " NET4) || add_rule("udp " NET6))
		return -1;
	return 0;
}

/* ------------------------------------------------------------ workers */

enum { C_ECHO, C_GREET };

struct conn {
	struct l3x_stream *s;
	int mode;
	uint64_t seed; /* greet */
	size_t len, off, sent;
	uint8_t buf[16384];
	struct conn *next;
};

struct ucon {
	struct l3x_udp *u;
	struct ucon *next;
};

struct worker {
	struct l3x_worker *w;
	struct conn *conns;
	struct ucon *ucons;
	unsigned open;
};

static void conn_free(struct worker *wk, struct conn *c)
{
	struct conn **pp;

	for (pp = &wk->conns; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	free(c);
	wk->open--;
}

/* Echo until -EAGAIN; true once the stream is closed. */
static bool serve_echo(struct conn *c)
{
	unsigned long long n = 0;
	bool in_write;
	long r;

	r = echo_run(c->s, c->buf, sizeof(c->buf), &c->off, &c->len, &n,
		     &in_write);
	atomic_fetch_add(&R.bytes_echoed, n);
	if (r == -EAGAIN)
		return false;
	if (r == 0) {
		l3x_stream__close(c->s);
		atomic_fetch_add(&R.echo_closed, 1);
		return true;
	}
	/* A reset by the client: what the reset flows do. */
	if (r == -ECONNRESET)
		atomic_fetch_add(&R.resets_seen, 1);
	else
		fail("echo stream: %s", strerror((int)-r));
	l3x_stream__close(c->s);
	return true;
}

/* Write the seeded stream, then close with part of it still queued. */
static bool serve_greet(struct conn *c)
{
	size_t n;
	long r;

	while (c->sent < GREET_BYTES) {
		n = GREET_BYTES - c->sent;
		if (n > sizeof(c->buf))
			n = sizeof(c->buf);
		seed_fill(c->seed, c->sent, c->buf, n);
		r = l3x_stream__write(c->s, c->buf, n);
		if (r == -EAGAIN)
			return false;
		if (r < 0) {
			fail("greet stream: write: %s", strerror((int)-r));
			l3x_stream__abort(c->s);
			return true;
		}
		c->sent += (size_t)r;
	}
	l3x_stream__close(c->s);
	atomic_fetch_add(&R.greets_closed, 1);
	return true;
}

static void serve(struct worker *wk, struct conn *c)
{
	bool done = c->mode == C_GREET ? serve_greet(c) : serve_echo(c);

	if (done)
		conn_free(wk, c);
}

static void accept_streams(struct worker *wk)
{
	struct sockaddr_storage dst, cli;
	struct l3x_stream *s;
	struct conn *c;

	while ((s = l3x_worker__accept(wk->w))) {
		c = calloc(1, sizeof(*c));
		if (!c)
			abort();
		c->s = s;
		if (l3x_stream__orig_dst_addr(s, (void *)&dst, sizeof(dst)) <
			    0 ||
		    l3x_stream__client_addr(s, (void *)&cli, sizeof(cli)) < 0)
			fail("stream without addresses");
		if (ntohs(((struct sockaddr_in *)&dst)->sin_port) ==
		    GREET_PORT) {
			c->mode = C_GREET;
			/* The client's port seeds its stream. */
			c->seed = ntohs(((struct sockaddr_in *)&cli)->sin_port);
		}
		c->next = wk->conns;
		wk->conns = c;
		wk->open++;
		l3x_stream__set_user(s, c);
		serve(wk, c);
	}
}

static void ucon_close(struct worker *wk, struct ucon *uc)
{
	struct ucon **pp;

	for (pp = &wk->ucons; *pp != uc; pp = &(*pp)->next)
		;
	*pp = uc->next;
	l3x_udp__close(uc->u);
	free(uc);
	wk->open--;
}

/* Echo every datagram waiting; "END" is echoed, then closes the flow. */
static void serve_udp(struct worker *wk, struct ucon *uc)
{
	uint8_t buf[2048];
	long n, r;

	while ((n = l3x_udp__recv(uc->u, buf, sizeof(buf))) >= 0) {
		r = l3x_udp__send(uc->u, buf, (size_t)n);
		if (r != n) {
			fail("udp send of %ld bytes: %ld", n, r);
			break;
		}
		atomic_fetch_add(&R.dgrams_echoed, 1);
		if (n == 3 && !memcmp(buf, "END", 3)) {
			atomic_fetch_add(&R.udp_closed, 1);
			ucon_close(wk, uc);
			return;
		}
	}
	if (n != -EAGAIN) {
		fail("udp recv: %s", strerror((int)-n));
		ucon_close(wk, uc);
	}
}

static void accept_udp(struct worker *wk)
{
	struct l3x_udp *u;
	struct ucon *uc;

	while ((u = l3x_worker__accept_udp(wk->w))) {
		uc = calloc(1, sizeof(*uc));
		if (!uc)
			abort();
		uc->u = u;
		uc->next = wk->ucons;
		wk->ucons = uc;
		wk->open++;
		l3x_udp__set_user(u, uc);
		serve_udp(wk, uc);
	}
}

static void *worker_main(void *arg)
{
	struct worker wk = { 0 };
	struct l3x_event ev[32];
	uint64_t end = now_ms() + RUN_MS;
	int n, i;

	(void)arg;
	wk.w = l3x_worker__open(R.st);
	if (!wk.w) {
		fail("l3x_worker__open: %s", strerror(errno));
		atomic_fetch_add(&R.workers_ready, 1);
		return NULL;
	}
	atomic_fetch_add(&R.workers_ready, 1);
	while ((!atomic_load(&R.stop) || wk.open) && now_ms() < end) {
		l3x_worker__wait(wk.w, 20);
		accept_streams(&wk);
		accept_udp(&wk);
		while ((n = l3x_worker__poll(wk.w, ev, 32)) > 0) {
			for (i = 0; i < n; i++) {
				if (ev[i].kind == L3X_FLOW_UDP)
					serve_udp(&wk, ev[i].user);
				else
					serve(&wk, ev[i].user);
			}
		}
	}
	if (wk.open)
		fail("a worker still had %u flows open", wk.open);
	while (wk.conns) {
		l3x_stream__abort(wk.conns->s);
		conn_free(&wk, wk.conns);
	}
	while (wk.ucons)
		ucon_close(&wk, wk.ucons);
	l3x_worker__close(wk.w);
	return NULL;
}

/* ------------------------------------------------------------ clients */

static const char *const dst4[] = { "198.51.100.10", "198.51.100.77",
				    "198.51.100.200" };
static const char *const dst6[] = { "2001:db8:100::1", "2001:db8:100::beef",
				    "2001:db8:100::ffff:1" };

static socklen_t sa_make(int i, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (i & 1) {
		struct sockaddr_in6 *a = (void *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		inet_pton(AF_INET6, dst6[(i / 2) % 3], &a->sin6_addr);
		return sizeof(*a);
	} else {
		struct sockaddr_in *a = (void *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		inet_pton(AF_INET, dst4[(i / 2) % 3], &a->sin_addr);
		return sizeof(*a);
	}
}

static int tcp_connect(int i, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sa_make(i, port, &ss);
	int fd = socket(ss.ss_family, SOCK_STREAM, 0);
	struct timeval tv = { .tv_sec = 10 };

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, sl)) {
		fail("connect to port %u: %s", port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Send the seeded stream while reading it back; @reset: stop half way
 * and reset with the echo unread. */
static void client_echo(int i, uint16_t port, uint64_t seed, bool reset)
{
	static _Thread_local uint8_t out[16384], in[16384];
	size_t limit = reset ? ECHO_BYTES / 2 : ECHO_BYTES;
	size_t sent = 0, got = 0, n;
	uint64_t end = now_ms() + RUN_MS / 2;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct pollfd pf;
	ssize_t r;
	long bad;
	int fd = tcp_connect(i, port);

	if (fd < 0)
		return;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (now_ms() < end) {
		/* Reset once some of the echo came back, the rest unread. */
		if (reset && sent == limit && got >= limit / 2) {
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(fd);
			return;
		}
		pf = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (sent < limit)
			pf.events |= POLLOUT;
		poll(&pf, 1, 200);
		if (sent < limit && (pf.revents & POLLOUT)) {
			n = limit - sent < sizeof(out) ? limit - sent
						       : sizeof(out);
			seed_fill(seed, sent, out, n);
			r = send(fd, out, n, MSG_NOSIGNAL);
			if (r > 0)
				sent += (size_t)r;
			else if (errno != EAGAIN)
				break;
			if (sent == limit && !reset)
				shutdown(fd, SHUT_WR);
		}
		if (!(pf.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		r = recv(fd, in, sizeof(in), 0);
		if (r > 0) {
			bad = seed_check(seed, got, in, (size_t)r);
			if (bad >= 0) {
				fail("echo: byte %ld came back different", bad);
				break;
			}
			got += (size_t)r;
			continue;
		}
		if (r == 0) {
			if (got != ECHO_BYTES)
				fail("echo: EOF after %zu of %u bytes", got,
				     ECHO_BYTES);
			close(fd);
			return;
		}
		if (errno != EAGAIN)
			break;
	}
	fail("echo to port %u: sent %zu, got back %zu: %s", port, sent, got,
	     now_ms() >= end ? "timed out" : strerror(errno));
	close(fd);
}

/* Read the worker's seeded stream to its EOF. */
static void client_greet(int i)
{
	static _Thread_local uint8_t in[16384];
	struct sockaddr_storage me;
	socklen_t sl = sizeof(me);
	size_t got = 0;
	uint64_t seed;
	ssize_t r;
	int fd = tcp_connect(i, GREET_PORT);

	if (fd < 0)
		return;
	getsockname(fd, (struct sockaddr *)&me, &sl);
	seed = ntohs(((struct sockaddr_in *)&me)->sin_port);
	while ((r = recv(fd, in, sizeof(in), 0)) > 0) {
		if (seed_check(seed, got, in, (size_t)r) >= 0) {
			fail("greet: the stream differs near byte %zu", got);
			break;
		}
		got += (size_t)r;
	}
	if (r < 0)
		fail("greet: recv after %zu bytes: %s", got, strerror(errno));
	else if (got != GREET_BYTES)
		fail("greet: EOF after %zu of %u bytes", got, GREET_BYTES);
	close(fd);
}

/* Connection k of client @id: 1 in 3 resets, 1 in 3 is greeted. */
static void *tcp_client(void *arg)
{
	int id = (int)(intptr_t)arg, k, i;

	for (k = 0; k < TCP_CONNS && !failed(); k++) {
		i = id * TCP_CONNS + k;
		switch (k % 3) {
		case 0:
			client_echo(i, (uint16_t)(1000 + i), (uint64_t)i,
				    false);
			break;
		case 1:
			client_echo(i, (uint16_t)(2000 + i), (uint64_t)i, true);
			break;
		default:
			client_greet(i);
			break;
		}
	}
	return NULL;
}

/* Datagram @j of flow @seed: its size and bytes. */
static size_t dgram(uint64_t seed, int j, uint8_t *buf)
{
	size_t n = 1 + (size_t)seed_byte(seed, (uint64_t)j * 7) * 5;

	seed_fill(seed, (uint64_t)j << 16, buf, n);
	return n;
}

/* A few UDP flows, datagram by datagram, each echoed before the next. */
static void *udp_client(void *arg)
{
	int id = (int)(intptr_t)arg, f, j, fd, tries;
	struct timeval tv = { .tv_sec = 1 };
	uint8_t out[2048], in[2048];
	struct sockaddr_storage ss;
	uint64_t seed;
	socklen_t sl;
	ssize_t r = -1;
	size_t n;

	for (f = 0; f < UDP_FLOWS && !failed(); f++) {
		seed = 100000 + (uint64_t)(id * UDP_FLOWS + f);
		sl = sa_make(id * UDP_FLOWS + f, (uint16_t)(5300 + f), &ss);
		fd = socket(ss.ss_family, SOCK_DGRAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl)) {
			fail("udp socket: %s", strerror(errno));
			return NULL;
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		for (j = 0; j <= UDP_DGRAMS && !failed(); j++) {
			if (j == UDP_DGRAMS) {
				memcpy(out, "END", 3);
				n = 3;
			} else {
				n = dgram(seed, j, out);
			}
			/* The TUN's queue may drop one under load: send
			 * again, a few times; an echo of an earlier one is
			 * skipped. */
			for (tries = 0; tries < 5; tries++) {
				if (send(fd, out, n, 0) != (ssize_t)n)
					break;
				while ((r = recv(fd, in, sizeof(in), 0)) >= 0)
					if (r == (ssize_t)n &&
					    !memcmp(in, out, n))
						break;
				if (r >= 0)
					break;
			}
			if (tries == 5 || r < 0)
				fail("udp flow %llu: datagram %d of %zu bytes "
				     "not echoed (%s)",
				     (unsigned long long)seed, j, n,
				     strerror(errno));
		}
		close(fd);
	}
	return NULL;
}

/* ------------------------------------------------------------ a run */

/* Counters and memory back where they were once every flow is done. */
static void check_end(const struct l3x_stack_mem *mem0)
{
	struct l3x_stack_stats s;
	struct l3x_stack_mem m;
	uint64_t end = now_ms() + 5000;
	unsigned echo = 0, resets = 0, greets = 0, k;

	for (k = 0; k < TCP_CLI * TCP_CONNS; k++) {
		if (k % TCP_CONNS % 3 == 0)
			echo++;
		else if (k % TCP_CONNS % 3 == 1)
			resets++;
		else
			greets++;
	}
	if (atomic_load(&R.echo_closed) != echo ||
	    atomic_load(&R.resets_seen) != resets ||
	    atomic_load(&R.greets_closed) != greets ||
	    atomic_load(&R.udp_closed) != UDP_CLI * UDP_FLOWS)
		fail("workers closed %u echo (want %u), saw %u resets (%u), "
		     "%u greets (%u), %u UDP flows (%u)",
		     atomic_load(&R.echo_closed), echo,
		     atomic_load(&R.resets_seen), resets,
		     atomic_load(&R.greets_closed), greets,
		     atomic_load(&R.udp_closed), UDP_CLI * UDP_FLOWS);
	/* The last FINs and ACKs may still be on their way. */
	do {
		l3x_stack__stats(R.st, &s);
		if (!s.flows)
			break;
		usleep(20000);
	} while (now_ms() < end);
	if (s.flows || s.tcp_accepted != TCP_CLI * TCP_CONNS ||
	    s.tcp_reset_by_client != resets ||
	    s.udp_flows != UDP_CLI * UDP_FLOWS)
		fail("stack: %llu flows open, %llu accepted (want %u), %llu "
		     "reset by the client (%u), %llu UDP flows (%u)",
		     (unsigned long long)s.flows,
		     (unsigned long long)s.tcp_accepted, TCP_CLI * TCP_CONNS,
		     (unsigned long long)s.tcp_reset_by_client, resets,
		     (unsigned long long)s.udp_flows, UDP_CLI * UDP_FLOWS);
	eng_stop();
	if (R.src == L3X_SOURCE_CALLBACK)
		l3x_stack__poll(R.st); /* lwIP's timers once more */
	l3x_stack__mem(R.st, &m);
	/* Greeted streams close first and sit in TIME_WAIT (no buffers). */
	if (m.streams || m.tcp_segs || m.pbufs != mem0->pbufs || m.reass ||
	    m.udp_pcbs != mem0->udp_pcbs)
		fail("memory: %u streams, %u segments queued, pbufs %u (%u "
		     "at open), %u UDP PCBs (%u)",
		     m.streams, m.tcp_segs, m.pbufs, mem0->pbufs, m.udp_pcbs,
		     mem0->udp_pcbs);
}

static int run(enum l3x_source src, const char *name)
{
	pthread_t wt[WORKERS], tc[TCP_CLI], uc[UDP_CLI];
	struct l3x_stack_mem mem0;
	struct l3x_stack_stats s;
	int i, rc = 0;

	R.src = src;
	if (unshare(CLONE_NEWNET)) {
		printf("skip tsan stack %s: cannot unshare a network "
		       "namespace: %s\n",
		       name, strerror(errno));
		return 0;
	}
	if (access("/dev/net/tun", R_OK | W_OK)) {
		printf("skip tsan stack %s: no /dev/net/tun\n", name);
		return 0;
	}
	if (sh("ip link set lo up") || stack_up())
		goto out;
	l3x_stack__mem(R.st, &mem0);
	if (eng_start()) {
		fail("engine did not start");
		goto out;
	}
	for (i = 0; i < WORKERS; i++)
		pthread_create(&wt[i], NULL, worker_main, NULL);
	while (atomic_load(&R.workers_ready) < WORKERS)
		usleep(1000);
	for (i = 0; i < TCP_CLI; i++)
		pthread_create(&tc[i], NULL, tcp_client, (void *)(intptr_t)i);
	for (i = 0; i < UDP_CLI; i++)
		pthread_create(&uc[i], NULL, udp_client, (void *)(intptr_t)i);
	for (i = 0; i < TCP_CLI; i++)
		pthread_join(tc[i], NULL);
	for (i = 0; i < UDP_CLI; i++)
		pthread_join(uc[i], NULL);
	atomic_store(&R.stop, true);
	for (i = 0; i < WORKERS; i++)
		pthread_join(wt[i], NULL);
	check_end(&mem0);
	l3x_stack__stats(R.st, &s);
	rc = l3x_stack__close(R.st);
	if (rc)
		fail("l3x_stack__close: %s", strerror(-rc));
out:
	if (R.tun_fd >= 0)
		close(R.tun_fd);
	if (failed()) {
		printf("not ok tsan stack %s: %s\n", name, err_msg);
		return 1;
	}
	printf("ok tsan stack %s: %d workers, %u TCP connections (%llu "
	       "bytes echoed, %u reset by the client, %u closed first), "
	       "%llu UDP datagrams over %u flows\n",
	       name, WORKERS, TCP_CLI * TCP_CONNS,
	       (unsigned long long)atomic_load(&R.bytes_echoed),
	       atomic_load(&R.resets_seen), atomic_load(&R.greets_closed),
	       (unsigned long long)atomic_load(&R.dgrams_echoed),
	       UDP_CLI * UDP_FLOWS);
	return 0;
}

/* Each run in a child: lwIP's globals (and the namespace) die with it.
 * The parent forks before it has a thread, as TSan wants. */
static int run_child(enum l3x_source src, const char *name)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("not ok tsan stack %s: fork: %s\n", name,
		       strerror(errno));
		return 1;
	}
	if (pid == 0) {
		/* exit(), not _exit(): TSan's own exit code on a report. */
		exit(run(src, name));
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
		printf("not ok tsan stack %s: the run died (status %#x)\n",
		       name, status);
		return 1;
	}
	/* 1: the run said why. Else TSan's exit code (66) after a report
	 * (halt_on_error), or an exit from deeper down. */
	if (WEXITSTATUS(status) > 1)
		printf("not ok tsan stack %s: exited %d (a sanitizer report "
		       "ends it with 66)\n",
		       name, WEXITSTATUS(status));
	return WEXITSTATUS(status) != 0;
}

int main(void)
{
	int fails = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		printf("skip tsan stack: needs root for a network namespace "
		       "and a TUN device\n");
		return 0;
	}
	fails += run_child(L3X_SOURCE_TUN, "tun");
	fails += run_child(L3X_SOURCE_CALLBACK, "callback");
	return fails ? 1 : 0;
}
