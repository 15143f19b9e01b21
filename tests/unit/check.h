/*
 * check.h - the one assertion the C unit tests use: report and count a
 * failed condition, keep going, and let main() turn the count into the
 * exit status; and their reproducible random numbers.
 */
#ifndef DAXLAB_TEST_CHECK_H
#define DAXLAB_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

/* xorshift64: reproducible random numbers from the caller's *state (not 0). */
static inline uint64_t check_rand(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

#endif
