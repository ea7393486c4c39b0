/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fault.h - what the fault test's two programs (fault-middle, the faulty
 * wire, and fault-client, the checking client) share: tools/common's
 * messages, option loop and number parsing, the clock, and splitmix64, the
 * seeded generator behind every fault decision and every byte of a
 * stream. Define PROG before including.
 */
#ifndef L3X_FAULT_H
#define L3X_FAULT_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef PROG
#error "define PROG (the program's name) before including fault.h"
#endif

#define NS 1000000000ull

/*
 * The tools' messages, option loop and number parsing (tools/common: die(),
 * die_arg(), tool_getopt(), parse_uint(), parse_positive(), now_ns()),
 * compiled into each of these one-file programs: the Makefile builds them
 * from their .c alone, without build/libtools.a. Each program says who it
 * is with TOOL_DEFINE(); bad arguments exit 2.
 */
#include "../../tools/common/parse.c"
#include "../../tools/common/tool.c"

/* A number of seconds above 0 and at most 1e6, for option @opt. */
#define parse_secs(opt, s)                                                     \
	parse_positive(opt, s, 1e6, "a number of seconds above 0")

/* splitmix64: the finaliser alone (a hash), and as a generator. */
#include "../../tools/common/mix64.h"

#endif /* L3X_FAULT_H */
