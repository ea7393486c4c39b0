/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * addr.c - socket addresses as text: see addr.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

char *format_addr(const struct sockaddr *sa, int len, char *buf, size_t n)
{
	const struct sockaddr_in6 *s6 = (const void *)sa;
	const struct sockaddr_in *s4 = (const void *)sa;
	char a[INET6_ADDRSTRLEN];

	if (len > 0 && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, n, "%s:%u", a, ntohs(s4->sin_port));
	} else if (len > 0 && sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, n, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, n, "unknown (%s)",
			 strerror(len < 0 ? -len : EAFNOSUPPORT));
	}
	return buf;
}

bool parse_sockaddr(const char *text, unsigned port_none,
		    struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *s6 = (void *)ss;
	struct sockaddr_in *s4 = (void *)ss;
	char host[INET6_ADDRSTRLEN + 2], *end;
	const char *port = NULL, *colon;
	unsigned long p = port_none;
	size_t len;

	if (text[0] == '[') {
		end = strchr(text, ']');
		if (!end || (end[1] && end[1] != ':'))
			return false;
		len = end - text - 1;
		port = end[1] ? end + 2 : NULL;
		text++;
	} else {
		colon = strchr(text, ':');
		len = colon && !strchr(colon + 1, ':') ? (size_t)(colon - text)
						       : strlen(text);
		port = colon && !strchr(colon + 1, ':') ? colon + 1 : NULL;
	}
	if (len >= sizeof(host))
		return false;
	memcpy(host, text, len);
	host[len] = 0;
	if (port) {
		errno = 0;
		p = strtoul(port, &end, 10);
		if (errno || !*port || *end || !p || p > 65535)
			return false;
	}
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(p);
		return true;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(p);
		return true;
	}
	return false;
}
