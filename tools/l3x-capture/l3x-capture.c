/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x-capture - write the frames that match steering rules as pcap.
 *
 * One thread reads every queue's handle in turn and hands the frames to a
 * writer thread, which writes them as nanosecond pcap (tcpdump and tshark
 * read it; "-" pipes it) straight from the UMEM, and the frames go back
 * once written. The reader spins a little when idle before sleeping in
 * poll(), so a flood is read at full rate and an idle capture costs no CPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "l3x/l3x.h"
#include "link.h"
#include "parse.h"
#include "tool.h"

#define PROG	    "l3x-capture"
#define BURST	    64
#define SPIN_ROUNDS 2000
/* The library's default UMEM frames per queue. The RX ring is as large:
 * while the receiver is off the CPU (the writer's turn, or anyone's), the
 * kernel can queue every frame that is not held for writing. */
#define DEFAULT_FRAMES 4096

/* clang-format off */
TOOL_DEFINE(PROG,
	    "usage: " PROG " --iface IF --rule RULE [--rule RULE]... --write FILE|-\n"
	    "       [--queue Q]... [--count N] [--seconds S] [--pin-dir DIR]\n"
	    "       [--xdp-mode auto|native|skb] [--bind auto|copy|zerocopy] [--frames N]\n"
	    "       [--write-batch N] [--writer-turn US] [--no-busy-poll] [--quiet]\n"
	    "       [--verbose]\n"
	    "RULE is 'PROTO DST [PORT[-PORT]] [vlan ID]', e.g. 'udp 192.0.2.0/24 9000'.\n",
	    1);
/* clang-format on */

struct args {
	struct link_args link;
	const char *write;
	uint64_t count;	  /* 0: no limit */
	double seconds;	  /* 0: no limit */
	uint32_t batch;	  /* --write-batch */
	uint32_t turn_us; /* --writer-turn */
};

/*
 * The hand-off between the receiving thread (main) and the writer thread:
 * one ring of frame references, three counters. The receiver puts frames at
 * @head; the writer writes them, straight from their UMEM frames with
 * writev() (a pcap record header each, no copy of the frame), and moves
 * @written; the receiver gives back to their handle what is written, up to
 * @written, moving @released. So a slow or blocked write never stops
 * receiving: it only holds frames, and those are bounded (3/4 of each
 * handle's UMEM, the rest stays with the fill and RX rings). A frame that
 * finds the ring or its handle's share full is given back unwritten and
 * counted (writer_dropped in the end line).
 */
#define RING	  8192 /* slots, a power of two */
#define WBATCH	  512  /* most frames per writev(): 2 iovecs each (IOV_MAX) */
#define HOLD_KEEP 4    /* 1/4 of a handle's frames never held for writing */
/*
 * The writer waits until --write-batch frames (default DEF_BATCH) are
 * there, or the oldest has waited MAX_AGE_MS, before it writes. On the
 * core it shares with the receiver, a write per handful of frames cost two
 * context switches, a futex wake and a writev() each; a frame waits at
 * most MAX_AGE_MS (a live "| tshark -r -" still sees it at once to the eye).
 */
#define DEF_BATCH 256
/* What the receiver sleeps, in us, while the writer writes (--writer-turn;
 * 0: sched_yield()). */
#define DEF_TURN_US 100
#define MAX_AGE_MS  20

struct pcap_rec {
	uint32_t ts_sec, ts_nsec, caplen, len;
};

struct writer {
	/* receiver */
	struct l3x_frame fr[RING];
	uint8_t hi[RING];      /* handle index of each slot */
	_Atomic uint32_t head; /* next slot to fill */
	uint32_t released;     /* slots given back, up to written */
	/* writer thread */
	_Atomic uint32_t written;	  /* slots written (or discarded) */
	_Atomic uint64_t wframes, wbytes; /* what reached the file */
	_Atomic int err;		  /* a write's errno: stop */
	int fd;
	uint32_t batch; /* frames a write waits for (MAX_AGE_MS at most) */
	bool failed;	/* a write failed: discard the rest */
	pthread_t tid;
	bool started;
	/* waking the writer */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	_Atomic bool sleeping, finish;
};

struct run {
	struct l3x_capture *cap;
	struct l3x_capture_handle *h[256];
	uint32_t held[256]; /* per handle: in the ring, not yet released */
	uint32_t hold_max[256];
	unsigned nh;
	uint64_t frames, bytes; /* taken for writing */
	uint64_t writer_dropped;
	struct writer *w;
};

static void parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		LINK_OPTIONS,
		{ "write", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ "write-batch", required_argument, NULL, 'W' },
		{ "writer-turn", required_argument, NULL, 'T' },
		TOOL_OPTIONS_END,
	};
	int c;

	a->batch = DEF_BATCH;
	a->turn_us = DEF_TURN_US;
	while ((c = tool_getopt(argc, argv, "i:q:r:w:c:s:p:h", opts)) != -1) {
		if (link_opt(&a->link, c, optarg))
			continue;
		/* One line an option, as in the tools. */
		/* clang-format off */
		switch (c) {
		case 'w': a->write = optarg; break;
		case 'c': a->count = parse_uint("--count", optarg, 0, UINT64_MAX); break;
		case 's': a->seconds = parse_uint("--seconds", optarg, 0, UINT64_MAX); break;
		case 'W': a->batch = parse_uint("--write-batch", optarg, 1, WBATCH); break;
		case 'T': a->turn_us = parse_uint("--writer-turn", optarg, 0, 10000); break;
		}
		/* clang-format on */
	}
	if (optind < argc)
		die("'%s': unexpected argument (rules go after --rule)",
		    argv[optind]);
	if (!a->link.iface)
		die("--iface: missing (the interface to capture on)");
	if (!a->link.rules.n)
		die("--rule: missing (at least one, e.g. --rule 'udp 192.0.2.1 9000')");
	if (!a->write)
		die("--write: missing (a file, or - for standard output)");
}

/* All of @iov (@n entries, changed on a short write): 0 or an errno. */
static int writev_all(int fd, struct iovec *iov, int n)
{
	ssize_t k;

	while (n) {
		k = writev(fd, iov, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		while (n && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

static int open_pcap(const char *path)
{
	/* Nanosecond pcap, Ethernet link type. */
	uint32_t hdr[6] = { 0xa1b23c4d, 0x00040002, 0, 0, 262144, 1 };
	struct iovec iov = { hdr, sizeof(hdr) };
	int fd = STDOUT_FILENO, err;

	if (strcmp(path, "-"))
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		die("--write '%s': %s", path, strerror(errno));
	err = writev_all(fd, &iov, 1);
	if (err)
		die("--write '%s': %s", path, strerror(err));
	return fd;
}

/* Writer thread: the ring's @n frames from @from (at most WBATCH), one
 * writev(). */
static void write_batch(struct writer *w, uint32_t from, uint32_t n)
{
	struct pcap_rec rec[WBATCH];
	struct iovec iov[2 * WBATCH];
	uint64_t bytes = 0;
	uint32_t i;
	int err;

	for (i = 0; i < n; i++) {
		const struct l3x_frame *f = &w->fr[(from + i) & (RING - 1)];

		rec[i].ts_sec = (uint32_t)(f->ts_ns / 1000000000u);
		rec[i].ts_nsec = (uint32_t)(f->ts_ns % 1000000000u);
		rec[i].caplen = rec[i].len = f->len;
		iov[2 * i].iov_base = &rec[i];
		iov[2 * i].iov_len = sizeof(rec[i]);
		iov[2 * i + 1].iov_base = (void *)f->data;
		iov[2 * i + 1].iov_len = f->len;
		bytes += f->len;
	}
	err = writev_all(w->fd, iov, (int)(2 * n));
	if (err) {
		/* EPIPE: the reader went away, a normal end. Either way
		 * stop; what is left is discarded (still given back). */
		if (err != EPIPE)
			atomic_store(&w->err, err);
		w->failed = true;
		request_stop();
		return;
	}
	atomic_fetch_add_explicit(&w->wframes, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->wbytes, bytes, memory_order_relaxed);
}

/* Whether the writer writes the frames from @done to @head now: a batch
 * is there, the oldest has waited long enough, or the capture ends. */
static bool write_due(struct writer *w, uint32_t done, uint32_t head,
		      uint64_t now_ns)
{
	uint32_t n = head - done;

	if (!n)
		return false;
	return n >= w->batch || atomic_load(&w->finish) ||
	       now_ns - w->fr[done & (RING - 1)].ts_ns >=
		       MAX_AGE_MS * 1000000ull;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleep until the receiver signals (a batch, the end) or @wait_ns pass. */
static void writer_sleep(struct writer *w, uint32_t done, uint64_t wait_ns)
{
	struct timespec ts;
	uint64_t until = realtime_ns() + wait_ns;

	pthread_mutex_lock(&w->lock);
	atomic_store(&w->sleeping, true);
	/* seq_cst: pairs with the receiver's store of @head before it reads
	 * @sleeping (wake_writer). */
	if (atomic_load(&w->head) - done < w->batch &&
	    !atomic_load(&w->finish)) {
		ts.tv_sec = (time_t)(until / 1000000000u);
		ts.tv_nsec = (long)(until % 1000000000u);
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	}
	atomic_store(&w->sleeping, false);
	pthread_mutex_unlock(&w->lock);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint32_t done = atomic_load(&w->written), head, n;
	uint64_t now, age, wait;

	for (;;) {
		head = atomic_load_explicit(&w->head, memory_order_acquire);
		now = realtime_ns();
		if (!write_due(w, done, head, now)) {
			if (head == done && atomic_load(&w->finish))
				break;
			/* Until the oldest frame is MAX_AGE_MS old, and
			 * 50 ms at most (the clock may step). */
			wait = 50000000;
			if (head != done) {
				age = now - w->fr[done & (RING - 1)].ts_ns;
				if (age < MAX_AGE_MS * 1000000ull &&
				    MAX_AGE_MS * 1000000ull - age < wait)
					wait = MAX_AGE_MS * 1000000ull - age;
			}
			writer_sleep(w, done, wait);
			continue;
		}
		n = head - done;
		if (n > WBATCH)
			n = WBATCH;
		if (!w->failed)
			write_batch(w, done, n);
		done += n;
		atomic_store_explicit(&w->written, done, memory_order_release);
	}
	return NULL;
}

/* Give back to their handles the frames the writer is done with. */
static void reap(struct run *r)
{
	struct writer *w = r->w;
	uint32_t upto = atomic_load_explicit(&w->written, memory_order_acquire);
	uint32_t i, n, k;
	uint8_t hi;

	while (w->released != upto) {
		i = w->released & (RING - 1);
		hi = w->hi[i];
		/* A run of one handle's frames, not across the ring's end. */
		n = upto - w->released;
		if (n > RING - i)
			n = RING - i;
		for (k = 1; k < n && w->hi[i + k] == hi; k++)
			;
		l3x_capture_handle__release(r->h[hi], &w->fr[i], k);
		r->held[hi] -= k;
		w->released += k;
	}
}

/* The writer has frames to write and is not asleep: it wants the CPU. */
static bool writer_busy(struct writer *w)
{
	return !atomic_load_explicit(&w->sleeping, memory_order_relaxed) &&
	       atomic_load_explicit(&w->written, memory_order_relaxed) !=
		       atomic_load_explicit(&w->head, memory_order_relaxed);
}

/* Wake the writer when a batch is there for it (it wakes by itself for
 * older frames): a wake-up per handful of frames was most of the cost. */
static void wake_writer(struct writer *w, uint32_t head)
{
	if (head - atomic_load_explicit(&w->written, memory_order_relaxed) <
	    w->batch)
		return;
	if (atomic_load(&w->sleeping)) {
		pthread_mutex_lock(&w->lock);
		pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&w->lock);
	}
}

/* One pass over every handle: frames into the ring, or given back at once
 * (over --count, or the ring or the handle's share full). Returns frames
 * received. */
static unsigned pass(struct run *r, const struct args *a)
{
	struct writer *w = r->w;
	struct l3x_frame fr[BURST], back[BURST];
	uint32_t head = atomic_load_explicit(&w->head, memory_order_relaxed);
	unsigned i, j, n, nb, total = 0;

	reap(r);
	for (i = 0; i < r->nh && !stop_requested(); i++) {
		n = l3x_capture_handle__recv_burst(r->h[i], fr, BURST);
		nb = 0;
		for (j = 0; j < n; j++) {
			if (a->count && r->frames >= a->count) {
				back[nb++] = fr[j];
				continue;
			}
			if (head - w->released == RING ||
			    r->held[i] >= r->hold_max[i]) {
				back[nb++] = fr[j];
				r->writer_dropped++;
				continue;
			}
			w->fr[head & (RING - 1)] = fr[j];
			w->hi[head & (RING - 1)] = (uint8_t)i;
			head++;
			r->held[i]++;
			r->frames++;
			r->bytes += fr[j].len;
		}
		if (nb)
			l3x_capture_handle__release(r->h[i], back, nb);
		total += n;
		if (a->count && r->frames >= a->count)
			request_stop();
	}
	if (head != atomic_load_explicit(&w->head, memory_order_relaxed)) {
		/* seq_cst: pairs with the writer's store of @sleeping
		 * before it reads @head. */
		atomic_store(&w->head, head);
		wake_writer(w, head);
	}
	return total;
}

static void start_writer(struct run *r, int fd, uint32_t batch)
{
	struct writer *w = calloc(1, sizeof(*w));
	sigset_t old;
	unsigned i;
	int err;

	if (!w)
		die("writer: %s", strerror(ENOMEM));
	w->fd = fd;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	r->w = w;
	for (i = 0; i < r->nh; i++) {
		struct l3x_frame_stats fs;

		l3x_capture_handle__frames(r->h[i], &fs);
		r->hold_max[i] = fs.total - fs.total / HOLD_KEEP;
		/* A batch never waits for more than half a handle's
		 * share: the rest would find no room meanwhile. */
		if (batch > r->hold_max[i] / 2)
			batch = r->hold_max[i] / 2 ? r->hold_max[i] / 2 : 1;
	}
	w->batch = batch;
	/* SIGINT and SIGTERM go to the receiver, which stops the writer. */
	stop_signals_block(&old);
	err = pthread_create(&w->tid, NULL, writer_main, w);
	stop_signals_restore(&old);
	if (err)
		die("writer thread: %s", strerror(err));
	w->started = true;
}

/* Let the writer write what it has, wait for it, give every frame back. */
static void stop_writer(struct run *r)
{
	struct writer *w = r->w;

	if (!w || !w->started)
		return;
	atomic_store(&w->finish, true);
	pthread_mutex_lock(&w->lock);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->tid, NULL);
	w->started = false;
	reap(r);
}

static void sleep_on_handles(struct run *r, int timeout_ms)
{
	struct pollfd p[256];
	unsigned i;

	for (i = 0; i < r->nh; i++) {
		p[i].fd = l3x_capture_handle__fd(r->h[i]);
		p[i].events = POLLIN;
	}
	poll(p, r->nh, timeout_ms);
}

static void progress(const struct run *r, uint64_t *last, double dt)
{
	fprintf(stderr, "\r" PROG ": %llu frames, %llu bytes, %.0f frames/s   ",
		(unsigned long long)r->frames, (unsigned long long)r->bytes,
		(r->frames - *last) / dt);
	*last = r->frames;
}

static void writer_turn(uint32_t usec)
{
	struct timespec ts = { 0, (long)usec * 1000 };

	if (!usec)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

static void loop(struct run *r, const struct args *a)
{
	struct run_clock rc;
	uint64_t last = 0;
	unsigned idle = 0, n;
	double dt;

	run_clock_start(&rc, a->seconds, a->link.quiet);
	while (!stop_requested()) {
		n = pass(r, a);
		if (n)
			idle = 0;
		/* Frames wait to be written, and the queues are not full: the
		 * writer's turn. It shares the CPU with us (a pinned capture)
		 * or not; either way a spin here takes from its CPU time. A
		 * yield does not give it: the scheduler keeps its fair share,
		 * half the core, and at 1500 bytes the writer needs more. A
		 * sleep does; the RX rings hold what comes meanwhile. */
		if (n < BURST && writer_busy(r->w))
			writer_turn(a->turn_us);
		else if (!n && ++idle > SPIN_ROUNDS)
			sleep_on_handles(r, 50);
		dt = run_clock_turn(&rc);
		if (dt < 0)
			break;
		if (dt > 0)
			progress(r, &last, dt);
	}
	run_clock_end(&rc);
}

static void open_handles(struct run *r, const struct args *a)
{
	const struct link_args *l = &a->link;
	unsigned i, nq = l->nqueues;
	uint32_t q;

	if (!nq)
		nq = l3x_capture__queue_count(r->cap);
	for (i = 0; i < nq; i++) {
		q = l->nqueues ? l->queues[i] : i;
		r->h[r->nh] = l3x_capture_handle__open(r->cap, q);
		if (!r->h[r->nh] && errno == EOPNOTSUPP &&
		    l->bind_mode == L3X_BIND_ZEROCOPY)
			die("--bind zerocopy: %s queue %u: %s (zero-copy AF_XDP needs a driver that offers it, in native XDP mode; veth has none: use --bind auto or copy)",
			    l->iface, q, strerror(errno));
		if (!r->h[r->nh])
			die("--queue %u on %s: %s", q, l->iface,
			    link_strerror(errno));
		r->nh++;
	}
}

static void report(struct run *r)
{
	struct l3x_capture_handle_stats hs, sum = {};
	struct l3x_frame_stats fs, fsum = {};
	struct l3x_steer_stats ss = {};
	unsigned i;

	for (i = 0; i < r->nh; i++) {
		l3x_capture_handle__stats(r->h[i], &hs);
		l3x_capture_handle__frames(r->h[i], &fs);
		sum.frames += hs.frames;
		sum.rx_dropped += hs.rx_dropped;
		sum.rx_ring_full += hs.rx_ring_full;
		sum.rx_fill_ring_empty += hs.rx_fill_ring_empty;
		sum.rx_invalid_descs += hs.rx_invalid_descs;
		fsum.total += fs.total;
		fsum.free += fs.free;
		fsum.fill += fs.fill;
		fsum.kernel += fs.kernel;
		fsum.app += fs.app;
	}
	l3x_capture__steer_stats(r->cap, &ss);
	fprintf(stderr,
		PROG
		": written %llu frames %llu bytes; writer_dropped %llu; received %llu; "
		"xdp passed %llu redirected %llu redirect_failed %llu malformed %llu; "
		"xsk rx_dropped %llu rx_ring_full %llu fill_ring_empty %llu invalid %llu; "
		"umem total %u free %u fill %u kernel %u app %u\n",
		(unsigned long long)atomic_load(&r->w->wframes),
		(unsigned long long)atomic_load(&r->w->wbytes),
		(unsigned long long)r->writer_dropped,
		(unsigned long long)sum.frames, (unsigned long long)ss.passed,
		(unsigned long long)ss.redirected,
		(unsigned long long)ss.redirect_failed,
		(unsigned long long)ss.malformed,
		(unsigned long long)sum.rx_dropped,
		(unsigned long long)sum.rx_ring_full,
		(unsigned long long)sum.rx_fill_ring_empty,
		(unsigned long long)sum.rx_invalid_descs, fsum.total, fsum.free,
		fsum.fill, fsum.kernel, fsum.app);
}

/* Runs on every exit, die() included: never leave the program attached. */
static void close_run(void *arg)
{
	struct run *r = arg;
	unsigned i;

	stop_writer(r);
	if (r->w) {
		pthread_mutex_destroy(&r->w->lock);
		pthread_cond_destroy(&r->w->cond);
		free(r->w);
		r->w = NULL;
	}
	for (i = 0; i < r->nh; i++)
		l3x_capture_handle__close(r->h[i]);
	l3x_capture__close(r->cap);
}

int main(int argc, char **argv)
{
	struct args a = {};
	struct run r = {};
	unsigned i;
	int err, fd;

	parse_args(&a, argc, argv);
	L3X_OPTS(l3x_capture_opts, o, .ifname = a.link.iface,
		 .pin_dir = a.link.pin_dir, .xdp_mode = a.link.xdp_mode,
		 .frame_count = a.link.frames, .bind_mode = a.link.bind_mode,
		 .ring_size = a.link.frames ? a.link.frames : DEFAULT_FRAMES,
		 .busy_poll_usec = a.link.no_busy_poll ? -1 : 0);
	stop_on_signals(SA_RESTART);
	signal(SIGPIPE, SIG_IGN);
	link_print_init(a.link.verbose);
	r.cap = l3x_capture__open(&o);
	if (!r.cap)
		die("--iface %s: %s", a.link.iface, link_strerror(errno));
	cleanup_at_exit(close_run, &r);
	for (i = 0; i < a.link.rules.n; i++) {
		err = l3x_capture__add_rule(r.cap, &a.link.rules.rules[i]);
		if (err)
			die("--rule '%s': %s", a.link.rules.text[i],
			    strerror(-err));
	}
	open_handles(&r, &a);
	fd = open_pcap(a.write);
	start_writer(&r, fd, a.batch);
	loop(&r, &a);
	stop_writer(&r);
	err = atomic_load(&r.w->err);
	if (err)
		die("write: %s", strerror(err));
	report(&r);
	cleanup_now();
	if (fd != STDOUT_FILENO && close(fd))
		die("write: %s", strerror(errno));
	return 0;
}
