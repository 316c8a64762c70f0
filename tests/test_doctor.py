"""`speedcopilot doctor` on this GPU-less machine (console script), and the checks against other machines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.core.tracks import nanogpt_sync as ns
from copilot.core.tracks.doctor import DoctorRefusal, Probes, preflight, run_doctor
from copilot.core.tracks.nanogpt import GpuInfo, NanoGPTTrack
from copilot.core.tracks.nanogpt_data import shard_dir
from tests.support.benchmark_fixture import build_benchmark_repo
from tests.support.upstream_fixture import build_upstream_repo

EXE = shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")


def doctor(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "300"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([EXE, "doctor", *args], capture_output=True, text=True, env=env, timeout=300)


def test_on_a_machine_without_gpus_every_failure_is_one_line_with_its_fix(tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()  # no nvidia-smi, no torchrun on PATH: the same answer on any machine
    result = doctor("--track", "nanogpt", path=str(empty))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stdout.splitlines()
    gpu = next(line for line in lines if line.startswith("fail gpus:"))
    assert "no NVIDIA GPU visible (nvidia-smi is not installed)" in gpu and "— fix: " in gpu
    assert any(line.startswith("fail torchrun: torchrun is not on PATH") for line in lines)
    assert any(line.startswith("fail data: no train and val shards") and "data prepare --track nanogpt" in line
               for line in lines)
    assert any(line.startswith("fail records: the nanogpt records are not synced") for line in lines)
    assert lines[-1].startswith("a run would fail:")


def test_all_records_json_after_a_sync_with_the_benchmark(tmp_path: Path) -> None:
    upstream = build_upstream_repo(tmp_path / "up")
    bench = build_benchmark_repo(tmp_path / "bench")
    sync = subprocess.run([EXE, "records", "sync", "--path", str(upstream.path), "--benchmark", str(bench.path)],
                          capture_output=True, text=True, timeout=300)
    assert sync.returncode == 0, sync.stderr
    prep = subprocess.run([EXE, "data", "prepare", "--track", "nanogpt", "--synthetic", "--tokens", "1000000"],
                          capture_output=True, text=True, timeout=300)
    assert prep.returncode == 0, prep.stderr
    result = doctor("--track", "nanogpt", "--all-records", "--json")
    assert result.returncode == 1  # still no GPU here
    report = json.loads(result.stdout)
    assert report["ok"] is False
    by_number = {r["number"]: r for r in report["records"]}
    with_code = [r for r in report["records"] if r["has_code"]]
    assert {r["number"] for r in with_code} == {1, 3, 4, 5, 6, 14, 15, 21, 61, 64, 65}
    assert all(r["data"] == "ok" for r in with_code), [(r["number"], r["data"]) for r in with_code if r["data"] != "ok"]
    assert by_number[66]["data"].startswith("no code")
    assert by_number[1]["code_source"] == "llm-speedrunner template"
    assert by_number[1]["requirements"]["torch"] == "2.7.1" and by_number[14]["requirements"]["triton"] == "3.3.0"
    assert by_number[61]["requirements"] == {"torch": "2.10.0+cu128", "triton": "3.6.0", "source": "the record's log"}


@pytest.fixture
def track(tmp_path: Path) -> NanoGPTTrack:
    upstream = build_upstream_repo(tmp_path / "up")
    ns.sync_records(path=upstream.path, cache_dir=tmp_path / "cache")
    t = NanoGPTTrack(cache_dir=tmp_path / "cache", data_dir=tmp_path / "data")
    t.prepare_synthetic_data(train_tokens=1_000_000, train_shards=1)
    return t


def gpu_box(torch_version: str = "2.10.0+cu128", triton: str = "3.6.0", gpus: int = 8) -> Probes:
    python_dir = str(Path(sys.executable).parent)
    return Probes(
        nvidia_smi=lambda: [GpuInfo("NVIDIA H100 80GB HBM3", 81559)] * gpus,
        torch_info=lambda python: {"torch": torch_version, "cuda": "12.8", "cuda_available": True,
                                   "device_count": gpus, "triton": triton},
        which=lambda name: f"{python_dir}/{name}",
        disk_free=lambda path: 500 * 2**30,
    )


def test_a_good_gpu_box_passes_with_a_warning_for_synthetic_data(track: NanoGPTTrack) -> None:
    report = run_doctor(track, record=61, gpus=8, probes=gpu_box())
    assert report.ok, [c.line() for c in report.failures()]
    names = {c.name: c.status for c in report.checks}
    assert names["gpus"] == "ok" and names["torch"] == "ok" and names["torchrun"] == "ok"
    assert names["data"] == "warn" and names["record data"] == "ok"


def test_too_old_torch_too_few_gpus_and_broken_shards_fail(track: NanoGPTTrack) -> None:
    report = run_doctor(track, record=61, gpus=8, probes=gpu_box(torch_version="2.4.1+cu121", gpus=4))
    lines = [c.line() for c in report.failures()]
    assert any(line.startswith("fail gpus: 4 GPU(s) visible, the run asks for 8 — fix: pass --gpus 4") for line in lines)
    assert any("record 61 needs torch ≥ 2.10" in line and "has 2.4.1+cu121" in line for line in lines)
    shard = shard_dir(track.data_root) / "fineweb_train_000001.bin"
    shard.write_bytes(shard.read_bytes()[:-10])  # a torn download
    broken = run_doctor(track, gpus=1, probes=gpu_box())
    assert any(c.name == "data" and "truncated or corrupt" in c.message for c in broken.failures())


def test_preflight_refuses_a_run_that_would_fail(track: NanoGPTTrack, tmp_path: Path) -> None:
    with pytest.raises(DoctorRefusal, match="no NVIDIA GPU visible"):
        preflight(track, gpus=1)  # this machine has no GPU
    from copilot.core.tracks.micro import MicroTrack

    assert preflight(MicroTrack(data_dir=tmp_path / "micro"), gpus=1).checks == []


def test_the_remote_end_of_an_ssh_runner(tmp_path: Path) -> None:
    from tests.support.sshd import SshServer, require_sshd

    require_sshd()
    upstream = build_upstream_repo(tmp_path / "up")
    ns.sync_records(path=upstream.path, cache_dir=tmp_path / "cache")
    t = NanoGPTTrack(cache_dir=tmp_path / "cache", data_dir=tmp_path / "data")
    with SshServer.start(tmp_path / "ssh") as server:
        report = run_doctor(t, gpus=1, runner_url=server.url(tmp_path / "remote"), ssh_options=server.client_options)
        names = {c.name: c for c in report.checks}
        assert names["ssh"].status == "ok"
        assert names["remote python"].status == "ok"
        assert names["remote gpus"].status == "fail" and "shows 0 GPU(s)" in names["remote gpus"].message
        if names["remote torchrun"].status == "fail":
            assert "no torchrun on" in names["remote torchrun"].message
        bad = run_doctor(t, gpus=1, runner_url="ssh://127.0.0.1:1/x", ssh_options=["-o", "ConnectTimeout=3"])
        assert bad.checks[0].name == "ssh" and bad.checks[0].status == "fail"
        assert "check that `ssh 127.0.0.1` works" in bad.checks[0].line()
