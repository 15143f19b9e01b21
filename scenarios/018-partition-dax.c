/*
 * partition-dax - DAX on a partition at a non-zero offset: data lands where the partition says
 *
 * The series' "Factor out bdev_direct_access() to support partitioning
 * properly" fixed DAX on partitions, where the filesystem's block numbers
 * are relative to the partition but the NV-DIMM is addressed from the
 * start of the whole device: forgetting the partition's start sector puts
 * every byte at the wrong place. (Linux later dropped DAX on partitions,
 * then brought it back for ext4 and xfs with an explicit partition offset.)
 * The scenario writes an MBR with one partition starting 1 MiB + 4 KiB into
 * a second NV-DIMM (run.sh adds it for this scenario; the agent names it in
 * $DAXLAB_PMEM1), makes the run's filesystem on its first partition, mounts it with DAX, writes a
 * file through a shared mapping and through write(), and finds the file's blocks with FIEMAP.
 * Promises:
 *  - the mount really is DAX (statx);
 *  - read from the whole device at partition start + the block's offset,
 *    the bytes are the file's (both write paths);
 *  - at the block's offset without the partition's start they are not
 *    (the check can tell the two apart).
 * A kernel that refuses DAX on partitions gets a SKIP with its reason.
 *
 * daxlab-needs: pmem1
 * daxlab-groups: default series
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/tap.h"

#define MNT "/tmp/partition-dax"
#define SECTOR 512u
static char disk_path[64], part_path[72]; /* $DAXLAB_PMEM1 and its partition 1 */
#define DISK disk_path
#define PART part_path
#define PART_START 2056u /* sectors: 1 MiB + 4 KiB, page- but not 2 MiB-aligned */
#define PAGE 4096u
#define FILE_SIZE (64u * PAGE)

/* One MBR partition entry (type 0x83) from @start for @count sectors. */
static void write_mbr(int fd, uint32_t start, uint32_t count)
{
	unsigned char mbr[SECTOR] = {0};
	unsigned char *e = mbr + 446;

	e[4] = 0x83;
	memcpy(e + 8, &start, 4);
	memcpy(e + 12, &count, 4);
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
	daxenv_pwrite_all(fd, mbr, sizeof(mbr), 0);
	if (fsync(fd))
		tap_bail("fsync %s: %s", DISK, strerror(errno));
}

static int run_cmd(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		tap_bail("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) < 0)
		tap_bail("waitpid: %s", strerror(errno));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void make_fs(const char *fs)
{
	char *ext[] = {"/sbin/mke2fs", "-q", "-F", "-t", (char *)fs, "-b", "4096", PART, NULL};
	char *xfs[] = {"/sbin/mkfs.xfs", "-q", "-f", "-m", "reflink=0", PART, NULL};
	int rc = run_cmd(strcmp(fs, "xfs") ? ext : xfs);

	if (rc)
		tap_bail("mkfs %s on %s: exit %d", fs, PART, rc);
}

static bool page_at(int disk, long long dev_off, unsigned seed, long long file_off)
{
	static unsigned char buf[PAGE];

	daxenv_pread_all(disk, buf, PAGE, dev_off);
	return daxenv_pattern_check(buf, PAGE, seed, (size_t)file_off) < 0;
}

int main(void)
{
	const char *fs = getenv("DAXLAB_FS") ? getenv("DAXLAB_FS") : "ext4";
	static unsigned char buf[FILE_SIZE / 2];
	long long size, first, second;
	unsigned char *map;
	int disk, fd, tries;
	bool right, wrong;

	tap_plan(4);
	if (!getenv("DAXLAB_PMEM1"))
		tap_skip_all("no second NV-DIMM (run.sh adds one for scenarios that declare "
		             "daxlab-needs: pmem1)");
	snprintf(disk_path, sizeof(disk_path), "%s", getenv("DAXLAB_PMEM1"));
	snprintf(part_path, sizeof(part_path), "%sp1", disk_path);
	disk = open(DISK, O_RDWR);
	if (disk < 0)
		tap_bail("open %s: %s", DISK, strerror(errno));
	if (ioctl(disk, BLKGETSIZE64, &size) || size < (long long)(8u << 20))
		tap_bail("%s: cannot get its size, or smaller than 8 MiB", DISK);
	write_mbr(disk, PART_START, (uint32_t)(size / SECTOR - PART_START));
	for (tries = 0; ioctl(disk, BLKRRPART) && tries < 50; tries++)
		usleep(100000);
	for (tries = 0; access(PART, F_OK) && tries < 50; tries++)
		usleep(100000);
	if (access(PART, F_OK))
		tap_bail("%s did not appear after re-reading the partition table", PART);
	make_fs(fs);
	mkdir(MNT, 0755);
	if (mount(PART, MNT, fs, 0, strcmp(fs, "xfs") ? "dax" : "dax=always"))
		tap_skip_all("mount -o dax of a partition: %s (see dmesg)", strerror(errno));
	if (chdir(MNT))
		tap_bail("chdir %s: %s", MNT, strerror(errno));
	if (!daxenv_tap_is_dax("probe"))
		tap_diag("the kernel mounted %s without DAX: see dmesg", PART);

	/* First half through a shared mapping, second half through write(). */
	fd = daxenv_open_new("file");
	if (ftruncate(fd, FILE_SIZE))
		tap_bail("ftruncate: %s", strerror(errno));
	map = daxenv_map_shared(fd, FILE_SIZE);
	daxenv_pattern(map, FILE_SIZE / 2, 18, 0);
	if (msync(map, FILE_SIZE, MS_SYNC))
		tap_bail("msync: %s", strerror(errno));
	daxenv_pattern(buf, sizeof(buf), 18, FILE_SIZE / 2);
	daxenv_pwrite_all(fd, buf, sizeof(buf), FILE_SIZE / 2);
	if (fsync(fd))
		tap_bail("fsync: %s", strerror(errno));
	first = daxenv_device_offset(fd, PAGE, PAGE);
	second = daxenv_device_offset(fd, FILE_SIZE / 2 + PAGE, PAGE);
	if (first < 0 || second < 0)
		tap_bail("FIEMAP could not locate the file's blocks");
	tap_diag("partition at %u bytes; file blocks at %lld and %lld in the partition",
	         PART_START * SECTOR, first, second);

	/* Read the media, not what the whole disk's page cache may hold. */
	if (ioctl(disk, BLKFLSBUF, 0))
		tap_diag("BLKFLSBUF: %s", strerror(errno));
	right = page_at(disk, PART_START * SECTOR + first, 18, PAGE);
	tap_ok(right, "stored through the mapping: on the device at partition start + block");
	tap_ok(page_at(disk, PART_START * SECTOR + second, 18, FILE_SIZE / 2 + PAGE),
	       "written with write(): on the device at partition start + block");
	wrong = page_at(disk, first, 18, PAGE);
	tap_ok(!wrong, "not at the block's offset without the partition's start");

	munmap(map, FILE_SIZE);
	close(fd);
	if (chdir("/") || umount(MNT))
		tap_diag("umount %s: %s", MNT, strerror(errno));
	close(disk);
	tap_finish();
}
