/* persist.c - see persist.h */
#include "persist.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/*
 * A line that is on its way to the persistence domain on one vCPU: flushed
 * by CLWB/CLFLUSHOPT (content captured at the flush) or written by a
 * non-temporal store (content taken at the fence).
 */
struct pending {
	uint64_t line;
	bool captured;
	uint8_t data[PERSIST_LINE];
};

/* Per-vCPU list of pending lines, emptied by that vCPU's fences. */
struct cpu_pending {
	struct pending *v;
	size_t n, cap;
};

struct persist {
	enum persist_mode mode;
	const uint8_t *live;
	uint8_t *shadow;
	uint64_t size, nlines;
	/* Bit per line: the shadow changed since the last checkpoint. */
	uint64_t *changed;
	/* Bit per line: stored since its last flush (ADR), or stored since the
	 * last checkpoint (eADR). Set lock-free on the store path. */
	uint64_t *dirty;
	unsigned ncpus;
	struct cpu_pending *cpus;
	pthread_mutex_t lock; /* everything below, and the pending lists' contents */
	FILE *log;
	bool log_failed;
	struct persist_stats stats;
};

static void log_write(struct persist *p, const void *buf, size_t len)
{
	if (!p->log || p->log_failed)
		return;
	if (fwrite(buf, 1, len, p->log) != len)
		p->log_failed = true;
}

static void put_u64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

/* The line becomes durable with @data. Called with the lock held. */
static void commit(struct persist *p, uint64_t line, const uint8_t *data)
{
	memcpy(p->shadow + line * PERSIST_LINE, data, PERSIST_LINE);
	p->changed[line / 64] |= 1ull << (line % 64);
	p->stats.committed_lines++;
}

/* Append the shadow lines changed since the last checkpoint. Lock held. */
static void log_changed(struct persist *p)
{
	uint8_t rec[1 + 8 + PERSIST_LINE];

	rec[0] = PERSIST_REC_LINE;
	for (uint64_t w = 0; w < (p->nlines + 63) / 64; w++) {
		uint64_t bits = p->changed[w];

		p->changed[w] = 0;
		while (bits) {
			uint64_t l = w * 64 + (uint64_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			put_u64(rec + 1, l * PERSIST_LINE);
			memcpy(rec + 9, p->shadow + l * PERSIST_LINE, PERSIST_LINE);
			log_write(p, rec, sizeof(rec));
			p->stats.logged_lines++;
		}
	}
}

struct persist *persist_new(enum persist_mode mode, const uint8_t *live, uint8_t *shadow,
                            uint64_t size, unsigned ncpus, FILE *log)
{
	struct persist *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->mode = mode;
	p->live = live;
	p->shadow = shadow;
	p->size = size;
	p->nlines = size / PERSIST_LINE;
	p->ncpus = ncpus ? ncpus : 1;
	p->dirty = calloc((p->nlines + 63) / 64, sizeof(uint64_t));
	p->changed = calloc((p->nlines + 63) / 64, sizeof(uint64_t));
	p->cpus = calloc(p->ncpus, sizeof(*p->cpus));
	if (!p->dirty || !p->changed || !p->cpus) {
		persist_free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->log = log;
	{
		uint8_t hdr[16];

		memcpy(hdr, PERSIST_LOG_MAGIC, 8);
		put_u64(hdr + 8, size);
		log_write(p, hdr, sizeof(hdr));
	}
	return p;
}

void persist_free(struct persist *p)
{
	if (!p)
		return;
	if (p->cpus) {
		for (unsigned i = 0; i < p->ncpus; i++)
			free(p->cpus[i].v);
		pthread_mutex_destroy(&p->lock);
	}
	free(p->cpus);
	free(p->changed);
	free(p->dirty);
	free(p);
}

static struct cpu_pending *cpu_of(struct persist *p, unsigned cpu)
{
	return &p->cpus[cpu < p->ncpus ? cpu : p->ncpus - 1];
}

static struct pending *push(struct cpu_pending *c)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct pending *v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		c->v = v;
		c->cap = cap;
	}
	return &c->v[c->n++];
}

void persist_store(struct persist *p, uint64_t off, unsigned len)
{
	uint64_t first = off / PERSIST_LINE, last = (off + (len ? len : 1) - 1) / PERSIST_LINE;

	for (uint64_t l = first; l <= last && l < p->nlines; l++)
		__atomic_fetch_or(&p->dirty[l / 64], 1ull << (l % 64), __ATOMIC_RELAXED);
}

void persist_nt_store(struct persist *p, unsigned cpu, uint64_t off, unsigned len)
{
	struct cpu_pending *c = cpu_of(p, cpu);
	uint64_t first = off / PERSIST_LINE, last = (off + (len ? len : 1) - 1) / PERSIST_LINE;

	/* Only this vCPU appends to its list: the common case (the next 8
	 * bytes of the line just written) needs no lock. */
	if (first == last && c->n && c->v[c->n - 1].line == first && !c->v[c->n - 1].captured)
		return;
	pthread_mutex_lock(&p->lock);
	for (uint64_t l = first; l <= last && l < p->nlines; l++) {
		struct pending *e;

		/* memcpy_flushcache writes a line in 8-byte pieces: one entry. */
		if (c->n && c->v[c->n - 1].line == l && !c->v[c->n - 1].captured)
			continue;
		e = push(c);
		if (e) {
			e->line = l;
			e->captured = false;
		}
	}
	pthread_mutex_unlock(&p->lock);
}

static bool test_and_clear(uint64_t *bitmap, uint64_t l)
{
	uint64_t bit = 1ull << (l % 64);

	return __atomic_fetch_and(&bitmap[l / 64], ~bit, __ATOMIC_RELAXED) & bit;
}

bool persist_flush(struct persist *p, unsigned cpu, enum persist_flush kind, uint64_t off)
{
	uint64_t l = off / PERSIST_LINE;
	bool redundant;

	if (l >= p->nlines)
		return false;
	if (p->mode == PERSIST_EADR) {
		/* Durability does not depend on flushes; only count them. */
		return false;
	}
	redundant = !test_and_clear(p->dirty, l);
	pthread_mutex_lock(&p->lock);
	if (redundant)
		p->stats.redundant_flushes++;
	if (kind == PERSIST_CLFLUSH) {
		commit(p, l, p->live + l * PERSIST_LINE);
	} else {
		struct pending *e = push(cpu_of(p, cpu));

		if (e) {
			e->line = l;
			e->captured = true;
			memcpy(e->data, p->live + l * PERSIST_LINE, PERSIST_LINE);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return redundant;
}

static void drain(struct persist *p, struct cpu_pending *c)
{
	for (size_t i = 0; i < c->n; i++) {
		struct pending *e = &c->v[i];

		commit(p, e->line, e->captured ? e->data : p->live + e->line * PERSIST_LINE);
	}
	c->n = 0;
}

void persist_fence(struct persist *p, unsigned cpu)
{
	struct cpu_pending *c = cpu_of(p, cpu);

	/* Fences are frequent (every locked RMW): nothing to do is the rule. */
	if (__atomic_load_n(&c->n, __ATOMIC_RELAXED) == 0)
		return;
	pthread_mutex_lock(&p->lock);
	drain(p, c);
	pthread_mutex_unlock(&p->lock);
}

/* Commit (and clear) every dirty line with its live content. Lock held. */
static void write_back_dirty(struct persist *p)
{
	for (uint64_t w = 0; w < (p->nlines + 63) / 64; w++) {
		uint64_t bits = __atomic_exchange_n(&p->dirty[w], 0, __ATOMIC_RELAXED);

		while (bits) {
			uint64_t l = w * 64 + (uint64_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			commit(p, l, p->live + l * PERSIST_LINE);
		}
	}
}

void persist_wbinvd(struct persist *p, unsigned cpu)
{
	pthread_mutex_lock(&p->lock);
	drain(p, cpu_of(p, cpu));
	write_back_dirty(p);
	pthread_mutex_unlock(&p->lock);
}

static uint64_t count_dirty(const struct persist *p, uint64_t *first)
{
	uint64_t n = 0;

	*first = UINT64_MAX;
	for (uint64_t w = 0; w < (p->nlines + 63) / 64; w++) {
		uint64_t bits = __atomic_load_n(&p->dirty[w], __ATOMIC_RELAXED);

		if (bits && *first == UINT64_MAX)
			*first = (w * 64 + (uint64_t)__builtin_ctzll(bits)) * PERSIST_LINE;
		n += (uint64_t)__builtin_popcountll(bits);
	}
	return n;
}

static void log_pending_line(struct persist *p, uint64_t line, const uint8_t *data)
{
	uint8_t rec[8 + PERSIST_LINE];

	put_u64(rec, line * PERSIST_LINE);
	memcpy(rec + 8, data, PERSIST_LINE);
	log_write(p, rec, sizeof(rec));
}

void persist_checkpoint(struct persist *p, uint64_t id, struct persist_checkpoint *out)
{
	uint8_t hdr[1 + 8 + 4];
	uint64_t unfenced = 0, dirty, first;

	pthread_mutex_lock(&p->lock);
	if (p->mode == PERSIST_EADR)
		write_back_dirty(p); /* visible stores are durable */
	dirty = count_dirty(p, &first);
	for (unsigned i = 0; i < p->ncpus; i++)
		unfenced += p->cpus[i].n;

	log_changed(p);
	hdr[0] = PERSIST_REC_CHECKPOINT;
	put_u64(hdr + 1, id);
	for (int i = 0; i < 4; i++)
		hdr[9 + i] = (uint8_t)((dirty + unfenced) >> (8 * i));
	log_write(p, hdr, sizeof(hdr));
	/* Pending lines, with the content hardware might have written back:
	 * flushed/NT lines first, then dirty lines (a line in both lists was
	 * stored again after its flush, and the later content comes last). */
	for (unsigned i = 0; i < p->ncpus; i++) {
		for (size_t j = 0; j < p->cpus[i].n; j++) {
			struct pending *e = &p->cpus[i].v[j];

			log_pending_line(p, e->line,
			                 e->captured ? e->data : p->live + e->line * PERSIST_LINE);
		}
	}
	for (uint64_t w = 0; w < (p->nlines + 63) / 64; w++) {
		uint64_t bits = __atomic_load_n(&p->dirty[w], __ATOMIC_RELAXED);

		while (bits) {
			uint64_t l = w * 64 + (uint64_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			log_pending_line(p, l, p->live + l * PERSIST_LINE);
		}
	}
	if (p->log && fflush(p->log) != 0)
		p->log_failed = true;
	p->stats.checkpoints++;
	p->stats.missing_flush_lines += dirty;
	p->stats.unfenced_lines += unfenced;
	pthread_mutex_unlock(&p->lock);
	if (out) {
		out->id = id;
		out->dirty_lines = dirty;
		out->unfenced_lines = unfenced;
		out->first_dirty = first;
	}
}

struct persist_stats persist_stats(const struct persist *p)
{
	return p->stats;
}

bool persist_log_failed(const struct persist *p)
{
	return p->log_failed;
}
