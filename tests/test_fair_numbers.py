"""Fair numbers: same-machine baselines (store, fingerprints, selection, fallbacks, labels), FSR by hand, the live
target from a real micro run, the shipped examples' comparison, and tables that fit 80 and 200 columns.

Real parts: the micro track's own record scripts train (tiny settings: a few steps, target 5.0 so that two
steps reach it), the `speedcopilot` console script runs as a subprocess, sessions are real git workspaces.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from copilot.core.errors import ConfigError
from copilot.core.llm.providers import OracleProvider
from copilot.core.research import baselines as b
from copilot.core.research.compare import explain_session, summarize_session
from copilot.core.session import Session, load_state
from copilot.core.session import schema as s
from copilot.core.session.events import EVENTS_FILE, read_events
from copilot.ui.panes.header import status_text
from copilot.ui.widgets.run_table import run_row
from tests.support.eventlog_builder import FakeClock, SessionBuilder
from tests.support.fixture_track import FixtureTrack

REPO = Path(__file__).resolve().parents[1]
EXE = shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")
TINY = {"MICRO_MAX_STEPS": "4", "MICRO_VAL_EVERY": "2", "MICRO_VAL_WINDOWS": "2"}
TINY_TARGET = 5.0  # the tiny micro runs cross it at their second step


def cli(*args: str, env: dict[str, str] | None = None, columns: int = 200, timeout: float = 300,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    full.update({"COLUMNS": str(columns), **(env or {})})
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=full, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def micro_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from copilot.core.tracks.microdata import prepare_micro_data

    data = tmp_path_factory.mktemp("micro-data")
    prepare_micro_data(data, size="small")
    return data


def tiny_track(data: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from copilot.core.tracks.micro import MicroTrack

    for key, value in TINY.items():
        monkeypatch.setenv(key, value)
    track = MicroTrack(data_dir=data)
    track.target_val_loss = TINY_TARGET
    return track


# --------------------------------------------------------------------------------------------------
# Speed-ups in words, noise, FSR by hand
# --------------------------------------------------------------------------------------------------
def test_speedups_read_as_faster_or_slower() -> None:
    assert b.speedup_text(17.0, 10.0) == "1.7× faster"
    assert b.speedup_text(10.0, 13.0) == "1.3× slower"
    assert b.speedup_text(100.0, 8.0) == "12× faster"
    assert b.speedup_text(10.0, 9.8) == "1.02× faster"  # not "1.0× faster"
    assert b.speedup_text(10.0, 10.01) == "same as record"
    assert b.speedup_text(None, 3.0) == b.speedup_text(10.0, None) == "—"


def test_pooled_noise_and_the_within_noise_rule_by_hand() -> None:
    # record times 20, 22, 24 (variance 4) and 10, 11, 12 (variance 1): pooled σ = sqrt((2·4 + 2·1) / 4)
    sigma = b.pooled_std([[20.0, 22.0, 24.0], [10.0, 11.0, 12.0]])
    assert sigma == pytest.approx((10.0 / 4) ** 0.5)
    assert b.pooled_std([[5.0], []]) is None  # one seed: no estimate
    far = b.noise_verdict(22.0, 11.0, 12.0, sigma)
    assert far.within_noise is False and far.text() == "beyond noise"
    assert far.fsr_half_width == pytest.approx(2 * sigma / 11.0)
    near = b.noise_verdict(22.0, 11.0, 22.0 - 2 * sigma + 0.01, sigma)
    assert near.within_noise is True and near.text() == "within noise"
    assert b.noise_verdict(22.0, 11.0, 12.0, None).within_noise is None


def _same_machine_fields(**overrides: object) -> dict:
    fields = dict(source=b.SAME_MACHINE, record=3, next_record=4, record_time_s=50.0, next_record_time_s=30.0,
                  seeds=3, noise_s=1.5, fingerprint_key="abc123def456")
    fields.update(overrides)
    return fields


def test_fsr_uses_the_sessions_same_machine_baseline_by_hand(tmp_path: Path) -> None:
    # catalogue 100 s → 60 s (another machine); the session measured 50 s → 30 s here; best run 35 s
    builder = SessionBuilder(tmp_path / "here", record=3, record_time_s=100.0, next_record_time_s=60.0)
    builder.emit(s.BaselineChosen(**_same_machine_fields()))
    sha = builder.commit(builder.suggestion(hunks=1))
    builder.run(sha, final_val_loss=1.2, time_to_target_ms=35_000)
    builder.end()
    row = summarize_session(tmp_path / "here")
    assert (row.record_time_s, row.next_record_time_s, row.baseline_source) == (50.0, 30.0, "same_machine")
    assert row.fsr == pytest.approx((50.0 - 35.0) / (50.0 - 30.0))  # 0.75
    assert row.speedup == "1.4× faster" and row.noise_s == 1.5
    assert row.within_noise is False and row.fsr_noise == pytest.approx(2 * 1.5 / 20.0)
    lines = "\n".join(explain_session(row))
    assert "FSR = (t_i − t′) / (t_i − t_{i+1})" in lines and "2506.22419" in lines
    assert "t_i     = 50.00 s  record 3 (same machine)" in lines
    assert "t_{i+1} = 30.00 s  record 4 (same machine)" in lines
    assert "FSR = (50.00 − 35.00) / (50.00 − 30.00) = 15.00 / 20.00 = 0.750" in lines
    assert "beyond noise" in lines

    # the same session without a same-machine baseline: the catalogue's times, and it says so
    fallback = SessionBuilder(tmp_path / "there", record=3, record_time_s=100.0, next_record_time_s=60.0)
    fallback.emit(s.BaselineChosen(source=b.CATALOGUE, record=3, next_record=4, record_time_s=100.0,
                                   next_record_time_s=60.0, reason="no baseline of record 3 and 4 measured"))
    fallback.run(fallback.commit(fallback.suggestion(hunks=1)), final_val_loss=1.2, time_to_target_ms=35_000)
    fallback.end()
    row = summarize_session(tmp_path / "there")
    assert row.baseline_source == "catalogue" and row.fsr == pytest.approx((100 - 35) / (100 - 60))
    assert row.within_noise is None and "no baseline of record 3" in row.baseline_reason
    text = "\n".join(explain_session(row))
    assert "catalogue time, other machine (no baseline of record 3 and 4 measured)" in text


# --------------------------------------------------------------------------------------------------
# Fingerprints, the store, selection and its fallbacks
# --------------------------------------------------------------------------------------------------
FP = b.Fingerprint(cpu="AMD EPYC 9B14", cpu_count=2, gpu=None, gpu_count=0, torch="2.13.0",
                   threads={"OMP_NUM_THREADS": "2"}, runner_url="local")
COND = b.Conditions(track="micro", target_val_loss=1.6, knobs={}, data="full")


def _measurement(record: int, times: list[float | None], fp: b.Fingerprint = FP, cond: b.Conditions = COND,
                 at: float = 1000.0) -> b.Measurement:
    runs = [b.BaselineRun(seed=i, time_s=t, outcome="reached_target" if t else "above_target")
            for i, t in enumerate(times)]
    return b.Measurement(id=f"b-{record}-{at}", record=record, conditions=cond, fingerprint=fp, runs=runs,
                         measured_at=at)


def test_fingerprint_keys_tell_machines_and_settings_apart() -> None:
    assert FP.key() == b.Fingerprint.from_dict(json.loads(json.dumps(FP.to_dict()))).key()
    variants = [replace(FP, cpu="Intel Xeon"), replace(FP, cpu_count=16), replace(FP, gpu="H100", gpu_count=8),
                replace(FP, torch="2.5.1"), replace(FP, threads={"OMP_NUM_THREADS": "8"}),
                replace(FP, runner_url="ssh://box/x"), replace(FP, gpus_per_run=8)]
    assert len({v.key() for v in variants} | {FP.key()}) == len(variants) + 1
    assert "AMD EPYC 9B14 ×2" in FP.describe() and "torch 2.13.0" in FP.describe()


def test_this_machines_fingerprint_and_a_remote_runners(micro_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    track = tiny_track(micro_data, monkeypatch)
    here = b.fingerprint(track, gpu_probe=lambda: [])
    assert here.cpu_count == len(os.sched_getaffinity(0)) and here.torch is not None
    assert here.threads["OMP_NUM_THREADS"] == "2"  # the micro track's own thread setting, as its runs see it
    remote = b.fingerprint(track, "ssh://gpu-box/runs")
    assert remote.cpu is None and remote.torch is None and remote.key() != here.key()  # never stands in
    cond = b.conditions(track)
    assert cond.knobs == TINY and cond.data == "small" and cond.target_val_loss == TINY_TARGET
    monkeypatch.setenv("MICRO_SEED", "7")  # seeds are what a baseline varies, not a setting
    assert b.conditions(track) == cond


def test_store_keeps_measurements_per_fingerprint_and_conditions(tmp_path: Path) -> None:
    store = b.BaselineStore(tmp_path / "data" / "baselines.json")
    assert store.load() == []
    store.add([_measurement(3, [50.0, 52.0]), _measurement(4, [30.0, 31.0])])
    store.add([_measurement(3, [40.0, 41.0], at=2000.0)])  # measured again later: the latest wins
    assert store.find(FP, COND, 3).mean_s == pytest.approx(40.5)
    assert store.find(FP, COND, 4).std_s == pytest.approx(0.7071, abs=1e-4)
    assert store.find(replace(FP, cpu_count=4), COND, 3) is None
    assert store.find(FP, replace(COND, target_val_loss=1.5), 3) is None
    assert store.find(FP, replace(COND, knobs={"MICRO_MAX_STEPS": "8"}), 3) is None
    assert len(json.loads(store.path.read_text())["measurements"]) == 3
    assert not list(store.path.parent.glob(".baselines-*"))  # no temporary file left behind


def test_a_damaged_store_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "baselines.json"
    path.write_text("{not json", encoding="utf-8")
    store = b.BaselineStore(path)
    with pytest.raises(ConfigError, match="damaged.*move it aside"):
        store.load()
    with pytest.raises(ConfigError):
        store.add([_measurement(3, [1.0])])
    assert path.read_text(encoding="utf-8") == "{not json"


def test_selection_uses_same_machine_times_or_says_why_not(tmp_path: Path) -> None:
    store = b.BaselineStore(tmp_path / "baselines.json")

    def pick(fp: b.Fingerprint = FP, cond: b.Conditions = COND, record: int = 3, following: int | None = 4):
        return b.select_baseline(store, fp, cond, record, following, 100.0, 60.0)

    empty = pick()
    assert empty.source == "catalogue" and (empty.record_time_s, empty.next_record_time_s) == (100.0, 60.0)
    assert "no baseline of record 3 and 4 measured on this machine" in empty.reason
    assert "speedcopilot baseline --record 3" in empty.reason and empty.label == "catalogue time, other machine"

    store.add([_measurement(3, [50.0, 54.0, 52.0]), _measurement(4, [30.0, 32.0, 31.0])])
    chosen = pick()
    assert chosen.same_machine and chosen.label == "same machine"
    assert (chosen.record_time_s, chosen.next_record_time_s, chosen.seeds) == (52.0, 31.0, 3)
    assert chosen.noise_s == pytest.approx(((2 * 4.0 + 2 * 1.0) / 4) ** 0.5)
    assert chosen.fingerprint_key == FP.key() and len(chosen.measurement_ids) == 2

    other_machine = pick(fp=replace(FP, cpu="Intel Xeon"))
    assert other_machine.source == "catalogue" and "on another machine only (AMD EPYC 9B14" in other_machine.reason
    other_settings = pick(cond=replace(COND, knobs={"MICRO_MAX_STEPS": "8"}))
    assert "on this machine only under other settings" in other_settings.reason
    store.add([_measurement(5, [None, None]), _measurement(4, [31.0], at=3000.0)])
    assert "record 5 never reached the target" in pick(record=4, following=5).reason
    assert "last of its track" in pick(record=6, following=None).reason
    # never a mix: one record measured here and the other from the catalogue
    assert pick(record=4, following=6).source == "catalogue"


def test_a_session_records_its_baseline_and_the_screen_labels_it(tmp_path: Path) -> None:
    track = FixtureTrack()
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0),
                             baseline=_same_machine_fields(record=0, next_record=1, record_time_s=0.5,
                                                           next_record_time_s=0.25))
    session.close_now(reason="user")
    events = read_events(session.dir / EVENTS_FILE).events
    assert [e.type for e in events[:2]] == ["session_started", "baseline_chosen"]
    state, _ = load_state(session.dir)
    assert state.baseline_times() == (0.5, 0.25, True)
    assert state.record_time_s == 0.23  # the catalogue's time stays what it was

    run = s.RunStarted(run_id="r-20261201-100000-ab12", commit="a" * 40)
    done = s.RunFinished(run_id=run.run_id, outcome="reached_target", reached_target=True, time_to_target_ms=250.0)
    from copilot.core.session.events import Event

    for seq, body in enumerate((run, done), start=len(events) + 1):
        state.apply(Event.of(seq, 2000.0 + seq, body))
    record_s, _, same = state.baseline_times()
    row = run_row(state.runs[run.run_id], record_s, "same machine" if same else "catalogue")
    assert row[7] == "2.0× faster"  # against 0.5 s measured here, no mark
    catalogue = run_row(state.runs[run.run_id], state.record_time_s, "catalogue")
    assert catalogue[7] == "1.1× slower (cat.)"  # against the catalogue's 0.23 s, marked
    state.apply(Event.of(99, 3000.0, s.BaselineChosen(source="catalogue", record_time_s=0.23,
                                                      next_record_time_s=0.12, reason="other machine")))
    assert state.baseline_times() == (0.23, 0.12, False)  # the latest choice counts


def test_the_target_setting_reaches_the_track_and_a_resumed_session_keeps_its_target(
        tmp_path: Path, micro_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.cli._common import build_track
    from copilot.config import load_settings

    settings = load_settings(env={"SPEEDCOPILOT_TARGET": "4.25", "SPEEDCOPILOT_DATA_DIR": str(micro_data)})
    track = build_track(settings, "micro")
    assert track.target_val_loss == 4.25
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))
    session.close_now(reason="user")
    fresh = build_track(load_settings(env={"SPEEDCOPILOT_DATA_DIR": str(micro_data)}), "micro")
    assert fresh.target_val_loss == 1.6
    reopened = Session.open(tmp_path / "sessions", session.id, fresh, OracleProvider(fresh, 0))
    try:
        assert fresh.target_val_loss == 4.25  # its runs are judged against the target it started with
    finally:
        reopened.close_now(reason="user")
    with pytest.raises(ConfigError, match="stop_at_target"):
        load_settings(env={"SPEEDCOPILOT_STOP_AT_TARGET": "maybe"})
    assert load_settings(env={"SPEEDCOPILOT_STOP_AT_TARGET": "yes"}).stop_at_target is True


# --------------------------------------------------------------------------------------------------
# The live target, from a real micro run
# --------------------------------------------------------------------------------------------------
async def test_the_target_is_seen_live_on_a_real_micro_run(tmp_path: Path, micro_data: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    track = tiny_track(micro_data, monkeypatch)
    monkeypatch.setenv("MICRO_MAX_STEPS", "6")  # the run goes on for two validations after the crossing
    session = Session.create(tmp_path / "sessions", track, 1, OracleProvider(track, 1))
    seen: list[tuple[str, bool, bool, tuple[str, ...], str]] = []

    def on_event(event) -> None:  # type: ignore[no-untyped-def]
        if event.type == "target_reached":
            run = session.state.runs[event.body.run_id]
            seen.append((event.type, run.is_live, run.reached_target, run_row(run, 60.0),
                         status_text(session.state, len(session.state.live_runs)).plain))

    session.subscribe(on_event)
    try:
        view = await session.start_run(stop_at_target=False)
        result = await session.wait_run(view.run_id)
        stopped = await session.start_run(stop_at_target=True)
        stopped_result = await session.wait_run(stopped.run_id)
    finally:
        await session.close()
    events = read_events(session.dir / EVENTS_FILE).events
    mine = [e for e in events if e.get("run_id") == view.run_id]
    kinds = [e.type for e in mine]
    crossing = kinds.index("target_reached")
    assert crossing < kinds.index("run_finished")
    assert any(e.type == "metric" and e.get("val_loss") is not None for e in mine[crossing:])  # it trained on
    target = mine[crossing].body
    assert target.step == 2 and target.val_loss <= TINY_TARGET
    first_val = next(e for e in mine if e.type == "metric" and e.get("step") == 2 and e.get("val_loss") is not None)
    assert target.time_to_target_ms == first_val.get("train_time_ms")  # time to target from the crossing line
    (_, live, reached, row, header) = seen[0]
    assert live and reached and row[2] == "running ✓" and row[6].endswith("✓")
    assert f"best {target.time_to_target_ms / 1000:.1f}s" in header
    assert result.reached_target and result.time_to_target_ms == target.time_to_target_ms
    assert stopped_result.outcome.value == "reached_target" and stopped_result.stopped_at_target
    after = [e for e in events if e.get("run_id") == stopped.run_id and e.type == "metric" and e.get("step", 0) > 2]
    assert after == []  # nothing trained past the crossing counts


# --------------------------------------------------------------------------------------------------
# `speedcopilot baseline`, end to end: real runs, the store, a new session using it
# --------------------------------------------------------------------------------------------------
def test_baseline_command_measures_stores_and_new_sessions_use_it(tmp_path: Path, micro_data: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store_path = tmp_path / "store" / "baselines.json"
    env = {"SPEEDCOPILOT_DATA_DIR": str(micro_data), "SPEEDCOPILOT_BASELINES": str(store_path),
           "SPEEDCOPILOT_TARGET": str(TINY_TARGET), **TINY}
    bad = cli("baseline", "--track", "micro", env=env)
    assert bad.returncode == 1 and "speedcopilot baseline --record N" in bad.stderr and "Traceback" not in bad.stderr
    result = cli("baseline", "--record", "0", "--track", "micro", "--seeds", "2", "--json", env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    order = [line.split(":")[0].strip() for line in result.stderr.splitlines() if "· seed" in line]
    assert order == ["record 0 · seed 0", "record 1 · seed 0", "record 0 · seed 1", "record 1 · seed 1"]
    first, second = report["measurements"]
    assert (first["record"], second["record"]) == (0, 1)
    assert all(r["outcome"] == "reached_target" and r["time_s"] > 0 for m in (first, second) for r in m["runs"])
    assert first["conditions"]["knobs"] == TINY and first["conditions"]["target_val_loss"] == TINY_TARGET
    assert report["baseline"]["source"] == "same_machine" and report["baseline"]["noise_s"] is not None
    assert len(json.loads(store_path.read_text())["measurements"]) == 2

    listed = cli("baseline", "--list", "--track", "micro", env=env, columns=80)
    assert listed.returncode == 0 and "yes" in listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80

    # a new session on this machine under these settings records it...
    from copilot.cli.start import baseline_for
    from copilot.config import load_settings
    from copilot.cli._common import build_track

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    track = build_track(settings, "micro")
    chosen = baseline_for(settings, track, 0)
    assert chosen["source"] == "same_machine"
    assert chosen["record_time_s"] == pytest.approx(first["mean_s"])
    assert chosen["next_record_time_s"] == pytest.approx(second["mean_s"])
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0), baseline=chosen)
    session.close_now(reason="user")
    compared = cli("compare", "--all", "--session-dir", str(tmp_path / "sessions"), "--explain", env=env)
    assert compared.returncode == 0, compared.stderr
    assert "baselines: 1 same machine" in compared.stdout
    assert f"t_i     = {first['mean_s']:.2f} s  record 0 (same machine)" in compared.stdout
    # ...and with other settings it falls back to the catalogue, saying why
    monkeypatch.setenv("MICRO_MAX_STEPS", "6")
    other = baseline_for(settings, build_track(settings, "micro"), 0)
    assert other["source"] == "catalogue" and "under other settings" in other["reason"]


def test_baseline_command_refuses_bad_input_in_one_line(tmp_path: Path, micro_data: Path) -> None:
    damaged = tmp_path / "damaged.json"
    damaged.write_text("{oops", encoding="utf-8")
    env = {"SPEEDCOPILOT_DATA_DIR": str(micro_data), "SPEEDCOPILOT_BASELINES": str(tmp_path / "b.json")}
    cases = [(["--record", "6"], env, "last of the micro track"),
             (["--record", "99"], env, "no record 99"),
             (["--record", "2"], {**env, "SPEEDCOPILOT_BASELINES": str(damaged)}, "is damaged")]
    for args, case_env, message in cases:
        result = cli("baseline", "--track", "micro", *args, env=case_env)
        assert result.returncode == 1 and message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    # a count below 1 is a usage error, refused by argparse before anything runs (exit 2, its last line says why)
    usage = cli("baseline", "--track", "micro", "--record", "2", "--seeds", "0", env=env)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    assert usage.stderr.splitlines()[-1] == "speedcopilot baseline: error: argument --seeds: must be 1 or more, got 0"
    assert damaged.read_text(encoding="utf-8") == "{oops" and not (tmp_path / "b.json").exists()
    assert not (tmp_path / "baseline-runs").exists()  # nothing started


# --------------------------------------------------------------------------------------------------
# The shipped examples, as a fresh clone shows them
# --------------------------------------------------------------------------------------------------
@pytest.fixture()
def examples_copy(tmp_path: Path) -> Path:
    """The tracked example files alone, in a folder of their own (nothing else of this checkout or machine)."""
    tracked = subprocess.run(["git", "ls-files", "sessions/examples"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked, "no example sessions are tracked"
    for name in tracked:
        target = tmp_path / "clone" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, target)
    return tmp_path / "clone" / "sessions" / "examples"


def test_the_examples_compare_with_numbers_from_a_fresh_copy(examples_copy: Path, tmp_path: Path) -> None:
    result = cli("compare", "--all", "--session-dir", str(examples_copy), "--json", "-", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    rows = {r["mode"]: r for r in document["sessions"]}
    assert set(rows) == {"copilot", "auto"}
    for row in rows.values():
        assert row["runs_reached"] >= 1 and isinstance(row["fsr"], float)
        assert row["baseline_source"] == "same_machine" and row["baseline_seeds"] >= 2 and row["noise_s"] > 0
        assert row["problems"] == []
    for group in document["groups"]:
        for key in ("fsr_mean", "fsr_ci_low", "fsr_ci_high", "fsr_iqm"):
            assert isinstance(group[key], float), key
    text = cli("compare", "--all", "--session-dir", str(examples_copy), "--explain", columns=80, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "baselines: 2 same machine" in text.stdout and "IQM" in text.stdout
    assert "catalogue" not in text.stdout.split("How FSR is computed")[0]
    for mode in ("auto", "copilot"):
        assert f"{rows[mode]['fsr']:.2f}" in text.stdout


def test_sessions_show_gives_the_times_the_session_compares_against_and_where_they_come_from(
        examples_copy: Path, tmp_path: Path) -> None:
    chosen = load_state(examples_copy / "auto-greedy")[0].baseline
    shown = cli("sessions", "show", "auto-greedy", "--session-dir", str(examples_copy), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    line = " ".join(shown.stdout.split())
    assert f"record time {chosen['record_time_s']:.1f} s" in line and "(same machine)" in line
    assert f"next record {chosen['next_record_time_s']:.1f} s" in line
    track = FixtureTrack()
    session = Session.create(tmp_path / "plain", track, 0, OracleProvider(track, 0))  # no baseline chosen
    session.close_now(reason="user")
    plain_show = cli("sessions", "show", session.id, "--session-dir", str(tmp_path / "plain"), cwd=tmp_path)
    assert "(catalogue time, other machine)" in " ".join(plain_show.stdout.split())


# --------------------------------------------------------------------------------------------------
# Tables that fit the terminal
# --------------------------------------------------------------------------------------------------
def _headers(output: str) -> str:
    return "\n".join(line for line in output.splitlines() if line.startswith("┃"))


def test_tables_fit_80_columns_and_grow_at_200(examples_copy: Path, tmp_path: Path) -> None:
    commands = {
        "compare": (["compare", "--all", "--session-dir", str(examples_copy)], ["FSR", "IQM", "vs record"],
                    ["provider/model", "tokens", "baseline"]),
        "sessions": (["sessions", "list", "--session-dir", str(examples_copy)], ["id", "mode", "best to target"],
                     ["started", "provider", "baseline"]),
        "records": (["records", "list", "--track", "micro"], ["#", "time", "name / description"], ["date", "code"]),
    }
    for name, (args, always, wide_only) in commands.items():
        narrow = cli(*args, columns=80, cwd=tmp_path)
        assert narrow.returncode == 0, narrow.stderr
        assert max(len(line) for line in narrow.stdout.splitlines()) <= 80, name
        heads = _headers(narrow.stdout)
        assert all(h in heads for h in always), (name, heads)
        assert not any(f" {h} " in heads for h in wide_only), (name, heads)
        broad = cli(*args, columns=200, cwd=tmp_path)
        assert max(len(line) for line in broad.stdout.splitlines()) <= 200, name
        assert all(f" {h} " in _headers(broad.stdout) for h in wide_only), (name, _headers(broad.stdout))
        everything = cli(*args, "--wide", columns=80, cwd=tmp_path)
        assert everything.returncode == 0 and all(h in _headers(everything.stdout) for h in wide_only), name
    sessions = cli("sessions", "list", "--session-dir", str(examples_copy), columns=80, cwd=tmp_path).stdout
    assert "copilot-oracle" in sessions and "auto-greedy" in sessions
    # CSV and JSON do not depend on the terminal
    csv_80 = cli("compare", "--all", "--session-dir", str(examples_copy), "--csv", "-", columns=80, cwd=tmp_path)
    csv_200 = cli("compare", "--all", "--session-dir", str(examples_copy), "--csv", "-", columns=200, cwd=tmp_path)
    assert csv_80.stdout == csv_200.stdout and len(next(csv.reader(io.StringIO(csv_80.stdout)))) > 30


def test_short_session_ids_resolve_as_suffixes(tmp_path: Path) -> None:
    from copilot.cli._common import short_session_id
    from copilot.core.session import resolve_session_dir

    for name in ("20261201-103348-2e52cc", "20261201-110000-91ab0f"):
        (tmp_path / name).mkdir()
        (tmp_path / name / EVENTS_FILE).write_text("", encoding="utf-8")
    assert short_session_id("20261201-103348-2e52cc") == "2e52cc"
    assert short_session_id("copilot-oracle") == "copilot-oracle"
    assert resolve_session_dir(tmp_path, "2e52cc").name == "20261201-103348-2e52cc"
    assert resolve_session_dir(tmp_path, "20261201-11").name == "20261201-110000-91ab0f"  # prefixes still first


# --------------------------------------------------------------------------------------------------
# --repeat and --plot
# --------------------------------------------------------------------------------------------------
def test_repeat_shows_the_one_sided_t_test_per_commit(tmp_path: Path) -> None:
    builder = SessionBuilder(tmp_path / "sessions" / "rep", record=3, target_val_loss=1.30, clock=FakeClock(1000.0))
    sha = builder.commit(builder.suggestion(hunks=1))
    for loss in (1.280, 1.281, 1.279):  # mean 1.28, sd 0.001: t = −0.02 / (0.001/√3) = −34.6
        builder.run(sha, final_val_loss=loss, time_to_target_ms=80_000)
    once = builder.commit(builder.suggestion(hunks=1))
    builder.run(once, final_val_loss=1.20, time_to_target_ms=70_000)
    builder.end()
    result = cli("compare", "--all", "--session-dir", str(tmp_path / "sessions"), "--repeat", columns=120)
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("repeated runs:")[1]
    repeated, single = [line for line in section.splitlines() if "│ rep" in line]  # first-seen order
    assert "│    3 │" in repeated and "-34.64" in repeated and " yes " in repeated
    assert "│    1 │" in single and "needs ≥2" in single
    assert "p < 0.01" in result.stdout


def test_plot_says_where_it_wrote_and_names_every_series(examples_copy: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from copilot.core.research.compare import figure, find_session_dirs, summarize_sessions

    out = tmp_path / "plots" / "fsr.png"
    result = cli("compare", "--all", "--session-dir", str(examples_copy), "--plot", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"wrote the plot to {out.resolve()}" in result.stdout and out.stat().st_size > 10_000
    rows = summarize_sessions(find_session_dirs(examples_copy))
    import matplotlib.pyplot as plt

    fig = figure(rows)
    try:
        for ax in fig.axes:
            legend = ax.get_legend()
            assert legend is not None
            names = {t.get_text() for t in legend.get_texts()}
            drawn = [a for a in [*ax.lines, *ax.collections, *ax.containers]
                     if not str(a.get_label()).startswith("_")]
            unnamed = [a for a in [*ax.lines, *ax.collections] if str(a.get_label()).startswith("_")
                       and a not in [p for c in ax.containers for p in c]]
            assert not unnamed, unnamed
            assert {str(a.get_label()) for a in drawn} <= names and names
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------------------------------
# The app: the offer at session start, and `B` measuring with the human's yes
# --------------------------------------------------------------------------------------------------
async def test_the_app_offers_the_baseline_and_measures_it_on_yes(tmp_path: Path, micro_data: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from copilot.ui.app import CopilotApp
    from copilot.ui.screens.modals import ConfirmModal
    from tests.support.ui import notifications, wait_until

    track = tiny_track(micro_data, monkeypatch)
    monkeypatch.setenv("SPEEDCOPILOT_BASELINES", str(tmp_path / "baselines.json"))
    monkeypatch.setattr(b, "DEFAULT_SEEDS", 1)  # one run per record keeps the test short
    fallback = b.BaselineChoice(source=b.CATALOGUE, record=0, next_record=1, record_time_s=208.4,
                                next_record_time_s=75.9, reason="no baseline of record 0 and 1 measured here")
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0), baseline=fallback.to_fields())
    app = CopilotApp(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: any("Press B" in n for n in notifications(app)), what="the offer")
        offer = next(n for n in notifications(app) if "Press B" in n)
        assert "catalogue's times, measured on another machine" in offer
        assert not (tmp_path / "baselines.json").exists()  # never measured without a yes
        await pilot.press("B")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: any("same-machine baseline:" in n for n in notifications(app)),
                         what="the measurement")
        await wait_until(pilot, lambda: app.state.baseline_times()[2], what="the app's view of the new baseline")
    await session.close()
    events = read_events(session.dir / EVENTS_FILE).events
    chosen = [e.body for e in events if e.type == "baseline_chosen"]
    assert [c.source for c in chosen] == ["catalogue", "same_machine"]
    assert chosen[-1].seeds == 1 and chosen[-1].record_time_s > 0
    assert len(json.loads((tmp_path / "baselines.json").read_text())["measurements"]) == 2
