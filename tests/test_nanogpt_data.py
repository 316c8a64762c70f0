"""Every synced record finds its train and val shards from a session workspace (statically; no GPU)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest

from copilot.core.errors import TrackError
from copilot.core.llm.providers import OracleProvider
from copilot.core.session import Session
from copilot.core.tracks import nanogpt_data as nd
from copilot.core.tracks import nanogpt_sync as ns
from copilot.core.tracks.datapaths import resolve_data
from copilot.core.tracks.nanogpt import NanoGPTTrack
from copilot.core.tracks.shards import read_shard, write_shard
from copilot.resources import records_dir
from tests.support.benchmark_fixture import build_benchmark_repo
from tests.support.upstream_fixture import build_upstream_repo


@pytest.fixture
def synced(tmp_path: Path) -> NanoGPTTrack:
    upstream = build_upstream_repo(tmp_path / "up")
    benchmark = build_benchmark_repo(tmp_path / "bench")
    cache = tmp_path / "cache"
    ns.sync_records(path=upstream.path, cache_dir=cache, benchmark=benchmark.path)
    track = NanoGPTTrack(cache_dir=cache, data_dir=tmp_path / "data")
    track.prepare_synthetic_data(train_tokens=1_000_000, train_shards=2)
    return track


def _run_env(track: NanoGPTTrack) -> dict[str, str]:
    return {**os.environ, **track.run_env()}  # what Session.start_run gives the run


def test_every_fixture_record_with_code_resolves_its_data(synced: NanoGPTTrack, tmp_path: Path) -> None:
    records = [r for r in synced.records() if r.has_code]
    assert {r.number for r in records} == {1, 3, 4, 5, 6, 14, 15, 21, 61, 64, 65}  # 1, 3: benchmark templates
    env = _run_env(synced)
    for rec in records:
        work = tmp_path / "ws" / str(rec.number)
        work.mkdir(parents=True)
        synced.prepare_workdir(work)
        script = synced.record_files(rec.number)[synced.script_name]
        result = resolve_data(script, work, env)
        assert result.ok, f"record {rec.number}: {result.status()}"
        assert len(result.train_files) == 2 and len(result.val_files) == 1, rec.number


def test_without_the_layout_the_relative_and_fineweb_records_find_nothing(synced: NanoGPTTrack, tmp_path: Path) -> None:
    """The failure the layout fixes (so the test above can fail): a bare workspace, and no data/fineweb alias."""
    bare = tmp_path / "bare"
    bare.mkdir()
    env = _run_env(synced)
    relative = resolve_data(synced.record_files(5)[synced.script_name], bare, env)
    assert not relative.ok and "no file matches data/fineweb10B/fineweb_train_*.bin" in relative.status()
    (synced.data_root / "data" / "fineweb").unlink()
    fineweb = resolve_data(synced.record_files(64)[synced.script_name], bare, env)
    assert not fineweb.ok and "data/fineweb/fineweb_train_*.bin" in fineweb.status()


def test_patterns_the_run_cannot_satisfy_name_the_reason(tmp_path: Path) -> None:
    src = "class H:\n    train_files = '/data/someone/fineweb10B/fineweb_train_*.bin'\n" \
          "    val_files = os.environ['NANOGPT_VAL_FILES']\n"
    result = resolve_data(src, tmp_path, {})
    assert "/data/someone/fineweb10B/fineweb_train_*.bin (an absolute path)" in result.status()
    assert "NANOGPT_VAL_FILES, which the run does not set" in result.status()
    pathlib_abs = resolve_data("from pathlib import Path\ntrain_files = '/x/a_*.bin'\nval_files = '/x/b_*.bin'\n"
                               "F = Path.cwd().glob(train_files)\n", tmp_path, {})
    assert "Path.cwd().glob, which takes relative patterns only" in pathlib_abs.status()
    assert "does not parse" in resolve_data("def broken(:\n", tmp_path, {}).status()


def test_the_workspace_link_never_makes_the_session_dirty(synced: NanoGPTTrack, tmp_path: Path) -> None:
    session = Session.create(tmp_path / "sessions", synced, 5, OracleProvider(synced, 5))
    try:
        ws = session.workspace.path
        assert (ws / "data").is_symlink() and (ws / "data").resolve() == (synced.data_root / "data").resolve()
        assert (ws / "data" / "fineweb10B" / "fineweb_val_000000.bin").is_file()
        exclude = (ws / ".git" / "info" / "exclude").read_text()
        assert "/data" in exclude.splitlines() and "/logs/" in exclude.splitlines()
        (ws / "logs").mkdir()
        (ws / "logs" / "run.txt").write_text("a log the script wrote\n")
        assert not session.workspace.is_dirty()
        (ws / "data").unlink()  # a lost link comes back at the next run (prepare_workdir is idempotent)
        synced.prepare_workdir(ws)
        synced.prepare_workdir(ws)
        assert (ws / "data").is_symlink() and exclude == (ws / ".git" / "info" / "exclude").read_text()
    finally:
        session.close_now(reason="user")


def test_synthetic_shards_suit_every_loader_era(tmp_path: Path) -> None:
    info = nd.write_synthetic_shards(tmp_path, train_tokens=1_200_000, train_shards=2)
    train, val = nd.inspect_shards(info.directory)
    assert [s.tokens for s in train] == [1_200_000, 1_200_000] and all(s.problem is None for s in train + val)
    tokens = read_shard(val[0].path)  # the track's own reader validates magic, version and size
    # records 19+: a generator that does not wrap around needs more than val_tokens (+1) in the val shard
    assert len(tokens) >= nd.VAL_TOKENS + 2
    # records 4-18: every shard must hold one batch of every rank (8 ranks x 64 x 1024 tokens) + 1
    assert min(s.tokens or 0 for s in train) >= 8 * 64 * 1024 + 1
    # records 26+: documents start with BOS and stay under the 2048-token max document length
    bos = np.flatnonzero(tokens == nd.BOS_ID)
    assert bos[0] == 0 and int(np.diff(bos).max()) < 2048 and int(tokens.max()) == nd.BOS_ID
    # learnable: far from uniform over the vocabulary (the loss falls within a few steps)
    counts = np.bincount(tokens, minlength=nd.VOCAB)
    assert counts[:100].sum() > 0.3 * len(tokens)
    # the micro track's own loader (our code in records/micro) reads the same format
    loader = _function_from(records_dir() / "micro" / "record_0" / "train_gpt.py", "load_shard")
    assert np.array_equal(np.asarray(loader(str(train[0].path))), read_shard(train[0].path))


def test_synthetic_data_never_replaces_real_shards(tmp_path: Path) -> None:
    real = nd.shard_dir(tmp_path) / "fineweb_train_000001.bin"
    write_shard(real, np.arange(1000, dtype=np.uint16))
    with pytest.raises(TrackError, match="already holds 1 real shard"):
        nd.write_synthetic_shards(tmp_path, train_tokens=1_000_000)
    assert read_shard(real).size == 1000


def _function_from(path: Path, name: str):
    """One top-level function of a script (and the constants it uses), without running the script."""
    tree = ast.parse(path.read_text())
    light = {"numpy", "os", "glob", "sys"}
    keep = [n for n in tree.body
            if (isinstance(n, ast.Import) and all(a.name in light for a in n.names))
            or (isinstance(n, ast.FunctionDef) and n.name == name)
            or (isinstance(n, ast.Assign) and all(isinstance(t, (ast.Name, ast.Tuple)) for t in n.targets)
                and isinstance(n.value, (ast.Constant, ast.Tuple)))]
    namespace: dict[str, object] = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace[name]


async def test_the_app_warns_at_start_when_a_run_would_fail_and_refuses_the_run(synced: NanoGPTTrack,
                                                                               tmp_path: Path) -> None:
    """On this GPU-less machine a nanogpt session opens with the doctor's lines, and `r` is refused with the
    fix instead of crashing 15 s into torchrun."""
    from copilot.ui.app import CopilotApp
    from tests.support.ui import wait_until

    session = Session.create(tmp_path / "sessions", synced, 5, OracleProvider(synced, 5))
    app = CopilotApp(session)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: any(n.title == "before you run" for n in app._notifications),
                         what="the doctor's warning")
        warning = next(n for n in app._notifications if n.title == "before you run")
        assert "gpu" in warning.message.lower() and warning.severity == "error"
        await pilot.press("r")
        await wait_until(pilot, lambda: any(n.title == "run not started" for n in app._notifications),
                         what="the refused run")
        refused = next(n for n in app._notifications if n.title == "run not started")
        assert "would fail" in refused.message and not app.state.runs
        await app.close_and_exit(False)
