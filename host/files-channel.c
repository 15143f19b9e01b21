/*
 * files-channel.c - the guest's files channel split into the run
 * directory. Frames are "@@daxlab-file NAME SIZE\n", SIZE bytes,
 * "\n@@daxlab-end\n" (protocol/daxlab-protocol.h). A name must be one the
 * protocol allows, for a scenario and filesystem of the plan; the few
 * directories it may name are made here (never followed if they are
 * symlinks), and a file is created only if it does not exist, 0600.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"

/* A directory @rel under @dirfd: made if missing, refused if not a directory. */
static int make_dir(int dirfd, const char *rel)
{
	struct stat st;

	if (mkdirat(dirfd, rel, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	if (fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* The parents of @name (at most two levels, from the allowlist). */
static int make_parents(int dirfd, const char *name)
{
	char dir[DAXLAB_CAP_FILE_NAME + 1];

	for (const char *slash = strchr(name, '/'); slash; slash = strchr(slash + 1, '/')) {
		size_t n = (size_t)(slash - name);

		memcpy(dir, name, n);
		dir[n] = 0;
		if (make_dir(dirfd, dir) != 0)
			return -1;
	}
	return 0;
}

long files_split(const char *buf, size_t n, int dirfd, const struct plan *p, bool *truncated,
                 char *err, size_t errlen)
{
	static const char begin[] = DAXLAB_FILE_BEGIN, end[] = "\n" DAXLAB_FILE_END "\n";
	char(*seen)[DAXLAB_CAP_FILE_NAME + 1] = NULL;
	size_t pos = 0, nseen = 0;
	long written = 0;

	*truncated = false;
	while (pos < n) {
		const char *nl = memchr(buf + pos, '\n', n - pos > 256 ? 256 : n - pos);
		char header[257], *name, *size_s;
		struct daxlab_file_name fn;
		uint64_t size;

		if (!nl) {
			if (n - pos < 256 && !memchr(buf + pos, 0, n - pos) &&
			    !strncmp(buf + pos, begin,
			             n - pos < sizeof(begin) - 1 ? n - pos : sizeof(begin) - 1)) {
				*truncated = true; /* a header cut off */
				break;
			}
			written =
			    errorf(err, errlen, "files channel byte %zu: not a frame header", pos);
			break;
		}
		memcpy(header, buf + pos, (size_t)(nl - (buf + pos)));
		header[nl - (buf + pos)] = 0;
		if (strncmp(header, begin, sizeof(begin) - 1) ||
		    memchr(header, 0, (size_t)(nl - (buf + pos)))) {
			written =
			    errorf(err, errlen, "files channel byte %zu: not a frame header", pos);
			break;
		}
		name = header + sizeof(begin) - 1;
		size_s = strrchr(name, ' ');
		if (!size_s) {
			written = errorf(err, errlen,
			                 "files channel byte %zu: a header without a size", pos);
			break;
		}
		*size_s++ = 0;
		if (daxlab_file_name_parse(name, &fn) != 0 ||
		    (fn.scenario[0] && plan_scenario(p, fn.scenario) < 0) ||
		    (fn.fs[0] && !plan_has_fs(p, fn.fs))) {
			written = errorf(
			    err, errlen,
			    "files channel byte %zu: a file name the protocol does not allow", pos);
			break;
		}
		if (!parse_u64(size_s, &size) || size > fn.kind->cap) {
			written =
			    errorf(err, errlen,
			           "files channel byte %zu: a size over the cap of its kind", pos);
			break;
		}
		for (size_t i = 0; i < nseen; i++)
			if (!strcmp(seen[i], name)) {
				written = errorf(err, errlen,
				                 "files channel byte %zu: a file sent twice", pos);
				goto out;
			}
		pos = (size_t)(nl - buf) + 1;
		if (n - pos < size + sizeof(end) - 1) {
			*truncated = true; /* the guest stopped inside this frame */
			break;
		}
		if (memcmp(buf + pos + size, end, sizeof(end) - 1)) {
			written =
			    errorf(err, errlen, "files channel byte %zu: a frame without its end",
			           pos + size);
			break;
		}
		if (nseen >= DAXLAB_CAP_NFILES) {
			written = errorf(err, errlen, "files channel: more than %d files",
			                 DAXLAB_CAP_NFILES);
			break;
		}
		void *ns = realloc(seen, (nseen + 1) * sizeof(*seen));

		if (!ns) {
			written = errorf(err, errlen, "out of memory");
			break;
		}
		seen = ns;
		strcpy(seen[nseen++], name);
		if (make_parents(dirfd, name) != 0 ||
		    write_file(dirfd, name, buf + pos, (size_t)size, false) != 0) {
			written =
			    errorf(err, errlen, "files channel: cannot write a guest file: %s",
			           strerror(errno));
			break;
		}
		written++;
		pos += size + sizeof(end) - 1;
	}
out:
	free(seen);
	return written;
}
