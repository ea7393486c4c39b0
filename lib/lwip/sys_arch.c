/*
 * sys_arch.c - what lwIP (NO_SYS=1) asks of the platform: a millisecond
 * clock for its timeouts, and where its assertions go.
 */
#include <time.h>

#include "lwip/opt.h"
#include "lwip/sys.h"

#include "l3x_internal.h"

u32_t sys_now(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC_COARSE costs no syscall and is fine for
	 * millisecond timers. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (u32_t)(ts.tv_sec * 1000u + ts.tv_nsec / 1000000u);
}

void l3x_lwip_assert(const char *msg, const char *file, int line)
{
	pr_warn("lwIP assertion \"%s\" failed at %s:%d\n", msg, file, line);
	abort();
}
