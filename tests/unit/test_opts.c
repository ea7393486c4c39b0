/*
 * test_opts.c - options structs: the size-first, append-only contract
 * (l3x_opts_valid) and reading fields with defaults (L3X_OPT), the
 * interface and directory of l3x_ctl__open() in its struct, and the
 * close convention (NULL is a no-op returning 0).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <criterion/criterion.h>

#include "l3x_internal.h"

/* What this library knows ... */
struct old_opts {
	size_t sz;
	int a;
};

/* ... and what a newer caller may pass: b lands in old_opts' tail
 * padding, c past the end of old_opts. */
struct new_opts {
	size_t sz;
	int a;
	int b;
	long c;
};

#define END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

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
	cr_assert(l3x_opts_valid(&n, END_OF(struct old_opts, a)));
}

Test(opts, newer_struct_asking_for_more_is_refused)
{
	struct new_opts n;

	memset(&n, 0, sizeof(n));
	n.sz = sizeof(n);
	n.c = 1;
	cr_assert(!l3x_opts_valid(&n, sizeof(struct old_opts)));
	/* the last byte counts too */
	memset(&n, 0, sizeof(n));
	n.sz = sizeof(n);
	((unsigned char *)&n)[sizeof(n) - 1] = 1;
	cr_assert(!l3x_opts_valid(&n, sizeof(struct old_opts)));
}

Test(opts, tail_padding_field_is_caught_when_our_size_ends_at_our_last_field)
{
	struct new_opts n;

	memset(&n, 0, sizeof(n));
	n.sz = sizeof(n);
	n.b = 1;
	/* sizeof(old_opts) covers b's bytes, so b would go unnoticed */
	cr_assert(l3x_opts_valid(&n, sizeof(struct old_opts)));
	cr_assert(!l3x_opts_valid(&n, END_OF(struct old_opts, a)));
}

Test(opts, size_smaller_than_its_own_field_is_refused)
{
	struct old_opts o = { .sz = 0 };

	cr_assert(!l3x_opts_valid(&o, sizeof(struct old_opts)));
	o.sz = sizeof(size_t) - 1;
	cr_assert(!l3x_opts_valid(&o, sizeof(struct old_opts)));
	o.sz = sizeof(size_t);
	cr_assert(l3x_opts_valid(&o, sizeof(struct old_opts)),
		  "a struct holding only .sz is valid");
}

Test(opts, l3x_opts_macro_zero_fills_and_sets_the_size)
{
	L3X_OPTS(l3x_capture_opts, o, .frame_count = 64);

	cr_assert_eq(o.sz, sizeof(struct l3x_capture_opts));
	cr_assert_eq(o.frame_count, 64);
	cr_assert_null(o.pin_dir);
	cr_assert_eq(o.ring_size, 0);
	cr_assert(l3x_opts_valid(&o, sizeof(o)));
}

Test(opts, opt_gives_the_field_when_present_and_set)
{
	struct new_opts n = { .sz = sizeof(n), .a = 7, .c = 9 };
	struct new_opts *p = &n;

	cr_assert_eq(L3X_OPT(p, a, 3), 7);
	cr_assert_eq(L3X_OPT(p, c, 5), 9);
}

Test(opts, opt_gives_the_default_for_null_opts)
{
	struct new_opts *none = NULL;

	cr_assert_eq(L3X_OPT(none, a, 3), 3);
}

Test(opts, opt_gives_the_default_for_a_zero_field)
{
	struct new_opts n = { .sz = sizeof(n), .a = 7 };
	struct new_opts *p = &n;

	cr_assert_eq(L3X_OPT(p, b, 5), 5);
}

Test(opts, opt_gives_the_default_for_a_field_beyond_sz)
{
	struct new_opts n = { .sz = sizeof(n), .a = 7, .b = 9, .c = 11 };
	struct new_opts *p = &n;

	/* a caller built against a struct that ended before b */
	n.sz = offsetof(struct new_opts, b);
	cr_assert_eq(L3X_OPT(p, b, 5), 5, "field past .sz was read");
	cr_assert_eq(L3X_OPT(p, c, 6), 6, "field past .sz was read");
	/* .sz covering part of a field is not enough */
	n.sz = offsetof(struct new_opts, c) + sizeof(n.c) - 1;
	cr_assert_eq(L3X_OPT(p, c, 6), 6, "half-covered field was read");
	cr_assert_eq(L3X_OPT(p, b, 5), 9);
	cr_assert_eq(L3X_OPT(p, a, 3), 7);
}

Test(opts, opt_has_says_whether_sz_covers_the_field)
{
	struct new_opts n = { .sz = sizeof(n) }, *p = &n, *none = NULL;

	cr_assert(!L3X_OPT_HAS(none, a));
	cr_assert(L3X_OPT_HAS(p, c), "a zero field is still there");
	n.sz = END_OF(struct new_opts, b);
	cr_assert(L3X_OPT_HAS(p, b));
	cr_assert(!L3X_OPT_HAS(p, c));
}

/* l3x_ctl__open() takes its directory and interface in an opts struct. */
Test(opts, ctl_open_checks_its_opts)
{
	struct {
		struct l3x_ctl_opts o;
		uint64_t newer;
	} big = { .o.sz = sizeof(big), .newer = 1 };

	l3x_set_print(NULL);
	L3X_OPTS(l3x_ctl_opts, none, .pin_dir = "/nonexistent/l3x");
	cr_assert_null(l3x_ctl__open(&none));
	cr_assert_eq(errno, ENOENT, "errno %d", errno);
	L3X_OPTS(l3x_ctl_opts, empty, .ifname = "", .pin_dir = "/nonexistent");
	cr_assert_null(l3x_ctl__open(&empty));
	cr_assert_eq(errno, EINVAL);
	L3X_OPTS(l3x_ctl_opts, longname,
		 .ifname = "a-name-longer-than-ifnamsiz",
		 .pin_dir = "/nonexistent");
	cr_assert_null(l3x_ctl__open(&longname));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(l3x_ctl__open(&big.o));
	cr_assert_eq(errno, EINVAL, "unknown non-zero trailing bytes");
	cr_assert_eq(l3x_ctl__close(NULL), 0);
}

/* Every __close takes NULL and returns 0. */
Test(opts, every_close_of_null_returns_zero)
{
	cr_assert_eq(l3x_capture__close(NULL), 0);
	cr_assert_eq(l3x_capture_handle__close(NULL), 0);
	cr_assert_eq(l3x_stack__close(NULL), 0);
	cr_assert_eq(l3x_worker__close(NULL), 0);
	cr_assert_eq(l3x_stream__close(NULL), 0);
	cr_assert_eq(l3x_stream__abort(NULL), 0);
	cr_assert_eq(l3x_udp__close(NULL), 0);
	cr_assert_eq(l3x_ctl__close(NULL), 0);
}
