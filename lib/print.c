/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * print.c - the library never prints on its own: messages go through a
 * settable callback (libbpf_set_print's idea). The default shows warnings
 * on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "l3x_internal.h"

static int default_print(enum l3x_print_level level, const char *fmt,
			 va_list ap)
{
	if (level != L3X_WARN)
		return 0;
	fputs("l3x: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

/* Relaxed is enough: the pointer is the only data published, and a
 * message racing with a change may use either function (documented). */
static _Atomic(l3x_print_fn_t) print_fn = default_print;

l3x_print_fn_t l3x_set_print(l3x_print_fn_t fn)
{
	return atomic_exchange_explicit(&print_fn, fn, memory_order_relaxed);
}

void l3x_pr(enum l3x_print_level level, const char *fmt, ...)
{
	l3x_print_fn_t fn = atomic_load_explicit(&print_fn, memory_order_relaxed);
	int saved = errno;
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	fn(level, fmt, ap);
	va_end(ap);
	errno = saved;
}
