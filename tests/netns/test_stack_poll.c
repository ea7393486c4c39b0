/*
 * test_stack_poll.c - the engine thread's polling (l3x_stack_opts.poll):
 * adaptive by default, it sleeps when idle (its CPU time over an idle
 * second is a small part of it) and wakes at once for a packet (TUN and
 * AF_XDP), for a worker's request (a write after the idle is sent at
 * once), and for a timer of its own (a UDP flow's idle expiry comes on
 * time although nothing else happens); busy polling still spins; bad
 * values are refused. A worker that spins before it sleeps
 * (l3x_worker__spin) never misses news, on the engine's core too, and
 * the engine's yield on idle turns (idle_yield) leaves it asleep
 * when idle. Over a TUN, or veth (helpers.h), in a namespace of the
 * test's own.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "l3x/l3x.h"
#include "helpers.h"

/* ------------------------------------------------------------ helpers */

/* The thread id of this process's thread named "l3x-engine", or 0. */
static int engine_tid(void)
{
	char path[300], comm[32];
	struct dirent *d;
	int tid = 0;
	DIR *dir = opendir("/proc/self/task");
	FILE *f;

	cr_assert_not_null(dir);
	while (!tid && (d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) &&
		    !strncmp(comm, "l3x-engine", 10))
			tid = atoi(d->d_name);
		fclose(f);
	}
	closedir(dir);
	return tid;
}

/* CPU time of thread @tid so far, in ms (utime + stime of its stat). */
static uint64_t thread_cpu_ms(int tid)
{
	unsigned long long ut = 0, stt = 0;
	char path[64], buf[1024], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	/* After the command (in parentheses, may hold spaces): state is
	 * field 3, utime 14, stime 15. */
	p = strrchr(buf, ')');
	cr_assert_not_null(p);
	cr_assert_eq(sscanf(p + 2,
			    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			    "%llu %llu",
			    &ut, &stt),
		     2);
	return (ut + stt) * 1000 / (uint64_t)sysconf(_SC_CLK_TCK);
}

/* The engine thread's CPU time over @ms of wall time, in % of it. */
static unsigned engine_cpu_pct(int ms)
{
	int tid = engine_tid();
	uint64_t c0, t0, c1, t1;

	cr_assert_gt(tid, 0, "no thread named l3x-engine");
	c0 = thread_cpu_ms(tid);
	t0 = now_ms();
	poll(NULL, 0, ms);
	c1 = thread_cpu_ms(tid);
	t1 = now_ms();
	return (unsigned)((c1 - c0) * 100 / (t1 - t0 ? t1 - t0 : 1));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ options */

static void expect_open_fails(struct l3x_stack_opts *o, const char *what)
{
	struct l3x_stack *st = l3x_stack__open(o);

	if (st)
		l3x_stack__close(st);
	cr_assert_null(st, "%s: opened", what);
	cr_assert_eq(errno, EINVAL, "%s: errno %d", what, errno);
}

Test(stack, poll_options_are_checked)
{
	struct l3x_stack *st;

	l3x_set_print(NULL);
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
			 .output = null_output, .poll = 2);
		expect_open_fails(&o, "poll = 2");
	}
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
			 .output = null_output, .idle_spins = 1000001);
		expect_open_fails(&o, "idle_spins = 1000001");
	}
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
			 .output = null_output, .poll = L3X_POLL_BUSY,
			 .idle_spins = 1000000);
		st = l3x_stack__open(&o);
		cr_assert_not_null(st, "busy, 1000000 spins: %s",
				   strerror(errno));
		cr_assert_eq(l3x_stack__close(st), 0);
	}
}

/* ------------------------------------------------------------ TUN */

/* Idle, adaptive: the engine sleeps, with a connection open (so lwIP's
 * TCP timer runs) as without. */
Test(stack, adaptive_engine_sleeps_when_idle, .timeout = 30)
{
	struct l3x_stream *s;
	struct l3x_worker *w;
	unsigned pct;
	int fd;

	w = stack_worker_up(L3X_SOURCE_TUN);
	poll(NULL, 0, 100); /* the routes' own chatter (ND) passes */
	pct = engine_cpu_pct(1000);
	cr_log_info("idle engine, no flow: %u%% of a core", pct);
	cr_assert_lt(pct, 20, "idle engine, no flow: %u%% of a core", pct);

	fd = connect_accept(w, "198.51.100.60", 5000, &s);
	cli_to_srv(w, s, fd, 60, 1000);
	pct = engine_cpu_pct(1000);
	cr_assert_lt(pct, 20, "idle engine, a connection: %u%% of a core", pct);
	/* ... and wakes for the client's data after it. */
	cli_to_srv(w, s, fd, 61, 1000);
	close_pair(w, fd, s);
	stack_worker_down(w, 0);
}

/* A thread that spins until told to stop: how much of a core a busy
 * thread gets on this machine now, which other processes share. */
static atomic_bool spin_run;

static void *spin_main(void *arg)
{
	(void)arg;
	while (atomic_load_explicit(&spin_run, memory_order_relaxed))
		;
	return NULL;
}

Test(stack, busy_engine_spins_when_idle, .timeout = 30)
{
	struct timespec a, b;
	struct l3x_worker *w;
	clockid_t clk;
	pthread_t t;
	unsigned pct, ref;

	L3X_OPTS(l3x_stack_opts, o, .poll = L3X_POLL_BUSY);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	atomic_store(&spin_run, true);
	cr_assert_eq(pthread_create(&t, NULL, spin_main, NULL), 0);
	cr_assert_eq(pthread_getcpuclockid(t, &clk), 0);
	clock_gettime(clk, &a);
	pct = engine_cpu_pct(1000);
	clock_gettime(clk, &b);
	atomic_store(&spin_run, false);
	pthread_join(t, NULL);
	ref = (unsigned)(((b.tv_sec - a.tv_sec) * 1000 +
			  (b.tv_nsec - a.tv_nsec) / 1000000) /
			 10);
	/* As much of a core as a thread that spins, give or take what the
	 * scheduler does: the machine may be shared. */
	cr_assert_gt(pct, ref / 2,
		     "busy engine: %u%% of a core, a spinner %u%%", pct, ref);
	stack_worker_down(w, 0);
}

/* A SYN after an idle spell is answered at once: with no flow, nothing
 * but lwIP's 1 s timers (reassembly, ND) would wake the engine. */
Test(stack, adaptive_engine_wakes_for_a_packet, .timeout = 30)
{
	uint64_t t[5], t0;
	struct l3x_stream *s;
	struct l3x_worker *w;
	int fd, i;

	w = stack_worker_up(L3X_SOURCE_TUN);
	for (i = 0; i < 5; i++) {
		poll(NULL, 0, 300 + 70 * i);
		t0 = now_ms();
		fd = client_connect("198.51.100.61", (uint16_t)(5001 + i));
		t[i] = now_ms() - t0;
		s = accept_wait(w, 2000);
		cr_assert_not_null(s);
		stream_abort(s);
		close(fd);
		STATS_WAIT(flows, 0, 2000);
	}
	qsort(t, 5, sizeof(t[0]), cmp_u64);
	cr_assert_lt(t[2], 50, "connect after idle: median %llu ms",
		     (unsigned long long)t[2]);
	stack_worker_down(w, 0);
}

/* A worker's write after an idle spell goes out at once: the request
 * wakes the engine, which otherwise would sleep until lwIP's next TCP
 * timer tick (250 ms). */
Test(stack, adaptive_engine_wakes_for_a_request, .timeout = 30)
{
	struct pollfd pf;
	struct l3x_stream *s;
	struct l3x_worker *w;
	uint64_t t[5], t0;
	char c;
	int fd, i;

	w = stack_worker_up(L3X_SOURCE_TUN);
	fd = connect_accept(w, "198.51.100.62", 5010, &s);
	for (i = 0; i < 5; i++) {
		poll(NULL, 0, 300 + 70 * i);
		t0 = now_ms();
		cr_assert_eq(l3x_stream__write(s, "x", 1), 1);
		pf = (struct pollfd){ .fd = fd, .events = POLLIN };
		cr_assert_eq(poll(&pf, 1, 2000), 1, "the byte never came");
		t[i] = now_ms() - t0;
		cr_assert_eq(recv(fd, &c, 1, 0), 1);
		cr_assert_eq(c, 'x');
	}
	qsort(t, 5, sizeof(t[0]), cmp_u64);
	cr_assert_lt(t[2], 50, "write after idle: median %llu ms",
		     (unsigned long long)t[2]);
	close_pair(w, fd, s);
	stack_worker_down(w, 0);
}

/* A timer of the engine's own fires on time while it sleeps: a UDP flow
 * expires udp_idle_ms after its datagram, with nothing else to wake the
 * engine (no TCP, lwIP's next timer up to 1 s away). */
Test(stack, adaptive_engine_wakes_for_a_timer, .timeout = 30)
{
	struct sockaddr_storage dst;
	struct l3x_stack_stats ss;
	struct l3x_udp *u = NULL;
	struct l3x_worker *w;
	uint64_t t0, t = 0, end;
	socklen_t dl;
	char buf[64];
	int fd, i;

	L3X_OPTS(l3x_stack_opts, o, .udp_idle_ms = 300);
	stack_up(L3X_SOURCE_TUN, &o, false);
	add_rule_text("udp " NET4);
	w = worker_open();
	for (i = 0; i < 2; i++) {
		dl = sa_make("198.51.100.63", (uint16_t)(5020 + i), &dst);
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		cr_assert_geq(fd, 0);
		cr_assert_eq(
			sendto(fd, "ping", 4, 0, (struct sockaddr *)&dst, dl),
			4);
		t0 = now_ms();
		end = t0 + 2000;
		while (!(u = l3x_worker__accept_udp(w)) && now_ms() < end)
			worker_step(w, 5);
		cr_assert_not_null(u, "no flow for the datagram");
		cr_assert_eq(l3x_udp__recv(u, buf, sizeof(buf)), 4);
		/* The engine falls asleep; the expiry must wake it. */
		end = t0 + 3000;
		do {
			ss = stats_now();
			if (ss.udp_expired == (uint64_t)i + 1) {
				t = now_ms() - t0;
				break;
			}
			poll(NULL, 0, 5);
		} while (now_ms() < end);
		cr_assert_eq(ss.udp_expired, (uint64_t)i + 1,
			     "the flow never expired");
		cr_assert_geq(t, 290, "expired after %llu ms, before 300",
			      (unsigned long long)t);
		cr_assert_lt(t, 450, "expired after %llu ms, want 300",
			     (unsigned long long)t);
		l3x_udp__close(u);
		close(fd);
	}
	stack_worker_down(w, 0);
}

/* ------------------------------------------------------------ AF_XDP */

/* The same sleep on the AF_XDP sockets (veth, copy mode): idle, the
 * engine takes little; a datagram injected after the idle spell becomes
 * a flow at once. */
Test(stack, adaptive_engine_sleeps_and_wakes_on_xdp, .timeout = 30)
{
	struct l3x_udp *u = NULL;
	struct l3x_worker *w;
	struct l3x_stack *st;
	struct l3x_rule r;
	uint64_t t0, end;
	unsigned pct;

	veth_up(1);
	l3x_set_print(NULL);
	{
		L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_XDP,
			 .ifname = "t1", .xdp_mode = L3X_XDP_SKB,
			 .cpu = L3X_CPU_NONE);
		st = l3x_stack__open(&o);
	}
	if (!st)
		cr_skip_test("no AF_XDP stack on veth here: %s",
			     strerror(errno));
	cr_assert_eq(l3x_rule__parse(&r, "udp 192.0.2.2 9000", NULL, 0), 0);
	cr_assert_eq(l3x_stack__add_rule(st, &r), 0);
	w = l3x_worker__open(st);
	cr_assert_not_null(w);
	cr_assert_eq(l3x_stack__start(st), 0);
	pct = engine_cpu_pct(1000);
	cr_assert_lt(pct, 20, "idle engine on AF_XDP: %u%% of a core", pct);

	t0 = now_ms();
	veth_inject_udp(9000, 1);
	end = t0 + 2000;
	while (!(u = l3x_worker__accept_udp(w)) && now_ms() < end)
		poll(NULL, 0, 1);
	cr_assert_not_null(u, "the datagram made no flow");
	cr_assert_lt(now_ms() - t0, 100, "a flow after %llu ms",
		     (unsigned long long)(now_ms() - t0));
	l3x_udp__close(u);
	cr_assert_eq(l3x_worker__close(w), 0);
	cr_assert_eq(l3x_stack__stop(st), 0);
	cr_assert_eq(l3x_stack__close(st), 0);
}

/* ------------------------------------------------------------ spinning */

/* An echo worker on its own thread that sleeps as l3x-serve does:
 * l3x_worker__spin() first, then poll(2) on the worker's fd with no
 * timeout, so that a lost wake-up leaves a datagram unanswered. */
struct spin_echo {
	struct l3x_worker *w;
	uint32_t spins;
	int stop_fd;	    /* eventfd: leave */
	atomic_uint found;  /* spins that saw news */
	atomic_uint slept;  /* spins that saw none: slept on the fd */
	atomic_uint echoed; /* datagrams sent back */
	atomic_uint errors; /* calls that failed */
};

static void *spin_echo_main(void *arg)
{
	struct spin_echo *e = arg;
	struct pollfd pf[2] = {
		{ .fd = l3x_worker__fd(e->w), .events = POLLIN },
		{ .fd = e->stop_fd, .events = POLLIN },
	};
	struct l3x_udp *u = NULL, *nu;
	struct l3x_event ev[8];
	char buf[64];
	long n;
	int r;

	for (;;) {
		while ((nu = l3x_worker__accept_udp(e->w))) {
			if (!u)
				u = nu;
			else
				l3x_udp__close(nu);
		}
		if (l3x_worker__poll(e->w, ev, 8) < 0)
			atomic_fetch_add(&e->errors, 1);
		while (u && (n = l3x_udp__recv(u, buf, sizeof(buf))) >= 0) {
			if (l3x_udp__send(u, buf, (size_t)n) != n)
				atomic_fetch_add(&e->errors, 1);
			else
				atomic_fetch_add(&e->echoed, 1);
		}
		r = l3x_worker__spin(e->w, e->spins);
		if (r < 0)
			atomic_fetch_add(&e->errors, 1);
		if (r > 0) {
			atomic_fetch_add(&e->found, 1);
			continue;
		}
		atomic_fetch_add(&e->slept, 1);
		if (poll(pf, 2, -1) < 0 || (pf[1].revents & POLLIN))
			break;
	}
	if (u)
		l3x_udp__close(u);
	return NULL;
}

/*
 * A ping-pong of datagrams through the echo worker above, each sent after
 * a pause that lands it while the worker spins, as it arms, or once it
 * sleeps: every one is answered (a lost wake-up would leave the worker
 * asleep with the datagram unread), and both ways out of a spin are
 * taken. @same_core: the engine, the worker and the client share one
 * core, as l3x-serve's engine and worker do under l3x-bench.
 */
static void spin_ping_pong(struct l3x_stack_opts *o, uint32_t spins,
			   bool same_core)
{
	static const long pause_us[] = { 0, 20, 300, 3000 };
	struct sockaddr_storage dst;
	struct spin_echo e = { .spins = spins };
	struct pollfd pf;
	uint32_t i, got;
	pthread_t t;
	socklen_t dl;
	uint64_t one = 1;
	int fd;

	if (same_core) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(sched_getcpu(), &set);
		/* Threads made after inherit it: the engine, the worker. */
		cr_assert_eq(sched_setaffinity(0, sizeof(set), &set), 0);
	}
	stack_up(L3X_SOURCE_TUN, o, false);
	add_rule_text("udp " NET4);
	e.w = worker_open();
	e.stop_fd = eventfd(0, EFD_CLOEXEC);
	cr_assert_geq(e.stop_fd, 0);
	cr_assert_eq(pthread_create(&t, NULL, spin_echo_main, &e), 0);

	dl = sa_make("198.51.100.64", 5030, &dst);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&dst, dl), 0);
	for (i = 0; i < 400; i++) {
		struct timespec ts = { 0, pause_us[i % 4] * 1000 };

		if (ts.tv_nsec)
			nanosleep(&ts, NULL);
		cr_assert_eq(send(fd, &i, sizeof(i), 0), (ssize_t)sizeof(i));
		pf = (struct pollfd){ .fd = fd, .events = POLLIN };
		cr_assert_eq(poll(&pf, 1, 3000), 1,
			     "datagram %u unanswered (spins %u): a lost "
			     "wake-up? echoed %u, found %u, slept %u",
			     i, spins, atomic_load(&e.echoed),
			     atomic_load(&e.found), atomic_load(&e.slept));
		cr_assert_eq(recv(fd, &got, sizeof(got), 0),
			     (ssize_t)sizeof(got));
		cr_assert_eq(got, i, "echo of %u, want %u", got, i);
	}
	cr_assert_eq(write(e.stop_fd, &one, sizeof(one)), sizeof(one));
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_log_info("spins %u%s: found %u, slept %u", spins,
		    same_core ? ", one core" : "", atomic_load(&e.found),
		    atomic_load(&e.slept));
	cr_assert_eq(atomic_load(&e.errors), 0);
	cr_assert_eq(atomic_load(&e.echoed), 400);
	/* 3 ms pauses outlast any spin: the worker slept for them. */
	cr_assert_gt(atomic_load(&e.slept), 0);
	if (spins >= 1000)
		/* Back-to-back datagrams come while it spins. */
		cr_assert_gt(atomic_load(&e.found), 0,
			     "%u spins never saw the next datagram", spins);
	close(fd);
	close(e.stop_fd);
	stack_worker_down(e.w, 0);
}

Test(stack, worker_spin_never_loses_a_wakeup, .timeout = 60)
{
	L3X_OPTS(l3x_stack_opts, o);
	spin_ping_pong(&o, 1000, false);
}

Test(stack, worker_spin_on_the_engines_core, .timeout = 60)
{
	L3X_OPTS(l3x_stack_opts, o);
	spin_ping_pong(&o, 200, true);
}

/* The engine's yield on (idle_yield): the same, and without worker
 * spins (the fd alone). */
Test(stack, idle_yield_on_the_engines_core, .timeout = 60)
{
	L3X_OPTS(l3x_stack_opts, o, .idle_yield = true);
	spin_ping_pong(&o, 0, true);
}

/* The yield leaves the idle engine asleep: as adaptive_engine_sleeps_
 * when_idle, with a worker that spun and slept sharing its core. */
Test(stack, idle_yield_engine_sleeps_when_idle, .timeout = 30)
{
	cpu_set_t set;
	struct l3x_worker *w;
	unsigned pct;

	CPU_ZERO(&set);
	CPU_SET(sched_getcpu(), &set);
	cr_assert_eq(sched_setaffinity(0, sizeof(set), &set), 0);
	L3X_OPTS(l3x_stack_opts, o, .idle_yield = true);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	cr_assert_eq(l3x_worker__spin(w, 1000), 0, "news on an idle stack");
	poll(NULL, 0, 100);
	pct = engine_cpu_pct(1000);
	cr_log_info("idle engine, yielding: %u%% of a core", pct);
	cr_assert_lt(pct, 20, "idle engine, yielding: %u%% of a core", pct);
	stack_worker_down(w, 0);
}

/* l3x_worker__spin(): bad arguments, and nothing to report on a fresh
 * worker whatever the spins. */
Test(stack, worker_spin_arguments)
{
	struct l3x_worker *w;

	cr_assert_eq(l3x_worker__spin(NULL, 1), -EINVAL);
	w = stack_worker_up(L3X_SOURCE_TUN);
	cr_assert_eq(l3x_worker__spin(w, L3X_WORKER_SPINS_MAX + 1), -EINVAL);
	cr_assert_eq(l3x_worker__spin(w, 0), 0);
	cr_assert_eq(l3x_worker__spin(w, 10), 0);
	stack_worker_down(w, 0);
}
