/*
 * helpers.c - the harness of the netns criterion tests: see helpers.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <criterion/criterion.h>

#include "lwip/memp.h"
#include "lwip/priv/memp_priv.h"
#include "lwip/priv/tcp_priv.h"

#include "csum.h"
#include "l3x/l3x.h"
#include "csum.h"
#include "helpers.h"
#include "mem.h"

#ifndef L3X_BPF_OBJ
#error "build with -DL3X_BPF_OBJ=\"path/to/l3x.bpf.o\""
#endif

/* ------------------------------------------------------------ time, shell */

uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

void sh(const char *cmd)
{
	cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

/* ------------------------------------------------------------ seeded data */

static void gen_init(struct gen *g, uint64_t seed)
{
	g->s = (seed + 1) * 0x9e3779b97f4a7c15ull;
	g->left = 0;
}

static uint8_t gen_byte(struct gen *g)
{
	uint8_t b;

	if (!g->left) {
		g->s ^= g->s >> 12;
		g->s ^= g->s << 25;
		g->s ^= g->s >> 27;
		g->w = g->s * 0x2545f4914f6cdd1dull;
		g->left = 8;
	}
	b = (uint8_t)g->w;
	g->w >>= 8;
	g->left--;
	return b;
}

void src_init(struct src *x, uint64_t seed, size_t limit)
{
	gen_init(&x->g, seed);
	x->len = x->off = x->made = 0;
	x->limit = limit;
}

const uint8_t *src_peek(struct src *x, size_t *n)
{
	size_t i;

	if (x->off == x->len && x->made < x->limit) {
		x->len =
			x->limit - x->made < CHUNK ? x->limit - x->made : CHUNK;
		for (i = 0; i < x->len; i++)
			x->buf[i] = gen_byte(&x->g);
		x->made += x->len;
		x->off = 0;
	}
	*n = x->len - x->off;
	return x->buf + x->off;
}

size_t src_taken(const struct src *x)
{
	return x->made - (x->len - x->off);
}

void sink_init(struct sink *k, uint64_t seed)
{
	gen_init(&k->g, seed);
	k->got = 0;
	k->bad = false;
}

void sink_put(struct sink *k, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (gen_byte(&k->g) != p[i] && !k->bad) {
			k->bad = true;
			k->bad_at = k->got + i;
		}
	}
	k->got += n;
}

/* ------------------------------------------------------------ addresses */

socklen_t sa_make(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a = (void *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		cr_assert_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
		return sizeof(*a);
	} else {
		struct sockaddr_in *a = (void *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		cr_assert_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1);
		return sizeof(*a);
	}
}

bool sa_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (void *)a, *y = (void *)b;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	} else {
		const struct sockaddr_in6 *x = (void *)a, *y = (void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
	}
}

const char *sa_str(const struct sockaddr_storage *a, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (void *)a;

		inet_ntop(AF_INET, &x->sin_addr, ip, sizeof(ip));
		snprintf(buf, n, "%s port %u", ip, ntohs(x->sin_port));
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (void *)a;

		inet_ntop(AF_INET6, &x->sin6_addr, ip, sizeof(ip));
		snprintf(buf, n, "[%s] port %u", ip, ntohs(x->sin6_port));
	} else {
		snprintf(buf, n, "family %u", a->ss_family);
	}
	return buf;
}

/* ------------------------------------------------------------ segments */

void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void make_ip4(uint8_t *p, uint8_t proto, const uint8_t dst[4], size_t len)
{
	uint16_t c;

	memset(p, 0, 20);
	p[0] = 0x45;
	put16(p + 2, len);
	p[8] = 64;
	p[9] = proto;
	memcpy(p + 12, (uint8_t[]){ 203, 0, 113, 9 }, 4);
	memcpy(p + 16, dst, 4);
	c = csum_fold(csum_partial(p, 20, 0));
	put16(p + 10, c);
}

uint16_t ip4_l4_csum(const uint8_t *p, size_t len)
{
	uint8_t ph[12];

	memcpy(ph, p + 12, 8);
	ph[8] = 0;
	ph[9] = p[9];
	put16(ph + 10, len - 20);
	return csum_fold(
		csum_partial(p + 20, len - 20, csum_partial(ph, 12, 0)));
}

size_t make_tcp4(uint8_t *p, uint16_t sport, uint8_t flags, uint32_t seq,
		 uint32_t ack, const uint8_t *data, size_t n)
{
	size_t len = 40 + n;
	uint16_t c;

	memset(p, 0, 40);
	make_ip4(p, 6, (uint8_t[]){ 198, 51, 100, 70 }, len);
	put16(p + 20, sport);
	put16(p + 22, 80);
	put32(p + 24, seq);
	put32(p + 28, ack);
	p[32] = 5 << 4;
	p[33] = flags;
	put16(p + 34, 0xffff);
	if (n) /* data may be NULL then */
		memcpy(p + 40, data, n);
	c = ip4_l4_csum(p, len);
	put16(p + 36, c);
	return len;
}

/* ------------------------------------------------------------ the stack */

struct stack_fixture F = { .tun_fd = -1 };

void netns_own(const char *needs)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for %s", needs);
	if (unshare(CLONE_NEWNET))
		cr_skip_test("cannot unshare a network namespace: %s",
			     strerror(errno));
}

static void netns_up(void)
{
	netns_own("a network namespace and a TUN device");
	sh("ip link set lo up");
}

static int tun_create(const char *name)
{
	int fd, err;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		cr_skip_test("no TUN: open /dev/net/tun: %s", strerror(errno));
	err = tun_attach(fd, name);
	cr_assert_eq(err, 0, "TUNSETIFF %s: %s", name, strerror(-err));
	sh("ip link set " TUN " mtu 1500 up");
	return fd;
}

/* Route both prefixes into the TUN, with addresses for the kernel to
 * send from. */
static void net_config(void)
{
	sh("ip addr add 10.99.0.1/24 dev " TUN);
	sh("ip -6 addr add fd00:99::1/64 dev " TUN " nodad");
	sh("ip route add " NET4 " dev " TUN);
	sh("ip -6 route add " NET6 " dev " TUN);
}

void eng_start(void)
{
	if (F.src == L3X_SOURCE_CALLBACK) {
		cr_assert_eq(tun_pump_start(&F.pump, F.st, F.tun_fd), 0);
	} else {
		cr_assert_eq(l3x_stack__start(F.st), 0);
	}
	F.running = true;
}

void eng_stop(void)
{
	if (!F.running)
		return;
	if (F.src == L3X_SOURCE_CALLBACK) {
		tun_pump_stop(&F.pump);
	} else {
		cr_assert_eq(l3x_stack__stop(F.st), 0);
	}
	F.running = false;
}

void add_rule_text(const char *text)
{
	struct l3x_rule r;

	cr_assert_eq(l3x_rule__parse(&r, text, NULL, 0), 0, "rule %s", text);
	cr_assert_eq(l3x_stack__add_rule(F.st, &r), 0, "add rule %s", text);
}

/* Open a stack on @src in a namespace of our own, route the prefixes to
 * it, add rules for both when @rules, and start its engine. */
void stack_up(enum l3x_source src, struct l3x_stack_opts *o, bool rules)
{
	netns_up();
	F.src = src;
	o->source = src;
	o->cpu = L3X_CPU_NONE; /* the engine thread is not pinned */
	if (src == L3X_SOURCE_TUN) {
		o->tun_name = TUN;
	} else {
		F.tun_fd = tun_create(TUN);
		o->output = tun_output;
		o->output_ctx = &F.tun_fd;
	}
	F.st = l3x_stack__open(o);
	cr_assert_not_null(F.st, "l3x_stack__open: %s", strerror(errno));
	cr_assert_eq(l3x_stack__mem(F.st, &F.mem0), 0);
	net_config();
	if (rules) {
		add_rule_text("tcp " NET4);
		add_rule_text("tcp " NET6);
	}
	eng_start();
}

/* l3x_stack__mem() wants the engine stopped: stop it for the look. */
void mem_now(struct memsnap *ms)
{
	bool was = F.running;
	struct tcp_pcb *p;

	eng_stop();
	if (!was) /* nobody polls: lwIP's timers run only from here */
		l3x_stack__poll(F.st);
	cr_assert_eq(l3x_stack__mem(F.st, &ms->m), 0);
	ms->tw = 0;
	for (p = tcp_tw_pcbs; p; p = p->next)
		ms->tw++;
	if (was)
		eng_start();
}

/* Heap bytes one element of lwIP pool @t costs (MEMP_MEM_MALLOC), as the
 * counting allocator counts it. */
static uint64_t pool_cost(memp_t t)
{
	return l3x_mem_cost(MEMP_SIZE + MEMP_ALIGN_SIZE(memp_pools[t]->size));
}

/* Everything is back where it was right after open, but @n_tw PCBs in
 * TIME_WAIT (and the TCP timer they keep running). Waits a little for
 * LAST_ACK to finish and the TCP timer to notice it has nothing to do. */
void expect_clean(unsigned n_tw)
{
	uint64_t heap = F.mem0.heap_bytes + n_tw * pool_cost(MEMP_TCP_PCB) +
			(n_tw ? pool_cost(MEMP_SYS_TIMEOUT) : 0);
	uint64_t end = now_ms() + 3000;
	struct memsnap ms;

	for (;;) {
		mem_now(&ms);
		if ((ms.m.streams == 0 && ms.m.tcp_pcbs == n_tw &&
		     ms.tw == n_tw && ms.m.heap_bytes == heap &&
		     ms.m.pbufs == F.mem0.pbufs && ms.m.tcp_segs == 0) ||
		    now_ms() > end)
			break;
		usleep(20000);
	}
	cr_assert_eq(ms.m.streams, 0, "%u streams alive after every close",
		     ms.m.streams);
	cr_assert_eq(ms.m.tcp_pcbs, n_tw,
		     "%u TCP PCBs left, want %u (in TIME_WAIT: %u)",
		     ms.m.tcp_pcbs, n_tw, ms.tw);
	cr_assert_eq(ms.tw, n_tw, "%u PCBs in TIME_WAIT, want %u", ms.tw, n_tw);
	cr_assert_eq(ms.m.tcp_listen_pcbs, F.mem0.tcp_listen_pcbs);
	cr_assert_eq(ms.m.tcp_segs, 0, "%u TCP segments still queued",
		     ms.m.tcp_segs);
	cr_assert_eq(ms.m.pbufs, F.mem0.pbufs, "pbufs %u, at open %u",
		     ms.m.pbufs, F.mem0.pbufs);
	cr_assert_eq(ms.m.reass, 0);
	cr_assert_eq(ms.m.udp_pcbs, F.mem0.udp_pcbs);
	cr_assert_eq(ms.m.heap_bytes, heap,
		     "lwIP heap %llu bytes, want %llu (%llu at open, %u in "
		     "TIME_WAIT)",
		     (unsigned long long)ms.m.heap_bytes,
		     (unsigned long long)heap,
		     (unsigned long long)F.mem0.heap_bytes, n_tw);
}

void stack_down(void)
{
	eng_stop();
	cr_assert_eq(l3x_stack__close(F.st), 0);
	F.st = NULL;
	if (F.tun_fd >= 0)
		close(F.tun_fd);
	F.tun_fd = -1;
}

void stack_open_callback(struct l3x_stack_opts *o)
{
	l3x_set_print(NULL);
	o->source = L3X_SOURCE_CALLBACK;
	F.src = L3X_SOURCE_CALLBACK;
	F.st = l3x_stack__open(o);
	cr_assert_not_null(F.st, "open: %s", strerror(errno));
	cr_assert_eq(l3x_stack__mem(F.st, &F.mem0), 0);
}

struct l3x_stack_stats stats_now(void)
{
	struct l3x_stack_stats s;

	cr_assert_eq(l3x_stack__stats(F.st, &s), 0);
	return s;
}

struct l3x_stack_stats stats_wait(size_t off, uint64_t want, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	struct l3x_stack_stats s;
	uint64_t v;

	for (;;) {
		s = stats_now();
		memcpy(&v, (char *)&s + off, sizeof(v));
		if (v >= want || now_ms() >= end)
			return s;
		usleep(2000);
	}
}

/* ------------------------------------------------------------ worker side */

/* Events the worker reported, per stream, OR-ed (test thread only). */
#define LOGN 32
static struct {
	struct l3x_stream *s;
	uint32_t ev;
} evlog[LOGN];

static void log_ev(struct l3x_stream *s, uint32_t ev)
{
	int i, free_i = -1;

	for (i = 0; i < LOGN; i++) {
		if (evlog[i].s == s) {
			evlog[i].ev |= ev;
			return;
		}
		if (!evlog[i].s && free_i < 0)
			free_i = i;
	}
	cr_assert_geq(free_i, 0, "event log full");
	evlog[free_i].s = s;
	evlog[free_i].ev = ev;
}

/* Take the bits of @mask reported for @s. */
uint32_t log_take(struct l3x_stream *s, uint32_t mask)
{
	uint32_t got;
	int i;

	for (i = 0; i < LOGN; i++) {
		if (evlog[i].s == s) {
			got = evlog[i].ev & mask;
			evlog[i].ev &= ~mask;
			return got;
		}
	}
	return 0;
}

void log_forget(struct l3x_stream *s)
{
	int i;

	for (i = 0; i < LOGN; i++)
		if (evlog[i].s == s)
			evlog[i].s = NULL;
}

/* Wait up to @ms for news and log every event. */
void worker_step(struct l3x_worker *w, int ms)
{
	struct l3x_event ev[16];
	int r, n, i, got = 0;

	r = l3x_worker__wait(w, ms);
	while ((n = l3x_worker__poll(w, ev, 16)) > 0) {
		for (i = 0; i < n; i++)
			log_ev(ev[i].stream, ev[i].events);
		got += n;
	}
	/* A stream nobody accepts keeps wait() ready: do not spin. */
	if (r == 1 && !got)
		usleep(1000);
}

bool wait_ev(struct l3x_worker *w, struct l3x_stream *s, uint32_t mask, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (!log_take(s, mask)) {
		if (now_ms() > end)
			return false;
		worker_step(w, 20);
	}
	return true;
}

struct l3x_worker *worker_open(void)
{
	struct l3x_worker *w = l3x_worker__open(F.st);

	cr_assert_not_null(w, "l3x_worker__open: %s", strerror(errno));
	return w;
}

void expect_no_accept(struct l3x_worker *w)
{
	struct l3x_stream *s;
	int e;

	errno = 0;
	s = l3x_worker__accept(w);
	e = errno;
	cr_assert_null(s, "a stream to accept");
	cr_assert_eq(e, EAGAIN, "accept with none: errno %d, want EAGAIN", e);
}

struct l3x_stream *accept_wait(struct l3x_worker *w, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	struct l3x_stream *s;

	for (;;) {
		s = l3x_worker__accept(w);
		if (s || now_ms() > end)
			return s;
		worker_step(w, 20);
	}
}

/* Read what is there, waiting up to @ms for something: bytes, 0 at EOF,
 * -errno (-EAGAIN when nothing came). */
long sread(struct l3x_worker *w, struct l3x_stream *s, void *buf, size_t len,
	   int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	long r;

	for (;;) {
		r = l3x_stream__read(s, buf, len);
		if (r != -EAGAIN || now_ms() > end)
			return r;
		worker_step(w, 20);
	}
}

void stream_close(struct l3x_stream *s)
{
	log_forget(s);
	l3x_stream__close(s);
}

void stream_abort(struct l3x_stream *s)
{
	log_forget(s);
	l3x_stream__abort(s);
}

/* ------------------------------------------------------------ client side */

/* Connect within @ms; kernel buffer sizes when non-zero. Returns a blocking
 * fd with 3 s timeouts, or -1 with the error in *err. */
int client_connect_ex(const char *ip, uint16_t port, int sndbuf, int rcvbuf,
		      int ms, int *err)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_make(ip, port, &ss), el = sizeof(*err);
	struct pollfd p;
	int fd;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	cr_assert_geq(fd, 0);
	if (sndbuf)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (F.client_src) {
		struct sockaddr_storage src;
		socklen_t sl = sa_make(F.client_src, 0, &src);

		cr_assert_eq(bind(fd, (struct sockaddr *)&src, sl), 0,
			     "bind to %s: %s", F.client_src, strerror(errno));
	}
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		*err = errno;
		goto err_close;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&p, 1, ms) != 1) {
		*err = ETIMEDOUT;
		goto err_close;
	}
	getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &el);
	if (*err)
		goto err_close;
	make_blocking(fd);
	return fd;

err_close:
	close(fd);
	return -1;
}

int client_connect_or_say(const char *ip, uint16_t port, char *err,
			  size_t errsz)
{
	int fd, e = 0;

	fd = client_connect_ex(ip, port, 0, 0, 3000, &e);
	if (fd < 0)
		snprintf(err, errsz, "connect: %s", strerror(e));
	return fd;
}

void make_blocking(int fd)
{
	struct timeval tv = { .tv_sec = 3 };

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int client_connect(const char *ip, uint16_t port)
{
	int err = 0, fd = client_connect_ex(ip, port, 0, 0, 3000, &err);

	cr_assert_geq(fd, 0, "connect to %s port %u: %s", ip, port,
		      strerror(err));
	return fd;
}

/* A connect that gets no answer: started, and still pending after @ms. */
int client_connect_unanswered(const char *ip, uint16_t port, int ms)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_make(ip, port, &ss);
	struct pollfd p;
	int fd, r, err = 0;
	socklen_t el = sizeof(err);

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	cr_assert_geq(fd, 0);
	r = connect(fd, (struct sockaddr *)&ss, len);
	cr_assert(r < 0 && errno == EINPROGRESS, "connect: %s",
		  strerror(errno));
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	r = poll(&p, 1, ms);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	cr_assert_eq(r, 0, "connect to %s port %u was answered (%s)", ip, port,
		     err ? strerror(err) : "connected");
	return fd;
}

/* The client's next recv ends in a reset (data before it is skipped). */
void expect_reset(int fd, const char *what)
{
	char buf[CHUNK];
	ssize_t r;

	do
		r = recv(fd, buf, sizeof(buf), 0);
	while (r > 0);
	cr_assert(r < 0 && errno == ECONNRESET,
		  "%s: client recv gave %zd (%s), want ECONNRESET", what, r,
		  r < 0 ? strerror(errno) : "EOF");
}

/* A connection that must be refused: the connect fails, or (as lwIP
 * accepts after the handshake) the first recv sees the reset. */
void expect_refused(const char *ip, uint16_t port)
{
	int err = 0, fd = client_connect_ex(ip, port, 0, 0, 3000, &err);

	if (fd < 0) {
		cr_assert(err == ECONNREFUSED || err == ECONNRESET,
			  "connect to %s port %u: %s, want a refusal", ip, port,
			  strerror(err));
		return;
	}
	expect_reset(fd, "refused connection");
	close(fd);
}

/* One send of what @x still holds from @fd; true if it moved. */
static bool cli_send_step(int fd, struct src *x)
{
	const uint8_t *p;
	size_t avail;
	long r;

	p = src_peek(x, &avail);
	if (!avail)
		return false;
	r = send(fd, p, avail, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r > 0) {
		x->off += (size_t)r;
		return true;
	}
	cr_assert(errno == EAGAIN, "client send: %s", strerror(errno));
	return false;
}

/* One write of what @x still holds to @s unless *@blocked, which a write's
 * -EAGAIN sets and L3X_EV_WRITABLE clears (counted in *@writable); true
 * if it moved. */
static bool srv_write_step(struct l3x_stream *s, struct src *x, bool *blocked,
			   int *writable)
{
	const uint8_t *p;
	size_t avail;
	long r;

	if (*blocked && log_take(s, L3X_EV_WRITABLE)) {
		*blocked = false;
		(*writable)++;
	}
	p = src_peek(x, &avail);
	if (!avail || *blocked)
		return false;
	r = l3x_stream__write(s, p, avail);
	if (r > 0) {
		x->off += (size_t)r;
		return true;
	}
	cr_assert_eq(r, -EAGAIN, "server write: %ld", r);
	*blocked = true;
	return false;
}

void cli_to_srv_from(struct l3x_worker *w, struct l3x_stream *s, int fd,
		     struct src *x, uint64_t seed, int ms)
{
	static uint8_t buf[CHUNK];
	uint64_t end = now_ms() + ms;
	size_t n = x->limit;
	struct sink k;
	bool moved;
	long r;

	sink_init(&k, seed);
	while (k.got < n) {
		moved = cli_send_step(fd, x);
		r = l3x_stream__read(s, buf, sizeof(buf));
		if (r > 0) {
			sink_put(&k, buf, (size_t)r);
			moved = true;
		} else {
			cr_assert_eq(r, -EAGAIN,
				     "server read after %zu of %zu: %ld", k.got,
				     n, r);
		}
		if (!moved) {
			cr_assert_lt(now_ms(), end,
				     "stuck after %zu of %zu bytes", k.got, n);
			worker_step(w, 2);
		}
	}
	cr_assert_eq(k.got, n);
	cr_assert(!k.bad, "client -> server byte %zu differs", k.bad_at);
}

void cli_to_srv(struct l3x_worker *w, struct l3x_stream *s, int fd,
		uint64_t seed, size_t n)
{
	struct src x;

	src_init(&x, seed, n);
	cli_to_srv_from(w, s, fd, &x, seed, 10000);
}

int srv_to_cli_from(struct l3x_worker *w, struct l3x_stream *s, int fd,
		    struct src *x, uint64_t seed, bool blocked, int ms)
{
	static uint8_t buf[CHUNK];
	uint64_t end = now_ms() + ms;
	size_t n = x->limit;
	int writable = 0;
	struct sink k;
	bool moved;
	long r;

	sink_init(&k, seed);
	while (k.got < n) {
		moved = srv_write_step(s, x, &blocked, &writable);
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r > 0) {
			sink_put(&k, buf, (size_t)r);
			moved = true;
		} else {
			cr_assert(r < 0 && errno == EAGAIN,
				  "client recv after %zu of %zu: %zd (%s)",
				  k.got, n, r, r ? strerror(errno) : "EOF");
		}
		if (!moved) {
			cr_assert_lt(now_ms(), end,
				     "stuck after %zu of %zu bytes (%d "
				     "WRITABLE events)",
				     k.got, n, writable);
			worker_step(w, 2);
		}
	}
	cr_assert(!k.bad, "server -> client byte %zu differs", k.bad_at);
	return writable;
}

void srv_to_cli(struct l3x_worker *w, struct l3x_stream *s, int fd,
		uint64_t seed, size_t n)
{
	struct src x;

	src_init(&x, seed, n);
	srv_to_cli_from(w, s, fd, &x, seed, false, 10000);
}

/* The orderly end, client first: FIN, the server reads EOF and closes,
 * the client reads EOF. l3x goes through LAST_ACK, not TIME_WAIT. */
void close_pair(struct l3x_worker *w, int fd, struct l3x_stream *s)
{
	char buf[64];
	long r;

	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	r = sread(w, s, buf, sizeof(buf), 3000);
	cr_assert_eq(r, 0, "server read after the client's FIN: %ld", r);
	stream_close(s);
	r = recv(fd, buf, sizeof(buf), 0);
	cr_assert_eq(r, 0, "client recv after the server's close: %ld (%s)", r,
		     r < 0 ? strerror(errno) : "data");
	close(fd);
}

/* One connection, accepted: the usual start of a test. */
int connect_accept(struct l3x_worker *w, const char *ip, uint16_t port,
		   struct l3x_stream **s)
{
	int fd = client_connect(ip, port);

	*s = accept_wait(w, 2000);
	cr_assert_not_null(*s, "no stream accepted for %s port %u", ip, port);
	return fd;
}

int connect_accept_ex(struct l3x_worker *w, const char *ip, uint16_t port,
		      int sndbuf, int rcvbuf, struct l3x_stream **s)
{
	int fd, err = 0;

	fd = client_connect_ex(ip, port, sndbuf, rcvbuf, 3000, &err);
	cr_assert_geq(fd, 0, "connect: %s", strerror(err));
	*s = accept_wait(w, 2000);
	cr_assert_not_null(*s);
	return fd;
}

struct l3x_stack_stats two_then_refused(struct l3x_worker *w,
					const char *const ip[3], uint16_t port,
					int fd[2], struct l3x_stream *s[2])
{
	struct l3x_stack_stats ss;

	fd[0] = connect_accept(w, ip[0], port, &s[0]);
	fd[1] = connect_accept(w, ip[1], port, &s[1]);
	expect_refused(ip[2], port);
	ss = stats_now();
	cr_assert_eq(ss.tcp_refused_flows, 1);
	cr_assert_eq(ss.tcp_accepted, 2);
	return ss;
}

struct l3x_worker *stack_worker_up(enum l3x_source src)
{
	L3X_OPTS(l3x_stack_opts, o);

	stack_up(src, &o, true);
	return worker_open();
}

int null_output(void *ctx, const void *pkt, size_t len)
{
	(void)ctx;
	(void)pkt;
	(void)len;
	return 0;
}

void expect_frames(struct l3x_capture_handle *h, uint32_t app)
{
	struct l3x_frame_stats fs;

	cr_assert_eq(l3x_capture_handle__frames(h, &fs), 0);
	cr_assert_eq(fs.free + fs.fill + fs.kernel + fs.app + fs.tx +
			     fs.completion,
		     fs.total, "frames lost: free %u fill %u kernel %u app %u",
		     fs.free, fs.fill, fs.kernel, fs.app);
	cr_assert_eq(fs.app, app, "app holds %u, want %u", fs.app, app);
}

struct l3x_capture *capture_open_t1(struct l3x_capture_opts *o)
{
	struct l3x_capture *cap;
	struct l3x_rule r;

	o->ifname = "t1";
	l3x_set_print(NULL);
	cap = l3x_capture__open(o);
	cr_assert_not_null(cap, "open: %s", strerror(errno));
	cr_assert_eq(l3x_rule__parse(&r, "udp 192.0.2.2 9000", NULL, 0), 0);
	cr_assert_eq(l3x_capture__add_rule(cap, &r), 0);
	return cap;
}

void capture_inject_recv(struct l3x_capture_handle *h, struct l3x_frame *f,
			 unsigned n, uint32_t seq0)
{
	unsigned i, got;

	for (i = 0; i < n; i++)
		veth_inject_udp(9000, seq0 + i);
	got = capture_recv_n(h, f, n);
	cr_assert_eq(got, n, "%u of %u datagrams captured", got, n);
	expect_frames(h, n);
}

void bpffs_private(const char *dir)
{
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		cr_skip_test("no mount namespace: %s", strerror(errno));
	if (mount("bpf", dir, "bpf", 0, NULL))
		cr_skip_test("cannot mount a bpffs on %s: %s", dir,
			     strerror(errno));
}

unsigned capture_recv_n(struct l3x_capture_handle *h, struct l3x_frame *f,
			unsigned want)
{
	unsigned got = 0, tries = 0;

	while (got < want && tries++ < 200) {
		got += l3x_capture_handle__recv_burst(h, f + got, want - got);
		if (got < want)
			l3x_capture_handle__wait(h, 10);
	}
	return got;
}

void stack_worker_down(struct l3x_worker *w, unsigned n_tw)
{
	expect_clean(n_tw);
	l3x_worker__close(w);
	stack_down();
}

/* ------------------------------------------------------------ XDP object */

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_WARN)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int xdp_obj_map_fd(struct bpf_object *obj, const char *name)
{
	int fd = bpf_object__find_map_fd_by_name(obj, name);

	cr_assert_geq(fd, 0, "map %s missing from %s", name, L3X_BPF_OBJ);
	return fd;
}

struct bpf_program *xdp_obj_load(struct bpf_object **objp)
{
	struct bpf_program *prog;
	struct bpf_object *obj;
	struct bpf_map *map;
	int err;

	if (geteuid() != 0)
		cr_skip_test("needs root (CAP_BPF, CAP_NET_ADMIN) to load XDP");
	libbpf_set_print(quiet);
	obj = bpf_object__open_file(L3X_BPF_OBJ, NULL);
	cr_assert(obj, "cannot open %s: %s", L3X_BPF_OBJ, strerror(errno));
	*objp = obj;
	/* Tests must not pin, nor pick up maps pinned by a live l3x. */
	bpf_object__for_each_map(map, obj)
		cr_assert_eq(bpf_map__set_pin_path(map, NULL), 0);
	err = bpf_object__load(obj);
	if (err == -EPERM)
		cr_skip_test("BPF not permitted here: %s", strerror(-err));
	cr_assert_eq(err, 0, "loading %s: %s", L3X_BPF_OBJ, strerror(-err));
	prog = bpf_object__find_program_by_name(obj, "l3x_xdp");
	cr_assert(prog, "no program l3x_xdp");
	return prog;
}

/* ------------------------------------------------------------ veth */

static int inject_fd = -1;
static int inject_ifindex;
static uint8_t dst_mac[6];

/* A namespace of our own with veth t0 <-> t1 (@queues each). */
void veth_up(int queues)
{
	char cmd[256];
	struct ifreq ifr = {};
	int s;

	if (geteuid() != 0)
		cr_skip_test(
			"needs root for a network namespace, veth and XDP");
	if (unshare(CLONE_NEWNET))
		cr_skip_test("cannot unshare a network namespace: %s",
			     strerror(errno));
	snprintf(
		cmd, sizeof(cmd),
		"ip link add t0 numtxqueues %d numrxqueues %d type veth peer name t1 "
		"numtxqueues %d numrxqueues %d && ip link set t0 up && ip link set t1 up",
		queues, queues, queues, queues);
	sh(cmd);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	strcpy(ifr.ifr_name, "t1");
	cr_assert_eq(ioctl(s, SIOCGIFHWADDR, &ifr), 0);
	memcpy(dst_mac, ifr.ifr_hwaddr.sa_data, 6);
	close(s);
	inject_fd = socket(AF_PACKET, SOCK_RAW, 0);
	cr_assert_geq(inject_fd, 0);
	inject_ifindex = if_nametoindex("t0");
}

/* Send one IPv4 UDP frame 192.0.2.1:4000 -> 192.0.2.2:@dport from t0.
 * Written byte by byte: lwIP's headers, which this file includes, clash
 * with <netinet/ip.h>. */
void veth_inject_udp(uint16_t dport, uint32_t seq)
{
	static const uint8_t ip[20] = { 0x45, 0, 0,   32, 0, 0, 0,   0, 64, 17,
					0,    0, 192, 0,  2, 1, 192, 0, 2,  2 };
	uint8_t f[64] = {};
	uint16_t c;
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_ifindex = inject_ifindex,
		.sll_halen = 6,
	};

	memcpy(f, dst_mac, 6);
	f[12] = 0x08; /* IPv4 */
	memcpy(f + 14, ip, 20);
	c = csum_fold(csum_partial(f + 14, 20, 0));
	f[24] = (uint8_t)(c >> 8);
	f[25] = (uint8_t)c;
	f[34] = 4000 >> 8;
	f[35] = 4000 & 0xff;
	f[36] = (uint8_t)(dport >> 8);
	f[37] = (uint8_t)dport;
	f[39] = 12; /* UDP length; checksum 0: none, which IPv4 allows */
	memcpy(f + 42, &seq, 4);
	memcpy(sll.sll_addr, dst_mac, 6);
	cr_assert_eq(sendto(inject_fd, f, 60, 0, (void *)&sll, sizeof(sll)),
		     60);
}
