/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * addr.h - socket addresses as the tools print them: "192.0.2.1:80" and
 * "[2001:db8::1]:80", the form URLs and most tools use. Any thread.
 */
#ifndef L3X_TOOL_ADDR_H
#define L3X_TOOL_ADDR_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Room for "[IPv6]:PORT" and its NUL. */
#define ADDR_STRLEN (INET6_ADDRSTRLEN + 8)

/*
 * @sa, of @len bytes, into @buf: "a.b.c.d:port" or "[v6]:port". A length
 * of -errno (what a failed address query returns), 0, or a family that is
 * neither gives "unknown (REASON)". Returns @buf.
 */
char *format_addr(const struct sockaddr *sa, int len, char *buf, size_t n);

/*
 * ADDR, ADDR:PORT, [ADDR6] or [ADDR6]:PORT (numeric only) into @ss, with
 * port @port_none when none is given. Returns false when @text is none of
 * these or the port is 0 or past 65535.
 */
bool parse_sockaddr(const char *text, unsigned port_none,
		    struct sockaddr_storage *ss);

#endif /* L3X_TOOL_ADDR_H */
