/*
 * daxlab-collect - the host's one reader of what a guest said, and its one
 * judge.
 *
 *   daxlab-collect guest RUN_DIR     after the guest: split its files
 *                                    channel, check its TAP stream, write
 *                                    what the crash check and the plot
 *                                    need; print the crash-check plan
 *   daxlab-collect judge RUN_DIR --golden DIR
 *                                    every verdict: summary.json, and the
 *                                    run's summary on stdout; exit 0 only
 *                                    when nothing failed
 *   daxlab-collect progress RUN_DIR  while the guest runs: the results
 *                                    that came in since the last call
 *
 * RUN_DIR holds run.json (what run.sh planned and saw, protocol/README.md)
 * and the guest's raw channels. Nothing the guest sent is trusted: it is
 * parsed against protocol/daxlab-protocol.h, bounded, and what cannot be
 * parsed fails the run. Exit 2: bad usage, or run.json unreadable.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"
#include "judge.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: daxlab-collect guest RUN_DIR\n"
	           "       daxlab-collect judge RUN_DIR --golden DIR\n"
	           "       daxlab-collect progress RUN_DIR\n"
	           "\n"
	           "Reads what a guest sent (tap.txt, guest-files.raw) against the protocol\n"
	           "(protocol/README.md) and the plan (run.json); judge writes summary.json.\n");
}

static __attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...)
{
	va_list ap;

	fputs("daxlab-collect: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* ---------------------------------------------------------------- guest */

/* crash/NAME-FS.spec for daxlab-crash (device offsets made NV-DIMM offsets). */
static const char *crash_spec(int dirfd, const struct plan *p, const struct tap_entry *e,
                              uint64_t data_off, json_t *checkpoints, char *err, size_t errlen)
{
	struct strbuf spec = {0};
	char name[128];
	unsigned lines = 0, recover = 0;
	const char *mode = "none";

	for (size_t i = 0; i < e->nlines; i++) {
		const struct kept_line *l = &e->lines[i];
		uint64_t cp, dev;

		if (!strcmp(l->kind->tag, DAXLAB_TAG_CRASH_EXPECT)) {
			parse_u64(kept_get(l, "devoffset"), &dev);
			if (dev >= p->pmem_bytes - data_off || lines++ > 65536) {
				snprintf(err, errlen,
				         "a crash expectation outside the NV-DIMM, or too many");
				sb_free(&spec);
				return NULL;
			}
			sb_addf(
			    &spec,
			    "checkpoint=%s offset=%llu old=%s new=%s durable=%s samples=%s seen=%s "
			    "name=%s\n",
			    kept_get(l, "checkpoint"), (unsigned long long)(dev + data_off),
			    kept_get(l, "old"), kept_get(l, "new"), kept_get(l, "durable"),
			    kept_get(l, "samples"), kept_get(l, "seen"), kept_get(l, "name"));
		} else if (!strcmp(l->kind->tag, DAXLAB_TAG_RECOVER_EXPECT)) {
			parse_u64(kept_get(l, "checkpoint"), &cp);
			if (recover++ >= 64) {
				snprintf(err, errlen, "more than 64 recovery checkpoints");
				sb_free(&spec);
				return NULL;
			}
			sb_addf(&spec, "%s %s\n", kept_get(l, "checkpoint"),
			        kept_get(l, "versions"));
			json_array_append_new(checkpoints, json_integer((json_int_t)cp));
		}
	}
	if (recover)
		mode = "recover";
	else if (lines)
		mode = "lines";
	snprintf(name, sizeof(name), "crash/%s-%s.spec", p->scen[e->scen].name, p->fs[e->fs]);
	if (spec.len && (mkdirat(dirfd, "crash", 0700) != 0 && errno != EEXIST))
		mode = "none";
	if (spec.len && write_file(dirfd, name, spec.s, spec.len, true) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", name, strerror(errno));
		sb_free(&spec);
		return NULL;
	}
	sb_free(&spec);
	return mode;
}

static int cmd_guest(const char *dir)
{
	struct plan p;
	int dirfd = open_run(dir, &p);
	size_t n, tn;
	char err[320] = "", tap_err[160];
	char *raw = read_capped(dirfd, "guest-files.raw", DAXLAB_CAP_FILES, &n);
	char *tap = read_tap(dirfd, &tn, tap_err, sizeof(tap_err));
	bool truncated = false;
	long files = 0;
	json_t *out = json_object(), *crash = json_array();
	struct tap_stream t;
	uint64_t data_off;

	if (!raw && errno == EFBIG) {
		snprintf(err, sizeof(err), "the files channel is larger than its cap of %lu MiB",
		         DAXLAB_CAP_FILES >> 20);
	} else if (raw) {
		files = files_split(raw, n, dirfd, &p, &truncated, err, sizeof(err));
		if (files >= 0)
			unlinkat(dirfd, "guest-files.raw", 0); /* all of it is in files now */
	}
	free(raw);
	data_off = data_offset(dirfd, &p);
	tap_parse(tap, tn, &p, &t);
	json_object_set_new(out, "files", json_integer(files < 0 ? 0 : files));
	json_object_set_new(out, "files_error", json_string(err));
	json_object_set_new(out, "files_truncated", json_boolean(truncated));
	json_object_set_new(out, "data_offset", json_integer((json_int_t)data_off));
	/* the crash check's plan: the crash-check scenario where it passed */
	for (size_t i = 0; i < t.n && p.crash_check[0] && !t.error[0]; i++) {
		const struct tap_entry *e = &t.e[i];
		json_t *c, *cps;
		const char *mode;
		char why[160];

		if (strcmp(p.scen[e->scen].name, p.crash_check) || !e->result ||
		    strcmp(e->status, "pass"))
			continue;
		cps = json_array();
		mode = crash_spec(dirfd, &p, e, data_off, cps, why, sizeof(why));
		c = json_pack("{s:s, s:s, s:s, s:s, s:o}", "scenario", p.scen[e->scen].name, "fs",
		              p.fs[e->fs], "bin", p.scen[e->scen].bin, "mode",
		              mode ? mode : "error", "checkpoints", cps);
		if (!mode)
			json_object_set_new(c, "error", json_string(why));
		json_array_append_new(crash, c);
		printf("%s %s %s %s\n", mode ? mode : "error", p.scen[e->scen].name, p.fs[e->fs],
		       p.scen[e->scen].bin);
	}
	json_object_set_new(out, "crash", crash);
	perf_files(dirfd, &p, &t);
	char *s = json_dumps(out, JSON_INDENT(2));

	if (!s || write_file(dirfd, "collect.json", s, strlen(s), true) != 0)
		die("cannot write %s/collect.json: %s", dir, strerror(errno));
	free(s);
	json_decref(out);
	tap_free(&t);
	free(tap);
	close(dirfd);
	return 0;
}

/* ------------------------------------------------------------- progress */

static int cmd_progress(const char *dir)
{
	struct plan p;
	int dirfd = open_run(dir, &p);
	size_t n, shown = 0;
	char err[160], *tap = read_tap(dirfd, &n, err, sizeof(err));
	char *prev = read_capped(dirfd, ".progress", 64, NULL);
	struct tap_stream t;
	char count[32];

	if (prev)
		shown = strtoul(prev, NULL, 10);
	free(prev);
	tap_parse(tap, n, &p, &t);
	for (size_t i = 0; i < t.n; i++) {
		const struct tap_entry *e = &t.e[i];

		if (!e->result || i < shown)
			continue;
		printf("    %s %s: %s (%.2f s)%s%s\n", p.fs[e->fs], p.scen[e->scen].name, e->status,
		       e->duration, e->reason[0] ? " " : "", e->reason);
		shown = i + 1;
	}
	snprintf(count, sizeof(count), "%zu\n", shown);
	write_file(dirfd, ".progress", count, strlen(count), true);
	tap_free(&t);
	free(tap);
	close(dirfd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "guest"))
		return cmd_guest(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "progress"))
		return cmd_progress(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "judge") && !strcmp(argv[3], "--golden"))
		return judge(argv[2], argv[4]);
	usage(stderr);
	return 2;
}
