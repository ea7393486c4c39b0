/*
 * test_hash.c - the keyed hashes of the tables a peer fills (lib/hash.c):
 * SipHash-2-4 gives the reference output, and the keys are the process's
 * own: two processes put the same tuples in different buckets of lwIP's
 * TCP PCB hash and of the UDP flow table, while one process always puts a
 * tuple in the same bucket.
 */
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lwip/ip_addr.h"

#include "engine.h"
#include "hash.h"
#include "l3x_hooks.h"

#define N 64

/* The vector of the SipHash paper (appendix A): key 00..0f, message
 * 00..0e. */
Test(hash, siphash_gives_the_reference_output)
{
	uint64_t k[2];
	uint8_t key[16], msg[15];
	unsigned i;

	for (i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	memcpy(k, key, 16);
	cr_assert_eq(l3x_siphash(k, msg, sizeof(msg)), 0xa129ca6149be45e5ull);
}

/* One client and destination; the tuples differ in the client's port, as
 * a flood's would. */
static void tuple(ip_addr_t *l, ip_addr_t *r, uint8_t *ca, uint8_t *da)
{
	IP_ADDR4(l, 198, 51, 100, 7);
	IP_ADDR4(r, 192, 0, 2, 1);
	memset(ca, 0, 16);
	memset(da, 0, 16);
	memcpy(ca, &ip_2_ip4(r)->addr, 4);
	memcpy(da, &ip_2_ip4(l)->addr, 4);
}

struct buckets {
	uint32_t tcp[N], udp[N];
};

/* The buckets of N tuples in this process's tables, twice over. */
static void buckets(struct buckets *b)
{
	uint8_t ca[16], da[16];
	ip_addr_t l, r;
	unsigned i;

	tuple(&l, &r, ca, da);
	for (i = 0; i < N; i++) {
		b->tcp[i] = l3x_tcp_pcb_hash(&l, 80, &r, (u16_t)(40000 + i)) &
			    (TCP_PCB_HASH_SIZE - 1);
		b->udp[i] =
			l3x_udp_flow_hash(4, ca, (uint16_t)(40000 + i), da, 53);
		cr_assert_eq(b->tcp[i],
			     l3x_tcp_pcb_hash(&l, 80, &r, (u16_t)(40000 + i)) &
				     (TCP_PCB_HASH_SIZE - 1),
			     "a tuple moved to another bucket");
		cr_assert_eq(b->udp[i],
			     l3x_udp_flow_hash(4, ca, (uint16_t)(40000 + i), da,
					       53));
	}
}

/* Run buckets() in a new process (keys not yet drawn there, as this one
 * never hashed) and read its answer. */
static void buckets_of_child(struct buckets *b)
{
	int fd[2], status;
	pid_t pid;
	ssize_t n;

	cr_assert_eq(pipe(fd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		close(fd[0]);
		buckets(b);
		_exit(write(fd[1], b, sizeof(*b)) == sizeof(*b) ? 0 : 1);
	}
	close(fd[1]);
	n = read(fd[0], b, sizeof(*b));
	close(fd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status));
	cr_assert_eq(n, (ssize_t)sizeof(*b));
}

Test(hash, keys_differ_from_process_to_process)
{
	struct buckets a, b;
	unsigned i, same_tcp = 0, same_udp = 0, low = 0;

	buckets_of_child(&a);
	buckets_of_child(&b);
	for (i = 0; i < N; i++) {
		same_tcp += a.tcp[i] == b.tcp[i];
		same_udp += a.udp[i] == b.udp[i];
		low += (a.udp[i] & 1023) == (b.udp[i] & 1023);
	}
	/* Same keys would agree on all 64; different ones on about none
	 * (64 / 262144 expected for TCP, 64 / 2^32 for UDP, 64 / 1024 in
	 * the smallest UDP table). */
	cr_assert_leq(same_tcp, 2, "%u of %u tuples in the same TCP bucket",
		      same_tcp, N);
	cr_assert_leq(same_udp, 2, "%u of %u UDP hashes equal", same_udp, N);
	cr_assert_leq(low, 6, "%u of %u in the same of 1024 UDP buckets", low,
		      N);
}
