/*
 * perf-model.c - the NV-DIMM latency and bandwidth model.
 *
 * What it charges, per vCPU, in modelled picoseconds:
 *  - every guest instruction: insn (the base cost of the CPU's own work);
 *  - a load that misses the vCPU's cache: read (random) or read_seq (the
 *    stride detector saw the next or previous line of the last miss: a
 *    stream, whose misses the prefetcher keeps @prefetch in flight, so each
 *    costs read_seq / prefetch); plus any wait for the media;
 *  - a store: nothing at once (posted; the read-for-ownership is not
 *    modelled); the line is dirty in the cache model and reaches the DIMM
 *    when it is flushed or evicted;
 *  - CLFLUSH/CLFLUSHOPT/CLWB: flush to issue, and a dirty line's
 *    write-back, which completes write later (the persistence domain);
 *  - 64 bytes of non-temporal stores: nt, and a write-back per line;
 *  - a fence: fence, after waiting until every write-back issued by this
 *    vCPU has completed (the drain).
 * What makes an NV-DIMM unlike DRAM lives in the DIMM, shared by all vCPUs:
 *  - the media reads and writes whole units (256 bytes on Optane): a read
 *    miss reads its unit (the DIMM keeps the last unit read per vCPU, so a
 *    stream reads each unit once); a write-back lands in the
 *    write-combining buffer, where write-backs to the same unit merge; a
 *    unit evicted from the full buffer costs a media write of the whole
 *    unit, and a media read too if the buffer had not seen all of it
 *    (read-modify-write): so 64-byte random writes cost 4x the media
 *    bandwidth of 256-byte ones;
 *  - the media's read and write bandwidths: each unit occupies the read or
 *    write side for unit / bandwidth; a read miss waits while the read side
 *    is busy; write-backs are posted, and a vCPU waits only once the write
 *    side is more than eight units behind (the write pending queue).
 * Not modelled: the read-for-ownership of stores, memory-level
 * parallelism of random misses (they are serialised, as in a pointer
 * chase), interleaving over several DIMMs, CPU caches shared by vCPUs.
 */
#include "perf-model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE 64u
#define WPQ_UNITS 8u

/* One vCPU: its clock and what is in its cache. */
struct perf_cpu {
	uint64_t now;       /* modelled time, ps */
	uint64_t drain;     /* when every write-back issued so far has completed */
	uint64_t last_miss; /* line + 1 of the last read miss (the stride detector) */
	uint64_t last_unit; /* unit + 1 last read from the media for this vCPU */
	uint64_t nt_line;   /* line + 1 being filled by non-temporal stores */
	uint64_t nt_frac;   /* nt cost not charged yet, in ps/64 */
	uint64_t *cache;    /* direct-mapped: (line + 1) << 1 | dirty, 0 = empty */
};

/* The DIMM: its write-combining buffer and when its media is next free. */
struct perf_dimm {
	uint64_t read_free, write_free;
	uint64_t *wc_tag;  /* unit + 1, 0 = empty */
	uint64_t *wc_mask; /* which lines of the unit were written */
	uint64_t *wc_used; /* LRU stamp */
	uint64_t stamp;
};

struct perf {
	struct perf_params p;
	unsigned ncpus;
	uint64_t cache_lines;
	uint64_t unit_read_ps, unit_write_ps, full_mask;
	struct perf_dimm dimm;
	struct perf_stats s;
	struct perf_cpu cpu[];
};

/* ------------------------------------------------------------ parameters */

/*
 * The presets. dram is the reference (stall mode charges the difference
 * to it); optane is Intel Optane DC Persistent Memory (100 series, one
 * DIMM, no interleaving) as measured in the studies cited in README.md
 * ("Latency and bandwidth model"): idle read latencies and the persist
 * latencies of store + CLWB + fence (flush + write + fence = 62.3 ns) and
 * NT store + fence (nt + write + fence = 90.4 ns) from Yang et al., FAST
 * 2020, Fig. 2; per-DIMM bandwidths from Izraelevitz et al. 2019; the
 * 256-byte unit and the ~16 KiB write-combining buffer (XPLine, XPBuffer)
 * from Yang et al. The dram figures are the same study's DRAM on the same
 * machine; its bandwidths (one DDR4-2666 channel) are set so that one vCPU
 * is never bandwidth-bound. insn is a 2.4 GHz core at ~1.7 instructions
 * per cycle.
 */
static const struct perf_params presets[] = {
    {
        .name = "dram",
        .insn_ps = 250,
        .read_ps = 101500,
        .read_seq_ps = 81400,
        .prefetch = 8,
        .write_ps = 47300,
        .flush_ps = 5000,
        .fence_ps = 5000,
        .nt_ps = 34600,
        .read_bw_mbps = 20000,
        .write_bw_mbps = 20000,
        .unit = 64,
        .wc_units = 0,
        .cache_bytes = 1 << 20,
    },
    {
        .name = "optane",
        .insn_ps = 250,
        .read_ps = 305000,
        .read_seq_ps = 169400,
        .prefetch = 8,
        .write_ps = 52300,
        .flush_ps = 5000,
        .fence_ps = 5000,
        .nt_ps = 33100,
        .read_bw_mbps = 6600,
        .write_bw_mbps = 2300,
        .unit = 256,
        .wc_units = 64,
        .cache_bytes = 1 << 20,
    },
};

bool perf_params_preset(const char *name, struct perf_params *p)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
		if (!strcmp(name, presets[i].name)) {
			*p = presets[i];
			return true;
		}
	}
	return false;
}

enum kind { TIME, BANDWIDTH, SIZE, COUNT };

static const struct key {
	const char *name;
	enum kind kind;
	size_t off;
} keys[] = {
    {"insn", TIME, offsetof(struct perf_params, insn_ps)},
    {"read", TIME, offsetof(struct perf_params, read_ps)},
    {"read_seq", TIME, offsetof(struct perf_params, read_seq_ps)},
    {"prefetch", COUNT, offsetof(struct perf_params, prefetch)},
    {"write", TIME, offsetof(struct perf_params, write_ps)},
    {"flush", TIME, offsetof(struct perf_params, flush_ps)},
    {"fence", TIME, offsetof(struct perf_params, fence_ps)},
    {"nt", TIME, offsetof(struct perf_params, nt_ps)},
    {"read_bw", BANDWIDTH, offsetof(struct perf_params, read_bw_mbps)},
    {"write_bw", BANDWIDTH, offsetof(struct perf_params, write_bw_mbps)},
    {"unit", SIZE, offsetof(struct perf_params, unit)},
    {"wcbuf", SIZE, offsetof(struct perf_params, wc_units)}, /* bytes, stored as units */
    {"cache", SIZE, offsetof(struct perf_params, cache_bytes)},
};

static const struct {
	const char *suffix;
	double scale;
} time_suffixes[] = {{"ps", 1}, {"ns", 1e3}, {"us", 1e6}, {"", 1e3}},
  bw_suffixes[] = {{"GB/s", 1e3}, {"MB/s", 1}, {"G", 1e3}, {"M", 1}, {"", 1e3}},
  size_suffixes[] = {{"KiB", 1024.0},       {"MiB", 1048576.0}, {"K", 1024.0},
                     {"M", 1048576.0},      {"B", 1},           {"", 1},
                     {"GiB", 1073741824.0}, {"G", 1073741824.0}};

/* A number with one of @n suffixes (the value is scaled by it), >= 0. */
static bool parse_scaled(const char *s, const void *table, size_t n, double *out)
{
	const struct {
		const char *suffix;
		double scale;
	} *t = table;
	char *end;
	double v = strtod(s, &end);

	if (end == s || *s == '-' || *s == '+' || v != v)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(end, t[i].suffix)) {
			*out = v * t[i].scale;
			return *out >= 0 && *out < 1e15;
		}
	}
	return false;
}

static bool fail(char *err, size_t len, const char *fmt, const char *a, const char *b)
{
	snprintf(err, len, fmt, a, b);
	return false;
}

static bool set_key(struct perf_params *p, const char *k, const char *v, unsigned *seen, char *err,
                    size_t errlen)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint64_t *field = (uint64_t *)((char *)p + keys[i].off);
		double d;

		if (strcmp(k, keys[i].name))
			continue;
		if (*seen & (1u << i))
			return fail(err, errlen, "latency parameter %s given twice%s", k, "");
		*seen |= 1u << i;
		if (*v == '-')
			return fail(err, errlen, "latency parameter %s must not be negative: %s", k,
			            v);
		switch (keys[i].kind) {
		case TIME:
			if (!parse_scaled(v, time_suffixes, 4, &d))
				return fail(err, errlen,
				            "latency parameter %s: '%s' is not a time (e.g. 305ns, "
				            "0.5ns, 2us)",
				            k, v);
			break;
		case BANDWIDTH:
			if (!parse_scaled(v, bw_suffixes, 5, &d))
				return fail(err, errlen,
				            "latency parameter %s: '%s' is not a bandwidth (e.g. "
				            "6.6GB/s, 2300MB/s)",
				            k, v);
			if (d < 1)
				return fail(err, errlen,
				            "latency parameter %s must be above zero, not %s", k,
				            v);
			break;
		case SIZE:
			if (!parse_scaled(v, size_suffixes, 8, &d) || d != (double)(uint64_t)d)
				return fail(err, errlen,
				            "latency parameter %s: '%s' is not a size in bytes "
				            "(e.g. 256, 16K)",
				            k, v);
			break;
		default:
			d = strtod(v, NULL);
			if (!parse_scaled(v, size_suffixes + 5, 1, &d) || d < 1 ||
			    d != (double)(uint64_t)d)
				return fail(
				    err, errlen,
				    "latency parameter %s must be a whole number >= 1, not %s", k,
				    v);
			break;
		}
		*field = (uint64_t)(d + 0.5);
		return true;
	}
	return fail(
	    err, errlen,
	    "unknown latency parameter '%s' (insn read read_seq prefetch write flush fence nt "
	    "read_bw write_bw unit wcbuf cache)%s",
	    k, "");
}

bool perf_params_parse(const char *spec, struct perf_params *p, char *err, size_t errlen)
{
	char buf[512], *save = NULL;
	unsigned seen = 0;
	uint64_t wc_bytes;

	if (perf_params_preset(spec, p))
		return true;
	if (strncmp(spec, "custom:", 7) != 0 && strcmp(spec, "custom") != 0)
		return fail(
		    err, errlen,
		    "unknown latency preset '%s' (choose dram, optane or custom:key=value,...)%s",
		    spec, "");
	perf_params_preset("dram", p);
	snprintf(p->name, sizeof(p->name), "custom");
	if (strlen(spec) >= sizeof(buf))
		return fail(err, errlen, "latency parameters too long%s%s", "", "");
	strcpy(buf, spec[6] ? spec + 7 : "");
	wc_bytes = p->wc_units * p->unit;
	p->wc_units = wc_bytes; /* bytes while parsing */
	for (char *kv = strtok_r(buf, ",+", &save); kv; kv = strtok_r(NULL, ",+", &save)) {
		char *eq = strchr(kv, '=');

		if (!eq || eq == kv || !eq[1])
			return fail(err, errlen, "latency parameter '%s' is not key=value%s", kv,
			            "");
		*eq = '\0';
		if (!set_key(p, kv, eq + 1, &seen, err, errlen))
			return false;
	}
	if (p->unit < LINE || p->unit > 4096 || (p->unit & (p->unit - 1)))
		return fail(err, errlen,
		            "latency parameter unit must be a power of two from 64 to 4096%s%s", "",
		            "");
	if (p->wc_units % p->unit)
		return fail(err, errlen, "latency parameter wcbuf must be a multiple of unit%s%s",
		            "", "");
	p->wc_units /= p->unit;
	if (p->wc_units > 4096)
		return fail(err, errlen, "latency parameter wcbuf must be at most 4096 units%s%s",
		            "", "");
	if (p->cache_bytes % LINE || p->cache_bytes > (1u << 30))
		return fail(
		    err, errlen,
		    "latency parameter cache must be a multiple of 64 bytes, at most 1G%s%s", "",
		    "");
	if (p->read_seq_ps > p->read_ps) {
		char a[32], b[32];

		snprintf(a, sizeof(a), "%.1f", (double)p->read_seq_ps / 1e3);
		snprintf(b, sizeof(b), "%.1f", (double)p->read_ps / 1e3);
		return fail(
		    err, errlen,
		    "latency parameters contradict: read_seq (%s ns) is slower than read (%s ns)",
		    a, b);
	}
	return true;
}

/* Picoseconds as nanoseconds, exactly (ps are integers). */
static json_t *ns(uint64_t ps)
{
	return json_real((double)ps / 1000);
}

json_t *perf_params_json(const struct perf_params *p)
{
	return json_pack("{s:s, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I}",
	                 "preset", p->name, "insn_ns", ns(p->insn_ps), "read_ns", ns(p->read_ps),
	                 "read_seq_ns", ns(p->read_seq_ps), "prefetch", (json_int_t)p->prefetch,
	                 "write_ns", ns(p->write_ps), "flush_ns", ns(p->flush_ps), "fence_ns",
	                 ns(p->fence_ps), "nt_ns", ns(p->nt_ps), "read_bw_mbps",
	                 (json_int_t)p->read_bw_mbps, "write_bw_mbps", (json_int_t)p->write_bw_mbps,
	                 "unit", (json_int_t)p->unit, "wcbuf", (json_int_t)(p->wc_units * p->unit),
	                 "cache", (json_int_t)p->cache_bytes);
}

/* ------------------------------------------------------------------ model */

struct perf *perf_new(const struct perf_params *p, unsigned ncpus)
{
	struct perf *m;
	uint64_t lines = p->cache_bytes / LINE;

	if (!ncpus)
		ncpus = 1;
	m = calloc(1, sizeof(*m) + ncpus * sizeof(struct perf_cpu));
	if (!m)
		return NULL;
	m->p = *p;
	m->ncpus = ncpus;
	m->cache_lines = lines;
	m->unit_read_ps = p->unit * 1000000u / p->read_bw_mbps;
	m->unit_write_ps = p->unit * 1000000u / p->write_bw_mbps;
	m->full_mask = p->unit / LINE >= 64 ? UINT64_MAX : (1ull << (p->unit / LINE)) - 1;
	for (unsigned i = 0; i < ncpus; i++) {
		m->cpu[i].cache = lines ? calloc(lines, sizeof(uint64_t)) : NULL;
		if (lines && !m->cpu[i].cache)
			goto fail;
	}
	if (p->wc_units) {
		m->dimm.wc_tag = calloc(p->wc_units, sizeof(uint64_t));
		m->dimm.wc_mask = calloc(p->wc_units, sizeof(uint64_t));
		m->dimm.wc_used = calloc(p->wc_units, sizeof(uint64_t));
		if (!m->dimm.wc_tag || !m->dimm.wc_mask || !m->dimm.wc_used)
			goto fail;
	}
	return m;
fail:
	perf_free(m);
	return NULL;
}

void perf_free(struct perf *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->ncpus; i++)
		free(m->cpu[i].cache);
	free(m->dimm.wc_tag);
	free(m->dimm.wc_mask);
	free(m->dimm.wc_used);
	free(m);
}

void perf_reset(struct perf *m)
{
	for (unsigned i = 0; i < m->ncpus; i++) {
		uint64_t *cache = m->cpu[i].cache;

		if (cache)
			memset(cache, 0, m->cache_lines * sizeof(uint64_t));
		memset(&m->cpu[i], 0, sizeof(m->cpu[i]));
		m->cpu[i].cache = cache;
	}
	if (m->p.wc_units) {
		memset(m->dimm.wc_tag, 0, m->p.wc_units * sizeof(uint64_t));
		memset(m->dimm.wc_mask, 0, m->p.wc_units * sizeof(uint64_t));
		memset(m->dimm.wc_used, 0, m->p.wc_units * sizeof(uint64_t));
	}
	m->dimm.read_free = m->dimm.write_free = m->dimm.stamp = 0;
	memset(&m->s, 0, sizeof(m->s));
}

static struct perf_cpu *cpu_of(struct perf *m, unsigned cpu)
{
	return &m->cpu[cpu < m->ncpus ? cpu : m->ncpus - 1];
}

static uint64_t *cache_slot(struct perf *m, struct perf_cpu *c, uint64_t line)
{
	return m->cache_lines ? &c->cache[(line ^ (line >> 14)) % m->cache_lines] : NULL;
}

/* Occupy the media's read side with one unit; returns the wait for it. */
static uint64_t media_read(struct perf *m, uint64_t now)
{
	uint64_t start = m->dimm.read_free > now ? m->dimm.read_free : now;

	m->dimm.read_free = start + m->unit_read_ps;
	m->s.media_read_bytes += m->p.unit;
	return start - now;
}

/* Write one unit to the media (@mask: its lines the buffer saw). */
static void media_write(struct perf *m, uint64_t now, uint64_t mask)
{
	uint64_t start = m->dimm.write_free > now ? m->dimm.write_free : now;

	m->dimm.write_free = start + m->unit_write_ps;
	m->s.media_write_bytes += m->p.unit;
	if (mask != m->full_mask)
		media_read(m, now); /* read-modify-write: the rest of the unit */
}

/* A dirty 64-byte line leaves @c's cache for the DIMM. */
static void writeback(struct perf *m, struct perf_cpu *c, uint64_t line)
{
	struct perf_dimm *d = &m->dimm;
	uint64_t unit = line * LINE / m->p.unit, bit = 1ull << (line * LINE % m->p.unit / LINE);
	uint64_t slack = WPQ_UNITS * m->unit_write_ps, done;

	m->s.writebacks++;
	if (!m->p.wc_units) {
		media_write(m, c->now, bit);
	} else {
		uint64_t victim = 0;
		bool merged = false;

		for (uint64_t i = 0; i < m->p.wc_units; i++) {
			if (d->wc_tag[i] == unit + 1) {
				d->wc_mask[i] |= bit;
				d->wc_used[i] = ++d->stamp;
				merged = true;
				break;
			}
			if (d->wc_used[i] < d->wc_used[victim])
				victim = i;
		}
		if (merged) {
			m->s.wc_merges++;
		} else {
			if (d->wc_tag[victim])
				media_write(m, c->now, d->wc_mask[victim]);
			d->wc_tag[victim] = unit + 1;
			d->wc_mask[victim] = bit;
			d->wc_used[victim] = ++d->stamp;
		}
	}
	/* Posted, until the media is more than the write pending queue behind. */
	if (d->write_free > c->now + slack) {
		uint64_t wait = d->write_free - c->now - slack;

		c->now += wait;
		m->s.write_wait_ps += wait;
	}
	done = c->now + m->p.write_ps;
	if (done > c->drain)
		c->drain = done;
}

/* Put @line in @c's cache (@dirty: by a store); a dirty victim is written back. */
static bool cache_fill(struct perf *m, struct perf_cpu *c, uint64_t line, bool dirty)
{
	uint64_t *e = cache_slot(m, c, line);

	if (!e) {
		if (dirty)
			writeback(m, c, line);
		return false;
	}
	if (*e >> 1 == line + 1) {
		*e |= dirty;
		return true;
	}
	if (*e & 1)
		writeback(m, c, (*e >> 1) - 1);
	*e = (line + 1) << 1 | dirty;
	return false;
}

void perf_insns(struct perf *m, unsigned cpu, uint64_t n)
{
	cpu_of(m, cpu)->now += n * m->p.insn_ps;
	m->s.insns += n;
}

void perf_load(struct perf *m, unsigned cpu, uint64_t off, unsigned size)
{
	struct perf_cpu *c = cpu_of(m, cpu);
	uint64_t line = off / LINE, unit = off / m->p.unit, cost, wait = 0;
	bool seq;

	m->s.loads++;
	m->s.bytes_read += size;
	if (cache_fill(m, c, line, false)) {
		m->s.load_hits++;
		return;
	}
	seq = c->last_miss && (line + 1 == c->last_miss - 1 || line + 1 == c->last_miss + 1);
	c->last_miss = line + 1;
	if (seq) {
		m->s.seq_misses++;
		cost = m->p.read_seq_ps / m->p.prefetch;
	} else {
		m->s.rand_misses++;
		cost = m->p.read_ps;
	}
	if (c->last_unit != unit + 1) {
		c->last_unit = unit + 1;
		wait = media_read(m, c->now);
	}
	c->now += cost + wait;
	m->s.read_wait_ps += wait;
}

void perf_store(struct perf *m, unsigned cpu, uint64_t off, unsigned size)
{
	m->s.stores++;
	m->s.bytes_written += size;
	cache_fill(m, cpu_of(m, cpu), off / LINE, true);
}

void perf_nt_store(struct perf *m, unsigned cpu, uint64_t off, unsigned size)
{
	struct perf_cpu *c = cpu_of(m, cpu);
	uint64_t line = off / LINE, *e = cache_slot(m, c, line);

	m->s.nt_stores++;
	m->s.bytes_written += size;
	c->nt_frac += m->p.nt_ps * size;
	c->now += c->nt_frac / LINE;
	c->nt_frac %= LINE;
	if (e && *e >> 1 == line + 1)
		*e = 0; /* non-temporal stores evict the line */
	if (c->nt_line != line + 1) {
		if (c->nt_line)
			writeback(m, c, c->nt_line - 1);
		c->nt_line = line + 1;
	}
}

void perf_flush(struct perf *m, unsigned cpu, uint64_t off, bool invalidate)
{
	struct perf_cpu *c = cpu_of(m, cpu);
	uint64_t line = off / LINE, *e = cache_slot(m, c, line);

	m->s.flushes++;
	c->now += m->p.flush_ps;
	if (!e || *e >> 1 != line + 1)
		return;
	if (*e & 1)
		writeback(m, c, line);
	*e = invalidate ? 0 : *e & ~1ull;
}

void perf_fence(struct perf *m, unsigned cpu)
{
	struct perf_cpu *c = cpu_of(m, cpu);

	m->s.fences++;
	if (c->nt_line) {
		writeback(m, c, c->nt_line - 1);
		c->nt_line = 0;
	}
	if (c->drain > c->now) {
		m->s.drain_wait_ps += c->drain - c->now;
		c->now = c->drain;
	}
	c->now += m->p.fence_ps;
}

uint64_t perf_now(const struct perf *m, unsigned cpu)
{
	return m->cpu[cpu < m->ncpus ? cpu : m->ncpus - 1].now;
}

struct perf_stats perf_stats(const struct perf *m)
{
	struct perf_stats s = m->s;

	s.ps = 0;
	for (unsigned i = 0; i < m->ncpus; i++)
		s.ps += m->cpu[i].now;
	return s;
}
