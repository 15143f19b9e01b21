/*
 * pmem-perf - latency and bandwidth of a DAX mapping, phase by phase
 *
 * The guest side of the latency model (run.sh --latency): on a DAX mmap of
 * a 32 MiB file it runs
 *   chase            a pointer chase over a random permutation of the lines
 *                    of its first 8 MiB (read latency: every step a
 *                    dependent cache miss)
 *   read-seq-N,      16-byte loads over N-byte accesses, N = 64, 256, 4096,
 *   read-rand-N      at sequential or random N-aligned offsets (bandwidth)
 *   write-seq-N,     16-byte stores over each access, CLWB per line, SFENCE
 *   write-rand-N     per access: persistent writes (bandwidth)
 *   persist          store + CLWB + SFENCE per line, cycling over 4 KiB
 *                    (persist latency, the best case: the lines stay in the
 *                    NV-DIMM's write-combining buffer)
 *   sys-read-4096,   the same file through pread() and pwrite() (the kernel
 *   sys-write-4096   copies from and to the NV-DIMM)
 * Each phase is a marked window (ids below); its guest-measured figures are
 * a TAP diagnostic "# daxlab-perf: phase=... window=... ops=... bytes=...
 * ns=... ns_per_op=... gbps=... base_ns_per_op=..." that the host gathers
 * into pmem-perf.json (the host's daxlab-collect), next to the plugin's modelled figures for the
 * same windows. base_ns_per_op is the same work with --latency-mode stall suspended
 * (DAXLAB_MARK_STALL 0: the vCPU runs as under dram), measured in the same run: for the chase,
 * repetitions alternate between the two inside its window, so host drift hits both alike; for the
 * other phases a pass in window id + 1000 runs first (inside a window too, so that the plugin's own
 * cost of modelling it is the same in both). The slowdown a program sees under stall is ns_per_op -
 * base_ns_per_op. Everything is seeded and fixed-size: the same program every run.
 *
 * daxlab-groups: perf
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "daxlab-marker.h"
#include "daxlab-protocol.h"
#include "lib/daxenv.h"
#include "lib/tap.h"

#define REGION (32u << 20)
#define LINE 64u
#define LINES (REGION / LINE)
#define CHASE_LINES ((8u << 20) / LINE) /* the chase's 8 MiB: 8x the model's cache */
#define CHASE_REPS 10                   /* of each kind, stalled and not, alternating */
#define CHASE_STEPS 5000                /* per repetition */
#define BW_BYTES (1u << 20)             /* per bandwidth phase */
#define PERSISTS 10000
#define SYS_BYTES (2u << 20)

#define W_BASE 1000 /* + the phase's window: the pass with the stalls suspended */

enum { W_CHASE = 101, W_READ = 110, W_WRITE = 120, W_PERSIST = 131, W_SYS_READ = 141, W_SYS_WRITE };

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* @stall: what the stalls cost per operation (stalled - suspended, or a
 * better estimate of it); 0 where nothing was measured with them suspended. */
static void report(const char *phase, int window, uint64_t ops, uint64_t bytes, uint64_t ns,
                   double ns_per_op, double base_ns_per_op, double stall)
{
	tap_diag(DAXLAB_TAG_PERF
	         ": phase=%s window=%d ops=%llu bytes=%llu ns=%llu ns_per_op=%.2f gbps=%.4f "
	         "base_ns_per_op=%.2f stall_ns_per_op=%.2f",
	         phase, window, (unsigned long long)ops, (unsigned long long)bytes,
	         (unsigned long long)ns, ns_per_op, ns ? (double)bytes / (double)ns : 0.0,
	         base_ns_per_op, stall);
}

/* Stall mode's busy-waits on (1) or off (0: as under dram) for this vCPU. */
static void stall(int on)
{
	daxlab_mark(DAXLAB_MARK_STALL, (unsigned long)on);
}

/* One line in four 16-byte SSE2 loads or stores, unrolled: few
 * instructions per byte, as in the published benchmarks (which use AVX-512). */
static inline uint64_t load_line(const volatile uint64_t *p)
{
	uint64_t x;

	__asm__ volatile("movdqa (%1), %%xmm0\n\tmovdqa 16(%1), %%xmm1\n\t"
	                 "movdqa 32(%1), %%xmm2\n\tmovdqa 48(%1), %%xmm3\n\t"
	                 "pxor %%xmm1, %%xmm0\n\tpxor %%xmm3, %%xmm2\n\tpxor %%xmm2, %%xmm0\n\t"
	                 "movq %%xmm0, %0"
	                 : "=r"(x)
	                 : "r"(p)
	                 : "xmm0", "xmm1", "xmm2", "xmm3", "memory");
	return x;
}

static inline void store_line(volatile uint64_t *p, uint64_t v)
{
	__asm__ volatile("movq %1, %%xmm0\n\tmovdqa %%xmm0, (%0)\n\tmovdqa %%xmm0, 16(%0)\n\t"
	                 "movdqa %%xmm0, 32(%0)\n\tmovdqa %%xmm0, 48(%0)" ::"r"(p),
	                 "r"(v)
	                 : "xmm0", "memory");
}

static inline void clwb(volatile void *p)
{
	__asm__ volatile("clwb (%0)" ::"r"(p) : "memory");
}

static inline void sfence(void)
{
	__asm__ volatile("sfence" ::: "memory");
}

/* Sattolo's shuffle: one cycle through the chase's lines; each line's first
 * word holds the offset of the next. Then every page of the file is written
 * once, so no phase takes a page fault. */
static void build_chase(volatile uint64_t *map)
{
	uint32_t *perm = malloc(sizeof(uint32_t) * CHASE_LINES);

	if (!perm)
		tap_bail("out of memory");
	for (uint32_t i = 0; i < CHASE_LINES; i++)
		perm[i] = i;
	for (uint32_t i = CHASE_LINES - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(next_rand() % i), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (uint32_t i = 0; i < CHASE_LINES; i++)
		map[perm[i] * (LINE / 8)] = (uint64_t)perm[(i + 1) % CHASE_LINES] * LINE;
	for (uint64_t off = (uint64_t)CHASE_LINES * LINE; off < REGION; off += 4096)
		map[off / 8] = off;
	free(perm);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * Returns the number of steps taken (all of them, or the chase broke).
 * Reports the median stalled and unstalled repetitions, and the median of
 * the differences of neighbouring pairs (stall_ns_per_op): what the stalls
 * cost per step, with the host's drift taken out.
 */
static uint64_t phase_chase(volatile uint64_t *map)
{
	double per[2][CHASE_REPS], diff[CHASE_REPS];
	uint64_t off = 0, steps = 0, total = 0;

	daxlab_mark(DAXLAB_MARK_WINDOW_BEGIN, W_CHASE);
	for (int r = 0; r < 2 * CHASE_REPS; r++) {
		int on = r % 2;
		uint64_t t0, t;

		stall(on);
		t0 = now_ns();
		for (int i = 0; i < CHASE_STEPS; i++) {
			off = map[off / 8];
			steps += off < REGION;
		}
		t = now_ns() - t0;
		total += on ? t : 0;
		per[on][r / 2] = (double)t / CHASE_STEPS;
	}
	stall(1);
	daxlab_mark(DAXLAB_MARK_WINDOW_END, W_CHASE);
	for (int r = 0; r < CHASE_REPS; r++)
		diff[r] = per[1][r] - per[0][r];
	/* medians: a host hiccup in one repetition does not count */
	qsort(per[0], CHASE_REPS, sizeof(per[0][0]), cmp_double);
	qsort(per[1], CHASE_REPS, sizeof(per[1][0]), cmp_double);
	qsort(diff, CHASE_REPS, sizeof(diff[0]), cmp_double);
	report("chase", W_CHASE, (uint64_t)2 * CHASE_REPS * CHASE_STEPS, 0, total,
	       per[1][CHASE_REPS / 2], per[0][CHASE_REPS / 2], diff[CHASE_REPS / 2]);
	return steps;
}

static uint64_t access_offset(unsigned size, bool random, uint64_t i)
{
	return random ? (next_rand() % (REGION / size)) * size : (i * size) % REGION;
}

static uint64_t do_read(volatile uint64_t *map, unsigned size, bool random, uint64_t *ns)
{
	uint64_t n = BW_BYTES / size, sum = 0, t0 = now_ns();

	for (uint64_t i = 0; i < n; i++) {
		volatile uint64_t *p = map + access_offset(size, random, i) / 8;

		for (unsigned o = 0; o < size / 8; o += LINE / 8)
			sum += load_line(p + o);
	}
	*ns = now_ns() - t0;
	return sum;
}

static uint64_t phase_read(volatile uint64_t *map, unsigned size, bool random, int window)
{
	uint64_t n = BW_BYTES / size, sum, base, t;
	char name[32];

	stall(0);
	daxlab_mark(DAXLAB_MARK_WINDOW_BEGIN, (unsigned long)window + W_BASE);
	sum = do_read(map, size, random, &base);
	daxlab_mark(DAXLAB_MARK_WINDOW_END, (unsigned long)window + W_BASE);
	stall(1);
	daxlab_mark(DAXLAB_MARK_WINDOW_BEGIN, (unsigned long)window);
	sum += do_read(map, size, random, &t);
	daxlab_mark(DAXLAB_MARK_WINDOW_END, (unsigned long)window);
	snprintf(name, sizeof(name), "read-%s-%u", random ? "rand" : "seq", size);
	report(name, window, n, BW_BYTES, t, (double)t / (double)n, (double)base / (double)n,
	       ((double)t - (double)base) / (double)n);
	return sum;
}

static uint64_t do_write(volatile uint64_t *map, unsigned size, bool random)
{
	uint64_t n = BW_BYTES / size, t0 = now_ns();

	for (uint64_t i = 0; i < n; i++) {
		volatile uint64_t *p = map + access_offset(size, random, i) / 8;

		for (unsigned o = 0; o < size / 8; o += LINE / 8) {
			store_line(p + o, i);
			clwb(p + o);
		}
		sfence();
	}
	return now_ns() - t0;
}

static void phase_write(volatile uint64_t *map, unsigned size, bool random, int window)
{
	uint64_t n = BW_BYTES / size, base, t;
	char name[32];

	stall(0);
	daxlab_mark(DAXLAB_MARK_WINDOW_BEGIN, (unsigned long)window + W_BASE);
	base = do_write(map, size, random);
	daxlab_mark(DAXLAB_MARK_WINDOW_END, (unsigned long)window + W_BASE);
	stall(1);
	daxlab_mark(DAXLAB_MARK_WINDOW_BEGIN, (unsigned long)window);
	t = do_write(map, size, random);
	daxlab_mark(DAXLAB_MARK_WINDOW_END, (unsigned long)window);
	snprintf(name, sizeof(name), "write-%s-%u", random ? "rand" : "seq", size);
	report(name, window, n, BW_BYTES, t, (double)t / (double)n, (double)base / (double)n,
	       ((double)t - (double)base) / (double)n);
}

static uint64_t do_persist(volatile uint64_t *map)
{
	uint64_t t0 = now_ns();

	for (int i = 0; i < PERSISTS; i++) {
		volatile uint64_t *p = map + (i % 64) * (LINE / 8);

		*p = (uint64_t)i;
		clwb(p);
		sfence();
	}
	return now_ns() - t0;
}

static void phase_persist(volatile uint64_t *map)
{
	uint64_t base, t;

	stall(0);
	daxlab_mark(DAXLAB_MARK_WINDOW_BEGIN, W_PERSIST + W_BASE);
	base = do_persist(map);
	daxlab_mark(DAXLAB_MARK_WINDOW_END, W_PERSIST + W_BASE);
	stall(1);
	daxlab_mark(DAXLAB_MARK_WINDOW_BEGIN, W_PERSIST);
	t = do_persist(map);
	daxlab_mark(DAXLAB_MARK_WINDOW_END, W_PERSIST);
	report("persist", W_PERSIST, PERSISTS, (uint64_t)PERSISTS * 8, t, (double)t / PERSISTS,
	       (double)base / PERSISTS, ((double)t - (double)base) / PERSISTS);
}

/* pread()/pwrite() of 4 KiB at a time over SYS_BYTES; false if data differ. */
static bool phase_sys(int fd)
{
	static unsigned char buf[4096], back[4096];
	uint64_t t0, t, n = SYS_BYTES / sizeof(buf);
	bool same = true;

	daxenv_pattern(buf, sizeof(buf), 7, 0);
	daxlab_mark(DAXLAB_MARK_WINDOW_BEGIN, W_SYS_WRITE);
	t0 = now_ns();
	for (uint64_t i = 0; i < n; i++)
		daxenv_pwrite_all(fd, buf, sizeof(buf), (long long)(i * sizeof(buf)));
	t = now_ns() - t0;
	daxlab_mark(DAXLAB_MARK_WINDOW_END, W_SYS_WRITE);
	report("sys-write-4096", W_SYS_WRITE, n, SYS_BYTES, t, (double)t / (double)n, 0, 0);

	daxlab_mark(DAXLAB_MARK_WINDOW_BEGIN, W_SYS_READ);
	t0 = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		daxenv_pread_all(fd, back, sizeof(back), (long long)(i * sizeof(back)));
		same &= !memcmp(buf, back, sizeof(buf));
	}
	t = now_ns() - t0;
	daxlab_mark(DAXLAB_MARK_WINDOW_END, W_SYS_READ);
	report("sys-read-4096", W_SYS_READ, n, SYS_BYTES, t, (double)t / (double)n, 0, 0);
	return same;
}

int main(void)
{
	static const unsigned sizes[] = {64, 256, 4096};
	cpu_set_t one;
	volatile uint64_t *map;
	uint64_t steps, sum = 0;
	int fd, w = 0;

	tap_plan(4);
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	sched_setaffinity(0, sizeof(one), &one);
	fd = daxenv_open_new("pmem-perf.dat");
	if (posix_fallocate(fd, 0, REGION) != 0)
		tap_bail("fallocate of %u bytes failed", REGION);
	if (daxenv_is_dax("pmem-perf.dat") != 1)
		tap_skip_all("pmem-perf.dat is not DAX: the figures would be the page cache's");
	tap_ok(true, "pmem-perf.dat is DAX (statx)");
	map = daxenv_map_shared(fd, REGION);
	build_chase(map);

	steps = phase_chase(map);
	tap_ok(steps == (uint64_t)2 * CHASE_REPS * CHASE_STEPS,
	       "the pointer chase stayed in the permutation (%llu steps)",
	       (unsigned long long)steps);
	for (int random = 0; random < 2; random++)
		for (int s = 0; s < 3; s++)
			sum += phase_read(map, sizes[s], random, W_READ + ++w);
	w = 0;
	for (int random = 0; random < 2; random++)
		for (int s = 0; s < 3; s++)
			phase_write(map, sizes[s], random, W_WRITE + ++w);
	phase_persist(map);
	tap_ok(sum != 0, "the read, write and persist phases ran (12 + 1 windows)");
	munmap((void *)map, REGION);
	tap_ok(phase_sys(fd), "pread() reads back what pwrite() wrote");
	close(fd);
	unlink("pmem-perf.dat");
	tap_finish();
}
