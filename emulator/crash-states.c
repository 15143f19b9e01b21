/*
 * crash-states.c - enumeration and folding of crash states (see
 * crash-states.h).
 */
#include "crash-states.h"

#include <stdlib.h>
#include <string.h>

/* splitmix64: the PRNG of sampled subsets, and the mixer of fingerprints. */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

bool cs_exhaustive(uint32_t n, unsigned subsets)
{
	return n <= subsets && n <= CS_MAX_SUBSETS;
}

uint64_t cs_count(uint32_t n, unsigned subsets, unsigned samples)
{
	return cs_exhaustive(n, subsets) ? 1ull << n : 1ull + samples;
}

void cs_pick(bool *pick, uint32_t n, unsigned subsets, uint64_t seed, uint64_t cp, uint64_t k)
{
	uint64_t s = seed * 0x100000001b3ull ^ cp * 0xc2b2ae3d27d4eb4full ^ k;

	for (uint32_t i = 0; i < n; i++)
		pick[i] = cs_exhaustive(n, subsets) ? (k >> i) & 1 : k > 0 && (mix(&s) & 1);
}

static uint64_t lane(uint64_t key, uint64_t off, const uint8_t *data)
{
	uint64_t s = key ^ off, h = mix(&s);

	for (unsigned i = 0; i < PERSIST_LINE; i += 8) {
		uint64_t w;

		memcpy(&w, data + i, 8);
		s = h ^ w;
		h = mix(&s);
	}
	return h;
}

struct cs_hash cs_line(const struct cs_key *key, uint64_t off, const uint8_t *data)
{
	return (struct cs_hash){lane(key->a, off, data), lane(key->b, off, data)};
}

void cs_add(struct cs_hash *h, struct cs_hash x)
{
	h->a += x.a;
	h->b += x.b;
}

void cs_sub(struct cs_hash *h, struct cs_hash x)
{
	h->a -= x.a;
	h->b -= x.b;
}

static const struct cs_entry *sort_entries;

static int by_offset(const void *x, const void *y)
{
	uint32_t i = *(const uint32_t *)x, j = *(const uint32_t *)y;
	uint64_t a = sort_entries[i].off, b = sort_entries[j].off;

	return a < b ? -1 : a > b ? 1 : i < j ? -1 : i > j;
}

void cs_order(uint32_t *order, const struct cs_entry *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		order[i] = i;
	sort_entries = e;
	qsort(order, n, sizeof(*order), by_offset);
	sort_entries = NULL;
}

struct cs_hash cs_subset_term(const struct cs_key *key, const struct cs_entry *e, uint32_t n,
                              const uint32_t *order, const bool *pick,
                              const uint8_t *(*durable)(void *ctx, uint64_t off), void *ctx)
{
	struct cs_hash t = {0, 0};

	for (uint32_t i = 0; i < n;) {
		uint32_t j = i, last = UINT32_MAX;

		/* one line: its entries are together in @order, in log order */
		for (; j < n && e[order[j]].off == e[order[i]].off; j++)
			if (pick[order[j]])
				last = order[j];
		if (last != UINT32_MAX) {
			const uint8_t *d = durable(ctx, e[last].off);

			if (memcmp(d, e[last].data, PERSIST_LINE)) {
				cs_add(&t, cs_line(key, e[last].off, e[last].data));
				cs_sub(&t, cs_line(key, e[last].off, d));
			}
		}
		i = j;
	}
	return t;
}

static int64_t seen_put(struct cs_seen *s, struct cs_hash h, uint64_t seq)
{
	uint64_t i = h.a & (s->cap - 1);

	for (;; i = (i + 1) & (s->cap - 1)) {
		struct cs_seen_slot *sl = &s->slot[i];

		if (!sl->rep) {
			sl->h = h;
			sl->rep = seq + 1;
			s->used++;
			return (int64_t)seq;
		}
		if (cs_equal(sl->h, h))
			return (int64_t)(sl->rep - 1);
	}
}

int64_t cs_seen_add(struct cs_seen *s, struct cs_hash h, uint64_t seq)
{
	if ((s->used + 1) * 2 > s->cap) {
		struct cs_seen bigger = {calloc(s->cap ? s->cap * 2 : 64, sizeof(*s->slot)),
		                         s->cap ? s->cap * 2 : 64, 0};

		if (!bigger.slot)
			return -1;
		for (uint64_t i = 0; i < s->cap; i++)
			if (s->slot[i].rep)
				seen_put(&bigger, s->slot[i].h, s->slot[i].rep - 1);
		free(s->slot);
		*s = bigger;
	}
	return seen_put(s, h, seq);
}

void cs_seen_free(struct cs_seen *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = s->used = 0;
}
