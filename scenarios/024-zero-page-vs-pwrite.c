/*
 * zero-page-vs-pwrite - pwrite() of a mapped hole racing the write fault that allocates it
 *
 * A finding of this lab on Debian's 6.1 kernel (fs/dax.c), seen first by
 * rw-mmap-coherence and pmd-pte, reproduced here on its own. A read fault
 * on a hole maps the shared zero page and records a zero entry in the
 * file's XArray (dax_load_hole). A later write fault on that page, through
 * any mapping (dax_iomap_pte_fault: FAULT_FLAG_WRITE, or pfn_mkwrite on
 * the zero page), locks the entry, then ->iomap_begin(IOMAP_WRITE |
 * IOMAP_FAULT) allocates the block (ext4_iomap_alloc, xfs_iomap_write_direct)
 * and commits it: from then on every block lookup finds it mapped. Only
 * after that does dax_fault_iter get the block's pfn (dax_iomap_direct_access)
 * and call dax_insert_entry, which, replacing a zero entry with a block,
 * unmaps the zero page from every mapping of the file (unmap_mapping_pages);
 * then the PTE is set and the entry unlocked. write() does not take the
 * entry lock: dax_iomap_rw -> ->iomap_begin finds the block the fault
 * allocated, so the iomap has no IOMAP_F_NEW, and dax_iomap_iter, which
 * only tears down a page's mappings for a new block (or a COW one), copies
 * the data into the block and returns. So a pwrite() that lands between
 * the fault's allocation and its dax_insert_entry returns while every
 * mapping that read the hole still maps the zero page: loads through them
 * read zeros over data that read() returns, until the fault's
 * dax_insert_entry unmaps the zero page (the next load faults the block
 * in). The promise broken is the one the series' hole-fill fix ("Removes
 * zero pages from the process' address space before trying to replace
 * them with the PFN of the newly allocated block") and the IOMAP_F_NEW
 * invalidation in the write path exist for: once write() returned, every
 * shared mapping shows its data. The window is as wide as the fault's path
 * from the allocation's commit to dax_insert_entry: on TCG a mapping showed
 * zeros for about a millisecond after pwrite() returned, up to tens of ms
 * when a vCPU was preempted (the diagnostics give the longest and mean).
 *
 * Each round makes the file sparse again; mapping A reads every page (the
 * zero page), mapping B reads half of them. Per page, thread S stores a
 * word of the page through B (a write fault that allocates the block, or
 * finds the block pwrite() allocated) while thread W pwrite()s another
 * word of the page and, as soon as pwrite() returned, loads it through A
 * and B; the two start at seeded offsets around each other, spread over
 * the measured length of the fault and of pwrite(). Promises:
 *  - a hole reads as zeros through A, B and read() before it is written;
 *  - read() returns what pwrite() wrote (right after it returned) and, at
 *    the end of the round, both words of every page;
 *  - once pwrite() returned, A and B show its data, and once the store
 *    returned (its fault completed), A and B show the store's data; at the
 *    end of the round A and B hold what read() does. The 6.1 window above
 *    is recognised, and reported as a known kernel window (a hit with
 *    run.sh --strict), when all of these hold: the mapping showed zeros
 *    (the word was a hole that A read-faulted), S's store on that page
 *    began before pwrite() returned and had not returned when the load
 *    began, and once the store returned the mapping shows the data. Any
 *    other stale view is a hit, but for a second known window, seen on
 *    Debian's 6.12: pwrite() allocated the block (IOMAP_F_NEW), its
 *    invalidate_inode_pages2_range() removed the zero entry from the XArray
 *    (dax_invalidate_mapping_entry_sync) and has not yet reached its final
 *    unmap_mapping_pages(); a write fault through B now finds an empty
 *    entry, which dax_insert_entry replaces without unmapping anything (it
 *    unmaps only for a zero entry), so the store returns while A still maps
 *    the zero page. Recognised when S's load through A after its store
 *    returned shows zeros, W's pwrite() of the page began before the store
 *    returned and had not returned when the load began, and A shows the
 *    store once pwrite() returned;
 *  - no kernel warning (the agent's dmesg check).
 * The race ran if S's store (its fault) overlapped W's pwrite() of the
 * same page in both orders (the store first, pwrite() first).
 * Limitation: userland cannot see which of the two allocated the block, so
 * "the store began before pwrite() returned" is the best it can tell of
 * "the fault allocated first"; nor when exactly the fault began.
 *
 * run.sh --widen delays these kernel functions (guest-kernel/widen/), all
 * on the write fault's path after the block is allocated and before
 * dax_insert_entry unmaps the zero page: dax_iomap_direct_access (static,
 * skipped if inlined), dax_insert_entry's entry, and __mark_inode_dirty,
 * which dax_insert_entry calls before it unmaps. Not dax_direct_access:
 * pwrite() calls it too, after its own block lookup, and a slower pwrite()
 * narrows the window rather than widening it.
 * daxlab-widen: dax_iomap_direct_access,dax_insert_entry,__mark_inode_dirty
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
#include <time.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/race.h"
#include "lib/tap.h"

#define PAGE 4096u
#define NPAGES 32u /* pages raced per round */
#define FILE_SIZE (NPAGES * PAGE)
#define WPP (PAGE / 8) /* words per page */
#define W_WORD 0u      /* the word W pwrite()s, in every page */
#define S_WORD 256u    /* the word S stores, 2 KiB further */
#define DEFAULT_ROUNDS 24
#define SETTLE_NS 1000000000ull /* at most this long for a store to return */
#define LEAD_NS 20000ull        /* from the meeting to the earliest start */
#define SPIN_NS 100000ull       /* waits spin this long, then sleep */
#define FIRST_GUESS_NS 200000ull
#define MAX_SPREAD_NS 5000000ull
#define SAMPLES 15u /* lengths kept for the medians */

#define S_TAG 0x5000000000000000ull
#define W_TAG 0x3700000000000000ull

enum { S_THREAD, W_THREAD };

/* One page's race; timestamps are race_now_ns(), 0 until set. */
struct page_race {
	uint64_t met;      /* threads at the meeting point */
	uint64_t s_go;     /* when S starts (set by W) */
	uint64_t s0, s1;   /* S's store: just before, just after */
	uint64_t w0, w1;   /* W's pwrite(): just before, just after */
	unsigned b_loaded; /* B read the hole too */
};

struct race {
	int fd;
	uint64_t *a, *b;
	unsigned round;
	struct page_race pg[NPAGES];
	uint64_t fault_ns[SAMPLES], pwrite_ns[SAMPLES]; /* the last lengths measured */
	/* what happened */
	unsigned long hole_bad, read_bad, stale, signals, final_bad;
	unsigned long s_first, w_first, candidates, windows, stale_loads;
	uint64_t window_ns, window_sum_ns; /* how long mappings showed zeros after pwrite() */
	unsigned long windows2;            /* A showed zeros after S's store returned */
	uint64_t window2_ns, window2_sum_ns;
	int64_t window_from, window_to; /* W's start minus S's start, where seen */
};

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void st(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static uint64_t s_value(const struct race *r, unsigned p)
{
	return S_TAG | (uint64_t)r->round << 20 | p;
}

static uint64_t w_value(const struct race *r, unsigned p)
{
	return W_TAG | (uint64_t)r->round << 20 | p;
}

static const char *map_name(unsigned m)
{
	return m ? "B" : "A";
}

static void nap(uint64_t ns)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};

	nanosleep(&ts, NULL);
}

/*
 * Wait until race_now_ns() is @t: asleep while far, spinning for the last
 * SPIN_NS (a spinning vCPU takes a host CPU from the other one).
 */
static void wait_until(uint64_t t)
{
	uint64_t now;

	while ((now = race_now_ns()) < t) {
		if (t - now > 2 * SPIN_NS)
			nap(t - now - SPIN_NS);
	}
}

/* Wait until *@p is at least @v: spin for SPIN_NS, then nap. */
static uint64_t wait_for(const uint64_t *p, uint64_t v)
{
	uint64_t t0 = race_now_ns(), x;

	while ((x = ld(p)) < v)
		if (race_now_ns() - t0 > SPIN_NS)
			nap(SPIN_NS / 2);
	return x;
}

/* Keep the length of page @p's store or pwrite(). */
static void sample(uint64_t *ring, unsigned p, uint64_t ns)
{
	st(&ring[p % SAMPLES], ns);
}

/* The median of the last lengths (a preempted vCPU does not move it much). */
static uint64_t median(const uint64_t *ring)
{
	uint64_t v[SAMPLES];

	for (unsigned i = 0; i < SAMPLES; i++) {
		uint64_t x = ld(&ring[i]);
		unsigned j = i;

		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	return v[SAMPLES / 2];
}

/*
 * Both threads meet at page @p, then W picks when each starts: W's start
 * minus S's start is uniform over [-pwrite/2, fault), pwrite() and fault
 * being the measured lengths, so pwrite() lands anywhere in the fault and
 * sometimes before it. Returns when the caller starts.
 */
static uint64_t meet(struct race *r, struct race_rng *rng, unsigned id, unsigned p)
{
	struct page_race *pg = &r->pg[p];
	uint64_t f, w, d, base;

	__atomic_fetch_add(&pg->met, 1, __ATOMIC_SEQ_CST);
	wait_for(&pg->met, 2);
	if (id == S_THREAD)
		return wait_for(&pg->s_go, 1);
	f = median(r->fault_ns);
	w = median(r->pwrite_ns) / 2;
	f = f < MAX_SPREAD_NS ? f : MAX_SPREAD_NS;
	w = w < MAX_SPREAD_NS ? w : MAX_SPREAD_NS;
	d = race_below(rng, (unsigned)(f + w)); /* W starts d - w after S */
	base = race_now_ns() + LEAD_NS;
	st(&pg->s_go, base + (d < w ? w - d : 0));
	return base + (d > w ? d - w : 0);
}

/*
 * S's load of its word through A, right after its store of @v through B
 * returned at @t, showed zeros while W's pwrite() of the page had begun and
 * not returned (by the end of the load). That is the second known window (6.12) if, once pwrite()
 * returned, A shows @v: pwrite() allocated the block, and its
 * invalidate_inode_pages2_range() removed the zero entry but had not yet
 * unmapped the zero page, so the fault found an empty entry and did not
 * unmap either. Returns whether it was that window (not a hit).
 */
static bool known_after_store(struct race *r, unsigned p, uint64_t v, uint64_t t)
{
	struct page_race *pg = &r->pg[p];
	size_t w = (size_t)p * WPP + S_WORD;
	uint64_t again = 0, t_ok = 0, dt;
	int sig;

	while (!ld(&pg->w1) && race_now_ns() - t < SETTLE_NS) {
		if (!t_ok && !race_load(&r->a[w], &again, 8) && again == v)
			t_ok = race_now_ns();
		nap(SPIN_NS / 4);
	}
	if (!ld(&pg->w1))
		return false;
	sig = race_load(&r->a[w], &again, 8);
	if (sig || again != v)
		return false;
	if (!t_ok)
		t_ok = race_now_ns();
	dt = t_ok - t;
	race_add(&r->windows2);
	r->window2_sum_ns += dt;
	if (dt > r->window2_ns)
		r->window2_ns = dt;
	if (race_known("offset %zu: mapping A showed the zero page after the store through B "
	               "returned, for %.3f ms, while pwrite() of the page was in flight",
	               w * 8, (double)dt / 1e6)) {
		race_add(&r->stale);
		race_witness_bytes("mapping after the store", w * 8, &v, &(uint64_t){0}, 8);
	}
	return true;
}

static void store_thread(struct race *r, struct race_rng *rng)
{
	for (unsigned p = 0; p < NPAGES; p++) {
		struct page_race *pg = &r->pg[p];
		size_t w = (size_t)p * WPP + S_WORD;
		uint64_t v = s_value(r, p), seen[2], t;
		int sig;

		wait_until(meet(r, rng, S_THREAD, p));
		st(&pg->s0, race_now_ns());
		sig = race_store(&r->b[w], &v, 8);
		t = race_now_ns();
		st(&pg->s1, t);
		sample(r->fault_ns, p, t - pg->s0);
		if (sig) {
			race_add(&r->signals);
			race_hit("signal %d storing at offset %zu through B, inside EOF", sig,
			         w * 8);
			continue;
		}
		/* Its fault completed: no mapping may still show the zero page. */
		for (unsigned m = 0; m < 2; m++) {
			uint64_t *map = m ? r->b : r->a;
			uint64_t w0 = ld(&pg->w0), w1_after;

			sig = race_load(&map[w], &seen[m], 8);
			w1_after = ld(&pg->w1); /* pwrite() had not returned by the load's end */
			if (!sig && seen[m] == v)
				continue;
			if (!sig && m == 0 && seen[m] == 0 && w0 && w0 < t && !w1_after &&
			    known_after_store(r, p, v, t))
				continue;
			race_add(sig ? &r->signals : &r->stale);
			race_hit("offset %zu: store through B returned; mapping %s %s 0x%016llx",
			         w * 8, map_name(m), sig ? "faulted, signal" : "shows",
			         sig ? (unsigned long long)sig : (unsigned long long)seen[m]);
			if (!sig)
				race_witness_bytes("mapping after the store", w * 8, &v, &seen[m],
				                   8);
		}
	}
}

/*
 * W's load of its word through mapping @m right after pwrite() of @v
 * returned at @w1. A stale view is the known window only if it shows the
 * zero page, S's store began before @w1 and had not returned when the
 * load began, and the mapping shows @v once the store returned.
 */
static void check_after_pwrite(struct race *r, unsigned p, unsigned m, uint64_t v, uint64_t w1)
{
	struct page_race *pg = &r->pg[p];
	uint64_t *map = m ? r->b : r->a;
	size_t w = (size_t)p * WPP + W_WORD;
	uint64_t seen, again = 0, s0, s1_before, t_ok = 0, t;
	int sig;

	s0 = ld(&pg->s0);
	s1_before = ld(&pg->s1);
	sig = race_load(&map[w], &seen, 8);
	if (!sig && seen == v)
		return;
	if (sig) {
		race_add(&r->signals);
		race_hit("signal %d loading offset %zu through %s after pwrite()", sig, w * 8,
		         map_name(m));
		return;
	}
	race_add(&r->stale_loads);
	/* Watch the mapping until S's store returned, then once more. */
	t = race_now_ns();
	while (!ld(&pg->s1) && race_now_ns() - t < SETTLE_NS) {
		if (!t_ok && !race_load(&map[w], &again, 8) && again == v)
			t_ok = race_now_ns();
		nap(SPIN_NS / 4);
	}
	sig = race_load(&map[w], &again, 8);
	if (!t_ok)
		t_ok = race_now_ns();
	if (seen == 0 && s0 && s0 < w1 && !s1_before && ld(&pg->s1) && !sig && again == v) {
		uint64_t dt = t_ok - w1;
		int64_t d = (int64_t)(ld(&pg->w0) - s0);

		if (!r->windows || d < r->window_from)
			r->window_from = d;
		if (!r->windows || d > r->window_to)
			r->window_to = d;
		race_add(&r->windows);
		r->window_sum_ns += dt;
		if (dt > r->window_ns)
			r->window_ns = dt;
		if (race_known("offset %zu: mapping %s showed the zero page after pwrite() "
		               "returned, for %.3f ms, while the store through B that "
		               "faulted the page in was in flight",
		               w * 8, map_name(m), (double)dt / 1e6)) {
			race_add(&r->stale);
			race_witness_bytes("mapping after pwrite()", w * 8, &v, &seen, 8);
		}
		return;
	}
	race_add(&r->stale);
	race_hit("offset %zu: pwrite() of 0x%016llx returned, mapping %s showed 0x%016llx "
	         "(then 0x%016llx); S's store %s before pwrite() returned, %s when the load "
	         "began",
	         w * 8, (unsigned long long)v, map_name(m), (unsigned long long)seen,
	         (unsigned long long)again, s0 && s0 < w1 ? "began" : "had not begun",
	         s1_before ? "had returned" : "had not returned");
	race_witness_bytes("mapping after pwrite()", w * 8, &v, &seen, 8);
}

static void pwrite_thread(struct race *r, struct race_rng *rng)
{
	for (unsigned p = 0; p < NPAGES; p++) {
		struct page_race *pg = &r->pg[p];
		size_t w = (size_t)p * WPP + W_WORD;
		uint64_t v = w_value(r, p), got, w0, w1;

		wait_until(meet(r, rng, W_THREAD, p));
		w0 = race_now_ns();
		st(&pg->w0, w0);
		daxenv_pwrite_all(r->fd, &v, 8, (long long)w * 8);
		w1 = race_now_ns();
		st(&pg->w1, w1);
		for (unsigned m = 0; m < 2; m++)
			check_after_pwrite(r, p, m, v, w1);
		sample(r->pwrite_ns, p, w1 - w0);
		daxenv_pread_all(r->fd, &got, 8, (long long)w * 8);
		if (got != v) {
			race_add(&r->read_bad);
			race_hit("offset %zu: pwrite() of 0x%016llx returned, read() returned "
			         "0x%016llx",
			         w * 8, (unsigned long long)v, (unsigned long long)got);
			race_witness_bytes("read() after pwrite()", w * 8, &v, &got, 8);
		}
	}
}

static void thread(unsigned id, void *arg)
{
	struct race *r = arg;
	struct race_rng rng;

	race_rng_init(&rng, race_seed() + r->round, id);
	if (id == S_THREAD)
		store_thread(r, &rng);
	else
		pwrite_thread(r, &rng);
}

static bool all_zero(const volatile uint64_t *p, size_t words)
{
	for (size_t i = 0; i < words; i++)
		if (p[i])
			return false;
	return true;
}

/* A sparse file again; A reads every page (the zero page), B half of them. */
static void setup_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static uint64_t buf[FILE_SIZE / 8];
	struct race_rng rng;

	r->round = round;
	race_rng_init(&rng, race_seed() + r->round, 2);
	if (ftruncate(r->fd, 0) || ftruncate(r->fd, FILE_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	memset(r->pg, 0, sizeof(r->pg));
	daxenv_pread_all(r->fd, buf, FILE_SIZE, 0);
	if (!all_zero(buf, FILE_SIZE / 8)) {
		r->hole_bad++;
		race_hit("read() of the sparse file returned data");
	}
	for (unsigned p = 0; p < NPAGES; p++) {
		r->pg[p].b_loaded = race_below(&rng, 2);
		if (!all_zero(r->a + (size_t)p * WPP, WPP) ||
		    (r->pg[p].b_loaded && !all_zero(r->b + (size_t)p * WPP, WPP))) {
			r->hole_bad++;
			race_hit("page %u of the sparse file does not read zeros through a mapping",
			         p);
		}
	}
}

/* The file as the threads left it, through read(), A and B; and the orders. */
static void check_round(void *arg, unsigned round)
{
	struct race *r = arg;
	static uint64_t want[FILE_SIZE / 8], got[FILE_SIZE / 8];

	(void)round;
	memset(want, 0, sizeof(want));
	for (unsigned p = 0; p < NPAGES; p++) {
		const struct page_race *pg = &r->pg[p];

		want[(size_t)p * WPP + W_WORD] = w_value(r, p);
		want[(size_t)p * WPP + S_WORD] = s_value(r, p);
		if (pg->s0 < pg->w1 && pg->w0 < pg->s1)
			race_add(pg->s0 < pg->w0 ? &r->s_first : &r->w_first);
		if (pg->s0 < pg->w1 && pg->s1 > pg->w1)
			race_add(&r->candidates);
	}
	daxenv_pread_all(r->fd, got, FILE_SIZE, 0);
	for (unsigned m = 0; m < 3; m++) {
		const uint64_t *seen = m == 0 ? got : m == 1 ? r->a : r->b;
		const char *how = m == 0 ? "read()" : m == 1 ? "mapping A" : "mapping B";

		for (size_t i = 0; i < FILE_SIZE / 8; i++) {
			if (seen[i] == want[i])
				continue;
			if (m == 0)
				r->read_bad++;
			else
				r->final_bad++;
			race_hit("end of round, offset %zu: %s holds 0x%016llx, expected 0x%016llx",
			         i * 8, how, (unsigned long long)seen[i],
			         (unsigned long long)want[i]);
			race_witness_bytes(how, i * 8, &want[i], &seen[i], 8);
			break;
		}
	}
}

int main(void)
{
	static struct race r;

	tap_plan(5);
	daxenv_tap_is_dax("probe");
	r.fd = daxenv_open_new("file");
	if (ftruncate(r.fd, FILE_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	r.a = daxenv_map_shared(r.fd, FILE_SIZE);
	r.b = daxenv_map_shared(r.fd, FILE_SIZE);
	for (unsigned i = 0; i < SAMPLES; i++) {
		r.fault_ns[i] = FIRST_GUESS_NS;
		r.pwrite_ns[i] = FIRST_GUESS_NS;
	}

	race_campaign(&(struct race_campaign){.name = "zero-page-vs-pwrite",
	                                      .rounds = DEFAULT_ROUNDS,
	                                      .threads = 2,
	                                      .setup = setup_round,
	                                      .thread = thread,
	                                      .check = check_round},
	              &r);
	tap_diag("pages raced %lu: the store's fault and pwrite() overlapped %lu times with the "
	         "store first, %lu with pwrite() first; the store was in flight when pwrite() "
	         "returned %lu times",
	         (unsigned long)race_rounds_run() * NPAGES, r.s_first, r.w_first, r.candidates);
	tap_diag("lengths at the end (medians): store with its fault %.1f us, pwrite() %.1f us; "
	         "pwrite() began %.1f to %.1f us after the store where the window was seen",
	         (double)median(r.fault_ns) / 1e3, (double)median(r.pwrite_ns) / 1e3,
	         r.windows ? (double)r.window_from / 1e3 : 0.0,
	         r.windows ? (double)r.window_to / 1e3 : 0.0);
	tap_diag("kernel window: %lu loads showed the zero page after pwrite() returned while the "
	         "allocating fault was in flight (%.2f per 100 pages; longest %.3f ms, mean "
	         "%.3f ms); %lu stale loads in all",
	         r.windows, 100.0 * (double)r.windows / ((double)race_rounds_run() * NPAGES),
	         (double)r.window_ns / 1e6,
	         r.windows ? (double)r.window_sum_ns / 1e6 / (double)r.windows : 0.0,
	         r.stale_loads);

	tap_diag("second kernel window: %lu loads through A showed the zero page after the store "
	         "through B returned while pwrite() of the page was in flight (%.2f per 100 "
	         "pages; longest %.3f ms, mean %.3f ms)",
	         r.windows2, 100.0 * (double)r.windows2 / ((double)race_rounds_run() * NPAGES),
	         (double)r.window2_ns / 1e6,
	         r.windows2 ? (double)r.window2_sum_ns / 1e6 / (double)r.windows2 : 0.0);
	tap_ok(r.hole_bad == 0, "a hole reads as zeros through both mappings and read()");
	tap_ok(r.read_bad == 0, "read() returns what pwrite() and the store wrote");
	tap_ok(r.stale == 0 && r.signals == 0 && r.final_bad == 0,
	       "once pwrite() returned and the allocating fault completed, every mapping shows "
	       "the data");
	tap_ok(r.s_first > 0 && r.w_first > 0,
	       "the race ran: the store's fault overlapped pwrite() of the page, in both orders");
	munmap(r.a, FILE_SIZE);
	munmap(r.b, FILE_SIZE);
	close(r.fd);
	tap_finish();
}
