/*
 * libFuzzer target: the host's parser of the guest's TAP channel
 * (host/tap-stream.c) and of a recovery guest's stream, against a plan of
 * two scenarios (one of them a payload, whose subtest is free text) on two
 * filesystems. Whatever the bytes, it must neither crash nor leak.
 */
#include <stdint.h>
#include <string.h>

#include "collect.h"

static const char plan_json[] =
    "{\"scenarios\": [{\"name\": \"fault-vs-truncate\", \"bin\": \"010-fault-vs-truncate\"},"
    " {\"name\": \"payload\", \"bin\": \"000-payload\"}], \"fs\": [\"ext4\", \"xfs\"],"
    " \"plugin\": \"persist\", \"pmem_base\": \"0x100000000\", \"pmem_bytes\": 536870912,"
    " \"cpus\": 2}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct plan p;
	static bool ready;
	struct tap_stream t;
	struct kept_line rec[8];
	char err[200];
	int n;

	if (!ready) {
		if (plan_parse(plan_json, sizeof(plan_json) - 1, &p, err, sizeof(err)) != 0)
			__builtin_trap();
		ready = true;
	}
	tap_parse((const char *)data, size, &p, &t);
	for (size_t i = 0; i < t.n; i++)
		if (t.e[i].result && !daxlab_value_ok('S', t.e[i].status))
			__builtin_trap(); /* a status the grammar does not allow got through */
	tap_free(&t);
	n = recovery_parse((const char *)data, size, rec, 8, err, sizeof(err));
	if (n > 0)
		recovery_free(rec, (size_t)n);
	return 0;
}
