/*
 * rename-atomic - write, fsync, rename: a crash leaves the old or the new file, never a torn one
 *
 * Replaces "data" three times the careful way (write data.tmp, fsync it,
 * rename over data, fsync the directory) with a checkpoint after each
 * rename and after each directory fsync. Every crash state must recover
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
#include "daxlab-protocol.h"
#include "lib/daxenv.h"
#include "lib/tap.h"

#define FILE_SIZE (16u * 1024u)
#define VERSIONS 4 /* v0 .. v3 */

static unsigned char buf[FILE_SIZE];

static void write_version(const char *name, unsigned v)
{
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	daxenv_pattern(buf, FILE_SIZE, 100 + v, 0);
	if (fd < 0 || write(fd, buf, FILE_SIZE) != (ssize_t)FILE_SIZE || fsync(fd) != 0)
		tap_bail("writing %s: %s", name, strerror(errno));
	close(fd);
}

static void fsync_dir(void)
{
	int fd = open(".", O_RDONLY | O_DIRECTORY);

	if (fd < 0 || fsync(fd) != 0)
		tap_bail("fsync of the directory: %s", strerror(errno));
	close(fd);
}

static void expect(unsigned long long cp, const char *versions)
{
	tap_diag(DAXLAB_TAG_RECOVER_EXPECT ": checkpoint=%llu versions=%s", cp, versions);
}

/* After a crash: which version is "data"? */
static int recover(void)
{
	int fd = open("data", O_RDONLY);
	ssize_t n;

	tap_plan(1);
	if (fd < 0) {
		tap_diag(DAXLAB_TAG_RECOVERED ": version=missing");
		tap_ok(true, "looked for data: %s", strerror(errno));
		tap_finish();
	}
	n = read(fd, buf, FILE_SIZE);
	close(fd);
	for (unsigned v = 0; v < VERSIONS; v++) {
		if (n == (ssize_t)FILE_SIZE &&
		    daxenv_pattern_check(buf, FILE_SIZE, 100 + v, 0) < 0) {
			tap_diag(DAXLAB_TAG_RECOVERED ": version=%u", v);
			tap_ok(true, "data is version %u", v);
			tap_finish();
		}
	}
	tap_diag(DAXLAB_TAG_RECOVERED ": version=torn");
	tap_ok(true, "data is no whole version (%zd bytes)", n);
	tap_finish();
}

int main(int argc, char **argv)
{
	unsigned long long seq =
	    strtoull(getenv("DAXLAB_SEQ") ? getenv("DAXLAB_SEQ") : "0", NULL, 10);
	unsigned long long cp = seq * 1000;
	char allowed[16];

	if (chdir(daxenv_workdir()) != 0)
		tap_skip_all("cannot enter %s: %s", daxenv_workdir(), strerror(errno));
	if (argc > 1 && !strcmp(argv[1], "--recover"))
		return recover();
	tap_plan(2);
	write_version("data", 0);
	fsync_dir();
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
	expect(cp, "0");
	for (unsigned v = 1; v < VERSIONS; v++) {
		write_version("data.tmp", v);
		if (rename("data.tmp", "data") != 0)
			tap_bail("rename: %s", strerror(errno));
		daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
		snprintf(allowed, sizeof(allowed), "%u,%u", v - 1, v);
		expect(cp, allowed);
		fsync_dir();
		daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
		snprintf(allowed, sizeof(allowed), "%u", v);
		expect(cp, allowed);
	}
	tap_ok(access("data.tmp", F_OK) != 0, "data.tmp is gone");
	{
		int fd = open("data", O_RDONLY);

		tap_ok(fd >= 0 && read(fd, buf, FILE_SIZE) == (ssize_t)FILE_SIZE &&
		           daxenv_pattern_check(buf, FILE_SIZE, 100 + VERSIONS - 1, 0) < 0,
		       "data is the last version");
		if (fd >= 0)
			close(fd);
	}
	tap_finish();
}
