/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sg_probe.c - does AF_XDP copy mode deliver multi-buffer packets here?
 * For scripts/xdp-sg-probe/probe.sh, not part of l3x.
 *
 *   sg_probe IFNAME SECONDS SG BPF_OBJ
 *
 * Attaches BPF_OBJ's sg_probe program (native XDP) to IFNAME, binds one
 * AF_XDP socket (copy mode; with XDP_USE_SG when SG is 1) to queue 0,
 * gathers each packet's descriptors (XDP_PKT_CONTD in desc->options marks
 * all but the last), checks each IPv4 TCP packet's checksum over the whole
 * packet, and prints one line of counts after SECONDS.
 */
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif
#define NFRAMES	   4096
#define FRAME_SIZE 4096

struct result {
	unsigned long pkts, descs, multi, csum_ok, csum_bad;
	unsigned maxdescs, maxlen;
};

static uint64_t csum_add(uint64_t s, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

/* Is the TCP checksum of Ethernet + IPv4 packet @p right? -1: not TCP. */
static int tcp4_csum_ok(const uint8_t *p, size_t len)
{
	const uint8_t *ip = p + 14;
	unsigned hl, tot;
	uint64_t s;

	if (len < 54 || p[12] != 8 || p[13] != 0 || ip[9] != 6)
		return -1;
	hl = (ip[0] & 15) * 4u;
	tot = (unsigned)(ip[2] << 8 | ip[3]);
	if (tot < hl || 14 + tot > len)
		return 0;
	s = csum_add(0, ip + 12, 8) + 6 + (tot - hl);
	s = csum_add(s, ip + hl, tot - hl);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

static void done(struct result *r, const uint8_t *pkt, size_t len, unsigned nd)
{
	int ok = tcp4_csum_ok(pkt, len);

	r->pkts++;
	r->multi += nd > 1;
	if (nd > r->maxdescs)
		r->maxdescs = nd;
	if (len > r->maxlen)
		r->maxlen = (unsigned)len;
	r->csum_ok += ok == 1;
	r->csum_bad += ok == 0;
}

static void rx_loop(struct xsk_socket *sock, struct xsk_ring_cons *rx,
		    struct xsk_ring_prod *fill, void *area, int secs,
		    struct result *r)
{
	static uint8_t pkt[1 << 18];
	time_t end = time(NULL) + secs;
	size_t plen = 0;
	unsigned nd = 0, n, j;
	uint32_t idx, fidx;

	while (time(NULL) < end) {
		struct pollfd p = { .fd = xsk_socket__fd(sock),
				    .events = POLLIN };

		poll(&p, 1, 100);
		n = xsk_ring_cons__peek(rx, 64, &idx);
		for (j = 0; j < n; j++) {
			const struct xdp_desc *d =
				xsk_ring_cons__rx_desc(rx, idx + j);

			if (plen + d->len <= sizeof(pkt))
				memcpy(pkt + plen,
				       xsk_umem__get_data(area, d->addr),
				       d->len);
			plen += d->len;
			nd++;
			r->descs++;
			if (xsk_ring_prod__reserve(fill, 1, &fidx) == 1) {
				*xsk_ring_prod__fill_addr(fill, fidx) =
					d->addr & ~(uint64_t)(FRAME_SIZE - 1);
				xsk_ring_prod__submit(fill, 1);
			}
			if (d->options & XDP_PKT_CONTD)
				continue;
			done(r, pkt, plen, nd);
			plen = 0;
			nd = 0;
		}
		if (n)
			xsk_ring_cons__release(rx, n);
	}
}

int main(int argc, char **argv)
{
	struct xsk_umem_config uc = { .fill_size = NFRAMES,
				      .comp_size = 2048,
				      .frame_size = FRAME_SIZE };
	struct xsk_socket_config sc = {
		.rx_size = 2048,
		.tx_size = 2048,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY,
	};
	struct xdp_statistics xs = {};
	socklen_t sl = sizeof(xs);
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp, rx;
	struct xsk_umem *umem = NULL;
	struct xsk_socket *sock = NULL;
	struct bpf_object *obj;
	struct result r = {};
	__u64 cnt[3] = {};
	int ifindex, secs, err, fd, i, mfd, cfd;
	uint32_t idx = 0;
	__u32 q = 0;
	void *area;

	if (argc != 5) {
		fprintf(stderr, "usage: sg_probe IFNAME SECONDS SG BPF_OBJ\n");
		return 2;
	}
	ifindex = (int)if_nametoindex(argv[1]);
	secs = atoi(argv[2]);
	if (atoi(argv[3]))
		sc.bind_flags |= XDP_USE_SG;
	obj = bpf_object__open_file(argv[4], NULL);
	if (!ifindex || !obj || bpf_object__load(obj)) {
		fprintf(stderr, "sg_probe: cannot load %s for %s\n", argv[4],
			argv[1]);
		return 1;
	}
	err = bpf_xdp_attach(ifindex,
			     bpf_program__fd(bpf_object__find_program_by_name(
				     obj, "sg_probe")),
			     XDP_FLAGS_DRV_MODE, NULL);
	if (err) {
		fprintf(stderr, "sg_probe: attach: %s\n", strerror(-err));
		return 1;
	}
	mfd = bpf_object__find_map_fd_by_name(obj, "probe_xsks");
	cfd = bpf_object__find_map_fd_by_name(obj, "probe_cnt");
	area = mmap(NULL, (size_t)NFRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	err = area == MAP_FAILED
		      ? -1
		      : xsk_umem__create(&umem, area,
					 (size_t)NFRAMES * FRAME_SIZE, &fill,
					 &comp, &uc);
	if (!err)
		err = xsk_socket__create(&sock, argv[1], 0, umem, &rx, &tx,
					 &sc);
	if (err) {
		fprintf(stderr, "sg_probe: AF_XDP socket: %s\n",
			strerror(-err));
		goto detach;
	}
	fd = xsk_socket__fd(sock);
	bpf_map_update_elem(mfd, &q, &fd, 0);
	xsk_ring_prod__reserve(&fill, NFRAMES, &idx);
	for (i = 0; i < NFRAMES; i++)
		*xsk_ring_prod__fill_addr(&fill, idx + i) =
			(uint64_t)i * FRAME_SIZE;
	xsk_ring_prod__submit(&fill, NFRAMES);
	printf("ready\n");
	fflush(stdout);
	rx_loop(sock, &rx, &fill, area, secs, &r);
	for (i = 0; i < 3; i++) {
		__u32 k = (__u32)i;

		bpf_map_lookup_elem(cfd, &k, &cnt[i]);
	}
	getsockopt(fd, SOL_XDP, XDP_STATISTICS, &xs, &sl);
	printf("xdp: %llu packets, %llu multi-buffer, %llu to AF_XDP; "
	       "AF_XDP: %lu packets in %lu descriptors, %lu multi-buffer "
	       "(at most %u descriptors, %u bytes), TCP checksum right %lu "
	       "wrong %lu, rx_dropped %llu\n",
	       (unsigned long long)cnt[0], (unsigned long long)cnt[1],
	       (unsigned long long)cnt[2], r.pkts, r.descs, r.multi, r.maxdescs,
	       r.maxlen, r.csum_ok, r.csum_bad,
	       (unsigned long long)xs.rx_dropped);
	xsk_socket__delete(sock);
detach:
	bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL);
	return err ? 1 : 0;
}
