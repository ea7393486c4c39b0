/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * hash.c - SipHash-2-4 and the process's keys (hash.h). The keys come from
 * getrandom() once, under pthread_once, so any thread may hash first; a
 * fork()ed child keeps its parent's keys (its tables are copies too).
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"

static uint64_t keys[L3X_HASH_USES][2];
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

/* No getrandom (seccomp): still different per process and per boot,
 * though no longer secret. */
static void keys_weak(uint8_t *p, size_t from, size_t to)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	srandom((unsigned)(ts.tv_nsec ^ ts.tv_sec ^ getpid()));
	while (from < to)
		p[from++] = (uint8_t)random();
	pr_warn("getrandom failed: hash keys are not secret\n");
}

static void random_fill(uint8_t *p, size_t len)
{
	size_t got = 0;
	ssize_t r;

	/* Never blocks once the kernel's pool is ready (it is after boot);
	 * a signal is the only short read to retry. */
	while (got < len) {
		r = getrandom(p + got, len - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			keys_weak(p, got, len);
			return;
		}
		got += (size_t)r;
	}
}

static void keys_make(void)
{
	random_fill((uint8_t *)keys, sizeof(keys));
}

void l3x_hash_new_key(uint64_t key[2])
{
	random_fill((uint8_t *)key, 2 * sizeof(uint64_t));
}

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

uint64_t l3x_siphash(const uint64_t k[2], const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0];
	uint64_t v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0];
	uint64_t v3 = 0x7465646279746573ull ^ k[1];
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, left = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, in + i, 8);
		m = le64toh(m);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	m = 0;
	memcpy(&m, in + i, left);
	b |= le64toh(m);
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

uint64_t l3x_hash(enum l3x_hash_use use, const void *in, size_t len)
{
	pthread_once(&keys_once, keys_make);
	return l3x_siphash(keys[use], in, len);
}
