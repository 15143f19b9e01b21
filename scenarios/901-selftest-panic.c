/*
 * selftest-panic - crash the guest kernel on purpose (harness self-test)
 *
 * Not a DAX scenario: it proves that the host notices a kernel panic and
 * reports it as a failure instead of a pass. Uses sysrq-trigger 'c'.
 *
 * daxlab-groups: selftest
 */
#include "lib/daxenv.h"
#include "lib/tap.h"

int main(void)
{
	tap_plan(1);
	tap_diag("triggering a kernel crash through /proc/sysrq-trigger");
	if (!daxenv_sysrq('c'))
		tap_skip_all("no /proc/sysrq-trigger");
	/* Not reached when the crash works; the host must not see a pass. */
	tap_ok(false, "the kernel survived sysrq-c");
	tap_finish();
}
