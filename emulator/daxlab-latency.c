/*
 * daxlab-latency - check a latency model specification, and show what it
 * resolves to, before any guest boots.
 *
 *   daxlab-latency check SPEC   SPEC is dram, optane or custom:key=value,...
 *                               prints the parameters as a JSON object, or
 *                               one line naming the bad parameter (exit 2)
 *   daxlab-latency presets      the presets, one JSON object each
 */
#include <stdio.h>
#include <string.h>

#include "perf-model.h"

static int usage(FILE *f, int rc)
{
	fprintf(f, "usage: daxlab-latency check SPEC | presets | --help\n"
	           "  SPEC: dram, optane, or custom:key=value,... with keys insn read read_seq\n"
	           "  prefetch write flush fence nt (times: ps, ns, us; default ns), read_bw\n"
	           "  write_bw (GB/s, MB/s; default GB/s), unit wcbuf cache (bytes; K, M, G)\n"
	           "  custom starts from dram\n");
	return rc;
}

static void print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
	putchar('\n');
	json_decref(j);
}

int main(int argc, char **argv)
{
	struct perf_params p;
	char err[256];

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return usage(stdout, 0);
	if (argc == 2 && !strcmp(argv[1], "presets")) {
		const char *names[] = {"dram", "optane"};

		for (int i = 0; i < 2; i++) {
			perf_params_preset(names[i], &p);
			print_json(perf_params_json(&p));
		}
		return 0;
	}
	if (argc != 3 || strcmp(argv[1], "check"))
		return usage(stderr, 2);
	if (!perf_params_parse(argv[2], &p, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	print_json(perf_params_json(&p));
	return 0;
}
