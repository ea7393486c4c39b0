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

int http_req_answer(const struct http_req *r, const struct http_ends *e,
		    char *out, size_t n)
{
	char client[128], dst[128], body[320];
	bool get = method_is(r, "GET "), head = method_is(r, "HEAD ");
	const char *status = "200 OK";
	int blen;

	format_addr((const void *)&e->client, e->client_len, client,
		    sizeof(client));
	format_addr((const void *)&e->dst, e->dst_len, dst, sizeof(dst));
	blen = snprintf(body, sizeof(body), "client %s\ndestination %s\n",
			client, dst);
	if (blen >= (int)sizeof(body))
		blen = sizeof(body) - 1;
	if (r->state != HTTP_COMPLETE)
		status = "400 Bad Request";
	else if (!get && !head)
		status = "405 Method Not Allowed";
	return snprintf(out, n,
			"HTTP/1.1 %s\r\nServer: " HTTP_SERVER
			"\r\nContent-Type: text/plain\r\n"
			"Content-Length: %d\r\n%sConnection: close\r\n\r\n%s",
			status, blen, get || head ? "" : "Allow: GET, HEAD\r\n",
			head ? "" : body);
}

void http_req_free(struct http_req *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}
