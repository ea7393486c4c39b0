/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * link_tun.c - the TUN source: a TUN device (IFF_TUN | IFF_NO_PI), created
 * if missing and brought up; read and written without blocking, the engine
 * polls it like a queue and sleeps on its fd when idle. Routing into it is the
 * user's. Its packets are matched against the stack's rules in software
 * (lib/rules.c), as the XDP program does for AF_XDP.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_tun.h>

#include "engine.h"

struct link_tun {
	struct l3x_link link;
	int fd;
	uint8_t buf[L3X_PKT_MAX]; /* a packet read, or made whole */
};

static int tun_rx(struct l3x_link *l)
{
	struct link_tun *lt = (struct link_tun *)l;
	int n = 0;
	ssize_t r;

	while (n < L3X_RX_BURST) {
		r = read(lt->fd, lt->buf, sizeof(lt->buf));
		if (r <= 0)
			break;
		l->input(l->st, lt->buf, (size_t)r);
		n++;
	}
	return n;
}

static int tun_output(struct l3x_link *l, struct pbuf *p, const ip_addr_t *dst)
{
	struct link_tun *lt = (struct link_tun *)l;
	int err = 0;

	(void)dst;
	if (write(lt->fd, l3x_pbuf_flat(p, lt->buf), p->tot_len) != p->tot_len)
		err = -errno ? -errno : -EIO;
	l3x_count_tx(l->st, err, p->tot_len);
	return err;
}

static int tun_wait_fds(struct l3x_link *l, struct pollfd *pfd, unsigned max)
{
	struct link_tun *lt = (struct link_tun *)l;

	if (!max)
		return 0;
	pfd[0] = (struct pollfd){ .fd = lt->fd, .events = POLLIN };
	return 1;
}

static void tun_close(struct l3x_link *l)
{
	struct link_tun *lt = (struct link_tun *)l;

	if (lt->fd >= 0)
		close(lt->fd);
	free(lt);
}

static const struct l3x_link_ops tun_ops = {
	.rx = tun_rx,
	.output = tun_output,
	.wait_fds = tun_wait_fds,
	.close = tun_close,
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
	struct link_tun *lt;
	int err;

	lt = calloc(1, sizeof(*lt));
	if (!lt)
		return NULL;
	lt->link.ops = &tun_ops;
	lt->link.st = st;
	lt->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (lt->fd < 0) {
		err = -errno;
		pr_warn("open /dev/net/tun: %s\n", strerror(errno));
		goto err_close;
	}
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(lt->fd, TUNSETIFF, &ifr)) {
		err = -errno;
		pr_warn("TUN device %s: %s\n", name, strerror(errno));
		goto err_close;
	}
	err = tun_up(name, mtu);
	if (err) {
		pr_warn("bring up %s: %s\n", name, strerror(-err));
		goto err_close;
	}
	return &lt->link;

err_close:
	tun_close(&lt->link);
	errno = -err;
	return NULL;
}
