/*
 * persist.h - the persistence model: which NV-DIMM lines would survive a
 * power failure.
 *
 * A plain C unit (no QEMU types): the plugin feeds it the guest's pmem
 * stores, non-temporal stores, flushes and fences; it tracks 64-byte lines
 * and writes an append-only log from which crash images are built.
 *
 * Modes:
 *  - ADR: the memory controller is the persistence domain. A cached store
 *    makes its line dirty; CLFLUSH writes the line back at once; CLWB and
 *    CLFLUSHOPT capture it and it becomes durable at the next fence
 *    (SFENCE, MFENCE, locked RMW) of the same vCPU; a non-temporal store is
 *    durable at the next fence of its vCPU; WBINVD writes back everything.
 *  - eADR: caches are in the persistence domain. Cached stores are durable
 *    once visible (committed at every checkpoint); NT stores still need a
 *    fence to leave the write-combining buffers.
 *  - host flush (virtio-pmem): the guest's "NV-DIMM" is a file the host
 *    maps, so a store (cached or NT) lands in the host's page cache, and
 *    flushes, fences and WBINVD persist nothing; everything stored so far
 *    becomes durable when the guest asks the host to flush
 *    (persist_host_flush(): the virtio-pmem request, after which the host
 *    fsyncs the whole file). Until then every stored line is pending.
 *
 * The durable content lives in a shadow: a sparse file the plugin maps,
 * which starts as a copy of the NV-DIMM at boot; a line that becomes
 * durable is copied into it (64 bytes and a bit, no I/O). The log holds
 * deltas only: at each checkpoint, the lines of the shadow that changed
 * since the previous checkpoint, then a checkpoint record with the lines
 * that are pending at that moment (dirty, flushed but not fenced, NT not
 * fenced), each with its current content: what real hardware may have
 * written back early. A crash image is the base image + the log up to a
 * checkpoint (+ a seeded subset of its pending lines); see crash-image.h.
 */
#ifndef DAXLAB_PERSIST_H
#define DAXLAB_PERSIST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PERSIST_LINE 64u

enum persist_mode { PERSIST_ADR, PERSIST_EADR, PERSIST_HOST_FLUSH };

enum persist_flush { PERSIST_CLFLUSH, PERSIST_CLFLUSHOPT, PERSIST_CLWB };

/* Log format: 8-byte magic, u64 NV-DIMM size, then records, little-endian. */
#define PERSIST_LOG_MAGIC "DAXLOG1"
enum persist_record {
	PERSIST_REC_LINE = 1, /* u64 offset, 64 bytes: durable content since the last checkpoint */
	PERSIST_REC_CHECKPOINT =
	    2, /* u64 id, u32 npending, then npending x (u64 offset, 64 bytes) */
};

struct persist_stats {
	uint64_t host_flushes;      /* host flush requests (host flush mode) */
	uint64_t committed_lines;   /* line write-backs into the persistence domain */
	uint64_t logged_lines;      /* changed shadow lines written to the log at checkpoints */
	uint64_t redundant_flushes; /* flush of a line with no store since its last flush */
	uint64_t checkpoints;
	uint64_t missing_flush_lines; /* at checkpoints: lines stored but never flushed (summed) */
	uint64_t unfenced_lines; /* at checkpoints: flushed or NT-stored, no fence yet (summed) */
};

/* What one checkpoint found. */
struct persist_checkpoint {
	uint64_t id;
	uint64_t dirty_lines;    /* stored, never flushed (ADR); 0 under eADR */
	uint64_t unfenced_lines; /* flushed/NT, no fence yet */
	uint64_t first_dirty;    /* offset of the first dirty line, or UINT64_MAX */
};

struct persist;

/*
 * @live is the NV-DIMM's current content (the plugin maps the backing
 * file), @shadow the durable content (same size, writable, initially equal
 * to the NV-DIMM at boot), @size their length (a multiple of 64). @log
 * receives the records (NULL: no log). Returns NULL on allocation failure.
 */
struct persist *persist_new(enum persist_mode mode, const uint8_t *live, uint8_t *shadow,
                            uint64_t size, unsigned ncpus, FILE *log);
void persist_free(struct persist *p);

/*
 * A cached store of @len bytes at @off on @cpu. Takes no lock when it hits
 * the line of @cpu's previous store and that line is still dirty.
 */
void persist_store(struct persist *p, unsigned cpu, uint64_t off, unsigned len);
/* A non-temporal store on @cpu. */
void persist_nt_store(struct persist *p, unsigned cpu, uint64_t off, unsigned len);
/* A flush of the line holding @off on @cpu. Returns true if it was redundant. */
bool persist_flush(struct persist *p, unsigned cpu, enum persist_flush kind, uint64_t off);
/* SFENCE, MFENCE or a locked RMW on @cpu. */
void persist_fence(struct persist *p, unsigned cpu);
/* Whether a fence on @cpu now would order anything (lines it flushed or
 * wrote non-temporally since its last fence). No lock: a hint. */
bool persist_would_order(struct persist *p, unsigned cpu);
/* WBINVD on @cpu: every dirty line is written back. */
void persist_wbinvd(struct persist *p, unsigned cpu);
/* Host flush mode: the host is asked to flush; every stored line is durable. */
void persist_host_flush(struct persist *p);
/* A crash state: record it in the log. */
void persist_checkpoint(struct persist *p, uint64_t id, struct persist_checkpoint *out);

struct persist_stats persist_stats(const struct persist *p);
/* Whether the log is incomplete: a write to it failed (disk full...) or
 * the model ran out of memory for its pending lines. */
bool persist_log_failed(const struct persist *p);

#endif
