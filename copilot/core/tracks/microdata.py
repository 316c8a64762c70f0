"""The micro track's corpus: a deterministic synthetic language, written as upstream-format shards.

Bytes are tokens (vocab 256). A fixed "world" seed builds the language: 8 word classes of 48 words with
Zipfian frequencies, 96 capitalised names, 8 hidden document topics (each boosts a random quarter of every
class's words x6) and 4 modes (outside brackets, inside (), [], {}), each with its own sparse class-transition
table. A document has a hidden topic and 3 hidden entity names; it is a run of sentences with nested
brackets (depth <= 3) and ends with a newline after a period.

Every token is a distinct byte string that ends in a space (or is the newline), so the byte stream is
prefix-free and byte log-loss equals token log-loss. Only the topic and the entity set are hidden, so the
generator tracks their exact posteriors and knows the Bayes-optimal -log p of every token: the exact entropy
floor of the corpus, written to meta.json.

Determinism: only integer arithmetic drives sampling (raw PCG64 outputs reduced modulo integer weight
totals), so the same bytes come out on every machine, numpy and Python version. Floats only compute the floor.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from copilot.core.errors import TrackError
from copilot.core.tracks.microlayout import (  # re-exported: the corpus's names and readiness check live there
    DATA_ENV,
    GENERATOR_VERSION,
    META_FILE,
    TRAIN_FILE,
    VAL_FILE,
    default_data_dir,
    micro_data_ready,
    micro_dir,
)
from copilot.core.tracks.microlayout import read_meta as _read_meta
from copilot.core.tracks.shards import read_shard, write_shard

WORLD_SEED = 20240520
TRAIN_SEED = 1
VAL_SEED = 2

N_CLASSES = 8  # ordinary word classes; class index 8 is NAME
NAME_CLASS = N_CLASSES
WORDS_PER_CLASS = 48
N_NAMES = 96
N_TOPICS = 8
N_MODES = 4  # 0 outside brackets, 1 (), 2 [], 3 {}
START = N_CLASSES + 1  # "previous class" after a document start, an opener, a closer or a period
TOPIC_BOOST = 6
MAX_DEPTH = 3

# Token ids: words, names, 3 openers, 3 closers, period, newline.
TOK_NAME0 = N_CLASSES * WORDS_PER_CLASS
TOK_OPEN0 = TOK_NAME0 + N_NAMES
TOK_CLOSE0 = TOK_OPEN0 + 3
TOK_PERIOD = TOK_CLOSE0 + 3
TOK_NEWLINE = TOK_PERIOD + 1
N_TOKENS = TOK_NEWLINE + 1

# Integer event weights. Columns: newline, open (, open [, open {, close, period, word.
W_NEWLINE, W_OPEN, W_CLOSE, W_PERIOD, W_WORD = 110, 18, 260, 170, 600
LAST_DOCSTART, LAST_WORD, LAST_OPEN, LAST_CLOSE, LAST_PERIOD = 0, 1, 2, 3, 4

# The evaluation protocol of the micro records (kept in sync with their "do not change" block).
EVAL_SEQ_LEN = 256
EVAL_WINDOWS = 256


@dataclass(frozen=True)
class SizeSpec:
    """How much to generate: parallel streams x steps (tokens per stream) for each split."""

    train_streams: int
    train_steps: int
    val_streams: int
    val_steps: int


SIZES: dict[str, SizeSpec] = {
    "full": SizeSpec(train_streams=2048, train_steps=2400, val_streams=256, val_steps=1200),
    "small": SizeSpec(train_streams=32, train_steps=400, val_streams=16, val_steps=400),
}


@dataclass(frozen=True)
class MicroDataInfo:
    """What prepare_micro_data produced (also stored as meta.json beside the shards)."""

    directory: Path
    size: str
    train_tokens: int
    val_tokens: int
    entropy_floor: float  # exact Bayes floor, nats per byte, over the val stream
    train_entropy_floor: float
    eval_floor: float  # the floor on the records' evaluation windows
    seconds: float  # generation time (0.0 when the data was already there)
    generated: bool
    sha256: dict[str, str]


# --------------------------------------------------------------------------------------------- world


class _Raw:
    """Raw 64-bit PCG64 outputs: the stable part of numpy's RNG (Generator methods may change)."""

    def __init__(self, seed: int) -> None:
        self._bg = np.random.PCG64(seed)

    def draw(self, n: int) -> np.ndarray:
        return self._bg.random_raw(n).astype(np.uint64)

    def below(self, high: np.ndarray | int, n: int) -> np.ndarray:
        """n integers in [0, high) (high may be an array of length n); modulo bias < 2**-40."""
        return (self.draw(n) % np.asarray(high, dtype=np.uint64)).astype(np.int64)


def _spell(raw: _Raw, length: int, capital: bool) -> str:
    letters = raw.below(26, length)
    text = "".join(chr(ord("a") + int(x)) for x in letters)
    return text[0].upper() + text[1:] if capital else text


@dataclass(frozen=True)
class World:
    token_bytes: list[bytes]  # N_TOKENS byte strings
    word_weights: np.ndarray  # (topics, classes, words) int64
    trans: np.ndarray  # (modes, START+1, classes+1) int64, 3 nonzero per row


def build_world(seed: int = WORLD_SEED) -> World:
    raw = _Raw(seed)
    seen: set[str] = set()
    words: list[str] = []
    for _c in range(N_CLASSES):
        for r in range(WORDS_PER_CLASS):
            while True:  # frequent words are shorter; spellings are unique across the language
                length = 2 + (r * 5) // WORDS_PER_CLASS + int(raw.below(2, 1)[0])
                w = _spell(raw, length, capital=False)
                if w not in seen:
                    break
            seen.add(w)
            words.append(w)
    names: list[str] = []
    while len(names) < N_NAMES:
        w = _spell(raw, 3 + int(raw.below(5, 1)[0]), capital=True)
        if w not in seen:
            seen.add(w)
            names.append(w)
    token_bytes = [f"{w} ".encode() for w in words + names]
    token_bytes += [b"( ", b"[ ", b"{ ", b") ", b"] ", b"} ", b". ", b"\n"]
    assert len(token_bytes) == N_TOKENS

    zipf = np.array([720720 // (r + 1) for r in range(WORDS_PER_CLASS)], dtype=np.int64)  # rank^-1
    weights = np.empty((N_TOPICS, N_CLASSES, WORDS_PER_CLASS), dtype=np.int64)
    for t in range(N_TOPICS):
        for c in range(N_CLASSES):
            boost = np.ones(WORDS_PER_CLASS, dtype=np.int64)
            chosen = np.argsort(raw.draw(WORDS_PER_CLASS), kind="stable")[: WORDS_PER_CLASS // 4]
            boost[chosen] = TOPIC_BOOST
            weights[t, c] = zipf * boost

    trans = np.zeros((N_MODES, START + 1, N_CLASSES + 1), dtype=np.int64)
    for m in range(N_MODES):
        for p in range(START + 1):
            succ = np.argsort(raw.draw(N_CLASSES + 1), kind="stable")[:3]
            trans[m, p, succ] = 1 + raw.below(15, 3)
    return World(token_bytes=token_bytes, word_weights=weights, trans=trans)


# ----------------------------------------------------------------------------------------- sampling


def _generate_tokens(world: World, seed: int, streams: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Run `streams` independent token streams for `steps` steps. Returns (tokens, nll), both (steps, S)."""
    raw = _Raw(seed)
    S = streams
    ar = np.arange(S)
    W = world.word_weights
    Wsum = W.sum(axis=2)  # (topics, classes)
    Wcum = np.cumsum(W, axis=2)
    Tcum = np.cumsum(world.trans, axis=2)

    depth = np.zeros(S, np.int64)
    stack = np.zeros((S, MAX_DEPTH), np.int64)
    prev = np.full(S, START, np.int64)
    last = np.full(S, LAST_DOCSTART, np.int64)
    in_sentence = np.zeros(S, np.int64)
    in_bracket = np.zeros(S, np.int64)
    topic = np.zeros(S, np.int64)
    ents = np.zeros((S, 3), np.int64)
    seen = np.zeros((S, 3), bool)
    post = np.zeros((S, N_TOPICS))

    def new_documents(mask: np.ndarray) -> None:
        r = raw.draw(4 * S).reshape(4, S)
        t = (r[0] % N_TOPICS).astype(np.int64)
        e1 = (r[1] % N_NAMES).astype(np.int64)
        e2 = (r[2] % (N_NAMES - 1)).astype(np.int64)
        e2 += e2 >= e1
        lo, hi = np.minimum(e1, e2), np.maximum(e1, e2)
        e3 = (r[3] % (N_NAMES - 2)).astype(np.int64)
        e3 += e3 >= lo
        e3 += e3 >= hi
        topic[mask] = t[mask]
        ents[mask] = np.stack([e1, e2, e3], axis=1)[mask]
        seen[mask] = False
        post[mask] = 1.0 / N_TOPICS
        depth[mask] = 0
        prev[mask] = START
        last[mask] = LAST_DOCSTART
        in_sentence[mask] = 0
        in_bracket[mask] = 0

    new_documents(np.ones(S, bool))
    tokens = np.empty((steps, S), np.int16)
    nll = np.empty((steps, S), np.float64)
    for i in range(steps):
        ev = np.zeros((S, 7), np.int64)
        ev[:, 0] = np.where(last == LAST_PERIOD, W_NEWLINE, 0)
        ev[:, 1:4] = np.where(depth < MAX_DEPTH, W_OPEN, 0)[:, None]
        ev[:, 4] = np.where((depth > 0) & (in_bracket >= 1), W_CLOSE, 0)
        can_stop = (depth == 0) & (in_sentence >= 3) & ((last == LAST_WORD) | (last == LAST_CLOSE))
        ev[:, 5] = np.where(can_stop, W_PERIOD, 0)
        ev[:, 6] = W_WORD
        ecum = np.cumsum(ev, axis=1)
        u = raw.below(ecum[:, -1], S)
        event = (ecum <= u[:, None]).sum(axis=1)
        step_nll = np.log(ecum[:, -1]) - np.log(ev[ar, event])

        # Word: class from the mode's transition table, then a word of that class (or a document entity).
        mode = np.where(depth > 0, stack[ar, np.maximum(depth - 1, 0)] + 1, 0)
        tcum = Tcum[mode, prev]
        u = raw.below(tcum[:, -1], S)
        cls = (tcum <= u[:, None]).sum(axis=1)
        cls_w = world.trans[mode, prev, cls]
        cls_nll = np.log(tcum[:, -1]) - np.log(np.maximum(cls_w, 1))
        cls_c = np.minimum(cls, N_CLASSES - 1)
        wcum = Wcum[topic, cls_c]
        u = raw.below(wcum[:, -1], S)
        rank = (wcum <= u[:, None]).sum(axis=1)
        lik = W[:, cls_c, rank].T / Wsum[:, cls_c].T  # (S, topics): p(word | class, topic)
        mix = (post * lik).sum(axis=1)
        slot = raw.below(3, S)
        k = seen.sum(axis=1)
        name_nll = np.where(seen[ar, slot], math.log(3), np.log(3 * (N_NAMES - k) / np.maximum(3 - k, 1)))
        is_word = event == 6
        is_name = is_word & (cls == NAME_CLASS)
        is_plain = is_word & ~is_name
        word_nll = cls_nll + np.where(cls == NAME_CLASS, name_nll, -np.log(mix))

        tok = np.full(S, TOK_NEWLINE, np.int64)
        tok = np.where(is_plain, cls_c * WORDS_PER_CLASS + rank, tok)
        tok = np.where(is_name, TOK_NAME0 + ents[ar, slot], tok)
        tok = np.where((event >= 1) & (event <= 3), TOK_OPEN0 + event - 1, tok)
        closer = TOK_CLOSE0 + stack[ar, np.maximum(depth - 1, 0)]
        tok = np.where(event == 4, closer, tok)
        tok = np.where(event == 5, TOK_PERIOD, tok)
        tokens[i] = tok
        nll[i] = step_nll + np.where(is_word, word_nll, 0.0)

        # State updates (observable ones first, then the hidden-state posteriors).
        post[is_plain] = post[is_plain] * lik[is_plain] / mix[is_plain, None]
        seen[ar[is_name], slot[is_name]] = True
        opened = (event >= 1) & (event <= 3)
        stack[ar[opened], depth[opened]] = event[opened] - 1
        depth += opened
        depth -= event == 4
        in_bracket = np.where(opened, 0, np.where(event == 4, 1, in_bracket + is_word))
        in_sentence = np.where(event == 5, 0, in_sentence + is_word)
        prev = np.where(is_word, cls, START)
        last = np.select([is_word, opened, event == 4, event == 5],
                         [LAST_WORD, LAST_OPEN, LAST_CLOSE, LAST_PERIOD], LAST_DOCSTART)
        ended = event == 0
        if ended.any():
            new_documents(ended)
    return tokens, nll


def _to_bytes(world: World, tokens: np.ndarray, nll: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the streams (each cut after its last complete document) into bytes.

    Returns (bytes as uint8, per-byte floor: each token's -log p on its last byte, 0 elsewhere).
    """
    tok_len = np.array([len(b) for b in world.token_bytes], np.int64)
    table = np.zeros((N_TOKENS, 8), np.uint8)
    for i, b in enumerate(world.token_bytes):
        table[i, : len(b)] = np.frombuffer(b, np.uint8)
    toks, nlls = [], []
    for s in range(tokens.shape[1]):
        col = tokens[:, s].astype(np.int64)
        ends = np.flatnonzero(col == TOK_NEWLINE)
        if ends.size == 0:
            continue
        toks.append(col[: ends[-1] + 1])
        nlls.append(nll[: ends[-1] + 1, s])
    flat = np.concatenate(toks)
    flat_nll = np.concatenate(nlls)
    lens = tok_len[flat]
    keep = np.arange(8)[None, :] < lens[:, None]
    data = table[flat][keep]
    floor = np.zeros((flat.size, 8))
    floor[np.arange(flat.size), lens - 1] = flat_nll
    return data, floor[keep]


def eval_windows(val: np.ndarray, seq_len: int = EVAL_SEQ_LEN, windows: int = EVAL_WINDOWS) -> tuple[np.ndarray, np.ndarray]:
    """The records' validation protocol: windows of seq_len+1 bytes starting at a newline (a document
    boundary), non-overlapping, the first `windows` of them; targets after the last complete token of a
    window are masked. Returns (starts, mask over targets (windows, seq_len))."""
    starts: list[int] = []
    nxt = 0
    for p in np.flatnonzero(val == ord("\n")):
        if p >= nxt and p + seq_len + 1 <= len(val):
            starts.append(int(p))
            nxt = p + seq_len + 1
            if len(starts) == windows:
                break
    idx = np.array(starts, np.int64)[:, None] + 1 + np.arange(seq_len)[None, :]
    y = val[idx]
    ends = (y == ord(" ")) | (y == ord("\n"))
    last_end = seq_len - 1 - np.argmax(ends[:, ::-1], axis=1)
    mask = np.arange(seq_len)[None, :] <= last_end[:, None]
    return np.array(starts, np.int64), mask


def eval_floor(val: np.ndarray, floor: np.ndarray, seq_len: int = EVAL_SEQ_LEN, windows: int = EVAL_WINDOWS) -> float:
    starts, mask = eval_windows(val, seq_len, windows)
    idx = starts[:, None] + 1 + np.arange(seq_len)[None, :]
    return float(floor[idx][mask].sum() / mask.sum())


def generate_split(seed: int, streams: int, steps: int, world: World | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bytes of one split and the per-byte floor (see _to_bytes)."""
    world = world or build_world()
    tokens, nll = _generate_tokens(world, seed, streams, steps)
    return _to_bytes(world, tokens, nll)


# ------------------------------------------------------------------------------------------ on disk






def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()






def _info_from_meta(directory: Path, meta: dict, seconds: float, generated: bool) -> MicroDataInfo:
    return MicroDataInfo(directory=directory, size=meta["size"], train_tokens=meta["train_tokens"],
                         val_tokens=meta["val_tokens"], entropy_floor=meta["entropy_floor"],
                         train_entropy_floor=meta["train_entropy_floor"], eval_floor=meta["eval_floor"],
                         seconds=seconds, generated=generated, sha256=meta["sha256"])


def prepare_micro_data(data_dir: Path | None = None, progress: Callable[[str, float], None] | None = None,
                       force: bool = False, size: str = "full") -> MicroDataInfo:
    """Generate the micro corpus under <data_dir>/micro (idempotent: returns at once when it is valid).

    progress(message, fraction) is called as work proceeds. size "small" is a tiny set for tests.
    """
    if size not in SIZES:
        raise TrackError(f"unknown micro data size {size!r}; choose one of: {', '.join(SIZES)}")
    directory = micro_dir(data_dir)
    report = progress or (lambda _msg, _frac: None)
    meta = _read_meta(directory)
    if not force and micro_data_ready(data_dir) and meta is not None and meta.get("size") == size:
        report("micro data already prepared", 1.0)
        return _info_from_meta(directory, meta, 0.0, generated=False)
    spec = SIZES[size]
    t0 = time.perf_counter()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / META_FILE).unlink(missing_ok=True)  # invalid until fully written
        report("building the language", 0.0)
        world = build_world()
        report("generating validation split", 0.05)
        val, val_floor = generate_split(VAL_SEED, spec.val_streams, spec.val_steps, world)
        report("generating training split", 0.15)
        train, train_floor = generate_split(TRAIN_SEED, spec.train_streams, spec.train_steps, world)
        report("writing shards", 0.9)
        write_shard(directory / VAL_FILE, val)
        write_shard(directory / TRAIN_FILE, train)
    except OSError as exc:
        raise TrackError(f"cannot write micro data to {directory}: {exc.strerror or exc}; "
                         f"set {DATA_ENV} to a writable folder") from exc
    windows = min(EVAL_WINDOWS, int((val == ord("\n")).sum()))
    meta = {
        "generator_version": GENERATOR_VERSION,
        "size": size,
        "world_seed": WORLD_SEED,
        "train_seed": TRAIN_SEED,
        "val_seed": VAL_SEED,
        "vocab_size": 256,
        "train_tokens": int(train.size),
        "val_tokens": int(val.size),
        "entropy_floor": round(float(val_floor.sum() / val.size), 6),
        "train_entropy_floor": round(float(train_floor.sum() / train.size), 6),
        "eval_floor": round(eval_floor(val, val_floor, EVAL_SEQ_LEN, windows), 6),
        "eval_protocol": {"seq_len": EVAL_SEQ_LEN, "windows": windows,
                          "rule": "windows start at newline bytes, non-overlapping; trailing partial token masked"},
        "units": "nats per byte",
        "sha256": {TRAIN_FILE: _sha256(directory / TRAIN_FILE), VAL_FILE: _sha256(directory / VAL_FILE)},
    }
    tmp = directory / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, directory / META_FILE)
    seconds = time.perf_counter() - t0
    report("micro data ready", 1.0)
    return _info_from_meta(directory, meta, seconds, generated=True)


def load_micro_split(data_dir: Path | None, split: str) -> np.ndarray:
    """Read the train or val shard (for tools and tests)."""
    name = {"train": TRAIN_FILE, "val": VAL_FILE}.get(split)
    if name is None:
        raise TrackError(f"unknown split {split!r}; use train or val")
    return read_shard(micro_dir(data_dir) / name)


__all__ = ["MicroDataInfo", "SIZES", "default_data_dir", "prepare_micro_data", "micro_data_ready", "micro_dir",
           "build_world", "generate_split", "eval_windows", "eval_floor", "load_micro_split"]
