/*
 * selftest-calltrace - put a "Call Trace" into dmesg (harness self-test)
 *
 * Not a DAX scenario: every TAP point passes, yet the scenario must be
 * reported failed, because the agent's dmesg check finds the backtrace
 * that sysrq 'l' (show backtrace of all active CPUs) prints.
 *
 * daxlab-groups: selftest
 */
#include "lib/daxenv.h"
#include "lib/tap.h"

int main(void)
{
	tap_plan(1);
	if (!daxenv_sysrq('l'))
		tap_skip_all("no /proc/sysrq-trigger");
	tap_ok(true, "asked the kernel for a backtrace of all CPUs");
	tap_finish();
}
