/*
 * Unit test of emulator/line-set.c: random adds and removes checked against
 * a plain bitmap, through growth, shrinking and backward-shift removal, on
 * lines one or two per page (many table entries, long probe runs) and on
 * dense ranges (many lines per entry); then the sorted listing, the
 * minimum and clearing.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "line-set.h"

#include "check.h"

enum { NLINES = 1 << 16 };
static bool ref[NLINES];

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next(void)
{
	return check_rand(&rng);
}

static void check_equal(const struct line_set *s)
{
	size_t n = 0;
	uint64_t min = UINT64_MAX, *sorted;

	for (uint64_t l = 0; l < NLINES; l++) {
		CHECK(line_set_has(s, l) == ref[l]);
		if (ref[l]) {
			n++;
			if (min == UINT64_MAX)
				min = l;
		}
	}
	CHECK(line_set_count(s) == n);
	CHECK(line_set_min(s) == min);
	CHECK(line_set_sorted(s, &sorted));
	for (size_t i = 0, l = 0; i < n; i++, l++) {
		while (!ref[l])
			l++;
		CHECK(sorted[i] == l);
	}
	free(sorted);
}

int main(void)
{
	struct line_set s;

	CHECK(line_set_init(&s));
	CHECK(line_set_min(&s) == UINT64_MAX && line_set_count(&s) == 0);
	/* Random work over a small range (long probe runs, wrap-around). */
	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < 20000; i++) {
			uint64_t l = round < 4 ? (next() % 1024) * 64 + next() % 2 : next() % 4096;
			bool add = next() % 3 != 0;

			if (add)
				CHECK(line_set_add(&s, l) == (ref[l] ? 0 : 1));
			else
				CHECK(line_set_remove(&s, l) == ref[l]);
			ref[l] = add;
		}
		check_equal(&s);
	}
	/* Remove everything in a scattered order: nothing is lost on the way. */
	for (uint64_t i = 0; i < NLINES; i++) {
		uint64_t l = (i * 7919) % NLINES;

		CHECK(line_set_remove(&s, l) == ref[l]);
		ref[l] = false;
		if (i % 4096 == 0)
			check_equal(&s);
	}
	CHECK(line_set_count(&s) == 0);
	/* Clear keeps the set usable. */
	for (uint64_t l = 100; l < 300; l++)
		CHECK(line_set_add(&s, l) == 1);
	line_set_clear(&s);
	CHECK(line_set_count(&s) == 0 && !line_set_has(&s, 150));
	CHECK(line_set_add(&s, 150) == 1 && line_set_min(&s) == 150);
	line_set_free(&s);
	printf("test_line_set: %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
