"""The daxlab-pmem plugin and crash states, on real guests.

flush-litmus issues known numbers of each instruction kind in a marked
window; run.sh fails the scenario unless the plugin counted exactly those.
persist-litmus declares what every crash state must hold; --crash-check
must pass under ADR and eADR, and must report the msync'd line lost when
the guest kernel skips its cache flushes (dax/write_cache 0) under ADR.
"""
import hashlib
import json
import subprocess

import pytest

from conftest import TOP, qemu_with_plugin


def window(run, wid):
    for line in (run.dir / "pmem-windows.txt").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(wid):
            return dict(f.split("=") for f in fields[2:])
    raise KeyError(wid)


@pytest.mark.parametrize("persist", ["adr", "eadr"])
def test_flush_litmus_counts_are_exact(daxlab, persist):
    run = daxlab("--scenario", "flush-litmus", "--fs", "ext4,xfs", "--persist", persist)
    assert run.rc == 0, run
    s = run.summary
    assert s["persist"] == persist
    assert s["nvdimm_persistence"] == {"adr": "mem-ctrl", "eadr": "cpu"}[persist]
    assert s["guest_persistence_domain"] == {"adr": "memory_controller", "eadr": "cpu_cache"}[persist]
    assert s["guest_dax_write_cache"] == {"adr": "1", "eadr": "0"}[persist]
    assert s["cpu_flush_instructions"] == "clflush,clflushopt,clwb"
    assert s["pmem_window"]["guest_iomem"].startswith("100000000-11fffffff")
    # run.sh compared the windows; check one by hand as well (window id is
    # the test number * 1000 + 1).
    w = window(run, 1001)
    assert (w["stores"], w["loads"], w["nt_stores"]) == ("96", "24", "48")
    assert (w["clflush"], w["clflushopt"], w["clwb"]) == ("30", "20", "10")
    assert (w["sfence"], w["mfence"], w["lfence"]) == ("7", "5", "3")
    assert (w["locked_rmw"], w["xchg"], w["flush_unresolved"]) == ("4", "2", "0")
    assert window(run, 2001)["clwb"] == "10"


def _crash_listing(run):
    tool = TOP / ".cache" / "build" / "emulator" / "daxlab-crash"
    out = subprocess.run([str(tool), "list", str(run.dir / "pmem-log.bin")], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    return {int(r[0]): int(r[2]) for r in (l.split() for l in out.splitlines() if l[0] != "#")}


def test_persist_litmus_crash_check_adr_and_eadr(daxlab, tmp_path):
    run = daxlab("--crash-check", "persist-litmus", "--fs", "ext4,xfs")
    assert run.rc == 0, run
    pending = _crash_listing(run)
    for fs, seq in (("ext4", 1), ("xfs", 2)):
        cc = run.scenario("persist-litmus", fs)["crash_check"]
        # every subset of the pending lines (at most 6 here): exactly 2^n per checkpoint
        n1, n2 = pending[seq * 1000 + 1], pending[seq * 1000 + 2]
        assert n2 >= 2 and n1 <= 6 and n2 <= 6, pending  # at least r1 (stored) and r3 (flushed)
        assert cc["failures"] == 0 and cc["states_checked"] == 2**n1 + 2**n2, (cc, pending)
    # Materialise the durable-only state at checkpoint 2 and read the lines.
    spec = (run.dir / "crash" / "persist-litmus-ext4.spec").read_text().splitlines()
    lines = {}
    for line in spec:
        f = dict(kv.split("=") for kv in line.split())
        if f["checkpoint"] == "1002":
            lines[f["name"]] = (int(f["offset"]), int(f["old"], 16), int(f["new"], 16))
    image = tmp_path / "cp1002.img"
    live_before = (run.dir / "pmem0.img").stat().st_mtime_ns
    tool = TOP / ".cache" / "build" / "emulator" / "daxlab-crash"
    subprocess.run([str(tool), "image", str(run.dir / "pmem-log.bin"), "--checkpoint", "1002",
                    "-o", str(image)], check=True, timeout=120)
    data = image.read_bytes()
    got = {n: data[off:off + 64] for n, (off, _, _) in lines.items()}
    assert got["r1-store"] == bytes([lines["r1-store"][1]]) * 64  # not flushed: old
    assert got["r2-clwb-sfence"] == bytes([lines["r2-clwb-sfence"][2]]) * 64  # new
    assert got["r3-clwb-nofence"] == bytes([lines["r3-clwb-nofence"][1]]) * 64  # old
    assert got["r4-msync"] == bytes([lines["r4-msync"][2]]) * 64  # new
    assert (run.dir / "pmem0.img").stat().st_mtime_ns == live_before
    eadr = daxlab("--crash-check", "persist-litmus", "--persist", "eadr")
    assert eadr.rc == 0, eadr
    assert eadr.scenario("persist-litmus", "ext4")["crash_check"]["failures"] == 0


def _recover_reports(run, name, fs):
    taps = sorted((run.dir / "crash").glob(f"recover-{name}-{fs}-*.tap"))
    return [l for t in taps for l in t.read_text().splitlines() if l.startswith("# daxlab-recover:")]


def test_rename_atomic_recovers_old_or_new_in_every_crash_state(daxlab):
    # Filesystem-level crash states: the marked checkpoints and every crash
    # point (a fence ordering pending lines) of the crash window between
    # them, states with the same bytes folded; one recovery guest mounts
    # each (journal replay), the scenario names the version of "data",
    # fsck runs.
    run = daxlab("--crash-check", "rename-atomic")
    assert run.rc == 0, run
    cc = run.scenario("rename-atomic", "ext4")["crash_check"]
    assert cc["marked_checkpoints"] == 7 and cc["crash_points"] >= 6 and cc["failures"] == 0, cc
    assert cc["checkpoints"] == cc["marked_checkpoints"] + cc["crash_points"], cc
    assert cc["states_checked"] == cc["states_unique"] and cc["states_dropped"] == 0, cc
    assert cc["states_generated"] == cc["states_unique"] + cc["states_folded"], cc
    assert cc["states_folded"] > 0 and cc["boots"] == 1, cc
    txt = (run.dir / "crash" / "rename-atomic-ext4.txt").read_text()
    assert f"folded {cc['states_folded']} states" in txt
    reports = _recover_reports(run, "rename-atomic", "ext4")
    assert len(reports) == cc["states_checked"]
    assert all(" mount=ok " in r and " fsck=0 " in r for r in reports), reports
    versions = {r.split(" version=")[1].split()[0] for r in reports}
    assert versions == {"0", "1", "2", "3"}, versions
    plan = (run.dir / "crash" / "plan-rename-atomic-ext4.txt").read_text()
    assert plan.startswith("# daxlab-crash plan subsets=6 samples=8 point_samples=1")
    assert not list((run.dir / "crash").glob("states/*.img"))  # nothing failed: no image kept


def test_a_failing_crash_state_is_kept_and_the_next_still_checked(daxlab):
    # selftest-crash-unsafe claims version 1 at its first checkpoint, where
    # version 0 is durable: that state fails (and so would any other of
    # that checkpoint); its image is kept; the one recovery guest goes on
    # to every later state, which pass.
    run = daxlab("--crash-check", "selftest-crash-unsafe")
    assert run.rc == 1, run
    sc = run.scenario("selftest-crash-unsafe", "ext4")
    cc = sc["crash_check"]
    assert sc["status"] == "fail" and cc["failures"] >= 1 and cc["boots"] == 1, cc
    assert cc["states_checked"] == cc["states_unique"] > cc["failures"], cc
    report = (run.dir / cc["report"]).read_text()
    fails = [l for l in report.splitlines() if l.startswith("FAIL ")]
    assert fails and all(" checkpoint=1001 " in l and "data is version 0, expected version 1" in l
                         for l in fails), report
    assert "FAIL state=0 " in report and "(image: crash/states/selftest-crash-unsafe-ext4-0.img)" in report
    img = run.dir / "crash" / "states" / "selftest-crash-unsafe-ext4-0.img"
    assert img.stat().st_size == (run.dir / "pmem0.img").stat().st_size
    reports = _recover_reports(run, "selftest-crash-unsafe", "ext4")
    assert len(reports) == cc["states_checked"]
    later = [r for r in reports if " state=0 " not in r]
    assert later and all(" mount=ok " in r and " fsck=0 " in r for r in later), reports
    assert {r.split(" version=")[1].split()[0] for r in later} == {"0", "1"}, reports


def test_pmemobj_transactions_recover_whole_in_every_crash_state(daxlab):
    # PMDK as a payload: libpmemobj (dynamic, its libraries in the
    # initramfs) on the DAX mount; each of versions 1..3 is one
    # transaction, and its commit is durable: every crash point inside a
    # transaction recovers (pmemobj_open replays the undo log) the old or
    # the new version, every checkpoint exactly its own.
    run = daxlab("--crash-check", "pmemobj-tx")
    assert run.rc == 0, run
    sc = run.scenario("pmemobj-tx", "ext4")
    assert sc["dax"] is True, sc
    cc = sc["crash_check"]
    assert cc["marked_checkpoints"] == 4 and cc["crash_points"] >= 3 and cc["failures"] == 0, cc
    assert cc["states_checked"] == cc["states_unique"] and cc["states_dropped"] == 0, cc
    assert cc["boots"] == 1, cc
    reports = _recover_reports(run, "pmemobj-tx", "ext4")
    assert len(reports) == cc["states_checked"]
    assert all(" mount=ok " in r and " fsck=0 " in r for r in reports), reports
    assert {r.split(" version=")[1].split()[0] for r in reports} == {"0", "1", "2", "3"}, reports
    # libpmemobj flushed from user space (clwb) on the DAX mapping
    c = json.loads((run.dir / "pmem-stats.json").read_text())["counters"]
    assert c["clwb"] > 0 and c["sfence"] > 0, c


def test_pmemobj_updates_without_a_transaction_fail_the_crash_check(daxlab):
    # selftest-pmemobj-noflush updates the record with plain stores and
    # still claims each version durable: the states of those checkpoints
    # recover version 0 (nothing written back) or a torn record.
    run = daxlab("--crash-check", "selftest-pmemobj-noflush")
    assert run.rc == 1, run
    sc = run.scenario("selftest-pmemobj-noflush", "ext4")
    cc = sc["crash_check"]
    assert sc["status"] == "fail" and cc["failures"] >= 3 and cc["boots"] == 1, cc
    report = (run.dir / cc["report"]).read_text()
    fails = [l for l in report.splitlines() if l.startswith("FAIL ")]
    assert fails and not any(" checkpoint=1001 " in l for l in fails), report
    assert any("data is version 0, expected version 1" in l for l in fails), report
    assert any("data is version torn, expected version" in l for l in fails), report
    reports = _recover_reports(run, "selftest-pmemobj-noflush", "ext4")
    assert len(reports) == cc["states_checked"]
    assert all(" mount=ok " in r and " fsck=0 " in r for r in reports), reports


def test_crash_check_catches_a_kernel_that_skips_its_flush(daxlab):
    run = daxlab("--crash-check", "persist-litmus", "--guest-write-cache", "0")
    assert run.rc == 1, run
    assert run.summary["guest_dax_write_cache"] == "0"
    sc = run.scenario("persist-litmus", "ext4")
    assert sc["status"] == "fail"
    assert sc["crash_check"]["failures"] >= 1
    assert "line=r4-msync" in sc["reason"] and "durable-only" in sc["reason"], sc
    report = (run.dir / sc["crash_check"]["report"]).read_text()
    # Only the msync'd line is wrong: the others behave as under a flushing kernel.
    fails = [l for l in report.splitlines() if l.startswith("FAIL")]
    assert fails and all("line=r4-msync" in l for l in fails), report


def test_fast_paths_agree_with_qemu_translation(daxlab):
    # verify=on asks QEMU for the physical address of every access and
    # compares it with the software TLB and direct-map answers; it also
    # watches the instructions the plugin normally skips (stack, RIP-relative,
    # FS/GS-addressed), none of which may touch the NV-DIMM.
    run = daxlab("--scenario", "dax-basics", "--scenario", "flush-litmus",
                 env={"DAXLAB_PLUGIN_OPTS": "verify=on"})
    assert run.rc == 0, run
    c = json.loads((run.dir / "pmem-stats.json").read_text())["counters"]
    assert c["loads"] > 1_000_000 and c["stores"] > 10_000 and c["nt_stores"] > 100_000, c
    assert c["verify_mismatches"] == 0, c
    # ... nor any instruction run before the agent's watch marker (Debian's
    # NV-DIMM drivers are modules, loaded after it)
    assert c["skipped_pmem_accesses"] == 0, c
    assert run.summary["plugin_watch_from"] == "marker", run.summary
    # Kernel flushes (dax writeback) resolve through the learnt direct map.
    assert c["clwb"] > 0 and c["flush_unresolved"] == 0, c


def test_trace_of_a_window_has_exactly_the_litmus_events(daxlab):
    run = daxlab("--scenario", "flush-litmus", "--trace", "windows,types=store+nt+flush+fence+marker")
    assert run.rc == 0, run
    assert run.summary["pmem_trace"] == "pmem-trace.bin"
    tool = TOP / ".cache" / "build" / "emulator" / "daxlab-trace"
    trace = str(run.dir / "pmem-trace.bin")
    summary = subprocess.run([str(tool), "--summary", trace], capture_output=True, text=True,
                             check=True, timeout=60).stdout
    counts = dict(l.split() for l in summary.splitlines() if l.startswith("  ") and "cpu" not in l)
    assert counts == {"store": "96", "nt-store": "48", "clflush": "30", "clflushopt": "20",
                      "clwb": "10", "sfence": "7", "mfence": "5", "window-begin": "1",
                      "window-end": "1"}, summary
    csv = subprocess.run([str(tool), "--csv", "--type", "clwb", trace], capture_output=True,
                         text=True, check=True, timeout=60).stdout.splitlines()
    assert csv[0] == "cpu,icount,host_ns,type,offset,size,window"
    rows = [r.split(",") for r in csv[1:]]
    assert len(rows) == 10 and all(r[3] == "clwb" and r[5] == "64" and r[6] == "1001" for r in rows)
    # the instruction counts of one vCPU only grow, and so does the host clock
    icounts = [int(r[1]) for r in rows]
    assert icounts == sorted(icounts)
    host_ns = [int(r[2]) for r in rows]
    assert host_ns == sorted(host_ns) and host_ns[0] > 0


def test_trace_time_filter_keeps_only_its_time_window(daxlab):
    # The first second after QEMU starts is firmware and kernel decompression:
    # no store or flush reaches the NV-DIMM, so the trace is its 24-byte
    # header; from second 5 on the litmus stores are there.
    run = daxlab("--scenario", "flush-litmus", "--trace", "types=store+nt+flush,time=0-1")
    assert run.rc == 0, run
    assert (run.dir / "pmem-trace.bin").stat().st_size == 24
    assert "trace_time=0-1" in (run.dir / "qemu-cmdline.txt").read_text()
    later = daxlab("--scenario", "flush-litmus", "--trace", "types=store+nt+flush,time=5-3600")
    assert later.rc == 0, later
    assert (later.dir / "pmem-trace.bin").stat().st_size > 24 + 32 * 100


def test_bad_plugin_option_stops_qemu_with_a_clear_message():
    p = qemu_with_plugin("base=0x100000000,size=512M,out=/tmp,colour=blue")
    assert p.returncode != 0
    assert "option parsing failed: colour=blue" in p.stderr


def test_crash_tool_rejects_bad_input(tmp_path):
    tool = TOP / ".cache" / "build" / "emulator" / "daxlab-crash"
    notlog = tmp_path / "not-a-log"
    notlog.write_bytes(b"hello world, not a log at all")
    for args, msg in [
        ([], "usage: daxlab-crash"),
        (["list", str(notlog)], "not a daxlab persistence log"),
        (["list", str(tmp_path / "missing")], "cannot open"),
        (["frobnicate"], "unknown command: frobnicate"),
    ]:
        p = subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (args, p)
        assert msg in p.stderr, (args, p.stderr)


def test_crash_tools_trust_no_count_from_their_input(tmp_path):
    # A log whose checkpoint claims 2^31 pending lines (the tool used to
    # allocate for them), --samples at UINT_MAX (it looped forever), an image
    # cut off half-way (it stays no file), a trace ending inside a record.
    crash = TOP / ".cache" / "build" / "emulator" / "daxlab-crash"
    trace_tool = TOP / ".cache" / "build" / "emulator" / "daxlab-trace"
    log = tmp_path / "pmem-log.bin"
    log.write_bytes(b"DAXLOG1\0" + (1 << 20).to_bytes(8, "little") + b"\x02" +
                    (7).to_bytes(8, "little") + (1 << 31).to_bytes(4, "little"))
    p = subprocess.run([str(crash), "list", str(log)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "corrupt checkpoint 7: 2147483648 pending lines" in p.stderr, p
    out = tmp_path / "state.img"
    p = subprocess.run([str(crash), "image", str(log), "--checkpoint", "7", "-o", str(out)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and not out.exists(), p
    spec = tmp_path / "spec"
    spec.write_text("")
    p = subprocess.run([str(crash), "check", str(log), str(spec), "--samples", "4294967295"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--samples: at most 100000" in p.stderr, p
    trace = tmp_path / "pmem-trace.bin"
    trace.write_bytes(b"DAXTRC2\0" + bytes(16) + bytes(32) + bytes(7))
    p = subprocess.run([str(trace_tool), str(trace)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "is truncated" in p.stderr and p.stdout.count("\n") == 1, p


def test_crash_states_at_every_nth_fence(daxlab, tmp_path):
    run = daxlab("--scenario", "dax-basics", "--crash-every", "100000")
    assert run.rc == 0, run
    stats = json.loads((run.dir / "pmem-stats.json").read_text())
    ids = [c["id"] for c in stats["checkpoints"]]
    # dax-basics marks none itself: all come from fences, numbered in order
    assert len(ids) >= 5 and ids == list(range(2**32 + 1, 2**32 + 1 + len(ids))), ids
    tool = TOP / ".cache" / "build" / "emulator" / "daxlab-crash"
    log = run.dir / "pmem-log.bin"
    listing = subprocess.run([str(tool), "list", str(log)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in listing.splitlines() if not line.startswith("#")]
    assert [int(r[0]) for r in rows] == ids
    assert sum(int(r[1]) for r in rows) > 32 * 1024 * 1024 // 64 // 2  # dax-basics' 32 MiB became durable on the way
    live = run.dir / "pmem0.img"
    before = hashlib.sha256(live.read_bytes()).hexdigest()
    out = tmp_path / "state.img"
    subprocess.run([str(tool), "image", str(log), "--checkpoint", str(ids[len(ids) // 2]), "--sample", "1",
                    "-o", str(out)], check=True, capture_output=True)
    assert out.stat().st_size == live.stat().st_size
    assert out.stat().st_blocks * 512 < out.stat().st_size  # sparse
    assert hashlib.sha256(live.read_bytes()).hexdigest() == before  # the live image is never touched


def _log(size, records):
    """A persistence log (emulator/persist.h): ("line", off, byte) or ("cp", id, [(off, byte)...])."""
    out = bytearray(b"DAXLOG1\0" + size.to_bytes(8, "little"))
    for r in records:
        if r[0] == "line":
            out += b"\x01" + r[1].to_bytes(8, "little") + bytes([r[2]]) * 64
        else:
            out += b"\x02" + r[1].to_bytes(8, "little") + len(r[2]).to_bytes(4, "little")
            for off, byte in r[2]:
                out += off.to_bytes(8, "little") + bytes([byte]) * 64
    return bytes(out)


def _plan(tool, log, tmp_path, *args):
    plan = tmp_path / "plan.txt"
    p = subprocess.run([str(tool), "plan", str(log), "-o", str(plan), *args],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p
    totals = dict(kv.split("=") for kv in p.stdout.split())
    rows = [l.split() for l in plan.read_text().splitlines() if not l.startswith("#")]
    return plan, {k: float(v) if k == "seconds" else int(v) for k, v in totals.items()}, rows


def test_crash_plan_enumerates_and_folds_exactly(tmp_path):
    # A hand-made log with a known answer. Checkpoint 1001 has 2 pending
    # lines: 4 states, all different. Then line B becomes durable, and the
    # crash point after it has B (again) and D pending: of its 4 states,
    # nothing-written-back and B-written-back are the bytes of 1001's
    # "B written back" state, and B+D is D: 1 new state. Checkpoint 1002 has
    # 7 pending lines, more than 6: its durable state (folded too: the same
    # A+B) and --samples 2 samples. A crash point before the first marked
    # checkpoint is outside the window: not a state.
    tool = TOP / ".cache" / "build" / "emulator" / "daxlab-crash"
    P = 1 << 40
    log = tmp_path / "pmem-log.bin"
    log.write_bytes(_log(1 << 20, [
        ("line", 0x1000, 0xa1),
        ("cp", P + 1, [(0x5000, 0xee)]),
        ("cp", 1001, [(0x2000, 0xb2), (0x2040, 0xc3)]),
        ("line", 0x2000, 0xb2),
        ("cp", P + 2, [(0x2000, 0xb2), (0x3000, 0xd4)]),
        ("cp", 1002, [(0x4000 + 64 * i, 0x10 + i) for i in range(7)]),
    ]))
    plan, t, rows = _plan(tool, log, tmp_path, "--ids", "1001,1002", "--samples", "2")
    assert (t["marked"], t["points"], t["generated"]) == (2, 1, 4 + 4 + 3), t
    # the 2 samples of 1002 write back a non-empty subset each (seed 1)
    assert [int(r[6]) > 0 for r in rows[8:]] == [False, True, True], rows
    assert (t["unique"], t["planned"], t["dropped"]) == (4 + 1 + 2, 7, 0), t
    reps = [int(r[7]) for r in rows]
    assert reps[:4] == [0, 1, 2, 3]
    assert reps[4:8] == [1, 1, 6, 6], rows  # the point: {} = {B} = 1001's state 1; {B,D} = {D}
    assert reps[8] == 1  # 1002's durable state: A+B again
    assert [r[3] for r in rows] == ["m"] * 4 + ["p"] * 4 + ["m"] * 3
    # the budget takes the marked checkpoints' states first
    _, t, rows = _plan(tool, log, tmp_path, "--ids", "1001,1002", "--samples", "2", "--max-states", "5")
    assert (t["planned"], t["dropped"]) == (5, 2), t
    assert [r[0] for r in rows if r[8] == "d"] == ["6", "10"], rows
    # a state's image from the plan: the durable A+B, and D
    plan, _, _ = _plan(tool, log, tmp_path, "--ids", "1001,1002", "--samples", "2")
    img = tmp_path / "s6.img"
    subprocess.run([str(tool), "image", str(log), "--plan", str(plan), "--state", "6", "-o", str(img)],
                   check=True, timeout=60)
    data = img.read_bytes()
    assert len(data) == 1 << 20
    want = bytearray(1 << 20)
    for off, byte in ((0x1000, 0xa1), (0x2000, 0xb2), (0x3000, 0xd4)):
        want[off:off + 64] = bytes([byte]) * 64
    assert data == bytes(want)
    # a checkpoint the log does not have is an error, not an empty plan
    p = subprocess.run([str(tool), "plan", str(log), "--ids", "1001,1003", "-o", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "the log has 1 of the 2 checkpoints asked for" in p.stderr, p
