/*
 * judge.c - every verdict of a run, decided in one place.
 *
 * Inputs: run.json (the plan and what the host saw: QEMU's exit, the time
 * limit, a flood), tap.txt (the agent's results and each scenario's TAP),
 * the files the guest sent (split by `daxlab-collect guest`), the plugin's
 * pmem-stats.json, the crash check's outputs, and each scenario's golden
 * TAP (scenarios/NNN-name.out). Output: summary.json, expect/ files, hit
 * time lines, and the run's summary on stdout.
 *
 * A scenario passes when the guest reported it passed AND its TAP points
 * equal its golden file AND its kernel log is clean AND the plugin counted
 * what it declared AND its race campaign had no hit AND its crash states
 * hold what it declared. The run passes when every scenario did and the
 * guest completed its stream within the protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crash-plan.h"
#include "judge.h"
#include "timeline.h"

#define REASON_MAX 300

/* ----------------------------------------------------------- helpers */

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static long long jint(const json_t *o, const char *key, long long dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static double jnum(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : 0;
}

static json_t *jround(double v, int digits)
{
	double m = pow(10, digits);

	return json_real(round(v * m) / m);
}

/* A string for JSON from guest bytes. */
static json_t *jtext(const char *s)
{
	char *c = text_clean(s, strlen(s), false);
	json_t *j = json_string(c);

	free(c);
	return j;
}

static bool exists(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* JSON under @dirfd, at most @cap bytes, or NULL. */
static json_t *load_json(int dirfd, const char *name, size_t cap)
{
	size_t n;
	char *s = read_capped(dirfd, name, cap, &n);
	json_t *j;

	if (!s)
		return NULL;
	j = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	free(s);
	return j;
}

/*
 * The first line of @name (read in chunks, at most @max bytes) holding one
 * of @pat (NULL-terminated; "A*B" means A then later B), its "[ time] "
 * prefix taken off and cleaned, into @out.
 */
static bool first_match(int dirfd, const char *name, const char *const *pat, size_t max, char *out,
                        size_t outlen)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
	char line[4096];
	size_t total = 0;
	bool found = false;

	if (!f) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (!found && total < max && fgets(line, sizeof(line), f)) {
		total += strlen(line);
		for (const char *const *p = pat; *p && !found; p++) {
			const char *star = strchr(*p, '*');
			char a[64];

			snprintf(a, sizeof(a), "%.*s", star ? (int)(star - *p) : (int)strlen(*p),
			         *p);
			const char *at = strstr(line, a);

			found = at && (!star || strstr(at + strlen(a), star + 1));
		}
		if (!found)
			continue;
		const char *s = line;

		line[strcspn(line, "\r\n")] = 0;
		if (s[0] == '[' && strchr(s, ']')) {
			s = strchr(s, ']') + 1;
			while (*s == ' ')
				s++;
		}
		char *c = text_clean(s, strlen(s), false);

		snprintf(out, outlen, "%s", c);
		free(c);
	}
	fclose(f);
	return found;
}

static const char *const panic_patterns[] = {"Kernel panic",
                                             "BUG:", "Oops:", "general protection fault", NULL};
/* What fails a scenario in its kernel log (kselftest's and ndctl's check_dmesg). */
static const char *const warn_patterns[] = {"Call Trace",
                                            "BUG:",
                                            "WARNING:",
                                            "Oops",
                                            "Kernel panic",
                                            "general protection fault",
                                            "possible circular locking",
                                            "INFO: task * blocked",
                                            NULL};

/* ------------------------------------------------------ expectations */

/* The TAP points of a subtest: ok/not ok/plan lines, " # SKIP ..." cut. */
static char **points(const char *sub, size_t *n)
{
	char **v = NULL;

	*n = 0;
	for (const char *line = sub; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (!strncmp(line, "ok ", 3) || !strncmp(line, "not ok ", 7) ||
		    !strncmp(line, "1..", 3)) {
			char *s = strndup(line, len), *skip = s ? strstr(s, " # SKIP ") : NULL;
			char **nv = realloc(v, (*n + 1) * sizeof(*v));

			if (!s || !nv)
				exit(2);
			if (skip)
				*skip = 0;
			v = nv;
			v[(*n)++] = s;
		}
		line = nl ? nl + 1 : NULL;
	}
	return v;
}

static char **golden_lines(const char *text, size_t *n)
{
	char **v = NULL;

	*n = 0;
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char **nv = realloc(v, (*n + 1) * sizeof(*v));

		if (!nv)
			exit(2);
		v = nv;
		v[(*n)++] = strndup(line, len);
		line = nl ? nl + 1 : NULL;
	}
	return v;
}

static void free_lines(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A line diff of @a (expected) and @b (seen): LCS, every line shown. */
static void diff_lines(struct strbuf *out, char **a, size_t na, char **b, size_t nb)
{
	size_t *t;

	if (na > 2000 || nb > 2000) {
		sb_addf(out, "(%zu lines expected, %zu seen: too many to compare line by line)\n",
		        na, nb);
		return;
	}
	t = calloc((na + 1) * (nb + 1), sizeof(*t));
	if (!t)
		exit(2);
#define T(i, j) t[(i) * (nb + 1) + (j)]
	for (size_t i = na; i-- > 0;)
		for (size_t j = nb; j-- > 0;)
			T(i, j) = !strcmp(a[i], b[j])         ? T(i + 1, j + 1) + 1
			          : T(i + 1, j) > T(i, j + 1) ? T(i + 1, j)
			                                      : T(i, j + 1);
	size_t i = 0, j = 0;

	while (i < na || j < nb) {
		if (i < na && j < nb && !strcmp(a[i], b[j])) {
			sb_addf(out, " %s\n", a[i]);
			i++, j++;
		} else if (j < nb && (i == na || T(i, j + 1) >= T(i + 1, j))) {
			char *c = text_clean(b[j], strlen(b[j]), false);

			sb_addf(out, "+%s\n", c);
			free(c);
			j++;
		} else {
			sb_addf(out, "-%s\n", a[i]);
			i++;
		}
	}
#undef T
	free(t);
}

/*
 * expect/NAME-FS.out, the scenario's TAP; on a difference from its golden
 * file .out.bad and .diff instead. Returns false on a difference.
 */
static bool expectation(int dirfd, const char *golden_dir, const char *bin, const char *base,
                        const struct strbuf *sub, bool compare)
{
	char out[160], bad[170], dname[170], gpath[512];
	size_t gn = 0, np = 0, ng = 0;
	char *gtext, **got, **want;
	bool same;

	snprintf(out, sizeof(out), "expect/%s.out", base);
	snprintf(bad, sizeof(bad), "expect/%s.out.bad", base);
	snprintf(dname, sizeof(dname), "expect/%s.diff", base);
	unlinkat(dirfd, bad, 0); /* of an earlier judging */
	unlinkat(dirfd, dname, 0);
	write_file(dirfd, out, sub->s ? sub->s : "", sub->len, true);
	if (!compare)
		return true;
	snprintf(gpath, sizeof(gpath), "%s/%s.out", golden_dir, bin);
	gtext = read_capped(AT_FDCWD, gpath, 1 << 20, &gn);
	if (!gtext) {
		fprintf(stderr, "daxlab-collect: no golden file %s: %s\n", gpath, strerror(errno));
		exit(2);
	}
	got = points(sub->s ? sub->s : "", &np);
	want = golden_lines(gtext, &ng);
	same = np == ng;
	for (size_t i = 0; same && i < np; i++)
		same = !strcmp(got[i], want[i]);
	if (!same) {
		struct strbuf d = {0};

		sb_addf(&d, "--- scenarios/%s.out\n+++ expect/%s.out.bad\n", bin, base);
		diff_lines(&d, want, ng, got, np);
		write_file(dirfd, dname, d.s, d.len, true);
		sb_free(&d);
		renameat(dirfd, out, dirfd, bad);
	}
	free_lines(got, np);
	free_lines(want, ng);
	free(gtext);
	return same;
}

/* ---------------------------------------------------------- crash check */

/* The summary line daxlab-crash (or the recovery judge) ends a report with. */
struct crash_summary {
	double checkpoints, generated, checked, expectations, failures, seconds, rate;
};

static bool crash_summary_parse(const char *text, struct crash_summary *s, char *first_fail,
                                size_t fflen)
{
	const char *last = NULL, *ff;
	char line[512];

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		last = p;
	first_fail[0] = 0;
	for (ff = strstr(text, "FAIL "); ff && ff != text && ff[-1] != '\n';
	     ff = strstr(ff + 1, "FAIL "))
		;
	if (ff) {
		char *c = text_clean(ff + 5, strcspn(ff + 5, "\n"), false);

		snprintf(first_fail, fflen, "%s", c);
		free(c);
	}
	if (!last)
		return false;
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(last, "\n"), last);
	return sscanf(line,
	              "checkpoints=%lf states_generated=%lf states_checked=%lf expectations=%lf "
	              "failures=%lf seconds=%lf states_per_second=%lf",
	              &s->checkpoints, &s->generated, &s->checked, &s->expectations, &s->failures,
	              &s->seconds, &s->rate) == 7;
}

/* "A,B,C" holds @v? */
static bool in_list(const char *list, const char *v)
{
	size_t n = strlen(v);

	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, v, n) && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

#define RECOVER_FAIL_LINES 50
#define RECOVER_KEEP 16

/* The states of a crash plan (crash-plan.h: the one reader of the format). */
static size_t plan_states(const char *text, struct crash_plan_state **out)
{
	size_t n = 0, cap = 256;
	struct crash_plan_state *v = malloc(cap * sizeof(*v));

	for (const char *l = text; v && l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (*l == '#')
			continue;
		if (n == cap) {
			struct crash_plan_state *w = realloc(v, (cap *= 2) * sizeof(*v));

			if (!w)
				break;
			v = w;
		}
		if (!crash_plan_state(l, n, &v[n]))
			break;
		n++;
	}
	*out = v;
	return v ? n : 0;
}

/* The versions the spec (lines "CHECKPOINT VERSIONS") allows at @cp, or "". */
static void spec_allowed(const char *spec, unsigned long long cp, char *out, size_t len)
{
	out[0] = 0;
	for (const char *l = spec; *l;) {
		unsigned long long c = strtoull(l, NULL, 10);
		const char *sp = strchr(l, ' '), *nl = strchr(l, '\n');

		if (c == cp && sp && nl && sp < nl)
			snprintf(out, len, "%.*s", (int)(nl - sp - 1), sp + 1);
		l = nl ? nl + 1 : l + strlen(l);
	}
}

/*
 * Filesystem-level crash states: the plan (every state, which are the
 * same bytes, which were checked) against what the recovery guests
 * reported, state by state, and the versions the scenario allowed: at a
 * marked checkpoint its own, at a crash point those of the checkpoints on
 * either side. A folded state is judged by its representative's report
 * against its own allowed versions. Writes crash/NAME-FS.txt like
 * daxlab-crash does, and crash/NAME-FS.keep (the states whose images
 * run.sh keeps); returns the figures for summary.json.
 */
static json_t *recover_judge(int dirfd, const char *base)
{
	char jname[160], sname[160], rname[160], pname[160], kname[160];
	json_t *j, *boot, *fig = NULL;
	size_t spec_n, plan_n, nst = 0, bi, nrep_all = 0;
	char *spec, *ptext = NULL;
	struct crash_plan_state *st = NULL;
	struct kept_line *reps = NULL, **by_seq = NULL;
	struct strbuf out = {0}, keep = {0};
	unsigned checked = 0, fails = 0, folded = 0, dropped = 0, uniq = 0, marked = 0, points = 0,
	         kept = 0, shown = 0, boots = 0;
	double prep = 0, check = 0, boot_s = 0;
	long long died_on[16]; /* the states a recovery guest died or hung on */
	unsigned ndied = 0;

	snprintf(jname, sizeof(jname), "crash/recover-%s.json", base);
	snprintf(sname, sizeof(sname), "crash/%s.spec", base);
	snprintf(rname, sizeof(rname), "crash/%s.txt", base);
	snprintf(pname, sizeof(pname), "crash/plan-%s.txt", base);
	snprintf(kname, sizeof(kname), "crash/%s.keep", base);
	j = load_json(dirfd, jname, 4 << 20);
	spec = read_capped(dirfd, sname, 1 << 20, &spec_n);
	if (j)
		ptext = read_capped(dirfd, pname, 256 << 20, &plan_n);
	if (!j || !spec || !ptext) {
		sb_addf(&out, "the recovery check left no %s\n",
		        !j      ? jname
		        : !spec ? sname
		                : pname);
		goto done;
	}
	nst = plan_states(ptext, &st);
	by_seq = calloc(nst ? nst : 1, sizeof(*by_seq));
	reps = calloc(nst + 1, sizeof(*reps));
	if (!by_seq || !reps) {
		sb_addf(&out, "out of memory\n");
		goto done;
	}
	/* The reports of every boot, each for a state that boot was given. */
	json_array_foreach(json_object_get(j, "boots"), bi, boot)
	{
		char tapname[160], err[200] = "";
		long long from = jint(boot, "from", 0), last = jint(boot, "last_done", -1),
		          inflight = jint(boot, "in_flight", -1);
		size_t tn;
		char *tap;
		int n;

		boots++;
		prep += jnum(boot, "prep_seconds");
		check += jnum(boot, "check_seconds");
		boot_s += jnum(boot, "boot_seconds");
		if (inflight >= 0 && ndied < 16)
			died_on[ndied++] = inflight;
		if (inflight > last)
			last = inflight;
		snprintf(tapname, sizeof(tapname), "crash/recover-%s-%u.tap", base, boots);
		tap = read_capped(dirfd, tapname, DAXLAB_CAP_TAP, &tn);
		n = tap ? recovery_parse(tap, tn, reps + nrep_all, nst + 1 - nrep_all, err,
		                         sizeof(err))
		        : 0;
		free(tap);
		if (n < 0) {
			sb_addf(
			    &out,
			    "FAIL the recovery guest of boot %u broke the protocol: %s (see %s)\n",
			    boots, err, tapname);
			fails++;
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct kept_line *r = &reps[nrep_all + i];
			unsigned long long s = strtoull(kept_get(r, "state"), NULL, 10);

			if (s >= nst || (long long)s < from || (long long)s > last || by_seq[s] ||
			    st[s].check != 'c') {
				sb_addf(&out,
				        "FAIL the recovery guest of boot %u reported state %s, "
				        "which it "
				        "was not given (see %s)\n",
				        boots, kept_get(r, "state"), tapname);
				fails++;
				continue;
			}
			by_seq[s] = r;
		}
		nrep_all += (size_t)n;
	}
	for (size_t i = 0; i < nst; i++) {
		const struct crash_plan_state *s = &st[i], *r = &st[s->rep];
		char allowed[2 * DAXLAB_CAP_WORD + 2], more[DAXLAB_CAP_WORD + 1];
		const struct kept_line *rep;

		marked += s->kind == 'm' && s->k == 0;
		points += s->kind == 'p' && s->k == 0;
		uniq += s->rep == s->seq;
		if (s->check == 'd' || r->check != 'c') {
			dropped++;
			continue;
		}
		if (s->check == 'f')
			folded++;
		else
			checked += by_seq[i] != NULL;
		spec_allowed(spec, s->kind == 'm' ? s->cp : s->prev, allowed, sizeof(allowed));
		if (s->kind == 'p') {
			/* and the next marked checkpoint's */
			for (size_t n = i + 1; n < nst; n++)
				if (st[n].kind == 'm') {
					spec_allowed(spec, st[n].cp, more, sizeof(more));
					if (more[0])
						snprintf(allowed + strlen(allowed),
						         sizeof(allowed) - strlen(allowed), ",%s",
						         more);
					break;
				}
		}
		rep = by_seq[s->rep];
		const char *mount = rep ? kept_get(rep, "mount") : "-",
		           *ver = rep ? kept_get(rep, "version") : "-",
		           *fsck = rep ? kept_get(rep, "fsck") : "-";
		bool ok =
		    rep && !strcmp(mount, "ok") && !strcmp(fsck, "0") && in_list(allowed, ver);

		if (ok)
			continue;
		fails++;
		bool keep_it = s->rep == s->seq && kept < RECOVER_KEEP;

		if (keep_it) {
			sb_addf(&keep, "%" PRIu64 "\n", s->seq);
			kept++;
		}
		if (shown++ >= RECOVER_FAIL_LINES)
			continue;
		sb_addf(&out,
		        "FAIL state=%" PRIu64 " checkpoint=%" PRIu64 " %s=%" PRIu64
		        " (%u of %u pending written back",
		        s->seq, s->cp, s->kind == 'm' ? "sample" : "point-state", s->k, s->written,
		        s->n);
		if (s->rep != s->seq)
			sb_addf(&out, "; the same bytes as state %" PRIu64, s->rep);
		bool died = false;

		for (unsigned d = 0; d < ndied; d++)
			died |= died_on[d] == (long long)s->rep;
		if (!rep && died)
			sb_addf(&out,
			        "): the recovery guest died or hung on it (see "
			        "crash/recover-%s-*.console)",
			        base);
		else if (!rep)
			sb_addf(&out,
			        "): not checked: the recovery guests ended before it (see "
			        "crash/recover-%s-*.console)",
			        base);
		else
			sb_addf(
			    &out,
			    "): mount %s, fsck exit %s, data is version %s, expected version %s",
			    mount, fsck, ver, allowed);
		if (keep_it)
			sb_addf(&out, " (image: crash/states/%s-%" PRIu64 ".img)", base, s->seq);
		sb_addf(&out, "\n");
	}
	if (shown > RECOVER_FAIL_LINES)
		sb_addf(&out, "... and %u more failing states\n", shown - RECOVER_FAIL_LINES);
	if (folded)
		sb_addf(&out, "folded %u states into the checked state with the same bytes\n",
		        folded);
	if (dropped)
		sb_addf(&out, "dropped %u states over --crash-max-states (or interrupted)\n",
		        dropped);
	double secs = jnum(j, "seconds");

	fig = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "states_unique",
	                (json_int_t)uniq, "states_folded", (json_int_t)folded, "states_dropped",
	                (json_int_t)dropped, "marked_checkpoints", (json_int_t)marked,
	                "crash_points", (json_int_t)points, "boots", (json_int_t)boots,
	                "image_seconds", jround(prep, 3), "recovery_seconds", jround(check, 3),
	                "boot_seconds", jround(boot_s, 3));
	sb_addf(&out,
	        "checkpoints=%u states_generated=%zu states_checked=%u expectations=%u failures=%u "
	        "seconds=%.3f states_per_second=%.2f\n",
	        marked + points, nst, checked, marked, fails, secs, secs > 0 ? checked / secs : 0);
done:
	write_file(dirfd, rname, out.s ? out.s : "", out.len, true);
	if (keep.len)
		write_file(dirfd, kname, keep.s, keep.len, true);
	sb_free(&out);
	sb_free(&keep);
	if (reps)
		recovery_free(reps, nrep_all);
	free(reps);
	free(by_seq);
	free(st);
	free(ptext);
	json_decref(j);
	free(spec);
	return fig;
}

/* ------------------------------------------------------------- verdicts */

struct verdict {
	char status[16];
	char reason[REASON_MAX];
};

static void set(struct verdict *v, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set(struct verdict *v, const char *status, const char *fmt, ...)
{
	va_list ap;

	snprintf(v->status, sizeof(v->status), "%s", status);
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

/* What happened to the guest as a whole. */
static struct verdict guest_verdict(int dirfd, const json_t *run, const struct plan *p,
                                    const struct tap_stream *t, const json_t *collect,
                                    const json_t *stats, const char *tap_err, char *panic,
                                    size_t panic_len, char *iomem, size_t iomem_len)
{
	struct verdict v = {"completed", ""};
	const json_t *g = json_object_get(run, "guest");
	long long qexit = jint(g, "exit", -1), free_mib = jint(g, "free_mib", -1);
	const char *files_err = jstr(collect, "files_error");

	panic[0] = 0;
	first_match(dirfd, "console.log", panic_patterns, DAXLAB_CAP_CONSOLE + (16 << 20), panic,
	            panic_len);
	if (json_is_true(json_object_get(g, "interrupted")))
		set(&v, "interrupted", "interrupted: run.sh was stopped by a signal");
	else if (jstr(g, "flood")[0])
		set(&v, "flood", "the guest's %s channel outgrew its cap: guest killed",
		    jstr(g, "flood"));
	else if (json_is_true(json_object_get(g, "deadline")))
		set(&v, "timeout", "guest killed after %llds", jint(g, "timeout", 0));
	/* (SIGBUS is QEMU's own: a write to its mapped image that the disk
	 * could not take; said below) */
	else if (jstr(g, "signal")[0] && strcmp(jstr(g, "signal"), "BUS"))
		set(&v, "killed", "QEMU was killed by SIG%s (not by run.sh)", jstr(g, "signal"));
	if (!t->done && !strcmp(v.status, "completed")) {
		char last[200] = "";

		if (panic[0]) {
			set(&v, "panic", "guest kernel: %s", panic);
		} else {
			int fd = openat(dirfd, "qemu.log", O_RDONLY | O_NOFOLLOW);
			FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
			char line[200];

			while (f && fgets(line, sizeof(line), f))
				if (line[0] != '\n') {
					line[strcspn(line, "\n")] = 0;
					char *c = text_clean(line, strlen(line), false);

					snprintf(last, sizeof(last), "%s", c);
					free(c);
				}
			if (f)
				fclose(f);
			else if (fd >= 0)
				close(fd);
			if (qexit == 135 || (free_mib >= 0 && free_mib < 64))
				set(&v, "crashed",
				    "guest stopped early (qemu exit %lld%s): QEMU could not write "
				    "the "
				    "NV-DIMM image, is the disk full? (%lld MiB free after the "
				    "run)",
				    qexit, qexit == 135 ? ", SIGBUS" : "", free_mib);
			else
				set(&v, "crashed", "guest stopped early (qemu exit %lld): %s",
				    qexit, last);
		}
	}
	if (strcmp(p->plugin, "off") && !strcmp(v.status, "completed")) {
		const json_t *pers = json_object_get(stats, "persistence");
		const json_t *watch = json_object_get(stats, "watch");

		if (!stats)
			set(&v, "plugin-error", "the plugin wrote no pmem-stats.json");
		else if (json_is_true(json_object_get(pers, "log_failed")))
			set(&v, "plugin-error",
			    "writing the persistence log failed (disk full?), or the model ran out "
			    "of "
			    "memory: crash states are incomplete");
		else if (json_is_false(json_object_get(watch, "started")))
			set(&v, "plugin-error",
			    "the plugin never started watching: no 'daxlab-mark watch' from the "
			    "guest "
			    "(watch=%s)",
			    jstr(watch, "from"));
	}
	/* The window the plugin watched must be the one the guest reports. */
	iomem[0] = 0;
	size_t n;
	char *io = read_capped(dirfd, "iomem-pmem.txt", 4 << 10, &n);

	if (io && n) {
		char want[96], *o = iomem;

		for (char *c = io; *c && *c != '\n' && (size_t)(o - iomem) + 1 < iomem_len; c++)
			if (*c != ' ')
				*o++ = (*c >= 0x20 && *c < 0x7f) ? *c : '?';
		*o = 0;
		snprintf(want, sizeof(want), "%llx-%llx:PersistentMemory",
		         (unsigned long long)p->pmem_base,
		         (unsigned long long)(p->pmem_base + p->pmem_bytes - 1));
		char *paren = strchr(iomem, '(');
		size_t cmp = paren ? (size_t)(paren - iomem) : strlen(iomem);

		if ((strlen(want) != cmp || strncmp(iomem, want, cmp)) &&
		    strcmp(v.status, "interrupted"))
			set(&v, "window-mismatch",
			    "NV-DIMM window mismatch: run.sh computed %s, the guest reports %s",
			    want, iomem);
	}
	free(io);
	const json_t *rep = json_object_get(run, "replay");

	if (json_is_object(rep) && !strcmp(v.status, "completed") &&
	    !(json_is_true(json_object_get(rep, "tap_identical")) &&
	      json_is_true(json_object_get(rep, "pmem_image_identical"))))
		set(&v, "replay-diverged",
		    "replay diverged: TAP identical: %s, NV-DIMM image identical: %s",
		    json_is_true(json_object_get(rep, "tap_identical")) ? "true" : "false",
		    json_is_true(json_object_get(rep, "pmem_image_identical")) ? "true" : "false");
	if (t->bail[0] && strcmp(v.status, "interrupted"))
		set(&v, "bailed", "the guest agent gave up: %s", t->bail);
	/* Last, and over everything but an interrupt or a flood (which the host
	 * saw itself, and which cuts the stream anywhere): the guest broke the
	 * protocol. */
	if (strcmp(v.status, "interrupted") && strcmp(v.status, "flood")) {
		if (tap_err[0])
			set(&v, "protocol-error", "%s", tap_err);
		else if (files_err[0])
			set(&v, "protocol-error", "%s", files_err);
		else if (json_is_true(json_object_get(collect, "files_truncated")) && t->done)
			set(&v, "protocol-error",
			    "the files channel ends inside a file although the guest finished");
		else if (t->error[0])
			set(&v, "protocol-error", "%s", t->error);
	}
	return v;
}

/* The counters the plugin recorded for window @id, or NULL. */
static const json_t *plugin_window(const json_t *stats, uint64_t id)
{
	size_t i;
	json_t *w;

	json_array_foreach(json_object_get(stats, "windows"), i, w)
	{
		json_t *jid = json_object_get(w, "id");

		if (json_is_integer(jid) && (uint64_t)json_integer_value(jid) == id)
			return json_object_get(w, "counters");
	}
	return NULL;
}

struct totals {
	unsigned passed, failed, skipped, timeout;
};

/* One (scenario, fs): its verdict and its summary.json entry. */
static json_t *judge_entry(int dirfd, const char *golden_dir, const json_t *run,
                           const struct plan *p, const struct tap_entry *e,
                           const struct verdict *guest, const char *panic, const json_t *stats,
                           const json_t *collect, struct strbuf *lines)
{
	const char *name = p->scen[e->scen].name, *fs = p->fs[e->fs], *bin = p->scen[e->scen].bin;
	bool payload = !strcmp(bin, "000-payload");
	char base[80], file[160], why[REASON_MAX];
	struct verdict v;
	json_t *j = json_object();
	long long seed = jint(run, "seed", 1);

	snprintf(base, sizeof(base), "%s-%s", name, fs);
	if (e->result) {
		set(&v, e->status, "%s", e->reason);
		if (!e->ok_line && !strcmp(v.status, "pass"))
			set(&v, "fail",
			    "no test point closed its result (the stream stopped there)");
	} else {
		set(&v, !strcmp(guest->status, "timeout") ? "timeout" : "fail", "%s",
		    guest->reason[0] ? guest->reason : "no result from the guest");
		if (panic[0] && e->subtest)
			snprintf(v.reason, sizeof(v.reason), "guest kernel: %s", panic);
	}
	/* The scenario's TAP against its golden output (fstests style). */
	mkdirat(dirfd, "expect", 0700);
	if (e->subtest || e->result) {
		bool compare = !payload && (!strcmp(v.status, "pass") || !strcmp(v.status, "fail"));

		if (!expectation(dirfd, golden_dir, bin, base, &e->sub, compare) &&
		    !strcmp(v.status, "pass"))
			set(&v, "fail", "output differs from scenarios/%s.out (see expect/%s.diff)",
			    bin, base);
	}
	if (payload) {
		snprintf(file, sizeof(file), "payload-%s.txt", fs);
		write_file(dirfd, file, e->sub.s ? e->sub.s : "", e->sub.len, true);
	}
	/* Its kernel log must be clean. */
	snprintf(file, sizeof(file), "dmesg/%s.txt", base);
	if (e->subtest && !exists(dirfd, file) && !strcmp(guest->status, "completed") &&
	    e->result) {
		if (strcmp(v.status, "skip"))
			set(&v, "fail", "no kernel log from the guest for this scenario");
	} else if (e->subtest &&
	           first_match(dirfd, file, warn_patterns, 2 << 20, why, sizeof(why) - 40)) {
		bool stuck = !strcmp(v.status, "timeout");

		set(&v, "fail", "%skernel log: %s", stuck ? "stuck after SIGKILL; " : "", why);
	}
	/* Plugin windows the scenario declared must match the plugin's counts. */
	for (size_t i = 0; i < e->nlines && strcmp(p->plugin, "off") && !strcmp(v.status, "pass");
	     i++) {
		const struct kept_line *l = &e->lines[i];
		const json_t *w;
		uint64_t id;

		if (strcmp(l->kind->tag, DAXLAB_TAG_EXPECT_WINDOW))
			continue;
		parse_u64(kept_get(l, "id"), &id);
		w = plugin_window(stats, id);
		if (!w) {
			set(&v, "fail", "the plugin recorded no window %llu",
			    (unsigned long long)id);
			break;
		}
		for (unsigned k = 1; k < l->n; k++) {
			json_t *got = json_object_get(w, l->key[k]);

			if (!json_is_integer(got)) {
				set(&v, "fail", "plugin window %llu: no counter %s",
				    (unsigned long long)id, l->key[k]);
				break;
			}
			if (strtoull(l->value[k], NULL, 10) != (uint64_t)json_integer_value(got)) {
				set(&v, "fail",
				    "plugin window %llu: %s is %lld, the scenario issued %s",
				    (unsigned long long)id, l->key[k],
				    (long long)json_integer_value(got), l->value[k]);
				break;
			}
		}
	}
	json_object_set_new(j, "name", json_string(name));
	json_object_set_new(j, "fs", json_string(fs));
	/* Racing scenarios: the campaign line, and a time line for each hit. */
	const struct kept_line *camp = NULL;

	for (size_t i = 0; i < e->nlines && !camp; i++)
		if (!strcmp(e->lines[i].kind->tag, DAXLAB_TAG_CAMPAIGN))
			camp = &e->lines[i];
	json_t *cj = NULL;

	if (camp) {
		uint64_t it = 0, hits = 0, known = 0;
		double secs = 0, rate;

		parse_u64(kept_get(camp, "iterations"), &it);
		parse_u64(kept_get(camp, "hits"), &hits);
		parse_u64(kept_get(camp, "known"), &known);
		parse_double(kept_get(camp, "seconds"), &secs);
		rate = secs > 0 ? (double)it / secs : 0;
		cj = json_object();
		json_object_set_new(cj, "iterations", json_integer((json_int_t)it));
		json_object_set_new(cj, "seconds", jround(secs, 3));
		json_object_set_new(cj, "iterations_per_second", jround(rate, 2));
		json_object_set_new(cj, "hits", json_integer((json_int_t)hits));
		json_object_set_new(cj, "known_kernel_windows", json_integer((json_int_t)known));
		json_object_set_new(cj, "seed", json_integer(seed));
		if (hits) {
			uint64_t fr = 0;
			double fs_ = 0;

			if (kept_get(camp, "first_hit_round"))
				parse_u64(kept_get(camp, "first_hit_round"), &fr);
			if (kept_get(camp, "first_hit_seconds"))
				parse_double(kept_get(camp, "first_hit_seconds"), &fs_);
			json_object_set_new(cj, "first_hit_round", json_integer((json_int_t)fr));
			json_object_set_new(cj, "first_hit_seconds", jround(fs_, 3));
			snprintf(file, sizeof(file), "hits/%s", base);
			json_object_set_new(cj, "witnesses", json_string(file));
			for (unsigned k = 1; k <= DAXLAB_WITNESS_FILES; k++) {
				char w[160], tl[160], tr[160];

				snprintf(w, sizeof(w), "hits/%s/hit-%u.txt", base, k);
				snprintf(tl, sizeof(tl), "hits/%s/timeline-%u.txt", base, k);
				snprintf(tr, sizeof(tr), "fs_dax/%s.txt", base);
				if (exists(dirfd, w))
					timeline_write(dirfd, w, tl, tr, name);
			}
		}
		if (jint(run, "widen", 0) > 0) {
			json_t *wj = json_object(), *pts = json_array();

			for (size_t i = 0; i < e->nwiden; i++) {
				uint64_t d = 0, us = 0;

				parse_u64(kept_get(&e->widen[i], "delays"), &d);
				parse_u64(kept_get(&e->widen[i], "us"), &us);
				json_array_append_new(
				    pts, json_pack("{s:s, s:I, s:I}", "name",
				                   kept_get(&e->widen[i], "point"), "delays",
				                   (json_int_t)d, "us", (json_int_t)us));
			}
			json_object_set_new(wj, "delay_us", json_integer(jint(run, "widen", 0)));
			json_object_set_new(wj, "points", pts);
			json_object_set_new(cj, "widen", wj);
		}
		sb_addf(lines, "    campaign %s %s: %llu rounds in %.3f s (%.2f/s), %llu hits", fs,
		        name, (unsigned long long)it, secs, rate, (unsigned long long)hits);
		if (known)
			sb_addf(lines, " (+%llu known kernel windows, see --strict)",
			        (unsigned long long)known);
		if (hits)
			sb_addf(lines, ", first after %s s (hits/%s/)",
			        kept_get(camp, "first_hit_seconds")
			            ? kept_get(camp, "first_hit_seconds")
			            : "?",
			        base);
		sb_addf(lines, "\n");
		if (hits && !strcmp(v.status, "pass"))
			set(&v, "fail", "%llu race hits (see hits/%s/)", (unsigned long long)hits,
			    base);
	}
	/* --crash-check: the crash states at its checkpoints. */
	json_t *crj = NULL;

	if (!strcmp(name, p->crash_check) && !strcmp(v.status, "pass")) {
		size_t ci;
		json_t *c;
		const char *mode = "none";

		json_array_foreach(json_object_get(collect, "crash"), ci, c)
		{
			if (!strcmp(jstr(c, "scenario"), name) && !strcmp(jstr(c, "fs"), fs))
				mode = jstr(c, "mode");
		}
		if (!strcmp(mode, "none")) {
			set(&v, "fail",
			    "--crash-check: the scenario declared no crash expectations");
		} else if (!strcmp(mode, "error")) {
			set(&v, "fail", "--crash-check: its expectations cannot be checked");
		} else {
			struct crash_summary cs;
			char report[160], first[200];
			size_t n;
			char *txt;

			json_t *fig = NULL;

			if (!strcmp(mode, "recover"))
				fig = recover_judge(dirfd, base);
			snprintf(report, sizeof(report), "crash/%s.txt", base);
			txt = read_capped(dirfd, report, 64 << 20, &n);
			if (!txt || !crash_summary_parse(txt, &cs, first, sizeof(first))) {
				set(&v, "fail", "crash-check did not run: %s",
				    txt ? "its report has no summary line" : "no report");
			} else {
				crj = json_object();
				json_object_set_new(crj, "checkpoints",
				                    json_integer((json_int_t)cs.checkpoints));
				json_object_set_new(crj, "states_generated",
				                    json_integer((json_int_t)cs.generated));
				json_object_set_new(crj, "states_checked",
				                    json_integer((json_int_t)cs.checked));
				json_object_set_new(crj, "failures",
				                    json_integer((json_int_t)cs.failures));
				json_object_set_new(crj, "states_per_second", jround(cs.rate, 2));
				json_object_set_new(crj, "samples",
				                    json_integer(jint(run, "crash_samples", 0)));
				json_object_set_new(crj, "seed", json_integer(seed));
				json_object_set_new(crj, "report", json_string(report));
				if (fig)
					json_object_update(crj, fig);
				sb_addf(
				    lines,
				    "    crash-check %s %s: %.0f states checked, %.0f failing\n",
				    fs, name, cs.checked, cs.failures);
				if (cs.checked < 1)
					set(&v, "fail",
					    "crash-check: no crash state was checked (see %s)",
					    report);
				else if (cs.failures > 0)
					set(&v, "fail", "crash-check: %.0f failing (see %s): %s",
					    cs.failures, report, first);
			}
			free(txt);
			json_decref(fig);
		}
	}
	/* A guest that broke the protocol proves nothing it said. */
	if (!strcmp(guest->status, "protocol-error") && !strcmp(v.status, "pass"))
		set(&v, "fail", "the guest broke the protocol: %s", guest->reason);
	json_object_set_new(j, "status", json_string(v.status));
	json_object_set_new(j, "dax", json_boolean(e->result && e->dax));
	json_object_set_new(j, "duration", jround(e->result ? e->duration : 0, 2));
	json_object_set_new(j, "reason", jtext(v.reason));
	snprintf(file, sizeof(file), "fs_dax/%s.txt", base);
	json_object_set_new(j, "fs_dax_trace", json_string(file));
	snprintf(file, sizeof(file), "dmesg/%s.txt", base);
	json_object_set_new(j, "dmesg", json_string(file));
	if (cj)
		json_object_set_new(j, "campaign", cj);
	if (crj)
		json_object_set_new(j, "crash_check", crj);
	return j;
}

/* -------------------------------------------------------------- perf */

void perf_files(int dirfd, const struct plan *p, const struct tap_stream *t)
{
	json_t *phases = json_array(), *model = NULL;
	struct strbuf lat = {0}, bw = {0};
	char seen[64][DAXLAB_CAP_WORD + 1];
	unsigned nseen = 0;

	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; k < t->e[i].nlines; k++) {
			const struct kept_line *l = &t->e[i].lines[k];
			json_t *o;

			if (strcmp(l->kind->tag, DAXLAB_TAG_PERF))
				continue;
			o = json_object();
			json_object_set_new(o, "fs", json_string(p->fs[t->e[i].fs]));
			for (unsigned f = 0; f < l->n; f++) {
				uint64_t u;
				double d;

				if (!strcmp(l->key[f], "phase"))
					json_object_set_new(o, "phase", json_string(l->value[f]));
				else if (parse_u64(l->value[f], &u))
					json_object_set_new(o, l->key[f],
					                    json_integer((json_int_t)u));
				else if (parse_double(l->value[f], &d))
					json_object_set_new(o, l->key[f], json_real(d));
			}
			json_array_append_new(phases, o);
		}
	if (json_array_size(phases)) {
		json_t *root = json_pack("{s:O}", "phases", phases);
		char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
		                               JSON_REAL_PRECISION(10));

		if (s)
			write_file(dirfd, "pmem-perf.json", s, strlen(s), true);
		free(s);
		json_decref(root);
		model = load_json(dirfd, "pmem-model.json", 16 << 20);
	}
	/* The latency model's figures per phase (its first run), preset against
	 * dram, for the plot: latency per access and bandwidth. */
	size_t i;
	json_t *ph;

	json_array_foreach(phases, i, ph)
	{
		const char *phase = jstr(ph, "phase");
		long long win = jint(ph, "window", -1), ops = jint(ph, "ops", 0),
		          bytes = jint(ph, "bytes", 0);
		size_t wi;
		json_t *w, *mw = NULL;
		bool dup = false;

		if (!model || !daxlab_value_ok('N', phase))
			break;
		for (unsigned s = 0; s < nseen; s++)
			dup |= !strcmp(seen[s], phase);
		json_array_foreach(json_object_get(model, "windows"), wi, w)
		{
			if (!mw && jint(w, "id", -2) == win)
				mw = w;
		}
		if (dup || !mw || nseen >= 64)
			continue;
		strcpy(seen[nseen++], phase);
		double ns = jnum(mw, "modelled_ns"), dram = jnum(mw, "dram_ns");

		if (ns <= 0 || dram <= 0)
			continue;
		if (!strcmp(phase, "chase") || !strcmp(phase, "persist")) {
			if (ops > 0)
				sb_addf(&lat, "%s %.3f %.3f\n", phase, ns / (double)ops,
				        dram / (double)ops);
		} else {
			sb_addf(&bw, "%s %.4f %.4f\n", phase, (double)bytes / ns,
			        (double)bytes / dram);
		}
	}
	if (lat.len && bw.len) {
		write_file(dirfd, "pmem-perf-latency.dat", lat.s, lat.len, true);
		write_file(dirfd, "pmem-perf-bandwidth.dat", bw.s, bw.len, true);
	}
	sb_free(&lat);
	sb_free(&bw);
	json_decref(model);
	json_decref(phases);
}

/* ------------------------------------------------------------- summary */

int judge(const char *dir, const char *golden_dir)
{
	struct plan p;
	int dirfd = open_run(dir, &p);
	json_t *run = load_json(dirfd, "run.json", 1 << 20);
	json_t *collect = load_json(dirfd, "collect.json", 4 << 20);
	json_t *stats = load_json(dirfd, "pmem-stats.json", 64 << 20);
	json_t *s = json_object(), *entries = json_array(), *g;
	char tap_err[160], panic[256], iomem[128], started[32];
	size_t n;
	char *tap = read_tap(dirfd, &n, tap_err, sizeof(tap_err));
	struct tap_stream t;
	struct verdict guest;
	struct totals tot = {0};
	struct strbuf lines = {0}, results = {0};
	time_t t0;

	if (!collect) {
		/* the guest step never ran: the channels were not read */
		collect = json_pack("{s:s}", "files_error", "the guest's files were not collected");
	}
	tap_parse(tap, n, &p, &t);
	guest = guest_verdict(dirfd, run, &p, &t, collect, stats, tap_err, panic, sizeof(panic),
	                      iomem, sizeof(iomem));
	for (size_t i = 0; i < t.n; i++) {
		json_t *e = judge_entry(dirfd, golden_dir, run, &p, &t.e[i], &guest, panic, stats,
		                        collect, &lines);
		const char *st = jstr(e, "status");

		if (!strcmp(st, "pass"))
			tot.passed++;
		else if (!strcmp(st, "skip"))
			tot.skipped++;
		else if (!strcmp(st, "timeout"))
			tot.timeout++;
		else
			tot.failed++;
		sb_addf(&results, "  %-8s %-6s %-24s %s\n", st, jstr(e, "fs"), jstr(e, "name"),
		        jstr(e, "reason"));
		json_array_append_new(entries, e);
	}
	g = json_object_get(run, "guest");
	t0 = (time_t)jint(run, "started", 0);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t0));
	json_object_set_new(s, "run_id", json_string(jstr(run, "run_id")));
	json_object_set_new(s, "started", json_string(started));
	json_object_set_new(s, "wall_seconds",
	                    json_integer(jint(run, "ended", 0) - jint(run, "started", 0)));
	json_object_set_new(s, "qemu_seconds", jround(jnum(g, "seconds"), 2));
	json_object_set_new(s, "qemu_cpu_seconds", jround(jnum(g, "cpu_seconds"), 2));
	json_object_set_new(s, "kernel", json_string(jstr(run, "kernel")));
	json_object_set_new(s, "kernel_variant", json_string(jstr(run, "kernel_variant")));
	json_object_set_new(s, "kernel_release",
	                    jtext(t.have_guest ? kept_get(&t.guest, "kernel") : "unknown"));
	json_object_set_new(s, "fs", json_deep_copy(json_object_get(run, "fs")));
	json_object_set_new(s, "dax_requested",
	                    json_boolean(json_is_true(json_object_get(run, "dax"))));
	json_object_set_new(s, "qemu_version", json_string(jstr(run, "qemu_version")));
	json_object_set_new(s, "cpu_model", json_string(jstr(run, "cpu_model")));
	json_object_set_new(
	    s, "cpu_flush_instructions",
	    jtext(t.have_guest && kept_get(&t.guest, "flush") ? kept_get(&t.guest, "flush") : ""));
	json_object_set_new(
	    s, "pmem_kind",
	    json_string(*jstr(run, "pmem_kind") ? jstr(run, "pmem_kind") : "nvdimm"));
	json_object_set_new(
	    s, "pmem_mode",
	    json_string(*jstr(run, "pmem_mode") ? jstr(run, "pmem_mode") : "fsdax"));
	json_object_set_new(s, "persist", json_string(jstr(run, "persist")));
	json_object_set_new(s, "nvdimm_persistence", json_string(jstr(run, "nvdimm_persistence")));
	json_object_set_new(s, "guest_persistence_domain",
	                    jtext(t.have_guest ? kept_get(&t.guest, "persistence_domain") : ""));
	json_object_set_new(s, "guest_dax_write_cache",
	                    jtext(t.have_guest ? kept_get(&t.guest, "write_cache") : ""));
	json_object_set_new(s, "plugin", json_string(p.plugin));
	json_object_set_new(s, "plugin_watch_from",
	                    json_string(strcmp(p.plugin, "off") ? jstr(run, "watch_from") : ""));
	json_object_set_new(s, "backend", json_string(jstr(run, "backend")));
	json_object_set_new(s, "pmem_window",
	                    json_pack("{s:s, s:I, s:o}", "base", jstr(run, "pmem_base"), "size",
	                              (json_int_t)p.pmem_bytes, "guest_iomem", jtext(iomem)));
	json_object_set_new(s, "pmem_stats",
	                    json_string(exists(dirfd, "pmem-stats.json") ? "pmem-stats.json" : ""));
	json_object_set_new(s, "pmem_trace",
	                    json_string(exists(dirfd, "pmem-trace.bin") ? "pmem-trace.bin" : ""));
	if (jstr(run, "latency")[0]) {
		const json_t *lj = json_object_get(stats, "latency");
		double stalled = jnum(lj, "stalled_ns") / 1e9, qs = jnum(g, "seconds");
		double share = qs > 0 ? stalled / (qs * p.cpus) : 0;

		json_object_set_new(
		    s, "latency",
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "spec", jstr(run, "latency"),
		              "mode", jstr(run, "latency_mode"), "model",
		              exists(dirfd, "pmem-model.json") ? "pmem-model.json" : "", "perf",
		              exists(dirfd, "pmem-perf.json") ? "pmem-perf.json" : "", "plot",
		              exists(dirfd, "pmem-perf.svg") ? "pmem-perf.svg" : "",
		              "stalled_vcpu_seconds", jround(stalled, 2), "stalled_share",
		              jround(share, 3)));
		sb_addf(&lines, "  latency model: %s (%s)%s%s\n", jstr(run, "latency"),
		        jstr(run, "latency_mode"),
		        exists(dirfd, "pmem-model.json") ? ", modelled windows in pmem-model.json"
		                                         : "",
		        exists(dirfd, "pmem-perf.svg") ? ", plot pmem-perf.svg" : "");
		if (!strcmp(jstr(run, "latency_mode"), "stall"))
			sb_addf(&lines,
			        "  stalls: %.2f vCPU-seconds, %.1f%% of the vCPUs' wall time (%u x "
			        "%.2f s)\n",
			        stalled, share * 100, p.cpus, qs);
	}
	json_object_set_new(s, "cpus", json_integer(p.cpus));
	if (json_is_object(json_object_get(run, "record")))
		json_object_set(s, "record", json_object_get(run, "record"));
	if (json_is_object(json_object_get(run, "replay")))
		json_object_set(s, "replay", json_object_get(run, "replay"));
	json_object_set_new(s, "pmem_size", json_string(jstr(run, "pmem_size")));
	json_object_set_new(s, "image", json_string(jstr(run, "image")));
	json_object_set_new(s, "image_boots",
	                    t.image_boots >= 0 ? json_integer(t.image_boots) : json_null());
	json_object_set_new(s, "guest_status", json_string(guest.status));
	json_object_set_new(s, "guest_reason", jtext(guest.reason));
	json_object_set_new(s, "scenarios", entries);
	json_object_set_new(s, "totals",
	                    json_pack("{s:i, s:i, s:i, s:i}", "passed", tot.passed, "failed",
	                              tot.failed, "skipped", tot.skipped, "timeout", tot.timeout));

	char *out = json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));

	if (!out || write_file(dirfd, "summary.json", out, strlen(out), true) != 0) {
		fprintf(stderr, "daxlab-collect: cannot write %s/summary.json: %s\n", dir,
		        strerror(errno));
		exit(2);
	}
	free(out);
	/* the summary for the terminal: every string in it is cleaned */
	fputs(lines.s ? lines.s : "", stdout);
	printf("\ndaxlab run %s: %u passed, %u failed, %u skipped, %u timeout (guest %s, %lld s)\n",
	       jstr(run, "run_id"), tot.passed, tot.failed, tot.skipped, tot.timeout, guest.status,
	       jint(run, "ended", 0) - jint(run, "started", 0));
	fputs(results.s ? results.s : "", stdout);
	if (guest.reason[0]) {
		char *c = text_clean(guest.reason, strlen(guest.reason), false);

		printf("  guest: %s\n", c);
		free(c);
	}
	int rc = tot.failed + tot.timeout == 0 && !strcmp(guest.status, "completed") ? 0 : 1;

	sb_free(&lines);
	sb_free(&results);
	tap_free(&t);
	free(tap);
	json_decref(s);
	json_decref(run);
	json_decref(collect);
	json_decref(stats);
	close(dirfd);
	return rc;
}
