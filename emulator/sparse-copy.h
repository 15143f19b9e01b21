/*
 * sparse-copy.h - copy part of an NV-DIMM image and keep the copy sparse.
 *
 * The plugin's durable shadow starts as a copy of the NV-DIMM at boot, and
 * daxlab-crash starts a crash image as a copy of the base image; both are
 * mostly holes or zeros (a fresh image, or one libvirt preallocated full of
 * zeros). Only the data extents of the source are read (SEEK_DATA), and of
 * those only the blocks that are not all zero are written, so a copy costs
 * the disk what the guest really wrote.
 */
#ifndef DAXLAB_SPARSE_COPY_H
#define DAXLAB_SPARSE_COPY_H

#include <stdint.h>

/*
 * Copy @len bytes at @from_off of @from to @to_off of @to, which must
 * already read as zeros there (a new file, truncated to size). The source
 * past its end reads as zeros. Returns 0, or -1 with errno set.
 */
int sparse_copy(int from, uint64_t from_off, int to, uint64_t to_off, uint64_t len);

#endif
