/*
 * block-zeroing - blocks a file gets, by fault, fallocate, truncate or write, never show old data
 *
 * Without a page cache there is no zeroed page between a newly allocated
 * block and the process: the filesystem must zero the block on the
 * NV-DIMM before a mapping or read() can see it, or the process reads
 * what a deleted file left there. The series made this dax_clear_blocks
 * ("Replace ext2_clear_xip_target with dax_clear_blocks"); today ext4 and
 * xfs zero in their block allocation for DAX (EXT4_GET_BLOCKS_ZERO,
 * XFS_BMAPI_ZERO) and dax_iomap_* relies on it. The scenario writes files
 * full of a recognizable secret tag, syncs and deletes them (their blocks
 * become free), then makes new files that take blocks in every way DAX
 * offers and checks every 8-byte word of them with read() (and the words
 * it mapped through the mapping): zeros everywhere except what it wrote.
 * Promises, one per way of allocating:
 *  - write faults on holes through a 4 KiB mapping (a store per page);
 *  - write faults on holes through a 2 MiB-aligned mapping (2 MiB faults
 *    where the filesystem allocates aligned extents; xfs gets an extent
 *    size hint of 2 MiB, so each fault allocates and zeroes 2 MiB);
 *  - fallocate, then read() and mapping reads of the unwritten extents,
 *    then write faults into them (skipped without fallocate: ext2);
 *  - a small write, ftruncate to the middle of a written block, ftruncate
 *    up again, then read(): zeros past the cut (dax_truncate_page) and in
 *    the grown range;
 *  - pwrite() of 16 bytes into each block of a sparse file;
 *  - no kernel warning (the agent's dmesg check).
 * And the test tested something: the new files got blocks that the secret
 * files had (FIEMAP before the delete and after the new writes).
 *
 * daxlab-groups: default series
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/tap.h"

#define PAGE 4096u
#define CHUNK (2u << 20)
#define MIB (1u << 20)
#define SECRET_FILES 4u
#define SECRET_SIZE (16u * MIB) /* each: 64 MiB freed in all */
#define PTE_SIZE (4u * MIB)     /* 4 KiB faults: one per page (trace lines) */
#define NEW_SIZE (16u * MIB)    /* the other new files */
#define MAX_SIZE NEW_SIZE

#define SECRET_TAG 0x5ec2e70000000000ull
#define SECRET_MASK 0xffffff0000000000ull
#define MARK_TAG 0x3a00000000000000ull

static uint64_t buf[MIB / 8];

/* ---- extents, to tell whether blocks were reused ---- */

#define MAX_EXTENTS 512u

struct range {
	unsigned long long start, end; /* device bytes */
};

static struct range secret[SECRET_FILES * MAX_EXTENTS];
static unsigned nsecret;

/* Append @fd's extents to @out (up to @max); returns how many were added. */
static unsigned extents(int fd, struct range *out, unsigned max)
{
	static union {
		struct fiemap fm;
		char space[sizeof(struct fiemap) + MAX_EXTENTS * sizeof(struct fiemap_extent)];
	} u;
	unsigned n = 0;

	memset(&u, 0, sizeof(u));
	u.fm.fm_length = FIEMAP_MAX_OFFSET;
	u.fm.fm_flags = FIEMAP_FLAG_SYNC;
	u.fm.fm_extent_count = MAX_EXTENTS;
	if (ioctl(fd, FS_IOC_FIEMAP, &u.fm) != 0)
		return 0;
	for (unsigned i = 0; i < u.fm.fm_mapped_extents && n < max; i++) {
		const struct fiemap_extent *e = &u.fm.fm_extents[i];

		out[n++] = (struct range){e->fe_physical, e->fe_physical + e->fe_length};
	}
	return n;
}

/* Bytes of @fd's blocks that were a secret file's. */
static unsigned long long reused(int fd)
{
	static struct range mine[MAX_EXTENTS];
	unsigned n = extents(fd, mine, MAX_EXTENTS);
	unsigned long long total = 0;

	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < nsecret; j++) {
			unsigned long long lo =
			    mine[i].start > secret[j].start ? mine[i].start : secret[j].start;
			unsigned long long hi =
			    mine[i].end < secret[j].end ? mine[i].end : secret[j].end;

			if (hi > lo)
				total += hi - lo;
		}
	}
	return total;
}

/* ---- the secret files ---- */

static unsigned long long free0; /* free bytes before the deletes */

static unsigned long long free_bytes(void)
{
	struct statvfs st;

	if (statvfs(".", &st) != 0)
		tap_bail("statvfs: %s", strerror(errno));
	return (unsigned long long)st.f_bfree * st.f_frsize;
}

static void write_secrets(void)
{
	for (unsigned f = 0; f < SECRET_FILES; f++) {
		char name[32];
		int fd;

		snprintf(name, sizeof(name), "secret%u", f);
		fd = daxenv_open_new(name);
		for (size_t off = 0; off < SECRET_SIZE; off += MIB) {
			for (size_t w = 0; w < MIB / 8; w++)
				buf[w] = SECRET_TAG | (uint64_t)f << 32 | (off / 8 + w);
			daxenv_pwrite_all(fd, buf, MIB, (long long)off);
		}
		if (fsync(fd) != 0)
			tap_bail("fsync: %s", strerror(errno));
		nsecret += extents(fd, secret + nsecret, MAX_EXTENTS);
		close(fd);
	}
	free0 = free_bytes();
	for (unsigned f = 0; f < SECRET_FILES; f++) {
		char name[32];

		snprintf(name, sizeof(name), "secret%u", f);
		if (unlink(name) != 0)
			tap_bail("unlink: %s", strerror(errno));
	}
	/* Commit the deletes: ext4 and xfs reuse freed blocks only after that.
	 * xfs (since 5.15) frees an unlinked inode's blocks in the background
	 * (inodegc): wait until the free space shows them, at most 10 s. */
	sync();
	for (unsigned i = 0; i < 200 && free_bytes() < free0 + SECRET_FILES * SECRET_SIZE * 9 / 10;
	     i++) {
		usleep(50000);
		sync();
	}
	tap_diag("free space after the deletes: %llu MiB more than before them",
	         (free_bytes() - free0) >> 20);
}

/* ---- checks ---- */

/*
 * What a new file must hold: MARK_TAG | word index in the words of @marked
 * (a bitmap of words), zeros elsewhere.
 */
static uint8_t marked[MAX_SIZE / 8 / 8];

static void mark(size_t w)
{
	marked[w / 8] |= (uint8_t)(1u << (w % 8));
}

static uint64_t want(size_t w)
{
	return (marked[w / 8] >> (w % 8) & 1) ? MARK_TAG | w : 0;
}

struct verdict {
	long long bad_off; /* first word that differs, or -1 */
	uint64_t bad_val;
	const char *how;
	unsigned long secrets, others; /* words with a secret tag, other wrong words */
};

static void judge(struct verdict *v, size_t w, uint64_t seen, const char *how)
{
	if (seen == want(w))
		return;
	if ((seen & SECRET_MASK) == SECRET_TAG)
		v->secrets++;
	else
		v->others++;
	if (v->bad_off < 0) {
		v->bad_off = (long long)w * 8;
		v->bad_val = seen;
		v->how = how;
	}
}

/* Every word of @fd through read(), and the pages of @map in @pages (a page bitmap). */
static void verify(int fd, size_t size, const uint64_t *map, const uint8_t *pages,
                   struct verdict *v)
{
	for (size_t off = 0; off < size; off += MIB) {
		size_t len = size - off < MIB ? size - off : MIB;

		daxenv_pread_all(fd, buf, len, (long long)off);
		for (size_t w = 0; w < len / 8; w++)
			judge(v, off / 8 + w, buf[w], "read()");
	}
	for (size_t p = 0; map && p < size / PAGE; p++) {
		if (!(pages[p / 8] >> (p % 8) & 1))
			continue;
		for (size_t w = p * (PAGE / 8); w < (p + 1) * (PAGE / 8); w++)
			judge(v, w, map[w], "the mapping");
	}
}

static unsigned long long total_reused;

static bool report(int fd, struct verdict *v, const char *what)
{
	unsigned long long r = reused(fd);

	total_reused += r;
	tap_diag("%s: %llu KiB of the deleted files' blocks reused", what, r >> 10);
	if (v->bad_off >= 0)
		tap_diag("%s: %lu words with the deleted files' data, %lu other wrong words; first "
		         "at offset %lld through %s: 0x%016llx",
		         what, v->secrets, v->others, v->bad_off, v->how,
		         (unsigned long long)v->bad_val);
	return v->bad_off < 0;
}

/* ---- ways to get new blocks ---- */

static void *map_file(int fd, size_t size, bool huge)
{
	size_t len = size + CHUNK;
	char *r = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *p;

	if (r == MAP_FAILED)
		tap_bail("mmap reserve: %s", strerror(errno));
	p = (char *)(((uintptr_t)r + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
	if (mmap(p, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED)
		tap_bail("mmap: %s", strerror(errno));
	if (p > r)
		munmap(r, (size_t)(p - r));
	munmap(p + size, (size_t)(r + len - (p + size)));
	if (!huge && madvise(p, size, MADV_NOHUGEPAGE) != 0)
		tap_bail("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	return p;
}

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

/*
 * Write faults on the holes of a sparse file: one store in every @stride-th
 * page (a 4 KiB mapping), or in a few pages of every 2 MiB (a 2 MiB one).
 */
static bool by_faults(const char *name, size_t size, bool huge)
{
	static uint8_t pages[MAX_SIZE / PAGE / 8];
	struct verdict v = {.bad_off = -1};
	uint64_t *map;
	bool ok;
	int fd = daxenv_open_new(name);

	if (huge)
		set_extsize(fd);
	if (ftruncate(fd, (off_t)size) != 0)
		tap_bail("ftruncate: %s", strerror(errno));
	map = map_file(fd, size, huge);
	memset(marked, 0, sizeof(marked));
	memset(pages, 0, sizeof(pages));
	for (size_t p = 0; p < size / PAGE; p++) {
		size_t w = p * (PAGE / 8) + (p * 37) % (PAGE / 8);

		if (huge && p % (CHUNK / PAGE) != 0 && p % (CHUNK / PAGE) != 300)
			continue;
		mark(w);
		pages[p / 8] |= (uint8_t)(1u << (p % 8));
		map[w] = want(w);
	}
	verify(fd, size, map, pages, &v);
	ok = report(fd, &v, huge ? "2 MiB write faults" : "4 KiB write faults");
	munmap(map, size);
	close(fd);
	unlink(name);
	return ok;
}

/* fallocate, read() and mapping reads of the unwritten extents, then write faults in them. */
static int by_fallocate(void)
{
	static uint8_t pages[MAX_SIZE / PAGE / 8];
	struct verdict v = {.bad_off = -1};
	uint64_t *map, nonzero = 0;
	bool ok;
	int fd = daxenv_open_new("falloc");

	if (fallocate(fd, 0, 0, NEW_SIZE) != 0) {
		int e = errno;

		close(fd);
		unlink("falloc");
		if (e == EOPNOTSUPP)
			return -1;
		tap_bail("fallocate: %s", strerror(e));
	}
	memset(marked, 0, sizeof(marked));
	memset(pages, 0, sizeof(pages));
	verify(fd, NEW_SIZE, NULL, NULL, &v);
	/* reads through a 2 MiB-aligned mapping: the huge zero page or the blocks */
	map = map_file(fd, NEW_SIZE, true);
	for (size_t p = 0; p < NEW_SIZE / PAGE; p += 61)
		nonzero |= map[p * (PAGE / 8) + p % (PAGE / 8)];
	munmap(map, NEW_SIZE);
	if (nonzero)
		judge(&v, 0, nonzero, "a mapping of the unwritten extents (some word)");
	/* write faults into the unwritten extents, every 16th page */
	map = map_file(fd, NEW_SIZE, false);
	for (size_t p = 0; p < NEW_SIZE / PAGE; p += 16) {
		size_t w = p * (PAGE / 8) + (p * 37) % (PAGE / 8);

		mark(w);
		pages[p / 8] |= (uint8_t)(1u << (p % 8));
		map[w] = want(w);
	}
	verify(fd, NEW_SIZE, map, pages, &v);
	ok = report(fd, &v, "fallocate");
	munmap(map, NEW_SIZE);
	close(fd);
	unlink("falloc");
	return ok;
}

/*
 * Small writes, ftruncate down into the middle of a written block and up
 * again, read(): zeros past the cut, in the rest of the blocks the writes
 * allocated and in the grown range.
 */
static bool by_truncate(void)
{
	const size_t cut = 5 * PAGE + 1000, piece = 3 * PAGE; /* cut inside the last piece */
	struct verdict v = {.bad_off = -1};
	uint64_t *map;
	bool ok;
	int fd = daxenv_open_new("trunc");

	memset(marked, 0, sizeof(marked));
	for (size_t off = 0; off < 6 * PAGE; off += 2 * PAGE) {
		for (size_t w = 0; w < piece / 8 / 2; w++)
			buf[w] = MARK_TAG | (off / 8 + 100 + w);
		daxenv_pwrite_all(fd, buf, piece / 2, (long long)off + 800);
		for (size_t w = 0; w < piece / 8 / 2; w++) {
			if ((off + 800) / 8 + w < cut / 8)
				mark((off + 800) / 8 + w);
		}
	}
	if (ftruncate(fd, (off_t)cut) != 0 || ftruncate(fd, NEW_SIZE) != 0)
		tap_bail("ftruncate: %s", strerror(errno));
	verify(fd, NEW_SIZE, NULL, NULL, &v);
	/* and the page of the cut through a mapping */
	map = map_file(fd, 8 * PAGE, false);
	for (size_t w = 4 * PAGE / 8; w < 6 * PAGE / 8; w++)
		judge(&v, w, map[w], "the mapping");
	munmap(map, 8 * PAGE);
	ok = report(fd, &v, "ftruncate");
	close(fd);
	unlink("trunc");
	return ok;
}

/* pwrite() of 16 bytes into every block of a sparse file. */
static bool by_pwrite(void)
{
	struct verdict v = {.bad_off = -1};
	bool ok;
	int fd = daxenv_open_new("pwrite");

	if (ftruncate(fd, NEW_SIZE) != 0)
		tap_bail("ftruncate: %s", strerror(errno));
	memset(marked, 0, sizeof(marked));
	for (size_t p = 0; p < NEW_SIZE / PAGE; p++) {
		size_t w = p * (PAGE / 8) + (p * 53) % (PAGE / 8 - 1);
		uint64_t two[2];

		mark(w);
		mark(w + 1);
		two[0] = want(w);
		two[1] = want(w + 1);
		daxenv_pwrite_all(fd, two, 16, (long long)w * 8);
	}
	verify(fd, NEW_SIZE, NULL, NULL, &v);
	ok = report(fd, &v, "pwrite");
	close(fd);
	unlink("pwrite");
	return ok;
}

int main(void)
{
	int falloc;

	tap_plan(7);
	daxenv_tap_is_dax("probe");
	write_secrets();
	tap_diag("wrote, synced and deleted %u files of %u MiB (%u extents)", SECRET_FILES,
	         SECRET_SIZE / MIB, nsecret);

	tap_ok(by_faults("pte", PTE_SIZE, false),
	       "write faults on holes (4 KiB mapping) show zeros around the stores");
	tap_ok(by_faults("pmd", NEW_SIZE, true),
	       "write faults on holes (2 MiB-aligned mapping) show zeros around the stores");
	falloc = by_fallocate();
	if (falloc < 0)
		tap_skip("fallocate: Operation not supported",
		         "fallocated blocks read zeros (read(), mapping, around write faults)");
	else
		tap_ok(falloc,
		       "fallocated blocks read zeros (read(), mapping, around write faults)");
	tap_ok(by_truncate(), "ftruncate down into a block and up again reads zeros past the cut");
	tap_ok(by_pwrite(), "pwrite() of 16 bytes into new blocks leaves zeros around them");
	tap_diag("%llu MiB of the deleted files' blocks went to the new files", total_reused >> 20);
	tap_ok(total_reused > 0, "the new files got blocks of the deleted files");
	tap_finish();
}
