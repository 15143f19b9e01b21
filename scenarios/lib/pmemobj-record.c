/* pmemobj-record.c - one versioned record in a libpmemobj pool (see pmemobj-record.h). */
#include "pmemobj-record.h"

#include <errno.h>
#include <fcntl.h>
#include <libpmem.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daxenv.h"
#include "daxlab-protocol.h"
#include "tap.h"
#include "versions.h"

const char *record_pool(void)
{
	return daxenv_devdax() ? daxenv_devdax() : RECORD_POOL;
}

PMEMobjpool *record_create(void)
{
	PMEMobjpool *pop;
	int fd;

	if (daxenv_devdax()) {
		size_t len;
		void *head = daxenv_map(NULL, 1, &fd, &len);

		/* the whole device is the pool (size 0); pmemobj_create refuses a
		 * device with anything in its header (an earlier scenario's bytes) */
		if (head == MAP_FAILED)
			tap_bail("cannot map %s: %s", daxenv_devdax(), strerror(errno));
		pmem_memset_persist(head, 0, len);
		munmap(head, len);
		close(fd);
		pop = pmemobj_create(record_pool(), RECORD_LAYOUT, 0, 0);
	} else {
		unlink(RECORD_POOL);
		pop = pmemobj_create(RECORD_POOL, RECORD_LAYOUT, PMEMOBJ_MIN_POOL, 0644);
	}
	if (!pop)
		tap_bail("pmemobj_create %s: %s", record_pool(), pmemobj_errormsg());
	if (OID_IS_NULL(pmemobj_root(pop, sizeof(struct record))))
		tap_bail("pmemobj_root: %s", pmemobj_errormsg());
	if (daxenv_devdax())
		return pop; /* a device: no file or directory entry to make durable */
	fd = open(RECORD_POOL, O_RDONLY);
	if (fd < 0 || fsync(fd) != 0)
		tap_bail("fsync of the pool: %s", strerror(errno));
	close(fd);
	versions_fsync_dir();
	return pop;
}

struct record *record_of(PMEMobjpool *pop)
{
	return pmemobj_direct(pmemobj_root(pop, sizeof(struct record)));
}

void record_fill(struct record *rec, unsigned v)
{
	rec->version = v;
	daxenv_pattern(rec->payload, RECORD_PAYLOAD, 100 + v, 0);
}

int record_write_tx(PMEMobjpool *pop, unsigned v)
{
	struct record *rec = record_of(pop);

	TX_BEGIN(pop)
	{
		pmemobj_tx_add_range_direct(rec, sizeof(*rec));
		record_fill(rec, v);
	}
	TX_END
	return pmemobj_tx_errno();
}

int record_version(const struct record *rec)
{
	if (rec->version >= RECORD_VERSIONS ||
	    daxenv_pattern_check(rec->payload, RECORD_PAYLOAD, 100 + (unsigned)rec->version, 0) >=
	        0)
		return -1;
	return (int)rec->version;
}

int record_recover(void)
{
	PMEMobjpool *pop;
	int v;

	tap_plan(1);
	if (access(RECORD_POOL, F_OK) != 0) {
		tap_diag(DAXLAB_TAG_RECOVERED ": version=missing");
		tap_ok(true, "looked for %s: %s", RECORD_POOL, strerror(errno));
		tap_finish();
	}
	pop = pmemobj_open(RECORD_POOL, RECORD_LAYOUT);
	if (!pop) {
		tap_diag(DAXLAB_TAG_RECOVERED ": version=unopenable");
		tap_ok(true, "pmemobj_open: %s", pmemobj_errormsg());
		tap_finish();
	}
	if (pmemobj_root_size(pop) < sizeof(struct record)) {
		tap_diag(DAXLAB_TAG_RECOVERED ": version=missing");
		tap_ok(true, "the pool has no record (root of %zu bytes)", pmemobj_root_size(pop));
		pmemobj_close(pop);
		tap_finish();
	}
	v = record_version(record_of(pop));
	if (v < 0) {
		tap_diag(DAXLAB_TAG_RECOVERED ": version=torn");
		tap_ok(true, "the record is no whole version (version field %llu)",
		       (unsigned long long)record_of(pop)->version);
	} else {
		tap_diag(DAXLAB_TAG_RECOVERED ": version=%d", v);
		tap_ok(true, "the record is version %d", v);
	}
	pmemobj_close(pop);
	tap_finish();
}
