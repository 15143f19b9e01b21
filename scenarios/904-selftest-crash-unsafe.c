/*
 * selftest-crash-unsafe - a crash expectation that is false on purpose (harness self-test)
 *
 * Not a DAX scenario: rename-atomic's careful replace of "data", once,
 * but declaring that the state right after version 0 was made durable
 * already holds version 1. Every crash state of that first checkpoint
 * recovers version 0, so --crash-check must report them failing, keep
 * their images, and still check every state after them (the crash points
 * of the replace and its checkpoints, which pass).
 *
 * daxlab-groups: selftest
 * daxlab-crash: recover
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daxlab-marker.h"
#include "lib/daxenv.h"
#include "lib/tap.h"
#include "lib/versions.h"

int main(int argc, char **argv)
{
	unsigned long long seq =
	    strtoull(getenv("DAXLAB_SEQ") ? getenv("DAXLAB_SEQ") : "0", NULL, 10);
	unsigned long long cp = seq * 1000;

	if (chdir(daxenv_workdir()) != 0)
		tap_skip_all("cannot enter %s: %s", daxenv_workdir(), strerror(errno));
	if (argc > 1 && !strcmp(argv[1], "--recover"))
		return versions_recover("data", 2);
	tap_plan(1);
	versions_write("data", 0);
	versions_fsync_dir();
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
	versions_expect(cp, "1"); /* false: version 0 is what is durable */
	daxlab_mark(DAXLAB_MARK_CRASH_BEGIN, seq);
	versions_write("data.tmp", 1);
	if (rename("data.tmp", "data") != 0)
		tap_bail("rename: %s", strerror(errno));
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
	versions_expect(cp, "0,1");
	versions_fsync_dir();
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
	versions_expect(cp, "1");
	daxlab_mark(DAXLAB_MARK_CRASH_END, seq);
	tap_ok(access("data.tmp", F_OK) != 0, "data.tmp is gone");
	tap_finish();
}
