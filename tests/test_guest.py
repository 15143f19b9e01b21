"""Real guests: boot, DAX mounts, scenario results and failure handling."""
import pathlib
import subprocess

import pytest

from conftest import finish, start


def test_dax_basics_on_every_filesystem(daxlab):
    run = daxlab("--scenario", "dax-basics", "--fs", "all")
    assert run.rc == 0, run
    s = run.summary
    assert s["guest_status"] == "completed"
    assert s["kernel_release"].startswith("6.1.")
    assert s["qemu_version"].startswith("QEMU emulator version 10.")
    assert s["fs"] == ["ext4", "xfs", "ext2"]
    assert s["totals"] == {"passed": 3, "failed": 0, "skipped": 0, "timeout": 0}
    for fs in ("ext4", "xfs", "ext2"):
        sc = run.scenario("dax-basics", fs)
        assert sc["status"] == "pass" and sc["dax"] is True, sc
        trace = (run.dir / sc["fs_dax_trace"]).read_text()
        assert "dax_pte_fault" in trace or "dax_pmd_fault" in trace
    # The guest saw the mounts with their DAX options and statx said DAX.
    console = (run.dir / "console.log").read_text(errors="replace")
    assert "[ext4] mounted: rw,relatime,dax=always, STATX_ATTR_DAX=1" in console
    assert "[ext2] mounted: rw,relatime,dax, STATX_ATTR_DAX=1" in console
    assert ",dax=always," in console.split("[xfs] mounted: ")[1].splitlines()[0]
    # TAP on its own channel; the console stays human.
    tap = (run.dir / "tap.txt").read_text()
    assert tap.startswith("TAP version 13\n1..3\n")
    assert "ok 1 - dax-basics" not in console
    assert "daxlab-agent: [xfs] dax-basics: pass" in console
    assert (run.dir / "pmem0.img").stat().st_size == 512 << 20
    # the run directory is the user's only: images can hold user data
    assert run.dir.stat().st_mode & 0o777 == 0o700
    for p in run.dir.rglob("*"):
        if not p.is_symlink():
            assert p.stat().st_mode & 0o777 in (0o600, 0o700), p


def test_no_dax_mount_fails_dax_basics(daxlab):
    run = daxlab("--scenario", "dax-basics", "--no-dax", "--fs", "ext4,xfs")
    assert run.rc == 1, run
    for fs in ("ext4", "xfs"):
        sc = run.scenario("dax-basics", fs)
        assert sc["status"] == "fail" and sc["dax"] is False, sc
        bad = (run.dir / "expect" / f"dax-basics-{fs}.out.bad").read_text()
        assert "not ok 1 - statx reports STATX_ATTR_DAX" in bad
        assert "not ok 4 - reading through read() does not fill the page cache" in bad
        assert "not ok 7 - fs_dax fault tracepoints fired" in bad
    assert "2 failed" in run.stdout


def test_timeout_kills_the_guest_and_keeps_logs(daxlab):
    run = daxlab("--scenario", "dax-basics", "--timeout", "3")
    assert run.rc == 1, run
    s = run.summary
    assert s["guest_status"] == "timeout"
    assert run.scenario("dax-basics", "ext4")["status"] == "timeout"
    assert s["totals"]["timeout"] == 1
    assert (run.dir / "console.log").exists()
    assert (run.dir / "qemu-cmdline.txt").exists()


def test_full_disk_stops_the_guest_with_a_reason_and_keeps_logs(tmp_path):
    # A 300 MiB filesystem passes run.sh's 256 MiB check, then the guest
    # writes 400 MiB of random data to the DAX mount: the image cannot grow,
    # and QEMU dies of SIGBUS on its mapping.
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300M", "tmpfs", str(small)]).returncode:
        pytest.skip("cannot mount a small tmpfs here (not root?)")
    try:
        run = finish(start(["--exec", "dd if=/dev/urandom of=big bs=1M count=400 status=none"],
                           small / "r"), small / "r")
        assert "the NV-DIMM images can grow to 1088 MiB, and a full disk stops the guest" in run.stderr, run
        if run.rc == 2:  # nothing could be written after the guest
            assert "the disk of the run directory is full" in run.stderr.splitlines()[-1], run
            assert "SIGBUS on the NV-DIMM image" in run.stderr, run
        else:  # dropping the images' zero blocks left room for the results
            assert run.rc == 1, run
            assert run.summary["guest_status"] == "crashed", run.summary
            assert "SIGBUS): QEMU could not write the NV-DIMM image, is the disk full?" in \
                run.summary["guest_reason"], run.summary
        assert (run.dir / "console.log").stat().st_size > 0
        assert (run.dir / "qemu-cmdline.txt").exists()
    finally:
        subprocess.run(["umount", "-l", str(small)])


def test_kernel_panic_is_a_failure(daxlab):
    run = daxlab("--scenario", "selftest-panic")
    assert run.rc == 1, run
    s = run.summary
    assert s["guest_status"] == "panic", s
    sc = run.scenario("selftest-panic", "ext4")
    assert sc["status"] == "fail"
    assert "Kernel panic - not syncing: sysrq triggered crash" in sc["reason"], sc
    assert (run.dir / "console.log").exists()


def test_call_trace_in_dmesg_fails_a_passing_scenario_and_runs_do_not_clobber(tmp_path):
    # Two runs at once, each with its own run directory: a Call Trace in
    # dmesg fails a scenario whose TAP is all "ok", and dax-basics in the
    # same guest still passes.
    a = start(["--fs", "xfs", "--scenario", "dax-basics", "--scenario", "selftest-calltrace"],
              tmp_path / "a")
    b = start(["--fs", "ext4", "--scenario", "dax-basics"], tmp_path / "b")
    ra, rb = finish(a, tmp_path / "a"), finish(b, tmp_path / "b")
    assert ra.rc == 1, ra
    assert ra.scenario("dax-basics", "xfs")["status"] == "pass"
    ct = ra.scenario("selftest-calltrace", "xfs")
    assert ct["status"] == "fail" and "Call Trace" in ct["reason"], ct
    assert "Call Trace" in (ra.dir / ct["dmesg"]).read_text()
    assert rb.rc == 0, rb
    assert rb.scenario("dax-basics", "ext4")["status"] == "pass"
    assert ra.dir != rb.dir
    assert pathlib.Path(ra.dir, "pmem0.img") != pathlib.Path(rb.dir, "pmem0.img")


def test_image_keeps_what_the_guest_wrote(daxlab, tmp_path):
    # A kept NV-DIMM image: the second boot finds the namespace, the
    # filesystem and the file the first boot wrote (a boot counter). The
    # file held something else first: --image-format wipes it.
    img = tmp_path / "dimm.img"
    with open(img, "wb") as f:
        f.truncate(512 << 20)
        f.write(b"not an NV-DIMM" * 1000)
    first = daxlab("--scenario", "dax-basics", "--image", str(img), "--fs", "xfs", "--image-format")
    assert first.rc == 0, first
    assert first.summary["image"] == str(img) and first.summary["image_boots"] == 1
    second = daxlab("--scenario", "dax-basics", "--image", str(img), "--fs", "xfs")
    assert second.rc == 0, second
    assert second.summary["image_boots"] == 2
    assert "kept image: namespace already fsdax" in (second.dir / "console.log").read_text()
    assert second.scenario("dax-basics", "xfs")["status"] == "pass"
