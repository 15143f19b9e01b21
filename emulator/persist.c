/* persist.c - see persist.h */
#include "persist.h"

#include "line-set.h"

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

/*
 * Per vCPU: the list of its pending lines, emptied by its fences; and the
 * line its last store made dirty, with the epoch of the dirty set then: a
 * store to the same line (memset and memcpy write a line in 8-byte pieces)
 * needs no lock while nothing has left the set since.
 */
struct cpu_pending {
	struct pending *v;
	size_t n, cap;
	uint64_t last_dirty; /* line + 1; 0: none */
	uint64_t last_epoch;
};

struct persist {
	enum persist_mode mode;
	const uint8_t *live;
	uint8_t *shadow;
	uint64_t size, nlines;
	unsigned ncpus;
	struct cpu_pending *cpus;
	pthread_mutex_t lock; /* everything below, and the pending lists' contents */
	/* Lines whose shadow content changed since the last checkpoint. */
	struct line_set changed;
	/* Lines stored since their last flush (ADR), or since the last
	 * checkpoint (eADR). */
	struct line_set dirty;
	uint64_t dirty_epoch; /* bumped whenever a line leaves @dirty */
	FILE *log;
	bool log_failed, out_of_memory;
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
	if (line_set_add(&p->changed, line) < 0)
		p->out_of_memory = true;
	p->stats.committed_lines++;
}

/* Append the shadow lines changed since the last checkpoint. Lock held. */
static void log_changed(struct persist *p)
{
	uint8_t rec[1 + 8 + PERSIST_LINE];
	uint64_t *lines;
	size_t n = line_set_count(&p->changed);

	if (!line_set_sorted(&p->changed, &lines)) {
		p->out_of_memory = true;
		return;
	}
	rec[0] = PERSIST_REC_LINE;
	for (size_t i = 0; i < n; i++) {
		put_u64(rec + 1, lines[i] * PERSIST_LINE);
		memcpy(rec + 9, p->shadow + lines[i] * PERSIST_LINE, PERSIST_LINE);
		log_write(p, rec, sizeof(rec));
		p->stats.logged_lines++;
	}
	free(lines);
	line_set_clear(&p->changed);
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
	p->cpus = calloc(p->ncpus, sizeof(*p->cpus));
	if (!p->cpus || !line_set_init(&p->dirty) || !line_set_init(&p->changed)) {
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
	if (p->cpus && p->dirty.slot && p->changed.slot)
		pthread_mutex_destroy(&p->lock);
	if (p->cpus)
		for (unsigned i = 0; i < p->ncpus; i++)
			free(p->cpus[i].v);
	free(p->cpus);
	line_set_free(&p->changed);
	line_set_free(&p->dirty);
	free(p);
}

static struct cpu_pending *cpu_of(struct persist *p, unsigned cpu)
{
	return &p->cpus[cpu < p->ncpus ? cpu : p->ncpus - 1];
}

/* A new entry at the end of @c's list (NULL: out of memory). Lock held. */
static struct pending *push(struct persist *p, struct cpu_pending *c)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct pending *v = realloc(c->v, cap * sizeof(*v));

		if (!v) {
			p->out_of_memory = true;
			return NULL;
		}
		c->v = v;
		c->cap = cap;
	}
	return &c->v[c->n++];
}

void persist_store(struct persist *p, unsigned cpu, uint64_t off, unsigned len)
{
	struct cpu_pending *c = cpu_of(p, cpu);
	uint64_t first = off / PERSIST_LINE, last = (off + (len ? len : 1) - 1) / PERSIST_LINE;

	if (first == last && c->last_dirty == first + 1 &&
	    c->last_epoch == __atomic_load_n(&p->dirty_epoch, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&p->lock);
	for (uint64_t l = first; l <= last && l < p->nlines; l++)
		if (line_set_add(&p->dirty, l) < 0)
			p->out_of_memory = true;
	c->last_dirty = last < p->nlines ? last + 1 : 0;
	c->last_epoch = p->dirty_epoch;
	pthread_mutex_unlock(&p->lock);
}

/* @line is flushed or written back: it leaves the dirty set. Lock held. */
static bool undirty(struct persist *p, uint64_t line)
{
	if (!line_set_remove(&p->dirty, line))
		return false;
	__atomic_store_n(&p->dirty_epoch, p->dirty_epoch + 1, __ATOMIC_RELEASE);
	return true;
}

void persist_nt_store(struct persist *p, unsigned cpu, uint64_t off, unsigned len)
{
	struct cpu_pending *c = cpu_of(p, cpu);
	uint64_t first = off / PERSIST_LINE, last = (off + (len ? len : 1) - 1) / PERSIST_LINE;

	/* Only this vCPU appends to its list: the common case (the next 8
	 * bytes of the line just written) needs no lock. */
	/* Host flush mode: no write-combining buffer to drain, a store like any. */
	if (p->mode == PERSIST_HOST_FLUSH) {
		persist_store(p, cpu, off, len);
		return;
	}
	if (first == last && c->n && c->v[c->n - 1].line == first && !c->v[c->n - 1].captured)
		return;
	pthread_mutex_lock(&p->lock);
	for (uint64_t l = first; l <= last && l < p->nlines; l++) {
		struct pending *e;

		/* memcpy_flushcache writes a line in 8-byte pieces: one entry. */
		if (c->n && c->v[c->n - 1].line == l && !c->v[c->n - 1].captured)
			continue;
		e = push(p, c);
		if (e) {
			e->line = l;
			e->captured = false;
		}
	}
	pthread_mutex_unlock(&p->lock);
}

bool persist_flush(struct persist *p, unsigned cpu, enum persist_flush kind, uint64_t off)
{
	uint64_t l = off / PERSIST_LINE;
	bool redundant;

	if (l >= p->nlines)
		return false;
	if (p->mode != PERSIST_ADR) {
		/* Durability does not depend on flushes; only count them. */
		return false;
	}
	pthread_mutex_lock(&p->lock);
	redundant = !undirty(p, l);
	if (redundant)
		p->stats.redundant_flushes++;
	if (kind == PERSIST_CLFLUSH) {
		commit(p, l, p->live + l * PERSIST_LINE);
	} else {
		struct pending *e = push(p, cpu_of(p, cpu));

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

bool persist_would_order(struct persist *p, unsigned cpu)
{
	return __atomic_load_n(&cpu_of(p, cpu)->n, __ATOMIC_RELAXED) > 0;
}

/* Commit (and clear) every dirty line with its live content. Lock held. */
static void write_back_dirty(struct persist *p)
{
	uint64_t *lines;
	size_t n = line_set_count(&p->dirty);

	if (!n)
		return;
	if (!line_set_sorted(&p->dirty, &lines)) {
		p->out_of_memory = true;
		return;
	}
	for (size_t i = 0; i < n; i++)
		commit(p, lines[i], p->live + lines[i] * PERSIST_LINE);
	free(lines);
	line_set_clear(&p->dirty);
	__atomic_store_n(&p->dirty_epoch, p->dirty_epoch + 1, __ATOMIC_RELEASE);
}

void persist_wbinvd(struct persist *p, unsigned cpu)
{
	if (p->mode == PERSIST_HOST_FLUSH)
		return; /* the host's page cache is not the CPU's */
	pthread_mutex_lock(&p->lock);
	drain(p, cpu_of(p, cpu));
	write_back_dirty(p);
	pthread_mutex_unlock(&p->lock);
}

void persist_host_flush(struct persist *p)
{
	pthread_mutex_lock(&p->lock);
	write_back_dirty(p);
	p->stats.host_flushes++;
	pthread_mutex_unlock(&p->lock);
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
	uint64_t unfenced = 0, dirty, first, *dirty_lines;

	pthread_mutex_lock(&p->lock);
	if (p->mode == PERSIST_EADR)
		write_back_dirty(p); /* visible stores are durable */
	if (!line_set_sorted(&p->dirty, &dirty_lines))
		p->out_of_memory = true;
	dirty = dirty_lines ? line_set_count(&p->dirty) : 0;
	first = dirty ? dirty_lines[0] * PERSIST_LINE : UINT64_MAX;
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
	for (uint64_t i = 0; i < dirty; i++)
		log_pending_line(p, dirty_lines[i], p->live + dirty_lines[i] * PERSIST_LINE);
	free(dirty_lines);
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
	return p->log_failed || p->out_of_memory;
}
