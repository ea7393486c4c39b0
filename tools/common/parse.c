/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * parse.c - option values: see parse.h.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "tool.h"

uint64_t parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || !*s || *end || *s == '-' || *s == '+')
		die_arg("%s '%s': not a whole number", opt, s);
	if (v >= min && v <= max)
		return v;
	if (!min)
		die_arg("%s '%s': at most %llu", opt, s,
			(unsigned long long)max);
	if (max == UINT64_MAX)
		die_arg("%s '%s': at least %llu", opt, s,
			(unsigned long long)min);
	die_arg("%s '%s': must be between %llu and %llu", opt, s,
		(unsigned long long)min, (unsigned long long)max);
}

double parse_positive(const char *opt, const char *s, double max,
		      const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || !*s || *end || !(v > 0) || v > max)
		die_arg("%s '%s': must be %s", opt, s, what);
	return v;
}

/* One item of a CPU list, "N" or "N-M", at *p; moves *p past it. */
static void cpu_range(const char *opt, const char *s, const char **p,
		      unsigned long *lo, unsigned long *hi)
{
	char *end;

	errno = 0;
	*lo = strtoul(*p, &end, 10);
	if (end == *p || errno)
		die_arg("%s '%s': not a CPU list (like 0,2-3)", opt, s);
	*hi = *lo;
	if (*end == '-') {
		*p = end + 1;
		*hi = strtoul(*p, &end, 10);
		if (end == *p || *hi < *lo)
			die_arg("%s '%s': not a CPU list (like 0,2-3)", opt, s);
	}
	if (*hi >= CPU_SETSIZE)
		die_arg("%s '%s': CPU %lu is past %d", opt, s, *hi,
			CPU_SETSIZE - 1);
	if (*end == ',' && end[1])
		end++;
	else if (*end)
		die_arg("%s '%s': not a CPU list (like 0,2-3)", opt, s);
	*p = end;
}

unsigned parse_cpu_list(const char *opt, const char *s, unsigned *cpus,
			unsigned max)
{
	unsigned long lo, hi, c;
	const char *p = s;
	unsigned n = 0;

	while (*p) {
		cpu_range(opt, s, &p, &lo, &hi);
		for (c = lo; c <= hi; c++) {
			if (n == max)
				die_arg("%s '%s': more than %u CPUs", opt, s,
					max);
			cpus[n++] = c;
		}
	}
	if (!n)
		die_arg("%s '%s': empty", opt, s);
	return n;
}

bool find_name(const struct name_value *table, const char *s, int *value)
{
	const struct name_value *t;

	for (t = table; t->name; t++) {
		if (!strcmp(s, t->name)) {
			*value = t->value;
			return true;
		}
	}
	return false;
}

int parse_name(const char *opt, const char *s, const struct name_value *table)
{
	const struct name_value *t;
	char list[256] = "";
	const char *sep;
	size_t len = 0;
	int v;

	if (find_name(table, s, &v))
		return v;
	/* "a, b or c", from the table. */
	for (t = table; t->name && len < sizeof(list); t++) {
		sep = t[1].name ? ", " : " or ";
		len += snprintf(list + len, sizeof(list) - len, "%s%s",
				t == table ? "" : sep, t->name);
	}
	die_arg("%s '%s': must be %s", opt, s, list);
}

const char *name_of(const struct name_value *table, int value)
{
	const struct name_value *t;

	for (t = table; t->name; t++)
		if (t->value == value)
			return t->name;
	return "?";
}
