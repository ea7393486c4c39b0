/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * capture.c - raw capture of matched frames: the first user of the data
 * path. A capture object owns the steering on one interface (lib/steer.c)
 * and the rules it added; each handle is one AF_XDP socket on one RX queue
 * (lib/xsk.c), read by the thread that opened it, straight from the RX
 * ring, frames given back straight to the fill ring.
 */
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>

#include "l3x_internal.h"
#include "xsk.h"

struct l3x_capture {
	char ifname[IF_NAMESIZE];
	int ifindex;
	int nqueues;
	struct l3x_steer *steer;
	struct l3x_xsk_cfg xcfg; /* template for handles */
	unsigned nhandles;
	uint8_t open_queues[L3X_MAX_QUEUES / 8];
	struct l3x_ruleset *rules; /* added by us: removed on close */
};

struct l3x_capture_handle {
	struct l3x_xsk *xsk;
	struct l3x_capture *cap;
};

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* RX queues of @ifname from ETHTOOL_GCHANNELS, which answers for the
 * caller's network namespace (sysfs answers for the one it was mounted
 * in); sysfs when the driver has no channels. */
static int ethtool_rx_queues(const char *ifname)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr = {};
	int fd, n;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ch;
	n = ioctl(fd, SIOCETHTOOL, &ifr)
		    ? 0
		    : (int)(ch.rx_count + ch.combined_count);
	close(fd);
	return n;
}

static int count_rx_queues(const char *ifname)
{
	char path[128];
	struct dirent *de;
	DIR *d;
	int n = ethtool_rx_queues(ifname);

	if (n > 0)
		return n;
	snprintf(path, sizeof(path), "/sys/class/net/%s/queues", ifname);
	d = opendir(path);
	if (!d)
		return 1;
	while ((de = readdir(d)))
		n += !strncmp(de->d_name, "rx-", 3);
	closedir(d);
	return n ? n : 1;
}

static int check_opts(const struct l3x_capture_opts *o, struct l3x_xsk_cfg *c)
{
	if (!l3x_opts_valid(o, sizeof(*o)))
		return -EINVAL;
	c->frame_count = L3X_OPT(o, frame_count, 4096);
	c->frame_size = L3X_OPT(o, frame_size, 4096);
	c->ring_size = L3X_OPT(o, ring_size, 2048);
	c->bind_mode = L3X_OPT(o, bind_mode, L3X_BIND_AUTO);
	c->busy_poll_usec = L3X_OPT(o, busy_poll_usec, 20);
	c->busy_poll_budget = L3X_OPT(o, busy_poll_budget, 64);
	if (c->frame_size != 2048 && c->frame_size != 4096)
		return -EINVAL;
	if (!pow2(c->ring_size) || !pow2(c->frame_count) ||
	    c->frame_count < 64 || c->frame_count > (1u << 20))
		return -EINVAL;
	if (c->bind_mode > L3X_BIND_ZEROCOPY)
		return -EINVAL;
	if (L3X_OPT(o, xdp_mode, L3X_XDP_AUTO) > L3X_XDP_SKB)
		return -EINVAL;
	return 0;
}

struct l3x_capture *l3x_capture__open(const struct l3x_capture_opts *opts)
{
	const char *ifname = L3X_OPT(opts, ifname, NULL);
	struct l3x_steer_cfg scfg = {};
	struct l3x_capture *cap;
	int err;

	cap = calloc(1, sizeof(*cap));
	if (!cap)
		return NULL;
	err = check_opts(opts, &cap->xcfg);
	if (err)
		goto err_free;
	if (!ifname || !*ifname || strlen(ifname) >= IF_NAMESIZE) {
		err = -EINVAL;
		goto err_free;
	}
	strcpy(cap->ifname, ifname);
	cap->ifindex = if_nametoindex(ifname);
	if (!cap->ifindex) {
		err = -ENODEV;
		goto err_free;
	}
	cap->nqueues = count_rx_queues(ifname);
	scfg.pin_dir = L3X_OPT(opts, pin_dir, NULL);
	scfg.xdp_mode = L3X_OPT(opts, xdp_mode, L3X_XDP_AUTO);
	cap->steer = l3x_steer_open(cap->ifindex, &scfg);
	if (!cap->steer) {
		err = -errno;
		goto err_free;
	}
	cap->rules = l3x_ruleset_open(l3x_steer_maps(cap->steer), NULL);
	if (!cap->rules) {
		err = -ENOMEM;
		goto err_steer;
	}
	cap->xcfg.ifname = cap->ifname;
	cap->xcfg.skb_mode = l3x_steer_skb_mode(cap->steer);
	cap->xcfg.xsks_map_fd = l3x_steer_maps(cap->steer)->xsks;
	return cap;

err_steer:
	l3x_steer_close(cap->steer);
err_free:
	free(cap);
	errno = -err;
	return NULL;
}

int l3x_capture__add_rule(struct l3x_capture *cap, const struct l3x_rule *r)
{
	return cap ? l3x_ruleset_add(cap->rules, r) : -EINVAL;
}

int l3x_capture__del_rule(struct l3x_capture *cap, const struct l3x_rule *r)
{
	return cap ? l3x_ruleset_del(cap->rules, r) : -EINVAL;
}

int l3x_capture__steer_stats(struct l3x_capture *cap,
			     struct l3x_steer_stats *st)
{
	return l3x_steer_stats(cap->steer, st);
}

int l3x_capture__queue_count(struct l3x_capture *cap)
{
	return cap->nqueues;
}

int l3x_capture__close(struct l3x_capture *cap)
{
	if (!cap)
		return 0;
	if (cap->nhandles)
		return -EBUSY;
	/* A reused program stays attached: take back only our rules. */
	l3x_ruleset_close(cap->rules);
	l3x_steer_close(cap->steer);
	free(cap);
	return 0;
}

/* ------------------------------------------------------------ handles */

struct l3x_capture_handle *l3x_capture_handle__open(struct l3x_capture *cap,
						    uint32_t queue)
{
	struct l3x_capture_handle *h;
	struct l3x_xsk_cfg cfg = cap->xcfg;

	if (queue >= (uint32_t)cap->nqueues || queue >= L3X_MAX_QUEUES) {
		errno = ERANGE;
		return NULL;
	}
	if (cap->open_queues[queue / 8] & (1u << (queue % 8))) {
		errno = EBUSY;
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	cfg.queue = queue;
	h->xsk = l3x_xsk_open(&cfg);
	if (!h->xsk) {
		free(h);
		return NULL;
	}
	h->cap = cap;
	cap->open_queues[queue / 8] |= 1u << (queue % 8);
	cap->nhandles++;
	return h;
}

unsigned l3x_capture_handle__recv_burst(struct l3x_capture_handle *h,
					struct l3x_frame *frames, unsigned n)
{
	return l3x_xsk_rx_burst(h->xsk, frames, n);
}

int l3x_capture_handle__release(struct l3x_capture_handle *h,
				const struct l3x_frame *frames, unsigned n)
{
	if (!h)
		return -EINVAL;
	return l3x_xsk_release(h->xsk, frames, n);
}

int l3x_capture_handle__fd(const struct l3x_capture_handle *h)
{
	return l3x_xsk_fd(h->xsk);
}

int l3x_capture_handle__wait(struct l3x_capture_handle *h, int timeout_ms)
{
	return l3x_xsk_wait(h->xsk, timeout_ms);
}

int l3x_capture_handle__stats(struct l3x_capture_handle *h,
			      struct l3x_capture_handle_stats *st)
{
	return l3x_xsk_stats(h->xsk, st);
}

int l3x_capture_handle__frames(struct l3x_capture_handle *h,
			       struct l3x_frame_stats *fs)
{
	l3x_xsk_frames(h->xsk, fs);
	return 0;
}

int l3x_capture_handle__close(struct l3x_capture_handle *h)
{
	uint32_t q;

	if (!h)
		return 0;
	q = l3x_xsk_queue(h->xsk);
	l3x_xsk_close(h->xsk);
	h->cap->open_queues[q / 8] &= ~(1u << (q % 8));
	h->cap->nhandles--;
	free(h);
	return 0;
}
