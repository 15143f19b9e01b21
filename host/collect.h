/*
 * collect.h - the host's reading of a run: what run.sh planned (run.json),
 * what the guest said on its TAP channel (tap.txt), what it sent on its
 * files channel (guest-files.raw), and the verdicts. One parser per input
 * format, each a plain C unit that takes bytes and returns a structure or
 * an error, so that each can be fuzzed and unit-tested without a guest.
 * The grammar itself is protocol/daxlab-protocol.h.
 */
#ifndef DAXLAB_COLLECT_H
#define DAXLAB_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daxlab-protocol.h"

/* ------------------------------------------------------------- text.c */

/* A growing byte string. */
struct strbuf {
	char *s;
	size_t len, cap;
};
void sb_add(struct strbuf *b, const char *s, size_t n);
void sb_addf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(struct strbuf *b);

/*
 * @s (@n bytes) as a NUL-terminated string fit for JSON, HTML and a
 * terminal: valid UTF-8 kept, every other byte and every control character
 * but (if @keep_newlines) newline and tab replaced by '?'. Caller frees.
 */
char *text_clean(const char *s, size_t n, bool keep_newlines);
/* The same in place for a plain ASCII field: non-printables become '?'. */
void text_ascii(char *s);
/* @s HTML-escaped onto @f (after text_clean). */
void html_put(FILE *f, const char *s);
void html_put_n(FILE *f, const char *s, size_t n);

/*
 * Read @name under @dirfd (not following a symlink at the last component)
 * into a NUL-terminated buffer; at most @cap bytes. Returns NULL with errno
 * set (EFBIG when the file is larger than @cap). Caller frees.
 */
char *read_capped(int dirfd, const char *name, size_t cap, size_t *len);
/* Write @n bytes to a new file @name under @dirfd (0600, O_EXCL unless @replace). */
int write_file(int dirfd, const char *name, const char *data, size_t n, bool replace);

/* @fmt into @err (@errlen bytes); returns -1, for "return errorf(...)". */
int errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Strict number parsing: the whole string. */
bool parse_u64(const char *s, uint64_t *out);
bool parse_double(const char *s, double *out);

/* ------------------------------------------------------------- plan.c */

#define PLAN_MAX_SCENARIOS 64
#define PLAN_MAX_FS 3

struct plan_scenario {
	char name[DAXLAB_CAP_NAME + 1];
	char bin[DAXLAB_CAP_NAME + 8]; /* NNN-name; "000-payload" for --exec */
};

/* What run.sh planned, and what happened on the host (run.json). */
struct plan {
	struct plan_scenario scen[PLAN_MAX_SCENARIOS];
	unsigned nscen;
	char fs[PLAN_MAX_FS][8];
	unsigned nfs;
	char plugin[16]; /* persist, counters, off */
	char crash_check[DAXLAB_CAP_NAME + 1];
	uint64_t pmem_base, pmem_bytes;
	unsigned cpus;
};

/*
 * Parse run.json (@json, @n bytes) into @p. Returns 0, or -1 with the
 * problem in @err. The host wrote it, but it is checked all the same: the
 * names it lists go into file names.
 */
int plan_parse(const char *json, size_t n, struct plan *p, char *err, size_t errlen);
/* Index of scenario @name in the plan, or -1. */
int plan_scenario(const struct plan *p, const char *name);
bool plan_has_fs(const struct plan *p, const char *fs);

/* ------------------------------------------------------- tap-stream.c */

/* A daxlab line kept after parsing (copies of its fields). */
struct kept_line {
	const struct daxlab_line_kind *kind;
	unsigned n;
	char *key[DAXLAB_CAP_FIELDS], *value[DAXLAB_CAP_FIELDS];
};
const char *kept_get(const struct kept_line *l, const char *key);

/* One (scenario, fs) of the plan, as the guest reported it. */
struct tap_entry {
	unsigned scen, fs;       /* indexes into the plan */
	bool subtest;            /* "# Subtest:" seen: the scenario started */
	struct strbuf sub;       /* its lines, the indent taken off */
	struct kept_line *lines; /* the daxlab lines among them */
	size_t nlines;
	struct kept_line *widen; /* top-level daxlab-widen lines for it */
	size_t nwiden;
	bool result; /* its daxlab-result line */
	char status[8];
	bool dax;
	double duration;
	unsigned exit_code;
	char reason[DAXLAB_CAP_TEXT + 1];
	bool ok_line; /* the "ok N" / "not ok N" line that closes it */
};

struct tap_stream {
	struct tap_entry *e; /* nfs x nscen, in the guest's order */
	size_t n;
	struct kept_line guest; /* daxlab-guest */
	bool have_guest;
	long image_boots; /* daxlab-image, or -1 */
	bool done;        /* daxlab-done */
	char bail[DAXLAB_CAP_TEXT + 1];
	char error[320]; /* the first thing that could not be parsed; "" if none */
	unsigned lines;
};

/*
 * Parse the TAP channel @buf (@n bytes) against plan @p. Never fails as a
 * call: what cannot be parsed is in t->error, and entries up to there are
 * filled. A last line without a newline is ignored when the stream has no
 * daxlab-done (the guest stopped mid-line).
 */
void tap_parse(const char *buf, size_t n, const struct plan *p, struct tap_stream *t);
void tap_free(struct tap_stream *t);

/*
 * A recovery guest's stream: its daxlab-recover lines (at most @max) into
 * @out. Returns how many, or -1 with @err.
 */
int recovery_parse(const char *buf, size_t n, struct kept_line *out, size_t max, char *err,
                   size_t errlen);
void recovery_free(struct kept_line *v, size_t n);

/* ---------------------------------------------------- files-channel.c */

/*
 * Split the files channel @buf (@n bytes) into files under @dirfd, each
 * name checked against the protocol and the plan, each size against its
 * cap, none written twice, nothing outside @dirfd. Returns the number of
 * files written, or -1 with the problem in @err (files written before it
 * stay). A frame cut off at the end (the guest stopped) is dropped, and
 * @truncated set.
 */
long files_split(const char *buf, size_t n, int dirfd, const struct plan *p, bool *truncated,
                 char *err, size_t errlen);

#endif
