/*
 * crash-states.h - which crash states a checkpoint has, and which of them
 * are the same bytes.
 *
 * At a checkpoint (or a crash point at a fence) the persistence log lists
 * the lines pending there: flushed or stored, not yet ordered by a fence.
 * A crash may write back any subset of them. A point with at most
 * @subsets pending entries has all 2^n subsets as its states (state k is
 * the subset whose bit i says whether entry i was written back); one with
 * more has state 0 (nothing written back) and @samples subsets drawn by a
 * PRNG seeded with (seed, checkpoint, k). Either way state 0 is the
 * durable content alone.
 *
 * Two states are folded when their NV-DIMM bytes are equal. A state's
 * fingerprint is a keyed 128-bit sum, over the lines that differ from the
 * base image, of f(line offset, content) - f(offset, base content): it
 * changes in O(1) per line written, a subset costs O(its lines), and two
 * states with the same bytes have the same sum whatever order their lines
 * came in. The key is random per run, so a guest cannot make two
 * different states collide on purpose.
 *
 * QEMU-free, no I/O: unit-tested in tests/unit/test_crash_states.c.
 */
#ifndef DAXLAB_CRASH_STATES_H
#define DAXLAB_CRASH_STATES_H

#include <stdbool.h>
#include <stdint.h>

#include "persist.h"

/* At most this many pending entries are enumerated exhaustively. */
#define CS_MAX_SUBSETS 10u

/* How many crash states a point with @n pending entries has. */
uint64_t cs_count(uint32_t n, unsigned subsets, unsigned samples);
/* Whether its states are every subset (true) or samples. */
bool cs_exhaustive(uint32_t n, unsigned subsets);
/* pick[i]: whether entry i is written back in state @k (k < cs_count). */
void cs_pick(bool *pick, uint32_t n, unsigned subsets, uint64_t seed, uint64_t cp, uint64_t k);

/* A state's fingerprint, and the key it is made with. */
struct cs_hash {
	uint64_t a, b;
};

struct cs_key {
	uint64_t a, b;
};

/* f(off, data): one line's term. */
struct cs_hash cs_line(const struct cs_key *key, uint64_t off, const uint8_t *data);
void cs_add(struct cs_hash *h, struct cs_hash x);
void cs_sub(struct cs_hash *h, struct cs_hash x);
static inline bool cs_equal(struct cs_hash x, struct cs_hash y)
{
	return x.a == y.a && x.b == y.b;
}

/* One pending entry, as the log has it. */
struct cs_entry {
	uint64_t off;
	const uint8_t *data;
};

/*
 * @order: the @n entries' indexes sorted by offset, ties in log order
 * (cs_order fills it). Then cs_subset_term gives what the subset @pick
 * adds to the durable state's fingerprint: for every line it writes (the
 * last picked entry of a line wins, as on hardware the later write-back),
 * f(line, that content) - f(line, durable content). @durable returns the
 * durable content of a line.
 */
void cs_order(uint32_t *order, const struct cs_entry *e, uint32_t n);
struct cs_hash cs_subset_term(const struct cs_key *key, const struct cs_entry *e, uint32_t n,
                              const uint32_t *order, const bool *pick,
                              const uint8_t *(*durable)(void *ctx, uint64_t off), void *ctx);

/*
 * The fingerprints seen so far, each with the state that had it first:
 * an open-addressing table that grows.
 */
struct cs_seen {
	struct cs_seen_slot {
		struct cs_hash h;
		uint64_t rep; /* 0: empty; else the state's number + 1 */
	} * slot;
	uint64_t cap, used;
};

/*
 * The state that had @h first, or (when none did) @seq, recorded for @h.
 * Returns -1 when out of memory.
 */
int64_t cs_seen_add(struct cs_seen *s, struct cs_hash h, uint64_t seq);
void cs_seen_free(struct cs_seen *s);

#endif
