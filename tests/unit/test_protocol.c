/*
 * Unit test of the guest-to-host protocol (protocol/daxlab-line.c) and the
 * host's parsers of it (host/tap-stream.c, host/files-channel.c,
 * host/plan.c): lines that must parse and lines that must not, file names
 * the guest may and may not send, and TAP streams in which a result is
 * forged, repeated or out of order.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collect.h"

#include "check.h"

static bool parses(const char *line)
{
	char buf[8192], err[160];
	struct daxlab_line l;

	snprintf(buf, sizeof(buf), "%s", line);
	return daxlab_line_parse(buf, &l, err, sizeof(err)) == 0;
}

static void test_lines(void)
{
	char buf[512], err[160];
	struct daxlab_line l;

	CHECK(parses("# daxlab-result: scenario=dax-basics fs=ext4 status=pass dax=1 duration=3.13 "
	             "exit=0 reason=-"));
	CHECK(parses("# daxlab-result: scenario=x fs=xfs status=fail dax=0 duration=0 exit=1 "
	             "reason=exit 1: Bail out! a b c"));
	CHECK(parses("# daxlab-done"));
	CHECK(parses("# daxlab-guest: kernel=6.1.0-57-amd64 cpus=2 flush=clflush,clwb "
	             "write_cache=1 persistence_domain=memory_controller"));
	CHECK(parses("# daxlab-guest: kernel=6.1 cpus=2 write_cache=- persistence_domain=-"));
	CHECK(parses("# daxlab-campaign: iterations=3 seconds=1.5 hits=0 known=0 seed=1"));
	CHECK(parses("# daxlab-campaign: iterations=3 seconds=1.500 hits=1 known=0 "
	             "first_hit_round=0 first_hit_seconds=0.100 seed=7"));
	CHECK(parses("# daxlab-expect-window: id=1001 stores=96 loads=24"));
	CHECK(parses("# daxlab-perf: phase=chase window=101 ops=1 bytes=2 ns=3 ns_per_op=1.5 "
	             "gbps=0.0001 base_ns_per_op=2 stall_ns_per_op=-0.25"));
	/* the attacks on the old sed and awk readers are just bad lines now */
	CHECK(!parses("# daxlab-expect-window: id=1 x/e touch /tmp/pwned/=1"));
	CHECK(!parses("# daxlab-expect-window: id=1 stores=1;e"));
	CHECK(!parses("# daxlab-result: scenario=a fs=ext4 status=pass dax=1 duration=1.00,\"f\":1 "
	              "exit=0 reason=-"));
	CHECK(!parses("# daxlab-result: scenario=a fs=ext4 status=pass dax=1 duration=1 exit=0 "
	              "reason=\x1b[2J"));
	CHECK(!parses("# daxlab-result: scenario=../x fs=ext4 status=pass dax=1 duration=1 exit=0 "
	              "reason=-"));
	CHECK(!parses("# daxlab-result: scenario=a fs=btrfs status=pass dax=1 duration=1 exit=0 "
	              "reason=-"));
	CHECK(!parses("# daxlab-result: scenario=a fs=ext4 status=great dax=1 duration=1 exit=0 "
	              "reason=-"));
	CHECK(!parses("# daxlab-result: scenario=a fs=ext4 status=pass dax=2 duration=1 exit=0 "
	              "reason=-"));
	CHECK(!parses("# daxlab-result: fs=ext4 scenario=a status=pass dax=1 duration=1 exit=0 "
	              "reason=-"));
	CHECK(!parses("# daxlab-result: scenario=a fs=ext4"));
	CHECK(!parses("# daxlab-done: now"));
	CHECK(!parses("# daxlab-nonsense: a=1"));
	CHECK(!parses("# daxlab-image: fs=ext4 boots=99999999999999999"));
	CHECK(!parses("# daxlab-image: fs=ext4 boots=1 "));
	CHECK(!parses("# daxlab-image: fs=ext4  boots=1"));
	CHECK(!parses("# daxlab-expect-window: id=1 stores=1 stores=2"));
	CHECK(!parses("# daxlab-campaign: iterations=3 seconds=1e9 hits=0 known=0 seed=1"));
	/* a long free text */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "# daxlab-known: round=1 what=", 29);
	buf[29 + DAXLAB_CAP_TEXT] = 0;
	CHECK(daxlab_line_parse(buf, &l, err, sizeof(err)) == 0);
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "# daxlab-known: round=1 what=", 29);
	buf[29 + DAXLAB_CAP_TEXT + 1] = 0;
	CHECK(daxlab_line_parse(buf, &l, err, sizeof(err)) != 0);
	snprintf(buf, sizeof(buf), "# daxlab-hit: n=1 round=2 seed=3 ns=4 what=x y=z");
	CHECK(daxlab_line_parse(buf, &l, err, sizeof(err)) == 0);
	CHECK(!strcmp(daxlab_line_get(&l, "what"), "x y=z"));
	CHECK(!strcmp(daxlab_line_get(&l, "seed"), "3"));
}

static bool name_ok(const char *name)
{
	struct daxlab_file_name fn;

	return daxlab_file_name_parse(name, &fn) == 0;
}

static void test_file_names(void)
{
	struct daxlab_file_name fn;

	CHECK(name_ok("dmesg.txt") && name_ok("pmem-data.txt") && name_ok("iomem-pmem.txt"));
	CHECK(name_ok("fs_dax/fault-vs-truncate-xfs.txt"));
	CHECK(name_ok("hits/a-b-ext2/hit-5.txt"));
	CHECK(daxlab_file_name_parse("hits/fault-vs-truncate-ext4/hit-3.txt", &fn) == 0 &&
	      !strcmp(fn.scenario, "fault-vs-truncate") && !strcmp(fn.fs, "ext4") && fn.n == 3);
	static const char *const bad[] = {"pmem0.img",
	                                  "replay/args",
	                                  ".",
	                                  "..",
	                                  "fs_dax",
	                                  "fs_dax/",
	                                  "fs_dax/../x-ext4.txt",
	                                  "/etc/passwd",
	                                  "pmem-stats.json",
	                                  "pmem-log.bin",
	                                  "summary.json",
	                                  "report.html",
	                                  "hits/a-ext4/hit-6.txt",
	                                  "hits/a-ext4/hit-0.txt",
	                                  "hits/a-ext4/timeline-1.txt",
	                                  "hits/a-ext4/hit-01.txt",
	                                  "hits/a-ext4/hit-005.txt",
	                                  "fs_dax/a-btrfs.txt",
	                                  "fs_dax/A-ext4.txt",
	                                  "fs_dax/-ext4.txt",
	                                  "dmesg/a-ext4.txt.x",
	                                  "dmesg.txt/x",
	                                  "fs_dax/a b-ext4.txt",
	                                  ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (name_ok(bad[i]))
			fprintf(stderr, "allowed: %s\n", bad[i]);
		CHECK(!name_ok(bad[i]));
	}
}

static const char *plan_json =
    "{\"scenarios\": [{\"name\": \"dax-basics\", \"bin\": \"001-dax-basics\"},"
    " {\"name\": \"payload\", \"bin\": \"000-payload\"}],"
    " \"fs\": [\"ext4\"], \"plugin\": \"persist\", \"pmem_base\": \"0x100000000\","
    " \"pmem_bytes\": 536870912, \"cpus\": 2}";

static void tap(const char *text, struct tap_stream *t, struct plan *p)
{
	char err[200];

	CHECK(plan_parse(plan_json, strlen(plan_json), p, err, sizeof(err)) == 0);
	tap_parse(text, strlen(text), p, t);
}

#define HEAD "TAP version 13\n1..2\n"
#define SCEN                                                                                       \
	"# Subtest: dax-basics ext4\n    TAP version 13\n    1..1\n    ok 1 - fine\n"              \
	"# daxlab-result: scenario=dax-basics fs=ext4 status=pass dax=1 duration=1.00 exit=0 "     \
	"reason=-\nok 1 - dax-basics ext4\n"
#define PAYLOAD_FAIL                                                                               \
	"# Subtest: payload ext4\n    anything at all\n"                                           \
	"# daxlab-result: scenario=payload fs=ext4 status=fail dax=1 duration=1.00 exit=3 "        \
	"reason=exit 3\nnot ok 2 - payload ext4 # fail: exit 3\n"
#define FORGED                                                                                     \
	"# daxlab-result: scenario=payload fs=ext4 status=pass dax=1 duration=1.00 exit=0 "        \
	"reason=-\n"

static void test_tap_stream(void)
{
	struct tap_stream t;
	struct plan p;

	tap(HEAD SCEN PAYLOAD_FAIL "# daxlab-done\n", &t, &p);
	CHECK(!t.error[0] && t.done && t.n == 2);
	CHECK(t.e[0].result && !strcmp(t.e[0].status, "pass") && t.e[0].dax);
	CHECK(t.e[1].result && !strcmp(t.e[1].status, "fail") && t.e[1].exit_code == 3);
	CHECK(!strcmp(t.e[1].sub.s, "anything at all\n"));
	tap_free(&t);
	/* a payload that writes a passing result on the TAP port itself */
	tap(HEAD SCEN "# Subtest: payload ext4\n" FORGED "ok 2 - payload ext4\n" PAYLOAD_FAIL
	              "# daxlab-done\n",
	    &t, &p);
	CHECK(t.error[0] != 0);
	tap_free(&t);
	/* the forged line inside the subtest's own output is only text */
	tap(HEAD SCEN "# Subtest: payload ext4\n    " FORGED PAYLOAD_FAIL "# daxlab-done\n", &t,
	    &p);
	CHECK(t.error[0] != 0); /* two "# Subtest: payload" */
	tap_free(&t);
	/* out of order: the payload's result before dax-basics' */
	tap(HEAD PAYLOAD_FAIL SCEN "# daxlab-done\n", &t, &p);
	CHECK(t.error[0] != 0 && !t.e[1].result);
	tap_free(&t);
	/* a test point that contradicts its result */
	tap(HEAD "# daxlab-result: scenario=dax-basics fs=ext4 status=fail dax=1 duration=1 exit=1 "
	         "reason=x\nok 1 - dax-basics ext4\n",
	    &t, &p);
	CHECK(t.error[0] != 0);
	tap_free(&t);
	/* a line that is not TAP in a scenario's subtest */
	tap(HEAD "# Subtest: dax-basics ext4\n    rm -rf /\n", &t, &p);
	CHECK(t.error[0] != 0);
	tap_free(&t);
	/* lines after the end */
	tap(HEAD SCEN PAYLOAD_FAIL "# daxlab-done\n" FORGED, &t, &p);
	CHECK(t.error[0] != 0);
	tap_free(&t);
	/* the guest stopped mid-line: not an error, the entry has no result */
	tap(HEAD "# Subtest: dax-basics ext4\n    ok 1 - fi", &t, &p);
	CHECK(!t.error[0] && !t.e[0].result && t.e[0].subtest);
	tap_free(&t);
	/* a wrong plan */
	tap("TAP version 13\n1..7\n", &t, &p);
	CHECK(t.error[0] != 0);
	tap_free(&t);
	/* a NUL byte */
	tap(HEAD SCEN, &t, &p);
	tap_free(&t);
	static const char nul[] = HEAD "# daxlab-done\0\n";

	CHECK(plan_parse(plan_json, strlen(plan_json), &p, NULL, 0) == 0);
	tap_parse(nul, sizeof(nul) - 1, &p, &t);
	CHECK(t.error[0] != 0);
	tap_free(&t);
}

/* Two filesystems: the payload runs after every other scenario on both. */
static const char *plan2_json =
    "{\"scenarios\": [{\"name\": \"dax-basics\", \"bin\": \"001-dax-basics\"},"
    " {\"name\": \"payload\", \"bin\": \"000-payload\"}],"
    " \"fs\": [\"ext4\", \"xfs\"], \"plugin\": \"persist\", \"pmem_base\": \"0x100000000\","
    " \"pmem_bytes\": 536870912, \"cpus\": 2}";

static void result(struct strbuf *b, unsigned n, const char *scen, const char *fs)
{
	sb_addf(b,
	        "# daxlab-result: scenario=%s fs=%s status=pass dax=1 duration=1 exit=0 reason=-\n"
	        "ok %u - %s %s\n",
	        scen, fs, n, scen, fs);
}

static void test_payload_runs_last(void)
{
	struct strbuf b = {0};
	struct tap_stream t;
	struct plan p;
	char err[200];

	CHECK(plan_parse(plan2_json, strlen(plan2_json), &p, err, sizeof(err)) == 0);
	sb_addf(&b, "TAP version 13\n1..4\n");
	result(&b, 1, "dax-basics", "ext4");
	result(&b, 2, "dax-basics", "xfs");
	result(&b, 3, "payload", "ext4");
	result(&b, 4, "payload", "xfs");
	sb_addf(&b, "# daxlab-done\n");
	tap_parse(b.s, b.len, &p, &t);
	CHECK(!t.error[0] && t.done && t.e[1].fs == 1 && t.e[2].scen == 1 && t.e[2].fs == 0);
	tap_free(&t);
	sb_free(&b);
	/* the order a payload on ext4 could forge xfs' results in: refused */
	sb_addf(&b, "TAP version 13\n1..4\n");
	result(&b, 1, "dax-basics", "ext4");
	result(&b, 2, "payload", "ext4");
	tap_parse(b.s, b.len, &p, &t);
	CHECK(t.error[0] != 0);
	tap_free(&t);
	sb_free(&b);
	/* a payload's longest line, and one byte more */
	sb_addf(&b, "TAP version 13\n1..4\n");
	result(&b, 1, "dax-basics", "ext4");
	result(&b, 2, "dax-basics", "xfs");
	sb_addf(&b, "# Subtest: payload ext4\n    ");
	for (int i = 0; i < DAXLAB_CAP_TEXT_LINE; i++)
		sb_add(&b, "x", 1);
	sb_addf(&b, "\n");
	tap_parse(b.s, b.len, &p, &t);
	CHECK(!t.error[0] && t.e[2].sub.len == DAXLAB_CAP_TEXT_LINE + 1);
	tap_free(&t);
	b.len -= 1;
	sb_addf(&b, "x\n");
	tap_parse(b.s, b.len, &p, &t);
	CHECK(t.error[0] != 0);
	tap_free(&t);
	sb_free(&b);
}

static long split(const char *raw, size_t n, char *err, size_t errlen, bool *trunc)
{
	char dir[] = "/tmp/daxlab-test-files.XXXXXX";
	struct plan p;
	long r;
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	CHECK(plan_parse(plan_json, strlen(plan_json), &p, err, errlen) == 0);
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	r = files_split(raw, n, fd, &p, trunc, err, errlen);
	close(fd);
	/* what it wrote: only names under dir */
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	return r;
}

#define FRAME(name, size, body) "@@daxlab-file " name " " #size "\n" body "\n@@daxlab-end\n"

static void test_files(void)
{
	char err[200];
	bool trunc;
	static const char ok[] =
	    FRAME("dmesg.txt", 5, "hello") FRAME("fs_dax/dax-basics-ext4.txt", 0, "");

	CHECK(split(ok, sizeof(ok) - 1, err, sizeof(err), &trunc) == 2 && !trunc);
	static const char *const bad[] = {
	    FRAME("pmem0.img", 2, "xx"),
	    FRAME("replay/args", 2, "xx"),
	    FRAME(".", 2, "xx"),
	    FRAME("fs_dax", 2, "xx"),
	    FRAME("fs_dax/other-ext4.txt", 2, "xx"),     /* a scenario not in the plan */
	    FRAME("fs_dax/dax-basics-xfs.txt", 2, "xx"), /* a filesystem not in the plan */
	    FRAME("dmesg.txt", 2, "xx") FRAME("dmesg.txt", 2, "xx"),
	    FRAME("dmesg.txt", 99999999999, "xx"),
	    FRAME("pmem-data.txt", 5000, "xx"),
	    FRAME("dmesg.txt", 3, "xx") FRAME("pmem-data.txt", 1, "x"), /* a size not the frame's */
	    "garbage\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long r = split(bad[i], strlen(bad[i]), err, sizeof(err), &trunc);

		if (r >= 0)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CHECK(r < 0 && err[0]);
	}
	/* cut off inside a frame: what came before is kept */
	static const char cut[] =
	    FRAME("dmesg.txt", 5, "hello") "@@daxlab-file iomem-pmem.txt 9\nab";

	CHECK(split(cut, sizeof(cut) - 1, err, sizeof(err), &trunc) == 1 && trunc);
}

static void test_plan(void)
{
	struct plan p;
	char err[200];
	static const char *const bad[] = {
	    "{}",
	    "[1]",
	    "not json",
	    "{\"scenarios\": [{\"name\": \"../x\", \"bin\": \"001-../x\"}], \"fs\": [\"ext4\"]}",
	    "{\"scenarios\": [], \"fs\": [\"ext4\", \"ext4\"]}",
	    "{\"scenarios\": [], \"fs\": [\"ext4\"], \"plugin\": \"off\", \"pmem_base\": \"1\"}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(plan_parse(bad[i], strlen(bad[i]), &p, err, sizeof(err)) != 0 && err[0]);
	CHECK(plan_parse(plan_json, strlen(plan_json), &p, err, sizeof(err)) == 0);
	CHECK(p.nscen == 2 && p.nfs == 1 && p.pmem_base == 0x100000000ull && p.cpus == 2);
}

static void test_text(void)
{
	char *c = text_clean("a\x1b[31mb\xff\xc3\xa9\n", 11, false);

	CHECK(!strcmp(c, "a?[31mb?\xc3\xa9?"));
	free(c);
	c = text_clean("x\ny\tz\r", 6, true);
	CHECK(!strcmp(c, "x\ny\tz?"));
	free(c);
	/* a C1 control in UTF-8 (U+009B, a CSI) is a control too */
	c = text_clean("\xc2\x9b", 2, false);
	CHECK(!strcmp(c, "??"));
	free(c);
	/* and what reorders text: a right-to-left override (U+202E) */
	c = text_clean("a\xe2\x80\xaez", 5, false);
	CHECK(!strcmp(c, "a???z"));
	free(c);
}

int main(void)
{
	test_lines();
	test_file_names();
	test_tap_stream();
	test_payload_runs_last();
	test_files();
	test_plan();
	test_text();
	printf("test_protocol: %d failures\n", failures);
	return failures != 0;
}
