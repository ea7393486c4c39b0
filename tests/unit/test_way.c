/*
 * test_way.c - the table of ways back (lib/way.c): a way is found by its
 * flow's key alone, a second add of the same key shares the first way
 * (its header is not overwritten), the last reference frees it, and a
 * chain that is full refuses a new way instead of writing over another
 * flow's. Memory is counted (lib/mem.c) and returns to where it started.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "hash.h"
#include "mem.h"
#include "way.h"

static struct l3x_flow_key key4(uint32_t client, uint16_t cport)
{
	struct l3x_flow_key k = {
		.family = 4, .proto = 6, .lport = 80, .rport = cport
	};

	memcpy(k.laddr, (uint8_t[]){ 198, 51, 100, 1 }, 4);
	memcpy(k.raddr, &client, 4);
	return k;
}

static const uint8_t hdr_a[14] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 8, 0
};
static const uint8_t hdr_b[14] = {
	9, 9, 9, 9, 9, 9, 7, 8, 9, 10, 11, 12, 8, 0
};

Test(way, found_by_key_shared_on_a_second_add_freed_by_the_last_put)
{
	uint64_t mem0 = l3x_mem_total();
	struct l3x_ways *t = l3x_ways_open(100);
	struct l3x_flow_key k = key4(0x01020304, 5000), other = k;
	struct l3x_way *w1, *w2;
	int err = 0;

	cr_assert_not_null(t);
	w1 = l3x_ways_add(t, &k, hdr_a, sizeof(hdr_a), 0, 3, &err);
	cr_assert_not_null(w1);
	cr_assert_eq(l3x_ways_find(t, &k), w1);
	other.rport = 5001;
	cr_assert_null(l3x_ways_find(t, &other), "another port found it");
	/* A second add (a spoofer's frame of the same key) changes nothing. */
	w2 = l3x_ways_add(t, &k, hdr_b, sizeof(hdr_b), 1, 7, &err);
	cr_assert_eq(w2, w1);
	cr_assert_eq(memcmp(w1->hdr, hdr_a, sizeof(hdr_a)), 0, "overwritten");
	cr_assert_eq(w1->qi, 3);
	cr_assert_eq(l3x_ways_count(t), 1);
	l3x_way_put(w2);
	cr_assert_eq(l3x_ways_find(t, &k), w1, "freed with a reference left");
	l3x_way_put(w1);
	cr_assert_null(l3x_ways_find(t, &k));
	cr_assert_eq(l3x_ways_count(t), 0);
	l3x_way_put(NULL);
	l3x_ways_close(t);
	cr_assert_eq(l3x_mem_total(), mem0, "memory not given back");
}

Test(way, a_full_chain_refuses_and_keeps_the_ways_it_has)
{
	struct l3x_ways *t = l3x_ways_open(1); /* 1024 buckets */
	struct l3x_way *w[17], *extra;
	struct l3x_flow_key keys[17], k;
	uint32_t client = 1, n = 0, i;
	int err = 0;

	cr_assert_not_null(t);
	/* Keys that share bucket 0 under this process's secret key. */
	while (n < 17 && client < (1u << 24)) {
		k = key4(client++, 5000);
		if (((uint32_t)l3x_hash(L3X_HASH_WAY, &k, sizeof(k)) & 1023) ==
		    0)
			keys[n++] = k;
	}
	cr_assert_eq(n, 17);
	for (i = 0; i < 16; i++) {
		w[i] = l3x_ways_add(t, &keys[i], hdr_a, sizeof(hdr_a), 0, 0,
				    &err);
		cr_assert_not_null(w[i], "way %u refused", i);
	}
	extra = l3x_ways_add(t, &keys[16], hdr_b, sizeof(hdr_b), 0, 0, &err);
	cr_assert_null(extra);
	cr_assert_eq(err, -ENOSPC);
	for (i = 0; i < 16; i++) {
		cr_assert_eq(l3x_ways_find(t, &keys[i]), w[i]);
		cr_assert_eq(memcmp(w[i]->hdr, hdr_a, sizeof(hdr_a)), 0);
	}
	/* Room again once one goes. */
	l3x_way_put(w[0]);
	w[16] = l3x_ways_add(t, &keys[16], hdr_b, sizeof(hdr_b), 0, 0, &err);
	cr_assert_not_null(w[16]);
	l3x_ways_close(t);
}

Test(way, the_zone_is_part_of_the_key)
{
	struct l3x_ways *t = l3x_ways_open(100);
	struct l3x_flow_key k100 = key4(0x01020304, 5000), k200 = k100;
	struct l3x_way *w100, *w200;
	int err = 0;

	cr_assert_not_null(t);
	k100.zone = 100;
	k200.zone = 200;
	w100 = l3x_ways_add(t, &k100, hdr_a, sizeof(hdr_a), 1, 0, &err);
	cr_assert_not_null(w100);
	cr_assert_null(l3x_ways_find(t, &k200),
		       "VLAN 200 found VLAN 100's way");
	/* The same 4-tuple in another zone is another way, its own header. */
	w200 = l3x_ways_add(t, &k200, hdr_b, sizeof(hdr_b), 1, 0, &err);
	cr_assert_not_null(w200);
	cr_assert_neq(w200, w100);
	cr_assert_eq(l3x_ways_find(t, &k100), w100);
	cr_assert_eq(l3x_ways_find(t, &k200), w200);
	cr_assert_eq(memcmp(w200->hdr, hdr_b, sizeof(hdr_b)), 0);
	cr_assert_eq(memcmp(w100->hdr, hdr_a, sizeof(hdr_a)), 0);
	cr_assert_eq(l3x_ways_count(t), 2);
	l3x_ways_close(t);
}
