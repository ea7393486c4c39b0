/* lwIP architecture glue for l3x: Linux, gcc/clang, little or big endian
 * from the compiler. */
#ifndef L3X_LWIP_ARCH_CC_H
#define L3X_LWIP_ARCH_CC_H

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <errno.h>
#include <sys/time.h>

#define LWIP_TIMEVAL_PRIVATE 0
#define LWIP_ERRNO_INCLUDE   <errno.h>

/* <endian.h> (through stdlib.h) already defines BYTE_ORDER. */
#include <endian.h>

/* lwIP's own checks; never print from the library's fast path. */
#define LWIP_PLATFORM_DIAG(x)                                                  \
	do {                                                                   \
	} while (0)
void l3x_lwip_assert(const char *msg, const char *file, int line);
#define LWIP_PLATFORM_ASSERT(x) l3x_lwip_assert((x), __FILE__, __LINE__)

/* From the kernel's CSPRNG: the PCB hash secret and ephemeral ports must
 * not be guessable from outside (lib/lwip/sys_arch.c). */
unsigned int l3x_lwip_rand(void);
#define LWIP_RAND() ((u32_t)l3x_lwip_rand())

/* lwIP's heap, counted (lib/mem.c; lwipopts.h MEM_CUSTOM_ALLOCATOR). */
void *l3x_lwip_malloc(size_t n);
void *l3x_lwip_calloc(size_t n, size_t sz);
void l3x_lwip_free(void *p);

#endif
