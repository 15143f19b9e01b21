/*
 * test_sparse_copy.c - the sparse copy of NV-DIMM images: the copy has the
 * source's bytes, at the right offset, and takes blocks only for data that
 * is not zero (holes, and data blocks full of zeros, stay holes).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sparse-copy.h"

#include "check.h"

#define MIB (1u << 20)
#define SIZE (8 * MIB)

static int temp_file(void)
{
	char path[] = "/tmp/test_sparse_copy.XXXXXX";
	int fd = mkstemp(path);

	if (fd >= 0)
		unlink(path);
	return fd;
}

static long long allocated(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
}

static unsigned char *read_all(int fd, size_t len)
{
	unsigned char *p = malloc(len);

	CHECK(p && pread(fd, p, len, 0) == (ssize_t)len);
	return p;
}

int main(void)
{
	int src = temp_file(), dst = temp_file();
	unsigned char *want = calloc(1, SIZE), *got;
	uint64_t rnd = 0x5eed;

	CHECK(src >= 0 && dst >= 0 && want);
	CHECK(ftruncate(src, SIZE) == 0);
	/* data at 1 MiB + 100 (crossing 64 KiB blocks), 3 MiB of allocated
	 * zeros at 2 MiB (libvirt's preallocation), one byte at the very end */
	for (size_t i = 0; i < 200000; i++)
		want[MIB + 100 + i] = (unsigned char)(check_rand(&rnd) | 1);
	want[SIZE - 1] = 0x7f;
	CHECK(pwrite(src, want + MIB, MIB, MIB) == MIB);
	CHECK(pwrite(src, want + 2 * MIB, 3 * MIB, 2 * MIB) == 3 * MIB);
	CHECK(pwrite(src, want + SIZE - 1, 1, SIZE - 1) == 1);
	CHECK(allocated(src) >= 4 * MIB);

	/* The whole image. */
	CHECK(ftruncate(dst, SIZE) == 0);
	CHECK(sparse_copy(src, 0, dst, 0, SIZE) == 0);
	got = read_all(dst, SIZE);
	CHECK(got && memcmp(got, want, SIZE) == 0);
	/* 200000 bytes touch 4 blocks of 64 KiB, the last byte one more */
	CHECK(allocated(dst) <= 5 * 64 * 1024 + 64 * 1024);
	free(got);

	/* A region, to another offset (daxlab-crash image --offset). */
	CHECK(ftruncate(dst, 0) == 0 && ftruncate(dst, 2 * MIB) == 0);
	CHECK(sparse_copy(src, MIB + 4096, dst, 4096, MIB) == 0);
	got = read_all(dst, 2 * MIB);
	CHECK(got && memcmp(got + 4096, want + MIB + 4096, MIB) == 0);
	CHECK(got && got[4095] == 0 && got[4096 + MIB] == 0);
	free(got);

	/* Past the source's end reads as zeros; a bad descriptor is an error. */
	CHECK(ftruncate(dst, 0) == 0 && ftruncate(dst, MIB) == 0);
	CHECK(sparse_copy(src, SIZE - 4096, dst, 0, MIB) == 0);
	got = read_all(dst, MIB);
	CHECK(got && got[4095] == 0x7f && got[4096] == 0);
	free(got);
	CHECK(sparse_copy(-1, 0, dst, 0, MIB) == -1);

	free(want);
	close(src);
	close(dst);
	printf("test_sparse_copy: %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
