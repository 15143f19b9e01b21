/*
 * fault-vs-truncate - page faults of a mapped file racing ftruncate shrink and re-grow
 *
 * The race the series' first patch ("Fix XIP fault vs truncate race") closed:
 * a fault that looked up a block before truncate freed it mapped the freed
 * block, and the process went on reading and writing storage that the file
 * no longer owned (or that another file now owned). Two threads fault the
 * pages of a shared mapping (reads and writes, random pages and offsets)
 * while a third shrinks the file into the middle of a block and grows it
 * back, again and again. Promises, each checked at the moment it applies:
 *  - once a shrinking ftruncate has returned, and until the growing one is
 *    called, an access to a page wholly beyond the new EOF gets SIGBUS,
 *    never data, and the rest of EOF's own page reads zeros;
 *  - once the growing ftruncate has returned, the re-grown range reads as
 *    zeros or as data stored after the growth began, never the contents it
 *    had before the shrink (the file's old pattern, or stores made before);
 *  - the same holds through read() at the end of every round, and read()
 *    and the mapping agree;
 *  - no kernel warning (the agent's dmesg check).
 * A run where no access ever hit SIGBUS, or none ever succeeded beyond the
 * shrunk size, did not exercise the race: that point fails rather than
 * passing without having tested anything.
 *
 * run.sh --widen delays these kernel functions (guest-kernel/widen/): the
 * fault between its block lookup and the PTE insert, and truncate itself.
 * daxlab-widen: dax_iomap_pte_fault,dax_insert_entry,vmf_insert_mixed,truncate_pagecache
 * daxlab-groups: default series
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/race.h"
#include "lib/tap.h"

#define PAGE 4096u
#define NPAGES 32u
#define FULL_SIZE (NPAGES * PAGE)
#define SMALL_SIZE (NPAGES / 2 * PAGE - 100) /* inside a block: its tail must zero too */
#define SMALL_PAGES ((SMALL_SIZE + PAGE - 1) / PAGE * PAGE) /* pages wholly beyond: SIGBUS */
#define FAULTERS 2
#define ACCESSES 1500 /* per faulter and round */
#define CYCLES 8      /* shrink + grow cycles per round */
#define DEFAULT_ROUNDS 12

/*
 * Every 8-byte word holds a tag that says where it came from: the file's
 * initial contents (OLD) or a store through the mapping (NEW, with the
 * phase word of the file when the store began).
 */
#define OLD_TAG 0xd100000000000000ull
#define NEW_TAG 0x5e00000000000000ull
#define TAG_MASK 0xff00000000000000ull

struct race {
	int fd;
	uint64_t *map;
	uint64_t phase; /* race.h phase word, written by the truncater */
	unsigned round;
	/* what happened, for the diagnostics and the "race happened" point */
	unsigned long sigbus, beyond_ok, loads, stores;
	unsigned long eof_data, stale_map, stale_read, incoherent;
};

/*
 * A word read beyond SMALL_SIZE once the file has been shrunk and grown
 * must be zero or a store through the mapping: never the file's initial
 * contents, and never a value nobody wrote (another file's data). A store
 * racing the phase changes may land before or after them, so NEW tags are
 * always allowed: only OLD data is provably stale.
 */
static bool fresh(uint64_t v, bool shrunk_before)
{
	if (v == 0 || (v & TAG_MASK) == NEW_TAG)
		return true;
	return (v & TAG_MASK) == OLD_TAG && !shrunk_before;
}

static void faulter(struct race *r, struct race_rng *rng, unsigned id)
{
	for (unsigned i = 0; i < ACCESSES; i++) {
		unsigned page = race_below(rng, NPAGES);
		size_t word = (page * PAGE + race_below(rng, PAGE / 8) * 8) / 8;
		bool beyond = word * 8 >= SMALL_SIZE, beyond_page = word * 8 >= SMALL_PAGES;
		uint64_t before = race_phase_get(&r->phase), after, v = 0;
		bool store = race_below(rng, 4) == 0;
		int sig;

		if (store) {
			v = NEW_TAG | (before & ~TAG_MASK);
			sig = race_store(&r->map[word], &v, 8);
			race_add(&r->stores);
		} else {
			sig = race_load(&r->map[word], &v, 8);
			race_add(&r->loads);
		}
		after = race_phase_get(&r->phase);
		if (sig) {
			if (sig == SIGBUS && beyond_page)
				race_add(&r->sigbus);
			if (!beyond_page || (before == after && (after & 3) == RACE_GROWN)) {
				race_add(&r->eof_data);
				race_hit("thread %u: signal %d at offset %zu, inside EOF", id, sig,
				         word * 8);
			}
			continue;
		}
		if (!beyond)
			continue;
		if (before == after && (after & 3) == RACE_SHRUNK && beyond_page) {
			race_add(&r->eof_data);
			race_hit("%s at offset %zu succeeded beyond EOF (%u bytes) after ftruncate "
			         "returned",
			         store ? "store" : "load", word * 8, SMALL_SIZE);
			continue;
		}
		if (before == after && (after & 3) == RACE_SHRUNK && !store && !fresh(v, true)) {
			uint64_t zero = 0;

			race_add(&r->stale_map);
			race_hit(
			    "load at offset %zu, past EOF (%u) in its last page, saw 0x%016llx",
			    word * 8, SMALL_SIZE, (unsigned long long)v);
			race_witness_bytes("mapping", word * 8, &zero, &v, 8);
			continue;
		}
		if (before == after && (after & 3) == RACE_GROWN && !store) {
			race_add(&r->beyond_ok);
			if (!fresh(v, (after >> 2) > 0)) {
				uint64_t zero = 0;

				race_add(&r->stale_map);
				race_hit("load at offset %zu of the re-grown range saw 0x%016llx, "
				         "not zeros or newer data",
				         word * 8, (unsigned long long)v);
				race_witness_bytes("mapping", word * 8, &zero, &v, 8);
			}
		}
	}
}

static void thread(unsigned id, void *arg)
{
	struct race *r = arg;
	struct race_rng rng;

	race_rng_init(&rng, race_seed() + r->round, id);
	if (id == 0)
		race_truncate_cycles(r->fd, &r->phase, SMALL_SIZE, FULL_SIZE, CYCLES, &rng);
	else
		faulter(r, &rng, id);
}

/* Fresh file: every word tagged OLD, every block allocated. */
static void setup_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static uint64_t buf[FULL_SIZE / 8];

	r->round = round;
	for (size_t w = 0; w < FULL_SIZE / 8; w++)
		buf[w] = OLD_TAG | w;
	if (ftruncate(r->fd, 0))
		tap_bail("ftruncate 0: %s", strerror(errno));
	daxenv_pwrite_all(r->fd, buf, FULL_SIZE, 0);
	r->phase = 0;
}

/* After the round (file RACE_GROWN): read() beyond SMALL_SIZE, and the mapping. */
static void check_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static uint64_t buf[FULL_SIZE / 8];
	uint64_t last = race_phase_get(&r->phase);

	(void)round;
	daxenv_pread_all(r->fd, buf, FULL_SIZE, 0);
	for (size_t w = 0; w < FULL_SIZE / 8; w++) {
		if (w * 8 >= SMALL_SIZE && !fresh(buf[w], (last >> 2) > 0)) {
			uint64_t zero = 0;

			r->stale_read++;
			race_hit("read() at offset %zu of the re-grown range returned 0x%016llx",
			         w * 8, (unsigned long long)buf[w]);
			race_witness_bytes("read()", w * 8, &zero, &buf[w], 8);
			break;
		}
	}
	for (size_t w = 0; w < FULL_SIZE / 8; w++) {
		if (r->map[w] != buf[w]) {
			r->incoherent++;
			race_hit(
			    "offset %zu: read() returned 0x%016llx, the mapping holds 0x%016llx",
			    w * 8, (unsigned long long)buf[w], (unsigned long long)r->map[w]);
			race_witness_bytes("read() vs mapping", w * 8, &buf[w], &r->map[w], 8);
			break;
		}
	}
}

int main(void)
{
	struct race r = {0};

	tap_plan(6);
	daxenv_tap_is_dax("probe");
	r.fd = daxenv_open_new("file");
	if (ftruncate(r.fd, FULL_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	r.map = daxenv_map_shared(r.fd, FULL_SIZE);

	race_campaign(&(struct race_campaign){.name = "fault-vs-truncate",
	                                      .rounds = DEFAULT_ROUNDS,
	                                      .threads = 1 + FAULTERS,
	                                      .setup = setup_round,
	                                      .thread = thread,
	                                      .check = check_round},
	              &r);
	tap_diag("loads %lu, stores %lu; beyond the shrunk size: %lu SIGBUS, %lu loads while grown",
	         r.loads, r.stores, r.sigbus, r.beyond_ok);

	tap_ok(r.eof_data == 0, "beyond EOF: SIGBUS once a shrink returned; inside EOF: never");
	tap_ok(r.stale_map == 0,
	       "the truncated tail and the re-grown range read zeros or newer data (mapping)");
	tap_ok(r.stale_read == 0, "the re-grown range reads zeros or newer data through read()");
	tap_ok(r.incoherent == 0, "read() and the mapping agree at the end of every round");
	tap_ok(r.sigbus > 0 && r.beyond_ok > 0,
	       "the race ran: accesses beyond the shrunk size got SIGBUS and, once grown, data");
	munmap(r.map, FULL_SIZE);
	close(r.fd);
	tap_finish();
}
