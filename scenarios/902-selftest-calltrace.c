/*
 * selftest-calltrace - put a "Call Trace" into dmesg (harness self-test)
 *
 * Not a DAX scenario: every TAP point passes, yet the scenario must be
 * reported failed, because the agent's dmesg check finds the backtrace
 * that sysrq 'l' (show backtrace of all active CPUs) prints.
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
	f = fopen("/proc/sysrq-trigger", "w");
	if (!f)
		tap_skip_all("no /proc/sysrq-trigger");
	fputs("l", f);
	fclose(f);
	tap_ok(true, "asked the kernel for a backtrace of all CPUs");
	tap_finish();
}
