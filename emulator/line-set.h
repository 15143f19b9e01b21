/*
 * line-set.h - a set of NV-DIMM line numbers, sized by what it holds.
 *
 * The persistence model keeps only the lines that have pending state
 * (stored and not yet flushed; written back since the last checkpoint), so
 * its memory and the work of a checkpoint follow the guest's pending lines,
 * not the NV-DIMM's size (a bitmap over a 512 MiB DIMM is 1 MiB to scan at
 * every checkpoint; over 64 GiB, 128 MiB).
 *
 * A hash table of 4 KiB pages, each with a 64-bit mask of its lines: a
 * memset or memcpy dirties one entry per page, not per line. Open
 * addressing with linear probing, at most half full; grows by doubling and
 * shrinks by half when an eighth full, so a burst of pending lines does not
 * leave every later checkpoint scanning a large empty table; removal shifts
 * the following entries back (no tombstones). Not thread-safe: the caller
 * holds its lock.
 */
#ifndef DAXLAB_LINE_SET_H
#define DAXLAB_LINE_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct line_set_page {
	uint64_t key;  /* page (line / 64) + 1; 0 is empty */
	uint64_t mask; /* bit i: line page * 64 + i is in the set */
};

struct line_set {
	struct line_set_page *slot;
	size_t cap;   /* slots, a power of two */
	size_t pages; /* slots in use */
	size_t n;     /* lines */
};

/* An empty set. Returns false if out of memory. */
bool line_set_init(struct line_set *s);
void line_set_free(struct line_set *s);
/* 1 if @line was added, 0 if it was there, -1 if out of memory. */
int line_set_add(struct line_set *s, uint64_t line);
/* Whether @line was there (it is not any more). */
bool line_set_remove(struct line_set *s, uint64_t line);
bool line_set_has(const struct line_set *s, uint64_t line);
static inline size_t line_set_count(const struct line_set *s)
{
	return s->n;
}
/* The smallest line, or UINT64_MAX if the set is empty. */
uint64_t line_set_min(const struct line_set *s);
/*
 * The lines in ascending order, in a new array of line_set_count() entries
 * (*out; free() it; NULL when empty). Returns false if out of memory.
 */
bool line_set_sorted(const struct line_set *s, uint64_t **out);
/* Empty the set (and give back a large table). */
void line_set_clear(struct line_set *s);

#endif
