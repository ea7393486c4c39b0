/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x-flood - send UDP frames as fast as the kernel takes them (or at a set
 * rate): the load generator of the capture benchmarks.
 *
 * Plain kernel sockets, no libl3x. Each thread owns an AF_PACKET SOCK_RAW
 * socket and sends batches of 64 with sendmmsg() (measured here against
 * PACKET_TX_RING on veth: 15% faster at 64 bytes, 28% at 1518). One template
 * frame is built and checksummed once; per frame only the source port
 * changes, over --flows values so that the receiver's queues share the
 * load, and the UDP checksum follows from a precomputed partial sum.
 *
 * --syn sends TCP SYNs instead, as a spoofed SYN flood does: each from a
 * random address of the --src prefix and a random port, to a random
 * address of the --dst prefix, with a random sequence number and an MSS
 * option; both checksums are computed per frame (58 bytes, cheap).
 *
 * PACKET_QDISC_BYPASS makes the kernel pick the TX queue by the sending CPU,
 * not by flow. That is harmless on a NIC (the receiver hashes the frame), but
 * a veth hands each frame to the peer's RX queue of the same number, so on a
 * multi-queue veth the default is the qdisc path (noqueue there, so cheap)
 * where the flow hash picks the queue.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "csum.h"
#include "parse.h"
#include "tool.h"

#define PROG	    "l3x-flood"
#define BATCH	    64
#define MAX_THREADS 64
#define MAX_FRAME   9216 /* without FCS */
#define FCS_LEN	    4
#define SPORT_BASE  10000

enum bypass { BYPASS_AUTO, BYPASS_ON, BYPASS_OFF };

static const struct name_value bypass_names[] = {
	{ "on", BYPASS_ON },
	{ "off", BYPASS_OFF },
	{ NULL },
};

struct args {
	const char *iface;
	uint8_t dst_mac[ETH_ALEN];
	int family;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} src, dst;
	uint16_t dport;
	unsigned size;	/* on the wire, FCS included */
	double seconds; /* 0: no limit */
	uint64_t count; /* 0: no limit */
	unsigned threads;
	unsigned flows;
	double rate; /* frames/s over all threads; 0: no limit */
	enum bypass bypass;
	bool json;
	bool syn;		     /* TCP SYNs from random sources */
	unsigned src_plen, dst_plen; /* --syn: prefix lengths */
	bool have_mac, have_src, have_dst, have_dport;
};

/* The frame every thread copies. csum_base is the UDP checksum's partial
 * sum over the pseudo-header and the datagram with source port 0. */
struct tmpl {
	/* Puts the IP header, after the 14-byte Ethernet header, on a 4-byte
	 * boundary, as struct iphdr needs (UBSan: misaligned access). */
	uint8_t ip_align[2];
	uint8_t frame[MAX_FRAME];
	unsigned len; /* without FCS */
	unsigned sport_off, csum_off;
	uint32_t csum_base;
};

struct worker {
	pthread_t tid;
	unsigned idx;
	const struct args *a;
	const struct tmpl *t;
	int ifindex;
	bool bypass;
	uint64_t quota; /* 0: no limit */
	double rate;	/* this thread's share; 0: no limit */
	uint64_t sent;
	uint64_t rng; /* --syn: xorshift64 state */
	int err;      /* errno of the error that stopped it */
};

/* clang-format off */
TOOL_DEFINE(PROG,
	    "usage: " PROG " --iface IF --dst-mac MAC --src IP --dst IP\n"
	    "       --dport PORT [--size BYTES] [--seconds S | --count N]\n"
	    "       [--threads T] [--flows F] [--rate PPS]\n"
	    "       [--qdisc-bypass on|off] [--json]\n"
	    "       " PROG " --syn ... --src IP[/LEN] --dst IP[/LEN] ...\n"
	    "BYTES is the frame size on the wire, FCS included: 64 sends\n"
	    "60-byte frames, 1518 sends 1514-byte frames (1500-byte IP packets).\n"
	    "--syn: TCP SYNs from random addresses of the --src prefix and\n"
	    "random ports to random addresses of the --dst prefix.\n",
	    1);
/* clang-format on */

/* ------------------------------------------------------------ arguments */

static double parse_pos(const char *opt, const char *s)
{
	return parse_positive(opt, s, 1e9, "a number above 0 (at most 1e9)");
}

static void parse_mac(struct args *a, const char *s)
{
	unsigned m[ETH_ALEN];
	char tail;
	int i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4],
		   &m[5], &tail) != ETH_ALEN)
		die_arg("--dst-mac '%s': not a MAC address (aa:bb:cc:dd:ee:ff)",
			s);
	for (i = 0; i < ETH_ALEN; i++) {
		if (m[i] > 0xff)
			die_arg("--dst-mac '%s': not a MAC address", s);
		a->dst_mac[i] = m[i];
	}
	a->have_mac = true;
}

/* The first address sets the family; the second must agree. ADDR/LEN sets
 * *plen (checked against --syn later); else it is the address's bits. */
static void parse_ip(struct args *a, const char *opt, const char *s, void *out,
		     unsigned *plen)
{
	int fam = strchr(s, ':') ? AF_INET6 : AF_INET;
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);

	if (n >= sizeof(addr))
		die_arg("%s '%s': not an IPv4 or IPv6 address", opt, s);
	memcpy(addr, s, n);
	addr[n] = 0;
	if (inet_pton(fam, addr, out) != 1)
		die_arg("%s '%s': not an IPv4 or IPv6 address", opt, s);
	*plen = fam == AF_INET6 ? 128 : 32;
	if (slash)
		*plen = parse_uint(opt, slash + 1, 0, *plen);
	if (a->family && a->family != fam)
		die_arg("%s '%s': --src and --dst must both be IPv4 or both IPv6",
			opt, s);
	a->family = fam;
}

static void check_args(const struct args *a)
{
	tool_need(a->iface, "--iface", "the interface to send on");
	tool_need(a->have_mac, "--dst-mac", "the receiver's MAC address");
	tool_need(a->have_src, "--src", "the source IP address");
	tool_need(a->have_dst, "--dst", "the destination IP address");
	tool_need(a->have_dport, "--dport", "the destination port");
	if (!a->syn && (a->src_plen != (a->family == AF_INET6 ? 128u : 32u) ||
			a->dst_plen != (a->family == AF_INET6 ? 128u : 32u)))
		die_arg("--src, --dst: a prefix (/LEN) only with --syn");
	if (a->seconds && a->count)
		die_arg("--seconds and --count: give one or the other");
	if (a->count && a->count < a->threads)
		die_arg("--count %llu: fewer frames than --threads (%u)",
			(unsigned long long)a->count, a->threads);
}

static void parse_opt(void *ctx, int c)
{
	struct args *a = ctx;

	switch (c) {
	case 'i':
		a->iface = optarg;
		break;
	case 'm':
		parse_mac(a, optarg);
		break;
	case 's':
		parse_ip(a, "--src", optarg, &a->src, &a->src_plen);
		a->have_src = true;
		break;
	case 'd':
		parse_ip(a, "--dst", optarg, &a->dst, &a->dst_plen);
		a->have_dst = true;
		break;
	case 'p':
		a->dport = parse_uint("--dport", optarg, 1, 65535);
		a->have_dport = true;
		break;
	case 'z':
		a->size = parse_uint("--size", optarg, 64, MAX_FRAME + FCS_LEN);
		break;
	case 'S':
		a->seconds = parse_pos("--seconds", optarg);
		break;
	case 'c':
		a->count = parse_uint("--count", optarg, 1, UINT64_MAX);
		break;
	case 't':
		a->threads = parse_uint("--threads", optarg, 1, MAX_THREADS);
		break;
	case 'f':
		a->flows = parse_uint("--flows", optarg, 1, 65536 - SPORT_BASE);
		break;
	case 'r':
		a->rate = parse_pos("--rate", optarg);
		break;
	case 'b':
		a->bypass = parse_name("--qdisc-bypass", optarg, bypass_names);
		break;
	case 'j':
		a->json = true;
		break;
	case 'y':
		a->syn = true;
		break;
	}
}

static void parse_args(struct args *a, int argc, char **argv)
{
	static const struct option opts[] = {
		TOOL_OPT_ARG("iface", 'i'),
		TOOL_OPT_ARG("dst-mac", 'm'),
		TOOL_OPT_ARG("src", 's'),
		TOOL_OPT_ARG("dst", 'd'),
		TOOL_OPT_ARG("dport", 'p'),
		TOOL_OPT_ARG("size", 'z'),
		TOOL_OPT_ARG("seconds", 'S'),
		TOOL_OPT_ARG("count", 'c'),
		TOOL_OPT_ARG("threads", 't'),
		TOOL_OPT_ARG("flows", 'f'),
		TOOL_OPT_ARG("rate", 'r'),
		TOOL_OPT_ARG("qdisc-bypass", 'b'),
		TOOL_OPT_FLAG("json", 'j'),
		TOOL_OPT_FLAG("syn", 'y'),
		TOOL_OPTIONS_END,
	};
	int i;

	a->size = 64;
	a->threads = 1;
	a->flows = 64;
	i = tool_options(argc, argv, opts, parse_opt, a);
	tool_no_more_args(argc, argv, i);
	check_args(a);
}

/* ------------------------------------------------------------ interface */

struct iface {
	uint8_t mac[ETH_ALEN];
	unsigned mtu;
	unsigned txq; /* 0: unknown */
	bool veth;
};

static void iface_info(const char *name, struct iface *i)
{
	struct ethtool_drvinfo drv = { .cmd = ETHTOOL_GDRVINFO };
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr = {};
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		die("--iface %s: %s", name, strerror(errno));
	if (ifr.ifr_hwaddr.sa_family != 1 /* ARPHRD_ETHER */)
		die("--iface %s: not an Ethernet interface", name);
	memcpy(i->mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	if (ioctl(fd, SIOCGIFMTU, &ifr))
		die("--iface %s: %s", name, strerror(errno));
	i->mtu = ifr.ifr_mtu;
	/* Driver and queue count only choose the default of --qdisc-bypass. */
	ifr.ifr_data = (void *)&drv;
	i->veth = !ioctl(fd, SIOCETHTOOL, &ifr) && !strcmp(drv.driver, "veth");
	ifr.ifr_data = (void *)&ch;
	if (!ioctl(fd, SIOCETHTOOL, &ifr))
		i->txq = ch.tx_count + ch.combined_count;
	close(fd);
}

static bool want_bypass(const struct args *a, const struct iface *i)
{
	if (a->bypass != BYPASS_AUTO)
		return a->bypass == BYPASS_ON;
	return !(i->veth && i->txq > 1 && a->flows > 1);
}

/* ------------------------------------------------------------ the frame */

/* Writes the IP header at p and returns its length; the UDP pseudo-header's
 * partial sum goes to *pseudo. */
static unsigned put_ip(const struct args *a, uint8_t *p, unsigned l4len,
		       uint32_t *pseudo)
{
	uint8_t proto = a->syn ? IPPROTO_TCP : IPPROTO_UDP;

	struct ip6_hdr *ip6 = (struct ip6_hdr *)p;
	struct iphdr *ip = (struct iphdr *)p;

	if (a->family == AF_INET6) {
		ip6->ip6_flow = htonl(6u << 28);
		ip6->ip6_plen = htons(l4len);
		ip6->ip6_nxt = proto;
		ip6->ip6_hlim = 64;
		ip6->ip6_src = a->src.v6;
		ip6->ip6_dst = a->dst.v6;
		*pseudo = csum_partial(&ip6->ip6_src, 32, proto + l4len);
		return sizeof(*ip6);
	}
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons(sizeof(*ip) + l4len);
	ip->frag_off = htons(IP_DF);
	ip->ttl = 64;
	ip->protocol = proto;
	ip->saddr = a->src.v4.s_addr;
	ip->daddr = a->dst.v4.s_addr;
	ip->check = htons(csum_fold(csum_partial(ip, sizeof(*ip), 0)));
	*pseudo = csum_partial(&ip->saddr, 8, proto + l4len);
	return sizeof(*ip);
}

/* --syn: a SYN with an MSS option; the fields that vary are set per frame
 * (set_syn). */
#define SYN_L4LEN 24

static void build_syn(const struct args *a, const struct iface *ifc,
		      struct tmpl *t)
{
	struct ether_header *eth = (struct ether_header *)t->frame;
	uint8_t *tcp;
	uint32_t pseudo;
	unsigned off;

	memcpy(eth->ether_dhost, a->dst_mac, ETH_ALEN);
	memcpy(eth->ether_shost, ifc->mac, ETH_ALEN);
	eth->ether_type = htons(a->family == AF_INET6 ? ETH_P_IPV6 : ETH_P_IP);
	off = ETH_HLEN + put_ip(a, t->frame + ETH_HLEN, SYN_L4LEN, &pseudo);
	tcp = t->frame + off;
	tcp[2] = a->dport >> 8;
	tcp[3] = a->dport;
	tcp[12] = (SYN_L4LEN / 4) << 4;
	tcp[13] = 0x02; /* SYN */
	tcp[14] = 0xfa; /* window 64240, as Linux */
	tcp[15] = 0xf0;
	tcp[20] = 2; /* MSS 1460 */
	tcp[21] = 4;
	tcp[22] = 0x05;
	tcp[23] = 0xb4;
	t->len = off + SYN_L4LEN < 60 ? 60 : off + SYN_L4LEN;
	t->sport_off = off;
	t->csum_off = off + 16;
}

static void build_template(const struct args *a, const struct iface *ifc,
			   struct tmpl *t)
{
	unsigned iphlen = a->family == AF_INET6 ? 40 : 20;
	unsigned min = ETH_HLEN + iphlen + 8 + FCS_LEN, l4len, off, i;
	unsigned max = ifc->mtu + ETH_HLEN + FCS_LEN;
	struct ether_header *eth = (struct ether_header *)t->frame;
	struct udphdr *udp;
	uint32_t pseudo;

	if (a->syn) {
		build_syn(a, ifc, t);
		return;
	}
	if (a->size < min)
		die("--size %u: an %s UDP frame needs at least %u bytes",
		    a->size, a->family == AF_INET6 ? "IPv6" : "IPv4", min);
	if (a->size > max)
		die("--size %u: above the MTU of %s (%u), at most %u", a->size,
		    a->iface, ifc->mtu, max);
	t->len = a->size - FCS_LEN;
	memcpy(eth->ether_dhost, a->dst_mac, ETH_ALEN);
	memcpy(eth->ether_shost, ifc->mac, ETH_ALEN);
	eth->ether_type = htons(a->family == AF_INET6 ? ETH_P_IPV6 : ETH_P_IP);
	l4len = t->len - ETH_HLEN - iphlen;
	off = ETH_HLEN + put_ip(a, t->frame + ETH_HLEN, l4len, &pseudo);
	udp = (struct udphdr *)(t->frame + off);
	udp->dest = htons(a->dport);
	udp->len = htons(l4len);
	for (i = off + 8; i < t->len; i++) /* a recognisable payload */
		t->frame[i] = i;
	t->sport_off = off;
	t->csum_off = off + 6;
	t->csum_base = csum_partial(udp, l4len, pseudo);
}

static void set_flow(const struct tmpl *t, uint8_t *f, uint16_t sport)
{
	uint16_t c = csum_fold(t->csum_base + sport);

	if (!c)
		c = 0xffff; /* 0 would mean "no checksum" */
	f[t->sport_off] = sport >> 8;
	f[t->sport_off + 1] = sport;
	f[t->csum_off] = c >> 8;
	f[t->csum_off + 1] = c;
}

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The bits of @addr (@len bytes) past the first @plen: random. */
static void rand_suffix(uint8_t *addr, unsigned len, unsigned plen,
			uint64_t *rng)
{
	unsigned i;

	for (i = plen / 8; i < len; i++) {
		uint8_t keep =
			i == plen / 8 ? (uint8_t)(0xff00 >> (plen % 8)) : 0;

		addr[i] = (addr[i] & keep) | ((uint8_t)rng_next(rng) & ~keep);
	}
}

/* A SYN from a new random source to a new random destination. */
static void set_syn(const struct worker *w, uint8_t *f, uint64_t *rng)
{
	const struct args *a = w->a;
	unsigned off = w->t->sport_off, alen, iphlen;
	uint8_t *ip = f + ETH_HLEN, *tcp = f + off, *src, *dst;
	uint64_t r = rng_next(rng);
	uint16_t sport = (uint16_t)(1024 + r % 64512); /* 1024-65535 */
	uint32_t pseudo;

	if (a->family == AF_INET6) {
		alen = 16;
		iphlen = 40;
		src = ip + 8;
	} else {
		alen = 4;
		iphlen = 20;
		src = ip + 12;
	}
	dst = src + alen;
	rand_suffix(src, alen, a->src_plen, rng);
	rand_suffix(dst, alen, a->dst_plen, rng);
	tcp[0] = sport >> 8;
	tcp[1] = (uint8_t)sport;
	memcpy(tcp + 4, (uint8_t *)&r + 2, 4); /* sequence number */
	tcp[16] = tcp[17] = 0;
	pseudo = csum_partial(src, 2 * alen, IPPROTO_TCP + (unsigned)SYN_L4LEN);
	pseudo = csum_fold(csum_partial(tcp, SYN_L4LEN, pseudo));
	tcp[16] = pseudo >> 8;
	tcp[17] = pseudo;
	if (iphlen == 20) {
		ip[10] = ip[11] = 0;
		pseudo = csum_fold(csum_partial(ip, 20, 0));
		ip[10] = pseudo >> 8;
		ip[11] = pseudo;
	}
}

/* ------------------------------------------------------------ sending */

static int open_socket(int ifindex, bool bypass)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_ifindex = ifindex,
	};
	int one = 1, fd;

	/* Protocol 0: this socket sends only, it never receives. */
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0)
		return -1;
	if ((bypass && setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one,
				  sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sleeps until this thread may send its next frame. */
static void pace(const struct worker *w, double start)
{
	double wait = start + w->sent / w->rate - now_s();
	struct timespec ts;

	if (wait <= 0)
		return;
	ts.tv_sec = (time_t)wait;
	ts.tv_nsec = (long)((wait - ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

static unsigned batch_size(const struct worker *w)
{
	uint64_t left = w->quota ? w->quota - w->sent : BATCH;
	unsigned n = BATCH;

	/* Below 64k frames/s, batches shrink so that pacing stays smooth
	 * (about one batch per millisecond). */
	if (w->rate && w->rate < BATCH * 1000.0)
		n = w->rate / 1000 + 1;
	return left < n ? left : n;
}

/* Sends one batch; returns 0 or -errno of a fatal error. */
static int send_batch(struct worker *w, int fd, uint8_t *buf,
		      struct mmsghdr *msg, unsigned *flow)
{
	unsigned i, n = batch_size(w);
	int r;

	for (i = 0; i < n; i++) {
		if (w->a->syn) {
			set_syn(w, buf + (size_t)i * w->t->len, &w->rng);
			continue;
		}
		set_flow(w->t, buf + (size_t)i * w->t->len, SPORT_BASE + *flow);
		if (++*flow == w->a->flows)
			*flow = 0;
	}
	r = sendmmsg(fd, msg, n, 0);
	if (r < 0) {
		/* A full device queue is back-pressure, not failure. */
		if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)
			return 0;
		return -errno;
	}
	w->sent += r;
	return 0;
}

static uint8_t *setup_batch(const struct tmpl *t, struct mmsghdr *msg,
			    struct iovec *iov)
{
	uint8_t *buf = malloc((size_t)BATCH * t->len);
	unsigned i;

	if (!buf)
		return NULL;
	memset(msg, 0, BATCH * sizeof(*msg));
	for (i = 0; i < BATCH; i++) {
		iov[i].iov_base = buf + (size_t)i * t->len;
		iov[i].iov_len = t->len;
		memcpy(iov[i].iov_base, t->frame, t->len);
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
	}
	return buf;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct mmsghdr msg[BATCH];
	struct iovec iov[BATCH];
	unsigned flow = w->idx % w->a->flows;
	uint8_t *buf;
	double start;
	int fd;

	fd = open_socket(w->ifindex, w->bypass);
	buf = fd < 0 ? NULL : setup_batch(w->t, msg, iov);
	if (!buf) {
		w->err = errno;
		goto out;
	}
	start = now_s();
	while (!stop_requested() && (!w->quota || w->sent < w->quota)) {
		if (w->rate)
			pace(w, start);
		w->err = -send_batch(w, fd, buf, msg, &flow);
		if (w->err)
			break;
	}
out:
	if (w->err)
		request_stop();
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* ------------------------------------------------------------ main */

static void start_workers(const struct args *a, const struct iface *ifc,
			  const struct tmpl *t, struct worker *w)
{
	int ifindex = if_nametoindex(a->iface);
	bool bypass = want_bypass(a, ifc);
	sigset_t old;
	unsigned i;
	int err;

	if (!ifindex)
		die("--iface %s: %s", a->iface, strerror(errno));
	/* Workers never take the signals: the main thread does. */
	stop_signals_block(&old);
	for (i = 0; i < a->threads; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].idx = i;
		w[i].a = a;
		w[i].t = t;
		w[i].ifindex = ifindex;
		w[i].bypass = bypass;
		/* Odd: xorshift never leaves 0. */
		w[i].rng = (0x9e3779b97f4a7c15ull * (i + 1) ^
			    (uint64_t)(now_s() * 1e9)) |
			   1;
		if (a->count)
			w[i].quota = a->count / a->threads +
				     (i < a->count % a->threads);
		if (a->rate)
			w[i].rate = a->rate / a->threads;
		err = pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
		if (err)
			die("--threads %u: %s", a->threads, strerror(err));
	}
	stop_signals_restore(&old);
}

/* With --seconds, sleeps until they are up or a signal comes. Otherwise the
 * workers end by themselves (--count) or on a signal. */
static void wait_for_end(const struct args *a, double start)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	double left;

	if (!a->seconds)
		return;
	while (!stop_requested()) {
		left = start + a->seconds - now_s();
		if (left <= 0)
			break;
		if (left < 0.02)
			ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL);
	}
	request_stop();
}

static void print_result(const struct args *a, const struct tmpl *t,
			 uint64_t sent, double secs)
{
	if (a->json) {
		printf("{\"sent\": %llu, \"seconds\": %.3f, \"pps\": %.0f}\n",
		       (unsigned long long)sent, secs, sent / secs);
		return;
	}
	/* Gbit/s counts the frame with its FCS, not preamble and gap. */
	printf("%s: sent %llu frames in %.3f s (%.0f frames/s, %.3f Gbit/s)\n",
	       PROG, (unsigned long long)sent, secs, sent / secs,
	       sent * (double)(t->len + FCS_LEN) * 8 / secs / 1e9);
}

int main(int argc, char **argv)
{
	static struct tmpl t;
	static struct worker w[MAX_THREADS];
	struct args a = {};
	struct iface ifc = {};
	uint64_t sent = 0;
	double start, secs;
	unsigned i;
	int err = 0;

	parse_args(&a, argc, argv);
	iface_info(a.iface, &ifc);
	build_template(&a, &ifc, &t);
	stop_on_signals(0);
	start = now_s();
	start_workers(&a, &ifc, &t, w);
	wait_for_end(&a, start);
	for (i = 0; i < a.threads; i++) {
		pthread_join(w[i].tid, NULL);
		sent += w[i].sent;
		if (w[i].err && !err)
			err = w[i].err;
	}
	secs = now_s() - start;
	if (err)
		fprintf(stderr, PROG ": sending on %s: %s\n", a.iface,
			strerror(err));
	print_result(&a, &t, sent, secs);
	return err ? 1 : 0;
}
