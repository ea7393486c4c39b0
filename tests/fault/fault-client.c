/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fault-client - the checking client of the fault test: TCP flows over
 * IPv4 and IPv6 and UDP flows, all at once, to an echo server behind a
 * faulty wire, each of which must come back whole.
 *
 * A TCP flow connects, sends --bytes of a stream of its own (a pure
 * function of --seed, the flow and the offset) while reading the echo, at
 * most --window bytes ahead of it, then half-closes and reads to EOF.
 * Every byte echoed is compared with the stream as it arrives, and a
 * SHA-256 of what was sent and of what came back are compared at the end.
 * A UDP flow (a connected socket: the kernel keeps out replies from any
 * other address) sends --dgrams datagrams one at a time, each a sequence
 * number and a slice of its stream, and resends one that is not echoed
 * within --udp-timeout; an echo must be the datagram sent, and the
 * SHA-256 of the echoes in order must be that of what was sent.
 *
 * No flow may get stuck: one that makes no progress (no byte or datagram
 * either way) for --stall seconds fails, and so does every flow not done
 * by --deadline. One thread, epoll, every socket non-blocking.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "fault-client"

#include "fault.h"

#define BUF	       65536
#define MAX_FLOWS      20000
#define MAX_CONNECTING 64 /* connects in progress at once */
#define UDP_TRIES      40 /* sends of one datagram before it fails */
#define MAX_MESSAGES   10
#define DGRAM_MAX      1400 /* fits an IPv6 1500-byte MTU */

struct args {
	struct sockaddr_storage dst[2]; /* IPv4, IPv6 (port set) */
	bool have[2];
	unsigned addrs;		 /* spread over this many from dst */
	unsigned tcp[2], udp[2]; /* flows per family */
	uint64_t bytes, window, dgrams, seed;
	double stall, deadline, udp_timeout;
};

enum state { S_WAIT, S_CONNECTING, S_RUN, S_DRAIN, S_DONE, S_FAILED };

struct flow {
	unsigned idx;
	bool udp, v6;
	int fd;
	enum state state;
	uint64_t seed;
	uint64_t sent, recvd; /* TCP: stream offsets */
	uint64_t seq, tries;  /* UDP: datagram out, times sent */
	uint64_t retries;     /* UDP: resends */
	uint64_t last;	      /* ns: last progress */
	uint64_t resend_at;   /* UDP: ns */
	uint64_t shut_at;     /* TCP: ns, when it half-closed */
	EVP_MD_CTX *hs, *hr;  /* SHA-256 of sent, of received */
	struct sockaddr_storage to;
};

struct totals {
	uint64_t tcp_bytes, udp_dgrams, udp_bytes, udp_retries, udp_late;
	unsigned tcp_ok[2], udp_ok[2], failed, stuck, sha_mismatch;
	uint64_t wrong_bytes;
};

static struct args a;
static struct flow *flows;
static unsigned nflows, connecting, next_connect, active;
static struct totals t;
static uint8_t rbuf[BUF], wbuf[BUF], xbuf[BUF];
static int ep;
static unsigned messages;

static void problem(const struct flow *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void problem(const struct flow *f, const char *fmt, ...)
{
	char addr[INET6_ADDRSTRLEN];
	const void *ip;
	va_list ap;

	if (messages++ >= MAX_MESSAGES) {
		if (messages == MAX_MESSAGES + 1)
			fputs(PROG ": more problems, not shown\n", stderr);
		return;
	}
	ip = f->v6 ? (const void *)&((struct sockaddr_in6 *)&f->to)->sin6_addr
		   : (const void *)&((struct sockaddr_in *)&f->to)->sin_addr;
	inet_ntop(f->v6 ? AF_INET6 : AF_INET, ip, addr, sizeof(addr));
	fprintf(stderr, PROG ": %s flow %u to %s: ", f->udp ? "udp" : "tcp",
		f->idx, addr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------ stream */

/* Bytes [pos, pos + len) of the stream of seed: word k is mix64 of the
 * seed and k, so any slice is computed without the ones before it. */
static void stream_fill(uint64_t seed, uint64_t pos, uint8_t *p, size_t len)
{
	uint64_t k = pos / 8, w;
	size_t skip = pos % 8, n;

	while (len) {
		w = htole64(mix64(seed ^ (k++ * 0x9e3779b97f4a7c15ull)));
		n = 8 - skip < len ? 8 - skip : len;
		memcpy(p, (uint8_t *)&w + skip, n);
		p += n;
		len -= n;
		skip = 0;
	}
}

/* How many of the len bytes at p differ from the stream at pos; the
 * first such offset into *first. */
static uint64_t stream_check(uint64_t seed, uint64_t pos, const uint8_t *p,
			     size_t len, size_t *first)
{
	uint64_t bad = 0;
	size_t i;

	stream_fill(seed, pos, xbuf, len);
	if (!memcmp(p, xbuf, len))
		return 0;
	for (i = 0; i < len; i++)
		if (p[i] != xbuf[i] && !bad++)
			*first = i;
	return bad;
}

static EVP_MD_CTX *sha_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL))
		die("SHA-256: cannot start a digest");
	return c;
}

/* Whether the two digests agree; both are finished. */
static bool sha_match(struct flow *f)
{
	uint8_t s[EVP_MAX_MD_SIZE], r[EVP_MAX_MD_SIZE];
	unsigned ls = 0, lr = 0;

	EVP_DigestFinal_ex(f->hs, s, &ls);
	EVP_DigestFinal_ex(f->hr, r, &lr);
	return ls == lr && ls == 32 && !memcmp(s, r, ls);
}

/* ------------------------------------------------------------ flows */

static void flow_end(struct flow *f, bool ok)
{
	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	if (f->state == S_CONNECTING)
		connecting--;
	f->state = ok ? S_DONE : S_FAILED;
	active--;
	if (!ok)
		t.failed++;
}

/* A failed flow: what, how far it got, and (after its half-close) how
 * long since, which tells a server's timeout from a wire's stall. */
static void fail(struct flow *f, const char *what, int err)
{
	char since[48] = "";

	if (f->state == S_DRAIN)
		snprintf(since, sizeof(since), ", half-closed %.1f s before",
			 (now_ns() - f->shut_at) / 1e9);
	problem(f, "%s%s%s (sent %llu, echoed %llu%s)", what, err ? ": " : "",
		err ? strerror(err) : "", (unsigned long long)f->sent,
		(unsigned long long)f->recvd, since);
	flow_end(f, false);
}

static void target(struct flow *f, unsigned k)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&f->to;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&f->to;
	uint32_t v;

	f->to = a.dst[f->v6];
	if (f->v6) {
		memcpy(&v, &s6->sin6_addr.s6_addr[12], 4);
		v = htonl(ntohl(v) + k);
		memcpy(&s6->sin6_addr.s6_addr[12], &v, 4);
	} else {
		s4->sin_addr.s_addr = htonl(ntohl(s4->sin_addr.s_addr) + k);
	}
}

static int open_socket(struct flow *f, uint64_t now)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.ptr = f,
	};
	socklen_t len = f->v6 ? sizeof(struct sockaddr_in6)
			      : sizeof(struct sockaddr_in);

	f->fd = socket(f->v6 ? AF_INET6 : AF_INET,
		       (f->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
	if (f->fd < 0)
		die("socket: %s", strerror(errno));
	f->last = now;
	if (connect(f->fd, (struct sockaddr *)&f->to, len) &&
	    errno != EINPROGRESS)
		return -errno;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, f->fd, &ev))
		die("epoll_ctl: %s", strerror(errno));
	return 0;
}

/* ------------------------------------------------------------ tcp */

static void tcp_done(struct flow *f)
{
	if (f->recvd != a.bytes) {
		fail(f, "the server closed before the whole echo", 0);
		return;
	}
	if (!sha_match(f)) {
		t.sha_mismatch++;
		fail(f, "SHA-256 of the echo differs from what was sent", 0);
		return;
	}
	t.tcp_ok[f->v6]++;
	flow_end(f, true);
}

/* Reads until EAGAIN, checking each byte; false when the flow ended. */
static bool tcp_read(struct flow *f, uint64_t now)
{
	size_t first = 0;
	uint64_t bad;
	ssize_t r;

	for (;;) {
		r = recv(f->fd, rbuf, BUF, 0);
		if (r < 0 && errno == EAGAIN)
			return true;
		if (r < 0) {
			fail(f, "recv", errno);
			return false;
		}
		if (!r) {
			tcp_done(f);
			return false;
		}
		if (f->recvd + r > f->sent) {
			fail(f, "more bytes echoed than sent", 0);
			return false;
		}
		bad = stream_check(f->seed, f->recvd, rbuf, r, &first);
		if (bad) {
			t.wrong_bytes += bad;
			problem(f,
				"%llu wrong bytes echoed, the first at offset "
				"%llu",
				(unsigned long long)bad,
				(unsigned long long)(f->recvd + first));
		}
		EVP_DigestUpdate(f->hr, rbuf, r);
		f->recvd += r;
		t.tcp_bytes += r;
		f->last = now;
	}
}

/* Writes up to the window; half-closes once everything is out. */
static bool tcp_write(struct flow *f, uint64_t now)
{
	uint64_t limit;
	size_t n;
	ssize_t r;

	while (f->state == S_RUN) {
		limit = f->recvd + a.window < a.bytes ? f->recvd + a.window
						      : a.bytes;
		if (f->sent >= limit)
			break;
		n = limit - f->sent < BUF ? limit - f->sent : BUF;
		stream_fill(f->seed, f->sent, wbuf, n);
		r = send(f->fd, wbuf, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EAGAIN)
			return true;
		if (r < 0) {
			fail(f, "send", errno);
			return false;
		}
		EVP_DigestUpdate(f->hs, wbuf, r);
		f->sent += r;
		f->last = now;
	}
	if (f->state == S_RUN && f->sent == a.bytes) {
		shutdown(f->fd, SHUT_WR);
		f->state = S_DRAIN;
		f->shut_at = now;
	}
	return true;
}

static void tcp_event(struct flow *f, uint64_t now)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (f->state == S_CONNECTING) {
		getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			fail(f, "connect", err);
			return;
		}
		connecting--;
		f->state = S_RUN;
		f->last = now;
	}
	/* Reading frees window, so write after each read until neither
	 * moves: edge-triggered, nothing may be left undone. */
	for (;;) {
		uint64_t s = f->sent, r = f->recvd;

		if (!tcp_read(f, now) || !tcp_write(f, now))
			return;
		if (s == f->sent && r == f->recvd)
			return;
	}
}

static void tcp_start(struct flow *f, uint64_t now)
{
	int err;

	f->hs = sha_new();
	f->hr = sha_new();
	err = open_socket(f, now);
	f->state = S_CONNECTING;
	connecting++;
	if (err)
		fail(f, "connect", -err);
}

/* ------------------------------------------------------------ udp */

/* Datagram seq of a flow: 8 bytes of sequence number, then a slice of
 * its stream, 1 to DGRAM_MAX - 8 bytes long. */
static size_t dgram_make(const struct flow *f, uint64_t seq, uint8_t *p)
{
	size_t len = 8 + 1 + mix64(f->seed + seq) % (DGRAM_MAX - 8);
	uint64_t le = htole64(seq);

	memcpy(p, &le, 8);
	stream_fill(f->seed, seq * DGRAM_MAX, p + 8, len - 8);
	return len;
}

static void udp_send(struct flow *f, uint64_t now)
{
	size_t len = dgram_make(f, f->seq, wbuf);

	if (f->tries++)
		f->retries++;
	f->resend_at = now + (uint64_t)(a.udp_timeout * NS);
	/* A full socket buffer is a loss like another: resent later. */
	if (send(f->fd, wbuf, len, 0) < 0 && errno != EAGAIN &&
	    errno != ENOBUFS && errno != ECONNREFUSED)
		fail(f, "send", errno);
}

static void udp_next(struct flow *f, uint64_t now)
{
	f->seq++;
	f->tries = 0;
	f->last = now;
	if (f->seq < a.dgrams) {
		udp_send(f, now);
		return;
	}
	t.udp_retries += f->retries;
	if (!sha_match(f)) {
		t.sha_mismatch++;
		fail(f, "SHA-256 of the echoes differs from what was sent", 0);
		return;
	}
	t.udp_ok[f->v6]++;
	flow_end(f, true);
}

/* One echo: the datagram outstanding, a late copy of an older one
 * (ignored), or wrong. */
static void udp_reply(struct flow *f, size_t r, uint64_t now)
{
	uint64_t seq;
	size_t len;

	memcpy(&seq, rbuf, 8);
	seq = le64toh(seq);
	if (r >= 8 && seq < f->seq) {
		t.udp_late++;
		return;
	}
	len = dgram_make(f, f->seq, wbuf);
	if (r != len || memcmp(rbuf, wbuf, len)) {
		t.wrong_bytes += r;
		problem(f,
			"datagram %llu: the echo (%zu bytes) is not what "
			"was sent (%zu bytes)",
			(unsigned long long)f->seq, r, len);
		return;
	}
	EVP_DigestUpdate(f->hs, wbuf, len);
	EVP_DigestUpdate(f->hr, rbuf, r);
	t.udp_dgrams++;
	t.udp_bytes += r;
	udp_next(f, now);
}

static void udp_event(struct flow *f, uint64_t now)
{
	ssize_t r;

	while (f->state == S_RUN) {
		r = recv(f->fd, rbuf, BUF, 0);
		if (r < 0 && (errno == EAGAIN || errno == ECONNREFUSED))
			return;
		if (r < 0) {
			fail(f, "recv", errno);
			return;
		}
		udp_reply(f, r, now);
	}
}

static void udp_start(struct flow *f, uint64_t now)
{
	int err;

	f->hs = sha_new();
	f->hr = sha_new();
	err = open_socket(f, now);
	if (err) {
		f->state = S_RUN;
		fail(f, "connect", -err);
		return;
	}
	f->state = S_RUN;
	udp_send(f, now);
}

/* ------------------------------------------------------------ the run */

static void make_flows(void)
{
	unsigned udp, v6, i, k = 0;

	nflows = a.tcp[0] + a.tcp[1] + a.udp[0] + a.udp[1];
	flows = calloc(nflows, sizeof(*flows));
	if (!flows)
		die("out of memory for %u flows", nflows);
	for (udp = 0; udp < 2; udp++)
		for (v6 = 0; v6 < 2; v6++)
			for (i = 0; i < (udp ? a.udp : a.tcp)[v6]; i++, k++) {
				flows[k].idx = k;
				flows[k].udp = udp;
				flows[k].v6 = v6;
				flows[k].fd = -1;
				flows[k].seed = mix64(
					a.seed * 0x9e3779b97f4a7c15ull + k);
				target(&flows[k], k % a.addrs);
			}
	active = nflows;
}

/* UDP flows start at once; TCP connects at most MAX_CONNECTING at a
 * time, so no listener's backlog decides the test. */
static void start_more(uint64_t now)
{
	struct flow *f;

	while (next_connect < nflows && connecting < MAX_CONNECTING) {
		f = &flows[next_connect++];
		if (f->udp)
			udp_start(f, now);
		else
			tcp_start(f, now);
	}
}

/* Resends, and flows that made no progress for --stall seconds. */
static void timers(uint64_t now)
{
	struct flow *f;
	unsigned i;

	for (i = 0; i < next_connect; i++) {
		f = &flows[i];
		if (f->state == S_DONE || f->state == S_FAILED)
			continue;
		if (now - f->last > (uint64_t)(a.stall * NS)) {
			t.stuck++;
			fail(f, "stuck: no progress for --stall seconds", 0);
			continue;
		}
		if (f->udp && now >= f->resend_at) {
			if (f->tries >= UDP_TRIES)
				fail(f,
				     "no echo of a datagram sent "
				     "UDP_TRIES times",
				     0);
			else
				udp_send(f, now);
		}
	}
}

/* Every flow still going when the run is over failed. */
static void give_up(const char *why)
{
	unsigned i;

	for (i = 0; i < nflows; i++) {
		if (flows[i].state == S_DONE || flows[i].state == S_FAILED)
			continue;
		if (flows[i].state != S_WAIT || i < next_connect)
			t.stuck++;
		fail(&flows[i], why, 0);
	}
}

static void run(void)
{
	struct epoll_event ev[256];
	uint64_t t0 = now_ns(), now, next_tick = t0;
	uint64_t end = t0 + (uint64_t)(a.deadline * NS);
	struct flow *f;
	int n, i;

	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	start_more(t0);
	while (active && !stop_requested()) {
		n = epoll_wait(ep, ev, 256, 5);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		now = now_ns();
		for (i = 0; i < n; i++) {
			f = ev[i].data.ptr;
			if (f->state == S_DONE || f->state == S_FAILED)
				continue;
			if (f->udp)
				udp_event(f, now);
			else
				tcp_event(f, now);
		}
		start_more(now);
		if (now >= next_tick) {
			timers(now);
			next_tick = now + 5000000;
		}
		if (now >= end)
			give_up("not done by --deadline");
	}
	if (stop_requested())
		give_up("interrupted");
}

/* ------------------------------------------------------------ arguments */

static void parse_dst(const char *s)
{
	struct sockaddr_in6 *s6;
	struct sockaddr_in *s4;
	bool v6 = strchr(s, ':');

	if (v6) {
		s6 = (struct sockaddr_in6 *)&a.dst[1];
		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, s, &s6->sin6_addr) != 1)
			die_arg("--dst '%s': not an IPv6 address", s);
	} else {
		s4 = (struct sockaddr_in *)&a.dst[0];
		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, s, &s4->sin_addr) != 1)
			die_arg("--dst '%s': not an IPv4 or IPv6 address", s);
	}
	a.have[v6] = true;
}

static void set_port(unsigned port)
{
	((struct sockaddr_in *)&a.dst[0])->sin_port = htons(port);
	((struct sockaddr_in6 *)&a.dst[1])->sin6_port = htons(port);
}

/* clang-format off */
TOOL_DEFINE(PROG,
	    "usage: " PROG " --dst ADDR [--dst ADDR6] --port P [--addrs N]\n"
	      "       [--tcp4 N] [--tcp6 N] [--bytes B] [--window B]\n"
	      "       [--udp4 N] [--udp6 N] [--dgrams N] [--udp-timeout S]\n"
	      "       [--seed N] [--stall S] [--deadline S]\n",
	    2);
/* clang-format on */

static void check_args(void)
{
	unsigned k;

	for (k = 0; k < 2; k++)
		if ((a.tcp[k] || a.udp[k]) && !a.have[k])
			die_arg("--%s flows need an IPv%c --dst",
				k ? "tcp6/udp6" : "tcp4/udp4", k ? '6' : '4');
	if (a.tcp[0] + a.tcp[1] + a.udp[0] + a.udp[1] > MAX_FLOWS)
		die_arg("at most %u flows in all", MAX_FLOWS);
	if (!a.tcp[0] && !a.tcp[1] && !a.udp[0] && !a.udp[1])
		die_arg("no flows: give --tcp4, --tcp6, --udp4 or --udp6");
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dst", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "addrs", required_argument, NULL, 'A' },
		{ "tcp4", required_argument, NULL, '4' },
		{ "tcp6", required_argument, NULL, '6' },
		{ "udp4", required_argument, NULL, 'u' },
		{ "udp6", required_argument, NULL, 'U' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "window", required_argument, NULL, 'w' },
		{ "dgrams", required_argument, NULL, 'g' },
		{ "udp-timeout", required_argument, NULL, 'T' },
		{ "seed", required_argument, NULL, 's' },
		{ "stall", required_argument, NULL, 'S' },
		{ "deadline", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned port = 0;
	int c;

	a.addrs = 1;
	a.bytes = 1 << 20;
	a.window = 256 << 10;
	a.dgrams = 100;
	a.seed = 1;
	a.stall = 30;
	a.deadline = 120;
	a.udp_timeout = 0.05;
	while ((c = tool_getopt(argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 'd':
			parse_dst(optarg);
			break;
		case 'p':
			port = parse_uint("--port", optarg, 1, 65535);
			break;
		case 'A':
			a.addrs = parse_uint("--addrs", optarg, 1, 65536);
			break;
		case '4':
			a.tcp[0] = parse_uint("--tcp4", optarg, 0, MAX_FLOWS);
			break;
		case '6':
			a.tcp[1] = parse_uint("--tcp6", optarg, 0, MAX_FLOWS);
			break;
		case 'u':
			a.udp[0] = parse_uint("--udp4", optarg, 0, MAX_FLOWS);
			break;
		case 'U':
			a.udp[1] = parse_uint("--udp6", optarg, 0, MAX_FLOWS);
			break;
		case 'b':
			a.bytes = parse_uint("--bytes", optarg, 1, 1ull << 40);
			break;
		case 'w':
			a.window =
				parse_uint("--window", optarg, 1, 1ull << 32);
			break;
		case 'g':
			a.dgrams =
				parse_uint("--dgrams", optarg, 1, 1ull << 32);
			break;
		case 'T':
			a.udp_timeout = parse_secs("--udp-timeout", optarg);
			break;
		case 's':
			a.seed = parse_uint("--seed", optarg, 0, UINT64_MAX);
			break;
		case 'S':
			a.stall = parse_secs("--stall", optarg);
			break;
		case 'D':
			a.deadline = parse_secs("--deadline", optarg);
			break;
		}
	}
	if (optind < argc)
		die_arg("'%s': unexpected argument", argv[optind]);
	tool_need(port, "--port", "the echo server's port");
	set_port(port);
	check_args();
}

int main(int argc, char **argv)
{
	uint64_t t0;
	double secs;

	parse_args(argc, argv);
	raise_nofile();
	stop_on_signals(0);
	signal(SIGPIPE, SIG_IGN);
	make_flows();
	t0 = now_ns();
	run();
	secs = (now_ns() - t0) / 1e9;
	printf(PROG
	       ": seed %llu seconds %.1f tcp_bytes %llu tcp4_ok %u/%u "
	       "tcp6_ok %u/%u udp4_ok %u/%u udp6_ok %u/%u udp_dgrams %llu "
	       "udp_bytes %llu udp_retries %llu udp_late %llu wrong_bytes %llu "
	       "sha_mismatch %u stuck %u failed %u\n",
	       (unsigned long long)a.seed, secs,
	       (unsigned long long)t.tcp_bytes, t.tcp_ok[0], a.tcp[0],
	       t.tcp_ok[1], a.tcp[1], t.udp_ok[0], a.udp[0], t.udp_ok[1],
	       a.udp[1], (unsigned long long)t.udp_dgrams,
	       (unsigned long long)t.udp_bytes,
	       (unsigned long long)t.udp_retries,
	       (unsigned long long)t.udp_late,
	       (unsigned long long)t.wrong_bytes, t.sha_mismatch, t.stuck,
	       t.failed);
	return t.failed || t.wrong_bytes ? 1 : 0;
}
