"""`records sync --benchmark`: templates for records without upstream code, hints for all 19 tasks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.core.errors import TrackError
from copilot.core.tracks import nanogpt_sync as ns
from copilot.core.tracks.nanogpt import NanoGPTTrack, benchmark_tasks
from tests.support.benchmark_fixture import build_benchmark_repo, hint_text
from tests.support.upstream_fixture import build_upstream_repo

EXE = shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture
def clones(tmp_path: Path):
    return build_upstream_repo(tmp_path / "up"), build_benchmark_repo(tmp_path / "bench")


def test_templates_fill_only_the_records_without_upstream_code(clones, tmp_path: Path) -> None:
    upstream, bench = clones
    cache = tmp_path / "cache"
    index = ns.sync_records(path=upstream.path, cache_dir=cache, benchmark=bench.path)
    track = NanoGPTTrack(cache_dir=cache)
    for number in (1, 3):  # llm.c log / no log upstream
        rec = index.primary(number)
        assert rec.has_code and rec.code_source == ns.CODE_FROM_TEMPLATE
        assert f"record_{number}/train_gpt2.py" in rec.note
        assert track.record_files(number) == {"train_gpt.py": bench.templates[number]}
        assert track.code_source(number) == "llm-speedrunner template"
    for number in (4, 5, 21):  # upstream's own code wins
        assert track.record_files(number)["train_gpt.py"] == upstream.expected[str(number)].main
        assert index.primary(number).code_source == ns.CODE_FROM_LOG
    assert index.primary(6).code_source == ns.CODE_FROM_SCRIPT
    assert not index.primary(66).has_code  # outside 1-21: no template applies
    assert "benchmark" in index.summary() and "2 template script(s)" in index.summary()
    assert ns.SyncIndex.load(ns.index_path(cache)).benchmark == str(bench.path.resolve())


def test_hints_for_every_task_and_task_7_uses_record_7(clones, tmp_path: Path) -> None:
    upstream, bench = clones
    cache = tmp_path / "cache"
    ns.sync_records(path=upstream.path, cache_dir=cache, benchmark=bench.path)
    track = NanoGPTTrack(cache_dir=cache)
    tasks = benchmark_tasks(track)
    assert len(tasks) == 19
    for task in tasks:
        for level in (1, 2, 3):
            assert track.hint(task.start_record, level) == hint_text(task.start_record, level), (task.task_id, level)
    task7 = next(t for t in tasks if t.task_id == 7)
    assert (task7.from_record, task7.to_record, task7.start_record, task7.hint_folder) == (6, 8, 7, "record_7")
    assert task7.to_dict()["start_record"] == 7
    assert track.hint(6, 2) == hint_text(6, 2)  # record_6 (#6 -> #7, the upgrade) stays what it is
    hints_dir = track.hints_root()
    assert sorted(p.name for p in (hints_dir / "record_2").iterdir()) == [
        "level_0_diff.txt", "level_1_pseudo.txt", "level_2_description.txt", "level_3_paper.txt", "level_9_muon.txt"]
    assert cli("records", "sync", "--path", str(upstream.path), "--benchmark", str(bench.path)).returncode == 0
    shown = cli("records", "tasks")  # the synced hints (default cache), with no --hints-dir
    row7 = next(line for line in shown.stdout.splitlines() if line.startswith("│ 7 "))
    assert "record_7: level_0_diff.txt" in row7


def test_benchmark_alone_is_added_to_the_synced_records_and_kept_on_resync(clones) -> None:
    upstream, bench = clones
    assert cli("records", "sync", "--path", str(upstream.path)).returncode == 0
    added = cli("records", "sync", "--benchmark", str(bench.path))
    assert added.returncode == 0, added.stderr
    assert "2 template script(s)" in " ".join(added.stdout.split())
    again = cli("records", "sync", "--path", str(upstream.path))  # no --benchmark: the previous one is read again
    assert again.returncode == 0 and "2 template script(s)" in " ".join(again.stdout.split())
    script = cli("records", "show", "1", "--track", "nanogpt", "--script")
    assert script.returncode == 0 and "benchmark template for record 1" in script.stdout


def test_a_folder_that_is_not_the_benchmark_is_one_clear_error(clones, tmp_path: Path) -> None:
    upstream, _ = clones
    with pytest.raises(TrackError, match="does not look like a clone of facebookresearch/llm-speedrunner"):
        ns.sync_records(path=upstream.path, cache_dir=tmp_path / "c", benchmark=tmp_path)
    result = cli("records", "sync", "--path", str(upstream.path), "--benchmark", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("speedcopilot: error:") and "llm-speedrunner" in result.stderr
