/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x-load - drive TCP and UDP servers from kernel sockets and check every
 * byte they send back: the load generator of the termination benchmarks.
 *
 * Each thread owns an epoll instance and a slice of the connections, all
 * non-blocking and edge-triggered: on any event a connection does all it
 * can (read until EAGAIN, write until EAGAIN or its window is full). What a
 * connection sends is a pseudo-random byte stream of its own seed, a pure
 * function of (seed, offset) read from a shared table, so what comes back
 * is checked as it arrives without a copy kept; rr, crr and hold requests
 * are slices of the same stream. Latencies go to a log-linear histogram
 * per thread (32 steps per power of two: under 3% error, fixed size),
 * merged at the end.
 *
 * Connections are opened before the clock starts (except crr, where the
 * opening is what is measured); a barrier starts every thread together.
 * hold keeps many idle connections: past PROC_CONNS per process (the
 * open-file limit is 20,000 here) it forks children that each hold a slice
 * and report through a pipe of their own.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "mix64.h"
#include "parse.h"
#include "tool.h"

#define PROG "l3x-load"

#define MAX_THREADS	64
#define MAX_CPUS	256
#define MAX_ADDRS	65536
#define MAX_CONNS	1000000
#define PROC_CONNS	15000 /* connections per process, below the fd cap */
#define BUF_SIZE	65536 /* per thread, for reads and for writes */
#define MAX_INFLIGHT	64    /* connects in progress per thread at setup */
#define CONNECT_TIMEOUT 10.0  /* seconds */
#define DRAIN_TIMEOUT	10.0  /* bulk: the echo's end, at least (seconds) */
#define DRAIN_MAX	600.0 /* ... and at most, unless --drain-timeout */
#define DRAIN_MIN_RATE	1e6   /* bytes/s assumed when the run saw less */
#define RETRY_DELAY	0.01  /* crr: seconds before a failed loop retries */
#define CHECK_INFLIGHT	256   /* hold --check-all: requests out per thread */
#define MAX_MESSAGES	10    /* problems described on stderr */
#define NS		1000000000ull

enum mode { M_BULK, M_CRR, M_RR, M_UDP_RR, M_HOLD };

/* A name to a line; the formatter would pack them in columns. */
/* clang-format off */
static const struct name_value modes[] = {
	{"bulk", M_BULK},
	{"crr", M_CRR},
	{"rr", M_RR},
	{"udp-rr", M_UDP_RR},
	{"hold", M_HOLD},
	{NULL},
};
/* clang-format on */

struct dst {
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} u;
	socklen_t len;
	char str[ADDR_STRLEN];
};

struct args {
	enum mode mode;
	int family;
	struct dst base;
	unsigned prefix, addrs;
	unsigned port;
	unsigned conns, threads;
	unsigned cpus[MAX_CPUS], ncpus;
	double seconds, interval, timeout;
	double drain_timeout; /* bulk: 0, the deadline scales (drain_seconds) */
	unsigned size, sample;
	uint64_t seed, window;
	bool discard, rst, json, quiet, check_all;
	bool have_mode, have_dst, have_port, have_conns, have_timeout;
	bool have_size, have_window, have_interval, have_sample;
};

/* ------------------------------------------------------------ usage */

/* Bad arguments exit 2, so scripts tell them from a failed run (1). */
/* clang-format off */
TOOL_DEFINE(PROG,
	    "usage: " PROG " MODE --dst ADDR[/LEN] --port P [--addrs N] [--conns N]\n"
	    "       [--seconds S] [--threads N] [--cpu LIST] [--seed N] [--json]\n"
	    "MODE is one of:\n"
	    "  bulk    [--discard] [--window BYTES] [--drain-timeout S]   stream to\n"
	    "          an echo server and verify every byte (or, --discard, to a\n"
	    "          discard server)\n"
	    "  crr     [--size B] [--rst]   connect, request, response, close\n"
	    "  rr      [--size B]           request/response on open connections\n"
	    "  udp-rr  [--size B] [--timeout S]   the same over UDP\n"
	    "  hold    [--interval S] [--sample N] [--timeout S] [--check-all]\n"
	    "          hold idle connections open, checking that a sample still\n"
	    "          echoes (and, --check-all, every one of them at the end)\n",
	    2);
/* clang-format on */

/* ------------------------------------------------------------ time */

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { ns / NS, ns % NS };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ the stream */

/*
 * Byte i of the stream of seed s is
 *	T[(o + i) mod P] ^ K[i mod 8]
 * where T holds P pseudo-random bytes (splitmix64 of --seed), and the
 * offset o and the 8-byte key K are functions of s, itself a function of
 * --seed and the connection. Writing a slice is a copy and checking one a
 * compare, 8 bytes at a time: computing every word instead cost the
 * client a quarter of the goodput the kernel's echo reaches on veth. A
 * byte replaced, lost, duplicated or reordered shows unless shifted by a
 * multiple of P; bytes of another stream unless its offset and its key
 * both match (1 in 2^84).
 */
#define STREAM_P 1048573u /* a prime: no power-of-two shift is a period */

/* P bytes, then its first BUF_SIZE + 8 again: any slice up to BUF_SIZE
 * is contiguous. Written once before any thread starts. */
static uint8_t *stream_table;

static void stream_init(uint64_t seed)
{
	size_t n = STREAM_P + BUF_SIZE + 8, i;
	uint64_t w;

	stream_table = malloc(n + 8);
	if (!stream_table)
		die("out of memory for the stream table");
	for (i = 0; i < STREAM_P; i += 8) {
		w = htole64(mix64(seed + (i / 8 + 1) * 0x9e3779b97f4a7c15ull));
		memcpy(stream_table + i, &w, 8);
	}
	memcpy(stream_table + STREAM_P, stream_table, n - STREAM_P);
}

/* Where byte pos of the stream of seed is in the table. */
static inline const uint8_t *stream_at(uint64_t seed, uint64_t pos)
{
	return stream_table +
	       (mix64(seed) % STREAM_P + pos % STREAM_P) % STREAM_P;
}

/* The key as it lies over the 8 bytes from pos on, in memory order. */
static inline uint64_t stream_key(uint64_t seed, uint64_t pos)
{
	uint64_t k = mix64(seed ^ 0xd6e8feb86659fd93ull);
	unsigned r = 8 * (pos & 7);

	return htole64(r ? k >> r | k << (64 - r) : k);
}

static inline uint8_t stream_byte(uint64_t seed, uint64_t pos)
{
	uint64_t k = stream_key(seed, pos);

	return *stream_at(seed, pos) ^ *(const uint8_t *)&k;
}

/* Bytes [pos, pos + len) of the stream of seed; len <= BUF_SIZE. */
static void stream_fill(uint64_t seed, uint64_t pos, uint8_t *p, size_t len)
{
	const uint8_t *t = stream_at(seed, pos);
	uint64_t k = stream_key(seed, pos), a;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&a, t + i, 8);
		a ^= k;
		memcpy(p + i, &a, 8);
	}
	for (; i < len; i++)
		p[i] = t[i] ^ ((const uint8_t *)&k)[i & 7];
}

/* How many of the len bytes at p (len <= BUF_SIZE) differ from the stream
 * at pos; the offset of the first one goes to *first. */
static uint64_t stream_check(uint64_t seed, uint64_t pos, const uint8_t *p,
			     size_t len, size_t *first)
{
	const uint8_t *t = stream_at(seed, pos);
	uint64_t k = stream_key(seed, pos), a, b, diff = 0, bad = 0;
	const uint8_t *kb = (const uint8_t *)&k;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&a, p + i, 8);
		memcpy(&b, t + i, 8);
		diff |= a ^ b ^ k;
	}
	for (; i < len; i++)
		diff |= p[i] ^ t[i] ^ kb[i & 7];
	if (!diff)
		return 0;
	for (i = 0; i < len; i++)
		if ((p[i] ^ kb[i & 7]) != t[i] && !bad++)
			*first = i;
	return bad;
}

/* ------------------------------------------------------------ histogram */

#define HIST_SUB_BITS 5
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t n[HIST_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
	unsigned msb;

	if (v < HIST_SUB)
		return v;
	msb = 63 - __builtin_clzll(v);
	return (msb - HIST_SUB_BITS + 1) * HIST_SUB +
	       ((v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* The middle of bucket i. */
static double hist_value(unsigned i)
{
	unsigned g = i / HIST_SUB, s = i % HIST_SUB;

	if (!g)
		return i;
	return (double)((uint64_t)(HIST_SUB + s) << (g - 1)) +
	       ((uint64_t)1 << (g - 1)) / 2.0;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->n[hist_index(v)]++;
}

/* The q-quantile (0 < q < 1) in the histogram's unit; -1 when empty. */
static double hist_quantile(const struct hist *h, double q)
{
	uint64_t total = 0, want, seen = 0;
	unsigned i;

	for (i = 0; i < HIST_BUCKETS; i++)
		total += h->n[i];
	if (!total)
		return -1;
	want = (uint64_t)(q * total);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= want)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ------------------------------------------------------------ arguments */

static double parse_secs(const char *opt, const char *s)
{
	return parse_positive(opt, s, 1e6, "a number of seconds above 0");
}

static void parse_dst(struct args *a, const char *s)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	unsigned max;

	if (strlen(s) >= sizeof(buf))
		die_arg("--dst '%s': not an address", s);
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = 0;
	a->family = strchr(buf, ':') ? AF_INET6 : AF_INET;
	max = a->family == AF_INET6 ? 128 : 32;
	if (a->family == AF_INET6 &&
	    inet_pton(AF_INET6, buf, &a->base.u.in6.sin6_addr) != 1)
		die_arg("--dst '%s': not an IPv6 address", s);
	if (a->family == AF_INET &&
	    inet_pton(AF_INET, buf, &a->base.u.in.sin_addr) != 1)
		die_arg("--dst '%s': not an IPv4 or IPv6 address", s);
	a->prefix =
		slash ? parse_uint("--dst prefix length", slash, 0, max) : max;
	a->have_dst = true;
}

static void parse_mode(struct args *a, const char *s)
{
	int m;

	if (!find_name(modes, s, &m))
		die_arg("'%s': unknown mode (bulk, crr, rr, udp-rr or hold)",
			s);
	a->mode = m;
	a->have_mode = true;
}

static void parse_opt(void *ctx, int c)
{
	struct args *a = ctx;

	/* One line an option, as in the tools. */
	/* clang-format off */
	switch (c) {
	case 'd': parse_dst(a, optarg); break;
	case 'A': a->addrs = parse_uint("--addrs", optarg, 1, MAX_ADDRS); break;
	case 'p':
		a->port = parse_uint("--port", optarg, 1, 65535);
		a->have_port = true;
		break;
	case 'c':
		a->conns = parse_uint("--conns", optarg, 1, MAX_CONNS);
		a->have_conns = true;
		break;
	case 's': a->seconds = parse_secs("--seconds", optarg); break;
	case 't': a->threads = parse_uint("--threads", optarg, 1, MAX_THREADS); break;
	case 'C': a->ncpus = parse_cpu_list("--cpu", optarg, a->cpus, MAX_CPUS); break;
	case 'S': a->seed = parse_uint("--seed", optarg, 0, UINT64_MAX); break;
	case 'z':
		a->size = parse_uint("--size", optarg, 1, BUF_SIZE);
		a->have_size = true;
		break;
	case 'w':
		a->window = parse_uint("--window", optarg, 1, 1ull << 32);
		a->have_window = true;
		break;
	case 'D': a->discard = true; break;
	case 'R': a->rst = true; break;
	case 'i':
		a->interval = parse_secs("--interval", optarg);
		a->have_interval = true;
		break;
	case 'n':
		a->sample = parse_uint("--sample", optarg, 1, MAX_CONNS);
		a->have_sample = true;
		break;
	case 'T':
		a->timeout = parse_secs("--timeout", optarg);
		a->have_timeout = true;
		break;
	case 'a': a->check_all = true; break;
	case 'X': a->drain_timeout = parse_secs("--drain-timeout", optarg); break;
	case 'j': a->json = true; break;
	case 'q': a->quiet = true; break;
	}
	/* clang-format on */
}

/* The open-file limit decides how many connections one process holds. */
static unsigned proc_conns(void)
{
	uint64_t n = raise_nofile();

	if (!n)
		return PROC_CONNS;
	if (n < 1200)
		return n > 200 ? n - 200 : 1;
	return n - 1000 < PROC_CONNS ? n - 1000 : PROC_CONNS;
}

static void check_cpus(const struct args *a)
{
	cpu_set_t set;
	unsigned i;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (i = 0; i < a->ncpus; i++)
		if (!CPU_ISSET(a->cpus[i], &set))
			die_arg("--cpu %u: not a CPU this process may run on (%d "
				"online)",
				a->cpus[i], CPU_COUNT(&set));
}

static void only_for(const struct args *a, bool given, const char *opt,
		     enum mode m1, enum mode m2)
{
	if (given && a->mode != m1 && a->mode != m2)
		die_arg("%s: not for mode %s", opt, name_of(modes, a->mode));
}

static void check_mode_opts(const struct args *a)
{
	only_for(a, a->discard, "--discard", M_BULK, M_BULK);
	only_for(a, a->have_window, "--window", M_BULK, M_BULK);
	only_for(a, a->drain_timeout > 0, "--drain-timeout", M_BULK, M_BULK);
	only_for(a, a->rst, "--rst", M_CRR, M_CRR);
	only_for(a, a->have_interval, "--interval", M_HOLD, M_HOLD);
	only_for(a, a->have_sample, "--sample", M_HOLD, M_HOLD);
	only_for(a, a->check_all, "--check-all", M_HOLD, M_HOLD);
	only_for(a, a->have_timeout, "--timeout", M_UDP_RR, M_HOLD);
	if (a->have_size && a->mode == M_BULK)
		die_arg("--size: not for mode bulk (it streams)");
	if (a->mode == M_UDP_RR && a->size < 8)
		die_arg("--size %u: udp-rr needs 8 bytes at least (a sequence "
			"number)",
			a->size);
	if (a->mode == M_UDP_RR && a->size > 65507)
		die_arg("--size %u: above the largest UDP datagram", a->size);
}

static void check_args(struct args *a)
{
	unsigned host = (a->family == AF_INET6 ? 128 : 32) - a->prefix;
	unsigned limit = proc_conns();

	tool_need(a->have_mode, "MODE", "bulk, crr, rr, udp-rr or hold");
	tool_need(a->have_dst, "--dst", "the server's address or prefix");
	tool_need(a->have_port, "--port", "the server's port");
	check_mode_opts(a);
	check_cpus(a);
	if (a->addrs > 1 && host < 32 && a->addrs > (1ull << host))
		die_arg("--addrs %u: a /%u holds only %llu addresses", a->addrs,
			a->prefix, 1ull << host);
	if (a->mode != M_HOLD && a->conns > limit)
		die_arg("--conns %u: at most %u for %s (open-file limit); only "
			"hold spreads over processes",
			a->conns, limit, name_of(modes, a->mode));
	if (a->threads > a->conns)
		die_arg("--threads %u: more than --conns (%u)", a->threads,
			a->conns);
	if (a->mode == M_HOLD && a->sample > a->conns)
		a->sample = a->conns;
}

static void set_defaults(struct args *a)
{
	if (!a->have_conns)
		a->conns = a->mode == M_BULK ? 1 : a->mode == M_HOLD ? 1000 : 8;
	if (!a->have_timeout)
		a->timeout = a->mode == M_UDP_RR ? 0.2 : 1;
	if (!a->have_size)
		a->size = 64;
	if (!a->have_window)
		a->window = 1 << 20;
	if (!a->have_interval)
		a->interval = 1;
	if (!a->have_sample)
		a->sample = 100;
}

static void parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		TOOL_OPT_ARG("dst", 'd'),
		TOOL_OPT_ARG("addrs", 'A'),
		TOOL_OPT_ARG("port", 'p'),
		TOOL_OPT_ARG("conns", 'c'),
		TOOL_OPT_ARG("seconds", 's'),
		TOOL_OPT_ARG("threads", 't'),
		TOOL_OPT_ARG("cpu", 'C'),
		TOOL_OPT_ARG("seed", 'S'),
		TOOL_OPT_ARG("size", 'z'),
		TOOL_OPT_ARG("window", 'w'),
		TOOL_OPT_ARG("drain-timeout", 'X'),
		TOOL_OPT_FLAG("discard", 'D'),
		TOOL_OPT_FLAG("rst", 'R'),
		TOOL_OPT_ARG("interval", 'i'),
		TOOL_OPT_ARG("sample", 'n'),
		TOOL_OPT_ARG("timeout", 'T'),
		TOOL_OPT_FLAG("check-all", 'a'),
		TOOL_OPT_FLAG("json", 'j'),
		TOOL_OPT_FLAG("quiet", 'q'),
		TOOL_OPTIONS_END,
	};
	int i;

	a->addrs = 1;
	a->threads = 1;
	a->seconds = 10;
	a->seed = 1;
	i = tool_options(argc, argv, opts, parse_opt, a);
	if (i < argc)
		parse_mode(a, argv[i++]);
	tool_no_more_args(argc, argv, i);
	tool_need(a->have_mode, "MODE",
		  "bulk, crr, rr, udp-rr or hold; see --help");
	set_defaults(a);
	check_args(a);
}

/* ------------------------------------------------------------ addresses */

/* Address k of the list: the given one plus k, inside its prefix. */
static void make_dst(const struct args *a, unsigned k, struct dst *d)
{
	uint64_t lo, mask;
	uint32_t v4;

	memset(d, 0, sizeof(*d));
	if (a->family == AF_INET) {
		mask = a->prefix ? ~0u << (32 - a->prefix) : 0;
		v4 = ntohl(a->base.u.in.sin_addr.s_addr);
		if (((v4 + k) & mask) != (v4 & mask) || v4 + k < v4)
			die_arg("--addrs %u: from %s on, the /%u ends after %u "
				"addresses",
				a->addrs, inet_ntoa(a->base.u.in.sin_addr),
				a->prefix, k);
		d->u.in.sin_family = AF_INET;
		d->u.in.sin_addr.s_addr = htonl(v4 + k);
		d->u.in.sin_port = htons(a->port);
		d->len = sizeof(d->u.in);
	} else {
		d->u.in6 = a->base.u.in6;
		memcpy(&lo, &d->u.in6.sin6_addr.s6_addr[8], 8);
		lo = be64toh(lo);
		mask = a->prefix <= 64 ? 0 : ~0ull << (128 - a->prefix);
		if (((lo + k) & mask) != (lo & mask) || lo + k < lo)
			die_arg("--addrs %u: the /%u ends after %u addresses",
				a->addrs, a->prefix, k);
		lo = htobe64(lo + k);
		memcpy(&d->u.in6.sin6_addr.s6_addr[8], &lo, 8);
		d->u.in6.sin6_family = AF_INET6;
		d->u.in6.sin6_port = htons(a->port);
		d->len = sizeof(d->u.in6);
	}
	format_addr(&d->u.sa, d->len, d->str, sizeof(d->str));
}

static struct dst *make_dsts(const struct args *a)
{
	struct dst *d = calloc(a->addrs, sizeof(*d));
	unsigned k;

	if (!d)
		die("out of memory for %u addresses", a->addrs);
	for (k = 0; k < a->addrs; k++)
		make_dst(a, k, &d[k]);
	return d;
}

static bool same_addr(const struct dst *d, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *s6 = (const void *)ss;
	const struct sockaddr_in *s4 = (const void *)ss;

	if (ss->ss_family != d->u.sa.sa_family)
		return false;
	if (ss->ss_family == AF_INET)
		return s4->sin_port == d->u.in.sin_port &&
		       s4->sin_addr.s_addr == d->u.in.sin_addr.s_addr;
	return s6->sin6_port == d->u.in6.sin6_port &&
	       !memcmp(&s6->sin6_addr, &d->u.in6.sin6_addr, 16);
}

/* ------------------------------------------------------------ state */

enum cstate {
	C_IDLE, /* not open (or waiting for the start) */
	C_CONNECTING,
	C_READY, /* open, waiting for the start */
	C_RUN,	 /* bulk: streaming */
	C_DRAIN, /* bulk: half-closed, reading what is left */
	C_SEND,	 /* writing the request */
	C_RECV,	 /* reading the response */
	C_HELD,	 /* hold: open and idle */
	C_RETRY, /* crr: failed, opens again at t0 */
	C_DONE,
};

struct conn {
	int fd;
	uint8_t state;
	bool late;     /* hold: sample timed out, echo still expected;
			* bulk --discard: the server sent data */
	bool final;    /* hold --check-all: the final request is out */
	bool checked;  /* hold --check-all: it echoed the final request */
	uint32_t gidx; /* global connection number */
	uint64_t seed; /* of this connection's (crr: this round's) stream */
	uint64_t iter; /* crr rounds, udp-rr sequence number */
	uint64_t sent, recvd, msg_end; /* stream offsets */
	uint64_t t0;		       /* ns: start of the transaction */
	uint64_t deadline;	       /* ns: hold sample, udp, connect */
};

/* What a run adds up; the same struct crosses the pipe from children. */
struct totals {
	uint64_t ops, bytes, errors, verify_failures, lost, late;
	uint64_t opened, open, sampled, echoed, sample_failed;
	uint64_t checked, check_failed; /* hold --check-all */
};

struct result {
	struct totals t;
	double seconds, setup_seconds, cpu_s;
	struct hist h;
};

struct worker {
	pthread_t tid;
	unsigned idx;
	int cpu;		    /* -1: not pinned */
	pthread_barrier_t *barrier; /* all threads start together */
	const struct args *a;
	const struct dst *dsts;
	struct conn *conns;
	unsigned n;
	int ep;
	uint8_t *rbuf, *wbuf;
	bool started, stopping;
	unsigned connecting, active;
	uint64_t now, drain_deadline, next_tick, next_sample;
	uint64_t started_ns; /* when the clock started */
	uint64_t inflight;   /* bulk: sent and not echoed (acked) at the stop */
	double drain_s;	     /* bulk: what the drain was allowed */
	unsigned cursor, nsamp;
	struct conn **samp;
	bool checking;		   /* hold --check-all, after the stop */
	unsigned fnext, finflight; /* next to check; checks out */
	struct totals t;
	uint64_t window_bytes; /* bulk: verified (or acked) by the stop */
	struct hist h;
	/* hold: read live by the main thread, written by this one only */
	_Atomic uint64_t live_open, live_sampled, live_echoed, live_failed;
};

struct local {
	pthread_barrier_t barrier;
	struct worker w[MAX_THREADS];
	unsigned threads;
};

static atomic_uint messages;

/* Up to MAX_MESSAGES problems described on stderr, then silence. */
static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
	unsigned n =
		atomic_fetch_add_explicit(&messages, 1, memory_order_relaxed);
	va_list ap;

	if (n > MAX_MESSAGES)
		return;
	fputs(PROG ": ", stderr);
	if (n == MAX_MESSAGES) {
		fputs("more problems, not shown\n", stderr);
		return;
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const struct dst *conn_dst(const struct worker *w, const struct conn *c)
{
	/* crr: each round goes to the next address. */
	return &w->dsts[(c->gidx + c->iter * w->a->conns) % w->a->addrs];
}

static uint64_t conn_seed(const struct worker *w, const struct conn *c)
{
	uint64_t s = mix64(w->a->seed * 0x9e3779b97f4a7c15ull + c->gidx);

	return w->a->mode == M_CRR ? mix64(s + c->iter) : s;
}

/* ------------------------------------------------------------ tcp */

static void conn_close(struct worker *w, struct conn *c, enum cstate next)
{
	if (c->fd >= 0) {
		close(c->fd);
		if (w->a->mode == M_HOLD && c->state >= C_READY)
			atomic_fetch_sub_explicit(&w->live_open, 1,
						  memory_order_relaxed);
	}
	if (c->state == C_CONNECTING)
		w->connecting--;
	if (c->final) {
		c->final = false;
		w->finflight--;
	}
	if (c->state != C_DONE && next == C_DONE)
		w->active--;
	c->fd = -1;
	c->state = next;
}

/* A connection failed: counted; crr loops try again, others stay shut. */
static void conn_fail(struct worker *w, struct conn *c, const char *what,
		      int err)
{
	if (!w->stopping || w->a->mode == M_BULK || c->final) {
		w->t.errors++;
		problem("connection %u to %s: %s: %s", c->gidx,
			conn_dst(w, c)->str, what,
			err ? strerror(err) : "closed by the server");
	}
	if (w->a->mode == M_CRR && !w->stopping) {
		conn_close(w, c, C_RETRY);
		c->t0 = w->now + RETRY_DELAY * NS;
		return;
	}
	conn_close(w, c, C_DONE);
}

static int conn_connect(struct worker *w, struct conn *c)
{
	const struct dst *d = conn_dst(w, c);
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.ptr = c,
	};
	struct linger lg = { 1, 0 };
	int one = 1, fd, err;

	fd = socket(d->u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (w->a->mode != M_BULK)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (w->a->rst)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if ((connect(fd, &d->u.sa, d->len) && errno != EINPROGRESS) ||
	    epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev)) {
		err = -errno;
		close(fd);
		return err;
	}
	c->fd = fd;
	c->state = C_CONNECTING;
	c->seed = conn_seed(w, c);
	c->sent = c->recvd = c->msg_end = 0;
	c->t0 = w->now;
	c->deadline = w->now + CONNECT_TIMEOUT * NS;
	w->connecting++;
	return 0;
}

static void conn_open(struct worker *w, struct conn *c)
{
	int err = conn_connect(w, c);

	if (err) {
		c->state = C_CONNECTING; /* so that conn_fail counts it right */
		w->connecting++;
		conn_fail(w, c, "connect", -err);
	}
}

static int sock_error(int fd)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return errno;
	return err;
}

/* Writes stream bytes up to offset limit; returns the count or -errno. */
static ssize_t stream_write(struct worker *w, struct conn *c, uint64_t limit)
{
	size_t n = limit - c->sent < BUF_SIZE ? limit - c->sent : BUF_SIZE;
	ssize_t r;

	stream_fill(c->seed, c->sent, w->wbuf, n);
	r = send(c->fd, w->wbuf, n, MSG_NOSIGNAL);
	if (r < 0)
		return -errno;
	c->sent += r;
	return r;
}

static void mismatch(struct worker *w, struct conn *c, uint64_t bad,
		     uint64_t pos, const uint8_t *p, size_t first)
{
	w->t.verify_failures += bad;
	problem("connection %u to %s: %llu wrong byte%s echoed, the first at "
		"offset %llu: 0x%02x, sent 0x%02x",
		c->gidx, conn_dst(w, c)->str, (unsigned long long)bad,
		bad == 1 ? "" : "s", (unsigned long long)(pos + first),
		p[first], stream_byte(c->seed, pos + first));
}

/* Reads up to offset limit (no limit: 0) and checks it against the
 * stream; returns the count, 0 at EOF, or -errno. */
static ssize_t stream_read(struct worker *w, struct conn *c, uint64_t limit)
{
	size_t n = BUF_SIZE, first = 0;
	uint64_t bad;
	ssize_t r;

	if (limit && limit - c->recvd < n)
		n = limit - c->recvd;
	r = recv(c->fd, w->rbuf, n, 0);
	if (r <= 0)
		return r < 0 ? -errno : 0;
	bad = stream_check(c->seed, c->recvd, w->rbuf, r, &first);
	if (bad)
		mismatch(w, c, bad, c->recvd, w->rbuf, first);
	c->recvd += r;
	return r;
}

/* ------------------------------------------------------------ bulk */

static void bulk_eof(struct worker *w, struct conn *c)
{
	if (c->state != C_DRAIN) {
		conn_fail(w, c, "while streaming", 0);
		return;
	}
	if (!w->a->discard && c->recvd != c->sent) {
		w->t.errors++;
		problem("connection %u to %s: %llu bytes echoed of %llu sent "
			"before the server closed",
			c->gidx, conn_dst(w, c)->str,
			(unsigned long long)c->recvd,
			(unsigned long long)c->sent);
	}
	conn_close(w, c, C_DONE);
}

static bool bulk_read(struct worker *w, struct conn *c)
{
	ssize_t r;

	for (;;) {
		r = stream_read(w, c, 0);
		if (r == -EAGAIN)
			return true;
		if (r < 0) {
			conn_fail(w, c, "recv", -r);
			return false;
		}
		if (!r) {
			bulk_eof(w, c);
			return false;
		}
		if (w->a->discard && !c->late) {
			c->late = true; /* said once per connection */
			w->t.errors++;
			problem("connection %u to %s: a discard server sent "
				"%zd bytes",
				c->gidx, conn_dst(w, c)->str, r);
		} else if (c->recvd > c->sent) {
			w->t.errors++;
			problem("connection %u to %s: more bytes echoed than "
				"sent",
				c->gidx, conn_dst(w, c)->str);
		}
		if (!w->stopping && !w->a->discard)
			w->t.bytes += r;
	}
}

static void bulk_pump(struct worker *w, struct conn *c)
{
	uint64_t limit;
	ssize_t r;

	if (!bulk_read(w, c) || c->state != C_RUN)
		return;
	for (;;) {
		limit = w->a->discard ? c->sent + BUF_SIZE
				      : c->recvd + w->a->window;
		if (c->sent >= limit)
			return;
		r = stream_write(w, c, limit);
		if (r == -EAGAIN)
			return;
		if (r < 0) {
			conn_fail(w, c, "send", -r);
			return;
		}
	}
}

/* At the stop: what the server has by now counts; then half-close and
 * let the echo drain. */
static void bulk_stop(struct worker *w, struct conn *c)
{
	int outq = 0;

	if (c->state != C_RUN)
		return;
	if (w->a->discard && !ioctl(c->fd, SIOCOUTQ, &outq)) {
		w->window_bytes += c->sent - outq;
		w->inflight += outq;
	} else if (!w->a->discard) {
		w->inflight += c->sent - c->recvd;
	}
	shutdown(c->fd, SHUT_WR);
	c->state = C_DRAIN;
	bulk_pump(w, c);
}

/* ------------------------------------------------------------ rr, crr, hold */

static void start_request(struct worker *w, struct conn *c)
{
	c->msg_end = c->sent + w->a->size;
	c->t0 = w->now;
	c->state = C_SEND;
}

static void transaction_done(struct worker *w, struct conn *c)
{
	if (w->a->mode == M_HOLD) {
		if (c->late) {
			c->late = false;
		} else if (c->final) {
			c->final = false;
			c->checked = true;
			w->finflight--;
			w->t.checked++;
		} else {
			atomic_fetch_add_explicit(&w->live_echoed, 1,
						  memory_order_relaxed);
		}
		c->state = C_HELD;
		return;
	}
	hist_add(&w->h, w->now - c->t0);
	w->t.ops++;
	w->t.bytes += w->a->size;
	if (w->a->mode == M_RR) {
		start_request(w, c);
		return;
	}
	conn_close(w, c, C_IDLE); /* crr: the next round */
	c->iter++;
	conn_open(w, c);
}

/* Held and idle: anything but EAGAIN is news. */
static void hold_read(struct worker *w, struct conn *c)
{
	ssize_t r = stream_read(w, c, 0);

	if (r == -EAGAIN)
		return;
	if (r > 0) {
		w->t.verify_failures += r;
		problem("connection %u to %s: %zd bytes from the server "
			"unasked",
			c->gidx, conn_dst(w, c)->str, r);
		return;
	}
	conn_fail(w, c, "while held", r ? -r : 0);
}

static void rr_pump(struct worker *w, struct conn *c)
{
	ssize_t r;

	for (;;) {
		switch (c->state) {
		case C_SEND:
			r = stream_write(w, c, c->msg_end);
			if (r == -EAGAIN)
				return;
			if (r < 0) {
				conn_fail(w, c, "send", -r);
				return;
			}
			if (c->sent < c->msg_end)
				break;
			/* The answer comes after this, with an edge of
			 * its own: no read to try now. */
			c->state = C_RECV;
			return;
		case C_RECV:
			r = stream_read(w, c, c->msg_end);
			if (r == -EAGAIN)
				return;
			if (r <= 0) {
				conn_fail(w, c, "recv", r ? -r : 0);
				return;
			}
			if (c->recvd == c->msg_end)
				transaction_done(w, c);
			break;
		case C_HELD:
			hold_read(w, c);
			return;
		default:
			return;
		}
	}
}

static void tcp_event(struct worker *w, struct conn *c, uint32_t ev)
{
	uint64_t t0;
	int err;

	if (c->state == C_CONNECTING) {
		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		err = sock_error(c->fd);
		if (err) {
			conn_fail(w, c, "connect", err);
			return;
		}
		w->connecting--;
		w->t.opened++;
		if (w->a->mode == M_CRR) {
			t0 = c->t0; /* crr latency counts from the connect */
			start_request(w, c);
			c->t0 = t0;
		} else if (w->a->mode == M_HOLD) {
			c->state = C_HELD;
			atomic_fetch_add_explicit(&w->live_open, 1,
						  memory_order_relaxed);
			return;
		} else {
			c->state = C_READY;
			return;
		}
	}
	if (w->a->mode == M_BULK)
		bulk_pump(w, c);
	else
		rr_pump(w, c);
}

/* ------------------------------------------------------------ udp-rr */

static void udp_send(struct worker *w, struct conn *c)
{
	const struct dst *d = conn_dst(w, c);
	uint64_t seq = htole64(c->iter);

	memcpy(w->wbuf, &seq, 8);
	stream_fill(c->seed, c->iter * w->a->size + 8, w->wbuf + 8,
		    w->a->size - 8);
	c->t0 = w->now;
	c->deadline = w->now + w->a->timeout * NS;
	c->state = C_RECV;
	/* A full socket buffer is a loss like any other: the timeout sees
	 * to it. */
	if (sendto(c->fd, w->wbuf, w->a->size, 0, &d->u.sa, d->len) < 0 &&
	    errno != EAGAIN && errno != ENOBUFS) {
		w->t.errors++;
		problem("udp socket %u to %s: sendto: %s", c->gidx, d->str,
			strerror(errno));
	}
}

/* One datagram from the right address: the answer to the outstanding
 * request, a late answer to an older one, or wrong. Returns true when it
 * was taken as the answer (and the next request is sent). */
static bool udp_reply(struct worker *w, struct conn *c, size_t len)
{
	uint64_t seq, bad;
	size_t first = 0;

	memcpy(&seq, w->rbuf, 8);
	seq = le64toh(seq);
	if (len == w->a->size && seq < c->iter) {
		w->t.late++;
		return false;
	}
	if (len != w->a->size || seq != c->iter) {
		w->t.verify_failures++;
		problem("udp socket %u to %s: a reply of %zu bytes for request "
			"%llu, waiting for %llu (%u bytes)",
			c->gidx, conn_dst(w, c)->str, len,
			(unsigned long long)seq, (unsigned long long)c->iter,
			w->a->size);
	} else {
		bad = stream_check(c->seed, c->iter * w->a->size + 8,
				   w->rbuf + 8, len - 8, &first);
		if (bad)
			mismatch(w, c, bad, c->iter * w->a->size + 8,
				 w->rbuf + 8, first);
		hist_add(&w->h, w->now - c->t0);
		w->t.ops++;
		w->t.bytes += len;
	}
	c->iter++;
	if (!w->stopping)
		udp_send(w, c);
	return true;
}

static void udp_event(struct worker *w, struct conn *c)
{
	struct sockaddr_storage from;
	socklen_t fl;
	char name[ADDR_STRLEN];
	ssize_t r;

	for (;;) {
		fl = sizeof(from);
		r = recvfrom(c->fd, w->rbuf, BUF_SIZE, 0, (void *)&from, &fl);
		if (r < 0) {
			if (errno != EAGAIN)
				problem("udp socket %u: recvfrom: %s", c->gidx,
					strerror(errno));
			return;
		}
		if (!same_addr(conn_dst(w, c), &from)) {
			w->t.errors++;
			format_addr((void *)&from, fl, name, sizeof(name));
			problem("udp socket %u: a reply from %s, the request "
				"went to %s",
				c->gidx, name, conn_dst(w, c)->str);
			continue;
		}
		/* After a reply the next request is out: its answer
		 * brings an edge of its own. */
		if (c->state == C_RECV && udp_reply(w, c, r))
			return;
	}
}

static void udp_open(struct worker *w, struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.ptr = c };

	c->seed = conn_seed(w, c);
	c->fd = socket(w->a->family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev))
		die("udp socket: %s", strerror(errno));
	c->state = C_READY;
}

/* ------------------------------------------------------------ timers */

/* The next held, idle connection from the cursor on, or NULL. */
static struct conn *next_idle(struct worker *w)
{
	struct conn *c;
	unsigned tries;

	for (tries = 0; tries < w->n; tries++) {
		c = &w->conns[w->cursor++ % w->n];
		if (c->state == C_HELD && !c->late)
			return c;
	}
	return NULL;
}

static void hold_sample(struct worker *w)
{
	struct conn *c;
	unsigned i;

	for (i = 0; i < w->nsamp; i++) {
		c = next_idle(w);
		w->samp[i] = c;
		if (!c)
			return;
		c->deadline = w->now + w->a->timeout * NS;
		atomic_fetch_add_explicit(&w->live_sampled, 1,
					  memory_order_relaxed);
		start_request(w, c);
		rr_pump(w, c);
	}
}

/* Samples past their deadline (force: all still pending) failed. */
static void hold_timeouts(struct worker *w, bool force)
{
	struct conn *c;
	unsigned i;

	for (i = 0; i < w->nsamp; i++) {
		c = w->samp[i];
		if (!c || c->late || (!force && w->now < c->deadline))
			continue;
		if (c->state == C_SEND || c->state == C_RECV) {
			c->late = true;
			w->t.errors++;
			atomic_fetch_add_explicit(&w->live_failed, 1,
						  memory_order_relaxed);
			problem("connection %u to %s: no echo within %.3f s",
				c->gidx, conn_dst(w, c)->str, w->a->timeout);
		} else if (c->state != C_HELD) {
			atomic_fetch_add_explicit(&w->live_failed, 1,
						  memory_order_relaxed);
		}
		w->samp[i] = NULL;
	}
}

/* --check-all: a final request not answered in time failed; its echo may
 * still come, and is then taken as late. */
static void check_timeouts(struct worker *w)
{
	struct conn *c;
	unsigned i;

	for (i = 0; i < w->n; i++) {
		c = &w->conns[i];
		if (!c->final || w->now < c->deadline)
			continue;
		c->final = false;
		c->late = true;
		w->finflight--;
		w->t.errors++;
		problem("connection %u to %s: no echo of the final check "
			"within %.3f s",
			c->gidx, conn_dst(w, c)->str, w->a->timeout);
	}
}

/* --check-all: every held connection, in turn, sends one request and
 * must get its echo within --timeout; at most CHECK_INFLIGHT are out at
 * once, so that the check measures the server, not a burst. */
static void check_refill(struct worker *w)
{
	struct conn *c;

	while (w->finflight < CHECK_INFLIGHT && w->fnext < w->n) {
		c = &w->conns[w->fnext++];
		if (c->final || c->checked || c->late || c->state != C_HELD)
			continue; /* out already, done, or failed before */
		c->final = true;
		c->deadline = w->now + w->a->timeout * NS;
		w->finflight++;
		start_request(w, c);
		rr_pump(w, c);
	}
}

/* Timeouts and retries, scanned every few milliseconds. */
static void tick(struct worker *w)
{
	struct conn *c;
	unsigned i;

	if (w->a->mode == M_HOLD && w->started) {
		hold_timeouts(w, false);
		if (w->checking)
			check_timeouts(w);
		if (!w->stopping && w->now >= w->next_sample) {
			hold_timeouts(w, true);
			hold_sample(w);
			w->next_sample += w->a->interval * NS;
		}
		return;
	}
	for (i = 0; i < w->n; i++) {
		c = &w->conns[i];
		if (c->state == C_CONNECTING && w->now >= c->deadline) {
			conn_fail(w, c, "connect", ETIMEDOUT);
		} else if (c->state == C_RETRY && w->now >= c->t0 &&
			   !w->stopping) {
			conn_open(w, c);
		} else if (w->a->mode == M_UDP_RR && c->state == C_RECV &&
			   w->now >= c->deadline) {
			w->t.lost++;
			c->iter++;
			if (!w->stopping)
				udp_send(w, c);
		}
	}
}

/* ------------------------------------------------------------ workers */

static void dispatch(struct worker *w, struct epoll_event *ev, int n)
{
	int i;

	w->now = now_ns();
	for (i = 0; i < n; i++) {
		if (w->a->mode == M_UDP_RR)
			udp_event(w, ev[i].data.ptr);
		else
			tcp_event(w, ev[i].data.ptr, ev[i].events);
	}
}

/* One round of waiting; timeouts are looked at every tick_ms. */
static void poll_once(struct worker *w, int tick_ms)
{
	struct epoll_event ev[256];
	int n;

	n = epoll_wait(w->ep, ev, 256, tick_ms);
	if (n < 0 && errno != EINTR)
		die("epoll_wait: %s", strerror(errno));
	dispatch(w, ev, n > 0 ? n : 0);
	if (w->now >= w->next_tick) {
		tick(w);
		w->next_tick = w->now + (uint64_t)tick_ms * 1000000;
	}
}

/* Open everything that stays open (not crr), at most MAX_INFLIGHT
 * connects at once, so a listener's backlog is not overrun. */
static void setup(struct worker *w)
{
	unsigned next = 0;

	w->now = now_ns();
	if (w->a->mode == M_CRR)
		return;
	if (w->a->mode == M_UDP_RR) {
		for (next = 0; next < w->n; next++)
			udp_open(w, &w->conns[next]);
		return;
	}
	while ((next < w->n || w->connecting) && !stop_requested()) {
		while (w->connecting < MAX_INFLIGHT && next < w->n)
			conn_open(w, &w->conns[next++]);
		poll_once(w, 10);
	}
}

static void start(struct worker *w)
{
	struct conn *c;
	unsigned i;

	w->now = now_ns();
	w->next_sample = w->now;
	w->started_ns = w->now;
	w->started = true;
	for (i = 0; i < w->n; i++) {
		c = &w->conns[i];
		if (w->a->mode == M_CRR) {
			conn_open(w, c);
		} else if (w->a->mode == M_UDP_RR) {
			udp_send(w, c);
		} else if (c->state == C_READY && w->a->mode == M_BULK) {
			c->state = C_RUN;
			bulk_pump(w, c);
		} else if (c->state == C_READY) {
			start_request(w, c);
			rr_pump(w, c);
		}
	}
}

static void check_begin(struct worker *w);

/*
 * bulk: how long the echo may take to end after the half-close: a fixed
 * --drain-timeout, or DRAIN_TIMEOUT plus twice the time that the bytes
 * still in flight take at the rate this worker saw during the run. Many
 * connections through a lossy wire have much in flight and drain slowly;
 * a fixed 10 s failed most of them there, on the kernel as on l3x.
 */
static double drain_seconds(const struct worker *w)
{
	double run = (w->now - w->started_ns) / 1e9, rate, s;

	if (w->a->drain_timeout > 0)
		return w->a->drain_timeout;
	rate = run > 0 ? w->window_bytes / run : 0;
	if (rate < DRAIN_MIN_RATE)
		rate = DRAIN_MIN_RATE;
	s = DRAIN_TIMEOUT + 2 * w->inflight / rate;
	return s < DRAIN_MAX ? s : DRAIN_MAX;
}

/* The clock ran out: bulk half-closes and drains; hold --check-all
 * checks every connection; the others stop here and finish() closes
 * what they have open. */
static void begin_stop(struct worker *w)
{
	unsigned i;

	w->stopping = true;
	w->window_bytes += w->t.bytes;
	for (i = 0; i < w->n && w->a->mode == M_BULK; i++)
		bulk_stop(w, &w->conns[i]);
	w->drain_s = drain_seconds(w);
	w->drain_deadline = w->now + w->drain_s * NS;
	if (w->a->mode == M_HOLD && w->a->check_all)
		check_begin(w);
}

/* Whether a stopping worker is done: bulk once the echo has drained,
 * hold --check-all once every connection has been checked. */
static bool stop_done(const struct worker *w)
{
	if (w->a->mode == M_BULK)
		return !w->active || w->now >= w->drain_deadline;
	if (w->checking)
		return w->fnext == w->n && !w->finflight;
	return true;
}

/* A sample that the stop cut short neither echoed nor failed. */
static void hold_unsample(struct worker *w)
{
	struct conn *c;
	unsigned i;

	for (i = 0; i < w->nsamp; i++) {
		c = w->samp[i];
		if (c && !c->late && (c->state == C_SEND || c->state == C_RECV))
			atomic_fetch_sub_explicit(&w->live_sampled, 1,
						  memory_order_relaxed);
	}
}

/* --check-all: samples still out become part of the final check (and
 * are no longer samples); then the rest follows in turn. */
static void check_begin(struct worker *w)
{
	struct conn *c;
	unsigned i;

	hold_unsample(w);
	for (i = 0; i < w->nsamp; i++) {
		c = w->samp[i];
		w->samp[i] = NULL;
		if (!c || c->late || (c->state != C_SEND && c->state != C_RECV))
			continue;
		c->final = true;
		c->deadline = w->now + w->a->timeout * NS;
		w->finflight++;
	}
	w->checking = true;
	check_refill(w);
}

static void finish(struct worker *w)
{
	struct conn *c;
	unsigned i;

	if (w->a->mode == M_HOLD)
		hold_unsample(w);
	w->t.open = atomic_load_explicit(&w->live_open, memory_order_relaxed);
	for (i = 0; i < w->n; i++) {
		c = &w->conns[i];
		if (c->state == C_DRAIN) {
			w->t.errors++;
			problem("connection %u to %s: no end of the echo within "
				"%.1f s of the half-close (%llu of %llu bytes)",
				c->gidx, conn_dst(w, c)->str, w->drain_s,
				(unsigned long long)c->recvd,
				(unsigned long long)c->sent);
		}
		if (c->fd >= 0)
			conn_close(w, c, C_DONE);
	}
	w->t.sampled = atomic_load(&w->live_sampled);
	w->t.echoed = atomic_load(&w->live_echoed);
	w->t.sample_failed = atomic_load(&w->live_failed);
	if (w->checking)
		w->t.check_failed = w->n - w->t.checked;
}

static void pin(const struct worker *w)
{
	int err = w->cpu < 0 ? 0 : pin_self(w->cpu);

	if (err)
		die("--cpu %d: %s", w->cpu, strerror(err));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int tick_ms = w->a->mode == M_UDP_RR ? 2 : 10;

	pin(w);
	setup(w);
	pthread_barrier_wait(w->barrier);
	start(w);
	for (;;) {
		poll_once(w, tick_ms);
		if (!w->stopping && stop_requested())
			begin_stop(w);
		if (w->stopping && stop_done(w))
			break;
		if (w->checking)
			check_refill(w);
	}
	/* After the drain, the snapshot at the stop stays what counts. */
	if (w->a->mode == M_BULK)
		w->t.bytes = w->window_bytes;
	finish(w);
	return NULL;
}

static void worker_init(struct worker *w, const struct args *a,
			const struct dst *dsts, uint64_t first, unsigned n)
{
	unsigned i;

	w->a = a;
	w->dsts = dsts;
	w->n = w->active = n;
	w->conns = calloc(n, sizeof(*w->conns));
	w->rbuf = malloc(BUF_SIZE);
	w->wbuf = malloc(BUF_SIZE);
	w->ep = epoll_create1(0);
	if (!w->conns || !w->rbuf || !w->wbuf)
		die("out of memory for %u connections", n);
	if (w->ep < 0)
		die("epoll_create1: %s", strerror(errno));
	for (i = 0; i < n; i++) {
		w->conns[i].fd = -1;
		w->conns[i].gidx = first + i;
	}
	/* Each thread samples its share of --sample, at least one. */
	if (a->mode == M_HOLD) {
		w->nsamp = ((uint64_t)a->sample * n + a->conns - 1) / a->conns;
		w->samp = calloc(w->nsamp, sizeof(*w->samp));
		if (!w->samp)
			die("out of memory");
	}
}

static void add_totals(struct totals *to, const struct totals *t)
{
	to->ops += t->ops;
	to->bytes += t->bytes;
	to->errors += t->errors;
	to->verify_failures += t->verify_failures;
	to->lost += t->lost;
	to->late += t->late;
	to->opened += t->opened;
	to->open += t->open;
	to->sampled += t->sampled;
	to->echoed += t->echoed;
	to->sample_failed += t->sample_failed;
	to->checked += t->checked;
	to->check_failed += t->check_failed;
}

static void add_result(struct result *to, const struct result *r)
{
	unsigned i;

	add_totals(&to->t, &r->t);
	for (i = 0; i < HIST_BUCKETS; i++)
		to->h.n[i] += r->h.n[i];
	if (r->seconds > to->seconds)
		to->seconds = r->seconds;
	if (r->setup_seconds > to->setup_seconds)
		to->setup_seconds = r->setup_seconds;
	to->cpu_s += r->cpu_s;
}

/* ------------------------------------------------------------ one process */

/* hold's progress, summed over this process's threads. */
struct progress {
	uint32_t type; /* 1: progress, 2: result */
	uint32_t k;    /* interval number */
	uint64_t open, sampled, echoed, failed;
};

static void live_progress(const struct local *l, struct progress *p)
{
	const struct worker *w;
	unsigned i;

	memset(p, 0, sizeof(*p));
	p->type = 1;
	for (i = 0; i < l->threads; i++) {
		w = &l->w[i];
		p->open += atomic_load_explicit(&w->live_open,
						memory_order_relaxed);
		p->sampled += atomic_load_explicit(&w->live_sampled,
						   memory_order_relaxed);
		p->echoed += atomic_load_explicit(&w->live_echoed,
						  memory_order_relaxed);
		p->failed += atomic_load_explicit(&w->live_failed,
						  memory_order_relaxed);
	}
}

static void print_progress(const struct args *a, double t,
			   const struct progress *p)
{
	if (a->quiet)
		return;
	fprintf(stderr,
		PROG ": hold %.1f s: %llu of %u open; sampled %llu, echoed "
		     "%llu, failed %llu\n",
		t, (unsigned long long)p->open, a->conns,
		(unsigned long long)p->sampled, (unsigned long long)p->echoed,
		(unsigned long long)p->failed);
}

/* All @n bytes of a report through the pipe between a child process and
 * the parent (@out: written, else read), or die. */
static void report_io(int fd, void *p, size_t n, bool out)
{
	ssize_t r;

	while (n) {
		r = out ? write(fd, p, n) : read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 && out)
			die("report pipe: %s", strerror(errno));
		if (r <= 0)
			die("a child process ended without its report");
		p = (char *)p + r;
		n -= r;
	}
}

/* Waits out --seconds (or a signal), with hold's progress every
 * --interval, to stderr or (report_fd >= 0) to the parent. */
static void wait_run(const struct args *a, struct local *l, uint64_t t0,
		     int report_fd)
{
	uint64_t end = t0 + a->seconds * NS, next = t0, now;
	struct progress p;
	uint32_t k = 0;

	/* Progress comes a little after each sample, once it is answered. */
	next += (a->interval * 0.5) * NS;
	while (!stop_requested() && (now = now_ns()) < end) {
		if (a->mode == M_HOLD && now >= next) {
			live_progress(l, &p);
			p.k = k++;
			if (report_fd >= 0)
				report_io(report_fd, &p, sizeof(p), true);
			else
				print_progress(a, (now - t0) / 1e9, &p);
			next += a->interval * NS;
		}
		sleep_ns(end - now < 20000000 ? end - now : 20000000);
	}
	request_stop();
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void start_threads(const struct args *a, struct local *l,
			  const struct dst *dsts, uint64_t first,
			  unsigned count, unsigned cpu_off)
{
	uint64_t at = first;
	unsigned i, n;
	sigset_t old;
	int err;

	stop_signals_block(&old);
	for (i = 0; i < l->threads; i++) {
		n = count / l->threads + (i < count % l->threads);
		l->w[i].idx = i;
		l->w[i].barrier = &l->barrier;
		l->w[i].cpu =
			a->ncpus ? (int)a->cpus[(cpu_off + i) % a->ncpus] : -1;
		worker_init(&l->w[i], a, dsts, at, n);
		at += n;
		err = pthread_create(&l->w[i].tid, NULL, worker_main, &l->w[i]);
		if (err)
			die("--threads %u: %s", l->threads, strerror(err));
	}
	stop_signals_restore(&old);
}

/* Runs connections [first, first + count) on this process's threads. */
static void run_local(const struct args *a, const struct dst *dsts,
		      uint64_t first, unsigned count, unsigned threads,
		      unsigned cpu_off, int report_fd, struct result *res)
{
	static struct local l;
	uint64_t begin = now_ns(), t0;
	unsigned i;

	l.threads = threads;
	pthread_barrier_init(&l.barrier, NULL, threads + 1);
	start_threads(a, &l, dsts, first, count, cpu_off);
	pthread_barrier_wait(&l.barrier);
	t0 = now_ns();
	wait_run(a, &l, t0, report_fd);
	memset(res, 0, sizeof(*res));
	res->seconds = (now_ns() - t0) / 1e9;
	res->setup_seconds = (t0 - begin) / 1e9;
	for (i = 0; i < threads; i++) {
		pthread_join(l.w[i].tid, NULL);
		add_totals(&res->t, &l.w[i].t);
		add_result(res, &(struct result){ .h = l.w[i].h });
	}
	res->cpu_s = cpu_seconds();
}

/* ------------------------------------------------------------ processes */

struct child {
	pid_t pid;
	int fd;
	bool done;
	uint32_t k; /* progress records seen */
	struct progress last;
};

static void spawn(const struct args *a, const struct dst *dsts,
		  struct child *ch, unsigned nproc, unsigned per)
{
	unsigned i, threads = (a->threads + nproc - 1) / nproc;
	uint64_t first;
	struct result *res;
	int pfd[2];

	for (i = 0; i < nproc; i++) {
		first = (uint64_t)i * per;
		if (pipe(pfd))
			die("pipe: %s", strerror(errno));
		ch[i].pid = fork();
		if (ch[i].pid < 0)
			die("fork: %s", strerror(errno));
		if (!ch[i].pid) {
			close(pfd[0]);
			res = calloc(1, sizeof(*res));
			if (!res)
				die("out of memory");
			run_local(a, dsts, first,
				  i + 1 < nproc ? per : a->conns - first,
				  threads, i * threads, pfd[1], res);
			report_io(pfd[1], &(uint32_t){ 2 }, 4, true);
			report_io(pfd[1], res, sizeof(*res), true);
			_exit(0);
		}
		close(pfd[1]);
		ch[i].fd = pfd[0];
	}
}

static void child_record(const struct args *a, struct child *ch, unsigned nproc,
			 unsigned i, struct result *res, uint64_t t0)
{
	struct progress p, sum = {};
	struct result r;
	uint32_t type;
	unsigned j;

	report_io(ch[i].fd, &type, 4, false);
	if (type == 2) {
		report_io(ch[i].fd, &r, sizeof(r), false);
		add_result(res, &r);
		ch[i].done = true;
		return;
	}
	p.type = type;
	report_io(ch[i].fd, (char *)&p + 4, sizeof(p) - 4, false);
	ch[i].last = p;
	ch[i].k = p.k + 1;
	/* Print interval k once every child has reported it. */
	for (j = 0; j < nproc; j++) {
		if (!ch[j].done && ch[j].k < ch[i].k)
			return;
		sum.open += ch[j].last.open;
		sum.sampled += ch[j].last.sampled;
		sum.echoed += ch[j].last.echoed;
		sum.failed += ch[j].last.failed;
	}
	print_progress(a, (now_ns() - t0) / 1e9, &sum);
}

/* hold past the per-process limit: children hold slices. */
static void run_children(const struct args *a, const struct dst *dsts,
			 unsigned per, struct result *res)
{
	unsigned nproc = (a->conns + per - 1) / per, i, left = nproc;
	struct child *ch = calloc(nproc, sizeof(*ch));
	struct pollfd *pf = calloc(nproc, sizeof(*pf));
	uint64_t t0 = now_ns();
	bool sent_stop = false;
	int st;

	if (!ch || !pf)
		die("out of memory");
	if (!a->quiet)
		fprintf(stderr,
			PROG ": %u connections over %u processes of "
			     "at most %u\n",
			a->conns, nproc, per);
	spawn(a, dsts, ch, nproc, per);
	memset(res, 0, sizeof(*res));
	while (left) {
		if (stop_requested() && !sent_stop) {
			for (i = 0; i < nproc; i++)
				kill(ch[i].pid, SIGINT);
			sent_stop = true;
		}
		for (i = 0; i < nproc; i++) {
			pf[i].fd = ch[i].done ? -1 : ch[i].fd;
			pf[i].events = POLLIN;
		}
		if (poll(pf, nproc, 200) <= 0)
			continue;
		for (i = 0; i < nproc; i++) {
			if (!(pf[i].revents & (POLLIN | POLLHUP)))
				continue;
			child_record(a, ch, nproc, i, res, t0);
			left -= ch[i].done;
		}
	}
	for (i = 0; i < nproc; i++) {
		waitpid(ch[i].pid, &st, 0);
		close(ch[i].fd);
	}
	free(ch);
	free(pf);
}

/* ------------------------------------------------------------ output */

static const char *unit(enum mode m)
{
	switch (m) {
	case M_CRR:
		return "connections/s";
	case M_HOLD:
		return "connections opened/s";
	case M_BULK:
		return "bytes/s";
	default:
		return "transactions/s";
	}
}

static double rate_of(const struct args *a, const struct result *r)
{
	if (a->mode == M_HOLD)
		return r->setup_seconds > 0 ? r->t.opened / r->setup_seconds
					    : 0;
	if (r->seconds <= 0)
		return 0;
	return (a->mode == M_BULK ? r->t.bytes : r->t.ops) / r->seconds;
}

static void json_num(const char *key, double v, bool ok)
{
	if (ok)
		printf(", \"%s\": %.3f", key, v);
	else
		printf(", \"%s\": null", key);
}

static void print_json(const struct args *a, const struct dst *d,
		       const struct result *r)
{
	bool lat = a->mode != M_BULK && a->mode != M_HOLD && r->t.ops;
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(a->family,
		  a->family == AF_INET6 ? (const void *)&d->u.in6.sin6_addr
					: (const void *)&d->u.in.sin_addr,
		  ip, sizeof(ip));
	printf("{\"mode\": \"%s\", \"discard\": %s, \"family\": %d, "
	       "\"dst\": \"%s\", \"addrs\": %u, \"port\": %u, \"conns\": %u, "
	       "\"threads\": %u, \"seconds\": %.3f, \"ops\": %llu, "
	       "\"bytes\": %llu, \"rate\": %.1f, \"unit\": \"%s\", "
	       "\"goodput_bps\": %.0f",
	       name_of(modes, a->mode), a->discard ? "true" : "false",
	       a->family == AF_INET6 ? 6 : 4, ip, a->addrs, a->port, a->conns,
	       a->threads, r->seconds, (unsigned long long)r->t.ops,
	       (unsigned long long)r->t.bytes, rate_of(a, r), unit(a->mode),
	       r->seconds > 0 ? r->t.bytes * 8.0 / r->seconds : 0);
	json_num("p50_us", hist_quantile(&r->h, 0.5) / 1e3, lat);
	json_num("p99_us", hist_quantile(&r->h, 0.99) / 1e3, lat);
	json_num("p999_us", hist_quantile(&r->h, 0.999) / 1e3, lat);
	printf(", \"errors\": %llu, \"verify_failures\": %llu",
	       (unsigned long long)r->t.errors,
	       (unsigned long long)r->t.verify_failures);
	if (a->mode == M_UDP_RR)
		printf(", \"lost\": %llu, \"late\": %llu",
		       (unsigned long long)r->t.lost,
		       (unsigned long long)r->t.late);
	if (a->mode == M_HOLD)
		printf(", \"open\": %llu, \"sampled\": %llu, \"echoed\": %llu, "
		       "\"sample_failed\": %llu, \"setup_seconds\": %.3f",
		       (unsigned long long)r->t.open,
		       (unsigned long long)r->t.sampled,
		       (unsigned long long)r->t.echoed,
		       (unsigned long long)r->t.sample_failed,
		       r->setup_seconds);
	if (a->mode == M_HOLD && a->check_all)
		printf(", \"checked\": %llu, \"check_failed\": %llu",
		       (unsigned long long)r->t.checked,
		       (unsigned long long)r->t.check_failed);
	printf(", \"cpu_s\": %.3f}\n", r->cpu_s);
}

static void human_latency(FILE *f, const struct result *r)
{
	fprintf(f, ", latency p50 %.1f us, p99 %.1f us, p999 %.1f us",
		hist_quantile(&r->h, 0.5) / 1e3,
		hist_quantile(&r->h, 0.99) / 1e3,
		hist_quantile(&r->h, 0.999) / 1e3);
}

static void print_human(FILE *f, const struct args *a, const struct dst *d,
			const struct result *r)
{
	fprintf(f, PROG " %s%s: %u conn%s to %s%s, %.2f s: ",
		name_of(modes, a->mode), a->discard ? " --discard" : "",
		a->conns, a->conns == 1 ? "" : "s", d->str,
		a->addrs > 1 ? " and on" : "", r->seconds);
	if (a->mode == M_BULK)
		fprintf(f, "%.3f Gbit/s goodput, %.1f MB %s",
			r->t.bytes * 8.0 / r->seconds / 1e9, r->t.bytes / 1e6,
			a->discard ? "acknowledged" : "echoed and verified");
	else if (a->mode == M_HOLD)
		fprintf(f,
			"%llu open, %llu of %llu samples echoed, opened at "
			"%.0f/s",
			(unsigned long long)r->t.open,
			(unsigned long long)r->t.echoed,
			(unsigned long long)r->t.sampled, rate_of(a, r));
	else
		fprintf(f, "%.0f %s", rate_of(a, r), unit(a->mode));
	if (a->mode == M_HOLD && a->check_all)
		fprintf(f, "; final check: %llu of %u echoed",
			(unsigned long long)r->t.checked, a->conns);
	if (a->mode != M_BULK && a->mode != M_HOLD && r->t.ops)
		human_latency(f, r);
	if (a->mode == M_UDP_RR)
		fprintf(f, ", loss %.3f%% (%llu lost, %llu late)",
			r->t.lost * 100.0 / (r->t.ops + r->t.lost + !r->t.lost),
			(unsigned long long)r->t.lost,
			(unsigned long long)r->t.late);
	fprintf(f, ", %llu errors, %llu verify failures\n",
		(unsigned long long)r->t.errors,
		(unsigned long long)r->t.verify_failures);
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	static struct args a;
	static struct result res;
	struct dst *dsts;
	unsigned per;

	parse_args(&a, argc, argv);
	stream_init(a.seed);
	dsts = make_dsts(&a);
	per = proc_conns();
	stop_on_signals(0);
	signal(SIGPIPE, SIG_IGN);
	if (a.mode == M_HOLD && a.conns > per)
		run_children(&a, dsts, per, &res);
	else
		run_local(&a, dsts, 0, a.conns, a.threads, 0, -1, &res);
	if (a.json)
		print_json(&a, &dsts[0], &res);
	print_human(a.json ? stderr : stdout, &a, &dsts[0], &res);
	free(dsts);
	return res.t.errors || res.t.verify_failures || res.t.check_failed ? 1
									   : 0;
}
