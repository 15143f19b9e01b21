/*
 * pmem-trace.h - the binary trace of NV-DIMM events (run.sh --trace),
 * written by the daxlab-pmem plugin and read by daxlab-trace.
 *
 * File: the 8-byte magic, u64 NV-DIMM base, u64 size, then records, all
 * little-endian (the host's order: traces are read where they are made).
 */
#ifndef DAXLAB_PMEM_TRACE_H
#define DAXLAB_PMEM_TRACE_H

#include <stdint.h>

#define PMEM_TRACE_MAGIC "DAXTRC2"
#define PMEM_TRACE_NO_ADDR UINT64_MAX /* fences, markers */

enum pmem_trace_type {
	TR_LOAD,
	TR_STORE,
	TR_NT_STORE,
	TR_CLFLUSH,
	TR_CLFLUSHOPT,
	TR_CLWB,
	TR_SFENCE,
	TR_MFENCE,
	TR_LOCKED, /* LOCK-prefixed RMW or XCHG with memory */
	TR_WBINVD,
	TR_WINDOW_BEGIN,
	TR_WINDOW_END,
	TR_CHECKPOINT,
	TR_HIT, /* a scenario's race hit; off is the guest's CLOCK_MONOTONIC ns */
	TR_NTYPES
};

/* Groups for the plugin's trace_types= filter. */
#define TR_GROUP_LOAD (1u << TR_LOAD)
#define TR_GROUP_STORE (1u << TR_STORE)
#define TR_GROUP_NT (1u << TR_NT_STORE)
#define TR_GROUP_FLUSH (1u << TR_CLFLUSH | 1u << TR_CLFLUSHOPT | 1u << TR_CLWB)
#define TR_GROUP_FENCE (1u << TR_SFENCE | 1u << TR_MFENCE | 1u << TR_WBINVD)
#define TR_GROUP_LOCKED (1u << TR_LOCKED)
#define TR_GROUP_MARKER                                                                            \
	(1u << TR_WINDOW_BEGIN | 1u << TR_WINDOW_END | 1u << TR_CHECKPOINT | 1u << TR_HIT)

static const char *const pmem_trace_names[TR_NTYPES] = {
    "load",   "store",  "nt-store", "clflush",      "clflushopt", "clwb",       "sfence",
    "mfence", "locked", "wbinvd",   "window-begin", "window-end", "checkpoint", "hit",
};

/* One event: 32 bytes. */
struct pmem_trace_rec {
	uint64_t icount;  /* instructions this vCPU had executed (at its block's start) */
	uint64_t host_ns; /* host CLOCK_MONOTONIC: one clock for all vCPUs */
	uint64_t off;     /* offset in the NV-DIMM, or PMEM_TRACE_NO_ADDR; id for markers */
	uint16_t size;
	uint8_t type;
	uint8_t cpu;
	uint32_t window; /* low 32 bits of the open window's id, or 0 */
};

/* Reading (pmem-trace-read.c). */
#include <stdio.h>

#define PMEM_TRACE_TRUNCATED (-1) /* the file ends inside a record */
#define PMEM_TRACE_CORRUPT (-2)   /* a record of no known type */
/* The header of @f: 0 with the NV-DIMM's @base and @size, or -1 (not a trace). */
int pmem_trace_open(FILE *f, uint64_t *base, uint64_t *size);
/* The next record: 1, 0 at the end, or PMEM_TRACE_TRUNCATED / _CORRUPT. */
int pmem_trace_next(FILE *f, struct pmem_trace_rec *r);

#endif
