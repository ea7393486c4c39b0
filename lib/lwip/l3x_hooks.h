/*
 * l3x_hooks.h - lwIP hooks (LWIP_HOOK_FILENAME), implemented in
 * lib/lwip/sys_arch.c.
 */
#ifndef L3X_HOOKS_H
#define L3X_HOOKS_H

#include "lwip/ip_addr.h"

/* RFC 6528 initial sequence numbers: a keyed hash of the 4-tuple plus a
 * clock of 4 us ticks, so a connection's ISN cannot be guessed from
 * another's (stock lwIP counts up from 6510). */
u32_t l3x_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
		  const ip_addr_t *remote_ip, u16_t remote_port);

/* The state of the PCB lwIP handed the segment being received to, plus
 * one; 0 when it found none. engine_input() clears it before each packet
 * and reads it after. Engine thread. */
extern u8_t l3x_tcp_in_state;

/* LWIP_HOOK_TCP_INPACKET_PCB: every segment lwIP hands to a PCB (a
 * connection, TIME_WAIT or a listener) passes here first; taken always. */
#define l3x_tcp_inpacket(pcb)                                                  \
	(l3x_tcp_in_state = (u8_t)((pcb)->state + 1), ERR_OK)

#endif
