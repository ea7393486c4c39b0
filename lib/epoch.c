/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * epoch.c - the one deferred-free helper (see epoch.h): a list of retired
 * objects, each freed once the engine's turn counter shows that no turn
 * can still be reading it. The list holds at most what was retired during
 * the turn under way, plus one: every retire frees what has become safe.
 */
#include <stdlib.h>

#include "epoch.h"

void l3x_epoch_init(struct l3x_epoch *ep)
{
	atomic_init(&ep->turn, 0);
	pthread_mutex_init(&ep->lock, NULL);
	ep->retired = NULL;
}

/* Free what no turn can hold any more (every entry when @all). Caller
 * holds the lock, or is the only thread left. */
static void collect(struct l3x_epoch *ep, bool all)
{
	/* Acquire: pairs with the release in l3x_epoch_exit(); the turn's
	 * reads of the old pointers are done. */
	uint64_t now = atomic_load_explicit(&ep->turn, memory_order_acquire);
	struct l3x_retired **pp = &ep->retired, *r;

	while ((r = *pp)) {
		if (all || now >= r->epoch + (r->epoch & 1)) {
			*pp = r->next;
			free(r);
		} else {
			pp = &r->next;
		}
	}
}

void l3x_epoch_retire(struct l3x_epoch *ep, struct l3x_retired *r)
{
	if (r) {
		/* Seq_cst: no older than the caller's seq_cst store of the
		 * new pointer, so a turn that starts after this read reads
		 * the new one. */
		r->epoch = atomic_load(&ep->turn);
	}
	pthread_mutex_lock(&ep->lock);
	if (r) {
		r->next = ep->retired;
		ep->retired = r;
	}
	collect(ep, false);
	pthread_mutex_unlock(&ep->lock);
}

void l3x_epoch_fini(struct l3x_epoch *ep)
{
	collect(ep, true);
	pthread_mutex_destroy(&ep->lock);
}
