/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * tool.c - messages and exit statuses, the option loop, the stop flag, the
 * clock: see tool.h.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

static atomic_bool stop;

static void vsay(const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", this_tool.prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	exit(1);
}

void die_arg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	exit(this_tool.arg_status);
}

void usage_exit(int status)
{
	fputs(this_tool.usage, status ? stderr : stdout);
	exit(status);
}

int tool_getopt(int argc, char **argv, const char *shortopts,
		const struct option *longopts)
{
	bool own_messages = shortopts[shortopts[0] == '+'] == ':';
	int c = getopt_long(argc, argv, shortopts, longopts, NULL);

	if (c == 'h')
		usage_exit(0);
	if (c == ':')
		die_arg("%s: missing its value", argv[optind - 1]);
	if (c == '?' && own_messages)
		die_arg("'%s': unknown option (see --help)", argv[optind - 1]);
	if (c == '?')
		usage_exit(2); /* getopt has named the problem */
	return c;
}

int tool_options(int argc, char **argv, const struct option *longopts,
		 void (*fn)(void *ctx, int c), void *ctx)
{
	int c;

	while ((c = tool_getopt(argc, argv, ":h", longopts)) != -1)
		fn(ctx, c);
	return optind;
}

void tool_need(bool given, const char *opt, const char *what)
{
	if (!given)
		die_arg("%s: missing (%s)", opt, what);
}

void tool_no_more_args(int argc, char **argv, int i)
{
	if (i < argc)
		die_arg("'%s': unexpected argument", argv[i]);
}

static void on_stop_signal(int sig)
{
	(void)sig;
	atomic_store_explicit(&stop, true, memory_order_relaxed);
}

void stop_on_signals(int sa_flags)
{
	struct sigaction sa = {
		.sa_handler = on_stop_signal,
		.sa_flags = sa_flags,
	};

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

bool stop_requested(void)
{
	return atomic_load_explicit(&stop, memory_order_relaxed);
}

void request_stop(void)
{
	atomic_store_explicit(&stop, true, memory_order_relaxed);
}

void stop_signals_block(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, old);
}

void stop_signals_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void (*exit_fn)(void *);
static void *exit_arg;

void cleanup_now(void)
{
	void (*fn)(void *) = exit_fn;

	exit_fn = NULL;
	if (fn)
		fn(exit_arg);
}

void cleanup_at_exit(void (*fn)(void *), void *arg)
{
	exit_fn = fn;
	exit_arg = arg;
	atexit(cleanup_now);
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

void run_clock_start(struct run_clock *c, double seconds, bool quiet)
{
	c->start = c->tick = now_s();
	c->seconds = seconds;
	c->tty = isatty(STDERR_FILENO) && !quiet;
}

double run_clock_turn(struct run_clock *c)
{
	double t = now_s(), dt = t - c->tick;

	if (c->seconds && t - c->start >= c->seconds)
		return -1;
	if (!c->tty || dt < 1.0)
		return 0;
	c->tick = t;
	return dt;
}

void run_clock_end(const struct run_clock *c)
{
	if (c->tty)
		fputc('\n', stderr);
}

void run_until_stop(double seconds, bool quiet,
		    void (*turn)(void *arg, double dt), void *arg)
{
	struct run_clock rc;
	double dt;

	run_clock_start(&rc, seconds, quiet);
	while (!stop_requested()) {
		poll(NULL, 0, 100);
		dt = run_clock_turn(&rc);
		if (dt < 0)
			break;
		if (turn)
			turn(arg, dt);
	}
	run_clock_end(&rc);
}

int pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

uint64_t raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 0;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur;
}
