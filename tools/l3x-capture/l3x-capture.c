/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x-capture - write the frames that match steering rules as pcap.
 *
 * One thread reads every queue's handle in turn, writes nanosecond pcap
 * (tcpdump and tshark read it; "-" pipes it), and gives the frames back.
 * It spins a little when idle before sleeping in poll(), so a flood is read
 * at full rate and an idle capture costs no CPU.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "l3x/l3x.h"
#include "link.h"
#include "parse.h"
#include "tool.h"

#define PROG	    "l3x-capture"
#define BURST	    64
#define SPIN_ROUNDS 2000

/* clang-format off */
TOOL_DEFINE(PROG,
	    "usage: " PROG " --iface IF --rule RULE [--rule RULE]... --write FILE|-\n"
	    "       [--queue Q]... [--count N] [--seconds S] [--pin-dir DIR]\n"
	    "       [--xdp-mode auto|native|skb] [--bind auto|copy|zerocopy] [--frames N]\n"
	    "       [--no-busy-poll] [--quiet] [--verbose]\n"
	    "RULE is 'PROTO DST [PORT[-PORT]] [vlan ID]', e.g. 'udp 192.0.2.0/24 9000'.\n",
	    1);
/* clang-format on */

struct args {
	struct link_args link;
	const char *write;
	uint64_t count; /* 0: no limit */
	double seconds; /* 0: no limit */
};

struct run {
	struct l3x_capture *cap;
	struct l3x_capture_handle *h[256];
	unsigned nh;
	FILE *out;
	uint64_t frames, bytes;
};

struct pcap_rec {
	uint32_t ts_sec, ts_nsec, caplen, len;
};

static void parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		LINK_OPTIONS,
		{ "write", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		TOOL_OPTIONS_END,
	};
	int c;

	while ((c = tool_getopt(argc, argv, "i:q:r:w:c:s:p:h", opts)) != -1) {
		if (link_opt(&a->link, c, optarg))
			continue;
		/* One line an option, as in the tools. */
		/* clang-format off */
		switch (c) {
		case 'w': a->write = optarg; break;
		case 'c': a->count = parse_uint("--count", optarg, 0, UINT64_MAX); break;
		case 's': a->seconds = parse_uint("--seconds", optarg, 0, UINT64_MAX); break;
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

static FILE *open_pcap(const char *path)
{
	/* Nanosecond pcap, Ethernet link type. */
	const uint32_t hdr[6] = { 0xa1b23c4d, 0x00040002, 0, 0, 262144, 1 };
	FILE *f = strcmp(path, "-") ? fopen(path, "wb") : stdout;

	if (!f)
		die("--write '%s': %s", path, strerror(errno));
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	if (fwrite(hdr, sizeof(hdr), 1, f) != 1)
		die("--write '%s': %s", path, strerror(errno));
	return f;
}

static void write_frame(FILE *f, const struct l3x_frame *fr)
{
	struct pcap_rec r = {
		.ts_sec = (uint32_t)(fr->ts_ns / 1000000000u),
		.ts_nsec = (uint32_t)(fr->ts_ns % 1000000000u),
		.caplen = fr->len,
		.len = fr->len,
	};

	if (fwrite(&r, sizeof(r), 1, f) != 1 ||
	    fwrite(fr->data, fr->len, 1, f) != 1) {
		if (errno == EPIPE)
			request_stop();
		else
			die("write: %s", strerror(errno));
	}
}

/* One pass over every handle. Returns frames handled. */
static unsigned pass(struct run *r, const struct args *a)
{
	struct l3x_frame fr[BURST];
	unsigned i, j, n, total = 0;

	for (i = 0; i < r->nh && !stop_requested(); i++) {
		n = l3x_capture_handle__recv_burst(r->h[i], fr, BURST);
		for (j = 0; j < n; j++) {
			if (a->count && r->frames >= a->count)
				break;
			write_frame(r->out, &fr[j]);
			r->frames++;
			r->bytes += fr[j].len;
		}
		l3x_capture_handle__release(r->h[i], fr, n);
		total += n;
		if (a->count && r->frames >= a->count)
			request_stop();
	}
	return total;
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

static void loop(struct run *r, const struct args *a)
{
	struct run_clock rc;
	uint64_t last = 0;
	unsigned idle = 0;
	double dt;

	run_clock_start(&rc, a->seconds, a->link.quiet);
	while (!stop_requested()) {
		if (pass(r, a))
			idle = 0;
		else if (++idle > SPIN_ROUNDS)
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
		": written %llu frames %llu bytes; received %llu; "
		"xdp passed %llu redirected %llu redirect_failed %llu malformed %llu; "
		"xsk rx_dropped %llu rx_ring_full %llu fill_ring_empty %llu invalid %llu; "
		"umem total %u free %u fill %u kernel %u app %u\n",
		(unsigned long long)r->frames, (unsigned long long)r->bytes,
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

	for (i = 0; i < r->nh; i++)
		l3x_capture_handle__close(r->h[i]);
	l3x_capture__close(r->cap);
}

int main(int argc, char **argv)
{
	struct args a = {};
	struct run r = {};
	unsigned i;
	int err;

	parse_args(&a, argc, argv);
	L3X_OPTS(l3x_capture_opts, o, .ifname = a.link.iface,
		 .pin_dir = a.link.pin_dir, .xdp_mode = a.link.xdp_mode,
		 .frame_count = a.link.frames, .bind_mode = a.link.bind_mode,
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
	r.out = open_pcap(a.write);
	loop(&r, &a);
	if (fflush(r.out) && errno != EPIPE)
		die("write: %s", strerror(errno));
	report(&r);
	cleanup_now();
	if (r.out != stdout)
		fclose(r.out);
	return 0;
}
