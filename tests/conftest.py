"""Shared helpers for the daxlab host-side tests.

Every guest test boots a real QEMU TCG guest through ./run.sh, with its
own results directory, and reads what run.sh wrote (summary.json and the
files next to it). The cache (.cache, or $DAXLAB_CACHE) is shared, so the
kernel and initramfs are built once per machine.
"""
import json
import os
import pathlib
import shutil
import subprocess

import pytest

TOP = pathlib.Path(__file__).resolve().parent.parent
RUN_SH = TOP / "run.sh"


def pytest_report_header(config):
    """The free space where the runs write: a guest run keeps NV-DIMM
    images, so a full disk is the first thing to rule out."""
    tmp = pathlib.Path(os.environ.get("TMPDIR", "/tmp"))
    places = [tmp] if tmp.stat().st_dev == TOP.stat().st_dev else [tmp, TOP]
    return [f"daxlab: {shutil.disk_usage(p).free >> 20} MiB free in {p}" for p in places]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Drop the results of a passed test once it is torn down: each guest
    run keeps its NV-DIMM images (hundreds of MiB), and pytest keeps every
    test's tmp_path until the session ends. A failed test keeps its
    results, and DAXLAB_KEEP_RESULTS=1 keeps them all."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.daxlab_passed = rep.passed
    elif rep.when == "teardown" and getattr(item, "daxlab_passed", False) and rep.passed \
            and os.environ.get("DAXLAB_KEEP_RESULTS") != "1":
        tmp = (getattr(item, "funcargs", None) or {}).get("tmp_path")
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


class Run:
    """One finished ./run.sh invocation."""

    def __init__(self, proc, results):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.results = results

    @property
    def dir(self):
        """The run's directory: results/latest, or, for a run that did not
        finish (latest never points at one), the only one there is."""
        latest = self.results / "latest"
        if latest.exists():
            return latest.resolve()
        runs = sorted(d for d in self.results.glob("2*") if d.is_dir())
        assert len(runs) == 1, f"no results/latest and {len(runs)} run directories"
        return runs[0]

    @property
    def summary(self):
        return json.loads((self.dir / "summary.json").read_text())

    def scenario(self, name, fs):
        for s in self.summary["scenarios"]:
            if s["name"] == name and s["fs"] == fs:
                return s
        raise KeyError(f"{name} on {fs} not in summary.json")

    def __repr__(self):
        return f"<run rc={self.rc}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}>"


def start(args, results, env_extra=None):
    """Start ./run.sh ARGS with its results in RESULTS; returns the Popen."""
    env = dict(os.environ)
    env.pop("DAXLAB_RESULTS", None)
    env.pop("DAXLAB_PLUGIN_OPTS", None)
    env.update(env_extra or {})
    return subprocess.Popen(
        [str(RUN_SH), "--results", str(results), *args],
        cwd=TOP,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc, results, timeout=900):
    out, err = proc.communicate(timeout=timeout)
    proc.stdout, proc.stderr = out, err
    return Run(proc, results)


def qemu_with_plugin(options):
    """Start QEMU with the daxlab-pmem plugin and OPTIONS (its key=value
    list after the .so); returns the finished process (bad options stop it)."""
    plugin = TOP / ".cache" / "build" / "emulator" / "libdaxlab-pmem.so"
    assert plugin.exists(), "make plugin first (make test does)"
    return subprocess.run(
        ["qemu-system-x86_64", "-machine", "pc", "-display", "none", "-plugin", f"{plugin},{options}"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def daxlab(tmp_path):
    """Run ./run.sh with a private results directory; returns a Run."""

    def run(*args, timeout=900, env=None):
        results = tmp_path / "results"
        return finish(start(args, results, env), results, timeout)

    return run
