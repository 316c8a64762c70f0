"""Faults a user meets at the command line, through the console script: damaged logs in every reader, numbers
argparse must refuse, settings out of range, an archive folder that is not there, a script that prints no metric,
an agent whose every node fails, and the wording of provider errors."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from copilot.core.session.events import EVENTS_FILE, read_events
from tests.support.eventlog_builder import SessionBuilder
from tests.support.faults import cli, cli_env
from tests.support.reliability import record_case


def _env(tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "no-data")


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


# -- damaged logs: every reader keeps every valid event and says what is wrong -------------------------------


def _recorded(sessions: Path, name: str) -> Path:
    builder = SessionBuilder(sessions / name)
    sid = builder.suggestion(hunks=2)
    sha = builder.commit(sid)
    builder.decide(sid, 0, "accept", seconds=3.0)
    builder.decide(sid, 1, "reject", seconds=2.0)
    builder.run(sha, final_val_loss=1.27, time_to_target_ms=80_000)
    builder.note("after the run")
    builder.end()
    return sessions / name


def _damage(session_dir: Path, how: str) -> int:
    """Damage the log one way; returns how many valid events the file still holds."""
    path = session_dir / EVENTS_FILE
    lines = path.read_text().splitlines(keepends=True)
    if how == "torn":  # a writer killed mid-line: the last line is cut and has no newline
        lines[-1] = lines[-1][: len(lines[-1]) // 2]
        path.write_text("".join(lines))
        return len(lines) - 1
    if how == "reordered":  # a line whose seq is out of order, in the middle
        lines[3], lines[6] = lines[6], lines[3]
    elif how == "duplicated":
        lines.insert(5, lines[5])
    elif how == "no_session_started":
        lines = lines[1:]
    elif how == "malformed":  # the right type, a required field missing
        record = json.loads(lines[6])
        record.pop("run_id", None)
        lines[6] = json.dumps(record) + "\n"
    path.write_text("".join(lines))
    return len(lines)  # a malformed event is kept too (reported, and skipped by the folds)


PROBLEM_TEXT = {
    "torn": "torn last line",
    "reordered": "out of order",
    "duplicated": "duplicate seq",
    "no_session_started": "no session_started event",
    "malformed": "skipped by readers",
}


@pytest.mark.parametrize("how", list(PROBLEM_TEXT))
def test_every_reader_keeps_every_valid_event_of_a_damaged_log_and_warns(tmp_path: Path, how: str) -> None:
    sessions = tmp_path / "sessions"
    session_dir = _recorded(sessions, "20261201-100000-abcdef")
    total = len(read_events(session_dir / EVENTS_FILE).events)
    valid = _damage(session_dir, how)
    wanted = PROBLEM_TEXT[how]
    env, where = _env(tmp_path), ["--session-dir", str(sessions)]
    sid = session_dir.name
    outputs = {
        "sessions show": cli("sessions", "show", sid, "--events", *where, env=env),
        "sessions list": cli("sessions", "list", "--wide", *where, env=env),
        "replay": cli("replay", sid, "--headless", "--all-metrics", *where, env=env),
        "compare": cli("compare", "--all", *where, env=env),
        "sessions export": cli("sessions", "export", str(tmp_path / "out.tar.gz"), sid, *where, env=env),
    }
    for reader, result in outputs.items():
        assert result.returncode == 0, (reader, result.stdout, result.stderr)
        _no_traceback(result)
        assert wanted in result.stdout.replace("\n", " ") or (reader == "sessions list" and "log problem" in
                                                               result.stdout), (reader, result.stdout)
    # nothing dropped: replay plays, show lists and export archives every event the file still holds
    assert f"· {valid} events over" in outputs["replay"].stdout
    listed = [line for line in outputs["sessions show"].stdout.splitlines() if line[:5].strip().isdigit()]
    assert len(listed) == valid
    with tarfile.open(tmp_path / "out.tar.gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(EVENTS_FILE))
        archived = tar.extractfile(member).read().decode().splitlines()  # type: ignore[union-attr]
    assert len(archived) == valid
    record_case(f"reader: {how} log", events_checked=4 * valid, events_lost=max(0, valid - len(archived)),
                events_in_file=total)


# -- numbers argparse must refuse ----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["run", "--session", "x", "--timeout", "-5"], ["run", "--session", "x", "--timeout", "0"],
    ["run", "--session", "x", "--gpus", "0"], ["auto", "--nodes", "0"], ["auto", "--nodes", "-3"],
    ["auto", "--budget-minutes", "-1"], ["auto", "--budget-usd", "0"], ["auto", "--budget-tokens", "-10"],
    ["auto", "--budget-accel-seconds", "nan"], ["auto", "--seed", "-1"], ["auto", "--record", "-1"],
    ["start", "--gpus", "0"], ["replay", "x", "--speed", "0"], ["baseline", "--seeds", "0"],
])
def test_zero_and_negative_timeouts_budgets_and_counts_are_refused_by_argparse(tmp_path: Path,
                                                                               args: list[str]) -> None:
    result = cli(*args, "--session-dir", str(tmp_path / "sessions"), env=_env(tmp_path)) if args[0] not in (
        "baseline",) else cli(*args, env=_env(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"error: argument {args[-2]}" in last and ("must be" in last or "is not" in last), last
    _no_traceback(result)
    assert not (tmp_path / "sessions").exists()


@pytest.mark.parametrize(("variable", "value"), [("SPEEDCOPILOT_RUN_TIMEOUT_S", "-5"),
                                                 ("SPEEDCOPILOT_HANG_TIMEOUT_S", "0"),
                                                 ("SPEEDCOPILOT_REQUEST_DEADLINE_S", "-1"),
                                                 ("SPEEDCOPILOT_GPUS", "0")])
def test_settings_out_of_range_are_one_line(tmp_path: Path, variable: str, value: str) -> None:
    result = cli("sessions", "list", "--session-dir", str(tmp_path), env={**_env(tmp_path), variable: value})
    assert result.returncode == 1
    assert result.stderr.strip().startswith("speedcopilot: error: setting ") and "must be" in result.stderr
    _no_traceback(result)


def test_the_default_deadline_per_suggestion_is_at_most_three_minutes() -> None:
    from copilot.config import Settings
    from copilot.core.llm.providers import OpenAIProvider

    assert Settings().request_deadline_s <= 180
    assert OpenAIProvider(model="m", api_key="k").deadline_s <= 180


def test_exporting_to_a_folder_that_is_not_there_says_so(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    _recorded(sessions, "20261201-100000-abcdef")
    result = cli("sessions", "export", str(tmp_path / "no" / "such" / "out.tar.gz"), "--session-dir", str(sessions),
                 env=_env(tmp_path))
    assert result.returncode == 1
    assert "the folder" in result.stderr and "does not exist" in result.stderr and "mkdir -p" in result.stderr
    assert not (tmp_path / "no").exists()
    _no_traceback(result)


def test_a_list_of_a_folder_that_does_not_exist_yet_is_not_an_error(tmp_path: Path) -> None:
    result = cli("sessions", "list", "--session-dir", str(tmp_path / "none"), env=_env(tmp_path))
    assert result.returncode == 0 and "No sessions" in result.stdout


# -- outcomes -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from copilot.core.tracks.microdata import prepare_micro_data

    folder = tmp_path_factory.mktemp("micro-data")
    prepare_micro_data(folder, size="small")
    return folder


@pytest.mark.slow
def test_a_script_that_exits_0_without_a_metric_is_no_metric_and_a_failure(tmp_path: Path, data: Path) -> None:
    from copilot.core.llm.providers import OracleProvider
    from copilot.core.session import Session
    from copilot.core.tracks.micro import MicroTrack

    track = MicroTrack(data_dir=data)
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))
    session.close_now(reason="user")
    session.workspace.repo.close()
    script = session.workspace.path / "train_gpt.py"
    script.write_text('import sys\nprint("set up, then nothing")\nsys.exit(0)\n' + script.read_text())
    for git_args in (["add", "train_gpt.py"], ["commit", "-q", "-m", "exit before training"]):
        subprocess.run(["git", *git_args], cwd=session.workspace.path, check=True, capture_output=True)
    result = cli("run", "--session", session.id, "--quiet", "--run-anyway", "--session-dir",
                 str(tmp_path / "sessions"), env=cli_env(data))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no_metric" in result.stdout and "without printing a single metric line" in result.stdout
    assert "set up, then nothing" in result.stdout  # the last lines it did print
    finished = [e for e in read_events(session.dir / EVENTS_FILE).events if e.type == "run_finished"]
    assert [e.get("outcome") for e in finished] == ["no_metric"]


@pytest.mark.slow
def test_auto_exits_non_zero_and_says_why_when_no_node_succeeded(tmp_path: Path, data: Path) -> None:
    from tests.support.openai_server import OpenAIServer, answer

    with OpenAIServer() as server:  # a model whose every answer holds no edit: each node fails to parse
        server.script([answer("I would make it faster, but I will not say how.")] * 12)
        result = cli("auto", "--record", "0", "--track", "micro", "--provider", "openai", "--base-url",
                     server.base_url, "--model", "test[/]model", "--nodes", "2", "--session-dir",
                     str(tmp_path / "sessions"), env=cli_env(data, MICRO_MAX_STEPS="2"))
    _no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    # each failed node's error, whole: what happened and what to do, not cut at 100 characters
    whole = ("buggy, suggestion_failed: The model's answer could not be used after 3 attempts. Last problem: The "
             "model's answer holds no SEARCH/REPLACE blocks, no diff, no patch and no whole file, so there is "
             "nothing to apply. Answer with a short rationale and one or more blocks of this form (one block per "
             "change):")
    printed = " ".join(result.stdout.replace("│", " ").split())  # as the terminal wraps it
    assert printed.count(f"node 1 [draft] {whole}") >= 1 and printed.count(f"node 2 [improve] {whole}") >= 1, \
        result.stdout
    assert "test[/]model" in result.stdout.splitlines()[0]  # user text is printed as it is, never as markup
    line = next(line for line in result.stdout.splitlines() if line.startswith("auto: "))
    assert line.startswith("auto: no node succeeded (2 of 2 failed: 2 ") and "sessions show" in line, line


# -- provider wording ---------------------------------------------------------------------------------------


async def test_a_peer_closed_connection_is_not_called_unreachable() -> None:
    from copilot.core.errors import ProviderError
    from copilot.core.llm.providers import OpenAIProvider
    from tests.support.openai_server import OpenAIServer, truncated

    with OpenAIServer() as server:
        server.script([truncated("abcdefgh", after_chunks=2, abrupt=True)])
        provider = OpenAIProvider(model="m", api_key="sk-test-key", base_url=server.base_url, max_retries=0)
        with pytest.raises(ProviderError) as caught:
            await provider.complete([{"role": "user", "content": "hi"}], on_delta=lambda _: None)
    message = str(caught.value)
    assert "Cannot reach" not in message and "closed the connection" in message and "try again" in message


@pytest.mark.parametrize("stream", [True, False])
async def test_a_json_error_names_where_once(stream: bool) -> None:
    from copilot.core.errors import ProviderError
    from copilot.core.llm.providers import OpenAIProvider
    from tests.support.openai_server import OpenAIServer, raw, raw_sse

    with OpenAIServer() as server:
        server.script([raw_sse(['{"choices": [{"delta": {"content": "hi"']) if stream else raw('{"choices": [')])
        provider = OpenAIProvider(model="m", api_key="sk-test-key", base_url=server.base_url, max_retries=0,
                                  stream=stream)
        with pytest.raises(ProviderError) as caught:
            await provider.complete([{"role": "user", "content": "hi"}], on_delta=lambda _: None)
    message = str(caught.value)
    assert "not valid JSON" in message and "line 1, column" in message
    words = message.split()
    assert not any(a == b for a, b in zip(words, words[1:])), message  # no "at at"


async def test_one_deadline_bounds_a_whole_suggestion_with_its_edit_retries() -> None:
    from copilot.core.errors import ProviderError
    from copilot.core.llm.providers import OpenAIProvider
    from copilot.core.llm.suggest import request_suggestion
    from tests.support.openai_server import OpenAIServer, answer, stall

    with OpenAIServer() as server:
        # an answer that does not apply, then a server that hangs: the retry must not get a deadline of its own
        server.script([answer("no edit blocks here"), stall(60), stall(60)])
        provider = OpenAIProvider(model="m", api_key="sk-test-key", base_url=server.base_url, max_retries=0,
                                  deadline_s=2.0, timeout_s=60)
        with pytest.raises(ProviderError) as caught:
            await request_suggestion(provider, [{"role": "user", "content": "hi"}], {"train_gpt.py": "x = 1\n"},
                                     "train_gpt.py", max_retries=2)
    message = str(caught.value)
    assert "deadline for one suggestion" in message and "1 answer(s) came back, none usable" in message
    assert caught.value.completions and len(server.completions) == 2  # type: ignore[attr-defined]
