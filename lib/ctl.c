/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ctl.c - control of a running steering program through its pinned maps:
 * rules and counters, with no program of our own and nothing attached.
 */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "l3x_internal.h"

struct l3x_ctl {
	struct l3x_maps maps;
};

struct l3x_ctl *l3x_ctl__open(const struct l3x_ctl_opts *opts)
{
	const char *ifname = L3X_OPT(opts, ifname, NULL);
	const char *dir = L3X_OPT(opts, pin_dir, NULL);
	char path[PATH_MAX];
	struct l3x_ctl *ctl;
	int err;

	if (!l3x_opts_valid(opts, sizeof(*opts)) || (!ifname && !dir) ||
	    (ifname && (!*ifname || strlen(ifname) >= IF_NAMESIZE))) {
		errno = EINVAL;
		return NULL;
	}
	err = l3x_pin_dir(path, sizeof(path), dir, 0, ifname);
	if (err) {
		errno = -err;
		return NULL;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return NULL;
	err = l3x_steer_open_pinned(path, &ctl->maps);
	if (err) {
		free(ctl);
		errno = -err;
		return NULL;
	}
	return ctl;
}

int l3x_ctl__add_rule(struct l3x_ctl *ctl, const struct l3x_rule *r)
{
	return l3x_rules_add(&ctl->maps, r);
}

int l3x_ctl__del_rule(struct l3x_ctl *ctl, const struct l3x_rule *r)
{
	return l3x_rules_del(&ctl->maps, r);
}

int l3x_ctl__rules(struct l3x_ctl *ctl, struct l3x_rule *out, uint32_t *refs,
		   size_t max)
{
	struct l3x_rule_key key, next;
	struct l3x_rule_key *prev = NULL;
	__u32 ref;
	size_t n = 0;

	while (!bpf_map_get_next_key(ctl->maps.rules, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(ctl->maps.rules, &key, &ref))
			continue; /* removed meanwhile */
		if (n < max) {
			l3x_rule_from_key(&key, &out[n]);
			if (refs)
				refs[n] = ref;
		}
		n++;
	}
	if (errno != ENOENT)
		return -errno;
	return (int)n;
}

int l3x_ctl__reap(struct l3x_ctl *ctl)
{
	return ctl ? l3x_rules_reap(&ctl->maps) : -EINVAL;
}

int l3x_ctl__stats(struct l3x_ctl *ctl, struct l3x_steer_stats *st)
{
	return l3x_stats_read(ctl->maps.stats, st);
}

int l3x_ctl__close(struct l3x_ctl *ctl)
{
	if (!ctl)
		return 0;
	l3x_maps_close(&ctl->maps);
	free(ctl);
	return 0;
}
