/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * proto.c - the echo, discard and http answers of l3x-serve and l3x-kserve:
 * see proto.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "proto.h"

/* Both servers name l3x-serve: the baseline must answer byte for byte as
 * the server it is measured against. */
#define HTTP_SERVER "l3x-serve"

const struct name_value proto_modes[] = {
	{ "echo", PROTO_ECHO },
	{ "discard", PROTO_DISCARD },
	{ "http", PROTO_HTTP },
	{ NULL },
};

char *http_req_room(struct http_req *r, size_t *room)
{
	if (!r->buf && !(r->buf = malloc(HTTP_HEAD_MAX)))
		return NULL;
	*room = r->state == HTTP_READING ? HTTP_HEAD_MAX - r->len : 0;
	return r->buf + r->len;
}

/* The end of the head at or after @from: past the first CRLF CRLF or
 * LF LF (a client may end lines with LF alone). 0: not there yet. */
static size_t head_end(const struct http_req *r, size_t from)
{
	const char *crlf = memmem(r->buf + from, r->len - from, "\r\n\r\n", 4);
	const char *lf = memmem(r->buf + from, r->len - from, "\n\n", 2);
	size_t a = crlf ? (size_t)(crlf - r->buf) + 4 : 0;
	size_t b = lf ? (size_t)(lf - r->buf) + 2 : 0;

	if (a && b)
		return a < b ? a : b;
	return a ? a : b;
}

enum http_state http_req_add(struct http_req *r, size_t n)
{
	/* An end that straddles the new bytes starts up to 3 before. */
	size_t from = r->len > 3 ? r->len - 3 : 0;

	r->len += n;
	r->end = head_end(r, from);
	if (r->end)
		r->state = HTTP_COMPLETE;
	else if (r->len >= HTTP_HEAD_MAX)
		r->state = HTTP_TOO_LONG;
	return r->state;
}

static bool method_is(const struct http_req *r, const char *m)
{
	size_t n = strlen(m);

	return r->len >= n && !memcmp(r->buf, m, n);
}

/* The request line's version: 11, 10, or 0 when the line is not
 * "METHOD SP TARGET SP HTTP/1.x" (a malformed head). */
static int head_version(const struct http_req *r)
{
	const char *eol = memchr(r->buf, '\n', r->end);
	size_t n = eol ? (size_t)(eol - r->buf) : 0;
	const char *sp;

	if (n && r->buf[n - 1] == '\r')
		n--;
	sp = memchr(r->buf, ' ', n);
	if (!sp || sp == r->buf || n < 9 || r->buf[n - 9] != ' ' ||
	    sp == r->buf + n - 9 || memcmp(r->buf + n - 8, "HTTP/1.", 7))
		return 0;
	if (r->buf[n - 1] == '1')
		return 11;
	return r->buf[n - 1] == '0' ? 10 : 0;
}

/* Whether a Connection header of the head names @token (any case). */
static bool connection_has(const struct http_req *r, const char *token)
{
	size_t i, k, tl = strlen(token);

	for (i = 0; i + 12 < r->end; i++) {
		if (r->buf[i] != '\n' ||
		    strncasecmp(r->buf + i + 1, "connection:", 11))
			continue;
		for (k = i + 12; k + tl <= r->end && r->buf[k] != '\n'; k++)
			if (!strncasecmp(r->buf + k, token, tl))
				return true;
	}
	return false;
}

/* Whether the connection stays open after the answer (see proto.h). */
static enum http_conn conn_after(const struct http_req *r, int version,
				 bool get_or_head)
{
	if (r->state != HTTP_COMPLETE || !version || !get_or_head)
		return HTTP_CLOSE;
	if (connection_has(r, "close"))
		return HTTP_CLOSE;
	if (version == 11)
		return HTTP_KEEP;
	return connection_has(r, "keep-alive") ? HTTP_KEEP_10 : HTTP_CLOSE;
}

int http_req_answer(struct http_req *r, const struct http_ends *e, char *out,
		    size_t n)
{
	static const char *const conn_hdr[] = {
		[HTTP_KEEP] = "",
		[HTTP_KEEP_10] = "Connection: keep-alive\r\n",
		[HTTP_CLOSE] = "Connection: close\r\n",
	};
	char client[128], dst[128], body[320];
	bool get = method_is(r, "GET "), head = method_is(r, "HEAD ");
	const char *status = "200 OK";
	int blen, version = 0;

	if (r->state == HTTP_COMPLETE)
		version = head_version(r);
	format_addr((const void *)&e->client, e->client_len, client,
		    sizeof(client));
	format_addr((const void *)&e->dst, e->dst_len, dst, sizeof(dst));
	blen = snprintf(body, sizeof(body), "client %s\ndestination %s\n",
			client, dst);
	if (blen >= (int)sizeof(body))
		blen = sizeof(body) - 1;
	r->bad = !version;
	if (r->bad)
		status = "400 Bad Request";
	else if (!get && !head)
		status = "405 Method Not Allowed";
	r->conn = conn_after(r, version, get || head);
	return snprintf(out, n,
			"HTTP/1.1 %s\r\nServer: " HTTP_SERVER
			"\r\nContent-Type: text/plain\r\n"
			"Content-Length: %d\r\n%s%s\r\n%s",
			status, blen,
			!r->bad && !get && !head ? "Allow: GET, HEAD\r\n" : "",
			conn_hdr[r->conn], head ? "" : body);
}

enum http_state http_req_next(struct http_req *r)
{
	size_t left = r->len - r->end;

	memmove(r->buf, r->buf + r->end, left);
	r->len = 0;
	r->end = 0;
	r->state = HTTP_READING;
	r->bad = false;
	r->conn = HTTP_KEEP;
	if (!left)
		return r->state;
	/* The bytes after the answered head: pipelined requests. */
	return http_req_add(r, left);
}

void http_req_free(struct http_req *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}
