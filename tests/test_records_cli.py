"""`speedcopilot records …` as a user meets it: closed pipes, byte-exact scripts, one line per record, markup."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.cli import CLOSED_PIPE_STATUS
from copilot.resources import records_dir
from tests.support.upstream_fixture import build_upstream_repo

EXE = shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")


def cli(*args: str, columns: int = 200, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([EXE, *args], capture_output=True, cwd=cwd, env=env, timeout=120)


def run_into_closed_pipe(*args: str) -> tuple[int, str]:
    """Run with stdout a pipe whose reader is gone before the command writes (`… | head` once head quit)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([EXE, *args], stdout=write_end, stderr=subprocess.PIPE, timeout=120,
                              env={**os.environ, "COLUMNS": "120"})
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("args", [
    ("records", "show", "0", "--script"),
    ("records", "show", "0"),
    ("records", "list", "--track", "nanogpt"),
    ("records", "list", "--json"),
    ("records", "tasks"),
    ("config", "show", "--json"),
    ("--help",),
])
def test_a_closed_pipe_ends_quietly(args: tuple[str, ...]) -> None:
    code, stderr = run_into_closed_pipe(*args)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr and "Exception ignored" not in stderr, stderr
    assert code in (0, CLOSED_PIPE_STATUS)
    if args != ("--help",):  # argparse prints help inside parse_args; only the commands are checked for 141
        assert code == CLOSED_PIPE_STATUS


def test_head_of_a_script_through_a_shell_pipe() -> None:
    proc = subprocess.run(f"'{EXE}' records show 0 --script | head -3", shell=True, capture_output=True, timeout=120)
    assert proc.stdout.count(b"\n") == 3
    assert b"Traceback" not in proc.stderr and b"BrokenPipe" not in proc.stderr


def test_script_is_byte_exact() -> None:
    result = cli("records", "show", "0", "--script")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (records_dir() / "micro" / "record_0" / "train_gpt.py").read_bytes()


def test_nanogpt_script_is_byte_exact_after_a_sync(tmp_path: Path) -> None:
    upstream = build_upstream_repo(tmp_path / "up")
    assert cli("records", "sync", "--path", str(upstream.path)).returncode == 0
    for key in ("5", "61"):  # an ordinary log, and one with companion sources appended
        result = cli("records", "show", key, "--track", "nanogpt", "--script")
        assert result.returncode == 0, result.stderr
        assert result.stdout == upstream.expected[key].main.encode("utf-8")


@pytest.mark.parametrize("number", [3, 66, 86])
def test_show_prints_the_description_once(number: int) -> None:
    result = cli("records", "show", str(number), "--track", "nanogpt")
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    description = {3: "Introduced the Muon optimizer", 66: "Torch 2.10",
                   86: "Algebraic rewrite of XSA, same math faster execution"}[number]
    assert text.count(description) == 1, text


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"^[│|]\s*\d+\s*[│|]", line)]


def test_every_record_is_one_line_even_in_a_narrow_terminal() -> None:
    result = cli("records", "list", "--track", "nanogpt", columns=80)
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout.decode())
    numbers = [int(re.match(r"^[│|]\s*(\d+)", row).group(1)) for row in rows]
    assert numbers == list(range(1, 90))  # 89 records, each on exactly one line (re-timings folded in)
    assert all(len(row) <= 80 for row in rows)


def test_tasks_are_one_line_each_and_say_task_6_is_folded_out(tmp_path: Path) -> None:
    hints = tmp_path / "hints"
    for folder in ("record_6", "record_7"):
        (hints / folder).mkdir(parents=True)
        (hints / folder / "level_1_pseudo.txt").write_text(f"{folder} pseudocode\n")
        (hints / folder / "level_2_description.txt").write_text(f"{folder} text\n")
    result = cli("records", "tasks", "--hints-dir", str(hints), columns=100)
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    rows = _table_rows(text)
    assert [int(re.match(r"^[│|]\s*(\d+)", r).group(1)) for r in rows] == [1, 2, 3, 4, 5, *range(7, 21)]
    flat = " ".join(text.split())
    assert "task 6 (#6→#7, the PyTorch 2.5 upgrade) is folded out as in the paper; task 7 is #6→#8" in flat
    task7 = next(r for r in rows if re.match(r"^[│|]\s*7\s*[│|]", r))
    assert "record_7" in task7 and "record_6" not in task7


def test_markup_in_catalogue_text_is_printed_literally(tmp_path: Path) -> None:
    upstream = build_upstream_repo(tmp_path / "up")
    upstream.add_record(90, "Rewrote [bold]everything[/bold] in C:\\")  # ends in one backslash
    upstream.add_record(91, "Pipes a \\| b in the text")
    assert cli("records", "sync", "--path", str(upstream.path)).returncode == 0
    show = cli("records", "show", "90", "--track", "nanogpt").stdout.decode()
    assert "Rewrote [bold]everything[/bold] in C:\\\n" in show
    assert "[/bold]" not in show.replace("[bold]everything[/bold]", "")
    listing = cli("records", "list", "--track", "nanogpt").stdout.decode()
    assert "[bold]everything[/bold]" in listing
    row = next(r for r in _table_rows(listing) if re.match(r"^[│|]\s*91\s*[│|]", r))
    assert "Pipes a | b in the text" in row and "2026-08-03" in row


def test_sessions_and_compare_print_user_text_literally(tmp_path: Path) -> None:
    from copilot.core.llm.providers import OracleProvider
    from copilot.core.session import Session, SessionOptions
    from tests.support.fixture_track import FixtureTrack

    track = FixtureTrack()
    root = tmp_path / "sessions"
    session = Session.create(root, track, 0, OracleProvider(track, 0),
                             options=SessionOptions(participant="[red]p1[/red]\\"))
    try:
        script = session.workspace.path / track.script_name
        script.write_text(script.read_text() + "\n# a human edit\n")
        session.commit_external_edit("[bold]tuned[/bold] the lr\\")
    finally:
        session.close()
    shown = cli("sessions", "show", session.id, "--session-dir", str(root), columns=200).stdout.decode()
    assert "[bold]tuned[/bold] the lr\\" in shown and "the lr\\\\" not in shown
    assert "participant [red]p1[/red]\\\n" in shown
    compared = cli("compare", "--all", "--session-dir", str(root), columns=250).stdout.decode()
    assert "[red]p1[/red]\\" in compared and "[red]p1[/red]\\\\" not in compared
