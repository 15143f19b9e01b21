/*
 * io-vs-truncate - pread()/pwrite() through DAX racing ftruncate shrink and re-grow
 *
 * read() and write() of a DAX file copy straight between the user buffer
 * and the NV-DIMM blocks the filesystem maps for them (the series' "Replace
 * XIP read and write with DAX I/O", today dax_iomap_rw). If a copy used a
 * block that a racing truncate had freed, a read would return another
 * file's data and a write would land in another file; if it used a stale
 * i_size, a read would return bytes beyond EOF. One thread shrinks a file
 * into the middle of a block and grows it back, again and again, while
 * readers pread() random ranges around the shrunk size, a writer pwrite()s
 * random ranges (every other cycle only below the shrunk size, so that
 * some reads see no extending write), and a scribbler creates, checks and
 * deletes files filled with a tag of their own, so that blocks the
 * truncate frees get reused (each round also starts by deleting such a
 * file). Every byte says where
 * it came from: the file's initial contents (OLD), a pwrite() (NEW), or
 * another file (FOREIGN). Promises, each checked at the moment it applies:
 *  - a read returns only bytes that were written or zeros: never FOREIGN,
 *    never a byte nobody wrote, never zeros below the shrunk size (that
 *    data is never truncated), and never OLD beyond the shrunk size once a
 *    shrink has returned (the truncated tail and re-grown range are zeros
 *    or newer writes);
 *  - a read never returns more bytes than i_size allowed at some moment of
 *    the call: one that began and ended in the same shrunk phase, with no
 *    write past the shrunk size in flight since the shrink began, returns
 *    at most up to the shrunk size; one that began and ended while the
 *    file was fully grown is not short;
 *  - the scribbler's files hold only their own tag (no write lands in a
 *    block another file owns);
 *  - the file read whole at the end of a round obeys the first promise;
 *  - no kernel warning (the agent's dmesg check).
 * The race ran if reads overlapped truncates, some reads were bounded by
 * the shrunk size, and reads of the re-grown range returned data.
 *
 * run.sh --widen delays these kernel functions (guest-kernel/widen/):
 * daxlab-widen: dax_iomap_rw,dax_iomap_pte_fault,truncate_pagecache
 * daxlab-groups: default series
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/race.h"
#include "lib/tap.h"

#define PAGE 4096u
#define NPAGES 32u
#define FULL_SIZE (NPAGES * PAGE)
#define SMALL_SIZE (NPAGES / 2 * PAGE - 100) /* inside a block: its tail must zero too */
#define MAX_IO (3 * PAGE)
#define CYCLES 8 /* shrink + grow cycles per round */
#define READERS 2
#define SCRIBBLE_SIZE (16 * PAGE)
#define SCRIBBLE_KEEP 4 /* files the scribbler keeps alive at once */
#define DEFAULT_ROUNDS 24

#define OLD_B 0xd1
#define NEW_B 0x5e
#define FOREIGN_B 0xf0

enum phase { GROWN = 0, SHRINKING = 1, SHRUNK = 2, GROWING = 3 };

enum role { TRUNCATER, WRITER, SCRIBBLER, FIRST_READER };

struct race {
	int fd;
	uint64_t phase; /* seq << 2 | enum phase, written by the truncater */
	unsigned round;
	bool done; /* the truncater finished its cycles */
	/* writes that end beyond SMALL_SIZE (they extend a shrunk file) */
	unsigned long ext_started, ext_done;
	/* at the latest shrink: ext_started, and whether none was in flight */
	unsigned long shrink_snap;
	bool shrink_clean;
	/* what happened */
	unsigned long reads, writes, straddled, bounded, grown_full, regrown_data, scribbles;
	unsigned long bad_data, bad_size, bad_scribble, final_bad;
};

static unsigned long load(unsigned long *c)
{
	return __atomic_load_n(c, __ATOMIC_SEQ_CST);
}

static void truncater(struct race *r, struct race_rng *rng)
{
	for (unsigned c = 0; c < CYCLES; c++) {
		unsigned long started, done;

		race_jitter(rng, 300000);
		race_phase_set(&r->phase, SHRINKING);
		started = load(&r->ext_started);
		done = load(&r->ext_done);
		__atomic_store_n(&r->shrink_snap, started, __ATOMIC_SEQ_CST);
		__atomic_store_n(&r->shrink_clean, started == done, __ATOMIC_SEQ_CST);
		if (ftruncate(r->fd, SMALL_SIZE))
			tap_bail("ftruncate shrink: %s", strerror(errno));
		race_phase_set(&r->phase, SHRUNK);
		race_jitter(rng, 300000);
		race_phase_set(&r->phase, GROWING);
		if (ftruncate(r->fd, FULL_SIZE))
			tap_bail("ftruncate grow: %s", strerror(errno));
		race_phase_set(&r->phase, GROWN);
	}
	__atomic_store_n(&r->done, true, __ATOMIC_SEQ_CST);
}

static bool finished(struct race *r)
{
	return __atomic_load_n(&r->done, __ATOMIC_SEQ_CST);
}

static void writer(struct race *r, struct race_rng *rng)
{
	static unsigned char buf[MAX_IO];

	memset(buf, NEW_B, sizeof(buf));
	while (!finished(r)) {
		/* every other cycle, no write past SMALL_SIZE: reads can be bounded */
		bool quiet = (race_phase_get(&r->phase) >> 2) / 4 % 2 == 1;
		size_t len = 1 + race_below(rng, MAX_IO);
		size_t off = race_below(rng, (quiet ? SMALL_SIZE : FULL_SIZE) - (unsigned)len + 1);
		bool ext = off + len > SMALL_SIZE;
		ssize_t n;

		if (ext)
			race_add(&r->ext_started);
		n = pwrite(r->fd, buf, len, (off_t)off);
		if (ext)
			race_add(&r->ext_done);
		if (n != (ssize_t)len)
			tap_bail("pwrite of %zu at %zu: %s", len, off,
			         n < 0 ? strerror(errno) : "short write");
		race_add(&r->writes);
		race_jitter(rng, 20000);
	}
}

/*
 * Check bytes read at file offset @off. @shrunk_before: a shrink had
 * returned when the read began, so OLD bytes beyond SMALL_SIZE are stale.
 */
static bool check_bytes(const unsigned char *b, size_t n, size_t off, bool shrunk_before,
                        const char *who)
{
	for (size_t i = 0; i < n; i++) {
		size_t p = off + i;
		unsigned char v = b[i], want = p < SMALL_SIZE ? OLD_B : 0;
		const char *why = NULL;

		if (v == FOREIGN_B)
			why = "another file's data";
		else if (v != 0 && v != OLD_B && v != NEW_B)
			why = "a byte nobody wrote";
		else if (v == 0 && p < SMALL_SIZE)
			why = "zeros below the shrunk size, where data was never truncated";
		else if (v == OLD_B && p >= SMALL_SIZE && shrunk_before)
			why = "the file's old data beyond the shrunk size, after a shrink returned";
		if (!why)
			continue;
		race_hit("%s at offset %zu: 0x%02x, %s", who, p, v, why);
		race_witness_bytes(who, p, &want, &v, 1);
		return false;
	}
	return true;
}

static void reader(struct race *r, struct race_rng *rng, unsigned id)
{
	static unsigned char bufs[READERS][MAX_IO];
	unsigned char *buf = bufs[id];

	while (!finished(r)) {
		size_t len = 1 + race_below(rng, MAX_IO);
		size_t off = race_below(rng, 4) == 0
		                 ? race_below(rng, FULL_SIZE)
		                 : SMALL_SIZE - 2 * PAGE + race_below(rng, FULL_SIZE - SMALL_SIZE);
		uint64_t before = race_phase_get(&r->phase), after, after2;
		unsigned long snap, started;
		bool clean;
		ssize_t n;

		n = pread(r->fd, buf, len, (off_t)off);
		after = race_phase_get(&r->phase);
		snap = load(&r->shrink_snap);
		clean = __atomic_load_n(&r->shrink_clean, __ATOMIC_SEQ_CST);
		started = load(&r->ext_started);
		after2 = race_phase_get(&r->phase);
		if (n < 0)
			tap_bail("pread of %zu at %zu: %s", len, off, strerror(errno));
		race_add(&r->reads);
		if (before != after)
			race_add(&r->straddled);
		if (before == after && after == after2 && (after & 3) == SHRUNK && clean &&
		    started == snap) {
			size_t limit = off < SMALL_SIZE ? SMALL_SIZE - off : 0;

			race_add(&r->bounded);
			if ((size_t)n > limit) {
				race_add(&r->bad_size);
				race_hit(
				    "pread of %zu at %zu returned %zd bytes, while the file was "
				    "%u bytes long throughout",
				    len, off, n, SMALL_SIZE);
			}
		}
		if (before == after && (after & 3) == GROWN) {
			size_t want = off + len <= FULL_SIZE ? len : FULL_SIZE - off;

			race_add(&r->grown_full);
			if ((size_t)n != want) {
				race_add(&r->bad_size);
				race_hit(
				    "pread of %zu at %zu returned %zd bytes, not %zu, while the "
				    "file was %u bytes long throughout",
				    len, off, n, want, FULL_SIZE);
			}
			if ((before >> 2) > 0 && off + (size_t)n > SMALL_SIZE)
				race_add(&r->regrown_data);
		}
		if (!check_bytes(buf, (size_t)n, off, (before >> 2) >= 2, "pread()"))
			race_add(&r->bad_data);
	}
}

/* A new file filled with FOREIGN_B; the blocks the truncate frees get reused.
 */
static void scribble(const char *name, size_t size)
{
	static unsigned char buf[SCRIBBLE_SIZE];
	int fd = daxenv_open_new(name);

	memset(buf, FOREIGN_B, sizeof(buf));
	for (size_t off = 0; off < size; off += sizeof(buf))
		daxenv_pwrite_all(fd, buf, size - off < sizeof(buf) ? size - off : sizeof(buf),
		                  (long long)off);
	close(fd);
}

/* The scribbler's file holds only FOREIGN_B; false (and a hit) if not. */
static bool scribble_intact(const char *name)
{
	static unsigned char buf[SCRIBBLE_SIZE];
	int fd = open(name, O_RDONLY);

	if (fd < 0)
		tap_bail("open %s: %s", name, strerror(errno));
	daxenv_pread_all(fd, buf, SCRIBBLE_SIZE, 0);
	close(fd);
	for (size_t i = 0; i < SCRIBBLE_SIZE; i++) {
		if (buf[i] != FOREIGN_B) {
			unsigned char want = FOREIGN_B;

			race_hit("%s at offset %zu holds 0x%02x, not its own 0x%02x", name, i,
			         buf[i], FOREIGN_B);
			race_witness_bytes(name, i, &want, &buf[i], 1);
			return false;
		}
	}
	return true;
}

static void scribbler(struct race *r)
{
	char name[32];
	unsigned n = 0;

	while (!finished(r)) {
		snprintf(name, sizeof(name), "scribble-%u", n % SCRIBBLE_KEEP);
		if (n >= SCRIBBLE_KEEP) {
			if (!scribble_intact(name))
				race_add(&r->bad_scribble);
			if (unlink(name))
				tap_bail("unlink %s: %s", name, strerror(errno));
		}
		scribble(name, SCRIBBLE_SIZE);
		if (!scribble_intact(name))
			race_add(&r->bad_scribble);
		race_add(&r->scribbles);
		n++;
	}
	for (unsigned i = 0; i < SCRIBBLE_KEEP && i < n; i++) {
		snprintf(name, sizeof(name), "scribble-%u", i);
		if (!scribble_intact(name))
			race_add(&r->bad_scribble);
		unlink(name);
	}
}

static void thread(unsigned id, void *arg)
{
	struct race *r = arg;
	struct race_rng rng;

	race_rng_init(&rng, race_seed() + r->round, id);
	switch (id) {
	case TRUNCATER:
		truncater(r, &rng);
		break;
	case WRITER:
		writer(r, &rng);
		break;
	case SCRIBBLER:
		scribbler(r);
		break;
	default:
		reader(r, &rng, id - FIRST_READER);
	}
}

/*
 * Free blocks that held another file's data, then the file afresh: every
 * byte OLD, every block allocated.
 */
static void setup_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static unsigned char buf[FULL_SIZE];

	r->round = round;
	scribble("other", 2 * FULL_SIZE);
	if (ftruncate(r->fd, 0))
		tap_bail("ftruncate 0: %s", strerror(errno));
	if (unlink("other"))
		tap_bail("unlink: %s", strerror(errno));
	memset(buf, OLD_B, sizeof(buf));
	daxenv_pwrite_all(r->fd, buf, FULL_SIZE, 0);
	r->phase = 0;
	r->done = false;
}

static void check_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static unsigned char buf[FULL_SIZE];

	(void)round;
	daxenv_pread_all(r->fd, buf, FULL_SIZE, 0);
	if (!check_bytes(buf, FULL_SIZE, 0, true, "read() after the round"))
		r->final_bad++;
}

int main(void)
{
	static struct race r;

	tap_plan(6);
	daxenv_tap_is_dax("probe");
	r.fd = daxenv_open_new("file");

	race_campaign(&(struct race_campaign){.name = "io-vs-truncate",
	                                      .rounds = DEFAULT_ROUNDS,
	                                      .threads = FIRST_READER + READERS,
	                                      .setup = setup_round,
	                                      .thread = thread,
	                                      .check = check_round},
	              &r);
	tap_diag("reads %lu (%lu overlapped a truncate, %lu bounded by the shrunk "
	         "size, %lu while "
	         "grown, %lu of them returned re-grown data), writes %lu, scribbled "
	         "files %lu",
	         r.reads, r.straddled, r.bounded, r.grown_full, r.regrown_data, r.writes,
	         r.scribbles);

	tap_ok(r.bad_data == 0, "reads return written bytes or zeros: no other "
	                        "file's data, no stale tail");
	tap_ok(r.bad_size == 0, "reads return no more bytes than i_size allowed, and not short");
	tap_ok(r.bad_scribble == 0, "other files hold only their own data");
	tap_ok(r.final_bad == 0, "the file read whole after every round holds written data");
	tap_ok(r.straddled > 0 && r.bounded > 0 && r.regrown_data > 0,
	       "the race ran: reads overlapped truncates, were bounded, read "
	       "re-grown data");
	close(r.fd);
	tap_finish();
}
