/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * l3x - pull TCP and UDP flows out of layer-3 traffic at line rate.
 *
 * This header is the whole public API. Conventions (see l3x(3)):
 *   - objects are opaque, methods read l3x_<obj>__<verb>();
 *   - int returns are 0 or a count on success, -errno on failure;
 *     pointer returns are NULL with errno set;
 *   - open calls take a trailing options struct made with L3X_OPTS(), which
 *     is only ever appended to: unknown non-zero trailing bytes give -EINVAL;
 *   - every function states its thread-safety last in its comment.
 */
#ifndef L3X_L3X_H
#define L3X_L3X_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define L3X_API __attribute__((visibility("default")))

/*
 * L3X_OPTS(TYPE, NAME, ...) declares "struct TYPE NAME", zero-filled, with
 * .sz set to the size this program was built with, and the given fields:
 *   L3X_OPTS(l3x_capture_opts, o, .pin_dir = "/run/l3x");
 */
#define L3X_OPTS(TYPE, NAME, ...)                                              \
	struct TYPE NAME;                                                      \
	__builtin_memset(&NAME, 0, sizeof(NAME));                              \
	NAME = (struct TYPE){ .sz = sizeof(struct TYPE), __VA_ARGS__ }

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
	L3X_PROTO_IP = 0,	/* any protocol; takes no ports */
	L3X_PROTO_TCP = 6,
	L3X_PROTO_UDP = 17,
};

/*
 * A steering rule, "PROTO DST [PORT[-PORT]]":
 *   tcp 198.51.100.0/24 80     udp 2001:db8::/32 53
 *   tcp 0.0.0.0/0 1-1024       ip 192.0.2.7
 * A bare address is a /32 (IPv4) or /128 (IPv6). No port means every port.
 */
struct l3x_rule {
	uint8_t proto;		/* enum l3x_proto */
	uint8_t family;		/* 4 or 6 */
	uint8_t prefix_len;
	uint8_t pad;
	uint16_t port_lo;	/* host order, inclusive; 0-65535 = any */
	uint16_t port_hi;
	uint8_t addr[16];	/* network order; IPv4 in addr[0..3] */
};

/* Longest text l3x_rule__format() writes, with its NUL. */
#define L3X_RULE_STRLEN 64

/*
 * l3x_rule__parse() - parse @text into @rule.
 * On failure writes one line to @err (if @err_sz > 0) naming the part that
 * is wrong and why, e.g. "port '70000': must be 0-65535".
 * Returns 0, or -EINVAL for a bad rule.
 * Any thread.
 */
L3X_API int l3x_rule__parse(struct l3x_rule *rule, const char *text,
			    char *err, size_t err_sz);

/*
 * l3x_rule__format() - write @rule in the syntax l3x_rule__parse() reads.
 * Returns the length written (excluding the NUL), or -ENOSPC if @sz is too
 * small (use L3X_RULE_STRLEN), -EINVAL if @rule is not valid.
 * Any thread.
 */
L3X_API int l3x_rule__format(const struct l3x_rule *rule, char *buf,
			     size_t sz);

/* ----------------------------------------------------------- steering */

enum l3x_xdp_mode {
	L3X_XDP_AUTO = 0,	/* native (driver) XDP, skb mode when refused */
	L3X_XDP_NATIVE,
	L3X_XDP_SKB,
};

enum l3x_bind_mode {
	L3X_BIND_AUTO = 0,	/* zero-copy when the driver offers it */
	L3X_BIND_COPY,
	L3X_BIND_ZEROCOPY,
};

/* Counters of the steering program, summed over CPUs. Every frame seen
 * on the interface adds to exactly one of the first four. */
struct l3x_steer_stats {
	uint64_t passed;		/* no rule matched: to the kernel */
	uint64_t redirected;		/* matched: to an AF_XDP socket */
	uint64_t redirect_failed;	/* matched, no socket on that queue */
	uint64_t malformed;		/* unparseable: to the kernel */
	uint64_t frags_tracked;		/* first fragments remembered */
};

/* ------------------------------------------------------------ capture */

struct l3x_capture;
struct l3x_capture_handle;

struct l3x_capture_opts {
	size_t sz;
	/* bpffs directory of the pinned maps; default /sys/fs/bpf/l3x. If an
	 * l3x program is attached there already (xdp-loader load -p), it is
	 * used and left attached; otherwise ours is attached and detached on
	 * close. */
	const char *pin_dir;
	enum l3x_xdp_mode xdp_mode;
	enum l3x_bind_mode bind_mode;
	uint32_t frame_count;	/* UMEM frames per queue; default 4096 */
	uint32_t frame_size;	/* 2048 or 4096 (default) */
	uint32_t ring_size;	/* RX (and TX) ring entries; default 2048. The
				 * fill ring holds every frame. */
	int busy_poll_usec;	/* SO_BUSY_POLL; 0 = default 20, <0 = off */
	uint32_t busy_poll_budget; /* 0 = default 64 */
	size_t :0;
};

/* One received frame. Valid until given back with __release(). */
struct l3x_frame {
	const uint8_t *data;	/* starts at the Ethernet header */
	uint32_t len;
	uint32_t queue;		/* RX queue it arrived on */
	uint64_t ts_ns;		/* CLOCK_REALTIME when the burst was read */
	uint64_t addr;		/* UMEM address: the library's, do not change */
};

/* Where every UMEM frame of a handle is. total is the sum of the rest. */
struct l3x_frame_stats {
	uint32_t total;
	uint32_t free;		/* in the library's free pool */
	uint32_t fill;		/* posted to the fill ring, not yet taken */
	uint32_t kernel;	/* taken by the kernel, not yet received */
	uint32_t app;		/* received by the application, not released */
	uint32_t tx;		/* on the TX ring or in the kernel */
	uint32_t completion;	/* on the completion ring, not yet reaped */
};

struct l3x_capture_handle_stats {
	uint64_t frames;	/* frames received */
	uint64_t bytes;
	/* from the socket (XDP_STATISTICS) */
	uint64_t rx_dropped;
	uint64_t rx_invalid_descs;
	uint64_t rx_ring_full;
	uint64_t rx_fill_ring_empty;
};

/*
 * l3x_capture__open() - start steering on @ifname: attach the steering
 * program (or reuse one already attached with its maps pinned under
 * opts->pin_dir) and prepare to open per-queue handles.
 * Returns NULL with errno set: ENODEV no such interface, EINVAL bad opts,
 * EPERM without CAP_NET_ADMIN/CAP_BPF, others from libxdp/libbpf.
 * Any thread; the object is then used from one control thread.
 */
L3X_API struct l3x_capture *
l3x_capture__open(const char *ifname, const struct l3x_capture_opts *opts);

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
 * this object attached it, free everything. All handles must be closed
 * first (else -EBUSY and nothing is freed). NULL is a no-op.
 * Control thread only.
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
 * Owner thread only.
 */
L3X_API void l3x_capture_handle__release(struct l3x_capture_handle *h,
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
 * Frames still held by the application are lost to it. NULL is a no-op.
 * Owner thread only.
 */
L3X_API void l3x_capture_handle__close(struct l3x_capture_handle *h);


/* ------------------------------------------------------------ control */

/* The steering maps pinned in a directory, to change rules and read
 * counters while a capture (or xdp-loader's program) runs. */
struct l3x_ctl;

/*
 * l3x_ctl__open() - open the maps pinned in @pin_dir (NULL: the default
 * /sys/fs/bpf/l3x). Returns NULL with errno: ENOENT nothing pinned there.
 * Any thread; the object is then used from one thread.
 */
L3X_API struct l3x_ctl *l3x_ctl__open(const char *pin_dir);

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

/* l3x_ctl__stats() - the steering counters. Owner thread only. */
L3X_API int l3x_ctl__stats(struct l3x_ctl *ctl, struct l3x_steer_stats *st);

/* l3x_ctl__close() - close the maps; rules stay. NULL is a no-op. */
L3X_API void l3x_ctl__close(struct l3x_ctl *ctl);

#ifdef __cplusplus
}
#endif

#endif /* L3X_L3X_H */
