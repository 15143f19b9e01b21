/*
 * gup-vs-truncate - DAX pages pinned by get_user_pages as I/O buffers, racing truncate and punch
 *
 * A DAX page is the NV-DIMM block itself: when the kernel pins it for I/O
 * (get_user_pages, as O_DIRECT, vmsplice or process_vm_readv/writev do)
 * and the file is truncated meanwhile, freeing the block would let the
 * I/O read or write a block that now belongs to another file. 6.1 makes
 * truncate and hole punch wait: dax_layout_busy_page() unmaps the range
 * and ext4/xfs "break layouts" until the pages' refcounts drop (the
 * series' fault-vs-truncate fix taken to pinned pages). Here the I/O
 * buffer is a shared mapping of a DAX file; one thread truncates it to
 * zero or punches holes in it and fills it again, another does I/O with
 * its pages as the buffer, and a scribbler creates, checks and deletes
 * files of its own so that freed blocks get reused. Every byte says where
 * it came from: the DAX file's own data (DAX_B), the I/O's data (IO_B,
 * only ever written into the DAX file), or a scribbler's file (OTHER_B).
 * On a DAX filesystem another file opened O_DIRECT is DAX too, and its
 * O_DIRECT I/O is dax_iomap_rw copying to and from the buffer through page
 * faults, not pins: the pins come from vmsplice (get_user_pages_fast) and
 * process_vm_readv/writev (pin_user_pages_remote); the O_DIRECT copies run
 * as well (a diagnostic says which is which). Promises:
 *  - a truncate of a page that a pipe holds by vmsplice waits until the
 *    pipe is drained, and the pipe returns the page's data;
 *  - data the I/O reads out of a pinned page (pipe, process_vm_readv, an
 *    O_DIRECT write to another file) is the DAX file's: never a
 *    scribbler's bytes, never a byte nobody wrote;
 *  - data the I/O writes into a pinned page (process_vm_writev, O_DIRECT
 *    read from another file) lands in the DAX file or the I/O fails: no
 *    other file ever holds IO_B, checked when a scribbler file is created,
 *    when it is deleted, and after every round;
 *  - no crash, no kernel warning (the agent's dmesg check).
 * The race ran if truncates or punches overlapped pinned I/Os in time.
 *
 * run.sh --widen delays these kernel functions (guest-kernel/widen/):
 * daxlab-widen: dax_layout_busy_page_range,truncate_pagecache_range,truncate_pagecache
 * daxlab-groups: default series
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/race.h"
#include "lib/tap.h"

#define PAGE 4096u
#define NPAGES 16u
#define SIZE (NPAGES * PAGE)
#define MAX_IO_PAGES 4u
#define CYCLES 6 /* truncates or punches per round */
#define MAX_LOG 4096
#define SCRIBBLE_SIZE (8 * PAGE)
#define SCRIBBLE_KEEP 4
#define HOLD_MS 300 /* how long the pipe holds the page in the first check */
#define DEFAULT_ROUNDS 16

#define DAX_B 0xda
#define IO_B 0x3c
#define OTHER_B 0xf0

enum kind { VMSPLICE, PVM_READ, PVM_WRITE, DIRECT_READ, DIRECT_WRITE, KINDS };
static const char *const kind_name[KINDS] = {"vmsplice", "process_vm_readv", "process_vm_writev",
                                             "O_DIRECT read into", "O_DIRECT write from"};

struct span {
	uint64_t t0, t1;
};

struct race {
	int fd, direct, sink; /* the mapped DAX file; O_DIRECT source and sink */
	unsigned char *map;
	int pipe[2];
	unsigned round;
	bool done, punch_ok;
	/* the round's truncates and I/Os, for the overlap count */
	struct span cuts[CYCLES];
	unsigned ncuts;
	struct span ios[KINDS][MAX_LOG];
	unsigned nios[KINDS];
	/* what happened */
	unsigned long io_ok[KINDS], io_failed[KINDS], overlaps[KINDS], truncs, punches, scribbles;
	unsigned long bad_read, bad_other, bad_file;
	uint64_t cut_ns, cut_max_ns; /* time in truncates and punches, and the longest */
};

/* Which bytes may appear: bit 0 zero, 1 DAX_B, 2 IO_B, 3 OTHER_B. */
static unsigned byte_bit(unsigned char v)
{
	switch (v) {
	case 0:
		return 1u << 0;
	case DAX_B:
		return 1u << 1;
	case IO_B:
		return 1u << 2;
	case OTHER_B:
		return 1u << 3;
	}
	return 1u << 4;
}

#define DAX_BYTES (1u << 0 | 1u << 1 | 1u << 2)
#define OTHER_BYTES (1u << 3)

static const char *mask_name(unsigned mask)
{
	return mask == DAX_BYTES ? "zeros, the file's or the I/O's bytes" : "the scribbler's bytes";
}

/* First offset in @b holding a byte outside @mask, or -1. */
static long first_bad(const unsigned char *b, size_t n, unsigned mask)
{
	for (size_t i = 0; i < n; i++)
		if (!(byte_bit(b[i]) & mask))
			return (long)i;
	return -1;
}

static bool check_bytes(const unsigned char *b, size_t n, size_t off, unsigned mask,
                        const char *what)
{
	long i = first_bad(b, n, mask);
	unsigned char want = mask == OTHER_BYTES ? OTHER_B : DAX_B;

	if (i < 0)
		return true;
	race_hit("%s: byte 0x%02x at offset %zu, expected %s", what, b[i], off + (size_t)i,
	         mask_name(mask));
	race_witness_bytes(what, off + (size_t)i, &want, &b[i], 1);
	return false;
}

static void add(unsigned long *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static bool finished(struct race *r)
{
	return __atomic_load_n(&r->done, __ATOMIC_SEQ_CST);
}

static void fill(int fd, unsigned char b, size_t off, size_t len)
{
	static unsigned char buf[SIZE] __attribute__((aligned(PAGE)));

	memset(buf, b, len);
	daxenv_pwrite_all(fd, buf, len, (long long)off);
}

/* ---- the truncater ---- */

static void truncater(struct race *r, struct race_rng *rng)
{
	for (unsigned c = 0; c < CYCLES; c++) {
		bool punch = r->punch_ok && race_below(rng, 2);
		size_t off = 0, len = SIZE;
		struct span s;

		race_jitter(rng, 400000);
		if (punch) {
			off = race_below(rng, NPAGES) * PAGE;
			len = (1 + race_below(rng, NPAGES - off / PAGE)) * PAGE;
		}
		s.t0 = race_now_ns();
		if (punch) {
			if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			              (off_t)len))
				tap_bail("punch hole: %s", strerror(errno));
			add(&r->punches);
		} else {
			if (ftruncate(r->fd, 0))
				tap_bail("ftruncate 0: %s", strerror(errno));
			add(&r->truncs);
		}
		s.t1 = race_now_ns();
		r->cuts[r->ncuts++] = s;
		race_jitter(rng, 200000);
		if (!punch && ftruncate(r->fd, SIZE))
			tap_bail("ftruncate grow: %s", strerror(errno));
		race_jitter(rng, 100000);
		fill(r->fd, DAX_B, off, len);
	}
	__atomic_store_n(&r->done, true, __ATOMIC_SEQ_CST);
}

/* ---- the I/O ---- */

static ssize_t do_io(struct race *r, enum kind k, size_t off, size_t len, unsigned char *buf)
{
	pid_t self = getpid();
	struct iovec local = {buf, len}, remote = {r->map + off, len};
	ssize_t n;

	switch (k) {
	case VMSPLICE:
		n = vmsplice(r->pipe[1], &remote, 1, SPLICE_F_NONBLOCK);
		if (n > 0) {
			/* hold the pins a while, then drain the pipe */
			for (volatile unsigned i = 0; i < 20000; i++)
				;
			if (read(r->pipe[0], buf, (size_t)n) != n)
				tap_bail("reading the pipe: %s", strerror(errno));
		}
		return n;
	case PVM_READ:
		return process_vm_readv(self, &local, 1, &remote, 1, 0);
	case PVM_WRITE:
		memset(buf, IO_B, len);
		return process_vm_writev(self, &local, 1, &remote, 1, 0);
	case DIRECT_READ:
		return pread(r->direct, r->map + off, len, (off_t)off);
	case DIRECT_WRITE:
		return pwrite(r->sink, r->map + off, len, (off_t)off);
	default:
		return -1;
	}
}

static void io(struct race *r, struct race_rng *rng)
{
	static unsigned char buf[MAX_IO_PAGES * PAGE] __attribute__((aligned(PAGE)));
	static unsigned char back[MAX_IO_PAGES * PAGE] __attribute__((aligned(PAGE)));

	while (!finished(r)) {
		unsigned k = race_below(rng, KINDS) % KINDS; /* "% KINDS" for gcc -Warray-bounds */
		size_t off = race_below(rng, NPAGES) * PAGE;
		size_t len = (1 + race_below(rng, MAX_IO_PAGES)) * PAGE;
		struct span s;
		ssize_t n;
		char what[64];

		if (off + len > SIZE)
			len = SIZE - off;
		s.t0 = race_now_ns();
		n = do_io(r, (enum kind)k, off, len, buf);
		s.t1 = race_now_ns();
		if (r->nios[k] < MAX_LOG)
			r->ios[k][r->nios[k]++] = s;
		if (n <= 0) {
			add(&r->io_failed[k]);
			continue;
		}
		add(&r->io_ok[k]);
		snprintf(what, sizeof(what), "%s the DAX page", kind_name[k]);
		if (k == VMSPLICE || k == PVM_READ) {
			if (!check_bytes(buf, (size_t)n, off, DAX_BYTES, what))
				add(&r->bad_read);
		} else if (k == DIRECT_WRITE) {
			daxenv_pread_all(r->sink, back, (size_t)n, (long long)off);
			if (!check_bytes(back, (size_t)n, off, DAX_BYTES, what))
				add(&r->bad_read);
		}
	}
}

/* ---- the scribbler ---- */

static void scribble(const char *name)
{
	static unsigned char buf[SCRIBBLE_SIZE];
	int fd = daxenv_open_new(name);

	memset(buf, OTHER_B, sizeof(buf));
	daxenv_pwrite_all(fd, buf, sizeof(buf), 0);
	close(fd);
}

static bool scribble_intact(const char *name)
{
	static unsigned char buf[SCRIBBLE_SIZE];
	char what[64];
	int fd = open(name, O_RDONLY);

	if (fd < 0)
		tap_bail("open %s: %s", name, strerror(errno));
	daxenv_pread_all(fd, buf, sizeof(buf), 0);
	close(fd);
	snprintf(what, sizeof(what), "another file (%s)", name);
	return check_bytes(buf, sizeof(buf), 0, OTHER_BYTES, what);
}

static void scribbler(struct race *r)
{
	char name[32];
	unsigned n = 0;

	while (!finished(r)) {
		snprintf(name, sizeof(name), "scribble-%u", n % SCRIBBLE_KEEP);
		if (n >= SCRIBBLE_KEEP) {
			if (!scribble_intact(name))
				add(&r->bad_other);
			if (unlink(name))
				tap_bail("unlink %s: %s", name, strerror(errno));
		}
		scribble(name);
		if (!scribble_intact(name))
			add(&r->bad_other);
		add(&r->scribbles);
		n++;
	}
	for (unsigned i = 0; i < SCRIBBLE_KEEP && i < n; i++) {
		snprintf(name, sizeof(name), "scribble-%u", i);
		if (!scribble_intact(name))
			add(&r->bad_other);
		unlink(name);
	}
}

static void thread(unsigned id, void *arg)
{
	struct race *r = arg;
	struct race_rng rng;

	race_rng_init(&rng, race_seed() + r->round, id);
	if (id == 0)
		truncater(r, &rng);
	else if (id == 1)
		io(r, &rng);
	else
		scribbler(r);
}

static void setup_round(void *arg, unsigned round)
{
	struct race *r = arg;

	r->round = round;
	if (ftruncate(r->fd, 0) || ftruncate(r->fd, SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	fill(r->fd, DAX_B, 0, SIZE);
	if (ftruncate(r->sink, 0) || ftruncate(r->sink, SIZE))
		tap_bail("ftruncate sink: %s", strerror(errno));
	r->done = false;
	r->ncuts = 0;
	memset(r->nios, 0, sizeof(r->nios));
}

static void check_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static unsigned char buf[SIZE] __attribute__((aligned(PAGE)));

	(void)round;
	for (unsigned c = 0; c < r->ncuts; c++) {
		uint64_t d = r->cuts[c].t1 - r->cuts[c].t0;

		r->cut_ns += d;
		if (d > r->cut_max_ns)
			r->cut_max_ns = d;
	}
	for (enum kind k = 0; k < KINDS; k++)
		for (unsigned i = 0; i < r->nios[k]; i++)
			for (unsigned c = 0; c < r->ncuts; c++)
				if (r->ios[k][i].t0 < r->cuts[c].t1 &&
				    r->cuts[c].t0 < r->ios[k][i].t1) {
					r->overlaps[k]++;
					break;
				}
	daxenv_pread_all(r->fd, buf, SIZE, 0);
	if (!check_bytes(buf, SIZE, 0, DAX_BYTES, "the DAX file after the round"))
		r->bad_file++;
	daxenv_pread_all(r->sink, buf, SIZE, 0);
	if (!check_bytes(buf, SIZE, 0, DAX_BYTES, "the O_DIRECT sink after the round"))
		r->bad_file++;
	daxenv_pread_all(r->direct, buf, SIZE, 0);
	for (size_t i = 0; i < SIZE; i++) {
		if (buf[i] != IO_B) {
			unsigned char want = IO_B;

			race_hit("the O_DIRECT source, only ever read, changed at offset %zu", i);
			race_witness_bytes("O_DIRECT source", i, &want, &buf[i], 1);
			r->bad_other++;
			break;
		}
	}
}

/* ---- the pinned truncate ---- */

struct hold {
	int fd, pipe[2];
	bool truncated;
	uint64_t t0, t1;
	bool early;
	unsigned char buf[PAGE];
	ssize_t got;
};

static void hold_thread(unsigned id, void *arg)
{
	struct hold *h = arg;

	if (id == 0) {
		h->t0 = race_now_ns();
		if (ftruncate(h->fd, 0))
			tap_bail("ftruncate 0: %s", strerror(errno));
		h->t1 = race_now_ns();
		__atomic_store_n(&h->truncated, true, __ATOMIC_SEQ_CST);
		return;
	}
	nanosleep(&(struct timespec){.tv_nsec = HOLD_MS * 1000000L}, NULL);
	h->early = __atomic_load_n(&h->truncated, __ATOMIC_SEQ_CST);
	h->got = read(h->pipe[0], h->buf, PAGE);
}

/* Pin the page of a DAX file with vmsplice, truncate it, drain the pipe. */
static void check_pinned_truncate(void)
{
	int fd = daxenv_open_new("held");
	struct hold h = {.fd = fd};
	unsigned char *map;
	struct iovec iov;
	ssize_t n;

	fill(fd, DAX_B, 0, PAGE);
	map = daxenv_map_shared(fd, PAGE);
	if (pipe(h.pipe))
		tap_bail("pipe: %s", strerror(errno));
	iov = (struct iovec){map, PAGE};
	n = vmsplice(h.pipe[1], &iov, 1, 0);
	if (n != PAGE)
		tap_bail("vmsplice of a DAX page: %s", n < 0 ? strerror(errno) : "short");
	race_threads(2, hold_thread, &h);
	tap_diag("truncate of a page held by a pipe returned after %.1f ms (the pipe was drained "
	         "after %u ms)",
	         (double)(h.t1 - h.t0) / 1e6, HOLD_MS);
	tap_ok(!h.early && h.t1 - h.t0 >= HOLD_MS * 1000000ull,
	       "truncate waits until a page pinned by vmsplice is released");
	tap_ok(h.got == PAGE && first_bad(h.buf, PAGE, 1u << 1) < 0,
	       "the pipe returns the page's data");
	munmap(map, PAGE);
	close(h.pipe[0]);
	close(h.pipe[1]);
	close(fd);
	unlink("held");
}

int main(void)
{
	static struct race r;
	unsigned long pinned_ok = 0, pinned_overlaps = 0;
	int dax;

	tap_plan(7);
	daxenv_tap_is_dax("probe");
	check_pinned_truncate();

	r.fd = daxenv_open_new("dax");
	if (ftruncate(r.fd, SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	r.map = daxenv_map_shared(r.fd, SIZE);
	r.direct = open("direct", O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	r.sink = open("sink", O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (r.direct < 0 || r.sink < 0)
		tap_bail("O_DIRECT open: %s", strerror(errno));
	fill(r.direct, IO_B, 0, SIZE);
	dax = daxenv_is_dax("direct");
	tap_diag("O_DIRECT open accepted; the O_DIRECT files are %s, so their I/O %s; pins: "
	         "vmsplice (get_user_pages_fast), process_vm_readv/writev "
	         "(pin_user_pages_remote)",
	         dax == 1 ? "DAX" : "not DAX",
	         dax == 1 ? "copies through page faults on the buffer (dax_iomap_rw), no pin"
	                  : "pins the buffer (iomap direct I/O)");
	if (pipe(r.pipe))
		tap_bail("pipe: %s", strerror(errno));
	r.punch_ok = fallocate(r.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE) == 0;

	race_campaign(&(struct race_campaign){.name = "gup-vs-truncate",
	                                      .rounds = DEFAULT_ROUNDS,
	                                      .threads = 3,
	                                      .setup = setup_round,
	                                      .thread = thread,
	                                      .check = check_round},
	              &r);
	tap_diag("%lu truncates, %lu hole punches%s (%.1f ms in all, longest %.1f ms); %lu "
	         "scribbled files",
	         r.truncs, r.punches, r.punch_ok ? "" : " (punch not supported)",
	         (double)r.cut_ns / 1e6, (double)r.cut_max_ns / 1e6, r.scribbles);
	for (enum kind k = 0; k < KINDS; k++)
		tap_diag(
		    "%s the DAX pages: %lu done, %lu failed, %lu overlapped a truncate or punch",
		    kind_name[k], r.io_ok[k], r.io_failed[k], r.overlaps[k]);
	pinned_ok = r.io_ok[VMSPLICE] + r.io_ok[PVM_READ] + r.io_ok[PVM_WRITE];
	pinned_overlaps = r.overlaps[VMSPLICE] + r.overlaps[PVM_READ] + r.overlaps[PVM_WRITE];

	tap_ok(r.bad_read == 0, "data read out of pinned DAX pages is the DAX file's");
	tap_ok(r.bad_other == 0, "the I/O's data never lands in another file");
	tap_ok(r.bad_file == 0, "after every round the DAX file and the sink hold only its data");
	tap_ok(pinned_ok > 0 && pinned_overlaps > 0,
	       "the race ran: truncates and punches overlapped pinned I/Os");
	munmap(r.map, SIZE);
	close(r.fd);
	close(r.direct);
	close(r.sink);
	tap_finish();
}
