/*
 * fault-mtime - read faults leave mtime/ctime alone, shared write faults update them
 *
 * The series' DAX fault handler "Only update file mtime/ctime on a write
 * fault, not a read fault": the XIP handler called file_update_time() on
 * every fault, so merely reading a mapped file changed its timestamps
 * (and dirtied its inode); a write through a shared mapping must still
 * update them, including a write to a page first mapped by a read fault
 * (pfn_mkwrite) and a write after msync() cleaned the page. POSIX: mtime
 * and ctime are marked for update between a write reference to a shared
 * mapping and the next msync() of it (or munmap() and fsync()).
 * Promises checked, each on its own file whose times were set to the past
 * with futimens() (mtime to 2001, ctime becomes now) more than a second
 * before (so coarse and one-second timestamps can move):
 *  - read faults (data pages and a hole) through a shared read-write
 *    mapping leave mtime and ctime unchanged, also after msync() and
 *    munmap();
 *  - so do read faults through a read-only shared mapping and a private
 *    mapping, and copy-on-write stores through a private mapping (they
 *    do not write the file);
 *  - a store that write-faults a page (first touch) updates mtime and
 *    ctime, seen after msync(MS_SYNC);
 *  - a store to a page first read-faulted (pfn_mkwrite) updates them,
 *    seen after munmap() and fsync();
 *  - a store that fills a hole updates them;
 *  - a store to a page already written and then msync()ed updates them
 *    again.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/tap.h"

#define PAGE 4096u
#define NPAGES 4u /* pages 0-2 data, 3 a hole */
#define DATA_PAGES 3u
#define SIZE (NPAGES * PAGE)
#define PAST 978307200 /* 2001-01-01 */
#define SETTLE_NS 1100000000L

enum { READ_RW, READ_RO, PRIVATE, FIRST_TOUCH, MKWRITE, HOLE, AGAIN, NFILES };
static const char *const names[NFILES] = {"read-rw", "read-ro", "private", "first-touch",
                                          "mkwrite", "hole",    "again"};

struct file {
	int fd;
	struct timespec ctime0; /* ctime right after futimens() */
};

static struct file files[NFILES];

static void stat_fd(int fd, struct stat *st)
{
	if (fstat(fd, st))
		tap_bail("fstat: %s", strerror(errno));
}

static void *map(int fd, int prot, int flags)
{
	void *p = mmap(NULL, SIZE, prot, flags, fd, 0);

	if (p == MAP_FAILED)
		tap_bail("mmap: %s", strerror(errno));
	return p;
}

static void msync_all(void *p)
{
	if (msync(p, SIZE, MS_SYNC))
		tap_bail("msync: %s", strerror(errno));
}

static void read_pages(const unsigned char *p, unsigned n)
{
	for (unsigned pg = 0; pg < n; pg++)
		(void)*(const volatile unsigned char *)(p + pg * PAGE + 17);
}

static bool ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool ts_gt(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

/* Set mtime into the past (ctime becomes now) and remember ctime. */
static void set_past(struct file *f)
{
	struct timespec t[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = PAST}};
	struct stat st;

	if (futimens(f->fd, t))
		tap_bail("futimens: %s", strerror(errno));
	stat_fd(f->fd, &st);
	if (st.st_mtim.tv_sec != PAST)
		tap_bail("futimens did not set mtime (%lld)", (long long)st.st_mtim.tv_sec);
	f->ctime0 = st.st_ctim;
}

static void settle(void)
{
	struct timespec t = {.tv_sec = SETTLE_NS / 1000000000L, .tv_nsec = SETTLE_NS % 1000000000L};

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

/* File @idx's times: unchanged since set_past(), or both moved forward. */
static bool check_times(int idx, bool want_moved, const char *when)
{
	struct file *f = &files[idx];
	struct stat st;
	bool ok;

	stat_fd(f->fd, &st);
	if (!want_moved)
		ok = st.st_mtim.tv_sec == PAST && st.st_mtim.tv_nsec == 0 &&
		     ts_eq(st.st_ctim, f->ctime0);
	else
		ok = st.st_mtim.tv_sec != PAST && !ts_gt(f->ctime0, st.st_mtim) &&
		     ts_gt(st.st_ctim, f->ctime0);
	if (!ok)
		tap_diag("%s, %s: mtime %lld.%09ld (set to %d), ctime %lld.%09ld (was %lld.%09ld)",
		         names[idx], when, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, PAST,
		         (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec,
		         (long long)f->ctime0.tv_sec, f->ctime0.tv_nsec);
	return ok;
}

static bool same(int idx, const char *when)
{
	return check_times(idx, false, when);
}

static bool moved(int idx, const char *when)
{
	return check_times(idx, true, when);
}

static void create_files(void)
{
	static unsigned char buf[DATA_PAGES * PAGE];

	for (int i = 0; i < NFILES; i++) {
		files[i].fd = daxenv_open_new(names[i]);
		daxenv_pattern(buf, sizeof(buf), (unsigned)i + 1, 0);
		daxenv_pwrite_all(files[i].fd, buf, sizeof(buf), 0);
		if (ftruncate(files[i].fd, SIZE))
			tap_bail("ftruncate: %s", strerror(errno));
		if (fsync(files[i].fd))
			tap_bail("fsync: %s", strerror(errno));
	}
}

int main(void)
{
	unsigned char *p, *q, *again;
	bool ok;

	tap_plan(8);
	daxenv_tap_is_dax("probe");
	create_files();

	/* "again": write and msync once before the times are set. */
	again = map(files[AGAIN].fd, PROT_READ | PROT_WRITE, MAP_SHARED);
	again[PAGE + 5] ^= 0x5a;
	msync_all(again);

	for (int i = 0; i < NFILES; i++)
		set_past(&files[i]);
	settle();

	/* Read faults, shared read-write mapping: data pages and the hole. */
	p = map(files[READ_RW].fd, PROT_READ | PROT_WRITE, MAP_SHARED);
	read_pages(p, NPAGES);
	ok = same(READ_RW, "after read faults");
	msync_all(p);
	ok &= same(READ_RW, "after msync");
	munmap(p, SIZE);
	ok &= same(READ_RW, "after munmap");
	tap_ok(ok, "read faults through a shared read-write mapping leave mtime and ctime "
	           "unchanged");

	/* Read-only shared mapping, and a private one (read). */
	p = map(files[READ_RO].fd, PROT_READ, MAP_SHARED);
	q = map(files[READ_RO].fd, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	read_pages(p, NPAGES);
	read_pages(q, NPAGES);
	munmap(p, SIZE);
	munmap(q, SIZE);
	tap_ok(same(READ_RO, "after read faults"), "read faults through a read-only shared and "
	                                           "a private mapping leave mtime and ctime "
	                                           "unchanged");

	/* Private mapping: stores copy the pages (read-faulted first or not). */
	q = map(files[PRIVATE].fd, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	read_pages(q, 1);
	for (unsigned pg = 0; pg < NPAGES; pg++)
		q[pg * PAGE + 9] = 0x3c;
	msync_all(q);
	ok = same(PRIVATE, "after private stores and msync");
	munmap(q, SIZE);
	ok &= same(PRIVATE, "after munmap");
	tap_ok(ok, "copy-on-write stores through a private mapping leave mtime and ctime "
	           "unchanged");

	/* A store that write-faults a data page. */
	p = map(files[FIRST_TOUCH].fd, PROT_READ | PROT_WRITE, MAP_SHARED);
	p[PAGE + 100] = 0xa5;
	msync_all(p);
	tap_ok(moved(FIRST_TOUCH, "after a store and msync(MS_SYNC)"),
	       "a store that write-faults a page updates mtime and ctime (msync)");
	munmap(p, SIZE);

	/* A store to a page mapped by a read fault. */
	p = map(files[MKWRITE].fd, PROT_READ | PROT_WRITE, MAP_SHARED);
	read_pages(p, DATA_PAGES);
	ok = same(MKWRITE, "after the read faults");
	p[2 * PAGE + 100] ^= 0xff;
	munmap(p, SIZE);
	if (fsync(files[MKWRITE].fd))
		tap_bail("fsync: %s", strerror(errno));
	ok &= moved(MKWRITE, "after a store, munmap and fsync");
	tap_ok(ok, "a store to a read-faulted page updates mtime and ctime (munmap, fsync)");

	/* A store that fills the hole. */
	p = map(files[HOLE].fd, PROT_READ | PROT_WRITE, MAP_SHARED);
	p[3 * PAGE + 1] = 1;
	msync_all(p);
	tap_ok(moved(HOLE, "after a store into the hole and msync"),
	       "a store that fills a hole updates mtime and ctime");
	munmap(p, SIZE);

	/* The page written and msync()ed before: written again. */
	again[PAGE + 5] ^= 0x5a;
	msync_all(again);
	tap_ok(moved(AGAIN, "after a second store and msync"),
	       "a store to a page written and msync()ed before updates mtime and ctime again");
	munmap(again, SIZE);

	for (int i = 0; i < NFILES; i++) {
		close(files[i].fd);
		unlink(names[i]);
	}
	tap_finish();
}
