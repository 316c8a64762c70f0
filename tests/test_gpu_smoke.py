"""bench/gpu_smoke.sh up to the GPU part: sync, synthetic shards, doctor (no GPU needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.benchmark_fixture import build_benchmark_repo
from tests.support.upstream_fixture import build_upstream_repo

ROOT = Path(__file__).resolve().parents[1]
EXE = shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")


def smoke(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPEEDCOPILOT": EXE, "PATH": "/usr/bin:/bin", "COLUMNS": "300"}
    return subprocess.run(["bash", str(ROOT / "bench" / "gpu_smoke.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture
def clones(tmp_path: Path) -> tuple[Path, Path]:
    return build_upstream_repo(tmp_path / "up").path, build_benchmark_repo(tmp_path / "bench").path


def test_dry_run_stops_before_the_gpu_with_the_doctor_lines(clones: tuple[Path, Path]) -> None:
    upstream, bench = clones
    result = smoke("--upstream", str(upstream), "--benchmark", str(bench), "--dry-run", "--steps", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "nanogpt synthetic data ready" in out and "== doctor" in out and "== dry run: stops before the GPU" in out
    assert "ok   record data: record 21 finds its train and val shards" in out
    if shutil.which("nvidia-smi", path="/usr/bin:/bin") is None:
        assert "fail gpus: no NVIDIA GPU visible" in out


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU: the real run would start")
def test_without_a_gpu_the_check_refuses_to_train(clones: tuple[Path, Path]) -> None:
    upstream, bench = clones
    result = smoke("--upstream", str(upstream), "--benchmark", str(bench))
    assert result.returncode == 2
    assert "the doctor says a run would fail here" in result.stderr and "Traceback" not in result.stderr


def test_bad_usage_is_one_line() -> None:
    result = smoke("--upstream", "/nonexistent")
    assert result.returncode == 3 and "pass --upstream PATH" in result.stderr
