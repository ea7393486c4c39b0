/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * link_tun.c - the two layer-3 sources without AF_XDP:
 *   TUN       a TUN device (IFF_TUN | IFF_NO_PI), created if missing and
 *             brought up; read and written without blocking, the engine
 *             busy-polls it like a queue. Routing into it is the user's.
 *   callback  packets come in through l3x_stack__input() and leave
 *             through the application's output function.
 * Both hand whole IP packets to lwIP and match them against the stack's
 * rules in software (lib/engine.c), as the XDP program does for AF_XDP.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_tun.h>

#include "engine.h"

#define PKT_MAX 65535

struct link_l3 {
	struct l3x_link link;
	int fd;				/* TUN */
	l3x_output_fn_t fn;		/* callback */
	void *ctx;
	uint8_t buf[PKT_MAX];
};

/* The packet as one contiguous buffer. */
static const void *flatten(struct link_l3 *ll, struct pbuf *p)
{
	if (!p->next)
		return p->payload;
	pbuf_copy_partial(p, ll->buf, p->tot_len, 0);
	return ll->buf;
}

static void count_tx(struct l3x_stack *st, int err, size_t len)
{
	if (err) {
		STAT_INC(st, tx_dropped);
		return;
	}
	STAT_INC(st, tx_packets);
	STAT_ADD(st, tx_bytes, len);
}

/* ------------------------------------------------------------ TUN */

static int tun_rx(struct l3x_link *l)
{
	struct link_l3 *ll = (struct link_l3 *)l;
	int n = 0;
	ssize_t r;

	while (n < L3X_RX_BURST) {
		r = read(ll->fd, ll->buf, sizeof(ll->buf));
		if (r <= 0)
			break;
		l3x_engine_input(l->st, ll->buf, (size_t)r, true);
		n++;
	}
	return n;
}

static int tun_output(struct l3x_link *l, struct pbuf *p, const ip_addr_t *dst)
{
	struct link_l3 *ll = (struct link_l3 *)l;
	int err = 0;

	(void)dst;
	if (write(ll->fd, flatten(ll, p), p->tot_len) != p->tot_len)
		err = -errno ? -errno : -EIO;
	count_tx(l->st, err, p->tot_len);
	return err;
}

static void l3_flush(struct l3x_link *l)
{
	(void)l;
}

static void l3_close(struct l3x_link *l)
{
	struct link_l3 *ll = (struct link_l3 *)l;

	if (ll->fd >= 0)
		close(ll->fd);
	free(ll);
}

static const struct l3x_link_ops tun_ops = {
	.rx = tun_rx,
	.output = tun_output,
	.flush = l3_flush,
	.close = l3_close,
};

static int tun_up(const char *name, uint32_t mtu)
{
	struct ifreq ifr = {};
	int s, err = 0;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_mtu = (int)mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr) || ioctl(s, SIOCGIFFLAGS, &ifr)) {
		err = -errno;
		goto out;
	}
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr))
		err = -errno;
out:
	close(s);
	return err;
}

struct l3x_link *l3x_link_tun_open(struct l3x_stack *st, const char *name,
				   uint32_t mtu)
{
	struct ifreq ifr = {};
	struct link_l3 *ll;
	int err;

	ll = calloc(1, sizeof(*ll));
	if (!ll)
		return NULL;
	ll->link.ops = &tun_ops;
	ll->link.st = st;
	ll->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (ll->fd < 0) {
		err = -errno;
		pr_warn("open /dev/net/tun: %s\n", strerror(errno));
		goto err_close;
	}
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(ll->fd, TUNSETIFF, &ifr)) {
		err = -errno;
		pr_warn("TUN device %s: %s\n", name, strerror(errno));
		goto err_close;
	}
	err = tun_up(name, mtu);
	if (err) {
		pr_warn("bring up %s: %s\n", name, strerror(-err));
		goto err_close;
	}
	return &ll->link;

err_close:
	l3_close(&ll->link);
	errno = -err;
	return NULL;
}

/* ------------------------------------------------------------ callback */

static int cb_rx(struct l3x_link *l)
{
	(void)l;
	return 0;	/* packets arrive through l3x_stack__input() */
}

static int cb_output(struct l3x_link *l, struct pbuf *p, const ip_addr_t *dst)
{
	struct link_l3 *ll = (struct link_l3 *)l;
	int err;

	(void)dst;
	err = ll->fn(ll->ctx, flatten(ll, p), p->tot_len);
	if (err > 0)
		err = 0;
	count_tx(l->st, err, p->tot_len);
	return err;
}

static const struct l3x_link_ops cb_ops = {
	.rx = cb_rx,
	.output = cb_output,
	.flush = l3_flush,
	.close = l3_close,
};

struct l3x_link *l3x_link_cb_open(struct l3x_stack *st, l3x_output_fn_t fn,
				  void *ctx)
{
	struct link_l3 *ll = calloc(1, sizeof(*ll));

	if (!ll)
		return NULL;
	ll->link.ops = &cb_ops;
	ll->link.st = st;
	ll->fd = -1;
	ll->fn = fn;
	ll->ctx = ctx;
	return &ll->link;
}
