/* race.c - see race.h */
#include "race.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daxlab-marker.h"
#include "daxlab-protocol.h"
#include "tap.h"

#define WITNESS_FILES                                                                              \
	DAXLAB_WITNESS_FILES /* hits that keep a witness file; later ones are counted */
#define HIT_LINES 20         /* hits printed as "# daxlab-hit:" lines; all are counted */
#define THREAD_STACK (256u << 10)
#define MAX_THREADS 64

void race_rng_init(struct race_rng *r, uint64_t seed, unsigned stream)
{
	r->s = seed * 0x9e3779b97f4a7c15ull + stream * 0xbf58476d1ce4e5b9ull + 1;
}

uint64_t race_next(struct race_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

unsigned race_below(struct race_rng *r, unsigned n)
{
	return n ? (unsigned)(race_next(r) % n) : 0;
}

void race_jitter(struct race_rng *r, unsigned max_spins)
{
	for (volatile unsigned i = race_below(r, max_spins); i; i--)
		;
}

static unsigned long env_number(const char *name, unsigned long dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return dflt;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end)
		tap_bail("%s=%s is not a number", name, s);
	return v;
}

unsigned race_iterations(unsigned dflt)
{
	unsigned long v = env_number("DAXLAB_ITERATIONS", dflt);

	return v ? (unsigned)v : dflt;
}

uint64_t race_seed(void)
{
	return env_number("DAXLAB_SEED", 1);
}

/* ---- threads ---- */

struct thread_arg {
	pthread_barrier_t *start;
	race_fn fn;
	void *arg;
	unsigned id;
};

static void *thread_main(void *p)
{
	struct thread_arg *t = p;

	pthread_barrier_wait(t->start);
	t->fn(t->id, t->arg);
	return NULL;
}

void race_threads(unsigned n, race_fn fn, void *arg)
{
	pthread_t tid[MAX_THREADS];
	struct thread_arg ta[MAX_THREADS];
	pthread_barrier_t start;
	pthread_attr_t attr;

	if (n == 0 || n > MAX_THREADS)
		tap_bail("race_threads: %u threads (1..%d)", n, MAX_THREADS);
	pthread_barrier_init(&start, NULL, n);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (unsigned i = 0; i < n; i++) {
		ta[i] = (struct thread_arg){.start = &start, .fn = fn, .arg = arg, .id = i};
		if (pthread_create(&tid[i], &attr, thread_main, &ta[i]))
			tap_bail("pthread_create: %s", strerror(errno));
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	pthread_attr_destroy(&attr);
	pthread_barrier_destroy(&start);
}

/* ---- phases ---- */

uint64_t race_phase_get(const uint64_t *word)
{
	return __atomic_load_n(word, __ATOMIC_SEQ_CST);
}

uint64_t race_phase_set(uint64_t *word, unsigned phase)
{
	uint64_t v = ((race_phase_get(word) >> 2) + 1) << 2 | (phase & 3);

	__atomic_store_n(word, v, __ATOMIC_SEQ_CST);
	return v;
}

void race_truncate_cycles(int fd, uint64_t *phase, long long small, long long full, unsigned cycles,
                          struct race_rng *rng)
{
	for (unsigned c = 0; c < cycles; c++) {
		race_jitter(rng, 200000);
		race_phase_set(phase, RACE_SHRINKING);
		if (ftruncate(fd, (off_t)small))
			tap_bail("ftruncate shrink to %lld: %s", small, strerror(errno));
		race_phase_set(phase, RACE_SHRUNK);
		race_jitter(rng, 200000);
		race_phase_set(phase, RACE_GROWING);
		if (ftruncate(fd, (off_t)full))
			tap_bail("ftruncate grow to %lld: %s", full, strerror(errno));
		race_phase_set(phase, RACE_GROWN);
	}
}

void race_add(unsigned long *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

/* ---- accesses that may fault ---- */

static _Thread_local sigjmp_buf fault_jmp;
static _Thread_local volatile sig_atomic_t fault_armed;

static void on_fault(int sig)
{
	if (fault_armed) {
		fault_armed = 0;
		siglongjmp(fault_jmp, sig);
	}
	/* A fault nobody expected: die of it, as without the handler. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

static const char *watchdog_what;
static unsigned watchdog_seconds;

static void put_str(const char *s)
{
	ssize_t n = (ssize_t)strlen(s);

	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, s, (size_t)n);

		if (w <= 0)
			return;
		s += w;
		n -= w;
	}
}

static void on_watchdog(int sig)
{
	char secs[16];
	unsigned v = watchdog_seconds;
	int i = (int)sizeof(secs) - 1;

	(void)sig;
	secs[i] = '\0';
	do {
		secs[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	put_str("Bail out! ");
	put_str(watchdog_what ? watchdog_what : "a guarded step");
	put_str(" did not finish in ");
	put_str(&secs[i]);
	put_str(" s\n");
	_exit(1);
}

void race_watchdog(unsigned seconds, const char *what)
{
	struct sigaction sa;

	if (!seconds) {
		alarm(0);
		watchdog_what = NULL;
		return;
	}
	fflush(stdout);
	watchdog_what = what;
	watchdog_seconds = seconds;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_watchdog;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(seconds);
}

static void copy_volatile(volatile unsigned char *to, const volatile unsigned char *from,
                          size_t len)
{
	if (len == 8 && !((uintptr_t)to & 7) && !((uintptr_t)from & 7)) {
		*(volatile uint64_t *)to = *(const volatile uint64_t *)from;
		return;
	}
	for (size_t i = 0; i < len; i++)
		to[i] = from[i];
}

int race_load(const volatile void *p, void *out, size_t len)
{
	int sig = sigsetjmp(fault_jmp, 1);

	if (sig)
		return sig;
	fault_armed = 1;
	copy_volatile(out, p, len);
	fault_armed = 0;
	return 0;
}

int race_store(volatile void *p, const void *in, size_t len)
{
	int sig = sigsetjmp(fault_jmp, 1);

	if (sig)
		return sig;
	fault_armed = 1;
	copy_volatile(p, in, len);
	fault_armed = 0;
	return 0;
}

/* ---- campaign and hits ---- */

static pthread_mutex_t hit_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *camp_name = "race";
static unsigned cur_round, rounds_run, nhits, first_hit_round;
static uint64_t camp_seed, camp_start_ns, first_hit_ns;
static FILE *witness; /* the open witness file of the last kept hit */

uint64_t race_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void race_trace_marker(const char *fmt, ...)
{
	static int fd = -1;
	static bool tried;
	char line[256];
	va_list ap;
	int n;

	if (!tried) {
		tried = true;
		fd = open("/sys/kernel/tracing/trace_marker", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			fd = open("/sys/kernel/debug/tracing/trace_marker", O_WRONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0 && write(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
		return;
}

void race_begin(const char *name, unsigned iterations, uint64_t seed)
{
	camp_name = name;
	camp_seed = seed;
	install_handlers();
	tap_diag("%s: %u iterations, seed %llu", name, iterations, (unsigned long long)seed);
	camp_start_ns = race_now_ns();
}

void race_campaign(const struct race_campaign *c, void *arg)
{
	unsigned rounds = race_iterations(c->rounds);

	race_begin(c->name, rounds, race_seed());
	for (unsigned i = 0; i < rounds; i++) {
		race_round(i);
		c->setup(arg, i);
		race_threads(c->threads, c->thread, arg);
		c->check(arg, i);
	}
	race_end();
}

void race_round(unsigned iteration)
{
	__atomic_store_n(&cur_round, iteration, __ATOMIC_RELAXED);
	if (iteration + 1 > rounds_run)
		rounds_run = iteration + 1;
}

void race_hit(const char *what, ...)
{
	uint64_t now = race_now_ns();
	unsigned round = __atomic_load_n(&cur_round, __ATOMIC_RELAXED);
	char line[512];
	va_list ap;

	va_start(ap, what);
	vsnprintf(line, sizeof(line), what, ap);
	va_end(ap);
	/* Both tracers first, as close to the moment as possible. */
	daxlab_mark(DAXLAB_MARK_HIT, now);
	race_trace_marker("daxlab-hit %s round=%u ns=%llu: %s", camp_name, round,
	                  (unsigned long long)now, line);
	pthread_mutex_lock(&hit_lock);
	if (nhits++ == 0) {
		first_hit_round = round;
		first_hit_ns = now;
	}
	if (nhits <= HIT_LINES)
		tap_diag(DAXLAB_TAG_HIT ": n=%u round=%u seed=%llu ns=%llu what=%.*s", nhits, round,
		         (unsigned long long)(camp_seed + round), (unsigned long long)now,
		         DAXLAB_CAP_TEXT, line);
	if (witness) {
		fclose(witness);
		witness = NULL;
	}
	if (nhits <= WITNESS_FILES && getenv("DAXLAB_WITNESS_DIR")) {
		char path[512];

		snprintf(path, sizeof(path), "%s/hit-%u.txt", getenv("DAXLAB_WITNESS_DIR"), nhits);
		witness = fopen(path, "w");
		if (witness)
			fprintf(
			    witness,
			    "scenario: %s\nhit: %u\nround: %u\nseed: %llu (campaign seed %llu)\n"
			    "guest_monotonic_ns: %llu\nwhat: %s\n",
			    camp_name, nhits, round, (unsigned long long)(camp_seed + round),
			    (unsigned long long)camp_seed, (unsigned long long)now, line);
	}
	pthread_mutex_unlock(&hit_lock);
}

void race_witness_bytes(const char *label, uint64_t off, const void *expected, const void *seen,
                        size_t len)
{
	const unsigned char *e = expected, *s = seen;
	size_t first = 0, n;

	pthread_mutex_lock(&hit_lock);
	if (!witness) {
		pthread_mutex_unlock(&hit_lock);
		return;
	}
	while (first < len && e[first] == s[first])
		first++;
	if (first == len)
		first = 0;
	n = len - first < 64 ? len - first : 64;
	fprintf(witness, "%s: file offset %llu (page %llu), first difference at +%zu\n", label,
	        (unsigned long long)(off + first), (unsigned long long)((off + first) / 4096),
	        first);
	for (int which = 0; which < 2; which++) {
		const unsigned char *b = which ? s : e;

		fprintf(witness, "  %-9s", which ? "seen" : "expected");
		for (size_t i = 0; i < n; i++)
			fprintf(witness, "%s%02x", i && !(i % 8) ? " " : "", b[first + i]);
		fprintf(witness, "\n");
	}
	fflush(witness);
	pthread_mutex_unlock(&hit_lock);
}

static unsigned nknown;

bool race_known(const char *what, ...)
{
	const char *strict = getenv("DAXLAB_STRICT");
	char line[512];
	va_list ap;

	va_start(ap, what);
	vsnprintf(line, sizeof(line), what, ap);
	va_end(ap);
	if (strict && !strcmp(strict, "1")) {
		race_hit("known kernel window (strict): %s", line);
		return true;
	}
	if (__atomic_fetch_add(&nknown, 1, __ATOMIC_RELAXED) < WITNESS_FILES)
		tap_diag(DAXLAB_TAG_KNOWN ": round=%u what=%.*s",
		         __atomic_load_n(&cur_round, __ATOMIC_RELAXED), DAXLAB_CAP_TEXT, line);
	return false;
}

unsigned race_knowns(void)
{
	return __atomic_load_n(&nknown, __ATOMIC_RELAXED);
}

unsigned race_rounds_run(void)
{
	return rounds_run;
}

unsigned race_hits(void)
{
	return __atomic_load_n(&nhits, __ATOMIC_RELAXED);
}

void race_end(void)
{
	uint64_t end = race_now_ns();
	double secs = (double)(end - camp_start_ns) / 1e9;

	pthread_mutex_lock(&hit_lock);
	if (witness) {
		fclose(witness);
		witness = NULL;
	}
	if (nhits)
		tap_diag(DAXLAB_TAG_CAMPAIGN ": iterations=%u seconds=%.3f hits=%u known=%u "
		                             "first_hit_round=%u first_hit_seconds=%.3f seed=%llu",
		         rounds_run, secs, nhits, race_knowns(), first_hit_round,
		         (double)(first_hit_ns - camp_start_ns) / 1e9,
		         (unsigned long long)camp_seed);
	else
		tap_diag(DAXLAB_TAG_CAMPAIGN
		         ": iterations=%u seconds=%.3f hits=0 known=%u seed=%llu",
		         rounds_run, secs, race_knowns(), (unsigned long long)camp_seed);
	pthread_mutex_unlock(&hit_lock);
}
