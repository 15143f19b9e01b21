/*
 * flush-litmus - exact counts of pmem stores, loads, NT stores, flushes and fences
 *
 * Inside a marked window, on a DAX mapping of a file, issues known numbers
 * of each instruction kind the daxlab-pmem plugin tells apart: 8-byte
 * stores and loads, MOVNTI and MOVNTDQ, CLFLUSH, CLFLUSHOPT, CLWB, SFENCE,
 * MFENCE, LFENCE, LOCK-prefixed adds and XCHG (the last two on the stack,
 * so they count as fences only). It prints what it issued as a
 * "daxlab-expect-window" diagnostic; the host compares it with the
 * plugin's counts for the same window, which must match exactly.
 * Without the plugin the marker is a NOP and the program still passes.
 *
 * daxlab-groups: litmus devdax
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daxlab-marker.h"
#include "daxlab-protocol.h"
#include "lib/daxenv.h"
#include "lib/tap.h"

#define FILE_SIZE (64u * 4096u)
#define LINE 64u

enum {
	N_STORE = 96,
	N_LOAD = 24,
	N_MOVNTI = 40,
	N_MOVNTDQ = 8,
	N_CLFLUSH = 30,
	N_CLFLUSHOPT = 20,
	N_CLWB = 10,
	N_SFENCE = 7,
	N_MFENCE = 5,
	N_LFENCE = 3,
	N_LOCK = 4,
	N_XCHG = 2
};

static inline void st64(volatile uint64_t *p, uint64_t v)
{
	__asm__ volatile("movq %1, (%0)" ::"r"(p), "r"(v) : "memory");
}

static inline uint64_t ld64(const volatile uint64_t *p)
{
	uint64_t v;

	__asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(p) : "memory");
	return v;
}

static bool cpu_has(unsigned leaf, unsigned sub, int reg, unsigned bit)
{
	unsigned r[4];

	if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3]))
		return false;
	return r[reg] & (1u << bit);
}

int main(void)
{
	const char *dir = daxenv_workdir();
	uint64_t seq = strtoull(getenv("DAXLAB_SEQ") ? getenv("DAXLAB_SEQ") : "0", NULL, 10);
	uint64_t window = seq * 1000 + 1, lock_target = 0, xchg_target = 0;
	unsigned char *map;
	size_t maplen;
	cpu_set_t one;
	int fd;

	if (chdir(dir) != 0)
		tap_skip_all("cannot enter %s: %s", dir, strerror(errno));
	/* ebx bit 23 CLFLUSHOPT, bit 24 CLWB (leaf 7); edx bit 19 CLFLUSH (leaf 1) */
	if (!cpu_has(7, 0, 1, 23) || !cpu_has(7, 0, 1, 24) || !cpu_has(1, 0, 3, 19))
		tap_skip_all("the CPU model lacks CLFLUSH, CLFLUSHOPT or CLWB (use -cpu max)");
	tap_plan(3);
	/* One vCPU for the whole window: the counts are per window, not per CPU. */
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	sched_setaffinity(0, sizeof(one), &one);

	/* A file on the DAX mount, or the device dax itself (--mode devdax). */
	map = daxenv_map("litmus", FILE_SIZE, &fd, &maplen);
	if (map == MAP_FAILED)
		tap_bail("cannot map the litmus memory: %s", strerror(errno));
	/* Fault every page in before the window opens. */
	for (unsigned off = 0; off < FILE_SIZE; off += 4096)
		map[off] = 1;
	tap_ok(daxenv_map_is_dax(fd, "litmus") == 1, "the litmus mapping is DAX");

	daxlab_mark(DAXLAB_MARK_WINDOW_BEGIN, window);
	/* Stores: one per line over the first 96 lines. */
	for (unsigned i = 0; i < N_STORE; i++)
		st64((volatile uint64_t *)(map + i * LINE), i);
	for (unsigned i = 0; i < N_LOAD; i++)
		(void)ld64((volatile uint64_t *)(map + i * LINE));
	/* Flushes of lines just stored (each flush follows an access to its
	 * page, so the plugin can translate its address). */
	for (unsigned i = 0; i < N_CLFLUSH; i++)
		__asm__ volatile("clflush (%0)" ::"r"(map + i * LINE) : "memory");
	for (unsigned i = 0; i < N_CLFLUSHOPT; i++)
		__asm__ volatile("clflushopt (%0)" ::"r"(map + (32 + i) * LINE) : "memory");
	for (unsigned i = 0; i < N_CLWB; i++)
		__asm__ volatile("clwb (%0)" ::"r"(map + (64 + i) * LINE) : "memory");
	for (unsigned i = 0; i < N_SFENCE; i++)
		__asm__ volatile("sfence" ::: "memory");
	/* Non-temporal stores into the second page. */
	for (unsigned i = 0; i < N_MOVNTI; i++)
		__asm__ volatile("movnti %1, (%0)" ::"r"(map + 4096 + i * 8), "r"((uint64_t)i)
		                 : "memory");
	for (unsigned i = 0; i < N_MOVNTDQ; i++)
		__asm__ volatile(
		    "pxor %%xmm0, %%xmm0\n\tmovntdq %%xmm0, (%0)" ::"r"(map + 8192 + i * 16)
		    : "xmm0", "memory");
	for (unsigned i = 0; i < N_MFENCE; i++)
		__asm__ volatile("mfence" ::: "memory");
	for (unsigned i = 0; i < N_LFENCE; i++)
		__asm__ volatile("lfence" ::: "memory");
	for (unsigned i = 0; i < N_LOCK; i++)
		__asm__ volatile("lock addq $1, %0" : "+m"(lock_target)::"memory");
	for (unsigned i = 0; i < N_XCHG; i++) {
		uint64_t v = i;

		__asm__ volatile("xchgq %0, %1" : "+r"(v), "+m"(xchg_target)::"memory");
	}
	daxlab_mark(DAXLAB_MARK_WINDOW_END, window);

	tap_diag(DAXLAB_TAG_EXPECT_WINDOW
	         ": id=%llu stores=%d loads=%d nt_stores=%d clflush=%d "
	         "clflushopt=%d clwb=%d sfence=%d mfence=%d lfence=%d locked_rmw=%d xchg=%d "
	         "flush_unresolved=0 flush_not_pmem=0",
	         (unsigned long long)window, N_STORE, N_LOAD, N_MOVNTI + N_MOVNTDQ, N_CLFLUSH,
	         N_CLFLUSHOPT, N_CLWB, N_SFENCE, N_MFENCE, N_LFENCE, N_LOCK, N_XCHG);
	tap_ok(lock_target == N_LOCK, "the locked adds all happened (%llu)",
	       (unsigned long long)lock_target);
	/* What the guest sees is unchanged by the flushes. */
	tap_ok(((volatile uint64_t *)map)[0] == 0 &&
	           ((volatile uint64_t *)(map + 95 * LINE))[0] == 95,
	       "stored values read back");
	munmap(map, maplen);
	close(fd);
	if (!daxenv_devdax())
		unlink("litmus");
	tap_finish();
}
