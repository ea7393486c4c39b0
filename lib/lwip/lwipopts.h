/*
 * lwipopts.h - lwIP 2.2.1 configured for l3x: no OS (one busy-polling
 * engine loop per queue), IPv4 and IPv6, TCP and UDP to any destination,
 * tuned for high rates and many flows.
 *
 * Memory: pools come from malloc (MEMP_MEM_MALLOC) so that their sizes are
 * run-time options enforced by the engine, not compile-time arrays, and an
 * idle flow costs only its PCB; every block is counted (lib/mem.c). Checksums
 * are verified in software: AF_XDP gives no "verified" flag, and this is a
 * wire-facing stack.
 */
#ifndef L3X_LWIPOPTS_H
#define L3X_LWIPOPTS_H

/* One column of values through the whole file, as lwIP's own opt.h is
 * read; the formatter would align each group apart. */
/* clang-format off */
/* ---- system */
#define NO_SYS				1
#define SYS_LIGHTWEIGHT_PROT		0
#define LWIP_NETCONN			0
#define LWIP_SOCKET			0
#define LWIP_NETIF_API			0
#define LWIP_TIMERS			1

/* lwIP's htons() etc. would clash with the C library's in our files. */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS 1

/* ---- memory: heap and pools from the C allocator, counted block by block
 * (lib/mem.c), so that max_memory holds what is really allocated. lwIP's
 * own heap statistic would put a size word in front of every block: off,
 * the counter says more. A block lwIP frees is kept on a free list of its
 * size for its next allocation (lib/mem.c, the cache: at most 1 MiB). */
#define MEM_CUSTOM_ALLOCATOR		1
#define MEM_CUSTOM_MALLOC		l3x_lwip_malloc
#define MEM_CUSTOM_CALLOC		l3x_lwip_calloc
#define MEM_CUSTOM_FREE			l3x_lwip_free
#define MEMP_MEM_MALLOC			1
#define MEM_ALIGNMENT			8
#define MEM_SIZE			(1024 * 1024)
#define MEMP_NUM_TCP_PCB		65535
#define MEMP_NUM_TCP_PCB_LISTEN		16
#define MEMP_NUM_UDP_PCB		65535
#define MEMP_NUM_TCP_SEG		65535
#define MEMP_NUM_PBUF			65535
#define PBUF_POOL_SIZE			8192
#define PBUF_POOL_BUFSIZE		2048
#define MEMP_NUM_SYS_TIMEOUT		(LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)

/* ---- IP */
#define LWIP_IPV4			1
#define LWIP_IPV6			1
#define IP_FORWARD			0
#define IP_REASSEMBLY			1
#define IP_FRAG				0
#define IP_REASS_MAX_PBUFS		256
#define LWIP_IPV6_REASS			1
/* 64-bit pointers do not fit in the fragment header: copy it aside. */
#define IPV6_FRAG_COPYHEADER		1
#define LWIP_IPV6_FRAG			0
#define LWIP_IPV6_MLD			0
#define LWIP_IPV6_AUTOCONFIG		0
#define LWIP_IPV6_SEND_ROUTER_SOLICIT	0
#define LWIP_ND6_QUEUEING		0
#define LWIP_IPV6_DUP_DETECT_ATTEMPTS	0
#define LWIP_ICMP			1
#define LWIP_ICMP6			1
#define LWIP_RAW			0
#define LWIP_DHCP			0
#define LWIP_AUTOIP			0
#define LWIP_IGMP			0
#define LWIP_DNS			0
#define LWIP_ARP			0
#define LWIP_ETHERNET			0
#define LWIP_SINGLE_NETIF		1
#define LWIP_NETIF_STATUS_CALLBACK	0
#define LWIP_NETIF_LINK_CALLBACK	0

/* ---- checksums: generate and verify all in software */
#define CHECKSUM_GEN_IP			1
#define CHECKSUM_GEN_UDP		1
#define CHECKSUM_GEN_TCP		1
#define CHECKSUM_GEN_ICMP		1
#define CHECKSUM_GEN_ICMP6		1
#define CHECKSUM_CHECK_IP		1
#define CHECKSUM_CHECK_UDP		1
#define CHECKSUM_CHECK_TCP		1
#define CHECKSUM_CHECK_ICMP		1
#define CHECKSUM_CHECK_ICMP6		1
#define LWIP_CHECKSUM_ON_COPY		1
/* Ours (lib/csum.c): 8 bytes a load instead of 2, and a copy that sums
 * in the same pass (tcp_write's copy of what the application sends; lwIP's
 * own LWIP_CHKSUM_COPY is memcpy and then a sum). The engine verifies TCP
 * and UDP checksums while it copies a packet in and marks the pbuf
 * PBUF_FLAG_L3X_CSUM_OK; tcp_input and udp_input skip their check for it
 * (patch 0051). */
#include "../l3x_csum.h"
#define LWIP_CHKSUM			l3x_csum
#define LWIP_CHKSUM_COPY(dst, src, len)	l3x_csum_copy(dst, src, len)

/* ---- TCP: window scaling, SACK, timestamps */
#define LWIP_TCP			1
#define TCP_MSS				1460
#define LWIP_WND_SCALE			1
#define TCP_RCV_SCALE			7
#define TCP_WND				(1024 * 1024)
#define TCP_SND_BUF			(1024 * 1024)
#define TCP_SND_QUEUELEN		(4 * TCP_SND_BUF / TCP_MSS)
/* lwIP compares this with a u16 (tcp_sndbuf() is clamped to 16 bits). */
#define TCP_SNDLOWAT			32768
#define TCP_SNDQUEUELOWAT		(TCP_SND_QUEUELEN / 2)
#define LWIP_TCP_SACK_OUT		1
#define LWIP_TCP_MAX_SACK_NUM		4
#define LWIP_TCP_TIMESTAMPS		1
#define TCP_QUEUE_OOSEQ			1
/* Out-of-order data per connection: the stack's ooo_max_bytes and
 * ooo_max_segs, charged as allocated, are the caps (lib/tcp.c, counted);
 * lwIP's own, in payload bytes and pbufs, only stand behind them. */
#define TCP_OOSEQ_MAX_BYTES		TCP_WND
#define TCP_OOSEQ_MAX_PBUFS		4096
#define TCP_LISTEN_BACKLOG		1
#define TCP_DEFAULT_LISTEN_BACKLOG	0xff
#define LWIP_TCP_KEEPALIVE		1
#define TCP_OVERSIZE			TCP_MSS
#define LWIP_TCP_PCB_NUM_EXT_ARGS	1
#define LWIP_CALLBACK_API		1

/* ---- UDP */
#define LWIP_UDP			1
#define LWIP_UDPLITE			0

/* ---- statistics: the engine reads pool usage to account for leaks,
 * and the per-protocol counters to tell what became of each packet
 * (lib/engine.c); 32-bit counters, so one turn never sees them wrap */
#define LWIP_STATS			1
#define LWIP_STATS_LARGE		1
#define LWIP_STATS_DISPLAY		0
#define MEMP_STATS			1
#define MEM_STATS			0
#define TCP_STATS			1
#define UDP_STATS			1
#define IP_STATS			1
#define IP6_STATS			1
#define IPFRAG_STATS			1
#define LINK_STATS			0
#define ICMP_STATS			1
#define ICMP6_STATS			1
#define ND6_STATS			0
#define MLD6_STATS			0
#define ETHARP_STATS			0

/* ---- l3x: rx chains queue to the application through the first pbuf
 * (lib/engine.h); accessed with atomics by the engine and one reader. */
#define LWIP_PBUF_CUSTOM_DATA		void *l3x_qnext;
#define LWIP_PBUF_CUSTOM_DATA_INIT(p)	((p)->l3x_qnext = NULL)
/* Zero-copy receive: TCP segments stay in their UMEM frame, a custom pbuf
 * whose free gives the frame back (lib/link_xsk.c). */
#define LWIP_SUPPORT_CUSTOM_PBUF	1
/* TIME_WAIT lasts 2 * TCP_MSL: 60 s, as on Linux, not lwIP's 2 min. */
#define TCP_MSL				30000UL

/* Hash of active and TIME_WAIT PCBs (patch 0005): 2 MiB of buckets keeps
 * chains short at 100,000 flows plus TIME_WAIT. */
#define TCP_PCB_HASH_SIZE		262144
#define LWIP_HOOK_FILENAME		"l3x_hooks.h"
#define LWIP_HOOK_TCP_ISN		l3x_tcp_isn
/* The PCB hash's buckets: SipHash under a random per-process key. */
#define LWIP_HOOK_TCP_PCB_HASH		l3x_tcp_pcb_hash
/* Timestamps on a clock of their own per connection (patch 0011). */
#define LWIP_HOOK_TCP_TS_OFFSET		l3x_tcp_ts_offset
/* Segments meet the engine's bounds before lwIP keeps them, and the
 * engine learns which PCB took each, for its fates (lib/tcp.c). */
#define LWIP_HOOK_TCP_INPACKET_PCB	l3x_tcp_inpacket
/* SYNs: a half-open PCB, a SYN cookie or a drop; the ACK of a cookie
 * (patch 0012, lib/tcp.c). */
#define LWIP_HOOK_TCP_SYN_VERDICT	l3x_tcp_syn_verdict
#define LWIP_HOOK_TCP_SYN_COOKIE	l3x_tcp_syn_cookie
#define LWIP_HOOK_TCP_COOKIE_ACK	l3x_tcp_cookie_ack
/* Deferred accept: the SYN-ACK waits for the application (patch 0014). */
#define LWIP_HOOK_TCP_SYN_DEFER		l3x_tcp_syn_defer
/* Malformed UDP dropped by patch 0021, counted apart (sys_arch.c). */
#define LWIP_HOOK_UDP_INPUT_BAD(p, why)	l3x_udp_input_bad(why)
/* The VLAN IDs of the frame being input are part of a TCP PCB's identity
 * (patch 0016): the link sets l3x_zone_in (sys_arch.c). */
#define LWIP_L3X_ZONE_CURRENT()		l3x_zone_in

/* Patch 0071: walk pcb->unacked after every tcp_output() and tcp_receive()
 * to check the tail kept in the PCB, in the sanitized build (O(n) per call,
 * so not in the plain one, which checks it in O(1)). */
#if defined(__SANITIZE_ADDRESS__)
#define TCP_L3X_CHECK_TAILS		1
#endif
#define LWIP_DEBUG			0
#define LWIP_NOASSERT_ON_ERROR		1
/* clang-format on */

#endif /* L3X_LWIPOPTS_H */
