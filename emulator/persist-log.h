/*
 * persist-log.h - reading the persistence log (pmem-log.bin, written by
 * persist.c; format in persist.h), bounded: nothing in the file is
 * trusted. The NV-DIMM size must be a multiple of 64 up to
 * PERSIST_LOG_MAX_SIZE, every line offset 64-byte aligned and inside it, a
 * checkpoint's pending count no more than the lines of the NV-DIMM nor
 * than the file still holds. Errors are returned, never exit()ed, so the
 * reader can be fuzzed.
 */
#ifndef DAXLAB_PERSIST_LOG_H
#define DAXLAB_PERSIST_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "persist.h"

#define PERSIST_LOG_MAX_SIZE (1ull << 40) /* 1 TiB of NV-DIMM */

/* One line as the log stores it. */
struct plog_line {
	uint64_t off;
	uint8_t data[PERSIST_LINE];
};

/* A log opened for reading. */
struct plog {
	FILE *f;
	uint64_t size;      /* the NV-DIMM's, from the header */
	uint64_t file_size; /* the log file's */
	char err[160];      /* what was wrong, after a -1 */
};

/* Read the header of @f. Returns 0, or -1 with lg->err set. */
int plog_open(struct plog *lg, FILE *f);
/*
 * The next record: PERSIST_REC_LINE with *ln, PERSIST_REC_CHECKPOINT with
 * *id and *npending (read the pending lines next with plog_pending), 0 at
 * the end, -1 on a truncated or corrupt record (lg->err).
 */
int plog_next(struct plog *lg, struct plog_line *ln, uint64_t *id, uint32_t *npending);
/* The @n pending lines of the checkpoint just read (malloc'd), or NULL. */
struct plog_line *plog_pending(struct plog *lg, uint32_t n);

#endif
