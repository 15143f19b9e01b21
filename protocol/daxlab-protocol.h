/*
 * daxlab-protocol.h - everything a daxlab guest tells the host, and how.
 *
 * The guest is untrusted: it runs kernels with bugs put back, and payloads
 * we did not write, as root. This header is the one definition of what it
 * may say; the guest's emitters (images/daxlab-emit.c, scenarios/lib/) and
 * the host's parser (host/) both build on it, and protocol/README.md
 * explains it. Anything the host cannot parse against it fails the run.
 *
 * Channels (serial ports of the guest, files of the run directory):
 *   ttyS0  console.log        the console: for people; the host only looks
 *                             for the kernel's own panic lines in it
 *   ttyS1  tap.txt            TAP 13 with "# daxlab-*:" lines (below)
 *   ttyS2  guest-files.raw    files, framed (below)
 * A recovery guest (daxlab.mode=recover) has instead:
 *   ttyS1  (no file)          control, both ways, with daxlab-crash feed:
 *                             host "state SEQ" / "end", guest "ready" (once)
 *                             and "done SEQ"; anything else ends the check.
 *                             ttyS1 has IRQ 3 to itself: on ttyS2, which
 *                             shares IRQ 4 with the console, QEMU loses
 *                             receive interrupts
 *   ttyS2  recover-*.tap      TAP, daxlab-recover lines
 * The host kills the guest when a channel outgrows its cap.
 *
 * Lines on the TAP channel: "# TAG: key=value key=value ...", the keys in
 * the order of the TAG's grammar (daxlab_lines[] below), one space apart.
 *
 * Files channel framing, for each file:
 *   "@@daxlab-file NAME SIZE\n", SIZE bytes, "\n@@daxlab-end\n"
 * NAME is one of daxlab_files[]; SIZE is at most that kind's cap.
 *
 * Kernel command line (host to guest): the DAXLAB_ARG_* keys below, each
 * "daxlab.KEY=VALUE".
 *
 * The marker instruction (guest programs to the QEMU plugin) is in
 * daxlab-marker.h.
 */
#ifndef DAXLAB_PROTOCOL_H
#define DAXLAB_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

/* ---------------------------------------------------------------- ports */
#define DAXLAB_PORT_CONSOLE 0     /* ttyS0 */
#define DAXLAB_PORT_TAP 1         /* ttyS1 */
#define DAXLAB_PORT_FILES 2       /* ttyS2 */
#define DAXLAB_PORT_RECOVER_CTL 1 /* ttyS1 of a recovery guest */
#define DAXLAB_PORT_RECOVER_TAP 2 /* ttyS2 of a recovery guest */

/* ----------------------------------------------------------------- caps */
#define DAXLAB_CAP_CONSOLE (64ul << 20) /* console.log */
#define DAXLAB_CAP_TAP (16ul << 20)     /* tap.txt, and a recovery guest's */
#define DAXLAB_CAP_FILES (256ul << 20)  /* guest-files.raw, all files together */
#define DAXLAB_CAP_NFILES 4096          /* files in one run */
#define DAXLAB_CAP_LINE 4096            /* a "# daxlab-*:" line, or a line of a scenario's TAP */
#define DAXLAB_CAP_TEXT_LINE 65536      /* a line of a payload's free text */
#define DAXLAB_CAP_TEXT 240             /* a free-text field (reason=, what=) */
#define DAXLAB_CAP_FIELDS 24            /* key=value pairs on one line */
#define DAXLAB_CAP_WORD 64              /* a word value */
#define DAXLAB_CAP_NAME 40              /* a scenario name */
#define DAXLAB_WITNESS_FILES 5          /* hits that keep a witness file */
#define DAXLAB_CAP_UINT 9007199254740991ull /* 2^53 - 1: exact in JSON */

/* --------------------------------------------------- kernel command line */
#define DAXLAB_ARG_FS "fs"                   /* ext4,xfs: filesystems in order */
#define DAXLAB_ARG_SCENARIOS "scenarios"     /* 001-x,...: binaries under /scenarios */
#define DAXLAB_ARG_DAX "dax"                 /* 1 or 0 (--no-dax) */
#define DAXLAB_ARG_STIMEOUT "stimeout"       /* seconds a scenario may run */
#define DAXLAB_ARG_SEED "seed"               /* racing scenarios' seed */
#define DAXLAB_ARG_ITERATIONS "iterations"   /* their rounds */
#define DAXLAB_ARG_STRICT "strict"           /* 1: known kernel windows are hits */
#define DAXLAB_ARG_WIDEN "widen"             /* microseconds of kprobe delays */
#define DAXLAB_ARG_PMEM_BASE "pmem_base"     /* guest-physical address of the NV-DIMM */
#define DAXLAB_ARG_PMEM1 "pmem1"             /* 1: a second, small NV-DIMM is there */
#define DAXLAB_ARG_WRITE_CACHE "write_cache" /* 0 or 1: dax/write_cache */
#define DAXLAB_ARG_KEEP "keep"               /* 1: the NV-DIMM is a kept --image */
#define DAXLAB_ARG_SHELL "shell"             /* 1: an interactive shell per mount */
#define DAXLAB_ARG_MODE "mode"               /* "recover": a recovery guest */
#define DAXLAB_ARG_RECOVER "recover"         /* the scenario binary that recovers */

/* --------------------------------------------------------- TAP channel */
/*
 * Where a line may stand: at the top level of the agent's stream, inside
 * a scenario's subtest (indented four spaces), or in a recovery guest's
 * stream.
 */
enum daxlab_scope {
	DAXLAB_TOP = 1,
	DAXLAB_SUB = 2,
	DAXLAB_RECOVERY = 4,
};

/*
 * A line kind: its tag and the grammar of its fields, "key=T" words in
 * order, where T is
 *   U  an unsigned integer, at most DAXLAB_CAP_UINT
 *   D  a decimal number (optionally "-", digits, optionally "." and up to 6
 *      digits)
 *   X  a hexadecimal number, "0x" and 1-16 digits
 *   W  a word: 1 to DAXLAB_CAP_WORD of [A-Za-z0-9._,:+-]
 *   N  a scenario name: [a-z0-9][a-z0-9-]*, at most DAXLAB_CAP_NAME
 *   F  a filesystem: ext4, xfs or ext2, or devdax (no filesystem: --mode devdax)
 *   S  a status: pass, fail, skip or timeout
 *   B  0 or 1
 *   T  free text to the end of the line: printable ASCII, at most
 *      DAXLAB_CAP_TEXT characters (only last)
 * "key=T?" may be left out; a last word "*" takes any further
 * "key=U" pairs (keys of [a-z_], at most 31 characters).
 */
struct daxlab_line_kind {
	const char *tag;
	const char *grammar;
	unsigned scope;
};

#define DAXLAB_TAG_GUEST "daxlab-guest"
#define DAXLAB_TAG_RESULT "daxlab-result"
#define DAXLAB_TAG_WIDEN "daxlab-widen"
#define DAXLAB_TAG_IMAGE "daxlab-image"
#define DAXLAB_TAG_SHELL "daxlab-shell"
#define DAXLAB_TAG_DONE "daxlab-done"
#define DAXLAB_TAG_RECOVER "daxlab-recover"
#define DAXLAB_TAG_CAMPAIGN "daxlab-campaign"
#define DAXLAB_TAG_HIT "daxlab-hit"
#define DAXLAB_TAG_KNOWN "daxlab-known"
#define DAXLAB_TAG_EXPECT_WINDOW "daxlab-expect-window"
#define DAXLAB_TAG_CRASH_EXPECT "daxlab-crash-expect"
#define DAXLAB_TAG_RECOVER_EXPECT "daxlab-recover-expect"
#define DAXLAB_TAG_RECOVERED "daxlab-recovered"
#define DAXLAB_TAG_PERF "daxlab-perf"

static const struct daxlab_line_kind daxlab_lines[] = {
    /* the agent, at the top level */
    {DAXLAB_TAG_GUEST, "kernel=W cpus=U flush=W? write_cache=W persistence_domain=W", DAXLAB_TOP},
    {DAXLAB_TAG_RESULT, "scenario=N fs=F status=S dax=B duration=D exit=U reason=T", DAXLAB_TOP},
    {DAXLAB_TAG_WIDEN, "scenario=N fs=F point=W delays=U us=U", DAXLAB_TOP},
    {DAXLAB_TAG_IMAGE, "fs=F boots=U", DAXLAB_TOP},
    {DAXLAB_TAG_SHELL, "fs=F", DAXLAB_TOP},
    {DAXLAB_TAG_DONE, "", DAXLAB_TOP | DAXLAB_RECOVERY},
    /* a recovery guest: one line per crash state it was given (cs: centiseconds
     * of mount, the scenario's check, umount, fsck) */
    {DAXLAB_TAG_RECOVER, "state=U mount=W version=W fsck=W cs=W", DAXLAB_RECOVERY},
    /* scenarios, inside their subtest */
    {DAXLAB_TAG_CAMPAIGN,
     "iterations=U seconds=D hits=U known=U first_hit_round=U? first_hit_seconds=D? seed=U",
     DAXLAB_SUB},
    {DAXLAB_TAG_HIT, "n=U round=U seed=U ns=U what=T", DAXLAB_SUB},
    {DAXLAB_TAG_KNOWN, "round=U what=T", DAXLAB_SUB},
    {DAXLAB_TAG_EXPECT_WINDOW, "id=U *", DAXLAB_SUB},
    {DAXLAB_TAG_CRASH_EXPECT,
     "checkpoint=U devoffset=U old=X new=X durable=W samples=W seen=W name=W", DAXLAB_SUB},
    {DAXLAB_TAG_RECOVER_EXPECT, "checkpoint=U versions=W", DAXLAB_SUB},
    {DAXLAB_TAG_RECOVERED, "version=W", DAXLAB_SUB},
    {DAXLAB_TAG_PERF,
     "phase=N window=U ops=U bytes=U ns=U ns_per_op=D gbps=D base_ns_per_op=D "
     "stall_ns_per_op=D",
     DAXLAB_SUB},
};
#define DAXLAB_NLINES (sizeof(daxlab_lines) / sizeof(daxlab_lines[0]))

/* One parsed line: pointers into the caller's buffer. */
struct daxlab_line {
	const struct daxlab_line_kind *kind;
	unsigned nfields;
	struct {
		const char *key, *value;
	} field[DAXLAB_CAP_FIELDS];
};

/*
 * Parse @buf, one line without its newline, that starts with "# daxlab-"
 * (the indent of a subtest already taken off). @buf is cut into pieces in
 * place. Returns 0, or -1 with what is wrong in @err.
 */
int daxlab_line_parse(char *buf, struct daxlab_line *out, char *err, size_t errlen);
/* The value of @key, or NULL. */
const char *daxlab_line_get(const struct daxlab_line *l, const char *key);
/* The kind of @tag, or NULL. */
const struct daxlab_line_kind *daxlab_line_kind(const char *tag);
/* Whether @s is a value of grammar type @type (one of "UDXWNFSBT"). */
bool daxlab_value_ok(char type, const char *s);

/* ------------------------------------------------------- files channel */
#define DAXLAB_FILE_BEGIN "@@daxlab-file "
#define DAXLAB_FILE_END "@@daxlab-end"

/*
 * The files a guest may send. In a pattern, %s is a scenario name (one the
 * host asked for), %f a filesystem of the run, %n a witness number, 1 to
 * DAXLAB_WITNESS_FILES. A file larger than its cap is cut by the sender,
 * keeping its head or its tail; the host refuses one that is not.
 */
enum daxlab_keep { DAXLAB_KEEP_HEAD, DAXLAB_KEEP_TAIL };
struct daxlab_file_kind {
	const char *pattern;
	unsigned long cap;
	enum daxlab_keep keep;
};
static const struct daxlab_file_kind daxlab_files[] = {
    {"ndctl-namespace.json", 64ul << 10, DAXLAB_KEEP_HEAD},
    {"cxl-region.json", 16ul << 10, DAXLAB_KEEP_HEAD},
    {"pmem-data.txt", 4ul << 10, DAXLAB_KEEP_HEAD},
    {"iomem-pmem.txt", 4ul << 10, DAXLAB_KEEP_HEAD},
    {"dmesg.txt", 8ul << 20, DAXLAB_KEEP_TAIL},
    {"fs_dax/%s-%f.txt", 4ul << 20, DAXLAB_KEEP_TAIL},
    {"dmesg/%s-%f.txt", 1ul << 20, DAXLAB_KEEP_HEAD},
    {"hits/%s-%f/hit-%n.txt", 64ul << 10, DAXLAB_KEEP_HEAD},
};
#define DAXLAB_NFILES (sizeof(daxlab_files) / sizeof(daxlab_files[0]))
#define DAXLAB_CAP_FILE_NAME 128

/* What a file name said. */
struct daxlab_file_name {
	const struct daxlab_file_kind *kind;
	char scenario[DAXLAB_CAP_NAME + 1];
	char fs[8];
	unsigned n;
};
/* Match @name against daxlab_files[]: 0 and @out filled, or -1. */
int daxlab_file_name_parse(const char *name, struct daxlab_file_name *out);

/* Whether @fs is a filesystem the lab knows. */
bool daxlab_fs_ok(const char *fs);

#endif
