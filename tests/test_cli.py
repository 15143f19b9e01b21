"""run.sh's command line: help, listing and bad input.

Bad input must give one clear line on stderr and a non-zero exit, before
anything is installed or booted.
"""
import subprocess

import pytest

from conftest import RUN_SH, TOP


def run_sh(*args):
    return subprocess.run(
        [str(RUN_SH), *args],
        cwd=TOP,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help():
    p = run_sh("--help")
    assert p.returncode == 0
    assert p.stdout.startswith("usage: ./run.sh")
    for opt in ("--scenario", "--fs", "--no-dax", "--kernel", "--timeout", "--list"):
        assert opt in p.stdout


def test_list_shows_every_scenario_with_a_description():
    p = run_sh("--list")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    names = [line.split()[0] for line in lines]
    sources = sorted(TOP.glob("scenarios/[0-9][0-9][0-9]-*.c"))
    assert names == [s.stem[4:] for s in sources]
    for line in lines:
        assert len(line.split()) > 2, f"no description: {line!r}"
    assert any(line.startswith("dax-basics") and "[default]" in line for line in lines)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scenario", "no-such-thing"], "no such scenario: no-such-thing"),
        (["--fs", "btrfs"], "unknown filesystem: btrfs"),
        (["--kernel", "/nonexistent/vmlinuz"], "kernel image not found: /nonexistent/vmlinuz"),
        (["--modules", "/tmp"], "--modules needs --kernel"),
        (["--timeout", "soon"], "--timeout must be a positive number"),
        (["--cpus", "0"], "--cpus must be a positive integer"),
        (["--pmem-size", "lots"], "--pmem-size must look like"),
        (["--bogus"], "unknown option: --bogus"),
        (["--scenario"], "--scenario needs a value"),
        (["--persist", "battery"], "unknown --persist mode: battery"),
        (["--plugin", "maybe"], "unknown --plugin mode: maybe"),
        (["--crash-check", "persist-litmus", "--plugin", "counters"], "--crash-check needs --plugin persist"),
        (["--crash-check", "no-such-thing"], "no such scenario: no-such-thing"),
        (["--guest-write-cache", "2"], "--guest-write-cache must be 0 or 1"),
        (["--crash-samples", "many"], "--crash-samples must be a number"),
        (["--crash-point-samples", "-1"], "--crash-point-samples must be a number up to 1000"),
        (["--crash-max-states", "0"], "--crash-max-states must be a number from 1 to 100000"),
        (["--crash-every", "0"], "--crash-every must be a positive number of fences"),
        (["--crash-every", "1000", "--plugin", "counters"], "--crash-every needs --plugin persist"),
        (["--image", "/tmp/x.img", "--fs", "ext4,xfs"], "--image keeps one filesystem"),
        (["--trace", "types=stores"], "--trace: unknown event type in 'types=stores'"),
        (["--trace", "range=lots"], "--trace: range must look like 0x1000-0x200000"),
        (["--trace", "colour=red"], "--trace: unknown filter 'colour=red'"),
        (["--trace", "time=soon"], "--trace: time must look like 10-20.5"),
        (["--trace", "--plugin", "off"], "--trace needs the plugin"),
        (["--iterations", "0"], "--iterations must be a positive number"),
        (["--iterations", "lots"], "--iterations must be a positive number"),
        (["--widen", "0"], "--widen takes microseconds"),
        (["--record", "--cpus", "2"], "--record needs one vCPU"),
        (["--replay"], "--replay needs a run directory"),
        (["--replay", "/nonexistent/run"], "not a recorded run (no replay/args): /nonexistent/run"),
        (["--payload", "/tmp"], "--payload needs --exec 'CMD'"),
        (["--payload", "/nonexistent/dir", "--exec", "true"], "--payload is not a directory: /nonexistent/dir"),
        (["--exec"], "--exec needs a value"),
        (["--shell", "--exec", "true"], "--shell and --exec exclude each other"),
        (["--shell", "--scenario", "dax-basics"], "--shell runs no scenarios"),
        (["--campaign", "/nonexistent/campaign.conf"], "campaign file not found: /nonexistent/campaign.conf"),
        (["--campaign", "/etc/hostname", "--fs", "xfs"], "--campaign takes only -j N and --results DIR"),
        (["--campaign", "/etc/hostname"], "not a 'key: value' line"),
        (["--libvirt", "http://example.org"], "--libvirt: 'http://example.org' is not a QEMU libvirt URI"),
        (["--libvirt", "--shell"], "--shell runs QEMU on this terminal: not with --libvirt"),
        (["--pmem-kind", "optane"], "unknown --pmem-kind: optane (choose nvdimm, virtio-pmem or cxl)"),
        (["--pmem-kind", "cxl", "--pmem-size", "300M"], "--pmem-kind cxl: --pmem-size must be a multiple of 256M"),
        (["--pmem-kind", "cxl", "--persist", "eadr"], "--pmem-kind cxl: the region's persistence domain is the memory controller"),
        (["--pmem-kind", "virtio-pmem", "--persist", "adr"], "--persist adr is for NV-DIMMs"),
        (["--pmem-kind", "virtio-pmem", "--emit-xml"], "--pmem-kind virtio-pmem: not with --libvirt"),
        (["--persist", "virtio"], "unknown --persist mode: virtio (choose adr or eadr)"),
        (["--mode", "raw"], "unknown --mode: raw (choose fsdax or devdax)"),
        (["--mode", "devdax", "--fs", "xfs"], "--mode devdax has no filesystem: drop --fs"),
        (["--mode", "devdax", "--scenario", "rename-atomic"], "--mode devdax: rename-atomic needs a filesystem"),
        (["--fs", "devdax"], "unknown filesystem: devdax (that is --mode devdax)"),
        (["--latency", "pcm"], "unknown latency preset 'pcm'"),
        (["--latency", "custom:read=-5"], "--latency: latency parameter read must not be negative"),
        (["--latency", "custom:write_bw=0"], "latency parameter write_bw must be above zero"),
        (["--latency", "custom:speed=3"], "unknown latency parameter 'speed'"),
        (["--latency", "custom:read=50,read_seq=80"], "latency parameters contradict: read_seq"),
        (["--latency-mode", "stall"], "--latency-mode needs --latency"),
        (["--latency", "optane", "--latency-mode", "slow"], "unknown --latency-mode: slow"),
        (["--latency", "optane", "--plugin", "off"], "--latency needs the plugin"),
        (["--kernel", "debian-7"], "no Debian kernel 'debian-7' (debian-6.1 or debian-6.12)"),
        (["--kernel", "debian-6.12", "--modules", "/tmp"], "--modules needs --kernel PATH"),
        (["--kernel-variant", "m"], "kernel variant 'm' is ambiguous: m1-fault-isize"),
        (["--kernel-variant", "zz"], "no such kernel variant: zz"),
        (["--kernel-src", "/tmp"], "--kernel-src: /tmp is not a Linux source tree"),
        (["--kernel-src", "/tmp", "--kernel", "debian-6.12"], "--kernel and --kernel-src exclude each other"),
        (["--mem", "a[$(touch daxlab-pwned)]G", "--payload", "/tmp", "--exec", "true"],
         "--mem must look like 1G or 2048M"),
        (["--results", "/tmp/a,share=off"], "the results directory must not contain a comma"),
        (["--image", "/tmp/x,y.img"], "--image must not contain a comma"),
    ],
)
def test_bad_input_is_one_clear_line(args, message):
    p = run_sh(*args)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1, p.stderr
    assert message in p.stderr


def test_campaign_file_with_a_bad_keep_images_is_one_clear_line(tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("scenarios: dax-basics\nkeep-images: some\n")
    p = run_sh("--campaign", str(conf))
    assert p.returncode == 2 and p.stdout == "" and p.stderr.count("\n") == 1, p.stderr
    assert "keep-images: 'some' is not failed or all" in p.stderr


def test_campaign_values_cannot_smuggle_options(tmp_path):
    for line, msg in [("timeout: 60 --payload /etc --exec true", "timeout: '60 --payload"),
                      ("iterations: 3 --results /", "iterations: '3 --results /'"),
                      ("latency: optane --image /dev/sda", "is not none, dram, optane"),
                      ("uris: qemu:///system --exec x", "is not direct or a qemu libvirt URI"),
                      ("pmem-kind: cxl --exec x", "pmem-kind: 'cxl --exec x' is not nvdimm or virtio-pmem"),
                      ("mode: devdax --fs xfs", "mode: 'devdax --fs xfs' is not fsdax or devdax"),
                      ("pmem-kind: virtio-pmem\nmode: devdax", "pmem-kind virtio-pmem with mode devdax: not supported")]:
        conf = tmp_path / "c.conf"
        conf.write_text(f"scenarios: dax-basics\n{line}\n")
        p = run_sh("--campaign", str(conf))
        assert p.returncode == 2 and p.stdout == "" and p.stderr.count("\n") == 1, p.stderr
        assert msg in p.stderr, (line, p.stderr)
    assert not (TOP / "daxlab-pwned").exists()


def test_unwritable_results_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    p = run_sh("--results", str(blocker / "results"))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1, p.stderr
    assert "cannot create results directory" in p.stderr


def test_results_dir_without_write_permission(tmp_path):
    # Root ignores mode bits, so use a read-only mount instead: /proc is one.
    p = run_sh("--results", "/proc/sys")
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1, p.stderr
    assert "not writable" in p.stderr


def test_image_of_the_wrong_size_is_refused(tmp_path):
    img = tmp_path / "small.img"
    img.write_bytes(b"\0" * 4096)
    p = run_sh("--image", str(img))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1, p.stderr
    assert "is 4096 bytes, not --pmem-size 512M" in p.stderr


def test_image_that_is_not_a_daxlab_nvdimm_is_refused(tmp_path):
    # random bytes where the fsdax info block would be: not ours, not empty
    img = tmp_path / "other.img"
    with open(img, "wb") as f:
        f.truncate(512 << 20)
        f.seek(4096)
        f.write(bytes(range(256)) * 16)
    before = img.read_bytes()[:8192]
    p = run_sh("--image", str(img))
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1, p.stderr
    assert "is not a daxlab NV-DIMM image" in p.stderr and "--image-format" in p.stderr
    assert img.read_bytes()[:8192] == before


def test_image_format_needs_an_image():
    p = run_sh("--image-format")
    assert p.returncode == 2 and "--image-format needs --image PATH" in p.stderr


def test_kernel_variant_prefix_resolves_to_the_one_variant():
    build = TOP / "guest-kernel" / "build.sh"
    p = subprocess.run([str(build), "--resolve", "m1"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout == "m1-fault-isize\n", p
    p = subprocess.run([str(build), "--resolve", "slim"], capture_output=True, text=True, timeout=30)
    assert p.stdout == "slim\n", p
