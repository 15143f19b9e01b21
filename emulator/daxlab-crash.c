/*
 * daxlab-crash - crash states from the daxlab-pmem persistence log.
 *
 * The log (pmem-log.bin, see persist.h) holds, per checkpoint, the lines
 * that became durable since the previous one and the lines pending at that
 * moment. A crash state is (checkpoint, sample): sample 0 is the durable
 * content only; sample k >= 1 adds a subset of the pending lines chosen by
 * a PRNG seeded with (seed, checkpoint, k): what real hardware may have
 * written back before the power failed. The base is the NV-DIMM at boot
 * (zeros unless --base says otherwise). Nothing here writes to the live
 * NV-DIMM image: images are new sparse files.
 *
 *   daxlab-crash list LOG
 *   daxlab-crash check LOG SPEC [--samples K] [--seed S] [--base IMG]
 *   daxlab-crash image LOG --checkpoint ID [--sample K] [--seed S]
 *                [--base IMG] [--offset O] [--length L] -o OUT
 *
 * SPEC has one expectation per line (fields in any order):
 *   checkpoint=ID offset=O old=BYTE new=BYTE durable=old|new|any
 *   samples=old|new|any seen=old,new|- name=NAME
 * offset is a 64-byte line of the NV-DIMM; old/new are the byte the
 * scenario filled it with before and after; durable is what the
 * durable-only state must hold, samples what every sampled state may hold,
 * seen the outcomes that must appear across the sampled states.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "persist-log.h"
#include "sparse-copy.h"

static const char *prog = "daxlab-crash";
/* An image being written: removed if the tool dies before it is whole. */
static const char *partial_out;

/* Crash states per checkpoint, at most: a log cannot ask for more. */
#define MAX_SAMPLES 100000u
/* Lines of a SPEC. */
#define MAX_EXPECTATIONS 1000000u

static void usage(FILE *f)
{
	fprintf(f, "usage: daxlab-crash list LOG\n"
	           "       daxlab-crash check LOG SPEC [--samples K] [--seed S] [--base IMG]\n"
	           "       daxlab-crash image LOG --checkpoint ID [--sample K] [--seed S]\n"
	           "                    [--base IMG] [--offset O] [--length L] -o OUT\n"
	           "\n"
	           "Crash states from a daxlab-pmem persistence log (pmem-log.bin): sample 0\n"
	           "is the durable content at a checkpoint, sample k adds a seeded subset of\n"
	           "the lines pending there. Defaults: --samples 8, --seed 1.\n");
}

static __attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (partial_out)
		unlink(partial_out);
	exit(2);
}

/* The log's reader (persist-log.c) with this tool's way out: one line, exit 2. */
static void log_open(struct plog *lg, const char *path)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		die("cannot open %s: %s", path, strerror(errno));
	if (plog_open(lg, f) != 0)
		die("%s: %s", path, lg->err);
}

static int log_next(struct plog *lg, struct plog_line *ln, uint64_t *id, uint32_t *npending)
{
	int t = plog_next(lg, ln, id, npending);

	if (t < 0)
		die("the log: %s", lg->err);
	return t;
}

static struct plog_line *read_pending(struct plog *lg, uint32_t n)
{
	struct plog_line *v = plog_pending(lg, n);

	if (!v)
		die("the log: %s", lg->err);
	return v;
}

/* splitmix64: the choice of pending lines for (seed, checkpoint, sample). */
static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void choose(bool *pick, uint32_t n, uint64_t seed, uint64_t cp, unsigned sample)
{
	uint64_t s = seed * 0x100000001b3ull ^ cp * 0xc2b2ae3d27d4eb4full ^ sample;

	for (uint32_t i = 0; i < n; i++)
		pick[i] = sample > 0 && (mix(&s) & 1);
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		die("%s: not a number: %s", what, s);
	return v;
}

static unsigned parse_bounded(const char *s, const char *what, unsigned max)
{
	uint64_t v = parse_u64(s, what);

	if (v > max)
		die("%s: at most %u, not %s", what, max, s);
	return (unsigned)v;
}

/* ---------------------------------------------------------------- list */
static int cmd_list(int argc, char **argv)
{
	struct plog lg;
	struct plog_line ln;
	uint64_t id, changed = 0;
	uint32_t np;
	int t;

	if (argc != 1)
		die("list needs exactly one LOG (try --help)");
	log_open(&lg, argv[0]);
	printf("# NV-DIMM size %" PRIu64 "\n# checkpoint changed-lines pending-lines\n", lg.size);
	while ((t = log_next(&lg, &ln, &id, &np))) {
		if (t == PERSIST_REC_LINE) {
			changed++;
		} else {
			free(read_pending(&lg, np));
			printf("%" PRIu64 " %" PRIu64 " %u\n", id, changed, np);
			changed = 0;
		}
	}
	fclose(lg.f);
	return 0;
}

/* --------------------------------------------------------------- check */
enum outcome { O_OLD = 1, O_NEW = 2, O_OTHER = 4 };

/* One expectation of the SPEC. */
struct expect {
	uint64_t cp, off;
	uint8_t old_b, new_b;
	unsigned durable, samples, seen; /* sets of outcomes */
	char name[32];
	unsigned got_seen;
	bool checked; /* its checkpoint was in the log */
	uint8_t durable_line[PERSIST_LINE];
};

static unsigned parse_set(const char *v, const char *line)
{
	if (!strcmp(v, "old"))
		return O_OLD;
	if (!strcmp(v, "new"))
		return O_NEW;
	if (!strcmp(v, "any"))
		return O_OLD | O_NEW;
	if (!strcmp(v, "old,new") || !strcmp(v, "new,old"))
		return O_OLD | O_NEW;
	if (!strcmp(v, "-"))
		return 0;
	die("bad outcome '%s' in spec line: %s", v, line);
}

static size_t read_spec(const char *path, struct expect **out)
{
	FILE *f = fopen(path, "r");
	char line[512];
	size_t n = 0, cap = 16;
	struct expect *v = calloc(cap, sizeof(*v));

	if (!f)
		die("cannot open %s: %s", path, strerror(errno));
	if (!v)
		die("out of memory");
	while (fgets(line, sizeof(line), f)) {
		struct expect e = {.durable = O_OLD | O_NEW, .samples = O_OLD | O_NEW};
		char *save = NULL, *tok;
		bool have_cp = false, have_off = false;

		if (!strchr(line, '\n') && !feof(f))
			die("a spec line longer than %zu bytes in %s", sizeof(line) - 2, path);
		if (n >= MAX_EXPECTATIONS)
			die("more than %u expectations in %s", MAX_EXPECTATIONS, path);

		line[strcspn(line, "\n")] = 0;
		if (!line[0] || line[0] == '#')
			continue;
		char copy[512];
		snprintf(copy, sizeof(copy), "%s", line);
		for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			char *eq = strchr(tok, '=');

			if (!eq)
				die("bad field '%s' in spec line: %s", tok, copy);
			*eq++ = 0;
			if (!strcmp(tok, "checkpoint"))
				e.cp = parse_u64(eq, "checkpoint"), have_cp = true;
			else if (!strcmp(tok, "offset"))
				e.off = parse_u64(eq, "offset"), have_off = true;
			else if (!strcmp(tok, "old"))
				e.old_b = (uint8_t)parse_u64(eq, "old");
			else if (!strcmp(tok, "new"))
				e.new_b = (uint8_t)parse_u64(eq, "new");
			else if (!strcmp(tok, "durable"))
				e.durable = parse_set(eq, copy);
			else if (!strcmp(tok, "samples"))
				e.samples = parse_set(eq, copy);
			else if (!strcmp(tok, "seen"))
				e.seen = parse_set(eq, copy);
			else if (!strcmp(tok, "name"))
				snprintf(e.name, sizeof(e.name), "%s", eq);
			else
				die("unknown field '%s' in spec line: %s", tok, copy);
		}
		if (!have_cp || !have_off || e.off % PERSIST_LINE)
			die("spec line needs checkpoint= and a 64-byte aligned offset=: %s", copy);
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				die("out of memory");
		}
		v[n++] = e;
	}
	fclose(f);
	*out = v;
	return n;
}

static unsigned classify(const uint8_t *d, const struct expect *e)
{
	bool all_old = true, all_new = true;

	for (unsigned i = 0; i < PERSIST_LINE; i++) {
		all_old &= d[i] == e->old_b;
		all_new &= d[i] == e->new_b;
	}
	return all_new ? O_NEW : all_old ? O_OLD : O_OTHER;
}

static const char *outcome_name(unsigned o)
{
	return o == O_OLD ? "old" : o == O_NEW ? "new" : "neither old nor new";
}

static void base_line(int base_fd, uint64_t off, uint8_t *out)
{
	memset(out, 0, PERSIST_LINE);
	if (base_fd >= 0 && pread(base_fd, out, PERSIST_LINE, (off_t)off) < 0)
		die("reading the base image: %s", strerror(errno));
}

static int cmd_check(int argc, char **argv)
{
	unsigned samples = 8;
	uint64_t seed = 1, id, states = 0, failures = 0, checkpoints = 0;
	const char *base = NULL;
	struct expect *ex;
	struct plog lg;
	struct plog_line ln;
	struct timespec t0, t1;
	uint32_t np;
	size_t nex;
	int t, base_fd = -1;

	if (argc < 2)
		die("check needs LOG and SPEC (try --help)");
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--samples") && i + 1 < argc)
			samples = parse_bounded(argv[++i], "--samples", MAX_SAMPLES);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = parse_u64(argv[++i], "--seed");
		else if (!strcmp(argv[i], "--base") && i + 1 < argc)
			base = argv[++i];
		else
			die("unknown check option: %s (try --help)", argv[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	log_open(&lg, argv[0]);
	nex = read_spec(argv[1], &ex);
	if (base && (base_fd = open(base, O_RDONLY)) < 0)
		die("cannot open %s: %s", base, strerror(errno));
	for (size_t i = 0; i < nex; i++)
		base_line(base_fd, ex[i].off, ex[i].durable_line);

	while ((t = log_next(&lg, &ln, &id, &np))) {
		struct plog_line *pend;
		bool *pick;

		if (t == PERSIST_REC_LINE) {
			for (size_t i = 0; i < nex; i++)
				if (ex[i].off == ln.off)
					memcpy(ex[i].durable_line, ln.data, PERSIST_LINE);
			continue;
		}
		pend = read_pending(&lg, np);
		pick = calloc(np ? np : 1, sizeof(*pick));
		checkpoints++;
		bool wanted = false;

		for (size_t i = 0; i < nex; i++)
			wanted |= ex[i].cp == id;
		for (unsigned k = 0; wanted && k <= samples; k++) {
			choose(pick, np, seed, id, k);
			states++;
			for (size_t i = 0; i < nex; i++) {
				struct expect *e = &ex[i];
				const uint8_t *d = e->durable_line;
				unsigned o, allowed;

				if (e->cp != id)
					continue;
				e->checked = true;
				for (uint32_t j = 0; j < np; j++)
					if (pick[j] && pend[j].off == e->off)
						d = pend[j].data;
				o = classify(d, e);
				if (k > 0)
					e->got_seen |= o;
				allowed = k == 0 ? e->durable : e->samples;
				if (!(o & allowed)) {
					unsigned added = 0;

					for (uint32_t j = 0; j < np; j++)
						added += pick[j];
					printf("FAIL checkpoint=%" PRIu64
					       " sample=%u line=%s offset=0x%" PRIx64
					       ": %s, expected %s%s (state: %u of %u pending lines "
					       "written back",
					       id, k, e->name, e->off, outcome_name(o),
					       allowed == (O_OLD | O_NEW) ? "old or new"
					                                  : outcome_name(allowed),
					       k == 0 ? " in the durable-only state" : "", added,
					       np);
					/* The lines that made this state differ from sample 0. */
					for (uint32_t j = 0, shown = 0; j < np && shown < 8; j++)
						if (pick[j])
							printf("%s0x%" PRIx64, shown++ ? " " : ": ",
							       pend[j].off);
					printf(")\n");
					failures++;
				}
			}
		}
		free(pick);
		free(pend);
	}
	for (size_t i = 0; i < nex; i++) {
		struct expect *e = &ex[i];

		if (!e->checked) {
			/* declared, never reached: nothing was checked for it */
			printf("FAIL checkpoint=%" PRIu64 " line=%s offset=0x%" PRIx64
			       ": the log has no such checkpoint\n",
			       e->cp, e->name, e->off);
			failures++;
			continue;
		}
		if ((e->seen & e->got_seen) != e->seen) {
			printf("FAIL checkpoint=%" PRIu64 " line=%s offset=0x%" PRIx64
			       ": across %u samples saw%s%s, expected to see both old and new\n",
			       e->cp, e->name, e->off, samples, e->got_seen & O_OLD ? " old" : "",
			       e->got_seen & O_NEW ? " new" : "");
			failures++;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("checkpoints=%" PRIu64 " states_generated=%" PRIu64 " states_checked=%" PRIu64
	       " expectations=%zu failures=%" PRIu64 " seconds=%.3f states_per_second=%.0f\n",
	       checkpoints, states, states, nex, failures, secs,
	       secs > 0 ? (double)states / secs : 0);
	free(ex);
	fclose(lg.f);
	if (base_fd >= 0)
		close(base_fd);
	return failures ? 1 : 0;
}

/* --------------------------------------------------------------- image */
static void put_line(int fd, uint64_t off, const uint8_t *data, uint64_t lo, uint64_t len)
{
	if (off < lo || off + PERSIST_LINE > lo + len)
		return;
	if (pwrite(fd, data, PERSIST_LINE, (off_t)(off - lo)) != PERSIST_LINE)
		die("writing the image: %s", strerror(errno));
}

static int cmd_image(int argc, char **argv)
{
	uint64_t cp = 0, seed = 1, lo = 0, len = 0, id;
	unsigned sample = 0;
	bool have_cp = false, found = false;
	const char *out = NULL, *base = NULL;
	struct plog lg;
	struct plog_line ln;
	uint32_t np;
	int t, fd;

	if (argc < 1)
		die("image needs a LOG (try --help)");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc)
			cp = parse_u64(argv[++i], "--checkpoint"), have_cp = true;
		else if (!strcmp(argv[i], "--sample") && i + 1 < argc)
			sample = parse_bounded(argv[++i], "--sample", MAX_SAMPLES);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = parse_u64(argv[++i], "--seed");
		else if (!strcmp(argv[i], "--base") && i + 1 < argc)
			base = argv[++i];
		else if (!strcmp(argv[i], "--offset") && i + 1 < argc)
			lo = parse_u64(argv[++i], "--offset");
		else if (!strcmp(argv[i], "--length") && i + 1 < argc)
			len = parse_u64(argv[++i], "--length");
		else if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else
			die("unknown image option: %s (try --help)", argv[i]);
	}
	if (!have_cp || !out)
		die("image needs --checkpoint ID and -o OUT");
	log_open(&lg, argv[0]);
	if (lo > lg.size)
		die("--offset is beyond the %" PRIu64 "-byte NV-DIMM", lg.size);
	if (!len)
		len = lg.size - lo;
	if (lo % PERSIST_LINE || len % PERSIST_LINE || len > lg.size - lo)
		die("--offset/--length must be 64-byte aligned and inside the %" PRIu64
		    "-byte NV-DIMM",
		    lg.size);
	fd = open(out, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		die("cannot create %s: %s", out, strerror(errno));
	partial_out = out;
	if (ftruncate(fd, (off_t)len) != 0)
		die("cannot size %s: %s", out, strerror(errno));
	if (base) {
		/* The base region, the image staying sparse. */
		int bfd = open(base, O_RDONLY);

		if (bfd < 0)
			die("cannot open %s: %s", base, strerror(errno));
		if (sparse_copy(bfd, lo, fd, 0, len) != 0)
			die("copying %s into %s: %s", base, out, strerror(errno));
		close(bfd);
	}
	while (!found && (t = log_next(&lg, &ln, &id, &np))) {
		if (t == PERSIST_REC_LINE) {
			put_line(fd, ln.off, ln.data, lo, len);
			continue;
		}
		struct plog_line *pend = read_pending(&lg, np);
		if (id == cp) {
			bool *pick = calloc(np ? np : 1, sizeof(*pick));

			choose(pick, np, seed, id, sample);
			for (uint32_t j = 0; j < np; j++)
				if (pick[j])
					put_line(fd, pend[j].off, pend[j].data, lo, len);
			free(pick);
			found = true;
		}
		free(pend);
	}
	fclose(lg.f);
	if (!found)
		die("no checkpoint %" PRIu64 " in %s", cp, argv[0]);
	if (close(fd) != 0)
		die("writing %s failed", out);
	partial_out = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "list"))
		return cmd_list(argc - 2, argv + 2);
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc - 2, argv + 2);
	if (!strcmp(argv[1], "image"))
		return cmd_image(argc - 2, argv + 2);
	die("unknown command: %s (try --help)", argv[1]);
}
