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
 * response bytes, and http_req_next() moves on to the bytes after the
 * head: HTTP/1.1 keep-alive and pipelining. A request that is not GET or
 * HEAD carries no body we would skip, so its answer (405) closes; so does
 * a malformed head (400).
 *
 * Connection: an HTTP/1.1 request keeps the connection open unless it says
 * "Connection: close"; an HTTP/1.0 one closes it unless it says
 * "Connection: keep-alive" (ab -k), which the answer then repeats. The
 * answer says "Connection: close" whenever the server closes after it.
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

/* After an answer: the connection stays open (HTTP/1.1, or HTTP/1.0 with
 * keep-alive) or is closed in order once the answer is out. */
enum http_conn {
	HTTP_KEEP = 0, /* HTTP/1.1: nothing to say */
	HTTP_KEEP_10,  /* HTTP/1.0 asked: "Connection: keep-alive" */
	HTTP_CLOSE,    /* "Connection: close", then close */
};

/* One connection's request; zeroed is ready. */
struct http_req {
	char *buf;  /* HTTP_HEAD_MAX bytes, taken at the first read */
	size_t len; /* bytes in buf */
	size_t end; /* HTTP_COMPLETE: the head's length, CRLF CRLF
		     * (or LF LF) included */
	enum http_state state;
	enum http_conn conn; /* after http_req_answer(): what comes next */
	bool bad; /* after http_req_answer(): a malformed head (400) */
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
 * HEAD), 405 for another method, 400 for a head past HTTP_HEAD_MAX or one
 * whose request line is not "METHOD TARGET HTTP/1.x". Sets r->conn (close
 * after the answer or not, see the top) and r->bad (a 400). Returns its
 * length.
 */
int http_req_answer(struct http_req *r, const struct http_ends *e, char *out,
		    size_t n);

/* Done with the answered head: the bytes after it (pipelined requests)
 * become the start of the next one. Returns its state: HTTP_COMPLETE when
 * a whole head came already. */
enum http_state http_req_next(struct http_req *r);

/* Free what @r holds; zeroed again, it is ready for another request. */
void http_req_free(struct http_req *r);

#endif /* L3X_TOOL_PROTO_H */
