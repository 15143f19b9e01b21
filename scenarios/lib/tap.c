/* tap.c - see tap.h */
#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int planned = -1;
static int ran;
static int failed;

static void header(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
}

void tap_plan(int count)
{
	header();
	planned = count;
	printf("1..%d\n", count);
}

bool tap_ok(bool ok, const char *fmt, ...)
{
	va_list ap;

	header();
	ran++;
	if (!ok)
		failed++;
	printf("%sok %d - ", ok ? "" : "not ", ran);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return ok;
}

void tap_skip(const char *reason, const char *fmt, ...)
{
	va_list ap;

	header();
	ran++;
	printf("ok %d - ", ran);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", reason);
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	header();
	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void tap_skip_all(const char *fmt, ...)
{
	va_list ap;

	header();
	fputs("1..0 # SKIP ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(TAP_EXIT_SKIP);
}

void tap_bail(const char *fmt, ...)
{
	va_list ap;

	header();
	fputs("Bail out! ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	exit(TAP_EXIT_FAIL);
}

void tap_finish(void)
{
	if (planned >= 0 && ran != planned) {
		tap_diag("planned %d tests but ran %d", planned, ran);
		failed++;
	}
	fflush(stdout);
	exit(failed ? TAP_EXIT_FAIL : TAP_EXIT_PASS);
}
