/* line-set.c - see line-set.h */
#include "line-set.h"

#include <stdlib.h>
#include <string.h>

#define LINE_SET_MIN_CAP 64

static size_t home(size_t cap, uint64_t key)
{
	/* Fibonacci hashing: consecutive pages (the common case) spread out. */
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

/* The slot holding @key, or the empty slot where it would go. */
static size_t find(const struct line_set_page *slot, size_t cap, uint64_t key)
{
	size_t i = home(cap, key);

	while (slot[i].key && slot[i].key != key)
		i = (i + 1) & (cap - 1);
	return i;
}

bool line_set_init(struct line_set *s)
{
	s->cap = LINE_SET_MIN_CAP;
	s->pages = s->n = 0;
	s->slot = calloc(s->cap, sizeof(*s->slot));
	return s->slot != NULL;
}

void line_set_free(struct line_set *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = s->pages = s->n = 0;
}

/* Move every page into a table of @cap slots. */
static bool resize(struct line_set *s, size_t cap)
{
	struct line_set_page *slot = calloc(cap, sizeof(*slot));

	if (!slot)
		return false;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i].key)
			slot[find(slot, cap, s->slot[i].key)] = s->slot[i];
	free(s->slot);
	s->slot = slot;
	s->cap = cap;
	return true;
}

int line_set_add(struct line_set *s, uint64_t line)
{
	uint64_t key = line / 64 + 1, bit = 1ull << (line % 64);
	size_t i = find(s->slot, s->cap, key);

	if (s->slot[i].key) {
		if (s->slot[i].mask & bit)
			return 0;
		s->slot[i].mask |= bit;
		s->n++;
		return 1;
	}
	if (2 * (s->pages + 1) > s->cap) {
		if (!resize(s, s->cap * 2))
			return -1;
		i = find(s->slot, s->cap, key);
	}
	s->slot[i].key = key;
	s->slot[i].mask = bit;
	s->pages++;
	s->n++;
	return 1;
}

bool line_set_has(const struct line_set *s, uint64_t line)
{
	const struct line_set_page *e = &s->slot[find(s->slot, s->cap, line / 64 + 1)];

	return e->key && (e->mask & (1ull << (line % 64)));
}

bool line_set_remove(struct line_set *s, uint64_t line)
{
	size_t mask = s->cap - 1, i = find(s->slot, s->cap, line / 64 + 1), j = i;
	uint64_t bit = 1ull << (line % 64);

	if (!s->slot[i].key || !(s->slot[i].mask & bit))
		return false;
	s->n--;
	s->slot[i].mask &= ~bit;
	if (s->slot[i].mask)
		return true;
	/* The page is empty: move back every later entry of the run whose
	 * home is not in (i, j]. */
	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (!s->slot[j].key)
			break;
		k = home(s->cap, s->slot[j].key);
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		s->slot[i] = s->slot[j];
		i = j;
	}
	s->slot[i].key = 0;
	s->slot[i].mask = 0;
	s->pages--;
	/* (Failing to shrink costs only memory.) */
	if (s->cap > LINE_SET_MIN_CAP && 8 * s->pages < s->cap)
		resize(s, s->cap / 2);
	return true;
}

uint64_t line_set_min(const struct line_set *s)
{
	uint64_t min = UINT64_MAX;

	for (size_t i = 0; i < s->cap; i++) {
		if (s->slot[i].key) {
			uint64_t l =
			    (s->slot[i].key - 1) * 64 + (uint64_t)__builtin_ctzll(s->slot[i].mask);

			if (l < min)
				min = l;
		}
	}
	return min;
}

static int cmp_page(const void *a, const void *b)
{
	uint64_t x = ((const struct line_set_page *)a)->key,
	         y = ((const struct line_set_page *)b)->key;

	return (x > y) - (x < y);
}

bool line_set_sorted(const struct line_set *s, uint64_t **out)
{
	struct line_set_page *pages;
	size_t np = 0, n = 0;

	*out = NULL;
	if (!s->n)
		return true;
	pages = malloc(s->pages * sizeof(*pages));
	*out = malloc(s->n * sizeof(**out));
	if (!pages || !*out) {
		free(pages);
		free(*out);
		*out = NULL;
		return false;
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i].key)
			pages[np++] = s->slot[i];
	qsort(pages, np, sizeof(*pages), cmp_page);
	for (size_t p = 0; p < np; p++) {
		for (uint64_t bits = pages[p].mask; bits; bits &= bits - 1)
			(*out)[n++] = (pages[p].key - 1) * 64 + (uint64_t)__builtin_ctzll(bits);
	}
	free(pages);
	return true;
}

void line_set_clear(struct line_set *s)
{
	struct line_set_page *small;

	if (s->cap > LINE_SET_MIN_CAP && (small = calloc(LINE_SET_MIN_CAP, sizeof(*small)))) {
		free(s->slot);
		s->slot = small;
		s->cap = LINE_SET_MIN_CAP;
	} else if (s->pages) {
		memset(s->slot, 0, s->cap * sizeof(*s->slot));
	}
	s->pages = s->n = 0;
}
