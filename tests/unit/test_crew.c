/*
 * test_crew.c - the workers' crew and main loop that l3x-serve and
 * l3x-relay share (tools/common/stack.c, tool.c): each worker started
 * with its own struct, main waiting for every start, a wake reaching
 * every worker, the join closing what the start opened, the counters
 * summed across workers, and the main loop's end and turns.
 */
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "stack.h"
#include "tool.h"

TOOL_DEFINE("test_crew", "usage: test_crew\n", 2);

#define NW 4

struct wstats {
	uint64_t a, b;
};

struct worker {
	struct crew_member m; /* first, as in the tools */
	struct crew *crew;
	unsigned id;
	int woken; /* read by main after the join */
	struct wstats n;
};

/* Says its start is done, then sleeps on its eventfd until woken. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pollfd p = { .fd = w->m.stop_fd, .events = POLLIN };
	uint64_t v;

	w->n.a = w->id + 1;
	w->n.b = 10 * (w->id + 1);
	crew_opened(w->crew);
	if (poll(&p, 1, 5000) == 1 && read(w->m.stop_fd, &v, sizeof(v)) == 8)
		w->woken = (int)v;
	return NULL;
}

Test(crew, alloc_gives_zeroed_workers_with_no_eventfd)
{
	struct worker *w = crew_alloc(NW, sizeof(*w));
	unsigned i;

	for (i = 0; i < NW; i++) {
		cr_assert_eq(w[i].m.stop_fd, -1);
		cr_assert_not(w[i].m.started);
		cr_assert_eq(w[i].id, 0);
	}
	/* Joining workers never started closes nothing and waits for
	 * nothing. */
	crew_join_all(w, sizeof(*w), NW);
	cr_assert_eq(w[0].m.stop_fd, -1);
	free(w);
}

Test(crew, each_worker_gets_its_struct_is_woken_and_joined, .timeout = 10)
{
	struct crew crew = CREW_INIT;
	struct worker *w = crew_alloc(NW, sizeof(*w));
	struct wstats sum;
	unsigned i;

	for (i = 0; i < NW; i++) {
		w[i].crew = &crew;
		w[i].id = i;
	}
	crew_start_all(&crew, w, sizeof(*w), NW, worker_main);
	/* Every start is done once crew_start_all() returns. */
	cr_assert_eq(crew.opened, NW);
	for (i = 0; i < NW; i++) {
		cr_assert(w[i].m.started);
		cr_assert_geq(w[i].m.stop_fd, 0);
		cr_assert_eq(w[i].n.a, i + 1, "worker %u ran on another struct",
			     i);
	}
	counters_sum(&sum, sizeof(sum), &w[0].n, sizeof(*w), NW);
	cr_assert_eq(sum.a, 1 + 2 + 3 + 4);
	cr_assert_eq(sum.b, 10 + 20 + 30 + 40);
	crew_wake_all(w, sizeof(*w), NW);
	crew_join_all(w, sizeof(*w), NW);
	for (i = 0; i < NW; i++) {
		cr_assert_eq(w[i].woken, 1, "worker %u not woken once", i);
		cr_assert_not(w[i].m.started);
		cr_assert_eq(w[i].m.stop_fd, -1);
	}
	free(w);
}

static void count_turn(void *arg, double dt)
{
	cr_assert_geq(dt, 0);
	++*(int *)arg;
}

Test(crew, run_until_stop_ends_after_its_seconds_and_turns, .timeout = 10)
{
	double t0 = now_s(), t;
	int turns = 0;

	run_until_stop(0.5, true, count_turn, &turns);
	t = now_s() - t0;
	cr_assert(t >= 0.5 && t < 2.0, "ran %.2f s for 0.5", t);
	cr_assert_geq(turns, 3, "%d turns in 0.5 s at 100 ms", turns);
}

Test(crew, run_until_stop_ends_on_a_stop_request, .timeout = 10)
{
	double t0 = now_s();

	request_stop();
	run_until_stop(0, true, NULL, NULL);
	cr_assert_lt(now_s() - t0, 1.0);
}
