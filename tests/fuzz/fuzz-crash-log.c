/*
 * libFuzzer target: the persistence log's reader (emulator/persist-log.c),
 * which daxlab-crash builds crash states from, and the trace reader
 * (emulator/pmem-trace-read.c). The input is the file (a memfd, so that the
 * reader's fstat sees its real size). Counts in it are not to be trusted:
 * no allocation beyond what the file can hold, no endless loop.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "persist-log.h"
#include "pmem-trace.h"

static FILE *as_file(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", 0);
	FILE *f;

	if (fd < 0)
		__builtin_trap();
	if (size && write(fd, data, size) != (ssize_t)size)
		__builtin_trap();
	lseek(fd, 0, SEEK_SET);
	f = fdopen(fd, "rb");
	if (!f)
		__builtin_trap();
	return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = as_file(data, size);
	struct plog lg;
	struct plog_line ln;
	struct pmem_trace_rec r;
	uint64_t id, base, len;
	uint32_t np;
	int t;

	if (plog_open(&lg, f) == 0) {
		while ((t = plog_next(&lg, &ln, &id, &np)) > 0) {
			if (t == PERSIST_REC_CHECKPOINT) {
				struct plog_line *v = plog_pending(&lg, np);

				if (!v)
					break;
				free(v);
			} else if (ln.off >= lg.size || ln.off % PERSIST_LINE) {
				__builtin_trap();
			}
		}
	}
	fclose(f);
	f = as_file(data, size);
	if (pmem_trace_open(f, &base, &len) == 0)
		while (pmem_trace_next(f, &r) == 1)
			if (r.type >= TR_NTYPES)
				__builtin_trap();
	fclose(f);
	return 0;
}
