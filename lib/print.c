/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * print.c - the library never prints on its own: every message goes
 * through one settable callback (libbpf_set_print's idea). The default
 * shows warnings on stderr, prefixed "l3x: ", and drops the rest.
 *
 * The callback lives in one atomic pointer, so setting it and printing
 * need no lock and may happen on any thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "l3x_internal.h"

static int default_print(enum l3x_print_level level, const char *fmt,
			 va_list ap)
{
	int n;

	if (level != L3X_WARN)
		return 0;
	/* One lock over prefix and message, so lines of two threads do
	 * not interleave. */
	flockfile(stderr);
	fputs("l3x: ", stderr);
	n = vfprintf(stderr, fmt, ap);
	funlockfile(stderr);
	return n;
}

static _Atomic(l3x_print_fn_t) print_fn = default_print;

/*
 * l3x_set_print() - see l3x.h. Any thread.
 *
 * Release (the store half of acq_rel): pairs with the acquire load in
 * l3x_pr() on the thread that next prints. Relaxed would publish the
 * pointer alone, but a callback usually reads state its owner set up just
 * before installing it (a log file, a level); release makes that state
 * visible to every thread that sees the new pointer. Acquire (the load
 * half): pairs with the release of whoever installed the function we
 * return, so our caller may call it or restore it safely. It costs
 * nothing on the fast path: this runs once per program, not per packet.
 */
l3x_print_fn_t l3x_set_print(l3x_print_fn_t fn)
{
	return atomic_exchange_explicit(&print_fn, fn, memory_order_acq_rel);
}

/*
 * l3x_pr() - hand one message to the current callback, if any. errno is
 * the same after the call as before, so callers may print between a
 * failing call and their use of errno. Any thread.
 */
void l3x_pr(enum l3x_print_level level, const char *fmt, ...)
{
	int saved = errno;
	l3x_print_fn_t fn;
	va_list ap;

	/* Acquire: pairs with the release in l3x_set_print(); see there. */
	fn = atomic_load_explicit(&print_fn, memory_order_acquire);
	if (!fn)
		return;
	va_start(ap, fmt);
	fn(level, fmt, ap);
	va_end(ap);
	errno = saved;
}
