/*
 * harness.h - what the netns tests (helpers.c, test_stack_*.c) share with
 * the TSan driver (tests/tsan/tsan_stack.c), which cannot link helpers.c
 * (criterion does not start under TSan): header-only, no criterion.
 *   - the callback source fed from a TUN device of the test's own: the
 *     device itself, the output callback that writes into it, and the
 *     pump thread that reads it into l3x_stack__input() and polls the
 *     stack (the engine thread of that source);
 *   - a worker's echo loop.
 */
#ifndef L3X_TESTS_HARNESS_H
#define L3X_TESTS_HARNESS_H

#include <errno.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "l3x/l3x.h"

/* Make @fd (an open /dev/net/tun) the TUN device @name, no packet info.
 * Returns 0 or -errno. */
static inline int tun_attach(int fd, const char *name)
{
	struct ifreq ifr = { 0 };

	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	return ioctl(fd, TUNSETIFF, &ifr) ? -errno : 0;
}

/* opts.output: @ctx points at the TUN's fd. */
static inline int tun_output(void *ctx, const void *pkt, size_t len)
{
	ssize_t r = write(*(int *)ctx, pkt, len);

	if (r == (ssize_t)len)
		return 0;
	return r < 0 ? -errno : -EIO;
}

/* Up to 64 packets from @fd into @st, then a poll: the work done (0: the
 * caller may yield). The pump thread only. */
static inline int tun_pump_once(struct l3x_stack *st, int fd)
{
	static uint8_t buf[65536];
	ssize_t r;
	int work = 0, i;

	for (i = 0; i < 64; i++) {
		r = read(fd, buf, sizeof(buf));
		if (r <= 0)
			break;
		l3x_stack__input(st, buf, (size_t)r);
		work++;
	}
	return work + l3x_stack__poll(st);
}

/* The pump thread: tun_pump_once() until stopped, yielding when idle. */
struct tun_pump {
	struct l3x_stack *st;
	int fd;
	atomic_bool run;
	pthread_t thread;
};

static inline void *tun_pump_main(void *arg)
{
	struct tun_pump *p = arg;

	while (atomic_load(&p->run))
		if (!tun_pump_once(p->st, p->fd))
			sched_yield();
	return NULL;
}

/* Start the pump of @st on the TUN @fd: 0 or an errno value. */
static inline int tun_pump_start(struct tun_pump *p, struct l3x_stack *st,
				 int fd)
{
	p->st = st;
	p->fd = fd;
	atomic_store(&p->run, true);
	return pthread_create(&p->thread, NULL, tun_pump_main, p);
}

static inline void tun_pump_stop(struct tun_pump *p)
{
	atomic_store(&p->run, false);
	pthread_join(p->thread, NULL);
}

/* Echo on @s until there is nothing to do: write what @buf holds between
 * *@off and *@len, then read up to @cap more into it, and again. Returns
 * -EAGAIN (wait for an event), 0 (EOF: all read was written) or another
 * negative errno, *@in_write saying whether a write gave it; adds the
 * bytes written to *@written. The stream's worker thread only. */
static inline long echo_run(struct l3x_stream *s, uint8_t *buf, size_t cap,
			    size_t *off, size_t *len,
			    unsigned long long *written, bool *in_write)
{
	long r;

	for (;;) {
		*in_write = *off < *len;
		if (*in_write) {
			r = l3x_stream__write(s, buf + *off, *len - *off);
			if (r < 0)
				return r;
			*off += (size_t)r;
			*written += (unsigned long long)r;
			continue;
		}
		r = l3x_stream__read(s, buf, cap);
		if (r <= 0)
			return r;
		*len = (size_t)r;
		*off = 0;
	}
}

#endif
