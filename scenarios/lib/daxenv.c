/* daxenv.c - see daxenv.h */
#include "daxenv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "tap.h"

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

int daxenv_is_dax(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &stx) != 0)
		return -1;
	if (!(stx.stx_attributes_mask & STATX_ATTR_DAX)) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return (stx.stx_attributes & STATX_ATTR_DAX) ? 1 : 0;
}

const char *daxenv_devdax(void)
{
	const char *d = getenv("DAXLAB_DEVDAX");

	return d && *d ? d : NULL;
}

void *daxenv_map(const char *name, size_t len, int *fd, size_t *maplen)
{
	const char *dev = daxenv_devdax();
	void *map;

	if (dev) {
		len = (len + DAXENV_DEVDAX_ALIGN - 1) / DAXENV_DEVDAX_ALIGN * DAXENV_DEVDAX_ALIGN;
		*fd = open(dev, O_RDWR);
	} else {
		*fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (*fd >= 0 && ftruncate(*fd, (off_t)len) != 0) {
			int e = errno;

			close(*fd);
			errno = e;
			*fd = -1;
		}
	}
	if (*fd < 0)
		return MAP_FAILED;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	*maplen = len;
	return map;
}

int daxenv_map_is_dax(int fd, const char *name)
{
	char link[PATH_MAX], path[64];
	struct stat st;
	ssize_t n;

	if (!daxenv_devdax())
		return daxenv_is_dax(name);
	if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode))
		return 0;
	/* /sys/dev/char/MAJ:MIN/subsystem -> .../class/dax (or bus/dax) */
	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/subsystem", major(st.st_rdev),
	         minor(st.st_rdev));
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return -1;
	link[n] = 0;
	return strcmp(strrchr(link, '/') ? strrchr(link, '/') + 1 : link, "dax") == 0;
}

long daxenv_cached_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Cached: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

long daxenv_trace_count(const char *event)
{
	static const char *const paths[] = {"/sys/kernel/tracing/trace",
	                                    "/sys/kernel/debug/tracing/trace"};
	char needle[128];
	char line[1024];
	FILE *f = NULL;
	long n = 0;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && !f; i++)
		f = fopen(paths[i], "r");
	if (!f)
		return -1;
	/* Event lines read "... : dax_pte_fault: dev 259:0 ino ..." */
	snprintf(needle, sizeof(needle), " %s:", event);
	while (fgets(line, sizeof(line), f)) {
		if (line[0] != '#' && strstr(line, needle))
			n++;
	}
	fclose(f);
	return n;
}

static unsigned char pattern_byte(unsigned seed, size_t pos)
{
	unsigned x = seed * 2654435761u ^ (unsigned)(pos / 8) * 40503u;

	x ^= x >> 13;
	return (unsigned char)(x + pos % 8 + 1);
}

void daxenv_pattern(unsigned char *buf, size_t len, unsigned seed, size_t off)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern_byte(seed, off + i);
}

long daxenv_pattern_check(const unsigned char *buf, size_t len, unsigned seed, size_t off)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != pattern_byte(seed, off + i))
			return (long)i;
	}
	return -1;
}

bool daxenv_sysrq(char key)
{
	FILE *f = fopen("/proc/sys/kernel/sysrq", "w");

	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	f = fopen("/proc/sysrq-trigger", "w");
	if (!f)
		return false;
	fputc(key, f);
	return fclose(f) == 0;
}

const char *daxenv_workdir(void)
{
	const char *d = getenv("DAXLAB_DIR");

	return d && *d ? d : ".";
}

int daxenv_open_new(const char *name)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		tap_bail("open %s: %s", name, strerror(errno));
	return fd;
}

void daxenv_pwrite_all(int fd, const void *buf, size_t len, long long off)
{
	const unsigned char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n <= 0)
			tap_bail("pwrite at %lld: %s", off,
			         n < 0 ? strerror(errno) : "short write");
		p += n;
		len -= (size_t)n;
		off += n;
	}
}

void daxenv_pread_all(int fd, void *buf, size_t len, long long off)
{
	unsigned char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n <= 0)
			tap_bail("pread at %lld: %s", off,
			         n < 0 ? strerror(errno) : "unexpected EOF");
		p += n;
		len -= (size_t)n;
		off += n;
	}
}

void *daxenv_map_shared(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		tap_bail("mmap of %zu bytes: %s", len, strerror(errno));
	return p;
}

bool daxenv_tap_is_dax(const char *name)
{
	int dax;

	close(daxenv_open_new(name));
	dax = daxenv_is_dax(name);
	unlink(name);
	if (dax < 0)
		return tap_ok(false,
		              "statx reports STATX_ATTR_DAX on the scenario's files (statx: %s)",
		              strerror(errno));
	return tap_ok(dax == 1, "statx reports STATX_ATTR_DAX on the scenario's files");
}

long long daxenv_device_offset(int fd, long long off, long long len)
{
	struct {
		struct fiemap fm;
		struct fiemap_extent ext[8];
	} q;

	memset(&q, 0, sizeof(q));
	q.fm.fm_start = (unsigned long long)off;
	q.fm.fm_length = (unsigned long long)len;
	q.fm.fm_flags = FIEMAP_FLAG_SYNC;
	q.fm.fm_extent_count = 8;
	if (ioctl(fd, FS_IOC_FIEMAP, &q.fm) != 0)
		return -1;
	for (unsigned i = 0; i < q.fm.fm_mapped_extents; i++) {
		const struct fiemap_extent *e = &q.ext[i];

		if ((unsigned long long)off >= e->fe_logical &&
		    (unsigned long long)(off + len) <= e->fe_logical + e->fe_length &&
		    !(e->fe_flags & (FIEMAP_EXTENT_UNWRITTEN | FIEMAP_EXTENT_UNKNOWN)))
			return (long long)(e->fe_physical +
			                   ((unsigned long long)off - e->fe_logical));
	}
	return -1;
}

/* The first line of the region's sysfs file @rel ($DAXLAB_REGION or region0). */
static bool region_attr(const char *rel, char *buf, size_t len)
{
	const char *region = getenv("DAXLAB_REGION");
	char path[128];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "/sys/bus/nd/devices/%s/%s",
	         region && *region ? region : "region0", rel);
	f = fopen(path, "r");
	if (!f)
		return false;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok && *buf;
}

bool daxenv_region_provider(char *buf, size_t len)
{
	/* The region's parent in sysfs is its bus: ndbusN/provider. */
	return region_attr("../provider", buf, len);
}

bool daxenv_persistence_domain(char *buf, size_t len)
{
	return region_attr("persistence_domain", buf, len);
}
