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


def test_persist_litmus_crash_check_adr_and_eadr(daxlab, tmp_path):
    run = daxlab("--crash-check", "persist-litmus", "--fs", "ext4,xfs")
    assert run.rc == 0, run
    for fs in ("ext4", "xfs"):
        cc = run.scenario("persist-litmus", fs)["crash_check"]
        assert cc["failures"] == 0 and cc["states_checked"] == 2 * (1 + 8), cc
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


def test_rename_atomic_recovers_old_or_new_in_every_crash_state(daxlab):
    # Filesystem-level crash states: recovery guests mount each image
    # (journal replay), the scenario names the version of "data", fsck runs.
    # A checkpoint with no line pending (rename-atomic's, as a rule) has one
    # state whatever the sample: checked once, its other sample folded.
    run = daxlab("--crash-check", "rename-atomic", "--crash-samples", "1")
    assert run.rc == 0, run
    cc = run.scenario("rename-atomic", "ext4")["crash_check"]
    assert cc["checkpoints"] == 7 and cc["failures"] == 0, cc
    assert cc["states_generated"] == 14 and 7 <= cc["states_checked"] < 14, cc
    folded = 14 - cc["states_checked"]
    assert f"folded {folded} states" in (run.dir / "crash" / "rename-atomic-ext4.txt").read_text()
    taps = sorted((run.dir / "crash").glob("recover-rename-atomic-ext4-*.tap"))
    reports = [l for t in taps for l in t.read_text().splitlines() if l.startswith("# daxlab-recover:")]
    assert len(reports) == cc["states_checked"]
    assert all(" mount=ok " in r and r.endswith(" fsck=0") for r in reports), reports
    versions = {r.split(" version=")[1].split()[0] for r in reports}
    assert versions == {"0", "1", "2", "3"}, versions


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
