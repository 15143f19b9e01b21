/*
 * persist-model.c - the cost of the persistence model (emulator/persist.c)
 * on the host, without a guest: per-event costs and the cost of a
 * checkpoint, for NV-DIMMs of several sizes. The model keeps only lines
 * with pending state, so a checkpoint should cost the same on a 64 GiB
 * DIMM as on a 512 MiB one; this measures it. Built and run by
 * bench/persist-model.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "persist.h"

/* A baseline persist.c from before persist_store() took the vCPU. */
#ifdef PERSIST_STORE_NO_CPU
#define STORE(p, cpu, off, len) persist_store(p, off, len)
#else
#define STORE(p, cpu, off, len) persist_store(p, cpu, off, len)
#endif

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *msg)
{
	fprintf(stderr, "persist-model: %s\n", msg);
	exit(1);
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || v == 0)
		die(what);
	switch (*end) {
	case 'G':
		v <<= 10;
		/* fall through */
	case 'M':
		v <<= 10;
		/* fall through */
	case 'K':
		v <<= 10;
		end++;
		break;
	}
	if (*end)
		die(what);
	return v;
}

/*
 * One DIMM size: @pending scattered dirty lines, then @rounds checkpoints
 * with them pending; stores and flushes over a 64 MiB stretch.
 */
static json_t *measure(uint64_t size, uint64_t pending, unsigned rounds)
{
	uint8_t *live =
	    mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *shadow = mmap(NULL, size, PROT_READ | PROT_WRITE,
	                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	FILE *log = fopen("/dev/null", "w");
	struct persist *p;
	uint64_t stretch = size < (64ull << 20) ? size : 64ull << 20, nstores = stretch / 8;
	double t0, store_ns, flush_ns, cp_ns, new_ns;

	if (live == MAP_FAILED || shadow == MAP_FAILED || !log)
		die("cannot map the NV-DIMM or open /dev/null");
	t0 = now();
	p = persist_new(PERSIST_ADR, live, shadow, size, 2, log);
	new_ns = (now() - t0) * 1e9;
	if (!p)
		die("out of memory");
	/* 8-byte stores over the stretch, as memset would do. */
	t0 = now();
	for (uint64_t i = 0; i < nstores; i++)
		STORE(p, 0, i * 8, 8);
	store_ns = (now() - t0) * 1e9 / (double)nstores;
	/* CLWB of each line, a fence every 64 lines. */
	t0 = now();
	for (uint64_t l = 0; l < stretch / 64; l++) {
		persist_flush(p, 0, PERSIST_CLWB, l * 64);
		if (l % 64 == 63)
			persist_fence(p, 0);
	}
	persist_fence(p, 0);
	flush_ns = (now() - t0) * 1e9 / (double)(stretch / 64);
	persist_checkpoint(p, 1, NULL); /* log what the flushes made durable */
	/* @pending dirty lines scattered over the whole DIMM. */
	for (uint64_t i = 0; i < pending; i++)
		STORE(p, 1, (i * 2654435761u % (size / 64)) * 64, 8);
	t0 = now();
	for (unsigned r = 0; r < rounds; r++)
		persist_checkpoint(p, 2 + r, NULL);
	cp_ns = (now() - t0) * 1e9 / rounds;
	persist_free(p);
	fclose(log);
	munmap(live, size);
	munmap(shadow, size);
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:I}", "dimm_bytes", (json_int_t)size, "new_us",
	                 new_ns / 1e3, "store_ns", store_ns, "flush_ns", flush_ns, "checkpoint_us",
	                 cp_ns / 1e3, "pending", (json_int_t)pending);
}

int main(int argc, char **argv)
{
	uint64_t pending = 1000;
	unsigned rounds = 20;
	const char *sizes = "512M,8G,64G";

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf(
			    "usage: persist-model [--sizes 512M,8G,64G] [--pending N] [--rounds "
			    "N]\n"
			    "Per-event and per-checkpoint cost of the persistence model for each\n"
			    "NV-DIMM size (JSON on stdout).\n");
			return 0;
		} else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
			sizes = argv[++i];
		} else if (!strcmp(argv[i], "--pending") && i + 1 < argc) {
			pending = parse_u64(argv[++i], "--pending needs a positive number");
		} else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = (unsigned)parse_u64(argv[++i], "--rounds needs a positive number");
		} else {
			fprintf(stderr, "persist-model: unknown option: %s (try --help)\n",
			        argv[i]);
			return 2;
		}
	}
	json_t *all = json_array();
	char *list = strdup(sizes), *save = NULL, *tok;

	if (!list)
		die("out of memory");
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t size = parse_u64(tok, "--sizes: sizes like 512M or 8G");

		if (size % 64)
			die("--sizes: a size must be a multiple of 64 bytes");
		fprintf(stderr, "persist-model: %s\n", tok);
		json_array_append_new(all, measure(size, pending, rounds));
	}
	free(list);
	json_t *out = json_pack("{s:o}", "sizes", all);

	json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	putchar('\n');
	json_decref(out);
	return 0;
}
