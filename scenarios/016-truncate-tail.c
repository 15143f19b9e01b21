/*
 * truncate-tail - truncate into a block, extend: the old tail reads zeros
 *
 * The series' "Replace xip_truncate_page with dax_truncate_page": when a
 * DAX file is truncated to a size inside a block, the block stays and the
 * part of it beyond the new size must be zeroed on the storage (there is
 * no page cache page to zero). If it is not, extending the file again
 * (ftruncate up, or a write beyond EOF) brings the old bytes back. Each
 * case: a file of 4 pages of data, cut at 2 pages plus 0 (block
 * boundary), 1, 100 or 4095 bytes, then extended by ftruncate() to 6
 * pages, by a pwrite() 300 bytes after the cut, or by a pwrite() at 5
 * pages + 500 bytes. A shared mapping made before the truncate (pages
 * read-faulted) stays mapped throughout; fresh mappings are made after
 * each step. Promises checked:
 *  - after the truncate, read() returns exactly the data before the cut,
 *    and the rest of EOF's page reads zeros through both mappings;
 *  - after ftruncate() up, the old block's tail and the new range read
 *    zeros, and the data before the cut is intact (read(), mappings);
 *  - after a pwrite() beyond EOF, the gap reads zeros and the written
 *    bytes are there (read(), mappings);
 *  - the same when the data (tail included) was stored through the shared
 *    mapping, not msync()ed, before the truncate;
 *  - no kernel warning (the agent's dmesg check).
 *
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
#include "lib/tap.h"

#define PAGE 4096u
#define OLD_SIZE (4 * PAGE)
#define MAX_SIZE (6 * PAGE)
#define CUT_BASE (2 * PAGE)
#define FAR_OFF (5 * PAGE + 500)
#define NEAR_GAP 300u
#define WRITE_LEN 100u
#define SEED_WRITE 1u
#define SEED_STORE 2u
#define SEED_EXTEND 3u

static const unsigned cut_offsets[] = {0, 1, 100, 4095};
#define NCUTS (sizeof(cut_offsets) / sizeof(cut_offsets[0]))

enum ext { EXT_TRUNCATE, EXT_NEAR, EXT_FAR, NEXT };
static const char *const ext_name[NEXT] = {"ftruncate up", "pwrite 300 bytes past the cut",
                                           "pwrite at 5 pages + 500"};

/* Failed cases by kind: index 0 data written with pwrite(), 1 stored through a mapping. */
struct results {
	unsigned cut_read[2], cut_map[2];
	unsigned ext_read[2][NEXT], ext_map[2][NEXT];
};

static unsigned char expected[MAX_SIZE + PAGE];

static size_t page_end(size_t size)
{
	return (size + PAGE - 1) / PAGE * PAGE;
}

/* First offset in [from, to) where @got differs from expected[], or -1. */
static long first_diff(const volatile unsigned char *got, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		if (got[i] != expected[i])
			return (long)i;
	}
	return -1;
}

static bool check_read(int fd, size_t size, const char *what)
{
	static unsigned char buf[MAX_SIZE + PAGE];
	ssize_t n;
	long bad;

	memset(buf, 0xee, sizeof(buf));
	n = pread(fd, buf, sizeof(buf), 0);
	if (n != (ssize_t)size) {
		tap_diag("%s: read() returned %zd bytes, the file has %zu", what, n, size);
		return false;
	}
	bad = first_diff(buf, 0, size);
	if (bad >= 0)
		tap_diag("%s: read() differs at offset %ld: 0x%02x, expected 0x%02x", what, bad,
		         buf[bad], expected[bad]);
	return bad < 0;
}

/* [0, EOF) and the rest of EOF's page, through @map. */
static bool check_map(const unsigned char *map, size_t size, const char *what, const char *which)
{
	long bad = first_diff(map, 0, page_end(size));

	if (bad >= 0)
		tap_diag("%s: %s mapping differs at offset %ld: 0x%02x, expected 0x%02x%s", what,
		         which, bad, map[bad], expected[bad],
		         (size_t)bad >= size ? " (beyond EOF, in its page)" : "");
	return bad < 0;
}

static bool check_maps(int fd, const unsigned char *old, size_t size, const char *what)
{
	unsigned char *fresh = mmap(NULL, MAX_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	bool ok;

	if (fresh == MAP_FAILED)
		tap_bail("mmap: %s", strerror(errno));
	ok = check_map(old, size, what, "the old");
	ok &= check_map(fresh, size, what, "a fresh");
	munmap(fresh, MAX_SIZE);
	return ok;
}

static void one_case(struct results *res, int stored, unsigned cut_off, enum ext ext)
{
	static unsigned char buf[OLD_SIZE];
	size_t cut = CUT_BASE + cut_off, size;
	char what[128];
	unsigned char *map;
	int fd = daxenv_open_new("tail");

	snprintf(what, sizeof(what), "%s, cut at +%u, %s", stored ? "stored" : "written", cut_off,
	         ext_name[ext]);
	daxenv_pattern(buf, OLD_SIZE, SEED_WRITE, 0);
	daxenv_pwrite_all(fd, buf, OLD_SIZE, 0);
	map = daxenv_map_shared(fd, MAX_SIZE);
	if (stored)
		daxenv_pattern(map, OLD_SIZE, SEED_STORE, 0);
	else
		for (size_t off = 0; off < OLD_SIZE; off += PAGE)
			(void)*(volatile unsigned char *)(map + off);

	/* Truncate into the block. */
	if (ftruncate(fd, (off_t)cut))
		tap_bail("ftruncate %zu: %s", cut, strerror(errno));
	memset(expected, 0, sizeof(expected));
	daxenv_pattern(expected, cut, stored ? SEED_STORE : SEED_WRITE, 0);
	res->cut_read[stored] += !check_read(fd, cut, what);
	res->cut_map[stored] += !check_maps(fd, map, cut, what);

	/* Extend. */
	switch (ext) {
	case EXT_TRUNCATE:
		size = MAX_SIZE;
		if (ftruncate(fd, (off_t)size))
			tap_bail("ftruncate %zu: %s", size, strerror(errno));
		break;
	case EXT_NEAR:
	case EXT_FAR: {
		size_t off = ext == EXT_NEAR ? cut + NEAR_GAP : FAR_OFF;

		size = off + WRITE_LEN;
		daxenv_pattern(expected + off, WRITE_LEN, SEED_EXTEND, off);
		daxenv_pwrite_all(fd, expected + off, WRITE_LEN, (long long)off);
		break;
	}
	default:
		tap_bail("bad extension %d", ext);
	}
	res->ext_read[stored][ext] += !check_read(fd, size, what);
	res->ext_map[stored][ext] += !check_maps(fd, map, size, what);
	munmap(map, MAX_SIZE);
	close(fd);
	unlink("tail");
}

static bool none(const unsigned *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i])
			return false;
	}
	return true;
}

int main(void)
{
	struct results res = {0};

	tap_plan(10);
	daxenv_tap_is_dax("probe");
	for (int stored = 0; stored < 2; stored++) {
		for (size_t c = 0; c < NCUTS; c++) {
			for (int e = 0; e < NEXT; e++)
				one_case(&res, stored, cut_offsets[c], (enum ext)e);
		}
	}
	tap_ok(!res.cut_read[0],
	       "after a truncate into a block, read() returns the data before the "
	       "cut, up to the new size");
	tap_ok(!res.cut_map[0],
	       "after a truncate into a block, the rest of EOF's page reads zeros (mappings)");
	tap_ok(!res.ext_read[0][EXT_TRUNCATE],
	       "extended by ftruncate(): the old tail and the new range read zeros (read())");
	tap_ok(!res.ext_map[0][EXT_TRUNCATE],
	       "extended by ftruncate(): the old tail and the new range read zeros (mappings)");
	tap_ok(!res.ext_read[0][EXT_NEAR] && !res.ext_read[0][EXT_FAR],
	       "extended by pwrite() beyond EOF: the gap reads zeros, the data is there (read())");
	tap_ok(
	    !res.ext_map[0][EXT_NEAR] && !res.ext_map[0][EXT_FAR],
	    "extended by pwrite() beyond EOF: the gap reads zeros, the data is there (mappings)");
	tap_ok(!res.cut_read[1] && !res.cut_map[1],
	       "tail stored through a mapping before the truncate: zeros beyond the cut, data "
	       "before it");
	tap_ok(none(res.ext_read[1], NEXT), "tail stored through a mapping, then truncated and "
	                                    "extended: zeros after the cut (read())");
	tap_ok(none(res.ext_map[1], NEXT), "tail stored through a mapping, then truncated and "
	                                   "extended: zeros after the cut (mappings)");
	tap_finish();
}
