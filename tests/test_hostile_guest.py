"""A hostile guest, for real: each attack on the host's reading of a guest,
made by a payload in a booted guest (--exec), as root there.

Each attack must fail the run (or be shown as harmless text) and leave the
host as it was: no command run, no file outside the run directory, no file
of the run directory overwritten, no markup in the report, no control
characters on the terminal. tests/test_collect.py does the same without
booting, on fixture run directories.
"""
import json
import re

from conftest import TOP, finish, start

# The TAP port as the agent holds it (its fd 3): a payload can write there.
TAP_PORT = "/proc/1/fd/3"
FILES_PORT = "/proc/1/fd/4"


def no_control(text):
    return not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text)


def test_a_sed_e_flag_line_runs_nothing_and_fails_the_run(daxlab, tmp_path):
    marker = tmp_path / "pwned"
    line = f"# daxlab-expect-window: id=1 x/;e touch {marker};s/=1"
    run = daxlab("--exec", f"echo '{line}'; echo '{line}' >{TAP_PORT}")
    assert run.rc == 1, run
    assert not marker.exists()
    s = run.summary
    assert s["guest_status"] == "protocol-error", s
    assert all(x["status"] != "pass" for x in s["scenarios"])


def test_guest_files_cannot_overwrite_the_run_directory(daxlab):
    # A frame for pmem0.img (the NV-DIMM image, or a user's --image), sent on
    # the files port after a legitimate-looking one.
    frame = r"printf '@@daxlab-file pmem0.img 2\nxx\n@@daxlab-end\n'"
    run = daxlab("--exec", f"{frame} >{FILES_PORT}; exit 0")
    assert run.rc == 1, run
    assert (run.dir / "pmem0.img").stat().st_size == 512 << 20
    s = run.summary
    assert s["guest_status"] == "protocol-error" and "files channel" in s["guest_reason"], s
    assert s["scenarios"][0]["status"] == "fail"


def test_a_forged_passing_result_does_not_pass(daxlab):
    forged = ("# daxlab-result: scenario=payload fs=ext4 status=pass dax=1 duration=0.10 exit=0 "
              "reason=-")
    run = daxlab("--exec", f"echo '{forged}' >{TAP_PORT}; echo 'ok 1 - payload ext4' >{TAP_PORT}; exit 3")
    assert run.rc == 1, run
    s = run.scenario("payload", "ext4")
    assert s["status"] == "fail", s
    assert run.summary["guest_status"] == "protocol-error", run.summary


def test_a_forged_line_that_injects_json_keys_is_a_protocol_error(daxlab):
    forged = ('# daxlab-result: scenario=payload fs=ext4 status=pass dax=1 '
              'duration=1.00,"forged":"yes" exit=0 reason=-')
    run = daxlab("--exec", f"echo '{forged}' >{TAP_PORT}; exit 0")
    assert run.rc == 1, run
    s = run.summary
    assert "forged" not in s and s["guest_status"] == "protocol-error", s
    assert "duration= is not a valid value" in s["guest_reason"], s
    assert s["scenarios"][0]["status"] == "fail"


def test_markup_and_json_from_the_guest_stay_text(daxlab):
    # The agent quotes a payload's bail-out in the reason: markup, JSON
    # punctuation and a terminal escape, all in one.
    bail = r'Bail out! <script>alert(1)</script> ", "forged": "yes" \033[2J'
    run = daxlab("--exec", f"printf '%b\\n' '{bail}'; echo '<img src=x onerror=alert(2)>'; exit 1")
    assert run.rc == 1, run
    s = run.summary
    assert "forged" not in s and s["guest_status"] == "completed", s
    reason = run.scenario("payload", "ext4")["reason"]
    assert "<script>alert(1)</script>" in reason and no_control(reason), reason
    html = (run.dir / "report.html").read_text()
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert no_control(run.stdout), run.stdout
    json.loads((run.dir / "summary.json").read_text())


def test_a_flood_on_the_tap_port_stops_the_guest(daxlab):
    run = daxlab("--exec", f"while :; do head -c 1048576 /dev/zero | tr '\\0' x >{TAP_PORT}; done")
    assert run.rc == 1, run
    s = run.summary
    assert s["guest_status"] == "flood" and "tap channel" in s["guest_reason"], s
    assert (run.dir / "tap.txt").stat().st_size < 64 << 20


def test_a_results_path_is_never_run(tmp_path):
    # run.sh's cwd is the repository: a command in the path would touch there
    results = tmp_path / "r$(touch daxlab-pwned)`touch daxlab-pwned`"
    run = finish(start(["--exec", "true"], results), results)
    assert run.rc == 0, run
    assert not (TOP / "daxlab-pwned").exists() and not list(tmp_path.rglob("daxlab-pwned"))
    assert run.summary["scenarios"][0]["status"] == "pass"
