/*
 * test_opts.c - options structs: the size-first, append-only contract.
 */
#include <criterion/criterion.h>

#include "l3x_internal.h"

struct old_opts {
	size_t sz;
	int a;
};

struct new_opts {
	size_t sz;
	int a;
	int b;
	long c;
};

Test(opts, null_is_valid)
{
	cr_assert(l3x_opts_valid(NULL, sizeof(struct old_opts)));
}

Test(opts, same_or_older_size_is_valid)
{
	struct old_opts o = { .sz = sizeof(o), .a = 1 };

	cr_assert(l3x_opts_valid(&o, sizeof(struct old_opts)));
	cr_assert(l3x_opts_valid(&o, sizeof(struct new_opts)));
}

Test(opts, newer_struct_with_zero_tail_is_valid)
{
	struct new_opts n = { .sz = sizeof(n), .a = 1 };

	cr_assert(l3x_opts_valid(&n, sizeof(struct old_opts)));
}

Test(opts, newer_struct_asking_for_more_is_refused)
{
	/* c lies past the old struct (b would sit in its tail padding) */
	struct new_opts n = { .sz = sizeof(n), .c = 1 };

	cr_assert(!l3x_opts_valid(&n, sizeof(struct old_opts)));
}

Test(opts, size_smaller_than_its_own_field_is_refused)
{
	struct old_opts o = { .sz = 2 };

	cr_assert(!l3x_opts_valid(&o, sizeof(struct old_opts)));
}

Test(opts, opt_macro_gives_defaults_for_absent_or_zero_fields)
{
	struct new_opts n = { .sz = sizeof(n), .a = 7 };
	struct new_opts *p = &n;
	struct new_opts *none = NULL;

	cr_assert_eq(L3X_OPT(p, a, 3), 7);
	cr_assert_eq(L3X_OPT(p, b, 5), 5, "zero field takes the default");
	cr_assert_eq(L3X_OPT(none, a, 3), 3);
	/* a caller built against the old struct: fields past its sz */
	n.sz = offsetof(struct new_opts, b);
	n.b = 9;
	cr_assert_eq(L3X_OPT(p, b, 5), 5, "field past .sz was read");
}
