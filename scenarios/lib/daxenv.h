/*
 * daxenv.h - what the guest can tell about DAX, for scenarios and tools.
 *
 * The authority on "is this file DAX" is statx(STATX_ATTR_DAX); the page
 * cache size comes from /proc/meminfo; fs_dax tracepoint counts come from
 * the tracefs buffer that the guest agent enables around each scenario.
 */
#ifndef DAXLAB_DAXENV_H
#define DAXLAB_DAXENV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>

/* 1 if @path has STATX_ATTR_DAX, 0 if not, -1 (errno set) if unknown. */
int daxenv_is_dax(const char *path);
/* Older libc headers lack these (MAP_SYNC mappings of DAX files). */
#ifndef MAP_SHARED_VALIDATE
#define MAP_SHARED_VALIDATE 0x03
#endif
#ifndef MAP_SYNC
#define MAP_SYNC 0x80000
#endif

/*
 * --mode devdax: the device-dax character device the agent made
 * ($DAXLAB_DEVDAX, e.g. /dev/dax0.0), or NULL under a filesystem.
 */
const char *daxenv_devdax(void);
/* Device dax maps in multiples of its alignment (the agent makes it 2 MiB). */
#define DAXENV_DEVDAX_ALIGN (2u << 20)
/*
 * A shared read-write mapping of @len bytes of the memory under test: a new
 * file @name of that size in the cwd (fsdax), or the start of the device
 * dax (--mode devdax: @len rounded up to DAXENV_DEVDAX_ALIGN). Sets *fd and
 * *maplen (what to munmap); MAP_FAILED with errno on failure.
 */
void *daxenv_map(const char *name, size_t len, int *fd, size_t *maplen);
/*
 * 1 if what daxenv_map() mapped is DAX: the file has STATX_ATTR_DAX, or
 * @fd is a device-dax character device; else 0 (-1: cannot tell).
 */
int daxenv_map_is_dax(int fd, const char *name);
/* "Cached:" from /proc/meminfo in KiB, or -1. */
long daxenv_cached_kb(void);
/* Lines of the tracefs buffer whose event name is @event ("dax_pte_fault"),
 * or -1 if tracefs cannot be read. */
long daxenv_trace_count(const char *event);
/* Fill @buf with a pattern that depends on @seed and the byte offset. */
void daxenv_pattern(unsigned char *buf, size_t len, unsigned seed, size_t off);
/* Offset of the first byte where @buf differs from the pattern, or -1. */
long daxenv_pattern_check(const unsigned char *buf, size_t len, unsigned seed, size_t off);
/* Enable sysrq and send @key to /proc/sysrq-trigger; false if impossible. */
bool daxenv_sysrq(char key);
/*
 * The platform's persistence domain as the NV-DIMM's region states it
 * ("cpu_cache", "memory_controller", ...), into @buf without the newline;
 * false if there is none. The region is $DAXLAB_REGION (the agent's NV-DIMM
 * under test), or region0.
 */
bool daxenv_persistence_domain(char *buf, size_t len);
/*
 * The provider of the NV-DIMM region's bus ("ACPI.NFIT" for an NFIT
 * NV-DIMM, "virtio-pmem" for virtio-pmem) into @buf; false if unknown.
 */
bool daxenv_region_provider(char *buf, size_t len);
/* Working directory given by the agent ($DAXLAB_DIR), or "." */
const char *daxenv_workdir(void);

/* File helpers for scenarios: each one bails out (TAP "Bail out!") on error. */
int daxenv_open_new(const char *name); /* O_RDWR|O_CREAT|O_TRUNC */
void daxenv_pwrite_all(int fd, const void *buf, size_t len, long long off);
void daxenv_pread_all(int fd, void *buf, size_t len, long long off); /* EOF is an error */
void *daxenv_map_shared(int fd, size_t len);                         /* PROT_READ|PROT_WRITE */
/*
 * Where bytes [@off, @off + @len) of the file are on its block device
 * (FIEMAP, after a sync), if they lie in one written extent; else -1.
 */
long long daxenv_device_offset(int fd, long long off, long long len);
/* TAP point: a new file @name in the cwd has STATX_ATTR_DAX (file removed). */
bool daxenv_tap_is_dax(const char *name);

#endif
