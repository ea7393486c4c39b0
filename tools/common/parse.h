/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * parse.h - option values as every tool reads them: whole numbers in a
 * range, positive amounts, CPU lists, and names out of a table. Each parser
 * names the option and the value it refuses in one line and exits with the
 * tool's status for bad arguments (tool.h). Any thread: they keep no
 * state (in practice the main thread, reading the command line).
 */
#ifndef L3X_TOOL_PARSE_H
#define L3X_TOOL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * @s as a whole decimal number from @min to @max, for option @opt. Refused:
 * "OPT 'S': not a whole number" (signs, blanks, overflow included), and
 * out of range "at most MAX" (@min 0), "at least MIN" (@max UINT64_MAX) or
 * "must be between MIN and MAX".
 */
uint64_t parse_uint(const char *opt, const char *s, uint64_t min, uint64_t max);

/* @s as a number above 0 and at most @max; refused with
 * "OPT 'S': must be WHAT". */
double parse_positive(const char *opt, const char *s, double max,
		      const char *what);

/* A CPU list like "0,2-3" into @cpus (at most @max of them). Returns how
 * many; an empty, malformed or too long list is refused. */
unsigned parse_cpu_list(const char *opt, const char *s, unsigned *cpus,
			unsigned max);

/* One entry of a table of names, the last one { NULL }. */
struct name_value {
	const char *name;
	int value;
};

/* The value named @s in @table: true and *@value, or false. */
bool find_name(const struct name_value *table, const char *s, int *value);

/* The value named @s, or refused with "OPT 'S': must be a, b or c". */
int parse_name(const char *opt, const char *s, const struct name_value *table);

/* The name of @value in @table; "?" when it has none. */
const char *name_of(const struct name_value *table, int value);

#endif /* L3X_TOOL_PARSE_H */
