/*
 * daxlab-emit - the guest agent's voice on the host-parsed channels.
 *
 * usage: daxlab-emit line TAG [KEY=VALUE]...
 *        daxlab-emit point N STATUS "SCENARIO FS" REASON
 *        daxlab-emit file NAME PATH
 *
 * "line" prints "# TAG: KEY=VALUE ..." on stdout (the agent sends it to
 * the TAP port) after checking it against the grammar of
 * protocol/daxlab-protocol.h, the same check the host makes; a free-text
 * value (reason=, what=) has its non-printable characters replaced by '?'
 * and is cut to its cap first, since it quotes the guest (a scenario's
 * bail-out, a kernel log line). An empty value leaves its key out.
 *
 * "point" prints the TAP test point that closes a scenario's result:
 * "ok N - SCENARIO FS", "ok N - SCENARIO FS # SKIP REASON" or "not ok N -
 * SCENARIO FS # STATUS: REASON", REASON cleaned like free text.
 *
 * "file" prints PATH framed for the files port: "@@daxlab-file NAME
 * SIZE", the bytes, "@@daxlab-end". NAME must be one the protocol allows;
 * a file over its kind's cap is cut, keeping its head or its tail, with
 * a note at its start.
 *
 * Exit: 0, or 2 with a message on stderr (nothing printed on stdout).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daxlab-protocol.h"

static int usage(FILE *f, int status)
{
	fprintf(f, "usage: daxlab-emit line TAG [KEY=VALUE]...\n"
	           "       daxlab-emit point N STATUS \"SCENARIO FS\" REASON\n"
	           "       daxlab-emit file NAME PATH\n");
	return status;
}

/* Free text fit for a line: printable ASCII, at most DAXLAB_CAP_TEXT. */
static void clean_text(char *s)
{
	for (char *c = s; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			*c = '?';
	if (strlen(s) > DAXLAB_CAP_TEXT)
		s[DAXLAB_CAP_TEXT] = 0;
}

/* Whether @key (of @klen bytes) is a free-text field of @grammar. */
static bool is_text_key(const char *grammar, const char *key, size_t klen)
{
	for (const char *g = grammar; *g;) {
		const char *eq = strchr(g, '='), *sp;

		if (!eq)
			return false;
		if ((size_t)(eq - g) == klen && !strncmp(g, key, klen) && eq[1] == 'T')
			return true;
		sp = strchr(eq, ' ');
		if (!sp)
			return false;
		g = sp + 1;
	}
	return false;
}

static int emit_line(int argc, char **argv)
{
	const struct daxlab_line_kind *kind;
	static char line[DAXLAB_CAP_LINE + 1], copy[DAXLAB_CAP_LINE + 1];
	struct daxlab_line parsed;
	char err[160];
	size_t n;
	bool first = true;

	kind = daxlab_line_kind(argv[0]);
	if (!kind) {
		fprintf(stderr, "daxlab-emit: unknown line kind: %s\n", argv[0]);
		return 2;
	}
	n = (size_t)snprintf(line, sizeof(line), "# %s", kind->tag);
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq) {
			fprintf(stderr, "daxlab-emit: not KEY=VALUE: %s\n", argv[i]);
			return 2;
		}
		if (!eq[1])
			continue;
		if (is_text_key(kind->grammar, argv[i], (size_t)(eq - argv[i])))
			clean_text(eq + 1);
		n += (size_t)snprintf(line + n, n < sizeof(line) ? sizeof(line) - n : 0, "%s%s",
		                      first ? ": " : " ", argv[i]);
		first = false;
		if (n >= sizeof(line)) {
			fprintf(stderr, "daxlab-emit: line too long\n");
			return 2;
		}
	}
	memcpy(copy, line, sizeof(copy));
	if (daxlab_line_parse(copy, &parsed, err, sizeof(err)) != 0) {
		fprintf(stderr, "daxlab-emit: %s: %s\n", err, line);
		return 2;
	}
	printf("%s\n", line);
	return fflush(stdout) == 0 ? 0 : 2;
}

static int emit_point(const char *n, const char *status, const char *what, char *reason)
{
	if (!daxlab_value_ok('U', n) || !daxlab_value_ok('S', status) ||
	    !daxlab_value_ok('T', what)) {
		fprintf(stderr, "daxlab-emit: point: bad number, status or name\n");
		return 2;
	}
	clean_text(reason);
	if (!strcmp(reason, "-"))
		reason[0] = 0;
	if (!strcmp(status, "pass"))
		printf("ok %s - %s\n", n, what);
	else if (!strcmp(status, "skip"))
		printf("ok %s - %s # SKIP %s\n", n, what, reason);
	else
		printf("not ok %s - %s # %s: %s\n", n, what, status, reason);
	return fflush(stdout) == 0 ? 0 : 2;
}

static int emit_file(const char *name, const char *path)
{
	struct daxlab_file_name fn;
	struct stat st;
	FILE *f;
	long long size, skip = 0, send;
	char note[128] = "";
	static char buf[65536];

	if (daxlab_file_name_parse(name, &fn) != 0) {
		fprintf(stderr, "daxlab-emit: not a file name the protocol allows: %s\n", name);
		return 2;
	}
	f = fopen(path, "rb");
	if (!f || fstat(fileno(f), &st) != 0) {
		fprintf(stderr, "daxlab-emit: cannot read %s: %s\n", path, strerror(errno));
		return 2;
	}
	size = st.st_size;
	send = size;
	if ((unsigned long long)size > fn.kind->cap) {
		snprintf(note, sizeof(note), "# daxlab-emit: cut to the %s %lu of %lld bytes\n",
		         fn.kind->keep == DAXLAB_KEEP_TAIL ? "newest" : "first", fn.kind->cap,
		         size);
		send = (long long)fn.kind->cap - (long long)strlen(note);
		if (fn.kind->keep == DAXLAB_KEEP_TAIL)
			skip = size - send;
	}
	if (skip && fseek(f, skip, SEEK_SET) != 0) {
		fprintf(stderr, "daxlab-emit: cannot seek in %s\n", path);
		return 2;
	}
	printf("%s%s %lld\n%s", DAXLAB_FILE_BEGIN, name, send + (long long)strlen(note), note);
	for (long long left = send; left > 0;) {
		size_t want = left < (long long)sizeof(buf) ? (size_t)left : sizeof(buf);
		size_t got = fread(buf, 1, want, f);

		/* A file that shrank under us: pad, the frame's size was said. */
		if (got == 0) {
			memset(buf, ' ', want);
			got = want;
		}
		fwrite(buf, 1, got, stdout);
		left -= (long long)got;
	}
	fclose(f);
	printf("\n%s\n", DAXLAB_FILE_END);
	return fflush(stdout) == 0 ? 0 : 2;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return usage(stdout, 0);
	if (argc >= 3 && !strcmp(argv[1], "line"))
		return emit_line(argc - 2, argv + 2);
	if (argc == 6 && !strcmp(argv[1], "point"))
		return emit_point(argv[2], argv[3], argv[4], argv[5]);
	if (argc == 4 && !strcmp(argv[1], "file"))
		return emit_file(argv[2], argv[3]);
	return usage(stderr, 2);
}
