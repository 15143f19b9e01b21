/*
 * libFuzzer target: the host's splitter of the guest's files channel
 * (host/files-channel.c), writing into a scratch directory that is emptied
 * after every input. Whatever the bytes, nothing may appear outside the
 * allowlist's names (checked: every file written must parse as one).
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect.h"

static char dir[] = "/tmp/daxlab-fuzz-files.XXXXXX";
static size_t dirlen;

/* Every entry under dir: a directory of the allowlist, or an allowed file. */
static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct daxlab_file_name fn;
	const char *rel = path + dirlen + 1;

	(void)st;
	if (ftw->level == 0)
		return 0;
	if (flag == FTW_DP) {
		if (strcmp(rel, "fs_dax") && strcmp(rel, "dmesg") && strcmp(rel, "hits") &&
		    strncmp(rel, "hits/", 5))
			__builtin_trap();
		rmdir(path);
		return 0;
	}
	if (daxlab_file_name_parse(rel, &fn) != 0)
		__builtin_trap(); /* a name the protocol does not allow was written */
	unlink(path);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char plan_json[] =
	    "{\"scenarios\": [{\"name\": \"dax-basics\", \"bin\": \"001-dax-basics\"}],"
	    " \"fs\": [\"ext4\"], \"plugin\": \"persist\", \"pmem_base\": \"0x100000000\","
	    " \"pmem_bytes\": 536870912, \"cpus\": 2}";
	static struct plan p;
	static int dirfd = -1;
	char err[200];
	bool trunc;

	if (dirfd < 0) {
		if (!mkdtemp(dir) ||
		    plan_parse(plan_json, sizeof(plan_json) - 1, &p, err, sizeof(err)))
			__builtin_trap();
		dirlen = strlen(dir);
		dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	}
	files_split((const char *)data, size, dirfd, &p, &trunc, err, sizeof(err));
	nftw(dir, visit, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
