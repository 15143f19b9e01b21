/*
 * dax-probe - tell whether a file is DAX, for the guest agent.
 *
 * usage: dax-probe FILE
 * Prints "dax=1" or "dax=0" and exits 0; exits 2 with a message when the
 * kernel cannot tell (no STATX_ATTR_DAX in the attributes mask).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../scenarios/lib/daxenv.h"

int main(int argc, char **argv)
{
	int dax;

	if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(stderr, "usage: dax-probe FILE\n");
		return argc == 2 ? 0 : 2;
	}
	dax = daxenv_is_dax(argv[1]);
	if (dax < 0) {
		fprintf(stderr, "dax-probe: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	printf("dax=%d\n", dax);
	return 0;
}
