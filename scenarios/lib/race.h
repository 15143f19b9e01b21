/*
 * race.h - what racing scenarios share: seeded iterations, a start barrier
 * for their threads, timing jitter, SIGBUS-safe accesses, and hits.
 *
 * A racing scenario runs race_iterations() rounds of its race. Round i is
 * seeded with race_seed() + i, so `run.sh --iterations N --seed S` gives
 * the same jitter again (the interleaving is still the scheduler's: exact
 * replay is run.sh --record/--replay). A broken promise is a hit:
 * race_hit() prints "# daxlab-hit: ..." on the TAP stream, writes a
 * witness file (which page, expected against seen bytes) for the host, and
 * marks the moment for the daxlab-pmem plugin and for ftrace, so the host
 * can put the witness, the fs_dax trace and the plugin's events on one
 * time line. race_end() prints "# daxlab-campaign: ..." (iterations, hits,
 * time to first hit) that run.sh puts in summary.json.
 */
#ifndef DAXLAB_RACE_H
#define DAXLAB_RACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A small seeded generator (splitmix64), one per thread and round. */
struct race_rng {
	uint64_t s;
};
void race_rng_init(struct race_rng *r, uint64_t seed, unsigned stream);
uint64_t race_next(struct race_rng *r);
/* Uniform in [0, n); 0 if n is 0. */
unsigned race_below(struct race_rng *r, unsigned n);
/* Busy-wait a seeded number of spins in [0, max_spins): shifts threads. */
void race_jitter(struct race_rng *r, unsigned max_spins);

/* $DAXLAB_ITERATIONS if set, else @dflt. */
unsigned race_iterations(unsigned dflt);
/* $DAXLAB_SEED if set, else 1. */
uint64_t race_seed(void);

/*
 * Run @n threads, fn(thread, arg), released together by a barrier, and
 * wait for all of them. Threads get a larger stack than musl/glibc static
 * defaults so a handler frame fits.
 */
typedef void (*race_fn)(unsigned thread, void *arg);
void race_threads(unsigned n, race_fn fn, void *arg);

/*
 * Accesses that may fault: 0 if done, else the signal (SIGBUS, SIGSEGV).
 * Usable from any thread; the handlers are installed by race_begin().
 */
int race_load(const volatile void *p, void *out, size_t len);
int race_store(volatile void *p, const void *in, size_t len);

/*
 * Guard a step that must finish: race_watchdog(N, what) arms an alarm; if
 * the process is still in the step N seconds later it prints
 * "Bail out! WHAT did not finish in N s" and exits 1, so a kernel that
 * makes a fault retry forever fails the scenario at once rather than at
 * its timeout. race_watchdog(0, NULL) disarms it.
 */
void race_watchdog(unsigned seconds, const char *what);

/*
 * A racing scenario's campaign, the loop they all share: race_begin(), then
 * for each round setup(arg, round), @threads threads running thread()
 * together (race_threads), check(arg, round); race_end(). Rounds:
 * race_iterations(@rounds), seeded from race_seed().
 */
struct race_campaign {
	const char *name;
	unsigned rounds; /* the default; $DAXLAB_ITERATIONS wins */
	unsigned threads;
	void (*setup)(void *arg, unsigned round);
	race_fn thread;
	void (*check)(void *arg, unsigned round);
};
void race_campaign(const struct race_campaign *c, void *arg);

/* Start a campaign: prints the plan line's diagnostics, starts the clock. */
void race_begin(const char *name, unsigned iterations, uint64_t seed);
/* The round now running (for hits and ftrace), from 0; race_end() reports
 * how many rounds ran. */
void race_round(unsigned iteration);
/*
 * A broken promise in the current round. @what is one line; the witness
 * file gets it, the round and seed, and any race_witness_bytes() that
 * follow. Thread-safe; only the first few hits of a campaign keep files.
 */
void race_hit(const char *what, ...) __attribute__((format(printf, 1, 2)));
/*
 * A broken promise this kernel is known to break in a narrow window that a
 * scenario can recognise (e.g. 6.1: a mapping shows the zero page for a few
 * ms after a pwrite() while another thread's write fault on that page is
 * still in flight). Counted and printed as "# daxlab-known: ...", and not a
 * failure, unless $DAXLAB_STRICT is 1 (run.sh --strict): then it is a hit.
 * Returns true if it was counted as a hit.
 */
bool race_known(const char *what, ...) __attribute__((format(printf, 1, 2)));
/* Known-window observations so far. */
unsigned race_knowns(void);
/* Expected against seen bytes at file offset @off (first 64 that differ). */
void race_witness_bytes(const char *label, uint64_t off, const void *expected, const void *seen,
                        size_t len);
/* The rounds the campaign ran. */
unsigned race_rounds_run(void);
/* Hits so far. */
unsigned race_hits(void);
/* Print "# daxlab-campaign: ..." with iterations, rate, hits, first hit. */
void race_end(void);

/*
 * A file's published phase, for checks that must know what state the file
 * was in during an access: a word holding a sequence number that grows at
 * every change, times 4, plus the phase (0..3, the scenario's names). An
 * access whose phase word was the same before and after it happened
 * entirely in that phase; one that straddles a change proves nothing.
 */
enum race_size_phase { RACE_GROWN = 0, RACE_SHRINKING = 1, RACE_SHRUNK = 2, RACE_GROWING = 3 };
uint64_t race_phase_get(const uint64_t *word);
/* Publish @phase with the next sequence number; returns the new word. */
uint64_t race_phase_set(uint64_t *word, unsigned phase);
#define RACE_PHASE(w) ((unsigned)((w)&3))
/*
 * @cycles times: jitter, shrink @fd to @small, jitter, grow it back to
 * @full, publishing RACE_SHRINKING, RACE_SHRUNK, RACE_GROWING and
 * RACE_GROWN in @phase around each ftruncate.
 */
void race_truncate_cycles(int fd, uint64_t *phase, long long small, long long full, unsigned cycles,
                          struct race_rng *rng);
/* Add one to a counter shared by the threads. */
void race_add(unsigned long *counter);

/* Nanoseconds of CLOCK_MONOTONIC (the clock ftrace uses as trace_clock=mono). */
uint64_t race_now_ns(void);
/* A line into the ftrace buffer (trace_marker), if tracefs is there. */
void race_trace_marker(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
