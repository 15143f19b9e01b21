/*
 * rename-atomic - write, fsync, rename: a crash leaves the old or the new file, never a torn one
 *
 * Replaces "data" three times the careful way (write data.tmp, fsync it,
 * rename over data, fsync the directory) with a checkpoint after each
 * rename and after each directory fsync; between the first checkpoint and
 * the last, a crash window: every fence that orders lines on their way to
 * the NV-DIMM (the data's, the journal's, the log's) is a crash point too,
 * allowed what the checkpoints on either side of it allow. Every crash
 * state must recover
 * (mount, journal or log replay) to a clean filesystem where "data" is a
 * whole version: before the directory fsync the old or the new one, after
 * it the new one. run.sh --crash-check boots recovery guests on the crash
 * images and runs "rename-atomic --recover", which names the version found.
 *
 * daxlab-groups: crash
 * daxlab-crash: recover
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daxlab-marker.h"
#include "lib/daxenv.h"
#include "lib/tap.h"
#include "lib/versions.h"

#define VERSIONS 4 /* v0 .. v3 */

int main(int argc, char **argv)
{
	unsigned long long seq =
	    strtoull(getenv("DAXLAB_SEQ") ? getenv("DAXLAB_SEQ") : "0", NULL, 10);
	unsigned long long cp = seq * 1000;
	char allowed[16];

	if (chdir(daxenv_workdir()) != 0)
		tap_skip_all("cannot enter %s: %s", daxenv_workdir(), strerror(errno));
	if (argc > 1 && !strcmp(argv[1], "--recover"))
		return versions_recover("data", VERSIONS);
	tap_plan(2);
	versions_write("data", 0);
	versions_fsync_dir();
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
	versions_expect(cp, "0");
	daxlab_mark(DAXLAB_MARK_CRASH_BEGIN, seq);
	for (unsigned v = 1; v < VERSIONS; v++) {
		versions_write("data.tmp", v);
		if (rename("data.tmp", "data") != 0)
			tap_bail("rename: %s", strerror(errno));
		daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
		snprintf(allowed, sizeof(allowed), "%u,%u", v - 1, v);
		versions_expect(cp, allowed);
		versions_fsync_dir();
		daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
		snprintf(allowed, sizeof(allowed), "%u", v);
		versions_expect(cp, allowed);
	}
	daxlab_mark(DAXLAB_MARK_CRASH_END, seq);
	tap_ok(access("data.tmp", F_OK) != 0, "data.tmp is gone");
	{
		static unsigned char buf[VERSIONS_FILE_SIZE];
		int fd = open("data", O_RDONLY);

		tap_ok(fd >= 0 && read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) &&
		           daxenv_pattern_check(buf, sizeof(buf), 100 + VERSIONS - 1, 0) < 0,
		       "data is the last version");
		if (fd >= 0)
			close(fd);
	}
	tap_finish();
}
