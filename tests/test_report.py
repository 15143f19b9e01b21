"""report.html: one self-contained page per run, opened in headless Chromium.

A run with a scenario and the latency model must give a report that needs
no network, renders (a screenshot with real content), and shows the
summary, the scenario results and the latency plot.
"""
import re
import shutil
import struct
import subprocess
import zlib

import pytest

CHROMIUM = shutil.which("chromium")


def chromium(*args):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           *args], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


def png_colours(path):
    """How many distinct byte values the decoded image rows hold (1 = blank)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return len(set(zlib.decompress(idat)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (scripts/install-deps.sh --tests)")
def test_report_renders_summary_results_and_plots(daxlab, tmp_path):
    run = daxlab("--scenario", "dax-basics", "--scenario", "pmem-perf", "--latency", "optane")
    assert run.rc == 0, run
    html_path = run.dir / "report.html"
    html = html_path.read_text()
    # self-contained: nothing fetched from anywhere
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html), "report.html refers to the network"
    assert "<script" not in html
    dom = chromium("--dump-dom", html_path.as_uri()).stdout.decode()
    for text in ("daxlab run " + run.summary["run_id"], "Summary", "dax-basics", "pmem-perf",
                 "ok 7 - fs_dax fault tracepoints fired", "NV-DIMM: persistence and counters",
                 "Latency and bandwidth model", "bandwidth (GB/s)", "latency per access (ns)"):
        assert text in dom, text
    assert dom.count("<svg") >= 1 and "<rect" in dom
    shot = tmp_path / "report.png"
    chromium("--window-size=1280,2400", f"--screenshot={shot}", html_path.as_uri())
    assert shot.stat().st_size > 20000
    assert png_colours(shot) > 50, "the screenshot is blank"
