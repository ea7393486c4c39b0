/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * link_cb.c - the callback source: IP packets come in through
 * l3x_stack__input() (the engine matches them against the stack's rules
 * in software, lib/rules.c) and leave through the application's output
 * function, one whole packet per call. Nothing to poll.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine.h"

struct link_cb {
	struct l3x_link link;
	l3x_output_fn_t fn;
	void *ctx;
	uint8_t buf[L3X_PKT_MAX]; /* a chained packet made whole */
};

static int cb_rx(struct l3x_link *l)
{
	(void)l;
	return 0; /* packets arrive through l3x_stack__input() */
}

static int cb_output(struct l3x_link *l, struct pbuf *p, const ip_addr_t *dst)
{
	struct link_cb *lc = (struct link_cb *)l;
	int err;

	(void)dst;
	err = lc->fn(lc->ctx, l3x_pbuf_flat(p, lc->buf), p->tot_len);
	if (err > 0)
		err = 0;
	l3x_count_tx(l->st, err, p->tot_len);
	return err;
}

static void cb_close(struct l3x_link *l)
{
	free(l);
}

static const struct l3x_link_ops cb_ops = {
	.rx = cb_rx,
	.output = cb_output,
	.close = cb_close,
};

struct l3x_link *l3x_link_cb_open(struct l3x_stack *st, l3x_output_fn_t fn,
				  void *ctx)
{
	struct link_cb *lc = calloc(1, sizeof(*lc));

	if (!lc)
		return NULL;
	lc->link.ops = &cb_ops;
	lc->link.st = st;
	lc->fn = fn;
	lc->ctx = ctx;
	return &lc->link;
}
