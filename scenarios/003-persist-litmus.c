/*
 * persist-litmus - which stores survive a crash under ADR and eADR
 *
 * Four 64-byte lines of a DAX-mapped file, each first filled with an "old"
 * byte and made durable (fsync, then CLWB + SFENCE), checkpoint 1; then:
 *   r4: new bytes stored, then msync (the kernel flushes the page);
 *   r1: new bytes stored, no flush;
 *   r2: new bytes stored, CLWB, SFENCE;
 *   r3: new bytes stored, CLWB, no fence,
 * and checkpoint 2. The scenario finds the lines on the device (FIEMAP)
 * and prints, per line and checkpoint, what every crash state must hold
 * ("daxlab-crash-expect"); run.sh --crash-check gives them to daxlab-crash.
 * Under ADR (persistence domain "memory_controller"): r1 and r3 are old in
 * the durable-only state and either in the sampled ones (both seen), r2
 * and r4 are new everywhere. Under eADR ("cpu_cache"): all new. A kernel
 * that skips its flush on msync (dax/write_cache 0 under ADR) loses r4.
 * On virtio-pmem (the region's provider is virtio-pmem, no persistence
 * domain): only the host's flush persists, which msync asks for, so r4 is
 * new everywhere and r1, r2 and r3 (CLWB + SFENCE included) are old in the
 * durable-only state and either in the others; and a MAP_SYNC mapping
 * (the kernel's promise that CPU flushes suffice) must be refused there
 * (EOPNOTSUPP), while an NV-DIMM with a persistence domain grants it
 * (ext2 too: the ext4 driver mounts it here).
 * On device dax (--mode devdax, no filesystem): the lines are at the
 * device's own offsets, the old bytes are made durable by CLWB + SFENCE
 * alone, and r4 is written back with CLFLUSH (msync has nothing to flush
 * there); the expectations are those of the NV-DIMM's domain.
 *
 * daxlab-groups: litmus crash devdax
 * daxlab-crash: lines
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sched.h>
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

struct region {
	const char *name;
	unsigned off; /* in the file */
	uint8_t old_b, new_b;
};

static const struct region R1 = {"r1-store", 0 * LINE, 0x11, 0x12};
static const struct region R2 = {"r2-clwb-sfence", 1 * LINE, 0x21, 0x22};
static const struct region R3 = {"r3-clwb-nofence", 2 * LINE, 0x31, 0x32};
static struct region R4 = {"r4-msync", PAGE, 0x41, 0x42}; /* r4-clflush on devdax */

static void fill(unsigned char *p, uint8_t b)
{
	for (unsigned i = 0; i < LINE; i += 8) {
		uint64_t v = 0x0101010101010101ull * b;

		__asm__ volatile("movq %1, (%0)" ::"r"(p + i), "r"(v) : "memory");
	}
}

static void clwb(void *p)
{
	__asm__ volatile("clwb (%0)" ::"r"(p) : "memory");
}

static void sfence(void)
{
	__asm__ volatile("sfence" ::: "memory");
}

static void expect(unsigned long long cp, long long dev, const struct region *r,
                   const char *durable, const char *samples, const char *seen)
{
	tap_diag(DAXLAB_TAG_CRASH_EXPECT ": checkpoint=%llu devoffset=%lld old=0x%02x new=0x%02x "
	                                 "durable=%s samples=%s seen=%s name=%s",
	         cp, dev, r->old_b, r->new_b, durable, samples, seen, r->name);
}

int main(void)
{
	const char *dir = daxenv_workdir();
	unsigned long long seq =
	    strtoull(getenv("DAXLAB_SEQ") ? getenv("DAXLAB_SEQ") : "0", NULL, 10);
	unsigned long long cp1 = seq * 1000 + 1, cp2 = seq * 1000 + 2;
	const struct region *all[] = {&R1, &R2, &R3, &R4};
	unsigned char buf[2 * PAGE], *map;
	const char *devdax = daxenv_devdax();
	size_t maplen = sizeof(buf);
	char domain[64] = "", provider[64] = "";
	long long dev[4];
	bool eadr, virtio, found = true;
	cpu_set_t one;
	int fd;

	if (chdir(dir) != 0)
		tap_skip_all("cannot enter %s: %s", dir, strerror(errno));
	virtio =
	    daxenv_region_provider(provider, sizeof(provider)) && !strcmp(provider, "virtio-pmem");
	if (!virtio && !daxenv_persistence_domain(domain, sizeof(domain)))
		tap_skip_all("the platform states no persistence domain (start QEMU with "
		             "nvdimm-persistence=)");
	eadr = strncmp(domain, "cpu_cache", 9) == 0;
	tap_plan(4);
	if (virtio)
		tap_diag("virtio-pmem: durable when the host flushes (fsync, msync), not by CLWB");
	else
		tap_diag("persistence domain: %s", domain);
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	sched_setaffinity(0, sizeof(one), &one);

	if (devdax) {
		/* No filesystem: the lines are at their own offsets of the device,
		 * and the old bytes are made durable by the CPU below. */
		R4.name = "r4-clflush";
		map = daxenv_map("litmus", sizeof(buf), &fd, &maplen);
		if (map == MAP_FAILED)
			tap_bail("cannot map %s: %s", devdax, strerror(errno));
		for (unsigned i = 0; i < 4; i++)
			dev[i] = all[i]->off;
	} else {
		/* Old content, durable through the filesystem. */
		memset(buf, 0, sizeof(buf));
		for (unsigned i = 0; i < 4; i++)
			memset(buf + all[i]->off, all[i]->old_b, LINE);
		fd = open("litmus", O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || pwrite(fd, buf, sizeof(buf), 0) != (ssize_t)sizeof(buf) ||
		    fsync(fd) != 0)
			tap_bail("cannot write the litmus file: %s", strerror(errno));
		for (unsigned i = 0; i < 4; i++) {
			dev[i] = daxenv_device_offset(fd, all[i]->off, LINE);
			found &= dev[i] >= 0;
		}
		map = mmap(NULL, sizeof(buf), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED)
			tap_bail("mmap: %s", strerror(errno));
	}
	tap_ok(found, "the litmus lines were located on the device");
	tap_ok(daxenv_map_is_dax(fd, "litmus") == 1, "the litmus mapping is DAX");
	/* Write-fault the pages in with the old bytes and make them durable. */
	for (unsigned i = 0; i < 4; i++) {
		fill(map + all[i]->off, all[i]->old_b);
		clwb(map + all[i]->off);
	}
	sfence();
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, cp1);

	fill(map + R4.off, R4.new_b);
	if (devdax)
		__asm__ volatile("clflush (%0)" ::"r"(map + R4.off) : "memory");
	else if (msync(map + PAGE, PAGE, MS_SYNC) != 0)
		tap_bail("msync: %s", strerror(errno));
	fill(map + R1.off, R1.new_b);
	fill(map + R2.off, R2.new_b);
	clwb(map + R2.off);
	sfence();
	fill(map + R3.off, R3.new_b);
	clwb(map + R3.off);
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, cp2);

	for (unsigned i = 0; i < 4; i++)
		expect(cp1, dev[i], all[i], "old", "old", "-");
	if (eadr) {
		for (unsigned i = 0; i < 4; i++)
			expect(cp2, dev[i], all[i], "new", "new", "-");
	} else if (virtio) {
		for (unsigned i = 0; i < 3; i++)
			expect(cp2, dev[i], all[i], "old", "any", "old,new");
		expect(cp2, dev[3], &R4, "new", "new", "-");
	} else {
		expect(cp2, dev[0], &R1, "old", "any", "old,new");
		expect(cp2, dev[1], &R2, "new", "new", "-");
		expect(cp2, dev[2], &R3, "old", "any", "old,new");
		expect(cp2, dev[3], &R4, "new", "new", "-");
	}
	tap_ok(map[R1.off] == R1.new_b && map[R3.off + 63] == R3.new_b && map[R4.off] == R4.new_b,
	       "the guest sees its new bytes");
	{
		size_t len = devdax ? DAXENV_DEVDAX_ALIGN : PAGE;
		void *sync =
		    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
		int err = sync == MAP_FAILED ? errno : 0;

		tap_diag("MAP_SYNC: %s", err ? strerror(err) : "granted");
		tap_ok(virtio ? err == EOPNOTSUPP : err == 0,
		       "MAP_SYNC is granted where CPU flushes persist, refused where not");
		if (!err)
			munmap(sync, len);
	}
	munmap(map, maplen);
	close(fd);
	if (!devdax)
		unlink("litmus");
	tap_finish();
}
