"""NanoGPTTrack: catalogue before a sync, synced records, hints, launch, env, curves, tasks, GPUs, data."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from copilot.core.errors import TrackError
from copilot.core.tracks import nanogpt_sync as ns
from copilot.core.tracks.nanogpt import (
    NanoGPTTrack,
    benchmark_tasks,
    detect_gpus,
    load_catalogue,
    parse_gpu_csv,
    prepare_nanogpt_data,
)
from tests.support.upstream_fixture import build_upstream_repo


@pytest.fixture
def synced(tmp_path: Path):
    upstream = build_upstream_repo(tmp_path / "src")
    cache = tmp_path / "cache"
    ns.sync_records(path=upstream.path, cache_dir=cache)
    return upstream, NanoGPTTrack(cache_dir=cache, hints_dir=tmp_path / "hints")


def test_catalogue_facts() -> None:
    cat = load_catalogue()
    rows = cat["records"]
    assert len(rows) == 91 and cat["target_val_loss"] == 3.28 and cat["script"] == "train_gpt.py"
    assert [r["key"] for r in rows if r["number"] == 21] == ["21", "21-retime-1", "21-retime-2"]
    assert len({r["key"] for r in rows}) == 91
    assert {r["number"] for r in rows if not r["has_log"]} == {3, 66, 86}
    by_key = {r["key"]: r for r in rows}
    assert by_key["1"]["time_s"] == 2700.0 and by_key["89"]["time_s"] == pytest.approx(73.8)
    assert by_key["21"]["time_s"] == pytest.approx(175.98) and by_key["21-retime-1"]["retiming"] is True
    assert by_key["5"]["date"] == "2024-10-14" and by_key["89"]["steps"] == 1390
    assert len(cat["track2"]) == 18


def test_unsynced_track_lists_catalogue_without_code(tmp_path: Path) -> None:
    track = NanoGPTTrack(cache_dir=tmp_path / "cache")
    assert not track.is_synced()
    records = track.records()
    assert [r.number for r in records] == list(range(1, 90))
    assert not any(r.has_code for r in records)
    r21 = track.record(21)
    assert r21.time_s == pytest.approx(175.98) and len(r21.extra["retimings"]) == 2
    assert track.record(5).name == "ModernArch" and track.record(5).machine == "8×H100"
    with pytest.raises(TrackError, match="records sync"):
        track.record_files(5)
    with pytest.raises(TrackError, match="valid numbers: 1–89"):
        track.record(200)
    assert track.reference_curve(5) == []


def test_synced_track_files_and_curves(synced) -> None:
    upstream, track = synced
    assert track.is_synced()
    # the synced rows, plus the catalogue's records the (small) fixture clone does not list, without code
    records = track.records()
    assert [r.number for r in records] == list(range(1, 90))
    assert {r.number for r in records if r.has_code} == {4, 5, 6, 14, 15, 21, 61, 64, 65}
    assert track.record(7).extra["note"] == "not in the synced clone's README"
    assert len(track.record(21).extra["retimings"]) == 2
    assert track.record(4).has_code and not track.record(3).has_code
    assert track.record(61).name == "UnifiedOptimizers"
    files = track.record_files(61)
    assert set(files) == {"train_gpt.py", "triton_kernels.py", "dc_triton_kernels.py"}
    assert files["train_gpt.py"] == upstream.expected["61"].main
    assert track.record_files(21)["train_gpt.py"] == upstream.expected["21"].main  # not a re-timing
    with pytest.raises(TrackError, match="no training code"):
        track.record_files(1)
    with pytest.raises(TrackError, match="no training code"):
        track.record_files(66)
    curve = track.reference_curve(5)
    assert [p.step for p in curve] == [0, 2, 4, 6, 8]
    assert curve[-1].val_loss == pytest.approx(3.2741) and curve[-1].train_time_ms == 800
    llmc = track.reference_curve(1)
    assert llmc and llmc[-1].val_loss == pytest.approx(3.2722)
    # the catalogue's steps/val survive where the synced log holds none
    assert track.record(3).steps is None and track.record(86).has_code is False
    assert track.record(89).steps == 1390 and track.record(89).val_loss == pytest.approx(3.2775)


def test_hints_from_user_folder(synced, tmp_path: Path) -> None:
    _, track = synced
    assert track.hint(5, 1) is None
    folder = tmp_path / "hints" / "record_5"
    folder.mkdir(parents=True)
    (folder / "level_1_pseudo.txt").write_text("pseudo code")
    (folder / "level_2_description.txt").write_text("words")
    assert track.hint(5, 1) == "pseudo code" and track.hint(5, 2) == "words"
    assert track.hint(5, 3) is None and track.hint(6, 1) is None and track.hint(5, 0) is None
    assert NanoGPTTrack(cache_dir=tmp_path / "c").hint(5, 1) is None


def test_launch_and_env(tmp_path: Path) -> None:
    track = NanoGPTTrack(cache_dir=tmp_path / "cache")
    assert track.launch_command(tmp_path, 8) == ["torchrun", "--standalone", "--nproc_per_node=8", "train_gpt.py"]
    assert track.launch_command(tmp_path, 1)[2] == "--nproc_per_node=1"
    for bad in (0, 3, 16):
        with pytest.raises(TrackError, match="1, 2, 4 or 8"):
            track.launch_command(tmp_path, bad)
    env = track.run_env()
    data_path = Path(env["DATA_PATH"])
    assert data_path == tmp_path / "cache" / "data" / "nanogpt"
    assert env["NANOGPT_TRAIN_FILES"] == str(data_path / "data/fineweb10B/fineweb_train_*.bin")
    assert env["NANOGPT_VAL_FILES"] == str(data_path / "data/fineweb10B/fineweb_val_*.bin")
    assert env["NANOGPT_VAL_TOKENS"] == "10485760"
    assert track.target_val_loss == 3.28 and track.script_name == "train_gpt.py"


def test_benchmark_tasks() -> None:
    tasks = benchmark_tasks()
    assert len(tasks) == 19
    assert [t.task_id for t in tasks] == [1, 2, 3, 4, 5] + list(range(7, 21))
    pairs = [(t.from_record, t.to_record) for t in tasks]
    assert pairs[:5] == [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6)]
    assert pairs[5] == (6, 8) and pairs[6] == (8, 9) and pairs[-1] == (20, 21)
    assert all(7 not in p for p in pairs)
    assert tasks[0].from_time_s == 2700.0 and tasks[0].to_time_s == pytest.approx(1884.0)
    assert tasks[-1].to_time_s == pytest.approx(175.98)  # the record itself, not a re-timing
    assert tasks[5].to_dict()["hint_folder"] == "record_7"


def _fake_exe(folder: Path, name: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_detect_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert detect_gpus() == []
    bin_dir = tmp_path / "bin"
    _fake_exe(bin_dir, "nvidia-smi",
              'echo "NVIDIA H100 80GB HBM3, 81559 MiB"\necho "NVIDIA H100 80GB HBM3, 81559 MiB"\n')
    monkeypatch.setenv("PATH", str(bin_dir))
    gpus = detect_gpus()
    assert len(gpus) == 2 and gpus[0].name == "NVIDIA H100 80GB HBM3" and gpus[0].memory_mib == 81559
    _fake_exe(bin_dir, "nvidia-smi", 'echo "NVIDIA-SMI has failed" >&2\nexit 9\n')
    assert detect_gpus() == []
    assert parse_gpu_csv("A, B, 1024 MiB\n\n") [0].name == "A, B"


def test_prepare_data_runs_upstream_script(synced, tmp_path: Path) -> None:
    upstream, track = synced
    with pytest.raises(TrackError):
        track.prepare_data(0)
    messages: list[str] = []
    shards = track.prepare_data(2, progress=lambda m, f: messages.append(m))
    assert shards == track.data_root / "data" / "fineweb10B"
    assert (track.data_root / "data" / "cached_fineweb10B.py").is_file()
    assert messages[-1] == "data ready"
    # a failing download (what offline looks like) gives a message that says what it needs
    script = upstream.path / "data" / "cached_fineweb10B.py"
    script.write_text("import sys\nprint('ConnectionError: cannot reach huggingface.co', file=sys.stderr)\nsys.exit(1)\n")
    with pytest.raises(TrackError, match="needs internet") as err:
        prepare_nanogpt_data(1, upstream.path, tmp_path / "d")
    assert "cannot reach huggingface.co" in str(err.value)
    with pytest.raises(TrackError, match="records sync"):
        NanoGPTTrack(cache_dir=tmp_path / "nothing").prepare_data(1)
    assert not track.data_ready()
    assert os.environ.get("DATA_PATH") is None
