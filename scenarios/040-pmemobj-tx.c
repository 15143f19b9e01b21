/*
 * pmemobj-tx - a committed libpmemobj transaction survives a crash; one cut short rolls back
 *
 * PMDK as a payload: a libpmemobj pool in the scenario's directory on the
 * DAX mount holds one record (a version number and 1 KiB of that
 * version's pattern, 17 cache lines). Version 0 is written in a
 * transaction and checkpointed; then, in a crash window, versions 1..3,
 * each in its own transaction (TX_BEGIN, pmemobj_tx_add_range, the
 * stores, TX_END), with a checkpoint after each commit. A committed
 * transaction is durable, so each checkpoint allows exactly its version;
 * a crash inside a transaction (any fence of libpmemobj's undo log and
 * commit) must recover, when pmemobj_open replays the log, to the old
 * version or the new one, never a torn record. "pmemobj-tx --recover"
 * (the recovery guest, on a mount without DAX) opens the pool and names
 * the version it finds. Linked against Debian's shared libpmemobj.
 * Under --mode devdax the pool is the device dax itself (no crash check
 * there: recovery needs a filesystem to mount).
 *
 * daxlab-groups: crash pmdk devdax
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
	int aborted = 0;
	PMEMobjpool *pop;

	if (chdir(daxenv_workdir()) != 0)
		tap_skip_all("cannot enter %s: %s", daxenv_workdir(), strerror(errno));
	if (argc > 1 && !strcmp(argv[1], "--recover"))
		return record_recover();
	tap_plan(2);
	pop = record_create();
	for (unsigned v = 0; v < RECORD_VERSIONS; v++) {
		if (record_write_tx(pop, v) != 0)
			aborted++;
		daxlab_mark(DAXLAB_MARK_CHECKPOINT, ++cp);
		snprintf(allowed, sizeof(allowed), "%u", v);
		versions_expect(cp, allowed);
		if (v == 0)
			daxlab_mark(DAXLAB_MARK_CRASH_BEGIN, seq);
	}
	daxlab_mark(DAXLAB_MARK_CRASH_END, seq);
	tap_ok(aborted == 0, "every transaction committed");
	pmemobj_close(pop);
	pop = pmemobj_open(record_pool(), RECORD_LAYOUT);
	tap_ok(pop && record_version(record_of(pop)) == (int)RECORD_VERSIONS - 1,
	       "the reopened pool holds the last version");
	if (pop)
		pmemobj_close(pop);
	tap_finish();
}
