/*
 * selftest-pmemobj-noflush - pmemobj-tx updating with plain stores: must fail (harness self-test)
 *
 * Not a DAX scenario: pmemobj-tx with its persistence broken on purpose.
 * Version 0 goes in a transaction as there, but versions 1..3 are
 * stored straight into the mapped record: no undo log, no flush, no
 * fence. Each checkpoint still claims its version is durable, which it
 * is not (the lines sit in the CPU cache), so --crash-check must report
 * failing states (the old version, or a torn record) at those
 * checkpoints.
 *
 * daxlab-groups: selftest pmdk
 * daxlab-crash: recover
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daxlab-marker.h"
#include "lib/daxenv.h"
#include "lib/pmemobj-record.h"
#include "lib/tap.h"
#include "lib/versions.h"

int main(int argc, char **argv)
{
	unsigned long long seq =
	    strtoull(getenv("DAXLAB_SEQ") ? getenv("DAXLAB_SEQ") : "0", NULL, 10);
	unsigned long long cp = seq * 1000;
	char allowed[16];
	PMEMobjpool *pop;
	struct record *rec;

	if (chdir(daxenv_workdir()) != 0)
		tap_skip_all("cannot enter %s: %s", daxenv_workdir(), strerror(errno));
	if (argc > 1 && !strcmp(argv[1], "--recover"))
		return record_recover();
	tap_plan(1);
	pop = record_create();
	if (record_write_tx(pop, 0) != 0)
		tap_bail("the transaction of version 0 aborted");
	rec = record_of(pop);
	daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
	versions_expect(cp, "0");
	daxlab_mark(DAXLAB_MARK_CRASH_BEGIN, seq);
	for (unsigned v = 1; v < RECORD_VERSIONS; v++) {
		record_fill(rec, v); /* the bug: plain stores, never persisted */
		daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
		snprintf(allowed, sizeof(allowed), "%u", v);
		versions_expect(cp, allowed);
	}
	daxlab_mark(DAXLAB_MARK_CRASH_END, seq);
	tap_ok(record_version(rec) == (int)RECORD_VERSIONS - 1,
	       "the mapped record is the last version");
	pmemobj_close(pop);
	tap_finish();
}
