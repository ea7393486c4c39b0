/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * epoch.h - deferred freeing of objects the engine reads without a lock
 * (the software rule set, the set of bound UDP sockets). A writer builds a
 * new immutable object, publishes its pointer, and retires the old one
 * here; the old one is freed once the engine has finished every turn that
 * could still be reading it. Nobody waits: retiring never blocks on the
 * engine, it only frees what has become safe.
 *
 * The engine counts its turns in one counter, odd while a turn runs
 * (l3x_epoch_enter/exit around everything that reads such a pointer). An
 * object retired when the counter read e is safe once the counter reaches
 * e + 1 if e was odd (that turn has ended), at once if e was even (no turn
 * was running, and the next one reads the new pointer).
 */
#ifndef L3X_EPOCH_H
#define L3X_EPOCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "l3x_internal.h"

/* The first member of a retirable object, which is one malloc()ed block:
 * it is freed with free() on this member's address. */
struct l3x_retired {
	struct l3x_retired *next;
	uint64_t epoch; /* the counter when retired */
};

struct l3x_epoch {
	_Atomic uint64_t turn; /* odd while the engine runs a turn */
	pthread_mutex_t lock;  /* writers: the retired list */
	struct l3x_retired *retired;
};

/* The engine starts a turn: seq_cst, so a writer that reads the counter
 * even after publishing its new pointer knows this turn reads that one. */
static inline void l3x_epoch_enter(struct l3x_epoch *ep)
{
	atomic_fetch_add_explicit(&ep->turn, 1, memory_order_seq_cst);
}

/* The engine ends a turn. Release: pairs with the acquire in the writers'
 * collection; every read of an old pointer is done before the count. */
static inline void l3x_epoch_exit(struct l3x_epoch *ep)
{
	atomic_fetch_add_explicit(&ep->turn, 1, memory_order_release);
}

L3X_HIDDEN void l3x_epoch_init(struct l3x_epoch *ep);

/*
 * l3x_epoch_retire() - @r's object was replaced: the caller has already
 * published the new pointer with a seq_cst store. Frees @r's object and
 * every earlier one as soon as no turn can hold them. NULL is a no-op.
 * Any thread but the engine's.
 */
L3X_HIDDEN void l3x_epoch_retire(struct l3x_epoch *ep, struct l3x_retired *r);

/* Free everything retired: the engine must not run any more. */
L3X_HIDDEN void l3x_epoch_fini(struct l3x_epoch *ep);

#endif /* L3X_EPOCH_H */
