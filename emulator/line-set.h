/*
 * line-set.h - a set of NV-DIMM line numbers, sized by what it holds.
 *
 * The persistence model keeps only the lines that have pending state
 * (stored and not yet flushed; written back since the last checkpoint), so
 * its memory and the work of a checkpoint follow the guest's pending lines,
 * not the NV-DIMM's size (a bitmap over a 512 MiB DIMM is 1 MiB to scan at
 * every checkpoint; over 64 GiB, 128 MiB).
 *
 * Open addressing with linear probing, at most half full, grown by
 * doubling; removal shifts the following entries back (no tombstones, so a
 * set that sees many adds and removes does not clog). Not thread-safe: the
 * caller holds its lock.
 */
#ifndef DAXLAB_LINE_SET_H
#define DAXLAB_LINE_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct line_set {
	uint64_t *slot; /* line + 1; 0 is empty */
	size_t cap;     /* a power of two */
	size_t n;
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
/* Empty the set (its capacity stays). */
void line_set_clear(struct line_set *s);

#endif
