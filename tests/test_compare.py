"""compare: session rows from real event logs, FSR, bootstrap CIs, IQM, the t-test, filters and exports."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from copilot.core.research.compare import (
    CSV_COLUMNS,
    Baselines,
    bootstrap_ci,
    filter_rows,
    find_session_dirs,
    fsr,
    group_summaries,
    iqm,
    load_baselines,
    plot,
    read_events,
    regularized_incomplete_beta,
    runs_by_commit,
    significance,
    student_t_cdf,
    summarize_session,
    summarize_sessions,
    write_csv,
    write_json,
)
from copilot.core.errors import ConfigError
from tests.support.eventlog_builder import FakeClock, SessionBuilder


# ------------------------------------------------------------------------------------------------
# fixtures: a full co-pilot session and a small set of sessions
# ------------------------------------------------------------------------------------------------
def build_copilot_session(path: Path) -> SessionBuilder:
    """Hand-built session whose every number is computed by hand in test_summary_numbers."""
    clock = FakeClock(1000.0)
    b = SessionBuilder(path, mode="copilot", record=3, record_time_s=100.0, next_record_time_s=60.0,
                       hint_levels=[2, 1], participant="P01", clock=clock,
                       provider="openai", model="gpt-x", study={"name": "pilot"})
    s1 = b.suggestion(hunks=3, prompt_tokens=1000, completion_tokens=200, cost_usd=0.01)
    b.decide(s1, 0, "accept", seconds=4.0)
    b.decide(s1, 1, "edit", seconds=2.0, edited_replace="lr = 0.02\n")
    b.decide(s1, 2, "reject", seconds=6.0, feedback="no")
    sha_a = b.commit(s1, provenance="ai+human-edit", hunks_accepted=2)
    b.run(sha_a, final_val_loss=1.35, time_to_target_ms=None, wall_time_s=100.0, accelerator_seconds=100.0)
    b.failed_suggestion(prompt_tokens=500, completion_tokens=0, cost_usd=0.002)
    s3 = b.suggestion(hunks=1, prompt_tokens=1500, completion_tokens=300, cost_usd=0.02)
    b.decide(s3, 0, "accept", seconds=10.0)
    sha_b = b.commit(s3)
    for loss, ttt in ((1.280, 90_000), (1.281, 80_000), (1.279, 85_000)):
        b.run(sha_b, final_val_loss=loss, time_to_target_ms=ttt, wall_time_s=50.0, accelerator_seconds=50.0)
    b.end("user_quit")
    return b


def test_summary_numbers(tmp_path: Path) -> None:
    b = build_copilot_session(tmp_path / "sess-a")
    events = read_events(b.log.path).events
    row = summarize_session(tmp_path / "sess-a")

    assert row.problems == []
    assert (row.session_id, row.mode, row.track, row.task) == ("sess-a", "copilot", "micro", "micro 3→4")
    assert (row.provider, row.model, row.hints, row.participant, row.study) == ("openai", "gpt-x", "1+2", "P01", "pilot")
    assert row.best_time_to_target_s == pytest.approx(80.0)
    assert row.fsr == pytest.approx((100.0 - 80.0) / (100.0 - 60.0))  # 0.5
    assert (row.suggestions, row.suggestions_failed) == (2, 1)
    assert (row.hunks_accepted, row.hunks_edited, row.hunks_rejected) == (2, 1, 1)
    assert row.median_decision_time_s == pytest.approx(5.0)  # median of 2, 4, 6, 10
    assert (row.prompt_tokens, row.completion_tokens) == (3000, 500)
    assert row.cost_usd == pytest.approx(0.032)
    assert row.accelerator_seconds == pytest.approx(250.0)
    assert (row.runs, row.runs_finished, row.runs_reached) == (4, 4, 3)
    assert row.wall_time_s == pytest.approx(events[-1].t - events[0].t)
    assert row.wall_time_s > 0
    assert row.ended_reason == "user_quit"
    # commit B: losses 1.280, 1.281, 1.279 -> mean 1.28, sd 0.001, t = -0.02/(0.001/sqrt 3) = -34.64: a record
    assert row.significant_commits == 1
    assert row.best_significant_time_s == pytest.approx(85.0)
    # the curve holds improvements only: 90 s then 80 s
    assert [p[1] for p in row.best_time_curve] == [90.0, 80.0]


def test_runs_by_commit_tests_each_commit(tmp_path: Path) -> None:
    b = build_copilot_session(tmp_path / "s")
    groups = runs_by_commit(read_events(b.log.path).events)
    assert len(groups) == 2
    first, second = groups
    assert len(first.runs) == 1 and not first.is_record and first.significance.p_one_sided is None
    assert len(second.runs) == 3 and second.is_record
    assert second.mean_val_loss == pytest.approx(1.28)
    assert second.mean_time_to_target_s == pytest.approx(85.0)
    assert second.significance.t == pytest.approx(-0.02 / (0.001 / math.sqrt(3)), rel=1e-6)
    # df = 2 has a closed form: F(t) = 1/2 + t / (2 sqrt(2 + t^2))
    t = second.significance.t
    assert second.significance.p_one_sided == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), rel=1e-9)
    # a stricter target (mean must be below 1.279) fails the test for the same runs
    strict = runs_by_commit(read_events(b.log.path).events, target=1.279)
    assert not strict[1].is_record


# ------------------------------------------------------------------------------------------------
# FSR and baselines
# ------------------------------------------------------------------------------------------------
def test_fsr_hand_computed() -> None:
    assert fsr(100.0, 60.0, 80.0) == pytest.approx(0.5)
    assert fsr(100.0, 60.0, 60.0) == pytest.approx(1.0)
    assert fsr(100.0, 60.0, 50.0) == pytest.approx(1.25)  # faster than the human record: above 1
    assert fsr(100.0, 60.0, 120.0) == pytest.approx(-0.5)  # reached the target, but slower than the start
    assert fsr(100.0, 60.0, None) is None
    assert fsr(100.0, 60.0, None, fail_value=0.0) == 0.0
    assert fsr(None, 60.0, 80.0) is None
    assert fsr(60.0, 60.0, 50.0) is None  # no speedup to recover: undefined, even with a fail value
    assert fsr(60.0, 100.0, None, fail_value=0.0) is None
    # the paper's upstream example: record 20 (2.990 min) -> 21 (2.933 min), agent at 2.95 min
    assert fsr(179.4, 175.98, 177.0) == pytest.approx((179.4 - 177.0) / (179.4 - 175.98))


def test_baselines_toml_and_json_override_catalogue(tmp_path: Path) -> None:
    build_copilot_session(tmp_path / "s")
    toml_file = tmp_path / "baselines.toml"
    toml_file.write_text("[micro]\n3 = 200.0\n[micro.4]\ntime_s = 100.0\n", encoding="utf-8")
    baselines = load_baselines(toml_file)
    assert baselines.time("micro", 3) == 200.0 and baselines.time("nanogpt", 3) is None
    row = summarize_session(tmp_path / "s", baselines=baselines)
    assert (row.record_time_s, row.next_record_time_s) == (200.0, 100.0)
    assert row.fsr == pytest.approx((200.0 - 80.0) / (200.0 - 100.0))

    json_file = tmp_path / "baselines.json"
    json_file.write_text(json.dumps({"3": 120.0, "micro": {"4": 40.0}}), encoding="utf-8")
    baselines = load_baselines(json_file)
    assert baselines.time("nanogpt", 3) == 120.0  # a record without a track applies to every track
    row = summarize_session(tmp_path / "s", baselines=baselines)
    assert row.fsr == pytest.approx((120.0 - 80.0) / (120.0 - 40.0))
    assert row.baseline_source == "file"
    # a partial override is not mixed with the catalogue's times (other machine): both fall back, labelled
    row = summarize_session(tmp_path / "s", baselines=Baselines(by_track={"micro": {4: 50.0}}))
    assert (row.record_time_s, row.next_record_time_s) == (100.0, 60.0)
    assert row.baseline_source == "catalogue" and "no time for both records" in row.baseline_reason


@pytest.mark.parametrize(
    "text, message",
    [("[micro]\n3 = -1\n", "positive"), ("3 = 'fast'\n", "positive"), ("[micro]\nthree = 1.0\n", "record number"),
     ("not toml at all = = =\n", "not valid"), ("name = 4\n", "neither")],
)
def test_bad_baselines_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_baselines(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_baselines(tmp_path / "missing.toml")


# ------------------------------------------------------------------------------------------------
# the t-test
# ------------------------------------------------------------------------------------------------
def student_t4_cdf(t: float) -> float:
    """Closed form for 4 degrees of freedom (an independent check of the incomplete-beta route)."""
    u = t * t / 4.0
    return 0.5 + (3.0 / 8.0) * (t / math.sqrt(1 + u)) * (1 - u / (3 * (1 + u)))


def test_significance_hand_computed() -> None:
    # deviations from the mean 3.277 are -2, 0, 2, -1, 1 (×1e-3): sd = sqrt(10e-6 / 4) = 1.5811e-3
    result = significance([3.275, 3.277, 3.279, 3.276, 3.278], target=3.28)
    assert result.n == 5
    assert result.mean == pytest.approx(3.277)
    assert result.std == pytest.approx(math.sqrt(2.5e-6))
    assert result.t == pytest.approx(-3 * math.sqrt(2), rel=1e-6)  # -0.003 / (1.5811e-3 / sqrt 5)
    assert result.p_one_sided == pytest.approx(student_t4_cdf(result.t), rel=1e-9)
    # tabulated: t(0.99, 4) = 3.747 and t(0.995, 4) = 4.604, so 0.005 < p < 0.01
    assert 0.005 < result.p_one_sided < 0.01
    assert result.passes


def test_significance_edge_cases() -> None:
    assert not significance([3.27], 3.28).passes  # one run: no variance estimate
    assert significance([3.27], 3.28).p_one_sided is None
    assert significance([], 3.28).n == 0
    above = significance([3.29, 3.291, 3.289], 3.28)
    assert above.p_one_sided > 0.99 and not above.passes
    flat = significance([3.27, 3.27], 3.28)
    assert flat.passes and flat.p_one_sided == 0.0
    # noisy runs whose mean is below target but not significantly so (p about 0.04): not a record
    noisy = significance([1.28, 1.27, 1.29], 1.30)
    assert 0.01 < noisy.p_one_sided < 0.05 and not noisy.passes
    # upstream README: 80 runs of record 18 had mean 3.2791, sd 0.0019 -> t = -4.24, p ~ 3e-5
    rng = np.random.default_rng(1)
    raw = rng.normal(size=80)
    runs = 3.2791 + 0.0019 * (raw - raw.mean()) / raw.std(ddof=1)
    r18 = significance(runs.tolist(), 3.28)
    assert r18.t == pytest.approx(-0.0009 / (0.0019 / math.sqrt(80)), rel=1e-6)
    assert 1e-5 < r18.p_one_sided < 1e-4 and r18.passes


@pytest.mark.parametrize(
    "t, df, p",  # one-sided tail probabilities from a printed t table
    [(-2.764, 10, 0.01), (-3.747, 4, 0.01), (-2.457, 30, 0.01), (-1.812, 10, 0.05), (-63.657, 1, 0.005),
     (-2.326, 10_000, 0.01)],
)
def test_student_t_matches_table(t: float, df: int, p: float) -> None:
    assert student_t_cdf(t, df) == pytest.approx(p, rel=2e-3)
    assert student_t_cdf(-t, df) == pytest.approx(1 - student_t_cdf(t, df), abs=1e-12)


def test_student_t_closed_forms() -> None:
    for t in (-40.0, -3.0, -0.7, 0.0, 0.2, 5.0):
        assert student_t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
        assert student_t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)
        assert student_t_cdf(t, 4) == pytest.approx(student_t4_cdf(t), abs=1e-12)
    # I_x(1, 1) = x and I_x(a, 1) = x^a
    assert regularized_incomplete_beta(0.3, 1.0, 1.0) == pytest.approx(0.3)
    assert regularized_incomplete_beta(0.7, 2.5, 1.0) == pytest.approx(0.7**2.5)


# ------------------------------------------------------------------------------------------------
# IQM, bootstrap, groups
# ------------------------------------------------------------------------------------------------
def test_iqm_is_trim_mean_quarter() -> None:
    assert iqm([8, 1, 7, 2, 6, 3, 5, 4]) == pytest.approx(4.5)  # drop 2 each end: mean(3, 4, 5, 6)
    assert iqm([10, 0, 1, 2, 100]) == pytest.approx(13 / 3)  # n=5: sorted 0,1,2,10,100, drop 1 each end
    assert iqm([0.1, 0.2, 0.9]) == pytest.approx(0.4)  # n=3: floor(0.75) = 0, nothing dropped
    assert iqm([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 9.0, -9.0]) == pytest.approx(0.6)  # drop 2: mean(0,0,0,1,1)
    assert iqm([]) is None


def test_bootstrap_ci_equals_direct_numpy() -> None:
    values = [0.1, 0.5, 0.2, 0.9, 0.35, 0.0, 0.6]
    low, high = bootstrap_ci(values, "mean", resamples=10_000, seed=7)
    rng = np.random.default_rng(7)
    data = np.array(values)
    means = data[rng.integers(0, len(values), size=(10_000, len(values)))].mean(axis=1)
    assert (low, high) == (pytest.approx(np.percentile(means, 2.5)), pytest.approx(np.percentile(means, 97.5)))
    assert low < np.mean(values) < high
    # roughly the normal-theory interval: mean ± 1.96 sd/sqrt(n), with the bootstrap's slightly narrower sd
    half = 1.96 * np.std(values) / math.sqrt(len(values))
    assert high - low == pytest.approx(2 * half, rel=0.1)
    assert bootstrap_ci(values, "mean", seed=7) == bootstrap_ci(values, "mean", seed=7)
    assert bootstrap_ci(values, "mean", seed=7) != bootstrap_ci(values, "mean", seed=8)
    # IQM bootstrap: the same resamples, trimmed
    rng = np.random.default_rng(7)
    samples = np.sort(data[rng.integers(0, 7, size=(2000, 7))], axis=1)[:, 1:6].mean(axis=1)
    assert bootstrap_ci(values, "iqm", resamples=2000, seed=7) == (
        pytest.approx(np.percentile(samples, 2.5)), pytest.approx(np.percentile(samples, 97.5)))
    assert bootstrap_ci([], "mean") is None
    assert bootstrap_ci([0.3], "mean") == (pytest.approx(0.3), pytest.approx(0.3))


def make_study_sessions(root: Path) -> None:
    """micro 3→4 (100 s → 60 s): copilot reaches 80, 70, 90 s; auto reaches 96 s once and fails once.
    micro 4→5 (60 s → 40 s): one auto session reaching 50 s."""
    plan = [("c1", "copilot", 3, 80_000), ("c2", "copilot", 3, 70_000), ("c3", "copilot", 3, 90_000),
            ("a1", "auto", 3, 96_000), ("a2", "auto", 3, None), ("b1", "auto", 4, 50_000)]
    for name, mode, record, ttt in plan:
        times = (100.0, 60.0) if record == 3 else (60.0, 40.0)
        b = SessionBuilder(root / name, mode=mode, record=record, record_time_s=times[0],
                           next_record_time_s=times[1], participant=None if mode == "auto" else f"P{name}")
        sha = b.commit(None, provenance="human")
        b.run(sha, final_val_loss=1.29 if ttt else 1.33, time_to_target_ms=ttt)
        b.end()


def test_group_summaries(tmp_path: Path) -> None:
    make_study_sessions(tmp_path)
    rows = summarize_sessions(find_session_dirs(tmp_path))
    assert [r.session_id for r in rows] == ["a1", "a2", "b1", "c1", "c2", "c3"]
    groups = group_summaries(rows, resamples=2000, seed=3)
    by_key = {(g.key["task"], g.key["mode"]): g for g in groups}
    assert set(by_key) == {("micro 3→4", "auto"), ("micro 4→5", "auto"), ("micro 3→4", "copilot")}
    copilot = by_key[("micro 3→4", "copilot")]
    assert copilot.n == 3 and copilot.n_reached == 3
    assert sorted(copilot.fsr_values) == pytest.approx([0.25, 0.5, 0.75])
    assert copilot.fsr_mean == pytest.approx(0.5)
    assert copilot.fsr_iqm == pytest.approx(0.5)
    assert copilot.fsr_std == pytest.approx(0.25)
    assert (copilot.fsr_ci_low, copilot.fsr_ci_high) == bootstrap_ci([0.5, 0.75, 0.25], "mean", 2000, 3)
    assert copilot.best_time_median_s == pytest.approx(80.0)
    auto = by_key[("micro 3→4", "auto")]
    assert (auto.n, auto.n_reached, auto.n_scored) == (2, 1, 2)
    assert auto.fsr_mean == pytest.approx((0.1 + 0.0) / 2)  # the failed session counts as 0
    only_reached = {(g.key["task"], g.key["mode"]): g for g in group_summaries(rows, fail_value=None)}
    assert only_reached[("micro 3→4", "auto")].fsr_mean == pytest.approx(0.1)
    assert only_reached[("micro 3→4", "auto")].n_scored == 1
    by_mode = {g.key["mode"]: g for g in group_summaries(rows, by=("mode",), resamples=500)}
    assert by_mode["auto"].n == 3 and by_mode["auto"].fsr_mean == pytest.approx((0.1 + 0.0 + 0.5) / 3)
    with pytest.raises(ConfigError, match="cannot group by 'colour'"):
        group_summaries(rows, by=("colour",))


# ------------------------------------------------------------------------------------------------
# tolerance of bad logs
# ------------------------------------------------------------------------------------------------
def test_corrupt_lines_are_skipped_and_reported(tmp_path: Path) -> None:
    build_copilot_session(tmp_path / "s")
    log = tmp_path / "s" / "events.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(3, "{this is not json\n")
    lines.insert(6, "\x00\x00garbage\n")
    log.write_text("".join(lines) + '{"v":1,"seq":99,"t":5000.0,"type":"metr', encoding="utf-8")
    row = summarize_session(tmp_path / "s")
    assert len(row.problems) == 3
    assert any("torn" in p for p in row.problems)
    assert row.fsr == pytest.approx(0.5)  # everything readable still counts
    assert row.suggestions == 2


def test_wrong_field_types_never_crash(tmp_path: Path) -> None:
    sdir = tmp_path / "weird"
    sdir.mkdir()
    records = [
        {"seq": 1, "t": 10.0, "type": "session_started", "mode": "auto", "track": "micro", "record": "three",
         "hint_levels": "1", "record_time_s": "fast", "target_val_loss": None},
        {"seq": 2, "t": 11.0, "type": "suggestion_received", "prompt_tokens": "many", "cost_usd": [1]},
        {"seq": 3, "t": 12.0, "type": "hunk_decided", "decision": None, "decision_time_s": "slow"},
        {"seq": 4, "t": 13.0, "type": "run_finished", "run_id": 7, "reached_target": "yes",
         "time_to_target_ms": "abc", "final_val_loss": "NaN"},
        {"seq": 5, "t": 14.0, "type": "run_finished", "reached_target": True, "time_to_target_ms": 5000},
        {"seq": 6, "t": "late", "type": "note"},
        {"seq": 7, "t": 16.0, "type": "brand_new_event", "x": 1},
    ]
    (sdir / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    row = summarize_session(sdir)
    # an event of the wrong shape is reported with its line and skipped, never half-read
    assert row.mode is None and row.record is None and row.fsr is None
    assert row.suggestions == 0 and row.prompt_tokens == 0 and row.runs_finished == 0
    assert row.wall_time_s == pytest.approx(6.0)
    problems = "\n".join(row.problems)
    assert "line 1: session_started.record should be int" in problems
    assert "line 2: suggestion_received event without suggestion_id" in problems
    assert "line 4: run_finished event without outcome" in problems
    assert "line 5: run_finished event without run_id" in problems
    assert "line 6: unreadable" in problems and "brand_new_event" in problems


def test_missing_or_headless_logs(tmp_path: Path) -> None:
    row = summarize_session(tmp_path / "nothing-here")
    assert row.session_id == "nothing-here" and row.problems and "does not exist" in row.problems[0]
    (tmp_path / "headless").mkdir()
    (tmp_path / "headless" / "events.jsonl").write_text(
        json.dumps({"seq": 1, "t": 1.0, "type": "note", "text": "hi"}) + "\n", encoding="utf-8")
    row = summarize_session(tmp_path / "headless")
    assert row.mode is None and any("no session_started" in p for p in row.problems)
    assert group_summaries([row])[0].fsr_mean is None  # no defined speedup: left out, not counted as 0


# ------------------------------------------------------------------------------------------------
# filters and exports
# ------------------------------------------------------------------------------------------------
def test_filter_rows(tmp_path: Path) -> None:
    make_study_sessions(tmp_path)
    rows = summarize_sessions(find_session_dirs(tmp_path))
    ids = lambda where: [r.session_id for r in filter_rows(rows, where)]  # noqa: E731
    assert ids("mode=auto,track=micro") == ["a1", "a2", "b1"]
    assert ids("mode=auto,record=4") == ["b1"]
    assert ids("mode!=auto") == ["c1", "c2", "c3"]
    assert ids("fsr>=0.5") == ["b1", "c1", "c2"]
    assert ids("fsr<0.3") == ["a1", "c3"]  # a2 has no FSR: numeric conditions never match an empty value
    assert ids("best_time_to_target_s<85") == ["b1", "c1", "c2"]
    assert ids("participant=none") == ["a1", "a2", "b1"]
    assert ids("session_id=c1|c3") == ["c1", "c3"]
    assert ids("mode=AUTO") == ["a1", "a2", "b1"]
    assert ids("task=micro 4→5") == ["b1"]
    assert ids("") == [r.session_id for r in rows]
    with pytest.raises(ConfigError, match="unknown column 'colour'"):
        filter_rows(rows, "colour=red")
    with pytest.raises(ConfigError, match="not a condition"):
        filter_rows(rows, "auto")


def test_csv_and_json_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_study_sessions(tmp_path / "sessions")
    rows = summarize_sessions(find_session_dirs(tmp_path / "sessions"))
    write_csv(rows, tmp_path / "out" / "rows.csv")
    with open(tmp_path / "out" / "rows.csv", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0].keys()) == CSV_COLUMNS
    for column in ("session_id", "mode", "task", "fsr", "best_time_to_target_s", "cost_usd", "problems"):
        assert column in CSV_COLUMNS
    assert "best_time_curve" not in CSV_COLUMNS
    by_id = {r["session_id"]: r for r in table}
    assert float(by_id["c1"]["fsr"]) == pytest.approx(0.5)
    assert by_id["a2"]["fsr"] == "" and by_id["a2"]["problems"] == "0"
    assert by_id["c1"]["task"] == "micro 3→4"

    write_csv(rows[:1], "-")
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ",".join(CSV_COLUMNS) and out.splitlines()[1].startswith("a1,auto,micro")

    groups = group_summaries(rows, resamples=200)
    write_json(rows, groups, tmp_path / "out" / "all.json")
    document = json.loads((tmp_path / "out" / "all.json").read_text(encoding="utf-8"))
    assert [s["session_id"] for s in document["sessions"]] == ["a1", "a2", "b1", "c1", "c2", "c3"]
    assert document["sessions"][3]["fsr"] == pytest.approx(0.5)
    assert document["sessions"][1]["fsr"] is None
    assert {"key", "n", "fsr_mean", "fsr_ci_low", "fsr_ci_high", "fsr_iqm"} <= set(document["groups"][0])
    write_json(rows, None, "-")
    assert json.loads(capsys.readouterr().out)["groups"] == []


def test_plot_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    make_study_sessions(tmp_path / "sessions")
    rows = summarize_sessions(find_session_dirs(tmp_path / "sessions"))
    out = plot(rows, tmp_path / "fig" / "fsr.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_compare_shows_guard_blocks_overrides_and_a_best_time_from_an_overridden_commit(tmp_path: Path) -> None:
    from copilot.cli.compare import guard_cell
    from copilot.core.session import schema as s

    b = SessionBuilder(tmp_path / "sess-g", record_time_s=100.0, next_record_time_s=60.0)
    clean = b.commit()
    b.run(clean, final_val_loss=1.29, time_to_target_ms=90_000)
    noted = b.commit()
    b.emit(s.GuardReport(commit=noted, findings=[{"rule": "val.tokens", "severity": "note"}], blocking=False))
    b.run(noted, final_val_loss=1.29, time_to_target_ms=85_000)
    cheat = b.commit()
    b.emit(s.GuardReport(commit=cheat, findings=[{"rule": "val.bent", "severity": "block"}], blocking=True))
    b.emit(s.GuardOverride(commit=cheat, choice="run", rules=["val.bent"]))
    b.run(cheat, final_val_loss=1.0, time_to_target_ms=10_000)
    refused = b.commit()
    b.emit(s.GuardReport(commit=refused, findings=[{"rule": "timer.restart", "severity": "block"}], blocking=True))
    b.emit(s.GuardOverride(commit=refused, choice="back", rules=["timer.restart"]))
    b.end()
    row = summarize_session(tmp_path / "sess-g")
    assert (row.guard_blocked, row.guard_overrides, row.guard_noted) == (2, 1, 1)
    assert row.best_time_to_target_s == 10.0 and row.best_overridden
    assert guard_cell(row) == "best overridden! 2 blocked, 1 run; 1 noted"
