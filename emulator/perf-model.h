/*
 * perf-model.h - the NV-DIMM latency and bandwidth model.
 *
 * Modelled time, in picoseconds, for a stream of guest events (loads,
 * stores, non-temporal stores, cache-line flushes, fences) to one NV-DIMM
 * shared by all vCPUs. Integer arithmetic only, and no clock: the same
 * events give the same modelled time, bit for bit, whatever the host does.
 * The daxlab-pmem plugin feeds it; see perf-model.c for the model itself.
 */
#ifndef DAXLAB_PERF_MODEL_H
#define DAXLAB_PERF_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * One memory's parameters. Times are picoseconds, bandwidths MB/s (10^6
 * bytes per second), sizes bytes. Parsed from "dram", "optane" or
 * "custom:key=value,..." by perf_params_parse(); keys in perf-model.c.
 */
struct perf_params {
	char name[16];          /* the preset ("custom" for custom:) */
	uint64_t insn_ps;       /* base cost of one guest instruction */
	uint64_t read_ps;       /* a random read miss: idle latency */
	uint64_t read_seq_ps;   /* a sequential read miss (the stride detector says so) */
	uint64_t prefetch;      /* sequential misses in flight at once */
	uint64_t write_ps;      /* a line written back reaching the persistence domain */
	uint64_t flush_ps;      /* issuing a CLFLUSH, CLFLUSHOPT or CLWB */
	uint64_t fence_ps;      /* an SFENCE/MFENCE/locked op, on top of the drain */
	uint64_t nt_ps;         /* issuing 64 bytes of non-temporal stores */
	uint64_t read_bw_mbps;  /* media read bandwidth of the DIMM */
	uint64_t write_bw_mbps; /* media write bandwidth of the DIMM */
	uint64_t unit;          /* internal access unit (256 on Optane, 64 = none) */
	uint64_t wc_units;      /* write-combining buffer entries, of @unit bytes */
	uint64_t cache_bytes;   /* CPU cache per vCPU in front of the DIMM */
};

/* What a modelled stream did; all but the times are event counts. */
struct perf_stats {
	uint64_t ps;    /* modelled time (sum over vCPUs) */
	uint64_t insns; /* instructions charged */
	uint64_t loads, load_hits, seq_misses, rand_misses;
	uint64_t stores, nt_stores, flushes, fences;
	uint64_t bytes_read, bytes_written; /* by the program */
	uint64_t writebacks;                /* 64-byte lines reaching the DIMM */
	uint64_t wc_merges;                 /* write-backs merged in the WC buffer */
	uint64_t media_read_bytes, media_write_bytes;
	uint64_t read_wait_ps, write_wait_ps; /* waiting for the media (bandwidth) */
	uint64_t drain_wait_ps;               /* fences waiting for write-backs */
};

struct perf;

/* Fill @p from @spec; on error, false and a one-line message in @err. */
bool perf_params_parse(const char *spec, struct perf_params *p, char *err, size_t errlen);
/* The preset named @name ("dram" or "optane"), or false. */
bool perf_params_preset(const char *name, struct perf_params *p);
/* @p as a JSON object (jansson): the preset's name, times in ns, sizes. */
json_t *perf_params_json(const struct perf_params *p);

struct perf *perf_new(const struct perf_params *p, unsigned ncpus);
void perf_free(struct perf *m);
/* Back to the start: empty caches and buffers, time 0, stats 0. */
void perf_reset(struct perf *m);

/* @n guest instructions ran on @cpu since the last call. */
void perf_insns(struct perf *m, unsigned cpu, uint64_t n);
/* Events; @off is an offset in the NV-DIMM. */
void perf_load(struct perf *m, unsigned cpu, uint64_t off, unsigned size);
void perf_store(struct perf *m, unsigned cpu, uint64_t off, unsigned size);
void perf_nt_store(struct perf *m, unsigned cpu, uint64_t off, unsigned size);
/* @invalidate: CLFLUSH/CLFLUSHOPT drop the line, CLWB keeps it clean. */
void perf_flush(struct perf *m, unsigned cpu, uint64_t off, bool invalidate);
void perf_fence(struct perf *m, unsigned cpu);

/* Modelled time of @cpu so far. */
uint64_t perf_now(const struct perf *m, unsigned cpu);
/* Totals over every vCPU. */
struct perf_stats perf_stats(const struct perf *m);

#endif
