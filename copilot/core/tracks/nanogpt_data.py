"""Where the nanogpt records find their data, and small synthetic shards for smoke tests.

Upstream's scripts look for shards in three ways, depending on their era (FACTS.md §1.5):

- relative to the working directory: `data/fineweb10B/fineweb_{train,val}_*.bin` (records 4-26);
- `os.path.join(os.environ.get("DATA_PATH", "."), "data/fineweb10B/...")` (record 27 on; record 64 says
  `data/fineweb/` instead);
- the benchmark's templates: env NANOGPT_TRAIN_FILES / NANOGPT_VAL_FILES / NANOGPT_VAL_TOKENS.

One layout serves them all, with links only (the shards are gigabytes):

    <data_root>/                  DATA_PATH
      data/fineweb10B/            the shards (downloaded by upstream's script, or synthetic)
      data/fineweb -> fineweb10B  the spelling of record 64
    <workspace>/data -> <data_root>/data     so that the relative paths resolve from the run's cwd

The workspace link is listed in the workspace repo's .git/info/exclude, so it never makes the tree dirty.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copilot.core.errors import TrackError
from copilot.core.tracks.shards import read_shard_header, write_shard

SHARD_DIR = "data/fineweb10B"  # relative to DATA_PATH, as upstream's scripts join it
SHARD_ALIASES = ("fineweb",)  # other names of data/fineweb10B in some records
TRAIN_GLOB = "fineweb_train_*.bin"
VAL_GLOB = "fineweb_val_*.bin"
VAL_TOKENS = 10_485_760
BOS_ID = 50256  # <|endoftext|>: every document starts with it (records 26+ align batches to it)
VOCAB = 50257
SYNTHETIC_MARKER = ".speedcopilot-synthetic"
# What the run itself writes into its cwd: keep it out of `git status` as well.
WORKSPACE_EXCLUDES = ("/data", "/logs/", "__pycache__/")


@dataclass(frozen=True)
class ShardInfo:
    path: Path
    tokens: int | None  # None when the header or size is wrong
    problem: str | None = None


@dataclass(frozen=True)
class SyntheticInfo:
    directory: Path
    train_shards: int
    train_tokens: int
    val_tokens: int

    def __str__(self) -> str:
        return (f"{self.train_shards} train shard(s) of {self.train_tokens:,} tokens and a val shard of "
                f"{self.val_tokens:,} tokens in {self.directory} (synthetic: for smoke tests, not for records)")


def shard_dir(data_root: Path) -> Path:
    return Path(data_root) / SHARD_DIR


# -- the layout ---------------------------------------------------------------------------------------------


def prepare_data_root(data_root: Path) -> Path:
    """Make <data_root>/data/fineweb10B (empty until data is prepared) and its alias links; return the shards dir."""
    shards = shard_dir(data_root)
    shards.mkdir(parents=True, exist_ok=True)
    for alias in SHARD_ALIASES:
        link = shards.parent / alias
        if not link.exists() and not link.is_symlink():
            link.symlink_to(shards.name, target_is_directory=True)
    return shards


def prepare_workdir(workdir: Path, data_root: Path) -> None:
    """Give a workspace the `data/` every era of script expects (a link to <data_root>/data), kept out of git."""
    prepare_data_root(data_root)
    workdir = Path(workdir)
    target = (Path(data_root) / "data").resolve()
    link = workdir / "data"
    if link.is_symlink():
        if Path(os.readlink(link)) != target:
            link.unlink()
            link.symlink_to(target, target_is_directory=True)
    elif not link.exists():
        link.symlink_to(target, target_is_directory=True)
    # else: a real data/ folder the user made; leave it (the doctor reports what it holds)
    exclude_from_git(workdir, WORKSPACE_EXCLUDES)


def exclude_from_git(workdir: Path, patterns: tuple[str, ...]) -> None:
    """Add patterns to the repo's .git/info/exclude (once each); nothing to do outside a git repo."""
    git_dir = Path(workdir) / ".git"
    if not git_dir.is_dir():
        return
    exclude = git_dir / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    existing = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
    missing = [p for p in patterns if p not in existing]
    if not missing:
        return
    text = "\n".join(existing + ["# speedcopilot: data links and run output", *missing]) + "\n"
    exclude.write_text(text, encoding="utf-8")


# -- checks -------------------------------------------------------------------------------------------------


def inspect_shards(directory: Path) -> tuple[list[ShardInfo], list[ShardInfo]]:
    """(train, val) shards of a directory, each with its token count or the reason it is unusable."""
    def infos(pattern: str) -> list[ShardInfo]:
        out = []
        for path in sorted(Path(directory).glob(pattern)):
            try:
                out.append(ShardInfo(path, read_shard_header(path)))
            except TrackError as exc:
                out.append(ShardInfo(path, None, str(exc)))
        return out

    return infos(TRAIN_GLOB), infos(VAL_GLOB)


def is_synthetic(directory: Path) -> bool:
    return (Path(directory) / SYNTHETIC_MARKER).exists()


# -- synthetic shards ---------------------------------------------------------------------------------------


def write_synthetic_shards(data_root: Path, train_tokens: int = 40_000_000, train_shards: int = 2,
                           val_tokens: int | None = None, seed: int = 0) -> SyntheticInfo:
    """Write small shards in the upstream format into <data_root>/data/fineweb10B (offline, seconds).

    The text is a learnable stand-in, not language: documents of 64-1536 tokens, each opened by BOS (so the
    BOS-aligned loaders of records 26+ find document starts), drawn from a Zipf law over the GPT-2 ids (so the
    loss falls within a few steps). The val shard holds a little more than the 10,485,760 tokens every record
    evaluates on; the generator loaders of records 19+ do not wrap around, so it must. Refuses to write where
    real shards lie."""
    if train_tokens < 1_000_000:
        raise TrackError("--tokens must be at least 1,000,000 (the loaders need whole batches of 64K-512K tokens)")
    if train_shards < 1:
        raise TrackError("synthetic data needs at least one train shard")
    shards = prepare_data_root(data_root)
    existing = [p for p in shards.iterdir() if p.suffix == ".bin"]
    if existing and not is_synthetic(shards):
        raise TrackError(f"{shards} already holds {len(existing)} real shard(s); synthetic ones would replace "
                         "them. Use another --data-dir for synthetic data.")
    for old in existing:
        old.unlink()
    val_count = val_tokens if val_tokens is not None else VAL_TOKENS + 2 * 65_536 + 1
    rng = np.random.default_rng(seed)
    (shards / SYNTHETIC_MARKER).write_text("these shards are synthetic (speedcopilot data prepare --synthetic)\n")
    write_shard(shards / "fineweb_val_000000.bin", synthetic_tokens(val_count, rng))
    for index in range(1, train_shards + 1):
        write_shard(shards / f"fineweb_train_{index:06d}.bin", synthetic_tokens(train_tokens, rng))
    return SyntheticInfo(shards, train_shards, train_tokens, val_count)


def synthetic_tokens(count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` uint16 tokens: BOS-led documents of Zipf-distributed ids below BOS_ID."""
    ranks = np.arange(1, BOS_ID + 1, dtype=np.float64)
    weights = 1.0 / ranks**1.1
    cdf = np.cumsum(weights / weights.sum())
    tokens = np.searchsorted(cdf, rng.random(count), side="right").astype(np.uint16)
    np.minimum(tokens, BOS_ID - 1, out=tokens)
    position = 0
    while position < count:  # document starts
        tokens[position] = BOS_ID
        position += int(rng.integers(64, 1537))
    return tokens


__all__ = [
    "SHARD_DIR", "TRAIN_GLOB", "VAL_GLOB", "VAL_TOKENS", "ShardInfo", "SyntheticInfo", "exclude_from_git",
    "inspect_shards", "is_synthetic", "prepare_data_root", "prepare_workdir", "shard_dir", "synthetic_tokens",
    "write_synthetic_shards",
]
