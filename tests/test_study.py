"""Study files: loading, validation, Latin-square counterbalancing, progress from real session logs."""

from __future__ import annotations

from collections import Counter
from itertools import product
from pathlib import Path

import pytest

from copilot.core.errors import ConfigError
from copilot.core.session.events import read_events
from copilot.core.research.study import (
    Budgets,
    StudyTask,
    assignment,
    assignment_table,
    completed_positions,
    load_study,
    next_assignment,
    williams_square,
)
from tests.support.eventlog_builder import SessionBuilder

STUDY_TOML = """
name = "pilot-2026"
participants = ["P01", "P02", {id = "P03"}, "P04", "P05", "P06", "P07", "P08", "P09", "P10", "P11", "P12"]
modes = ["copilot", "auto"]

[[tasks]]
track = "micro"
record = 3
hint_levels = [2, 1]

[[tasks]]
track = "micro"
record = 4

[[tasks]]
track = "nanogpt"
record = 10

[budgets]
wall_time_s = 3600
runs = 10
cost_usd = 2.5

[budgets.auto]
nodes = 20
wall_time_s = 7200
"""


def write_study(tmp_path: Path, text: str = STUDY_TOML, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_study(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path))
    assert study.name == "pilot-2026" and study.design == "within"
    assert study.participants[:3] == ("P01", "P02", "P03") and len(study.participants) == 12
    assert study.modes == ("copilot", "auto")
    assert study.tasks[0] == StudyTask("micro", 3, (1, 2))
    assert study.tasks[1].hint_levels is None and study.tasks[2].label == "nanogpt 10→11"
    assert study.budgets == Budgets(wall_time_s=3600.0, runs=10, cost_usd=2.5)
    assert study.budgets_for("auto") == Budgets(wall_time_s=7200.0, runs=10, nodes=20, cost_usd=2.5)
    assert study.budgets_for("copilot").nodes is None
    assert len(study.digest) == 16
    assert load_study(write_study(tmp_path, STUDY_TOML + "\n# edit\n", "b.toml")).digest != study.digest


@pytest.mark.parametrize(
    "change, message",
    [
        (("modes = [\"copilot\", \"auto\"]", "modes = [\"copilot\", \"autp\"]"), "unknown mode 'autp'"),
        (("\"P02\", {id", "\"P01\", {id"), "repeated: P01"),
        (("name = \"pilot-2026\"", "name = \"\""), "set a study name"),
        (("record = 4", "record = 0"), "task 2 needs record"),
        (("record = 4", "record = 4\nrecrod = 5"), "unknown key"),
        (("hint_levels = [2, 1]", "hint_levels = [7]"), "hint_levels"),
        (("runs = 10", "runs = 10.5"), "whole number"),
        (("runs = 10", "runs = -1"), "positive"),
        (("cost_usd = 2.5", "gpu_hours = 2"), "unknown budget 'gpu_hours'"),
        (("[budgets.auto]", "[budgets.manual]"), "names no mode"),
        (("modes = [", "design = \"random\"\nmodes = ["), "design must be one of"),
        (("track = \"nanogpt\"\nrecord = 10", "track = \"micro\"\nrecord = 4"), "listed twice"),
        (("name = \"pilot-2026\"", "name = \"x\"\ncolour = 1"), "unknown key"),
        (("[[tasks]]", "[[tasks]"), "not valid TOML"),
    ],
)
def test_bad_study_files_name_the_problem(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = STUDY_TOML.replace(change[0], change[1], 1)
    assert text != STUDY_TOML
    with pytest.raises(ConfigError, match=message):
        load_study(write_study(tmp_path, text))


def test_missing_study_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read study file"):
        load_study(tmp_path / "nope.toml")


def test_williams_square_is_balanced() -> None:
    for n in range(1, 9):
        rows = williams_square(n)
        assert len(rows) == (2 * n if n % 2 and n > 1 else n)
        for row in rows:
            assert sorted(row) == list(range(n))
        for column in range(n):  # each symbol equally often in each column
            assert Counter(row[column] for row in rows) == Counter({s: len(rows) // n for s in range(n)})
        neighbours = Counter((row[i], row[i + 1]) for row in rows for i in range(n - 1))
        assert len(neighbours) == n * (n - 1)  # every ordered pair occurs ...
        assert len(set(neighbours.values())) <= 1  # ... equally often


def test_within_design_counterbalances(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path))
    table = assignment_table(study)
    # three tasks: an odd Williams square has 6 rows; with 2 modes a full cycle is 12 participants
    for plan in table.values():
        assert [a.position for a in plan] == [0, 1, 2] and all(a.total == 3 for a in plan)
        assert sorted((a.task.track, a.task.record) for a in plan) == [("micro", 3), ("micro", 4), ("nanogpt", 10)]
    pairs = Counter((a.task.record, a.mode) for plan in table.values() for a in plan)
    assert pairs == Counter({(r, m): 6 for r, m in product((3, 4, 10), ("copilot", "auto"))})
    mode_at_position = Counter((a.position, a.mode) for plan in table.values() for a in plan)
    assert set(mode_at_position.values()) == {6}
    task_at_position = Counter((a.position, a.task.record) for plan in table.values() for a in plan)
    assert set(task_at_position.values()) == {4}
    first_order = [a.task.record for a in table["P01"]]
    assert first_order == [3, 4, 10] and [a.mode for a in table["P01"]] == ["copilot", "auto", "copilot"]
    # P07 repeats P01's task order with the modes swapped
    assert [a.task.record for a in table["P07"]] == first_order
    assert [a.mode for a in table["P07"]] == ["auto", "copilot", "auto"]
    # budgets follow the mode
    assert all(a.budgets.nodes == (20 if a.mode == "auto" else None) for plan in table.values() for a in plan)


def test_two_tasks_two_modes_is_the_classic_abba(tmp_path: Path) -> None:
    text = STUDY_TOML.replace(
        '[[tasks]]\ntrack = "nanogpt"\nrecord = 10\n', ""
    ).replace('"P05", "P06", "P07", "P08", "P09", "P10", "P11", "P12"', "")
    text = text.replace('"P04", ]', '"P04"]')
    study = load_study(write_study(tmp_path, text))
    assert len(study.tasks) == 2 and len(study.participants) == 4
    plans = {p: [(a.task.record, a.mode) for a in assignment(study, p)] for p in study.participants}
    assert plans == {
        "P01": [(3, "copilot"), (4, "auto")],
        "P02": [(4, "copilot"), (3, "auto")],
        "P03": [(3, "auto"), (4, "copilot")],
        "P04": [(4, "auto"), (3, "copilot")],
    }


def test_crossed_design_runs_every_condition(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path, 'design = "crossed"\n' + STUDY_TOML))
    plan = assignment(study, "P02")
    assert len(plan) == 6
    assert sorted((a.task.record, a.mode) for a in plan) == sorted(product((3, 4, 10), ("copilot", "auto")))
    orders = {tuple((a.task.record, a.mode) for a in assignment(study, p)) for p in study.participants}
    assert len(orders) == 6  # six conditions, even: six distinct Williams rows


def test_unknown_participant(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path))
    with pytest.raises(ConfigError, match="'P99' is not in study 'pilot-2026'"):
        assignment(study, "P99")


def test_assignment_recorded_in_session_started_and_progress(tmp_path: Path) -> None:
    study = load_study(write_study(tmp_path))
    plan = assignment(study, "P03")
    sessions = tmp_path / "sessions"
    first = plan[0]
    b = SessionBuilder(sessions / "s1", mode=first.mode, track=first.task.track, record=first.task.record,
                       participant="P03", study=first.to_event(),
                       hint_levels=list(first.task.hint_levels or []))
    b.end()
    recorded = read_events(sessions / "s1" / "events.jsonl").events[0].get("study")
    assert recorded == {
        "name": "pilot-2026", "digest": study.digest, "design": "within", "participant": "P03",
        "participant_index": 2, "position": 0, "of": 3, "mode": first.mode, "track": first.task.track,
        "record": first.task.record,
        "hint_levels": list(first.task.hint_levels) if first.task.hint_levels else None,
        "budgets": first.budgets.to_dict(),
    }
    dirs = [sessions / "s1", tmp_path / "not-a-session"]
    assert completed_positions(study, "P03", dirs) == {0}
    assert completed_positions(study, "P01", dirs) == set()
    assert next_assignment(study, "P03", dirs) == plan[1]
    for i, a in enumerate(plan[1:], start=2):
        SessionBuilder(sessions / f"s{i}", participant="P03", study=a.to_event()).end()
    assert next_assignment(study, "P03", sorted(sessions.iterdir())) is None
