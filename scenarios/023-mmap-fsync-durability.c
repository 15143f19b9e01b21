/*
 * mmap-fsync-durability - stores through a mapping are durable after each fsync, the second too
 *
 * Under ADR a store through a DAX mapping sits in the CPU cache until the
 * kernel writes the line back: fsync must find every page stored to since
 * the last fsync (dax_writeback_mapping_range walks the entries tagged
 * dirty) and flush it. Writeback therefore write-protects the page tables
 * again, so that the next store faults and re-dirties the entry. The shape
 * of a real DAX bug: a page whose mapping was not write-protected after
 * writeback took the next stores without a fault, nothing tagged it dirty,
 * and the next fsync flushed nothing: the first fsync made its data
 * durable, the second silently did not.
 * The scenario writes a file with pwrite() and fsyncs it (checkpoint 1),
 * stores new data to every byte of its pages through a shared mapping and
 * fsyncs (checkpoint 2), stores again to the same pages (checkpoint 3, no
 * fsync yet) and fsyncs (checkpoint 4). It finds the pages on the device
 * (FIEMAP) and declares, for run.sh --crash-check, what every crash state
 * must hold at each checkpoint ("# daxlab-crash-expect:" lines, sampled
 * lines of every page):
 *  - checkpoints 1, 2, 4: the data of the last fsync, in the durable-only
 *    state and in every sample (nothing of it may be pending);
 *  - checkpoint 3 under ADR: still the second data in the durable-only
 *    state (the stores are in the cache, which shows the model sees them
 *    as pending), either in the samples; under eADR the new data.
 * A kernel that skips its cache flushes (dax/write_cache 0 under ADR:
 * run.sh --guest-write-cache 0) fails checkpoints 2 to 4; one that does
 * not write-protect after writeback fails checkpoint 4. The TAP points
 * check what the guest itself can see: the file is DAX, FIEMAP found the
 * pages, and read() returns each data after its fsync.
 *
 * daxlab-groups: default series crash
 * daxlab-crash: lines
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
#include <unistd.h>

#include "daxlab-marker.h"
#include "daxlab-protocol.h"
#include "lib/daxenv.h"
#include "lib/tap.h"

#define PAGE 4096u
#define LINE 64u
#define NPAGES 4u
#define SIZE (NPAGES * PAGE)
#define LINE_STEP 8u /* declare every 8th line of each page */

#define ZERO_B 0x00
#define INIT_B 0x11 /* pwrite(), fsync: checkpoint 1 */
#define V1_B 0xa1   /* stored through the mapping, fsync: checkpoint 2 */
#define V2_B 0xa2   /* stored again: checkpoint 3; fsync: checkpoint 4 */

/* Every declared line of every page at checkpoint @cp. */
static void expect(unsigned long long cp, const long long *dev, uint8_t old_b, uint8_t new_b,
                   const char *durable, const char *samples, const char *tag)
{
	for (unsigned p = 0; p < NPAGES; p++)
		for (unsigned l = 0; l < PAGE / LINE; l += LINE_STEP)
			tap_diag(DAXLAB_TAG_CRASH_EXPECT
			         ": checkpoint=%llu devoffset=%lld old=0x%02x "
			         "new=0x%02x durable=%s samples=%s seen=- name=%s-p%u-l%u",
			         cp, dev[p] + l * LINE, old_b, new_b, durable, samples, tag, p, l);
}

/* Stores of @b to every byte of the mapping, 8 bytes at a time. */
static void store_all(unsigned char *map, uint8_t b)
{
	uint64_t v = 0x0101010101010101ull * b;

	for (unsigned i = 0; i < SIZE; i += 8)
		*(volatile uint64_t *)(map + i) = v;
}

static bool reads_back(int fd, uint8_t b)
{
	static unsigned char buf[SIZE];

	daxenv_pread_all(fd, buf, SIZE, 0);
	for (unsigned i = 0; i < SIZE; i++) {
		if (buf[i] != b) {
			tap_diag("read() at offset %u: 0x%02x, expected 0x%02x", i, buf[i], b);
			return false;
		}
	}
	return true;
}

static void do_fsync(int fd, const char *which)
{
	if (fsync(fd) != 0)
		tap_bail("%s fsync: %s", which, strerror(errno));
}

int main(void)
{
	unsigned long long seq =
	    strtoull(getenv("DAXLAB_SEQ") ? getenv("DAXLAB_SEQ") : "0", NULL, 10);
	unsigned long long cp[5];
	static unsigned char buf[SIZE];
	char domain[64] = "";
	long long dev[NPAGES];
	unsigned char *map;
	bool eadr, found = true, moved = false;
	int fd;

	for (unsigned i = 1; i <= 4; i++)
		cp[i] = seq * 1000 + i;
	if (!daxenv_persistence_domain(domain, sizeof(domain)))
		tap_skip_all("the platform states no persistence domain (start QEMU with "
		             "nvdimm-persistence=)");
	eadr = strncmp(domain, "cpu_cache", 9) == 0;
	tap_plan(5);
	tap_diag("persistence domain: %s", domain);
	daxenv_tap_is_dax("probe");

	fd = daxenv_open_new("file");
	memset(buf, INIT_B, sizeof(buf));
	daxenv_pwrite_all(fd, buf, SIZE, 0);
	do_fsync(fd, "first");
	for (unsigned p = 0; p < NPAGES; p++) {
		dev[p] = daxenv_device_offset(fd, (long long)p * PAGE, PAGE);
		found &= dev[p] >= 0;
	}
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, cp[1]);
	tap_ok(found, "FIEMAP located every page of the file on the device");
	if (!found)
		tap_bail("cannot declare crash expectations without device offsets");
	map = daxenv_map_shared(fd, SIZE);

	store_all(map, V1_B);
	do_fsync(fd, "second");
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, cp[2]);
	tap_ok(reads_back(fd, V1_B),
	       "after the first fsync of the mapping read() returns its data");

	store_all(map, V2_B);
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, cp[3]);
	do_fsync(fd, "third");
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, cp[4]);
	tap_ok(reads_back(fd, V2_B),
	       "after the second fsync of the mapping read() returns the second data");

	expect(cp[1], dev, ZERO_B, INIT_B, "new", "new", "init");
	expect(cp[2], dev, INIT_B, V1_B, "new", "new", "fsync1");
	if (eadr)
		expect(cp[3], dev, V1_B, V2_B, "new", "new", "stored");
	else
		expect(cp[3], dev, V1_B, V2_B, "old", "any", "stored");
	expect(cp[4], dev, V1_B, V2_B, "new", "new", "fsync2");
	for (unsigned p = 0; p < NPAGES; p++)
		moved |= daxenv_device_offset(fd, (long long)p * PAGE, PAGE) != dev[p];
	tap_ok(!moved, "the file's blocks did not move while it was written");
	munmap(map, SIZE);
	close(fd);
	unlink("file");
	tap_finish();
}
