/*
 * pmemobj-record.h - one versioned record in a libpmemobj pool, for the
 * PMDK crash scenarios: the pool ("pool" in the current directory), the
 * record (a version and 1 KiB of that version's pattern), and the
 * recovery side's answer (which version the pool holds, if any).
 */
#ifndef DAXLAB_PMEMOBJ_RECORD_H
#define DAXLAB_PMEMOBJ_RECORD_H

#include <libpmemobj.h>
#include <stdint.h>

#define RECORD_POOL "pool"
#define RECORD_LAYOUT "daxlab-record"
#define RECORD_VERSIONS 4u /* v0 .. v3 */
#define RECORD_PAYLOAD 1024u

struct record {
	uint64_t version;
	unsigned char payload[RECORD_PAYLOAD];
};

/* The pool: RECORD_POOL, or the device dax itself under --mode devdax. */
const char *record_pool(void);
/* Create the pool (replacing an old one) with a zeroed record as its
 * root, and make the file and its directory entry durable; bails out. */
PMEMobjpool *record_create(void);
/* The record: the pool's root object. */
struct record *record_of(PMEMobjpool *pop);
/* Write version @v into @rec with plain stores (the caller persists). */
void record_fill(struct record *rec, unsigned v);
/* Write version @v into the pool's record in one transaction (TX_BEGIN,
 * the record added to the undo log, the stores, TX_END): 0 once it has
 * committed, else the error that aborted it. */
int record_write_tx(PMEMobjpool *pop, unsigned v);
/* The version @rec holds whole, or -1 (torn, or no version). */
int record_version(const struct record *rec);
/*
 * After a crash ("SCENARIO --recover"): open the pool (libpmemobj rolls
 * back a transaction cut short) and say which version the record is
 * ("missing": no pool, "unopenable": pmemobj_open refused it, "torn"),
 * as a TAP plan of one passing point; exits.
 */
int record_recover(void);

#endif
