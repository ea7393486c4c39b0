/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x - pull TCP and UDP flows out of layer-3 traffic at line rate.
 *
 * This header is the whole public API. Conventions (see l3x(3)):
 *   - objects are opaque, methods read l3x_<obj>__<verb>();
 *   - int returns are 0 or a count on success, -errno on failure;
 *     pointer returns are NULL with errno set;
 *   - open calls take an options struct made with L3X_OPTS(), which is only
 *     ever appended to: unknown non-zero trailing bytes give -EINVAL; an
 *     object on an interface names it in the struct's .ifname;
 *   - every __close returns 0, also for NULL (a no-op), or -EBUSY while
 *     objects that depend on it are open (nothing is closed then);
 *   - every function states its thread-safety last in its comment.
 */
#ifndef L3X_L3X_H
#define L3X_L3X_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define L3X_API __attribute__((visibility("default")))

/*
 * L3X_OPTS(TYPE, NAME, ...) declares "struct TYPE NAME", zero-filled, with
 * .sz set to the size this program was built with, and the given fields:
 *   L3X_OPTS(l3x_capture_opts, o, .ifname = "eth0", .pin_dir = "/run/l3x");
 * (Not formatted: clang-format 14 splits the compound literal apart.)
 */
/* clang-format off */
#define L3X_OPTS(TYPE, NAME, ...)                                              \
	struct TYPE NAME;                                                      \
	__builtin_memset(&NAME, 0, sizeof(NAME));                              \
	NAME = (struct TYPE){ .sz = sizeof(struct TYPE), __VA_ARGS__ }
/* clang-format on */

/* ---------------------------------------------------------------- logging */

enum l3x_print_level {
	L3X_WARN,
	L3X_INFO,
	L3X_DEBUG,
};

typedef int (*l3x_print_fn_t)(enum l3x_print_level level, const char *fmt,
			      va_list ap);

/*
 * l3x_set_print() - route the library's messages to @fn (NULL silences).
 * The default prints warnings to stderr. Returns the previous function.
 * Any thread; messages from other threads may still use the old function
 * briefly.
 */
L3X_API l3x_print_fn_t l3x_set_print(l3x_print_fn_t fn);

/* ------------------------------------------------------------------ rules */

enum l3x_proto {
	L3X_PROTO_IP = 0, /* any protocol; takes no ports */
	L3X_PROTO_TCP = 6,
	L3X_PROTO_UDP = 17,
};

/*
 * A steering rule, "PROTO DST [PORT[-PORT]] [vlan ID]":
 *   tcp 198.51.100.0/24 80     udp 2001:db8::/32 53
 *   tcp 0.0.0.0/0 1-1024       ip 192.0.2.7
 *   tcp 198.51.100.0/24 vlan 100
 * A bare address is a /32 (IPv4) or /128 (IPv6). No port means every port.
 * No vlan means any frame, tagged or not; "vlan ID" (1-4094) only frames
 * whose innermost VLAN tag (802.1Q, or the inner tag of QinQ) has that ID,
 * so it never matches on TUN or callback sources, which carry no tags.
 */
struct l3x_rule {
	uint8_t proto;	/* enum l3x_proto */
	uint8_t family; /* 4 or 6 */
	uint8_t prefix_len;
	uint8_t pad;
	uint16_t port_lo; /* host order, inclusive; 0-65535 = any */
	uint16_t port_hi;
	uint8_t addr[16]; /* network order; IPv4 in addr[0..3] */
	uint16_t vlan;	  /* 0: any; 1-4094: the innermost tag's ID */
};

/* Longest text l3x_rule__format() writes, with its NUL. */
#define L3X_RULE_STRLEN 80

/*
 * l3x_rule__parse() - parse @text into @rule.
 * On failure writes one line to @err (if @err_sz > 0) naming the part that
 * is wrong and why, e.g. "port '70000': must be 0-65535".
 * Returns 0, or -EINVAL for a bad rule.
 * Any thread.
 */
L3X_API int l3x_rule__parse(struct l3x_rule *rule, const char *text, char *err,
			    size_t err_sz);

/*
 * l3x_rule__format() - write @rule in the syntax l3x_rule__parse() reads.
 * Returns the length written (excluding the NUL), or -ENOSPC if @sz is too
 * small (use L3X_RULE_STRLEN), -EINVAL if @rule is not valid; on an error
 * @buf (if @sz > 0) holds at least an empty string.
 * Any thread.
 */
L3X_API int l3x_rule__format(const struct l3x_rule *rule, char *buf, size_t sz);

/* ----------------------------------------------------------- steering */

enum l3x_xdp_mode {
	L3X_XDP_AUTO = 0, /* native (driver) XDP, skb mode when refused */
	L3X_XDP_NATIVE,
	L3X_XDP_SKB,
};

enum l3x_bind_mode {
	L3X_BIND_AUTO = 0, /* zero-copy when the driver offers it */
	L3X_BIND_COPY,
	L3X_BIND_ZEROCOPY,
};

/* How the engine thread of l3x_stack__start() waits for work. */
enum l3x_poll {
	L3X_POLL_ADAPTIVE = 0, /* spin while there is work; after idle_spins
				* turns without any, sleep on the source's
				* fds until a packet, a worker's request or
				* the next timer */
	L3X_POLL_BUSY,	       /* spin always: one core, all the time */
};

/* When a SYN gets a SYN cookie (RFC 4987) instead of a half-open
 * connection (struct l3x_stack_opts.syncookies). */
enum l3x_syncookies {
	L3X_SYNCOOKIES_WHEN_FULL = 0, /* once max_half_open are half-open */
	L3X_SYNCOOKIES_NEVER,	      /* past max_half_open SYNs are dropped */
	L3X_SYNCOOKIES_ALWAYS,	      /* every SYN: no half-open state */
};

/* Counters of the steering program, summed over CPUs. Every frame seen
 * on the interface adds to exactly one of the first four. */
struct l3x_steer_stats {
	uint64_t passed;	  /* no rule matched: to the kernel */
	uint64_t redirected;	  /* matched: to an AF_XDP socket */
	uint64_t redirect_failed; /* matched, no socket on that queue */
	uint64_t malformed;	  /* unparseable: to the kernel */
	uint64_t frags_tracked;	  /* first fragments remembered */
	uint64_t frags_conflict;  /* first fragments of a datagram live
				   * already: to the kernel, not diverted */
};

/* ------------------------------------------------------------ capture */

struct l3x_capture;
struct l3x_capture_handle;

struct l3x_capture_opts {
	size_t sz;
	const char *ifname; /* the interface to capture on; required */
	/* bpffs directory of the pinned maps; default /sys/fs/bpf/l3x/IFNAME.
	 * If an l3x program is attached there already (xdp-loader load -p), it
	 * is used and left attached; otherwise ours is attached and detached on
	 * close. */
	const char *pin_dir;
	enum l3x_xdp_mode xdp_mode;
	enum l3x_bind_mode bind_mode;
	uint32_t frame_count; /* UMEM frames per queue; default 4096 */
	uint32_t frame_size;  /* 2048 or 4096 (default) */
	uint32_t ring_size;   /* RX (and TX) ring entries; default 2048. The
			       * fill ring holds every frame. */
	int busy_poll_usec;   /* SO_BUSY_POLL; 0 = default 20, <0 = off */
	uint32_t busy_poll_budget; /* 0 = default 64 */
	size_t : 0;
};

/* One received frame. Valid until given back with __release(). */
struct l3x_frame {
	const uint8_t *data; /* starts at the Ethernet header */
	uint32_t len;
	uint32_t queue; /* RX queue it arrived on */
	uint64_t ts_ns; /* CLOCK_REALTIME when the burst was read */
	uint64_t addr;	/* UMEM address: the library's, do not change */
};

/* Where every UMEM frame of a handle is. total is the sum of the rest. */
struct l3x_frame_stats {
	uint32_t total;
	uint32_t free;	     /* in the library's free pool */
	uint32_t fill;	     /* posted to the fill ring, not yet taken */
	uint32_t kernel;     /* taken by the kernel, not yet received */
	uint32_t app;	     /* received by the application, not released
			      * (a stack: with the frames lwIP holds) */
	uint32_t tx;	     /* on the TX ring or in the kernel */
	uint32_t completion; /* on the completion ring, not yet reaped */
};

struct l3x_capture_handle_stats {
	uint64_t frames; /* frames received */
	uint64_t bytes;
	/* from the socket (XDP_STATISTICS) */
	uint64_t rx_dropped;
	uint64_t rx_invalid_descs;
	uint64_t rx_ring_full;
	uint64_t rx_fill_ring_empty;
	/* l3x_capture_handle__release() calls refused */
	uint64_t release_invalid;
};

/*
 * l3x_capture__open() - start steering on opts->ifname: attach the
 * steering program (or reuse one already attached with its maps pinned
 * under opts->pin_dir) and prepare to open per-queue handles.
 * Returns NULL with errno set: EINVAL bad opts (NULL, or no ifname),
 * ENODEV no such interface, EPERM without CAP_NET_ADMIN/CAP_BPF, others
 * from libxdp/libbpf.
 * Any thread; the object is then used from one control thread.
 */
L3X_API struct l3x_capture *
l3x_capture__open(const struct l3x_capture_opts *opts);

/*
 * l3x_capture__add_rule() / __del_rule() - add or remove a steering rule,
 * live. A rule added twice counts twice and must be removed twice.
 * Rules this object added are removed on close.
 * Returns 0; -EINVAL bad rule; -ENOSPC too many rules or port ranges
 * covering one prefix (L3X_MAX_RANGES); -ENOENT (del) no such rule.
 * Control thread only.
 */
L3X_API int l3x_capture__add_rule(struct l3x_capture *cap,
				  const struct l3x_rule *rule);
L3X_API int l3x_capture__del_rule(struct l3x_capture *cap,
				  const struct l3x_rule *rule);

/*
 * l3x_capture__steer_stats() - read the steering program's counters.
 * Returns 0 or -errno. Any thread.
 */
L3X_API int l3x_capture__steer_stats(struct l3x_capture *cap,
				     struct l3x_steer_stats *st);

/*
 * l3x_capture__queue_count() - RX queues the interface has.
 * Any thread.
 */
L3X_API int l3x_capture__queue_count(struct l3x_capture *cap);

/*
 * l3x_capture__close() - remove this object's rules, detach the program if
 * this object attached it, free everything. Returns 0; -EBUSY while
 * handles are open (close them first; nothing is freed). NULL is a no-op
 * (0). Control thread only.
 */
L3X_API int l3x_capture__close(struct l3x_capture *cap);

/*
 * l3x_capture_handle__open() - open an AF_XDP socket on RX queue @queue and
 * its UMEM. The calling thread owns the handle (call it from the core that
 * will read it). Returns NULL with errno: EBUSY queue already open, ERANGE
 * no such queue, others from libxdp.
 * Control thread (serialised with the other __open/__close calls).
 */
L3X_API struct l3x_capture_handle *
l3x_capture_handle__open(struct l3x_capture *cap, uint32_t queue);

/*
 * l3x_capture_handle__recv_burst() - take up to @n received frames.
 * Never blocks; returns how many (0 when none). Frames stay valid until
 * released. Owner thread only.
 */
L3X_API unsigned l3x_capture_handle__recv_burst(struct l3x_capture_handle *h,
						struct l3x_frame *frames,
						unsigned n);

/*
 * l3x_capture_handle__release() - give @n frames back for reception.
 * Returns 0; -EINVAL when @h is NULL, or when one of @frames is not a
 * frame the application holds (released already, twice in @frames, or not
 * from this handle): then none is given back, and the call is counted in
 * release_invalid. Owner thread only.
 */
L3X_API int l3x_capture_handle__release(struct l3x_capture_handle *h,
					const struct l3x_frame *frames,
					unsigned n);

/*
 * l3x_capture_handle__fd() - an fd that polls readable when frames wait.
 * Any thread.
 */
L3X_API int l3x_capture_handle__fd(const struct l3x_capture_handle *h);

/*
 * l3x_capture_handle__wait() - block until frames wait or @timeout_ms
 * passes (-1 forever). Returns 1 ready, 0 timeout, -errno (-EINTR on a
 * signal). Owner thread only.
 */
L3X_API int l3x_capture_handle__wait(struct l3x_capture_handle *h,
				     int timeout_ms);

/*
 * l3x_capture_handle__stats() / __frames() - counters and frame accounting.
 * Returns 0 or -errno. Owner thread only.
 */
L3X_API int l3x_capture_handle__stats(struct l3x_capture_handle *h,
				      struct l3x_capture_handle_stats *st);
L3X_API int l3x_capture_handle__frames(struct l3x_capture_handle *h,
				       struct l3x_frame_stats *fs);

/*
 * l3x_capture_handle__close() - close the socket and free the UMEM.
 * Frames still held by the application are lost to it. Returns 0; NULL is
 * a no-op (0). Owner thread only.
 */
L3X_API int l3x_capture_handle__close(struct l3x_capture_handle *h);

/* -------------------------------------------------------------- stack */

/*
 * The termination engine. A stack terminates every TCP connection and UDP
 * flow that its source delivers, whatever the destination address and
 * port, with lwIP as the TCP/IP stack, and hands the streams and flows to
 * application threads through workers.
 *
 * lwIP keeps its state in globals, so there is one stack per process;
 * serve N queues with one stack polling them all, or with N processes
 * that each open a stack on their own queues and share nothing.
 *
 *   engine thread                       application threads
 *   l3x_stack__start() or __poll()      l3x_worker__open() (one per thread)
 *     source -> lwIP -> stream rx  ===>   l3x_worker__accept() / __poll()
 *     lwIP <- stream tx            <===   l3x_stream__read() / __write()
 */
struct l3x_stack;
struct l3x_worker;
struct l3x_stream;

enum l3x_source {
	L3X_SOURCE_XDP = 0,  /* AF_XDP on .ifname, steered by rules */
	L3X_SOURCE_TUN,	     /* a TUN device .tun_name, created if missing */
	L3X_SOURCE_CALLBACK, /* IP packets in by l3x_stack__input(), out
			      * through .output */
};

/* l3x_stack_opts.cpu: do not pin the engine thread. */
#define L3X_CPU_NONE (-1)
/* l3x_stack_opts.idle_spins: the default. */
#define L3X_IDLE_SPINS 200
/* A timeout that never fires (tcp_idle_ms, persist_timeout_ms). */
#define L3X_MS_NEVER UINT32_MAX

/* Sends one IP packet (no layer 2) that the stack emits. Return 0, or
 * -errno to have it counted as a transmit drop. Called on the engine
 * thread, from l3x_stack__input() and l3x_stack__poll(). */
typedef int (*l3x_output_fn_t)(void *ctx, const void *pkt, size_t len);

struct l3x_stack_opts {
	size_t sz;
	enum l3x_source source;

	/* L3X_SOURCE_XDP */
	const char *ifname;
	const uint32_t *queues; /* RX queues to serve; NULL: queue 0 */
	uint32_t queue_count;
	const char *pin_dir; /* as in struct l3x_capture_opts */
	enum l3x_xdp_mode xdp_mode;
	enum l3x_bind_mode bind_mode;
	uint32_t frame_count; /* UMEM frames per queue; default 8192 */
	uint32_t ring_size;   /* RX and TX ring entries; default 2048 */
	int busy_poll_usec;   /* SO_BUSY_POLL; 0 = default 20, <0 = off */

	/* L3X_SOURCE_TUN */
	const char *tun_name;

	/* L3X_SOURCE_CALLBACK */
	l3x_output_fn_t output;
	void *output_ctx;

	/* the stack */
	uint32_t mtu;	      /* IP MTU; default 1500 */
	uint32_t max_flows;   /* sizes the flow budgets: the default of
			       * max_tcp_flows, and four times that of
			       * max_udp_flows. Default 65536 */
	uint64_t max_memory;  /* bytes allocated for flows and packets
			       * (mem_bytes); from half of it each stream
			       * is held to a share (windows shrink), past
			       * it less a headroom segments, datagrams
			       * and new flows are dropped. At least
			       * 1 MiB; default 1 GiB */
	uint32_t rx_buf;      /* per-stream receive window: bytes received
			       * and not yet read; default 256 KiB, from
			       * 64 KiB to 1 MiB */
	uint32_t tx_buf;      /* per-stream bytes written and not yet
			       * acknowledged; default 256 KiB */
	uint32_t backlog;     /* per worker: streams waiting for accept;
			       * past it new connections are refused with
			       * RST. Default 1024 */
	uint32_t linger_ms;   /* after close: how long unsent data and the
			       * FIN may wait for the client before the
			       * stream is aborted; at most INT32_MAX
			       * (-ERANGE), default 30000 */
	int cpu;	      /* l3x_stack__start(): the core to pin the
			       * engine thread to, 0 to CPU_SETSIZE - 1, or
			       * L3X_CPU_NONE. 0 is core 0: zero-filled
			       * opts pin to it */
	uint32_t udp_idle_ms; /* a UDP flow with no datagram either way
			       * for this long expires; at most
			       * INT32_MAX (-ERANGE), default 30000 */
	uint32_t udp_queue;   /* per UDP flow and direction: datagrams
			       * queued at most; past it received ones
			       * are dropped (counted), send gives
			       * -EAGAIN. At most 65535, default 256 */

	/* memory, flow budgets, hash tables */
	uint32_t max_tcp_flows;	       /* TCP streams open at once, a budget of
					* their own: UDP never takes its room.
					* Default max_flows */
	uint32_t max_udp_flows;	       /* UDP flows open at once, a budget of
					* their own; when full, the oldest flow
					* never answered is evicted for a new one.
					* Default max_flows / 4 (at least 1) */
	uint32_t max_flows_per_source; /* flows open at once from one
					* client address; 0 (default):
					* no cap */
	uint32_t max_flows_per_source64; /* from one client IPv6 /64;
					  * 0 (default): no cap */
	uint32_t ooo_max_bytes; /* per stream: out-of-order data held, as
				 * allocated; past it segments are dropped
				 * (tcp_ooo_dropped). Default 262144 */
	uint32_t ooo_max_segs;	/* per stream: out-of-order segments held;
				 * default 64 */

	/* SYN flood defence */
	uint32_t max_half_open; /* connections in SYN_RCVD (handshake not
				 * completed) at once, apart from
				 * max_tcp_flows; past it SYNs get a SYN
				 * cookie or are dropped (syncookies).
				 * Default 4096, at most 1048576 */
	enum l3x_syncookies syncookies; /* default L3X_SYNCOOKIES_WHEN_FULL */
	/* TCP lifetimes */
	uint32_t max_time_wait;	   /* connections kept in TIME_WAIT after we
				    * closed first; past it the one longest
				    * there is recycled (tcp_tw_recycled).
				    * Default max_tcp_flows */
	uint32_t tcp_idle_ms;	   /* a stream that receives nothing for this
				    * long is reset (tcp_idle_timeouts);
				    * L3X_MS_NEVER: never. Default 3600000 (1 h);
				    * per stream: L3X_STREAM_IDLE_MS */
	uint32_t tcp_keepalive_ms; /* keepalive probes after this long
				    * idle; 0 (default): none */
	uint32_t tcp_keepalive_intvl_ms; /* between probes; default 75000 */
	uint32_t tcp_keepalive_cnt;	 /* probes unanswered before the
					  * stream is reset
					  * (tcp_keepalive_timeouts); default 9 */
	uint32_t persist_timeout_ms;	 /* a client that keeps its window shut
					  * this long, data waiting for it, is
					  * reset (tcp_persist_timeouts);
					  * L3X_MS_NEVER: never. Default 120000 */
	/* Deferred accept ("connect before accept"): a new connection's
	 * SYN is not answered until the application has taken it with
	 * l3x_worker__accept() as a request and answered it with
	 * l3x_stream__answer(). Requests count in max_half_open; past it
	 * syncookies applies as without this (a cookie connection is no
	 * request: it is accepted as today), and with
	 * L3X_SYNCOOKIES_ALWAYS no SYN makes a request. A new UDP flow is
	 * a request too, answered with l3x_udp__answer(). */
	bool defer_accept;
	uint32_t request_timeout_ms; /* a request not answered within this
				      * is dropped (tcp_requests_timed_out,
				      * udp_requests_timed_out); a dropped
				      * UDP request's client is hushed this
				      * long. Default 5000, 100 to 15000 */
	/* The engine thread of l3x_stack__start() */
	enum l3x_poll poll;  /* default L3X_POLL_ADAPTIVE */
	uint32_t idle_spins; /* L3X_POLL_ADAPTIVE: turns without work
			      * before the engine sleeps; 0: default
			      * L3X_IDLE_SPINS, at most 1000000 */
	/* ACK coalescing: while the engine takes in a burst of packets, a
	 * connection's ACK waits for the burst's end, so one ACK answers
	 * the burst's in-order segments, at most this many. Out-of-order
	 * and duplicate segments are answered at once (RFC 5681).
	 * Default 16, at most 64; L3X_ACK_COALESCE_OFF: an ACK for every
	 * second segment, as lwIP sends them */
	uint32_t ack_coalesce;
	/* Receive coalescing (GRO): consecutive in-order segments of one
	 * connection that arrive in one burst reach TCP as one segment,
	 * at most ack_coalesce of them (64 KB) (XDP source). Default on;
	 * L3X_GRO_OFF: every segment on its own */
	uint32_t gro;
	/* L3X_POLL_ADAPTIVE, true: a turn without work gives the CPU away
	 * (sched_yield) before the next, so that a worker thread the
	 * engine woke on the same core may run at once. Default false:
	 * on this kernel's scheduler the yields cost more than they give
	 * (udp-rr, tcp-rr: README, Performance) */
	bool idle_yield;
	size_t : 0;
};

#define L3X_ACK_COALESCE_OFF 1
#define L3X_GRO_OFF	     1

/* Counters of a stack. Wire-facing drops are counted where they happen. */
struct l3x_stack_stats {
	uint64_t rx_packets; /* IP packets from the source */
	uint64_t rx_bytes;
	uint64_t tx_packets; /* IP packets to the source */
	uint64_t tx_bytes;
	uint64_t rx_not_ip;	      /* not IPv4/IPv6, truncated L2, or
				       * malformed as the XDP program
				       * judges it (TUN/callback) */
	uint64_t rx_no_rule;	      /* TUN/callback: no rule took it, as
				       * the XDP program would pass it to
				       * the kernel (neighbour discovery
				       * always) */
	uint64_t rx_no_memory;	      /* no buffer for a received packet */
	uint64_t rx_bad;	      /* dropped by lwIP: bad checksum, bad
				       * header, no flow (the sum of the
				       * rx_*_bad below) */
	uint64_t tx_dropped;	      /* no frame, ring full, output error,
				       * past the MTU (not fragmented) */
	uint64_t tcp_accepted;	      /* handshakes completed */
	uint64_t tcp_refused_flows;   /* refused: max_tcp_flows reached */
	uint64_t tcp_refused_memory;  /* refused: max_memory reached */
	uint64_t tcp_refused_backlog; /* refused: no worker or backlog full */
	uint64_t tcp_reset_by_client; /* streams the client reset */
	uint64_t tcp_aborted;	      /* streams we reset (abort, linger,
				       * close with unread data) */
	uint64_t tcp_closed;	      /* streams closed in order */
	uint64_t flows;		      /* open now (TCP and UDP) */
	uint64_t buffered_bytes;      /* now: payload received and not read,
				       * written and not acked */
	uint64_t udp_flows;	      /* UDP flows created */
	uint64_t udp_expired;	      /* UDP flows that went idle */
	uint64_t udp_refused;	      /* datagrams of new flows refused,
				       * whatever the reason (budget, caps,
				       * hash, memory, no worker, backlog) */
	uint64_t udp_rx;	      /* datagrams delivered */
	uint64_t udp_rx_dropped;      /* dropped: the flow's queue full */
	uint64_t udp_tx;	      /* datagrams sent */
	uint64_t udp_tx_failed;	      /* send failed (no memory, route) */
	/* What became of each packet the engine handed to lwIP: exactly one
	 * of these per packet, so rx_packets is the sum of rx_not_ip,
	 * rx_no_rule, rx_no_memory and these eleven (rx_bad is the sum of
	 * the five *_bad). */
	uint64_t rx_ip_bad;	  /* IPv4/IPv6 input dropped it: header,
				   * length, checksum, protocol, options,
				   * extension headers */
	uint64_t rx_frag_held;	  /* a fragment kept until its datagram is
				   * whole (or times out) */
	uint64_t rx_frag_bad;	  /* a fragment reassembly dropped:
				   * overlap, too many, bad offsets */
	uint64_t rx_tcp_flow;	  /* TCP: to a connection */
	uint64_t rx_tcp_listen;	  /* TCP: to the listener (SYN answered
				   * or refused, ACK answered by RST,
				   * the rest ignored) */
	uint64_t rx_tcp_timewait; /* TCP: to a connection in TIME_WAIT */
	uint64_t rx_tcp_bad;	  /* TCP dropped it: checksum, header, no
				   * connection (answered by RST), a RST
				   * for no connection */
	uint64_t rx_udp;	  /* UDP took it: see udp_rx, udp_refused,
				   * udp_rx_dropped */
	uint64_t rx_udp_bad;	  /* UDP dropped it: checksum, length */
	uint64_t rx_icmp;	  /* ICMP/ICMPv6 took it: echo answered,
				   * the rest read and ignored */
	uint64_t rx_icmp_bad;	  /* ICMP/ICMPv6 dropped it */
	/* Not part of rx_packets: */
	uint64_t rx_ring_dropped; /* XDP: frames the program steered that
				   * the sockets dropped (RX ring full, no
				   * free frame) */

	/* memory, flow budgets, hash tables */
	uint64_t tcp_refused_hash;   /* SYNs dropped: their bucket of the
				      * connection hash is full (or
				      * refused: the per-source table's) */
	uint64_t tcp_flows_open;     /* now: TCP streams in max_tcp_flows */
	uint64_t udp_flows_open;     /* now: UDP flows in max_udp_flows */
	uint64_t tcp_refused_source; /* refused: a per-source cap */
	uint64_t udp_refused_source; /* datagrams of new flows dropped: a
				      * per-source cap */
	uint64_t udp_refused_hash;   /* datagrams of new flows dropped:
				      * their bucket of the flow table (or
				      * the per-source table) is full */
	uint64_t udp_evicted;	     /* UDP flows never answered, evicted
				      * for a new one (max_udp_flows) */
	uint64_t udp_bad_length;     /* datagrams dropped: the UDP length
				      * field is not the IP payload's */
	uint64_t udp6_zero_checksum; /* IPv6 datagrams dropped: checksum 0
				      * (RFC 8200) */
	uint64_t mem_bytes;	     /* now: bytes allocated for flows and
				      * packets, as max_memory counts them */
	uint64_t mem_peak;	     /* the most mem_bytes was since open */
	uint64_t rx_dropped_memory;  /* TCP segments, SYNs and datagrams
				      * dropped: max_memory reached */
	uint64_t tcp_window_shrunk;  /* receive windows shrunk for memory */
	uint64_t tcp_ooo_dropped;    /* out-of-order segments dropped: the
				      * stream's ooo_max_bytes/_segs */
	uint64_t tcp_rx_merged;	     /* small segments copied into shared
				      * buffers */

	/* SYN flood defence */
	uint64_t tcp_syn_received;	/* SYNs to the listener (the bucket
					 * and memory checks passed) */
	uint64_t tcp_half_open;		/* now: connections in SYN_RCVD, in
					 * max_half_open */
	uint64_t tcp_half_open_dropped; /* SYNs dropped: max_half_open
					 * reached and syncookies NEVER, or
					 * no memory for the cookie */
	uint64_t tcp_syn_cookies_sent;	/* SYN-ACKs carrying a cookie */
	uint64_t tcp_syn_cookies_ok;	/* ACKs with a good cookie: a
					 * connection made from it */
	uint64_t tcp_syn_cookies_bad;	/* ACKs to the listener while
					 * cookies are out (the last 128 s)
					 * that carry none of ours: answered
					 * by RST */
	/* the way back (XDP source) */
	uint64_t rx_src_mac_group; /* frames dropped: a group (multicast or
				    * broadcast) source MAC */
	uint64_t tx_no_way;	   /* packets not sent: no flow's way back,
				    * and no answer to the frame at hand */
	uint64_t way_refused;	   /* flows refused: their chain of the way
				    * table is full, or no memory */
	/* TCP lifetimes */
	uint64_t tcp_time_wait;		 /* now: connections in TIME_WAIT */
	uint64_t tcp_time_wait_peak;	 /* the most tcp_time_wait was */
	uint64_t tcp_tw_reused;		 /* TIME_WAIT connections a new SYN
					  * reopened (its sequence or timestamp
					  * past the old ones, RFC 6191) */
	uint64_t tcp_tw_recycled;	 /* TIME_WAIT connections ended early:
					  * max_time_wait reached */
	uint64_t tcp_tw_rst;		 /* TIME_WAIT connections a RST in
					  * sequence ended */
	uint64_t tcp_paws_dropped;	 /* data segments dropped: timestamp
					  * older than the last (PAWS, RFC
					  * 7323); in rx_tcp_bad too */
	uint64_t tcp_idle_timeouts;	 /* streams reset: nothing received for
					  * tcp_idle_ms */
	uint64_t tcp_keepalive_timeouts; /* streams reset: keepalive probes
					  * unanswered */
	uint64_t tcp_persist_timeouts;	 /* streams reset: the client kept
					  * its window shut for
					  * persist_timeout_ms */
	uint64_t tcp_half_open_expired;	 /* half-open connections given up:
					  * no ACK within 20 s, or 4 s while
					  * the half-open table is at least half
					  * full (one SYN-ACK retransmit) */
	/* deferred accept (defer_accept) */
	uint64_t tcp_requests;		 /* SYNs made into requests */
	uint64_t tcp_requests_pending;	 /* now: requests not yet answered */
	uint64_t tcp_requests_accepted;	 /* answered accept: SYN-ACK sent */
	uint64_t tcp_requests_refused;	 /* answered refuse: RST sent */
	uint64_t tcp_requests_dropped;	 /* answered drop (or closed
					  * unanswered): nothing sent */
	uint64_t tcp_requests_timed_out; /* not answered within
					  * request_timeout_ms: dropped */
	uint64_t udp_requests;		 /* new UDP flows made requests */
	uint64_t udp_requests_refused;	 /* answered refuse: ICMP port
					  * unreachable sent */
	uint64_t udp_requests_dropped;	 /* answered drop (or closed
					  * unanswered): nothing sent */
	uint64_t udp_requests_timed_out; /* not answered within
					  * request_timeout_ms: dropped */
	/* zero-copy receive (XDP source) */
	uint64_t rx_zerocopy;	       /* packets lwIP took in their UMEM
					* frame (unfragmented TCP) */
	uint64_t rx_copied;	       /* packets copied into a buffer of
					* lwIP's (every other) */
	uint64_t rx_zerocopy_fallback; /* of those, TCP copied only because
					* lwIP held its bound of frames (half
					* the receive frames) or the fill ring
					* ran low */
	/* transmit (XDP source) */
	uint64_t tx_kicks; /* sendto() calls asking the kernel to send the
			    * TX rings (tx_packets / tx_kicks: the batch) */
	/* ACK coalescing (ack_coalesce) */
	uint64_t tcp_ack_deferred; /* segments received whose ACK (or the
				    * data it let go) waited for the end of
				    * their receive burst */
	/* Receive coalescing (gro) */
	uint64_t tcp_gro_merged;  /* segments merged into the one before
				   * them, so TCP took them as one */
	uint64_t tcp_gro_flushed; /* packets held until their run ended,
				   * then passed on: merged ones, and
				   * segments nothing followed */
};

/* lwIP memory in use, and UMEM frames (XDP source): tests check that
 * these return to their starting values. */
struct l3x_stack_mem {
	uint64_t heap_bytes; /* lwIP's heap: packet buffers and,
			      * as pools come from it, PCBs; each
			      * block as allocated */
	uint32_t pbufs;	     /* pool pbufs (PBUF_REF/ROM/POOL) */
	uint32_t tcp_pcbs;   /* connection PCBs (any state) */
	uint32_t tcp_listen_pcbs;
	uint32_t tcp_segs; /* queued TCP segments */
	uint32_t udp_pcbs;
	uint32_t reass;		       /* datagrams being reassembled */
	uint32_t streams;	       /* l3x stream objects alive */
	struct l3x_frame_stats frames; /* summed over queues */
};

/*
 * l3x_stack__open() - create the stack and its source: for XDP, attach
 * (or reuse) the steering program and open a socket on every queue; for
 * TUN, open or create the device and bring it up. Nothing is accepted
 * until rules are added: the XDP program steers only what rules match,
 * and the other sources drop (and count) packets no rule matches.
 * Returns NULL with errno: EBUSY a stack is already open in this process,
 * EINVAL bad opts (a source without its field), ERANGE linger_ms or
 * udp_idle_ms past INT32_MAX, ENODEV, EPERM, others.
 * Any thread; the object then has one control thread and one engine
 * thread (the one that calls __poll, or the thread __start creates).
 */
L3X_API struct l3x_stack *l3x_stack__open(const struct l3x_stack_opts *opts);

/*
 * l3x_stack__add_rule() / __del_rule() - as l3x_capture__add_rule(), live.
 * Rules this stack added are removed on close.
 * Control thread only.
 */
L3X_API int l3x_stack__add_rule(struct l3x_stack *st,
				const struct l3x_rule *rule);
L3X_API int l3x_stack__del_rule(struct l3x_stack *st,
				const struct l3x_rule *rule);

/*
 * l3x_stack__start() - run the engine on a thread of its own (pinned to
 * core opts.cpu unless L3X_CPU_NONE), polling as opts.poll says: busy
 * while there is work, asleep when idle (L3X_POLL_ADAPTIVE), or busy
 * always (L3X_POLL_BUSY). Returns 0,
 * -EALREADY if started, -errno from pthread_create.
 * Control thread only.
 */
L3X_API int l3x_stack__start(struct l3x_stack *st);

/*
 * l3x_stack__stop() - stop and join the engine thread; flows stay as they
 * are and resume on the next __start or __poll. Returns 0 or -EALREADY
 * when not started. Control thread only.
 */
L3X_API int l3x_stack__stop(struct l3x_stack *st);

/*
 * l3x_stack__poll() - one turn of the engine on the calling thread: read
 * a burst from the source, feed lwIP, serve the workers' requests, run
 * lwIP's timers. Never blocks. For callers that drive the engine from
 * their own loop (not while started).
 * Returns the amount of work done (0 = idle), -EBUSY if started.
 * Engine thread only.
 */
L3X_API int l3x_stack__poll(struct l3x_stack *st);

/*
 * l3x_stack__input() - L3X_SOURCE_CALLBACK: hand in one IPv4 or IPv6
 * packet of @len bytes (copied). Replies leave through opts.output, from
 * this call or from a later __poll.
 * Returns 0; -EINVAL other source or @len 0 / past 65535; -EBUSY called
 * off the engine thread while started (as __poll); -ENOBUFS no memory
 * (counted in rx_no_memory). Malformed packets return 0 and are counted.
 * Engine thread only.
 */
L3X_API int l3x_stack__input(struct l3x_stack *st, const void *pkt, size_t len);

/*
 * l3x_stack__stats() - copy the counters. Any thread (a snapshot).
 */
L3X_API int l3x_stack__stats(const struct l3x_stack *st,
			     struct l3x_stack_stats *stats);

/*
 * l3x_stack__mem() - memory in use. Engine thread, or any thread while
 * the engine is stopped (otherwise a racy snapshot).
 */
L3X_API int l3x_stack__mem(const struct l3x_stack *st,
			   struct l3x_stack_mem *mem);

/*
 * l3x_stack__steer_stats() - XDP source: the steering counters.
 * Returns 0, -EOPNOTSUPP for other sources. Any thread.
 */
L3X_API int l3x_stack__steer_stats(const struct l3x_stack *st,
				   struct l3x_steer_stats *stats);

/*
 * l3x_stack__close() - stop the engine, reset every open flow (RST),
 * remove this stack's rules, close the source and the steering, free
 * everything. Returns 0; -EBUSY while workers are open (close them first;
 * nothing changes). NULL is a no-op (0). Control thread only.
 */
L3X_API int l3x_stack__close(struct l3x_stack *st);

/* ------------------------------------------------------------- worker */

/* Readiness of a stream, edge-triggered: reported when it changes; read
 * (or write) until -EAGAIN before waiting again. */
#define L3X_EV_READABLE 0x1u /* data, EOF or an error to read */
#define L3X_EV_WRITABLE 0x2u /* room to write again after -EAGAIN */
#define L3X_EV_EOF	0x4u /* the client half-closed (FIN) */
#define L3X_EV_ERROR	0x8u /* reset by the client or failed */

enum l3x_flow_kind {
	L3X_FLOW_TCP = 0, /* .stream */
	L3X_FLOW_UDP = 1, /* .udp */
};

struct l3x_udp;

struct l3x_event {
	union {
		struct l3x_stream *stream;
		struct l3x_udp *udp;
	};
	void *user;	 /* l3x_stream__set_user(), l3x_udp__set_user() */
	uint32_t events; /* L3X_EV_* */
	uint32_t kind;	 /* enum l3x_flow_kind */
};

/*
 * l3x_worker__open() - a handle for the calling thread, which owns it and
 * every stream it accepts. The stack spreads new flows round-robin over
 * open workers. Returns NULL with errno: ENOSPC too many workers (64),
 * ENOMEM. Any thread; the handle is then owner thread only.
 */
L3X_API struct l3x_worker *l3x_worker__open(struct l3x_stack *st);

/*
 * l3x_worker__fd() - an fd that polls readable when __accept or __poll
 * has something. Put it in epoll; after it fires, call both until they
 * return nothing. Any thread.
 */
L3X_API int l3x_worker__fd(const struct l3x_worker *w);

/*
 * l3x_worker__wait() - block until there is something to accept or poll,
 * or @timeout_ms passes (-1 forever). Returns 1 ready, 0 timeout, -errno
 * (-EINTR on a signal). Owner thread only.
 */
L3X_API int l3x_worker__wait(struct l3x_worker *w, int timeout_ms);

/*
 * l3x_worker__spin() - before sleeping on the fd: look for something to
 * accept or poll up to @spins times, giving the CPU away between looks
 * (sched_yield), so that an engine thread on the same core runs
 * meanwhile; while it looks, the engine need not write the fd to wake
 * it. Returns 1 when there is something (call __accept and __poll until
 * they return nothing, as after the fd fires), 0 when nothing came: sleep
 * on the fd (it fires for what comes after). 0 spins: only a last look.
 * -EINVAL: NULL, or @spins over L3X_WORKER_SPINS_MAX. Owner thread only.
 */
L3X_API int l3x_worker__spin(struct l3x_worker *w, uint32_t spins);

/* l3x_worker__spin(): the most spins. */
#define L3X_WORKER_SPINS_MAX 1000000

/*
 * l3x_worker__accept() - take the next new stream. Data may already be
 * waiting: read it. Returns NULL with errno EAGAIN when none.
 * Owner thread only.
 */
L3X_API struct l3x_stream *l3x_worker__accept(struct l3x_worker *w);

/*
 * l3x_worker__poll() - take up to @n readiness events on accepted
 * streams. Never blocks. Returns how many (0 when none).
 * Owner thread only.
 */
L3X_API int l3x_worker__poll(struct l3x_worker *w, struct l3x_event *ev,
			     unsigned n);

/*
 * l3x_worker__accept_udp() - take the next new UDP flow: the first
 * datagram from a client to a destination no bound socket covers.
 * Returns NULL with errno EAGAIN when none. Owner thread only.
 */
L3X_API struct l3x_udp *l3x_worker__accept_udp(struct l3x_worker *w);

/*
 * l3x_worker__close() - close the handle. Streams it still holds are
 * reset (RST to their clients); streams not yet accepted too; its bound
 * UDP sockets are closed. Returns 0; NULL is a no-op (0). Owner thread
 * only.
 */
L3X_API int l3x_worker__close(struct l3x_worker *w);

/* ------------------------------------------------------------- stream */

/*
 * l3x_stream__read() - copy up to @len received bytes into @buf.
 * Returns bytes read; 0 at EOF (the client half-closed and everything
 * before its FIN was read); -EAGAIN nothing yet; -ECONNRESET the client
 * reset the stream; -ETIMEDOUT the client stopped answering.
 * Owner thread only.
 */
L3X_API long l3x_stream__read(struct l3x_stream *s, void *buf, size_t len);

/*
 * l3x_stream__write() - queue up to @len bytes of @buf for the client.
 * Returns bytes queued (possibly fewer than @len); -EAGAIN the send
 * buffer (tx_buf) is full: wait for L3X_EV_WRITABLE; -EPIPE after
 * __shutdown; -ECONNRESET / -ETIMEDOUT after the stream failed.
 * Owner thread only.
 */
L3X_API long l3x_stream__write(struct l3x_stream *s, const void *buf,
			       size_t len);

/*
 * l3x_stream__shutdown() - half-close: after the queued data the client
 * gets a FIN; reading goes on. Returns 0, -ENOTCONN already shut down or
 * failed. Owner thread only.
 */
L3X_API int l3x_stream__shutdown(struct l3x_stream *s);

/*
 * l3x_stream__close() - done with the stream: queued data is sent, then
 * a FIN (within opts.linger_ms). As with a kernel socket, closing with
 * received data unread resets the stream instead. @s is freed: do not
 * use it again. Returns 0; NULL is a no-op (0). Owner thread only.
 */
L3X_API int l3x_stream__close(struct l3x_stream *s);

/*
 * l3x_stream__abort() - reset the stream (the client gets RST) and free
 * @s. Returns 0; NULL is a no-op (0). Owner thread only.
 */
L3X_API int l3x_stream__abort(struct l3x_stream *s);

/*
 * l3x_stream__client_addr() - the client: the source of the connection.
 * l3x_stream__orig_dst_addr() - the original destination the client
 * connected to (the address and port l3x answered as).
 * Both fill a sockaddr_in or sockaddr_in6 in @addr (@addr_sz bytes, use
 * struct sockaddr_storage) and return its length, or -ENOSPC.
 * Any thread while the stream is open.
 */
struct sockaddr;
L3X_API int l3x_stream__client_addr(const struct l3x_stream *s,
				    struct sockaddr *addr, size_t addr_sz);
L3X_API int l3x_stream__orig_dst_addr(const struct l3x_stream *s,
				      struct sockaddr *addr, size_t addr_sz);

enum l3x_stream_opt {
	L3X_STREAM_NODELAY = 1, /* 1: send small writes at once (no Nagle) */
	L3X_STREAM_TX_BUF,	/* bytes: this stream's send buffer */
	L3X_STREAM_RX_BUF,	/* bytes: this stream's receive window (grows
				 * only; at most 1 MiB) */
	L3X_STREAM_IDLE_MS,	/* ms: reset when nothing is received for
				 * this long (opts.tcp_idle_ms);
				 * L3X_MS_NEVER: never */
};

/*
 * l3x_stream__setopt() / __getopt() - per-stream options.
 * Returns 0 (getopt: the value); -EINVAL unknown option or bad value.
 * Owner thread only.
 */
L3X_API int l3x_stream__setopt(struct l3x_stream *s, enum l3x_stream_opt opt,
			       long val);
L3X_API long l3x_stream__getopt(const struct l3x_stream *s,
				enum l3x_stream_opt opt);

/* l3x_stream__set_user() / __user() - the application's pointer for @s,
 * returned in its events. Owner thread only. */
L3X_API void l3x_stream__set_user(struct l3x_stream *s, void *user);
L3X_API void *l3x_stream__user(const struct l3x_stream *s);

/* ------------------------------------------------- requests (defer_accept) */

/*
 * With opts.defer_accept, l3x_worker__accept() returns each new TCP
 * connection as a request: the client's SYN has been received and not
 * answered. Its handle is the stream's: the client and the original
 * destination are l3x_stream__client_addr() / __orig_dst_addr(), the
 * SYN's options l3x_stream__request(). The application answers it once:
 *   L3X_ANSWER_ACCEPT  the SYN-ACK is sent; the handshake completes and
 *                      the stream goes on as any other (data written
 *                      before it is sent after it);
 *   L3X_ANSWER_REFUSE  the client gets a RST, as from a closed port;
 *   L3X_ANSWER_DROP    nothing is sent, as from a filtered address.
 * Refuse and drop end the handle, as l3x_stream__abort() does; closing
 * an unanswered request drops it. A request not answered within
 * opts.request_timeout_ms is dropped: the stream reports L3X_EV_ERROR,
 * reads -ETIMEDOUT, and is closed as any other. Copies of the SYN while
 * it waits are not answered and make no second request.
 */
enum l3x_answer {
	L3X_ANSWER_ACCEPT = 0,
	L3X_ANSWER_REFUSE,
	L3X_ANSWER_DROP,
};

/* The options of a request's SYN, as the client sent them. */
struct l3x_request {
	uint16_t mss;	/* 0: no MSS option */
	uint8_t wscale; /* window scale shift; 0xff: none */
	uint8_t sack;	/* 1: SACK permitted */
	uint8_t ts;	/* 1: timestamps offered (tsval) */
	uint32_t tsval;
};

/*
 * l3x_stream__request() - the SYN's options of request @s into @req.
 * Returns 0; -ENOENT @s is not a request, or was accepted already (a
 * stack without defer_accept, or a connection made from a SYN cookie);
 * -EINVAL @s or @req NULL, or @s not a TCP stream. Owner thread only.
 */
L3X_API int l3x_stream__request(const struct l3x_stream *s,
				struct l3x_request *req);

/*
 * l3x_stream__answer() - answer request @s with @answer (enum l3x_answer).
 * Returns 0; after REFUSE or DROP @s is gone. -EINVAL bad @answer, @s
 * not a TCP stream, or not a request; -EALREADY accepted already;
 * ACCEPT on a request that timed out returns -ETIMEDOUT (close it).
 * Owner thread only.
 */
L3X_API int l3x_stream__answer(struct l3x_stream *s, enum l3x_answer answer);

/* ---------------------------------------------------------------- udp */

/*
 * A UDP flow is every datagram between one client (address, port) and one
 * original destination (address, port), accepted like a stream; replies
 * leave from the original destination. It expires after opts.udp_idle_ms
 * without datagrams: then recv gives -ETIMEDOUT and the flow should be
 * closed.
 *
 * A bound socket (l3x_udp__bind) takes every datagram to one destination
 * address and port, from any client, as a kernel UDP socket would:
 * recvfrom gives the client, sendto answers one.
 */

/*
 * l3x_udp__recv() / __recvfrom() - take the next datagram, copying at most
 * @len bytes of it into @buf (the rest is dropped). __recvfrom fills
 * @from (a sockaddr_in or sockaddr_in6, @from_sz bytes) with its client.
 * Returns the datagram's full length (0 for an empty one); -EAGAIN none
 * waiting; -ETIMEDOUT the flow expired. Owner thread only.
 */
L3X_API long l3x_udp__recv(struct l3x_udp *u, void *buf, size_t len);
L3X_API long l3x_udp__recvfrom(struct l3x_udp *u, void *buf, size_t len,
			       struct sockaddr *from, size_t from_sz);

/*
 * l3x_udp__send() - a datagram to the flow's client, from its original
 * destination. l3x_udp__sendto() - a datagram from a bound socket's
 * address to @to. Returns @len; -EAGAIN udp_queue datagrams wait already;
 * -EMSGSIZE larger than the MTU allows; -EINVAL @to of the wrong family
 * or a flow where a bound socket is needed (or the reverse); -EPIPE the
 * flow expired. Owner thread only.
 */
L3X_API long l3x_udp__send(struct l3x_udp *u, const void *buf, size_t len);
L3X_API long l3x_udp__sendto(struct l3x_udp *u, const void *buf, size_t len,
			     const struct sockaddr *to, size_t to_sz);

/*
 * l3x_udp__bind() - a socket on worker @w for every datagram to @addr (a
 * sockaddr_in or sockaddr_in6 with a port; the rules must steer it).
 * Returns NULL with errno: EADDRINUSE already bound, EINVAL bad address,
 * ENOMEM. Owner thread of @w.
 */
L3X_API struct l3x_udp *l3x_udp__bind(struct l3x_worker *w,
				      const struct sockaddr *addr,
				      size_t addr_sz);

/*
 * l3x_udp__answer() - with opts.defer_accept, l3x_worker__accept_udp()
 * returns each new flow as a request: its first datagram has come and is
 * held (with later ones, at most opts.udp_queue; more are dropped,
 * counted in udp_rx_dropped). They are readable before the answer
 * (L3X_EV_READABLE), so that the application can judge them or send them
 * on and hear what the destination says (as l3x-relay does), but until
 * accepted send gives -ENOTCONN: nothing reaches the client. The
 * application answers it once (enum l3x_answer):
 *   L3X_ANSWER_ACCEPT  the flow goes on as any other, replies allowed;
 *   L3X_ANSWER_REFUSE  the client gets ICMP (ICMPv6) port unreachable
 *                      quoting its first datagram, as from a closed port;
 *   L3X_ANSWER_DROP    nothing is sent, as from a filtered address; the
 *                      client's datagrams of the next request_timeout_ms
 *                      are dropped (udp_rx_dropped) and make no request.
 * Refuse and drop end the handle, as l3x_udp__close() does; closing an
 * unanswered request drops it. A request not answered within
 * opts.request_timeout_ms is dropped: the flow reports L3X_EV_ERROR,
 * recv gives -ETIMEDOUT, and it is closed as any other. Returns 0;
 * -EINVAL bad @answer, @u not a UDP flow or not a request; -EALREADY
 * accepted already; ACCEPT on a request that timed out returns
 * -ETIMEDOUT (close it). Owner thread only.
 */
L3X_API int l3x_udp__answer(struct l3x_udp *u, enum l3x_answer answer);

/*
 * l3x_udp__close() - done with a flow or bound socket; datagrams queued
 * to send still leave. @u is freed. Returns 0; NULL is a no-op (0). Owner
 * thread only.
 */
L3X_API int l3x_udp__close(struct l3x_udp *u);

/*
 * l3x_udp__client_addr() / __orig_dst_addr() - as for streams (a bound
 * socket has no client: -ENOTCONN). Any thread while open.
 */
L3X_API int l3x_udp__client_addr(const struct l3x_udp *u, struct sockaddr *addr,
				 size_t addr_sz);
L3X_API int l3x_udp__orig_dst_addr(const struct l3x_udp *u,
				   struct sockaddr *addr, size_t addr_sz);

/* l3x_udp__set_user() / __user() - the application's pointer, returned in
 * events. Owner thread only. */
L3X_API void l3x_udp__set_user(struct l3x_udp *u, void *user);
L3X_API void *l3x_udp__user(const struct l3x_udp *u);

/* ------------------------------------------------------------ control */

/* The steering maps pinned in a directory, to change rules and read
 * counters while a capture (or xdp-loader's program) runs. */
struct l3x_ctl;

struct l3x_ctl_opts {
	size_t sz;
	/* the interface the pinned maps steer: its default pin directory
	 * is /sys/fs/bpf/l3x/IFNAME. If set, a valid interface name. */
	const char *ifname;
	/* bpffs directory; default /sys/fs/bpf/l3x/IFNAME. One of ifname
	 * and pin_dir is required. */
	const char *pin_dir;
	size_t : 0;
};

/*
 * l3x_ctl__open() - open the maps pinned in opts->pin_dir, or in the
 * default directory of opts->ifname, /sys/fs/bpf/l3x/IFNAME. Returns NULL
 * with errno: ENOENT nothing pinned there, EINVAL bad opts or neither
 * ifname nor pin_dir.
 * Any thread; the object is then used from one thread.
 */
L3X_API struct l3x_ctl *l3x_ctl__open(const struct l3x_ctl_opts *opts);

/*
 * l3x_ctl__add_rule() / __del_rule() - as l3x_capture__add_rule(), but the
 * rule stays after close (it belongs to whoever removes it).
 * Owner thread only.
 */
L3X_API int l3x_ctl__add_rule(struct l3x_ctl *ctl, const struct l3x_rule *r);
L3X_API int l3x_ctl__del_rule(struct l3x_ctl *ctl, const struct l3x_rule *r);

/*
 * l3x_ctl__rules() - copy up to @max rules into @out (with their reference
 * counts in @refs, which may be NULL). Returns how many rules there are
 * (possibly more than @max), or -errno. Owner thread only.
 */
L3X_API int l3x_ctl__rules(struct l3x_ctl *ctl, struct l3x_rule *out,
			   uint32_t *refs, size_t max);

/*
 * l3x_ctl__reap() - take back the rules of processes that added them and
 * died without removing them (SIGKILL, a crash): every process records
 * itself (pid, start time, pid namespace) with each rule it adds. Rules
 * added with l3x_ctl__add_rule() have no owner and stay. A capture or
 * stack that opens the interface does the same. Returns how many rule
 * references were taken back, or -errno. Owner thread only.
 */
L3X_API int l3x_ctl__reap(struct l3x_ctl *ctl);

/* l3x_ctl__stats() - the steering counters. Owner thread only. */
L3X_API int l3x_ctl__stats(struct l3x_ctl *ctl, struct l3x_steer_stats *st);

/* l3x_ctl__close() - close the maps; rules stay. Returns 0; NULL is a
 * no-op (0). Owner thread only. */
L3X_API int l3x_ctl__close(struct l3x_ctl *ctl);

#ifdef __cplusplus
}
#endif

#endif /* L3X_L3X_H */
