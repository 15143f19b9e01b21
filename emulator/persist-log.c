/* persist-log.c - see persist-log.h */
#include "persist-log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int fail(struct plog *lg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct plog *lg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(lg->err, sizeof(lg->err), fmt, ap);
	va_end(ap);
	return -1;
}

static uint64_t get_u64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

int plog_open(struct plog *lg, FILE *f)
{
	uint8_t hdr[16];
	struct stat st;

	memset(lg, 0, sizeof(*lg));
	lg->f = f;
	if (fstat(fileno(f), &st) != 0)
		return fail(lg, "cannot stat the log");
	lg->file_size = (uint64_t)st.st_size;
	if (fread(hdr, 1, 16, f) != 16 || memcmp(hdr, PERSIST_LOG_MAGIC, 8) != 0)
		return fail(lg, "not a daxlab persistence log");
	lg->size = get_u64(hdr + 8);
	if (lg->size == 0 || lg->size % PERSIST_LINE || lg->size > PERSIST_LOG_MAX_SIZE)
		return fail(lg, "corrupt header: an NV-DIMM size of %llu bytes",
		            (unsigned long long)lg->size);
	return 0;
}

static int read_line(struct plog *lg, struct plog_line *ln, const char *what)
{
	uint8_t off[8];

	if (fread(off, 1, 8, lg->f) != 8 || fread(ln->data, 1, PERSIST_LINE, lg->f) != PERSIST_LINE)
		return fail(lg, "truncated %s", what);
	ln->off = get_u64(off);
	if (ln->off % PERSIST_LINE || ln->off >= lg->size)
		return fail(lg, "corrupt %s: offset 0x%llx outside the NV-DIMM or unaligned", what,
		            (unsigned long long)ln->off);
	return 0;
}

int plog_next(struct plog *lg, struct plog_line *ln, uint64_t *id, uint32_t *npending)
{
	uint8_t buf[12];
	int type = fgetc(lg->f);
	long pos;

	if (type == EOF)
		return 0;
	if (type == PERSIST_REC_LINE)
		return read_line(lg, ln, "line record") ? -1 : type;
	if (type != PERSIST_REC_CHECKPOINT)
		return fail(lg, "unknown record type %d", type);
	if (fread(buf, 1, 12, lg->f) != 12)
		return fail(lg, "truncated checkpoint record");
	*id = get_u64(buf);
	*npending = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 |
	            (uint32_t)buf[11] << 24;
	pos = ftell(lg->f);
	/* no more pending lines than the NV-DIMM has, nor than the file holds */
	if (*npending > lg->size / PERSIST_LINE ||
	    (pos >= 0 && (uint64_t)*npending * (8 + PERSIST_LINE) > lg->file_size - (uint64_t)pos))
		return fail(lg, "corrupt checkpoint %llu: %u pending lines",
		            (unsigned long long)*id, *npending);
	return type;
}

struct plog_line *plog_pending(struct plog *lg, uint32_t n)
{
	struct plog_line *v = calloc(n ? n : 1, sizeof(*v));

	if (!v) {
		fail(lg, "out of memory for %u pending lines", n);
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++)
		if (read_line(lg, &v[i], "pending line")) {
			free(v);
			return NULL;
		}
	return v;
}
