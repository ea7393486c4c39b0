/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * tool.h - what every l3x tool does the same way: one line naming the
 * problem on stderr, then exit 1. Define PROG before including.
 * (tools/common has no common.c, so the Makefile builds no tool from it.)
 */
#ifndef L3X_TOOL_H
#define L3X_TOOL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef PROG
#error "define PROG (the tool's name) before including tool.h"
#endif

static void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2), unused));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#endif /* L3X_TOOL_H */
