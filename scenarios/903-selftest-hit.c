/*
 * selftest-hit - report one race hit on purpose (harness self-test)
 *
 * Not a DAX scenario: a campaign of a few rounds whose round 1 claims a
 * broken promise, with a witness, exactly as a racing scenario does when
 * it catches a bug. The harness must report the scenario failed with one
 * hit, keep the witness, and build the hit's time line (with --trace, the
 * plugin's hit marker must be on it). Its TAP points pass: only the hit
 * makes it fail.
 *
 * daxlab-groups: selftest
 */
#include <stdint.h>
#include <unistd.h>

#include "lib/daxenv.h"
#include "lib/race.h"
#include "lib/tap.h"

#define ROUNDS 3

int main(void)
{
	uint64_t expected = 0, seen = 0x5e1f7e57ull;
	unsigned char page[4096] = {0};
	int fd;

	tap_plan(1);
	fd = daxenv_open_new("file");
	race_begin("selftest-hit", ROUNDS, race_seed());
	for (unsigned i = 0; i < ROUNDS; i++) {
		race_round(i);
		/* Some fs_dax activity around the hit, for the time line. */
		daxenv_pwrite_all(fd, page, sizeof(page), (long long)i * 4096);
		if (i == 1) {
			race_hit("self-test: round 1 reports a made-up broken promise");
			race_witness_bytes("made-up", 4096, &expected, &seen, sizeof(seen));
		}
	}
	race_end();
	close(fd);
	tap_ok(race_hits() == 1, "reported exactly one hit");
	tap_finish();
}
