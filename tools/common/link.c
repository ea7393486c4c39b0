/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * link.c - the options of the tools on a link: see link.h.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "link.h"
#include "parse.h"
#include "tool.h"

static const struct name_value xdp_modes[] = {
	{ "auto", L3X_XDP_AUTO },
	{ "native", L3X_XDP_NATIVE },
	{ "skb", L3X_XDP_SKB },
	{ NULL },
};

static const struct name_value poll_modes[] = {
	{ "adaptive", L3X_POLL_ADAPTIVE },
	{ "busy", L3X_POLL_BUSY },
	{ NULL },
};

static const struct name_value gro_modes[] = {
	{ "on", 0 },
	{ "off", L3X_GRO_OFF },
	{ NULL },
};

static const struct name_value bind_modes[] = {
	{ "auto", L3X_BIND_AUTO },
	{ "copy", L3X_BIND_COPY },
	{ "zerocopy", L3X_BIND_ZEROCOPY },
	{ NULL },
};

static bool verbose;

void rule_parse(struct l3x_rule *r, const char *what, const char *text)
{
	char err[128];

	if (l3x_rule__parse(r, text, err, sizeof(err)))
		die_arg("%s '%s': %s", what, text, err);
}

void rule_list_add(struct rule_list *l, const char *text)
{
	if (l->n == MAX_RULES)
		die_arg("--rule: at most %d rules", MAX_RULES);
	rule_parse(&l->rules[l->n], "--rule", text);
	snprintf(l->text[l->n], L3X_RULE_STRLEN, "%s", text);
	l->n++;
}

bool link_opt(struct link_args *a, int c, const char *arg)
{
	/* One line an option, as in the tools. */
	/* clang-format off */
	switch (c) {
	case 'i': a->iface = arg; break;
	case 'q':
		if (a->nqueues == MAX_QUEUES)
			die_arg("--queue: at most %d queues", MAX_QUEUES);
		a->queues[a->nqueues++] = parse_uint("--queue", arg, 0,
						     UINT32_MAX);
		break;
	case 'r': rule_list_add(&a->rules, arg); break;
	case 'p': a->pin_dir = arg; break;
	case 'm': a->xdp_mode = parse_name("--xdp-mode", arg, xdp_modes); break;
	case 'b': a->bind_mode = parse_name("--bind", arg, bind_modes); break;
	case 'B': a->no_busy_poll = true; break;
	case 'P': a->poll = parse_name("--poll", arg, poll_modes); break;
	case 'G': a->gro = (uint32_t)parse_name("--gro", arg, gro_modes); break;
	case 'N':
		a->idle_spins = parse_uint("--idle-spins", arg, 1, 1000000);
		break;
	case 'A':
		a->ack_coalesce = parse_uint("--ack-coalesce", arg,
					     L3X_ACK_COALESCE_OFF, 64);
		break;
	case 'Y': a->idle_yield = true; break;
	case 'F':
		a->frames = parse_uint("--frames", arg, 64, 1u << 20);
		break;
	case 'Q': a->quiet = true; break;
	case 'v': a->verbose = true; break;
	default: return false;
	}
	/* clang-format on */
	return true;
}

static int print_fn(enum l3x_print_level level, const char *fmt, va_list ap)
{
	if (level != L3X_WARN && !verbose)
		return 0;
	fprintf(stderr, "%s: ", this_tool.prog);
	return vfprintf(stderr, fmt, ap);
}

void link_print_init(bool verbose_)
{
	verbose = verbose_;
	l3x_set_print(print_fn);
}

/* RX queues of @ifname: ETHTOOL_GCHANNELS answers for our own network
 * namespace; sysfs when the driver has no channels. The stack serves only
 * queue 0 unless told, and a flow hashed to another queue would find no
 * socket there. */
unsigned link_rx_queues(const char *ifname)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr = {};
	char path[128];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
		ifr.ifr_data = (void *)&ch;
		if (!ioctl(fd, SIOCETHTOOL, &ifr))
			n = ch.rx_count + ch.combined_count;
		close(fd);
	}
	if (n)
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

const char *link_strerror(int err)
{
	if (err == EBUSY)
		return "queue taken by another AF_XDP socket (another l3x process on it? give each process its own --queue)";
	if (err == ETIMEDOUT)
		return "timed out waiting for the interface's lock in /run/l3x (another l3x process stuck opening or closing it?)";
	if (err == ELOOP)
		return "a lock file in /run/l3x is a symbolic link: not followed (planted by someone? remove it)";
	if (err == EPERM || err == EACCES)
		return "not permitted: without root, a process needs CAP_NET_RAW, a program root attached and pins open to its group (README: Operating l3x)";
	return strerror(err);
}
