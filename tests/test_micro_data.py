"""Micro corpus: shard format, deterministic generation, prepare/ready on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from copilot.core.errors import TrackError
from copilot.core.tracks.shards import HEADER_BYTES, SHARD_MAGIC, read_shard, read_shard_header, write_shard
from copilot.core.tracks import microdata as md

SMALL_VAL_SHA256 = "2c4367ae09fc7cfe454bd2ced1d64174ec3bdbca3aa368d7c377162f4b4c9c04"
WORLD_SHA256 = "d3c7112cb52622fbbf909add47c38801558dd11cd96cb6d4f86d468155ca4315"


def test_world_is_fixed() -> None:
    w = md.build_world()
    blob = b"".join(w.token_bytes) + w.word_weights.astype("<i8").tobytes() + w.trans.astype("<i8").tobytes()
    assert hashlib.sha256(blob).hexdigest() == WORLD_SHA256


def test_generation_is_deterministic_and_matches_recorded_hash() -> None:
    a, floor_a = md.generate_split(md.VAL_SEED, 16, 200)
    b, floor_b = md.generate_split(md.VAL_SEED, 16, 200)
    assert a.dtype == np.uint8 and a.size == 7385
    assert np.array_equal(a, b) and np.array_equal(floor_a, floor_b)
    assert hashlib.sha256(a.tobytes()).hexdigest() == SMALL_VAL_SHA256
    other, _ = md.generate_split(md.TRAIN_SEED, 16, 200)
    assert not np.array_equal(a[:1000], other[:1000])


def test_tokens_are_prefix_free_words_and_documents_end_in_newline() -> None:
    data, floor = md.generate_split(md.VAL_SEED, 8, 300)
    text = bytes(data).decode("ascii")
    assert text.endswith("\n")
    world = md.build_world()
    vocab = {b.decode() for b in world.token_bytes}
    for doc in text.split("\n")[:-1]:
        pieces = [p + " " for p in doc.split(" ")[:-1]]
        assert pieces and all(p in vocab for p in pieces)
        assert doc.endswith(". ")
    # the floor is carried on the last byte of each token: one positive value per token
    ends = (data == ord(" ")) | (data == ord("\n"))
    assert np.all(floor[~ends] == 0) and np.all(floor[ends] > 0)


def test_entropy_floor_is_below_simple_models() -> None:
    data, floor = md.generate_split(md.VAL_SEED, 64, 400)
    counts = np.bincount(data, minlength=256).astype(float)
    p = counts[counts > 0] / counts.sum()
    unigram = float(-(p * np.log(p)).sum())
    per_byte = float(floor.sum() / data.size)
    assert 0.5 < per_byte < unigram - 1.0


def test_shard_roundtrip_and_header(tmp_path: Path) -> None:
    tokens = np.array([0, 1, 255, 65535, 7], dtype=np.int64)
    path = tmp_path / "x.bin"
    write_shard(path, tokens)
    raw = path.read_bytes()
    header = np.frombuffer(raw[:HEADER_BYTES], dtype="<i4")
    assert (header[0], header[1], header[2]) == (SHARD_MAGIC, 1, 5)
    assert not header[3:].any() and len(raw) == HEADER_BYTES + 10
    assert read_shard(path).tolist() == tokens.tolist()
    with pytest.raises(ValueError):
        write_shard(tmp_path / "bad.bin", np.array([70000]))


def _corrupt(path: Path, index: int, value: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[4 * index : 4 * index + 4] = np.array([value], "<i4").tobytes()
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: _corrupt(p, 0, 12345), "bad magic 12345"),
        (lambda p: _corrupt(p, 1, 7), "unsupported version 7"),
        (lambda p: p.write_bytes(p.read_bytes()[:-3]), "truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "truncated"),
        (lambda p: _corrupt(p, 2, 999), "header says 999 tokens"),
    ],
)
def test_reader_rejects_damaged_shards(tmp_path: Path, damage, message: str) -> None:
    path = tmp_path / "s.bin"
    write_shard(path, np.arange(50))
    damage(path)
    with pytest.raises(TrackError, match=message):
        read_shard(path)


def test_reader_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TrackError, match="cannot read shard"):
        read_shard_header(tmp_path / "nope.bin")


def test_default_data_dir_env_and_platform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    default = md.default_data_dir()
    assert default.parts[-2:] == ("speedcopilot", "data")
    assert str(default).startswith(str(Path.home()))  # conftest points the cache dir into a temp HOME
    monkeypatch.setenv("SPEEDCOPILOT_DATA_DIR", str(tmp_path / "d"))
    assert md.default_data_dir() == tmp_path / "d"
    assert md.micro_dir() == tmp_path / "d" / "micro"


def test_prepare_small_is_idempotent_and_validated(tmp_path: Path) -> None:
    assert not md.micro_data_ready(tmp_path)
    seen: list[tuple[str, float]] = []
    info = md.prepare_micro_data(tmp_path, progress=lambda m, f: seen.append((m, f)), size="small")
    assert info.generated and md.micro_data_ready(tmp_path)
    assert seen[-1] == ("micro data ready", 1.0) and all(0 <= f <= 1 for _, f in seen)
    folder = tmp_path / "micro"
    assert read_shard_header(folder / md.TRAIN_FILE) == info.train_tokens > 10_000
    assert read_shard_header(folder / md.VAL_FILE) == info.val_tokens
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["entropy_floor"] == info.entropy_floor and 0.5 < info.entropy_floor < 1.5
    assert meta["sha256"][md.VAL_FILE] == hashlib.sha256((folder / md.VAL_FILE).read_bytes()).hexdigest()

    again = md.prepare_micro_data(tmp_path, size="small")
    assert not again.generated and again.sha256 == info.sha256

    # a damaged shard makes the data not ready, and prepare regenerates the same bytes
    (folder / md.VAL_FILE).write_bytes((folder / md.VAL_FILE).read_bytes()[:-2])
    assert not md.micro_data_ready(tmp_path)
    fixed = md.prepare_micro_data(tmp_path, size="small")
    assert fixed.generated and fixed.sha256 == info.sha256 and md.micro_data_ready(tmp_path)


def test_prepare_rejects_unknown_size(tmp_path: Path) -> None:
    with pytest.raises(TrackError, match="choose one of: full, small"):
        md.prepare_micro_data(tmp_path, size="huge")


def test_eval_windows_start_at_documents_and_mask_partial_tokens() -> None:
    data, _ = md.generate_split(md.VAL_SEED, 16, 400)
    starts, mask = md.eval_windows(data, seq_len=64, windows=10)
    assert len(starts) == 10 and np.all(data[starts] == ord("\n"))
    assert np.all(np.diff(starts) >= 65)
    for s, m in zip(starts, mask):
        y = data[s + 1 : s + 65]
        last = int(np.flatnonzero(m)[-1])
        assert y[last] in (ord(" "), ord("\n")) and m[: last + 1].all() and not m[last + 1 :].any()


@pytest.mark.slow
def test_full_set_is_generated(tmp_path: Path) -> None:
    info = md.prepare_micro_data(tmp_path)  # how long it takes: bench/micro_data.py, docs/benchmarks.md
    assert info.train_tokens > 15_000_000 and info.val_tokens > 1_000_000
    assert 0.9 < info.entropy_floor < 1.0 and info.eval_floor > info.entropy_floor - 0.05
