/*
 * test_api_misuse.c - every misuse of the API the library can see fails
 * with an errno and leaves what it was handed as it was: a handle of the
 * wrong kind (a UDP flow or bound socket passed to l3x_stream__*, a TCP
 * stream to l3x_udp__*), options out of range, a capture frame released
 * twice, l3x_stack__input() off the engine thread, and l3x-ctl listing a
 * rule it cannot format. Each test then shows that the handle still
 * works, and tears down with the leak checks of helpers.h. Built with
 * SANITIZE=address,undefined, a misuse that still reached memory (the
 * use-after-free of a bound socket closed as a stream, the underflow of a
 * short write to one) would fail here as a sanitizer report.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <criterion/criterion.h>

#include "l3x/l3x.h"
#include "../../bpf/l3x_shared.h"
#include "helpers.h"

#define S(u) ((struct l3x_stream *)(u))
#define U(s) ((struct l3x_udp *)(s))

/* A kernel UDP socket that has sent @msg to @ip port @port. */
static int udp_client(const char *ip, uint16_t port, const char *msg,
		      struct sockaddr_storage *dst)
{
	socklen_t dl = sa_make(ip, port, dst);
	int fd = socket(dst->ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(
		sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)dst, dl),
		(ssize_t)strlen(msg), "sendto: %s", strerror(errno));
	return fd;
}

/* The client's next datagram is @want, within 2 s. */
static void udp_expect(int fd, const char *want)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	char buf[256];
	ssize_t r;

	cr_assert_eq(poll(&pf, 1, 2000), 1, "no reply '%s'", want);
	r = recv(fd, buf, sizeof(buf), 0);
	cr_assert_eq(r, (ssize_t)strlen(want), "reply of %zd bytes", r);
	cr_assert_eq(memcmp(buf, want, (size_t)r), 0);
}

/* The next new UDP flow, within 2 s. */
static struct l3x_udp *accept_udp(struct l3x_worker *w)
{
	uint64_t end = now_ms() + 2000;
	struct l3x_udp *u;

	while (!(u = l3x_worker__accept_udp(w)) && now_ms() < end)
		worker_step(w, 10);
	cr_assert_not_null(u, "no UDP flow offered");
	return u;
}

/* Receive one datagram on @u within 2 s (from into @from if not NULL). */
static long udp_recv_wait(struct l3x_worker *w, struct l3x_udp *u, char *buf,
			  size_t len, struct sockaddr_storage *from)
{
	uint64_t end = now_ms() + 2000;
	long r;

	do {
		r = l3x_udp__recvfrom(u, buf, len, (struct sockaddr *)from,
				      from ? sizeof(*from) : 0);
		if (r != -EAGAIN)
			return r;
		worker_step(w, 10);
	} while (now_ms() < end);
	return r;
}

/* Every l3x_stream__* call on @s, which is not a TCP stream, is refused
 * and changes nothing. */
static void stream_calls_refused(struct l3x_stream *s)
{
	struct sockaddr_storage ss;
	char buf[64] = "0123456789";

	cr_assert_eq(l3x_stream__read(s, buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(l3x_stream__write(s, buf, 3), -EINVAL);
	cr_assert_eq(l3x_stream__write(s, buf, 0), -EINVAL);
	cr_assert_eq(l3x_stream__shutdown(s), -EINVAL);
	cr_assert_eq(l3x_stream__setopt(s, L3X_STREAM_NODELAY, 1), -EINVAL);
	cr_assert_eq(l3x_stream__getopt(s, L3X_STREAM_TX_BUF), -EINVAL);
	cr_assert_eq(
		l3x_stream__client_addr(s, (struct sockaddr *)&ss, sizeof(ss)),
		-EINVAL);
	cr_assert_eq(l3x_stream__orig_dst_addr(s, (struct sockaddr *)&ss,
					       sizeof(ss)),
		     -EINVAL);
	l3x_stream__set_user(s, buf);
	cr_assert_null(l3x_stream__user(s));
	cr_assert_eq(l3x_stream__abort(s), -EINVAL);
	cr_assert_eq(l3x_stream__close(s), -EINVAL);
}

/* ------------------------------------------------------------ handle kinds */

Test(misuse, stream_calls_refuse_a_udp_flow, .timeout = 20)
{
	struct sockaddr_storage dst;
	struct l3x_worker *w;
	struct l3x_udp *u;
	char buf[64];
	int fd;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, false);
	add_rule_text("udp " NET4);
	w = worker_open();
	fd = udp_client("198.51.100.60", 7000, "hello", &dst);
	u = accept_udp(w);
	stream_calls_refused(S(u));
	cr_assert_null(l3x_udp__user(u), "set_user of a stream reached it");

	/* The flow is untouched: it still receives and answers. */
	cr_assert_eq(udp_recv_wait(w, u, buf, sizeof(buf), NULL), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	cr_assert_eq(l3x_udp__send(u, "world", 5), 5);
	udp_expect(fd, "world");
	cr_assert_eq(l3x_udp__close(u), 0);
	close(fd);
	stack_worker_down(w, 0);
}

/* The reported use-after-free: a bound socket closed as a stream was freed
 * by the engine while still in the bound set that find_bound() walks. */
Test(misuse, stream_close_refuses_a_bound_socket, .timeout = 20)
{
	struct sockaddr_storage dst, from;
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	struct l3x_udp *u;
	char buf[64];
	socklen_t dl;
	int fd;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, false);
	add_rule_text("udp " NET4);
	w = worker_open();
	dl = sa_make("198.51.100.61", 53, &dst);
	u = l3x_udp__bind(w, (struct sockaddr *)&dst, dl);
	cr_assert_not_null(u, "bind: %s", strerror(errno));
	stream_calls_refused(S(u));

	/* Still bound, still served: a datagram reaches it and the answer
	 * gets back. */
	fd = udp_client("198.51.100.61", 53, "question", &dst);
	cr_assert_eq(udp_recv_wait(w, u, buf, sizeof(buf), &from), 8);
	cr_assert_eq(l3x_udp__sendto(u, "answer", 6, (struct sockaddr *)&from,
				     sizeof(from)),
		     6);
	udp_expect(fd, "answer");
	ss = STATS_WAIT(udp_tx, 1, 1000);
	cr_assert_eq(ss.udp_tx, 1);
	cr_assert_eq(ss.udp_flows, 0, "the datagram made a flow: unbound");
	cr_assert_eq(l3x_udp__close(u), 0);
	close(fd);
	stack_worker_down(w, 0);
}

/* The reported heap overflow: a write of under 20 bytes (the client header
 * a bound socket's datagrams carry) underflowed the engine's length. */
Test(misuse, stream_write_refuses_a_bound_socket_short_or_long, .timeout = 20)
{
	struct sockaddr_storage dst;
	struct l3x_stack_stats ss;
	struct l3x_worker *w;
	struct l3x_udp *u;
	char big[64] = { 0 };
	socklen_t dl;
	int i;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, false);
	add_rule_text("udp " NET4);
	w = worker_open();
	dl = sa_make("198.51.100.62", 5353, &dst);
	u = l3x_udp__bind(w, (struct sockaddr *)&dst, dl);
	cr_assert_not_null(u, "bind: %s", strerror(errno));
	for (i = 0; i <= 40; i++)
		cr_assert_eq(l3x_stream__write(S(u), big, (size_t)i), -EINVAL,
			     "write of %d bytes", i);
	for (i = 0; i < 20; i++)
		worker_step(w, 5);
	ss = stats_now();
	cr_assert_eq(ss.udp_tx, 0);
	cr_assert_eq(ss.udp_tx_failed, 0, "a stream write reached the engine");
	cr_assert_eq(l3x_udp__close(u), 0);
	stack_worker_down(w, 0);
}

Test(misuse, udp_calls_refuse_a_tcp_stream, .timeout = 20)
{
	struct sockaddr_storage ss;
	struct l3x_stream *s;
	struct l3x_worker *w;
	char buf[64];
	int fd;

	L3X_OPTS(l3x_stack_opts, o);
	stack_up(L3X_SOURCE_TUN, &o, true);
	w = worker_open();
	fd = connect_accept(w, "198.51.100.63", 4100, &s);
	cr_assert_eq(l3x_udp__recv(U(s), buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(l3x_udp__recvfrom(U(s), buf, sizeof(buf),
				       (struct sockaddr *)&ss, sizeof(ss)),
		     -EINVAL);
	cr_assert_eq(l3x_udp__send(U(s), "x", 1), -EINVAL);
	sa_make("203.0.113.1", 9, &ss);
	cr_assert_eq(l3x_udp__sendto(U(s), "x", 1, (struct sockaddr *)&ss,
				     sizeof(ss)),
		     -EINVAL);
	cr_assert_eq(
		l3x_udp__client_addr(U(s), (struct sockaddr *)&ss, sizeof(ss)),
		-EINVAL);
	cr_assert_eq(l3x_udp__orig_dst_addr(U(s), (struct sockaddr *)&ss,
					    sizeof(ss)),
		     -EINVAL);
	l3x_udp__set_user(U(s), buf);
	cr_assert_null(l3x_stream__user(s));
	cr_assert_null(l3x_udp__user(U(s)));
	cr_assert_eq(l3x_udp__close(U(s)), -EINVAL);
	cr_assert_eq(l3x_udp__answer(U(s), L3X_ANSWER_DROP), -EINVAL);

	/* The stream is untouched: data both ways, an orderly close. */
	cli_to_srv(w, s, fd, 41, 20000);
	srv_to_cli(w, s, fd, 42, 20000);
	close_pair(w, fd, s);
	stack_worker_down(w, 0);
}

/* ------------------------------------------------------------ options */

/* A callback stack opened with @o: NULL and errno, or closed at once. */
static int open_errno(struct l3x_stack_opts *o)
{
	struct l3x_stack *st;

	o->source = L3X_SOURCE_CALLBACK;
	o->output = null_output;
	o->cpu = L3X_CPU_NONE;
	errno = 0;
	st = l3x_stack__open(o);
	if (!st)
		return errno;
	cr_assert_eq(l3x_stack__close(st), 0);
	return 0;
}

#define OPT_ERRNO(field, val)                                                  \
	({                                                                     \
		L3X_OPTS(l3x_stack_opts, o_, .field = (val));                  \
		open_errno(&o_);                                               \
	})

Test(misuse, udp_queue_past_65535_is_refused)
{
	l3x_set_print(NULL);
	cr_assert_eq(OPT_ERRNO(udp_queue, 65536), EINVAL);
	cr_assert_eq(OPT_ERRNO(udp_queue, 1u << 20), EINVAL);
	cr_assert_eq(OPT_ERRNO(udp_queue, UINT32_MAX), EINVAL);
	cr_assert_eq(OPT_ERRNO(udp_queue, 65535), 0);
	cr_assert_eq(OPT_ERRNO(udp_queue, 1), 0);
}

Test(misuse, idle_and_linger_past_int32_max_are_refused)
{
	l3x_set_print(NULL);
	cr_assert_eq(OPT_ERRNO(udp_idle_ms, (uint32_t)INT32_MAX + 1), ERANGE);
	cr_assert_eq(OPT_ERRNO(udp_idle_ms, UINT32_MAX), ERANGE);
	cr_assert_eq(OPT_ERRNO(linger_ms, (uint32_t)INT32_MAX + 1), ERANGE);
	cr_assert_eq(OPT_ERRNO(linger_ms, UINT32_MAX), ERANGE);
	cr_assert_eq(OPT_ERRNO(udp_idle_ms, INT32_MAX), 0);
	cr_assert_eq(OPT_ERRNO(linger_ms, INT32_MAX), 0);
}

/* The longest idle time accepted is long, not "already expired". */
Test(misuse, udp_idle_at_int32_max_does_not_expire_at_once, .timeout = 20)
{
	struct sockaddr_storage dst;
	struct l3x_worker *w;
	struct l3x_udp *u;
	char buf[64];
	int fd, i;

	L3X_OPTS(l3x_stack_opts, o, .udp_idle_ms = INT32_MAX);
	stack_up(L3X_SOURCE_TUN, &o, false);
	add_rule_text("udp " NET4);
	w = worker_open();
	fd = udp_client("198.51.100.64", 7001, "ping", &dst);
	u = accept_udp(w);
	for (i = 0; i < 30; i++)
		worker_step(w, 10);
	cr_assert_eq(stats_now().udp_expired, 0, "expired at once");
	cr_assert_eq(udp_recv_wait(w, u, buf, sizeof(buf), NULL), 4);
	cr_assert_eq(l3x_udp__send(u, "pong", 4), 4);
	udp_expect(fd, "pong");
	cr_assert_eq(l3x_udp__close(u), 0);
	close(fd);
	stack_worker_down(w, 0);
}

/* ------------------------------------------------------------ threads */

/* __input, like __poll, belongs to the engine thread: while __start's
 * thread runs the engine, a call from elsewhere is refused, not raced. */
Test(misuse, input_off_the_engine_thread_is_refused, .timeout = 20)
{
	static const uint8_t junk[40] = { 0 };
	struct l3x_stack_stats ss;
	struct l3x_stack *st;

	l3x_set_print(NULL);
	L3X_OPTS(l3x_stack_opts, o, .source = L3X_SOURCE_CALLBACK,
		 .output = null_output, .cpu = L3X_CPU_NONE);
	st = l3x_stack__open(&o);
	cr_assert_not_null(st, "open: %s", strerror(errno));
	cr_assert_eq(l3x_stack__start(st), 0);
	cr_assert_eq(l3x_stack__input(st, junk, sizeof(junk)), -EBUSY);
	cr_assert_eq(l3x_stack__poll(st), -EBUSY);
	cr_assert_eq(l3x_stack__stop(st), 0);
	cr_assert_eq(l3x_stack__stats(st, &ss), 0);
	cr_assert_eq(ss.rx_packets, 0, "the refused packet went in");
	/* Stopped: the caller is the engine thread again. */
	cr_assert_eq(l3x_stack__input(st, junk, sizeof(junk)), 0);
	cr_assert_eq(l3x_stack__stats(st, &ss), 0);
	cr_assert_eq(ss.rx_not_ip, 1);
	cr_assert_eq(l3x_stack__close(st), 0);
}

/* ------------------------------------------------------------ capture */

#define NOPIN "/nonexistent-l3x-test/pins"

static struct l3x_capture *open_cap(const char *pin_dir)
{
	L3X_OPTS(l3x_capture_opts, o, .pin_dir = pin_dir, .frame_count = 64,
		 .ring_size = 32);

	return capture_open_t1(&o);
}

Test(misuse, capture_double_release_is_refused_and_counted, .timeout = 20)
{
	struct l3x_capture_handle_stats hs;
	struct l3x_frame f[8], bad[2];
	struct l3x_capture_handle *h;
	struct l3x_capture *cap;

	veth_up(1);
	cap = open_cap(NOPIN);
	h = l3x_capture_handle__open(cap, 0);
	cr_assert_not_null(h, "handle: %s", strerror(errno));
	capture_inject_recv(h, f, 4, 0);

	cr_assert_eq(l3x_capture_handle__release(h, f, 1), 0);
	expect_frames(h, 3);
	/* Twice: refused, nothing changes. */
	cr_assert_eq(l3x_capture_handle__release(h, f, 1), -EINVAL);
	expect_frames(h, 3);
	/* A batch holding a released frame after good ones: all or none. */
	cr_assert_eq(l3x_capture_handle__release(h, f, 3), -EINVAL);
	expect_frames(h, 3);
	/* The same frame twice in one batch. */
	bad[0] = f[1];
	bad[1] = f[1];
	cr_assert_eq(l3x_capture_handle__release(h, bad, 2), -EINVAL);
	expect_frames(h, 3);
	/* An address past the UMEM. */
	bad[0] = f[1];
	bad[0].addr = 1ull << 40;
	cr_assert_eq(l3x_capture_handle__release(h, bad, 1), -EINVAL);
	cr_assert_eq(l3x_capture_handle__release(h, NULL, 1), -EINVAL);
	cr_assert_eq(l3x_capture_handle__release(NULL, f, 1), -EINVAL);
	expect_frames(h, 3);
	cr_assert_eq(l3x_capture_handle__stats(h, &hs), 0);
	cr_assert_eq(hs.release_invalid, 5);

	/* The frames held are still good, and reception goes on. */
	cr_assert_eq(l3x_capture_handle__release(h, f + 1, 3), 0);
	expect_frames(h, 0);
	capture_inject_recv(h, f, 8, 100);
	cr_assert_eq(l3x_capture_handle__release(h, f, 8), 0);
	expect_frames(h, 0);
	cr_assert_eq(l3x_capture_handle__close(h), 0);
	cr_assert_eq(l3x_capture__close(cap), 0);
}

/* ------------------------------------------------------------ l3x-ctl */

Test(misuse, rule_format_of_a_bad_rule_writes_an_empty_string)
{
	struct l3x_rule r = { .proto = 9, .family = 5, .prefix_len = 200 };
	char buf[L3X_RULE_STRLEN];

	memset(buf, 'X', sizeof(buf));
	cr_assert_eq(l3x_rule__format(&r, buf, sizeof(buf)), -EINVAL);
	cr_assert_str_eq(buf, "");
	memset(buf, 'X', sizeof(buf));
	cr_assert_eq(l3x_rule__format(NULL, buf, sizeof(buf)), -EINVAL);
	cr_assert_str_eq(buf, "");
}

/* l3x-ctl rules on maps holding a key it cannot format (written by another
 * program) says so in a line of its own, and prints nothing unwritten. */
Test(misuse, ctl_rules_names_a_rule_it_cannot_format, .timeout = 30)
{
	struct l3x_rule_key k = { .family = 5, .proto = 9, .prefix_len = 200 };
	char dir[] = "/tmp/l3x-misuse-XXXXXX", path[256], cmd[512], line[256];
	int good = 0, named = 0, other = 0, fd, st;
	struct l3x_capture *cap;
	uint32_t ref = 1;
	FILE *p;

	veth_up(1);
	cr_assert_not_null(mkdtemp(dir));
	bpffs_private(dir);
	cap = open_cap(dir);
	snprintf(path, sizeof(path), "%s/l3x_rules", dir);
	fd = bpf_obj_get(path);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(bpf_map_update_elem(fd, &k, &ref, BPF_ANY), 0);

	snprintf(cmd, sizeof(cmd), "%s/l3x-ctl --pin-dir %s rules 2>&1",
		 L3X_BUILD, dir);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = 0;
		if (!strcmp(line, "udp 192.0.2.2 9000"))
			good++;
		else if (!strcmp(line, "(not a valid rule: proto 9 family 5 "
				       "prefix_len 200 ports 0-0)"))
			named++;
		else
			other++;
		cr_log_info("l3x-ctl: %s", line);
	}
	st = pclose(p);
	cr_assert_eq(st, 0, "l3x-ctl rules exited %d", st);
	cr_assert_eq(good, 1);
	cr_assert_eq(named, 1);
	cr_assert_eq(other, 0, "l3x-ctl printed lines it should not");

	cr_assert_eq(bpf_map_delete_elem(fd, &k), 0);
	close(fd);
	cr_assert_eq(l3x_capture__close(cap), 0);
	umount(dir);
	rmdir(dir);
}
