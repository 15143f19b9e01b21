/*
 * repro.c - pwrite() into a DAX hole returns while a shared mapping of the
 * file still shows the zero page.
 *
 * Build: gcc -O2 -pthread -static -o repro repro.c
 * Run:   ./repro FILE [ROUNDS]      (FILE on a filesystem mounted with DAX)
 *
 * Per round the file is made sparse again (ftruncate to 0 and back) and
 * mapping A reads every page (a read fault on a hole: the shared zero
 * page). Then, page by page, thread S stores a word through mapping B (a
 * write fault that allocates the block) while thread W pwrite()s another
 * word of the same page, starting a random few microseconds after S, and,
 * as soon as pwrite() returned, loads that word through A. POSIX and the
 * DAX documentation promise that once write() returned, a shared mapping
 * shows the data; a load that reads 0 there is counted as a stale view,
 * and timed until A shows the data. read() is checked too.
 *
 * Prints one line: rounds, pages raced, stale views, the longest and mean
 * time A showed zeros after pwrite() returned. Exit 1 when a stale view was
 * seen, 0 when none, 2 on an error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define NPAGES 32
#define SIZE (NPAGES * PAGE)
#define S_WORD 256 /* the word S stores, 2 KiB into the page */

static int fd;
static volatile uint64_t *a, *b;
static volatile int go[NPAGES], s_done[NPAGES];
static unsigned long stale, raced;
static uint64_t worst_ns, sum_ns;
static unsigned seed = 1;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* S: per page, wait for the go, then store through B (the write fault). */
static void *store_thread(void *arg)
{
	(void)arg;
	for (int p = 0; p < NPAGES; p++) {
		while (!__atomic_load_n(&go[p], __ATOMIC_ACQUIRE))
			;
		b[p * (PAGE / 8) + S_WORD] = 0x5000000000000000ull | (uint64_t)p;
		__atomic_store_n(&s_done[p], 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* W: per page, give S the go, wait a random while, pwrite(), load through A. */
static void *pwrite_thread(void *arg)
{
	(void)arg;
	for (int p = 0; p < NPAGES; p++) {
		uint64_t v = 0x3700000000000000ull | (uint64_t)p, got, t1;
		unsigned spins = (unsigned)rand_r(&seed) % 20000;

		__atomic_store_n(&go[p], 1, __ATOMIC_RELEASE);
		for (volatile unsigned i = 0; i < spins; i++)
			;
		if (pwrite(fd, &v, 8, (off_t)p * PAGE) != 8)
			die("pwrite");
		t1 = now_ns();
		raced++;
		if (a[p * (PAGE / 8)] != v) {
			/* write() returned; the mapping does not show it. How long? */
			while (a[p * (PAGE / 8)] != v && now_ns() - t1 < 1000000000ull)
				;
			uint64_t dt = now_ns() - t1;

			stale++;
			sum_ns += dt;
			worst_ns = dt > worst_ns ? dt : worst_ns;
		}
		if (pread(fd, &got, 8, (off_t)p * PAGE) != 8 || got != v) {
			fprintf(stderr, "read() after pwrite() returned 0x%llx at page %d\n",
			        (unsigned long long)got, p);
			exit(2);
		}
		while (!__atomic_load_n(&s_done[p], __ATOMIC_ACQUIRE))
			;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned rounds = argc > 2 ? (unsigned)atoi(argv[2]) : 100;

	if (argc < 2) {
		fprintf(stderr, "usage: repro FILE [ROUNDS]\n");
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, SIZE))
		die(argv[1]);
	a = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	b = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED || b == MAP_FAILED)
		die("mmap");
	for (unsigned r = 0; r < rounds; r++) {
		pthread_t s, w;

		/* sparse again; A maps the zero page on every page */
		if (ftruncate(fd, 0) || ftruncate(fd, SIZE))
			die("ftruncate");
		for (int p = 0; p < NPAGES; p++) {
			go[p] = s_done[p] = 0;
			if (a[p * (PAGE / 8)] != 0)
				die("a hole reads data");
		}
		pthread_create(&s, NULL, store_thread, NULL);
		pthread_create(&w, NULL, pwrite_thread, NULL);
		pthread_join(s, NULL);
		pthread_join(w, NULL);
	}
	printf("rounds %u, pages raced %lu, stale views after pwrite() %lu, longest %.3f ms, "
	       "mean %.3f ms\n",
	       rounds, raced, stale, (double)worst_ns / 1e6,
	       stale ? (double)sum_ns / (double)stale / 1e6 : 0.0);
	return stale ? 1 : 0;
}
