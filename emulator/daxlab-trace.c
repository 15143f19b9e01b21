/*
 * daxlab-trace - print a daxlab-pmem trace (pmem-trace.bin) as text or CSV,
 * or summarise it.
 *
 *   daxlab-trace [--csv | --summary] [--type NAME] [--window ID] TRACE
 *
 * Text: one event a line (vCPU, instruction count, type, NV-DIMM offset,
 * size, window). CSV: the same with a header. Summary: events per type and
 * per vCPU, bytes stored and loaded, the offset range touched, and the
 * lines flushed most often. Exit 1 when the trace ends in a part of a record
 * (the plugin never finished writing it), 2 on bad usage or a corrupt file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmem-trace.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: daxlab-trace [--csv | --summary] [--type NAME] [--window ID] TRACE\n"
	        "\n"
	        "Prints a daxlab-pmem trace (run.sh --trace writes results/<run>/pmem-trace.bin).\n"
	        "Types: load store nt-store clflush clflushopt clwb sfence mfence locked wbinvd\n"
	        "window-begin window-end checkpoint hit.\n"
	        "Text output shows each event's host time in seconds from the first event;\n"
	        "CSV gives host_ns (host CLOCK_MONOTONIC), one clock for every vCPU.\n");
}

static __attribute__((noreturn)) void die(const char *msg, const char *arg)
{
	fprintf(stderr, "daxlab-trace: %s%s\n", msg, arg ? arg : "");
	exit(2);
}

/* Lines flushed, for the summary: a small open-addressing table. */
struct flushed {
	uint64_t line;
	uint64_t n;
};

#define FLUSH_SLOTS 65536

static void count_flush(struct flushed *t, uint64_t line, uint64_t *dropped)
{
	uint64_t h = (line * 0x9e3779b97f4a7c15ull) >> 48;

	for (unsigned i = 0; i < 64; i++) {
		struct flushed *e = &t[(h + i) % FLUSH_SLOTS];

		if (e->n == 0 || e->line == line) {
			e->line = line;
			e->n++;
			return;
		}
	}
	(*dropped)++;
}

static int by_count(const void *a, const void *b)
{
	const struct flushed *x = a, *y = b;

	return x->n < y->n ? 1 : x->n > y->n ? -1 : (x->line > y->line) - (x->line < y->line);
}

int main(int argc, char **argv)
{
	bool csv = false, summary = false, have_window = false;
	int type = -1;
	uint64_t window = 0, base, size;
	const char *path = NULL;
	struct pmem_trace_rec r;
	FILE *f;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--csv")) {
			csv = true;
		} else if (!strcmp(argv[i], "--summary")) {
			summary = true;
		} else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
			const char *t = argv[++i];

			for (int k = 0; k < TR_NTYPES; k++)
				if (!strcmp(t, pmem_trace_names[k]))
					type = k;
			if (type < 0)
				die("unknown event type: ", t);
		} else if (!strcmp(argv[i], "--window") && i + 1 < argc) {
			char *end;

			window = strtoull(argv[++i], &end, 0);
			if (*end || end == argv[i])
				die("--window needs a number, not ", argv[i]);
			have_window = true;
		} else if (argv[i][0] == '-' || path) {
			usage(stderr);
			die("unexpected argument: ", argv[i]);
		} else {
			path = argv[i];
		}
	}
	if (!path) {
		usage(stderr);
		return 2;
	}
	if (csv && summary)
		die("--csv and --summary exclude each other", NULL);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "daxlab-trace: cannot open %s: %s\n", path, strerror(errno));
		return 2;
	}
	if (pmem_trace_open(f, &base, &size) != 0)
		die("not a daxlab-pmem trace: ", path);

	uint64_t per_type[TR_NTYPES] = {0}, per_cpu[256] = {0}, bytes_st = 0, bytes_ld = 0;
	uint64_t lo = UINT64_MAX, hi = 0, events = 0, dropped = 0, t0 = 0;
	struct flushed *fl = summary ? calloc(FLUSH_SLOTS, sizeof(*fl)) : NULL;

	if (summary && !fl)
		die("out of memory", NULL);
	if (csv)
		printf("cpu,icount,host_ns,type,offset,size,window\n");
	int got;

	while ((got = pmem_trace_next(f, &r)) == 1) {
		bool addr = r.off != PMEM_TRACE_NO_ADDR && r.type < TR_WINDOW_BEGIN;

		if ((type >= 0 && r.type != type) || (have_window && r.window != (uint32_t)window))
			continue;
		events++;
		if (summary) {
			per_type[r.type]++;
			per_cpu[r.cpu]++;
			if (r.type == TR_STORE || r.type == TR_NT_STORE)
				bytes_st += r.size;
			if (r.type == TR_LOAD)
				bytes_ld += r.size;
			if (addr) {
				lo = r.off < lo ? r.off : lo;
				hi = r.off + r.size > hi ? r.off + r.size : hi;
			}
			if (r.type >= TR_CLFLUSH && r.type <= TR_CLWB)
				count_flush(fl, r.off / 64, &dropped);
		} else if (csv) {
			printf("%u,%" PRIu64 ",%" PRIu64 ",%s,", r.cpu, r.icount, r.host_ns,
			       pmem_trace_names[r.type]);
			if (r.off != PMEM_TRACE_NO_ADDR)
				printf("%" PRIu64, r.off);
			printf(",%u,%u\n", r.size, r.window);
		} else {
			if (!t0)
				t0 = r.host_ns;
			printf("%12.6f cpu%-3u %14" PRIu64 " %-12s ",
			       (double)(r.host_ns - t0) / 1e9, r.cpu, r.icount,
			       pmem_trace_names[r.type]);
			if (!addr && r.off != PMEM_TRACE_NO_ADDR)
				printf("id=%-14" PRIu64, r.off);
			else if (addr)
				printf("0x%012" PRIx64 "  ", r.off);
			else
				printf("%-17s", "-");
			printf(" %5u", r.size);
			if (r.window)
				printf("  window=%u", r.window);
			putchar('\n');
		}
	}
	fclose(f);
	/* The plugin writes whole records: a part of one means it never finished
	 * (QEMU killed, disk full). Say so; what came before is printed. */
	if (got == PMEM_TRACE_CORRUPT)
		die("corrupt record in ", path);
	if (got == PMEM_TRACE_TRUNCATED) {
		fprintf(
		    stderr,
		    "daxlab-trace: %s is truncated: it ends inside a record (QEMU did not finish "
		    "writing it)\n",
		    path);
		free(fl);
		return 1;
	}
	if (!summary)
		return 0;
	printf("trace: %s (NV-DIMM at 0x%" PRIx64 ", %" PRIu64 " bytes)\nevents: %" PRIu64 "\n",
	       path, base, size, events);
	for (int k = 0; k < TR_NTYPES; k++)
		if (per_type[k])
			printf("  %-12s %12" PRIu64 "\n", pmem_trace_names[k], per_type[k]);
	for (int c = 0; c < 256; c++)
		if (per_cpu[c])
			printf("  cpu%-9d %12" PRIu64 "\n", c, per_cpu[c]);
	printf("bytes stored: %" PRIu64 "\nbytes loaded: %" PRIu64 "\n", bytes_st, bytes_ld);
	if (lo <= hi && hi)
		printf("offsets: 0x%" PRIx64 "-0x%" PRIx64 "\n", lo, hi);
	qsort(fl, FLUSH_SLOTS, sizeof(*fl), by_count);
	for (int i = 0; i < 5 && fl[i].n; i++)
		printf("most flushed line %d: 0x%" PRIx64 " (%" PRIu64 " flushes)\n", i + 1,
		       fl[i].line * 64, fl[i].n);
	if (dropped)
		printf("(%" PRIu64 " flushes not ranked: too many distinct lines)\n", dropped);
	free(fl);
	return 0;
}
