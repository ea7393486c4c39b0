/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * proto.h - what l3x-serve and its kernel baseline l3x-kserve answer, kept
 * in one place so that the two answer byte for byte alike whatever carries
 * the bytes (l3x streams or kernel sockets):
 *
 *   echo     every byte read is sent back; after the client's FIN the
 *            connection is closed once all of it is out
 *   discard  bytes are read and dropped
 *   http     one answer per request head, naming both ends (below)
 *
 * Echo and discard need no state beyond the mode. HTTP reads the request
 * head incrementally into a buffer of its own: the server reads straight
 * into http_req_room() and reports how much came with http_req_add(),
 * which finds where the head ends; http_req_answer() then produces the
 * response bytes. The answer for now always says "Connection: close", and
 * the server closes after it, as l3x-serve always did. The parser keeps
 * where the head ended (end) so that keep-alive and pipelining can later
 * answer it and go on with the bytes after it, and the state has room for
 * a malformed head.
 *
 * Threads: an http_req belongs to its connection's thread; the rest keeps
 * no state.
 */
#ifndef L3X_TOOL_PROTO_H
#define L3X_TOOL_PROTO_H

#include <stddef.h>
#include <sys/socket.h>

#include "parse.h"

enum proto_mode { PROTO_ECHO, PROTO_DISCARD, PROTO_HTTP };

/* "echo", "discard", "http": for --mode and for messages. */
extern const struct name_value proto_modes[];

#define HTTP_HEAD_MAX	8192 /* longest request head read */
#define HTTP_ANSWER_MAX 1024 /* room for any http_req_answer() */

enum http_state {
	HTTP_READING,  /* no end of the head yet: read more */
	HTTP_COMPLETE, /* the head ends at end: answer it */
	HTTP_TOO_LONG, /* HTTP_HEAD_MAX bytes and no end: answer (400) */
};

/* One connection's request; zeroed is ready. */
struct http_req {
	char *buf;  /* HTTP_HEAD_MAX bytes, taken at the first read */
	size_t len; /* bytes in buf */
	size_t end; /* HTTP_COMPLETE: the head's length, CRLF CRLF
		     * (or LF LF) included */
	enum http_state state;
};

/* Both ends of the connection, for the body. A length is what the address
 * query returned: the address's size, or -errno when it failed. */
struct http_ends {
	struct sockaddr_storage client, dst;
	int client_len, dst_len;
};

/* Where to read the next bytes of the head: up to *@room of them at the
 * returned pointer (*@room is 0 once the head is complete or too long).
 * NULL: no memory. */
char *http_req_room(struct http_req *r, size_t *room);

/* @n bytes were read into the room. Returns the new state. */
enum http_state http_req_add(struct http_req *r, size_t n);

/*
 * The answer to the request in @r (HTTP_COMPLETE or HTTP_TOO_LONG) into
 * @out (HTTP_ANSWER_MAX bytes will do): 200 with a plain-text body
 * "client ADDR:PORT\ndestination ADDR:PORT\n" for GET and HEAD (no body for
 * HEAD), 405 for another method, 400 for a head past HTTP_HEAD_MAX; always
 * "Connection: close". Returns its length.
 */
int http_req_answer(const struct http_req *r, const struct http_ends *e,
		    char *out, size_t n);

/* Free what @r holds; zeroed again, it is ready for another request. */
void http_req_free(struct http_req *r);

#endif /* L3X_TOOL_PROTO_H */
