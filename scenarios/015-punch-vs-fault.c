/*
 * punch-vs-fault - FALLOC_FL_PUNCH_HOLE racing read and write faults of the same range
 *
 * Punching a hole frees blocks in the middle of a file while it stays the
 * same size, so no SIGBUS tells a mapping the blocks are gone: the
 * filesystem must zero the partial blocks at the ends, unmap the whole
 * pages from every mapping (dax entries and page tables) and keep faults
 * out until the blocks are freed. A fault that looked the block up before
 * the punch and mapped it after keeps a freed block in the process (the
 * race of the series' "Fix XIP fault vs truncate race", through
 * fallocate); a store that landed before the punch and survives it is
 * stale data. Threads store to and load from random 8-byte words of a
 * shared mapping while another punches random ranges, some page-aligned,
 * some starting and ending inside pages, and publishes each punch's phase.
 * Every store is a tagged word naming its thread and a sequence number, and
 * the thread publishes, after the store and a full fence, the phase it saw
 * then: a store published before a punch began completed before it.
 * Promises:
 *  - once the punch has returned (and until the next one), a word of the
 *    punched range reads through the mapping as zeros or as a store that
 *    was not complete before the punch began, never the file's old data or
 *    an older store;
 *  - ... and read() of the punched range, right after the punch, never
 *    returns the old data;
 *  - no access gets a signal (the file keeps its size);
 *  - at the end of every round read() and the mapping agree word for word,
 *    words some punch covered hold zeros or stores not complete before the
 *    last punch that covered them began, and words no punch covered are
 *    not zeros (the punch zeroed nothing outside its range);
 *  - no kernel warning (the agent's dmesg check).
 * The race ran if accesses overlapped punches and loads after a punch saw
 * zeros where data had been. Filesystems without FALLOC_FL_PUNCH_HOLE
 * skip with the errno.
 *
 * run.sh --widen delays these kernel functions (guest-kernel/widen/):
 * daxlab-widen: dax_iomap_pte_fault,dax_insert_entry
 * daxlab-widen: truncate_pagecache_range,dax_layout_busy_page_range
 * daxlab-groups: default series
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
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
#define FILE_SIZE (NPAGES * PAGE)
#define NWORDS (FILE_SIZE / 8)
#define FAULTERS 2u
#define ACCESSES 1500 /* per faulter and round */
#define CYCLES 6      /* punches per round */
#define MAX_PUNCH_PAGES 6u
#define DEFAULT_ROUNDS 16

/*
 * Tags: OLD words are the file's contents at the start of the round
 * (OLD_TAG | word index); NEW words are stores: NEW_TAG | thread << 52 |
 * round << 40 | sequence number of the store in its thread's round.
 */
#define OLD_TAG 0xd100000000000000ull
#define NEW_TAG 0x5e00000000000000ull
#define TAG_MASK 0xff00000000000000ull
#define PUBLISHED (1ull << 63)

enum phase { IDLE = 0, PUNCHING = 1, PUNCHED = 2 };

struct race {
	int fd;
	uint64_t *map;
	unsigned round;
	uint64_t phase;       /* seq << 2 | enum phase, only the puncher changes it */
	uint64_t punch_begin; /* the phase word of the last PUNCHING */
	uint64_t start, end;  /* its byte range */
	/* after each store: PUBLISHED | the phase word its thread saw after it */
	uint64_t done[FAULTERS][ACCESSES];
	/* per word, for the end of the round: the phase word of the last PUNCHING covering it */
	uint64_t covered[NWORDS];
	/* what happened */
	unsigned long loads, stores, signals, overlaps, zeros, stale_map, stale_read, stale_end;
	unsigned long incoherent, lost_outside;
};

static uint64_t phase_now(struct race *r)
{
	return __atomic_load_n(&r->phase, __ATOMIC_SEQ_CST);
}

static uint64_t phase_set(struct race *r, enum phase p)
{
	uint64_t v = ((phase_now(r) >> 2) + 1) << 2 | p;

	__atomic_store_n(&r->phase, v, __ATOMIC_SEQ_CST);
	return v;
}

static void add(unsigned long *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static uint64_t new_value(struct race *r, unsigned id, unsigned n)
{
	return NEW_TAG | (uint64_t)id << 52 | (uint64_t)(r->round & 0xfff) << 40 | n;
}

/*
 * Why @v, seen in word @w once a punch that began at phase word @begin had
 * returned, is stale; NULL if it is not. A store is stale if its thread
 * published that it was complete before the punch began.
 */
static const char *stale_why(struct race *r, size_t w, uint64_t v, uint64_t begin)
{
	uint64_t d;
	unsigned id, n;

	if (v == 0)
		return NULL;
	if ((v & TAG_MASK) == OLD_TAG)
		return "the file's old data";
	if ((v & TAG_MASK) != NEW_TAG || (v >> 40 & 0xfff) != (r->round & 0xfff))
		return "data from elsewhere (not zeros, not a store of this round)";
	id = (unsigned)(v >> 52 & 0xf);
	n = (unsigned)(v & 0xffffffffffull);
	if (id >= FAULTERS || n >= ACCESSES)
		return "data from elsewhere (not zeros, not a store of this round)";
	d = __atomic_load_n(&r->done[id][n], __ATOMIC_SEQ_CST);
	if ((d & PUBLISHED) && (d & ~PUBLISHED) < begin)
		return "a store that was complete before the punch began";
	(void)w;
	return NULL;
}

static void puncher(struct race *r, struct race_rng *rng)
{
	static uint64_t buf[MAX_PUNCH_PAGES * PAGE / 8];

	for (unsigned c = 0; c < CYCLES; c++) {
		unsigned sp = race_below(rng, NPAGES - MAX_PUNCH_PAGES + 1);
		unsigned np = 1 + race_below(rng, MAX_PUNCH_PAGES);
		uint64_t start = (uint64_t)sp * PAGE, end = (uint64_t)(sp + np) * PAGE, begin;

		if (race_below(rng, 2)) { /* ends inside pages: partial blocks zeroed */
			start += race_below(rng, PAGE / 8) * 8;
			end -= race_below(rng, PAGE / 8) * 8;
			if (end <= start)
				end = start + 8;
		}
		race_jitter(rng, 100000);
		__atomic_store_n(&r->start, start, __ATOMIC_SEQ_CST);
		__atomic_store_n(&r->end, end, __ATOMIC_SEQ_CST);
		begin = phase_set(r, PUNCHING);
		__atomic_store_n(&r->punch_begin, begin, __ATOMIC_SEQ_CST);
		if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)start,
		              (off_t)(end - start)))
			tap_bail("punch hole: %s", strerror(errno));
		phase_set(r, PUNCHED);
		for (size_t w = start / 8; w < end / 8; w++)
			r->covered[w] = begin;
		/* read() right after: a word read by bytes may be torn, so only OLD is proof */
		daxenv_pread_all(r->fd, buf, end - start, (long long)start);
		for (size_t i = 0; i < (end - start) / 8; i++) {
			if ((buf[i] & TAG_MASK) != OLD_TAG)
				continue;
			add(&r->stale_read);
			race_hit("read() of offset %llu right after punching [%llu, %llu) returned "
			         "the old data 0x%016llx",
			         (unsigned long long)(start + i * 8), (unsigned long long)start,
			         (unsigned long long)end, (unsigned long long)buf[i]);
			break;
		}
		race_jitter(rng, 300000);
		phase_set(r, IDLE);
	}
}

static void faulter(struct race *r, struct race_rng *rng, unsigned id)
{
	unsigned n = 0;

	for (unsigned i = 0; i < ACCESSES; i++) {
		size_t w = race_below(rng, NWORDS);
		uint64_t before = phase_now(r), after, start, end, begin, v = 0;
		bool store = race_below(rng, 3) == 0;
		int sig;

		if (store) {
			v = new_value(r, id, n);
			sig = race_store(&r->map[w], &v, 8);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (!sig)
				__atomic_store_n(&r->done[id][n], PUBLISHED | phase_now(r),
				                 __ATOMIC_SEQ_CST);
			n++;
			add(&r->stores);
		} else {
			sig = race_load(&r->map[w], &v, 8);
			add(&r->loads);
		}
		start = __atomic_load_n(&r->start, __ATOMIC_SEQ_CST);
		end = __atomic_load_n(&r->end, __ATOMIC_SEQ_CST);
		begin = __atomic_load_n(&r->punch_begin, __ATOMIC_SEQ_CST);
		after = phase_now(r);
		if (sig) {
			add(&r->signals);
			race_hit("thread %u: signal %d at offset %zu", id, sig, w * 8);
			continue;
		}
		if (before != after && ((before & 3) == PUNCHING || (after & 3) == PUNCHING ||
		                        (after >> 2) - (before >> 2) > 1))
			add(&r->overlaps);
		/* A load wholly inside the PUNCHED phase of a punch covering the word. */
		if (store || before != after || (after & 3) != PUNCHED || w * 8 < start ||
		    w * 8 >= end)
			continue;
		if (v == 0) {
			add(&r->zeros);
		} else {
			const char *why = stale_why(r, w, v, begin);

			if (why) {
				uint64_t zero = 0;

				add(&r->stale_map);
				race_hit(
				    "thread %u: offset %zu, punched ([%llu, %llu)), read 0x%016llx "
				    "through the mapping: %s",
				    id, w * 8, (unsigned long long)start, (unsigned long long)end,
				    (unsigned long long)v, why);
				race_witness_bytes("mapping", w * 8, &zero, &v, 8);
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
		puncher(r, &rng);
	else
		faulter(r, &rng, id - 1);
}

static void setup_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static uint64_t buf[NWORDS];

	r->round = round;
	for (size_t w = 0; w < NWORDS; w++) {
		buf[w] = OLD_TAG | w;
		r->covered[w] = 0;
	}
	daxenv_pwrite_all(r->fd, buf, FILE_SIZE, 0);
	memset(r->done, 0, sizeof(r->done));
	r->phase = 0;
	r->punch_begin = 0;
	r->start = r->end = 0;
}

/* Quiescent: read() against the mapping, and every word against the punches. */
static void check_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static uint64_t buf[NWORDS];
	bool stale = false, lost = false, incoherent = false;

	(void)round;
	daxenv_pread_all(r->fd, buf, FILE_SIZE, 0);
	for (size_t w = 0; w < NWORDS; w++) {
		uint64_t v = buf[w];

		if (!incoherent && r->map[w] != v) {
			incoherent = true;
			r->incoherent++;
			race_hit("end of round, offset %zu: read() returned 0x%016llx, the mapping "
			         "holds 0x%016llx",
			         w * 8, (unsigned long long)v, (unsigned long long)r->map[w]);
			race_witness_bytes("read() vs mapping", w * 8, &v, &r->map[w], 8);
		}
		if (r->covered[w]) {
			const char *why = stale_why(r, w, v, r->covered[w]);

			if (why && !stale) {
				uint64_t zero = 0;

				stale = true;
				r->stale_end++;
				race_hit("end of round, offset %zu (punched) holds 0x%016llx: %s",
				         w * 8, (unsigned long long)v, why);
				race_witness_bytes("read()", w * 8, &zero, &v, 8);
			}
		} else if (!lost && v != (OLD_TAG | w) &&
		           ((v & TAG_MASK) != NEW_TAG || (v >> 40 & 0xfff) != (r->round & 0xfff))) {
			uint64_t old = OLD_TAG | w;

			lost = true;
			r->lost_outside++;
			race_hit(
			    "end of round, offset %zu, never punched, holds 0x%016llx (neither "
			    "its data nor a store)",
			    w * 8, (unsigned long long)v);
			race_witness_bytes("read()", w * 8, &old, &v, 8);
		}
	}
}

int main(void)
{
	static struct race r;

	r.fd = daxenv_open_new("file");
	daxenv_pwrite_all(r.fd, &(uint64_t){1}, 8, FILE_SIZE - 8);
	if (fallocate(r.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE) != 0)
		tap_skip_all("fallocate(FALLOC_FL_PUNCH_HOLE): %s", strerror(errno));
	tap_plan(7);
	daxenv_tap_is_dax("probe");
	r.map = daxenv_map_shared(r.fd, FILE_SIZE);

	race_campaign(&(struct race_campaign){.name = "punch-vs-fault",
	                                      .rounds = DEFAULT_ROUNDS,
	                                      .threads = 1 + FAULTERS,
	                                      .setup = setup_round,
	                                      .thread = thread,
	                                      .check = check_round},
	              &r);
	tap_diag("loads %lu, stores %lu; accesses overlapping a punch %lu; loads of punched words "
	         "that saw zeros %lu",
	         r.loads, r.stores, r.overlaps, r.zeros);

	tap_ok(r.stale_map == 0, "once a punch returned, its range reads zeros or newer stores "
	                         "through the mapping");
	tap_ok(r.stale_read == 0, "read() right after a punch never returns the old data");
	tap_ok(r.signals == 0, "no access got a signal");
	tap_ok(r.stale_end == 0 && r.lost_outside == 0,
	       "at the end of every round punched words hold zeros or newer stores, the others "
	       "their data");
	tap_ok(r.incoherent == 0, "read() and the mapping agree at the end of every round");
	tap_ok(r.overlaps > 0 && r.zeros > 0,
	       "the race ran: accesses overlapped punches, and punched words read zeros after");
	munmap(r.map, FILE_SIZE);
	close(r.fd);
	tap_finish();
}
