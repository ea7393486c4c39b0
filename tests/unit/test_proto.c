/*
 * test_proto.c - the HTTP answers l3x-serve and l3x-kserve share
 * (tools/common/proto.c): where a head ends, keep-alive by version and
 * Connection header, pipelined heads taken in turn, and malformed or
 * oversized heads answered 400 and closed.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proto.h"

static struct http_ends ends(void)
{
	struct http_ends e = { .client_len = sizeof(struct sockaddr_in),
			       .dst_len = sizeof(struct sockaddr_in) };
	struct sockaddr_in *c = (void *)&e.client, *d = (void *)&e.dst;

	c->sin_family = d->sin_family = AF_INET;
	c->sin_addr.s_addr = htonl(0xc0000201); /* 192.0.2.1 */
	c->sin_port = htons(40000);
	d->sin_addr.s_addr = htonl(0xc6336407); /* 198.51.100.7 */
	d->sin_port = htons(80);
	return e;
}

/* Feed @text into @r as one read. */
static enum http_state feed(struct http_req *r, const char *text)
{
	size_t room, n = strlen(text);
	char *buf = http_req_room(r, &room);

	cr_assert_not_null(buf);
	cr_assert_geq(room, n);
	memcpy(buf, text, n);
	return http_req_add(r, n);
}

/* The answer to the head in @r, into @out. */
static int answer(struct http_req *r, char *out)
{
	struct http_ends e = ends();

	return http_req_answer(r, &e, out, HTTP_ANSWER_MAX);
}

Test(proto, http11_keeps_the_connection_without_a_connection_header)
{
	struct http_req r = {};
	char out[HTTP_ANSWER_MAX];

	cr_assert_eq(feed(&r, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		     HTTP_COMPLETE);
	answer(&r, out);
	cr_assert_eq(r.conn, HTTP_KEEP);
	cr_assert_not(r.bad);
	cr_assert(strstr(out, "HTTP/1.1 200 OK\r\n"));
	cr_assert_null(strstr(out, "Connection:"));
	cr_assert(strstr(out, "client 192.0.2.1:40000\ndestination "
			      "198.51.100.7:80\n"));
	http_req_free(&r);
}

Test(proto, http11_connection_close_closes_in_any_case)
{
	struct http_req r = {};
	char out[HTTP_ANSWER_MAX];

	feed(&r, "GET / HTTP/1.1\r\nconnection: Close\r\n\r\n");
	answer(&r, out);
	cr_assert_eq(r.conn, HTTP_CLOSE);
	cr_assert(strstr(out, "\r\nConnection: close\r\n"));
	http_req_free(&r);
}

Test(proto, http10_closes_unless_it_asks_for_keep_alive)
{
	struct http_req r = {};
	char out[HTTP_ANSWER_MAX];

	feed(&r, "GET / HTTP/1.0\r\n\r\n");
	answer(&r, out);
	cr_assert_eq(r.conn, HTTP_CLOSE);
	http_req_free(&r);
	feed(&r, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
	answer(&r, out);
	cr_assert_eq(r.conn, HTTP_KEEP_10);
	cr_assert(strstr(out, "\r\nConnection: keep-alive\r\n"));
	http_req_free(&r);
}

Test(proto, pipelined_heads_are_answered_in_turn)
{
	struct http_req r = {};
	char out[HTTP_ANSWER_MAX];

	cr_assert_eq(feed(&r, "GET /a HTTP/1.1\r\n\r\nHEAD /b HTTP/1.1\r\n\r\n"
			      "GET /c HTTP/1.1\r\n"),
		     HTTP_COMPLETE);
	answer(&r, out);
	cr_assert(strstr(out, "client "));
	cr_assert_eq(http_req_next(&r), HTTP_COMPLETE);
	answer(&r, out);
	cr_assert_null(strstr(out, "client "), "HEAD: no body");
	cr_assert_eq(http_req_next(&r), HTTP_READING, "/c is not whole yet");
	cr_assert_eq(feed(&r, "\r\n"), HTTP_COMPLETE);
	answer(&r, out);
	cr_assert_eq(r.conn, HTTP_KEEP);
	cr_assert_eq(http_req_next(&r), HTTP_READING);
	cr_assert_eq(r.len, 0);
	http_req_free(&r);
}

Test(proto, a_head_split_at_its_end_is_found)
{
	struct http_req r = {};

	cr_assert_eq(feed(&r, "GET / HTTP/1.1\r\n\r"), HTTP_READING);
	cr_assert_eq(feed(&r, "\n"), HTTP_COMPLETE);
	cr_assert_eq(r.end, r.len);
	http_req_free(&r);
}

Test(proto, a_malformed_request_line_gets_400_and_closes)
{
	static const char *const bad[] = {
		"GARBAGE\r\n\r\n",	"GET /\r\n\r\n",
		"GET HTTP/1.1\r\n\r\n", "GET / HTTP/2.0\r\n\r\n",
		" / HTTP/1.1\r\n\r\n",
	};
	char out[HTTP_ANSWER_MAX];
	struct http_req r = {};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		feed(&r, bad[i]);
		answer(&r, out);
		cr_assert(r.bad, "%s", bad[i]);
		cr_assert_eq(r.conn, HTTP_CLOSE, "%s", bad[i]);
		cr_assert(strstr(out, "HTTP/1.1 400 Bad Request\r\n"), "%s",
			  bad[i]);
		cr_assert(strstr(out, "\r\nConnection: close\r\n"), "%s",
			  bad[i]);
		http_req_free(&r);
	}
}

Test(proto, a_head_past_the_limit_gets_400)
{
	struct http_req r = {};
	char out[HTTP_ANSWER_MAX];
	size_t room;
	char *buf = http_req_room(&r, &room);

	cr_assert_eq(room, HTTP_HEAD_MAX);
	memset(buf, 'a', room);
	cr_assert_eq(http_req_add(&r, room), HTTP_TOO_LONG);
	http_req_room(&r, &room);
	cr_assert_eq(room, 0, "nothing more is read");
	answer(&r, out);
	cr_assert(r.bad);
	cr_assert_eq(r.conn, HTTP_CLOSE);
	http_req_free(&r);
}

Test(proto, another_method_gets_405_and_closes)
{
	struct http_req r = {};
	char out[HTTP_ANSWER_MAX];

	feed(&r, "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
	answer(&r, out);
	cr_assert_not(r.bad);
	cr_assert_eq(r.conn, HTTP_CLOSE, "its body is not skipped");
	cr_assert(strstr(out, "405 Method Not Allowed\r\n"));
	cr_assert(strstr(out, "Allow: GET, HEAD\r\n"));
	http_req_free(&r);
}
