"""Faults around a run: run.sh stopped by a signal, QEMU killed under it.

run.sh stopped by SIGTERM or SIGKILL takes QEMU with it (QEMU gets SIGKILL
when its parent dies), leaves the run directory marked INCOMPLETE with its
logs, and results/latest does not point at it. QEMU killed by someone else
is reported as that, not as a time limit. run.sh stopped while it builds a
kernel stops the build, all of make's jobs included.
"""
import os
import pathlib
import shutil
import signal
import time

import pytest

from conftest import TOP, finish, start


def run_dir_of(results):
    dirs = [d for d in results.glob("2*") if d.is_dir()]
    return dirs[0] if len(dirs) == 1 else None


def wait_for_payload(proc, results, limit=240):
    """The run directory once the guest runs the payload (sleep 600)."""
    end = time.time() + limit
    while time.time() < end:
        assert proc.poll() is None, proc.communicate()
        d = run_dir_of(results)
        tap = d / "tap.txt" if d else None
        if tap and tap.exists() and "# Subtest: payload ext4" in tap.read_text(errors="replace"):
            return d
        time.sleep(1)
    pytest.fail("the guest never started the payload")


def qemu_pids(run_dir):
    """The QEMU processes whose command line names RUN_DIR."""
    pids = []
    for proc in os.listdir("/proc"):
        try:
            argv = open(f"/proc/{proc}/cmdline", "rb").read().split(b"\0")
        except (OSError, ValueError):
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and \
                any(str(run_dir).encode() in a for a in argv):
            pids.append(int(proc))
    return pids


def gone(run_dir, limit=30):
    end = time.time() + limit
    while time.time() < end:
        if not qemu_pids(run_dir):
            return True
        time.sleep(0.5)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_run_sh_stopped_takes_qemu_down_and_marks_the_run(tmp_path, sig):
    results = tmp_path / "r"
    proc = start(["--exec", "sleep 600"], results)
    run = wait_for_payload(proc, results)
    assert qemu_pids(run)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert gone(run), "QEMU outlived run.sh"
    assert (run / "INCOMPLETE").exists()
    assert not (results / "latest").exists()
    assert (run / "console.log").stat().st_size > 0
    if sig == signal.SIGTERM:
        # it had time to say so: the summary says interrupted
        summary = (run / "summary.json").read_text()
        assert '"guest_status": "interrupted"' in summary, summary
        assert "marked INCOMPLETE" in err, err


def test_qemu_killed_under_run_sh_is_reported_as_that(tmp_path):
    results = tmp_path / "r"
    proc = start(["--exec", "sleep 600"], results)
    run = wait_for_payload(proc, results)
    for pid in qemu_pids(run):
        os.kill(pid, signal.SIGKILL)
    r = finish(proc, results, timeout=120)
    assert r.rc == 1, r
    s = r.summary
    assert s["guest_status"] == "killed", s
    assert "QEMU was killed by SIGKILL (not by run.sh)" in s["guest_reason"], s
    assert s["scenarios"][0]["status"] == "fail"


def pids_running(path):
    """The processes whose command line names PATH."""
    pids = []
    for proc in os.listdir("/proc"):
        try:
            argv = open(f"/proc/{proc}/cmdline", "rb").read()
        except (OSError, ValueError):
            continue
        if str(path).encode() in argv:
            pids.append(int(proc))
    return pids


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_run_sh_stopped_while_building_a_kernel_stops_the_build(tmp_path, sig):
    # A "Linux tree" for --kernel-src whose configuration passes the checks
    # and whose bzImage never finishes: a job of make's that runs forever.
    src = tmp_path / "linux"
    (src / "scripts" / "kconfig").mkdir(parents=True)
    merge = src / "scripts" / "kconfig" / "merge_config.sh"
    merge.write_text("#!/bin/sh\nexit 0\n")
    job = src / "compile-forever.sh"
    job.write_text("#!/bin/sh\nwhile :; do sleep 1; done\n")
    for f in (merge, job):
        f.chmod(0o755)
    frags = " ".join(str(TOP / "guest-kernel" / "config" / f)
                     for f in ("daxlab.config", "slim.config"))
    (src / "Makefile").write_text(
        "VERSION = 6\nPATCHLEVEL = 1\n"
        f"x86_64_defconfig:\n\tcat {frags} >$(O)/.config.new\n"
        "olddefconfig:\n\t@true\n"
        f"bzImage:\n\t{job} & {job}; wait\n")
    results = tmp_path / "r"
    builds = pathlib.Path(os.environ.get("DAXLAB_CACHE", str(TOP / ".cache"))) / "kernel-build"
    before = set(builds.glob("tree-*"))
    proc = start(["--kernel-src", str(src)], results)
    try:
        end = time.time() + 240
        while len(pids_running(job)) < 2 and time.time() < end:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.5)
        assert len(pids_running(job)) >= 2, "the build never started its jobs"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        end = time.time() + 20
        while pids_running(job) and time.time() < end:
            time.sleep(0.5)
        assert not pids_running(job), "make's jobs outlived run.sh"
    finally:
        # whatever is left of the build, and the build directory it made
        for pid in pids_running(src):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for build in set(builds.glob("tree-*")) - before:
            log = build / "build-slim.log"
            if log.exists() and str(job) in log.read_text(errors="replace"):
                shutil.rmtree(build, ignore_errors=True)
