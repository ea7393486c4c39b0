/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * fuzz.h - what every libFuzzer target in tests/fuzz shares: the entry
 * points libFuzzer calls and CHECK(), the property check that turns a
 * broken property into a crash libFuzzer keeps the input of. A target
 * defines FUZZ_NAME (its name, for the message) before including this.
 */
#ifndef L3X_FUZZ_H
#define L3X_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_NAME
#error "define FUZZ_NAME before including fuzz.h"
#endif

/* "FUZZ_NAME: file:line: cond" on stderr, then abort(), unless @cond. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, FUZZ_NAME ": %s:%d: %s\n", __FILE__,   \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

#endif /* L3X_FUZZ_H */
