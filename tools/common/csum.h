/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * csum.h - the Internet checksum (RFC 1071) for frames built by hand, by a
 * tool or a test: no tool globals here, so a test links csum.c alone.
 *
 * Sums are kept unfolded in 32 bits, so a header and a pseudo-header (or a
 * template and the one field that changes per frame) are added up apart
 * and folded once; a 32-bit sum holds any frame up to 128 KiB. Any
 * thread.
 */
#ifndef L3X_TOOL_CSUM_H
#define L3X_TOOL_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* @sum plus the @len bytes at @p as big-endian 16-bit words (an odd last
 * byte padded with zero), unfolded. */
uint32_t csum_partial(const void *p, size_t len, uint32_t sum);

/* The checksum field of @sum: folded to 16 bits and complemented, in host
 * order (store it with htons). A buffer whose field holds it sums to 0. */
uint16_t csum_fold(uint32_t sum);

#endif /* L3X_TOOL_CSUM_H */
