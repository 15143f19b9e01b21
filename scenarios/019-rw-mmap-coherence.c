/*
 * rw-mmap-coherence - read()/write() and shared mappings of one file agree at every step
 *
 * The series' "Replace XIP read and write with DAX I/O" made read() and
 * write() copy straight to and from the NV-DIMM (today dax_iomap_rw) while
 * mappings map the same blocks (dax_iomap_fault): there is no page cache
 * to keep the two views coherent, so the kernel must. The bug this shape
 * found in real kernels: a read fault on a hole maps the shared zero page;
 * a write() then allocates a block for that page but leaves the zero page
 * mapped, so the mapping keeps showing zeros that write() overwrote (fixed
 * by tearing the mappings down when dax_iomap_iter allocates: IOMAP_F_NEW,
 * and by locking the entry before the fault looks the block up).
 * Each round starts from a sparse file. Threads, each with its own mapping
 * of the file, own distinct 8-byte slots spread over all pages, and write
 * increasing versions into their slots, alternately with pwrite() and with
 * a store through their mapping; the others read those slots. A version v
 * is stored as 8 bytes that each never decrease as v grows, so even a torn
 * read (read() copies byte by byte) is comparable byte by byte. Promises:
 *  - after its own write of version v, a thread reads exactly v with
 *    pread() (only the owner writes a slot);
 *  - ... and exactly v through its own mapping and through another
 *    thread's mapping of the file (the zero page of a hole that write()
 *    filled is not left mapped);
 *  - a slot of another thread never goes back, through pread() or through
 *    a mapping: every byte read is at least what was read before;
 *  - at the end of every round, read() of the whole file returns exactly
 *    the last versions (zeros elsewhere), and every mapping agrees;
 *  - no kernel warning (the agent's dmesg check).
 * One window is a known kernel window (race_known: a diagnostic, a hit
 * with run.sh --strict): 6.1 lets a mapping show the zero page after a
 * pwrite() of the page returned, for as long as another thread's store is
 * in its write fault filling the page's hole. The fault allocates the
 * block before it replaces the zero page in the mappings
 * (dax_insert_entry), a pwrite() that finds the block allocated has no
 * IOMAP_F_NEW and unmaps nothing, and its data stays invisible in the
 * mappings until the fault ends (milliseconds on TCG; zero-page-vs-pwrite
 * reproduces it alone). A stale view with no store to the page in flight,
 * or one that outlives the stores, is a hit.
 * The race ran if mapping accesses overlapped a pwrite() of the same page
 * and pwrite() filled holes whose zero page a mapping had read.
 *
 * daxlab-groups: default series
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
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
#define NPAGES 8u
#define FILE_SIZE (NPAGES * PAGE)
#define THREADS 3u
#define PER_PAGE 4u /* slots per thread in every page */
#define SLOTS (NPAGES * PER_PAGE)
#define SLOT_GAP 128u /* bytes between slots: two cache lines */
#define OPS 120       /* own writes per thread and round */
#define MAX_VERSION (8u * 255u)
#define DEFAULT_ROUNDS 48
#define SETTLE_NS 1000000000ull /* at most this long for a page's stores to end */

struct race {
	int fd;
	unsigned char *map[THREADS]; /* one mapping per thread */
	unsigned round;
	unsigned version[THREADS][SLOTS]; /* the owner's last version */
	/* per round: who did what to a page, for the "race ran" point */
	unsigned pwrite_inflight[NPAGES], store_inflight[NPAGES];
	unsigned char written[NPAGES], map_read[NPAGES];
	/* what happened */
	unsigned long writes, pwrites, stores, observed, overlaps, holefills, storefills;
	unsigned long own_read, own_map, backwards, final_bad, signals;
	unsigned long windows; /* stale views that ended with a store's fault */
	uint64_t window_ns;    /* the longest of them */
};

static void add(unsigned long *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* Version @v as 8 bytes, each non-decreasing in v; their sum is v. */
static uint64_t encode(unsigned v)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < 8; i++) {
		unsigned b = (v + 7 - i) / 8;

		x |= (uint64_t)(b > 255 ? 255 : b) << (8 * i);
	}
	return x;
}

static unsigned decode(uint64_t x)
{
	unsigned v = 0;

	for (unsigned i = 0; i < 8; i++)
		v += (x >> (8 * i)) & 0xff;
	return v;
}

/* true if every byte of @now is at least the same byte of @before */
static bool not_older(uint64_t now, uint64_t before)
{
	for (unsigned i = 0; i < 8; i++)
		if (((now >> (8 * i)) & 0xff) < ((before >> (8 * i)) & 0xff))
			return false;
	return true;
}

static uint64_t byte_max(uint64_t a, uint64_t b)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < 8; i++) {
		uint64_t ba = (a >> (8 * i)) & 0xff, bb = (b >> (8 * i)) & 0xff;

		x |= (ba > bb ? ba : bb) << (8 * i);
	}
	return x;
}

static size_t slot_off(unsigned t, unsigned k)
{
	return (k % NPAGES) * PAGE + ((k / NPAGES) * THREADS + t) * SLOT_GAP;
}

static uint64_t read_slot(struct race *r, size_t off)
{
	uint64_t v;
	ssize_t n = pread(r->fd, &v, 8, (off_t)off);

	if (n != 8)
		tap_bail("pread at %zu: %s", off, n < 0 ? strerror(errno) : "short read");
	return v;
}

/* A load through mapping @m; false (and a hit) if it faulted. */
static bool map_load(struct race *r, unsigned m, size_t off, uint64_t *v)
{
	int sig = race_load(r->map[m] + off, v, 8);

	if (sig) {
		add(&r->signals);
		race_hit("signal %d loading offset %zu through mapping %u, inside EOF", sig, off,
		         m);
	}
	return !sig;
}

static unsigned stores_on(struct race *r, size_t off)
{
	return __atomic_load_n(&r->store_inflight[off / PAGE], __ATOMIC_SEQ_CST);
}

/* What settles() made of a stale mapping view. */
enum stale { NOT_KNOWN, KNOWN, KNOWN_STRICT };

/*
 * Mapping @m showed @got, older data than read() did (@want). The kernel
 * has one known window for that (see the top of the file): a store's write
 * fault that fills the page's hole allocates the block before it replaces
 * the zero page in the mappings, and a pwrite() that finds the block
 * allocated does not unmap anything. So if a store to the page was in
 * flight around the load (@stores), wait until the page's stores end and
 * load again: if the mapping then agrees (exactly @want, or not older than
 * it), it is that window, reported with race_known(): KNOWN, or
 * KNOWN_STRICT if that made it a hit (run.sh --strict). A stale view that
 * outlives the stores is a broken promise: NOT_KNOWN, the caller's hit.
 */
static enum stale settles(struct race *r, unsigned m, size_t off, uint64_t want, uint64_t got,
                          bool exact, unsigned stores)
{
	uint64_t t0 = race_now_ns(), dt, v;

	if (!stores)
		return NOT_KNOWN;
	while (stores_on(r, off) && race_now_ns() - t0 < SETTLE_NS)
		sched_yield();
	if (!map_load(r, m, off, &v) || !(exact ? v == want : not_older(v, want)))
		return NOT_KNOWN;
	dt = race_now_ns() - t0;
	add(&r->windows);
	if (dt > __atomic_load_n(&r->window_ns, __ATOMIC_RELAXED))
		__atomic_store_n(&r->window_ns, dt, __ATOMIC_RELAXED);
	if (!race_known("offset %zu: mapping %u showed 0x%016llx, read() 0x%016llx, until a "
	                "store's write fault filling the page's hole ended (%.3f ms)",
	                off, m, (unsigned long long)got, (unsigned long long)want,
	                (double)dt / 1e6))
		return KNOWN;
	return KNOWN_STRICT;
}

static void check_own(struct race *r, unsigned t, unsigned k, unsigned v, bool by_pwrite)
{
	size_t off = slot_off(t, k);
	uint64_t want = encode(v), got = read_slot(r, off);
	const char *how = by_pwrite ? "pwrite()" : "a store through the mapping";

	if (got != want) {
		add(&r->own_read);
		race_hit("thread %u wrote version %u at offset %zu with %s; pread() returned %u", t,
		         v, off, how, decode(got));
		race_witness_bytes("pread() after own write", off, &want, &got, 8);
	}
	for (unsigned i = 0; i < 2; i++) {
		unsigned m = (t + i) % THREADS, stores = stores_on(r, off);
		enum stale k;

		if (!map_load(r, m, off, &got))
			continue;
		stores += stores_on(r, off);
		if (got == want || (k = settles(r, m, off, want, got, true, stores)) == KNOWN)
			continue;
		add(&r->own_map);
		if (k == NOT_KNOWN)
			race_hit("thread %u wrote version %u at offset %zu with %s; mapping %u "
			         "shows %u",
			         t, v, off, how, m, decode(got));
		race_witness_bytes("mapping after own write", off, &want, &got, 8);
	}
}

/* Read a slot of another thread through read() and through a mapping. */
static void observe(struct race *r, struct race_rng *rng, unsigned t, uint64_t *seen)
{
	unsigned o = (t + 1 + race_below(rng, THREADS - 1)) % THREADS;
	unsigned k = race_below(rng, SLOTS), page = k % NPAGES;
	size_t off = slot_off(o, k);
	uint64_t *last = &seen[o * SLOTS + k], got;
	unsigned stores;
	enum stale known;
	bool overlap;

	got = read_slot(r, off);
	if (!not_older(got, *last)) {
		add(&r->backwards);
		race_hit("thread %u: slot of thread %u at offset %zu went back in pread(): "
		         "0x%016llx after 0x%016llx",
		         t, o, off, (unsigned long long)got, (unsigned long long)*last);
		race_witness_bytes("pread() of another's slot", off, last, &got, 8);
	}
	*last = byte_max(*last, got);

	__atomic_store_n(&r->map_read[page], 1, __ATOMIC_SEQ_CST);
	overlap = __atomic_load_n(&r->pwrite_inflight[page], __ATOMIC_SEQ_CST) > 0;
	stores = stores_on(r, off);
	if (!map_load(r, t, off, &got))
		return;
	stores += stores_on(r, off);
	overlap |= __atomic_load_n(&r->pwrite_inflight[page], __ATOMIC_SEQ_CST) > 0;
	if (overlap)
		add(&r->overlaps);
	add(&r->observed);
	if (!not_older(got, *last) &&
	    (known = settles(r, t, off, *last, got, false, stores)) != KNOWN) {
		add(&r->backwards);
		if (known == NOT_KNOWN)
			race_hit("thread %u: slot of thread %u at offset %zu went back in its "
			         "mapping: 0x%016llx after 0x%016llx",
			         t, o, off, (unsigned long long)got, (unsigned long long)*last);
		race_witness_bytes("mapping of another's slot", off, last, &got, 8);
	}
	*last = byte_max(*last, got);
}

static void thread(unsigned t, void *arg)
{
	struct race *r = arg;
	uint64_t seen[THREADS * SLOTS] = {0};
	struct race_rng rng;

	race_rng_init(&rng, race_seed() + r->round, t);
	for (unsigned op = 0; op < OPS; op++) {
		unsigned k = race_below(&rng, SLOTS), page = k % NPAGES;
		unsigned v = ++r->version[t][k];
		bool by_pwrite = ((op + t + r->round) & 1) == 0;
		size_t off = slot_off(t, k);
		uint64_t x = encode(v);
		bool first;

		if (v > MAX_VERSION)
			tap_bail("slot version %u does not fit its encoding", v);
		race_jitter(&rng, 2000);
		if (by_pwrite)
			__atomic_fetch_add(&r->pwrite_inflight[page], 1, __ATOMIC_SEQ_CST);
		first = !__atomic_exchange_n(&r->written[page], 1, __ATOMIC_SEQ_CST);
		if (first && __atomic_load_n(&r->map_read[page], __ATOMIC_SEQ_CST))
			add(by_pwrite ? &r->holefills : &r->storefills);
		if (by_pwrite) {
			if (pwrite(r->fd, &x, 8, (off_t)off) != 8)
				tap_bail("pwrite at %zu: %s", off, strerror(errno));
			__atomic_fetch_sub(&r->pwrite_inflight[page], 1, __ATOMIC_SEQ_CST);
			add(&r->pwrites);
		} else {
			int sig;

			__atomic_fetch_add(&r->store_inflight[page], 1, __ATOMIC_SEQ_CST);
			sig = race_store(r->map[t] + off, &x, 8);
			__atomic_fetch_sub(&r->store_inflight[page], 1, __ATOMIC_SEQ_CST);

			if (sig) {
				add(&r->signals);
				race_hit("signal %d storing at offset %zu, inside EOF", sig, off);
			}
			add(&r->stores);
		}
		add(&r->writes);
		check_own(r, t, k, v, by_pwrite);
		observe(r, &rng, t, seen);
	}
}

/* A sparse file again: every page a hole, every mapping's PTEs gone. */
static void setup_round(void *arg, unsigned round)
{
	struct race *r = arg;

	r->round = round;
	if (ftruncate(r->fd, 0) || ftruncate(r->fd, FILE_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	memset(r->version, 0, sizeof(r->version));
	memset(r->written, 0, sizeof(r->written));
	memset(r->map_read, 0, sizeof(r->map_read));
}

static void check_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static unsigned char want[FILE_SIZE], got[FILE_SIZE];

	(void)round;
	memset(want, 0, sizeof(want));
	for (unsigned t = 0; t < THREADS; t++)
		for (unsigned k = 0; k < SLOTS; k++) {
			uint64_t x = encode(r->version[t][k]);

			memcpy(want + slot_off(t, k), &x, 8);
		}
	daxenv_pread_all(r->fd, got, FILE_SIZE, 0);
	if (memcmp(want, got, FILE_SIZE)) {
		size_t i = 0;

		while (want[i] == got[i])
			i++;
		r->final_bad++;
		race_hit("read() after the round differs from the last versions at offset %zu", i);
		race_witness_bytes("read() after the round", i & ~7ul, want + (i & ~7ul),
		                   got + (i & ~7ul), 8);
		return;
	}
	for (unsigned m = 0; m < THREADS; m++) {
		if (memcmp(r->map[m], got, FILE_SIZE)) {
			size_t i = 0;

			while (r->map[m][i] == got[i])
				i++;
			r->final_bad++;
			race_hit("mapping %u differs from read() after the round at offset %zu", m,
			         i);
			race_witness_bytes("mapping after the round", i & ~7ul, got + (i & ~7ul),
			                   r->map[m] + (i & ~7ul), 8);
			return;
		}
	}
}

int main(void)
{
	static struct race r;

	tap_plan(6);
	daxenv_tap_is_dax("probe");
	r.fd = daxenv_open_new("file");
	if (ftruncate(r.fd, FILE_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	for (unsigned m = 0; m < THREADS; m++)
		r.map[m] = daxenv_map_shared(r.fd, FILE_SIZE);

	race_campaign(&(struct race_campaign){.name = "rw-mmap-coherence",
	                                      .rounds = DEFAULT_ROUNDS,
	                                      .threads = THREADS,
	                                      .setup = setup_round,
	                                      .thread = thread,
	                                      .check = check_round},
	              &r);
	tap_diag("writes %lu (%lu pwrite, %lu store), reads of others' slots %lu; "
	         "mapping reads "
	         "during a pwrite of the page %lu; holes filled after a mapping read "
	         "them: %lu by "
	         "pwrite, %lu by a store",
	         r.writes, r.pwrites, r.stores, r.observed, r.overlaps, r.holefills, r.storefills);
	tap_diag("kernel window: %lu mapping loads showed older data than read() while a store's "
	         "write fault was filling the page's hole; all agreed once it ended (longest "
	         "%.3f ms)",
	         r.windows, (double)r.window_ns / 1e6);

	tap_ok(r.own_read == 0 && r.signals == 0,
	       "after its own write a thread reads that version with pread()");
	tap_ok(
	    r.own_map == 0,
	    "after its own write every mapping shows that version, once a racing hole fill ends");
	tap_ok(r.backwards == 0, "another thread's slot never goes back, in pread() or a mapping");
	tap_ok(r.final_bad == 0, "at the end of every round read() returns the last "
	                         "versions and mappings agree");
	tap_ok(r.overlaps > 0 && r.holefills > 0,
	       "the race ran: mapping reads overlapped pwrite() of the page, "
	       "pwrite() filled "
	       "mapped holes");
	for (unsigned m = 0; m < THREADS; m++)
		munmap(r.map[m], FILE_SIZE);
	close(r.fd);
	tap_finish();
}
