/*
 * hole-fill - a hole read-faulted (zero page) then written: everyone sees the data
 *
 * A read fault on a hole of a DAX file maps the zero page (dax_load_hole,
 * or the huge zero page for a PMD fault) and records it in the mapping's
 * entry; a later write fault, through any mapping, or a write(), allocates
 * a block. The series' fix "Removes zero pages from the process' address
 * space before trying to replace them with the PFN of the newly allocated
 * block" guards the bug where another mapping (or the same one, from
 * another thread) kept the zero page and read zeros after the data was
 * written. Promises checked:
 *  - a hole reads as zeros through every mapping;
 *  - once a store (from another thread, through another mapping, or from
 *    another process) or a pwrite() into a read-faulted hole has returned,
 *    read() and every mapping of every process see the data, including a
 *    mapping that held the huge zero page over it;
 *  - racing: reader threads fault and read a hole page (two shared
 *    mappings and pread()) while a writer stores into it or pwrite()s it;
 *    a read that begins after the writer's store or pwrite() returned sees
 *    the data, earlier ones see each byte as zero or data; read() and both
 *    mappings hold the data after every round;
 *  - no kernel warning (the agent's dmesg check).
 * "The race ran" fails unless readers saw zeros through a mapping before a
 * write and the data through that mapping after it, on some page.
 *
 * run.sh --widen delays these kernel functions (guest-kernel/widen/):
 * daxlab-widen: dax_iomap_pte_fault,dax_insert_entry,vmf_insert_mixed_mkwrite,unmap_mapping_pages
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
#include <sys/wait.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/race.h"
#include "lib/tap.h"

#define PAGE 4096u
#define PMD_SIZE (2u << 20)

#define SEQ_PAGES 8u
#define SEQ_SIZE (SEQ_PAGES * PAGE)

static int open_rw(const char *name)
{
	int fd = open(name, O_RDWR);

	if (fd < 0)
		tap_bail("open %s: %s", name, strerror(errno));
	return fd;
}

static bool is_zero(const volatile unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i])
			return false;
	}
	return true;
}

/* Read one byte of every page of [p, p + len): read faults. */
static bool read_fault_zero(const volatile unsigned char *p, size_t len)
{
	bool zero = true;

	for (size_t off = 0; off < len; off += PAGE)
		zero &= p[off] == 0;
	return zero;
}

/* Page @off of @p holds pattern @seed: a diagnostic when not. */
static bool holds(const unsigned char *p, size_t off, unsigned seed, const char *what)
{
	long bad = daxenv_pattern_check(p, PAGE, seed, off);

	if (bad >= 0)
		tap_diag("%s: page at %zu differs at +%ld (0x%02x)%s", what, off, bad, p[bad],
		         is_zero(p, PAGE) ? ", the whole page is zeros" : "");
	return bad < 0;
}

static bool read_holds(int fd, size_t off, unsigned seed, const char *what)
{
	static unsigned char buf[PAGE];

	daxenv_pread_all(fd, buf, PAGE, (long long)off);
	return holds(buf, off, seed, what);
}

struct store_arg {
	unsigned char *dst;
	size_t off;
	unsigned seed;
};

static void store_thread(unsigned id, void *arg)
{
	struct store_arg *s = arg;

	(void)id;
	daxenv_pattern(s->dst, PAGE, s->seed, s->off);
}

/*
 * File of holes, mapped twice (A through one fd, B through another).
 * Page 0: read-faulted in A and B, stored to through A by another thread.
 * Page 1: read-faulted in A and B, stored to through B.
 * Page 2: read-faulted in A and B, pwrite().
 */
static void check_two_mappings(void)
{
	int fd = daxenv_open_new("holes"), fd2;
	unsigned char *a, *b;
	struct store_arg sa = {0};
	bool zero, thread_ok = true, other_ok = true, pwrite_ok = true;

	if (ftruncate(fd, SEQ_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	fd2 = open_rw("holes");
	a = daxenv_map_shared(fd, SEQ_SIZE);
	b = daxenv_map_shared(fd2, SEQ_SIZE);
	zero = read_fault_zero(a, SEQ_SIZE) && read_fault_zero(b, SEQ_SIZE);
	zero = zero && is_zero(a, SEQ_SIZE) && is_zero(b, SEQ_SIZE);
	tap_ok(zero, "a hole reads as zeros through two mappings");
	/* A kernel that cannot replace the zero page spins in the write fault. */
	race_watchdog(30, "a store into a read-faulted hole");

	sa = (struct store_arg){.dst = a, .off = 0, .seed = 50};
	race_threads(1, store_thread, &sa);
	thread_ok &= holds(a, 0, 50, "page 0, mapping A (the writer's)");
	thread_ok &= holds(b, 0, 50, "page 0, mapping B");
	thread_ok &= read_holds(fd, 0, 50, "page 0, read()");
	tap_ok(thread_ok, "a store from another thread into a read-faulted hole is seen by both "
	                  "mappings and read()");

	daxenv_pattern(b + PAGE, PAGE, 51, PAGE);
	other_ok &= holds(a + PAGE, PAGE, 51, "page 1, mapping A");
	other_ok &= read_holds(fd2, PAGE, 51, "page 1, read()");
	tap_ok(other_ok, "a store through a second mapping replaces the zero page in the first");

	{
		static unsigned char buf[PAGE];

		daxenv_pattern(buf, PAGE, 52, 2 * PAGE);
		daxenv_pwrite_all(fd, buf, PAGE, 2 * PAGE);
	}
	pwrite_ok &= holds(a + 2 * PAGE, 2 * PAGE, 52, "page 2, mapping A");
	pwrite_ok &= holds(b + 2 * PAGE, 2 * PAGE, 52, "page 2, mapping B");
	tap_ok(pwrite_ok, "pwrite() into a read-faulted hole is seen through every mapping");
	race_watchdog(0, NULL);
	munmap(a, SEQ_SIZE);
	munmap(b, SEQ_SIZE);
	close(fd2);
	close(fd);
	unlink("holes");
}

static void pipe_byte(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		tap_bail("pipe write: %s", strerror(errno));
}

static char pipe_wait(int fd)
{
	char c = 0;

	if (read(fd, &c, 1) != 1)
		return 0;
	return c;
}

/*
 * Another process maps the file and read-faults pages 0 and 1 (holes);
 * this one stores into page 0 through its own mapping and pwrite()s page
 * 1; the child then reads both through its mapping.
 */
static void check_other_process(void)
{
	int fd = daxenv_open_new("proc"), to_child[2], to_parent[2], status;
	unsigned char *a;
	pid_t pid;
	bool ok;

	if (ftruncate(fd, SEQ_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	a = daxenv_map_shared(fd, SEQ_SIZE);
	(void)read_fault_zero(a, SEQ_SIZE);
	if (pipe(to_child) || pipe(to_parent))
		tap_bail("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		tap_bail("fork: %s", strerror(errno));
	if (pid == 0) {
		int cfd = open("proc", O_RDWR);
		unsigned char *c;
		int bad = 0;

		if (cfd < 0)
			_exit(10);
		c = mmap(NULL, SEQ_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
		if (c == MAP_FAILED)
			_exit(11);
		if (!read_fault_zero(c, SEQ_SIZE))
			bad |= 1;
		pipe_byte(to_parent[1], 'r');
		if (pipe_wait(to_child[0]) != 'g')
			_exit(12);
		if (daxenv_pattern_check(c, PAGE, 60, 0) >= 0)
			bad |= is_zero(c, PAGE) ? 2 : 4;
		if (daxenv_pattern_check(c + PAGE, PAGE, 61, PAGE) >= 0)
			bad |= is_zero(c + PAGE, PAGE) ? 8 : 16;
		_exit(bad);
	}
	if (pipe_wait(to_parent[0]) != 'r')
		tap_bail("the child process did not map the file");
	daxenv_pattern(a, PAGE, 60, 0);
	{
		static unsigned char buf[PAGE];

		daxenv_pattern(buf, PAGE, 61, PAGE);
		daxenv_pwrite_all(fd, buf, PAGE, PAGE);
	}
	pipe_byte(to_child[1], 'g');
	if (waitpid(pid, &status, 0) != pid)
		tap_bail("waitpid: %s", strerror(errno));
	ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!ok)
		tap_diag("child: %s %d (1: hole not zero, 2/4: stored page zeros/other, 8/16: "
		         "pwrite page zeros/other, 10-12: setup)",
		         WIFEXITED(status) ? "exit" : "signal",
		         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	tap_ok(ok, "another process that read-faulted the hole sees a store and a pwrite() there");
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
	munmap(a, SEQ_SIZE);
	close(fd);
	unlink("proc");
}

/*
 * A 2 MiB hole mapped at a 2 MiB aligned address: a read fault there can
 * map the huge zero page (dax_pmd_load_hole; ext4 and xfs do, ext2 reports
 * holes a block at a time and falls back to 4 KiB). A 4 KiB mapping of one page
 * of it (B) read-faults that page too. A store to that page through the
 * big mapping must reach read(), B, and the big mapping itself, and the
 * rest of the big mapping must still read zeros.
 */
static void check_huge_zero_page(void)
{
	const size_t target = PMD_SIZE / 2 + 3 * PAGE;
	long before = daxenv_trace_count("dax_pmd_load_hole"), after;
	long pmd_before = daxenv_trace_count("dax_pmd_fault"), pmd_after;
	int fd = daxenv_open_new("huge");
	unsigned char *area, *big, *b;
	bool ok = true;

	if (ftruncate(fd, PMD_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	area = mmap(NULL, 2 * PMD_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		tap_bail("mmap reserve: %s", strerror(errno));
	big = (unsigned char *)(((uintptr_t)area + PMD_SIZE - 1) & ~(uintptr_t)(PMD_SIZE - 1));
	if (mmap(big, PMD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
	    MAP_FAILED)
		tap_bail("mmap at a 2 MiB boundary: %s", strerror(errno));
	b = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)target);
	if (b == MAP_FAILED)
		tap_bail("mmap of one page: %s", strerror(errno));
	ok &= big[0] == 0 && b[0] == 0;
	after = daxenv_trace_count("dax_pmd_load_hole");
	pmd_after = daxenv_trace_count("dax_pmd_fault");
	tap_diag("read fault of the 2 MiB hole: dax_pmd_fault events %ld, dax_pmd_load_hole %ld",
	         pmd_after - pmd_before, after - before);
	daxenv_pattern(big + target, PAGE, 70, target);
	ok &= holds(big + target, target, 70, "huge mapping");
	ok &= holds(b, target, 70, "4 KiB mapping");
	ok &= read_holds(fd, target, 70, "read()");
	ok &= is_zero(big, target) && is_zero(big + target + PAGE, PMD_SIZE - target - PAGE);
	if (after <= before)
		tap_diag("no huge zero page here: the 4 KiB zero page was tested instead");
	tap_ok(ok, "a store into a 2 MiB hole read-faulted as one (the huge zero page where the "
	           "fs maps it) is seen by read() and every mapping");
	munmap(b, PAGE);
	munmap(area, 2 * PMD_SIZE);
	close(fd);
	unlink("huge");
}

/* ---- the race ---- */

#define NPAGES 16u
#define SIZE (NPAGES * PAGE)
#define READERS 2
#define DEFAULT_ROUNDS 20
#define HOLD_SPINS 20000 /* bound on waiting for readers to fault a page */

enum how { BY_A, BY_B, BY_PWRITE, HOWS };
static const char *const how_name[HOWS] = {"store via mapping A", "store via mapping B",
                                           "pwrite()"};

struct race {
	int fd, fd2;
	uint64_t *a, *b;
	unsigned round;
	unsigned cur;               /* page the writer works on */
	unsigned published[NPAGES]; /* 1 + how, once the write returned */
	bool done;
	/* per page: what the readers saw through a mapping (bit 0: zeros
	 * before the write, bit 1: the data after it) */
	unsigned seen[NPAGES];
	unsigned long reads, zero_before, late[HOWS], garbage, final_bad, raced;
};

/* Word @w's data in round @round: no zero byte, so each byte read is
 * either still the hole's zero or written. */
static uint64_t value(unsigned round, size_t w)
{
	uint64_t x = (uint64_t)round << 24 | w, v = 0x5e;

	for (int i = 0; i < 7; i++)
		v = v << 8 | 0x80 | ((x >> (7 * i)) & 0x7f);
	return v;
}

static void writer(struct race *r, struct race_rng *rng)
{
	static uint64_t buf[PAGE / 8];

	for (unsigned p = 0; p < NPAGES; p++) {
		unsigned how = race_below(rng, HOWS);
		size_t w0 = (size_t)p * PAGE / 8;

		__atomic_store_n(&r->cur, p, __ATOMIC_SEQ_CST);
		/* Let the readers fault the hole first, most of the time. */
		for (unsigned s = 0;
		     s < HOLD_SPINS && !(__atomic_load_n(&r->seen[p], __ATOMIC_SEQ_CST) & 1); s++)
			race_jitter(rng, 50);
		race_jitter(rng, 30000);
		if (how == BY_PWRITE) {
			for (size_t i = 0; i < PAGE / 8; i++)
				buf[i] = value(r->round, w0 + i);
			daxenv_pwrite_all(r->fd, buf, PAGE, (long long)p * PAGE);
		} else {
			volatile uint64_t *dst = (how == BY_A ? r->a : r->b) + w0;

			for (size_t i = 0; i < PAGE / 8; i++)
				dst[i] = value(r->round, w0 + i);
		}
		__atomic_store_n(&r->published[p], how + 1, __ATOMIC_SEQ_CST);
		/* ... and read it again once written. */
		for (unsigned s = 0;
		     s < HOLD_SPINS && !(__atomic_load_n(&r->seen[p], __ATOMIC_SEQ_CST) & 2); s++)
			race_jitter(rng, 50);
		race_jitter(rng, 10000);
	}
	__atomic_store_n(&r->done, true, __ATOMIC_SEQ_CST);
}

static void reader(struct race *r, struct race_rng *rng, unsigned id)
{
	while (!__atomic_load_n(&r->done, __ATOMIC_SEQ_CST)) {
		unsigned p = __atomic_load_n(&r->cur, __ATOMIC_SEQ_CST);
		unsigned pub = __atomic_load_n(&r->published[p], __ATOMIC_SEQ_CST);
		size_t w = (size_t)p * PAGE / 8 + race_below(rng, PAGE / 8);
		unsigned via = race_below(rng, 4); /* 0, 1: A; 2: B; 3: pread */
		uint64_t want = value(r->round, w), v = 0;
		const unsigned char *vb = (const unsigned char *)&v,
		                    *wb = (const unsigned char *)&want;

		race_add(&r->reads);
		if (via == 3) {
			if (pread(r->fd2, &v, 8, (off_t)(w * 8)) != 8)
				tap_bail("pread: %s", strerror(errno));
		} else if (race_load(via == 2 ? &r->b[w] : &r->a[w], &v, 8)) {
			race_add(&r->garbage);
			race_hit(
			    "reader %u: signal loading offset %zu of a file that is not truncated",
			    id, w * 8);
			continue;
		}
		if (pub) {
			if (v != want) {
				race_add(&r->late[pub - 1]);
				race_hit("reader %u: %s at offset %zu saw 0x%016llx after the %s "
				         "returned",
				         id, via == 3 ? "pread()" : "load", w * 8,
				         (unsigned long long)v, how_name[pub - 1]);
				race_witness_bytes(via == 3   ? "pread()"
				                   : via == 2 ? "mapping B"
				                              : "mapping A",
				                   w * 8, &want, &v, 8);
			} else if (via != 3) {
				__atomic_fetch_or(&r->seen[p], 2u, __ATOMIC_SEQ_CST);
			}
			continue;
		}
		for (int i = 0; i < 8; i++) {
			if (vb[i] != 0 && vb[i] != wb[i]) {
				race_add(&r->garbage);
				race_hit("reader %u: offset %zu saw 0x%016llx, neither zeros nor "
				         "the data",
				         id, w * 8, (unsigned long long)v);
				race_witness_bytes("before the write", w * 8, &want, &v, 8);
				break;
			}
		}
		if (v == 0 && via != 3) {
			race_add(&r->zero_before);
			__atomic_fetch_or(&r->seen[p], 1u, __ATOMIC_SEQ_CST);
		}
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

static void setup_round(void *arg, unsigned round)
{
	struct race *r = arg;

	r->round = round;
	/* Truncating to 0 and back makes every page a hole again. */
	if (ftruncate(r->fd, 0) || ftruncate(r->fd, SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	r->cur = 0;
	r->done = false;
	memset(r->published, 0, sizeof(r->published));
	memset(r->seen, 0, sizeof(r->seen));
}

static void check_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static uint64_t buf[SIZE / 8];

	(void)round;
	for (unsigned p = 0; p < NPAGES; p++)
		r->raced += r->seen[p] == 3;
	daxenv_pread_all(r->fd, buf, SIZE, 0);
	for (size_t w = 0; w < SIZE / 8; w++) {
		uint64_t want = value(r->round, w);
		const uint64_t *got = buf[w] != want    ? &buf[w]
		                      : r->a[w] != want ? &r->a[w]
		                      : r->b[w] != want ? &r->b[w]
		                                        : NULL;

		if (got) {
			const char *what = got == &buf[w]    ? "read()"
			                   : got == &r->a[w] ? "mapping A"
			                                     : "mapping B";

			r->final_bad++;
			race_hit("after the round, %s at offset %zu holds 0x%016llx", what, w * 8,
			         (unsigned long long)*got);
			race_witness_bytes(what, w * 8, &want, got, 8);
			break;
		}
	}
}

static void race_fill(void)
{
	long holes = daxenv_trace_count("dax_load_hole");
	struct race r = {0};

	r.fd = daxenv_open_new("race");
	if (ftruncate(r.fd, SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	r.fd2 = open_rw("race");
	r.a = daxenv_map_shared(r.fd, SIZE);
	r.b = daxenv_map_shared(r.fd2, SIZE);

	race_campaign(&(struct race_campaign){.name = "hole-fill",
	                                      .rounds = DEFAULT_ROUNDS,
	                                      .threads = 1 + READERS,
	                                      .setup = setup_round,
	                                      .thread = thread,
	                                      .check = check_round},
	              &r);
	if (holes >= 0)
		holes = daxenv_trace_count("dax_load_hole") - holes;
	tap_diag("reads %lu, zeros seen through a mapping before a write %lu, pages zero-then-data "
	         "%lu of %u, dax_load_hole events %ld",
	         r.reads, r.zero_before, r.raced, race_rounds_run() * NPAGES, holes);

	tap_ok(r.late[BY_A] + r.late[BY_B] == 0,
	       "once a store into the hole returned, every mapping and read() see the data");
	tap_ok(r.late[BY_PWRITE] == 0,
	       "once a pwrite() into the hole returned, every mapping and read() see the data");
	tap_ok(r.garbage == 0, "before the write, readers see zeros or the data, nothing else");
	tap_ok(r.final_bad == 0, "read() and both mappings hold the data after every round");
	tap_ok(r.raced > 0, "the race ran: readers saw a page as zeros, then as data, through a "
	                    "mapping");
	munmap(r.a, SIZE);
	munmap(r.b, SIZE);
	close(r.fd2);
	close(r.fd);
	unlink("race");
}

int main(void)
{
	tap_plan(12);
	daxenv_tap_is_dax("probe");
	check_two_mappings();
	race_watchdog(60, "the other-process and huge zero page checks");
	check_other_process();
	check_huge_zero_page();
	race_watchdog(0, NULL);
	race_fill();
	tap_finish();
}
