/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * opts.c - options structs start with their size and are only appended
 * to. A caller built against an older l3x passes a smaller struct: the
 * fields it lacks take their defaults (L3X_OPT). A caller built against a
 * newer l3x may pass a larger one: that is fine as long as every byte we
 * do not know is zero, else it asked for something this library cannot do.
 */
#include "l3x_internal.h"

/*
 * l3x_opts_valid() - see l3x_internal.h.
 * @our_sz is best the end of our last field (offsetof + sizeof), not
 * sizeof: a field a newer l3x appends inside our tail padding is then
 * checked too. Any thread.
 */
bool l3x_opts_valid(const void *opts, size_t our_sz)
{
	const unsigned char *p = opts;
	size_t sz, i;

	if (!opts)
		return true;
	sz = *(const size_t *)opts;
	if (sz < sizeof(size_t))
		return false;
	for (i = our_sz; i < sz; i++)
		if (p[i])
			return false;
	return true;
}
