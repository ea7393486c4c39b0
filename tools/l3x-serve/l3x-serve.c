/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x-serve - a demo server on the termination engine: every TCP
 * connection and UDP flow the rules steer in is answered by l3x, whatever
 * address and port it was for, and served by one of N worker threads as
 * echo, discard or (TCP) a small HTTP answer naming both ends. --dns adds
 * bound UDP sockets that answer every DNS query with NXDOMAIN.
 *
 * It uses only the public API, as an example of it. The engine runs on a
 * thread of its own (l3x_stack__start). Each worker thread owns an
 * l3x_worker and sleeps in epoll on its fd and on an eventfd that wakes it
 * to stop; events are edge-triggered, so a stream or flow is read or
 * written until -EAGAIN every time it is served. Echo keeps what it could
 * not send and reads no more of that stream (or flow) until
 * L3X_EV_WRITABLE: a client that does not read slows down its own sending
 * instead of growing us.
 *
 * Stopping takes two steps, so that streams already closed in order can
 * finish their FIN exchange as a kernel socket would after close():
 * first every worker resets what it still serves and closes its flows and
 * sockets, and main waits for the stack's open flows to reach 0; then
 * the workers close their l3x_worker (which resets whatever is left).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
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
#include "proto.h"
#include "stack.h"
#include "tool.h"

#define PROG "l3x-serve"

#define MAX_DNS	     16
#define MAX_WORKERS  64		 /* the library's limit of workers per stack */
#define BATCH	     64		 /* events taken per l3x_worker__poll */
#define SCRATCH	     (64 * 1024) /* one read's worth; more than any datagram */
#define MAX_CPU	     4095
#define DRAIN_MS     2000  /* at exit: how long open flows may take to end */
#define UDP_QUEUE    256   /* datagrams per flow and direction (opts) */
#define DNS_MAX	     512   /* a DNS message over UDP without EDNS */
#define WORKER_SPINS 0	   /* --worker-spins: the default */
#define MEM_WAIT_MS  20000 /* --check-mem: how long closing PCBs may take */

struct dns_addr {
	struct sockaddr_storage ss;
	char text[80]; /* as given, for messages */
};

struct args {
	struct link_args link;
	const char *tun;
	struct dns_addr dns[MAX_DNS];
	unsigned ndns;
	enum proto_mode mode;
	bool mode_set;
	unsigned workers;
	int cpu;			/* engine core, -1: not pinned */
	uint32_t mtu;			/* 0: the library's default */
	uint32_t max_flows;		/* 0: the library's default */
	uint32_t udp_idle_ms;		/* 0: the library's default */
	uint32_t max_half_open;		/* 0: the library's default */
	enum l3x_syncookies syncookies; /* default: when full */
	uint32_t max_time_wait;		/* 0: the library's default */
	uint64_t abort_after;		/* 0: never */
	uint64_t seconds;		/* 0: until a signal */
	int64_t worker_spins; /* l3x_worker__spin() before epoll; <0: default */
	bool check_mem;	      /* at exit, memory must be back where it was */
};

enum conn_kind { C_TCP, C_UDP, C_DNS };

/* One accepted stream, UDP flow or bound DNS socket. Freed only after the
 * event batch it was closed in, so that a later event of the same batch
 * never points at freed memory. */
struct conn {
	enum conn_kind kind;
	struct l3x_stream *s;	    /* C_TCP */
	struct l3x_udp *u;	    /* C_UDP, C_DNS */
	struct conn *next, **pprev; /* the worker's open conns */
	char *pend;		    /* bytes (TCP) or a datagram owed */
	size_t pend_off, pend_len;
	size_t pend_cap;      /* UDP: bytes pend can hold */
	bool pending;	      /* UDP: pend holds a datagram */
	struct http_req http; /* http: the request */
	uint64_t in;	      /* bytes read from this stream */
	bool eof;	      /* the client half-closed */
	bool closed;
};

struct server;

/* Counters written by their worker only and read by main for progress
 * and the closing line: relaxed, nothing else is published through them. */
struct wstats {
	uint64_t accepted, bytes_in, bytes_out;
	uint64_t udp_flows, dgrams_in, dgrams_out, dgrams_dropped;
	uint64_t dns_queries, dns_answered;
	uint64_t http_requests, http_bad;
};

struct worker {
	struct crew_member m; /* first: the crew's view (stack.h) */
	bool quitting;	      /* step 1 done: serving nothing more */
	struct server *srv;
	struct l3x_worker *l3x;
	struct conn *conns; /* open streams, flows and DNS sockets */
	struct conn *dead;  /* closed in this batch, freed after it */
	struct wstats n;
	char scratch[SCRATCH];
};

struct server {
	const struct args *a;
	struct l3x_stack *stack;
	struct worker *w;
	unsigned nw;
	bool started;		   /* the engine thread runs */
	int step;		   /* of stopping: 1 reset, 2 leave (see top) */
	struct crew crew;	   /* the workers' start and first error */
	struct l3x_stack_mem mem0; /* --check-mem: before the engine ran */
	bool mem_bad;
	uint64_t progress_last; /* bytes both ways at the last progress line */
};

/* clang-format off */
TOOL_DEFINE(PROG,
	    "usage: " PROG " (--iface IF [--queue Q]... | --tun NAME) --rule RULE [--rule RULE]...\n"
	    "       --mode echo|discard|http [--dns ADDR[:PORT]]... [--workers N]\n"
	    "       [--pin-dir DIR] [--xdp-mode auto|native|skb] [--bind auto|copy|zerocopy]\n"
	    "       [--frames N]\n"
	    "       [--no-busy-poll] [--poll adaptive|busy]\n"
	    "       [--idle-spins N] [--idle-yield] [--worker-spins N] [--ack-coalesce N]\n"
	    "       [--cpu N] [--mtu N] [--max-flows N] [--udp-idle MS] [--gro on|off]\n"
	    "       [--max-time-wait N]\n"
	    "       [--abort-after BYTES] [--seconds S] [--check-mem] [--quiet] [--verbose]\n"
	    "RULE is 'PROTO DST [PORT[-PORT]] [vlan ID]', e.g. 'tcp 198.51.100.0/24'.\n",
	    1);
/* clang-format on */

/* ------------------------------------------------------------ arguments */

/* --dns ADDR[:PORT]: a socket there, and the rule that steers it. */
static void add_dns(struct args *a, const char *text)
{
	struct dns_addr *d = &a->dns[a->ndns];
	char addr[INET6_ADDRSTRLEN], rule[L3X_RULE_STRLEN];
	const void *ip;
	int port;

	if (a->ndns == MAX_DNS)
		die("--dns: at most %d addresses", MAX_DNS);
	if (!parse_sockaddr(text, 53, &d->ss))
		die("--dns '%s': not ADDR, ADDR:PORT or [ADDR6]:PORT", text);
	snprintf(d->text, sizeof(d->text), "%s", text);
	if (d->ss.ss_family == AF_INET) {
		ip = &((struct sockaddr_in *)&d->ss)->sin_addr;
		port = ntohs(((struct sockaddr_in *)&d->ss)->sin_port);
	} else {
		ip = &((struct sockaddr_in6 *)&d->ss)->sin6_addr;
		port = ntohs(((struct sockaddr_in6 *)&d->ss)->sin6_port);
	}
	inet_ntop(d->ss.ss_family, ip, addr, sizeof(addr));
	snprintf(rule, sizeof(rule), "udp %s %d", addr, port);
	rule_list_add(&a->link.rules, rule);
	a->ndns++;
}

static const struct name_value syncookie_modes[] = {
	{ "when-full", L3X_SYNCOOKIES_WHEN_FULL },
	{ "never", L3X_SYNCOOKIES_NEVER },
	{ "always", L3X_SYNCOOKIES_ALWAYS },
	{ NULL },
};

static void parse_mode(struct args *a, const char *s)
{
	a->mode = parse_name("--mode", s, proto_modes);
	a->mode_set = true;
}

static void check_args(const struct args *a)
{
	if (a->link.iface && a->tun)
		die("--iface and --tun: give one source, not both");
	if (!a->link.iface && !a->tun)
		die("--iface: missing (the interface to serve on, or --tun NAME)");
	if (a->tun && a->link.nqueues)
		die("--queue: only with --iface (a TUN device has no queues)");
	if (!a->link.rules.n)
		die("--rule: missing (at least one, e.g. --rule 'tcp 198.51.100.0/24')");
	if (!a->mode_set)
		die("--mode: missing (echo, discard or http)");
	if (a->abort_after && a->mode == PROTO_HTTP)
		die("--abort-after: only with --mode echo or discard");
}

/* The options that take a number. */
static void parse_number(struct args *a, int c, const char *s)
{
	/* One line an option, as in the tools. */
	/* clang-format off */
	switch (c) {
	case 'w':
		a->workers = parse_uint("--workers", s, 0, MAX_WORKERS);
		if (!a->workers)
			die("--workers '%s': at least 1", s);
		break;
	case 'c': a->cpu = parse_uint("--cpu", s, 0, MAX_CPU); break;
	case 'u':
		a->mtu = parse_uint("--mtu", s, 0, 9000);
		if (a->mtu < 1280)
			die("--mtu '%s': at least 1280", s);
		break;
	case 'f':
		a->max_flows = parse_uint("--max-flows", s, 0, 1u << 24);
		if (!a->max_flows)
			die("--max-flows '%s': at least 1", s);
		break;
	case 'I':
		a->udp_idle_ms = parse_uint("--udp-idle", s, 0, UINT32_MAX);
		if (!a->udp_idle_ms)
			die("--udp-idle '%s': at least 1 (milliseconds)", s);
		break;
	case 'W':
		a->worker_spins = parse_uint("--worker-spins", s, 0,
					     L3X_WORKER_SPINS_MAX);
		break;
	case 'T':
		a->max_time_wait = parse_uint("--max-time-wait", s, 0, 1u << 24);
		if (!a->max_time_wait)
			die("--max-time-wait '%s': at least 1", s);
		break;
	case 'a':
		a->abort_after = parse_uint("--abort-after", s, 0, UINT64_MAX);
		if (!a->abort_after)
			die("--abort-after '%s': at least 1", s);
		break;
	case 's': a->seconds = parse_uint("--seconds", s, 0, 1u << 30); break;
	case 'H':
		a->max_half_open = parse_uint("--max-half-open", s, 0, 1u << 20);
		if (!a->max_half_open)
			die("--max-half-open '%s': at least 1", s);
		break;
	}
	/* clang-format on */
}

static void parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		LINK_OPTIONS,
		STACK_OPTIONS,
		{ "tun", required_argument, NULL, 't' },
		{ "mode", required_argument, NULL, 'M' },
		{ "dns", required_argument, NULL, 'd' },
		{ "workers", required_argument, NULL, 'w' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "mtu", required_argument, NULL, 'u' },
		{ "max-flows", required_argument, NULL, 'f' },
		{ "udp-idle", required_argument, NULL, 'I' },
		{ "max-time-wait", required_argument, NULL, 'T' },
		{ "worker-spins", required_argument, NULL, 'W' },
		{ "abort-after", required_argument, NULL, 'a' },
		{ "seconds", required_argument, NULL, 's' },
		{ "check-mem", no_argument, NULL, 'K' },
		{ "max-half-open", required_argument, NULL, 'H' },
		{ "syncookies", required_argument, NULL, 'C' },
		TOOL_OPTIONS_END,
	};
	int c;

	a->workers = 1;
	a->cpu = -1;
	a->worker_spins = -1;
	while ((c = tool_getopt(argc, argv, "i:q:r:w:s:p:h", opts)) != -1) {
		if (link_opt(&a->link, c, optarg))
			continue;
		/* One line an option, as in the tools. */
		/* clang-format off */
		switch (c) {
		case 't': a->tun = optarg; break;
		case 'M': parse_mode(a, optarg); break;
		case 'd': add_dns(a, optarg); break;
		case 'K': a->check_mem = true; break;
		case 'C':
			a->syncookies = parse_name("--syncookies", optarg,
						   syncookie_modes);
			break;
		default: parse_number(a, c, optarg); break;
		}
		/* clang-format on */
	}
	if (optind < argc)
		die("'%s': unexpected argument (rules go after --rule)",
		    argv[optind]);
	check_args(a);
}

/* ----------------------------------------------------------------- conns */

static struct conn *conn_new(struct worker *w, enum conn_kind kind,
			     struct l3x_stream *s, struct l3x_udp *u)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->kind = kind;
	c->s = s;
	c->u = u;
	c->next = w->conns;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &w->conns;
	w->conns = c;
	if (s)
		l3x_stream__set_user(s, c);
	else
		l3x_udp__set_user(u, c);
	return c;
}

/* Done with @c: close a stream in order (queued data, then FIN), or reset
 * it; close a flow or socket (queued datagrams still leave). */
static void conn_end(struct worker *w, struct conn *c, bool reset)
{
	if (c->kind != C_TCP)
		l3x_udp__close(c->u);
	else if (reset)
		l3x_stream__abort(c->s);
	else
		l3x_stream__close(c->s);
	c->s = NULL;
	c->u = NULL;
	c->closed = true;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	c->next = w->dead;
	w->dead = c;
}

static void free_dead(struct worker *w)
{
	struct conn *c;

	while ((c = w->dead)) {
		w->dead = c->next;
		free(c->pend);
		http_req_free(&c->http);
		free(c);
	}
}

/* --------------------------------------------------------------- streams */

/* Send what @c owes. Returns 1 all sent, 0 blocked (wait for
 * L3X_EV_WRITABLE), or -errno: the stream failed. */
static int flush(struct worker *w, struct conn *c)
{
	long n;

	while (c->pend_off < c->pend_len) {
		n = l3x_stream__write(c->s, c->pend + c->pend_off,
				      c->pend_len - c->pend_off);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		c->pend_off += n;
		count(&w->n.bytes_out, n);
	}
	free(c->pend);
	c->pend = NULL;
	c->pend_off = c->pend_len = 0;
	return 1;
}

/* Owe @len bytes of @buf to the client and send what fits now. */
static int owe(struct worker *w, struct conn *c, const void *buf, size_t len)
{
	c->pend = malloc(len);
	if (!c->pend)
		return -ENOMEM;
	memcpy(c->pend, buf, len);
	c->pend_len = len;
	return flush(w, c);
}

/* Read into the scratch buffer. Returns as l3x_stream__read(); counts. */
static long take(struct worker *w, struct conn *c)
{
	long n = l3x_stream__read(c->s, w->scratch, sizeof(w->scratch));

	if (n > 0) {
		count(&w->n.bytes_in, n);
		c->in += n;
	}
	return n;
}

static bool over_limit(const struct worker *w, const struct conn *c)
{
	return w->srv->a->abort_after && c->in >= w->srv->a->abort_after;
}

/*
 * Echo: send back what was read; while the client does not take it, keep
 * the rest and read no more. After the client's FIN, finish the echo and
 * close. Any failure (reset by the client, timeout) closes the stream.
 */
static void serve_echo(struct worker *w, struct conn *c)
{
	long n;
	int r;

	for (;;) {
		r = flush(w, c);
		if (r == 0)
			return;
		if (r < 0 || c->eof) {
			conn_end(w, c, false);
			return;
		}
		n = take(w, c);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			c->eof = !n;
			if (c->eof)
				continue;
			conn_end(w, c, false);
			return;
		}
		if (over_limit(w, c)) {
			conn_end(w, c, true);
			return;
		}
		if (owe(w, c, w->scratch, n) == -ENOMEM) {
			conn_end(w, c, true);
			return;
		}
	}
}

static void serve_discard(struct worker *w, struct conn *c)
{
	long n;

	while ((n = take(w, c)) > 0) {
		if (over_limit(w, c)) {
			conn_end(w, c, true);
			return;
		}
	}
	if (n != -EAGAIN)
		conn_end(w, c, false);
}

/* Read the request head. Returns 1 complete (or too long), 0 not yet,
 * -1 the stream ended or failed before it. */
static int http_read(struct worker *w, struct conn *c)
{
	size_t room;
	char *buf;
	long n;

	for (;;) {
		buf = http_req_room(&c->http, &room);
		if (!buf)
			return -1;
		n = l3x_stream__read(c->s, buf, room);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		count(&w->n.bytes_in, n);
		if (http_req_add(&c->http, n) != HTTP_READING)
			return 1;
	}
}

/* Answer the head in c->http (see proto.h) and owe the answer. */
static int http_answer(struct worker *w, struct conn *c)
{
	char out[HTTP_ANSWER_MAX];
	struct http_ends e;
	int len;

	e.client_len = l3x_stream__client_addr(c->s, (void *)&e.client,
					       sizeof(e.client));
	e.dst_len =
		l3x_stream__orig_dst_addr(c->s, (void *)&e.dst, sizeof(e.dst));
	len = http_req_answer(&c->http, &e, out, sizeof(out));
	count(&w->n.http_requests, 1);
	if (c->http.bad)
		count(&w->n.http_bad, 1);
	c->eof = c->http.conn == HTTP_CLOSE; /* close once it is out */
	return owe(w, c, out, len);
}

/*
 * Keep-alive and pipelining: answer each whole head in turn, one answer
 * owed at a time (a client that does not read its answers is not read
 * from either), then read more. The stream is closed in order after an
 * answer that says "Connection: close", or at the client's FIN.
 */
static void serve_http(struct worker *w, struct conn *c)
{
	int r;

	for (;;) {
		r = flush(w, c);
		if (r == 0)
			return;
		if (r < 0 || c->eof)
			break;
		if (c->http.state != HTTP_READING) {
			r = http_answer(w, c);
			http_req_next(&c->http);
			if (r == -ENOMEM)
				break;
			continue;
		}
		r = http_read(w, c);
		if (r == 0)
			return;
		if (r < 0)
			break;
	}
	conn_end(w, c, r == -ENOMEM);
}

/* ------------------------------------------------------------------ udp */

/* Send the datagram @c owes. Returns 1 sent (or dropped: too large, no
 * memory), 0 blocked (wait for L3X_EV_WRITABLE), -EPIPE the flow expired. */
static int udp_flush(struct worker *w, struct conn *c)
{
	long n;

	if (!c->pending)
		return 1;
	n = l3x_udp__send(c->u, c->pend, c->pend_len);
	if (n == -EAGAIN)
		return 0;
	if (n == -EPIPE)
		return -EPIPE;
	c->pending = false;
	if (n < 0)
		count(&w->n.dgrams_dropped, 1);
	else
		count(&w->n.dgrams_out, 1);
	return 1;
}

/* Keep the datagram in the scratch buffer for udp_flush(). */
static int udp_owe(struct worker *w, struct conn *c, size_t len)
{
	if (c->pend_cap < len || !c->pend) {
		free(c->pend);
		c->pend_cap = len > 2048 ? len : 2048;
		c->pend = malloc(c->pend_cap);
		if (!c->pend) {
			c->pend_cap = 0;
			count(&w->n.dgrams_dropped, 1);
			return 1;
		}
	}
	memcpy(c->pend, w->scratch, len);
	c->pend_len = len;
	c->pending = true;
	return udp_flush(w, c);
}

/* A UDP flow: echo each datagram back from the address the client sent it
 * to (the engine does that), or drop it; close the flow when it expires. */
static void serve_udp(struct worker *w, struct conn *c)
{
	long n;
	int r;

	for (;;) {
		r = udp_flush(w, c);
		if (r == 0)
			return;
		if (r < 0)
			break;
		n = l3x_udp__recv(c->u, w->scratch, sizeof(w->scratch));
		if (n == -EAGAIN)
			return;
		if (n < 0) /* -ETIMEDOUT: the flow expired */
			break;
		count(&w->n.dgrams_in, 1);
		count(&w->n.bytes_in, n);
		if (w->srv->a->mode != PROTO_ECHO)
			continue;
		if (n > SCRATCH)
			count(&w->n.dgrams_dropped, 1);
		else
			udp_owe(w, c, n);
	}
	conn_end(w, c, false);
}

/* NXDOMAIN (NOTIMP for opcodes other than QUERY) with the question copied,
 * FORMERR when the question does not parse. Returns the reply's length, or
 * 0 for no reply: too short, or a response (never answer those: loops). */
static size_t dns_reply(const uint8_t *q, size_t n, uint8_t *out)
{
	size_t off = 12;
	uint8_t opcode, rcode;

	if (n < 12 || (q[2] & 0x80))
		return 0;
	opcode = (q[2] >> 3) & 0xf;
	rcode = opcode ? 4 : 3;
	if (q[4] || q[5] != 1)
		off = 0; /* QDCOUNT must be 1 */
	while (off && off < n && q[off]) {
		if (q[off] > 63 || off - 12 > 255)
			off = 0; /* a compression pointer or too long */
		else
			off += q[off] + 1;
	}
	if (off && off + 5 <= n && off - 12 <= 255)
		off += 5; /* the root label, QTYPE, QCLASS */
	else
		off = 0;
	if (!off)
		rcode = 1;
	memcpy(out, q, 4);
	out[2] = 0x80 | (q[2] & 0x79); /* QR, the opcode, RD */
	out[3] = rcode;
	memset(out + 4, 0, 8);
	out[5] = off ? 1 : 0;
	if (!off)
		return 12;
	memcpy(out + 12, q + 12, off - 12);
	return off;
}

/* A bound DNS socket: answer every query; a reply that does not fit in the
 * socket's queue is dropped, as a busy name server would. */
static void serve_dns(struct worker *w, struct conn *c)
{
	struct sockaddr_storage from;
	uint8_t reply[DNS_MAX];
	size_t len;
	long n;

	while ((n = l3x_udp__recvfrom(c->u, w->scratch, sizeof(w->scratch),
				      (void *)&from, sizeof(from))) >= 0) {
		count(&w->n.dns_queries, 1);
		if (n > DNS_MAX ||
		    !(len = dns_reply((void *)w->scratch, n, reply)))
			continue;
		if (l3x_udp__sendto(c->u, reply, len, (void *)&from,
				    sizeof(from)) < 0)
			count(&w->n.dgrams_dropped, 1);
		else
			count(&w->n.dns_answered, 1);
	}
}

static void serve(struct worker *w, struct conn *c)
{
	if (c->kind == C_UDP) {
		serve_udp(w, c);
		return;
	}
	if (c->kind == C_DNS) {
		serve_dns(w, c);
		return;
	}
	switch (w->srv->a->mode) {
	case PROTO_ECHO:
		serve_echo(w, c);
		break;
	case PROTO_DISCARD:
		serve_discard(w, c);
		break;
	case PROTO_HTTP:
		serve_http(w, c);
		break;
	}
}

/* --------------------------------------------------------------- workers */

/* Take every new stream and flow. Returns how many. */
static int accept_all(struct worker *w)
{
	struct l3x_stream *s;
	struct l3x_udp *u;
	struct conn *c;
	int work = 0;

	while ((s = l3x_worker__accept(w->l3x))) {
		work++;
		count(&w->n.accepted, 1);
		c = w->quitting ? NULL : conn_new(w, C_TCP, s, NULL);
		if (!c)
			l3x_stream__abort(s);
		else
			serve(w, c); /* data may be waiting already */
	}
	while ((u = l3x_worker__accept_udp(w->l3x))) {
		work++;
		count(&w->n.udp_flows, 1);
		c = w->quitting ? NULL : conn_new(w, C_UDP, NULL, u);
		if (!c)
			l3x_udp__close(u);
		else
			serve(w, c);
	}
	return work;
}

/* Take every new stream and flow and every event until there are none. */
static void drain(struct worker *w)
{
	struct l3x_event ev[BATCH];
	struct conn *c;
	int n, i, work;

	do {
		work = accept_all(w);
		n = l3x_worker__poll(w->l3x, ev, BATCH);
		if (n < 0) {
			crew_fail(&w->srv->crew,
				  "worker %u: l3x_worker__poll: %s",
				  (unsigned)(w - w->srv->w), strerror(-n));
			return;
		}
		for (i = 0; i < n; i++) {
			c = ev[i].user;
			if (c && !c->closed)
				serve(w, c);
		}
		free_dead(w);
		work += n;
	} while (work);
}

/* This worker's share of the --dns sockets: every nw-th from its index. */
static int bind_dns(struct worker *w)
{
	const struct args *a = w->srv->a;
	unsigned i, idx = w - w->srv->w;
	struct l3x_udp *u;

	for (i = idx; i < a->ndns; i += w->srv->nw) {
		u = l3x_udp__bind(w->l3x, (const void *)&a->dns[i].ss,
				  sizeof(a->dns[i].ss));
		if (!u || !conn_new(w, C_DNS, NULL, u)) {
			crew_fail(&w->srv->crew, "--dns '%s': %s",
				  a->dns[i].text, strerror(u ? ENOMEM : errno));
			l3x_udp__close(u);
			return -1;
		}
	}
	return 0;
}

static int worker_epoll(struct worker *w)
{
	struct epoll_event l3x = { .events = EPOLLIN | EPOLLET, .data.u32 = 0 };
	struct epoll_event quit = { .events = EPOLLIN, .data.u32 = 1 };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0) {
		crew_fail(&w->srv->crew, "epoll_create1: %s", strerror(errno));
		return -1;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, l3x_worker__fd(w->l3x), &l3x) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, w->m.stop_fd, &quit)) {
		crew_fail(&w->srv->crew, "epoll_ctl: %s", strerror(errno));
		close(ep);
		return -1;
	}
	return ep;
}

/* Main asked for the next step of stopping. Returns true: leave now. */
static bool worker_stop_step(struct worker *w)
{
	uint64_t v;
	int step;

	if (read(w->m.stop_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return true;
	/* Acquire: pairs with the release in stop_step(). */
	step = __atomic_load_n(&w->srv->step, __ATOMIC_ACQUIRE);
	if (step >= 1 && !w->quitting) {
		/* Streams still served are reset, flows and sockets closed;
		 * what arrives from now on is refused the same way. */
		w->quitting = true;
		while (w->conns)
			conn_end(w, w->conns, true);
		free_dead(w);
	}
	return step >= 2;
}

static void worker_loop(struct worker *w, int ep)
{
	int64_t ws = w->srv->a->worker_spins;
	uint32_t spins = ws < 0 ? WORKER_SPINS : (uint32_t)ws;
	struct epoll_event ev[2];
	int n, i, seen = 0;

	drain(w);
	for (;;) {
		/* Spinning, the loop may never reach epoll: look for main's
		 * next step of stopping here too. Acquire: as in
		 * worker_stop_step(). */
		if (spins && l3x_worker__spin(w->l3x, spins) > 0 &&
		    __atomic_load_n(&w->srv->step, __ATOMIC_ACQUIRE) == seen) {
			drain(w);
			continue;
		}
		seen = __atomic_load_n(&w->srv->step, __ATOMIC_ACQUIRE);
		n = epoll_wait(ep, ev, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			crew_fail(&w->srv->crew, "epoll_wait: %s",
				  strerror(errno));
			return;
		}
		for (i = 0; i < n; i++)
			if (ev[i].data.u32 == 1 && worker_stop_step(w))
				return;
		drain(w);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int ep = -1;

	w->l3x = l3x_worker__open(w->srv->stack);
	if (!w->l3x) {
		crew_fail(&w->srv->crew, "--workers %u: l3x_worker__open: %s",
			  w->srv->nw, strerror(errno));
		crew_opened(&w->srv->crew);
		return NULL;
	}
	if (!bind_dns(w))
		ep = worker_epoll(w);
	crew_opened(&w->srv->crew);
	if (ep >= 0) {
		worker_loop(w, ep);
		close(ep);
	}
	/* Streams still open are reset, flows and sockets closed: we are
	 * going away. */
	while (w->conns)
		conn_end(w, w->conns, true);
	free_dead(w);
	l3x_worker__close(w->l3x);
	w->l3x = NULL;
	return NULL;
}

/* Ask every worker for step @step of stopping (see the top). */
static void stop_step(struct server *srv, int step)
{
	/* Release: pairs with the acquire in worker_stop_step(). */
	__atomic_store_n(&srv->step, step, __ATOMIC_RELEASE);
	crew_wake_all(srv->w, sizeof(*srv->w), srv->nw);
}

static void stop_workers(struct server *srv)
{
	stop_step(srv, 2);
	crew_join_all(srv->w, sizeof(*srv->w), srv->nw);
}

/* ------------------------------------------------------------ the stack */

static struct l3x_stack *open_stack(const struct args *a, uint32_t *queues,
				    unsigned nq)
{
	L3X_OPTS(l3x_stack_opts, o, .mtu = a->mtu, .max_flows = a->max_flows,
		 .cpu = a->cpu, .udp_idle_ms = a->udp_idle_ms,
		 .udp_queue = UDP_QUEUE, .max_half_open = a->max_half_open,
		 .syncookies = a->syncookies,
		 .max_time_wait = a->max_time_wait);

	return stack_open(&o, &a->link, a->tun, queues, nq);
}

static volatile sig_atomic_t counters_asked; /* SIGUSR1 */

static void on_sigusr1(int sig)
{
	(void)sig;
	counters_asked = 1;
}

static void start(struct server *srv)
{
	struct sigaction sa = { .sa_handler = on_sigusr1,
				.sa_flags = SA_RESTART };
	sigset_t old, usr1;
	int err;

	/* The threads started here leave SIGINT, SIGTERM and SIGUSR1 (a
	 * line of counters) to main. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigaction(SIGUSR1, &sa, NULL);
	stop_signals_block(&old);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	/* The workers started, each with its l3x_worker. */
	crew_start_all(&srv->crew, srv->w, sizeof(*srv->w), srv->nw,
		       worker_main);
	/* Read while no engine runs: exact, and what the end must match. */
	l3x_stack__mem(srv->stack, &srv->mem0);
	err = l3x_stack__start(srv->stack);
	if (err)
		die("l3x_stack__start: %s", strerror(-err));
	srv->started = true;
	stop_signals_restore(&old);
	stack_add_rules(srv->stack, &srv->a->link.rules);
}

/* --------------------------------------------------------------- report */

static void sum_workers(const struct server *srv, struct wstats *sum)
{
	counters_sum(sum, sizeof(*sum), &srv->w[0].n, sizeof(srv->w[0]),
		     srv->nw);
}

#define U(x) ((unsigned long long)(x))

/* The counters of @srv, without a newline: every key appears once, so
 * scripts can pick any. Any thread. */
static void print_counters(const struct server *srv, const char *label)
{
	struct l3x_stack_stats st = {};
	struct l3x_steer_stats ss = {};
	struct wstats n;

	l3x_stack__stats(srv->stack, &st);
	l3x_stack__steer_stats(srv->stack, &ss);
	sum_workers(srv, &n);
	fprintf(stderr,
		PROG
		": %s: streams %llu read %llu bytes written %llu bytes; "
		"tcp accepted %llu closed %llu reset_by_client %llu aborted %llu "
		"refused_flows %llu refused_memory %llu refused_backlog %llu; "
		"udp flows_served %llu datagrams_in %llu datagrams_out %llu "
		"datagrams_dropped %llu created %llu expired %llu refused %llu "
		"delivered %llu queue_dropped %llu sent %llu send_failed %llu; "
		"dns queries %llu answered %llu; http requests %llu bad %llu; flows %llu buffered %llu; "
		"ip rx_packets %llu rx_bytes %llu tx_packets %llu tx_bytes %llu "
		"not_ip %llu no_rule %llu no_memory %llu bad %llu tx_dropped %llu; "
		"xdp passed %llu redirected %llu redirect_failed %llu malformed %llu; "
		"fate rx_ip_bad %llu rx_frag_held %llu rx_frag_bad %llu "
		"rx_tcp_flow %llu rx_tcp_listen %llu rx_tcp_timewait %llu "
		"rx_tcp_bad %llu rx_udp %llu rx_udp_bad %llu rx_icmp %llu "
		"rx_icmp_bad %llu rx_ring_dropped %llu",
		label, U(n.accepted), U(n.bytes_in), U(n.bytes_out),
		U(st.tcp_accepted), U(st.tcp_closed), U(st.tcp_reset_by_client),
		U(st.tcp_aborted), U(st.tcp_refused_flows),
		U(st.tcp_refused_memory), U(st.tcp_refused_backlog),
		U(n.udp_flows), U(n.dgrams_in), U(n.dgrams_out),
		U(n.dgrams_dropped), U(st.udp_flows), U(st.udp_expired),
		U(st.udp_refused), U(st.udp_rx), U(st.udp_rx_dropped),
		U(st.udp_tx), U(st.udp_tx_failed), U(n.dns_queries),
		U(n.dns_answered), U(n.http_requests), U(n.http_bad),
		U(st.flows), U(st.buffered_bytes), U(st.rx_packets),
		U(st.rx_bytes), U(st.tx_packets), U(st.tx_bytes),
		U(st.rx_not_ip), U(st.rx_no_rule), U(st.rx_no_memory),
		U(st.rx_bad), U(st.tx_dropped), U(ss.passed), U(ss.redirected),
		U(ss.redirect_failed), U(ss.malformed), U(st.rx_ip_bad),
		U(st.rx_frag_held), U(st.rx_frag_bad), U(st.rx_tcp_flow),
		U(st.rx_tcp_listen), U(st.rx_tcp_timewait), U(st.rx_tcp_bad),
		U(st.rx_udp), U(st.rx_udp_bad), U(st.rx_icmp),
		U(st.rx_icmp_bad), U(st.rx_ring_dropped));
	fprintf(stderr,
		"; limits tcp_flows_open %llu udp_flows_open %llu "
		"tcp_refused_source %llu udp_refused_source %llu "
		"tcp_refused_hash %llu udp_refused_hash %llu udp_evicted %llu "
		"udp_bad_length %llu udp6_zero_checksum %llu mem_bytes %llu "
		"mem_peak %llu rx_dropped_memory %llu tcp_window_shrunk %llu "
		"tcp_ooo_dropped %llu tcp_rx_merged %llu rx_src_mac_group %llu "
		"tx_no_way %llu way_refused %llu; syn received %llu "
		"half_open %llu half_open_dropped %llu cookies_sent %llu "
		"cookies_ok %llu cookies_bad %llu; tcp_time_wait %llu "
		"tcp_time_wait_peak %llu tcp_tw_reused %llu tcp_tw_recycled %llu "
		"tcp_tw_rst %llu tcp_paws_dropped %llu tcp_idle_timeouts %llu "
		"tcp_keepalive_timeouts %llu tcp_persist_timeouts %llu "
		"tcp_half_open_expired %llu; rx_zerocopy %llu rx_copied %llu "
		"rx_zerocopy_fallback %llu tx_kicks %llu tcp_ack_deferred %llu "
		"tcp_gro_merged %llu tcp_gro_flushed %llu",
		U(st.tcp_flows_open), U(st.udp_flows_open),
		U(st.tcp_refused_source), U(st.udp_refused_source),
		U(st.tcp_refused_hash), U(st.udp_refused_hash),
		U(st.udp_evicted), U(st.udp_bad_length),
		U(st.udp6_zero_checksum), U(st.mem_bytes), U(st.mem_peak),
		U(st.rx_dropped_memory), U(st.tcp_window_shrunk),
		U(st.tcp_ooo_dropped), U(st.tcp_rx_merged),
		U(st.rx_src_mac_group), U(st.tx_no_way), U(st.way_refused),
		U(st.tcp_syn_received), U(st.tcp_half_open),
		U(st.tcp_half_open_dropped), U(st.tcp_syn_cookies_sent),
		U(st.tcp_syn_cookies_ok), U(st.tcp_syn_cookies_bad),
		U(st.tcp_time_wait), U(st.tcp_time_wait_peak),
		U(st.tcp_tw_reused), U(st.tcp_tw_recycled), U(st.tcp_tw_rst),
		U(st.tcp_paws_dropped), U(st.tcp_idle_timeouts),
		U(st.tcp_keepalive_timeouts), U(st.tcp_persist_timeouts),
		U(st.tcp_half_open_expired), U(st.rx_zerocopy), U(st.rx_copied),
		U(st.rx_zerocopy_fallback), U(st.tx_kicks),
		U(st.tcp_ack_deferred), U(st.tcp_gro_merged),
		U(st.tcp_gro_flushed));
}

/* The closing line: the counters, then memory still in use (read with
 * the engine stopped). */
static void report(const struct server *srv)
{
	struct l3x_stack_mem m = {};

	l3x_stack__mem(srv->stack, &m);
	print_counters(srv, name_of(proto_modes, srv->a->mode));
	fprintf(stderr,
		"; mem pbufs %u tcp_pcbs %u tcp_segs %u udp_pcbs %u stream_objects %u; "
		"umem total %u free %u fill %u kernel %u app %u tx %u completion %u\n",
		m.pbufs, m.tcp_pcbs, m.tcp_segs, m.udp_pcbs, m.streams,
		m.frames.total, m.frames.free, m.frames.fill, m.frames.kernel,
		m.frames.app, m.frames.tx, m.frames.completion);
}

static void progress(const struct server *srv, uint64_t *last, double dt)
{
	struct l3x_stack_stats st = {};
	struct wstats n;

	l3x_stack__stats(srv->stack, &st);
	sum_workers(srv, &n);
	fprintf(stderr,
		"\r" PROG ": %llu open, %llu tcp accepted, %llu udp flows, "
		"%.1f MB in, %.1f MB out, %.0f Mbit/s   ",
		(unsigned long long)st.flows,
		(unsigned long long)st.tcp_accepted,
		(unsigned long long)st.udp_flows, n.bytes_in / 1e6,
		n.bytes_out / 1e6,
		(n.bytes_in + n.bytes_out - *last) * 8 / dt / 1e6);
	*last = n.bytes_in + n.bytes_out;
}

/* A turn of the main loop (run_until_stop()): a line of counters when
 * SIGUSR1 asked for one, a progress line when one is due. */
static void turn(void *arg, double dt)
{
	struct server *srv = arg;

	if (counters_asked) {
		/* Cleared first: a signal during the print asks for the
		 * next line. */
		counters_asked = 0;
		print_counters(srv, "counters");
		fputc('\n', stderr);
	}
	if (dt > 0)
		progress(srv, &srv->progress_last, dt);
}

/* Let the streams closed in order finish their FIN exchange, and the RSTs
 * of those just reset reach the clients. */
static void drain_flows(struct server *srv)
{
	stack_drain_flows(srv->stack, DRAIN_MS);
}

/* --check-mem: whether lwIP holds nothing more than at the start. Read
 * while the engine runs, it is a racy snapshot: good enough to wait on. */
static bool mem_back(const struct server *srv)
{
	const struct l3x_stack_mem *m0 = &srv->mem0;
	struct l3x_stack_mem m;

	l3x_stack__mem(srv->stack, &m);
	return m.tcp_pcbs <= m0->tcp_pcbs && m.tcp_segs <= m0->tcp_segs &&
	       m.pbufs <= m0->pbufs && m.reass <= m0->reass && !m.streams &&
	       m.heap_bytes <= m0->heap_bytes;
}

/* --check-mem: streams that closed in order may still be finishing their
 * FIN exchange (LAST_ACK, retransmitted on a lossy wire) for a while, and
 * lwIP's TCP timer frees its timeout (heap) one tick after the last PCB. */
static void wait_mem(const struct server *srv)
{
	int i;

	for (i = 0; i < MEM_WAIT_MS / 10 && !mem_back(srv); i++)
		poll(NULL, 0, 10);
}

/* --check-mem, the engine stopped: lwIP's pools, segments, PCBs and heap
 * back at (the heap and UDP PCBs at most at: closed DNS sockets free
 * theirs) their values before the engine first ran, every UMEM frame
 * accounted for and none held by the application. One line either way. */
static void check_mem(struct server *srv)
{
	const struct l3x_stack_mem *o = &srv->mem0;
	const struct l3x_frame_stats *f;
	struct l3x_stack_mem m;
	uint64_t parts;

	l3x_stack__mem(srv->stack, &m);
	f = &m.frames;
	parts = (uint64_t)f->free + f->fill + f->kernel + f->app + f->tx +
		f->completion;
	srv->mem_bad = m.heap_bytes > o->heap_bytes || m.pbufs != o->pbufs ||
		       m.tcp_pcbs != o->tcp_pcbs ||
		       m.tcp_listen_pcbs != o->tcp_listen_pcbs ||
		       m.tcp_segs != o->tcp_segs || m.udp_pcbs > o->udp_pcbs ||
		       m.reass != o->reass || m.streams || f->app ||
		       parts != f->total || f->total != o->frames.total;
	fprintf(stderr,
		PROG ": check-mem %s: now (at start) heap %llu (%llu) pbufs "
		     "%u (%u) tcp_pcbs %u (%u) listen_pcbs %u (%u) tcp_segs %u "
		     "(%u) udp_pcbs %u (%u) reass %u (%u) streams %u; frames "
		     "total %u (%u) parts %llu app %u\n",
		srv->mem_bad ? "FAILED" : "ok", U(m.heap_bytes),
		U(o->heap_bytes), m.pbufs, o->pbufs, m.tcp_pcbs, o->tcp_pcbs,
		m.tcp_listen_pcbs, o->tcp_listen_pcbs, m.tcp_segs, o->tcp_segs,
		m.udp_pcbs, o->udp_pcbs, m.reass, o->reass, m.streams, f->total,
		o->frames.total, U(parts), f->app);
}

/* Runs on every exit, die() included: workers closed first (the stack
 * refuses to close under them), then the stack, which detaches. */
static void close_server(void *arg)
{
	struct server *srv = arg;

	stop_workers(srv);
	stack_close(srv->stack);
}

/* The orderly end: streams reset, flows given time to end, workers
 * closed, the engine stopped so that its memory can be read, one line of
 * counters. */
static void finish(struct server *srv)
{
	int err;

	stop_step(srv, 1);
	drain_flows(srv);
	stop_workers(srv);
	drain_flows(srv);
	if (srv->a->check_mem && srv->started)
		wait_mem(srv);
	if (srv->started) {
		err = l3x_stack__stop(srv->stack);
		if (err)
			fprintf(stderr, PROG ": l3x_stack__stop: %s\n",
				strerror(-err));
		srv->started = false;
	}
	if (srv->a->check_mem)
		check_mem(srv);
	report(srv);
	cleanup_now();
	if (srv->crew.fail[0])
		die("%s", srv->crew.fail);
	if (srv->mem_bad)
		exit(1);
}

int main(int argc, char **argv)
{
	static struct args a;
	static struct server srv = {
		.crew = CREW_INIT,
	};
	uint32_t queues[MAX_QUEUES];
	unsigned i, nq;

	parse_args(&a, argc, argv);
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
	run_until_stop(a.seconds, a.link.quiet, turn, &srv);
	finish(&srv);
	return 0;
}
