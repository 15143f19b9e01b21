/*
 * selftest-panic - crash the guest kernel on purpose (harness self-test)
 *
 * Not a DAX scenario: it proves that the host notices a kernel panic and
 * reports it as a failure instead of a pass. Uses sysrq-trigger 'c'.
 */
#include <stdio.h>

#include "lib/tap.h"

int main(void)
{
	FILE *f;

	tap_plan(1);
	f = fopen("/proc/sys/kernel/sysrq", "w");
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	tap_diag("triggering a kernel crash through /proc/sysrq-trigger");
	f = fopen("/proc/sysrq-trigger", "w");
	if (!f)
		tap_skip_all("no /proc/sysrq-trigger");
	fputs("c", f);
	fclose(f);
	/* Not reached when the crash works; the host must not see a pass. */
	tap_ok(false, "the kernel survived sysrq-c");
	tap_finish();
}
