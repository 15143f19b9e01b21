/* versions.c - whole-file versions for crash scenarios (see versions.h). */
#include "versions.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daxenv.h"
#include "daxlab-protocol.h"
#include "tap.h"

static unsigned char buf[VERSIONS_FILE_SIZE];

void versions_write(const char *name, unsigned v)
{
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	daxenv_pattern(buf, VERSIONS_FILE_SIZE, 100 + v, 0);
	if (fd < 0 || write(fd, buf, VERSIONS_FILE_SIZE) != (ssize_t)VERSIONS_FILE_SIZE ||
	    fsync(fd) != 0)
		tap_bail("writing %s: %s", name, strerror(errno));
	close(fd);
}

void versions_fsync_dir(void)
{
	int fd = open(".", O_RDONLY | O_DIRECTORY);

	if (fd < 0 || fsync(fd) != 0)
		tap_bail("fsync of the directory: %s", strerror(errno));
	close(fd);
}

void versions_expect(unsigned long long cp, const char *versions)
{
	tap_diag(DAXLAB_TAG_RECOVER_EXPECT ": checkpoint=%llu versions=%s", cp, versions);
}

int versions_recover(const char *name, unsigned nversions)
{
	int fd = open(name, O_RDONLY);
	ssize_t n;

	tap_plan(1);
	if (fd < 0) {
		tap_diag(DAXLAB_TAG_RECOVERED ": version=missing");
		tap_ok(true, "looked for %s: %s", name, strerror(errno));
		tap_finish();
	}
	n = read(fd, buf, VERSIONS_FILE_SIZE);
	close(fd);
	for (unsigned v = 0; v < nversions; v++) {
		if (n == (ssize_t)VERSIONS_FILE_SIZE &&
		    daxenv_pattern_check(buf, VERSIONS_FILE_SIZE, 100 + v, 0) < 0) {
			tap_diag(DAXLAB_TAG_RECOVERED ": version=%u", v);
			tap_ok(true, "%s is version %u", name, v);
			tap_finish();
		}
	}
	tap_diag(DAXLAB_TAG_RECOVERED ": version=torn");
	tap_ok(true, "%s is no whole version (%zd bytes)", name, n);
	tap_finish();
}
