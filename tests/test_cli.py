"""The `speedcopilot` console script, run as a user runs it (subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.core.llm.providers import OracleProvider
from copilot.core.session import HunkDecision, Session
from tests.support.fixture_track import FixtureTrack

EXE = shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([EXE, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout)


def test_help_lists_every_command() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("start", "run", "records", "data", "sessions", "config", "compare"):
        assert command in result.stdout
    for command in ("start", "run", "records", "data", "sessions", "config", "compare"):
        sub = cli(command, "--help")
        assert sub.returncode == 0, sub.stderr


def test_config_show_masks_the_key(tmp_path: Path) -> None:
    (tmp_path / "speedcopilot.toml").write_text('model = "local-llama"\n')
    result = cli("config", "show", "--json", cwd=tmp_path, env={"OPENAI_API_KEY": "sk-fake-verysecretvalue-123456"})
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["model"] == "local-llama"
    assert "verysecretvalue" not in result.stdout and values["api_key"].startswith("sk-")


def test_bad_config_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "speedcopilot.toml").write_text("model = [\n")
    result = cli("config", "show", cwd=tmp_path)
    assert result.returncode == 1
    assert "not valid TOML" in result.stderr and "Traceback" not in result.stderr


def test_nanogpt_records_list_json_works_before_any_sync() -> None:
    result = cli("records", "list", "--track", "nanogpt", "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    by_number = {r["number"]: r for r in records}
    assert by_number[5]["time_s"] == pytest.approx(15.2 * 60)
    assert set(records[0]) >= {"number", "time_s", "description", "date", "has_code"}
    assert by_number[89]["has_code"] is False  # not synced yet


def test_benchmark_tasks_are_the_papers_19() -> None:
    result = cli("records", "tasks", "--json")
    assert result.returncode == 0, result.stderr
    tasks = json.loads(result.stdout)
    assert len(tasks) == 19
    assert (tasks[5]["from_record"], tasks[5]["to_record"]) == (6, 8)


def test_unknown_record_names_the_valid_ones(tmp_path: Path) -> None:
    result = cli("records", "show", "999", "--track", "nanogpt", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "999" in result.stderr


def _recorded_session(root: Path) -> str:
    track = FixtureTrack()
    session = Session.create(root, track, 0, OracleProvider(track, 0))
    try:
        import asyncio

        view = asyncio.run(session.request_suggestion())
        asyncio.run(session.decide(view.id, [HunkDecision(h.index, "accept", decision_time_s=1.0)
                                             for h in view.hunks]))
        return session.id
    finally:
        session.close_now(reason="user")


def test_sessions_list_and_show(tmp_path: Path) -> None:
    session_id = _recorded_session(tmp_path / "sessions")
    listed = cli("sessions", "list", "--json", "--session-dir", str(tmp_path / "sessions"))
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows[0]["id"] == session_id and rows[0]["commits"] == 1 and rows[0]["status"] == "ended"
    shown = cli("sessions", "show", session_id[:12], "--events", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "suggestion_received" in shown.stdout and "ai" in shown.stdout
    missing = cli("sessions", "show", "nope", cwd=tmp_path)
    assert missing.returncode == 1 and "no session" in missing.stderr


def test_compare_writes_csv_with_fsr_column(tmp_path: Path) -> None:
    _recorded_session(tmp_path / "sessions")
    result = cli("compare", "--all", "--csv", "-", "--session-dir", str(tmp_path / "sessions"))
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split(",")
    assert "fsr" in header and "mode" in header


def test_open_session_is_refused_elsewhere(tmp_path: Path) -> None:
    track = FixtureTrack()
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))
    try:
        result = cli("run", "--session", session.id, "--session-dir", str(tmp_path / "sessions"))
        assert result.returncode == 1
        assert "already open" in result.stderr and "Traceback" not in result.stderr
    finally:
        session.close_now(reason="user")


def test_headless_run_trains_the_current_commit_of_a_micro_session(tmp_path: Path) -> None:
    from copilot.core.tracks.micro import MicroTrack
    from copilot.core.tracks.microdata import prepare_micro_data

    data_dir = tmp_path / "data"
    prepare_micro_data(data_dir, size="small")
    track = MicroTrack(data_dir=data_dir)
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))
    session.close_now(reason="user")
    env = {"SPEEDCOPILOT_DATA_DIR": str(data_dir), "MICRO_MAX_STEPS": "4", "MICRO_VAL_EVERY": "2",
           "MICRO_VAL_WINDOWS": "4"}
    result = cli("run", "--session", "last", "--quiet", "--session-dir", str(tmp_path / "sessions"), env=env,
                 timeout=240)
    # 4 steps never reach the target: exit 0 with the outcome above_target, metrics in the log
    assert result.returncode == 0, result.stdout + result.stderr
    assert "above_target" in result.stdout
    events = [json.loads(line) for line in (session.dir / "events.jsonl").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert "run_started" in kinds and "run_finished" in kinds
    vals = [e for e in events if e["type"] == "metric" and "val_loss" in e]
    assert [e["step"] for e in vals] == [0, 2, 4]

    piped = cli("run", "--session", "last", "--session-dir", str(tmp_path / "sessions"), env=env, timeout=240)
    assert piped.returncode == 0, piped.stdout + piped.stderr
    lines = piped.stdout.splitlines()
    progress = [line for line in lines if line.startswith("step ")]
    assert len(progress) == 3 and all("best val" in line for line in progress)  # one line per validation
    assert any(line.startswith("above_target · ") for line in lines)  # the verdict on its own line
    assert "\r" not in piped.stdout and "\x1b" not in piped.stdout
