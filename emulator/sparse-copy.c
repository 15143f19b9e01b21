/* sparse-copy.c - see sparse-copy.h */
#include "sparse-copy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

enum { COPY_CHUNK = 1 << 20, COPY_BLOCK = 64 << 10 };

static bool all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Copy [at, end) of @from (all data) to @to, skipping zero blocks. */
static int copy_extent(int from, int to, off_t at, off_t end, off_t shift, unsigned char *buf)
{
	while (at < end) {
		size_t want = (size_t)(end - at < COPY_CHUNK ? end - at : COPY_CHUNK);
		ssize_t got = pread(from, buf, want, at);

		if (got < 0)
			return -1;
		if (got == 0) /* end of the source: the rest reads as zeros */
			return 0;
		for (size_t b = 0; b < (size_t)got; b += COPY_BLOCK) {
			size_t n = (size_t)got - b < COPY_BLOCK ? (size_t)got - b : COPY_BLOCK;

			if (!all_zero(buf + b, n) &&
			    pwrite(to, buf + b, n, at + (off_t)b + shift) != (ssize_t)n)
				return -1;
		}
		at += got;
	}
	return 0;
}

int sparse_copy(int from, uint64_t from_off, int to, uint64_t to_off, uint64_t len)
{
	unsigned char *buf = malloc(COPY_CHUNK);
	off_t pos = (off_t)from_off, end = (off_t)(from_off + len);
	off_t shift = (off_t)to_off - (off_t)from_off;
	int rc = 0;

	if (!buf)
		return -1;
	while (rc == 0 && pos < end) {
		off_t data = lseek(from, pos, SEEK_DATA), hole;

		if (data < 0) {
			if (errno != ENXIO) /* ENXIO: only holes from here on */
				rc = -1;
			break;
		}
		if (data >= end)
			break;
		hole = lseek(from, data, SEEK_HOLE);
		if (hole < 0) {
			rc = -1;
			break;
		}
		if (hole > end)
			hole = end;
		rc = copy_extent(from, to, data, hole, shift, buf);
		pos = hole;
	}
	free(buf);
	return rc;
}
