"""Kinds of persistent memory other than the NFIT NV-DIMM (run.sh
--pmem-kind virtio-pmem, cxl), and device dax (--mode devdax).

One boot per kind or mode runs the litmus scenarios (dax-basics where there
is a filesystem, flush-litmus, persist-litmus under --crash-check) and the
test checks what makes the kind what it is: for virtio-pmem, that only the
host's flush persists (a line written back with CLWB + SFENCE is still old
in the durable-only state, where an NV-DIMM under ADR has it new), that
MAP_SYNC is refused, and that the plugin saw the flush requests it
modelled; for CXL, that the region is made, is DAX, and is watched through
QEMU's I/O window (flush-litmus's exact counts); for devdax, that the
device itself is mapped and a PMDK pool can live on it.
"""
import json
import subprocess

from conftest import TOP

CRASH = TOP / ".cache" / "build" / "emulator" / "daxlab-crash"


def durable_lines(run, checkpoint, fs="ext4"):
    """persist-litmus's lines in the durable-only state at CHECKPOINT:
    name -> 'old' or 'new' (or the bytes when neither)."""
    spec = (run.dir / "crash" / f"persist-litmus-{fs}.spec").read_text().splitlines()
    image = run.dir / f"cp{checkpoint}.img"
    subprocess.run([str(CRASH), "image", str(run.dir / "pmem-log.bin"), "--checkpoint", str(checkpoint),
                    "-o", str(image)], check=True, timeout=120)
    data, got = image.read_bytes(), {}
    for line in spec:
        f = dict(kv.split("=") for kv in line.split())
        if f["checkpoint"] != str(checkpoint):
            continue
        off, old, new = int(f["offset"]), int(f["old"], 16), int(f["new"], 16)
        b = data[off:off + 64]
        got[f["name"]] = "old" if b == bytes([old]) * 64 else "new" if b == bytes([new]) * 64 else b.hex()
    image.unlink()
    return got


def test_virtio_pmem_persists_on_the_host_flush_only(daxlab):
    run = daxlab("--pmem-kind", "virtio-pmem", "--scenario", "dax-basics", "--scenario", "flush-litmus",
                 "--crash-check", "persist-litmus")
    assert run.rc == 0, run
    s = run.summary
    assert s["pmem_kind"] == "virtio-pmem" and s["persist"] == "virtio", s
    assert [(x["name"], x["status"], x["dax"]) for x in s["scenarios"]] == [
        ("dax-basics", "pass", True), ("flush-litmus", "pass", True), ("persist-litmus", "pass", True)]
    assert "virtio-pmem-pci" in (run.dir / "qemu-cmdline.txt").read_text()
    cc = run.scenario("persist-litmus", "ext4")["crash_check"]
    assert cc["failures"] == 0 and cc["states_checked"] >= 8, cc
    # msync asked the host to flush: r4 is new; CLWB + SFENCE did not: r2 is old
    seq = 3  # the third scenario of the run
    assert durable_lines(run, seq * 1000 + 2) == {"r1-store": "old", "r2-clwb-sfence": "old",
                                                  "r3-clwb-nofence": "old", "r4-msync": "new"}
    tap = (run.dir / "tap.txt").read_text()
    assert "# MAP_SYNC: Operation not supported" in tap
    stats = json.loads((run.dir / "pmem-stats.json").read_text())
    hf = stats["host_flush"]
    assert hf["doorbell"] == "virtio-pci-notify-virtio-pmem" and hf["doorbell"] in hf["io_regions_seen"]
    assert hf["doorbell_stores"] > 0 and stats["persistence"]["host_flushes"] == hf["doorbell_stores"]


def test_devdax_runs_the_litmus_pair_and_a_pmemobj_pool_on_the_device_itself(daxlab):
    run = daxlab("--mode", "devdax", "--scenario", "flush-litmus", "--crash-check", "persist-litmus",
                 "--scenario", "pmemobj-tx")
    assert run.rc == 0, run
    s = run.summary
    assert s["pmem_kind"] == "nvdimm" and s["pmem_mode"] == "devdax" and s["fs"] == ["devdax"], s
    assert [(x["name"], x["fs"], x["status"], x["dax"]) for x in s["scenarios"]] == [
        ("flush-litmus", "devdax", "pass", True), ("persist-litmus", "devdax", "pass", True),
        ("pmemobj-tx", "devdax", "pass", True)]
    ns = json.loads((run.dir / "ndctl-namespace.json").read_text())
    assert ns["mode"] == "devdax" and ns["daxregion"]["devices"][0]["chardev"] == "dax0.0", ns
    # the device's data starts after its info block: the lines are found there
    assert (run.dir / "pmem-data.txt").read_text().startswith("dax0.0 resource=0x100200000 ")
    cc = run.scenario("persist-litmus", "devdax")["crash_check"]
    assert cc["failures"] == 0 and cc["states_checked"] >= 4, cc
    seq = 2
    assert durable_lines(run, seq * 1000 + 2, "devdax") == {"r1-store": "old", "r2-clwb-sfence": "new",
                                                            "r3-clwb-nofence": "old", "r4-clflush": "new"}


def test_cxl_pmem_region_is_dax_and_watched_through_its_mmio_window(daxlab):
    run = daxlab("--pmem-kind", "cxl", "--scenario", "dax-basics", "--scenario", "flush-litmus",
                 "--crash-check", "persist-litmus")
    assert run.rc == 0, run
    s = run.summary
    assert s["pmem_kind"] == "cxl" and s["guest_persistence_domain"] == "memory_controller", s
    assert [(x["name"], x["status"], x["dax"]) for x in s["scenarios"]] == [
        ("dax-basics", "pass", True), ("flush-litmus", "pass", True), ("persist-litmus", "pass", True)]
    # the window QEMU puts after the hotplug area (1 GiB RAM, 1 GiB of it, 2 slots)
    assert s["pmem_window"]["base"] == "0x1d0000000", s["pmem_window"]
    region = json.loads((run.dir / "cxl-region.json").read_text().split("\n", 1)[1])
    assert region["decode_state"] == "commit" and region["resource"] == 0x1d0000000, region
    cmd = (run.dir / "qemu-cmdline.txt").read_text()
    assert "cxl-type3" in cmd and "io=on" in cmd
    # flush-litmus's exact window counts (judged) came through the I/O path;
    # the crash check found the ADR outcome: r2 (CLWB + SFENCE) new, r1 old
    cc = run.scenario("persist-litmus", "ext4")["crash_check"]
    assert cc["failures"] == 0 and cc["states_checked"] >= 5, cc
    assert durable_lines(run, 3002) == {"r1-store": "old", "r2-clwb-sfence": "new",
                                        "r3-clwb-nofence": "old", "r4-msync": "new"}
    assert "# MAP_SYNC: granted" in (run.dir / "tap.txt").read_text()
