/*
 * l3x_hooks.h - lwIP hooks (LWIP_HOOK_FILENAME), implemented in
 * lib/lwip/sys_arch.c.
 */
#ifndef L3X_HOOKS_H
#define L3X_HOOKS_H

#include "lwip/err.h"
#include "lwip/ip_addr.h"

struct pbuf;
struct tcp_hdr;
struct tcp_pcb;
struct tcp_pcb_listen;
struct tcp_l3x_cookie;

/* RFC 6528 initial sequence numbers: a keyed hash of the 4-tuple plus a
 * clock of 4 us ticks, so a connection's ISN cannot be guessed from
 * another's (stock lwIP counts up from 6510). */
u32_t l3x_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
		  const ip_addr_t *remote_ip, u16_t remote_port);

/* Patch 0005: the bucket of a 4-tuple in lwIP's PCB hash, SipHash under a
 * random key of this process's (lib/hash.c), so a peer cannot choose
 * tuples that collide. */
u32_t l3x_tcp_pcb_hash(const ip_addr_t *local_ip, u16_t local_port,
		       const ip_addr_t *remote_ip, u16_t remote_port);

/* Patch 0011: the offset a connection adds to sys_now() in the timestamps
 * it sends (RFC 7323 5.4), SipHash of the 4-tuple under a key of its own:
 * the timestamps tell neither uptime nor that addresses share a host. */
u32_t l3x_tcp_ts_offset(const ip_addr_t *local_ip, u16_t local_port,
			const ip_addr_t *remote_ip, u16_t remote_port);

/* The state of the PCB lwIP handed the segment being received to, plus
 * one; 0 when it found none. engine_input() clears it before each packet
 * and reads it after; l3x_tcp_inpacket() sets it. Engine thread. */
extern u8_t l3x_tcp_in_state;

/* LWIP_HOOK_TCP_INPACKET_PCB: every segment that found a PCB (listening,
 * active or TIME-WAIT), its header parsed (host order), @p its payload,
 * before lwIP acts on it. ERR_OK lets it in; anything else drops it.
 * lib/tcp.c: it notes the PCB's state (l3x_tcp_in_state), and applies the
 * PCB hash's bucket bound and what memory admits. */
err_t l3x_tcp_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen,
		       u16_t opt1len, u8_t *opt2, struct pbuf *p);

/* Patch 0012, LWIP_HOOK_TCP_SYN_VERDICT: what a SYN to @lpcb gets,
 * TCP_L3X_SYN_ACCEPT (a half-open PCB), _COOKIE or _DROP; the one place
 * that decides (lib/tcp.c: max_half_open and syncookies). The header is
 * parsed (host order), its options as for LWIP_HOOK_TCP_INPACKET_PCB. */
u8_t l3x_tcp_syn_verdict(struct tcp_pcb_listen *lpcb, struct tcp_hdr *hdr,
			 u16_t optlen, u16_t opt1len, u8_t *opt2);

/* LWIP_HOOK_TCP_SYN_COOKIE: answer the SYN with a SYN cookie, keeping
 * nothing (lib/tcp.c). */
void l3x_tcp_syn_cookie(struct tcp_pcb_listen *lpcb, struct tcp_hdr *hdr,
			u16_t optlen, u16_t opt1len, u8_t *opt2);

/* LWIP_HOOK_TCP_COOKIE_ACK: an ACK to @lpcb: nonzero when it carries a
 * good cookie, with what the cookie kept of the SYN in @c; lwIP then makes
 * the connection. 0: not a cookie of ours (lwIP answers with RST). */
int l3x_tcp_cookie_ack(struct tcp_pcb_listen *lpcb, struct tcp_hdr *hdr,
		       u16_t optlen, u16_t opt1len, u8_t *opt2,
		       struct tcp_l3x_cookie *c);

/* Patch 0014, LWIP_HOOK_TCP_SYN_DEFER: @pcb, half-open from a SYN to
 * @lpcb that got TCP_L3X_SYN_DEFER, whose SYN-ACK is not sent: lib/tcp.c
 * offers it to the application as a request. ERR_OK keeps it; ERR_RST
 * has lwIP reset it, anything else drop it. */
err_t l3x_tcp_syn_defer(struct tcp_pcb_listen *lpcb, struct tcp_pcb *pcb,
			struct tcp_hdr *hdr, u16_t optlen, u16_t opt1len,
			u8_t *opt2);

/* LWIP_HOOK_UDP_INPUT_BAD (patch 0021): udp_input() dropped a malformed
 * datagram, @why UDP_L3X_BAD_LENGTH or UDP_L3X_BAD_CHECKSUM6; counted here
 * by why, for the engine to publish. lwIP's thread. */
void l3x_udp_input_bad(u8_t why);
extern uint64_t l3x_udp_bad[3];

/* LWIP_L3X_ZONE_CURRENT (patch 0016): the zone of the packet being input,
 * its VLAN IDs (lib/link_xsk.c: l3x_zone_of()); the link sets it around
 * each input and leaves it 0 otherwise (TUN, callback: always 0). lwIP's
 * thread. */
extern u32_t l3x_zone_in;

#endif
