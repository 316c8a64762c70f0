"""Micro-track records: every script runs as a real subprocess and prints upstream lines; the track object."""

from __future__ import annotations

import difflib
import re
import shutil
import sys
from pathlib import Path

import pytest

from copilot.core.errors import TrackError
from copilot.core.tracks import build_track
from copilot.core.tracks.micro import MicroTrack
from copilot.core.tracks.microdata import micro_dir, prepare_micro_data
from copilot.resources import records_dir
from tests.support.micro import parse_lines, run_record

RECORDS = records_dir() / "micro"
NUMBERS = sorted(int(p.name.split("_")[1]) for p in RECORDS.glob("record_*"))
PROTECTED = re.compile(r"# do not change: val set, val tokens, target.*?\n# -{20,}\n", re.S)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("microdata")
    prepare_micro_data(base, size="small")
    return micro_dir(base)


def _script(n: int) -> Path:
    return RECORDS / f"record_{n}" / "train_gpt.py"


# --------------------------------------------------------------------------------- catalogue, track


def test_ladder_has_at_least_seven_records_with_catalogue_entries() -> None:
    track = MicroTrack()
    assert NUMBERS == list(range(len(NUMBERS))) and len(NUMBERS) >= 7
    assert [r.number for r in track.records()] == NUMBERS
    assert track.name == "micro" and track.script_name == "train_gpt.py" and track.target_val_loss == 1.6
    for info in track.records():
        assert info.name and info.description and isinstance(info.extra["needs_bf16"], bool)
    assert "2 threads" in track.rules or "set_num_threads(2)" in track.rules


def test_measured_fields_and_reference_curves() -> None:
    track = MicroTrack()
    for info in track.records():
        assert info.time_s is not None and info.time_s > 0, info
        assert info.steps and info.val_loss is not None and info.machine
        assert 0 < int(info.extra["steps_to_target"]) <= info.steps
        curve = track.reference_curve(info.number)
        assert curve[0].step == 0 and all(p.is_val for p in curve)
        assert [p.step for p in curve] == sorted(p.step for p in curve)
        crossing = next(p for p in curve if p.val_loss <= track.target_val_loss)
        assert crossing.train_time_ms > 0
        if info.extra.get("curve_complete"):  # otherwise the measured run was stopped at the target
            assert curve[-1].step == info.steps
    times = [r.time_s for r in track.records()]
    assert all(b < a for a, b in zip(times, times[1:]))  # each record beats its predecessor


def test_record_lookup_files_and_hints() -> None:
    track = MicroTrack()
    with pytest.raises(TrackError, match=r"no record 99; valid record numbers: 0, 1, 2"):
        track.record(99)
    files = track.record_files(0)
    assert list(files) == ["train_gpt.py"] and files["train_gpt.py"] == _script(0).read_text()
    for n in NUMBERS[:-1]:
        for level in (1, 2, 3):
            text = track.hint(n, level)
            assert text and len(text) > 200, (n, level)
    assert track.hint(NUMBERS[-1], 1) is None
    with pytest.raises(TrackError, match="hint level"):
        track.hint(0, 4)


def test_launch_and_run_env(tmp_path: Path, small_data: Path) -> None:
    track = MicroTrack(data_dir=tmp_path / "empty")
    assert track.launch_command(tmp_path, gpus=8) == [sys.executable, "train_gpt.py"]
    with pytest.raises(TrackError, match="speedcopilot data prepare --track micro"):
        track.run_env()
    ready = MicroTrack(data_dir=small_data.parent)
    assert ready.run_env() == {"SPEEDCOPILOT_MICRO_DATA": str(small_data), "OMP_NUM_THREADS": "2",
                               "OMP_WAIT_POLICY": "PASSIVE"}
    assert isinstance(build_track("micro", data_dir=small_data.parent), MicroTrack)


def test_protected_block_is_identical_and_diffs_are_focused() -> None:
    texts = [_script(n).read_text() for n in NUMBERS]
    blocks = [PROTECTED.search(t) for t in texts]
    assert all(blocks) and len({b.group(0) for b in blocks}) == 1
    assert "TARGET_VAL_LOSS = 1.60" in blocks[0].group(0)
    for n, (a, b) in enumerate(zip(texts, texts[1:])):
        changed = [l for l in difflib.unified_diff(a.splitlines(), b.splitlines(), n=0)
                   if l[:1] in "+-" and not l.startswith(("+++", "---"))]
        assert 0 < len(changed) < 120, (n, len(changed))
        for forbidden in ("import os", "set_num_threads(2)", "MICRO_SEED"):
            assert forbidden in b


# ------------------------------------------------------------------------------------ real runs


def _check_lines(stdout: str, steps: int, val_every: int) -> list:
    lines, other = parse_lines(stdout)
    assert not [o for o in other if o.strip() and not o.startswith("peak memory")], other
    vals = [l for l in lines if l.kind == "val"]
    trains = [l for l in lines if l.kind == "train"]
    assert [l.step for l in trains] == list(range(1, steps + 1))
    expected = sorted({0, steps, *range(0, steps, val_every)})
    assert [l.step for l in vals] == expected
    assert all(l.total == steps for l in lines)
    times = [l.time_ms for l in lines]
    assert times == sorted(times)
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("number", NUMBERS)
def test_record_tiny_run_prints_upstream_lines(number: int, small_data: Path) -> None:
    proc = run_record(_script(number), small_data, steps=4, val_every=2, windows=4, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = _check_lines(proc.stdout, steps=4, val_every=2)
    assert all(0 < l.loss < 10 for l in lines)


@pytest.mark.slow
def test_record_is_deterministic_per_seed(small_data: Path) -> None:
    a = run_record(_script(1), small_data, steps=3, val_every=3, windows=4, seed=5)
    b = run_record(_script(1), small_data, steps=3, val_every=3, windows=4, seed=5)
    c = run_record(_script(1), small_data, steps=3, val_every=3, windows=4, seed=6)
    losses = [[l.loss for l in parse_lines(p.stdout)[0]] for p in (a, b, c)]
    assert losses[0] == losses[1] and losses[0] != losses[2]


@pytest.mark.slow
def test_loss_decreases_over_a_short_run_of_record_0(small_data: Path) -> None:
    proc = run_record(_script(0), small_data, steps=40, val_every=20, windows=8, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = _check_lines(proc.stdout, steps=40, val_every=20)
    vals = [l.loss for l in lines if l.kind == "val"]
    trains = [l.loss for l in lines if l.kind == "train"]
    assert vals[0] > 5.0 and vals[1] < vals[0] - 1.5 and vals[2] < vals[1]
    assert sum(trains[-5:]) / 5 < sum(trains[:5]) / 5 - 1.5


@pytest.mark.slow
def test_data_flag_and_torchrun(small_data: Path, tmp_path: Path) -> None:
    script = _script(0)
    proc = run_record(script, small_data, steps=2, val_every=2, windows=2,
                      extra_env={"SPEEDCOPILOT_MICRO_DATA": ""},
                      argv=[sys.executable, script.name, "--data", str(small_data)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_lines(proc.stdout, steps=2, val_every=2)
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = Path(shutil.which("torchrun") or "torchrun")
    proc = run_record(script, small_data, steps=2, val_every=2, windows=2, timeout=180,
                      argv=[str(torchrun), "--standalone", "--nproc_per_node=1", script.name])
    assert proc.returncode == 0, proc.stderr[-2000:]
    _check_lines(proc.stdout, steps=2, val_every=2)


def test_missing_data_fails_with_instructions(tmp_path: Path) -> None:
    for env_value in ("", str(tmp_path)):
        proc = run_record(_script(0), Path(env_value) if env_value else Path(""), steps=2, val_every=2, windows=2,
                          extra_env={"SPEEDCOPILOT_MICRO_DATA": env_value})
        assert proc.returncode != 0
        assert "speedcopilot data prepare --track micro" in proc.stderr
        assert "step:" not in proc.stdout


def test_damaged_shard_fails_clearly(tmp_path: Path, small_data: Path) -> None:
    for f in small_data.iterdir():
        shutil.copy(f, tmp_path / f.name)
    val = next(tmp_path.glob("micro_val_*.bin"))
    val.write_bytes(b"\x00" * 8 + val.read_bytes()[8:])
    proc = run_record(_script(0), tmp_path, steps=2, val_every=2, windows=2)
    assert proc.returncode != 0 and "not a token shard" in proc.stderr
