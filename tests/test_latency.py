"""The latency and bandwidth model (run.sh --latency, emulator/perf-model.c).

pmem-perf runs on a DAX mapping with the model on; its windows' modelled
figures must equal the configured parameters (within 5%), reproduce the
published shape (64 B random writes get a quarter of the 256 B write
bandwidth; reads slower than persists), and be byte-identical across two
runs. Stall mode must really stall. Fidelity of stall mode in host time is
measured by bench/latency-model, not asserted here.
"""
import json
import subprocess

from conftest import TOP, finish, qemu_with_plugin, start


def windows(run):
    model = json.loads((run.dir / "pmem-model.json").read_text())
    return model, {w["id"]: w for w in model["windows"]}


def near(value, target, tolerance=0.05):
    return abs(value - target) <= tolerance * target


def test_modelled_figures_match_the_preset_and_repeat_exactly(tmp_path):
    runs = [start(["--scenario", "pmem-perf", "--latency", "optane"], tmp_path / f"r{i}")
            for i in (1, 2)]
    a, b = [finish(p, tmp_path / f"r{i}") for i, p in zip((1, 2), runs)]
    assert a.rc == 0, a
    assert b.rc == 0, b
    # same program, same figures: to the byte, whatever the host did
    assert (a.dir / "pmem-model.json").read_bytes() == (b.dir / "pmem-model.json").read_bytes()
    model, w = windows(a)
    p = model["params"]
    assert model["mode"] == "model" and p["preset"] == "optane" and p["read_ns"] == 305.0
    assert model["reference"]["preset"] == "dram"
    # every phase a window: chase, 6 reads, 6 writes, persist, pread, pwrite;
    # and (id + 1000) the passes with the stalls suspended
    phases = [101, 111, 112, 113, 114, 115, 116, 121, 122, 123, 124, 125, 126, 131, 141, 142]
    assert sorted(w) == phases + [i + 1000 for i in phases if 110 < i < 140]
    # the same work modelled twice: the same figures (to the instruction)
    assert w[1124]["modelled_ns"] > 0 and near(w[1131]["ns_per_flush"], w[131]["ns_per_flush"], 0.01)
    chase = w[101]
    assert chase["loads"] == 100000 and chase["rand_misses"] >= 99000
    assert near(chase["ns_per_load"], p["read_ns"]), chase
    persist = w[131]
    assert near(persist["ns_per_flush"], p["flush_ns"] + p["write_ns"] + p["fence_ns"]), persist
    # the published shape
    ratio = w[125]["write_gbps"] / w[124]["write_gbps"]
    assert 3.5 < ratio < 4.5, (w[124], w[125])
    assert chase["ns_per_load"] > 2 * persist["ns_per_flush"]
    assert w[124]["media_write_bytes"] >= 3 * w[124]["bytes_written"]
    # dram, modelled in the same run: reads 3x faster, no write amplification
    assert near(chase["dram_ns"] / chase["loads"], model["reference"]["read_ns"])
    assert w[124]["dram_write_gbps"] > w[124]["write_gbps"]
    # the kernel's copies count in the read()/write() windows
    assert w[141]["loads"] > 0 and w[142]["nt_stores"] + w[142]["stores"] > 0
    # the guest's own figures, the plot, the summary
    perf = json.loads((a.dir / "pmem-perf.json").read_text())["phases"]
    assert [x["phase"] for x in perf][:2] == ["chase", "read-seq-64"] and len(perf) == 16
    assert all(x["fs"] == "ext4" and x["ns"] > 0 for x in perf)
    svg = (a.dir / "pmem-perf.svg").read_text()
    assert svg.startswith("<?xml") and "bandwidth (GB/s)" in svg and "chase" in svg
    lat = a.summary["latency"]
    assert lat["spec"] == "optane" and lat["model"] == "pmem-model.json" and lat["plot"] == "pmem-perf.svg"


def test_custom_parameters_and_stall_mode(daxlab):
    run = daxlab("--scenario", "pmem-perf", "--latency", "custom:read=500ns,write_bw=1GB/s,unit=256,wcbuf=16K",
                 "--latency-mode", "stall")
    assert run.rc == 0, run
    model, w = windows(run)
    assert model["mode"] == "stall" and model["params"]["preset"] == "custom"
    assert near(w[101]["ns_per_load"], 500.0), w[101]
    # 256-byte units at 1 GB/s: random 256 B writes capped at 1 GB/s
    assert 0.9 < w[125]["write_gbps"] <= 1.05, w[125]
    # The plugin busy-waited at least the modelled cost above dram's of the
    # chase's stalled half (50000 steps; the other half has the stalls
    # suspended, to measure the dram baseline in the same run).
    stats = json.loads((run.dir / "pmem-stats.json").read_text())["latency"]
    assert stats["mode"] == "stall" and stats["stalls"] > 0
    assert stats["modelled_extra_ns"] > 100000 * (500 - 101.5) * 0.9
    assert stats["stalled_ns"] > 50000 * (500 - 101.5) * 0.9
    perf = {x["phase"]: x for x in json.loads((run.dir / "pmem-perf.json").read_text())["phases"]}
    assert perf["chase"]["base_ns_per_op"] > 0
    assert run.summary["latency"]["stalled_vcpu_seconds"] > 0
    assert "stalls:" in run.stdout


def test_plugin_rejects_a_bad_latency_option():
    p = qemu_with_plugin("base=0x100000000,size=512M,out=/tmp,persist=off,latency=custom:read=-1ns")
    assert p.returncode != 0
    assert "option parsing failed: latency=custom:read=-1ns: latency parameter read must not be negative" in p.stderr


def test_latency_tool_prints_presets_and_one_line_errors():
    tool = TOP / ".cache" / "build" / "emulator" / "daxlab-latency"
    ok = subprocess.run([str(tool), "check", "custom:read=1us,cache=2M"], capture_output=True, text=True)
    params = json.loads(ok.stdout)
    assert ok.returncode == 0 and params["read_ns"] == 1000 and params["cache"] == 2097152, ok.stdout
    for spec, msg in [("pcm", "unknown latency preset 'pcm'"),
                      ("custom:read_bw=0", "read_bw must be above zero"),
                      ("custom:unit=96", "unit must be a power of two")]:
        p = subprocess.run([str(tool), "check", spec], capture_output=True, text=True)
        assert p.returncode == 2 and p.stdout == "" and p.stderr.count("\n") == 1 and msg in p.stderr
