"""Any kernel a user cares about: Debian's 6.12 by name, a kernel image with
a modules directory that has no modules.dep, and the kernel axis of a
campaign in its report.

The Debian kernels are fetched by name (apt resolves the ABI) into the
cache; a modules directory without modules.dep is depmod'ed on a copy in
the cache, never written itself.
"""
import json
import os
import pathlib
import shutil
import subprocess

from conftest import TOP

CACHE = pathlib.Path(os.environ.get("DAXLAB_CACHE", str(TOP / ".cache")))


def test_debian_612_by_name_boots_and_mounts_with_dax(daxlab):
    run = daxlab("--kernel", "debian-6.12", "--scenario", "dax-basics", "--fs", "ext4,xfs")
    assert run.rc == 0, run
    s = run.summary
    assert s["kernel_release"].startswith("6.12.") and s["kernel"].startswith("debian 6.12."), s
    assert all(x["status"] == "pass" and x["dax"] for x in s["scenarios"]), s["scenarios"]
    # its NV-DIMM drivers are modules too: the plugin watched from the agent's marker
    assert s["plugin_watch_from"] == "marker"


def test_modules_without_modules_dep_are_depmodded_on_a_copy(daxlab, tmp_path):
    kdir = pathlib.Path(subprocess.run(
        [str(TOP / "guest-kernel" / "fetch-debian.sh"), "--cache", str(CACHE)],
        capture_output=True, text=True, check=True, timeout=600).stdout.strip())
    kver = (kdir / "kver").read_text().strip()
    mods = tmp_path / kver
    subprocess.run(["cp", "-al", str(kdir / "lib" / "modules" / kver), str(mods)], check=True)
    for f in mods.glob("modules.*"):
        if f.name not in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            f.unlink()
    before = sorted(p.name for p in mods.iterdir())
    run = daxlab("--kernel", str(kdir / "vmlinuz"), "--modules", str(mods), "--scenario", "dax-basics")
    assert run.rc == 0, run
    assert "has no modules.dep: depmod on a copy" in run.stdout, run.stdout
    assert run.scenario("dax-basics", "ext4")["status"] == "pass"
    assert sorted(p.name for p in mods.iterdir()) == before  # the user's directory untouched


def test_campaign_report_has_the_kernel_by_fs_matrix(tmp_path):
    camp = tmp_path / "campaign"
    shutil.copytree(TOP / "tests" / "fixtures" / "campaign-kernels", camp)
    p = subprocess.run([str(CACHE / "build" / "host" / "daxlab-report"), str(camp)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    html = (camp / "report.html").read_text()
    assert html == (TOP / "tests" / "fixtures" / "campaign-kernels" / "golden" / "report.html").read_text()
    assert "<th>debian-6.12<br>xfs</th>" in html
    assert '<tr><td>zero-page-vs-pwrite</td><td class="pass">1/1</td>' in html
