"""run.sh --libvirt, --emit-xml and --campaign over two libvirt URIs.

The first test is run.sh --libvirt on its own: where libvirt was never
installed (CI: .ci/run does not install it), run.sh installs it and starts
its daemons (there is no init system here). The others start virtlogd and
libvirtd with scripts/libvirt-daemons.sh and stop, by pid, only the daemons
they started. A job through libvirt must give the same results as the same job
run directly, down to the plugin's exact flush-litmus counts; a campaign of
8 guests over two URIs must complete with one merged summary.
"""
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from conftest import RUN_SH, TOP, finish, start

DAEMONS = TOP / "scripts" / "libvirt-daemons.sh"
QEMU_NS = "{http://libvirt.org/schemas/domain/qemu/1.0}"



def installed(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return "ok installed" in p.stdout


def test_libvirt_run_installs_and_starts_libvirt_itself(tmp_path):
    was_installed = installed("libvirt-daemon") and shutil.which("virsh") is not None
    was_running = subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True).returncode == 0
    try:
        r = finish(start(["--libvirt", "--scenario", "dax-basics"], tmp_path), tmp_path)
    finally:
        # only the daemons run.sh started (their pids in its default state dir)
        subprocess.run([str(DAEMONS), "stop"], timeout=60, stdin=subprocess.DEVNULL)
    assert r.rc == 0, r
    assert r.summary["backend"] == "qemu:///system"
    assert [(x["name"], x["status"], x["dax"]) for x in r.summary["scenarios"]] == [("dax-basics", "pass", True)]
    assert installed("libvirt-daemon") and installed("libvirt-daemon-driver-qemu") and shutil.which("virsh")
    if not was_installed:
        assert "libvirt is not installed: installing it" in r.stdout, r
    if not was_running:
        assert "started libvirtd" in r.stdout, r


@pytest.fixture(scope="module")
def libvirt(tmp_path_factory):
    state = tmp_path_factory.mktemp("libvirt-state")
    r = subprocess.run([str(DAEMONS), "start", "--state", str(state)], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    yield "qemu:///system"
    subprocess.run([str(DAEMONS), "stop", "--state", str(state)], timeout=60, stdin=subprocess.DEVNULL)


def windows(run):
    return {line.split()[1]: line.split(" ", 2)[2] for line in
            (run.dir / "pmem-windows.txt").read_text().splitlines()}


def test_libvirt_run_gives_the_results_of_the_direct_run(libvirt, tmp_path):
    args = ["--scenario", "dax-basics", "--scenario", "flush-litmus"]
    procs = [start(args, tmp_path / "direct"), start(args + ["--libvirt", libvirt], tmp_path / "libvirt")]
    direct, via = finish(procs[0], tmp_path / "direct"), finish(procs[1], tmp_path / "libvirt")
    assert direct.rc == 0, direct
    assert via.rc == 0, via
    assert via.summary["backend"] == libvirt and direct.summary["backend"] == "direct"
    strip = lambda s: [(x["name"], x["fs"], x["status"], x["dax"]) for x in s["scenarios"]]
    assert strip(via.summary) == strip(direct.summary)
    # same CPU model, same NV-DIMM window, same exact plugin counts
    for key in ("cpu_flush_instructions", "guest_persistence_domain", "pmem_window"):
        assert via.summary[key] == direct.summary[key], key
    assert windows(via) == windows(direct)
    dom = ET.parse(via.dir / "domain.xml").getroot()
    assert dom.find("devices/memory[@model='nvdimm']").get("access") == "shared"
    # libvirt preallocates the NV-DIMM's file; the run leaves it sparse again,
    # and the plugin's durable copy never took the preallocated zeros
    for img in ("pmem0.img", "pmem-durable.img"):
        st = (via.dir / img).stat()
        assert st.st_size == 512 << 20 and st.st_blocks * 512 < 256 << 20, (img, st.st_blocks)


def test_emit_xml_prints_a_domain_with_the_nvdimm_and_the_plugin(tmp_path):
    p = subprocess.run([str(RUN_SH), "--emit-xml", "--scenario", "dax-basics", "--results", str(tmp_path)],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    dom = ET.fromstring(p.stdout)  # stdout is the XML and nothing else
    assert dom.get("type") == "qemu"
    assert dom.find("features/acpi") is not None
    assert dom.find("maxMemory").get("slots") == "2"
    assert dom.find("cpu").get("mode") == "maximum"
    assert dom.find("cpu/numa/cell").get("memory") == "1024"
    nv = dom.find("devices/memory[@model='nvdimm']")
    assert nv.get("access") == "shared" and nv.find("target/size").text == "512"
    qargs = [a.get("value") for a in dom.find(f"{QEMU_NS}commandline")]
    assert "-plugin" in qargs and any("libdaxlab-pmem.so,base=0x100000000" in a for a in qargs)
    assert "daxlab.scenarios=001-dax-basics" in dom.find("os/cmdline").text


def test_unreachable_libvirt_uri_is_one_clear_line(tmp_path):
    p = subprocess.run([str(RUN_SH), "--libvirt", "qemu+unix:///system?socket=/nonexistent/sock",
                        "--results", str(tmp_path)], capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and p.stdout == "" and p.stderr.count("\n") == 1
    assert "cannot connect to qemu+unix:///system?socket=/nonexistent/sock" in p.stderr


def test_campaign_of_8_guests_over_two_uris(libvirt, tmp_path):
    conf = tmp_path / "eight.conf"
    conf.write_text("""# 8 guests: 2 filesystems x 2 persistence domains x 2 seeds
scenarios: dax-basics
fs: ext4, xfs
persist: adr, eadr
seeds: 1-2
uris: qemu:///system, qemu+unix:///system
jobs: 2
timeout: 600
""")
    p = subprocess.run([str(RUN_SH), "--campaign", str(conf), "--results", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=3000, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout + p.stderr
    camp = next((tmp_path / "r").glob("campaign-*"))
    c = json.loads((camp / "campaign.json").read_text())
    assert c["runs"] == 8 and c["passed"] == 8 and c["failed"] == 0
    used = [j["uri"] for j in c["job_list"]]
    assert used.count("qemu:///system") == 4 and used.count("qemu+unix:///system") == 4
    for j in c["job_list"]:
        s = json.loads((camp / j["run_dir"] / "summary.json").read_text())
        assert s["backend"] == j["uri"] and s["totals"]["passed"] == 1
    merged = (camp / "scenarios.txt").read_text()
    assert "dax-basics ext4: 4 runs, 4 pass" in merged and "dax-basics xfs: 4 runs, 4 pass" in merged
    # the NV-DIMM images of passed jobs are gone (keep-images: failed), the rest stays
    assert c["keep_images"] == "failed"
    assert not list(camp.rglob("*.img")) and len(list(camp.rglob("pmem-stats.json"))) == 8
    html = (camp / "report.html").read_text()
    assert "daxlab campaign" in html and html.count("<tr class=\"pass\">") == 8
