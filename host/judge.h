/* judge.h - the verdicts of a run (judge.c), and what daxlab-collect shares. */
#ifndef DAXLAB_JUDGE_H
#define DAXLAB_JUDGE_H

#include "collect.h"

/* Open RUN_DIR and read its run.json into @p; exits 2 on failure. */
int open_run(const char *dir, struct plan *p);
/* The TAP channel (empty, with @err set, when over its cap). */
char *read_tap(int dirfd, size_t *n, char *err, size_t errlen);
/* Where the block device's data starts on the NV-DIMM (pmem-data.txt). */
uint64_t data_offset(int dirfd, const struct plan *p);

/* pmem-perf.json (the pmem-perf scenario's own figures) and, with the
 * latency model, the plot's data files. */
void perf_files(int dirfd, const struct plan *p, const struct tap_stream *t);

/* Every verdict of RUN_DIR into summary.json; the summary on stdout.
 * Returns the exit status: 0 all passed, 1 anything failed. */
int judge(const char *dir, const char *golden_dir);

#endif
