/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * tool.h - what every l3x tool does the same way: one line naming the
 * problem on stderr ("PROG: problem") and the tool's own exit status, the
 * option loop and --help, a clean stop on SIGINT/SIGTERM, the clock.
 *
 * tools/common is a small static library (build/libtools.a) linked into
 * every tool. Each tool says who it is once, with TOOL_DEFINE(); the
 * helpers here and in parse.h read that, so a bad number given to l3x-load
 * is refused with l3x-load's name and the status l3x-load uses for bad
 * arguments. These helpers print and exit, as a program may and a library
 * never does.
 *
 * Threads: die(), die_arg(), stop_requested(), request_stop(), the clocks
 * and pin_self() from any thread; the rest from the main thread.
 */
#ifndef L3X_TOOL_H
#define L3X_TOOL_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

struct tool {
	const char *prog;  /* the name every message starts with */
	const char *usage; /* the --help text, ending in a newline */
	int arg_status;	   /* exit status of a bad argument */
};

/* Defined by each tool with TOOL_DEFINE(). */
extern const struct tool this_tool;

/* A tool's this_tool. Tools keep their call out of clang-format
 * ("clang-format off" around it), so that the usage reads as it prints. */
#define TOOL_DEFINE(prog_, usage_, arg_status_)                                \
	const struct tool this_tool = {                                        \
		.prog = (prog_),                                               \
		.usage = (usage_),                                             \
		.arg_status = (arg_status_),                                   \
	}

/* "PROG: " and the message on stderr, then exit 1: the run failed. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* The same with this_tool.arg_status: the command line is at fault. */
void die_arg(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

/* The usage on stdout (status 0) or stderr, then exit @status. */
void usage_exit(int status) __attribute__((noreturn));

/* The end of every tool's option table: --help, which tool_getopt()
 * answers. */
/* clang-format off */
#define TOOL_OPTIONS_END { "help", no_argument, NULL, 'h' }, { 0 }
/* clang-format on */

/*
 * The option loop: getopt_long() with --help and -h answered here (the
 * usage on stdout, exit 0). When @shortopts starts with ':' (after an
 * optional '+'), a missing value or an unknown option is one line and
 * this_tool.arg_status; otherwise getopt names it and the usage follows
 * on stderr, exit 2. Returns the next option's value, or -1.
 */
int tool_getopt(int argc, char **argv, const char *shortopts,
		const struct option *longopts);

/* One row of an option table: a long option that takes a value, or one
 * that does not. */
#define TOOL_OPT_ARG(name, c)                                                  \
	{                                                                      \
		(name), required_argument, NULL, (c)                           \
	}
#define TOOL_OPT_FLAG(name, c)                                                 \
	{                                                                      \
		(name), no_argument, NULL, (c)                                 \
	}

/*
 * The option loop of a tool whose options are all long ones: each goes to
 * @fn(@ctx, its value) with its argument in optarg; a missing value or an
 * unknown option is one line and this_tool.arg_status (tool_getopt() with
 * ":h"). Returns the index of the first word after the options.
 */
int tool_options(int argc, char **argv, const struct option *longopts,
		 void (*fn)(void *ctx, int c), void *ctx);

/* Unless @given, refuses the command line as "OPT: missing (WHAT)". */
void tool_need(bool given, const char *opt, const char *what);

/* Refuses argv[@i], if there is one, as "'WORD': unexpected argument". */
void tool_no_more_args(int argc, char **argv, int i);

/*
 * SIGINT and SIGTERM ask for a stop (stop_requested() turns true) instead
 * of ending the process. @sa_flags: SA_RESTART for a tool whose writes to
 * a pipe must not fail with EINTR (signal()'s way), 0 for one that wants
 * its sleeps cut short.
 */
void stop_on_signals(int sa_flags);

/* Has a signal, the clock or the tool itself asked for a stop? Any thread;
 * relaxed: nothing else is published through the flag. */
bool stop_requested(void);

/* Ask for a stop (the same flag as the signals). Any thread. */
void request_stop(void);

/* Block SIGINT and SIGTERM in this thread, the old mask in @old: threads
 * started until stop_signals_restore() leave the signals to this one. */
void stop_signals_block(sigset_t *old);
void stop_signals_restore(const sigset_t *old);

/* Call @fn(@arg) once: at exit, die() included, or at cleanup_now(). For
 * what must never be left behind (an attached program, a TUN device). */
void cleanup_at_exit(void (*fn)(void *), void *arg);
void cleanup_now(void);

/* The monotonic clock in seconds and in nanoseconds. */
double now_s(void);
uint64_t now_ns(void);

/* The main loop's clock: the end of --seconds, and a progress line once a
 * second when stderr is a terminal and the tool is not --quiet. */
struct run_clock {
	double start, tick;
	double seconds; /* 0: no end */
	bool tty;	/* progress lines, redrawn in place */
};

void run_clock_start(struct run_clock *c, double seconds, bool quiet);

/* After each turn of the loop: -1 once the seconds are up; else, when a
 * progress line is due, the seconds since the last one; else 0. */
double run_clock_turn(struct run_clock *c);

/* Ends the progress line, if any was drawn. */
void run_clock_end(const struct run_clock *c);

/*
 * The main thread of a tool whose workers do the work: until a stop is
 * asked (stop_requested()) or @seconds (0: no end) are up, wake every
 * 100 ms and call @turn(@arg, dt) when not NULL, dt the seconds since the
 * last progress line when one is due (see run_clock_turn()), else 0.
 */
void run_until_stop(double seconds, bool quiet,
		    void (*turn)(void *arg, double dt), void *arg);

/* Pin the calling thread to @cpu. Returns 0 or an errno value. */
int pin_self(int cpu);

/* Raise the soft open-file limit to the hard one. Returns the soft limit
 * now in force, or 0 when it cannot be read. */
uint64_t raise_nofile(void);

#endif /* L3X_TOOL_H */
