/* timeline.h - see timeline.c */
#ifndef DAXLAB_TIMELINE_H
#define DAXLAB_TIMELINE_H

/*
 * Write @out_name (under @dirfd) for the hit whose witness is @witness_name,
 * from the fs_dax trace @fs_dax_name and pmem-trace.bin when they are
 * there. Returns 0 (also when the witness has no time), -1 on error.
 */
int timeline_write(int dirfd, const char *witness_name, const char *out_name,
                   const char *fs_dax_name, const char *scenario);

#endif
