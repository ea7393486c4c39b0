/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fault-middle - a faulty wire between two interfaces, for tests: every
 * frame that arrives on one is written to the other, except that, each at
 * a rate in parts per million, frames are dropped, corrupted (one bit
 * flipped at a random position, headers included), truncated (cut at a
 * random length past the Ethernet header), duplicated, or held back and
 * sent after the next N frames of their direction (reordered). Both
 * directions, each with a generator of its own seeded from --seed, so a
 * given sequence of frames meets the same faults again (smoltcp's
 * FaultInjector does the same). One summary line at exit.
 *
 * It runs in a namespace of its own between two veth pairs (client <->
 * middle <-> server) and reads and writes with AF_PACKET: recvmmsg and
 * sendmmsg move a batch a call, so a gigabyte crosses in seconds. A
 * corrupted frame gets exactly one flipped bit: the Internet checksum
 * catches every single-bit error, while two flips of the same bit column
 * in opposite directions cancel out, so more would test the checksum, not
 * the stack behind it. A held frame whose direction goes quiet leaves
 * after --hold-us, so reordering never turns into loss.
 *
 * With many flows this program is the bottleneck of the testbed (the
 * receivers' softirq work runs in its sendmmsg), and a full socket queue
 * drops frames on top of the faults. Every flow keeps a segment or two in
 * flight whatever its window, so a queue that cannot hold that for all of
 * them overflows for good and turns 1% loss into long bursts: --queue
 * (default 64 MiB of the kernel's accounting, a few tenths of a second)
 * holds it, and what overflows anyway is counted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG "fault-middle"

#include "fault.h"

#define BATCH	  64	/* frames a recvmmsg */
#define FRAME_MAX 16384 /* longer (a GSO packet) is dropped, counted */
#define HOLD_MAX  64	/* frames held back at once, per direction */
#define TX_MAX	  (2 * BATCH + HOLD_MAX)
#define PPM	  1000000u
#define F_OPT	  256 /* getopt values of the rate options */

enum fault { F_DROP, F_CORRUPT, F_TRUNCATE, F_DUP, F_REORDER, F_KINDS };

static const char *const fault_names[F_KINDS] = {
	"dropped", "corrupted", "truncated", "duplicated", "reordered",
};

static const char *const fault_opts[F_KINDS] = {
	"--drop", "--corrupt", "--truncate", "--dup", "--reorder",
};

struct args {
	const char *ifname[2];
	uint64_t seed;
	uint32_t ppm[F_KINDS];
	unsigned depth;	  /* a held frame leaves after this many more */
	uint64_t hold_ns; /* ... or after this long */
	double seconds;	  /* 0: until a signal */
	int queue;	  /* bytes a socket may queue (kernel accounting) */
};

struct counts {
	uint64_t frames, bytes; /* read */
	uint64_t out;		/* written */
	uint64_t fault[F_KINDS];
	uint64_t oversize;  /* longer than FRAME_MAX: dropped */
	uint64_t tx_failed; /* the kernel refused to send: lost */
	uint64_t overflow;  /* the socket's queue was full: lost unseen */
};

struct held {
	uint32_t len;
	unsigned after;	   /* frames still to go out before this one */
	uint64_t deadline; /* ns */
};

/* One direction: frames read on in go out on out. */
struct dir {
	char name[2 * IF_NAMESIZE + 2];
	int in, out;
	uint64_t rng;
	uint8_t *rbuf; /* BATCH frames */
	struct mmsghdr rmsg[BATCH];
	struct iovec riov[BATCH];
	struct mmsghdr tmsg[TX_MAX]; /* what goes out at the next flush */
	struct iovec tiov[TX_MAX];
	unsigned ntx;
	uint8_t *hbuf; /* HOLD_MAX frames */
	struct held hold[HOLD_MAX];
	unsigned nheld;
	bool hold_busy[HOLD_MAX]; /* in use (held, or leaving this flush) */
	struct counts c;
};

/* ------------------------------------------------------------ arguments */

/* clang-format off */
TOOL_DEFINE(PROG,
	    "usage: " PROG " --a IF --b IF [--seed N] [--drop PPM] "
	      "[--corrupt PPM]\n"
	      "       [--truncate PPM] [--dup PPM] [--reorder PPM] "
	      "[--reorder-depth N]\n"
	      "       [--hold-us US] [--queue BYTES] [--seconds S]\n"
	      "Forwards every frame between IF a and IF b with faults, each "
	      "at a rate in\n"
	      "parts per million; one summary line at SIGINT, SIGTERM or "
	      "--seconds.\n",
	    2);
/* clang-format on */

static void parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "a", required_argument, NULL, 'a' },
		{ "b", required_argument, NULL, 'b' },
		{ "seed", required_argument, NULL, 's' },
		{ "drop", required_argument, NULL, F_OPT + F_DROP },
		{ "corrupt", required_argument, NULL, F_OPT + F_CORRUPT },
		{ "truncate", required_argument, NULL, F_OPT + F_TRUNCATE },
		{ "dup", required_argument, NULL, F_OPT + F_DUP },
		{ "reorder", required_argument, NULL, F_OPT + F_REORDER },
		{ "reorder-depth", required_argument, NULL, 'n' },
		{ "hold-us", required_argument, NULL, 'H' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "queue", required_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	a->depth = 3;
	a->hold_ns = 2000000;
	a->seed = 1;
	a->queue = 64 << 20;
	while ((c = tool_getopt(argc, argv, ":h", opts)) != -1) {
		if (c >= F_OPT && c < F_OPT + F_KINDS) {
			a->ppm[c - F_OPT] = parse_uint(fault_opts[c - F_OPT],
						       optarg, 0, PPM);
			continue;
		}
		switch (c) {
		case 'a':
			a->ifname[0] = optarg;
			break;
		case 'b':
			a->ifname[1] = optarg;
			break;
		case 's':
			a->seed = parse_uint("--seed", optarg, 0, UINT64_MAX);
			break;
		case 'n':
			a->depth =
				parse_uint("--reorder-depth", optarg, 1, 1000);
			break;
		case 'H':
			a->hold_ns =
				parse_uint("--hold-us", optarg, 1, 1000000) *
				1000;
			break;
		case 'S':
			a->seconds = parse_secs("--seconds", optarg);
			break;
		case 'Q':
			a->queue =
				parse_uint("--queue", optarg, 1 << 16, 1 << 30);
			break;
		}
	}
	if (optind < argc)
		die_arg("'%s': unexpected argument", argv[optind]);
	if (!a->ifname[0] || !a->ifname[1])
		die_arg("--a and --b: both interfaces are needed");
}

/* ------------------------------------------------------------ sockets */

/* A raw socket on ifname that sees only what arrives there. Made with
 * protocol 0 and bound with ETH_P_ALL, so that it never sees a frame of
 * another interface between socket() and bind(). */
static int packet_socket(const char *ifname, int buf)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
	};
	int one = 1, fd;

	sll.sll_ifindex = if_nametoindex(ifname);
	if (!sll.sll_ifindex)
		die("%s: no such interface", ifname);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("%s: AF_PACKET socket: %s", ifname, strerror(errno));
	/* Our own writes come back as outgoing frames: not wanted. */
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one,
		       sizeof(one)))
		die("%s: PACKET_IGNORE_OUTGOING: %s", ifname, strerror(errno));
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
		die("%s: bind: %s", ifname, strerror(errno));
	return fd;
}

static void dir_init(struct dir *d, const struct args *a, int in, int out,
		     unsigned k)
{
	unsigned i;

	snprintf(d->name, sizeof(d->name), "%s>%s", a->ifname[k],
		 a->ifname[!k]);
	d->in = in;
	d->out = out;
	d->rng = mix64(a->seed + k + 1);
	d->rbuf = malloc((size_t)BATCH * FRAME_MAX);
	d->hbuf = malloc((size_t)HOLD_MAX * FRAME_MAX);
	if (!d->rbuf || !d->hbuf)
		die("out of memory");
	for (i = 0; i < BATCH; i++) {
		d->riov[i].iov_base = d->rbuf + (size_t)i * FRAME_MAX;
		d->riov[i].iov_len = FRAME_MAX;
		d->rmsg[i].msg_hdr.msg_iov = &d->riov[i];
		d->rmsg[i].msg_hdr.msg_iovlen = 1;
	}
	for (i = 0; i < TX_MAX; i++) {
		d->tmsg[i].msg_hdr.msg_iov = &d->tiov[i];
		d->tmsg[i].msg_hdr.msg_iovlen = 1;
	}
}

/* ------------------------------------------------------------ faults */

static bool roll(struct dir *d, const struct args *a, enum fault f)
{
	return a->ppm[f] && rng_next(&d->rng) % PPM < a->ppm[f];
}

static void queue_out(struct dir *d, uint8_t *p, uint32_t len)
{
	d->tiov[d->ntx].iov_base = p;
	d->tiov[d->ntx].iov_len = len;
	d->ntx++;
}

/* A frame went out: held frames whose turn it is follow it. */
static void held_tick(struct dir *d, bool expire, uint64_t now)
{
	struct held *h;
	unsigned i;

	for (i = 0; i < HOLD_MAX && d->nheld; i++) {
		h = &d->hold[i];
		if (!d->hold_busy[i] || !h->after)
			continue;
		if (!expire && --h->after)
			continue;
		if (expire && now < h->deadline)
			continue;
		h->after = 0; /* leaving: the slot frees after the flush */
		d->nheld--;
		queue_out(d, d->hbuf + (size_t)i * FRAME_MAX, h->len);
	}
}

/* Copies the frame aside to go out later; false when every slot is
 * taken (it then goes out now, in order). */
static bool hold_frame(struct dir *d, const struct args *a, uint8_t *p,
		       uint32_t len, uint64_t now)
{
	unsigned i;

	for (i = 0; i < HOLD_MAX; i++) {
		if (d->hold_busy[i])
			continue;
		memcpy(d->hbuf + (size_t)i * FRAME_MAX, p, len);
		d->hold[i] = (struct held){ len, a->depth, now + a->hold_ns };
		d->hold_busy[i] = true;
		d->nheld++;
		return true;
	}
	return false;
}

/* The faults one frame meets, in order: dropped (and nothing else), then
 * corrupted and truncated, then sent twice and, or, held back. */
static void one_frame(struct dir *d, const struct args *a, uint8_t *p,
		      uint32_t len, uint64_t now)
{
	uint64_t r;

	if (roll(d, a, F_DROP)) {
		d->c.fault[F_DROP]++;
		return;
	}
	if (roll(d, a, F_CORRUPT)) {
		r = rng_next(&d->rng);
		p[(r >> 3) % len] ^= 1u << (r & 7);
		d->c.fault[F_CORRUPT]++;
	}
	if (len > ETH_HLEN + 1 && roll(d, a, F_TRUNCATE)) {
		len = ETH_HLEN + rng_next(&d->rng) % (len - ETH_HLEN);
		d->c.fault[F_TRUNCATE]++;
	}
	if (roll(d, a, F_DUP)) {
		queue_out(d, p, len);
		held_tick(d, false, now);
		d->c.fault[F_DUP]++;
	}
	if (roll(d, a, F_REORDER) && hold_frame(d, a, p, len, now)) {
		d->c.fault[F_REORDER]++;
		return;
	}
	queue_out(d, p, len);
	held_tick(d, false, now);
}

/* ------------------------------------------------------------ moving */

/* Writes what is queued; a frame the kernel refuses is lost, counted. */
static void flush(struct dir *d)
{
	unsigned done = 0, failed = 0, i;
	int r;

	while (done < d->ntx) {
		r = sendmmsg(d->out, d->tmsg + done, d->ntx - done,
			     MSG_DONTWAIT);
		if (r > 0) {
			done += r;
			continue;
		}
		if (errno == ENETDOWN || errno == ENXIO || errno == ENODEV)
			request_stop(); /* the namespace is going away */
		failed++;
		done++;
	}
	d->c.tx_failed += failed;
	d->c.out += d->ntx - failed;
	d->ntx = 0;
	for (i = 0; i < HOLD_MAX; i++)
		if (d->hold_busy[i] && !d->hold[i].after)
			d->hold_busy[i] = false;
}

/* Reads and forwards until the socket is empty (at most a few batches,
 * so that the other direction gets its turn). */
static void pump(struct dir *d, const struct args *a)
{
	uint64_t now = now_ns();
	unsigned round, i;
	int n;

	for (round = 0; round < 4; round++) {
		n = recvmmsg(d->in, d->rmsg, BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == ENETDOWN || errno == ENXIO)
				request_stop();
			break;
		}
		for (i = 0; i < (unsigned)n; i++) {
			d->c.frames++;
			d->c.bytes += d->rmsg[i].msg_len;
			if (d->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) {
				d->c.oversize++;
				continue;
			}
			one_frame(d, a, d->riov[i].iov_base, d->rmsg[i].msg_len,
				  now);
		}
		flush(d);
		if (n < BATCH)
			break;
	}
	if (d->nheld) {
		held_tick(d, true, now_ns());
		flush(d);
	}
}

/* How long poll may sleep: until the first held frame is due. */
static int poll_timeout(const struct dir *dirs, uint64_t now)
{
	uint64_t first = UINT64_MAX;
	unsigned k, i;

	for (k = 0; k < 2; k++)
		for (i = 0; i < HOLD_MAX && dirs[k].nheld; i++)
			if (dirs[k].hold_busy[i] &&
			    dirs[k].hold[i].deadline < first)
				first = dirs[k].hold[i].deadline;
	if (first == UINT64_MAX)
		return 100;
	return first <= now ? 0 : (int)((first - now + 999999) / 1000000);
}

/* ------------------------------------------------------------ report */

/* Frames the kernel dropped because our receive queue was full: losses
 * on top of the faults, when this program is the bottleneck. */
static void read_overflow(struct dir *d)
{
	struct tpacket_stats st = {};
	socklen_t len = sizeof(st);

	if (!getsockopt(d->in, SOL_PACKET, PACKET_STATISTICS, &st, &len))
		d->c.overflow += st.tp_drops;
}

static void report(const struct args *a, const struct dir *dirs, double secs)
{
	struct counts t = {};
	unsigned k, f;

	printf(PROG ": seed %llu seconds %.1f", (unsigned long long)a->seed,
	       secs);
	for (k = 0; k < 2; k++) {
		const struct counts *c = &dirs[k].c;

		printf("; %s frames %llu bytes %llu out %llu", dirs[k].name,
		       (unsigned long long)c->frames,
		       (unsigned long long)c->bytes,
		       (unsigned long long)c->out);
		for (f = 0; f < F_KINDS; f++) {
			printf(" %s %llu", fault_names[f],
			       (unsigned long long)c->fault[f]);
			t.fault[f] += c->fault[f];
		}
		printf(" oversize %llu tx_failed %llu overflow %llu",
		       (unsigned long long)c->oversize,
		       (unsigned long long)c->tx_failed,
		       (unsigned long long)c->overflow);
		t.frames += c->frames;
		t.bytes += c->bytes;
		t.tx_failed += c->tx_failed;
		t.overflow += c->overflow;
	}
	printf("; total frames %llu bytes %llu", (unsigned long long)t.frames,
	       (unsigned long long)t.bytes);
	for (f = 0; f < F_KINDS; f++)
		printf(" %s %llu", fault_names[f],
		       (unsigned long long)t.fault[f]);
	printf(" tx_failed %llu overflow %llu\n",
	       (unsigned long long)t.tx_failed, (unsigned long long)t.overflow);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct dir dirs[2];
	static struct args a;
	struct pollfd pf[2];
	uint64_t t0, end;
	int fd[2], n;
	unsigned k;

	parse_args(&a, argc, argv);
	stop_on_signals(0);
	for (k = 0; k < 2; k++)
		fd[k] = packet_socket(a.ifname[k], a.queue);
	for (k = 0; k < 2; k++) {
		dir_init(&dirs[k], &a, fd[k], fd[!k], k);
		pf[k] = (struct pollfd){ .fd = fd[k], .events = POLLIN };
	}
	t0 = now_ns();
	end = a.seconds ? t0 + (uint64_t)(a.seconds * NS) : UINT64_MAX;
	fprintf(stderr, PROG ": ready\n");
	while (!stop_requested() && now_ns() < end) {
		n = poll(pf, 2, poll_timeout(dirs, now_ns()));
		if (n < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		for (k = 0; k < 2; k++)
			if (pf[k].revents & (POLLERR | POLLHUP | POLLNVAL))
				request_stop();
		for (k = 0; k < 2; k++)
			pump(&dirs[k], &a);
	}
	for (k = 0; k < 2; k++)
		read_overflow(&dirs[k]);
	report(&a, dirs, (now_ns() - t0) / 1e9);
	return 0;
}
