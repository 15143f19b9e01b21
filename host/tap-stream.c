/*
 * tap-stream.c - the guest's TAP channel, parsed against the plan.
 *
 * The agent's stream is TAP 13 with one test point per (scenario, fs) in
 * the plan's order (filesystems outer, scenarios inner, but a payload last,
 * after every other scenario on every filesystem): for each, an
 * optional "# Subtest: NAME FS" and its indented lines (the scenario's own
 * TAP; a payload's free text), its daxlab-widen lines, exactly one
 * daxlab-result line and the "ok N"/"not ok N" line that closes it; then
 * "# daxlab-done". A result out of that order, or twice, is a line that
 * cannot be parsed: the guest said something the agent does not say (a
 * payload writing to the TAP port itself), and the run fails on it.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "collect.h"

const char *kept_get(const struct kept_line *l, const char *key)
{
	for (unsigned i = 0; i < l->n; i++)
		if (!strcmp(l->key[i], key))
			return l->value[i];
	return NULL;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d) {
		fputs("daxlab: out of memory\n", stderr);
		exit(2);
	}
	return d;
}

static void keep(const struct daxlab_line *l, struct kept_line *k)
{
	k->kind = l->kind;
	k->n = l->nfields;
	for (unsigned i = 0; i < l->nfields; i++) {
		k->key[i] = xstrdup(l->field[i].key);
		k->value[i] = xstrdup(l->field[i].value);
	}
}

static void kept_free(struct kept_line *k)
{
	for (unsigned i = 0; i < k->n; i++) {
		free(k->key[i]);
		free(k->value[i]);
	}
	k->n = 0;
}

static struct kept_line *push(struct kept_line **v, size_t *n)
{
	struct kept_line *nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv) {
		fputs("daxlab: out of memory\n", stderr);
		exit(2);
	}
	*v = nv;
	memset(&nv[*n], 0, sizeof(nv[*n]));
	return &nv[(*n)++];
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

static bool digits(const char **p, unsigned max)
{
	unsigned n = 0;

	while (**p >= '0' && **p <= '9' && n <= max)
		(*p)++, n++;
	return n >= 1 && n <= max;
}

/* A line of a scenario's own TAP (kselftest style, from scenarios/lib/tap.c). */
static bool tap_line_ok(const char *s)
{
	const char *p = s;

	if (!printable(s))
		return false;
	if (!strcmp(s, "TAP version 13") || s[0] == '#')
		return true;
	if (!strncmp(s, "Bail out!", 9))
		return true;
	if (!strncmp(s, "1..", 3)) {
		p += 3;
		return digits(&p, 6) && (!*p || !strncmp(p, " # SKIP", 7));
	}
	if (!strncmp(p, "not ", 4))
		p += 4;
	if (strncmp(p, "ok ", 3))
		return false;
	p += 3;
	return digits(&p, 6) && (!*p || *p == ' ');
}

static void set_error(struct tap_stream *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_error(struct tap_stream *t, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	if (t->error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(t->error, sizeof(t->error), "tap.txt line %u: %s", t->lines, what);
}

struct state {
	const struct plan *p;
	size_t next;   /* the entry the stream is at */
	long open;     /* the entry whose subtest is open, or -1 */
	long awaiting; /* the entry whose result needs its ok line, or -1 */
};

static bool is_payload(const struct state *st, const struct tap_entry *e)
{
	return !strcmp(st->p->scen[e->scen].bin, "000-payload");
}

static const char *entry_name(const struct state *st, const struct tap_entry *e)
{
	return st->p->scen[e->scen].name;
}

static bool names_entry(const struct state *st, const struct tap_entry *e, const char *scen,
                        const char *fs)
{
	return !strcmp(entry_name(st, e), scen) && !strcmp(st->p->fs[e->fs], fs);
}

static void sub_line(struct tap_stream *t, struct state *st, char *s, size_t len)
{
	struct tap_entry *e = &t->e[st->open];
	struct daxlab_line l;
	char err[160];
	bool payload = is_payload(st, e);

	if (len > (payload ? DAXLAB_CAP_TEXT_LINE : DAXLAB_CAP_LINE)) {
		set_error(t, "a line of %s longer than its cap", entry_name(st, e));
		return;
	}
	sb_add(&e->sub, s, len);
	sb_add(&e->sub, "\n", 1);
	if (!strncmp(s, "# daxlab-", 9)) {
		if (daxlab_line_parse(s, &l, err, sizeof(err)) != 0)
			set_error(t, "%s", err);
		else if (!(l.kind->scope & DAXLAB_SUB))
			set_error(t, "%s inside a subtest", l.kind->tag);
		else
			keep(&l, push(&e->lines, &e->nlines));
		return;
	}
	if (!payload && !tap_line_ok(s))
		set_error(t, "not a TAP line in the subtest of %s", entry_name(st, e));
}

static void result_line(struct tap_stream *t, struct state *st, const struct daxlab_line *l)
{
	struct tap_entry *e;
	const char *scen = daxlab_line_get(l, "scenario"), *fs = daxlab_line_get(l, "fs");

	if (st->awaiting >= 0 || st->next >= t->n ||
	    !names_entry(st, e = &t->e[st->next], scen, fs) || e->result) {
		set_error(t, "a result for %s on %s out of order or twice (not the agent's)", scen,
		          fs);
		return;
	}
	e->result = true;
	snprintf(e->status, sizeof(e->status), "%s", daxlab_line_get(l, "status"));
	e->dax = !strcmp(daxlab_line_get(l, "dax"), "1");
	parse_double(daxlab_line_get(l, "duration"), &e->duration);
	e->exit_code = (unsigned)strtoul(daxlab_line_get(l, "exit"), NULL, 10);
	snprintf(e->reason, sizeof(e->reason), "%s",
	         daxlab_line_get(l, "reason") ? daxlab_line_get(l, "reason") : "");
	if (!strcmp(e->reason, "-"))
		e->reason[0] = 0;
	st->awaiting = (long)st->next;
}

static void ok_line(struct tap_stream *t, struct state *st, const char *s)
{
	struct tap_entry *e;
	char want[160];
	bool ok = !strncmp(s, "ok ", 3);
	size_t n;

	if (st->awaiting < 0) {
		set_error(t, "a test point without a daxlab-result before it");
		return;
	}
	e = &t->e[st->awaiting];
	n = (size_t)snprintf(want, sizeof(want), "%sok %ld - %s %s", ok ? "" : "not ",
	                     st->awaiting + 1, entry_name(st, e), st->p->fs[e->fs]);
	bool passed = !strcmp(e->status, "pass") || !strcmp(e->status, "skip");

	if (strncmp(s, want, n) || (s[n] && s[n] != ' ') || ok != passed || !printable(s)) {
		set_error(t, "test point %ld does not match its daxlab-result", st->awaiting + 1);
		return;
	}
	e->ok_line = true;
	st->awaiting = -1;
	st->next++;
}

static void top_daxlab_line(struct tap_stream *t, struct state *st, char *s)
{
	struct daxlab_line l;
	char err[160];

	if (daxlab_line_parse(s, &l, err, sizeof(err)) != 0) {
		set_error(t, "%s", err);
		return;
	}
	if (!(l.kind->scope & DAXLAB_TOP)) {
		set_error(t, "%s outside a subtest", l.kind->tag);
		return;
	}
	if (!strcmp(l.kind->tag, DAXLAB_TAG_RESULT)) {
		result_line(t, st, &l);
	} else if (!strcmp(l.kind->tag, DAXLAB_TAG_WIDEN)) {
		struct tap_entry *e = st->next < t->n ? &t->e[st->next] : NULL;

		if (!e || !e->subtest || e->result || st->awaiting >= 0 ||
		    !names_entry(st, e, daxlab_line_get(&l, "scenario"), daxlab_line_get(&l, "fs")))
			set_error(t, "a daxlab-widen line not after its scenario");
		else
			keep(&l, push(&e->widen, &e->nwiden));
	} else if (!strcmp(l.kind->tag, DAXLAB_TAG_GUEST)) {
		if (t->have_guest) {
			set_error(t, "daxlab-guest twice");
			return;
		}
		keep(&l, &t->guest);
		t->have_guest = true;
	} else if (!strcmp(l.kind->tag, DAXLAB_TAG_IMAGE)) {
		uint64_t boots;

		parse_u64(daxlab_line_get(&l, "boots"), &boots);
		t->image_boots = (long)boots;
	} else if (!strcmp(l.kind->tag, DAXLAB_TAG_DONE)) {
		if (st->awaiting >= 0)
			set_error(t, "daxlab-done before a test point");
		t->done = true;
	}
	/* DAXLAB_TAG_SHELL: nothing to keep */
}

static void top_line(struct tap_stream *t, struct state *st, char *s, size_t len)
{
	if (t->done || t->bail[0]) {
		set_error(t, "a line after the end of the stream");
		return;
	}
	if (len > DAXLAB_CAP_LINE) {
		set_error(t, "a line longer than %d bytes", DAXLAB_CAP_LINE);
		return;
	}
	if (!strncmp(s, "# daxlab-", 9)) {
		top_daxlab_line(t, st, s);
	} else if (!strncmp(s, "# Subtest: ", 11)) {
		char *name = s + 11, *fs = strchr(name, ' ');
		struct tap_entry *e = st->next < t->n ? &t->e[st->next] : NULL;

		if (fs)
			*fs++ = 0;
		if (!fs || st->awaiting >= 0 || !e || e->subtest || !names_entry(st, e, name, fs)) {
			set_error(t, "a subtest out of order or twice");
			return;
		}
		e->subtest = true;
		st->open = (long)st->next;
	} else if (!strncmp(s, "ok ", 3) || !strncmp(s, "not ok ", 7)) {
		ok_line(t, st, s);
	} else if (!strncmp(s, "Bail out!", 9) && daxlab_value_ok('T', s)) {
		snprintf(t->bail, sizeof(t->bail), "%s", s[9] == ' ' ? s + 10 : s + 9);
	} else {
		set_error(t, "cannot parse this line");
	}
}

void tap_parse(const char *buf, size_t n, const struct plan *p, struct tap_stream *t)
{
	struct state st = {.p = p, .open = -1, .awaiting = -1};
	/* a subtest's line: its four spaces of indent and a payload's longest */
	enum { RAW_LINE_MAX = DAXLAB_CAP_TEXT_LINE + 4 };
	char *line = malloc(RAW_LINE_MAX + 1);
	int payload = -1;
	size_t k = 0;
	size_t pos = 0;

	memset(t, 0, sizeof(*t));
	t->image_boots = -1;
	t->n = (size_t)p->nfs * p->nscen;
	t->e = calloc(t->n ? t->n : 1, sizeof(*t->e));
	if (!t->e || !line) {
		fputs("daxlab: out of memory\n", stderr);
		exit(2);
	}
	/* The agent's order: every scenario but the payload on each filesystem
	 * in turn, then the payload on each. */
	for (unsigned i = 0; i < p->nscen; i++)
		if (!strcmp(p->scen[i].bin, "000-payload"))
			payload = (int)i;
	for (unsigned f = 0; f < p->nfs; f++)
		for (unsigned i = 0; i < p->nscen; i++)
			if ((int)i != payload)
				t->e[k].fs = f, t->e[k++].scen = i;
	for (unsigned f = 0; payload >= 0 && f < p->nfs; f++)
		t->e[k].fs = f, t->e[k++].scen = (unsigned)payload;
	while (pos < n && !t->error[0]) {
		const char *nl = memchr(buf + pos, '\n', n - pos);
		size_t len = nl ? (size_t)(nl - (buf + pos)) : n - pos;

		t->lines++;
		if (!nl && !t->done)
			break; /* the guest stopped mid-line */
		if (!nl) {
			set_error(t, "no newline at the end");
			break;
		}
		if (len > RAW_LINE_MAX || memchr(buf + pos, 0, len)) {
			set_error(t, "a line too long or with a NUL byte");
			break;
		}
		memcpy(line, buf + pos, len);
		line[len] = 0;
		pos += len + 1;
		if (t->lines == 1) {
			if (strcmp(line, "TAP version 13"))
				set_error(t, "the stream does not start with \"TAP version 13\"");
			continue;
		}
		if (t->lines == 2) {
			char want[32];

			snprintf(want, sizeof(want), "1..%zu", t->n);
			if (strcmp(line, want))
				set_error(t, "the plan is not %s", want);
			continue;
		}
		if (!strncmp(line, "    ", 4) && st.open >= 0) {
			sub_line(t, &st, line + 4, len - 4);
			continue;
		}
		st.open = -1;
		top_line(t, &st, line, len);
	}
	free(line);
}

void tap_free(struct tap_stream *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct tap_entry *e = &t->e[i];

		sb_free(&e->sub);
		for (size_t j = 0; j < e->nlines; j++)
			kept_free(&e->lines[j]);
		for (size_t j = 0; j < e->nwiden; j++)
			kept_free(&e->widen[j]);
		free(e->lines);
		free(e->widen);
	}
	kept_free(&t->guest);
	free(t->e);
	memset(t, 0, sizeof(*t));
}

int recovery_parse(const char *buf, size_t n, struct kept_line *out, size_t max, char *err,
                   size_t errlen)
{
	char line[DAXLAB_CAP_LINE + 1];
	size_t pos = 0, lineno = 0;
	int count = 0;
	bool done = false;

	while (pos < n) {
		const char *nl = memchr(buf + pos, '\n', n - pos);
		size_t len = nl ? (size_t)(nl - (buf + pos)) : n - pos;
		struct daxlab_line l;
		char why[160] = "";

		lineno++;
		if (!nl)
			break; /* the guest stopped mid-line: the rest is unreported */
		if (len > DAXLAB_CAP_LINE || memchr(buf + pos, 0, len) || done) {
			snprintf(err, errlen, "line %zu: too long, a NUL byte, or after the end",
			         lineno);
			recovery_free(out, (size_t)count);
			return -1;
		}
		memcpy(line, buf + pos, len);
		line[len] = 0;
		pos += len + 1;
		if (lineno == 1 && !strcmp(line, "TAP version 13"))
			continue;
		if (daxlab_line_parse(line, &l, why, sizeof(why)) != 0 ||
		    !(l.kind->scope & DAXLAB_RECOVERY)) {
			snprintf(err, errlen, "line %zu: %s", lineno,
			         why[0] ? why : "not a recovery line");
			recovery_free(out, (size_t)count);
			return -1;
		}
		if (!strcmp(l.kind->tag, DAXLAB_TAG_DONE)) {
			done = true;
			continue;
		}
		if ((size_t)count >= max) {
			snprintf(err, errlen, "line %zu: more reports than states", lineno);
			recovery_free(out, (size_t)count);
			return -1;
		}
		memset(&out[count], 0, sizeof(out[count]));
		keep(&l, &out[count++]);
	}
	return count;
}

void recovery_free(struct kept_line *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kept_free(&v[i]);
}
