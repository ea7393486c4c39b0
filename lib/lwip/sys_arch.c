/*
 * sys_arch.c - what lwIP (NO_SYS=1) asks of the platform: a millisecond
 * clock for its timeouts, and where its assertions go.
 */
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lwip/opt.h"
#include "lwip/sys.h"

#include "l3x_internal.h"
#include "l3x_hooks.h"

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

unsigned int l3x_lwip_rand(void)
{
	unsigned int v = 0;

	/* Never blocks after boot; a short read leaves v partly zero, which
	 * only weakens, never breaks, what uses it. */
	if (getrandom(&v, sizeof(v), 0) < 0)
		v = (unsigned int)random();
	return v;
}

/* SipHash-2-4 of @in under @k (the reference algorithm, compact). */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = ROTL(v1, 13);                                             \
		v1 ^= v0;                                                      \
		v0 = ROTL(v0, 32);                                             \
		v2 += v3;                                                      \
		v3 = ROTL(v3, 16);                                             \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = ROTL(v3, 21);                                             \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = ROTL(v1, 17);                                             \
		v1 ^= v2;                                                      \
		v2 = ROTL(v2, 32);                                             \
	} while (0)

static uint64_t siphash(const uint64_t k[2], const uint8_t *in, size_t len)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0],
		 v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0],
		 v3 = 0x7465646279746573ull ^ k[1];
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, left = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, in + i, 8);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	m = 0;
	memcpy(&m, in + i, left);
	b |= m;
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

u32_t l3x_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
		  const ip_addr_t *remote_ip, u16_t remote_port)
{
	static uint64_t key[2];
	static int keyed;
	struct timespec ts;
	uint8_t buf[2 * sizeof(ip_addr_t) + 4];

	if (!keyed) {
		if (getrandom(key, sizeof(key), 0) != sizeof(key))
			key[0] = (uint64_t)random() << 32 | (uint64_t)random();
		keyed = 1;
	}
	memcpy(buf, local_ip, sizeof(ip_addr_t));
	memcpy(buf + sizeof(ip_addr_t), remote_ip, sizeof(ip_addr_t));
	memcpy(buf + 2 * sizeof(ip_addr_t), &local_port, 2);
	memcpy(buf + 2 * sizeof(ip_addr_t) + 2, &remote_port, 2);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u32_t)siphash(key, buf, sizeof(buf)) +
	       (u32_t)((uint64_t)ts.tv_sec * 250000u +
		       (uint64_t)ts.tv_nsec / 4000u);
}
