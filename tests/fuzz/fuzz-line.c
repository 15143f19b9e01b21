/*
 * libFuzzer target: the protocol's grammar (protocol/daxlab-line.c), a
 * line and a file name. A line that parses must have only values its
 * grammar allows.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daxlab-protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), err[160];
	struct daxlab_line l;
	struct daxlab_file_name fn;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	if (daxlab_line_parse(buf, &l, err, sizeof(err)) == 0) {
		for (unsigned i = 0; i < l.nfields; i++)
			for (const char *c = l.field[i].value; *c; c++)
				if (*c < 0x20 || *c > 0x7e)
					__builtin_trap();
	}
	memcpy(buf, data, size);
	buf[size] = 0;
	if (daxlab_file_name_parse(buf, &fn) == 0 && (strstr(buf, "..") || buf[0] == '/'))
		__builtin_trap();
	free(buf);
	return 0;
}
