/*
 * stale-pmd - a 2 MiB hole read through a mapping, then written: the mapping sees the data
 *
 * A read fault of a hole (or of an unwritten extent) through a 2 MiB-aligned
 * DAX mapping maps the huge zero page (dax_pmd_load_hole) and leaves a
 * 2 MiB zero entry in the mapping's XArray. When write() or a write fault
 * later gives any page of that range a block, the kernel must tear the
 * huge zero page down from every mapping, or the mapping keeps showing
 * zeros over data: the bug fixed by "dax: fix PMD data corruption when
 * fault races with write" (the PMD form of the race the series' DAX fault
 * handler had to close: a fault that looked up a hole before a write
 * allocated it, then mapped the zero page after the write's invalidation).
 * The test range is the file's second 2 MiB (offset 2 MiB): on ext2 (block
 * map files) that is the only 2 MiB a hole lookup reports whole, inside the
 * range of the first indirect block.
 * Promises:
 *  - after the hole was read through the aligned mapping, pwrite() of the
 *    whole 2 MiB shows through that mapping and read();
 *  - ... pwrite() of one page in the middle shows that page through the
 *    mapping, and the rest of the 2 MiB still reads zeros;
 *  - ... stores through a second mapping (4 KiB faults, then 2 MiB
 *    faults) show through the first mapping;
 *  - racing: readers of the first mapping keep faulting the range (its
 *    page tables dropped often) while a writer pwrite()s pages into the
 *    hole; once a pwrite() has returned, every read of that page through
 *    the first mapping sees its data, never zeros or anything else;
 *  - no kernel warning (the agent's dmesg check).
 * Each is checked on a sparse file and on unwritten extents (fallocate,
 * where supported). The race ran if readers saw a page of the first
 * mapping turn from zeros to the written data while they read.
 *
 * run.sh --widen delays these kernel functions (guest-kernel/widen/):
 * daxlab-widen: dax_iomap_pmd_fault,dax_iomap_rw,unmap_mapping_pages
 * daxlab-groups: default series
 */
#include <errno.h>
#include <fcntl.h>
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
#define CHUNK (2u << 20)
#define FILE_SIZE (3 * CHUNK)
#define HOLE CHUNK /* offset of the 2 MiB under test */
#define HOLE_PAGES (CHUNK / PAGE)
#define WPP (PAGE / 8)
#define READERS 2u
#define WRITES 4u      /* pages the writer pwrite()s per round */
#define MAX_READS 4000 /* per reader and round */
#define ZAP_EVERY 8    /* reader loads between dropping the mapping's page tables */
#define DEFAULT_ROUNDS 40

#define NEW_TAG 0x5e00000000000000ull
#define TAG_MASK 0xff00000000000000ull

enum kind { SPARSE, UNWRITTEN };
static const char *const kind_name[] = {"sparse file", "unwritten extents"};

/* The value of the word at file offset @off in round @round's data. */
static uint64_t tag(unsigned round, uint64_t off)
{
	return NEW_TAG | (uint64_t)(round & 0xffff) << 32 | off;
}

static void fill(uint64_t *buf, size_t len, unsigned round, uint64_t off)
{
	for (size_t w = 0; w < len / 8; w++)
		buf[w] = tag(round, off + w * 8);
}

/* A mapping of the whole file at a 2 MiB-aligned address. */
static uint64_t *map_aligned(int fd, bool huge)
{
	size_t len = FILE_SIZE + CHUNK;
	char *r = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *p;

	if (r == MAP_FAILED)
		tap_bail("mmap reserve: %s", strerror(errno));
	p = (char *)(((uintptr_t)r + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
	if (mmap(p, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
		tap_bail("mmap: %s", strerror(errno));
	if (p > r)
		munmap(r, (size_t)(p - r));
	munmap(p + FILE_SIZE, (size_t)(r + len - (p + FILE_SIZE)));
	if (!huge && madvise(p, FILE_SIZE, MADV_NOHUGEPAGE) != 0)
		tap_bail("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	return (uint64_t *)p;
}

/* A new file with a 2 MiB hole (or unwritten extent) at HOLE; false if not possible. */
static bool make_file(const char *name, enum kind kind, int *fdp)
{
	int fd = daxenv_open_new(name);

	if (ftruncate(fd, FILE_SIZE) != 0)
		tap_bail("ftruncate: %s", strerror(errno));
	if (kind == UNWRITTEN && fallocate(fd, 0, HOLE, CHUNK) != 0) {
		if (errno != EOPNOTSUPP)
			tap_bail("fallocate: %s", strerror(errno));
		close(fd);
		unlink(name);
		return false;
	}
	*fdp = fd;
	return true;
}

/*
 * The mapping is checked on SAMPLE pages of the 2 MiB (every 16th, and the
 * page written alone), read() on all of it: each 4 KiB fault costs two
 * fs_dax trace lines that the agent ships over a serial line, and a huge
 * zero page left mapped shows on any page of its 2 MiB.
 */
#define ONE_PAGE 301u /* the page written alone */

static bool sampled(unsigned p)
{
	return p % 16 == 5 || p == ONE_PAGE;
}

/* Read the sampled pages of the hole through @m (the first fault maps 2 MiB). */
static bool read_hole(const uint64_t *m)
{
	uint64_t nonzero = 0;

	for (unsigned p = 0; p < HOLE_PAGES; p++) {
		if (sampled(p))
			nonzero |= m[(HOLE + p * PAGE) / 8 + p % WPP];
	}
	return nonzero == 0;
}

/*
 * The 2 MiB through read() (all of it) and @m (sampled pages) against
 * round @round's data on the pages where @data(page), zeros elsewhere.
 * Returns the first offset that differs, or -1; *how says where.
 */
static long check_hole(const uint64_t *m, int fd, unsigned round, bool (*data)(unsigned),
                       const char **how)
{
	static uint64_t buf[CHUNK / 8];

	daxenv_pread_all(fd, buf, CHUNK, HOLE);
	for (size_t w = 0; w < CHUNK / 8; w++) {
		unsigned p = (unsigned)(w / WPP);
		uint64_t off = HOLE + w * 8, want = data(p) ? tag(round, off) : 0;

		if (sampled(p) && m[off / 8] != want) {
			*how = "the first mapping";
			return (long)off;
		}
		if (buf[w] != want) {
			*how = "read()";
			return (long)off;
		}
	}
	return -1;
}

static bool all_pages(unsigned p)
{
	(void)p;
	return true;
}

static bool one_page(unsigned p)
{
	return p == ONE_PAGE;
}

static bool report(long bad, const char *how, const char *what)
{
	if (bad >= 0)
		tap_diag("%s: %s differs at offset %ld", what, how, bad);
	return bad < 0;
}

/* pwrite() of the whole 2 MiB after the read fault. */
static bool whole_pwrite(enum kind kind, unsigned id)
{
	static uint64_t buf[CHUNK / 8];
	const char *how = "";
	uint64_t *m;
	bool zeros;
	long bad;
	int fd;

	if (!make_file("whole", kind, &fd))
		return true;
	m = map_aligned(fd, true);
	zeros = read_hole(m);
	fill(buf, CHUNK, id, HOLE);
	daxenv_pwrite_all(fd, buf, CHUNK, HOLE);
	bad = check_hole(m, fd, id, all_pages, &how);
	munmap(m, FILE_SIZE);
	close(fd);
	unlink("whole");
	if (!zeros)
		tap_diag("%s: the hole did not read as zeros", kind_name[kind]);
	return zeros && report(bad, how, kind_name[kind]);
}

/* pwrite() of one page inside the 2 MiB after the read fault. */
static bool page_pwrite(enum kind kind, unsigned id)
{
	static uint64_t buf[PAGE / 8];
	const uint64_t at = HOLE + ONE_PAGE * PAGE;
	const char *how = "";
	uint64_t *m;
	bool zeros;
	long bad;
	int fd;

	if (!make_file("page", kind, &fd))
		return true;
	m = map_aligned(fd, true);
	zeros = read_hole(m);
	fill(buf, PAGE, id, at);
	daxenv_pwrite_all(fd, buf, PAGE, (long long)at);
	bad = check_hole(m, fd, id, one_page, &how);
	munmap(m, FILE_SIZE);
	close(fd);
	unlink("page");
	return zeros && report(bad, how, kind_name[kind]);
}

/*
 * Stores to the sampled pages through a second mapping (4 KiB faults, or
 * 2 MiB faults) after the read fault.
 */
static bool second_mapping(enum kind kind, bool huge, unsigned id)
{
	const char *how = "";
	uint64_t *m, *m2;
	bool zeros;
	long bad;
	int fd;

	if (!make_file("second", kind, &fd))
		return true;
	m = map_aligned(fd, true);
	zeros = read_hole(m);
	m2 = map_aligned(fd, huge);
	for (unsigned p = 0; p < HOLE_PAGES; p++) {
		if (sampled(p))
			fill(m2 + (HOLE + p * PAGE) / 8, PAGE, id, HOLE + p * PAGE);
	}
	bad = check_hole(m, fd, id, sampled, &how);
	munmap(m2, FILE_SIZE);
	munmap(m, FILE_SIZE);
	close(fd);
	unlink("second");
	return zeros && report(bad, how, kind_name[kind]);
}

/* ---- the race ---- */

struct race {
	int fd;
	uint64_t *map;
	unsigned round;
	unsigned pages[WRITES];       /* the pages the writer will pwrite(), in order */
	unsigned written[HOLE_PAGES]; /* set once the page's pwrite() returned */
	unsigned done;                /* the writer finished */
	/* what happened */
	unsigned long loads, zeros_seen, stale, flips, flip_rounds;
};

static void add(unsigned long *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static void check_load(struct race *r, unsigned page, size_t w, uint64_t v, unsigned was_written,
                       const char *who)
{
	uint64_t want = tag(r->round, (uint64_t)w * 8);

	if (v == want || (!was_written && v == 0))
		return;
	add(&r->stale);
	race_hit("%s: page %u of the hole, offset %zu: read 0x%016llx through the first mapping "
	         "%s its pwrite() returned",
	         who, page, w * 8, (unsigned long long)v, was_written ? "after" : "before");
	race_witness_bytes("first mapping", (uint64_t)w * 8, &want, &v, 8);
}

static void writer(struct race *r, struct race_rng *rng)
{
	static uint64_t buf[PAGE / 8];
	const unsigned *pages = r->pages;

	for (unsigned k = 0; k < WRITES; k++) {
		uint64_t off = HOLE + (uint64_t)pages[k] * PAGE;
		size_t w = off / 8 + race_below(rng, WPP);
		uint64_t v = 0;

		race_jitter(rng, k ? 20000 : 400000);
		fill(buf, PAGE, r->round, off);
		daxenv_pwrite_all(r->fd, buf, PAGE, (long long)off);
		__atomic_store_n(&r->written[pages[k]], 1, __ATOMIC_SEQ_CST);
		if (race_load(&r->map[w], &v, 8))
			race_hit("writer: signal loading offset %zu", w * 8);
		else
			check_load(r, pages[k], w, v, 1, "writer");
	}
	__atomic_store_n(&r->done, 1, __ATOMIC_SEQ_CST);
}

static void reader(struct race *r, struct race_rng *rng, unsigned id)
{
	/* pages this reader saw as zeros before their pwrite() returned */
	static _Thread_local bool saw_zero[HOLE_PAGES];
	bool flipped = false;

	memset(saw_zero, 0, sizeof(saw_zero));
	for (unsigned i = 0; i < MAX_READS && !__atomic_load_n(&r->done, __ATOMIC_SEQ_CST); i++) {
		/* mostly the pages being written, some of 16 others */
		unsigned page = race_below(rng, 4) ? r->pages[race_below(rng, WRITES)]
		                                   : race_below(rng, 16) * (HOLE_PAGES / 16) + 7;
		size_t w = (HOLE + (size_t)page * PAGE) / 8 + race_below(rng, WPP);
		unsigned was = __atomic_load_n(&r->written[page], __ATOMIC_SEQ_CST);
		uint64_t v = 0;
		int sig;

		/*
		 * Refault the 2 MiB often until the first pwrite() returned (the
		 * race with the huge zero page), then no more: the range is no
		 * longer a 2 MiB hole, and 4 KiB faults only flood the trace.
		 */
		if (i % ZAP_EVERY == 0 &&
		    !__atomic_load_n(&r->written[r->pages[0]], __ATOMIC_RELAXED))
			madvise((char *)r->map + HOLE, CHUNK, MADV_DONTNEED);
		sig = race_load(&r->map[w], &v, 8);
		add(&r->loads);
		if (sig) {
			add(&r->stale);
			race_hit("reader %u: signal %d loading offset %zu", id, sig, w * 8);
			continue;
		}
		check_load(r, page, w, v, was, "reader");
		if (v == 0) {
			add(&r->zeros_seen);
			saw_zero[page] = true;
		} else if (saw_zero[page] && (v & TAG_MASK) == NEW_TAG) {
			add(&r->flips);
			flipped = true;
		}
	}
	if (flipped)
		add(&r->flip_rounds);
}

/* WRITES distinct pages of the hole for this round's writer. */
static void pick_pages(struct race *r)
{
	struct race_rng rng;

	race_rng_init(&rng, race_seed() + r->round, 1000);
	for (unsigned k = 0; k < WRITES; k++) {
		bool dup;

		do {
			r->pages[k] = race_below(&rng, HOLE_PAGES);
			dup = false;
			for (unsigned j = 0; j < k; j++)
				dup |= r->pages[j] == r->pages[k];
		} while (dup);
	}
}

static void thread(unsigned id, void *arg)
{
	struct race *r = arg;
	struct race_rng rng;

	race_rng_init(&rng, race_seed() + r->round, id);
	if (id == 0)
		writer(r, &rng);
	else
		reader(r, &rng, id);
}

int main(void)
{
	static struct race r;
	unsigned rounds = race_iterations(DEFAULT_ROUNDS);
	bool whole = true, page = true, second = true, unwritten = true;
	long holes0, holes1, holes2, fb0, fb2;
	unsigned kinds[2] = {0, 0};

	tap_plan(6);
	daxenv_tap_is_dax("probe");

	holes0 = daxenv_trace_count("dax_pmd_load_hole");
	fb0 = daxenv_trace_count("dax_pmd_load_hole_fallback");
	for (unsigned k = SPARSE; k <= UNWRITTEN; k++) {
		int fd;

		if (k == UNWRITTEN) {
			if (!make_file("probe-falloc", UNWRITTEN, &fd)) {
				tap_diag("fallocate: %s; unwritten extents not tested",
				         strerror(EOPNOTSUPP));
				unwritten = false;
				break;
			}
			close(fd);
			unlink("probe-falloc");
		}
		whole &= whole_pwrite(k, 1);
		page &= page_pwrite(k, 2);
		second &= second_mapping(k, false, 3);
		second &= second_mapping(k, true, 4);
	}
	holes1 = daxenv_trace_count("dax_pmd_load_hole");
	if (holes1 >= 0)
		tap_diag("fs_dax events in the sequential checks: dax_pmd_load_hole=%ld "
		         "dax_pmd_load_hole_fallback=%ld",
		         holes1 - holes0, daxenv_trace_count("dax_pmd_load_hole_fallback") - fb0);
	tap_ok(whole, "pwrite() of a read-faulted 2 MiB hole shows through its mapping and read()");
	tap_ok(page, "pwrite() of one page of a read-faulted 2 MiB hole shows through its mapping; "
	             "the rest reads zeros");
	tap_ok(second, "stores through a second mapping (4 KiB or 2 MiB faults) show through the "
	               "mapping that read-faulted the 2 MiB hole");

	race_begin("stale-pmd", rounds, race_seed());
	for (unsigned i = 0; i < rounds; i++) {
		enum kind kind = unwritten && i % 2 ? UNWRITTEN : SPARSE;
		char name[32];

		r.round = i + 1;
		race_round(i);
		snprintf(name, sizeof(name), "f%u", i);
		if (!make_file(name, kind, &r.fd))
			tap_bail("fallocate stopped working");
		kinds[kind]++;
		r.map = map_aligned(r.fd, true);
		memset(r.written, 0, sizeof(r.written));
		pick_pages(&r);
		r.done = 0;
		race_threads(1 + READERS, thread, &r);
		munmap(r.map, FILE_SIZE);
		close(r.fd);
		unlink(name);
	}
	race_end();
	holes2 = daxenv_trace_count("dax_pmd_load_hole");
	fb2 = daxenv_trace_count("dax_pmd_load_hole_fallback");
	tap_diag("rounds: %u on a sparse file, %u on unwritten extents; reader loads %lu, zeros "
	         "seen %lu, pages seen turning from zeros to data %lu (by %lu readers' rounds)",
	         kinds[SPARSE], kinds[UNWRITTEN], r.loads, r.zeros_seen, r.flips, r.flip_rounds);
	if (holes2 >= 0)
		tap_diag("fs_dax events while racing: dax_pmd_load_hole=%ld "
		         "dax_pmd_load_hole_fallback=%ld",
		         holes2 - holes1, fb2 - fb0);
	tap_ok(r.stale == 0, "once pwrite() returned, readers of the first mapping see its data");
	tap_ok(r.flip_rounds > 0,
	       "the race ran: readers saw pages of the mapping turn from zeros to the data");
	tap_finish();
}
