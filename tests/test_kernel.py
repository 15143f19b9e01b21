"""Guest kernels built from Debian's linux-source-6.1, and mutants.

The config check runs for every variant (cheap: Kconfig only). The slim
kernel and a few mutants are really built (cached by the hash of their
inputs, so only the first run on a machine pays) and booted: the
unmutated kernel passes the scenarios that kill the mutants, and each
mutant is killed by the scenario its patch header names.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import TOP

BUILD = TOP / "guest-kernel" / "build.sh"
MUTANTS = TOP / "guest-kernel" / "patches" / "mutants"
CACHE = os.environ.get("DAXLAB_CACHE", str(TOP / ".cache"))


def build(*args, top=TOP, timeout=3600):
    return subprocess.run(
        [str(top / "guest-kernel" / "build.sh"), "--cache", CACHE, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def header(patch):
    fields = {}
    for line in patch.read_text().splitlines():
        if line.startswith("--- "):
            break
        m = re.match(r"^(Base|Killed-by): *(.*)$", line)
        if m:
            fields[m.group(1)] = m.group(2)
    return fields


def source_tree():
    # --config-only fetches and unpacks the source when it is missing.
    assert build("--config-only", "--variant", "slim").returncode == 0
    trees = sorted((pathlib.Path(CACHE) / "kernel-src").glob("linux-source-6.1-*/Makefile"))
    assert trees, "no unpacked linux-source-6.1 in the cache"
    return trees[-1].parent


@pytest.mark.parametrize("variant", ["slim", "debug", "defconfig"])
def test_config_fragments_survive_kconfig(variant):
    r = build("--config-only", "--variant", variant)
    assert r.returncode == 0, r.stderr
    cfg = pathlib.Path(r.stdout.strip()).read_text()
    for opt in ["CONFIG_FS_DAX=y", "CONFIG_FS_DAX_PMD=y", "CONFIG_ZONE_DEVICE=y",
                "CONFIG_BLK_DEV_PMEM=y", "CONFIG_ACPI_NFIT=y", "CONFIG_XFS_FS=y",
                "CONFIG_EXT4_FS=y", "CONFIG_KPROBES=y", "CONFIG_PREEMPT=y"]:
        assert opt + "\n" in cfg, opt
    if variant == "debug":
        assert "CONFIG_PROVE_LOCKING=y\n" in cfg and "CONFIG_KASAN=y\n" in cfg


def test_config_check_rejects_an_option_kconfig_drops(tmp_path):
    # A copy of guest-kernel/ whose fragment asks for FS_DAX_PMD without
    # transparent huge pages: Kconfig drops it, the check must say so.
    shutil.copytree(TOP / "guest-kernel", tmp_path / "guest-kernel")
    frag = tmp_path / "guest-kernel" / "config" / "daxlab.config"
    frag.write_text(frag.read_text().replace("CONFIG_TRANSPARENT_HUGEPAGE=y",
                                             "# CONFIG_TRANSPARENT_HUGEPAGE is not set"))
    r = build("--config-only", "--variant", "slim", top=tmp_path)
    assert r.returncode == 2
    assert "CONFIG_FS_DAX_PMD=y" in r.stderr and "did not survive" in r.stderr


def test_unknown_variant_is_one_line_error():
    r = build("--variant", "m0-nothing")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "no such kernel variant: m0-nothing" in r.stderr


def test_a_users_tree_is_configured_out_of_tree_and_told_which_mutants_apply():
    # Debian's source as "the user's tree" (--kernel-src): the same config
    # checks, a build directory named by the tree's identity, and each
    # mutant said to apply or not. The compile itself is left to run.sh
    # --kernel-src (minutes); this is its path up to make bzImage.
    src = source_tree()
    r = build("--list", "--src", str(src))
    assert r.returncode == 0, r.stderr
    mutants = [line for line in r.stdout.splitlines() if line.startswith("m")]
    assert mutants and all("; applies to --src" in line for line in mutants), r.stdout
    r = build("--config-only", "--src", str(src))
    assert r.returncode == 0, r.stderr
    cfg = pathlib.Path(r.stdout.strip())
    assert cfg.parent.name.startswith("tree-") and cfg.parent.name.endswith("-slim")
    assert "CONFIG_FS_DAX=y" in cfg.read_text()
    assert not (src / ".config").exists(), "the user's tree was written to"


def test_every_mutant_names_its_base_and_killer_and_applies():
    patches = sorted(MUTANTS.glob("m*.patch"))
    assert len(patches) >= 9
    src = source_tree()
    scenarios = {p.stem.split("-", 1)[1] for p in (TOP / "scenarios").glob("[0-9]*.c")}
    for p in patches:
        h = header(p)
        assert h.get("Base") in ("slim", "debug"), p.name
        assert h.get("Killed-by", "").split()[0] in scenarios, p.name
        r = subprocess.run(["patch", "-p1", "--dry-run", "-s", "-d", str(src)],
                           stdin=p.open(), capture_output=True, text=True)
        assert r.returncode == 0, f"{p.name}: {r.stdout}{r.stderr}"


def test_run_sh_rejects_an_unknown_kernel_variant(daxlab):
    r = daxlab("--kernel-variant", "m0-nothing")
    assert r.rc == 2 and "no such kernel variant" in r.stderr


# The slim kernel boots, mounts DAX and passes; each mutant below is killed
# by its scenario, which the unmutated kernel passes in the same run mode.
KILLS = [
    ("m1-fault-isize", "fault-vs-truncate", "scenario"),
    ("m2-cow-private", "cow-private", "scenario"),
    ("m8-writeback-wrprotect", "mmap-fsync-durability", "crash-check"),
]


def test_slim_kernel_passes_the_killer_scenarios(daxlab):
    r = daxlab("--kernel-variant", "slim", "--scenario", "dax-basics",
               "--scenario", "fault-vs-truncate", "--scenario", "cow-private",
               timeout=3600)
    assert r.rc == 0, r
    s = r.summary
    assert s["kernel_variant"] == "slim" and s["kernel"].startswith("source slim")
    assert s["kernel_release"].startswith("6.1.")
    # NV-DIMM drivers built in: the plugin watches from the kernel's start.
    assert s["plugin_watch_from"] == "kernel", s
    stats = json.loads((r.dir / "pmem-stats.json").read_text())
    assert stats["watch"] == {"from": "kernel", "started": True}, stats["watch"]
    for name in ("dax-basics", "fault-vs-truncate", "cow-private"):
        sc = r.scenario(name, "ext4")
        assert sc["status"] == "pass" and sc["dax"] is True, sc


@pytest.mark.parametrize("mutant,scenario,mode", KILLS)
def test_mutant_is_killed_by_its_scenario(daxlab, mutant, scenario, mode):
    r = daxlab("--kernel-variant", mutant, f"--{mode}", scenario, timeout=3600)
    assert r.rc == 1, r
    sc = r.scenario(scenario, "ext4")
    assert sc["status"] == "fail", sc
    if mode == "crash-check":
        assert sc["crash_check"]["failures"] > 0, sc


def test_unmutated_kernel_passes_the_crash_check_the_mutant_fails(daxlab):
    r = daxlab("--kernel-variant", "slim", "--crash-check", "mmap-fsync-durability",
               timeout=3600)
    assert r.rc == 0, r
    sc = r.scenario("mmap-fsync-durability", "ext4")
    assert sc["status"] == "pass" and sc["crash_check"]["failures"] == 0, sc
