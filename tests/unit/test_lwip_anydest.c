/*
 * test_lwip_anydest.c - our lwIP patches (lib/lwip/patches): one lwIP
 * instance terminates TCP and UDP for any destination address and port.
 *
 * Crafted IPv4/IPv6 packets, checksums included, go in through
 * netif->input; whatever lwIP sends is captured from the netif's output
 * callbacks and parsed back, its checksums verified. Criterion forks each
 * test, so lwIP's globals start fresh in every test; teardown checks that
 * every lwIP pool and the heap are back where they started.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "lwip/init.h"
#include "lwip/ip.h"
#include "lwip/mem.h"
#include "lwip/memp.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/tcp.h"

#include "csum.h"
#include "l3x_hooks.h"
#include "mem.h"
#include "wire_helpers.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Documentation ranges: none of them is the netif's address. */
#define PEER4	 "203.0.113.5"
#define DST4	 "198.51.100.77"
#define PEER6	 "2001:db8:1::2"
#define DST6	 "2001:db8:5::9"
#define PEER_ISN 1000u

/* A peer sending to an address and port that are not the netif's. */
struct flow {
	const char *peer;
	uint16_t peer_port;
	const char *dst;
	uint16_t dst_port;
};

/* A packet lwIP sent, parsed. */
struct seg {
	int v6;
	uint8_t proto;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t mss; /* MSS option, 0 without one */
	uint8_t icmp_type, icmp_code;
	const uint8_t *data;
	size_t len;
};

/* An accepted connection and what it received. */
struct conn {
	int listener; /* tag of the listener that accepted it */
	struct tcp_pcb *pcb;
	char rx[256];
	size_t rxlen;
};

/* What a UDP PCB's recv callback saw. */
struct udp_seen {
	int n;
	int reply; /* answer "pong" from the original destination */
	err_t reply_err;
	ip_addr_t dst, src;
	uint16_t dport, sport;
	char data[64];
};

static struct netif nif;
static struct {
	uint8_t b[2048];
	size_t len;
	uint32_t zone; /* of the PCB that sent it (netif hint), or ~0 */
} cap[64];
static unsigned ncap;
static struct conn conn;
static uint32_t pool_start[MEMP_MAX];
static uint64_t mem_start;
/* inject(): pbuf flags to set, and a value to add to the right checksum
 * (patch 0051's test: a wrong sum the port says it verified) */
static u8_t inject_flags;
static uint16_t inject_sum_off;

/* ------------------------------------------------------------ checksums */

/* The unfolded sum of the pseudo-header (tools/common/csum.c sums). */
static uint32_t pseudo(int v6, const uint8_t *src, const uint8_t *dst,
		       uint8_t proto, size_t len)
{
	size_t alen = v6 ? 16 : 4;
	uint32_t sum;

	sum = csum_partial(src, alen, 0);
	sum = csum_partial(dst, alen, sum);
	return sum + proto + (uint32_t)len;
}

/* ------------------------------------------------------------ to lwIP */

static int is_v6(const char *addr)
{
	return strchr(addr, ':') != NULL;
}

static void pton(const char *s, uint8_t *out)
{
	cr_assert_eq(inet_pton(is_v6(s) ? AF_INET6 : AF_INET, s, out), 1,
		     "bad address %s", s);
}

/*
 * Wrap l4 (its checksum field at csum_off, or none for csum_off < 0) in an
 * IP header from src to dst and hand it to lwIP as the netif's driver would.
 */
static void inject(const char *src, const char *dst, uint8_t proto, uint8_t *l4,
		   size_t l4len, int csum_off)
{
	uint8_t pkt[2048], s[16], d[16];
	int v6 = is_v6(src);
	size_t hlen = v6 ? 40 : 20;
	struct pbuf *p;
	uint16_t c;

	cr_assert_leq(hlen + l4len, sizeof(pkt));
	pton(src, s);
	pton(dst, d);
	if (csum_off >= 0) {
		l4[csum_off] = l4[csum_off + 1] = 0;
		c = csum_fold(csum_partial(l4, l4len,
					   pseudo(v6, s, d, proto, l4len)));
		c = (uint16_t)(c + inject_sum_off);
		l4[csum_off] = (uint8_t)(c >> 8);
		l4[csum_off + 1] = (uint8_t)c;
	}
	memset(pkt, 0, hlen);
	if (v6) {
		pkt[0] = 0x60;
		pkt[4] = (uint8_t)(l4len >> 8);
		pkt[5] = (uint8_t)l4len;
		pkt[6] = proto;
		pkt[7] = 64;
		memcpy(pkt + 8, s, 16);
		memcpy(pkt + 24, d, 16);
	} else {
		pkt[0] = 0x45;
		pkt[2] = (uint8_t)((hlen + l4len) >> 8);
		pkt[3] = (uint8_t)(hlen + l4len);
		pkt[8] = 64;
		pkt[9] = proto;
		memcpy(pkt + 12, s, 4);
		memcpy(pkt + 16, d, 4);
		c = csum_fold(csum_partial(pkt, hlen, 0));
		pkt[10] = (uint8_t)(c >> 8);
		pkt[11] = (uint8_t)c;
	}
	memcpy(pkt + hlen, l4, l4len);
	/* PBUF_RAM, the exact size, as the engine allocates (lib/engine.c):
	 * a read past the packet is then a read past the buffer for ASan. */
	p = pbuf_alloc(PBUF_RAW, (u16_t)(hlen + l4len), PBUF_RAM);
	cr_assert_not_null(p);
	cr_assert_eq(pbuf_take(p, pkt, (u16_t)(hlen + l4len)), ERR_OK);
	p->flags |= inject_flags;
	nif.input(p, &nif);
}

/* A TCP segment from the peer; mss 0 sends no MSS option. */
static void send_tcp(const struct flow *f, uint32_t seq, uint32_t ack,
		     uint8_t flags, uint16_t mss, const char *data)
{
	uint8_t t[256] = { 0 };
	size_t hlen = mss ? 24 : 20, dlen = data ? strlen(data) : 0;

	put16(t, f->peer_port);
	put16(t + 2, f->dst_port);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = (uint8_t)(hlen / 4 << 4);
	t[13] = flags;
	put16(t + 14, 65535);
	if (mss) {
		t[20] = 2;
		t[21] = 4;
		put16(t + 22, mss);
	}
	memcpy(t + hlen, data ? data : "", dlen);
	inject(f->peer, f->dst, IP_PROTO_TCP, t, hlen + dlen, 16);
}

static void send_udp(const struct flow *f, const char *data)
{
	uint8_t u[256] = { 0 };
	size_t len = 8 + strlen(data);

	put16(u, f->peer_port);
	put16(u + 2, f->dst_port);
	put16(u + 4, (uint16_t)len);
	memcpy(u + 8, data, strlen(data));
	inject(f->peer, f->dst, IP_PROTO_UDP, u, len, 6);
}

/* ------------------------------------------------------------ from lwIP */

static void capture(struct pbuf *p)
{
	cr_assert_lt(ncap, ARRAY_SIZE(cap), "more packets than expected");
	cap[ncap].len = pbuf_copy_partial(p, cap[ncap].b, sizeof(cap[0].b), 0);
	cr_assert_eq(cap[ncap].len, p->tot_len);
	cap[ncap].zone = nif.hints ? nif.hints->l3x_zone : UINT32_MAX;
	ncap++;
}

static err_t out4(struct netif *n, struct pbuf *p, const ip4_addr_t *dst)
{
	(void)n;
	(void)dst;
	capture(p);
	return ERR_OK;
}

static err_t out6(struct netif *n, struct pbuf *p, const ip6_addr_t *dst)
{
	(void)n;
	(void)dst;
	capture(p);
	return ERR_OK;
}

static void parse_tcp(struct seg *s, const uint8_t *t, size_t len)
{
	size_t hlen = (size_t)(t[12] >> 4) * 4, i;

	cr_assert_geq(hlen, 20);
	cr_assert_leq(hlen, len);
	s->sport = get16(t);
	s->dport = get16(t + 2);
	s->seq = get32(t + 4);
	s->ack = get32(t + 8);
	s->flags = t[13] & 0x3f;
	for (i = 20; i < hlen && t[i] != 0;) {
		if (t[i] == 1) {
			i++;
			continue;
		}
		if (t[i] == 2 && t[i + 1] == 4)
			s->mss = get16(t + i + 2);
		cr_assert_geq(t[i + 1], 2, "bad TCP option length");
		i += t[i + 1];
	}
	s->data = t + hlen;
	s->len = len - hlen;
}

/* Packet i as lwIP sent it; every checksum must be right. */
static struct seg parsed(unsigned i)
{
	struct seg s = { 0 };
	const uint8_t *b = cap[i].b, *l4;
	size_t hlen, l4len;

	cr_assert_lt(i, ncap, "packet %u was not sent (%u were)", i, ncap);
	s.v6 = (b[0] >> 4) == 6;
	if (s.v6) {
		hlen = 40;
		l4len = get16(b + 4);
		s.proto = b[6];
		memcpy(s.src, b + 8, 16);
		memcpy(s.dst, b + 24, 16);
	} else {
		cr_assert_eq(b[0], 0x45);
		hlen = 20;
		cr_assert_eq(csum_fold(csum_partial(b, 20, 0)), 0,
			     "IPv4 header checksum");
		l4len = get16(b + 2) - hlen;
		s.proto = b[9];
		memcpy(s.src, b + 12, 4);
		memcpy(s.dst, b + 16, 4);
	}
	cr_assert_eq(hlen + l4len, cap[i].len);
	l4 = b + hlen;
	if (s.proto == IP_PROTO_ICMP) {
		cr_assert_eq(csum_fold(csum_partial(l4, l4len, 0)), 0,
			     "ICMP checksum");
	} else {
		cr_assert_eq(csum_fold(csum_partial(l4, l4len,
						    pseudo(s.v6, s.src, s.dst,
							   s.proto, l4len))),
			     0, "checksum of protocol %u", s.proto);
	}
	if (s.proto == IP_PROTO_TCP) {
		parse_tcp(&s, l4, l4len);
	} else if (s.proto == IP_PROTO_UDP) {
		s.sport = get16(l4);
		s.dport = get16(l4 + 2);
		s.data = l4 + 8;
		s.len = l4len - 8;
	} else {
		s.icmp_type = l4[0];
		s.icmp_code = l4[1];
	}
	return s;
}

static void assert_addr(const uint8_t *a, const char *want, const char *what)
{
	uint8_t w[16];

	pton(want, w);
	cr_assert_eq(memcmp(a, w, is_v6(want) ? 16 : 4), 0, "%s is not %s",
		     what, want);
}

/* s goes back from the flow's original destination to its peer. */
static void assert_reply(const struct seg *s, const struct flow *f)
{
	cr_assert_eq(s->v6, is_v6(f->dst));
	assert_addr(s->src, f->dst, "source address");
	assert_addr(s->dst, f->peer, "destination address");
	if (s->proto == IP_PROTO_TCP || s->proto == IP_PROTO_UDP) {
		cr_assert_eq(s->sport, f->dst_port, "source port %u", s->sport);
		cr_assert_eq(s->dport, f->peer_port);
	}
}

static int ip_is(const ip_addr_t *a, const char *want)
{
	ip_addr_t w;

	cr_assert(ipaddr_aton(want, &w));
	return ip_addr_eq(a, &w);
}

/* ------------------------------------------------------------ callbacks */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	(void)arg;
	(void)err;
	if (p == NULL)
		return ERR_OK;
	cr_assert_leq(conn.rxlen + p->tot_len, sizeof(conn.rx) - 1);
	conn.rxlen += pbuf_copy_partial(p, conn.rx + conn.rxlen, p->tot_len, 0);
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	(void)arg;
	(void)err;
	conn.pcb = NULL; /* lwIP has freed it */
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	cr_assert_eq(err, ERR_OK);
	cr_assert_null(conn.pcb, "one connection at a time");
	conn.listener = *(const int *)arg;
	conn.pcb = pcb;
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, on_recv);
	tcp_err(pcb, on_err);
	return ERR_OK;
}

static void on_udp(void *arg, struct udp_pcb *pcb, struct pbuf *p,
		   const ip_addr_t *addr, u16_t port)
{
	struct udp_seen *u = arg;
	struct pbuf *q;

	u->n++;
	ip_addr_copy(u->dst, *ip_current_dest_addr());
	u->dport = udp_current_dest_port();
	ip_addr_copy(u->src, *addr);
	u->sport = port;
	pbuf_copy_partial(p, u->data, sizeof(u->data) - 1, 0);
	pbuf_free(p);
	if (!u->reply)
		return;
	q = pbuf_alloc(PBUF_TRANSPORT, 4, PBUF_RAM);
	cr_assert_not_null(q);
	pbuf_take(q, "pong", 4);
	u->reply_err =
		udp_sendto_from(pcb, q, addr, port, ip_current_dest_addr(),
				udp_current_dest_port());
	pbuf_free(q);
}

/* ------------------------------------------------------------ set-up */

static err_t nif_init(struct netif *n)
{
	n->name[0] = 't';
	n->name[1] = '0';
	n->mtu = 1500;
	n->output = out4;
	n->output_ip6 = out6;
	n->flags = NETIF_FLAG_L3X_ANYDEST;
	return ERR_OK;
}

static void setup(void)
{
	static int initialised;
	unsigned i;

	/* Once per process: criterion forks each test, --no-fork does not. */
	if (!initialised++)
		lwip_init();
	for (i = 0; i < MEMP_MAX; i++)
		pool_start[i] = lwip_stats.memp[i]->used;
	mem_start = l3x_mem_used(L3X_MEM_LWIP);
	/* No address at all: the flag alone makes it terminate and route. */
	cr_assert_not_null(
		netif_add(&nif, NULL, NULL, NULL, NULL, nif_init, ip_input));
	netif_set_default(&nif);
	netif_set_up(&nif);
	netif_set_link_up(&nif);
	ncap = 0;
	memset(&conn, 0, sizeof(conn));
}

static void teardown(void)
{
	uint32_t deadline;
	unsigned i;

	/* TIME-WAIT lasts 2 MSL: 240 slow ticks, one per two tcp_tmr(). */
	for (i = 0; i < 1000 && (tcp_active_pcbs || tcp_tw_pcbs); i++)
		tcp_tmr();
	cr_expect_null(tcp_active_pcbs, "a connection was left open");
	cr_expect_null(tcp_tw_pcbs);
	cr_expect_null(tcp_listen_pcbs.listen_pcbs, "a listener was left");
	cr_expect_null(udp_pcbs, "a UDP PCB was left");
	netif_remove(&nif);
	/* The TCP timer frees its timeout when it runs and finds no PCB. */
	deadline = sys_now() + 2000;
	while (lwip_stats.memp[MEMP_SYS_TIMEOUT]->used !=
		       pool_start[MEMP_SYS_TIMEOUT] &&
	       (int32_t)(deadline - sys_now()) > 0) {
		sys_check_timeouts();
		usleep(5000);
	}
	for (i = 0; i < MEMP_MAX; i++)
		cr_expect_eq(lwip_stats.memp[i]->used, pool_start[i],
			     "pool %s: %u in use, %u at start",
			     lwip_stats.memp[i]->name,
			     (unsigned)lwip_stats.memp[i]->used, pool_start[i]);
	cr_expect_eq(l3x_mem_used(L3X_MEM_LWIP), mem_start,
		     "heap: %lu, %lu at start",
		     (unsigned long)l3x_mem_used(L3X_MEM_LWIP),
		     (unsigned long)mem_start);
}

TestSuite(anydest, .init = setup, .fini = teardown);

/* ------------------------------------------------------------ TCP */

/* A listener that takes every address and port, or one port if port > 0. */
static struct tcp_pcb *listener_to(uint16_t port, void *arg, tcp_accept_fn fn)
{
	struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_ANY);

	cr_assert_not_null(pcb);
	if (port)
		cr_assert_eq(tcp_bind(pcb, IP_ANY_TYPE, port), ERR_OK);
	else
		ip_set_option(pcb, SOF_L3X_ANYDEST);
	pcb = tcp_listen(pcb);
	cr_assert_not_null(pcb);
	tcp_arg(pcb, arg);
	tcp_accept(pcb, fn);
	return pcb;
}

static struct tcp_pcb *listener(uint16_t port, const int *tag)
{
	return listener_to(port, (void *)tag, on_accept);
}

/* SYN, check the SYN-ACK, ACK it. Returns lwIP's initial sequence number. */
static uint32_t handshake(const struct flow *f, uint16_t mss)
{
	struct seg s;

	ncap = 0;
	send_tcp(f, PEER_ISN, 0, TCP_SYN, mss, NULL);
	cr_assert_eq(ncap, 1, "SYN to %s:%u: %u packets out", f->dst,
		     f->dst_port, ncap);
	s = parsed(0);
	cr_assert_eq(s.proto, IP_PROTO_TCP);
	assert_reply(&s, f);
	cr_assert_eq(s.flags, TCP_SYN | TCP_ACK, "flags %#x", s.flags);
	cr_assert_eq(s.ack, PEER_ISN + 1);
	cr_assert_null(conn.pcb, "accepted before the handshake completed");
	send_tcp(f, PEER_ISN + 1, s.seq + 1, TCP_ACK, 0, NULL);
	cr_assert_not_null(conn.pcb, "not accepted after the final ACK");
	return s.seq;
}

static void assert_pcb_is_flow(const struct tcp_pcb *pcb, const struct flow *f)
{
	cr_assert(ip_is(&pcb->local_ip, f->dst), "local address");
	cr_assert_eq(pcb->local_port, f->dst_port, "local port %u",
		     pcb->local_port);
	cr_assert(ip_is(&pcb->remote_ip, f->peer), "remote address");
	cr_assert_eq(pcb->remote_port, f->peer_port);
}

/*
 * A whole connection to an address and port lwIP does not own: handshake,
 * data both ways, close, and TIME-WAIT still answering from that address.
 */
static void whole_connection(const struct flow *f)
{
	static const int tag = 1;
	struct tcp_pcb *l = listener(0, &tag);
	const struct tcp_pcb *tw;
	uint32_t iss, rx = PEER_ISN + 1;
	struct seg s;

	iss = handshake(f, 1460);
	cr_assert_eq(conn.listener, tag);
	assert_pcb_is_flow(conn.pcb, f);

	send_tcp(f, rx, iss + 1, TCP_PSH | TCP_ACK, 0, "hello");
	rx += 5;
	cr_assert_eq(conn.rxlen, 5);
	cr_assert_eq(memcmp(conn.rx, "hello", 5), 0);

	ncap = 0;
	cr_assert_eq(tcp_write(conn.pcb, "world", 5, TCP_WRITE_FLAG_COPY),
		     ERR_OK);
	cr_assert_eq(tcp_output(conn.pcb), ERR_OK);
	s = parsed(0);
	assert_reply(&s, f);
	cr_assert_eq(s.seq, iss + 1);
	cr_assert_eq(s.ack, rx, "ack %u, not %u", s.ack, rx);
	cr_assert_eq(s.len, 5);
	cr_assert_eq(memcmp(s.data, "world", 5), 0);

	/* We close first: FIN, the peer's FIN-ACK, our last ACK. */
	ncap = 0;
	cr_assert_eq(tcp_close(conn.pcb), ERR_OK);
	conn.pcb = NULL;
	s = parsed(ncap - 1);
	assert_reply(&s, f);
	cr_assert(s.flags & TCP_FIN);
	cr_assert_eq(s.seq, iss + 6);
	ncap = 0;
	send_tcp(f, rx, iss + 7, TCP_FIN | TCP_ACK, 0, NULL);
	s = parsed(ncap - 1);
	assert_reply(&s, f);
	cr_assert_eq(s.flags, TCP_ACK);
	cr_assert_eq(s.ack, rx + 1);

	/* TIME-WAIT found by its 4-tuple: a retransmitted FIN is ACKed. */
	tw = tcp_tw_pcbs;
	cr_assert_not_null(tw);
	assert_pcb_is_flow(tw, f);
	ncap = 0;
	send_tcp(f, rx, iss + 7, TCP_FIN | TCP_ACK, 0, NULL);
	s = parsed(0);
	assert_reply(&s, f);
	cr_assert_eq(s.flags, TCP_ACK);
	cr_assert_eq(s.ack, rx + 1);

	cr_assert_eq(tcp_close(l), ERR_OK);
}

Test(anydest, tcp4_connection_to_any_address_and_port_runs_from_there)
{
	const struct flow f = { PEER4, 40000, DST4, 8080 };

	whole_connection(&f);
}

Test(anydest, tcp6_connection_to_any_address_and_port_runs_from_there)
{
	const struct flow f = { PEER6, 50000, DST6, 443 };

	whole_connection(&f);
}

Test(anydest, tcp_listener_on_the_exact_port_wins_over_anydest)
{
	static const int any = 1, exact = 2;
	const struct flow to80 = { PEER4, 40001, DST4, 80 };
	const struct flow to81 = { PEER4, 40002, DST4, 81 };
	struct tcp_pcb *l_any = listener(0, &any);
	struct tcp_pcb *l_80 = listener(80, &exact);

	handshake(&to80, 1460);
	cr_assert_eq(conn.listener, exact);
	assert_pcb_is_flow(conn.pcb, &to80);
	tcp_abort(conn.pcb);
	cr_assert_null(conn.pcb);

	handshake(&to81, 1460);
	cr_assert_eq(conn.listener, any);
	assert_pcb_is_flow(conn.pcb, &to81);
	tcp_abort(conn.pcb);

	tcp_close(l_80);
	tcp_close(l_any);
}

/* Patch 0016: connections of each zone, and what each received. */
static struct zconn {
	struct tcp_pcb *pcb;
	char rx[64];
	size_t rxlen;
} zc[2];
static unsigned nzc;

static err_t on_recv_zone(void *arg, struct tcp_pcb *pcb, struct pbuf *p,
			  err_t err)
{
	struct zconn *z = arg;

	(void)err;
	if (p == NULL)
		return ERR_OK;
	cr_assert_leq(z->rxlen + p->tot_len, sizeof(z->rx));
	z->rxlen += pbuf_copy_partial(p, z->rx + z->rxlen, p->tot_len, 0);
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

static err_t on_accept_zone(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	cr_assert_eq(err, ERR_OK);
	cr_assert_lt(nzc, ARRAY_SIZE(zc));
	zc[nzc].pcb = pcb;
	tcp_arg(pcb, &zc[nzc++]);
	tcp_recv(pcb, on_recv_zone);
	return ERR_OK;
}

/* The SYN-ACK to a SYN of @f with @isn in zone @zone: lwIP's ISN. */
static uint32_t syn_in_zone(const struct flow *f, uint32_t zone, uint32_t isn)
{
	struct seg s;

	l3x_zone_in = zone;
	ncap = 0;
	send_tcp(f, isn, 0, TCP_SYN, 1460, NULL);
	cr_assert_eq(ncap, 1, "SYN in zone %u: %u packets out", zone, ncap);
	s = parsed(0);
	cr_assert_eq(s.flags, TCP_SYN | TCP_ACK, "zone %u: flags %#x", zone,
		     s.flags);
	cr_assert_eq(s.ack, isn + 1);
	cr_assert_eq(cap[0].zone, zone, "SYN-ACK sent with zone %u",
		     cap[0].zone);
	l3x_zone_in = 0;
	return s.seq;
}

Test(anydest, tcp_same_tuple_in_two_zones_is_two_connections)
{
	static const uint32_t zone[2] = { 100, 200 }, isn[2] = { 1000, 900000 };
	const struct flow f = { PEER4, 40100, DST4, 8080 };
	struct tcp_pcb *l = listener_to(0, NULL, on_accept_zone);
	const char *data[2] = { "one", "two!" };
	uint32_t iss[2];
	unsigned i;
	struct seg s;

	for (i = 0; i < 2; i++)
		iss[i] = syn_in_zone(&f, zone[i], isn[i]);
	cr_assert_neq(iss[0], iss[1]);
	/* Each handshake completes in its zone; the data stays there. */
	for (i = 0; i < 2; i++) {
		l3x_zone_in = zone[i];
		send_tcp(&f, isn[i] + 1, iss[i] + 1, TCP_ACK, 0, NULL);
		cr_assert_eq(nzc, i + 1, "zone %u: not accepted", zone[i]);
		cr_assert_eq(zc[i].pcb->netif_hints.l3x_zone, zone[i]);
		assert_pcb_is_flow(zc[i].pcb, &f);
	}
	for (i = 0; i < 2; i++) {
		l3x_zone_in = zone[i];
		send_tcp(&f, isn[i] + 1, iss[i] + 1, TCP_PSH | TCP_ACK, 0,
			 data[i]);
	}
	l3x_zone_in = 0;
	for (i = 0; i < 2; i++) {
		cr_assert_eq(zc[i].rxlen, strlen(data[i]), "zone %u: %zu bytes",
			     zone[i], zc[i].rxlen);
		cr_assert_eq(memcmp(zc[i].rx, data[i], zc[i].rxlen), 0);
	}
	/* What a connection sends names its zone to the netif. */
	ncap = 0;
	cr_assert_eq(tcp_write(zc[1].pcb, "x", 1, TCP_WRITE_FLAG_COPY), ERR_OK);
	cr_assert_eq(tcp_output(zc[1].pcb), ERR_OK);
	s = parsed(0);
	cr_assert_eq(s.seq, iss[1] + 1);
	cr_assert_eq(cap[0].zone, 200);
	/* A segment of zone 0 finds neither: a reset, both stay. */
	ncap = 0;
	send_tcp(&f, isn[0] + 4, iss[0] + 1, TCP_ACK, 0, "z");
	s = parsed(0);
	cr_assert(s.flags & TCP_RST, "flags %#x", s.flags);
	cr_assert_eq(zc[0].rxlen, 3);
	for (i = 0; i < 2; i++)
		tcp_abort(zc[i].pcb);
	tcp_close(l);
}

Test(anydest, tcp_listener_without_flag_leaves_other_ports_to_rst)
{
	static const int tag = 2;
	const struct flow f = { PEER4, 40003, DST4, 8080 };
	struct tcp_pcb *l = listener(80, &tag);
	struct seg s;

	send_tcp(&f, PEER_ISN, 0, TCP_SYN, 1460, NULL);
	cr_assert_eq(ncap, 1);
	s = parsed(0);
	assert_reply(&s, &f);
	cr_assert(s.flags & TCP_RST, "flags %#x", s.flags);
	cr_assert_eq(s.ack, PEER_ISN + 1);
	cr_assert_null(tcp_active_pcbs);
	tcp_close(l);
}

Test(anydest, netif_without_flag_drops_what_is_not_its_own_address)
{
	static const int tag = 3;
	const struct flow other4 = { PEER4, 40004, DST4, 8080 };
	const struct flow other6 = { PEER6, 40005, DST6, 8080 };
	const struct flow own = { PEER4, 40006, "10.0.0.1", 8080 };
	struct tcp_pcb *l = listener(0, &tag);
	ip4_addr_t a, m;
	u16_t drop4, tcp_in;

	nif.flags &= (u8_t)~NETIF_FLAG_L3X_ANYDEST;
	IP4_ADDR(&a, 10, 0, 0, 1);
	IP4_ADDR(&m, 255, 255, 255, 0);
	netif_set_addr(&nif, &a, &m, NULL);
	drop4 = lwip_stats.ip.drop;
	tcp_in = lwip_stats.tcp.recv;

	send_tcp(&other4, PEER_ISN, 0, TCP_SYN, 1460, NULL);
	send_tcp(&other6, PEER_ISN, 0, TCP_SYN, 1460, NULL);
	cr_assert_eq(ncap, 0, "answered a packet that is not ours");
	cr_assert_eq(lwip_stats.ip.drop, drop4 + 1);
	cr_assert_eq(lwip_stats.tcp.recv, tcp_in, "TCP saw a packet");
	cr_assert_null(tcp_active_pcbs);

	/* The listener still takes any port on the netif's own address. */
	handshake(&own, 1460);
	assert_pcb_is_flow(conn.pcb, &own);
	tcp_abort(conn.pcb);
	tcp_close(l);
}

/* The peer announces MSS 1; lwIP must still send full-sized segments. */
static void mss_floor(const struct flow *f, uint16_t floor)
{
	static const int tag = 4;
	static char buf[3000];
	struct tcp_pcb *l = listener(0, &tag);
	struct seg s;

	handshake(f, 1);
	cr_assert_eq(conn.pcb->mss, floor, "mss %u", conn.pcb->mss);
	ncap = 0;
	memset(buf, 'x', sizeof(buf));
	/* Two full segments: Nagle holds no partial one back. */
	cr_assert_eq(tcp_write(conn.pcb, buf, 2 * floor, TCP_WRITE_FLAG_COPY),
		     ERR_OK);
	cr_assert_eq(tcp_output(conn.pcb), ERR_OK);
	cr_assert_eq(ncap, 2, "%u segments for %u bytes", ncap, 2 * floor);
	s = parsed(0);
	assert_reply(&s, f);
	cr_assert_eq(s.len, floor, "segment of %zu bytes", s.len);
	s = parsed(1);
	cr_assert_eq(s.len, floor);
	tcp_abort(conn.pcb);
	tcp_close(l);
}

Test(anydest, tcp4_peer_mss_1_is_raised_to_536)
{
	const struct flow f = { PEER4, 40007, DST4, 8080 };

	mss_floor(&f, 536);
}

Test(anydest, tcp6_peer_mss_1_is_raised_to_1220)
{
	const struct flow f = { PEER6, 40008, DST6, 8080 };

	mss_floor(&f, 1220);
}

Test(anydest, tcp_peer_mss_above_the_floor_is_kept)
{
	static const int tag = 5;
	const struct flow f = { PEER4, 40009, DST4, 8080 };
	struct tcp_pcb *l = listener(0, &tag);

	handshake(&f, 1000);
	cr_assert_eq(conn.pcb->mss, 1000);
	tcp_abort(conn.pcb);
	tcp_close(l);
}

/* Patch 0042: an MSS option after the SYN changes nothing. Taken, it
 * lifted the IPv6 MSS clamped to the MTU at the handshake (1440) to 1460,
 * and full segments left as 1520-byte packets. */
Test(anydest, tcp_mss_option_after_the_syn_is_ignored)
{
	static const int tag = 6;
	const struct flow f = { PEER6, 40010, DST6, 8080 };
	struct tcp_pcb *l = listener(0, &tag);
	uint32_t isn;

	isn = handshake(&f, 1460);
	cr_assert_eq(conn.pcb->mss, 1440, "mss %u after the SYN",
		     conn.pcb->mss);
	send_tcp(&f, PEER_ISN + 1, isn + 1, TCP_ACK, 1460, NULL);
	cr_assert_eq(conn.pcb->mss, 1440, "mss %u after an ACK with MSS 1460",
		     conn.pcb->mss);
	send_tcp(&f, PEER_ISN + 1, isn + 1, TCP_ACK, 600, NULL);
	cr_assert_eq(conn.pcb->mss, 1440, "mss %u after an ACK with MSS 600",
		     conn.pcb->mss);
	tcp_abort(conn.pcb);
	tcp_close(l);
}

/* Patch 0041: a SYN whose options end in an option kind (MSS, 2) and
 * that carries no data. Stock lwIP read the length byte after it, one
 * past the packet: under ASan (make SANITIZE=address,undefined test) a
 * heap-buffer-overflow, as tests/fuzz/fuzz_engine found it. Parsing stops
 * there; the SYN is answered with the default MSS. */
Test(anydest, tcp_option_kind_in_the_last_header_byte_ends_the_options)
{
	static const int tag = 7;
	/* IPv6: 40 + 24 bytes and the pbuf fill the heap block exactly, so
	 * the byte past the packet is past the block (IPv4's has padding). */
	const struct flow f = { PEER6, 40011, DST6, 8080 };
	struct tcp_pcb *l = listener(0, &tag);
	uint8_t t[24] = { 0 };
	struct seg s;

	put16(t, f.peer_port);
	put16(t + 2, f.dst_port);
	put32(t + 4, PEER_ISN);
	t[12] = 6 << 4;
	t[13] = TCP_SYN;
	put16(t + 14, 65535);
	t[20] = t[21] = t[22] = 1; /* NOP */
	t[23] = 2;		   /* MSS, its length past the header */
	ncap = 0;
	inject(f.peer, f.dst, IP_PROTO_TCP, t, sizeof(t), 16);
	cr_assert_eq(ncap, 1, "%u packets for the SYN", ncap);
	s = parsed(0);
	cr_assert_eq(s.flags, TCP_SYN | TCP_ACK, "flags %#x", s.flags);
	cr_assert_eq(s.ack, PEER_ISN + 1);
	send_tcp(&f, PEER_ISN + 1, s.seq + 1, TCP_ACK, 0, NULL);
	cr_assert_not_null(conn.pcb, "not accepted");
	cr_assert_eq(conn.pcb->mss, 536, "mss %u: not the default",
		     conn.pcb->mss);
	tcp_abort(conn.pcb);
	tcp_close(l);
}

/* ------------------------------------------------------------ UDP */

static struct udp_pcb *udp_anydest(struct udp_seen *seen)
{
	struct udp_pcb *pcb = udp_new_ip_type(IPADDR_TYPE_ANY);

	cr_assert_not_null(pcb);
	ip_set_option(pcb, SOF_L3X_ANYDEST);
	cr_assert_eq(udp_bind(pcb, IP_ANY_TYPE, 0), ERR_OK);
	udp_recv(pcb, on_udp, seen);
	return pcb;
}

/* A datagram to any address and port; the answer leaves from there. */
static void udp_round_trip(const struct flow *f)
{
	struct udp_seen seen = { .reply = 1 };
	struct udp_pcb *pcb = udp_anydest(&seen);
	u16_t bound = pcb->local_port;
	struct seg s;

	send_udp(f, "ping");
	cr_assert_eq(seen.n, 1);
	cr_assert(ip_is(&seen.dst, f->dst), "ip_current_dest_addr()");
	cr_assert_eq(seen.dport, f->dst_port, "udp_current_dest_port() %u",
		     seen.dport);
	cr_assert(ip_is(&seen.src, f->peer));
	cr_assert_eq(seen.sport, f->peer_port);
	cr_assert_str_eq(seen.data, "ping");
	cr_assert_eq(udp_current_dest_port(), 0, "valid outside the callback");

	cr_assert_eq(seen.reply_err, ERR_OK);
	cr_assert_eq(ncap, 1);
	s = parsed(0);
	cr_assert_eq(s.proto, IP_PROTO_UDP);
	assert_reply(&s, f);
	cr_assert_eq(s.len, 4);
	cr_assert_eq(memcmp(s.data, "pong", 4), 0);
	cr_assert_eq(pcb->local_port, bound, "the PCB's binding moved");
	udp_remove(pcb);
}

Test(anydest, udp4_any_address_and_port_reach_the_pcb_replies_leave_from_them)
{
	const struct flow f = { PEER4, 5353, DST4, 9999 };

	udp_round_trip(&f);
}

Test(anydest, udp6_any_address_and_port_reach_the_pcb_replies_leave_from_them)
{
	const struct flow f = { PEER6, 5353, DST6, 53 };

	udp_round_trip(&f);
}

Test(anydest, udp_pcb_on_the_exact_port_wins_over_anydest)
{
	struct udp_seen any = { 0 }, exact = { 0 };
	const struct flow to53 = { PEER4, 5000, DST4, 53 };
	const struct flow to54 = { PEER4, 5000, DST4, 54 };
	struct udp_pcb *p_any = udp_anydest(&any);
	struct udp_pcb *p_53 = udp_new_ip_type(IPADDR_TYPE_ANY);

	cr_assert_eq(udp_bind(p_53, IP_ANY_TYPE, 53), ERR_OK);
	udp_recv(p_53, on_udp, &exact);
	send_udp(&to53, "a");
	cr_assert_eq(exact.n, 1);
	cr_assert_eq(any.n, 0);
	send_udp(&to54, "b");
	cr_assert_eq(exact.n, 1);
	cr_assert_eq(any.n, 1);
	cr_assert_eq(any.dport, 54);
	udp_remove(p_53);
	udp_remove(p_any);
}

Test(anydest, udp_sendto_from_refuses_port_0_and_mixed_versions)
{
	struct udp_seen seen = { 0 };
	struct udp_pcb *pcb = udp_anydest(&seen);
	struct pbuf *q = pbuf_alloc(PBUF_TRANSPORT, 1, PBUF_RAM);
	ip_addr_t a4, b4, a6;

	cr_assert(ipaddr_aton(PEER4, &a4));
	cr_assert(ipaddr_aton(DST4, &b4));
	cr_assert(ipaddr_aton(DST6, &a6));
	cr_assert_eq(udp_sendto_from(pcb, q, &a4, 1, &b4, 0), ERR_VAL);
	cr_assert_eq(udp_sendto_from(pcb, q, &a4, 1, &a6, 1), ERR_VAL);
	cr_assert_eq(ncap, 0);
	cr_assert_eq(udp_sendto_from(pcb, q, &a4, 1, &b4, 7), ERR_OK);
	cr_assert_eq(ncap, 1);
	pbuf_free(q);
	udp_remove(pcb);
}

/* Per-flow PCBs: bound to the original destination, sent with udp_send. */
static void udp_foreign_bound(const struct flow *f)
{
	struct udp_seen seen = { 0 };
	struct udp_pcb *pcb = udp_new_ip_type(IPADDR_TYPE_ANY);
	struct pbuf *q = pbuf_alloc(PBUF_TRANSPORT, 4, PBUF_RAM);
	ip_addr_t local, peer;
	struct seg s;

	cr_assert(ipaddr_aton(f->dst, &local));
	cr_assert(ipaddr_aton(f->peer, &peer));
	cr_assert_eq(udp_bind(pcb, &local, f->dst_port), ERR_OK);
	cr_assert_eq(udp_connect(pcb, &peer, f->peer_port), ERR_OK);
	udp_recv(pcb, on_udp, &seen);
	send_udp(f, "ping");
	cr_assert_eq(seen.n, 1);
	pbuf_take(q, "pong", 4);
	cr_assert_eq(udp_send(pcb, q), ERR_OK);
	s = parsed(0);
	assert_reply(&s, f);
	cr_assert_eq(memcmp(s.data, "pong", 4), 0);
	pbuf_free(q);
	udp_remove(pcb);
}

Test(anydest, udp_pcb_bound_to_a_foreign_address_sends_from_it)
{
	const struct flow f4 = { PEER4, 5353, DST4, 9999 };
	const struct flow f6 = { PEER6, 5353, DST6, 9999 };

	udp_foreign_bound(&f4);
	ncap = 0;
	udp_foreign_bound(&f6);
}

Test(anydest, udp_without_a_pcb_is_unreachable_from_the_original_destination)
{
	const struct flow f4 = { PEER4, 5353, DST4, 9999 };
	const struct flow f6 = { PEER6, 5353, DST6, 9999 };
	struct seg s;

	send_udp(&f4, "ping");
	s = parsed(0);
	cr_assert_eq(s.proto, IP_PROTO_ICMP);
	assert_reply(&s, &f4);
	cr_assert_eq(s.icmp_type, 3);
	cr_assert_eq(s.icmp_code, 3);

	send_udp(&f6, "ping");
	s = parsed(1);
	cr_assert_eq(s.proto, IP6_NEXTH_ICMP6);
	assert_reply(&s, &f6);
	cr_assert_eq(s.icmp_type, 1);
	cr_assert_eq(s.icmp_code, 4);
}

Test(anydest, broadcast_loopback_and_unspecified_keep_stock_handling)
{
	static const char *const dst[] = {
		"255.255.255.255", "127.0.0.1", "0.0.0.0", "::1", "::",
	};
	struct udp_seen seen = { 0 };
	struct udp_pcb *pcb = udp_anydest(&seen);
	unsigned i;

	for (i = 0; i < ARRAY_SIZE(dst); i++) {
		const struct flow f = { is_v6(dst[i]) ? PEER6 : PEER4, 5353,
					dst[i], 9999 };

		send_udp(&f, "ping");
		cr_assert_eq(seen.n, 0, "delivered to %s", dst[i]);
		cr_assert_eq(ncap, 0, "answered to %s", dst[i]);
	}
	udp_remove(pcb);
}

/* ------------------------------------------------------------ many flows */

/*
 * Enough connections that a lookup bug (wrong bucket, stale entry after a
 * removal from the middle of a list) shows: each must get its own segments.
 */
#define NFLOWS 3000

struct many {
	struct flow f;
	char dst[48];
	uint32_t iss, rx_nxt;
	struct tcp_pcb *pcb;
	char rx[32];
	size_t rxlen;
};

static struct many *many;

static err_t on_recv_many(void *arg, struct tcp_pcb *pcb, struct pbuf *p,
			  err_t err)
{
	struct many *m = arg;

	(void)err;
	if (p == NULL)
		return ERR_OK;
	cr_assert_leq(m->rxlen + p->tot_len, sizeof(m->rx) - 1);
	m->rxlen += pbuf_copy_partial(p, m->rx + m->rxlen, p->tot_len, 0);
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

static void on_err_many(void *arg, err_t err)
{
	(void)err;
	((struct many *)arg)->pcb = NULL;
}

static err_t on_accept_many(void *arg, struct tcp_pcb *pcb, err_t err)
{
	unsigned i = pcb->remote_port - 10000u;

	(void)arg;
	cr_assert_eq(err, ERR_OK);
	cr_assert_lt(i, NFLOWS);
	cr_assert_null(many[i].pcb, "flow %u accepted twice", i);
	assert_pcb_is_flow(pcb, &many[i].f);
	many[i].pcb = pcb;
	tcp_arg(pcb, &many[i]);
	tcp_recv(pcb, on_recv_many);
	tcp_err(pcb, on_err_many);
	return ERR_OK;
}

static void many_setup(void)
{
	unsigned i;

	many = calloc(NFLOWS, sizeof(*many));
	cr_assert_not_null(many);
	for (i = 0; i < NFLOWS; i++) {
		struct many *m = &many[i];

		if (i % 4 == 3)
			snprintf(m->dst, sizeof(m->dst), "2001:db8:5::%x", i);
		else
			snprintf(m->dst, sizeof(m->dst), "198.18.%u.%u",
				 i / 250, i % 250 + 1);
		m->f.peer = i % 4 == 3 ? PEER6 : PEER4;
		m->f.peer_port = (uint16_t)(10000 + i);
		m->f.dst = m->dst;
		m->f.dst_port = (uint16_t)(1 + i * 7919 % 65000);
	}
}

/* SYN and ACK, without the checks handshake() makes on a single flow. */
static void many_connect(struct many *m)
{
	struct seg s;

	ncap = 0;
	send_tcp(&m->f, PEER_ISN, 0, TCP_SYN, 1460, NULL);
	s = parsed(0);
	assert_reply(&s, &m->f);
	cr_assert_eq(s.flags, TCP_SYN | TCP_ACK);
	m->iss = s.seq;
	m->rx_nxt = PEER_ISN + 1;
	send_tcp(&m->f, m->rx_nxt, m->iss + 1, TCP_ACK, 0, NULL);
	cr_assert_not_null(m->pcb, "flow to %s:%u not accepted", m->dst,
			   m->f.dst_port);
}

static void many_send(struct many *m, unsigned i)
{
	char data[16];

	snprintf(data, sizeof(data), "m%u.", i);
	ncap = 0;
	send_tcp(&m->f, m->rx_nxt, m->iss + 1, TCP_PSH | TCP_ACK, 0, data);
	m->rx_nxt += (uint32_t)strlen(data);
}

Test(anydest, tcp_thousands_of_flows_each_get_their_own_segments)
{
	struct tcp_pcb *l = listener_to(0, NULL, on_accept_many);
	char want[32];
	unsigned i, k;

	many_setup();
	for (i = 0; i < NFLOWS; i++)
		many_connect(&many[i]);
	/* Out of order, so lookups do not follow the list. */
	for (k = 0; k < NFLOWS; k++) {
		i = k * 1237 % NFLOWS;
		many_send(&many[i], i);
	}
	/* The peers reset every third flow: removals all over the list. */
	for (i = 0; i < NFLOWS; i += 3) {
		ncap = 0;
		send_tcp(&many[i].f, many[i].rx_nxt, 0, TCP_RST, 0, NULL);
		cr_assert_null(many[i].pcb, "flow %u survived its RST", i);
	}
	for (k = 0; k < NFLOWS; k++) {
		i = (NFLOWS - 1 - k) * 1237 % NFLOWS;
		many_send(&many[i], i);
		if (i % 3 == 0) {
			/* Gone: an ACK to no connection is answered by RST. */
			cr_assert_eq(ncap, 1);
			cr_assert(parsed(0).flags & TCP_RST);
			continue;
		}
		snprintf(want, sizeof(want), "m%u.m%u.", i, i);
		cr_assert_str_eq(many[i].rx, want, "flow %u", i);
	}
	for (i = 0; i < NFLOWS; i++) {
		ncap = 0;
		if (many[i].pcb)
			tcp_abort(many[i].pcb);
	}
	cr_assert_null(tcp_active_pcbs);
	tcp_close(l);
	free(many);
}

Test(anydest, tcp_half_open_flows_time_out_and_leave_no_trace)
{
	struct tcp_pcb *l = listener_to(0, NULL, on_accept_many);
	unsigned i, n;

	many_setup();
	for (i = 0; i < 50; i++) {
		ncap = 0;
		send_tcp(&many[i].f, PEER_ISN, 0, TCP_SYN, 1460, NULL);
		cr_assert_eq(ncap, 1);
	}
	/* tcp_slowtmr() drops SYN_RCVD PCBs after TCP_SYN_RCVD_TIMEOUT. */
	for (n = 0; n < 1000 && tcp_active_pcbs; n++) {
		ncap = 0;
		tcp_tmr();
	}
	cr_assert_null(tcp_active_pcbs, "half-open flows still there");
	/* The same 4-tuples start afresh. */
	for (i = 0; i < 50; i++)
		many_connect(&many[i]);
	many_send(&many[7], 7);
	cr_assert_str_eq(many[7].rx, "m7.");
	for (i = 0; i < 50; i++) {
		ncap = 0;
		tcp_abort(many[i].pcb);
	}
	tcp_close(l);
	free(many);
}

/* ------------------------------------------------------------ timer slices */

#if TCP_TMR_SLICED

/*
 * Patch 0006: tcp_tmr() only starts a round of the TCP timers' work, and
 * tcp_l3x_timer_slice(budget) does it, budget PCBs at a time. Each PCB must
 * still get its turn once a round: here a retransmission that is due, or a
 * TIME-WAIT that is over. lwIP then sends more than cap[] holds: counted.
 */
static unsigned nout;

static err_t count4(struct netif *n, struct pbuf *p, const ip4_addr_t *dst)
{
	(void)n;
	(void)p;
	(void)dst;
	nout++;
	return ERR_OK;
}

static err_t count6(struct netif *n, struct pbuf *p, const ip6_addr_t *dst)
{
	(void)n;
	(void)p;
	(void)dst;
	nout++;
	return ERR_OK;
}

static void counting(int on)
{
	nif.output = on ? count4 : out4;
	nif.output_ip6 = on ? count6 : out6;
}

/* Unacked data on a flow, its retransmission due at the next slow tick. */
static void unacked(struct many *m)
{
	cr_assert_eq(tcp_write(m->pcb, "x", 1, TCP_WRITE_FLAG_COPY), ERR_OK);
	cr_assert_eq(tcp_output(m->pcb), ERR_OK);
	cr_assert_eq(m->pcb->nrtx, 0);
	cr_assert_geq(m->pcb->rto, 1);
	m->pcb->rtime = (s16_t)(m->pcb->rto - 1);
}

/* Start a round with the slow timer's work (every other tcp_tmr()). */
static void start_slow_round(void)
{
	u32_t ticks = tcp_ticks;

	tcp_tmr();
	if (tcp_ticks == ticks) {
		/* a fast round: nothing for it to do here; the next is slow */
		cr_assert_eq(tcp_l3x_timer_slice(100000), 0);
		cr_assert_eq(nout, 0);
		tcp_tmr();
	}
	cr_assert_eq(tcp_ticks, ticks + 1);
}

/* Slices of budget until the round is over; none sends more than most.
 * Returns how many it took. */
static unsigned finish_round(unsigned budget, unsigned most)
{
	unsigned slices = 0, before;
	int more;

	do {
		before = nout;
		more = tcp_l3x_timer_slice(budget);
		slices++;
		cr_assert_leq(nout - before, most, "slice %u sent %u", slices,
			      nout - before);
	} while (more);
	return slices;
}

static void abort_all_many(unsigned n, struct tcp_pcb *l)
{
	unsigned i;

	counting(1);
	for (i = 0; i < n; i++)
		if (many[i].pcb)
			tcp_abort(many[i].pcb);
	counting(0);
	cr_assert_null(tcp_active_pcbs);
	tcp_close(l);
	free(many);
}

Test(anydest, tcp_timer_round_goes_in_slices_of_the_budget)
{
	enum { N = 1000, TW = 300, B = 64 };
	struct tcp_pcb *l = listener_to(0, NULL, on_accept_many);
	struct tcp_pcb *pcb;
	unsigned i, ntw = 0;

	many_setup();
	for (i = 0; i < N; i++)
		many_connect(&many[i]);
	counting(1);
	/* The first TW flows: we close, the peer's FIN-ACK, TIME-WAIT. */
	for (i = 0; i < TW; i++) {
		struct many *m = &many[i];

		cr_assert_eq(tcp_close(m->pcb), ERR_OK);
		m->pcb = NULL;
		send_tcp(&m->f, m->rx_nxt, m->iss + 2, TCP_FIN | TCP_ACK, 0,
			 NULL);
	}
	/* ... their 2 MSL over at the next slow tick */
	for (pcb = tcp_tw_pcbs; pcb != NULL; pcb = pcb->next, ntw++)
		pcb->tmr = tcp_ticks - 2 * TCP_MSL / TCP_SLOW_INTERVAL;
	cr_assert_eq(ntw, TW);
	/* The others: a retransmission due. */
	for (i = TW; i < N; i++)
		unacked(&many[i]);

	nout = 0;
	start_slow_round();
	cr_assert_eq(nout, 0, "tcp_tmr() did the work itself");
	/* One visit per PCB, active and TIME-WAIT alike: ceil(N / B). */
	cr_assert_eq(finish_round(B, B), (N + B - 1) / B);
	cr_assert_eq(nout, N - TW, "%u retransmissions", nout);
	cr_assert_null(tcp_tw_pcbs, "a TIME-WAIT PCB outlived 2 MSL");
	for (i = TW; i < N; i++) {
		pcb = many[i].pcb;
		cr_assert_not_null(pcb);
		/* once: a second visit would have run rtime up again */
		cr_assert_eq(pcb->nrtx, 1, "flow %u: %u retransmissions", i,
			     pcb->nrtx);
		cr_assert_eq(pcb->rtime, 0, "flow %u visited again", i);
	}
	abort_all_many(N, l);
}

static err_t poll_abort_next(void *arg, struct tcp_pcb *pcb)
{
	(void)arg;
	cr_assert_not_null(pcb->next);
	tcp_abort(pcb->next);
	return ERR_OK;
}

static err_t poll_abort_self(void *arg, struct tcp_pcb *pcb)
{
	(void)arg;
	tcp_abort(pcb);
	return ERR_ABRT;
}

Test(anydest, tcp_timer_round_survives_list_changes_between_and_in_slices)
{
	enum { N = 600, B = 50 };
	struct tcp_pcb *l = listener_to(0, NULL, on_accept_many);
	struct tcp_pcb *order[N], *pcb;
	struct many *late = NULL;
	unsigned i, n = 0, rexmit;

	many_setup();
	for (i = 0; i < N; i++)
		many_connect(&many[i]);
	counting(1);
	for (i = 0; i < N; i++)
		unacked(&many[i]);
	/* The order the round goes in. */
	for (pcb = tcp_active_pcbs; pcb != NULL; pcb = pcb->next)
		order[n++] = pcb;
	cr_assert_eq(n, N);
	/* In the slow timer's callbacks: one aborts the PCB after it, which
	 * is where the round goes next, one aborts itself. */
	tcp_poll(order[200], poll_abort_next, 1);
	tcp_poll(order[300], poll_abort_self, 1);

	nout = 0;
	start_slow_round();
	cr_assert_eq(tcp_l3x_timer_slice(B), 1);
	cr_assert_eq(tcp_l3x_timer_slice(B), 1);
	cr_assert_eq(tcp_l3x_timer_slice(B), 1);
	cr_assert_eq(nout, 3 * B);

	/* Between slices: the PCB the round is at next goes, and the one
	 * after it, one it has done and the last one. */
	tcp_abort(order[3 * B]);
	tcp_abort(order[3 * B + 1]);
	tcp_abort(order[0]);
	tcp_abort(order[N - 1]);
	/* A flow comes in: on the list's head, its turn is the next round. */
	counting(0);
	late = &many[N];
	many_connect(late);
	counting(1);
	unacked(late);

	nout = 0;
	/* Left: N - 3 B - 3 aborted before their turn - 1 by a callback. */
	rexmit = N - 3 * B - 3 - 1;
	/* (a slice may send a callback's RST as well) */
	cr_assert_eq(finish_round(B, B + 1), (rexmit + B - 1) / B);
	/* and two RSTs, from the callbacks' aborts */
	cr_assert_eq(nout, rexmit + 2, "%u sent", nout);
	n = 0;
	for (i = 0; i < N + 1; i++) {
		pcb = many[i].pcb;
		if (pcb == NULL || &many[i] == late)
			continue;
		n++;
		cr_assert_eq(pcb->nrtx, 1, "flow %u: %u retransmissions", i,
			     pcb->nrtx);
		cr_assert_eq(pcb->rtime, 0, "flow %u visited again", i);
	}
	cr_assert_eq(n, N - 6, "%u flows left", n);
	/* The late flow was left alone, and gets its turn in the next round. */
	cr_assert_eq(late->pcb->nrtx, 0);
	cr_assert_eq(late->pcb->rtime, late->pcb->rto - 1);
	nout = 0;
	tcp_poll(order[200], NULL, 0);
	start_slow_round();
	finish_round(B, B);
	cr_assert_eq(late->pcb->nrtx, 1);
	abort_all_many(N + 1, l);
}
#endif /* TCP_TMR_SLICED */

/* Patch 0031: an option type in the last byte of a hop-by-hop or
 * destination options header has its length byte past the header (and,
 * when the header ends the packet, past the buffer): dropped, counted as
 * a length error, not read. */
Test(anydest, ipv6_option_length_past_its_header_is_dropped)
{
	/* next header: none; Pad1 x5 ... then a router alert type in the
	 * last byte, or a PadN whose length byte is the last one */
	uint8_t hbh[8] = { 59, 0, 0, 0, 0, 0, 0, 0x05 };
	uint8_t dst[8] = { 59, 0, 0, 0, 0, 0, 0, 0x01 };
	STAT_COUNTER lenerr = lwip_stats.ip6.lenerr, drop = lwip_stats.ip6.drop;

	inject(PEER6, DST6, 0, hbh, sizeof(hbh), -1);
	inject(PEER6, DST6, 60, dst, sizeof(dst), -1);
	cr_assert_eq(lwip_stats.ip6.lenerr - lenerr, 2,
		     "length errors: %u, want 2",
		     (unsigned)(lwip_stats.ip6.lenerr - lenerr));
	cr_assert_eq(lwip_stats.ip6.drop - drop, 2);
	cr_assert_eq(ncap, 0, "answered a malformed option header");
}

/* Patch 0051: a pbuf the port marked verified (PBUF_FLAG_L3X_CSUM_OK) is
 * not summed again, which a wrong sum shows; unmarked, the same segment
 * and datagram are summed, dropped and counted in chkerr as before. */
static void wrong_sum_dropped_unless_marked(const char *peer, const char *dst)
{
	static const int tag = 5;
	const struct flow f = { peer, 40005, dst, 80 };
	STAT_COUNTER tcp_chkerr = lwip_stats.tcp.chkerr;
	STAT_COUNTER udp_chkerr = lwip_stats.udp.chkerr;
	struct udp_seen seen = { 0 };
	struct udp_pcb *u = udp_anydest(&seen);
	struct tcp_pcb *l = listener(0, &tag);
	struct seg s;

	inject_sum_off = 0x1234;
	send_tcp(&f, PEER_ISN, 0, TCP_SYN, 1460, NULL);
	send_udp(&f, "ping");
	cr_assert_eq(ncap, 0, "answered a segment with a wrong sum");
	cr_assert_eq(seen.n, 0, "took a datagram with a wrong sum");
	cr_assert_eq(lwip_stats.tcp.chkerr - tcp_chkerr, 1);
	cr_assert_eq(lwip_stats.udp.chkerr - udp_chkerr, 1);

	inject_flags = PBUF_FLAG_L3X_CSUM_OK;
	send_tcp(&f, PEER_ISN, 0, TCP_SYN, 1460, NULL);
	send_udp(&f, "ping");
	cr_assert_eq(ncap, 1, "the marked SYN went unanswered");
	s = parsed(0);
	cr_assert_eq(s.flags, TCP_SYN | TCP_ACK, "flags %#x", s.flags);
	cr_assert_eq(seen.n, 1, "the marked datagram was not delivered");
	cr_assert_eq(lwip_stats.tcp.chkerr - tcp_chkerr, 1);
	cr_assert_eq(lwip_stats.udp.chkerr - udp_chkerr, 1);
	inject_flags = 0;
	inject_sum_off = 0;
	tcp_abort(tcp_active_pcbs);
	tcp_close(l);
	udp_remove(u);
}

Test(anydest, tcp4_udp4_marked_verified_are_not_summed_again)
{
	wrong_sum_dropped_unless_marked(PEER4, DST4);
}

Test(anydest, tcp6_udp6_marked_verified_are_not_summed_again)
{
	wrong_sum_dropped_unless_marked(PEER6, DST6);
}

/* ------------------------------------------------------------ ACK coalescing
 */

/*
 * Patch 0061: between tcp_l3x_burst_begin() and tcp_l3x_burst_end() (the
 * engine's receive burst) a connection's ACK waits for the burst's end.
 * Each test sends 10-byte segments; seg(i) is the i-th after rx0.
 */
#define ACK_SEG 10

static void send_seg(const struct flow *f, uint32_t rx0, uint32_t iss,
		     unsigned i)
{
	char d[ACK_SEG + 1];

	snprintf(d, sizeof(d), "segm%06u", i);
	send_tcp(f, rx0 + i * ACK_SEG, iss + 1, TCP_ACK, 0, d);
}

/* Every packet out since n0 is a pure ACK of the flow; their ack fields. */
static unsigned acks_out(const struct flow *f, unsigned n0, uint32_t *ack,
			 unsigned max)
{
	unsigned i, n = 0;
	struct seg s;

	for (i = n0; i < ncap; i++) {
		s = parsed(i);
		assert_reply(&s, f);
		cr_assert_eq(s.flags, TCP_ACK, "packet %u: flags %#x", i,
			     s.flags);
		cr_assert_eq(s.len, 0);
		cr_assert_lt(n, max);
		ack[n++] = s.ack;
	}
	return n;
}

/* Segments @from to @to - 1 of the flow. */
static void send_segs(const struct flow *f, uint32_t rx0, uint32_t iss,
		      unsigned from, unsigned to)
{
	unsigned i;

	for (i = from; i < to; i++)
		send_seg(f, rx0, iss, i);
}

/* Every packet out since n0 is a pure ACK of @want; @n of them. */
static void expect_acks_of(const struct flow *f, unsigned n0, unsigned n,
			   uint32_t want)
{
	uint32_t ack[16];
	unsigned i, got;

	got = acks_out(f, n0, ack, 16);
	cr_assert_eq(got, n, "%u ACKs, want %u", got, n);
	for (i = 0; i < got; i++)
		cr_assert_eq(ack[i], want, "ACK %u: %u, want %u", i, ack[i],
			     want);
}

/* A burst begins, nothing captured yet. */
static void burst_begin(void)
{
	ncap = 0;
	tcp_l3x_burst_begin();
}

/* Handshake outside a burst; the connection's first data sequence. */
static struct tcp_pcb *ack_listener;

static uint32_t ack_setup(const struct flow *f, uint8_t ack_max, uint32_t *iss)
{
	static const int tag = 1;

	tcp_l3x_ack_max = ack_max;
	ack_listener = listener(0, &tag);
	*iss = handshake(f, 1460);
	return PEER_ISN + 1;
}

static void ack_teardown(void)
{
	if (conn.pcb) {
		tcp_abort(conn.pcb);
		conn.pcb = NULL;
	}
	cr_assert_eq(tcp_close(ack_listener), ERR_OK);
	tcp_l3x_ack_max = 0;
}

Test(anydest, tcp_acks_coalesce_to_one_per_burst)
{
	const struct flow f = { PEER4, 40000, DST4, 8080 };
	uint32_t iss, rx0, ack[16];
	uint64_t deferred;

	rx0 = ack_setup(&f, 16, &iss);
	/* Outside a burst: lwIP's ACK for every second segment. */
	ncap = 0;
	send_segs(&f, rx0, iss, 0, 10);
	cr_assert_eq(acks_out(&f, 0, ack, 16), 5, "%u ACKs for 10 segments",
		     ncap);
	cr_assert_eq(ack[4], rx0 + 10 * ACK_SEG);

	/* In a burst: nothing until its end, then one ACK for all ten. */
	rx0 += 10 * ACK_SEG;
	deferred = tcp_l3x_ack_deferred;
	burst_begin();
	send_segs(&f, rx0, iss, 0, 10);
	cr_assert_eq(ncap, 0, "%u packets out inside the burst", ncap);
	tcp_l3x_burst_end();
	expect_acks_of(&f, 0, 1, rx0 + 10 * ACK_SEG);
	cr_assert_eq(tcp_l3x_ack_deferred - deferred, 10);
	cr_assert_eq(conn.rxlen, 20 * ACK_SEG, "the application got %zu",
		     conn.rxlen);

	/* Off (0 or 1): as outside a burst. */
	tcp_l3x_ack_max = 1;
	rx0 += 10 * ACK_SEG;
	burst_begin();
	send_segs(&f, rx0, iss, 0, 4);
	tcp_l3x_burst_end();
	cr_assert_eq(acks_out(&f, 0, ack, 16), 2);
	ack_teardown();
}

Test(anydest, tcp_ack_coalescing_acks_at_least_every_ack_max_segments)
{
	const struct flow f = { PEER6, 40001, DST6, 443 };
	uint32_t iss, rx0, ack[16];
	unsigned n;

	rx0 = ack_setup(&f, 4, &iss);
	burst_begin();
	send_segs(&f, rx0, iss, 0, 10);
	cr_assert_eq(ncap, 2, "%u ACKs inside the burst, want 2", ncap);
	tcp_l3x_burst_end();
	n = acks_out(&f, 0, ack, 16);
	cr_assert_eq(n, 3);
	cr_assert_eq(ack[0], rx0 + 4 * ACK_SEG);
	cr_assert_eq(ack[1], rx0 + 8 * ACK_SEG);
	cr_assert_eq(ack[2], rx0 + 10 * ACK_SEG);
	ack_teardown();
}

/* RFC 5681 4.2: an out-of-order segment is answered at once, each with
 * a duplicate ACK, burst or not; the segment filling the hole makes the
 * cumulative ACK at the burst's end. */
Test(anydest, tcp_out_of_order_in_a_burst_gets_immediate_dup_acks)
{
	const struct flow f = { PEER4, 40002, DST4, 80 };
	uint32_t iss, rx0, ack[16];
	unsigned i, n;

	rx0 = ack_setup(&f, 16, &iss);
	burst_begin();
	send_segs(&f, rx0, iss, 0, 3);
	cr_assert_eq(ncap, 0);
	/* seg 3 is lost: 4, 5, 6 arrive. */
	for (i = 4; i < 7; i++) {
		send_seg(&f, rx0, iss, i);
		/* the waiting ACK, then the first dup-ACK; then one each */
		cr_assert_eq(ncap, i - 2, "after segment %u: %u out", i, ncap);
	}
	/* The peer saw one new ACK and three duplicates. */
	expect_acks_of(&f, 0, 4, rx0 + 3 * ACK_SEG);
	send_seg(&f, rx0, iss, 3);
	send_seg(&f, rx0, iss, 7);
	tcp_l3x_burst_end();
	n = acks_out(&f, 0, ack, 16);
	cr_assert_eq(ack[n - 1], rx0 + 8 * ACK_SEG, "last ack %u, want %u",
		     ack[n - 1], rx0 + 8 * ACK_SEG);
	cr_assert_eq(conn.rxlen, 8 * ACK_SEG);
	cr_assert_eq(memcmp(conn.rx + 3 * ACK_SEG, "segm000003", ACK_SEG), 0);
	cr_assert_eq(memcmp(conn.rx + 7 * ACK_SEG, "segm000007", ACK_SEG), 0);

	/* A duplicate of data already received: answered at once too. */
	burst_begin();
	send_seg(&f, rx0, iss, 2);
	cr_assert_eq(ncap, 1, "duplicate segment: %u out", ncap);
	tcp_l3x_burst_end();
	cr_assert_eq(ncap, 1);
	ack_teardown();
}

/* The handshake is not held for the burst's end. */
Test(anydest, tcp_syn_in_a_burst_is_answered_at_once)
{
	const struct flow f = { PEER4, 40003, DST4, 22 };
	uint32_t iss;

	tcp_l3x_ack_max = 16;
	tcp_l3x_burst_begin();
	ack_setup(&f, 16, &iss); /* the SYN-ACK is checked at once */
	tcp_l3x_burst_end();
	ack_teardown();
}

/* RFC 5961: a RST inside the window but not exact, and a SYN on the
 * live connection, each get a challenge ACK at once, burst or not (the
 * corpus's live-rst-in-window class sends hundreds in a row). */
Test(anydest, tcp_challenge_acks_in_a_burst_are_sent_at_once)
{
	const struct flow f = { PEER6, 40006, DST6, 8080 };
	uint32_t iss, rx0;
	unsigned i;

	rx0 = ack_setup(&f, 16, &iss);
	burst_begin();
	for (i = 0; i < 3; i++) {
		send_tcp(&f, rx0 + 100 + i, iss + 1, TCP_RST, 0, NULL);
		cr_assert_eq(ncap, i + 1, "RST %u: %u out", i, ncap);
	}
	send_tcp(&f, rx0 + 200, iss + 1, TCP_SYN, 0, NULL);
	cr_assert_eq(ncap, 4, "SYN: %u out", ncap);
	tcp_l3x_burst_end();
	cr_assert_not_null(conn.pcb, "an in-window RST ended it");
	expect_acks_of(&f, 0, 4, rx0); /* the challenge ACKs */
	ack_teardown();
}

/* A PCB whose output waits and is freed in the same burst (the peer's
 * RST, the application's abort) leaves the list: the burst's end sends
 * nothing for it, touches no freed PCB (ASan), and leaks nothing
 * (teardown). */
Test(anydest, tcp_pcb_freed_in_a_burst_leaves_the_deferred_list)
{
	const struct flow f = { PEER4, 40004, DST4, 8080 };
	const struct flow g = { PEER4, 40005, DST4, 8080 };
	uint32_t iss, iss2, rx0;

	rx0 = ack_setup(&f, 16, &iss);
	burst_begin();
	send_segs(&f, rx0, iss, 0, 2);
	cr_assert_not_null(conn.pcb);
	send_tcp(&f, rx0 + 2 * ACK_SEG, iss + 1, TCP_RST, 0, NULL);
	cr_assert_null(conn.pcb, "the RST did not end it");
	tcp_l3x_burst_end();
	cr_assert_eq(ncap, 0, "%u packets out for a freed PCB", ncap);

	/* Second connection: aborted by the application mid-burst. */
	iss2 = handshake(&g, 1460);
	burst_begin();
	send_segs(&g, rx0, iss2, 0, 2);
	tcp_abort(conn.pcb); /* its RST */
	conn.pcb = NULL;
	cr_assert_eq(ncap, 1);
	cr_assert(parsed(0).flags & TCP_RST);
	tcp_l3x_burst_end();
	cr_assert_eq(ncap, 1, "%u packets out for a freed PCB", ncap);
	ack_teardown();
}
