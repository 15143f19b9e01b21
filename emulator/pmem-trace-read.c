/*
 * pmem-trace-read.c - reading a daxlab-pmem trace (pmem-trace.h), the one
 * reader of the format: daxlab-trace prints it, the host's time lines
 * (host/timeline.c) take the events around a race hit from it. Nothing in
 * the file is trusted: the magic, the type of every record, and a last
 * record cut short are all checked, and reported rather than exit()ed.
 */
#include "pmem-trace.h"

#include <stdio.h>
#include <string.h>

int pmem_trace_open(FILE *f, uint64_t *base, uint64_t *size)
{
	uint64_t hdr[3];

	if (fread(hdr, sizeof(hdr), 1, f) != 1 || memcmp(&hdr[0], PMEM_TRACE_MAGIC, 8) != 0)
		return -1;
	*base = hdr[1];
	*size = hdr[2];
	return 0;
}

int pmem_trace_next(FILE *f, struct pmem_trace_rec *r)
{
	size_t got = fread(r, 1, sizeof(*r), f);

	if (got == 0)
		return 0;
	if (got < sizeof(*r))
		return PMEM_TRACE_TRUNCATED;
	if (r->type >= TR_NTYPES)
		return PMEM_TRACE_CORRUPT;
	return 1;
}
