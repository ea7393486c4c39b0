/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x-relay - a transparent relay on the termination engine: every TCP
 * connection and UDP flow the rules steer in is answered by l3x and
 * carried onward, on kernel sockets, to the destination the client asked
 * for: directly (--upstream direct) or through a SOCKS5 proxy (RFC 1928:
 * CONNECT for TCP, UDP ASSOCIATE for UDP), as tun2socks-style tunnels do.
 *
 * One process, N workers. Each worker owns an l3x_worker and the upstream
 * sockets of the flows it accepted, all in one epoll, edge-triggered. A
 * relayed stream has one buffer per direction (--buffer bytes, taken once
 * the upstream is ready): bytes are read from one side only while that
 * side's buffer has room and written to the other until it says -EAGAIN,
 * so a slow side stalls its sender (through the TCP window on both) and
 * never grows us. Nothing is read from the client until the upstream is
 * connected: lwIP's receive window holds what it sent.
 *
 * Connect before accept (the stack's defer_accept, on unless --no-defer):
 * a new TCP connection comes as a request, its SYN unanswered, and the
 * client's handshake completes only once the upstream is ready. An
 * upstream that refuses has the client refused (RST, ECONNREFUSED); one
 * that times out (--connect-timeout, SOCKS5 handshake included) or cannot
 * be reached has the request dropped: the client hears nothing, as from
 * the destination. A new UDP flow is a request as well. Direct, its
 * datagrams go up at once and the destination's reply accepts it, its
 * refusal (ICMP port unreachable: ECONNREFUSED on our connected socket)
 * refuses it with the same ICMP toward the client (probe()); through a
 * proxy, the UDP ASSOCIATE granted accepts it, a failure refuses or drops
 * it as a TCP one. SOCKS5 reports no ICMP from the proxy's UDP socket. With
 * --no-defer (or a connection the stack made from a SYN cookie) the client's
 * handshake completed before we heard of it, and a RST is the nearest to what
 * the destination did.
 *
 * Ends map across: a FIN from one side is passed on (shutdown) once its
 * buffer is out; a RST from one side resets the other. UDP
 * flows end when the engine expires them (--udp-idle); a datagram one side
 * cannot take is dropped and counted, as a router would.
 *
 * Stopping: main sets the step and wakes every worker, which resets what
 * it relays and closes its l3x_worker; then the stack is closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "l3x/l3x.h"
#include "addr.h"
#include "link.h"
#include "parse.h"
#include "stack.h"
#include "tool.h"

#define PROG "l3x-relay"

#define MAX_WORKERS 64
#define BATCH	    64
#define MAX_CPU	    4095
#define UDP_MAX	    65535 /* largest datagram, either way */
#define SOCKS_HDR   22	  /* SOCKS5 UDP header with an IPv6 address */
#define TICK_MS	    100	  /* how often connect deadlines are checked */
#define DRAIN_MS    2000  /* at exit: how long resets may take to leave */
#define UDP_QUEUE   256

struct args {
	struct link_args link;
	const char *tun;
	bool socks;		       /* else direct */
	struct sockaddr_storage proxy; /* --upstream socks5://HOST:PORT */
	char proxy_text[ADDR_STRLEN];  /* for messages */
	unsigned workers;
	int cpu;
	uint32_t mtu, max_flows, udp_idle_ms;
	uint32_t connect_ms;
	uint32_t buffer;
	bool no_defer; /* --no-defer: accept before connecting upstream */
	uint64_t seconds;
};

enum rkind { R_TCP, R_UDP };

enum rstate {
	S_CONNECT,     /* the upstream (or the proxy) TCP connect */
	S_SOCKS_HELLO, /* sent the method offer, reading the choice */
	S_SOCKS_REPLY, /* sent the request, reading the reply */
	S_PROBE,       /* direct UDP request: what the client sent went up,
			* waiting for the destination's reply or refusal */
	S_RELAY,       /* bytes flow */
};

/* Why an upstream failed, for the counters. */
enum fail { F_REFUSED, F_TIMEOUT, F_UNREACHABLE, F_RESET, F_OTHER, F_NR };

static const char *const fail_names[F_NR] = {
	"refused", "timed_out", "unreachable", "reset", "failed",
};

struct dbuf {
	uint8_t *p;
	uint32_t off, len; /* the bytes waiting: p[off, off + len) */
};

/* One relayed stream or UDP flow. Freed only after the batch it was
 * closed in (see l3x-serve), so later events of the batch find it marked. */
struct rconn {
	enum rkind kind;
	enum rstate state;
	struct l3x_stream *s; /* R_TCP */
	struct l3x_udp *u;    /* R_UDP */
	int fd;		      /* the upstream TCP socket, or SOCKS control */
	int ufd;	      /* R_UDP: the upstream datagram socket */
	struct sockaddr_storage dst; /* the original destination */
	uint64_t deadline;	     /* S_CONNECT..: now_ns() to give up */
	struct dbuf cu, uc;	     /* client to upstream, and back */
	uint8_t hs[32];		     /* the SOCKS5 reply being read */
	uint32_t hs_len;
	bool c_eof, u_eof;   /* FIN read from client, upstream */
	bool c_shut, u_shut; /* FIN passed to upstream, client */
	bool request; /* the client's SYN (R_TCP) or first datagram (R_UDP)
		       * not yet answered */
	bool closed;
	struct rconn *next, **pprev; /* the worker's open conns */
};

/* Written by their worker only, read by main: relaxed. */
struct wstats {
	uint64_t tcp, udp, bytes_up, bytes_down;
	uint64_t dgrams_up, dgrams_down, dgrams_dropped;
	uint64_t client_reset, upstream_closed;
	uint64_t client_refused, client_dropped; /* requests so answered */
	uint64_t fail[F_NR];
};

struct server;

struct worker {
	struct crew_member m; /* first: the crew's view (stack.h) */
	struct server *srv;
	struct l3x_worker *l3x;
	int ep;
	int tag_l3x, tag_stop; /* their addresses mark epoll events */
	struct rconn *conns, *dead;
	uint64_t last_expire; /* now_ns() of the last expire() scan */
	struct wstats n;
	uint8_t dgram[SOCKS_HDR + UDP_MAX];
};

struct server {
	const struct args *a;
	struct l3x_stack *stack;
	struct worker *w;
	unsigned nw;
	bool started;
	int step;	  /* 1: stop */
	struct crew crew; /* the workers' start and first error */
};

/* clang-format off */
TOOL_DEFINE(PROG,
	    "usage: " PROG " (--iface IF [--queue Q]... | --tun NAME) --rule RULE [--rule RULE]...\n"
	    "       [--upstream direct|socks5://HOST:PORT] [--workers N] [--connect-timeout MS]\n"
	    "       [--buffer BYTES] [--pin-dir DIR] [--xdp-mode auto|native|skb]\n"
	    "       [--bind auto|copy|zerocopy] [--no-busy-poll] [--poll adaptive|busy]\n"
	    "       [--idle-spins N] [--idle-yield] [--ack-coalesce N] [--cpu N] [--mtu N]\n"
	    "       [--gro on|off]\n"
	    "       [--max-flows N] [--udp-idle MS] [--no-defer] [--seconds S] [--quiet] [--verbose]\n"
	    "RULE is 'PROTO DST [PORT[-PORT]]', e.g. 'tcp 198.51.100.0/24'.\n",
	    1);
/* clang-format on */

/* ------------------------------------------------------------ arguments */

/* --upstream direct or socks5://HOST:PORT (numeric HOST; [v6] too). */
static void parse_upstream(struct args *a, const char *s)
{
	static const char scheme[] = "socks5://";

	if (!strcmp(s, "direct")) {
		a->socks = false;
		return;
	}
	if (strncmp(s, scheme, sizeof(scheme) - 1))
		die("--upstream '%s': not 'direct' or 'socks5://HOST:PORT'", s);
	s += sizeof(scheme) - 1;
	if (!strchr(s, ':') || s[strlen(s) - 1] == ']' ||
	    !parse_sockaddr(s, 0, &a->proxy))
		die("--upstream 'socks5://%s': HOST:PORT wanted, HOST numeric "
		    "(192.0.2.1:1080, [2001:db8::1]:1080)",
		    s);
	snprintf(a->proxy_text, sizeof(a->proxy_text), "%s", s);
	a->socks = true;
}

static void parse_number(struct args *a, int c, const char *s)
{
	/* One line an option, as in the tools. */
	/* clang-format off */
	switch (c) {
	case 'w':
		a->workers = parse_uint("--workers", s, 1, MAX_WORKERS);
		break;
	case 'c': a->cpu = parse_uint("--cpu", s, 0, MAX_CPU); break;
	case 'u': a->mtu = parse_uint("--mtu", s, 1280, 9000); break;
	case 'f': a->max_flows = parse_uint("--max-flows", s, 1, 1u << 24); break;
	case 'I': a->udp_idle_ms = parse_uint("--udp-idle", s, 1, UINT32_MAX); break;
	case 'T':
		a->connect_ms = parse_uint("--connect-timeout", s, 1, 600000);
		break;
	case 'x':
		a->buffer = parse_uint("--buffer", s, 4096, 64u << 20);
		break;
	case 's': a->seconds = parse_uint("--seconds", s, 0, 1u << 30); break;
	}
	/* clang-format on */
}

static void parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		LINK_OPTIONS,
		STACK_OPTIONS,
		{ "tun", required_argument, NULL, 't' },
		{ "upstream", required_argument, NULL, 'U' },
		{ "workers", required_argument, NULL, 'w' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "mtu", required_argument, NULL, 'u' },
		{ "max-flows", required_argument, NULL, 'f' },
		{ "udp-idle", required_argument, NULL, 'I' },
		{ "connect-timeout", required_argument, NULL, 'T' },
		{ "buffer", required_argument, NULL, 'x' },
		{ "seconds", required_argument, NULL, 's' },
		{ "no-defer", no_argument, NULL, 'D' },
		TOOL_OPTIONS_END,
	};
	int c;

	a->workers = 1;
	a->cpu = -1;
	a->connect_ms = 5000;
	a->buffer = 64 * 1024;
	while ((c = tool_getopt(argc, argv, "i:q:r:w:s:p:h", opts)) != -1) {
		if (link_opt(&a->link, c, optarg))
			continue;
		/* clang-format off */
		switch (c) {
		case 't': a->tun = optarg; break;
		case 'U': parse_upstream(a, optarg); break;
		case 'D': a->no_defer = true; break;
		default: parse_number(a, c, optarg); break;
		}
		/* clang-format on */
	}
	if (optind < argc)
		die("'%s': unexpected argument (rules go after --rule)",
		    argv[optind]);
	if (a->link.iface && a->tun)
		die("--iface and --tun: give one source, not both");
	if (!a->link.iface && !a->tun)
		die("--iface: missing (the interface to relay from, or --tun NAME)");
	if (a->tun && a->link.nqueues)
		die("--queue: only with --iface (a TUN device has no queues)");
	if (!a->link.rules.n)
		die("--rule: missing (at least one, e.g. --rule 'tcp 198.51.100.0/24')");
}

/* -------------------------------------------------------------- helpers */

static enum fail fail_of(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return F_REFUSED;
	case ETIMEDOUT:
		return F_TIMEOUT;
	case EHOSTUNREACH:
	case ENETUNREACH:
		return F_UNREACHABLE;
	case ECONNRESET:
	case EPIPE:
		return F_RESET;
	default:
		return F_OTHER;
	}
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					 : sizeof(struct sockaddr_in);
}

/* A non-blocking socket of @type toward @to, connect started, in the
 * worker's epoll. Returns the fd, or -errno. */
static int upstream_socket(struct worker *w, struct rconn *c, int type,
			   const struct sockaddr_storage *to)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
					    EPOLLET,
				  .data.ptr = c };
	int one = 1, fd, err;

	fd = socket(to->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (type == SOCK_STREAM)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const void *)to, sa_len(to)) && errno != EINPROGRESS)
		goto fail;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

/* Close @fd; with @reset, so that the peer gets a RST. */
static void close_fd(int fd, bool reset)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return;
	if (reset)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* ---------------------------------------------------------------- conns */

static struct rconn *conn_new(struct worker *w, enum rkind kind)
{
	struct rconn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->kind = kind;
	c->fd = c->ufd = -1;
	c->next = w->conns;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &w->conns;
	w->conns = c;
	return c;
}

/* Done with @c: both sides closed in order, or reset (@reset). */
static void conn_end(struct worker *w, struct rconn *c, bool reset)
{
	if (c->closed)
		return;
	if (c->s && reset)
		l3x_stream__abort(c->s);
	else if (c->s)
		l3x_stream__close(c->s);
	l3x_udp__close(c->u);
	close_fd(c->fd, reset);
	close_fd(c->ufd, false);
	c->s = NULL;
	c->u = NULL;
	c->fd = c->ufd = -1;
	c->closed = true;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	c->next = w->dead;
	w->dead = c;
}

/* The upstream failed (@err, an errno): counted by kind. A client still
 * waiting for its SYN-ACK is refused when the upstream refused, else
 * hears nothing; an accepted stream is reset, a UDP flow closed. */
static void upstream_failed(struct worker *w, struct rconn *c, int err)
{
	count(&w->n.fail[fail_of(err)], 1);
	if (c->request && (c->s || c->u)) {
		bool refuse = err == ECONNREFUSED;
		enum l3x_answer an =
			refuse ? L3X_ANSWER_REFUSE : L3X_ANSWER_DROP;

		if (c->s)
			l3x_stream__answer(c->s, an);
		else
			l3x_udp__answer(c->u, an); /* ICMP port unreachable */
		count(refuse ? &w->n.client_refused : &w->n.client_dropped, 1);
		c->s = NULL; /* the answer ended the handle */
		c->u = NULL;
	}
	conn_end(w, c, true);
}

static void free_dead(struct worker *w)
{
	struct rconn *c;

	while ((c = w->dead)) {
		w->dead = c->next;
		free(c->cu.p);
		free(c->uc.p);
		free(c);
	}
}

/* ---------------------------------------------------------------- socks */

/* The SOCKS5 form of @ss (ATYP, address, port) at @p. Returns its length. */
static size_t socks_addr(const struct sockaddr_storage *ss, uint8_t *p)
{
	const struct sockaddr_in6 *s6 = (const void *)ss;
	const struct sockaddr_in *s4 = (const void *)ss;

	if (ss->ss_family == AF_INET6) {
		p[0] = 4;
		memcpy(p + 1, &s6->sin6_addr, 16);
		memcpy(p + 17, &s6->sin6_port, 2);
		return 19;
	}
	p[0] = 1;
	memcpy(p + 1, &s4->sin_addr, 4);
	memcpy(p + 5, &s4->sin_port, 2);
	return 7;
}

/* Parse a SOCKS5 address (ATYP first) of @n bytes at @p into @ss.
 * Returns its length, 0 when more bytes are needed, -1 when it is not an
 * IP address. */
static int socks_addr_parse(const uint8_t *p, size_t n,
			    struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (void *)ss;
	struct sockaddr_in *s4 = (void *)ss;

	if (n < 1)
		return 0;
	memset(ss, 0, sizeof(*ss));
	if (p[0] == 1) {
		if (n < 7)
			return 0;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, p + 1, 4);
		memcpy(&s4->sin_port, p + 5, 2);
		return 7;
	}
	if (p[0] == 4) {
		if (n < 19)
			return 0;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, p + 1, 16);
		memcpy(&s6->sin6_port, p + 17, 2);
		return 19;
	}
	return -1;
}

/* Send the whole of a small handshake message; the socket's buffer takes
 * it at once or the proxy is broken. Returns 0 or an errno. */
static int socks_send(int fd, const void *p, size_t n)
{
	ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

	if (r == (ssize_t)n)
		return 0;
	return r < 0 ? errno : EPROTO;
}

/* The request: CONNECT to the original destination (TCP), or UDP
 * ASSOCIATE from an address not yet known (0.0.0.0:0, RFC 1928 4.). */
static int socks_request(struct rconn *c)
{
	struct sockaddr_storage any = { .ss_family = AF_INET };
	uint8_t req[3 + 19] = { 5, c->kind == R_TCP ? 1 : 3, 0 };

	return socks_send(
		c->fd, req,
		3 + socks_addr(c->kind == R_TCP ? &c->dst : &any, req + 3));
}

/* The REP of a failed reply as an errno. */
static int socks_errno(uint8_t rep)
{
	switch (rep) {
	case 3:
		return ENETUNREACH;
	case 4:
		return EHOSTUNREACH;
	case 5:
		return ECONNREFUSED;
	case 6:
		return ETIMEDOUT;
	default:
		return EPROTO;
	}
}

/* Read what the handshake still lacks, no byte past it: after a CONNECT
 * reply come the destination's bytes. Returns 1 the message is whole, 0
 * wait, or an errno (negative). */
static int socks_read(struct rconn *c, uint32_t want)
{
	ssize_t r;

	while (c->hs_len < want) {
		r = recv(c->fd, c->hs + c->hs_len, want - c->hs_len, 0);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0)
			return errno == EAGAIN ? 0 : -errno;
		c->hs_len += r;
	}
	return 1;
}

static int relay_ready(struct worker *w, struct rconn *c);

/* UDP ASSOCIATE granted: a datagram socket connected to the relay address
 * the proxy named (its own address when it named 0.0.0.0 or ::). */
static int socks_udp_ready(struct worker *w, struct rconn *c,
			   struct sockaddr_storage *relay)
{
	struct sockaddr_in6 *r6 = (void *)relay;
	struct sockaddr_in *r4 = (void *)relay;
	const struct args *a = w->srv->a;
	in_port_t port;

	if ((relay->ss_family == AF_INET && !r4->sin_addr.s_addr) ||
	    (relay->ss_family == AF_INET6 &&
	     IN6_IS_ADDR_UNSPECIFIED(&r6->sin6_addr))) {
		port = relay->ss_family == AF_INET ? r4->sin_port
						   : r6->sin6_port;
		*relay = a->proxy;
		if (relay->ss_family == AF_INET)
			r4->sin_port = port;
		else
			r6->sin6_port = port;
	}
	c->ufd = upstream_socket(w, c, SOCK_DGRAM, relay);
	return c->ufd < 0 ? -c->ufd : 0;
}

/* The proxy's reply: VER REP RSV, then an address (4 + 1 + len). */
static int socks_reply(struct worker *w, struct rconn *c)
{
	struct sockaddr_storage bnd;
	uint32_t want = 5;
	int r;

	r = socks_read(c, want);
	if (r <= 0)
		return -r;
	if (c->hs[0] != 5 || c->hs[1])
		return c->hs[0] != 5 ? EPROTO : socks_errno(c->hs[1]);
	want = c->hs[3] == 1 ? 10 : c->hs[3] == 4 ? 22 : 0;
	if (!want)
		return EPROTO; /* a domain name: not for an IP relay */
	r = socks_read(c, want);
	if (r <= 0)
		return -r;
	if (socks_addr_parse(c->hs + 3, c->hs_len - 3, &bnd) <= 0)
		return EPROTO;
	if (c->kind == R_UDP && (r = socks_udp_ready(w, c, &bnd)))
		return r;
	return relay_ready(w, c);
}

/* The handshake, one step per call as bytes arrive. Returns 0 or an
 * errno: the upstream failed. */
static int socks_step(struct worker *w, struct rconn *c)
{
	static const uint8_t hello[3] = { 5, 1, 0 }; /* no authentication */
	int r;

	switch (c->state) {
	case S_CONNECT:
		c->state = S_SOCKS_HELLO;
		return socks_send(c->fd, hello, sizeof(hello));
	case S_SOCKS_HELLO:
		r = socks_read(c, 2);
		if (r <= 0)
			return -r;
		if (c->hs[0] != 5 || c->hs[1])
			return EPROTO;
		c->hs_len = 0;
		c->state = S_SOCKS_REPLY;
		return socks_request(c);
	case S_SOCKS_REPLY:
		return socks_reply(w, c);
	case S_PROBE:
	case S_RELAY:
		break;
	}
	return 0;
}

/* ---------------------------------------------------------------- relay */

static bool dbuf_take(struct dbuf *b, uint32_t cap)
{
	if (!b->p)
		b->p = malloc(cap);
	return b->p;
}

/* Room at the tail; moves the bytes to the front when it helps. */
static uint32_t dbuf_room(struct dbuf *b, uint32_t cap)
{
	if (!b->len)
		b->off = 0;
	else if (b->off + b->len == cap && b->off) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
	}
	return cap - b->off - b->len;
}

enum side { OK = 0, CLIENT_FAILED, UPSTREAM_FAILED };

/* Client to upstream until neither side moves. */
static enum side pump_up(struct worker *w, struct rconn *c, int *err)
{
	uint32_t cap = w->srv->a->buffer, room;
	bool moved;
	ssize_t r;
	long n;

	do {
		moved = false;
		if (c->cu.len) {
			r = send(c->fd, c->cu.p + c->cu.off, c->cu.len,
				 MSG_NOSIGNAL);
			if (r < 0 && errno != EAGAIN) {
				*err = errno;
				return UPSTREAM_FAILED;
			}
			if (r > 0) {
				c->cu.off += r;
				c->cu.len -= r;
				count(&w->n.bytes_up, r);
				moved = true;
			}
		}
		room = dbuf_room(&c->cu, cap);
		if (c->c_eof || !room)
			continue;
		n = l3x_stream__read(c->s, c->cu.p + c->cu.off + c->cu.len,
				     room);
		if (n > 0)
			c->cu.len += n;
		else if (!n)
			c->c_eof = true;
		else if (n != -EAGAIN)
			return CLIENT_FAILED;
		moved |= n >= 0;
	} while (moved);
	if (c->c_eof && !c->cu.len && !c->c_shut) {
		shutdown(c->fd, SHUT_WR);
		c->c_shut = true;
	}
	return OK;
}

/* Upstream to client until neither side moves. */
static enum side pump_down(struct worker *w, struct rconn *c, int *err)
{
	uint32_t cap = w->srv->a->buffer, room;
	bool moved;
	ssize_t r;
	long n;

	do {
		moved = false;
		if (c->uc.len) {
			n = l3x_stream__write(c->s, c->uc.p + c->uc.off,
					      c->uc.len);
			if (n < 0 && n != -EAGAIN)
				return CLIENT_FAILED;
			if (n > 0) {
				c->uc.off += n;
				c->uc.len -= n;
				count(&w->n.bytes_down, n);
				moved = true;
			}
		}
		room = dbuf_room(&c->uc, cap);
		if (c->u_eof || !room)
			continue;
		r = recv(c->fd, c->uc.p + c->uc.off + c->uc.len, room, 0);
		if (r > 0)
			c->uc.len += r;
		else if (!r)
			c->u_eof = true;
		else if (errno != EAGAIN) {
			*err = errno;
			return UPSTREAM_FAILED;
		}
		moved |= r >= 0;
	} while (moved);
	if (c->u_eof && !c->uc.len && !c->u_shut) {
		l3x_stream__shutdown(c->s);
		c->u_shut = true;
	}
	return OK;
}

/* A relayed stream: both ways, then the ends (see the top). */
static void relay_tcp(struct worker *w, struct rconn *c)
{
	enum side f;
	int err = 0;

	f = pump_up(w, c, &err);
	if (f == OK)
		f = pump_down(w, c, &err);
	if (f == CLIENT_FAILED) {
		/* Reset (or timed out) by the client: reset the upstream. */
		count(&w->n.client_reset, 1);
		conn_end(w, c, true);
	} else if (f == UPSTREAM_FAILED) {
		upstream_failed(w, c, err);
	} else if (c->c_shut && c->u_shut) {
		count(&w->n.upstream_closed, 1);
		conn_end(w, c, false);
	}
}

/* The SOCKS5 UDP header for the original destination, in front of @n
 * bytes at w->dgram + SOCKS_HDR. Returns where the datagram starts. */
static uint8_t *socks_wrap(struct worker *w, struct rconn *c, size_t *n)
{
	uint8_t hdr[SOCKS_HDR] = { 0, 0, 0 };
	size_t h = 3 + socks_addr(&c->dst, hdr + 3);
	uint8_t *p = w->dgram + SOCKS_HDR - h;

	memcpy(p, hdr, h);
	*n += h;
	return p;
}

/* An error on the upstream datagram socket that ends the flow: the
 * destination (or the path) said no by ICMP, which a connected socket
 * reports on its next send or receive. Anything else (ENOBUFS, ...) costs
 * one datagram. */
static bool udp_fatal(int err)
{
	return fail_of(err) != F_OTHER;
}

/* Datagrams from the client to the upstream; what the socket will not
 * take now is dropped. CLIENT_FAILED: the flow expired. */
static enum side udp_up(struct worker *w, struct rconn *c, int *err)
{
	const bool socks = w->srv->a->socks;
	uint8_t *p;
	size_t len;
	long n;

	while ((n = l3x_udp__recv(c->u, w->dgram + SOCKS_HDR, UDP_MAX)) >= 0) {
		len = n;
		p = socks ? socks_wrap(w, c, &len) : w->dgram + SOCKS_HDR;
		if (send(c->ufd, p, len, 0) >= 0) {
			count(&w->n.dgrams_up, 1);
			continue;
		}
		count(&w->n.dgrams_dropped, 1);
		if (udp_fatal(errno)) {
			*err = errno;
			return UPSTREAM_FAILED;
		}
	}
	return n == -EAGAIN ? OK : CLIENT_FAILED;
}

/* Datagrams from the upstream to the client; through a proxy only those
 * it wraps for our destination. CLIENT_FAILED: the flow expired. */
static enum side udp_down(struct worker *w, struct rconn *c, int *err)
{
	const bool socks = w->srv->a->socks;
	struct sockaddr_storage from;
	ssize_t r;
	long n;
	int h;

	for (;;) {
		r = recv(c->ufd, w->dgram, sizeof(w->dgram), 0);
		if (r < 0 && errno == EAGAIN)
			return OK;
		if (r < 0 && udp_fatal(errno)) {
			*err = errno;
			return UPSTREAM_FAILED;
		}
		if (r < 0)
			continue;
		h = 0;
		if (socks) {
			h = r < 4 || w->dgram[0] || w->dgram[1] || w->dgram[2]
				    ? -1
				    : socks_addr_parse(w->dgram + 3, r - 3,
						       &from);
			if (h <= 0) {
				count(&w->n.dgrams_dropped, 1);
				continue;
			}
			h += 3;
		}
		n = l3x_udp__send(c->u, w->dgram + h, r - h);
		if (n == -EPIPE)
			return CLIENT_FAILED;
		count(n < 0 ? &w->n.dgrams_dropped : &w->n.dgrams_down, 1);
	}
}

/* An accepted UDP flow. An upstream error (ICMP port unreachable from
 * the destination: ECONNREFUSED) ends it, counted by kind: the client's
 * next datagram makes a new request, sent up in S_PROBE, which the
 * destination refuses again, and that refusal reaches the client. */
static void relay_udp(struct worker *w, struct rconn *c)
{
	enum side f;
	ssize_t r;
	int err = 0;
	char b;

	/* The SOCKS control connection ends the association when it ends
	 * (or says anything: it has nothing to say). */
	if (c->fd >= 0) {
		r = recv(c->fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
		if (r >= 0 || errno != EAGAIN) {
			upstream_failed(w, c, r < 0 ? errno : ECONNRESET);
			return;
		}
	}
	f = udp_down(w, c, &err);
	if (f == OK)
		f = udp_up(w, c, &err);
	if (f == UPSTREAM_FAILED)
		upstream_failed(w, c, err);
	else if (f == CLIENT_FAILED)
		conn_end(w, c, false);
}

/* The upstream is ready (connected, or the proxy agreed): relay. Returns
 * 0 or an errno. */
static int relay_ready(struct worker *w, struct rconn *c)
{
	const uint32_t cap = w->srv->a->buffer;

	int err;

	if (c->kind == R_TCP &&
	    (!dbuf_take(&c->cu, cap) || !dbuf_take(&c->uc, cap)))
		return ENOMEM;
	if (c->request) {
		/* Now the client's handshake (UDP: its held datagrams go
		 * up): -ETIMEDOUT when the stack gave up on the request
		 * first. */
		err = c->kind == R_TCP
			      ? l3x_stream__answer(c->s, L3X_ANSWER_ACCEPT)
			      : l3x_udp__answer(c->u, L3X_ANSWER_ACCEPT);
		if (err)
			return -err;
		c->request = false;
	}
	c->state = S_RELAY;
	return 0;
}

/* The TCP connect (direct, or to the proxy): EINPROGRESS while it goes
 * on, else its result. */
static int connected(struct worker *w, struct rconn *c)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return errno;
	if (err)
		return err;
	len = sizeof(peer);
	if (getpeername(c->fd, (void *)&peer, &len))
		return errno == ENOTCONN ? EINPROGRESS : errno;
	if (w->srv->a->socks)
		return socks_step(w, c);
	return relay_ready(w, c);
}

/* A direct UDP request (S_PROBE): what the client sent goes up at once,
 * readable before the answer. The request is accepted when the
 * destination replies, refused when it refuses (ICMP port unreachable,
 * ECONNREFUSED on the connected socket: the client gets the same), and
 * accepted when --connect-timeout passes in silence, which is what many
 * UDP services give. Returns EINPROGRESS while it waits (or when the
 * request ended), else as connected(). */
static int probe(struct worker *w, struct rconn *c)
{
	enum side f;
	int err = 0;
	ssize_t r;
	char b;

	f = udp_up(w, c, &err);
	if (f == UPSTREAM_FAILED)
		return err;
	if (f == CLIENT_FAILED) {
		/* The stack gave up on the request first. */
		conn_end(w, c, false);
		return EINPROGRESS;
	}
	r = recv(c->ufd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r < 0 && errno != EAGAIN)
		return errno;
	if (r < 0 && now_ns() < c->deadline)
		return EINPROGRESS;
	return relay_ready(w, c);
}

/* Anything happened to @c (either side): move it on as far as it goes. */
static void serve(struct worker *w, struct rconn *c)
{
	enum rstate before;
	int err;

	do {
		before = c->state;
		if (c->state == S_CONNECT)
			err = connected(w, c);
		else if (c->state == S_PROBE)
			err = probe(w, c);
		else if (c->state != S_RELAY)
			err = socks_step(w, c);
		else
			break;
		if (err == EINPROGRESS || err == EAGAIN || c->closed)
			return;
		if (err) {
			upstream_failed(w, c, err);
			return;
		}
	} while (c->state != before);
	if (c->state != S_RELAY)
		return;
	if (c->kind == R_TCP)
		relay_tcp(w, c);
	else
		relay_udp(w, c);
}

/* A new stream or flow: its upstream socket, connect started. */
static void start_upstream(struct worker *w, struct rconn *c)
{
	const struct args *a = w->srv->a;
	int type = c->kind == R_TCP || a->socks ? SOCK_STREAM : SOCK_DGRAM;
	int fd, err;

	c->deadline = now_ns() + (uint64_t)a->connect_ms * 1000000;
	fd = upstream_socket(w, c, type, a->socks ? &a->proxy : &c->dst);
	if (fd < 0) {
		upstream_failed(w, c, -fd);
		return;
	}
	if (type == SOCK_DGRAM && c->request) {
		/* Direct UDP request: send it up, hear what comes back. */
		c->ufd = fd;
		c->state = S_PROBE;
	} else if (type == SOCK_DGRAM) {
		/* Direct UDP, --no-defer: nothing to wait for. */
		c->ufd = fd;
		err = relay_ready(w, c);
		if (err) {
			upstream_failed(w, c, err);
			return;
		}
	} else {
		c->fd = fd;
	}
	serve(w, c);
}

/* Upstreams that did not answer in --connect-timeout (a silent UDP
 * destination is accepted, see probe()); a scan of every open flow, so at
 * most once a tick however busy the worker is. */
static void expire(struct worker *w)
{
	uint64_t now = now_ns();
	struct rconn *c, *next;

	if (now - w->last_expire < (uint64_t)TICK_MS * 1000000)
		return;
	w->last_expire = now;
	for (c = w->conns; c; c = next) {
		next = c->next;
		if (c->state == S_PROBE && now >= c->deadline)
			serve(w, c);
		else if (c->state != S_RELAY && now >= c->deadline)
			upstream_failed(w, c, ETIMEDOUT);
	}
}

/* --------------------------------------------------------------- worker */

static int accept_all(struct worker *w)
{
	struct l3x_request rq;
	struct l3x_stream *s;
	struct l3x_udp *u;
	struct rconn *c;
	int work = 0;

	while ((s = l3x_worker__accept(w->l3x))) {
		work++;
		count(&w->n.tcp, 1);
		c = conn_new(w, R_TCP);
		if (!c) {
			l3x_stream__abort(s);
			continue;
		}
		c->s = s;
		c->request = l3x_stream__request(s, &rq) == 0;
		l3x_stream__set_user(s, c);
		/* Passed on as they come, as upstream (TCP_NODELAY). */
		l3x_stream__setopt(s, L3X_STREAM_NODELAY, 1);
		l3x_stream__orig_dst_addr(s, (void *)&c->dst, sizeof(c->dst));
		start_upstream(w, c);
	}
	while ((u = l3x_worker__accept_udp(w->l3x))) {
		work++;
		count(&w->n.udp, 1);
		c = conn_new(w, R_UDP);
		if (!c) {
			l3x_udp__close(u);
			continue;
		}
		c->u = u;
		c->request = !w->srv->a->no_defer; /* its first datagram */
		l3x_udp__set_user(u, c);
		l3x_udp__orig_dst_addr(u, (void *)&c->dst, sizeof(c->dst));
		start_upstream(w, c);
	}
	return work;
}

static void drain_l3x(struct worker *w)
{
	struct l3x_event ev[BATCH];
	struct rconn *c;
	int n, i, work;

	do {
		work = accept_all(w);
		n = l3x_worker__poll(w->l3x, ev, BATCH);
		if (n < 0) {
			crew_fail(&w->srv->crew, "l3x_worker__poll: %s",
				  strerror(-n));
			return;
		}
		for (i = 0; i < n; i++) {
			c = ev[i].user;
			if (!c || c->closed)
				continue;
			if (c->kind == R_TCP && (ev[i].events & L3X_EV_ERROR)) {
				/* Reset by the client (or it stopped
				 * answering): reset the upstream too. */
				count(&w->n.client_reset, 1);
				conn_end(w, c, true);
				continue;
			}
			serve(w, c);
		}
		free_dead(w);
		work += n;
	} while (work);
}

static int worker_epoll(struct worker *w)
{
	struct epoll_event l = { .events = EPOLLIN | EPOLLET,
				 .data.ptr = &w->tag_l3x };
	struct epoll_event q = { .events = EPOLLIN, .data.ptr = &w->tag_stop };

	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0)
		return -errno;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, l3x_worker__fd(w->l3x), &l) ||
	    epoll_ctl(w->ep, EPOLL_CTL_ADD, w->m.stop_fd, &q))
		return -errno;
	return 0;
}

static void worker_loop(struct worker *w)
{
	struct epoll_event ev[BATCH];
	struct rconn *c;
	int n, i;

	drain_l3x(w);
	while (!__atomic_load_n(&w->srv->step, __ATOMIC_ACQUIRE)) {
		/* Acquire: pairs with the release in stop_workers(). */
		n = epoll_wait(w->ep, ev, BATCH, TICK_MS);
		if (n < 0 && errno != EINTR) {
			crew_fail(&w->srv->crew, "epoll_wait: %s",
				  strerror(errno));
			return;
		}
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &w->tag_l3x ||
			    ev[i].data.ptr == &w->tag_stop)
				continue;
			c = ev[i].data.ptr;
			if (!c->closed)
				serve(w, c);
		}
		free_dead(w);
		expire(w);
		drain_l3x(w);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int err;

	w->ep = -1;
	w->l3x = l3x_worker__open(w->srv->stack);
	if (!w->l3x) {
		crew_fail(&w->srv->crew, "--workers %u: l3x_worker__open: %s",
			  w->srv->nw, strerror(errno));
		crew_opened(&w->srv->crew);
		return NULL;
	}
	err = worker_epoll(w);
	if (err)
		crew_fail(&w->srv->crew, "epoll: %s", strerror(-err));
	crew_opened(&w->srv->crew);
	if (!err)
		worker_loop(w);
	/* Going away: what is still relayed is reset both ways. */
	while (w->conns)
		conn_end(w, w->conns, true);
	free_dead(w);
	l3x_worker__close(w->l3x);
	if (w->ep >= 0)
		close(w->ep);
	return NULL;
}

static void stop_workers(struct server *srv)
{
	/* Release: pairs with the acquire in worker_loop(). */
	__atomic_store_n(&srv->step, 1, __ATOMIC_RELEASE);
	crew_wake_all(srv->w, sizeof(*srv->w), srv->nw);
	crew_join_all(srv->w, sizeof(*srv->w), srv->nw);
}

/* ---------------------------------------------------------------- stack */

/* The stack's bound on a request: past --connect-timeout, so that the
 * relay answers first, within what the library allows. */
static uint32_t request_ms(uint32_t connect_ms)
{
	uint32_t ms = connect_ms + 1000;

	return ms > 15000 ? 15000 : ms;
}

static struct l3x_stack *open_stack(const struct args *a, uint32_t *queues,
				    unsigned nq)
{
	L3X_OPTS(l3x_stack_opts, o, .mtu = a->mtu, .max_flows = a->max_flows,
		 .cpu = a->cpu, .udp_idle_ms = a->udp_idle_ms,
		 .udp_queue = UDP_QUEUE, .defer_accept = !a->no_defer,
		 .request_timeout_ms = request_ms(a->connect_ms));
	return stack_open(&o, &a->link, a->tun, queues, nq);
}

static void start(struct server *srv)
{
	const struct args *a = srv->a;
	sigset_t old;
	int err;

	stop_signals_block(&old);
	crew_start_all(&srv->crew, srv->w, sizeof(*srv->w), srv->nw,
		       worker_main);
	err = l3x_stack__start(srv->stack);
	if (err)
		die("l3x_stack__start: %s", strerror(-err));
	srv->started = true;
	stop_signals_restore(&old);
	stack_add_rules(srv->stack, &a->link.rules);
}

#define U(x) ((unsigned long long)(x))

static void sum_workers(const struct server *srv, struct wstats *sum)
{
	counters_sum(sum, sizeof(*sum), &srv->w[0].n, sizeof(srv->w[0]),
		     srv->nw);
}

/* The closing line: every key once, so that scripts can pick any. */
static void report(const struct server *srv)
{
	struct l3x_stack_stats st = {};
	struct wstats n;
	int k;

	l3x_stack__stats(srv->stack, &st);
	sum_workers(srv, &n);
	fprintf(stderr,
		PROG ": %s: tcp %llu udp %llu bytes_up %llu bytes_down %llu "
		     "datagrams_up %llu datagrams_down %llu datagrams_dropped "
		     "%llu client_reset %llu client_refused %llu "
		     "client_dropped %llu closed %llu; upstream",
		srv->a->socks ? srv->a->proxy_text : "direct", U(n.tcp),
		U(n.udp), U(n.bytes_up), U(n.bytes_down), U(n.dgrams_up),
		U(n.dgrams_down), U(n.dgrams_dropped), U(n.client_reset),
		U(n.client_refused), U(n.client_dropped), U(n.upstream_closed));
	for (k = 0; k < F_NR; k++)
		fprintf(stderr, " %s %llu", fail_names[k], U(n.fail[k]));
	fprintf(stderr,
		"; stack flows %llu tcp_accepted %llu tcp_requests %llu "
		"tcp_requests_timed_out %llu udp_requests %llu "
		"udp_requests_refused %llu udp_flows %llu udp_expired %llu "
		"buffered %llu mem_peak %llu\n",
		U(st.flows), U(st.tcp_accepted), U(st.tcp_requests),
		U(st.tcp_requests_timed_out), U(st.udp_requests),
		U(st.udp_requests_refused), U(st.udp_flows), U(st.udp_expired),
		U(st.buffered_bytes), U(st.mem_peak));
}

static void close_server(void *arg)
{
	struct server *srv = arg;

	stop_workers(srv);
	stack_close(srv->stack);
}

int main(int argc, char **argv)
{
	static struct args a;
	static struct server srv = { .crew = CREW_INIT };
	uint32_t queues[MAX_QUEUES];
	unsigned i, nq = 0;

	parse_args(&a, argc, argv);
	if (a.link.iface)
		nq = link_queue_list(&a.link, queues);
	srv.a = &a;
	srv.nw = a.workers;
	srv.w = crew_alloc(srv.nw, sizeof(*srv.w));
	for (i = 0; i < srv.nw; i++)
		srv.w[i].srv = &srv;
	stop_on_signals(0);
	signal(SIGPIPE, SIG_IGN);
	link_print_init(a.link.verbose);
	srv.stack = open_stack(&a, queues, nq);
	cleanup_at_exit(close_server, &srv);
	start(&srv);
	fprintf(stderr, PROG ": ready\n");
	run_until_stop(a.seconds, true, NULL, NULL);
	stop_workers(&srv);
	stack_drain_flows(srv.stack, DRAIN_MS);
	if (srv.started && l3x_stack__stop(srv.stack) == 0)
		srv.started = false;
	report(&srv);
	cleanup_now();
	if (srv.crew.fail[0])
		die("%s", srv.crew.fail);
	return 0;
}
