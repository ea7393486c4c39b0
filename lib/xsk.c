/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * xsk.c - the AF_XDP link: one socket on one RX queue with its own UMEM,
 * through libxdp's xsk API with libxdp's program load inhibited (the
 * steering program is ours: lib/steer.c), the socket put in our XSKMAP.
 *
 * Frame ownership. Every UMEM frame is in exactly one place:
 *   free        our free stack (pool below)
 *   fill        on the fill ring, not yet taken by the kernel
 *   kernel      taken from the fill ring, not yet on the RX ring
 *   app         handed to the application, not yet released (a bit per
 *               frame in @held, so that a release of a frame the
 *               application does not hold is refused, not pushed twice);
 *               for the stack, this includes the frames lwIP holds in
 *               zero-copy pbufs (lib/link_xsk.c), released one by one
 *               as lwIP frees them
 *   tx          on the TX ring or being sent
 *   completion  sent, on the completion ring, not yet reaped
 * We count what crosses each boundary; the fill/kernel split is read from
 * the fill ring's producer and consumer. l3x_xsk_frames() reports it, and
 * tests check total == sum after every run.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_xdp.h>

#include <bpf/bpf.h>
#include <xdp/xsk.h>

#include "l3x_internal.h"
#include "xsk.h"

#ifndef SO_PREFER_BUSY_POLL
#define SO_PREFER_BUSY_POLL 69
#endif
#ifndef SO_BUSY_POLL_BUDGET
#define SO_BUSY_POLL_BUDGET 70
#endif

#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9 /* Linux 6.17 */
#endif

/* Kicks per TX flush at most (see l3x_xsk_tx_flush). */
#define TX_KICKS_MAX 16

struct l3x_xsk {
	/* fast path, owner thread */
	struct xsk_ring_cons rx;
	struct xsk_ring_prod fill;
	void *area;
	uint64_t *free; /* free stack of frame addresses */
	uint32_t nfree;
	uint64_t *held; /* a bit per frame: with the application */
	uint64_t bad_releases;
	uint32_t outstanding; /* posted to fill, not yet received */
	uint32_t app;	      /* received, not yet released */
	uint32_t tx_frames;   /* kept back from the fill ring */
	uint32_t tx_out;      /* on the TX ring or completion ring */
	uint32_t tx_pending;  /* reserved on the TX ring, not submitted */
	uint64_t tx_kicks;    /* sendto() calls that asked the kernel to send */
	uint32_t queue;
	bool busy_poll;
	uint64_t frames;
	uint64_t bytes;

	/* set up */
	struct xsk_ring_prod tx;
	struct xsk_ring_cons comp;
	struct xsk_umem *umem;
	struct xsk_socket *sock;
	size_t area_size;
	uint32_t frame_count;
	uint32_t frame_size;
};

static void set_busy_poll(struct l3x_xsk *x, const struct l3x_xsk_cfg *cfg)
{
	int fd = xsk_socket__fd(x->sock);
	int one = 1, usec = cfg->busy_poll_usec;
	int budget = (int)cfg->busy_poll_budget;

	if (usec < 0)
		return;
	/* Each is optional: older kernels or drivers without NAPI refuse. */
	if (setsockopt(fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &one,
		       sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &usec, sizeof(usec)) ||
	    setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget,
		       sizeof(budget))) {
		pr_info("queue %u: busy polling not available (%s)\n", x->queue,
			strerror(errno));
		return;
	}
	x->busy_poll = true;
}

/* Copy mode: let one sendto() send the whole TX ring rather than the
 * kernel's default of 32 descriptors, so that a flush is one kick. Linux
 * 6.17 on; an older kernel refuses the option and the flush kicks again
 * (l3x_xsk_tx_flush). Zero-copy ignores it. */
static void set_tx_budget(struct l3x_xsk *x, uint32_t ring_size)
{
	unsigned budget = ring_size;

	if (setsockopt(xsk_socket__fd(x->sock), SOL_XDP, XDP_MAX_TX_SKB_BUDGET,
		       &budget, sizeof(budget)))
		pr_debug("queue %u: TX budget %u not taken (%s): 32 a kick\n",
			 x->queue, budget, strerror(errno));
}

static int create_umem(struct l3x_xsk *x, const struct l3x_xsk_cfg *cfg)
{
	struct xsk_umem_config uc = {
		/* Every frame can wait on the fill ring: a burst the RX ring
		 * can hold then never finds the fill ring empty. */
		.fill_size = cfg->frame_count,
		.comp_size = cfg->ring_size,
		.frame_size = cfg->frame_size,
		.frame_headroom = 0,
		.flags = 0,
	};
	uint32_t i;

	x->frame_count = cfg->frame_count;
	x->frame_size = cfg->frame_size;
	x->area_size = (size_t)cfg->frame_count * cfg->frame_size;
	x->area = mmap(NULL, x->area_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (x->area == MAP_FAILED) {
		x->area = NULL;
		return -errno;
	}
	x->free = malloc(sizeof(*x->free) * cfg->frame_count);
	if (!x->free)
		return -ENOMEM;
	for (i = 0; i < cfg->frame_count; i++)
		x->free[i] =
			(uint64_t)(cfg->frame_count - 1 - i) * cfg->frame_size;
	x->nfree = cfg->frame_count;
	x->held = calloc((cfg->frame_count + 63) / 64, sizeof(*x->held));
	if (!x->held)
		return -ENOMEM;
	return xsk_umem__create(&x->umem, x->area, x->area_size, &x->fill,
				&x->comp, &uc);
}

/*
 * Put our socket in the queue's XSKMAP slot, only if the slot is empty: a
 * live socket there belongs to someone else (another process on the same
 * queue, or on the same queue of another interface sharing the maps), and
 * overwriting it would starve that owner with no error. The slot needs no
 * clearing from us: the kernel removes a socket from every map when the
 * socket is released (also when its process dies), and only where the
 * slot still holds that very socket, so we never empty a slot we do not
 * own. libxdp's own update (flags 0) is not used for that reason.
 */
static int claim_slot(struct l3x_xsk *x, const struct l3x_xsk_cfg *cfg)
{
	int fd = xsk_socket__fd(x->sock);
	__u32 q = cfg->queue;
	int err;

	err = bpf_map_update_elem(cfg->xsks_map_fd, &q, &fd, BPF_NOEXIST);
	if (!err)
		return 0;
	err = -errno;
	if (err == -EEXIST) {
		pr_info("queue %u of %s is taken: another AF_XDP socket holds its l3x_xsks slot (another l3x process on this queue?)\n",
			cfg->queue, cfg->ifname);
		return -EBUSY;
	}
	pr_warn("put socket of queue %u in l3x_xsks: %s\n", cfg->queue,
		strerror(-err));
	return err;
}

static int create_socket(struct l3x_xsk *x, const struct l3x_xsk_cfg *cfg)
{
	struct xsk_socket_config sc = {
		.rx_size = cfg->ring_size,
		.tx_size = cfg->ring_size,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_USE_NEED_WAKEUP,
	};
	int err;

	/*
	 * No flag: the kernel tries zero-copy and falls back to copy. Asked
	 * for zero-copy, the bind fails when the driver cannot (veth, and
	 * any driver without ndo_xsk_wakeup: EOPNOTSUPP) instead of copying
	 * quietly. The rings and the frame accounting are the same in both
	 * modes: zero-copy changes only who writes the frames.
	 */
	if (cfg->bind_mode == L3X_BIND_ZEROCOPY && cfg->skb_mode) {
		pr_info("queue %u of %s: zero-copy needs the program in native XDP mode, not skb\n",
			cfg->queue, cfg->ifname);
		return -EOPNOTSUPP;
	}
	if (cfg->bind_mode == L3X_BIND_COPY || cfg->skb_mode)
		sc.bind_flags |= XDP_COPY;
	else if (cfg->bind_mode == L3X_BIND_ZEROCOPY)
		sc.bind_flags |= XDP_ZEROCOPY;
	err = xsk_socket__create(&x->sock, cfg->ifname, cfg->queue, x->umem,
				 &x->rx, &x->tx, &sc);
	if (err) {
		x->sock = NULL;
		if (err == -EOPNOTSUPP && cfg->bind_mode == L3X_BIND_ZEROCOPY)
			pr_info("queue %u of %s: the driver has no zero-copy AF_XDP\n",
				cfg->queue, cfg->ifname);
		else if (err == -EBUSY)
			pr_info("queue %u of %s is taken: another AF_XDP socket is bound to it (another l3x process on this queue?)\n",
				cfg->queue, cfg->ifname);
		else
			pr_warn("AF_XDP socket on %s queue %u: %s\n",
				cfg->ifname, cfg->queue, strerror(-err));
		return err;
	}
	return claim_slot(x, cfg);
}

struct l3x_xsk *l3x_xsk_open(const struct l3x_xsk_cfg *cfg)
{
	struct l3x_xsk *x;
	int err;

	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	x->queue = cfg->queue;
	x->tx_frames = cfg->tx_frames;
	err = create_umem(x, cfg);
	if (err)
		goto err_close;
	err = create_socket(x, cfg);
	if (err)
		goto err_close;
	set_busy_poll(x, cfg);
	set_tx_budget(x, cfg->ring_size);
	l3x_xsk_refill(x);
	return x;

err_close:
	l3x_xsk_close(x);
	errno = -err;
	return NULL;
}

void l3x_xsk_close(struct l3x_xsk *x)
{
	if (!x)
		return;
	/* The kernel drops the socket from the XSKMAP when it closes, and
	 * only from slots that hold it (claim_slot()). */
	if (x->sock)
		xsk_socket__delete(x->sock);
	if (x->umem)
		xsk_umem__delete(x->umem);
	if (x->area)
		munmap(x->area, x->area_size);
	free(x->free);
	free(x->held);
	free(x);
}

int l3x_xsk_fd(const struct l3x_xsk *x)
{
	return xsk_socket__fd(x->sock);
}

uint32_t l3x_xsk_queue(const struct l3x_xsk *x)
{
	return x->queue;
}

/*
 * The frames of a socket are split: tx_frames for transmit, the rest for
 * receive. Transmit holds at most tx_frames at once (l3x_xsk_tx_alloc), so
 * the free list keeps back only what transmit may still take; the rest
 * goes to the fill ring. A busy transmit side (an echo, acknowledgments of
 * a bulk upload) then never takes the receive frames and runs the fill
 * ring dry, which with a small UMEM stalled every flow.
 */
static uint32_t tx_reserve(const struct l3x_xsk *x)
{
	return x->tx_out < x->tx_frames ? x->tx_frames - x->tx_out : 0;
}

void l3x_xsk_refill(struct l3x_xsk *x)
{
	uint32_t n, idx, i, keep = tx_reserve(x);

	if (x->nfree <= keep)
		return;
	n = xsk_prod_nb_free(&x->fill, x->nfree - keep);
	if (n > x->nfree - keep)
		n = x->nfree - keep;
	if (!n || xsk_ring_prod__reserve(&x->fill, n, &idx) != n)
		return;
	for (i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&x->fill, idx + i) =
			x->free[--x->nfree];
	xsk_ring_prod__submit(&x->fill, n);
	x->outstanding += n;
}

/* Frame @i changes hands between the application and us. */
static void held_flip(struct l3x_xsk *x, uint64_t i)
{
	x->held[i / 64] ^= 1ull << (i % 64);
}

static bool held(const struct l3x_xsk *x, uint64_t i)
{
	return x->held[i / 64] & (1ull << (i % 64));
}

/* Let the kernel run the queue: needed when it asks (need_wakeup) and,
 * with busy polling, to drive the NAPI loop from this thread. */
static void kick_rx(struct l3x_xsk *x)
{
	if (x->busy_poll || xsk_ring_prod__needs_wakeup(&x->fill))
		recvfrom(xsk_socket__fd(x->sock), NULL, 0, MSG_DONTWAIT, NULL,
			 NULL);
}

unsigned l3x_xsk_rx_burst(struct l3x_xsk *x, struct l3x_frame *f, unsigned n)
{
	struct timespec ts;
	uint32_t idx, got, i;
	uint64_t now;

	got = xsk_ring_cons__peek(&x->rx, n, &idx);
	if (!got) {
		kick_rx(x);
		got = xsk_ring_cons__peek(&x->rx, n, &idx);
		if (!got)
			return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	for (i = 0; i < got; i++) {
		const struct xdp_desc *d =
			xsk_ring_cons__rx_desc(&x->rx, idx + i);

		f[i].addr = d->addr;
		f[i].data = xsk_umem__get_data(x->area, d->addr);
		f[i].len = d->len;
		f[i].queue = x->queue;
		f[i].ts_ns = now;
		x->bytes += d->len;
		held_flip(x, d->addr / x->frame_size);
	}
	xsk_ring_cons__release(&x->rx, got);
	x->outstanding -= got;
	x->app += got;
	x->frames += got;
	return got;
}

/*
 * Every frame of @f is one the application holds, each once: checked
 * before anything is given back, so that a bad call (a double release, an
 * address that is no frame of ours) changes nothing. The bits of the frames
 * checked are cleared as we go, which catches a frame twice in @f, and set
 * again when the call is refused.
 */
static bool release_valid(struct l3x_xsk *x, const struct l3x_frame *f,
			  unsigned n)
{
	unsigned i, k;

	for (i = 0; i < n; i++) {
		uint64_t fi = f[i].addr / x->frame_size;

		if (f[i].addr >= x->area_size || !held(x, fi))
			break;
		held_flip(x, fi);
	}
	if (i == n)
		return true;
	for (k = 0; k < i; k++)
		held_flip(x, f[k].addr / x->frame_size);
	return false;
}

/* Frames @f, checked, back to the free stack (not yet the fill ring). */
static int release_frames(struct l3x_xsk *x, const struct l3x_frame *f,
			  unsigned n)
{
	unsigned i;

	if ((n && !f) || !release_valid(x, f, n)) {
		x->bad_releases++;
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		/* To the frame's start: aligned mode, power-of-two size. */
		x->free[x->nfree++] =
			f[i].addr & ~((uint64_t)x->frame_size - 1);
	}
	x->app -= n;
	return 0;
}

int l3x_xsk_release(struct l3x_xsk *x, const struct l3x_frame *f, unsigned n)
{
	int err = release_frames(x, f, n);

	if (!err)
		l3x_xsk_refill(x);
	return err;
}

int l3x_xsk_release_one(struct l3x_xsk *x, uint64_t addr)
{
	struct l3x_frame f = { .addr = addr };

	return release_frames(x, &f, 1);
}

uint32_t l3x_xsk_rx_frames(const struct l3x_xsk *x)
{
	return x->frame_count - x->tx_frames;
}

uint32_t l3x_xsk_rx_spare(const struct l3x_xsk *x)
{
	/* Acquire: pairs with the kernel's release of the fill consumer. */
	uint32_t cons = __atomic_load_n(x->fill.consumer, __ATOMIC_ACQUIRE);
	uint32_t in_fill = *x->fill.producer - cons;

	return in_fill +
	       (x->nfree > tx_reserve(x) ? x->nfree - tx_reserve(x) : 0);
}

int l3x_xsk_wait(struct l3x_xsk *x, int timeout_ms)
{
	struct pollfd pfd = { .fd = xsk_socket__fd(x->sock), .events = POLLIN };
	int r;

	if (xsk_cons_nb_avail(&x->rx, 1))
		return 1;
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return -errno;
	return r > 0;
}

bool l3x_xsk_idle(struct l3x_xsk *x)
{
	/* Acquire: pairs with the kernel's release of the TX consumer. In
	 * copy mode the kernel sends a batch per kick: a TX ring not yet
	 * drained needs the next flush's kick, which a sleep would hold. */
	return !x->tx_pending && !xsk_cons_nb_avail(&x->rx, 1) &&
	       *x->tx.producer ==
		       __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
}

void l3x_xsk_frames(const struct l3x_xsk *x, struct l3x_frame_stats *fs)
{
	/* Acquire: pairs with the kernel's release of the fill consumer after
	 * it took the frames. */
	uint32_t prod = *x->fill.producer;
	uint32_t cons = __atomic_load_n(x->fill.consumer, __ATOMIC_ACQUIRE);
	uint32_t in_fill = prod - cons;

	memset(fs, 0, sizeof(*fs));
	fs->total = x->frame_count;
	fs->free = x->nfree;
	fs->fill = in_fill;
	fs->kernel = x->outstanding - in_fill;
	fs->app = x->app;
	fs->completion = xsk_cons_nb_avail((struct xsk_ring_cons *)&x->comp,
					   x->frame_count);
	fs->tx = x->tx_out - fs->completion;
}

uint32_t l3x_xsk_frame_size(const struct l3x_xsk *x)
{
	return x->frame_size;
}

/* Take every sent frame back from the completion ring, in one batch. */
static void reap_completions(struct l3x_xsk *x)
{
	uint32_t idx, n, i;

	n = xsk_ring_cons__peek(&x->comp, x->frame_count, &idx);
	for (i = 0; i < n; i++)
		x->free[x->nfree++] =
			*xsk_ring_cons__comp_addr(&x->comp, idx + i);
	if (n) {
		xsk_ring_cons__release(&x->comp, n);
		x->tx_out -= n;
	}
}

/* A frame to send from, while transmit holds fewer than tx_frames (sent
 * frames come back through the completion ring). */
void *l3x_xsk_tx_alloc(struct l3x_xsk *x, uint64_t *addr)
{
	if (!x->nfree || x->tx_out >= x->tx_frames)
		reap_completions(x);
	if (!x->nfree || x->tx_out >= x->tx_frames)
		return NULL;
	*addr = x->free[--x->nfree];
	return xsk_umem__get_data(x->area, *addr);
}

bool l3x_xsk_tx_put(struct l3x_xsk *x, uint64_t addr, uint32_t len)
{
	struct xdp_desc *d;
	uint32_t idx;

	if (xsk_ring_prod__reserve(&x->tx, 1, &idx) != 1) {
		l3x_xsk_tx_flush(x);
		if (xsk_ring_prod__reserve(&x->tx, 1, &idx) != 1) {
			x->free[x->nfree++] = addr;
			return false;
		}
	}
	d = xsk_ring_prod__tx_desc(&x->tx, idx);
	d->addr = addr;
	d->len = len;
	d->options = 0;
	x->tx_pending++;
	x->tx_out++;
	return true;
}

/* Descriptors on the TX ring the kernel has not taken yet. Acquire: pairs
 * with the kernel's release of the consumer once it has read them. */
static uint32_t tx_unsent(const struct l3x_xsk *x)
{
	return *x->tx.producer -
	       __atomic_load_n(x->tx.consumer, __ATOMIC_ACQUIRE);
}

/*
 * Publish what was queued, then kick while the kernel asks (need_wakeup)
 * and leaves descriptors behind. In copy mode the kernel sends only from
 * sendto(), at most a budget per call (32 descriptors by default, Linux's
 * TX_BATCH_SIZE) and returns EAGAIN with more left: kick again while a
 * kick makes progress, at most TX_KICKS_MAX times, so one flush sends the
 * burst instead of leaving it for the next turn. A kick that moves
 * nothing (the device is busy; zero-copy, where the driver sends later)
 * ends the loop.
 */
void l3x_xsk_tx_flush(struct l3x_xsk *x)
{
	uint32_t left, before;
	unsigned k;

	if (x->tx_pending) {
		xsk_ring_prod__submit(&x->tx, x->tx_pending);
		x->tx_pending = 0;
	}
	left = tx_unsent(x);
	for (k = 0;
	     k < TX_KICKS_MAX && left && xsk_ring_prod__needs_wakeup(&x->tx);
	     k++) {
		before = left;
		x->tx_kicks++;
		if (sendto(xsk_socket__fd(x->sock), NULL, 0, MSG_DONTWAIT, NULL,
			   0) < 0 &&
		    errno != EAGAIN)
			break;
		left = tx_unsent(x);
		if (left == before)
			break;
	}
	reap_completions(x);
}

uint64_t l3x_xsk_tx_kicks(const struct l3x_xsk *x)
{
	return x->tx_kicks;
}

int l3x_xsk_stats(const struct l3x_xsk *x, struct l3x_capture_handle_stats *st)
{
	struct xdp_statistics xs = {};
	socklen_t len = sizeof(xs);

	st->frames = x->frames;
	st->bytes = x->bytes;
	st->release_invalid = x->bad_releases;
	if (getsockopt(xsk_socket__fd(x->sock), SOL_XDP, XDP_STATISTICS, &xs,
		       &len))
		return -errno;
	st->rx_dropped = xs.rx_dropped;
	st->rx_invalid_descs = xs.rx_invalid_descs;
	st->rx_ring_full = xs.rx_ring_full;
	st->rx_fill_ring_empty = xs.rx_fill_ring_empty_descs;
	return 0;
}
