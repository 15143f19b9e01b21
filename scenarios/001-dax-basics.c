/*
 * dax-basics - write()/mmap coherence, no page cache, holes, fs_dax faults
 *
 * The promises of DAX that every later scenario relies on:
 *  - the scenario's files really are DAX (statx STATX_ATTR_DAX);
 *  - data written with write() is what a shared mapping reads, and the
 *    reverse;
 *  - reading a file through read() does not grow the page cache (DAX
 *    copies straight from the NV-DIMM), measured by Cached in /proc/meminfo;
 *  - a hole reads as zeros, and data written into it through a mapping
 *    is what read() then returns;
 *  - page faults went through the DAX fault handler (fs_dax tracepoints
 *    dax_pte_fault or dax_pmd_fault fired).
 * Mounted without DAX, the first, third and last checks fail.
 *
 * daxlab-groups: default
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/tap.h"

#define RW_SIZE (1u << 20)
#define CACHE_FILE_SIZE (32u << 20)
#define CACHE_PASSES 4
#define HOLE_FILE_SIZE (2u << 20)
#define PAGE 4096u

static int open_new(const char *name)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		tap_bail("open %s: %s", name, strerror(errno));
	return fd;
}

static void write_all(int fd, const unsigned char *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n <= 0)
			tap_bail("pwrite: %s", n < 0 ? strerror(errno) : "short write");
		buf += n;
		len -= (size_t)n;
		off += n;
	}
}

static void read_all(int fd, unsigned char *buf, size_t len, off_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);

		if (n <= 0)
			tap_bail("pread: %s", n < 0 ? strerror(errno) : "unexpected EOF");
		buf += n;
		len -= (size_t)n;
		off += n;
	}
}

static void *map_shared(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		tap_bail("mmap: %s", strerror(errno));
	return p;
}

static void check_is_dax(void)
{
	int fd = open_new("probe");
	int dax;

	close(fd);
	dax = daxenv_is_dax("probe");
	if (dax < 0)
		tap_ok(false, "statx reports STATX_ATTR_DAX on the scenario's files (statx: %s)",
		       strerror(errno));
	else
		tap_ok(dax == 1, "statx reports STATX_ATTR_DAX on the scenario's files");
	unlink("probe");
}

static void check_write_then_mmap(unsigned char *buf)
{
	int fd = open_new("rw");
	unsigned char *map;
	long bad;

	daxenv_pattern(buf, RW_SIZE, 1, 0);
	write_all(fd, buf, RW_SIZE, 0);
	map = map_shared(fd, RW_SIZE);
	bad = daxenv_pattern_check(map, RW_SIZE, 1, 0);
	if (bad >= 0)
		tap_diag("first difference at offset %ld", bad);
	tap_ok(bad < 0, "data written with write() reads back through a shared mapping");

	daxenv_pattern(map, RW_SIZE, 2, 0);
	memset(buf, 0, RW_SIZE);
	read_all(fd, buf, RW_SIZE, 0);
	bad = daxenv_pattern_check(buf, RW_SIZE, 2, 0);
	if (bad >= 0)
		tap_diag("first difference at offset %ld", bad);
	tap_ok(bad < 0, "data stored through a shared mapping reads back with read()");
	munmap(map, RW_SIZE);
	close(fd);
	unlink("rw");
}

static void check_no_page_cache(unsigned char *buf)
{
	long before, after, grown;
	int fd;

	sync();
	before = daxenv_cached_kb();
	fd = open_new("cache");
	for (size_t off = 0; off < CACHE_FILE_SIZE; off += RW_SIZE) {
		daxenv_pattern(buf, RW_SIZE, 3, off);
		write_all(fd, buf, RW_SIZE, (off_t)off);
	}
	for (int pass = 0; pass < CACHE_PASSES; pass++) {
		for (size_t off = 0; off < CACHE_FILE_SIZE; off += RW_SIZE)
			read_all(fd, buf, RW_SIZE, (off_t)off);
	}
	after = daxenv_cached_kb();
	close(fd);
	if (before < 0 || after < 0)
		tap_bail("cannot read Cached from /proc/meminfo");
	grown = after - before;
	tap_diag("Cached grew by %ld KiB while writing %u MiB and reading it %d times", grown,
	         CACHE_FILE_SIZE >> 20, CACHE_PASSES);
	/* Non-DAX grows by the whole file; allow 1/16 of it for metadata. */
	tap_ok(grown < (long)(CACHE_FILE_SIZE / 1024 / 16),
	       "reading through read() does not fill the page cache");
	unlink("cache");
}

static void check_holes(unsigned char *buf)
{
	const off_t hole = HOLE_FILE_SIZE / 2;
	int fd = open_new("hole");
	unsigned char *map;
	size_t nonzero = 0;
	long bad;

	if (ftruncate(fd, HOLE_FILE_SIZE) != 0)
		tap_bail("ftruncate: %s", strerror(errno));
	memset(buf, 0xa5, PAGE);
	read_all(fd, buf, PAGE, hole);
	for (size_t i = 0; i < PAGE; i++)
		nonzero += buf[i] != 0;
	tap_ok(nonzero == 0, "read() of a hole returns zeros (%zu non-zero bytes)", nonzero);

	map = map_shared(fd, HOLE_FILE_SIZE);
	/* Read fault first: the hole gets the zero page, then the write
	 * fault must replace it with a real block. */
	nonzero = 0;
	for (size_t i = 0; i < PAGE; i++)
		nonzero += map[hole + (off_t)i] != 0;
	daxenv_pattern(map + hole, PAGE, 4, 0);
	if (msync(map, HOLE_FILE_SIZE, MS_SYNC) != 0)
		tap_bail("msync: %s", strerror(errno));
	read_all(fd, buf, PAGE, hole);
	bad = daxenv_pattern_check(buf, PAGE, 4, 0);
	tap_ok(nonzero == 0 && bad < 0,
	       "a hole read-faulted then written through a mapping reads back with read()");
	munmap(map, HOLE_FILE_SIZE);
	close(fd);
	unlink("hole");
}

static void check_fault_events(void)
{
	long pte = daxenv_trace_count("dax_pte_fault");
	long pmd = daxenv_trace_count("dax_pmd_fault");

	if (pte < 0) {
		tap_ok(false, "fs_dax fault tracepoints fired (tracefs not readable)");
		return;
	}
	tap_diag("fs_dax events: dax_pte_fault=%ld dax_pmd_fault=%ld", pte, pmd);
	tap_ok(pte + pmd > 0, "fs_dax fault tracepoints fired");
}

int main(void)
{
	unsigned char *buf;

	if (chdir(daxenv_workdir()) != 0)
		tap_skip_all("cannot enter %s: %s", daxenv_workdir(), strerror(errno));
	buf = malloc(RW_SIZE);
	if (!buf)
		tap_bail("out of memory");
	tap_plan(7);
	check_is_dax();
	check_write_then_mmap(buf);
	check_no_page_cache(buf);
	check_holes(buf);
	check_fault_events();
	free(buf);
	tap_finish();
}
