/*
 * Unit test of emulator/persist.c: the ADR and eADR rules on hand-made
 * event sequences over a fake NV-DIMM, checked through the log it writes
 * (which lines became durable, what a checkpoint calls pending).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist.h"

#include "check.h"

enum { SIZE = 64 * 1024 };
static uint8_t live[SIZE];

/* What the log says: durable content per line, and the last checkpoint. */
struct replay {
	uint8_t durable[SIZE];
	bool is_durable[SIZE / 64];
	uint32_t npending;
	uint64_t pending[64];
	uint8_t pending_data[64][64];
};

static uint64_t get_u64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static void replay(FILE *log, struct replay *r)
{
	uint8_t buf[1 + 8 + 64];

	memset(r, 0, sizeof(*r));
	rewind(log);
	CHECK(fread(buf, 1, 16, log) == 16 && memcmp(buf, PERSIST_LOG_MAGIC, 8) == 0);
	CHECK(get_u64(buf + 8) == SIZE);
	while (fread(buf, 1, 1, log) == 1) {
		if (buf[0] == PERSIST_REC_LINE) {
			CHECK(fread(buf + 1, 1, 72, log) == 72);
			uint64_t off = get_u64(buf + 1);
			memcpy(r->durable + off, buf + 9, 64);
			r->is_durable[off / 64] = true;
		} else {
			CHECK(buf[0] == PERSIST_REC_CHECKPOINT);
			CHECK(fread(buf + 1, 1, 12, log) == 12);
			r->npending = (uint32_t)(buf[9] | buf[10] << 8 | buf[11] << 16 |
			                         (uint32_t)buf[12] << 24);
			for (uint32_t i = 0; i < r->npending; i++) {
				uint8_t e[72];

				CHECK(fread(e, 1, 72, log) == 72);
				if (i < 64) {
					r->pending[i] = get_u64(e);
					memcpy(r->pending_data[i], e + 8, 64);
				}
			}
		}
	}
	fseek(log, 0, SEEK_END);
}

static void store(struct persist *p, uint64_t off, uint8_t v, unsigned len)
{
	memset(live + off, v, len);
	persist_store(p, 0, off, len);
}

static uint8_t shadow[SIZE];

static struct persist *fresh(enum persist_mode mode, unsigned ncpus, FILE *log)
{
	memset(live, 0, SIZE);
	memset(shadow, 0, SIZE);
	return persist_new(mode, live, shadow, SIZE, ncpus, log);
}

static void test_adr(void)
{
	FILE *log = tmpfile();
	struct persist *p = fresh(PERSIST_ADR, 2, log);
	struct persist_checkpoint cp;
	struct replay r;

	/* A store with no flush is not durable, and is pending at a checkpoint. */
	store(p, 0, 0x11, 8);
	persist_checkpoint(p, 1, &cp);
	replay(log, &r);
	CHECK(shadow[0] == 0 && !r.is_durable[0]);
	CHECK(cp.dirty_lines == 1 && cp.first_dirty == 0 && r.npending == 1 && r.pending[0] == 0);

	/* CLWB without a fence: still not durable; the captured line is pending. */
	persist_flush(p, 0, PERSIST_CLWB, 4);
	persist_checkpoint(p, 2, &cp);
	CHECK(shadow[0] == 0 && cp.dirty_lines == 0 && cp.unfenced_lines == 1);
	/* A fence on another vCPU does not order it. */
	persist_fence(p, 1);
	CHECK(shadow[0] == 0);
	/* A store after the flush, then the fence: the flushed content is
	 * durable, the new content is dirty: both candidates exist. */
	store(p, 0, 0x22, 8);
	persist_fence(p, 0);
	CHECK(shadow[0] == 0x11);
	persist_checkpoint(p, 3, &cp);
	replay(log, &r);
	CHECK(r.is_durable[0] && r.durable[0] == 0x11); /* logged at the checkpoint */
	CHECK(r.npending == 1 && r.pending_data[0][0] == 0x22 && cp.dirty_lines == 1);

	/* CLFLUSH needs no fence. */
	store(p, 128, 0x33, 64);
	persist_flush(p, 1, PERSIST_CLFLUSH, 130);
	CHECK(shadow[128] == 0x33 && shadow[191] == 0x33);

	/* A second flush with no store between is redundant. */
	struct persist_stats before = persist_stats(p);
	CHECK(persist_flush(p, 1, PERSIST_CLFLUSH, 128));
	CHECK(persist_stats(p).redundant_flushes == before.redundant_flushes + 1);

	/* NT stores: durable at the fence of their vCPU, with the content then. */
	memset(live + 4096, 0x44, 128);
	persist_nt_store(p, 1, 4096, 8);
	persist_nt_store(p, 1, 4104, 8);
	persist_nt_store(p, 1, 4160, 64);
	persist_checkpoint(p, 4, &cp);
	CHECK(cp.unfenced_lines == 2); /* two lines, not three stores */
	CHECK(shadow[4096] == 0);
	persist_fence(p, 1);
	CHECK(shadow[4096] == 0x44 && shadow[4160] == 0x44 && shadow[4223] == 0x44);

	/* WBINVD writes back every dirty line. */
	store(p, 8192, 0x55, 200);
	persist_wbinvd(p, 0);
	for (uint64_t off = 8192; off < 8192 + 200; off++)
		CHECK(shadow[off] == 0x55);
	/* Line 0 was dirty (0x22) and WBINVD wrote it back too. */
	CHECK(shadow[0] == 0x22);
	/* The next checkpoint logs exactly the lines changed since the last. */
	struct persist_stats s0 = persist_stats(p);
	persist_checkpoint(p, 5, &cp);
	replay(log, &r);
	CHECK(r.durable[0] == 0x22 && r.durable[8192] == 0x55 && r.durable[4160] == 0x44);
	/* since checkpoint 4: two NT lines, four WBINVD lines, and line 0 */
	CHECK(persist_stats(p).logged_lines - s0.logged_lines == 2 + 4 + 1);
	CHECK(r.npending == 0);
	CHECK(!persist_log_failed(p));
	persist_free(p);
	fclose(log);
}

static void test_eadr(void)
{
	FILE *log = tmpfile();
	struct persist *p = fresh(PERSIST_EADR, 2, log);
	struct persist_checkpoint cp;
	struct replay r;

	/* Stores without flush are durable at the checkpoint. */
	store(p, 64, 0x66, 8);
	persist_checkpoint(p, 1, &cp);
	replay(log, &r);
	CHECK(shadow[64] == 0x66 && r.is_durable[1] && r.durable[64] == 0x66);
	CHECK(cp.dirty_lines == 0 && r.npending == 0);
	/* NT stores still wait for a fence. */
	memset(live + 256, 0x77, 8);
	persist_nt_store(p, 0, 256, 8);
	persist_checkpoint(p, 2, &cp);
	replay(log, &r);
	CHECK(shadow[256] == 0 && cp.unfenced_lines == 1 && r.npending == 1);
	persist_fence(p, 0);
	CHECK(shadow[256] == 0x77);
	persist_free(p);
	fclose(log);
}

/*
 * virtio-pmem: flushes, fences and WBINVD persist nothing; the host flush
 * makes everything stored so far durable (NT stores too), and nothing after.
 */
static void test_host_flush(void)
{
	FILE *log = tmpfile();
	struct persist *p = fresh(PERSIST_HOST_FLUSH, 2, log);
	struct persist_checkpoint cp;
	struct replay r;

	store(p, 64, 0x11, 8);
	CHECK(!persist_flush(p, 0, PERSIST_CLWB, 64));
	persist_fence(p, 0);
	persist_flush(p, 0, PERSIST_CLFLUSH, 64);
	persist_wbinvd(p, 0);
	memset(live + 256, 0x22, 8);
	persist_nt_store(p, 1, 256, 8);
	persist_fence(p, 1);
	persist_checkpoint(p, 1, &cp);
	replay(log, &r);
	CHECK(shadow[64] == 0 && shadow[256] == 0 && !r.is_durable[1]);
	CHECK(cp.dirty_lines == 2 && cp.unfenced_lines == 0 && r.npending == 2);
	CHECK(r.pending[0] == 64 && r.pending[1] == 256);
	persist_host_flush(p);
	store(p, 512, 0x33, 8);
	persist_checkpoint(p, 2, &cp);
	replay(log, &r);
	CHECK(shadow[64] == 0x11 && shadow[256] == 0x22 && shadow[512] == 0);
	CHECK(r.is_durable[1] && r.is_durable[4] && !r.is_durable[8]);
	CHECK(r.npending == 1 && r.pending[0] == 512);
	CHECK(persist_stats(p).host_flushes == 1);
	persist_free(p);
	fclose(log);
}

/*
 * A vCPU's repeated stores to one line skip the lock; a flush on another
 * vCPU in between must still make the next store count (the line is dirty
 * again, and a checkpoint calls it pending with its new content).
 */
static void test_store_fast_path(void)
{
	FILE *log = tmpfile();
	struct persist *p = fresh(PERSIST_ADR, 2, log);
	struct persist_checkpoint cp;
	struct replay r;

	for (unsigned off = 0; off < 64; off += 8)
		store(p, off, 0x10, 8);
	persist_flush(p, 1, PERSIST_CLFLUSH, 0);
	CHECK(shadow[0] == 0x10);
	store(p, 8, 0x20, 8); /* same line, same vCPU as before the flush */
	persist_checkpoint(p, 1, &cp);
	replay(log, &r);
	CHECK(cp.dirty_lines == 1 && cp.first_dirty == 0);
	CHECK(r.npending == 1 && r.pending[0] == 0 && r.pending_data[0][8] == 0x20);
	/* ... and a second flush of it is not redundant. */
	CHECK(!persist_flush(p, 1, PERSIST_CLFLUSH, 0));
	CHECK(persist_flush(p, 1, PERSIST_CLFLUSH, 0));
	/* Stores spanning two lines dirty both. */
	store(p, 1000, 0x30, 48);
	persist_checkpoint(p, 2, &cp);
	replay(log, &r);
	CHECK(cp.dirty_lines == 2 && cp.first_dirty == 960);
	CHECK(r.npending == 2 && r.pending[0] == 960 && r.pending[1] == 1024);
	persist_free(p);
	fclose(log);
}

/*
 * Many pending lines, scattered: the pending records of a checkpoint come
 * in ascending order of line, and a later checkpoint logs only what changed.
 */
static void test_many_lines(void)
{
	FILE *log = tmpfile();
	struct persist *p = fresh(PERSIST_ADR, 1, log);
	struct persist_checkpoint cp;
	struct replay r;

	for (uint64_t l = SIZE / 64; l-- > 0;)
		if (l % 3 == 0)
			store(p, l * 64, (uint8_t)l, 1);
	persist_checkpoint(p, 1, &cp);
	replay(log, &r);
	CHECK(cp.dirty_lines == (SIZE / 64 + 2) / 3 && cp.first_dirty == 0);
	CHECK(r.npending == cp.dirty_lines);
	for (unsigned i = 0; i < 64; i++)
		CHECK(r.pending[i] == i * 3 * 64);
	for (uint64_t l = 0; l < SIZE / 64; l += 3)
		persist_flush(p, 0, PERSIST_CLFLUSH, l * 64);
	persist_checkpoint(p, 2, &cp);
	replay(log, &r);
	CHECK(cp.dirty_lines == 0 && r.npending == 0);
	CHECK(persist_stats(p).logged_lines == (SIZE / 64 + 2) / 3);
	CHECK(r.is_durable[3] && r.durable[3 * 64] == 3 && !r.is_durable[4]);
	persist_free(p);
	fclose(log);
}

static void test_log_failure(void)
{
	/* A log that cannot be written is reported, not ignored. */
	FILE *full = fopen("/dev/full", "w");
	struct persist *p;

	if (!full)
		return;
	setvbuf(full, NULL, _IONBF, 0);
	p = fresh(PERSIST_ADR, 1, full);
	store(p, 0, 1, 1);
	persist_flush(p, 0, PERSIST_CLFLUSH, 0);
	persist_checkpoint(p, 1, NULL);
	CHECK(persist_log_failed(p));
	persist_free(p);
	fclose(full);
}

int main(void)
{
	test_adr();
	test_eadr();
	test_host_flush();
	test_store_fast_path();
	test_many_lines();
	test_log_failure();
	printf("test_persist: %s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
