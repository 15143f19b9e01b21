/*
 * timeline.c - a race hit's time line: the scenario's witness, the fs_dax
 * events (guest ftrace, trace_clock=mono) and the plugin's pmem events
 * (host clock, mapped to the guest's through the hit marker, which carries
 * the guest time) within TIMELINE_SPAN_MS of the hit, in guest-time order.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect.h"
#include "pmem-trace.h"
#include "timeline.h"

#define TIMELINE_SPAN_MS 20.0
#define TIMELINE_MAX_EVENTS 20000

struct event {
	double ms;
	char *text;
};

static int by_time(const void *a, const void *b)
{
	const struct event *x = a, *y = b;

	return (x->ms > y->ms) - (x->ms < y->ms);
}

/* "guest_monotonic_ns: N" of a witness. */
static bool witness_ns(const char *w, uint64_t *ns)
{
	const char *p = strstr(w, "\nguest_monotonic_ns: ");
	char num[24];
	size_t n = 0;

	if (!p)
		return false;
	p += 21;
	while (p[n] >= '0' && p[n] <= '9' && n < sizeof(num) - 1)
		n++;
	memcpy(num, p, n);
	num[n] = 0;
	return (p[n] == '\n' || p[n] == 0) && parse_u64(num, ns);
}

static void add(struct event **v, size_t *n, double ms, char *text)
{
	struct event *nv;

	if (*n >= TIMELINE_MAX_EVENTS) {
		free(text);
		return;
	}
	nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv) {
		free(text);
		return;
	}
	*v = nv;
	nv[*n].ms = ms;
	nv[(*n)++].text = text;
}

/* fs_dax lines "...  SECONDS.FRACTION: event..." within the span. */
static void fs_dax_events(const char *trace, uint64_t hit_ns, struct event **v, size_t *n)
{
	for (const char *line = trace; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char *copy = strndup(line, len);

		line = nl ? nl + 1 : NULL;
		if (!copy)
			return;
		/* the first " D+.D+: " in the line is the time stamp */
		for (char *p = copy; (p = strchr(p, ' ')); p++) {
			char *q = p + 1, *dot;
			uint64_t sec, frac = 0, scale = 1;

			if (*q < '0' || *q > '9')
				continue;
			dot = q;
			while (*dot >= '0' && *dot <= '9')
				dot++;
			if (*dot != '.')
				continue;
			char *f = dot + 1;
			unsigned nd = 0;

			while (f[nd] >= '0' && f[nd] <= '9' && nd < 9)
				frac = frac * 10 + (uint64_t)(f[nd] - '0'), scale *= 10, nd++;
			if (nd == 0 || f[nd] != ':' || f[nd + 1] != ' ')
				continue;
			*dot = 0;
			if (!parse_u64(q, &sec) || sec > 100000000)
				break;
			double ms = (double)sec * 1000 + (double)frac * 1000 / (double)scale -
			            (double)hit_ns / 1e6;

			*dot = '.';
			if (ms >= -TIMELINE_SPAN_MS && ms <= TIMELINE_SPAN_MS) {
				char *clean = text_clean(copy, strlen(copy), false);
				struct strbuf b = {0};

				sb_addf(&b, "%+12.3f fs_dax %s", ms, clean);
				free(clean);
				add(v, n, ms, b.s);
			}
			break;
		}
		free(copy);
	}
}

/* The plugin's trace: the hit marker maps host time onto guest time. Read
 * twice as a stream (a trace can be gigabytes): the marker, then the span. */
static void pmem_events(FILE *f, uint64_t hit_ns, struct event **v, size_t *n)
{
	struct pmem_trace_rec r;
	uint64_t base, size;
	int64_t shift = 0;
	bool found = false;

	if (pmem_trace_open(f, &base, &size) != 0)
		return;
	while (!found && pmem_trace_next(f, &r) == 1)
		if (r.type == TR_HIT && r.off == hit_ns) {
			shift = (int64_t)(r.host_ns - hit_ns);
			found = true;
		}
	if (!found || fseek(f, 0, SEEK_SET) != 0 || pmem_trace_open(f, &base, &size) != 0)
		return;
	while (pmem_trace_next(f, &r) == 1) {
		double ms = ((double)r.host_ns - (double)shift - (double)hit_ns) / 1e6;
		struct strbuf b = {0};

		if (ms < -TIMELINE_SPAN_MS || ms > TIMELINE_SPAN_MS)
			continue;
		sb_addf(&b, "%+12.3f pmem   cpu%u %s off=", ms, r.cpu, pmem_trace_names[r.type]);
		if (r.off != PMEM_TRACE_NO_ADDR)
			sb_addf(&b, "%" PRIu64, r.off);
		sb_addf(&b, " size=%u", r.size);
		add(v, n, ms, b.s);
	}
}

int timeline_write(int dirfd, const char *witness_name, const char *out_name,
                   const char *fs_dax_name, const char *scenario)
{
	size_t wlen, tlen = 0;
	char *w = read_capped(dirfd, witness_name, 64 << 10, &wlen), *trace;
	int pfd;
	struct event *ev = NULL;
	size_t nev = 0;
	uint64_t hit_ns;
	struct strbuf out = {0};
	int rc;

	if (!w)
		return -1;
	if (!witness_ns(w, &hit_ns)) {
		free(w);
		return 0; /* a witness without its time: no time line */
	}
	trace = read_capped(dirfd, fs_dax_name, 8 << 20, &tlen);
	if (trace)
		fs_dax_events(trace, hit_ns, &ev, &nev);
	pfd = openat(dirfd, "pmem-trace.bin", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd >= 0) {
		FILE *pf = fdopen(pfd, "rb");

		if (pf) {
			pmem_events(pf, hit_ns, &ev, &nev);
			fclose(pf);
		} else {
			close(pfd);
		}
	}
	if (nev)
		qsort(ev, nev, sizeof(*ev), by_time);

	char *cw = text_clean(w, wlen, true);
	const char *hit = strstr(cw, "\nhit: ");
	unsigned hitno = hit ? (unsigned)strtoul(hit + 6, NULL, 10) : 0;

	sb_addf(&out, "# time line of %s hit %u: ms from the hit (guest CLOCK_MONOTONIC)\n",
	        scenario, hitno);
	sb_addf(&out, "# sources: fs_dax = guest ftrace; pmem = daxlab-pmem trace (run.sh "
	              "--trace; host clock mapped through the hit marker)\n");
	for (char *line = cw, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		sb_addf(&out, "# witness: %.*s\n", (int)(nl ? nl - line : (long)strlen(line)),
		        line);
	}
	for (size_t i = 0; i < nev; i++) {
		sb_addf(&out, "%s\n", ev[i].text);
		free(ev[i].text);
	}
	rc = write_file(dirfd, out_name, out.s, out.len, true);
	sb_free(&out);
	free(ev);
	free(cw);
	free(w);
	free(trace);
	return rc;
}
