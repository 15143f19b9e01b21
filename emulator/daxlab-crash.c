/*
 * daxlab-crash - crash states from the daxlab-pmem persistence log.
 *
 * The log (pmem-log.bin, see persist.h) holds, per checkpoint (a marked
 * one, or a crash point at a fence inside a crash window), the lines that
 * became durable since the previous one and the lines pending at that
 * moment. The crash states of a checkpoint are the subsets of its pending
 * lines a power failure may have written back (crash-states.h): all of
 * them when there are at most --subsets (default 6) pending entries, else
 * state 0 (the durable content only) and --samples seeded samples. The
 * base is the NV-DIMM at boot (zeros unless --base says otherwise).
 * Nothing here writes to the live NV-DIMM image: images are new files.
 *
 *   daxlab-crash list LOG
 *   daxlab-crash check LOG SPEC [--samples K] [--subsets N] [--seed S] [--base IMG]
 *       every state of the SPEC's checkpoints, line by line (no image)
 *   daxlab-crash plan LOG --ids ID,... -o PLAN [--samples K] [--point-samples P]
 *                [--subsets N] [--max-states M] [--seed S] [--base IMG]
 *       the states of the marked checkpoints ID,... and of the crash points
 *       between the first and the last of them, folded by their bytes
 *   daxlab-crash feed LOG --plan PLAN --live IMG --ctl PREFIX --ready FILE
 *                --progress FILE [--base IMG] [--from SEQ] [--state-timeout S]
 *       one recovery guest, every checked state of the plan in turn: IMG is
 *       the guest's NV-DIMM, rewritten in place between states
 *   daxlab-crash image LOG (--checkpoint ID [--sample K] | --plan PLAN --state SEQ)
 *                [--seed S] [--base IMG] [--offset O] [--length L] -o OUT
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
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "crash-plan.h"
#include "crash-states.h"
#include "daxlab-marker.h"
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
	fprintf(
	    f,
	    "usage: daxlab-crash list LOG\n"
	    "       daxlab-crash check LOG SPEC [--samples K] [--subsets N] [--seed S] [--base "
	    "IMG]\n"
	    "       daxlab-crash plan LOG --ids ID,... -o PLAN [--samples K] [--point-samples P]\n"
	    "                    [--subsets N] [--max-states M] [--seed S] [--base IMG]\n"
	    "       daxlab-crash feed LOG --plan PLAN --live IMG --ctl PREFIX --ready FILE\n"
	    "                    --progress FILE [--base IMG] [--from SEQ] [--state-timeout S]\n"
	    "                    [--boot-timeout S]\n"
	    "       daxlab-crash image LOG (--checkpoint ID [--sample K] | --plan PLAN --state "
	    "SEQ)\n"
	    "                    [--subsets N] [--seed S] [--base IMG] [--offset O] [--length L] "
	    "-o OUT\n"
	    "\n"
	    "Crash states from a daxlab-pmem persistence log (pmem-log.bin): at each\n"
	    "checkpoint, every subset of its pending lines when there are at most\n"
	    "--subsets of them, else the durable content and --samples seeded subsets.\n"
	    "Defaults: --subsets 6, --samples 8, --point-samples 1, --max-states 256,\n"
	    "--seed 1, --state-timeout 120, --boot-timeout 600.\n");
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

static int open_base(const char *base)
{
	int fd = base ? open(base, O_RDONLY | O_CLOEXEC) : -1;

	if (base && fd < 0)
		die("cannot open %s: %s", base, strerror(errno));
	return fd;
}

static double since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static int cmd_check(int argc, char **argv)
{
	unsigned samples = 8, subsets = 6;
	uint64_t seed = 1, id, states = 0, failures = 0, checkpoints = 0;
	const char *base = NULL;
	struct expect *ex;
	struct plog lg;
	struct plog_line ln;
	struct timespec t0;
	uint32_t np;
	size_t nex;
	int t, base_fd = -1;

	if (argc < 2)
		die("check needs LOG and SPEC (try --help)");
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--samples") && i + 1 < argc)
			samples = parse_bounded(argv[++i], "--samples", MAX_SAMPLES);
		else if (!strcmp(argv[i], "--subsets") && i + 1 < argc)
			subsets = parse_bounded(argv[++i], "--subsets", CS_MAX_SUBSETS);
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
	base_fd = open_base(base);
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
		uint64_t count = cs_count(np, subsets, samples);

		for (uint64_t k = 0; wanted && k < count; k++) {
			cs_pick(pick, np, subsets, seed, id, k);
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
					printf("FAIL checkpoint=%" PRIu64 " sample=%" PRIu64
					       " line=%s offset=0x%" PRIx64
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
			printf(
			    "FAIL checkpoint=%" PRIu64 " line=%s offset=0x%" PRIx64
			    ": across its crash states saw%s%s, expected to see both old and new\n",
			    e->cp, e->name, e->off, e->got_seen & O_OLD ? " old" : "",
			    e->got_seen & O_NEW ? " new" : "");
			failures++;
		}
	}
	double secs = since(&t0);
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

/* ---------------------------------------------------- state images, mapped */

/*
 * The NV-DIMM's bytes in one state, mapped: the image a recovery guest
 * checks (a file QEMU maps too: a write here is in the guest's NV-DIMM at
 * once), or the durable content a state is made from (a memfd: only what
 * differs from zero takes room).
 */
struct nvimg {
	int fd;
	uint8_t *m;
	uint64_t size;
};

/* A write into a mapping with no room left on the disk. */
static void on_sigbus(int sig)
{
	static const char msg[] =
	    "daxlab-crash: writing a crash state failed (is the disk full?)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to say */
	}
	if (partial_out)
		unlink(partial_out);
	_exit(2);
}

static void nvimg_open(struct nvimg *im, const char *path, uint64_t size, int base_fd)
{
	im->fd = path ? open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)
	              : memfd_create("daxlab-durable", MFD_CLOEXEC);
	if (im->fd < 0)
		die("cannot create %s: %s", path ? path : "the durable state", strerror(errno));
	if (ftruncate(im->fd, (off_t)size) != 0)
		die("cannot size %s: %s", path ? path : "the durable state", strerror(errno));
	if (base_fd >= 0 && sparse_copy(base_fd, 0, im->fd, 0, size) != 0)
		die("copying the base image: %s", strerror(errno));
	im->m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, im->fd, 0);
	if (im->m == MAP_FAILED)
		die("cannot map %s: %s", path ? path : "the durable state", strerror(errno));
	im->size = size;
	signal(SIGBUS, on_sigbus);
}

/* The durable content of a line, for cs_subset_term. */
static const uint8_t *ref_line(void *ctx, uint64_t off)
{
	return ((struct nvimg *)ctx)->m + off;
}

/* -------------------------------------------------------------- the plan */

/* A state of the plan being made, and the order it is checked in. */
struct pstate {
	struct crash_plan_state s;
	unsigned cls;
};

static unsigned state_class(const struct crash_plan_state *s, unsigned subsets)
{
	if (s->kind == 'm')
		return s->k == 0 ? 0 : 1;
	return s->k == 0 ? 2 : cs_exhaustive(s->n, subsets) ? 3 : 4;
}

static int by_class(const void *x, const void *y)
{
	const struct pstate *a = *(struct pstate *const *)x, *b = *(struct pstate *const *)y;

	if (a->cls != b->cls)
		return a->cls < b->cls ? -1 : 1;
	return a->s.seq < b->s.seq ? -1 : a->s.seq > b->s.seq;
}

static size_t parse_ids(const char *list, uint64_t *ids, size_t max)
{
	char *copy = strdup(list), *save = NULL, *tok;
	size_t n = 0;

	if (!copy)
		die("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			die("--ids: more than %zu checkpoints", max);
		ids[n++] = parse_u64(tok, "--ids");
	}
	free(copy);
	return n;
}

static int cmd_plan(int argc, char **argv)
{
	struct crash_plan_params pp = {6, 8, 1, 256, 1};
	const char *base = NULL, *out = NULL;
	uint64_t ids[4096], id, seq = 0, rec = 0, prev = 0;
	size_t nids = 0, nst = 0, cap = 1024, marked = 0, points = 0, nuniq = 0;
	struct pstate *st = malloc(cap * sizeof(*st)), **uniq;
	struct cs_seen seen = {0};
	struct cs_key key;
	struct cs_hash dur = {0, 0};
	struct timespec t0;
	struct nvimg ref;
	struct plog lg;
	struct plog_line ln;
	uint32_t np;
	int t;
	FILE *f;

	if (!st)
		die("out of memory");
	if (argc < 1)
		die("plan needs a LOG (try --help)");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ids") && i + 1 < argc)
			nids = parse_ids(argv[++i], ids, sizeof(ids) / sizeof(ids[0]));
		else if (!strcmp(argv[i], "--subsets") && i + 1 < argc)
			pp.subsets = parse_bounded(argv[++i], "--subsets", CS_MAX_SUBSETS);
		else if (!strcmp(argv[i], "--samples") && i + 1 < argc)
			pp.samples = parse_bounded(argv[++i], "--samples", MAX_SAMPLES);
		else if (!strcmp(argv[i], "--point-samples") && i + 1 < argc)
			pp.point_samples = parse_bounded(argv[++i], "--point-samples", MAX_SAMPLES);
		else if (!strcmp(argv[i], "--max-states") && i + 1 < argc)
			pp.max_states =
			    parse_bounded(argv[++i], "--max-states", CRASH_PLAN_MAX_STATES);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			pp.seed = parse_u64(argv[++i], "--seed");
		else if (!strcmp(argv[i], "--base") && i + 1 < argc)
			base = argv[++i];
		else if (!strcmp(argv[i], "-o") && i + 1 < argc)
			out = argv[++i];
		else
			die("unknown plan option: %s (try --help)", argv[i]);
	}
	if (!nids || !out)
		die("plan needs --ids ID,... and -o PLAN");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* a key no guest can know: its lines cannot be made to collide */
	if (getrandom(&key, sizeof(key), 0) != (ssize_t)sizeof(key))
		die("no random key: %s", strerror(errno));
	log_open(&lg, argv[0]);
	nvimg_open(&ref, NULL, lg.size, open_base(base));
	while ((t = log_next(&lg, &ln, &id, &np))) {
		if (t == PERSIST_REC_LINE) {
			uint8_t *d = ref.m + ln.off;

			if (memcmp(d, ln.data, PERSIST_LINE)) {
				cs_sub(&dur, cs_line(&key, ln.off, d));
				cs_add(&dur, cs_line(&key, ln.off, ln.data));
				memcpy(d, ln.data, PERSIST_LINE);
			}
			continue;
		}
		struct plog_line *pend = read_pending(&lg, np);
		char kind = 0;

		for (size_t i = 0; i < nids && !kind; i++)
			if (ids[i] == id)
				kind = 'm';
		if (kind)
			marked++, prev = id;
		else if (id >= DAXLAB_CRASH_POINT_BASE && marked > 0 && marked < nids)
			kind = 'p', points++;
		if (kind) {
			struct cs_entry *e = calloc(np ? np : 1, sizeof(*e));
			uint32_t *order = calloc(np ? np : 1, sizeof(*order));
			bool *pick = calloc(np ? np : 1, sizeof(*pick));
			uint64_t count =
			    cs_count(np, pp.subsets, kind == 'm' ? pp.samples : pp.point_samples);

			if (!e || !order || !pick)
				die("out of memory");
			for (uint32_t j = 0; j < np; j++)
				e[j] = (struct cs_entry){pend[j].off, pend[j].data};
			cs_order(order, e, np);
			for (uint64_t k = 0; k < count; k++, seq++) {
				struct cs_hash h = dur;
				uint32_t written = 0;
				int64_t rep;

				if (nst == CRASH_PLAN_MAX_STATES)
					die("more than %u crash states: lower --samples or "
					    "--crash-point-samples",
					    CRASH_PLAN_MAX_STATES);
				cs_pick(pick, np, pp.subsets, pp.seed, id, k);
				for (uint32_t j = 0; j < np; j++)
					written += pick[j];
				cs_add(&h,
				       cs_subset_term(&key, e, np, order, pick, ref_line, &ref));
				if ((rep = cs_seen_add(&seen, h, seq)) < 0)
					die("out of memory");
				if (nst == cap && !(st = realloc(st, (cap *= 2) * sizeof(*st))))
					die("out of memory");
				st[nst++] = (struct pstate){
				    {seq, rec, id, k, (uint64_t)rep, prev, np, written, kind, 'f'},
				    0};
			}
			free(e);
			free(order);
			free(pick);
		}
		free(pend);
		rec++;
	}
	fclose(lg.f);
	if (marked < nids)
		die("the log has %zu of the %zu checkpoints asked for", marked, nids);
	/* The unique states, checked in order of worth up to --max-states. */
	uniq = calloc(nst ? nst : 1, sizeof(*uniq));
	if (!uniq)
		die("out of memory");
	for (size_t i = 0; i < nst; i++) {
		st[i].cls = state_class(&st[i].s, pp.subsets);
		if (st[i].s.rep == st[i].s.seq)
			uniq[nuniq++] = &st[i];
	}
	qsort(uniq, nuniq, sizeof(*uniq), by_class);
	for (size_t i = 0; i < nuniq; i++)
		uniq[i]->s.check = i < pp.max_states ? 'c' : 'd';
	f = fopen(out, "w");
	if (!f)
		die("cannot create %s: %s", out, strerror(errno));
	partial_out = out;
	crash_plan_write_header(f, &pp);
	for (size_t i = 0; i < nst; i++)
		crash_plan_write_state(f, &st[i].s);
	size_t planned = nuniq < pp.max_states ? nuniq : pp.max_states;
	char totals[256];

	snprintf(totals, sizeof(totals),
	         "marked=%zu points=%zu generated=%zu unique=%zu planned=%zu dropped=%zu "
	         "seconds=%.3f",
	         marked, points, nst, nuniq, planned, nuniq - planned, since(&t0));
	fprintf(f, "# %s\n", totals);
	if (fclose(f) != 0)
		die("writing %s failed", out);
	partial_out = NULL;
	printf("%s\n", totals);
	free(uniq);
	free(st);
	cs_seen_free(&seen);
	return 0;
}

/* A plan as cmd_plan wrote it (the host's own file; still bounded). */
static size_t read_plan(const char *path, struct crash_plan_params *pp,
                        struct crash_plan_state **out)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t n = 0, cap = 1024;
	struct crash_plan_state *v = malloc(cap * sizeof(*v));

	if (!f)
		die("cannot open %s: %s", path, strerror(errno));
	if (!v)
		die("out of memory");
	if (!fgets(line, sizeof(line), f) || !crash_plan_header(line, pp))
		die("%s: not a daxlab-crash plan", path);
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		if (n == cap && !(v = realloc(v, (cap *= 2) * sizeof(*v))))
			die("out of memory");
		if (!crash_plan_state(line, n, &v[n]))
			die("%s: bad line %zu", path, n + 2);
		n++;
	}
	fclose(f);
	*out = v;
	return n;
}

/* --------------------------------------------------------------- feed */

/* The guest's end of the control channel: what it said, a line at a time. */
struct ctl {
	int in, out; /* we write PREFIX.in, read PREFIX.out (QEMU's pipe chardev) */
	char buf[64];
	size_t len;
};

enum ctl_got { CTL_LINE, CTL_EOF, CTL_TIMEOUT, CTL_PROTOCOL };

static const char *const ctl_ended[] = {"line", "eof", "timeout", "protocol"};

/* The next line from the guest (without its newline) into @line. */
static enum ctl_got ctl_read(struct ctl *c, char *line, size_t max, double timeout)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);

		if (nl) {
			size_t n = (size_t)(nl - c->buf);

			if (n >= max)
				return CTL_PROTOCOL;
			memcpy(line, c->buf, n);
			line[n] = 0;
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return CTL_LINE;
		}
		if (c->len == sizeof(c->buf))
			return CTL_PROTOCOL; /* a line longer than any the guest may say */
		double left = timeout - since(&t0);
		struct pollfd p = {c->out, POLLIN, 0};

		if (left <= 0)
			return CTL_TIMEOUT;
		int r = poll(&p, 1, (int)(left * 1000) + 1);

		if (r < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if (r <= 0)
			continue;
		ssize_t got = read(c->out, c->buf + c->len, sizeof(c->buf) - c->len);

		if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
			return CTL_EOF;
		if (got > 0)
			c->len += (size_t)got;
	}
}

static bool ctl_send(struct ctl *c, const char *fmt, uint64_t v)
{
	char line[64];
	int n = snprintf(line, sizeof(line), fmt, v);

	return write(c->in, line, (size_t)n) == n;
}

/*
 * The guest's answer to "state SEQ": "done SEQ". QEMU's UART now and then
 * loses a burst of the bytes it receives; the guest then says "again" and
 * gets the command once more (at most CTL_RETRIES times), and answers a
 * command that came twice (late, not lost) with the previous "done" once
 * more, which is skipped here. Anything else is a protocol error.
 */
#define CTL_RETRIES 8

static enum ctl_got ctl_answer(struct ctl *c, char *line, size_t max, const char *want,
                               uint64_t seq, int64_t prev, double timeout, uint64_t *resent)
{
	char stale[32];
	unsigned retries = 0;

	snprintf(stale, sizeof(stale), "done %" PRId64, prev);
	for (;;) {
		enum ctl_got got = ctl_read(c, line, max, timeout);

		if (got != CTL_LINE || !strcmp(line, want))
			return got;
		if (prev >= 0 && !strcmp(line, stale))
			continue;
		if (strcmp(line, "again") || ++retries > CTL_RETRIES ||
		    !ctl_send(c, "state %" PRIu64 "\n", seq))
			return CTL_PROTOCOL;
		(*resent)++;
	}
}

/* What a feeder did, for the host's script and the judge. */
struct progress {
	const char *path;
	uint64_t from, done;
	int64_t last_done, in_flight;
	const char *ended;
	double prep, check, boot;
	uint64_t restored_pages, resent;
};

static void progress_write(const struct progress *pr)
{
	char tmp[4096];
	json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:s, s:f, s:f, s:f, s:I, s:I}", "from",
	                      (json_int_t)pr->from, "done", (json_int_t)pr->done, "last_done",
	                      (json_int_t)pr->last_done, "in_flight", (json_int_t)pr->in_flight,
	                      "ended", pr->ended, "prep_seconds", pr->prep, "check_seconds",
	                      pr->check, "boot_seconds", pr->boot, "restored_pages",
	                      (json_int_t)pr->restored_pages, "resent", (json_int_t)pr->resent);

	snprintf(tmp, sizeof(tmp), "%s.tmp", pr->path);
	if (!j || json_dump_file(j, tmp, JSON_COMPACT) != 0 || rename(tmp, pr->path) != 0)
		die("cannot write %s", pr->path);
	json_decref(j);
}

/*
 * Put back what a state changed: the picked lines, and whatever the guest
 * wrote while it recovered. Only the image's data extents can differ from
 * the durable content (both started as the same sparse copy and took the
 * same lines since); each 4 KiB page that does is copied back.
 */
static uint64_t restore(struct nvimg *live, const struct nvimg *ref)
{
	uint64_t pages = 0;
	off_t pos = 0;

	for (;;) {
		off_t d = lseek(live->fd, pos, SEEK_DATA), h;

		if (d < 0)
			break; /* ENXIO: no data after pos */
		h = lseek(live->fd, d, SEEK_HOLE);
		if (h < 0 || (uint64_t)h > live->size)
			h = (off_t)live->size;
		for (uint64_t o = (uint64_t)d & ~4095ull; o < (uint64_t)h; o += 4096) {
			size_t n = live->size - o < 4096 ? (size_t)(live->size - o) : 4096;

			if (memcmp(live->m + o, ref->m + o, n)) {
				memcpy(live->m + o, ref->m + o, n);
				pages++;
			}
		}
		pos = h;
	}
	return pages;
}

static int cmd_feed(int argc, char **argv)
{
	const char *plan = NULL, *live_path = NULL, *ctl_prefix = NULL, *ready = NULL;
	const char *base = NULL;
	double state_timeout = 120, boot_timeout = 600;
	struct progress pr = {.last_done = -1, .in_flight = -1, .ended = "running"};
	struct crash_plan_params pp;
	struct crash_plan_state *st;
	struct nvimg live, ref;
	struct ctl c = {.in = -1, .out = -1};
	struct plog lg;
	struct plog_line ln;
	struct timespec t0;
	uint64_t id, rec = 0;
	int64_t prev_done = -1;
	size_t nst, next;
	uint32_t np;
	int t;

	if (argc < 1)
		die("feed needs a LOG (try --help)");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--plan") && i + 1 < argc)
			plan = argv[++i];
		else if (!strcmp(argv[i], "--live") && i + 1 < argc)
			live_path = argv[++i];
		else if (!strcmp(argv[i], "--ctl") && i + 1 < argc)
			ctl_prefix = argv[++i];
		else if (!strcmp(argv[i], "--ready") && i + 1 < argc)
			ready = argv[++i];
		else if (!strcmp(argv[i], "--progress") && i + 1 < argc)
			pr.path = argv[++i];
		else if (!strcmp(argv[i], "--base") && i + 1 < argc)
			base = argv[++i];
		else if (!strcmp(argv[i], "--from") && i + 1 < argc)
			pr.from = parse_u64(argv[++i], "--from");
		else if (!strcmp(argv[i], "--state-timeout") && i + 1 < argc)
			state_timeout = parse_bounded(argv[++i], "--state-timeout", 86400);
		else if (!strcmp(argv[i], "--boot-timeout") && i + 1 < argc)
			boot_timeout = parse_bounded(argv[++i], "--boot-timeout", 86400);
		else
			die("unknown feed option: %s (try --help)", argv[i]);
	}
	if (!plan || !live_path || !ctl_prefix || !ready || !pr.path)
		die("feed needs --plan, --live, --ctl, --ready and --progress");
	signal(SIGPIPE, SIG_IGN);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	nst = read_plan(plan, &pp, &st);
	for (next = 0; next < nst && (st[next].check != 'c' || st[next].seq < pr.from); next++)
		;
	if (next == nst) {
		pr.ended = "none";
		progress_write(&pr);
		free(st);
		return 0;
	}
	log_open(&lg, argv[0]);
	int base_fd = open_base(base);

	nvimg_open(&live, live_path, lg.size, base_fd);
	nvimg_open(&ref, NULL, lg.size, base_fd);
	progress_write(&pr);
	while (next < nst && (t = log_next(&lg, &ln, &id, &np))) {
		if (t == PERSIST_REC_LINE) {
			memcpy(ref.m + ln.off, ln.data, PERSIST_LINE);
			memcpy(live.m + ln.off, ln.data, PERSIST_LINE);
			continue;
		}
		struct plog_line *pend = read_pending(&lg, np);
		bool *pick = calloc(np ? np : 1, sizeof(*pick));

		if (!pick)
			die("out of memory");
		for (; next < nst && st[next].rec == rec; next++) {
			struct crash_plan_state *s = &st[next];
			char line[64], want[32];
			enum ctl_got got;

			if (s->check != 'c' || s->seq < pr.from)
				continue;
			if (s->cp != id || s->n != np)
				die("the plan does not match the log at checkpoint %" PRIu64, id);
			cs_pick(pick, np, pp.subsets, pp.seed, id, s->k);
			for (uint32_t j = 0; j < np; j++)
				if (pick[j])
					memcpy(live.m + pend[j].off, pend[j].data, PERSIST_LINE);
			pr.prep += since(&t0);
			if (c.in < 0) {
				/* The first state is in place: the guest may boot. */
				int fd =
				    open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
				char in[4096], out[4096];

				if (fd < 0)
					die("cannot create %s: %s", ready, strerror(errno));
				close(fd);
				clock_gettime(CLOCK_MONOTONIC, &t0);
				snprintf(in, sizeof(in), "%s.in", ctl_prefix);
				snprintf(out, sizeof(out), "%s.out", ctl_prefix);
				if ((c.in = open(in, O_WRONLY | O_CLOEXEC)) < 0 ||
				    (c.out = open(out, O_RDONLY | O_CLOEXEC)) < 0)
					die("cannot open %s.in/.out: %s", ctl_prefix,
					    strerror(errno));
				got = ctl_read(&c, line, sizeof(line), boot_timeout);
				pr.boot = since(&t0);
				if (got != CTL_LINE || strcmp(line, "ready")) {
					pr.ended = got == CTL_LINE ? "protocol" : ctl_ended[got];
					break;
				}
			}
			clock_gettime(CLOCK_MONOTONIC, &t0);
			pr.in_flight = (int64_t)s->seq;
			progress_write(&pr);
			if (!ctl_send(&c, "state %" PRIu64 "\n", s->seq)) {
				pr.ended = "eof";
				break;
			}
			snprintf(want, sizeof(want), "done %" PRIu64, s->seq);
			got = ctl_answer(&c, line, sizeof(line), want, s->seq, prev_done,
			                 state_timeout, &pr.resent);
			pr.check += since(&t0);
			if (got != CTL_LINE) {
				pr.ended = ctl_ended[got];
				break;
			}
			prev_done = (int64_t)s->seq;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			pr.in_flight = -1;
			pr.last_done = (int64_t)s->seq;
			pr.done++;
			pr.restored_pages += restore(&live, &ref);
		}
		free(pick);
		free(pend);
		rec++;
		if (strcmp(pr.ended, "running"))
			break; /* the guest is gone, or broke the protocol */
	}
	fclose(lg.f);
	free(st);
	if (strcmp(pr.ended, "running")) {
		progress_write(&pr);
		return 3;
	}
	if (next < nst)
		die("the plan does not match the log: it ends before state %zu", next);
	pr.prep += since(&t0);
	pr.ended = ctl_send(&c, "end\n", 0) ? "end" : "eof";
	progress_write(&pr);
	/* until the guest powers off: its "again" gets "end" once more */
	for (unsigned i = 0; i < CTL_RETRIES; i++) {
		char line[64];

		if (ctl_read(&c, line, sizeof(line), 30) != CTL_LINE || strcmp(line, "again") ||
		    !ctl_send(&c, "end\n", 0))
			break;
	}
	return 0;
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
	uint64_t cp = 0, seed = 1, lo = 0, len = 0, id, state = 0, k = 0, rec = 0;
	unsigned subsets = 6;
	bool have_cp = false, have_state = false, found = false;
	const char *out = NULL, *base = NULL, *plan = NULL;
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
			k = parse_bounded(argv[++i], "--sample", MAX_SAMPLES);
		else if (!strcmp(argv[i], "--subsets") && i + 1 < argc)
			subsets = parse_bounded(argv[++i], "--subsets", CS_MAX_SUBSETS);
		else if (!strcmp(argv[i], "--plan") && i + 1 < argc)
			plan = argv[++i];
		else if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = parse_u64(argv[++i], "--state"), have_state = true;
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
	if (!out || (!have_cp && !(plan && have_state)) || (have_cp && plan))
		die("image needs -o OUT and either --checkpoint ID or --plan PLAN --state SEQ");
	if (plan) {
		struct crash_plan_params pp;
		struct crash_plan_state *st;
		size_t n = read_plan(plan, &pp, &st);

		if (state >= n)
			die("%s has no state %" PRIu64, plan, state);
		cp = st[state].cp, k = st[state].k, rec = st[state].rec;
		subsets = pp.subsets, seed = pp.seed;
		free(st);
	}
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
		int bfd = open_base(base);

		if (sparse_copy(bfd, lo, fd, 0, len) != 0)
			die("copying %s into %s: %s", base, out, strerror(errno));
		close(bfd);
	}
	for (uint64_t r = 0; !found && (t = log_next(&lg, &ln, &id, &np));
	     r += t != PERSIST_REC_LINE) {
		if (t == PERSIST_REC_LINE) {
			put_line(fd, ln.off, ln.data, lo, len);
			continue;
		}
		struct plog_line *pend = read_pending(&lg, np);

		if (plan ? r == rec : id == cp) {
			bool *pick = calloc(np ? np : 1, sizeof(*pick));

			if (!pick)
				die("out of memory");
			if (plan && id != cp)
				die("the plan does not match the log at checkpoint %" PRIu64, id);
			cs_pick(pick, np, subsets, seed, id, k);
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
	if (!strcmp(argv[1], "plan"))
		return cmd_plan(argc - 2, argv + 2);
	if (!strcmp(argv[1], "feed"))
		return cmd_feed(argc - 2, argv + 2);
	die("unknown command: %s (try --help)", argv[1]);
}
