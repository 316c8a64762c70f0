"""A planted API key never leaves the user's environment: not through a run's environment, its stdout, its stderr
or a crash traceback — through the console script, the app, and a remote (ssh) run — and not into events.jsonl,
result.json, the app's log tail or a dialog."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Log

from copilot.core.llm.providers import OracleProvider
from copilot.core.session import Session, SessionOptions
from copilot.core.session.events import EVENTS_FILE
from copilot.ui.app import CopilotApp
from copilot.ui.screens.modals import GuardModal, MessageModal
from tests.support.fixture_track import FixtureTrack
from tests.support.sshd import SshServer, require_sshd
from tests.support.ui import screen_text, wait_until
from tests.support.waiting import until

KEY = "sk-planted-0123456789abcdefghij"
TOKEN = "hf_planted_token_0987654321"

# A training script a model could have written: it looks for the key in its environment, then prints the
# planted literal on stdout and stderr and crashes carrying it.
PROBE = f'''import os, sys
PLANTED = {KEY!r}
print("env:", os.environ.get("OPENAI_API_KEY"), os.environ.get("HF_TOKEN"), flush=True)
print("step:1/2 train_loss:3.0000 train_time:10ms step_avg:10.00ms", flush=True)
print("stdout", PLANTED, flush=True)
print("stderr", PLANTED, file=sys.stderr, flush=True)
raise RuntimeError("crash carrying " + PLANTED)
'''


def leaks(*texts: str) -> list[str]:
    return [t[:200] for t in texts if KEY in t or TOKEN in t]


def run_files(session_dir: Path) -> list[str]:
    texts = [(session_dir / EVENTS_FILE).read_text()]
    texts += [p.read_text() for p in (session_dir / "runs").glob("*/result.json")]
    return texts


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("HF_TOKEN", TOKEN)


def _speedcopilot() -> str:
    return shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")


def test_the_console_script_keeps_the_key_out_of_the_run_and_its_records(tmp_path: Path, planted: None) -> None:
    from copilot.core.tracks.micro import MicroTrack
    from copilot.core.tracks.microdata import prepare_micro_data

    data_dir = tmp_path / "data"
    prepare_micro_data(data_dir, size="small")
    track = MicroTrack(data_dir=data_dir)
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))
    (session.workspace.path / track.script_name).write_text(PROBE)
    asyncio.run(session.commit_external_edit("probe for leaks"))
    session.close_now(reason="user")

    result = subprocess.run([_speedcopilot(), "run", "--session", "last", "--run-anyway", "--quiet",
                             "--session-dir", str(tmp_path / "sessions")], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "COLUMNS": "200", "SPEEDCOPILOT_DATA_DIR": str(data_dir)})
    assert result.returncode == 1 and "crashed" in result.stdout, result.stderr
    assert "crash carrying ***" in result.stdout  # the cause is shown, the key is not
    assert not leaks(result.stdout, result.stderr, *run_files(session.dir))
    (output,) = (session.dir / "runs").glob("*/output.log")
    assert "env: None None" in output.read_text()  # the process never had the key


async def test_a_log_tail_read_back_from_output_log_is_scrubbed(tmp_path: Path, planted: None) -> None:
    """output.log holds what the script printed, key and all; the pane that seeds its tail from that file (a
    run the app did not watch live) must show it scrubbed. Under load this was also a race in the app test
    below: the pane read the file before the first live line arrived and showed both."""
    track = FixtureTrack()
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0),
                             options=SessionOptions(secrets=(KEY,)))
    (session.workspace.path / track.script_name).write_text(PROBE)
    await session.commit_external_edit("probe for leaks")
    run = await session.start_run(override_guard=True)
    await until(lambda: not session.state.runs[run.run_id].is_live, "the run's end")
    (output,) = (session.dir / "runs").glob("*/output.log")
    assert KEY in output.read_text()  # the file has it: what the pane reads must be scrubbed
    app = CopilotApp(session)  # a new app: none of the run's lines reached it live
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.ui.logs.has(run.run_id), what="the tail read back from output.log")
        lines = app.ui.logs.lines(run.run_id)
        assert "env: None None" in lines and "stdout ***" in lines
        tail = app.screen.query_one("#log-tail", Log)  # the screen also shows the script, key and all
        await wait_until(pilot, lambda: "stdout ***" in tail.lines, what="the tail on screen")
        assert not leaks("\n".join(lines), "\n".join(tail.lines))
        await app.close_and_exit(False)


async def test_the_app_shows_the_guard_then_a_scrubbed_crash(tmp_path: Path, planted: None) -> None:
    track = FixtureTrack()
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0),
                             options=SessionOptions(secrets=(KEY,)))
    (session.workspace.path / track.script_name).write_text(PROBE)
    await session.commit_external_edit("probe for leaks")
    app = CopilotApp(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: "fixture #0" in screen_text(app), what="the session")
        await pilot.press("r")  # reading the key from the environment is a guard finding: asked first
        await wait_until(pilot, lambda: isinstance(app.screen, GuardModal), what="the guard's question")
        assert "environ" in screen_text(app) or "secret" in screen_text(app).lower()
        await pilot.press("r")  # run anyway
        await wait_until(pilot, lambda: isinstance(app.screen, MessageModal), what="the crash dialog")
        modal = app.screen
        assert isinstance(modal, MessageModal)
        dialog = modal.title_text + "\n" + modal.body  # the script pane behind it shows the script, key and all
        assert "crashed" in dialog and "crash carrying ***" in dialog
        (run,) = app.state.runs.values()
        lines = app.ui.logs.lines(run.run_id)
        assert "env: None None" in lines and "stdout ***" in lines
        assert not leaks(dialog, "\n".join(lines))
        await pilot.press("escape")
        await pilot.press("q")
        await wait_until(pilot, lambda: app.closed, what="the app closed")
    assert not leaks(*run_files(session.dir))
    overrides = [e for e in (session.dir / EVENTS_FILE).read_text().splitlines() if '"guard_override"' in e]
    assert len(overrides) == 1 and '"choice": "run"' in overrides[0].replace('":"', '": "')


async def test_a_remote_run_gets_no_key_and_its_output_is_scrubbed(tmp_path: Path, planted: None) -> None:
    from copilot.core.runs.ssh import SshRunner

    require_sshd()
    with SshServer.start(tmp_path / "ssh") as server:
        runner = SshRunner(server.url(tmp_path / "remote"), ssh_options=server.client_options, poll_s=0.1)
        track = FixtureTrack()
        session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0), runner=runner)
        try:
            (session.workspace.path / track.script_name).write_text(PROBE)
            await session.commit_external_edit("probe for leaks")
            lines: list[str] = []
            session.subscribe_lines(lambda _run, line: lines.append(line))
            run = await session.start_run(override_guard=True)
            result = await session.wait_run(run.run_id)
            assert result.outcome.value == "crashed"
            assert "env: None None" in lines and "stderr ***" in lines
            assert any("crash carrying ***" in line for line in result.error_tail)
            assert not leaks("\n".join(lines), *run_files(session.dir))
        finally:
            await session.close()
