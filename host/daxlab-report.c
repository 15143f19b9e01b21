/*
 * daxlab-report - RUN_DIR/report.html: one self-contained page (no
 * network, no scripts) from a run directory (summary.json and the files
 * next to it) or a campaign directory (campaign.json).
 *
 *   daxlab-report RUN_DIR
 *
 * Every string and file excerpt on the page is HTML-escaped after its
 * bytes are cleaned (text.c): the guest wrote most of them. The one thing
 * inlined as markup is the latency plot, which the host drew with gnuplot
 * from numbers the collector checked, and only when it holds no script.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"

static const char *style =
    "<style>\n"
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\n"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid "
    "#ccc;padding-bottom:4px;margin-top:28px}\n"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid "
    "#ccc;padding:3px 8px;text-align:left;vertical-align:top}\n"
    "th{background:#f2f2f2}.pass{background:#dff0d8}.fail,.timeout{background:#f2dede}.skip{"
    "background:#fcf8e3}\n"
    "pre{background:#f7f7f7;border:1px solid "
    "#ddd;padding:6px;overflow-x:auto;font-size:12px;max-height:420px}\n"
    "details{margin:6px 0}summary{cursor:pointer;font-weight:600}.facts "
    "td:first-child{font-weight:600}\n"
    ".plot svg{max-width:100%;height:auto}\n"
    "</style>";

static int dirfd = -1;

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* A JSON value as text (strings bare, numbers as numbers). */
static void put_value(FILE *f, const json_t *v)
{
	char *s;

	if (json_is_string(v)) {
		html_put(f, json_string_value(v));
		return;
	}
	s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(10));
	if (s)
		html_put(f, s);
	free(s);
}

/* "key: value, ..." of a flat object. */
static void put_object(FILE *f, const json_t *o)
{
	const char *k;
	json_t *v;
	bool first = true;

	json_object_foreach((json_t *)o, k, v)
	{
		if (json_is_object(v) || json_is_array(v))
			continue;
		fputs(first ? "" : ", ", f);
		html_put(f, k);
		fputs(": ", f);
		put_value(f, v);
		first = false;
	}
}

static json_t *load(const char *name)
{
	size_t n;
	char *s = read_capped(dirfd, name, 64 << 20, &n);
	json_t *j = s ? json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL) : NULL;

	free(s);
	return j;
}

/* A safe relative name from a JSON field (no "..", not absolute). */
static bool rel_ok(const char *name)
{
	return name[0] && name[0] != '/' && !strstr(name, "..");
}

/* <pre> of at most @max lines of @name, with a note when cut. */
static void pre(FILE *f, const char *name, unsigned max)
{
	size_t n;
	char *s = rel_ok(name) ? read_capped(dirfd, name, 16 << 20, &n) : NULL;
	unsigned lines = 0, total = 0;
	const char *cut = NULL;

	if (!s || !n) {
		free(s);
		return;
	}
	for (const char *p = s; p < s + n; p++)
		if (*p == '\n' && ++total == max)
			cut = p + 1;
	if (n && s[n - 1] != '\n')
		total++;
	fputs("<pre>", f);
	html_put_n(f, s, cut ? (size_t)(cut - s) : n);
	lines = cut ? max : total;
	if (total > lines) {
		fprintf(f, "... (%u more lines in ", total - lines);
		html_put(f, name);
		fputs(")\n", f);
	}
	fputs("</pre>\n", f);
	free(s);
}

static bool exists(const char *name)
{
	struct stat st;

	return rel_ok(name) && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

/* Whether @s has an event-handler attribute (" onload=", " onclick=", ...). */
static bool has_handler(const char *s)
{
	for (const char *p = s; (p = strcasestr(p, " on")); p += 3) {
		const char *q = p + 3;

		while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))
			q++;
		while (*q == ' ')
			q++;
		if (q > p + 3 && *q == '=')
			return true;
	}
	return false;
}

/* The latency plot, inlined only if it is plain SVG without script. */
static void put_plot(FILE *f)
{
	size_t n;
	char *svg = read_capped(dirfd, "pmem-perf.svg", 4 << 20, &n), *start;

	if (!svg)
		return;
	start = strstr(svg, "<svg");
	if (!start || memchr(svg, 0, n) || strcasestr(svg, "<script") ||
	    strcasestr(svg, "javascript:") || has_handler(svg) || strcasestr(svg, "<foreign")) {
		fputs("<p>(pmem-perf.svg is not a plain plot; not shown)</p>\n", f);
	} else {
		fputs("<div class=\"plot\">", f);
		fputs(start, f);
		fputs("</div>\n", f);
	}
	free(svg);
}

/*
 * The page's own markup with values put in: @fmt is written as it is but
 * for "%s" (a string: cleaned and escaped), "%j" (a JSON value: a string
 * escaped, any other value as JSON), "%o" (a flat JSON object as "key:
 * value, ...") and "%u" (an unsigned). Nothing from a run reaches the page
 * but through these.
 */
static void hprintf(FILE *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	for (const char *p = fmt; *p; p++) {
		if (*p != '%' || !p[1]) {
			fputc(*p, f);
			continue;
		}
		switch (*++p) {
		case 's':
			html_put(f, va_arg(ap, const char *));
			break;
		case 'j':
			put_value(f, va_arg(ap, const json_t *));
			break;
		case 'o':
			put_object(f, va_arg(ap, const json_t *));
			break;
		case 'u':
			fprintf(f, "%u", va_arg(ap, unsigned));
			break;
		default:
			fputc(*p, f);
		}
	}
	va_end(ap);
}

static void head(FILE *f, const char *what, const char *id)
{
	hprintf(f, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
	hprintf(f, "<title>daxlab %s %s</title>", what, id);
	fputs(style, f);
	hprintf(f, "</head><body>\n<h1>daxlab %s %s</h1>\n", what, id);
}

static void row(FILE *f, const char *k, const json_t *v)
{
	hprintf(f, "<tr><td>%s</td><td>%j</td></tr>\n", k, v);
}

/* --------------------------------------------------------------- campaign */

/* Append @s to the array @a unless it is there; its index. */
static size_t index_of(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		if (!strcmp(json_string_value(v), s))
			return i;
	}
	json_array_append_new(a, json_string(s));
	return json_array_size(a) - 1;
}

/* Scenario x kernel x filesystem over a campaign's jobs: passes out of runs. */
static void matrix(FILE *f, const json_t *c)
{
	json_t *rows = json_array(), *cols = json_array(), *cells = json_object(), *job, *r;
	size_t i, k;
	char key[160];

	json_array_foreach(json_object_get(c, "job_list"), i, job)
	{
		json_array_foreach(json_object_get(job, "results"), k, r)
		{
			char col[96];
			json_t *cell;

			snprintf(col, sizeof(col), "%s\t%s", jstr(job, "kernel"), jstr(r, "fs"));
			snprintf(key, sizeof(key), "%zu %zu", index_of(rows, jstr(r, "name")),
			         index_of(cols, col));
			cell = json_object_get(cells, key);
			if (!cell) {
				cell = json_pack("{s:i, s:i}", "runs", 0, "passes", 0);
				json_object_set_new(cells, key, cell);
			}
			json_object_set_new(
			    cell, "runs",
			    json_integer(json_integer_value(json_object_get(cell, "runs")) + 1));
			if (!strcmp(jstr(r, "status"), "pass"))
				json_object_set_new(
				    cell, "passes",
				    json_integer(
				        json_integer_value(json_object_get(cell, "passes")) + 1));
		}
	}
	if (json_array_size(rows)) {
		fputs("<h2>Scenarios by kernel and filesystem</h2><table><tr><th>scenario</th>", f);
		json_array_foreach(cols, k, r)
		{
			const char *col = json_string_value(r), *tab = strchr(col, '\t');
			char kernel[96];

			snprintf(kernel, sizeof(kernel), "%.*s", (int)(tab - col), col);
			hprintf(f, "<th>%s<br>%s</th>", kernel, tab + 1);
		}
		fputs("</tr>\n", f);
		json_array_foreach(rows, i, r)
		{
			hprintf(f, "<tr><td>%s</td>", json_string_value(r));
			for (k = 0; k < json_array_size(cols); k++) {
				const json_t *cell;
				json_int_t runs, passes;

				snprintf(key, sizeof(key), "%zu %zu", i, k);
				cell = json_object_get(cells, key);
				if (!cell) {
					fputs("<td>-</td>", f);
					continue;
				}
				runs = json_integer_value(json_object_get(cell, "runs"));
				passes = json_integer_value(json_object_get(cell, "passes"));
				hprintf(f, "<td class=\"%s\">%j/%j</td>",
				        passes == runs ? "pass" : "fail",
				        json_object_get(cell, "passes"),
				        json_object_get(cell, "runs"));
			}
			fputs("</tr>\n", f);
		}
		fputs("</table>\n", f);
	}
	json_decref(rows);
	json_decref(cols);
	json_decref(cells);
}

static void campaign(FILE *f, json_t *c)
{
	size_t i;
	json_t *job;

	head(f, "campaign", jstr(c, "campaign_id"));
	fputs("<table class=\"facts\">\n", f);
	row(f, "file", json_object_get(c, "file"));
	row(f, "jobs at once", json_object_get(c, "jobs"));
	row(f, "where", json_object_get(c, "uris"));
	row(f, "runs", json_object_get(c, "runs"));
	row(f, "passed", json_object_get(c, "passed"));
	row(f, "failed", json_object_get(c, "failed"));
	row(f, "wall seconds", json_object_get(c, "wall_seconds"));
	fputs("</table>\n<h2>Summary</h2><table><tr><th>job</th><th>where</th><th>kernel</th>"
	      "<th>arguments</th><th>result</th><th>scenarios</th><th>run directory</th></tr>\n",
	      f);
	json_array_foreach(json_object_get(c, "job_list"), i, job)
	{
		const json_t *rc = json_object_get(job, "exit");
		bool ok = json_integer_value(rc) == 0;

		hprintf(
		    f,
		    "<tr "
		    "class=\"%s\"><td>%j</td><td>%s</td><td>%s</td><td><code>%s</code></td><td>",
		    ok ? "pass" : "fail", json_object_get(job, "job"), jstr(job, "uri"),
		    jstr(job, "kernel"), jstr(job, "args"));
		if (ok)
			fputs("pass", f);
		else
			hprintf(f, "fail (exit %j)", rc);
		hprintf(f, "</td><td>%o</td><td>%s</td></tr>\n", json_object_get(job, "totals"),
		        jstr(job, "run_dir"));
	}
	fputs("</table>\n", f);
	matrix(f, c);
	fputs("<h2>Scenarios over all runs</h2>\n", f);
	pre(f, "scenarios.txt", 400);
	fputs("</body></html>\n", f);
}

/* -------------------------------------------------------------------- run */
static void scenario(FILE *f, const json_t *s)
{
	const char *name = jstr(s, "name"), *fs = jstr(s, "fs"), *st = jstr(s, "status");
	char tap[200], file[220];
	const json_t *camp = json_object_get(s, "campaign"),
	             *crash = json_object_get(s, "crash_check");

	hprintf(f, "<details id=\"s-%s-%s\"%s><summary>%s on %s: %s</summary>\n", name, fs,
	        strcmp(st, "pass") ? " open" : "", name, fs, st);
	snprintf(tap, sizeof(tap), "expect/%s-%s.out", name, fs);
	snprintf(file, sizeof(file), "%s.bad", tap);
	fputs("<p>TAP</p>\n", f);
	pre(f, exists(file) ? file : tap, 60);
	snprintf(file, sizeof(file), "expect/%s-%s.diff", name, fs);
	if (exists(file)) {
		fputs("<p>difference to its golden output (scenarios/*.out)</p>\n", f);
		pre(f, file, 40);
	}
	snprintf(file, sizeof(file), "dmesg/%s-%s.txt", name, fs);
	if (exists(file)) {
		fputs("<p>kernel log during the scenario</p>\n", f);
		pre(f, file, 40);
	}
	if (camp)
		hprintf(f, "<p>race campaign: %o</p>\n", camp);
	if (crash) {
		hprintf(f, "<p>crash check: %o</p>\n", crash);
		pre(f, jstr(crash, "report"), 40);
	}
	for (unsigned k = 1; k <= DAXLAB_WITNESS_FILES; k++) {
		snprintf(file, sizeof(file), "hits/%s-%s/hit-%u.txt", name, fs, k);
		if (!exists(file))
			continue;
		hprintf(f, "<p>race hit %u</p>\n", k);
		pre(f, file, 20);
		snprintf(file, sizeof(file), "hits/%s-%s/timeline-%u.txt", name, fs, k);
		if (exists(file)) {
			hprintf(f,
			        "<p>time line around hit %u: fs_dax events and pmem flush/fence "
			        "events</p>\n",
			        k);
			pre(f, file, 80);
		}
	}
	fputs("</details>\n", f);
}

static void run(FILE *f, json_t *s)
{
	static const char *const facts[] = {"started",
	                                    "kernel",
	                                    "qemu_version",
	                                    "cpu_model",
	                                    "cpu_flush_instructions",
	                                    "pmem_kind",
	                                    "pmem_mode",
	                                    "persist",
	                                    "guest_persistence_domain",
	                                    "plugin",
	                                    "guest_status",
	                                    "guest_reason",
	                                    NULL};
	json_t *stats = load("pmem-stats.json"), *model = load("pmem-model.json"), *v;
	size_t i;
	const char *k;

	head(f, "run", jstr(s, "run_id"));
	fputs("<table class=\"facts\">\n", f);
	for (const char *const *p = facts; *p; p++) {
		char label[64];

		snprintf(label, sizeof(label), "%s", *p);
		for (char *c = label; *c; c++)
			if (*c == '_')
				*c = ' ';
		row(f, label, json_object_get(s, *p));
	}
	fputs("<tr><td>filesystems</td><td>", f);
	json_array_foreach(json_object_get(s, "fs"), i, v) hprintf(f, i ? ", %j" : "%j", v);
	hprintf(f,
	        "</td></tr>\n<tr><td>QEMU time</td><td>%j s wall, %j s CPU; %j vCPUs, %j "
	        "NV-DIMM</td></tr>\n<tr><td>totals</td><td>%o</td></tr>\n</table>\n",
	        json_object_get(s, "qemu_seconds"), json_object_get(s, "qemu_cpu_seconds"),
	        json_object_get(s, "cpus"), json_object_get(s, "pmem_size"),
	        json_object_get(s, "totals"));

	fputs("<h2>Summary</h2><table><tr><th>scenario</th><th>fs</th><th>result</th><th>DAX</th>"
	      "<th>seconds</th><th>reason</th></tr>\n",
	      f);
	json_array_foreach(json_object_get(s, "scenarios"), i, v)
	{
		const char *st = jstr(v, "status"), *name = jstr(v, "name"), *fs = jstr(v, "fs");

		hprintf(
		    f,
		    "<tr class=\"%s\"><td><a href=\"#s-%s-%s\">%s</a></td><td>%s</td><td>%s</td>"
		    "<td>%j</td><td>%j</td><td>%s</td></tr>\n",
		    st, name, fs, name, fs, st, json_object_get(v, "dax"),
		    json_object_get(v, "duration"), jstr(v, "reason"));
	}
	fputs("</table>\n<h2>Scenarios</h2>\n", f);
	json_array_foreach(json_object_get(s, "scenarios"), i, v) scenario(f, v);

	if (stats) {
		fputs("<h2>NV-DIMM: persistence and "
		      "counters</h2><table><tr><th>counter</th><th>whole "
		      "run</th></tr>\n",
		      f);
		json_object_foreach(json_object_get(stats, "counters"), k, v) row(f, k, v);
		fputs("</table>\n", f);
		if (json_object_get(stats, "persistence"))
			hprintf(f, "<p>persistence model (%s): %o</p>\n", jstr(stats, "persist"),
			        json_object_get(stats, "persistence"));
	}
	if (model) {
		hprintf(f, "<h2>Latency and bandwidth model</h2>\n<p>%o</p>\n",
		        json_object_get(s, "latency"));
		put_plot(f);
		fputs("<table><tr><th>window</th><th>modelled ns</th><th>dram ns</th><th>loads</th>"
		      "<th>flushes</th><th>bytes read</th><th>bytes written</th></tr>\n",
		      f);
		json_array_foreach(json_object_get(model, "windows"), i, v)
		{
			hprintf(
			    f,
			    "<tr><td>%j</td><td>%j</td><td>%j</td><td>%j</td><td>%j</td><td>%j</td>"
			    "<td>%j</td></tr>\n",
			    json_object_get(v, "id"), json_object_get(v, "modelled_ns"),
			    json_object_get(v, "dram_ns"), json_object_get(v, "loads"),
			    json_object_get(v, "flushes"), json_object_get(v, "bytes_read"),
			    json_object_get(v, "bytes_written"));
		}
		fputs("</table>\n", f);
	}
	fputs("<h2>Files</h2><p>Everything above comes from the run directory: summary.json, "
	      "tap.txt, expect/, dmesg/, hits/, pmem-stats.json, pmem-model.json, "
	      "console.log.</p>\n</body></html>\n",
	      f);
	json_decref(stats);
	json_decref(model);
}

int main(int argc, char **argv)
{
	json_t *j;
	FILE *f;
	int fd;
	bool is_campaign;

	if (argc != 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(argc == 2 ? stdout : stderr,
		        "usage: daxlab-report RUN_DIR\n\n"
		        "Writes RUN_DIR/report.html from RUN_DIR/summary.json and the files next\n"
		        "to it, or, for a campaign directory, from RUN_DIR/campaign.json.\n");
		return argc == 2 ? 0 : 2;
	}
	dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, "daxlab-report: no such run directory: %s\n", argv[1]);
		return 2;
	}
	j = load("campaign.json");
	is_campaign = j != NULL;
	if (!j)
		j = load("summary.json");
	if (!j || !json_is_object(j)) {
		fprintf(stderr, "daxlab-report: %s has no readable summary.json or campaign.json\n",
		        argv[1]);
		return 2;
	}
	unlinkat(dirfd, "report.html.tmp", 0);
	fd = openat(dirfd, "report.html.tmp", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	            0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		fprintf(stderr, "daxlab-report: cannot write in %s: %s\n", argv[1],
		        strerror(errno));
		return 2;
	}
	if (is_campaign)
		campaign(f, j);
	else
		run(f, j);
	json_decref(j);
	if (fclose(f) != 0 || renameat(dirfd, "report.html.tmp", dirfd, "report.html") != 0) {
		fprintf(stderr, "daxlab-report: writing report.html failed: %s\n", strerror(errno));
		return 2;
	}
	close(dirfd);
	return 0;
}
