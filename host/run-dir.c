/*
 * run-dir.c - a run directory as the host's readers open it: its plan
 * (run.json), its TAP channel within the cap, and where the NV-DIMM's
 * block device begins (from what the guest reported).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "judge.h"

int open_run(const char *dir, struct plan *p)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t n;
	char *json, err[256];

	if (dirfd < 0) {
		fprintf(stderr, "daxlab: cannot open the run directory %s: %s\n", dir,
		        strerror(errno));
		exit(2);
	}
	json = read_capped(dirfd, "run.json", 1 << 20, &n);
	if (!json) {
		fprintf(stderr, "daxlab: %s/run.json: %s\n", dir, strerror(errno));
		exit(2);
	}
	if (plan_parse(json, n, p, err, sizeof(err)) != 0) {
		fprintf(stderr, "daxlab: %s\n", err);
		exit(2);
	}
	free(json);
	return dirfd;
}

/* The TAP channel, at most its cap; @err says when it was larger. */
char *read_tap(int dirfd, size_t *n, char *err, size_t errlen)
{
	char *tap = read_capped(dirfd, "tap.txt", DAXLAB_CAP_TAP, n);

	err[0] = 0;
	if (!tap) {
		if (errno == EFBIG)
			snprintf(err, errlen, "the TAP channel is larger than its cap of %lu MiB",
			         DAXLAB_CAP_TAP >> 20);
		*n = 0;
		tap = calloc(1, 1);
	}
	return tap;
}

/*
 * The NV-DIMM offset where the block device's data starts (after the
 * fsdax info block): the pfn device's resource the guest reported, minus
 * the NV-DIMM's base; 0 when it did not say (a raw namespace).
 */
uint64_t data_offset(int dirfd, const struct plan *p)
{
	size_t n;
	char *txt = read_capped(dirfd, "pmem-data.txt", 4 << 10, &n), *res;
	uint64_t off = 0;

	if (txt && (res = strstr(txt, " resource=0x"))) {
		char hex[20];
		size_t k = 0;

		res += 10;
		while (k < 18 && ((res[k] >= '0' && res[k] <= '9') ||
		                  (res[k] >= 'a' && res[k] <= 'f') || (k == 1 && res[k] == 'x')))
			hex[k] = res[k], k++;
		hex[k] = 0;
		if (daxlab_value_ok('X', hex)) {
			uint64_t v = strtoull(hex, NULL, 16);

			if (v >= p->pmem_base && v < p->pmem_base + p->pmem_bytes &&
			    (v - p->pmem_base) % 4096 == 0)
				off = v - p->pmem_base;
		}
	}
	free(txt);
	return off;
}
