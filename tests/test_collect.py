"""The host's reading of a guest, without booting one.

Each directory under tests/fixtures/ is a run directory as a guest left it
(run.json, tap.txt, guest-files.raw, console.log, ...; its ABOUT says what
it holds). Many are hostile: the attacks on the old sed/awk reader (a sed
e flag, file names that overwrote the NV-DIMM image or replay/args,
forged results, JSON and HTML injection, terminal escapes, oversize
files). Each is collected, judged and reported by the real host tools in a
copy, and:
  - nothing outside the run directory changes, and no command runs;
  - a forged or broken stream never passes;
  - summary.json parses and has only the keys the judge writes;
  - report.html holds no script and no markup from the guest;
  - the terminal output holds no control characters;
  - summary.json and report.html equal the golden copies in
    tests/fixtures/NAME/golden/ (DAXLAB_REGEN_GOLDEN=1 rewrites them).
Floods (a TAP channel over its cap) are made here rather than checked in.
"""
import html.parser
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import TOP

FIXTURES = TOP / "tests" / "fixtures"
BUILD = TOP / ".cache" / "build" / "host"
COLLECT, REPORT = BUILD / "daxlab-collect", BUILD / "daxlab-report"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "run.json").exists())
SUMMARY_KEYS = {
    "run_id", "started", "wall_seconds", "qemu_seconds", "qemu_cpu_seconds", "kernel",
    "kernel_variant", "kernel_release", "fs", "dax_requested", "qemu_version", "cpu_model",
    "cpu_flush_instructions", "pmem_kind", "pmem_mode", "persist", "nvdimm_persistence",
    "guest_persistence_domain",
    "guest_dax_write_cache", "plugin", "plugin_watch_from", "backend", "pmem_window",
    "pmem_stats", "pmem_trace", "latency", "cpus", "record", "replay", "pmem_size", "image",
    "image_boots", "guest_status", "guest_reason", "scenarios", "totals"}
ENTRY_KEYS = {"name", "fs", "status", "dax", "duration", "reason", "fs_dax_trace", "dmesg",
              "campaign", "crash_check"}
# What each fixture must come to: the run's status, and each scenario's.
EXPECT = {
    "pass": ("completed", ["pass", "pass"]),
    "race-hit": ("completed", ["fail"]),
    "race-hit-no-trace": ("completed", ["fail"]),
    "timeout": ("timeout", ["timeout", "timeout"]),
    "panic": ("panic", ["fail", "fail"]),
    "bail-out": ("bailed", ["fail"]),
    "html-injection": ("completed", ["fail"]),
    "quotes-in-reason": ("completed", ["fail"]),
}


# The elements report.html is made of (a plot adds svg and its parts, not here).
REPORT_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "table", "tr", "td",
               "th", "a", "p", "pre", "details", "summary", "code", "div"}


class Tags(html.parser.HTMLParser):
    """The elements and attributes of a page, as a browser would parse them."""

    def __init__(self):
        super().__init__()
        self.tags, self.attrs = set(), set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)


def listing(top, skip):
    """Every path under top (but skip) with its size and mtime."""
    out = {}
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) != str(skip)]
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            out[p] = (st.st_size, st.st_mtime_ns)
    return out


def collect(run):
    """The host's tools on run directory RUN, as run.sh calls them."""
    guest = subprocess.run([str(COLLECT), "guest", str(run)], capture_output=True, timeout=120)
    judge = subprocess.run([str(COLLECT), "judge", str(run), "--golden", str(TOP / "scenarios")],
                           capture_output=True, timeout=120)
    report = subprocess.run([str(REPORT), str(run)], capture_output=True, timeout=120)
    return guest, judge, report


@pytest.mark.parametrize("case", CASES)
def test_fixture(case, tmp_path):
    assert COLLECT.exists() and REPORT.exists(), "make host first (make test does)"
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / case, run)
    golden = run / "golden"
    shutil.rmtree(golden, ignore_errors=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "canary").write_text("untouched\n")
    before = listing(tmp_path, run)
    image_before = (run / "pmem0.img").read_bytes() if (run / "pmem0.img").exists() else None

    guest, judge, report = collect(run)

    assert guest.returncode == 0, guest.stderr
    assert judge.returncode in (0, 1), judge.stderr
    assert report.returncode == 0, report.stderr
    # nothing outside the run directory changed, no command ran
    assert listing(tmp_path, run) == before
    assert not list(tmp_path.parent.glob("daxlab-pwned*")) and not os.path.exists("/tmp/daxlab-pwned-sed")
    if image_before is not None:
        assert (run / "pmem0.img").read_bytes() == image_before
    for p in run.rglob("*"):
        assert not p.is_symlink(), p
        assert p.resolve().is_relative_to(run.resolve()), p
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary) <= SUMMARY_KEYS, set(summary) - SUMMARY_KEYS
    for s in summary["scenarios"]:
        assert set(s) <= ENTRY_KEYS, s
    status = summary["guest_status"]
    if case in EXPECT:
        assert (status, [s["status"] for s in summary["scenarios"]]) == EXPECT[case], summary
    else:
        # every other fixture is an attack: the run fails, nothing passes
        assert status != "completed" or judge.returncode == 1, summary
        assert judge.returncode == 1
        assert all(s["status"] != "pass" for s in summary["scenarios"]), summary
    # what reaches the terminal and the page is clean
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", judge.stdout), judge.stdout
    html = (run / "report.html").read_text()
    tags = Tags()
    tags.feed(html)
    assert tags.tags <= REPORT_TAGS, tags.tags - REPORT_TAGS
    assert not [a for a in tags.attrs if a.startswith("on")], tags.attrs
    assert "<script" not in html.lower()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", html)
    # the goldens
    want = FIXTURES / case / "golden"
    if os.environ.get("DAXLAB_REGEN_GOLDEN") == "1":
        want.mkdir(exist_ok=True)
        shutil.copy(run / "summary.json", want / "summary.json")
        shutil.copy(run / "report.html", want / "report.html")
    assert (run / "summary.json").read_text() == (want / "summary.json").read_text()
    assert html == (want / "report.html").read_text()


def test_a_tap_flood_over_its_cap_fails_the_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "pass", run)
    shutil.rmtree(run / "golden", ignore_errors=True)
    with open(run / "tap.txt", "ab") as f:
        f.truncate(17 << 20)  # past the 16 MiB cap
    _, judge, _ = collect(run)
    s = json.loads((run / "summary.json").read_text())
    assert judge.returncode == 1 and s["guest_status"] == "protocol-error", s
    assert "larger than its cap of 16 MiB" in s["guest_reason"]
    assert all(x["status"] != "pass" for x in s["scenarios"])


def test_a_files_flood_over_its_cap_fails_the_run(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "pass", run)
    shutil.rmtree(run / "golden", ignore_errors=True)
    with open(run / "guest-files.raw", "ab") as f:
        f.truncate(257 << 20)  # sparse: past the 256 MiB cap, read no further than its size
    _, judge, _ = collect(run)
    s = json.loads((run / "summary.json").read_text())
    assert judge.returncode == 1 and s["guest_status"] == "protocol-error", s
    assert "files channel is larger than its cap of 256 MiB" in s["guest_reason"]


def test_the_host_flood_guard_kills_a_guest_over_a_cap(tmp_path):
    # host/guest.sh's guard, on a stand-in for QEMU that floods its TAP file
    script = tmp_path / "flood.sh"
    tap = tmp_path / "tap.txt"
    script.write_text(f"""
set -eu
TOP={TOP}
die() {{ echo "$*" >&2; exit 2; }}
to_mib() {{ echo 1024; }}
. "$TOP/host/guest.sh"
declare -A M=([tap]={tap} [console]={tmp_path}/console.log [files]={tmp_path}/files.raw)
touch "${{M[console]}}" "${{M[files]}}"
( while :; do head -c 1048576 /dev/zero; sleep 0.05; done >"${{M[tap]}}" ) &
pid=$!
G_EXIT=0 G_SIGNAL="" G_DEADLINE=0 G_FLOOD=""
guest_wait "$pid" 120
echo "flood=$G_FLOOD deadline=$G_DEADLINE"
""")
    p = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=150)
    assert "flood=tap deadline=0" in p.stdout, p.stdout + p.stderr
    assert tap.stat().st_size < 64 << 20
