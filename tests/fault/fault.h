/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fault.h - what the fault test's two programs (fault-middle, the faulty
 * wire, and fault-client, the checking client) share: one line on stderr
 * and exit for a problem, number parsing that names the option at fault,
 * the clock, and splitmix64, the seeded generator behind every fault
 * decision and every byte of a stream. Define PROG before including.
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

/* A problem: one line naming it, exit 1. Bad arguments exit 2. */
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

static void bad(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2), unused));
static void bad(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static __attribute__((unused)) uint64_t
parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || !*s || *end || *s == '-' || *s == '+')
		bad("%s '%s': not a whole number", opt, s);
	if (v < min || v > max)
		bad("%s '%s': must be between %llu and %llu", opt, s,
		    (unsigned long long)min, (unsigned long long)max);
	return v;
}

static __attribute__((unused)) double parse_secs(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || !*s || *end || !(v > 0) || v > 1e6)
		bad("%s '%s': must be a number of seconds above 0", opt, s);
	return v;
}

static __attribute__((unused)) uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* splitmix64: the finaliser alone (a hash), and as a generator. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t rng_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return mix64(*state);
}

#endif /* L3X_FAULT_H */
