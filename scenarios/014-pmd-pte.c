/*
 * pmd-pte - 4 KiB and 2 MiB faults of one file range racing, with read() and write()
 *
 * DAX maps a file's blocks straight into page tables, 4 KiB at a time or,
 * when the file's extent and the mapping are both 2 MiB-aligned, with one
 * PMD (dax_iomap_pmd_fault). The two sizes share one XArray entry per
 * index: a 2 MiB entry must make 4 KiB faults of the range use its block, a
 * 4 KiB entry must make 2 MiB faults fall back, and a 2 MiB huge zero page
 * (a hole or an unwritten extent read through the aligned mapping) must be
 * torn down from every mapping when a 4 KiB write fault allocates a block
 * in its range. A broken entry protocol shows as two mappings of one file
 * offset that reach different storage, or a zero page left over data. This
 * is the fault handler of the series ("Replace the XIP page fault handler
 * with the DAX page fault handler") grown its PMD path.
 *
 * Each round makes a new file of two 2 MiB chunks with 2 MiB-aligned
 * extents where the filesystem gives them (xfs: extent size hint 2 MiB,
 * fallocate, then FALLOC_FL_COLLAPSE_RANGE to bring the extent onto a
 * 2 MiB boundary; checked with FIEMAP), and maps it twice: mapping A with
 * MADV_NOHUGEPAGE (only 4 KiB faults) and mapping B at a 2 MiB-aligned
 * address (2 MiB faults). Rounds take turns: written data, unwritten
 * extents (fallocate only), a sparse file; plain MAP_SHARED and, where the
 * filesystem has it, MAP_SHARED_VALIDATE|MAP_SYNC. Before the threads
 * start, chunk 0 is read through B (a 2 MiB mapping or huge zero page);
 * chunk 1 goes to whoever faults first. Three threads own distinct 8-byte
 * words in every page; they touch a few pages of each chunk (HOT): one
 * through A, one sweeping both chunks through B (dropping B's page tables
 * after each sweep so it faults again), one with pwrite()/pread().
 * Promises:
 *  - a word reads what its owner last stored, through A, B or read(), and
 *    a store through one mapping shows through the other at once;
 *  - once pwrite() has returned, A and B show its data. Seen broken on
 *    6.1 (ext4, xfs, ext2), a few rounds in a hundred: a write fault of
 *    another thread has allocated the block over a hole and not yet
 *    inserted its entry, write() finds the block allocated (no
 *    IOMAP_F_NEW), so nothing tears down the zero page a mapping still
 *    has for the page until the fault inserts its entry: for that while
 *    the mapping shows zeros over data write() has returned
 *    (zero-page-vs-pwrite reproduces it alone). A stale view is reported
 *    as that known kernel window (race_known: a diagnostic, a hit with
 *    run.sh --strict) only if the mapping showed zeros where the word
 *    held zeros before the pwrite() (a hole or unwritten extent read
 *    through the zero page), a store of another thread on that page
 *    (through B: anywhere in the page's 2 MiB chunk, whose huge zero page
 *    B may map) began before pwrite() returned and had not returned when
 *    the load began, and the mapping shows the data once no store is in
 *    flight there, with no MADV_DONTNEED of a mapping in between (they
 *    wait meanwhile). A second window, seen on 6.12: a store through B
 *    returns while A still shows the zero page, because a pwrite() of the
 *    page that allocated the block (IOMAP_F_NEW: a hole, or an unwritten
 *    extent on xfs) removed the clean zero entry and has not yet unmapped
 *    the range, so the fault found no zero entry to unmap
 *    (zero-page-vs-pwrite and docs/zero-page-vs-pwrite/ have the details).
 *    Recognised only if A showed zeros where the word held zeros, a
 *    pwrite() of the page was in flight when the load began, and A shows
 *    the store once it returned. Any other stale view is a hit;
 *  - no access inside the file gets a signal;
 *  - at the end of every round read() of the file, and A and B on the
 *    pages the threads touched, hold exactly what the owners stored (the
 *    file's initial data or zeros elsewhere);
 *  - the same with MAP_SYNC mappings (skipped where not supported);
 *  - 2 MiB faults really mapped 2 MiB (fs_dax dax_pmd_fault_done) where
 *    FIEMAP showed 2 MiB-aligned extents (skipped where none were made);
 *  - no kernel warning (the agent's dmesg check).
 * The race ran if both 4 KiB and 2 MiB faults fired while the threads ran
 * and stores were checked through the other mapping.
 *
 * daxlab-groups: default series
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/race.h"
#include "lib/tap.h"

#define PAGE 4096u
#define CHUNK (2u << 20)
#define NCHUNKS 2u
#define FILE_SIZE (NCHUNKS * CHUNK)
#define NPAGES (FILE_SIZE / PAGE)
#define WPP (PAGE / 8) /* words per page */
#define NWORDS (FILE_SIZE / 8)
#define THREADS 3u
/*
 * The threads touch HOT pages of each chunk (the sweeps also the first and
 * last page of each chunk): every 4 KiB fault costs two fs_dax trace lines
 * that the agent ships over a serial line, so few pages are faulted.
 */
#define HOT 12u
#define NHOT (NCHUNKS * HOT)
#define PTE_ACCESSES 1200 /* thread 0, per round */
#define SWEEPS 4          /* thread 1, per round */
#define IO_ACCESSES 300   /* thread 2, per round */
#define DEFAULT_ROUNDS 12
#define SETTLE_NS 1000000000ull /* at most this long for a page's stores to end */

#define OLD_TAG 0xd100000000000000ull
#define NEW_TAG 0x5e00000000000000ull

enum kind { DATA, UNWRITTEN, SPARSE };
static const char *const kind_name[] = {"data", "unwritten", "sparse"};

struct race {
	int fd;
	uint64_t *a; /* 4 KiB faults only */
	uint64_t *b; /* 2 MiB-aligned */
	unsigned round;
	unsigned hot[NHOT];      /* the pages the threads touch this round */
	uint64_t shadow[NWORDS]; /* what the owner of each word last stored */
	/* stores started and returned, per page and, through B, per chunk */
	unsigned long starts[NPAGES], ends[NPAGES];
	unsigned long b_starts[NCHUNKS], b_ends[NCHUNKS];
	/* MADV_DONTNEED of a mapping: done, under way; held off while settling */
	unsigned long drops, drops_busy, settling;
	/* what happened */
	unsigned long loads, stores, cross, signals, incoherent, pwrite_stale, end_incoherent;
	unsigned long windows; /* the known window, seen */
	uint64_t window_ns;    /* its longest stale view */
	/* pwrite()s started and returned, per page; the second window */
	unsigned long io_starts[NPAGES], io_ends[NPAGES];
	unsigned long windows2;
	uint64_t window2_ns;
};

static void add(unsigned long *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* ---- files with 2 MiB-aligned extents ---- */

/* Extent size hint (xfs); other filesystems refuse it, which is fine. */
static void set_extsize(int fd)
{
	struct fsxattr fa;

	if (ioctl(fd, FS_IOC_FSGETXATTR, &fa) != 0)
		return;
	fa.fsx_xflags |= FS_XFLAG_EXTSIZE;
	fa.fsx_extsize = CHUNK;
	if (ioctl(fd, FS_IOC_FSSETXATTR, &fa) != 0)
		return;
}

#define MAX_EXTENTS 64u

/* The file's extents; returns how many, -1 if FIEMAP is not there. */
static int fiemap(int fd, struct fiemap_extent *ext)
{
	static union {
		struct fiemap fm;
		char space[sizeof(struct fiemap) + MAX_EXTENTS * sizeof(struct fiemap_extent)];
	} u;

	memset(&u, 0, sizeof(u));
	u.fm.fm_start = 0;
	u.fm.fm_length = FIEMAP_MAX_OFFSET;
	u.fm.fm_flags = FIEMAP_FLAG_SYNC;
	u.fm.fm_extent_count = MAX_EXTENTS;
	if (ioctl(fd, FS_IOC_FIEMAP, &u.fm) != 0)
		return -1;
	memcpy(ext, u.fm.fm_extents, u.fm.fm_mapped_extents * sizeof(*ext));
	return (int)u.fm.fm_mapped_extents;
}

/* Physical byte of file offset @off, or -1 if none. */
static long long phys_of(const struct fiemap_extent *ext, int n, unsigned long long off)
{
	for (int i = 0; i < n; i++) {
		if (off >= ext[i].fe_logical && off < ext[i].fe_logical + ext[i].fe_length)
			return (long long)(ext[i].fe_physical + (off - ext[i].fe_logical));
	}
	return -1;
}

/* Chunks of the file that sit on one 2 MiB-aligned, contiguous run of blocks.
 */
static unsigned aligned_chunks(int fd)
{
	struct fiemap_extent ext[MAX_EXTENTS];
	int n = fiemap(fd, ext);
	unsigned count = 0;

	for (unsigned c = 0; n > 0 && c < NCHUNKS; c++) {
		long long base = phys_of(ext, n, (unsigned long long)c * CHUNK);
		bool ok = base >= 0 && base % CHUNK == 0;

		for (unsigned p = 0; ok && p < CHUNK / PAGE; p++)
			ok = phys_of(ext, n, (unsigned long long)c * CHUNK + p * PAGE) ==
			     base + p * PAGE;
		count += ok;
	}
	return count;
}

/*
 * Allocate FILE_SIZE (+ a chunk) with fallocate and, if the first extent
 * does not start on a 2 MiB boundary of the device, collapse the head of
 * the file so that it does. False if fallocate is not supported.
 */
static bool allocate_aligned(int fd)
{
	struct fiemap_extent ext[MAX_EXTENTS];
	int n;

	if (fallocate(fd, 0, 0, FILE_SIZE + CHUNK) != 0) {
		if (errno == EOPNOTSUPP)
			return false;
		tap_bail("fallocate: %s", strerror(errno));
	}
	n = fiemap(fd, ext);
	if (n > 0 && ext[0].fe_logical == 0 && ext[0].fe_physical % CHUNK) {
		unsigned long long skip = CHUNK - ext[0].fe_physical % CHUNK;

		if (fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, (off_t)skip) != 0 &&
		    errno != EOPNOTSUPP && errno != EINVAL)
			tap_bail("collapse range: %s", strerror(errno));
	}
	if (ftruncate(fd, FILE_SIZE) != 0)
		tap_bail("ftruncate: %s", strerror(errno));
	return true;
}

/* ---- mappings ---- */

static void *map_at(void *addr, int fd, int flags)
{
	void *p =
	    mmap(addr, FILE_SIZE, PROT_READ | PROT_WRITE, flags | (addr ? MAP_FIXED : 0), fd, 0);

	if (p == MAP_FAILED)
		tap_bail("mmap: %s", strerror(errno));
	return p;
}

/* A mapping at a 2 MiB-aligned address: reserve more, map over the aligned
 * part. */
static void *map_aligned(int fd, int flags)
{
	size_t len = FILE_SIZE + 2 * CHUNK;
	char *r = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *p;

	if (r == MAP_FAILED)
		tap_bail("mmap reserve: %s", strerror(errno));
	p = (char *)(((uintptr_t)r + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
	map_at(p, fd, flags);
	if (p > r)
		munmap(r, (size_t)(p - r));
	munmap(p + FILE_SIZE, (size_t)(r + len - (p + FILE_SIZE)));
	return p;
}

/* 1 if MAP_SYNC mappings of DAX files work here, else 0 (@why says why). */
static int map_sync_supported(const char **why)
{
	int fd = daxenv_open_new("sync-probe");
	void *p;

	if (ftruncate(fd, PAGE) != 0)
		tap_bail("ftruncate: %s", strerror(errno));
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
	close(fd);
	unlink("sync-probe");
	if (p == MAP_FAILED) {
		*why = strerror(errno);
		return 0;
	}
	munmap(p, PAGE);
	return 1;
}

/* ---- the race ---- */

static size_t own_word(struct race_rng *rng, unsigned id, unsigned page)
{
	return (size_t)page * WPP + race_below(rng, WPP / THREADS) * THREADS + id;
}

static uint64_t new_value(struct race *r, unsigned id, unsigned long n)
{
	return NEW_TAG | (uint64_t)id << 52 | (uint64_t)(r->round & 0xfff) << 40 |
	       (n & 0xffffffffffull);
}

static unsigned long get(const unsigned long *c)
{
	return __atomic_load_n(c, __ATOMIC_SEQ_CST);
}

/* A word read @how must be what its owner stored last. */
static void expect(struct race *r, size_t w, uint64_t seen, const char *how)
{
	uint64_t want = r->shadow[w];

	if (seen == want)
		return;
	add(&r->incoherent);
	race_hit("offset %zu: %s read 0x%016llx, its owner last stored 0x%016llx", w * 8, how,
	         (unsigned long long)seen, (unsigned long long)want);
	race_witness_bytes(how, w * 8, &want, &seen, 8);
}

static void load(struct race *r, uint64_t *map, size_t w, const char *how)
{
	uint64_t v = 0;
	int sig = race_load(&map[w], &v, 8);

	add(&r->loads);
	if (sig) {
		add(&r->signals);
		race_hit("signal %d loading offset %zu through %s", sig, w * 8, how);
		return;
	}
	expect(r, w, v, how);
}

static void store(struct race *r, uint64_t *map, size_t w, uint64_t v, const char *how)
{
	unsigned page = (unsigned)(w / WPP), chunk = page / (CHUNK / PAGE);
	int sig;

	__atomic_fetch_add(&r->starts[page], 1, __ATOMIC_SEQ_CST);
	if (map == r->b)
		__atomic_fetch_add(&r->b_starts[chunk], 1, __ATOMIC_SEQ_CST);
	sig = race_store(&map[w], &v, 8);
	if (map == r->b)
		__atomic_fetch_add(&r->b_ends[chunk], 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&r->ends[page], 1, __ATOMIC_SEQ_CST);
	add(&r->stores);
	if (sig) {
		add(&r->signals);
		race_hit("signal %d storing offset %zu through %s", sig, w * 8, how);
		return;
	}
	r->shadow[w] = v;
}

/* MADV_DONTNEED of @map, but not while io_thread settles a stale view. */
static void drop(struct race *r, void *map)
{
	for (;;) {
		__atomic_fetch_add(&r->drops_busy, 1, __ATOMIC_SEQ_CST);
		if (!get(&r->settling))
			break;
		__atomic_fetch_sub(&r->drops_busy, 1, __ATOMIC_SEQ_CST);
		sched_yield();
	}
	madvise(map, FILE_SIZE, MADV_DONTNEED);
	__atomic_fetch_add(&r->drops, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_sub(&r->drops_busy, 1, __ATOMIC_SEQ_CST);
}

/*
 * True once no store is in flight on @page (and, if @chunk_too, through B
 * in its chunk): the returns were read before the starts and match them.
 */
static bool quiet(struct race *r, unsigned page, bool chunk_too)
{
	unsigned chunk = page / (CHUNK / PAGE);
	unsigned long e = get(&r->ends[page]), be = get(&r->b_ends[chunk]);

	return get(&r->starts[page]) == e && (!chunk_too || get(&r->b_starts[chunk]) == be);
}

/*
 * The load through @map (B if @is_b) of word @w right after pwrite() of
 * @v returned; the word held @prev before. @starts and @b_starts were read
 * just after pwrite() returned. A stale view is the known 6.1 window only
 * as the top of the file says; anything else is a hit.
 */
static void after_pwrite(struct race *r, uint64_t *map, bool is_b, size_t w, uint64_t v,
                         uint64_t prev, unsigned long starts, unsigned long b_starts)
{
	const char *how =
	    is_b ? "mapping B (2 MiB), after pwrite()" : "mapping A (4 KiB), after pwrite()";
	unsigned page = (unsigned)(w / WPP), chunk = page / (CHUNK / PAGE);
	unsigned long drops = get(&r->drops), ends = get(&r->ends[page]);
	unsigned long b_ends = get(&r->b_ends[chunk]);
	uint64_t seen = 0, again = 0, t0, dt;
	bool in_flight, settled = false;
	int sig = race_load(&map[w], &seen, 8);

	add(&r->loads);
	if (sig) {
		add(&r->signals);
		race_hit("signal %d loading offset %zu through %s", sig, w * 8, how);
		return;
	}
	if (seen == v)
		return;
	/* a store began before pwrite() returned and had not returned at the load */
	in_flight = starts > ends || (is_b && b_starts > b_ends);
	if (seen == 0 && prev == 0 && in_flight) {
		__atomic_store_n(&r->settling, 1, __ATOMIC_SEQ_CST);
		t0 = race_now_ns();
		while (get(&r->drops_busy) && race_now_ns() - t0 < SETTLE_NS)
			sched_yield();
		while (!quiet(r, page, is_b) && race_now_ns() - t0 < SETTLE_NS)
			sched_yield();
		settled = quiet(r, page, is_b) && !race_load(&map[w], &again, 8) && again == v &&
		          get(&r->drops) == drops;
		__atomic_store_n(&r->settling, 0, __ATOMIC_SEQ_CST);
		dt = race_now_ns() - t0;
	}
	if (settled) {
		add(&r->windows);
		if (dt > r->window_ns)
			r->window_ns = dt;
		if (!race_known("offset %zu: %s showed the zero page until a racing store's "
		                "write fault on the page ended (%.3f ms)",
		                w * 8, how, (double)dt / 1e6))
			return;
	} else {
		race_hit("offset %zu: %s read 0x%016llx, pwrite() of 0x%016llx had returned "
		         "(before it: 0x%016llx; a store %s in flight)",
		         w * 8, how, (unsigned long long)seen, (unsigned long long)v,
		         (unsigned long long)prev, in_flight ? "was" : "was not");
	}
	add(&r->pwrite_stale);
	race_witness_bytes(how, w * 8, &v, &seen, 8);
}

/*
 * The load through A of word @w right after thread 1's store through B
 * returned; the word held @prev before. The second known window (6.12, see
 * the top) only if A showed zeros where the word held zeros, a pwrite() of
 * the page had begun before the load and not returned by its end, and A
 * shows the store once that pwrite() returned (with no MADV_DONTNEED of a
 * mapping under way or done in between); anything else is expect()'s hit.
 */
static void load_after_b_store(struct race *r, size_t w, uint64_t prev)
{
	const char *how = "mapping A (4 KiB), after a store through B";
	unsigned page = (unsigned)(w / WPP);
	unsigned long drops = get(&r->drops), busy = get(&r->drops_busy);
	unsigned long io_s = get(&r->io_starts[page]), io_e;
	uint64_t seen = 0, again = 0, t0, dt;
	int sig = race_load(&r->a[w], &seen, 8);

	io_e = get(&r->io_ends[page]); /* the pwrite() had not returned by the load's end */

	add(&r->loads);
	if (sig) {
		add(&r->signals);
		race_hit("signal %d loading offset %zu through %s", sig, w * 8, how);
		return;
	}
	if (seen == r->shadow[w] || seen != 0 || prev != 0 || io_s <= io_e || busy) {
		expect(r, w, seen, how);
		return;
	}
	t0 = race_now_ns();
	while (get(&r->io_ends[page]) < io_s && race_now_ns() - t0 < SETTLE_NS)
		sched_yield();
	/* settled by the pwrite() returning, not by a MADV_DONTNEED of A */
	if (get(&r->io_ends[page]) < io_s || race_load(&r->a[w], &again, 8) ||
	    again != r->shadow[w] || get(&r->drops) != drops || get(&r->drops_busy)) {
		expect(r, w, seen, how);
		return;
	}
	dt = race_now_ns() - t0;
	add(&r->windows2);
	if (dt > r->window2_ns)
		r->window2_ns = dt;
	if (!race_known("offset %zu: %s showed the zero page while a pwrite() of the page was "
	                "in flight (%.3f ms)",
	                w * 8, how, (double)dt / 1e6))
		return;
	add(&r->incoherent);
	race_witness_bytes(how, w * 8, &r->shadow[w], &seen, 8);
}

static void io_read(struct race *r, size_t w)
{
	uint64_t v;

	daxenv_pread_all(r->fd, &v, 8, (long long)w * 8);
	expect(r, w, v, "read()");
}

/* Thread 0: random pages through A (4 KiB faults), checked through B and
 * read(). */
static void pte_thread(struct race *r, struct race_rng *rng)
{
	for (unsigned i = 0; i < PTE_ACCESSES; i++) {
		size_t w = own_word(rng, 0, r->hot[race_below(rng, NHOT)]);

		switch (race_below(rng, 4)) {
		case 0:
		case 1:
			store(r, r->a, w, new_value(r, 0, i), "mapping A (4 KiB)");
			load(r, r->b, w, "mapping B (2 MiB), after a store through A");
			add(&r->cross);
			break;
		case 2:
			load(r, r->a, w, "mapping A (4 KiB)");
			break;
		default:
			load(r, r->a, w, "mapping A (4 KiB)");
			io_read(r, w);
			break;
		}
		if (race_below(rng, 400) == 0)
			drop(r, r->a);
	}
}

/* The pages a sweep touches: chunk @c's first (j = 0), HOT pages, last (HOT + 1). */
static unsigned touched_page(const struct race *r, unsigned c, unsigned j)
{
	if (j == 0)
		return c * (CHUNK / PAGE);
	if (j == HOT + 1)
		return (c + 1) * (CHUNK / PAGE) - 1;
	return r->hot[c * HOT + j - 1];
}

/* Thread 1: sweeps the whole range through B (2 MiB faults), checked through A.
 */
static void pmd_thread(struct race *r, struct race_rng *rng)
{
	unsigned long n = 0;

	for (unsigned s = 0; s < SWEEPS; s++) {
		unsigned first = race_below(rng, NCHUNKS);

		for (unsigned k = 0; k < NCHUNKS * (HOT + 2); k++) {
			unsigned c = (first + k / (HOT + 2)) % NCHUNKS, j = k % (HOT + 2);
			unsigned page = touched_page(r, c, j);
			size_t w = own_word(rng, 1, page);

			if (j && j <= HOT && race_below(rng, 2)) {
				uint64_t prev = r->shadow[w];

				store(r, r->b, w, new_value(r, 1, n++), "mapping B (2 MiB)");
				load_after_b_store(r, w, prev);
				add(&r->cross);
			} else {
				load(r, r->b, w, "mapping B (2 MiB)");
			}
		}
		drop(r, r->b);
	}
}

/* Thread 2: pwrite() and pread(), checked through both mappings. */
static void io_thread(struct race *r, struct race_rng *rng)
{
	for (unsigned i = 0; i < IO_ACCESSES; i++) {
		size_t w = own_word(rng, 2, r->hot[race_below(rng, NHOT)]);

		if (race_below(rng, 2)) {
			uint64_t v = new_value(r, 2, i), prev = r->shadow[w];
			unsigned page = (unsigned)(w / WPP);
			unsigned long starts, b_starts;

			__atomic_fetch_add(&r->io_starts[page], 1, __ATOMIC_SEQ_CST);
			daxenv_pwrite_all(r->fd, &v, 8, (long long)w * 8);
			__atomic_fetch_add(&r->io_ends[page], 1, __ATOMIC_SEQ_CST);
			starts = get(&r->starts[page]);
			b_starts = get(&r->b_starts[page / (CHUNK / PAGE)]);
			r->shadow[w] = v;
			after_pwrite(r, r->a, false, w, v, prev, starts, b_starts);
			after_pwrite(r, r->b, true, w, v, prev, starts, b_starts);
			add(&r->cross);
		} else {
			io_read(r, w);
		}
		race_jitter(rng, 2000);
	}
}

static void thread(unsigned id, void *arg)
{
	struct race *r = arg;
	struct race_rng rng;

	race_rng_init(&rng, race_seed() + r->round, id);
	race_jitter(&rng, 20000);
	if (id == 0)
		pte_thread(r, &rng);
	else if (id == 1)
		pmd_thread(r, &rng);
	else
		io_thread(r, &rng);
}

static void check_word(struct race *r, size_t w, uint64_t seen, const char *how, bool *bad)
{
	uint64_t want = r->shadow[w];

	if (*bad || seen == want)
		return;
	*bad = true;
	r->end_incoherent++;
	race_hit("end of round, offset %zu: %s holds 0x%016llx, expected 0x%016llx", w * 8, how,
	         (unsigned long long)seen, (unsigned long long)want);
	race_witness_bytes(how, w * 8, &want, &seen, 8);
}

/*
 * read() of the whole file, and A and B on the pages the threads touched
 * (the others hold what read() checked; faulting them all would flood the
 * trace), against what the owners stored.
 */
static void check_round(struct race *r)
{
	static uint64_t buf[NWORDS];
	bool bad_read = false, bad_a = false, bad_b = false;

	daxenv_pread_all(r->fd, buf, FILE_SIZE, 0);
	for (size_t w = 0; w < NWORDS; w++)
		check_word(r, w, buf[w], "read()", &bad_read);
	for (unsigned k = 0; k < NCHUNKS * (HOT + 2); k++) {
		unsigned page = touched_page(r, k / (HOT + 2), k % (HOT + 2));

		for (size_t w = (size_t)page * WPP; w < (size_t)(page + 1) * WPP; w++) {
			check_word(r, w, r->a[w], "mapping A (4 KiB)", &bad_a);
			check_word(r, w, r->b[w], "mapping B (2 MiB)", &bad_b);
		}
	}
}

/*
 * fs_dax events in the trace buffer (the agent enables fs_dax around each
 * scenario). A 2 MiB fault that mapped 2 MiB ends in dax_pmd_fault_done
 * NOPAGE (or NEEDDSYNC under MAP_SYNC, mapped once the fsync is done);
 * 6.1 has no event of its own for it, so the huge zero page ones
 * (dax_pmd_load_hole, NOPAGE too) are subtracted.
 */
struct events {
	long pte, pmd, pmd_mapped, pmd_fallback, pmd_holes;
};

static bool trace_events(struct events *e)
{
	static const char *const paths[] = {"/sys/kernel/tracing/trace",
	                                    "/sys/kernel/debug/tracing/trace"};
	char line[1024];
	FILE *f = NULL;

	memset(e, 0, sizeof(*e));
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && !f; i++)
		f = fopen(paths[i], "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		if (strstr(line, " dax_pte_fault:"))
			e->pte++;
		else if (strstr(line, " dax_pmd_fault:"))
			e->pmd++;
		else if (strstr(line, " dax_pmd_load_hole:"))
			e->pmd_holes++;
		else if (strstr(line, " dax_pmd_fault_done:") && strstr(line, "FALLBACK"))
			e->pmd_fallback++;
		else if (strstr(line, " dax_pmd_fault_done:") &&
		         (strstr(line, "NOPAGE") || strstr(line, "NEEDDSYNC")))
			e->pmd_mapped++;
	}
	fclose(f);
	e->pmd_mapped -= e->pmd_holes;
	return true;
}

#define PMD_POINT "2 MiB faults mapped 2 MiB of 2 MiB-aligned extents (fs_dax trace)"
#define RAN_POINT                                                                                  \
	"the race ran: 4 KiB and 2 MiB faults while the threads ran, stores checked through the "  \
	"other mapping"

int main(void)
{
	static struct race r;
	static uint64_t buf[NWORDS];
	unsigned rounds = race_iterations(DEFAULT_ROUNDS);
	unsigned aligned_rounds = 0, layout_rounds = 0, sync_rounds = 0, sync_hits = 0;
	struct events e0, e1;
	bool traced;
	const char *sync_why = "";
	bool falloc = true, thp;
	int sync_ok;

	tap_plan(8);
	daxenv_tap_is_dax("probe");
	sync_ok = map_sync_supported(&sync_why);
	if (!sync_ok)
		tap_diag("MAP_SYNC mappings not supported here: %s", sync_why);
	thp = access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0;
	if (!thp)
		tap_diag("no /sys/kernel/mm/transparent_hugepage: the kernel has no PMD "
		         "mappings");

	traced = trace_events(&e0);
	race_begin("pmd-pte", rounds, race_seed());
	for (unsigned i = 0; i < rounds; i++) {
		enum kind kind = (enum kind)(i % 3);
		bool sync = sync_ok && i % 2;
		int flags = sync ? MAP_SHARED_VALIDATE | MAP_SYNC : MAP_SHARED;
		unsigned hits = race_hits(), aligned = 0;
		char name[32];

		r.round = i;
		race_round(i);
		/* HOT pages per chunk, evenly spread, shifted every round */
		for (unsigned h = 0; h < NHOT; h++)
			r.hot[h] = h / HOT * (CHUNK / PAGE) + 1 + h % HOT * (CHUNK / PAGE / HOT) +
			           i * 7 % (CHUNK / PAGE / HOT - 2);
		snprintf(name, sizeof(name), "f%u", i);
		r.fd = daxenv_open_new(name);
		set_extsize(r.fd);
		if (kind != SPARSE && falloc && !allocate_aligned(r.fd)) {
			falloc = false;
			tap_diag("fallocate: %s; unwritten rounds use a sparse file",
			         strerror(EOPNOTSUPP));
		}
		if (kind == UNWRITTEN && !falloc)
			kind = SPARSE;
		if (ftruncate(r.fd, FILE_SIZE) != 0)
			tap_bail("ftruncate: %s", strerror(errno));
		for (size_t w = 0; w < NWORDS; w++) {
			buf[w] = kind == DATA ? OLD_TAG | w : 0;
			r.shadow[w] = buf[w];
		}
		if (kind == DATA)
			daxenv_pwrite_all(r.fd, buf, FILE_SIZE, 0);
		if (kind != SPARSE) {
			aligned = aligned_chunks(r.fd);
			layout_rounds++;
			aligned_rounds += aligned > 0;
		}
		r.a = map_at(NULL, r.fd, flags);
		if (madvise(r.a, FILE_SIZE, MADV_NOHUGEPAGE) != 0)
			tap_bail("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
		r.b = map_aligned(r.fd, flags);
		memset(r.starts, 0, sizeof(r.starts));
		memset(r.ends, 0, sizeof(r.ends));
		memset(r.b_starts, 0, sizeof(r.b_starts));
		memset(r.b_ends, 0, sizeof(r.b_ends));
		memset(r.io_starts, 0, sizeof(r.io_starts));
		memset(r.io_ends, 0, sizeof(r.io_ends));
		if (i < 6 && kind != SPARSE)
			tap_diag("round %u: %s%s, %u of %u chunks on 2 MiB-aligned extents", i,
			         kind_name[kind], sync ? ", MAP_SYNC" : "", aligned, NCHUNKS);
		else if (i < 6)
			tap_diag("round %u: %s%s", i, kind_name[kind], sync ? ", MAP_SYNC" : "");
		/* Chunk 0 gets its 2 MiB entry (mapping or huge zero page) first. */
		load(&r, r.b, 0, "mapping B (2 MiB), before the threads");

		race_threads(THREADS, thread, &r);
		check_round(&r);
		sync_rounds += sync;
		if (sync)
			sync_hits += race_hits() - hits;
		munmap(r.a, FILE_SIZE);
		munmap(r.b, FILE_SIZE);
		close(r.fd);
		unlink(name);
	}
	race_end();
	traced = traced && trace_events(&e1);
	tap_diag("loads %lu, stores %lu, checked through the other mapping %lu", r.loads, r.stores,
	         r.cross);
	if (traced)
		tap_diag(
		    "fs_dax events while racing: dax_pte_fault=%ld dax_pmd_fault=%ld, of which "
		    "mapped 2 MiB %ld, huge zero page %ld, fell back %ld",
		    e1.pte - e0.pte, e1.pmd - e0.pmd, e1.pmd_mapped - e0.pmd_mapped,
		    e1.pmd_holes - e0.pmd_holes, e1.pmd_fallback - e0.pmd_fallback);
	tap_diag("rounds with 2 MiB-aligned extents: %u of %u fallocated or written",
	         aligned_rounds, layout_rounds);
	tap_diag("kernel window: %lu loads showed the zero page after pwrite() returned until a "
	         "racing store's write fault ended (longest %.3f ms)",
	         r.windows, (double)r.window_ns / 1e6);
	tap_diag("second kernel window: %lu loads through A showed the zero page after a store "
	         "through B returned while a pwrite() of the page was in flight (longest %.3f ms)",
	         r.windows2, (double)r.window2_ns / 1e6);

	tap_ok(r.incoherent == 0,
	       "a word reads what its owner last stored, through A, B and "
	       "read(), and a store through one mapping shows through the other");
	tap_ok(r.pwrite_stale == 0, "once pwrite() returned, A and B show its data");
	tap_ok(r.signals == 0, "no access inside the file got a signal");
	tap_ok(r.end_incoherent == 0,
	       "at the end of every round read(), A and B hold exactly the stored data");
	if (!sync_ok)
		tap_skip("MAP_SYNC not supported", "the promises hold with MAP_SYNC mappings");
	else
		tap_ok(sync_rounds > 0 && sync_hits == 0,
		       "the promises hold with MAP_SYNC mappings");
	if (!traced)
		tap_skip("tracefs not readable", PMD_POINT);
	else if (!thp)
		tap_skip("no transparent huge pages in this kernel", PMD_POINT);
	else if (aligned_rounds == 0)
		tap_skip("no 2 MiB-aligned extents obtained (FIEMAP)", PMD_POINT);
	else
		tap_ok(e1.pmd_mapped - e0.pmd_mapped > 0, PMD_POINT);
	if (!traced)
		tap_skip("tracefs not readable", RAN_POINT);
	else
		tap_ok(e1.pte - e0.pte > 0 && e1.pmd - e0.pmd > 0 && r.cross > 0, RAN_POINT);
	tap_finish();
}
