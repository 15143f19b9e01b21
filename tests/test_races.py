"""Racing scenarios: campaigns, window widening, hits with witnesses and
time lines, and exact record/replay."""
import subprocess

from conftest import TOP


def test_campaign_reports_rounds_and_no_hit_on_a_fixed_kernel(daxlab):
    run = daxlab("--scenario", "fault-vs-truncate", "--fs", "ext4,xfs", "--iterations", "10",
                 "--seed", "7")
    assert run.rc == 0, run
    for fs in ("ext4", "xfs"):
        c = run.scenario("fault-vs-truncate", fs)["campaign"]
        assert c["iterations"] == 10 and c["seed"] == 7, c
        assert c["hits"] == 0 and c["iterations_per_second"] > 0, c
    assert "campaign ext4 fault-vs-truncate: 10 rounds" in run.stdout


def test_a_hit_fails_the_scenario_and_keeps_witness_and_time_line(daxlab):
    run = daxlab("--scenario", "selftest-hit", "--trace")
    assert run.rc == 1, run
    s = run.scenario("selftest-hit", "ext4")
    assert s["status"] == "fail" and "1 race hits" in s["reason"], s
    c = s["campaign"]
    assert c["hits"] == 1 and c["first_hit_round"] == 1, c
    hits = run.dir / c["witnesses"]
    witness = (hits / "hit-1.txt").read_text()
    assert "round: 1" in witness and "seen" in witness and "expected" in witness, witness
    timeline = (hits / "timeline-1.txt").read_text().splitlines()
    # the plugin's hit marker sits at 0 on the guest's clock
    assert any(l.split()[:2] == ["+0.000", "pmem"] and " hit " in l for l in timeline), \
        "\n".join(timeline[:40])


def test_widen_delays_the_declared_kernel_functions(daxlab):
    run = daxlab("--scenario", "fault-vs-truncate", "--widen", "100", "--iterations", "4")
    assert run.rc == 0, run
    w = run.scenario("fault-vs-truncate", "ext4")["campaign"]["widen"]
    assert w["delay_us"] == 100
    points = {p["name"]: p for p in w["points"]}
    assert "truncate_pagecache" in points, w
    assert all(p["delays"] > 0 for p in points.values()), w


def test_record_then_replay_is_identical_and_can_trace(daxlab, tmp_path):
    rec = daxlab("--record", "--scenario", "fault-vs-truncate", "--iterations", "3")
    assert rec.rc == 0, rec
    recorded = rec.summary  # rec.dir and rec.summary follow results/latest
    assert recorded["cpus"] == 1 and recorded["record"]["events_bytes"] > 0
    recdir = rec.dir
    rep = daxlab("--replay", str(recdir), "--trace")
    assert rep.rc == 0, rep
    r = rep.summary["replay"]
    assert r["tap_identical"] and r["pmem_image_identical"], r
    assert r["pmem_final_sha256"] == recorded["record"]["pmem_final_sha256"]
    assert (rep.dir / "pmem-trace.bin").stat().st_size > 24
    assert (rep.dir / "tap.txt").read_bytes() == (recdir / "tap.txt").read_bytes()
    # the live image of the recording was not touched by the replay
    assert subprocess.run(["sha256sum", str(recdir / "pmem0.img")], capture_output=True,
                          text=True, check=True).stdout.split()[0] == r["pmem_final_sha256"]


# The DAX series' fixes: the scenarios that declare the "series" group.
DAX_SCENARIOS = subprocess.run([str(TOP / "scenarios" / "index.sh"), "--names", "series"],
                               capture_output=True, text=True, check=True).stdout.split()


def test_every_dax_scenario_passes_on_ext4_xfs_and_ext2(daxlab):
    assert len(DAX_SCENARIOS) == 15 and "fault-vs-truncate" in DAX_SCENARIOS, DAX_SCENARIOS
    args = [a for name in DAX_SCENARIOS for a in ("--scenario", name)]
    run = daxlab(*args, "--fs", "all", timeout=2400)
    assert run.rc == 0, run
    for s in run.summary["scenarios"]:
        assert s["status"] == "pass" or (s["fs"] == "ext2" and s["status"] == "skip"), s
        assert s["status"] != "pass" or s["dax"], s
        if "campaign" in s:
            assert s["campaign"]["hits"] == 0 and s["campaign"]["iterations"] > 0, s
    racing = {s["name"] for s in run.summary["scenarios"] if "campaign" in s}
    assert {"fault-vs-truncate", "cow-private", "io-vs-truncate"} <= racing, racing


def test_second_fsync_of_a_mapping_is_durable_and_a_missing_flush_is_caught(daxlab):
    ok = daxlab("--crash-check", "mmap-fsync-durability", "--fs", "ext4,xfs")
    assert ok.rc == 0, ok
    for fs in ("ext4", "xfs"):
        cc = ok.scenario("mmap-fsync-durability", fs)["crash_check"]
        assert cc["failures"] == 0 and cc["states_checked"] > 0, cc
    lost = daxlab("--crash-check", "mmap-fsync-durability", "--guest-write-cache", "0")
    assert lost.rc == 1, lost
    s = lost.scenario("mmap-fsync-durability", "ext4")
    assert s["status"] == "fail" and s["crash_check"]["failures"] > 0, s


def test_strict_turns_the_known_61_zero_page_window_into_hits(daxlab):
    # A real window of Debian's 6.1 DAX code (see scenarios/024-*.c): by
    # default a known kernel window, counted; with --strict a hit, with its
    # witness. Widened, it shows up hundreds of times in 30 rounds.
    run = daxlab("--scenario", "zero-page-vs-pwrite", "--fs", "ext4", "--iterations", "30",
                 "--widen", "200", "--strict")
    assert run.rc == 1, run
    s = run.scenario("zero-page-vs-pwrite", "ext4")
    assert s["status"] == "fail" and s["campaign"]["hits"] > 0, s
    assert (run.dir / "hits" / "zero-page-vs-pwrite-ext4" / "hit-1.txt").exists()
