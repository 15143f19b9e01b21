/*
 * versions.h - whole-file versions, for crash scenarios: a file written
 * with version V's pattern, the expectations a scenario declares per
 * checkpoint (which versions a crash state may hold), and the recovery
 * side's answer (which version a recovered file is, if any).
 */
#ifndef DAXLAB_VERSIONS_H
#define DAXLAB_VERSIONS_H

#define VERSIONS_FILE_SIZE (16u * 1024u)

/* Write @name (created or truncated) with version @v, and fsync it. */
void versions_write(const char *name, unsigned v);
/* fsync the current directory. */
void versions_fsync_dir(void);
/* Declare the versions ("0", "0,1"...) every crash state at @cp may hold. */
void versions_expect(unsigned long long cp, const char *versions);
/*
 * After a crash (run as "SCENARIO --recover" by the recovery guest): say
 * which of versions 0..@nversions-1 @name is ("missing", "torn" if none),
 * as a TAP plan of one passing point; exits.
 */
int versions_recover(const char *name, unsigned nversions);

#endif
