/*
 * helpers.h - the harness of the netns criterion tests: a network namespace
 * and TUN device of the test's own, seeded data, kernel socket clients, the
 * stack brought up and down with its leak checks, and the loading of the
 * XDP object. Test files (test_stack_*.c, test_bpf.c, ...) start with tests.
 *
 * The stack tests run the termination engine and its API in process, with
 * the kernel's own TCP as the peer (TESTING.md: real parts, not mocks).
 * Each test unshares a network namespace of its own (criterion forks every
 * test, so the namespace, its TUN device and lwIP's globals die with the
 * test process) and routes two documentation prefixes into a TUN device:
 *   198.51.100.0/24, 2001:db8:100::/64  -> TUN "l3x0" -> the stack
 * so kernel sockets connect to any address in them and l3x answers as that
 * address. Two ways in:
 *   L3X_SOURCE_TUN       the stack opens the TUN and runs its own engine
 *                        thread (l3x_stack__start);
 *   L3X_SOURCE_CALLBACK  the test opens the TUN; a pump thread of ours is
 *                        the engine thread: it reads the TUN into
 *                        l3x_stack__input(), calls l3x_stack__poll(), and
 *                        opts.output writes back into the TUN.
 * Clients and the worker share the test thread unless a test needs them
 * concurrent (echo). Data is a seeded stream per direction, checked byte by
 * byte as it arrives.
 *
 * Teardown of every test: with every stream and client closed, the stack's
 * streams are 0, lwIP's PCBs are gone (or only the TIME_WAIT ones the test
 * expects, whose memory is accounted for), heap and pbufs are back to what
 * they were right after open, and l3x_stack__close() returns 0.
 *
 * Everything here runs on the test's thread (the pump thread aside) and
 * fails the test with cr_assert when something goes wrong.
 */
#ifndef L3X_TEST_HELPERS_H
#define L3X_TEST_HELPERS_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <bpf/libbpf.h>

#include "l3x/l3x.h"
#include "harness.h"

#define TUN   "l3x0"
#define NET4  "198.51.100.0/24"
#define NET6  "2001:db8:100::/64"
#define CHUNK 16384

/* ------------------------------------------------------------ time, shell */

/* Milliseconds on the monotonic clock. */
uint64_t now_ms(void);

/* Run @cmd with system(); fail the test unless it exits 0. */
void sh(const char *cmd);

/* ------------------------------------------------------------ seeded data */

/* xorshift64*: the same seed gives the same byte stream on both ends. */
struct gen {
	uint64_t s, w;
	unsigned left;
};

/* A sender's side of a stream: @limit bytes, made a chunk at a time and
 * kept until taken, so nothing is skipped when a write is short. */
struct src {
	struct gen g;
	uint8_t buf[CHUNK];
	size_t len, off, made, limit;
};

void src_init(struct src *x, uint64_t seed, size_t limit);

/* The bytes not yet taken (*n of them; 0 at the end); the sender takes
 * some by adding to x->off. */
const uint8_t *src_peek(struct src *x, size_t *n);

/* How many bytes were taken so far. */
size_t src_taken(const struct src *x);

/* A receiver's side: checks every byte against the same seed. */
struct sink {
	struct gen g;
	size_t got, bad_at;
	bool bad;
};

void sink_init(struct sink *k, uint64_t seed);

/* Check @n bytes at @p; the first one that differs is k->bad_at. */
void sink_put(struct sink *k, const uint8_t *p, size_t n);

/* ------------------------------------------------------------ addresses */

/* @ip (IPv4 or IPv6 text) and @port in @ss; returns its length. */
socklen_t sa_make(const char *ip, uint16_t port, struct sockaddr_storage *ss);

/* Same family, address and port. */
bool sa_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

/* "ip port N" or "[ip6] port N" in @buf; returns @buf. */
const char *sa_str(const struct sockaddr_storage *a, char *buf, size_t n);

/* ------------------------------------------------------------ segments */

/* @v at @p in network order. */
void put16(uint8_t *p, uint16_t v);
void put32(uint8_t *p, uint32_t v);

/* The IPv4 header of a packet of @len bytes from 203.0.113.9 to @dst
 * carrying @proto, no options, its checksum set, in @p. */
void make_ip4(uint8_t *p, uint8_t proto, const uint8_t dst[4], size_t len);

/* The checksum of the transport header and data of @p (an IPv4 packet of
 * @len bytes, no options) over its pseudo header, as it goes in the
 * header (computed with the checksum field 0). */
uint16_t ip4_l4_csum(const uint8_t *p, size_t len);

/* An IPv4 TCP segment 203.0.113.9:@sport -> 198.51.100.70:80 in @p (40 +
 * @n bytes, @data may be NULL when @n is 0) with correct checksums, a
 * 65535 window and no options. Returns its length. */
size_t make_tcp4(uint8_t *p, uint16_t sport, uint8_t flags, uint32_t seq,
		 uint32_t ack, const uint8_t *data, size_t n);

/* ------------------------------------------------------------ the stack */

/* This process in a network namespace of its own, or the test skipped:
 * "needs root for @needs", or the unshare's error. */
void netns_own(const char *needs);

/* The stack under test, one per test process. */
struct stack_fixture {
	enum l3x_source src;
	struct l3x_stack *st;
	int tun_fd;	      /* callback source: the test's TUN */
	struct tun_pump pump; /* callback source: the engine thread */
	bool running;
	struct l3x_stack_mem mem0; /* right after open */
	const char *client_src;	   /* TCP clients bind to it; NULL: any */
};
extern struct stack_fixture F;

/* Start and stop the engine thread: the stack's own (TUN) or our pump
 * (callback). */
void eng_start(void);
void eng_stop(void);

/* Parse @text and add it to the stack. */
void add_rule_text(const char *text);

/* Open a stack on @src in a namespace of our own, route the prefixes to
 * it, add rules for both when @rules, and start its engine. */
void stack_up(enum l3x_source src, struct l3x_stack_opts *o, bool rules);

/* A stack on the callback source with @o (its output among them) in this
 * namespace, quiet: no TUN, no routes, no engine; the test hands packets
 * in with l3x_stack__input() and polls. stack_down() ends it. */
void stack_open_callback(struct l3x_stack_opts *o);

struct memsnap {
	struct l3x_stack_mem m;
	unsigned tw; /* PCBs on lwIP's TIME_WAIT list */
};

/* l3x_stack__mem() wants the engine stopped: stop it for the look. */
void mem_now(struct memsnap *ms);

/* Everything is back where it was right after open, but @n_tw PCBs in
 * TIME_WAIT (and the TCP timer they keep running). Waits a little for
 * LAST_ACK to finish and the TCP timer to notice it has nothing to do. */
void expect_clean(unsigned n_tw);

/* Stop the engine and close the stack (and the test's TUN). */
void stack_down(void);

struct l3x_stack_stats stats_now(void);

/* Wait until counter @field reaches @want (or @ms pass); the snapshot. */
#define STATS_WAIT(field, want, ms)                                            \
	stats_wait(offsetof(struct l3x_stack_stats, field), (want), (ms))
struct l3x_stack_stats stats_wait(size_t off, uint64_t want, int ms);

/* ------------------------------------------------------------ worker side */

/* Take the bits of @mask reported for @s (events are logged per stream,
 * OR-ed, by worker_step). */
uint32_t log_take(struct l3x_stream *s, uint32_t mask);

/* Drop @s from the event log (it is about to be freed). */
void log_forget(struct l3x_stream *s);

/* Wait up to @ms for news and log every event. */
void worker_step(struct l3x_worker *w, int ms);

/* Step the worker until an event of @mask for @s (true) or @ms pass. */
bool wait_ev(struct l3x_worker *w, struct l3x_stream *s, uint32_t mask, int ms);

struct l3x_worker *worker_open(void);

/* Nothing to accept: NULL with EAGAIN. */
void expect_no_accept(struct l3x_worker *w);

/* The next stream to accept, within @ms, or NULL. */
struct l3x_stream *accept_wait(struct l3x_worker *w, int ms);

/* Read what is there, waiting up to @ms for something: bytes, 0 at EOF,
 * -errno (-EAGAIN when nothing came). */
long sread(struct l3x_worker *w, struct l3x_stream *s, void *buf, size_t len,
	   int ms);

/* Close or abort @s and forget its events. */
void stream_close(struct l3x_stream *s);
void stream_abort(struct l3x_stream *s);

/* ------------------------------------------------------------ client side */

/* Connect within @ms, from F.client_src if set; kernel buffer sizes when
 * non-zero. Returns a blocking fd with 3 s timeouts, or -1 with the error
 * in *err. */
int client_connect_ex(const char *ip, uint16_t port, int sndbuf, int rcvbuf,
		      int ms, int *err);

/* For a client thread, which must not assert: client_connect_ex() with
 * the kernel's buffers and 3 s, or -1 with "connect: why" in @err. */
int client_connect_or_say(const char *ip, uint16_t port, char *err,
			  size_t errsz);

/* Blocking, with 3 s send and receive timeouts. */
void make_blocking(int fd);

/* client_connect_ex() that must succeed within 3 s. */
int client_connect(const char *ip, uint16_t port);

/* A connect that gets no answer: started, and still pending after @ms. */
int client_connect_unanswered(const char *ip, uint16_t port, int ms);

/* The client's next recv ends in a reset (data before it is skipped). */
void expect_reset(int fd, const char *what);

/* A connection that must be refused: the connect fails, or (as lwIP
 * accepts after the handshake) the first recv sees the reset. */
void expect_refused(const char *ip, uint16_t port);

/* @n seeded bytes client -> stream, both ends on this thread. */
void cli_to_srv(struct l3x_worker *w, struct l3x_stream *s, int fd,
		uint64_t seed, size_t n);

/* @n seeded bytes stream -> client; writes wait for L3X_EV_WRITABLE. */
void srv_to_cli(struct l3x_worker *w, struct l3x_stream *s, int fd,
		uint64_t seed, size_t n);

/* The same from @x (seeded @seed), which may have sent part of its stream
 * already: the rest goes, and the receiving end checks the whole of it,
 * within @ms. srv_to_cli_from() starts with the writes waiting for
 * L3X_EV_WRITABLE when @blocked, and returns how many came. */
void cli_to_srv_from(struct l3x_worker *w, struct l3x_stream *s, int fd,
		     struct src *x, uint64_t seed, int ms);
int srv_to_cli_from(struct l3x_worker *w, struct l3x_stream *s, int fd,
		    struct src *x, uint64_t seed, bool blocked, int ms);

/* The orderly end, client first: FIN, the server reads EOF and closes,
 * the client reads EOF. l3x goes through LAST_ACK, not TIME_WAIT. */
void close_pair(struct l3x_worker *w, int fd, struct l3x_stream *s);

/* One connection, accepted: the usual start of a test. */
int connect_accept(struct l3x_worker *w, const char *ip, uint16_t port,
		   struct l3x_stream **s);

/* The same with the client's kernel buffer sizes (client_connect_ex()). */
int connect_accept_ex(struct l3x_worker *w, const char *ip, uint16_t port,
		      int sndbuf, int rcvbuf, struct l3x_stream **s);

/* A budget of two flows filled: connections from @ip[0] and @ip[1] to
 * @port accepted (@fd, @s), one from @ip[2] refused. Returns the stats,
 * checked for 2 accepted and 1 refused (tcp_refused_flows). */
struct l3x_stack_stats two_then_refused(struct l3x_worker *w,
					const char *const ip[3], uint16_t port,
					int fd[2], struct l3x_stream *s[2]);

/* An output callback that drops every packet: a callback stack with
 * nowhere to send. */
int null_output(void *ctx, const void *pkt, size_t len);

/* The frames of capture handle @h all accounted for (free + fill + kernel
 * + app + tx + completion = total), @app of them held by the application. */
void expect_frames(struct l3x_capture_handle *h, uint32_t app);

/* A capture on veth t1 (veth_up()) with @o (its ifname set here) and the
 * rule "udp 192.0.2.2 9000"; the library's messages off. */
struct l3x_capture *capture_open_t1(struct l3x_capture_opts *o);

/* @n datagrams to the capture rule's port (veth_inject_udp(), seq @seq0
 * on) all received from @h into @f, which then holds exactly them (the
 * caller held none before). */
void capture_inject_recv(struct l3x_capture_handle *h, struct l3x_frame *f,
			 unsigned n, uint32_t seq0);

/* A bpffs of the test's own on @dir, in a mount namespace of its own
 * (criterion forks each test: both go with it), so that pins there meet
 * no other process's. Skips the test when it cannot. */
void bpffs_private(const char *dir);

/* Receive from @h until @want frames are held in @f (or 2 s pass).
 * Returns how many are. */
unsigned capture_recv_n(struct l3x_capture_handle *h, struct l3x_frame *f,
			unsigned want);

/* A stack on @src with the default options and both rules, and a worker. */
struct l3x_worker *stack_worker_up(enum l3x_source src);

/* The usual end of a test: expect_clean(@n_tw), the worker closed and
 * the stack down. */
void stack_worker_down(struct l3x_worker *w, unsigned n_tw);
/* ------------------------------------------------------------ veth */

/* A namespace of our own (skips without root) with veth t0 <-> t1, @queues
 * each, up; frames are injected on t0 with AF_PACKET. */
void veth_up(int queues);

/* Send one IPv4 UDP frame 192.0.2.1:4000 -> 192.0.2.2:@dport from t0 to
 * t1's MAC, 60 bytes, @seq at offset 42. */
void veth_inject_udp(uint16_t dport, uint32_t seq);

/* ------------------------------------------------------------ XDP object */

/* Open L3X_BPF_OBJ with nothing pinned (tests must not pin, nor pick up
 * maps pinned by a live l3x) and load it; skips the test without root or
 * where BPF is refused. Returns its program l3x_xdp, the object in *obj. */
struct bpf_program *xdp_obj_load(struct bpf_object **obj);

/* The fd of map @name of @obj. */
int xdp_obj_map_fd(struct bpf_object *obj, const char *name);

#endif /* L3X_TEST_HELPERS_H */
