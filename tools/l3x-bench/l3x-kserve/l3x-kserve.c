/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x-kserve - the kernel baseline of l3x-serve: the same echo, discard and
 * http servers (and UDP echo), on kernel sockets.
 *
 * It listens on the wildcard address of each --port, IPv4 and IPv6. To
 * take connections for every address of a prefix, the way one does it on
 * Linux, give the namespace a local route for the prefix
 * (ip route add local 198.51.100.0/24 dev lo); --transparent sets
 * IP_TRANSPARENT for nftables tproxy instead. getsockname() then names
 * the original destination, and UDP replies leave from the address the
 * request went to (IP_PKTINFO / IPV6_PKTINFO on the way in and out).
 *
 * Each worker thread has its own epoll and its own listeners on every
 * port (SO_REUSEPORT: the kernel spreads connections over them), and
 * --processes forks copies when one process's open files are not enough.
 * Connections are edge-triggered: read until EAGAIN, write what came in;
 * what the socket does not take waits in a buffer of its own, and reading
 * pauses until it is gone, so a slow reader costs one chunk of memory.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"
#include "proto.h"
#include "tool.h"

#define PROG "l3x-kserve"

#define MAX_WORKERS  64
#define MAX_PORTS    16
#define MAX_CPUS     256
#define MAX_PROCS    64
#define BUF_SIZE     65536
#define UDP_BATCH    32
#define UDP_SLOT     65536
#define ACCEPT_BURST 64

struct args {
	enum proto_mode mode;
	bool have_mode;
	unsigned ports[MAX_PORTS], nports;
	unsigned workers, procs;
	unsigned cpus[MAX_CPUS], ncpus;
	uint64_t corrupt_every;
	bool transparent, no_udp, quiet;
};

/* What an epoll event points to starts with its kind. */
enum kind { K_LISTEN, K_UDP, K_CONN };

struct ent {
	uint8_t kind;
	int fd;
};

struct sconn {
	struct ent e;
	uint64_t pos;  /* bytes echoed, for --corrupt-every */
	uint8_t *pend; /* written, not yet taken by the socket */
	uint32_t pend_off, pend_len;
	struct http_req http; /* http: the request */
	bool eof, close_after;
	struct sconn *prev, *next; /* the worker's open connections */
};

struct stats {
	uint64_t accepted, bytes_in, bytes_out, datagrams, requests, errors;
	uint64_t corrupted, bad_requests;
};

struct sworker {
	pthread_t tid;
	unsigned idx;
	int cpu;
	const struct args *a;
	int ep;
	struct ent socks[MAX_PORTS * 4];
	unsigned nsocks;
	uint8_t *buf;
	uint8_t *udp; /* UDP_BATCH slots of UDP_SLOT */
	uint64_t udp_pos;
	struct stats s;
	struct sconn *conns;  /* open, closed when the worker ends */
	const char *err_what; /* what failed at the start, on which port */
	unsigned err_port;
};

/* Bad arguments exit 2, so scripts tell them from a failed run (1). */
/* clang-format off */
TOOL_DEFINE(PROG,
	    "usage: " PROG " --mode echo|discard|http --port P [--port P]...\n"
	    "       [--workers N] [--cpu LIST] [--processes N] [--transparent]\n"
	    "       [--no-udp] [--corrupt-every N] [--quiet]\n"
	    "Listens on the wildcard address, IPv4 and IPv6; give the namespace a\n"
	    "local route (ip route add local PREFIX dev lo) to serve a prefix.\n",
	    2);
/* clang-format on */

/* ------------------------------------------------------------ arguments */

static void parse_opt(void *ctx, int c)
{
	struct args *a = ctx;

	switch (c) {
	case 'm':
		a->mode = parse_name("--mode", optarg, proto_modes);
		a->have_mode = true;
		break;
	case 'p':
		if (a->nports == MAX_PORTS)
			die_arg("--port: at most %d of them", MAX_PORTS);
		a->ports[a->nports++] = parse_uint("--port", optarg, 1, 65535);
		break;
	case 'w':
		a->workers = parse_uint("--workers", optarg, 1, MAX_WORKERS);
		break;
	case 'P':
		a->procs = parse_uint("--processes", optarg, 1, MAX_PROCS);
		break;
	case 'C':
		a->ncpus = parse_cpu_list("--cpu", optarg, a->cpus, MAX_CPUS);
		break;
	case 'x':
		a->corrupt_every =
			parse_uint("--corrupt-every", optarg, 1, UINT64_MAX);
		break;
	case 't':
		a->transparent = true;
		break;
	case 'u':
		a->no_udp = true;
		break;
	case 'q':
		a->quiet = true;
		break;
	}
}

static void parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		TOOL_OPT_ARG("mode", 'm'),
		TOOL_OPT_ARG("port", 'p'),
		TOOL_OPT_ARG("workers", 'w'),
		TOOL_OPT_ARG("processes", 'P'),
		TOOL_OPT_ARG("cpu", 'C'),
		TOOL_OPT_ARG("corrupt-every", 'x'),
		TOOL_OPT_FLAG("transparent", 't'),
		TOOL_OPT_FLAG("no-udp", 'u'),
		TOOL_OPT_FLAG("quiet", 'q'),
		TOOL_OPTIONS_END,
	};
	int i;

	a->workers = 1;
	a->procs = 1;
	i = tool_options(argc, argv, opts, parse_opt, a);
	tool_no_more_args(argc, argv, i);
	tool_need(a->have_mode, "--mode", "echo, discard or http");
	tool_need(a->nports, "--port", "the port to serve; repeat for more");
	if (a->corrupt_every && a->mode != PROTO_ECHO)
		die_arg("--corrupt-every: only for --mode echo");
	if (a->mode == PROTO_HTTP)
		a->no_udp = true;
}

/* ------------------------------------------------------------ sockets */

static int sock_opt(int fd, int level, int name)
{
	int one = 1;

	return setsockopt(fd, level, name, &one, sizeof(one));
}

/* A wildcard socket on port of family and type, non-blocking. Returns the
 * fd, or -1 with errno and *what naming the step that failed. */
static int open_sock(const struct args *a, int family, int type, unsigned port,
		     const char **what)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6,
				   .sin6_port = htons(port),
				   .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in s4 = { .sin_family = AF_INET,
				  .sin_port = htons(port) };
	bool v6 = family == AF_INET6, udp = type == SOCK_DGRAM;
	int fd, err;

	*what = "socket";
	fd = socket(family, type | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	*what = "SO_REUSEPORT";
	if (sock_opt(fd, SOL_SOCKET, SO_REUSEADDR) ||
	    sock_opt(fd, SOL_SOCKET, SO_REUSEPORT))
		goto close_fd;
	*what = "IPV6_V6ONLY";
	if (v6 && sock_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY))
		goto close_fd;
	*what = "IP_TRANSPARENT (needs CAP_NET_ADMIN)";
	if (a->transparent && (v6 ? sock_opt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT)
				  : sock_opt(fd, IPPROTO_IP, IP_TRANSPARENT)))
		goto close_fd;
	/* Replies leave from the address each datagram came to; IPv6 may
	 * only name one that no interface holds (a local route's) when
	 * the socket may bind freely. */
	*what = "IP_PKTINFO";
	if (udp && (v6 ? sock_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO) ||
				    sock_opt(fd, IPPROTO_IPV6, IPV6_FREEBIND)
		       : sock_opt(fd, IPPROTO_IP, IP_PKTINFO)))
		goto close_fd;
	*what = "bind";
	if (bind(fd, v6 ? (struct sockaddr *)&s6 : (struct sockaddr *)&s4,
		 v6 ? sizeof(s6) : sizeof(s4)))
		goto close_fd;
	*what = "listen";
	if (!udp && listen(fd, 4096))
		goto close_fd;
	return fd;
close_fd:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

static int add_sock(struct sworker *w, int family, int type, unsigned port)
{
	struct ent *e = &w->socks[w->nsocks];
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = e };
	const char *what;
	int fd;

	fd = open_sock(w->a, family, type, port, &what);
	if (fd < 0) {
		/* No IPv6 in this kernel or namespace: IPv4 only. */
		if (family == AF_INET6 && errno == EAFNOSUPPORT)
			return 0;
		w->err_what = what;
		w->err_port = port;
		return -errno;
	}
	e->kind = type == SOCK_DGRAM ? K_UDP : K_LISTEN;
	e->fd = fd;
	if (type == SOCK_DGRAM)
		ev.events |= EPOLLET;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
		w->err_what = "epoll_ctl";
		close(fd);
		return -errno;
	}
	w->nsocks++;
	return 0;
}

static int open_socks(struct sworker *w)
{
	static const int fams[] = { AF_INET, AF_INET6 };
	unsigned p, f;
	int err;

	for (p = 0; p < w->a->nports; p++) {
		for (f = 0; f < 2; f++) {
			err = add_sock(w, fams[f], SOCK_STREAM, w->a->ports[p]);
			if (!err && !w->a->no_udp)
				err = add_sock(w, fams[f], SOCK_DGRAM,
					       w->a->ports[p]);
			if (err)
				return err;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ connections */

static void conn_close(struct sworker *w, struct sconn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->e.fd);
	free(c->pend);
	http_req_free(&c->http);
	free(c);
}

/* --corrupt-every N: flips every Nth byte of what is echoed. */
static void corrupt(struct sworker *w, uint64_t *pos, uint8_t *p, size_t n)
{
	uint64_t every = w->a->corrupt_every;
	size_t i;

	if (!every)
		return;
	for (i = every - 1 - *pos % every; i < n; i += every) {
		p[i] ^= 0xff;
		w->s.corrupted++;
	}
	*pos += n;
}

/* Sends what is pending; 1 when all of it is gone, 0 when the socket is
 * full, -errno on error. */
static int flush(struct sworker *w, struct sconn *c)
{
	ssize_t r;

	while (c->pend_len) {
		r = send(c->e.fd, c->pend + c->pend_off, c->pend_len,
			 MSG_NOSIGNAL);
		if (r < 0)
			return errno == EAGAIN ? 0 : -errno;
		w->s.bytes_out += r;
		c->pend_off += r;
		c->pend_len -= r;
	}
	free(c->pend);
	c->pend = NULL;
	c->pend_off = 0;
	return 1;
}

/* Sends p now, or keeps what the socket does not take for later. */
static int send_or_keep(struct sworker *w, struct sconn *c, const void *p,
			size_t n)
{
	ssize_t r = 0;
	uint8_t *np;

	if (!c->pend_len) {
		r = send(c->e.fd, p, n, MSG_NOSIGNAL);
		if (r < 0 && errno != EAGAIN)
			return -errno;
		if (r < 0)
			r = 0;
		w->s.bytes_out += r;
		if ((size_t)r == n)
			return 0;
	}
	np = realloc(c->pend, c->pend_off + c->pend_len + n - r);
	if (!np)
		return -ENOMEM;
	memcpy(np + c->pend_off + c->pend_len, (const uint8_t *)p + r, n - r);
	c->pend = np;
	c->pend_len += n - r;
	return 0;
}

/* Reads up to @n bytes into @buf: the count, 0 at EOF (noted), -errno. */
static ssize_t conn_read(struct sworker *w, struct sconn *c, void *buf,
			 size_t n)
{
	ssize_t r = recv(c->e.fd, buf, n, 0);

	if (r < 0)
		return -errno;
	if (!r)
		c->eof = true;
	w->s.bytes_in += r;
	return r;
}

/* Echo and discard: what one read brings goes back (or is dropped). */
static int echo_some(struct sworker *w, struct sconn *c)
{
	ssize_t r = conn_read(w, c, w->buf, BUF_SIZE);

	if (r <= 0 || w->a->mode == PROTO_DISCARD)
		return r < 0 ? r : 0;
	corrupt(w, &c->pos, w->buf, r);
	return send_or_keep(w, c, w->buf, r);
}

/* Answers the request in c->http (see proto.h); the connection closes once
 * the answer is out when it says so. getsockname() names the original
 * destination, with a local route or tproxy. */
static int http_answer(struct sworker *w, struct sconn *c)
{
	socklen_t cl, dl;
	char out[HTTP_ANSWER_MAX];
	struct http_ends e;
	int n;

	w->s.requests++;
	cl = sizeof(e.client);
	dl = sizeof(e.dst);
	e.client_len =
		getpeername(c->e.fd, (void *)&e.client, &cl) ? -errno : (int)cl;
	e.dst_len =
		getsockname(c->e.fd, (void *)&e.dst, &dl) ? -errno : (int)dl;
	n = http_req_answer(&c->http, &e, out, sizeof(out));
	w->s.bad_requests += c->http.bad;
	c->close_after = c->http.conn == HTTP_CLOSE;
	http_req_next(&c->http);
	return send_or_keep(w, c, out, n);
}

/* HTTP, as l3x-serve: answer a whole head waiting from pipelining, or read
 * once into the head and answer it once it is whole. */
static int http_some(struct sworker *w, struct sconn *c)
{
	size_t room;
	char *buf;
	ssize_t r;

	if (c->http.state != HTTP_READING)
		return http_answer(w, c);
	buf = http_req_room(&c->http, &room);
	if (!buf)
		return -ENOMEM;
	r = conn_read(w, c, buf, room);
	if (r <= 0)
		return r < 0 ? r : 0;
	if (http_req_add(&c->http, r) == HTTP_READING)
		return 0;
	return http_answer(w, c);
}

/* Send what is owed, then read and answer until the socket is drained or
 * full. Returns 0, or -errno when the connection must go: -ESHUTDOWN once
 * it is done (the client's EOF with all echoed, or the http answer out),
 * and it is closed with a FIN. */
static int conn_serve(struct sworker *w, struct sconn *c)
{
	int f;

	for (;;) {
		f = flush(w, c);
		if (f <= 0)
			return f;
		if (c->eof || c->close_after)
			return -ESHUTDOWN;
		f = w->a->mode == PROTO_HTTP ? http_some(w, c)
					     : echo_some(w, c);
		if (f)
			return f == -EAGAIN ? 0 : f;
	}
}

/* ------------------------------------------------------------ accepting */

static void accept_some(struct sworker *w, int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
					    EPOLLET };
	struct sconn *c;
	unsigned i;
	int fd;

	for (i = 0; i < ACCEPT_BURST; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				w->s.errors++;
				/* Leave it queued; try again shortly. */
				nanosleep(&(struct timespec){ 0, 1000000 },
					  NULL);
			}
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			w->s.errors++;
			close(fd);
			continue;
		}
		/* Answers go out at once, as l3x-serve sends them. */
		if (w->a->mode != PROTO_DISCARD)
			sock_opt(fd, IPPROTO_TCP, TCP_NODELAY);
		c->e.kind = K_CONN;
		c->e.fd = fd;
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		ev.data.ptr = c;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
			w->s.errors++;
			conn_close(w, c);
			continue;
		}
		w->s.accepted++;
	}
}

/* ------------------------------------------------------------ udp */

struct udp_batch {
	struct mmsghdr in[UDP_BATCH], out[UDP_BATCH];
	struct iovec iov[UDP_BATCH], oiov[UDP_BATCH];
	struct sockaddr_in6 from[UDP_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl[UDP_BATCH], octl[UDP_BATCH];
};

/* @len bytes of @data as the one control message of @m, in @buf. */
static void put_cmsg(struct msghdr *m, void *buf, int level, int type,
		     const void *data, size_t len)
{
	struct cmsghdr *o = buf;

	m->msg_control = buf;
	m->msg_controllen = CMSG_SPACE(len);
	o->cmsg_level = level;
	o->cmsg_type = type;
	o->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(o), data, len);
}

/* The reply's source: the address the datagram came to. */
static bool reply_ctl(struct msghdr *in, struct msghdr *out, void *buf)
{
	struct cmsghdr *c;
	struct in_pktinfo p4 = {};
	struct in6_pktinfo p6 = {};

	for (c = CMSG_FIRSTHDR(in); c; c = CMSG_NXTHDR(in, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			memcpy(&p4, CMSG_DATA(c), sizeof(p4));
			p4.ipi_spec_dst = p4.ipi_addr;
			p4.ipi_ifindex = 0;
			put_cmsg(out, buf, IPPROTO_IP, IP_PKTINFO, &p4,
				 sizeof(p4));
			return true;
		}
		if (c->cmsg_level == IPPROTO_IPV6 &&
		    c->cmsg_type == IPV6_PKTINFO) {
			memcpy(&p6, CMSG_DATA(c), sizeof(p6));
			p6.ipi6_ifindex = 0;
			put_cmsg(out, buf, IPPROTO_IPV6, IPV6_PKTINFO, &p6,
				 sizeof(p6));
			return true;
		}
	}
	return false;
}

static void udp_prepare(struct sworker *w, struct udp_batch *b)
{
	unsigned i;

	for (i = 0; i < UDP_BATCH; i++) {
		b->iov[i].iov_base = w->udp + (size_t)i * UDP_SLOT;
		b->iov[i].iov_len = UDP_SLOT;
		b->in[i].msg_hdr = (struct msghdr){
			.msg_name = &b->from[i],
			.msg_namelen = sizeof(b->from[i]),
			.msg_iov = &b->iov[i],
			.msg_iovlen = 1,
			.msg_control = b->ctl[i].buf,
			.msg_controllen = sizeof(b->ctl[i].buf),
		};
	}
}

/* Echoes a batch of n received datagrams; returns how many went out. */
static int udp_echo(struct sworker *w, int fd, struct udp_batch *b, int n)
{
	struct msghdr *in, *out;
	int i, k = 0, r;

	for (i = 0; i < n; i++) {
		in = &b->in[i].msg_hdr;
		out = &b->out[k].msg_hdr;
		memset(out, 0, sizeof(*out));
		if (!reply_ctl(in, out, b->octl[k].buf)) {
			w->s.errors++; /* no destination: cannot answer */
			continue;
		}
		corrupt(w, &w->udp_pos, b->iov[i].iov_base, b->in[i].msg_len);
		b->oiov[k].iov_base = b->iov[i].iov_base;
		b->oiov[k].iov_len = b->in[i].msg_len;
		out->msg_name = in->msg_name;
		out->msg_namelen = in->msg_namelen;
		out->msg_iov = &b->oiov[k];
		out->msg_iovlen = 1;
		k++;
	}
	for (i = 0; i < k; i += r) {
		r = sendmmsg(fd, b->out + i, k - i, 0);
		if (r <= 0) {
			w->s.errors += k - i; /* the rest is dropped */
			break;
		}
	}
	return i;
}

static void udp_event(struct sworker *w, int fd)
{
	static __thread struct udp_batch b;
	int n, i;

	for (;;) {
		udp_prepare(w, &b);
		n = recvmmsg(fd, b.in, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		w->s.datagrams += n;
		for (i = 0; i < n; i++)
			w->s.bytes_in += b.in[i].msg_len;
		if (w->a->mode == PROTO_ECHO)
			udp_echo(w, fd, &b, n);
	}
}

/* ------------------------------------------------------------ workers */

/* A connection ends when it is done (-ESHUTDOWN) or fails; a reset is a
 * client's right, anything else is counted. */
static void conn_event(struct sworker *w, struct sconn *c)
{
	int err = conn_serve(w, c);

	if (!err)
		return;
	if (err != -ESHUTDOWN && err != -ECONNRESET && err != -EPIPE)
		w->s.errors++;
	conn_close(w, c);
}

static void *worker_main(void *arg)
{
	struct sworker *w = arg;
	struct epoll_event ev[256];
	struct ent *e;
	int n, i;

	if (w->cpu >= 0)
		pin_self(w->cpu);
	while (!stop_requested()) {
		n = epoll_wait(w->ep, ev, 256, 100);
		for (i = 0; i < n; i++) {
			e = ev[i].data.ptr;
			if (e->kind == K_LISTEN)
				accept_some(w, e->fd);
			else if (e->kind == K_UDP)
				udp_event(w, e->fd);
			else
				conn_event(w, (struct sconn *)e);
		}
	}
	/* Connections still open at the signal are closed, not left for
	 * the exit (LeakSanitizer counts them as leaks). */
	while (w->conns)
		conn_close(w, w->conns);
	return NULL;
}

/* Listeners are opened here, before any thread runs, so that "ready"
 * means every port of every worker is bound. */
static void worker_init(struct sworker *w, const struct args *a, unsigned i,
			unsigned cpu_off)
{
	int err;

	w->idx = i;
	w->a = a;
	w->cpu = a->ncpus ? (int)a->cpus[(cpu_off + i) % a->ncpus] : -1;
	w->ep = epoll_create1(0);
	w->buf = malloc(BUF_SIZE);
	w->udp = a->no_udp ? NULL : malloc((size_t)UDP_BATCH * UDP_SLOT);
	if (w->ep < 0 || !w->buf || (!a->no_udp && !w->udp))
		die("worker %u: %s", i, strerror(errno));
	err = open_socks(w);
	if (err)
		die("port %u: %s: %s", w->err_port, w->err_what,
		    strerror(-err));
}

static void add_stats(struct stats *to, const struct stats *s)
{
	to->accepted += s->accepted;
	to->bytes_in += s->bytes_in;
	to->bytes_out += s->bytes_out;
	to->datagrams += s->datagrams;
	to->requests += s->requests;
	to->errors += s->errors;
	to->corrupted += s->corrupted;
	to->bad_requests += s->bad_requests;
}

static void print_ready(const struct args *a, const char *who)
{
	unsigned i;

	if (a->quiet)
		return;
	fprintf(stderr, PROG "%s: ready: %s on port", who,
		name_of(proto_modes, a->mode));
	for (i = 0; i < a->nports; i++)
		fprintf(stderr, "%s %u", i ? "," : "", a->ports[i]);
	fprintf(stderr, " (TCP%s, IPv4 and IPv6%s), %u worker%s%s\n",
		a->no_udp ? "" : " and UDP",
		a->transparent ? ", transparent" : "", a->workers,
		a->workers == 1 ? "" : "s", a->procs > 1 ? " per process" : "");
}

static void print_stats(const struct args *a, const char *who,
			const struct stats *s)
{
	if (a->quiet)
		return;
	fprintf(stderr,
		PROG
		"%s: %llu connections, %llu bytes in, %llu bytes out, "
		"%llu datagrams, %llu http requests (%llu bad), %llu errors",
		who, (unsigned long long)s->accepted,
		(unsigned long long)s->bytes_in,
		(unsigned long long)s->bytes_out,
		(unsigned long long)s->datagrams,
		(unsigned long long)s->requests,
		(unsigned long long)s->bad_requests,
		(unsigned long long)s->errors);
	if (a->corrupt_every)
		fprintf(stderr, ", %llu bytes corrupted on purpose",
			(unsigned long long)s->corrupted);
	fputc('\n', stderr);
}

/* One process: its workers until a signal, then the totals. */
static void serve(const struct args *a, unsigned cpu_off, const char *who,
		  int ready_fd)
{
	static struct sworker w[MAX_WORKERS];
	struct stats s = {};
	sigset_t old;
	unsigned i;
	int err;

	for (i = 0; i < a->workers; i++)
		worker_init(&w[i], a, i, cpu_off);
	if (ready_fd >= 0) {
		if (write(ready_fd, "r", 1) != 1)
			die("ready pipe: %s", strerror(errno));
		close(ready_fd);
	} else {
		print_ready(a, who);
	}
	stop_signals_block(&old);
	for (i = 0; i < a->workers; i++) {
		err = pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
		if (err)
			die("--workers %u: %s", a->workers, strerror(err));
	}
	stop_signals_restore(&old);
	while (!stop_requested())
		pause();
	for (i = 0; i < a->workers; i++) {
		pthread_join(w[i].tid, NULL);
		add_stats(&s, &w[i].s);
	}
	print_stats(a, who, &s);
}

/* --processes N: N copies share the ports (SO_REUSEPORT); "ready" once
 * every one of them has bound its sockets. */
static int serve_procs(const struct args *a)
{
	pid_t pids[MAX_PROCS];
	unsigned i, ready = 0;
	int pfd[2], st, rc = 0;
	char who[32], c;

	if (pipe(pfd))
		die("pipe: %s", strerror(errno));
	for (i = 0; i < a->procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork: %s", strerror(errno));
		if (!pids[i]) {
			close(pfd[0]);
			snprintf(who, sizeof(who), " [%u/%u]", i + 1, a->procs);
			serve(a, i * a->workers, who, pfd[1]);
			_exit(0);
		}
	}
	close(pfd[1]);
	while (ready < a->procs && read(pfd[0], &c, 1) == 1)
		ready++;
	close(pfd[0]);
	if (ready == a->procs)
		print_ready(a, "");
	/* Until a signal, or until one ends early: then all end. */
	while (ready == a->procs && !stop_requested() &&
	       waitpid(-1, &st, WNOHANG) <= 0)
		usleep(50000);
	for (i = 0; i < a->procs; i++)
		kill(pids[i], SIGTERM);
	for (i = 0; i < a->procs; i++) {
		if (waitpid(pids[i], &st, 0) > 0 &&
		    (!WIFEXITED(st) || WEXITSTATUS(st)))
			rc = 1;
	}
	return ready == a->procs ? rc : 1;
}

int main(int argc, char **argv)
{
	static struct args a;

	parse_args(&a, argc, argv);
	raise_nofile();
	stop_on_signals(0);
	signal(SIGPIPE, SIG_IGN);
	if (a.procs > 1)
		return serve_procs(&a);
	serve(&a, 0, "", -1);
	return 0;
}
