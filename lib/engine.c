/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * engine.c - the stack: one lwIP instance per process, fed by one source
 * (AF_XDP, TUN or the application's callbacks) and driven by one engine
 * thread that polls (busy while there is work; see engine_main):
 *
 *   l3x_stack__poll()
 *     link->rx        source -> link->input (engine_input, a copy) or
 *                     link->input_pbuf (XDP: the UMEM frame, through receive
 *                     coalescing: lib/gro.c) -> lwIP ip_input
 *                     -> tcp.c/udp.c callbacks -> flows -> worker app rings
 *     l3x_gro_flush   the segments coalescing held, merged, to lwIP
 *     l3x_flow_serve  worker engine rings -> the flow's protocol (ops)
 *                     then the ACKs lwIP deferred over both (ack_coalesce)
 *     timers          lwIP sys_check_timeouts(), a slice of its TCP timer
 *                     round, todo, linger and zombies, UDP idle expiry
 *     link->flush     kick transmit; l3x_flow_kick: sleeping workers
 *
 * lwIP's netif carries the any-destination flag (lib/lwip/patches) and
 * sends through the link, which adds layer 2 where the source needs it.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/eventfd.h>

#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/memp.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "lwip/priv/tcp_priv.h"

#include "engine.h"
#include "l3x_csum.h"
#include "mem.h"
#include "l3x_hooks.h"

static struct l3x_stack *the_stack; /* one per process: lwIP's globals */
static pthread_mutex_t the_lock = PTHREAD_MUTEX_INITIALIZER;
static bool lwip_ready;

/* ------------------------------------------------------------ netif */

/* lwIP does not fragment (IP_FRAG 0), so a packet past the MTU never
 * reaches a link: it is dropped and counted in tx_dropped. Only an echo
 * reply to a request reassembled past the MTU is that large (TCP segments
 * fit the MSS, UDP sends past the MTU give -EMSGSIZE). */
static err_t output(struct netif *n, struct pbuf *p, const ip_addr_t *dst)
{
	struct l3x_stack *st = n->state;

	if (p->tot_len > st->mtu) {
		l3x_count_tx(st, -EMSGSIZE, p->tot_len);
		return ERR_IF;
	}
	return st->link->ops->output(st->link, p, dst) ? ERR_IF : ERR_OK;
}

static err_t output4(struct netif *n, struct pbuf *p, const ip4_addr_t *dst)
{
	ip_addr_t a;

	ip_addr_copy_from_ip4(a, *dst);
	return output(n, p, &a);
}

static err_t output6(struct netif *n, struct pbuf *p, const ip6_addr_t *dst)
{
	ip_addr_t a;

	ip_addr_copy_from_ip6(a, *dst);
	return output(n, p, &a);
}

static err_t netif_setup(struct netif *n)
{
	struct l3x_stack *st = n->state;

	n->name[0] = 'l';
	n->name[1] = '3';
	n->mtu = (u16_t)st->mtu;
	n->mtu6 = (u16_t)st->mtu;
	n->output = output4;
	n->output_ip6 = output6;
	n->flags = NETIF_FLAG_UP | NETIF_FLAG_LINK_UP | NETIF_FLAG_L3X_ANYDEST;
	return ERR_OK;
}

static void netif_start(struct l3x_stack *st)
{
	/* An address of our own, for lwIP's routing checks only: every
	 * flow answers from its original destination. 192.0.0.8 is the
	 * IPv4 dummy address (RFC 7600). */
	ip4_addr_t addr, mask, gw;

	IP4_ADDR(&addr, 192, 0, 0, 8);
	IP4_ADDR(&mask, 255, 255, 255, 255);
	ip4_addr_set_zero(&gw);
	netif_add(&st->netif, &addr, &mask, &gw, st, netif_setup, ip_input);
	netif_set_default(&st->netif);
	netif_set_up(&st->netif);
	netif_set_link_up(&st->netif);
}

/* ------------------------------------------------------------ fates */

/*
 * What became of a packet handed to lwIP, counted once in one rx_* fate
 * (l3x_stack_stats). lwIP counts per protocol, some drops under several
 * names (lenerr and drop) and some not at all (an IPv6 packet for no
 * address of ours or with no next header, a RST for no connection), so
 * the engine reads lwIP's counters before and after the packet and
 * decides from what moved; the TCP hook says which PCB took a segment
 * (l3x_tcp_in_state, kept in lib/lwip/sys_arch.c beside the hooks).
 */
struct lwip_marks {
	uint32_t ip_drop, frag_recv, frag_drop, tcp_recv, tcp_drop, udp_recv,
		udp_drop, icmp_recv, icmp_bad;
};

#define ICMP_BAD(p)                                                            \
	(lwip_stats.p.drop + lwip_stats.p.lenerr + lwip_stats.p.chkerr +       \
	 lwip_stats.p.err + lwip_stats.p.memerr)

static void lwip_marks(struct lwip_marks *m)
{
	m->ip_drop = lwip_stats.ip.drop + lwip_stats.ip6.drop;
	m->frag_recv = lwip_stats.ip_frag.recv + lwip_stats.ip6_frag.recv;
	m->frag_drop = lwip_stats.ip_frag.drop + lwip_stats.ip6_frag.drop;
	m->tcp_recv = lwip_stats.tcp.recv;
	m->tcp_drop = lwip_stats.tcp.drop;
	m->udp_recv = lwip_stats.udp.recv;
	m->udp_drop = lwip_stats.udp.drop;
	/* ICMP counts some drops (length, checksum) without .drop */
	m->icmp_recv = lwip_stats.icmp.recv + lwip_stats.icmp6.recv;
	m->icmp_bad = ICMP_BAD(icmp) + ICMP_BAD(icmp6);
}

/* TCP took the segment: which PCB, or a drop. */
static size_t tcp_fate(const struct lwip_marks *a, const struct lwip_marks *b)
{
	/* No PCB and not counted: a RST for no connection, ignored. */
	if (b->tcp_drop != a->tcp_drop || !l3x_tcp_in_state)
		return STAT(rx_tcp_bad);
	switch (l3x_tcp_in_state - 1) {
	case LISTEN:
		return STAT(rx_tcp_listen);
	case TIME_WAIT:
		return STAT(rx_tcp_timewait);
	default:
		return STAT(rx_tcp_flow);
	}
}

/* The counter of what became of the packet, from lwIP's counters @a
 * before it and @b after. The deepest layer that saw it decides: a
 * fragment that completes its datagram gets the datagram's fate. */
static size_t fate(const struct lwip_marks *a, const struct lwip_marks *b)
{
	if (b->frag_drop != a->frag_drop)
		return STAT(rx_frag_bad);
	if (b->ip_drop != a->ip_drop)
		return STAT(rx_ip_bad);
	if (b->tcp_recv != a->tcp_recv)
		return tcp_fate(a, b);
	if (b->udp_recv != a->udp_recv)
		return b->udp_drop != a->udp_drop ? STAT(rx_udp_bad)
						  : STAT(rx_udp);
	if (b->icmp_recv != a->icmp_recv)
		return b->icmp_bad != a->icmp_bad ? STAT(rx_icmp_bad)
						  : STAT(rx_icmp);
	if (b->frag_recv != a->frag_recv)
		return STAT(rx_frag_held);
	/* IPv6 freed uncounted: no next header, or not for us (multicast) */
	return STAT(rx_ip_bad);
}

/* ------------------------------------------------------------ input */

/* A TCP segment without data and without SYN (an ACK, a FIN, a RST),
 * unfragmented: what lets memory go, never what takes more. */
static bool frees_memory(const uint8_t *pkt, size_t len)
{
	size_t ip_hl, tcp_hl, tot;

	if (len >= 20 && pkt[0] >> 4 == 4) {
		ip_hl = (size_t)(pkt[0] & 0xf) * 4;
		tot = (size_t)pkt[2] << 8 | pkt[3];
		if (pkt[9] != 6 || (pkt[6] & 0x3f) || pkt[7])
			return false; /* not TCP, or a fragment */
	} else if (len >= 40 && pkt[0] >> 4 == 6) {
		ip_hl = 40;
		tot = 40 + ((size_t)pkt[4] << 8 | pkt[5]);
		if (pkt[6] != 6)
			return false; /* not TCP, or extension headers */
	} else {
		return false;
	}
	if (tot > len || ip_hl + 20 > tot)
		return false;
	tcp_hl = (size_t)(pkt[ip_hl + 12] >> 4) * 4;
	return ip_hl + tcp_hl == tot && !(pkt[ip_hl + 13] & 0x02);
}

/* The checks every packet passes before lwIP sees it, counted: the
 * software rules when @filter, and max_memory. 1 if it may go in, 0 if
 * dropped (no rule, not IP), -ENOBUFS. */
static int input_admit(struct l3x_stack *st, const void *pkt, size_t len,
		       bool filter)
{
	STAT_INC(st, rx_packets);
	STAT_ADD(st, rx_bytes, len);
	switch (l3x_ruleset_match(filter ? st->rules : NULL, pkt, len, 0)) {
	case L3X_VERDICT_MALFORMED:
		STAT_INC(st, rx_not_ip);
		return 0;
	case L3X_VERDICT_PASS:
		STAT_INC(st, rx_no_rule);
		return 0;
	case L3X_VERDICT_MATCH:
		break;
	}
	/* Its buffer would take memory past max_memory: only what lets
	 * memory go comes in (what is kept stays below mem_adm, so this
	 * takes a flood that lwIP holds on to: reassembly, or an
	 * application writing past max_memory). */
	if (l3x_mem_total() + len + 2 * sizeof(struct pbuf) > st->max_memory &&
	    !frees_memory(pkt, len)) {
		STAT_INC(st, rx_no_memory);
		return -ENOBUFS;
	}
	return 1;
}

/* @p (ours now, @segs segments merged: lib/gro.c) to lwIP, and what
 * became of it counted, once per segment. */
static void input_feed(struct l3x_stack *st, struct pbuf *p, unsigned segs)
{
	struct lwip_marks before, after;
	err_t err;

	lwip_marks(&before);
	l3x_tcp_in_state = 0;
	/* A merged segment is ACKed as the segments it stands for (patch
	 * 0062). */
	tcp_l3x_in_segs = (u8_t)segs;
	err = st->netif.input(p, &st->netif);
	tcp_l3x_in_segs = 1;
	if (err != ERR_OK) {
		/* ip_input() returns ERR_OK always; should it not, the
		 * packet is ours to free, and it went nowhere */
		pbuf_free(p);
		STAT_ADD(st, rx_ip_bad, segs);
		return;
	}
	lwip_marks(&after);
	stat_add(st, fate(&before, &after), segs);
}

/* A packet receive coalescing held, as its link replays it. */
static void input_replayed(struct l3x_stack *st, struct pbuf *p)
{
	input_feed(st, p, st->gro_segs);
}

/* What receive coalescing lets go (lib/gro.c): a packet it held goes in
 * through its link, which sets the context of its frame back (the way
 * back of a reply sent from within lwIP, its zone). */
static void gro_feed(void *ctx, struct pbuf *p, unsigned segs, bool held)
{
	struct l3x_stack *st = ctx;

	if (!held || !st->link->ops->replay) {
		input_feed(st, p, segs);
		return;
	}
	st->gro_segs = segs;
	st->link->ops->replay(st->link, p);
}

/* Feed one IP packet (copied) to lwIP; matched against the software rules
 * when @filter. Returns 0 or -ENOBUFS. */
static int engine_input(struct l3x_stack *st, const void *pkt, size_t len,
			bool filter)
{
	struct pbuf *p;
	int r;

	r = input_admit(st, pkt, len, filter);
	if (r <= 0)
		return r;
	p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
	if (!p) {
		STAT_INC(st, rx_no_memory);
		return -ENOBUFS;
	}
	if (l3x_csum_copy_ip(p->payload, pkt, len))
		p->flags |= PBUF_FLAG_L3X_CSUM_OK;
	STAT_INC(st, rx_copied);
	/* Not held: the segments held for its flow go first. */
	l3x_gro_pass(&st->gro, p->payload, len, l3x_zone_in);
	input_feed(st, p, 1);
	return 0;
}

/* What the XDP program steered: its rules took it already. */
static int input_steered(struct l3x_stack *st, const void *pkt, size_t len)
{
	return engine_input(st, pkt, len, false);
}

/* The same, in a buffer of the source's own that lwIP keeps as it is (a
 * UMEM frame: zero copy); @p, one pbuf, is the engine's in every case. */
static int input_steered_pbuf(struct l3x_stack *st, struct pbuf *p)
{
	int r = input_admit(st, p->payload, p->len, false);

	if (r <= 0) {
		pbuf_free(p);
		return r;
	}
	STAT_INC(st, rx_zerocopy);
	if (st->gro_on)
		l3x_gro_add(&st->gro, p, l3x_zone_in);
	else
		input_feed(st, p, 1);
	return 0;
}

/* TUN: the software rules decide. */
static int input_filtered(struct l3x_stack *st, const void *pkt, size_t len)
{
	return engine_input(st, pkt, len, true);
}

/* ------------------------------------------------------------ options */

static int check_source(const struct l3x_stack_opts *o)
{
	switch (L3X_OPT(o, source, L3X_SOURCE_XDP)) {
	case L3X_SOURCE_XDP: {
		const char *ifn = L3X_OPT(o, ifname, NULL);

		if (!ifn || !*ifn || strlen(ifn) >= IF_NAMESIZE)
			return -EINVAL;
		if (L3X_OPT(o, queue_count, 0) && !L3X_OPT(o, queues, NULL))
			return -EINVAL;
		if (L3X_OPT(o, queue_count, 0) > L3X_MAX_QUEUES)
			return -EINVAL;
		if (L3X_OPT(o, xdp_mode, L3X_XDP_AUTO) > L3X_XDP_SKB)
			return -EINVAL;
		return l3x_link_xsk_check(o, L3X_OPT(o, mtu, 1500));
	}
	case L3X_SOURCE_TUN: {
		const char *t = L3X_OPT(o, tun_name, NULL);

		return t && *t && strlen(t) < IF_NAMESIZE ? 0 : -EINVAL;
	}
	case L3X_SOURCE_CALLBACK:
		return L3X_OPT(o, output, NULL) ? 0 : -EINVAL;
	}
	return -EINVAL;
}

/*
 * What is kept from the wire stays below max_memory less this headroom
 * (mem_adm), so that what is on its way in (a packet being looked at, a
 * staging buffer, lwIP's reassembly) still fits under max_memory.
 */
static uint64_t mem_headroom(uint64_t max_memory)
{
	uint64_t h = max_memory / 16;

	if (h < 256 * 1024)
		h = 256 * 1024;
	return h > (64u << 20) ? 64u << 20 : h;
}

/* The flow budgets, the per-source caps, and the rings they size. */
static int check_budgets(struct l3x_stack *st, const struct l3x_stack_opts *o)
{
	uint32_t udp_def = st->max_flows / 4 ? st->max_flows / 4 : 1;
	uint64_t ring_need;

	st->max_kind[L3X_FLOW_TCP] = L3X_OPT(o, max_tcp_flows, st->max_flows);
	st->max_kind[L3X_FLOW_UDP] = L3X_OPT(o, max_udp_flows, udp_def);
	st->max_time_wait =
		L3X_OPT(o, max_time_wait, st->max_kind[L3X_FLOW_TCP]);
	st->per_source = L3X_OPT(o, max_flows_per_source, 0);
	st->per_source64 = L3X_OPT(o, max_flows_per_source64, 0);
	if (st->max_kind[L3X_FLOW_TCP] > (1u << 24) ||
	    st->max_kind[L3X_FLOW_UDP] > (1u << 24) ||
	    st->per_source > (1u << 24) || st->per_source64 > (1u << 24) ||
	    st->max_time_wait > (1u << 24))
		return -EINVAL;
	/* A stream is in a worker's ring at most once: the rings hold every
	 * flow both budgets allow, the UDP flows evicted and not yet closed
	 * (udp.c), and bound sockets (within the 64 spare). */
	ring_need = (uint64_t)st->max_kind[L3X_FLOW_TCP] +
		    st->max_kind[L3X_FLOW_UDP] + L3X_UDP_EVICTED_MAX + 64;
	st->ring_size = 2;
	while (st->ring_size < ring_need)
		st->ring_size <<= 1;
	return 0;
}

/* A timeout in ms: @def for 0, 0 (none) for L3X_MS_NEVER. */
static uint32_t opt_ms(uint32_t v, uint32_t def)
{
	if (!v)
		return def;
	return v == L3X_MS_NEVER ? 0 : v;
}

/* TCP lifetimes: idle, keepalive, persist (tcp.c). */
static int check_lifetimes(struct l3x_stack *st, const struct l3x_stack_opts *o)
{
	st->tcp_idle_ms = opt_ms(L3X_OPT(o, tcp_idle_ms, 0), 3600000);
	st->keepalive_ms = L3X_OPT(o, tcp_keepalive_ms, 0);
	st->keepalive_intvl_ms = L3X_OPT(o, tcp_keepalive_intvl_ms, 75000);
	st->keepalive_cnt = L3X_OPT(o, tcp_keepalive_cnt, 9);
	st->persist_ms = opt_ms(L3X_OPT(o, persist_timeout_ms, 0), 120000);
	/* lwIP counts keepalive time in u32 ms: idle + cnt * intvl fits */
	if (st->keepalive_cnt > 255 || st->keepalive_ms > (1u << 30) ||
	    st->keepalive_intvl_ms > (1u << 22) ||
	    (st->tcp_idle_ms && st->tcp_idle_ms < 1000) ||
	    (st->persist_ms && st->persist_ms < 1000))
		return -EINVAL;
	return 0;
}

static int check_opts(struct l3x_stack *st, const struct l3x_stack_opts *o)
{
	int err;

	if (!l3x_opts_valid(o, sizeof(*o)))
		return -EINVAL;
	err = check_source(o);
	if (err)
		return err;
	st->source = L3X_OPT(o, source, L3X_SOURCE_XDP);
	st->mtu = L3X_OPT(o, mtu, 1500);
	st->max_flows = L3X_OPT(o, max_flows, 65536);
	st->max_memory = L3X_OPT(o, max_memory, 1ull << 30);
	if (st->max_memory < (1u << 20))
		return -EINVAL;
	st->mem_adm = st->max_memory - mem_headroom(st->max_memory);
	st->ooo_max_bytes = L3X_OPT(o, ooo_max_bytes, 256 * 1024);
	st->ooo_max_segs = L3X_OPT(o, ooo_max_segs, 64);
	if (st->ooo_max_bytes < 4096 || st->ooo_max_bytes > (4u << 20) ||
	    st->ooo_max_segs > 1024)
		return -EINVAL;
	st->defer_accept = L3X_OPT(o, defer_accept, false);
	st->request_timeout_ms = L3X_OPT(o, request_timeout_ms, 5000);
	/* Under lwIP's own 20 s for SYN_RCVD, so ours always comes first. */
	if (st->request_timeout_ms < 100 || st->request_timeout_ms > 15000)
		return -EINVAL;
	st->max_half_open = L3X_OPT(o, max_half_open, 4096);
	st->syncookies = L3X_OPT(o, syncookies, L3X_SYNCOOKIES_WHEN_FULL);
	if (st->max_half_open > (1u << 20) ||
	    (unsigned)st->syncookies > L3X_SYNCOOKIES_ALWAYS)
		return -EINVAL;
	st->rx_buf = L3X_OPT(o, rx_buf, 256 * 1024);
	st->tx_buf = L3X_OPT(o, tx_buf, 256 * 1024);
	st->backlog = L3X_OPT(o, backlog, 1024);
	st->linger_ms = L3X_OPT(o, linger_ms, 30000);
	err = check_lifetimes(st, o);
	if (err)
		return err;
	/* 0 is a core: only an opts struct too old to have the field
	 * means no pinning. */
	st->cpu = L3X_OPT_HAS(o, cpu) ? o->cpu : L3X_CPU_NONE;
	st->udp_idle_ms = L3X_OPT(o, udp_idle_ms, 30000);
	st->udp_queue = L3X_OPT(o, udp_queue, 256);
	/* Deadlines are compared as signed 32-bit differences of sys_now():
	 * past INT32_MAX one would look already passed. */
	if (st->linger_ms > INT32_MAX || st->udp_idle_ms > INT32_MAX)
		return -ERANGE;
	if (st->udp_queue > 65535)
		return -EINVAL;
	if (st->mtu < 1280 || st->mtu > 9000)
		return -EINVAL;
	if (st->max_flows > (1u << 24) || st->rx_buf > L3X_TCP_WND_MAX ||
	    st->rx_buf < 65536 || st->tx_buf < 4096 || st->tx_buf > (1u << 30))
		return -EINVAL;
	if (st->cpu < L3X_CPU_NONE || st->cpu >= CPU_SETSIZE)
		return -EINVAL;
	st->poll = L3X_OPT(o, poll, L3X_POLL_ADAPTIVE);
	st->idle_spins = L3X_OPT(o, idle_spins, 0);
	st->idle_yield = L3X_OPT(o, idle_yield, false);
	if (!st->idle_spins)
		st->idle_spins = L3X_IDLE_SPINS;
	if ((unsigned)st->poll > L3X_POLL_BUSY || st->idle_spins > 1000000)
		return -EINVAL;
	st->ack_coalesce = L3X_OPT(o, ack_coalesce, 16);
	if (st->ack_coalesce > 64)
		return -EINVAL;
	if (L3X_OPT(o, gro, 0) > L3X_GRO_OFF)
		return -EINVAL;
	st->gro_on = L3X_OPT(o, gro, 0) != L3X_GRO_OFF;
	/* A merged segment is at most what one coalesced ACK answers. */
	l3x_gro_init(&st->gro,
		     st->ack_coalesce > 1 ? st->ack_coalesce : L3X_GRO_MAX_SEGS,
		     gro_feed, st);
	return check_budgets(st, o);
}

/* ------------------------------------------------------------ open */

/* The per-source counts, when a cap asks for them. */
static int open_sources(struct l3x_stack *st)
{
	if (!st->per_source && !st->per_source64)
		return 0;
	st->sources = l3x_sources_open(st->max_kind[L3X_FLOW_TCP] +
					       st->max_kind[L3X_FLOW_UDP],
				       st->per_source, st->per_source64);
	return st->sources ? 0 : -ENOMEM;
}

/* The steering program, attached or reused, then the link that serves its
 * queues. The stack owns the steering: it closes it after the link. */
static int open_xdp(struct l3x_stack *st, const struct l3x_stack_opts *o)
{
	struct l3x_steer_cfg scfg = {
		.pin_dir = L3X_OPT(o, pin_dir, NULL),
		.xdp_mode = L3X_OPT(o, xdp_mode, L3X_XDP_AUTO),
	};
	int ifindex = (int)if_nametoindex(o->ifname);
	int err;

	if (!ifindex)
		return -ENODEV;
	st->steer = l3x_steer_open(ifindex, &scfg);
	if (!st->steer)
		return -errno;
	st->link = l3x_link_xsk_open(st, o, l3x_steer_maps(st->steer)->xsks,
				     l3x_steer_skb_mode(st->steer));
	if (!st->link) {
		err = -errno;
		l3x_steer_close(st->steer);
		st->steer = NULL;
		return err;
	}
	return 0;
}

static int open_source(struct l3x_stack *st, const struct l3x_stack_opts *o)
{
	int err = 0;

	switch (st->source) {
	case L3X_SOURCE_XDP:
		err = open_xdp(st, o);
		break;
	case L3X_SOURCE_TUN:
		st->link = l3x_link_tun_open(st, o->tun_name, st->mtu);
		break;
	case L3X_SOURCE_CALLBACK:
		/* packets come in through l3x_stack__input() */
		st->link = l3x_link_cb_open(st, o->output,
					    L3X_OPT(o, output_ctx, NULL));
		break;
	}
	if (!err && !st->link)
		err = -errno;
	if (err)
		return err;
	st->link->input =
		st->source == L3X_SOURCE_XDP ? input_steered : input_filtered;
	if (st->source == L3X_SOURCE_XDP)
		st->link->input_pbuf = input_steered_pbuf;
	st->link->feed = input_replayed;
	return err;
}

struct l3x_stack *l3x_stack__open(const struct l3x_stack_opts *opts)
{
	struct l3x_stack *st;
	int err;

	pthread_mutex_lock(&the_lock);
	if (the_stack) {
		err = -EBUSY;
		goto err_unlock;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		err = -ENOMEM;
		goto err_unlock;
	}
	st->efd = -1;
	err = check_opts(st, opts);
	if (err)
		goto err_free;
	st->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (st->efd < 0) {
		err = -errno;
		goto err_free;
	}
	pthread_mutex_init(&st->wlock, NULL);
	l3x_epoch_init(&st->epoch);
	if (!lwip_ready) {
		lwip_init();
		lwip_ready = true;
	}
	netif_start(st);
	the_stack = st;
	/* The protocols, as the flow layer reaches them. */
	st->flow_ops[L3X_FLOW_TCP] = &l3x_tcp_ops;
	st->flow_ops[L3X_FLOW_UDP] = &l3x_udp_ops;
	err = l3x_tcp_listen(st);
	if (!err)
		err = l3x_udp_listen(st);
	if (err)
		goto err_netif;
	err = open_sources(st);
	if (err)
		goto err_netif;
	err = open_source(st, opts);
	if (err)
		goto err_netif;
	/* The XDP program matches in the steering maps; the other sources
	 * match in software. */
	st->rules = l3x_ruleset_open(
		st->steer ? l3x_steer_maps(st->steer) : NULL, &st->epoch);
	if (!st->rules) {
		err = -ENOMEM;
		goto err_link;
	}
	pthread_mutex_unlock(&the_lock);
	l3x_mem_peak_reset();
	return st;

err_link:
	st->link->ops->close(st->link);
	l3x_steer_close(st->steer);
err_netif:
	if (st->listener)
		tcp_close(st->listener);
	l3x_udp_close_all(st);
	l3x_sources_close(st->sources);
	netif_remove(&st->netif);
	the_stack = NULL;
	l3x_epoch_fini(&st->epoch);
	pthread_mutex_destroy(&st->wlock);
err_free:
	if (st->efd >= 0)
		close(st->efd);
	free(st);
err_unlock:
	pthread_mutex_unlock(&the_lock);
	errno = -err;
	return NULL;
}

/* ------------------------------------------------------------ rules API */

int l3x_stack__add_rule(struct l3x_stack *st, const struct l3x_rule *rule)
{
	return st ? l3x_ruleset_add(st->rules, rule) : -EINVAL;
}

int l3x_stack__del_rule(struct l3x_stack *st, const struct l3x_rule *rule)
{
	return st ? l3x_ruleset_del(st->rules, rule) : -EINVAL;
}

/* ------------------------------------------------------------ running */

/* Counters the engine keeps in plain variables, published once a turn:
 * buffered_bytes the bytes held for streams. */
static void publish_counters(struct l3x_stack *st)
{
	atomic_store_explicit(&st->stats.v[STAT(udp_bad_length)],
			      l3x_udp_bad[UDP_L3X_BAD_LENGTH],
			      memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(udp6_zero_checksum)],
			      l3x_udp_bad[UDP_L3X_BAD_CHECKSUM6],
			      memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(buffered_bytes)], st->buffered,
			      memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(mem_bytes)], l3x_mem_total(),
			      memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(mem_peak)], l3x_mem_peak(),
			      memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_flows_open)],
			      st->flows_open[L3X_FLOW_TCP],
			      memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(udp_flows_open)],
			      st->flows_open[L3X_FLOW_UDP],
			      memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_half_open)],
			      l3x_tcp_half_open(st), memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_gro_merged)],
			      st->gro.merged, memory_order_relaxed);
	atomic_store_explicit(&st->stats.v[STAT(tcp_gro_flushed)],
			      st->gro.flushed, memory_order_relaxed);
	l3x_tcp_publish(st);
}

/*
 * PCBs of lwIP's TCP timer round per turn (patch 0006): tcp_tmr() only
 * starts a round every 250 ms, each turn takes this many PCBs of it on.
 * At 100,000 connections lwIP's timers held the loop up for ~9-13 ms every
 * 500 ms, long enough for the rx ring to overflow at line rate; a slice of
 * 512 takes ~20 us, and the round is over within 200 turns.
 */
#define TCP_TMR_BUDGET 512

/* The engine runs on one thread: the one l3x_stack__start() made while
 * started, else whichever calls (one at a time: the caller's promise). */
static bool engine_thread(const struct l3x_stack *st)
{
	return !st->started || pthread_equal(pthread_self(), st->thread);
}

int l3x_stack__poll(struct l3x_stack *st)
{
	int work;

	if (!st)
		return -EINVAL;
	if (!engine_thread(st))
		return -EBUSY;
	l3x_epoch_enter(&st->epoch);
	/* One ACK per connection and burst (lwIP patch 0061, tcp.c): the
	 * outputs tcp_input() deferred go once the workers' requests are
	 * served, so that data written for a connection carries its ACK. */
	l3x_tcp_burst_begin();
	work = st->link->ops->rx(st->link);
	/* What coalescing held of the burst, before its ACKs. */
	l3x_gro_flush(&st->gro);
	work += l3x_flow_serve(st);
	l3x_tcp_burst_end();
	sys_check_timeouts();
	/* After it: a round its tcp_tmr() starts gets going in this turn. A
	 * round under way is work: not idle yet. */
	work += tcp_l3x_timer_slice(TCP_TMR_BUDGET);
	l3x_flow_reap(st);
	l3x_udp_reap(st);
	l3x_tcp_turn_end(st);
	if (st->link->ops->flush)
		st->link->ops->flush(st->link);
	l3x_flow_kick(st);
	publish_counters(st);
	l3x_epoch_exit(&st->epoch);
	return work;
}

int l3x_stack__input(struct l3x_stack *st, const void *pkt, size_t len)
{
	int err;

	if (!st || st->source != L3X_SOURCE_CALLBACK || !pkt || !len ||
	    len > 65535)
		return -EINVAL;
	if (!engine_thread(st))
		return -EBUSY;
	l3x_epoch_enter(&st->epoch);
	err = engine_input(st, pkt, len, true);
	publish_counters(st);
	l3x_epoch_exit(&st->epoch);
	return err;
}

/* Longest sleep, whatever the timers: a bound, should a deadline be
 * missed below. */
#define SLEEP_MAX_MS 1000

/* *@ms lowered to the time from @now until @at (sys_now() ms), 0 if past. */
static void until(uint32_t *ms, uint32_t now, uint32_t at)
{
	int32_t d = (int32_t)(at - now);

	if (d < 0)
		d = 0;
	if ((uint32_t)d < *ms)
		*ms = (uint32_t)d;
}

/* Something on a worker that the engine looks at every REAP_MS (flow.c):
 * streams lingering or waiting for their request's answer, zombies. */
static bool reap_due(struct l3x_stack *st)
{
	unsigned i;

	for (i = 0; i < L3X_MAX_WORKERS; i++) {
		/* Acquire: pairs with the release in l3x_worker__open(). */
		struct l3x_worker *w = atomic_load_explicit(
			&st->workers[i], memory_order_acquire);

		if (w && (w->lingering || w->zombies || w->requests))
			return true;
	}
	return false;
}

/*
 * How long the engine may sleep: until the first timer that is due, of
 * lwIP (sys_timeouts_sleeptime: TCP's timer while it has PCBs,
 * reassembly, ND) and of the engine (flow.c reaping, tcp.c window passes,
 * udp.c requests and idle flows), at most SLEEP_MAX_MS. A round of TCP's
 * timer under way is work: the engine does not sleep in it.
 */
static int sleep_ms(struct l3x_stack *st)
{
	uint32_t now = sys_now(), ms = sys_timeouts_sleeptime();
	unsigned l;

	if (ms > SLEEP_MAX_MS)
		ms = SLEEP_MAX_MS;
	if (reap_due(st))
		until(&ms, now, st->next_reap);
	if (st->clamped)
		until(&ms, now, st->next_wnd_pass);
	if (st->udp_rq_head)
		until(&ms, now, st->udp_rq_head->rq_deadline);
	for (l = 0; l < 2; l++)
		if (st->udp_idle[l].head)
			until(&ms, now,
			      st->udp_idle[l].head->last_active +
				      st->udp_idle_ms);
	return (int)ms;
}

/*
 * Sleep until there is work: a packet on the link's fds, a worker's post
 * (efd, l3x_engine_wake) or the next timer. Returns true if woken by an
 * fd, false on the timeout or when it did not sleep: the link has work
 * in hand (wait_fds -EAGAIN), or a worker posted meanwhile.
 */
static bool engine_sleep(struct l3x_stack *st)
{
	struct pollfd pfd[L3X_MAX_QUEUES + 1];
	uint64_t junk;
	int n = 0, r;

	if (st->link->ops->wait_fds) {
		n = st->link->ops->wait_fds(st->link, pfd + 1, L3X_MAX_QUEUES);
		if (n < 0)
			return false;
	}
	pfd[0] = (struct pollfd){ .fd = st->efd, .events = POLLIN };
	atomic_store(&st->sleeping, 1);
	/* Seq_cst fence: the store of sleeping before the last look at the
	 * rings, as a worker's post is before its read of sleeping
	 * (l3x_engine_wake): either we see the post here, or it sees us
	 * about to sleep and writes efd. The link's fds are level
	 * triggered: a packet after wait_fds looked wakes poll at once. */
	atomic_thread_fence(memory_order_seq_cst);
	if (l3x_flow_pending(st) ||
	    atomic_load_explicit(&st->stop, memory_order_acquire)) {
		atomic_store(&st->sleeping, 0);
		return false;
	}
	r = poll(pfd, (nfds_t)n + 1, sleep_ms(st));
	atomic_store(&st->sleeping, 0);
	if (r > 0 && (pfd[0].revents & POLLIN) &&
	    read(st->efd, &junk, sizeof(junk)) < 0)
		junk = 0; /* another wake-up drained it: nothing to do */
	return r > 0;
}

/*
 * The engine thread. L3X_POLL_BUSY: turns back to back. L3X_POLL_ADAPTIVE:
 * the same while turns find work; after idle_spins turns without any it
 * sleeps (engine_sleep), so that it can share a core with the workers.
 * Woken by a timeout, one turn looks at the timers and, with nothing
 * more to do, it sleeps again at once.
 */
static void *engine_main(void *arg)
{
	struct l3x_stack *st = arg;
	uint32_t idle = 0;

	if (st->cpu != L3X_CPU_NONE) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(st->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
			pr_warn("engine: cannot pin to CPU %d\n", st->cpu);
	}
	/* Acquire: pairs with the release store in l3x_stack__stop(). */
	while (!atomic_load_explicit(&st->stop, memory_order_acquire)) {
		if (l3x_stack__poll(st) > 0) {
			idle = 0;
			continue;
		}
		if (st->poll == L3X_POLL_BUSY)
			continue;
		if (++idle < st->idle_spins) {
			/* A worker we woke may wait for this core: let it
			 * run now, its answer is our next work. Alone on
			 * the core, the yield returns at once. */
			if (st->idle_yield)
				sched_yield();
			continue;
		}
		idle = engine_sleep(st) ? 0 : st->idle_spins - 1;
	}
	return NULL;
}

int l3x_stack__start(struct l3x_stack *st)
{
	int err;

	if (!st)
		return -EINVAL;
	if (st->started)
		return -EALREADY;
	atomic_store(&st->stop, false);
	st->started = true;
	err = pthread_create(&st->thread, NULL, engine_main, st);
	if (err) {
		st->started = false;
		return -err;
	}
	pthread_setname_np(st->thread, "l3x-engine");
	return 0;
}

int l3x_stack__stop(struct l3x_stack *st)
{
	if (!st)
		return -EINVAL;
	if (!st->started)
		return -EALREADY;
	/* Release: pairs with the acquire load in engine_main(). */
	atomic_store_explicit(&st->stop, true, memory_order_release);
	l3x_engine_wake(st);
	pthread_join(st->thread, NULL);
	st->started = false;
	return 0;
}

/* ------------------------------------------------------------ stats */

int l3x_stack__stats(const struct l3x_stack *st, struct l3x_stack_stats *out)
{
	uint64_t *v = (uint64_t *)out;
	size_t i;

	if (!st || !out)
		return -EINVAL;
	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		v[i] = atomic_load_explicit(
			&((struct l3x_stack *)st)->stats.v[i],
			memory_order_relaxed);
	/* Sums, so that they always agree with their parts. */
	out->rx_bad = out->rx_ip_bad + out->rx_frag_bad + out->rx_tcp_bad +
		      out->rx_udp_bad + out->rx_icmp_bad;
	if (st->link->ops->rx_dropped)
		out->rx_ring_dropped = st->link->ops->rx_dropped(st->link);
	return 0;
}

static uint32_t pool_used(memp_t t)
{
	return memp_pools[t]->stats ? memp_pools[t]->stats->used : 0;
}

int l3x_stack__mem(const struct l3x_stack *st, struct l3x_stack_mem *m)
{
	if (!st || !m)
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->heap_bytes = l3x_mem_used(L3X_MEM_LWIP);
	m->pbufs = pool_used(MEMP_PBUF) + pool_used(MEMP_PBUF_POOL);
	m->tcp_pcbs = pool_used(MEMP_TCP_PCB);
	m->tcp_listen_pcbs = pool_used(MEMP_TCP_PCB_LISTEN);
	m->tcp_segs = pool_used(MEMP_TCP_SEG);
	m->udp_pcbs = pool_used(MEMP_UDP_PCB);
	m->reass = pool_used(MEMP_REASSDATA) + pool_used(MEMP_IP6_REASSDATA);
	m->streams = (uint32_t)st->streams_alive;
	if (st->link->ops->frames)
		st->link->ops->frames(st->link, &m->frames);
	return 0;
}

int l3x_stack__steer_stats(const struct l3x_stack *st,
			   struct l3x_steer_stats *out)
{
	if (!st || !out)
		return -EINVAL;
	if (!st->steer)
		return -EOPNOTSUPP;
	return l3x_steer_stats(st->steer, out);
}

/* ------------------------------------------------------------ close */

int l3x_stack__close(struct l3x_stack *st)
{
	size_t i;

	if (!st)
		return 0;
	for (i = 0; i < L3X_MAX_WORKERS; i++)
		if (atomic_load(&st->workers[i]) &&
		    !atomic_load(&st->workers[i])->closing)
			return -EBUSY;
	if (st->started)
		l3x_stack__stop(st);
	/* Let closed workers go (their streams are reset), then the rest. */
	l3x_flow_serve(st);
	l3x_tcp_close_all(st);
	l3x_udp_close_all(st);
	l3x_sources_close(st->sources);
	if (st->link->ops->flush)
		st->link->ops->flush(st->link);
	l3x_ruleset_close(st->rules);
	st->link->ops->close(st->link);
	l3x_steer_close(st->steer); /* after the link: its sockets are in
				     * the program's XSKMAP */
	pthread_mutex_lock(&the_lock);
	netif_remove(&st->netif);
	the_stack = NULL;
	l3x_mem_cache_drain(); /* lwIP's blocks back to the C library */
	pthread_mutex_unlock(&the_lock);
	l3x_epoch_fini(&st->epoch);
	pthread_mutex_destroy(&st->wlock);
	close(st->efd);
	free(st);
	return 0;
}
