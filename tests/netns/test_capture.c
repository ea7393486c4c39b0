/*
 * test_capture.c - the capture API on a real AF_XDP socket on a real veth
 * pair, in a network namespace of the test's own (criterion forks each
 * test, so the namespace and its veth vanish with the test process).
 * Frames are injected with AF_PACKET on the peer; the kernel's veth carries
 * them to the XDP program and the socket.
 *
 * Checks frame accounting (every UMEM frame in exactly one place) after
 * each step, UMEM exhaustion with a reader that holds frames, and API
 * errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <xdp/libxdp.h>

#include "csum.h"
#include "l3x/l3x.h"
#include "helpers.h"

#define NOPIN "/nonexistent-l3x-test/pins"

static struct l3x_capture *open_cap(enum l3x_xdp_mode mode, uint32_t frames,
				    uint32_t ring)
{
	L3X_OPTS(l3x_capture_opts, o, .pin_dir = NOPIN, .xdp_mode = mode,
		 .frame_count = frames, .ring_size = ring);

	return capture_open_t1(&o);
}

/* Give back everything that is queued; stop after 50 ms of quiet. */
static void drain(struct l3x_capture_handle *h)
{
	struct l3x_frame f[64];
	unsigned n;

	for (;;) {
		n = l3x_capture_handle__recv_burst(h, f, 64);
		if (n) {
			l3x_capture_handle__release(h, f, n);
			continue;
		}
		if (l3x_capture_handle__wait(h, 50) <= 0)
			return;
	}
}

static bool xdp_attached(void)
{
	struct xdp_multiprog *mp =
		xdp_multiprog__get_from_ifindex(if_nametoindex("t1"));
	bool on =
		mp && !libxdp_get_error(mp) &&
		(xdp_multiprog__main_prog(mp) || xdp_multiprog__is_legacy(mp));

	if (mp && !libxdp_get_error(mp))
		xdp_multiprog__close(mp);
	return on;
}

static void accounting_run(enum l3x_xdp_mode mode)
{
	struct l3x_frame f[128];
	struct l3x_capture_handle_stats hs;
	struct l3x_steer_stats ss;
	struct l3x_capture *cap;
	struct l3x_capture_handle *h;
	uint32_t i, seq;
	unsigned got;

	veth_up(1);
	cap = open_cap(mode, 0, 0);
	h = l3x_capture_handle__open(cap, 0);
	cr_assert_not_null(h, "handle: %s", strerror(errno));
	expect_frames(h, 0);
	for (i = 0; i < 100; i++)
		veth_inject_udp(9000, i);
	for (i = 0; i < 7; i++)
		veth_inject_udp(9001, i);
	got = capture_recv_n(h, f, 100);
	cr_assert_eq(got, 100);
	expect_frames(h, 100);
	for (i = 0; i < got; i++) {
		cr_assert_eq(f[i].len, 60);
		cr_assert_eq(f[i].queue, 0);
		memcpy(&seq, f[i].data + 42, 4);
		cr_assert_eq(seq, i, "frame %u carries seq %u", i, seq);
	}
	l3x_capture_handle__release(h, f, got);
	expect_frames(h, 0);
	cr_assert_eq(l3x_capture_handle__recv_burst(h, f, 128), 0,
		     "a datagram to port 9001 was captured");
	cr_assert_eq(l3x_capture_handle__stats(h, &hs), 0);
	cr_assert_eq(hs.frames, 100);
	cr_assert_eq(l3x_capture__steer_stats(cap, &ss), 0);
	cr_assert_eq(ss.redirected, 100);
	cr_assert_geq(ss.passed, 7);
	cr_assert_eq(ss.malformed, 0);
	l3x_capture_handle__close(h);
	cr_assert_eq(l3x_capture__close(cap), 0);
	cr_assert(!xdp_attached(), "program left attached after close");
}

Test(capture, frames_accounted_native_xdp)
{
	accounting_run(L3X_XDP_NATIVE);
}

Test(capture, frames_accounted_skb_xdp)
{
	accounting_run(L3X_XDP_SKB);
}

/* A reader that holds every frame: the kernel drops (and counts) what it
 * cannot place, nothing already received is lost, and reception resumes
 * once frames are given back. */
Test(capture, umem_exhaustion_counts_drops_and_recovers)
{
	struct l3x_frame f[256];
	struct l3x_capture_handle_stats hs;
	struct l3x_capture *cap;
	struct l3x_capture_handle *h;
	unsigned held, more, i;

	veth_up(1);
	cap = open_cap(L3X_XDP_NATIVE, 64, 32);
	h = l3x_capture_handle__open(cap, 0);
	cr_assert_not_null(h);
	for (i = 0; i < 200; i++)
		veth_inject_udp(9000, i);
	held = capture_recv_n(h, f, 64);
	cr_assert_leq(held, 64);
	cr_assert_geq(held, 32, "only %u frames arrived", held);
	/* Nothing more can come while we hold them. */
	for (i = 0; i < 50; i++)
		veth_inject_udp(9000, 1000 + i);
	more = capture_recv_n(h, f + held, 64 - held);
	expect_frames(h, held + more);
	cr_assert_eq(l3x_capture_handle__stats(h, &hs), 0);
	cr_assert_gt(hs.rx_dropped + hs.rx_ring_full + hs.rx_fill_ring_empty, 0,
		     "drops were not counted");
	l3x_capture_handle__release(h, f, held + more);
	expect_frames(h, 0);
	/* drain what was queued, then fresh frames arrive again */
	drain(h);
	capture_inject_recv(h, f, 10, 5000);
	l3x_capture_handle__release(h, f, 10);
	expect_frames(h, 0);
	l3x_capture_handle__close(h);
	l3x_capture__close(cap);
}

Test(capture, api_errors)
{
	struct l3x_capture *cap;
	struct l3x_capture_handle *h;
	struct {
		struct l3x_capture_opts o;
		uint64_t future;
	} big = {};

	veth_up(2);
	l3x_set_print(NULL);
	L3X_OPTS(l3x_capture_opts, nosuch, .ifname = "nosuch0");
	cr_assert_null(l3x_capture__open(&nosuch));
	cr_assert_eq(errno, ENODEV);
	/* the interface is named in the opts, or nowhere */
	cr_assert_null(l3x_capture__open(NULL));
	cr_assert_eq(errno, EINVAL);
	L3X_OPTS(l3x_capture_opts, noif, .pin_dir = NOPIN);
	cr_assert_null(l3x_capture__open(&noif));
	cr_assert_eq(errno, EINVAL);
	L3X_OPTS(l3x_capture_opts, bad, .ifname = "t1", .frame_size = 1000);
	cr_assert_null(l3x_capture__open(&bad));
	cr_assert_eq(errno, EINVAL);
	/* a caller from a newer l3x asking for something we lack */
	big.o.sz = sizeof(big);
	big.o.ifname = "t1";
	big.future = 1;
	cr_assert_null(l3x_capture__open(&big.o));
	cr_assert_eq(errno, EINVAL);
	/* ...but zero trailing bytes are fine */
	big.future = 0;
	big.o.pin_dir = NOPIN;
	cap = l3x_capture__open(&big.o);
	cr_assert_not_null(cap, "%s", strerror(errno));
	cr_assert_eq(l3x_capture__queue_count(cap), 2);
	cr_assert_null(l3x_capture_handle__open(cap, 2));
	cr_assert_eq(errno, ERANGE);
	h = l3x_capture_handle__open(cap, 1);
	cr_assert_not_null(h);
	cr_assert_null(l3x_capture_handle__open(cap, 1));
	cr_assert_eq(errno, EBUSY);
	cr_assert_eq(l3x_capture__close(cap), -EBUSY);
	cr_assert_eq(l3x_capture_handle__close(h), 0);
	cr_assert_eq(l3x_capture_handle__close(NULL), 0);
	cr_assert_eq(l3x_capture__close(cap), 0);
	cr_assert_eq(l3x_capture__close(NULL), 0);
	cr_assert(!xdp_attached());
}

/* veth has no zero-copy AF_XDP: a handle asked for it fails with
 * EOPNOTSUPP (native XDP: the kernel's bind; skb mode: refused before it),
 * leaving the queue free; copy then works on the same queue and counts its
 * frames as auto does (one accounting, whatever the bind). */
static void bind_run(enum l3x_xdp_mode mode)
{
	struct l3x_frame f[16];
	struct l3x_capture *cap;
	struct l3x_capture_handle *h;

	veth_up(1);
	L3X_OPTS(l3x_capture_opts, zc, .pin_dir = NOPIN, .xdp_mode = mode,
		 .bind_mode = L3X_BIND_ZEROCOPY);
	cap = capture_open_t1(&zc);
	cr_assert_null(l3x_capture_handle__open(cap, 0),
		       "zero-copy bind on veth succeeded");
	cr_assert_eq(errno, EOPNOTSUPP, "errno %d (%s)", errno,
		     strerror(errno));
	cr_assert_eq(l3x_capture__close(cap), 0,
		     "a failed handle still counted");
	cr_assert(!xdp_attached());

	L3X_OPTS(l3x_capture_opts, copy, .pin_dir = NOPIN, .xdp_mode = mode,
		 .bind_mode = L3X_BIND_COPY);
	cap = capture_open_t1(&copy);
	h = l3x_capture_handle__open(cap, 0);
	cr_assert_not_null(h, "copy bind: %s", strerror(errno));
	capture_inject_recv(h, f, 10, 0);
	l3x_capture_handle__release(h, f, 10);
	expect_frames(h, 0);
	l3x_capture_handle__close(h);
	cr_assert_eq(l3x_capture__close(cap), 0);
}

Test(capture, bind_zerocopy_refused_on_veth_native)
{
	bind_run(L3X_XDP_NATIVE);
}

Test(capture, bind_zerocopy_refused_on_veth_skb)
{
	bind_run(L3X_XDP_SKB);
}

Test(capture, bind_zerocopy_on_a_nic)
{
	cr_skip_test(
		"zero-copy AF_XDP needs a NIC whose driver offers it; veth has none (tests/netns/capture.sh runs it with L3X_ZC_IFACE=IF)");
}

/* ------------------------------------------------------------ pin dirs */

#define DEF_PINS "/sys/fs/bpf/l3x/t1"

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Two captures on t1 with the default pin dir, in a bpffs of our own on
 * /sys/fs/bpf: the first loads and pins, the second reuses. */
static void open_two(struct l3x_capture **a, struct l3x_capture **b)
{
	L3X_OPTS(l3x_capture_opts, o, .frame_count = 64, .ring_size = 32);

	*a = capture_open_t1(&o);
	cr_assert(exists(DEF_PINS "/l3x_stats"), "no pins in " DEF_PINS);
	*b = capture_open_t1(&o);
}

/* The last user removes the pins and the directories l3x made for them;
 * one that leaves before another keeps them. */
Test(capture, default_pin_dir_goes_with_its_last_user, .timeout = 30)
{
	struct l3x_capture *a, *b;

	veth_up(1);
	bpffs_private("/sys/fs/bpf");
	open_two(&a, &b);
	cr_assert_eq(l3x_capture__close(a), 0);
	cr_assert(exists(DEF_PINS "/l3x_stats"),
		  "the first user to leave removed pins the second uses");
	cr_assert_eq(l3x_capture__close(b), 0);
	cr_assert(!exists(DEF_PINS), DEF_PINS " left behind");
	cr_assert(!exists("/sys/fs/bpf/l3x"), "/sys/fs/bpf/l3x left behind");
}

/* Directories that were there before stay (empty: the pins go); a pin
 * dir of the caller's that l3x made goes, its parent stays. */
Test(capture, pin_dirs_l3x_did_not_make_stay, .timeout = 30)
{
	L3X_OPTS(l3x_capture_opts, o, .frame_count = 64, .ring_size = 32,
		 .pin_dir = "/sys/fs/bpf/mine/a");
	struct l3x_capture *a, *b;

	veth_up(1);
	bpffs_private("/sys/fs/bpf");
	cr_assert_eq(mkdir("/sys/fs/bpf/l3x", 0700), 0);
	open_two(&a, &b);
	cr_assert_eq(l3x_capture__close(b), 0);
	cr_assert_eq(l3x_capture__close(a), 0);
	cr_assert(!exists(DEF_PINS), DEF_PINS " left behind");
	cr_assert(exists("/sys/fs/bpf/l3x"), "removed a directory l3x found");

	cr_assert_eq(mkdir(DEF_PINS, 0700), 0);
	open_two(&a, &b);
	cr_assert_eq(l3x_capture__close(a), 0);
	cr_assert_eq(l3x_capture__close(b), 0);
	cr_assert(exists(DEF_PINS), "removed a directory l3x found");
	cr_assert(!exists(DEF_PINS "/l3x_stats"), "pins left behind");

	cr_assert_eq(mkdir("/sys/fs/bpf/mine", 0700), 0);
	a = capture_open_t1(&o);
	cr_assert(exists("/sys/fs/bpf/mine/a/l3x_stats"));
	cr_assert_eq(l3x_capture__close(a), 0);
	cr_assert(!exists("/sys/fs/bpf/mine/a"), "mine/a left behind");
	cr_assert(exists("/sys/fs/bpf/mine"), "removed a directory l3x found");
}
