/*
 * check.h - the one assertion the C unit tests use: report and count a
 * failed condition, keep going, and let main() turn the count into the
 * exit status.
 */
#ifndef DAXLAB_TEST_CHECK_H
#define DAXLAB_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

#endif
