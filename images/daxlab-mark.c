/*
 * daxlab-mark - give the daxlab-pmem plugin a marker from a shell.
 *
 * usage: daxlab-mark watch
 *        daxlab-mark checkpoint ID
 *        daxlab-mark crash-begin ID | crash-end ID
 *
 * The marker is the 8-byte NOP of protocol/daxlab-marker.h: without the
 * plugin (or on real hardware) this does nothing. The guest agent runs
 * "daxlab-mark watch" before it loads the NV-DIMM drivers; a payload
 * script can take a crash state (checkpoint) after its own commands, and
 * open a crash window (every fence that orders pending lines in it is a
 * crash point, whatever process or kernel thread runs it).
 * Windows are not offered: a window counts the events of the process that
 * opens it, which here would be this one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daxlab-marker.h"

static const struct {
	const char *name;
	enum daxlab_mark cmd;
	int takes_id;
} marks[] = {
    {"watch", DAXLAB_MARK_WATCH, 0},
    {"checkpoint", DAXLAB_MARK_CHECKPOINT, 1},
    {"crash-begin", DAXLAB_MARK_CRASH_BEGIN, 1},
    {"crash-end", DAXLAB_MARK_CRASH_END, 1},
};

static int usage(FILE *f, int status)
{
	fprintf(f, "usage: daxlab-mark watch\n"
	           "       daxlab-mark checkpoint ID\n"
	           "       daxlab-mark crash-begin ID | crash-end ID\n");
	return status;
}

int main(int argc, char **argv)
{
	unsigned long id = 0;
	char *end;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return usage(stdout, 0);
	for (size_t i = 0; argc >= 2 && i < sizeof(marks) / sizeof(marks[0]); i++) {
		if (strcmp(argv[1], marks[i].name))
			continue;
		if (argc != 2 + marks[i].takes_id)
			return usage(stderr, 2);
		if (marks[i].takes_id) {
			errno = 0;
			id = strtoul(argv[2], &end, 0);
			if (errno || end == argv[2] || *end || argv[2][0] == '-') {
				fprintf(stderr, "daxlab-mark: not a number: %s\n", argv[2]);
				return 2;
			}
		}
		daxlab_mark(marks[i].cmd, id);
		return 0;
	}
	if (argc >= 2)
		fprintf(stderr, "daxlab-mark: unknown marker: %s\n", argv[1]);
	return usage(stderr, 2);
}
