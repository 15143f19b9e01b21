/*
 * test_crash_states.c - enumeration and folding of crash states: the exact
 * number of states per checkpoint, every subset once when it is
 * exhaustive, and fingerprints that are equal exactly when the bytes are
 * (checked against the bytes themselves, state by state, on small random
 * NV-DIMMs whose pending entries repeat lines and durable content).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crash-states.h"

#include "check.h"

#define LINES 12
#define SIZE (LINES * PERSIST_LINE)

static void test_counts(void)
{
	CHECK(cs_count(0, 6, 8) == 1);
	CHECK(cs_count(3, 6, 8) == 8);
	CHECK(cs_count(6, 6, 8) == 64);
	CHECK(cs_count(7, 6, 8) == 9);
	CHECK(cs_count(1, 0, 8) == 9);
	CHECK(cs_count(0, 0, 8) == 1);
	CHECK(cs_count(11, 11, 2) == 3); /* never more than 2^CS_MAX_SUBSETS */
	CHECK(cs_exhaustive(6, 6) && !cs_exhaustive(7, 6));
}

static void test_picks(void)
{
	bool pick[8], seen[64] = {false};
	unsigned distinct = 0;

	/* exhaustive: state k is the subset k, each subset once */
	for (uint64_t k = 0; k < cs_count(6, 6, 8); k++) {
		unsigned mask = 0;

		cs_pick(pick, 6, 6, 1, 1001, k);
		for (unsigned i = 0; i < 6; i++)
			mask |= (unsigned)pick[i] << i;
		CHECK(mask == k);
		distinct += !seen[mask];
		seen[mask] = true;
	}
	CHECK(distinct == 64);
	/* sampled: state 0 writes back nothing; the same seed picks the same */
	bool a[8], b[8];
	unsigned any = 0;

	cs_pick(a, 8, 6, 7, 1002, 0);
	for (unsigned i = 0; i < 8; i++)
		CHECK(!a[i]);
	for (uint64_t k = 1; k < 9; k++) {
		cs_pick(a, 8, 6, 7, 1002, k);
		cs_pick(b, 8, 6, 7, 1002, k);
		CHECK(!memcmp(a, b, sizeof(a)));
		for (unsigned i = 0; i < 8; i++)
			any += a[i];
	}
	CHECK(any > 0);
}

static const uint8_t *durable_of(void *ctx, uint64_t off)
{
	return (const uint8_t *)ctx + off;
}

/* The bytes of state @pick: durable, then the picked entries in log order. */
static void state_bytes(uint8_t *out, const uint8_t *durable, const struct cs_entry *e, uint32_t n,
                        const bool *pick)
{
	memcpy(out, durable, SIZE);
	for (uint32_t i = 0; i < n; i++)
		if (pick[i])
			memcpy(out + e[i].off, e[i].data, PERSIST_LINE);
}

/* Fingerprint of the durable content from scratch (against a zero base). */
static struct cs_hash full_hash(const struct cs_key *key, const uint8_t *img)
{
	static const uint8_t zero[PERSIST_LINE];
	struct cs_hash h = {0, 0};

	for (uint64_t off = 0; off < SIZE; off += PERSIST_LINE)
		if (memcmp(img + off, zero, PERSIST_LINE)) {
			cs_add(&h, cs_line(key, off, img + off));
			cs_sub(&h, cs_line(key, off, zero));
		}
	return h;
}

static void test_folding(void)
{
	static uint8_t durable[SIZE], imgs[64][SIZE], data[6][PERSIST_LINE];
	const struct cs_key key = {0x1234, 0xabcd};
	uint64_t rnd = 0xfeed;

	for (unsigned round = 0; round < 200; round++) {
		struct cs_entry e[6];
		struct cs_hash hs[64], dur;
		struct cs_seen seen = {0};
		uint32_t order[6], n = 1 + check_rand(&rnd) % 6;
		unsigned uniq_hash = 0, uniq_bytes = 0;
		bool pick[6];

		/* a few lines set, in 2 byte values, so that states repeat */
		memset(durable, 0, sizeof(durable));
		for (unsigned l = 0; l < LINES; l++)
			if (check_rand(&rnd) % 2)
				memset(durable + l * PERSIST_LINE, 1 + (int)(check_rand(&rnd) % 2),
				       PERSIST_LINE);
		for (uint32_t i = 0; i < n; i++) {
			memset(data[i], (int)(check_rand(&rnd) % 3), PERSIST_LINE);
			e[i] = (struct cs_entry){(check_rand(&rnd) % 4) * PERSIST_LINE, data[i]};
		}
		dur = full_hash(&key, durable);
		cs_order(order, e, n);
		for (uint64_t k = 0; k < cs_count(n, 6, 0); k++) {
			struct cs_hash h = dur;

			cs_pick(pick, n, 6, 1, 1, k);
			cs_add(&h, cs_subset_term(&key, e, n, order, pick, durable_of, durable));
			state_bytes(imgs[k], durable, e, n, pick);
			/* the incremental fingerprint is the one of the bytes */
			CHECK(cs_equal(h, full_hash(&key, imgs[k])));
			hs[k] = h;
			bool new_bytes = true;

			for (uint64_t j = 0; j < k; j++) {
				bool same = !memcmp(imgs[j], imgs[k], SIZE);

				CHECK(same == cs_equal(hs[j], hs[k]));
				new_bytes &= !same;
			}
			uniq_bytes += new_bytes;
			int64_t rep = cs_seen_add(&seen, h, k);

			CHECK(rep >= 0 && rep <= (int64_t)k);
			uniq_hash += rep == (int64_t)k;
			if (rep != (int64_t)k)
				CHECK(!memcmp(imgs[rep], imgs[k], SIZE));
		}
		CHECK(uniq_hash == uniq_bytes);
		cs_seen_free(&seen);
	}
}

static void test_seen_grows(void)
{
	struct cs_seen s = {0};

	for (uint64_t i = 0; i < 10000; i++)
		CHECK(cs_seen_add(&s, (struct cs_hash){i * 0x9e3779b97f4a7c15ull, i}, i) ==
		      (int64_t)i);
	for (uint64_t i = 0; i < 10000; i += 97)
		CHECK(cs_seen_add(&s, (struct cs_hash){i * 0x9e3779b97f4a7c15ull, i}, 99999) ==
		      (int64_t)i);
	CHECK(s.used == 10000);
	cs_seen_free(&s);
}

int main(void)
{
	test_counts();
	test_picks();
	test_folding();
	test_seen_grows();
	if (failures)
		fprintf(stderr, "test_crash_states: %d failed\n", failures);
	return failures ? 1 : 0;
}
