/*
 * test_stack.c - the termination engine and its API in process, with the
 * kernel's own TCP as the peer (TESTING.md: real parts, not mocks).
 *
 * Each test unshares a network namespace of its own (criterion forks every
 * test, so the namespace, its TUN device and lwIP's globals die with the
 * test process) and routes two documentation prefixes into a TUN device:
 *   198.51.100.0/24, 2001:db8:100::/64  -> TUN "l3x0" -> the stack
 * so kernel sockets connect to any address in them and l3x answers as that
 * address. Two ways in:
 *   L3X_SOURCE_TUN       the stack opens the TUN and runs its own engine
 *                        thread (l3x_stack__start);
 *   L3X_SOURCE_CALLBACK  the test opens the TUN; a pump thread of ours is
 *                        the engine thread: it reads the TUN into
 *                        l3x_stack__input(), calls l3x_stack__poll(), and
 *                        opts.output writes back into the TUN.
 * Clients and the worker share the test thread unless a test needs them
 * concurrent (echo). Data is a seeded stream per direction, checked byte by
 * byte as it arrives.
 *
 * Teardown of every test: with every stream and client closed, the stack's
 * streams are 0, lwIP's PCBs are gone (or only the TIME_WAIT ones the test
 * expects, whose memory is accounted for), heap and pbufs are back to what
 * they were right after open, and l3x_stack__close() returns 0.
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
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lwip/memp.h"
#include "lwip/priv/memp_priv.h"
#include "lwip/priv/tcp_priv.h"

#include "l3x/l3x.h"

#define TUN		"l3x0"
#define NET4		"198.51.100.0/24"
#define NET6		"2001:db8:100::/64"
#define CHUNK		16384

/* ------------------------------------------------------------ time, shell */

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void sh(const char *cmd)
{
	cr_assert_eq(system(cmd), 0, "command failed: %s", cmd);
}

/* ------------------------------------------------------------ seeded data */

/* xorshift64*: the same seed gives the same byte stream on both ends. */
struct gen {
	uint64_t s, w;
	unsigned left;
};

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

/* A sender's side of a stream: @limit bytes, made a chunk at a time and
 * kept until taken, so nothing is skipped when a write is short. */
struct src {
	struct gen g;
	uint8_t buf[CHUNK];
	size_t len, off, made, limit;
};

static void src_init(struct src *x, uint64_t seed, size_t limit)
{
	gen_init(&x->g, seed);
	x->len = x->off = x->made = 0;
	x->limit = limit;
}

static const uint8_t *src_peek(struct src *x, size_t *n)
{
	size_t i;

	if (x->off == x->len && x->made < x->limit) {
		x->len = x->limit - x->made < CHUNK ? x->limit - x->made : CHUNK;
		for (i = 0; i < x->len; i++)
			x->buf[i] = gen_byte(&x->g);
		x->made += x->len;
		x->off = 0;
	}
	*n = x->len - x->off;
	return x->buf + x->off;
}

static size_t src_taken(const struct src *x)
{
	return x->made - (x->len - x->off);
}

/* A receiver's side: checks every byte against the same seed. */
struct sink {
	struct gen g;
	size_t got, bad_at;
	bool bad;
};

static void sink_init(struct sink *k, uint64_t seed)
{
	gen_init(&k->g, seed);
	k->got = 0;
	k->bad = false;
}

static void sink_put(struct sink *k, const uint8_t *p, size_t n)
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

static socklen_t sa_make(const char *ip, uint16_t port,
			 struct sockaddr_storage *ss)
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

static bool sa_eq(const struct sockaddr_storage *a,
		  const struct sockaddr_storage *b)
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

static const char *sa_str(const struct sockaddr_storage *a, char *buf,
			  size_t n)
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

/* ------------------------------------------------------------ the stack */

static struct {
	enum l3x_source src;
	struct l3x_stack *st;
	int tun_fd;			/* callback source: the test's TUN */
	pthread_t pump;
	atomic_bool pump_run;
	bool running;
	struct l3x_stack_mem mem0;	/* right after open */
} F = { .tun_fd = -1 };

static void netns_up(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root for a network namespace and a TUN device");
	if (unshare(CLONE_NEWNET))
		cr_skip_test("cannot unshare a network namespace: %s",
			     strerror(errno));
	sh("ip link set lo up");
}

static int tun_create(const char *name)
{
	struct ifreq ifr = { 0 };
	int fd;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		cr_skip_test("no TUN: open /dev/net/tun: %s", strerror(errno));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	cr_assert_eq(ioctl(fd, TUNSETIFF, &ifr), 0, "TUNSETIFF %s: %s", name,
		     strerror(errno));
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

static int cb_output(void *ctx, const void *pkt, size_t len)
{
	ssize_t r = write(*(int *)ctx, pkt, len);

	if (r == (ssize_t)len)
		return 0;
	return r < 0 ? -errno : -EIO;
}

/* The engine thread of the callback source. */
static void *pump_main(void *arg)
{
	static uint8_t buf[65536];
	ssize_t r;
	int work, i;

	(void)arg;
	while (atomic_load(&F.pump_run)) {
		work = 0;
		for (i = 0; i < 64; i++) {
			r = read(F.tun_fd, buf, sizeof(buf));
			if (r <= 0)
				break;
			l3x_stack__input(F.st, buf, (size_t)r);
			work++;
		}
		work += l3x_stack__poll(F.st);
		if (!work)
			sched_yield();
	}
	return NULL;
}

static void eng_start(void)
{
	if (F.src == L3X_SOURCE_CALLBACK) {
		atomic_store(&F.pump_run, true);
		cr_assert_eq(pthread_create(&F.pump, NULL, pump_main, NULL), 0);
	} else {
		cr_assert_eq(l3x_stack__start(F.st), 0);
	}
	F.running = true;
}

static void eng_stop(void)
{
	if (!F.running)
		return;
	if (F.src == L3X_SOURCE_CALLBACK) {
		atomic_store(&F.pump_run, false);
		pthread_join(F.pump, NULL);
	} else {
		cr_assert_eq(l3x_stack__stop(F.st), 0);
	}
	F.running = false;
}

static void add_rule_text(const char *text)
{
	struct l3x_rule r;

	cr_assert_eq(l3x_rule__parse(&r, text, NULL, 0), 0, "rule %s", text);
	cr_assert_eq(l3x_stack__add_rule(F.st, &r), 0, "add rule %s", text);
}

/* Open a stack on @src in a namespace of our own, route the prefixes to
 * it, add rules for both when @rules, and start its engine. */
static void stack_up(enum l3x_source src, struct l3x_stack_opts *o, bool rules)
{
	netns_up();
	F.src = src;
	o->source = src;
	o->cpu = L3X_CPU_NONE;	/* the engine thread is not pinned */
	if (src == L3X_SOURCE_TUN) {
		o->tun_name = TUN;
	} else {
		F.tun_fd = tun_create(TUN);
		o->output = cb_output;
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

struct memsnap {
	struct l3x_stack_mem m;
	unsigned tw;		/* PCBs on lwIP's TIME_WAIT list */
};

/* l3x_stack__mem() wants the engine stopped: stop it for the look. */
static void mem_now(struct memsnap *ms)
{
	bool was = F.running;
	struct tcp_pcb *p;

	eng_stop();
	if (!was)	/* nobody polls: lwIP's timers run only from here */
		l3x_stack__poll(F.st);
	cr_assert_eq(l3x_stack__mem(F.st, &ms->m), 0);
	ms->tw = 0;
	for (p = tcp_tw_pcbs; p; p = p->next)
		ms->tw++;
	if (was)
		eng_start();
}

/* Heap bytes one element of lwIP pool @t costs (MEMP_MEM_MALLOC). */
static uint64_t pool_cost(memp_t t)
{
	return MEMP_SIZE + MEMP_ALIGN_SIZE(memp_pools[t]->size);
}

/* Everything is back where it was right after open, but @n_tw PCBs in
 * TIME_WAIT (and the TCP timer they keep running). Waits a little for
 * LAST_ACK to finish and the TCP timer to notice it has nothing to do. */
static void expect_clean(unsigned n_tw)
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

static void stack_down(void)
{
	eng_stop();
	cr_assert_eq(l3x_stack__close(F.st), 0);
	F.st = NULL;
	if (F.tun_fd >= 0)
		close(F.tun_fd);
	F.tun_fd = -1;
}

static struct l3x_stack_stats stats_now(void)
{
	struct l3x_stack_stats s;

	cr_assert_eq(l3x_stack__stats(F.st, &s), 0);
	return s;
}

/* Wait until counter @field reaches @want (or @ms pass); the snapshot. */
#define STATS_WAIT(field, want, ms)                                            \
	stats_wait(offsetof(struct l3x_stack_stats, field), (want), (ms))

static struct l3x_stack_stats stats_wait(size_t off, uint64_t want, int ms)
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
static uint32_t log_take(struct l3x_stream *s, uint32_t mask)
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

static void log_forget(struct l3x_stream *s)
{
	int i;

	for (i = 0; i < LOGN; i++)
		if (evlog[i].s == s)
			evlog[i].s = NULL;
}

/* Wait up to @ms for news and log every event. */
static void worker_step(struct l3x_worker *w, int ms)
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

static bool wait_ev(struct l3x_worker *w, struct l3x_stream *s, uint32_t mask,
		    int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (!log_take(s, mask)) {
		if (now_ms() > end)
			return false;
		worker_step(w, 20);
	}
	return true;
}

static struct l3x_worker *worker_open(void)
{
	struct l3x_worker *w = l3x_worker__open(F.st);

	cr_assert_not_null(w, "l3x_worker__open: %s", strerror(errno));
	return w;
}

static void expect_no_accept(struct l3x_worker *w)
{
	struct l3x_stream *s;
	int e;

	errno = 0;
	s = l3x_worker__accept(w);
	e = errno;
	cr_assert_null(s, "a stream to accept");
	cr_assert_eq(e, EAGAIN, "accept with none: errno %d, want EAGAIN", e);
}

static struct l3x_stream *accept_wait(struct l3x_worker *w, int ms)
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
static long sread(struct l3x_worker *w, struct l3x_stream *s, void *buf,
		  size_t len, int ms)
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

static void stream_close(struct l3x_stream *s)
{
	log_forget(s);
	l3x_stream__close(s);
}

static void stream_abort(struct l3x_stream *s)
{
	log_forget(s);
	l3x_stream__abort(s);
}

/* ------------------------------------------------------------ client side */

static void make_blocking(int fd);

/* Connect within @ms; kernel buffer sizes when non-zero. Returns a blocking
 * fd with 3 s timeouts, or -1 with the error in *err. */
static int client_connect_ex(const char *ip, uint16_t port, int sndbuf,
			     int rcvbuf, int ms, int *err)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_make(ip, port, &ss), el = sizeof(*err);
	struct pollfd p;
	int fd;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	if (sndbuf)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
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

static void make_blocking(int fd)
{
	struct timeval tv = { .tv_sec = 3 };

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int client_connect(const char *ip, uint16_t port)
{
	int err = 0, fd = client_connect_ex(ip, port, 0, 0, 3000, &err);

	cr_assert_geq(fd, 0, "connect to %s port %u: %s", ip, port,
		      strerror(err));
	return fd;
}

/* A connect that gets no answer: started, and still pending after @ms. */
static int client_connect_unanswered(const char *ip, uint16_t port, int ms)
{
	struct sockaddr_storage ss;
	socklen_t len = sa_make(ip, port, &ss);
	struct pollfd p;
	int fd, r, err = 0;
	socklen_t el = sizeof(err);

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	r = connect(fd, (struct sockaddr *)&ss, len);
	cr_assert(r < 0 && errno == EINPROGRESS, "connect: %s", strerror(errno));
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	r = poll(&p, 1, ms);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
	cr_assert_eq(r, 0, "connect to %s port %u was answered (%s)", ip, port,
		     err ? strerror(err) : "connected");
	return fd;
}

/* The client's next recv ends in a reset (data before it is skipped). */
static void expect_reset(int fd, const char *what)
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
static void expect_refused(const char *ip, uint16_t port)
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

/* @n seeded bytes client -> stream, both ends on this thread. */
static void cli_to_srv(struct l3x_worker *w, struct l3x_stream *s, int fd,
		       uint64_t seed, size_t n)
{
	static uint8_t buf[CHUNK];
	uint64_t end = now_ms() + 10000;
	struct src x;
	struct sink k;
	const uint8_t *p;
	size_t avail;
	bool moved;
	long r;

	src_init(&x, seed, n);
	sink_init(&k, seed);
	while (k.got < n) {
		moved = false;
		p = src_peek(&x, &avail);
		if (avail) {
			r = send(fd, p, avail, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r > 0) {
				x.off += (size_t)r;
				moved = true;
			} else {
				cr_assert(errno == EAGAIN, "client send: %s",
					  strerror(errno));
			}
		}
		r = l3x_stream__read(s, buf, sizeof(buf));
		if (r > 0) {
			sink_put(&k, buf, (size_t)r);
			moved = true;
		} else {
			cr_assert_eq(r, -EAGAIN, "server read after %zu of %zu: %ld",
				     k.got, n, r);
		}
		if (!moved) {
			cr_assert_lt(now_ms(), end, "stuck after %zu of %zu bytes",
				     k.got, n);
			worker_step(w, 2);
		}
	}
	cr_assert_eq(k.got, n);
	cr_assert(!k.bad, "client -> server byte %zu differs", k.bad_at);
}

/* @n seeded bytes stream -> client; writes wait for L3X_EV_WRITABLE. */
static void srv_to_cli(struct l3x_worker *w, struct l3x_stream *s, int fd,
		       uint64_t seed, size_t n)
{
	static uint8_t buf[CHUNK];
	uint64_t end = now_ms() + 10000;
	bool moved, blocked = false;
	struct src x;
	struct sink k;
	const uint8_t *p;
	size_t avail;
	long r;

	src_init(&x, seed, n);
	sink_init(&k, seed);
	while (k.got < n) {
		moved = false;
		if (blocked && log_take(s, L3X_EV_WRITABLE))
			blocked = false;
		p = src_peek(&x, &avail);
		if (avail && !blocked) {
			r = l3x_stream__write(s, p, avail);
			if (r > 0) {
				x.off += (size_t)r;
				moved = true;
			} else {
				cr_assert_eq(r, -EAGAIN, "server write: %ld", r);
				blocked = true;
			}
		}
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r > 0) {
			sink_put(&k, buf, (size_t)r);
			moved = true;
		} else {
			cr_assert(r < 0 && errno == EAGAIN,
				  "client recv after %zu of %zu: %zd (%s)", k.got,
				  n, r, r ? strerror(errno) : "EOF");
		}
		if (!moved) {
			cr_assert_lt(now_ms(), end, "stuck after %zu of %zu bytes",
				     k.got, n);
			worker_step(w, 2);
		}
	}
	cr_assert(!k.bad, "server -> client byte %zu differs", k.bad_at);
}

/* The orderly end, client first: FIN, the server reads EOF and closes,
 * the client reads EOF. l3x goes through LAST_ACK, not TIME_WAIT. */
static void close_pair(struct l3x_worker *w, int fd, struct l3x_stream *s)
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
static int connect_accept(struct l3x_worker *w, const char *ip, uint16_t port,
			  struct l3x_stream **s)
{
	int fd = client_connect(ip, port);

	*s = accept_wait(w, 2000);
	cr_assert_not_null(*s, "no stream accepted for %s port %u", ip, port);
	return fd;
}

/* ------------------------------------------------------------ echo */

#define ECHO_CONNS	6
#define ECHO_BYTES	(3u << 20)

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
	int fd, e = 0;

	fd = client_connect_ex(c->ip, c->port, 0, 0, 3000, &e);
	if (fd < 0) {
		snprintf(c->err, sizeof(c->err), "connect: %s", strerror(e));
		goto out;
	}
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
					 "byte %zu came back different", k.bad_at);
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
	atomic_int ready;	/* 1 worker open, -1 failed */
	atomic_bool finished;	/* every stream closed (or gave up) */
	atomic_bool release;	/* main has checked memory: close the worker */
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
	long r;

	for (;;) {
		if (c->off < c->len) {
			r = l3x_stream__write(c->s, c->buf + c->off,
					      c->len - c->off);
			if (r == -EAGAIN)
				return false;
			if (r < 0) {
				snprintf(sv->err, sizeof(sv->err), "write: %s",
					 strerror((int)-r));
				l3x_stream__abort(c->s);
				return true;
			}
			c->off += (size_t)r;
			continue;
		}
		r = l3x_stream__read(c->s, c->buf, sizeof(c->buf));
		if (r == -EAGAIN)
			return false;
		if (r == 0) {
			l3x_stream__close(c->s);
			return true;
		}
		if (r < 0) {
			snprintf(sv->err, sizeof(sv->err), "read: %s",
				 strerror((int)-r));
			l3x_stream__abort(c->s);
			return true;
		}
		c->len = (size_t)r;
		c->off = 0;
	}
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
			l3x_stream__client_addr(s, (struct sockaddr *)&sv->seen[nconn].client,
						sizeof(sv->seen[0].client));
			l3x_stream__orig_dst_addr(s, (struct sockaddr *)&sv->seen[nconn].dst,
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
		{ .ip = "198.51.100.10", .port = 80 },	{ .ip = "198.51.100.11", .port = 443 },
		{ .ip = "198.51.100.200", .port = 5001 },	{ .ip = "2001:db8:100::1", .port = 80 },
		{ .ip = "2001:db8:100::abcd", .port = 8443 },	{ .ip = "2001:db8:100::ffff:1", .port = 7 },
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
		cr_assert_eq(pthread_create(&ct[i], NULL, echo_client, &cl[i]), 0);
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

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = connect_accept(w, "198.51.100.20", 2000, &s);

	/* Client -> server, then the client's FIN: read gives 0 after all. */
	cli_to_srv(w, s, fd, 7, 100000);
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	r = sread(w, s, buf, sizeof(buf), 3000);
	cr_assert_eq(r, 0, "read after the client's FIN: %zd", r);
	cr_assert(wait_ev(w, s, L3X_EV_EOF, 1000), "no L3X_EV_EOF reported");
	cr_assert_eq(l3x_stream__read(s, buf, sizeof(buf)), 0, "EOF not sticky");

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
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

Test(stack, abort_resets_the_client, .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w;
	int fd;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = connect_accept(w, "198.51.100.21", 2001, &s);
	cli_to_srv(w, s, fd, 9, 5000);
	stream_abort(s);
	expect_reset(fd, "after l3x_stream__abort");
	close(fd);
	cr_assert_eq(STATS_WAIT(tcp_aborted, 1, 1000).tcp_aborted, 1);
	cr_assert_eq(stats_now().tcp_closed, 0);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

Test(stack, client_reset_reads_as_econnreset, .timeout = 20)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct l3x_stream *s;
	struct l3x_worker *w;
	char buf[64];
	int fd;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = connect_accept(w, "2001:db8:100::21", 2002, &s);
	cli_to_srv(w, s, fd, 10, 5000);
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd);	/* RST */
	cr_assert(wait_ev(w, s, L3X_EV_ERROR, 2000), "no L3X_EV_ERROR after RST");
	cr_assert_eq(l3x_stream__read(s, buf, sizeof(buf)), -ECONNRESET);
	cr_assert_eq(l3x_stream__write(s, "x", 1), -ECONNRESET);
	cr_assert_eq(stats_now().tcp_reset_by_client, 1);
	stream_close(s);
	cr_assert_eq(stats_now().tcp_aborted, 0);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

Test(stack, close_with_unread_data_resets, .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w;
	char data[1000] = { 1 };
	int fd;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = connect_accept(w, "198.51.100.22", 2003, &s);
	cr_assert_eq(send(fd, data, sizeof(data), 0), (ssize_t)sizeof(data));
	cr_assert(wait_ev(w, s, L3X_EV_READABLE, 2000), "data never readable");
	stream_close(s);	/* 1000 bytes unread */
	expect_reset(fd, "close with unread data");
	close(fd);
	cr_assert_eq(STATS_WAIT(tcp_aborted, 1, 1000).tcp_aborted, 1);
	cr_assert_eq(stats_now().tcp_closed, 0);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

Test(stack, server_close_first_sends_data_then_fin_and_leaves_time_wait,
     .timeout = 20)
{
	struct l3x_stream *s;
	struct l3x_worker *w;
	char buf[64];
	ssize_t r;
	int fd;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_CALLBACK, &o, true);
	w = worker_open();
	fd = connect_accept(w, "198.51.100.23", 2004, &s);
	/* Written, then closed at once: the data must still all arrive. */
	cr_assert_eq(l3x_stream__write(s, "last words", 10), 10);
	stream_close(s);
	r = recv(fd, buf, sizeof(buf), MSG_WAITALL);
	cr_assert_eq(r, 10, "client got %zd bytes", r);
	cr_assert_eq(memcmp(buf, "last words", 10), 0);
	r = recv(fd, buf, sizeof(buf), 0);
	cr_assert_eq(r, 0, "client recv after the server's close: %zd", r);
	close(fd);	/* l3x closed first: it keeps TIME_WAIT */
	cr_assert_eq(STATS_WAIT(tcp_closed, 1, 1000).tcp_closed, 1);
	expect_clean(1);
	l3x_worker__close(w);
	stack_down();
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
		cr_assert_gt(avail, 0, "client sent everything: no back-pressure");
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

Test(stack, slow_reader_holds_the_client_to_rx_buf_then_resumes_in_order,
     .timeout = 30)
{
	const uint32_t rx_buf = 65536;
	const size_t total = 2u << 20;
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	static struct src x;
	static uint8_t buf[CHUNK];
	struct sink k;
	socklen_t sl = sizeof(int);
	int fd, sndbuf = 0, err = 0;
	size_t sent, avail;
	const uint8_t *p;
	uint64_t end;
	long r;

	L3X_OPTS(l3x_stack_opts, o, .rx_buf = rx_buf);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = client_connect_ex("198.51.100.30", 3000, 32768, 0, 3000, &err);
	cr_assert_geq(fd, 0, "connect: %s", strerror(err));
	getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl);
	s = accept_wait(w, 2000);
	cr_assert_not_null(s);

	/* Nobody reads: the window closes at rx_buf. */
	src_init(&x, 21, total);
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
	sink_init(&k, 21);
	end = now_ms() + 15000;
	while (k.got < total) {
		bool moved = false;

		cr_assert_lt(now_ms(), end, "stuck after %zu of %zu bytes", k.got,
			     total);
		p = src_peek(&x, &avail);
		if (avail) {
			r = send(fd, p, avail, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r > 0) {
				x.off += (size_t)r;
				moved = true;
			}
		}
		r = l3x_stream__read(s, buf, sizeof(buf));
		if (r > 0) {
			sink_put(&k, buf, (size_t)r);
			moved = true;
		} else {
			cr_assert_eq(r, -EAGAIN, "read: %ld", r);
		}
		if (!moved)
			worker_step(w, 2);
	}
	cr_assert(!k.bad, "byte %zu differs", k.bad_at);
	close_pair(w, fd, s);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
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
	const size_t total = 2u << 20;
	struct l3x_stack_stats ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	static struct src x;
	static uint8_t buf[CHUNK];
	struct sink k;
	socklen_t sl = sizeof(int);
	int fd, rcvbuf = 0, err = 0, writable = 0;
	size_t written, first, avail;
	bool blocked = true;
	const uint8_t *p;
	uint64_t end;
	long r;

	L3X_OPTS(l3x_stack_opts, o, .tx_buf = tx_buf);
	stack_up(L3X_SOURCE_CALLBACK, &o, true);
	w = worker_open();
	fd = client_connect_ex("2001:db8:100::30", 3001, 0, 16384, 3000, &err);
	cr_assert_geq(fd, 0, "connect: %s", strerror(err));
	getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &sl);
	s = accept_wait(w, 2000);
	cr_assert_not_null(s);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_TX_BUF), tx_buf);

	/* The client does not read: writes stop at tx_buf unacknowledged. */
	src_init(&x, 22, total);
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
	sink_init(&k, 22);
	end = now_ms() + 15000;
	while (k.got < total) {
		bool moved = false;

		cr_assert_lt(now_ms(), end,
			     "stuck after %zu of %zu bytes (%d WRITABLE events)",
			     k.got, total, writable);
		if (blocked && log_take(s, L3X_EV_WRITABLE)) {
			blocked = false;
			writable++;
		}
		p = src_peek(&x, &avail);
		if (avail && !blocked) {
			r = l3x_stream__write(s, p, avail);
			if (r > 0) {
				x.off += (size_t)r;
				moved = true;
			} else {
				cr_assert_eq(r, -EAGAIN, "write: %ld", r);
				blocked = true;
			}
		}
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r > 0) {
			sink_put(&k, buf, (size_t)r);
			moved = true;
		}
		if (!moved)
			worker_step(w, 2);
	}
	cr_assert(!k.bad, "byte %zu differs", k.bad_at);
	cr_assert_geq(writable, 1, "no L3X_EV_WRITABLE once the client read");
	close_pair(w, fd, s);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
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
	int fd, err = 0;

	L3X_OPTS(l3x_stack_opts, o, .linger_ms = 300);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = client_connect_ex("198.51.100.31", 3002, 0, 16384, 3000, &err);
	cr_assert_geq(fd, 0, "connect: %s", strerror(err));
	s = accept_wait(w, 2000);
	cr_assert_not_null(s);
	src_init(&x, 23, 64u << 20);
	written = write_until_stall(w, s, &x, &first);
	stream_close(s);	/* data unsent, a zero window: linger */

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
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

/* ------------------------------------------------------------ limits */

Test(stack, max_flows_refuses_the_next_connection, .timeout = 20)
{
	struct l3x_stream *s1, *s2, *s3;
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	int fd1, fd2, fd3;

	L3X_OPTS(l3x_stack_opts, o, .max_flows = 2);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd1 = connect_accept(w, "198.51.100.40", 4000, &s1);
	fd2 = connect_accept(w, "2001:db8:100::40", 4000, &s2);
	expect_refused("198.51.100.41", 4000);
	ss = stats_now();
	cr_assert_eq(ss.tcp_refused_flows, 1);
	cr_assert_eq(ss.tcp_accepted, 2);
	cr_assert_eq(ss.flows, 2);
	cr_assert_eq(l3x_worker__accept(w), NULL, "a refused flow was offered");

	/* One closes: there is room again once the client has acknowledged
	 * our FIN (a closing stream still holds its slot until then). */
	close_pair(w, fd1, s1);
	STATS_WAIT(tcp_closed, 1, 2000);
	fd3 = connect_accept(w, "198.51.100.42", 4000, &s3);
	cli_to_srv(w, s3, fd3, 30, 1000);
	ss = stats_now();
	cr_assert_eq(ss.tcp_accepted, 3);
	cr_assert_eq(ss.tcp_refused_flows, 1);
	close_pair(w, fd2, s2);
	close_pair(w, fd3, s3);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

Test(stack, no_worker_refuses_with_backlog_counter, .timeout = 20)
{
	struct l3x_stack_stats ss;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_CALLBACK, &o, true);
	expect_refused("198.51.100.43", 4001);
	ss = stats_now();
	cr_assert_eq(ss.tcp_refused_backlog, 1);
	cr_assert_eq(ss.tcp_accepted, 0);
	cr_assert_eq(ss.flows, 0);
	expect_clean(0);
	stack_down();
}

Test(stack, backlog_full_refuses_until_accepted, .timeout = 20)
{
	struct l3x_stream *s1, *s3;
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	int fd1, fd3;

	L3X_OPTS(l3x_stack_opts, o, .backlog = 1);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd1 = client_connect("198.51.100.44", 4002);
	cr_assert_eq(STATS_WAIT(tcp_accepted, 1, 2000).tcp_accepted, 1);
	expect_refused("198.51.100.45", 4002);	/* nobody accepted fd1 */
	ss = stats_now();
	cr_assert_eq(ss.tcp_refused_backlog, 1);
	cr_assert_eq(ss.tcp_accepted, 1);

	s1 = accept_wait(w, 2000);
	cr_assert_not_null(s1);
	expect_no_accept(w);
	cli_to_srv(w, s1, fd1, 31, 2000);
	fd3 = connect_accept(w, "198.51.100.46", 4002, &s3);
	cr_assert_eq(stats_now().tcp_refused_backlog, 1);
	close_pair(w, fd1, s1);
	close_pair(w, fd3, s3);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

Test(stack, worker_close_resets_accepted_and_waiting_streams, .timeout = 20)
{
	struct l3x_stream *s1;
	struct l3x_worker *w;
	int fd1, fd2;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd1 = connect_accept(w, "198.51.100.47", 4003, &s1);
	fd2 = client_connect("198.51.100.48", 4003);
	cr_assert_eq(STATS_WAIT(tcp_accepted, 2, 2000).tcp_accepted, 2);
	log_forget(s1);
	l3x_worker__close(w);
	expect_reset(fd1, "accepted stream of a closed worker");
	expect_reset(fd2, "waiting stream of a closed worker");
	close(fd1);
	close(fd2);
	cr_assert_eq(STATS_WAIT(tcp_aborted, 2, 1000).tcp_aborted, 2);
	cr_assert_eq(stats_now().flows, 0);
	expect_clean(0);
	stack_down();
}

Test(stack, flows_go_round_robin_over_workers, .timeout = 20)
{
	struct l3x_stream *s[4];
	struct l3x_worker *w[2];
	int fd[4], i;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w[0] = worker_open();
	w[1] = worker_open();
	for (i = 0; i < 4; i++) {
		fd[i] = client_connect(i & 1 ? "2001:db8:100::50" : "198.51.100.50",
				       (uint16_t)(5000 + i));
		s[i] = accept_wait(w[i & 1], 2000);
		cr_assert_not_null(s[i], "connection %d not offered to worker %d",
				   i, i & 1);
		cr_assert_null(l3x_worker__accept(w[!(i & 1)]),
			       "connection %d offered to both workers", i);
	}
	for (i = 0; i < 4; i++) {
		cli_to_srv(w[i & 1], s[i], fd[i], 40 + (uint64_t)i, 3000);
		close_pair(w[i & 1], fd[i], s[i]);
	}
	expect_clean(0);
	l3x_worker__close(w[0]);
	l3x_worker__close(w[1]);
	stack_down();
}

/* ------------------------------------------------------------ rules */

Test(stack, packet_outside_the_rules_is_counted_and_unanswered, .timeout = 20)
{
	struct l3x_stack_stats before, after;
	struct sockaddr_storage ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	socklen_t sl;
	int fd, ufd;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, false);
	/* No IPv6 on the TUN: the kernel's own IPv6 chatter (router and
	 * listener reports) would add to rx_no_rule. */
	sh("echo 1 > /proc/sys/net/ipv6/conf/" TUN "/disable_ipv6");
	add_rule_text("tcp 198.51.100.0/24 80");
	w = worker_open();
	usleep(50000);

	before = stats_now();
	fd = client_connect_unanswered("198.51.100.60", 81, 400);
	sl = sa_make("198.51.100.60", 80, &ss);
	ufd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_eq(sendto(ufd, "u", 1, 0, (struct sockaddr *)&ss, sl), 1);
	usleep(100000);
	after = stats_now();
	close(ufd);
	close(fd);
	cr_assert_eq(after.rx_no_rule - before.rx_no_rule, 2,
		     "rx_no_rule went up by %llu for one SYN to port 81 and one "
		     "UDP datagram",
		     (unsigned long long)(after.rx_no_rule - before.rx_no_rule));
	cr_assert_eq(after.tx_packets, before.tx_packets, "the stack answered");
	cr_assert_eq(after.tcp_accepted, 0);
	cr_assert_eq(after.rx_bad, before.rx_bad);

	/* The rule itself works. */
	fd = connect_accept(w, "198.51.100.60", 80, &s);
	cli_to_srv(w, s, fd, 50, 1000);
	close_pair(w, fd, s);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

Test(stack, rules_change_live, .timeout = 20)
{
	struct l3x_stack_stats before, after;
	struct l3x_stream *s;
	struct l3x_worker *w;
	struct l3x_rule r80, bad;
	socklen_t el = sizeof(int);
	struct pollfd pf;
	int fd, err = 0;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_CALLBACK, &o, false);
	w = worker_open();
	cr_assert_eq(l3x_rule__parse(&r80, "tcp 198.51.100.0/24 80", NULL, 0), 0);

	/* Added on the running stack: connections come in. */
	cr_assert_eq(l3x_stack__add_rule(F.st, &r80), 0);
	fd = connect_accept(w, "198.51.100.61", 80, &s);
	close_pair(w, fd, s);
	/* Rules steer packets, not flows: the client's ACK of our FIN must
	 * get in before the rule goes. */
	STATS_WAIT(tcp_closed, 1, 2000);

	/* Deleted: new connections get no answer. */
	cr_assert_eq(l3x_stack__del_rule(F.st, &r80), 0);
	before = stats_now();
	fd = client_connect_unanswered("198.51.100.62", 80, 400);
	after = stats_now();
	cr_assert_geq(after.rx_no_rule, before.rx_no_rule + 1);
	cr_assert_eq(after.tcp_accepted, before.tcp_accepted);

	/* Added again: the same connect completes on its SYN retransmit. */
	cr_assert_eq(l3x_stack__add_rule(F.st, &r80), 0);
	pf = (struct pollfd){ .fd = fd, .events = POLLOUT };
	cr_assert_eq(poll(&pf, 1, 3000), 1, "SYN retransmit not answered");
	cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el), 0);
	cr_assert_eq(err, 0, "connect after the rule came back: %s",
		     strerror(err));
	s = accept_wait(w, 2000);
	cr_assert_not_null(s);
	make_blocking(fd);
	close_pair(w, fd, s);
	STATS_WAIT(tcp_closed, 2, 2000);

	/* Absent and bad rules. */
	cr_assert_eq(l3x_stack__del_rule(F.st, &r80), 0);
	cr_assert_eq(l3x_stack__del_rule(F.st, &r80), -ENOENT);
	bad = r80;
	bad.family = 5;
	cr_assert_eq(l3x_stack__add_rule(F.st, &bad), -EINVAL);
	cr_assert_eq(l3x_stack__del_rule(F.st, &bad), -EINVAL);
	bad = r80;
	bad.prefix_len = 33;
	cr_assert_eq(l3x_stack__add_rule(F.st, &bad), -EINVAL);
	bad = r80;
	bad.port_lo = 90;
	bad.port_hi = 80;
	cr_assert_eq(l3x_stack__add_rule(F.st, &bad), -EINVAL);
	cr_assert_eq(l3x_stack__add_rule(F.st, NULL), -EINVAL);
	cr_assert_eq(l3x_stack__add_rule(NULL, &r80), -EINVAL);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

Test(stack, rules_change_back_to_back_on_a_running_stack, .timeout = 20)
{
	struct l3x_rule r[64];
	char text[64];
	int i, err;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, false);
	for (i = 0; i < 64; i++) {
		snprintf(text, sizeof(text), "tcp 198.51.100.%d %d", i, 1000 + i);
		cr_assert_eq(l3x_rule__parse(&r[i], text, NULL, 0), 0);
	}
	/* A control thread adding rules in a row must not see an error the
	 * API does not document (the engine is mid-turn most of the time). */
	for (i = 0; i < 64; i++) {
		err = l3x_stack__add_rule(F.st, &r[i]);
		cr_assert_eq(err, 0, "add rule %d of 64 on a running stack: %s", i,
			     strerror(-err));
	}
	for (i = 0; i < 64; i++) {
		err = l3x_stack__del_rule(F.st, &r[i]);
		cr_assert_eq(err, 0, "del rule %d of 64 on a running stack: %s", i,
			     strerror(-err));
	}
	expect_clean(0);
	stack_down();
}

/* ------------------------------------------------------------ API errors */

static int null_output(void *ctx, const void *pkt, size_t len)
{
	(void)ctx;
	(void)pkt;
	(void)len;
	return 0;
}

/* A callback stack with nowhere to send: no namespace needed. */
static struct l3x_stack *open_cb(struct l3x_stack_opts *o)
{
	o->source = L3X_SOURCE_CALLBACK;
	o->output = null_output;
	return l3x_stack__open(o);
}

/* Open must fail with @want, and leave nothing open. */
static void expect_open_fails(const struct l3x_stack_opts *o, int want,
			      const char *what)
{
	struct l3x_stack *st;
	int e;

	errno = 0;
	st = l3x_stack__open(o);
	e = errno;
	if (st)
		l3x_stack__close(st);
	cr_assert_null(st, "%s: opened", what);
	cr_assert_eq(e, want, "%s: errno %d (%s), want %d", what, e,
		     strerror(e), want);
}

Test(stack, open_rejects_bad_options)
{
	struct {
		struct l3x_stack_opts o;
		uint64_t newer;
	} big;
	struct l3x_stack *st;

	l3x_set_print(NULL);
	expect_open_fails(NULL, EINVAL, "NULL opts (XDP, no interface)");
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_XDP);
		expect_open_fails(&o, EINVAL, "XDP without ifname");
	}
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_TUN);
		expect_open_fails(&o, EINVAL, "TUN without tun_name");
		o.tun_name = "a-name-longer-than-ifnamsiz";
		expect_open_fails(&o, EINVAL, "TUN name too long");
	}
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK);
		expect_open_fails(&o, EINVAL, "callback without output");
	}
	{
		L3X_OPTS(l3x_stack_opts, o, .source = 7, .output = null_output);
		expect_open_fails(&o, EINVAL, "unknown source");
	}
#define BAD_OPT(field, val)                                                    \
	do {                                                                   \
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,    \
			 .output = null_output, .field = (val));               \
		expect_open_fails(&o, EINVAL, #field " = " #val);              \
	} while (0)
	BAD_OPT(mtu, 100);
	BAD_OPT(mtu, 65000);
	BAD_OPT(rx_buf, 2u << 20);
	BAD_OPT(rx_buf, 1000);
	BAD_OPT(tx_buf, 100);
	BAD_OPT(cpu, -2);	/* L3X_CPU_NONE (-1) is valid */
	BAD_OPT(cpu, CPU_SETSIZE);
#undef BAD_OPT

	/* A newer caller's struct: unknown bytes must be zero. */
	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.o.source = L3X_SOURCE_CALLBACK;
	big.o.output = null_output;
	big.newer = 1;
	expect_open_fails(&big.o, EINVAL, "unknown non-zero trailing bytes");
	big.newer = 0;
	st = l3x_stack__open(&big.o);
	cr_assert_not_null(st, "zero trailing bytes: %s", strerror(errno));
	cr_assert_eq(l3x_stack__close(st), 0);

	/* An older caller's struct: fields past its sz are not read. */
	big.o.sz = offsetof(struct l3x_stack_opts, mtu);
	big.o.mtu = 100;
	st = l3x_stack__open(&big.o);
	cr_assert_not_null(st, "mtu past sz was read: %s", strerror(errno));
	cr_assert_eq(l3x_stack__close(st), 0);
	big.o.sz = 4;
	expect_open_fails(&big.o, EINVAL, "sz smaller than the sz field");
}

Test(stack, one_stack_per_process_and_close_needs_workers_closed)
{
	struct l3x_stack_stats ss;
	struct l3x_stack *st2;
	struct l3x_worker *w;

	l3x_set_print(NULL);
	{
		L3X_OPTS(l3x_stack_opts, o);
		F.src = L3X_SOURCE_CALLBACK;
		F.st = open_cb(&o);
		cr_assert_not_null(F.st, "open: %s", strerror(errno));
		cr_assert_eq(l3x_stack__mem(F.st, &F.mem0), 0);
	}
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
			 .output = null_output);
		expect_open_fails(&o, EBUSY, "a second stack");
	}
	w = l3x_worker__open(F.st);
	cr_assert_not_null(w);
	cr_assert_geq(l3x_worker__fd(w), 0);
	expect_no_accept(w);
	cr_assert_eq(l3x_worker__poll(w, NULL, 0), 0);
	cr_assert_eq(l3x_worker__wait(w, 0), 0);
	cr_assert_eq(l3x_stack__close(F.st), -EBUSY);
	cr_assert_eq(l3x_stack__stats(F.st, &ss), 0, "stack unusable after "
						    "-EBUSY");
	cr_assert_eq(l3x_stack__poll(F.st), 0, "engine unusable after -EBUSY");
	l3x_worker__close(w);
	expect_clean(0);
	cr_assert_eq(l3x_stack__close(F.st), 0);
	cr_assert_eq(l3x_stack__close(NULL), 0);

	/* Closed: the process may open one again. */
	{
		L3X_OPTS(l3x_stack_opts, o);
		st2 = open_cb(&o);
		cr_assert_not_null(st2, "reopen after close: %s", strerror(errno));
		cr_assert_eq(l3x_stack__close(st2), 0);
	}
}

Test(stack, engine_calls_check_source_and_state, .timeout = 20)
{
	struct l3x_steer_stats sst;
	uint8_t pkt[40] = { 0x45 };

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	cr_assert_eq(l3x_stack__input(F.st, pkt, sizeof(pkt)), -EINVAL,
		     "input on a TUN stack");
	cr_assert_eq(l3x_stack__steer_stats(F.st, &sst), -EOPNOTSUPP);
	cr_assert_eq(l3x_stack__poll(F.st), -EBUSY, "poll while started");
	cr_assert_eq(l3x_stack__start(F.st), -EALREADY);
	cr_assert_eq(l3x_stack__stop(F.st), 0);
	F.running = false;
	cr_assert_eq(l3x_stack__stop(F.st), -EALREADY);
	cr_assert_geq(l3x_stack__poll(F.st), 0, "poll once stopped");
	eng_start();
	expect_clean(0);
	stack_down();
}

/* RFC 1071 sum, folded, of @len bytes plus @sum. */
static uint16_t csum(const void *p, size_t len, uint32_t sum)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* An IPv4 TCP segment 203.0.113.9:40000 -> 198.51.100.70:80 in @p (40
 * bytes), with correct checksums. */
static void make_tcp4(uint8_t *p, uint8_t flags, uint32_t seq, uint32_t ack)
{
	uint8_t ph[12];
	uint16_t c;

	memset(p, 0, 40);
	p[0] = 0x45;
	p[3] = 40;
	p[8] = 64;
	p[9] = 6;
	memcpy(p + 12, (uint8_t[]){ 203, 0, 113, 9 }, 4);
	memcpy(p + 16, (uint8_t[]){ 198, 51, 100, 70 }, 4);
	c = csum(p, 20, 0);
	p[10] = (uint8_t)(c >> 8);
	p[11] = (uint8_t)c;
	p[20] = 40000 >> 8;
	p[21] = 40000 & 0xff;
	p[23] = 80;
	p[24] = (uint8_t)(seq >> 24);
	p[25] = (uint8_t)(seq >> 16);
	p[26] = (uint8_t)(seq >> 8);
	p[27] = (uint8_t)seq;
	p[28] = (uint8_t)(ack >> 24);
	p[29] = (uint8_t)(ack >> 16);
	p[30] = (uint8_t)(ack >> 8);
	p[31] = (uint8_t)ack;
	p[32] = 5 << 4;
	p[33] = flags;
	p[34] = 0xff;
	p[35] = 0xff;
	memcpy(ph, p + 12, 8);
	ph[8] = 0;
	ph[9] = 6;
	ph[10] = 0;
	ph[11] = 20;
	c = csum(p + 20, 20, (uint32_t)(0xffff & ~csum(ph, 12, 0)));
	p[36] = (uint8_t)(c >> 8);
	p[37] = (uint8_t)c;
}

static uint8_t cap_pkt[2048];
static size_t cap_len;
static int cap_n;

static int cap_output(void *ctx, const void *pkt, size_t len)
{
	(void)ctx;
	cap_n++;
	cap_len = len < sizeof(cap_pkt) ? len : sizeof(cap_pkt);
	memcpy(cap_pkt, pkt, cap_len);
	return 0;
}

Test(stack, input_checks_its_arguments_and_counts_what_it_drops)
{
	struct l3x_stack_stats ss;
	uint8_t pkt[40], junk[40] = { 0 };

	l3x_set_print(NULL);
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
			 .output = cap_output);
		F.src = L3X_SOURCE_CALLBACK;
		F.st = l3x_stack__open(&o);
		cr_assert_not_null(F.st, "open: %s", strerror(errno));
		cr_assert_eq(l3x_stack__mem(F.st, &F.mem0), 0);
	}
	make_tcp4(pkt, 0x02, 1000, 0);
	cr_assert_eq(l3x_stack__input(F.st, NULL, 40), -EINVAL);
	cr_assert_eq(l3x_stack__input(F.st, pkt, 0), -EINVAL);
	cr_assert_eq(l3x_stack__input(F.st, pkt, 65536), -EINVAL);
	cr_assert_eq(l3x_stack__input(NULL, pkt, 40), -EINVAL);

	/* Not IP. */
	cr_assert_eq(l3x_stack__input(F.st, junk, sizeof(junk)), 0);
	ss = stats_now();
	cr_assert_eq(ss.rx_not_ip, 1);

	/* No rule yet: dropped and counted, no answer. */
	cr_assert_eq(l3x_stack__input(F.st, pkt, 40), 0);
	l3x_stack__poll(F.st);
	ss = stats_now();
	cr_assert_eq(ss.rx_no_rule, 1);
	cr_assert_eq(cap_n, 0, "answered a packet no rule matched");

	add_rule_text("tcp 198.51.100.0/24 80");

	/* A bad TCP checksum: lwIP drops it; rx_bad counts it. */
	pkt[37] ^= 0x55;
	cr_assert_eq(l3x_stack__input(F.st, pkt, 40), 0);
	l3x_stack__poll(F.st);
	pkt[37] ^= 0x55;
	cr_assert_eq(cap_n, 0, "answered a SYN with a bad checksum");
	ss = stats_now();
	cr_expect_eq(ss.rx_bad, 1, "a SYN with a bad TCP checksum: rx_bad %llu",
		     (unsigned long long)ss.rx_bad);

	/* A good SYN: a SYN-ACK from the original destination. */
	cr_assert_eq(l3x_stack__input(F.st, pkt, 40), 0);
	l3x_stack__poll(F.st);
	cr_assert_eq(cap_n, 1, "no SYN-ACK");
	cr_assert_geq(cap_len, 40);
	cr_assert_eq(memcmp(cap_pkt + 12, pkt + 16, 4), 0, "SYN-ACK not from "
							   "198.51.100.70");
	cr_assert_eq(cap_pkt[33] & 0x12, 0x12, "not a SYN-ACK: flags %#x",
		     cap_pkt[33]);

	/* The client's RST at the exact sequence ends it. */
	make_tcp4(pkt, 0x04, 1001, 0);
	cr_assert_eq(l3x_stack__input(F.st, pkt, 40), 0);
	l3x_stack__poll(F.st);
	ss = stats_now();
	cr_assert_eq(ss.tcp_accepted, 0);
	cr_assert_eq(ss.tx_packets, 1);
	expect_clean(0);
	cr_assert_eq(l3x_stack__close(F.st), 0);
}

/* ------------------------------------------------------------ streams */

Test(stack, stream_options_reject_bad_values_and_read_back, .timeout = 20)
{
	struct sockaddr_storage ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	static struct src x;
	struct sink k;
	int fd, err = 0;
	size_t sent;
	long r;
	char buf[CHUNK];

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = client_connect_ex("198.51.100.80", 6000, 32768, 0, 3000, &err);
	cr_assert_geq(fd, 0, "connect: %s", strerror(err));
	s = accept_wait(w, 2000);
	cr_assert_not_null(s);

	/* Defaults are the stack's. */
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_NODELAY), 0);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_TX_BUF), 256 * 1024);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_RX_BUF), 256 * 1024);

	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_NODELAY, 2), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_NODELAY, -1), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_TX_BUF, 100), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_TX_BUF, 1l << 31), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_RX_BUF, 1000), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_RX_BUF, 2l << 20), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, (enum l3x_stream_opt)99, 1), -EINVAL);
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
	cr_assert_geq(sent, 512 * 1024, "client stalled after %zu bytes with "
					"RX_BUF 512 KiB", sent);
	sink_init(&k, 60);
	while (k.got < sent) {
		r = sread(w, s, buf, sizeof(buf), 2000);
		cr_assert_gt(r, 0, "read after %zu of %zu: %ld", k.got, sent, r);
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
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
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

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	ep = epoll_create1(EPOLL_CLOEXEC);
	cr_assert_geq(ep, 0);
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, l3x_worker__fd(w), &ee), 0);

	/* As the API says: put the fd in epoll, call both after it fires.
	 * Nothing has been called on the worker yet. */
	fd = client_connect("198.51.100.90", 7000);
	n = epoll_wait(ep, got, 4, 2000);
	cr_expect_eq(n, 1, "worker fd did not fire for a new connection on a "
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
			if (ev[i].stream == s && (ev[i].events & L3X_EV_READABLE))
				readable = true;
	cr_assert(readable, "no READABLE event after the wake-up");
	cr_assert_eq(l3x_stream__read(s, buf, sizeof(buf)), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	close(ep);
	close_pair(w, fd, s);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

/* ------------------------------------------------------------ udp */

#define UDP_DESTS	6

static const struct {
	const char *ip;
	uint16_t port;
} udp_dests[UDP_DESTS] = {
	{ "198.51.100.1", 53 },		{ "198.51.100.77", 9000 },
	{ "198.51.100.254", 40000 },	{ "2001:db8:100::1", 53 },
	{ "2001:db8:100::abcd", 5353 },	{ "2001:db8:100::ffff:7", 7 },
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
static int udp_echo_flows(struct l3x_worker *w, struct l3x_udp **flows,
			  int n, int per, int ms)
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
			while ((r = l3x_udp__recv(flows[i], buf, sizeof(buf))) > 0) {
				cr_assert_eq(l3x_udp__send(flows[i], buf,
							   (size_t)r), r);
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
		udp_client_expect(fd[i], &dst[i], msg[i], strlen(msg[i]), 2000);

	/* Each flow names its client and the destination it was sent to. */
	for (i = 0; i < UDP_DESTS; i++) {
		cr_assert_gt(l3x_udp__orig_dst_addr(flows[i],
						    (struct sockaddr *)&got,
						    sizeof(got)), 0);
		for (j = 0; j < UDP_DESTS; j++)
			if (sa_eq(&got, &dst[j]))
				break;
		cr_assert_lt(j, UDP_DESTS, "flow %d: orig_dst %s sent to by "
			     "nobody", i, sa_str(&got, a, sizeof(a)));
		cl = sizeof(cli);
		cr_assert_eq(getsockname(fd[j], (struct sockaddr *)&cli, &cl),
			     0);
		cr_assert_gt(l3x_udp__client_addr(flows[i],
						  (struct sockaddr *)&got,
						  sizeof(got)), 0);
		cr_assert_eq(((struct sockaddr_in *)&got)->sin_port,
			     ((struct sockaddr_in *)&cli)->sin_port,
			     "flow to %s: client %s, socket bound to %s",
			     udp_dests[j].ip, sa_str(&got, a, sizeof(a)),
			     sa_str(&cli, b, sizeof(b)));
	}

	/* A second datagram of each client goes to the same flow. */
	for (i = 0; i < UDP_DESTS; i++)
		cr_assert_eq(sendto(fd[i], msg[i], 5, 0,
				    (struct sockaddr *)&dst[i], dl[i]), 5);
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
		cr_assert_eq(r, -ETIMEDOUT, "expired flow %d: recv %ld, want "
					    "-ETIMEDOUT", i, r);
		cr_assert_eq(l3x_udp__send(flows[i], buf, 1), -EPIPE);
		l3x_udp__close(flows[i]);
		close(fd[i]);
	}
	/* The engine takes the closes on its next turns. */
	for (end = now_ms() + 2000, ss = stats_now();
	     ss.flows && now_ms() < end; ss = stats_now())
		usleep(1000);
	cr_assert_eq(ss.flows, 0);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}

Test(stack, udp_echo_to_many_addresses_then_idle_expiry_tun, .timeout = 30)
{
	udp_echo_test(L3X_SOURCE_TUN);
}

Test(stack, udp_echo_to_many_addresses_then_idle_expiry_callback,
     .timeout = 30)
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
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
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
	cr_assert_eq(ss.udp_rx_dropped, 6, "dropped %llu of 10 with a queue "
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
		cr_assert_eq(memcmp(buf, want, 2), 0, "datagram %d out of "
						      "order", i);
	}
	cr_assert_eq(l3x_udp__recv(u, buf, sizeof(buf)), -EAGAIN);
	l3x_udp__close(u);
	close(fd);
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
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
	expect_clean(0);
	l3x_worker__close(w);
	stack_down();
}
