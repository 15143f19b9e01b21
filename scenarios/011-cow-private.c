/*
 * cow-private - MAP_PRIVATE mappings of a DAX file: copy on write, never to the file
 *
 * The series' patches "Allow page fault handlers to perform the COW" and
 * "Use vm_insert_page() in the COW path" gave DAX its own copy-on-write:
 * a write fault in a private mapping copies the block (or zeros, for a
 * hole) into an anonymous page and maps that, and the storage stays the
 * file's. Before them, a private write fault on XIP could land on the
 * storage itself. Promises checked:
 *  - a store through a private mapping never reaches the file: read(), a
 *    second MAP_SHARED and a second MAP_PRIVATE mapping still see the
 *    file's data (over data blocks and over holes, read-faulted first or
 *    not), and the private mapping reads its own stores back;
 *  - before a page is copied, write() and stores through a shared mapping
 *    are seen through the private mapping (it maps the file's storage,
 *    or the zero page, which a write into the hole must remove); once
 *    copied, they are not;
 *  - racing: two threads store to (and load back from) random pages of a
 *    private mapping while another shrinks the file into the middle of a
 *    block and grows it back, and a fourth reads a shared mapping. A
 *    private store gets SIGBUS (a page wholly beyond EOF once the shrink
 *    returned) or lands in the private copy, which reads back until a
 *    truncate drops it; private loads see only the file's data, zeros
 *    after truncation, or the thread's own stores, never a private copy of
 *    a page the shrink cut off; the file (shared mapping during the race,
 *    read() after each round) never holds a private store;
 *  - no kernel warning (the agent's dmesg check).
 * "The race ran" fails unless stores beyond the shrunk size both landed
 * (pages later cut off) and got SIGBUS.
 *
 * run.sh --widen delays these kernel functions (guest-kernel/widen/):
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
#include <sys/stat.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/race.h"
#include "lib/tap.h"

#define PAGE 4096u

/* ---- the sequential part ---- */

#define SEQ_PAGES 12u /* pages 0-5 data, 6-11 holes */
#define SEQ_DATA 6u
#define SEQ_SIZE (SEQ_PAGES * PAGE)
#define SEED_FILE 10u
#define SEED_PRIV 20u
#define SEED_WRITE 30u
#define SEED_SHARED 40u

static unsigned char *map_private(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);

	if (p == MAP_FAILED)
		tap_bail("mmap MAP_PRIVATE of %zu bytes: %s", len, strerror(errno));
	return p;
}

static bool is_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i])
			return false;
	}
	return true;
}

/* The file's page @pg as it was written: pattern, or zeros for a hole. */
static bool file_page_ok(const unsigned char *p, unsigned pg)
{
	if (pg >= SEQ_DATA)
		return is_zero(p, PAGE);
	return daxenv_pattern_check(p, PAGE, SEED_FILE, (size_t)pg * PAGE) < 0;
}

static void touch_read(const unsigned char *p)
{
	(void)*(const volatile unsigned char *)p;
}

static int seq_file(void)
{
	static unsigned char buf[SEQ_DATA * PAGE];
	int fd = daxenv_open_new("cow");

	daxenv_pattern(buf, sizeof(buf), SEED_FILE, 0);
	daxenv_pwrite_all(fd, buf, sizeof(buf), 0);
	if (ftruncate(fd, SEQ_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	return fd;
}

/*
 * Stores through a private mapping P: page 0 (data, read-faulted first),
 * 1 (data, first touch is the store), 6 (hole, read-faulted first), 7
 * (hole, first touch is the store). A shared mapping S and a second
 * private mapping Q have every page read-faulted before the stores.
 */
static void check_private_stores(void)
{
	static const unsigned pages[] = {0, 1, 6, 7};
	static unsigned char buf[SEQ_SIZE];
	int fd = seq_file();
	unsigned char *p = map_private(fd, SEQ_SIZE), *q = map_private(fd, SEQ_SIZE);
	unsigned char *s = daxenv_map_shared(fd, SEQ_SIZE);
	bool file_ok = true, shared_ok = true, other_ok = true, own_ok = true;
	struct stat st0, st1;

	for (unsigned pg = 0; pg < SEQ_PAGES; pg++) {
		touch_read(s + pg * PAGE);
		touch_read(q + pg * PAGE);
	}
	touch_read(p);
	touch_read(p + 6 * PAGE);
	if (fstat(fd, &st0))
		tap_bail("fstat: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		size_t off = (size_t)pages[i] * PAGE;

		daxenv_pattern(p + off, PAGE, SEED_PRIV, off);
	}
	if (msync(p, SEQ_SIZE, MS_SYNC))
		tap_bail("msync: %s", strerror(errno));
	if (fstat(fd, &st1))
		tap_bail("fstat: %s", strerror(errno));
	tap_diag("st_blocks before the private stores %lld, after %lld", (long long)st0.st_blocks,
	         (long long)st1.st_blocks);

	daxenv_pread_all(fd, buf, SEQ_SIZE, 0);
	for (unsigned pg = 0; pg < SEQ_PAGES; pg++) {
		size_t off = (size_t)pg * PAGE;
		bool stored = pg == 0 || pg == 1 || pg == 6 || pg == 7;

		if (!file_page_ok(buf + off, pg)) {
			if (file_ok)
				tap_diag("read(): page %u is not the file's data", pg);
			file_ok = false;
		}
		if (!file_page_ok(s + off, pg)) {
			if (shared_ok)
				tap_diag("shared mapping: page %u is not the file's data", pg);
			shared_ok = false;
		}
		if (!file_page_ok(q + off, pg)) {
			if (other_ok)
				tap_diag("second private mapping: page %u is not the file's data",
				         pg);
			other_ok = false;
		}
		if (stored ? daxenv_pattern_check(p + off, PAGE, SEED_PRIV, off) >= 0
		           : !file_page_ok(p + off, pg)) {
			if (own_ok)
				tap_diag("private mapping: page %u is not %s", pg,
				         stored ? "its own stores" : "the file's data");
			own_ok = false;
		}
	}
	tap_ok(file_ok, "stores through a private mapping do not reach the file (read())");
	tap_ok(shared_ok, "stores through a private mapping are not seen by a shared mapping");
	tap_ok(other_ok,
	       "stores through a private mapping are not seen by another private mapping");
	tap_ok(own_ok, "the private mapping reads its own stores back, and the file elsewhere");
	munmap(p, SEQ_SIZE);
	munmap(q, SEQ_SIZE);
	munmap(s, SEQ_SIZE);
	close(fd);
	unlink("cow");
}

/* Page @pg of @map must match the pattern @seed (0: zeros). */
static bool page_is(const unsigned char *map, unsigned pg, unsigned seed, const char *what)
{
	size_t off = (size_t)pg * PAGE;
	bool ok =
	    seed ? daxenv_pattern_check(map + off, PAGE, seed, off) < 0 : is_zero(map + off, PAGE);

	if (!ok)
		tap_diag("page %u (%s): not the expected %s", pg, what, seed ? "pattern" : "zeros");
	return ok;
}

/*
 * Before the copy: page 2 (never touched) and 3 (read-faulted) get a
 * pwrite(), page 4 (read-faulted) a store through a shared mapping, hole
 * page 8 (read-faulted: the zero page) a pwrite(). After the copy: page 5
 * and hole page 9 are stored to through the private mapping, then get a
 * pwrite(), page 0 is copied and then stored to through the shared
 * mapping; the private mapping must keep its copies.
 */
static void check_before_after_cow(void)
{
	static unsigned char buf[PAGE];
	int fd = seq_file();
	unsigned char *p = map_private(fd, SEQ_SIZE), *s = daxenv_map_shared(fd, SEQ_SIZE);
	bool before = true, after = true;

	touch_read(p + 3 * PAGE);
	touch_read(p + 4 * PAGE);
	touch_read(p + 8 * PAGE);
	for (unsigned i = 0; i < 3; i++) {
		unsigned pg = (const unsigned[]){2, 3, 8}[i];

		daxenv_pattern(buf, PAGE, SEED_WRITE, (size_t)pg * PAGE);
		daxenv_pwrite_all(fd, buf, PAGE, (long long)pg * PAGE);
	}
	daxenv_pattern(s + 4 * PAGE, PAGE, SEED_SHARED, 4 * PAGE);
	before &= page_is(p, 2, SEED_WRITE, "never touched, then write()");
	before &= page_is(p, 3, SEED_WRITE, "read-faulted, then write()");
	before &= page_is(p, 4, SEED_SHARED, "read-faulted, then a shared store");
	before &= page_is(p, 8, SEED_WRITE, "hole read-faulted, then write()");

	/* Copy pages 5, 9 and 0 with one store at the start of each. */
	p[5 * PAGE] ^= 0xff;
	p[9 * PAGE] = 0x77;
	p[0] ^= 0xff;
	for (unsigned pg = 5; pg <= 9; pg += 4) { /* 5 and 9 */
		daxenv_pattern(buf, PAGE, SEED_WRITE, (size_t)pg * PAGE);
		daxenv_pwrite_all(fd, buf, PAGE, (long long)pg * PAGE);
	}
	daxenv_pattern(s, PAGE, SEED_SHARED, 0);
	for (unsigned i = 0; i < 3; i++) {
		unsigned pg = (const unsigned[]){0, 5, 9}[i];
		size_t off = (size_t)pg * PAGE;
		long bad = -1;

		/* The copy: the file's page then, with the one store. */
		memset(buf, 0, PAGE);
		if (pg != 9)
			daxenv_pattern(buf, PAGE, SEED_FILE, off);
		buf[0] = pg == 9 ? 0x77 : (unsigned char)(buf[0] ^ 0xff);
		for (size_t i = 0; i < PAGE && bad < 0; i++) {
			if (p[off + i] != buf[i])
				bad = (long)i;
		}
		if (bad >= 0) {
			tap_diag("page %u: private copy changed at +%ld (0x%02x, copy had 0x%02x)",
			         pg, bad, p[off + bad], buf[bad]);
			after = false;
		}
	}
	tap_ok(before, "before the copy, write() and shared stores are seen through the private "
	               "mapping (data and hole pages)");
	tap_ok(after, "after the copy, write() and shared stores are not seen through the private "
	              "mapping");
	munmap(p, SEQ_SIZE);
	munmap(s, SEQ_SIZE);
	close(fd);
	unlink("cow");
}

/* ---- the race: private stores against ftruncate ---- */

#define NPAGES 16u
#define FULL_SIZE (NPAGES * PAGE)
#define SMALL_SIZE (NPAGES / 2 * PAGE - 104) /* inside a block, 8-byte aligned */
#define SMALL_PAGES ((SMALL_SIZE + PAGE - 1) / PAGE * PAGE)
#define FAULTERS 2
#define ACCESSES 1200 /* per faulter and round */
#define SCANS 3000    /* shared-mapping loads per round */
#define CYCLES 6      /* shrink + grow cycles per round */
#define DEFAULT_ROUNDS 24

/*
 * The file holds OLD_TAG | word index. A private store writes NEW_TAG |
 * word index << 20 | a counter; faulter t only stores to words with
 * index % FAULTERS == t - 1, so a word's NEW values are its owner's.
 */
#define OLD_TAG 0xd100000000000000ull
#define NEW_TAG 0x5e00000000000000ull
#define TAG_MASK 0xff00000000000000ull
#define NEW_WORD(v) (((v) >> 20) & 0xfffffffffull)

struct race {
	int fd;
	uint64_t *priv;   /* MAP_PRIVATE, new each round */
	uint64_t *shared; /* MAP_SHARED */
	uint64_t phase;   /* race.h phase word */
	unsigned round;
	unsigned long stores, loads, scans, sigbus, beyond_ok;
	unsigned long eof, lost, wrong, leaked;
};

/*
 * What a private load of word @w may return: the file's data (OLD), zeros
 * beyond SMALL_SIZE once a shrink may have begun, or a store of the
 * word's owner. A page wholly beyond the shrunk size cannot hold OLD once
 * a shrink returned before the load began: truncate drops private copies
 * of the pages it cuts off (the page EOF falls in keeps its copy).
 */
static bool private_value_ok(uint64_t v, size_t w, uint64_t before, uint64_t after)
{
	bool beyond = w * 8 >= SMALL_SIZE, beyond_page = w * 8 >= SMALL_PAGES;

	if ((v & TAG_MASK) == NEW_TAG)
		return NEW_WORD(v) == w;
	if (v == (OLD_TAG | w))
		return !(beyond_page && (before >> 2) >= 2);
	if (v == 0)
		return beyond && after != 0;
	return false;
}

static void faulter(struct race *r, struct race_rng *rng, unsigned id)
{
	for (unsigned i = 0; i < ACCESSES; i++) {
		unsigned page = race_below(rng, NPAGES);
		size_t w = (page * PAGE + race_below(rng, PAGE / 8 / FAULTERS) * FAULTERS * 8) / 8 +
		           (id - 1);
		bool beyond = w * 8 >= SMALL_SIZE, beyond_page = w * 8 >= SMALL_PAGES;
		uint64_t before = race_phase_get(&r->phase), after, v = 0;
		uint64_t mine = NEW_TAG | (uint64_t)w << 20 | (i & 0xfffff);
		bool store = race_below(rng, 3) != 0;
		int sig = 0;

		if (store) {
			race_add(&r->stores);
			sig = race_store(&r->priv[w], &mine, 8);
			if (sig) {
				after = race_phase_get(&r->phase);
				if (sig == SIGBUS && beyond_page)
					race_add(&r->sigbus);
				if (!beyond_page ||
				    (before == after && (after & 3) == RACE_GROWN)) {
					race_add(&r->eof);
					race_hit("thread %u: signal %d storing at offset %zu, "
					         "inside EOF",
					         id, sig, w * 8);
				}
				continue;
			}
		}
		race_add(&r->loads);
		sig = race_load(&r->priv[w], &v, 8);
		after = race_phase_get(&r->phase);
		if (store && before == after && (after & 3) == RACE_SHRUNK && beyond_page) {
			race_add(&r->eof);
			race_hit(
			    "private store at offset %zu succeeded beyond EOF (%u bytes) after "
			    "ftruncate returned",
			    w * 8, SMALL_SIZE);
			continue;
		}
		if (sig) {
			if (!beyond_page || (before == after && (after & 3) == RACE_GROWN)) {
				race_add(&r->eof);
				race_hit("thread %u: signal %d loading at offset %zu, inside EOF",
				         id, sig, w * 8);
			}
			continue;
		}
		if (store && before == after && (after & 3) == RACE_GROWN && beyond_page)
			race_add(&r->beyond_ok);
		if (store && before == after &&
		    ((after & 3) == RACE_GROWN || (after & 3) == RACE_SHRUNK)) {
			/* No truncate ran between the store and the load. */
			if (v != mine) {
				race_add(&r->lost);
				race_hit(
				    "private store at offset %zu read back 0x%016llx, no truncate "
				    "in between",
				    w * 8, (unsigned long long)v);
				race_witness_bytes("private mapping", w * 8, &mine, &v, 8);
			}
			continue;
		}
		if (!private_value_ok(v, w, before, after)) {
			uint64_t old = OLD_TAG | w;

			race_add(&r->wrong);
			race_hit("private load at offset %zu (%s EOF page) saw 0x%016llx", w * 8,
			         beyond ? "past" : "before", (unsigned long long)v);
			race_witness_bytes("private mapping", w * 8, &old, &v, 8);
		}
	}
}

/* The file may hold OLD data or zeros, never a private store. */
static void scanner(struct race *r, struct race_rng *rng)
{
	for (unsigned i = 0; i < SCANS; i++) {
		size_t w = race_below(rng, FULL_SIZE / 8);
		uint64_t v;

		race_add(&r->scans);
		if (race_load(&r->shared[w], &v, 8))
			continue;
		if (v != (OLD_TAG | w) && (v != 0 || w * 8 < SMALL_SIZE)) {
			uint64_t old = OLD_TAG | w;

			race_add(&r->leaked);
			race_hit("shared mapping at offset %zu holds 0x%016llx: a private store "
			         "reached the file",
			         w * 8, (unsigned long long)v);
			race_witness_bytes("shared mapping", w * 8, &old, &v, 8);
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
	else if (id <= FAULTERS)
		faulter(r, &rng, id);
	else
		scanner(r, &rng);
}

static void setup_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static uint64_t buf[FULL_SIZE / 8];

	r->round = round;
	for (size_t w = 0; w < FULL_SIZE / 8; w++)
		buf[w] = OLD_TAG | w;
	if (r->priv)
		munmap(r->priv, FULL_SIZE);
	if (ftruncate(r->fd, 0))
		tap_bail("ftruncate 0: %s", strerror(errno));
	daxenv_pwrite_all(r->fd, buf, FULL_SIZE, 0);
	r->priv = (uint64_t *)map_private(r->fd, FULL_SIZE);
	r->phase = 0;
}

/* After the round: OLD before SMALL_SIZE, zeros after (it was truncated). */
static void check_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static uint64_t buf[FULL_SIZE / 8];

	(void)round;
	daxenv_pread_all(r->fd, buf, FULL_SIZE, 0);
	for (size_t w = 0; w < FULL_SIZE / 8; w++) {
		uint64_t want = w * 8 < SMALL_SIZE ? OLD_TAG | w : 0;

		if (buf[w] != want) {
			race_add(&r->leaked);
			race_hit("read() at offset %zu returned 0x%016llx after the round", w * 8,
			         (unsigned long long)buf[w]);
			race_witness_bytes("read()", w * 8, &want, &buf[w], 8);
			break;
		}
		if (r->shared[w] != want) {
			race_add(&r->leaked);
			race_hit("shared mapping at offset %zu holds 0x%016llx after the round",
			         w * 8, (unsigned long long)r->shared[w]);
			race_witness_bytes("shared mapping", w * 8, &want, &r->shared[w], 8);
			break;
		}
	}
}

static void race_private(void)
{
	struct race r = {0};

	r.fd = daxenv_open_new("race");
	if (ftruncate(r.fd, FULL_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	r.shared = daxenv_map_shared(r.fd, FULL_SIZE);

	race_campaign(&(struct race_campaign){.name = "cow-private",
	                                      .rounds = DEFAULT_ROUNDS,
	                                      .threads = 2 + FAULTERS,
	                                      .setup = setup_round,
	                                      .thread = thread,
	                                      .check = check_round},
	              &r);
	tap_diag("private stores %lu, loads %lu, shared loads %lu; beyond the shrunk size: %lu "
	         "SIGBUS, %lu stores landed while grown",
	         r.stores, r.loads, r.scans, r.sigbus, r.beyond_ok);

	tap_ok(r.eof == 0,
	       "private stores: SIGBUS beyond EOF once a shrink returned, never inside");
	tap_ok(r.lost == 0, "a private store reads back until a truncate drops the copy");
	tap_ok(r.wrong == 0, "private loads see the file's data, zeros after truncation or own "
	                     "stores, never a copy of a cut-off page");
	tap_ok(r.leaked == 0,
	       "racing private stores never reach the file (shared mapping, read())");
	tap_ok(r.sigbus > 0 && r.beyond_ok > 0,
	       "the race ran: private stores beyond the shrunk size landed and got SIGBUS");
	munmap(r.priv, FULL_SIZE);
	munmap(r.shared, FULL_SIZE);
	close(r.fd);
	unlink("race");
}

int main(void)
{
	tap_plan(12);
	daxenv_tap_is_dax("probe");
	check_private_stores();
	check_before_after_cow();
	race_private();
	tap_finish();
}
