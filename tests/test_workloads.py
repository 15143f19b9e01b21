"""Bring your own workload: run.sh --payload DIR --exec CMD, and --shell.

A static C program and a shell script put into the guest with --payload
run on the DAX mount (the program checks statx STATX_ATTR_DAX on a file it
makes in its working directory); their output and exit code come back like
a scenario's. --shell gets commands on stdin and must show the DAX mount.
"""
import json
import subprocess

from conftest import RUN_SH, TOP

PROGRAM = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void)
{
	char cwd[256];
	struct statx st;
	int fd = open("mine.dat", O_RDWR | O_CREAT, 0644);

	if (fd < 0 || write(fd, "hello", 5) != 5 || fsync(fd) != 0)
		return 1;
	if (statx(AT_FDCWD, "mine.dat", 0, STATX_BASIC_STATS, &st) != 0)
		return 1;
	printf("cwd=%s dax=%d\n", getcwd(cwd, sizeof(cwd)) ? cwd : "?",
	       !!(st.stx_attributes & STATX_ATTR_DAX));
	return 0;
}
"""


def test_payload_program_and_script_run_on_the_dax_mount(daxlab, tmp_path):
    payload = tmp_path / "payload"
    payload.mkdir()
    (tmp_path / "prog.c").write_text(PROGRAM)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(payload / "daxprog"), str(tmp_path / "prog.c")],
                   check=True)
    # daxlab-mark (in the guest's PATH) gives the plugin a checkpoint from a script.
    (payload / "check.sh").write_text("#!/bin/sh\necho script-ran in $(pwd) payload=$DAXLAB_PAYLOAD\n"
                                      "sync && daxlab-mark checkpoint 77\n")
    (payload / "check.sh").chmod(0o755)
    run = daxlab("--payload", str(payload), "--exec", "daxprog && check.sh", "--fs", "ext4,xfs")
    assert run.rc == 0, run
    for fs in ("ext4", "xfs"):
        s = run.scenario("payload", fs)
        assert s["status"] == "pass" and s["dax"] is True, s
        out = (run.dir / f"payload-{fs}.txt").read_text()
        assert "cwd=/mnt/dax/payload dax=1" in out, out
        assert "script-ran in /mnt/dax/payload payload=/payload" in out, out
    # only the payload ran (no --scenario)
    assert [s["name"] for s in run.summary["scenarios"]] == ["payload", "payload"]
    # one crash state per filesystem, from the script's daxlab-mark
    stats = json.loads((run.dir / "pmem-stats.json").read_text())
    assert [c["id"] for c in stats["checkpoints"]] == [77, 77], stats["checkpoints"]
    assert stats["watch"] == {"from": "marker", "started": True}, stats["watch"]


def test_payload_exit_codes_are_results(daxlab):
    run = daxlab("--exec", "echo about to fail; exit 3", "--scenario", "dax-basics")
    assert run.rc == 1, run
    s = run.scenario("payload", "ext4")
    assert s["status"] == "fail" and s["reason"] == "exit 3", s
    assert run.scenario("dax-basics", "ext4")["status"] == "pass"
    assert "about to fail" in (run.dir / "payload-ext4.txt").read_text()
    skip = daxlab("--exec", "echo '1..0 # SKIP no such device here'; exit 4")
    assert skip.rc == 0 and skip.scenario("payload", "ext4")["status"] == "skip", skip


def test_shell_reads_commands_and_shows_the_dax_mount(tmp_path):
    p = subprocess.Popen(
        [str(RUN_SH), "--shell", "--results", str(tmp_path / "r"), "--timeout", "300"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=TOP)
    seen = []
    # type only once the shell is there, as a person would
    for line in iter(p.stdout.readline, ""):
        seen.append(line)
        if "exit the shell to go on" in line:
            break
    p.stdin.write("grep ' /mnt/dax ' /proc/mounts; echo shell-pwd=$(pwd); exit\n")
    p.stdin.close()
    out = "".join(seen) + p.stdout.read()  # run.sh's own time limit ends it
    p.wait(timeout=60)
    assert p.returncode == 0, out
    assert "shell-pwd=/mnt/dax/shell" in out, out
    assert "/mnt/dax ext4 rw" in out and "dax=always" in out, out
    log = next((tmp_path / "r").glob("2*/console.log")).read_text()
    assert "shell-pwd=/mnt/dax/shell" in log and "shell exited" in log
