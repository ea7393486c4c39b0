/*
 * sys_arch.c - what lwIP (NO_SYS=1) asks of the platform: a millisecond
 * clock for its timeouts, where its assertions go, random numbers, and the
 * keyed hashes of its hooks (l3x_hooks.h; SipHash and its keys: hash.c).
 */
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lwip/opt.h"
#include "lwip/sys.h"

#include "hash.h"
#include "l3x_internal.h"
#include "l3x_hooks.h"

/* Family byte, two IPv6 addresses, two ports. */
#define L3X_TUPLE_MAX (1 + 2 * 16 + 4)

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

/* The 4-tuple as bytes, the same for the same tuple whatever is in the
 * unused part of an ip_addr_t: family, addresses, ports. */
static size_t tuple_bytes(uint8_t *buf, const ip_addr_t *local_ip,
			  u16_t local_port, const ip_addr_t *remote_ip,
			  u16_t remote_port)
{
	size_t n = 1, alen = IP_IS_V6(local_ip) ? 16 : 4;

	buf[0] = IP_IS_V6(local_ip) ? 6 : 4;
	if (alen == 16) {
		memcpy(buf + n, ip_2_ip6(local_ip)->addr, 16);
		memcpy(buf + n + 16, ip_2_ip6(remote_ip)->addr, 16);
	} else {
		memcpy(buf + n, &ip_2_ip4(local_ip)->addr, 4);
		memcpy(buf + n + 4, &ip_2_ip4(remote_ip)->addr, 4);
	}
	n += 2 * alen;
	memcpy(buf + n, &local_port, 2);
	memcpy(buf + n + 2, &remote_port, 2);
	return n + 4;
}

/* The keyed hash for @use of the 4-tuple. */
static u32_t tuple_hash(enum l3x_hash_use use, const ip_addr_t *local_ip,
			u16_t local_port, const ip_addr_t *remote_ip,
			u16_t remote_port)
{
	uint8_t buf[L3X_TUPLE_MAX];
	size_t n =
		tuple_bytes(buf, local_ip, local_port, remote_ip, remote_port);

	return (u32_t)l3x_hash(use, buf, n);
}

u32_t l3x_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
		  const ip_addr_t *remote_ip, u16_t remote_port)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return tuple_hash(L3X_HASH_TCP_ISN, local_ip, local_port, remote_ip,
			  remote_port) +
	       (u32_t)((uint64_t)ts.tv_sec * 250000u +
		       (uint64_t)ts.tv_nsec / 4000u);
}

u32_t l3x_tcp_pcb_hash(const ip_addr_t *local_ip, u16_t local_port,
		       const ip_addr_t *remote_ip, u16_t remote_port)
{
	return tuple_hash(L3X_HASH_TCP_PCB, local_ip, local_port, remote_ip,
			  remote_port);
}

u32_t l3x_tcp_ts_offset(const ip_addr_t *local_ip, u16_t local_port,
			const ip_addr_t *remote_ip, u16_t remote_port)
{
	return tuple_hash(L3X_HASH_TCP_TS, local_ip, local_port, remote_ip,
			  remote_port);
}

u8_t l3x_tcp_in_state;

uint64_t l3x_udp_bad[3];
u32_t l3x_zone_in;

void l3x_udp_input_bad(u8_t why)
{
	if (why < sizeof(l3x_udp_bad) / sizeof(l3x_udp_bad[0]))
		l3x_udp_bad[why]++;
}
