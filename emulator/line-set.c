/* line-set.c - see line-set.h */
#include "line-set.h"

#include <stdlib.h>
#include <string.h>

#define LINE_SET_MIN_CAP 64

static size_t home(const struct line_set *s, uint64_t key)
{
	/* Fibonacci hashing: consecutive lines (the common case) spread out. */
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (s->cap - 1);
}

bool line_set_init(struct line_set *s)
{
	s->cap = LINE_SET_MIN_CAP;
	s->n = 0;
	s->slot = calloc(s->cap, sizeof(*s->slot));
	return s->slot != NULL;
}

void line_set_free(struct line_set *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = s->n = 0;
}

/* The slot holding @key, or the empty slot where it would go. */
static size_t find(const struct line_set *s, uint64_t key)
{
	size_t i = home(s, key);

	while (s->slot[i] && s->slot[i] != key)
		i = (i + 1) & (s->cap - 1);
	return i;
}

static bool grow(struct line_set *s)
{
	struct line_set bigger = {calloc(s->cap * 2, sizeof(uint64_t)), s->cap * 2, s->n};

	if (!bigger.slot)
		return false;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i])
			bigger.slot[find(&bigger, s->slot[i])] = s->slot[i];
	free(s->slot);
	*s = bigger;
	return true;
}

int line_set_add(struct line_set *s, uint64_t line)
{
	uint64_t key = line + 1;
	size_t i = find(s, key);

	if (s->slot[i])
		return 0;
	if (2 * (s->n + 1) > s->cap) {
		if (!grow(s))
			return -1;
		i = find(s, key);
	}
	s->slot[i] = key;
	s->n++;
	return 1;
}

bool line_set_has(const struct line_set *s, uint64_t line)
{
	return s->slot[find(s, line + 1)] != 0;
}

bool line_set_remove(struct line_set *s, uint64_t line)
{
	size_t mask = s->cap - 1, i = find(s, line + 1), j = i;

	if (!s->slot[i])
		return false;
	/* Move back every later entry of the run whose home is not in (i, j]. */
	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (!s->slot[j])
			break;
		k = home(s, s->slot[j]);
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		s->slot[i] = s->slot[j];
		i = j;
	}
	s->slot[i] = 0;
	s->n--;
	return true;
}

uint64_t line_set_min(const struct line_set *s)
{
	uint64_t min = UINT64_MAX;

	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i] && s->slot[i] - 1 < min)
			min = s->slot[i] - 1;
	return min;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

bool line_set_sorted(const struct line_set *s, uint64_t **out)
{
	size_t n = 0;

	*out = NULL;
	if (!s->n)
		return true;
	*out = malloc(s->n * sizeof(**out));
	if (!*out)
		return false;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i])
			(*out)[n++] = s->slot[i] - 1;
	qsort(*out, n, sizeof(**out), cmp_u64);
	return true;
}

void line_set_clear(struct line_set *s)
{
	if (s->n)
		memset(s->slot, 0, s->cap * sizeof(*s->slot));
	s->n = 0;
}
