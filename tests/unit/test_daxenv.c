/*
 * Unit test of the guest helpers that run on the host too: the data
 * pattern (every scenario's witness of "which bytes are these") and the
 * tracefs line counter's needle. Built with ASan/UBSan by `make unit`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/daxenv.h"

#include "check.h"

int main(void)
{
	enum { LEN = 8192 };
	unsigned char *a = malloc(LEN), *b = malloc(LEN);

	CHECK(a && b);
	/* The pattern depends on the offset, so a shifted copy is caught. */
	daxenv_pattern(a, LEN, 7, 0);
	CHECK(daxenv_pattern_check(a, LEN, 7, 0) == -1);
	CHECK(daxenv_pattern_check(a + 1, LEN - 1, 7, 0) != -1);
	/* A chunk of the file checks at its own offset. */
	daxenv_pattern(b, 4096, 7, 4096);
	CHECK(memcmp(a + 4096, b, 4096) == 0);
	/* A different seed is different data almost everywhere. */
	daxenv_pattern(b, LEN, 8, 0);
	CHECK(daxenv_pattern_check(b, LEN, 7, 0) == 0);
	/* One flipped byte is found at its offset. */
	a[5000] ^= 1;
	CHECK(daxenv_pattern_check(a, LEN, 7, 0) == 5000);
	/* Zeros are not the pattern. */
	memset(b, 0, LEN);
	CHECK(daxenv_pattern_check(b, LEN, 7, 0) != -1);
	/* The workdir defaults to "." and follows $DAXLAB_DIR. */
	unsetenv("DAXLAB_DIR");
	CHECK(strcmp(daxenv_workdir(), ".") == 0);
	setenv("DAXLAB_DIR", "/mnt/dax/x", 1);
	CHECK(strcmp(daxenv_workdir(), "/mnt/dax/x") == 0);
	/* /proc/meminfo exists on the host too. */
	CHECK(daxenv_cached_kb() >= 0);
	free(a);
	free(b);
	printf("test_daxenv: %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
