/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * steer.c - the steering program on one interface.
 *
 * Two ways in:
 *   reuse  an l3x program is already attached (xdp-loader load -p DIR, or
 *          another l3x process) and its maps are pinned in the pin dir: we
 *          open the pins, check that they are that program's maps, and
 *          leave the program attached when we go.
 *   own    otherwise we load the object embedded in the library
 *          (lib/bpf_obj.S), pin its maps by name in the pin dir when a bpffs
 *          is there, attach it (native XDP, skb mode as fallback) and detach
 *          it and remove the pins on close, and the directories it made
 *          for them (the lock file keeps how many, for whoever is last).
 * The maps carry everything else: rules (lib/rules.c), the XSKMAP (filled by
 * lib/xsk.c), counters.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "l3x_internal.h"

#define L3X_PROG_NAME "l3x_xdp"

static const char *const map_names[] = {
	"l3x_rules", "l3x_lpm4",  "l3x_lpm6",	"l3x_xsks",
	"l3x_stats", "l3x_frags", "l3x_owners",
};
#define N_MAPS (sizeof(map_names) / sizeof(map_names[0]))

struct l3x_steer {
	int ifindex;
	bool reused; /* attached by someone else: leave it */
	bool skb_mode;
	bool pinned;  /* we pinned the maps: unpin on close */
	bool shared;  /* attached by an l3x library: the last
		       * user detaches and unpins (lock file) */
	bool locked;  /* holds the lock files below (see sharing) */
	int lock_fd;  /* users: flock shared while open */
	int mutex_fd; /* flock exclusive around open and close */
	int dir_fd;   /* the lock directory */
	char pin_dir[PATH_MAX];
	unsigned dirs_made;	  /* levels at pin_dir's end we made */
	struct xdp_program *prog; /* own only */
	struct bpf_object *obj;	  /* own only */
	union {
		struct l3x_maps maps;
		int fds[N_MAPS];
	};
};

_Static_assert(sizeof(struct l3x_maps) == N_MAPS * sizeof(int),
	       "map_names and struct l3x_maps must list the same maps");

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

/* One mkdir: 1 made, 0 there already, or -errno. */
static int mkdir_one(const char *path)
{
	if (!mkdir(path, 0700))
		return 1;
	return errno == EEXIST ? 0 : -errno;
}

/* @path and its missing parents; *@made: how many levels at its end were
 * made here (those are ours to remove). */
static int mkdir_p_once(const char *path, unsigned *made)
{
	char buf[PATH_MAX];
	char *p = buf;
	int r;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	*made = 0;
	do {
		p = strchr(p + 1, '/');
		if (p)
			*p = '\0';
		r = mkdir_one(buf);
		if (r < 0)
			return r;
		*made += r;
		if (p)
			*p = '/';
	} while (p);
	return 0;
}

/* A last user of another interface may remove a parent we found there
 * (remove_made_dirs()) before we made the next level: again then. */
static int mkdir_p(const char *path, unsigned *made)
{
	int tries = 0, err;

	do
		err = mkdir_p_once(path, made);
	while (err == -ENOENT && ++tries < 3);
	return err;
}

/* Remove the @made last levels of @dir, deepest first, each only when
 * empty: a level holding anything (another interface's pins) stays, and
 * so do those above it. */
static void remove_made_dirs(const char *dir, unsigned made)
{
	char buf[PATH_MAX];
	char *slash;

	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return;
	while ((slash = strrchr(buf, '/')) && slash != buf && !slash[1])
		*slash = '\0';
	for (; made; made--) {
		if (rmdir(buf))
			return;
		slash = strrchr(buf, '/');
		if (!slash || slash == buf)
			return;
		*slash = '\0';
	}
}

/*
 * Make the pin dir usable: on a bpffs, created if missing. For the default
 * dir we mount a bpffs on /sys/fs/bpf when none is there, as libxdp does.
 * Returns true if maps can be pinned there; *@made: the levels of @dir
 * made here.
 */
static bool prepare_pin_dir(const char *dir, bool is_default, unsigned *made)
{
	char parent[PATH_MAX];
	char *slash;
	int err;

	snprintf(parent, sizeof(parent), "%s", dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (is_default && !is_bpffs("/sys/fs/bpf")) {
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
			pr_debug("mount bpffs on /sys/fs/bpf: %s\n",
				 strerror(errno));
	}
	if (!is_bpffs(parent) && !is_bpffs(dir) &&
	    !(is_default && is_bpffs("/sys/fs/bpf"))) {
		pr_warn("pin dir %s is not on a bpffs: maps not pinned\n", dir);
		return false;
	}
	err = mkdir_p(dir, made);
	if (err) {
		pr_warn("cannot create pin dir %s: %s\n", dir, strerror(-err));
		return false;
	}
	return true;
}

static void close_fds(struct l3x_steer *s)
{
	l3x_maps_close(&s->maps);
}

static int pin_path(char *buf, size_t sz, const char *dir, const char *name)
{
	if (snprintf(buf, sz, "%s/%s", dir, name) >= (int)sz)
		return -ENAMETOOLONG;
	return 0;
}

/* ------------------------------------------------------------ reuse */

/* The attached l3x program on @ifindex, or NULL. Sets *@skb, and
 * *@denied when the programs on @ifindex could not be read for lack of
 * privilege (@denied may be NULL). */
static struct xdp_multiprog *find_attached(int ifindex, int *prog_fd, bool *skb,
					   bool *denied)
{
	struct xdp_multiprog *mp;
	struct xdp_program *p = NULL;
	int err;

	mp = xdp_multiprog__get_from_ifindex(ifindex);
	err = mp ? (int)libxdp_get_error(mp) : -ENOENT;
	if (denied)
		*denied = err == -EPERM || err == -EACCES;
	if (err)
		return NULL;
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		if (p && strcmp(xdp_program__name(p), L3X_PROG_NAME))
			p = NULL;
	} else {
		while ((p = xdp_multiprog__next_prog(p, mp)))
			if (!strcmp(xdp_program__name(p), L3X_PROG_NAME))
				break;
	}
	if (!p) {
		xdp_multiprog__close(mp);
		return NULL;
	}
	*prog_fd = xdp_program__fd(p);
	*skb = xdp_multiprog__attach_mode(mp) == XDP_MODE_SKB;
	return mp;
}

/* Is map @fd one of the maps program @prog_fd uses? */
static bool prog_uses_map(int prog_fd, int fd)
{
	struct bpf_prog_info pinfo = {};
	struct bpf_map_info minfo = {};
	__u32 plen = sizeof(pinfo), mlen = sizeof(minfo);
	__u32 ids[64];
	__u32 i;

	if (bpf_obj_get_info_by_fd(fd, &minfo, &mlen))
		return false;
	pinfo.nr_map_ids = 64;
	pinfo.map_ids = (__u64)(unsigned long)ids;
	if (bpf_obj_get_info_by_fd(prog_fd, &pinfo, &plen))
		return false;
	for (i = 0; i < pinfo.nr_map_ids && i < 64; i++)
		if (ids[i] == minfo.id)
			return true;
	return false;
}

/* Open the pinned maps of the attached program. -ENOENT: not all pinned;
 * -ESTALE: pinned maps are not the attached program's. */
static int open_pinned(struct l3x_steer *s, int prog_fd)
{
	size_t i;
	int err;

	err = l3x_steer_open_pinned(s->pin_dir, &s->maps);
	if (err)
		return err;
	/* l3x_rules (index 0) and l3x_owners (last) are not used by the
	 * program, only by us. */
	for (i = 1; i < N_MAPS - 1; i++)
		if (!prog_uses_map(prog_fd, s->fds[i]))
			return -ESTALE;
	return 0;
}

/*
 * Without privilege (no CAP_SYS_ADMIN to open a program by id), the
 * attached program cannot be read: trust the
 * maps pinned in the pin dir when some XDP program is attached, as
 * xdp-loader's users do. The operator who loaded it chose the pin dir and
 * who may open it (README: Operating l3x).
 */
static int try_pinned(struct l3x_steer *s)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int err;

	if (bpf_xdp_query(s->ifindex, 0, &q) || !q.prog_id)
		return -ENOENT;
	err = l3x_steer_open_pinned(s->pin_dir, &s->maps);
	if (err) {
		close_fds(s);
		return err;
	}
	s->skb_mode = q.attach_mode == XDP_ATTACHED_SKB;
	s->reused = true;
	pr_info("using the XDP program attached to ifindex %d with the maps pinned in %s (unchecked: no privilege to read the program)\n",
		s->ifindex, s->pin_dir);
	return 0;
}

static int try_reuse(struct l3x_steer *s)
{
	struct xdp_multiprog *mp;
	int prog_fd, err;
	bool denied;

	mp = find_attached(s->ifindex, &prog_fd, &s->skb_mode, &denied);
	if (!mp)
		return denied ? try_pinned(s) : -ENOENT;
	err = open_pinned(s, prog_fd);
	xdp_multiprog__close(mp);
	if (err) {
		close_fds(s);
		if (err == -ESTALE)
			pr_warn("maps pinned in %s are not those of the l3x program attached to ifindex %d\n",
				s->pin_dir, s->ifindex);
		else
			pr_warn("an l3x program is attached to ifindex %d but its maps are not pinned in %s: %s\n",
				s->ifindex, s->pin_dir, strerror(-err));
		return err == -ENOENT ? -ENOENT : err;
	}
	s->reused = true;
	pr_info("using the l3x program already attached to ifindex %d (%s mode), maps in %s\n",
		s->ifindex, s->skb_mode ? "skb" : "native", s->pin_dir);
	return 0;
}

/* ------------------------------------------------------------ own */

static void unpin_maps(const char *dir)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < N_MAPS; i++)
		if (!pin_path(path, sizeof(path), dir, map_names[i]))
			unlink(path);
}

static int open_object(struct l3x_steer *s, bool pin)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "l3x",
		    .pin_root_path = pin ? s->pin_dir : NULL);
	struct bpf_map *map;
	int err;

	s->obj = bpf_object__open_mem(l3x_bpf_obj_start,
				      l3x_bpf_obj_end - l3x_bpf_obj_start, &oo);
	if (!s->obj)
		return -errno;
	if (!pin)
		bpf_object__for_each_map(map, s->obj)
			bpf_map__set_pin_path(map, NULL);
	s->prog = xdp_program__from_bpf_obj(s->obj, "xdp");
	err = libxdp_get_error(s->prog);
	if (err) {
		s->prog = NULL;
		return err;
	}
	return 0;
}

static int attach(struct l3x_steer *s, enum l3x_xdp_mode mode)
{
	int err = -EINVAL;

	if (mode != L3X_XDP_SKB) {
		err = xdp_program__attach(s->prog, s->ifindex, XDP_MODE_NATIVE,
					  0);
		if (!err || mode == L3X_XDP_NATIVE)
			return err;
		pr_info("native XDP refused on ifindex %d (%s), trying skb mode\n",
			s->ifindex, strerror(-err));
	}
	err = xdp_program__attach(s->prog, s->ifindex, XDP_MODE_SKB, 0);
	if (!err)
		s->skb_mode = true;
	return err;
}

static int own_maps(struct l3x_steer *s)
{
	size_t i;

	for (i = 0; i < N_MAPS; i++) {
		s->fds[i] =
			bpf_object__find_map_fd_by_name(s->obj, map_names[i]);
		if (s->fds[i] < 0)
			return -ENOENT;
		/* Ours to close, independent of the object. */
		s->fds[i] = dup(s->fds[i]);
		if (s->fds[i] < 0)
			return -errno;
	}
	return 0;
}

static int load_own(struct l3x_steer *s, enum l3x_xdp_mode mode, bool pin)
{
	int err;

	/* Maps left pinned by an earlier run would be reused by libbpf, stale
	 * rules and all: start clean. */
	if (pin)
		unpin_maps(s->pin_dir);
	err = open_object(s, pin);
	if (err)
		return err;
	err = attach(s, mode);
	if (err) {
		pr_warn("cannot attach XDP program to ifindex %d: %s\n",
			s->ifindex, strerror(-err));
		return err;
	}
	s->pinned = pin;
	return own_maps(s);
}

/* ------------------------------------------------------------ prints */

/*
 * libbpf and libxdp print to stderr by default (libxdp, for one, says so
 * when its dispatcher falls back to a direct attach). The library never
 * prints on its own, so while we call them their messages go to ours, one
 * level down: our own warning names what failed. Their print hooks are
 * process-wide: we restore the caller's afterwards.
 */
static void forward(enum l3x_print_level level, const char *fmt, va_list ap)
{
	char buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	l3x_pr(level, "%s", buf);
}

static int from_libbpf(enum libbpf_print_level level, const char *fmt,
		       va_list ap)
{
	forward(level == LIBBPF_WARN ? L3X_INFO : L3X_DEBUG, fmt, ap);
	return 0;
}

static int from_libxdp(enum libxdp_print_level level, const char *fmt,
		       va_list ap)
{
	forward(level == LIBXDP_WARN ? L3X_INFO : L3X_DEBUG, fmt, ap);
	return 0;
}

struct saved_prints {
	libbpf_print_fn_t bpf;
	libxdp_print_fn_t xdp;
};

static struct saved_prints prints_ours(void)
{
	struct saved_prints p = {
		.bpf = libbpf_set_print(from_libbpf),
		.xdp = libxdp_set_print(from_libxdp),
	};

	return p;
}

static void prints_restore(struct saved_prints p)
{
	libbpf_set_print(p.bpf);
	libxdp_set_print(p.xdp);
}

/* ------------------------------------------------------------ sharing */

/*
 * Several processes may serve one interface (one engine per queue, say):
 * the first attaches, the others reuse, and the program must stay until
 * the last one closes. Two lock files named after the network namespace,
 * interface and pin directory: each user holds a shared flock on the users
 * file while open; opening and closing happen under an exclusive flock on
 * the mutex file, and a user closing that can turn its shared lock on the
 * users file exclusive without waiting is the last. The users file says
 * whether an l3x library attached the program ("l3x"): only then does the
 * last user detach it. A program loaded by xdp-loader stays, as before.
 *
 * The files live in a directory only we can write (/run/l3x, 0700, ours,
 * or $L3X_LOCK_DIR for tests): in a world-writable one a local user could
 * plant a symlink for root to write through, or hold a lock for ever. They
 * are opened with O_NOFOLLOW, checked to be plain files of ours, and never
 * truncated. Every wait is bounded ($L3X_LOCK_TIMEOUT_MS, default 10 s)
 * and ends in -ETIMEDOUT. A process that cannot take the locks (no access
 * to the directory: an unprivileged one, say) only reuses an attached
 * program and never detaches it: not knowing who else uses it, it cannot
 * be the last.
 */
#define LOCK_DIR	"/run/l3x"
#define LOCK_TIMEOUT_MS 10000
#define LOCK_POLL_MS	10

static const char *lock_dir(void)
{
	const char *d = secure_getenv("L3X_LOCK_DIR");

	return d && *d ? d : LOCK_DIR;
}

static long lock_timeout_ms(void)
{
	const char *t = secure_getenv("L3X_LOCK_TIMEOUT_MS");
	char *end;
	long v;

	if (!t || !*t)
		return LOCK_TIMEOUT_MS;
	v = strtol(t, &end, 10);
	return *end || v < 0 || v > 3600000 ? LOCK_TIMEOUT_MS : v;
}

/* Ours and no one else's: a directory or plain file, owned by our
 * effective user, that nobody else can write (for a file: one link). */
static int check_owned(int fd, const char *what, bool dir)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (dir ? !S_ISDIR(st.st_mode)
		: !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		pr_info("lock %s: not a %s of its own\n", what,
			dir ? "directory" : "plain file");
		return -EPERM;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (dir ? 077 : 022))) {
		pr_info("lock %s: owned by uid %u mode %03o, want uid %u and no access for others\n",
			what, (unsigned)st.st_uid,
			(unsigned)(st.st_mode & 0777), (unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}

static int open_lock_dir(void)
{
	const char *dir = lock_dir();
	int fd, err;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = check_owned(fd, dir, true);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

static void lock_name(const struct l3x_steer *s, const char *kind, char *name,
		      size_t sz)
{
	uint32_t h = 2166136261u;
	struct stat ns = { 0 };
	const char *c;

	/* One program per interface of a network namespace: the same pin
	 * directory in another namespace is another program. */
	stat("/proc/self/ns/net", &ns);
	for (c = s->pin_dir; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	snprintf(name, sz, "%llu-%d-%08x.%s", (unsigned long long)ns.st_ino,
		 s->ifindex, h, kind);
}

static int lock_file(const struct l3x_steer *s, const char *kind)
{
	char name[96];
	int fd, err;

	lock_name(s, kind, name, sizeof(name));
	fd = openat(s->dir_fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		err = -errno;
		pr_info("lock %s/%s: %s\n", lock_dir(), name, strerror(-err));
		return err;
	}
	err = check_owned(fd, name, false);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* flock(@fd, @op) waiting at most the lock timeout. */
static int flock_timed(int fd, int op, const char *kind)
{
	struct timespec poll = { 0, LOCK_POLL_MS * 1000000L };
	long waited, limit = lock_timeout_ms();

	for (waited = 0;; waited += LOCK_POLL_MS) {
		if (!flock(fd, op | LOCK_NB))
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (waited >= limit)
			break;
		nanosleep(&poll, NULL);
	}
	pr_info("lock %s in %s: still held by another process after %ld ms (an l3x process stuck in open or close?)\n",
		kind, lock_dir(), limit);
	return -ETIMEDOUT;
}

/* The last user removes both files (under the mutex), so an opener that
 * locked a mutex file since removed starts again on the new one. */
static bool lock_current(const struct l3x_steer *s, int fd)
{
	struct stat a, b;
	char name[96];

	lock_name(s, "mutex", name, sizeof(name));
	return !fstat(fd, &a) &&
	       !fstatat(s->dir_fd, name, &b, AT_SYMLINK_NOFOLLOW) &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static void lock_release(struct l3x_steer *s)
{
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	if (s->mutex_fd >= 0)
		close(s->mutex_fd); /* and its lock with it */
	if (s->dir_fd >= 0)
		close(s->dir_fd);
	s->lock_fd = s->mutex_fd = s->dir_fd = -1;
	s->locked = false;
}

/* The mutex held exclusive, the users file shared. */
static int lock_take(struct l3x_steer *s)
{
	int tries, err;

	for (tries = 0; tries < 100; tries++) {
		s->mutex_fd = lock_file(s, "mutex");
		if (s->mutex_fd < 0)
			return s->mutex_fd;
		err = flock_timed(s->mutex_fd, LOCK_EX, "mutex");
		if (err)
			return err;
		if (lock_current(s, s->mutex_fd))
			break;
		close(s->mutex_fd);
		s->mutex_fd = -1;
	}
	if (s->mutex_fd < 0)
		return -EAGAIN;
	s->lock_fd = lock_file(s, "users");
	if (s->lock_fd < 0)
		return s->lock_fd;
	return flock_timed(s->lock_fd, LOCK_SH, "users");
}

static int lock_open(struct l3x_steer *s)
{
	int err;

	s->dir_fd = open_lock_dir();
	if (s->dir_fd < 0)
		return s->dir_fd;
	err = lock_take(s);
	if (err) {
		lock_release(s);
		return err;
	}
	s->locked = true;
	return 0;
}

/* The last user, under the mutex: the lock files go. */
static void lock_remove(const struct l3x_steer *s)
{
	char name[96];

	lock_name(s, "users", name, sizeof(name));
	unlinkat(s->dir_fd, name, 0);
	lock_name(s, "mutex", name, sizeof(name));
	unlinkat(s->dir_fd, name, 0);
}

static void lock_done(struct l3x_steer *s)
{
	if (s->mutex_fd >= 0)
		flock(s->mutex_fd, LOCK_UN);
}

static bool lock_marked(struct l3x_steer *s)
{
	char buf[4] = "";

	return s->locked && pread(s->lock_fd, buf, 3, 0) == 3 &&
	       !memcmp(buf, "l3x", 3);
}

/* Overwritten in place, never truncated: "l3x" and the levels of the pin
 * dir an l3x library made for the program's pins (one digit: the last
 * user removes them), or "----". */
static void lock_mark(struct l3x_steer *s, bool on)
{
	char mark[5];

	snprintf(mark, sizeof(mark), "l3x%u",
		 s->dirs_made < 9 ? s->dirs_made : 9);
	if (s->locked && pwrite(s->lock_fd, on ? mark : "----", 4, 0) != 4)
		pr_warn("lock file: %s\n", strerror(errno));
}

/* The levels of the pin dir the marking user made (lock_mark()); 0 when
 * not marked, or marked by an l3x that did not say. */
static unsigned lock_dirs_made(struct l3x_steer *s)
{
	char buf[5] = "";

	if (!lock_marked(s) || pread(s->lock_fd, buf, 4, 0) != 4 ||
	    buf[3] < '0' || buf[3] > '9')
		return 0;
	return (unsigned)(buf[3] - '0');
}

/* Under the mutex (waited for at most the timeout): are we the last
 * user? Without the locks we never are. */
static bool lock_last(struct l3x_steer *s)
{
	if (!s->locked || flock_timed(s->mutex_fd, LOCK_EX, "mutex"))
		return false;
	return !flock(s->lock_fd, LOCK_EX | LOCK_NB);
}

/* Detach the l3x program someone else attached (we are its last user). */
static void detach_attached(struct l3x_steer *s)
{
	struct xdp_multiprog *mp;
	int prog_fd;
	bool skb;
	LIBBPF_OPTS(bpf_xdp_attach_opts, o);

	mp = find_attached(s->ifindex, &prog_fd, &skb, NULL);
	if (!mp)
		return;
	if (xdp_multiprog__is_legacy(mp)) {
		o.old_prog_fd = prog_fd; /* only if it is still that one */
		if (bpf_xdp_detach(s->ifindex,
				   XDP_FLAGS_REPLACE |
					   (skb ? XDP_FLAGS_SKB_MODE
						: XDP_FLAGS_DRV_MODE),
				   &o))
			pr_warn("detach XDP program from ifindex %d: %s\n",
				s->ifindex, strerror(errno));
	} else {
		struct xdp_program *p = NULL;

		while ((p = xdp_multiprog__next_prog(p, mp)))
			if (!strcmp(xdp_program__name(p), L3X_PROG_NAME))
				break;
		if (p)
			xdp_program__detach(
				p, s->ifindex,
				skb ? XDP_MODE_SKB : XDP_MODE_NATIVE, 0);
	}
	xdp_multiprog__close(mp);
}

/* ------------------------------------------------------------ API */

/* Rules of processes that died holding them go before we add ours. */
static void reap(struct l3x_steer *s)
{
	int n = l3x_rules_reap(&s->maps);

	if (n > 0)
		pr_info("took back %d rule references of processes that died on ifindex %d\n",
			n, s->ifindex);
	else if (n < 0)
		pr_warn("reaping the rules of dead processes on ifindex %d: %s\n",
			s->ifindex, strerror(-n));
}

/*
 * l3x_pin_dir() - see l3x_internal.h: @dir, or the default directory of
 * the interface, /sys/fs/bpf/l3x/IFNAME, so that processes on two
 * interfaces never share (and unpin) each other's maps.
 */
int l3x_pin_dir(char *buf, size_t sz, const char *dir, int ifindex,
		const char *ifname)
{
	char name[IF_NAMESIZE];
	int n;

	if (dir) {
		n = snprintf(buf, sz, "%s", dir);
	} else {
		if (!ifname && !(ifname = if_indextoname(ifindex, name)))
			return -errno;
		n = snprintf(buf, sz, "%s/%s", L3X_DEFAULT_PIN_DIR, ifname);
	}
	return n < 0 || (size_t)n >= sz ? -ENAMETOOLONG : 0;
}

static struct l3x_steer *steer_open(int ifindex,
				    const struct l3x_steer_cfg *cfg)
{
	struct l3x_steer *s;
	int err, lock_err;
	unsigned made = 0;
	bool pin;

	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	memset(s->fds, -1, sizeof(s->fds));
	s->ifindex = ifindex;
	s->lock_fd = s->mutex_fd = s->dir_fd = -1;
	err = l3x_pin_dir(s->pin_dir, sizeof(s->pin_dir), cfg->pin_dir, ifindex,
			  NULL);
	if (err)
		goto err_free;
	lock_err = lock_open(s);
	if (lock_err == -ETIMEDOUT) {
		err = lock_err;
		goto err_free;
	}
	if (lock_err)
		pr_info("no lock in %s (%s): only an attached l3x program is used, and never detached\n",
			lock_dir(), strerror(-lock_err));
	err = try_reuse(s);
	if (!err) {
		s->shared = lock_marked(s);
		reap(s);
		goto out;
	}
	if (err != -ENOENT)
		goto err_free;
	if (lock_err) {
		pr_info("no l3x program attached to ifindex %d, and without the lock in %s none is loaded: %s\n",
			ifindex, lock_dir(), strerror(-lock_err));
		err = lock_err;
		goto err_free;
	}
	pin = prepare_pin_dir(s->pin_dir, cfg->pin_dir == NULL, &made);
	/* An l3x that died here made them, if it says so. */
	s->dirs_made = made > lock_dirs_made(s) ? made : lock_dirs_made(s);
	err = load_own(s, cfg->xdp_mode, pin);
	if (err)
		goto err_close;
	lock_mark(s, true);
out:
	lock_done(s); /* other users may come and go while we run */
	return s;

err_close:
	l3x_steer_close(s);
	errno = -err;
	return NULL;
err_free:
	lock_release(s);
	free(s);
	errno = -err;
	return NULL;
}

struct l3x_steer *l3x_steer_open(int ifindex, const struct l3x_steer_cfg *cfg)
{
	struct saved_prints p = prints_ours();
	struct l3x_steer *s = steer_open(ifindex, cfg);
	int err = errno;

	prints_restore(p);
	errno = err;
	return s;
}

const struct l3x_maps *l3x_steer_maps(const struct l3x_steer *s)
{
	return &s->maps;
}

bool l3x_steer_reused(const struct l3x_steer *s)
{
	return s->reused;
}

bool l3x_steer_skb_mode(const struct l3x_steer *s)
{
	return s->skb_mode;
}

int l3x_stats_read(int stats_fd, struct l3x_steer_stats *st)
{
	uint64_t sums[L3X_CNT_MAX] = {};
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;
	__u32 k;
	int c;

	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (k = 0; k < L3X_CNT_MAX; k++) {
		if (bpf_map_lookup_elem(stats_fd, &k, vals)) {
			free(vals);
			return -errno;
		}
		for (c = 0; c < ncpu; c++)
			sums[k] += vals[c];
	}
	free(vals);
	st->passed = sums[L3X_CNT_PASSED];
	st->redirected = sums[L3X_CNT_REDIRECTED];
	st->redirect_failed = sums[L3X_CNT_REDIRECT_FAILED];
	st->malformed = sums[L3X_CNT_MALFORMED];
	st->frags_tracked = sums[L3X_CNT_FRAGS_TRACKED];
	st->frags_conflict = sums[L3X_CNT_FRAGS_CONFLICT];
	return 0;
}

int l3x_steer_stats(const struct l3x_steer *s, struct l3x_steer_stats *st)
{
	return l3x_stats_read(s->maps.stats, st);
}

int l3x_steer_open_pinned(const char *pin_dir, struct l3x_maps *m)
{
	char path[PATH_MAX];
	int *fds = (int *)m;
	size_t i;
	int err;

	memset(fds, -1, sizeof(*m));
	for (i = 0; i < N_MAPS; i++) {
		err = pin_path(path, sizeof(path), pin_dir, map_names[i]);
		if (!err && (fds[i] = bpf_obj_get(path)) < 0)
			err = -errno;
		if (err) {
			l3x_maps_close(m);
			return err;
		}
	}
	return 0;
}

void l3x_maps_close(struct l3x_maps *m)
{
	int *fds = (int *)m;
	size_t i;

	for (i = 0; i < N_MAPS; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

void l3x_steer_close(struct l3x_steer *s)
{
	struct saved_prints p;
	unsigned made = 0;
	bool last;
	int err;

	if (!s)
		return;
	p = prints_ours();
	close_fds(s);
	/* Last user? Then what an l3x library attached goes, and the
	 * directories it made for the pins. */
	last = lock_last(s);
	if (last)
		made = s->reused ? lock_dirs_made(s) : s->dirs_made;
	if (!last) {
		s->pinned = false; /* others still use program and pins */
	} else if (s->reused && s->shared) {
		detach_attached(s);
		unpin_maps(s->pin_dir);
		lock_mark(s, false);
	} else if (!s->reused) {
		lock_mark(s, false);
	}
	if (s->prog && !s->reused && last) {
		err = xdp_program__detach(
			s->prog, s->ifindex,
			s->skb_mode ? XDP_MODE_SKB : XDP_MODE_NATIVE, 0);
		if (err && err != -ENOENT)
			pr_warn("detach XDP program from ifindex %d: %s\n",
				s->ifindex, strerror(-err));
	}
	if (s->pinned)
		unpin_maps(s->pin_dir);
	if (made)
		remove_made_dirs(s->pin_dir, made);
	xdp_program__close(s->prog);
	bpf_object__close(s->obj);
	if (last)
		lock_remove(s);
	lock_release(s);
	prints_restore(p);
	free(s);
}
