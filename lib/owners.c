/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * owners.c - who added which rule, so that the rules of a process that died
 * without taking them back (SIGKILL, a crash) can be reaped by the next one.
 *
 * A process is named by pid, start time and pid namespace (struct
 * l3x_owner_key), so a pid the kernel hands out again is another owner.
 * The l3x_owners map counts, per (rule, owner), the references that owner
 * holds in l3x_rules. An owner is dead when /proc has no such pid, or the
 * pid's start time differs; owners in another pid namespace cannot be
 * looked up from here and are left alone. Reaping claims a dead entry by
 * deleting it: of several processes reaping at once, exactly one succeeds
 * per entry, and only that one takes the references back (lib/rules.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "l3x_internal.h"

/* Keys read from one walk before we call it a livelock. */
#define WALK_LIMIT (1u << 20)

/* Start time of @pid (field 22 of /proc/PID/stat), or 0 if it is gone. */
static uint64_t start_time(uint32_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	/* The command name (field 2) may hold blanks and parentheses: count
	 * from the last ')'. Field 3 follows it. */
	p = strrchr(buf, ')');
	for (i = 2; p && i < 22; i++)
		p = strchr(p + 1, ' ');
	if (p)
		sscanf(p + 1, "%llu", &start);
	return start;
}

static uint64_t pidns_of_self(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) ? 0 : (uint64_t)st.st_ino;
}

static void key_self(struct l3x_owner_key *o, const struct l3x_rule_key *k)
{
	memset(o, 0, sizeof(*o)); /* padding is part of the key */
	o->rule = *k;
	o->pid = (uint32_t)getpid();
	o->start = start_time(o->pid);
	o->pidns = pidns_of_self();
}

/*
 * l3x_owners_add() / l3x_owners_del() - see l3x_internal.h. One
 * read-modify-write: a process changes only its own entries, from its
 * control thread, so nobody races it but a reaper, and a reaper only
 * touches entries of the dead.
 */
int l3x_owners_add(int fd, const struct l3x_rule_key *k)
{
	struct l3x_owner_key o;
	__u32 n = 0;

	key_self(&o, k);
	if (bpf_map_lookup_elem(fd, &o, &n) && errno != ENOENT)
		return -errno;
	n++;
	if (bpf_map_update_elem(fd, &o, &n, BPF_ANY))
		return errno == E2BIG ? -ENOSPC : -errno;
	return 0;
}

int l3x_owners_del(int fd, const struct l3x_rule_key *k)
{
	struct l3x_owner_key o;
	__u32 n;

	key_self(&o, k);
	if (bpf_map_lookup_elem(fd, &o, &n))
		return -errno;
	if (n <= 1)
		return bpf_map_delete_elem(fd, &o) ? -errno : 0;
	n--;
	return bpf_map_update_elem(fd, &o, &n, BPF_EXIST) ? -errno : 0;
}

/* Is the owner of @o gone? Unknown (another pid namespace): no. */
static bool owner_dead(const struct l3x_owner_key *o, uint64_t our_ns)
{
	if (o->pidns != our_ns)
		return false;
	return start_time(o->pid) != o->start;
}

/*
 * l3x_owners_claim_dead() - see l3x_internal.h. Walks l3x_owners; each
 * entry of a dead owner is deleted and, if the delete was ours, reported
 * through @fn with its count.
 */
int l3x_owners_claim_dead(int fd,
			  void (*fn)(const struct l3x_owner_key *o,
				     uint32_t count, void *arg),
			  void *arg)
{
	struct l3x_owner_key key, next, *prev = NULL;
	uint64_t ns = pidns_of_self();
	unsigned walked = 0;
	int claimed = 0;
	__u32 n;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		if (++walked > WALK_LIMIT)
			return -EAGAIN;
		key = next;
		prev = &key;
		if (!owner_dead(&key, ns) || bpf_map_lookup_elem(fd, &key, &n))
			continue;
		/* Deleting the current key restarts the kernel's walk from
		 * the first key on the next call: fine, we skip the live. */
		if (bpf_map_delete_elem(fd, &key))
			continue; /* another reaper got it */
		prev = NULL;
		fn(&key, n, arg);
		claimed++;
	}
	return errno == ENOENT ? claimed : -errno;
}
